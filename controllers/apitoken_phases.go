package controllers

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/duration"
	"github.com/tokenwarden/tokenwarden/internal/lifecycle"
	"github.com/tokenwarden/tokenwarden/internal/metrics"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// Event reasons. They name what happened to a token, never its value.
const (
	EventIssued         = "Issued"
	EventRecreated      = "Recreated"
	EventRotated        = "Rotated"
	EventExpired        = "Expired"
	EventInvalidated    = "Invalidated"
	EventSecretConflict = "SecretConflict"
	EventSecretRepaired = "SecretRepaired"
	EventCreatorChanged = "CreatorChanged"
)

// conflictRecheck is how often a token blocked by a foreign Secret looks
// whether the Secret is gone.
const conflictRecheck = time.Minute

// reconcileSpec reads what the spec and annotations say: the creator and
// the parsed durations. The API server validated their syntax already.
func (r *ApiTokenReconciler) reconcileSpec(ctx context.Context, s *apiTokenScope) (ctrl.Result, error) {
	creator, err := authz.CreatorOf(s.token)
	if err != nil {
		ctrl.LoggerFrom(ctx).Info("Ignoring an unreadable creator annotation", "error", err.Error())
	}
	s.creator = creator
	if prev := s.base.Status.Creator; prev != nil && creator != nil && !authz.SameIdentity(prev, creator) {
		// A recreate by someone entitled makes them the creator.
		r.event(s, corev1.EventTypeNormal, EventCreatorChanged, "the creator changed from %q to %q on spec.recreate=%d", prev.Username, creator.Username, s.token.Spec.Recreate)
	}
	s.token.Status.Creator = creator
	if s.token.Spec.Lifetime != nil {
		d, err := duration.Parse(*s.token.Spec.Lifetime)
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("spec.lifetime: %w", err)
		}
		s.lifetime = &d
	}
	if rot := s.token.Spec.Rotation; rot != nil && rot.RenewBefore != nil {
		d, err := duration.Parse(*rot.RenewBefore)
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("spec.rotation.renewBefore: %w", err)
		}
		s.renewBefore = &d
	}
	return ctrl.Result{}, nil
}

// reconcileEntitlement re-checks the rules admission applied at creation:
// is the creator still entitled to this token, and does it keep its teams'
// policies? An object admitted while the webhook was absent is not trusted.
func (r *ApiTokenReconciler) reconcileEntitlement(ctx context.Context, s *apiTokenScope) (ctrl.Result, error) {
	st := &s.token.Status
	// Invalidation is final until someone allowed to asks for a new value.
	if st.Phase == v1alpha1.PhaseInvalidated && s.token.Spec.Recreate == st.Recreate {
		s.block(readyOf(s.token, v1alpha1.PhaseInvalidated))
		return ctrl.Result{}, nil
	}
	tok := authz.TokenOf(s.token)
	decide := func(reader client.Reader, admins authz.AdminChecker) (authz.Teams, authz.Verdict, authz.AdminAnswer, error) {
		list := &v1alpha1.TeamList{}
		// Read-only: no need to copy every Team out of the cache.
		if err := reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
			return nil, authz.Verdict{}, authz.AdminUnknown, fmt.Errorf("listing Teams: %w", err)
		}
		teams := authz.TeamsOf(list.Items)
		verdict, answer, err := authz.Decide(ctx, admins, s.creator, func(admin authz.AdminAnswer) authz.Verdict {
			return authz.Entitled(tok, s.creator, teams, admin)
		})
		return teams, verdict, answer, err
	}
	teams, verdict, answer, err := decide(r.Client, r.Standing)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !verdict.Allowed() && verdict.Reason != v1alpha1.ReasonCreatorUnknown && st.TokenHash != "" && st.Phase != v1alpha1.PhaseInvalidated {
		// Invalidation is final, so it is decided on what the API server
		// says now: the cache may not have seen a Team applied together
		// with the token or an owner just added, nor a remembered admin
		// answer a binding just created.
		if teams, verdict, answer, err = decide(r.APIReader, r.Standing.Fresh()); err != nil {
			return ctrl.Result{}, err
		}
	}
	if !verdict.Allowed() {
		phase := v1alpha1.PhaseInvalidated
		if verdict.Reason == v1alpha1.ReasonCreatorUnknown || st.TokenHash == "" {
			// Nothing was ever trusted or issued, so nothing to invalidate:
			// Failed is re-checked whenever a Team changes.
			phase = v1alpha1.PhaseFailed
		}
		s.block(outcome{phase: phase, reason: verdict.Reason, message: verdict.Message()})
		return ctrl.Result{}, nil
	}
	from := s.now
	if st.IssuedAt != nil && s.token.Spec.Recreate == st.Recreate {
		from = st.IssuedAt.Time
	}
	// Only a Team token's policies can fail it: a Wildcard token's are
	// checked at admission, and the verifier leaves out any team whose
	// policy it breaks later (authz.SpeaksFor).
	if tok.Type == v1alpha1.TeamTokenType {
		if policy := authz.PolicyOf(tok, &s.token.Spec, s.creator, teams, answer, from); !policy.Allowed() {
			s.block(outcome{phase: v1alpha1.PhaseFailed, reason: v1alpha1.ReasonPolicyViolation, message: policy.Message()})
			return ctrl.Result{}, nil
		}
	}
	return ctrl.Result{RequeueAfter: r.standingRecheck(answer)}, nil
}

// standingRecheck is when to check again an entitlement that rested on the
// creator's admin standing (answer is not AdminUnknown): right after the
// settle window of a recent RBAC change, whose answer may have been given
// before kube-apiserver's authorizer saw the change, or else after Recheck.
func (r *ApiTokenReconciler) standingRecheck(answer authz.AdminAnswer) time.Duration {
	if answer == authz.AdminUnknown {
		return 0
	}
	if left := r.Standing.Unsettled(); left > 0 {
		return left + settleMargin
	}
	if r.Recheck > 0 {
		return r.Recheck
	}
	return DefaultRecheck
}

// reconcileSecret makes the Secret hold what the decision says: the issued
// value, a new one, or none.
func (r *ApiTokenReconciler) reconcileSecret(ctx context.Context, s *apiTokenScope) (ctrl.Result, error) {
	name := secretName(s.token)
	s.token.Status.SecretRef = &v1alpha1.SecretReference{Name: name}
	if err := r.observeSecret(ctx, s, name); err != nil {
		return ctrl.Result{}, err
	}
	// A token that may hold no value needs nothing from its Secret but the
	// value's removal; this comes first, so that nothing about the Secret
	// can turn an invalidation into another, less final state.
	if s.blocked {
		if s.outcome.phase == v1alpha1.PhaseInvalidated {
			s.token.Status.Previous = nil // no value of an invalidated token verifies
			if r.eventOnTransition(s, corev1.EventTypeWarning, EventInvalidated, s.outcome.message) {
				metrics.Invalidations.WithLabelValues(s.outcome.reason).Inc()
			}
		}
		return ctrl.Result{}, r.withdraw(ctx, s)
	}

	decision := lifecycle.Decide(s.input())
	switch decision.Action {
	case lifecycle.Conflict:
		s.outcome = outcome{phase: v1alpha1.PhaseFailed, reason: v1alpha1.ReasonSecretConflict,
			message: fmt.Sprintf("Secret %q exists and is not controlled by this ApiToken; it is left untouched", name)}
		r.eventOnTransition(s, corev1.EventTypeWarning, EventSecretConflict, s.outcome.message)
		// Foreign Secrets carry no managed-by label, so the cache never sees
		// one go away: look again now and then instead.
		return ctrl.Result{RequeueAfter: conflictRecheck}, nil
	case lifecycle.Issue:
		return ctrl.Result{}, r.issue(ctx, s, decision.Reason)
	case lifecycle.Withdraw, lifecycle.Keep:
		if decision.Reason == lifecycle.Expired {
			message := "the value expired"
			if at := lifecycle.ExpiresAt(&s.token.Spec, s.token.Status.IssuedAt, s.lifetime); at != nil {
				expiresAt := metav1.NewTime(*at)
				s.token.Status.ExpiresAt = &expiresAt
				message += " at " + at.UTC().Format(time.RFC3339)
			}
			s.outcome = outcome{phase: v1alpha1.PhaseExpired, reason: v1alpha1.ReasonExpired, message: message}
			s.token.Status.Previous = nil
			r.eventOnTransition(s, corev1.EventTypeNormal, EventExpired, s.outcome.message)
			return ctrl.Result{}, r.withdraw(ctx, s)
		}
		s.outcome = activeOutcome(s.token)
		return ctrl.Result{}, r.syncSecretMetadata(ctx, s)
	}
	return ctrl.Result{}, nil
}

// reconcileOverlap drops the previous value once its overlap has ended.
func (r *ApiTokenReconciler) reconcileOverlap(_ context.Context, s *apiTokenScope) (ctrl.Result, error) {
	if prev := s.token.Status.Previous; prev != nil && !s.now.Before(prev.ExpiresAt.Time) {
		s.token.Status.Previous = nil
	}
	return ctrl.Result{}, nil
}

// reconcileWakeup schedules the next reconcile for the exact instant the
// answer changes by itself: expiry, renewal, or the end of an overlap.
func (r *ApiTokenReconciler) reconcileWakeup(_ context.Context, s *apiTokenScope) (ctrl.Result, error) {
	in := s.input()
	in.Status = s.token.Status.DeepCopy()
	in.Status.Phase = s.outcome.phase
	return ctrl.Result{RequeueAfter: lifecycle.NextWakeup(in)}, nil
}

// observeSecret finds the delivered Secret and what it holds. The cache is
// trusted when it shows the issued value; anything else, which would lead
// to a new value, is confirmed against the API server first, because the
// cache may lag behind our own last write and never holds foreign Secrets.
func (r *ApiTokenReconciler) observeSecret(ctx context.Context, s *apiTokenScope, name string) error {
	key := client.ObjectKey{Namespace: s.token.Namespace, Name: name}
	secret := &corev1.Secret{}
	if err := r.Get(ctx, key, secret); err == nil && metav1.IsControlledBy(secret, s.token) {
		if state := classify(secret, s.token); state == lifecycle.SecretMatches || (state == lifecycle.SecretEmpty && !holdsValue(s.token)) {
			s.secret, s.secretState = secret, state
			return nil
		}
	}
	secret = &corev1.Secret{}
	switch err := r.APIReader.Get(ctx, key, secret); {
	case apierrors.IsNotFound(err):
		s.secret, s.secretState = nil, lifecycle.SecretMissing
		return nil
	case err != nil:
		return fmt.Errorf("reading Secret %s: %w", name, err)
	}
	s.secret, s.secretState = secret, classify(secret, s.token)
	return nil
}

// classify says what secret holds relative to tok's status.
func classify(secret *corev1.Secret, tok *v1alpha1.ApiToken) lifecycle.SecretState {
	if !metav1.IsControlledBy(secret, tok) {
		return lifecycle.SecretForeign
	}
	value, ok := secret.Data[v1alpha1.SecretTokenKey]
	switch {
	case !ok || len(value) == 0:
		return lifecycle.SecretEmpty
	case tok.Status.TokenHash != "" && token.HashMatches(string(value), tok.Status.TokenHash):
		return lifecycle.SecretMatches
	case tok.Status.Previous != nil && token.HashMatches(string(value), tok.Status.Previous.TokenHash):
		return lifecycle.SecretPrevious
	}
	return lifecycle.SecretMismatch
}

// holdsValue reports whether tok's last recorded phase has a value in its
// Secret.
func holdsValue(tok *v1alpha1.ApiToken) bool {
	return tok.Status.Phase == v1alpha1.PhaseActive || tok.Status.Phase == v1alpha1.PhaseDisabled
}

// issue delivers a new value: status first, Secret second (see the type's
// comment on crash safety).
func (r *ApiTokenReconciler) issue(ctx context.Context, s *apiTokenScope, reason lifecycle.Reason) error {
	value, err := r.Format.Generate(s.token.Spec.Type)
	if err != nil {
		return fmt.Errorf("generating a token value: %w", err)
	}
	st := &s.token.Status
	st.Previous = overlapOf(s, reason)
	st.TokenHash = token.Hash(value)
	st.TokenPrefix = token.DisplayPrefix(value)
	issuedAt := metav1.NewTime(s.now)
	st.IssuedAt = &issuedAt
	st.ExpiresAt = nil
	if at := lifecycle.ExpiresAt(&s.token.Spec, &issuedAt, s.lifetime); at != nil {
		expiresAt := metav1.NewTime(*at)
		st.ExpiresAt = &expiresAt
	}
	st.Recreate = s.token.Spec.Recreate
	s.outcome = activeOutcome(s.token)
	if err := r.commitStatus(ctx, s); err != nil {
		return err // nothing was delivered: the next attempt starts afresh
	}
	if err := r.deliver(ctx, s, value); err != nil {
		return err
	}

	log := ctrl.LoggerFrom(ctx)
	log.Info("Issued a token value", "reason", string(reason), "tokenPrefix", st.TokenPrefix, "secret", st.SecretRef.Name)
	metrics.Issuances.WithLabelValues(string(reason)).Inc()
	switch reason {
	case lifecycle.Recreate, lifecycle.ResumeRotation:
		metrics.Recreations.Inc()
		r.event(s, corev1.EventTypeNormal, EventRecreated, "issued a new value (%s) on spec.recreate=%d", st.TokenPrefix, st.Recreate)
	case lifecycle.Renew:
		metrics.Recreations.Inc()
		r.event(s, corev1.EventTypeNormal, EventRotated, "renewed the value (%s) before its expiry", st.TokenPrefix)
	case lifecycle.SecretGone, lifecycle.SecretTampered:
		r.event(s, corev1.EventTypeWarning, EventSecretRepaired, "Secret %s %s: issued a new value (%s)", st.SecretRef.Name, describe(reason), st.TokenPrefix)
	default:
		r.event(s, corev1.EventTypeNormal, EventIssued, "issued a value (%s) into Secret %s", st.TokenPrefix, st.SecretRef.Name)
	}
	return nil
}

// overlapOf keeps the current value verifying for rotation.overlap when a
// recreate or renewal replaces a value that was being delivered.
func overlapOf(s *apiTokenScope, reason lifecycle.Reason) *v1alpha1.PreviousToken {
	if reason == lifecycle.ResumeRotation {
		// The value the interrupted rotation recorded was never delivered;
		// the one still in the Secret keeps its overlap.
		return s.token.Status.Previous
	}
	rot := s.token.Spec.Rotation
	if (reason != lifecycle.Recreate && reason != lifecycle.Renew) || rot == nil || rot.Overlap == nil ||
		s.base.Status.Phase != v1alpha1.PhaseActive || s.base.Status.TokenHash == "" {
		return nil
	}
	overlap, err := duration.Parse(*rot.Overlap)
	if err != nil {
		return nil
	}
	end := s.now.Add(overlap)
	if exp := s.base.Status.ExpiresAt; exp != nil && exp.Before(&metav1.Time{Time: end}) {
		end = exp.Time
	}
	return &v1alpha1.PreviousToken{TokenHash: s.base.Status.TokenHash, ExpiresAt: metav1.NewTime(end)}
}

// deliver writes value into the Secret, creating it if needed.
func (r *ApiTokenReconciler) deliver(ctx context.Context, s *apiTokenScope, value string) error {
	if s.secret == nil {
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.token.Status.SecretRef.Name, Namespace: s.token.Namespace},
			Type:       v1alpha1.SecretType,
			Data:       map[string][]byte{v1alpha1.SecretTokenKey: []byte(value)},
		}
		applySecretMetadata(secret, s.token)
		if err := controllerutil.SetControllerReference(s.token, secret, r.Scheme()); err != nil {
			return err
		}
		if err := r.Create(ctx, secret); err != nil {
			return fmt.Errorf("creating Secret %s: %w", secret.Name, err)
		}
		s.secret = secret
		return nil
	}
	before := s.secret.DeepCopy()
	if s.secret.Data == nil {
		s.secret.Data = map[string][]byte{}
	}
	s.secret.Data[v1alpha1.SecretTokenKey] = []byte(value)
	applySecretMetadata(s.secret, s.token)
	if err := r.Patch(ctx, s.secret, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("writing the value into Secret %s: %w", s.secret.Name, err)
	}
	return nil
}

// withdraw removes the value from the Secret, after the status that makes
// it refused has been written.
func (r *ApiTokenReconciler) withdraw(ctx context.Context, s *apiTokenScope) error {
	// A Secret this ApiToken does not control is never touched.
	if s.secret == nil || s.secretState == lifecycle.SecretForeign || len(s.secret.Data[v1alpha1.SecretTokenKey]) == 0 {
		return nil
	}
	if err := r.commitStatus(ctx, s); err != nil {
		return err
	}
	before := s.secret.DeepCopy()
	delete(s.secret.Data, v1alpha1.SecretTokenKey)
	if err := r.Patch(ctx, s.secret, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("removing the value from Secret %s: %w", s.secret.Name, err)
	}
	ctrl.LoggerFrom(ctx).Info("Withdrew a token value", "phase", string(s.outcome.phase), "reason", s.outcome.reason, "secret", s.secret.Name)
	return nil
}

// syncSecretMetadata adds the secretTemplate labels and annotations that the
// Secret lacks, writing nothing when it has them.
func (r *ApiTokenReconciler) syncSecretMetadata(ctx context.Context, s *apiTokenScope) error {
	if s.secret == nil {
		return nil
	}
	before := s.secret.DeepCopy()
	applySecretMetadata(s.secret, s.token)
	if maps.Equal(before.Labels, s.secret.Labels) && maps.Equal(before.Annotations, s.secret.Annotations) {
		return nil
	}
	return r.Patch(ctx, s.secret, client.MergeFrom(before))
}

// applySecretMetadata sets the managed-by label and the secretTemplate's
// labels and annotations on secret.
func applySecretMetadata(secret *corev1.Secret, tok *v1alpha1.ApiToken) {
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	if tmpl := tok.Spec.SecretTemplate; tmpl != nil {
		maps.Copy(secret.Labels, tmpl.Labels)
		if len(tmpl.Annotations) > 0 {
			if secret.Annotations == nil {
				secret.Annotations = map[string]string{}
			}
			maps.Copy(secret.Annotations, tmpl.Annotations)
		}
	}
	secret.Labels[v1alpha1.ManagedByLabel] = v1alpha1.ManagedByValue
}

// secretName is where tok's value is delivered.
func secretName(tok *v1alpha1.ApiToken) string {
	if tok.Spec.SecretName != "" {
		return tok.Spec.SecretName
	}
	return tok.Name
}

// input is the lifecycle decision's view of the scope.
func (s *apiTokenScope) input() lifecycle.Input {
	return lifecycle.Input{
		Spec: &s.token.Spec, Status: &s.token.Status, Secret: s.secretState, Now: s.now,
		Lifetime: s.lifetime, RenewBefore: s.renewBefore,
	}
}

// block records that the token may hold no value, and why.
func (s *apiTokenScope) block(o outcome) {
	s.blocked = true
	s.outcome = o
}

func describe(reason lifecycle.Reason) string {
	if reason == lifecycle.SecretTampered {
		return "held a value that was not issued"
	}
	return "or its value was missing"
}

// event emits an Event about the token; callers never pass a value.
func (r *ApiTokenReconciler) event(s *apiTokenScope, eventType, reason, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(s.token, nil, eventType, reason, reason, note, args...)
	}
}

// eventOnTransition emits an Event only when the phase or reason changes,
// so a reconcile that finds things as they were stays silent; it reports
// whether this was a transition.
func (r *ApiTokenReconciler) eventOnTransition(s *apiTokenScope, eventType, reason, note string) bool {
	if s.base.Status.Phase == s.outcome.phase && readyReason(s.base) == s.outcome.reason {
		return false
	}
	r.event(s, eventType, reason, "%s", note)
	return true
}
