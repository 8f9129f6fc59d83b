#!/usr/bin/env bash
# Runs the verification benchmarks, then test/bench, which measures the
# operator binary against a real control plane and writes docs/benchmarks.md
# and bin/bench/results.json with every figure. The verification figures
# are ratios against a baseline measured in the same run (a bare net/http
# handler driven by the same client loop), because the machines are shared
# and noisy; each benchmark runs COUNT times and the median is reported.
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

cat >"${out_dir}/verify.json" <<EOF
{
  "verify_inproc_per_sec": ${inproc_per_sec},
  "verify_inproc_ns_per_op": ${inproc_ns},
  "verify_inproc_allocs_per_op": ${inproc_allocs},
  "verify_http_ratio": ${http_ratio},
  "verify_http_rps": ${verify_rps},
  "bare_http_rps": ${bare_rps},
  "verify_http_p99_ratio": ${p99_ratio}
}
EOF

# The cluster figures: the real binary against a real control plane. This
# writes bin/bench/results.json (with the figures above) and
# docs/benchmarks.md.
echo "bench: the operator against a real control plane (about 20 minutes)" >&2
go run ./test/bench -verify "${out_dir}/verify.json" \
	-results "${out_dir}/results.json" -doc docs/benchmarks.md ${BENCH_ARGS:-}
