package verify

import (
	"strings"
	"testing"
	"time"
	"unsafe"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

func TestIndex(t *testing.T) {
	v1 := b.NewValue(t, v1alpha1.TeamTokenType)
	v2 := b.NewValue(t, v1alpha1.TeamTokenType)
	v3 := b.NewValue(t, v1alpha1.TeamTokenType)
	other := b.NewValue(t, v1alpha1.WildcardTokenType)
	expires := t0.Add(time.Hour)
	overlapEnd := t0.Add(10 * time.Minute)
	teamOpts := []b.ApiTokenOption{b.TeamToken("payments", "orders"), b.WithScopes("read:orders")}
	creator := &v1alpha1.UserIdentity{Username: "jane", Groups: []string{"devs"}}

	current := func(exp *time.Time) Entry {
		return Entry{
			Key:             key("ns", "tok"),
			UID:             "uid-tok",
			Type:            v1alpha1.TeamTokenType,
			Teams:           []string{"payments", "orders"},
			Scopes:          []string{"read:orders"},
			Creator:         creator,
			Phase:           v1alpha1.PhaseActive,
			ExpiresAt:       exp,
			StatusExpiresAt: exp,
		}
	}
	previous := func() Entry {
		e := current(&expires)
		e.ExpiresAt = &overlapEnd
		e.StatusExpiresAt = &overlapEnd
		e.Previous = true
		return e
	}
	// with changes an Entry.
	with := func(e Entry, change func(*Entry)) *Entry {
		change(&e)
		return &e
	}
	later := t0.Add(2 * time.Hour)
	sooner := t0.Add(5 * time.Minute)
	byJane := b.WithCreator("jane", "devs")

	tests := []struct {
		name    string
		upserts []*v1alpha1.ApiToken
		deletes []types.NamespacedName
		// want maps values to their entry; nil means not found.
		want    map[string]*Entry
		wantLen int
	}{
		{
			name:    "current value",
			upserts: []*v1alpha1.ApiToken{b.Issued("tok", "ns", v1, teamOpts, byJane, b.WithExpiry(expires))},
			want:    map[string]*Entry{v1: ptr(current(&expires)), v2: nil},
			wantLen: 1,
		},
		{
			name:    "no expiry means nil",
			upserts: []*v1alpha1.ApiToken{b.Issued("tok", "ns", v1, teamOpts, byJane)},
			want:    map[string]*Entry{v1: ptr(current(nil))},
			wantLen: 1,
		},
		{
			name:    "previous value in its overlap",
			upserts: []*v1alpha1.ApiToken{b.Issued("tok", "ns", v2, teamOpts, byJane, b.WithExpiry(expires), b.WithPrevious(v1, overlapEnd))},
			want:    map[string]*Entry{v2: ptr(current(&expires)), v1: ptr(previous())},
			wantLen: 2,
		},
		{
			name: "upsert replaces every old digest",
			upserts: []*v1alpha1.ApiToken{
				b.Issued("tok", "ns", v2, teamOpts, byJane, b.WithExpiry(expires), b.WithPrevious(v1, overlapEnd)),
				b.Issued("tok", "ns", v3, teamOpts, byJane, b.WithExpiry(expires)),
			},
			want:    map[string]*Entry{v1: nil, v2: nil, v3: ptr(current(&expires))},
			wantLen: 1,
		},
		{
			name: "a token without tokenHash has no entries",
			upserts: []*v1alpha1.ApiToken{
				b.Issued("tok", "ns", v1, teamOpts, byJane),
				b.Issued("tok", "ns", "", teamOpts, byJane),
			},
			want:    map[string]*Entry{v1: nil},
			wantLen: 0,
		},
		{
			name: "a token being deleted has no entries",
			upserts: []*v1alpha1.ApiToken{
				b.Issued("tok", "ns", v1, teamOpts, byJane),
				func() *v1alpha1.ApiToken {
					tok := b.Issued("tok", "ns", v1, teamOpts, byJane)
					now := metav1.NewTime(t0)
					tok.DeletionTimestamp = &now
					return tok
				}(),
			},
			want:    map[string]*Entry{v1: nil},
			wantLen: 0,
		},
		{
			name: "delete drops current and previous, and only them",
			upserts: []*v1alpha1.ApiToken{
				b.Issued("tok", "ns", v2, teamOpts, byJane, b.WithPrevious(v1, overlapEnd)),
				b.Issued("other", "ns", other, nil, byJane),
			},
			deletes: []types.NamespacedName{key("ns", "tok"), key("ns", "never-seen")},
			want:    map[string]*Entry{v1: nil, v2: nil},
			wantLen: 1,
		},
		{
			name: "tokens of the same name in other namespaces are apart",
			upserts: []*v1alpha1.ApiToken{
				b.Issued("tok", "ns", v1, teamOpts, byJane),
				b.Issued("tok", "elsewhere", v2, teamOpts, byJane),
			},
			deletes: []types.NamespacedName{key("elsewhere", "tok")},
			want:    map[string]*Entry{v1: ptr(current(nil)), v2: nil},
			wantLen: 1,
		},
		{
			name: "a digest two tokens claim verifies as neither",
			upserts: []*v1alpha1.ApiToken{
				b.Issued("tok", "ns", v1, teamOpts, byJane),
				b.Issued("copy", "ns", v1, teamOpts, byJane),
			},
			want:    map[string]*Entry{v1: nil},
			wantLen: 0,
		},
		{
			name: "the other claimant verifies again once one is deleted",
			upserts: []*v1alpha1.ApiToken{
				b.Issued("tok", "ns", v1, teamOpts, byJane),
				b.Issued("copy", "ns", v1, teamOpts, byJane),
			},
			deletes: []types.NamespacedName{key("ns", "copy")},
			want:    map[string]*Entry{v1: ptr(current(nil))},
			wantLen: 1,
		},
		{
			name: "the creator is the annotation's, never status.creator's",
			upserts: []*v1alpha1.ApiToken{b.Issued("tok", "ns", v1, teamOpts,
				b.WithCreator("jane", "devs"), b.WithStatusCreator("boss", "system:masters"))},
			want:    map[string]*Entry{v1: ptr(current(nil))},
			wantLen: 1,
		},
		{
			name: "status.creator does not stand in for a missing annotation",
			upserts: []*v1alpha1.ApiToken{b.Issued("tok", "ns", v1, teamOpts,
				b.WithoutCreator(), b.WithStatusCreator("jane", "devs"))},
			want: map[string]*Entry{v1: func() *Entry {
				e := current(nil)
				e.Creator = nil
				return &e
			}()},
			wantLen: 1,
		},
		{
			name:    "spec.disabled is recorded before the phase says so",
			upserts: []*v1alpha1.ApiToken{b.Issued("tok", "ns", v1, teamOpts, byJane, b.WithDisabled(true))},
			want:    map[string]*Entry{v1: with(current(nil), func(e *Entry) { e.Disabled = true })},
			wantLen: 1,
		},
		{
			name: "an expiry moved later in the spec wins over the status's",
			upserts: []*v1alpha1.ApiToken{b.Issued("tok", "ns", v1, teamOpts, byJane,
				b.WithExpiry(later), b.WithStatusExpiry(expires))},
			want:    map[string]*Entry{v1: with(current(&later), func(e *Entry) { e.StatusExpiresAt = &expires })},
			wantLen: 1,
		},
		{
			name:    "an expiry removed from the spec is no expiry, whatever the status says",
			upserts: []*v1alpha1.ApiToken{b.Issued("tok", "ns", v1, teamOpts, byJane, b.WithStatusExpiry(expires))},
			want:    map[string]*Entry{v1: with(current(nil), func(e *Entry) { e.StatusExpiresAt = &expires })},
			wantLen: 1,
		},
		{
			name: "a lifetime counts from status.issuedAt",
			upserts: []*v1alpha1.ApiToken{b.Issued("tok", "ns", v1, teamOpts, byJane,
				b.WithIssuedLifetime("1h", t0))},
			want:    map[string]*Entry{v1: with(current(&expires), func(e *Entry) { e.IssuedAt = t0 })},
			wantLen: 1,
		},
		{
			name: "a lifetime changed in the spec wins over the status's expiry",
			upserts: []*v1alpha1.ApiToken{b.Issued("tok", "ns", v1, teamOpts, byJane,
				b.WithIssuedLifetime("1d", t0), b.WithStatusExpiry(expires))},
			want: map[string]*Entry{v1: with(current(ptr(t0.Add(24*time.Hour))), func(e *Entry) {
				e.IssuedAt, e.StatusExpiresAt = t0, &expires
			})},
			wantLen: 1,
		},
		{
			name: "a lifetime without an issuance leaves the expiry to the status",
			upserts: []*v1alpha1.ApiToken{b.Issued("tok", "ns", v1, teamOpts, byJane,
				b.WithIssuedLifetime("1d", t0), b.WithStatusExpiry(expires), func(t *v1alpha1.ApiToken) { t.Status.IssuedAt = nil })},
			want:    map[string]*Entry{v1: ptr(current(&expires))},
			wantLen: 1,
		},
		{
			name: "a previous value ends with the token when the spec ends it sooner",
			upserts: []*v1alpha1.ApiToken{b.Issued("tok", "ns", v2, teamOpts, byJane,
				b.WithExpiry(sooner), b.WithStatusExpiry(expires), b.WithPrevious(v1, overlapEnd))},
			want: map[string]*Entry{
				v2: with(current(&sooner), func(e *Entry) { e.StatusExpiresAt = &expires }),
				v1: with(previous(), func(e *Entry) { e.ExpiresAt = &sooner }),
			},
			wantLen: 2,
		},
		{
			name:    "a previous digest equal to the current one keeps the current entry",
			upserts: []*v1alpha1.ApiToken{b.Issued("tok", "ns", v1, teamOpts, byJane, b.WithPrevious(v1, overlapEnd))},
			want:    map[string]*Entry{v1: ptr(current(nil))},
			wantLen: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ix := NewIndex()
			for _, tok := range tt.upserts {
				ix.Upsert(tok)
			}
			for _, k := range tt.deletes {
				ix.Delete(k)
			}
			for value, want := range tt.want {
				got, ok := lookupDigest(ix, token.Hash(value))
				if want == nil {
					g.Expect(ok).To(BeFalse(), "%s should not be found", token.DisplayPrefix(value))
					continue
				}
				g.Expect(ok).To(BeTrue(), "%s should be found", token.DisplayPrefix(value))
				g.Expect(got).To(Equal(*want))
			}
			g.Expect(ix.Len()).To(Equal(tt.wantLen))
		})
	}
}

func TestIndexCopiesOutOfTheToken(t *testing.T) {
	g := NewWithT(t)
	v := b.NewValue(t, v1alpha1.TeamTokenType)
	tok := b.Issued("tok", "ns", v, []b.ApiTokenOption{b.TeamToken("payments"), b.WithScopes("read")},
		b.WithCreator("jane"), b.WithExpiry(t0))
	ix := NewIndex()
	ix.Upsert(tok)

	// The informer's object may be reused; the index must not change with it.
	tok.Spec.Teams[0] = "changed"
	tok.Spec.Scopes[0] = "changed"
	b.WithCreator("changed")(tok)
	tok.Spec.ExpiresAt.Time = t0.Add(time.Hour)
	tok.Status.ExpiresAt.Time = t0.Add(time.Hour)

	e, ok := lookupDigest(ix, token.Hash(v))
	g.Expect(ok).To(BeTrue())
	g.Expect(e.Teams).To(Equal([]string{"payments"}))
	g.Expect(e.Scopes).To(Equal([]string{"read"}))
	g.Expect(e.Creator.Username).To(Equal("jane"))
	g.Expect(*e.ExpiresAt).To(Equal(t0))
	g.Expect(*e.StatusExpiresAt).To(Equal(t0))
}

func TestIndexDigestSpelling(t *testing.T) {
	v := b.NewValue(t, v1alpha1.TeamTokenType)
	digest := token.Hash(v)
	hexPart := digest[len("sha256:"):]
	tests := []struct {
		name   string
		digest string
		want   bool
	}{
		// token's TestParseDigest covers every other spelling.
		{"as token.Hash spells it", digest, true},
		{"uppercase hex", "sha256:" + strings.ToUpper(hexPart), false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			sum, ok := token.ParseDigest(tt.digest)
			g.Expect(ok).To(Equal(tt.want))
			if tt.want {
				// The key the index stores a digest under is the one a
				// verification computes from the value.
				g.Expect(sum).To(Equal(token.SumOf(v)))
			}

			tok := b.Issued("tok", "ns", "", nil)
			tok.Status.TokenHash = tt.digest
			ix := NewIndex()
			ix.Upsert(tok)
			g.Expect(ix.Len()).To(Equal(map[bool]int{true: 1, false: 0}[tt.want]))
			_, found := lookupDigest(ix, tt.digest)
			g.Expect(found).To(Equal(tt.want))
		})
	}
}

func TestIndexUpsertNil(t *testing.T) {
	g := NewWithT(t)
	ix := NewIndex()
	ix.Upsert(nil)
	g.Expect(ix.Len()).To(BeZero())
}

func ptr[T any](v T) *T { return &v }

// lookupDigest is the Index's entry for digest, as a verification finds it:
// false for a digest nobody or more than one ApiToken claims, and for one
// not spelled as token.Hash spells it.
func lookupDigest(ix *Index, digest string) (Entry, bool) {
	sum, ok := token.ParseDigest(digest)
	if !ok {
		return Entry{}, false
	}
	r, ok := ix.lookup(&sum)
	if !ok {
		return Entry{}, false
	}
	return r.entry, true
}

// TestRecordSize: the index keeps a record per value, 100,000 at make
// bench-scale, so its size is memory every replica pays per token. 448
// bytes is the allocator's size class it fits in once the Wildcard-only
// spec is a pointer; a field that pushes it into the next class costs 64
// bytes a token.
func TestRecordSize(t *testing.T) {
	if size := unsafe.Sizeof(record{}); size > 448 {
		t.Errorf("a record takes %d bytes, more than 448", size)
	}
}
