// Command kubectl-tokenwarden is a kubectl plugin for Tokenwarden: installed
// on the PATH it runs as `kubectl tokenwarden <command>`.
//
// It reads and changes ApiTokens through the API server as the user of the
// kubeconfig, exactly as kubectl would, so RBAC and Tokenwarden's admission
// webhook decide what that user may do: the plugin has no back door and
// only reports the API server's answer. Changes are patches of spec fields
// (spec.recreate, with spec.expiresAt or spec.lifetime if asked, and
// spec.disabled), which is all the operator needs to act and what a GitOps
// pipeline could do as well.
//
// whois asks the verification endpoint (GET /verify) who a token belongs
// to. The token is read from stdin, never from a flag, so it does not end
// up in shell history or the process list, and it is never printed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Exit statuses. Scripts rely on whois telling "not valid" (1) from "could
// not find out" (2), so a verifier outage is never mistaken for a verdict.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitUnknown = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, deps{
		cluster: newCluster,
		getenv:  os.Getenv,
		now:     time.Now,
	})
	stop()
	os.Exit(code)
}

// deps are what run needs from the outside world; tests replace them.
type deps struct {
	// cluster connects to the API server the kubeconfig flags name. It is
	// called only by commands that need it, so whois with --verify-url works
	// without any kubeconfig.
	cluster func(kubeFlags, io.Writer) (*cluster, error)
	// getenv reads the environment variables that default whois's flags.
	getenv func(string) string
	// now is the clock relative times are computed against.
	now func() time.Time
}

// env is one invocation: its streams and dependencies.
type env struct {
	deps
	stdin          io.Reader
	stdout, stderr io.Writer
}

// options holds every flag; each command registers the ones it takes.
type options struct {
	kube          kubeFlags
	allNamespaces bool

	// expiresAt and lifetime are recreate's new expiry, as typed.
	expiresAt string
	lifetime  string

	verifyURL       string
	caFile          string
	verifyNamespace string
	verifyService   string
}

// command is one subcommand.
type command struct {
	name string
	// args names the positional argument, "" for none.
	args string
	// noArgsHint follows the error for an argument given to a command
	// that takes none.
	noArgsHint string
	help       string
	// flags registers the command's flags on fs.
	flags func(fs *flag.FlagSet, o *options, e *env)
	run   func(ctx context.Context, e *env, o *options, args []string) error
}

// commands are listed in the order the help shows them.
var commands = []*command{statusCommand, recreateCommand, disableCommand, enableCommand, whoisCommand}

const usage = `kubectl tokenwarden - inspect and manage Tokenwarden API tokens.

Usage:
  kubectl tokenwarden <command> [flags]

Commands:
  status           List ApiTokens, the soonest to expire first
  recreate NAME    Have the operator issue a new value (bumps spec.recreate)
  disable NAME     Stop an ApiToken from verifying, keeping its value
  enable NAME      Let a disabled ApiToken verify again
  whois            Tell who owns the token read from stdin
  help [COMMAND]   Show this help, or a command's

Every command runs as the user of your kubeconfig: RBAC and Tokenwarden's
admission webhook decide what it may do. For the local mode (make dev):
  export KUBECONFIG=bin/dev/admin.kubeconfig
  set -a; . bin/dev/endpoints.env; set +a

Run 'kubectl tokenwarden <command> --help' for a command's flags.
`

const kubeFlagsHelp = `      --kubeconfig PATH       kubeconfig file (default $KUBECONFIG, else ~/.kube/config)
      --context NAME          kubeconfig context (default the current one)
`

const namespaceFlagHelp = `  -n, --namespace NS          namespace (default the context's namespace)
`

// run is the whole plugin behind main, returning the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, d deps) int {
	e := &env{deps: d, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		if cmd := lookup(rest[0]); cmd != nil {
			fmt.Fprint(stdout, cmd.help)
			return exitOK
		}
		return usageError(stderr, "", fmt.Errorf("unknown command %q", rest[0]))
	}
	cmd := lookup(name)
	if cmd == nil {
		if strings.HasPrefix(name, "-") {
			return usageError(stderr, "", fmt.Errorf("the command comes before flags: got %q where a command was expected", name))
		}
		return usageError(stderr, "", fmt.Errorf("unknown command %q", name))
	}

	var o options
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	// Errors are reported below in one format, with a pointer to --help,
	// rather than the flag package's dump of every flag.
	fs.SetOutput(io.Discard)
	cmd.flags(fs, &o, e)
	positional, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, cmd.help)
		return exitOK
	}
	if err != nil {
		return usageError(stderr, cmd.name, err)
	}
	if err := checkArgs(cmd, positional); err != nil {
		return usageError(stderr, cmd.name, err)
	}
	if err := cmd.run(ctx, e, &o, positional); err != nil {
		return report(stderr, err)
	}
	return exitOK
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// parseInterspersed parses flags wherever they are among the arguments, as
// kubectl does (`recreate jane-ci -n payments`); the flag package alone
// stops at the first positional argument. Everything after "--" is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// checkArgs checks the number of positional arguments against cmd.args.
func checkArgs(cmd *command, args []string) error {
	switch {
	case cmd.args == "" && len(args) > 0:
		// The arguments are not repeated: one may be a token pasted in
		// the wrong place.
		return fmt.Errorf("%s takes no arguments, got %d%s", cmd.name, len(args), cmd.noArgsHint)
	case cmd.args != "" && len(args) != 1:
		return fmt.Errorf("%s needs exactly one argument %s, got %d", cmd.name, cmd.args, len(args))
	case cmd.args != "" && args[0] == "":
		return fmt.Errorf("argument %s must not be empty", cmd.args)
	}
	return nil
}

// addKubeFlags registers the flags that locate the cluster, and the
// namespace ones when withNamespace is set.
func addKubeFlags(fs *flag.FlagSet, o *options, withNamespace bool) {
	fs.StringVar(&o.kube.kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&o.kube.context, "context", "", "")
	if withNamespace {
		fs.StringVar(&o.kube.namespace, "namespace", "", "")
		fs.StringVar(&o.kube.namespace, "n", "", "")
	}
}

// exitError carries the exit status an error should end the plugin with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode marks err to end the plugin with code.
func withCode(code int, err error) error {
	return &exitError{code: code, err: err}
}

func usageError(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "error: %v\n", err)
	if cmd == "" {
		fmt.Fprintln(stderr, "Run 'kubectl tokenwarden help' for usage.")
	} else {
		fmt.Fprintf(stderr, "Run 'kubectl tokenwarden %s --help' for usage.\n", cmd)
	}
	return exitUsage
}

// report prints err and returns its exit status. An API server answer is
// printed the way kubectl prints it, with the server's message verbatim, so
// a webhook's refusal reads exactly as the webhook wrote it.
func report(stderr io.Writer, err error) int {
	code := exitFailed
	var coded *exitError
	if errors.As(err, &coded) {
		code = coded.code
	}
	fmt.Fprintln(stderr, errorText(err))
	return code
}

func errorText(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		if s.Reason != "" {
			return fmt.Sprintf("Error from server (%s): %s", s.Reason, s.Message)
		}
		return "Error from server: " + s.Message
	}
	return "error: " + err.Error()
}
