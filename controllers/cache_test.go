package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// What a replica keeps in memory: never a token value, and not the copy of
// the manifest kubectl apply leaves on every object.
var _ = Describe("The operator's cache", func() {
	It("holds each delivered Secret's digest, never its value, and still repairs a tampered one", func() {
		owner := unique("owner")
		team := ownedTeam(owner)
		tok := b.ApiToken(unique("cached"), managedNamespace, b.TeamToken(team.Name), b.WithCreator(owner))
		Expect(k8sClient.Create(ctx, tok)).To(Succeed())
		tok, value := eventuallyDelivered(tok)

		key := client.ObjectKey{Namespace: tok.Namespace, Name: tok.Status.SecretRef.Name}
		Eventually(func(g Gomega) {
			inCache := &corev1.Secret{}
			g.Expect(suite.cacheReader.Get(ctx, key, inCache)).To(Succeed())
			g.Expect(inCache.Data).To(HaveKeyWithValue(v1alpha1.SecretTokenKey, []byte(tok.Status.TokenHash)))
		}).Should(Succeed())
		var all corev1.SecretList
		Expect(suite.cacheReader.List(ctx, &all)).To(Succeed())
		for _, s := range all.Items {
			for k, v := range s.Data {
				Expect(string(v)).NotTo(HavePrefix(token.DefaultBase), "Secret %s/%s key %s holds a value in the cache", s.Namespace, s.Name, k)
			}
		}

		// A value made to look like the digest the cache holds is still a
		// value: the operator replaces it.
		secret := getSecret(Default, key.Namespace, key.Name)
		secret.Data[v1alpha1.SecretTokenKey] = []byte(tok.Status.TokenHash)
		Expect(k8sClient.Update(ctx, secret)).To(Succeed())
		Eventually(func(g Gomega) {
			got := getToken(g, tok)
			g.Expect(got.Status.TokenHash).NotTo(Equal(tok.Status.TokenHash), "the tampered Secret was taken for the issued value")
			g.Expect(deliveredValue(g, got)).NotTo(Equal(value))
		}).Should(Succeed())
	})

	It("drops kubectl's last-applied configuration from cached ApiTokens", func() {
		owner := unique("owner")
		team := ownedTeam(owner)
		tok := b.ApiToken(unique("applied"), managedNamespace, b.TeamToken(team.Name), b.WithCreator(owner),
			b.WithTokenAnnotation(corev1.LastAppliedConfigAnnotation, `{"apiVersion":"auth.tokenwarden.io/v1alpha1","kind":"ApiToken"}`))
		Expect(k8sClient.Create(ctx, tok)).To(Succeed())
		tok, _ = eventuallyDelivered(tok)
		Expect(tok.Annotations).To(HaveKey(corev1.LastAppliedConfigAnnotation), "kept on the server")
		Eventually(func(g Gomega) {
			inCache := &v1alpha1.ApiToken{}
			g.Expect(suite.cacheReader.Get(ctx, client.ObjectKeyFromObject(tok), inCache)).To(Succeed())
			g.Expect(inCache.Status.Phase).To(Equal(v1alpha1.PhaseActive))
			g.Expect(inCache.Annotations).NotTo(HaveKey(corev1.LastAppliedConfigAnnotation))
		}).Should(Succeed())
	})
})
