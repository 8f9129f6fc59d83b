// Package ratelimit holds the budgets verification spends: failed attempts
// per client address and requests per token, each kept in a bounded LRU so
// a flood of unique addresses or values cannot grow memory. It knows
// nothing of tokens or HTTP; internal/verifyhttp decides what to charge.
package ratelimit

import (
	"container/list"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
)

// Limits are the rate limits of verification. A zero field takes its value
// from DefaultLimits; rate.Inf turns a limit off.
type Limits struct {
	// FailuresPerClient is how fast a client address earns back failed
	// attempts, per second.
	FailuresPerClient rate.Limit
	// FailureBurst is how many failed attempts a client address may make
	// in a row.
	FailureBurst int
	// RequestsPerToken is how fast a token earns back requests, per second.
	RequestsPerToken rate.Limit
	// TokenBurst is how many requests a token may make in a row.
	TokenBurst int
	// MaxClients bounds the client addresses remembered; the least
	// recently seen is forgotten first.
	MaxClients int
	// MaxTokens bounds the tokens remembered; the least recently used is
	// forgotten first.
	MaxTokens int
}

// DefaultLimits allow a client 20 failed attempts in a row and one more
// per second, a token 200 requests in a row and 100 per second, and keep at
// most 10,000 client addresses and 100,000 tokens: about 30 MiB with both
// full.
func DefaultLimits() Limits {
	return Limits{
		FailuresPerClient: 1,
		FailureBurst:      20,
		RequestsPerToken:  100,
		TokenBurst:        200,
		MaxClients:        10_000,
		MaxTokens:         100_000,
	}
}

// withDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.FailuresPerClient == 0 {
		l.FailuresPerClient = d.FailuresPerClient
	}
	if l.FailureBurst == 0 {
		l.FailureBurst = d.FailureBurst
	}
	if l.RequestsPerToken == 0 {
		l.RequestsPerToken = d.RequestsPerToken
	}
	if l.TokenBurst == 0 {
		l.TokenBurst = d.TokenBurst
	}
	if l.MaxClients <= 0 {
		l.MaxClients = d.MaxClients
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = d.MaxTokens
	}
	return l
}

// Info describes the state of one budget, as the RateLimit-* and
// Retry-After headers report it.
type Info struct {
	// Limit is the burst: how many may happen in a row.
	Limit int
	// Remaining is how many may happen now.
	Remaining int
	// Reset is how long until Remaining is back to Limit.
	Reset time.Duration
	// RetryAfter is how long until one more may happen; zero if one may now.
	RetryAfter time.Duration
}

// Limiter limits failed verifications per client address and requests per
// token; internal/verifyhttp applies the first on GET /verify only. The
// server charges a client's budget only with
// its refused attempts, after the token was looked at, so a valid token is
// never refused because of failures from the same address: every service
// behind one proxy shares it. Two properties keep a flood of garbage from
// hurting anyone else: both sets of limiters are bounded LRUs, so unique
// addresses or values cannot grow memory; and the server creates token
// limiters only for digests found in the index and charges failures only
// to the client address, so unique bad values cannot push good tokens'
// limiters out.
type Limiter struct {
	limits  Limits
	clock   clock.PassiveClock
	clients *lru
	tokens  *lru
}

// New returns a Limiter enforcing l, timed by clk (nil: real time).
func New(l Limits, clk clock.PassiveClock) *Limiter {
	l = l.withDefaults()
	return &Limiter{
		limits:  l,
		clock:   clk,
		clients: newLRU(l.MaxClients),
		tokens:  newLRU(l.MaxTokens),
	}
}

// CheckClient describes addr's failure budget and reports whether addr may
// still fail. It spends nothing, so clients that never fail cost no memory.
func (l *Limiter) CheckClient(addr string) (Info, bool) {
	lim := l.clients.get(addr)
	if lim == nil {
		b := l.limits.FailureBurst
		return Info{Limit: b, Remaining: b}, true
	}
	now := l.clock.Now()
	info := infoOf(lim, now)
	return info, lim.Limit() == rate.Inf || lim.TokensAt(now) >= 1
}

// ChargeFailure spends one of addr's failed attempts and reports whether
// addr had one left: false means it spent its failure budget and the
// attempt should be answered 429. An attempt over the budget spends
// nothing more, so a client that stops failing earns its budget back at
// the configured rate however long it kept trying. Checking and spending
// are one step, so concurrent attempts of one client cannot overshoot.
func (l *Limiter) ChargeFailure(addr string) (Info, bool) {
	lim := l.clients.getOrCreate(addr, func() *rate.Limiter {
		return rate.NewLimiter(l.limits.FailuresPerClient, l.limits.FailureBurst)
	})
	now := l.clock.Now()
	ok := lim.AllowN(now, 1)
	return infoOf(lim, now), ok
}

// CheckToken spends one request of the token with digest and reports
// whether it was allowed, with the state of its budget after. Call it only
// for digests found in the index, or a flood of unique values would evict
// the limiters of real tokens.
func (l *Limiter) CheckToken(digest string) (Info, bool) {
	lim := l.tokenLimiter(digest)
	now := l.clock.Now()
	ok := lim.AllowN(now, 1)
	return infoOf(lim, now), ok
}

// tokenLimiter returns the limiter of the token with digest, creating it.
func (l *Limiter) tokenLimiter(digest string) *rate.Limiter {
	return l.tokens.getOrCreate(digest, func() *rate.Limiter {
		return rate.NewLimiter(l.limits.RequestsPerToken, l.limits.TokenBurst)
	})
}

// infoOf describes lim at now.
func infoOf(lim *rate.Limiter, now time.Time) Info {
	burst := lim.Burst()
	limit := lim.Limit()
	if limit == rate.Inf {
		return Info{Limit: burst, Remaining: burst}
	}
	tokens := max(lim.TokensAt(now), 0)
	info := Info{
		Limit:     burst,
		Remaining: int(math.Floor(tokens)),
		Reset:     durationFor(float64(burst)-tokens, limit),
	}
	if tokens < 1 {
		info.RetryAfter = durationFor(1-tokens, limit)
	}
	return info
}

// maxWait caps the durations reported for a limit that never refills.
const maxWait = 24 * time.Hour

// durationFor is how long limit takes to earn tokens, rounded up.
func durationFor(tokens float64, limit rate.Limit) time.Duration {
	if tokens <= 0 {
		return 0
	}
	if limit <= 0 {
		return maxWait
	}
	d := math.Ceil(tokens / float64(limit) * float64(time.Second))
	if d >= float64(maxWait) {
		return maxWait
	}
	return time.Duration(d)
}

// lru is a bounded map of rate limiters that forgets the least recently
// used first. It is small and specialised instead of k8s.io/utils/lru
// because get-or-create must be one step: two requests of a new client
// must share one limiter, not each spend from their own.
type lru struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *lruItem, most recently used first
	items map[string]*list.Element
}

type lruItem struct {
	key string
	lim *rate.Limiter
}

func newLRU(maxItems int) *lru {
	return &lru{max: maxItems, order: list.New(), items: map[string]*list.Element{}}
}

// get returns the limiter of key, or nil, and marks it used.
func (c *lru) get(key string) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruItem).lim
}

// getOrCreate returns the limiter of key, creating it with create and
// evicting the least recently used one if the LRU is full.
func (c *lru) getOrCreate(key string, create func() *rate.Limiter) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*lruItem).lim
	}
	if c.order.Len() >= c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*lruItem).key)
	}
	lim := create()
	c.items[key] = c.order.PushFront(&lruItem{key: key, lim: lim})
	return lim
}

// len returns the number of limiters kept.
func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
