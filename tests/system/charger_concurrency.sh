#!/usr/bin/env bash
# Many chargers at once never enqueue an invoice twice, and one charger never
# waits for invoices another holds (SKIP LOCKED): it takes the rest.
source "$(dirname "$0")/../lib/system.sh"

# --- eight chargers started together over 10,000 due invoices --------------
DB=charger_eight
new_db $DB
seed $DB 10000 1000
pids=()
for i in 1 2 3 4 5 6 7 8; do
  "$CHARGER" --once --batch 200 --db "$(charger_db $DB)" >"$TEST_TMP/c$i.log" 2>&1 &
  pids+=($!)
done
failures=0
for pid in "${pids[@]}"; do wait "$pid" || failures=$((failures + 1)); done
is "$failures" 0 "all eight chargers exit 0"
check_enqueue_invariants $DB 10000
is "$(sql $DB "SELECT count(*) FROM billing.invoices WHERE status <> 'in_flight'")" 0 \
  "every one of the 10,000 invoices is in_flight"
total=0 active=0
for i in 1 2 3 4 5 6 7 8; do
  n=$(grep -oE 'pass 1 done: [0-9]+' "$TEST_TMP/c$i.log" | grep -oE '[0-9]+$')
  total=$((total + ${n:-0}))
  [ "${n:-0}" -gt 0 ] && active=$((active + 1))
done
is "$total" 10000 "the chargers' own counts add up to exactly 10,000"
ok "the work was shared: $active of 8 chargers enqueued something" [ "$active" -ge 2 ]
is "$(sql $DB "SELECT count(*) FROM outbox.events")" 20000 "one creation event per row, no more"

# --- invoices held by someone else are skipped, not waited for -------------
DB=charger_skip
new_db $DB
seed $DB 2000 100
# Another transaction (a stuck charger, a DBA's open psql) locks 1..100.
PGAPPNAME=cg-lock-holder psql -X -q -d $DB >/dev/null 2>&1 \
  -c "BEGIN; SELECT id FROM billing.invoices WHERE id <= 100 FOR UPDATE; SELECT pg_sleep(60); COMMIT;" &
holder=$!
locked() { [ "$(sql $DB "SELECT count(*) FROM (SELECT id FROM billing.invoices WHERE id <= 100 FOR UPDATE SKIP LOCKED) free")" = 0 ]; }
ok "the other transaction holds its 100 invoices" wait_for 20 locked
# If the charger waited for the locks, timeout would kill it.
out=$(timeout 30 "$CHARGER" --once --batch 500 --db "$(charger_db $DB)" 2>&1); rc=$?
is "$rc" 0 "the charger finishes while 100 invoices are locked elsewhere"
like "$out" "pass 1 done: 1900 invoice\(s\) enqueued" "it enqueues the 1,900 free invoices"
is "$(sql $DB "SELECT count(*) FROM billing.invoices WHERE id <= 100 AND status = 'open'")" 100 \
  "the locked invoices are left for later"
sql $DB "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cg-lock-holder'" >/dev/null
wait $holder 2>/dev/null
unlocked() { [ "$(sql $DB "SELECT count(*) FROM (SELECT id FROM billing.invoices WHERE id <= 100 FOR UPDATE SKIP LOCKED) free")" = 100 ]; }
ok "the other transaction ends" wait_for 20 unlocked
out=$("$CHARGER" --once --db "$(charger_db $DB)" 2>&1)
like "$out" "pass 1 done: 100 invoice\(s\) enqueued" "once released, the next run takes them"
check_enqueue_invariants $DB 2000

done_testing
