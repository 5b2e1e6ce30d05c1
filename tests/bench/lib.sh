# tests/bench/lib.sh: the benchmark's building blocks (sourced by bench.sh
# and by the baselines). Needs CG_ROOT (defaults to this checkout).
#
#   bench_cluster_start DIR     private cluster (Unix socket in DIR), settings
#                               below; exports PGHOST/PGPORT/PGUSER; the
#                               daemons' login roles; or, with BENCH_PGHOST,
#                               a server already running there (the smoke
#                               test uses the test run's)
#   bench_db_new DB             a fresh, migrated database (from BENCH_TEMPLATE)
#   bench_seed DB N [START RATE] customers and N open invoices, due an hour
#                               ago, or due at START + i/RATE (epoch seconds)
#   bench_throughput DB         "charges seconds rate" from the database's clocks
#   bench_latency DB LEDGER     "n p50 p90 p99 max" (ms) commit -> arrival
#   proc_cpu PID / pg_cpu / vm_hwm_kb PID   CPU seconds, peak RSS

CG_ROOT=${CG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
source "$CG_ROOT/tests/lib/cluster.sh"

# Rows pre-filled by BENCH_SCALE (tests/bench/sweep.sh) have ids from here
# up; every count of the run's own charges stays below.
BENCH_PREFILL_BASE=1000000000

# Settings of the benchmark cluster (on top of initdb's defaults).
# track_commit_timestamp: the commit time of each charge row (latency).
# fsync stays on (BENCH_FSYNC=off to drop it): the relay's claim must be
# durable before its POST, and the SQL floor pays the same commits.
BENCH_PG_SETTINGS=(
  "listen_addresses = ''"
  "track_commit_timestamp = on"
  "fsync = ${BENCH_FSYNC:-on}"
  "synchronous_commit = on"
  "shared_buffers = '512MB'"
  "max_connections = 300"
  "max_wal_size = '4GB'"
  "checkpoint_timeout = '15min'"
  "log_min_messages = warning"
)

bench_cluster_start() {
  local dir=$1 s
  [ -n "${BENCH_PGHOST:-}" ] && { bench_cluster_use "$BENCH_PGHOST"; return; }
  BENCH_DATA_DIR=$dir/data BENCH_TEMPLATE=bench_template BENCH_OWN_CLUSTER=1
  cluster_init "$dir" || return 1
  for s in "${BENCH_PG_SETTINGS[@]}" "unix_socket_directories = '$dir'"; do
    echo "$s"
  done >>"$dir/data/postgresql.conf"
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
    { tail -20 "$dir/server.log" >&2; return 1; }
  export PGHOST=$dir PGPORT=5432 PGUSER=postgres
  # a migrated template (the migration also creates the outbox_* group
  # roles the daemons' login roles belong to)
  createdb bench_template && "$CG_ROOT/db/migrate" "dbname=bench_template" >/dev/null &&
  psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL' >/dev/null
CREATE ROLE charger_app LOGIN IN ROLE outbox_charger;
CREATE ROLE relay_app LOGIN IN ROLE outbox_relay;
SQL
}

# bench_cluster_use HOST: a running server (as PGUSER, a superuser, on this
# machine: its CPU is read from /proc) whose BENCH_TEMPLATE database is
# migrated and whose daemons' roles exist, with track_commit_timestamp on.
bench_cluster_use() {
  export PGHOST=$1 PGUSER=${PGUSER:-postgres}
  BENCH_TEMPLATE=${BENCH_TEMPLATE:?BENCH_PGHOST needs BENCH_TEMPLATE} BENCH_OWN_CLUSTER=0
  [ "$(psql -X -At -d postgres -c 'SHOW track_commit_timestamp')" = on ] ||
    { echo "bench: the server at $1 needs track_commit_timestamp = on" >&2; return 1; }
  BENCH_DATA_DIR=$(psql -X -At -d postgres -c 'SHOW data_directory') && [ -r "$BENCH_DATA_DIR/postmaster.pid" ]
}

bench_db_new() {
  dropdb --if-exists --force "$1" 2>/dev/null
  createdb -T "$BENCH_TEMPLATE" "$1"
}

# One customer per 5 invoices; every 25th customer's card declines (about
# 4% of the charges). Every customer has an email address, so each charge
# has its notification row, as in production; BENCH_EMAILS=0 seeds them
# without one (no notification rows: the charge path alone).
bench_seed() {
  local db=$1 n=$2 start=${3:-} rate=${4:-} due email="'customer' || g || '@example.com'"
  [ "${BENCH_EMAILS:-1}" = 0 ] && email=NULL
  if [ -n "$start" ]; then
    due="to_timestamp($start + (g - 1)::float8 / $rate)"
  else
    due="now() - interval '1 hour'"
  fi
  psql -X -q -v ON_ERROR_STOP=1 -d "$db" <<SQL
INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source)
SELECT g, $email, 'cus_bench_' || g,
       CASE WHEN g % 25 = 0 THEN 'tok_chargeDeclined' ELSE 'tok_visa' END
  FROM generate_series(1, greatest($n / 5, 1)) g;
INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
SELECT g, 1 + g % greatest($n / 5, 1), 990 + (g * 37) % 9000, 990 + (g * 37) % 9000, 'usd', $due
  FROM generate_series(1, $n) g;
-- The billing tables only. An outbox analyzed while empty is planned as
-- tiny: sessions that start then keep seq-scan plans for the foreign-key and
-- I6 checks while it grows (docs/performance.md, "Plans made on an empty
-- outbox"). Left unanalyzed, as db/migrate leaves it, it is planned at ten
-- pages at least, and autovacuum analyzes it once it has rows.
ANALYZE billing.customers;
ANALYZE billing.invoices;
SQL
}

# Charges with an outcome, and the time from the first enqueue (the first
# charge row's creation event, clock_timestamp() inside the charger's first
# transaction) to the commit of the last outcome (pg_xact_commit_timestamp
# of its event). Both clocks are the server's.
bench_throughput() {
  psql -X -At -F' ' -d "$1" -c "
    WITH first AS (
      SELECT min(e.at) AS t FROM outbox.events e JOIN outbox.messages m ON m.id = e.message_id
       WHERE m.kind = 'charge' AND e.from_state IS NULL AND m.id < $BENCH_PREFILL_BASE
    ), done AS (
      SELECT count(*) AS n, max(pg_xact_commit_timestamp(e.xmin)) AS t
        FROM outbox.events e JOIN outbox.messages m ON m.id = e.message_id
       WHERE m.kind = 'charge' AND e.from_state = 'submitting' AND m.id < $BENCH_PREFILL_BASE
         AND e.to_state IN ('succeeded', 'declined', 'failed')
    )
    SELECT done.n, round(extract(epoch FROM done.t - first.t)::numeric, 3),
           round((done.n / nullif(extract(epoch FROM done.t - first.t), 0))::numeric, 0)
      FROM first, done"
}

# The simulator's ledger (FILE, from GET /_ledger) as "key<TAB>t_start" of
# each charge POST's first arrival.
bench_arrivals() {
  jq -r '.requests[] | select(.method == "POST" and .path == "/v1/charges"
                              and .idempotency_key != null)
         | [.idempotency_key, .t_start] | @tsv' "$1"
}

# Latency from the commit of each charge row (the commit timestamp of the
# transaction that inserted its creation event: outbox.events is
# append-only, so that row's xmin is the charger's transaction) to its first
# arrival at the simulator (t_start, CLOCK_REALTIME like the server's
# commit timestamps). Prints "n p50 p90 p99 max" in ms.
bench_latency() {
  local db=$1 ledger=$2
  bench_arrivals "$ledger" | psql -X -At -F' ' -q -v ON_ERROR_STOP=1 -d "$db" \
    -c "CREATE TEMP TABLE arrivals (key text, t_start float8)" \
    -c "\\copy arrivals FROM pstdin" -c "
    WITH commits AS (
      SELECT m.idempotency_key AS key,
             extract(epoch FROM pg_xact_commit_timestamp(e.xmin)) AS t_commit
        FROM outbox.events e JOIN outbox.messages m ON m.id = e.message_id
       WHERE m.kind = 'charge' AND e.from_state IS NULL
    ), lat AS (
      SELECT (min(a.t_start) - c.t_commit) * 1000 AS ms
        FROM commits c JOIN arrivals a ON a.key = c.key GROUP BY c.key, c.t_commit
    )
    SELECT count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2),
           round(percentile_cont(0.9) WITHIN GROUP (ORDER BY ms)::numeric, 2),
           round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2),
           round(max(ms)::numeric, 2)
      FROM lat" 2>&1 | tail -1
}

CLK_TCK=$(getconf CLK_TCK)

# proc_cpu PID: user + system CPU seconds of a live process (fields 14, 15
# of /proc/PID/stat, after the command name, which may hold blanks).
proc_cpu() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  awk -v t="$CLK_TCK" '{ printf "%.2f\n", ($12 + $13) / t }' <<<"${stat##*) }"
}

# pg_cpu: CPU seconds PostgreSQL has used so far: the postmaster's own,
# its reaped children's (cutime + cstime: backends that have exited) and
# its live children's. Take it before and after; the difference is the run's.
pg_cpu() {
  local pm stat pid total
  pm=$(head -1 "$BENCH_DATA_DIR/postmaster.pid")
  stat=$(cat "/proc/$pm/stat") || { echo 0; return; }
  total=$(awk '{ print $12 + $13 + $14 + $15 }' <<<"${stat##*) }")
  for pid in $(pgrep -P "$pm"); do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    total=$((total + $(awk '{ print $12 + $13 }' <<<"${stat##*) }")))
  done
  awk -v c="$total" -v t="$CLK_TCK" 'BEGIN { printf "%.2f\n", c / t }'
}

# vm_hwm_kb PID: peak resident set size so far (kB).
vm_hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# calc FORMAT EXPRESSION: floating-point arithmetic
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
