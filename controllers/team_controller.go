package controllers

import (
	"context"
	"fmt"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/cacheindex"
)

// TeamReconciler keeps a Team's status: how many of its tokens are Active,
// and a Ready condition for the generation it has seen.
type TeamReconciler struct {
	client.Client
	// Coalesce is how long a token change waits before its Teams are
	// counted again, so a burst of changes makes one status write.
	Coalesce time.Duration
}

// +kubebuilder:rbac:groups=auth.tokenwarden.io,resources=teams,verbs=get;list;watch
// +kubebuilder:rbac:groups=auth.tokenwarden.io,resources=teams/status,verbs=patch
// +kubebuilder:rbac:groups=auth.tokenwarden.io,resources=apitokens,verbs=get;list;watch

// Reconcile is the skeleton: get, snapshot, one deferred status patch, then
// the phases.
func (r *TeamReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	team := &v1alpha1.Team{}
	if err := r.Get(ctx, req.NamespacedName, team); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := team.DeepCopy()
	defer func() {
		if err := patchStatus(ctx, r.Client, team, base, func(t *v1alpha1.Team) any { return t.Status }); err != nil && retErr == nil {
			retErr = fmt.Errorf("patching Team status: %w", err)
		}
	}()

	if err := r.reconcileActiveTokens(ctx, team); err != nil {
		return ctrl.Result{}, err
	}
	team.Status.ObservedGeneration = team.Generation
	apimeta.SetStatusCondition(&team.Status.Conditions, metav1.Condition{
		Type:               v1alpha1.ReadyCondition,
		Status:             metav1.ConditionTrue,
		Reason:             v1alpha1.ReasonReconciled,
		Message:            "the team's status is up to date",
		ObservedGeneration: team.Generation,
	})
	return ctrl.Result{}, nil
}

// reconcileActiveTokens counts the team's Team tokens in phase Active.
func (r *TeamReconciler) reconcileActiveTokens(ctx context.Context, team *v1alpha1.Team) error {
	tokens := &v1alpha1.ApiTokenList{}
	if err := r.List(ctx, tokens, client.MatchingFields{cacheindex.Teams: team.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing the team's tokens: %w", err)
	}
	var active int32
	for i := range tokens.Items {
		if tokens.Items[i].Status.Phase == v1alpha1.PhaseActive {
			active++
		}
	}
	team.Status.ActiveTokens = active
	return nil
}

// SetupWithManager watches Teams, and ApiTokens for the Teams they name.
func (r *TeamReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		// Its own status writes must not wake it: each would count again at
		// once and defeat the coalescing below.
		For(&v1alpha1.Team{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// lastUsedAt flushes change nothing a Team counts.
		Watches(&v1alpha1.ApiToken{}, teamsOfTokenAfter(r.Coalesce), builder.WithPredicates(ignoreLastUsedOnly)).
		Named("team").
		Complete(r)
}

// teamsOfTokenAfter enqueues the Teams an ApiToken names, delay later. The
// workqueue keeps a Team waiting once however often it is added meanwhile,
// so issuing a thousand tokens of one team writes its status a few times,
// not a thousand.
func teamsOfTokenAfter(delay time.Duration) handler.EventHandler {
	add := func(ctx context.Context, obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		for _, req := range teamsOfToken(ctx, obj) {
			q.AddAfter(req, delay)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.ObjectOld, q)
			add(ctx, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
	}
}

// teamsOfToken maps an ApiToken to the Teams it names.
func teamsOfToken(_ context.Context, obj client.Object) []reconcile.Request {
	token, ok := obj.(*v1alpha1.ApiToken)
	if !ok {
		return nil
	}
	requests := make([]reconcile.Request, 0, len(token.Spec.Teams))
	for _, team := range token.Spec.Teams {
		requests = append(requests, reconcile.Request{NamespacedName: types.NamespacedName{Name: team}})
	}
	return requests
}
