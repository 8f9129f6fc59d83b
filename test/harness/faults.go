package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
)

// FaultOptions configure a fault-injection run.
type FaultOptions struct {
	// Cycles is how many times the operator is killed.
	Cycles int
	// Batch is how many tokens a cycle creates, recreates or invalidates.
	Batch int
	// MaxDelay bounds the random moment of the kill after the cycle's
	// writes; the operator works through a batch in roughly this long.
	MaxDelay time.Duration
	// Settle bounds how long the operator may take to catch up after a
	// restart before its tokens count as stuck.
	Settle time.Duration
	// Seed makes the kill moments repeatable.
	Seed uint64
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// FaultReport is what a fault-injection run found.
type FaultReport struct {
	Cycles       int `json:"crash_cycles"`
	Tokens       int `json:"tokens"`
	Recreates    int `json:"recreates"`
	Invalidated  int `json:"invalidated"`
	TokensLost   int `json:"tokens_lost"`
	DoubleIssued int `json:"tokens_double_issued"`
	Stuck        int `json:"tokens_stuck"`
	// KilledMidWork counts the cycles whose kill found tokens unsettled,
	// so the kills are known to have landed in the middle of the work.
	KilledMidWork int `json:"crash_cycles_mid_work"`
	// WatchGaps counts the times the record of delivered values missed
	// events; with a gap, a double issuance could go unseen.
	WatchGaps int64 `json:"watch_gaps"`
	// MaxSettle is the longest a restarted operator took to catch up.
	MaxSettle time.Duration `json:"-"`
	// Problems names the first few tokens that broke an invariant.
	Problems []string `json:"-"`
}

// RunFaults kills the operator with SIGKILL at random moments of mass
// issuance, recreation and invalidation, restarts it, and after every
// cycle checks that every token settles, every Active token's Secret holds
// the value its status describes, and no delivered value was replaced
// without a recreate.
func RunFaults(ctx context.Context, c *Cluster, binary, namespace string, o FaultOptions) (FaultReport, error) {
	var report FaultReport
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	if err := c.EnsureNamespace(ctx, namespace); err != nil {
		return report, err
	}
	deliveries, err := c.TrackDeliveries(ctx, namespace)
	if err != nil {
		return report, err
	}
	if err := c.Admin.Create(ctx, Team(namespace+"-stable", []string{namespace})); client.IgnoreAlreadyExists(err) != nil {
		return report, err
	}
	start := func() (*Operator, error) {
		op, err := c.StartOperator(binary, OperatorOptions{Name: "fault"})
		if err != nil {
			return nil, err
		}
		_, err = op.WaitReady(ctx, time.Minute)
		return op, err
	}
	op, err := start()
	if err != nil {
		return report, err
	}
	defer func() { op.Stop() }()

	recreates := map[string]int{} // token name -> recreates asked
	var active []string           // tokens expected to stay Active
	var doomed []string           // Teams whose owner is still to be removed
	doomedTokens := map[string][]string{}
	var invalidated []string // tokens whose Team no longer has their creator
	// stillValid names every token whose creator lost their Team but that
	// is not Invalidated yet.
	stillValid := func(ch Check) []string {
		var out []string
		for _, name := range invalidated {
			if ch.PhaseOf[name] != v1alpha1.PhaseInvalidated {
				out = append(out, name+": not invalidated yet")
			}
		}
		return out
	}
	created := 0
	for cycle := range o.Cycles {
		kind := cycle % 3
		if kind == 2 && len(doomed) == 0 {
			kind = 0
		}
		var what string
		switch kind {
		case 0: // mass issuance
			team := namespace + "-stable"
			if cycle%2 == 1 {
				team = fmt.Sprintf("%s-doomed-%d", namespace, cycle)
				if err := c.Admin.Create(ctx, Team(team, []string{namespace})); err != nil {
					return report, err
				}
				doomed = append(doomed, team)
			}
			names, err := c.CreateTokens(ctx, namespace, fmt.Sprintf("c%d", cycle), team, o.Batch, 8)
			if err != nil {
				return report, err
			}
			created += len(names)
			if team == namespace+"-stable" {
				active = append(active, names...)
			} else {
				doomedTokens[team] = names
			}
			what = fmt.Sprintf("issuing %d", len(names))
		case 1: // mass recreation
			picked := pick(rng, active, o.Batch)
			if err := Parallel(len(picked), 8, func(i int) error {
				return bumpRecreate(ctx, c.Admin, namespace, picked[i])
			}); err != nil {
				return report, err
			}
			for _, name := range picked {
				recreates[name]++
			}
			report.Recreates += len(picked)
			what = fmt.Sprintf("recreating %d", len(picked))
		case 2: // mass invalidation
			team := doomed[0]
			doomed = doomed[1:]
			current := &v1alpha1.Team{}
			if err := c.Admin.Get(ctx, client.ObjectKey{Name: team}, current); err != nil {
				return report, err
			}
			base := current.DeepCopy()
			current.Spec.Owners = []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "someone-else"}}
			if err := c.Admin.Patch(ctx, current, client.MergeFrom(base)); err != nil {
				return report, err
			}
			report.Invalidated += len(doomedTokens[team])
			invalidated = append(invalidated, doomedTokens[team]...)
			what = fmt.Sprintf("invalidating %d", len(doomedTokens[team]))
		}
		delay := time.Duration(rng.Int64N(int64(o.MaxDelay) + 1))
		if cycle%4 == 3 {
			// Every fourth kill follows the writes at once, so some kills
			// surely land while the batch is being worked on, whatever
			// the machine's speed.
			delay = 0
		}
		time.Sleep(delay)
		// The moment before the kill, was work in flight?
		if before, err := c.CheckTokens(ctx, namespace); err == nil && len(stillValid(before))+len(before.Unsettled)+len(before.Lost) > 0 {
			report.KilledMidWork++
		}
		op.Kill()
		if op, err = start(); err != nil {
			return report, err
		}
		check, took, err := c.WaitSettled(ctx, namespace, o.Settle, stillValid)
		if err != nil && !errors.Is(err, ErrNotSettled) {
			return report, err
		}
		report.Cycles++
		report.MaxSettle = max(report.MaxSettle, took)
		if o.Logf != nil {
			o.Logf("cycle %d: killed %v after %s; settled in %v; phases %v", cycle+1, delay.Round(time.Millisecond), what, took.Round(time.Millisecond), check.Phases)
		}
		if !check.Settled() {
			report.Stuck = len(check.Unsettled)
			report.TokensLost = len(check.Lost)
			report.Problems = append(report.Problems, first(check.Unsettled, 5)...)
			report.Problems = append(report.Problems, first(check.Lost, 5)...)
			break
		}
	}
	report.Tokens = created
	report.WatchGaps = c.WatchGaps.Load()
	// A Secret may hold a new value only on a recreate: more distinct
	// values than 1 + recreates is a delivered value replaced.
	for _, name := range active {
		if got, allowed := deliveries.Distinct(namespace+"/"+name), 1+recreates[name]; got > allowed {
			report.DoubleIssued++
			report.Problems = append(report.Problems, fmt.Sprintf("%s: %d values delivered for %d recreates", name, got, recreates[name]))
		}
	}
	for _, names := range doomedTokens {
		for _, name := range names {
			if got := deliveries.Distinct(namespace + "/" + name); got > 1 {
				report.DoubleIssued++
				report.Problems = append(report.Problems, fmt.Sprintf("%s: %d values delivered without a recreate", name, got))
			}
		}
	}
	return report, nil
}

// bumpRecreate asks for a new value of namespace/name, as `kubectl
// tokenwarden recreate` does.
func bumpRecreate(ctx context.Context, c client.Client, namespace, name string) error {
	tok := &v1alpha1.ApiToken{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, tok); err != nil {
		return err
	}
	base := tok.DeepCopy()
	tok.Spec.Recreate++
	return c.Patch(ctx, tok, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

func pick(rng *rand.Rand, from []string, n int) []string {
	shuffled := append([]string(nil), from...)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	return shuffled[:min(n, len(shuffled))]
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }
