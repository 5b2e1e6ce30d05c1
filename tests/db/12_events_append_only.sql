-- 12_events_append_only: outbox.events refuses every way of rewriting or
-- removing a row, whoever tries, because its trigger refuses (CG008), not
-- a privilege: the table's owner holds every privilege.
--
-- The four groups are refused by privilege first (42501:
-- 12_least_privilege_refusals); here the rule must hold for those the
-- privileges do not stop. Proves that each of
--   * the table's owner as the tests create it (postgres, a superuser),
--   * an owner that is not a superuser (as db/migrate's role usually is:
--     the database owner),
--   * a role that is not the owner but holds every privilege on the table
--     (a GRANT made by mistake),
--   * a superuser with session_replication_role = replica (what logical
--     replication and bulk-loading tools set to switch triggers off;
--     0009_least_privilege makes the trigger fire ALWAYS),
-- is refused, with CG008 and the trigger's message, each of: UPDATE;
-- DELETE; TRUNCATE; INSERT ... ON CONFLICT DO UPDATE; MERGE ... UPDATE;
-- MERGE ... DELETE; DELETE inside a WITH; a DELETE with outbox.archiving
-- set by hand (what archive_settled sets for its own call, 0013) of events
-- that have no copy in outbox_archive.events. The rows are all still there
-- afterwards, appending still works, and the non-superuser owner cannot set
-- session_replication_role itself. The one way out is a move: a DELETE
-- with outbox.archiving set of events whose identical copies are archived
-- (archive_settled's way) succeeds, and one whose archived copy differs in
-- any column is refused.
-- Both triggers are ENABLE ALWAYS.
BEGIN;
\ir helpers.psql

-- Events to aim at: a charge walked to succeeded writes three.
CREATE TEMP TABLE fx AS SELECT pg_temp.cg_message_in('charge', 'succeeded') AS charge;
SELECT charge FROM fx \gset
CREATE TEMP TABLE events_before AS SELECT * FROM outbox.events;

CREATE ROLE cg_test_owner NOLOGIN;          -- owns outbox.events, not a superuser
CREATE ROLE cg_test_granted NOLOGIN;        -- holds every privilege on it
GRANT USAGE ON SCHEMA outbox TO cg_test_owner, cg_test_granted;
GRANT ALL ON outbox.events TO cg_test_granted;

-- Who tries: p_setup runs first (as the test's superuser), then SET SESSION
-- AUTHORIZATION to who.
CREATE TEMP TABLE actors (who name, label text, setup text, ord int);
INSERT INTO actors VALUES
    ('postgres', 'the owner postgres (a superuser)', 'SET session_replication_role = origin', 1),
    ('cg_test_owner', 'an owner that is no superuser', 'ALTER TABLE outbox.events OWNER TO cg_test_owner', 2),
    ('cg_test_granted', 'a role holding ALL on outbox.events', 'ALTER TABLE outbox.events OWNER TO postgres', 3),
    ('postgres', 'a superuser with session_replication_role = replica', 'SET session_replication_role = replica', 4);

CREATE TEMP TABLE rewrites (op text, label text, sql text, ord int);
INSERT INTO rewrites VALUES
    ('UPDATE', 'UPDATE', format($$UPDATE outbox.events SET detail = 'rewritten' WHERE message_id = %s$$, :charge), 1),
    ('DELETE', 'DELETE', format('DELETE FROM outbox.events WHERE message_id = %s', :charge), 2),
    ('TRUNCATE', 'TRUNCATE', 'TRUNCATE outbox.events', 3),
    ('UPDATE', 'INSERT ... ON CONFLICT DO UPDATE',
     format($$INSERT INTO outbox.events (id, message_id, to_state, actor) OVERRIDING SYSTEM VALUE
              SELECT id, message_id, to_state, actor FROM outbox.events WHERE message_id = %s
              ON CONFLICT (id) DO UPDATE SET detail = 'rewritten'$$, :charge), 4),
    ('UPDATE', 'MERGE ... UPDATE',
     format($$MERGE INTO outbox.events e USING (VALUES (%s::bigint)) s (m) ON e.message_id = s.m
              WHEN MATCHED THEN UPDATE SET detail = 'rewritten'$$, :charge), 5),
    ('DELETE', 'MERGE ... DELETE',
     format($$MERGE INTO outbox.events e USING (VALUES (%s::bigint)) s (m) ON e.message_id = s.m
              WHEN MATCHED THEN DELETE$$, :charge), 6),
    ('DELETE', 'DELETE inside a WITH',
     format('WITH gone AS (DELETE FROM outbox.events WHERE message_id = %s RETURNING id) SELECT count(*) FROM gone', :charge), 7),
    ('DELETE', 'DELETE with outbox.archiving set by hand, nothing archived',
     format($$SET LOCAL outbox.archiving = 'on'; DELETE FROM outbox.events WHERE message_id = %s$$, :charge), 8);

SELECT plan((
      (SELECT count(*) FROM actors CROSS JOIN rewrites)
    + 4                                                -- rows kept; append; replica for the owner; trigger mode
    + 4                                                -- the move: done, gone, forged copy; trigger mode
)::int);

-- Each rewrite by each actor: refused by the trigger. A rewrite that is not
-- refused is undone (pg_temp.undo) and fails its test.
CREATE FUNCTION pg_temp.rewrites_refused()
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    a record;
    w record;
BEGIN
    FOR a IN SELECT * FROM actors ORDER BY ord LOOP
        EXECUTE a.setup;
        FOR w IN SELECT * FROM rewrites ORDER BY ord LOOP
            EXECUTE format('SET SESSION AUTHORIZATION %I', a.who);
            RETURN NEXT throws_ok(w.sql || format('; SELECT pg_temp.undo(%L)', w.label), 'CG008',
                format('outbox.events is append-only (%s refused)', w.op),
                format('%s: %s of outbox.events refused by its trigger (CG008)', a.label, w.label));
            RESET SESSION AUTHORIZATION;
            RESET outbox.archiving;
        END LOOP;
    END LOOP;
    SET session_replication_role = origin;
END
$$;
SELECT * FROM pg_temp.rewrites_refused();

SELECT set_eq('SELECT * FROM outbox.events', 'SELECT * FROM events_before',
    'every event is still there, unchanged');

SET SESSION AUTHORIZATION cg_test_granted;
SELECT lives_ok(format($$INSERT INTO outbox.events (message_id, from_state, to_state, actor)
                         VALUES (%s, 'succeeded', 'succeeded', 'append test')$$, :charge),
    'appending still works (INSERT by a role holding the privilege)');
RESET SESSION AUTHORIZATION;

SELECT pg_temp.refused_as('cg_test_owner', 'SET session_replication_role = replica',
    'permission denied to set parameter "session_replication_role"',
    'an owner that is no superuser cannot set session_replication_role (42501)');

SELECT is((SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'outbox.events'::regclass AND tgname = 'events_append_only'),
    'A'::"char", 'events_append_only is ENABLE ALWAYS: it fires whatever session_replication_role says');

-- The move (0013): the events of one message copied to the archive as
-- archive_settled copies them, then deleted with outbox.archiving set.
CREATE TEMP TABLE moving AS SELECT * FROM outbox.events WHERE message_id = :charge;
SET LOCAL outbox.archiving = 'on';
INSERT INTO outbox_archive.events SELECT * FROM outbox.events WHERE message_id = :charge;
SELECT lives_ok(format('DELETE FROM outbox.events WHERE message_id = %s', :charge),
    'a DELETE of events whose identical copies are in outbox_archive.events succeeds (a move, 0013)');
SELECT set_eq(format('SELECT to_jsonb(a) FROM outbox_archive.events a WHERE message_id = %s', :charge),
              'SELECT to_jsonb(b) FROM moving b',
    'the moved events are in the archive, identical, and no longer in outbox.events')
 WHERE NOT EXISTS (SELECT 1 FROM outbox.events WHERE message_id = :charge)
UNION ALL SELECT fail('the moved events are still in outbox.events')
 WHERE EXISTS (SELECT 1 FROM outbox.events WHERE message_id = :charge);
-- a copy that differs in one column is no copy
CREATE TEMP TABLE fx2 AS SELECT pg_temp.cg_message_in('charge', 'succeeded') AS charge;
SELECT charge AS charge2 FROM fx2 \gset
INSERT INTO outbox_archive.events (id, message_id, at, from_state, to_state, actor, detail)
SELECT id, message_id, at, from_state, to_state, actor, 'forged' FROM outbox.events WHERE message_id = :charge2;
SELECT throws_ok(format('DELETE FROM outbox.events WHERE message_id = %s', :charge2), 'CG008',
    'outbox.events is append-only (DELETE refused)',
    'a DELETE of events whose archived copies differ (detail) is refused (CG008), even with outbox.archiving set');
RESET outbox.archiving;
SELECT is((SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'outbox.events'::regclass AND tgname = 'events_delete_only_archived'),
    'A'::"char", 'events_delete_only_archived is ENABLE ALWAYS too');

SELECT * FROM finish();
ROLLBACK;
