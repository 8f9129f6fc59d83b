package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/controlplane"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
)

// TestRBACChangeRechecksItsSubjects: after an RBAC change the reconciler
// re-checks the tokens of the identities the change binds, not every token
// in the cluster; a change Standing could not weigh re-checks every token
// not yet Invalidated.
func TestRBACChangeRechecksItsSubjects(t *testing.T) {
	g := NewWithT(t)
	scheme, err := controlplane.NewScheme()
	g.Expect(err).NotTo(HaveOccurred())
	const ns = "payments"
	invalidated := b.ApiToken("root-old", ns, b.WithType(v1alpha1.AdminTokenType), b.WithCreator("root"))
	invalidated.Status.Phase = v1alpha1.PhaseInvalidated
	tokens := []*v1alpha1.ApiToken{
		b.ApiToken("root-1", ns, b.WithType(v1alpha1.AdminTokenType), b.WithCreator("root")),
		b.ApiToken("root-2", ns, b.WithCreator("root")),
		b.ApiToken("ops", ns, b.WithCreator("olga", "platform")),
		b.ApiToken("jane", ns, b.TeamToken("payments"), b.WithCreator("jane")),
		b.ApiToken("nobody", ns),
		invalidated,
	}
	builder := fake.NewClientBuilder().WithScheme(scheme)
	for _, tok := range tokens {
		builder = builder.WithObjects(tok)
	}
	standing := authz.NewStanding(nil, clocktesting.NewFakeClock(time.Now()))
	r := &ApiTokenReconciler{Client: builder.Build(), Standing: standing}
	names := func(requests []reconcile.Request) []string {
		var out []string
		for _, req := range requests {
			out = append(out, req.Name)
		}
		return out
	}

	g.Expect(r.tokensAfterRBACChange(t.Context(), nil)).To(BeEmpty(), "no change, nothing to re-check")

	standing.ChangedFor(authz.RBACChange{Keys: []string{"user:root"}})
	g.Expect(names(r.tokensAfterRBACChange(t.Context(), nil))).To(ConsistOf("root-1", "root-2", "nobody"),
		"root's tokens, and the one whose creator nobody can tell")

	standing.ChangedFor(authz.RBACChange{Keys: []string{"group:platform"}})
	g.Expect(names(r.tokensAfterRBACChange(t.Context(), nil))).To(ConsistOf("ops", "nobody"), "a group binds its members")

	standing.Changed()
	g.Expect(names(r.tokensAfterRBACChange(t.Context(), nil))).To(ConsistOf("root-1", "root-2", "ops", "jane", "nobody"),
		"a change that could not be weighed: every token but the Invalidated one")
}

// TestStandingRecheck: an entitlement that rested on the creator's admin
// standing is checked again (right after the settle window of a recent
// RBAC change, else every Recheck, DefaultRecheck by default), so a
// demotion no watch saw is still found; one that did not rest on it waits
// for no timer.
func TestStandingRecheck(t *testing.T) {
	g := NewWithT(t)
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	standing := authz.NewStanding(nil, clk)
	r := &ApiTokenReconciler{Standing: standing}

	g.Expect(r.standingRecheck(authz.AdminUnknown)).To(BeZero(), "an owner's entitlement: nothing to re-check")
	g.Expect(r.standingRecheck(authz.AdminYes)).To(Equal(DefaultRecheck))
	g.Expect(r.standingRecheck(authz.AdminNo)).To(Equal(DefaultRecheck))
	r.Recheck = time.Minute
	g.Expect(r.standingRecheck(authz.AdminYes)).To(Equal(time.Minute), "--admin-standing-recheck")

	standing.Changed()
	clk.Step(standing.Settle / 4)
	g.Expect(r.standingRecheck(authz.AdminYes)).To(Equal(standing.Settle*3/4+settleMargin), "right after the settle window")
	clk.Step(standing.Settle)
	g.Expect(r.standingRecheck(authz.AdminYes)).To(Equal(time.Minute), "settled: the periodic re-check again")
}
