package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
)

var _ = Describe("Team controller", func() {
	It("marks a Team Ready for its generation and counts its Active tokens", func() {
		team := b.Team("checkout", b.WithNamespaces("default"))
		Expect(k8sClient.Create(ctx, team)).To(Succeed())

		Eventually(func(g Gomega) {
			got := &v1alpha1.Team{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), got)).To(Succeed())
			ready := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(ready.ObservedGeneration).To(Equal(got.Generation))
			g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		}).Should(Succeed())

		// Two tokens name the team; only the Active one counts, not the disabled one.
		active := b.ApiToken("checkout-ci", "default", b.TeamToken("checkout"), b.WithCreator("owner"))
		disabled := b.ApiToken("checkout-old", "default", b.TeamToken("checkout"), b.WithCreator("owner"), b.WithDisabled(true))
		Expect(k8sClient.Create(ctx, active)).To(Succeed())
		Expect(k8sClient.Create(ctx, disabled)).To(Succeed())
		eventuallyPhase(disabled, v1alpha1.PhaseDisabled)
		eventuallyPhase(active, v1alpha1.PhaseActive)

		Eventually(func(g Gomega) {
			got := &v1alpha1.Team{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), got)).To(Succeed())
			g.Expect(got.Status.ActiveTokens).To(Equal(int32(1)))
		}).Should(Succeed())
	})

	It("makes no write when nothing changed", func() {
		team := b.Team("idle")
		Expect(k8sClient.Create(ctx, team)).To(Succeed())
		var version string
		Eventually(func(g Gomega) {
			got := &v1alpha1.Team{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), got)).To(Succeed())
			g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			version = got.ResourceVersion
		}).Should(Succeed())

		// A label change triggers a reconcile without changing the status.
		// A status write still on its way would make the update conflict:
		// read again and retry, as for any eventually consistent state.
		var touched string
		Eventually(func(g Gomega) {
			got := &v1alpha1.Team{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), got)).To(Succeed())
			got.Labels = map[string]string{"touched": "yes"}
			g.Expect(k8sClient.Update(ctx, got)).To(Succeed())
			touched = got.ResourceVersion
		}).Should(Succeed())

		Consistently(func(g Gomega) {
			now := &v1alpha1.Team{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), now)).To(Succeed())
			g.Expect(now.ResourceVersion).To(Equal(touched), "the reconciler wrote an unchanged status")
		}, 2*time.Second, 200*time.Millisecond).Should(Succeed())
		Expect(touched).NotTo(Equal(version))
	})
})
