#!/usr/bin/env bash
# make bench in miniature (tests/bench/bench.sh on the test run's cluster,
# BENCH_PGHOST, to spare an initdb; release builds): 300 invoices, a 5 ms simulator, a 3 s steady phase at
# 100 charges/s, 50 requests in flight for 1 s for the memory phase, the SQL floor;
# no baselines, no sweeps. It checks that every phase ran, that the checker
# passed on each phase's database, and the `bench:` line's format (CONTRACT.md,
# "Performance report"). The figures themselves are never asserted.
source "$(dirname "$0")/../lib/system.sh"

DIR=$(mktemp -d /tmp/cg-bench-smoke.XXXXXX)
trap 'rm -rf "$DIR"; _system_cleanup' EXIT
N=300

t0=$SECONDS
BENCH_DIR=$DIR BENCH_INVOICES=$N BENCH_LATENCY_MS=5 BENCH_RATE=100 BENCH_STEADY_S=3 BENCH_STEADY_LEAD_S=1 \
  BENCH_RSS_INFLIGHT=50 BENCH_RSS_LATENCY_MS=1000 BENCH_PHASES="main steady rss floor" \
  BENCH_PGHOST=$PGHOST BENCH_TEMPLATE=$CG_TEMPLATE BENCH_TIMEOUT=60 BENCH_PROGRESS_S=5 \
  "$CG_ROOT/tests/bench/bench.sh" >"$TEST_TMP/out" 2>"$TEST_TMP/err"
rc=$?
diag "bench.sh ran in $((SECONDS - t0)) s"
is "$rc" 0 "bench.sh exits 0"
out=$(cat "$TEST_TMP/out")
sed 's/^/# /' "$TEST_TMP/err"  # its progress, with its clock

last=$(tail -1 <<<"$out")
like "$last" '^bench: charges_per_s=[0-9]+ floor_ratio=[0-9]+\.[0-9]+ peer_ratio=([0-9]+\.[0-9]+|na) p50_ms=[0-9]+(\.[0-9]+)? p99_ms=[0-9]+(\.[0-9]+)? rss_mb=[0-9]+\.[0-9]$' \
  "the last line is the bench: line with every figure"
like "$out" "charges/s \(first enqueue -> last record\) +[0-9]+ \($N charges in" \
  "the main run counted all $N charges"
is "$(grep -c 'checker (invariants) *pass$' <<<"$out")" 3 \
  "the checker passed after the main, steady and memory phases"
like "$out" "latency commit -> arrival \(ms\) +p50 [0-9.]+ .*\(300 charges\)" \
  "the steady phase measured the latency of all 300 charges"
like "$out" "in flight reached +relay_inflight 50, 50 at once at the simulator" \
  "the memory phase really had 50 requests in flight"
like "$out" "SQL floor .* [0-9]+ charges/s \($N in" "the SQL floor charged all $N"
like "$out" "peer_ratio \(ours / graphile-worker\) +na" "baselines left out: peer_ratio na"

done_testing
