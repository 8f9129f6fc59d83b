package verify

import (
	"context"
	"crypto/subtle"
	"slices"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// Reasons a token is refused. They are part of the interface: they appear
// in JSON bodies, the X-Tokenwarden-Reason header, TokenReview status.error
// and the outcome label of the metrics.
const (
	// ReasonMissing: the request carries no token.
	ReasonMissing = "Missing"
	// ReasonMalformed: the value is not shaped like a token of this
	// installation, or its checksum is wrong. Nothing was looked up.
	ReasonMalformed = "Malformed"
	// ReasonUnknown: no ApiToken has the value's digest.
	ReasonUnknown = "Unknown"
	// ReasonExpired: the value's expiry instant has passed.
	ReasonExpired = "Expired"
	// ReasonDisabled: the ApiToken is disabled.
	ReasonDisabled = "Disabled"
	// ReasonInvalidated: the ApiToken's creator lost the standing it needs.
	ReasonInvalidated = "Invalidated"
	// ReasonNotActive: the ApiToken is in another phase than Active, such as
	// Pending or Failed.
	ReasonNotActive = "NotActive"
	// ReasonRateLimited: the client or the token is over its rate limit.
	ReasonRateLimited = "RateLimited"
	// ReasonUnavailable: the token's teams could not be resolved because the
	// Team cache or the admin check failed. It says nothing about the token,
	// so the HTTP endpoints answer 503 and charge the client nothing.
	ReasonUnavailable = "Unavailable"
)

// outcomeVerified is the outcome label of a verified request.
const outcomeVerified = "Verified"

// UserPrefix starts Identity.User: tokenwarden:<namespace>:<name>.
const UserPrefix = "tokenwarden:"

// Identity is who a verified token is.
type Identity struct {
	// User is stable for the ApiToken across recreates:
	// "tokenwarden:<namespace>:<name>".
	User      string `json:"user"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
	Type      string `json:"type"`
	// Teams are spec.teams for a Team token; for a Wildcard token the teams
	// its creator owns at request time, or every team if the creator is an
	// admin; for an Admin token every team. Sorted for Wildcard and Admin.
	Teams  []string `json:"teams"`
	Scopes []string `json:"scopes"`
	// ExpiresAt is when the presented value stops verifying, which for a
	// previous value is the end of its rotation overlap.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	// Creator is the creator's user name.
	Creator string `json:"creator"`
}

// Verifier decides who a token value is, from the Index and, for Wildcard
// and Admin tokens, the Teams.
type Verifier struct {
	// Index holds the digests that may verify.
	Index *Index
	// Format is the installation's token format.
	Format token.Format
	// Clock decides expiry; nil means the real clock.
	Clock clock.PassiveClock
	// Teams lists the Teams, usually from the informer cache; nil means
	// there are none.
	Teams func(ctx context.Context) ([]v1alpha1.Team, error)
	// Admins decides whether a Wildcard token's creator is an admin; nil
	// means nobody is. It is asked on every Wildcard verification whose
	// creator does not own every team, so give it a
	// RememberingAdminChecker kept fresh by an RBAC watch, not a bare
	// SubjectAccessReviewer.
	Admins authz.AdminChecker
}

// Verify returns the identity of value, or the reason it is refused. The
// checks run cheapest first so garbage costs the least: shape and checksum,
// then the digest's lookup, then the ApiToken's state at this instant, so a
// value stops verifying on the second it expires even if no reconcile ran.
func (v *Verifier) Verify(ctx context.Context, value string) (Identity, string) {
	id, _, reason := v.verify(ctx, value)
	return id, reason
}

// verify is Verify also returning the digest of value once it was found in
// the index, for the per-token rate limit.
func (v *Verifier) verify(ctx context.Context, value string) (Identity, string, string) {
	if value == "" {
		return Identity{}, "", ReasonMissing
	}
	typ, err := v.Format.Parse(value)
	if err != nil {
		return Identity{}, "", ReasonMalformed
	}
	digest := token.Hash(value)
	if v.Index == nil {
		return Identity{}, "", ReasonUnknown
	}
	r, ok := v.Index.lookup(digest)
	if !ok || !digestsEqual(digest, r.digest) {
		return Identity{}, "", ReasonUnknown
	}
	e := &r.entry
	// The type letter is covered by the digest, so a mismatch means the
	// value was issued wrongly or the status was edited by hand. Either way
	// it is not a token of this ApiToken's type, and saying more would only
	// help whoever crafted it.
	if typ != e.Type {
		return Identity{}, "", ReasonUnknown
	}
	if reason := refusal(e, v.now()); reason != "" {
		return Identity{}, "", reason
	}
	teams, err := v.teamsOf(ctx, e)
	if err != nil {
		// The error is about the Team cache or SubjectAccessReview and
		// never contains the value; the ApiToken's name says which token.
		log.FromContext(ctx).Error(err, "Cannot resolve the teams of a token", "apiToken", e.Key.String())
		return Identity{}, "", ReasonUnavailable
	}
	id := Identity{
		User:      UserPrefix + e.Key.Namespace + ":" + e.Key.Name,
		Name:      e.Key.Name,
		Namespace: e.Key.Namespace,
		UID:       string(e.UID),
		Type:      string(e.Type),
		Teams:     teams,
		Scopes:    cloneNonNil(e.Scopes),
	}
	if e.ExpiresAt != nil {
		at := *e.ExpiresAt
		id.ExpiresAt = &at
	}
	if e.Creator != nil {
		id.Creator = e.Creator.Username
	}
	return id, digest, ""
}

// refusal is the reason e does not verify at now, or "" if it does. Only an
// Active token verifies, with its current value or, during a rotation
// overlap, its previous one; expiry is checked against now rather than
// waiting for the reconciler to change the phase.
func refusal(e *Entry, now time.Time) string {
	switch e.Phase {
	case v1alpha1.PhaseActive:
	case v1alpha1.PhaseDisabled:
		return ReasonDisabled
	case v1alpha1.PhaseInvalidated:
		return ReasonInvalidated
	case v1alpha1.PhaseExpired:
		return ReasonExpired
	default:
		return ReasonNotActive
	}
	if e.ExpiresAt != nil && !now.Before(*e.ExpiresAt) {
		return ReasonExpired
	}
	return ""
}

// teamsOf resolves the teams e speaks for now.
func (v *Verifier) teamsOf(ctx context.Context, e *Entry) ([]string, error) {
	switch e.Type {
	case v1alpha1.TeamTokenType:
		return cloneNonNil(e.Teams), nil
	case v1alpha1.AdminTokenType, v1alpha1.WildcardTokenType:
	default:
		return []string{}, nil
	}
	var list []v1alpha1.Team
	if v.Teams != nil {
		var err error
		if list, err = v.Teams(ctx); err != nil {
			return nil, err
		}
	}
	all := make([]string, 0, len(list))
	owned := make([]string, 0, len(list))
	for i := range list {
		all = append(all, list[i].Name)
		if e.Type == v1alpha1.WildcardTokenType && authz.IsOwner(&list[i], e.Creator) {
			owned = append(owned, list[i].Name)
		}
	}
	slices.Sort(all)
	slices.Sort(owned)
	// Owning every team already gives every team, so an admin check could
	// not add anything; skipping it spares a SubjectAccessReview.
	if e.Type == v1alpha1.AdminTokenType || len(owned) == len(all) {
		return all, nil
	}
	if v.Admins != nil && e.Creator != nil {
		admin, err := v.Admins.IsAdmin(ctx, e.Creator)
		if err != nil {
			return nil, err
		}
		if admin {
			return all, nil
		}
	}
	return owned, nil
}

func (v *Verifier) now() time.Time {
	if v.Clock == nil {
		return time.Now()
	}
	return v.Clock.Now()
}

// digestsEqual compares two digests in constant time, so a caller cannot
// time how much of a stored digest a guess matched. The map lookup before
// it already compared them, but not in constant time; this makes the
// decision not rest on that comparison.
func digestsEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var diff byte
	for i := 0; i < len(a); i++ {
		diff |= a[i] ^ b[i]
	}
	return subtle.ConstantTimeByteEq(diff, 0) == 1
}

// cloneNonNil copies s so callers may change the result without changing
// the Index; it returns an empty slice for nil, so JSON says [] not null.
func cloneNonNil(s []string) []string {
	return append(make([]string, 0, len(s)), s...)
}
