#!/usr/bin/env bash
# Runs the verification benchmarks, then test/bench, which measures the
# operator binary against a real control plane and writes docs/benchmarks.md
# and bin/bench/results.json with every figure. The verification figures
# are ratios against a baseline measured in the same run (a bare net/http
# handler driven by the same client loop), because the machines are shared
# and noisy; each benchmark runs COUNT times and the median is reported.
# VERIFY_ONLY=1 stops after these figures (bin/bench/verify.json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

COUNT="${COUNT:-5}"
BENCHTIME="${BENCHTIME:-1s}"
out_dir=bin/bench
mkdir -p "${out_dir}" docs
raw="${out_dir}/verify.txt"

go test -c -o "${out_dir}/verify.test" ./internal/verifyhttp/
echo "bench: in-process verification on one core, ${COUNT} x ${BENCHTIME}" >&2
"${out_dir}/verify.test" -test.run '^$' -test.bench '^BenchmarkVerifyInProcess$' -test.cpu 1 \
	-test.benchtime "${BENCHTIME}" -test.count "${COUNT}" -test.benchmem >"${raw}"
# The HTTP pair runs COUNT times, each time /verify right before the bare
# handler, so that each ratio compares two measurements taken moments apart
# on this shared machine; the ratios' median is reported.
echo "bench: /verify over loopback against a bare handler, ${COUNT} pairs x ${BENCHTIME}" >&2
for _ in $(seq "${COUNT}"); do
	"${out_dir}/verify.test" -test.run '^$' -test.bench '^Benchmark(VerifyHTTP|BareHTTP)$' \
		-test.benchtime "${BENCHTIME}" -test.count 1 -test.benchmem >>"${raw}"
done

# median NAME UNIT: the median of UNIT's values over NAME's runs.
median() {
	awk -v name="$1" -v unit="$2" '
		$1 ~ "^"name"(-[0-9]+)?$" { for (i = 3; i < NF; i++) if ($(i+1) == unit) print $i }' "${raw}" |
		sort -g | awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "NaN"; exit }
			print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'
}

# pair_ratio UNIT: the median over the pairs of BareHTTP's UNIT ÷
# VerifyHTTP's (INVERT=1: VerifyHTTP's ÷ BareHTTP's).
pair_ratio() {
	awk -v unit="$1" -v invert="${2:-0}" '
		function value(   i) { for (i = 3; i < NF; i++) if ($(i+1) == unit) return $i }
		$1 ~ /^BenchmarkVerifyHTTP(-[0-9]+)?$/ { v = value() }
		$1 ~ /^BenchmarkBareHTTP(-[0-9]+)?$/ && v != "" { b = value(); print (invert ? v / b : b / v); v = "" }' "${raw}" |
		sort -g | awk '{ r[NR] = $1 } END {
			if (NR == 0) { print "NaN"; exit }
			printf "%.3f %.3f\n", (NR % 2) ? r[(NR+1)/2] : (r[NR/2] + r[NR/2+1]) / 2, r[1] }'
}

inproc_ns=$(median BenchmarkVerifyInProcess ns/op)
inproc_allocs=$(median BenchmarkVerifyInProcess allocs/op)
verify_ns=$(median BenchmarkVerifyHTTP ns/op)
bare_ns=$(median BenchmarkBareHTTP ns/op)
read -r http_ratio http_ratio_min < <(pair_ratio ns/op)
read -r p99_ratio _ < <(pair_ratio p99-ns 1)

read -r inproc_per_sec verify_rps bare_rps < <(awk -v i="${inproc_ns}" -v v="${verify_ns}" -v b="${bare_ns}" 'BEGIN {
		printf "%.0f %.0f %.0f\n", 1e9 / i, 1e9 / v, 1e9 / b }')

cat >"${out_dir}/verify.json" <<EOF
{
  "verify_inproc_per_sec": ${inproc_per_sec},
  "verify_inproc_ns_per_op": ${inproc_ns},
  "verify_inproc_allocs_per_op": ${inproc_allocs},
  "verify_http_ratio": ${http_ratio},
  "verify_http_ratio_min": ${http_ratio_min},
  "verify_http_rps": ${verify_rps},
  "bare_http_rps": ${bare_rps},
  "verify_http_p99_ratio": ${p99_ratio}
}
EOF

if [[ "${VERIFY_ONLY:-0}" == 1 ]]; then
	cat "${out_dir}/verify.json"
	exit 0
fi

# The cluster figures: the real binary against a real control plane. This
# writes bin/bench/results.json (with the figures above) and
# docs/benchmarks.md.
echo "bench: the operator against a real control plane (about 15 minutes)" >&2
go run ./test/bench -verify "${out_dir}/verify.json" \
	-results "${out_dir}/results.json" -doc docs/benchmarks.md ${BENCH_ARGS:-}
