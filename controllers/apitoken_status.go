package controllers

import (
	"fmt"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/lifecycle"
)

// setStatus writes the phase, the Ready condition, observedGeneration and
// expiresAt from what the reconcile decided. Nothing else sets them.
func setStatus(s *apiTokenScope) {
	o := s.outcome
	if o.phase == "" {
		o = outcome{phase: v1alpha1.PhasePending, reason: v1alpha1.ReasonPending, message: "no value has been delivered yet"}
	}
	st := &s.token.Status
	// Before the phase changes: what is recorded depends on what it was.
	at := lifecycle.StatusExpiresAt(s.input(), o.phase)
	st.ExpiresAt = nil
	if at != nil {
		expiresAt := metav1.NewTime(*at)
		st.ExpiresAt = &expiresAt
	}
	st.Phase = o.phase
	st.ObservedGeneration = s.token.Generation
	status := metav1.ConditionFalse
	if o.phase == v1alpha1.PhaseActive {
		status = metav1.ConditionTrue
	}
	apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type:               v1alpha1.ReadyCondition,
		Status:             status,
		Reason:             o.reason,
		Message:            o.message,
		ObservedGeneration: s.token.Generation,
	})
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
