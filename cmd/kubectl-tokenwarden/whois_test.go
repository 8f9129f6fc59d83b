package main

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/ratelimit"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/token"
	"github.com/tokenwarden/tokenwarden/internal/verify"
	"github.com/tokenwarden/tokenwarden/internal/verifyhttp"
)

// Tokens the verifier knows: real values, so a leak into any output is easy
// to spot.
var (
	goodToken    = newValue()
	expiredToken = newValue()
	limitedToken = newValue()
	unknownToken = newValue()
	// brokenToken is answered by a verifier gone wrong, not by Tokenwarden.
	brokenToken = newValue()
)

// newValue returns a fresh Team token value.
func newValue() string {
	v, err := token.Format{}.Generate(v1alpha1.TeamTokenType)
	if err != nil {
		panic(err)
	}
	return v
}

// verifier is Tokenwarden's own /verify transport (internal/verifyhttp)
// over TLS, answering from an index that holds goodToken (payments/jane-ci),
// expiredToken and limitedToken, so the plugin is tested against the wire
// contract as the server writes it rather than a copy of it.
type verifier struct {
	*httptest.Server
	caFile string
	// handler is the real one; the server records each request, spends
	// limitedToken's budget before passing it on, and answers brokenToken
	// as a verifier gone wrong would.
	handler http.Handler
	clock   *clocktesting.FakePassiveClock

	mu       sync.Mutex
	requests []*http.Request
}

func newVerifier(t *testing.T) *verifier {
	t.Helper()
	v := &verifier{handler: newVerifyHandler(), clock: verifyClock}
	v.Server = httptest.NewTLSServer(v)
	t.Cleanup(v.Close)
	v.caFile = filepath.Join(t.TempDir(), "ca.crt")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: v.Certificate().Raw})
	if err := os.WriteFile(v.caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return v
}

// verifyClock is the verification server's clock; each request moves it an
// hour on, so every token's budget, one request in 7s, is full again.
var verifyClock = clocktesting.NewFakePassiveClock(now)

// newVerifyHandler returns the real /verify handler over the index of the
// tokens above, with their teams, owned by alice.
func newVerifyHandler() http.Handler {
	index := verify.NewIndex()
	index.Upsert(b.Issued("jane-ci", "payments", goodToken,
		[]b.ApiTokenOption{b.TeamToken("payments", "billing"), b.WithScopes("orders:read", "orders:list")},
		b.WithUID("6f1c1f3e-8d4a-4a57-9a39-0c6b1e1f2a10"), b.WithCreator("alice"),
		b.WithExpiry(now.Add(3*24*time.Hour+4*time.Hour))))
	index.Upsert(b.Issued("old", "payments", expiredToken, []b.ApiTokenOption{b.TeamToken("payments")},
		b.WithCreator("alice"), b.WithPhase(v1alpha1.PhaseExpired)))
	index.Upsert(b.Issued("busy", "payments", limitedToken, []b.ApiTokenOption{b.TeamToken("payments")},
		b.WithCreator("alice")))
	team := func(name string) *v1alpha1.Team {
		return b.Team(name, b.WithOwners(b.User("alice")), b.WithNamespaces("payments"))
	}
	server := &verifyhttp.Server{
		Verifier: &verify.Verifier{Index: index, Clock: verifyClock, Teams: verify.StaticTeams(team("payments"), team("billing"))},
		Limiter:  ratelimit.New(ratelimit.Limits{RequestsPerToken: rate.Every(7 * time.Second), TokenBurst: 1}, verifyClock),
	}
	return server.Handler()
}

func (v *verifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	v.requests = append(v.requests, r.Clone(r.Context()))
	v.mu.Unlock()
	v.answer(w, r)
}

// answer passes r to the real handler, but for the two tokens whose answer
// this test arranges.
func (v *verifier) answer(w http.ResponseWriter, r *http.Request) {
	v.clock.SetTime(v.clock.Now().Add(time.Hour))
	sent, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if sent == "" {
		sent = r.Header.Get("Token")
	}
	switch sent {
	case brokenToken:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"echo":"a token"}`)
		return
	case limitedToken:
		// Spend the token's one request first.
		v.handler.ServeHTTP(httptest.NewRecorder(), r.Clone(r.Context()))
	}
	v.handler.ServeHTTP(w, r)
}

// received returns the requests received so far.
func (v *verifier) received() []*http.Request {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.requests)
}

func (v *verifier) calls() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.requests)
}

// janeCI is whois's answer for goodToken.
const janeCI = `ApiToken: payments/jane-ci
Type:     Team
Teams:    payments, billing
Scopes:   orders:read, orders:list
Creator:  alice
Expires:  2026-03-04T16:00:00Z (in 3d4h)
User:     tokenwarden:payments:jane-ci:6f1c1f3e-8d4a-4a57-9a39-0c6b1e1f2a10
UID:      6f1c1f3e-8d4a-4a57-9a39-0c6b1e1f2a10
`

func TestWhoisDirect(t *testing.T) {
	v := newVerifier(t)
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		env   map[string]string
		want  result
		// wantCalls is how many requests reached the verifier.
		wantCalls int
	}{{
		name:      "valid token",
		stdin:     goodToken + "\n",
		args:      []string{"whois", "--verify-url", v.URL, "--ca-file", v.caFile},
		want:      result{stdout: janeCI},
		wantCalls: 1,
	}, {
		name:      "the local mode's variables, a URL ending in /verify",
		stdin:     "\n  \r\n\t" + goodToken + "  \r\nnot this line\n",
		args:      []string{"whois"},
		env:       map[string]string{"TOKENWARDEN_VERIFY_URL": v.URL + "/verify", "TOKENWARDEN_CA_FILE": v.caFile},
		want:      result{stdout: janeCI},
		wantCalls: 1,
	}, {
		name:      "no trailing newline",
		stdin:     goodToken,
		args:      []string{"whois", "--verify-url=" + v.URL + "/", "--ca-file=" + v.caFile},
		want:      result{stdout: janeCI},
		wantCalls: 1,
	}, {
		name:      "expired token",
		stdin:     expiredToken + "\n",
		args:      []string{"whois", "--verify-url", v.URL, "--ca-file", v.caFile},
		want:      result{code: 1, stderr: "error: not a valid token: Expired\n"},
		wantCalls: 1,
	}, {
		name:      "unknown token",
		stdin:     unknownToken + "\n",
		args:      []string{"whois", "--verify-url", v.URL, "--ca-file", v.caFile},
		want:      result{code: 1, stderr: "error: not a valid token: Unknown\n"},
		wantCalls: 1,
	}, {
		name:      "rate limited",
		stdin:     limitedToken,
		args:      []string{"whois", "--verify-url", v.URL, "--ca-file", v.caFile},
		want:      result{code: 2, stderr: "error: the verifier is rate limiting this client; retry in 7s\n"},
		wantCalls: 1,
	}, {
		name:      "a 200 that names nobody",
		stdin:     brokenToken,
		args:      []string{"whois", "--verify-url", v.URL, "--ca-file", v.caFile},
		want:      result{code: 2, stderr: "error: the verifier answered 200 but named no user\n"},
		wantCalls: 1,
	}, {
		name:      "not the verify endpoint",
		stdin:     goodToken,
		args:      []string{"whois", "--verify-url", v.URL + "/elsewhere/", "--ca-file", v.caFile},
		want:      result{code: 2, stderr: "error: the verifier answered 404 Not Found\n"},
		wantCalls: 1,
	}, {
		name:  "a value with spaces is refused unsent",
		stdin: "twt_abc def\n",
		args:  []string{"whois", "--verify-url", v.URL, "--ca-file", v.caFile},
		want: result{code: 1, stderr: "error: not a valid token: Malformed " +
			"(it holds spaces or characters other than printable ASCII)\n"},
	}, {
		name:  "empty stdin",
		stdin: "",
		args:  []string{"whois", "--verify-url", v.URL, "--ca-file", v.caFile},
		want: result{code: 2, stderr: "error: no token on stdin: pipe one in, for example: " +
			"... | base64 -d | kubectl tokenwarden whois\n"},
	}, {
		name:  "blank stdin",
		stdin: "\n \n\t\n",
		args:  []string{"whois", "--verify-url", v.URL, "--ca-file", v.caFile},
		want: result{code: 2, stderr: "error: no token on stdin: pipe one in, for example: " +
			"... | base64 -d | kubectl tokenwarden whois\n"},
	}, {
		name:  "a huge line",
		stdin: strings.Repeat("a", 5000),
		args:  []string{"whois", "--verify-url", v.URL, "--ca-file", v.caFile},
		want:  result{code: 2, stderr: "error: stdin: the first line is longer than 4096 bytes, which no token is\n"},
	}, {
		name:  "the server's CA not trusted",
		stdin: goodToken,
		args:  []string{"whois", "--verify-url", v.URL},
		want: result{code: 2, stderr: `error: asking the verifier: Get "` + v.URL + `/verify": ` +
			"tls: failed to verify certificate: x509: certificate signed by unknown authority\n"},
		wantCalls: 0,
	}, {
		name:  "a CA file that does not exist",
		stdin: goodToken,
		args:  []string{"whois", "--verify-url", v.URL, "--ca-file", "/nonexistent/ca.crt"},
		want:  result{code: 2, stderr: "error: --ca-file: open /nonexistent/ca.crt: no such file or directory\n"},
	}, {
		name:  "a CA file without a certificate",
		stdin: goodToken,
		args:  []string{"whois", "--verify-url", v.URL, "--ca-file", "whois_test.go"},
		want:  result{code: 2, stderr: "error: --ca-file whois_test.go: no PEM certificate found\n"},
	}, {
		name:  "a URL that is no URL",
		stdin: goodToken,
		args:  []string{"whois", "--verify-url", "tokenwarden-verify:8443"},
		want:  result{code: 2, stderr: "error: --verify-url \"tokenwarden-verify:8443\": want https://host[:port][/path]\n"},
	}, {
		name:  "plain http beyond this machine",
		stdin: goodToken,
		args:  []string{"whois", "--verify-url", "http://verify.example.com"},
		want: result{code: 2, stderr: "error: --verify-url \"http://verify.example.com\": " +
			"use https; over http the token would cross the network in clear\n"},
	}, {
		name:  "a CA file without a URL",
		stdin: goodToken,
		args:  []string{"whois", "--ca-file", v.caFile},
		want: result{code: 2, stderr: "error: --ca-file (or TOKENWARDEN_CA_FILE) needs --verify-url: " +
			"through the API server, the kubeconfig's CA applies\n"},
	}, {
		name:  "an argument",
		stdin: goodToken,
		args:  []string{"whois", goodToken},
		want: result{code: 2, stderr: "error: whois takes no arguments, got 1 " +
			"(it reads the token from stdin, which keeps it out of shell history)\n" +
			"Run 'kubectl tokenwarden whois --help' for usage.\n"},
	}, {
		name:  "-n is not a flag of whois",
		stdin: goodToken,
		args:  []string{"whois", "-n", "payments"},
		want: result{code: 2, stderr: "error: flag provided but not defined: -n\n" +
			"Run 'kubectl tokenwarden whois --help' for usage.\n"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d := fakeDeps(newFakeClient(t, interceptor.Funcs{}), "payments")
			d.getenv = func(k string) string { return tc.env[k] }
			before := v.calls()

			got := runPlugin(d, tc.stdin, tc.args...)
			check(t, got, tc.want)

			if calls := v.calls() - before; calls != tc.wantCalls {
				t.Errorf("the verifier was asked %d times, want %d", calls, tc.wantCalls)
			}
			for _, tok := range []string{goodToken, expiredToken, limitedToken, brokenToken, unknownToken, "twt_abc"} {
				if strings.Contains(got.stdout+got.stderr, tok) {
					t.Errorf("the output holds the token %s", tok)
				}
			}
		})
	}
}

func TestWhoisSendsTheTokenAsABearerToken(t *testing.T) {
	v := newVerifier(t)
	runPlugin(fakeDeps(nil, ""), goodToken, "whois", "--verify-url", v.URL, "--ca-file", v.caFile)
	if v.calls() != 1 {
		t.Fatalf("the verifier was asked %d times, want 1", v.calls())
	}
	r := v.received()[0]
	if got := r.Header.Get("Authorization"); got != "Bearer "+goodToken {
		t.Errorf("Authorization = %q, want the token as a bearer token", got)
	}
	if got := r.Header.Get("Token"); got != "" {
		t.Errorf("Token = %q, want none", got)
	}
}

// apiServer imitates kube-apiserver's service proxy in front of /verify:
// it checks the user's own credentials, drops them, and passes the request
// on, or answers with a Status of its own.
type apiServer struct {
	*httptest.Server
	// status, if set, is the API server's own answer.
	status string
	code   int
	// verifier answers what the API server passes on.
	verifier *verifier

	mu       sync.Mutex
	requests []*http.Request
}

func (a *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests = append(a.requests, r.Clone(r.Context()))
	a.mu.Unlock()
	if a.status != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.code)
		_, _ = w.Write([]byte(a.status))
		return
	}
	if r.URL.Path != "/api/v1/namespaces/tokenwarden-system/services/https:tokenwarden-verify:443/proxy/verify" {
		http.NotFound(w, r)
		return
	}
	// kube-apiserver takes the user's own credentials off before passing
	// the request on to the Service.
	forward := r.Clone(r.Context())
	forward.Header.Del("Authorization")
	forward.URL.Path = "/verify"
	a.verifier.answer(w, forward)
}

func newAPIServer(t *testing.T, code int, status string) (*apiServer, *rest.Config) {
	t.Helper()
	a := &apiServer{status: status, code: code, verifier: &verifier{handler: newVerifyHandler(), clock: verifyClock}}
	a.Server = httptest.NewTLSServer(a)
	t.Cleanup(a.Close)
	config := &rest.Config{
		Host:            a.URL,
		BearerToken:     "kube-user-credentials",
		TLSClientConfig: rest.TLSClientConfig{CAData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Certificate().Raw})},
	}
	return a, config
}

// forbidden is the API server's answer to a user without get on
// services/proxy.
const forbidden = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",` +
	`"message":"services \"https:tokenwarden-verify:443\" is forbidden: User \"bob\" cannot get resource \"services/proxy\" in API group \"\" in the namespace \"tokenwarden-system\"",` +
	`"reason":"Forbidden","details":{"name":"https:tokenwarden-verify:443","kind":"services"},"code":403}`

// unauthorized is the API server's answer to credentials it does not take.
const unauthorized = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`

func TestWhoisThroughTheServiceProxy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stdin  string
		args   []string
		code   int
		status string
		want   result
		// wantPath is the path asked, "" for no request.
		wantPath string
	}{{
		name:     "valid token",
		stdin:    goodToken,
		args:     []string{"whois"},
		want:     result{stdout: janeCI},
		wantPath: "/api/v1/namespaces/tokenwarden-system/services/https:tokenwarden-verify:443/proxy/verify",
	}, {
		name:     "refused token",
		stdin:    expiredToken,
		args:     []string{"whois"},
		want:     result{code: 1, stderr: "error: not a valid token: Expired\n"},
		wantPath: "/api/v1/namespaces/tokenwarden-system/services/https:tokenwarden-verify:443/proxy/verify",
	}, {
		name:     "another Service",
		stdin:    goodToken,
		args:     []string{"whois", "--verify-namespace", "auth", "--verify-service", "verify"},
		want:     result{code: 2, stderr: "error: the verifier answered 404 Not Found\n"},
		wantPath: "/api/v1/namespaces/auth/services/https:verify:443/proxy/verify",
	}, {
		name:   "no right to the proxy",
		stdin:  goodToken,
		args:   []string{"whois"},
		code:   http.StatusForbidden,
		status: forbidden,
		want: result{code: 2, stderr: `Error from server (Forbidden): services "https:tokenwarden-verify:443" is forbidden: ` +
			`User "bob" cannot get resource "services/proxy" in API group "" in the namespace "tokenwarden-system"` + "\n"},
		wantPath: "/api/v1/namespaces/tokenwarden-system/services/https:tokenwarden-verify:443/proxy/verify",
	}, {
		name:   "the kubeconfig's credentials refused",
		stdin:  goodToken,
		args:   []string{"whois"},
		code:   http.StatusUnauthorized,
		status: unauthorized,
		// Not "not a valid token": the API server refused the user, not
		// the token.
		want:     result{code: 2, stderr: "Error from server (Unauthorized): Unauthorized\n"},
		wantPath: "/api/v1/namespaces/tokenwarden-system/services/https:tokenwarden-verify:443/proxy/verify",
	}, {
		name:  "a namespace that is no name",
		stdin: goodToken,
		args:  []string{"whois", "--verify-namespace", "../secrets"},
		want: result{code: 2, stderr: `error: --verify-namespace "../secrets": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', ` +
			`and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')` + "\n"},
	}, {
		name:  "a Service that is no name",
		stdin: goodToken,
		args:  []string{"whois", "--verify-service", "Verify"},
		want: result{code: 2, stderr: `error: --verify-service "Verify": a DNS-1035 label must consist of lower case alphanumeric characters or '-', ` +
			`start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')` + "\n"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			a, config := newAPIServer(t, tc.code, tc.status)
			d := fakeDeps(nil, "payments")
			d.cluster = func(kubeFlags, io.Writer) (*cluster, error) {
				return &cluster{namespace: "payments", config: config}, nil
			}

			check(t, runPlugin(d, tc.stdin, tc.args...), tc.want)

			a.mu.Lock()
			requests := slices.Clone(a.requests)
			a.mu.Unlock()
			if tc.wantPath == "" {
				if len(requests) != 0 {
					t.Fatalf("the API server was asked %d times, want never", len(requests))
				}
				return
			}
			if len(requests) != 1 {
				t.Fatalf("the API server was asked %d times, want once", len(requests))
			}
			r := requests[0]
			if r.URL.Path != tc.wantPath {
				t.Errorf("path = %s, want %s", r.URL.Path, tc.wantPath)
			}
			// The user's credentials authenticate to the API server; the
			// token rides in the Token header, which the proxy passes on.
			if got := r.Header.Get("Authorization"); got != "Bearer kube-user-credentials" {
				t.Errorf("Authorization = %q, want the kubeconfig's credentials", got)
			}
			if got := r.Header.Get("Token"); got != tc.stdin {
				t.Errorf("Token = %q, want the token", got)
			}
		})
	}
}
