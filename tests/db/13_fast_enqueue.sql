-- 13_fast_enqueue: migration 0011 wraps charge_problem() in a CASE in
-- enqueue_due's query so the planner can read invoices_due_idx in order.
--
-- Proves that:
--   * over every edge of the rule (amount due -1, 0, 1, 99999999, 100000000; currency 'usd',
--     'USD', 'us', 'usdd', ' usd', 'u1d', 'xyz'; gateway customer and payment
--     source each NULL, '', '  ' or set), enqueue_due takes exactly the
--     invoices charge_problem() passes and reports exactly the others as
--     unchargeable, with charge_problem()'s reason;
--   * with many due invoices, a batch reads invoices_due_idx and stops at
--     the batch size: the plan of the due selection has no Sort and no Seq
--     Scan on invoices (a plan that tests every due invoice per batch made
--     a run quadratic in its size).
BEGIN;
\ir helpers.psql

SELECT plan(6);

-- Customers: every combination of gateway customer and payment source,
-- each absent (NULL), empty, blank or set ('x').
CREATE TEMP TABLE blanks (v) AS VALUES (NULL::text), (''), ('  '), ('x');
INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source)
SELECT 930000 + row_number() OVER (), 'e@example.com',
       CASE g.v WHEN 'x' THEN 'cus_set' ELSE g.v END,
       CASE s.v WHEN 'x' THEN 'tok_set' ELSE s.v END
  FROM blanks g, blanks s;

-- One invoice per customer x amount x currency, all due.
INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
SELECT 940000 + row_number() OVER (ORDER BY c.id, a.v, cur.v), c.id, 100, a.v, cur.v,
       now() - interval '1 day'
  FROM billing.customers c,
       (VALUES (-1::bigint), (0), (1), (99999999), (100000000)) a(v),
       (VALUES ('usd'), ('USD'), ('us'), ('usdd'), (' usd'), ('u1d'), ('xyz')) cur(v)
 WHERE c.id > 930000;

CREATE TEMP TABLE expected AS
SELECT i.id,
       outbox.charge_problem(i.amount_due_cents, i.currency, c.id,
                             c.gateway_customer_id, c.payment_source) AS reason
  FROM billing.invoices i JOIN billing.customers c ON c.id = i.customer_id
 WHERE i.id > 940000;

SELECT cmp_ok((SELECT count(*) FROM expected WHERE reason IS NULL), '>', 0::bigint,
              'the fixture has chargeable invoices');

CREATE TEMP TABLE got AS SELECT * FROM outbox.enqueue_due(10000, true);

SELECT set_eq(
    $$SELECT invoice_id FROM got WHERE outcome = 'enqueued'$$,
    $$SELECT id FROM expected WHERE reason IS NULL$$,
    'exactly the invoices charge_problem() passes are enqueued');
SELECT set_eq(
    $$SELECT invoice_id, detail FROM got WHERE outcome = 'unchargeable'$$,
    $$SELECT id, reason FROM expected WHERE reason IS NOT NULL$$,
    'exactly the others are reported, each with charge_problem()''s reason');

-- The plan: many due invoices, fresh statistics, the due selection alone
-- (enqueue_due's CTE, as the migration writes it).
INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source)
VALUES (950001, 'p@example.com', 'cus_p', NULL);
INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
SELECT 960000 + g, 950001, 100, 100, 'usd', now() - interval '1 hour' - g * interval '1 second'
  FROM generate_series(1, 20000) g;
ANALYZE billing.invoices;
ANALYZE billing.customers;

CREATE FUNCTION pg_temp.due_plan() RETURNS SETOF text LANGUAGE plpgsql AS $f$
BEGIN
    RETURN QUERY EXECUTE $q$
    EXPLAIN (COSTS OFF)
        SELECT i.id, i.amount_due_cents, i.currency, c.email
          FROM billing.invoices i
          JOIN billing.customers c ON c.id = i.customer_id
         WHERE i.status = 'open'
           AND i.due_at <= now()
           AND (i.next_attempt_at IS NULL OR i.next_attempt_at <= now())
           AND CASE WHEN outbox.charge_problem(i.amount_due_cents, i.currency, c.id,
                                               c.gateway_customer_id, c.payment_source) IS NULL
                    THEN true ELSE false END
         ORDER BY i.due_at, i.id
         LIMIT 500
           FOR UPDATE OF i SKIP LOCKED$q$;
END
$f$;

SELECT ok(EXISTS (SELECT 1 FROM pg_temp.due_plan() p WHERE p LIKE '%invoices_due_idx%'),
          'the due selection reads invoices_due_idx');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_temp.due_plan() p
                       WHERE p ~ '(Sort|Seq Scan on invoices)'),
          'and neither sorts nor scans every invoice');
SELECT ok(position(
    $$AND CASE WHEN outbox.charge_problem(i.amount_due_cents, i.currency, c.id,$$ IN pg_get_functiondef('outbox.enqueue_due(integer, boolean)'::regprocedure)) > 0,
    'enqueue_due runs the query whose plan was checked');

SELECT * FROM finish();
ROLLBACK;
