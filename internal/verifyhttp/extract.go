package verifyhttp

import (
	"net/http"
	"strings"
	"unicode/utf8"
)

// authSchemes are the Authorization schemes that carry a Tokenwarden
// token, lowercased: the standard one and two that API clients commonly
// hard-code.
var authSchemes = []string{"bearer", "accesstoken", "apitoken"}

// ExtractToken returns the token a request carries, looked for in order:
//   - an Authorization header "Bearer <t>", "accessToken <t>" or
//     "apiToken <t>", the scheme in any case, followed by exactly one
//     credential;
//   - else a "Token: <t>" header;
//   - else, only when allowQuery is set, the query parameter "token", off by
//     default because query strings end up in access logs.
//
// An Authorization header with another scheme, such as a proxy's Basic
// credentials, is passed over; one with a token scheme but no single clean
// credential decides: nothing is extracted, rather than quietly taking a
// token from somewhere else. A source given more than once is ambiguous and
// yields nothing too, so a proxy that checks one copy and the verifier
// another cannot disagree. An extracted token is never empty and holds only
// printable ASCII without spaces.
func ExtractToken(r *http.Request, allowQuery bool) (string, bool) {
	// The header map is indexed by canonical names directly, as
	// Header.Values would after canonicalizing the name again.
	if vals := r.Header["Authorization"]; len(vals) > 0 {
		if len(vals) > 1 {
			return "", false
		}
		scheme, credential, n := authFields(vals[0])
		if n > 0 && isTokenScheme(scheme) {
			if n != 2 || !cleanCredential(credential) {
				return "", false
			}
			return credential, true
		}
	}
	if vals := r.Header["Token"]; len(vals) > 0 {
		return single(vals, true)
	}
	if allowQuery && r.URL != nil {
		if vals := r.URL.Query()["token"]; len(vals) > 0 {
			return single(vals, false)
		}
	}
	return "", false
}

// single returns the only value of vals if it is a clean credential. Header
// values may carry surrounding spaces, which HTTP ignores; query values may
// not, because a decoded space there is part of the value.
func single(vals []string, trim bool) (string, bool) {
	if len(vals) != 1 {
		return "", false
	}
	v := vals[0]
	if trim {
		v = strings.Trim(v, " \t")
	}
	if !cleanCredential(v) {
		return "", false
	}
	return v, true
}

// authFields returns the first two fields of an Authorization value, split
// as strings.Fields splits, and how many fields it has, counting no further
// than 3. It spares the slice strings.Fields allocates for the usual,
// ASCII-only value, and leaves any other to strings.Fields, which also
// splits on Unicode spaces.
func authFields(s string) (first, second string, n int) {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			f := strings.Fields(s)
			switch len(f) {
			case 0:
				return "", "", 0
			case 1:
				return f[0], "", 1
			}
			return f[0], f[1], min(len(f), 3)
		}
	}
	i := 0
	for n < 3 {
		for i < len(s) && asciiSpace(s[i]) {
			i++
		}
		if i == len(s) {
			break
		}
		j := i
		for j < len(s) && !asciiSpace(s[j]) {
			j++
		}
		switch n {
		case 0:
			first = s[i:j]
		case 1:
			second = s[i:j]
		}
		n++
		i = j
	}
	return first, second, n
}

// asciiSpace reports whether c is one of the ASCII characters
// strings.Fields splits on.
func asciiSpace(c byte) bool {
	switch c {
	case '\t', '\n', '\v', '\f', '\r', ' ':
		return true
	}
	return false
}

func isTokenScheme(s string) bool {
	for _, scheme := range authSchemes {
		if strings.EqualFold(s, scheme) {
			return true
		}
	}
	return false
}

// cleanCredential reports whether s is non-empty printable ASCII without
// spaces. Every token value is; anything else is refused here so no caller
// has to think about control characters, Unicode spaces or header
// injection.
func cleanCredential(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
