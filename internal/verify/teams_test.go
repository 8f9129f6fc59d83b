package verify

import (
	"context"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"

	b "github.com/tokenwarden/tokenwarden/internal/testobj"
)

func TestTeamTable(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	table := NewTeamTable()
	payments := b.Team("payments", b.WithOwners(b.User("jane")), b.WithNamespaces("ns", "payments"))
	payments.Generation = 1
	table.Upsert(payments)
	_, err := table.Snapshot(ctx)
	g.Expect(err).To(MatchError(errTeamsNotSynced), "no answers before the initial list is in")

	table.MarkSynced()
	first, err := table.Snapshot(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(first.Names).To(Equal([]string{"payments"}))

	// A status write keeps the generation: nothing to publish.
	statusOnly := payments.DeepCopy()
	statusOnly.Status.ActiveTokens = 3
	table.Upsert(statusOnly)
	same, _ := table.Snapshot(ctx)
	g.Expect(same).To(BeIdenticalTo(first))

	// A spec change does.
	changed := payments.DeepCopy()
	changed.Generation = 2
	changed.Spec.Owners = nil
	table.Upsert(changed)
	next, _ := table.Snapshot(ctx)
	g.Expect(next).NotTo(BeIdenticalTo(first))
	g.Expect(next.ByName["payments"].Spec.Owners).To(BeEmpty())

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
	table := NewTeamTable()
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
