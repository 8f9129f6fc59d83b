package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/controllers"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/controlplane"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/token"
	"github.com/tokenwarden/tokenwarden/internal/verify"
	"github.com/tokenwarden/tokenwarden/webhook/admit"
)

// admins is an RBAC answer for the same-answer test: the user names that
// are admins.
type admins map[string]bool

func (a admins) IsAdmin(_ context.Context, user *v1alpha1.UserIdentity) (bool, error) {
	return a[user.Username], nil
}

// TestSameAnswerEverywhere feeds the same actor, token, Teams and RBAC to
// the three places that decide entitlement: the admission webhook (the
// actor creates the token), the reconciler (the actor is its recorded
// creator) and the verifier (the token was issued, and is presented). All
// three must agree, and the reconciler and verifier must refuse for the
// same reason: a rule fixed in one place must not stay open in another.
func TestSameAnswerEverywhere(t *testing.T) {
	const ns = "payments"
	scheme, err := controlplane.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	payments := b.Team("payments", b.WithOwners(b.User("jane"), b.Group("payments-leads")), b.WithNamespaces(ns))
	orders := b.Team("orders", b.WithOwners(b.User("john")), b.WithNamespaces("orders"))
	elsewhere := b.Team("payments", b.WithOwners(b.User("jane")), b.WithNamespaces("orders"))
	deleting := payments.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: now}
	deleting.Finalizers = []string{"example.com/stranger"}
	root := admins{"root": true}

	tests := []struct {
		name   string
		actor  string
		groups []string
		opts   []b.ApiTokenOption
		teams  []*v1alpha1.Team
		admins admins
		// reason is "" when every place allows, else the reconciler's Ready
		// reason; the verifier then refuses as Invalidated.
		reason string
	}{
		{"an owner's Team token", "jane", nil, []b.ApiTokenOption{b.TeamToken("payments")}, []*v1alpha1.Team{payments, orders}, nil, ""},
		{"a group owner's Team token", "bob", []string{"payments-leads"}, []b.ApiTokenOption{b.TeamToken("payments")}, []*v1alpha1.Team{payments}, nil, ""},
		{"a stranger's Team token", "eve", nil, []b.ApiTokenOption{b.TeamToken("payments")}, []*v1alpha1.Team{payments}, nil, v1alpha1.ReasonCreatorNotOwner},
		{"an admin's Team token of a team they do not own", "root", nil, []b.ApiTokenOption{b.TeamToken("payments")}, []*v1alpha1.Team{payments}, root, ""},
		{"a Team token of a team that is gone", "root", nil, []b.ApiTokenOption{b.TeamToken("ghost")}, []*v1alpha1.Team{payments}, root, v1alpha1.ReasonTeamDeleted},
		{"a Team token of a team being deleted", "jane", nil, []b.ApiTokenOption{b.TeamToken("payments")}, []*v1alpha1.Team{deleting}, root, v1alpha1.ReasonTeamDeleted},
		{"a Team token where its team allows no tokens", "jane", nil, []b.ApiTokenOption{b.TeamToken("payments")}, []*v1alpha1.Team{elsewhere}, nil, v1alpha1.ReasonNamespaceNotAllowed},
		{"an owner's Wildcard token in their namespace", "jane", nil, nil, []*v1alpha1.Team{payments, orders}, nil, ""},
		{"an owner's Wildcard token outside their namespaces", "john", nil, nil, []*v1alpha1.Team{payments, orders}, nil, v1alpha1.ReasonNamespaceNotAllowed},
		{"a stranger's Wildcard token", "eve", nil, nil, []*v1alpha1.Team{payments}, nil, v1alpha1.ReasonCreatorNotOwner},
		{"an admin's Wildcard token anywhere", "root", nil, nil, nil, root, ""},
		{"an admin's Admin token", "root", nil, []b.ApiTokenOption{b.WithType(v1alpha1.AdminTokenType)}, nil, root, ""},
		{"a team owner's Admin token", "jane", nil, []b.ApiTokenOption{b.WithType(v1alpha1.AdminTokenType)}, []*v1alpha1.Team{payments}, nil, v1alpha1.ReasonCreatorNotAdmin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			clk := clocktesting.NewFakeClock(now)
			tok := b.ApiToken("t", ns, append(tt.opts, b.WithCreator(tt.actor, tt.groups...))...)
			objects := []client.Object{tok.DeepCopy()}
			for _, team := range tt.teams {
				objects = append(objects, team.DeepCopy())
			}
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects...).
				WithStatusSubresource(&v1alpha1.ApiToken{}, &v1alpha1.Team{}).Build()

			// Admission: the actor creates the token.
			validator := &admit.ApiTokenValidator{Reader: c, Admins: tt.admins, Clock: clk}
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
				Operation: admissionv1.Create, Name: tok.Name, Namespace: ns,
				Kind:     metav1.GroupVersionKind{Group: v1alpha1.GroupVersion.Group, Version: v1alpha1.GroupVersion.Version, Kind: "ApiToken"},
				UserInfo: authenticationv1.UserInfo{Username: tt.actor, Groups: tt.groups},
			}}
			_, admitErr := validator.ValidateCreate(admission.NewContextWithRequest(ctx, req), tok.DeepCopy())

			// The reconciler: the actor is the recorded creator.
			r := &controllers.ApiTokenReconciler{
				Client: c, APIReader: c, Clock: clk, Format: token.Format{Base: token.DefaultBase},
				Standing: authz.NewStanding(tt.admins, clk),
			}
			_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tok)})
			g.Expect(err).NotTo(HaveOccurred())
			reconciled := &v1alpha1.ApiToken{}
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tok), reconciled)).To(Succeed())
			ready := apimeta.FindStatusCondition(reconciled.Status.Conditions, v1alpha1.ReadyCondition)
			g.Expect(ready).NotTo(BeNil())

			// The verifier: the token was issued and is presented.
			format := token.Format{Base: token.DefaultBase}
			value, err := format.Generate(tok.Spec.Type)
			g.Expect(err).NotTo(HaveOccurred())
			issued := tok.DeepCopy()
			issued.UID = "uid-1"
			issued.Status = v1alpha1.ApiTokenStatus{Phase: v1alpha1.PhaseActive, TokenHash: token.Hash(value)}
			index := verify.NewIndex()
			index.Upsert(issued)
			verifier := &verify.Verifier{Index: index, Format: format, Clock: clk, Teams: verify.StaticTeams(tt.teams...), Admins: tt.admins}
			_, refusal := verifier.Verify(ctx, value)

			if tt.reason == "" {
				g.Expect(admitErr).NotTo(HaveOccurred(), "admission")
				g.Expect(reconciled.Status.Phase).To(Equal(v1alpha1.PhaseActive), "the reconciler: %s", ready.Message)
				g.Expect(refusal).To(BeEmpty(), "the verifier")
				return
			}
			g.Expect(admitErr).To(HaveOccurred(), "admission")
			g.Expect(reconciled.Status.Phase).To(Equal(v1alpha1.PhaseFailed), "the reconciler issues nothing")
			g.Expect(ready.Reason).To(Equal(tt.reason), "the reconciler's reason")
			g.Expect(refusal).To(Equal(verify.ReasonInvalidated), "the verifier")
		})
	}
}
