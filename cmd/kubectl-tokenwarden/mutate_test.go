package main

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// webhookDenial is what the API server answers when Tokenwarden's webhook
// refuses a change.
var webhookDenial = &apierrors.StatusError{ErrStatus: metav1.Status{
	Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
	Message: `admission webhook "vapitoken.auth.tokenwarden.io" denied the request: spec.recreate: Forbidden: only an admin or the creator (alice) may recreate this token`,
}}

// errAlreadyModified is the API server's explanation of a conflict.
var errAlreadyModified = errors.New("the object has been modified; please apply your changes to the latest version and try again")

// patchRecorder intercepts patches: it records their bodies, then runs
// before (if set) and returns its error, or passes the patch on.
type patchRecorder struct {
	bodies []string
	before func(ctx context.Context, c client.WithWatch, call int) error
}

func (p *patchRecorder) funcs() interceptor.Funcs {
	return interceptor.Funcs{Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
		data, err := patch.Data(obj)
		if err != nil {
			return err
		}
		p.bodies = append(p.bodies, string(data))
		if p.before != nil {
			if err := p.before(ctx, c, len(p.bodies)); err != nil {
				return err
			}
		}
		return c.Patch(ctx, obj, patch, opts...)
	}}
}

// bumpOnFirstPatch imitates someone else recreating the token between the
// plugin's read and its patch.
func bumpOnFirstPatch(ctx context.Context, c client.WithWatch, call int) error {
	if call > 1 {
		return nil
	}
	var tok v1alpha1.ApiToken
	if err := c.Get(ctx, client.ObjectKey{Namespace: "payments", Name: "jane-ci"}, &tok); err != nil {
		return err
	}
	tok.Spec.Recreate = 5
	return c.Update(ctx, &tok)
}

func TestRecreateDisableEnable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token *v1alpha1.ApiToken
		args  []string
		// before runs ahead of each patch, see patchRecorder.
		before func(ctx context.Context, c client.WithWatch, call int) error
		want   result
		// wantPatches are the patch bodies sent, in order.
		wantPatches []string
		// wantRecreate, wantDisabled, wantExpiresAt (RFC 3339) and
		// wantLifetime are the spec afterwards.
		wantRecreate  int64
		wantDisabled  bool
		wantExpiresAt string
		wantLifetime  v1alpha1.Duration
	}{{
		name:         "recreate bumps the counter",
		token:        apiToken("payments", "jane-ci", withRecreate(2)),
		args:         []string{"recreate", "jane-ci"},
		want:         result{stdout: "apitoken payments/jane-ci: recreate requested (spec.recreate 2 -> 3)\n"},
		wantPatches:  []string{`{"metadata":{"resourceVersion":"999"},"spec":{"recreate":3}}`},
		wantRecreate: 3,
	}, {
		name:         "recreate from an unset counter, -n after the name",
		token:        apiToken("billing", "jane-ci"),
		args:         []string{"recreate", "jane-ci", "-n", "billing"},
		want:         result{stdout: "apitoken billing/jane-ci: recreate requested (spec.recreate 0 -> 1)\n"},
		wantPatches:  []string{`{"metadata":{"resourceVersion":"999"},"spec":{"recreate":1}}`},
		wantRecreate: 1,
	}, {
		name:   "recreate that loses a race retries on the new value",
		token:  apiToken("payments", "jane-ci", withRecreate(2)),
		args:   []string{"recreate", "jane-ci"},
		before: bumpOnFirstPatch,
		want:   result{stdout: "apitoken payments/jane-ci: recreate requested (spec.recreate 5 -> 6)\n"},
		wantPatches: []string{
			`{"metadata":{"resourceVersion":"999"},"spec":{"recreate":3}}`,
			`{"metadata":{"resourceVersion":"1000"},"spec":{"recreate":6}}`,
		},
		wantRecreate: 6,
	}, {
		name:  "recreate gives up after three conflicts",
		token: apiToken("payments", "jane-ci", withRecreate(2)),
		args:  []string{"recreate", "jane-ci"},
		before: func(context.Context, client.WithWatch, int) error {
			return apierrors.NewConflict(v1alpha1.GroupVersion.WithResource("apitokens").GroupResource(), "jane-ci",
				errAlreadyModified)
		},
		want: result{code: 1, stderr: "Error from server (Conflict): Operation cannot be fulfilled on apitokens.auth.tokenwarden.io \"jane-ci\": " +
			"the object has been modified; please apply your changes to the latest version and try again\n"},
		wantPatches: []string{
			`{"metadata":{"resourceVersion":"999"},"spec":{"recreate":3}}`,
			`{"metadata":{"resourceVersion":"999"},"spec":{"recreate":3}}`,
			`{"metadata":{"resourceVersion":"999"},"spec":{"recreate":3}}`,
		},
		wantRecreate: 2,
	}, {
		name:         "recreate refused by the webhook",
		token:        apiToken("payments", "jane-ci", withRecreate(7)),
		args:         []string{"recreate", "jane-ci"},
		before:       func(context.Context, client.WithWatch, int) error { return webhookDenial },
		want:         result{code: 1, stderr: "Error from server (Forbidden): " + webhookDenial.ErrStatus.Message + "\n"},
		wantPatches:  []string{`{"metadata":{"resourceVersion":"999"},"spec":{"recreate":8}}`},
		wantRecreate: 7,
	}, {
		name:         "recreate of a token that does not exist",
		token:        apiToken("payments", "jane-ci", withRecreate(2)),
		args:         []string{"recreate", "nope"},
		want:         result{code: 1, stderr: "Error from server (NotFound): apitokens.auth.tokenwarden.io \"nope\" not found\n"},
		wantRecreate: 2,
	}, {
		name:         "recreate without a new expiry keeps the spec's",
		token:        apiToken("payments", "jane-ci", withRecreate(2), withLifetime("1h")),
		args:         []string{"recreate", "jane-ci"},
		want:         result{stdout: "apitoken payments/jane-ci: recreate requested (spec.recreate 2 -> 3)\n"},
		wantPatches:  []string{`{"metadata":{"resourceVersion":"999"},"spec":{"recreate":3}}`},
		wantRecreate: 3,
		wantLifetime: "1h",
	}, {
		name:  "recreate with a new expiresAt replaces the lifetime in the same patch",
		token: apiToken("payments", "jane-ci", withRecreate(2), withLifetime("1h")),
		args:  []string{"recreate", "jane-ci", "--expires-at", "2026-04-01T00:00:00Z"},
		want: result{stdout: "apitoken payments/jane-ci: recreate requested (spec.recreate 2 -> 3), " +
			"spec.expiresAt 2026-04-01T00:00:00Z\n"},
		wantPatches:   []string{`{"metadata":{"resourceVersion":"999"},"spec":{"expiresAt":"2026-04-01T00:00:00Z","lifetime":null,"recreate":3}}`},
		wantRecreate:  3,
		wantExpiresAt: "2026-04-01T00:00:00Z",
	}, {
		name:  "recreate with an expiresAt in another zone",
		token: apiToken("payments", "jane-ci", withSpecExpiry(-time.Hour)),
		args:  []string{"recreate", "jane-ci", "--expires-at=2026-03-01T15:00:00+02:00"},
		want: result{stdout: "apitoken payments/jane-ci: recreate requested (spec.recreate 0 -> 1), " +
			"spec.expiresAt 2026-03-01T13:00:00Z\n"},
		wantPatches:   []string{`{"metadata":{"resourceVersion":"999"},"spec":{"expiresAt":"2026-03-01T13:00:00Z","recreate":1}}`},
		wantRecreate:  1,
		wantExpiresAt: "2026-03-01T13:00:00Z",
	}, {
		name:  "recreate with a lifetime in days replaces the expiresAt in the same patch",
		token: apiToken("payments", "jane-ci", withRecreate(4), withSpecExpiry(-time.Hour)),
		args:  []string{"recreate", "--lifetime", "30d", "jane-ci"},
		want: result{stdout: "apitoken payments/jane-ci: recreate requested (spec.recreate 4 -> 5), " +
			"spec.lifetime 30d\n"},
		wantPatches:  []string{`{"metadata":{"resourceVersion":"999"},"spec":{"expiresAt":null,"lifetime":"30d","recreate":5}}`},
		wantRecreate: 5,
		wantLifetime: "30d",
	}, {
		name:   "recreate with a lifetime that loses a race retries with it",
		token:  apiToken("payments", "jane-ci", withRecreate(2)),
		args:   []string{"recreate", "jane-ci", "--lifetime", "12h"},
		before: bumpOnFirstPatch,
		want:   result{stdout: "apitoken payments/jane-ci: recreate requested (spec.recreate 5 -> 6), spec.lifetime 12h\n"},
		wantPatches: []string{
			`{"metadata":{"resourceVersion":"999"},"spec":{"lifetime":"12h","recreate":3}}`,
			`{"metadata":{"resourceVersion":"1000"},"spec":{"lifetime":"12h","recreate":6}}`,
		},
		wantRecreate: 6,
		wantLifetime: "12h",
	}, {
		name:  "recreate with both --expires-at and --lifetime",
		token: apiToken("payments", "jane-ci", withRecreate(2)),
		args:  []string{"recreate", "jane-ci", "--expires-at", "2026-04-01T00:00:00Z", "--lifetime", "30d"},
		want:  result{code: 2, stderr: "error: --expires-at and --lifetime are mutually exclusive: set at most one\n"},
		// Nothing is read or written.
		wantRecreate: 2,
	}, {
		name:         "recreate with an --expires-at that is not RFC 3339",
		token:        apiToken("payments", "jane-ci", withRecreate(2)),
		args:         []string{"recreate", "jane-ci", "--expires-at", "2026-04-01"},
		want:         result{code: 2, stderr: "error: --expires-at \"2026-04-01\": want an RFC 3339 time such as 2027-01-31T00:00:00Z\n"},
		wantRecreate: 2,
	}, {
		name:  "recreate with an --expires-at that has passed",
		token: apiToken("payments", "jane-ci", withRecreate(2)),
		args:  []string{"recreate", "jane-ci", "--expires-at", "2026-03-01T12:00:00Z"},
		want: result{code: 2, stderr: "error: --expires-at 2026-03-01T12:00:00Z has passed: " +
			"a value that would be born expired is not issued\n"},
		wantRecreate: 2,
	}, {
		name:  "recreate with a lifetime in Go's syntax",
		token: apiToken("payments", "jane-ci", withRecreate(2)),
		args:  []string{"recreate", "jane-ci", "--lifetime", "1.5h"},
		want: result{code: 2, stderr: "error: --lifetime: invalid duration \"1.5h\": " +
			"unexpected '.' at offset 1; fractions are not allowed, use a smaller unit instead (1h30m, not 1.5h)\n"},
		wantRecreate: 2,
	}, {
		name:  "--lifetime without a value",
		token: apiToken("payments", "jane-ci"),
		args:  []string{"recreate", "jane-ci", "--lifetime"},
		want: result{code: 2, stderr: "error: flag needs an argument: -lifetime\n" +
			"Run 'kubectl tokenwarden recreate --help' for usage.\n"},
	}, {
		name:  "--lifetime is not a flag of disable",
		token: apiToken("payments", "jane-ci"),
		args:  []string{"disable", "jane-ci", "--lifetime", "1h"},
		want: result{code: 2, stderr: "error: flag provided but not defined: -lifetime\n" +
			"Run 'kubectl tokenwarden disable --help' for usage.\n"},
	}, {
		name:         "disable",
		token:        apiToken("payments", "jane-ci"),
		args:         []string{"disable", "jane-ci"},
		want:         result{stdout: "apitoken payments/jane-ci: disabled\n"},
		wantPatches:  []string{`{"spec":{"disabled":true}}`},
		wantDisabled: true,
	}, {
		name:         "disable a disabled token writes nothing",
		token:        apiToken("payments", "jane-ci", withDisabled(true)),
		args:         []string{"disable", "jane-ci"},
		want:         result{stdout: "apitoken payments/jane-ci: already disabled, nothing changed\n"},
		wantDisabled: true,
	}, {
		name:         "disable refused by the webhook",
		token:        apiToken("payments", "jane-ci"),
		args:         []string{"disable", "--namespace=payments", "jane-ci"},
		before:       func(context.Context, client.WithWatch, int) error { return webhookDenial },
		want:         result{code: 1, stderr: "Error from server (Forbidden): " + webhookDenial.ErrStatus.Message + "\n"},
		wantPatches:  []string{`{"spec":{"disabled":true}}`},
		wantDisabled: false,
	}, {
		name:        "enable removes the field",
		token:       apiToken("payments", "jane-ci", withDisabled(true)),
		args:        []string{"enable", "jane-ci"},
		want:        result{stdout: "apitoken payments/jane-ci: enabled\n"},
		wantPatches: []string{`{"spec":{"disabled":null}}`},
	}, {
		name:  "enable an enabled token writes nothing",
		token: apiToken("payments", "jane-ci"),
		args:  []string{"enable", "jane-ci"},
		want:  result{stdout: "apitoken payments/jane-ci: already enabled, nothing changed\n"},
	}, {
		name:  "no name",
		token: apiToken("payments", "jane-ci"),
		args:  []string{"disable", "-n", "payments"},
		want: result{code: 2, stderr: "error: disable needs exactly one argument NAME, got 0\n" +
			"Run 'kubectl tokenwarden disable --help' for usage.\n"},
	}, {
		name:  "two names",
		token: apiToken("payments", "jane-ci"),
		args:  []string{"enable", "jane-ci", "other"},
		want: result{code: 2, stderr: "error: enable needs exactly one argument NAME, got 2\n" +
			"Run 'kubectl tokenwarden enable --help' for usage.\n"},
	}, {
		name:  "an empty name",
		token: apiToken("payments", "jane-ci"),
		args:  []string{"recreate", "--", ""},
		want: result{code: 2, stderr: "error: argument NAME must not be empty\n" +
			"Run 'kubectl tokenwarden recreate --help' for usage.\n"},
		wantRecreate: 0,
	}, {
		name:  "-n without a value",
		token: apiToken("payments", "jane-ci"),
		args:  []string{"recreate", "jane-ci", "-n"},
		want: result{code: 2, stderr: "error: flag needs an argument: -n\n" +
			"Run 'kubectl tokenwarden recreate --help' for usage.\n"},
	}, {
		name:  "-A is not a flag of recreate",
		token: apiToken("payments", "jane-ci"),
		args:  []string{"recreate", "jane-ci", "-A"},
		want: result{code: 2, stderr: "error: flag provided but not defined: -A\n" +
			"Run 'kubectl tokenwarden recreate --help' for usage.\n"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tc.token.ResourceVersion = "999"
			rec := &patchRecorder{before: tc.before}
			c := newFakeClient(t, rec.funcs(), tc.token)

			check(t, runPlugin(fakeDeps(c, "payments"), "", tc.args...), tc.want)

			if len(rec.bodies) != len(tc.wantPatches) {
				t.Fatalf("patches sent:\n%q\nwant:\n%q", rec.bodies, tc.wantPatches)
			}
			for i := range rec.bodies {
				if rec.bodies[i] != tc.wantPatches[i] {
					t.Errorf("patch %d = %s, want %s", i, rec.bodies[i], tc.wantPatches[i])
				}
			}
			var got v1alpha1.ApiToken
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(tc.token), &got); err != nil {
				t.Fatal(err)
			}
			if got.Spec.Recreate != tc.wantRecreate || got.Spec.Disabled != tc.wantDisabled {
				t.Errorf("spec.recreate = %d, spec.disabled = %t; want %d, %t",
					got.Spec.Recreate, got.Spec.Disabled, tc.wantRecreate, tc.wantDisabled)
			}
			if tc.wantExpiresAt != "" || tc.wantLifetime != "" {
				var expiresAt string
				if got.Spec.ExpiresAt != nil {
					expiresAt = got.Spec.ExpiresAt.UTC().Format(time.RFC3339)
				}
				var lifetime v1alpha1.Duration
				if got.Spec.Lifetime != nil {
					lifetime = *got.Spec.Lifetime
				}
				if expiresAt != tc.wantExpiresAt || lifetime != tc.wantLifetime {
					t.Errorf("spec.expiresAt = %q, spec.lifetime = %q; want %q, %q", expiresAt, lifetime, tc.wantExpiresAt, tc.wantLifetime)
				}
			}
		})
	}
}
