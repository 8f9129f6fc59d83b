package verifyhttp

import (
	"encoding/json"

	"github.com/tokenwarden/tokenwarden/internal/verify"
)

// appendIdentityJSON appends id to b exactly as json.NewEncoder(w).Encode(id)
// writes it, final newline included, without reflection. It fails only
// where Encode fails: for an expiry RFC 3339 cannot write.
func appendIdentityJSON(b []byte, id *verify.Identity) ([]byte, error) {
	b = append(b, `{"user":`...)
	b = appendJSONString(b, id.User)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, id.Name)
	b = append(b, `,"namespace":`...)
	b = appendJSONString(b, id.Namespace)
	b = append(b, `,"uid":`...)
	b = appendJSONString(b, id.UID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, id.Type)
	b = append(b, `,"teams":`...)
	b = appendJSONStrings(b, id.Teams)
	b = append(b, `,"scopes":`...)
	b = appendJSONStrings(b, id.Scopes)
	if id.ExpiresAt != nil {
		// time.Time's MarshalJSON is this text between quotes.
		b = append(b, `,"expiresAt":"`...)
		var err error
		if b, err = id.ExpiresAt.AppendText(b); err != nil {
			return nil, err
		}
		b = append(b, '"')
	}
	b = append(b, `,"creator":`...)
	b = appendJSONString(b, id.Creator)
	return append(b, "}\n"...), nil
}

// appendJSONStrings appends s as a JSON array, or null when nil, as
// encoding/json does.
func appendJSONStrings(b []byte, s []string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, v)
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it. Names, teams, scopes and most user names are printable ASCII
// that needs no escaping and are copied as they are; anything else is left
// to encoding/json, which knows every rule: control characters, invalid
// UTF-8, U+2028 and U+2029, and the HTML-escaping of <, > and &.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			// Marshalling a string cannot fail.
			quoted, _ := json.Marshal(s)
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
