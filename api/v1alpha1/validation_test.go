package v1alpha1_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
)

const ns = "default"

var seq atomic.Int64

// uniqueName keeps specs independent of each other on one API server.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, seq.Add(1))
}

// raw builds an object from a plain map, for shapes the Go types cannot
// express (an explicitly empty list, a missing required field).
func raw(kind string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       kind,
		"metadata":   map[string]any{"name": uniqueName(strings.ToLower(kind))},
		"spec":       spec,
	}}
	if kind == "ApiToken" {
		u.SetNamespace(ns)
	}
	return u
}

// expectInvalid asserts that the API server refused err as Invalid with a
// message naming field and saying why.
func expectInvalid(err error, field, why string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the API server accepted an object that %s should refuse", field)
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got: %v", err)
	Expect(err.Error()).To(ContainSubstring(field), "the message must name the field")
	Expect(err.Error()).To(ContainSubstring(why))
}

var _ = Describe("ApiToken", func() {
	It("stores a token of every type and reads it back unchanged", func() {
		expires := time.Now().Add(24 * time.Hour).Truncate(time.Second)
		tokens := []*v1alpha1.ApiToken{
			b.ApiToken(uniqueName("team"), ns, b.TeamToken("platform", "payments"), b.WithScopes("read:orders", "deploy/staging"),
				b.WithLifetime("30d"), b.WithRotation("1h", "7d"), b.WithSecretName("payments-token"),
				b.WithSecretLabels(map[string]string{"app": "payments"}), b.WithRecreate(2)),
			b.ApiToken(uniqueName("wildcard"), ns, b.WithExpiresAt(expires), b.WithDisabled(true)),
			b.ApiToken(uniqueName("admin"), ns, b.WithType(v1alpha1.AdminTokenType)),
		}
		for _, token := range tokens {
			want := token.Spec.DeepCopy()
			Expect(k8sClient.Create(ctx, token)).To(Succeed())
			got := &v1alpha1.ApiToken{}
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(token), got)).To(Succeed())
			Expect(got.Spec).To(Equal(*want))
		}
	})

	It("keeps status apart from spec through the status subresource", func() {
		token := b.ApiToken(uniqueName("status"), ns)
		Expect(k8sClient.Create(ctx, token)).To(Succeed())
		base := token.DeepCopy()
		token.Status.Phase = v1alpha1.PhaseActive
		token.Status.TokenHash = "sha256:" + strings.Repeat("ab", 32)
		token.Status.Conditions = []metav1.Condition{{
			Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonIssued,
			LastTransitionTime: metav1.Now(), ObservedGeneration: token.Generation,
		}}
		Expect(k8sClient.Status().Patch(ctx, token, client.MergeFrom(base))).To(Succeed())

		got := &v1alpha1.ApiToken{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(token), got)).To(Succeed())
		Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseActive))
		Expect(got.Generation).To(Equal(token.Generation), "a status write must not bump the generation")

		bad := got.DeepCopy()
		bad.Status.TokenHash = "md5:abc"
		expectInvalid(k8sClient.Status().Update(ctx, bad), "status.tokenHash", "should match")
	})

	DescribeTable("refuses an invalid ApiToken, naming the field",
		func(obj func() client.Object, field, why string) {
			expectInvalid(k8sClient.Create(ctx, obj()), field, why)
		},
		Entry("missing type", func() client.Object {
			return raw("ApiToken", map[string]any{"scopes": []any{"read"}})
		}, "spec.type", "Required value"),
		Entry("unknown type", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithType("Root"))
		}, "spec.type", `supported values: "Team", "Wildcard", "Admin"`),
		Entry("Team token without teams", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithType(v1alpha1.TeamTokenType))
		}, "spec.teams", "teams is required when type is Team"),
		Entry("Team token with an empty teams list", func() client.Object {
			return raw("ApiToken", map[string]any{"type": "Team", "teams": []any{}})
		}, "spec.teams", "teams is required when type is Team"),
		Entry("Wildcard token with teams", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithTeams("platform"))
		}, "spec.teams", "teams is forbidden unless type is Team"),
		Entry("Admin token with teams", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithType(v1alpha1.AdminTokenType), b.WithTeams("platform"))
		}, "spec.teams", "teams is forbidden unless type is Team"),
		Entry("team name that is not a DNS name", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.TeamToken("Platform_Team"))
		}, "spec.teams[0]", "should match"),
		Entry("too many teams", func() client.Object {
			teams := make([]string, 17)
			for i := range teams {
				teams[i] = fmt.Sprintf("team-%d", i)
			}
			return b.ApiToken(uniqueName("t"), ns, b.TeamToken(teams...))
		}, "spec.teams", "must have at most 16 items"),
		Entry("both expiresAt and lifetime", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithExpiresAt(time.Now().Add(time.Hour)), b.WithLifetime("30d"))
		}, "spec.lifetime", "expiresAt and lifetime are mutually exclusive"),
		Entry("zero lifetime", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithLifetime("0d"))
		}, "spec.lifetime", "must be a positive duration"),
		Entry("lifetime in words", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithLifetime("30 days"))
		}, "spec.lifetime", "should match"),
		Entry("fractional lifetime", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithLifetime("1.5h"))
		}, "spec.lifetime", "should match"),
		Entry("negative rotation overlap", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithRotation("-1h", ""))
		}, "spec.rotation.overlap", "should match"),
		Entry("zero renewBefore", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithLifetime("30d"), b.WithRotation("", "0s"))
		}, "spec.rotation.renewBefore", "must be a positive duration"),
		Entry("renewBefore with a fixed expiresAt", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithExpiresAt(time.Now().Add(time.Hour)), b.WithRotation("", "1h"))
		}, "spec.rotation.renewBefore", "renewBefore needs lifetime"),
		Entry("scope with a space", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithScopes("read", "read orders"))
		}, "spec.scopes[1]", "should match"),
		Entry("scope with a glob", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithScopes("read:*"))
		}, "spec.scopes[0]", "should match"),
		Entry("too many scopes", func() client.Object {
			scopes := make([]string, 65)
			for i := range scopes {
				scopes[i] = fmt.Sprintf("scope-%d", i)
			}
			return b.ApiToken(uniqueName("t"), ns, b.WithScopes(scopes...))
		}, "spec.scopes", "must have at most 64 items"),
		Entry("scope longer than 128 characters", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithScopes(strings.Repeat("a", 129)))
		}, "spec.scopes[0]", "may not be more than 128"),
		Entry("secretName that is not a DNS name", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithSecretName("My_Secret"))
		}, "spec.secretName", "should match"),
		Entry("secretTemplate claiming the managed-by label", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithSecretLabels(map[string]string{v1alpha1.ManagedByLabel: "me"}))
		}, "spec.secretTemplate.labels", "set by Tokenwarden"),
		Entry("secretTemplate claiming the annotation that records it", func() client.Object {
			t := b.ApiToken(uniqueName("t"), ns)
			t.Spec.SecretTemplate = &v1alpha1.SecretTemplate{Annotations: map[string]string{v1alpha1.SecretTemplateAnnotation: "{}"}}
			return t
		}, "spec.secretTemplate.annotations", "set by Tokenwarden"),
		Entry("negative recreate counter", func() client.Object {
			return b.ApiToken(uniqueName("t"), ns, b.WithRecreate(-1))
		}, "spec.recreate", "greater than or equal to 0"),
	)

	DescribeTable("refuses changes to immutable fields, naming the field",
		func(before *v1alpha1.ApiToken, change func(*v1alpha1.ApiToken), field, why string) {
			Expect(k8sClient.Create(ctx, before)).To(Succeed())
			after := before.DeepCopy()
			change(after)
			expectInvalid(k8sClient.Update(ctx, after), field, why)
		},
		Entry("type", b.ApiToken(uniqueName("imm"), ns),
			func(t *v1alpha1.ApiToken) { t.Spec.Type = v1alpha1.AdminTokenType }, "spec.type", "type is immutable"),
		Entry("teams", b.ApiToken(uniqueName("imm"), ns, b.TeamToken("platform")),
			func(t *v1alpha1.ApiToken) { t.Spec.Teams = []string{"platform", "payments"} }, "spec.teams", "teams is immutable"),
		Entry("secretName, changed", b.ApiToken(uniqueName("imm"), ns, b.WithSecretName("one")),
			func(t *v1alpha1.ApiToken) { t.Spec.SecretName = "two" }, "spec.secretName", "secretName is immutable"),
		Entry("secretName, set later", b.ApiToken(uniqueName("imm"), ns),
			func(t *v1alpha1.ApiToken) { t.Spec.SecretName = "late" }, "spec.secretName", "secretName is immutable"),
		Entry("secretName, removed", b.ApiToken(uniqueName("imm"), ns, b.WithSecretName("one")),
			func(t *v1alpha1.ApiToken) { t.Spec.SecretName = "" }, "spec.secretName", "secretName is immutable"),
	)

	It("allows changing the mutable fields", func() {
		token := b.ApiToken(uniqueName("mutable"), ns, b.TeamToken("platform"), b.WithSecretName("kept"))
		Expect(k8sClient.Create(ctx, token)).To(Succeed())
		token.Spec.Disabled = true
		token.Spec.Recreate = 1
		token.Spec.Scopes = []v1alpha1.ScopeString{"read"}
		b.WithLifetime("12h")(token)
		Expect(k8sClient.Update(ctx, token)).To(Succeed())
	})
})

var _ = Describe("Team", func() {
	It("stores a complete Team and reads it back unchanged", func() {
		team := b.Team(uniqueName("platform"),
			b.WithDescription("Runs the platform."),
			b.WithOwners(b.User("jane@example.com"), b.Group("platform-admins"), b.ServiceAccount("argocd", "argocd-application-controller")),
			b.WithNamespaces("platform", "platform-staging"),
			b.WithPolicy("90d", true, "read:*", "deploy/?"))
		want := team.Spec.DeepCopy()
		Expect(k8sClient.Create(ctx, team)).To(Succeed())
		got := &v1alpha1.Team{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), got)).To(Succeed())
		Expect(got.Spec).To(Equal(*want))
		Expect(got.Namespace).To(BeEmpty(), "Team is cluster-scoped")
	})

	DescribeTable("refuses an invalid Team, naming the field",
		func(obj func() client.Object, field, why string) {
			expectInvalid(k8sClient.Create(ctx, obj()), field, why)
		},
		Entry("no owners field", func() client.Object {
			return raw("Team", map[string]any{"namespaces": []any{"platform"}})
		}, "spec.owners", "Required value"),
		Entry("an empty owners list", func() client.Object {
			return raw("Team", map[string]any{"owners": []any{}})
		}, "spec.owners", "should have at least 1 items"),
		Entry("owner of an unknown kind", func() client.Object {
			return b.Team(uniqueName("team"), b.WithOwners(v1alpha1.Subject{Kind: "Robot", Name: "r2"}))
		}, "spec.owners[0].kind", `supported values: "User", "Group", "ServiceAccount"`),
		Entry("owner without a name", func() client.Object {
			return b.Team(uniqueName("team"), b.WithOwners(v1alpha1.Subject{Kind: v1alpha1.UserSubject}))
		}, "spec.owners[0].name", "at least 1 chars long"),
		Entry("ServiceAccount owner without a namespace", func() client.Object {
			return b.Team(uniqueName("team"), b.WithOwners(b.User("jane"), v1alpha1.Subject{Kind: v1alpha1.ServiceAccountSubject, Name: "deployer"}))
		}, "spec.owners[1].namespace", "namespace is required when kind is ServiceAccount"),
		Entry("User owner with a namespace", func() client.Object {
			return b.Team(uniqueName("team"), b.WithOwners(v1alpha1.Subject{Kind: v1alpha1.UserSubject, Name: "jane", Namespace: "x"}))
		}, "spec.owners[0].namespace", "namespace is forbidden unless kind is ServiceAccount"),
		Entry("namespace that is not a DNS label", func() client.Object {
			return b.Team(uniqueName("team"), b.WithNamespaces("Prod_NS"))
		}, "spec.namespaces[0]", "should match"),
		Entry("zero maxLifetime", func() client.Object {
			return b.Team(uniqueName("team"), b.WithPolicy("0s", false))
		}, "spec.policy.maxLifetime", "must be a positive duration"),
		Entry("allowed scope glob with a space", func() client.Object {
			return b.Team(uniqueName("team"), b.WithPolicy("", false, "read *"))
		}, "spec.policy.allowedScopes[0]", "should match"),
		Entry("description longer than 1024 characters", func() client.Object {
			return b.Team(uniqueName("team"), b.WithDescription(strings.Repeat("x", 1025)))
		}, "spec.description", "may not be more than 1024"),
	)
})
