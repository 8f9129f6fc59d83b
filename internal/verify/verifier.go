package verify

import (
	"context"
	"errors"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

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
	var vd Verdict
	v.Decide(ctx, value, &vd)
	return vd.Identity, vd.Reason
}

// Verdict is the outcome of one verification, with what a transport needs
// to answer it that Identity does not say.
type Verdict struct {
	// Identity is who the value is; zero when refused.
	Identity Identity
	// Reason is why the value is refused; "" when verified.
	Reason string
	// At is the instant the verification was decided at.
	At time.Time
	// rec is the record the value verified as, nil when refused.
	rec *record
}

// Key is the ApiToken the value verified as.
func (vd *Verdict) Key() types.NamespacedName { return vd.rec.entry.Key }

// Digest is the verified value's digest as status holds it,
// "sha256:<hex>": the key of the token's request budget.
func (vd *Verdict) Digest() string { return vd.rec.digest }

// Joined is Identity's teams and scopes joined with commas, and its expiry
// in RFC 3339 and UTC ("" for none): what the X-Tokenwarden-* headers say.
// They were worked out once, when the token entered the Index, except the
// teams of a Wildcard token, which depend on the instant.
func (vd *Verdict) Joined() (teams, scopes, expiresAt string) {
	teams = vd.rec.teamsHeader
	if vd.rec.dynamicTeams {
		teams = strings.Join(vd.Identity.Teams, ",")
	}
	return teams, vd.rec.scopesHeader, vd.rec.expiresHeader
}

// Decide is Verify filling in vd, which must be zero, instead of returning
// the identity: it also tells the transport the token's budget key and
// header values, and a verification copies nothing it does not need to.
func (v *Verifier) Decide(ctx context.Context, value string, vd *Verdict) {
	if value == "" {
		vd.Reason = ReasonMissing
		return
	}
	typ, err := v.Format.Parse(value)
	if err != nil {
		vd.Reason = ReasonMalformed
		return
	}
	if v.Index == nil {
		vd.Reason = ReasonUnknown
		return
	}
	sum := token.SumOf(value)
	r, ok := v.Index.lookup(&sum)
	if !ok || !token.SumsEqual(&sum, &r.sum) {
		vd.Reason = ReasonUnknown
		return
	}
	e := &r.entry
	// The type letter is covered by the digest, so a mismatch means the
	// value was issued wrongly or the status was edited by hand. Either way
	// it is not a token of this ApiToken's type, and saying more would only
	// help whoever crafted it.
	if typ != e.Type {
		vd.Reason = ReasonUnknown
		return
	}
	now := v.now()
	if reason := refusal(e, now); reason != "" {
		vd.Reason = reason
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
		vd.Reason = ReasonUnavailable
		return
	}
	if reason != "" {
		vd.Reason = reason
		return
	}
	// Everything here is shared with the record rather than copied; see
	// Identity.
	vd.Identity = Identity{
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
		vd.Identity.Creator = e.Creator.Username
	}
	vd.rec, vd.At = r, now
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
	teams, needAdmin := authz.WildcardTeams(r.spec, e.IssuedAt, e.Creator, snap.ByName, snap.Names, admin)
	if needAdmin {
		if admin, err = v.isAdmin(ctx, e.Creator); err != nil {
			return nil, "", err
		}
		teams, _ = authz.WildcardTeams(r.spec, e.IssuedAt, e.Creator, snap.ByName, snap.Names, admin)
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
