package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
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

The change goes through the API server as your kubeconfig's user, so the
admission webhook decides whether you may (admins, and the token's creator
for Team and Wildcard tokens). A concurrent change is never overwritten: the
patch only applies to the version read, and is retried on conflict.

Usage:
  kubectl tokenwarden recreate NAME [-n NS] [flags]

Flags:
` + namespaceFlagHelp + kubeFlagsHelp,
	flags: func(fs *flag.FlagSet, o *options, _ *env) { addKubeFlags(fs, o, true) },
	run:   runRecreate,
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
		return cl.client.Patch(ctx, &tok, patch)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "apitoken %s: recreate requested (spec.recreate %d -> %d)\n", key, before, after)
	return nil
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
