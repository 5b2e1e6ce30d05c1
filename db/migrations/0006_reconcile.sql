-- 0006: step 5, reconciliation (PROTOCOL.md "Looking a charge up").
--
-- An unknown row is never POSTed again: it is looked up with the gateway's
-- read API. A lookup that finds the charge records it exactly as a direct
-- answer would; one that finds nothing proves absence only once the settle
-- window has passed since the last moment the POST could have been sent
-- (the row's final lease expiry), and then the row is failed (not charged);
-- inconclusive lookups back off along the reconcile schedule, and when it
-- runs out the row is dead, with its reason, for a person.

ALTER TABLE outbox.messages
    ADD COLUMN failed_lookups integer NOT NULL DEFAULT 0 CHECK (failed_lookups >= 0);
COMMENT ON COLUMN outbox.messages.failed_lookups IS
    'inconclusive lookups of an unknown charge so far; the reconcile schedule is indexed by it';

-- A lookup (or an operator's replay) leaves an unknown row unknown: legal,
-- and written to the events when it is an operator's doing.
INSERT INTO outbox.transitions (kind, from_state, to_state, meaning) VALUES
 ('charge', 'unknown', 'unknown', 'looked up again (inconclusive, or an operator''s replay)');

-- Claim unknown rows due for a lookup: a fresh claim token fences the
-- recording of the answer; not_before is pushed out by p_hold_seconds so no
-- other relay looks the row up meanwhile (a lookup is a read: a second one
-- would be harmless, only wasteful). The row stays unknown throughout.
CREATE FUNCTION outbox.claim_lookups(p_owner text, p_hold_seconds double precision, p_limit integer)
RETURNS TABLE (id bigint, invoice_id bigint, attempts integer, idempotency_key text,
               amount_cents bigint, currency text, customer_id bigint,
               gateway_customer_id text, payment_source text, claim_token uuid,
               created_epoch bigint, failed_lookups integer)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT outbox.check_relay_args(p_limit, p_hold_seconds);
    WITH picked AS (
        SELECT m.id FROM outbox.messages m
         WHERE m.kind = 'charge' AND m.state = 'unknown' AND m.not_before <= now()
         ORDER BY m.not_before, m.id
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox.messages m
       SET claim_token = gen_random_uuid(), lease_owner = p_owner,
           not_before = now() + make_interval(secs => p_hold_seconds)
      FROM picked, billing.invoices i, billing.customers c
     WHERE m.id = picked.id AND i.id = m.invoice_id AND c.id = i.customer_id
    RETURNING m.id, m.invoice_id, m.attempts, m.idempotency_key, m.amount_cents, m.currency,
              c.id, nullif(btrim(c.gateway_customer_id), ''), nullif(btrim(c.payment_source), ''),
              m.claim_token, extract(epoch FROM m.created_at)::bigint, m.failed_lookups
$$;

-- Record what lookups found. p_results: a JSON array of
--   {"id", "claim_token", "found": succeeded|declined|absent|inconclusive,
--    "gateway_ref", "error"}
-- guarded by id, claim token and state 'unknown'. The database decides
-- what "absent" proves, on its own clock: failed once now() is past the
-- row's last lease expiry + p_settle_seconds (no send can still be under
-- way: the relay sends only while it holds the lease), otherwise the row
-- waits for that moment. An inconclusive lookup waits
-- p_reconcile_schedule[failed_lookups + 2] (the first wait was spent before
-- the first lookup); when the schedule is spent the row is dead.
CREATE FUNCTION outbox.record_lookups(p_results jsonb, p_retry_schedule double precision[],
                                      p_reconcile_schedule double precision[],
                                      p_settle_seconds double precision)
RETURNS TABLE (id bigint, recorded boolean, outcome text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    moved jsonb;
    n_sched integer := coalesce(array_length(p_reconcile_schedule, 1), 0);
BEGIN
    IF EXISTS (SELECT 1 FROM jsonb_to_recordset(p_results) AS x(found text)
                WHERE x.found IS NULL
                   OR x.found NOT IN ('succeeded', 'declined', 'absent', 'inconclusive'))
       OR EXISTS (SELECT 1 FROM jsonb_to_recordset(p_results) AS x(id bigint)
                   GROUP BY x.id HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'record_lookups: an unknown finding, or a row named twice'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_settle_seconds IS NULL OR NOT p_settle_seconds > 0 THEN
        RAISE EXCEPTION 'record_lookups: the settle window must be positive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    WITH r AS (
        SELECT * FROM jsonb_to_recordset(p_results)
            AS x(id bigint, claim_token uuid, found text, gateway_ref text, error text)
    ), cur AS (
        SELECT m.id, r.found, r.gateway_ref, r.error, m.failed_lookups,
               coalesce(m.lease_expires_at, m.updated_at) + make_interval(secs => p_settle_seconds)
                   AS settled_at
          FROM outbox.messages m JOIN r ON r.id = m.id
         WHERE m.kind = 'charge' AND m.state = 'unknown' AND m.claim_token = r.claim_token
    ), decided AS (
        SELECT cur.*,
               CASE
                   WHEN found IN ('succeeded', 'declined') THEN found
                   WHEN found = 'absent' AND now() >= settled_at THEN 'failed'
                   WHEN found = 'absent' THEN 'wait'
                   WHEN failed_lookups + 1 >= n_sched THEN 'dead'
                   ELSE 'again'
               END AS verdict
          FROM cur
    ), m AS (
        UPDATE outbox.messages m
           SET state = CASE d.verdict WHEN 'wait' THEN 'unknown' WHEN 'again' THEN 'unknown'
                                      ELSE d.verdict END,
               gateway_ref = coalesce(d.gateway_ref, m.gateway_ref),
               failed_lookups = m.failed_lookups
                                + CASE WHEN d.verdict IN ('again', 'dead') THEN 1 ELSE 0 END,
               last_error = CASE d.verdict
                   WHEN 'succeeded' THEN NULL
                   WHEN 'declined' THEN 'lookup found a declined charge: ' || coalesce(d.error, d.gateway_ref, '')
                   WHEN 'failed' THEN format('lookup found no charge %s s after the last possible send: not charged',
                                             round(extract(epoch FROM now() - d.settled_at) + p_settle_seconds))
                   WHEN 'wait' THEN format('lookup found no charge yet; absence is proof only from %s', d.settled_at)
                   WHEN 'again' THEN 'lookup inconclusive: ' || coalesce(d.error, 'no reason given')
                   ELSE format('gave up after %s inconclusive lookups; last: %s', d.failed_lookups + 1,
                               coalesce(d.error, 'no reason given'))
               END,
               not_before = CASE d.verdict
                   WHEN 'wait' THEN d.settled_at + interval '1 second'
                   WHEN 'again' THEN now() + make_interval(secs => p_reconcile_schedule[d.failed_lookups + 2])
                   ELSE m.not_before END
          FROM decided d
         WHERE m.id = d.id
        RETURNING m.id, d.verdict AS outcome, d.gateway_ref
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'outcome', m.outcome,
                                                 'gateway_ref', m.gateway_ref)), '[]'::jsonb)
      INTO moved FROM m;

    -- the same side effects as a direct answer (payments, invoice, emails)
    PERFORM outbox.apply_charge_outcomes(moved, p_retry_schedule);

    RETURN QUERY
    SELECT r.id, mv.id IS NOT NULL, mv.outcome
      FROM jsonb_to_recordset(p_results) AS r(id bigint)
      LEFT JOIN jsonb_to_recordset(moved) AS mv(id bigint, outcome text) ON mv.id = r.id;
END
$$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA billing, outbox FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    outbox.claim_lookups(text, double precision, integer),
    outbox.record_lookups(jsonb, double precision[], double precision[], double precision)
TO outbox_relay;
