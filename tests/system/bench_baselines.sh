#!/usr/bin/env bash
# The benchmark's two baselines (issue 7) do the job they are timed on:
# build/bench/naive_loop and tests/bench/graphile/run.sh each charge 50 due
# invoices (every 10th customer's card declines) at the gateway simulator,
# in a fresh database of their own and with a fresh simulator. Afterwards
# every invoice is paid (one payment, one charge transaction) or declined
# (still open, one failed attempt, one decline transaction), exactly once;
# the simulator saw one POST and made one charge per invoice, with an
# Idempotency-Key, and every payment is one of its succeeded charges, to
# the cent. Both refuse bad arguments with a message and exit 2. The
# graphile part is skipped when tests/peers/node_modules lacks it.
source "$(dirname "$0")/../lib/system.sh"
source "$CG_ROOT/tests/lib/peers.sh"
trap 'peers_stop_all; _system_cleanup' EXIT

N=50
NAIVE=$CG_ROOT/build/bench/naive_loop
GRAPHILE=$CG_ROOT/tests/bench/graphile/run.sh
KEY=$TEST_TMP/gateway.key
echo "sk_test_baselines_$RANDOM" >"$KEY"

# seed_baseline DB: 10 customers, the 10th declines; N invoices due a day ago
seed_baseline() {
  new_db "$1" && sql "$1" "
    INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source)
    SELECT g, 'customer' || g || '@example.com', 'cus_' || g,
           CASE WHEN g = 10 THEN 'tok_chargeDeclined' ELSE 'tok_visa' END
      FROM generate_series(1, 10) g;
    INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
    SELECT g, 1 + g % 10, 500 + g, 500 + g, 'usd', now() - interval '1 day'
      FROM generate_series(1, $N) g;"
}

# check_outcomes LABEL DB: the database and the simulator's ledger agree
# that each invoice was charged once and recorded once (IS NOT TRUE: an
# invoice without transactions makes array_agg NULL, and NULL must count)
check_outcomes() {
  local label=$1 db=$2 declines=$((N / 10))
  is "$(sql "$db" "SELECT count(*) FROM billing.invoices i WHERE (
         (i.status = 'paid' AND i.amount_due_cents = 0 AND i.failed_attempts = 0
          AND (SELECT count(*) FROM billing.payments p WHERE p.invoice_id = i.id
                 AND p.amount_cents = i.amount_cents) = 1
          AND (SELECT array_agg(kind) FROM billing.transactions t WHERE t.invoice_id = i.id) = '{charge}')
      OR (i.status = 'open' AND i.customer_id = 10 AND i.failed_attempts = 1
          AND i.next_attempt_at > now() AND i.amount_due_cents = i.amount_cents
          AND NOT EXISTS (SELECT 1 FROM billing.payments p WHERE p.invoice_id = i.id)
          AND (SELECT array_agg(kind) FROM billing.transactions t WHERE t.invoice_id = i.id) = '{decline}')
      ) IS NOT TRUE")" 0 \
    "$label: every invoice is paid once (payment + charge) or declined once (decline, retry later)"
  is "$(sql "$db" "SELECT count(*) FROM billing.invoices WHERE status = 'open'")" "$declines" \
    "$label: the $declines invoices of the declining card are the declined ones"
  is "$(ledger_sql "$db" "
      SELECT count(*) FILTER (WHERE posts = 1 AND charges = 1 AND keyed), count(*)
        FROM (SELECT i.id,
                     (SELECT count(*) FROM lreq WHERE r->>'method' = 'POST'
                         AND r->>'invoice_id' = i.id::text) AS posts,
                     (SELECT count(*) FROM lch WHERE c->'metadata'->>'invoice_id' = i.id::text) AS charges,
                     (SELECT bool_and(r->>'idempotency_key' LIKE '${label}_%') FROM lreq
                       WHERE r->>'invoice_id' = i.id::text) AS keyed
                FROM billing.invoices i) x")" "$N|$N" \
    "$label: the simulator saw one POST (with its Idempotency-Key) and made one charge per invoice"
  is "$(ledger_sql "$db" "SELECT count(*) FROM lreq") $(ledger_sql "$db" "SELECT count(*) FROM lch")" "$N $N" \
    "$label: and nothing else"
  is "$(ledger_sql "$db" "SELECT count(*) FROM billing.payments p JOIN lch
                            ON c->>'id' = p.gateway_charge_id AND c->>'outcome' = 'succeeded'
                           AND (c->>'amount')::bigint = p.amount_cents AND c->>'currency' = p.currency
                           AND c->'metadata'->>'invoice_id' = p.invoice_id::text")" "$((N - declines))" \
    "$label: every payment is one of the simulator's succeeded charges, to the cent"
}

# refused LABEL WANT_REGEX COMMAND...: exit 2 and a message saying why
refused() {
  local label=$1 want=$2 out rc; shift 2
  out=$("$@" 2>&1)
  rc=$?
  is "$rc" 2 "$label: exit 2"
  like "$out" "$want" "$label: says why"
}

ok "gateway simulator started" sim_start

# --- naive_loop -------------------------------------------------------------
refused "naive_loop without --db" "--db is required" "$NAIVE" --gateway-url "$SIM_URL" --key-file "$KEY"
refused "naive_loop with an ftp:// gateway" "must start with http:// or https://" \
  "$NAIVE" --db "dbname=x" --gateway-url ftp://127.0.0.1 --key-file "$KEY"
refused "naive_loop with a missing key file" "cannot be opened" \
  "$NAIVE" --db "dbname=x" --gateway-url "$SIM_URL" --key-file "$TEST_TMP/none"
refused "naive_loop with an unknown option" "unknown option '--fast'" "$NAIVE" --fast

seed_baseline bench_naive
out=$("$NAIVE" --db "dbname=bench_naive host=$PGHOST" --gateway-url "$SIM_URL" --key-file "$KEY" 2>&1)
is "$?" 0 "naive_loop charges every due invoice and exits 0"
like "$(tail -1 <<<"$out")" "^naive: charged=$N seconds=[0-9]+\.[0-9]{3}$" "its last line: naive: charged=$N seconds=S"
check_outcomes naive bench_naive

# --- graphile-worker ----------------------------------------------------------
refused "run.sh with 3 arguments" "expected 4 arguments" "$GRAPHILE" "dbname=x" "$SIM_URL" "$KEY"
refused "run.sh with concurrency 0" "CONCURRENCY '0' must be a whole number" "$GRAPHILE" "dbname=x" "$SIM_URL" "$KEY" 0
refused "run.sh with an unreadable key file" "KEYFILE .* is not a readable file" \
  "$GRAPHILE" "dbname=x" "$SIM_URL" "$TEST_TMP/none" 10
if [ -d "$CG_ROOT/tests/peers/node_modules/graphile-worker" ]; then
  refused "run.sh with a conninfo keyword it cannot pass on" "only dbname, host, port, user, password" \
    "$GRAPHILE" "dbname=postgres host=$PGHOST sslmode=require" "$SIM_URL" "$KEY" 10
  ok "a fresh simulator" sim_restart
  seed_baseline bench_graphile
  out=$(timeout 60 "$GRAPHILE" "dbname=bench_graphile host=$PGHOST" "$SIM_URL" "$KEY" 10 2>&1)
  is "$?" 0 "graphile-worker charges every due invoice and exits 0"
  like "$(tail -1 <<<"$out")" "^graphile: charged=$N seconds=[0-9]+\.[0-9]{3}$" \
    "its last line: graphile: charged=$N seconds=S"
  is "$(sql bench_graphile "SELECT count(*) FROM graphile_worker.jobs")" 0 "no job is left in graphile's queue"
  check_outcomes graphile bench_graphile
else
  _tap_result 0 "graphile-worker # SKIP tests/peers/node_modules/graphile-worker is absent (make deps)"
fi

done_testing
