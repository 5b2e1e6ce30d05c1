#!/usr/bin/env bash
# The relay with --gateway authorizenet against the simulator's Authorize.Net
# API: every simulator fault (as relay_faults.sh runs them for stripe; no
# answer but "never connected" is retry-later here, 429 included), then
# reconciliation through the transaction lists: the lost answer (relay
# killed after reading it), a charge found in a settled batch, a charge held
# for review until the review ends, a duplicate-window answer, and absence.
# The checker judges every database against the gateway's ledger, I4 (one
# executed POST per charge row) included.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
trap 'peers_stop_all; _system_cleanup' EXIT

export RELAY_TEST_KEY=cg_login:cg_transaction_key
ANET=(--gateway authorizenet)
N=30
ok "gateway simulator started" sim_start --seed 13
ok "SMTP sink started" smtp_start

posts_per_row() { # DB: rows POSTed more than once
  ledger_sql "$1" "SELECT count(*) FROM (SELECT r->>'outbox_id' FROM lreq
                   WHERE r->>'operation' = 'createTransactionRequest' GROUP BY 1 HAVING count(*) > 1) d"
}
prepare() { # DB N [FAULT_RULES]
  new_db "$1"
  seed "$1" "$2" "$2"
  curl -sf -X POST "$SIM_URL/_control/reset" >/dev/null
  curl -sf -X POST "$SIM_URL/_control/faults" -d "${3:-[]}" >/dev/null
  smtp_restart
  "$CHARGER" --once --db "$(charger_db "$1")" >/dev/null 2>&1
}

# --- a key without its colon: refused at start, clearly, key not shown ----
new_db anet_badkey
RELAY_TEST_KEY=nocolonkey relay_start badkey anet_badkey "${ANET[@]}"
relay_stop badkey 0 # no signal: it should be gone already
is "$RELAY_RC" 2 "a key without LOGINID:TRANSACTIONKEY's colon: the relay refuses to start (exit 2)"
like "$(relay_log badkey)" "LOGINID:TRANSACTIONKEY" "and says what the key must look like"
unlike "$(relay_log badkey)" "nocolonkey" "without showing the key"

# --- every fault ----------------------------------------------------------
source "$CG_ROOT/tests/lib/fault_run.sh"
FAULT_DB_PREFIX=anet_fault_
FAULT_RELAY_ARGS=("${ANET[@]}")
fault_extra_checks() { is "$(posts_per_row "$1")" 0 "$2: no row was POSTed twice"; }

run_fault 500_before     unknown no
run_fault 500_after      unknown yes
run_fault reset_after    unknown yes
run_fault close_mid_body unknown yes
run_fault delay:5        unknown yes   # longer than --http-timeout 3
run_fault nonjson_after  unknown yes
run_fault reset_before   unknown no    # cannot be told from a reset after charging
run_fault forget_after   succeeded yes # a normal answer: recorded
run_fault huge_after     unknown yes
run_fault 429            unknown no    # Authorize.Net has no 429: proves nothing, never re-sent
run_fault 409            unknown no
run_fault duplicate_after succeeded yes # 3/11 with the original's approval code: already charged

DUP_REFS=$(ledger_sql anet_fault_duplicate_after "SELECT string_agg(r->>'outbox_id' || '=' || (r->>'charge_id'), ','
                    ORDER BY (r->>'outbox_id')::bigint) FROM lreq WHERE r->>'fault' = 'duplicate_after'")
is "$(sql anet_fault_duplicate_after "SELECT string_agg(id || '=' || gateway_ref, ',' ORDER BY id)
        FROM outbox.messages WHERE kind = 'charge' AND state = 'succeeded'
         AND id = ANY (string_to_array(regexp_replace('$DUP_REFS', '=[0-9]+', '', 'g'), ',')::bigint[])")" \
   "$DUP_REFS" "duplicate answer: each such row succeeded with the transaction the answer named"
like "$(relay_log anet_fault_duplicate_after)" "succeeded \\(already charged: transaction [0-9]+\\)" \
  "duplicate answer: the log says already charged"

# --- reconciliation -------------------------------------------------------
RECON=(--lease 3 --http-timeout 1.5 --settle 6 --reconcile-schedule 1,1,1)
terminal() { [ "$(sql "$1" "SELECT count(*) FROM outbox.messages WHERE kind = 'charge'
                            AND state IN ('pending', 'submitting', 'unknown')")" = 0 ]; }

# the gateway charged, the answers were lost, the relay was killed
DB=anet_lost
prepare $DB 20
OUTBOX_CRASH_AT=relay.after_response relay_start dead $DB "${ANET[@]}" "${RECON[@]}" --claim-batch 20
wait_for 30 bash -c "! kill -0 ${RELAY_PIDS[dead]} 2>/dev/null"
relay_stop dead KILL
is "$RELAY_RC" 137 "lost answers: the relay died after reading answers, before recording them"
relay_start heir $DB "${ANET[@]}" "${RECON[@]}"
ok "lost answers: every charge is terminal again without a person" wait_for 60 terminal $DB
ok "lost answers: and every email is sent" wait_for 30 settled $DB
relay_stop heir TERM
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'succeeded'
               AND gateway_ref ~ '^[0-9]+\$'")" 20 "lost answers: all found in the unsettled list, recorded with the transId"
is "$(sql $DB "SELECT count(*) FROM billing.invoices WHERE status = 'paid' AND amount_due_cents = 0")" 20 \
  "lost answers: every invoice paid"
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'email' AND template = 'receipt' AND state = 'sent'")" 20 \
  "lost answers: every receipt sent"
is "$(posts_per_row $DB)" 0 "lost answers: no second POST"
check_invariants $DB --expect-settled

# charged, 500: found in a settled batch (the unsettled list no longer has it)
DB=anet_settled
prepare $DB 8 '[{"fault": "500_after"}]'
relay_start r $DB "${ANET[@]}" --lease 3 --http-timeout 1.5 --settle 6 --reconcile-schedule 4,1,1
all_unknown() { [ "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'unknown'")" = 8 ]; }
ok "settled batch: every charge is unknown after the 500s" wait_for 30 all_unknown
is "$(curl -sf -X POST "$SIM_URL/_control/anet/settle" | jq -r .transactions)" 8 \
  "settled batch: the gateway settles the 8 charges before the first lookup"
ok "settled batch: every charge is terminal" wait_for 60 terminal $DB
ok "settled batch: and every email is sent" wait_for 30 settled $DB
relay_stop r TERM
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'succeeded'")" 8 \
  "settled batch: found through the batch list and the batch's transactions"
ok "settled batch: the lookups walked getSettledBatchListRequest and getTransactionListRequest" \
  [ "$(ledger_sql $DB "SELECT count(DISTINCT r->>'operation') FROM lreq WHERE r->>'operation' IN
        ('getSettledBatchListRequest', 'getTransactionListRequest')")" = 2 ]
is "$(posts_per_row $DB)" 0 "settled batch: never POSTed again"
check_invariants $DB --expect-settled

# held for review (4): unknown, inconclusive lookups until the review ends
DB=anet_review
new_db $DB
sql $DB "INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source)
         SELECT g, 'c' || g || '@example.com', '9000' || g, 'tok_heldForReview' FROM generate_series(1, 4) g;
         INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
         SELECT g, g, 2500, 2500, 'usd', now() - interval '1 day' FROM generate_series(1, 4) g;"
curl -sf -X POST "$SIM_URL/_control/reset" >/dev/null
smtp_restart
"$CHARGER" --once --db "$(charger_db $DB)" >/dev/null 2>&1
relay_start r $DB "${ANET[@]}" --lease 3 --http-timeout 1.5 --settle 6 --reconcile-schedule 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1
inconclusive() { [ "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'unknown'
                               AND failed_lookups >= 2")" = 4 ]; }
ok "held for review: unknown, and lookups stay inconclusive while the review lasts" wait_for 30 inconclusive
like "$(sql $DB "SELECT string_agg(DISTINCT last_error, ',') FROM outbox.messages WHERE kind = 'charge'")" \
  "pending \\(review\\)" "held for review: the reason says the review is pending"
curl -sf -X POST "$SIM_URL/_control/anet/review" -d '{"decision": "approve"}' >/dev/null
ok "held for review: terminal once the review approved them" wait_for 60 terminal $DB
ok "held for review: and every email is sent" wait_for 30 settled $DB
relay_stop r TERM
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'succeeded'")" 4 \
  "held for review: recorded as succeeded after the approval, never re-sent"
is "$(posts_per_row $DB)" 0 "held for review: one POST per row"
check_invariants $DB --expect-settled

# refused before charging (500_before): absent in every list -> failed after settle
DB=anet_absent
prepare $DB 5 '[{"fault": "500_before"}]'
curl -sf -X POST "$SIM_URL/_control/anet/settle" >/dev/null # an (empty) settled batch to walk too
relay_start r $DB "${ANET[@]}" "${RECON[@]}"
ok "absent: every charge is terminal" wait_for 60 terminal $DB
ok "absent: and every email is sent" wait_for 30 settled $DB
relay_stop r TERM
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'failed'
               AND last_error LIKE 'lookup found no charge%not charged'")" 5 \
  "absent: failed (not charged) after the settle window, every list walked"
is "$(posts_per_row $DB)" 0 "absent: never POSTed again"
check_invariants $DB --expect-settled

done_testing
