package lifecycle

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

var (
	t0   = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	hash = "sha256:" + "ab"
)

func at(d time.Duration) *metav1.Time {
	t := metav1.NewTime(t0.Add(d))
	return &t
}

func dur(d time.Duration) *time.Duration { return &d }

// issued is the status of a token issued at t0.
func issued(phase v1alpha1.ApiTokenPhase) *v1alpha1.ApiTokenStatus {
	return &v1alpha1.ApiTokenStatus{Phase: phase, TokenHash: hash, IssuedAt: at(0)}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want Decision
	}{
		{"a new token is issued",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: &v1alpha1.ApiTokenStatus{}, Secret: SecretMissing, Now: t0},
			Decision{Issue, FirstIssue}},
		{"a foreign Secret is a conflict before anything else",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: &v1alpha1.ApiTokenStatus{}, Secret: SecretForeign, Now: t0},
			Decision{Action: Conflict}},
		{"a new token whose fixed expiry has passed is never issued",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(-time.Second)}, Status: &v1alpha1.ApiTokenStatus{}, Secret: SecretMissing, Now: t0},
			Decision{Keep, Expired}},
		{"the issued value in its Secret is kept",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0.Add(time.Hour)},
			Decision{Action: Keep}},
		{"a bumped recreate counter issues a new value",
			Input{Spec: &v1alpha1.ApiTokenSpec{Recreate: 1}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0},
			Decision{Issue, Recreate}},
		{"a recreate revives an invalidated token's issuance",
			Input{Spec: &v1alpha1.ApiTokenSpec{Recreate: 2}, Status: issued(v1alpha1.PhaseInvalidated), Secret: SecretEmpty, Now: t0},
			Decision{Issue, Recreate}},
		{"a deleted Secret gets a fresh value",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMissing, Now: t0},
			Decision{Issue, SecretGone}},
		{"an emptied Secret gets a fresh value",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Secret: SecretEmpty, Now: t0},
			Decision{Issue, SecretGone}},
		{"a tampered Secret gets a fresh value, never adopted",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMismatch, Now: t0},
			Decision{Issue, SecretTampered}},
		{"a rotation interrupted before its Secret write is resumed",
			Input{Spec: &v1alpha1.ApiTokenSpec{Recreate: 1}, Status: &v1alpha1.ApiTokenStatus{Phase: v1alpha1.PhaseActive, TokenHash: hash, IssuedAt: at(0), Recreate: 1}, Secret: SecretPrevious, Now: t0},
			Decision{Issue, ResumeRotation}},
		{"a disabled token keeps its value",
			Input{Spec: &v1alpha1.ApiTokenSpec{Disabled: true}, Status: issued(v1alpha1.PhaseDisabled), Secret: SecretMatches, Now: t0},
			Decision{Action: Keep}},
		{"one second before its lifetime ends the value stays",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0.Add(time.Hour - time.Second), Lifetime: dur(time.Hour)},
			Decision{Action: Keep}},
		{"at the instant its lifetime ends the value is withdrawn",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0.Add(time.Hour), Lifetime: dur(time.Hour)},
			Decision{Withdraw, Expired}},
		{"a fixed expiresAt withdraws at that instant",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(time.Minute)}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0.Add(time.Minute)},
			Decision{Withdraw, Expired}},
		{"an expired token whose value is gone stays expired",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseExpired), Secret: SecretEmpty, Now: t0.Add(2 * time.Hour), Lifetime: dur(time.Hour)},
			Decision{Keep, Expired}},
		{"an expired token whose lifetime was extended is issued again",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseExpired), Secret: SecretEmpty, Now: t0.Add(2 * time.Hour), Lifetime: dur(3 * time.Hour)},
			Decision{Issue, Reissue}},
		{"renewBefore renews inside the window",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0.Add(23 * time.Hour), Lifetime: dur(24 * time.Hour), RenewBefore: dur(time.Hour)},
			Decision{Issue, Renew}},
		{"renewBefore waits outside the window",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0.Add(23*time.Hour - time.Second), Lifetime: dur(24 * time.Hour), RenewBefore: dur(time.Hour)},
			Decision{Action: Keep}},
		{"renewBefore renews an expired value the operator missed",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0.Add(48 * time.Hour), Lifetime: dur(24 * time.Hour), RenewBefore: dur(time.Hour)},
			Decision{Issue, Renew}},
		{"renewBefore as long as the lifetime is ignored, not a renewal loop",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0.Add(time.Minute), Lifetime: dur(time.Hour), RenewBefore: dur(time.Hour)},
			Decision{Action: Keep}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(Decide(tt.in)).To(Equal(tt.want))
		})
	}
}

func TestNextWakeup(t *testing.T) {
	withPrevious := issued(v1alpha1.PhaseActive)
	withPrevious.Previous = &v1alpha1.PreviousToken{TokenHash: hash, ExpiresAt: *at(10 * time.Minute)}
	tests := []struct {
		name string
		in   Input
		want time.Duration
	}{
		{"a token that never expires needs no wake-up",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Now: t0}, 0},
		{"wakes exactly at expiry",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Now: t0.Add(time.Minute), Lifetime: dur(time.Hour)}, 59 * time.Minute},
		{"wakes at the renewal instant before expiry",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Now: t0, Lifetime: dur(24 * time.Hour), RenewBefore: dur(4 * time.Hour)}, 20 * time.Hour},
		{"wakes at the end of an overlap before anything else",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: withPrevious, Now: t0, Lifetime: dur(time.Hour)}, 10 * time.Minute},
		{"a disabled token still expires on time",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(time.Hour)}, Status: issued(v1alpha1.PhaseDisabled), Now: t0}, time.Hour},
		{"an expired token has nothing left to wait for",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(time.Hour)}, Status: issued(v1alpha1.PhaseExpired), Now: t0.Add(2 * time.Hour)}, 0},
		{"an instant already past is not a wake-up (no tight loop)",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(-time.Hour)}, Status: issued(v1alpha1.PhaseActive), Now: t0}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(NextWakeup(tt.in)).To(Equal(tt.want))
		})
	}
}
