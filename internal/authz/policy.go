package authz

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/duration"
)

// CheckPolicy returns how spec breaks the policies of the Teams it names,
// as errors on the spec fields at fault. from is the instant lifetimes count
// from: now at admission, the issuance instant at reconcile time.
//
// Policies bind Team tokens only: a Wildcard token speaks for whichever
// teams its creator owns at verification time, so no fixed policy applies.
func CheckPolicy(spec *v1alpha1.ApiTokenSpec, teams Teams, from time.Time) field.ErrorList {
	if spec.Type != v1alpha1.TeamTokenType {
		return nil
	}
	specPath := field.NewPath("spec")
	var errs field.ErrorList
	lifetime, lifetimeErr := effectiveLifetime(spec, from)
	if lifetimeErr != nil {
		errs = append(errs, field.Invalid(specPath.Child("lifetime"), *spec.Lifetime, lifetimeErr.Error()))
	}
	for _, name := range spec.Teams {
		team, ok := teams[name]
		if !ok || team.Spec.Policy == nil {
			continue
		}
		policy := team.Spec.Policy
		if policy.RequireExpiry && spec.ExpiresAt == nil && spec.Lifetime == nil {
			errs = append(errs, field.Required(specPath.Child("lifetime"),
				fmt.Sprintf("team %q requires every token to expire: set lifetime or expiresAt", name)))
		}
		if policy.MaxLifetime != nil && lifetimeErr == nil {
			max, err := duration.Parse(*policy.MaxLifetime)
			if err == nil && (lifetime == nil || *lifetime > max) {
				errs = append(errs, lifetimeError(spec, specPath, name, *policy.MaxLifetime))
			}
		}
		if len(policy.AllowedScopes) > 0 {
			for i, scope := range spec.Scopes {
				if !scopeAllowed(scope, policy.AllowedScopes) {
					errs = append(errs, field.Forbidden(specPath.Child("scopes").Index(i),
						fmt.Sprintf("scope %q is not allowed by team %q (allowedScopes: %v)", scope, name, policy.AllowedScopes)))
				}
			}
		}
	}
	return errs
}

// effectiveLifetime is how long a value issued at from verifies; nil means
// forever.
func effectiveLifetime(spec *v1alpha1.ApiTokenSpec, from time.Time) (*time.Duration, error) {
	switch {
	case spec.Lifetime != nil:
		d, err := duration.Parse(*spec.Lifetime)
		if err != nil {
			return nil, err
		}
		return &d, nil
	case spec.ExpiresAt != nil:
		d := spec.ExpiresAt.Sub(from)
		return &d, nil
	}
	return nil, nil
}

func lifetimeError(spec *v1alpha1.ApiTokenSpec, specPath *field.Path, team string, max v1alpha1.Duration) *field.Error {
	switch {
	case spec.Lifetime != nil:
		return field.Invalid(specPath.Child("lifetime"), *spec.Lifetime,
			fmt.Sprintf("longer than the maxLifetime %s of team %q", max, team))
	case spec.ExpiresAt != nil:
		// No "how far away" in the message: it would change with every
		// reconcile and so rewrite the status each time.
		return field.Invalid(specPath.Child("expiresAt"), spec.ExpiresAt.UTC().Format(time.RFC3339),
			fmt.Sprintf("further away than the maxLifetime %s of team %q", max, team))
	}
	return field.Required(specPath.Child("lifetime"),
		fmt.Sprintf("team %q has a maxLifetime of %s: set lifetime or expiresAt", team, max))
}

func scopeAllowed(scope v1alpha1.ScopeString, globs []v1alpha1.ScopeGlob) bool {
	for _, g := range globs {
		if GlobMatch(string(g), string(scope)) {
			return true
		}
	}
	return false
}
