-- 08_relay_roles: who may run the relay's functions (0005_relay.sql, and
-- 0006_reconcile.sql's claim_lookups and record_lookups).
--
-- Each check switches to the group role (SET ROLE, or helpers.psql's refused_as) and tries the call for
-- real (refusals must be SQLSTATE 42501 with PostgreSQL's own "permission
-- denied" message). Table and function lists come from the catalog.
-- Proves that:
--   * outbox_relay may execute exactly the nine relay functions
--     (claim_charges, record_charges, extend_leases, expire_leases,
--     claim_emails, record_emails, claim_lookups, record_lookups, and
--     0008_metrics.sql's metrics_snapshot) and no
--     other function of billing or outbox: enqueue_due and
--     apply_charge_outcomes are refused (42501);
--   * through them alone it does the whole job: a charge claimed and
--     recorded as succeeded, and its receipt claimed and recorded as sent,
--     by outbox_relay write the payment, the transaction and the invoice,
--     although the role may write no table and may not run
--     apply_charge_outcomes itself (the nine are SECURITY DEFINER, with
--     search_path pinned to pg_catalog, pg_temp; the helper is not, and is
--     granted to nobody);
--   * outbox_relay still cannot INSERT, UPDATE, DELETE or TRUNCATE any
--     table of billing or outbox;
--   * outbox_charger, outbox_reader and outbox_operator cannot execute the
--     relay's functions, and PUBLIC can execute none of 0005's functions
--     (nor any other function of both schemas);
--   * events written through the relay's functions name the login role
--     (session_user) and the daemon's outbox.actor, not the functions'
--     owner (I8).
BEGIN;
\ir helpers.psql

-- The nine functions granted to outbox_relay, each with a call that works.
CREATE TEMP TABLE relay_funcs (func regprocedure, name text, call text, ord int);
INSERT INTO relay_funcs VALUES
    ('outbox.claim_charges(text, double precision, integer)', 'claim_charges',
     $$SELECT * FROM outbox.claim_charges('roles-test', 30, 10)$$, 1),
    ('outbox.record_charges(jsonb, double precision[], double precision)', 'record_charges',
     $$SELECT * FROM outbox.record_charges('[]', '{86400}', 60)$$, 2),
    ('outbox.extend_leases(jsonb, double precision)', 'extend_leases',
     $$SELECT * FROM outbox.extend_leases('[]', 60)$$, 3),
    ('outbox.expire_leases(integer, double precision)', 'expire_leases',
     $$SELECT * FROM outbox.expire_leases(10, 60)$$, 4),
    ('outbox.claim_emails(text, double precision, integer)', 'claim_emails',
     $$SELECT * FROM outbox.claim_emails('roles-test', 30, 10)$$, 5),
    ('outbox.record_emails(jsonb)', 'record_emails',
     $$SELECT * FROM outbox.record_emails('[]')$$, 6),
    ('outbox.claim_lookups(text, double precision, integer)', 'claim_lookups',
     $$SELECT * FROM outbox.claim_lookups('roles-test', 30, 10)$$, 7),
    ('outbox.record_lookups(jsonb, double precision[], double precision[], double precision)', 'record_lookups',
     $$SELECT * FROM outbox.record_lookups('[]', '{86400}', '{60}', 900)$$, 8),
    ('outbox.metrics_snapshot()', 'metrics_snapshot',
     $$SELECT * FROM outbox.metrics_snapshot()$$, 9);
-- 0005's helper, run only inside record_charges: with it a caller could
-- write payments for any row, claimed or not.
CREATE TEMP TABLE helper_funcs (func regprocedure, name text, call text, ord int);
INSERT INTO helper_funcs VALUES
    ('outbox.apply_charge_outcomes(jsonb, double precision[])', 'apply_charge_outcomes',
     $$SELECT outbox.apply_charge_outcomes('[{"id": 1, "outcome": "succeeded", "gateway_ref": "ch_forged"}]', '{}')$$, 1);

CREATE TEMP TABLE rel_tables AS
SELECT c.oid::regclass::text AS rel, c.relname::text AS relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('billing', 'outbox') AND c.relkind IN ('r', 'p');
CREATE TEMP TABLE write_ops (op text, ord int);
INSERT INTO write_ops VALUES ('INSERT', 1), ('UPDATE', 2), ('DELETE', 3), ('TRUNCATE', 4);
CREATE TEMP TABLE other_groups (role name, ord int);
INSERT INTO other_groups VALUES ('outbox_charger', 1), ('outbox_reader', 2), ('outbox_operator', 3);

SELECT plan((
      1                                                      -- what outbox_relay may execute
    + 3                                                      -- the whole job as outbox_relay
    + (SELECT count(*) FROM relay_funcs)                     -- each granted function runs
    + 1 + (SELECT count(*) FROM helper_funcs)                -- enqueue_due and the helper refused
    + 2                                                      -- definer rights and search_path
    + (SELECT count(*) FROM rel_tables CROSS JOIN write_ops)     -- no direct writes
    + (SELECT count(*) FROM other_groups CROSS JOIN relay_funcs)  -- other groups refused
    + (SELECT count(*) FROM relay_funcs) + (SELECT count(*) FROM helper_funcs) + 1  -- PUBLIC
    + 1                                                      -- the actor of the relay's events
)::int);

-- 1. What outbox_relay may execute: the nine, from the catalog.
SELECT set_eq(
    $$SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname IN ('billing', 'outbox') AND has_function_privilege('outbox_relay', p.oid, 'EXECUTE')$$,
    'SELECT func FROM relay_funcs',
    'outbox_relay may execute exactly the nine relay functions and no other function of billing or outbox');

-- 2. The whole job as outbox_relay: claim, record, release, send.
CREATE TEMP TABLE job AS SELECT pg_temp.cg_charge(pg_temp.cg_invoice('in_flight', 1500)) AS charge;
INSERT INTO job SELECT pg_temp.cg_email(charge) FROM job;
SET ROLE outbox_relay;
SELECT id AS job_id, claim_token AS job_token FROM outbox.claim_charges('relay-role', 30, 10) \gset
SELECT results_eq(
    format($$SELECT recorded, note FROM outbox.record_charges(%L, '{86400}', 60)$$,
           jsonb_build_array(jsonb_build_object('id', :job_id, 'claim_token', :'job_token',
                                                'outcome', 'succeeded', 'gateway_ref', 'ch_role_test'))),
    $$VALUES (true, NULL::text)$$,
    'as outbox_relay, a charge it claimed is recorded as succeeded (the write happens inside the SECURITY DEFINER function)');
SELECT id AS mail_id, claim_token AS mail_token FROM outbox.claim_emails('relay-role', 30, 10) \gset
SELECT results_eq(
    format('SELECT recorded FROM outbox.record_emails(%L)',
           jsonb_build_array(jsonb_build_object('id', :mail_id, 'claim_token', :'mail_token', 'outcome', 'sent'))),
    $$VALUES (true)$$,
    'as outbox_relay, the receipt it claimed is recorded as sent');
RESET ROLE;
SELECT results_eq(
    $$SELECT m.state, i.status, i.amount_due_cents,
             (SELECT count(*) FROM billing.payments p WHERE p.outbox_id = m.id AND p.gateway_charge_id = 'ch_role_test'),
             (SELECT count(*) FROM billing.transactions t WHERE t.outbox_id = m.id AND t.kind = 'charge'),
             (SELECT e.state || ' ' || e.template FROM outbox.messages e WHERE e.parent_id = m.id)
        FROM outbox.messages m JOIN billing.invoices i ON i.id = m.invoice_id
       WHERE m.id = (SELECT min(charge) FROM job)$$,
    $$VALUES ('succeeded'::text, 'paid'::text, 0::bigint, 1::bigint, 1::bigint, 'sent receipt'::text)$$,
    'what outbox_relay recorded is all there: charge succeeded, payment and transaction written, invoice paid, receipt sent');

-- 3. Each granted function runs as outbox_relay (nothing is due any more).
CREATE FUNCTION pg_temp.relay_may_run()
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM relay_funcs ORDER BY ord LOOP
        SET ROLE outbox_relay;
        RETURN NEXT lives_ok(r.call, format('outbox_relay can execute outbox.%s', r.name));
        RESET ROLE;
    END LOOP;
END
$$;
SELECT * FROM pg_temp.relay_may_run();

-- 4. The charger's function and the relay's helper are refused.
SELECT pg_temp.refused_as('outbox_relay', 'SELECT * FROM outbox.enqueue_due(10)',
    'permission denied for function enqueue_due',
    'outbox_relay cannot execute outbox.enqueue_due (42501): enqueueing is the charger''s');
SELECT pg_temp.refused_as('outbox_relay', call, format('permission denied for function %s', name),
    format('outbox_relay cannot execute outbox.%s directly (42501): outside record_charges nothing checks a claim token', name))
  FROM helper_funcs ORDER BY ord;

-- 5. Definer rights where they are needed, and only there.
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_proc p JOIN relay_funcs f ON f.func = p.oid
       WHERE NOT p.prosecdef OR NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)$$,
    'the nine relay functions are SECURITY DEFINER with search_path pinned to pg_catalog, pg_temp (no name can be hijacked)');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_proc p JOIN helper_funcs f ON f.func = p.oid
       WHERE p.prosecdef OR p.proacl IS NULL
          OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee <> p.proowner)$$,
    'apply_charge_outcomes is not SECURITY DEFINER and is granted to nobody: it runs only inside record_charges, after the claim tokens were checked');

-- 6. outbox_relay writes no table directly.
CREATE FUNCTION pg_temp.relay_writes_refused()
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM rel_tables CROSS JOIN write_ops ORDER BY rel, ord LOOP
        RETURN NEXT pg_temp.refused_as('outbox_relay', pg_temp.write_sql(r.op, r.rel::regclass),
            format('permission denied for table %s', r.relname),
            format('outbox_relay cannot %s %s (42501): it writes only through its functions', r.op, r.rel));
    END LOOP;
END
$$;
SELECT * FROM pg_temp.relay_writes_refused();

-- 7. The other groups cannot run the relay's functions.
SELECT pg_temp.refused_as(g.role, f.call, format('permission denied for function %s', f.name),
           format('%s cannot execute outbox.%s (42501)', g.role, f.name))
  FROM other_groups g CROSS JOIN relay_funcs f ORDER BY g.ord, f.ord;

-- 8. PUBLIC. has_function_privilege also sees the default EXECUTE of a
-- function whose ACL is still NULL, which an aclexplode of proacl misses.
SELECT ok(NOT has_function_privilege('public', func, 'EXECUTE'),
          format('PUBLIC cannot execute outbox.%s', name))
  FROM (SELECT func, name, ord FROM relay_funcs UNION ALL SELECT func, name, 10 + ord FROM helper_funcs) f
 ORDER BY ord;
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname IN ('billing', 'outbox') AND has_function_privilege('public', p.oid, 'EXECUTE')$$,
    'no function of billing or outbox is executable by PUBLIC');

-- 9. The audit trail names who ran the relay: the login role and the
-- daemon's outbox.actor, although the functions run as their owner.
CREATE ROLE cg_test_relay_login LOGIN IN ROLE outbox_relay;
CREATE TEMP TABLE job2 AS SELECT pg_temp.cg_charge(pg_temp.cg_invoice('in_flight')) AS charge;
SET SESSION AUTHORIZATION cg_test_relay_login;
SELECT set_config('outbox.actor', 'relay test-1', true) IS NOT NULL AS actor_set \gset
DO $$ BEGIN PERFORM outbox.claim_charges('relay-login', 30, 10); END $$;
SELECT set_config('outbox.actor', '', true) IS NOT NULL AS actor_reset \gset
RESET SESSION AUTHORIZATION;
SELECT results_eq(
    $$SELECT from_state, to_state, actor FROM outbox.events WHERE message_id = (SELECT charge FROM job2) ORDER BY id$$,
    $$VALUES (NULL::text, 'pending'::text, session_user::text COLLATE "default"),
             ('pending', 'submitting', 'cg_test_relay_login (relay test-1)')$$,
    'the claim made by a relay login role is recorded as "<login role> (<outbox.actor>)", not as the functions'' owner (I8)');

SELECT * FROM finish();
ROLLBACK;
