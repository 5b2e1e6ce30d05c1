# tests/bench/report.sh: the table at the end of make bench (sourced by
# bench.sh once every phase has set its figures). docs/performance.md says
# how each row is measured.

_row() { printf '  %-44s %s\n' "$1" "$2"; }

_baseline_row() { # LABEL RESULT ("charged seconds rate" or empty)
  local charged secs rate
  if [ -z "$2" ]; then _row "$1" "not available"; return; fi
  read -r charged secs rate <<<"$2"
  _row "$1" "$rate charges/s ($charged in $secs s, its own clock)"
}

report_table() {
  echo
  echo "== chargeguard bench ($(date -u +%FT%TZ), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  _row "settings" "latency ${LATENCY} ms, in flight $INFLIGHT, batches claim $CLAIM_BATCH / record $RECORD_BATCH / charger $CHARGER_BATCH, $RELAYS relay(s), fsync ${BENCH_FSYNC:-on}"
  echo "-- main run: $N invoices at once"
  _row "charges/s (first enqueue -> last record)" "$MAIN_RATE ($MAIN_N charges in $MAIN_S s)"
  _row "burst latency commit -> arrival (ms)" "p50 $MAIN_P50  p90 $MAIN_P90  p99 $MAIN_P99  max $MAIN_MAX (queueing: all due at once)"
  _row "relay CPU s per 1000 charges" "$MAIN_RELAY_CPU (emails included)"
  _row "PostgreSQL CPU s per 1000 charges" "$MAIN_PG_CPU"
  _row "relay peak RSS (VmHWM)" "$MAIN_RSS_MB MB"
  _row "checker (invariants)" "$MAIN_CHECK"
  echo "-- steady rate: $RATE charges/s for $STEADY_S s (the bench line's p50/p99)"
  _row "latency commit -> arrival (ms)" "p50 $STEADY_P50  p90 $STEADY_P90  p99 $STEADY_P99  max $STEADY_MAX ($STEADY_N charges)"
  _row "checker (invariants)" "$STEADY_CHECK"
  echo "-- memory: --max-inflight $RSS_INFLIGHT, simulator answering after $RSS_LATENCY ms (the bench line's rss_mb)"
  _row "relay peak RSS (VmHWM)" "$RSS_MB MB"
  _row "in flight reached" "relay_inflight $RSS_PEAK_INFLIGHT, $RSS_SIM_CONCURRENT at once at the simulator"
  _row "checker (invariants)" "$RSS_CHECK"
  echo "-- baselines, same cluster"
  _row "SQL floor (pgbench, $FLOOR_CLIENTS clients, no HTTP)" "$FLOOR_RATE charges/s ($FLOOR_DONE in $FLOOR_S s)"
  _row "floor_ratio (ours / floor)" "$FLOOR_RATIO"
  _baseline_row "naive loop ($NAIVE_N invoices)" "$NAIVE_RESULT"
  _baseline_row "graphile-worker ($GRAPHILE_N invoices)" "$GRAPHILE_RESULT"
  _row "peer_ratio (ours / graphile-worker)" "$PEER_RATIO"
  [ -n "${SWEEP_SUMMARY:-}" ] && { echo "-- sweeps"; echo "$SWEEP_SUMMARY"; }
  echo
}
