package verify

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// LastUsed remembers when each ApiToken last verified, until a flusher
// drains it and writes status.lastUsedAt in batches: one status write per
// token per flush instead of one per request.
type LastUsed struct {
	mu   sync.Mutex
	seen map[types.NamespacedName]time.Time
}

// NewLastUsed returns an empty LastUsed.
func NewLastUsed() *LastUsed {
	return &LastUsed{seen: map[types.NamespacedName]time.Time{}}
}

// Record notes that key verified at at, keeping the latest instant when
// requests race. It is a map write under a mutex, cheap enough for every
// request.
func (l *LastUsed) Record(key types.NamespacedName, at time.Time) {
	l.mu.Lock()
	if prev, ok := l.seen[key]; !ok || at.After(prev) {
		l.seen[key] = at
	}
	l.mu.Unlock()
}

// Drain returns what was recorded since the last Drain and forgets it.
func (l *LastUsed) Drain() map[types.NamespacedName]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.seen
	l.seen = make(map[types.NamespacedName]time.Time, len(out))
	return out
}
