package verify

import (
	"context"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/duration"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// t0 is the instant every test starts at.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// newValue returns a fresh value of type typ in the default format.
func newValue(tb testing.TB, typ v1alpha1.ApiTokenType) string {
	tb.Helper()
	v, err := token.Format{}.Generate(typ)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// tokenOption changes an ApiToken under construction, after its builder
// options: its status, or what the admission webhook would have stamped.
type tokenOption func(*v1alpha1.ApiToken)

func withPhase(p v1alpha1.ApiTokenPhase) tokenOption {
	return func(t *v1alpha1.ApiToken) { t.Status.Phase = p }
}

// withExpiry sets spec.expiresAt and the status.expiresAt the reconciler
// derives from it.
func withExpiry(at time.Time) tokenOption {
	return func(t *v1alpha1.ApiToken) {
		spec, st := metav1.NewTime(at), metav1.NewTime(at)
		t.Spec.ExpiresAt, t.Status.ExpiresAt = &spec, &st
	}
}

// withStatusExpiry sets status.expiresAt only, as the reconciler last wrote
// it before an edit of the spec it has not reconciled yet.
func withStatusExpiry(at time.Time) tokenOption {
	return func(t *v1alpha1.ApiToken) { mt := metav1.NewTime(at); t.Status.ExpiresAt = &mt }
}

// withLifetime sets spec.lifetime, and status.issuedAt to issuedAt with the
// status.expiresAt the reconciler derives from both.
func withLifetime(lifetime string, issuedAt time.Time) tokenOption {
	return func(t *v1alpha1.ApiToken) {
		l := v1alpha1.Duration(lifetime)
		d, err := duration.Parse(l)
		if err != nil {
			panic(err)
		}
		issued, expires := metav1.NewTime(issuedAt), metav1.NewTime(issuedAt.Add(d))
		t.Spec.Lifetime, t.Status.IssuedAt, t.Status.ExpiresAt = &l, &issued, &expires
	}
}

// withDisabled sets spec.disabled, leaving the phase as it was: an edit no
// reconciler has seen yet.
func withDisabled() tokenOption {
	return func(t *v1alpha1.ApiToken) { t.Spec.Disabled = true }
}

func withPrevious(value string, until time.Time) tokenOption {
	return func(t *v1alpha1.ApiToken) {
		t.Status.Previous = &v1alpha1.PreviousToken{TokenHash: token.Hash(value), ExpiresAt: metav1.NewTime(until)}
	}
}

// withCreator records username (with groups) in the creator annotation, as
// the admission webhook does at CREATE: the only creator the Index reads.
func withCreator(username string, groups ...string) tokenOption {
	return func(t *v1alpha1.ApiToken) { b.WithCreator(username, groups...)(t) }
}

// withoutCreator drops the creator annotation, as on an ApiToken created
// while the webhook was absent.
func withoutCreator() tokenOption {
	return func(t *v1alpha1.ApiToken) { delete(t.Annotations, v1alpha1.CreatorAnnotation) }
}

// withStatusCreator sets status.creator, which the Index must ignore.
func withStatusCreator(username string, groups ...string) tokenOption {
	return func(t *v1alpha1.ApiToken) {
		t.Status.Creator = &v1alpha1.UserIdentity{Username: username, Groups: groups}
	}
}

// withUID sets metadata.uid, which issued derives from the name otherwise.
func withUID(uid types.UID) tokenOption {
	return func(t *v1alpha1.ApiToken) { t.UID = uid }
}

// issued returns an Active ApiToken whose current value is value.
func issued(name, ns, value string, opts []b.ApiTokenOption, more ...tokenOption) *v1alpha1.ApiToken {
	tok := b.ApiToken(name, ns, opts...)
	tok.UID = types.UID("uid-" + name)
	tok.Status.Phase = v1alpha1.PhaseActive
	if value != "" {
		tok.Status.TokenHash = token.Hash(value)
	}
	for _, o := range more {
		o(tok)
	}
	return tok
}

func key(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

func teamsFunc(teams ...*v1alpha1.Team) TeamSource {
	return StaticTeams(teams...)
}

// failingTeams is a TeamSource whose informer never synced.
var failingTeams TeamSource = NewTeamTable()

// fakeAdmins is an AdminChecker answering from a set of user names, and
// counting how often it was asked.
type fakeAdmins struct {
	admins map[string]bool
	err    error

	mu    sync.Mutex
	asked int
}

func (f *fakeAdmins) IsAdmin(_ context.Context, user *v1alpha1.UserIdentity) (bool, error) {
	f.mu.Lock()
	f.asked++
	f.mu.Unlock()
	if f.err != nil {
		return false, f.err
	}
	return f.admins[user.Username], nil
}

func (f *fakeAdmins) askedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked
}
