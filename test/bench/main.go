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
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/authz"
	"github.com/tokenwarden/tokenwarden/internal/controlplane"
	"github.com/tokenwarden/tokenwarden/test/harness"
)

type options struct {
	verifyJSON, results, doc   string
	render                     bool
	n, scale, revoke, expiring int
	unrelated, cycles          int
	idle                       time.Duration
	workers                    int
	// profile, if set, is where a CPU profile of the operator during the
	// issuance through both webhooks goes; pprofAddr is where the operator
	// then serves it.
	profile, pprofAddr string
	// issuanceOnly stops after the issuance figures, which it prints
	// instead of writing the report.
	issuanceOnly bool
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
	flag.StringVar(&o.profile, "profile", "", "Write a CPU profile of the operator during the issuance through both webhooks here (go tool pprof reads it).")
	flag.BoolVar(&o.issuanceOnly, "issuance-only", false, "Measure only issuance, print its figures and write no report (with -profile, to look into the admission and Active rates).")
	flag.Parse()
	// The harness's clients log nothing worth reading here.
	ctrllog.SetLogger(logr.Discard())
	if scaleRun {
		scaleMain()
	}
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

// readResults reads a results file, as a run wrote it, to render again.
func readResults(path string) (results, error) {
	res := results{}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

func run(ctx context.Context, o options) error {
	if o.render {
		res, err := readResults(o.results)
		if err != nil {
			return err
		}
		return writeDoc(o.doc, res)
	}
	res := results{}
	switch data, err := os.ReadFile(o.verifyJSON); {
	case err != nil:
		logf("no verification figures (%v); run hack/bench.sh for them", err)
	case len(data) == 0: // -verify /dev/null
		logf("no verification figures (%s is empty); run hack/bench.sh for them", o.verifyJSON)
	default:
		if err := json.Unmarshal(data, &res); err != nil {
			return fmt.Errorf("%s: %w", o.verifyJSON, err)
		}
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
	if o.issuanceOnly {
		return json.NewEncoder(os.Stdout).Encode(res)
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
	for _, ns := range []string{"bench-secrets", "bench-nowebhooks", "bench-mutating", "bench-tokens", "bench-revoke", "bench-expiry", "bench-unrelated"} {
		if err := c.EnsureNamespace(ctx, ns); err != nil {
			return err
		}
	}
	var args []string
	if o.profile != "" {
		if args, o.pprofAddr, err = pprofArgs(); err != nil {
			return err
		}
	}
	op, err := c.StartOperator(binary, harness.OperatorOptions{Name: "bench", LeaderElect: true, Webhooks: true, Args: args})
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
	// What the operator takes before it holds a single token, so the
	// figures with 10,000 can say what the tokens add.
	time.Sleep(10 * time.Second)
	emptyRSS, emptyMem, err := operatorMemory(ctx, op)
	if err != nil {
		return err
	}
	res["rss_no_tokens_mb"] = mb(emptyRSS)
	memFigures(res, "no_tokens", emptyMem)
	// Teams pass admission, which this operator serves.
	bench := harness.Team("bench", []string{"bench-nowebhooks", "bench-mutating", "bench-tokens", "bench-expiry"})
	revoke := harness.Team("revoke", []string{"bench-revoke"}, "someone-else")
	for _, team := range []*v1alpha1.Team{bench, revoke} {
		if err := c.Admin.Create(ctx, team); err != nil {
			return err
		}
	}

	if err := issuance(ctx, o, c, op, res); err != nil {
		return err
	}
	if o.issuanceOnly {
		return nil
	}

	// Idle.
	logf("idle for %v with %d Active tokens", o.idle, o.n)
	before, err := c.WritesNow(ctx)
	if err != nil {
		return err
	}
	time.Sleep(o.idle)
	after, err := c.WritesNow(ctx)
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
	rss, mem, err := operatorMemory(ctx, op)
	if err != nil {
		return err
	}
	res["rss_after_issuing_10k_mb"] = mb(rss)
	memFigures(res, "after_issuing_10k", mem)

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
	if rss, mem, err = operatorMemory(ctx, op); err != nil {
		return err
	}
	res["rss_10k_tokens_mb"] = mb(rss)
	memFigures(res, "10k_tokens", mem)

	logf("creating %d unrelated 32 KB Secrets", o.unrelated)
	if err := c.CreateSecrets(ctx, "bench-unrelated", "unrelated", o.unrelated, o.workers, 32<<10); err != nil {
		return err
	}
	time.Sleep(15 * time.Second)
	grown, grownMem, err := operatorMemory(ctx, op)
	if err != nil {
		return err
	}
	res["rss_growth_unrelated_secrets_mb"] = mb(grown - rss)
	if mem.goMem != nil && grownMem.goMem != nil && mem.goMem.HeapLive > 0 && grownMem.goMem.HeapLive > 0 {
		res["heap_live_growth_unrelated_secrets_mb"] = mb(grownMem.goMem.HeapLive - mem.goMem.HeapLive)
	}
	return nil
}

// operatorMemory reads the operator's resident set, in all and by kind,
// and then, from its metrics endpoint, the Go runtime's account of it
// (nil, with the reason logged, when the endpoint does not serve it).
func operatorMemory(ctx context.Context, op *harness.Operator) (int64, *opMemory, error) {
	rss, err := op.RSSBytes()
	if err != nil {
		return 0, nil, err
	}
	parts, err := op.RSSParts()
	if err != nil {
		return 0, nil, err
	}
	m := &opMemory{parts: parts}
	if mem, err := op.GoMemory(ctx); err == nil {
		m.goMem = &mem
	} else {
		logf("no Go memory figures: %v", err)
	}
	return rss, m, nil
}

// opMemory is where the operator's resident set goes.
type opMemory struct {
	parts harness.RSSParts
	goMem *harness.GoMemory
}

// memFigures records the resident set by kind and the Go runtime's memory
// figures, the keys ending in _<at>_mb.
func memFigures(res results, at string, m *opMemory) {
	res["rss_anon_"+at+"_mb"] = mb(m.parts.Anon)
	res["rss_file_"+at+"_mb"] = mb(m.parts.File)
	g := m.goMem
	if g == nil {
		return
	}
	res["heap_"+at+"_mb"] = mb(g.HeapAlloc)
	if g.HeapLive > 0 {
		res["heap_live_"+at+"_mb"] = mb(g.HeapLive)
	}
	res["heap_inuse_"+at+"_mb"] = mb(g.HeapInuse)
	res["heap_idle_unreleased_"+at+"_mb"] = mb(g.HeapIdleUnreleased)
	res["stacks_"+at+"_mb"] = mb(g.StackInuse)
	res["go_sys_"+at+"_mb"] = mb(g.Sys)
}

// issuance measures issuing a token part by part, N of each: plain
// Secrets created (the API server's own pace, no admission), ApiTokens
// created with no admission webhook registered, with the mutating one only,
// with both, and the rate at which the operator turns the last of them
// Active. It also counts the writes the last issuance took.
func issuance(ctx context.Context, o options, c *harness.Cluster, op *harness.Operator, res results) error {
	logf("issuance: creating %d plain Secrets", o.n)
	start := time.Now()
	if err := c.CreateSecrets(ctx, "bench-secrets", "plain", o.n, o.workers, 64); err != nil {
		return err
	}
	secretsPerSec := float64(o.n) / time.Since(start).Seconds()

	// Without the mutating webhook nobody records the creator; the harness
	// stamps what the webhook would have, so that the operator issues
	// these tokens as it does the others and its work beside the creates
	// is the same in every part.
	creator, err := authz.CreatorAnnotationValue(&v1alpha1.UserIdentity{Username: harness.Owner})
	if err != nil {
		return err
	}
	stamp := func(t *v1alpha1.ApiToken) {
		t.Annotations = map[string]string{v1alpha1.CreatorAnnotation: creator}
	}
	noWebhooks, err := createPart(ctx, o, c, harness.Admission{}, "bench-nowebhooks", stamp)
	if err != nil {
		return err
	}
	mutatingOnly, err := createPart(ctx, o, c, harness.Admission{Mutating: true}, "bench-mutating")
	if err != nil {
		return err
	}
	if err := c.SetAdmission(ctx, harness.Admission{Mutating: true, Validating: true}, time.Minute); err != nil {
		return err
	}
	// Nothing of the parts before may load this one or count in its writes.
	waitQuiet(ctx, c)

	logf("issuance: creating %d ApiTokens through both webhooks and waiting for them to be Active", o.n)
	before, err := c.WritesNow(ctx)
	if err != nil {
		return err
	}
	activeAt, err := watchActive(ctx, c, "bench-tokens")
	if err != nil {
		return err
	}
	calls, handled, err := webhookTimes(ctx, c, op)
	if err != nil {
		return err
	}
	cpuBefore, err := harness.CPUTimes()
	if err != nil {
		return err
	}
	profiled := profileCPU(ctx, o, c, 10*time.Second)
	start = time.Now()
	if _, err := c.CreateTokens(ctx, "bench-tokens", "tok", "bench", o.n, o.workers); err != nil {
		return err
	}
	createdPerSec := float64(o.n) / time.Since(start).Seconds()
	callsAfter, handledAfter, err := webhookTimes(ctx, c, op)
	if err != nil {
		return err
	}
	// Per webhook call during the creates: as the API server timed it, and
	// as the operator's webhook server timed its handling.
	for _, w := range []struct{ name, webhook, path string }{
		{"mutating", "mapitoken.auth.tokenwarden.io", "/mutate-auth-tokenwarden-io-v1alpha1-apitoken"},
		{"validating", "vapitoken.auth.tokenwarden.io", "/validate-auth-tokenwarden-io-v1alpha1-apitoken"},
	} {
		if n := callsAfter[w.webhook].Count - calls[w.webhook].Count; n > 0 {
			res["issuance_"+w.name+"_call_ms"] = round((callsAfter[w.webhook].Seconds-calls[w.webhook].Seconds)/n*1000, 2)
		}
		sum := fmt.Sprintf("controller_runtime_webhook_latency_seconds_sum{webhook=%q}", w.path)
		count := fmt.Sprintf("controller_runtime_webhook_latency_seconds_count{webhook=%q}", w.path)
		if n := handledAfter[count] - handled[count]; n > 0 {
			res["issuance_"+w.name+"_handler_ms"] = round((handledAfter[sum]-handled[sum])/n*1000, 2)
		}
	}
	last, err := activeAt.waitFor(o.n, 10*time.Minute)
	if err != nil {
		return err
	}
	tokensPerSec := float64(o.n) / last.Sub(start).Seconds()
	if err := <-profiled; err != nil {
		logf("issuance: no CPU profile: %v", err)
	}
	cpuAfter, err := harness.CPUTimes()
	if err != nil {
		return err
	}
	// Where the machine's CPU went from the first create to the check
	// after the last token turned Active (a moment after it), by process.
	cpuPerToken, cpuTotal := map[string]float64{}, time.Duration(0)
	for name, t := range cpuAfter {
		if d := t - cpuBefore[name]; d > 0 {
			cpuPerToken[name] = round(float64(d.Microseconds())/1000/float64(o.n), 3)
			cpuTotal += d
		}
	}
	res["issuance_cpu_ms_per_token"] = cpuPerToken
	res["issuance_cpu_cores"] = round(cpuTotal.Seconds()/time.Since(start).Seconds(), 2)
	// Trailing writes (the Team's status, batched Events) land within
	// moments.
	time.Sleep(5 * time.Second)
	after, err := c.WritesNow(ctx)
	if err != nil {
		return err
	}
	writes := after.Minus(before)
	writes["apitokens"] -= float64(o.n) // the harness's own creates
	objectWrites := writes.Total(func(r string) bool {
		return !harness.VirtualResources[r] && r != "leases" && r != "events"
	})
	res["issuance_n"] = o.n
	res["issuance_secrets_per_sec"] = round(secretsPerSec, 1)
	res["issuance_tokens_no_webhooks_per_sec"] = round(noWebhooks, 1)
	res["issuance_tokens_mutating_only_per_sec"] = round(mutatingOnly, 1)
	res["issuance_created_per_sec"] = round(createdPerSec, 1)
	res["issuance_tokens_per_sec"] = round(tokensPerSec, 1)
	res["issuance_admission_ratio"] = round(createdPerSec/noWebhooks, 3)
	res["issuance_active_ratio"] = round(tokensPerSec/createdPerSec, 3)
	res["issuance_ratio"] = round(tokensPerSec/secretsPerSec, 3)
	res["writes_per_token"] = round(objectWrites/float64(o.n), 3)
	res["events_per_token"] = round(writes["events"]/float64(o.n), 3)
	res["writes_per_token_by_resource"] = perToken(writes, o.n)
	logf("issuance: Secrets %.0f/s; ApiTokens created %.0f/s without webhooks, %.0f/s with the mutating one, %.0f/s with both; Active %.0f/s; writes %v",
		secretsPerSec, noWebhooks, mutatingOnly, createdPerSec, tokensPerSec, writes)
	return nil
}

// webhookTimes reads the API server's admission webhook calls and the
// operator's webhook handling times so far.
func webhookTimes(ctx context.Context, c *harness.Cluster, op *harness.Operator) (map[string]harness.WebhookCalls, map[string]float64, error) {
	calls, err := c.WebhookCallsNow(ctx)
	if err != nil {
		return nil, nil, err
	}
	handled, err := op.Samples(ctx, "controller_runtime_webhook_latency_seconds_sum", "controller_runtime_webhook_latency_seconds_count")
	return calls, handled, err
}

// createPart creates N tokens in ns with the API server calling the
// webhooks adm names, and returns how many it created per second. The
// operator issues them meanwhile; once it has, they and their Secrets are
// deleted, so that nothing of this part loads the next.
func createPart(ctx context.Context, o options, c *harness.Cluster, adm harness.Admission, ns string, change ...func(*v1alpha1.ApiToken)) (float64, error) {
	if err := c.SetAdmission(ctx, adm, time.Minute); err != nil {
		return 0, err
	}
	waitQuiet(ctx, c)
	logf("issuance: creating %d ApiTokens (%v)", o.n, adm)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	active, err := watchActive(wctx, c, ns)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := c.CreateTokens(ctx, ns, "tok", "bench", o.n, o.workers, change...); err != nil {
		return 0, err
	}
	perSec := float64(o.n) / time.Since(start).Seconds()
	if _, err := active.waitFor(o.n, 10*time.Minute); err != nil {
		return 0, err
	}
	cancel()
	if err := c.Admin.DeleteAllOf(ctx, &v1alpha1.ApiToken{}, client.InNamespace(ns)); err != nil {
		return 0, err
	}
	if err := waitGone(ctx, c, &v1alpha1.ApiTokenList{}, client.InNamespace(ns)); err != nil {
		return 0, err
	}
	// No garbage collector runs here: the Secrets go by hand.
	if err := c.Admin.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(ns), harness.ManagedSecrets); err != nil {
		return 0, err
	}
	if err := waitGone(ctx, c, &corev1.SecretList{}, client.InNamespace(ns), harness.ManagedSecrets); err != nil {
		return 0, err
	}
	return perSec, nil
}

// waitGone waits until list is empty.
func waitGone(ctx context.Context, c *harness.Cluster, list client.ObjectList, opts ...client.ListOption) error {
	deadline := time.Now().Add(time.Minute)
	for {
		if err := c.Admin.List(ctx, list, opts...); err != nil {
			return err
		}
		if apimeta.LenList(list) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d objects still there a minute after their deletion", apimeta.LenList(list))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitQuiet waits, for at most 30 s, until the API server counts no write
// but Lease renewals for 2 s.
func waitQuiet(ctx context.Context, c *harness.Cluster) {
	deadline := time.Now().Add(30 * time.Second)
	prev, err := c.WritesNow(ctx)
	for err == nil && time.Now().Before(deadline) {
		time.Sleep(2 * time.Second)
		var now harness.Writes
		if now, err = c.WritesNow(ctx); err != nil {
			break
		}
		if now.Minus(prev).Total(func(r string) bool { return !harness.VirtualResources[r] && r != "leases" }) == 0 {
			return
		}
		prev = now
	}
	logf("the API server was still written to after 30 s (%v); going on", err)
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

	// Each poller owns every 16th token and verifies each of its tokens in
	// turn, each from an address of its own (so one token's refusal does
	// not spend another's failure budget), in a new random order every
	// pass, and drops a token once it is refused. For each token it
	// records when the last request answered 200 was sent and when the
	// first refusal arrived: the refusal happened in between.
	const workers = 16
	// A pass takes at least minPass, so that no token is asked about more
	// often than its request budget allows (100 a second).
	const minPass = 10 * time.Millisecond
	refusedAt := make([]time.Time, len(names))
	lastOK := make([]time.Time, len(names))
	addrs := make([]string, len(names))
	for i := range names {
		addrs[i] = fmt.Sprintf("10.200.%d.%d", i>>8, i&0xff)
	}
	var t0 atomic.Pointer[time.Time]
	var pending, unexpected atomic.Int64
	pending.Store(int64(len(names)))
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Minute)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []int
			for i := w; i < len(names); i += workers {
				mine = append(mine, i)
			}
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for len(mine) > 0 && time.Now().Before(deadline) {
				pass := time.Now()
				rng.Shuffle(len(mine), func(a, b int) { mine[a], mine[b] = mine[b], mine[a] })
				left := mine[:0]
				for _, i := range mine {
					sent := time.Now()
					code, reason, err := op.Verify(ctx, values[names[i]], addrs[i])
					switch {
					case err != nil:
						unexpected.Add(1)
					case code == http.StatusOK:
						lastOK[i] = sent
					case t0.Load() == nil || reason != "Invalidated":
						unexpected.Add(1)
					default:
						refusedAt[i] = time.Now()
						pending.Add(-1)
						continue
					}
					left = append(left, i)
				}
				mine = left
				time.Sleep(minPass - time.Since(pass))
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
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var upper, lower, resolution []float64
	swapAtLeast, swapAtMost := math.Inf(-1), math.Inf(1)
	for i, at := range refusedAt {
		if at.IsZero() {
			return fmt.Errorf("revocation: %d tokens still verify a minute after their owner's removal", pending.Load())
		}
		// A 200 sent before the patch says nothing the patch does not.
		lo := max(0, ms(lastOK[i].Sub(now)))
		hi := ms(at.Sub(now))
		upper = append(upper, hi)
		lower = append(lower, lo)
		resolution = append(resolution, hi-lo)
		swapAtLeast, swapAtMost = max(swapAtLeast, lo), min(swapAtMost, hi)
	}
	updated, err := op.TeamsUpdated(ctx)
	if err != nil {
		return err
	}
	instant := ms(updated.Sub(now))
	all, err := invalidated.waitFor(o.revoke, 5*time.Minute)
	if err != nil {
		return err
	}
	var status []float64
	invalidated.mu.Lock()
	for _, at := range invalidated.seen {
		status = append(status, ms(at.Sub(now)))
	}
	invalidated.mu.Unlock()
	res["revocation_tokens"] = o.revoke
	agree := putRevocation(res, "revocation_", instant, lower, upper)
	res["revocation_resolution_ms_p50"] = round(percentile(resolution, 50), 1)
	res["revocation_resolution_ms_max"] = round(percentile(resolution, 100), 1)
	// If every token was refused at one instant (one Team table replaced
	// them all), that instant is after every lower bound and before every
	// upper bound.
	res["revocation_one_instant_ms_from"] = round(swapAtLeast, 1)
	res["revocation_one_instant_ms_to"] = round(swapAtMost, 1)
	res["revocation_patch_ms"] = round(ms(patched), 1)
	res["revocation_unexpected_answers"] = unexpected.Load()
	res["revocation_status_ms_p50"] = round(percentile(status, 50), 1)
	res["revocation_status_ms_p99"] = round(percentile(status, 99), 1)
	res["revocation_status_ms_max"] = round(percentile(status, 100), 1)
	res["invalidation_all_phase_s"] = round(all.Sub(now).Seconds(), 2)
	logf("revocation: the verifier took the change in %.1f ms after the patch was sent, within the polled bounds of %d of %d tokens", instant, agree, len(upper))
	logf("revocation: polled, refused after p50 %.1f, p99 %.1f, max %.1f ms (lower bounds p50 %.1f, p99 %.1f, max %.1f ms; resolution p50 %.1f, max %.1f ms); status Invalidated p50 %.1f, max %.1f ms",
		percentile(upper, 50), percentile(upper, 99), percentile(upper, 100), percentile(lower, 50), percentile(lower, 99), percentile(lower, 100),
		percentile(resolution, 50), percentile(resolution, 100), percentile(status, 50), percentile(status, 100))
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

// refusals returns, per token, when /verify began refusing it, in ms after
// the Team patch was sent. The operator says when its verification took the
// Team change in (instant, ms; see Operator.TeamsUpdated), and from then on
// it refuses every token the change concerns. Where a token's polled bounds
// hold that instant (lower: its last request answered 200 was sent; upper:
// its first refusal arrived), the token was refused at it; where they do
// not, only the upper bound is known, and it counts. agree is how many
// tokens' bounds held the instant.
func refusals(instant float64, lower, upper []float64) (at []float64, agree int) {
	at = make([]float64, len(upper))
	for i := range upper {
		if lower[i] <= instant && instant <= upper[i] {
			at[i] = instant
			agree++
			continue
		}
		at[i] = upper[i]
	}
	return at, agree
}

// putRevocation records, under keys starting with prefix, each token's
// refusal time (refusals) as p50, p99 and max, the operator's instant and
// how many tokens' bounds held it, and the polled bounds themselves; it
// returns that count.
func putRevocation(res results, prefix string, instant float64, lower, upper []float64) (agree int) {
	refused, agree := refusals(instant, lower, upper)
	res[prefix+"verifier_ms"] = round(instant, 1)
	res[prefix+"verifier_agree"] = agree
	for _, figure := range []struct {
		suffix string
		values []float64
	}{{"", refused}, {"_upper_bound", upper}, {"_lower_bound", lower}} {
		for _, p := range []struct {
			name string
			at   float64
		}{{"p50", 50}, {"p99", 99}, {"max", 100}} {
			res[prefix+"ms_"+p.name+figure.suffix] = round(percentile(figure.values, p.at), 1)
		}
	}
	return agree
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

// profileCPU takes a CPU profile of the operator for d into o.profile, and
// at the same time one of kube-apiserver into o.profile + ".kube-apiserver",
// in the background; the channel gives the outcome (nil at once when no
// profile was asked for).
func profileCPU(ctx context.Context, o options, c *harness.Cluster, d time.Duration) <-chan error {
	done := make(chan error, 1)
	if o.profile == "" {
		done <- nil
		return done
	}
	apiserverFile := o.profile + ".kube-apiserver"
	logf("issuance: profiling the CPU of the operator and kube-apiserver for %v into %s and %s", d, o.profile, apiserverFile)
	which := fmt.Sprintf("profile?seconds=%d", int(d.Seconds()))
	apiserver := make(chan error, 1)
	go func() { apiserver <- saveAPIServerProfile(ctx, c, which, apiserverFile) }()
	go func() {
		err := saveProfile(ctx, o.pprofAddr, which, o.profile)
		done <- errors.Join(err, <-apiserver)
	}()
	return done
}

// saveAPIServerProfile fetches kube-apiserver's /debug/pprof/<which>, as
// the admin, into file.
func saveAPIServerProfile(ctx context.Context, c *harness.Cluster, which, file string) error {
	cfg := rest.CopyConfig(c.Config)
	cfg.Timeout = 0
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+"/debug/pprof/"+which, nil)
	if err != nil {
		return err
	}
	return download(httpClient, req, file)
}

// saveProfile fetches /debug/pprof/<which> from the operator's pprof
// server at addr into file, for go tool pprof.
func saveProfile(ctx context.Context, addr, which, file string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/%s", addr, which)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	return download(http.DefaultClient, req, file)
}

// download writes the body of req's answer, which must be 200, to file.
func download(c *http.Client, req *http.Request, file string) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", req.URL, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o600)
}

// pprofArgs are the operator's flags serving pprof on a free loopback
// port, and that address.
func pprofArgs() ([]string, string, error) {
	ports, err := controlplane.FreePorts(1)
	if err != nil {
		return nil, "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	return []string{"--pprof-bind-address", addr}, addr, nil
}
