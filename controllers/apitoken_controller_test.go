package controllers_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/controllers"
	"github.com/tokenwarden/tokenwarden/internal/metrics"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

var specSeq atomic.Int64

// unique names objects per spec, so specs share one API server safely.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, specSeq.Add(1))
}

// ownedTeam creates a Team owned by the given user names, allowing tokens
// in both namespaces the specs use.
func ownedTeam(owners ...string) *v1alpha1.Team {
	subjects := make([]v1alpha1.Subject, len(owners))
	for i, o := range owners {
		subjects[i] = b.User(o)
	}
	team := b.Team(unique("team"), b.WithOwners(subjects...), b.WithNamespaces(managedNamespace, manualNamespace))
	ExpectWithOffset(1, k8sClient.Create(ctx, team)).To(Succeed())
	return team
}

// makeAdmin binds user to a ClusterRole with the verb admin on apitokens,
// and returns the binding.
func makeAdmin(user string) *rbacv1.ClusterRoleBinding {
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: unique("tokenwarden-admin")},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"apitokens"}, Verbs: []string{v1alpha1.AdminVerb}}},
	}
	ExpectWithOffset(1, k8sClient.Create(ctx, role)).To(Succeed())
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	ExpectWithOffset(1, k8sClient.Create(ctx, binding)).To(Succeed())
	return binding
}

func create(tok *v1alpha1.ApiToken) *v1alpha1.ApiToken {
	ExpectWithOffset(1, k8sClient.Create(ctx, tok)).To(Succeed())
	return tok
}

var _ = Describe("ApiToken controller", func() {
	Describe("issuing", func() {
		It("delivers a value into an owned Secret and keeps only its digest", func() {
			team := ownedTeam("jane")
			tok := create(b.ApiToken(unique("ci"), managedNamespace, b.TeamToken(team.Name), b.WithCreator("jane", "devs"),
				b.WithLifetime("30d"), b.WithScopes("orders:read"),
				b.WithSecretLabels(map[string]string{"app": "ci"})))

			got, value := eventuallyDelivered(tok)
			Expect(got.Status.TokenHash).To(MatchRegexp(`^sha256:[0-9a-f]{64}$`))
			Expect(got.Status.TokenPrefix).NotTo(BeEmpty())
			Expect(value).To(HavePrefix(got.Status.TokenPrefix))
			Expect(len(got.Status.TokenPrefix)).To(BeNumerically("<", len(value)/4), "the prefix must not give the value away")
			Expect(got.Status.IssuedAt.Time).To(BeTemporally("==", suite.clock.Now().Truncate(time.Second)))
			Expect(got.Status.ExpiresAt.Time).To(BeTemporally("==", got.Status.IssuedAt.Add(30*24*time.Hour)))
			Expect(got.Status.Creator.Username).To(Equal("jane"))
			Expect(got.Status.SecretRef.Name).To(Equal(tok.Name))
			ready := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
			Expect(ready.Status).To(Equal(metav1.ConditionTrue))
			Expect(ready.Reason).To(Equal(v1alpha1.ReasonIssued))

			secret := getSecret(Default, managedNamespace, tok.Name)
			Expect(secret.Type).To(Equal(corev1.SecretType(v1alpha1.SecretType)))
			Expect(secret.Labels).To(HaveKeyWithValue(v1alpha1.ManagedByLabel, v1alpha1.ManagedByValue))
			Expect(secret.Labels).To(HaveKeyWithValue("app", "ci"))
			Expect(metav1.IsControlledBy(secret, got)).To(BeTrue(), "the Secret must be deleted with its ApiToken")
			Expect(token.Format{Base: token.DefaultBase}.Parse(value)).To(Equal(v1alpha1.TeamTokenType))
			Eventually(func(g Gomega) { g.Expect(eventReasons(g, tok)).To(ContainElement(controllers.EventIssued)) }).Should(Succeed())
			Expect(recordedReasons(tok)).To(Equal([]string{controllers.EventIssued}), "one Event for the transition into Active")
		})

		It("writes exactly twice per issued token, and never when idle", func() {
			team := ownedTeam("jane")
			tok := create(b.ApiToken(unique("count"), managedNamespace, b.TeamToken(team.Name), b.WithCreator("jane")))
			eventuallyDelivered(tok)
			Consistently(suite.writes.of, 3*time.Second, 100*time.Millisecond).WithArguments(tok).Should(Equal(2),
				"happy path: one status patch and one Secret create; then an idle cluster sees no writes")
		})

		It("uses secretName and never takes over a Secret it does not own", func() {
			foreign := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: unique("foreign"), Namespace: managedNamespace},
				StringData: map[string]string{"token": "theirs"},
			}
			Expect(k8sClient.Create(ctx, foreign)).To(Succeed())
			makeAdmin("admin-1")
			tok := create(b.ApiToken(unique("conflict"), managedNamespace, b.WithCreator("admin-1"),
				b.WithType(v1alpha1.AdminTokenType), b.WithSecretName(foreign.Name)))

			Eventually(func(g Gomega) {
				got := getToken(g, tok)
				g.Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseFailed))
				g.Expect(apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition).Reason).To(Equal(v1alpha1.ReasonSecretConflict))
				g.Expect(got.Status.TokenHash).To(BeEmpty())
			}).Should(Succeed())
			Expect(getSecret(Default, managedNamespace, foreign.Name).Data).To(HaveKeyWithValue("token", []byte("theirs")))
			Eventually(func(g Gomega) { g.Expect(eventReasons(g, tok)).To(ContainElement(controllers.EventSecretConflict)) }).Should(Succeed())
			// The conflict is looked at again every minute: that finds nothing new.
			touch(tok)
			Consistently(func() []string { return recordedReasons(tok) }, time.Second).Should(Equal([]string{controllers.EventSecretConflict}))
		})

		It("does not issue a token whose creator is unknown", func() {
			team := ownedTeam("jane")
			tok := create(b.ApiToken(unique("anon"), managedNamespace, b.TeamToken(team.Name)))
			got := eventuallyPhase(tok, v1alpha1.PhaseFailed)
			Expect(apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition).Reason).To(Equal(v1alpha1.ReasonCreatorUnknown))
			Consistently(func() error {
				return k8sClient.Get(ctx, client.ObjectKey{Namespace: managedNamespace, Name: tok.Name}, &corev1.Secret{})
			}, time.Second).ShouldNot(Succeed())
			Eventually(func(g Gomega) { g.Expect(eventReasons(g, tok)).To(ContainElement(controllers.EventCreatorUnknown)) }).Should(Succeed())
			Expect(recordedReasons(tok)).To(Equal([]string{controllers.EventCreatorUnknown}))
		})

		It("issues a token applied before its Team once the Team exists (GitOps order)", func() {
			name := unique("late-team")
			tok := create(b.ApiToken(unique("early"), managedNamespace, b.TeamToken(name), b.WithCreator("jane")))
			got := eventuallyPhase(tok, v1alpha1.PhaseFailed)
			Expect(apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition).Reason).To(Equal(v1alpha1.ReasonTeamDeleted))

			Expect(k8sClient.Create(ctx, b.Team(name, b.WithOwners(b.User("jane")), b.WithNamespaces(managedNamespace)))).To(Succeed())
			eventuallyDelivered(tok)
			Eventually(recordedReasons).WithArguments(tok).Should(Equal([]string{controllers.EventNotEntitled, controllers.EventIssued}))
		})

		It("enforces team policy at reconcile time", func() {
			team := b.Team(unique("strict"), b.WithOwners(b.User("jane")), b.WithNamespaces(managedNamespace), b.WithPolicy("30d", true, "orders:*"))
			Expect(k8sClient.Create(ctx, team)).To(Succeed())
			tok := create(b.ApiToken(unique("policy"), managedNamespace, b.TeamToken(team.Name), b.WithCreator("jane"),
				b.WithLifetime("60d"), b.WithScopes("refunds:write")))
			got := eventuallyPhase(tok, v1alpha1.PhaseFailed)
			ready := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
			Expect(ready.Reason).To(Equal(v1alpha1.ReasonPolicyViolation))
			Expect(ready.Message).To(ContainSubstring("spec.lifetime"))
			Expect(ready.Message).To(ContainSubstring("spec.scopes[0]"))
			Eventually(func(g Gomega) { g.Expect(eventReasons(g, tok)).To(ContainElement(controllers.EventPolicyViolation)) }).Should(Succeed())
			Expect(recordedReasons(tok)).To(Equal([]string{controllers.EventPolicyViolation}))
		})
	})

	Describe("disabling", func() {
		It("keeps the value while disabled and restores the same value", func() {
			tok := create(b.ApiToken(unique("pause"), managedNamespace, b.WithCreator("jane")))
			ownedTeam("jane") // a Wildcard token needs its creator to own some team
			_, value := eventuallyDelivered(tok)

			update(tok, func(t *v1alpha1.ApiToken) { t.Spec.Disabled = true })
			got := eventuallyPhase(tok, v1alpha1.PhaseDisabled)
			Expect(apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition).Status).To(Equal(metav1.ConditionFalse))
			Expect(deliveredValue(Default, got)).To(Equal(value))

			update(tok, func(t *v1alpha1.ApiToken) { t.Spec.Disabled = false })
			_, again := eventuallyDelivered(tok)
			Expect(again).To(Equal(value))
		})

		It("records one Event per transition, and none when nothing changes", func() {
			user := unique("events")
			ownedTeam(user)
			tok := create(b.ApiToken(unique("events"), managedNamespace, b.WithCreator(user)))
			eventuallyDelivered(tok)

			update(tok, func(t *v1alpha1.ApiToken) { t.Spec.Disabled = true })
			eventuallyPhase(tok, v1alpha1.PhaseDisabled)
			update(tok, func(t *v1alpha1.ApiToken) { t.Spec.Disabled = false })
			eventuallyPhase(tok, v1alpha1.PhaseActive)
			update(tok, func(t *v1alpha1.ApiToken) { t.Spec.Disabled = true })
			eventuallyPhase(tok, v1alpha1.PhaseDisabled)
			want := []string{controllers.EventIssued, controllers.EventDisabled, controllers.EventEnabled, controllers.EventDisabled}
			Eventually(recordedReasons).WithArguments(tok).Should(Equal(want))

			By("reconciling again with nothing to change")
			touch(tok)
			touch(tok)
			Consistently(recordedReasons, 2*time.Second, 100*time.Millisecond).WithArguments(tok).Should(Equal(want))
			Eventually(func(g Gomega) {
				g.Expect(eventReasons(g, tok)).To(ContainElements(controllers.EventDisabled, controllers.EventEnabled))
			}).Should(Succeed(), "the Events reach the API server")
		})
	})

	Describe("repairing", func() {
		var (
			tok   *v1alpha1.ApiToken
			value string
		)
		BeforeEach(func() {
			team := ownedTeam("jane")
			tok = create(b.ApiToken(unique("repair"), managedNamespace, b.TeamToken(team.Name), b.WithCreator("jane")))
			_, value = eventuallyDelivered(tok)
		})

		It("issues a fresh value when the Secret is deleted", func() {
			Expect(k8sClient.Delete(ctx, getSecret(Default, managedNamespace, tok.Name))).To(Succeed())
			Eventually(func(g Gomega) {
				got := getToken(g, tok)
				g.Expect(deliveredValue(g, got)).NotTo(Equal(value))
			}).Should(Succeed())
			Eventually(func(g Gomega) { g.Expect(eventReasons(g, tok)).To(ContainElement(controllers.EventSecretRepaired)) }).Should(Succeed())
		})

		It("never adopts a value written into the Secret by someone else", func() {
			planted, err := token.Format{Base: token.DefaultBase}.Generate(v1alpha1.TeamTokenType)
			Expect(err).NotTo(HaveOccurred())
			values.Store(planted, true)
			secret := getSecret(Default, managedNamespace, tok.Name)
			secret.Data[v1alpha1.SecretTokenKey] = []byte(planted)
			Expect(k8sClient.Update(ctx, secret)).To(Succeed())

			Eventually(func(g Gomega) {
				got := getToken(g, tok)
				fresh := deliveredValue(g, got)
				g.Expect(fresh).NotTo(Equal(planted))
				g.Expect(fresh).NotTo(Equal(value))
			}).Should(Succeed())
			Expect(getToken(Default, tok).Status.TokenHash).NotTo(Equal(token.Hash(planted)))
		})
	})

	// These specs move time, so each drives a reconciler of its own
	// (harness) with its own clock, in manualNamespace.
	Describe("expiry and rotation", func() {
		It("withdraws the value at the expiry instant", func() {
			h := newHarness()
			user := unique("short")
			ownedTeam(user)
			tok := create(b.ApiToken(unique("short"), manualNamespace, b.WithCreator(user), b.WithLifetime("1h")))
			got := h.converge(tok)
			deliveredValue(Default, got)
			expiresAt := got.Status.ExpiresAt.Time

			got = h.expiresExactlyAt(tok, expiresAt)
			Expect(apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition).Reason).To(Equal(v1alpha1.ReasonExpired))
			// The status says Expired first (the verifier refuses from then
			// on); the value leaves the Secret right after.
			Expect(getSecret(Default, manualNamespace, tok.Name).Data).NotTo(HaveKey(v1alpha1.SecretTokenKey))
			Eventually(func(g Gomega) { g.Expect(eventReasons(g, tok)).To(ContainElement(controllers.EventExpired)) }).Should(Succeed())
			Expect(h.recordedReasons(tok)).To(Equal([]string{controllers.EventIssued, controllers.EventExpired}))
		})

		It("recreates on a spec.recreate bump, keeping the old value through the overlap", func() {
			h := newHarness()
			user := unique("rotate")
			ownedTeam(user)
			tok := create(b.ApiToken(unique("rotate"), manualNamespace, b.WithCreator(user), b.WithRotation("10m", "")))
			old := h.converge(tok)
			oldValue := deliveredValue(Default, old)

			update(tok, func(t *v1alpha1.ApiToken) { t.Spec.Recreate = 1 })
			got := h.converge(tok)
			Expect(got.Status.Recreate).To(Equal(int64(1)))
			Expect(deliveredValue(Default, got)).NotTo(Equal(oldValue))
			Expect(got.Status.Previous).NotTo(BeNil())
			Expect(got.Status.Previous.TokenHash).To(Equal(old.Status.TokenHash))
			Expect(got.Status.Previous.ExpiresAt.Time).To(BeTemporally("==", h.clock.Now().Add(10*time.Minute).Truncate(time.Second)))
			Eventually(func(g Gomega) { g.Expect(eventReasons(g, tok)).To(ContainElement(controllers.EventRecreated)) }).Should(Succeed())
			// The counters move after the Secret is written, before the
			// reconcile returns.
			Expect(testutil.ToFloat64(metrics.Recreations)).To(BeNumerically(">=", 1))
			Expect(testutil.ToFloat64(metrics.Issuances.WithLabelValues("Recreate"))).To(BeNumerically(">=", 1))
			res, err := h.reconcile(tok)
			Expect(err).NotTo(HaveOccurred())
			Expect(res.RequeueAfter).To(Equal(10*time.Minute), "the wake-up is at the end of the overlap")

			h.clock.Step(10 * time.Minute)
			Expect(h.converge(tok).Status.Previous).To(BeNil())
		})

		It("renews automatically renewBefore the expiry", func() {
			h := newHarness()
			user := unique("renew")
			ownedTeam(user)
			tok := create(b.ApiToken(unique("renew"), manualNamespace, b.WithCreator(user), b.WithLifetime("2h"), b.WithRotation("", "1h")))
			first := h.converge(tok)
			value := deliveredValue(Default, first)

			h.clock.SetTime(first.Status.IssuedAt.Add(time.Hour))
			got := h.converge(tok)
			Expect(deliveredValue(Default, got)).NotTo(Equal(value))
			Expect(got.Status.ExpiresAt.Time).To(BeTemporally("==", got.Status.IssuedAt.Add(2*time.Hour)), "lifetime counts from each issuance")
			Eventually(func(g Gomega) { g.Expect(eventReasons(g, tok)).To(ContainElement(controllers.EventRotated)) }).Should(Succeed())
		})
	})

	Describe("editing the expiry", func() {
		It("follows a moved, removed or re-counted expiry at once, keeping the value", func() {
			user := unique("editor")
			ownedTeam(user)
			tok := create(b.ApiToken(unique("edit"), managedNamespace, b.WithCreator(user), b.WithExpiresAt(suite.clock.Now().Add(time.Hour))))
			first, value := eventuallyDelivered(tok)
			issuedAt := first.Status.IssuedAt.Time

			// expectExpiry waits for status.expiresAt, and the gauge read from
			// it, to say want (nil: never), with the value and phase unchanged.
			expectExpiry := func(want *time.Time) {
				GinkgoHelper()
				Eventually(func(g Gomega) {
					got := getToken(g, tok)
					g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
					g.Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseActive))
					g.Expect(got.Status.TokenHash).To(Equal(first.Status.TokenHash), "an edit of the expiry issues no new value")
					g.Expect(deliveredValue(g, got)).To(Equal(value))
					gauge, ok := expiryGauge(g, tok)
					if want == nil {
						g.Expect(got.Status.ExpiresAt).To(BeNil())
						g.Expect(ok).To(BeFalse(), "a token that never expires has no expiry series")
						return
					}
					g.Expect(got.Status.ExpiresAt).NotTo(BeNil())
					g.Expect(got.Status.ExpiresAt.Time).To(BeTemporally("==", *want))
					g.Expect(ok).To(BeTrue())
					g.Expect(gauge).To(Equal(float64(want.Unix())))
				}).Should(Succeed())
			}
			setExpiry := func(at *time.Time, lifetime string) {
				GinkgoHelper()
				update(tok, func(t *v1alpha1.ApiToken) {
					t.Spec.ExpiresAt, t.Spec.Lifetime = nil, nil
					if at != nil {
						b.WithExpiresAt(*at)(t)
					}
					if lifetime != "" {
						b.WithLifetime(lifetime)(t)
					}
				})
			}

			By("extending expiresAt")
			later := suite.clock.Now().Add(3 * time.Hour).Truncate(time.Second)
			setExpiry(&later, "")
			expectExpiry(&later)

			By("shortening it")
			sooner := suite.clock.Now().Add(30 * time.Minute).Truncate(time.Second)
			setExpiry(&sooner, "")
			expectExpiry(&sooner)

			By("removing it")
			setExpiry(nil, "")
			expectExpiry(nil)

			By("setting a lifetime, which counts from the issuance of the value")
			setExpiry(nil, "2h")
			twoHours := issuedAt.Add(2 * time.Hour)
			expectExpiry(&twoHours)

			By("changing the lifetime")
			setExpiry(nil, "1h30m")
			ninety := issuedAt.Add(90 * time.Minute)
			expectExpiry(&ninety)

			By("moving expiresAt to an instant already past, which expires the value")
			past := suite.clock.Now().Add(-time.Minute).Truncate(time.Second)
			setExpiry(&past, "")
			got := eventuallyPhase(tok, v1alpha1.PhaseExpired)
			Expect(got.Status.ExpiresAt.Time).To(BeTemporally("==", past))
			Eventually(func(g Gomega) {
				g.Expect(getSecret(g, managedNamespace, tok.Name).Data).NotTo(HaveKey(v1alpha1.SecretTokenKey))
			}).Should(Succeed())
			Eventually(func(g Gomega) {
				_, ok := expiryGauge(g, tok)
				g.Expect(ok).To(BeFalse(), "an expired token has no expiry series")
			}).Should(Succeed())
			Eventually(recordedReasons).WithArguments(tok).Should(Equal([]string{controllers.EventIssued, controllers.EventExpired}), "edits are no transitions")
		})

		It("expires at the instant an edited lifetime gives", func() {
			h := newHarness()
			user := unique("reedit")
			ownedTeam(user)
			tok := create(b.ApiToken(unique("reedit"), manualNamespace, b.WithCreator(user), b.WithLifetime("2h")))
			first := h.converge(tok)
			deliveredValue(Default, first)
			ninety := first.Status.IssuedAt.Add(90 * time.Minute)

			update(tok, func(t *v1alpha1.ApiToken) { b.WithLifetime("1h30m")(t) })
			got := h.converge(tok)
			Expect(got.Status.ExpiresAt.Time).To(BeTemporally("==", ninety))
			Expect(got.Status.TokenHash).To(Equal(first.Status.TokenHash), "an edit of the expiry issues no new value")

			h.expiresExactlyAt(tok, ninety)
			Expect(getSecret(Default, manualNamespace, tok.Name).Data).NotTo(HaveKey(v1alpha1.SecretTokenKey))
			Expect(h.recordedReasons(tok)).To(Equal([]string{controllers.EventIssued, controllers.EventExpired}), "edits are no transitions")
		})

		It("keeps an Expired token Expired when its expiry moves into the future, until a recreate", func() {
			h := newHarness()
			user := unique("lapsed")
			ownedTeam(user)
			tok := create(b.ApiToken(unique("lapsed"), manualNamespace, b.WithCreator(user), b.WithLifetime("1h")))
			first := h.converge(tok)
			deliveredValue(Default, first)
			expiredAt := first.Status.ExpiresAt.Time
			h.clock.SetTime(expiredAt)
			Expect(h.converge(tok).Status.Phase).To(Equal(v1alpha1.PhaseExpired))
			Expect(getSecret(Default, manualNamespace, tok.Name).Data).NotTo(HaveKey(v1alpha1.SecretTokenKey))

			update(tok, func(t *v1alpha1.ApiToken) { b.WithLifetime("3h")(t) })
			h.converge(tok)
			_, err := h.reconcile(tok) // and once more, however often it is reconciled
			Expect(err).NotTo(HaveOccurred())
			got := getToken(Default, tok)
			Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseExpired))
			Expect(got.Status.TokenHash).To(Equal(first.Status.TokenHash), "no value is issued unasked")
			Expect(got.Status.ExpiresAt.Time).To(BeTemporally("==", expiredAt), "the instant the value expired stays recorded")
			Expect(getSecret(Default, manualNamespace, tok.Name).Data).NotTo(HaveKey(v1alpha1.SecretTokenKey))

			By("recreating")
			update(tok, func(t *v1alpha1.ApiToken) { t.Spec.Recreate = 1 })
			got = h.converge(tok)
			deliveredValue(Default, got)
			Expect(got.Status.TokenHash).NotTo(Equal(first.Status.TokenHash))
			Expect(got.Status.ExpiresAt.Time).To(BeTemporally("==", got.Status.IssuedAt.Add(3*time.Hour)))
			Expect(h.recordedReasons(tok)).To(Equal(
				[]string{controllers.EventIssued, controllers.EventExpired, controllers.EventRecreated}))
		})

		It("says why a recreate whose fixed expiresAt has passed issues nothing, and issues once it moves", func() {
			h := newHarness()
			user := unique("fixed")
			ownedTeam(user)
			tok := create(b.ApiToken(unique("fixed"), manualNamespace, b.WithCreator(user), b.WithExpiresAt(h.clock.Now().Add(time.Hour))))
			first := h.converge(tok)
			deliveredValue(Default, first)
			h.clock.SetTime(first.Status.ExpiresAt.Time)
			Expect(h.converge(tok).Status.Phase).To(Equal(v1alpha1.PhaseExpired))

			update(tok, func(t *v1alpha1.ApiToken) { t.Spec.Recreate = 1 })
			got := h.converge(tok)
			Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseExpired))
			ready := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
			Expect(ready.Reason).To(Equal(v1alpha1.ReasonExpiresAtPassed))
			Expect(ready.Message).To(ContainSubstring("set a new expiresAt or lifetime to recreate"))
			Expect(got.Status.Recreate).To(BeZero(), "no value was issued for the recreate")
			Expect(got.Status.TokenHash).To(Equal(first.Status.TokenHash))
			Eventually(func(g Gomega) { g.Expect(eventReasons(g, tok)).To(ContainElement(controllers.EventExpiresAtPassed)) }).Should(Succeed())
			Expect(h.recordedReasons(tok)).To(Equal([]string{controllers.EventIssued, controllers.EventExpired, controllers.EventExpiresAtPassed}))

			By("setting a new expiresAt, which carries out the recreate")
			later := h.clock.Now().Add(time.Hour).Truncate(time.Second)
			update(tok, func(t *v1alpha1.ApiToken) { b.WithExpiresAt(later)(t) })
			got = h.converge(tok)
			Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseActive))
			deliveredValue(Default, got)
			Expect(got.Status.TokenHash).NotTo(Equal(first.Status.TokenHash))
			Expect(got.Status.Recreate).To(Equal(int64(1)))
			Expect(got.Status.ExpiresAt.Time).To(BeTemporally("==", later))
			Expect(h.recordedReasons(tok)).To(Equal([]string{controllers.EventIssued, controllers.EventExpired,
				controllers.EventExpiresAtPassed, controllers.EventRecreated}))
		})
	})

	Describe("the Secret's metadata", func() {
		It("applies the secretTemplate declaratively, leaving everyone else's entries alone", func() {
			user := unique("meta")
			ownedTeam(user)
			tok := create(b.ApiToken(unique("meta"), managedNamespace, b.WithCreator(user), withSecretTemplate(
				map[string]string{"app": "ci", "tier": "backend"},
				map[string]string{"reloader.stakater.com/match": "true", "example.com/note": "a"})))
			eventuallyDelivered(tok)

			By("someone else labelling and annotating the Secret")
			Expect(k8sClient.Patch(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: managedNamespace, Name: tok.Name}},
				client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"example.com/owner":"ops"},"annotations":{"reloader.stakater.com/auto":"true"}}}`)))).To(Succeed())

			By("removing and changing template entries")
			update(tok, func(t *v1alpha1.ApiToken) {
				withSecretTemplate(map[string]string{"app": "cd"}, map[string]string{"example.com/note": "b"})(t)
			})
			Eventually(func(g Gomega) {
				secret := getSecret(g, managedNamespace, tok.Name)
				g.Expect(secret.Labels).To(Equal(map[string]string{
					"app": "cd", "example.com/owner": "ops", v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue,
				}))
				g.Expect(secret.Annotations).To(HaveKeyWithValue("example.com/note", "b"))
				g.Expect(secret.Annotations).To(HaveKeyWithValue("reloader.stakater.com/auto", "true"))
				g.Expect(secret.Annotations).NotTo(HaveKey("reloader.stakater.com/match"))
			}).Should(Succeed())

			By("removing the template")
			update(tok, func(t *v1alpha1.ApiToken) { t.Spec.SecretTemplate = nil })
			var secret *corev1.Secret
			Eventually(func(g Gomega) {
				secret = getSecret(g, managedNamespace, tok.Name)
				g.Expect(secret.Labels).To(Equal(map[string]string{"example.com/owner": "ops", v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}))
				g.Expect(secret.Annotations).To(Equal(map[string]string{"reloader.stakater.com/auto": "true"}))
			}).Should(Succeed())

			By("writing nothing when nothing changed")
			touch(tok)
			Consistently(func(g Gomega) {
				g.Expect(getSecret(g, managedNamespace, tok.Name).ResourceVersion).To(Equal(secret.ResourceVersion))
			}, 2*time.Second, 100*time.Millisecond).Should(Succeed())
			deliveredValue(Default, getToken(Default, tok))
		})
	})

	// These specs make the API server fail, so each drives a reconciler of
	// its own (harness) through a client that fails on cue.
	Describe("failures", func() {
		It("records a refused Secret create in Reconciled, never with the value, until the Secret is written", func() {
			user := unique("refused")
			team := ownedTeam(user)
			tok := create(b.ApiToken(unique("refused"), manualNamespace, b.TeamToken(team.Name), b.WithCreator(user)))
			var attempted string
			// As an admission webhook that quotes what it refuses.
			refuse := func(verb string, obj client.Object) error {
				secret, ok := obj.(*corev1.Secret)
				if !ok || verb != "create" {
					return nil
				}
				attempted = string(secret.Data[v1alpha1.SecretTokenKey])
				values.Store(attempted, true) // the leak check at the end looks for it too
				return apierrors.NewForbidden(corev1.Resource("secrets"), secret.Name, fmt.Errorf("denied: data.token=%s (%s)",
					attempted, base64.StdEncoding.EncodeToString([]byte(attempted))))
			}
			h := newHarness(withClient(func(c client.Client) client.Client { return failingClient{Client: c, fail: refuse} }))
			_, err := h.reconcile(tok)
			Expect(err).To(MatchError(ContainSubstring("creating Secret")))
			Expect(attempted).NotTo(BeEmpty())
			Expect(err.Error()).NotTo(ContainSubstring(attempted))

			got := getToken(Default, tok)
			reconciled := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReconciledCondition)
			Expect(reconciled).NotTo(BeNil())
			Expect(reconciled.Status).To(Equal(metav1.ConditionFalse))
			Expect(reconciled.Reason).To(Equal(v1alpha1.ReasonReconcileError))
			Expect(reconciled.Message).To(ContainSubstring("creating Secret " + tok.Name))
			Expect(reconciled.Message).To(ContainSubstring("denied: data.token="))
			Expect(reconciled.Message).NotTo(ContainSubstring(attempted))
			Expect(reconciled.Message).NotTo(ContainSubstring(base64.StdEncoding.EncodeToString([]byte(attempted))))
			Expect(reconciled.ObservedGeneration).To(Equal(got.Generation))

			By("reconciling once the API server lets the Secret through")
			got = newHarness(withClock(h.clock)).converge(tok)
			deliveredValue(Default, got)
			reconciled = apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReconciledCondition)
			Expect(reconciled.Status).To(Equal(metav1.ConditionTrue))
			Expect(reconciled.Reason).To(Equal(v1alpha1.ReasonReconciled))
		})

		It("leaves observedGeneration and Ready where they were while a reconcile fails", func() {
			user := unique("unread")
			team := ownedTeam(user)
			tok := create(b.ApiToken(unique("unread"), manualNamespace, b.TeamToken(team.Name), b.WithCreator(user)))
			errUnreadable := errors.New("the Teams cannot be read")
			failing := false
			h := newHarness(withClient(func(c client.Client) client.Client {
				return failingClient{Client: c, fail: func(verb string, obj client.Object) error {
					if _, ok := obj.(*v1alpha1.Team); ok && verb == "get" && failing {
						return errUnreadable
					}
					return nil
				}}
			}))
			issued := h.converge(tok)
			value := deliveredValue(Default, issued)

			update(tok, func(t *v1alpha1.ApiToken) { t.Spec.Disabled = true })
			failing = true
			_, err := h.reconcile(tok)
			Expect(err).To(MatchError(errUnreadable))
			got := getToken(Default, tok)
			Expect(got.Generation).To(BeNumerically(">", issued.Generation))
			Expect(got.Status.ObservedGeneration).To(Equal(issued.Status.ObservedGeneration), "observedGeneration moves only with a successful reconcile")
			Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseActive))
			Expect(apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)).To(Equal(
				apimeta.FindStatusCondition(issued.Status.Conditions, v1alpha1.ReadyCondition)))
			reconciled := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReconciledCondition)
			Expect(reconciled.Status).To(Equal(metav1.ConditionFalse))
			Expect(reconciled.Reason).To(Equal(v1alpha1.ReasonReconcileError))
			Expect(reconciled.Message).To(Equal(fmt.Sprintf("reading Team %s: %s", team.Name, errUnreadable)))
			Expect(reconciled.ObservedGeneration).To(Equal(got.Generation))

			By("failing the same way again, which writes nothing")
			written := h.writes.of(tok)
			_, err = h.reconcile(tok)
			Expect(err).To(MatchError(errUnreadable))
			Expect(h.writes.of(tok)).To(Equal(written))

			By("recovering")
			failing = false
			got = h.converge(tok)
			Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseDisabled))
			Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			Expect(apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReconciledCondition).Status).To(Equal(metav1.ConditionTrue))
			Expect(deliveredValue(Default, got)).To(Equal(value))
		})

		It("stops for good on a lifetime the API server admits but nobody can count, until it is fixed", func() {
			h := newHarness()
			user := unique("endless")
			ownedTeam(user)
			tok := create(b.ApiToken(unique("endless"), manualNamespace, b.WithCreator(user), b.WithLifetime("1h")))
			first := h.converge(tok)
			value := deliveredValue(Default, first)

			// Five digits of days and six of hours pass the schema, but the
			// total is longer than a time.Duration holds.
			update(tok, func(t *v1alpha1.ApiToken) { b.WithLifetime("99999d999999h")(t) })
			_, err := h.reconcile(tok)
			Expect(errors.Is(err, reconcile.TerminalError(nil))).To(BeTrue(), "not retried: %v", err)
			got := getToken(Default, tok)
			Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseFailed))
			Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			ready := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition)
			Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			Expect(ready.Reason).To(Equal(v1alpha1.ReasonInvalidSpec))
			Expect(ready.Message).To(HavePrefix(`spec.lifetime: invalid duration "99999d999999h"`))
			reconciled := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReconciledCondition)
			Expect(reconciled.Status).To(Equal(metav1.ConditionFalse))
			Expect(reconciled.Reason).To(Equal(v1alpha1.ReasonInvalidSpec))
			Expect(getSecret(Default, manualNamespace, tok.Name).Data).NotTo(HaveKey(v1alpha1.SecretTokenKey), "the value is withdrawn")
			Eventually(func(g Gomega) { g.Expect(eventReasons(g, tok)).To(ContainElement(controllers.EventInvalidSpec)) }).Should(Succeed())
			Expect(h.recordedReasons(tok)).To(Equal([]string{controllers.EventIssued, controllers.EventInvalidSpec}))

			By("fixing the lifetime")
			update(tok, func(t *v1alpha1.ApiToken) { b.WithLifetime("2h")(t) })
			got = h.converge(tok)
			Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseActive))
			Expect(apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReconciledCondition).Status).To(Equal(metav1.ConditionTrue))
			Expect(deliveredValue(Default, got)).NotTo(Equal(value), "the withdrawn value never comes back")
		})
	})

	Describe("invalidation", func() {
		It("invalidates the Team and Wildcard tokens of an owner removed from the Team", func() {
			team := ownedTeam("ann", "other")
			teamTok := create(b.ApiToken(unique("ann-team"), managedNamespace, b.TeamToken(team.Name), b.WithCreator("ann")))
			wildTok := create(b.ApiToken(unique("ann-wild"), managedNamespace, b.WithCreator("ann")))
			eventuallyDelivered(teamTok)
			eventuallyDelivered(wildTok)

			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), team)).To(Succeed())
			team.Spec.Owners = []v1alpha1.Subject{b.User("other")}
			Expect(k8sClient.Update(ctx, team)).To(Succeed())
			removed := time.Now()

			for _, tok := range []*v1alpha1.ApiToken{teamTok, wildTok} {
				Eventually(func(g Gomega) {
					got := getToken(g, tok)
					g.Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseInvalidated))
					g.Expect(apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition).Reason).To(Equal(v1alpha1.ReasonCreatorNotOwner))
				}, 2*time.Second, 20*time.Millisecond).Should(Succeed(), "invalidated within two seconds")
				Eventually(func(g Gomega) {
					g.Expect(getSecret(g, managedNamespace, tok.Name).Data).NotTo(HaveKey(v1alpha1.SecretTokenKey))
				}).Should(Succeed())
			}
			GinkgoWriter.Printf("invalidation after owner removal took %v\n", time.Since(removed))
			Eventually(func() float64 {
				return testutil.ToFloat64(metrics.Invalidations.WithLabelValues(v1alpha1.ReasonCreatorNotOwner))
			}).Should(BeNumerically(">=", 2))
			Eventually(func(g Gomega) { g.Expect(eventReasons(g, teamTok)).To(ContainElement(controllers.EventInvalidated)) }).Should(Succeed())
			Expect(recordedReasons(teamTok)).To(Equal([]string{controllers.EventIssued, controllers.EventInvalidated}))

			By("staying invalidated when the owner comes back")
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), team)).To(Succeed())
			team.Spec.Owners = []v1alpha1.Subject{b.User("other"), b.User("ann")}
			Expect(k8sClient.Update(ctx, team)).To(Succeed())
			Consistently(func(g Gomega) {
				g.Expect(getToken(g, teamTok).Status.Phase).To(Equal(v1alpha1.PhaseInvalidated))
			}, 2*time.Second).Should(Succeed())

			By("issuing again on a recreate once the creator is entitled")
			update(teamTok, func(t *v1alpha1.ApiToken) { t.Spec.Recreate = 1 })
			eventuallyDelivered(teamTok)
			Eventually(recordedReasons).WithArguments(teamTok).Should(Equal(
				[]string{controllers.EventIssued, controllers.EventInvalidated, controllers.EventRecreated}))
		})

		It("invalidates a Team token whose Team is deleted", func() {
			team := ownedTeam("bea")
			tok := create(b.ApiToken(unique("orphan"), managedNamespace, b.TeamToken(team.Name), b.WithCreator("bea")))
			eventuallyDelivered(tok)
			Expect(k8sClient.Delete(ctx, team)).To(Succeed())
			got := eventuallyPhase(tok, v1alpha1.PhaseInvalidated)
			Expect(apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition).Reason).To(Equal(v1alpha1.ReasonTeamDeleted))
		})

		It("invalidates an Admin token when RBAC demotes its creator", func() {
			binding := makeAdmin("root-1")
			tok := create(b.ApiToken(unique("admin"), managedNamespace, b.WithType(v1alpha1.AdminTokenType), b.WithCreator("root-1")))
			eventuallyDelivered(tok)

			Expect(k8sClient.Delete(ctx, binding)).To(Succeed())
			demoted := time.Now()
			Eventually(func(g Gomega) {
				got := getToken(g, tok)
				g.Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseInvalidated))
				g.Expect(apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition).Reason).To(Equal(v1alpha1.ReasonCreatorNotAdmin))
			}, 2*time.Second, 20*time.Millisecond).Should(Succeed())
			GinkgoWriter.Printf("invalidation after RBAC demotion took %v\n", time.Since(demoted))
			// The status says Invalidated first (the verifier refuses from then
			// on); the value leaves the Secret right after.
			Eventually(func(g Gomega) {
				g.Expect(getSecret(g, managedNamespace, tok.Name).Data).NotTo(HaveKey(v1alpha1.SecretTokenKey))
			}).Should(Succeed())
		})

		It("invalidates a Team token at once when its Team is being deleted, whatever finalizer holds it", func() {
			team := ownedTeam("cid")
			tok := create(b.ApiToken(unique("held"), managedNamespace, b.TeamToken(team.Name), b.WithCreator("cid")))
			eventuallyDelivered(tok)
			Expect(k8sClient.Patch(ctx, team, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":["example.com/stranger"]}}`)))).To(Succeed())
			Expect(k8sClient.Delete(ctx, team)).To(Succeed())
			got := eventuallyPhase(tok, v1alpha1.PhaseInvalidated)
			Expect(apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition).Reason).To(Equal(v1alpha1.ReasonTeamDeleted))
			Expect(k8sClient.Patch(ctx, team, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`)))).To(Succeed())
		})

		It("invalidates a Team's tokens in a namespace removed from the Team", func() {
			team := ownedTeam("dan")
			teamTok := create(b.ApiToken(unique("ns-team"), managedNamespace, b.TeamToken(team.Name), b.WithCreator("dan")))
			wildTok := create(b.ApiToken(unique("ns-wild"), managedNamespace, b.WithCreator("dan")))
			eventuallyDelivered(teamTok)
			eventuallyDelivered(wildTok)
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), team)).To(Succeed())
			team.Spec.Namespaces = []string{"elsewhere"}
			Expect(k8sClient.Update(ctx, team)).To(Succeed())
			for _, tok := range []*v1alpha1.ApiToken{teamTok, wildTok} {
				got := eventuallyPhase(tok, v1alpha1.PhaseInvalidated)
				Expect(apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ReadyCondition).Reason).To(Equal(v1alpha1.ReasonNamespaceNotAllowed))
				Eventually(func(g Gomega) {
					g.Expect(getSecret(g, managedNamespace, tok.Name).Data).NotTo(HaveKey(v1alpha1.SecretTokenKey))
				}).Should(Succeed())
			}
		})

		It("revives an invalidated token on a recreate by an admin, who becomes its creator", func() {
			makeAdmin("root-3")
			team := ownedTeam("eli")
			tok := create(b.ApiToken(unique("revived"), managedNamespace, b.TeamToken(team.Name), b.WithCreator("eli")))
			_, before := eventuallyDelivered(tok)
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(team), team)).To(Succeed())
			team.Spec.Owners = []v1alpha1.Subject{b.User("someone-else")}
			Expect(k8sClient.Update(ctx, team)).To(Succeed())
			eventuallyPhase(tok, v1alpha1.PhaseInvalidated)

			By("recreating as an admin, as the mutating webhook records it")
			update(tok, func(t *v1alpha1.ApiToken) {
				b.WithCreator("root-3")(t)
				t.Spec.Recreate++
			})
			got, after := eventuallyDelivered(tok)
			Expect(after).NotTo(Equal(before))
			Expect(got.Status.Creator.Username).To(Equal("root-3"))
			Eventually(func(g Gomega) { g.Expect(eventReasons(g, tok)).To(ContainElement(controllers.EventCreatorChanged)) }).Should(Succeed())
		})

		It("never misses a demotion: 100 in a row, each invalidated within two seconds", func() {
			role := &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{Name: unique("tokenwarden-admin")},
				Rules:      []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"apitokens"}, Verbs: []string{v1alpha1.AdminVerb}}},
			}
			Expect(k8sClient.Create(ctx, role)).To(Succeed())
			var slowest time.Duration
			for i := range 100 {
				user := unique("demoted")
				binding := &rbacv1.ClusterRoleBinding{
					ObjectMeta: metav1.ObjectMeta{Name: user},
					RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
					Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
				}
				Expect(k8sClient.Create(ctx, binding)).To(Succeed())
				tok := create(b.ApiToken(user, managedNamespace, b.WithType(v1alpha1.AdminTokenType), b.WithCreator(user)))
				Eventually(func(g Gomega) {
					g.Expect(getToken(g, tok).Status.Phase).To(Equal(v1alpha1.PhaseActive))
				}).Should(Succeed(), "demotion %d: the token must first be issued", i)

				Expect(k8sClient.Delete(ctx, binding)).To(Succeed())
				demoted := time.Now()
				Eventually(func(g Gomega) {
					g.Expect(getToken(g, tok).Status.Phase).To(Equal(v1alpha1.PhaseInvalidated))
				}, 2*time.Second, 10*time.Millisecond).Should(Succeed(), "demotion %d was missed", i)
				slowest = max(slowest, time.Since(demoted))
			}
			GinkgoWriter.Printf("100 demotions: the slowest invalidation took %v\n", slowest)
		})

		It("keeps an admin's Team token when the admin owns none of its teams", func() {
			makeAdmin("root-2")
			team := ownedTeam("someone")
			tok := create(b.ApiToken(unique("admin-team"), managedNamespace, b.TeamToken(team.Name), b.WithCreator("root-2")))
			eventuallyDelivered(tok)
			Expect(strings.HasPrefix(getToken(Default, tok).Status.TokenPrefix, "twt_")).To(BeTrue())
		})
	})
})
