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
		{"an expired token with a foreign Secret of its name stays expired: nothing is to be delivered",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(time.Hour)}, Status: issued(v1alpha1.PhaseExpired), Secret: SecretForeign, Now: t0},
			Decision{Keep, Expired}},
		{"an expired token recreated into a foreign Secret's name is a conflict",
			Input{Spec: &v1alpha1.ApiTokenSpec{Recreate: 1}, Status: issued(v1alpha1.PhaseExpired), Secret: SecretForeign, Now: t0},
			Decision{Action: Conflict}},
		{"a new token whose fixed expiry has passed is never issued",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(-time.Second)}, Status: &v1alpha1.ApiTokenStatus{}, Secret: SecretMissing, Now: t0},
			Decision{Keep, ExpiresAtPassed}},
		{"a token never issued for its past expiresAt is issued once expiresAt is in the future",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(time.Hour)}, Status: &v1alpha1.ApiTokenStatus{Phase: v1alpha1.PhaseExpired}, Secret: SecretMissing, Now: t0},
			Decision{Issue, FirstIssue}},
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
		{"an expired token whose lifetime was extended stays expired: its value is gone",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseExpired), Secret: SecretEmpty, Now: t0.Add(2 * time.Hour), Lifetime: dur(3 * time.Hour)},
			Decision{Keep, Expired}},
		{"an expired token whose expiresAt moved into the future stays expired",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(3 * time.Hour)}, Status: issued(v1alpha1.PhaseExpired), Secret: SecretEmpty, Now: t0.Add(2 * time.Hour)},
			Decision{Keep, Expired}},
		{"an expired token whose expiresAt was removed stays expired",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseExpired), Secret: SecretEmpty, Now: t0.Add(2 * time.Hour)},
			Decision{Keep, Expired}},
		{"an expired token whose Secret lost its value is not repaired",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseExpired), Secret: SecretMissing, Now: t0.Add(2 * time.Hour)},
			Decision{Keep, Expired}},
		{"an expiry recorded before the value left the Secret withdraws it, whatever the spec says now",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(3 * time.Hour)}, Status: issued(v1alpha1.PhaseExpired), Secret: SecretMatches, Now: t0.Add(2 * time.Hour)},
			Decision{Withdraw, Expired}},
		{"a recreate of an expired token with a lifetime issues a new value",
			Input{Spec: &v1alpha1.ApiTokenSpec{Recreate: 1}, Status: issued(v1alpha1.PhaseExpired), Secret: SecretEmpty, Now: t0.Add(2 * time.Hour), Lifetime: dur(time.Hour)},
			Decision{Issue, Recreate}},
		{"a recreate of an expired token whose fixed expiresAt has passed issues nothing",
			Input{Spec: &v1alpha1.ApiTokenSpec{Recreate: 1, ExpiresAt: at(time.Hour)}, Status: issued(v1alpha1.PhaseExpired), Secret: SecretEmpty, Now: t0.Add(2 * time.Hour)},
			Decision{Keep, ExpiresAtPassed}},
		{"a recreate with a new expiresAt in the future issues a new value",
			Input{Spec: &v1alpha1.ApiTokenSpec{Recreate: 1, ExpiresAt: at(3 * time.Hour)}, Status: issued(v1alpha1.PhaseExpired), Secret: SecretEmpty, Now: t0.Add(2 * time.Hour)},
			Decision{Issue, Recreate}},
		{"a recreate of an active token whose fixed expiresAt just passed withdraws it",
			Input{Spec: &v1alpha1.ApiTokenSpec{Recreate: 1, ExpiresAt: at(time.Hour)}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0.Add(time.Hour)},
			Decision{Withdraw, ExpiresAtPassed}},
		{"an extended expiresAt keeps the value: no new one is issued",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(3 * time.Hour)}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0.Add(2 * time.Hour)},
			Decision{Action: Keep}},
		{"a removed expiresAt keeps the value",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0.Add(2 * time.Hour)},
			Decision{Action: Keep}},
		{"a shortened expiresAt already past withdraws the value",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(time.Hour)}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0.Add(2 * time.Hour)},
			Decision{Withdraw, Expired}},
		{"a lifetime lengthened past now keeps the value",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0.Add(2 * time.Hour), Lifetime: dur(3 * time.Hour)},
			Decision{Action: Keep}},
		{"a lifetime shortened to before now withdraws the value: it counts from issuedAt",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Secret: SecretMatches, Now: t0.Add(2 * time.Hour), Lifetime: dur(time.Hour)},
			Decision{Withdraw, Expired}},
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

// withExpiry records expiresAt d after t0 in status, as an earlier
// reconcile would have.
func withExpiry(status *v1alpha1.ApiTokenStatus, d time.Duration) *v1alpha1.ApiTokenStatus {
	status.ExpiresAt = at(d)
	return status
}

func TestStatusExpiresAt(t *testing.T) {
	tests := []struct {
		name  string
		in    Input
		phase v1alpha1.ApiTokenPhase
		want  *metav1.Time
	}{
		{"a token that never expires records none",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive)}, v1alpha1.PhaseActive, nil},
		{"a lifetime counts from the issuance",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: issued(v1alpha1.PhaseActive), Lifetime: dur(time.Hour)}, v1alpha1.PhaseActive, at(time.Hour)},
		{"an extended expiresAt is recorded at once",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(3 * time.Hour)}, Status: withExpiry(issued(v1alpha1.PhaseActive), time.Hour)}, v1alpha1.PhaseActive, at(3 * time.Hour)},
		{"a shortened expiresAt is recorded at once",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(10 * time.Minute)}, Status: withExpiry(issued(v1alpha1.PhaseActive), time.Hour)}, v1alpha1.PhaseActive, at(10 * time.Minute)},
		{"a removed expiresAt clears the record",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: withExpiry(issued(v1alpha1.PhaseActive), time.Hour)}, v1alpha1.PhaseActive, nil},
		{"a changed lifetime counts from issuedAt, not from the change",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: withExpiry(issued(v1alpha1.PhaseActive), time.Hour), Now: t0.Add(30 * time.Minute), Lifetime: dur(2 * time.Hour)}, v1alpha1.PhaseActive, at(2 * time.Hour)},
		{"lifetime replacing expiresAt counts from issuedAt",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: withExpiry(issued(v1alpha1.PhaseActive), 5*time.Hour), Lifetime: dur(time.Hour)}, v1alpha1.PhaseActive, at(time.Hour)},
		{"a disabled token's expiry follows edits too",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(3 * time.Hour)}, Status: withExpiry(issued(v1alpha1.PhaseDisabled), time.Hour)}, v1alpha1.PhaseDisabled, at(3 * time.Hour)},
		{"expiring records the instant the value expired",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(30 * time.Minute)}, Status: withExpiry(issued(v1alpha1.PhaseActive), time.Hour)}, v1alpha1.PhaseExpired, at(30 * time.Minute)},
		{"an expired token keeps the instant it expired, whatever the spec says later",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(5 * time.Hour)}, Status: withExpiry(issued(v1alpha1.PhaseExpired), time.Hour)}, v1alpha1.PhaseExpired, at(time.Hour)},
		{"a token never issued records no expiry",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(-time.Hour)}, Status: &v1alpha1.ApiTokenStatus{}}, v1alpha1.PhaseExpired, nil},
		{"an invalidated token keeps its record",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: withExpiry(issued(v1alpha1.PhaseActive), time.Hour)}, v1alpha1.PhaseInvalidated, at(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got := StatusExpiresAt(tt.in, tt.phase)
			if tt.want == nil {
				g.Expect(got).To(BeNil())
				return
			}
			g.Expect(got).NotTo(BeNil())
			g.Expect(*got).To(BeTemporally("==", tt.want.Time))
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
		{"an extended expiresAt moves the wake-up to the new instant",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(3 * time.Hour)}, Status: withExpiry(issued(v1alpha1.PhaseActive), time.Hour), Now: t0}, 3 * time.Hour},
		{"a shortened expiresAt moves the wake-up earlier",
			Input{Spec: &v1alpha1.ApiTokenSpec{ExpiresAt: at(10 * time.Minute)}, Status: withExpiry(issued(v1alpha1.PhaseActive), time.Hour), Now: t0}, 10 * time.Minute},
		{"a removed expiresAt cancels the wake-up",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: withExpiry(issued(v1alpha1.PhaseActive), time.Hour), Now: t0}, 0},
		{"a changed lifetime wakes at issuedAt plus the new lifetime",
			Input{Spec: &v1alpha1.ApiTokenSpec{}, Status: withExpiry(issued(v1alpha1.PhaseActive), time.Hour), Now: t0.Add(30 * time.Minute), Lifetime: dur(2 * time.Hour)}, 90 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(NextWakeup(tt.in)).To(Equal(tt.want))
		})
	}
}

func TestSecretName(t *testing.T) {
	g := NewWithT(t)
	tok := &v1alpha1.ApiToken{}
	tok.Name = "ci"
	g.Expect(SecretName(tok)).To(Equal("ci"), "the token's own name by default")
	tok.Spec.SecretName = "ci-credentials"
	g.Expect(SecretName(tok)).To(Equal("ci-credentials"))
}
