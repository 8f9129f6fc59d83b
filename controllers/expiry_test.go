package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/controllers"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/controlplane"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// TestExpiryEdits reconciles, by hand over a fake API server, an Active
// token issued an hour ago whose expiry was then edited: the status records
// the new expiry at once (verification, the EXPIRES column and the expiry
// gauge read it), the wake-up moves to the new instant, and the value stays
// unless the new expiry has already passed.
func TestExpiryEdits(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	issuedAt := now.Add(-time.Hour)
	at := func(d time.Duration) *time.Time {
		t := now.Add(d)
		return &t
	}
	tests := []struct {
		name string
		// opts edit a token issued at issuedAt with expiresAt now+1h.
		opts []b.ApiTokenOption
		// want is the recorded expiry (nil: never), wake the RequeueAfter.
		want      *time.Time
		wake      time.Duration
		wantPhase v1alpha1.ApiTokenPhase
	}{
		{"nothing edited", nil, at(time.Hour), time.Hour, v1alpha1.PhaseActive},
		{"expiresAt extended", []b.ApiTokenOption{b.WithExpiresAt(now.Add(3 * time.Hour))}, at(3 * time.Hour), 3 * time.Hour, v1alpha1.PhaseActive},
		{"expiresAt shortened", []b.ApiTokenOption{b.WithExpiresAt(now.Add(10 * time.Minute))}, at(10 * time.Minute), 10 * time.Minute, v1alpha1.PhaseActive},
		{"expiresAt removed", []b.ApiTokenOption{withoutExpiry}, nil, 0, v1alpha1.PhaseActive},
		{"lifetime instead, counted from issuedAt", []b.ApiTokenOption{withoutExpiry, b.WithLifetime("3h")}, at(2 * time.Hour), 2 * time.Hour, v1alpha1.PhaseActive},
		{"lifetime shortened to before now", []b.ApiTokenOption{withoutExpiry, b.WithLifetime("30m")}, at(-30 * time.Minute), 0, v1alpha1.PhaseExpired},
		{"expiresAt moved into the past", []b.ApiTokenOption{b.WithExpiresAt(now.Add(-time.Minute))}, at(-time.Minute), 0, v1alpha1.PhaseExpired},
		{"a disabled token follows too", []b.ApiTokenOption{b.WithDisabled(true), b.WithExpiresAt(now.Add(3 * time.Hour))}, at(3 * time.Hour), 3 * time.Hour, v1alpha1.PhaseDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c, tok, value := issuedToken(g, now, issuedAt, tt.opts...)
			r := &controllers.ApiTokenReconciler{
				Client: c, APIReader: c, Clock: clocktesting.NewFakeClock(now), Format: token.Format{Base: token.DefaultBase},
				Standing: authz.NewStanding(admins{}, clocktesting.NewFakeClock(now)),
			}
			ctx := context.Background()
			res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tok)})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.RequeueAfter).To(Equal(tt.wake), "the wake-up is at the expiry as edited")

			got := &v1alpha1.ApiToken{}
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			g.Expect(got.Status.Phase).To(Equal(tt.wantPhase))
			g.Expect(got.Status.TokenHash).To(Equal(tok.Status.TokenHash), "an edit of the expiry issues no new value")
			if tt.want == nil {
				g.Expect(got.Status.ExpiresAt).To(BeNil())
			} else {
				g.Expect(got.Status.ExpiresAt).NotTo(BeNil())
				g.Expect(got.Status.ExpiresAt.Time).To(BeTemporally("==", *tt.want))
			}
			secret := &corev1.Secret{}
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), secret)).To(Succeed())
			if tt.wantPhase == v1alpha1.PhaseExpired {
				g.Expect(secret.Data).NotTo(HaveKey(v1alpha1.SecretTokenKey))
				return
			}
			g.Expect(string(secret.Data[v1alpha1.SecretTokenKey])).To(Equal(value))

			// The next reconcile finds everything as it left it.
			before := got.ResourceVersion
			_, err = r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tok)})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
			g.Expect(got.ResourceVersion).To(Equal(before), "no write when nothing changed")
		})
	}
}

// withoutExpiry removes spec.expiresAt.
func withoutExpiry(t *v1alpha1.ApiToken) { t.Spec.ExpiresAt = nil }

// issuedToken serves, from a fake API server, a Team token of jane's team
// issued at issuedAt with spec.expiresAt one hour after now, as a reconcile
// at that time recorded it, edited by opts afterwards; and its Secret with
// the value, which it returns.
func issuedToken(g Gomega, now, issuedAt time.Time, opts ...b.ApiTokenOption) (client.Client, *v1alpha1.ApiToken, string) {
	scheme, err := controlplane.NewScheme()
	g.Expect(err).NotTo(HaveOccurred())
	const ns = "payments"
	team := b.Team("payments", b.WithOwners(b.User("jane")), b.WithNamespaces(ns))
	value, err := token.Format{Base: token.DefaultBase}.Generate(v1alpha1.TeamTokenType)
	g.Expect(err).NotTo(HaveOccurred())

	tok := b.ApiToken("ci", ns, b.TeamToken("payments"), b.WithCreator("jane"), b.WithExpiresAt(now.Add(time.Hour)))
	tok.UID = types.UID("uid-ci")
	tok.Generation = 1
	expiresAt := metav1.NewTime(now.Add(time.Hour))
	tok.Status = v1alpha1.ApiTokenStatus{
		Phase: v1alpha1.PhaseActive, ObservedGeneration: 1,
		TokenHash: token.Hash(value), TokenPrefix: token.DisplayPrefix(value),
		IssuedAt: &metav1.Time{Time: issuedAt}, ExpiresAt: &expiresAt,
		SecretRef: &v1alpha1.SecretReference{Name: tok.Name},
	}
	apimeta.SetStatusCondition(&tok.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonIssued,
		Message: "the value in the Secret verifies", ObservedGeneration: 1,
	})
	creator, err := authz.CreatorOf(tok)
	g.Expect(err).NotTo(HaveOccurred())
	tok.Status.Creator = creator
	for _, opt := range opts {
		opt(tok)
	}
	if tok.Spec.Disabled {
		tok.Status.Phase = v1alpha1.PhaseDisabled
		apimeta.SetStatusCondition(&tok.Status.Conditions, metav1.Condition{
			Type: v1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonDisabled,
			Message: "spec.disabled is set: the value is kept but refused", ObservedGeneration: 1,
		})
	}

	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: tok.Name, Namespace: ns,
			Labels: map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}},
		Type: v1alpha1.SecretType,
		Data: map[string][]byte{v1alpha1.SecretTokenKey: []byte(value)},
	}
	g.Expect(controllerutil.SetControllerReference(tok, secret, scheme)).To(Succeed())
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(tok, secret, team).
		WithStatusSubresource(&v1alpha1.ApiToken{}, &v1alpha1.Team{}).Build()
	return c, tok, value
}

// TestExpiredStaysExpired: an expired token holds no value until a recreate
// asks for one, whatever happens to it meanwhile. Its expiry is moved into
// the future first, so that only its phase remembers it expired; then
// something that would fail a token holding a value comes and goes: a spec
// the operator cannot read, a policy of its team it would break, a foreign
// Secret under its Secret's name. None of them may end in a new value that
// nobody recreated.
func TestExpiredStaysExpired(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	type edit func(g Gomega, c client.Client, tok *v1alpha1.ApiToken)
	setSpec := func(change func(*v1alpha1.ApiTokenSpec)) edit {
		return func(g Gomega, c client.Client, tok *v1alpha1.ApiToken) {
			got := &v1alpha1.ApiToken{}
			g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(tok), got)).To(Succeed())
			change(&got.Spec)
			got.Generation++
			g.Expect(c.Update(context.Background(), got)).To(Succeed())
		}
	}
	setPolicy := func(policy *v1alpha1.TeamPolicy) edit {
		return func(g Gomega, c client.Client, _ *v1alpha1.ApiToken) {
			team := &v1alpha1.Team{}
			g.Expect(c.Get(context.Background(), client.ObjectKey{Name: "payments"}, team)).To(Succeed())
			team.Spec.Policy = policy
			team.Generation++
			g.Expect(c.Update(context.Background(), team)).To(Succeed())
		}
	}
	foreignSecret := func(g Gomega, c client.Client, tok *v1alpha1.ApiToken) {
		ctx := context.Background()
		g.Expect(c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tok.Name, Namespace: tok.Namespace}})).To(Succeed())
		g.Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tok.Name, Namespace: tok.Namespace}})).To(Succeed())
	}
	removeSecret := func(g Gomega, c client.Client, tok *v1alpha1.ApiToken) {
		g.Expect(c.Delete(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tok.Name, Namespace: tok.Namespace}})).To(Succeed())
	}
	strict := b.Team("x", b.WithPolicy("10m", false)).Spec.Policy
	tests := []struct {
		name        string
		comes, goes edit
	}{
		{"a spec the operator cannot read",
			setSpec(func(s *v1alpha1.ApiTokenSpec) {
				s.ExpiresAt = nil
				s.Lifetime = new(v1alpha1.Duration("99999d999999h"))
			}),
			setSpec(func(s *v1alpha1.ApiTokenSpec) { s.Lifetime = new(v1alpha1.Duration("720h")) })},
		{"a team policy it would break", setPolicy(strict), setPolicy(nil)},
		{"a foreign Secret under its Secret's name", foreignSecret, removeSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c, tok, _ := issuedToken(g, now, now.Add(-2*time.Hour), b.WithExpiresAt(now.Add(-time.Minute)))
			r := &controllers.ApiTokenReconciler{
				Client: c, APIReader: c, Clock: clocktesting.NewFakeClock(now), Format: token.Format{Base: token.DefaultBase},
				Standing: authz.NewStanding(admins{}, clocktesting.NewFakeClock(now)),
			}
			ctx := context.Background()
			reconcile := func() *v1alpha1.ApiToken {
				_, _ = r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tok)})
				got := &v1alpha1.ApiToken{}
				g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), got)).To(Succeed())
				return got
			}
			g.Expect(reconcile().Status.Phase).To(Equal(v1alpha1.PhaseExpired))
			setSpec(func(s *v1alpha1.ApiTokenSpec) { s.ExpiresAt = &metav1.Time{Time: now.Add(time.Hour)} })(g, c, tok)
			g.Expect(reconcile().Status.Phase).To(Equal(v1alpha1.PhaseExpired), "a later expiry brings nothing back")

			tt.comes(g, c, tok)
			reconcile()
			tt.goes(g, c, tok)
			got := reconcile()
			g.Expect(got.Status.Phase).To(Equal(v1alpha1.PhaseExpired))
			g.Expect(got.Status.TokenHash).To(Equal(tok.Status.TokenHash), "no new value without a recreate")
			secret := &corev1.Secret{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(tok), secret); err == nil {
				g.Expect(secret.Data).NotTo(HaveKey(v1alpha1.SecretTokenKey))
			}
		})
	}
}

// TestOneStatusWritePerIssuance: issuing a value writes the status once.
// The API server keeps times to the second, and a reconcile that compared
// its own instant, to the nanosecond, with what the API server returned
// sent a second, empty status patch with every issuance.
func TestOneStatusWritePerIssuance(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 12, 3, 12, 0, 0, 700_000_000, time.UTC) // not on a second
	scheme, err := controlplane.NewScheme()
	g.Expect(err).NotTo(HaveOccurred())
	team := b.Team("payments", b.WithOwners(b.User("jane")), b.WithNamespaces("payments"))
	tok := b.ApiToken("ci", "payments", b.TeamToken("payments"), b.WithCreator("jane"), b.WithLifetime("720h"))
	var patches []string
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(tok, team).
		WithStatusSubresource(&v1alpha1.ApiToken{}, &v1alpha1.Team{}).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
				data, err := patch.Data(obj)
				if err != nil {
					return err
				}
				patches = append(patches, string(data))
				return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			},
		}).Build()
	clk := clocktesting.NewFakeClock(now)
	r := &controllers.ApiTokenReconciler{
		Client: c, APIReader: c, Clock: clk, Format: token.Format{Base: token.DefaultBase},
		Standing: authz.NewStanding(admins{}, clk),
	}
	for i := range 3 {
		res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tok)})
		g.Expect(err).NotTo(HaveOccurred())
		if i == 0 {
			// The value expires when the recorded issuedAt says, to the
			// second, and the wake-up is then.
			g.Expect(res.RequeueAfter).To(Equal(720*time.Hour - 700*time.Millisecond))
		}
		clk.Step(1300 * time.Millisecond)
	}
	g.Expect(patches).To(HaveLen(1), "one status write per issuance, none after")
}
