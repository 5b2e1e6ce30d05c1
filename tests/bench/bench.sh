#!/usr/bin/env bash
# make bench: chargeguard's benchmark (issue 7; method in docs/performance.md).
# A private cluster, release builds, the gateway simulator and the SMTP sink;
# phases, each on a fresh database:
#   main     BENCH_INVOICES due invoices, charger --once and BENCH_RELAYS relays:
#            charges/s, burst latency, relay CPU and PostgreSQL CPU per 1000
#   steady   BENCH_RATE charges/s for BENCH_STEADY_S s: commit -> arrival latency
#   rss      1000 requests in flight against a slow simulator: relay peak RSS
#   floor    the same SQL in pgbench, no HTTP (tests/bench/floor.sh)
#   peers    the naive loop and graphile-worker, when built (tests/bench/baselines.sh)
#   sweeps   BENCH_SWEEP=1, BENCH_SCALE=1M|10M (tests/bench/sweep.sh)
# Progress on stderr; the table and, last, the `bench:` line on stdout.
# Exit 0 when every phase ran and the checker passed on each.
set -uo pipefail
CG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$CG_ROOT" || exit 2
export CG_ROOT

if [ $# -gt 0 ]; then
  case "$1" in
    --help|-h)
      sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      echo "Settings are BENCH_* environment variables; the list, the method and how to"
      echo "read the table: docs/performance.md."
      exit 0 ;;
    *) echo "bench: no arguments (settings are BENCH_* variables; see --help)" >&2; exit 2 ;;
  esac
fi

N=${BENCH_INVOICES:-100000}
LATENCY=${BENCH_LATENCY_MS:-50}
INFLIGHT=${BENCH_INFLIGHT:-1000}
CLAIM_BATCH=${BENCH_CLAIM_BATCH:-100}
RECORD_BATCH=${BENCH_RECORD_BATCH:-200}
CHARGER_BATCH=${BENCH_CHARGER_BATCH:-500}
RELAYS=${BENCH_RELAYS:-1}
DIR=${BENCH_DIR:-/tmp/chargeguard-bench}
RATE=${BENCH_RATE:-500}
STEADY_S=${BENCH_STEADY_S:-20}
STEADY_LEAD_S=${BENCH_STEADY_LEAD_S:-2}
RSS_INFLIGHT=${BENCH_RSS_INFLIGHT:-1000}
# slow enough that every request is out before the first answer is back,
# on a loaded machine too (under --http-timeout's 30 s)
RSS_LATENCY=${BENCH_RSS_LATENCY_MS:-8000}
FLOOR_N=${BENCH_FLOOR_INVOICES:-$N}
FLOOR_CLIENTS=${BENCH_FLOOR_CLIENTS:-4}
NAIVE_N=${BENCH_BASELINE_INVOICES:-1000}
GRAPHILE_N=${BENCH_GRAPHILE_INVOICES:-5000}
GRAPHILE_CONCURRENCY=${BENCH_GRAPHILE_CONCURRENCY:-50}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-900}
PROGRESS_S=${BENCH_PROGRESS_S:-2}
LOG_LEVEL=${BENCH_LOG_LEVEL:-warn}
# the smoke test leaves the baselines out (their cost is theirs)
PHASES=${BENCH_PHASES:-main steady rss floor peers}
for p in $PHASES; do
  [[ " main steady rss floor peers " == *" $p "* ]] || { echo "bench: unknown phase '$p' in BENCH_PHASES" >&2; exit 2; }
done
[[ " $PHASES " == *" main "* ]] || { echo "bench: BENCH_PHASES must include main" >&2; exit 2; }
for v in N LATENCY INFLIGHT CLAIM_BATCH RECORD_BATCH CHARGER_BATCH RELAYS RATE STEADY_S STEADY_LEAD_S \
         RSS_INFLIGHT RSS_LATENCY FLOOR_N FLOOR_CLIENTS NAIVE_N GRAPHILE_N BENCH_TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] ||
    { echo "bench: $v must be a positive integer, not '${!v}'" >&2; exit 2; }
done

export TEST_TMP=$DIR CG_BIN=$CG_ROOT/build/bin
source tests/bench/lib.sh
source tests/lib/peers.sh
source tests/bench/floor.sh
source tests/bench/baselines.sh
# production's timings (lease, timeouts, schedules); logs at warn: one line
# per charge at info would be part of what is measured
RELAY_TEST_ARGS=(--poll-interval 1 --log-level "$LOG_LEVEL" --mail-from billing@chargeguard.bench)
RELAY_KEY=sk_test_chargeguard_bench
export RELAY_TEST_KEY=$RELAY_KEY

progress() { printf '[bench %5ds] %s\n' "$SECONDS" "$*" >&2; }
sql() { local db=$1 q=$2; shift 2; psql -X -At -q -v ON_ERROR_STOP=1 -d "$db" "$@" -c "$q"; }
die() { progress "FAILED: $*"; exit 1; }
charger_db() { echo "dbname=$1 user=charger_app host=$PGHOST"; }

# watch DB TOTAL LABEL [PID]: progress every PROGRESS_S s until TOTAL charges
# have an outcome and their emails are sent (bounded by BENCH_TIMEOUT; PID, a
# daemon that must stay up). Returns 1 on timeout or when PID died.
watch() {
  local db=$1 total=$2 label=$3 pid=${4:-} deadline=$((SECONDS + BENCH_TIMEOUT)) next=0
  local done_n mails last=0 last_t=$SECONDS
  while [ $SECONDS -lt $deadline ]; do
    IFS='|' read -r done_n mails <<<"$(sql "$db" "
      SELECT count(*) FILTER (WHERE kind = 'charge' AND state IN ('succeeded', 'declined', 'failed')),
             count(*) FILTER (WHERE kind = 'email' AND state <> 'sent')
        FROM outbox.messages WHERE id < $BENCH_PREFILL_BASE")"
    if [ $SECONDS -ge $next ]; then
      progress "$label: $done_n of $total charged, $mails emails to go" \
               "($(( (done_n - last) / (SECONDS - last_t > 0 ? SECONDS - last_t : 1) ))/s)"
      last=$done_n last_t=$SECONDS next=$((SECONDS + PROGRESS_S))
    fi
    [ "$done_n" -ge "$total" ] && [ "$mails" = 0 ] && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      progress "$label: process $pid exited"; return 1
    fi
    sleep 0.5
  done
  progress "$label: timed out after $BENCH_TIMEOUT s"
  return 1
}

# wait_relays DB N: until N relays hold their database connection
wait_relays() {
  local i
  for i in $(seq 100); do
    [ "$(sql "$1" "SELECT count(*) FROM pg_stat_activity WHERE datname = '$1'
                   AND application_name = 'chargeguard-relay'")" -ge "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

# check DB LABEL: the checker on the simulator's ledger as saved in
# DIR/ledger_LABEL.json and the SMTP ledger; its output in DIR/check_LABEL.txt
check() {
  "$CHECKER" --db "dbname=$1" --gateway-ledger "$DIR/ledger_$2.json" \
    --smtp-ledger "$SMTP_LEDGER" --expect-settled >"$DIR/check_$2.txt" 2>&1
}

relays_start() { # DB NAME_PREFIX [ARGS]
  local db=$1 prefix=$2 i; shift 2
  for i in $(seq "$RELAYS"); do relay_start "${prefix}_relay$i" "$db" "$@"; done
}

# relays_stop PREFIX: SIGTERM each; 1 when one did not exit 0
relays_stop() {
  local i rc=0
  for i in $(seq "$RELAYS"); do
    relay_stop "$1_relay$i" TERM
    [ "$RELAY_RC" = 0 ] || { progress "relay $1_relay$i exited $RELAY_RC"; rc=1; }
  done
  return $rc
}

# ---- main run --------------------------------------------------------------
# drain DB N LABEL LATENCY_MS INFLIGHT: N invoices already seeded in DB; a
# fresh simulator and sink, RELAYS relays, charger --once; until settled.
# Sets RUN_CPU (the relays' CPU s), RUN_HWM (kB, the largest relay's),
# RUN_PG_CPU (PostgreSQL's CPU s during the run); the ledger is left in
# DIR/ledger_LABEL.json. Dies when it does not settle.
drain() {
  local db=$1 n=$2 label=$3 latency=$4 inflight=$5 pg0 i pid charger
  sim_restart --latency-ms "$latency" || die "$label: simulator"
  smtp_restart || die "$label: SMTP sink"
  pg0=$(pg_cpu)
  relays_start "$db" "$label" --max-inflight "$inflight" --claim-batch "$CLAIM_BATCH" \
    --record-batch "$RECORD_BATCH"
  wait_relays "$db" "$RELAYS" || die "$label: the relays did not connect (see $DIR/${label}_relay1.log)"
  "$CG_BIN/charger" --once --batch "$CHARGER_BATCH" --log-level warn \
    --db "$(charger_db "$db")" >"$DIR/charger_$label.log" 2>&1 &
  charger=$!
  watch "$db" "$n" "$label" "${RELAY_PIDS[${label}_relay1]}" || die "$label: not settled (logs in $DIR)"
  wait $charger || die "$label: charger failed: $(tail -2 "$DIR/charger_$label.log")"
  RUN_CPU=0 RUN_HWM=0
  for i in $(seq "$RELAYS"); do
    pid=${RELAY_PIDS[${label}_relay$i]}
    RUN_CPU=$(calc %.2f "$RUN_CPU + $(proc_cpu "$pid")")
    RUN_HWM=$(( $(vm_hwm_kb "$pid") > RUN_HWM ? $(vm_hwm_kb "$pid") : RUN_HWM ))
  done
  RUN_PG_CPU=$(calc %.2f "$(pg_cpu) - $pg0")
  relays_stop "$label" || die "$label: relay stop"
  curl -sf "$SIM_URL/_ledger" >"$DIR/ledger_$label.json" || die "$label: no simulator ledger"
}

phase_main() {
  local db=bench_main
  progress "main: seeding $N invoices"
  bench_db_new $db && bench_seed $db "$N" >/dev/null || die "main: seeding"
  drain $db "$N" main "$LATENCY" "$INFLIGHT"
  check $db main && MAIN_CHECK=pass || MAIN_CHECK=FAIL
  read -r MAIN_N MAIN_S MAIN_RATE <<<"$(bench_throughput $db)"
  read -r _ MAIN_P50 MAIN_P90 MAIN_P99 MAIN_MAX <<<"$(bench_latency $db "$DIR/ledger_main.json")"
  MAIN_RSS_MB=$(calc %.1f "$RUN_HWM / 1024")
  MAIN_RELAY_CPU=$(calc %.3f "$RUN_CPU * 1000 / $MAIN_N")
  MAIN_PG_CPU=$(calc %.3f "$RUN_PG_CPU * 1000 / $MAIN_N")
  progress "main: $MAIN_N charges in $MAIN_S s = $MAIN_RATE/s; checker: $MAIN_CHECK"
}

# ---- steady rate -----------------------------------------------------------
phase_steady() {
  local db=bench_steady n=$((RATE * STEADY_S)) start charger
  bench_db_new $db || die "steady: database"
  # due from STEADY_LEAD_S from now on: the charger is up by then
  start=$(calc %.3f "$(date +%s.%N) + $STEADY_LEAD_S")
  bench_seed $db "$n" "$start" "$RATE" >/dev/null || die "steady: seeding"
  sim_restart --latency-ms "$LATENCY" || die "steady: simulator"
  smtp_restart || die "steady: SMTP sink"
  relays_start $db steady --max-inflight "$INFLIGHT" --claim-batch "$CLAIM_BATCH" \
    --record-batch "$RECORD_BATCH"
  wait_relays $db "$RELAYS" || die "steady: the relays did not connect"
  "$CG_BIN/charger" --interval 0.1 --batch "$CHARGER_BATCH" --log-level warn \
    --db "$(charger_db $db)" >"$DIR/charger_steady.log" 2>&1 &
  charger=$!
  progress "steady: $n invoices falling due at $RATE/s"
  watch $db "$n" steady "$charger" || die "steady: not settled (logs in $DIR)"
  kill -TERM $charger; wait $charger
  relays_stop steady || die "steady: relay stop"
  curl -sf "$SIM_URL/_ledger" >"$DIR/ledger_steady.json" || die "steady: no simulator ledger"
  check $db steady && STEADY_CHECK=pass || STEADY_CHECK=FAIL
  read -r STEADY_N STEADY_P50 STEADY_P90 STEADY_P99 STEADY_MAX \
    <<<"$(bench_latency $db "$DIR/ledger_steady.json")"
  progress "steady: p50 $STEADY_P50 ms, p99 $STEADY_P99 ms over $STEADY_N charges; checker: $STEADY_CHECK"
}

# ---- relay memory with RSS_INFLIGHT requests in flight ----------------------
phase_rss() {
  local db=bench_rss n=$((RSS_INFLIGHT + RSS_INFLIGHT / 5)) pid url="" peak=0 g hwm
  bench_db_new $db && bench_seed $db "$n" >/dev/null || die "rss: seeding"
  sim_restart --latency-ms "$RSS_LATENCY" || die "rss: simulator"
  smtp_restart || die "rss: SMTP sink"
  # one relay; info logging for the metrics address line
  RELAY_TEST_ARGS=(--poll-interval 1 --log-level info --mail-from billing@chargeguard.bench)
  relay_start rss1 $db --max-inflight "$RSS_INFLIGHT" --claim-batch "$CLAIM_BATCH" \
    --record-batch "$RECORD_BATCH" --metrics-listen 127.0.0.1:0
  RELAY_TEST_ARGS=(--poll-interval 1 --log-level "$LOG_LEVEL" --mail-from billing@chargeguard.bench)
  pid=${RELAY_PIDS[rss1]}
  for _ in $(seq 100); do
    url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/metrics' "$DIR/rss1.log" | head -1)
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || die "rss: no metrics address in $DIR/rss1.log"
  "$CG_BIN/charger" --once --batch "$CHARGER_BATCH" --log-level warn \
    --db "$(charger_db $db)" >"$DIR/charger_rss.log" 2>&1 || die "rss: charger"
  # in flight peaks while the first answers are still RSS_LATENCY away
  local deadline=$((SECONDS + 30))
  while [ $SECONDS -lt $deadline ] && [ "$peak" -lt "$RSS_INFLIGHT" ]; do
    g=$(curl -sf "$url" | awk '$1 == "relay_inflight" { print int($2) }')
    [ -n "$g" ] && [ "$g" -gt "$peak" ] && peak=$g
    sleep 0.05
  done
  watch $db "$n" rss "$pid" || die "rss: not settled"
  hwm=$(vm_hwm_kb "$pid")
  relay_stop rss1 TERM
  curl -sf "$SIM_URL/_ledger" >"$DIR/ledger_rss.json" || die "rss: no simulator ledger"
  check $db rss && RSS_CHECK=pass || RSS_CHECK=FAIL
  RSS_PEAK_INFLIGHT=$peak
  RSS_SIM_CONCURRENT=$(jq '[.requests[] | select(.path == "/v1/charges")
      | ([.t_start, 1], [.t_end, -1])] | sort
      | reduce .[] as $e ({c: 0, m: 0}; .c += $e[1] | .m = ([.m, .c] | max)) | .m' \
      "$DIR/ledger_rss.json")
  RSS_MB=$(calc %.1f "$hwm / 1024")
  [ "$peak" -ge "$RSS_INFLIGHT" ] ||
    progress "rss: WARNING: in flight peaked at $peak, short of $RSS_INFLIGHT: raise BENCH_RSS_LATENCY_MS"
  progress "rss: VmHWM $RSS_MB MB; in flight: relay_inflight peaked at $peak," \
           "$RSS_SIM_CONCURRENT concurrent at the simulator; checker: $RSS_CHECK"
}

# ---- SQL floor ---------------------------------------------------------------
phase_floor() {
  bench_db_new bench_floor && bench_seed bench_floor "$FLOOR_N" >/dev/null || die "floor: seeding"
  read -r FLOOR_DONE FLOOR_S FLOOR_RATE <<<"$(floor_run bench_floor "$FLOOR_N")" || die "floor failed"
  progress "floor: $FLOOR_DONE charges in $FLOOR_S s = $FLOOR_RATE/s"
}

mkdir -p "$DIR"
stop_all() {
  peers_stop_all
  [ "${BENCH_OWN_CLUSTER:-}" = 1 ] && [ -f "$DIR/data/postmaster.pid" ] && cluster_stop "$DIR" fast
  [ "${BENCH_OWN_CLUSTER:-}" = 0 ] && for db in $BENCH_DBS; do dropdb --if-exists --force "$db" 2>/dev/null; done
}
# on a shared server (BENCH_PGHOST), the databases made here are dropped at the end
BENCH_DBS="bench_main bench_steady bench_rss bench_floor bench_naive bench_graphile bench_sweep"
trap stop_all EXIT
BENCH_OWN_CLUSTER=1 stop_all
rm -rf "$DIR"/data "$DIR"/*.log "$DIR"/*.json "$DIR"/*.txt "$DIR"/sim.* "$DIR"/smtp.*
progress "chargeguard bench: $N invoices, latency $LATENCY ms, in flight $INFLIGHT," \
         "claim/record/charger batches $CLAIM_BATCH/$RECORD_BATCH/$CHARGER_BATCH, $RELAYS relay(s); in $DIR"
bench_cluster_start "$DIR" || die "cannot start PostgreSQL"

# figures of a phase left out read "na"
for v in STEADY_N STEADY_P50 STEADY_P90 STEADY_P99 STEADY_MAX RSS_MB RSS_PEAK_INFLIGHT \
         RSS_SIM_CONCURRENT FLOOR_DONE FLOOR_S FLOOR_RATE; do printf -v "$v" na; done
NAIVE_RESULT="" GRAPHILE_RESULT="" GRAPHILE_RATE=""
MAIN_CHECK=- STEADY_CHECK=- RSS_CHECK=-
for p in $PHASES; do "phase_$p"; done
[ "${BENCH_SWEEP:-0}" = 1 ] || [ -n "${BENCH_SCALE:-}" ] && { source tests/bench/sweep.sh; sweep_all; }

FLOOR_RATIO=na
[ "$FLOOR_RATE" != na ] && FLOOR_RATIO=$(calc %.2f "$MAIN_RATE / $FLOOR_RATE")
if [ -n "${GRAPHILE_RATE:-}" ]; then PEER_RATIO=$(calc %.2f "$MAIN_RATE / $GRAPHILE_RATE"); else PEER_RATIO=na; fi
source tests/bench/report.sh
report_table
ok=1
for c in "$MAIN_CHECK" "$STEADY_CHECK" "$RSS_CHECK"; do [ "$c" = FAIL ] && ok=0; done
echo "bench: charges_per_s=$MAIN_RATE floor_ratio=$FLOOR_RATIO peer_ratio=$PEER_RATIO" \
     "p50_ms=$STEADY_P50 p99_ms=$STEADY_P99 rss_mb=$RSS_MB"
[ $ok = 1 ]
