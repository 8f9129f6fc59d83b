package admit_test

import (
	"fmt"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
)

var seq atomic.Int64

func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

// expectRefused asserts the API server refused the request through the
// webhook, with a message naming field and saying why.
func expectRefused(err error, field, why string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the webhook admitted a request it should refuse (%s)", why)
	Expect(apierrors.IsInvalid(err) || apierrors.IsForbidden(err)).To(BeTrue(), "unexpected error: %v", err)
	Expect(err.Error()).To(ContainSubstring("admission webhook"))
	Expect(err.Error()).To(ContainSubstring(field))
	Expect(err.Error()).To(ContainSubstring(why))
}

func creatorOf(tok *v1alpha1.ApiToken) string {
	GinkgoHelper()
	got := &v1alpha1.ApiToken{}
	Expect(admin.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
	creator, err := authz.CreatorOf(got)
	Expect(err).NotTo(HaveOccurred())
	return creator.Username
}

// webhookCalls returns how many admission requests the webhook at path has
// answered in this process, from controller-runtime's own counter.
func webhookCalls(path string) float64 {
	GinkgoHelper()
	families, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	var n float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_webhook_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "webhook" && l.GetValue() == path {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

var _ = Describe("Admission", func() {
	var (
		payments, orders   *v1alpha1.Team
		jane, lead, argocd client.Client
		john, eve, root    client.Client
	)

	BeforeEach(func() {
		payments = b.Team(unique("payments"), b.WithOwners(b.User("jane"), b.Group("payments-leads"), b.ServiceAccount("argocd", "sync")),
			b.WithNamespaces("payments", "shared"), b.WithPolicy("", false, "orders:*", "refunds:read"))
		orders = b.Team(unique("orders"), b.WithOwners(b.User("john")), b.WithNamespaces("orders", "shared"))
		Expect(admin.Create(ctx, payments)).To(Succeed())
		Expect(admin.Create(ctx, orders)).To(Succeed())
		jane, _ = as("jane")
		lead, _ = as("bob", "payments-leads")
		argocd, _ = as("system:serviceaccount:argocd:sync", "system:serviceaccounts")
		john, _ = as("john")
		eve, _ = as("eve")
		root, _ = as("root")
	})

	Describe("creating tokens", func() {
		It("refuses a stranger any token", func() {
			expectRefused(eve.Create(ctx, b.ApiToken(unique("t"), "payments", b.TeamToken(payments.Name))),
				"spec.teams", "only admins and owners of every listed team")
			expectRefused(eve.Create(ctx, b.ApiToken(unique("t"), "payments")),
				"spec.type", "only admins and team owners may hold Wildcard tokens")
			expectRefused(eve.Create(ctx, b.ApiToken(unique("t"), "payments", b.WithType(v1alpha1.AdminTokenType))),
				"spec.type", "only admins may hold Admin tokens")
		})

		It("refuses a stranger under --dry-run=server too", func() {
			expectRefused(eve.Create(ctx, b.ApiToken(unique("t"), "payments", b.TeamToken(payments.Name)), client.DryRunAll),
				"spec.teams", "only admins and owners")
		})

		It("lets an owner create a Team token and records them, whatever the client claimed", func() {
			tok := b.ApiToken(unique("t"), "payments", b.TeamToken(payments.Name), b.WithCreator("root", "system:masters"))
			Expect(jane.Create(ctx, tok)).To(Succeed())
			Expect(creatorOf(tok)).To(Equal("jane"))
		})

		It("lets a group owner and a ServiceAccount owner create Team tokens", func() {
			tok := b.ApiToken(unique("t"), "payments", b.TeamToken(payments.Name))
			Expect(lead.Create(ctx, tok)).To(Succeed())
			Expect(creatorOf(tok)).To(Equal("bob"))
			tok = b.ApiToken(unique("t"), "payments", b.TeamToken(payments.Name))
			Expect(argocd.Create(ctx, tok)).To(Succeed())
			Expect(creatorOf(tok)).To(Equal("system:serviceaccount:argocd:sync"))
		})

		It("refuses a team owner an Admin token", func() {
			expectRefused(jane.Create(ctx, b.ApiToken(unique("t"), "payments", b.WithType(v1alpha1.AdminTokenType))),
				"spec.type", "only admins may hold Admin tokens")
		})

		It("refuses the owner of one of two teams", func() {
			expectRefused(jane.Create(ctx, b.ApiToken(unique("t"), "shared", b.TeamToken(payments.Name, orders.Name))),
				"spec.teams", fmt.Sprintf("nor an owner of team %q", orders.Name))
		})

		It("refuses a Team token outside its team's namespaces", func() {
			expectRefused(jane.Create(ctx, b.ApiToken(unique("t"), "orders", b.TeamToken(payments.Name))),
				"spec.teams[0]", `does not allow tokens in namespace "orders"`)
		})

		It("places an owner's Wildcard tokens only in their teams' namespaces", func() {
			Expect(john.Create(ctx, b.ApiToken(unique("t"), "orders"))).To(Succeed())
			expectRefused(john.Create(ctx, b.ApiToken(unique("t"), "payments")),
				"spec.type", `"john" is not an admin and owns no team that allows namespace "payments"`)
		})

		It("enforces team policy", func() {
			strict := b.Team(unique("strict"), b.WithOwners(b.User("jane")), b.WithNamespaces("payments"), b.WithPolicy("90d", true))
			Expect(admin.Create(ctx, strict)).To(Succeed())
			expectRefused(jane.Create(ctx, b.ApiToken(unique("t"), "payments", b.TeamToken(strict.Name), b.WithLifetime("120d"))),
				"spec.lifetime", "longer than the maxLifetime 90d")
			expectRefused(jane.Create(ctx, b.ApiToken(unique("t"), "payments", b.TeamToken(strict.Name))),
				"spec.lifetime", "requires every token to expire")
			expectRefused(jane.Create(ctx, b.ApiToken(unique("t"), "payments", b.TeamToken(payments.Name), b.WithScopes("refunds:write"))),
				"spec.scopes[0]", `scope "refunds:write" is not allowed`)
		})

		It("holds a team owner's Wildcard tokens to their teams' policies, but not an admin's", func() {
			expectRefused(jane.Create(ctx, b.ApiToken(unique("t"), "payments", b.WithScopes("refunds:write"))),
				"spec.scopes[0]", fmt.Sprintf("scope \"refunds:write\" is not allowed by team %q", payments.Name))
			// Within every policy of every team jane owns (other specs give her
			// stricter teams than payments).
			Expect(jane.Create(ctx, b.ApiToken(unique("t"), "payments", b.WithScopes("refunds:read"), b.WithLifetime("7d")))).To(Succeed())
			Expect(root.Create(ctx, b.ApiToken(unique("t"), "payments", b.WithScopes("refunds:write")))).To(Succeed())
		})

		It("refuses a creator record that is not the requester's whole identity, when the mutating webhook is missing", func() {
			By("removing the mutating webhook, as during an install or upgrade")
			mutating := &admissionregistrationv1.MutatingWebhookConfigurationList{}
			Expect(admin.List(ctx, mutating)).To(Succeed())
			Expect(mutating.Items).NotTo(BeEmpty())
			for i := range mutating.Items {
				Expect(admin.Delete(ctx, &mutating.Items[i])).To(Succeed())
			}
			DeferCleanup(func() {
				for i := range mutating.Items {
					restored := mutating.Items[i].DeepCopy()
					restored.ResourceVersion, restored.UID, restored.CreationTimestamp = "", "", metav1.Time{}
					Expect(admin.Create(ctx, restored)).To(Succeed())
				}
				Eventually(func(g Gomega) {
					tok := b.ApiToken(unique("t"), "payments", b.TeamToken(payments.Name), b.WithCreator("root"))
					g.Expect(jane.Create(ctx, tok)).To(Succeed())
					g.Expect(creatorOf(tok)).To(Equal("jane"), "the mutating webhook is back")
				}).Should(Succeed())
			})

			Eventually(func(g Gomega) {
				// jane's own name, with a group she does not have.
				forged := b.ApiToken(unique("t"), "payments", b.WithCreator("jane", "system:masters", "system:authenticated"))
				err := jane.Create(ctx, forged)
				g.Expect(err).To(HaveOccurred(), "the API server must stop calling the mutating webhook first")
				g.Expect(err.Error()).To(ContainSubstring("metadata.annotations[auth.tokenwarden.io/creator]"))
				g.Expect(err.Error()).To(ContainSubstring("must record the requesting user exactly"))
			}).Should(Succeed())
		})

		It("lets an admin create any token", func() {
			Expect(root.Create(ctx, b.ApiToken(unique("t"), "payments", b.WithType(v1alpha1.AdminTokenType)))).To(Succeed())
			Expect(root.Create(ctx, b.ApiToken(unique("t"), "shared", b.TeamToken(payments.Name, orders.Name)))).To(Succeed())
			Expect(root.Create(ctx, b.ApiToken(unique("t"), "default"))).To(Succeed())
		})
	})

	Describe("changing and deleting tokens", func() {
		var tok *v1alpha1.ApiToken
		BeforeEach(func() {
			tok = b.ApiToken(unique("t"), "payments", b.TeamToken(payments.Name))
			Expect(jane.Create(ctx, tok)).To(Succeed())
		})

		disable := func(c client.Client) error {
			got := &v1alpha1.ApiToken{}
			Expect(admin.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			got.Spec.Disabled = true
			return c.Update(ctx, got)
		}

		It("refuses another owner of the same team", func() {
			expectRefused(disable(lead), "metadata", "only admins and the token's creator may update it")
		})

		It("refuses a stranger a recreate", func() {
			got := &v1alpha1.ApiToken{}
			Expect(admin.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			got.Spec.Recreate++
			expectRefused(eve.Update(ctx, got), "metadata", "only admins and the token's creator may update it")
		})

		It("lets the creator and an admin disable it", func() {
			Expect(disable(jane)).To(Succeed())
			Expect(disable(root)).To(Succeed())
		})

		It("keeps the recorded creator when a client rewrites it", func() {
			got := &v1alpha1.ApiToken{}
			Expect(admin.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			b.WithCreator("root")(got)
			Expect(jane.Update(ctx, got)).To(Succeed())
			Expect(creatorOf(tok)).To(Equal("jane"))
		})

		It("is not called for an update that cannot change its answer", func() {
			mutate, validate := webhookCalls("/mutate-auth-tokenwarden-io-v1alpha1-apitoken"), webhookCalls("/validate-auth-tokenwarden-io-v1alpha1-apitoken")
			// A stranger may relabel it: RBAC lets them, and neither webhook
			// has anything to say, so kube-apiserver asks neither.
			got := &v1alpha1.ApiToken{}
			Expect(admin.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			got.Labels = map[string]string{"team": "payments"}
			Expect(eve.Update(ctx, got)).To(Succeed())
			Expect(webhookCalls("/mutate-auth-tokenwarden-io-v1alpha1-apitoken")).To(Equal(mutate), "the mutating webhook was called")
			Expect(webhookCalls("/validate-auth-tokenwarden-io-v1alpha1-apitoken")).To(Equal(validate), "the validating webhook was called")

			// A change to the spec, or to the creator record, still asks both.
			Expect(disable(jane)).To(Succeed())
			Expect(webhookCalls("/mutate-auth-tokenwarden-io-v1alpha1-apitoken")).To(Equal(mutate), "the mutating webhook has nothing to write on a disable")
			Expect(webhookCalls("/validate-auth-tokenwarden-io-v1alpha1-apitoken")).To(Equal(validate + 1))
			Expect(admin.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			delete(got.Annotations, v1alpha1.CreatorAnnotation)
			Expect(eve.Update(ctx, got)).To(Succeed())
			Expect(creatorOf(tok)).To(Equal("jane"), "the mutating webhook put the record back")
			Expect(webhookCalls("/mutate-auth-tokenwarden-io-v1alpha1-apitoken")).To(Equal(mutate + 1))
		})

		It("refuses a delete by anyone but the creator or an admin", func() {
			expectRefused(eve.Delete(ctx, tok), "metadata", "only admins and the token's creator may delete it")
			expectRefused(lead.Delete(ctx, tok), "metadata", "only admins and the token's creator may delete it")
			Expect(jane.Delete(ctx, tok)).To(Succeed())
		})

		It("lets the namespace controller and the garbage collector delete any token", func() {
			nsController, _ := as("system:serviceaccount:kube-system:namespace-controller", "system:serviceaccounts", "system:serviceaccounts:kube-system")
			collector, _ := as("system:serviceaccount:kube-system:generic-garbage-collector", "system:serviceaccounts", "system:serviceaccounts:kube-system")
			Expect(nsController.Delete(ctx, tok)).To(Succeed(), "a namespace holding tokens must finish deleting")

			adminTok := b.ApiToken(unique("admin"), "payments", b.WithType(v1alpha1.AdminTokenType))
			Expect(root.Create(ctx, adminTok)).To(Succeed())
			Expect(collector.Delete(ctx, adminTok)).To(Succeed(), "an ApiToken whose owner is gone must be collected")

			imposter, _ := as("namespace-controller")
			other := b.ApiToken(unique("t"), "payments", b.TeamToken(payments.Name))
			Expect(jane.Create(ctx, other)).To(Succeed())
			expectRefused(imposter.Delete(ctx, other), "metadata", "only admins and the token's creator may delete it")
		})

		It("lets an admin's recreate revive a token and records them as its creator", func() {
			got := &v1alpha1.ApiToken{}
			Expect(admin.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			got.Spec.Recreate++
			Expect(root.Update(ctx, got)).To(Succeed())
			Expect(creatorOf(tok)).To(Equal("root"), "the one who recreates becomes the creator")
		})

		It("refuses a recreate by a creator no longer entitled", func() {
			Eventually(func(g Gomega) {
				team := &v1alpha1.Team{}
				g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(payments), team)).To(Succeed())
				team.Spec.Owners = []v1alpha1.Subject{b.User("someone-else")}
				g.Expect(admin.Update(ctx, team)).To(Succeed())
			}).Should(Succeed())
			Eventually(func(g Gomega) {
				got := &v1alpha1.ApiToken{}
				g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
				got.Spec.Recreate++
				err := jane.Update(ctx, got)
				g.Expect(err).To(HaveOccurred(), "the webhook's cache must see the owner change first")
				g.Expect(err.Error()).To(ContainSubstring(`spec.teams: Forbidden: "jane" is neither an admin nor an owner of team`))
			}).Should(Succeed())
		})
	})

	Describe("Teams", func() {
		It("lets only admins create and delete Teams", func() {
			expectRefused(jane.Create(ctx, b.Team(unique("mine"), b.WithOwners(b.User("jane")))), "metadata", "only admins may create Teams")
			expectRefused(jane.Delete(ctx, payments), "metadata", "only admins may delete Teams")
			team := b.Team(unique("new"))
			Expect(root.Create(ctx, team)).To(Succeed())
			Expect(root.Delete(ctx, team)).To(Succeed())
		})

		It("lets nobody but admins and owners change a Team's metadata", func() {
			edit := func(c client.Client, change func(*v1alpha1.Team)) error {
				got := &v1alpha1.Team{}
				Expect(admin.Get(ctx, client.ObjectKeyFromObject(payments), got)).To(Succeed())
				change(got)
				return c.Update(ctx, got)
			}
			why := fmt.Sprintf("only admins and owners of team %q may change it", payments.Name)
			expectRefused(edit(eve, func(t *v1alpha1.Team) { t.Finalizers = append(t.Finalizers, "example.com/keep") }), "metadata", why)
			expectRefused(edit(john, func(t *v1alpha1.Team) { t.Labels = map[string]string{"tier": "gold"} }), "metadata", why)
			expectRefused(edit(eve, func(t *v1alpha1.Team) { t.Annotations = map[string]string{"note": "x"} }), "metadata", why)
			Expect(edit(jane, func(t *v1alpha1.Team) { t.Labels = map[string]string{"tier": "gold"} })).To(Succeed())
		})

		It("counts a Team being deleted as deleted: no new tokens for it", func() {
			Expect(root.Patch(ctx, payments, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":["example.com/keep"]}}`)))).To(Succeed())
			Expect(root.Delete(ctx, payments)).To(Succeed())
			Eventually(func(g Gomega) {
				err := jane.Create(ctx, b.ApiToken(unique("t"), "payments", b.TeamToken(payments.Name)))
				g.Expect(err).To(HaveOccurred(), "the webhook's cache must see the deletionTimestamp first")
				g.Expect(err.Error()).To(ContainSubstring(fmt.Sprintf("team %q does not exist or is being deleted", payments.Name)))
			}).Should(Succeed())
			Expect(root.Patch(ctx, payments, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`)))).To(Succeed())
		})

		It("lets owners edit their Team but not its namespaces", func() {
			got := &v1alpha1.Team{}
			Expect(admin.Get(ctx, client.ObjectKeyFromObject(payments), got)).To(Succeed())
			got.Spec.Description = "edited by an owner"
			Expect(jane.Update(ctx, got)).To(Succeed())

			got.Spec.Namespaces = append(got.Spec.Namespaces, "kube-system")
			expectRefused(jane.Update(ctx, got), "spec.namespaces", "only admins may change a Team's namespaces")
			expectRefused(john.Update(ctx, got), "spec.namespaces", "only admins may change a Team's namespaces")
		})

		It("warns before an owner change invalidates tokens, also under --dry-run=server", func() {
			tok := b.ApiToken(unique("t"), "payments", b.TeamToken(payments.Name))
			Expect(jane.Create(ctx, tok)).To(Succeed())
			// The reconciler is not running here; record an issued value.
			base := tok.DeepCopy()
			tok.Status.Phase = v1alpha1.PhaseActive
			tok.Status.TokenHash = "sha256:" + fmt.Sprintf("%064d", 1)
			Expect(admin.Status().Patch(ctx, tok, client.MergeFrom(base))).To(Succeed())

			rootWarned, warned := as("root")
			got := &v1alpha1.Team{}
			Eventually(func(g Gomega) {
				g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(payments), got)).To(Succeed())
				got.Spec.Owners = []v1alpha1.Subject{b.User("someone-else")}
				g.Expect(rootWarned.Update(ctx, got, client.DryRunAll)).To(Succeed())
				g.Expect(warned.all()).To(ContainElement(ContainSubstring(fmt.Sprintf("invalidates 1 token(s), finally: payments/%s (CreatorNotOwner)", tok.Name))))
			}).Should(Succeed(), "the webhook's cache must see the token first")

			after := &v1alpha1.Team{}
			Expect(admin.Get(ctx, client.ObjectKeyFromObject(payments), after)).To(Succeed())
			Expect(after.Spec.Owners).To(Equal(payments.Spec.Owners), "a dry run changes nothing")

			Expect(rootWarned.Delete(ctx, after, client.DryRunAll)).To(Succeed())
			Expect(warned.all()).To(ContainElement(ContainSubstring(fmt.Sprintf("payments/%s (TeamDeleted)", tok.Name))))

			narrowed := after.DeepCopy()
			narrowed.Spec.Namespaces = []string{"shared"}
			Expect(rootWarned.Update(ctx, narrowed, client.DryRunAll)).To(Succeed())
			Expect(warned.all()).To(ContainElement(ContainSubstring(fmt.Sprintf("payments/%s (NamespaceNotAllowed)", tok.Name))))
		})
	})
})
