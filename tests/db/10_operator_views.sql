-- 10_operator_views: the DBA's views outbox.summary and outbox.stuck
-- (0007_operator.sql).
--
-- Proves that:
--   * outbox.summary has one row per (kind, state) present, with the count,
--     the age of the oldest row (now() - min(updated_at), by updated_at,
--     not by id) and that row's id, in the order of the state machine;
--   * outbox.stuck lists exactly the rows needing attention, oldest
--     (updated_at) first, once each: every dead row (charge or email), every
--     unknown charge, submitting rows whose lease ended before now(), pending
--     rows due more than 5 minutes ago, waiting emails whose charge is
--     settled; and not a submitting row whose lease ends now or later, a
--     pending row due 5 minutes ago or less, a waiting email of a live
--     charge, or any settled row;
--   * each stuck row's columns: id, kind, invoice_id, state, attempts,
--     failed_lookups, since (updated_at), age, next_action_at (when the relay
--     acts on its own: the lookup, the lease expiry, the due time; NULL when
--     only a person can act), and the exact why / next_step texts.
-- Rows are back-dated with session_replication_role = replica (no
-- triggers), as the guard trigger sets updated_at to now() on every change.
BEGIN;
\ir helpers.psql

CREATE TEMP TABLE fx (name text PRIMARY KEY, id bigint NOT NULL);

CREATE FUNCTION pg_temp.fx(p_name text)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    i bigint;
BEGIN
    SELECT id INTO STRICT i FROM fx WHERE name = p_name;
    RETURN i;
END
$$;

CREATE FUNCTION pg_temp.inv(p_name text)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT invoice_id FROM outbox.messages WHERE id = pg_temp.fx(p_name)
$$;

CREATE FUNCTION pg_temp.mk(p_name text, p_kind text, p_state text)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO fx VALUES (p_name, pg_temp.cg_message_in(p_kind, p_state)) RETURNING id
$$;

-- Set updated_at of fixture p_name to now() - p_ago, bypassing the trigger.
CREATE FUNCTION pg_temp.backdate(p_name text, p_ago interval)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL session_replication_role = replica;
    UPDATE outbox.messages SET updated_at = now() - p_ago WHERE id = pg_temp.fx(p_name);
    SET LOCAL session_replication_role = origin;
END
$$;

-- One stuck row, as a record to compare.
CREATE FUNCTION pg_temp.stuck_row(p_name text)
RETURNS TABLE (kind text, invoice_id bigint, state text, attempts integer, failed_lookups integer,
               since timestamptz, age interval, next_action_at timestamptz, why text, next_step text)
LANGUAGE sql STABLE AS $$
    SELECT s.kind, s.invoice_id, s.state, s.attempts, s.failed_lookups, s.since, s.age, s.next_action_at,
           s.why, s.next_step
      FROM outbox.stuck s WHERE s.id = pg_temp.fx(p_name)
$$;

SELECT plan(17);

SELECT columns_are('outbox', 'summary', ARRAY['kind', 'state', 'count', 'oldest_age', 'oldest_id', 'archived'],
    'outbox.summary has the columns kind, state, count, oldest_age, oldest_id, archived (0013)');
SELECT columns_are('outbox', 'stuck',
    ARRAY['id', 'kind', 'invoice_id', 'state', 'attempts', 'failed_lookups', 'since', 'age',
          'next_action_at', 'why', 'next_step'],
    'outbox.stuck has the columns id, kind, invoice_id, state, attempts, failed_lookups, since, age, next_action_at, why, next_step');

------------------------------------------------------------------------------
-- 1. summary
------------------------------------------------------------------------------
-- Three pending charges (the oldest by updated_at is the middle id), their
-- waiting emails (one of them older), one succeeded charge.
INSERT INTO fx SELECT 'p' || n, pg_temp.cg_charge(pg_temp.cg_invoice('in_flight')) FROM generate_series(1, 3) n;
INSERT INTO fx SELECT 'w' || n, pg_temp.cg_email(pg_temp.fx('p' || n)) FROM generate_series(1, 3) n;
SELECT pg_temp.mk('ok', 'charge', 'succeeded') \g /dev/null
UPDATE billing.invoices SET status = 'paid', amount_due_cents = 0 WHERE id = pg_temp.inv('ok');
SELECT pg_temp.backdate(n, ago)
  FROM (VALUES ('p1', interval '1 hour'), ('p2', '3 hours'), ('p3', '2 hours'), ('w3', '30 minutes')) v (n, ago)
\g /dev/null

SELECT results_eq('SELECT kind, state, count, oldest_age, oldest_id FROM outbox.summary',
    $$VALUES ('charge'::text, 'pending'::text, 3::bigint, interval '3 hours', pg_temp.fx('p2')),
             ('charge', 'succeeded', 1, interval '0', pg_temp.fx('ok')),
             ('email', 'waiting', 3, interval '30 minutes', pg_temp.fx('w3'))$$,
    'summary: one row per kind and state present, with the count, the age of the oldest row (by updated_at, not id) and its id, in state-machine order');
SELECT is_empty('SELECT * FROM outbox.stuck',
    'stuck is empty when nothing needs attention (pending rows just due, waiting emails of live charges, settled rows)');

------------------------------------------------------------------------------
-- 2. stuck
------------------------------------------------------------------------------
-- One row per situation, back-dated 9 h (oldest) to 1 h (newest).
SELECT pg_temp.mk('dead_charge', 'charge', 'dead'), pg_temp.mk('dead_email', 'email', 'dead'),
       pg_temp.mk('unknown', 'charge', 'unknown'), pg_temp.mk('unknown_late', 'charge', 'unknown'),
       pg_temp.mk('lease_charge', 'charge', 'submitting'), pg_temp.mk('lease_email', 'email', 'submitting'),
       pg_temp.mk('pending_charge', 'charge', 'pending'), pg_temp.mk('pending_email', 'email', 'pending')
\g /dev/null
UPDATE outbox.messages SET failed_lookups = 7, last_error = 'gave up after 7 inconclusive lookups; last: HTTP 500'
 WHERE id = pg_temp.fx('dead_charge');
UPDATE outbox.messages SET last_error = 'SMTP 550: mailbox unavailable' WHERE id = pg_temp.fx('dead_email');
UPDATE outbox.messages SET failed_lookups = 2, not_before = now() + interval '10 minutes',
       last_error = 'lookup inconclusive: HTTP 503'
 WHERE id = pg_temp.fx('unknown');
UPDATE outbox.messages SET not_before = now() - interval '10 minutes', last_error = 'timeout after 30 s: maybe charged'
 WHERE id = pg_temp.fx('unknown_late');
UPDATE outbox.messages SET lease_expires_at = now() - interval '3 minutes' WHERE id = pg_temp.fx('lease_charge');
UPDATE outbox.messages SET lease_expires_at = now() - interval '1 minute' WHERE id = pg_temp.fx('lease_email');
UPDATE outbox.messages SET not_before = now() - interval '10 minutes', last_error = 'HTTP 429: rate limited'
 WHERE id = pg_temp.fx('pending_charge');
UPDATE outbox.messages SET not_before = now() - interval '6 minutes' WHERE id = pg_temp.fx('pending_email');
-- a waiting email whose charge succeeded without releasing it (a bug)
INSERT INTO fx SELECT 'orphan_charge', pg_temp.cg_charge(pg_temp.cg_invoice('in_flight'));
INSERT INTO fx SELECT 'orphan', pg_temp.cg_email(pg_temp.fx('orphan_charge'));
SELECT pg_temp.cg_walk(pg_temp.fx('orphan_charge'), 'succeeded') \g /dev/null
UPDATE billing.invoices SET status = 'paid', amount_due_cents = 0 WHERE id = pg_temp.inv('orphan_charge');

-- Not stuck: a lease ending now or later, pending due 5 minutes ago or
-- less, a waiting email of a live charge, settled rows of every kind.
SELECT pg_temp.mk('lease_now', 'charge', 'submitting'), pg_temp.mk('lease_later', 'email', 'submitting'),
       pg_temp.mk('pending_5min', 'charge', 'pending'), pg_temp.mk('pending_4min', 'email', 'pending'),
       pg_temp.mk('waiting', 'email', 'waiting'), pg_temp.mk('sent', 'email', 'sent'),
       pg_temp.mk('declined', 'charge', 'declined'), pg_temp.mk('failed', 'charge', 'failed'),
       pg_temp.mk('cancelled', 'charge', 'cancelled'), pg_temp.mk('mail_cancelled', 'email', 'cancelled')
\g /dev/null
UPDATE outbox.messages SET lease_expires_at = now() WHERE id = pg_temp.fx('lease_now');
UPDATE outbox.messages SET not_before = now() - interval '5 minutes' WHERE id = pg_temp.fx('pending_5min');
UPDATE outbox.messages SET not_before = now() - interval '4 minutes 59 seconds' WHERE id = pg_temp.fx('pending_4min');

SELECT pg_temp.backdate(n, ago)
  FROM (VALUES ('dead_charge', interval '9 hours'), ('dead_email', '8 hours'), ('unknown', '7 hours'),
               ('unknown_late', '6 hours'), ('lease_charge', '5 hours'), ('lease_email', '4 hours'),
               ('pending_charge', '3 hours'), ('pending_email', '2 hours'), ('orphan', '1 hour'),
               ('lease_now', '10 hours'), ('lease_later', '10 hours'), ('pending_5min', '10 hours'),
               ('pending_4min', '10 hours'), ('waiting', '10 hours'), ('sent', '10 hours'),
               ('declined', '10 hours'), ('failed', '10 hours'), ('cancelled', '10 hours'),
               ('mail_cancelled', '10 hours')) v (n, ago)
\g /dev/null

SELECT results_eq('SELECT id FROM outbox.stuck',
    $$SELECT pg_temp.fx(n) FROM unnest(ARRAY['dead_charge', 'dead_email', 'unknown', 'unknown_late', 'lease_charge',
                                             'lease_email', 'pending_charge', 'pending_email', 'orphan']) n$$,
    'stuck lists exactly the rows needing attention, each once, oldest (updated_at) first: dead charge and email, unknown charges, expired leases, overdue pending rows, a waiting email of a settled charge');

SELECT results_eq($$SELECT * FROM pg_temp.stuck_row('dead_charge')$$,
    format($$VALUES ('charge'::text, %s::bigint, 'dead'::text, 1, 7, now() - interval '9 hours', interval '9 hours',
                     NULL::timestamptz, 'dead: gave up after 7 inconclusive lookups; last: HTTP 500'::text, %L::text)$$,
           pg_temp.inv('dead_charge'),
           format('needs a person: find key %s / metadata[outbox_id]=%s at the gateway, then outbox.resolve(%s, outcome, charge_id, reason); or outbox.replay(%s, reason) to have it looked up again',
                  (SELECT idempotency_key FROM outbox.messages WHERE id = pg_temp.fx('dead_charge')),
                  pg_temp.fx('dead_charge'), pg_temp.fx('dead_charge'), pg_temp.fx('dead_charge'))),
    'stuck, a dead charge: why = its last_error; no next action of the relay; next step: find it at the gateway by key or metadata[outbox_id], then resolve or replay');
SELECT results_eq($$SELECT * FROM pg_temp.stuck_row('dead_email')$$,
    format($$VALUES ('email'::text, %s::bigint, 'dead'::text, 1, 0, now() - interval '8 hours', interval '8 hours',
                     NULL::timestamptz, 'dead: SMTP 550: mailbox unavailable'::text, %L::text)$$,
           pg_temp.inv('dead_email'),
           format('needs a person: fix the cause (address, SMTP), then outbox.replay(%s, reason) to re-send (same Message-ID), or outbox.cancel(%s, reason)',
                  pg_temp.fx('dead_email'), pg_temp.fx('dead_email'))),
    'stuck, a dead email: why = its last_error; next step: fix the cause, then replay or cancel');
SELECT results_eq($$SELECT * FROM pg_temp.stuck_row('unknown')$$,
    format($$VALUES ('charge'::text, %s::bigint, 'unknown'::text, 1, 2, now() - interval '7 hours', interval '7 hours',
                     now() + interval '10 minutes',
                     'maybe charged, outcome unknown (2 inconclusive lookup(s)): lookup inconclusive: HTTP 503'::text, %L::text)$$,
           pg_temp.inv('unknown'),
           format('relay looks it up at %s (never a new POST); with evidence from the gateway: outbox.resolve(%s, ...)',
                  date_trunc('second', now() + interval '10 minutes'), pg_temp.fx('unknown'))),
    'stuck, an unknown charge: maybe charged, with its failed lookups and last error; the relay acts at not_before (the next lookup)');
SELECT results_eq($$SELECT * FROM pg_temp.stuck_row('unknown_late')$$,
    format($$VALUES ('charge'::text, %s::bigint, 'unknown'::text, 1, 0, now() - interval '6 hours', interval '6 hours',
                     now() - interval '10 minutes',
                     'maybe charged, outcome unknown (0 inconclusive lookup(s)): timeout after 30 s: maybe charged'::text, %L::text)$$,
           pg_temp.inv('unknown_late'),
           format('lookup overdue since %s: is a relay running? Never re-POSTed; with evidence from the gateway: outbox.resolve(%s, ...)',
                  date_trunc('second', now() - interval '10 minutes'), pg_temp.fx('unknown_late'))),
    'stuck, an unknown charge whose lookup is more than 5 minutes overdue: asks whether a relay is running');
SELECT results_eq($$SELECT * FROM pg_temp.stuck_row('lease_charge')$$,
    format($$VALUES ('charge'::text, %s::bigint, 'submitting'::text, 1, 0, now() - interval '5 hours', interval '5 hours',
                     now() - interval '3 minutes',
                     'lease of test-relay expired 00:03:00 ago: the relay holding it died or stalled'::text,
                     'a running relay''s janitor makes it unknown, then it is looked up (never re-POSTed); if it stays here, no relay is running: start one'::text)$$,
           pg_temp.inv('lease_charge')),
    'stuck, a submitting charge whose lease expired: names the lease owner; the janitor (due since the expiry) makes it unknown, never pending');
SELECT results_eq($$SELECT * FROM pg_temp.stuck_row('lease_email')$$,
    format($$VALUES ('email'::text, %s::bigint, 'submitting'::text, 1, 0, now() - interval '4 hours', interval '4 hours',
                     now() - interval '1 minute',
                     'lease of test-relay expired 00:01:00 ago: the relay holding it died or stalled'::text,
                     'a running relay''s janitor puts it back to pending: re-sent, same Message-ID; if it stays here, no relay is running: start one'::text)$$,
           pg_temp.inv('lease_email')),
    'stuck, a submitting email whose lease expired: the janitor puts it back to pending');
SELECT results_eq($$SELECT * FROM pg_temp.stuck_row('pending_charge')$$,
    format($$VALUES ('charge'::text, %s::bigint, 'pending'::text, 0, 0, now() - interval '3 hours', interval '3 hours',
                     now() - interval '10 minutes',
                     'due 00:10:00 ago and not claimed: no relay running, or it is stopped or overloaded; last error: HTTP 429: rate limited'::text,
                     %L::text)$$,
           pg_temp.inv('pending_charge'),
           format('check the relay is up and its log ("refuses our API key", "lease lost"); it sends this on its own; outbox.cancel(%s, reason) only if it must not be charged',
                  pg_temp.fx('pending_charge'))),
    'stuck, a pending charge due more than 5 minutes ago: no relay draining the outbox; with its last error');
SELECT results_eq($$SELECT * FROM pg_temp.stuck_row('pending_email')$$,
    format($$VALUES ('email'::text, %s::bigint, 'pending'::text, 0, 0, now() - interval '2 hours', interval '2 hours',
                     now() - interval '6 minutes',
                     'due 00:06:00 ago and not claimed: no relay running, or it is stopped or overloaded'::text, %L::text)$$,
           pg_temp.inv('pending_email'),
           format('check the relay is up (and --smtp-url set) and its log; it sends this on its own; outbox.cancel(%s, reason) if it must not be sent',
                  pg_temp.fx('pending_email'))),
    'stuck, a pending email due more than 5 minutes ago');
SELECT results_eq($$SELECT * FROM pg_temp.stuck_row('orphan')$$,
    format($$VALUES ('email'::text, %s::bigint, 'waiting'::text, 0, 0, now() - interval '1 hour', interval '1 hour',
                     NULL::timestamptz, %L::text, %L::text)$$,
           pg_temp.inv('orphan'),
           format('BUG: its charge %s is succeeded but this email was never released or cancelled', pg_temp.fx('orphan_charge')),
           format('nothing will release it: report a bug; outbox.cancel(%s, reason) closes it unsent', pg_temp.fx('orphan'))),
    'stuck, a waiting email whose charge is settled: a bug, only a person acts');

------------------------------------------------------------------------------
-- 3. After an operator's action
------------------------------------------------------------------------------
CREATE ROLE cg_test_view_operator LOGIN IN ROLE outbox_operator;
SELECT pg_temp.fx('dead_charge') AS dead_charge \gset
SET SESSION AUTHORIZATION cg_test_view_operator;
SELECT outbox.replay(:dead_charge, 'gateway outage over') \g /dev/null
RESET SESSION AUTHORIZATION;
SELECT results_eq(
    $$SELECT state, failed_lookups, age, next_action_at, why FROM outbox.stuck WHERE id = pg_temp.fx('dead_charge')$$,
    $$VALUES ('unknown'::text, 0, interval '0', now(),
              'maybe charged, outcome unknown (0 inconclusive lookup(s)): replayed by cg_test_view_operator: gateway outage over'::text)$$,
    'a replayed dead charge shows as unknown, due for a lookup now, with who replayed it and why');
SELECT is((SELECT count(*)::int FROM outbox.stuck), 9, 'and is still listed once: nine stuck rows');
SELECT is((SELECT sum(count) FROM outbox.summary), (SELECT count(*) FROM outbox.messages)::numeric,
    'summary accounts for every message once');

SELECT * FROM finish();
ROLLBACK;
