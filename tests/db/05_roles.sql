-- 05_roles: least privilege for the four group roles, and nothing for PUBLIC.
--
-- Each check switches to the group role (SET ROLE, or helpers.psql's refused_as) and tries the
-- statement for real (refusals must be SQLSTATE 42501 with PostgreSQL's own
-- "permission denied" message). Table and function lists come from the
-- catalog, so a table or function added later is covered automatically.
-- Proves that:
--   * the groups are plain NOLOGIN roles and cannot create objects;
--   * outbox_charger may only run outbox.enqueue_due and read
--     outbox.schema_migrations: it reads no other table and writes none;
--   * outbox_reader reads every table of billing and outbox and writes none,
--     and cannot run enqueue_due;
--   * outbox_operator reads like the reader, writes nothing directly (not
--     even outbox.messages), and cannot run enqueue_due;
--   * outbox_relay cannot insert or delete invoices, rewrite or delete
--     events, or run enqueue_due;
--   * a role with no grants (PUBLIC) cannot use either schema or run any of
--     their functions.
-- A TODO test (reported as "not ok ... # TODO", counted as passing) shows
-- that 0003's per-schema REVOKE of EXECUTE from PUBLIC does nothing: a
-- function a later migration adds is executable by every role.
BEGIN;
\ir helpers.psql

-- Every table and view of both schemas; write checks apply to tables.
CREATE TEMP TABLE rels AS
SELECT c.oid::regclass::text AS rel, c.relname::text AS relname, n.nspname::text AS nsp,
       c.relkind IN ('r', 'p') AS is_table
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('billing', 'outbox') AND c.relkind IN ('r', 'p', 'v', 'm');

CREATE TEMP TABLE write_ops (op text, ord int);
INSERT INTO write_ops VALUES ('INSERT', 1), ('UPDATE', 2), ('DELETE', 3), ('TRUNCATE', 4);

CREATE TEMP TABLE funcs AS
SELECT p.oid::regprocedure::text AS func FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('billing', 'outbox');

CREATE TEMP TABLE groups (role name, ord int);
INSERT INTO groups VALUES ('outbox_charger', 1), ('outbox_relay', 2), ('outbox_reader', 3), ('outbox_operator', 4);

-- A role with no grants at all: what PUBLIC may do, it may do.
CREATE ROLE cg_test_nobody NOLOGIN;

SELECT plan((
      (SELECT count(*) FROM groups)                                    -- role attributes
    + 2 * (SELECT count(*) FROM groups)                                -- no CREATE in the schemas
    + 2 + (SELECT count(*) FROM rels WHERE rel <> 'outbox.schema_migrations')  -- charger reads
    + 3 * (SELECT count(*) FROM rels CROSS JOIN write_ops WHERE is_table)      -- charger, reader, operator write nothing
    + 2 * (SELECT count(*) FROM rels)                                  -- reader, operator read everything
    + 3                                                                -- reader, operator: enqueue_due; membership
    + 7                                                                -- relay
    + 2 + (SELECT count(*) FROM rels) + 2 + (SELECT count(*) FROM funcs)       -- PUBLIC
    + 1                                                                -- objects added by later migrations
)::int);

-- Every write on every table refused for p_role.
CREATE FUNCTION pg_temp.writes_refused(p_role name)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM rels CROSS JOIN write_ops WHERE is_table ORDER BY rel, ord LOOP
        RETURN NEXT pg_temp.refused_as(p_role, pg_temp.write_sql(r.op, r.rel::regclass),
            format('permission denied for table %s', r.relname),
            format('%s cannot %s %s (42501)', p_role, r.op, r.rel));
    END LOOP;
END
$$;

-- Every table and view readable by p_role.
CREATE FUNCTION pg_temp.reads_allowed(p_role name)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM rels ORDER BY rel LOOP
        RETURN NEXT pg_temp.allowed_as(p_role, format('SELECT * FROM %s LIMIT 1', r.rel),
            format('%s can SELECT from %s', p_role, r.rel));
    END LOOP;
END
$$;

-- 1. The groups themselves.
SELECT ok(NOT (r.rolcanlogin OR r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls),
          format('%s is a NOLOGIN group without superuser, createrole, createdb, replication or bypassrls', g.role))
  FROM groups g JOIN pg_roles r ON r.rolname = g.role ORDER BY g.ord;

CREATE FUNCTION pg_temp.create_refused()
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    g record;
    s text;
BEGIN
    FOR g IN SELECT * FROM groups ORDER BY ord LOOP
        FOREACH s IN ARRAY ARRAY['billing', 'outbox'] LOOP
            RETURN NEXT pg_temp.refused_as(g.role, format('CREATE TABLE %I.cg_intruder (x int)', s),
                format('permission denied for schema %s', s),
                format('%s cannot create tables in schema %s (42501)', g.role, s));
        END LOOP;
    END LOOP;
END
$$;
SELECT * FROM pg_temp.create_refused();

-- 2. outbox_charger: enqueue_due and the schema version, nothing else.
CREATE TEMP TABLE due AS SELECT pg_temp.cg_invoice('open') AS inv;
SET ROLE outbox_charger;
SELECT lives_ok('SELECT * FROM outbox.enqueue_due(10)', 'outbox_charger can execute outbox.enqueue_due');
SELECT lives_ok('SELECT max(version) FROM outbox.schema_migrations',
    'outbox_charger can SELECT outbox.schema_migrations (the version check at start)');
RESET ROLE;

CREATE FUNCTION pg_temp.charger_reads_refused()
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM rels WHERE rel <> 'outbox.schema_migrations' ORDER BY rel LOOP
        RETURN NEXT pg_temp.refused_as('outbox_charger', format('SELECT * FROM %s LIMIT 1', r.rel),
            format('permission denied for %s %s', CASE WHEN r.is_table THEN 'table' ELSE 'view' END, r.relname),
            format('outbox_charger cannot SELECT from %s (42501): enqueue_due reads for it', r.rel));
    END LOOP;
END
$$;
SELECT * FROM pg_temp.charger_reads_refused();
SELECT * FROM pg_temp.writes_refused('outbox_charger');

-- 3. outbox_reader: reads everything, changes nothing.
SELECT * FROM pg_temp.reads_allowed('outbox_reader');
SELECT * FROM pg_temp.writes_refused('outbox_reader');
SET ROLE outbox_reader;
SELECT throws_ok('SELECT * FROM outbox.enqueue_due(10)', '42501', 'permission denied for function enqueue_due',
    'outbox_reader cannot execute outbox.enqueue_due (42501)');
RESET ROLE;

-- 4. outbox_operator: reads like the reader; acts only through its functions.
SELECT ok(pg_has_role('outbox_operator', 'outbox_reader', 'MEMBER'), 'outbox_operator is a member of outbox_reader');
SELECT * FROM pg_temp.reads_allowed('outbox_operator');
SELECT * FROM pg_temp.writes_refused('outbox_operator');
SET ROLE outbox_operator;
SELECT throws_ok('SELECT * FROM outbox.enqueue_due(10)', '42501', 'permission denied for function enqueue_due',
    'outbox_operator cannot execute outbox.enqueue_due (42501)');
RESET ROLE;

-- 5. outbox_relay.
SET ROLE outbox_relay;
SELECT lives_ok('SELECT max(version) FROM outbox.schema_migrations',
    'outbox_relay can SELECT outbox.schema_migrations (the version check at start)');
SELECT throws_ok($$INSERT INTO billing.invoices (customer_id, amount_cents, amount_due_cents, currency, due_at)
                   VALUES (1, 100, 100, 'usd', now())$$,
    '42501', 'permission denied for table invoices', 'outbox_relay cannot INSERT billing.invoices (42501)');
SELECT throws_ok('DELETE FROM billing.invoices WHERE false',
    '42501', 'permission denied for table invoices', 'outbox_relay cannot DELETE from billing.invoices (42501)');
SELECT throws_ok($$UPDATE outbox.events SET detail = 'rewritten' WHERE false$$,
    '42501', 'permission denied for table events', 'outbox_relay cannot UPDATE outbox.events (42501)');
SELECT throws_ok('DELETE FROM outbox.events WHERE false',
    '42501', 'permission denied for table events', 'outbox_relay cannot DELETE from outbox.events (42501)');
SELECT throws_ok('TRUNCATE outbox.events',
    '42501', 'permission denied for table events', 'outbox_relay cannot TRUNCATE outbox.events (42501)');
SELECT throws_ok('SELECT * FROM outbox.enqueue_due(10)', '42501', 'permission denied for function enqueue_due',
    'outbox_relay cannot execute outbox.enqueue_due (42501)');
RESET ROLE;

-- 6. PUBLIC, seen through a role with no grants.
SELECT ok(NOT has_schema_privilege('cg_test_nobody', 'billing', 'USAGE'), 'PUBLIC has no USAGE on schema billing');
SELECT ok(NOT has_schema_privilege('cg_test_nobody', 'outbox', 'USAGE'), 'PUBLIC has no USAGE on schema outbox');
CREATE FUNCTION pg_temp.public_refused()
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM rels ORDER BY rel LOOP
        RETURN NEXT pg_temp.refused_as('cg_test_nobody', format('SELECT * FROM %s LIMIT 1', r.rel),
            format('permission denied for schema %s', r.nsp),
            format('a role with no grants cannot SELECT from %s (42501: no USAGE on the schema)', r.rel));
    END LOOP;
    FOR r IN SELECT * FROM funcs ORDER BY func LOOP
        RETURN NEXT ok(NOT has_function_privilege('cg_test_nobody', r.func, 'EXECUTE'),
            format('PUBLIC cannot execute %s', r.func));
    END LOOP;
END
$$;
SELECT * FROM pg_temp.public_refused();
SELECT pg_temp.refused_as('cg_test_nobody', 'SELECT * FROM outbox.enqueue_due(10)',
    'permission denied for schema outbox', 'a role with no grants cannot execute outbox.enqueue_due (42501)');
SELECT is(
    (SELECT count(*) FROM (
        SELECT nspacl AS acl FROM pg_namespace WHERE nspname IN ('billing', 'outbox')
        UNION ALL
        SELECT c.relacl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('billing', 'outbox')
        UNION ALL
        SELECT p.proacl FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname IN ('billing', 'outbox')) o,
        aclexplode(o.acl) x
      WHERE x.grantee = 0),
    0::bigint, 'no schema, table, sequence or function of billing or outbox grants anything to PUBLIC');

-- 7. Objects a later migration adds (as the migrating role, here postgres).
CREATE TABLE outbox.cg_later_table (x int);
SET ROLE outbox_reader;
SELECT lives_ok('SELECT * FROM outbox.cg_later_table',
    'outbox_reader can SELECT a table added by a later migration (default privileges)');
-- Functions get no default: every migration that adds functions revokes
-- EXECUTE from PUBLIC itself (0003 explains why), and the catalog check
-- above proves none of the migrations' functions is left executable by PUBLIC.
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
