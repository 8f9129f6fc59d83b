package verifyclient

import (
	"context"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

func TestVerifyReturnsEveryFieldAndCachesIt(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	clock := newFakeClock()
	expires := clock.Now().Add(time.Hour).Truncate(time.Second)
	srv.set(goodToken, answer{id: teamIdentity(&expires)})
	c := newTestClient(srv.URL, clock)

	id, err := c.Verify(context.Background(), goodToken)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(id.User).To(Equal("tokenwarden:payments:orders-reader:6f1c1f3e-8d4a-4a57-9a39-0c6b1e1f2a10"))
	g.Expect(id.Name).To(Equal("orders-reader"))
	g.Expect(id.Namespace).To(Equal("payments"))
	g.Expect(id.UID).To(Equal("6f1c1f3e-8d4a-4a57-9a39-0c6b1e1f2a10"))
	g.Expect(id.Type).To(Equal("Team"))
	g.Expect(id.Teams).To(Equal([]string{"payments", "billing"}))
	g.Expect(id.Scopes).To(Equal([]string{"orders:read", "orders:list"}))
	g.Expect(id.ExpiresAt).NotTo(BeNil())
	g.Expect(id.ExpiresAt.Equal(expires)).To(BeTrue())
	g.Expect(id.Creator).To(Equal("alice"))

	// A caller changing its answer must not change the cached one.
	id.Scopes[0] = "orders:write"
	*id.ExpiresAt = time.Time{}

	clock.Advance(DefaultCacheTTL - time.Millisecond)
	again, err := c.Verify(context.Background(), goodToken)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(srv.callsFor(goodToken)).To(Equal(1))
	g.Expect(again.Scopes).To(Equal([]string{"orders:read", "orders:list"}))
	g.Expect(again.ExpiresAt.Equal(expires)).To(BeTrue())
	g.Expect(again).NotTo(BeIdenticalTo(id))
}

func TestVerifyWithoutExpiry(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	srv.set(goodToken, answer{id: teamIdentity(nil)})

	id, err := New(srv.URL).Verify(context.Background(), goodToken)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(id.ExpiresAt).To(BeNil())
}

func TestCacheExpiresAfterTTL(t *testing.T) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
		want time.Duration
	}{
		{"default", 0, DefaultCacheTTL},
		{"custom", 10 * time.Second, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			srv := newFakeServer(t)
			srv.set(goodToken, answer{id: teamIdentity(nil)})
			clock := newFakeClock()
			c := newTestClient(srv.URL, clock, WithCacheTTL(tc.ttl))

			_, err := c.Verify(context.Background(), goodToken)
			g.Expect(err).NotTo(HaveOccurred())
			clock.Advance(tc.want - time.Nanosecond)
			_, err = c.Verify(context.Background(), goodToken)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(srv.callsFor(goodToken)).To(Equal(1))

			clock.Advance(time.Nanosecond)
			_, err = c.Verify(context.Background(), goodToken)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(srv.callsFor(goodToken)).To(Equal(2))
		})
	}
}

func TestRevocationReachesTheServiceWithinTTL(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	srv.set(goodToken, answer{id: teamIdentity(nil)})
	clock := newFakeClock()
	c := newTestClient(srv.URL, clock)

	_, err := c.Verify(context.Background(), goodToken)
	g.Expect(err).NotTo(HaveOccurred())

	srv.set(goodToken, answer{reason: ReasonDisabled})
	clock.Advance(DefaultCacheTTL / 2)
	_, err = c.Verify(context.Background(), goodToken)
	g.Expect(err).NotTo(HaveOccurred(), "within the TTL the cached answer stands")

	clock.Advance(DefaultCacheTTL / 2)
	_, err = c.Verify(context.Background(), goodToken)
	reason, ok := IsRefused(err)
	g.Expect(ok).To(BeTrue())
	g.Expect(reason).To(Equal(ReasonDisabled))
}

func TestCacheNeverOutlivesExpiresAt(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	clock := newFakeClock()
	expires := clock.Now().Add(500 * time.Millisecond)
	srv.set(goodToken, answer{id: teamIdentity(&expires)})
	c := newTestClient(srv.URL, clock, WithCacheTTL(time.Minute))

	_, err := c.Verify(context.Background(), goodToken)
	g.Expect(err).NotTo(HaveOccurred())
	clock.Advance(499 * time.Millisecond)
	_, err = c.Verify(context.Background(), goodToken)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(srv.callsFor(goodToken)).To(Equal(1))

	// The server now says Expired, and the client must ask to hear it.
	srv.set(goodToken, answer{reason: ReasonExpired})
	clock.Advance(time.Millisecond)
	_, err = c.Verify(context.Background(), goodToken)
	g.Expect(reasonOf(err)).To(Equal(ReasonExpired))
	g.Expect(srv.callsFor(goodToken)).To(Equal(2))
}

func TestAnswerAlreadyExpiredIsNotCached(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	clock := newFakeClock()
	// The server's clock is behind ours: it still says yes.
	expires := clock.Now().Add(-time.Second)
	srv.set(goodToken, answer{id: teamIdentity(&expires)})
	c := newTestClient(srv.URL, clock)

	for range 2 {
		_, err := c.Verify(context.Background(), goodToken)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(srv.callsFor(goodToken)).To(Equal(2))
}

func TestNegativeTTLDisablesTheCache(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	srv.set(goodToken, answer{id: teamIdentity(nil)})
	c := newTestClient(srv.URL, newFakeClock(), WithCacheTTL(-1))

	for range 3 {
		_, err := c.Verify(context.Background(), goodToken)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(srv.callsFor(goodToken)).To(Equal(3))
	g.Expect(c.cache).To(BeNil())
}

func TestRefusalsAreNotCached(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	srv.set(goodToken, answer{reason: ReasonDisabled})
	c := newTestClient(srv.URL, newFakeClock())

	_, err := c.Verify(context.Background(), goodToken)
	g.Expect(reasonOf(err)).To(Equal(ReasonDisabled))

	// Re-enabled: the very next request sees it.
	srv.set(goodToken, answer{id: teamIdentity(nil)})
	_, err = c.Verify(context.Background(), goodToken)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(srv.callsFor(goodToken)).To(Equal(2))

	srv.set(limitedToken, answer{retryAfter: "3"})
	for range 2 {
		_, err = c.Verify(context.Background(), limitedToken)
		g.Expect(err).To(MatchError(ErrRateLimited))
	}
	g.Expect(srv.callsFor(limitedToken)).To(Equal(2))
}

func TestUnauthorizedReasons(t *testing.T) {
	srv := newFakeServer(t)
	c := newTestClient(srv.URL, newFakeClock())
	for _, reason := range []string{
		ReasonMalformed, ReasonUnknown, ReasonExpired, ReasonDisabled, ReasonInvalidated, ReasonNotActive,
	} {
		t.Run(reason, func(t *testing.T) {
			g := NewWithT(t)
			token := "twt_" + reason
			if reason != ReasonUnknown {
				srv.set(token, answer{reason: reason})
			}
			id, err := c.Verify(context.Background(), token)
			g.Expect(id).To(BeNil())
			var refused *RefusedError
			g.Expect(errors.As(err, &refused)).To(BeTrue())
			g.Expect(refused.Reason).To(Equal(reason))
			g.Expect(refused.RetryAfter).To(BeZero())
			g.Expect(err.Error()).To(ContainSubstring(reason))
			g.Expect(err.Error()).NotTo(ContainSubstring(token))
			g.Expect(errors.Is(err, ErrRateLimited)).To(BeFalse())
			got, ok := IsRefused(err)
			g.Expect(ok).To(BeTrue())
			g.Expect(got).To(Equal(reason))
		})
	}
}

func TestMissingAndUnsendableTokensAreRefusedLocally(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	c := newTestClient(srv.URL, newFakeClock())

	_, err := c.Verify(context.Background(), "")
	g.Expect(reasonOf(err)).To(Equal(ReasonMissing))
	for _, bad := range []string{"tw t", "twt\r\nX-Evil: 1", "twt_é", "twt\x00"} {
		_, err = c.Verify(context.Background(), bad)
		g.Expect(reasonOf(err)).To(Equal(ReasonMalformed), "%q", bad)
		g.Expect(err.Error()).NotTo(ContainSubstring(bad))
	}
	g.Expect(srv.arrived).To(BeEmpty())
}

func TestReasonIsFoundWhereverTheServerPutIt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		respond func(w http.ResponseWriter)
		want    string
	}{
		{"header", func(w http.ResponseWriter) {
			w.Header().Set("X-Tokenwarden-Reason", "Expired")
			w.WriteHeader(http.StatusUnauthorized)
		}, ReasonExpired},
		{"body", func(w http.ResponseWriter) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"reason": "Disabled"})
		}, ReasonDisabled},
		{"challenge", func(w http.ResponseWriter) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tokenwarden", error="invalid_token", error_description="NotActive"`)
			w.WriteHeader(http.StatusUnauthorized)
		}, ReasonNotActive},
		{"nowhere", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusUnauthorized)
		}, ReasonUnauthorized},
		{"not a word", func(w http.ResponseWriter) {
			w.Header().Set("X-Tokenwarden-Reason", `Expired", evil="1`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"reason": "<script>"})
		}, ReasonUnauthorized},
		{"too long", func(w http.ResponseWriter) {
			w.Header().Set("X-Tokenwarden-Reason", strings.Repeat("A", maxReasonLen+1))
			w.WriteHeader(http.StatusUnauthorized)
		}, ReasonUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { tc.respond(w) }))
			defer srv.Close()
			_, err := New(srv.URL).Verify(context.Background(), goodToken)
			g.Expect(reasonOf(err)).To(Equal(tc.want))
		})
	}
}

func TestRateLimited(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	srv.set(limitedToken, answer{retryAfter: "7"})
	c := newTestClient(srv.URL, newFakeClock())

	_, err := c.Verify(context.Background(), limitedToken)
	g.Expect(errors.Is(err, ErrRateLimited)).To(BeTrue())
	var refused *RefusedError
	g.Expect(errors.As(err, &refused)).To(BeTrue())
	g.Expect(refused.Reason).To(Equal(ReasonRateLimited))
	g.Expect(refused.RetryAfter).To(Equal(7 * time.Second))
	g.Expect(reasonOf(err)).To(Equal(ReasonRateLimited))
	g.Expect(err.Error()).To(Equal("verifyclient: rate limited, retry after 7s"))
	g.Expect(err.Error()).NotTo(ContainSubstring(limitedToken))

	// Wrapped, it still matches.
	g.Expect(errors.Is(errors.Join(errors.New("calling orders"), err), ErrRateLimited)).To(BeTrue())
}

func TestRetryAfterForms(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"seconds", http.Header{"Retry-After": {"12"}}, 12 * time.Second},
		{"date", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{"date in the past", http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}}, 0},
		{"only RateLimit-Reset", http.Header{"Ratelimit-Reset": {"4"}}, 4 * time.Second},
		{"neither", http.Header{}, 0},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0},
		{"negative", http.Header{"Retry-After": {"-5"}}, 0},
		{"huge", http.Header{"Retry-After": {"99999999999999999"}}, maxRetryAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(retryAfter(tc.header, now)).To(Equal(tc.want))
		})
	}
}

func TestTransportErrorsAreNotRefusals(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, tc := range []struct {
		name string
		url  string
	}{
		{"connection refused", closed.URL},
		{"bad URL", "tokenwarden-verify:8443"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := New(tc.url).Verify(context.Background(), goodToken)
			g.Expect(err).To(HaveOccurred())
			_, refused := IsRefused(err)
			g.Expect(refused).To(BeFalse())
			g.Expect(errors.Is(err, ErrRateLimited)).To(BeFalse())
			g.Expect(err.Error()).NotTo(ContainSubstring(goodToken))
		})
	}
}

func TestUnexpectedAnswersAreErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		respond func(w http.ResponseWriter)
		// want is the *StatusError, if the answer makes one.
		want *StatusError
	}{
		{"5xx", func(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }, &StatusError{Status: "500 Internal Server Error"}},
		{"503 with a reason", func(w http.ResponseWriter) {
			w.Header().Set("X-Tokenwarden-Reason", "Unavailable")
			w.WriteHeader(http.StatusServiceUnavailable)
		}, &StatusError{Status: "503 Service Unavailable", Reason: "Unavailable"}},
		{"403", func(w http.ResponseWriter) { w.WriteHeader(http.StatusForbidden) }, &StatusError{Status: "403 Forbidden"}},
		{"redirect", func(w http.ResponseWriter) {
			w.Header().Set("Location", "http://elsewhere.invalid/verify")
			w.WriteHeader(http.StatusFound)
		}, &StatusError{Status: "302 Found"}},
		{"200 not JSON", func(w http.ResponseWriter) { _, _ = w.Write([]byte("<html>")) }, nil},
		{"200 naming nobody", func(w http.ResponseWriter) { writeJSON(w, http.StatusOK, map[string]string{}) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { tc.respond(w) }))
			defer srv.Close()
			c := New(srv.URL)
			_, err := c.Verify(context.Background(), goodToken)
			g.Expect(err).To(HaveOccurred())
			_, refused := IsRefused(err)
			g.Expect(refused).To(BeFalse())
			g.Expect(err.Error()).NotTo(ContainSubstring(goodToken))
			g.Expect(c.cache.len()).To(BeZero())
			var status *StatusError
			if tc.want != nil {
				g.Expect(errors.As(err, &status)).To(BeTrue())
				g.Expect(status).To(Equal(tc.want))
			} else {
				g.Expect(errors.As(err, &status)).To(BeFalse())
			}
			if tc.name == "200 naming nobody" {
				g.Expect(err).To(MatchError(ErrNoUser))
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"https://tokenwarden-verify.tokenwarden-system.svc", "https://tokenwarden-verify.tokenwarden-system.svc/verify"},
		{"https://tokenwarden-verify.tokenwarden-system.svc/", "https://tokenwarden-verify.tokenwarden-system.svc/verify"},
		{"https://gateway.example/tokenwarden", "https://gateway.example/tokenwarden/verify"},
		{"https://127.0.0.1:40123/verify", "https://127.0.0.1:40123/verify"},
		{"https://127.0.0.1:40123/verify/", "https://127.0.0.1:40123/verify"},
	} {
		got, err := (&Client{URL: tc.base}).endpoint()
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
		NewWithT(t).Expect(got).To(Equal(tc.want), tc.base)
	}
}

func TestContextCancellation(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	srv.set(goodToken, answer{id: teamIdentity(nil)})
	srv.release = make(chan struct{})
	defer close(srv.release)
	c := New(srv.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Verify(ctx, goodToken)
	g.Expect(errors.Is(err, context.DeadlineExceeded)).To(BeTrue())
	_, refused := IsRefused(err)
	g.Expect(refused).To(BeFalse())
	// The abandoned request is cancelled and forgotten.
	g.Eventually(func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.cache.inflight)
	}).Should(BeZero())
}

func TestConcurrentLookupsShareOneRequest(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	srv.set(goodToken, answer{id: teamIdentity(nil)})
	srv.release = make(chan struct{})
	c := newTestClient(srv.URL, newFakeClock())

	const n = 8
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	results := make(chan error, n)
	ids := make(chan *Identity, n)
	var wg sync.WaitGroup
	for i := range n {
		ctx := context.Background()
		if i == 0 {
			ctx = leaderCtx
		}
		wg.Go(func() {
			id, err := c.Verify(ctx, goodToken)
			results <- err
			ids <- id
		})
	}
	waiters := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.cache == nil || c.cache.inflight[keyOf(goodToken)] == nil {
			return 0
		}
		return c.cache.inflight[keyOf(goodToken)].waiters
	}
	g.Eventually(waiters).Should(Equal(n))
	// Whoever started the request giving up does not fail the others.
	cancelLeader()
	g.Expect(<-results).To(MatchError(context.Canceled))
	<-ids
	close(srv.release)
	wg.Wait()
	close(results)
	close(ids)
	for err := range results {
		g.Expect(err).NotTo(HaveOccurred())
	}
	seen := map[*Identity]bool{}
	for id := range ids {
		g.Expect(id.User).To(Equal("tokenwarden:payments:orders-reader:6f1c1f3e-8d4a-4a57-9a39-0c6b1e1f2a10"))
		g.Expect(seen[id]).To(BeFalse(), "every caller gets its own copy")
		seen[id] = true
	}
	g.Expect(srv.callsFor(goodToken)).To(Equal(1))
}

func TestMaxEntriesEvictsLeastRecentlyUsed(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	for _, tok := range []string{goodToken, otherToken, thirdToken} {
		srv.set(tok, answer{id: teamIdentity(nil)})
	}
	c := newTestClient(srv.URL, newFakeClock(), WithMaxEntries(2))
	verify := func(tok string) {
		_, err := c.Verify(context.Background(), tok)
		g.Expect(err).NotTo(HaveOccurred())
	}

	verify(goodToken)
	verify(otherToken)
	verify(goodToken) // a hit; otherToken is now the least recently used
	verify(thirdToken)
	g.Expect(c.cache.len()).To(Equal(2))

	verify(goodToken)
	g.Expect(srv.callsFor(goodToken)).To(Equal(1), "kept")
	verify(otherToken)
	g.Expect(srv.callsFor(otherToken)).To(Equal(2), "evicted")
	g.Expect(c.cache.len()).To(Equal(2))
}

func TestDefaultMaxEntries(t *testing.T) {
	g := NewWithT(t)
	g.Expect((&Client{}).maxEntries()).To(Equal(10000))
	g.Expect((&Client{MaxEntries: -3}).maxEntries()).To(Equal(10000))
	g.Expect((&Client{MaxEntries: 7}).maxEntries()).To(Equal(7))
}

func TestCacheHoldsHashesNotTokens(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	srv.set(goodToken, answer{id: teamIdentity(nil)})
	c := newTestClient(srv.URL, newFakeClock())
	_, err := c.Verify(context.Background(), goodToken)
	g.Expect(err).NotTo(HaveOccurred())

	want := cacheKey(sha256.Sum256([]byte(goodToken)))
	g.Expect(c.cache.entries).To(HaveKey(want))
	g.Expect(c.cache.entries).To(HaveLen(1))
}

func TestWithCA(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+goodToken {
			refuse(w, ReasonUnknown)
			return
		}
		writeJSON(w, http.StatusOK, teamIdentity(nil))
	}))
	// The untrusting clients' handshake failures are expected.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	t.Run("trusted", func(t *testing.T) {
		g := NewWithT(t)
		id, err := New(srv.URL, WithCA(ca)).Verify(context.Background(), goodToken)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(id.Name).To(Equal("orders-reader"))
	})
	t.Run("without the CA", func(t *testing.T) {
		g := NewWithT(t)
		_, err := New(srv.URL).Verify(context.Background(), goodToken)
		g.Expect(err).To(MatchError(ContainSubstring("certificate")))
		_, refused := IsRefused(err)
		g.Expect(refused).To(BeFalse())
	})
	t.Run("no certificate in the PEM", func(t *testing.T) {
		g := NewWithT(t)
		_, err := New(srv.URL, WithCA([]byte("not a certificate"))).Verify(context.Background(), goodToken)
		g.Expect(err).To(MatchError(ContainSubstring("WithCA")))
	})
	t.Run("the last of WithCA and WithHTTPClient wins", func(t *testing.T) {
		g := NewWithT(t)
		_, err := New(srv.URL, WithCA([]byte("junk")), WithHTTPClient(srv.Client())).Verify(context.Background(), goodToken)
		g.Expect(err).NotTo(HaveOccurred())
		_, err = New(srv.URL, WithCA(ca), WithHTTPClient(http.DefaultClient)).Verify(context.Background(), goodToken)
		g.Expect(err).To(HaveOccurred())
	})
}

func TestZeroValueClientWorks(t *testing.T) {
	g := NewWithT(t)
	srv := newFakeServer(t)
	srv.set(goodToken, answer{id: teamIdentity(nil)})
	c := &Client{URL: srv.URL}
	for range 2 {
		_, err := c.Verify(context.Background(), goodToken)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(srv.callsFor(goodToken)).To(Equal(1))
}

func TestCachePutReplaces(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := newCache()
	c.put(keyOf(goodToken), &Identity{User: "first"}, now.Add(time.Second), 10)
	c.put(keyOf(goodToken), &Identity{User: "second"}, now.Add(time.Minute), 10)
	g.Expect(c.len()).To(Equal(1))
	id, ok := c.get(keyOf(goodToken), now.Add(30*time.Second))
	g.Expect(ok).To(BeTrue())
	g.Expect(id.User).To(Equal("second"))
	_, ok = c.get(keyOf(goodToken), now.Add(time.Minute))
	g.Expect(ok).To(BeFalse())
	g.Expect(c.len()).To(BeZero(), "a stale entry is dropped when found")
}
