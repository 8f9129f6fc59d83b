// Command bench measures the operator binary against a real control plane
// and writes bin/bench/results.json and docs/benchmarks.md, together with
// the verification figures hack/bench.sh measured before it. Every figure
// that depends on the machine is a ratio against a baseline measured in the
// same run, or a count; absolute times are reported for information.
//
// Run it through `make bench`.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/test/harness"
)

type options struct {
	verifyJSON, results, doc   string
	render                     bool
	n, scale, revoke, expiring int
	unrelated, cycles          int
	idle                       time.Duration
	workers                    int
}

func main() {
	var o options
	flag.StringVar(&o.verifyJSON, "verify", "bin/bench/verify.json", "Verification figures measured by hack/bench.sh.")
	flag.StringVar(&o.results, "results", "bin/bench/results.json", "Where the figures go.")
	flag.StringVar(&o.doc, "doc", "docs/benchmarks.md", "Where the report goes.")
	flag.IntVar(&o.n, "n", 2000, "Tokens (and plain Secrets) of the issuance ratio.")
	flag.IntVar(&o.scale, "scale", 10_000, "Active tokens for the memory and start-up figures.")
	flag.IntVar(&o.revoke, "revoke", 1000, "Tokens refused by one Team owner's removal.")
	flag.IntVar(&o.expiring, "expiring", 100, "Tokens expiring at one instant.")
	flag.IntVar(&o.unrelated, "unrelated", 10_000, "Unrelated 32 KB Secrets.")
	flag.IntVar(&o.cycles, "cycles", 200, "SIGKILL cycles of the fault injection.")
	flag.DurationVar(&o.idle, "idle", time.Minute, "Idle window for idle_writes_per_min.")
	flag.IntVar(&o.workers, "workers", 16, "Concurrent requests of the harness.")
	flag.BoolVar(&o.render, "render", false, "Only write the report from the figures in -results.")
	flag.Parse()
	// The harness's clients log nothing worth reading here.
	ctrllog.SetLogger(logr.Discard())
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// results are the figures; the JSON keys are the issue's.
type results map[string]any

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(ctx context.Context, o options) error {
	res := results{}
	if o.render {
		data, err := os.ReadFile(o.results)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &res); err != nil {
			return err
		}
		return writeDoc(o.doc, res)
	}
	if data, err := os.ReadFile(o.verifyJSON); err == nil {
		if err := json.Unmarshal(data, &res); err != nil {
			return fmt.Errorf("%s: %w", o.verifyJSON, err)
		}
	} else {
		logf("no verification figures (%v); run hack/bench.sh for them", err)
	}
	dir, err := os.MkdirTemp("", "tokenwarden-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	binary, err := harness.Build(root, dir)
	if err != nil {
		return err
	}
	started := time.Now()
	if err := clusterFigures(ctx, o, dir, binary, res); err != nil {
		return err
	}
	if err := faultFigures(ctx, o, dir, binary, res); err != nil {
		return err
	}
	res["bench_minutes"] = round(time.Since(started).Minutes(), 1)
	if err := writeJSON(o.results, res); err != nil {
		return err
	}
	return writeDoc(o.doc, res)
}

// clusterFigures measures one operator (webhooks on, leader election on)
// on a control plane of its own.
func clusterFigures(ctx context.Context, o options, dir, binary string, res results) error {
	cdir := filepath.Join(dir, "cluster")
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return err
	}
	c, err := harness.StartCluster(cdir, true)
	if err != nil {
		return err
	}
	defer func() { _ = c.Stop() }()
	for _, ns := range []string{"bench-secrets", "bench-tokens", "bench-revoke", "bench-expiry", "bench-unrelated"} {
		if err := c.EnsureNamespace(ctx, ns); err != nil {
			return err
		}
	}
	op, err := c.StartOperator(binary, harness.OperatorOptions{Name: "bench", LeaderElect: true, Webhooks: true})
	if err != nil {
		return err
	}
	defer func() { op.Stop() }()
	if _, err := op.WaitReady(ctx, 2*time.Minute); err != nil {
		return err
	}
	// Leader election runs on the side: wait for this replica to lead.
	for leads := false; !leads; leads, _ = op.IsLeader(ctx) {
		time.Sleep(50 * time.Millisecond)
	}
	// Teams pass admission, which this operator serves.
	bench := harness.Team("bench", []string{"bench-tokens", "bench-expiry"})
	revoke := harness.Team("revoke", []string{"bench-revoke"}, "someone-else")
	for _, team := range []*v1alpha1.Team{bench, revoke} {
		if err := c.Admin.Create(ctx, team); err != nil {
			return err
		}
	}

	// Issuance: plain Secrets, then tokens, by the same harness.
	logf("creating %d plain Secrets", o.n)
	start := time.Now()
	if err := c.CreateSecrets(ctx, "bench-secrets", "plain", o.n, o.workers, 64); err != nil {
		return err
	}
	secretsPerSec := float64(o.n) / time.Since(start).Seconds()

	logf("creating %d ApiTokens and waiting for them to be Active", o.n)
	before, err := c.WritesNow(ctx)
	if err != nil {
		return err
	}
	activeAt, err := watchActive(ctx, c, "bench-tokens")
	if err != nil {
		return err
	}
	start = time.Now()
	if _, err := c.CreateTokens(ctx, "bench-tokens", "tok", "bench", o.n, o.workers); err != nil {
		return err
	}
	res["issuance_created_per_sec"] = round(float64(o.n)/time.Since(start).Seconds(), 1)
	last, err := activeAt.waitFor(o.n, 10*time.Minute)
	if err != nil {
		return err
	}
	tokensPerSec := float64(o.n) / last.Sub(start).Seconds()
	// Trailing writes (the Team's status, batched Events) land within
	// moments.
	time.Sleep(5 * time.Second)
	after, err := c.WritesNow(ctx)
	if err != nil {
		return err
	}
	writes := after.Minus(before)
	writes["apitokens"] -= float64(o.n) // the harness's own creates
	operatorWrites := writes.Total(func(r string) bool { return !harness.VirtualResources[r] && r != "leases" })
	res["issuance_ratio"] = round(tokensPerSec/secretsPerSec, 3)
	res["issuance_tokens_per_sec"] = round(tokensPerSec, 1)
	res["issuance_secrets_per_sec"] = round(secretsPerSec, 1)
	res["issuance_n"] = o.n
	res["writes_per_token"] = round(operatorWrites/float64(o.n), 3)
	res["writes_per_token_by_resource"] = perToken(writes, o.n)
	logf("issuance: %.0f tokens/s vs %.0f Secrets/s; writes %v", tokensPerSec, secretsPerSec, writes)

	// Idle.
	logf("idle for %v with %d Active tokens", o.idle, o.n)
	before, err = c.WritesNow(ctx)
	if err != nil {
		return err
	}
	time.Sleep(o.idle)
	after, err = c.WritesNow(ctx)
	if err != nil {
		return err
	}
	idle := after.Minus(before)
	perMin := func(n float64) float64 { return round(n/o.idle.Minutes(), 1) }
	res["idle_writes_per_min"] = perMin(idle.Total(func(r string) bool { return !harness.VirtualResources[r] && r != "leases" }))
	res["idle_lease_writes_per_min"] = perMin(idle["leases"])
	res["idle_active_tokens"] = o.n

	if err := revocation(ctx, o, c, op, res); err != nil {
		return err
	}
	if err := expiry(ctx, o, c, res); err != nil {
		return err
	}

	logf("flooding /verify with unique bad tokens for 10s")
	values, err := c.WaitValues(ctx, "bench-tokens", []string{"tok-1", "tok-2", "tok-3", "tok-4"}, time.Minute)
	if err != nil {
		return err
	}
	flood, err := harness.Flood(ctx, op, slices.Collect(maps.Values(values)), 10*time.Second)
	if err != nil {
		return err
	}
	res["flood_good_ok_ratio"] = round(float64(flood.GoodOK)/float64(max(flood.Good, 1)), 4)
	res["flood_bad_requests"] = flood.Spread + flood.Single
	res["flood_spread_401_ratio"] = round(float64(flood.Spread401)/float64(max(flood.Spread, 1)), 4)
	res["flood_single_source_429_ratio"] = round(float64(flood.Single429)/float64(max(flood.Single, 1)), 4)
	res["flood_429_missing_headers"] = flood.SingleBad429
	res["flood_rss_growth_mb"] = mb(flood.RSSAfter - flood.RSSBefore)

	// Scale to the memory figures' token count.
	if more := o.scale - o.n; more > 0 {
		logf("creating %d more ApiTokens (%d Active in all)", more, o.scale)
		scaled, err := watchActive(ctx, c, "bench-tokens")
		if err != nil {
			return err
		}
		if _, err := c.CreateTokens(ctx, "bench-tokens", "more", "bench", more, o.workers); err != nil {
			return err
		}
		if _, err := scaled.waitFor(o.scale, 20*time.Minute); err != nil {
			return err
		}
	}
	time.Sleep(10 * time.Second)
	rss, err := op.RSSBytes()
	if err != nil {
		return err
	}
	res["rss_after_issuing_10k_mb"] = mb(rss)

	logf("restarting the operator with %d Active tokens", o.scale)
	op.Stop()
	if op, err = c.StartOperator(binary, harness.OperatorOptions{Name: "bench", LeaderElect: true, Webhooks: true}); err != nil {
		return err
	}
	took, err := op.WaitReady(ctx, 5*time.Minute)
	if err != nil {
		return err
	}
	res["startup_ready_s"] = round(took.Seconds(), 2)
	time.Sleep(15 * time.Second)
	if rss, err = op.RSSBytes(); err != nil {
		return err
	}
	res["rss_10k_tokens_mb"] = mb(rss)

	logf("creating %d unrelated 32 KB Secrets", o.unrelated)
	if err := c.CreateSecrets(ctx, "bench-unrelated", "unrelated", o.unrelated, o.workers, 32<<10); err != nil {
		return err
	}
	time.Sleep(15 * time.Second)
	grown, err := op.RSSBytes()
	if err != nil {
		return err
	}
	res["rss_growth_unrelated_secrets_mb"] = mb(grown - rss)
	return nil
}

// revocation takes the owner off a Team with o.revoke tokens and measures,
// per token, when the verifier first refuses it.
func revocation(ctx context.Context, o options, c *harness.Cluster, op *harness.Operator, res results) error {
	logf("revocation: %d tokens of one Team owner", o.revoke)
	active, err := watchActive(ctx, c, "bench-revoke")
	if err != nil {
		return err
	}
	names, err := c.CreateTokens(ctx, "bench-revoke", "rev", "revoke", o.revoke, o.workers)
	if err != nil {
		return err
	}
	if _, err := active.waitFor(o.revoke, 10*time.Minute); err != nil {
		return err
	}
	values, err := c.WaitValues(ctx, "bench-revoke", names, time.Minute)
	if err != nil {
		return fmt.Errorf("revocation: %w", err)
	}
	invalidated, err := watchPhase(ctx, c, "bench-revoke", v1alpha1.PhaseInvalidated)
	if err != nil {
		return err
	}

	// Each worker polls its share of the tokens in a loop, each token from
	// an address of its own (so one token's refusal does not spend another's
	// failure budget), and records when each was first refused. A token's
	// time is therefore an upper bound: the refusal happened at most one
	// loop of its worker earlier.
	const workers = 16
	refusedAt := make([]time.Time, len(names))
	// lastOK is when the last request answered 200 was sent: the refusal
	// happened after it, which bounds each token's time from below.
	lastOK := make([]time.Time, len(names))
	var t0 atomic.Pointer[time.Time]
	var pending atomic.Int64
	pending.Store(int64(len(names)))
	var wg sync.WaitGroup
	var unexpected atomic.Int64
	deadline := time.Now().Add(time.Minute)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pending.Load() > 0 && time.Now().Before(deadline) {
				for i := w; i < len(names); i += workers {
					if !refusedAt[i].IsZero() {
						continue
					}
					sent := time.Now()
					code, reason, err := op.Verify(ctx, values[names[i]], fmt.Sprintf("10.200.%d.%d", i>>8, i&0xff))
					if err != nil {
						unexpected.Add(1)
						continue
					}
					if code == http.StatusOK {
						lastOK[i] = sent
						continue
					}
					if t0.Load() == nil || reason != "Invalidated" {
						unexpected.Add(1)
						continue
					}
					refusedAt[i] = time.Now()
					pending.Add(-1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // the pollers are running
	team := &v1alpha1.Team{}
	if err := c.Admin.Get(ctx, client.ObjectKey{Name: "revoke"}, team); err != nil {
		return err
	}
	base := team.DeepCopy()
	team.Spec.Owners = []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: "someone-else"}}
	// Owners are an admin's to change. The clock starts as the request
	// leaves, so the figure includes admission (the Team webhook works out
	// which tokens the change invalidates) and the write itself.
	now := time.Now()
	t0.Store(&now)
	if err := c.Admin.Patch(ctx, team, client.MergeFrom(base)); err != nil {
		return err
	}
	patched := time.Since(now)
	wg.Wait()
	var lat, lower []float64
	for i, at := range refusedAt {
		if at.IsZero() {
			return fmt.Errorf("revocation: %d tokens still verify a minute after their owner's removal", pending.Load())
		}
		lat = append(lat, float64(at.Sub(now).Microseconds())/1000)
		lower = append(lower, max(0, float64(lastOK[i].Sub(now).Microseconds())/1000))
	}
	all, err := invalidated.waitFor(o.revoke, 5*time.Minute)
	if err != nil {
		return err
	}
	res["revocation_ms_p99"] = round(percentile(lat, 99), 1)
	res["revocation_ms_p99_lower_bound"] = round(percentile(lower, 99), 1)
	res["revocation_ms_p50"] = round(percentile(lat, 50), 1)
	res["revocation_ms_max"] = round(percentile(lat, 100), 1)
	res["revocation_tokens"] = o.revoke
	res["revocation_patch_ms"] = round(float64(patched.Microseconds())/1000, 1)
	res["revocation_unexpected_answers"] = unexpected.Load()
	res["invalidation_all_phase_s"] = round(all.Sub(now).Seconds(), 2)
	logf("revocation: p50 %.1f ms, p99 %.1f ms; all Invalidated after %v", percentile(lat, 50), percentile(lat, 99), all.Sub(now))
	return nil
}

// expiry issues tokens expiring at one instant and measures when their
// Secrets lose the value.
func expiry(ctx context.Context, o options, c *harness.Cluster, res results) error {
	logf("expiry: %d tokens expiring at one instant", o.expiring)
	at := metav1.NewTime(time.Now().Add(40 * time.Second).Truncate(time.Second))
	active, err := watchActive(ctx, c, "bench-expiry")
	if err != nil {
		return err
	}
	if _, err := c.CreateTokens(ctx, "bench-expiry", "exp", "bench", o.expiring, o.workers, func(t *v1alpha1.ApiToken) {
		t.Spec.ExpiresAt = &at
	}); err != nil {
		return err
	}
	if _, err := active.waitFor(o.expiring, 5*time.Minute); err != nil {
		return err
	}
	if time.Now().After(at.Time) {
		return fmt.Errorf("expiry: tokens became Active after their expiry; raise the lead time")
	}
	var mu sync.Mutex
	gone := map[string]time.Time{}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := c.Watch(wctx, &corev1.SecretList{}, func(ev watch.EventType, obj client.Object) {
		secret, ok := obj.(*corev1.Secret)
		if !ok || (ev != watch.Deleted && len(secret.Data[v1alpha1.SecretTokenKey]) > 0) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, seen := gone[secret.Name]; !seen {
			gone[secret.Name] = time.Now()
		}
	}, client.InNamespace("bench-expiry"), harness.ManagedSecrets); err != nil {
		return err
	}
	deadline := at.Add(time.Minute)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(gone)
		mu.Unlock()
		if n >= o.expiring {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(gone) < o.expiring {
		return fmt.Errorf("expiry: %d of %d Secrets still hold their value a minute after expiry", o.expiring-len(gone), o.expiring)
	}
	var late []float64
	for _, t := range gone {
		late = append(late, float64(t.Sub(at.Time).Microseconds())/1000)
	}
	res["expiry_lateness_ms"] = round(percentile(late, 100), 1)
	res["expiry_lateness_ms_p50"] = round(percentile(late, 50), 1)
	res["expiry_tokens"] = o.expiring
	return nil
}

// faultFigures runs the fault injection and the leader handovers on a
// control plane without webhooks (the harness stamps the creator), so a
// killed operator never blocks the harness's writes.
func faultFigures(ctx context.Context, o options, dir, binary string, res results) error {
	fdir := filepath.Join(dir, "faults")
	if err := os.MkdirAll(fdir, 0o700); err != nil {
		return err
	}
	c, err := harness.StartCluster(fdir, false)
	if err != nil {
		return err
	}
	defer func() { _ = c.Stop() }()
	logf("fault injection: %d SIGKILL cycles", o.cycles)
	report, err := harness.RunFaults(ctx, c, binary, "faults", harness.FaultOptions{
		Cycles: o.cycles, Batch: 30, MaxDelay: 600 * time.Millisecond, Settle: time.Minute,
		Seed: uint64(time.Now().UnixNano()),
		Logf: func(format string, args ...any) {
			if strings.HasPrefix(format, "cycle") {
				return // 200 lines are too many; the figures say it all
			}
			logf(format, args...)
		},
	})
	if err != nil {
		return err
	}
	res["crash_cycles"] = report.Cycles
	res["tokens_lost"] = report.TokensLost
	res["tokens_double_issued"] = report.DoubleIssued
	res["tokens_stuck"] = report.Stuck
	res["crash_tokens"] = report.Tokens
	res["crash_recreates"] = report.Recreates
	res["crash_invalidations"] = report.Invalidated
	res["crash_max_settle_s"] = round(report.MaxSettle.Seconds(), 2)
	res["crash_cycles_mid_work"] = report.KilledMidWork
	res["watch_gaps"] = report.WatchGaps
	if len(report.Problems) > 0 {
		res["crash_problems"] = report.Problems
	}

	logf("leader handover, graceful and SIGKILL")
	const ns = "handover"
	if err := c.EnsureNamespace(ctx, ns); err != nil {
		return err
	}
	if err := c.Admin.Create(ctx, harness.Team(ns, []string{ns})); err != nil {
		return err
	}
	pair, err := harness.StartPair(ctx, c, binary)
	if err != nil {
		return err
	}
	defer pair.Stop()
	names, err := c.CreateTokens(ctx, ns, "before", ns, 10, 4)
	if err != nil {
		return err
	}
	if _, _, err := c.WaitSettled(ctx, ns, time.Minute, nil); err != nil {
		return err
	}
	values, err := c.Values(ctx, ns, names[:1])
	if err != nil {
		return err
	}
	for _, graceful := range []bool{true, false} {
		h, err := pair.Handover(ctx, graceful, ns, values[names[0]], 20)
		if err != nil {
			return err
		}
		kind := "graceful"
		if !graceful {
			kind = "sigkill"
		}
		res["handover_"+kind+"_s"] = round(h.Took.Seconds(), 2)
		res["handover_"+kind+"_verify_failures"] = h.VerifyFailures
		res["handover_"+kind+"_verifications"] = h.Verifications
		res["handover_"+kind+"_tokens_lost"] = len(h.Check.Lost) + len(h.Check.Unsettled)
	}
	return nil
}

// phaseWatch records when each token of a namespace first reached a phase.
type phaseWatch struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func watchActive(ctx context.Context, c *harness.Cluster, ns string) (*phaseWatch, error) {
	return watchPhase(ctx, c, ns, v1alpha1.PhaseActive)
}

func watchPhase(ctx context.Context, c *harness.Cluster, ns string, phase v1alpha1.ApiTokenPhase) (*phaseWatch, error) {
	w := &phaseWatch{seen: map[string]time.Time{}}
	err := c.Watch(ctx, &v1alpha1.ApiTokenList{}, func(_ watch.EventType, obj client.Object) {
		tok, ok := obj.(*v1alpha1.ApiToken)
		if !ok || tok.Status.Phase != phase {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, ok := w.seen[tok.Name]; !ok {
			w.seen[tok.Name] = time.Now()
		}
	}, client.InNamespace(ns))
	return w, err
}

// waitFor waits until n tokens reached the phase and returns when the last
// of them did.
func (w *phaseWatch) waitFor(n int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		count := len(w.seen)
		var last time.Time
		for _, t := range w.seen {
			if t.After(last) {
				last = t
			}
		}
		w.mu.Unlock()
		if count >= n {
			return last, nil
		}
		if time.Now().After(deadline) {
			return last, fmt.Errorf("only %d of %d tokens reached the phase in %v", count, n, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func perToken(w harness.Writes, n int) map[string]float64 {
	out := map[string]float64{}
	for r, v := range w {
		if !harness.VirtualResources[r] && v != 0 {
			out[r] = round(v/float64(n), 3)
		}
	}
	return out
}

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func mb(b int64) float64 { return round(float64(b)/(1<<20), 1) }

func writeJSON(path string, res results) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o600)
}
