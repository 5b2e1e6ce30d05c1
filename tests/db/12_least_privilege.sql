-- 12_least_privilege: the privilege matrix, read from the catalog and
-- compared with an explicit expected one, so that any new GRANT fails here.
--
-- The matrix below is the one docs/schema.md shows (role x object x
-- privilege); change both together. It lists every table, view and sequence
-- of billing, outbox and outbox_archive: a migration that adds one fails the coverage test
-- until it is added here with the rights it is meant to have. Privileges are
-- the effective ones (has_*_privilege: inherited through membership, so
-- outbox_operator shows what it holds as a member of outbox_reader).
-- Proves that:
--   * for each of outbox_charger, outbox_relay, outbox_reader,
--     outbox_operator, outbox_retention and PUBLIC, and each relation, the table privileges
--     held (SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER;
--     USAGE, SELECT, UPDATE for sequences) are exactly the expected ones, and
--     no column privilege goes beyond them (a GRANT UPDATE (status) shows);
--   * nobody holds a grant option on anything of the three schemas;
--   * each may use exactly its schemas (every group billing and outbox, the
--     reader and operator outbox_archive too, PUBLIC none), none may CREATE
--     in them,
--     in schema public or in the database (no schema of its own);
--   * each may execute exactly its list of functions of the three schemas,
--     PUBLIC none, and no SECURITY DEFINER function is executable by PUBLIC;
--   * every function of the three schemas, SECURITY DEFINER or not, pins its
--     search_path to pg_catalog, pg_temp (pg_temp last: a caller's temporary
--     table cannot stand in for a catalog one; no schema anyone can create
--     in is searched);
--   * the groups are members of nothing but outbox_operator of
--     outbox_reader (none of PostgreSQL's predefined roles such as
--     pg_write_all_data), and each login role of tests/run (charger_app,
--     relay_app, reader_app, operator_app, retention_app) reaches exactly
--     its own group.
-- What each role is refused when it tries is in 12_least_privilege_refusals;
-- events' append-only rule in 12_events_append_only.
BEGIN;
\ir helpers.psql

-- The expected matrix: privileges each role holds on each relation, in the
-- order of pg_temp.held below; '' is none.
CREATE TEMP TABLE matrix (rel regclass, charger text, relay text, reader text, operator text, retention text,
                          public text);
INSERT INTO matrix VALUES
    ('billing.customers',           '',       '',       'SELECT', 'SELECT', '', ''),
    ('billing.invoices',            '',       '',       'SELECT', 'SELECT', '', ''),
    ('billing.payments',            '',       '',       'SELECT', 'SELECT', '', ''),
    ('billing.transactions',        '',       '',       'SELECT', 'SELECT', '', ''),
    ('outbox.messages',             '',       '',       'SELECT', 'SELECT', '', ''),
    ('outbox.events',               '',       '',       'SELECT', 'SELECT', '', ''),
    ('outbox.transitions',          '',       '',       'SELECT', 'SELECT', '', ''),
    ('outbox.unchargeable',         '',       '',       'SELECT', 'SELECT', '', ''),
    ('outbox.schema_migrations',    'SELECT', 'SELECT', 'SELECT', 'SELECT', '', ''),
    ('outbox.summary',              '',       '',       'SELECT', 'SELECT', '', ''),
    ('outbox.stuck',                '',       '',       'SELECT', 'SELECT', '', ''),
    -- the archive (0013): read like the live tables; written only by
    -- outbox.archive_settled, as its owner
    ('outbox_archive.messages',     '',       '',       'SELECT', 'SELECT', '', ''),
    ('outbox_archive.events',       '',       '',       'SELECT', 'SELECT', '', ''),
    ('outbox_archive.counts',       '',       '',       'SELECT', 'SELECT', '', ''),
    -- identity sequences: only the functions (as their owner) draw ids
    ('billing.customers_id_seq',    '',       '',       '',       '',       '', ''),
    ('billing.invoices_id_seq',     '',       '',       '',       '',       '', ''),
    ('billing.payments_id_seq',     '',       '',       '',       '',       '', ''),
    ('billing.transactions_id_seq', '',       '',       '',       '',       '', ''),
    ('outbox.messages_id_seq',      '',       '',       '',       '',       '', ''),
    ('outbox.events_id_seq',        '',       '',       '',       '',       '', '');

-- Which schemas each may use (USAGE).
CREATE TEMP TABLE schema_usage (role name, nsp name);
INSERT INTO schema_usage
SELECT r, n FROM unnest(ARRAY['outbox_charger', 'outbox_relay', 'outbox_reader', 'outbox_operator',
                              'outbox_retention']) r,
                 unnest(ARRAY['billing', 'outbox']) n
UNION ALL VALUES ('outbox_reader', 'outbox_archive'), ('outbox_operator', 'outbox_archive');
CREATE TEMP TABLE schemas (nsp name);
INSERT INTO schemas VALUES ('billing'), ('outbox'), ('outbox_archive');

CREATE TEMP TABLE roles (role name, ord int);
INSERT INTO roles VALUES
    ('outbox_charger', 1), ('outbox_relay', 2), ('outbox_reader', 3), ('outbox_operator', 4),
    ('outbox_retention', 5), ('public', 6);

CREATE TEMP TABLE expected AS
SELECT m.rel, r.role, r.ord,
       CASE r.role WHEN 'outbox_charger' THEN m.charger WHEN 'outbox_relay' THEN m.relay
                   WHEN 'outbox_reader' THEN m.reader WHEN 'outbox_operator' THEN m.operator
                   WHEN 'outbox_retention' THEN m.retention ELSE m.public END AS privs
  FROM matrix m CROSS JOIN roles r;

-- The login roles tests/run creates, and the one group each must reach.
CREATE TEMP TABLE logins (login name, grp name, ord int);
INSERT INTO logins VALUES
    ('charger_app', 'outbox_charger', 1), ('relay_app', 'outbox_relay', 2),
    ('reader_app', 'outbox_reader', 3), ('operator_app', 'outbox_operator', 4),
    ('retention_app', 'outbox_retention', 5);

SELECT plan((
      1                                  -- the matrix covers every relation
    + (SELECT count(*) FROM expected)    -- role x relation
    + 1                                  -- no grant options
    + 2 * (SELECT count(*) FROM roles CROSS JOIN schemas)   -- USAGE, CREATE
    + (SELECT count(*) FROM roles)       -- no CREATE in public or the database
    + (SELECT count(*) FROM roles) + 1   -- functions each may execute; definer ones and PUBLIC
    + 2                                  -- search_path pinned
    + 1 + (SELECT count(*) FROM logins)  -- memberships
)::int);

-- What p_role holds on p_rel, in a fixed order, comma-separated: the table
-- (or sequence) privileges, then any column privilege the table-level ones
-- do not already give, as PRIV(column).
CREATE FUNCTION pg_temp.held(p_role name, p_rel regclass)
RETURNS text LANGUAGE sql STABLE AS $$
    WITH rel AS (SELECT relkind FROM pg_class WHERE oid = p_rel),
    whole AS (
        SELECT p.ord, p.priv FROM rel,
               unnest(CASE WHEN rel.relkind = 'S' THEN ARRAY['USAGE', 'SELECT', 'UPDATE']
                           ELSE ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']
                      END) WITH ORDINALITY AS p (priv, ord)
         WHERE CASE WHEN rel.relkind = 'S' THEN has_sequence_privilege(p_role, p_rel, p.priv)
                    ELSE has_table_privilege(p_role, p_rel, p.priv) END),
    cols AS (
        SELECT 100 + a.attnum * 10 + p.ord AS ord, format('%s(%s)', p.priv, a.attname) AS priv
          FROM rel, pg_attribute a,
               unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) WITH ORDINALITY AS p (priv, ord)
         WHERE rel.relkind <> 'S' AND a.attrelid = p_rel AND a.attnum > 0 AND NOT a.attisdropped
           AND has_column_privilege(p_role, p_rel, a.attnum, p.priv)
           AND NOT has_table_privilege(p_role, p_rel, p.priv))
    SELECT coalesce(string_agg(priv, ',' ORDER BY ord), '')
      FROM (SELECT * FROM whole UNION ALL SELECT * FROM cols) x
$$;

-- 1. Tables, views, sequences.
SELECT set_eq(
    $$SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname IN ('billing', 'outbox', 'outbox_archive') AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')$$,
    'SELECT rel FROM matrix',
    'the matrix lists every table, view and sequence of billing, outbox and outbox_archive (a new one needs its row here and in docs/schema.md)');

SELECT is(pg_temp.held(e.role, e.rel), e.privs,
          format('%s holds %s on %s', e.role, CASE e.privs WHEN '' THEN 'nothing' ELSE e.privs END, e.rel))
  FROM expected e ORDER BY e.rel::text, e.ord;

SELECT is_empty(
    $$SELECT o.what, x.grantee::regrole, x.privilege_type FROM (
        SELECT n.nspname::text AS what, n.nspacl AS acl FROM pg_namespace n WHERE n.nspname IN (SELECT nsp FROM schemas)
        UNION ALL
        SELECT c.oid::regclass::text, c.relacl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN (SELECT nsp FROM schemas)
        UNION ALL
        SELECT format('%s.%s', c.oid::regclass, a.attname), a.attacl FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN (SELECT nsp FROM schemas)
        UNION ALL
        SELECT p.oid::regprocedure::text, p.proacl FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname IN (SELECT nsp FROM schemas)) o,
        aclexplode(o.acl) x
      WHERE x.is_grantable AND x.grantee <> x.grantor$$,
    'nobody but the owner holds a grant option on a schema, relation, column or function of billing, outbox or outbox_archive');

-- 2. Schemas and the database.
SELECT is(has_schema_privilege(r.role, s.nsp, 'USAGE'), u.role IS NOT NULL,
          format('%s %s USAGE on schema %s', r.role, CASE WHEN u.role IS NOT NULL THEN 'has' ELSE 'has no' END, s.nsp))
  FROM roles r CROSS JOIN schemas s LEFT JOIN schema_usage u ON u.role = r.role AND u.nsp = s.nsp
 ORDER BY r.ord, s.nsp;
SELECT ok(NOT has_schema_privilege(r.role, s.nsp, 'CREATE'), format('%s has no CREATE on schema %s', r.role, s.nsp))
  FROM roles r CROSS JOIN schemas s ORDER BY r.ord, s.nsp;
SELECT ok(NOT has_schema_privilege(r.role, 'public', 'CREATE')
          AND NOT has_database_privilege(r.role, current_database(), 'CREATE'),
          format('%s can create nothing in schema public and no schema in the database', r.role))
  FROM roles r ORDER BY r.ord;

-- 3. Functions.
CREATE FUNCTION pg_temp.executable_by(p_role name)
RETURNS SETOF regprocedure LANGUAGE sql STABLE AS $$
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname IN (SELECT nsp FROM schemas) AND has_function_privilege(p_role, p.oid, 'EXECUTE')
$$;
SELECT set_eq(format('SELECT * FROM pg_temp.executable_by(%L)', r.role),
              format('SELECT func FROM pg_temp.cg_may_execute() WHERE role = %L', r.role),
              format('%s may execute exactly: %s', r.role,
                     coalesce((SELECT string_agg(func::text, ', ' ORDER BY func::text) FROM pg_temp.cg_may_execute() m
                                WHERE m.role = r.role), 'no function of billing, outbox or outbox_archive')))
  FROM roles r ORDER BY r.ord;
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname IN (SELECT nsp FROM schemas) AND p.prosecdef AND has_function_privilege('public', p.oid, 'EXECUTE')$$,
    'PUBLIC may execute no SECURITY DEFINER function of billing, outbox or outbox_archive');

-- 4. search_path.
SELECT is_empty(
    $$SELECT p.oid::regprocedure, p.proconfig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname IN (SELECT nsp FROM schemas) AND p.prosecdef
         AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)$$,
    'every SECURITY DEFINER function of the three schemas has search_path fixed to pg_catalog, pg_temp');
SELECT is_empty(
    $$SELECT p.oid::regprocedure, p.proconfig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname IN (SELECT nsp FROM schemas) AND NOT p.prosecdef
         AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)$$,
    'every other function of the three schemas (triggers, helpers) has it fixed too: they run inside definer ones');

-- 5. Memberships.
SELECT set_eq(
    $$SELECT m.member::regrole::text, m.roleid::regrole::text, m.admin_option FROM pg_auth_members m
       WHERE m.member IN (SELECT oid FROM pg_roles WHERE rolname LIKE 'outbox\_%')$$,
    $$VALUES ('outbox_operator', 'outbox_reader', false)$$,
    'the groups are members of no role (no predefined pg_* role either) but outbox_operator of outbox_reader, without admin option');
SELECT set_eq(
    format($$SELECT rolname::text FROM pg_roles WHERE pg_has_role(%L, oid, 'MEMBER') AND rolname <> %1$L$$, l.login),
    CASE l.grp WHEN 'outbox_operator' THEN $$VALUES ('outbox_operator'), ('outbox_reader')$$
               ELSE format('VALUES (%L)', l.grp) END,
    format('%s reaches %s and no other role', l.login,
           CASE l.grp WHEN 'outbox_operator' THEN 'outbox_operator (and outbox_reader through it)' ELSE l.grp END))
  FROM logins l ORDER BY l.ord;

SELECT * FROM finish();
ROLLBACK;
