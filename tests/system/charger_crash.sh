#!/usr/bin/env bash
# kill -9 of the charger at each crash point leaves nothing half-written; the
# next run enqueues what the dead one did not, and nothing twice. The relay's
# wake-up (NOTIFY) is delivered only when the rows it announces are visible.
source "$(dirname "$0")/../lib/system.sh"
LISTEN=${CG_TOOLS:-$CG_ROOT/build/tools}/pg_listen
PROBE="SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'pending'"

# start_listener DB FILE: LISTEN outbox_pending; probe the visible rows on each notify
start_listener() {
  "$LISTEN" "dbname=$1" outbox_pending 120 "$PROBE" >"$2" 2>&1 &
  LISTENER=$!
  wait_for 10 grep -q listening "$2"
}
stop_listener() { kill "$LISTENER" 2>/dev/null; wait "$LISTENER" 2>/dev/null; }

# --- killed before COMMIT: nothing written, nothing announced ---------------
DB=crash_before
new_db $DB
seed $DB 1000 100
ok "listener ready" start_listener $DB "$TEST_TMP/notify1"
out=$(OUTBOX_CRASH_AT=charger.before_commit "$CHARGER" --once --batch 100 --db "$(charger_db $DB)" 2>&1); rc=$?
is "$rc" 137 "the charger died by SIGKILL (exit 137)"
like "$out" "crash point charger.before_commit reached \(pass 1\)" "at charger.before_commit"
sleep 1 # a NOTIFY, had one been sent, would have arrived by now
stop_listener
is "$(grep -c '^notify' "$TEST_TMP/notify1")" 0 "no notification for a batch that never committed"
is "$(sql $DB "SELECT count(*) FROM outbox.messages")" 0 "no outbox rows"
is "$(sql $DB "SELECT count(*) FROM outbox.events")" 0 "no events"
is "$(sql $DB "SELECT count(*) FROM billing.invoices WHERE status <> 'open'")" 0 "every invoice still open"

ok "listener ready again" start_listener $DB "$TEST_TMP/notify2"
out=$("$CHARGER" --once --batch 100 --db "$(charger_db $DB)" 2>&1); rc=$?
is "$rc" 0 "the next run succeeds"
like "$out" "pass 1 done: 1000 invoice\(s\) enqueued" "and enqueues the whole backlog, the lost batch included"
check_enqueue_invariants $DB 1000
ok "notifications arrived" wait_for 10 grep -q '^notify' "$TEST_TMP/notify2"
stop_listener
is "$(awk '$1 == "notify" && $3 == 0' "$TEST_TMP/notify2" | wc -l)" 0 \
  "every notification found its pending rows already visible (NOTIFY is part of the commit)"

# --- killed after the third COMMIT: three batches stay, the rest follows ----
DB=crash_after
new_db $DB
seed $DB 1000 100
out=$(OUTBOX_CRASH_AT=charger.after_commit:3 "$CHARGER" --once --batch 100 --db "$(charger_db $DB)" 2>&1); rc=$?
is "$rc" 137 "died by SIGKILL at the third charger.after_commit"
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge'")" 300 \
  "the three committed batches are durable"
check_enqueue_invariants $DB 300
out=$("$CHARGER" --once --batch 100 --db "$(charger_db $DB)" 2>&1)
like "$out" "pass 1 done: 700 invoice\(s\) enqueued" "the rerun enqueues only the other 700"
check_enqueue_invariants $DB 1000

# --- sweep: every crash point the charger lists, first and second pass -----
for point in $("$CHARGER" --list-crash-points); do
  for n in 1 2; do
    DB=crash_sweep
    new_db $DB
    seed $DB 450 30
    OUTBOX_CRASH_AT=$point:$n "$CHARGER" --once --batch 100 --db "$(charger_db $DB)" >/dev/null 2>&1; rc=$?
    is "$rc" 137 "$point:$n: killed"
    "$CHARGER" --once --batch 100 --db "$(charger_db $DB)" >/dev/null 2>&1
    is "$(sql $DB "SELECT count(*) || '/' || count(DISTINCT invoice_id) FROM outbox.messages WHERE kind = 'charge'")" \
      "450/450" "$point:$n: after a rerun, 450 invoices enqueued once each"
    is "$(sql $DB "SELECT count(*) FROM billing.invoices i WHERE (i.status = 'in_flight') <>
          EXISTS (SELECT 1 FROM outbox.messages m WHERE m.invoice_id = i.id AND m.kind = 'charge')")" 0 \
      "$point:$n: I6 holds"
  done
done

done_testing
