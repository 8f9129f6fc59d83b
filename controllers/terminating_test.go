package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/controllers"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// TestNothingIssuedInATerminatingNamespace: while a namespace is being
// deleted, kube-controller-manager's namespace controller deletes its
// Secrets and its ApiTokens in no set order. A token that outlives its
// Secret for a moment must not be issued a new value: the API server
// refuses every creation in that namespace, so the attempt would only
// write a digest nothing holds, send an Event the API server refuses, and
// log a forbidden error on every retry until the token is gone. Found by
// the install rehearsal (test/install), whose operator logs must hold no
// "forbidden".
func TestNothingIssuedInATerminatingNamespace(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// terminating says whether the namespace already shows its
		// deletion; when not, the API server's refusal of the Secret is
		// what tells (the deletion began between the two requests).
		terminating bool
	}{
		{"the namespace shows its deletion", true},
		{"the Secret's creation is refused as the deletion begins", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			base, tok, _ := issuedToken(g, now, now.Add(-time.Hour))
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tok.Namespace, Finalizers: []string{"example.com/hold"}}}
			g.Expect(base.Create(ctx, ns)).To(Succeed())
			if tt.terminating {
				g.Expect(base.Delete(ctx, ns)).To(Succeed())
			}
			g.Expect(base.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tok.Name, Namespace: tok.Namespace}})).To(Succeed())

			creates := 0
			c := interceptor.NewClient(base.(client.WithWatch), interceptor.Funcs{
				Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
					if _, ok := obj.(*corev1.Secret); ok {
						creates++
						return namespaceTerminatingError(obj.GetNamespace())
					}
					return c.Create(ctx, obj, opts...)
				},
			})
			r := &controllers.ApiTokenReconciler{
				Client: c, APIReader: c, Clock: clocktesting.NewFakeClock(now), Format: token.Format{Base: token.DefaultBase},
				Standing: authz.NewStanding(admins{}, clocktesting.NewFakeClock(now)),
			}
			_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tok)})
			g.Expect(err).NotTo(HaveOccurred(), "nothing to retry: the namespace controller deletes the token next")

			got := &v1alpha1.ApiToken{}
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			if tt.terminating {
				g.Expect(creates).To(BeZero(), "no Secret is attempted in a namespace being deleted")
				g.Expect(got.Status.TokenHash).To(Equal(tok.Status.TokenHash), "no new digest is recorded")
			} else {
				g.Expect(creates).To(Equal(1))
			}
		})
	}
}

// namespaceTerminatingError is the API server's refusal of a creation in a
// namespace being deleted, with the cause clients check for.
func namespaceTerminatingError(namespace string) error {
	err := apierrors.NewForbidden(corev1.Resource("secrets"), "", fmt.Errorf("unable to create new content in namespace %s because it is being terminated", namespace))
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type:    corev1.NamespaceTerminatingCause,
		Message: fmt.Sprintf("namespace %s is being terminated", namespace),
		Field:   "metadata.namespace",
	})
	return err
}
