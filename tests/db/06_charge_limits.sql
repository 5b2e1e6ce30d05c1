-- 06_charge_limits: outbox.charge_problem() as 0010_charge_limits.sql left it.
--
-- Proves that an invoice is unchargeable, with a reason naming the problem,
-- when its amount due is above 99,999,999, its currency is no ISO 4217
-- currency (though well-formed), or its customer's gateway_customer_id or
-- payment_source is longer than the 127 bytes the relay carries; that the
-- limits themselves pass (99,999,999; 127 bytes, multi-byte characters
-- counted in bytes); and that enqueue_due leaves such invoices open and
-- unsent, reported in outbox.unchargeable.
BEGIN;

SELECT plan(14);

CREATE TEMP TABLE cases (name text, amount bigint, currency text, customer text, source text);
INSERT INTO cases VALUES
    ('largest amount',         99999999, 'usd', 'cus_1', NULL),
    ('amount 10^8',           100000000, 'usd', 'cus_1', NULL),
    ('amount 2^63-1', 9223372036854775807, 'usd', 'cus_1', NULL),
    ('euro',                       1000, 'eur', 'cus_1', NULL),
    ('yen',                        1000, 'jpy', 'cus_1', NULL),
    ('xyz',                        1000, 'xyz', 'cus_1', NULL),
    ('gold',                       1000, 'xau', 'cus_1', NULL),
    ('id of 127 bytes',            1000, 'usd', repeat('c', 127), NULL),
    ('id of 128 bytes',            1000, 'usd', repeat('c', 128), NULL),
    ('id of 64 two-byte chars',    1000, 'usd', repeat('é', 64), NULL),
    ('source of 128 bytes',        1000, 'usd', NULL, repeat('s', 128));
CREATE TEMP VIEW problems AS
SELECT name, outbox.charge_problem(amount, currency, 7, customer, source) AS why FROM cases;

SELECT is((SELECT why FROM problems WHERE name = 'largest amount'), NULL, 'an amount of 99,999,999 may be charged');
SELECT matches((SELECT why FROM problems WHERE name = 'amount 10^8'), '100000000 cents, above the 99999999',
    'an amount of 100,000,000 is refused, naming the amount and the limit');
SELECT matches((SELECT why FROM problems WHERE name = 'amount 2^63-1'), '9223372036854775807 cents',
    'the largest bigint is refused');
SELECT is((SELECT why FROM problems WHERE name = 'euro'), NULL, 'eur may be charged');
SELECT is((SELECT why FROM problems WHERE name = 'yen'), NULL, 'jpy may be charged');
SELECT matches((SELECT why FROM problems WHERE name = 'xyz'), '''xyz'' is not an ISO 4217 currency',
    'a well-formed code that is no currency is refused, naming it');
SELECT matches((SELECT why FROM problems WHERE name = 'gold'), '''xau''', 'gold (xau) is no card currency');
SELECT is((SELECT why FROM problems WHERE name = 'id of 127 bytes'), NULL, 'a gateway_customer_id of 127 bytes passes');
SELECT matches((SELECT why FROM problems WHERE name = 'id of 128 bytes'), 'gateway_customer_id is 128 bytes',
    'a gateway_customer_id of 128 bytes is refused');
SELECT matches((SELECT why FROM problems WHERE name = 'id of 64 two-byte chars'), 'gateway_customer_id is 128 bytes',
    'length counts bytes: 64 two-byte characters are 128 bytes');
SELECT matches((SELECT why FROM problems WHERE name = 'source of 128 bytes'), 'payment_source is 128 bytes',
    'a payment_source of 128 bytes is refused');

-- enqueue_due: refused invoices stay open, unsent, reported once.
INSERT INTO billing.customers (id, email, gateway_customer_id) VALUES
    (900001, 'a@example.com', 'cus_a'), (900002, 'b@example.com', repeat('c', 200));
INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at) VALUES
    (910001, 900001, 100000000, 100000000, 'usd', now() - interval '1 day'),
    (910002, 900001, 1000, 1000, 'xyz', now() - interval '1 day'),
    (910003, 900002, 1000, 1000, 'usd', now() - interval '1 day'),
    (910004, 900001, 1000, 1000, 'usd', now() - interval '1 day');
SELECT results_eq('SELECT invoice_id, outcome FROM outbox.enqueue_due(100) ORDER BY invoice_id',
    $$VALUES (910001::bigint, 'unchargeable'::text), (910002, 'unchargeable'), (910003, 'unchargeable'),
             (910004, 'enqueued')$$,
    'enqueue_due enqueues the good invoice and reports the three refused ones');
SELECT results_eq('SELECT invoice_id FROM outbox.unchargeable ORDER BY invoice_id',
    ARRAY[910001, 910002, 910003]::bigint[], 'outbox.unchargeable holds the three, with their reasons');
SELECT is((SELECT count(*) FROM outbox.messages WHERE invoice_id IN (910001, 910002, 910003)), 0::bigint,
    'no outbox row for a refused invoice');

SELECT * FROM finish();
ROLLBACK;
