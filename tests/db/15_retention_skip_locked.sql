-- 15_retention_skip_locked: outbox.archive_settled skips rows another
-- transaction holds, whole families with them, and takes them once it ends.
--
-- Sessions besides the test's own, by dblink, as in 09_relay_skip_locked:
--   setup:    commits the fixtures (three old declined charges: K1 with its
--             cancelled email E1, K2 with E2, K3 alone);
--   holder:   BEGIN; SELECT ... FOR UPDATE of K1 and of E2 (a DBA's open
--             psql; no relay function locks a settled row);
--   archiver: lock_timeout 2 s, autocommit: a call that waited for the
--             holder would fail instead of hanging the suite.
-- Proves that, while the holder's transaction is open, archive_settled
-- moves K3 at once and leaves K1, E1 (the charge is held) and K2, E2 (its
-- email is held) in outbox.messages, and that once it ends the next call
-- moves those four. Skipped, with the reason, without dblink.
BEGIN;
\ir helpers.psql

SELECT plan(5);

SELECT count(*) = 1 AS have_dblink FROM pg_available_extensions WHERE name = 'dblink' \gset
\if :have_dblink
CREATE EXTENSION dblink;

-- What one archive_settled call by the archiver returns; NULL, with a
-- warning, when it fails (a lock timeout: it waited).
CREATE FUNCTION pg_temp.archive_remote()
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    SELECT t.n INTO n FROM dblink('cg_archiver',
        $q$SELECT outbox.archive_settled(now() - interval '1 hour', 10)$q$) AS t (n integer);
    RETURN n;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'archive_settled failed: %', SQLERRM;
    RETURN NULL;
END
$$;

CREATE FUNCTION pg_temp.archived()
RETURNS bigint[] LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM outbox_archive.messages
     WHERE id BETWEEN 990201 AND 990303
$$;

SELECT pg_temp.connect_sessions('cg_setup', 'cg_holder', 'cg_archiver') AS connected \gset
\if :connected
-- Three declined charges of open invoices, settled two days ago.
SELECT dblink_exec('cg_setup', $fixture$
    INSERT INTO billing.customers (id, email, gateway_customer_id)
    VALUES (990001, 'archive@example.com', 'cus_archive');
    INSERT INTO billing.invoices (id, customer_id, amount_cents, amount_due_cents, currency, due_at, status)
    SELECT 990100 + n, 990001, 1000, 1000, 'usd', now() - interval '3 days', 'in_flight'
      FROM generate_series(1, 3) n;
    INSERT INTO outbox.messages (id, kind, invoice_id, idempotency_key, state, amount_cents, currency)
    SELECT 990200 + n, 'charge', 990100 + n, 'cg_archive_locked_' || n, 'pending', 1000, 'usd'
      FROM generate_series(1, 3) n;
    INSERT INTO outbox.messages (id, kind, invoice_id, parent_id, state)
    SELECT 990300 + n, 'email', 990100 + n, 990200 + n, 'waiting' FROM generate_series(1, 2) n;
    UPDATE outbox.messages SET state = 'submitting', attempts = 1, claim_token = gen_random_uuid(),
           lease_owner = 'setup', lease_expires_at = now() + interval '1 minute'
     WHERE id BETWEEN 990201 AND 990203;
    UPDATE outbox.messages SET state = 'declined' WHERE id BETWEEN 990201 AND 990203;
    UPDATE outbox.messages SET state = 'cancelled' WHERE id IN (990301, 990302);
    UPDATE billing.invoices SET status = 'open' WHERE id BETWEEN 990101 AND 990103;
    SET session_replication_role = replica;
    UPDATE outbox.messages SET updated_at = now() - interval '2 days' WHERE id BETWEEN 990201 AND 990303;
    SET session_replication_role = origin;
$fixture$) = 'SET' AS fixture_committed \gset

SELECT dblink_exec('cg_holder', 'BEGIN') = 'BEGIN' AS holder_began \gset
SELECT count(*) AS held FROM dblink('cg_holder',
    'SELECT id FROM outbox.messages WHERE id IN (990201, 990302) FOR UPDATE') AS t (id bigint) \gset
SELECT dblink_exec('cg_archiver', $$SET lock_timeout = '2s'$$) = 'SET' AS archiver_ready \gset

SELECT is(:held::integer, 2, 'test setup: another transaction holds K1 (a settled charge) and E2 (a settled email)');
SELECT is(pg_temp.archive_remote(), 1,
    'archive_settled moves the one family nobody holds (K3) at once, without waiting');
SELECT is(pg_temp.archived(), '{990203}'::bigint[],
    'K1 and E1 (the charge is held) and K2 and E2 (its email is held) stay live, whole');

SELECT dblink_exec('cg_holder', 'ROLLBACK') = 'ROLLBACK' AS holder_ended \gset
SELECT is(pg_temp.archive_remote(), 4,
    'once the other transaction ends, the next call moves the four rows it skipped: skipped, not lost');
SELECT is(pg_temp.archived(), '{990201,990202,990203,990301,990302}'::bigint[],
    'every settled fixture is archived');
SELECT count(dblink_disconnect(c)) AS disconnected FROM unnest(dblink_get_connections()) c \gset
\else
SELECT skip('a second session cannot connect with dblink (see the warning): SKIP LOCKED is left to the system test retention', 5);
\endif
\else
SELECT skip('dblink is not installed on this server: SKIP LOCKED is left to the system test retention', 5);
\endif

SELECT * FROM finish();
ROLLBACK;
