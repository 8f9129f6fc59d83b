// Package verify answers "who is this token?" from memory. Every operator
// replica keeps an Index of the digests in ApiToken status, fed by its
// ApiToken informer, and a table of the Teams, fed by its Team informer, so
// a verification costs a hash, a few map lookups and never a call to the
// API server (except an admin answer for an Admin token's creator or a
// creator who owns too little, which is remembered). The creator's standing
// is checked on every request, so taking an owner off a Team refuses their
// tokens as soon as the informer sees it, before any reconcile. So is what
// the spec says of the token: spec.disabled and the expiry spec.expiresAt or
// spec.lifetime implies take effect on every replica as soon as the
// informer sees the edit, whether or not a leader reconciles it.
//
// The package decides and knows nothing of how it is asked:
// internal/verifyhttp serves it over HTTP (TokenReview and GET /verify) and
// applies internal/ratelimit's budgets, internal/verifysetup feeds it from
// the informers and writes back the last uses it records in memory.
//
// Nothing here logs, echoes or wraps a token value: only digests, ApiToken
// names and refusal reasons leave this package.
package verify

import (
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/duration"
	"github.com/tokenwarden/tokenwarden/internal/lifecycle"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// Entry is what the Index knows of one digest. Its slices, Creator,
// ExpiresAt and StatusExpiresAt are copies owned by the Index and never
// changed once stored: treat them as read-only, since every verification and
// every Identity of the digest shares them.
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
	// Creator is the identity in the creator annotation, which the
	// admission webhook stamps at CREATE and keeps from changing; nil when
	// the annotation is missing or unreadable. status.creator is never
	// read: whoever may write status could otherwise name an admin there
	// and borrow their standing.
	Creator *v1alpha1.UserIdentity
	// Phase is the ApiToken's status.phase.
	Phase v1alpha1.ApiTokenPhase
	// Disabled is spec.disabled. The verifier refuses on it rather than
	// waiting for the reconciler to set the phase, which only the leader
	// does: a disable takes effect on every replica, with or without one.
	Disabled bool
	// IssuedAt is status.issuedAt, the instant a Wildcard token's lifetime
	// counts from when the verifier checks it against team policies.
	IssuedAt time.Time
	// ExpiresAt is when this digest stops verifying, as the spec says now:
	// spec.expiresAt, else status.issuedAt plus spec.lifetime, else never
	// (nil); for a previous value, the end of its overlap if that is
	// earlier. The spec wins over StatusExpiresAt, which the reconciler
	// writes after the fact, so an expiry moved or removed in the spec
	// takes effect before any reconcile, either way.
	ExpiresAt *time.Time
	// StatusExpiresAt is the expiry status records for this digest:
	// status.expiresAt, or status.previous.expiresAt for a previous value;
	// nil when there is none. It decides only when the spec cannot:
	// spec.lifetime without status.issuedAt, or a lifetime that does not
	// parse.
	StatusExpiresAt *time.Time
	// Previous is true when this digest is status.previous: a replaced value
	// still inside its rotation overlap.
	Previous bool
}

// digestKey is a digest as the Index keys it: the SHA-256 itself rather
// than its hex spelling, so a verification looks a value up without
// formatting, or allocating, a string.
type digestKey = token.Sum

// record is an Entry with the digest it is stored under, so the verifier
// can compare digests itself instead of trusting the map's comparison, and
// with what every verification of it answers worked out once, at Upsert, so
// a request spends nothing on it. A record is never changed once in the
// Index: Upsert replaces records rather than editing them, which is what
// lets requests share its strings and slices without copying.
type record struct {
	// sum is the SHA-256 the digest spells out.
	sum digestKey
	// digest is the digest as status holds it, "sha256:<hex>", the key of
	// the per-token rate limit.
	digest string
	entry  Entry
	// expiresAt and statusExpiresAt back entry.ExpiresAt and
	// entry.StatusExpiresAt, saving each an allocation of its own.
	expiresAt       time.Time
	statusExpiresAt time.Time
	// user is Identity.User, "tokenwarden:<namespace>:<name>:<uid>". The
	// uid is part of it so that an ApiToken deleted and created again under
	// the same name, whatever its type, is another user and inherits none
	// of the RBAC bindings made for the old one.
	user string
	// teams are the teams a verification answers when they do not depend
	// on the request time; never nil, so JSON says [] not null. dynamicTeams
	// is set instead for Wildcard tokens.
	teams        []string
	dynamicTeams bool
	// scopes are Entry.Scopes, never nil.
	scopes []string
	// spec is what team policies judge of a Wildcard token (its scopes and
	// the expiry its spec implies), built once so a verification allocates
	// nothing for it; nil for the other types, which need none, so their
	// records do not carry its 128 bytes.
	spec *v1alpha1.ApiTokenSpec
	// teamsHeader and scopesHeader are teams and scopes joined with commas,
	// the values of X-Tokenwarden-Teams and X-Tokenwarden-Scopes.
	teamsHeader  string
	scopesHeader string
	// expiresHeader is ExpiresAt as X-Tokenwarden-Expires-At says it, in
	// RFC 3339 and UTC; "" when the entry never expires.
	expiresHeader string
}

// expiries are the instants a record expires at, nil meaning never.
type expiries struct {
	// at is Entry.ExpiresAt, statusAt Entry.StatusExpiresAt.
	at, statusAt *time.Time
	// token is when the token itself expires, as its spec says: what team
	// policies judge, the same for its current and its previous value.
	token *time.Time
}

// newRecord returns the record of e under digest, whose SHA-256 is sum,
// expiring at exp.
func newRecord(sum digestKey, digest string, e Entry, exp expiries) *record {
	r := &record{sum: sum, digest: digest, entry: e, scopes: nonNil(e.Scopes)}
	if exp.at != nil {
		r.expiresAt = *exp.at
		r.entry.ExpiresAt = &r.expiresAt
	}
	if exp.statusAt != nil {
		r.statusExpiresAt = *exp.statusAt
		r.entry.StatusExpiresAt = &r.statusExpiresAt
	}
	switch e.Type {
	case v1alpha1.TeamTokenType:
		r.teams = nonNil(e.Teams)
	case v1alpha1.WildcardTokenType:
		// Decided at request time, from the Teams there are then.
		r.dynamicTeams = true
		r.spec = &v1alpha1.ApiTokenSpec{Type: e.Type}
		for _, scope := range e.Scopes {
			r.spec.Scopes = append(r.spec.Scopes, v1alpha1.ScopeString(scope))
		}
		if exp.token != nil {
			r.spec.ExpiresAt = &metav1.Time{Time: *exp.token}
		}
	default:
		// An Admin token is associated with no team (an admin's Wildcard
		// token is the one that speaks for every team), and a type this
		// version does not know speaks for none either.
		r.teams = noStrings
	}
	// The strings are cut from one, so the Index holds, and the garbage
	// collector marks, one object per record for them rather than four.
	var b strings.Builder
	user := len(UserPrefix) + len(e.Key.Namespace) + 1 + len(e.Key.Name) + 1 + len(e.UID)
	b.Grow(user + 2*len(time.RFC3339) + 16*(len(r.teams)+len(r.scopes)))
	b.WriteString(UserPrefix)
	b.WriteString(e.Key.Namespace)
	b.WriteByte(':')
	b.WriteString(e.Key.Name)
	b.WriteByte(':')
	b.WriteString(string(e.UID))
	teams := b.Len()
	writeJoined(&b, r.teams)
	scopes := b.Len()
	writeJoined(&b, r.scopes)
	expires := b.Len()
	if r.entry.ExpiresAt != nil {
		b.WriteString(r.expiresAt.UTC().Format(time.RFC3339))
	}
	all := b.String()
	r.user = all[:teams]
	r.teamsHeader = all[teams:scopes]
	r.scopesHeader = all[scopes:expires]
	r.expiresHeader = all[expires:]
	return r
}

// writeJoined writes s joined with commas, as strings.Join(s, ",") does.
func writeJoined(b *strings.Builder, s []string) {
	for i, v := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(v)
	}
}

// Index maps digests to the ApiTokens they belong to. It is safe for
// concurrent use: the informer writes while every request reads.
type Index struct {
	mu sync.RWMutex
	// records holds the record of every digest exactly one ApiToken claims.
	records map[digestKey]*record
	// contested holds the records of every digest more than one ApiToken
	// claims, which only a hand-written status can cause. Such a digest is
	// ambiguous and verifies as nobody rather than as whichever ApiToken was
	// seen last; it moves back to records when one claimant is left.
	contested map[digestKey][]*record
	// byKey holds the records of each ApiToken, so Upsert and Delete drop
	// old digests without a scan.
	byKey map[types.NamespacedName]keyRecords
}

// keyRecords are the records of one ApiToken: its current value's and, in
// a rotation overlap, its previous one's, nil when absent. They are held in
// place rather than in a slice, which would be one more object per token.
type keyRecords [2]*record

// NewIndex returns an empty Index.
func NewIndex() *Index {
	return &Index{
		records:   map[digestKey]*record{},
		contested: map[digestKey][]*record{},
		byKey:     map[types.NamespacedName]keyRecords{},
	}
}

// Upsert replaces every digest of tok's key with those of tok: the current
// status.tokenHash, expiring at status.expiresAt, and status.previous,
// expiring at its expiresAt. A token without a tokenHash has no entries, and
// neither has one being deleted: whoever deleted it wants it to stop
// verifying now, not when a finalizer is done. A digest not spelled as
// token.Hash spells it, "sha256:" and 64 lowercase hex digits, is left out:
// no value hashes to it, so it could never verify.
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
	var kr keyRecords
	for i, r := range records {
		ix.addLocked(r)
		kr[i] = r
	}
	ix.byKey[key] = kr
}

// Delete drops every digest of the ApiToken key.
func (ix *Index) Delete(key types.NamespacedName) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.removeLocked(key)
}

// Len returns the number of digests that verify as some ApiToken.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.records)
}

// lookup returns the record of the digest whose SHA-256 is sum, if exactly
// one ApiToken claims it. The record is shared: read it, never change it.
func (ix *Index) lookup(sum *digestKey) (*record, bool) {
	ix.mu.RLock()
	r := ix.records[*sum]
	ix.mu.RUnlock()
	return r, r != nil
}

// addLocked adds r to the claimants of its digest; ix.mu must be held for
// writing.
func (ix *Index) addLocked(r *record) {
	if rs, ok := ix.contested[r.sum]; ok {
		ix.contested[r.sum] = append(rs, r)
		return
	}
	if other, ok := ix.records[r.sum]; ok {
		delete(ix.records, r.sum)
		ix.contested[r.sum] = []*record{other, r}
		return
	}
	ix.records[r.sum] = r
}

// removeLocked drops the digests of key; ix.mu must be held for writing.
func (ix *Index) removeLocked(key types.NamespacedName) {
	for _, old := range ix.byKey[key] {
		if old == nil {
			continue
		}
		sum := old.sum
		if r, ok := ix.records[sum]; ok {
			if r == old {
				delete(ix.records, sum)
			}
			continue
		}
		rs := ix.contested[sum]
		kept := rs[:0]
		for _, r := range rs {
			if r != old {
				kept = append(kept, r)
			}
		}
		// Clear the dropped tail so the backing array does not pin it.
		clear(rs[len(kept):])
		switch len(kept) {
		case 0:
			delete(ix.contested, sum)
		case 1:
			delete(ix.contested, sum)
			ix.records[sum] = kept[0]
		default:
			ix.contested[sum] = kept
		}
	}
	delete(ix.byKey, key)
}

// recordsOf returns the records tok's status calls for, with what its spec
// says of them now. Everything is copied out of tok, because tok usually
// belongs to the informer's cache.
func recordsOf(key types.NamespacedName, tok *v1alpha1.ApiToken) []*record {
	st := &tok.Status
	if st.TokenHash == "" || tok.DeletionTimestamp != nil {
		return nil
	}
	// Only the annotation counts: the webhook records it from the CREATE
	// request and lets nobody change it, while status.creator is just a
	// copy that anyone allowed to write status could set to an admin. An
	// unreadable annotation leaves the creator unknown, which the verifier
	// refuses: the safe side. CreatorOf decodes a fresh value, so nothing
	// is shared with tok.
	creator, _ := authz.CreatorOf(tok)
	// Teams and scopes share one copy, each capped so that appending to one
	// cannot write into the other.
	lists := make([]string, 0, len(tok.Spec.Teams)+len(tok.Spec.Scopes))
	lists = append(lists, tok.Spec.Teams...)
	for _, s := range tok.Spec.Scopes {
		lists = append(lists, string(s))
	}
	nTeams := len(tok.Spec.Teams)
	base := Entry{
		Key:      key,
		UID:      tok.UID,
		Type:     tok.Spec.Type,
		Teams:    emptyToNil(lists[:nTeams:nTeams]),
		Scopes:   emptyToNil(lists[nTeams:]),
		Creator:  creator,
		Phase:    st.Phase,
		Disabled: tok.Spec.Disabled,
	}
	if st.IssuedAt != nil {
		base.IssuedAt = st.IssuedAt.Time
	}
	var statusExpiresAt *time.Time
	if st.ExpiresAt != nil {
		statusExpiresAt = &st.ExpiresAt.Time
	}
	tokenExpiresAt, known := specExpiresAt(tok)
	if !known {
		tokenExpiresAt = statusExpiresAt
	}
	out := make([]*record, 0, 2)
	if sum, ok := token.ParseDigest(st.TokenHash); ok {
		out = append(out, newRecord(sum, st.TokenHash, base,
			expiries{at: tokenExpiresAt, statusAt: statusExpiresAt, token: tokenExpiresAt}))
	}
	// A previous digest equal to the current one can only come from a
	// hand-edited status; the current entry, with its own expiry, wins.
	if p := st.Previous; p != nil && p.TokenHash != "" && p.TokenHash != st.TokenHash {
		if sum, ok := token.ParseDigest(p.TokenHash); ok {
			prev := base
			prev.Previous = true
			// A zero expiresAt is kept as the zero instant, which is in the
			// past: a previous value with no end verifies not at all rather
			// than forever. It ends with the token, too, if the spec now
			// ends the token sooner.
			end := &p.ExpiresAt.Time
			at := end
			if tokenExpiresAt != nil && tokenExpiresAt.Before(*end) {
				at = tokenExpiresAt
			}
			out = append(out, newRecord(sum, p.TokenHash, prev,
				expiries{at: at, statusAt: end, token: tokenExpiresAt}))
		}
	}
	return out
}

// specExpiresAt is when tok's current value expires as its spec says now,
// by the reconciler's own rule (lifecycle.ExpiresAt): spec.expiresAt, else
// status.issuedAt plus spec.lifetime, else never (nil). It reports false
// when the spec cannot say: a lifetime that does not parse (the API server
// validates it, so only a stale schema gets here) or one without an
// issuance to count from; the status's expiry then decides.
func specExpiresAt(tok *v1alpha1.ApiToken) (*time.Time, bool) {
	var lifetime *time.Duration
	if tok.Spec.ExpiresAt == nil && tok.Spec.Lifetime != nil {
		if tok.Status.IssuedAt == nil {
			return nil, false
		}
		d, err := duration.Parse(*tok.Spec.Lifetime)
		if err != nil {
			return nil, false
		}
		lifetime = &d
	}
	return lifecycle.ExpiresAt(&tok.Spec, tok.Status.IssuedAt, lifetime), true
}

// emptyToNil returns s, or nil if s is empty, as the Index has always kept
// empty lists.
func emptyToNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// noStrings is the empty, non-nil list that empty teams and scopes share. It
// has no room, so appending to it never writes into it.
var noStrings = []string{}

// nonNil returns s, or noStrings if s is nil.
func nonNil(s []string) []string {
	if s == nil {
		return noStrings
	}
	return s
}
