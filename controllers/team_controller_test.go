package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	b "github.com/tokenwarden/tokenwarden/internal/builder"
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

		// Two tokens name the team; only the Active one counts.
		for _, name := range []string{"checkout-ci", "checkout-old"} {
			Expect(k8sClient.Create(ctx, b.ApiToken(name, "default", b.TeamToken("checkout")))).To(Succeed())
		}
		active := &v1alpha1.ApiToken{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "default", Name: "checkout-ci"}, active)).To(Succeed())
		base := active.DeepCopy()
		active.Status.Phase = v1alpha1.PhaseActive
		Expect(k8sClient.Status().Patch(ctx, active, client.MergeFrom(base))).To(Succeed())

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
		got := &v1alpha1.Team{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), got)).To(Succeed())
		got.Labels = map[string]string{"touched": "yes"}
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		touched := got.ResourceVersion

		Consistently(func(g Gomega) {
			now := &v1alpha1.Team{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), now)).To(Succeed())
			g.Expect(now.ResourceVersion).To(Equal(touched), "the reconciler wrote an unchanged status")
		}, 2*time.Second, 200*time.Millisecond).Should(Succeed())
		Expect(touched).NotTo(Equal(version))
	})
})
