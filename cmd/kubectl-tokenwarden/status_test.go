package main

import (
	"context"
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// statusTokens cover every column's cases; the expected tables below list
// them in the order status must sort them.
func statusTokens() []client.Object {
	const day = 24 * time.Hour
	return []client.Object{
		apiToken("payments", "ops-admin", withType(v1alpha1.AdminTokenType),
			withPhase(v1alpha1.PhaseDisabled, v1alpha1.ReasonDisabled)),
		apiToken("payments", "jane-ci", withExpiry(3*day+4*time.Hour+30*time.Minute),
			withLastUsed(5*time.Minute+30*time.Second)),
		apiToken("payments", "nightly", withLifetime("30d"), pending),
		apiToken("payments", "old-deploy", withExpiry(-2*time.Hour),
			withPhase(v1alpha1.PhaseExpired, v1alpha1.ReasonExpired), withLastUsed(26*time.Hour)),
		apiToken("payments", "clash", withSecretName("shared"),
			withPhase(v1alpha1.PhaseFailed, v1alpha1.ReasonSecretConflict)),
		apiToken("payments", "release", withSpecExpiry(90*time.Minute), withSecretName("release-token")),
		// Same expiry as jane-ci: the namespace breaks the tie.
		apiToken("billing", "reporting", withType(v1alpha1.WildcardTokenType),
			withExpiry(3*day+4*time.Hour+30*time.Minute)),
		apiToken("billing", "forever", withLastUsed(400*day)),
	}
}

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want result
	}{{
		name: "the context's namespace",
		args: []string{"status"},
		want: result{stdout: "" +
			"NAME         TYPE    PHASE      EXPIRES           LAST USED   SECRET          REASON\n" +
			"old-deploy   Team    Expired    expired 2h ago    1d2h ago    old-deploy      Expired\n" +
			"release      Team    -          in 1h30m          never       release-token   -\n" +
			"jane-ci      Team    Active     in 3d4h           5m30s ago   jane-ci\n" +
			"clash        Team    Failed     never             never       shared          SecretConflict\n" +
			"nightly      Team    -          30d after issue   never       nightly         -\n" +
			"ops-admin    Admin   Disabled   never             never       ops-admin       Disabled\n"},
	}, {
		name: "-n after the command",
		args: []string{"status", "-n", "billing"},
		want: result{stdout: "" +
			"NAME        TYPE       PHASE    EXPIRES   LAST USED   SECRET      REASON\n" +
			"reporting   Wildcard   Active   in 3d4h   never       reporting\n" +
			"forever     Team       Active   never     400d ago    forever\n"},
	}, {
		name: "all namespaces",
		args: []string{"status", "-A"},
		want: result{stdout: "" +
			"NAMESPACE   NAME         TYPE       PHASE      EXPIRES           LAST USED   SECRET          REASON\n" +
			"payments    old-deploy   Team       Expired    expired 2h ago    1d2h ago    old-deploy      Expired\n" +
			"payments    release      Team       -          in 1h30m          never       release-token   -\n" +
			"billing     reporting    Wildcard   Active     in 3d4h           never       reporting\n" +
			"payments    jane-ci      Team       Active     in 3d4h           5m30s ago   jane-ci\n" +
			"billing     forever      Team       Active     never             400d ago    forever\n" +
			"payments    clash        Team       Failed     never             never       shared          SecretConflict\n" +
			"payments    nightly      Team       -          30d after issue   never       nightly         -\n" +
			"payments    ops-admin    Admin      Disabled   never             never       ops-admin       Disabled\n"},
	}, {
		name: "no tokens",
		args: []string{"status", "--namespace=empty"},
		want: result{stderr: "No ApiTokens found in empty namespace.\n"},
	}, {
		name: "-A with -n",
		args: []string{"status", "-A", "-n", "billing"},
		want: result{code: 2, stderr: "error: --namespace and --all-namespaces are mutually exclusive\n"},
	}, {
		name: "an argument",
		args: []string{"status", "jane-ci"},
		want: result{code: 2, stderr: "error: status takes no arguments, got 1\n" +
			"Run 'kubectl tokenwarden status --help' for usage.\n"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClient(t, interceptor.Funcs{}, statusTokens()...)
			check(t, runPlugin(fakeDeps(c, "payments"), "", tc.args...), tc.want)
		})
	}
}

func TestStatusReportsTheAPIServersError(t *testing.T) {
	c := newFakeClient(t, interceptor.Funcs{
		List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
			return apierrors.NewForbidden(schema.GroupResource{Group: "auth.tokenwarden.io", Resource: "apitokens"}, "",
				errors.New(`User "bob" cannot list resource "apitokens" in API group "auth.tokenwarden.io" in the namespace "payments"`))
		},
	})
	check(t, runPlugin(fakeDeps(c, "payments"), "", "status"), result{code: 1, stderr: "Error from server (Forbidden): " +
		`apitokens.auth.tokenwarden.io is forbidden: User "bob" cannot list resource "apitokens" in API group "auth.tokenwarden.io" in the namespace "payments"` + "\n"})
}

func TestShortDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{999 * time.Millisecond, "0s"},
		{45 * time.Second, "45s"},
		{5*time.Minute + 30*time.Second, "5m30s"},
		{5 * time.Minute, "5m"},
		{90 * time.Minute, "1h30m"},
		{2*time.Hour + 59*time.Second, "2h"},
		{3*24*time.Hour + 4*time.Hour + 59*time.Minute, "3d4h"},
		{30 * 24 * time.Hour, "30d"},
	} {
		if got := shortDuration(tc.d); got != tc.want {
			t.Errorf("shortDuration(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
