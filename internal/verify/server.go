package verify

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
// Both count a refused attempt against the client address and a verified
// one against the token, and record last use.
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
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tokenreview", s.serveTokenReview)
	mux.HandleFunc("POST /apis/authentication.k8s.io/v1/tokenreviews", s.serveTokenReview)
	mux.HandleFunc("GET /verify", s.serveVerify)
	return mux
}

// decision is the outcome of one request.
type decision struct {
	id Identity
	// reason is "" when verified.
	reason string
	// rate describes the limit that refused the request, if one did.
	rate RateInfo
}

// decide runs the flow shared by both endpoints: the client's failure
// budget first, so a client that spent it costs nothing more; then
// verification; then, for a verified token only, the token's request budget,
// so only digests found in the index ever get a limiter.
func (s *Server) decide(ctx context.Context, r *http.Request, value string) decision {
	start := time.Now()
	d := s.decideUntimed(ctx, clientAddr(r), value)
	durationSeconds.Observe(time.Since(start).Seconds())
	outcome := d.reason
	if outcome == "" {
		outcome = outcomeVerified
	}
	resultsTotal.WithLabelValues(outcome).Inc()
	return d
}

func (s *Server) decideUntimed(ctx context.Context, addr, value string) decision {
	if s.Limiter != nil {
		if info, ok := s.Limiter.CheckClient(addr); !ok {
			rateLimitedTotal.WithLabelValues(limitClient).Inc()
			return decision{reason: ReasonRateLimited, rate: info}
		}
	}
	id, digest, reason := s.Verifier.verify(ctx, value)
	if reason != "" {
		// An unavailable Team cache is not the client's fault.
		if s.Limiter != nil && reason != ReasonUnavailable {
			s.Limiter.ChargeFailure(addr)
		}
		return decision{reason: reason}
	}
	if s.Limiter != nil {
		if info, ok := s.Limiter.CheckToken(digest); !ok {
			rateLimitedTotal.WithLabelValues(limitToken).Inc()
			return decision{reason: ReasonRateLimited, rate: info}
		}
	}
	if s.LastUsed != nil {
		s.LastUsed.Record(types.NamespacedName{Namespace: id.Namespace, Name: id.Name}, s.Verifier.now())
	}
	return decision{id: id}
}

// clientAddr is the host of the connection's remote address. Forwarding
// headers are not trusted: any client can write them.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// reasonBody is the JSON body of every answer that is not an identity.
type reasonBody struct {
	Reason string `json:"reason"`
}

func (s *Server) serveVerify(w http.ResponseWriter, r *http.Request) {
	value, _ := ExtractToken(r, s.AllowQueryToken)
	d := s.decide(r.Context(), r, value)
	h := w.Header()
	// Answers depend on the token and on the instant: no cache may keep one.
	h.Set("Cache-Control", "no-store")
	switch d.reason {
	case "":
		id := &d.id
		h.Set("X-Tokenwarden-User", id.User)
		h.Set("X-Tokenwarden-Name", id.Name)
		h.Set("X-Tokenwarden-Namespace", id.Namespace)
		h.Set("X-Tokenwarden-Type", id.Type)
		h.Set("X-Tokenwarden-Teams", strings.Join(id.Teams, ","))
		h.Set("X-Tokenwarden-Scopes", strings.Join(id.Scopes, ","))
		if id.ExpiresAt != nil {
			h.Set("X-Tokenwarden-Expires-At", id.ExpiresAt.UTC().Format(time.RFC3339))
		}
		h.Set("X-Tokenwarden-Creator", id.Creator)
		writeJSON(w, http.StatusOK, id)
	case ReasonRateLimited:
		writeRateLimited(w, d.rate)
	case ReasonUnavailable:
		writeUnavailable(w)
	default:
		// RFC 6750 section 3.1: a request without credentials gets the bare
		// challenge, one with bad credentials says why.
		challenge := `Bearer realm="` + Realm + `"`
		if d.reason != ReasonMissing {
			challenge += `, error="invalid_token", error_description="` + d.reason + `"`
		}
		h.Set("WWW-Authenticate", challenge)
		h.Set("X-Tokenwarden-Reason", d.reason)
		writeJSON(w, http.StatusUnauthorized, reasonBody{Reason: d.reason})
	}
}

func (s *Server) serveTokenReview(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	var review authenticationv1.TokenReview
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxReviewBytes))
	if err := dec.Decode(&review); err != nil {
		// The decoder's error may quote the body, which holds the token.
		writeJSON(w, http.StatusBadRequest, reasonBody{Reason: "MalformedTokenReview"})
		return
	}
	d := s.decide(r.Context(), r, review.Spec.Token)
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
	h.Set("Retry-After", strconv.FormatInt(max(ceilSeconds(info.RetryAfter), 1), 10))
	h.Set("RateLimit-Limit", strconv.Itoa(info.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(info.Remaining))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(info.Reset), 10))
	writeJSON(w, http.StatusTooManyRequests, reasonBody{Reason: ReasonRateLimited})
}

func writeUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusServiceUnavailable, reasonBody{Reason: ReasonUnavailable})
}

func ceilSeconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The client may be gone; there is nobody left to tell.
	_ = json.NewEncoder(w).Encode(v)
}
