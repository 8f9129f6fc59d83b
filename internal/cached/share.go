package cached

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// maxShared bounds the shared strings. Only fields whose values a cluster
// repeats are shared (namespaces, creators, label keys, enums), so the
// bound is never reached in practice; past it, new strings are simply kept
// by each object again.
const maxShared = 1 << 16

// shared is the one copy of each string many cached objects repeat. The
// decoder gives every object copies of its own, and the cache keeps every
// token and its Secret for as long as the process runs: at 100,000 tokens
// in a few namespaces, the namespace, the creator's record, the condition
// reasons and the Secrets' labels are each held 100,000 times over.
var shared = struct {
	sync.Mutex
	strings map[string]string
}{strings: map[string]string{}}

// share returns the one shared copy of s, making s it if there is none.
func share(s string) string {
	if s == "" {
		return s
	}
	shared.Lock()
	defer shared.Unlock()
	if c, ok := shared.strings[s]; ok {
		return c
	}
	if len(shared.strings) < maxShared {
		shared.strings[s] = s
	}
	return s
}

// shareEach shares every element of list in place.
func shareEach[S ~string](list []S) {
	for i, s := range list {
		list[i] = S(share(string(s)))
	}
}

// shareMap shares m's keys, and its values where value says so, in place.
func shareMap(m map[string]string, value func(key string) bool) {
	if len(m) == 0 {
		return
	}
	// The keys first: the map changes below.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for _, k := range keys {
		v := m[k]
		if value(k) {
			v = share(v)
		}
		// Assigning to a key that is there keeps the map's own copy of
		// the key; only a new entry takes the shared one.
		delete(m, k)
		m[share(k)] = v
	}
}

func always(string) bool { return true }

// creatorOnly shares the creator's record, which every token of one
// creator repeats, and no other annotation value: those may be anything.
func creatorOnly(key string) bool { return key == v1alpha1.CreatorAnnotation }

// shareMeta shares what objects of one kind in one namespace, made by one
// controller, repeat. The decoder writes the apiVersion of each object
// anew.
func shareMeta(t *metav1.TypeMeta, m *metav1.ObjectMeta) {
	t.APIVersion, t.Kind = share(t.APIVersion), share(t.Kind)
	m.Namespace = share(m.Namespace)
	shareMap(m.Labels, always)
	shareMap(m.Annotations, creatorOnly)
	shareEach(m.Finalizers)
	for i := range m.OwnerReferences {
		ref := &m.OwnerReferences[i]
		ref.APIVersion, ref.Kind = share(ref.APIVersion), share(ref.Kind)
	}
}

// shareStrings shares the strings obj repeats from other cached objects.
func shareStrings(obj any) {
	switch o := obj.(type) {
	case *v1alpha1.ApiToken:
		shareMeta(&o.TypeMeta, &o.ObjectMeta)
		o.Spec.Type = v1alpha1.ApiTokenType(share(string(o.Spec.Type)))
		shareEach(o.Spec.Teams)
		shareEach(o.Spec.Scopes)
		o.Status.Phase = v1alpha1.ApiTokenPhase(share(string(o.Status.Phase)))
		for i := range o.Status.Conditions {
			c := &o.Status.Conditions[i]
			// Not the message: it may name anything.
			c.Type, c.Reason = share(c.Type), share(c.Reason)
			c.Status = metav1.ConditionStatus(share(string(c.Status)))
		}
		if who := o.Status.Creator; who != nil {
			who.Username, who.UID = share(who.Username), share(who.UID)
			shareEach(who.Groups)
		}
	case *corev1.Secret:
		shareMeta(&o.TypeMeta, &o.ObjectMeta)
		o.Type = corev1.SecretType(share(string(o.Type)))
	case *v1alpha1.Team:
		shareMeta(&o.TypeMeta, &o.ObjectMeta)
	}
}
