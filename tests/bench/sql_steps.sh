#!/usr/bin/env bash
# tests/bench/sql_steps.sh: server CPU of each of the daemons' SQL steps.
#
# Usage: PGHOST=DIR tests/bench/sql_steps.sh [SOURCE_TREE]
#
# On a running server (PGHOST, PGUSER a superuser), a fresh database
# `sql_steps` migrated from SOURCE_TREE's db/ (default: this tree), N due
# invoices (SQL_STEPS_N, 20000), then from one psql session, in batches of
# SQL_STEPS_BATCH (500): every enqueue_due, every claim_charges, every
# record_charges (all succeeded). The backend's CPU (utime + stime from
# /proc, 10 ms ticks) is read between the steps. Prints one line:
#   N=20000 B=500: backend CPU ms per 1000 rows: enqueue E claim C record R
# Compare two trees by running both, alternated, in one session
# (docs/performance.md, "Each step, measured"). The server must be local.
set -uo pipefail
tree=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
N=${SQL_STEPS_N:-20000} B=${SQL_STEPS_BATCH:-500} DB=sql_steps
[ -n "${PGHOST:-}" ] || { echo "sql_steps: set PGHOST to the server's socket directory" >&2; exit 2; }
[[ "$N" =~ ^[0-9]+$ && "$B" =~ ^[0-9]+$ && "$B" -ge 1 && "$N" -ge "$B" ]] ||
  { echo "sql_steps: SQL_STEPS_N and SQL_STEPS_BATCH must be integers, N >= BATCH >= 1" >&2; exit 2; }
work=$(mktemp -d /tmp/sql_steps.XXXXXX)
trap 'rm -rf "$work"' EXIT

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB" && "$tree/db/migrate" "dbname=$DB" >/dev/null || exit 1
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -v n="$N" <<'SQL' || exit 1
INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source)
SELECT g, 'customer' || g || '@example.com', 'cus_' || g, 'tok_visa'
  FROM generate_series(1, greatest(:n / 5, 1)) g;
INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
SELECT g, 1 + g % greatest(:n / 5, 1), 990, 990, 'usd', now() - interval '1 hour'
  FROM generate_series(1, :n) g;
VACUUM ANALYZE;
SQL

# \! runs a shell: it appends the backend's CPU ticks to $work/cpu
# shellcheck disable=SC2016 # $(...) is for the generated script
printf '#!/bin/sh\nawk "{print \\$14+\\$15}" /proc/$(cat %s/pid)/stat >> %s/cpu\n' "$work" "$work" >"$work/tick"
chmod +x "$work/tick"
batches=$((N / B))
{
  echo '\pset format unaligned'
  echo '\pset tuples_only on'
  echo "SELECT pg_backend_pid() \\g $work/pid"
  echo "CREATE TEMP TABLE claimed (id bigint, claim_token uuid);"
  echo "\\! $work/tick"
  for _ in $(seq "$batches"); do
    echo "BEGIN; SELECT count(*) FROM outbox.enqueue_due($B, false) \\g /dev/null"
    echo "COMMIT;"
  done
  echo "\\! $work/tick"
  for _ in $(seq "$batches"); do
    echo "INSERT INTO claimed SELECT id, claim_token FROM outbox.claim_charges('sql_steps', 90, $B);"
  done
  echo "\\! $work/tick"
  for _ in $(seq "$batches"); do
    echo "BEGIN; SELECT count(*) FROM outbox.record_charges((SELECT jsonb_agg(jsonb_build_object('id', id::text, 'claim_token', claim_token, 'outcome', 'succeeded', 'gateway_ref', 'ch_' || id)) FROM (SELECT * FROM claimed ORDER BY id LIMIT $B) c), '{86400}', 60) \\g /dev/null"
    echo "DELETE FROM claimed WHERE id IN (SELECT id FROM claimed ORDER BY id LIMIT $B); COMMIT;"
  done
  echo "\\! $work/tick"
} >"$work/steps.sql"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f "$work/steps.sql" || exit 1
mapfile -t c <"$work/cpu"
rows=$((batches * B))
echo "N=$rows B=$B: backend CPU ms per 1000 rows:" \
     "enqueue $(((c[1] - c[0]) * 10 * 1000 / rows))" \
     "claim $(((c[2] - c[1]) * 10 * 1000 / rows))" \
     "record $(((c[3] - c[2]) * 10 * 1000 / rows))"
settled=$(psql -X -At -d "$DB" -c "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'succeeded'")
[ "$settled" = "$rows" ] || { echo "sql_steps: $settled of $rows charges succeeded" >&2; exit 1; }
