package authz

import (
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
)

var (
	now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

	// payments is owned by jane, the payments-leads group and Argo CD's
	// sync ServiceAccount, and allows the payments namespace.
	payments = b.Team("payments", b.WithOwners(b.User("jane"), b.Group("payments-leads"), b.ServiceAccount("argocd", "sync")),
		b.WithNamespaces("payments", "shared"))
	// orders is owned by john and allows orders and shared.
	orders = b.Team("orders", b.WithOwners(b.User("john")), b.WithNamespaces("orders", "shared"))
	// strict has a policy.
	strict  = b.Team("strict", b.WithOwners(b.User("jane")), b.WithNamespaces("payments"), b.WithPolicy("30d", true, "orders:*"))
	allTeam = teamsOf(payments, orders, strict)

	jane = user("jane")
	john = user("john")
	lead = user("bob", "payments-leads")
	argo = user("system:serviceaccount:argocd:sync", "system:serviceaccounts")
	eve  = user("eve")
	root = user("root", "platform-admins")
	// The cluster's lifecycle controllers, as kube-controller-manager
	// authenticates them.
	nsController = user("system:serviceaccount:kube-system:namespace-controller", "system:serviceaccounts", "system:serviceaccounts:kube-system")
	collector    = user("system:serviceaccount:kube-system:generic-garbage-collector", "system:serviceaccounts", "system:serviceaccounts:kube-system")
	notAdm       = AdminNo
)

// by stamps the creator annotation as the mutating webhook would.
func by(u *v1alpha1.UserIdentity) b.ApiTokenOption {
	return func(t *v1alpha1.ApiToken) {
		data, _ := json.Marshal(u)
		if t.Annotations == nil {
			t.Annotations = map[string]string{}
		}
		t.Annotations[v1alpha1.CreatorAnnotation] = string(data)
	}
}

// issuedAt records that tok's current value was issued at at.
func issuedAt(at time.Time, tok *v1alpha1.ApiToken) *v1alpha1.ApiToken {
	tok.Status.IssuedAt = &metav1.Time{Time: at}
	return tok
}

func tokenIn(ns string, opts ...b.ApiTokenOption) *v1alpha1.ApiToken {
	return b.ApiToken("t", ns, opts...)
}

func TestReviewToken(t *testing.T) {
	type want struct {
		allowed   bool
		needAdmin bool
		errs      []string // substrings, one per error
	}
	allow := want{allowed: true}
	ask := want{needAdmin: true}
	refuse := func(errs ...string) want { return want{errs: errs} }

	teamTok := func(ns string, u *v1alpha1.UserIdentity, teams ...string) *v1alpha1.ApiToken {
		return tokenIn(ns, b.TeamToken(teams...), by(u))
	}
	tests := []struct {
		name string
		req  TokenRequest
		want want
	}{
		// Create: Team tokens.
		{"owner creates a Team token of their team", TokenRequest{Operation: Create, User: jane, New: teamTok("payments", jane, "payments")}, allow},
		{"group owner creates a Team token", TokenRequest{Operation: Create, User: lead, New: teamTok("payments", lead, "payments")}, allow},
		{"ServiceAccount owner (GitOps) creates a Team token", TokenRequest{Operation: Create, User: argo, New: teamTok("payments", argo, "payments")}, allow},
		{"owner of one of two teams must be admin", TokenRequest{Operation: Create, User: jane, New: teamTok("shared", jane, "payments", "orders")}, ask},
		{"owner of one of two teams, not admin", TokenRequest{Operation: Create, User: jane, Admin: notAdm, New: teamTok("shared", jane, "payments", "orders")},
			refuse(`spec.teams: Forbidden: "jane" is neither an admin nor an owner of team "orders": only admins and owners of every listed team may hold this Team token`)},
		{"admin creates a Team token of any team", TokenRequest{Operation: Create, User: root, Admin: AdminYes, New: teamTok("shared", root, "payments", "orders")}, allow},
		{"stranger creates a Team token", TokenRequest{Operation: Create, User: eve, Admin: notAdm, New: teamTok("payments", eve, "payments")},
			refuse(`spec.teams: Forbidden: "eve" is neither an admin nor an owner of team "payments"`)},
		{"Team token outside its team's namespaces", TokenRequest{Operation: Create, User: jane, New: teamTok("orders", jane, "payments")},
			refuse(`spec.teams[0]: Forbidden: team "payments" does not allow tokens in namespace "orders"`)},
		{"Team token in a namespace only one of its teams allows", TokenRequest{Operation: Create, User: root, Admin: AdminYes, New: teamTok("payments", root, "payments", "orders")},
			refuse(`spec.teams[1]: Forbidden: team "orders" does not allow tokens in namespace "payments"`)},
		{"admin too is bound by namespaces", TokenRequest{Operation: Create, User: root, Admin: AdminYes, New: teamTok("kube-system", root, "payments")},
			refuse(`spec.teams[0]: Forbidden: team "payments" does not allow tokens in namespace "kube-system"`)},
		{"Team token of a team that does not exist", TokenRequest{Operation: Create, User: jane, New: teamTok("payments", jane, "payments", "ghost")},
			refuse(`spec.teams[1]: Forbidden: team "ghost" does not exist or is being deleted`)},
		// Create: Wildcard tokens.
		{"owner creates a Wildcard token in their team's namespace", TokenRequest{Operation: Create, User: john, New: tokenIn("orders", by(john))}, allow},
		{"owner creates a Wildcard token in a namespace of another team must be admin", TokenRequest{Operation: Create, User: john, New: tokenIn("payments", by(john))}, ask},
		{"owner creates a Wildcard token outside their namespaces", TokenRequest{Operation: Create, User: john, Admin: notAdm, New: tokenIn("payments", by(john))},
			refuse(`spec.type: Forbidden: "john" is not an admin and owns no team that allows namespace "payments"`)},
		{"non-owner creates a Wildcard token", TokenRequest{Operation: Create, User: eve, Admin: notAdm, New: tokenIn("payments", by(eve))},
			refuse(`spec.type: Forbidden: "eve" is neither an admin nor an owner of any team`)},
		{"admin creates a Wildcard token anywhere", TokenRequest{Operation: Create, User: root, Admin: AdminYes, New: tokenIn("kube-system", by(root))}, allow},
		// Create: Admin tokens.
		{"team owner creates an Admin token", TokenRequest{Operation: Create, User: jane, Admin: notAdm, New: tokenIn("payments", b.WithType(v1alpha1.AdminTokenType), by(jane))},
			refuse(`spec.type: Forbidden: "jane" is not a Tokenwarden admin: only admins may hold Admin tokens`)},
		{"Admin token asks for admin standing", TokenRequest{Operation: Create, User: jane, New: tokenIn("payments", b.WithType(v1alpha1.AdminTokenType), by(jane))}, ask},
		{"admin creates an Admin token", TokenRequest{Operation: Create, User: root, Admin: AdminYes, New: tokenIn("ops", b.WithType(v1alpha1.AdminTokenType), by(root))}, allow},
		// Create: the creator annotation.
		{"spoofed creator", TokenRequest{Operation: Create, User: eve, Admin: AdminYes, New: tokenIn("ops", by(root))},
			refuse(`metadata.annotations[auth.tokenwarden.io/creator]: Forbidden: must record the requesting user`)},
		{"missing creator", TokenRequest{Operation: Create, User: root, Admin: AdminYes, New: tokenIn("ops")},
			refuse(`metadata.annotations[auth.tokenwarden.io/creator]: Forbidden`)},
		// Create: policy.
		{"policy: expiry required", TokenRequest{Operation: Create, User: jane, New: teamTok("payments", jane, "strict")},
			refuse(`spec.lifetime: Required value: team "strict" requires every token to expire`, `team "strict" has a maxLifetime of 30d`)},
		{"policy: lifetime over the maximum", TokenRequest{Operation: Create, User: jane, New: tokenIn("payments", b.TeamToken("strict"), b.WithLifetime("90d"), by(jane))},
			refuse(`spec.lifetime: Invalid value: "90d": longer than the maxLifetime 30d of team "strict"`)},
		{"policy: expiresAt beyond the maximum", TokenRequest{Operation: Create, User: jane, New: tokenIn("payments", b.TeamToken("strict"), b.WithExpiresAt(now.Add(31*24*time.Hour)), by(jane))},
			refuse(`spec.expiresAt: Invalid value`)},
		{"policy: scope not allowed", TokenRequest{Operation: Create, User: jane, New: tokenIn("payments", b.TeamToken("strict"), b.WithLifetime("7d"), b.WithScopes("orders:read", "admin"), by(jane))},
			refuse(`spec.scopes[1]: Forbidden: scope "admin" is not allowed by team "strict"`)},
		{"policy: within every rule", TokenRequest{Operation: Create, User: jane, New: tokenIn("payments", b.TeamToken("strict"), b.WithLifetime("30d"), b.WithScopes("orders:read"), by(jane))}, allow},
		{"policy binds admins too", TokenRequest{Operation: Create, User: root, Admin: AdminYes, New: tokenIn("payments", b.TeamToken("strict"), b.WithLifetime("31d"), by(root))},
			refuse(`spec.lifetime: Invalid value: "31d"`)},
		// Update.
		{"creator disables their token", TokenRequest{Operation: Update, User: jane,
			Old: teamTok("payments", jane, "payments"), New: tokenIn("payments", b.TeamToken("payments"), by(jane), b.WithDisabled(true))}, allow},
		{"creator recreates their token", TokenRequest{Operation: Update, User: jane,
			Old: teamTok("payments", jane, "payments"), New: tokenIn("payments", b.TeamToken("payments"), by(jane), b.WithRecreate(1))}, allow},
		{"another owner of the same team recreates it", TokenRequest{Operation: Update, User: lead, Admin: notAdm,
			Old: teamTok("payments", jane, "payments"), New: tokenIn("payments", b.TeamToken("payments"), by(jane), b.WithRecreate(1))},
			refuse(`metadata: Forbidden: only admins and the token's creator may update it`)},
		{"stranger disables a token", TokenRequest{Operation: Update, User: eve, Admin: notAdm,
			Old: teamTok("payments", jane, "payments"), New: tokenIn("payments", b.TeamToken("payments"), by(jane), b.WithDisabled(true))},
			refuse(`metadata: Forbidden: only admins and the token's creator may update it`)},
		{"admin disables anyone's token", TokenRequest{Operation: Update, User: root, Admin: AdminYes,
			Old: teamTok("payments", jane, "payments"), New: tokenIn("payments", b.TeamToken("payments"), by(jane), b.WithDisabled(true))}, allow},
		{"creator of an Admin token who is no longer admin", TokenRequest{Operation: Update, User: root, Admin: notAdm,
			Old: tokenIn("ops", b.WithType(v1alpha1.AdminTokenType), by(root)), New: tokenIn("ops", b.WithType(v1alpha1.AdminTokenType), by(root), b.WithRecreate(1))},
			refuse(`metadata: Forbidden: only admins may update Admin tokens`)},
		{"changing the creator annotation", TokenRequest{Operation: Update, User: root, Admin: AdminYes,
			Old: teamTok("payments", jane, "payments"), New: teamTok("payments", root, "payments")},
			refuse(`metadata.annotations[auth.tokenwarden.io/creator]: Forbidden: the creator is recorded at creation and changes only to the identity that bumps spec.recreate`)},
		{"removing the creator annotation", TokenRequest{Operation: Update, User: jane,
			Old: teamTok("payments", jane, "payments"), New: tokenIn("payments", b.TeamToken("payments"))},
			refuse(`metadata.annotations[auth.tokenwarden.io/creator]: Forbidden`)},
		{"a label change by anyone with RBAC", TokenRequest{Operation: Update, User: eve, Admin: notAdm,
			Old: teamTok("payments", jane, "payments"), New: tokenIn("payments", b.TeamToken("payments"), by(jane), b.WithTokenAnnotation("note", "x"))}, allow},
		{"an extended expiry counts from the issuance of the value it keeps", TokenRequest{Operation: Update, User: jane,
			Old: issuedAt(now.Add(-20*24*time.Hour), tokenIn("payments", b.TeamToken("strict"), b.WithExpiresAt(now.Add(24*time.Hour)), by(jane))),
			New: tokenIn("payments", b.TeamToken("strict"), b.WithExpiresAt(now.Add(25*24*time.Hour)), by(jane))},
			refuse(`spec.expiresAt: Invalid value`)},
		{"an extended expiry within the maximum from issuance", TokenRequest{Operation: Update, User: jane,
			Old: issuedAt(now.Add(-20*24*time.Hour), tokenIn("payments", b.TeamToken("strict"), b.WithExpiresAt(now.Add(24*time.Hour)), by(jane))),
			New: tokenIn("payments", b.TeamToken("strict"), b.WithExpiresAt(now.Add(9*24*time.Hour)), by(jane))}, allow},
		{"update that breaks policy", TokenRequest{Operation: Update, User: jane,
			Old: tokenIn("payments", b.TeamToken("strict"), b.WithLifetime("7d"), by(jane)), New: tokenIn("payments", b.TeamToken("strict"), b.WithLifetime("60d"), by(jane))},
			refuse(`spec.lifetime: Invalid value: "60d"`)},
		// Delete.
		{"creator deletes their Wildcard token", TokenRequest{Operation: Delete, User: john, Old: tokenIn("orders", by(john))}, allow},
		{"stranger deletes a token", TokenRequest{Operation: Delete, User: eve, Admin: notAdm, Old: tokenIn("orders", by(john))},
			refuse(`metadata: Forbidden: only admins and the token's creator may delete it`)},
		{"team owner deletes a token they did not create", TokenRequest{Operation: Delete, User: jane, Admin: notAdm, Old: teamTok("payments", lead, "payments")},
			refuse(`metadata: Forbidden: only admins and the token's creator may delete it`)},
		{"admin deletes anyone's token", TokenRequest{Operation: Delete, User: root, Admin: AdminYes, Old: tokenIn("orders", by(john))}, allow},
		{"creator deletes an Admin token after demotion", TokenRequest{Operation: Delete, User: root, Admin: notAdm, Old: tokenIn("ops", b.WithType(v1alpha1.AdminTokenType), by(root))},
			refuse(`metadata: Forbidden: only admins may delete Admin tokens`)},
		{"delete of a token without a creator needs an admin", TokenRequest{Operation: Delete, User: jane, Old: tokenIn("payments")}, ask},
		// The cluster's own lifecycle (#11.1): namespace deletion and garbage
		// collection always finish.
		{"the namespace controller deletes anyone's token", TokenRequest{Operation: Delete, User: nsController, Lifecycle: true, Admin: notAdm, Old: tokenIn("ops", b.WithType(v1alpha1.AdminTokenType), by(root))}, allow},
		{"the garbage collector deletes anyone's token", TokenRequest{Operation: Delete, User: collector, Lifecycle: true, Admin: notAdm, Old: teamTok("payments", jane, "payments")}, allow},
		{"the same user names without the configured list are strangers", TokenRequest{Operation: Delete, User: collector, Admin: notAdm, Old: teamTok("payments", jane, "payments")},
			refuse(`metadata: Forbidden: only admins and the token's creator may delete it`)},
		// The creator record is the whole identity (#11.3).
		{"a record with the requester's name but forged groups", TokenRequest{Operation: Create, User: jane, New: tokenIn("payments", b.TeamToken("payments"), by(user("jane", "system:masters")))},
			refuse(`metadata.annotations[auth.tokenwarden.io/creator]: Forbidden: must record the requesting user exactly (username, uid, groups and extra)`)},
		{"a record with the requester's name but another uid", TokenRequest{Operation: Create, User: jane, New: tokenIn("payments", b.TeamToken("payments"), by(&v1alpha1.UserIdentity{Username: "jane", UID: "forged"}))},
			refuse(`metadata.annotations[auth.tokenwarden.io/creator]: Forbidden`)},
		// Wildcard tokens of non-admins keep their creator's teams' policies
		// (#11.7): jane owns strict, which requires expiry and 30 days at most.
		{"an owner's Wildcard token without expiry asks whether they are admin", TokenRequest{Operation: Create, User: jane, New: tokenIn("payments", by(jane))}, ask},
		{"an owner's Wildcard token breaks their team's policy", TokenRequest{Operation: Create, User: jane, Admin: notAdm, New: tokenIn("payments", b.WithLifetime("90d"), b.WithScopes("admin"), by(jane))},
			refuse(`spec.lifetime: Invalid value: "90d": longer than the maxLifetime 30d of team "strict"`, `spec.scopes[0]: Forbidden: scope "admin" is not allowed by team "strict"`)},
		{"an owner's Wildcard token within their teams' policies", TokenRequest{Operation: Create, User: jane, New: tokenIn("payments", b.WithLifetime("7d"), b.WithScopes("orders:read"), by(jane))}, allow},
		{"an admin's Wildcard token follows no team policy", TokenRequest{Operation: Create, User: jane, Admin: AdminYes, New: tokenIn("payments", by(jane))}, allow},
		{"a creator's edit of a Wildcard token keeps the policy", TokenRequest{Operation: Update, User: jane, Admin: notAdm,
			Old: tokenIn("payments", b.WithLifetime("7d"), b.WithScopes("orders:read"), by(jane)), New: tokenIn("payments", b.WithScopes("orders:read"), by(jane))},
			refuse(`spec.lifetime: Required value: team "strict" requires every token to expire`, `team "strict" has a maxLifetime of 30d`)},
		// A recreate by someone entitled makes them the creator (#11.8).
		{"an admin recreates someone's token and becomes its creator", TokenRequest{Operation: Update, User: root, Admin: AdminYes,
			Old: teamTok("payments", jane, "payments"), New: tokenIn("payments", b.TeamToken("payments"), by(root), b.WithRecreate(1))}, allow},
		{"a creator no longer entitled cannot recreate", TokenRequest{Operation: Update, User: jane, Admin: notAdm,
			Old: teamTok("orders", jane, "orders"), New: tokenIn("orders", b.TeamToken("orders"), by(jane), b.WithRecreate(1))},
			refuse(`spec.teams: Forbidden: "jane" is neither an admin nor an owner of team "orders"`)},
		{"a recreate records exactly the one who recreates", TokenRequest{Operation: Update, User: root, Admin: AdminYes,
			Old: teamTok("payments", jane, "payments"), New: tokenIn("payments", b.TeamToken("payments"), by(john), b.WithRecreate(1))},
			refuse(`metadata.annotations[auth.tokenwarden.io/creator]: Forbidden`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			tt.req.Teams = allTeam
			tt.req.Now = now
			d := ReviewToken(tt.req)
			g.Expect(d.Allowed()).To(Equal(tt.want.allowed), "errors: %v", d.Errs)
			g.Expect(d.NeedAdmin).To(Equal(tt.want.needAdmin))
			g.Expect(d.Errs).To(HaveLen(len(tt.want.errs)), "errors: %v", d.Errs)
			for i, want := range tt.want.errs {
				g.Expect(d.Errs[i].Error()).To(ContainSubstring(want))
			}
		})
	}
}

func TestReviewTeam(t *testing.T) {
	withNamespaces := b.Team("payments", b.WithOwners(payments.Spec.Owners...), b.WithNamespaces("payments"))
	withDescription := b.Team("payments", b.WithOwners(payments.Spec.Owners...), b.WithNamespaces(payments.Spec.Namespaces...), b.WithDescription("new"))
	withFinalizer := payments.DeepCopy()
	withFinalizer.Finalizers = []string{"example.com/keep"}
	withLabel := payments.DeepCopy()
	withLabel.Labels = map[string]string{"tier": "gold"}
	tests := []struct {
		name      string
		req       TeamRequest
		allowed   bool
		needAdmin bool
		err       string
	}{
		{"admin creates a Team", TeamRequest{Operation: Create, User: root, Admin: AdminYes, New: payments}, true, false, ""},
		{"non-admin creates a Team", TeamRequest{Operation: Create, User: jane, Admin: notAdm, New: payments}, false, false, "metadata: Forbidden: only admins may create Teams"},
		{"creating a Team asks for admin standing", TeamRequest{Operation: Create, User: jane, New: payments}, false, true, ""},
		{"owner deletes their Team", TeamRequest{Operation: Delete, User: jane, Admin: notAdm, Old: payments}, false, false, "only admins may delete Teams"},
		{"admin deletes a Team", TeamRequest{Operation: Delete, User: root, Admin: AdminYes, Old: payments}, true, false, ""},
		{"owner changes the description", TeamRequest{Operation: Update, User: jane, Old: payments, New: withDescription}, true, false, ""},
		{"group owner changes the description", TeamRequest{Operation: Update, User: lead, Old: payments, New: withDescription}, true, false, ""},
		{"owner changes the namespaces", TeamRequest{Operation: Update, User: jane, Admin: notAdm, Old: payments, New: withNamespaces}, false, false,
			"spec.namespaces: Forbidden: only admins may change a Team's namespaces"},
		{"admin changes the namespaces", TeamRequest{Operation: Update, User: root, Admin: AdminYes, Old: payments, New: withNamespaces}, true, false, ""},
		{"owner of another team edits it", TeamRequest{Operation: Update, User: john, Admin: notAdm, Old: payments, New: withDescription}, false, false,
			`spec: Forbidden: only admins and owners of team "payments" may change it`},
		{"an update that changes nothing", TeamRequest{Operation: Update, User: eve, Admin: notAdm, Old: payments, New: payments.DeepCopy()}, true, false, ""},
		// Nobody but admins and owners changes a Team, metadata included (#11.2).
		{"a stranger adds a finalizer", TeamRequest{Operation: Update, User: eve, Admin: notAdm, Old: payments, New: withFinalizer}, false, false,
			`metadata: Forbidden: only admins and owners of team "payments" may change it, its labels, annotations, finalizers and owner references included`},
		{"a stranger adds a label", TeamRequest{Operation: Update, User: eve, Admin: notAdm, Old: payments, New: withLabel}, false, false, `metadata: Forbidden`},
		{"an owner adds a label", TeamRequest{Operation: Update, User: jane, Old: payments, New: withLabel}, true, false, ""},
		{"an admin adds a finalizer", TeamRequest{Operation: Update, User: root, Admin: AdminYes, Old: payments, New: withFinalizer}, true, false, ""},
		{"the garbage collector removes a finalizer", TeamRequest{Operation: Update, User: collector, Lifecycle: true, Old: withFinalizer, New: payments}, true, false, ""},
		{"the garbage collector deletes a Team", TeamRequest{Operation: Delete, User: collector, Lifecycle: true, Old: payments}, true, false, ""},
		{"the garbage collector may not change a spec", TeamRequest{Operation: Update, User: collector, Lifecycle: true, Admin: notAdm, Old: payments, New: withDescription}, false, false, `spec: Forbidden`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			d := ReviewTeam(tt.req)
			g.Expect(d.Allowed()).To(Equal(tt.allowed), "errors: %v", d.Errs)
			g.Expect(d.NeedAdmin).To(Equal(tt.needAdmin))
			if tt.err != "" {
				g.Expect(d.Errs.ToAggregate().Error()).To(ContainSubstring(tt.err))
			}
		})
	}
}

// FuzzReviewToken feeds the decision arbitrary users, types, teams and
// namespaces. Properties: it never panics; an allowed CREATE always
// satisfies the permission matrix; and knowing the admin answer never
// leaves a decision waiting for it.
func FuzzReviewToken(f *testing.F) {
	f.Add("jane", "payments-leads", "Team", "payments", "orders", "payments", uint8(0), uint8(0))
	f.Add("eve", "", "Wildcard", "", "", "orders", uint8(1), uint8(2))
	f.Add("root", "platform-admins", "Admin", "", "", "ops", uint8(2), uint8(1))
	f.Add("system:serviceaccount:argocd:sync", "x", "Team", "strict", "ghost", "payments", uint8(0), uint8(2))
	f.Fuzz(func(t *testing.T, username, group, typ, team1, team2, namespace string, op, admin uint8) {
		u := user(username, group)
		tok := tokenIn(namespace, b.WithType(v1alpha1.ApiTokenType(typ)), by(u))
		if typ == string(v1alpha1.TeamTokenType) {
			tok.Spec.Teams = []string{team1, team2}
		}
		req := TokenRequest{
			Operation: []Operation{Create, Update, Delete, "CONNECT"}[op%4],
			User:      u, Admin: AdminAnswer(admin % 3), Old: tok, New: tok, Teams: allTeam, Now: now,
		}
		d := ReviewToken(req)
		if req.Admin != AdminUnknown && d.NeedAdmin {
			t.Fatalf("decision waits for an admin answer it was given: %+v", req)
		}
		if req.Operation != Create || !d.Allowed() || req.Admin == AdminYes {
			return
		}
		switch tok.Spec.Type {
		case v1alpha1.AdminTokenType:
			t.Fatalf("a non-admin created an Admin token: %+v", req)
		case v1alpha1.TeamTokenType:
			for _, name := range tok.Spec.Teams {
				team, ok := allTeam[name]
				if !ok || !IsOwner(team, u) {
					t.Fatalf("a non-admin created a Team token of team %q they do not own", name)
				}
			}
		case v1alpha1.WildcardTokenType:
			if !ownsTeamIn(allTeam, u, namespace) {
				t.Fatalf("a non-admin created a Wildcard token in %q without owning a team there", namespace)
			}
		default:
			t.Fatalf("a token of unknown type %q was allowed", typ)
		}
	})
}
