#!/usr/bin/env bash
# The relay end to end at volume: 10,000 invoices, some declining, through
# the gateway simulator and the SMTP sink; every outcome recorded once,
# every email sent once, and the invariants hold against the peers' ledgers.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
trap 'peers_stop_all; _system_cleanup' EXIT

DB=relay_happy
N=10000
new_db $DB
sql $DB "
  INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source)
  SELECT g, 'customer' || g || '@example.com', 'cus_' || g,
         CASE WHEN g % 50 = 0 THEN 'tok_chargeDeclined'
              WHEN g % 50 = 25 THEN 'tok_chargeDeclinedInsufficientFunds' ELSE 'tok_visa' END
    FROM generate_series(1, 1000) g;
  INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
  SELECT g, 1 + g % 1000, 500 + g % 9000, 500 + g % 9000, 'usd', now() - interval '1 day'
    FROM generate_series(1, $N) g;"
declines=$(sql $DB "SELECT count(*) FROM billing.invoices i JOIN billing.customers c ON c.id = i.customer_id
                    WHERE c.payment_source LIKE 'tok_chargeDeclined%'")

ok "gateway simulator started" sim_start --latency-ms 20
ok "SMTP sink started" smtp_start
"$CHARGER" --once --db "$(charger_db $DB)" >"$TEST_TMP/charger.log" 2>&1
is "$?" 0 "charger enqueued the invoices"
t0=$SECONDS
relay_start relay $DB --max-inflight 512
ok "all $N charges and their emails settle within 240 s" wait_for 240 settled $DB
diag "relay settled $N charges in $((SECONDS - t0)) s"
relay_stop relay TERM
is "$RELAY_RC" 0 "SIGTERM: the relay stops cleanly (exit 0)"

is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'succeeded'")" \
  "$((N - declines))" "every charge of a good card succeeded"
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge' AND state = 'declined'")" \
  "$declines" "every declining card was declined ($declines)"
is "$(sql $DB "SELECT count(*) FROM billing.invoices WHERE status = 'paid' AND amount_due_cents = 0")" \
  "$((N - declines))" "paid invoices owe nothing"
is "$(sql $DB "SELECT count(*) FROM billing.invoices WHERE status = 'open' AND failed_attempts = 1
               AND next_attempt_at > now() + interval '50 minutes'")" "$declines" \
  "declined invoices are open again, their next attempt pushed out by the retry policy"
is "$(sql $DB "SELECT count(*) FROM billing.transactions")" "$N" "one transaction per outcome"
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'email' AND state = 'sent'")" "$N" \
  "every notification sent"
is "$(sql $DB "SELECT count(*) FROM outbox.messages e JOIN outbox.messages c ON c.id = e.parent_id
               WHERE e.template IS DISTINCT FROM CASE c.state WHEN 'succeeded' THEN 'receipt'
                                                   ELSE 'decline_notice' END")" 0 \
  "receipts for successes, decline notices for declines"
is "$(wc -l <"$SMTP_LEDGER")" "$N" "the SMTP sink received exactly $N messages (no duplicates in a fault-free run)"
log=$(relay_log relay)
unlike "$log" "NOT recorded|lease lost|; back to pending" "no outcome lost, no lease lost, nothing unsent"
like "$log" "exiting with status 0 \(claimed $N, sent $N, recorded $N" "the relay's own counts agree"
check_invariants $DB --expect-settled

done_testing
