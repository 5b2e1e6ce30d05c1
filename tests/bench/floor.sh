# tests/bench/floor.sh: the SQL floor (sourced by bench.sh). The daemons'
# own database work, in pure SQL with pgbench and no HTTP: the ceiling the
# database design allows on this machine.
#
#   one pgbench client as charger_app: BEGIN; enqueue_due(CHARGER_BATCH); COMMIT
#     (exactly charger/enqueue.c's transaction)
#   BENCH_FLOOR_CLIENTS clients as relay_app, each looping: claim_charges(
#     CLAIM_BATCH) in autocommit, K times (K = RECORD_BATCH / CLAIM_BATCH, at
#     least 1), then BEGIN; record_charges(the claimed rows' outcomes); COMMIT
#     (relay/charges.c and relay/record.c's statements; the outcome is what
#     the simulator would answer: declined for tok_chargeDeclined, else
#     succeeded). An empty claim sleeps 2 ms instead of recording.
#
# Parameters are bound (pgbench -M extended): the claimed rows travel as one
# JSON parameter, as the relay sends them. Throughput is measured like the
# main run's, from the database's clocks (bench_throughput). Email rows are
# left pending: the floor is the charge path only.

# floor_scripts DIR: writes DIR/floor_enqueue.sql and DIR/floor_drain.sql
floor_scripts() {
  local dir=$1 k i parts=()
  k=$((RECORD_BATCH / CLAIM_BATCH))
  [ "$k" -ge 1 ] || k=1
  cat >"$dir/floor_enqueue.sql" <<SQL
BEGIN;
SELECT count(*) FROM outbox.enqueue_due($CHARGER_BATCH, false);
COMMIT;
SQL
  {
    for i in $(seq "$k"); do
      cat <<SQL
SELECT coalesce(jsonb_agg(jsonb_build_object(
         'id', id::text, 'claim_token', claim_token, 'gateway_ref', 'ch_floor_' || id,
         'outcome', CASE WHEN payment_source LIKE 'tok_chargeDeclined%' THEN 'declined'
                         ELSE 'succeeded' END)), '[]')::text AS c$i,
       count(*) AS n$i
  FROM outbox.claim_charges('pgbench-floor-' || :client_id, 90, $CLAIM_BATCH) \gset
SQL
      parts+=("(:c$i)::jsonb")
    done
    local sum="0" i2
    for i2 in $(seq "$k"); do sum="$sum + :n$i2"; done
    local joined
    joined=$(IFS='|'; echo "${parts[*]}")
    cat <<SQL
\set n $sum
\if :n = 0
\sleep 2 ms
\else
BEGIN;
SELECT count(*) FROM outbox.record_charges(${joined//|/ || }, '{86400,259200,604800}'::float8[], 60);
COMMIT;
\endif
SQL
  } >"$dir/floor_drain.sql"
}

# floor_run DB N: runs both pgbench loads until N charges have an outcome
# (bounded by BENCH_TIMEOUT); prints "charges seconds rate" like
# bench_throughput.
floor_run() {
  local db=$1 n=$2 enq drain deadline done_n
  floor_scripts "$DIR"
  pgbench -n -M extended -c 1 -t $((n / CHARGER_BATCH + 2)) -f "$DIR/floor_enqueue.sql" \
    -U charger_app "$db" >"$DIR/floor_enqueue.log" 2>&1 &
  enq=$!
  pgbench -n -M extended -c "$FLOOR_CLIENTS" -j "$FLOOR_CLIENTS" -T "$BENCH_TIMEOUT" \
    -f "$DIR/floor_drain.sql" -U relay_app "$db" >"$DIR/floor_drain.log" 2>&1 &
  drain=$!
  deadline=$((SECONDS + BENCH_TIMEOUT))
  local next=0
  while [ $SECONDS -lt $deadline ]; do
    done_n=$(sql "$db" "SELECT count(*) FROM outbox.messages
                         WHERE kind = 'charge' AND state IN ('succeeded', 'declined', 'failed')")
    [ "$done_n" -ge "$n" ] && break
    kill -0 "$drain" 2>/dev/null || break
    [ $SECONDS -ge $next ] && { progress "floor: $done_n of $n charges recorded"; next=$((SECONDS + PROGRESS_S)); }
    sleep 0.2
  done
  # (pgbench ignores SIGINT here: background jobs of a script inherit it ignored)
  kill -TERM "$drain" 2>/dev/null
  wait "$drain" 2>/dev/null
  wait "$enq" 2>/dev/null
  if [ "${done_n:-0}" -lt "$n" ]; then
    progress "floor: only ${done_n:-0} of $n recorded; see $DIR/floor_*.log"
    tail -3 "$DIR/floor_drain.log" >&2
    return 1
  fi
  bench_throughput "$db"
}
