# tests/bench/floor.sh: the SQL floor (sourced by bench.sh). The daemons'
# own database work, in pure SQL with pgbench and no HTTP: the ceiling the
# database design allows on this machine.
#
# BENCH_FLOOR_CLIENTS pgbench clients each loop over one script that feeds
# itself, so no client spins on an empty outbox while another enqueues (a
# separate enqueuing client was starved by claimers polling every 2 ms):
#   BEGIN; enqueue_due(CHARGER_BATCH, false); COMMIT         (charger/enqueue.c)
#   then, until that batch is claimed: claim_charges(CLAIM_BATCH) in
#   autocommit K times (K = RECORD_BATCH / CLAIM_BATCH, at least 1), then
#   BEGIN; record_charges(the claimed rows' outcomes); COMMIT
#                                    (relay/charges.c, relay/record.c)
# The outcome is the simulator's: declined for tok_chargeDeclined, else
# succeeded. A group that claimed nothing sleeps 2 ms instead of recording.
# As the superuser (one connection runs both daemons' functions; they are
# SECURITY DEFINER, so they run with the same rights either way).
#
# Parameters are bound (pgbench -M extended): the claimed rows travel as one
# JSON parameter, as the relay sends them. Throughput is measured like the
# main run's, from the database's clocks (bench_throughput). Email rows are
# left pending: the floor is the charge path only.

# floor_group I K: K claims into c_I_1..c_I_K, then one record of them
floor_group() {
  local g=$1 k=$2 j parts="" sum=0
  for j in $(seq "$k"); do
    cat <<SQL
SELECT coalesce(jsonb_agg(jsonb_build_object(
         'id', id::text, 'claim_token', claim_token, 'gateway_ref', 'ch_floor_' || id,
         'outcome', CASE WHEN payment_source LIKE 'tok_chargeDeclined%' THEN 'declined'
                         ELSE 'succeeded' END)), '[]')::text AS c_${g}_$j,
       count(*) AS n_${g}_$j
  FROM outbox.claim_charges('pgbench-floor-' || :client_id, 90, $CLAIM_BATCH) \gset
SQL
    parts+="${parts:+ || }(:c_${g}_$j)::jsonb"
    sum+=" + :n_${g}_$j"
  done
  cat <<SQL
\set n $sum
\if :n = 0
\sleep 2 ms
\else
BEGIN;
SELECT count(*) FROM outbox.record_charges($parts, '{86400,259200,604800}'::float8[], 60);
COMMIT;
\endif
SQL
}

# floor_script FILE: one enqueue, then claim groups covering its batch
floor_script() {
  local k claims g
  k=$((RECORD_BATCH / CLAIM_BATCH))
  [ "$k" -ge 1 ] || k=1
  claims=$(( (CHARGER_BATCH + CLAIM_BATCH - 1) / CLAIM_BATCH ))
  {
    cat <<SQL
BEGIN;
SELECT count(*) FROM outbox.enqueue_due($CHARGER_BATCH, false);
COMMIT;
SQL
    g=0
    while [ "$claims" -gt 0 ]; do
      g=$((g + 1))
      floor_group "$g" $(( claims < k ? claims : k ))
      claims=$((claims - k))
    done
  } >"$1"
}

# floor_run DB N: pgbench until N charges have an outcome (bounded by
# BENCH_TIMEOUT); prints "charges seconds rate" like bench_throughput.
floor_run() {
  local db=$1 n=$2 pgb deadline done_n=0 next=0
  floor_script "$DIR/floor.sql"
  pgbench -n -M extended -c "$FLOOR_CLIENTS" -j "$FLOOR_CLIENTS" -T "$BENCH_TIMEOUT" \
    -f "$DIR/floor.sql" "$db" >"$DIR/floor_pgbench.log" 2>&1 &
  pgb=$!
  deadline=$((SECONDS + BENCH_TIMEOUT))
  while [ $SECONDS -lt $deadline ]; do
    done_n=$(sql "$db" "SELECT count(*) FROM outbox.messages
                         WHERE kind = 'charge' AND state IN ('succeeded', 'declined', 'failed')")
    [ "$done_n" -ge "$n" ] && break
    kill -0 "$pgb" 2>/dev/null || break
    [ $SECONDS -ge $next ] && { progress "floor: $done_n of $n charges recorded"; next=$((SECONDS + PROGRESS_S)); }
    sleep 0.2
  done
  # (not SIGINT: a script's background jobs inherit it ignored)
  kill -TERM "$pgb" 2>/dev/null
  wait "$pgb" 2>/dev/null
  if [ "$done_n" -lt "$n" ]; then
    progress "floor: only $done_n of $n recorded; see $DIR/floor_pgbench.log"
    tail -3 "$DIR/floor_pgbench.log" >&2
    return 1
  fi
  bench_throughput "$db"
}
