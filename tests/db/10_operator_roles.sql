-- 10_operator_roles: who may use the DBA surface (0007_operator.sql).
--
-- Each check switches to the group role (SET ROLE, or helpers.psql's refused_as) and tries the call for
-- real (refusals must be SQLSTATE 42501 with PostgreSQL's own "permission
-- denied" message). Proves that:
--   * outbox_operator may execute outbox.replay, outbox.cancel and
--     outbox.resolve (and, as a reader, outbox.current_actor) and no other
--     function of billing or outbox; each of the three works when run under
--     that role alone, although the role writes no table (they are SECURITY
--     DEFINER with search_path pinned to pg_catalog, pg_temp);
--   * outbox_operator still cannot UPDATE outbox.messages, INSERT into
--     outbox.events or UPDATE billing.invoices directly;
--   * outbox_reader, outbox_relay and outbox_charger cannot execute any of
--     the three, and PUBLIC cannot either; the three are granted to
--     outbox_operator only;
--   * outbox_reader and outbox_operator can read outbox.summary and
--     outbox.stuck; outbox_relay and outbox_charger cannot.
BEGIN;
\ir helpers.psql

CREATE TEMP TABLE op_funcs (func regprocedure, name text, ord int);
INSERT INTO op_funcs VALUES
    ('outbox.replay(bigint, text)', 'replay', 1),
    ('outbox.cancel(bigint, text)', 'cancel', 2),
    ('outbox.resolve(bigint, text, text, text, double precision[])', 'resolve', 3);
CREATE TEMP TABLE views (rel text, name text, ord int);
INSERT INTO views VALUES ('outbox.summary', 'summary', 1), ('outbox.stuck', 'stuck', 2);
CREATE TEMP TABLE not_op (role name, ord int);
INSERT INTO not_op VALUES ('outbox_reader', 1), ('outbox_relay', 2), ('outbox_charger', 3);

-- Fixtures the operator acts on: a dead charge, a pending charge, an
-- unknown charge whose last lease ended an hour ago.
CREATE TEMP TABLE fx AS
SELECT pg_temp.cg_message_in('charge', 'dead') AS dead,
       pg_temp.cg_message_in('charge', 'pending') AS pending,
       pg_temp.cg_message_in('charge', 'unknown') AS unknown;
UPDATE outbox.messages SET lease_expires_at = now() - interval '1 hour' WHERE id = (SELECT unknown FROM fx);
SELECT dead, pending, unknown FROM fx \gset

SELECT plan((
      2                                                  -- what operator / reader may execute
    + 3                                                  -- each works as outbox_operator
    + 1                                                  -- definer rights
    + 3                                                  -- operator: no direct writes
    + (SELECT count(*) FROM not_op CROSS JOIN op_funcs)  -- other groups refused
    + (SELECT count(*) FROM op_funcs) + 1                -- PUBLIC; grants
    + 2 * (SELECT count(*) FROM views)                   -- reader, operator read the views
    + 2 * (SELECT count(*) FROM views)                   -- relay, charger do not
)::int);

-- 1. What the operator and the reader may execute, from the catalog.
SELECT set_eq(
    $$SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname IN ('billing', 'outbox') AND has_function_privilege('outbox_operator', p.oid, 'EXECUTE')$$,
    $$SELECT func FROM op_funcs UNION ALL SELECT 'outbox.current_actor()'::regprocedure$$,
    'outbox_operator may execute exactly replay, cancel, resolve (and current_actor, as a reader), no other function of billing or outbox');
SELECT set_eq(
    $$SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname IN ('billing', 'outbox') AND has_function_privilege('outbox_reader', p.oid, 'EXECUTE')$$,
    $$VALUES ('outbox.current_actor()'::regprocedure)$$,
    'outbox_reader may execute none of the operator''s functions (only current_actor)');

-- 2. Each works under outbox_operator alone.
SELECT pg_temp.allowed_as('outbox_operator', format('SELECT outbox.replay(%s, ''roles test'')', :dead),
    'outbox_operator can execute outbox.replay (a dead charge replayed)');
SELECT pg_temp.allowed_as('outbox_operator', format('SELECT outbox.cancel(%s, ''roles test'')', :pending),
    'outbox_operator can execute outbox.cancel (a pending charge cancelled, its invoice failed)');
SELECT pg_temp.allowed_as('outbox_operator',
    format('SELECT outbox.resolve(%s, ''succeeded'', ''ch_roles_test'', ''roles test'')', :unknown),
    'outbox_operator can execute outbox.resolve (an unknown charge resolved: payment, invoice, transaction written)');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_proc p JOIN op_funcs f ON f.func = p.oid
       WHERE NOT p.prosecdef OR NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)$$,
    'replay, cancel and resolve are SECURITY DEFINER with search_path pinned to pg_catalog, pg_temp');

-- 3. Still no direct writes.
SELECT pg_temp.refused_as('outbox_operator', format('UPDATE outbox.messages SET state = ''unknown'' WHERE id = %s', :dead),
    'permission denied for table messages', 'outbox_operator cannot UPDATE outbox.messages directly (42501)');
SELECT pg_temp.refused_as('outbox_operator',
    format($$INSERT INTO outbox.events (message_id, from_state, to_state, actor) VALUES (%s, 'dead', 'unknown', 'me')$$, :dead),
    'permission denied for table events', 'outbox_operator cannot INSERT into outbox.events directly (42501)');
SELECT pg_temp.refused_as('outbox_operator', 'UPDATE billing.invoices SET status = status WHERE false',
    'permission denied for table invoices', 'outbox_operator cannot UPDATE billing.invoices directly (42501)');

-- 4. The other groups cannot run them (calls that would succeed).
SELECT pg_temp.refused_as(g.role,
           CASE f.name WHEN 'resolve' THEN format('SELECT outbox.resolve(%s, ''failed'', NULL, ''x'')', :dead)
                       ELSE format('SELECT outbox.%s(%s, ''x'')', f.name, :dead) END,
           format('permission denied for function %s', f.name),
           format('%s cannot execute outbox.%s (42501)', g.role, f.name))
  FROM not_op g CROSS JOIN op_funcs f ORDER BY g.ord, f.ord;

-- 5. PUBLIC; nobody but the operator holds a grant.
SELECT ok(NOT has_function_privilege('public', func, 'EXECUTE'), format('PUBLIC cannot execute outbox.%s', name))
  FROM op_funcs ORDER BY ord;
SELECT is_empty(
    $$SELECT p.oid::regprocedure, a.grantee::regrole FROM pg_proc p JOIN op_funcs f ON f.func = p.oid,
             aclexplode(p.proacl) a
       WHERE a.grantee NOT IN (p.proowner, 'outbox_operator'::regrole)$$,
    'replay, cancel and resolve are granted to outbox_operator and to nobody else');

-- 6. The views.
SELECT pg_temp.allowed_as(r.role, format('SELECT * FROM %s', v.rel), format('%s can SELECT from %s', r.role, v.rel))
  FROM (VALUES ('outbox_reader'::name, 1), ('outbox_operator', 2)) r (role, ord) CROSS JOIN views v
 ORDER BY r.ord, v.ord;
SELECT pg_temp.refused_as(r.role, format('SELECT * FROM %s', v.rel), format('permission denied for view %s', v.name),
           format('%s cannot SELECT from %s (42501)', r.role, v.rel))
  FROM (VALUES ('outbox_relay'::name, 1), ('outbox_charger', 2)) r (role, ord) CROSS JOIN views v
 ORDER BY r.ord, v.ord;

SELECT * FROM finish();
ROLLBACK;
