package verifyclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// contextKey is the type of the key the Identity is stored under; being
// unexported, no other package can collide with it.
type contextKey struct{}

// FromContext returns the Identity Middleware stored in ctx.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(contextKey{}).(*Identity)
	return id, ok && id != nil
}

// NewContext returns a copy of ctx carrying id, as Middleware does; tests
// of handlers behind the Middleware use it to fake a verified request.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// Middleware verifies every request's token with c before next sees it, on
// behalf of the request's client (see Client.ClientAddr and VerifyFrom), so
// that Tokenwarden charges a refused token to that client and not to the
// service. List the service's addresses in Tokenwarden's
// --verify-trusted-proxies, or the forwarded address is ignored.
//
// The token is taken from the Authorization header with the scheme Bearer,
// accessToken or apiToken (any case), or else from a Token header holding
// the bare value. Then:
//
//   - verified: next runs with the Identity in the request's context (see
//     FromContext);
//   - refused: the answer is 401 with a WWW-Authenticate challenge,
//     X-Tokenwarden-Reason and a JSON {"reason": ...} body, as Tokenwarden's
//     own answer; a request without a token is refused as Missing;
//   - rate limited: the answer is 429 with Retry-After, same headers and
//     body but no challenge;
//   - the verifier could not be asked: the answer is 503, so that an outage
//     fails closed and clients retry instead of discarding their token.
//
// next never runs unless the token verified. The token and the error
// details are not written to the response.
func Middleware(c *Client, next http.Handler) http.Handler {
	if c == nil || next == nil {
		panic("verifyclient: Middleware needs a Client and a handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := c.VerifyFrom(r.Context(), tokenFrom(r), c.clientAddr(r))
		if err != nil {
			var refused *RefusedError
			if errors.As(err, &refused) {
				writeRefusal(w, refused)
			} else {
				writeReason(w, http.StatusServiceUnavailable, "Unavailable")
			}
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// clientAddr is the end client of r: Client.ClientAddr's answer, or r's
// peer.
func (c *Client) clientAddr(r *http.Request) netip.Addr {
	if c.ClientAddr != nil {
		return c.ClientAddr(r)
	}
	return PeerAddr(r)
}

// PeerAddr is the address r came from, its RemoteAddr without the port;
// the zero Addr if RemoteAddr is no address (a Unix socket, say).
func PeerAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr()
	}
	a, _ := netip.ParseAddr(r.RemoteAddr)
	return a
}

// tokenSchemes are the Authorization schemes that carry a Tokenwarden
// token, lower case.
var tokenSchemes = map[string]bool{"bearer": true, "accesstoken": true, "apitoken": true}

// tokenFrom returns the request's token, or "" if it has none.
func tokenFrom(r *http.Request) string {
	scheme, value, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if tokenSchemes[strings.ToLower(scheme)] {
		if v := strings.TrimSpace(value); v != "" {
			return v
		}
	}
	return strings.TrimSpace(r.Header.Get("Token"))
}

func writeRefusal(w http.ResponseWriter, refused *RefusedError) {
	if refused.Reason == ReasonRateLimited {
		// Retry-After is whole seconds; rounding up keeps clients from
		// coming back before the server is ready for them.
		secs := max(1, int64((refused.RetryAfter+time.Second-1)/time.Second))
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		writeReason(w, http.StatusTooManyRequests, refused.Reason)
		return
	}
	w.Header().Set("WWW-Authenticate",
		`Bearer realm="tokenwarden", error="invalid_token", error_description="`+refused.Reason+`"`)
	writeReason(w, http.StatusUnauthorized, refused.Reason)
}

// writeReason answers status with reason in X-Tokenwarden-Reason and in a
// JSON body.
func writeReason(w http.ResponseWriter, status int, reason string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// A refusal is about this request's token at this moment; no cache
	// should keep it.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Tokenwarden-Reason", reason)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Reason string `json:"reason"`
	}{reason})
}
