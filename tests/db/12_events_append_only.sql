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
-- MERGE ... DELETE; DELETE inside a WITH. The rows are all still there
-- afterwards, appending still works, and the non-superuser owner cannot set
-- session_replication_role itself.
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
     format('WITH gone AS (DELETE FROM outbox.events WHERE message_id = %s RETURNING id) SELECT count(*) FROM gone', :charge), 7);

SELECT plan((
      (SELECT count(*) FROM actors CROSS JOIN rewrites)
    + 4                                                -- rows kept; append; replica for the owner; trigger mode
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

SELECT * FROM finish();
ROLLBACK;
