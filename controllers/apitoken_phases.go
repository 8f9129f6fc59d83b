package controllers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/cached"
	"github.com/tokenwarden/tokenwarden/internal/duration"
	"github.com/tokenwarden/tokenwarden/internal/lifecycle"
	"github.com/tokenwarden/tokenwarden/internal/metrics"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// Event reasons. They name what happened to a token, never its value. Every
// change of phase or Ready reason records exactly one Event, once the status
// that says so is written: the issuance's own when a new value causes it
// (Issued, Recreated, Rotated, SecretRepaired), else the one transitionEvent
// names for the new phase and reason. A reconcile that changes nothing
// records none.
const (
	// EventIssued: a token's first value was delivered.
	EventIssued = "Issued"
	// EventRecreated: a new value was delivered on a spec.recreate change.
	EventRecreated = "Recreated"
	// EventRotated: a new value was delivered rotation.renewBefore ahead of
	// the expiry.
	EventRotated = "Rotated"
	// EventSecretRepaired: a new value was delivered because the Secret, or
	// its value, was gone or was not the issued one.
	EventSecretRepaired = "SecretRepaired"
	// EventEnabled: a Disabled token's value verifies again.
	EventEnabled = "Enabled"
	// EventDisabled: spec.disabled was set; the value is kept but refused.
	EventDisabled = "Disabled"
	// EventExpired: the value expired and was withdrawn.
	EventExpired = "Expired"
	// EventExpiresAtPassed: a new value was asked for, but spec.expiresAt
	// has passed, so none is issued until it is moved.
	EventExpiresAtPassed = "ExpiresAtPassed"
	// EventInvalidated: the creator lost the standing the token needs; the
	// value was withdrawn for good.
	EventInvalidated = "Invalidated"
	// EventSecretConflict: a Secret the token does not control has the name.
	EventSecretConflict = "SecretConflict"
	// EventPolicyViolation: the token breaks a policy of one of its teams.
	EventPolicyViolation = "PolicyViolation"
	// EventCreatorUnknown: the token has no valid creator annotation.
	EventCreatorUnknown = "CreatorUnknown"
	// EventNotEntitled: a token never issued is not issued, because its
	// creator is not entitled to it (CreatorNotOwner, CreatorNotAdmin,
	// TeamDeleted, NamespaceNotAllowed).
	EventNotEntitled = "NotEntitled"
	// EventCreatorChanged: a recreate made someone else the creator.
	EventCreatorChanged = "CreatorChanged"
	// EventInvalidSpec: a duration in the spec cannot be read; any value
	// held was withdrawn.
	EventInvalidSpec = "InvalidSpec"
)

// conflictRecheck is how often a token blocked by a foreign Secret looks
// whether the Secret is gone.
const conflictRecheck = time.Minute

// reconcileSpec reads what the spec and annotations say: the creator and
// the parsed durations. A duration that cannot be read blocks the token:
// no value can be judged by a spec nobody can read.
func (r *ApiTokenReconciler) reconcileSpec(ctx context.Context, s *apiTokenScope) (ctrl.Result, error) {
	creator, err := authz.CreatorOf(s.token)
	if err != nil {
		ctrl.LoggerFrom(ctx).Info("Ignoring an unreadable creator annotation", "error", err.Error())
	}
	s.creator = creator
	d, err := parseDurations(&s.token.Spec)
	if err != nil {
		s.invalidSpec = err
		if lifecycle.StaysExpired(s.input()) {
			// The spec matters only to the value a recreate would issue;
			// the Reconciled condition says what is wrong with it.
			s.block(readyOf(s.token, v1alpha1.PhaseExpired))
			return ctrl.Result{}, nil
		}
		s.block(outcome{phase: v1alpha1.PhaseFailed, reason: v1alpha1.ReasonInvalidSpec,
			message: err.Error() + " (no value is held until the spec is fixed)"})
		// Nothing will come back to end an overlap: the reconcile stops for
		// good, and no value of a Failed token verifies anyway.
		s.dropPrevious = true
		return ctrl.Result{}, nil
	}
	s.lifetime, s.renewBefore, s.overlap = d.lifetime, d.renewBefore, d.overlap
	return ctrl.Result{}, nil
}

// specDurations are a spec's durations, parsed; nil when unset.
type specDurations struct {
	lifetime, renewBefore, overlap *time.Duration
}

// parseDurations parses spec's durations, or says which one cannot be
// parsed. The API server checks their syntax, but lets through totals too
// large for a time.Duration (such as 99999d999999h), and an object stored
// before the check may hold anything.
func parseDurations(spec *v1alpha1.ApiTokenSpec) (specDurations, error) {
	var (
		d   specDurations
		rot v1alpha1.RotationSpec
		err error
	)
	if spec.Rotation != nil {
		rot = *spec.Rotation
	}
	if d.lifetime, err = parseDuration("spec.lifetime", spec.Lifetime); err != nil {
		return specDurations{}, err
	}
	if d.renewBefore, err = parseDuration("spec.rotation.renewBefore", rot.RenewBefore); err != nil {
		return specDurations{}, err
	}
	if d.overlap, err = parseDuration("spec.rotation.overlap", rot.Overlap); err != nil {
		return specDurations{}, err
	}
	return d, nil
}

// parseDuration parses the field at path, whose value is nil when unset.
func parseDuration(path string, value *v1alpha1.Duration) (*time.Duration, error) {
	if value == nil {
		return nil, nil
	}
	d, err := duration.Parse(*value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

// reconcileEntitlement re-checks the rules admission applied at creation:
// is the creator still entitled to this token, and does it keep its teams'
// policies? An object admitted while the webhook was absent is not trusted.
func (r *ApiTokenReconciler) reconcileEntitlement(ctx context.Context, s *apiTokenScope) (ctrl.Result, error) {
	st := &s.token.Status
	// Invalidation is final until someone allowed to asks for a new value,
	// and stays what the status says even when the spec cannot be read.
	if st.Phase == v1alpha1.PhaseInvalidated && s.token.Spec.Recreate == st.Recreate {
		s.block(readyOf(s.token, v1alpha1.PhaseInvalidated))
		return ctrl.Result{}, nil
	}
	if s.blocked {
		return ctrl.Result{}, nil // by reconcileSpec: nothing to judge the spec by
	}
	tok := authz.TokenOf(s.token)
	decide := func(reader client.Reader, admins authz.AdminChecker) (authz.Teams, authz.Verdict, authz.AdminAnswer, error) {
		teams, err := decidingTeams(ctx, reader, tok)
		if err != nil {
			return nil, authz.Verdict{}, authz.AdminUnknown, err
		}
		verdict, answer, err := authz.Decide(ctx, admins, s.creator, func(admin authz.AdminAnswer) authz.Verdict {
			return authz.Entitled(tok, s.creator, teams, admin)
		})
		return teams, verdict, answer, err
	}
	teams, verdict, answer, err := decide(r.Client, r.Standing)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !verdict.Allowed() && verdict.Reason != v1alpha1.ReasonCreatorUnknown && st.Phase != v1alpha1.PhaseInvalidated {
		// A refusal is decided on what the API server says now: the cache
		// may not have seen a Team applied together with the token or an
		// owner just added, nor a remembered admin answer a binding just
		// created. Invalidation is final, and even a token never issued
		// would otherwise flap through Failed, with an Event, on its way to
		// Active.
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
	from := authz.PolicyFrom(&s.token.Spec, st, s.now)
	// Only a Team token's policies can fail it: a Wildcard token's are
	// checked at admission, and the verifier leaves out any team whose
	// policy it breaks later (authz.WildcardTeams).
	// An expired token's policy matters only to the value a recreate would
	// issue (lifecycle.StaysExpired).
	if tok.Type == v1alpha1.TeamTokenType && !lifecycle.StaysExpired(s.input()) {
		if policy := authz.PolicyOf(tok, &s.token.Spec, s.creator, teams, answer, from); !policy.Allowed() {
			s.block(outcome{phase: v1alpha1.PhaseFailed, reason: v1alpha1.ReasonPolicyViolation, message: policy.Message()})
			return ctrl.Result{}, nil
		}
	}
	return ctrl.Result{RequeueAfter: r.standingRecheck(answer)}, nil
}

// decidingTeams reads the Teams that decide tok's entitlement and policy:
// none for an Admin token; the ones it names for a Team token, so that a
// refusal confirmed against the API server costs a GET per team, not a
// list of every Team in the cluster (10,000 tokens of one team revoked at
// once would otherwise list them all 10,000 times); every Team for a
// Wildcard token, whose creator may own any.
func decidingTeams(ctx context.Context, reader client.Reader, tok authz.Token) (authz.Teams, error) {
	switch tok.Type {
	case v1alpha1.AdminTokenType:
		return authz.Teams{}, nil
	case v1alpha1.TeamTokenType:
		list := make([]v1alpha1.Team, 0, len(tok.Teams))
		for _, name := range tok.Teams {
			var team v1alpha1.Team
			switch err := reader.Get(ctx, client.ObjectKey{Name: name}, &team); {
			case apierrors.IsNotFound(err):
				// Gone: Entitled says TeamDeleted.
			case err != nil:
				return nil, fmt.Errorf("reading Team %s: %w", name, err)
			default:
				list = append(list, team)
			}
		}
		return authz.TeamsOf(list), nil
	}
	list := &v1alpha1.TeamList{}
	// Read-only: no need to copy every Team out of the cache.
	if err := reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing Teams: %w", err)
	}
	return authz.TeamsOf(list.Items), nil
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
	s.secretName = lifecycle.SecretName(s.token)
	if err := r.observeSecret(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	// A token that may hold no value needs nothing from its Secret but the
	// value's removal; this comes first, so that nothing about the Secret
	// can turn an invalidation into another, less final state.
	if s.blocked {
		if s.outcome.phase == v1alpha1.PhaseInvalidated {
			s.dropPrevious = true // no value of an invalidated token verifies
		}
		return ctrl.Result{}, r.withdraw(ctx, s)
	}

	decision := lifecycle.Decide(s.input())
	switch decision.Action {
	case lifecycle.Conflict:
		s.outcome = outcome{phase: v1alpha1.PhaseFailed, reason: v1alpha1.ReasonSecretConflict,
			message: fmt.Sprintf("Secret %q exists and is not controlled by this ApiToken; it is left untouched", s.secretName)}
		// Foreign Secrets carry no managed-by label, so the cache never sees
		// one go away: look again now and then instead.
		return ctrl.Result{RequeueAfter: conflictRecheck}, nil
	case lifecycle.Issue:
		if decision.Reason == lifecycle.SecretGone {
			// A Secret gone from a namespace being deleted was deleted by
			// the namespace controller, which deletes the token next. Only
			// this rare path asks: a first issuance in such a namespace is
			// refused by the API server, and handled as such.
			if err := r.namespaceTerminating(ctx, s.token.Namespace); err != nil {
				return ctrl.Result{}, err
			}
		}
		return ctrl.Result{}, r.issue(ctx, s, decision.Reason)
	case lifecycle.Withdraw, lifecycle.Keep:
		if decision.Reason == lifecycle.Expired || decision.Reason == lifecycle.ExpiresAtPassed {
			s.outcome = expiredOutcome(s, decision.Reason)
			s.dropPrevious = true
			return ctrl.Result{}, r.withdraw(ctx, s)
		}
		// The value stays; computeStatus records the expiry the spec gives
		// it now, so an edit of expiresAt or lifetime shows without a new value.
		s.outcome = activeOutcome(s.token)
		return ctrl.Result{}, r.syncSecretMetadata(ctx, s)
	}
	return ctrl.Result{}, nil
}

// reconcileOverlap drops the previous value once its overlap has ended.
// The wake-up for that instant is scheduled by finish, from the status
// written.
func (r *ApiTokenReconciler) reconcileOverlap(_ context.Context, s *apiTokenScope) (ctrl.Result, error) {
	if prev := s.previousValue(); prev != nil && !s.now.Before(prev.ExpiresAt.Time) {
		s.dropPrevious = true
	}
	return ctrl.Result{}, nil
}

// observeSecret finds the delivered Secret and what it holds. The cache is
// trusted when it shows the issued value; anything else, which would lead
// to a new value, is confirmed against the API server first, because the
// cache may lag behind our own last write and never holds foreign Secrets.
func (r *ApiTokenReconciler) observeSecret(ctx context.Context, s *apiTokenScope) error {
	key := client.ObjectKey{Namespace: s.token.Namespace, Name: s.secretName}
	secret := &corev1.Secret{}
	if err := r.Get(ctx, key, secret); err == nil && metav1.IsControlledBy(secret, s.token) {
		if state := classify(secret, s.token); state == lifecycle.SecretMatches || (state == lifecycle.SecretEmpty && !lifecycle.HoldsValue(s.token.Status.Phase)) {
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
		return fmt.Errorf("reading Secret %s: %w", s.secretName, err)
	}
	// The cache holds digests, never values; so does everything read here.
	cached.DigestSecret(secret)
	s.secret, s.secretState = secret, classify(secret, s.token)
	return nil
}

// classify says what secret, as the cache keeps it (cached.DigestSecret),
// holds relative to tok's status.
func classify(secret *corev1.Secret, tok *v1alpha1.ApiToken) lifecycle.SecretState {
	if !metav1.IsControlledBy(secret, tok) {
		return lifecycle.SecretForeign
	}
	digest := cached.Digest(secret)
	switch {
	case digest == "":
		return lifecycle.SecretEmpty
	case tok.Status.TokenHash != "" && token.DigestsEqual(digest, tok.Status.TokenHash):
		return lifecycle.SecretMatches
	case tok.Status.Previous != nil && token.DigestsEqual(digest, tok.Status.Previous.TokenHash):
		return lifecycle.SecretPrevious
	}
	return lifecycle.SecretMismatch
}

// issue delivers a new value: status first, Secret second (see the type's
// comment on crash safety).
func (r *ApiTokenReconciler) issue(ctx context.Context, s *apiTokenScope, reason lifecycle.Reason) error {
	value, err := r.Format.Generate(s.token.Spec.Type)
	if err != nil {
		return fmt.Errorf("generating a token value: %w", err)
	}
	v := &issuedValue{
		hash: token.Hash(value), prefix: token.DisplayPrefix(value),
		// To the second, as the API server keeps it: the expiry and the
		// wake-up derived from it are then the ones every replica reads.
		at: s.now.Truncate(time.Second), recreate: s.token.Spec.Recreate, previous: overlapOf(s, reason),
	}
	s.issued, s.issuance = v, reason
	s.outcome = activeOutcome(s.token)
	if err := r.commitStatus(ctx, s, nil); err != nil {
		return err // nothing was delivered: the next attempt starts afresh
	}
	if err := r.deliver(ctx, s, value); err != nil {
		return err
	}

	log := ctrl.LoggerFrom(ctx)
	log.Info("Issued a token value", "reason", string(reason), "tokenPrefix", v.prefix, "secret", s.secretName)
	metrics.Issuances.WithLabelValues(string(reason)).Inc()
	switch reason {
	case lifecycle.Recreate, lifecycle.ResumeRotation:
		metrics.Recreations.Inc()
		r.event(s, corev1.EventTypeNormal, EventRecreated, "issued a new value (%s) on spec.recreate=%d", v.prefix, v.recreate)
	case lifecycle.Renew:
		metrics.Recreations.Inc()
		r.event(s, corev1.EventTypeNormal, EventRotated, "renewed the value (%s) before its expiry", v.prefix)
	case lifecycle.SecretGone, lifecycle.SecretTampered:
		r.event(s, corev1.EventTypeWarning, EventSecretRepaired, "Secret %s %s: issued a new value (%s)", s.secretName, describe(reason), v.prefix)
	default:
		r.event(s, corev1.EventTypeNormal, EventIssued, "issued a value (%s) into Secret %s", v.prefix, s.secretName)
	}
	return nil
}

// overlapOf keeps the current value verifying for rotation.overlap when a
// recreate or renewal replaces a value that was being delivered.
func overlapOf(s *apiTokenScope, reason lifecycle.Reason) *v1alpha1.PreviousToken {
	if reason == lifecycle.ResumeRotation {
		// The value the interrupted rotation recorded was never delivered;
		// the one still in the Secret keeps its overlap.
		return s.base.Status.Previous
	}
	if (reason != lifecycle.Recreate && reason != lifecycle.Renew) || s.overlap == nil ||
		s.base.Status.Phase != v1alpha1.PhaseActive || s.base.Status.TokenHash == "" {
		return nil
	}
	// Never past the replaced value's own expiry, as the spec gives it now.
	end := s.now.Add(*s.overlap)
	if exp := lifecycle.ExpiresAt(&s.token.Spec, s.base.Status.IssuedAt, s.lifetime); exp != nil && exp.Before(end) {
		end = *exp
	}
	return &v1alpha1.PreviousToken{TokenHash: s.base.Status.TokenHash, ExpiresAt: metav1.NewTime(end)}
}

// deliver writes value into the Secret, creating it if needed.
func (r *ApiTokenReconciler) deliver(ctx context.Context, s *apiTokenScope, value string) error {
	if s.secret == nil {
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.secretName, Namespace: s.token.Namespace},
			Type:       v1alpha1.SecretType,
			Data:       map[string][]byte{v1alpha1.SecretTokenKey: []byte(value)},
		}
		applySecretMetadata(secret, s.token)
		if err := controllerutil.SetControllerReference(s.token, secret, r.Scheme()); err != nil {
			return err
		}
		if err := r.Create(ctx, secret); err != nil {
			return fmt.Errorf("creating Secret %s: %w", secret.Name, withoutValue(err, value))
		}
		cached.DigestSecret(secret)
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
		return fmt.Errorf("writing the value into Secret %s: %w", s.secret.Name, withoutValue(err, value))
	}
	// The patch's answer holds the whole Secret again.
	cached.DigestSecret(s.secret)
	return nil
}

// valueWithheld stands in an error's message for a value it quoted.
const valueWithheld = "[token value withheld]"

// withoutValue returns err, or, when its message quotes value (plainly or
// in base64, as a Secret's JSON holds it: an admission webhook may echo
// the object it refuses), the same error with the value cut out. Errors
// end up in logs and in the Reconciled condition, where a value must never
// be. The API status is kept, so callers still tell a conflict or a
// terminating namespace from the rest.
func withoutValue(err error, value string) error {
	encoded := base64.StdEncoding.EncodeToString([]byte(value))
	if err == nil || value == "" || (!strings.Contains(err.Error(), value) && !strings.Contains(err.Error(), encoded)) {
		return err
	}
	scrub := strings.NewReplacer(value, valueWithheld, encoded, valueWithheld).Replace
	var apiStatus apierrors.APIStatus
	if !errors.As(err, &apiStatus) {
		return errors.New(scrub(err.Error()))
	}
	recorded := apiStatus.Status()
	status := recorded.DeepCopy()
	status.Message = scrub(status.Message)
	if status.Details != nil {
		for i := range status.Details.Causes {
			status.Details.Causes[i].Message = scrub(status.Details.Causes[i].Message)
		}
	}
	return &apierrors.StatusError{ErrStatus: *status}
}

// withdraw removes the value from the Secret, after the status that makes
// it refused has been written.
func (r *ApiTokenReconciler) withdraw(ctx context.Context, s *apiTokenScope) error {
	// A Secret this ApiToken does not control is never touched.
	if s.secret == nil || s.secretState == lifecycle.SecretForeign || cached.Digest(s.secret) == "" {
		return nil
	}
	if err := r.commitStatus(ctx, s, nil); err != nil {
		return err
	}
	before := s.secret.DeepCopy()
	delete(s.secret.Data, v1alpha1.SecretTokenKey)
	if err := r.Patch(ctx, s.secret, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("removing the value from Secret %s: %w", s.secret.Name, err)
	}
	cached.DigestSecret(s.secret)
	ctrl.LoggerFrom(ctx).Info("Withdrew a token value", "phase", string(s.outcome.phase), "reason", s.outcome.reason, "secret", s.secret.Name)
	return nil
}

// syncSecretMetadata makes the Secret's labels and annotations follow the
// secretTemplate, writing nothing when they do already.
func (r *ApiTokenReconciler) syncSecretMetadata(ctx context.Context, s *apiTokenScope) error {
	if s.secret == nil {
		return nil
	}
	before := s.secret.DeepCopy()
	applySecretMetadata(s.secret, s.token)
	if maps.Equal(before.Labels, s.secret.Labels) && maps.Equal(before.Annotations, s.secret.Annotations) {
		return nil
	}
	if err := r.Patch(ctx, s.secret, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("writing the secretTemplate onto Secret %s: %w", s.secret.Name, err)
	}
	return nil
}

// applySecretMetadata makes secret's labels and annotations what tok's
// secretTemplate says: the managed-by label always, every template entry,
// and none of the entries the operator put there before (as
// SecretTemplateAnnotation records) that the template no longer has.
// Entries anyone else set are never touched.
//
// Server-side apply would track the same, but does not fit: the Secret is
// created with a plain create, which fails if a Secret of that name
// appeared meanwhile (an apply would merge into it, taking over a Secret
// the operator does not own), and the fields a create sets belong to the
// create's manager, so a later apply that drops them would not remove
// them. Knowing without a write that nothing changed would also need the
// managed fields, which the cache strips. The record travels in the same
// write as the entries, so a crash leaves no entry unaccounted for.
func applySecretMetadata(secret *corev1.Secret, tok *v1alpha1.ApiToken) {
	var tmpl v1alpha1.SecretTemplate
	if tok.Spec.SecretTemplate != nil {
		tmpl = *tok.Spec.SecretTemplate
	}
	applied := appliedTemplate(secret)
	secret.Labels = applyEntries(secret.Labels, tmpl.Labels, applied.Labels)
	secret.Annotations = applyEntries(secret.Annotations, tmpl.Annotations, applied.Annotations)
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	secret.Labels[v1alpha1.ManagedByLabel] = v1alpha1.ManagedByValue

	record := templateKeys{Labels: sortedKeys(tmpl.Labels), Annotations: sortedKeys(tmpl.Annotations)}
	record.Labels = slices.DeleteFunc(record.Labels, func(k string) bool { return k == v1alpha1.ManagedByLabel })
	record.Annotations = slices.DeleteFunc(record.Annotations, func(k string) bool { return k == v1alpha1.SecretTemplateAnnotation })
	if len(record.Labels) == 0 && len(record.Annotations) == 0 {
		delete(secret.Annotations, v1alpha1.SecretTemplateAnnotation)
		return
	}
	data, err := json.Marshal(record)
	if err != nil {
		return // a struct of string slices always marshals
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Annotations[v1alpha1.SecretTemplateAnnotation] = string(data)
}

// templateKeys is what SecretTemplateAnnotation records: the label and
// annotation keys the operator put on a Secret from its secretTemplate.
type templateKeys struct {
	Labels      []string `json:"labels,omitempty"`
	Annotations []string `json:"annotations,omitempty"`
}

// appliedTemplate reads the keys the operator last put on secret from a
// secretTemplate. A record nobody can read counts as none: removing an
// entry it might have named could remove someone else's.
func appliedTemplate(secret *corev1.Secret) templateKeys {
	var keys templateKeys
	if data, ok := secret.Annotations[v1alpha1.SecretTemplateAnnotation]; ok {
		if err := json.Unmarshal([]byte(data), &keys); err != nil {
			return templateKeys{}
		}
	}
	return keys
}

// applyEntries removes from current the previous keys that desired lacks,
// then sets every desired entry.
func applyEntries(current, desired map[string]string, previous []string) map[string]string {
	for _, key := range previous {
		if _, ok := desired[key]; !ok {
			delete(current, key)
		}
	}
	if len(desired) > 0 && current == nil {
		current = make(map[string]string, len(desired))
	}
	maps.Copy(current, desired)
	return current
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
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

// maxNote is the longest Event note the API server accepts, in bytes.
const maxNote = 1024

// shorten cuts s to at most limit bytes, marking the cut.
func shorten(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit-len("...")], "") + "..."
}

// event emits an Event about the token; callers never pass a value.
func (r *ApiTokenReconciler) event(s *apiTokenScope, eventType, reason, note string, args ...any) {
	if r.Recorder == nil {
		return
	}
	// A long policy message would have the whole Event refused.
	note = shorten(fmt.Sprintf(note, args...), maxNote)
	r.Recorder.Eventf(s.token, nil, eventType, reason, reason, "%s", note)
}

// recordChanges emits the Events, and counts the invalidations, that the
// status just written (over before) records: a change of creator, and a
// change of phase or Ready reason. Recording them after the write, once,
// means a reconcile that fails to write, or writes nothing, records
// nothing, and one that runs again after a conflict does not record twice.
func (r *ApiTokenReconciler) recordChanges(s *apiTokenScope, before *v1alpha1.ApiToken) {
	if prev, now := before.Status.Creator, s.token.Status.Creator; prev != nil && now != nil && !authz.SameIdentity(prev, now) {
		// A recreate by someone entitled makes them the creator.
		r.event(s, corev1.EventTypeNormal, EventCreatorChanged, "the creator changed from %q to %q on spec.recreate=%d", prev.Username, now.Username, s.token.Spec.Recreate)
	}
	phase, reason := s.token.Status.Phase, readyReason(s.token)
	if phase == before.Status.Phase && reason == readyReason(before) {
		return
	}
	if phase == v1alpha1.PhaseInvalidated {
		metrics.Invalidations.WithLabelValues(reason).Inc()
	}
	if s.issuance != "" {
		return // the issuance records its own Event once the value is delivered
	}
	if eventType, eventReason := transitionEvent(phase, reason); eventReason != "" {
		r.event(s, eventType, eventReason, "%s (%s): %s", phase, reason, readyMessage(s.token))
	}
}

// transitionEvent is the type and reason of the Event that records a token
// reaching phase with the Ready reason, without a new value; "" for
// Pending, where every token starts.
func transitionEvent(phase v1alpha1.ApiTokenPhase, reason string) (eventType, eventReason string) {
	switch phase {
	case v1alpha1.PhaseActive:
		return corev1.EventTypeNormal, EventEnabled
	case v1alpha1.PhaseDisabled:
		return corev1.EventTypeNormal, EventDisabled
	case v1alpha1.PhaseExpired:
		if reason == v1alpha1.ReasonExpiresAtPassed {
			return corev1.EventTypeWarning, EventExpiresAtPassed
		}
		return corev1.EventTypeNormal, EventExpired
	case v1alpha1.PhaseInvalidated:
		return corev1.EventTypeWarning, EventInvalidated
	case v1alpha1.PhaseFailed:
		switch reason {
		case v1alpha1.ReasonSecretConflict:
			return corev1.EventTypeWarning, EventSecretConflict
		case v1alpha1.ReasonPolicyViolation:
			return corev1.EventTypeWarning, EventPolicyViolation
		case v1alpha1.ReasonCreatorUnknown:
			return corev1.EventTypeWarning, EventCreatorUnknown
		case v1alpha1.ReasonInvalidSpec:
			return corev1.EventTypeWarning, EventInvalidSpec
		}
		return corev1.EventTypeWarning, EventNotEntitled
	}
	return "", ""
}
