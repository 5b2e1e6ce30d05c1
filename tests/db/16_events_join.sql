-- 16_events_join: migration 0014 plans events_for_updates() without
-- nested loops, so a session whose first updates moved one row does not
-- keep a loop that compares n x n rows of the transition tables.
--
-- Proves that:
--   * the function runs with enable_nestloop off (and its pinned search_path);
--   * in one session, after single-row updates have planned it, a
--     multi-row update still writes exactly one event per changed row,
--     each with the right from/to states.
BEGIN;
\ir helpers.psql

SELECT plan(3);

SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'outbox.events_for_updates()'::regprocedure),
          ARRAY['search_path=pg_catalog, pg_temp', 'enable_nestloop=off'],
          'events_for_updates runs without nested loops, search_path pinned');

INSERT INTO billing.customers (id, email, gateway_customer_id)
SELECT 970000 + g, 'j@example.com', 'cus_j' FROM generate_series(1, 10) g;
INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at)
SELECT 980000 + g, 970000 + 1 + g % 10, 500, 500, 'usd', now() - interval '1 hour'
  FROM generate_series(1, 50) g;
CREATE TEMP TABLE q AS SELECT * FROM outbox.enqueue_due(50, false);

-- six one-row moves plan the trigger's query with one row each side
SELECT outbox.cancel(charge_id, 'plan with one row')
  FROM (SELECT charge_id FROM q ORDER BY charge_id LIMIT 6) s;

CREATE TEMP TABLE before_move AS SELECT max(id) AS last_event FROM outbox.events;
UPDATE outbox.messages SET state = 'submitting', claim_token = gen_random_uuid(),
       lease_owner = 'test', lease_expires_at = now() + interval '1 minute', attempts = 1
 WHERE id IN (SELECT charge_id FROM q) AND state = 'pending';

SELECT is((SELECT count(*) FROM outbox.events e, before_move b
            WHERE e.id > b.last_event AND e.from_state = 'pending' AND e.to_state = 'submitting'),
          44::bigint, 'a 44-row update after them writes 44 events, pending -> submitting');
SELECT is((SELECT count(*) FROM outbox.events e, before_move b WHERE e.id > b.last_event),
          44::bigint, 'and no other event');

SELECT * FROM finish();
ROLLBACK;
