# tests/bench/baselines.sh: the two baselines of issue 7 (sourced by
# bench.sh), each on its own fresh database seeded by bench_seed, against a
# fresh simulator at the same latency. Each is optional: absent, the table
# says "not available" and the bench line's peer_ratio is "na".
#   build/bench/naive_loop --db CONNINFO --gateway-url URL --key-file PATH
#       select, POST, record, one invoice at a time; last line
#       "naive: charged=N seconds=S"
#   tests/bench/graphile/run.sh CONNINFO GATEWAY_URL KEYFILE CONCURRENCY
#       graphile-worker, one job per charge; last line
#       "graphile: charged=N seconds=S"
# Their rates are their own figures (charged / seconds), not the database's.

NAIVE_BIN=${NAIVE_BIN:-$CG_ROOT/build/bench/naive_loop}
GRAPHILE_RUN=${GRAPHILE_RUN:-$CG_ROOT/tests/bench/graphile/run.sh}

# baseline_result NAME LOGFILE: "charged seconds rate" from the last line
baseline_result() {
  local line charged secs
  line=$(grep -E "^$1: charged=[0-9]+ seconds=[0-9.]+" "$2" | tail -1)
  [ -n "$line" ] || return 1
  charged=$(sed -E 's/.*charged=([0-9]+).*/\1/' <<<"$line")
  secs=$(sed -E 's/.*seconds=([0-9.]+).*/\1/' <<<"$line")
  echo "$charged $secs $(calc %.0f "$charged / ($secs > 0 ? $secs : 1)")"
}

# baseline_prepare NAME DB N: a seeded database and a fresh simulator
# (SIM_URL changes)
baseline_prepare() {
  bench_db_new "$2" && bench_seed "$2" "$3" >/dev/null || die "$1: seeding"
  sim_restart --latency-ms "$LATENCY" || die "$1: simulator"
  progress "$1: $3 invoices (log: $DIR/$1.log)"
}

# baseline_run NAME COMMAND...: runs COMMAND (bounded by BENCH_TIMEOUT),
# sets NAME_RESULT to "charged seconds rate", or "" when it gave none.
baseline_run() {
  local name=$1; shift
  local log=$DIR/$name.log
  timeout "$BENCH_TIMEOUT" "$@" >"$log" 2>&1
  local rc=$?
  local res
  res=$(baseline_result "$name" "$log") || { progress "$name: exit $rc, no result line"; res=""; }
  printf -v "${name^^}_RESULT" '%s' "$res"
  [ -n "$res" ] && progress "$name: charged, seconds, rate: $res"
}

phase_peers() {
  local key=$DIR/gateway.key
  (umask 077; echo "$RELAY_KEY" >"$key")
  NAIVE_RESULT="" GRAPHILE_RESULT="" GRAPHILE_RATE=""
  if [ -x "$NAIVE_BIN" ]; then
    baseline_prepare naive bench_naive "$NAIVE_N"
    baseline_run naive "$NAIVE_BIN" --db "dbname=bench_naive host=$PGHOST" \
      --gateway-url "$SIM_URL" --key-file "$key"
  else
    progress "naive: not available ($NAIVE_BIN not built)"
  fi
  if [ -x "$GRAPHILE_RUN" ]; then
    baseline_prepare graphile bench_graphile "$GRAPHILE_N"
    baseline_run graphile "$GRAPHILE_RUN" "dbname=bench_graphile host=$PGHOST" \
      "$SIM_URL" "$key" "$GRAPHILE_CONCURRENCY"
    [ -n "$GRAPHILE_RESULT" ] && GRAPHILE_RATE=${GRAPHILE_RESULT##* }
  else
    progress "peer: not available ($GRAPHILE_RUN missing)"
  fi
}
