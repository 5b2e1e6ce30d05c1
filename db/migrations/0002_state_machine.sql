-- 0002: the state machine of PROTOCOL.md, enforced by the database.
--
-- outbox.transitions is the single list of legal moves; a trigger refuses
-- every other one, so neither a buggy relay nor a hasty operator can move a
-- settled charge back. Every change of state is written to outbox.events in
-- the same transaction. SQLSTATEs raised here (see docs/schema.md):
--   CG001 illegal transition        CG002 a fixed-for-life column changed
--   CG003 claim rules broken        CG004 a settled row was modified
--   CG005 a live row was deleted    CG006 invariant I6 broken
--   CG007 an email's parent is not a charge of its invoice
--   CG008 outbox.events is append-only

CREATE TABLE outbox.transitions (
    kind       text NOT NULL CHECK (kind IN ('charge', 'email', 'invoice')),
    from_state text,  -- NULL: creation
    to_state   text NOT NULL,
    meaning    text NOT NULL,
    CONSTRAINT transitions_unique UNIQUE NULLS NOT DISTINCT (kind, from_state, to_state)
);

INSERT INTO outbox.transitions (kind, from_state, to_state, meaning) VALUES
 ('charge', NULL,         'pending',    'charger enqueued the invoice'),
 ('charge', 'pending',    'submitting', 'relay claimed the row; committed before any byte is sent'),
 ('charge', 'pending',    'cancelled',  'operator cancelled before submission'),
 ('charge', 'submitting', 'succeeded',  'gateway charged'),
 ('charge', 'submitting', 'declined',   'gateway declined the card'),
 ('charge', 'submitting', 'failed',     'gateway refused before acting: not charged'),
 ('charge', 'submitting', 'unknown',    'ambiguous answer, or the lease expired: maybe charged'),
 ('charge', 'submitting', 'pending',    'proven not executed (no connection, 429): same key, later'),
 ('charge', 'submitting', 'dead',       'gateway says the request itself is wrong: needs a person'),
 ('charge', 'unknown',    'succeeded',  'lookup (or operator evidence) found the charge'),
 ('charge', 'unknown',    'declined',   'lookup (or operator evidence) found a decline'),
 ('charge', 'unknown',    'failed',     'lookup found no charge after the settle window'),
 ('charge', 'unknown',    'dead',       'lookup schedule exhausted: needs a person'),
 ('charge', 'dead',       'unknown',    'operator replay: look it up again (never a new POST)'),
 ('charge', 'dead',       'succeeded',  'operator resolved with the gateway charge id'),
 ('charge', 'dead',       'declined',   'operator resolved with evidence'),
 ('charge', 'dead',       'failed',     'operator resolved with evidence: not charged'),
 ('email',  NULL,         'waiting',    'charger wrote the notification with its charge'),
 ('email',  'waiting',    'pending',    'the charge was recorded: send with the outcome''s template'),
 ('email',  'waiting',    'cancelled',  'the charge ended without a message for it'),
 ('email',  'pending',    'submitting', 'relay claimed the email'),
 ('email',  'pending',    'cancelled',  'operator cancelled'),
 ('email',  'submitting', 'sent',       'SMTP server accepted it'),
 ('email',  'submitting', 'pending',    'send failed or lease expired: retry (at-least-once)'),
 ('email',  'submitting', 'dead',       'permanent failure or retries exhausted: needs a person'),
 ('email',  'dead',       'pending',    'operator replay'),
 ('email',  'dead',       'cancelled',  'operator cancelled'),
 ('invoice', 'open',      'in_flight',  'charger enqueued a charge'),
 ('invoice', 'open',      'void',       'the shop voided it'),
 ('invoice', 'open',      'paid',       'settled outside chargeguard'),
 ('invoice', 'open',      'failed',     'a person gave up on it'),
 ('invoice', 'in_flight', 'paid',       'the charge succeeded'),
 ('invoice', 'in_flight', 'open',       'declined or failed: retry later with a new charge row'),
 ('invoice', 'in_flight', 'failed',     'declined or failed and the retry schedule is exhausted'),
 ('invoice', 'failed',    'open',       'a person decided to try again'),
 ('invoice', 'failed',    'void',       'a person voided it');

-- Who made a change: the login role, plus what the daemon says it is.
CREATE FUNCTION outbox.current_actor() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT session_user::text
        || coalesce(' (' || nullif(current_setting('outbox.actor', true), '') || ')', '')
$$;

CREATE FUNCTION outbox.messages_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT EXISTS (SELECT 1 FROM outbox.transitions t
                       WHERE t.kind = NEW.kind AND t.from_state IS NULL AND t.to_state = NEW.state) THEN
            RAISE EXCEPTION 'outbox message of kind % cannot be created in state %', NEW.kind, NEW.state
                USING ERRCODE = 'CG001', HINT = 'See SELECT * FROM outbox.transitions.';
        END IF;
        IF NEW.attempts <> 0 OR NEW.claim_token IS NOT NULL OR NEW.lease_owner IS NOT NULL
           OR NEW.lease_expires_at IS NOT NULL OR NEW.gateway_ref IS NOT NULL THEN
            RAISE EXCEPTION 'a new outbox message starts unclaimed: no attempts, claim, lease or gateway reference'
                USING ERRCODE = 'CG003';
        END IF;
        IF NEW.kind = 'email' AND NEW.parent_id IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM outbox.messages p
                WHERE p.id = NEW.parent_id AND p.kind = 'charge' AND p.invoice_id = NEW.invoice_id) THEN
            RAISE EXCEPTION 'an email''s parent_id must be a charge of the same invoice (parent %, invoice %)',
                NEW.parent_id, NEW.invoice_id USING ERRCODE = 'CG007';
        END IF;
        NEW.updated_at := now();
        RETURN NEW;
    END IF;

    IF NEW.id <> OLD.id OR NEW.kind <> OLD.kind OR NEW.invoice_id <> OLD.invoice_id
       OR NEW.parent_id IS DISTINCT FROM OLD.parent_id
       OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key
       OR NEW.amount_cents IS DISTINCT FROM OLD.amount_cents
       OR NEW.currency IS DISTINCT FROM OLD.currency
       OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'outbox message %: id, kind, invoice, parent, idempotency key, amount, currency and created_at are fixed for life', OLD.id
            USING ERRCODE = 'CG002';
    END IF;

    IF NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NEW; -- nothing changes, not even updated_at
    END IF;
    IF NEW.state = OLD.state AND OLD.state IN ('succeeded', 'declined', 'failed', 'cancelled', 'sent') THEN
        RAISE EXCEPTION 'outbox message % is settled (%) and cannot change', OLD.id, OLD.state
            USING ERRCODE = 'CG004';
    END IF;
    -- attempts counts claims: it changes only by one, on entering submitting;
    -- an operator's replay of a dead email starts its tries over at 0
    IF NEW.attempts <> OLD.attempts
       AND NOT (NEW.state = 'submitting' AND OLD.state <> 'submitting')
       AND NOT (NEW.kind = 'email' AND OLD.state = 'dead' AND NEW.state = 'pending'
                AND NEW.attempts = 0) THEN
        RAISE EXCEPTION 'outbox message %: attempts changes only when the row is claimed', OLD.id
            USING ERRCODE = 'CG003';
    END IF;

    IF NEW.state IS NOT DISTINCT FROM OLD.state THEN
        -- Fencing: a claimed row keeps its token and owner until it leaves
        -- submitting; only the lease may be extended (heartbeat).
        IF OLD.state = 'submitting' AND (NEW.claim_token IS DISTINCT FROM OLD.claim_token
                                         OR NEW.lease_owner IS DISTINCT FROM OLD.lease_owner) THEN
            RAISE EXCEPTION 'outbox message %: a claimed row keeps its claim token and lease owner', OLD.id
                USING ERRCODE = 'CG003';
        END IF;
        NEW.updated_at := now();
        RETURN NEW;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM outbox.transitions t
                   WHERE t.kind = NEW.kind AND t.from_state = OLD.state AND t.to_state = NEW.state) THEN
        RAISE EXCEPTION 'illegal transition of outbox message % (%): % -> %', OLD.id, OLD.kind, OLD.state, NEW.state
            USING ERRCODE = 'CG001', HINT = 'See SELECT * FROM outbox.transitions.';
    END IF;
    IF NEW.state = 'submitting' THEN
        IF NEW.claim_token IS NOT DISTINCT FROM OLD.claim_token THEN
            RAISE EXCEPTION 'outbox message %: a claim needs a fresh claim token', OLD.id USING ERRCODE = 'CG003';
        END IF;
        IF NEW.attempts <> OLD.attempts + 1 THEN
            RAISE EXCEPTION 'outbox message %: a claim counts exactly one more attempt', OLD.id USING ERRCODE = 'CG003';
        END IF;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER messages_guard BEFORE INSERT OR UPDATE ON outbox.messages
    FOR EACH ROW EXECUTE FUNCTION outbox.messages_guard();

-- Events: one statement-level trigger per operation, reading the transition
-- tables, so a batch of 500 rows costs one INSERT ... SELECT.
CREATE FUNCTION outbox.events_for_inserts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO outbox.events (message_id, from_state, to_state, actor, detail)
    SELECT n.id, NULL, n.state, outbox.current_actor(),
           nullif(current_setting('outbox.detail', true), '')
    FROM new_rows n ORDER BY n.id;
    RETURN NULL;
END
$$;

CREATE FUNCTION outbox.events_for_updates() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO outbox.events (message_id, from_state, to_state, actor, detail)
    SELECT n.id, o.state, n.state, outbox.current_actor(),
           coalesce(nullif(current_setting('outbox.detail', true), ''),
                    CASE WHEN n.last_error IS DISTINCT FROM o.last_error THEN n.last_error END)
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE n.state <> o.state ORDER BY n.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_events_insert AFTER INSERT ON outbox.messages
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.events_for_inserts();
CREATE TRIGGER messages_events_update AFTER UPDATE ON outbox.messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.events_for_updates();

CREATE FUNCTION outbox.messages_no_live_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF OLD.state NOT IN ('succeeded', 'declined', 'failed', 'cancelled', 'sent') THEN
        RAISE EXCEPTION 'outbox message % is live (%): only settled rows may be deleted (archived)', OLD.id, OLD.state
            USING ERRCODE = 'CG005';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER messages_no_live_delete BEFORE DELETE ON outbox.messages
    FOR EACH ROW EXECUTE FUNCTION outbox.messages_no_live_delete();

-- TRUNCATE fires no row triggers: refuse it outright (retention deletes
-- settled rows, which the trigger above allows).
CREATE FUNCTION outbox.messages_no_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'outbox.messages cannot be truncated: it may hold live rows (delete settled rows instead)'
        USING ERRCODE = 'CG005';
END
$$;
CREATE TRIGGER messages_no_truncate BEFORE TRUNCATE ON outbox.messages
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.messages_no_truncate();

CREATE FUNCTION outbox.events_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'outbox.events is append-only (% refused)', TG_OP USING ERRCODE = 'CG008';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON outbox.events
    FOR EACH STATEMENT EXECUTE FUNCTION outbox.events_append_only();

-- Invoices move only along outbox.transitions (kind 'invoice').
CREATE FUNCTION billing.invoices_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM outbox.transitions t
                   WHERE t.kind = 'invoice' AND t.from_state = OLD.status AND t.to_state = NEW.status) THEN
        RAISE EXCEPTION 'illegal transition of invoice %: % -> %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'CG001', HINT = 'See SELECT * FROM outbox.transitions WHERE kind = ''invoice''.';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER invoices_guard BEFORE UPDATE OF status ON billing.invoices
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION billing.invoices_guard();

-- I6: an invoice is in_flight exactly when it has one live charge row.
-- Checked at commit, after every statement of the transaction has run.
CREATE FUNCTION outbox.check_in_flight() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    inv  bigint;
    st   text;
    live integer;
BEGIN
    -- one function for both tables; NEW differs between them
    IF TG_TABLE_NAME = 'invoices' THEN
        inv := NEW.id;
    ELSE
        inv := NEW.invoice_id;
    END IF;
    SELECT status INTO st FROM billing.invoices WHERE id = inv;
    SELECT count(*) INTO live FROM outbox.messages
     WHERE invoice_id = inv AND kind = 'charge' AND state IN ('pending', 'submitting', 'unknown', 'dead');
    IF (st = 'in_flight') <> (live = 1) THEN
        RAISE EXCEPTION 'invoice % is % with % live charge row(s): an invoice is in_flight exactly when it has one live charge (invariant I6)', inv, st, live
            USING ERRCODE = 'CG006';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER invoices_i6_insert AFTER INSERT ON billing.invoices
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status = 'in_flight')
    EXECUTE FUNCTION outbox.check_in_flight();
CREATE CONSTRAINT TRIGGER invoices_i6_update AFTER UPDATE OF status ON billing.invoices
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status AND 'in_flight' IN (OLD.status, NEW.status))
    EXECUTE FUNCTION outbox.check_in_flight();
CREATE CONSTRAINT TRIGGER messages_i6_insert AFTER INSERT ON outbox.messages
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.kind = 'charge')
    EXECUTE FUNCTION outbox.check_in_flight();
CREATE CONSTRAINT TRIGGER messages_i6_update AFTER UPDATE OF state ON outbox.messages
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.kind = 'charge' AND
          (OLD.state IN ('pending', 'submitting', 'unknown', 'dead'))
          <> (NEW.state IN ('pending', 'submitting', 'unknown', 'dead')))
    EXECUTE FUNCTION outbox.check_in_flight();
