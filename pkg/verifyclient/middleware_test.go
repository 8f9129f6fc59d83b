package verifyclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	. "github.com/onsi/gomega"
)

// protected serves Middleware(c, next) where next records the identity it
// saw; it returns the recorder and whether next ran.
func protected(c *Client, header http.Header) (*httptest.ResponseRecorder, *Identity, bool) {
	return protectedFrom(c, header, "192.0.2.1:1234")
}

// protectedFrom is protected for a request whose peer is remoteAddr.
func protectedFrom(c *Client, header http.Header, remoteAddr string) (*httptest.ResponseRecorder, *Identity, bool) {
	var seen *Identity
	called := false
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		seen, _ = FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
	req := httptest.NewRequest(http.MethodGet, "/orders", nil)
	req.Header = header
	req.RemoteAddr = remoteAddr
	rec := httptest.NewRecorder()
	Middleware(c, next).ServeHTTP(rec, req)
	return rec, seen, called
}

func reasonInBody(rec *httptest.ResponseRecorder) string {
	var body struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return body.Reason
}

func TestMiddlewareExtractsEveryHeaderForm(t *testing.T) {
	srv := newFakeServer(t)
	srv.set(goodToken, answer{id: teamIdentity(nil)})
	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"Bearer", http.Header{"Authorization": {"Bearer " + goodToken}}},
		{"bearer, lower case", http.Header{"Authorization": {"bearer " + goodToken}}},
		{"accessToken", http.Header{"Authorization": {"accessToken " + goodToken}}},
		{"apiToken", http.Header{"Authorization": {"apiToken " + goodToken}}},
		{"APITOKEN, extra spaces", http.Header{"Authorization": {"  APITOKEN   " + goodToken + " "}}},
		{"Token header", http.Header{"Token": {goodToken}}},
		{"Token header beside another scheme", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}, "Token": {goodToken}}},
		{"Token header beside an empty Bearer", http.Header{"Authorization": {"Bearer "}, "Token": {goodToken}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			c := newTestClient(srv.URL, newFakeClock(), WithCacheTTL(-1))
			before := srv.callsFor(goodToken)
			rec, id, called := protected(c, tc.header)
			g.Expect(rec.Code).To(Equal(http.StatusNoContent))
			g.Expect(called).To(BeTrue())
			g.Expect(id).NotTo(BeNil())
			g.Expect(id.User).To(Equal("tokenwarden:payments:orders-reader:6f1c1f3e-8d4a-4a57-9a39-0c6b1e1f2a10"))
			g.Expect(id.Scopes).To(ConsistOf("orders:read", "orders:list"))
			// The server saw the token as a plain bearer token.
			g.Expect(srv.callsFor(goodToken)).To(Equal(before + 1))
		})
	}
}

func TestMiddlewareRefusesWith401(t *testing.T) {
	srv := newFakeServer(t)
	srv.set(goodToken, answer{reason: ReasonDisabled})
	for _, tc := range []struct {
		name   string
		header http.Header
		want   string
	}{
		{"refused", http.Header{"Authorization": {"Bearer " + goodToken}}, ReasonDisabled},
		{"unknown", http.Header{"Token": {otherToken}}, ReasonUnknown},
		{"no token", http.Header{}, ReasonMissing},
		{"another scheme only", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, ReasonMissing},
		{"unsendable", http.Header{"Token": {"tw\x01t"}}, ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			rec, _, called := protected(newTestClient(srv.URL, newFakeClock()), tc.header)
			g.Expect(called).To(BeFalse())
			g.Expect(rec.Code).To(Equal(http.StatusUnauthorized))
			g.Expect(rec.Header().Get("WWW-Authenticate")).To(Equal(
				`Bearer realm="tokenwarden", error="invalid_token", error_description="` + tc.want + `"`))
			g.Expect(rec.Header().Get("X-Tokenwarden-Reason")).To(Equal(tc.want))
			g.Expect(rec.Header().Get("Content-Type")).To(Equal("application/json"))
			g.Expect(rec.Header().Get("Cache-Control")).To(Equal("no-store"))
			g.Expect(reasonInBody(rec)).To(Equal(tc.want))
			g.Expect(rec.Body.String()).NotTo(ContainSubstring(goodToken))
		})
	}
}

func TestMiddlewarePassesRateLimitsOnAs429(t *testing.T) {
	srv := newFakeServer(t)
	srv.set(limitedToken, answer{retryAfter: "7"})
	srv.set(otherToken, answer{retryAfter: "0"})
	for _, tc := range []struct {
		token, wantRetryAfter string
	}{
		{limitedToken, "7"},
		// Zero would invite an immediate retry storm; one second is the floor.
		{otherToken, "1"},
	} {
		g := NewWithT(t)
		rec, _, called := protected(newTestClient(srv.URL, newFakeClock()),
			http.Header{"Authorization": {"Bearer " + tc.token}})
		g.Expect(called).To(BeFalse())
		g.Expect(rec.Code).To(Equal(http.StatusTooManyRequests))
		g.Expect(rec.Header().Get("Retry-After")).To(Equal(tc.wantRetryAfter))
		g.Expect(rec.Header().Get("X-Tokenwarden-Reason")).To(Equal(ReasonRateLimited))
		g.Expect(rec.Header().Get("WWW-Authenticate")).To(BeEmpty())
		g.Expect(reasonInBody(rec)).To(Equal(ReasonRateLimited))
	}
}

func TestMiddlewareAnswers503WhenTheVerifierIsUnreachable(t *testing.T) {
	g := NewWithT(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	rec, _, called := protected(New(closed.URL), http.Header{"Authorization": {"Bearer " + goodToken}})
	g.Expect(called).To(BeFalse())
	g.Expect(rec.Code).To(Equal(http.StatusServiceUnavailable))
	g.Expect(rec.Header().Get("WWW-Authenticate")).To(BeEmpty())
	g.Expect(reasonInBody(rec)).To(Equal("Unavailable"))
	g.Expect(rec.Body.String()).NotTo(ContainSubstring(goodToken))
	g.Expect(rec.Body.String()).NotTo(ContainSubstring("127.0.0.1"), "no transport details")
}

func TestFromContext(t *testing.T) {
	g := NewWithT(t)
	id, ok := FromContext(context.Background())
	g.Expect(ok).To(BeFalse())
	g.Expect(id).To(BeNil())

	want := teamIdentity(nil)
	id, ok = FromContext(NewContext(context.Background(), want))
	g.Expect(ok).To(BeTrue())
	g.Expect(id).To(BeIdenticalTo(want))

	_, ok = FromContext(NewContext(context.Background(), nil))
	g.Expect(ok).To(BeFalse())
}

// TestMiddlewareForwardsTheClient: Tokenwarden limits refused attempts per
// client address, and every client of a service reaches it from the
// service's; the Middleware names the client that sent the token, as a
// reverse proxy would, and nothing the client wrote itself.
func TestMiddlewareForwardsTheClient(t *testing.T) {
	for _, tc := range []struct {
		name       string
		remoteAddr string
		header     http.Header
		clientAddr func(*http.Request) netip.Addr
		// want are X-Real-IP and X-Forwarded-For as Tokenwarden gets them.
		want [2]string
	}{
		{name: "the peer", remoteAddr: "198.51.100.7:40000", want: [2]string{"198.51.100.7", "198.51.100.7"}},
		{name: "an IPv6 peer", remoteAddr: "[2001:db8::7]:40000", want: [2]string{"2001:db8::7", "2001:db8::7"}},
		{name: "an IPv4-mapped peer is its IPv4 address", remoteAddr: "[::ffff:198.51.100.7]:40000", want: [2]string{"198.51.100.7", "198.51.100.7"}},
		{name: "a zone is dropped", remoteAddr: "[fe80::1%eth0]:40000", want: [2]string{"fe80::1", "fe80::1"}},
		{
			name:       "what the client claims is not passed on",
			remoteAddr: "198.51.100.7:40000",
			header:     http.Header{"X-Forwarded-For": {"203.0.113.1"}, "X-Real-Ip": {"203.0.113.2"}},
			want:       [2]string{"198.51.100.7", "198.51.100.7"},
		},
		{name: "a peer that is no address forwards nothing", remoteAddr: "@", want: [2]string{"", ""}},
		{
			name:       "ClientAddr, for a service behind its own proxy",
			remoteAddr: "10.0.0.1:40000",
			header:     http.Header{"X-Envoy-External-Address": {"203.0.113.9"}},
			clientAddr: func(r *http.Request) netip.Addr {
				a, _ := netip.ParseAddr(r.Header.Get("X-Envoy-External-Address"))
				return a
			},
			want: [2]string{"203.0.113.9", "203.0.113.9"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			srv := newFakeServer(t)
			srv.set(goodToken, answer{reason: ReasonDisabled})
			c := newTestClient(srv.URL, newFakeClock(), WithClientAddr(tc.clientAddr))
			header := http.Header{"Authorization": {"Bearer " + goodToken}}
			for k, v := range tc.header {
				header[k] = v
			}
			rec, _, _ := protectedFrom(c, header, tc.remoteAddr)
			g.Expect(rec.Code).To(Equal(http.StatusUnauthorized))
			g.Expect(srv.lastForwarded()).To(Equal(tc.want))
		})
	}
}

func TestVerifyForwardsNothingAndVerifyFromTheClient(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	srv.set(goodToken, answer{id: teamIdentity(nil)})
	c := newTestClient(srv.URL, newFakeClock(), WithCacheTTL(-1))

	_, err := c.Verify(context.Background(), goodToken)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(srv.lastForwarded()).To(Equal([2]string{"", ""}))

	_, err = c.VerifyFrom(context.Background(), goodToken, netip.MustParseAddr("198.51.100.7"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(srv.lastForwarded()).To(Equal([2]string{"198.51.100.7", "198.51.100.7"}))

	_, err = c.VerifyFrom(context.Background(), goodToken, netip.Addr{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(srv.lastForwarded()).To(Equal([2]string{"", ""}))
}
