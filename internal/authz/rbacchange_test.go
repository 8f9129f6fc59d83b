package authz

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

var (
	adminRule = rbacv1.PolicyRule{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"apitokens"}, Verbs: []string{v1alpha1.AdminVerb}}
	editRule  = rbacv1.PolicyRule{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"apitokens"}, Verbs: []string{"create", "update"}}
)

func TestGrantsAdmin(t *testing.T) {
	group := v1alpha1.GroupVersion.Group
	tests := []struct {
		name  string
		rules []rbacv1.PolicyRule
		want  bool
	}{
		{"none", nil, false},
		{"the admin verb", []rbacv1.PolicyRule{editRule, adminRule}, true},
		{"other verbs only", []rbacv1.PolicyRule{editRule}, false},
		{"every verb", []rbacv1.PolicyRule{{APIGroups: []string{group}, Resources: []string{"apitokens"}, Verbs: []string{"*"}}}, true},
		{"every resource", []rbacv1.PolicyRule{{APIGroups: []string{group}, Resources: []string{"*"}, Verbs: []string{"admin"}}}, true},
		{"every group", []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"apitokens"}, Verbs: []string{"admin"}}}, true},
		{"cluster-admin", []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}, true},
		{"another group's apitokens", []rbacv1.PolicyRule{{APIGroups: []string{"example.com"}, Resources: []string{"apitokens"}, Verbs: []string{"*"}}}, false},
		{"teams", []rbacv1.PolicyRule{{APIGroups: []string{group}, Resources: []string{"teams"}, Verbs: []string{"admin"}}}, false},
		{"a subresource", []rbacv1.PolicyRule{{APIGroups: []string{group}, Resources: []string{"apitokens/status"}, Verbs: []string{"*"}}}, false},
		{"named tokens count too", []rbacv1.PolicyRule{{APIGroups: []string{group}, Resources: []string{"apitokens"}, ResourceNames: []string{"x"}, Verbs: []string{"admin"}}}, true},
		{"non-resource URLs", []rbacv1.PolicyRule{{NonResourceURLs: []string{"*"}, Verbs: []string{"*"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(GrantsAdmin(tt.rules)).To(Equal(tt.want))
		})
	}
}

// rbacWorld is an RBACView over fixed roles and bindings.
type rbacWorld struct {
	roles    map[string][]rbacv1.PolicyRule
	bindings []rbacv1.ClusterRoleBinding
	err      error
}

func (w rbacWorld) view() RBACView {
	return RBACView{
		RoleRules: func(name string) ([]rbacv1.PolicyRule, bool, error) {
			rules, ok := w.roles[name]
			return rules, ok, w.err
		},
		Bindings: func() ([]rbacv1.ClusterRoleBinding, error) { return w.bindings, w.err },
	}
}

func role(name string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
}

func binding(name, roleName string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roleName},
		Subjects:   subjects,
	}
}

func userSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

func TestRBACChange(t *testing.T) {
	group := rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "platform"}
	sa := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: "ci", Name: "deployer"}
	world := rbacWorld{
		roles: map[string][]rbacv1.PolicyRule{"tw-admin": {adminRule}, "editor": {editRule}},
		bindings: []rbacv1.ClusterRoleBinding{
			*binding("admins", "tw-admin", userSubject("root"), group),
			*binding("ci-admin", "tw-admin", sa),
			*binding("editors", "editor", userSubject("jane")),
		},
	}
	relabelled := binding("admins", "tw-admin", userSubject("root"), group)
	relabelled.Labels = map[string]string{"team": "platform"}
	relabelledRole := role("tw-admin", adminRule)
	relabelledRole.Labels = map[string]string{"team": "platform"}
	broken := world
	broken.err = errors.New("cache stopped")

	tests := []struct {
		name string
		got  RBACChange
		want RBACChange
	}{
		{"a binding to the admin role is created", BindingChange(nil, binding("new", "tw-admin", userSubject("bob")), world.view()),
			RBACChange{Keys: []string{"user:bob"}}},
		{"a binding to the admin role is deleted", BindingChange(&world.bindings[0], nil, world.view()),
			RBACChange{Keys: []string{"user:root", "group:platform"}}},
		{"a ServiceAccount's binding", BindingChange(&world.bindings[1], nil, world.view()),
			RBACChange{Keys: []string{"user:system:serviceaccount:ci:deployer"}}},
		{"subjects change: before and after", BindingChange(&world.bindings[0], binding("admins", "tw-admin", userSubject("bob")), world.view()),
			RBACChange{Keys: []string{"user:root", "group:platform", "user:bob"}}},
		{"labels only", BindingChange(&world.bindings[0], relabelled, world.view()), RBACChange{}},
		{"a binding to a role without the admin verb", BindingChange(nil, binding("more-editors", "editor", userSubject("bob")), world.view()), RBACChange{}},
		{"a binding to a role not there yet", BindingChange(nil, binding("early", "later", userSubject("bob")), world.view()), RBACChange{}},
		{"a binding the cache cannot weigh", BindingChange(nil, binding("new", "tw-admin", userSubject("bob")), broken.view()), RBACChange{All: true}},

		{"the admin role gets the verb: whoever is bound to it", RoleChange(role("editor", editRule), role("editor", editRule, adminRule), world.view()),
			RBACChange{Keys: []string{"user:jane"}}},
		{"the admin role loses the verb", RoleChange(role("tw-admin", adminRule), role("tw-admin", editRule), world.view()),
			RBACChange{Keys: []string{"user:root", "group:platform", "user:system:serviceaccount:ci:deployer"}}},
		{"the admin role is deleted", RoleChange(role("tw-admin", adminRule), nil, world.view()),
			RBACChange{Keys: []string{"user:root", "group:platform", "user:system:serviceaccount:ci:deployer"}}},
		{"a role created with the verb, nobody bound yet", RoleChange(nil, role("later", adminRule), world.view()), RBACChange{}},
		{"a role's labels only", RoleChange(role("tw-admin", adminRule), relabelledRole, world.view()), RBACChange{}},
		{"a role without the verb changes", RoleChange(role("editor", editRule), role("editor"), world.view()), RBACChange{}},
		{"a role the cache cannot weigh", RoleChange(role("tw-admin", adminRule), nil, broken.view()), RBACChange{All: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(tt.got.All).To(Equal(tt.want.All))
			g.Expect(tt.got.Keys).To(ConsistOf(tt.want.Keys))
			g.Expect(tt.got.Empty()).To(Equal(tt.want.Empty()))
		})
	}
}

// TestStandingScopesChanges: what Changes' subscriber takes is whose
// standing the changes since it last took may have altered; a change that
// alters no one's forgets nothing and tells nobody.
func TestStandingScopesChanges(t *testing.T) {
	g := NewWithT(t)
	inner := &countingChecker{admin: true}
	s, _ := newTestStanding(inner)
	g.Expect(s.IsAdmin(t.Context(), user("root"))).To(BeTrue())

	s.ChangedFor(RBACChange{})
	g.Expect(s.Changes()).NotTo(Receive(), "an empty change tells nobody")
	g.Expect(s.Unsettled()).To(BeZero(), "and opens no settle window")
	g.Expect(s.IsAdmin(t.Context(), user("root"))).To(BeTrue())
	g.Expect(inner.asked).To(Equal(1), "nor forgets any answer")

	s.ChangedFor(RBACChange{Keys: []string{"user:root"}})
	s.ChangedFor(RBACChange{Keys: []string{"group:platform"}})
	g.Expect(s.Changes()).To(Receive(), "one notice for both")
	all, keys := s.TakeChanges()
	g.Expect(all).To(BeFalse())
	g.Expect(keys).To(HaveLen(2))
	g.Expect(keys).To(HaveKey("user:root"))
	g.Expect(keys).To(HaveKey("group:platform"))
	all, keys = s.TakeChanges()
	g.Expect(all).To(BeFalse())
	g.Expect(keys).To(BeEmpty(), "taken once")

	s.ChangedFor(RBACChange{Keys: []string{"user:root"}})
	s.Changed()
	all, _ = s.TakeChanges()
	g.Expect(all).To(BeTrue(), "a change that could not be weighed re-checks everyone")
}
