-- 0013: retention: settled outbox rows move to outbox_archive, in short
-- transactions that never wait for the relay (docs/operations.md
-- "Retention", docs/schema.md "The archive").
--
-- A move, never an erasure:
--   * outbox_archive.messages and .events have the live tables' columns and
--     are append-only (CG012), for everyone, in every replication mode: a
--     payment's outbox row and every event stay readable for good;
--   * a settled message may leave outbox.messages only once an identical
--     copy is in outbox_archive.messages (CG011); an event may leave
--     outbox.events only from inside outbox.archive_settled and only once an
--     identical copy is in outbox_archive.events (CG008 otherwise, exactly
--     as before: outbox.events stays append-only for every other statement);
--   * billing.payments.outbox_id and billing.transactions.outbox_id were
--     foreign keys to outbox.messages, which would forbid the move. They
--     become a check at write time that the row exists in outbox.messages
--     (what the foreign key checked, with the same lock), and the delete
--     guard above keeps it true afterwards: live or archived, never gone.
-- The relay never waits: archive_settled takes only terminal charges whose
-- emails are all terminal too (no relay function locks or updates a
-- terminal row), with FOR UPDATE SKIP LOCKED, and a family with any row it
-- cannot lock at once stays for the next call.
-- SQLSTATEs added: CG011 a settled message deleted without its archive
-- copy; CG012 a change to the archive other than an INSERT.

CREATE SCHEMA outbox_archive;
REVOKE ALL ON SCHEMA outbox_archive FROM PUBLIC;

-- LIKE copies the columns in order, with their types and NOT NULL; no
-- identity, default, CHECK or trigger of the live tables (the rows were
-- checked when they were written; here they are only kept).
CREATE TABLE outbox_archive.messages (LIKE outbox.messages, PRIMARY KEY (id));
CREATE TABLE outbox_archive.events (LIKE outbox.events, PRIMARY KEY (id));
-- An invoice with archived history can no more be deleted than one with
-- live rows.
ALTER TABLE outbox_archive.messages
    ADD CONSTRAINT archive_messages_invoice_fkey FOREIGN KEY (invoice_id) REFERENCES billing.invoices (id);
CREATE INDEX archive_messages_invoice_idx ON outbox_archive.messages (invoice_id);
CREATE INDEX archive_messages_parent_idx ON outbox_archive.messages (parent_id)
    WHERE parent_id IS NOT NULL;
CREATE INDEX archive_events_message_idx ON outbox_archive.events (message_id, id);
COMMENT ON TABLE outbox_archive.messages IS
    'settled outbox.messages rows moved by outbox.archive_settled, unchanged; append-only';
COMMENT ON TABLE outbox_archive.events IS
    'the outbox.events rows of archived messages, unchanged; append-only';

-- How many rows of each kind and state were archived, kept by a trigger on
-- every archive insert, so that counts (metrics_snapshot, outbox.summary)
-- add the archive without scanning it. A cache, not history: not
-- append-only (the trigger updates it); only the owner writes it.
CREATE TABLE outbox_archive.counts (
    kind     text NOT NULL,
    state    text NOT NULL,
    archived bigint NOT NULL CHECK (archived >= 0),
    PRIMARY KEY (kind, state)
);
COMMENT ON TABLE outbox_archive.counts IS
    'rows in outbox_archive.messages per kind and state, kept by a trigger';

CREATE FUNCTION outbox.archive_count() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO outbox_archive.counts AS c (kind, state, archived)
    SELECT n.kind, n.state, count(*) FROM new_rows n GROUP BY n.kind, n.state
    ON CONFLICT (kind, state) DO UPDATE SET archived = c.archived + EXCLUDED.archived;
    RETURN NULL;
END
$$;
CREATE TRIGGER archive_count AFTER INSERT ON outbox_archive.messages
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.archive_count();

CREATE FUNCTION outbox.archive_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only (% refused)', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'CG012';
END
$$;
CREATE TRIGGER archive_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON outbox_archive.messages
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.archive_append_only();
CREATE TRIGGER archive_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON outbox_archive.events
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.archive_append_only();
-- like events_append_only (0009): whatever session_replication_role says
ALTER TABLE outbox_archive.messages ENABLE ALWAYS TRIGGER archive_append_only;
ALTER TABLE outbox_archive.events ENABLE ALWAYS TRIGGER archive_append_only;
ALTER TABLE outbox_archive.messages ENABLE ALWAYS TRIGGER archive_count;

------------------------------------------------------------------------------
-- payments and transactions: outbox_id exists when written
------------------------------------------------------------------------------

ALTER TABLE billing.payments DROP CONSTRAINT payments_outbox_id_fkey;
ALTER TABLE billing.transactions DROP CONSTRAINT transactions_outbox_id_fkey;

-- What the dropped foreign keys checked, as their RI triggers did it: the
-- row exists in outbox.messages, locked FOR KEY SHARE until the writer
-- commits (a concurrent delete waits, then finds the reference). As the
-- table's owner, like an RI check, so no writer needs to read the outbox.
CREATE FUNCTION outbox.outbox_row_exists() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- NULL passes, as with a foreign key (the columns are NOT NULL here;
    -- the benchmark's baseline schema drops that)
    IF NEW.outbox_id IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM outbox.messages m WHERE m.id = NEW.outbox_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'insert or update on table "%" violates its outbox row check', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (outbox_id)=(%s) is not present in table "outbox.messages".',
                                  NEW.outbox_id);
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER payments_outbox_row AFTER INSERT OR UPDATE OF outbox_id ON billing.payments
    FOR EACH ROW EXECUTE FUNCTION outbox.outbox_row_exists();
CREATE CONSTRAINT TRIGGER transactions_outbox_row AFTER INSERT OR UPDATE OF outbox_id ON billing.transactions
    FOR EACH ROW EXECUTE FUNCTION outbox.outbox_row_exists();

------------------------------------------------------------------------------
-- Leaving the live tables: only with an identical copy in the archive
------------------------------------------------------------------------------

-- SECURITY DEFINER (both guards): whoever deletes, the archive is read;
-- the deleter needs no right on it.
CREATE OR REPLACE FUNCTION outbox.messages_no_live_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF OLD.state NOT IN ('succeeded', 'declined', 'failed', 'cancelled', 'sent') THEN
        RAISE EXCEPTION 'outbox message % is live (%): only settled rows may be deleted (archived)', OLD.id, OLD.state
            USING ERRCODE = 'CG005';
    END IF;
    -- jsonb compares every column by name: a column the archive lacks, or
    -- any value that differs, refuses the delete
    IF NOT EXISTS (SELECT 1 FROM outbox_archive.messages a
                    WHERE a.id = OLD.id AND to_jsonb(a) = to_jsonb(OLD)) THEN
        RAISE EXCEPTION 'outbox message % is settled but not archived: it may leave outbox.messages only once an identical copy is in outbox_archive.messages', OLD.id
            USING ERRCODE = 'CG011', HINT = 'Run db/archive (outbox.archive_settled) instead.';
    END IF;
    RETURN OLD;
END
$$;

-- outbox.events: UPDATE and TRUNCATE are refused as before; so is every
-- DELETE statement, unless it runs inside outbox.archive_settled (which
-- sets outbox.archiving for its own call only), and then each deleted row
-- must have its identical copy in outbox_archive.events. Anyone can set
-- outbox.archiving: the row check is the guard, the setting only keeps the
-- old answer (CG008 for the statement, even one matching no row) for
-- every DELETE that is not a move.
CREATE OR REPLACE FUNCTION outbox.events_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('outbox.archiving', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'outbox.events is append-only (% refused)', TG_OP USING ERRCODE = 'CG008';
END
$$;

CREATE FUNCTION outbox.events_delete_only_archived() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM outbox_archive.events a
                    WHERE a.id = OLD.id AND to_jsonb(a) = to_jsonb(OLD)) THEN
        RAISE EXCEPTION 'outbox.events is append-only (DELETE refused)'
            USING ERRCODE = 'CG008',
                  DETAIL = format('Event %s has no identical copy in outbox_archive.events.', OLD.id);
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER events_delete_only_archived BEFORE DELETE ON outbox.events
    FOR EACH ROW EXECUTE FUNCTION outbox.events_delete_only_archived();
ALTER TABLE outbox.events ENABLE ALWAYS TRIGGER events_delete_only_archived;

------------------------------------------------------------------------------
-- The job
------------------------------------------------------------------------------

-- The scan of archive_settled and oldest_settled: terminal charges by the
-- time of their last change. One index entry per charge, written when it
-- settles.
CREATE INDEX messages_settled_idx ON outbox.messages (updated_at, id)
    WHERE kind = 'charge' AND state IN ('succeeded', 'declined', 'failed', 'cancelled');

-- Move at most p_limit terminal charges last changed before
-- p_settled_before, each with all its emails (which must be terminal too:
-- a charge whose email is still live stays), and all their events, from
-- the live tables to outbox_archive, in the caller's transaction (one
-- call: one short transaction). Rows another transaction holds are
-- skipped, never waited for; so is a family any of whose rows is held.
-- The one lock it may wait for is the KEY SHARE its archive insert takes
-- on the invoice (the archive's foreign key), behind a charger that holds
-- that invoice FOR UPDATE for its own short transaction: lock_timeout
-- bounds that wait, so a queue never forms behind this call.
-- Returns the number of messages moved (charges and emails).
CREATE FUNCTION outbox.archive_settled(p_settled_before timestamptz, p_limit integer DEFAULT 1000)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET outbox.archiving = 'on' SET lock_timeout = '2s' AS $$
DECLARE
    charges bigint[];
    family  bigint[];
    emails  bigint[];
    moved   integer;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 100000 THEN
        RAISE EXCEPTION 'archive_settled: limit must be 1..100000, not %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_settled_before IS NULL THEN
        RAISE EXCEPTION 'archive_settled: the cutoff (settled before) must be given'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- terminal charges old enough with no live email, oldest first
    SELECT array_agg(c.id) INTO charges FROM (
        SELECT m.id FROM outbox.messages m
         WHERE m.kind = 'charge' AND m.state IN ('succeeded', 'declined', 'failed', 'cancelled')
           AND m.updated_at < p_settled_before
           AND NOT EXISTS (SELECT 1 FROM outbox.messages e
                            WHERE e.parent_id = m.id AND e.state NOT IN ('sent', 'cancelled'))
         ORDER BY m.updated_at, m.id
         LIMIT p_limit
           FOR UPDATE OF m SKIP LOCKED) c;
    IF charges IS NULL THEN
        RETURN 0;
    END IF;

    -- their emails, terminal ones only (a terminal email never changes
    -- again); a family whose emails are not all locked here stays whole.
    -- Counted per charge with GROUP BY: one pass, whatever the batch size.
    WITH locked AS (
        SELECT e.id, e.parent_id FROM outbox.messages e
         WHERE e.parent_id = ANY (charges) AND e.state IN ('sent', 'cancelled')
           FOR UPDATE SKIP LOCKED
    ), locked_n AS (
        SELECT l.parent_id, count(*) AS n FROM locked l GROUP BY l.parent_id
    ), all_n AS (
        SELECT e.parent_id, count(*) AS n FROM outbox.messages e
         WHERE e.parent_id = ANY (charges) GROUP BY e.parent_id
    ), complete AS (
        SELECT c.id FROM unnest(charges) AS c (id)
          LEFT JOIN all_n a ON a.parent_id = c.id
          LEFT JOIN locked_n ln ON ln.parent_id = c.id
         WHERE coalesce(a.n, 0) = coalesce(ln.n, 0)
    )
    SELECT (SELECT array_agg(id) FROM complete),
           (SELECT array_agg(l.id) FROM locked l JOIN complete c ON c.id = l.parent_id)
      INTO charges, emails;
    IF charges IS NULL THEN
        RETURN 0;
    END IF;
    family := charges || coalesce(emails, '{}');

    INSERT INTO outbox_archive.messages
    SELECT * FROM outbox.messages m WHERE m.id = ANY (family) ORDER BY m.id;
    INSERT INTO outbox_archive.events
    SELECT * FROM outbox.events e WHERE e.message_id = ANY (family) ORDER BY e.id;
    DELETE FROM outbox.events e WHERE e.message_id = ANY (family);
    -- emails first: they point at their charge
    DELETE FROM outbox.messages m WHERE m.id = ANY (coalesce(emails, '{}'));
    DELETE FROM outbox.messages m WHERE m.id = ANY (charges);
    GET DIAGNOSTICS moved = ROW_COUNT;
    RETURN moved + coalesce(cardinality(emails), 0);
END
$$;
COMMENT ON FUNCTION outbox.archive_settled(timestamptz, integer) IS
    'move at most p_limit terminal charges changed before p_settled_before, with their terminal emails and all events, to outbox_archive; skips locked rows; returns messages moved';

-- The oldest terminal charge still in outbox.messages (last changed at),
-- NULL when none: how far behind retention is, for db/archive's progress.
CREATE FUNCTION outbox.oldest_settled() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT min(m.updated_at) FROM outbox.messages m
     WHERE m.kind = 'charge' AND m.state IN ('succeeded', 'declined', 'failed', 'cancelled')
$$;

------------------------------------------------------------------------------
-- Counts that include the archive
------------------------------------------------------------------------------

-- The gauges count every row ever written per kind and state, archived
-- ones included: retention must not look like rows vanishing from a
-- stacked graph. Live states are never archived, so their counts and the
-- due age are unchanged.
CREATE OR REPLACE FUNCTION outbox.metrics_snapshot()
RETURNS TABLE (kind text, state text, count bigint, oldest_due_age double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH allowed (kind, state) AS (
        VALUES ('charge', 'pending'), ('charge', 'submitting'), ('charge', 'succeeded'),
               ('charge', 'declined'), ('charge', 'failed'), ('charge', 'unknown'),
               ('charge', 'dead'), ('charge', 'cancelled'),
               ('email', 'waiting'), ('email', 'pending'), ('email', 'submitting'),
               ('email', 'sent'), ('email', 'cancelled'), ('email', 'dead')
    ), counted AS (
        -- oldest_due_age: for pending rows, seconds since the oldest one
        -- that is due became due (not_before); rows waiting out a backoff
        -- are not late. 0 when none is due.
        SELECT m.kind, m.state, count(*) AS n,
               extract(epoch FROM now() - min(m.not_before)
                                           FILTER (WHERE m.state = 'pending' AND m.not_before <= now()))
                   AS due_age
          FROM outbox.messages m
         GROUP BY m.kind, m.state
    )
    SELECT k.kind, k.state, coalesce(c.n, 0) + coalesce(a.archived, 0),
           coalesce(c.due_age, 0)::double precision
      FROM (SELECT a.kind, a.state FROM allowed a UNION SELECT c2.kind, c2.state FROM counted c2
            UNION SELECT a2.kind, a2.state FROM outbox_archive.counts a2) k
      LEFT JOIN counted c ON c.kind = k.kind AND c.state = k.state
      LEFT JOIN outbox_archive.counts a ON a.kind = k.kind AND a.state = k.state
     ORDER BY k.kind, k.state
$$;
COMMENT ON FUNCTION outbox.metrics_snapshot() IS
    'per kind and state: count, live and archived (zero included) and, for pending rows, seconds since the oldest due one became due';

-- outbox.summary keeps its columns (count, oldest_age, oldest_id: live
-- rows) and adds archived: how many of that kind and state are in
-- outbox_archive; a pair with archived rows only shows count 0.
CREATE OR REPLACE VIEW outbox.summary AS
SELECT coalesce(s.kind, a.kind) AS kind, coalesce(s.state, a.state) AS state,
       coalesce(s.count, 0) AS count, s.oldest_age, s.oldest_id,
       coalesce(a.archived, 0) AS archived
  FROM (SELECT DISTINCT ON (m.kind, m.state)
               m.kind, m.state,
               count(*) OVER (PARTITION BY m.kind, m.state) AS count,
               now() - m.updated_at AS oldest_age,
               m.id AS oldest_id
          FROM outbox.messages m
         ORDER BY m.kind, m.state, m.updated_at, m.id) s
  FULL JOIN outbox_archive.counts a ON a.kind = s.kind AND a.state = s.state
 ORDER BY 1,
          array_position(ARRAY['waiting', 'pending', 'submitting', 'unknown', 'dead',
                               'succeeded', 'declined', 'failed', 'sent', 'cancelled'],
                         coalesce(s.state, a.state));
COMMENT ON VIEW outbox.summary IS
    'per kind and state: count of live rows, age of the oldest (now() - min(updated_at)) and its id, and how many were archived';

------------------------------------------------------------------------------
-- Who may do what
------------------------------------------------------------------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'outbox_retention') THEN
        CREATE ROLE outbox_retention NOLOGIN;
    END IF;
END
$$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA billing, outbox FROM PUBLIC;
-- USAGE alone gives nothing; like the other groups it reaches billing and
-- outbox, and acts only through its two functions.
GRANT USAGE ON SCHEMA billing, outbox TO outbox_retention;
GRANT EXECUTE ON FUNCTION outbox.archive_settled(timestamptz, integer), outbox.oldest_settled()
    TO outbox_retention;
GRANT USAGE ON SCHEMA outbox_archive TO outbox_reader;
GRANT SELECT ON outbox_archive.messages, outbox_archive.events, outbox_archive.counts TO outbox_reader;
