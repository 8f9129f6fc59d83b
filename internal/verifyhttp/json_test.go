package verifyhttp

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/tokenwarden/tokenwarden/internal/verify"
)

// encodeIdentity is how Identity was written before appendIdentityJSON,
// and what it must match byte for byte.
func encodeIdentity(id *verify.Identity) ([]byte, error) {
	var buf bytes.Buffer
	err := json.NewEncoder(&buf).Encode(id)
	return buf.Bytes(), err
}

func TestAppendIdentityJSON(t *testing.T) {
	expires := t0.Add(time.Hour)
	withNanos := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("CET", 3600))
	tooLate := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	full := verify.Identity{
		User: "tokenwarden:payments:ci:uid-ci", Name: "ci", Namespace: "payments", UID: "uid-ci", Type: "Team",
		Teams: []string{"payments", "orders"}, Scopes: []string{"read:orders", "write:orders"},
		ExpiresAt: &expires, Creator: "jane@example.com",
	}
	tests := []struct {
		name    string
		id      verify.Identity
		wantErr bool
	}{
		{name: "a team token", id: full},
		{name: "zero", id: verify.Identity{}},
		{name: "empty lists", id: verify.Identity{User: "u", Teams: []string{}, Scopes: []string{}}},
		{name: "an expiry with nanoseconds and a zone", id: verify.Identity{ExpiresAt: &withNanos}},
		{name: "quotes and backslashes", id: verify.Identity{Creator: `ja"ne\\`, Teams: []string{`a"b`}}},
		{name: "HTML is escaped as encoding/json escapes it", id: verify.Identity{Creator: "<script>&</script>"}},
		{name: "control characters", id: verify.Identity{Creator: "a\nb\tc\x00d\x7f"}},
		{name: "non-ASCII", id: verify.Identity{Creator: "jürgen@example.com", Scopes: []string{"日本"}}},
		{name: "line and paragraph separators", id: verify.Identity{Creator: "a\u2028b\u2029c"}},
		{name: "invalid UTF-8", id: verify.Identity{Creator: "a\xffb", Teams: []string{"\xc3"}}},
		{name: "an expiry RFC 3339 cannot write", id: verify.Identity{ExpiresAt: &tooLate}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			want, wantErr := encodeIdentity(&tt.id)
			got, err := appendIdentityJSON([]byte("prefix"), &tt.id)
			if tt.wantErr {
				g.Expect(err).To(HaveOccurred())
				g.Expect(wantErr).To(HaveOccurred(), "encoding/json refuses it too")
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(wantErr).NotTo(HaveOccurred())
			g.Expect(string(got)).To(Equal("prefix"+string(want)), "byte for byte what encoding/json writes")

			var decoded verify.Identity
			g.Expect(json.Unmarshal(got[len("prefix"):], &decoded)).To(Succeed())
			var wantDecoded verify.Identity
			g.Expect(json.Unmarshal(want, &wantDecoded)).To(Succeed())
			g.Expect(decoded).To(Equal(wantDecoded))
		})
	}
}

func FuzzAppendIdentityJSON(f *testing.F) {
	f.Add("tokenwarden:ns:a:uid-a", "jane@example.com", "payments", "read:x", int64(0))
	f.Add("a\"b", "<&>", "\xff", "\u2028", int64(1<<62))
	f.Fuzz(func(t *testing.T, user, creator, team, scope string, unixNano int64) {
		at := time.Unix(0, unixNano).UTC()
		id := verify.Identity{User: user, Creator: creator, Teams: []string{team, scope}, Scopes: []string{scope}, ExpiresAt: &at}
		want, wantErr := encodeIdentity(&id)
		got, err := appendIdentityJSON(nil, &id)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("error %v, encoding/json's %v", err, wantErr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("got %q, encoding/json writes %q", got, want)
		}
	})
}
