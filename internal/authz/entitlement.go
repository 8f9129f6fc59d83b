// Package authz is Tokenwarden's authorization engine: the permission
// matrix, entitlement and team policy as pure functions returning one
// Verdict type, and Standing, the one component that owns admin standing
// (SubjectAccessReview, its answer cache and the RBAC watch that keeps it
// honest). The admission webhooks, the reconcilers and the verifier all
// call it, so each rule is written once.
package authz

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

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
		return slices.Contains(user.Groups, subject.Name)
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

// Teams is the set of Teams that exist, by name. A Team being deleted (with
// a deletionTimestamp) is not in it: it counts as deleted everywhere.
type Teams map[string]*v1alpha1.Team

// TeamsOf indexes a list of Teams by name, leaving out those being deleted.
func TeamsOf(list []v1alpha1.Team) Teams {
	teams := make(Teams, len(list))
	for i := range list {
		if Exists(&list[i]) {
			teams[list[i].Name] = &list[i]
		}
	}
	return teams
}

// Exists reports whether team counts as existing: it is not being deleted.
// A finalizer anyone added must not keep a deleted Team's tokens alive.
func Exists(team *v1alpha1.Team) bool {
	return team != nil && team.DeletionTimestamp.IsZero()
}

// Token is what entitlement depends on: where a token lives, its type and
// its teams. All three are immutable on an ApiToken.
type Token struct {
	Namespace string
	Type      v1alpha1.ApiTokenType
	Teams     []string
}

// TokenOf is tok's Token.
func TokenOf(tok *v1alpha1.ApiToken) Token {
	return Token{Namespace: tok.Namespace, Type: tok.Spec.Type, Teams: tok.Spec.Teams}
}

var (
	specPath    = field.NewPath("spec")
	typePath    = specPath.Child("type")
	teamsPath   = specPath.Child("teams")
	creatorPath = field.NewPath("metadata", "annotations").Key(v1alpha1.CreatorAnnotation)
)

// Entitled decides whether holder may hold tok: the create column of the
// permission matrix plus the namespace rules, the one rule that admission
// applies to the requester at CREATE and on a recreate, the reconciler to
// the recorded creator, and the verifier on every request.
//
//   - Admin tokens: holder is an admin.
//   - Team tokens: every listed team exists and allows tok's namespace (for
//     admins too), and holder owns all of them or is an admin.
//   - Wildcard tokens: holder is an admin, or owns a team that allows tok's
//     namespace.
func Entitled(tok Token, holder *v1alpha1.UserIdentity, teams Teams, admin AdminAnswer) Verdict {
	if holder == nil || holder.Username == "" {
		return refuse(v1alpha1.ReasonCreatorUnknown, field.Forbidden(creatorPath,
			"the token has no valid "+v1alpha1.CreatorAnnotation+" annotation, so its creator cannot be checked"))
	}
	switch tok.Type {
	case v1alpha1.AdminTokenType:
		return orAdmin(admin, refuse(v1alpha1.ReasonCreatorNotAdmin, field.Forbidden(typePath,
			fmt.Sprintf("%q is not a Tokenwarden admin: only admins may hold Admin tokens", holder.Username))))
	case v1alpha1.TeamTokenType:
		return entitledToTeams(tok, holder, teams, admin)
	case v1alpha1.WildcardTokenType:
		if ownsTeamIn(teams, holder, tok.Namespace) {
			return allowed
		}
		if teams.OwnsAny(holder) {
			return orAdmin(admin, refuse(v1alpha1.ReasonNamespaceNotAllowed, field.Forbidden(typePath,
				fmt.Sprintf("%q is not an admin and owns no team that allows namespace %q: a team owner's Wildcard tokens live only in their teams' namespaces", holder.Username, tok.Namespace))))
		}
		return orAdmin(admin, refuse(v1alpha1.ReasonCreatorNotOwner, field.Forbidden(typePath,
			fmt.Sprintf("%q is neither an admin nor an owner of any team: only admins and team owners may hold Wildcard tokens", holder.Username))))
	}
	return refuse(v1alpha1.ReasonPolicyViolation, field.NotSupported(typePath, tok.Type,
		[]v1alpha1.ApiTokenType{v1alpha1.TeamTokenType, v1alpha1.WildcardTokenType, v1alpha1.AdminTokenType}))
}

// entitledToTeams is Entitled for a Team token. What no admin standing can
// change (a team gone, a namespace not allowed) is decided first, so it
// never waits for a SubjectAccessReview.
func entitledToTeams(tok Token, holder *v1alpha1.UserIdentity, teams Teams, admin AdminAnswer) Verdict {
	var v Verdict
	var notOwned []string
	for i, name := range tok.Teams {
		team, ok := teams[name]
		switch {
		case !ok:
			v = v.and(refuse(v1alpha1.ReasonTeamDeleted, field.Forbidden(teamsPath.Index(i),
				fmt.Sprintf("team %q does not exist or is being deleted", name))))
		case !slices.Contains(team.Spec.Namespaces, tok.Namespace):
			v = v.and(refuse(v1alpha1.ReasonNamespaceNotAllowed, field.Forbidden(teamsPath.Index(i),
				fmt.Sprintf("team %q does not allow tokens in namespace %q (spec.namespaces: %v)", name, tok.Namespace, team.Spec.Namespaces))))
		case !IsOwner(team, holder):
			notOwned = append(notOwned, name)
		}
	}
	if len(v.Errs) > 0 || len(notOwned) == 0 {
		return v
	}
	return orAdmin(admin, refuse(v1alpha1.ReasonCreatorNotOwner, field.Forbidden(teamsPath,
		fmt.Sprintf("%q is neither an admin nor an owner of team %s: only admins and owners of every listed team may hold this Team token", holder.Username, quoteJoin(notOwned)))))
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

// ownsTeamIn reports whether user owns a team that allows namespace.
func ownsTeamIn(teams Teams, user *v1alpha1.UserIdentity, namespace string) bool {
	for _, team := range teams {
		if IsOwner(team, user) && slices.Contains(team.Spec.Namespaces, namespace) {
			return true
		}
	}
	return false
}

// Decide calls decide without knowing user's admin standing and, only if
// the answer depends on it, asks admins and decides again: most decisions
// never need to ask. It returns the standing it used, AdminUnknown when it
// did not ask.
func Decide(ctx context.Context, admins AdminChecker, user *v1alpha1.UserIdentity, decide func(AdminAnswer) Verdict) (Verdict, AdminAnswer, error) {
	v := decide(AdminUnknown)
	if !v.NeedAdmin {
		return v, AdminUnknown, nil
	}
	answer := AdminNo
	if admins != nil && user != nil && user.Username != "" {
		admin, err := admins.IsAdmin(ctx, user)
		if err != nil {
			return v, AdminUnknown, err
		}
		answer = AdminAnswerOf(admin)
	}
	return decide(answer), answer, nil
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
func Impact(ctx context.Context, admins AdminChecker, tokens []v1alpha1.ApiToken, teamsAfter Teams) ([]Invalidation, error) {
	var out []Invalidation
	// A team's tokens mostly share a few creators: ask about each once,
	// not once per token, or a Team edit waits on a thousand reviews.
	admins = &askOnce{checker: admins, answers: map[string]bool{}}
	// Nor parse the same creator record a thousand times.
	creators := map[string]*v1alpha1.UserIdentity{}
	for i := range tokens {
		tok := &tokens[i]
		if tok.Status.Phase == v1alpha1.PhaseInvalidated || tok.Status.TokenHash == "" {
			continue
		}
		record := tok.Annotations[v1alpha1.CreatorAnnotation]
		creator, parsed := creators[record]
		if !parsed {
			creator, _ = CreatorOf(tok)
			creators[record] = creator
		}
		if creator == nil {
			continue
		}
		v, _, err := Decide(ctx, admins, creator, func(admin AdminAnswer) Verdict {
			return Entitled(TokenOf(tok), creator, teamsAfter, admin)
		})
		if err != nil {
			return nil, err
		}
		if !v.Allowed() {
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
