#!/usr/bin/env bash
# The charger's everyday behaviour: --once enqueues everything due exactly
# once, in batches, as its own least-privileged login role; a rerun adds
# nothing; unchargeable invoices are reported once and never stop a batch;
# bad configuration is refused with a message naming the culprit.
source "$(dirname "$0")/../lib/system.sh"

DB=charger_basic
new_db $DB
seed $DB 1234 50
# Not due yet, and due but pushed out by the retry policy: both left alone.
sql $DB "INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
         VALUES (5001, 1, 100, 100, 'usd', now() + interval '1 day');
         INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at, next_attempt_at)
         VALUES (5002, 1, 100, 100, 'usd', now() - interval '1 day', now() + interval '3 days');"

out=$("$CHARGER" --once --db "$(charger_db $DB)" --batch 100 2>&1); rc=$?
is "$rc" 0 "charger --once exits 0"
like "$out" "pass 1 done: 1234 invoice\(s\) enqueued in 14 batch\(es\)" "reports 1234 enqueued in 13 full batches and one empty"
like "$out" "batch 13 of pass 1 committed: 34 enqueued" "the last batch holds the remainder"
check_enqueue_invariants $DB 1234
is "$(sql $DB "SELECT count(*) FROM billing.invoices WHERE id IN (5001, 5002) AND status = 'open'")" 2 \
  "invoices not yet due, or pushed out by the retry policy, stay open"
is "$(sql $DB "SELECT count(*) FROM outbox.messages m JOIN billing.invoices i ON i.id = m.invoice_id
               WHERE m.kind = 'charge' AND (m.amount_cents <> i.amount_due_cents OR m.currency <> i.currency)")" 0 \
  "each charge row carries its invoice's amount due and currency"
is "$(sql $DB "SELECT count(DISTINCT idempotency_key) FROM outbox.messages WHERE kind = 'charge'")" 1234 \
  "every charge row has its own idempotency key"
is "$(sql $DB "SELECT count(*) FROM outbox.events WHERE actor LIKE 'charger_app (charger %:%)'")" 2468 \
  "events name the login role and the charger process"

out=$("$CHARGER" --once --db "$(charger_db $DB)" 2>&1); rc=$?
is "$rc" 0 "a second run exits 0"
like "$out" "pass 1 done: 0 invoice\(s\) enqueued" "a second run enqueues nothing"
check_enqueue_invariants $DB 1234

# --- unchargeable invoices: reported once, the rest still charged ----------
sql $DB "INSERT INTO billing.customers (id, email) VALUES (900, 'nosource@example.com');
         INSERT INTO billing.customers (id, email, payment_source) VALUES (901, NULL, 'tok_visa');
         INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at) VALUES
           (6001, 900, 500, 500, 'usd', now()),
           (6002, 1,   500,   0, 'usd', now()),
           (6003, 1,   500, -50, 'usd', now()),
           (6004, 1,   500, 500, 'USD', now()),
           (6005, 1,   500, 500, 'usdollar', now()),
           (6006, 901, 700, 700, 'eur', now()),
           (6007, 2,   800, 800, 'usd', now());"
out=$("$CHARGER" --once --db "$(charger_db $DB)" 2>&1); rc=$?
is "$rc" 0 "a run with unchargeable invoices still exits 0"
like "$out" "invoice=6001: not enqueued: customer 900 has neither gateway_customer_id nor payment_source" \
  "no payment method: reported with the reason"
like "$out" "invoice=6002: not enqueued: amount due is 0 cents" "zero amount due: reported"
like "$out" "invoice=6003: not enqueued: amount due is -50 cents" "negative amount due: reported"
like "$out" "invoice=6004: not enqueued: currency 'USD' is not a lower-case three-letter" "upper-case currency: reported"
like "$out" "invoice=6005: not enqueued: currency 'usdollar'" "malformed currency: reported"
is "$(sql $DB "SELECT string_agg(id::text, ',' ORDER BY id) FROM billing.invoices WHERE id > 6000 AND status = 'in_flight'")" \
  "6006,6007" "the chargeable invoices of the same pass were enqueued"
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE invoice_id = 6006 AND kind = 'email'")" 0 \
  "a customer without email gets a charge but no notification row"
out=$("$CHARGER" --once --db "$(charger_db $DB)" 2>&1)
unlike "$out" "not enqueued" "the next run does not report them again"
sql $DB "UPDATE billing.customers SET payment_source = 'tok_visa' WHERE id = 900"
out=$("$CHARGER" --once --db "$(charger_db $DB)" 2>&1)
is "$(sql $DB "SELECT status FROM billing.invoices WHERE id = 6001")" in_flight \
  "once the customer is fixed, the invoice is enqueued"
is "$(sql $DB "SELECT count(*) FROM outbox.unchargeable WHERE invoice_id = 6001")" 0 \
  "and its unchargeable note is cleared"

# --- bad usage and configuration: exit 2, the culprit named ----------------
out=$("$CHARGER" --batch 0 2>&1); rc=$?
is "$rc" 2 "--batch 0: exit 2"
like "$out" "^charger: --batch: 0 is out of range; expected an integer from 1 to 10000$" "--batch 0: names flag and range"
out=$(CHARGER_INTERVAL=soon "$CHARGER" 2>&1); rc=$?
is "$rc" 2 "bad environment value: exit 2"
like "$out" "environment CHARGER_INTERVAL: 'soon' is not a number" "bad environment value: names the variable"
printf 'batch = 10\nintervall = 5\n' >"$TEST_TMP/bad.conf"
out=$("$CHARGER" --config "$TEST_TMP/bad.conf" 2>&1); rc=$?
is "$rc" 2 "unknown config key: exit 2"
like "$out" "config file .*bad.conf line 2: unknown key 'intervall'" "unknown config key: names file, line and key"
out=$("$CHARGER" --bogus 2>&1); rc=$?
is "$rc" 2 "unknown flag: exit 2"
out=$(OUTBOX_CRASH_AT=charger.nowhere "$CHARGER" --once 2>&1); rc=$?
is "$rc" 2 "unknown crash point: exit 2"
like "$out" "no such crash point" "unknown crash point: says so"
out=$("$CHARGER" --db "host=/nonexistent password=hunter2secret" --once --db-wait 0.5 2>&1); rc=$?
is "$rc" 1 "unreachable database past --db-wait: exit 1"
unlike "$out" "hunter2secret" "the conninfo password never appears in the log"

# --- help, version, crash points -----------------------------------------
out=$("$CHARGER" --help); rc=$?
is "$rc" 0 "--help exits 0"
for flag in --db --once --interval --batch --db-wait --log-level --config --list-crash-points; do
  like "$out" "^  $flag" "--help documents $flag"
done
like "$("$CHARGER" --version)" "^charger \(chargeguard\) [0-9]+\.[0-9]+\.[0-9]+$" "--version"
is "$("$CHARGER" --list-crash-points | tr '\n' ' ')" "charger.before_commit charger.after_commit " \
  "--list-crash-points lists both points"

# --- config file and precedence, observed through the batch size ----------
new_db charger_conf
seed charger_conf 30 5
printf '[charger]\nbatch = 7\nlog_level = info\n' >"$TEST_TMP/good.conf"
out=$("$CHARGER" --once --config "$TEST_TMP/good.conf" --db "$(charger_db charger_conf)" 2>&1)
like "$out" "batch 1 of pass 1 committed: 7 enqueued" "batch size from the config file"
sql charger_conf "UPDATE outbox.messages SET state = 'cancelled' WHERE kind = 'charge' AND state = 'pending';
                  UPDATE outbox.messages SET state = 'cancelled' WHERE kind = 'email';
                  UPDATE billing.invoices SET status = 'open' WHERE status = 'in_flight'"
out=$(CHARGER_BATCH=4 "$CHARGER" --once --config "$TEST_TMP/good.conf" --db "$(charger_db charger_conf)" 2>&1)
like "$out" "batch 1 of pass 1 committed: 4 enqueued" "the environment overrides the file"

# --- the schema check -------------------------------------------------------
createdb charger_empty && TEST_DBS+=(charger_empty)
out=$("$CHARGER" --once --db "$(charger_db charger_empty)" 2>&1); rc=$?
is "$rc" 1 "no schema: exit 1"
like "$out" "no chargeguard schema .*run db/migrate" "no schema: says to run db/migrate"
createdb charger_old && TEST_DBS+=(charger_old)
"$CG_ROOT/db/migrate" --target 3 dbname=charger_old >/dev/null
out=$("$CHARGER" --once --db "$(charger_db charger_old)" 2>&1); rc=$?
is "$rc" 1 "older schema: exit 1"
like "$out" "schema is at version 3 but this program needs 4: run db/migrate" "older schema: names both versions"

done_testing
