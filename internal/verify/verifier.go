package verify

import (
	"context"
	"errors"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/token"
	"github.com/tokenwarden/tokenwarden/pkg/verifyclient"
)

// Reasons a token is refused. They are part of the wire contract (JSON
// bodies, the X-Tokenwarden-Reason header, TokenReview status.error and the
// outcome label of the metrics), which pkg/verifyclient defines for the
// services that consume it; they are named here for the server's code.
const (
	ReasonMissing     = verifyclient.ReasonMissing
	ReasonMalformed   = verifyclient.ReasonMalformed
	ReasonUnknown     = verifyclient.ReasonUnknown
	ReasonExpired     = verifyclient.ReasonExpired
	ReasonDisabled    = verifyclient.ReasonDisabled
	ReasonInvalidated = verifyclient.ReasonInvalidated
	ReasonNotActive   = verifyclient.ReasonNotActive
	ReasonRateLimited = verifyclient.ReasonRateLimited
	// ReasonUnavailable: the token's teams could not be resolved because the
	// Team cache or the admin check failed. It says nothing about the token,
	// so the HTTP endpoints answer 503 and charge the client nothing.
	ReasonUnavailable = verifyclient.ReasonUnavailable
)

// outcomeVerified is the outcome label of a verified request.
const outcomeVerified = "Verified"

// UserPrefix starts Identity.User: tokenwarden:<namespace>:<name>:<uid>,
// where uid is the ApiToken's metadata.uid, so that a token deleted and
// created again under the same name is another user and inherits none of
// the RBAC bindings made for the one before.
const UserPrefix = "tokenwarden:"

// Identity is who a verified token is: the wire contract of /verify,
// defined in pkg/verifyclient. The Identities this package returns share
// their Teams, Scopes and ExpiresAt with the Index and with every other
// verification of the same token, which keeps a verification free of
// allocations: read them, and copy them before changing them.
type Identity = verifyclient.Identity

// Verifier decides who a token value is, from the Index and the Teams that
// exist at the moment of the request.
type Verifier struct {
	// Index holds the digests that may verify.
	Index *Index
	// Format is the installation's token format.
	Format token.Format
	// Clock decides expiry; required: the process's one clock.
	Clock clock.PassiveClock
	// Teams are the Teams there are now, usually a TeamTable fed by the
	// informer; nil means there are none.
	Teams TeamSource
	// Admins decides whether a creator is an admin; nil means nobody is. It
	// is asked on every verification of an Admin token, and of a Team or
	// Wildcard token whose creator's ownership alone does not decide, so
	// give it an authz.Standing, which remembers answers and watches RBAC,
	// not a bare SubjectAccessReviewer.
	Admins authz.AdminChecker
}

// Verify returns the identity of value, or the reason it is refused. The
// checks run cheapest first so garbage costs the least: shape and checksum,
// then the digest's lookup, then the ApiToken's state at this instant, so a
// value stops verifying on the second it expires even if no reconcile ran.
func (v *Verifier) Verify(ctx context.Context, value string) (Identity, string) {
	var vd verdict
	v.verify(ctx, value, &vd)
	return vd.id, vd.reason
}

// verdict is the outcome of one verification.
type verdict struct {
	id Identity
	// rec is the record value verified as, nil when refused. The server
	// takes the digest for the per-token rate limit and the header values
	// from it.
	rec *record
	// at is the instant the verification was decided at.
	at time.Time
	// reason is "" when verified.
	reason string
}

// verify is Verify also telling the record value verified as and the
// instant, for the server. It fills in vd, which must be zero, rather than
// returning a verdict, which would copy it once more.
func (v *Verifier) verify(ctx context.Context, value string, vd *verdict) {
	if value == "" {
		vd.reason = ReasonMissing
		return
	}
	typ, err := v.Format.Parse(value)
	if err != nil {
		vd.reason = ReasonMalformed
		return
	}
	if v.Index == nil {
		vd.reason = ReasonUnknown
		return
	}
	sum := token.SumOf(value)
	r, ok := v.Index.lookup(&sum)
	if !ok || !token.SumsEqual(&sum, &r.sum) {
		vd.reason = ReasonUnknown
		return
	}
	e := &r.entry
	// The type letter is covered by the digest, so a mismatch means the
	// value was issued wrongly or the status was edited by hand. Either way
	// it is not a token of this ApiToken's type, and saying more would only
	// help whoever crafted it.
	if typ != e.Type {
		vd.reason = ReasonUnknown
		return
	}
	now := v.now()
	if reason := refusal(e, now); reason != "" {
		vd.reason = reason
		return
	}
	teams, reason, err := v.standing(ctx, r)
	if err != nil {
		// The error is about the Team table or SubjectAccessReview and
		// never contains the value; the ApiToken's name says which token.
		// A table still filling at start is expected (readiness keeps
		// Services away meanwhile) and not worth a line per request.
		if !errors.Is(err, errTeamsNotSynced) {
			log.FromContext(ctx).Error(err, "Cannot resolve the teams of a token", "apiToken", e.Key.String())
		}
		vd.reason = ReasonUnavailable
		return
	}
	if reason != "" {
		vd.reason = reason
		return
	}
	// Everything here is shared with the record rather than copied; see
	// Identity.
	vd.id = Identity{
		User:      r.user,
		Name:      e.Key.Name,
		Namespace: e.Key.Namespace,
		UID:       string(e.UID),
		Type:      string(e.Type),
		Teams:     teams,
		Scopes:    r.scopes,
		ExpiresAt: e.ExpiresAt,
	}
	if e.Creator != nil {
		vd.id.Creator = e.Creator.Username
	}
	vd.rec, vd.at = r, now
}

// refusal is the reason e does not verify at now, or "" if it does. Only an
// Active token verifies, with its current value or, during a rotation
// overlap, its previous one. What the spec says is applied here rather than
// waiting for the reconciler, which runs on the leader only, to change the
// phase: spec.disabled refuses at once, and expiry is the one the spec
// implies now, checked against now, so an expiry brought forward refuses
// and one moved back or removed verifies again on every replica within the
// informer's delay. A phase the reconciler already moved away from Active
// still refuses: an Expired token's value was withdrawn, and a new expiry
// does not bring it back (only a recreate issues a new one); a Disabled one
// verifies again once the reconciler has seen it re-enabled.
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
	if e.Disabled {
		return ReasonDisabled
	}
	if e.ExpiresAt != nil && !now.Before(*e.ExpiresAt) {
		return ReasonExpired
	}
	return ""
}

// standing checks, at request time, that r's creator may still hold it,
// with the reconciler's own decision (authz.Entitled), and resolves the
// teams it speaks for now: a Team token's own, a Wildcard token's its
// creator's now, and none for an Admin token, which is associated with no
// team. A token whose creator lost the right is refused
// as Invalidated at once: the reconciler's invalidation of it, and of every
// other token of the same creator, follows, but a Team edit that strips a
// thousand tokens must not leave them verifying while it works through them.
func (v *Verifier) standing(ctx context.Context, r *record) ([]string, string, error) {
	snap := emptyTeams
	if v.Teams != nil {
		var err error
		if snap, err = v.Teams.Snapshot(ctx); err != nil {
			return nil, "", err
		}
	}
	e := &r.entry
	tok := authz.Token{Namespace: e.Key.Namespace, Type: e.Type, Teams: e.Teams}
	verdict, admin, err := authz.Decide(ctx, v.Admins, e.Creator, func(admin authz.AdminAnswer) authz.Verdict {
		return authz.Entitled(tok, e.Creator, snap.ByName, admin)
	})
	if err != nil {
		return nil, "", err
	}
	if !verdict.Allowed() {
		return nil, ReasonInvalidated, nil
	}
	if !r.dynamicTeams {
		return r.teams, "", nil
	}
	teams, needAdmin := authz.WildcardTeams(&r.spec, e.IssuedAt, e.Creator, snap.ByName, snap.Names, admin)
	if needAdmin {
		if admin, err = v.isAdmin(ctx, e.Creator); err != nil {
			return nil, "", err
		}
		teams, _ = authz.WildcardTeams(&r.spec, e.IssuedAt, e.Creator, snap.ByName, snap.Names, admin)
	}
	return teams, "", nil
}

// isAdmin asks Admins about user; without Admins nobody is an admin.
func (v *Verifier) isAdmin(ctx context.Context, user *v1alpha1.UserIdentity) (authz.AdminAnswer, error) {
	if v.Admins == nil || user == nil {
		return authz.AdminNo, nil
	}
	admin, err := v.Admins.IsAdmin(ctx, user)
	if err != nil {
		return authz.AdminUnknown, err
	}
	return authz.AdminAnswerOf(admin), nil
}

func (v *Verifier) now() time.Time { return v.Clock.Now() }
