-- 11_metrics: outbox.metrics_snapshot() (0008_metrics.sql), the source of
-- the relay's outbox_messages and outbox_oldest_pending_age_seconds.
--
-- Proves that:
--   * it has one row per (kind, state) the state machine allows, zero
--     counts included, and its counts equal a GROUP BY kind, state of
--     outbox.messages;
--   * oldest_due_age is, for pending rows, the age of the oldest one that
--     is due (by not_before), ignores pending rows not yet due (a backoff
--     is no lateness), and is 0 when nothing pending is due and for every
--     other state;
--   * outbox_relay may run it, although it may not read outbox.messages.
BEGIN;
\ir helpers.psql

SELECT plan(9);

-- a few rows in several states
SELECT pg_temp.cg_message_in('charge', s) FROM unnest(ARRAY['pending', 'pending', 'succeeded',
    'declined', 'unknown', 'dead']) s;
SELECT pg_temp.cg_message_in('email', s) FROM unnest(ARRAY['waiting', 'sent', 'sent']) s;

SELECT is((SELECT count(*) FROM outbox.metrics_snapshot()), 14::bigint,
    'one row per allowed (kind, state): 8 charge states, 6 email states');

SELECT set_eq(
    $$SELECT kind, state, count FROM outbox.metrics_snapshot() WHERE count > 0$$,
    $$SELECT kind, state, count(*) FROM outbox.messages GROUP BY kind, state$$,
    'the counts equal a GROUP BY kind, state of outbox.messages');

SELECT is((SELECT count FROM outbox.metrics_snapshot() WHERE kind = 'charge' AND state = 'cancelled'),
    0::bigint, 'a state with no row is there, with count 0');

-- Back-date the due times, bypassing the trigger: one pending charge due an
-- hour ago, the other due in an hour (waiting out a backoff).
SET LOCAL session_replication_role = replica;
UPDATE outbox.messages SET not_before = now() - interval '1 hour'
 WHERE id = (SELECT min(id) FROM outbox.messages WHERE kind = 'charge' AND state = 'pending');
UPDATE outbox.messages SET not_before = now() + interval '1 hour'
 WHERE id = (SELECT max(id) FROM outbox.messages WHERE kind = 'charge' AND state = 'pending');
SET LOCAL session_replication_role = origin;

SELECT is((SELECT round(oldest_due_age) FROM outbox.metrics_snapshot()
            WHERE kind = 'charge' AND state = 'pending'), 3600::double precision,
    'oldest_due_age: the oldest due pending charge became due an hour ago');

SET LOCAL session_replication_role = replica;
UPDATE outbox.messages SET not_before = now() + interval '1 hour'
 WHERE kind = 'charge' AND state = 'pending';
SET LOCAL session_replication_role = origin;
SELECT is((SELECT oldest_due_age FROM outbox.metrics_snapshot()
            WHERE kind = 'charge' AND state = 'pending'), 0::double precision,
    'pending rows that are not due yet do not count as late: 0');

SELECT is((SELECT count(*) FROM outbox.metrics_snapshot() WHERE state <> 'pending' AND oldest_due_age <> 0),
    0::bigint, 'oldest_due_age is 0 for every state but pending');

SET LOCAL ROLE outbox_relay;
SELECT lives_ok('SELECT * FROM outbox.metrics_snapshot()', 'outbox_relay may run it');
SELECT throws_ok('SELECT count(*) FROM outbox.messages', '42501', 'permission denied for table messages',
    'outbox_relay still may not read outbox.messages itself');
RESET ROLE;

SELECT ok((SELECT prosecdef AND proconfig = ARRAY['search_path=pg_catalog, pg_temp'] FROM pg_proc
            WHERE oid = 'outbox.metrics_snapshot()'::regprocedure),
    'SECURITY DEFINER with search_path pinned to pg_catalog, pg_temp');

SELECT * FROM finish();
ROLLBACK;
