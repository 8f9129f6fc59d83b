package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The scale run's section of docs/benchmarks.md lies between these
// markers: `make bench-scale` replaces only it (or appends it), and `make
// bench`, which writes the rest of the file, carries it over
// (keepScaleSection).
const (
	scaleBegin = "<!-- bench-scale:begin -->"
	scaleEnd   = "<!-- bench-scale:end -->"
)

// keepScaleSection returns the scale section of the report at path, with
// a blank line before it, for a writer of the rest of the report to append;
// "" when there is none.
func keepScaleSection(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	begin, end, ok := scaleSectionBounds(string(data))
	if !ok {
		return ""
	}
	return "\n" + string(data)[begin:end] + "\n"
}

// scaleSectionBounds finds the section, markers included.
func scaleSectionBounds(doc string) (begin, end int, ok bool) {
	begin = strings.Index(doc, scaleBegin)
	if begin < 0 {
		return 0, 0, false
	}
	rel := strings.Index(doc[begin:], scaleEnd)
	if rel < 0 {
		return 0, 0, false
	}
	return begin, begin + rel + len(scaleEnd), true
}

// writeScaleDoc writes the scale section into the report at path: in place
// of the one there, else at its end.
func writeScaleDoc(path string, r results) error {
	section := scaleSection(r)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	doc := string(data)
	if begin, end, ok := scaleSectionBounds(doc); ok {
		doc = doc[:begin] + section + doc[end:]
	} else {
		if doc != "" {
			doc = strings.TrimRight(doc, "\n") + "\n\n"
		}
		doc += section + "\n"
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(doc), 0o600)
}

// scaleGoals are the rows of the section.
var scaleGoals = []goal{
	{key: "scale_active_s", what: "all ApiTokens created through admission → all Active (s)",
		detail: func(r results) string {
			return fmt.Sprintf("%s tokens in %s namespaces, %s Teams, created by %s concurrent requests in %s s (%s/s); Active at %s/s; %s creates retried",
				scaleShow(r["scale_tokens"]), scaleShow(r["scale_namespaces"]), scaleShow(r["scale_teams"]), scaleShow(r["scale_workers"]),
				scaleShow(r["scale_create_s"]), scaleShow(r["scale_create_per_sec"]), scaleShow(r["scale_active_per_sec"]), scaleShow(r["scale_create_retries"]))
		}},
	{key: "scale_rss_mb", what: "operator RSS with every token Active, after a quiet window (MB)", op: "<=", target: 400,
		detail: func(r results) string {
			return fmt.Sprintf("%s; after the restart: RSS %s MB, heap allocated %s MB",
				heapDetail(r, "scale"), scaleShow(r["scale_rss_after_restart_mb"]), scaleShow(r["scale_heap_after_restart_mb"]))
		}},
	{key: "scale_startup_ready_s", what: "restart → ready (`/readyz`, verification index and Teams synced) with every token present (s)", op: "<=", target: 30,
		detail: func(r results) string {
			return fmt.Sprintf("first token verified after %s s; leading after %s s; the restart's %s reconciles done after %s s",
				scaleShow(r["scale_startup_verify_s"]), scaleShow(r["scale_startup_leader_s"]), scaleShow(r["scale_startup_reconciles"]), scaleShow(r["scale_startup_settled_s"]))
		}},
	{key: "scale_verify_live_ratio", what: "the operator's `/verify` throughput ÷ a bare HTTPS handler's, with every token ÷ with the baseline's", op: ">=", target: 0.9,
		detail: func(r results) string {
			return fmt.Sprintf("/verify %s vs %s requests/s (raw ratio %s; baseline: the first %s tokens), the bare handler meanwhile %s vs %s; p99 %s vs %s ms (bare %s vs %s); %s and %s requests not answered 200",
				scaleShow(r["scale_verify_live_full_rps"]), scaleShow(r["scale_verify_live_baseline_rps"]), scaleShow(r["scale_verify_live_raw_ratio"]),
				scaleShow(r["scale_baseline_tokens"]), scaleShow(r["scale_verify_live_full_bare_rps"]), scaleShow(r["scale_verify_live_baseline_bare_rps"]),
				scaleShow(r["scale_verify_live_full_p99_ms"]), scaleShow(r["scale_verify_live_baseline_p99_ms"]),
				scaleShow(r["scale_verify_live_full_bare_p99_ms"]), scaleShow(r["scale_verify_live_baseline_bare_p99_ms"]),
				scaleShow(r["scale_verify_live_full_failures"]), scaleShow(r["scale_verify_live_baseline_failures"]))
		}},
	{key: "scale_verify_inproc_ratio", what: "in-process verifications per second, one core, index of every token ÷ of the baseline's", op: ">=", target: 0.9,
		detail: func(r results) string {
			return fmt.Sprintf("%s vs %s ns/op, %s allocs/op",
				scaleShow(r["scale_verify_inproc_full_ns_per_op"]), scaleShow(r["scale_verify_inproc_baseline_ns_per_op"]), scaleShow(r["scale_verify_inproc_full_allocs_per_op"]))
		}},
	{key: "scale_verify_http_ratio", what: "`/verify` ÷ bare handler throughput (make bench's `verify_http_ratio`), index of every token ÷ of the baseline's", op: ">=", target: 0.9,
		detail: func(r results) string {
			return fmt.Sprintf("%s with every token (%s requests/s), %s with the baseline's (%s requests/s)",
				scaleShow(r["scale_verify_http_full_ratio"]), scaleShow(r["scale_verify_http_full_rps"]),
				scaleShow(r["scale_verify_http_baseline_ratio"]), scaleShow(r["scale_verify_http_baseline_rps"]))
		}},
	{key: "scale_revocation_ms_p99", what: "Team owner removed → each of the Team's tokens refused by `/verify` (p99, ms)", op: "<=", target: 100,
		detail: func(r results) string {
			return fmt.Sprintf("%s tokens; p50 %s, max %s ms; the operator's verification took the Team change in %s ms after the patch was sent, which the polled bounds of %s of the tokens hold (the others count at their upper bound); polled upper bound (refusal received): min %s, p50 %s, p99 %s, max %s ms; lower bound (last 200 sent): p50 %s, p99 %s, max %s ms; %s pollers, one pass over a poller's share %s ms; the Team patch took %s ms; all phase Invalidated after %s s; %s unexpected answers",
				scaleShow(r["scale_revocation_tokens"]), scaleShow(r["scale_revocation_ms_p50"]), scaleShow(r["scale_revocation_ms_max"]),
				scaleShow(r["scale_revocation_verifier_ms"]), scaleShow(r["scale_revocation_verifier_agree"]),
				scaleShow(r["scale_revocation_ms_min_upper_bound"]), scaleShow(r["scale_revocation_ms_p50_upper_bound"]), scaleShow(r["scale_revocation_ms_p99_upper_bound"]), scaleShow(r["scale_revocation_ms_max_upper_bound"]),
				scaleShow(r["scale_revocation_ms_p50_lower_bound"]), scaleShow(r["scale_revocation_ms_p99_lower_bound"]), scaleShow(r["scale_revocation_ms_max_lower_bound"]),
				scaleShow(r["scale_revocation_pollers"]), scaleShow(r["scale_revocation_pass_ms"]), scaleShow(r["scale_revocation_patch_ms"]), scaleShow(r["scale_invalidation_all_phase_s"]),
				scaleShow(r["scale_revocation_unexpected_answers"]))
		}},
	{key: "scale_rbac_unrelated_rechecks", what: "ApiTokens re-checked after a RoleBinding in another namespace", op: "<=", target: 0,
		detail: func(r results) string {
			return fmt.Sprintf("reconciles counted over %s s", scaleShow(r["scale_rbac_unrelated_window_s"]))
		}},
	{key: "scale_rbac_admin_rechecks", what: "ApiTokens re-checked after a ClusterRoleBinding makes one creator an admin", op: "<=", targetKey: "scale_admin_creator_tokens",
		detail: func(r results) string {
			return fmt.Sprintf("that creator has %s tokens, of %s not Invalidated; the last re-check %s s after the change; %s SubjectAccessReviews",
				scaleShow(r["scale_admin_creator_tokens"]), scaleShow(r["scale_rbac_admin_tokens_not_invalidated"]),
				scaleShow(r["scale_rbac_admin_recheck_s"]), scaleShow(r["scale_rbac_admin_reviews"]))
		}},
}

// scaleSection renders the section, markers included.
func scaleSection(r results) string {
	var b strings.Builder
	b.WriteString(scaleBegin + "\n")
	fmt.Fprintf(&b, "## Scale\n\n")
	fmt.Fprintf(&b, "Written by `make bench-scale` on %s, %s cores, %s, in %s minutes. Figures: `bin/bench/scale.json`.\n",
		time.Now().UTC().Format("2006-01-02"), scaleShow(r["scale_cores"]), runtime.Version(), scaleShow(r["scale_minutes"]))
	fmt.Fprintf(&b, `The operator binary (leader election and webhooks on) against a real kube-apiserver and
etcd on the same machine, holding %s ApiTokens in %s namespaces and %s Teams. Every token
was created through both admission webhooks by the harness as a Team owner; one Team,
%s, holds %s of them, and a second creator, %s, has %s tokens of
its own. Re-checks are the operator's own count of ApiToken reconciles
(controller_runtime_reconcile_total, controller apitoken) from a change until nothing was
reconciled for %s s.

| figure | measured | goal | | context |
|---|---|---|---|---|
`, scaleShow(r["scale_tokens"]), scaleShow(r["scale_namespaces"]), scaleShow(r["scale_teams"]),
		"`"+bigTeam+"`", scaleShow(r["scale_revocation_tokens"]), "`"+candidate+"`", scaleShow(r["scale_admin_creator_tokens"]),
		scaleShow(r["scale_quiet_s"]))
	writeGoalRows(&b, scaleGoals, r)
	fmt.Fprintf(&b, `
How each is measured:
- **Issuance**: the first (baseline) tokens, then the rest, each by concurrent creates as
  the Team owner; a cluster-wide watch records when each is first Active. The times are
  the two batches' sums, without the pause between them for the baseline measurement.
- **Memory**: VmRSS of the process (file-backed and anonymous apart) and the Go
  runtime's figures from its metrics (the live heap is go_gc_heap_live_bytes, the heap
  marked live by the last collection), once it has reconciled nothing for %[1]s s.
- **Start-up**: SIGTERM, then a new process; ready is /readyz answering 200, which waits
  for the verification index and the Team table to sync.
- **Live verification**: the operator's /verify over HTTPS, asked about the baseline's
  token values in turn by %[2]s clients in %[3]s rounds of %[4]s s (the median round counts), once
  with only the baseline's tokens and once with every token. Before each round, the same
  clients ask a bare HTTPS handler in the harness (same certificate, same answer) for as
  long: the machine is shared, so the figure is /verify's rate as a fraction of the bare
  handler's at the time, with every token ÷ with the baseline's; the raw ratio is beside it.
- **In-process verification**: internal/verifyhttp's benchmarks (BenchmarkVerifyInProcess,
  BenchmarkVerifyHTTP, BenchmarkBareHTTP) index a fixed 10,000 tokens; test/bench runs the
  same code with an index of the baseline's and of every token, interleaved, %[5]s times each.
- **Revocation**: pollers verify each of the Team's tokens in a loop, each from its own
  forwarded address, until it is refused; the Team patch (an admin removing the owner who
  created them) starts the clock. A token's refusal happened after its last request
  answered 200 was sent (lower bound) and before the refusal arrived (upper bound, which
  includes up to one polling loop). The operator says when its verification took the Team
  change in (`+"`tokenwarden_verification_teams_updated_timestamp_seconds`"+`); a token whose bounds
  hold that instant counts as refused at it, any other at its upper bound.
- **RBAC**: a RoleBinding in one of the namespaces (the operator watches none), then a
  ClusterRoleBinding granting the admin verb on apitokens to the second creator.
`, scaleShow(r["scale_quiet_s"]), scaleShow(r["scale_verify_clients"]), scaleShow(r["scale_verify_rounds"]),
		scaleShow(r["scale_verify_round_s"]), scaleShow(r["scale_bench_count"]))
	b.WriteString(scaleNotes(r))
	if e, ok := r["scale_error"]; ok {
		fmt.Fprintf(&b, "\nThe run failed: %v\n", e)
	}
	writeFigures(&b, r)
	b.WriteString(scaleEnd)
	return b.String()
}

// scaleNotes explains the figures whose goal was missed, as far as the
// run itself shows why.
func scaleNotes(r results) string {
	var notes []string
	num := func(k string) float64 { f, _ := number(r[k]); return f }
	tokens := num("scale_tokens") + num("scale_admin_creator_tokens")
	if _, ok := r["scale_rss_mb"]; ok && num("scale_rss_mb") > 400 {
		notes = append(notes, fmt.Sprintf("- **Memory**: the live heap is %s MB for %s tokens, %s KB a token: every replica caches\n"+
			"  every ApiToken (decoded, without managed fields or last-applied), every token's Secret\n"+
			"  (its metadata and the value's digest), the verification index's record of each digest\n"+
			"  and the cache indexes. The resident set is about twice that: with GOGC=100 and no GOMEMLIMIT\n"+
			"  the heap grows to twice the live heap before a collection, and idle pages return to the\n"+
			"  OS lazily. `-scale-profiles DIR` writes the heap profile that breaks this down.",
			scaleShow(r["heap_live_scale_mb"]), show(tokens), show(round(num("heap_live_scale_mb")*1000/max(tokens, 1), 2))))
	}
	if _, ok := r["scale_startup_ready_s"]; ok && num("scale_startup_ready_s") > 30 {
		notes = append(notes, fmt.Sprintf("- **Start-up**: ready waits for the first list of every ApiToken and every managed Secret\n"+
			"  (%s of each) from kube-apiserver, their decoding into the cache, and the verification\n"+
			"  index built from them.", show(tokens)))
	}
	if _, ok := r["scale_verify_live_ratio"]; ok && num("scale_verify_live_ratio") < 0.9 {
		notes = append(notes, fmt.Sprintf("- **Live verification**: the same verification code with an index of every token\n"+
			"  holds its speed in-process (%s) and behind a bare HTTP loop (%s), so the lookup is not\n"+
			"  what slows at this size. The live process differs in what it holds: a live heap of\n"+
			"  %s MB, which the Go collector marks concurrently with the requests, on a machine whose\n"+
			"  two cores it shares with kube-apiserver and etcd holding every object.",
			scaleShow(r["scale_verify_inproc_ratio"]), scaleShow(r["scale_verify_http_ratio"]), scaleShow(r["heap_live_scale_mb"])))
	}
	if _, ok := r["scale_rbac_admin_rechecks"]; ok && num("scale_rbac_admin_rechecks") > num("scale_admin_creator_tokens") {
		notes = append(notes, fmt.Sprintf("- **Admin change**: %s re-checks for %s tokens of the creator concerned: the change\n"+
			"  was not weighed to its subjects (authz.BindingChange), and a change that cannot be\n"+
			"  weighed re-checks every token not Invalidated.",
			scaleShow(r["scale_rbac_admin_rechecks"]), scaleShow(r["scale_admin_creator_tokens"])))
	}
	if _, ok := r["scale_revocation_ms_p99"]; ok && num("scale_revocation_ms_p99") > 100 {
		notes = append(notes, fmt.Sprintf("- **Revocation**: every token of the Team is refused from the same instant, when the\n"+
			"  verifier's Team table takes the change in: %s ms after the patch was sent. The clock\n"+
			"  starts with the Team patch, which itself took %s ms: kube-apiserver calls the Team webhook,\n"+
			"  which works out which of the %s tokens the change invalidates, to warn of them, before it\n"+
			"  stores the change that the informers then deliver. The polled upper bounds add up to one\n"+
			"  polling pass (%s ms here, over %s pollers).",
			scaleShow(r["scale_revocation_verifier_ms"]), scaleShow(r["scale_revocation_patch_ms"]), scaleShow(r["scale_revocation_tokens"]),
			scaleShow(r["scale_revocation_pass_ms"]), scaleShow(r["scale_revocation_pollers"])))
	}
	if len(notes) == 0 {
		return ""
	}
	return "\nWhat the figures are made of, where a goal is missed:\n" + strings.Join(notes, "\n") + "\n"
}

// scaleShow is show, with "?" for a figure the run did not make.
func scaleShow(v any) string {
	if v == nil {
		return "?"
	}
	return show(v)
}
