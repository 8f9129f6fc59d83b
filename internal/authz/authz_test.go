package authz

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
)

func user(name string, groups ...string) *v1alpha1.UserIdentity {
	return &v1alpha1.UserIdentity{Username: name, Groups: groups}
}

func teamsOf(teams ...*v1alpha1.Team) Teams {
	out := Teams{}
	for _, t := range teams {
		out[t.Name] = t
	}
	return out
}

func TestMatches(t *testing.T) {
	tests := []struct {
		name    string
		subject v1alpha1.Subject
		user    *v1alpha1.UserIdentity
		want    bool
	}{
		{"user by name", b.User("jane"), user("jane"), true},
		{"another user", b.User("jane"), user("john"), false},
		{"user name is not a group", b.User("devs"), user("john", "devs"), false},
		{"group by membership", b.Group("devs"), user("john", "ops", "devs"), true},
		{"group name is not a user", b.Group("john"), user("john"), false},
		{"service account by its user name", b.ServiceAccount("argocd", "sync"), user("system:serviceaccount:argocd:sync"), true},
		{"service account in another namespace", b.ServiceAccount("argocd", "sync"), user("system:serviceaccount:flux:sync"), false},
		{"service account name alone is not enough", b.ServiceAccount("argocd", "sync"), user("sync"), false},
		{"nobody", b.User("jane"), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(Matches(tt.subject, tt.user)).To(Equal(tt.want))
		})
	}
}

func TestEntitled(t *testing.T) {
	payments := b.Team("payments", b.WithOwners(b.User("jane"), b.Group("payments-leads")), b.WithNamespaces("ns"))
	orders := b.Team("orders", b.WithOwners(b.User("john")), b.WithNamespaces("ns", "orders"))
	deleting := b.Team("deleting", b.WithOwners(b.User("jane")), b.WithNamespaces("ns"))
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	deleting.Finalizers = []string{"example.com/stranger"}
	all := TeamsOf([]v1alpha1.Team{*payments, *orders, *deleting})
	teamToken := func(teams ...string) Token { return Token{Namespace: "ns", Type: v1alpha1.TeamTokenType, Teams: teams} }
	wildcard := Token{Namespace: "ns", Type: v1alpha1.WildcardTokenType}
	admin := Token{Namespace: "ns", Type: v1alpha1.AdminTokenType}
	type want struct {
		allowed, needAdmin bool
		reason, message    string
	}
	allow := want{allowed: true}
	ask := want{needAdmin: true}
	tests := []struct {
		name    string
		tok     Token
		creator *v1alpha1.UserIdentity
		teams   Teams
		admin   AdminAnswer
		want    want
	}{
		{"owner of the only team", teamToken("payments"), user("jane"), all, AdminUnknown, allow},
		{"owner through a group", teamToken("payments"), user("bob", "payments-leads"), all, AdminUnknown, allow},
		{"owner of one of two teams asks for admin standing", teamToken("payments", "orders"), user("jane"), all, AdminUnknown, ask},
		{"owner of one of two teams, not admin", teamToken("payments", "orders"), user("jane"), all, AdminNo,
			want{reason: v1alpha1.ReasonCreatorNotOwner, message: `"jane" is neither an admin nor an owner of team "orders"`}},
		{"owner of one of two teams, admin", teamToken("payments", "orders"), user("jane"), all, AdminYes, allow},
		{"deleted team, even for an admin", teamToken("payments", "gone"), user("jane"), all, AdminYes,
			want{reason: v1alpha1.ReasonTeamDeleted, message: `team "gone" does not exist or is being deleted`}},
		{"a team being deleted counts as deleted, whatever holds it", teamToken("deleting"), user("jane"), all, AdminYes,
			want{reason: v1alpha1.ReasonTeamDeleted, message: `team "deleting" does not exist or is being deleted`}},
		{"namespace no longer allowed, even for an admin", Token{Namespace: "orders", Type: v1alpha1.TeamTokenType, Teams: []string{"payments"}}, user("jane"), all, AdminYes,
			want{reason: v1alpha1.ReasonNamespaceNotAllowed, message: `team "payments" does not allow tokens in namespace "orders"`}},
		{"wildcard by an owner of a team of its namespace", wildcard, user("john"), all, AdminUnknown, allow},
		{"wildcard by an owner, outside their namespaces", Token{Namespace: "elsewhere", Type: v1alpha1.WildcardTokenType}, user("john"), all, AdminNo,
			want{reason: v1alpha1.ReasonNamespaceNotAllowed, message: `"john" is not an admin and owns no team that allows namespace "elsewhere"`}},
		{"wildcard by a non-owner, not admin", wildcard, user("eve"), all, AdminNo,
			want{reason: v1alpha1.ReasonCreatorNotOwner, message: `"eve" is neither an admin nor an owner of any team`}},
		{"wildcard by an admin owning nothing", wildcard, user("root"), Teams{}, AdminYes, allow},
		{"admin token asks for admin standing", admin, user("jane"), all, AdminUnknown, ask},
		{"admin token, creator still admin", admin, user("root"), all, AdminYes, allow},
		{"admin token, creator demoted", admin, user("root"), all, AdminNo,
			want{reason: v1alpha1.ReasonCreatorNotAdmin, message: `"root" is not a Tokenwarden admin`}},
		{"no creator recorded", teamToken("payments"), nil, all, AdminYes,
			want{reason: v1alpha1.ReasonCreatorUnknown, message: "the token has no valid auth.tokenwarden.io/creator annotation, so its creator cannot be checked"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			v := Entitled(tt.tok, tt.creator, tt.teams, tt.admin)
			g.Expect(v.Allowed()).To(Equal(tt.want.allowed), "%v", v.Errs)
			g.Expect(v.NeedAdmin).To(Equal(tt.want.needAdmin))
			g.Expect(v.Reason).To(Equal(tt.want.reason))
			if tt.want.message != "" {
				g.Expect(v.Message()).To(ContainSubstring(tt.want.message))
			}
		})
	}
}

func TestCheckPolicy(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	strict := b.Team("strict", b.WithPolicy("30d", true, "orders:*", "refunds:read"))
	lax := b.Team("lax")
	teams := teamsOf(strict, lax)
	tests := []struct {
		name  string
		token *v1alpha1.ApiToken
		want  []string // substrings, one per expected error, in order
	}{
		{"within every rule", b.ApiToken("t", "ns", b.TeamToken("strict"), b.WithLifetime("30d"), b.WithScopes("orders:read", "refunds:read")), nil},
		{"no policy, no rules", b.ApiToken("t", "ns", b.TeamToken("lax"), b.WithScopes("anything")), nil},
		{"expiry required", b.ApiToken("t", "ns", b.TeamToken("strict")),
			[]string{`spec.lifetime: Required value: team "strict" requires every token to expire`, `spec.lifetime: Required value: team "strict" has a maxLifetime of 30d`}},
		{"lifetime too long", b.ApiToken("t", "ns", b.TeamToken("strict"), b.WithLifetime("31d")),
			[]string{`spec.lifetime: Invalid value: "31d": longer than the maxLifetime 30d of team "strict"`}},
		{"expiresAt too far", b.ApiToken("t", "ns", b.TeamToken("strict"), b.WithExpiresAt(now.Add(40*24*time.Hour))),
			[]string{`spec.expiresAt: Invalid value: "2027-01-02T00:00:00Z": further away than the maxLifetime 30d of team "strict"`}},
		{"scope outside the globs", b.ApiToken("t", "ns", b.TeamToken("strict", "lax"), b.WithLifetime("1d"), b.WithScopes("orders:write", "refunds:write")),
			[]string{`spec.scopes[1]: Forbidden: scope "refunds:write" is not allowed by team "strict"`}},
		{"a token of no team follows no team policy", b.ApiToken("t", "ns", b.WithScopes("refunds:write")), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			errs := CheckPolicy(&tt.token.Spec, tt.token.Spec.Teams, teams, now)
			g.Expect(errs).To(HaveLen(len(tt.want)), "%v", errs)
			for i, want := range tt.want {
				g.Expect(errs[i].Error()).To(ContainSubstring(want))
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"orders:*", "orders:read", true},
		{"orders:*", "orders:", true},
		{"orders:*", "order:read", false},
		{"*", "deploy/staging", true},
		{"deploy/*", "deploy/staging/eu", true},
		{"deploy/?", "deploy/a", true},
		{"deploy/?", "deploy/ab", false},
		{"*:read", "orders:read", true},
		{"*:read", "orders:write", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"", "", true},
		{strings.Repeat("*a", 30) + "b", strings.Repeat("a", 100), false}, // linear, not exponential
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.s, func(t *testing.T) {
			NewWithT(t).Expect(GlobMatch(tt.pattern, tt.s)).To(Equal(tt.want))
		})
	}
}

func TestCreatorRoundTrip(t *testing.T) {
	g := NewWithT(t)
	want := &v1alpha1.UserIdentity{Username: "jane", UID: "42", Groups: []string{"devs"}, Extra: map[string][]string{"scopes": {"a"}}}
	value, err := CreatorAnnotationValue(want)
	g.Expect(err).NotTo(HaveOccurred())
	obj := &metav1.ObjectMeta{Annotations: map[string]string{v1alpha1.CreatorAnnotation: value}}
	got, err := CreatorOf(obj)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal(want))

	got, err = CreatorOf(&metav1.ObjectMeta{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(BeNil())

	_, err = CreatorOf(&metav1.ObjectMeta{Annotations: map[string]string{v1alpha1.CreatorAnnotation: "jane"}})
	g.Expect(err).To(MatchError(ContainSubstring("not a JSON user identity")))
	_, err = CreatorOf(&metav1.ObjectMeta{Annotations: map[string]string{v1alpha1.CreatorAnnotation: "{}"}})
	g.Expect(err).To(MatchError(ContainSubstring("no username")))
}

func TestOwnerKeysMeetSubjectKeys(t *testing.T) {
	g := NewWithT(t)
	keys := OwnerKeys(user("system:serviceaccount:argocd:sync", "devs"))
	g.Expect(keys).To(ContainElement(SubjectKey(b.ServiceAccount("argocd", "sync"))))
	g.Expect(keys).To(ContainElement(SubjectKey(b.Group("devs"))))
	g.Expect(keys).NotTo(ContainElement(SubjectKey(b.User("devs"))))
}

func TestSameIdentity(t *testing.T) {
	g := NewWithT(t)
	jane := &v1alpha1.UserIdentity{Username: "jane", UID: "1", Groups: []string{"a", "b"}, Extra: map[string][]string{"scopes": {"x"}}}
	g.Expect(SameIdentity(jane, jane.DeepCopy())).To(BeTrue())
	reordered := jane.DeepCopy()
	reordered.Groups = []string{"b", "a"}
	g.Expect(SameIdentity(jane, reordered)).To(BeTrue(), "groups in any order")
	for name, change := range map[string]func(*v1alpha1.UserIdentity){
		"another uid":       func(u *v1alpha1.UserIdentity) { u.UID = "2" },
		"one more group":    func(u *v1alpha1.UserIdentity) { u.Groups = append(u.Groups, "system:masters") },
		"other extra":       func(u *v1alpha1.UserIdentity) { u.Extra["scopes"] = []string{"y"} },
		"a group for extra": func(u *v1alpha1.UserIdentity) { u.Groups, u.Extra = []string{"a", "b", "scopes", "1", "x"}, nil },
	} {
		other := jane.DeepCopy()
		change(other)
		g.Expect(SameIdentity(jane, other)).To(BeFalse(), name)
	}
	g.Expect(SameIdentity(&v1alpha1.UserIdentity{Username: "u"}, &v1alpha1.UserIdentity{Username: "u", Groups: []string{}, Extra: map[string][]string{}})).To(BeTrue(), "empty is missing")
	g.Expect(SameIdentity(nil, jane)).To(BeFalse())
}

func TestIsLifecycleController(t *testing.T) {
	g := NewWithT(t)
	g.Expect(IsLifecycleController(user("system:serviceaccount:kube-system:namespace-controller"), DefaultLifecycleControllers)).To(BeTrue())
	g.Expect(IsLifecycleController(user("system:serviceaccount:kube-system:generic-garbage-collector"), DefaultLifecycleControllers)).To(BeTrue())
	g.Expect(IsLifecycleController(user("system:serviceaccount:default:namespace-controller"), DefaultLifecycleControllers)).To(BeFalse())
	g.Expect(IsLifecycleController(user("namespace-controller"), DefaultLifecycleControllers)).To(BeFalse())
	g.Expect(IsLifecycleController(nil, DefaultLifecycleControllers)).To(BeFalse())
}
