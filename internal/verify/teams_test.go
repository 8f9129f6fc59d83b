package verify

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	clocktesting "k8s.io/utils/clock/testing"

	b "github.com/tokenwarden/tokenwarden/internal/testobj"
)

func TestTeamTable(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	table := NewTeamTable(clk)
	payments := b.Team("payments", b.WithOwners(b.User("jane")), b.WithNamespaces("ns", "payments"))
	payments.Generation = 1
	table.Upsert(payments)
	_, err := table.Snapshot(ctx)
	g.Expect(err).To(MatchError(errTeamsNotSynced), "no answers before the initial list is in")

	g.Expect(table.PublishedAt()).To(BeZero(), "nothing published before the sync")

	table.MarkSynced()
	first, err := table.Snapshot(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(first.Names).To(Equal([]string{"payments"}))
	g.Expect(table.PublishedAt()).To(BeTemporally("==", clk.Now()))
	synced := clk.Now()
	clk.SetTime(synced.Add(time.Second))

	// A status write keeps the generation: nothing to publish.
	statusOnly := payments.DeepCopy()
	statusOnly.Status.ActiveTokens = 3
	table.Upsert(statusOnly)
	same, _ := table.Snapshot(ctx)
	g.Expect(same).To(BeIdenticalTo(first))
	g.Expect(table.PublishedAt()).To(BeTemporally("==", synced), "a status write is no Team change to verification")

	// A spec change does.
	changed := payments.DeepCopy()
	changed.Generation = 2
	changed.Spec.Owners = nil
	table.Upsert(changed)
	next, _ := table.Snapshot(ctx)
	g.Expect(next).NotTo(BeIdenticalTo(first))
	g.Expect(next.ByName["payments"].Spec.Owners).To(BeEmpty())
	// From this instant every verification judges by the changed Team:
	// the instant a revocation takes effect.
	g.Expect(table.PublishedAt()).To(BeTemporally("==", clk.Now()))

	table.Delete("payments")
	gone, _ := table.Snapshot(ctx)
	g.Expect(gone.Names).To(BeEmpty())
}

// TestTeamTableSyncedWhen: a table told how to know its informer has
// synced answers from the first question after that, with every Team
// delivered before it, and not before.
func TestTeamTableSyncedWhen(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	table := NewTeamTable(clocktesting.NewFakePassiveClock(time.Now()))
	var informerSynced atomic.Bool
	table.SyncedWhen(informerSynced.Load)
	table.Upsert(b.Team("payments", b.WithOwners(b.User("jane"))))
	g.Expect(table.Synced()).To(BeFalse())
	_, err := table.Snapshot(ctx)
	g.Expect(err).To(MatchError(errTeamsNotSynced))

	informerSynced.Store(true)
	snap, err := table.Snapshot(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(snap.Names).To(Equal([]string{"payments"}), "the Teams delivered before the sync are published")
	g.Expect(table.Synced()).To(BeTrue())
}
