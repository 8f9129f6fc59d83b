package controlplane

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestControllerManagerDeletesNamespacesAndDependents starts a control plane
// with kube-controller-manager and checks what bare envtest never does: a
// deleted namespace goes away with its contents, an owned object follows
// its deleted owner, a new namespace gets its default ServiceAccount, and
// env.Stop stops kube-controller-manager with the rest.
func TestControllerManagerDeletesNamespacesAndDependents(t *testing.T) {
	g := NewWithT(t)
	env, _, c, err := Start(Options{ControllerManager: true})
	stopped := false
	t.Cleanup(func() {
		if env != nil && !stopped {
			_ = env.Stop()
		}
	})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "lifecycle"}}
	g.Expect(c.Create(ctx, ns)).To(Succeed())
	g.Eventually(func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "default"}, &corev1.ServiceAccount{})
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed(), "the serviceaccount controller makes the default ServiceAccount")

	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "owner"}}
	g.Expect(c.Create(ctx, owner)).To(Succeed())
	dependent := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "dependent",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)}}}}
	g.Expect(c.Create(ctx, dependent)).To(Succeed())
	g.Expect(c.Delete(ctx, owner, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(dependent), &corev1.Secret{}))
	}, 60*time.Second, 100*time.Millisecond).Should(BeTrue(), "the garbage collector deletes the dependent of a deleted owner")

	kept := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "contents"}}
	g.Expect(c.Create(ctx, kept)).To(Succeed())
	g.Expect(c.Delete(ctx, ns)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(ns), &corev1.Namespace{}))
	}, 60*time.Second, 100*time.Millisecond).Should(BeTrue(), "the namespace controller empties and removes a deleted namespace")

	stopped = true
	g.Expect(env.Stop()).To(Succeed())
	children, err := controlPlaneChildren(os.Getpid())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(children).To(BeEmpty(), "env.Stop leaves no control plane process, kube-controller-manager included")
}
