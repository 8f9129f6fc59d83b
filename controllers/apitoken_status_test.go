package controllers

import (
	"errors"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// TestComputeStatus: the whole status follows from what the reconcile
// decided and how it ended, and from nothing else. A failure moves nothing
// but the Reconciled condition; an invalid spec is a decision like any
// other, recorded in full.
func TestComputeStatus(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	earlier := metav1.NewTime(now.Add(-time.Hour))
	hour := time.Hour
	const (
		oldHash = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
		newHash = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	)
	jane := &v1alpha1.UserIdentity{Username: "jane"}
	condition := func(conditionType string, status metav1.ConditionStatus, reason, message string, generation int64, at metav1.Time) metav1.Condition {
		return metav1.Condition{Type: conditionType, Status: status, Reason: reason, Message: message, ObservedGeneration: generation, LastTransitionTime: at}
	}
	// active is the status an earlier reconcile of generation 1 wrote: a
	// value issued an hour ago, Ready, reconciled.
	active := func() v1alpha1.ApiTokenStatus {
		return v1alpha1.ApiTokenStatus{
			Phase: v1alpha1.PhaseActive, ObservedGeneration: 1,
			TokenHash: oldHash, TokenPrefix: "twt_old", IssuedAt: &earlier, Creator: jane,
			SecretRef: &v1alpha1.SecretReference{Name: "ci"},
			Conditions: []metav1.Condition{
				condition(v1alpha1.ReadyCondition, metav1.ConditionTrue, v1alpha1.ReasonIssued, "the value in the Secret verifies", 1, earlier),
				condition(v1alpha1.ReconciledCondition, metav1.ConditionTrue, v1alpha1.ReasonReconciled, "the last reconcile finished", 1, earlier),
			},
		}
	}
	withPrevious := func(st v1alpha1.ApiTokenStatus) v1alpha1.ApiTokenStatus {
		st.Previous = &v1alpha1.PreviousToken{TokenHash: newHash, ExpiresAt: metav1.NewTime(now.Add(time.Minute))}
		return st
	}
	// find is the condition of type conditionType in st, zero if none.
	find := func(st v1alpha1.ApiTokenStatus, conditionType string) metav1.Condition {
		if c := apimeta.FindStatusCondition(st.Conditions, conditionType); c != nil {
			return *c
		}
		return metav1.Condition{}
	}
	invalid := errors.New(`spec.lifetime: invalid duration "99999d999999h": too large`)

	tests := []struct {
		name string
		// recorded is the status as last written; the token is at
		// generation 2.
		recorded v1alpha1.ApiTokenStatus
		// scope sets what the reconcile decided.
		scope func(s *apiTokenScope)
		err   error
		check func(g Gomega, st v1alpha1.ApiTokenStatus)
	}{{
		name:     "nothing decided yet is Pending",
		recorded: v1alpha1.ApiTokenStatus{},
		scope:    func(s *apiTokenScope) { s.creator = jane },
		check: func(g Gomega, st v1alpha1.ApiTokenStatus) {
			g.Expect(st.Phase).To(Equal(v1alpha1.PhasePending))
			g.Expect(st.Creator).To(Equal(jane))
			g.Expect(st.SecretRef).To(BeNil(), "no Secret was looked at")
			g.Expect(find(st, v1alpha1.ReadyCondition)).To(
				Equal(condition(v1alpha1.ReadyCondition, metav1.ConditionFalse, v1alpha1.ReasonPending, "no value has been delivered yet", 2, metav1.NewTime(now))))
		},
	}, {
		name:     "a first issuance records the value, an expiry counted from it, Ready and Reconciled",
		recorded: v1alpha1.ApiTokenStatus{},
		scope: func(s *apiTokenScope) {
			s.creator, s.secretName, s.lifetime = jane, "ci", &hour
			s.issued = &issuedValue{hash: newHash, prefix: "twt_new", at: now, recreate: 3}
			s.outcome = activeOutcome(s.token)
		},
		check: func(g Gomega, st v1alpha1.ApiTokenStatus) {
			g.Expect(st.Phase).To(Equal(v1alpha1.PhaseActive))
			g.Expect(st.ObservedGeneration).To(Equal(int64(2)))
			g.Expect(st.TokenHash).To(Equal(newHash))
			g.Expect(st.TokenPrefix).To(Equal("twt_new"))
			g.Expect(st.IssuedAt.Time).To(Equal(now))
			g.Expect(st.Recreate).To(Equal(int64(3)))
			g.Expect(st.ExpiresAt.Time).To(Equal(now.Add(time.Hour)))
			g.Expect(st.Creator).To(Equal(jane))
			g.Expect(st.SecretRef).To(Equal(&v1alpha1.SecretReference{Name: "ci"}))
			g.Expect(st.Previous).To(BeNil())
			g.Expect(st.Conditions).To(ConsistOf(
				condition(v1alpha1.ReadyCondition, metav1.ConditionTrue, v1alpha1.ReasonIssued, "the value in the Secret verifies", 2, metav1.NewTime(now)),
				condition(v1alpha1.ReconciledCondition, metav1.ConditionTrue, v1alpha1.ReasonReconciled, "the last reconcile finished", 2, metav1.NewTime(now)),
			))
		},
	}, {
		name:     "a rotation records the replaced value as previous",
		recorded: active(),
		scope: func(s *apiTokenScope) {
			s.issued = &issuedValue{hash: newHash, prefix: "twt_new", at: now,
				previous: &v1alpha1.PreviousToken{TokenHash: oldHash, ExpiresAt: metav1.NewTime(now.Add(10 * time.Minute))}}
			s.outcome = activeOutcome(s.token)
		},
		check: func(g Gomega, st v1alpha1.ApiTokenStatus) {
			g.Expect(st.TokenHash).To(Equal(newHash))
			g.Expect(st.Previous).To(Equal(&v1alpha1.PreviousToken{TokenHash: oldHash, ExpiresAt: metav1.NewTime(now.Add(10 * time.Minute))}))
		},
	}, {
		name:     "a previous value nothing was decided about stays",
		recorded: withPrevious(active()),
		scope:    func(s *apiTokenScope) { s.outcome = activeOutcome(s.token) },
		check: func(g Gomega, st v1alpha1.ApiTokenStatus) {
			g.Expect(st.Previous).NotTo(BeNil())
			g.Expect(st.Previous.TokenHash).To(Equal(newHash))
		},
	}, {
		name:     "a previous value whose overlap ended goes",
		recorded: withPrevious(active()),
		scope:    func(s *apiTokenScope) { s.outcome, s.dropPrevious = activeOutcome(s.token), true },
		check:    func(g Gomega, st v1alpha1.ApiTokenStatus) { g.Expect(st.Previous).To(BeNil()) },
	}, {
		name:     "expiring records the instant the value expired, and keeps its digest",
		recorded: active(),
		scope: func(s *apiTokenScope) {
			s.lifetime = &hour
			s.outcome = outcome{phase: v1alpha1.PhaseExpired, reason: v1alpha1.ReasonExpired, message: "the value expired"}
		},
		check: func(g Gomega, st v1alpha1.ApiTokenStatus) {
			g.Expect(st.Phase).To(Equal(v1alpha1.PhaseExpired))
			g.Expect(st.ExpiresAt.Time).To(Equal(earlier.Add(time.Hour)))
			g.Expect(st.TokenHash).To(Equal(oldHash))
			g.Expect(find(st, v1alpha1.ReadyCondition).LastTransitionTime.Time).To(Equal(now),
				"a condition's change is dated by the reconcile's clock")
		},
	}, {
		name:     "a condition that does not change keeps the instant it last changed",
		recorded: active(),
		scope:    func(s *apiTokenScope) { s.outcome = activeOutcome(s.token) },
		check: func(g Gomega, st v1alpha1.ApiTokenStatus) {
			g.Expect(find(st, v1alpha1.ReadyCondition).LastTransitionTime).To(Equal(earlier))
			g.Expect(find(st, v1alpha1.ReconciledCondition).LastTransitionTime).To(Equal(earlier))
			g.Expect(find(st, v1alpha1.ReconciledCondition).ObservedGeneration).To(Equal(int64(2)))
		},
	}, {
		name:     "a failure leaves everything as last written but Reconciled, which says why",
		recorded: active(),
		scope: func(s *apiTokenScope) {
			// Decided before the failure, and not to be believed.
			s.creator, s.secretName = &v1alpha1.UserIdentity{Username: "eve"}, "other"
			s.outcome = outcome{phase: v1alpha1.PhaseDisabled, reason: v1alpha1.ReasonDisabled}
			s.dropPrevious = true
		},
		err: fmt.Errorf("reading Team payments: %w", errors.New("connection refused")),
		check: func(g Gomega, st v1alpha1.ApiTokenStatus) {
			want := active()
			want.Conditions[1] = condition(v1alpha1.ReconciledCondition, metav1.ConditionFalse, v1alpha1.ReasonReconcileError,
				"reading Team payments: connection refused", 2, metav1.NewTime(now))
			g.Expect(st).To(Equal(want), "observedGeneration, phase and Ready stay as last written")
		},
	}, {
		name: "a success after a failure says so",
		recorded: func() v1alpha1.ApiTokenStatus {
			st := active()
			st.Conditions[1] = condition(v1alpha1.ReconciledCondition, metav1.ConditionFalse, v1alpha1.ReasonReconcileError, "boom", 2, earlier)
			return st
		}(),
		scope: func(s *apiTokenScope) { s.outcome = activeOutcome(s.token) },
		check: func(g Gomega, st v1alpha1.ApiTokenStatus) {
			g.Expect(st.ObservedGeneration).To(Equal(int64(2)))
			g.Expect(find(st, v1alpha1.ReconciledCondition)).To(Equal(
				condition(v1alpha1.ReconciledCondition, metav1.ConditionTrue, v1alpha1.ReasonReconciled, "the last reconcile finished", 2, metav1.NewTime(now))))
		},
	}, {
		name:     "a long error is cut to the length of an Event's note",
		recorded: active(),
		err:      errors.New(string(make([]byte, 5000))),
		check: func(g Gomega, st v1alpha1.ApiTokenStatus) {
			g.Expect(find(st, v1alpha1.ReconciledCondition).Message).To(HaveLen(maxNote))
		},
	}, {
		name:     "an invalid spec is decided in full: Failed, InvalidSpec in both conditions, no previous value",
		recorded: withPrevious(active()),
		scope: func(s *apiTokenScope) {
			s.creator, s.secretName = jane, "ci"
			s.invalidSpec = invalid
			s.block(outcome{phase: v1alpha1.PhaseFailed, reason: v1alpha1.ReasonInvalidSpec, message: invalid.Error() + " (no value is held until the spec is fixed)"})
			s.dropPrevious = true
		},
		err: reconcile.TerminalError(invalid),
		check: func(g Gomega, st v1alpha1.ApiTokenStatus) {
			g.Expect(st.Phase).To(Equal(v1alpha1.PhaseFailed))
			g.Expect(st.ObservedGeneration).To(Equal(int64(2)), "a spec found invalid was observed")
			g.Expect(st.TokenHash).To(Equal(oldHash), "the digest of the withdrawn value stays recorded")
			g.Expect(st.Previous).To(BeNil())
			ready := find(st, v1alpha1.ReadyCondition)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonInvalidSpec))
			g.Expect(ready.Message).To(HavePrefix("spec.lifetime: "))
			g.Expect(find(st, v1alpha1.ReconciledCondition)).To(Equal(
				condition(v1alpha1.ReconciledCondition, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, invalid.Error(), 2, metav1.NewTime(now))))
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			tok := &v1alpha1.ApiToken{ObjectMeta: metav1.ObjectMeta{Name: "ci", Namespace: "payments", Generation: 2}, Status: tt.recorded}
			s := &apiTokenScope{token: tok, base: tok.DeepCopy(), now: now}
			if tt.scope != nil {
				tt.scope(s)
			}
			recorded := tok.Status.DeepCopy()
			st := computeStatus(s, tt.err)
			tt.check(g, st)
			g.Expect(tok.Status).To(Equal(*recorded), "computing changes nothing in the scope")
			g.Expect(computeStatus(s, tt.err)).To(Equal(st), "the same scope gives the same status")
		})
	}
}
