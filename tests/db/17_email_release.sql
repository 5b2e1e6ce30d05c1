-- 17_email_release: migration 0015 releases a recorded charge's email by
-- index probes on parent_id.
--
-- Proves that:
--   * each charge of a recorded batch releases exactly its own waiting
--     email, with the template of its outcome (receipt, decline_notice,
--     failure_notice); an email of a charge outside the batch stays waiting;
--   * with statistics that say the outbox has no emails (analyzed after
--     charges only), the release statement as apply_charge_outcomes writes
--     it is planned as a probe of messages_parent_idx by the batch's ids,
--     not as a join that scans every email (which 0005's UPDATE ... FROM
--     became in such a session: every record read the whole index).
BEGIN;
\ir helpers.psql

SELECT plan(4);

INSERT INTO billing.customers (id, email, gateway_customer_id)
SELECT 990000 + g, 'r@example.com', 'cus_r' FROM generate_series(1, 4) g;
INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
SELECT 991000 + g, 990000 + g, 700, 700, 'usd', now() - interval '1 hour'
  FROM generate_series(1, 4) g;
CREATE TEMP TABLE q AS SELECT * FROM outbox.enqueue_due(4, false);

-- the first three charges get an outcome each (the fourth stays out)
UPDATE outbox.messages SET state = 'submitting', claim_token = gen_random_uuid(),
       lease_owner = 'test', lease_expires_at = now() + interval '1 minute', attempts = 1
 WHERE id IN (SELECT charge_id FROM q);
CREATE TEMP TABLE outcome (invoice_id bigint, outcome text);
INSERT INTO outcome VALUES (991001, 'succeeded'), (991002, 'declined'), (991003, 'failed');
UPDATE outbox.messages m SET state = o.outcome, gateway_ref = 'ch_' || m.invoice_id
  FROM outcome o WHERE m.invoice_id = o.invoice_id AND m.kind = 'charge';
SELECT outbox.apply_charge_outcomes(
    (SELECT jsonb_agg(jsonb_build_object('id', q.charge_id, 'outcome', o.outcome,
                                         'gateway_ref', 'ch_' || q.invoice_id))
       FROM q JOIN outcome o USING (invoice_id)),
    '{60}');

SELECT set_eq(
    $$SELECT m.invoice_id, m.state, m.template FROM outbox.messages m
       WHERE m.kind = 'email' AND m.invoice_id BETWEEN 991001 AND 991004$$,
    $$VALUES (991001::bigint, 'pending', 'receipt'), (991002, 'pending', 'decline_notice'),
             (991003, 'pending', 'failure_notice'), (991004, 'waiting', NULL)$$,
    'each recorded charge releases its own email with its outcome''s template; the other stays waiting');

-- The plan, with statistics that know of no email: many charges, analyzed.
INSERT INTO billing.customers (id, email, gateway_customer_id) VALUES (992000, NULL, 'cus_s');
INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
SELECT 993000 + g, 992000, 100, 100, 'usd', now() - interval '1 hour' FROM generate_series(1, 3000) g;
SELECT count(*) FROM outbox.enqueue_due(3000, false);
ANALYZE outbox.messages;

CREATE FUNCTION pg_temp.release_plan() RETURNS SETOF text LANGUAGE plpgsql AS $f$
BEGIN
    RETURN QUERY EXECUTE $q$
    EXPLAIN (COSTS OFF)
    WITH o AS (
        SELECT x.id, x.outcome FROM jsonb_to_recordset('[{"id": 1, "outcome": "succeeded"}]')
            AS x(id bigint, outcome text)
    ), emails AS (
        UPDATE outbox.messages e
           SET state = 'pending', not_before = now(),
               template = CASE (SELECT jsonb_object_agg(o.id::text, o.outcome) FROM o)
                                   ->> e.parent_id::text
                              WHEN 'succeeded' THEN 'receipt'
                              WHEN 'declined' THEN 'decline_notice' ELSE 'failure_notice' END
         WHERE e.parent_id = ANY (ARRAY(SELECT o.id FROM o)) AND e.state = 'waiting'
    )
    SELECT count(*) FROM o$q$;
END
$f$;

SELECT ok(EXISTS (SELECT 1 FROM pg_temp.release_plan() p
                   WHERE p ~ 'Cond: \(parent_id = ANY'),
          'the release probes messages_parent_idx with the batch''s ids');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_temp.release_plan() p WHERE p ~ '(Nested Loop|Hash Join|Merge Join)'),
          'and joins nothing to the batch');
SELECT ok(position(
    $$WHERE e.parent_id = ANY (ARRAY(SELECT o.id FROM o)) AND e.state = 'waiting'$$
    IN pg_get_functiondef('outbox.apply_charge_outcomes(jsonb, double precision[])'::regprocedure)) > 0,
    'apply_charge_outcomes runs the statement whose plan was checked');

SELECT * FROM finish();
ROLLBACK;
