#!/usr/bin/env bash
# The relay's stripe adapter against stripe-stateful-mock (a Stripe mock no
# one here wrote) and its emails against maildev: the quick form of issue 5's
# peer tests. The mock's special tokens drive the cases:
#   tok_visa (with and without a Stripe customer)   succeeded, receipt
#   tok_chargeDeclined and its variants; tok_chargeCustomerFail on a customer
#                                                    declined, decline notice
#   tok_429|tok_visa  (a token chain: 429 first, then success)
#                     pending with the same key, then succeeded: two POSTs
#   tok_500           500 before charging (stored for the key): unknown,
#                     looked up, never POSTed again, failed after the settle
#                     window, failure notice
#   tok_forget        charged and answered, then gone from every read: the
#                     answer is recorded as it came (no lookup is needed)
# Executed POSTs are counted from the mock's own debug log.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
source "$CG_ROOT/tests/lib/thirdparty.sh"
trap 'peers_stop_all; _system_cleanup' EXIT

ok "the npm test peers are installed (make deps does it)" peers_installed || { done_testing; exit 1; }

STRIPE_MOCK_LOG_LEVEL=debug stripe_mock_start
ok "stripe-stateful-mock started on 127.0.0.1" [ $? -eq 0 ]
ok "maildev started on 127.0.0.1" maildev_start
SIM_URL=$STRIPE_URL SMTP_URL=$MAILDEV_SMTP_URL
KEY=sk_test_chargeguard
# Short windows: lookups 1 s apart, absence proven 6 s after the last lease.
RELAY_TEST_ARGS=(--lease 3 --http-timeout 1.5 --settle 6 --reconcile-schedule 1,1,1,2
                 --invoice-retry-schedule 3600 --poll-interval 0.2 --email-retry 0.2
                 --mail-from billing@chargeguard.test)

stripe() { curl -s -u "$KEY:" "$@"; }
# a Stripe customer holding a card made from TOKEN; prints "cus_... card_..."
stripe_customer() {
  stripe "$STRIPE_URL/v1/customers" -d "email=$1" -d "source=$2" | jq -r '"\(.id) \(.default_source)"'
}

DB=peer_stripe
new_db $DB
# customer id, token, invoices: ids 1-8 charge the token as a source alone
# (no gateway customer: looked up by creation time); 9 and 10 are Stripe
# customers charged through their saved card.
sources=(tok_visa tok_chargeDeclined tok_chargeDeclinedInsufficientFunds tok_chargeDeclinedFraudulent
         tok_chargeDeclinedIncorrectCvc tok_chargeDeclinedExpiredCard 'tok_429|tok_visa' tok_500)
values=""
for i in "${!sources[@]}"; do
  values+="$([ -n "$values" ] && echo ,)($((i + 1)), 'c$((i + 1))@example.com', NULL, '${sources[$i]}')"
done
read -r cus_ok card_ok <<<"$(stripe_customer c9@example.com tok_visa)"
read -r cus_fail card_fail <<<"$(stripe_customer c10@example.com tok_chargeCustomerFail)"
like "$cus_ok $card_ok $cus_fail $card_fail" "^cus_[^ ]+ card_[^ ]+ cus_[^ ]+ card_[^ ]+$" \
  "the mock makes two customers with saved cards"
values+=", (9, 'c9@example.com', '$cus_ok', '$card_ok'), (10, 'c10@example.com', '$cus_fail', '$card_fail')"
values+=", (11, 'c11@example.com', NULL, 'tok_forget')"
sql $DB "INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source) VALUES $values;
         INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
         SELECT g, g, 1000 + g, 1000 + g, 'usd', now() - interval '1 day' FROM generate_series(1, 11) g;
         -- two more successes for customer 9, one more plain visa
         INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
         VALUES (12, 9, 2500, 2500, 'usd', now() - interval '1 day'),
                (13, 9, 2600, 2600, 'usd', now() - interval '1 day'),
                (14, 1, 2700, 2700, 'usd', now() - interval '1 day');" >/dev/null
"$CHARGER" --once --db "$(charger_db $DB)" >/dev/null 2>&1
is "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge'")" 14 "the charger enqueues 14 charges"

relay_start relay $DB
charge_of() { sql $DB "SELECT state FROM outbox.messages WHERE kind = 'charge' AND invoice_id = $1"; }
terminal() { [ "$(sql $DB "SELECT count(*) FROM outbox.messages WHERE kind = 'charge'
                            AND state NOT IN ('succeeded', 'declined', 'failed')")" = 0 ]; }
ok "every charge ends terminal (the 500 after its settle window)" wait_for 60 terminal
ok "every email is sent" wait_for 30 settled $DB
relay_stop relay
is "$RELAY_RC" 0 "the relay stops cleanly"

# ---- outcomes ----------------------------------------------------------------
for inv in 1 7 9 11 12 13 14; do
  is "$(charge_of $inv)" succeeded "invoice $inv ($(sql $DB "SELECT payment_source FROM billing.customers c
      JOIN billing.invoices i ON i.customer_id = c.id WHERE i.id = $inv" | cut -c1-20)): succeeded"
done
for inv in 2 3 4 5 6 10; do
  is "$(charge_of $inv)" declined "invoice $inv: declined"
done
is "$(charge_of 8)" failed "tok_500: failed (not charged) once the lookups found nothing after the settle window"
is "$(sql $DB "SELECT status || ' ' || failed_attempts FROM billing.invoices WHERE id = 8")" "open 1" \
  "tok_500: the invoice is back to its retry policy"
like "$(sql $DB "SELECT string_agg(e.detail, ' | ' ORDER BY e.id) FROM outbox.events e JOIN outbox.messages m
                ON m.id = e.message_id WHERE m.invoice_id = 8 AND m.kind = 'charge'")" \
  "lookup found no charge" "tok_500: the event trail names the empty lookup"

# every success recorded with the mock's charge id, and the mock agrees
payments_ok=0 payments=0
while read -r inv ref amount; do
  payments=$((payments + 1))
  got=$(stripe "$STRIPE_URL/v1/charges/$ref" | jq -r '"\(.status) \(.amount) \(.metadata.invoice_id)"')
  if [ "$inv" = 11 ]; then
    like "$got" "^null " "tok_forget: the mock has forgotten charge $ref (404 on retrieve)"
  else
    [ "$got" = "succeeded $amount $inv" ] && payments_ok=$((payments_ok + 1))
  fi
done < <(sql $DB "SELECT invoice_id, gateway_charge_id, amount_cents FROM billing.payments ORDER BY invoice_id" |
         tr '|' ' ')
is "$payments" 7 "seven payments"
is "$payments_ok" 6 "each (but the forgotten one) is a succeeded charge at the mock, same amount and invoice"
is "$(sql $DB "SELECT count(*) FROM billing.invoices WHERE status = 'paid' AND amount_due_cents = 0")" 7 \
  "seven invoices paid"

# ---- at most once: executed POSTs per outbox row, from the mock's own log ----
# Each executed request logs "charges.create <account> {...}" with its
# params; an idempotent replay logs "replaying idempotent request" instead.
posts=$(awk '/^charges.create / {inside = 1; next}
             /^[^ }]/ {inside = 0}
             inside && match($0, /outbox_id: .[0-9]+/) { n[substr($0, RSTART + 12, RLENGTH - 12)]++ }
             END {for (k in n) print k, n[k]}' "$PEERS_TMP/stripe-mock.log" | sort -n)
row_of() { sql $DB "SELECT id FROM outbox.messages WHERE kind = 'charge' AND invoice_id = $1"; }
is "$(awk -v r="$(row_of 7)" '$1 == r {print $2}' <<<"$posts")" 2 \
  "tok_429 then success: two POSTs (the 429 proves nothing was executed)"
is "$(awk -v r="$(row_of 8)" '$1 == r {print $2}' <<<"$posts")" 1 "tok_500: exactly one POST, never sent again"
is "$(awk -v a="$(row_of 7)" '$1 != a && $2 != 1' <<<"$posts" | wc -l)" 0 "every other row: exactly one POST"
is "$(wc -l <<<"$posts")" 14 "all 14 rows reached the mock"
is "$(grep -c "replaying idempotent request" "$PEERS_TMP/stripe-mock.log")" 0 "the relay never needed a replay"
is "$(sql $DB "SELECT count(DISTINCT idempotency_key) FROM outbox.messages m JOIN outbox.events e
              ON e.message_id = m.id WHERE m.invoice_id = 7 AND m.kind = 'charge'")" 1 \
  "the 429 row kept its key"

# the mock replays a stored answer for the same key and body (as Stripe does)
row=$(row_of 9)
body=(-d amount=1009 -d currency=usd -d customer="$cus_ok" -d source="$card_ok" -d "description=Invoice 9"
      -d "metadata[invoice_id]=9" -d "metadata[outbox_id]=$row")
replayed=$(stripe -i "$STRIPE_URL/v1/charges" -H "Idempotency-Key: $(sql $DB "SELECT idempotency_key FROM outbox.messages WHERE id = $row")" "${body[@]}")
like "$replayed" "[Ii]dempotent-[Rr]eplayed: true" "the mock replays the relay's stored answer for its key"
like "$replayed" "\"id\": ?\"$(sql $DB "SELECT gateway_ref FROM outbox.messages WHERE id = $row")\"" \
  "... with the charge id the relay recorded"

# ---- emails at maildev -----------------------------------------------------------
mails=$(curl -sf "$MAILDEV_API/email")
is "$(jq length <<<"$mails")" 14 "maildev received 14 messages"
while read -r id inv template email; do
  case $template in
    receipt) subject="Receipt for invoice $inv" ;;
    decline_notice) subject="Payment for invoice $inv was declined" ;;
    failure_notice) subject="We could not charge invoice $inv" ;;
  esac
  got=$(jq -r --arg mid "<outbox-$id@chargeguard.test>" \
          '[.[] | select(.messageId == $mid or .headers["message-id"] == $mid)] |
           map("\(.to[0].address) \(.subject)") | join("; ")' <<<"$mails")
  is "$got" "$email $subject" "email $id ($template of invoice $inv): one message to $email, right subject"
done < <(sql $DB "SELECT m.id, m.invoice_id, m.template, c.email FROM outbox.messages m
                  JOIN billing.invoices i ON i.id = m.invoice_id JOIN billing.customers c ON c.id = i.customer_id
                  WHERE m.kind = 'email' ORDER BY m.id" | tr '|' ' ')

# the mock keeps no ledger: the checks that need none
CHECK_GATEWAY_LEDGER= check_invariants $DB --only I3,I6,I8,settled --expect-settled
done_testing
