package cached

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

func TestDigestSecret(t *testing.T) {
	const value = "twt_0123456789012345678901234567890123456789012345678"
	tests := []struct {
		name string
		data map[string][]byte
		want string
	}{
		{"a value becomes its digest", map[string][]byte{v1alpha1.SecretTokenKey: []byte(value)}, token.Hash(value)},
		{"other keys are dropped with it", map[string][]byte{v1alpha1.SecretTokenKey: []byte(value), "ca.crt": []byte("x")}, token.Hash(value)},
		{"a value shaped like a digest is hashed like any other", map[string][]byte{v1alpha1.SecretTokenKey: []byte(token.Hash(value))}, token.Hash(token.Hash(value))},
		{"an empty value is none", map[string][]byte{v1alpha1.SecretTokenKey: {}}, ""},
		{"no value is none", map[string][]byte{"other": []byte(value)}, ""},
		{"no data is none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &corev1.Secret{Data: tt.data, StringData: map[string]string{"x": value}}
			DigestSecret(s)
			if got := Digest(s); got != tt.want {
				t.Errorf("Digest = %q, want %q", got, tt.want)
			}
			if len(s.Data) > 1 || s.StringData != nil {
				t.Errorf("kept more than the digest: %v %v", s.Data, s.StringData)
			}
		})
	}
}

// TestDigestSecretReusesItsMap: the cache keeps a Secret per token, and a
// map of its own for the digest costs about 400 bytes more per Secret than
// the one the decoder made, 40 MB at 100,000 tokens.
func TestDigestSecretReusesItsMap(t *testing.T) {
	const value = "twt_0123456789012345678901234567890123456789012345678"
	data := map[string][]byte{v1alpha1.SecretTokenKey: []byte(value), "ca.crt": []byte("x")}
	s := &corev1.Secret{Data: data}
	DigestSecret(s)
	if reflect.ValueOf(s.Data).UnsafePointer() != reflect.ValueOf(data).UnsafePointer() {
		t.Error("DigestSecret replaced the Data map instead of reusing it")
	}
	if len(data) != 1 || string(data[v1alpha1.SecretTokenKey]) != token.Hash(value) {
		t.Errorf("the map holds %q, want only the digest", data)
	}
}

func TestTransforms(t *testing.T) {
	const value = "twt_0123456789012345678901234567890123456789012345678"
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name:          "x",
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			Annotations:   map[string]string{corev1.LastAppliedConfigAnnotation: `{"kind":"ApiToken"}`, "keep": "me"},
		}
	}
	opts := Options(nil)
	var secretTransform func(any) (any, error)
	for obj, by := range opts.ByObject {
		if _, ok := obj.(*corev1.Secret); ok {
			secretTransform = by.Transform
		}
	}
	if secretTransform == nil || opts.DefaultTransform == nil {
		t.Fatal("Options sets no transform for Secrets, or no default one")
	}

	got, err := secretTransform(&corev1.Secret{ObjectMeta: meta(), Data: map[string][]byte{v1alpha1.SecretTokenKey: []byte(value)}})
	if err != nil {
		t.Fatal(err)
	}
	secret := got.(*corev1.Secret)
	if Digest(secret) != token.Hash(value) {
		t.Errorf("cached Secret holds %q, want the digest", secret.Data)
	}
	checkTrimmed(t, secret.ObjectMeta)

	got, err = opts.DefaultTransform(&v1alpha1.ApiToken{ObjectMeta: meta()})
	if err != nil {
		t.Fatal(err)
	}
	checkTrimmed(t, got.(*v1alpha1.ApiToken).ObjectMeta)

	// Tombstones and other types pass through.
	if _, err := opts.DefaultTransform("not an object"); err != nil {
		t.Errorf("a non-object: %v", err)
	}
}

func checkTrimmed(t *testing.T, m metav1.ObjectMeta) {
	t.Helper()
	if m.ManagedFields != nil {
		t.Errorf("managed fields kept")
	}
	if _, ok := m.Annotations[corev1.LastAppliedConfigAnnotation]; ok {
		t.Errorf("last-applied configuration kept")
	}
	if m.Annotations["keep"] != "me" {
		t.Errorf("other annotations lost: %v", m.Annotations)
	}
}

// TestTransformsShareRepeatedStrings: every token in a namespace repeats
// its namespace, its creator's record, its type, phase and condition
// reasons, and its Secret the same labels and owner kind. Decoded, each
// object holds copies of its own; cached, they hold one, which the cache
// keeps for every one of 100,000 tokens.
func TestTransformsShareRepeatedStrings(t *testing.T) {
	const tokenJSON = `{"apiVersion":"auth.tokenwarden.io/v1alpha1","kind":"ApiToken","metadata":{"name":"tok-%d","namespace":"payments",
		"annotations":{"auth.tokenwarden.io/creator":"{\"username\":\"jane\",\"groups\":[\"system:authenticated\"]}"}},
		"spec":{"type":"Team","teams":["payments"]},
		"status":{"phase":"Active","conditions":[{"type":"Ready","status":"True","reason":"Issued","message":"m","lastTransitionTime":"2026-12-04T10:00:00Z"}],
		"creator":{"username":"jane","groups":["system:authenticated"]}}}`
	const secretJSON = `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"tok-%d","namespace":"payments",
		"labels":{"app.kubernetes.io/managed-by":"tokenwarden"},
		"ownerReferences":[{"apiVersion":"auth.tokenwarden.io/v1alpha1","kind":"ApiToken","name":"tok-%d","uid":"u%d"}]},
		"type":"Opaque","data":{"token":"dHdfeA=="}}`
	opts := Options(nil)
	var secretTransform func(any) (any, error)
	for obj, by := range opts.ByObject {
		if _, ok := obj.(*corev1.Secret); ok {
			secretTransform = by.Transform
		}
	}
	var tokens [2]*v1alpha1.ApiToken
	var secrets [2]*corev1.Secret
	for i := range 2 {
		tok := &v1alpha1.ApiToken{}
		if err := json.Unmarshal(fmt.Appendf(nil, tokenJSON, i), tok); err != nil {
			t.Fatal(err)
		}
		got, err := opts.DefaultTransform(tok)
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = got.(*v1alpha1.ApiToken)
		secret := &corev1.Secret{}
		if err := json.Unmarshal(fmt.Appendf(nil, secretJSON, i, i, i), secret); err != nil {
			t.Fatal(err)
		}
		if got, err = secretTransform(secret); err != nil {
			t.Fatal(err)
		}
		secrets[i] = got.(*corev1.Secret)
	}
	a, b := tokens[0], tokens[1]
	shared := func(what, x, y string) {
		t.Helper()
		//nolint:gosec // only compares where two strings keep their bytes.
		if unsafe.StringData(x) != unsafe.StringData(y) {
			t.Errorf("%s %q is held twice", what, x)
		}
	}
	shared("the apiVersion", a.APIVersion, b.APIVersion)
	shared("the kind", a.Kind, b.Kind)
	shared("the namespace", a.Namespace, b.Namespace)
	shared("the creator record", a.Annotations[v1alpha1.CreatorAnnotation], b.Annotations[v1alpha1.CreatorAnnotation])
	for k := range a.Annotations {
		for l := range b.Annotations {
			shared("the annotation key", k, l)
		}
	}
	shared("the type", string(a.Spec.Type), string(b.Spec.Type))
	shared("the team", a.Spec.Teams[0], b.Spec.Teams[0])
	shared("the phase", string(a.Status.Phase), string(b.Status.Phase))
	shared("the condition type", a.Status.Conditions[0].Type, b.Status.Conditions[0].Type)
	shared("the condition status", string(a.Status.Conditions[0].Status), string(b.Status.Conditions[0].Status))
	shared("the condition reason", a.Status.Conditions[0].Reason, b.Status.Conditions[0].Reason)
	shared("the creator's name", a.Status.Creator.Username, b.Status.Creator.Username)
	shared("the creator's group", a.Status.Creator.Groups[0], b.Status.Creator.Groups[0])
	s, r := secrets[0], secrets[1]
	shared("the Secret's apiVersion", s.APIVersion, r.APIVersion)
	shared("the Secret's namespace", s.Namespace, r.Namespace)
	shared("the Secret's type", string(s.Type), string(r.Type))
	for k, v := range s.Labels {
		for l, w := range r.Labels {
			shared("the label key", k, l)
			shared("the label value", v, w)
		}
	}
	shared("the owner's apiVersion", s.OwnerReferences[0].APIVersion, r.OwnerReferences[0].APIVersion)
	shared("the owner's kind", s.OwnerReferences[0].Kind, r.OwnerReferences[0].Kind)
}
