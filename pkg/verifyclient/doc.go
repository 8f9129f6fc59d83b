// Package verifyclient lets a service ask Tokenwarden who an API token
// belongs to. It uses the standard library only, so any Go service can
// import it without taking on the operator's dependencies.
//
// A Client calls GET <URL>/verify with the token as a bearer token and
// returns the Identity on 200, a *RefusedError on 401 (the reason, such as
// Expired or Disabled) or 429 (rate limited, with RetryAfter), and a plain
// error when it could not get an answer. Middleware wraps an http.Handler
// with that check:
//
//	ca, err := os.ReadFile("/etc/tokenwarden/ca.crt") // bin/dev/ca.crt in local mode
//	if err != nil {
//		log.Fatal(err)
//	}
//	verifier := verifyclient.New("https://tokenwarden-verify.tokenwarden-system.svc",
//		verifyclient.WithCA(ca))
//	http.Handle("/orders", verifyclient.Middleware(verifier, http.HandlerFunc(
//		func(w http.ResponseWriter, r *http.Request) {
//			id, _ := verifyclient.FromContext(r.Context())
//			if !slices.Contains(id.Scopes, "orders:read") {
//				http.Error(w, "forbidden", http.StatusForbidden)
//				return
//			}
//			fmt.Fprintf(w, "hello %s\n", id.User)
//		})))
//
// # Caching and revocation
//
// A Client reuses a positive answer for CacheTTL (DefaultCacheTTL, 2s, unless
// set), and never past the identity's ExpiresAt. Refusals and errors are
// never cached. So a token that is disabled, invalidated, deleted or
// recreated stops working at a service within CacheTTL of Tokenwarden
// refusing it; set CacheTTL negative to ask on every request. Answers are
// cached under the SHA-256 of the token, never the token itself, and at
// most MaxEntries of them (DefaultMaxEntries unless set), least recently
// used first out. Concurrent lookups of the same uncached token share one
// request.
//
// # Rate limits
//
// Tokenwarden limits refused attempts per client address, and every client
// of a service reaches it from the service's address. Middleware therefore
// asks on behalf of the request's client (VerifyFrom): it sends the
// client's address, the request's peer unless Client.ClientAddr says
// otherwise, as X-Real-IP and X-Forwarded-For. Tokenwarden believes those
// only from the addresses in its --verify-trusted-proxies, so list the
// service there; otherwise one client's bad tokens leave every client's
// typos answered 429. A valid token is never refused for other clients'
// failures either way.
//
// # Secrets
//
// The token is only ever sent in the Authorization header. No error from
// this package and no response of Middleware contains it, so errors are
// safe to log.
package verifyclient
