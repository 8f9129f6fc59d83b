package v1alpha1_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
)

// These specs prove config/policy's ValidatingAdmissionPolicy, which the
// control plane installs naming its admin as the operator: RBAC rights on
// the status subresource are not enough to write status, so nobody but the
// operator can make a value verify by writing its digest there.
var _ = Describe("Status writes", Ordered, func() {
	const intruder = "status-intruder"
	var operator string

	// as impersonates user with groups; the admin may impersonate anyone.
	as := func(user string, groups ...string) client.Client {
		GinkgoHelper()
		c := rest.CopyConfig(cfg)
		c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
		cl, err := client.New(c, client.Options{Scheme: k8sClient.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		return cl
	}
	// forge makes token look issued and verifiable, by an admin.
	forge := func(token *v1alpha1.ApiToken) {
		now := metav1.Now()
		token.Status.Phase = v1alpha1.PhaseActive
		token.Status.TokenHash = "sha256:" + strings.Repeat("ab", 32)
		token.Status.IssuedAt = &now
		token.Status.Creator = &v1alpha1.UserIdentity{Username: "root", Groups: []string{"system:masters"}}
	}
	// expectRefused asserts that the policy, not RBAC, refused err, with a
	// message that says who may write status and why.
	expectRefused := func(err error, resource, user string) {
		GinkgoHelper()
		Expect(err).To(HaveOccurred(), "%s wrote the status of %s", user, resource)
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want Forbidden, got: %v", err)
		Expect(err.Error()).To(ContainSubstring("only the Tokenwarden operator (%s) may write the status of %s, not %s", operator, resource, user))
		Expect(err.Error()).To(ContainSubstring("status is the record the operator keeps, and verification trusts the token digests, phase and expiry in it"))
	}

	BeforeAll(func() {
		review := &authenticationv1.SelfSubjectReview{}
		Expect(k8sClient.Create(ctx, review)).To(Succeed())
		operator = review.Status.UserInfo.Username
		Expect(operator).NotTo(BeEmpty())

		By("granting the intruder every RBAC right on the status subresources")
		role := &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "test-status-writer"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group},
				Resources: []string{"apitokens/status", "teams/status"}, Verbs: []string{"get", "patch", "update"}}},
		}
		Expect(k8sClient.Create(ctx, role)).To(Succeed())
		Expect(k8sClient.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: intruder}},
		})).To(Succeed())
		for _, resource := range []string{"apitokens", "teams"} {
			Eventually(func(g Gomega) {
				sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
					User: intruder,
					ResourceAttributes: &authorizationv1.ResourceAttributes{Group: v1alpha1.GroupVersion.Group,
						Resource: resource, Subresource: "status", Verb: "patch", Namespace: ns},
				}}
				g.Expect(k8sClient.Create(ctx, sar)).To(Succeed())
				g.Expect(sar.Status.Allowed).To(BeTrue(), "RBAC must allow the intruder, so that only the policy refuses")
			}, 10*time.Second).Should(Succeed())
		}

		By("waiting until kube-apiserver enforces the policy, with dry runs that store nothing")
		token := b.ApiToken(uniqueName("policy-probe"), ns)
		Expect(k8sClient.Create(ctx, token)).To(Succeed())
		base := token.DeepCopy()
		forge(token)
		Eventually(func() error {
			return as(intruder).Status().Patch(ctx, token.DeepCopy(), client.MergeFrom(base), client.DryRunAll)
		}, 10*time.Second).Should(MatchError(ContainSubstring("may write the status")))
	})

	It("refuses an ApiToken status forged by a user RBAC allows, by patch and by update", func() {
		token := b.ApiToken(uniqueName("forged"), ns)
		Expect(k8sClient.Create(ctx, token)).To(Succeed())
		base := token.DeepCopy()
		forged := token.DeepCopy()
		forge(forged)
		intruderClient := as(intruder)
		expectRefused(intruderClient.Status().Patch(ctx, forged.DeepCopy(), client.MergeFrom(base)), "apitokens", intruder)
		expectRefused(intruderClient.Status().Update(ctx, forged.DeepCopy()), "apitokens", intruder)

		got := &v1alpha1.ApiToken{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(token), got)).To(Succeed())
		Expect(got.Status).To(Equal(v1alpha1.ApiTokenStatus{}), "nothing of the forged status may be stored")
	})

	It("refuses a Team status written by a user RBAC allows", func() {
		team := b.Team(uniqueName("forged"))
		Expect(k8sClient.Create(ctx, team)).To(Succeed())
		base := team.DeepCopy()
		team.Status.ActiveTokens = 5
		team.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue,
			Reason: v1alpha1.ReasonIssued, LastTransitionTime: metav1.Now()}}
		expectRefused(as(intruder).Status().Patch(ctx, team, client.MergeFrom(base)), "teams", intruder)

		got := &v1alpha1.Team{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), got)).To(Succeed())
		Expect(got.Status).To(Equal(v1alpha1.TeamStatus{}))
	})

	It("refuses a cluster admin who is not the operator", func() {
		token := b.ApiToken(uniqueName("forged"), ns)
		Expect(k8sClient.Create(ctx, token)).To(Succeed())
		base := token.DeepCopy()
		forge(token)
		expectRefused(as("root", "system:masters").Status().Patch(ctx, token, client.MergeFrom(base)), "apitokens", "root")
	})

	It("admits the operator's own status writes", func() {
		token := b.ApiToken(uniqueName("issued"), ns)
		Expect(k8sClient.Create(ctx, token)).To(Succeed())
		base := token.DeepCopy()
		forge(token)
		Expect(k8sClient.Status().Patch(ctx, token, client.MergeFrom(base))).To(Succeed())
		got := &v1alpha1.ApiToken{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(token), got)).To(Succeed())
		Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseActive))
		Expect(got.Status.TokenHash).To(Equal(token.Status.TokenHash))

		team := b.Team(uniqueName("counted"))
		Expect(k8sClient.Create(ctx, team)).To(Succeed())
		teamBase := team.DeepCopy()
		team.Status.ActiveTokens = 1
		Expect(k8sClient.Status().Patch(ctx, team, client.MergeFrom(teamBase))).To(Succeed())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), team)).To(Succeed())
		Expect(team.Status.ActiveTokens).To(BeEquivalentTo(1))
	})
})
