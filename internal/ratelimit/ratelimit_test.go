package ratelimit

import (
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"golang.org/x/time/rate"
	clocktesting "k8s.io/utils/clock/testing"
)

// t0 is the instant every test starts at.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestLimiterClient(t *testing.T) {
	tests := []struct {
		name     string
		limits   Limits
		failures int
		after    time.Duration
		want     bool
		wantInfo Info
	}{
		{
			name:     "a client that never failed",
			limits:   Limits{FailuresPerClient: 1, FailureBurst: 3},
			want:     true,
			wantInfo: Info{Limit: 3, Remaining: 3},
		},
		{
			name:     "within the burst",
			limits:   Limits{FailuresPerClient: 1, FailureBurst: 3},
			failures: 2,
			want:     true,
			wantInfo: Info{Limit: 3, Remaining: 1, Reset: 2 * time.Second},
		},
		{
			name:     "burst spent",
			limits:   Limits{FailuresPerClient: 1, FailureBurst: 3},
			failures: 3,
			want:     false,
			wantInfo: Info{Limit: 3, Remaining: 0, Reset: 3 * time.Second, RetryAfter: time.Second},
		},
		{
			name:     "failures beyond the burst spend nothing more",
			limits:   Limits{FailuresPerClient: 1, FailureBurst: 3},
			failures: 10,
			want:     false,
			wantInfo: Info{Limit: 3, Remaining: 0, Reset: 3 * time.Second, RetryAfter: time.Second},
		},
		{
			name:     "part of the way to the next attempt",
			limits:   Limits{FailuresPerClient: 1, FailureBurst: 3},
			failures: 3,
			after:    400 * time.Millisecond,
			want:     false,
			wantInfo: Info{Limit: 3, Remaining: 0, Reset: 2600 * time.Millisecond, RetryAfter: 600 * time.Millisecond},
		},
		{
			name:     "one attempt earned back",
			limits:   Limits{FailuresPerClient: 1, FailureBurst: 3},
			failures: 3,
			after:    time.Second,
			want:     true,
			wantInfo: Info{Limit: 3, Remaining: 1, Reset: 2 * time.Second},
		},
		{
			name:     "slow refill",
			limits:   Limits{FailuresPerClient: rate.Every(time.Minute), FailureBurst: 1},
			failures: 1,
			want:     false,
			wantInfo: Info{Limit: 1, Remaining: 0, Reset: time.Minute, RetryAfter: time.Minute},
		},
		{
			name:     "limit off",
			limits:   Limits{FailuresPerClient: rate.Inf, FailureBurst: 1},
			failures: 100,
			want:     true,
			wantInfo: Info{Limit: 1, Remaining: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			clk := clocktesting.NewFakePassiveClock(t0)
			l := New(tt.limits, clk)
			for range tt.failures {
				l.ChargeFailure("192.0.2.1")
			}
			clk.SetTime(t0.Add(tt.after))
			info, ok := l.CheckClient("192.0.2.1")
			g.Expect(ok).To(Equal(tt.want))
			g.Expect(info).To(Equal(tt.wantInfo))

			// Another address has its own budget.
			_, ok = l.CheckClient("192.0.2.2")
			g.Expect(ok).To(BeTrue())
		})
	}
}

func TestLimiterChargeFailure(t *testing.T) {
	g := NewWithT(t)
	clk := clocktesting.NewFakePassiveClock(t0)
	l := New(Limits{FailuresPerClient: 1, FailureBurst: 2}, clk)

	info, ok := l.ChargeFailure("192.0.2.1")
	g.Expect(ok).To(BeTrue())
	g.Expect(info).To(Equal(Info{Limit: 2, Remaining: 1, Reset: time.Second}))
	info, ok = l.ChargeFailure("192.0.2.1")
	g.Expect(ok).To(BeTrue(), "the last attempt of the burst")
	g.Expect(info).To(Equal(Info{Limit: 2, Remaining: 0, Reset: 2 * time.Second, RetryAfter: time.Second}))
	for range 10 {
		info, ok = l.ChargeFailure("192.0.2.1")
		g.Expect(ok).To(BeFalse(), "over the budget")
		g.Expect(info).To(Equal(Info{Limit: 2, Remaining: 0, Reset: 2 * time.Second, RetryAfter: time.Second}), "and it spends nothing more")
	}

	clk.SetTime(t0.Add(time.Second))
	_, ok = l.ChargeFailure("192.0.2.1")
	g.Expect(ok).To(BeTrue(), "one attempt earned back, however long the client kept trying")
	_, ok = l.ChargeFailure("192.0.2.2")
	g.Expect(ok).To(BeTrue(), "another address has its own budget")
}

func TestLimiterToken(t *testing.T) {
	g := NewWithT(t)
	clk := clocktesting.NewFakePassiveClock(t0)
	l := New(Limits{RequestsPerToken: 10, TokenBurst: 2}, clk)
	digest := "digest-a"

	info, ok := l.CheckToken(digest)
	g.Expect(ok).To(BeTrue())
	g.Expect(info).To(Equal(Info{Limit: 2, Remaining: 1, Reset: 100 * time.Millisecond}))
	_, ok = l.CheckToken(digest)
	g.Expect(ok).To(BeTrue())
	info, ok = l.CheckToken(digest)
	g.Expect(ok).To(BeFalse(), "429 after the burst")
	g.Expect(info).To(Equal(Info{Limit: 2, Remaining: 0, Reset: 200 * time.Millisecond, RetryAfter: 100 * time.Millisecond}))

	_, ok = l.CheckToken("digest-b")
	g.Expect(ok).To(BeTrue(), "another token has its own budget")

	clk.SetTime(t0.Add(100 * time.Millisecond))
	_, ok = l.CheckToken(digest)
	g.Expect(ok).To(BeTrue(), "a request earned back")
}

func TestLimitsDefaults(t *testing.T) {
	g := NewWithT(t)
	g.Expect(Limits{}.withDefaults()).To(Equal(DefaultLimits()))
	custom := Limits{FailuresPerClient: 5, FailureBurst: 1, RequestsPerToken: 7, TokenBurst: 2, MaxClients: 3, MaxTokens: 4}
	g.Expect(custom.withDefaults()).To(Equal(custom))
}

func TestLimiterBoundsClients(t *testing.T) {
	g := NewWithT(t)
	l := New(Limits{MaxClients: 1000, MaxTokens: 10}, clocktesting.NewFakePassiveClock(t0))
	for i := range 100_000 {
		addr := "10." + strconv.Itoa(i>>16) + "." + strconv.Itoa(i>>8&0xff) + "." + strconv.Itoa(i&0xff)
		if _, ok := l.CheckClient(addr); ok {
			l.ChargeFailure(addr)
		}
	}
	g.Expect(l.clients.len()).To(Equal(1000))
	g.Expect(l.tokens.len()).To(BeZero(), "failures never create token limiters")
}

func TestLimiterBoundsTokens(t *testing.T) {
	g := NewWithT(t)
	l := New(Limits{MaxTokens: 100}, clocktesting.NewFakePassiveClock(t0))
	for i := range 10_000 {
		l.CheckToken("digest-" + strconv.Itoa(i))
	}
	g.Expect(l.tokens.len()).To(Equal(100))
}

func TestLimiterEvictsLeastRecentlyUsed(t *testing.T) {
	g := NewWithT(t)
	l := New(Limits{FailuresPerClient: 1, FailureBurst: 1, MaxClients: 2}, clocktesting.NewFakePassiveClock(t0))
	l.ChargeFailure("a")
	l.ChargeFailure("b")
	// a client still hammering stays remembered, and so limited.
	_, ok := l.CheckClient("a")
	g.Expect(ok).To(BeFalse())
	l.ChargeFailure("c")

	_, ok = l.CheckClient("a")
	g.Expect(ok).To(BeFalse(), "a was used more recently than b")
	_, ok = l.CheckClient("b")
	g.Expect(ok).To(BeTrue(), "b was forgotten")
}
