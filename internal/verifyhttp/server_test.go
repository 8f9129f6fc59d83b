package verifyhttp

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/time/rate"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz/authztest"
	"github.com/tokenwarden/tokenwarden/internal/ratelimit"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/verify"
	"github.com/tokenwarden/tokenwarden/pkg/verifyclient"
)

// fixture is a Server over an index of a few tokens.
type fixture struct {
	server   *Server
	clock    *clocktesting.FakePassiveClock
	good     string // Team token payments/ci, expiring an hour after t0
	wildcard string // Wildcard token of jane, who owns payments
	disabled string
	unknown  string
}

func newFixture(t *testing.T, limits ratelimit.Limits) *fixture {
	f := &fixture{
		clock:    clocktesting.NewFakePassiveClock(t0),
		good:     b.NewValue(t, v1alpha1.TeamTokenType),
		wildcard: b.NewValue(t, v1alpha1.WildcardTokenType),
		disabled: b.NewValue(t, v1alpha1.TeamTokenType),
		unknown:  b.NewValue(t, v1alpha1.TeamTokenType),
	}
	ix := verify.NewIndex()
	ix.Upsert(b.Issued("ci", "payments", f.good,
		[]b.ApiTokenOption{b.TeamToken("payments", "orders"), b.WithScopes("read:orders", "write:orders")},
		b.WithCreator("jane@example.com", "order-leads"), b.WithExpiry(t0.Add(time.Hour))))
	ix.Upsert(b.Issued("all", "payments", f.wildcard, nil, b.WithCreator("jane@example.com")))
	ix.Upsert(b.Issued("off", "payments", f.disabled, []b.ApiTokenOption{b.TeamToken("payments")},
		b.WithPhase(v1alpha1.PhaseDisabled)))
	f.server = &Server{
		Verifier: &verify.Verifier{
			Index:  ix,
			Clock:  f.clock,
			Teams:  verify.StaticTeams(b.Team("payments", b.WithOwners(b.User("jane@example.com")), b.WithNamespaces("ns", "payments")), b.Team("orders", b.WithOwners(b.Group("order-leads")), b.WithNamespaces("ns", "payments"))),
			Admins: &authztest.Admins{},
		},
		Limiter:  ratelimit.New(limits, f.clock),
		LastUsed: verify.NewLastUsed(),
	}
	return f
}

// do serves one request from addr and checks no value leaked into it.
func (f *fixture) do(t *testing.T, r *http.Request, addr string) *httptest.ResponseRecorder {
	t.Helper()
	r.RemoteAddr = addr + ":40000"
	w := httptest.NewRecorder()
	f.server.Handler().ServeHTTP(w, r)
	for _, v := range []string{f.good, f.wildcard, f.disabled, f.unknown} {
		if strings.Contains(w.Body.String(), v) {
			t.Fatal("a token value was echoed in the body")
		}
		for name, vals := range w.Header() {
			for _, hv := range vals {
				if strings.Contains(hv, v) {
					t.Fatalf("a token value was echoed in header %s", name)
				}
			}
		}
	}
	return w
}

// absent in wantHeaders means the header must be missing.
const absent = "<absent>"

func get(target string, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return r
}

func TestVerifyEndpoint(t *testing.T) {
	f := newFixture(t, ratelimit.DefaultLimits())
	goodIdentity := `{
		"user": "tokenwarden:payments:ci:uid-ci", "name": "ci", "namespace": "payments", "uid": "uid-ci",
		"type": "Team", "teams": ["payments", "orders"], "scopes": ["read:orders", "write:orders"],
		"expiresAt": "2030-01-02T04:04:05Z", "creator": "jane@example.com"
	}`
	tests := []struct {
		name        string
		req         *http.Request
		allowQuery  bool
		wantStatus  int
		wantHeaders map[string]string // absent means the header must be missing
		wantBody    string
	}{
		{
			name:       "verified",
			req:        get("/verify", "Authorization", "Bearer "+f.good),
			wantStatus: http.StatusOK,
			wantHeaders: map[string]string{
				"Content-Type":             "application/json",
				"Cache-Control":            "no-store",
				"X-Tokenwarden-User":       "tokenwarden:payments:ci:uid-ci",
				"X-Tokenwarden-Name":       "ci",
				"X-Tokenwarden-Namespace":  "payments",
				"X-Tokenwarden-Type":       "Team",
				"X-Tokenwarden-Teams":      "payments,orders",
				"X-Tokenwarden-Scopes":     "read:orders,write:orders",
				"X-Tokenwarden-Expires-At": "2030-01-02T04:04:05Z",
				"X-Tokenwarden-Creator":    "jane@example.com",
				"WWW-Authenticate":         absent,
				"X-Tokenwarden-Reason":     absent,
			},
			wantBody: goodIdentity,
		},
		{
			name:       "wildcard token, no expiry",
			req:        get("/verify", "Token", f.wildcard),
			wantStatus: http.StatusOK,
			wantHeaders: map[string]string{
				"X-Tokenwarden-Type":       "Wildcard",
				"X-Tokenwarden-Teams":      "payments",
				"X-Tokenwarden-Scopes":     "",
				"X-Tokenwarden-Expires-At": absent,
			},
			wantBody: `{"user": "tokenwarden:payments:all:uid-all", "name": "all", "namespace": "payments", "uid": "uid-all",
				"type": "Wildcard", "teams": ["payments"], "scopes": [], "creator": "jane@example.com"}`,
		},
		{
			name:       "missing",
			req:        get("/verify"),
			wantStatus: http.StatusUnauthorized,
			wantHeaders: map[string]string{
				"WWW-Authenticate":     `Bearer realm="tokenwarden"`,
				"X-Tokenwarden-Reason": "Missing",
				"Content-Type":         "application/json",
				"X-Tokenwarden-User":   absent,
			},
			wantBody: `{"reason": "Missing"}`,
		},
		{
			name:       "malformed",
			req:        get("/verify", "Authorization", "Bearer hunter2"),
			wantStatus: http.StatusUnauthorized,
			wantHeaders: map[string]string{
				"WWW-Authenticate":     `Bearer realm="tokenwarden", error="invalid_token", error_description="Malformed"`,
				"X-Tokenwarden-Reason": "Malformed",
			},
			wantBody: `{"reason": "Malformed"}`,
		},
		{
			name:       "unknown",
			req:        get("/verify", "Authorization", "apiToken "+f.unknown),
			wantStatus: http.StatusUnauthorized,
			wantHeaders: map[string]string{
				"WWW-Authenticate":     `Bearer realm="tokenwarden", error="invalid_token", error_description="Unknown"`,
				"X-Tokenwarden-Reason": "Unknown",
			},
			wantBody: `{"reason": "Unknown"}`,
		},
		{
			name:       "disabled",
			req:        get("/verify", "Authorization", "accessToken "+f.disabled),
			wantStatus: http.StatusUnauthorized,
			wantHeaders: map[string]string{
				"WWW-Authenticate":     `Bearer realm="tokenwarden", error="invalid_token", error_description="Disabled"`,
				"X-Tokenwarden-Reason": "Disabled",
			},
			wantBody: `{"reason": "Disabled"}`,
		},
		{
			name:        "query token when not allowed",
			req:         get("/verify?token=" + f.good),
			wantStatus:  http.StatusUnauthorized,
			wantHeaders: map[string]string{"X-Tokenwarden-Reason": "Missing"},
			wantBody:    `{"reason": "Missing"}`,
		},
		{
			name:        "query token when allowed",
			req:         get("/verify?token=" + f.good),
			allowQuery:  true,
			wantStatus:  http.StatusOK,
			wantHeaders: map[string]string{"X-Tokenwarden-User": "tokenwarden:payments:ci:uid-ci"},
			wantBody:    goodIdentity,
		},
		{
			name:       "HEAD is a GET without body",
			req:        httptest.NewRequest(http.MethodHead, "/verify", nil),
			wantStatus: http.StatusUnauthorized,
		},
		{
			name:        "any method, as Envoy's ext_authz sends the client's",
			req:         withBearer(httptest.NewRequest(http.MethodPost, "/verify", nil), f.good),
			wantStatus:  http.StatusOK,
			wantHeaders: map[string]string{"X-Tokenwarden-User": "tokenwarden:payments:ci:uid-ci"},
		},
		{
			name:        "a path below /verify, as ext_authz's path_prefix makes",
			req:         withBearer(httptest.NewRequest(http.MethodDelete, "/verify/orders/42?x=1", nil), f.good),
			wantStatus:  http.StatusOK,
			wantHeaders: map[string]string{"X-Tokenwarden-User": "tokenwarden:payments:ci:uid-ci"},
		},
		{
			name:        "an unclean path below /verify is answered, not redirected",
			req:         withBearer(httptest.NewRequest(http.MethodGet, "/verify//orders/../42", nil), f.good),
			wantStatus:  http.StatusOK,
			wantHeaders: map[string]string{"X-Tokenwarden-User": "tokenwarden:payments:ci:uid-ci"},
		},
		{
			name:       "a path below /verify without a token",
			req:        get("/verify/extra"),
			wantStatus: http.StatusUnauthorized,
		},
		{
			name:       "unknown path",
			req:        get("/verifyx"),
			wantStatus: http.StatusNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			f.server.AllowQueryToken = tt.allowQuery
			w := f.do(t, tt.req, "192.0.2.1")
			g.Expect(w.Code).To(Equal(tt.wantStatus))
			for name, want := range tt.wantHeaders {
				name = http.CanonicalHeaderKey(name)
				if want == absent {
					g.Expect(w.Header()).NotTo(HaveKey(name), name)
				} else {
					g.Expect(w.Header()).To(HaveKeyWithValue(name, []string{want}), name)
				}
			}
			if tt.wantBody != "" {
				g.Expect(w.Body.String()).To(MatchJSON(tt.wantBody))
			}
		})
	}
}

func TestVerifyEndpointClientLimit(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, ratelimit.Limits{FailuresPerClient: 0.5, FailureBurst: 2})

	for range 2 {
		w := f.do(t, get("/verify", "Authorization", "Bearer "+f.unknown), "192.0.2.1")
		g.Expect(w.Code).To(Equal(http.StatusUnauthorized))
	}
	// Spent: the next refused attempt is answered 429, and spends nothing.
	for _, value := range []string{f.unknown, f.disabled, "hunter2"} {
		w := f.do(t, get("/verify", "Authorization", "Bearer "+value), "192.0.2.1")
		g.Expect(w.Code).To(Equal(http.StatusTooManyRequests))
		g.Expect(w.Header().Get("Retry-After")).To(Equal("2"))
		g.Expect(w.Header().Get("RateLimit-Limit")).To(Equal("2"))
		g.Expect(w.Header().Get("RateLimit-Remaining")).To(Equal("0"))
		g.Expect(w.Header().Get("RateLimit-Reset")).To(Equal("4"))
		g.Expect(w.Header().Get("WWW-Authenticate")).To(BeEmpty())
		g.Expect(w.Body.String()).To(MatchJSON(`{"reason": "RateLimited"}`))
	}

	// A valid token from the same address is not refused for the failures
	// of others: behind a proxy that address is every client's. It reports
	// its own budget.
	w := f.do(t, get("/verify", "Authorization", "Bearer "+f.good), "192.0.2.1")
	g.Expect(w.Code).To(Equal(http.StatusOK))
	g.Expect(w.Header().Get("RateLimit-Limit")).To(Equal("200"))
	g.Expect(w.Header().Get("RateLimit-Remaining")).To(Equal("199"))
	g.Expect(f.server.LastUsed.Drain()).To(HaveKey(types.NamespacedName{Namespace: "payments", Name: "ci"}))

	// Other addresses have their own budgets.
	w = f.do(t, get("/verify", "Authorization", "Bearer "+f.unknown), "192.0.2.2")
	g.Expect(w.Code).To(Equal(http.StatusUnauthorized))

	// Retry-After is honest: after it, the client may fail again.
	f.clock.SetTime(t0.Add(2 * time.Second))
	w = f.do(t, get("/verify", "Authorization", "Bearer "+f.unknown), "192.0.2.1")
	g.Expect(w.Code).To(Equal(http.StatusUnauthorized))
	g.Expect(w.Header().Get("X-Tokenwarden-Reason")).To(Equal(verify.ReasonUnknown))
}

// TestValidTokensPassWhileAClientFloods is issue #13's case: every service
// behind one proxy shares its address, and one anonymous caller sending a
// bad token once a second kept the whole address answering 429. Good tokens
// from that address must keep verifying, while the caller's own refused
// attempts are answered 429, cheaply.
func TestValidTokensPassWhileAClientFloods(t *testing.T) {
	g := NewWithT(t)
	// Room for the two good tokens' limiters only, which barely refill: a
	// limiter made for a bad value would evict one of them, and its budget
	// would start afresh.
	limits := ratelimit.DefaultLimits()
	limits.MaxTokens, limits.RequestsPerToken = 2, 0.001
	f := newFixture(t, limits)
	const proxy = "192.0.2.1"
	for i := range 200 {
		bad := "Bearer x"
		if i%2 == 1 {
			bad = "Bearer " + f.unknown
		}
		w := f.do(t, get("/verify", "Authorization", bad), proxy)
		if i < ratelimit.DefaultLimits().FailureBurst {
			g.Expect(w.Code).To(Equal(http.StatusUnauthorized), "attempt %d", i)
		} else {
			g.Expect(w.Code).To(Equal(http.StatusTooManyRequests), "attempt %d", i)
			g.Expect(w.Header().Get("Retry-After")).To(Equal("1"))
			g.Expect(w.Header().Get("RateLimit-Remaining")).To(Equal("0"))
		}
		// Faster than the budget earns attempts back (one a second), so it
		// stays spent after the burst, as a slow but steady caller keeps it.
		f.clock.SetTime(f.clock.Now().Add(time.Millisecond))
		if i%10 == 0 {
			for _, good := range []string{f.good, f.wildcard} {
				w := f.do(t, get("/verify", "Authorization", "Bearer "+good), proxy)
				g.Expect(w.Code).To(Equal(http.StatusOK), "a good token after %d bad attempts", i+1)
			}
		}
	}
	for _, good := range []string{f.good, f.wildcard} {
		w := f.do(t, get("/verify", "Authorization", "Bearer "+good), proxy)
		g.Expect(w.Header().Get("RateLimit-Remaining")).To(Equal(strconv.Itoa(limits.TokenBurst-21)),
			"only the good tokens have limiters: each kept its 21 verifications")
	}
}

func TestVerifyEndpointRetryAfterIsAtLeastOneSecond(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, ratelimit.Limits{FailuresPerClient: 100, FailureBurst: 1})
	f.do(t, get("/verify", "Token", f.unknown), "192.0.2.1")
	w := f.do(t, get("/verify", "Token", f.unknown), "192.0.2.1")
	g.Expect(w.Code).To(Equal(http.StatusTooManyRequests))
	g.Expect(w.Header().Get("Retry-After")).To(Equal("1"), "10ms rounds up to a whole second")
}

func TestVerifyEndpointTokenLimit(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, ratelimit.Limits{RequestsPerToken: 1, TokenBurst: 2})
	for range 2 {
		w := f.do(t, get("/verify", "Authorization", "Bearer "+f.good), "192.0.2.1")
		g.Expect(w.Code).To(Equal(http.StatusOK))
	}
	// The limit follows the token, not the address.
	w := f.do(t, get("/verify", "Authorization", "Bearer "+f.good), "192.0.2.2")
	g.Expect(w.Code).To(Equal(http.StatusTooManyRequests))
	g.Expect(w.Header().Get("Retry-After")).To(Equal("1"))
	g.Expect(w.Header().Get("RateLimit-Limit")).To(Equal("2"))
	g.Expect(w.Header().Get("RateLimit-Remaining")).To(Equal("0"))
	g.Expect(w.Header().Get("RateLimit-Reset")).To(Equal("2"))
	// Another token is unaffected, and a limited request is no failure.
	w = f.do(t, get("/verify", "Authorization", "Bearer "+f.wildcard), "192.0.2.2")
	g.Expect(w.Code).To(Equal(http.StatusOK))
	info, _ := f.server.Limiter.CheckClient("192.0.2.2")
	g.Expect(info.Remaining).To(Equal(ratelimit.DefaultLimits().FailureBurst))
}

func TestVerifyEndpointRecordsLastUse(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, ratelimit.DefaultLimits())
	f.do(t, get("/verify", "Authorization", "Bearer "+f.good), "192.0.2.1")
	f.do(t, get("/verify", "Authorization", "Bearer "+f.disabled), "192.0.2.1")
	f.clock.SetTime(t0.Add(time.Minute))
	f.do(t, get("/verify", "Authorization", "Bearer "+f.good), "192.0.2.1")

	g.Expect(f.server.LastUsed.Drain()).To(Equal(map[types.NamespacedName]time.Time{{Namespace: "payments", Name: "ci"}: t0.Add(time.Minute)}))
	g.Expect(f.server.LastUsed.Drain()).To(BeEmpty())
}

func TestUnavailableIsNotTheClientsFault(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, ratelimit.Limits{FailuresPerClient: 1, FailureBurst: 1})
	f.server.Verifier.Admins = &authztest.Admins{Err: errors.New("SubjectAccessReview timed out")}
	for range 3 {
		w := f.do(t, get("/verify", "Authorization", "Bearer "+f.wildcard), "192.0.2.1")
		g.Expect(w.Code).To(Equal(http.StatusServiceUnavailable))
		g.Expect(w.Header().Get("Retry-After")).To(Equal("1"))
		g.Expect(w.Body.String()).To(MatchJSON(`{"reason": "Unavailable"}`))
	}
	w := f.do(t, post("/tokenreview", review(f.wildcard)), "192.0.2.1")
	g.Expect(w.Code).To(Equal(http.StatusServiceUnavailable))
	_, ok := f.server.Limiter.CheckClient("192.0.2.1")
	g.Expect(ok).To(BeTrue())
}

func review(value string, audiences ...string) string {
	data, err := json.Marshal(authenticationv1.TokenReview{
		TypeMeta: typeMeta("authentication.k8s.io/v1"),
		Spec:     authenticationv1.TokenReviewSpec{Token: value, Audiences: audiences},
	})
	if err != nil {
		panic(err)
	}
	return string(data)
}

func post(target, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func TestTokenReview(t *testing.T) {
	f := newFixture(t, ratelimit.DefaultLimits())
	verified := func(audiences ...string) authenticationv1.TokenReview {
		return authenticationv1.TokenReview{
			TypeMeta: typeMeta("authentication.k8s.io/v1"),
			Status: authenticationv1.TokenReviewStatus{
				Authenticated: true,
				User: authenticationv1.UserInfo{
					Username: "tokenwarden:payments:ci:uid-ci",
					UID:      "uid-ci",
					Groups:   []string{"tokenwarden:type:Team", "tokenwarden:team:payments", "tokenwarden:team:orders"},
					Extra:    map[string]authenticationv1.ExtraValue{"auth.tokenwarden.io/scopes": {"read:orders", "write:orders"}},
				},
				Audiences: audiences,
			},
		}
	}
	refused := func(reason string) authenticationv1.TokenReview {
		return authenticationv1.TokenReview{
			TypeMeta: typeMeta("authentication.k8s.io/v1"),
			Status:   authenticationv1.TokenReviewStatus{Error: reason},
		}
	}
	tests := []struct {
		name       string
		path       string
		body       string
		wantStatus int
		want       *authenticationv1.TokenReview
	}{
		{"verified", "/apis/authentication.k8s.io/v1/tokenreviews", review(f.good), http.StatusOK, new(verified())},
		{"short path", "/tokenreview", review(f.good), http.StatusOK, new(verified())},
		{"valid for the API server's own audience, whichever it asks", "/tokenreview", review(f.good, "https://kubernetes.default.svc"), http.StatusOK, new(verified())},
		{"refused is still 200", "/tokenreview", review(f.unknown), http.StatusOK, new(refused("Unknown"))},
		{"disabled", "/tokenreview", review(f.disabled), http.StatusOK, new(refused("Disabled"))},
		{"garbage", "/tokenreview", review("hunter2"), http.StatusOK, new(refused("Malformed"))},
		{"no token", "/tokenreview", review(""), http.StatusOK, new(refused("Missing"))},
		{
			name: "v1beta1 is answered in v1beta1", path: "/tokenreview",
			body:       strings.Replace(review(f.unknown), "authentication.k8s.io/v1", "authentication.k8s.io/v1beta1", 1),
			wantStatus: http.StatusOK,
			want: &authenticationv1.TokenReview{
				TypeMeta: typeMeta("authentication.k8s.io/v1beta1"),
				Status:   authenticationv1.TokenReviewStatus{Error: "Unknown"},
			},
		},
		{"malformed JSON", "/tokenreview", `{"spec": {"token": "` + f.good + `"`, http.StatusBadRequest, nil},
		{"not JSON", "/tokenreview", "token=" + f.good, http.StatusBadRequest, nil},
		{"wrong JSON type", "/tokenreview", `{"spec": {"token": 42}}`, http.StatusBadRequest, nil},
		{"too large", "/tokenreview", `{"spec": {"token": "` + strings.Repeat("a", maxReviewBytes) + `"}}`, http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			w := f.do(t, post(tt.path, tt.body), "192.0.2.1")
			g.Expect(w.Code).To(Equal(tt.wantStatus))
			g.Expect(w.Header().Get("Content-Type")).To(Equal("application/json"))
			if tt.want == nil {
				return
			}
			var got authenticationv1.TokenReview
			g.Expect(json.Unmarshal(w.Body.Bytes(), &got)).To(Succeed())
			g.Expect(got).To(Equal(*tt.want))
		})
	}
}

func TestTokenReviewMethod(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, ratelimit.DefaultLimits())
	w := f.do(t, get("/tokenreview"), "192.0.2.1")
	g.Expect(w.Code).To(Equal(http.StatusMethodNotAllowed))
}

func TestTokenReviewLimits(t *testing.T) {
	type step struct {
		token      func(f *fixture) string
		wantStatus int
		wantError  string // status.error when 200; "" means authenticated
	}
	good := func(f *fixture) string { return f.good }
	unknown := func(f *fixture) string { return f.unknown }
	tests := []struct {
		name   string
		limits ratelimit.Limits
		steps  []step
	}{
		{
			// kube-apiserver is one address for every user: failures must
			// not lock the others out.
			name:   "failures through kube-apiserver lock nobody out",
			limits: ratelimit.Limits{FailuresPerClient: rate.Every(time.Hour), FailureBurst: 1},
			steps: []step{
				{unknown, http.StatusOK, "Unknown"},
				{unknown, http.StatusOK, "Unknown"},
				{unknown, http.StatusOK, "Unknown"},
				{good, http.StatusOK, ""},
			},
		},
		{
			name:   "the per-token limit still applies",
			limits: ratelimit.Limits{RequestsPerToken: 1, TokenBurst: 2},
			steps: []step{
				{good, http.StatusOK, ""},
				{good, http.StatusOK, ""},
				{good, http.StatusTooManyRequests, ""},
				{unknown, http.StatusOK, "Unknown"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newFixture(t, tt.limits)
			for i, st := range tt.steps {
				w := f.do(t, post("/tokenreview", review(st.token(f))), "192.0.2.1")
				g.Expect(w.Code).To(Equal(st.wantStatus), "step %d", i)
				if st.wantStatus == http.StatusTooManyRequests {
					g.Expect(w.Header().Get("Retry-After")).To(Equal("1"))
					g.Expect(w.Header().Get("RateLimit-Limit")).To(Equal("2"))
					g.Expect(w.Header().Get("RateLimit-Remaining")).To(Equal("0"))
					g.Expect(w.Body.String()).To(MatchJSON(`{"reason": "RateLimited"}`))
					continue
				}
				var got authenticationv1.TokenReview
				g.Expect(json.Unmarshal(w.Body.Bytes(), &got)).To(Succeed())
				g.Expect(got.Status.Error).To(Equal(st.wantError), "step %d", i)
				g.Expect(got.Status.Authenticated).To(Equal(st.wantError == ""), "step %d", i)
			}
			for _, client := range []string{"192.0.2.1", ""} {
				info, _ := f.server.Limiter.CheckClient(client)
				g.Expect(info.Remaining).To(Equal(info.Limit), "TokenReview charges no client (%q)", client)
			}
		})
	}
}

func TestMissingTokenIsNotAGuess(t *testing.T) {
	tests := []struct {
		name string
		// spend charges the client's whole budget with bad tokens first.
		spend      bool
		req        func(f *fixture) *http.Request
		wantStatus int
		wantReason string
	}{
		{
			name:       "no token",
			req:        func(*fixture) *http.Request { return get("/verify") },
			wantStatus: http.StatusUnauthorized,
			wantReason: verify.ReasonMissing,
		},
		{
			name:       "an Authorization header of another scheme",
			req:        func(*fixture) *http.Request { return get("/verify", "Authorization", "Basic dXNlcjpwYXNz") },
			wantStatus: http.StatusUnauthorized,
			wantReason: verify.ReasonMissing,
		},
		{
			name:       "no token from a client that spent its budget",
			spend:      true,
			req:        func(*fixture) *http.Request { return get("/verify") },
			wantStatus: http.StatusUnauthorized,
			wantReason: verify.ReasonMissing,
		},
		{
			name:       "a bad token from a client that spent its budget",
			spend:      true,
			req:        func(f *fixture) *http.Request { return get("/verify", "Token", f.unknown) },
			wantStatus: http.StatusTooManyRequests,
			wantReason: verify.ReasonRateLimited,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			const burst = 2
			f := newFixture(t, ratelimit.Limits{FailuresPerClient: rate.Every(time.Hour), FailureBurst: burst})
			if tt.spend {
				for range burst {
					f.do(t, get("/verify", "Token", f.unknown), "192.0.2.1")
				}
			}
			for range 2 * burst {
				w := f.do(t, tt.req(f), "192.0.2.1")
				g.Expect(w.Code).To(Equal(tt.wantStatus))
				g.Expect(w.Body.String()).To(MatchJSON(`{"reason": "` + tt.wantReason + `"}`))
			}
			w := f.do(t, get("/verify", "Token", f.good), "192.0.2.1")
			g.Expect(w.Code).To(Equal(http.StatusOK), "a good token passes whatever the client spent")
			if !tt.spend {
				info, ok := f.server.Limiter.CheckClient("192.0.2.1")
				g.Expect(ok).To(BeTrue())
				g.Expect(info.Remaining).To(Equal(burst), "nothing was charged")
			}
		})
	}
}

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name       string
		trusted    []netip.Prefix
		remoteAddr string
		header     http.Header
		want       string
	}{
		{name: "no proxies trusted", remoteAddr: "192.0.2.1:40000", want: "192.0.2.1"},
		{
			name:       "no proxies trusted: forwarding headers are ignored",
			remoteAddr: "10.0.0.1:40000",
			header:     http.Header{"X-Real-Ip": {"198.51.100.7"}, "X-Forwarded-For": {"198.51.100.8"}},
			want:       "10.0.0.1",
		},
		{
			name:       "an untrusted peer cannot spoof X-Forwarded-For",
			trusted:    proxies,
			remoteAddr: "192.0.2.1:40000",
			header:     http.Header{"X-Forwarded-For": {"198.51.100.8"}},
			want:       "192.0.2.1",
		},
		{
			name:       "an untrusted peer cannot spoof X-Real-IP",
			trusted:    proxies,
			remoteAddr: "192.0.2.1:40000",
			header:     http.Header{"X-Real-Ip": {"198.51.100.7"}},
			want:       "192.0.2.1",
		},
		{
			name:       "trusted proxy: X-Real-IP",
			trusted:    proxies,
			remoteAddr: "10.1.2.3:40000",
			header:     http.Header{"X-Real-Ip": {" 198.51.100.7 "}, "X-Forwarded-For": {"198.51.100.8"}},
			want:       "198.51.100.7",
		},
		{
			name:       "trusted proxy: an invalid X-Real-IP falls back to X-Forwarded-For",
			trusted:    proxies,
			remoteAddr: "10.1.2.3:40000",
			header:     http.Header{"X-Real-Ip": {"unknown"}, "X-Forwarded-For": {"198.51.100.8"}},
			want:       "198.51.100.8",
		},
		{
			name:       "trusted proxy: X-Real-IP given twice is not trusted",
			trusted:    proxies,
			remoteAddr: "10.1.2.3:40000",
			header:     http.Header{"X-Real-Ip": {"198.51.100.7", "198.51.100.9"}, "X-Forwarded-For": {"198.51.100.8"}},
			want:       "198.51.100.8",
		},
		{
			name:       "trusted proxy: the right-most X-Forwarded-For entry, not the client's own",
			trusted:    proxies,
			remoteAddr: "10.1.2.3:40000",
			header:     http.Header{"X-Forwarded-For": {"203.0.113.66, 198.51.100.8"}},
			want:       "198.51.100.8",
		},
		{
			name:       "trusted proxy: X-Forwarded-For fields make one list",
			trusted:    proxies,
			remoteAddr: "10.1.2.3:40000",
			header:     http.Header{"X-Forwarded-For": {"203.0.113.66", "198.51.100.8,\t198.51.100.9"}},
			want:       "198.51.100.9",
		},
		{
			name:       "trusted proxy: invalid entries on the right are passed over",
			trusted:    proxies,
			remoteAddr: "10.1.2.3:40000",
			header:     http.Header{"X-Forwarded-For": {"198.51.100.8, unknown", " "}},
			want:       "198.51.100.8",
		},
		{
			name:       "trusted proxy: an entry with a port",
			trusted:    proxies,
			remoteAddr: "10.1.2.3:40000",
			header:     http.Header{"X-Forwarded-For": {"[2001:db8::1]:443"}},
			want:       "2001:db8::1",
		},
		{
			name:       "trusted proxy: one address spelled one way",
			trusted:    proxies,
			remoteAddr: "10.1.2.3:40000",
			header:     http.Header{"X-Forwarded-For": {"2001:DB8:0::1"}},
			want:       "2001:db8::1",
		},
		{
			name:       "trusted proxy: an IPv4-mapped address is the IPv4 address",
			trusted:    proxies,
			remoteAddr: "10.1.2.3:40000",
			header:     http.Header{"X-Real-Ip": {"::ffff:198.51.100.7"}},
			want:       "198.51.100.7",
		},
		{
			name:       "trusted proxy: an address with a zone is invalid",
			trusted:    proxies,
			remoteAddr: "10.1.2.3:40000",
			header:     http.Header{"X-Forwarded-For": {"198.51.100.8, fe80::1%eth0"}},
			want:       "198.51.100.8",
		},
		{
			name:       "trusted proxy: no valid forwarding header leaves the proxy",
			trusted:    proxies,
			remoteAddr: "10.1.2.3:40000",
			header:     http.Header{"X-Forwarded-For": {"unknown"}},
			want:       "10.1.2.3",
		},
		{
			name:       "trusted proxy over IPv6",
			trusted:    proxies,
			remoteAddr: "[fd00::5]:40000",
			header:     http.Header{"X-Forwarded-For": {"198.51.100.8"}},
			want:       "198.51.100.8",
		},
		{
			name:       "a trusted IPv4 proxy seen as IPv4-mapped IPv6",
			trusted:    proxies,
			remoteAddr: "[::ffff:10.1.2.3]:40000",
			header:     http.Header{"X-Forwarded-For": {"198.51.100.8"}},
			want:       "198.51.100.8",
		},
		{
			name:       "a remote address that is no address is used as it is",
			trusted:    proxies,
			remoteAddr: "pipe",
			header:     http.Header{"X-Forwarded-For": {"198.51.100.8"}},
			want:       "pipe",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r := httptest.NewRequest(http.MethodGet, "/verify", nil)
			r.RemoteAddr = tt.remoteAddr
			if tt.header != nil {
				r.Header = tt.header
			}
			s := &Server{TrustedProxies: tt.trusted}
			g.Expect(s.clientAddr(r)).To(Equal(tt.want))
		})
	}
}

// TestTrustedProxiesLimit checks end to end that the failure budget follows
// the forwarded client behind a trusted proxy, and the connection
// otherwise: an innocent client's typo is refused as what it is, 401, even
// while another client behind the same proxy is over its budget.
func TestTrustedProxiesLimit(t *testing.T) {
	tests := []struct {
		name string
		peer string
		// xff is the X-Forwarded-For of the attacker's requests and of the
		// innocent one after them.
		attackerXFF, innocentXFF string
		wantInnocent             int
	}{
		{
			name:         "behind a trusted proxy, clients have their own budgets",
			peer:         "10.0.0.1",
			attackerXFF:  "203.0.113.66",
			innocentXFF:  "198.51.100.8",
			wantInnocent: http.StatusUnauthorized,
		},
		{
			name:         "an untrusted peer cannot escape its budget by rotating X-Forwarded-For",
			peer:         "192.0.2.1",
			attackerXFF:  "203.0.113.66",
			innocentXFF:  "198.51.100.8",
			wantInnocent: http.StatusTooManyRequests,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newFixture(t, ratelimit.Limits{FailuresPerClient: rate.Every(time.Hour), FailureBurst: 2})
			f.server.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
			for range 3 {
				f.do(t, get("/verify", "Token", f.unknown, "X-Forwarded-For", tt.attackerXFF), tt.peer)
			}
			w := f.do(t, get("/verify", "Token", f.disabled, "X-Forwarded-For", tt.innocentXFF), tt.peer)
			g.Expect(w.Code).To(Equal(tt.wantInnocent))
		})
	}
}

func TestHeaderNamesAreCanonical(t *testing.T) {
	for _, name := range []string{
		headerCacheControl, headerContentType, headerUser, headerName, headerNamespace,
		headerType, headerTeams, headerScopes, headerExpiresAt, headerCreator,
		headerRateLimit, headerRateRemain, headerRateReset,
	} {
		t.Run(name, func(t *testing.T) {
			NewWithT(t).Expect(name).To(Equal(http.CanonicalHeaderKey(name)))
		})
	}
}

func TestMetrics(t *testing.T) {
	g := NewWithT(t)
	RegisterMetrics()
	RegisterMetrics() // a second call must not panic on duplicate registration

	f := newFixture(t, ratelimit.Limits{FailuresPerClient: 1, FailureBurst: 1, RequestsPerToken: 1, TokenBurst: 1})
	verified := counterValue(t, resultsTotal.WithLabelValues("Verified"))
	unknown := counterValue(t, resultsTotal.WithLabelValues("Unknown"))
	limited := counterValue(t, resultsTotal.WithLabelValues("RateLimited"))
	byClient := counterValue(t, rateLimitedTotal.WithLabelValues("client"))
	byToken := counterValue(t, rateLimitedTotal.WithLabelValues("token"))

	f.do(t, get("/verify", "Token", f.good), "192.0.2.1")
	f.do(t, get("/verify", "Token", f.good), "192.0.2.1")
	f.do(t, get("/verify", "Token", f.unknown), "192.0.2.2")
	f.do(t, get("/verify", "Token", f.unknown), "192.0.2.2")

	g.Expect(counterValue(t, resultsTotal.WithLabelValues("Verified"))).To(Equal(verified + 1))
	g.Expect(counterValue(t, resultsTotal.WithLabelValues("Unknown"))).To(Equal(unknown + 1))
	g.Expect(counterValue(t, resultsTotal.WithLabelValues("RateLimited"))).To(Equal(limited + 2))
	g.Expect(counterValue(t, rateLimitedTotal.WithLabelValues("client"))).To(Equal(byClient + 1))
	g.Expect(counterValue(t, rateLimitedTotal.WithLabelValues("token"))).To(Equal(byToken + 1))

	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	names := map[string]bool{}
	for _, mf := range families {
		names[mf.GetName()] = true
	}
	g.Expect(names).To(HaveKey("tokenwarden_verification_results_total"))
	g.Expect(names).To(HaveKey("tokenwarden_verification_duration_seconds"))
	g.Expect(names).To(HaveKey("tokenwarden_verification_rate_limited_total"))
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func typeMeta(apiVersion string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: "TokenReview"}
}

// withBearer adds value as a Bearer token to r.
func withBearer(r *http.Request, value string) *http.Request {
	r.Header.Set("Authorization", "Bearer "+value)
	return r
}

// TestRateLimitHeadersOnEveryAnswer: every answer of /verify says how much
// of the budget that applied to it is left, so a client can slow down
// before it meets a 429: a verified token its own request budget, a refusal
// the client's failure budget.
func TestRateLimitHeadersOnEveryAnswer(t *testing.T) {
	f := newFixture(t, ratelimit.Limits{FailuresPerClient: 1, FailureBurst: 3, RequestsPerToken: 10, TokenBurst: 5})
	f.server.Verifier.Admins = &authztest.Admins{}
	tests := []struct {
		name       string
		req        func(f *fixture) *http.Request
		addr       string
		wantStatus int
		// want are RateLimit-Limit, -Remaining and -Reset, nil meaning
		// none of them.
		want []string
	}{
		{"verified: the token's budget", func(f *fixture) *http.Request { return get("/verify", "Token", f.good) },
			"192.0.2.1", http.StatusOK, []string{"5", "4", "1"}},
		{"verified again, from elsewhere: the same token's budget", func(f *fixture) *http.Request { return get("/verify", "Token", f.good) },
			"192.0.2.2", http.StatusOK, []string{"5", "3", "1"}},
		{"another token has its own", func(f *fixture) *http.Request { return get("/verify", "Token", f.wildcard) },
			"192.0.2.1", http.StatusOK, []string{"5", "4", "1"}},
		{"refused: the client's failure budget, charged", func(f *fixture) *http.Request { return get("/verify", "Token", f.unknown) },
			"192.0.2.1", http.StatusUnauthorized, []string{"3", "2", "1"}},
		{"refused again", func(f *fixture) *http.Request { return get("/verify", "Token", f.disabled) },
			"192.0.2.1", http.StatusUnauthorized, []string{"3", "1", "2"}},
		{"missing: the client's budget, not charged", func(*fixture) *http.Request { return get("/verify") },
			"192.0.2.1", http.StatusUnauthorized, []string{"3", "1", "2"}},
		{"missing from a client that never failed", func(*fixture) *http.Request { return get("/verify") },
			"192.0.2.9", http.StatusUnauthorized, []string{"3", "3", "0"}},
		{"refused, the last one left", func(*fixture) *http.Request { return get("/verify", "Authorization", "Bearer x") },
			"192.0.2.1", http.StatusUnauthorized, []string{"3", "0", "3"}},
		{"over the failure budget", func(f *fixture) *http.Request { return get("/verify", "Token", f.unknown) },
			"192.0.2.1", http.StatusTooManyRequests, []string{"3", "0", "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			w := f.do(t, tt.req(f), tt.addr)
			g.Expect(w.Code).To(Equal(tt.wantStatus))
			got := []string{w.Header().Get("RateLimit-Limit"), w.Header().Get("RateLimit-Remaining"), w.Header().Get("RateLimit-Reset")}
			g.Expect(got).To(Equal(tt.want))
		})
	}

	t.Run("unavailable: the client's budget, not charged", func(t *testing.T) {
		g := NewWithT(t)
		f := newFixture(t, ratelimit.Limits{FailuresPerClient: 1, FailureBurst: 3})
		f.server.Verifier.Admins = &authztest.Admins{Err: errors.New("SubjectAccessReview timed out")}
		w := f.do(t, get("/verify", "Token", f.wildcard), "192.0.2.1")
		g.Expect(w.Code).To(Equal(http.StatusServiceUnavailable))
		g.Expect(w.Header().Get("RateLimit-Remaining")).To(Equal("3"))
	})

	t.Run("no limiter, no headers", func(t *testing.T) {
		g := NewWithT(t)
		f := newFixture(t, ratelimit.DefaultLimits())
		f.server.Limiter = nil
		for _, r := range []*http.Request{get("/verify", "Token", f.good), get("/verify", "Token", f.unknown), get("/verify")} {
			w := f.do(t, r, "192.0.2.1")
			g.Expect(w.Header()).NotTo(HaveKey("Ratelimit-Limit"))
			g.Expect(w.Header()).NotTo(HaveKey("Ratelimit-Remaining"))
			g.Expect(w.Header()).NotTo(HaveKey("Ratelimit-Reset"))
		}
	})
}

func TestNumber(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 99, 100, 200, maxSmallNumber, maxSmallNumber + 1, 123456, -1} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			NewWithT(t).Expect(number(n)).To(Equal(strconv.Itoa(n)))
		})
	}
}

func TestTokenReviewAudiences(t *testing.T) {
	const apiServer = "https://kubernetes.default.svc.cluster.local"
	tests := []struct {
		name       string
		configured []string
		requested  []string
		// wantAudiences are status.audiences when authenticated; wantError
		// is the start of status.error when not.
		wantAudiences []string
		wantError     string
	}{
		{
			name:      "none configured: valid for the API server's own audience, which the answer leaves unnamed",
			requested: []string{apiServer},
		},
		{
			name:      "none configured, none asked",
			requested: nil,
		},
		{
			name:      "none configured: another audience is not named valid either",
			requested: []string{"vault"},
		},
		{
			name:          "configured: one asked for is among them",
			configured:    []string{apiServer, "vault"},
			requested:     []string{"vault"},
			wantAudiences: []string{"vault"},
		},
		{
			name:          "configured: the intersection, in the order asked",
			configured:    []string{apiServer, "vault", "grafana"},
			requested:     []string{"grafana", "elsewhere", apiServer},
			wantAudiences: []string{"grafana", apiServer},
		},
		{
			name:          "configured, none asked: every configured one",
			configured:    []string{apiServer, "vault"},
			requested:     nil,
			wantAudiences: []string{apiServer, "vault"},
		},
		{
			name:       "configured: none asked for is among them",
			configured: []string{apiServer},
			requested:  []string{"vault", "grafana"},
			wantError:  `AudienceMismatch: token audiences ["https://kubernetes.default.svc.cluster.local"] is invalid for the target audiences ["vault" "grafana"]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newFixture(t, ratelimit.DefaultLimits())
			f.server.Audiences = tt.configured
			w := f.do(t, post("/tokenreview", review(f.good, tt.requested...)), "192.0.2.1")
			g.Expect(w.Code).To(Equal(http.StatusOK))
			var got authenticationv1.TokenReview
			g.Expect(json.Unmarshal(w.Body.Bytes(), &got)).To(Succeed())
			if tt.wantError != "" {
				g.Expect(got.Status.Authenticated).To(BeFalse())
				g.Expect(got.Status.User).To(BeZero())
				g.Expect(got.Status.Audiences).To(BeEmpty())
				g.Expect(got.Status.Error).To(Equal(tt.wantError))
				g.Expect(f.server.LastUsed.Drain()).To(BeEmpty(), "the token is not looked at")
				return
			}
			g.Expect(got.Status.Error).To(BeEmpty())
			g.Expect(got.Status.Authenticated).To(BeTrue())
			g.Expect(got.Status.User.Username).To(Equal("tokenwarden:payments:ci:uid-ci"))
			g.Expect(got.Status.Audiences).To(Equal(tt.wantAudiences))
		})
	}

	t.Run("a refused token is refused for its own reason", func(t *testing.T) {
		g := NewWithT(t)
		f := newFixture(t, ratelimit.DefaultLimits())
		f.server.Audiences = []string{apiServer}
		w := f.do(t, post("/tokenreview", review(f.disabled, apiServer)), "192.0.2.1")
		var got authenticationv1.TokenReview
		g.Expect(json.Unmarshal(w.Body.Bytes(), &got)).To(Succeed())
		g.Expect(got.Status).To(Equal(authenticationv1.TokenReviewStatus{Error: verify.ReasonDisabled}))
	})
}

// TestAdminTokensSpeakForNoTeam: an Admin token is associated with no team,
// in /verify and in TokenReview's groups, while an admin's Wildcard token
// speaks for every team.
func TestAdminTokensSpeakForNoTeam(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, ratelimit.DefaultLimits())
	admin := b.NewValue(t, v1alpha1.AdminTokenType)
	adminWildcard := b.NewValue(t, v1alpha1.WildcardTokenType)
	f.server.Verifier.Index.Upsert(b.Issued("root", "payments", admin, []b.ApiTokenOption{b.WithType(v1alpha1.AdminTokenType)}, b.WithCreator("boss")))
	f.server.Verifier.Index.Upsert(b.Issued("root-all", "payments", adminWildcard, nil, b.WithCreator("boss")))
	f.server.Verifier.Admins = &authztest.Admins{Names: map[string]bool{"boss": true}}

	w := f.do(t, get("/verify", "Token", admin), "192.0.2.1")
	g.Expect(w.Code).To(Equal(http.StatusOK))
	g.Expect(w.Header()).To(HaveKeyWithValue("X-Tokenwarden-Teams", []string{""}))
	g.Expect(w.Body.String()).To(ContainSubstring(`"teams":[]`))

	w = f.do(t, post("/tokenreview", review(admin)), "192.0.2.1")
	var got authenticationv1.TokenReview
	g.Expect(json.Unmarshal(w.Body.Bytes(), &got)).To(Succeed())
	g.Expect(got.Status.Authenticated).To(BeTrue())
	g.Expect(got.Status.User.Groups).To(Equal([]string{"tokenwarden:type:Admin"}))

	w = f.do(t, get("/verify", "Token", adminWildcard), "192.0.2.1")
	g.Expect(w.Code).To(Equal(http.StatusOK))
	g.Expect(w.Header().Get("X-Tokenwarden-Teams")).To(Equal("orders,payments"))
}

// TestServiceBehindVerifyclient runs pkg/verifyclient's Middleware in front
// of the server, as a service does: every request reaches the server from
// the service's address. One client of the service floods it with bad
// tokens; another's valid token keeps verifying whether or not the service
// is trusted to name its clients, and when it is, the other's own typo is
// refused as what it is rather than answered 429.
func TestServiceBehindVerifyclient(t *testing.T) {
	tests := []struct {
		name    string
		trusted []netip.Prefix
		// wantTypo is the answer to the other client's bad token once the
		// flooder is over its budget.
		wantTypo int
	}{
		{name: "the service is a trusted proxy", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, wantTypo: http.StatusUnauthorized},
		{name: "the service is not trusted: one address for all its clients", wantTypo: http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newFixture(t, ratelimit.Limits{FailuresPerClient: rate.Every(time.Hour), FailureBurst: 3})
			f.server.TrustedProxies = tt.trusted
			tokenwarden := httptest.NewServer(f.server.Handler())
			defer tokenwarden.Close()
			service := verifyclient.Middleware(verifyclient.New(tokenwarden.URL, verifyclient.WithCacheTTL(-1)),
				http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
			call := func(value, client string) *httptest.ResponseRecorder {
				r := get("/orders", "Authorization", "Bearer "+value)
				r.RemoteAddr = client + ":40000"
				w := httptest.NewRecorder()
				service.ServeHTTP(w, r)
				return w
			}

			for i := range 10 {
				w := call("x", "198.51.100.66")
				if i < 3 {
					g.Expect(w.Code).To(Equal(http.StatusUnauthorized), "attempt %d", i)
				} else {
					g.Expect(w.Code).To(Equal(http.StatusTooManyRequests), "attempt %d", i)
					g.Expect(w.Header().Get("Retry-After")).NotTo(BeEmpty())
				}
				g.Expect(call(f.good, "198.51.100.7").Code).To(Equal(http.StatusNoContent), "a good token while another client floods")
			}
			g.Expect(call(f.unknown, "198.51.100.7").Code).To(Equal(tt.wantTypo))
		})
	}
}
