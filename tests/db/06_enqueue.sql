-- 06_enqueue: outbox.enqueue_due(batch, report), the charger's one transaction.
--
-- Proves that enqueue_due:
--   * takes only due (due_at <= now()), open, chargeable invoices whose
--     next_attempt_at is NULL or past, oldest due first, at most `batch`;
--   * marks them in_flight and writes, per invoice, one pending charge
--     (amount and currency copied from amount_due_cents and currency, a new
--     unique idempotency key 'cg_<invoice id>_...' of at most 255 characters)
--     and one waiting e-mail whose parent is the charge (none when the
--     customer's e-mail is NULL or empty), each with its creation event, all
--     I6-consistent;
--   * enqueues nothing twice: a second call returns nothing for them;
--   * returns an unchargeable invoice (no gateway_customer_id nor
--     payment_source; amount due 0 or negative; currency 'USD') once, with
--     a reason naming the problem; again only when the reason changes; and
--     once fixed, enqueues it and forgets it in outbox.unchargeable;
--     with p_report = false, reports nothing;
--   * gives a declined invoice, once its next attempt is due, a new charge
--     row with a new key;
--   * refuses a batch of 0, NULL, negative or above 100000 (22023).
--   * treats blank strings (empty or only spaces) as absent: a blank
--     gateway_customer_id is no gateway customer, a blank e-mail no address.
BEGIN;
\ir helpers.psql

-- Customers: A has a gateway customer and an address; B only a payment
-- source and no address; C an empty address; D nothing to charge.
INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source) VALUES
    (900001, 'a@example.com', 'cus_a', NULL),
    (900002, NULL,            NULL,    'src_b'),
    (900003, '',              'cus_c', NULL),
    (900004, 'd@example.com', NULL,    NULL);

-- Unchargeable invoices are the oldest, so a batch that ignored the
-- chargeability rules would pick them first.
INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at, status, next_attempt_at) VALUES
    -- due and chargeable, in due order
    (910001, 900001, 2000, 1500, 'usd', now() - interval '3 days', 'open', NULL),
    (910002, 900002,  700,  700, 'eur', now() - interval '2 days', 'open', now() - interval '1 hour'),
    (910003, 900003,  300,  300, 'usd', now() - interval '1 day',  'open', NULL),
    (910004, 900001,  400,  400, 'usd', now(),                     'open', NULL),
    -- not to be taken
    (910005, 900001,  500,  500, 'usd', now() + interval '1 second', 'open', NULL),
    (910006, 900001,  600,  600, 'usd', now() - interval '9 days', 'open', now() + interval '1 day'),
    (910007, 900001,  700,    0, 'usd', now() - interval '9 days', 'paid', NULL),
    (910008, 900001,  800,  800, 'usd', now() - interval '9 days', 'void', NULL),
    (910009, 900001,  900,  900, 'usd', now() - interval '9 days', 'failed', NULL),
    -- due but unchargeable
    (910010, 900004, 1000, 1000, 'usd', now() - interval '5 days', 'open', NULL),
    (910011, 900001, 1100,    0, 'usd', now() - interval '5 days', 'open', NULL),
    (910012, 900001, 1200, -100, 'usd', now() - interval '5 days', 'open', NULL),
    (910013, 900001, 1300, 1300, 'USD', now() - interval '5 days', 'open', NULL),
    -- unchargeable but not due: not reported
    (910014, 900004, 1400, 1400, 'usd', now() + interval '1 day', 'open', NULL);

SELECT plan(35);

-- 1. First call: batch 2, no report.
CREATE TEMP TABLE run1 AS SELECT * FROM outbox.enqueue_due(2, false);
SELECT results_eq(
    'SELECT invoice_id, amount_cents, currency, outcome, detail FROM run1 ORDER BY invoice_id',
    $$VALUES (910001::bigint, 1500::bigint, 'usd'::text, 'enqueued'::text, NULL::text),
             (910002, 700, 'eur', 'enqueued', NULL)$$,
    'batch 2 enqueues the two oldest due chargeable invoices (amount due and currency), skipping unchargeable older ones');
SELECT is_empty('SELECT * FROM outbox.unchargeable',
    'with p_report = false, no unchargeable invoice is returned or noted');

-- 2. Second call: the rest, and the unchargeable report.
CREATE TEMP TABLE run2 AS SELECT * FROM outbox.enqueue_due(100);
SELECT results_eq(
    'SELECT invoice_id, outcome FROM run2 ORDER BY outcome, invoice_id',
    $$VALUES (910003::bigint, 'enqueued'::text), (910004, 'enqueued'),
             (910010, 'unchargeable'), (910011, 'unchargeable'), (910012, 'unchargeable'), (910013, 'unchargeable')$$,
    'the next call enqueues the remaining due invoices (due_at = now() included) and reports the due unchargeable ones');
SELECT matches((SELECT detail FROM run2 WHERE invoice_id = 910010), 'gateway_customer_id.*payment_source',
    'unchargeable: a customer with neither gateway_customer_id nor payment_source is named as the reason');
SELECT matches((SELECT detail FROM run2 WHERE invoice_id = 910011), '(^|\D)0 cents',
    'unchargeable: an amount due of 0 cents is named as the reason');
SELECT matches((SELECT detail FROM run2 WHERE invoice_id = 910012), '-100 cents',
    'unchargeable: an amount due of -100 cents is named as the reason');
SELECT matches((SELECT detail FROM run2 WHERE invoice_id = 910013), '''USD''',
    'unchargeable: currency ''USD'' is named as the reason');
SELECT is_empty(
    $$SELECT * FROM run2 WHERE outcome = 'unchargeable'
        AND (charge_id IS NOT NULL OR email_id IS NOT NULL OR amount_cents IS NOT NULL OR currency IS NOT NULL)$$,
    'unchargeable rows carry no charge, e-mail, amount or currency');
SELECT results_eq('SELECT invoice_id FROM outbox.unchargeable ORDER BY invoice_id',
    ARRAY[910010, 910011, 910012, 910013]::bigint[],
    'outbox.unchargeable notes exactly the due unchargeable invoices (not the one due tomorrow)');

-- 3. Third call: nothing new.
SELECT is_empty('SELECT * FROM outbox.enqueue_due(100)',
    'a third call enqueues nothing and reports no unchargeable invoice again');

-- 4. What was written for the enqueued invoices.
CREATE TEMP TABLE enq AS
SELECT * FROM run1 UNION ALL SELECT * FROM run2 WHERE outcome = 'enqueued';

SELECT results_eq(
    'SELECT id, status FROM billing.invoices WHERE id BETWEEN 910001 AND 910009 ORDER BY id',
    $$VALUES (910001::bigint, 'in_flight'::text), (910002, 'in_flight'), (910003, 'in_flight'), (910004, 'in_flight'),
             (910005, 'open'), (910006, 'open'), (910007, 'paid'), (910008, 'void'), (910009, 'failed')$$,
    'enqueued invoices are in_flight; not yet due, not yet retryable, paid, void and failed ones are untouched');
SELECT results_eq(
    $$SELECT m.id, m.invoice_id, m.state, m.amount_cents, m.currency, m.attempts, m.parent_id, m.template
        FROM outbox.messages m WHERE m.kind = 'charge' ORDER BY m.invoice_id$$,
    $$SELECT e.charge_id, e.invoice_id, 'pending'::text, i.amount_due_cents, i.currency, 0, NULL::bigint, NULL::text
        FROM enq e JOIN billing.invoices i ON i.id = e.invoice_id ORDER BY e.invoice_id$$,
    'one pending charge per enqueued invoice (the returned charge_id), amount and currency copied from the invoice''s amount due');
SELECT is(
    (SELECT count(*) FROM outbox.messages m JOIN enq e ON e.charge_id = m.id
      WHERE m.idempotency_key LIKE 'cg\_' || m.invoice_id || '\_%' AND char_length(m.idempotency_key) <= 255),
    4::bigint, 'every idempotency key starts with cg_<invoice id>_ and has at most 255 characters');
SELECT is((SELECT count(DISTINCT idempotency_key) FROM outbox.messages WHERE kind = 'charge'), 4::bigint,
    'the four idempotency keys are all different');
SELECT results_eq(
    $$SELECT m.id, m.invoice_id, m.parent_id, m.state, m.template
        FROM outbox.messages m WHERE m.kind = 'email' ORDER BY m.invoice_id$$,
    $$SELECT e.email_id, e.invoice_id, e.charge_id, 'waiting'::text, NULL::text
        FROM enq e WHERE e.invoice_id IN (910001, 910004) ORDER BY e.invoice_id$$,
    'a customer with an address gets one waiting e-mail (the returned email_id) whose parent is the charge');
SELECT is_empty(
    $$SELECT * FROM enq WHERE invoice_id IN (910002, 910003) AND email_id IS NOT NULL$$,
    'no e-mail row for a customer whose address is NULL or empty');
SELECT bag_eq(
    'SELECT message_id, from_state, to_state FROM outbox.events',
    $$SELECT id AS message_id, NULL::text AS from_state, state AS to_state FROM outbox.messages$$,
    'every enqueued row (charge and e-mail) has exactly one event: its creation');
SELECT lives_ok('SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED',
    'what enqueue_due wrote is I6-consistent (every in_flight invoice has one live charge)');

-- 5. A reason that changes is reported again; one that does not is not.
UPDATE billing.invoices SET amount_due_cents = -50 WHERE id = 910012;
UPDATE billing.invoices SET amount_cents = 1111 WHERE id = 910011;  -- amount due unchanged: same reason
CREATE TEMP TABLE run4 AS SELECT * FROM outbox.enqueue_due(100);
SELECT results_eq(
    'SELECT invoice_id, outcome, detail ~ ''-50 cents'' FROM run4',
    $$VALUES (910012::bigint, 'unchargeable'::text, true)$$,
    'an unchargeable invoice whose reason changed (-100 -> -50 cents) is reported again, the others are not');

-- 6. Fixed invoices are enqueued and forgotten by outbox.unchargeable.
UPDATE billing.customers SET payment_source = 'src_d' WHERE id = 900004;
UPDATE billing.invoices SET currency = 'usd' WHERE id = 910013;
CREATE TEMP TABLE run5 AS SELECT * FROM outbox.enqueue_due(100);
SELECT results_eq(
    'SELECT invoice_id, outcome FROM run5 ORDER BY invoice_id',
    $$VALUES (910010::bigint, 'enqueued'::text), (910013, 'enqueued')$$,
    'once fixed (customer given a payment source, currency lower-cased), unchargeable invoices are enqueued');
SELECT results_eq('SELECT invoice_id FROM outbox.unchargeable ORDER BY invoice_id',
    ARRAY[910011, 910012]::bigint[],
    'and their outbox.unchargeable rows are removed; the still unchargeable ones stay');

-- 7. After a decline, a new attempt is a new charge row with a new key.
CREATE TEMP TABLE first_try AS
SELECT id, idempotency_key FROM outbox.messages WHERE invoice_id = 910001 AND kind = 'charge';
SELECT pg_temp.cg_walk((SELECT id FROM first_try), 'declined') IS NOT NULL AS declined \gset
UPDATE billing.invoices SET status = 'open', failed_attempts = 1, next_attempt_at = now() + interval '1 day'
 WHERE id = 910001;
SELECT is_empty('SELECT * FROM outbox.enqueue_due(100)',
    'a declined invoice is not enqueued before its next_attempt_at');
UPDATE billing.invoices SET next_attempt_at = now() - interval '1 minute' WHERE id = 910001;
CREATE TEMP TABLE run7 AS SELECT * FROM outbox.enqueue_due(100);
SELECT results_eq('SELECT invoice_id, outcome FROM run7',
    $$VALUES (910001::bigint, 'enqueued'::text)$$,
    'once next_attempt_at has passed, the declined invoice is enqueued again');
SELECT ok(
    (SELECT m.id <> f.id AND m.idempotency_key <> f.idempotency_key AND m.state = 'pending'
       FROM outbox.messages m, first_try f, run7 r WHERE m.id = r.charge_id),
    'the new attempt is a new charge row with a new idempotency key');
SELECT is((SELECT state FROM outbox.messages WHERE id = (SELECT id FROM first_try)), 'declined',
    'the first charge row stays declined');
SELECT lives_ok('SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED',
    'the retry is I6-consistent too');

-- 8. The batch size is checked.
SELECT throws_ok('SELECT * FROM outbox.enqueue_due(0)', '22023', NULL,
    'batch 0 is refused (22023 invalid_parameter_value)');
SELECT throws_ok('SELECT * FROM outbox.enqueue_due(NULL)', '22023', NULL,
    'batch NULL is refused (22023)');
SELECT throws_ok('SELECT * FROM outbox.enqueue_due(-1)', '22023', NULL,
    'batch -1 is refused (22023)');
SELECT throws_ok('SELECT * FROM outbox.enqueue_due(100001)', '22023', NULL,
    'batch 100001 is refused (22023): at most 100000');
SELECT lives_ok('SELECT * FROM outbox.enqueue_due(100000)', 'batch 100000 is accepted');

-- 9. An empty gateway_customer_id is no more a customer than NULL is.
INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source) VALUES (900005, 'e@example.com', '', NULL);
INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
VALUES (910015, 900005, 1500, 1500, 'usd', now() - interval '1 day');
SELECT results_eq('SELECT invoice_id, outcome FROM outbox.enqueue_due(100)',
    $$VALUES (910015::bigint, 'unchargeable'::text)$$,
    'a customer whose gateway_customer_id is empty and who has no payment_source is unchargeable');

-- 10. Blank is absent: spaces only, for the payment method and the address.
INSERT INTO billing.customers (id, email, gateway_customer_id, payment_source) VALUES
    (900006, 'f@example.com', '   ', ' '),
    (900007, '  ',            'cus_g', NULL);
INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at) VALUES
    (910016, 900006, 1600, 1600, 'usd', now() - interval '1 day'),
    (910017, 900007, 1700, 1700, 'usd', now() - interval '1 day');
CREATE TEMP TABLE blank_run AS SELECT * FROM outbox.enqueue_due(100);
SELECT is((SELECT outcome FROM blank_run WHERE invoice_id = 910016), 'unchargeable',
    'a customer whose gateway_customer_id and payment_source are only spaces is unchargeable');
SELECT is((SELECT outcome FROM blank_run WHERE invoice_id = 910017), 'enqueued',
    'a customer with a gateway id and a blank address is charged');
SELECT is((SELECT count(*) FROM outbox.messages WHERE invoice_id = 910017 AND kind = 'email'), 0::bigint,
    '... but gets no e-mail row: an address of spaces is no address');

SELECT * FROM finish();
ROLLBACK;
