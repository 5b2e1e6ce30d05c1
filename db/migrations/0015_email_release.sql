-- 0015: the record step releases a charge's email by index probes on
-- parent_id, never by scanning every email.
--
-- apply_charge_outcomes() released the emails with UPDATE ... FROM o WHERE
-- e.parent_id = o.id. Its plan is made once per session; where the
-- statistics say the outbox has (almost) no emails (analyzed before a run,
-- or, in make bench's BENCH_SCALE run, after a pre-fill of settled charges
-- without emails), the planner put a full scan of messages_parent_idx
-- outside and the batch inside: every record read every email in the table
-- and formed a whole-row copy of each batch row for each (perf of the
-- relay's backend with 1 million settled rows: 95% of its CPU in that
-- statement's ExecutorFinish, 53% in ExecEvalWholeRowVar). Now the emails
-- are found with parent_id = ANY (the batch's charge ids), which leaves the
-- planner nothing but index probes (or a bitmap of them), whatever it
-- believes about the table; the outcome of each comes from a map built once
-- per statement. What is written is unchanged (tests/db/07_relay,
-- 17_email_release).

CREATE OR REPLACE FUNCTION outbox.apply_charge_outcomes(p_moved jsonb, p_retry_schedule double precision[])
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
        -- by index probes on parent_id (see the header): the outcomes as
        -- one id -> outcome map, computed once
        UPDATE outbox.messages e
           SET state = 'pending', not_before = now(),
               template = CASE (SELECT jsonb_object_agg(o.id::text, o.outcome) FROM o)
                                   ->> e.parent_id::text
                              WHEN 'succeeded' THEN 'receipt'
                              WHEN 'declined' THEN 'decline_notice' ELSE 'failure_notice' END
         WHERE e.parent_id = ANY (ARRAY(SELECT o.id FROM o)) AND e.state = 'waiting'
    )
    SELECT count(*) INTO n FROM o;
END
$$;
