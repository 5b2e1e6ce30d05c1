#!/usr/bin/env bash
# Reconciliation: unknown charges are looked up, never POSTed again. Found
# charges are recorded exactly as a direct answer (payment, invoice paid,
# receipt sent); none found proves "not charged" only after the settle
# window (then failed, the invoice back to its retry policy); lookups that
# keep failing end dead, with the reason, for a person.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
trap 'peers_stop_all; _system_cleanup' EXIT

RECON=(--lease 3 --http-timeout 1.5 --settle 6 --reconcile-schedule 1,1,1)
ok "gateway simulator started" sim_start
ok "SMTP sink started" smtp_start

terminal() { [ "$(sql "$1" "SELECT count(*) FROM outbox.messages WHERE kind = 'charge'
                            AND state IN ('pending', 'submitting', 'unknown')")" = 0 ]; }
one_post_per_key() {
  ledger_sql "$1" "SELECT count(*) FROM (SELECT r->>'idempotency_key' FROM lreq
                   WHERE r->>'method' = 'POST' GROUP BY 1 HAVING count(*) > 1) d"
}
prepare() { # DB N [FAULT_RULES]
  new_db "$1"
  seed "$1" "$2" "$2"
  curl -sf -X POST "$SIM_URL/_control/reset" >/dev/null
  curl -sf -X POST "$SIM_URL/_control/faults" -d "${3:-[]}" >/dev/null
  smtp_restart # this scenario's mail only
  "$CHARGER" --once --db "$(charger_db "$1")" >/dev/null 2>&1
}

# --- the gateway charged, our database never heard: answer lost, relay killed
DB=recon_lost
prepare $DB 30
OUTBOX_CRASH_AT=relay.after_response relay_start dead $DB "${RECON[@]}" --claim-batch 30
wait_for 30 bash -c "! kill -0 ${RELAY_PIDS[dead]} 2>/dev/null"
relay_stop dead KILL
is "$RELAY_RC" 137 "lost answers: the relay died after reading answers, before recording them"
t0=$SECONDS
relay_start heir $DB "${RECON[@]}"
ok "lost answers: every charge is terminal again without a person" wait_for 60 terminal $DB
diag "lost answers: terminal $((SECONDS - t0)) s after the second relay started"
ok "lost answers: and every email is sent" wait_for 30 settled $DB
relay_stop heir TERM
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'succeeded'")" 30 \
  "lost answers: all 30 found at the gateway and recorded as succeeded"
is "$(sql $DB "SELECT count(*) FROM billing.invoices WHERE status = 'paid' AND amount_due_cents = 0")" 30 \
  "lost answers: every invoice paid"
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'email' AND template = 'receipt' AND state = 'sent'")" 30 \
  "lost answers: every receipt sent"
is "$(one_post_per_key $DB)" 0 "lost answers: no key was POSTed twice"
like "$(relay_log heir)" "reconciled: succeeded" "lost answers: the log says how each was settled"
check_invariants $DB --expect-settled

# --- the gateway failed before charging: absent, then failed after settle ---
DB=recon_absent
prepare $DB 10 '[{"fault": "500_before"}]'
t0=$SECONDS
relay_start r $DB "${RECON[@]}"
ok "500 before charging: every charge is terminal" wait_for 60 terminal $DB
diag "500 before charging: terminal after $((SECONDS - t0)) s (settle window 6 s)"
ok "500 before charging: and every email is sent" wait_for 30 settled $DB
relay_stop r TERM
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'failed'
               AND last_error LIKE 'lookup found no charge%not charged'")" 10 \
  "500 before charging: failed (not charged), once the settle window had passed"
is "$(sql $DB "SELECT count(*) FROM outbox.events e JOIN outbox.messages m ON m.id = e.message_id
               WHERE m.kind = 'charge' AND e.to_state = 'failed'
                 AND e.at < m.lease_expires_at + interval '6 seconds'")" 0 \
  "500 before charging: no row was called failed before its settle window ended"
is "$(sql $DB "SELECT count(*) FROM billing.invoices WHERE status = 'open' AND failed_attempts = 1
               AND next_attempt_at > now() + interval '50 minutes'")" 10 \
  "500 before charging: each invoice is open again, its next attempt pushed out (a new row, a new key)"
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'email' AND template = 'failure_notice' AND state = 'sent'")" 10 \
  "500 before charging: failure notices sent"
is "$(one_post_per_key $DB)" 0 "500 before charging: never POSTed again"
check_invariants $DB --expect-settled

# --- charged, then 500: found and recorded ---------------------------------
DB=recon_found
prepare $DB 10 '[{"fault": "500_after"}]'
relay_start r $DB "${RECON[@]}"
ok "500 after charging: every charge is terminal" wait_for 60 terminal $DB
ok "500 after charging: and every email is sent" wait_for 30 settled $DB
relay_stop r TERM
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'succeeded'")" 10 \
  "500 after charging: found by the lookup, recorded as succeeded"
is "$(one_post_per_key $DB)" 0 "500 after charging: never POSTed again"
check_invariants $DB --expect-settled

# --- a decline whose answer was lost: found as declined --------------------
DB=recon_declined
new_db $DB
sql $DB "INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source)
         SELECT g, 'c' || g || '@example.com', 'cus_' || g, 'tok_chargeDeclined' FROM generate_series(1, 5) g;
         INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
         SELECT g, g, 700, 700, 'usd', now() - interval '1 day' FROM generate_series(1, 5) g;"
curl -sf -X POST "$SIM_URL/_control/reset" >/dev/null
curl -sf -X POST "$SIM_URL/_control/faults" -d '[{"fault": "reset_after"}]' >/dev/null
smtp_restart
"$CHARGER" --once --db "$(charger_db $DB)" >/dev/null 2>&1
relay_start r $DB "${RECON[@]}"
ok "lost decline: every charge is terminal" wait_for 60 terminal $DB
ok "lost decline: and every email is sent" wait_for 30 settled $DB
relay_stop r TERM
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'declined'
               AND gateway_ref LIKE 'ch_%'")" 5 "lost decline: found as declined, with the gateway's charge id"
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'email' AND template = 'decline_notice' AND state = 'sent'")" 5 \
  "lost decline: decline notices sent"
check_invariants $DB --expect-settled

# --- lookups keep failing: dead after the schedule, with the reason --------
DB=recon_dead
prepare $DB 5 '[{"fault": "500_after"}]'
curl -sf -X POST "$SIM_URL/_control/lookup_faults" -d '{"status": 503}' >/dev/null
relay_start r $DB "${RECON[@]}"
dead() { [ "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'dead'")" = 5 ]; }
ok "lookups failing: the rows are dead once the schedule (3 lookups) is spent" wait_for 60 dead
relay_stop r TERM
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'dead'
               AND failed_lookups = 3 AND last_error LIKE 'gave up after 3 inconclusive lookups; last: lookup answered HTTP 503'")" 5 \
  "lookups failing: each dead row says why"
is "$(sql $DB "SELECT count(*) FROM billing.invoices WHERE status = 'in_flight'")" 5 \
  "lookups failing: the invoices stay in_flight (live: nobody may charge them again)"
is "$(ledger_sql $DB "SELECT count(*) FROM lreq WHERE r->>'method' = 'GET'")" 15 \
  "lookups failing: exactly the 3 scheduled lookups per row"
is "$(one_post_per_key $DB)" 0 "lookups failing: never POSTed again"
check_invariants $DB --allow-unknown --only I1,I3,I4,I6,I8,charges-have-rows

done_testing
