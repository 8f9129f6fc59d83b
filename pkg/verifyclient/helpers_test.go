package verifyclient

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tokens the fake server knows. They look like Tokenwarden values so
// that a leak into an error message would be easy to spot.
const (
	goodToken    = "twt_0123456789abcdefghijABCDEFGHIJklmnopqrstuvwxyz0123"
	otherToken   = "twt_9876543210abcdefghijABCDEFGHIJklmnopqrstuvwxyz0123"
	thirdToken   = "twt_5555555555abcdefghijABCDEFGHIJklmnopqrstuvwxyz0123"
	limitedToken = "twt_limitedlimitedlimitedlimitedlimitedlimitedlimit"
)

// answer is what the fake server says about one token.
type answer struct {
	id *Identity
	// reason, if set, refuses the token with 401.
	reason string
	// retryAfter, if set, answers 429 with it as Retry-After.
	retryAfter string
}

// fakeServer implements the /verify contract for the tokens it is told
// about and refuses every other one as Unknown.
type fakeServer struct {
	*httptest.Server

	mu      sync.Mutex
	answers map[string]answer
	calls   map[string]int
	// forwarded are the X-Real-IP and X-Forwarded-For of the last
	// request, "" when absent.
	forwarded [2]string
	// release, if set, holds every request until it is closed.
	release chan struct{}
	// arrived receives a value for every request that reaches the handler.
	arrived chan struct{}
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{answers: map[string]answer{}, calls: map[string]int{}, arrived: make(chan struct{}, 100)}
	f.Server = httptest.NewServer(f)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) set(token string, a answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[token] = a
}

func (f *fakeServer) callsFor(token string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[token]
}

// lastForwarded returns the forwarding headers of the last request.
func (f *fakeServer) lastForwarded() [2]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.forwarded
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/verify" {
		http.NotFound(w, r)
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	f.calls[token]++
	f.forwarded = [2]string{r.Header.Get("X-Real-IP"), r.Header.Get("X-Forwarded-For")}
	a, known := f.answers[token]
	release := f.release
	f.mu.Unlock()
	select {
	case f.arrived <- struct{}{}:
	default:
	}
	if release != nil {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}

	switch {
	case !ok || token == "":
		refuse(w, ReasonMissing)
	case !known:
		refuse(w, ReasonUnknown)
	case a.retryAfter != "":
		w.Header().Set("Retry-After", a.retryAfter)
		w.Header().Set("RateLimit-Limit", "10")
		w.Header().Set("RateLimit-Remaining", "0")
		w.Header().Set("RateLimit-Reset", a.retryAfter)
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"reason": ReasonRateLimited})
	case a.reason != "":
		refuse(w, a.reason)
	default:
		id := a.id
		h := w.Header()
		h.Set("X-Tokenwarden-User", id.User)
		h.Set("X-Tokenwarden-Name", id.Name)
		h.Set("X-Tokenwarden-Namespace", id.Namespace)
		h.Set("X-Tokenwarden-Type", id.Type)
		h.Set("X-Tokenwarden-Teams", strings.Join(id.Teams, ","))
		h.Set("X-Tokenwarden-Scopes", strings.Join(id.Scopes, ","))
		if id.ExpiresAt != nil {
			h.Set("X-Tokenwarden-Expires-At", id.ExpiresAt.Format(time.RFC3339))
		}
		h.Set("X-Tokenwarden-Creator", id.Creator)
		writeJSON(w, http.StatusOK, id)
	}
}

func refuse(w http.ResponseWriter, reason string) {
	w.Header().Set("WWW-Authenticate",
		`Bearer realm="tokenwarden", error="invalid_token", error_description="`+reason+`"`)
	w.Header().Set("X-Tokenwarden-Reason", reason)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"reason": reason})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// teamIdentity is a full Team token identity expiring at expires (nil:
// never).
func teamIdentity(expires *time.Time) *Identity {
	return &Identity{
		User:      "tokenwarden:payments:orders-reader:6f1c1f3e-8d4a-4a57-9a39-0c6b1e1f2a10",
		Name:      "orders-reader",
		Namespace: "payments",
		UID:       "6f1c1f3e-8d4a-4a57-9a39-0c6b1e1f2a10",
		Type:      "Team",
		Teams:     []string{"payments", "billing"},
		Scopes:    []string{"orders:read", "orders:list"},
		ExpiresAt: expires,
		Creator:   "alice",
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestClient returns a Client of srv on clock.
func newTestClient(url string, clock *fakeClock, opts ...Option) *Client {
	return New(url, append([]Option{WithClock(clock)}, opts...)...)
}

// reasonOf is the reason of a refusal, or "" for any other outcome.
func reasonOf(err error) string {
	reason, _ := IsRefused(err)
	return reason
}
