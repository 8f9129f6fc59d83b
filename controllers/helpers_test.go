package controllers_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// values holds every token value the specs saw delivered, for the leak check.
var values sync.Map

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func getToken(g Gomega, tok *v1alpha1.ApiToken) *v1alpha1.ApiToken {
	got := &v1alpha1.ApiToken{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
	return got
}

func getSecret(g Gomega, namespace, name string) *corev1.Secret {
	secret := &corev1.Secret{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, secret)).To(Succeed())
	return secret
}

// eventuallyPhase waits for tok to reach phase with an up-to-date status and
// returns it.
func eventuallyPhase(tok *v1alpha1.ApiToken, phase v1alpha1.ApiTokenPhase) *v1alpha1.ApiToken {
	var got *v1alpha1.ApiToken
	EventuallyWithOffset(1, func(g Gomega) {
		got = getToken(g, tok)
		g.Expect(got.Status.Phase).To(Equal(phase), "ready condition: %+v", got.Status.Conditions)
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
	}).Should(Succeed())
	return got
}

// deliveredValue returns the value in tok's Secret after checking that it is
// the one status.tokenHash describes.
func deliveredValue(g Gomega, tok *v1alpha1.ApiToken) string {
	secret := getSecret(g, tok.Namespace, tok.Status.SecretRef.Name)
	value := string(secret.Data[v1alpha1.SecretTokenKey])
	g.Expect(value).NotTo(BeEmpty(), "the Secret holds no value")
	values.Store(value, true)
	g.Expect(token.Hash(value)).To(Equal(tok.Status.TokenHash), "the Secret's value is not the issued one")
	return value
}

// eventuallyDelivered waits for tok to be Active with its value in its
// Secret, and returns both.
func eventuallyDelivered(tok *v1alpha1.ApiToken) (*v1alpha1.ApiToken, string) {
	var (
		got   *v1alpha1.ApiToken
		value string
	)
	EventuallyWithOffset(1, func(g Gomega) {
		got = getToken(g, tok)
		g.Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseActive), "ready condition: %+v", got.Status.Conditions)
		value = deliveredValue(g, got)
	}).Should(Succeed())
	return got, value
}

// touch changes a label, which makes the running controller reconcile tok
// now, instead of waiting for a timer.
func touch(tok *v1alpha1.ApiToken) {
	EventuallyWithOffset(1, func(g Gomega) {
		got := getToken(g, tok)
		base := got.DeepCopy()
		if got.Labels == nil {
			got.Labels = map[string]string{}
		}
		got.Labels["touched"] = fmt.Sprint(time.Now().UnixNano())
		g.Expect(k8sClient.Patch(ctx, got, client.MergeFrom(base))).To(Succeed())
	}).Should(Succeed())
}

// update changes tok's spec with retries on conflict.
func update(tok *v1alpha1.ApiToken, change func(*v1alpha1.ApiToken)) {
	EventuallyWithOffset(1, func(g Gomega) {
		got := getToken(g, tok)
		change(got)
		g.Expect(k8sClient.Update(ctx, got)).To(Succeed())
	}).Should(Succeed())
}

// eventReasons lists the reasons of the Events about tok, oldest first.
func eventReasons(g Gomega, tok *v1alpha1.ApiToken) []string {
	list := &eventsv1.EventList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(tok.Namespace))).To(Succeed())
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Name == tok.Name && e.Regarding.Kind == "ApiToken" {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

// recordedReasons lists the reasons of the Events the reconciler emitted
// about tok, oldest first. Unlike eventReasons it counts every one.
func recordedReasons(tok *v1alpha1.ApiToken) []string {
	return suite.events.reasons(client.ObjectKeyFromObject(tok))
}

// expiryGauge reads tokenwarden_token_expiry_timestamp_seconds for tok, as a
// scrape would, and whether the series exists.
func expiryGauge(g Gomega, tok *v1alpha1.ApiToken) (float64, bool) {
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, family := range families {
		if family.GetName() != "tokenwarden_token_expiry_timestamp_seconds" {
			continue
		}
		for _, m := range family.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == tok.Namespace && labels["name"] == tok.Name {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// withSecretTemplate sets spec.secretTemplate.
func withSecretTemplate(labels, annotations map[string]string) b.ApiTokenOption {
	return func(t *v1alpha1.ApiToken) {
		t.Spec.SecretTemplate = &v1alpha1.SecretTemplate{Labels: labels, Annotations: annotations}
	}
}

// expectNoValueLeaked searches every ApiToken, Event and log line for every
// value delivered during the suite: a value may live in its Secret only.
func expectNoValueLeaked() {
	tokens := &v1alpha1.ApiTokenList{}
	Expect(k8sClient.List(ctx, tokens)).To(Succeed())
	events := &eventsv1.EventList{}
	Expect(k8sClient.List(ctx, events)).To(Succeed())
	legacyEvents := &corev1.EventList{}
	Expect(k8sClient.List(ctx, legacyEvents)).To(Succeed())
	var haystack strings.Builder
	for _, obj := range []any{tokens, events, legacyEvents} {
		data, err := json.Marshal(obj)
		Expect(err).NotTo(HaveOccurred())
		haystack.Write(data)
	}
	haystack.WriteString(logs.String())
	all := haystack.String()

	count := 0
	values.Range(func(key, _ any) bool {
		count++
		value := key.(string)
		Expect(all).NotTo(ContainSubstring(value), "a token value leaked into status, annotations, events or logs")
		// A Secret's JSON carries the value in base64, which is no disguise.
		Expect(all).NotTo(ContainSubstring(base64.StdEncoding.EncodeToString([]byte(value))), "a base64-encoded token value leaked")
		return true
	})
	Expect(count).To(BeNumerically(">", 10), "the leak check must have values to look for")
	Expect(len(events.Items)).To(BeNumerically(">", 5), "the leak check must have Events to look in")
}
