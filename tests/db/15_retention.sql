-- 15_retention: outbox.archive_settled moves settled rows to outbox_archive,
-- only those, whole and unchanged, and the guards of 0013 keep every other
-- way out closed.
--
-- Rows get their age by a backdated updated_at (written with
-- session_replication_role = replica, which switches the row guard off for
-- that one UPDATE; nothing else changes). Proves that:
--   * a call moves at most p_limit charges, oldest first, each with its
--     emails, and returns the number of messages moved; a second call after
--     everything is archived returns 0;
--   * only terminal charges (succeeded, declined, failed, cancelled) older
--     than the cutoff move, with emails that are all terminal (sent,
--     cancelled); a charge with a live email stays, the email too; a young
--     settled charge stays; no row in any live state of either kind moves;
--   * archived rows and their events are identical to the live ones before,
--     and no event of a moved row is left in outbox.events;
--   * payments and transactions of an archived charge join to the archive;
--     writing one whose outbox row is not in outbox.messages is refused
--     (23503), as the foreign key it replaces did;
--   * a direct DELETE of a settled message that is not archived is refused
--     (CG011); a DELETE of events is refused (CG008), also with
--     outbox.archiving set by hand when no identical copy is archived;
--   * the archive refuses UPDATE, DELETE and TRUNCATE (CG012);
--   * counts: metrics_snapshot counts a kind and state the same before and
--     after (live + archived); outbox.summary shows the archived ones;
--   * arguments: a limit outside 1..100000 or a NULL cutoff is refused.
-- SKIP LOCKED (never waiting for the relay) is 15_retention_skip_locked.
BEGIN;
\ir helpers.psql

SELECT plan(24);

-- A charge walked to p_charge_state, with (when p_email_state is given) its
-- email walked to that state. Returns the charge.
CREATE FUNCTION pg_temp.family(p_charge_state text, p_email_state text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    ch bigint := pg_temp.cg_charge(pg_temp.cg_invoice('in_flight'));
    em bigint;
BEGIN
    IF p_email_state IS NOT NULL THEN
        em := pg_temp.cg_email(ch);
    END IF;
    PERFORM pg_temp.cg_walk(ch, p_charge_state);
    IF p_email_state IS NOT NULL THEN
        -- a released email carries a template (waiting needs none)
        PERFORM pg_temp.cg_walk(em, p_email_state);
    END IF;
    RETURN ch;
END
$$;

-- name: what the fixture is; moves: whether archive_settled must move it.
CREATE TEMP TABLE fx (name text, charge bigint, moves boolean, old boolean);
INSERT INTO fx VALUES
    ('succeeded + sent receipt',       pg_temp.family('succeeded', 'sent'),      true,  true),
    ('declined, no email',             pg_temp.family('declined'),               true,  true),
    ('failed + cancelled notice',      pg_temp.family('failed', 'cancelled'),    true,  true),
    ('cancelled + cancelled email',    pg_temp.family('cancelled', 'cancelled'), true,  true),
    ('succeeded + waiting email',      pg_temp.family('succeeded', 'waiting'),   false, true),
    ('succeeded + pending email',      pg_temp.family('succeeded', 'pending'),   false, true),
    ('succeeded + submitting email',   pg_temp.family('succeeded', 'submitting'), false, true),
    ('succeeded + dead email',         pg_temp.family('succeeded', 'dead'),      false, true),
    ('pending charge',                 pg_temp.family('pending', 'waiting'),     false, true),
    ('submitting charge',              pg_temp.family('submitting', 'waiting'),  false, true),
    ('unknown charge',                 pg_temp.family('unknown', 'waiting'),     false, true),
    ('dead charge',                    pg_temp.family('dead', 'waiting'),        false, true),
    ('young succeeded + sent receipt', pg_temp.family('succeeded', 'sent'),      false, false);

-- The succeeded charge that moves has its payment and transaction.
INSERT INTO billing.payments (invoice_id, outbox_id, amount_cents, currency, gateway_charge_id)
SELECT invoice_id, id, amount_cents, currency, gateway_ref FROM outbox.messages
 WHERE id = (SELECT charge FROM fx WHERE name = 'succeeded + sent receipt');
INSERT INTO billing.transactions (invoice_id, outbox_id, kind, amount_cents, gateway_charge_id)
SELECT invoice_id, id, 'charge', amount_cents, gateway_ref FROM outbox.messages
 WHERE id = (SELECT charge FROM fx WHERE name = 'succeeded + sent receipt');

-- Age: old rows last changed two days ago.
SET session_replication_role = replica;
UPDATE outbox.messages m SET updated_at = now() - interval '2 days'
  FROM fx WHERE fx.old AND (m.id = fx.charge OR m.parent_id = fx.charge);
SET session_replication_role = origin;

CREATE TEMP TABLE rows_before AS
SELECT fx.name, fx.moves, m.id, to_jsonb(m) AS doc
  FROM fx JOIN outbox.messages m ON m.id = fx.charge OR m.parent_id = fx.charge;
CREATE TEMP TABLE events_before AS
SELECT r.moves, e.id, to_jsonb(e) AS doc FROM rows_before r JOIN outbox.events e ON e.message_id = r.id;
CREATE TEMP TABLE metrics_before AS SELECT * FROM outbox.metrics_snapshot();

-- 1. Batches.
SELECT is(outbox.archive_settled(now() - interval '1 hour', 2), 3,
    'a call with p_limit 2 moves the two oldest settled charges and their emails: 3 messages');
SELECT set_eq('SELECT id FROM outbox_archive.messages',
    $$SELECT r.id FROM rows_before r WHERE r.name IN ('succeeded + sent receipt', 'declined, no email')$$,
    'those are the first two fixtures (oldest first, then by id), each family whole');
SELECT is(outbox.archive_settled(now() - interval '1 hour'), 4,
    'the next call moves the other two settled families: 4 messages');
SELECT is(outbox.archive_settled(now() - interval '1 hour'), 0,
    'a call after everything settled is archived moves nothing and returns 0');

-- 2. What moved and what stayed.
SELECT set_eq('SELECT id FROM outbox_archive.messages', 'SELECT id FROM rows_before WHERE moves',
    'exactly the old terminal charges whose emails are all terminal moved, with those emails');
SELECT set_eq('SELECT id FROM outbox.messages WHERE id IN (SELECT id FROM rows_before)',
    'SELECT id FROM rows_before WHERE NOT moves',
    'everything else is still live: live charges, charges with a live email and those emails, the young settled one');
SELECT is_empty($$SELECT r.name, m.kind, m.state FROM rows_before r JOIN outbox_archive.messages m ON m.id = r.id
                   WHERE m.state NOT IN ('succeeded', 'declined', 'failed', 'cancelled', 'sent')$$,
    'no row in a live state was archived');
SELECT bag_eq('SELECT to_jsonb(a) FROM outbox_archive.messages a', 'SELECT doc FROM rows_before WHERE moves',
    'the archived messages are identical to the live rows they were, every column');
SELECT bag_eq('SELECT to_jsonb(a) FROM outbox_archive.events a', 'SELECT doc FROM events_before WHERE moves',
    'all their events moved, identical (ids, times, actors, details)');
SELECT is_empty($$SELECT e.id FROM outbox.events e JOIN rows_before r ON r.id = e.message_id AND r.moves$$,
    'no event of a moved message is left in outbox.events');
SELECT bag_eq($$SELECT e.id FROM outbox.events e JOIN rows_before r ON r.id = e.message_id$$,
    'SELECT id FROM events_before WHERE NOT moves',
    'the events of rows that stayed are all still in outbox.events');

-- 3. Payments and transactions.
SELECT is((SELECT count(*) FROM billing.payments p JOIN outbox_archive.messages a ON a.id = p.outbox_id
             JOIN billing.transactions t ON t.outbox_id = a.id),
    1::bigint, 'the archived charge''s payment and transaction join to outbox_archive.messages');
SELECT throws_ok(format($$INSERT INTO billing.payments (invoice_id, outbox_id, amount_cents, currency, gateway_charge_id)
                          SELECT invoice_id, id, amount_cents, currency, 'ch_late' FROM outbox_archive.messages
                           WHERE id = %s$$, (SELECT charge FROM fx WHERE name = 'declined, no email')),
    '23503', 'insert or update on table "payments" violates its outbox row check',
    'a new payment must name a row of outbox.messages, as the foreign key required (23503)');
SELECT throws_ok($$INSERT INTO billing.transactions (invoice_id, outbox_id, kind, amount_cents)
                   SELECT id, 987654321, 'failure', 1 FROM billing.invoices LIMIT 1$$,
    '23503', 'insert or update on table "transactions" violates its outbox row check',
    'a new transaction naming no outbox row is refused (23503)');

-- 4. Guards on the way out.
SELECT throws_ok(format('DELETE FROM outbox.messages WHERE id = %s',
                        (SELECT charge FROM fx WHERE name = 'young succeeded + sent receipt')),
    'CG011', NULL, 'a direct DELETE of a settled message that is not archived is refused (CG011)');
SELECT throws_ok(format('DELETE FROM outbox.events WHERE message_id = %s',
                        (SELECT charge FROM fx WHERE name = 'young succeeded + sent receipt')),
    'CG008', 'outbox.events is append-only (DELETE refused)',
    'a direct DELETE of events is refused (CG008)');
SELECT throws_ok(format($$SET LOCAL outbox.archiving = 'on'; DELETE FROM outbox.events WHERE message_id = %s$$,
                        (SELECT charge FROM fx WHERE name = 'young succeeded + sent receipt')),
    'CG008', 'outbox.events is append-only (DELETE refused)',
    'a DELETE of events with outbox.archiving set by hand is refused when they are not archived (CG008)');
RESET outbox.archiving;
SELECT throws_ok('UPDATE outbox_archive.messages SET last_error = ''rewritten''', 'CG012', NULL,
    'UPDATE of outbox_archive.messages is refused (CG012)');
SELECT throws_ok('DELETE FROM outbox_archive.events', 'CG012', NULL,
    'DELETE from outbox_archive.events is refused (CG012)');
SELECT throws_ok('TRUNCATE outbox_archive.messages, outbox_archive.events', 'CG012', NULL,
    'TRUNCATE of the archive is refused (CG012)');

-- 5. Counts.
SELECT set_eq('SELECT * FROM outbox.metrics_snapshot()', 'SELECT * FROM metrics_before',
    'metrics_snapshot counts every kind and state the same after archiving (live + archived)');
SELECT set_eq($$SELECT kind, state, archived FROM outbox.summary WHERE archived > 0$$,
    $$SELECT kind, state, count(*) FROM outbox_archive.messages GROUP BY kind, state$$,
    'outbox.summary shows how many rows of each kind and state were archived');

-- 6. Arguments.
SELECT throws_ok('SELECT outbox.archive_settled(now(), 0)', '22023', NULL,
    'a limit of 0 is refused (22023), not read as "no limit"');
SELECT throws_ok('SELECT outbox.archive_settled(NULL, 10)', '22023', NULL,
    'a NULL cutoff is refused (22023)');

SELECT * FROM finish();
ROLLBACK;
