package verifyhttp

import (
	"context"
	"hash/crc32"
	"strconv"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/ratelimit"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/token"
	"github.com/tokenwarden/tokenwarden/internal/verify"
)

// TestFloodOfBadTokens sends 100,000 unique well-formed but unknown values
// from as many addresses, the most expensive garbage there is (each is
// hashed and looked up), and checks memory stays bounded and the good
// token's budget and verification are untouched.
func TestFloodOfBadTokens(t *testing.T) {
	g := NewWithT(t)
	good := b.NewValue(t, v1alpha1.TeamTokenType)
	ix := verify.NewIndex()
	ix.Upsert(b.Issued("good", "ns", good, []b.ApiTokenOption{b.TeamToken("a")}, b.WithCreator("jane")))
	clk := clocktesting.NewFakePassiveClock(t0)
	limiter := ratelimit.New(ratelimit.Limits{FailuresPerClient: 1, FailureBurst: 5, RequestsPerToken: 1, TokenBurst: 10, MaxClients: 500, MaxTokens: 50}, clk)
	s := &Server{Verifier: &verify.Verifier{Index: ix, Clock: clk, Teams: verify.StaticTeams(b.Team("a", b.WithOwners(b.User("jane")), b.WithNamespaces("ns", "payments")))}, Limiter: limiter, LastUsed: verify.NewLastUsed()}
	ctx := context.Background()

	d := s.decideUntimed(ctx, good, "192.0.2.10", true)
	g.Expect(d.reason).To(BeEmpty())

	// Unique values are cheap to make from one: the checksum is public.
	base := b.NewValue(t, v1alpha1.TeamTokenType)
	for i := range 100_000 {
		bad := withChecksum(base[:4] + strconv.FormatInt(int64(1_000_000_000+i), 10) + base[14:47])
		addr := "10." + strconv.Itoa(i>>16) + "." + strconv.Itoa(i>>8&0xff) + "." + strconv.Itoa(i&0xff)
		d := s.decideUntimed(ctx, bad, addr, true)
		g.Expect(d.reason).To(Equal(verify.ReasonUnknown))
	}
	// The same from one address is cut off after its burst.
	for i := range 100 {
		bad := withChecksum(base[:4] + strconv.FormatInt(int64(2_000_000_000+i), 10) + base[14:47])
		d := s.decideUntimed(ctx, bad, "203.0.113.66", true)
		if i < 5 {
			g.Expect(d.reason).To(Equal(verify.ReasonUnknown))
		} else {
			g.Expect(d.reason).To(Equal(verify.ReasonRateLimited))
		}
	}

	// At most MaxClients addresses are remembered: the first flooding
	// address was forgotten, with its failure, and the last one was not.
	first, _ := limiter.CheckClient("10.0.0.0")
	g.Expect(first.Remaining).To(Equal(5), "the first address was forgotten")
	last, _ := limiter.CheckClient("10.1.134.159")
	g.Expect(last.Remaining).To(Equal(4), "the last address is remembered")
	d = s.decideUntimed(ctx, good, "192.0.2.10", true)
	g.Expect(d.reason).To(BeEmpty())
	info, _ := limiter.CheckToken(token.Hash(good))
	// Had any bad value got a limiter, the good token's would have been
	// evicted (MaxTokens is 50) and this one would be fresh.
	g.Expect(info.Remaining).To(Equal(7), "10, less the two verifications and this check")
}

// withChecksum completes the prefix and random part of a value with a
// valid checksum.
func withChecksum(body string) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	n := uint64(crc32.ChecksumIEEE([]byte(body)))
	out := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		out[i] = alphabet[n%62]
		n /= 62
	}
	return body + string(out)
}

// TestConcurrentUse exercises the index, verifier, limiter and last-use
// record from many goroutines at once; run with -race.
func TestConcurrentUse(t *testing.T) {
	g := NewWithT(t)
	values := make([]string, 20)
	ix := verify.NewIndex()
	for i := range values {
		values[i] = b.NewValue(t, v1alpha1.TeamTokenType)
		ix.Upsert(b.Issued("tok-"+strconv.Itoa(i), "ns", values[i], []b.ApiTokenOption{b.TeamToken("a")}, b.WithCreator("jane")))
	}
	s := &Server{Verifier: &verify.Verifier{Index: ix, Clock: clock.RealClock{}, Teams: verify.StaticTeams(b.Team("a", b.WithOwners(b.User("jane")), b.WithNamespaces("ns", "payments")))}, Limiter: ratelimit.New(ratelimit.Limits{}, clock.RealClock{}), LastUsed: verify.NewLastUsed()}
	ctx := context.Background()

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				v := values[(w+i)%len(values)]
				switch i % 5 {
				case 0:
					// Re-issuing the same value keeps it verifying.
					ix.Upsert(b.Issued("tok-"+strconv.Itoa((w+i)%len(values)), "ns", v, []b.ApiTokenOption{b.TeamToken("a")}, b.WithCreator("jane")))
				case 1:
					s.LastUsed.Drain()
				default:
					if d := s.decideUntimed(ctx, v, "192.0.2."+strconv.Itoa(w), true); d.reason != "" {
						t.Errorf("refused: %s", d.reason)
					}
				}
			}
		})
	}
	wg.Wait()
	g.Expect(ix.Len()).To(Equal(len(values)))
}
