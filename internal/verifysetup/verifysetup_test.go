package verifysetup_test

import (
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/token"
	"github.com/tokenwarden/tokenwarden/internal/verify"
)

var seq atomic.Int64

// issued creates a token and records an issued value in its status, as the
// reconciler would (it does not run here), and returns the value.
func issued(opts ...b.ApiTokenOption) (*v1alpha1.ApiToken, string) {
	GinkgoHelper()
	tok := b.ApiToken(fmt.Sprintf("tok-%d", seq.Add(1)), "default", append([]b.ApiTokenOption{b.TeamToken("payments"), b.WithCreator("jane")}, opts...)...)
	Expect(k8sClient.Create(ctx, tok)).To(Succeed())
	value, err := token.Format{Base: token.DefaultBase}.Generate(tok.Spec.Type)
	Expect(err).NotTo(HaveOccurred())
	setStatus(tok, func(st *v1alpha1.ApiTokenStatus) {
		st.Phase = v1alpha1.PhaseActive
		st.TokenHash = token.Hash(value)
		st.IssuedAt = &metav1.Time{Time: time.Now()}
	})
	Eventually(func() string {
		_, reason := server.Verifier.Verify(ctx, value)
		return reason
	}).Should(BeEmpty(), "the index never saw the issued value")
	return tok, value
}

func setStatus(tok *v1alpha1.ApiToken, change func(*v1alpha1.ApiTokenStatus)) {
	GinkgoHelper()
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tok), tok)).To(Succeed())
	base := tok.DeepCopy()
	change(&tok.Status)
	Expect(k8sClient.Status().Patch(ctx, tok, client.MergeFrom(base))).To(Succeed())
}

// setSpec changes tok's spec, as a user or GitOps would.
func setSpec(tok *v1alpha1.ApiToken, change func(*v1alpha1.ApiTokenSpec)) {
	GinkgoHelper()
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tok), tok)).To(Succeed())
	base := tok.DeepCopy()
	change(&tok.Spec)
	Expect(k8sClient.Patch(ctx, tok, client.MergeFrom(base))).To(Succeed())
}

// teamsUpdated reads tokenwarden_verification_teams_updated_timestamp_seconds
// as the metrics endpoint would serve it.
func teamsUpdated() time.Time {
	GinkgoHelper()
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() == "tokenwarden_verification_teams_updated_timestamp_seconds" {
			seconds := f.GetMetric()[0].GetGauge().GetValue()
			return time.Unix(0, int64(seconds*1e9))
		}
	}
	Fail("no tokenwarden_verification_teams_updated_timestamp_seconds series")
	return time.Time{}
}

// answersWithin measures how long after a write the verifier answers value
// with reason, "" meaning it verifies.
func answersWithin(value, reason string, write func()) time.Duration {
	GinkgoHelper()
	start := time.Now()
	write()
	Eventually(func() string {
		_, got := server.Verifier.Verify(ctx, value)
		return got
	}, 2*time.Second, time.Millisecond).Should(Equal(reason))
	return time.Since(start)
}

var _ = Describe("Verification wiring", func() {
	It("verifies an issued value with its identity", func() {
		tok, value := issued(b.WithScopes("orders:read"))
		id, reason := server.Verifier.Verify(ctx, value)
		Expect(reason).To(BeEmpty())
		Expect(id.User).To(Equal("tokenwarden:default:" + tok.Name + ":" + getUID(tok)))
		Expect(id.UID).To(Equal(getUID(tok)))
		Expect(id.Teams).To(Equal([]string{"payments"}))
		Expect(id.Scopes).To(Equal([]string{"orders:read"}))
		Expect(id.Creator).To(Equal("jane"))
	})

	It("refuses within 100 ms of the status change, for every reason the status can give", func() {
		var took []time.Duration
		for phase, reason := range map[v1alpha1.ApiTokenPhase]string{
			v1alpha1.PhaseDisabled:    verify.ReasonDisabled,
			v1alpha1.PhaseInvalidated: verify.ReasonInvalidated,
			v1alpha1.PhaseExpired:     verify.ReasonExpired,
			v1alpha1.PhaseFailed:      verify.ReasonNotActive,
		} {
			tok, value := issued()
			took = append(took, answersWithin(value, reason, func() {
				setStatus(tok, func(st *v1alpha1.ApiTokenStatus) { st.Phase = phase })
			}))
		}
		tok, value := issued()
		took = append(took, answersWithin(value, verify.ReasonUnknown, func() {
			Expect(k8sClient.Delete(ctx, tok)).To(Succeed())
		}))
		tok, value = issued()
		took = append(took, answersWithin(value, verify.ReasonUnknown, func() {
			fresh, err := token.Format{Base: token.DefaultBase}.Generate(v1alpha1.TeamTokenType)
			Expect(err).NotTo(HaveOccurred())
			setStatus(tok, func(st *v1alpha1.ApiTokenStatus) { st.TokenHash = token.Hash(fresh) }) // a recreate
		}))
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		GinkgoWriter.Printf("status write -> refused: min %v, max %v\n", took[0], took[len(took)-1])
		Expect(took[len(took)-1]).To(BeNumerically("<", 100*time.Millisecond), "revocation bound: %v", took)
	})

	It("applies spec edits within 100 ms, with no reconciler running, either way", func() {
		var took []time.Duration
		tok, value := issued()
		took = append(took, answersWithin(value, verify.ReasonDisabled, func() {
			setSpec(tok, func(spec *v1alpha1.ApiTokenSpec) { spec.Disabled = true })
		}))
		tok, value = issued()
		took = append(took, answersWithin(value, verify.ReasonExpired, func() {
			setSpec(tok, func(spec *v1alpha1.ApiTokenSpec) { spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(-time.Second)} })
		}))
		tok, value = issued()
		setStatus(tok, func(st *v1alpha1.ApiTokenStatus) { st.IssuedAt = &metav1.Time{Time: time.Now().Add(-time.Hour)} })
		took = append(took, answersWithin(value, verify.ReasonExpired, func() {
			setSpec(tok, func(spec *v1alpha1.ApiTokenSpec) { spec.Lifetime = new(v1alpha1.Duration("1m")) })
		}))

		// The status still says the old expiry, which has passed: the spec
		// wins, and the token verifies again.
		past := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
		tok, value = issued()
		setStatus(tok, func(st *v1alpha1.ApiTokenStatus) { st.ExpiresAt = &past })
		for _, extend := range []func(*v1alpha1.ApiTokenSpec){
			func(spec *v1alpha1.ApiTokenSpec) { spec.ExpiresAt = &metav1.Time{Time: time.Now().Add(time.Hour)} },
			func(spec *v1alpha1.ApiTokenSpec) { spec.ExpiresAt = nil },
		} {
			setSpec(tok, func(spec *v1alpha1.ApiTokenSpec) { spec.ExpiresAt = &past })
			Eventually(func() string { _, r := server.Verifier.Verify(ctx, value); return r }).Should(Equal(verify.ReasonExpired))
			took = append(took, answersWithin(value, "", func() { setSpec(tok, extend) }))
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		GinkgoWriter.Printf("spec write -> answer changed: min %v, max %v\n", took[0], took[len(took)-1])
		Expect(took[len(took)-1]).To(BeNumerically("<", 100*time.Millisecond), "edit bound: %v", took)
	})

	It("refuses every token of a creator taken off their Team within 100 ms, with no reconciler running", func() {
		team := b.Team("orders", b.WithOwners(b.User("jane"), b.User("bob")), b.WithNamespaces("default"))
		Expect(k8sClient.Create(ctx, team)).To(Succeed())
		values := make([]string, 20)
		for i := range values {
			_, values[i] = issued(b.TeamToken("orders"))
		}
		start := time.Now()
		base := team.DeepCopy()
		team.Spec.Owners = team.Spec.Owners[1:]
		Expect(k8sClient.Patch(ctx, team, client.MergeFrom(base))).To(Succeed())
		for _, value := range values {
			Eventually(func() string {
				_, reason := server.Verifier.Verify(ctx, value)
				return reason
			}, 2*time.Second, time.Millisecond).Should(Equal(verify.ReasonInvalidated))
		}
		took := time.Since(start)
		GinkgoWriter.Printf("owner removed -> %d tokens refused: %v\n", len(values), took)
		Expect(took).To(BeNumerically("<", 100*time.Millisecond))
		// The replica says when the change took effect: after the patch
		// was sent, and before every refusal had been seen.
		updated := teamsUpdated()
		Expect(updated).To(BeTemporally(">=", start))
		Expect(updated).To(BeTemporally("<=", start.Add(took)))
	})

	It("refuses on the second of expiry even if no reconcile ran", func() {
		tok, value := issued()
		expiresAt := metav1.NewTime(time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second))
		setSpec(tok, func(spec *v1alpha1.ApiTokenSpec) { spec.ExpiresAt = &expiresAt })
		setStatus(tok, func(st *v1alpha1.ApiTokenStatus) { st.ExpiresAt = &expiresAt })
		Eventually(func() string {
			_, reason := server.Verifier.Verify(ctx, value)
			return reason
		}, 3*time.Second, time.Millisecond).Should(Equal(verify.ReasonExpired))
		Expect(time.Now()).To(BeTemporally(">=", expiresAt.Time))
		Expect(time.Now()).To(BeTemporally("<", expiresAt.Add(100*time.Millisecond)))
	})

	It("keeps a previous value verifying through its overlap only", func() {
		tok, old := issued()
		fresh, err := token.Format{Base: token.DefaultBase}.Generate(v1alpha1.TeamTokenType)
		Expect(err).NotTo(HaveOccurred())
		end := metav1.NewTime(time.Now().Add(time.Hour))
		setStatus(tok, func(st *v1alpha1.ApiTokenStatus) {
			st.Previous = &v1alpha1.PreviousToken{TokenHash: st.TokenHash, ExpiresAt: end}
			st.TokenHash = token.Hash(fresh)
		})
		Eventually(func() string { _, r := server.Verifier.Verify(ctx, fresh); return r }).Should(BeEmpty())
		_, reason := server.Verifier.Verify(ctx, old)
		Expect(reason).To(BeEmpty(), "the previous value verifies during the overlap")

		setStatus(tok, func(st *v1alpha1.ApiTokenStatus) { st.Previous = nil })
		Eventually(func() string { _, r := server.Verifier.Verify(ctx, old); return r }).Should(Equal(verify.ReasonUnknown))
	})

	It("refuses garbage before any lookup", func() {
		_, reason := server.Verifier.Verify(ctx, "twt_not-a-token")
		Expect(reason).To(Equal(verify.ReasonMalformed))
	})
})

func getUID(tok *v1alpha1.ApiToken) string {
	GinkgoHelper()
	got := &v1alpha1.ApiToken{}
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
	return string(got.UID)
}
