// Package verifyhttp is verification's transport: the /verify and
// TokenReview endpoints, reading the token from a request, the answer's
// JSON and headers, and which rate limit a request spends. Who a token is
// is decided by internal/verify, which knows nothing of HTTP.
package verifyhttp

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenwarden/tokenwarden/internal/ratelimit"
	"github.com/tokenwarden/tokenwarden/internal/verify"
)

// Names in what the endpoints return.
const (
	// GroupTypePrefix starts the TokenReview group naming a token's type.
	GroupTypePrefix = "tokenwarden:type:"
	// GroupTeamPrefix starts the TokenReview groups naming a token's teams.
	GroupTeamPrefix = "tokenwarden:team:"
	// ScopesExtraKey is the TokenReview user.extra key holding the scopes.
	ScopesExtraKey = "auth.tokenwarden.io/scopes"

	// Realm is the realm of WWW-Authenticate challenges.
	Realm = "tokenwarden"

	// ReasonAudienceMismatch starts TokenReview's status.error when none of
	// the audiences a review asks for is one the tokens are valid for, and
	// is the outcome label of such a refusal. It concerns the review, not
	// the token, which is not looked at.
	ReasonAudienceMismatch = "AudienceMismatch"
)

// maxReviewBytes bounds a TokenReview body; a real one is well under 4 KiB.
const maxReviewBytes = 64 << 10

// Server serves verification over HTTP:
//   - POST /tokenreview and POST /apis/authentication.k8s.io/v1/tokenreviews
//     answer kube-apiserver's token webhook with a TokenReview;
//   - GET /verify answers forward-auth proxies and services with the
//     identity as JSON and X-Tokenwarden-* headers.
//
// Both count a verified request against the token and record last use.
// GET /verify also counts a refused attempt against the client address,
// and says in RateLimit-* headers how much of the budget that applied is
// left; the TokenReview routes do neither, see serveTokenReview.
type Server struct {
	// Verifier decides who a token is.
	Verifier *verify.Verifier
	// Limiter limits failures per client and requests per token; nil
	// means no limits.
	Limiter *ratelimit.Limiter
	// LastUsed records successful verifications; nil records nothing.
	LastUsed *verify.LastUsed
	// AllowQueryToken accepts ?token=<t> on /verify. Off by default
	// because query strings end up in access logs.
	AllowQueryToken bool
	// TrustedProxies are the networks of the reverse proxies in front of
	// /verify. A request whose connection comes from one of them is charged
	// to the client the proxy names: X-Real-IP if it holds one valid
	// address, else the right-most valid address in X-Forwarded-For, else
	// the proxy itself. A request from anywhere else is charged to the
	// connection's address, whatever its headers say, since any client can
	// write them. Empty, the default, trusts no forwarding header. A proxy
	// listed here must set X-Real-IP or append to X-Forwarded-For itself,
	// or its clients choose the address they are charged to. A service
	// that verifies through pkg/verifyclient forwards its own client's
	// address the same way, and is listed here too.
	TrustedProxies []netip.Prefix
	// Audiences are the audiences TokenReview answers a token valid for,
	// as kube-apiserver's --api-audiences are for its ServiceAccount
	// tokens. A review naming audiences is authenticated only if one of
	// them is listed here, and status.audiences says which; a review naming
	// none is answered with all of them. Empty, the default, means the
	// audience of the Kubernetes API server that asks, whichever it is: the
	// answer then names no audience, which the TokenReview API defines as
	// exactly that, and kube-apiserver checks it against its own
	// --api-audiences.
	Audiences []string
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tokenreview", s.serveTokenReview)
	mux.HandleFunc("POST /apis/authentication.k8s.io/v1/tokenreviews", s.serveTokenReview)
	// Forward-auth proxies differ in what they send: nginx's auth_request
	// a GET of a fixed URI, Envoy's ext_authz the client's own method with
	// the client's path after a prefix. /verify reads only headers, so it
	// answers any method, on /verify and every path below it.
	// The mux is bypassed for them: it would answer an unclean path such
	// as //verify/x or /verify/a/../b with a redirect, which ext_authz
	// passes to the client as a refusal of a good token.
	verify := http.HandlerFunc(s.serveVerify)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "/verify" || strings.HasPrefix(p, "/verify/") {
			verify.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// decision is the outcome of one request.
type decision struct {
	// vd is the verifier's answer: who the token is, when verified.
	vd verify.Verdict
	// reason is "" when verified: the verifier's reason, or the rate
	// limit's.
	reason string
	// rate describes the budget the answer reports: the one that refused
	// the request if a limit did, else the token's for a verified request
	// and the client's for a refusal. Its Limit is 0 when no budget
	// applies (no Limiter, or a refusal not charged to a client).
	rate ratelimit.Info
}

// decide runs the flow shared by both endpoints and records its metrics;
// see decideUntimed.
func (s *Server) decide(ctx context.Context, value, client string, limitClient bool) decision {
	start := s.Verifier.Clock.Now()
	d := s.decideUntimed(ctx, value, client, limitClient)
	durationSeconds.Observe(s.Verifier.Clock.Since(start).Seconds())
	countOutcome(d.reason)
	return d
}

// decideUntimed decides a request presenting value from client. The token
// is looked at first, cheapest check first (see Verifier.Verify): garbage
// costs a checksum and an unknown value a hash and a map lookup, whoever
// sends them. A verified token then spends its own request budget and
// nothing else: a client's failures never refuse a valid token, since the
// address they are charged to is, behind a proxy or a service that does not
// forward it, every client's. Only a token found in the index ever gets a
// limiter. When limitClient is set, a refusal is charged to the client's
// failure budget, and a client that has spent it is answered 429 for its
// refused attempts, which then spend nothing more. A request without a
// token is answered at once: it is no guess, so it neither spends nor needs
// the budget.
func (s *Server) decideUntimed(ctx context.Context, value, client string, limitClient bool) decision {
	limitClient = limitClient && s.Limiter != nil
	if value == "" {
		d := decision{reason: verify.ReasonMissing}
		if limitClient {
			d.rate, _ = s.Limiter.CheckClient(client)
		}
		return d
	}
	var d decision
	s.Verifier.Decide(ctx, value, &d.vd)
	switch d.reason = d.vd.Reason; {
	case d.reason == "":
	case !limitClient:
		return d
	case d.reason == verify.ReasonUnavailable:
		// An unavailable Team cache is not the client's fault.
		d.rate, _ = s.Limiter.CheckClient(client)
		return d
	default:
		info, ok := s.Limiter.ChargeFailure(client)
		if !ok {
			clientLimited.Inc()
			return decision{reason: verify.ReasonRateLimited, rate: info}
		}
		d.rate = info
		return d
	}
	if s.Limiter != nil {
		info, ok := s.Limiter.CheckToken(d.vd.Digest())
		if !ok {
			tokenLimited.Inc()
			return decision{reason: verify.ReasonRateLimited, rate: info}
		}
		d.rate = info
	}
	if s.LastUsed != nil {
		s.LastUsed.Record(d.vd.Key(), d.vd.At)
	}
	return d
}

// clientAddr is the address r's failures are charged to: the host of the
// connection's remote address, or, when that is a trusted proxy, the client
// the proxy forwards for (see TrustedProxies).
func (s *Server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(s.TrustedProxies) == 0 {
		return host
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.trusts(peer.Unmap()) {
		return host
	}
	if client, ok := forwardedClient(r.Header); ok {
		// String spells one address one way, so a client cannot earn a
		// second budget by writing its address differently.
		return client.String()
	}
	return host
}

// trusts reports whether peer is inside one of the TrustedProxies.
func (s *Server) trusts(peer netip.Addr) bool {
	for _, p := range s.TrustedProxies {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// forwardedClient returns the client a trusted proxy names in h: X-Real-IP
// if it is given once and valid, else the right-most valid entry of
// X-Forwarded-For. The right-most entry is the one the nearest proxy added;
// those left of it were written by whoever the proxy heard from, so they
// are only reached when the proxy's own is unreadable.
func forwardedClient(h http.Header) (netip.Addr, bool) {
	if vals := h["X-Real-Ip"]; len(vals) == 1 {
		if a, ok := parseForwarded(vals[0]); ok {
			return a, true
		}
	}
	// Several X-Forwarded-For fields make one list, in order (RFC 9110
	// section 5.3).
	xff := h["X-Forwarded-For"]
	for i := len(xff) - 1; i >= 0; i-- {
		list := xff[i]
		for list != "" {
			entry := list
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				entry, list = list[j+1:], list[:j]
			} else {
				list = ""
			}
			if a, ok := parseForwarded(entry); ok {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

// parseForwarded parses one forwarded address: an IP address, or one with a
// port as some proxies write it, between optional spaces. An address with
// an IPv6 zone is refused: a zone means nothing beyond the host that wrote
// it. IPv4-mapped IPv6 addresses are unmapped, so they count as the IPv4
// address they are.
func parseForwarded(s string) (netip.Addr, bool) {
	s = strings.Trim(s, " \t")
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// Canonical names of the headers of a verified answer. They are assigned to
// the header map directly, since Header.Set would canonicalize each again.
const (
	headerCacheControl = "Cache-Control"
	headerContentType  = "Content-Type"
	headerUser         = "X-Tokenwarden-User"
	headerName         = "X-Tokenwarden-Name"
	headerNamespace    = "X-Tokenwarden-Namespace"
	headerType         = "X-Tokenwarden-Type"
	headerTeams        = "X-Tokenwarden-Teams"
	headerScopes       = "X-Tokenwarden-Scopes"
	headerExpiresAt    = "X-Tokenwarden-Expires-At"
	headerCreator      = "X-Tokenwarden-Creator"
	headerRateLimit    = "Ratelimit-Limit"
	headerRateRemain   = "Ratelimit-Remaining"
	headerRateReset    = "Ratelimit-Reset"
)

func (s *Server) serveVerify(w http.ResponseWriter, r *http.Request) {
	value, _ := ExtractToken(r, s.AllowQueryToken)
	d := s.decide(r.Context(), value, s.clientAddr(r), true)
	switch d.reason {
	case "":
		writeIdentity(w, &d.vd, &d.rate)
	case verify.ReasonRateLimited:
		writeRateLimited(w, d.rate)
	case verify.ReasonUnavailable:
		setRateLimit(w.Header(), &d.rate)
		writeUnavailable(w)
	default:
		h := w.Header()
		setRateLimit(h, &d.rate)
		h.Set("Cache-Control", "no-store")
		// RFC 6750 section 3.1: a request without credentials gets the bare
		// challenge, one with bad credentials says why.
		challenge := `Bearer realm="` + Realm + `"`
		if d.reason != verify.ReasonMissing {
			challenge += `, error="invalid_token", error_description="` + d.reason + `"`
		}
		h.Set("WWW-Authenticate", challenge)
		h.Set("X-Tokenwarden-Reason", d.reason)
		writeReason(w, http.StatusUnauthorized, d.reason)
	}
}

// writeIdentity answers 200 with the identity vd verified, as headers and
// JSON, and with the token's budget, rate, in RateLimit-* headers unless
// no limit applies.
func writeIdentity(w http.ResponseWriter, vd *verify.Verdict, rate *ratelimit.Info) {
	id := &vd.Identity
	teams, scopes, expiresAt := vd.Joined()
	// One array holds every value, instead of a slice allocated per header;
	// each header gets a full slice expression, so appending to one value
	// cannot write into the next. Answers depend on the token and on the
	// instant: no cache may keep one.
	vals := &[...]string{
		"no-store", "application/json", id.User, id.Name, id.Namespace,
		id.Type, teams, scopes, id.Creator, expiresAt,
		number(rate.Limit), number(rate.Remaining), number(ceilSeconds(rate.Reset)),
	}
	h := w.Header()
	h[headerCacheControl] = vals[0:1:1]
	h[headerContentType] = vals[1:2:2]
	h[headerUser] = vals[2:3:3]
	h[headerName] = vals[3:4:4]
	h[headerNamespace] = vals[4:5:5]
	h[headerType] = vals[5:6:6]
	h[headerTeams] = vals[6:7:7]
	h[headerScopes] = vals[7:8:8]
	h[headerCreator] = vals[8:9:9]
	if id.ExpiresAt != nil {
		h[headerExpiresAt] = vals[9:10:10]
	}
	if rate.Limit > 0 {
		h[headerRateLimit] = vals[10:11:11]
		h[headerRateRemain] = vals[11:12:12]
		h[headerRateReset] = vals[12:13:13]
	}

	// encoding/json, not a hand-written encoder: make bench measured one
	// at 1-2% more requests a second over HTTP, less than two runs differ.
	writeJSON(w, http.StatusOK, id)
}

// serveTokenReview answers kube-apiserver. It neither checks nor charges the
// per-client failure budget: every TokenReview comes from kube-apiserver,
// one client address speaking for every user of the cluster, so a handful
// of bad tokens from anyone would lock everyone out of token
// authentication. Guessing gains nothing against 256-bit values, garbage is
// refused by its checksum before any lookup, and how fast anyone can make
// kube-apiserver ask is bounded by kube-apiserver's own request limits.
// Tokens found in the index still spend their per-token budget.
func (s *Server) serveTokenReview(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	var review authenticationv1.TokenReview
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxReviewBytes))
	if err := dec.Decode(&review); err != nil {
		// The decoder's error may quote the body, which holds the token.
		writeReason(w, http.StatusBadRequest, "MalformedTokenReview")
		return
	}
	audiences, ok := s.reviewAudiences(review.Spec.Audiences)
	if !ok {
		// Refused before the token is looked at: no answer about this
		// review could authenticate it, whatever the token.
		countOutcome(ReasonAudienceMismatch)
		writeJSON(w, http.StatusOK, &authenticationv1.TokenReview{
			TypeMeta: metav1.TypeMeta{APIVersion: reviewAPIVersion(review.APIVersion), Kind: "TokenReview"},
			Status: authenticationv1.TokenReviewStatus{
				Error: fmt.Sprintf("%s: token audiences %q is invalid for the target audiences %q",
					ReasonAudienceMismatch, s.Audiences, review.Spec.Audiences),
			},
		})
		return
	}
	d := s.decide(r.Context(), review.Spec.Token, "", false)
	switch d.reason {
	case verify.ReasonRateLimited:
		// kube-apiserver retries a 429 with backoff, where a refusal would
		// be cached and fail a valid token.
		writeRateLimited(w, d.rate)
		return
	case verify.ReasonUnavailable:
		// An error, not a refusal, for the same reason.
		writeUnavailable(w)
		return
	}
	writeJSON(w, http.StatusOK, reviewResponse(&review, &d, audiences))
}

// reviewAudiences returns the audiences a review asking for requested is
// answered with, as kube-apiserver answers for its own ServiceAccount
// tokens, with Audiences in the role of its --api-audiences: the requested
// ones that are among Audiences, in the order asked, or all of Audiences
// when none is requested. It reports false when requested names audiences
// and none of them is among Audiences: the review is then refused. Without
// Audiences, every review is answered with none, which says "valid for the
// API server's own audience" (see Audiences).
func (s *Server) reviewAudiences(requested []string) ([]string, bool) {
	if len(s.Audiences) == 0 {
		return nil, true
	}
	if len(requested) == 0 {
		return s.Audiences, true
	}
	var both []string
	for _, aud := range requested {
		if slices.Contains(s.Audiences, aud) {
			both = append(both, aud)
		}
	}
	return both, len(both) > 0
}

// reviewResponse is the TokenReview answering req, valid for audiences when
// authenticated. It carries no spec, so the token is never sent back.
func reviewResponse(req *authenticationv1.TokenReview, d *decision, audiences []string) *authenticationv1.TokenReview {
	resp := &authenticationv1.TokenReview{
		TypeMeta: metav1.TypeMeta{APIVersion: reviewAPIVersion(req.APIVersion), Kind: "TokenReview"},
	}
	if d.reason != "" {
		resp.Status.Error = d.reason
		return resp
	}
	id := &d.vd.Identity
	groups := make([]string, 0, 1+len(id.Teams))
	groups = append(groups, GroupTypePrefix+id.Type)
	for _, t := range id.Teams {
		groups = append(groups, GroupTeamPrefix+t)
	}
	resp.Status = authenticationv1.TokenReviewStatus{
		Authenticated: true,
		User: authenticationv1.UserInfo{
			Username: id.User,
			UID:      id.UID,
			Groups:   groups,
			Extra: map[string]authenticationv1.ExtraValue{
				ScopesExtraKey: authenticationv1.ExtraValue(id.Scopes),
			},
		},
		Audiences: audiences,
	}
	return resp
}

// reviewAPIVersion answers in the version asked: kube-apiserver sends
// v1beta1 unless --authentication-token-webhook-version=v1, and the two
// have the same shape.
func reviewAPIVersion(asked string) string {
	if asked == "authentication.k8s.io/v1beta1" {
		return asked
	}
	return authenticationv1.SchemeGroupVersion.String()
}

// writeRateLimited answers 429 with the draft IETF RateLimit headers and
// Retry-After in whole seconds, at least one so clients do not spin.
func writeRateLimited(w http.ResponseWriter, info ratelimit.Info) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", number(max(ceilSeconds(info.RetryAfter), 1)))
	setRateLimit(h, &info)
	writeReason(w, http.StatusTooManyRequests, verify.ReasonRateLimited)
}

// setRateLimit sets the draft IETF RateLimit headers of info: how many
// attempts the budget allows in a row, how many are left, and in how many
// whole seconds it is full again. It sets none when no budget applies.
func setRateLimit(h http.Header, info *ratelimit.Info) {
	if info.Limit <= 0 {
		return
	}
	h[headerRateLimit] = []string{number(info.Limit)}
	h[headerRateRemain] = []string{number(info.Remaining)}
	h[headerRateReset] = []string{number(ceilSeconds(info.Reset))}
}

// maxSmallNumber is the largest number spelled from smallNumbers: the
// default bursts, and the seconds any usual budget takes to refill, are
// well below it.
const maxSmallNumber = 1000

// smallNumbers spell 0 to maxSmallNumber in decimal, cut from one string
// built once, so the RateLimit-* headers of a verified answer cost no
// allocation.
var smallNumbers = func() []string {
	var b strings.Builder
	ends := make([]int, 0, maxSmallNumber+1)
	for n := range maxSmallNumber + 1 {
		b.WriteString(strconv.Itoa(n))
		ends = append(ends, b.Len())
	}
	all := b.String()
	out := make([]string, len(ends))
	start := 0
	for i, end := range ends {
		out[i], start = all[start:end], end
	}
	return out
}()

// number spells n in decimal.
func number[N int | int64](n N) string {
	if n >= 0 && n <= maxSmallNumber {
		return smallNumbers[n]
	}
	return strconv.FormatInt(int64(n), 10)
}

func writeUnavailable(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", "1")
	writeReason(w, http.StatusServiceUnavailable, verify.ReasonUnavailable)
}

func ceilSeconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}

// writeReason answers status with the JSON body {"reason": reason}.
func writeReason(w http.ResponseWriter, status int, reason string) {
	writeJSON(w, status, reasonBody{Reason: reason})
}

// reasonBody is the body of a refusal.
type reasonBody struct {
	Reason string `json:"reason"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The client may be gone; there is nobody left to tell.
	_ = json.NewEncoder(w).Encode(v)
}
