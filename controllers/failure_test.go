package controllers_test

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/controllers"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/token"
	"github.com/tokenwarden/tokenwarden/internal/verify"
)

// TestFailureInReconciled reconciles, over a fake API server, an Active
// token whose spec was edited (generation 2) while writing its Secret
// fails. A failure the next attempt may not repeat is recorded in the
// Reconciled condition, and nothing else moves: observedGeneration,
// phase and Ready stay as the last finished reconcile left them, and the
// same failure again writes nothing. A conflict, retried at once, and a
// NotFound are not recorded at all.
func TestFailureInReconciled(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	secrets := corev1.Resource("secrets")
	tests := []struct {
		name     string
		err      error
		recorded bool
	}{
		{"an API server that fails", apierrors.NewServiceUnavailable("etcd is unavailable"), true},
		{"a conflict", apierrors.NewConflict(secrets, "ci", errors.New("the object has been modified")), false},
		{"a Secret gone meanwhile", apierrors.NewNotFound(secrets, "ci"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			// A new secretTemplate makes the reconcile patch the Secret.
			base, tok, _ := issuedToken(g, now, now.Add(-time.Hour),
				withSecretTemplate(map[string]string{"app": "ci"}, nil), func(t *v1alpha1.ApiToken) { t.Generation = 2 })
			failing := true
			c := interceptor.NewClient(base.(client.WithWatch), interceptor.Funcs{
				Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
					if _, ok := obj.(*corev1.Secret); ok && failing {
						return tt.err
					}
					return c.Patch(ctx, obj, patch, opts...)
				},
			})
			r := &controllers.ApiTokenReconciler{
				Client: c, APIReader: c, Clock: clocktesting.NewFakeClock(now), Format: token.Format{Base: token.DefaultBase},
				Standing: authz.NewStanding(admins{}, clocktesting.NewFakeClock(now)),
			}
			req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tok)}
			_, err := r.Reconcile(ctx, req)
			g.Expect(err).To(MatchError(tt.err))

			got := &v1alpha1.ApiToken{}
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			g.Expect(got.Status.ObservedGeneration).To(Equal(int64(1)), "observedGeneration moves only with a successful reconcile")
			g.Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseActive))
			ready := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "Ready stays as it was")
			g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonIssued))
			g.Expect(ready.ObservedGeneration).To(Equal(int64(1)))
			reconciled := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReconciledCondition)
			if !tt.recorded {
				g.Expect(reconciled).To(BeNil())
				g.Expect(got.ResourceVersion).To(Equal(tok.ResourceVersion), "nothing written")
				return
			}
			g.Expect(reconciled).NotTo(BeNil())
			g.Expect(reconciled.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(reconciled.Reason).To(Equal(v1alpha1.ReasonReconcileError))
			g.Expect(reconciled.Message).To(ContainSubstring("writing the secretTemplate onto Secret ci"))
			g.Expect(reconciled.Message).To(ContainSubstring("etcd is unavailable"))
			g.Expect(reconciled.ObservedGeneration).To(Equal(int64(2)), "the generation whose reconcile failed")

			written := got.ResourceVersion
			_, err = r.Reconcile(ctx, req)
			g.Expect(err).To(MatchError(tt.err))
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			g.Expect(got.ResourceVersion).To(Equal(written), "the same failure again writes nothing, so it is retried with back-off")

			failing = false
			_, err = r.Reconcile(ctx, req)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			g.Expect(got.Status.ObservedGeneration).To(Equal(int64(2)))
			reconciled = apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReconciledCondition)
			g.Expect(reconciled.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(reconciled.Reason).To(Equal(v1alpha1.ReasonReconciled))
		})
	}
}

// TestInvalidSpec reconciles, over a fake API server, an Active token
// whose spec came to hold a duration the operator cannot parse (the fake
// API server validates nothing, as an object stored before validation was
// not). The reconcile stops for good, saying which field: phase Failed,
// Ready and Reconciled False with reason InvalidSpec, the value withdrawn
// and refused by the verifier; another reconcile changes nothing, and
// fixing the field issues a value again.
func TestInvalidSpec(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		field string
		opts  []b.ApiTokenOption
		fix   func(*v1alpha1.ApiToken)
	}{
		{"spec.lifetime", []b.ApiTokenOption{withoutExpiry, b.WithLifetime("forever")},
			func(t *v1alpha1.ApiToken) { b.WithLifetime("3h")(t) }},
		{"spec.rotation.renewBefore", []b.ApiTokenOption{b.WithRotation("", "1x")},
			func(t *v1alpha1.ApiToken) { t.Spec.Rotation = nil }},
		{"spec.rotation.overlap", []b.ApiTokenOption{b.WithRotation("99999d999999h", "")},
			func(t *v1alpha1.ApiToken) { b.WithRotation("10m", "")(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			c, tok, value := issuedToken(g, now, now.Add(-time.Hour), tt.opts...)
			// A new value, once the spec is fixed, is issued in a namespace that exists.
			g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tok.Namespace}})).To(Succeed())
			r := &controllers.ApiTokenReconciler{
				Client: c, APIReader: c, Clock: clocktesting.NewFakeClock(now), Format: token.Format{Base: token.DefaultBase},
				Standing: authz.NewStanding(admins{}, clocktesting.NewFakeClock(now)),
			}
			req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tok)}
			res, err := r.Reconcile(ctx, req)
			g.Expect(errors.Is(err, reconcile.TerminalError(nil))).To(BeTrue(), "not retried: %v", err)
			g.Expect(err).To(MatchError(ContainSubstring(tt.field)))
			g.Expect(res).To(BeZero())

			got := &v1alpha1.ApiToken{}
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			g.Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseFailed))
			g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			ready := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(v1alpha1.ReasonInvalidSpec))
			g.Expect(ready.Message).To(HavePrefix(tt.field + ": invalid duration"))
			reconciled := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReconciledCondition)
			g.Expect(reconciled.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(reconciled.Reason).To(Equal(v1alpha1.ReasonInvalidSpec))
			g.Expect(reconciled.Message).To(HavePrefix(tt.field + ": "))
			secret := &corev1.Secret{}
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), secret)).To(Succeed())
			g.Expect(secret.Data).NotTo(HaveKey(v1alpha1.SecretTokenKey), "the value is withdrawn")

			// The verifier refuses what the reconciler calls Failed.
			index := verify.NewIndex()
			index.Upsert(got)
			clk := clocktesting.NewFakeClock(now)
			verifier := &verify.Verifier{Index: index, Format: token.Format{Base: token.DefaultBase}, Clock: clk,
				Teams: verify.StaticTeams(b.Team("payments", b.WithOwners(b.User("jane")), b.WithNamespaces(tok.Namespace))), Admins: admins{}}
			_, refusal := verifier.Verify(ctx, value)
			g.Expect(refusal).NotTo(BeEmpty())

			before := got.ResourceVersion
			_, err = r.Reconcile(ctx, req)
			g.Expect(errors.Is(err, reconcile.TerminalError(nil))).To(BeTrue())
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			g.Expect(got.ResourceVersion).To(Equal(before), "nothing more to write")

			tt.fix(got)
			g.Expect(c.Update(ctx, got)).To(Succeed())
			_, err = r.Reconcile(ctx, req)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			g.Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseActive))
			g.Expect(apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReconciledCondition).Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), secret)).To(Succeed())
			g.Expect(secret.Data).To(HaveKey(v1alpha1.SecretTokenKey), "a value is issued again")
			g.Expect(got.Status.TokenHash).NotTo(Equal(tok.Status.TokenHash), "a fresh one: the withdrawn value never comes back")
		})
	}
}
