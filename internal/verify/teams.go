package verify

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
)

// TeamSnapshot is the Teams that exist at one moment. Both fields are
// shared by every verification that reads the snapshot: read-only.
type TeamSnapshot struct {
	// ByName holds every Team by name.
	ByName authz.Teams
	// Names are the names of ByName, sorted: the teams of an admin's
	// Wildcard token.
	Names []string
}

// TeamSource tells the verifier which Teams exist now.
type TeamSource interface {
	Snapshot(ctx context.Context) (*TeamSnapshot, error)
}

// errTeamsNotSynced is returned until the informer has delivered every
// Team: answering before that would refuse Team tokens as if their team had
// been deleted.
var errTeamsNotSynced = errors.New("the Team informer has not delivered every Team yet")

var emptyTeams = &TeamSnapshot{ByName: authz.Teams{}, Names: noStrings}

// TeamTable is a TeamSource kept by informer events. A Team change builds a
// new snapshot, which costs O(teams) but happens rarely; a verification
// only loads a pointer, so checking a creator's standing on every request
// costs map lookups and no lock.
type TeamTable struct {
	mu     sync.Mutex
	teams  map[string]*v1alpha1.Team
	snap   atomic.Pointer[TeamSnapshot]
	synced atomic.Bool
	// hasSynced, when set, tells whether the informer has delivered every
	// Team that existed at start; see SyncedWhen.
	hasSynced func() bool
	// clock dates each snapshot; publishedAt is the date of the current
	// one in Unix nanoseconds, 0 before the first.
	clock       clock.PassiveClock
	publishedAt atomic.Int64
}

// NewTeamTable returns an empty TeamTable that answers only once
// MarkSynced is called, or SyncedWhen's function says so. clk, the
// process's one clock, dates each Team change the table takes in.
func NewTeamTable(clk clock.PassiveClock) *TeamTable {
	t := &TeamTable{teams: map[string]*v1alpha1.Team{}, clock: clk}
	t.snap.Store(emptyTeams)
	return t
}

// Upsert records team. The table keeps the pointer: informers hand out
// objects that nobody changes, and the caller must not change it either. A
// Team being deleted counts as deleted from its deletionTimestamp on,
// whatever finalizer still holds it.
func (t *TeamTable) Upsert(team *v1alpha1.Team) {
	if !authz.Exists(team) {
		t.Delete(team.Name)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old, known := t.teams[team.Name]
	t.teams[team.Name] = team
	// Only the spec matters to verification, and a status write (every
	// second of a busy team) leaves the generation as it was.
	if known && old.UID == team.UID && old.Generation == team.Generation {
		return
	}
	t.publish()
}

// Delete forgets the Team called name.
func (t *TeamTable) Delete(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, known := t.teams[name]; !known {
		return // a Team being deleted is upserted with every status write
	}
	delete(t.teams, name)
	t.publish()
}

// MarkSynced says every Team that existed at start has been delivered.
func (t *TeamTable) MarkSynced() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.synced.Store(true)
	t.publish()
}

// SyncedWhen makes the table synced as soon as hasSynced, an informer
// registration's HasSynced, says every Team that existed at start was
// delivered: the first question after that marks it, so no goroutine has
// to wait for the informer. Call it before the table is used.
func (t *TeamTable) SyncedWhen(hasSynced func() bool) { t.hasSynced = hasSynced }

// Synced reports whether the table answers: MarkSynced was called, or the
// function given to SyncedWhen says the informer has synced.
func (t *TeamTable) Synced() bool {
	if t.synced.Load() {
		return true
	}
	if t.hasSynced == nil || !t.hasSynced() {
		return false
	}
	t.MarkSynced()
	return true
}

// publish replaces the snapshot; t.mu must be held. Until the table is
// synced nobody reads it, so the initial list is published once, not once
// per Team.
func (t *TeamTable) publish() {
	if !t.synced.Load() {
		return
	}
	snap := &TeamSnapshot{ByName: make(authz.Teams, len(t.teams)), Names: make([]string, 0, len(t.teams))}
	for name, team := range t.teams {
		snap.ByName[name] = team
		snap.Names = append(snap.Names, name)
	}
	slices.Sort(snap.Names)
	t.snap.Store(snap)
	// Read after the store, so no verification that judged by the old
	// snapshot can start after the instant recorded.
	t.publishedAt.Store(t.clock.Now().UnixNano())
}

// PublishedAt is when the table last took a Team change in, or its initial
// Teams: they are taken in at the first question after the informer synced
// (Synced), so it is zero until then. Every verification that starts
// after it judges creators by the Teams as changed, so it is the instant a
// Team change, such as an owner's removal, takes effect for every token it
// concerns.
func (t *TeamTable) PublishedAt() time.Time {
	if at := t.publishedAt.Load(); at != 0 {
		return time.Unix(0, at)
	}
	return time.Time{}
}

// Snapshot implements TeamSource.
func (t *TeamTable) Snapshot(context.Context) (*TeamSnapshot, error) {
	if !t.Synced() {
		return nil, errTeamsNotSynced
	}
	return t.snap.Load(), nil
}

// StaticTeams is a TeamSource that always answers the same Teams, for
// tests and in-process use.
func StaticTeams(teams ...*v1alpha1.Team) TeamSource {
	table := NewTeamTable(clock.RealClock{})
	for _, team := range teams {
		table.Upsert(team)
	}
	table.MarkSynced()
	return table
}
