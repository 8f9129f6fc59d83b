package verify

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	b "github.com/tokenwarden/tokenwarden/internal/testobj"
)

func TestLastUsed(t *testing.T) {
	a, c := key("ns", "a"), key("ns", "c")
	type record struct {
		key types.NamespacedName
		at  time.Time
	}
	tests := []struct {
		name    string
		records []record
		want    map[types.NamespacedName]time.Time
	}{
		{name: "nothing", want: map[types.NamespacedName]time.Time{}},
		{name: "one", records: []record{{a, t0}}, want: map[types.NamespacedName]time.Time{a: t0}},
		{
			name:    "the latest wins, whatever the order",
			records: []record{{a, t0.Add(time.Minute)}, {a, t0}, {c, t0}, {a, t0.Add(time.Second)}},
			want:    map[types.NamespacedName]time.Time{a: t0.Add(time.Minute), c: t0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			l := NewLastUsed()
			for _, r := range tt.records {
				l.Record(r.key, r.at)
			}
			g.Expect(l.Drain()).To(Equal(tt.want))
			g.Expect(l.Drain()).To(BeEmpty(), "a drain forgets")
		})
	}
}

// TestConcurrentUse exercises the index, verifier, limiter and last-use
// record from many goroutines at once; run with -race.
func TestConcurrentUse(t *testing.T) {
	g := NewWithT(t)
	values := make([]string, 20)
	ix := NewIndex()
	for i := range values {
		values[i] = newValue(t, v1alpha1.TeamTokenType)
		ix.Upsert(issued("tok-"+strconv.Itoa(i), "ns", values[i], []b.ApiTokenOption{b.TeamToken("a")}, withCreator("jane")))
	}
	s := &Server{Verifier: &Verifier{Index: ix, Clock: clock.RealClock{}, Teams: teamsFunc(b.Team("a", b.WithOwners(b.User("jane")), b.WithNamespaces("ns", "payments")))}, Limiter: NewLimiter(Limits{}, clock.RealClock{}), LastUsed: NewLastUsed()}
	ctx := context.Background()

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				v := values[(w+i)%len(values)]
				switch i % 5 {
				case 0:
					// Re-issuing the same value keeps it verifying.
					ix.Upsert(issued("tok-"+strconv.Itoa((w+i)%len(values)), "ns", v, []b.ApiTokenOption{b.TeamToken("a")}, withCreator("jane")))
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
