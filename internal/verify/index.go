// Package verify answers "who is this token?" from memory. Every operator
// replica keeps an Index of the digests in ApiToken status, fed by its
// ApiToken informer, so a verification costs a hash and a map lookup and
// never a call to the API server; only Wildcard and Admin tokens consult the
// Team cache, because their teams are decided at request time.
//
// The package serves verification over HTTP, both as a kube-apiserver token
// webhook (TokenReview) and as a plain forward-auth endpoint (GET /verify),
// limits failed attempts per client address and requests per token, and
// records last use in memory for a flusher to write back in batches.
//
// Nothing here logs, echoes or wraps a token value: only digests, ApiToken
// names and refusal reasons leave this package.
package verify

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
)

// Entry is what the Index knows of one digest. Its slices and Creator are
// copies owned by the Index: treat them as read-only, since every Lookup of
// the digest shares them.
type Entry struct {
	// Key names the ApiToken.
	Key types.NamespacedName
	// UID is the ApiToken's UID.
	UID types.UID
	// Type is spec.type.
	Type v1alpha1.ApiTokenType
	// Teams is spec.teams.
	Teams []string
	// Scopes is spec.scopes.
	Scopes []string
	// Creator is status.creator, or the creator annotation when the status
	// does not carry it yet.
	Creator *v1alpha1.UserIdentity
	// Phase is the ApiToken's status.phase.
	Phase v1alpha1.ApiTokenPhase
	// ExpiresAt is when this digest stops verifying; nil means never.
	ExpiresAt *time.Time
	// Previous is true when this digest is status.previous: a replaced value
	// still inside its rotation overlap.
	Previous bool
}

// record is an Entry with the digest it is stored under, so the verifier
// can compare digests itself instead of trusting the map's comparison.
type record struct {
	digest string
	entry  Entry
}

// Index maps digests to the ApiTokens they belong to. It is safe for
// concurrent use: the informer writes while every request reads.
type Index struct {
	mu sync.RWMutex
	// byDigest holds, per digest, the records of every ApiToken claiming it.
	// There is one unless two ApiTokens carry the same digest, which only a
	// hand-written status can cause; such a digest is ambiguous and verifies
	// as nobody rather than as whichever ApiToken was seen last.
	byDigest map[string][]record
	// byKey holds the digests of each ApiToken, so Upsert and Delete drop
	// old digests without a scan.
	byKey map[types.NamespacedName][]string
	// unique counts the digests exactly one ApiToken claims, for Len.
	unique int
}

// NewIndex returns an empty Index.
func NewIndex() *Index {
	return &Index{
		byDigest: map[string][]record{},
		byKey:    map[types.NamespacedName][]string{},
	}
}

// Upsert replaces every digest of tok's key with those of tok: the current
// status.tokenHash, expiring at status.expiresAt, and status.previous,
// expiring at its expiresAt. A token without a tokenHash has no entries, and
// neither has one being deleted: whoever deleted it wants it to stop
// verifying now, not when a finalizer is done.
func (ix *Index) Upsert(tok *v1alpha1.ApiToken) {
	if tok == nil {
		return
	}
	key := types.NamespacedName{Namespace: tok.Namespace, Name: tok.Name}
	records := recordsOf(key, tok)

	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.removeLocked(key)
	if len(records) == 0 {
		return
	}
	digests := make([]string, 0, len(records))
	for _, r := range records {
		before := len(ix.byDigest[r.digest])
		ix.byDigest[r.digest] = append(ix.byDigest[r.digest], r)
		ix.unique += uniqueDelta(before, before+1)
		digests = append(digests, r.digest)
	}
	ix.byKey[key] = digests
}

// Delete drops every digest of the ApiToken key.
func (ix *Index) Delete(key types.NamespacedName) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.removeLocked(key)
}

// Lookup returns the entry of digest. It reports false for a digest nobody
// or more than one ApiToken claims.
func (ix *Index) Lookup(digest string) (Entry, bool) {
	r, ok := ix.lookup(digest)
	return r.entry, ok
}

// Len returns the number of digests that verify as some ApiToken.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.unique
}

// lookup is Lookup returning the stored digest too.
func (ix *Index) lookup(digest string) (record, bool) {
	ix.mu.RLock()
	rs := ix.byDigest[digest]
	var r record
	if len(rs) == 1 {
		r = rs[0]
	}
	ix.mu.RUnlock()
	return r, len(rs) == 1
}

// removeLocked drops the digests of key; ix.mu must be held for writing.
func (ix *Index) removeLocked(key types.NamespacedName) {
	for _, d := range ix.byKey[key] {
		rs := ix.byDigest[d]
		kept := rs[:0]
		for _, r := range rs {
			if r.entry.Key != key {
				kept = append(kept, r)
			}
		}
		ix.unique += uniqueDelta(len(rs), len(kept))
		if len(kept) == 0 {
			delete(ix.byDigest, d)
		} else {
			// Clear the dropped tail so the backing array does not pin it.
			clear(rs[len(kept):])
			ix.byDigest[d] = kept
		}
	}
	delete(ix.byKey, key)
}

// uniqueDelta is the change in the count of unambiguous digests when a
// digest goes from before to after claimants.
func uniqueDelta(before, after int) int {
	d := 0
	if before == 1 {
		d--
	}
	if after == 1 {
		d++
	}
	return d
}

// recordsOf returns the records tok's status calls for. Everything is copied
// out of tok, because tok usually belongs to the informer's cache.
func recordsOf(key types.NamespacedName, tok *v1alpha1.ApiToken) []record {
	st := &tok.Status
	if st.TokenHash == "" || tok.DeletionTimestamp != nil {
		return nil
	}
	creator := st.Creator.DeepCopy()
	if creator == nil {
		// An unreadable annotation leaves the creator unknown, which
		// resolves a Wildcard token to no teams: the safe side.
		creator, _ = authz.CreatorOf(tok)
	}
	base := Entry{
		Key:     key,
		UID:     tok.UID,
		Type:    tok.Spec.Type,
		Teams:   cloneStrings(tok.Spec.Teams),
		Scopes:  scopeStrings(tok.Spec.Scopes),
		Creator: creator,
		Phase:   st.Phase,
	}
	current := base
	if st.ExpiresAt != nil {
		at := st.ExpiresAt.Time
		current.ExpiresAt = &at
	}
	out := []record{{digest: st.TokenHash, entry: current}}
	// A previous digest equal to the current one can only come from a
	// hand-edited status; the current entry, with its own expiry, wins.
	if p := st.Previous; p != nil && p.TokenHash != "" && p.TokenHash != st.TokenHash {
		prev := base
		// A zero expiresAt is kept as the zero instant, which is in the
		// past: a previous value with no end verifies not at all rather
		// than forever.
		at := p.ExpiresAt.Time
		prev.ExpiresAt = &at
		prev.Previous = true
		out = append(out, record{digest: p.TokenHash, entry: prev})
	}
	return out
}

// cloneStrings copies s; a nil or empty s stays nil.
func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append(make([]string, 0, len(s)), s...)
}

// scopeStrings converts spec.scopes to plain strings.
func scopeStrings(scopes []v1alpha1.ScopeString) []string {
	if len(scopes) == 0 {
		return nil
	}
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = string(s)
	}
	return out
}
