package harness

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/token"
)

// FloodReport is what a flood of bad tokens did to verification.
type FloodReport struct {
	Duration time.Duration `json:"-"`
	// Good counts verifications of good tokens, GoodOK those answered 200.
	Good, GoodOK int64
	// Spread counts unique bad tokens sent from unique addresses, each
	// refused once; Spread401 those answered 401.
	Spread, Spread401 int64
	// Single counts unique bad tokens from one address, Single429 those
	// answered 429 once its failure budget was spent, and SingleBad429 the
	// 429s without Retry-After and RateLimit-* headers.
	Single, Single429, SingleBad429 int64
	// RSSBefore and RSSAfter are the operator's resident set sizes.
	RSSBefore, RSSAfter int64
}

// Flood sends, for d, unique well-formed unknown tokens (each hashed and
// looked up, the most expensive garbage) from many addresses and from one,
// while good values are verified from addresses of their own.
func Flood(ctx context.Context, op *Operator, good []string, d time.Duration) (FloodReport, error) {
	var r FloodReport
	var err error
	if r.RSSBefore, err = op.RSSBytes(); err != nil {
		return r, err
	}
	format := token.Format{Base: token.DefaultBase}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq atomic.Int64
	worker := func(fn func(i int64)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				fn(seq.Add(1))
			}
		}()
	}
	bad := func() string {
		v, err := format.Generate(v1alpha1.TeamTokenType)
		if err != nil {
			panic(err)
		}
		return v
	}
	for g := range 2 {
		next := 0
		worker(func(int64) {
			// Each client walks the good values in turn, at most 100
			// requests a second, so no value nears its token's request
			// budget (100/s by default): a 429 here would be by design,
			// not the flood's doing.
			value := good[next%len(good)]
			next++
			code, _, err := op.Verify(ctx, value, fmt.Sprintf("192.0.2.%d", g+1))
			atomic.AddInt64(&r.Good, 1)
			if err == nil && code == http.StatusOK {
				atomic.AddInt64(&r.GoodOK, 1)
			}
			time.Sleep(10 * time.Millisecond)
		})
	}
	for range 3 {
		worker(func(i int64) {
			code, _, err := op.Verify(ctx, bad(), fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff))
			atomic.AddInt64(&r.Spread, 1)
			if err == nil && code == http.StatusUnauthorized {
				atomic.AddInt64(&r.Spread401, 1)
			}
		})
	}
	for range 2 {
		worker(func(int64) {
			code, header, err := op.VerifyHeaders(ctx, bad(), "198.51.100.7")
			atomic.AddInt64(&r.Single, 1)
			if err == nil && code == http.StatusTooManyRequests {
				atomic.AddInt64(&r.Single429, 1)
				if header.Get("Retry-After") == "" || header.Get("RateLimit-Limit") == "" ||
					header.Get("RateLimit-Remaining") == "" || header.Get("RateLimit-Reset") == "" {
					atomic.AddInt64(&r.SingleBad429, 1)
				}
			}
		})
	}
	start := time.Now()
	time.Sleep(d)
	close(stop)
	wg.Wait()
	r.Duration = time.Since(start)
	r.RSSAfter, err = op.RSSBytes()
	return r, err
}
