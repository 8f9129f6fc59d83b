package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/cacheindex"
	"github.com/tokenwarden/tokenwarden/internal/lifecycle"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// ApiTokenReconciler issues token values into Secrets, expires, renews and
// recreates them, and withdraws them when the creator is no longer entitled.
//
// # Crash safety
//
// The status is the record of truth, the Secret only the delivery: every
// change of value writes the status first (with an optimistic lock, so a
// reconcile working from a stale cache fails instead of issuing twice) and
// the Secret second. A crash between the two leaves a status whose digest no
// Secret holds; the next reconcile confirms the Secret against the API server
// and issues afresh. The lost value was never delivered, so nothing anyone
// holds is lost, and a value found in a Secret is never adopted into the
// status. Withdrawing works the same way: the status says Expired or
// Invalidated before the value leaves the Secret, so the verifier, which
// reads the status, refuses it from the first write on. Two writes per
// issued token, no more.
//
// # Status
//
// The phases only decide, into the scope; computeStatus alone turns those
// decisions into status, and commitStatus alone writes it. That happens
// once at the end of every reconcile (Reconcile's deferred finish), and
// also just before an issuance or a withdrawal touches the Secret, as the
// crash-safety order above requires: the early write and the final one
// derive the status from the same scope, so the final one changes nothing
// unless something was decided after the Secret was written (the end of
// an overlap). A reconcile that fails still writes: the status as it was
// last written, with the failure in the Reconciled condition.
type ApiTokenReconciler struct {
	client.Client
	// APIReader reads around the cache. The cache may lag behind a write the
	// reconciler just made and holds only labelled Secrets, so a reissue is
	// confirmed against the API server before it happens.
	APIReader client.Reader
	// Clock is read once per reconcile.
	Clock clock.PassiveClock
	// Format makes token values.
	Format token.Format
	// Standing answers admin standing and tells of RBAC changes.
	Standing *authz.Standing
	// Recheck is how often a token whose entitlement rests on its creator's
	// admin standing is checked again without any event, so a change no
	// watch delivered is not missed for good; 0 means DefaultRecheck.
	Recheck time.Duration
	// Recorder emits Events; they never carry a value.
	Recorder events.EventRecorder
	// MaxConcurrentReconciles is how many tokens are reconciled at once
	// (never one token twice at once); 0 means 1.
	MaxConcurrentReconciles int
}

// +kubebuilder:rbac:groups=auth.tokenwarden.io,resources=apitokens,verbs=get;list;watch
// +kubebuilder:rbac:groups=auth.tokenwarden.io,resources=apitokens/status,verbs=patch
// +kubebuilder:rbac:groups=auth.tokenwarden.io,resources=teams,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings,verbs=get;list;watch

// DefaultRecheck is how often, by default, a token whose entitlement rests
// on admin standing is checked again without any event.
const DefaultRecheck = 10 * time.Minute

// settleMargin is added to what is left of Standing's settle window, so the
// re-check lands after the window, when answers are asked afresh.
const settleMargin = 100 * time.Millisecond

// apiTokenScope is what one reconcile knows and has decided. The phases
// write their decisions here, never into the status: computeStatus derives
// the whole status from them.
type apiTokenScope struct {
	token *v1alpha1.ApiToken
	// base is the object as the API server last confirmed it; status patches
	// are computed against it, and its status is the one recorded so far.
	base *v1alpha1.ApiToken
	now  time.Time

	// creator is the identity in the creator annotation (nil when missing
	// or unreadable); status.creator copies it.
	creator *v1alpha1.UserIdentity
	// lifetime, renewBefore and overlap are the spec's durations, parsed;
	// nil when unset. invalidSpec is set instead when one cannot be parsed:
	// the token is then blocked, and the reconcile ends in a terminal error.
	lifetime    *time.Duration
	renewBefore *time.Duration
	overlap     *time.Duration
	invalidSpec error

	// secretName is the Secret the value is delivered to; secret is that
	// Secret as observed (nil when missing), and secretState what it holds
	// relative to the status.
	secretName  string
	secret      *corev1.Secret
	secretState lifecycle.SecretState

	// blocked is set when the token may hold no value (not entitled,
	// against policy, or a spec that cannot be read); outcome is the phase
	// and Ready reason decided.
	blocked bool
	outcome outcome
	// issued is the new value's record, when one is issued. issuance is
	// why: its Event, sent once the value is delivered, is the one that
	// records the transition.
	issued   *issuedValue
	issuance lifecycle.Reason
	// dropPrevious is set when status.previous goes: no value of the token
	// verifies any more, or the overlap of the replaced value has ended.
	dropPrevious bool
	// leaving is set when the token's namespace is being deleted and the
	// reconcile has stopped short: the namespace controller deletes the
	// token next, so nothing more is written.
	leaving bool
}

// outcome is the phase a reconcile decided on, with its Ready reason.
type outcome struct {
	phase   v1alpha1.ApiTokenPhase
	reason  string
	message string
}

// issuedValue is what the status records of a value issued now: never
// the value itself.
type issuedValue struct {
	// hash is the value's digest, prefix its non-secret beginning.
	hash, prefix string
	at           time.Time
	// recreate is the spec.recreate the value answers.
	recreate int64
	// previous is the value it replaces, while that keeps verifying
	// through rotation.overlap; nil when none does.
	previous *v1alpha1.PreviousToken
}

// Reconcile is the skeleton: get, snapshot, one deferred status write, then
// the phases in order. The phases only decide; an issuance or withdrawal
// also writes the status before it touches the Secret, through the same
// commitStatus and computeStatus as the deferred write (see Status in the
// type's comment), so status is computed in one place either way.
func (r *ApiTokenReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	tok := &v1alpha1.ApiToken{}
	if err := r.Get(ctx, req.NamespacedName, tok); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !tok.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // the Secret goes with it, by its ownerRef
	}
	s := &apiTokenScope{token: tok, base: tok.DeepCopy(), now: r.Clock.Now()}
	// Whatever the phases return, the status they leave is written, and
	// the next wake-up is scheduled from it.
	defer func() { result, retErr = r.finish(ctx, s, result, retErr) }()

	phases := []func(context.Context, *apiTokenScope) (ctrl.Result, error){
		r.reconcileSpec,
		r.reconcileEntitlement,
		r.reconcileSecret,
		r.reconcileOverlap,
	}
	for _, phase := range phases {
		res, err := phase(ctx, s)
		result = lowestRequeue(result, res)
		if leavingNamespace(err) {
			// Nothing can be created there any more and the token goes with
			// the namespace: a retry would only log the refusal again.
			ctrl.LoggerFrom(ctx).V(1).Info("Namespace is being deleted; leaving the token to it")
			s.leaving = true
			return ctrl.Result{}, nil
		}
		if err != nil {
			return result, err
		}
	}
	if s.invalidSpec != nil {
		// Retrying cannot help: only an edit of the spec, which is an event
		// of its own, can.
		return ctrl.Result{}, reconcile.TerminalError(s.invalidSpec)
	}
	return result, nil
}

// finish ends a reconcile whose phases returned result and err. It writes
// the status computeStatus derives from the scope and err, except when
// the token is left to its namespace's deletion, and on a conflict or a
// NotFound, which are retried at once (or need nothing) and say nothing
// about the token. After a success it schedules the next wake-up from the
// status just written, whose phase is the one decided.
func (r *ApiTokenReconciler) finish(ctx context.Context, s *apiTokenScope, result ctrl.Result, err error) (ctrl.Result, error) {
	if s.leaving || apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return result, err
	}
	if commitErr := r.commitStatus(ctx, s, err); commitErr != nil {
		if err == nil || errors.Is(err, reconcile.TerminalError(nil)) {
			// What was decided is not written: retried, even a decision
			// that would not be.
			return ctrl.Result{}, commitErr
		}
		// The failure is retried anyway, and recorded then if it can be.
		ctrl.LoggerFrom(ctx).Error(commitErr, "Recording a failed reconcile in the status failed")
	}
	if err != nil {
		// controller-runtime ignores a result that comes with an error.
		return ctrl.Result{}, err
	}
	// s.token.Status is the status just written.
	return lowestRequeue(result, ctrl.Result{RequeueAfter: lifecycle.NextWakeup(s.input())}), nil
}

// errNamespaceTerminating stops a reconcile that would create something in
// a namespace being deleted.
var errNamespaceTerminating = errors.New("the namespace is being deleted")

// leavingNamespace says whether err means the token's namespace is being
// deleted: found before a creation, or the API server's refusal of one.
func leavingNamespace(err error) bool {
	return errors.Is(err, errNamespaceTerminating) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)
}

// namespaceTerminating stops a creation in a namespace being deleted, read
// from the API server: a rare path (a Secret is missing), not worth a
// namespace cache on every replica.
func (r *ApiTokenReconciler) namespaceTerminating(ctx context.Context, namespace string) error {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := r.APIReader.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return fmt.Errorf("reading namespace %s: %w", namespace, err)
	}
	if ns.DeletionTimestamp != nil {
		return errNamespaceTerminating
	}
	return nil
}

// commitStatus computes the status a reconcile ending in reconcileErr
// leaves (computeStatus; nil while it is still under way) and writes it if
// it changed, with an optimistic lock: a reconcile that worked from a stale
// object gets a conflict and runs again, instead of overwriting newer
// truth. What the write changed is then recorded in Events.
func (r *ApiTokenReconciler) commitStatus(ctx context.Context, s *apiTokenScope, reconcileErr error) error {
	s.token.Status = computeStatus(s, reconcileErr)
	if err := patchStatus(ctx, r.Client, s.token, s.base, func(t *v1alpha1.ApiToken) any { return t.Status },
		client.MergeFromWithOptimisticLock{}); err != nil {
		return fmt.Errorf("patching ApiToken status: %w", err)
	}
	before := s.base
	s.base = s.token.DeepCopy()
	r.recordChanges(s, before)
	return nil
}

// lowestRequeue merges two results: the earliest requested wake-up wins.
func lowestRequeue(a, b ctrl.Result) ctrl.Result {
	if a.RequeueAfter == 0 || (b.RequeueAfter > 0 && b.RequeueAfter < a.RequeueAfter) {
		a.RequeueAfter = b.RequeueAfter
	}
	return a
}

// SetupWithManager watches ApiTokens and their Secrets, the Teams that
// decide entitlement (through indexes, so a Team change touches only its
// tokens), and cluster RBAC, which decides admin standing.
func (r *ApiTokenReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ApiToken{}, builder.WithPredicates(ignoreLastUsedOnly)).
		Owns(&corev1.Secret{}).
		// Only a Team's spec (owners, policy) and its deletion matter to its
		// tokens; its status changes with every token that activates, and
		// re-checking every token of the team each time would be quadratic.
		// A Team being deleted counts as deleted at once.
		Watches(&v1alpha1.Team{}, handler.EnqueueRequestsFromMapFunc(r.tokensOfTeam),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionStarted))).
		// Standing watches cluster RBAC and tells after it has forgotten
		// the answers a change may have made wrong.
		WatchesRawSource(source.Channel(r.Standing.Changes(), handler.EnqueueRequestsFromMapFunc(r.tokensAfterRBACChange))).
		Named("apitoken").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}

// ignoreLastUsedOnly drops ApiToken updates that change nothing but
// status.lastUsedAt: the verifier flushes it in batches, and none of the
// reconciler's decisions depend on it.
var ignoreLastUsedOnly = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		before, ok1 := e.ObjectOld.(*v1alpha1.ApiToken)
		after, ok2 := e.ObjectNew.(*v1alpha1.ApiToken)
		if !ok1 || !ok2 || before.Status.LastUsedAt.Equal(after.Status.LastUsedAt) {
			return true
		}
		beforeStatus := before.Status.DeepCopy()
		beforeStatus.LastUsedAt = after.Status.LastUsedAt
		return before.Generation != after.Generation ||
			!equality.Semantic.DeepEqual(before.Labels, after.Labels) ||
			!equality.Semantic.DeepEqual(before.Annotations, after.Annotations) ||
			!equality.Semantic.DeepEqual(*beforeStatus, after.Status) ||
			!after.DeletionTimestamp.Equal(before.DeletionTimestamp)
	},
}

// tokensOfTeam maps a Team (old and new, on updates) to the tokens whose
// entitlement it may decide (cacheindex.TokensOfTeam).
func (r *ApiTokenReconciler) tokensOfTeam(ctx context.Context, obj client.Object) []reconcile.Request {
	team, ok := obj.(*v1alpha1.Team)
	if !ok {
		return nil
	}
	// Read-only: only the keys are kept.
	tokens, err := cacheindex.TokensOfTeam(ctx, r.Client, team, client.UnsafeDisableDeepCopy)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing a Team's tokens failed", "team", team.Name)
	}
	requests := make([]reconcile.Request, 0, len(tokens))
	for i := range tokens {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&tokens[i])})
	}
	return requests
}

// deletionStarted passes the update that gives an object its
// deletionTimestamp.
var deletionStarted = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
}

// tokensAfterRBACChange re-checks the tokens whose creators' admin
// standing the RBAC changes since the last notice may have altered
// (Standing.TakeChanges): those of the subjects a changed binding names,
// or every token when a change could not be weighed. Invalidated tokens
// are final.
func (r *ApiTokenReconciler) tokensAfterRBACChange(ctx context.Context, _ client.Object) []reconcile.Request {
	all, keys := r.Standing.TakeChanges()
	if !all && len(keys) == 0 {
		return nil
	}
	tokens := &v1alpha1.ApiTokenList{}
	// Read-only: every token is looked at, few are kept.
	if err := r.List(ctx, tokens, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing tokens after an RBAC change failed")
		return nil
	}
	var requests []reconcile.Request
	for i := range tokens.Items {
		tok := &tokens.Items[i]
		if tok.Status.Phase == v1alpha1.PhaseInvalidated || (!all && !createdByAny(tok, keys)) {
			continue
		}
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(tok)})
	}
	return requests
}

// createdByAny reports whether tok's creator is found under one of keys
// (authz.OwnerKeys). A token whose creator cannot be read is counted in:
// re-checking it costs little, and it fails for that reason anyway.
func createdByAny(tok *v1alpha1.ApiToken, keys map[string]struct{}) bool {
	creator, err := authz.CreatorOf(tok)
	if err != nil || creator == nil {
		return true
	}
	for _, k := range authz.OwnerKeys(creator) {
		if _, ok := keys[k]; ok {
			return true
		}
	}
	return false
}
