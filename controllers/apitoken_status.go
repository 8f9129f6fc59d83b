package controllers

import (
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// setStatus writes the phase, the Ready condition and observedGeneration
// from what the reconcile decided. Nothing else sets them.
func setStatus(s *apiTokenScope) {
	o := s.outcome
	if o.phase == "" {
		o = outcome{phase: v1alpha1.PhasePending, reason: v1alpha1.ReasonPending, message: "no value has been delivered yet"}
	}
	st := &s.token.Status
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

// readyOf is the outcome tok's status already records, as phase.
func readyOf(tok *v1alpha1.ApiToken, phase v1alpha1.ApiTokenPhase) outcome {
	o := outcome{phase: phase}
	if ready := apimeta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ReadyCondition); ready != nil {
		o.reason, o.message = ready.Reason, ready.Message
	}
	return o
}

// readyReason is the reason of tok's Ready condition, or "".
func readyReason(tok *v1alpha1.ApiToken) string {
	if ready := apimeta.FindStatusCondition(tok.Status.Conditions, v1alpha1.ReadyCondition); ready != nil {
		return ready.Reason
	}
	return ""
}
