package authz

import (
	"context"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// Operation is what an admission request does to an object.
type Operation string

// The operations admission decides on.
const (
	Create Operation = "CREATE"
	Update Operation = "UPDATE"
	Delete Operation = "DELETE"
)

// Decision is the outcome of an admission decision: allowed when Errs is
// empty and NeedAdmin is false.
type Decision struct {
	// NeedAdmin is true when the answer depends on the requester's admin
	// standing, which was AdminUnknown: ask, and decide again.
	NeedAdmin bool
	// Errs are the refusals, each on the field at fault.
	Errs field.ErrorList
}

// NeedsAdmin reports whether the decision waits for admin standing.
func (d Decision) NeedsAdmin() bool { return d.NeedAdmin }

// Allowed reports whether the request may pass.
func (d Decision) Allowed() bool { return !d.NeedAdmin && len(d.Errs) == 0 }

// TokenRequest is everything a decision about an ApiToken request needs.
type TokenRequest struct {
	Operation Operation
	// User is who sends the request.
	User *v1alpha1.UserIdentity
	// Admin is what is known of User's admin standing.
	Admin AdminAnswer
	// Old is the object before the request (UPDATE, DELETE); New after it
	// (CREATE, UPDATE).
	Old, New *v1alpha1.ApiToken
	// Teams are the Teams that exist.
	Teams Teams
	// Now is when the request is decided; lifetimes count from it.
	Now time.Time
}

var (
	specPath    = field.NewPath("spec")
	creatorPath = field.NewPath("metadata", "annotations").Key(v1alpha1.CreatorAnnotation)
)

// ReviewToken decides an ApiToken request by the permission matrix:
//
//	| action                   | Admin token | Team token                          | Wildcard token                     |
//	| create                   | admin       | admin, or owner of every listed team | admin, or owner of at least one team |
//	| update/recreate/disable  | admin       | admin or creator                     | admin or creator                     |
//	| delete                   | admin       | admin or creator                     | admin or creator                     |
//
// plus the namespace rules (a Team token only where all its teams allow it;
// a non-admin's Wildcard token only in a namespace of a team they own), the
// teams' policies, and the creator annotation, which never changes.
func ReviewToken(req TokenRequest) Decision {
	switch req.Operation {
	case Create:
		return reviewTokenCreate(req)
	case Update:
		return reviewTokenUpdate(req)
	case Delete:
		return reviewTokenChange(req, req.Old, "delete")
	}
	return Decision{Errs: field.ErrorList{field.NotSupported(field.NewPath("operation"), req.Operation, []Operation{Create, Update, Delete})}}
}

func reviewTokenCreate(req TokenRequest) Decision {
	tok := req.New
	var errs field.ErrorList
	if creator, err := CreatorOf(tok); err != nil || creator == nil || creator.Username != req.User.Username {
		errs = append(errs, field.Forbidden(creatorPath, "must record the requesting user; the mutating webhook sets it"))
	}
	switch tok.Spec.Type {
	case v1alpha1.AdminTokenType:
		if d, ok := requireAdmin(req.Admin, specPath.Child("type"), "only admins may create Admin tokens"); !ok {
			return d.with(errs)
		}
	case v1alpha1.TeamTokenType:
		var notOwned []string
		for i, name := range tok.Spec.Teams {
			team, ok := req.Teams[name]
			teamPath := specPath.Child("teams").Index(i)
			switch {
			case !ok:
				errs = append(errs, field.NotFound(teamPath, name))
			case !slices.Contains(team.Spec.Namespaces, tok.Namespace):
				errs = append(errs, field.Forbidden(teamPath,
					fmt.Sprintf("team %q does not allow tokens in namespace %q (spec.namespaces: %v)", name, tok.Namespace, team.Spec.Namespaces)))
			case !IsOwner(team, req.User):
				notOwned = append(notOwned, name)
			}
		}
		if len(notOwned) > 0 {
			if d, ok := requireAdmin(req.Admin, specPath.Child("teams"),
				fmt.Sprintf("only admins and owners of every listed team may create this Team token; %q does not own %s", req.User.Username, quoteJoin(notOwned))); !ok {
				return d.with(errs)
			}
		}
	case v1alpha1.WildcardTokenType:
		if !ownsTeamIn(req.Teams, req.User, tok.Namespace) {
			msg := fmt.Sprintf("only admins and team owners may create Wildcard tokens, and a team owner only in a namespace of a team they own; %q owns no team that allows namespace %q", req.User.Username, tok.Namespace)
			if d, ok := requireAdmin(req.Admin, specPath.Child("type"), msg); !ok {
				return d.with(errs)
			}
		}
	default:
		errs = append(errs, field.NotSupported(specPath.Child("type"), tok.Spec.Type,
			[]v1alpha1.ApiTokenType{v1alpha1.TeamTokenType, v1alpha1.WildcardTokenType, v1alpha1.AdminTokenType}))
	}
	errs = append(errs, CheckPolicy(&tok.Spec, req.Teams, req.Now)...)
	return Decision{Errs: errs}
}

func reviewTokenUpdate(req TokenRequest) Decision {
	var errs field.ErrorList
	if req.Old.Annotations[v1alpha1.CreatorAnnotation] != req.New.Annotations[v1alpha1.CreatorAnnotation] {
		errs = append(errs, field.Forbidden(creatorPath, "the creator is recorded at creation and cannot change"))
	}
	if equality.Semantic.DeepEqual(req.Old.Spec, req.New.Spec) {
		return Decision{Errs: errs} // labels and other annotations are anyone's with RBAC to write
	}
	d := reviewTokenChange(req, req.New, "update")
	d.Errs = append(errs, d.Errs...)
	if d.NeedAdmin || len(d.Errs) > 0 {
		return d
	}
	// A changed spec keeps its teams' policies, counted from now.
	d.Errs = append(d.Errs, CheckPolicy(&req.New.Spec, req.Teams, req.Now)...)
	return d
}

// reviewTokenChange decides who may update or delete tok: an admin, or for
// Team and Wildcard tokens also its creator.
func reviewTokenChange(req TokenRequest, tok *v1alpha1.ApiToken, verb string) Decision {
	if tok.Spec.Type != v1alpha1.AdminTokenType {
		if creator, err := CreatorOf(tok); err == nil && creator != nil && creator.Username == req.User.Username {
			return Decision{}
		}
		d, _ := requireAdmin(req.Admin, field.NewPath("metadata"), fmt.Sprintf("only admins and the token's creator may %s it", verb))
		return d
	}
	d, _ := requireAdmin(req.Admin, field.NewPath("metadata"), fmt.Sprintf("only admins may %s Admin tokens", verb))
	return d
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

// requireAdmin is ok for an admin, asks when standing is unknown, and
// otherwise refuses with msg on path.
func requireAdmin(admin AdminAnswer, path *field.Path, msg string) (Decision, bool) {
	switch admin {
	case AdminYes:
		return Decision{}, true
	case AdminUnknown:
		return Decision{NeedAdmin: true}, false
	}
	return Decision{Errs: field.ErrorList{field.Forbidden(path, msg)}}, false
}

// with adds errs found before a refusal or a need for admin standing.
func (d Decision) with(errs field.ErrorList) Decision {
	d.Errs = append(errs, d.Errs...)
	return d
}

// TeamRequest is everything a decision about a Team request needs.
type TeamRequest struct {
	Operation Operation
	User      *v1alpha1.UserIdentity
	Admin     AdminAnswer
	Old, New  *v1alpha1.Team
}

// ReviewTeam decides a Team request: admins create and delete Teams and
// change their namespaces; owners may change the rest of their own Team.
func ReviewTeam(req TeamRequest) Decision {
	switch req.Operation {
	case Create:
		d, _ := requireAdmin(req.Admin, field.NewPath("metadata"), "only admins may create Teams")
		return d
	case Delete:
		d, _ := requireAdmin(req.Admin, field.NewPath("metadata"), "only admins may delete Teams")
		return d
	case Update:
		if equality.Semantic.DeepEqual(req.Old.Spec, req.New.Spec) {
			return Decision{}
		}
		if !equality.Semantic.DeepEqual(req.Old.Spec.Namespaces, req.New.Spec.Namespaces) {
			d, _ := requireAdmin(req.Admin, specPath.Child("namespaces"), "only admins may change a Team's namespaces")
			return d
		}
		if IsOwner(req.Old, req.User) {
			return Decision{}
		}
		d, _ := requireAdmin(req.Admin, specPath, fmt.Sprintf("only admins and owners of team %q may change it", req.Old.Name))
		return d
	}
	return Decision{Errs: field.ErrorList{field.NotSupported(field.NewPath("operation"), req.Operation, []Operation{Create, Update, Delete})}}
}

// DecideWithAdmin calls decide without knowing the user's admin standing
// and, only if the answer depends on it, asks checker (a
// SubjectAccessReview) and decides again: most requests never need to ask.
func DecideWithAdmin[D interface{ NeedsAdmin() bool }](ctx context.Context, checker AdminChecker, user *v1alpha1.UserIdentity, decide func(AdminAnswer) D) (D, error) {
	d := decide(AdminUnknown)
	if !d.NeedsAdmin() {
		return d, nil
	}
	admin, err := checker.IsAdmin(ctx, user)
	if err != nil {
		return d, err
	}
	return decide(AdminAnswerOf(admin)), nil
}

// NeedsAdmin reports whether the verdict waits for admin standing.
func (v Verdict) NeedsAdmin() bool { return v.NeedAdmin }
