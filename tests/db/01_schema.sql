-- 01_schema: the tables and columns CONTRACT.md promises, and the CHECK and
-- UNIQUE constraints that keep outbox rows, payments and transactions sane.
--
-- Proves that every CONTRACT.md table and column exists (ids and amounts are
-- bigint), explicit ids may be inserted, and that the database itself
-- refuses: non-positive amounts, currencies that are not three lower-case
-- letters, idempotency keys that are empty, longer than 255 characters or
-- reused; a second payment for one outbox row or one gateway charge; e-mail
-- rows without a parent charge; dead rows without a reason; claims without
-- token, owner and lease; succeeded charges without the gateway's reference;
-- released e-mails without a template.
BEGIN;
\ir helpers.psql

-- The names CONTRACT.md promises to outside readers.
CREATE TEMP TABLE contract (sch name, tbl name, col name, ord serial);
INSERT INTO contract (sch, tbl, col)
SELECT 'billing', 'customers', unnest(ARRAY['id', 'email', 'gateway_customer_id', 'payment_source'])
UNION ALL
SELECT 'billing', 'invoices', unnest(ARRAY['id', 'customer_id', 'amount_cents', 'amount_due_cents',
                                           'currency', 'due_at', 'status'])
UNION ALL
SELECT 'billing', 'payments', unnest(ARRAY['id', 'invoice_id', 'outbox_id', 'amount_cents', 'currency',
                                           'gateway_charge_id', 'created_at'])
UNION ALL
SELECT 'billing', 'transactions', unnest(ARRAY['id', 'invoice_id', 'outbox_id', 'kind', 'amount_cents',
                                               'gateway_charge_id', 'created_at'])
UNION ALL
SELECT 'outbox', 'messages', unnest(ARRAY['id', 'kind', 'invoice_id', 'parent_id', 'idempotency_key',
                                          'state', 'attempts', 'not_before', 'claim_token', 'lease_owner',
                                          'lease_expires_at', 'gateway_ref', 'last_error', 'created_at',
                                          'updated_at'])
UNION ALL
SELECT 'outbox', 'events', unnest(ARRAY['id', 'message_id', 'at', 'from_state', 'to_state', 'actor', 'detail']);

-- "Ids are bigint ... amounts are integer cents": every id, reference and amount.
CREATE TEMP VIEW contract_bigint AS
SELECT * FROM contract
 WHERE col = 'id' OR (col LIKE '%\_id' AND col NOT LIKE 'gateway\_%') OR col LIKE '%\_cents';

SELECT plan((
      2                                            -- schemas
    + 9                                            -- tables
    + (SELECT count(*) FROM contract)              -- columns
    + (SELECT count(*) FROM contract_bigint)       -- bigint ids and amounts
    + 2                                            -- explicit ids
    + 13                                           -- charge rows
    + 8                                            -- payments, transactions
    + 13                                           -- per-state requirements
)::int);

SELECT has_schema('billing', 'schema billing exists');
SELECT has_schema('outbox', 'schema outbox exists');

SELECT has_table('billing', 'customers', 'table billing.customers exists');
SELECT has_table('billing', 'invoices', 'table billing.invoices exists');
SELECT has_table('billing', 'payments', 'table billing.payments exists');
SELECT has_table('billing', 'transactions', 'table billing.transactions exists');
SELECT has_table('outbox', 'messages', 'table outbox.messages exists');
SELECT has_table('outbox', 'events', 'table outbox.events exists');
SELECT has_table('outbox', 'schema_migrations', 'table outbox.schema_migrations exists (db/migrate)');
SELECT has_table('outbox', 'transitions', 'table outbox.transitions exists (the legal moves)');
SELECT has_table('outbox', 'unchargeable', 'table outbox.unchargeable exists (enqueue_due''s report)');

CREATE FUNCTION pg_temp.contract_tests()
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM contract ORDER BY ord LOOP
        RETURN NEXT has_column(r.sch, r.tbl, r.col, format('column %I.%I.%I exists', r.sch, r.tbl, r.col));
    END LOOP;
    FOR r IN SELECT * FROM contract_bigint ORDER BY ord LOOP
        RETURN NEXT col_type_is(r.sch, r.tbl, r.col, 'bigint',
                                format('column %I.%I.%I is bigint', r.sch, r.tbl, r.col));
    END LOOP;
END
$$;
SELECT * FROM pg_temp.contract_tests();

-- Shops import their customers and invoices with their own ids.
SELECT lives_ok(
    $$INSERT INTO billing.customers (id, email, gateway_customer_id) VALUES (900001, 'a@example.com', 'cus_a')$$,
    'a customer may be inserted with an explicit id');
SELECT lives_ok(
    $$INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
      VALUES (900001, 900001, 1000, 1000, 'usd', now())$$,
    'an invoice may be inserted with an explicit id');

-- Charge rows. Each INSERT goes to an in_flight invoice with no charge yet,
-- so only the constraint under test can refuse it.
CREATE FUNCTION pg_temp.charge_sql(p_key text, p_amount text, p_currency text)
RETURNS text LANGUAGE sql AS $$
    SELECT format('INSERT INTO outbox.messages (kind, invoice_id, idempotency_key, state, amount_cents, currency)'
                  ' VALUES (''charge'', %s, %s, ''pending'', %s, %s)',
                  pg_temp.cg_invoice('in_flight'), p_key, p_amount, p_currency)
$$;

SELECT throws_ok(pg_temp.charge_sql('''k_zero''', '0', '''usd'''),
    '23514', pg_temp.check_violation('messages', 'messages_amount_cents_check'),
    'a charge of 0 cents is refused (23514): amount_cents must be > 0');
SELECT throws_ok(pg_temp.charge_sql('''k_neg''', '-100', '''usd'''),
    '23514', pg_temp.check_violation('messages', 'messages_amount_cents_check'),
    'a charge of -100 cents is refused (23514): amount_cents must be > 0');
SELECT throws_ok(pg_temp.charge_sql('''k_USD''', '100', '''USD'''),
    '23514', pg_temp.check_violation('messages', 'messages_currency_check'),
    'currency ''USD'' is refused (23514): currencies are lower-case ISO 4217 codes');
SELECT throws_ok(pg_temp.charge_sql('''k_us''', '100', '''us'''),
    '23514', pg_temp.check_violation('messages', 'messages_currency_check'),
    'currency ''us'' is refused (23514): two letters');
SELECT throws_ok(pg_temp.charge_sql('''k_usdx''', '100', '''usdx'''),
    '23514', pg_temp.check_violation('messages', 'messages_currency_check'),
    'currency ''usdx'' is refused (23514): four letters');
SELECT lives_ok(pg_temp.charge_sql('''k_usd''', '100', '''usd'''),
    'currency ''usd'' with a positive amount is accepted');
SELECT throws_ok(pg_temp.charge_sql(quote_literal(repeat('k', 256)), '100', '''usd'''),
    '23514', pg_temp.check_violation('messages', 'messages_idempotency_key_check'),
    'an idempotency key of 256 characters is refused (23514): at most 255');
SELECT lives_ok(pg_temp.charge_sql(quote_literal(repeat('k', 255)), '100', '''usd'''),
    'an idempotency key of 255 characters is accepted');
SELECT throws_ok(pg_temp.charge_sql('''''', '100', '''usd'''),
    '23514', pg_temp.check_violation('messages', 'messages_idempotency_key_check'),
    'an empty idempotency key is refused (23514)');
SELECT throws_ok(pg_temp.charge_sql('''k_usd''', '100', '''usd'''),
    '23505', pg_temp.unique_violation('messages_idempotency_key_key'),
    'an idempotency key already used by another row is refused (23505): one charge per key');
SELECT throws_ok(pg_temp.charge_sql('NULL', '100', '''usd'''),
    '23514', pg_temp.check_violation('messages', 'messages_charge_fields'),
    'a charge without an idempotency key is refused (23514): key, amount and currency are required');
SELECT throws_ok(pg_temp.charge_sql('''k_noamount''', 'NULL', '''usd'''),
    '23514', pg_temp.check_violation('messages', 'messages_charge_fields'),
    'a charge without an amount is refused (23514)');
SELECT throws_ok(
    format($$INSERT INTO outbox.messages (kind, invoice_id, idempotency_key, state, amount_cents, currency, template)
             VALUES ('charge', %s, 'k_tpl', 'pending', 100, 'usd', 'receipt')$$, pg_temp.cg_invoice('in_flight')),
    '23514', pg_temp.check_violation('messages', 'messages_email_template'),
    'a charge with an e-mail template is refused (23514): templates belong to e-mail rows');

-- Payments and transactions: one payment per outbox row and per gateway charge.
CREATE TEMP TABLE fx AS
SELECT pg_temp.cg_message_in('charge', 'succeeded') AS charge1,
       pg_temp.cg_message_in('charge', 'succeeded') AS charge2;

CREATE FUNCTION pg_temp.payment_sql(p_charge bigint, p_amount text, p_currency text, p_gateway_charge text)
RETURNS text LANGUAGE sql AS $$
    SELECT format('INSERT INTO billing.payments (invoice_id, outbox_id, amount_cents, currency, gateway_charge_id)'
                  ' SELECT invoice_id, id, %s, %L, %L FROM outbox.messages WHERE id = %s',
                  p_amount, p_currency, p_gateway_charge, p_charge)
$$;

SELECT throws_ok(pg_temp.payment_sql((SELECT charge1 FROM fx), '0', 'usd', 'ch_1'),
    '23514', pg_temp.check_violation('payments', 'payments_amount_cents_check'),
    'a payment of 0 cents is refused (23514)');
SELECT throws_ok(pg_temp.payment_sql((SELECT charge1 FROM fx), '-5', 'usd', 'ch_1'),
    '23514', pg_temp.check_violation('payments', 'payments_amount_cents_check'),
    'a payment of -5 cents is refused (23514)');
SELECT throws_ok(pg_temp.payment_sql((SELECT charge1 FROM fx), '1000', 'USD', 'ch_1'),
    '23514', pg_temp.check_violation('payments', 'payments_currency_check'),
    'a payment in currency ''USD'' is refused (23514): lower-case ISO 4217 codes only');
SELECT lives_ok(pg_temp.payment_sql((SELECT charge1 FROM fx), '1000', 'usd', 'ch_1'),
    'a payment of a succeeded charge is accepted');
SELECT throws_ok(pg_temp.payment_sql((SELECT charge1 FROM fx), '1000', 'usd', 'ch_other'),
    '23505', pg_temp.unique_violation('payments_outbox_id_key'),
    'a second payment for the same outbox row is refused (23505): one payment per charge row');
SELECT throws_ok(pg_temp.payment_sql((SELECT charge2 FROM fx), '1000', 'usd', 'ch_1'),
    '23505', pg_temp.unique_violation('payments_gateway_charge_id_key'),
    'a second payment for the same gateway charge id is refused (23505): one payment per gateway charge');
SELECT throws_ok(
    format($$INSERT INTO billing.transactions (invoice_id, outbox_id, kind, amount_cents)
             SELECT invoice_id, id, 'charge', 0 FROM outbox.messages WHERE id = %s$$, (SELECT charge2 FROM fx)),
    '23514', pg_temp.check_violation('transactions', 'transactions_amount_cents_check'),
    'a transaction of 0 cents is refused (23514)');
SELECT throws_ok(
    format($$INSERT INTO billing.transactions (invoice_id, outbox_id, kind, amount_cents)
             SELECT invoice_id, id, 'refund', 100 FROM outbox.messages WHERE id = %s$$, (SELECT charge2 FROM fx)),
    '23514', pg_temp.check_violation('transactions', 'transactions_kind_check'),
    'a transaction of kind ''refund'' is refused (23514): charge, decline or failure only');

-- What each state requires of a row.
SELECT throws_ok(
    format($$INSERT INTO outbox.messages (kind, invoice_id, state) VALUES ('email', %s, 'waiting')$$,
           pg_temp.cg_invoice('in_flight')),
    '23514', pg_temp.check_violation('messages', 'messages_email_parent'),
    'an e-mail row without parent_id is refused (23514): it must name the charge it announces');
SELECT throws_ok(
    format($$INSERT INTO outbox.messages (kind, invoice_id, parent_id, idempotency_key, state, amount_cents, currency)
             VALUES ('charge', %s, %s, 'k_parent', 'pending', 100, 'usd')$$,
           pg_temp.cg_invoice('in_flight'), (SELECT charge1 FROM fx)),
    '23514', pg_temp.check_violation('messages', 'messages_email_parent'),
    'a charge row with a parent_id is refused (23514): only e-mails have parents');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET state = 'dead' WHERE id = %s$$, pg_temp.cg_message_in('charge', 'unknown')),
    '23514', pg_temp.check_violation('messages', 'messages_dead_has_reason'),
    'charge unknown -> dead without last_error is refused (23514): a dead row carries its reason');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET state = 'dead' WHERE id = %s$$, pg_temp.cg_message_in('email', 'submitting')),
    '23514', pg_temp.check_violation('messages', 'messages_dead_has_reason'),
    'e-mail submitting -> dead without last_error is refused (23514): a dead row carries its reason');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET state = 'submitting', claim_token = gen_random_uuid(),
                    attempts = attempts + 1, lease_expires_at = now() + interval '1 minute'
              WHERE id = %s$$, pg_temp.cg_message_in('charge', 'pending')),
    '23514', pg_temp.check_violation('messages', 'messages_claim_complete'),
    'a claim without lease_owner is refused (23514): submitting needs token, owner and lease');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET state = 'submitting', claim_token = gen_random_uuid(),
                    attempts = attempts + 1, lease_owner = 'relay-1'
              WHERE id = %s$$, pg_temp.cg_message_in('charge', 'pending')),
    '23514', pg_temp.check_violation('messages', 'messages_claim_complete'),
    'a claim without lease_expires_at is refused (23514): submitting needs token, owner and lease');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET state = 'submitting', claim_token = NULL, attempts = attempts + 1,
                    lease_owner = 'relay-1', lease_expires_at = now() + interval '1 minute'
              WHERE id = %s$$,
           pg_temp.cg_move(pg_temp.cg_message_in('charge', 'submitting'), 'pending')),
    '23514', pg_temp.check_violation('messages', 'messages_claim_complete'),
    'a re-claim that clears claim_token is refused (23514): submitting needs token, owner and lease');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET state = 'succeeded' WHERE id = %s$$,
           pg_temp.cg_message_in('charge', 'submitting')),
    '23514', pg_temp.check_violation('messages', 'messages_success_has_ref'),
    'charge submitting -> succeeded without gateway_ref is refused (23514): a success names the gateway charge');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET state = 'pending' WHERE id = %s$$, pg_temp.cg_message_in('email', 'waiting')),
    '23514', pg_temp.check_violation('messages', 'messages_email_template'),
    'releasing an e-mail (waiting -> pending) without a template is refused (23514)');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET state = 'pending', template = 'hello' WHERE id = %s$$,
           pg_temp.cg_message_in('email', 'waiting')),
    '23514', pg_temp.check_violation('messages', 'messages_template_check'),
    'an unknown template ''hello'' is refused (23514): receipt, decline_notice or failure_notice');
SELECT lives_ok(
    format($$UPDATE outbox.messages SET state = 'pending', template = 'receipt' WHERE id = %s$$,
           pg_temp.cg_message_in('email', 'waiting')),
    'releasing an e-mail with template ''receipt'' is accepted');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET attempts = -1 WHERE id = %s$$, pg_temp.cg_message_in('charge', 'pending')),
    'CG003', NULL,
    'a negative attempts count is refused (CG003: attempts changes only by a claim, so the CHECK behind it is never reached)');
SELECT throws_ok(
    $$INSERT INTO billing.invoices (customer_id, amount_cents, amount_due_cents, currency, due_at, status)
      VALUES (900001, 100, 100, 'usd', now(), 'overdue')$$,
    '23514', pg_temp.check_violation('invoices', 'invoices_status_check'),
    'invoice status ''overdue'' is refused (23514): open, in_flight, paid, failed or void');

SELECT * FROM finish();
ROLLBACK;
