-- 0011: the enqueue's due selection reads the due index in order and stops
-- at the batch size.
--
-- Before, each batch tested every due open invoice with charge_problem()
-- behind a full scan and sort: for "f(...) IS NULL" the planner guesses that
-- 0.5% of rows pass, so it expected too few rows to stop early and chose to
-- sort them all, calling the function once per due invoice. A run of N
-- invoices in batches of B cost N*N/B calls (docs/performance.md).
--
-- The test is the same function, the one rule (charge_problem() also gives
-- the reason outbox.unchargeable reports), inside a CASE: for that the
-- planner guesses half the rows pass, so it reads invoices_due_idx in order
-- and stops at the batch size. tests/db/13_fast_enqueue checks the plan and
-- that exactly the invoices charge_problem() passes are enqueued. Likewise
-- the invoices are marked in_flight by primary key: the join it replaces
-- was planned as a hash of every invoice, once per batch.

CREATE OR REPLACE FUNCTION outbox.enqueue_due(p_batch integer, p_report boolean DEFAULT true)
RETURNS TABLE (invoice_id bigint, charge_id bigint, email_id bigint,
               amount_cents bigint, currency text, outcome text, detail text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    IF p_batch IS NULL OR p_batch < 1 OR p_batch > 100000 THEN
        RAISE EXCEPTION 'enqueue_due: batch must be 1..100000, not %', p_batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    RETURN QUERY
    WITH due AS (
        SELECT i.id, i.amount_due_cents, i.currency, c.email
          FROM billing.invoices i
          JOIN billing.customers c ON c.id = i.customer_id
         WHERE i.status = 'open'
           AND i.due_at <= now()
           AND (i.next_attempt_at IS NULL OR i.next_attempt_at <= now())
           -- charge_problem(...) IS NULL, inside a CASE (see the header)
           AND CASE WHEN outbox.charge_problem(i.amount_due_cents, i.currency, c.id,
                                               c.gateway_customer_id, c.payment_source) IS NULL
                    THEN true ELSE false END
         ORDER BY i.due_at, i.id
         LIMIT p_batch
           FOR UPDATE OF i SKIP LOCKED
    ), marked AS (
        -- by primary key, one probe per invoice (a join here was planned
        -- as a hash of the whole invoices table, once per batch)
        UPDATE billing.invoices i SET status = 'in_flight'
         WHERE i.id = ANY (ARRAY(SELECT due.id FROM due))
        RETURNING i.id
    ), charges AS (
        INSERT INTO outbox.messages (kind, invoice_id, idempotency_key, state, amount_cents, currency)
        SELECT 'charge', d.id,
               'cg_' || d.id || '_' || replace(gen_random_uuid()::text, '-', ''),
               'pending', d.amount_due_cents, d.currency
          FROM due d JOIN marked m ON m.id = d.id
        RETURNING id, invoice_id
    ), emails AS (
        INSERT INTO outbox.messages (kind, invoice_id, parent_id, state)
        SELECT 'email', ch.invoice_id, ch.id, 'waiting'
          FROM charges ch JOIN due d ON d.id = ch.invoice_id
         WHERE nullif(btrim(d.email), '') IS NOT NULL
        RETURNING id, parent_id
    ), cleared AS (
        DELETE FROM outbox.unchargeable u USING charges ch WHERE u.invoice_id = ch.invoice_id
    )
    SELECT ch.invoice_id, ch.id, e.id, d.amount_due_cents, d.currency, 'enqueued'::text, NULL::text
      FROM charges ch
      JOIN due d ON d.id = ch.invoice_id
      LEFT JOIN emails e ON e.parent_id = ch.id
     ORDER BY ch.invoice_id;

    IF FOUND THEN
        PERFORM pg_notify('outbox_pending', 'charge');
    END IF;

    IF p_report THEN
        RETURN QUERY
        WITH due_now AS (
            SELECT i.id,
                   outbox.charge_problem(i.amount_due_cents, i.currency, c.id,
                                         c.gateway_customer_id, c.payment_source) AS reason
              FROM billing.invoices i
              JOIN billing.customers c ON c.id = i.customer_id
             WHERE i.status = 'open'
               AND i.due_at <= now()
               AND (i.next_attempt_at IS NULL OR i.next_attempt_at <= now())
        ), noted AS (
            INSERT INTO outbox.unchargeable AS u (invoice_id, reason)
            SELECT id, reason FROM due_now WHERE reason IS NOT NULL
            ON CONFLICT (invoice_id) DO UPDATE
               SET reason = EXCLUDED.reason, noted_at = now()
             WHERE u.reason IS DISTINCT FROM EXCLUDED.reason
            RETURNING u.invoice_id, u.reason
        )
        SELECT n.invoice_id, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text,
               'unchargeable'::text, n.reason
          FROM noted n ORDER BY n.invoice_id;
    END IF;
END
$$;
