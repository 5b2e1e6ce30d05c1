#!/usr/bin/env bash
# Daemon mode: a pass every --interval until SIGTERM or SIGINT, which stop it
# cleanly (exit 0).
source "$(dirname "$0")/../lib/system.sh"

DB=charger_daemon
new_db $DB
seed $DB 100 10
for sig in TERM INT; do
  "$CHARGER" --interval 0.2 --db "$(charger_db $DB)" >"$TEST_TMP/$sig.log" 2>&1 &
  pid=$!
  if [ $sig = TERM ]; then
    all_enqueued() { [ "$(sql $DB "SELECT count(*) FROM billing.invoices WHERE status = 'open'")" = 0 ]; }
    ok "the first pass enqueues the backlog" wait_for 20 all_enqueued
    sql $DB "INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
             SELECT g, 1, 100, 100, 'usd', now() FROM generate_series(101, 150) g"
    ok "a later pass picks up invoices that became due" wait_for 20 all_enqueued
  fi
  several() { [ "$(grep -c 'pass [0-9]* done' "$TEST_TMP/$sig.log")" -ge 3 ]; }
  ok "SIG$sig run: passes repeat every interval" wait_for 20 several
  kill -HUP $pid
  sleep 0.3
  ok "SIG$sig run: SIGHUP does not stop the daemon" kill -0 $pid
  kill -$sig $pid
  t0=$SECONDS
  wait $pid; rc=$?
  is "$rc" 0 "SIG$sig: exit 0"
  ok "SIG$sig: stops promptly" [ $((SECONDS - t0)) -le 5 ]
  like "$(cat "$TEST_TMP/$sig.log")" "SIG$sig: stopping" "SIG$sig: logged"
done
check_enqueue_invariants $DB 150

done_testing
