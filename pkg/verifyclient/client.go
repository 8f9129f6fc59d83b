package verifyclient

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// DefaultCacheTTL is how long a positive answer is reused unless
	// Client.CacheTTL says otherwise. It is also how long a revoked token
	// can keep working at a service after Tokenwarden refuses it.
	DefaultCacheTTL = 2 * time.Second
	// DefaultMaxEntries bounds the cache unless Client.MaxEntries says
	// otherwise.
	DefaultMaxEntries = 10000
	// DefaultTimeout bounds one request to the server, for the HTTP client
	// used when Client.HTTPClient is nil and for the one WithCA builds.
	DefaultTimeout = 5 * time.Second

	// maxIdentityBody bounds a 200 answer, so a broken or hostile server
	// cannot make a service buffer without limit.
	maxIdentityBody = 1 << 20
	// maxErrorBody bounds the body of any other answer, which is only read
	// for its reason.
	maxErrorBody = 64 << 10
	// maxRetryAfter caps a server's Retry-After, which is parsed from
	// text and would otherwise overflow a Duration.
	maxRetryAfter = 24 * time.Hour
	// maxReasonLen bounds a reason taken from the server, which ends up in
	// error messages and in the Middleware's response headers.
	maxReasonLen = 64
)

// Identity is who a token belongs to, as Tokenwarden's /verify says.
type Identity struct {
	// User is "tokenwarden:<namespace>:<name>:<uid>", the user name
	// TokenReview answers too. It ends in the ApiToken's UID so that a
	// token deleted and created again under the same name is another user,
	// which inherits no RBAC binding or other grant made for the old one.
	User string `json:"user"`
	// Name and Namespace name the ApiToken.
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// UID is the ApiToken's UID; it tells a recreated ApiToken of the same
	// name from the one before.
	UID string `json:"uid"`
	// Type is Team, Wildcard or Admin.
	Type string `json:"type"`
	// Teams are the teams the token speaks for: spec.teams for a Team
	// token; for a Wildcard token the teams its creator owns when it is
	// verified, or every team if the creator is an admin; none for an
	// Admin token, which is associated with no team.
	Teams []string `json:"teams"`
	// Scopes are the token's scopes; what they allow is up to the service.
	Scopes []string `json:"scopes"`
	// ExpiresAt is when the presented value stops verifying (for a value
	// in its rotation overlap, the end of the overlap); nil means never.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	// Creator is the user who created the ApiToken.
	Creator string `json:"creator"`
}

// clone returns a deep copy, so no caller can change another's answer or
// the cached one.
func (id *Identity) clone() *Identity {
	c := *id
	c.Teams = cloneStrings(id.Teams)
	c.Scopes = cloneStrings(id.Scopes)
	if id.ExpiresAt != nil {
		t := *id.ExpiresAt
		c.ExpiresAt = &t
	}
	return &c
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

// Client asks Tokenwarden's /verify who a token belongs to and caches the
// positive answers briefly.
//
// Revocation (disable, expiry, invalidation, deletion, recreate) reaches a
// service within CacheTTL: a positive answer is reused for at most CacheTTL
// counted from when its request was sent, and never past the identity's
// ExpiresAt. Refusals and errors are never cached, so a token that starts
// verifying (say, a re-enabled one) works on the next request.
//
// Set the fields before the first Verify and leave them alone after: a
// Client is safe for concurrent use, but not for changing while in use.
type Client struct {
	// URL is the server's base URL, such as
	// https://tokenwarden-verify.tokenwarden-system.svc. Verify asks
	// URL + "/verify"; a URL that already ends in /verify (as local mode's
	// TOKENWARDEN_VERIFY_URL does) is used as it is. Use https outside
	// tests: every request carries a token.
	URL string
	// HTTPClient sends the requests. Nil means a client with a 5s timeout
	// that trusts the system roots and follows no redirects.
	HTTPClient *http.Client
	// CacheTTL is how long a positive answer is reused: 0 means
	// DefaultCacheTTL, negative disables the cache (and the sharing of
	// concurrent identical lookups), so every Verify asks the server.
	CacheTTL time.Duration
	// MaxEntries bounds the cached answers, evicting the least recently
	// used; 0 or less means DefaultMaxEntries.
	MaxEntries int
	// ClientAddr tells Middleware the address of the end client of a
	// request, which it forwards to Tokenwarden (see VerifyFrom). Nil means
	// the request's peer (its RemoteAddr): right for a service that clients
	// reach directly. A service behind its own reverse proxy sets it to read
	// the address that proxy forwards, from a header only the proxy can set.
	ClientAddr func(r *http.Request) netip.Addr

	// clock reads the time (cache freshness, Retry-After); nil means the
	// system's. WithClock sets it.
	clock Clock
	// caErr says WithCA got no certificate; Verify returns it, so a
	// misconfigured service fails closed instead of trusting other roots.
	caErr error

	mu    sync.Mutex
	cache *cache
}

// Option configures a Client made by New.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests with hc. Of
// WithHTTPClient and WithCA, the last one given wins.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.HTTPClient, c.caErr = hc, nil }
}

// WithClientAddr sets Client.ClientAddr.
func WithClientAddr(addr func(r *http.Request) netip.Addr) Option {
	return func(c *Client) { c.ClientAddr = addr }
}

// Clock tells the time. k8s.io/utils/clock's clocks are Clocks, so a
// service passes the one clock it injects everywhere, and tests a fake one.
type Clock interface {
	Now() time.Time
}

// WithClock makes the Client read the time from clk instead of the
// system's clock.
func WithClock(clk Clock) Option {
	return func(c *Client) { c.clock = clk }
}

// WithCacheTTL sets Client.CacheTTL.
func WithCacheTTL(ttl time.Duration) Option {
	return func(c *Client) { c.CacheTTL = ttl }
}

// WithMaxEntries sets Client.MaxEntries.
func WithMaxEntries(n int) Option {
	return func(c *Client) { c.MaxEntries = n }
}

// WithCA makes the Client trust only the CA certificates in pemBytes (the
// CA Tokenwarden publishes; bin/dev/ca.crt in local mode) for the server's
// certificate, with a 5s timeout and no redirects. If pemBytes holds no
// certificate, every Verify returns an error rather than falling back to
// other roots. Of WithHTTPClient and WithCA, the last one given wins.
func WithCA(pemBytes []byte) Option {
	return func(c *Client) {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			c.caErr = errors.New("verifyclient: WithCA: no PEM certificate found")
			return
		}
		c.caErr = nil
		c.HTTPClient = newHTTPClient(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
}

// New returns a Client for the server at url.
func New(url string, opts ...Option) *Client {
	c := &Client{URL: url}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// defaultHTTPClient serves every Client without its own HTTP client.
var defaultHTTPClient = newHTTPClient(nil)

// newHTTPClient returns a client with DefaultTimeout that does not follow
// redirects: /verify has no reason to redirect, and following one could
// carry the token to another place.
func newHTTPClient(tlsConfig *tls.Config) *http.Client {
	var transport *http.Transport
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		transport = t.Clone()
	} else {
		transport = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        100,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		}
	}
	if tlsConfig != nil {
		transport.TLSClientConfig = tlsConfig
	}
	return &http.Client{
		Transport: transport,
		Timeout:   DefaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Verify returns who token belongs to. A *RefusedError means Tokenwarden
// refused the token (or rate-limited the caller); any other error means the
// answer could not be had, and the token should be treated as unverified.
// Neither kind of error contains the token.
//
// An empty token is refused as Missing, and one that cannot be sent in a
// header as Malformed, without asking the server.
//
// Tokenwarden charges a refused token to the address that asked, the
// service's: a service verifying its clients' tokens should call
// VerifyFrom, as Middleware does, so that one client's bad tokens cost
// only that client.
func (c *Client) Verify(ctx context.Context, token string) (*Identity, error) {
	return c.VerifyFrom(ctx, token, netip.Addr{})
}

// VerifyFrom is Verify on behalf of the end client at client, the address
// token came from. Tokenwarden limits refused attempts per client address,
// and every client of a service reaches it from the service's address, so
// without this one client guessing would leave every other client's typo
// answered 429. The address is sent as X-Real-IP and X-Forwarded-For, which
// Tokenwarden believes only from peers listed in its
// --verify-trusted-proxies: list the service's addresses there. A valid
// token is never refused for other clients' failures, forwarded or not.
// The zero Addr forwards nothing, as Verify.
//
// Concurrent lookups of the same uncached token share one request, sent
// on behalf of the first caller's client.
func (c *Client) VerifyFrom(ctx context.Context, token string, client netip.Addr) (*Identity, error) {
	if c.caErr != nil {
		return nil, c.caErr
	}
	if token == "" {
		return nil, &RefusedError{Reason: ReasonMissing}
	}
	if !Sendable(token) {
		return nil, &RefusedError{Reason: ReasonMalformed}
	}
	if c.cacheTTL() < 0 {
		return c.fetch(ctx, token, client)
	}

	key := keyOf(token)
	c.mu.Lock()
	if c.cache == nil {
		c.cache = newCache()
	}
	if id, ok := c.cache.get(key, c.now()); ok {
		c.mu.Unlock()
		return id.clone(), nil
	}
	cl, ok := c.cache.inflight[key]
	if !ok {
		// The request outlives the caller that started it as long as
		// others wait for it, so it keeps the caller's values but not its
		// cancellation; the last waiter to leave cancels it.
		reqCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cl = &call{done: make(chan struct{}), cancel: cancel}
		c.cache.inflight[key] = cl
		go c.run(reqCtx, key, token, client, cl)
	}
	cl.waiters++
	c.mu.Unlock()

	select {
	case <-cl.done:
		if cl.err != nil {
			return nil, cl.err
		}
		return cl.id.clone(), nil
	case <-ctx.Done():
		c.mu.Lock()
		cl.waiters--
		if cl.waiters == 0 {
			cl.cancel()
			if c.cache.inflight[key] == cl {
				delete(c.cache.inflight, key)
			}
		}
		c.mu.Unlock()
		return nil, fmt.Errorf("verifyclient: verify: %w", context.Cause(ctx))
	}
}

// run makes the request of a shared call, caches a positive answer and
// hands the result to the waiters.
func (c *Client) run(ctx context.Context, key cacheKey, token string, client netip.Addr, cl *call) {
	defer cl.cancel()
	// The answer reflects the server's state at some instant after the
	// request was sent, so counting the TTL from here keeps the bound on
	// revocation exact however slow the answer is.
	sent := c.now()
	id, err := c.fetch(ctx, token, client)

	c.mu.Lock()
	if err == nil {
		expires := sent.Add(c.cacheTTL())
		if id.ExpiresAt != nil && id.ExpiresAt.Before(expires) {
			expires = *id.ExpiresAt
		}
		if c.now().Before(expires) {
			c.cache.put(key, id, expires, c.maxEntries())
		}
	}
	// Deleting under the same lock as the put means a later caller either
	// finds the entry or starts a new call, never neither.
	if c.cache.inflight[key] == cl {
		delete(c.cache.inflight, key)
	}
	cl.id, cl.err = id, err
	c.mu.Unlock()
	close(cl.done)
}

// fetch asks the server once, on behalf of client unless it is the zero
// Addr.
func (c *Client) fetch(ctx context.Context, token string, client netip.Addr) (*Identity, error) {
	endpoint, err := c.endpoint()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("verifyclient: building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if client.IsValid() {
		// One address, spelled as netip spells it, is all either header
		// holds: nothing the end client wrote is passed on. Tokenwarden
		// refuses addresses with a zone, which mean nothing off this host,
		// and counts an IPv4-mapped address as the IPv4 one.
		addr := client.WithZone("").Unmap().String()
		req.Header.Set("X-Real-IP", addr)
		req.Header.Set("X-Forwarded-For", addr)
	}

	hc := c.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// The error names the URL, which holds no token: it travels in a
		// header.
		return nil, fmt.Errorf("verifyclient: verify: %w", err)
	}
	defer func() {
		// Draining lets the connection be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
	}()

	return ReadAnswer(resp, c.now())
}

// ErrNoUser is a 200 answer that names no user: a broken server, not a
// verified token, so whoever gets it stays closed.
var ErrNoUser = errors.New("verifyclient: verify answered 200 but named no user")

// StatusError is an answer outside /verify's contract (neither 200, 401
// nor 429): a proxy's or a misrouted request's, say. It says nothing about
// the token.
type StatusError struct {
	// Status is the HTTP status, such as "404 Not Found".
	Status string
	// Reason is the answer's reason, if it gave a plain word as one.
	Reason string
}

func (e *StatusError) Error() string {
	if e.Reason != "" {
		return "verifyclient: verify answered " + e.Status + " (" + e.Reason + ")"
	}
	return "verifyclient: verify answered " + e.Status
}

// ReadAnswer reads a /verify answer as Verify does: the identity of a 200
// (ErrNoUser if it names nobody), a *RefusedError for a 401 or a 429 (its
// RetryAfter counted from now), a *StatusError for any other status. It is
// for callers that send the request themselves, such as through the API
// server's service proxy. It reads a bounded part of the body and does not
// close it.
func ReadAnswer(resp *http.Response, now time.Time) (*Identity, error) {
	switch resp.StatusCode {
	case http.StatusOK:
		var id Identity
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxIdentityBody)).Decode(&id); err != nil {
			return nil, fmt.Errorf("verifyclient: reading the verify answer: %w", err)
		}
		// A 200 that names nobody is a broken server, not a verified token;
		// failing here keeps services closed.
		if id.User == "" {
			return nil, ErrNoUser
		}
		return &id, nil
	case http.StatusUnauthorized:
		return nil, &RefusedError{Reason: cmp.Or(answerReason(resp), ReasonUnauthorized)}
	case http.StatusTooManyRequests:
		return nil, &RefusedError{Reason: ReasonRateLimited, RetryAfter: retryAfter(resp.Header, now)}
	default:
		return nil, &StatusError{Status: resp.Status, Reason: answerReason(resp)}
	}
}

// endpoint is the URL of /verify under c.URL.
func (c *Client) endpoint() (string, error) {
	u, err := Endpoint(c.URL)
	if err != nil {
		return "", fmt.Errorf("verifyclient: %w", err)
	}
	return u.String(), nil
}

// Endpoint is the URL of /verify for a verification server's URL: the URL
// itself when it already ends in /verify (as the local mode's
// TOKENWARDEN_VERIFY_URL does), else /verify under it.
func Endpoint(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("bad URL %q: want https://host[:port][/path]", raw)
	}
	if p := strings.TrimSuffix(u.Path, "/"); strings.HasSuffix(p, "/verify") {
		u.Path, u.RawPath = p, ""
		return u, nil
	}
	return u.JoinPath("verify"), nil
}

func (c *Client) now() time.Time {
	if c.clock != nil {
		return c.clock.Now()
	}
	return time.Now()
}

func (c *Client) cacheTTL() time.Duration {
	if c.CacheTTL == 0 {
		return DefaultCacheTTL
	}
	return c.CacheTTL
}

func (c *Client) maxEntries() int {
	if c.MaxEntries <= 0 {
		return DefaultMaxEntries
	}
	return c.MaxEntries
}

// Sendable reports whether token can travel in a header as it is: visible
// ASCII only. Anything else is no Tokenwarden token, and refusing it before
// sending turns a bad client's request into a Malformed refusal rather
// than a transport error.
func Sendable(token string) bool {
	for i := 0; i < len(token); i++ {
		if token[i] <= ' ' || token[i] >= 0x7f {
			return false
		}
	}
	return true
}

// answerReason finds an answer's reason in the places the contract puts
// it: X-Tokenwarden-Reason, the JSON body, then WWW-Authenticate's
// error_description; "" when none holds a plain word.
func answerReason(resp *http.Response) string {
	if r := cleanReason(resp.Header.Get("X-Tokenwarden-Reason")); r != "" {
		return r
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&body) == nil {
		if r := cleanReason(body.Reason); r != "" {
			return r
		}
	}
	return cleanReason(authParam(resp.Header.Get("WWW-Authenticate"), "error_description"))
}

// cleanReason returns r if it is a plain word (letters and digits, as every
// reason in the contract is), and "" otherwise. A reason ends up in error
// messages and response headers, so nothing else from the server is let
// through.
func cleanReason(r string) string {
	if r == "" || len(r) > maxReasonLen {
		return ""
	}
	for i := 0; i < len(r); i++ {
		switch b := r[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		default:
			return ""
		}
	}
	return r
}

// authParam returns the value of the auth-param name in a WWW-Authenticate
// header, quoted or not. It is enough for the one challenge Tokenwarden
// sends, whose values hold no commas or escaped quotes.
func authParam(header, name string) string {
	_, params, _ := strings.Cut(header, " ")
	for p := range strings.SplitSeq(params, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// retryAfter reads how long a 429 asks to wait: Retry-After in seconds or
// as an HTTP date, else RateLimit-Reset in seconds. Zero means it did not
// say.
func retryAfter(h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			d = seconds(secs)
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	} else if v := strings.TrimSpace(h.Get("RateLimit-Reset")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			d = seconds(secs)
		}
	}
	return min(max(d, 0), maxRetryAfter)
}

func seconds(n int64) time.Duration {
	if n > int64(maxRetryAfter/time.Second) {
		return maxRetryAfter
	}
	return time.Duration(n) * time.Second
}
