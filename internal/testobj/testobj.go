// Package testobj makes Team and ApiToken objects for tests with functional
// options, so a test states only what matters to it:
//
//	testobj.ApiToken("t1", "ns", testobj.WithType(v1alpha1.TeamTokenType), testobj.WithTeams("a"))
package testobj

import (
	"encoding/json"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// ApiTokenOption changes an ApiToken under construction.
type ApiTokenOption func(*v1alpha1.ApiToken)

// ApiToken returns a Wildcard token named name in namespace, changed by opts.
func ApiToken(name, namespace string, opts ...ApiTokenOption) *v1alpha1.ApiToken {
	t := &v1alpha1.ApiToken{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       v1alpha1.ApiTokenSpec{Type: v1alpha1.WildcardTokenType},
	}
	for _, opt := range opts {
		opt(t)
	}
	return t
}

// WithType sets spec.type.
func WithType(typ v1alpha1.ApiTokenType) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) { t.Spec.Type = typ }
}

// WithTeams sets spec.teams.
func WithTeams(teams ...string) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) { t.Spec.Teams = teams }
}

// TeamToken makes it a Team token of teams.
func TeamToken(teams ...string) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) {
		t.Spec.Type = v1alpha1.TeamTokenType
		t.Spec.Teams = teams
	}
}

// WithScopes sets spec.scopes.
func WithScopes(scopes ...string) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) {
		t.Spec.Scopes = nil
		for _, s := range scopes {
			t.Spec.Scopes = append(t.Spec.Scopes, v1alpha1.ScopeString(s))
		}
	}
}

// WithLifetime sets spec.lifetime.
func WithLifetime(d string) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) {
		lifetime := v1alpha1.Duration(d)
		t.Spec.Lifetime = &lifetime
	}
}

// WithExpiresAt sets spec.expiresAt.
func WithExpiresAt(at time.Time) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) {
		expires := metav1.NewTime(at)
		t.Spec.ExpiresAt = &expires
	}
}

// WithRotation sets spec.rotation; an empty string leaves a field unset.
func WithRotation(overlap, renewBefore string) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) {
		t.Spec.Rotation = &v1alpha1.RotationSpec{}
		if overlap != "" {
			d := v1alpha1.Duration(overlap)
			t.Spec.Rotation.Overlap = &d
		}
		if renewBefore != "" {
			d := v1alpha1.Duration(renewBefore)
			t.Spec.Rotation.RenewBefore = &d
		}
	}
}

// WithSecretName sets spec.secretName.
func WithSecretName(name string) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) { t.Spec.SecretName = name }
}

// WithSecretLabels sets spec.secretTemplate.labels.
func WithSecretLabels(labels map[string]string) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) {
		if t.Spec.SecretTemplate == nil {
			t.Spec.SecretTemplate = &v1alpha1.SecretTemplate{}
		}
		t.Spec.SecretTemplate.Labels = labels
	}
}

// WithDisabled sets spec.disabled.
func WithDisabled(disabled bool) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) { t.Spec.Disabled = disabled }
}

// WithRecreate sets spec.recreate.
func WithRecreate(n int64) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) { t.Spec.Recreate = n }
}

// WithTokenAnnotation sets one annotation on the ApiToken.
func WithTokenAnnotation(key, value string) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) { metav1.SetMetaDataAnnotation(&t.ObjectMeta, key, value) }
}

// TeamOption changes a Team under construction.
type TeamOption func(*v1alpha1.Team)

// Team returns a Team named name owned by the user "owner", changed by opts.
func Team(name string, opts ...TeamOption) *v1alpha1.Team {
	t := &v1alpha1.Team{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.TeamSpec{
			Owners: []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "owner"}},
		},
	}
	for _, opt := range opts {
		opt(t)
	}
	return t
}

// WithOwners replaces spec.owners.
func WithOwners(owners ...v1alpha1.Subject) TeamOption {
	return func(t *v1alpha1.Team) { t.Spec.Owners = owners }
}

// User is an owner of kind User.
func User(name string) v1alpha1.Subject {
	return v1alpha1.Subject{Kind: v1alpha1.UserSubject, Name: name}
}

// Group is an owner of kind Group.
func Group(name string) v1alpha1.Subject {
	return v1alpha1.Subject{Kind: v1alpha1.GroupSubject, Name: name}
}

// ServiceAccount is an owner of kind ServiceAccount.
func ServiceAccount(namespace, name string) v1alpha1.Subject {
	return v1alpha1.Subject{Kind: v1alpha1.ServiceAccountSubject, Namespace: namespace, Name: name}
}

// WithNamespaces sets spec.namespaces.
func WithNamespaces(namespaces ...string) TeamOption {
	return func(t *v1alpha1.Team) { t.Spec.Namespaces = namespaces }
}

// WithDescription sets spec.description.
func WithDescription(description string) TeamOption {
	return func(t *v1alpha1.Team) { t.Spec.Description = description }
}

// WithPolicy sets spec.policy.
func WithPolicy(maxLifetime string, requireExpiry bool, allowedScopes ...string) TeamOption {
	return func(t *v1alpha1.Team) {
		policy := &v1alpha1.TeamPolicy{RequireExpiry: requireExpiry}
		if maxLifetime != "" {
			d := v1alpha1.Duration(maxLifetime)
			policy.MaxLifetime = &d
		}
		for _, s := range allowedScopes {
			policy.AllowedScopes = append(policy.AllowedScopes, v1alpha1.ScopeGlob(s))
		}
		t.Spec.Policy = policy
	}
}

// WithCreator records username (with groups) as the creator, as the
// admission webhook does at CREATE.
func WithCreator(username string, groups ...string) ApiTokenOption {
	return func(t *v1alpha1.ApiToken) {
		data, err := json.Marshal(v1alpha1.UserIdentity{Username: username, Groups: groups})
		if err != nil {
			panic(err)
		}
		metav1.SetMetaDataAnnotation(&t.ObjectMeta, v1alpha1.CreatorAnnotation, string(data))
	}
}
