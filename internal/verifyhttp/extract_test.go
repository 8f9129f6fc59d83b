package verifyhttp

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode"

	. "github.com/onsi/gomega"
)

func TestExtractToken(t *testing.T) {
	const tok = "twt_abc123"
	tests := []struct {
		name       string
		header     http.Header
		query      string
		allowQuery bool
		want       string
		wantOK     bool
	}{
		{name: "nothing", header: http.Header{}},
		{name: "bearer", header: http.Header{"Authorization": {"Bearer " + tok}}, want: tok, wantOK: true},
		{name: "bearer, any case", header: http.Header{"Authorization": {"bEaReR " + tok}}, want: tok, wantOK: true},
		{name: "accessToken", header: http.Header{"Authorization": {"accessToken " + tok}}, want: tok, wantOK: true},
		{name: "accessToken, any case", header: http.Header{"Authorization": {"ACCESSTOKEN " + tok}}, want: tok, wantOK: true},
		{name: "apiToken", header: http.Header{"Authorization": {"apiToken " + tok}}, want: tok, wantOK: true},
		{name: "apiToken, any case", header: http.Header{"Authorization": {"apitoken " + tok}}, want: tok, wantOK: true},
		{name: "spaces around are ignored", header: http.Header{"Authorization": {"  Bearer \t " + tok + " "}}, want: tok, wantOK: true},
		{name: "scheme without credential", header: http.Header{"Authorization": {"Bearer"}}},
		{name: "scheme with an empty credential", header: http.Header{"Authorization": {"Bearer "}}},
		{name: "two credentials", header: http.Header{"Authorization": {"Bearer " + tok + " " + tok}}},
		{name: "scheme glued to the credential", header: http.Header{"Authorization": {"Bearer" + tok}}},
		{name: "unknown scheme alone", header: http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}},
		{name: "bare value without scheme", header: http.Header{"Authorization": {tok}}},
		{name: "control character in the credential", header: http.Header{"Authorization": {"Bearer twt_\x00abc"}}},
		{name: "non-ASCII credential", header: http.Header{"Authorization": {"Bearer twt_äbc"}}},
		{name: "Unicode space inside", header: http.Header{"Authorization": {"Bearer twt\u00a0abc"}}},
		{name: "two Authorization headers", header: http.Header{"Authorization": {"Bearer a", "Bearer b"}}},
		{name: "Token header", header: http.Header{"Token": {tok}}, want: tok, wantOK: true},
		{name: "Token header with spaces around", header: http.Header{"Token": {"  " + tok + "\t"}}, want: tok, wantOK: true},
		{name: "Token header with a space inside", header: http.Header{"Token": {"twt_a bc"}}},
		{name: "empty Token header", header: http.Header{"Token": {""}}},
		{name: "two Token headers", header: http.Header{"Token": {"a", "b"}}},
		{name: "Authorization wins over Token", header: http.Header{"Authorization": {"Bearer first"}, "Token": {"second"}}, want: "first", wantOK: true},
		{name: "a broken bearer does not fall back to Token", header: http.Header{"Authorization": {"Bearer a b"}, "Token": {tok}}},
		{name: "another scheme falls back to Token", header: http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}, "Token": {tok}}, want: tok, wantOK: true},
		{name: "query, not allowed", header: http.Header{}, query: "token=" + tok},
		{name: "query, allowed", header: http.Header{}, query: "token=" + tok, allowQuery: true, want: tok, wantOK: true},
		{name: "query, allowed, headers win", header: http.Header{"Token": {"header"}}, query: "token=" + tok, allowQuery: true, want: "header", wantOK: true},
		{name: "query, a decoded space", header: http.Header{}, query: "token=twt+abc", allowQuery: true},
		{name: "query, an encoded newline", header: http.Header{}, query: "token=twt%0Aabc", allowQuery: true},
		{name: "query, empty", header: http.Header{}, query: "token=", allowQuery: true},
		{name: "query, twice", header: http.Header{}, query: "token=a&token=b", allowQuery: true},
		{name: "query, other parameter", header: http.Header{}, query: "access_token=" + tok, allowQuery: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r := &http.Request{Header: tt.header, URL: &url.URL{Path: "/verify", RawQuery: tt.query}}
			got, ok := ExtractToken(r, tt.allowQuery)
			g.Expect(ok).To(Equal(tt.wantOK))
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestExtractTokenFromAParsedRequest(t *testing.T) {
	g := NewWithT(t)
	// Header names are case-insensitive on the wire; net/http canonicalizes
	// them when parsing, which this goes through.
	r, err := http.NewRequest(http.MethodGet, "/verify", nil)
	g.Expect(err).NotTo(HaveOccurred())
	r.Header.Set("authorization", "apitoken twt_x")
	got, ok := ExtractToken(r, false)
	g.Expect(ok).To(BeTrue())
	g.Expect(got).To(Equal("twt_x"))

	r.Header = http.Header{}
	r.Header.Set("token", "twt_y")
	got, ok = ExtractToken(r, false)
	g.Expect(ok).To(BeTrue())
	g.Expect(got).To(Equal("twt_y"))
}

func TestAuthFields(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"spaces only", " \t\n\v\f\r "},
		{"one field", "Bearer"},
		{"two fields", "Bearer abc"},
		{"three fields", "Bearer abc def"},
		{"four fields", "a b c d"},
		{"every ASCII space separates", "a\tb\nc"},
		{"surrounding spaces", "  a \r\n b  "},
		{"a control character that is no space", "a\x00b c"},
		{"a Unicode space separates", "a\u00a0b"},
		{"a Unicode space in front", "\u2003Bearer x"},
		{"non-ASCII without spaces", "Bearer äbc"},
		{"NEL", "a\u0085b c d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			first, second, n := authFields(tt.in)
			g.Expect([]any{first, second, n}).To(Equal(fieldsReference(tt.in)))
		})
	}
}

// fieldsReference is authFields written with strings.Fields.
func fieldsReference(s string) []any {
	f := strings.Fields(s)
	first, second := "", ""
	if len(f) > 0 {
		first = f[0]
	}
	if len(f) > 1 {
		second = f[1]
	}
	return []any{first, second, min(len(f), 3)}
}

func FuzzAuthFields(f *testing.F) {
	f.Add("Bearer twt_abc")
	f.Add("a\u00a0b c\td")
	f.Fuzz(func(t *testing.T, s string) {
		first, second, n := authFields(s)
		want := fieldsReference(s)
		if got := []any{first, second, n}; !reflect.DeepEqual(got, want) {
			t.Fatalf("authFields(%q) = %v, strings.Fields gives %v", s, got, want)
		}
	})
}

func FuzzExtractToken(f *testing.F) {
	f.Add("Bearer twt_abc", "", "", false)
	f.Add("apiToken  twt_abc ", "", "", true)
	f.Add("", "twt_abc", "", false)
	f.Add("Basic x", " twt_abc\t", "token=a", true)
	f.Add("", "", "token=twt%20abc", true)
	f.Add("Bearer \u00a0x", "\x00", "token=%C2%A0", true)
	f.Fuzz(func(t *testing.T, auth, tokenHeader, query string, allowQuery bool) {
		h := http.Header{}
		if auth != "" {
			h["Authorization"] = []string{auth}
		}
		if tokenHeader != "" {
			h["Token"] = []string{tokenHeader}
		}
		r := &http.Request{Header: h, URL: &url.URL{RawQuery: query}}
		got, ok := ExtractToken(r, allowQuery)
		if !ok {
			if got != "" {
				t.Fatalf("not extracted, yet returned %q", got)
			}
			return
		}
		if got == "" {
			t.Fatal("extracted an empty token")
		}
		if strings.ContainsFunc(got, unicode.IsSpace) || strings.ContainsFunc(got, unicode.IsControl) {
			t.Fatalf("extracted token %q holds whitespace or control characters", got)
		}
		if !allowQuery && !strings.Contains(auth, got) && !strings.Contains(tokenHeader, got) {
			t.Fatalf("extracted %q from the query although it is not allowed", got)
		}
	})
}
