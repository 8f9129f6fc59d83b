// Package authz holds Tokenwarden's permission decisions as pure functions:
// who owns a Team, whether a token's creator is still entitled to it, and
// whether a token keeps its teams' policies. The admission webhook and the
// reconcilers call the same functions, so a rule is written once.
package authz

import (
	"context"
	"fmt"
	"strings"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// ServiceAccountPrefix starts the user name Kubernetes gives a
// ServiceAccount: system:serviceaccount:<namespace>:<name>.
const ServiceAccountPrefix = "system:serviceaccount:"

// Matches reports whether user is subject: a User by name, a Group by the
// user's groups, a ServiceAccount by its system:serviceaccount user name.
func Matches(subject v1alpha1.Subject, user *v1alpha1.UserIdentity) bool {
	if user == nil {
		return false
	}
	switch subject.Kind {
	case v1alpha1.UserSubject:
		return user.Username == subject.Name
	case v1alpha1.GroupSubject:
		for _, g := range user.Groups {
			if g == subject.Name {
				return true
			}
		}
	case v1alpha1.ServiceAccountSubject:
		return user.Username == ServiceAccountPrefix+subject.Namespace+":"+subject.Name
	}
	return false
}

// IsOwner reports whether user is one of team's owners.
func IsOwner(team *v1alpha1.Team, user *v1alpha1.UserIdentity) bool {
	for _, owner := range team.Spec.Owners {
		if Matches(owner, user) {
			return true
		}
	}
	return false
}

// AdminAnswer is what is known of a user's admin standing. Asking is a
// SubjectAccessReview, so decisions take Unknown and say when they need it.
type AdminAnswer int

const (
	// AdminUnknown means nobody asked yet.
	AdminUnknown AdminAnswer = iota
	// AdminYes means RBAC grants the user the verb admin on apitokens.
	AdminYes
	// AdminNo means it does not.
	AdminNo
)

// AdminAnswerOf turns a yes/no into an AdminAnswer.
func AdminAnswerOf(admin bool) AdminAnswer {
	if admin {
		return AdminYes
	}
	return AdminNo
}

// Verdict is the outcome of a decision.
type Verdict struct {
	// Allowed is true when the decision is yes.
	Allowed bool
	// NeedAdmin is true when the decision depends on the user's admin
	// standing, which was AdminUnknown: ask, and decide again.
	NeedAdmin bool
	// Reason is a v1alpha1 condition reason when not Allowed.
	Reason string
	// Message explains a refusal to a person.
	Message string
}

var (
	allowed   = Verdict{Allowed: true}
	needAdmin = Verdict{NeedAdmin: true}
)

func refuse(reason, format string, args ...any) Verdict {
	return Verdict{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Teams is the set of Teams that exist, by name.
type Teams map[string]*v1alpha1.Team

// TeamsOf indexes a list of Teams by name.
func TeamsOf(list []v1alpha1.Team) Teams {
	teams := make(Teams, len(list))
	for i := range list {
		teams[list[i].Name] = &list[i]
	}
	return teams
}

// OwnsAny reports whether user owns at least one of teams.
func (t Teams) OwnsAny(user *v1alpha1.UserIdentity) bool {
	for _, team := range t {
		if IsOwner(team, user) {
			return true
		}
	}
	return false
}

// Entitlement decides whether creator may still hold a token of spec's type
// and teams, following the create column of the permission matrix:
//   - Admin tokens: the creator is an admin;
//   - Team tokens: every listed team exists, and the creator owns all of
//     them or is an admin;
//   - Wildcard tokens: the creator owns at least one team or is an admin.
//
// A token whose team was deleted is refused with TeamDeleted even for an
// admin creator: the team it speaks for is gone.
func Entitlement(spec *v1alpha1.ApiTokenSpec, creator *v1alpha1.UserIdentity, teams Teams, admin AdminAnswer) Verdict {
	if creator == nil || creator.Username == "" {
		return refuse(v1alpha1.ReasonCreatorUnknown, "the token has no valid %s annotation, so its creator cannot be checked", v1alpha1.CreatorAnnotation)
	}
	switch spec.Type {
	case v1alpha1.AdminTokenType:
		return orAdmin(admin, refuse(v1alpha1.ReasonCreatorNotAdmin, "creator %q is not a Tokenwarden admin", creator.Username))
	case v1alpha1.TeamTokenType:
		var missing, notOwned []string
		for _, name := range spec.Teams {
			team, ok := teams[name]
			switch {
			case !ok:
				missing = append(missing, name)
			case !IsOwner(team, creator):
				notOwned = append(notOwned, name)
			}
		}
		if len(missing) > 0 {
			return refuse(v1alpha1.ReasonTeamDeleted, "team %s does not exist", quoteJoin(missing))
		}
		if len(notOwned) == 0 {
			return allowed
		}
		return orAdmin(admin, refuse(v1alpha1.ReasonCreatorNotOwner, "creator %q is neither an admin nor an owner of team %s", creator.Username, quoteJoin(notOwned)))
	case v1alpha1.WildcardTokenType:
		if teams.OwnsAny(creator) {
			return allowed
		}
		return orAdmin(admin, refuse(v1alpha1.ReasonCreatorNotOwner, "creator %q is neither an admin nor an owner of any team", creator.Username))
	}
	return refuse(v1alpha1.ReasonPolicyViolation, "unknown token type %q", spec.Type)
}

// orAdmin allows an admin, asks when standing is unknown, and otherwise
// returns the refusal.
func orAdmin(admin AdminAnswer, refusal Verdict) Verdict {
	switch admin {
	case AdminYes:
		return allowed
	case AdminUnknown:
		return needAdmin
	}
	return refusal
}

func quoteJoin(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(quoted, ", ")
}

// Invalidation is a token a change would invalidate, and why.
type Invalidation struct {
	Namespace, Name string
	Reason          string
}

// Impact lists which of tokens would lose their entitlement if the Teams
// were teamsAfter: what a Team edit or deletion is about to invalidate.
// Tokens already invalidated or never issued are left out.
func Impact(ctx context.Context, checker AdminChecker, tokens []v1alpha1.ApiToken, teamsAfter Teams) ([]Invalidation, error) {
	var out []Invalidation
	// A team's tokens mostly share a few creators: ask about each once,
	// not once per token, or a Team edit waits on a thousand reviews.
	checker = &askOnce{checker: checker, answers: map[string]bool{}}
	for i := range tokens {
		tok := &tokens[i]
		if tok.Status.Phase == v1alpha1.PhaseInvalidated || tok.Status.TokenHash == "" {
			continue
		}
		creator, err := CreatorOf(tok)
		if err != nil || creator == nil {
			continue
		}
		v, err := DecideWithAdmin(ctx, checker, creator, func(admin AdminAnswer) Verdict {
			return Entitlement(&tok.Spec, creator, teamsAfter, admin)
		})
		if err != nil {
			return nil, err
		}
		if !v.Allowed {
			out = append(out, Invalidation{Namespace: tok.Namespace, Name: tok.Name, Reason: v.Reason})
		}
	}
	return out, nil
}

// askOnce remembers a checker's answers for the length of one decision.
type askOnce struct {
	checker AdminChecker
	answers map[string]bool
}

func (a *askOnce) IsAdmin(ctx context.Context, user *v1alpha1.UserIdentity) (bool, error) {
	key := identityKey(user)
	if admin, ok := a.answers[key]; ok {
		return admin, nil
	}
	admin, err := a.checker.IsAdmin(ctx, user)
	if err != nil {
		return false, err
	}
	a.answers[key] = admin
	return admin, nil
}
