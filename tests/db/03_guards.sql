-- 03_guards: what the messages guard refuses besides illegal transitions,
-- and the audit trail in outbox.events.
--
-- Proves that:
--   * id, kind, invoice_id, parent_id, idempotency_key, amount_cents,
--     currency and created_at are fixed for life: changing any of them, in
--     any state of either kind, is refused with CG002;
--   * a claim (pending -> submitting) needs a fresh claim_token and exactly
--     attempts + 1 (CG003); a submitting row keeps its claim_token and
--     lease_owner while it stays submitting (CG003: fencing) but may extend
--     lease_expires_at (heartbeat);
--   * settled rows (succeeded, declined, failed, cancelled, sent) cannot
--     change any column (CG004; every column of the catalog is tried);
--   * a live row cannot be deleted (CG005); a settled one can, by the owner,
--     once its identical copy is in outbox_archive.messages (0013: deleting
--     without one is CG011, 15_retention);
--   * outbox.events refuses UPDATE, DELETE and TRUNCATE (CG008), even for a
--     superuser;
--   * events: one creation event (from_state NULL) per inserted row, one
--     event (from, to) per state change, none for other updates; the actor
--     is session_user plus ' (X)' from outbox.actor; the detail is
--     outbox.detail, else the new last_error.
-- TODO tests (reported as "not ok ... # TODO", counted as passing) show two
-- holes found here: a no-op UPDATE still rewrites a settled row's
-- updated_at, and nothing checks that an e-mail's parent is a charge of the
-- same invoice.
BEGIN;
\ir helpers.psql

-- Fixed-for-life columns, each with an UPDATE expression that changes it.
-- :other_invoice and :other_charge are replaced by existing rows, so no
-- foreign key could be what refuses the change.
CREATE TEMP TABLE fixed_cols (col text, change text, ord serial);
INSERT INTO fixed_cols (col, change) VALUES
    ('id',              'id + 1000000'),
    ('kind',            'CASE kind WHEN ''charge'' THEN ''email'' ELSE ''charge'' END'),
    ('invoice_id',      ':other_invoice'),
    ('parent_id',       ':other_charge'),
    ('idempotency_key', 'coalesce(idempotency_key, ''key'') || ''_changed'''),
    ('amount_cents',    'coalesce(amount_cents, 0) + 1'),
    ('currency',        'CASE WHEN currency = ''eur'' THEN ''usd'' ELSE ''eur'' END'),
    ('created_at',      'created_at - interval ''1 day''');

CREATE TEMP TABLE states (kind text, state text, settled boolean, ord serial);
INSERT INTO states (kind, state, settled) VALUES
    ('charge', 'pending', false), ('charge', 'submitting', false), ('charge', 'succeeded', true),
    ('charge', 'declined', true), ('charge', 'failed', true), ('charge', 'unknown', false),
    ('charge', 'dead', false), ('charge', 'cancelled', true),
    ('email', 'waiting', false), ('email', 'pending', false), ('email', 'submitting', false),
    ('email', 'sent', true), ('email', 'cancelled', true), ('email', 'dead', false);

-- Every other column of outbox.messages, from the catalog, with an UPDATE
-- expression that changes it to a value its CHECKs accept where possible.
CREATE TEMP TABLE other_cols AS
SELECT a.attname::text AS col, a.attnum AS ord,
       CASE
         WHEN a.attname = 'template'
           THEN 'CASE WHEN template = ''receipt'' THEN ''decline_notice'' ELSE ''receipt'' END'
         WHEN a.atttypid IN ('integer'::regtype, 'bigint'::regtype)
           THEN format('coalesce(%I, 0) + 1', a.attname)
         WHEN a.atttypid = 'text'::regtype
           THEN format('coalesce(%I, '''') || ''_changed''', a.attname)
         WHEN a.atttypid = 'uuid'::regtype
           THEN 'gen_random_uuid()'
         WHEN a.atttypid = 'timestamptz'::regtype
           THEN format('coalesce(%I, now()) + interval ''1 hour''', a.attname)
       END AS change
  FROM pg_attribute a
 WHERE a.attrelid = 'outbox.messages'::regclass AND a.attnum > 0 AND NOT a.attisdropped
   AND a.attname <> 'state' AND a.attname NOT IN (SELECT col FROM fixed_cols);

CREATE TEMP TABLE fx AS
SELECT pg_temp.cg_invoice('in_flight') AS other_invoice,
       pg_temp.cg_message_in('charge', 'pending') AS other_charge;

SELECT plan((
      (SELECT count(*) FROM states CROSS JOIN fixed_cols) + 1          -- fixed for life
    + 14                                                               -- claim rules
    + (SELECT count(*) FROM states s CROSS JOIN other_cols WHERE s.settled)
    + 2                                                                -- settled: no-op update
    + (SELECT count(*) FROM states) + 1                                -- deletes
    + 5                                                                -- events append-only
    + 15                                                               -- events content
    + 2                                                                -- e-mail parents
    + 7                                                                -- new rows start clean; attempts
    + 3                                                                -- email replay resets attempts
)::int);

-- 1. Fixed for life: every fixed column, in every state of both kinds.
CREATE FUNCTION pg_temp.fixed_tests()
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    m bigint;
    change text;
BEGIN
    FOR r IN SELECT s.kind, s.state, f.col, f.change FROM states s CROSS JOIN fixed_cols f
              ORDER BY s.ord, f.ord LOOP
        m := pg_temp.cg_message_in(r.kind, r.state);
        change := replace(replace(r.change, ':other_invoice', (SELECT other_invoice FROM fx)::text),
                          ':other_charge', (SELECT other_charge FROM fx)::text);
        RETURN NEXT throws_ok(format('UPDATE outbox.messages SET %I = %s WHERE id = %s', r.col, change, m),
            'CG002', NULL,
            format('changing %s of a %s row in state %s is refused (CG002): fixed for life', r.col, r.kind, r.state));
    END LOOP;
END
$$;
SELECT * FROM pg_temp.fixed_tests();

SELECT throws_ok(
    format('UPDATE outbox.messages SET parent_id = NULL WHERE id = %s', pg_temp.cg_message_in('email', 'waiting')),
    'CG002', NULL, 'detaching an e-mail from its charge (parent_id = NULL) is refused (CG002): fixed for life');

-- 2. Claim rules (CG003).
CREATE TEMP TABLE claim AS
SELECT pg_temp.cg_message_in('charge', 'pending') AS fresh,
       pg_temp.cg_move(pg_temp.cg_message_in('charge', 'submitting'), 'pending') AS backoff,
       pg_temp.cg_message_in('charge', 'submitting') AS held,
       pg_temp.cg_message_in('email', 'pending') AS email,
       pg_temp.cg_message_in('email', 'submitting') AS email_held;

SELECT throws_ok(
    format($$UPDATE outbox.messages SET state = 'submitting', attempts = attempts + 1,
                    lease_owner = 'relay-1', lease_expires_at = now() + interval '1 minute'
              WHERE id = %s$$, (SELECT fresh FROM claim)),
    'CG003', NULL, 'a claim that keeps claim_token (NULL) is refused (CG003): a claim needs a fresh token');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET state = 'submitting', attempts = attempts + 1,
                    lease_owner = 'relay-1', lease_expires_at = now() + interval '1 minute'
              WHERE id = %s$$, (SELECT backoff FROM claim)),
    'CG003', NULL, 'a re-claim after backoff that keeps the previous claim_token is refused (CG003)');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET state = 'submitting', claim_token = gen_random_uuid(),
                    lease_owner = 'relay-1', lease_expires_at = now() + interval '1 minute'
              WHERE id = %s$$, (SELECT fresh FROM claim)),
    'CG003', NULL, 'a claim that does not count an attempt is refused (CG003): exactly attempts + 1');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET state = 'submitting', claim_token = gen_random_uuid(), attempts = attempts + 2,
                    lease_owner = 'relay-1', lease_expires_at = now() + interval '1 minute'
              WHERE id = %s$$, (SELECT fresh FROM claim)),
    'CG003', NULL, 'a claim that counts two attempts is refused (CG003): exactly attempts + 1');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET state = 'submitting', attempts = attempts + 1,
                    lease_owner = 'relay-1', lease_expires_at = now() + interval '1 minute'
              WHERE id = %s$$, (SELECT email FROM claim)),
    'CG003', NULL, 'an e-mail claim without a fresh claim_token is refused (CG003)');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET state = 'submitting', claim_token = gen_random_uuid(),
                    lease_owner = 'relay-1', lease_expires_at = now() + interval '1 minute'
              WHERE id = %s$$, (SELECT email FROM claim)),
    'CG003', NULL, 'an e-mail claim that does not count an attempt is refused (CG003)');
SELECT lives_ok(
    format($$UPDATE outbox.messages SET state = 'submitting', claim_token = gen_random_uuid(), attempts = attempts + 1,
                    lease_owner = 'relay-1', lease_expires_at = now() + interval '1 minute'
              WHERE id = %s$$, (SELECT backoff FROM claim)),
    'a re-claim after backoff with a fresh claim_token and attempts + 1 is accepted');
SELECT is((SELECT attempts FROM outbox.messages WHERE id = (SELECT backoff FROM claim)), 2,
    'the re-claimed row counts its second attempt');

SELECT throws_ok(
    format('UPDATE outbox.messages SET claim_token = gen_random_uuid() WHERE id = %s', (SELECT held FROM claim)),
    'CG003', NULL, 'a submitting row cannot take a new claim_token while it stays submitting (CG003: fencing)');
SELECT throws_ok(
    format('UPDATE outbox.messages SET claim_token = NULL WHERE id = %s', (SELECT held FROM claim)),
    'CG003', NULL, 'a submitting row cannot drop its claim_token while it stays submitting (CG003)');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET lease_owner = 'relay-2' WHERE id = %s$$, (SELECT held FROM claim)),
    'CG003', NULL, 'a submitting row cannot change lease_owner while it stays submitting (CG003: fencing)');
SELECT throws_ok(
    format($$UPDATE outbox.messages SET lease_owner = 'relay-2' WHERE id = %s$$, (SELECT email_held FROM claim)),
    'CG003', NULL, 'a submitting e-mail cannot change lease_owner while it stays submitting (CG003)');
CREATE TEMP TABLE held_before AS
SELECT claim_token, lease_owner, lease_expires_at FROM outbox.messages WHERE id = (SELECT held FROM claim);
SELECT lives_ok(
    format($$UPDATE outbox.messages SET lease_expires_at = lease_expires_at + interval '2 minutes'
              WHERE id = %s$$, (SELECT held FROM claim)),
    'a submitting row may extend lease_expires_at (heartbeat)');
SELECT ok(
    (SELECT m.claim_token = b.claim_token AND m.lease_owner = b.lease_owner
            AND m.lease_expires_at = b.lease_expires_at + interval '2 minutes'
       FROM outbox.messages m, held_before b WHERE m.id = (SELECT held FROM claim)),
    'the heartbeat extended the lease and kept token and owner');

-- 3. Settled rows: every other column, in every settled state (CG004).
CREATE FUNCTION pg_temp.settled_tests()
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    m bigint;
BEGIN
    FOR r IN SELECT s.kind, s.state, c.col, c.change FROM states s CROSS JOIN other_cols c
              WHERE s.settled ORDER BY s.ord, c.ord LOOP
        m := pg_temp.cg_message_in(r.kind, r.state);
        RETURN NEXT throws_ok(format('UPDATE outbox.messages SET %I = %s WHERE id = %s', r.col, r.change, m),
            'CG004', NULL,
            format('changing %s of a %s row in state %s is refused (CG004): settled rows never change', r.col, r.kind, r.state));
    END LOOP;
END
$$;
SELECT * FROM pg_temp.settled_tests();

-- A row that settled yesterday: session_replication_role = replica (no
-- triggers) back-dates its updated_at.
CREATE TEMP TABLE settled_yesterday AS SELECT pg_temp.cg_message_in('charge', 'succeeded') AS id;
SET session_replication_role = replica;
UPDATE outbox.messages SET updated_at = now() - interval '1 day' WHERE id = (SELECT id FROM settled_yesterday);
SET session_replication_role = origin;
SELECT lives_ok(
    format('UPDATE outbox.messages SET state = state WHERE id = %s', (SELECT id FROM settled_yesterday)),
    'an UPDATE of a settled row that changes nothing is not refused');
SELECT is((SELECT updated_at FROM outbox.messages WHERE id = (SELECT id FROM settled_yesterday)),
    now() - interval '1 day', '... and leaves the settled row unchanged, updated_at included');

-- 4. Deletes: live rows refused (CG005), settled rows allowed for the owner
--    once archived (the copy is made here as archive_settled makes it).
CREATE TEMP TABLE deleted (id bigint);
CREATE FUNCTION pg_temp.delete_tests()
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    m bigint;
    q text;
BEGIN
    FOR r IN SELECT * FROM states ORDER BY settled, ord LOOP
        m := pg_temp.cg_message_in(r.kind, r.state);
        q := format('DELETE FROM outbox.messages WHERE id = %s', m);
        IF r.settled THEN
            INSERT INTO deleted VALUES (m);
            INSERT INTO outbox_archive.messages SELECT * FROM outbox.messages WHERE id = m;
            RETURN NEXT lives_ok(q, format('the owner may delete (archive) a %s row in state %s: it is settled and its copy archived', r.kind, r.state));
        ELSE
            RETURN NEXT throws_ok(q, 'CG005', NULL,
                format('deleting a %s row in state %s is refused (CG005): it is live', r.kind, r.state));
        END IF;
    END LOOP;
END
$$;
SELECT * FROM pg_temp.delete_tests();
SELECT is((SELECT count(*) FROM outbox.messages WHERE id IN (SELECT id FROM deleted)), 0::bigint,
    'the settled rows the owner deleted are gone');

-- 5. outbox.events is append-only, even for a superuser.
SELECT is(current_setting('is_superuser'), 'on', 'these tests run as a superuser');
SELECT throws_ok($$UPDATE outbox.events SET detail = 'rewritten'$$, 'CG008', NULL,
    'UPDATE of outbox.events is refused (CG008), even for a superuser');
SELECT throws_ok($$DELETE FROM outbox.events$$, 'CG008', NULL,
    'DELETE from outbox.events is refused (CG008), even for a superuser');
SELECT throws_ok($$DELETE FROM outbox.events WHERE false$$, 'CG008', NULL,
    'DELETE from outbox.events is refused (CG008) even when it matches no row');
SELECT throws_ok($$TRUNCATE outbox.events$$, 'CG008', NULL,
    'TRUNCATE of outbox.events is refused (CG008), even for a superuser');

-- 6. What the events say.
CREATE TEMP TABLE ev AS
SELECT pg_temp.cg_invoice('in_flight') AS inv1, pg_temp.cg_invoice('in_flight') AS inv2,
       pg_temp.cg_invoice('in_flight') AS inv3;
CREATE TEMP TABLE batch AS
WITH ins AS (
    INSERT INTO outbox.messages (kind, invoice_id, idempotency_key, state, amount_cents, currency)
    SELECT 'charge', i, 'batch_' || i, 'pending', 500, 'usd'
      FROM ev, unnest(ARRAY[inv1, inv2, inv3]) AS i
    RETURNING id
) SELECT id FROM ins;

SELECT bag_eq(
    $$SELECT message_id, from_state, to_state FROM outbox.events WHERE message_id IN (SELECT id FROM batch)$$,
    $$SELECT id, NULL::text AS from_state, 'pending'::text AS to_state FROM batch$$,
    'a 3-row INSERT writes exactly one creation event (from_state NULL) per row');

SELECT results_eq(
    format($$SELECT from_state, to_state FROM outbox.events WHERE message_id = %s ORDER BY id$$,
           pg_temp.cg_move(pg_temp.cg_move(pg_temp.cg_move(pg_temp.cg_move(pg_temp.cg_move(
               pg_temp.cg_charge(pg_temp.cg_invoice('in_flight')),
               'submitting'), 'unknown'), 'dead'), 'unknown'), 'succeeded')),
    $$VALUES (NULL::text, 'pending'::text), ('pending', 'submitting'), ('submitting', 'unknown'),
             ('unknown', 'dead'), ('dead', 'unknown'), ('unknown', 'succeeded')$$,
    'each state change writes one event (from, to), in order: the row''s history is its path');

SELECT lives_ok(
    format($$UPDATE outbox.messages SET state = CASE WHEN id = %s THEN state ELSE 'cancelled' END
              WHERE id IN (SELECT id FROM batch)$$, (SELECT min(id) FROM batch)),
    'a 3-row UPDATE that cancels two rows and leaves one pending');
SELECT bag_eq(
    $$SELECT message_id, from_state, to_state FROM outbox.events
       WHERE message_id IN (SELECT id FROM batch) AND from_state IS NOT NULL$$,
    $$SELECT id, 'pending'::text AS from_state, 'cancelled'::text AS to_state FROM batch WHERE id > (SELECT min(id) FROM batch)$$,
    'that UPDATE wrote one event per row whose state changed, none for the unchanged row');

-- (Fixtures are made in statements of their own: a query does not see the
-- events written by functions it calls.)
CREATE TEMP TABLE quiet AS
SELECT pg_temp.cg_message_in('charge', 'submitting') AS held,
       pg_temp.cg_message_in('charge', 'pending') AS pending,
       pg_temp.cg_message_in('charge', 'unknown') AS unknown;
CREATE TEMP TABLE events_before AS SELECT count(*) AS n FROM outbox.events;
UPDATE outbox.messages SET lease_expires_at = lease_expires_at + interval '1 minute'
 WHERE id = (SELECT held FROM quiet);
UPDATE outbox.messages SET not_before = now() + interval '1 minute' WHERE id = (SELECT pending FROM quiet);
UPDATE outbox.messages SET last_error = 'lookup timed out', not_before = now() + interval '5 minutes'
 WHERE id = (SELECT unknown FROM quiet);
SELECT is((SELECT count(*) FROM outbox.events), (SELECT n FROM events_before),
    'updates that keep the state (lease extension, not_before, last_error) write no event');

-- Actor: session_user, plus what the daemon says it is.
CREATE TEMP TABLE fixture (name text PRIMARY KEY, id bigint);
INSERT INTO fixture VALUES ('plain', pg_temp.cg_move(pg_temp.cg_message_in('charge', 'pending'), 'cancelled'));
SELECT set_config('outbox.actor', 'relay-7', true) IS NOT NULL AS set_actor \gset
INSERT INTO fixture VALUES ('relay-7 move', pg_temp.cg_move(pg_temp.cg_message_in('charge', 'pending'), 'submitting'));
INSERT INTO fixture VALUES ('relay-7 insert', pg_temp.cg_charge(pg_temp.cg_invoice('in_flight')));
SELECT set_config('outbox.actor', '', true) IS NOT NULL AS clear_actor \gset
INSERT INTO fixture VALUES ('empty actor', pg_temp.cg_move(pg_temp.cg_message_in('charge', 'pending'), 'cancelled'));

SELECT is((SELECT actor FROM outbox.events
            WHERE message_id = (SELECT id FROM fixture WHERE name = 'plain') AND to_state = 'cancelled'),
    session_user::text, 'without outbox.actor the actor is session_user');
SELECT is((SELECT actor FROM outbox.events
            WHERE message_id = (SELECT id FROM fixture WHERE name = 'relay-7 move') AND to_state = 'submitting'),
    session_user || ' (relay-7)', 'with outbox.actor = relay-7 the actor is session_user || '' (relay-7)''');
SELECT is((SELECT actor FROM outbox.events
            WHERE message_id = (SELECT id FROM fixture WHERE name = 'relay-7 insert') AND from_state IS NULL),
    session_user || ' (relay-7)', 'a creation event names the actor the same way');
SELECT is((SELECT actor FROM outbox.events
            WHERE message_id = (SELECT id FROM fixture WHERE name = 'empty actor') AND to_state = 'cancelled'),
    session_user::text, 'an empty outbox.actor adds nothing');

-- The actor is the login (session_user), not the group role nor the owner
-- the SECURITY DEFINER triggers run as: log in as charger_app (a member of
-- outbox_charger) and enqueue.
INSERT INTO fixture VALUES ('charger invoice', pg_temp.cg_invoice('open'));
SET SESSION AUTHORIZATION charger_app;
SELECT count(*) AS enqueued FROM outbox.enqueue_due(100000, false) \gset
RESET SESSION AUTHORIZATION;
SELECT is(
    (SELECT array_agg(DISTINCT e.actor) FROM outbox.events e JOIN outbox.messages m ON m.id = e.message_id
      WHERE m.invoice_id = (SELECT id FROM fixture WHERE name = 'charger invoice')),
    ARRAY['charger_app'], 'rows enqueued by the login charger_app name charger_app (session_user), not the function owner');

-- Detail: outbox.detail, else the new last_error.
SELECT set_config('outbox.detail', 'ticket 42: customer called', true) IS NOT NULL AS set_detail \gset
INSERT INTO fixture VALUES ('detail move', pg_temp.cg_move(pg_temp.cg_message_in('charge', 'pending'), 'cancelled'));
INSERT INTO fixture VALUES ('detail insert', pg_temp.cg_charge(pg_temp.cg_invoice('in_flight')));
INSERT INTO fixture VALUES ('detail and error', pg_temp.cg_message_in('charge', 'submitting'));
UPDATE outbox.messages SET state = 'pending', last_error = 'connect refused'
 WHERE id = (SELECT id FROM fixture WHERE name = 'detail and error');
SELECT set_config('outbox.detail', '', true) IS NOT NULL AS clear_detail \gset
INSERT INTO fixture VALUES ('error', pg_temp.cg_message_in('charge', 'submitting'));
UPDATE outbox.messages SET state = 'pending', last_error = 'connect refused'
 WHERE id = (SELECT id FROM fixture WHERE name = 'error');
INSERT INTO fixture VALUES ('no detail', pg_temp.cg_move(pg_temp.cg_message_in('charge', 'pending'), 'cancelled'));

SELECT is((SELECT detail FROM outbox.events
            WHERE message_id = (SELECT id FROM fixture WHERE name = 'detail move') AND to_state = 'cancelled'),
    'ticket 42: customer called', 'with outbox.detail set, a state change event carries it');
SELECT is((SELECT detail FROM outbox.events
            WHERE message_id = (SELECT id FROM fixture WHERE name = 'detail insert') AND from_state IS NULL),
    'ticket 42: customer called', 'with outbox.detail set, a creation event carries it');
SELECT is((SELECT detail FROM outbox.events
            WHERE message_id = (SELECT id FROM fixture WHERE name = 'detail and error')
              AND from_state = 'submitting' AND to_state = 'pending'),
    'ticket 42: customer called', 'outbox.detail wins over a new last_error');
SELECT is((SELECT detail FROM outbox.events
            WHERE message_id = (SELECT id FROM fixture WHERE name = 'error')
              AND from_state = 'submitting' AND to_state = 'pending'),
    'connect refused', 'without outbox.detail, the event carries the new last_error');
SELECT is((SELECT detail FROM outbox.events
            WHERE message_id = (SELECT id FROM fixture WHERE name = 'no detail') AND to_state = 'cancelled'),
    NULL::text, 'without outbox.detail and with last_error unchanged, the event has no detail');

-- 7. An email's parent must be a charge of the same invoice (CG007);
--    pg_temp.is_refused rolls the statement back whatever happens.
CREATE TEMP TABLE hole AS
SELECT pg_temp.cg_message_in('charge', 'pending') AS charge,
       pg_temp.cg_message_in('charge', 'pending') AS other_charge,
       pg_temp.cg_message_in('email', 'waiting') AS email;
SELECT ok(pg_temp.is_refused(format(
    $$INSERT INTO outbox.messages (kind, invoice_id, parent_id, state)
      SELECT 'email', invoice_id, %s, 'waiting' FROM outbox.messages WHERE id = %s$$,
    (SELECT other_charge FROM hole), (SELECT charge FROM hole))),
    'an e-mail whose parent is the charge of another invoice is refused');
SELECT ok(pg_temp.is_refused(format(
    $$INSERT INTO outbox.messages (kind, invoice_id, parent_id, state)
      SELECT 'email', invoice_id, id, 'waiting' FROM outbox.messages WHERE id = %s$$,
    (SELECT email FROM hole))),
    'an e-mail whose parent is an e-mail is refused');

-- 8. A new row starts unclaimed, and attempts only counts claims (CG003);
--    e-mail rows carry none of a charge's fields (23514).
CREATE TEMP TABLE fresh AS SELECT pg_temp.cg_invoice('in_flight') AS inv;
SELECT throws_ok(format($$INSERT INTO outbox.messages (kind, invoice_id, idempotency_key, state, amount_cents, currency, attempts)
                          VALUES ('charge', %s, 'k_attempts', 'pending', 100, 'usd', 7)$$, (SELECT inv FROM fresh)),
    'CG003', NULL, 'a charge created with attempts already counted is refused (CG003)');
SELECT throws_ok(format($$INSERT INTO outbox.messages (kind, invoice_id, idempotency_key, state, amount_cents, currency, claim_token)
                          VALUES ('charge', %s, 'k_token', 'pending', 100, 'usd', gen_random_uuid())$$, (SELECT inv FROM fresh)),
    'CG003', NULL, 'a charge created with a claim token is refused (CG003)');
SELECT throws_ok(format($$INSERT INTO outbox.messages (kind, invoice_id, idempotency_key, state, amount_cents, currency, lease_owner, lease_expires_at)
                          VALUES ('charge', %s, 'k_lease', 'pending', 100, 'usd', 'x', now())$$, (SELECT inv FROM fresh)),
    'CG003', NULL, 'a charge created with a lease is refused (CG003)');
SELECT throws_ok(format($$INSERT INTO outbox.messages (kind, invoice_id, idempotency_key, state, amount_cents, currency, gateway_ref)
                          VALUES ('charge', %s, 'k_ref', 'pending', 100, 'usd', 'ch_1')$$, (SELECT inv FROM fresh)),
    'CG003', NULL, 'a charge created with a gateway reference is refused (CG003)');
SELECT throws_ok(format('UPDATE outbox.messages SET attempts = 0 WHERE id = %s',
                        pg_temp.cg_message_in('charge', 'unknown')),
    'CG003', NULL, 'resetting attempts of an unclaimed row is refused (CG003): attempts only counts claims');
SELECT throws_ok(format('UPDATE outbox.messages SET attempts = attempts + 1 WHERE id = %s',
                        pg_temp.cg_message_in('charge', 'pending')),
    'CG003', NULL, 'counting an attempt without a claim is refused (CG003)');
SELECT throws_ok(format($$UPDATE outbox.messages SET amount_cents = 100 WHERE id = %s$$,
                        pg_temp.cg_message_in('email', 'waiting')),
    NULL, NULL, 'an e-mail row cannot carry an amount');

-- 9. An operator's replay of a dead email may start its tries over, and
--    only that.
CREATE TEMP TABLE dead_mail AS SELECT pg_temp.cg_message_in('email', 'dead') AS id;
SELECT throws_ok(format('UPDATE outbox.messages SET state = ''pending'', attempts = 5 WHERE id = %s',
                        (SELECT id FROM dead_mail)),
    'CG003', NULL, 'a dead email going back to pending may reset attempts to 0, to nothing else');
SELECT lives_ok(format('UPDATE outbox.messages SET state = ''pending'', attempts = 0 WHERE id = %s',
                       (SELECT id FROM dead_mail)),
    'a dead email going back to pending may start its tries over (attempts 0)');
SELECT throws_ok(format('UPDATE outbox.messages SET state = ''unknown'', attempts = 0 WHERE id = %s',
                        pg_temp.cg_message_in('charge', 'dead')),
    'CG003', NULL, 'a dead charge going back to unknown keeps its attempts (they count POSTs)');

SELECT * FROM finish();
ROLLBACK;
