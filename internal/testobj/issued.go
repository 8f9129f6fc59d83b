package testobj

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/duration"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// NewValue returns a fresh token value of type typ in the default format.
func NewValue(tb testing.TB, typ v1alpha1.ApiTokenType) string {
	tb.Helper()
	v, err := token.Format{}.Generate(typ)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// Issued returns an ApiToken as the reconciler leaves it once it has
// issued value (none when value is ""): Active, with the value's digest
// and a uid derived from the name, built with opts and then changed by
// more, which usually say what its status holds besides.
func Issued(name, namespace, value string, opts []ApiTokenOption, more ...ApiTokenOption) *v1alpha1.ApiToken {
	tok := ApiToken(name, namespace, opts...)
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

// WithPhase sets status.phase.
func WithPhase(p v1alpha1.ApiTokenPhase) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) { t.Status.Phase = p }
}

// WithExpiry sets spec.expiresAt and the status.expiresAt the reconciler
// derives from it.
func WithExpiry(at time.Time) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) {
		spec, st := metav1.NewTime(at), metav1.NewTime(at)
		t.Spec.ExpiresAt, t.Status.ExpiresAt = &spec, &st
	}
}

// WithStatusExpiry sets status.expiresAt only, as the reconciler last
// wrote it before an edit of the spec it has not reconciled yet.
func WithStatusExpiry(at time.Time) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) { mt := metav1.NewTime(at); t.Status.ExpiresAt = &mt }
}

// WithIssuedLifetime sets spec.lifetime, and status.issuedAt to issuedAt
// with the status.expiresAt the reconciler derives from both.
func WithIssuedLifetime(lifetime string, issuedAt time.Time) ApiTokenOption {
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

// WithPrevious records value as status.previous, verifying until until.
func WithPrevious(value string, until time.Time) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) {
		t.Status.Previous = &v1alpha1.PreviousToken{TokenHash: token.Hash(value), ExpiresAt: metav1.NewTime(until)}
	}
}

// WithoutCreator drops the creator annotation, as on an ApiToken created
// while the webhook was absent.
func WithoutCreator() ApiTokenOption {
	return func(t *v1alpha1.ApiToken) { delete(t.Annotations, v1alpha1.CreatorAnnotation) }
}

// WithStatusCreator sets status.creator, which only the reconciler writes
// and nothing deciding anything reads.
func WithStatusCreator(username string, groups ...string) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) {
		t.Status.Creator = &v1alpha1.UserIdentity{Username: username, Groups: groups}
	}
}

// WithUID sets metadata.uid, which Issued derives from the name otherwise.
func WithUID(uid types.UID) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) { t.UID = uid }
}
