-- 12_least_privilege_refusals: each login role tries what it must not do,
-- for real, and is refused.
--
-- The roles are the login roles tests/run creates (charger_app in
-- outbox_charger, relay_app, reader_app, operator_app), entered with SET
-- SESSION AUTHORIZATION (helpers.psql's refused_as), so that session_user is
-- the login role as when a daemon or a person logs in. Every refusal must be
-- SQLSTATE 42501 with PostgreSQL's own message, so a test passes only when
-- the privilege system refused, not a constraint or a trigger further on.
-- 12_least_privilege proves the catalog says the same; this file proves the
-- server acts on it. Proves that, for each of the five (retention_app in
-- outbox_retention, 0013, too):
--   * history cannot be rewritten and invoices cannot be created or deleted:
--     INSERT, UPDATE and DELETE of real rows of billing.invoices,
--     billing.payments, billing.transactions, outbox.messages and
--     outbox.events are refused (so the charger writes no payment or event
--     directly; the relay neither creates nor deletes invoices nor touches
--     events, payments or transactions; the operator changes no row but
--     through its three functions);
--   * every INSERT, UPDATE, DELETE and TRUNCATE of every table of billing,
--     outbox and outbox_archive is refused (the reader changes nothing; a
--     role without USAGE on outbox_archive is refused by the schema);
--   * every function of the three schemas that the role may not execute
--     (12_least_privilege lists the ones it may) is refused when called:
--     the reader calls none of the mutating ones, the operator none but
--     replay, cancel and resolve;
--   * no sequence can be advanced (nextval) or set (setval);
--   * no function can be created in billing, outbox or outbox_archive, no
--     schema in the database;
--   * no role can climb: SET ROLE to another group, GRANT itself one,
--     disable outbox.events' trigger or switch triggers off with
--     session_replication_role are all refused.
BEGIN;
\ir helpers.psql

CREATE TEMP TABLE logins (login name, grp name, ord int);
INSERT INTO logins VALUES
    ('charger_app', 'outbox_charger', 1), ('relay_app', 'outbox_relay', 2),
    ('reader_app', 'outbox_reader', 3), ('operator_app', 'outbox_operator', 4),
    ('retention_app', 'outbox_retention', 5);
CREATE TEMP TABLE groups AS SELECT grp, ord FROM logins;

-- Real rows to aim at: a charge that succeeded, with its events, payment
-- and transaction (the invoice stays in_flight: I6 is checked at commit and
-- the test transaction never commits).
CREATE TEMP TABLE fx AS SELECT pg_temp.cg_message_in('charge', 'succeeded') AS charge;
INSERT INTO billing.payments (invoice_id, outbox_id, amount_cents, currency, gateway_charge_id)
SELECT invoice_id, id, amount_cents, currency, gateway_ref FROM outbox.messages WHERE id = (SELECT charge FROM fx);
INSERT INTO billing.transactions (invoice_id, outbox_id, kind, amount_cents, gateway_charge_id)
SELECT invoice_id, id, 'charge', amount_cents, gateway_ref FROM outbox.messages WHERE id = (SELECT charge FROM fx);
SELECT m.id AS charge, m.invoice_id AS invoice, i.customer_id AS customer
  FROM outbox.messages m JOIN billing.invoices i ON i.id = m.invoice_id WHERE m.id = (SELECT charge FROM fx) \gset

-- What each login role tries on those rows; each ends in pg_temp.undo, so a
-- statement that is not refused is rolled back and fails its test.
CREATE TEMP TABLE rewrites (rel regclass, what text, sql text, ord serial);
INSERT INTO rewrites (rel, what, sql) VALUES
    ('billing.invoices', 'create an invoice', format($$INSERT INTO billing.invoices (customer_id, amount_cents, amount_due_cents, currency, due_at)
                                              VALUES (%s, 500, 500, 'usd', now())$$, :customer)),
    ('billing.invoices', 'delete an invoice', format('DELETE FROM billing.invoices WHERE id = %s', :invoice)),
    ('billing.invoices', 'mark an invoice paid', format($$UPDATE billing.invoices SET status = 'paid', amount_due_cents = 0 WHERE id = %s$$, :invoice)),
    ('billing.payments', 'write a payment', format($$INSERT INTO billing.payments (invoice_id, outbox_id, amount_cents, currency, gateway_charge_id)
                                            VALUES (%s, %s, 1, 'usd', 'ch_forged')$$, :invoice, :charge)),
    ('billing.payments', 'change a payment', format('UPDATE billing.payments SET amount_cents = 1 WHERE outbox_id = %s', :charge)),
    ('billing.payments', 'delete a payment', format('DELETE FROM billing.payments WHERE outbox_id = %s', :charge)),
    ('billing.transactions', 'write a transaction', format($$INSERT INTO billing.transactions (invoice_id, outbox_id, kind, amount_cents)
                                                    VALUES (%s, %s, 'failure', 1)$$, :invoice, :charge)),
    ('billing.transactions', 'change a transaction', format('UPDATE billing.transactions SET amount_cents = 1 WHERE outbox_id = %s', :charge)),
    ('billing.transactions', 'delete a transaction', format('DELETE FROM billing.transactions WHERE outbox_id = %s', :charge)),
    ('outbox.messages', 'enqueue a charge', format($$INSERT INTO outbox.messages (kind, invoice_id, idempotency_key, state, amount_cents, currency)
                                            VALUES ('charge', %s, 'forged', 'pending', 1, 'usd')$$, :invoice)),
    ('outbox.messages', 'move a message', format($$UPDATE outbox.messages SET state = 'unknown' WHERE id = %s$$, :charge)),
    ('outbox.messages', 'delete a message', format('DELETE FROM outbox.messages WHERE id = %s', :charge)),
    ('outbox.events', 'write an event', format($$INSERT INTO outbox.events (message_id, from_state, to_state, actor)
                                          VALUES (%s, 'succeeded', 'pending', 'forged')$$, :charge)),
    ('outbox.events', 'rewrite an event', format($$UPDATE outbox.events SET detail = 'rewritten' WHERE message_id = %s$$, :charge)),
    ('outbox.events', 'delete an event', format('DELETE FROM outbox.events WHERE message_id = %s', :charge));

CREATE TEMP TABLE tables AS
SELECT c.oid::regclass AS rel, c.relname::text AS relname, n.nspname::text AS nsp
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('billing', 'outbox', 'outbox_archive') AND c.relkind IN ('r', 'p');
CREATE TEMP TABLE write_ops (op text, ord int);
INSERT INTO write_ops VALUES ('INSERT', 1), ('UPDATE', 2), ('DELETE', 3), ('TRUNCATE', 4);

CREATE TEMP TABLE seqs AS
SELECT c.oid::regclass AS seq, c.relname::text AS relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('billing', 'outbox', 'outbox_archive') AND c.relkind = 'S';

-- Every function of the three schemas that the login role's group may not
-- execute (helpers.psql's list, not the catalog: a stray GRANT makes its call
-- below succeed, or fail otherwise, and the test fail), with a call of it
-- (NULL arguments: the privilege is checked before the body runs, and
-- trigger functions are refused before "can only be called as triggers").
CREATE TEMP TABLE forbidden_calls AS
SELECT l.login, l.ord, p.oid::regprocedure AS func, p.proname::text AS name,
       format('SELECT %I.%I(%s)', n.nspname, p.proname,
              (SELECT coalesce(string_agg(format('NULL::%s', format_type(t, NULL)), ', ' ORDER BY i), '')
                 FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a (t, i))) AS call
  FROM logins l, pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('billing', 'outbox', 'outbox_archive')
   AND p.oid NOT IN (SELECT func FROM pg_temp.cg_may_execute() WHERE role = l.grp);

SELECT plan((
      (SELECT count(*) FROM logins CROSS JOIN rewrites)                   -- real rows
    + (SELECT count(*) FROM logins CROSS JOIN tables CROSS JOIN write_ops) -- every write
    + (SELECT count(*) FROM forbidden_calls)                              -- functions
    + 2 * (SELECT count(*) FROM logins CROSS JOIN seqs)                   -- sequences
    + 4 * (SELECT count(*) FROM logins)                                   -- CREATE
    + (SELECT count(*) FROM logins l CROSS JOIN groups g
        WHERE NOT pg_has_role(l.login, g.grp, 'MEMBER'))                  -- SET ROLE
    + 3 * (SELECT count(*) FROM logins)                                   -- GRANT, triggers off
)::int);

-- 1. History and invoices, on real rows.
SELECT pg_temp.refused_as(l.login, w.sql || format('; SELECT pg_temp.undo(%L)', w.what),
           format('permission denied for table %s', c.relname),
           format('%s cannot %s (%s, 42501)', l.login, w.what, w.rel))
  FROM logins l CROSS JOIN rewrites w JOIN pg_class c ON c.oid = w.rel ORDER BY l.ord, w.ord;

-- 2. Every write on every table.
SELECT pg_temp.refused_as(l.login, pg_temp.write_sql(o.op, t.rel),
           CASE WHEN has_schema_privilege(l.login, t.nsp, 'USAGE') THEN format('permission denied for table %s', t.relname)
                ELSE format('permission denied for schema %s', t.nsp) END,
           format('%s cannot %s %s (42501)', l.login, o.op, t.rel))
  FROM logins l CROSS JOIN tables t CROSS JOIN write_ops o ORDER BY l.ord, t.rel::text, o.ord;

-- 3. Every function it may not execute.
SELECT pg_temp.refused_as(f.login, f.call, format('permission denied for function %s', f.name),
           format('%s cannot execute %s (42501)', f.login, f.func))
  FROM forbidden_calls f ORDER BY f.ord, f.func::text;

-- 4. Sequences.
SELECT pg_temp.refused_as(l.login, format('SELECT nextval(%L)', s.seq), format('permission denied for sequence %s', s.relname),
           format('%s cannot draw an id from %s with nextval (42501)', l.login, s.seq))
  FROM logins l CROSS JOIN seqs s ORDER BY l.ord, s.seq::text;
SELECT pg_temp.refused_as(l.login, format('SELECT setval(%L, 1)', s.seq), format('permission denied for sequence %s', s.relname),
           format('%s cannot reset %s with setval (42501)', l.login, s.seq))
  FROM logins l CROSS JOIN seqs s ORDER BY l.ord, s.seq::text;

-- 5. Creating objects (CREATE TABLE in both schemas: 05_roles).
SELECT pg_temp.refused_as(l.login,
           format('CREATE FUNCTION %I.cg_intruder() RETURNS int LANGUAGE sql AS ''SELECT 1''', s.nsp),
           format('permission denied for schema %s', s.nsp),
           format('%s cannot create a function in schema %s (42501)', l.login, s.nsp))
  FROM logins l CROSS JOIN (VALUES ('billing'), ('outbox'), ('outbox_archive')) s (nsp) ORDER BY l.ord, s.nsp;
SELECT pg_temp.refused_as(l.login, 'CREATE SCHEMA cg_intruder',
           format('permission denied for database %s', current_database()),
           format('%s cannot create a schema of its own (42501)', l.login))
  FROM logins l ORDER BY l.ord;

-- 6. Climbing.
SELECT pg_temp.refused_as(l.login, format('SET ROLE %I', g.grp), format('permission denied to set role "%s"', g.grp),
           format('%s cannot SET ROLE %s (42501)', l.login, g.grp))
  FROM logins l CROSS JOIN groups g WHERE NOT pg_has_role(l.login, g.grp, 'MEMBER') ORDER BY l.ord, g.ord;
SELECT pg_temp.refused_as(l.login, format('GRANT %I TO %I', g.grp, l.login),
           format('must have admin option on role "%s"', g.grp),
           format('%s cannot grant itself %s (42501)', l.login, g.grp))
  FROM logins l JOIN groups g ON g.ord = l.ord % 5 + 1 ORDER BY l.ord;
SELECT pg_temp.refused_as(l.login, 'ALTER TABLE outbox.events DISABLE TRIGGER events_append_only',
           'must be owner of table events',
           format('%s cannot disable outbox.events'' append-only trigger (42501)', l.login))
  FROM logins l ORDER BY l.ord;
SELECT pg_temp.refused_as(l.login, 'SET session_replication_role = replica',
           'permission denied to set parameter "session_replication_role"',
           format('%s cannot switch triggers off with session_replication_role = replica (42501)', l.login))
  FROM logins l ORDER BY l.ord;

SELECT * FROM finish();
ROLLBACK;
