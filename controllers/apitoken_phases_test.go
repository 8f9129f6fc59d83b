package controllers

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// TestTransitionEvent covers every phase and Ready reason setStatus can
// write: each but Pending, where every token starts, has its Event.
func TestTransitionEvent(t *testing.T) {
	tests := []struct {
		phase     v1alpha1.ApiTokenPhase
		reason    string
		eventType string
		event     string
	}{
		{v1alpha1.PhasePending, v1alpha1.ReasonPending, "", ""},
		{v1alpha1.PhaseActive, v1alpha1.ReasonIssued, corev1.EventTypeNormal, EventEnabled},
		{v1alpha1.PhaseDisabled, v1alpha1.ReasonDisabled, corev1.EventTypeNormal, EventDisabled},
		{v1alpha1.PhaseExpired, v1alpha1.ReasonExpired, corev1.EventTypeNormal, EventExpired},
		{v1alpha1.PhaseExpired, v1alpha1.ReasonExpiresAtPassed, corev1.EventTypeWarning, EventExpiresAtPassed},
		{v1alpha1.PhaseInvalidated, v1alpha1.ReasonCreatorNotOwner, corev1.EventTypeWarning, EventInvalidated},
		{v1alpha1.PhaseInvalidated, v1alpha1.ReasonCreatorNotAdmin, corev1.EventTypeWarning, EventInvalidated},
		{v1alpha1.PhaseInvalidated, v1alpha1.ReasonTeamDeleted, corev1.EventTypeWarning, EventInvalidated},
		{v1alpha1.PhaseInvalidated, v1alpha1.ReasonNamespaceNotAllowed, corev1.EventTypeWarning, EventInvalidated},
		{v1alpha1.PhaseFailed, v1alpha1.ReasonSecretConflict, corev1.EventTypeWarning, EventSecretConflict},
		{v1alpha1.PhaseFailed, v1alpha1.ReasonPolicyViolation, corev1.EventTypeWarning, EventPolicyViolation},
		{v1alpha1.PhaseFailed, v1alpha1.ReasonCreatorUnknown, corev1.EventTypeWarning, EventCreatorUnknown},
		{v1alpha1.PhaseFailed, v1alpha1.ReasonInvalidSpec, corev1.EventTypeWarning, EventInvalidSpec},
		{v1alpha1.PhaseFailed, v1alpha1.ReasonCreatorNotOwner, corev1.EventTypeWarning, EventNotEntitled},
		{v1alpha1.PhaseFailed, v1alpha1.ReasonCreatorNotAdmin, corev1.EventTypeWarning, EventNotEntitled},
		{v1alpha1.PhaseFailed, v1alpha1.ReasonTeamDeleted, corev1.EventTypeWarning, EventNotEntitled},
		{v1alpha1.PhaseFailed, v1alpha1.ReasonNamespaceNotAllowed, corev1.EventTypeWarning, EventNotEntitled},
	}
	for _, tt := range tests {
		t.Run(string(tt.phase)+"/"+tt.reason, func(t *testing.T) {
			g := NewWithT(t)
			eventType, event := transitionEvent(tt.phase, tt.reason)
			g.Expect(eventType).To(Equal(tt.eventType))
			g.Expect(event).To(Equal(tt.event))
		})
	}
}

func TestApplySecretMetadata(t *testing.T) {
	const record = v1alpha1.SecretTemplateAnnotation
	managed := map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}
	// with is m plus the pairs key, value, ... in kv.
	with := func(m map[string]string, kv ...string) map[string]string {
		out := maps.Clone(m)
		for pair := range slices.Chunk(kv, 2) {
			out[pair[0]] = pair[len(pair)-1]
		}
		return out
	}
	tests := []struct {
		name                 string
		labels, annotations  map[string]string
		template             *v1alpha1.SecretTemplate
		wantLabels, wantAnno map[string]string
	}{{
		name:       "no template: the managed-by label and nothing else",
		wantLabels: managed,
	}, {
		name:       "a new Secret gets the template and the record of it",
		template:   &v1alpha1.SecretTemplate{Labels: map[string]string{"app": "ci"}, Annotations: map[string]string{"note": "a"}},
		wantLabels: with(managed, "app", "ci"),
		wantAnno:   map[string]string{"note": "a", record: `{"labels":["app"],"annotations":["note"]}`},
	}, {
		name:        "entries removed from the template leave; everyone else's stay",
		labels:      with(managed, "app", "ci", "tier", "db", "owner", "ops"),
		annotations: map[string]string{"note": "a", "reloader.stakater.com/auto": "true", record: `{"labels":["app","tier"],"annotations":["note"]}`},
		template:    &v1alpha1.SecretTemplate{Labels: map[string]string{"app": "cd"}},
		wantLabels:  with(managed, "app", "cd", "owner", "ops"),
		wantAnno:    map[string]string{"reloader.stakater.com/auto": "true", record: `{"labels":["app"]}`},
	}, {
		name:        "a template removed altogether takes its record with it",
		labels:      with(managed, "app", "ci", "owner", "ops"),
		annotations: map[string]string{"note": "a", record: `{"labels":["app"],"annotations":["note"]}`},
		wantLabels:  with(managed, "owner", "ops"),
		wantAnno:    map[string]string{},
	}, {
		name:        "a record nobody can read removes nothing",
		labels:      with(managed, "app", "ci", "owner", "ops"),
		annotations: map[string]string{record: `not json`},
		template:    &v1alpha1.SecretTemplate{Labels: map[string]string{"tier": "db"}},
		wantLabels:  with(managed, "app", "ci", "owner", "ops", "tier", "db"),
		wantAnno:    map[string]string{record: `{"labels":["tier"]}`},
	}, {
		name:        "a Secret from before the record keeps its entries and gains the record",
		labels:      with(managed, "app", "ci", "old", "x"),
		annotations: map[string]string{"reloader.stakater.com/match": "true"},
		template:    &v1alpha1.SecretTemplate{Labels: map[string]string{"app": "ci"}},
		wantLabels:  with(managed, "app", "ci", "old", "x"),
		wantAnno:    map[string]string{"reloader.stakater.com/match": "true", record: `{"labels":["app"]}`},
	}, {
		name:       "a removed managed-by label comes back",
		labels:     map[string]string{"owner": "ops"},
		wantLabels: with(managed, "owner", "ops"),
	}, {
		name:       "the template cannot claim the operator's own keys",
		template:   &v1alpha1.SecretTemplate{Labels: map[string]string{v1alpha1.ManagedByLabel: "me"}, Annotations: map[string]string{record: "{}"}},
		wantLabels: managed,
		wantAnno:   map[string]string{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: tt.labels, Annotations: tt.annotations}}
			tok := &v1alpha1.ApiToken{Spec: v1alpha1.ApiTokenSpec{SecretTemplate: tt.template}}
			applySecretMetadata(secret, tok)
			g.Expect(secret.Labels).To(Equal(tt.wantLabels))
			if len(tt.wantAnno) == 0 {
				g.Expect(secret.Annotations).To(BeEmpty())
			} else {
				g.Expect(secret.Annotations).To(Equal(tt.wantAnno))
			}

			// Applied again, nothing changes: no write when idle.
			again := secret.DeepCopy()
			applySecretMetadata(again, tok)
			g.Expect(again.Labels).To(Equal(secret.Labels))
			g.Expect(again.Annotations).To(Equal(secret.Annotations))
		})
	}
}

// TestWithoutValue: an API error that quotes the value it was sent (an
// admission webhook echoing the Secret it refuses) loses the value, plain
// or in base64, before it reaches a log or a condition, and stays the API
// error it was.
func TestWithoutValue(t *testing.T) {
	const value = "twt_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH012345"
	encoded := base64.StdEncoding.EncodeToString([]byte(value))
	secrets := corev1.Resource("secrets")
	tests := []struct {
		name string
		err  error
		// check looks at what withoutValue returned.
		check func(g Gomega, err error)
	}{
		{"an error without the value is returned as it is", apierrors.NewInternalError(errors.New("etcd timeout")),
			func(g Gomega, err error) { g.Expect(err.Error()).To(ContainSubstring("etcd timeout")) }},
		{"a refusal quoting the value", apierrors.NewForbidden(secrets, "ci", fmt.Errorf("data.token %q is not allowed", value)),
			func(g Gomega, err error) {
				g.Expect(apierrors.IsForbidden(err)).To(BeTrue())
				g.Expect(err.Error()).To(ContainSubstring(valueWithheld))
			}},
		{"a refusal quoting the Secret's JSON", apierrors.NewBadRequest(`{"data":{"token":"` + encoded + `"}}`),
			func(g Gomega, err error) { g.Expect(apierrors.IsBadRequest(err)).To(BeTrue()) }},
		{"a terminating namespace stays recognisable", func() error {
			err := apierrors.NewForbidden(secrets, "ci", fmt.Errorf("unable to create %s", value))
			err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause, Message: "holding " + value}}
			return err
		}(), func(g Gomega, err error) {
			g.Expect(apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)).To(BeTrue())
			var status apierrors.APIStatus
			g.Expect(errors.As(err, &status)).To(BeTrue())
			g.Expect(status.Status().Details.Causes[0].Message).NotTo(ContainSubstring(value))
		}},
		{"an error that is not the API's", fmt.Errorf("wrapped: %s", value),
			func(g Gomega, err error) { g.Expect(err.Error()).To(Equal("wrapped: " + valueWithheld)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := withoutValue(tt.err, value)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).NotTo(ContainSubstring(value))
			g.Expect(err.Error()).NotTo(ContainSubstring(encoded))
			tt.check(g, err)
		})
	}
	NewWithT(t).Expect(withoutValue(nil, value)).To(Succeed())
}
