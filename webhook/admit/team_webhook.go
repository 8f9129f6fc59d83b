package admit

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/cacheindex"
)

// +kubebuilder:webhook:path=/validate-auth-tokenwarden-io-v1alpha1-team,mutating=false,failurePolicy=fail,sideEffects=None,groups=auth.tokenwarden.io,resources=teams,verbs=create;update;delete,versions=v1alpha1,name=vteam.auth.tokenwarden.io,admissionReviewVersions=v1,timeoutSeconds=5

// TeamValidator enforces who may create, change and delete Teams, and warns
// before a change that would invalidate tokens. Warnings are returned under
// --dry-run=server too, so a GitOps pull-request check can show them.
type TeamValidator struct {
	// Reader lists Teams and ApiTokens (from the cache, with the indexes of
	// package cacheindex).
	Reader client.Reader
	// Admins answers admin standing, asking afresh each time.
	Admins authz.AdminChecker
	// LifecycleControllers are the users of the cluster's own lifecycle,
	// who may delete Teams and change their metadata.
	LifecycleControllers []string
}

// maxListed caps how many tokens a warning names.
const maxListed = 10

// ValidateCreate implements admission.Validator.
func (v *TeamValidator) ValidateCreate(ctx context.Context, team *v1alpha1.Team) (admission.Warnings, error) {
	return v.validate(ctx, authz.Create, nil, team)
}

// ValidateUpdate implements admission.Validator.
func (v *TeamValidator) ValidateUpdate(ctx context.Context, old, team *v1alpha1.Team) (admission.Warnings, error) {
	return v.validate(ctx, authz.Update, old, team)
}

// ValidateDelete implements admission.Validator.
func (v *TeamValidator) ValidateDelete(ctx context.Context, team *v1alpha1.Team) (admission.Warnings, error) {
	return v.validate(ctx, authz.Delete, team, nil)
}

func (v *TeamValidator) validate(ctx context.Context, op authz.Operation, old, team *v1alpha1.Team) (admission.Warnings, error) {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return nil, err
	}
	user := identityOf(req.UserInfo)
	lifecycle := authz.IsLifecycleController(user, v.LifecycleControllers)
	d, _, err := authz.Decide(ctx, v.Admins, user, func(admin authz.AdminAnswer) authz.Verdict {
		return authz.ReviewTeam(authz.TeamRequest{Operation: op, User: user, Lifecycle: lifecycle, Admin: admin, Old: old, New: team})
	})
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if err := refusal(req, d.Errs); err != nil || op == authz.Create {
		return nil, err
	}
	if op == authz.Update && equality.Semantic.DeepEqual(old.Spec.Owners, team.Spec.Owners) &&
		equality.Semantic.DeepEqual(old.Spec.Namespaces, team.Spec.Namespaces) {
		return nil, nil // only an owner or namespace change, or a deletion, can invalidate tokens
	}
	warnings, err := v.impact(ctx, old, team)
	if err != nil {
		// The change is allowed; failing to predict its effect must not
		// block it, but the person should know the warning is missing.
		return admission.Warnings{"Tokenwarden could not work out which tokens this change invalidates: " + err.Error()}, nil
	}
	return warnings, nil
}

// impact warns about the tokens that would be invalidated if old became
// team (nil: deleted): its Team tokens and the Wildcard tokens of its
// owners, re-checked against the Teams as they would be.
func (v *TeamValidator) impact(ctx context.Context, old, team *v1alpha1.Team) (admission.Warnings, error) {
	teams := &v1alpha1.TeamList{}
	// Read-only, as are the tokens below.
	if err := v.Reader.List(ctx, teams, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	after := authz.TeamsOf(teams.Items)
	if authz.Exists(team) {
		after[team.Name] = team
	} else {
		delete(after, old.Name)
	}

	// Read-only (authz.Impact changes nothing), so a Team of 10,000 tokens
	// is not copied out of the cache on the request path.
	candidates, err := cacheindex.TokensOfTeam(ctx, v.Reader, old, client.UnsafeDisableDeepCopy)
	if err != nil {
		return nil, err
	}
	lost, err := authz.Impact(ctx, v.Admins, candidates, after)
	if err != nil || len(lost) == 0 {
		return nil, err
	}
	names := make([]string, 0, maxListed)
	for i, inv := range lost {
		if i == maxListed {
			names = append(names, fmt.Sprintf("and %d more", len(lost)-maxListed))
			break
		}
		names = append(names, fmt.Sprintf("%s/%s (%s)", inv.Namespace, inv.Name, inv.Reason))
	}
	return admission.Warnings{fmt.Sprintf("this change invalidates %d token(s), finally: %s", len(lost), strings.Join(names, ", "))}, nil
}
