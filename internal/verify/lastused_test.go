package verify

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
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
