package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/duration"
)

// recreateBackoff bounds the retries of a recreate that lost a race: a few
// quick attempts, since each one re-reads the object.
var recreateBackoff = wait.Backoff{Steps: 3, Duration: 50 * time.Millisecond, Factor: 2, Jitter: 0.1}

var recreateCommand = &command{
	name: "recreate",
	args: "NAME",
	help: `Have the operator issue a new value for an ApiToken by bumping its
spec.recreate by one. Name, type, teams and scopes are kept; the old value
stops verifying at once, or after spec.rotation.overlap.

A token whose fixed spec.expiresAt has passed gets no new value: give it a
new expiry in the same change with --expires-at or --lifetime. Either one
replaces the other (they are mutually exclusive in the spec), and applies to
the new value and every later one.

The change goes through the API server as your kubeconfig's user, so the
admission webhook decides whether you may (admins, and the token's creator
for Team and Wildcard tokens). A concurrent change is never overwritten: the
patch only applies to the version read, and is retried on conflict.

Usage:
  kubectl tokenwarden recreate NAME [-n NS] [--expires-at TIME | --lifetime DURATION] [flags]

Examples:
  kubectl tokenwarden recreate payments-ci -n payments
  kubectl tokenwarden recreate payments-ci --expires-at 2027-01-31T00:00:00Z
  kubectl tokenwarden recreate payments-ci --lifetime 30d

Flags:
      --expires-at TIME       set spec.expiresAt (RFC 3339, in the future) and
                              remove spec.lifetime
      --lifetime DURATION     set spec.lifetime (whole d, h, m, s in that
                              order: 30d, 12h, 1d12h) and remove spec.expiresAt
` + namespaceFlagHelp + kubeFlagsHelp,
	flags: func(fs *flag.FlagSet, o *options, _ *env) {
		fs.StringVar(&o.expiresAt, "expires-at", "", "")
		fs.StringVar(&o.lifetime, "lifetime", "", "")
		addKubeFlags(fs, o, true)
	},
	run: runRecreate,
}

var disableCommand = &command{
	name: "disable",
	args: "NAME",
	help: `Stop an ApiToken from verifying without deleting it, by setting
spec.disabled. The value is kept: 'enable' makes it verify again.

Usage:
  kubectl tokenwarden disable NAME [-n NS] [flags]

Flags:
` + namespaceFlagHelp + kubeFlagsHelp,
	flags: func(fs *flag.FlagSet, o *options, _ *env) { addKubeFlags(fs, o, true) },
	run: func(ctx context.Context, e *env, o *options, args []string) error {
		return runSetDisabled(ctx, e, o, args[0], true)
	},
}

var enableCommand = &command{
	name: "enable",
	args: "NAME",
	help: `Let a disabled ApiToken verify again with the value it had, by removing
spec.disabled. An expired or invalidated token needs 'recreate' instead.

Usage:
  kubectl tokenwarden enable NAME [-n NS] [flags]

Flags:
` + namespaceFlagHelp + kubeFlagsHelp,
	flags: func(fs *flag.FlagSet, o *options, _ *env) { addKubeFlags(fs, o, true) },
	run: func(ctx context.Context, e *env, o *options, args []string) error {
		return runSetDisabled(ctx, e, o, args[0], false)
	},
}

func runRecreate(ctx context.Context, e *env, o *options, args []string) error {
	expiry, err := newExpiry(o, e.now())
	if err != nil {
		return withCode(exitUsage, err)
	}
	cl, err := e.cluster(o.kube, e.stderr)
	if err != nil {
		return err
	}
	key := client.ObjectKey{Namespace: cl.namespace, Name: args[0]}
	var before, after int64
	err = retry.OnError(recreateBackoff, apierrors.IsConflict, func() error {
		var tok v1alpha1.ApiToken
		if err := cl.client.Get(ctx, key, &tok); err != nil {
			return err
		}
		// The patch carries the resourceVersion read, so the API server
		// refuses it with a conflict if anyone changed the object since:
		// two concurrent recreates then make two bumps, never one.
		patch := client.MergeFromWithOptions(tok.DeepCopy(), client.MergeFromWithOptimisticLock{})
		before = tok.Spec.Recreate
		tok.Spec.Recreate++
		after = tok.Spec.Recreate
		// The new expiry goes in the same patch as the bump: a recreate
		// whose expiresAt has passed would otherwise issue nothing.
		expiry.apply(&tok.Spec)
		return cl.client.Patch(ctx, &tok, patch)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "apitoken %s: recreate requested (spec.recreate %d -> %d)%s\n", key, before, after, expiry)
	return nil
}

// recreateExpiry is the new expiry a recreate sets, if any: at most one of
// its fields.
type recreateExpiry struct {
	expiresAt *metav1.Time
	lifetime  *v1alpha1.Duration
}

// newExpiry reads --expires-at and --lifetime. An instant already past is
// refused here: the operator would issue no value for it.
func newExpiry(o *options, now time.Time) (recreateExpiry, error) {
	switch {
	case o.expiresAt != "" && o.lifetime != "":
		return recreateExpiry{}, errors.New("--expires-at and --lifetime are mutually exclusive: set at most one")
	case o.expiresAt != "":
		at, err := time.Parse(time.RFC3339, o.expiresAt)
		if err != nil {
			return recreateExpiry{}, fmt.Errorf("--expires-at %q: want an RFC 3339 time such as 2027-01-31T00:00:00Z", o.expiresAt)
		}
		if !at.After(now) {
			return recreateExpiry{}, fmt.Errorf("--expires-at %s has passed: a value that would be born expired is not issued", o.expiresAt)
		}
		t := metav1.NewTime(at.Truncate(time.Second))
		return recreateExpiry{expiresAt: &t}, nil
	case o.lifetime != "":
		lifetime := v1alpha1.Duration(o.lifetime)
		if _, err := duration.Parse(lifetime); err != nil {
			return recreateExpiry{}, fmt.Errorf("--lifetime: %w", err)
		}
		return recreateExpiry{lifetime: &lifetime}, nil
	}
	return recreateExpiry{}, nil
}

// apply sets the expiry on spec, removing the field it excludes; without
// one, spec keeps its own.
func (x recreateExpiry) apply(spec *v1alpha1.ApiTokenSpec) {
	switch {
	case x.expiresAt != nil:
		spec.ExpiresAt, spec.Lifetime = x.expiresAt, nil
	case x.lifetime != nil:
		spec.ExpiresAt, spec.Lifetime = nil, x.lifetime
	}
}

// String describes the expiry set, for the confirmation line.
func (x recreateExpiry) String() string {
	switch {
	case x.expiresAt != nil:
		return ", spec.expiresAt " + x.expiresAt.UTC().Format(time.RFC3339)
	case x.lifetime != nil:
		return ", spec.lifetime " + string(*x.lifetime)
	}
	return ""
}

// runSetDisabled sets spec.disabled of the ApiToken name to disabled, unless
// it already is. No optimistic lock is needed: the patch names only that
// field, and the last of two concurrent requests rightly wins.
func runSetDisabled(ctx context.Context, e *env, o *options, name string, disabled bool) error {
	cl, err := e.cluster(o.kube, e.stderr)
	if err != nil {
		return err
	}
	key := client.ObjectKey{Namespace: cl.namespace, Name: name}
	state := "enabled"
	if disabled {
		state = "disabled"
	}
	var tok v1alpha1.ApiToken
	if err := cl.client.Get(ctx, key, &tok); err != nil {
		return err
	}
	if tok.Spec.Disabled == disabled {
		fmt.Fprintf(e.stdout, "apitoken %s: already %s, nothing changed\n", key, state)
		return nil
	}
	// With omitempty, false makes the merge patch remove the field rather
	// than write an explicit false: the object reads as if never disabled.
	patch := client.MergeFrom(tok.DeepCopy())
	tok.Spec.Disabled = disabled
	if err := cl.client.Patch(ctx, &tok, patch); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "apitoken %s: %s\n", key, state)
	return nil
}
