-- 09_relay_skip_locked: the relay's claims skip rows another transaction
-- holds (FOR UPDATE SKIP LOCKED), and take them once it ends.
--
-- This needs sessions besides the test's own, so it uses dblink (a
-- contrib extension, created inside the test transaction and gone with
-- it). Rows must be committed to be seen by other sessions: the fixtures
-- are committed by a setup session and removed by it at the end (their
-- creation events stay, as outbox.events is append-only; tests/run gives
-- every file a database of its own). This session never touches those
-- rows, so it takes no lock the others could wait for.
--   holder:  BEGIN; SELECT ... FOR UPDATE of K1, E1, S1 (a stuck relay, a
--            DBA's open psql);
--   claimer: one transaction with lock_timeout 2 s, so a claim that waited
--            for the holder would fail instead of hanging the suite.
-- Proves that, while the holder's transaction is open, claim_charges,
-- claim_emails and expire_leases take the other due rows (K2, E2, S2) at
-- once, and that once it ends they take K1, E1 and S1. When dblink is not
-- installed on the server, or a second session cannot connect, every test
-- is reported as skipped, with the reason.
BEGIN;
\ir helpers.psql

SELECT plan(7);

SELECT count(*) = 1 AS have_dblink FROM pg_available_extensions WHERE name = 'dblink' \gset
\if :have_dblink
CREATE EXTENSION dblink;

-- The ids a statement run by session p_conn (inside its transaction)
-- returns, sorted ('{}' for none); NULL, with a warning, when it fails (a
-- lock timeout, say), the failure rolled back to a savepoint so that the
-- session's next statement still runs.
CREATE FUNCTION pg_temp.remote_ids(p_conn text, p_sql text)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    PERFORM dblink_exec(p_conn, 'SAVEPOINT cg_try');
    BEGIN
        SELECT coalesce(array_agg(t.id ORDER BY t.id), '{}') INTO ids
          FROM dblink(p_conn, p_sql) AS t (id bigint);
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING '% failed: %', p_conn, SQLERRM;
        PERFORM dblink_exec(p_conn, 'ROLLBACK TO SAVEPOINT cg_try');
        RETURN NULL;
    END;
    PERFORM dblink_exec(p_conn, 'RELEASE SAVEPOINT cg_try');
    RETURN ids;
END
$$;

SELECT pg_temp.connect_sessions('cg_setup', 'cg_holder', 'cg_claimer') AS connected \gset
\if :connected
-- K1, K2: pending charges due (K1 first). E1, E2: receipts due (E1 first),
-- of succeeded charges of paid invoices. S1, S2: charges whose lease ended
-- (S1 first). Explicit ids far above the identity sequences.
SELECT dblink_exec('cg_setup', $fixture$
    INSERT INTO billing.customers (id, email, gateway_customer_id)
    VALUES (990001, 'lock@example.com', 'cus_lock');
    INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at, status)
    SELECT 990100 + n, 990001, 1000, 1000, 'usd', now() - interval '1 day', 'in_flight'
      FROM generate_series(1, 6) n;
    INSERT INTO outbox.messages (id, kind, invoice_id, idempotency_key, state, amount_cents, currency)
    SELECT 990200 + n, 'charge', 990100 + n, 'cg_skip_locked_' || n, 'pending', 1000, 'usd'
      FROM generate_series(1, 6) n;
    -- 990201 K1, 990202 K2: due 2 h and 1 h ago
    UPDATE outbox.messages SET not_before = now() - interval '1 hour' * (3 - (id - 990200))
     WHERE id IN (990201, 990202);
    -- 990203, 990204: succeeded, invoices paid; their receipts 990303 E1, 990304 E2
    UPDATE outbox.messages SET state = 'submitting', attempts = 1, claim_token = gen_random_uuid(),
           lease_owner = 'setup', lease_expires_at = now() + interval '1 minute'
     WHERE id BETWEEN 990203 AND 990206;
    UPDATE outbox.messages SET state = 'succeeded', gateway_ref = 'ch_skip_' || id
     WHERE id IN (990203, 990204);
    UPDATE billing.invoices SET amount_due_cents = 0, status = 'paid' WHERE id IN (990103, 990104);
    INSERT INTO outbox.messages (id, kind, invoice_id, parent_id, state)
    VALUES (990303, 'email', 990103, 990203, 'waiting'), (990304, 'email', 990104, 990204, 'waiting');
    UPDATE outbox.messages SET state = 'pending', template = 'receipt',
           not_before = now() - interval '1 hour' * (990305 - id)
     WHERE id IN (990303, 990304);
    -- 990205 S1, 990206 S2: leases ended 2 min and 1 min ago
    UPDATE outbox.messages SET lease_expires_at = now() - interval '1 minute' * (990207 - id)
     WHERE id IN (990205, 990206);
$fixture$) = 'UPDATE 2' AS fixture_committed \gset

SELECT dblink_exec('cg_holder', 'BEGIN') = 'BEGIN' AS holder_began \gset
SELECT count(*) AS held FROM dblink('cg_holder',
    'SELECT id FROM outbox.messages WHERE id IN (990201, 990303, 990205) FOR UPDATE') AS t (id bigint) \gset
SELECT dblink_exec('cg_claimer', 'BEGIN') = 'BEGIN' AND
       dblink_exec('cg_claimer', $$SET LOCAL lock_timeout = '2s'$$) = 'SET' AS claimer_began \gset

SELECT is(pg_temp.remote_ids('cg_claimer',
              'SELECT id FROM outbox.messages WHERE id IN (990201, 990303, 990205) FOR UPDATE SKIP LOCKED'),
          '{}'::bigint[],
          'test setup: another transaction holds K1 (a due charge), E1 (a due receipt) and S1 (an expired lease)');
SELECT is(pg_temp.remote_ids('cg_claimer', $$SELECT id FROM outbox.claim_charges('relay-skip', 30, 10)$$),
          '{990202}'::bigint[],
          'claim_charges skips the due charge another transaction holds (K1, the oldest) and takes K2 at once, without waiting');
SELECT is(pg_temp.remote_ids('cg_claimer', $$SELECT id FROM outbox.claim_emails('relay-skip', 30, 10)$$),
          '{990304}'::bigint[],
          'claim_emails skips the due e-mail another transaction holds (E1) and takes E2 at once');
SELECT is(pg_temp.remote_ids('cg_claimer', 'SELECT id FROM outbox.expire_leases(10, 60)'),
          '{990206}'::bigint[],
          'expire_leases skips the expired row another transaction holds (S1) and expires S2 at once');

SELECT dblink_exec('cg_holder', 'ROLLBACK') = 'ROLLBACK' AS holder_ended \gset
SELECT is(pg_temp.remote_ids('cg_claimer', $$SELECT id FROM outbox.claim_charges('relay-skip', 30, 10)$$),
          '{990201}'::bigint[],
          'once the other transaction ends, claim_charges takes the charge it held (K1): skipped, not lost');
SELECT is(pg_temp.remote_ids('cg_claimer', $$SELECT id FROM outbox.claim_emails('relay-skip', 30, 10)$$),
          '{990303}'::bigint[],
          'once the other transaction ends, claim_emails takes the e-mail it held (E1)');
SELECT is(pg_temp.remote_ids('cg_claimer', 'SELECT id FROM outbox.expire_leases(10, 60)'),
          '{990205}'::bigint[],
          'once the other transaction ends, expire_leases expires the row it held (S1)');
SELECT dblink_exec('cg_claimer', 'ROLLBACK') = 'ROLLBACK' AS claimer_ended \gset

-- Put the committed fixtures away: settle the live rows and move them to
-- the archive (the only way out of outbox.messages since 0013; the
-- invoices stay, as their history does).
SELECT dblink_exec('cg_setup', $cleanup$
    UPDATE outbox.messages SET state = 'cancelled' WHERE id IN (990201, 990202, 990303, 990304);
    UPDATE outbox.messages SET state = 'failed' WHERE id IN (990205, 990206);
    UPDATE billing.invoices SET status = 'open' WHERE id IN (990101, 990102, 990105, 990106);
    DO $$ BEGIN PERFORM outbox.archive_settled('infinity', 100); END $$;
$cleanup$) = 'DO' AS fixture_removed \gset
SELECT count(dblink_disconnect(c)) AS disconnected FROM unnest(dblink_get_connections()) c \gset
\else
SELECT skip('a second session cannot connect with dblink (see the warning): SKIP LOCKED is left to the system tests', 7);
\endif
\else
SELECT skip('dblink is not installed on this server: SKIP LOCKED is left to the system tests', 7);
\endif

SELECT * FROM finish();
ROLLBACK;
