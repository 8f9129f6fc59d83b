package authz

import (
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// RBACChange is whose admin standing one ClusterRole or ClusterRoleBinding
// change may alter: the identities found under Keys (OwnerKeys' form:
// user:<name>, group:<name>), or anyone's when All. Neither means the
// change cannot alter any answer.
type RBACChange struct {
	All  bool
	Keys []string
}

// Empty reports a change that alters no one's standing.
func (c RBACChange) Empty() bool { return !c.All && len(c.Keys) == 0 }

// RBACView is what deciding an RBAC change needs to look up: a ClusterRole's
// rules by name (found false when there is none), and every
// ClusterRoleBinding. Standing reads them from its informers' caches, which
// hold each change before its handlers are told of it.
type RBACView struct {
	RoleRules func(name string) (rules []rbacv1.PolicyRule, found bool, err error)
	Bindings  func() ([]rbacv1.ClusterRoleBinding, error)
}

// GrantsAdmin reports whether rules allow the verb admin on apitokens in our
// group, as kube-apiserver's RBAC authorizer matches a request without an
// object name. A rule limited to resourceNames is counted too: erring
// towards a re-check costs one review, erring the other way a missed
// demotion.
func GrantsAdmin(rules []rbacv1.PolicyRule) bool {
	for _, r := range rules {
		if anyOf(r.APIGroups, v1alpha1.GroupVersion.Group) && anyOf(r.Resources, "apitokens") && anyOf(r.Verbs, v1alpha1.AdminVerb) {
			return true
		}
	}
	return false
}

func anyOf(list []string, want string) bool {
	return slices.Contains(list, want) || slices.Contains(list, rbacv1.ResourceAll)
}

// BindingKeys are the OwnerKeys under which the identities of subjects are
// found: RBAC's subject kinds are a Team owner's.
func BindingKeys(subjects []rbacv1.Subject) []string {
	keys := make([]string, 0, len(subjects))
	for _, s := range subjects {
		keys = append(keys, SubjectKey(v1alpha1.Subject{Kind: v1alpha1.SubjectKind(s.Kind), Name: s.Name, Namespace: s.Namespace}))
	}
	return keys
}

// RoleChange decides a ClusterRole change (old nil on add, new nil on
// delete): if the role granted admin before or after it, everyone bound to
// it. A change to labels or annotations alone alters nothing.
func RoleChange(old, new *rbacv1.ClusterRole, view RBACView) RBACChange {
	if old != nil && new != nil && equality.Semantic.DeepEqual(old.Rules, new.Rules) {
		return RBACChange{}
	}
	var name string
	granted := false
	for _, r := range []*rbacv1.ClusterRole{old, new} {
		if r != nil {
			name = r.Name
			granted = granted || GrantsAdmin(r.Rules)
		}
	}
	if !granted {
		return RBACChange{}
	}
	bindings, err := view.Bindings()
	if err != nil {
		return RBACChange{All: true}
	}
	var change RBACChange
	for i := range bindings {
		if ref := bindings[i].RoleRef; ref.Kind == "ClusterRole" && ref.Name == name {
			change.Keys = append(change.Keys, BindingKeys(bindings[i].Subjects)...)
		}
	}
	return change
}

// BindingChange decides a ClusterRoleBinding change (old nil on add, new
// nil on delete): if the role it refers to grants admin, the subjects
// before and after it. A binding to a role that does not exist grants
// nothing; the role's creation is a change of its own.
func BindingChange(old, new *rbacv1.ClusterRoleBinding, view RBACView) RBACChange {
	if old != nil && new != nil && old.RoleRef == new.RoleRef && equality.Semantic.DeepEqual(old.Subjects, new.Subjects) {
		return RBACChange{}
	}
	var change RBACChange
	for _, b := range []*rbacv1.ClusterRoleBinding{old, new} {
		if b == nil {
			continue
		}
		rules, found, err := view.RoleRules(b.RoleRef.Name)
		if err != nil {
			return RBACChange{All: true}
		}
		if found && GrantsAdmin(rules) {
			change.Keys = append(change.Keys, BindingKeys(b.Subjects)...)
		}
	}
	return change
}
