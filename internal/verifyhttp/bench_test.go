package verifyhttp

import (
	"context"
	"io"
	"math"
	"math/bits"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/ratelimit"
	"github.com/tokenwarden/tokenwarden/internal/testobj"
	"github.com/tokenwarden/tokenwarden/internal/verify"
)

// benchIndex indexes n Team tokens and returns one value from the middle.
func benchIndex(tb testing.TB, n int) (*verify.Index, string) {
	ix := verify.NewIndex()
	var target string
	opts := []testobj.ApiTokenOption{testobj.TeamToken("payments", "orders"), testobj.WithScopes("read:orders", "write:orders")}
	for i := range n {
		v := testobj.NewValue(tb, v1alpha1.TeamTokenType)
		ix.Upsert(testobj.Issued("tok-"+strconv.Itoa(i), "ns", v, opts,
			testobj.WithCreator("jane@example.com"), testobj.WithExpiry(time.Now().Add(time.Hour))))
		if i == n/2 {
			target = v
		}
	}
	return ix, target
}

// benchTokens is how many tokens the verification benchmarks index:
// TOKENWARDEN_BENCH_TOKENS, 10,000 by default. make bench-scale compares
// 1,000 with 100,000.
func benchTokens(tb testing.TB) int {
	n := 10_000
	if v := os.Getenv("TOKENWARDEN_BENCH_TOKENS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			tb.Fatalf("TOKENWARDEN_BENCH_TOKENS=%q: want a positive count", v)
		}
	}
	return n
}

// benchTeams are 100 Teams, among them the two the benchmark's tokens are
// for, so the creator's standing is checked against a realistic table.
func benchTeams() verify.TeamSource {
	teams := []*v1alpha1.Team{
		testobj.Team("payments", testobj.WithOwners(testobj.User("jane@example.com")), testobj.WithNamespaces("ns", "payments")),
		testobj.Team("orders", testobj.WithOwners(testobj.Group("order-leads"), testobj.User("jane@example.com")), testobj.WithNamespaces("ns", "payments")),
	}
	for i := range 98 {
		teams = append(teams, testobj.Team("team-"+strconv.Itoa(i), testobj.WithOwners(testobj.User("owner-"+strconv.Itoa(i)))))
	}
	return verify.StaticTeams(teams...)
}

func BenchmarkVerifyInProcess(b *testing.B) {
	ix, value := benchIndex(b, benchTokens(b))
	v := &verify.Verifier{Index: ix, Clock: clock.RealClock{}, Teams: benchTeams()}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, reason := v.Verify(ctx, value); reason != "" {
			b.Fatal(reason)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}

// BenchmarkVerifyHTTP and BenchmarkBareHTTP share the client loop, so the
// difference of their ns/op is what verification adds to a loopback HTTP
// round trip, and that of their p50-ns and p99-ns what it adds to the
// latency of one request. Allocations count both client and server, which
// run in this process.
func BenchmarkVerifyHTTP(b *testing.B) {
	ix, value := benchIndex(b, benchTokens(b))
	s := &Server{
		Verifier: &verify.Verifier{Index: ix, Clock: clock.RealClock{}, Teams: benchTeams()},
		// No token limit, so the loop never meets a 429; the limiter's cost
		// is still paid.
		Limiter:  ratelimit.New(ratelimit.Limits{RequestsPerToken: rate.Inf}, clock.RealClock{}),
		LastUsed: verify.NewLastUsed(),
	}
	benchmarkHTTP(b, s.Handler(), value)
}

func BenchmarkBareHTTP(b *testing.B) {
	_, value := benchIndex(b, 1)
	body := []byte(`{"user":"tokenwarden:ns:tok-0:uid-tok-0","name":"tok-0","namespace":"ns","type":"Team"}` + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	benchmarkHTTP(b, h, value)
}

// benchmarkHTTP sends GET /verify with value to h over loopback, one request
// at a time on one keep-alive connection, and reports the throughput and
// the 50th and 99th percentiles of the latency of a request, from sending
// it to having read its whole answer.
func benchmarkHTTP(b *testing.B, h http.Handler, value string) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/verify", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+value)
	lat := new(latencies)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		lat.record(time.Since(start))
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(lat.quantile(0.50), "p50-ns")
	b.ReportMetric(lat.quantile(0.99), "p99-ns")
}

// A latencies histogram is exact below 2^latencySubBits ns and above splits
// every doubling into latencyHalf buckets, so a percentile it reports is
// within 1/latencyHalf (1.6%) of the true one, whatever the scale. Unlike a
// slice of every sample, it records without allocating and keeps its size,
// so measuring the latency does not change the allocations or the garbage
// collection of what is measured.
const (
	latencySubBits = 7
	latencyHalf    = 1 << (latencySubBits - 1)
	latencyBuckets = (64-latencySubBits)*latencyHalf + 2*latencyHalf
)

// latencies is a histogram of durations.
type latencies struct {
	counts [latencyBuckets]uint64
	n      uint64
}

// record adds d; a negative d counts as zero.
func (l *latencies) record(d time.Duration) {
	l.counts[latencyBucket(uint64(max(d, 0)))]++
	l.n++
}

// quantile returns the duration, in nanoseconds, below which a fraction q of
// the recorded ones lie: the middle of the bucket holding the
// ceil(q*n)-th smallest. It returns 0 when nothing was recorded.
func (l *latencies) quantile(q float64) float64 {
	if l.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(l.n)))
	rank = min(max(rank, 1), l.n)
	var seen uint64
	for i, c := range l.counts {
		if seen += c; seen >= rank {
			low, width := latencyBucketRange(i)
			return float64(low) + float64(width-1)/2
		}
	}
	panic("unreachable: the counts add up to n")
}

// latencyBucket returns the bucket of ns nanoseconds.
func latencyBucket(ns uint64) int {
	if ns < 2*latencyHalf {
		return int(ns)
	}
	shift := bits.Len64(ns) - latencySubBits
	return shift*latencyHalf + int(ns>>shift)
}

// latencyBucketRange returns the smallest duration in bucket i and how many
// nanoseconds the bucket spans.
func latencyBucketRange(i int) (low, width uint64) {
	if i < 2*latencyHalf {
		return uint64(i), 1
	}
	shift := i/latencyHalf - 1
	return uint64(i-shift*latencyHalf) << shift, 1 << shift
}

func TestLatencies(t *testing.T) {
	tests := []struct {
		name    string
		samples []time.Duration
		q       float64
		want    float64
		// tolerance is the relative error allowed, 0 meaning exact.
		tolerance float64
	}{
		{name: "nothing recorded", q: 0.99, want: 0},
		{name: "one sample", samples: []time.Duration{100}, q: 0.5, want: 100},
		{name: "small values are exact", samples: []time.Duration{1, 2, 3, 4}, q: 0.5, want: 2},
		{name: "p99 of 1..100", samples: durations(1, 100), q: 0.99, want: 99},
		{name: "p100 is the largest", samples: durations(1, 100), q: 1, want: 100},
		{name: "p0 is the smallest", samples: durations(1, 100), q: 0, want: 1},
		{name: "negative counts as zero", samples: []time.Duration{-5}, q: 0.5, want: 0},
		{name: "microseconds", samples: []time.Duration{25 * time.Microsecond}, q: 0.5, want: 25_000, tolerance: 1.0 / latencyHalf},
		{name: "seconds", samples: []time.Duration{3 * time.Second}, q: 0.5, want: 3e9, tolerance: 1.0 / latencyHalf},
		{name: "the largest duration", samples: []time.Duration{math.MaxInt64}, q: 0.5, want: math.MaxInt64, tolerance: 1.0 / latencyHalf},
		{
			name:    "p99 skips the bulk",
			samples: append(repeat(20*time.Microsecond, 98), 80*time.Microsecond, 90*time.Microsecond),
			q:       0.99, want: 80_000, tolerance: 1.0 / latencyHalf,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			l := new(latencies)
			for _, d := range tt.samples {
				l.record(d)
			}
			got := l.quantile(tt.q)
			if tt.tolerance == 0 {
				g.Expect(got).To(Equal(tt.want))
			} else {
				g.Expect(got).To(BeNumerically("~", tt.want, tt.want*tt.tolerance))
			}
		})
	}
}

func TestLatencyBuckets(t *testing.T) {
	tests := []struct {
		name string
		ns   uint64
	}{
		{"zero", 0},
		{"last exact", 2*latencyHalf - 1},
		{"first shared", 2 * latencyHalf},
		{"25µs", 25_000},
		{"a power of two", 1 << 40},
		{"just below a power of two", 1<<40 - 1},
		{"the largest", math.MaxUint64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			i := latencyBucket(tt.ns)
			g.Expect(i).To(BeNumerically("<", latencyBuckets))
			low, width := latencyBucketRange(i)
			g.Expect(tt.ns).To(BeNumerically(">=", low))
			g.Expect(tt.ns - low).To(BeNumerically("<", width))
			if i+1 < latencyBuckets {
				next, _ := latencyBucketRange(i + 1)
				g.Expect(next).To(Equal(low+width), "buckets are contiguous")
			}
		})
	}
}

func durations(from, to time.Duration) []time.Duration {
	var out []time.Duration
	for d := from; d <= to; d++ {
		out = append(out, d)
	}
	return out
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}
