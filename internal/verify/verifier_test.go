package verify

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz/authztest"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// deleting returns team with a deletionTimestamp and a finalizer that keeps
// it from going away.
func deleting(team *v1alpha1.Team) *v1alpha1.Team {
	team = team.DeepCopy()
	team.DeletionTimestamp = &metav1.Time{Time: t0}
	team.Finalizers = []string{"example.com/stranger"}
	return team
}

func TestVerify(t *testing.T) {
	payments := b.Team("payments", b.WithOwners(b.User("jane")), b.WithNamespaces("ns", "payments"))
	orders := b.Team("orders", b.WithOwners(b.Group("order-leads")), b.WithNamespaces("ns", "payments"))
	billing := b.Team("billing", b.WithOwners(b.User("bob")), b.WithNamespaces("ns", "payments"))
	teams := teamsFunc(payments, orders, billing)
	allTeams := []string{"billing", "orders", "payments"}

	expires := t0.Add(time.Hour)
	overlapEnd := t0.Add(10 * time.Minute)
	teamOpts := []b.ApiTokenOption{b.TeamToken("payments", "orders"), b.WithScopes("read:orders", "write:orders")}
	adminOpts := []b.ApiTokenOption{b.WithType(v1alpha1.AdminTokenType)}

	// tokenCase is an ApiToken issued with a value of typ.
	type tokenCase struct {
		typ    v1alpha1.ApiTokenType
		opts   []b.ApiTokenOption
		status []b.ApiTokenOption
	}
	tests := []struct {
		name string
		tok  *tokenCase
		// value overrides the value presented; present picks "current" or
		// "previous" of the token, "" meaning current.
		value   string
		present string
		at      time.Time
		teams   TeamSource
		admins  *authztest.Admins
		// wantTeams is checked when wantReason is "".
		wantReason string
		wantTeams  []string
		wantExpiry *time.Time
		wantAsked  int
	}{
		{name: "missing", value: "", present: "literal", wantReason: ReasonMissing},
		{name: "garbage", value: "hunter2", present: "literal", wantReason: ReasonMalformed},
		{name: "another installation's base", value: "xx" + b.NewValue(t, v1alpha1.TeamTokenType)[2:], present: "literal", wantReason: ReasonMalformed},
		{name: "a typo breaks the checksum", value: typo(b.NewValue(t, v1alpha1.TeamTokenType)), present: "literal", wantReason: ReasonMalformed},
		{name: "well-formed but never issued", value: b.NewValue(t, v1alpha1.TeamTokenType), present: "literal", wantReason: ReasonUnknown},
		{
			name:       "active team token",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithExpiry(expires)}},
			wantTeams:  []string{"payments", "orders"},
			wantExpiry: &expires,
		},
		{
			name:       "one nanosecond before expiry",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithExpiry(expires)}},
			at:         expires.Add(-time.Nanosecond),
			wantTeams:  []string{"payments", "orders"},
			wantExpiry: &expires,
		},
		{
			name:       "expired on the exact instant, before any reconcile",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithExpiry(expires)}},
			at:         expires,
			wantReason: ReasonExpired,
		},
		{
			name:       "disabled",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithPhase(v1alpha1.PhaseDisabled)}},
			wantReason: ReasonDisabled,
		},
		{
			name:       "invalidated",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithPhase(v1alpha1.PhaseInvalidated)}},
			wantReason: ReasonInvalidated,
		},
		{
			name:       "phase Expired",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithPhase(v1alpha1.PhaseExpired)}},
			wantReason: ReasonExpired,
		},
		{
			name:       "pending",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithPhase(v1alpha1.PhasePending)}},
			wantReason: ReasonNotActive,
		},
		{
			name:       "failed",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithPhase(v1alpha1.PhaseFailed)}},
			wantReason: ReasonNotActive,
		},
		{
			name:       "no phase yet",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithPhase("")}},
			wantReason: ReasonNotActive,
		},
		{
			name:       "previous value within its overlap",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithExpiry(expires)}},
			present:    "previous",
			at:         overlapEnd.Add(-time.Second),
			wantTeams:  []string{"payments", "orders"},
			wantExpiry: &overlapEnd,
		},
		{
			name:       "previous value when its overlap ends",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithExpiry(expires)}},
			present:    "previous",
			at:         overlapEnd,
			wantReason: ReasonExpired,
		},
		{
			name:       "previous value of a disabled token",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithPhase(v1alpha1.PhaseDisabled)}},
			present:    "previous",
			wantReason: ReasonDisabled,
		},
		{
			name:       "previous value of an invalidated token",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithPhase(v1alpha1.PhaseInvalidated)}},
			present:    "previous",
			wantReason: ReasonInvalidated,
		},
		{
			name:       "the value's type letter must match spec.type",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: adminOpts},
			wantReason: ReasonUnknown,
		},
		{
			name:      "wildcard token of an owner: the teams owned now",
			tok:       &tokenCase{typ: v1alpha1.WildcardTokenType, status: []b.ApiTokenOption{b.WithCreator("jane", "order-leads")}},
			admins:    &authztest.Admins{},
			wantTeams: []string{"orders", "payments"},
			wantAsked: 1,
		},
		{
			name:      "wildcard token of an admin: every team",
			tok:       &tokenCase{typ: v1alpha1.WildcardTokenType, status: []b.ApiTokenOption{b.WithCreator("boss")}},
			admins:    &authztest.Admins{Names: map[string]bool{"boss": true}},
			wantTeams: allTeams,
			wantAsked: 1,
		},
		{
			name:      "wildcard token of an owner of every team asks no admin check",
			tok:       &tokenCase{typ: v1alpha1.WildcardTokenType, status: []b.ApiTokenOption{b.WithCreator("jane", "order-leads")}},
			teams:     teamsFunc(payments, orders),
			admins:    &authztest.Admins{},
			wantTeams: []string{"orders", "payments"},
			wantAsked: 0,
		},
		{
			name:       "wildcard token whose creator owns nothing any more is refused at once",
			tok:        &tokenCase{typ: v1alpha1.WildcardTokenType, status: []b.ApiTokenOption{b.WithCreator("gone")}},
			admins:     &authztest.Admins{},
			wantReason: ReasonInvalidated,
			wantAsked:  1,
		},
		{
			name:       "team token whose creator is no longer an owner is refused at once",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithCreator("gone")}},
			admins:     &authztest.Admins{},
			wantReason: ReasonInvalidated,
			wantAsked:  1,
		},
		{
			name:      "team token of an admin who owns none of its teams",
			tok:       &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithCreator("boss")}},
			admins:    &authztest.Admins{Names: map[string]bool{"boss": true}},
			wantTeams: []string{"payments", "orders"},
			wantAsked: 1,
		},
		{
			name:       "team token whose team was deleted, even for an admin",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithCreator("boss")}},
			teams:      teamsFunc(payments),
			admins:     &authztest.Admins{Names: map[string]bool{"boss": true}},
			wantReason: ReasonInvalidated,
			wantAsked:  0,
		},
		{
			name:       "team token whose team is being deleted, whatever finalizer holds it",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithCreator("jane", "order-leads")}},
			teams:      teamsFunc(deleting(payments), orders),
			admins:     &authztest.Admins{},
			wantReason: ReasonInvalidated,
			wantAsked:  0,
		},
		{
			name:       "team token in a namespace its team no longer allows",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithCreator("jane", "order-leads")}},
			teams:      teamsFunc(b.Team("payments", b.WithOwners(b.User("jane")), b.WithNamespaces("elsewhere")), orders),
			admins:     &authztest.Admins{},
			wantReason: ReasonInvalidated,
			wantAsked:  0,
		},
		{
			name:      "wildcard token of an owner leaves out a team whose policy it breaks",
			tok:       &tokenCase{typ: v1alpha1.WildcardTokenType, opts: []b.ApiTokenOption{b.WithScopes("refunds:write")}, status: []b.ApiTokenOption{b.WithCreator("jane")}},
			teams:     teamsFunc(payments, orders, b.Team("strict", b.WithOwners(b.User("jane")), b.WithNamespaces("ns"), b.WithPolicy("", false, "orders:*"))),
			admins:    &authztest.Admins{},
			wantTeams: []string{"payments"},
			wantAsked: 1,
		},
		{
			name:      "wildcard token of an admin speaks for a team whose policy it breaks",
			tok:       &tokenCase{typ: v1alpha1.WildcardTokenType, opts: []b.ApiTokenOption{b.WithScopes("refunds:write")}, status: []b.ApiTokenOption{b.WithCreator("boss")}},
			teams:     teamsFunc(payments, b.Team("strict", b.WithOwners(b.User("jane")), b.WithNamespaces("ns"), b.WithPolicy("", false, "orders:*"))),
			admins:    &authztest.Admins{Names: map[string]bool{"boss": true}},
			wantTeams: []string{"payments", "strict"},
			wantAsked: 1,
		},
		{
			name:       "token without a recorded creator",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithoutCreator()}},
			admins:     &authztest.Admins{},
			wantReason: ReasonInvalidated,
		},
		{
			name:       "token whose creator annotation names nobody",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithCreator("")}},
			admins:     &authztest.Admins{},
			wantReason: ReasonInvalidated,
		},
		{
			name: "an admin named only in status.creator lends no standing",
			tok: &tokenCase{typ: v1alpha1.AdminTokenType, opts: adminOpts,
				status: []b.ApiTokenOption{b.WithCreator("jane"), b.WithStatusCreator("boss")}},
			admins:     &authztest.Admins{Names: map[string]bool{"boss": true}},
			wantReason: ReasonInvalidated,
			wantAsked:  1,
		},
		{
			name: "status.creator cannot take the standing away either",
			tok: &tokenCase{typ: v1alpha1.AdminTokenType, opts: adminOpts,
				status: []b.ApiTokenOption{b.WithCreator("boss"), b.WithStatusCreator("gone")}},
			admins:    &authztest.Admins{Names: map[string]bool{"boss": true}},
			wantTeams: []string{},
			wantAsked: 1,
		},
		{
			name:       "wildcard token when the admin check fails",
			tok:        &tokenCase{typ: v1alpha1.WildcardTokenType, status: []b.ApiTokenOption{b.WithCreator("jane")}},
			admins:     &authztest.Admins{Err: errors.New("SubjectAccessReview timed out")},
			wantReason: ReasonUnavailable,
			wantAsked:  1,
		},
		{
			name:       "wildcard token when the Team cache fails",
			tok:        &tokenCase{typ: v1alpha1.WildcardTokenType, status: []b.ApiTokenOption{b.WithCreator("jane")}},
			teams:      failingTeams,
			wantReason: ReasonUnavailable,
		},
		{
			name:      "admin token of an admin: associated with no team",
			tok:       &tokenCase{typ: v1alpha1.AdminTokenType, opts: adminOpts, status: []b.ApiTokenOption{b.WithCreator("boss")}},
			admins:    &authztest.Admins{Names: map[string]bool{"boss": true}},
			wantTeams: []string{},
			wantAsked: 1,
		},
		{
			name:       "admin token of a demoted admin is refused at once",
			tok:        &tokenCase{typ: v1alpha1.AdminTokenType, opts: adminOpts, status: []b.ApiTokenOption{b.WithCreator("boss")}},
			admins:     &authztest.Admins{},
			wantReason: ReasonInvalidated,
			wantAsked:  1,
		},
		{
			name:       "spec.disabled refuses before the reconciler sets the phase",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithDisabled(true)}},
			wantReason: ReasonDisabled,
		},
		{
			name:       "spec.disabled refuses the previous value too",
			tok:        &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts, status: []b.ApiTokenOption{b.WithDisabled(true)}},
			present:    "previous",
			wantReason: ReasonDisabled,
		},
		{
			name: "an expiry brought forward in the spec refuses before any reconcile",
			tok: &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts,
				status: []b.ApiTokenOption{b.WithExpiry(t0.Add(-time.Second)), b.WithStatusExpiry(expires)}},
			wantReason: ReasonExpired,
		},
		{
			name: "an expiry moved later in the spec verifies again though the status's has passed",
			tok: &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts,
				status: []b.ApiTokenOption{b.WithExpiry(expires), b.WithStatusExpiry(t0.Add(-time.Minute))}},
			wantTeams:  []string{"payments", "orders"},
			wantExpiry: &expires,
		},
		{
			name: "an expiry removed from the spec verifies again though the status's has passed",
			tok: &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts,
				status: []b.ApiTokenOption{b.WithStatusExpiry(t0.Add(-time.Minute))}},
			wantTeams: []string{"payments", "orders"},
		},
		{
			name: "a lifetime lengthened in the spec verifies again though the status's expiry has passed",
			tok: &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts,
				status: []b.ApiTokenOption{b.WithIssuedLifetime("2h", t0.Add(-90*time.Minute)), b.WithStatusExpiry(t0.Add(-30 * time.Minute))}},
			wantTeams:  []string{"payments", "orders"},
			wantExpiry: ptr(t0.Add(30 * time.Minute)),
		},
		{
			name: "a lifetime shortened in the spec refuses on the instant it implies",
			tok: &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts,
				status: []b.ApiTokenOption{b.WithIssuedLifetime("30m", t0.Add(-30*time.Minute)), b.WithStatusExpiry(t0.Add(30 * time.Minute))}},
			wantReason: ReasonExpired,
		},
		{
			name: "an expired token whose spec moved the expiry later still refuses: its value is gone",
			tok: &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts,
				status: []b.ApiTokenOption{b.WithPhase(v1alpha1.PhaseExpired), b.WithExpiry(expires), b.WithStatusExpiry(t0.Add(-time.Minute))}},
			wantReason: ReasonExpired,
		},
		{
			name: "the previous value ends with the token when the spec ends it sooner",
			tok: &tokenCase{typ: v1alpha1.TeamTokenType, opts: teamOpts,
				status: []b.ApiTokenOption{b.WithExpiry(t0.Add(-time.Second)), b.WithStatusExpiry(expires)}},
			present:    "previous",
			wantReason: ReasonExpired,
		},
		{
			name:       "a refused token does not need its teams",
			tok:        &tokenCase{typ: v1alpha1.WildcardTokenType, status: []b.ApiTokenOption{b.WithPhase(v1alpha1.PhaseDisabled)}},
			teams:      failingTeams,
			wantReason: ReasonDisabled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ix := NewIndex()
			value := tt.value
			if tt.tok != nil {
				current := b.NewValue(t, tt.tok.typ)
				prev := b.NewValue(t, tt.tok.typ)
				status := append([]b.ApiTokenOption{b.WithPrevious(prev, overlapEnd), b.WithCreator("jane", "order-leads")}, tt.tok.status...)
				ix.Upsert(b.Issued("tok", "ns", current, tt.tok.opts, status...))
				value = current
				if tt.present == "previous" {
					value = prev
				}
			}
			at := tt.at
			if at.IsZero() {
				at = t0
			}
			v := &Verifier{Index: ix, Clock: clocktesting.NewFakePassiveClock(at), Teams: teams}
			if tt.teams != nil {
				v.Teams = tt.teams
			}
			if tt.admins != nil {
				v.Admins = tt.admins
			}

			id, reason := v.Verify(context.Background(), value)
			g.Expect(reason).To(Equal(tt.wantReason))
			if tt.admins != nil {
				g.Expect(tt.admins.Asked()).To(Equal(tt.wantAsked))
			}
			if tt.wantReason != "" {
				g.Expect(id).To(BeZero())
				return
			}
			g.Expect(id.User).To(Equal("tokenwarden:ns:tok:uid-tok"))
			g.Expect(id.Type).To(Equal(string(tt.tok.typ)))
			g.Expect(id.Teams).To(Equal(tt.wantTeams))
			if tt.wantExpiry == nil {
				g.Expect(id.ExpiresAt).To(BeNil())
			} else {
				g.Expect(id.ExpiresAt).To(HaveValue(Equal(*tt.wantExpiry)))
			}
		})
	}
}

func TestVerifyIdentity(t *testing.T) {
	g := NewWithT(t)
	value := b.NewValue(t, v1alpha1.TeamTokenType)
	expires := t0.Add(time.Hour)
	ix := NewIndex()
	ix.Upsert(b.Issued("ci", "payments", value,
		[]b.ApiTokenOption{b.TeamToken("payments"), b.WithScopes("read:orders")},
		b.WithCreator("jane@example.com", "devs"), b.WithExpiry(expires)))
	v := &Verifier{Index: ix, Clock: clocktesting.NewFakePassiveClock(t0),
		Teams: teamsFunc(b.Team("payments", b.WithOwners(b.Group("devs")), b.WithNamespaces("ns", "payments")))}

	id, reason := v.Verify(context.Background(), value)
	g.Expect(reason).To(BeEmpty())
	g.Expect(id).To(Equal(Identity{
		User:      "tokenwarden:payments:ci:uid-ci",
		Name:      "ci",
		Namespace: "payments",
		UID:       "uid-ci",
		Type:      "Team",
		Teams:     []string{"payments"},
		Scopes:    []string{"read:orders"},
		ExpiresAt: &expires,
		Creator:   "jane@example.com",
	}))

	// The identity shares the index's slices rather than copying them.
	again, _ := v.Verify(context.Background(), value)
	g.Expect(&again.Teams[0]).To(BeIdenticalTo(&id.Teams[0]))
	g.Expect(&again.Scopes[0]).To(BeIdenticalTo(&id.Scopes[0]))
	g.Expect(again.ExpiresAt).To(BeIdenticalTo(id.ExpiresAt))
}

// An ApiToken deleted and created again under the same name is another
// object, with another uid: it must be another user, or it would inherit
// every RBAC binding made for the one before, whatever the types.
func TestVerifyUserIsNewForARecreatedToken(t *testing.T) {
	g := NewWithT(t)
	admins := &authztest.Admins{Names: map[string]bool{"boss": true}}
	v := &Verifier{Index: NewIndex(), Clock: clocktesting.NewFakePassiveClock(t0),
		Teams:  teamsFunc(b.Team("payments", b.WithOwners(b.User("jane")), b.WithNamespaces("payments"))),
		Admins: admins}

	adminValue := b.NewValue(t, v1alpha1.AdminTokenType)
	v.Index.Upsert(b.Issued("ci", "payments", adminValue, []b.ApiTokenOption{b.WithType(v1alpha1.AdminTokenType)},
		b.WithCreator("boss"), b.WithUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")))
	admin, reason := v.Verify(context.Background(), adminValue)
	g.Expect(reason).To(BeEmpty())
	g.Expect(admin.User).To(Equal("tokenwarden:payments:ci:1b4e28ba-2fa1-11d2-883f-0016d3cca427"))
	g.Expect(admin.UID).To(Equal("1b4e28ba-2fa1-11d2-883f-0016d3cca427"))

	v.Index.Delete(key("payments", "ci"))
	teamValue := b.NewValue(t, v1alpha1.TeamTokenType)
	v.Index.Upsert(b.Issued("ci", "payments", teamValue, []b.ApiTokenOption{b.TeamToken("payments")},
		b.WithCreator("jane"), b.WithUID("6fa459ea-ee8a-3ca4-894e-db77e160355e")))
	team, reason := v.Verify(context.Background(), teamValue)
	g.Expect(reason).To(BeEmpty())
	g.Expect(team.User).To(Equal("tokenwarden:payments:ci:6fa459ea-ee8a-3ca4-894e-db77e160355e"))
	g.Expect(team.UID).To(Equal("6fa459ea-ee8a-3ca4-894e-db77e160355e"))
	g.Expect(team.User).NotTo(Equal(admin.User))
}

func TestVerifyAllocations(t *testing.T) {
	teamValue := b.NewValue(t, v1alpha1.TeamTokenType)
	wildcardValue := b.NewValue(t, v1alpha1.WildcardTokenType)
	extendedValue := b.NewValue(t, v1alpha1.TeamTokenType)
	disabledValue := b.NewValue(t, v1alpha1.TeamTokenType)
	teamOpts := []b.ApiTokenOption{b.TeamToken("payments", "orders"), b.WithScopes("read:orders")}
	ix := NewIndex()
	ix.Upsert(b.Issued("team", "ns", teamValue, teamOpts, b.WithCreator("jane"), b.WithExpiry(t0.Add(time.Hour))))
	ix.Upsert(b.Issued("wildcard", "ns", wildcardValue, nil, b.WithCreator("jane")))
	ix.Upsert(b.Issued("extended", "ns", extendedValue, teamOpts, b.WithCreator("jane"),
		b.WithIssuedLifetime("2h", t0.Add(-90*time.Minute)), b.WithStatusExpiry(t0.Add(-30*time.Minute))))
	ix.Upsert(b.Issued("disabled", "ns", disabledValue, teamOpts, b.WithCreator("jane"), b.WithDisabled(true)))
	v := &Verifier{
		Index: ix,
		Clock: clocktesting.NewFakePassiveClock(t0),
		Teams: teamsFunc(b.Team("payments", b.WithOwners(b.User("jane")), b.WithNamespaces("ns", "payments")), b.Team("orders", b.WithOwners(b.User("jane")), b.WithNamespaces("ns", "payments"))),
	}
	tests := []struct {
		name       string
		value      string
		wantAllocs float64
	}{
		{"team token", teamValue, 0},
		{"unknown", b.NewValue(t, v1alpha1.TeamTokenType), 0},
		{"malformed", "hunter2", 0},
		{"an expiry the spec moved later", extendedValue, 0},
		{"disabled in the spec", disabledValue, 0},
		// Its teams are decided now, into new lists.
		{"wildcard token", wildcardValue, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, reason := v.Verify(context.Background(), tt.value)
			if tt.value == extendedValue {
				g.Expect(reason).To(BeEmpty(), "the case must measure a verification")
			}
			allocs := testing.AllocsPerRun(100, func() { v.Verify(context.Background(), tt.value) })
			g.Expect(allocs).To(BeNumerically("<=", tt.wantAllocs))
		})
	}
}

func TestVerifyEmptyListsAreNotNull(t *testing.T) {
	g := NewWithT(t)
	// An Admin token speaks for no team.
	value := b.NewValue(t, v1alpha1.AdminTokenType)
	ix := NewIndex()
	ix.Upsert(b.Issued("w", "ns", value, []b.ApiTokenOption{b.WithType(v1alpha1.AdminTokenType)}, b.WithCreator("boss")))
	v := &Verifier{Index: ix, Clock: clock.RealClock{}, Teams: teamsFunc(), Admins: &authztest.Admins{Names: map[string]bool{"boss": true}}}

	id, reason := v.Verify(context.Background(), value)
	g.Expect(reason).To(BeEmpty())
	g.Expect(id.Teams).NotTo(BeNil())
	g.Expect(id.Scopes).NotTo(BeNil())
}

func TestVerifyWithoutIndex(t *testing.T) {
	g := NewWithT(t)
	_, reason := (&Verifier{Clock: clock.RealClock{}}).Verify(context.Background(), b.NewValue(t, v1alpha1.TeamTokenType))
	g.Expect(reason).To(Equal(ReasonUnknown))
}

func TestVerifyCustomFormat(t *testing.T) {
	g := NewWithT(t)
	f := token.Format{Base: "acme"}
	value, err := f.Generate(v1alpha1.TeamTokenType)
	g.Expect(err).NotTo(HaveOccurred())
	ix := NewIndex()
	ix.Upsert(b.Issued("tok", "ns", value, []b.ApiTokenOption{b.TeamToken("a")}, b.WithCreator("jane")))
	teams := teamsFunc(b.Team("a", b.WithOwners(b.User("jane")), b.WithNamespaces("ns", "payments")))

	_, reason := (&Verifier{Index: ix, Format: f, Clock: clock.RealClock{}, Teams: teams}).Verify(context.Background(), value)
	g.Expect(reason).To(BeEmpty())
	_, reason = (&Verifier{Index: ix, Clock: clock.RealClock{}, Teams: teams}).Verify(context.Background(), value)
	g.Expect(reason).To(Equal(ReasonMalformed))
}

// typo changes one character of the random part of value, keeping its
// shape, as a person copying it by hand might.
func typo(value string) string {
	i := len(value) - 10
	c := byte('A')
	if value[i] == 'A' {
		c = 'B'
	}
	return value[:i] + string(c) + value[i+1:]
}
