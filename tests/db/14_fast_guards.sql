-- 14_fast_guards: migration 0012 gives each row guard its legal moves as a
-- constant array generated from outbox.transitions.
--
-- Proves that:
--   * messages_guard's array is exactly the charge and email rows of
--     outbox.transitions, and invoices_guard's exactly the invoice rows (and
--     both use the same list), so the table people read is the rule the
--     database enforces (02_transitions tries every pair against the table);
--   * neither guard queries outbox.transitions any more (the point of 0012);
--   * check_in_flight (I6) still refuses an in_flight invoice without a
--     live charge at commit (CG006), with its one query.
BEGIN;
\ir helpers.psql

SELECT plan(5);

CREATE FUNCTION pg_temp.moves_of(f regprocedure) RETURNS text[] LANGUAGE sql AS $$
    SELECT (regexp_match(pg_get_functiondef(f),
                         'allowed CONSTANT text\[\] := ''(\{[^'']*\})''::text\[\]'))[1]::text[]
$$;
CREATE TEMP VIEW table_moves AS
SELECT kind, kind || ':' || coalesce(from_state, '') || '>' || to_state AS move
  FROM outbox.transitions;

SELECT set_eq(
    $$SELECT m FROM unnest(pg_temp.moves_of('outbox.messages_guard()'::regprocedure)) m
       WHERE m LIKE 'charge:%' OR m LIKE 'email:%'$$,
    $$SELECT move FROM table_moves WHERE kind IN ('charge', 'email')$$,
    'messages_guard allows exactly the charge and email moves of outbox.transitions');
SELECT set_eq(
    $$SELECT m FROM unnest(pg_temp.moves_of('billing.invoices_guard()'::regprocedure)) m
       WHERE m LIKE 'invoice:%'$$,
    $$SELECT move FROM table_moves WHERE kind = 'invoice'$$,
    'invoices_guard allows exactly the invoice moves of outbox.transitions');
SELECT is(pg_temp.moves_of('outbox.messages_guard()'::regprocedure),
          pg_temp.moves_of('billing.invoices_guard()'::regprocedure),
          'both guards carry the same generated list');
SELECT ok(pg_get_functiondef('outbox.messages_guard()'::regprocedure) NOT LIKE '%EXISTS (SELECT 1 FROM outbox.transitions%'
          AND pg_get_functiondef('billing.invoices_guard()'::regprocedure) NOT LIKE '%EXISTS (SELECT 1 FROM outbox.transitions%',
          'neither guard runs a query on outbox.transitions');

-- I6 at commit, forced now: an invoice moved to in_flight with no charge.
INSERT INTO billing.customers (id, email, gateway_customer_id) VALUES (970001, 'i6@example.com', 'cus_i6');
INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
VALUES (970001, 970001, 100, 100, 'usd', now());
UPDATE billing.invoices SET status = 'in_flight' WHERE id = 970001;
SELECT throws_ok('SET CONSTRAINTS ALL IMMEDIATE', 'CG006', NULL,
                 'I6 refuses an in_flight invoice without a live charge');

SELECT * FROM finish();
ROLLBACK;
