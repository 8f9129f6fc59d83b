package verify

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/builder"
)

// benchIndex indexes n Team tokens and returns one value from the middle.
func benchIndex(tb testing.TB, n int) (*Index, string) {
	ix := NewIndex()
	var target string
	opts := []builder.ApiTokenOption{builder.TeamToken("payments", "orders"), builder.WithScopes("read:orders", "write:orders")}
	for i := range n {
		v := newValue(tb, v1alpha1.TeamTokenType)
		ix.Upsert(issued("tok-"+strconv.Itoa(i), "ns", v, opts,
			withStatusCreator("jane@example.com"), withExpiry(time.Now().Add(time.Hour))))
		if i == n/2 {
			target = v
		}
	}
	return ix, target
}

func BenchmarkVerifyInProcess(b *testing.B) {
	ix, value := benchIndex(b, 10_000)
	v := &Verifier{Index: ix, Clock: clock.RealClock{}}
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
// round trip. Allocations count both client and server, which run in this
// process.
func BenchmarkVerifyHTTP(b *testing.B) {
	ix, value := benchIndex(b, 10_000)
	s := &Server{
		Verifier: &Verifier{Index: ix, Clock: clock.RealClock{}},
		// No token limit, so the loop never meets a 429; the limiter's cost
		// is still paid.
		Limiter:  NewLimiter(Limits{RequestsPerToken: rate.Inf}, nil),
		LastUsed: NewLastUsed(),
	}
	benchmarkHTTP(b, s.Handler(), value)
}

func BenchmarkBareHTTP(b *testing.B) {
	_, value := benchIndex(b, 1)
	body := []byte(`{"user":"tokenwarden:ns:tok-0","name":"tok-0","namespace":"ns","type":"Team"}` + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	benchmarkHTTP(b, h, value)
}

func benchmarkHTTP(b *testing.B, h http.Handler, value string) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/verify", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+value)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}
