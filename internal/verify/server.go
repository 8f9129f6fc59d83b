package verify

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
// GET /verify also counts a refused attempt against the client address;
// the TokenReview routes do not, see serveTokenReview.
type Server struct {
	// Verifier decides who a token is.
	Verifier *Verifier
	// Limiter limits failures per client and requests per token; nil
	// means no limits.
	Limiter *Limiter
	// LastUsed records successful verifications; nil records nothing.
	LastUsed *LastUsed
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
	// or its clients choose the address they are charged to.
	TrustedProxies []netip.Prefix
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
	id Identity
	// rec is the record verified as, nil unless verified.
	rec *record
	// reason is "" when verified.
	reason string
	// rate describes the limit that refused the request, if one did.
	rate RateInfo
}

// decide runs the flow shared by both endpoints and records its metrics;
// see decideUntimed.
func (s *Server) decide(ctx context.Context, value, client string, limitClient bool) decision {
	start := time.Now()
	d := s.decideUntimed(ctx, value, client, limitClient)
	durationSeconds.Observe(time.Since(start).Seconds())
	countOutcome(d.reason)
	return d
}

// decideUntimed decides a request presenting value from client. A request
// without a token is answered at once: it is no guess, so it neither spends
// nor needs the client's failure budget. Otherwise, when limitClient is
// set, the client's failure budget comes first, so a client that spent it
// costs nothing more; then verification; then, for a verified token only,
// the token's request budget, so only digests found in the index ever get a
// limiter.
func (s *Server) decideUntimed(ctx context.Context, value, client string, limitClient bool) decision {
	if value == "" {
		return decision{reason: ReasonMissing}
	}
	limitClient = limitClient && s.Limiter != nil
	if limitClient {
		if info, ok := s.Limiter.CheckClient(client); !ok {
			clientLimited.Inc()
			return decision{reason: ReasonRateLimited, rate: info}
		}
	}
	var vd verdict
	s.Verifier.verify(ctx, value, &vd)
	if vd.reason != "" {
		// An unavailable Team cache is not the client's fault.
		if limitClient && vd.reason != ReasonUnavailable {
			s.Limiter.ChargeFailure(client)
		}
		return decision{reason: vd.reason}
	}
	if s.Limiter != nil {
		if info, ok := s.Limiter.allowToken(vd.rec.digest); !ok {
			tokenLimited.Inc()
			return decision{reason: ReasonRateLimited, rate: info}
		}
	}
	if s.LastUsed != nil {
		s.LastUsed.Record(vd.rec.entry.Key, vd.at)
	}
	return decision{id: vd.id, rec: vd.rec}
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
)

func (s *Server) serveVerify(w http.ResponseWriter, r *http.Request) {
	value, _ := ExtractToken(r, s.AllowQueryToken)
	d := s.decide(r.Context(), value, s.clientAddr(r), true)
	switch d.reason {
	case "":
		writeIdentity(w, &d.id, d.rec)
	case ReasonRateLimited:
		writeRateLimited(w, d.rate)
	case ReasonUnavailable:
		writeUnavailable(w)
	default:
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		// RFC 6750 section 3.1: a request without credentials gets the bare
		// challenge, one with bad credentials says why.
		challenge := `Bearer realm="` + Realm + `"`
		if d.reason != ReasonMissing {
			challenge += `, error="invalid_token", error_description="` + d.reason + `"`
		}
		h.Set("WWW-Authenticate", challenge)
		h.Set("X-Tokenwarden-Reason", d.reason)
		writeReason(w, http.StatusUnauthorized, d.reason)
	}
}

// bodyPool holds the buffers identity bodies are written in.
var bodyPool = sync.Pool{New: func() any { return new([]byte) }}

// writeIdentity answers 200 with id, which verified as rec, as headers and
// JSON. It takes the values that do not depend on the request from rec,
// where they were worked out once.
func writeIdentity(w http.ResponseWriter, id *Identity, rec *record) {
	teams := rec.teamsHeader
	if rec.dynamicTeams {
		teams = strings.Join(id.Teams, ",")
	}
	// One array holds every value, instead of a slice allocated per header;
	// each header gets a full slice expression, so appending to one value
	// cannot write into the next. Answers depend on the token and on the
	// instant: no cache may keep one.
	vals := &[...]string{
		"no-store", "application/json", id.User, id.Name, id.Namespace,
		id.Type, teams, rec.scopesHeader, id.Creator, rec.expiresHeader,
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

	buf := bodyPool.Get().(*[]byte)
	body, err := appendIdentityJSON((*buf)[:0], id)
	if err != nil {
		// Only an expiry outside what RFC 3339 can write gets here;
		// encoding/json refuses it the same way, and keeps the answer as
		// it always was. It gets a copy, so that id, which only this rare
		// path would hand to an interface, stays on the caller's stack.
		writeJSON(w, http.StatusOK, *id)
	} else {
		w.WriteHeader(http.StatusOK)
		// The client may be gone; there is nobody left to tell.
		_, _ = w.Write(body)
		*buf = body
	}
	// A buffer grown by an unusually large identity is let go rather than
	// kept for every later request.
	if cap(*buf) <= 16<<10 {
		bodyPool.Put(buf)
	}
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
	d := s.decide(r.Context(), review.Spec.Token, "", false)
	switch d.reason {
	case ReasonRateLimited:
		// kube-apiserver retries a 429 with backoff, where a refusal would
		// be cached and fail a valid token.
		writeRateLimited(w, d.rate)
		return
	case ReasonUnavailable:
		// An error, not a refusal, for the same reason.
		writeUnavailable(w)
		return
	}
	writeJSON(w, http.StatusOK, reviewResponse(&review, &d))
}

// reviewResponse is the TokenReview answering req. It carries no spec, so
// the token is never sent back.
func reviewResponse(req *authenticationv1.TokenReview, d *decision) *authenticationv1.TokenReview {
	resp := &authenticationv1.TokenReview{
		TypeMeta: metav1.TypeMeta{APIVersion: reviewAPIVersion(req.APIVersion), Kind: "TokenReview"},
	}
	if d.reason != "" {
		resp.Status.Error = d.reason
		return resp
	}
	id := &d.id
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
		// Tokens declare no audience, so they are valid for whichever
		// audiences the API server asks about.
		Audiences: req.Spec.Audiences,
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
func writeRateLimited(w http.ResponseWriter, info RateInfo) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", strconv.FormatInt(max(ceilSeconds(info.RetryAfter), 1), 10))
	h.Set("RateLimit-Limit", strconv.Itoa(info.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(info.Remaining))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(info.Reset), 10))
	writeReason(w, http.StatusTooManyRequests, ReasonRateLimited)
}

func writeUnavailable(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", "1")
	writeReason(w, http.StatusServiceUnavailable, ReasonUnavailable)
}

func ceilSeconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}

// writeReason answers status with the JSON body {"reason": reason}.
func writeReason(w http.ResponseWriter, status int, reason string) {
	body := make([]byte, 0, 32+len(reason))
	body = append(body, `{"reason":`...)
	body = appendJSONString(body, reason)
	body = append(body, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The client may be gone; there is nobody left to tell.
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The client may be gone; there is nobody left to tell.
	_ = json.NewEncoder(w).Encode(v)
}
