package controllers

import (
	"errors"
	"fmt"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/lifecycle"
)

// computeStatus is the status a reconcile leaves, derived from what it
// decided (the scope) and how it ended (err): the only place that makes
// status. A reconcile that finished, or that stopped for good on a spec it
// cannot read (reconcile.TerminalError), records everything it decided,
// observedGeneration included. Any other failure decided nothing the
// status may claim: it leaves the status as last written, Ready and
// observedGeneration included, and says why in the Reconciled condition.
func computeStatus(s *apiTokenScope, err error) v1alpha1.ApiTokenStatus {
	st := *s.base.Status.DeepCopy()
	set := func(conditionType string, isTrue bool, reason, message string) {
		setCondition(&st, conditionType, isTrue, reason, message, s.token.Generation, s.now)
	}
	if err != nil && !errors.Is(err, reconcile.TerminalError(nil)) {
		// Capped as an Event's note is: an API error may quote a whole object.
		set(v1alpha1.ReconciledCondition, false, v1alpha1.ReasonReconcileError, shorten(err.Error(), maxNote))
		return st
	}

	st.Creator = s.creator
	if s.secretName != "" {
		st.SecretRef = &v1alpha1.SecretReference{Name: s.secretName}
	}
	if v := s.issued; v != nil {
		issuedAt := metav1.NewTime(v.at)
		st.TokenHash, st.TokenPrefix, st.IssuedAt, st.Recreate = v.hash, v.prefix, &issuedAt, v.recreate
	}
	st.Previous = s.previousValue()

	o := s.outcome
	if o.phase == "" {
		o = outcome{phase: v1alpha1.PhasePending, reason: v1alpha1.ReasonPending, message: "no value has been delivered yet"}
	}
	// Before the phase changes: what is recorded depends on what it was,
	// and a lifetime counts from the issuance just recorded.
	at := lifecycle.StatusExpiresAt(lifecycle.Input{Spec: &s.token.Spec, Status: &st, Now: s.now, Lifetime: s.lifetime}, o.phase)
	st.ExpiresAt = nil
	if at != nil {
		expiresAt := metav1.NewTime(*at)
		st.ExpiresAt = &expiresAt
	}
	st.Phase = o.phase
	st.ObservedGeneration = s.token.Generation
	set(v1alpha1.ReadyCondition, o.phase == v1alpha1.PhaseActive, o.reason, o.message)
	if err == nil {
		set(v1alpha1.ReconciledCondition, true, v1alpha1.ReasonReconciled, "the last reconcile finished")
		return st
	}
	// Only a spec that cannot be read ends a reconcile for good.
	message := err.Error()
	if s.invalidSpec != nil {
		message = s.invalidSpec.Error()
	}
	set(v1alpha1.ReconciledCondition, false, v1alpha1.ReasonInvalidSpec, shorten(message, maxNote))
	return st
}

// setCondition sets the condition of type conditionType in st; a change of
// its status is dated now, the reconcile's instant.
func setCondition(st *v1alpha1.ApiTokenStatus, conditionType string, isTrue bool, reason, message string, generation int64, now time.Time) {
	status := metav1.ConditionFalse
	if isTrue {
		status = metav1.ConditionTrue
	}
	apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type:               conditionType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
		LastTransitionTime: metav1.NewTime(now),
	})
}

// previousValue is what status.previous becomes: nothing once dropped,
// what an issuance decided, else what is recorded.
func (s *apiTokenScope) previousValue() *v1alpha1.PreviousToken {
	switch {
	case s.dropPrevious:
		return nil
	case s.issued != nil:
		return s.issued.previous
	}
	return s.base.Status.Previous
}

// activeOutcome is the outcome of a token that holds a value: Active, or
// Disabled when spec.disabled is set.
func activeOutcome(tok *v1alpha1.ApiToken) outcome {
	if tok.Spec.Disabled {
		return outcome{phase: v1alpha1.PhaseDisabled, reason: v1alpha1.ReasonDisabled,
			message: "spec.disabled is set: the value is kept but refused"}
	}
	return outcome{phase: v1alpha1.PhaseActive, reason: v1alpha1.ReasonIssued, message: "the value in the Secret verifies"}
}

// expiredOutcome is the outcome of a token whose value expired (reason
// Expired), or that was asked for a new value that would be born expired
// (ExpiresAtPassed).
func expiredOutcome(s *apiTokenScope, reason lifecycle.Reason) outcome {
	if reason == lifecycle.ExpiresAtPassed {
		at := s.token.Spec.ExpiresAt.UTC().Format(time.RFC3339)
		message := fmt.Sprintf("spec.expiresAt %s has passed, so spec.recreate=%d issues no value: set a new expiresAt or lifetime to recreate", at, s.token.Spec.Recreate)
		if s.token.Status.TokenHash == "" {
			message = fmt.Sprintf("spec.expiresAt %s had passed before any value was issued: set a new expiresAt or lifetime to issue one", at)
		}
		return outcome{phase: v1alpha1.PhaseExpired, reason: v1alpha1.ReasonExpiresAtPassed, message: message}
	}
	message := "the value expired"
	if at := lifecycle.StatusExpiresAt(s.input(), v1alpha1.PhaseExpired); at != nil {
		message += " at " + at.UTC().Format(time.RFC3339)
	}
	return outcome{phase: v1alpha1.PhaseExpired, reason: v1alpha1.ReasonExpired, message: message}
}

// readyOf is the outcome tok's status already records, as phase.
func readyOf(tok *v1alpha1.ApiToken, phase v1alpha1.ApiTokenPhase) outcome {
	o := outcome{phase: phase}
	if ready := apimeta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ReadyCondition); ready != nil {
		o.reason, o.message = ready.Reason, ready.Message
	}
	return o
}

// readyMessage is the message of tok's Ready condition, or "".
func readyMessage(tok *v1alpha1.ApiToken) string {
	if ready := apimeta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ReadyCondition); ready != nil {
		return ready.Message
	}
	return ""
}

// readyReason is the reason of tok's Ready condition, or "".
func readyReason(tok *v1alpha1.ApiToken) string {
	if ready := apimeta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ReadyCondition); ready != nil {
		return ready.Reason
	}
	return ""
}
