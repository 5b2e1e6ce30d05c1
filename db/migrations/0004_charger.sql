-- 0004: the charger's one transaction per batch, as a function DBAs can read.

-- Invoices that are due but cannot be charged, each reported once (again
-- only if the reason changes). Cleared when the invoice is enqueued.
CREATE TABLE outbox.unchargeable (
    invoice_id bigint PRIMARY KEY REFERENCES billing.invoices (id),
    reason     text NOT NULL,
    noted_at   timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON outbox.unchargeable TO outbox_reader;

-- Why an invoice cannot be charged, or NULL when it can: the one rule both
-- the enqueue and the unchargeable report use. Blank strings count as absent.
CREATE FUNCTION outbox.charge_problem(p_amount_due bigint, p_currency text, p_customer bigint,
                                      p_gateway_customer text, p_payment_source text)
RETURNS text LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN nullif(btrim(p_gateway_customer), '') IS NULL
         AND nullif(btrim(p_payment_source), '') IS NULL THEN
            format('customer %s has neither gateway_customer_id nor payment_source', p_customer)
        WHEN p_amount_due <= 0 THEN
            format('amount due is %s cents; nothing to charge', p_amount_due)
        WHEN p_currency !~ '^[a-z]{3}$' THEN
            format('currency %L is not a lower-case three-letter ISO 4217 code', p_currency)
    END
$$;

-- One batch: lock up to p_batch due, chargeable, open invoices (skipping
-- rows another charger holds), mark them in_flight, write one charge row
-- (new idempotency key) and one notification row each, note newly found
-- unchargeable invoices when p_report is set, and NOTIFY the relay. It all
-- commits or rolls back with the caller's transaction; the NOTIFY is
-- delivered only at commit.
--
-- Returns one row per enqueued invoice (outcome 'enqueued') and per newly
-- noted unchargeable invoice (outcome 'unchargeable', detail = why).
CREATE FUNCTION outbox.enqueue_due(p_batch integer, p_report boolean DEFAULT true)
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
           AND outbox.charge_problem(i.amount_due_cents, i.currency, c.id,
                                     c.gateway_customer_id, c.payment_source) IS NULL
         ORDER BY i.due_at, i.id
         LIMIT p_batch
           FOR UPDATE OF i SKIP LOCKED
    ), marked AS (
        UPDATE billing.invoices i SET status = 'in_flight'
          FROM due WHERE i.id = due.id
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

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA billing, outbox FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outbox.enqueue_due(integer, boolean) TO outbox_charger;
