package authz

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/duration"
)

// PolicyOf decides whether spec keeps the team policies that bind tok when
// holder holds it, counting lifetimes from from (now at admission, the
// issuance instant at reconcile time):
//   - a Team token keeps the policies of its teams;
//   - a Wildcard token of a non-admin keeps the policy of every team the
//     holder owns now: it may speak for any of them, so it must satisfy the
//     strictest of each rule. Owning a team whose policy it breaks later does
//     not fail it: the verifier then leaves that team out (WildcardTeams);
//   - Admin tokens, and an admin's Wildcard tokens, follow no team policy.
func PolicyOf(tok Token, spec *v1alpha1.ApiTokenSpec, holder *v1alpha1.UserIdentity, teams Teams, admin AdminAnswer, from time.Time) Verdict {
	switch tok.Type {
	case v1alpha1.TeamTokenType:
		if errs := CheckPolicy(spec, tok.Teams, teams, from); len(errs) > 0 {
			return Verdict{Reason: v1alpha1.ReasonPolicyViolation, Errs: errs}
		}
	case v1alpha1.WildcardTokenType:
		if admin == AdminYes {
			return allowed
		}
		if errs := CheckPolicy(spec, OwnedTeams(holder, teams), teams, from); len(errs) > 0 {
			return orAdmin(admin, Verdict{Reason: v1alpha1.ReasonPolicyViolation, Errs: errs})
		}
	}
	return allowed
}

// PolicyFrom is the instant a token's lifetime counts from when its policy
// is checked: the issuance of the value it holds, while spec asks for no
// new one (a spec edit keeps the value, so its lifetime keeps counting from
// when it was issued), else now, when a new value is about to be issued.
// Admission and the reconciler both use it, so an edit admitted is an edit
// the reconciler keeps.
func PolicyFrom(spec *v1alpha1.ApiTokenSpec, status *v1alpha1.ApiTokenStatus, now time.Time) time.Time {
	if status.IssuedAt != nil && spec.Recreate == status.Recreate {
		return status.IssuedAt.Time
	}
	return now
}

// OwnedTeams are the names of the teams user owns, sorted.
func OwnedTeams(user *v1alpha1.UserIdentity, teams Teams) []string {
	var names []string
	for name, team := range teams {
		if IsOwner(team, user) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// CheckPolicy returns how spec breaks the policies of the Teams called
// names, as errors on the spec fields at fault. from is the instant
// lifetimes count from.
func CheckPolicy(spec *v1alpha1.ApiTokenSpec, names []string, teams Teams, from time.Time) field.ErrorList {
	if len(names) == 0 {
		return nil
	}
	var errs field.ErrorList
	lifetime, lifetimeErr := effectiveLifetime(spec, from)
	if lifetimeErr != nil {
		errs = append(errs, field.Invalid(specPath.Child("lifetime"), *spec.Lifetime, lifetimeErr.Error()))
	}
	for _, name := range names {
		if team, ok := teams[name]; ok {
			errs = append(errs, teamPolicyErrors(spec, team, lifetime)...)
		}
	}
	return errs
}

// KeepsPolicy reports whether a token of spec, issued at from, keeps team's
// policy: the same rule as CheckPolicy, for the verifier, which allocates
// nothing unless the token breaks it.
func KeepsPolicy(spec *v1alpha1.ApiTokenSpec, team *v1alpha1.Team, from time.Time) bool {
	if team.Spec.Policy == nil {
		return true
	}
	lifetime, err := effectiveLifetime(spec, from)
	return err == nil && len(teamPolicyErrors(spec, team, lifetime)) == 0
}

// teamPolicyErrors returns how spec, verifying for lifetime (nil: forever,
// or unknown when the lifetime does not parse), breaks team's policy.
func teamPolicyErrors(spec *v1alpha1.ApiTokenSpec, team *v1alpha1.Team, lifetime *time.Duration) field.ErrorList {
	policy := team.Spec.Policy
	if policy == nil {
		return nil
	}
	name := team.Name
	var errs field.ErrorList
	if policy.RequireExpiry && spec.ExpiresAt == nil && spec.Lifetime == nil {
		errs = append(errs, field.Required(specPath.Child("lifetime"),
			fmt.Sprintf("team %q requires every token to expire: set lifetime or expiresAt", name)))
	}
	if policy.MaxLifetime != nil && (lifetime != nil || spec.Lifetime == nil) {
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

// WildcardTeams are the teams a Wildcard token of spec, issued at issuedAt
// and held by holder, speaks for now, out of names (the sorted names of
// teams): every team when holder is an admin; otherwise the teams holder
// owns whose policy the token keeps, so that a team owner's token never
// speaks for a team whose rules it breaks. It reports needAdmin, and no
// teams, when the answer depends on admin standing that admin does not
// give: holder does not own, within policy, every team.
func WildcardTeams(spec *v1alpha1.ApiTokenSpec, issuedAt time.Time, holder *v1alpha1.UserIdentity, teams Teams, names []string, admin AdminAnswer) (speaksFor []string, needAdmin bool) {
	if admin == AdminYes {
		return names, false
	}
	owned := make([]string, 0, len(names))
	for _, name := range names {
		if team := teams[name]; IsOwner(team, holder) && KeepsPolicy(spec, team, issuedAt) {
			owned = append(owned, name)
		}
	}
	// Owning every team already gives every team, so an admin check could
	// not add anything; skipping it spares a SubjectAccessReview.
	if len(owned) == len(names) {
		return names, false
	}
	if admin == AdminUnknown {
		return nil, true
	}
	return owned, false
}
