package cached

import (
	"reflect"
	"testing"

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
