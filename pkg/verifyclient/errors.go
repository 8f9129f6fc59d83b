package verifyclient

import (
	"errors"
	"fmt"
	"time"
)

// The reasons Tokenwarden gives for refusing a token. They are the values of
// RefusedError.Reason, so a caller can switch on them.
const (
	// ReasonMissing means the request carried no token.
	ReasonMissing = "Missing"
	// ReasonMalformed means the value is not a Tokenwarden token.
	ReasonMalformed = "Malformed"
	// ReasonUnknown means no ApiToken has this value.
	ReasonUnknown = "Unknown"
	// ReasonExpired means the token's expiresAt has passed.
	ReasonExpired = "Expired"
	// ReasonDisabled means the token's spec.disabled is set.
	ReasonDisabled = "Disabled"
	// ReasonInvalidated means the token's creator lost the standing the
	// token needs.
	ReasonInvalidated = "Invalidated"
	// ReasonNotActive means the ApiToken exists but is not active, for
	// example Pending or Failed.
	ReasonNotActive = "NotActive"
	// ReasonRateLimited means the verifier answered 429; RetryAfter says
	// when to ask again.
	ReasonRateLimited = "RateLimited"
	// ReasonUnavailable means Tokenwarden could not decide (its Team cache
	// or admin check failed) and answered 503; it says nothing about the
	// token, and Verify returns it as an error, not a refusal.
	ReasonUnavailable = "Unavailable"
	// ReasonUnauthorized stands in when a 401 answer named no reason the
	// client could use, such as one from a proxy in front of Tokenwarden.
	ReasonUnauthorized = "Unauthorized"
)

// ErrRateLimited matches, with errors.Is, the RefusedError of a 429 answer.
var ErrRateLimited = errors.New("verifyclient: rate limited")

// RefusedError is Tokenwarden's answer that the token does not verify (401)
// or that it will not look now (429). Other failures (network, TLS, 5xx,
// an unreadable answer) are plain errors, so callers can tell "this token is
// bad" from "we could not find out".
type RefusedError struct {
	// Reason is one of the Reason constants, or another word the server
	// sent; it never contains the token.
	Reason string
	// RetryAfter is how long the server asked to wait (429 only).
	RetryAfter time.Duration
}

// Error says the reason and never the token, so it is safe to log.
func (e *RefusedError) Error() string {
	if e.Reason == ReasonRateLimited {
		if e.RetryAfter > 0 {
			return fmt.Sprintf("verifyclient: rate limited, retry after %s", e.RetryAfter)
		}
		return "verifyclient: rate limited"
	}
	return "verifyclient: token refused: " + e.Reason
}

// Is makes errors.Is(err, ErrRateLimited) true for a rate-limit refusal.
func (e *RefusedError) Is(target error) bool {
	return target == ErrRateLimited && e.Reason == ReasonRateLimited
}

// IsRefused reports whether err is (or wraps) a RefusedError, and its
// reason.
func IsRefused(err error) (reason string, ok bool) {
	var refused *RefusedError
	if errors.As(err, &refused) {
		return refused.Reason, true
	}
	return "", false
}
