// Package cached decides what the operator's informers keep of each object:
// only what reconciling and verifying read. A Secret Tokenwarden manages is
// kept with its value replaced by the value's digest, so no replica holds a
// token value in memory for longer than the request that wrote it, and
// cached objects drop managed fields and kubectl's last-applied
// configuration, which nothing here reads and which would double the size
// of every object applied with kubectl. The strings cached objects repeat
// (namespaces, creators, labels, condition reasons) are kept once, not
// once per object (share.go).
package cached

import (
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// lastApplied is the annotation kubectl apply (client-side) writes: a copy
// of the whole manifest.
const lastApplied = corev1.LastAppliedConfigAnnotation

// Options returns the cache options of the operator: only the Secrets
// Tokenwarden manages are cached, never every Secret in the cluster, each
// with its value replaced by its digest (DigestSecret); everything else
// drops what Trim drops. namespaces restricts the cache as
// cache.Options.DefaultNamespaces does; nil caches every namespace.
func Options(namespaces map[string]cache.Config) cache.Options {
	return cache.Options{
		DefaultNamespaces: namespaces,
		DefaultTransform:  Trim,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {
				Label:     labels.SelectorFromSet(labels.Set{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}),
				Transform: trimSecret,
			},
		},
	}
}

// Trim drops managed fields and the last-applied configuration from obj,
// and makes the strings it repeats from other cached objects share one
// copy (shareStrings). It is a cache transform: objects it does not know
// pass unchanged.
func Trim(obj any) (any, error) {
	if o, err := apimeta.Accessor(obj); err == nil {
		o.SetManagedFields(nil)
		if a := o.GetAnnotations(); a[lastApplied] != "" {
			delete(a, lastApplied)
			o.SetAnnotations(a)
		}
	}
	shareStrings(obj)
	return obj, nil
}

// trimSecret is Trim, then DigestSecret.
func trimSecret(obj any) (any, error) {
	if s, ok := obj.(*corev1.Secret); ok {
		DigestSecret(s)
	}
	return Trim(obj)
}

// DigestSecret replaces the token value secret holds by its digest
// (token.Hash) and drops every other value, which nothing here reads. It
// must be applied exactly once to each object read from the API server (the
// cache applies it to everything it stores): the digest of a digest is not
// the digest, and a value the Secret was tampered to hold that happens to
// look like a digest must be hashed like any other value.
func DigestSecret(secret *corev1.Secret) {
	value := secret.Data[v1alpha1.SecretTokenKey]
	secret.StringData = nil
	if len(value) == 0 {
		secret.Data = nil
		return
	}
	// The decoder's map is reused: a new one would cost about 400 bytes
	// more per cached Secret, 40 MB at 100,000 tokens.
	for key := range secret.Data {
		if key != v1alpha1.SecretTokenKey {
			delete(secret.Data, key)
		}
	}
	secret.Data[v1alpha1.SecretTokenKey] = []byte(token.Hash(string(value)))
}

// Digest returns what a Secret after DigestSecret holds: the digest of its
// token value, or "" when it holds none.
func Digest(secret *corev1.Secret) string {
	return string(secret.Data[v1alpha1.SecretTokenKey])
}
