package verifyclient

import (
	"container/list"
	"context"
	"crypto/sha256"
	"time"
)

// cacheKey is the SHA-256 of a token. The cache never holds the token
// itself, so a heap dump of a service shows no usable value.
type cacheKey [sha256.Size]byte

func keyOf(token string) cacheKey {
	return sha256.Sum256([]byte(token))
}

// entry is one positive answer and the instant it stops being reused.
type entry struct {
	key     cacheKey
	id      *Identity
	expires time.Time
}

// call is one request to the server that identical concurrent lookups
// share, so a popular token whose entry just expired costs one request
// instead of one per waiting caller.
type call struct {
	done chan struct{}
	id   *Identity
	err  error
	// waiters counts the callers still waiting; the last to give up
	// cancels the request, so a request nobody wants stops at once.
	waiters int
	cancel  context.CancelFunc
}

// cache is a bounded LRU of positive answers plus the calls in flight. The
// Client's mutex guards it.
type cache struct {
	entries  map[cacheKey]*list.Element
	lru      *list.List // front is most recently used; values are *entry
	inflight map[cacheKey]*call
}

func newCache() *cache {
	return &cache{
		entries:  map[cacheKey]*list.Element{},
		lru:      list.New(),
		inflight: map[cacheKey]*call{},
	}
}

// get returns the identity cached for key if it is still fresh at now, and
// drops it if it is not.
func (c *cache) get(key cacheKey, now time.Time) (*Identity, bool) {
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.expires) {
		c.remove(el)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return e.id, true
}

// put stores id until expires, then evicts least recently used entries
// until at most maxEntries remain.
func (c *cache) put(key cacheKey, id *Identity, expires time.Time, maxEntries int) {
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*entry)
		e.id, e.expires = id, expires
		c.lru.MoveToFront(el)
	} else {
		c.entries[key] = c.lru.PushFront(&entry{key: key, id: id, expires: expires})
	}
	for c.lru.Len() > maxEntries {
		c.remove(c.lru.Back())
	}
}

func (c *cache) remove(el *list.Element) {
	delete(c.entries, el.Value.(*entry).key)
	c.lru.Remove(el)
}

// len is the number of entries held, fresh or not.
func (c *cache) len() int {
	return c.lru.Len()
}
