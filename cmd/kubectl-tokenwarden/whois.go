package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	"github.com/tokenwarden/tokenwarden/pkg/verifyclient"
)

const (
	// verifyTimeout bounds the whole /verify exchange.
	verifyTimeout = 15 * time.Second
	// maxTokenLine bounds the line read from stdin; real tokens are under
	// a hundred bytes, and a huge input is no token.
	maxTokenLine = 4 << 10
	// maxAnswer bounds the verifier's answer, as verifyclient does.
	maxAnswer = 1 << 20
)

var whoisCommand = &command{
	name:       "whois",
	noArgsHint: " (it reads the token from stdin, which keeps it out of shell history)",
	help: `Read a token from stdin (its first non-empty line) and ask Tokenwarden's
GET /verify who it belongs to: the ApiToken, its type, teams, scopes,
creator and expiry. The token is never printed.

With a verify URL the token goes straight to it. Without one, the request
goes through the API server's service proxy to the in-cluster verification
Service, as your kubeconfig's user (who needs get on services/proxy there).

Usage:
  kubectl tokenwarden whois [flags] < FILE

Examples:
  kubectl get secret jane-ci -n payments -o jsonpath='{.data.token}' | base64 -d |
    kubectl tokenwarden whois
  # Against the local mode (make dev), whose verify URL and CA are in
  # bin/dev/endpoints.env:
  set -a; . bin/dev/endpoints.env; set +a
  kubectl tokenwarden whois < token.txt

Flags:
      --verify-url URL        the /verify endpoint (default $TOKENWARDEN_VERIFY_URL)
      --ca-file PATH          CA certificates to trust for --verify-url
                              (default $TOKENWARDEN_CA_FILE, else the system's)
      --verify-namespace NS   namespace of the verification Service, used
                              without --verify-url (default tokenwarden-system)
      --verify-service NAME   the verification Service (default tokenwarden-verify)
` + kubeFlagsHelp + `
Exit status: 0 the token is valid, 1 it is not, 2 it could not be checked.
`,
	flags: func(fs *flag.FlagSet, o *options, e *env) {
		fs.StringVar(&o.verifyURL, "verify-url", e.getenv("TOKENWARDEN_VERIFY_URL"), "")
		fs.StringVar(&o.caFile, "ca-file", e.getenv("TOKENWARDEN_CA_FILE"), "")
		fs.StringVar(&o.verifyNamespace, "verify-namespace", "tokenwarden-system", "")
		fs.StringVar(&o.verifyService, "verify-service", "tokenwarden-verify", "")
		addKubeFlags(fs, o, false)
	},
	run: runWhois,
}

// verifyTarget is where and how a token is sent.
type verifyTarget struct {
	url    string
	client *http.Client
	// viaAPIServer means the request passes the API server's service
	// proxy. The API server authenticates with the Authorization header and
	// strips it, so the token travels in the Token header instead; it must
	// not go in Authorization either, or it would be offered to the API
	// server as the user's credentials.
	viaAPIServer bool
}

func runWhois(ctx context.Context, e *env, o *options, _ []string) error {
	target, err := whoisTarget(e, o)
	if err != nil {
		return err
	}
	if isTerminal(e.stdin) {
		fmt.Fprintln(e.stderr, "Reading a token from stdin: paste it and press Enter (it shows as you type; prefer a pipe).")
	}
	token, err := readToken(e.stdin)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if !verifyclient.Sendable(token) {
		// The server would refuse it the same way; a header could not even
		// carry it.
		return withCode(exitFailed, fmt.Errorf("not a valid token: %s (it holds spaces or characters other than printable ASCII)", verifyclient.ReasonMalformed))
	}
	ctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	id, err := askVerify(ctx, target, token, e.now())
	if err != nil {
		return err
	}
	return writeIdentity(e.stdout, id, e.now())
}

// whoisTarget picks the endpoint from the flags: --verify-url if set, else
// the service proxy of the kubeconfig's cluster.
func whoisTarget(e *env, o *options) (*verifyTarget, error) {
	if o.verifyURL != "" {
		return directTarget(o.verifyURL, o.caFile)
	}
	if o.caFile != "" {
		return nil, withCode(exitUsage, errors.New("--ca-file (or TOKENWARDEN_CA_FILE) needs --verify-url: through the API server, the kubeconfig's CA applies"))
	}
	if msgs := validation.IsDNS1123Label(o.verifyNamespace); len(msgs) > 0 {
		return nil, withCode(exitUsage, fmt.Errorf("--verify-namespace %q: %s", o.verifyNamespace, strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsDNS1035Label(o.verifyService); len(msgs) > 0 {
		return nil, withCode(exitUsage, fmt.Errorf("--verify-service %q: %s", o.verifyService, strings.Join(msgs, "; ")))
	}
	cl, err := e.cluster(o.kube, e.stderr)
	if err != nil {
		return nil, withCode(exitUnknown, err)
	}
	return proxyTarget(cl.config, o.verifyNamespace, o.verifyService)
}

// directTarget sends the token to rawURL's /verify, trusting only caFile's
// certificates if given.
func directTarget(rawURL, caFile string) (*verifyTarget, error) {
	u, err := verifyclient.Endpoint(rawURL)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("--verify-url %q: want https://host[:port][/path]", rawURL))
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, withCode(exitUsage, fmt.Errorf("--verify-url %q: use https; over http the token would cross the network in clear", rawURL))
	}

	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile) //nolint:gosec // G304: reading the file the user named is the point.
		if err != nil {
			return nil, withCode(exitUsage, fmt.Errorf("--ca-file: %w", err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, withCode(exitUsage, fmt.Errorf("--ca-file %s: no PEM certificate found", caFile))
		}
		tlsConfig.RootCAs = pool
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	return &verifyTarget{
		url:    u.String(),
		client: &http.Client{Transport: transport, CheckRedirect: noRedirects},
	}, nil
}

// proxyTarget sends the token through the API server described by config
// to https:<service>:443 in namespace.
func proxyTarget(config *rest.Config, namespace, service string) (*verifyTarget, error) {
	base, _, err := rest.DefaultServerUrlFor(config)
	if err != nil {
		return nil, withCode(exitUnknown, fmt.Errorf("the kubeconfig's server: %w", err))
	}
	hc, err := rest.HTTPClientFor(config)
	if err != nil {
		return nil, withCode(exitUnknown, fmt.Errorf("connecting to the API server: %w", err))
	}
	c := *hc
	c.CheckRedirect = noRedirects
	u := base.JoinPath("api/v1/namespaces", namespace, "services", "https:"+service+":443", "proxy", "verify")
	return &verifyTarget{url: u.String(), client: &c, viaAPIServer: true}, nil
}

// noRedirects stops at a redirect: /verify has no reason to send one, and
// following it would carry the token elsewhere.
func noRedirects(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}

// askVerify sends token to target and reads the answer. A refusal of the
// token is an exitFailed error; anything that leaves the question open is
// an exitUnknown one. No error holds the token.
func askVerify(ctx context.Context, target *verifyTarget, token string, now time.Time) (*verifyclient.Identity, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.url, nil)
	if err != nil {
		return nil, withCode(exitUnknown, fmt.Errorf("building the request: %w", err))
	}
	if target.viaAPIServer {
		req.Header.Set("Token", token)
	} else {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := target.client.Do(req)
	if err != nil {
		// The error names the URL, which holds no token.
		return nil, withCode(exitUnknown, fmt.Errorf("asking the verifier: %w", err))
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, withCode(exitUnknown, fmt.Errorf("reading the verifier's answer: %w", err))
	}
	return interpretAnswer(resp, body, now)
}

// interpretAnswer turns a /verify answer into an identity or an error,
// reading it as verifyclient does; only the words and the exit codes are
// the plugin's.
func interpretAnswer(resp *http.Response, body []byte, now time.Time) (*verifyclient.Identity, error) {
	// Tokenwarden marks every refusal with X-Tokenwarden-Reason. An answer
	// without it that is a Kubernetes Status comes from the API server
	// itself (bad kubeconfig credentials, no right to the proxy, no
	// endpoints): it says nothing about the token.
	if resp.StatusCode != http.StatusOK && resp.Header.Get("X-Tokenwarden-Reason") == "" {
		if status := apiServerStatus(body); status != nil {
			return nil, withCode(exitUnknown, &apierrors.StatusError{ErrStatus: *status})
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	id, err := verifyclient.ReadAnswer(resp, now)
	var refused *verifyclient.RefusedError
	var status *verifyclient.StatusError
	switch {
	case err == nil:
		return id, nil
	case errors.Is(err, verifyclient.ErrNoUser):
		return nil, withCode(exitUnknown, errors.New("the verifier answered 200 but named no user"))
	case errors.As(err, &refused) && refused.Reason == verifyclient.ReasonRateLimited:
		msg := "the verifier is rate limiting this client"
		if refused.RetryAfter > 0 {
			msg += fmt.Sprintf("; retry in %ds", int((refused.RetryAfter+time.Second-1)/time.Second))
		}
		return nil, withCode(exitUnknown, errors.New(msg))
	case errors.As(err, &refused):
		return nil, withCode(exitFailed, fmt.Errorf("not a valid token: %s", refused.Reason))
	case errors.As(err, &status):
		msg := "the verifier answered " + status.Status
		if status.Reason != "" {
			msg += " (" + status.Reason + ")"
		}
		return nil, withCode(exitUnknown, errors.New(msg))
	}
	// Left: an answer that does not decode; say so once, not twice.
	cause := errors.Unwrap(err)
	if cause == nil {
		cause = err
	}
	return nil, withCode(exitUnknown, fmt.Errorf("reading the verifier's answer: %w", cause))
}

// apiServerStatus returns body as a Kubernetes Status, or nil if it is not
// one.
func apiServerStatus(body []byte) *metav1.Status {
	var status metav1.Status
	if json.Unmarshal(body, &status) != nil || status.Kind != "Status" {
		return nil
	}
	return &status
}

// writeIdentity prints id, with its expiry relative to now.
func writeIdentity(w io.Writer, id *verifyclient.Identity, now time.Time) error {
	expires := "never"
	if id.ExpiresAt != nil {
		at := *id.ExpiresAt
		rel := "in " + shortDuration(at.Sub(now))
		if !at.After(now) {
			rel = "expired " + shortDuration(now.Sub(at)) + " ago"
		}
		expires = fmt.Sprintf("%s (%s)", at.UTC().Format(time.RFC3339), rel)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, line := range [][2]string{
		{"ApiToken", id.Namespace + "/" + id.Name},
		{"Type", id.Type},
		{"Teams", list(id.Teams)},
		{"Scopes", list(id.Scopes)},
		{"Creator", id.Creator},
		{"Expires", expires},
		{"User", id.User},
		{"UID", id.UID},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", line[0], printable(line[1]))
	}
	return tw.Flush()
}

func list(items []string) string {
	if len(items) == 0 {
		return "<none>"
	}
	return strings.Join(items, ", ")
}

// printable replaces control characters in what the server sent, so an
// answer cannot drive the terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// readToken returns the first non-empty line of r, trimmed.
func readToken(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxTokenLine)
	for sc.Scan() {
		if t := string(bytes.TrimSpace(sc.Bytes())); t != "" {
			return t, nil
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return "", fmt.Errorf("stdin: the first line is longer than %d bytes, which no token is", maxTokenLine)
		}
		return "", fmt.Errorf("reading stdin: %w", err)
	}
	return "", errors.New("no token on stdin: pipe one in, for example: ... | base64 -d | kubectl tokenwarden whois")
}

// isTerminal reports whether r is an interactive terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
