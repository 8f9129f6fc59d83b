package authz

import (
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

// DefaultLifecycleControllers are the users the cluster's own lifecycle runs
// as in upstream Kubernetes: kube-controller-manager's namespace controller
// and garbage collector with --use-service-account-credentials (the
// default of kubeadm and most distributions), and kube-controller-manager
// itself without it.
var DefaultLifecycleControllers = []string{
	ServiceAccountPrefix + "kube-system:namespace-controller",
	ServiceAccountPrefix + "kube-system:generic-garbage-collector",
	"system:kube-controller-manager",
}

// TokenRequest is everything a decision about an ApiToken request needs.
type TokenRequest struct {
	Operation Operation
	// User is who sends the request.
	User *v1alpha1.UserIdentity
	// Lifecycle is true when User is one of the cluster's lifecycle
	// controllers (IsLifecycleController).
	Lifecycle bool
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

// ReviewToken decides an ApiToken request by the permission matrix:
//
//	| action                   | Admin token | Team token                           | Wildcard token                       |
//	| create                   | admin       | admin, or owner of every listed team | admin, or owner of at least one team |
//	| update, disable          | admin       | admin or creator                     | admin or creator                     |
//	| recreate                 | admin       | (admin or creator) and entitled      | (admin or creator) and entitled      |
//	| delete                   | admin       | admin or creator                     | admin or creator                     |
//
// plus the namespace rules and the teams' policies (Entitled, PolicyOf), the
// creator record (the whole requesting identity at CREATE, the recreating
// identity on a recreate, unchanged otherwise), and the cluster's lifecycle
// controllers, which may always delete.
func ReviewToken(req TokenRequest) Verdict {
	switch req.Operation {
	case Create:
		return reviewTokenCreate(req)
	case Update:
		return reviewTokenUpdate(req)
	case Delete:
		if req.Lifecycle {
			// Namespace deletion and garbage collection must finish; they
			// delete what its owner (or its namespace) already gave up.
			return allowed
		}
		return reviewTokenChange(req, req.Old, "delete")
	}
	return Verdict{Errs: field.ErrorList{field.NotSupported(field.NewPath("operation"), req.Operation, []Operation{Create, Update, Delete})}}
}

func reviewTokenCreate(req TokenRequest) Verdict {
	tok := req.New
	var v Verdict
	if creator, err := CreatorOf(tok); err != nil || !SameIdentity(creator, req.User) {
		v = v.and(refuse("", field.Forbidden(creatorPath,
			"must record the requesting user exactly (username, uid, groups and extra); the mutating webhook sets it, so this request bypassed or re-ran it")))
	}
	return v.and(entitledWithPolicy(req, tok))
}

// entitledWithPolicy decides whether the requester may hold tok as it will
// be: entitled to it, and within the policies that bind it.
func entitledWithPolicy(req TokenRequest, tok *v1alpha1.ApiToken) Verdict {
	t := TokenOf(tok)
	v := Entitled(t, req.User, req.Teams, req.Admin)
	if !v.Allowed() {
		return v
	}
	return PolicyOf(t, &tok.Spec, req.User, req.Teams, req.Admin, req.Now)
}

func reviewTokenUpdate(req TokenRequest) Verdict {
	old, tok := req.Old, req.New
	recreate := old.Spec.Recreate != tok.Spec.Recreate
	var v Verdict
	if old.Annotations[v1alpha1.CreatorAnnotation] != tok.Annotations[v1alpha1.CreatorAnnotation] {
		creator, err := CreatorOf(tok)
		if !recreate || err != nil || !SameIdentity(creator, req.User) {
			v = v.and(refuse("", field.Forbidden(creatorPath,
				"the creator is recorded at creation and changes only to the identity that bumps spec.recreate; the mutating webhook sets it")))
		}
	}
	if equality.Semantic.DeepEqual(old.Spec, tok.Spec) {
		return v // labels and other annotations are anyone's with RBAC to write
	}
	// The old object names the creator: on a recreate the mutating webhook
	// has already stamped the requester into the new one.
	v = v.and(reviewTokenChange(req, old, "update"))
	if !v.Allowed() {
		return v
	}
	if recreate {
		// The one who recreates becomes the creator: they must be entitled
		// to hold it, or a recreate could revive what they may not have.
		return entitledWithPolicy(req, tok)
	}
	// A changed spec keeps its policies, counted from the issuance of the
	// value it keeps. Only its creator or an admin got this far, and an
	// admin's change follows no Wildcard policy, so the requester's
	// standing decides.
	return PolicyOf(TokenOf(tok), &tok.Spec, req.User, req.Teams, req.Admin, PolicyFrom(&tok.Spec, &old.Status, req.Now))
}

// reviewTokenChange decides who may update or delete tok: an admin, or for
// Team and Wildcard tokens also its creator.
func reviewTokenChange(req TokenRequest, tok *v1alpha1.ApiToken, verb string) Verdict {
	if tok.Spec.Type != v1alpha1.AdminTokenType {
		if creator, err := CreatorOf(tok); err == nil && creator != nil && creator.Username == req.User.Username {
			return allowed
		}
		return orAdmin(req.Admin, refuse("", field.Forbidden(field.NewPath("metadata"), fmt.Sprintf("only admins and the token's creator may %s it", verb))))
	}
	return orAdmin(req.Admin, refuse("", field.Forbidden(field.NewPath("metadata"), fmt.Sprintf("only admins may %s Admin tokens", verb))))
}

// SameIdentity reports whether a and b are the same identity in everything
// SubjectAccessReview and team ownership look at: username, uid, groups
// (in any order) and extra. Empty and missing are the same.
func SameIdentity(a, b *v1alpha1.UserIdentity) bool {
	if a == nil || b == nil {
		return a == b
	}
	return identityKey(a) == identityKey(b)
}

// IsLifecycleController reports whether user is one of the cluster's own
// lifecycle controllers, named in controllers.
func IsLifecycleController(user *v1alpha1.UserIdentity, controllers []string) bool {
	return user != nil && slices.Contains(controllers, user.Username)
}

// TeamRequest is everything a decision about a Team request needs.
type TeamRequest struct {
	Operation Operation
	User      *v1alpha1.UserIdentity
	// Lifecycle is true when User is one of the cluster's lifecycle
	// controllers.
	Lifecycle bool
	Admin     AdminAnswer
	Old, New  *v1alpha1.Team
}

// ReviewTeam decides a Team request: admins create and delete Teams and
// change their namespaces; owners may change the rest of their own Team,
// metadata included; nobody else may change a Team at all. The cluster's
// lifecycle controllers may delete Teams and change their metadata (the
// garbage collector removes its finalizers and owner references).
func ReviewTeam(req TeamRequest) Verdict {
	metadata := field.NewPath("metadata")
	switch req.Operation {
	case Create:
		return orAdmin(req.Admin, refuse("", field.Forbidden(metadata, "only admins may create Teams")))
	case Delete:
		if req.Lifecycle {
			return allowed
		}
		return orAdmin(req.Admin, refuse("", field.Forbidden(metadata, "only admins may delete Teams")))
	case Update:
		specChanged := !equality.Semantic.DeepEqual(req.Old.Spec, req.New.Spec)
		if !specChanged && !teamMetadataChanged(req.Old, req.New) {
			return allowed
		}
		if !specChanged && req.Lifecycle {
			return allowed
		}
		if !equality.Semantic.DeepEqual(req.Old.Spec.Namespaces, req.New.Spec.Namespaces) {
			return orAdmin(req.Admin, refuse("", field.Forbidden(specPath.Child("namespaces"), "only admins may change a Team's namespaces")))
		}
		if IsOwner(req.Old, req.User) {
			return allowed
		}
		path := specPath
		if !specChanged {
			path = metadata
		}
		return orAdmin(req.Admin, refuse("", field.Forbidden(path,
			fmt.Sprintf("only admins and owners of team %q may change it, its labels, annotations, finalizers and owner references included", req.Old.Name))))
	}
	return Verdict{Errs: field.ErrorList{field.NotSupported(field.NewPath("operation"), req.Operation, []Operation{Create, Update, Delete})}}
}

// teamMetadataChanged reports whether an update changes what a person or a
// controller can set on a Team's metadata. The API server's own
// bookkeeping (resourceVersion, managedFields, generation) is left out.
func teamMetadataChanged(old, team *v1alpha1.Team) bool {
	return !equality.Semantic.DeepEqual(old.Labels, team.Labels) ||
		!equality.Semantic.DeepEqual(old.Annotations, team.Annotations) ||
		!equality.Semantic.DeepEqual(old.Finalizers, team.Finalizers) ||
		!equality.Semantic.DeepEqual(old.OwnerReferences, team.OwnerReferences)
}
