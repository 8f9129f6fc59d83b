package verify

import (
	"context"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	b "github.com/tokenwarden/tokenwarden/internal/builder"
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

// statusOption changes the status of an ApiToken under construction.
type statusOption func(*v1alpha1.ApiTokenStatus)

func withPhase(p v1alpha1.ApiTokenPhase) statusOption {
	return func(s *v1alpha1.ApiTokenStatus) { s.Phase = p }
}

func withExpiry(at time.Time) statusOption {
	return func(s *v1alpha1.ApiTokenStatus) { mt := metav1.NewTime(at); s.ExpiresAt = &mt }
}

func withPrevious(value string, until time.Time) statusOption {
	return func(s *v1alpha1.ApiTokenStatus) {
		s.Previous = &v1alpha1.PreviousToken{TokenHash: token.Hash(value), ExpiresAt: metav1.NewTime(until)}
	}
}

func withStatusCreator(username string, groups ...string) statusOption {
	return func(s *v1alpha1.ApiTokenStatus) {
		s.Creator = &v1alpha1.UserIdentity{Username: username, Groups: groups}
	}
}

// issued returns an Active ApiToken whose current value is value.
func issued(name, ns, value string, opts []b.ApiTokenOption, status ...statusOption) *v1alpha1.ApiToken {
	tok := b.ApiToken(name, ns, opts...)
	tok.UID = types.UID("uid-" + name)
	tok.Status.Phase = v1alpha1.PhaseActive
	if value != "" {
		tok.Status.TokenHash = token.Hash(value)
	}
	for _, o := range status {
		o(&tok.Status)
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
