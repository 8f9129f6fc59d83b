#!/usr/bin/env bash
# Runs the verification benchmarks and writes docs/benchmarks.md and
# bin/bench/results.json. Figures are ratios against a baseline measured in
# the same run (a bare net/http handler driven by the same client loop),
# because the machines are shared and noisy; each benchmark runs COUNT times
# and the median is reported.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

COUNT="${COUNT:-5}"
BENCHTIME="${BENCHTIME:-1s}"
out_dir=bin/bench
mkdir -p "${out_dir}" docs
raw="${out_dir}/verify.txt"

echo "bench: in-process verification on one core, ${COUNT} x ${BENCHTIME}" >&2
go test ./internal/verify/ -run '^$' -bench '^BenchmarkVerifyInProcess$' -cpu 1 \
	-benchtime "${BENCHTIME}" -count "${COUNT}" -benchmem >"${raw}"
echo "bench: /verify over loopback against a bare handler, interleaved, ${COUNT} x ${BENCHTIME}" >&2
go test ./internal/verify/ -run '^$' -bench '^Benchmark(VerifyHTTP|BareHTTP)$' \
	-benchtime "${BENCHTIME}" -count "${COUNT}" -benchmem >>"${raw}"

# median NAME UNIT: the median of UNIT's values over NAME's runs.
median() {
	awk -v name="$1" -v unit="$2" '
		$1 ~ "^"name"(-[0-9]+)?$" { for (i = 3; i < NF; i++) if ($(i+1) == unit) print $i }' "${raw}" |
		sort -g | awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "NaN"; exit }
			print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'
}

inproc_ns=$(median BenchmarkVerifyInProcess ns/op)
inproc_allocs=$(median BenchmarkVerifyInProcess allocs/op)
verify_ns=$(median BenchmarkVerifyHTTP ns/op)
bare_ns=$(median BenchmarkBareHTTP ns/op)
verify_p99=$(median BenchmarkVerifyHTTP p99-ns)
bare_p99=$(median BenchmarkBareHTTP p99-ns)

read -r inproc_per_sec http_ratio p99_ratio verify_rps bare_rps < <(awk -v i="${inproc_ns}" -v v="${verify_ns}" -v b="${bare_ns}" \
	-v vp="${verify_p99}" -v bp="${bare_p99}" 'BEGIN {
		printf "%.0f %.3f %.3f %.0f %.0f\n", 1e9 / i, b / v, (bp > 0 ? vp / bp : 0), 1e9 / v, 1e9 / b }')

verdict() { awk -v x="$1" -v goal="$2" -v dir="$3" 'BEGIN { ok = (dir == ">=") ? x >= goal : x <= goal; print ok ? "met" : "not met" }'; }

cat >"${out_dir}/results.json" <<EOF
{
  "verify_inproc_per_sec": ${inproc_per_sec},
  "verify_inproc_allocs_per_op": ${inproc_allocs},
  "verify_http_ratio": ${http_ratio},
  "verify_http_p99_ratio": ${p99_ratio}
}
EOF

cat >docs/benchmarks.md <<EOF
# Benchmarks

Written by \`make bench\` (hack/bench.sh) on $(date -u +%Y-%m-%d), $(nproc) cores, $(go env GOVERSION).
Each figure is the median of ${COUNT} runs of ${BENCHTIME}; the HTTP figures are ratios
against a bare \`net/http\` handler measured by the same client loop in the same run, since
the machines are shared and noisy. Raw output: \`bin/bench/verify.txt\`; figures:
\`bin/bench/results.json\`.

| figure | measured | goal | |
|---|---|---|---|
| in-process verifications per second, one core (\`verify_inproc_per_sec\`) | ${inproc_per_sec} (${inproc_ns} ns/op, ${inproc_allocs} allocs/op) | ≥ 3,000,000 | $(verdict "${inproc_per_sec}" 3000000 ">=") |
| \`/verify\` throughput ÷ bare handler (\`verify_http_ratio\`) | ${http_ratio} (${verify_rps} vs ${bare_rps} requests/s) | ≥ 0.8 | $(verdict "${http_ratio}" 0.8 ">=") |
| \`/verify\` p99 ÷ bare handler p99 | ${p99_ratio} (${verify_p99} vs ${bare_p99} ns) | ≤ 1.25 | $(verdict "${p99_ratio}" 1.25 "<=") |

The HTTP benchmarks run client and server in one process over loopback with keep-alive,
so both sides share the two cores; the bare handler writes a small JSON body of similar
size. The in-process benchmark verifies a Team token among 10,000 indexed ones: checksum,
SHA-256, index lookup, constant-time compare, state and expiry checks.
EOF
cat docs/benchmarks.md
