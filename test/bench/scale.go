package main

// The scale run (`make bench-scale`, issue #14): the operator binary, with
// webhooks and leader election on, against a real control plane holding
// (by default) 100,000 ApiTokens in 1,000 namespaces and 500 Teams, every
// one created through admission as the harness's Team owner. It writes
// bin/bench/scale.json and its own section of docs/benchmarks.md, between
// the markers of scale_doc.go, so that it and `make bench` leave each
// other's figures alone.
//
// It is a mode of the bench command, selected by -scale-run; its flags all
// start with -scale-.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenwarden/tokenwarden/api/v1alpha1"
	"github.com/tokenwarden/tokenwarden/internal/verify"
	"github.com/tokenwarden/tokenwarden/test/harness"
)

// scaleOptions are the scale run's flags.
type scaleOptions struct {
	results, doc string
	render       bool

	tokens, namespaces, teams int
	revoke, baseline, few     int
	workers, progress         int
	quiet                     time.Duration

	verifyClients, verifyRounds int
	verifyTime                  time.Duration
	benchCount                  int
	benchTime                   time.Duration
	verifyTest                  string
	// profiles, if set, is the directory where the operator's profiles
	// go: CPU while the tokens turn Active, heap with all of them Active.
	profiles string
}

var (
	// scaleRun selects the scale run instead of `make bench`'s.
	scaleRun bool
	scaleOpt scaleOptions
)

func init() {
	flag.BoolVar(&scaleRun, "scale-run", false, "Run the scale benchmark (make bench-scale) instead; its flags start with -scale-.")
	flag.StringVar(&scaleOpt.results, "scale-results", "bin/bench/scale.json", "Scale run: where the figures go.")
	flag.StringVar(&scaleOpt.doc, "scale-doc", "docs/benchmarks.md", "Scale run: the report whose scale section is written (between "+scaleBegin+" and "+scaleEnd+").")
	flag.BoolVar(&scaleOpt.render, "scale-render", false, "Scale run: only write the report's section from the figures in -scale-results.")
	flag.IntVar(&scaleOpt.tokens, "scale-tokens", 100_000, "Scale run: ApiTokens, all created through admission.")
	flag.IntVar(&scaleOpt.namespaces, "scale-namespaces", 1000, "Scale run: namespaces the tokens are spread over, evenly.")
	flag.IntVar(&scaleOpt.teams, "scale-teams", 500, "Scale run: Teams, among them the one revoked and the admin candidate's.")
	flag.IntVar(&scaleOpt.revoke, "scale-revoke", 10_000, "Scale run: tokens of the Team whose owner is removed (rounded up to whole namespaces).")
	flag.IntVar(&scaleOpt.baseline, "scale-baseline", 1000, "Scale run: tokens present when the live verification baseline is measured.")
	flag.IntVar(&scaleOpt.few, "scale-admin-tokens", 10, "Scale run: tokens of a second creator, who is then made an admin.")
	flag.IntVar(&scaleOpt.workers, "scale-workers", 32, "Scale run: concurrent requests creating objects and polling revocation.")
	flag.IntVar(&scaleOpt.progress, "scale-progress", 10_000, "Scale run: log progress every this many tokens created.")
	flag.DurationVar(&scaleOpt.quiet, "scale-quiet", 15*time.Second, "Scale run: how long the operator must have reconciled nothing to count as quiet.")
	flag.IntVar(&scaleOpt.verifyClients, "scale-verify-clients", 4, "Scale run: concurrent clients of the live /verify measurement.")
	flag.IntVar(&scaleOpt.verifyRounds, "scale-verify-rounds", 3, "Scale run: rounds of the live /verify measurement (the median counts).")
	flag.DurationVar(&scaleOpt.verifyTime, "scale-verify-time", 5*time.Second, "Scale run: length of one round of the live /verify measurement.")
	flag.IntVar(&scaleOpt.benchCount, "scale-bench-count", 3, "Scale run: rounds of the in-process verification benchmarks (the median counts).")
	flag.DurationVar(&scaleOpt.benchTime, "scale-bench-time", time.Second, "Scale run: length of one in-process benchmark.")
	flag.StringVar(&scaleOpt.profiles, "scale-profiles", "", "Scale run: a directory for the operator's CPU profile while tokens turn Active and heap profile with all Active (go tool pprof reads them); empty takes none.")
	flag.StringVar(&scaleOpt.verifyTest, "scale-verify-test", "bin/bench/verify.test", "Scale run: internal/verifyhttp's compiled tests (go test -c), whose benchmarks are make bench's.")
}

// scaleMain runs the scale benchmark and exits; main calls it when
// -scale-run is given. An interrupt stops the control plane and the
// operator on the way out.
func scaleMain() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runScale(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: scale:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// scalePlan is where every token, namespace and Team goes. Token i is
// named t-<i> and lives in namespace nsOf(i); tokens are spread evenly,
// namespace by namespace, so the first ones (the baseline) share the first
// namespaces. The revoked Team ("scale-big") holds the last namespaces, as
// many as its tokens need; the other namespaces go round-robin to the
// regular Teams. Every Team is owned by the harness's Owner, who creates
// every token, and by a user of its own.
type scalePlan struct {
	o scaleOptions
	// perNS counts the tokens of each namespace; bigFrom is the first
	// namespace of scale-big and revoke its token count.
	perNS   []int
	bigFrom int
	revoke  int
	regular int
}

const (
	bigTeam   = "scale-big"
	bigOwner  = "scale-big-owner"
	fewTeam   = "scale-few"
	fewNS     = "scale-few"
	candidate = "scale-admin-candidate"
	// adminRole grants the admin verb on apitokens, admin standing.
	adminRole = "scale-admin"
)

func newScalePlan(o scaleOptions) (*scalePlan, error) {
	switch {
	case o.tokens < 1 || o.namespaces < 2 || o.namespaces > o.tokens:
		return nil, fmt.Errorf("need 2 ≤ -scale-namespaces (%d) ≤ -scale-tokens (%d)", o.namespaces, o.tokens)
	case o.teams < 3:
		return nil, fmt.Errorf("need -scale-teams ≥ 3 (the revoked Team, the admin candidate's and a regular one), not %d", o.teams)
	case o.revoke < 1:
		return nil, fmt.Errorf("need -scale-revoke ≥ 1")
	case o.baseline < 1 || o.baseline >= o.tokens:
		return nil, fmt.Errorf("need 1 ≤ -scale-baseline (%d) < -scale-tokens (%d)", o.baseline, o.tokens)
	case o.few < 1 || o.workers < 1 || o.verifyClients < 1 || o.verifyRounds < 1 || o.benchCount < 1:
		return nil, fmt.Errorf("-scale-admin-tokens, -scale-workers, -scale-verify-clients, -scale-verify-rounds and -scale-bench-count must be positive")
	}
	p := &scalePlan{o: o, perNS: make([]int, o.namespaces), regular: o.teams - 2}
	for i := range o.tokens {
		p.perNS[p.nsOf(i)]++
	}
	p.bigFrom = o.namespaces
	for p.revoke < o.revoke && p.bigFrom > 0 {
		p.bigFrom--
		p.revoke += p.perNS[p.bigFrom]
	}
	if p.bigFrom < 1 {
		return nil, fmt.Errorf("-scale-revoke %d leaves no namespace to the other Teams", o.revoke)
	}
	if p.bigFrom*o.baseline > 0 && p.nsOf(o.baseline-1) >= p.bigFrom {
		return nil, fmt.Errorf("the %d baseline tokens reach into %s's namespaces; lower -scale-baseline or -scale-revoke", o.baseline, bigTeam)
	}
	if n := o.namespaces - p.bigFrom; n > 256 {
		return nil, fmt.Errorf("%s would need %d namespaces, more than a Team may hold (256)", bigTeam, n)
	}
	if n := (p.bigFrom + p.regular - 1) / p.regular; n > 256 {
		return nil, fmt.Errorf("a regular Team would need %d namespaces, more than a Team may hold (256)", n)
	}
	return p, nil
}

func (p *scalePlan) nsOf(i int) int { return int(int64(i) * int64(p.o.namespaces) / int64(p.o.tokens)) }

func nsName(k int) string       { return fmt.Sprintf("scale-%04d", k) }
func tokenName(i int) string    { return fmt.Sprintf("t-%06d", i) }
func regularTeam(r int) string  { return fmt.Sprintf("scale-team-%03d", r) }
func regularOwner(r int) string { return fmt.Sprintf("scale-owner-%03d", r) }

// teamOfNS is the Team of namespace k's tokens.
func (p *scalePlan) teamOfNS(k int) string {
	if k >= p.bigFrom {
		return bigTeam
	}
	return regularTeam(k % p.regular)
}

// teamObjects are every Team of the run.
func (p *scalePlan) teamObjects() []*v1alpha1.Team {
	big := harness.Team(bigTeam, nil, bigOwner)
	for k := p.bigFrom; k < p.o.namespaces; k++ {
		big.Spec.Namespaces = append(big.Spec.Namespaces, nsName(k))
	}
	few := &v1alpha1.Team{ObjectMeta: metav1.ObjectMeta{Name: fewTeam}, Spec: v1alpha1.TeamSpec{
		Namespaces: []string{fewNS},
		Owners:     []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: candidate}},
	}}
	teams := []*v1alpha1.Team{big, few}
	for r := range p.regular {
		t := harness.Team(regularTeam(r), nil, regularOwner(r))
		for k := r; k < p.bigFrom; k += p.regular {
			t.Spec.Namespaces = append(t.Spec.Namespaces, nsName(k))
		}
		teams = append(teams, t)
	}
	return teams
}

// bigTokens are the indexes of scale-big's tokens.
func (p *scalePlan) bigTokens() []int {
	var out []int
	for i := range p.o.tokens {
		if p.nsOf(i) >= p.bigFrom {
			out = append(out, i)
		}
	}
	return out
}

// activeSet records, across the cluster, when each ApiToken was first seen
// Active. It keeps one key per token, never the objects.
type activeSet struct {
	mu   sync.Mutex
	seen map[string]struct{}
	last time.Time
}

func watchActiveAll(ctx context.Context, c *harness.Cluster) (*activeSet, error) {
	a := &activeSet{seen: map[string]struct{}{}}
	err := c.Watch(ctx, &v1alpha1.ApiTokenList{}, func(_ watch.EventType, obj client.Object) {
		tok, ok := obj.(*v1alpha1.ApiToken)
		if !ok || tok.Status.Phase != v1alpha1.PhaseActive {
			return
		}
		key := tok.Namespace + "/" + tok.Name
		a.mu.Lock()
		defer a.mu.Unlock()
		if _, ok := a.seen[key]; !ok {
			a.seen[key] = struct{}{}
			a.last = time.Now()
		}
	})
	return a, err
}

func (a *activeSet) count() (int, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen), a.last
}

// waitFor waits until n tokens have been seen Active and returns when the
// last of them was, logging the count every 30 s.
func (a *activeSet) waitFor(ctx context.Context, n int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	nextLog := time.Now().Add(30 * time.Second)
	for {
		count, last := a.count()
		if count >= n {
			return last, nil
		}
		if time.Now().After(deadline) {
			return last, fmt.Errorf("only %d of %d tokens Active after %v", count, n, timeout)
		}
		if time.Now().After(nextLog) {
			logf("scale: %d of %d tokens Active", count, n)
			nextLog = time.Now().Add(30 * time.Second)
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// scaleState is what the phases of one run share.
type scaleState struct {
	o      scaleOptions
	p      *scalePlan
	c      *harness.Cluster
	op     *harness.Operator
	binary string
	active *activeSet
	res    results
	// values are the fixed set of token values of the live verification,
	// from the baseline tokens.
	values []string
	// retries counts creates tried again after a transient error.
	retries atomic.Int64
	// pprofAddr is where the first operator serves pprof, with
	// -scale-profiles.
	pprofAddr string
}

func runScale(ctx context.Context) error {
	o := scaleOpt
	if o.render {
		res, err := readResults(o.results)
		if err != nil {
			return err
		}
		return writeScaleDoc(o.doc, res)
	}
	p, err := newScalePlan(o)
	if err != nil {
		return err
	}
	started := time.Now()
	s := &scaleState{o: o, p: p, res: results{}}
	res := s.res
	res["scale_tokens"] = o.tokens
	res["scale_namespaces"] = o.namespaces
	res["scale_teams"] = o.teams
	res["scale_admin_creator_tokens"] = o.few
	res["scale_baseline_tokens"] = o.baseline
	res["scale_quiet_s"] = o.quiet.Seconds()
	res["scale_verify_clients"] = o.verifyClients
	res["scale_verify_rounds"] = o.verifyRounds
	res["scale_verify_round_s"] = o.verifyTime.Seconds()
	res["scale_bench_count"] = o.benchCount
	res["scale_revocation_tokens"] = p.revoke
	res["scale_cores"] = runtime.NumCPU()
	logf("scale: %d ApiTokens in %d namespaces, %d Teams (%s holds %d tokens in %d namespaces)",
		o.tokens, o.namespaces, o.teams, bigTeam, p.revoke, o.namespaces-p.bigFrom)

	err = s.run(ctx)
	res["scale_minutes"] = round(time.Since(started).Minutes(), 1)
	// A figure of nothing (NaN) is no figure: JSON has no NaN.
	for k, v := range res {
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			delete(res, k)
		}
	}
	if err != nil {
		res["scale_error"] = err.Error()
		partial := strings.TrimSuffix(o.results, ".json") + ".partial.json"
		if werr := writeJSON(partial, res); werr == nil {
			logf("scale: the figures measured so far are in %s", partial)
		}
		return err
	}
	if err := writeJSON(o.results, res); err != nil {
		return err
	}
	logf("scale: done in %.1f minutes; figures in %s, report in %s", time.Since(started).Minutes(), o.results, o.doc)
	return writeScaleDoc(o.doc, res)
}

func (s *scaleState) run(ctx context.Context) (err error) {
	// In-process first, while the machine is quiet.
	if err := s.inProcess(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tokenwarden-bench-scale-")
	if err != nil {
		return err
	}
	// The operator's and the control plane's logs stay when the run fails.
	defer func() {
		if err != nil {
			logf("scale: logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if s.binary, err = harness.Build(root, dir); err != nil {
		return err
	}
	if s.c, err = harness.StartCluster(dir, true); err != nil {
		return err
	}
	defer func() { _ = s.c.Stop() }()
	var args []string
	if s.o.profiles != "" {
		if err := os.MkdirAll(s.o.profiles, 0o750); err != nil {
			return err
		}
		if args, s.pprofAddr, err = pprofArgs(); err != nil {
			return err
		}
	}
	if s.op, err = s.c.StartOperator(s.binary, harness.OperatorOptions{Name: "scale", LeaderElect: true, Webhooks: true, Args: args}); err != nil {
		return err
	}
	defer func() { s.op.Stop() }()
	if _, err := s.op.WaitReady(ctx, 2*time.Minute); err != nil {
		return err
	}
	for leads := false; !leads; leads, _ = s.op.IsLeader(ctx) {
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.active, err = watchActiveAll(wctx, s.c); err != nil {
		return err
	}
	if err := s.setup(ctx); err != nil {
		return err
	}
	if err := s.issue(ctx); err != nil {
		return err
	}
	// Once every token is there, a phase that fails does not keep the
	// others from measuring.
	var errs []error
	for _, phase := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"memory", s.memory}, {"verification", s.verifyAtScale}, {"revocation", s.revocation},
		{"rbac", s.rbac}, {"restart", s.restart},
	} {
		if err := phase.run(ctx); err != nil {
			if ctx.Err() != nil {
				return err
			}
			logf("scale: %s failed: %v", phase.name, err)
			s.res["scale_error_"+phase.name] = err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", phase.name, err))
		}
	}
	res := s.res
	res["scale_create_retries"] = s.retries.Load()
	res["scale_watch_gaps"] = s.c.WatchGaps.Load()
	return errors.Join(errs...)
}

// setup creates the namespaces, the Teams and the RBAC of the admin
// candidate, and the candidate's tokens: every RBAC object the run needs
// but the one it measures exists before the first token does.
func (s *scaleState) setup(ctx context.Context) error {
	c, o := s.c, s.o
	logf("scale: creating %d namespaces and %d Teams", o.namespaces+1, o.teams)
	if err := harness.Parallel(o.namespaces+1, o.workers, func(k int) error {
		name := fewNS
		if k < o.namespaces {
			name = nsName(k)
		}
		return retry(ctx, nil, func() error { return c.EnsureNamespace(ctx, name) })
	}); err != nil {
		return err
	}
	teams := s.p.teamObjects()
	if err := harness.Parallel(len(teams), o.workers, func(i int) error {
		return retry(ctx, nil, func() error { return ignoreExists(c.Admin.Create(ctx, teams[i].DeepCopy())) })
	}); err != nil {
		return fmt.Errorf("creating Teams: %w", err)
	}
	// The candidate may manage ApiTokens like Owner, and the admin role
	// exists; only binding it to the candidate is measured.
	for _, obj := range []client.Object{
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: candidate},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: harness.Owner},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: candidate}},
		},
		&rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: adminRole},
			Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{v1alpha1.GroupVersion.Group},
				Resources: []string{"apitokens"},
				Verbs:     []string{v1alpha1.AdminVerb},
			}},
		},
	} {
		if err := c.Admin.Create(ctx, obj); err != nil {
			return err
		}
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: candidate}
	asCandidate, err := client.New(cfg, client.Options{Scheme: c.Admin.Scheme()})
	if err != nil {
		return err
	}
	logf("scale: %d tokens of %s, the admin candidate", o.few, candidate)
	if err := harness.Parallel(o.few, o.workers, func(i int) error {
		return retry(ctx, &s.retries, func() error {
			tok, err := c.Token(fewNS, fmt.Sprintf("few-%d", i), fewTeam)
			if err != nil {
				return err
			}
			return ignoreExists(asCandidate.Create(ctx, tok))
		})
	}); err != nil {
		return fmt.Errorf("creating the candidate's tokens: %w", err)
	}
	_, err = s.active.waitFor(ctx, o.few, 5*time.Minute)
	return err
}

// createTokens creates tokens [from, to) as Owner, through admission,
// logging progress.
func (s *scaleState) createTokens(ctx context.Context, from, to int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var done atomic.Int64
	start := time.Now()
	return harness.Parallel(to-from, s.o.workers, func(j int) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		i := from + j
		err := retry(ctx, &s.retries, func() error {
			tok, err := s.c.Token(nsName(s.p.nsOf(i)), tokenName(i), s.p.teamOfNS(s.p.nsOf(i)))
			if err != nil {
				return err
			}
			return ignoreExists(s.c.Creator().Create(ctx, tok))
		})
		if err != nil {
			cancel()
			return fmt.Errorf("creating %s: %w", tokenName(i), err)
		}
		if n := done.Add(1); s.o.progress > 0 && n%int64(s.o.progress) == 0 {
			active, _ := s.active.count()
			logf("scale: created %d of %d tokens (%.0f/s), %d Active", int64(from)+n, s.o.tokens,
				float64(n)/time.Since(start).Seconds(), active-s.o.few)
		}
		return nil
	})
}

// issue creates the baseline tokens, measures live verification with them
// alone, then creates the rest.
func (s *scaleState) issue(ctx context.Context) error {
	o, res := s.o, s.res
	logf("scale: creating the first %d tokens", o.baseline)
	start := time.Now()
	if err := s.createTokens(ctx, 0, o.baseline); err != nil {
		return err
	}
	created1 := time.Since(start)
	last, err := s.active.waitFor(ctx, o.few+o.baseline, 10*time.Minute+time.Duration(o.baseline)*20*time.Millisecond)
	if err != nil {
		return err
	}
	active1 := last.Sub(start)

	// The baseline's values, read namespace by namespace.
	byNS := map[int][]string{}
	for i := range o.baseline {
		byNS[s.p.nsOf(i)] = append(byNS[s.p.nsOf(i)], tokenName(i))
	}
	for k, names := range byNS {
		values, err := s.c.WaitValues(ctx, nsName(k), names, 2*time.Minute)
		if err != nil {
			return err
		}
		for _, n := range names {
			s.values = append(s.values, values[n])
		}
	}
	if err := s.waitQuiet(ctx, 10*time.Minute); err != nil {
		return err
	}
	logf("scale: live /verify with %d tokens", o.baseline+o.few)
	lv, err := s.liveVerify(ctx)
	if err != nil {
		return err
	}
	lv.record(res, "scale_verify_live_baseline")

	rest := o.tokens - o.baseline
	logf("scale: creating the other %d tokens, %d workers", rest, o.workers)
	start = time.Now()
	if err := s.createTokens(ctx, o.baseline, o.tokens); err != nil {
		return err
	}
	created2 := time.Since(start)
	logf("scale: all %d created; waiting for them to be Active", o.tokens)
	if o.profiles != "" {
		file := filepath.Join(o.profiles, "activation.cpu.pprof")
		logf("scale: profiling the operator's CPU for 30s into %s", file)
		if err := saveProfile(ctx, s.pprofAddr, "profile?seconds=30", file); err != nil {
			logf("scale: no CPU profile: %v", err)
		}
	}
	last, err = s.active.waitFor(ctx, o.few+o.tokens, 30*time.Minute+time.Duration(rest)*20*time.Millisecond)
	if err != nil {
		return err
	}
	active2 := last.Sub(start)
	created, active := created1+created2, active1+active2
	res["scale_create_s"] = round(created.Seconds(), 1)
	res["scale_create_per_sec"] = round(float64(o.tokens)/created.Seconds(), 1)
	res["scale_active_s"] = round(active.Seconds(), 1)
	res["scale_active_per_sec"] = round(float64(o.tokens)/active.Seconds(), 1)
	res["scale_workers"] = o.workers
	logf("scale: %d tokens created in %v (%.0f/s), all Active after %v (%.0f/s)", o.tokens,
		created.Round(time.Second), float64(o.tokens)/created.Seconds(), active.Round(time.Second), float64(o.tokens)/active.Seconds())
	return nil
}

// memory reads the operator's RSS and live heap with every token Active,
// once it has reconciled nothing for the quiet window.
func (s *scaleState) memory(ctx context.Context) error {
	if err := s.waitQuiet(ctx, 10*time.Minute); err != nil {
		return err
	}
	rss, err := s.op.RSSBytes()
	if err != nil {
		return err
	}
	s.res["scale_rss_mb"] = mb(rss)
	if heap, err := s.op.Metric(ctx, "go_memstats_heap_alloc_bytes"); err == nil {
		s.res["scale_heap_mb"] = mb(int64(heap))
	} else {
		logf("scale: no live heap figure: %v", err)
	}
	// The same account as make bench's: RSS by kind, live heap, idle heap.
	if _, mem, err := operatorMemory(ctx, s.op); err == nil {
		memFigures(s.res, "scale", mem)
	}
	if s.o.profiles != "" {
		file := filepath.Join(s.o.profiles, "all-active.heap.pprof")
		if err := saveProfile(ctx, s.pprofAddr, "heap?gc=1", file); err != nil {
			logf("scale: no heap profile: %v", err)
		} else {
			logf("scale: heap profile in %s", file)
		}
	}
	logf("scale: RSS %.1f MB, heap %v MB with %d Active tokens", mb(rss), s.res["scale_heap_mb"], s.o.tokens+s.o.few)
	return nil
}

func (s *scaleState) verifyAtScale(ctx context.Context) error {
	logf("scale: live /verify with %d tokens", s.o.tokens+s.o.few)
	lv, err := s.liveVerify(ctx)
	if err != nil {
		return err
	}
	res := s.res
	lv.record(res, "scale_verify_live_full")
	base, _ := number(res["scale_verify_live_baseline_rps"])
	baseBare, _ := number(res["scale_verify_live_baseline_bare_rps"])
	if base > 0 && baseBare > 0 && lv.bareRPS > 0 {
		res["scale_verify_live_raw_ratio"] = round(lv.rps/base, 3)
		res["scale_verify_live_ratio"] = round((lv.rps/lv.bareRPS)/(base/baseBare), 3)
	}
	if p99, _ := number(res["scale_verify_live_baseline_p99_ms"]); p99 > 0 {
		res["scale_verify_live_p99_ratio"] = round(lv.p99/p99, 3)
	}
	return nil
}

// liveFigures are one live /verify measurement and its control.
type liveFigures struct {
	rps, p50, p99 float64
	requests      int64
	failures      int64
	// bareRPS and bareP99 are the control's: a bare HTTPS handler in
	// this process, asked by the same clients in the same rounds.
	bareRPS, bareP99 float64
}

func (l liveFigures) record(res results, prefix string) {
	res[prefix+"_rps"] = round(l.rps, 0)
	res[prefix+"_p50_ms"] = round(l.p50, 3)
	res[prefix+"_p99_ms"] = round(l.p99, 3)
	res[prefix+"_failures"] = l.failures
	res[prefix+"_bare_rps"] = round(l.bareRPS, 0)
	res[prefix+"_bare_p99_ms"] = round(l.bareP99, 3)
	logf("scale: /verify %.0f requests/s, p50 %.3f ms, p99 %.3f ms, %d of %d not 200; bare handler %.0f requests/s, p99 %.3f ms",
		l.rps, l.p50, l.p99, l.failures, l.requests, l.bareRPS, l.bareP99)
}

// liveVerify asks the operator's /verify about the fixed set of values, in
// turn, from verifyClients clients over HTTPS, for verifyRounds rounds of
// verifyTime; each round is preceded by one as long against a bare HTTPS
// handler in this process (the operator's serving certificate, the same
// answer body), the control for the machine's load at the time. It
// returns the median round's throughput, and the latencies of all rounds.
func (s *scaleState) liveVerify(ctx context.Context) (liveFigures, error) {
	var out liveFigures
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(s.c.CAFile)
	if err != nil {
		return out, err
	}
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(filepath.Join(s.c.CertDir, "tls.crt"), filepath.Join(s.c.CertDir, "tls.key"))
	if err != nil {
		return out, err
	}
	body := []byte(`{"user":"tokenwarden:ns:tok-0:uid-tok-0","name":"tok-0","namespace":"ns","type":"Team"}` + "\n")
	bare := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	bare.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	bare.StartTLS()
	defer bare.Close()
	// Like the harness's client of the operator, for both.
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 64,
	}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: transport}

	var next atomic.Int64
	// round asks url for verifyTime and returns the rate, the latencies
	// (ms) and the answers other than 200.
	round := func(url string) (float64, []float64, int64) {
		var (
			mu       sync.Mutex
			wg       sync.WaitGroup
			requests atomic.Int64
			failures atomic.Int64
			lat      []float64
		)
		start := time.Now()
		stop := start.Add(s.o.verifyTime)
		for g := range s.o.verifyClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mine := make([]float64, 0, 1<<14)
				for time.Now().Before(stop) && ctx.Err() == nil {
					value := s.values[int(next.Add(1))%len(s.values)]
					sent := time.Now()
					code, err := getVerify(ctx, hc, url, value, fmt.Sprintf("192.0.2.%d", g+1))
					mine = append(mine, float64(time.Since(sent).Microseconds())/1000)
					requests.Add(1)
					if err != nil || code != http.StatusOK {
						failures.Add(1)
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		return float64(requests.Load()) / time.Since(start).Seconds(), lat, failures.Load()
	}
	var rates, bareRates, lat, bareLat []float64
	for range s.o.verifyRounds {
		r, l, _ := round(bare.URL + "/verify")
		bareRates, bareLat = append(bareRates, r), append(bareLat, l...)
		r, l, failed := round(s.op.VerifyURL + "/verify")
		rates, lat = append(rates, r), append(lat, l...)
		out.requests += int64(len(l))
		out.failures += failed
	}
	if err := ctx.Err(); err != nil {
		return out, err
	}
	out.rps, out.bareRPS = percentile(rates, 50), percentile(bareRates, 50)
	out.p50, out.p99, out.bareP99 = percentile(lat, 50), percentile(lat, 99), percentile(bareLat, 99)
	return out, nil
}

// getVerify sends GET url with value as the bearer token, as the client at
// forwardedFor, and reads the whole answer.
func getVerify(ctx context.Context, hc *http.Client, url, value, forwardedFor string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+value)
	req.Header.Set("X-Forwarded-For", forwardedFor)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// revocation takes Owner off scale-big and measures, for each of its
// tokens, when /verify first refused it: the last request answered 200 was
// sent after the Team patch (lower bound) and the refusal arrived (upper
// bound), relative to the patch.
func (s *scaleState) revocation(ctx context.Context) error {
	c, res := s.c, s.res
	idx := s.p.bigTokens()
	logf("scale: revocation of %d tokens of %s", len(idx), bigTeam)
	values := make([]string, len(idx))
	byNS := map[int][]int{}
	for j, i := range idx {
		byNS[s.p.nsOf(i)] = append(byNS[s.p.nsOf(i)], j)
	}
	for k, js := range byNS {
		names := make([]string, len(js))
		for n, j := range js {
			names[n] = tokenName(idx[j])
		}
		got, err := c.WaitValues(ctx, nsName(k), names, 2*time.Minute)
		if err != nil {
			return fmt.Errorf("revocation: %w", err)
		}
		for n, j := range js {
			values[j] = got[names[n]]
		}
	}

	var (
		refusedAt  = make([]time.Time, len(values))
		lastOK     = make([]time.Time, len(values))
		t0         atomic.Pointer[time.Time]
		pending    atomic.Int64
		unexpected atomic.Int64
		wg         sync.WaitGroup
		// passes are how long one poller's pass over its share took,
		// before the patch: the resolution of both bounds.
		passMu sync.Mutex
		passes []float64
	)
	pending.Store(int64(len(values)))
	deadline := time.Now().Add(2 * time.Minute)
	workers := s.o.workers
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pending.Load() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
				pass := time.Now()
				before := t0.Load() == nil
				for i := w; i < len(values); i += workers {
					if !refusedAt[i].IsZero() {
						continue
					}
					sent := time.Now()
					code, reason, err := s.op.Verify(ctx, values[i], fmt.Sprintf("10.%d.%d.%d", 200+i>>16, i>>8&0xff, i&0xff))
					if err != nil {
						unexpected.Add(1)
						continue
					}
					if code == http.StatusOK {
						lastOK[i] = sent
						continue
					}
					if t0.Load() == nil || reason != verify.ReasonInvalidated {
						unexpected.Add(1)
						continue
					}
					refusedAt[i] = time.Now()
					pending.Add(-1)
				}
				if before && t0.Load() == nil {
					passMu.Lock()
					passes = append(passes, float64(time.Since(pass).Microseconds())/1000)
					passMu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	// Every poller has been over its share once: every token has verified.
	for waited := time.Now(); ; {
		passMu.Lock()
		n := len(passes)
		passMu.Unlock()
		if n >= workers || time.Since(waited) > time.Minute {
			break
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	team := &v1alpha1.Team{}
	if err := c.Admin.Get(ctx, client.ObjectKey{Name: bigTeam}, team); err != nil {
		return err
	}
	base := team.DeepCopy()
	team.Spec.Owners = []v1alpha1.Subject{{Kind: v1alpha1.UserSubject, Name: bigOwner}}
	// The Team's admission works out which tokens the change invalidates;
	// should it time out, the patch is not applied and is sent again, the
	// clock starting anew.
	var now time.Time
	var patched time.Duration
	for attempt := 1; ; attempt++ {
		now = time.Now()
		t0.Store(&now)
		err := c.Admin.Patch(ctx, team.DeepCopy(), client.MergeFrom(base))
		if err == nil {
			patched = time.Since(now)
			res["scale_revocation_patch_attempts"] = attempt
			break
		}
		if attempt == 3 || ctx.Err() != nil {
			pending.Store(0) // stops the pollers
			wg.Wait()
			return fmt.Errorf("removing the owner from %s: %w", bigTeam, err)
		}
		logf("scale: the Team patch failed (%v); again", err)
	}
	wg.Wait()
	var upper, lower []float64
	for i, at := range refusedAt {
		if at.IsZero() {
			return fmt.Errorf("revocation: %d tokens still verify 2 minutes after their owner's removal", pending.Load())
		}
		upper = append(upper, float64(at.Sub(now).Microseconds())/1000)
		lower = append(lower, max(0, float64(lastOK[i].Sub(now).Microseconds())/1000))
	}
	updated, err := s.op.TeamsUpdated(ctx)
	if err != nil {
		return err
	}
	instant := float64(updated.Sub(now).Microseconds()) / 1000
	agree := putRevocation(res, "scale_revocation_", instant, lower, upper)
	res["scale_revocation_ms_min_upper_bound"] = round(percentile(upper, 0), 1)
	passMu.Lock()
	res["scale_revocation_pass_ms"] = round(percentile(passes, 50), 1)
	passMu.Unlock()
	res["scale_revocation_patch_ms"] = round(float64(patched.Microseconds())/1000, 1)
	res["scale_revocation_unexpected_answers"] = unexpected.Load()
	res["scale_revocation_pollers"] = workers
	logf("scale: revocation: the verifier took the change in %.1f ms after the patch was sent, within the polled bounds of %d of %d tokens; polled upper bound p50 %.1f ms, p99 %.1f ms (lower bound p99 %.1f ms); patch %v",
		instant, agree, len(upper), percentile(upper, 50), percentile(upper, 99), percentile(lower, 99), patched)

	// Every token of the Team reaches phase Invalidated.
	invalidated, err := s.waitInvalidated(ctx, len(values), now, 15*time.Minute)
	if err != nil {
		return err
	}
	res["scale_invalidation_all_phase_s"] = round(invalidated.Seconds(), 1)
	return nil
}

// waitInvalidated counts scale-big's tokens in phase Invalidated, namespace
// by namespace, until there are n, and says how long after since.
func (s *scaleState) waitInvalidated(ctx context.Context, n int, since time.Time, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	done := map[int]bool{}
	total := 0
	for {
		for k := s.p.bigFrom; k < s.o.namespaces; k++ {
			if done[k] {
				continue
			}
			list := &v1alpha1.ApiTokenList{}
			if err := s.c.Admin.List(ctx, list, client.InNamespace(nsName(k))); err != nil {
				return 0, err
			}
			count := 0
			for i := range list.Items {
				if list.Items[i].Status.Phase == v1alpha1.PhaseInvalidated {
					count++
				}
			}
			if count == s.p.perNS[k] {
				done[k] = true
				total += count
			}
		}
		if total >= n {
			return time.Since(since), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d tokens Invalidated after %v", total, n, timeout)
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return 0, err
		}
	}
}

// rbac measures what an unrelated RBAC change and an admin change cost:
// the operator's reconciles of ApiTokens (re-checks) once it is quiet again.
func (s *scaleState) rbac(ctx context.Context) error {
	c, res := s.c, s.res
	if err := s.waitQuiet(ctx, 15*time.Minute); err != nil {
		return err
	}
	logf("scale: an unrelated RoleBinding")
	unrelated, err := s.countRechecks(ctx, func() error {
		return c.Admin.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: nsName(0), Name: "scale-unrelated"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "someone-unrelated"}},
		})
	})
	if err != nil {
		return err
	}
	res["scale_rbac_unrelated_rechecks"] = unrelated.rechecks
	res["scale_rbac_unrelated_window_s"] = round(unrelated.window.Seconds(), 1)

	logf("scale: %s made an admin", candidate)
	admin, err := s.countRechecks(ctx, func() error {
		return c.Admin.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: adminRole},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: adminRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: candidate}},
		})
	})
	if err != nil {
		return err
	}
	res["scale_rbac_admin_rechecks"] = admin.rechecks
	res["scale_rbac_admin_recheck_s"] = round(admin.busy.Seconds(), 1)
	res["scale_rbac_admin_reviews"] = admin.reviews
	res["scale_rbac_admin_tokens_not_invalidated"] = s.o.tokens + s.o.few - s.p.revoke
	return nil
}

// recheckCount is what one change cost the operator.
type recheckCount struct {
	// rechecks are ApiToken reconciles; reviews SubjectAccessReviews sent.
	rechecks, reviews float64
	// busy is from the change to the last reconcile, window the whole
	// measurement.
	busy, window time.Duration
}

// countRechecks makes a change and counts the ApiToken reconciles until
// the operator has reconciled nothing for the quiet window.
func (s *scaleState) countRechecks(ctx context.Context, change func() error) (recheckCount, error) {
	var out recheckCount
	before, err := s.reconciles(ctx)
	if err != nil {
		return out, err
	}
	writes, err := s.c.WritesNow(ctx)
	if err != nil {
		return out, err
	}
	start := time.Now()
	if err := change(); err != nil {
		return out, err
	}
	after, busy, err := s.quietAfter(ctx, before, start, 20*time.Minute)
	if err != nil {
		return out, err
	}
	now, err := s.c.WritesNow(ctx)
	if err != nil {
		return out, err
	}
	out.rechecks = after - before
	out.reviews = now.Minus(writes)["subjectaccessreviews"]
	out.busy, out.window = busy, time.Since(start)
	logf("scale: %.0f re-checks (last after %v), %.0f SubjectAccessReviews", out.rechecks, busy.Round(time.Millisecond), out.reviews)
	return out, nil
}

// restart stops the operator and measures the new process's start to
// ready, to its first answered verification and to the end of its initial
// reconciles, then its memory.
func (s *scaleState) restart(ctx context.Context) error {
	res := s.res
	logf("scale: restarting the operator with %d tokens", s.o.tokens+s.o.few)
	s.op.Stop()
	start := time.Now()
	op, err := s.c.StartOperator(s.binary, harness.OperatorOptions{Name: "scale", LeaderElect: true, Webhooks: true})
	if err != nil {
		return err
	}
	s.op = op
	if _, err := op.WaitReady(ctx, 10*time.Minute); err != nil {
		return err
	}
	ready := time.Since(start)
	// The controllers start once this replica leads.
	for leads := false; !leads; leads, _ = op.IsLeader(ctx) {
		if time.Since(start) > 5*time.Minute {
			return errors.New("the restarted operator does not lead after 5 minutes")
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	res["scale_startup_leader_s"] = round(time.Since(start).Seconds(), 2)
	res["scale_startup_ready_s"] = round(ready.Seconds(), 2)
	took, _, err := op.AwaitAnswer(ctx, s.values[0], "192.0.2.200", http.StatusOK, start, 5*time.Minute)
	if err != nil {
		return err
	}
	res["scale_startup_verify_s"] = round(took.Seconds(), 2)
	// The controllers start once this replica leads: the quiet window
	// counts from then, or a start slower than the window would look
	// settled before its first reconcile.
	led := time.Now()
	reconciled, busy, err := s.quietAfter(ctx, 0, led, 30*time.Minute)
	if err != nil {
		return err
	}
	busy += led.Sub(start)
	res["scale_startup_reconciles"] = reconciled
	res["scale_startup_settled_s"] = round(busy.Seconds(), 1)
	logf("scale: ready after %v, verifying after %v, %.0f reconciles done after %v", ready.Round(time.Millisecond),
		took.Round(time.Millisecond), reconciled, busy.Round(time.Second))
	rss, err := op.RSSBytes()
	if err != nil {
		return err
	}
	res["scale_rss_after_restart_mb"] = mb(rss)
	if heap, err := op.Metric(ctx, "go_memstats_heap_alloc_bytes"); err == nil {
		res["scale_heap_after_restart_mb"] = mb(int64(heap))
	}
	return nil
}

// reconciles reads controller-runtime's count of ApiToken reconciles, every
// result together.
func (s *scaleState) reconciles(ctx context.Context) (float64, error) {
	v, err := scrape(ctx, s.op.MetricsURL, "controller_runtime_reconcile_total", `controller="apitoken"`)
	if errors.Is(err, errNoSeries) {
		return 0, nil // none yet
	}
	return v, err
}

// waitQuiet waits until the operator has reconciled no ApiToken for the
// quiet window.
func (s *scaleState) waitQuiet(ctx context.Context, timeout time.Duration) error {
	now, err := s.reconciles(ctx)
	if err != nil {
		return err
	}
	_, _, err = s.quietAfter(ctx, now, time.Now(), timeout)
	return err
}

// quietAfter polls the reconcile count, from before at start, until it has
// not moved for the quiet window (and the window has passed since start).
// It returns the count and how long after start it last moved.
func (s *scaleState) quietAfter(ctx context.Context, before float64, start time.Time, timeout time.Duration) (float64, time.Duration, error) {
	last, moved := before, start
	for {
		// Every scrape lists every ApiToken from the operator's cache (its
		// tokens-by-phase gauge), so not too often.
		if err := sleepCtx(ctx, time.Second); err != nil {
			return last, 0, err
		}
		v, err := s.reconciles(ctx)
		if err != nil {
			return last, 0, err
		}
		if v != last {
			last, moved = v, time.Now()
		}
		if time.Since(moved) >= s.o.quiet {
			return last, moved.Sub(start), nil
		}
		if time.Since(start) > timeout {
			return last, 0, fmt.Errorf("the operator still reconciles %v after a change (%.0f so far)", timeout, last-before)
		}
	}
}

var errNoSeries = errors.New("no such series")

// scrape sums the samples of metric name whose labels include every one of
// labels (each `key="value"`), from a Prometheus text endpoint.
func scrape(ctx context.Context, url, name string, labels ...string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	found := false
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		end := strings.LastIndexByte(rest, '}')
		if end < 0 || slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(rest[:end], l) }) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest[end+1:]), 64)
		if err != nil {
			return 0, err
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("%w: %s{%s}", errNoSeries, name, strings.Join(labels, ","))
	}
	return sum, nil
}

// retry runs fn up to five times while it fails, counting the retries:
// under load the API server or a webhook may time out.
func retry(ctx context.Context, retries *atomic.Int64, fn func() error) error {
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			if retries != nil {
				retries.Add(1)
			}
			if serr := sleepCtx(ctx, time.Duration(attempt)*time.Second); serr != nil {
				return err
			}
		}
		if err = fn(); err == nil || apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
			return err
		}
	}
	return err
}

// ignoreExists treats AlreadyExists as done: a create retried after a
// timeout may have happened the first time.
func ignoreExists(err error) error { return client.IgnoreAlreadyExists(err) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// inProcess runs make bench's verification benchmarks from the compiled
// internal/verifyhttp test binary (-scale-verify-test, which make bench-scale
// builds): BenchmarkVerifyInProcess, BenchmarkVerifyHTTP and
// BenchmarkBareHTTP, with an index of -scale-baseline and of -scale-tokens
// tokens (TOKENWARDEN_BENCH_TOKENS), interleaved, -scale-bench-count times
// each, so both sizes meet the same moments of this shared machine.
func (s *scaleState) inProcess() error {
	type figure struct{ inproc, http, bare []float64 }
	var fs, fl figure
	var allocs []float64
	logf("scale: in-process verification with %d and %d tokens, %d × %v each", s.o.baseline, s.o.tokens, s.o.benchCount, s.o.benchTime)
	for range s.o.benchCount {
		for _, size := range []struct {
			n int
			f *figure
		}{{s.o.baseline, &fs}, {s.o.tokens, &fl}} {
			inproc, err := s.goBench(size.n, []string{"VerifyInProcess"}, "-test.cpu", "1")
			if err != nil {
				return err
			}
			pair, err := s.goBench(size.n, []string{"VerifyHTTP", "BareHTTP"})
			if err != nil {
				return err
			}
			size.f.inproc = append(size.f.inproc, inproc["BenchmarkVerifyInProcess"]["ns/op"])
			size.f.http = append(size.f.http, pair["BenchmarkVerifyHTTP"]["ns/op"])
			size.f.bare = append(size.f.bare, pair["BenchmarkBareHTTP"]["ns/op"])
			if size.f == &fl {
				allocs = append(allocs, inproc["BenchmarkVerifyInProcess"]["allocs/op"])
			}
		}
	}
	med := func(v []float64) float64 { return percentile(v, 50) }
	res := s.res
	res["scale_verify_inproc_baseline_ns_per_op"] = round(med(fs.inproc), 1)
	res["scale_verify_inproc_full_ns_per_op"] = round(med(fl.inproc), 1)
	res["scale_verify_inproc_full_allocs_per_op"] = med(allocs)
	res["scale_verify_inproc_ratio"] = round(med(fs.inproc)/med(fl.inproc), 3)
	http1k, http100k := med(fs.bare)/med(fs.http), med(fl.bare)/med(fl.http)
	res["scale_verify_http_baseline_ratio"] = round(http1k, 3)
	res["scale_verify_http_full_ratio"] = round(http100k, 3)
	res["scale_verify_http_ratio"] = round(http100k/http1k, 3)
	res["scale_verify_http_full_rps"] = round(1e9/med(fl.http), 0)
	res["scale_verify_http_baseline_rps"] = round(1e9/med(fs.http), 0)
	logf("scale: in-process %.1f ns/op with %d tokens, %.1f with %d; /verify ÷ bare %.3f and %.3f",
		med(fs.inproc), s.o.baseline, med(fl.inproc), s.o.tokens, http1k, http100k)
	return nil
}

// goBench runs the named benchmarks (Benchmark<name>) of the verify test
// binary, in that order, with an index of n tokens, once for
// -scale-bench-time, and returns each one's figures by unit ("ns/op",
// "allocs/op", ...).
func (s *scaleState) goBench(n int, names []string, args ...string) (map[string]map[string]float64, error) {
	pattern := "^Benchmark(" + strings.Join(names, "|") + ")$"
	cmd := exec.Command(s.o.verifyTest, append([]string{"-test.run", "^$", "-test.bench", pattern,
		"-test.benchtime", s.o.benchTime.String(), "-test.count", "1", "-test.benchmem"}, args...)...)
	cmd.Env = append(os.Environ(), "TOKENWARDEN_BENCH_TOKENS="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s -test.bench %s with %d tokens: %w\n%s", s.o.verifyTest, pattern, n, err, out)
	}
	figures := map[string]map[string]float64{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name, _, _ := strings.Cut(f[0], "-") // BenchmarkX-2: the -cpu suffix
		units := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				units[f[i+1]] = v
			}
		}
		figures[name] = units
	}
	for _, want := range names {
		if _, ok := figures["Benchmark"+want]; !ok {
			return nil, fmt.Errorf("%s printed no figures for Benchmark%s:\n%s", s.o.verifyTest, want, out)
		}
	}
	return figures, nil
}
