-- 0005: the relay's steps (PROTOCOL.md "The relay's steps"), each one
-- function: one statement, one round trip, readable by DBAs with \sf.
-- The relay's role may execute these and nothing else that writes.
--
-- Results and claims travel as JSON parameters built by cJSON: values are
-- always bound, never spliced into SQL text.

-- Arguments of the relay's functions: refused when nonsensical, like
-- enqueue_due's batch, rather than read as "no limit".
CREATE FUNCTION outbox.check_relay_args(p_limit integer, p_seconds double precision)
RETURNS void LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 10000 THEN
        RAISE EXCEPTION 'limit must be 1..10000, not %', p_limit USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_seconds IS NULL OR NOT p_seconds > 0 OR p_seconds > 31536000 THEN
        RAISE EXCEPTION 'seconds must be > 0 and at most a year, not %', p_seconds
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- Step 1, claim: pending charges due now -> submitting, with attempts + 1,
-- a fresh claim token, lease owner and expiry. Run in autocommit: the claim
-- is durable (synchronous_commit = on) before the relay sends any byte.
CREATE FUNCTION outbox.claim_charges(p_owner text, p_lease_seconds double precision, p_limit integer)
RETURNS TABLE (id bigint, invoice_id bigint, attempts integer, idempotency_key text,
               amount_cents bigint, currency text, customer_id bigint,
               gateway_customer_id text, payment_source text, claim_token uuid,
               lease_expires_at timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT outbox.check_relay_args(p_limit, p_lease_seconds);
    WITH picked AS (
        SELECT m.id FROM outbox.messages m
         WHERE m.kind = 'charge' AND m.state = 'pending' AND m.not_before <= now()
         ORDER BY m.not_before, m.id
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox.messages m
       SET state = 'submitting', attempts = m.attempts + 1, claim_token = gen_random_uuid(),
           lease_owner = p_owner,
           lease_expires_at = now() + make_interval(secs => p_lease_seconds)
      FROM picked, billing.invoices i, billing.customers c
     WHERE m.id = picked.id AND i.id = m.invoice_id AND c.id = i.customer_id
    RETURNING m.id, m.invoice_id, m.attempts, m.idempotency_key, m.amount_cents, m.currency,
              c.id, nullif(btrim(c.gateway_customer_id), ''), nullif(btrim(c.payment_source), ''),
              m.claim_token, m.lease_expires_at
$$;

-- The side effects of charge outcomes, for rows already moved to their
-- terminal state, exactly as PROTOCOL.md's step 3 says: succeeded ->
-- payment, amount due lowered (paid when nothing is left, else open for the
-- remainder), transaction, receipt released; declined / failed ->
-- transaction, the invoice back to open with its next attempt pushed out
-- along p_retry_schedule (seconds; after the last, failed), the notice
-- released. Set-based: one statement per table, whatever the batch size.
-- p_moved: a JSON array of {"id", "outcome", "gateway_ref"}; other outcomes
-- (unknown, pending, dead) have no side effects and are ignored.
CREATE FUNCTION outbox.apply_charge_outcomes(p_moved jsonb, p_retry_schedule double precision[])
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    last_try integer := coalesce(array_length(p_retry_schedule, 1), 0);
    n bigint;
BEGIN
    WITH o AS (
        SELECT x.id, x.outcome, x.gateway_ref, m.invoice_id, m.amount_cents, m.currency
          FROM jsonb_to_recordset(p_moved) AS x(id bigint, outcome text, gateway_ref text)
          JOIN outbox.messages m ON m.id = x.id AND m.kind = 'charge'
         WHERE x.outcome IN ('succeeded', 'declined', 'failed')
    ), payments AS (
        INSERT INTO billing.payments (invoice_id, outbox_id, amount_cents, currency, gateway_charge_id)
        SELECT invoice_id, id, amount_cents, currency, gateway_ref FROM o WHERE outcome = 'succeeded'
    ), invoices AS (
        UPDATE billing.invoices i
           SET amount_due_cents = i.amount_due_cents
                                  - CASE o.outcome WHEN 'succeeded' THEN o.amount_cents ELSE 0 END,
               failed_attempts = i.failed_attempts + CASE o.outcome WHEN 'succeeded' THEN 0 ELSE 1 END,
               status = CASE
                   WHEN o.outcome = 'succeeded' THEN
                       CASE WHEN i.amount_due_cents - o.amount_cents <= 0 THEN 'paid' ELSE 'open' END
                   WHEN i.failed_attempts + 1 > last_try THEN 'failed'
                   ELSE 'open' END,
               next_attempt_at = CASE
                   WHEN o.outcome = 'succeeded' THEN i.next_attempt_at
                   WHEN i.failed_attempts + 1 > last_try THEN NULL
                   ELSE now() + make_interval(secs => p_retry_schedule[i.failed_attempts + 1]) END
          FROM o WHERE i.id = o.invoice_id
    ), transactions AS (
        INSERT INTO billing.transactions (invoice_id, outbox_id, kind, amount_cents, gateway_charge_id)
        SELECT invoice_id, id,
               CASE outcome WHEN 'succeeded' THEN 'charge' WHEN 'declined' THEN 'decline' ELSE 'failure' END,
               amount_cents, gateway_ref
          FROM o
    ), emails AS (
        UPDATE outbox.messages e
           SET state = 'pending', not_before = now(),
               template = CASE o.outcome WHEN 'succeeded' THEN 'receipt'
                                         WHEN 'declined' THEN 'decline_notice' ELSE 'failure_notice' END
          FROM o WHERE e.parent_id = o.id AND e.state = 'waiting'
    )
    SELECT count(*) INTO n FROM o;
END
$$;

-- Step 3, record: a batch of answers in the caller's transaction (group
-- commit). Every row update is guarded by id, claim token and state
-- 'submitting': an entry whose row was lost (lease expired, taken over)
-- records nothing and comes back with recorded = false. The batch is all or
-- nothing: if any entry cannot be recorded (a bug, or data the schema
-- refuses), the statement fails and the relay retries its entries one by
-- one, recording a lone failing entry as unknown with the reason.
-- p_results: a JSON array of
--   {"id", "claim_token", "outcome": succeeded|declined|failed|unknown|pending|dead,
--    "gateway_ref", "error", "retry_after" (seconds, for pending)}.
-- Unknown rows wait p_first_lookup seconds before their first lookup.
CREATE FUNCTION outbox.record_charges(p_results jsonb, p_retry_schedule double precision[],
                                      p_first_lookup double precision)
RETURNS TABLE (id bigint, recorded boolean, note text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    moved jsonb;
    bad text;
BEGIN
    SELECT x.outcome INTO bad FROM jsonb_to_recordset(p_results) AS x(outcome text)
     WHERE x.outcome IS NULL
        OR x.outcome NOT IN ('succeeded', 'declined', 'failed', 'unknown', 'pending', 'dead')
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'record_charges: unknown outcome %', coalesce(bad, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One answer per row: a row named twice would be reported twice.
    IF EXISTS (SELECT 1 FROM jsonb_to_recordset(p_results) AS x(id bigint)
                GROUP BY x.id HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'record_charges: a row appears more than once in one batch'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    WITH r AS (
        SELECT * FROM jsonb_to_recordset(p_results)
            AS x(id bigint, claim_token uuid, outcome text, gateway_ref text, error text,
                 retry_after double precision)
    ), m AS (
        UPDATE outbox.messages m
           SET state = r.outcome,
               gateway_ref = coalesce(r.gateway_ref, m.gateway_ref),
               last_error = r.error,
               not_before = CASE r.outcome
                   WHEN 'pending' THEN now() + make_interval(secs => coalesce(r.retry_after, 1))
                   WHEN 'unknown' THEN now() + make_interval(secs => p_first_lookup)
                   ELSE m.not_before END
          FROM r
         WHERE m.id = r.id AND m.kind = 'charge' AND m.claim_token = r.claim_token
           AND m.state = 'submitting'
        RETURNING m.id, r.outcome, r.gateway_ref
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'outcome', m.outcome,
                                                 'gateway_ref', m.gateway_ref)), '[]'::jsonb)
      INTO moved FROM m;

    PERFORM outbox.apply_charge_outcomes(moved, p_retry_schedule);

    RETURN QUERY
    SELECT r.id, mv.id IS NOT NULL,
           CASE WHEN mv.id IS NULL
                THEN 'claim lost: the row is no longer submitting under this claim token' END
      FROM jsonb_to_recordset(p_results) AS r(id bigint)
      LEFT JOIN jsonb_to_recordset(moved) AS mv(id bigint) ON mv.id = r.id;
END
$$;

-- Step 4, heartbeat: extend the leases of rows still held under these
-- claims and not yet expired; returns the ids still ours (a row missing
-- from the answer was lost: the relay must not send it and records nothing
-- for it; PROTOCOL.md, "Timing and durability rules").
CREATE FUNCTION outbox.extend_leases(p_claims jsonb, p_lease_seconds double precision)
RETURNS TABLE (id bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE outbox.messages m
       SET lease_expires_at = now() + make_interval(secs => p_lease_seconds)
      FROM jsonb_to_recordset(p_claims) AS c(id bigint, claim_token uuid)
     WHERE m.id = c.id AND m.claim_token = c.claim_token AND m.state = 'submitting'
       AND m.lease_expires_at > now()  -- an expired lease is not revived: record nothing
    RETURNING m.id
$$;

-- The janitor: submitting rows whose lease has expired. A charge becomes
-- unknown, never pending: its POST may have left. An email goes back to
-- pending: emails are at-least-once.
CREATE FUNCTION outbox.expire_leases(p_limit integer, p_first_lookup double precision)
RETURNS TABLE (id bigint, kind text, invoice_id bigint, lease_owner text, to_state text)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT outbox.check_relay_args(p_limit, coalesce(p_first_lookup, 0) + 1);
    WITH expired AS (
        SELECT m.id FROM outbox.messages m
         WHERE m.state = 'submitting' AND m.lease_expires_at < now()
         ORDER BY m.lease_expires_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox.messages m
       SET state = CASE m.kind WHEN 'charge' THEN 'unknown' ELSE 'pending' END,
           last_error = format('lease of %s expired at %s%s', m.lease_owner, m.lease_expires_at,
                               CASE m.kind WHEN 'charge' THEN ': the POST may have been sent; look it up'
                                           ELSE ': send again' END),
           not_before = CASE m.kind WHEN 'charge' THEN now() + make_interval(secs => p_first_lookup)
                                    ELSE now() END
      FROM expired
     WHERE m.id = expired.id
    RETURNING m.id, m.kind, m.invoice_id, m.lease_owner, m.state
$$;

-- Emails: claim released (pending) notifications due now, with what the
-- message needs: recipient, template, the charge's amount and reference.
CREATE FUNCTION outbox.claim_emails(p_owner text, p_lease_seconds double precision, p_limit integer)
RETURNS TABLE (id bigint, invoice_id bigint, attempts integer, template text, recipient text,
               amount_cents bigint, currency text, gateway_ref text, claim_token uuid)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT outbox.check_relay_args(p_limit, p_lease_seconds);
    WITH picked AS (
        SELECT m.id FROM outbox.messages m
         WHERE m.kind = 'email' AND m.state = 'pending' AND m.not_before <= now()
         ORDER BY m.not_before, m.id
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox.messages m
       SET state = 'submitting', attempts = m.attempts + 1, claim_token = gen_random_uuid(),
           lease_owner = p_owner,
           lease_expires_at = now() + make_interval(secs => p_lease_seconds)
      FROM picked, outbox.messages ch, billing.invoices i, billing.customers c
     WHERE m.id = picked.id AND ch.id = m.parent_id AND i.id = m.invoice_id AND c.id = i.customer_id
    RETURNING m.id, m.invoice_id, m.attempts, m.template, btrim(c.email), ch.amount_cents,
              ch.currency, ch.gateway_ref, m.claim_token
$$;

-- Email outcomes: {"id", "claim_token", "outcome": sent|retry|dead, "error",
-- "retry_after"}; guarded by the claim token like charges. A row named
-- twice, or an unknown outcome, refuses the batch.
CREATE FUNCTION outbox.record_emails(p_results jsonb)
RETURNS TABLE (id bigint, recorded boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    IF EXISTS (SELECT 1 FROM jsonb_to_recordset(p_results) AS x(outcome text)
                WHERE x.outcome IS NULL OR x.outcome NOT IN ('sent', 'retry', 'dead'))
       OR EXISTS (SELECT 1 FROM jsonb_to_recordset(p_results) AS x(id bigint)
                   GROUP BY x.id HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'record_emails: an unknown outcome, or a row named twice'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH r AS (
        SELECT * FROM jsonb_to_recordset(p_results)
            AS x(id bigint, claim_token uuid, outcome text, error text, retry_after double precision)
    ), moved AS (
        UPDATE outbox.messages m
           SET state = CASE r.outcome WHEN 'sent' THEN 'sent' WHEN 'dead' THEN 'dead' ELSE 'pending' END,
               last_error = CASE r.outcome WHEN 'dead' THEN coalesce(r.error, 'dead (no reason given)')
                                           ELSE r.error END,
               not_before = CASE r.outcome WHEN 'retry'
                                 THEN now() + make_interval(secs => coalesce(r.retry_after, 60))
                                 ELSE m.not_before END
          FROM r
         WHERE m.id = r.id AND m.kind = 'email' AND m.claim_token = r.claim_token
           AND m.state = 'submitting'
        RETURNING m.id
    )
    SELECT r.id, EXISTS (SELECT 1 FROM moved WHERE moved.id = r.id) FROM r;
END
$$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA billing, outbox FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    outbox.claim_charges(text, double precision, integer),
    outbox.record_charges(jsonb, double precision[], double precision),
    outbox.extend_leases(jsonb, double precision),
    outbox.expire_leases(integer, double precision),
    outbox.claim_emails(text, double precision, integer),
    outbox.record_emails(jsonb)
TO outbox_relay;
