#!/usr/bin/env bash
# A database that is down when the charger starts is waited for, with
# backoff and a clear log line; a database that goes away between passes is
# reconnected to. Uses its own cluster so the shared one stays up.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/cluster.sh"

PG2=$(mktemp -d /tmp/cg-outage.XXXXXX)
trap 'cluster_stop "$PG2" immediate; rm -rf "$PG2"; _system_cleanup' EXIT
cluster_init "$PG2"
(
  cluster_start "$PG2"
  createdb outage && "$CG_ROOT/db/migrate" dbname=outage >/dev/null &&
  psql -X -q -d outage -c "CREATE ROLE charger_app LOGIN IN ROLE outbox_charger" &&
  seed outage 500 50
) || { echo "not ok 1 - second cluster set up"; echo "1..1"; exit 1; }
cluster_stop "$PG2"
CONN="host=$PG2 dbname=outage user=charger_app"
q() { psql -X -At -q -h "$PG2" -d outage -c "$1"; }

# --- down at start ------------------------------------------------------------
"$CHARGER" --once --db "$CONN" --db-wait 120 >"$TEST_TMP/once.log" 2>&1 &
charger=$!
waiting() { [ "$(grep -c 'db: cannot connect' "$TEST_TMP/once.log")" -ge 3 ]; }
ok "the charger keeps trying while the database is down" wait_for 30 waiting
like "$(cat "$TEST_TMP/once.log")" "db: cannot connect: connection to server on socket \"$PG2/.s.PGSQL.5432\" failed: No such file or directory .*; attempt 2 in [0-9.]+ s" \
  "the log line says what failed and when the next attempt comes"
delays=$(grep -oE 'attempt [0-9]+ in [0-9.]+ s' "$TEST_TMP/once.log" | awk '{print $4}' | head -3 | tr '\n' ' ')
ok "the waits grow (backoff): $delays" awk -v d="$delays" 'BEGIN { split(d, a, " "); exit !(a[3] > a[1]) }'
cluster_start "$PG2"
wait "$charger"; rc=$?
is "$rc" 0 "once the database is up, the charger finishes and exits 0"
like "$(cat "$TEST_TMP/once.log")" "pass 1 done: 500 invoice\(s\) enqueued" "and enqueues the 500 due invoices"
is "$(q "SELECT count(*) || '/' || count(DISTINCT invoice_id) FROM outbox.messages WHERE kind = 'charge'")" \
  "500/500" "each exactly once"

# --- lost between passes (daemon mode) ------------------------------------
"$CHARGER" --interval 0.3 --db "$CONN" >"$TEST_TMP/daemon.log" 2>&1 &
charger=$!
first_pass() { grep -q 'pass 1 done' "$TEST_TMP/daemon.log"; }
ok "daemon: first pass done" wait_for 20 first_pass
cluster_stop "$PG2" fast
lost() { grep -q 'db: connection lost' "$TEST_TMP/daemon.log"; }
ok "daemon: notices the lost connection" wait_for 20 lost
cluster_start "$PG2"
q "INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
   SELECT g, 1, 100, 100, 'usd', now() FROM generate_series(501, 600) g" >/dev/null
caught_up() { [ "$(q "SELECT count(*) FROM billing.invoices WHERE status = 'open'")" = 0 ]; }
ok "daemon: reconnects and enqueues invoices added after the outage" wait_for 30 caught_up
kill -TERM "$charger"; wait "$charger"; rc=$?
is "$rc" 0 "daemon: SIGTERM ends it with status 0"
is "$(q "SELECT count(*) || '/' || count(DISTINCT invoice_id) FROM outbox.messages WHERE kind = 'charge'")" \
  "600/600" "600 invoices, each enqueued once across the outage"

done_testing
