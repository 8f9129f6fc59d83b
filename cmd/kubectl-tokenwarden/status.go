package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/lifecycle"
)

var statusCommand = &command{
	name: "status",
	help: `List ApiTokens with their state, the soonest to expire first (then those
that never expire). REASON says why a token is not Active.

Usage:
  kubectl tokenwarden status [-n NS | -A] [flags]

Flags:
` + namespaceFlagHelp + `  -A, --all-namespaces        list the ApiTokens of every namespace
` + kubeFlagsHelp,
	flags: func(fs *flag.FlagSet, o *options, _ *env) {
		addKubeFlags(fs, o, true)
		fs.BoolVar(&o.allNamespaces, "all-namespaces", false, "")
		fs.BoolVar(&o.allNamespaces, "A", false, "")
	},
	run: runStatus,
}

func runStatus(ctx context.Context, e *env, o *options, _ []string) error {
	if o.allNamespaces && o.kube.namespace != "" {
		return withCode(exitUsage, errors.New("--namespace and --all-namespaces are mutually exclusive"))
	}
	cl, err := e.cluster(o.kube, e.stderr)
	if err != nil {
		return err
	}
	namespace := cl.namespace
	if o.allNamespaces {
		namespace = ""
	}
	var list v1alpha1.ApiTokenList
	if err := cl.client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return err
	}
	if len(list.Items) == 0 {
		// As kubectl does: an empty result is no error, but worth a word on
		// stderr so that stdout stays parseable.
		if o.allNamespaces {
			fmt.Fprintln(e.stderr, "No ApiTokens found.")
		} else {
			fmt.Fprintf(e.stderr, "No ApiTokens found in %s namespace.\n", namespace)
		}
		return nil
	}
	return writeStatus(e.stdout, list.Items, o.allNamespaces, e.now())
}

// writeStatus prints tokens as a table, sorted by sortTokens, with times
// relative to now.
func writeStatus(w io.Writer, tokens []v1alpha1.ApiToken, withNamespace bool, now time.Time) error {
	sortTokens(tokens)
	var buf bytes.Buffer
	// kubectl's table settings, so the output looks like `kubectl get`.
	tw := tabwriter.NewWriter(&buf, 6, 4, 3, ' ', 0)
	header := []string{"NAME", "TYPE", "PHASE", "EXPIRES", "LAST USED", "SECRET", "REASON"}
	if withNamespace {
		header = append([]string{"NAMESPACE"}, header...)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for i := range tokens {
		t := &tokens[i]
		row := []string{t.Name, orDash(string(t.Spec.Type)), orDash(string(t.Status.Phase)),
			expiresText(t, now), lastUsedText(t, now), secretName(t), reasonText(t)}
		if withNamespace {
			row = append([]string{t.Namespace}, row...)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The last column is often empty; padding before it is noise.
	for line := range strings.Lines(buf.String()) {
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " \n")); err != nil {
			return err
		}
	}
	return nil
}

// expiry is when t stops verifying, if known: the effective instant from
// status, else spec.expiresAt for a token not issued yet.
func expiry(t *v1alpha1.ApiToken) (time.Time, bool) {
	switch {
	case t.Status.ExpiresAt != nil:
		return t.Status.ExpiresAt.Time, true
	case t.Spec.ExpiresAt != nil:
		return t.Spec.ExpiresAt.Time, true
	}
	return time.Time{}, false
}

// sortTokens orders tokens soonest expiry first (already expired ones on
// top), then those without a known expiry, ties by namespace and name.
func sortTokens(tokens []v1alpha1.ApiToken) {
	slices.SortStableFunc(tokens, func(a, b v1alpha1.ApiToken) int {
		ea, okA := expiry(&a)
		eb, okB := expiry(&b)
		switch {
		case okA && !okB:
			return -1
		case !okA && okB:
			return 1
		case okA && okB:
			if c := ea.Compare(eb); c != 0 {
				return c
			}
		}
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
}

func expiresText(t *v1alpha1.ApiToken, now time.Time) string {
	if at, ok := expiry(t); ok {
		if at.After(now) {
			return "in " + shortDuration(at.Sub(now))
		}
		return "expired " + shortDuration(now.Sub(at)) + " ago"
	}
	if t.Spec.Lifetime != nil {
		// The instant is only known once a value is issued.
		return string(*t.Spec.Lifetime) + " after issue"
	}
	return "never"
}

func lastUsedText(t *v1alpha1.ApiToken, now time.Time) string {
	if t.Status.LastUsedAt == nil {
		return "never"
	}
	// Clock skew between this machine and the operator must not show a
	// use in the future.
	return shortDuration(max(now.Sub(t.Status.LastUsedAt.Time), 0)) + " ago"
}

// secretName is the Secret holding the value, or the one it will be
// delivered to while none is.
func secretName(t *v1alpha1.ApiToken) string {
	if t.Status.SecretRef != nil && t.Status.SecretRef.Name != "" {
		return t.Status.SecretRef.Name
	}
	return lifecycle.SecretName(t)
}

// reasonText is the Ready condition's reason for a token that is not
// Active; an Active token needs no explanation.
func reasonText(t *v1alpha1.ApiToken) string {
	if t.Status.Phase == v1alpha1.PhaseActive {
		return ""
	}
	if c := apimeta.FindStatusCondition(t.Status.Conditions, v1alpha1.ReadyCondition); c != nil && c.Reason != "" {
		return c.Reason
	}
	return "-"
}

func orDash(s string) string {
	return cmp.Or(s, "-")
}

// shortDuration writes d in its two largest units, truncated to the second:
// "3d4h", "2h", "1h30m", "5m30s", "45s". Truncating never overstates the
// time left before an expiry.
func shortDuration(d time.Duration) string {
	units := []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	d = d.Truncate(time.Second)
	for i, u := range units {
		if d < u.size && u.size != time.Second {
			continue
		}
		s := fmt.Sprintf("%d%s", d/u.size, u.name)
		if i+1 < len(units) {
			next := units[i+1]
			if r := d % u.size / next.size; r > 0 {
				s += fmt.Sprintf("%d%s", r, next.name)
			}
		}
		return s
	}
	return "0s"
}
