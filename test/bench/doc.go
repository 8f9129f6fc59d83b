package main

import (
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
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
	// targetKey, when set, names the figure that is the goal instead of
	// target.
	targetKey string
	// detail adds measured context after the figure.
	detail func(results) string
}

var goals = []goal{
	{key: "issuance_admission_ratio", what: "ApiTokens created per second through both admission webhooks ÷ with none registered", op: ">=", target: 0.5,
		detail: func(r results) string {
			return fmt.Sprintf("%v vs %v tokens/s, N = %v; with the mutating webhook only %v/s (see Issuance, part by part)",
				r["issuance_created_per_sec"], r["issuance_tokens_no_webhooks_per_sec"], r["issuance_n"], r["issuance_tokens_mutating_only_per_sec"])
		}},
	{key: "issuance_active_ratio", what: "tokens turned Active per second ÷ ApiTokens created per second through both webhooks", op: ">=", target: 0.9,
		detail: func(r results) string {
			s := fmt.Sprintf("%v vs %v tokens/s", r["issuance_tokens_per_sec"], r["issuance_created_per_sec"])
			if cores, ok := r["issuance_cpu_cores"]; ok {
				s += fmt.Sprintf("; meanwhile %s of the 2 cores were busy, CPU ms per token by process: %s",
					show(cores), byResource(r["issuance_cpu_ms_per_token"]))
			}
			return s
		}},
	{key: "issuance_ratio", what: "tokens Active per second ÷ plain Secrets created per second",
		detail: func(r results) string {
			return fmt.Sprintf("%v tokens/s vs %v Secrets/s", r["issuance_tokens_per_sec"], r["issuance_secrets_per_sec"])
		}},
	{key: "writes_per_token", what: "API writes to objects by the operator per issued token (Events, Lease renewals and reviews not counted)", op: "<=", target: 2,
		detail: func(r results) string {
			return "by resource, all kinds: " + byResource(r["writes_per_token_by_resource"])
		}},
	{key: "events_per_token", what: "Events recorded per issued token"},
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
			return fmt.Sprintf("p50 %v ms, max %v ms; %v tokens; the operator's verification took the Team change in %v ms after the patch was sent, which the polled bounds of %v of the tokens hold (the others count at their upper bound); polled: upper bound (refusal received) p50 %v, p99 %v, max %v ms, lower bound (last 200 sent) p50 %v, p99 %v, max %v ms, resolution per token p50 %v ms, max %v ms; the Team patch itself took %v ms",
				r["revocation_ms_p50"], r["revocation_ms_max"], r["revocation_tokens"], r["revocation_verifier_ms"], r["revocation_verifier_agree"],
				r["revocation_ms_p50_upper_bound"], r["revocation_ms_p99_upper_bound"], r["revocation_ms_max_upper_bound"],
				r["revocation_ms_p50_lower_bound"], r["revocation_ms_p99_lower_bound"], r["revocation_ms_max_lower_bound"],
				r["revocation_resolution_ms_p50"], r["revocation_resolution_ms_max"], r["revocation_patch_ms"])
		}},
	{key: "revocation_status_ms_p99", what: "Team owner removed → each token's status phase Invalidated, seen by a watch (p99, ms)",
		detail: func(r results) string {
			return fmt.Sprintf("p50 %v ms, max %v ms", r["revocation_status_ms_p50"], r["revocation_status_ms_max"])
		}},
	{key: "expiry_lateness_ms", what: "expiry instant → Secret without its value (max, ms)", op: "<=", target: 1000,
		detail: func(r results) string {
			return fmt.Sprintf("%v tokens expiring at one instant; p50 %v ms", r["expiry_tokens"], r["expiry_lateness_ms_p50"])
		}},
	{key: "rss_10k_tokens_mb", what: "operator RSS with 10,000 Active tokens, after a restart (MB)", op: "<=", target: 80,
		detail: func(r results) string {
			return fmt.Sprintf("%s; right after issuing them: RSS %v MB, %s",
				heapDetail(r, "10k_tokens"), r["rss_after_issuing_10k_mb"], heapDetail(r, "after_issuing_10k"))
		}},
	{key: "rss_growth_unrelated_secrets_mb", what: "RSS growth from 10,000 unrelated 32 KB Secrets (MB)", op: "<=", target: 10,
		detail: func(r results) string {
			if _, ok := r["heap_live_growth_unrelated_secrets_mb"]; !ok {
				return ""
			}
			return fmt.Sprintf("live heap growth %v MB", r["heap_live_growth_unrelated_secrets_mb"])
		}},
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
issuance figures are ratios between parts measured by the same harness on the same
control plane in the same run, and the HTTP figures are ratios against a bare handler.

| figure | measured | goal | | context |
|---|---|---|---|---|
`)
	writeGoalRows(&b, goals, r)
	writeIssuance(&b, r)
	b.WriteString(`
How each is measured:
- **Issuance**: N plain 64-byte Secrets created as an admin, then three sets of N Team
  tokens created as the team owner, each by 16 concurrent requests: the first set with no
  admission webhook registered (the harness writes the creator annotation the mutating
  webhook would have), the second with the mutating webhook only, the third with both.
  The harness takes the webhook configurations off the API server and puts them back,
  and before each set a dry-run create shows which webhooks the API server calls. The
  operator runs throughout and issues every set as it is created; once a set is Active,
  its tokens and Secrets are deleted and the harness waits until the API server counts no
  write for 2 s before the next. A create rate runs from the first request to the last
  answer. The Active rate is that of the third set: a token counts when a watch sees it
  Active, and the rate runs from the first create to the last one seen Active. Over the
  third set's creates, the API server times each webhook call
  (apiserver_admission_webhook_admission_duration_seconds) and the operator's webhook
  server its handling of it (controller_runtime_webhook_latency_seconds); the report
  gives the mean of each.
- **Writes**: every mutating request the API server counted while the third set was
  issued (plus 5 s), minus the harness's own creates, divided by N. Object writes are
  those to stored objects other than Events and Leases; reviews (SubjectAccessReview)
  store nothing and are not writes. Events are counted apart: one per issuance, since
  every transition records one.
- **Revocation**: 16 pollers each own a sixteenth of the tokens and verify each of theirs
  in turn, each token from its own forwarded address, in a new random order every pass,
  and drop a token once it is refused; a pass takes at least 10 ms, so that no token is
  asked about more often than its request budget (100 a second) allows. For each token
  the refusal happened after its last request answered 200 was sent and before its first
  refusal arrived, both counted from the moment the Team patch was sent (the lower bound is
  0 when no 200 was sent after the patch). The resolution is the upper bound minus the
  lower, per token: about one pass. The operator's own figure is sharper: its
  ` + "`tokenwarden_verification_teams_updated_timestamp_seconds`" + ` says when its verification took
  the Team change in, from which on every token of the Team is refused. A token whose
  polled bounds hold that instant counts as refused at it; any other counts at its upper
  bound. The figure is the p99 of those per-token times.
  A watch on the ApiTokens records when each token's status phase becomes Invalidated:
  the reconciler's view, which ` + "`/verify`" + ` does not wait for.
- **Expiry**: a watch on the Secrets records when each loses its value; expiresAt has
  whole seconds.
- **Memory**: VmRSS of the operator process, after 10–15 s of quiet, split as
  /proc/<pid>/status splits it into pages mapped from files (RssFile: the binary) and
  anonymous memory (RssAnon), and at once the Go runtime's own figures from its metrics
  endpoint: the heap the last garbage collection found live (go_gc_heap_live_bytes), the
  heap allocated (go_memstats_heap_alloc_bytes: the live heap and garbage not yet
  collected), the heap in use (heap_inuse: spans holding objects), the idle heap not yet
  returned to the OS (heap_idle − heap_released), goroutine stacks, and all the runtime
  obtained from the OS (sys).
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
	none, _ := number(r["issuance_tokens_no_webhooks_per_sec"])
	mutating, _ := number(r["issuance_tokens_mutating_only_per_sec"])
	created, _ := number(r["issuance_created_per_sec"])
	active, _ := number(r["issuance_tokens_per_sec"])
	secrets, _ := number(r["issuance_secrets_per_sec"])
	if none > 0 && mutating > 0 && created > 0 && secrets > 0 {
		text := fmt.Sprintf("without webhooks the API server created ApiTokens at %s/s, %s of the plain "+
			"Secrets' rate; what differs from the Secrets is that ApiTokens are a custom resource, that the "+
			"harness creates them as an impersonated user, and that the operator issues them meanwhile (three "+
			"writes each). With the mutating webhook the rate was %s/s (× %s), with both %s/s (× %s): each "+
			"webhook is one more HTTPS call from the API server to the operator per create.",
			show(none), show(round(none/secrets, 3)), show(mutating), show(round(mutating/none, 3)),
			show(created), show(round(created/mutating, 3)))
		if calls := webhookCalls(r); calls != "" {
			text += " " + calls
		}
		text += fmt.Sprintf(" The operator turned the last set Active at %s/s, %s of the rate they were "+
			"created at; each token costs it a status write, a Secret and an Event.", show(active), show(round(active/created, 3)))
		bullet(&b, "Issuance", text)
	}
	bullet(&b, "Writes", "the object writes per token are its status and its Secret, and now and then "+
		"the Team's status (the figure by resource says how often); the Event that every transition "+
		"records (SPEC, Operations) is counted apart.")
	// Revocation is explained only when its goal is missed, as the rest.
	if p99, _ := number(r["revocation_ms_p99"]); p99 > 100 {
		if from, ok := number(r["revocation_one_instant_ms_from"]); ok {
			to, _ := number(r["revocation_one_instant_ms_to"])
			text := "every token is refused by the same Team table, replaced once when the informer " +
				"delivers the Team change, so every token should be refused from one instant on. "
			if from <= to {
				text += fmt.Sprintf("The bounds agree: the latest lower bound (%s ms) is before the earliest "+
					"upper bound (%s ms), so that instant, and every token's refusal, lies between the two. ", show(from), show(to))
			} else {
				text += fmt.Sprintf("The bounds do not agree with one instant: the latest lower bound (%s ms) "+
					"is after the earliest upper bound (%s ms). ", show(from), show(to))
			}
			text += fmt.Sprintf("The upper bounds spread over the pollers' passes (resolution p50 %s ms, "+
				"max %s ms). The operator's verification says it took the change in %s ms after the patch "+
				"was sent, inside the bounds of %s of %s tokens.",
				show(r["revocation_resolution_ms_p50"]), show(r["revocation_resolution_ms_max"]),
				show(r["revocation_verifier_ms"]), show(r["revocation_verifier_agree"]), show(r["revocation_tokens"]))
			if patch, ok := number(r["revocation_patch_ms"]); ok {
				text += fmt.Sprintf(" The clock starts when the Team patch is sent, and the patch itself took %s ms: "+
					"kube-apiserver calls the Team webhook, which works out which tokens the change invalidates "+
					"to warn of them, before it stores the change that the informers then deliver.", show(patch))
			}
			bullet(&b, "Revocation", text)
		}
	}
	bullet(&b, "Memory", memoryMadeOf(r))
	if problems, ok := r["crash_problems"]; ok {
		fmt.Fprintf(&b, "\nFault injection problems: %v\n", problems)
	}
	writeFigures(&b, r)
	b.WriteString(keepScaleSection(path))
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

// writeIssuance writes the issuance figures part by part.
func writeIssuance(b *strings.Builder, r results) {
	secrets, ok := number(r["issuance_secrets_per_sec"])
	if !ok || secrets <= 0 {
		return
	}
	fmt.Fprintf(b, "\nIssuance, part by part (N = %s each):\n\n", show(r["issuance_n"]))
	b.WriteString("| part | per second | ÷ plain Secrets | ÷ the part before |\n|---|---|---|---|\n")
	parts := []struct{ what, key string }{
		{"plain Secrets created (no admission webhooks)", "issuance_secrets_per_sec"},
		{"ApiTokens created, no admission webhooks", "issuance_tokens_no_webhooks_per_sec"},
		{"ApiTokens created, mutating webhook only", "issuance_tokens_mutating_only_per_sec"},
		{"ApiTokens created, both webhooks", "issuance_created_per_sec"},
		{"of those, turned Active by the operator", "issuance_tokens_per_sec"},
	}
	var before float64
	for i, p := range parts {
		v, ok := number(r[p.key])
		if !ok {
			fmt.Fprintf(b, "| %s (`%s`) | not measured | | |\n", p.what, p.key)
			before = 0
			continue
		}
		prev := "—"
		if i > 0 && before > 0 {
			prev = show(round(v/before, 3))
		}
		fmt.Fprintf(b, "| %s (`%s`) | %s | %s | %s |\n", p.what, p.key, show(v), show(round(v/secrets, 3)), prev)
		before = v
	}
}

// heapDetail describes the Go runtime's memory figures of the keys ending in
// _<at>_mb.
func heapDetail(r results, at string) string {
	s := ""
	if v, ok := r["rss_file_"+at+"_mb"]; ok {
		s = fmt.Sprintf("RSS file-backed %s MB, anonymous %s MB; ", show(v), show(r["rss_anon_"+at+"_mb"]))
	}
	if _, ok := r["heap_"+at+"_mb"]; !ok {
		return s + "Go heap not measured"
	}
	s += "Go heap "
	if v, ok := r["heap_live_"+at+"_mb"]; ok {
		s += fmt.Sprintf("live %s MB, ", show(v))
	}
	return s + fmt.Sprintf("allocated %s MB, in use %s MB, idle not returned %s MB; stacks %s MB; the Go runtime obtained %s MB from the OS in all",
		show(r["heap_"+at+"_mb"]), show(r["heap_inuse_"+at+"_mb"]), show(r["heap_idle_unreleased_"+at+"_mb"]),
		show(r["stacks_"+at+"_mb"]), show(r["go_sys_"+at+"_mb"]))
}

// memoryMadeOf says where the resident set goes.
func memoryMadeOf(r results) string {
	const cache = "the operator caches every ApiToken and its Secret and keeps the verification index. "
	const limit = " The Deployment's GOMEMLIMIT bounds it in a cluster; the figure here is the binary with no limit set."
	rss, ok1 := number(r["rss_10k_tokens_mb"])
	anon, ok2 := number(r["rss_anon_10k_tokens_mb"])
	file, ok3 := number(r["rss_file_10k_tokens_mb"])
	inuse, ok4 := number(r["heap_inuse_10k_tokens_mb"])
	idle, ok5 := number(r["heap_idle_unreleased_10k_tokens_mb"])
	stacks, ok6 := number(r["stacks_10k_tokens_mb"])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
		return cache + "The Go runtime's resident set is two to three times its live heap " +
			"(GOGC=100, pages returned lazily)." + limit
	}
	live := ""
	if v, ok := number(r["heap_live_10k_tokens_mb"]); ok {
		live = fmt.Sprintf(", of which %s MB was live at the last collection (GOGC=100 lets the heap "+
			"grow to twice the live heap before it collects)", show(v))
	}
	empty := ""
	if v, ok := number(r["rss_no_tokens_mb"]); ok {
		empty = fmt.Sprintf("With no token at all the operator is resident at %s MB (%s), so 10,000 tokens add %s MB. ",
			show(v), heapDetail(r, "no_tokens"), show(round(rss-v, 1)))
	}
	return cache + empty + fmt.Sprintf("Of the %s MB resident after the restart, %s MB are pages mapped from "+
		"files (the binary's code and data) and %s MB anonymous memory: %s MB heap in use%s, %s MB idle "+
		"heap not yet returned to the OS, %s MB goroutine stacks, and %s MB the runtime's other memory "+
		"(span and GC metadata, caches).",
		show(rss), show(file), show(anon), show(inuse), live, show(idle), show(stacks),
		show(round(anon-inuse-idle-stacks, 1))) + limit
}

// bullet writes a list item titled title, wrapped at 90 columns.
func bullet(b *strings.Builder, title, text string) {
	line := "- **" + title + "**:"
	for _, word := range strings.Fields(text) {
		if len(line)+1+len(word) > 90 {
			b.WriteString(line + "\n")
			line = " "
		}
		line += " " + word
	}
	b.WriteString(line + "\n")
}

// webhookCalls says how long the webhook calls of the last issuance took.
func webhookCalls(r results) string {
	mc, ok1 := number(r["issuance_mutating_call_ms"])
	vc, ok2 := number(r["issuance_validating_call_ms"])
	if !ok1 || !ok2 {
		return ""
	}
	s := fmt.Sprintf("As the API server timed them, a call took %s ms to the mutating webhook and %s ms "+
		"to the validating one, on average", show(mc), show(vc))
	mh, ok3 := number(r["issuance_mutating_handler_ms"])
	vh, ok4 := number(r["issuance_validating_handler_ms"])
	if ok3 && ok4 {
		s += fmt.Sprintf(", of which the operator's webhook server spent %s and %s ms handling it", show(mh), show(vh))
	}
	return s + "."
}

func trim(f float64) string {
	s := fmt.Sprintf("%.3f", f)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if f >= 10000 {
		return fmt.Sprintf("%d", int64(f))
	}
	return s
}

// writeFigures lists every figure of a run, sorted by key, in a code block.
func writeFigures(b *strings.Builder, r results) {
	keys := slices.Sorted(maps.Keys(r))
	b.WriteString("\nEvery figure of the run:\n\n```\n")
	for _, k := range keys {
		fmt.Fprintf(b, "%s: %s\n", k, show(r[k]))
	}
	b.WriteString("```\n")
}

// writeGoalRows writes one table row per goal: the figure, the goal, whether
// it was met, and the goal's context.
func writeGoalRows(b *strings.Builder, goals []goal, r results) {
	for _, g := range goals {
		v, ok := r[g.key]
		measured := "not measured"
		if ok {
			measured = show(v)
		}
		target, verdict := "—", ""
		if g.op != "" {
			want, haveTarget := g.target, true
			if g.targetKey != "" {
				want, haveTarget = number(r[g.targetKey])
			}
			target = strings.NewReplacer(">", "≥", "<", "≤").Replace(g.op[:1]) + " " + trim(want)
			verdict = "not met"
			if f, isNum := number(v); isNum && haveTarget && ((g.op == ">=" && f >= want) || (g.op == "<=" && f <= want)) {
				verdict = "met"
			}
		}
		detail := ""
		if g.detail != nil && ok {
			detail = g.detail(r)
		}
		fmt.Fprintf(b, "| %s (`%s`) | %s | %s | %s | %s |\n", g.what, g.key, measured, target, verdict, detail)
	}
}
