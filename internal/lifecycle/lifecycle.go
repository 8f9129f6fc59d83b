// Package lifecycle decides what must happen to a token's value: keep it,
// issue a new one (and why), or withdraw it. The decisions are pure
// functions of the spec, the status, what the Secret holds and the time, so
// they are table-tested without a cluster; the ApiToken reconciler carries
// them out.
package lifecycle

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// SecretState is what the delivered Secret holds, relative to the status.
type SecretState int

const (
	// SecretMissing means there is no Secret of that name.
	SecretMissing SecretState = iota
	// SecretEmpty means the operator's Secret holds no value.
	SecretEmpty
	// SecretMatches means the operator's Secret holds the value whose
	// digest is status.tokenHash.
	SecretMatches
	// SecretMismatch means the operator's Secret holds some other value:
	// it was tampered with, and the value is never trusted.
	SecretMismatch
	// SecretForeign means a Secret of that name exists that the operator
	// does not control; it is never touched.
	SecretForeign
	// SecretPrevious means the operator's Secret still holds the value a
	// rotation is replacing (status.previous): the rotation was interrupted
	// between its status write and its Secret write.
	SecretPrevious
)

// Action is what to do with the value.
type Action string

const (
	// Keep leaves the value as it is.
	Keep Action = "Keep"
	// Issue delivers a new value.
	Issue Action = "Issue"
	// Withdraw removes the value from the Secret.
	Withdraw Action = "Withdraw"
	// Conflict leaves a foreign Secret alone and reports it.
	Conflict Action = "Conflict"
)

// Reason says why an Issue or Withdraw decision was made.
type Reason string

const (
	// FirstIssue: no value was ever issued.
	FirstIssue Reason = "FirstIssue"
	// Recreate: spec.recreate changed.
	Recreate Reason = "Recreate"
	// Renew: the value is within rotation.renewBefore of its expiry.
	Renew Reason = "Renew"
	// SecretGone: the Secret, or the value in it, is gone.
	SecretGone Reason = "SecretMissing"
	// SecretTampered: the Secret holds a value that is not the issued one.
	SecretTampered Reason = "SecretTampered"
	// ResumeRotation: a rotation was interrupted before its value reached
	// the Secret; a new value finishes it, and the overlap continues.
	ResumeRotation Reason = "ResumeRotation"
	// Expired: the expiry instant has passed.
	Expired Reason = "Expired"
	// ExpiresAtPassed: a new value is wanted (FirstIssue or Recreate) but
	// the fixed spec.expiresAt has passed: the value would be born expired,
	// so none is issued until the expiry moves into the future.
	ExpiresAtPassed Reason = "ExpiresAtPassed"
)

// Input is everything a decision depends on.
type Input struct {
	Spec   *v1alpha1.ApiTokenSpec
	Status *v1alpha1.ApiTokenStatus
	Secret SecretState
	Now    time.Time
	// Lifetime is spec.lifetime parsed; nil when unset.
	Lifetime *time.Duration
	// RenewBefore is spec.rotation.renewBefore parsed; nil when unset.
	RenewBefore *time.Duration
}

// Decision is what to do, and why.
type Decision struct {
	Action Action
	Reason Reason
}

// Decide returns what must happen to the value. Entitlement and policy are
// decided before (authz): this only concerns a token that may hold a value.
func Decide(in Input) Decision {
	if StaysExpired(in) {
		if in.Secret == SecretForeign {
			// Nothing is to be delivered, so nothing conflicts.
			return Decision{Action: Keep, Reason: Expired}
		}
		return withdrawOrKeep(in, Expired)
	}
	if in.Secret == SecretForeign {
		return Decision{Action: Conflict}
	}
	if reason := newValueWanted(in); reason != "" {
		// A value that would be born expired is not issued at all.
		if in.Spec.ExpiresAt != nil && !in.Now.Before(in.Spec.ExpiresAt.Time) {
			return withdrawOrKeep(in, ExpiresAtPassed)
		}
		return Decision{Action: Issue, Reason: reason}
	}
	if expiresAt := ExpiresAt(in.Spec, in.Status.IssuedAt, in.Lifetime); expiresAt != nil {
		if renewAt := RenewAt(*expiresAt, in.Status.IssuedAt, in.RenewBefore); renewAt != nil && !in.Now.Before(*renewAt) {
			return Decision{Action: Issue, Reason: Renew}
		}
		if !in.Now.Before(*expiresAt) {
			return withdrawOrKeep(in, Expired)
		}
	}
	switch in.Secret {
	case SecretMissing, SecretEmpty:
		return Decision{Action: Issue, Reason: SecretGone}
	case SecretMismatch:
		return Decision{Action: Issue, Reason: SecretTampered}
	case SecretPrevious:
		return Decision{Action: Issue, Reason: ResumeRotation}
	}
	return Decision{Action: Keep}
}

// StaysExpired says whether in's token stays Expired: its value expired and
// was withdrawn, and no recreate has asked for a new one since. Moving the
// expiry into the future does not bring the value back, and issuing a new
// one unasked would hand out a value nobody recreated: only a recreate does
// that. Nor may anything else end it: a spec the operator cannot read, a
// team policy the token would break or a foreign Secret under its Secret's
// name concern only a value it holds or is about to be given, and a token
// turned Failed by one of them would, once it was gone, no longer be known
// to have expired.
func StaysExpired(in Input) bool {
	return in.Status.Phase == v1alpha1.PhaseExpired && newValueWanted(in) == ""
}

// newValueWanted says why a new value is wanted regardless of the current
// one, or "".
func newValueWanted(in Input) Reason {
	switch {
	case in.Status.TokenHash == "":
		// Also a token whose expiresAt had passed before its first value:
		// nothing was withdrawn, so a new expiresAt issues one.
		return FirstIssue
	case in.Spec.Recreate != in.Status.Recreate:
		return Recreate
	}
	return ""
}

// withdrawOrKeep withdraws a value only if the Secret still holds one.
func withdrawOrKeep(in Input, reason Reason) Decision {
	if in.Secret == SecretMissing || in.Secret == SecretEmpty {
		return Decision{Action: Keep, Reason: reason}
	}
	return Decision{Action: Withdraw, Reason: reason}
}

// ExpiresAt is when a value issued at issuedAt stops verifying: the fixed
// spec.expiresAt, else issuedAt plus the lifetime, else never (nil). It
// reads the spec as it is now, so an edit of either field applies to the
// value already issued: a lifetime counts from the issuance of the current
// value, whenever it was changed.
func ExpiresAt(spec *v1alpha1.ApiTokenSpec, issuedAt *metav1.Time, lifetime *time.Duration) *time.Time {
	switch {
	case spec.ExpiresAt != nil:
		t := spec.ExpiresAt.Time
		return &t
	case lifetime != nil && issuedAt != nil:
		t := issuedAt.Add(*lifetime)
		return &t
	}
	return nil
}

// RenewAt is when a value expiring at expiresAt is renewed, or nil when it
// is not. A renewBefore as long as the lifetime would renew at once, again
// and again, so it disables renewal instead.
func RenewAt(expiresAt time.Time, issuedAt *metav1.Time, renewBefore *time.Duration) *time.Time {
	if renewBefore == nil || issuedAt == nil {
		return nil
	}
	at := expiresAt.Add(-*renewBefore)
	if !at.After(issuedAt.Time) {
		return nil
	}
	return &at
}

// NextWakeup is how long until the next instant at which Decide, or the end
// of a rotation overlap, changes its answer without any event; 0 means none
// is scheduled.
func NextWakeup(in Input) time.Duration {
	var next *time.Time
	consider := func(t *time.Time) {
		if t != nil && t.After(in.Now) && (next == nil || t.Before(*next)) {
			next = t
		}
	}
	if HoldsValue(in.Status.Phase) {
		if expiresAt := ExpiresAt(in.Spec, in.Status.IssuedAt, in.Lifetime); expiresAt != nil {
			consider(expiresAt)
			consider(RenewAt(*expiresAt, in.Status.IssuedAt, in.RenewBefore))
		}
	}
	if in.Status.Previous != nil {
		t := in.Status.Previous.ExpiresAt.Time
		consider(&t)
	}
	if next == nil {
		return 0
	}
	return next.Sub(in.Now)
}

// StatusExpiresAt is what status.expiresAt records once a reconcile has
// decided on phase, given the status recorded so far (in.Status): while a
// value is held (Active, Disabled), the expiry the spec gives it now, so
// that an edit of spec.expiresAt or spec.lifetime shows at once; when the
// value expires, the instant it expired; afterwards, and in every other
// phase, the instant as recorded, which later edits no longer move because
// the value is gone.
func StatusExpiresAt(in Input, phase v1alpha1.ApiTokenPhase) *time.Time {
	switch {
	case HoldsValue(phase), phase == v1alpha1.PhaseExpired && HoldsValue(in.Status.Phase):
		return ExpiresAt(in.Spec, in.Status.IssuedAt, in.Lifetime)
	case in.Status.ExpiresAt != nil:
		t := in.Status.ExpiresAt.Time
		return &t
	}
	return nil
}

// holdsValue reports whether a token in phase has a value in its Secret.
func HoldsValue(phase v1alpha1.ApiTokenPhase) bool {
	return phase == v1alpha1.PhaseActive || phase == v1alpha1.PhaseDisabled
}

// SecretName is the Secret tok's value is delivered to: spec.secretName,
// or the token's own name.
func SecretName(tok *v1alpha1.ApiToken) string {
	if tok.Spec.SecretName != "" {
		return tok.Spec.SecretName
	}
	return tok.Name
}
