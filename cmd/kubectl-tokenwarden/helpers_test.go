package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// now is the instant every test runs at.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// tokenOption changes an ApiToken built by apiToken.
type tokenOption func(*v1alpha1.ApiToken)

// apiToken is an Active Team token ns/name that never expires, unless opts
// say otherwise.
func apiToken(ns, name string, opts ...tokenOption) *v1alpha1.ApiToken {
	t := &v1alpha1.ApiToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.ApiTokenSpec{Type: v1alpha1.TeamTokenType, Teams: []string{"payments"}},
		Status: v1alpha1.ApiTokenStatus{
			Phase:     v1alpha1.PhaseActive,
			SecretRef: &v1alpha1.SecretReference{Name: name},
		},
	}
	for _, opt := range opts {
		opt(t)
	}
	return t
}

func withType(typ v1alpha1.ApiTokenType) tokenOption {
	return func(t *v1alpha1.ApiToken) {
		t.Spec.Type = typ
		t.Spec.Teams = nil
	}
}

// withPhase sets the phase and, for a phase other than Active, a False
// Ready condition with reason.
func withPhase(phase v1alpha1.ApiTokenPhase, reason string) tokenOption {
	return func(t *v1alpha1.ApiToken) {
		t.Status.Phase = phase
		status := metav1.ConditionFalse
		if phase == v1alpha1.PhaseActive {
			status = metav1.ConditionTrue
		}
		if reason != "" {
			t.Status.Conditions = []metav1.Condition{{
				Type: v1alpha1.ReadyCondition, Status: status, Reason: reason,
				LastTransitionTime: metav1.NewTime(now),
			}}
		}
	}
}

// withExpiry sets the effective expiry to now+d.
func withExpiry(d time.Duration) tokenOption {
	return func(t *v1alpha1.ApiToken) {
		at := metav1.NewTime(now.Add(d))
		t.Status.ExpiresAt = &at
	}
}

// withSpecExpiry sets spec.expiresAt to now+d and clears the status, as for
// a token not issued yet.
func withSpecExpiry(d time.Duration) tokenOption {
	return func(t *v1alpha1.ApiToken) {
		at := metav1.NewTime(now.Add(d))
		t.Spec.ExpiresAt = &at
		t.Status = v1alpha1.ApiTokenStatus{}
	}
}

// pending clears the status, as for a token the operator has not issued yet.
func pending(t *v1alpha1.ApiToken) {
	t.Status = v1alpha1.ApiTokenStatus{}
}

func withLifetime(l v1alpha1.Duration) tokenOption {
	return func(t *v1alpha1.ApiToken) { t.Spec.Lifetime = &l }
}

// withLastUsed records a use d ago.
func withLastUsed(d time.Duration) tokenOption {
	return func(t *v1alpha1.ApiToken) {
		at := metav1.NewTime(now.Add(-d))
		t.Status.LastUsedAt = &at
	}
}

func withSecretName(name string) tokenOption {
	return func(t *v1alpha1.ApiToken) {
		t.Spec.SecretName = name
		t.Status.SecretRef = nil
	}
}

func withRecreate(n int64) tokenOption {
	return func(t *v1alpha1.ApiToken) { t.Spec.Recreate = n }
}

func withDisabled(disabled bool) tokenOption {
	return func(t *v1alpha1.ApiToken) { t.Spec.Disabled = disabled }
}

// newFakeClient serves objs the way the API server would, status
// subresource included, with funcs intercepting calls.
func newFakeClient(t *testing.T, funcs interceptor.Funcs, objs ...client.Object) client.WithWatch {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().
		WithScheme(scheme).
		WithStatusSubresource(&v1alpha1.ApiToken{}).
		WithObjects(objs...).
		WithInterceptorFuncs(funcs).
		Build()
}

// fakeDeps connect every command to c, whose kubeconfig namespace is
// namespace unless -n says otherwise, with an empty environment.
func fakeDeps(c client.Client, namespace string) deps {
	return deps{
		cluster: func(f kubeFlags, _ io.Writer) (*cluster, error) {
			ns := namespace
			if f.namespace != "" {
				ns = f.namespace
			}
			return &cluster{client: c, namespace: ns}, nil
		},
		getenv: func(string) string { return "" },
		now:    func() time.Time { return now },
	}
}

// result is what one run of the plugin did.
type result struct {
	code           int
	stdout, stderr string
}

// runPlugin runs the plugin with args and stdin.
func runPlugin(d deps, stdin string, args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr, d)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// check fails t unless got is want, showing both in full.
func check(t *testing.T, got, want result) {
	t.Helper()
	if got.code != want.code {
		t.Errorf("exit code = %d, want %d", got.code, want.code)
	}
	if got.stdout != want.stdout {
		t.Errorf("stdout:\n%s\nwant:\n%s", got.stdout, want.stdout)
	}
	if got.stderr != want.stderr {
		t.Errorf("stderr:\n%s\nwant:\n%s", got.stderr, want.stderr)
	}
}
