package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// goal is one row of the report: a figure and what it should be.
type goal struct {
	key, what string
	// op is ">=", "<=" or "" (no goal, reported for information).
	op     string
	target float64
	// detail adds measured context after the figure.
	detail func(results) string
}

var goals = []goal{
	{key: "issuance_ratio", what: "tokens Active per second ÷ plain Secrets created per second", op: ">=", target: 0.5,
		detail: func(r results) string {
			return fmt.Sprintf("%v tokens/s vs %v Secrets/s, N = %v; the tokens were created (through admission) at %v/s",
				r["issuance_tokens_per_sec"], r["issuance_secrets_per_sec"], r["issuance_n"], r["issuance_created_per_sec"])
		}},
	{key: "writes_per_token", what: "API writes by the operator per issued token (all kinds, Events included)", op: "<=", target: 2,
		detail: func(r results) string { return "by resource: " + byResource(r["writes_per_token_by_resource"]) }},
	{key: "idle_writes_per_min", what: "writes per minute, idle, leader-election Lease renewals excluded", op: "<=", target: 0,
		detail: func(r results) string {
			return fmt.Sprintf("%v Active tokens; Lease renewals: %v/min", r["idle_active_tokens"], r["idle_lease_writes_per_min"])
		}},
	{key: "verify_inproc_per_sec", what: "in-process verifications per second, one core", op: ">=", target: 3_000_000,
		detail: func(r results) string {
			return fmt.Sprintf("%v ns/op, %v allocs/op", r["verify_inproc_ns_per_op"], r["verify_inproc_allocs_per_op"])
		}},
	{key: "verify_http_ratio", what: "`/verify` throughput ÷ a bare handler's", op: ">=", target: 0.8,
		detail: func(r results) string {
			return fmt.Sprintf("%v vs %v requests/s", r["verify_http_rps"], r["bare_http_rps"])
		}},
	{key: "verify_http_p99_ratio", what: "`/verify` p99 latency ÷ the bare handler's", op: "<=", target: 1.25},
	{key: "revocation_ms_p99", what: "Team owner removed → each of the tokens refused by `/verify` (p99, ms)", op: "<=", target: 100,
		detail: func(r results) string {
			return fmt.Sprintf("upper bound (answer received); lower bound (last 200 sent) p99 %v ms; %v tokens; p50 %v ms, max %v ms; the Team patch itself took %v ms; all phase Invalidated after %v s",
				r["revocation_ms_p99_lower_bound"], r["revocation_tokens"], r["revocation_ms_p50"], r["revocation_ms_max"], r["revocation_patch_ms"], r["invalidation_all_phase_s"])
		}},
	{key: "expiry_lateness_ms", what: "expiry instant → Secret without its value (max, ms)", op: "<=", target: 1000,
		detail: func(r results) string {
			return fmt.Sprintf("%v tokens expiring at one instant; p50 %v ms", r["expiry_tokens"], r["expiry_lateness_ms_p50"])
		}},
	{key: "rss_10k_tokens_mb", what: "operator RSS with 10,000 Active tokens, after a restart (MB)", op: "<=", target: 80,
		detail: func(r results) string {
			return fmt.Sprintf("right after issuing them: %v MB", r["rss_after_issuing_10k_mb"])
		}},
	{key: "rss_growth_unrelated_secrets_mb", what: "RSS growth from 10,000 unrelated 32 KB Secrets (MB)", op: "<=", target: 10},
	{key: "startup_ready_s", what: "start → ready (`/readyz`) with 10,000 tokens (s)"},
	{key: "crash_cycles", what: "SIGKILL cycles during issuance, recreation and invalidation", op: ">=", target: 200,
		detail: func(r results) string {
			return fmt.Sprintf("%s killed while tokens were being worked on; %s tokens, %s recreates, %s invalidations; slowest catch-up %s s; watch gaps %s",
				show(r["crash_cycles_mid_work"]), show(r["crash_tokens"]), show(r["crash_recreates"]), show(r["crash_invalidations"]), show(r["crash_max_settle_s"]), show(r["watch_gaps"]))
		}},
	{key: "tokens_lost", what: "Active tokens without their value, after any cycle", op: "<=", target: 0},
	{key: "tokens_double_issued", what: "delivered values replaced without a recreate", op: "<=", target: 0},
	{key: "tokens_stuck", what: "tokens not settled a minute after a restart", op: "<=", target: 0},
	{key: "handover_graceful_s", what: "leader stopped (SIGTERM) → the other replica leads (s)", op: "<=", target: 5,
		detail: func(r results) string {
			return fmt.Sprintf("%v of %v verifications on the survivor failed meanwhile", r["handover_graceful_verify_failures"], r["handover_graceful_verifications"])
		}},
	{key: "handover_sigkill_s", what: "leader killed (SIGKILL) → the other replica leads (s)",
		detail: func(r results) string {
			return fmt.Sprintf("bounded by the 15 s lease; %v of %v verifications on the survivor failed meanwhile", r["handover_sigkill_verify_failures"], r["handover_sigkill_verifications"])
		}},
	{key: "flood_good_ok_ratio", what: "good tokens verified during a flood of unique bad ones", op: ">=", target: 1,
		detail: func(r results) string {
			return fmt.Sprintf("%v bad requests in 10 s; from one address %v answered 429 (%v without Retry-After/RateLimit-*); RSS growth %v MB",
				r["flood_bad_requests"], r["flood_single_source_429_ratio"], r["flood_429_missing_headers"], r["flood_rss_growth_mb"])
		}},
}

func writeDoc(path string, r results) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\n")
	fmt.Fprintf(&b, "Written by `make bench` on %s, %d cores, %s, in %v minutes. Figures: `bin/bench/results.json`.\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), r["bench_minutes"])
	b.WriteString(`The cluster figures run the real operator binary (bin/tokenwarden, leader election and
webhooks on) against a real kube-apiserver and etcd on the same machine, driven by
test/bench through the API server as a team owner would; writes are counted from the API
server's own apiserver_request_total. The machines are shared and noisy (2 cores), so the
issuance figure is a ratio against plain Secrets created by the same harness on the same
control plane in the same run, and the HTTP figures are ratios against a bare handler.

| figure | measured | goal | | context |
|---|---|---|---|---|
`)
	for _, g := range goals {
		v, ok := r[g.key]
		measured := "not measured"
		if ok {
			measured = show(v)
		}
		target, verdict := "—", ""
		if g.op != "" {
			target = g.op[:1] + " " + trim(g.target)
			target = strings.NewReplacer(">", "≥", "<", "≤").Replace(target)
			verdict = "not met"
			if f, isNum := number(v); isNum && ((g.op == ">=" && f >= g.target) || (g.op == "<=" && f <= g.target)) {
				verdict = "met"
			}
		}
		detail := ""
		if g.detail != nil && ok {
			detail = g.detail(r)
		}
		fmt.Fprintf(&b, "| %s (`%s`) | %s | %s | %s | %s |\n", g.what, g.key, measured, target, verdict, detail)
	}
	b.WriteString(`
How each is measured:
- **Issuance**: N plain 64-byte Secrets, then N Team tokens, each created by 16 concurrent
  requests; a token counts when a watch sees it Active, and the rate runs to the last one.
  Tokens pass through both admission webhooks; Secrets through none.
- **Writes**: every mutating request the API server counted while the tokens were issued
  (plus 5 s), minus the harness's own creates, divided by N. Reviews (SubjectAccessReview)
  store nothing and are not writes. Events are writes and are counted: one per issuance,
  since every transition records one.
- **Revocation**: 16 pollers verify each token in a loop, each token from its own
  forwarded address, until it is refused. A token's refusal happened after its last
  request answered 200 was sent and before the refusal arrived: the figure is the upper
  bound (from the Team patch to the refusal's arrival, which includes up to one polling
  loop of about 1,000 / 16 requests), and the lower bound is reported beside it.
- **Expiry**: a watch on the Secrets records when each loses its value; expiresAt has
  whole seconds.
- **Memory**: VmRSS of the operator process, after 10–15 s of quiet.
- **Crashes**: the operator is killed with SIGKILL at a random moment (0–600 ms; every
  fourth cycle at once) after the harness creates, recreates (spec.recreate) or
  invalidates (owner removed) 30 tokens, then restarted; after each cycle every token must settle within a minute,
  every Active token's Secret must hold the value status.tokenHash describes, and a watch
  that outlives every process must have seen no Secret hold more values than 1 + its
  recreates.
- **Flood**: for 10 s, unique well-formed unknown tokens from unique addresses and from one
  address, while two clients verify good tokens.
`)
	b.WriteString(`
What the figures are made of, where a goal is missed:
`)
	created, _ := number(r["issuance_created_per_sec"])
	secrets, _ := number(r["issuance_secrets_per_sec"])
	if secrets > 0 {
		fmt.Fprintf(&b, "- **Issuance**: admission alone (two webhook calls per ApiToken) let the harness create\n"+
			"  tokens at %s/s, %s of the Secrets' rate, before the operator did anything; each token then\n"+
			"  costs a status write, a Secret and an Event, each a write waiting on etcd.\n",
			show(created), show(round(created/secrets, 3)))
	}
	b.WriteString(`- **Writes**: one of the writes per token is the Event that every transition records
  (SPEC, Operations); the status and the Secret are the other two.
- **Revocation**: every token is refused by the same Team table, replaced once when the
  informer delivers the Team change, so the lower bound is the better estimate of the
  instant; the upper bound is dominated by how long one polling loop takes.
- **Memory**: the operator caches every ApiToken and its Secret and keeps the
  verification index; the Go runtime's resident set is two to three times its live heap
  (GOGC=100, pages returned lazily). The Deployment's GOMEMLIMIT bounds it in a cluster;
  the figure here is the binary with no limit set.
`)
	if problems, ok := r["crash_problems"]; ok {
		fmt.Fprintf(&b, "\nFault injection problems: %v\n", problems)
	}
	var keys []string
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("\nEvery figure of the run:\n\n```\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, show(r[k]))
	}
	b.WriteString("```\n")
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// number is v as a float64, whether the run made it or JSON read it back.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

// show prints a figure without exponents.
func show(v any) string {
	if f, ok := number(v); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func byResource(v any) string {
	var parts []string
	switch m := v.(type) {
	case map[string]float64:
		for k, n := range m {
			parts = append(parts, fmt.Sprintf("%s %s", k, show(n)))
		}
	case map[string]any:
		for k, n := range m {
			parts = append(parts, fmt.Sprintf("%s %s", k, show(n)))
		}
	default:
		return fmt.Sprint(v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func trim(f float64) string {
	s := fmt.Sprintf("%.3f", f)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if f >= 10000 {
		return fmt.Sprintf("%d", int64(f))
	}
	return s
}
