// Package admit holds the admission webhooks: thin handlers that read who
// is asking and hand the decision to internal/authz, the code the
// reconcilers use too.
package admit

import (
	"context"
	"encoding/json"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
)

// +kubebuilder:webhook:path=/mutate-auth-tokenwarden-io-v1alpha1-apitoken,mutating=true,failurePolicy=fail,sideEffects=None,groups=auth.tokenwarden.io,resources=apitokens,verbs=create;update,versions=v1alpha1,name=mapitoken.auth.tokenwarden.io,admissionReviewVersions=v1,timeoutSeconds=5

// ApiTokenCreator records the creator: at CREATE it writes the requesting
// user into the creator annotation, overwriting whatever the client sent;
// on a recreate (an UPDATE that changes spec.recreate) it writes the user
// who recreates, who becomes the creator (the validating webhook checks
// they are entitled); at any other UPDATE it puts back the recorded value
// if a client dropped or changed it (a GitOps tool applying a manifest
// without the annotation, for example), so the record survives every
// later request.
type ApiTokenCreator struct{}

// Default implements admission.Defaulter.
func (ApiTokenCreator) Default(ctx context.Context, tok *v1alpha1.ApiToken) error {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return err
	}
	if tok.Annotations == nil {
		tok.Annotations = map[string]string{}
	}
	stamp := func() error {
		value, err := authz.CreatorAnnotationValue(identityOf(req.UserInfo))
		if err != nil {
			return err
		}
		tok.Annotations[v1alpha1.CreatorAnnotation] = value
		return nil
	}
	switch req.Operation {
	case "CREATE":
		return stamp()
	case "UPDATE":
		old := &v1alpha1.ApiToken{}
		if err := json.Unmarshal(req.OldObject.Raw, old); err != nil {
			return fmt.Errorf("decoding the old ApiToken: %w", err)
		}
		if old.Spec.Recreate != tok.Spec.Recreate {
			return stamp()
		}
		if recorded, ok := old.Annotations[v1alpha1.CreatorAnnotation]; ok {
			tok.Annotations[v1alpha1.CreatorAnnotation] = recorded
		}
	}
	return nil
}

// +kubebuilder:webhook:path=/validate-auth-tokenwarden-io-v1alpha1-apitoken,mutating=false,failurePolicy=fail,sideEffects=None,groups=auth.tokenwarden.io,resources=apitokens,verbs=create;update;delete,versions=v1alpha1,name=vapitoken.auth.tokenwarden.io,admissionReviewVersions=v1,timeoutSeconds=5

// ApiTokenValidator enforces who may create, change and delete which token.
type ApiTokenValidator struct {
	// Reader lists Teams (from the cache).
	Reader client.Reader
	// Admins answers admin standing. Admission asks afresh: a refusal or a
	// pass is final for the request, and RBAC may have changed a moment ago.
	Admins authz.AdminChecker
	// LifecycleControllers are the users of the cluster's own lifecycle
	// (namespace deletion, garbage collection), who may always delete.
	LifecycleControllers []string
	Clock                clock.PassiveClock
}

// ValidateCreate implements admission.Validator.
func (v *ApiTokenValidator) ValidateCreate(ctx context.Context, tok *v1alpha1.ApiToken) (admission.Warnings, error) {
	return nil, v.validate(ctx, authz.Create, nil, tok)
}

// ValidateUpdate implements admission.Validator.
func (v *ApiTokenValidator) ValidateUpdate(ctx context.Context, old, tok *v1alpha1.ApiToken) (admission.Warnings, error) {
	return nil, v.validate(ctx, authz.Update, old, tok)
}

// ValidateDelete implements admission.Validator.
func (v *ApiTokenValidator) ValidateDelete(ctx context.Context, tok *v1alpha1.ApiToken) (admission.Warnings, error) {
	return nil, v.validate(ctx, authz.Delete, tok, nil)
}

func (v *ApiTokenValidator) validate(ctx context.Context, op authz.Operation, old, tok *v1alpha1.ApiToken) error {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return err
	}
	teams := &v1alpha1.TeamList{}
	if err := v.Reader.List(ctx, teams); err != nil {
		return apierrors.NewInternalError(fmt.Errorf("listing Teams: %w", err))
	}
	user := identityOf(req.UserInfo)
	lifecycle := authz.IsLifecycleController(user, v.LifecycleControllers)
	d, _, err := authz.Decide(ctx, v.Admins, user, func(admin authz.AdminAnswer) authz.Verdict {
		return authz.ReviewToken(authz.TokenRequest{
			Operation: op, User: user, Lifecycle: lifecycle, Admin: admin, Old: old, New: tok,
			Teams: authz.TeamsOf(teams.Items), Now: v.Clock.Now(),
		})
	})
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	return refusal(req, d.Errs)
}

// identityOf is the requester as the API server authenticated it.
func identityOf(info authenticationv1.UserInfo) *v1alpha1.UserIdentity {
	user := &v1alpha1.UserIdentity{Username: info.Username, UID: info.UID, Groups: info.Groups}
	if len(info.Extra) > 0 {
		user.Extra = make(map[string][]string, len(info.Extra))
		for k, v := range info.Extra {
			user.Extra[k] = v
		}
	}
	return user
}

// refusal turns field errors into the Invalid error kubectl prints, with
// every field named; nil when there are none.
func refusal(req admission.Request, errs field.ErrorList) error {
	if len(errs) == 0 {
		return nil
	}
	gk := v1alpha1.GroupVersion.WithKind(req.Kind.Kind).GroupKind()
	return apierrors.NewInvalid(gk, req.Name, errs)
}

// Options configure the webhooks.
type Options struct {
	// Admins answers admin standing, afresh (Standing.Fresh).
	Admins authz.AdminChecker
	// LifecycleControllers are the users of the cluster's own lifecycle;
	// authz.DefaultLifecycleControllers when nil.
	LifecycleControllers []string
	Clock                clock.PassiveClock
}

// SetupWithManager registers the ApiToken and Team webhooks with mgr's
// webhook server.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	lifecycle := opts.LifecycleControllers
	if lifecycle == nil {
		lifecycle = authz.DefaultLifecycleControllers
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &v1alpha1.ApiToken{}).
		WithDefaulter(ApiTokenCreator{}).
		WithValidator(&ApiTokenValidator{Reader: mgr.GetClient(), Admins: opts.Admins, LifecycleControllers: lifecycle, Clock: opts.Clock}).
		Complete(); err != nil {
		return err
	}
	return ctrl.NewWebhookManagedBy(mgr, &v1alpha1.Team{}).
		WithValidator(&TeamValidator{Reader: mgr.GetClient(), Admins: opts.Admins, LifecycleControllers: lifecycle}).
		Complete()
}
