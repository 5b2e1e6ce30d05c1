-- 0012: the row guards check a transition without running a query.
--
-- messages_guard and invoices_guard run once per row written: up to five
-- times per charge (enqueue, claim, record, the email's release, claim and
-- send). Each looked its move up in outbox.transitions with a query, and in
-- a trigger every query pays for an executor of its own: profiled on the
-- enqueue, the guards were about three quarters of the server's CPU
-- (docs/performance.md). Now the legal moves are a constant array in each
-- guard, 'kind:from>to' ('kind:>to' for a creation), generated below from
-- outbox.transitions, which stays the one list people read and the tests
-- check: tests/db/02_transitions tries every ordered pair of states against
-- it, and tests/db/14_fast_guards checks that each guard's array is exactly
-- the table. A migration that changes outbox.transitions must run this
-- generation again (outbox.regenerate_guards()). The email-parent check
-- (CG007) now runs its query only for emails: as one IF condition with the
-- row's kind, it was a query for every charge too.
--
-- check_in_flight (I6, at commit, once per changed row) reads the invoice
-- and counts its live charges in one query instead of two.

CREATE FUNCTION outbox.regenerate_guards() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $regen$
DECLARE
    moves text;  -- 'kind:from>to' of every legal move, as an array literal
BEGIN
    SELECT quote_literal(array_agg(kind || ':' || coalesce(from_state, '') || '>' || to_state
                                   ORDER BY kind, from_state NULLS FIRST, to_state)::text) || '::text[]'
      INTO moves FROM outbox.transitions;
    EXECUTE replace($guard$
CREATE OR REPLACE FUNCTION outbox.messages_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    allowed CONSTANT text[] := @TRANSITIONS@;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT (NEW.kind || ':>' || NEW.state) = ANY (allowed) THEN
            RAISE EXCEPTION 'outbox message of kind % cannot be created in state %', NEW.kind, NEW.state
                USING ERRCODE = 'CG001', HINT = 'See SELECT * FROM outbox.transitions.';
        END IF;
        IF NEW.attempts <> 0 OR NEW.claim_token IS NOT NULL OR NEW.lease_owner IS NOT NULL
           OR NEW.lease_expires_at IS NOT NULL OR NEW.gateway_ref IS NOT NULL THEN
            RAISE EXCEPTION 'a new outbox message starts unclaimed: no attempts, claim, lease or gateway reference'
                USING ERRCODE = 'CG003';
        END IF;
        -- two IFs: a condition with a subquery is one query, run for every
        -- row; only an email's insert needs it
        IF NEW.kind = 'email' AND NEW.parent_id IS NOT NULL THEN
            IF NOT EXISTS (SELECT 1 FROM outbox.messages p
                            WHERE p.id = NEW.parent_id AND p.kind = 'charge'
                              AND p.invoice_id = NEW.invoice_id) THEN
                RAISE EXCEPTION 'an email''s parent_id must be a charge of the same invoice (parent %, invoice %)',
                    NEW.parent_id, NEW.invoice_id USING ERRCODE = 'CG007';
            END IF;
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

    IF NOT (NEW.kind || ':' || OLD.state || '>' || NEW.state) = ANY (allowed) THEN
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
$guard$, '@TRANSITIONS@', moves);
    EXECUTE replace($guard$
CREATE OR REPLACE FUNCTION billing.invoices_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    allowed CONSTANT text[] := @TRANSITIONS@;
BEGIN
    IF NOT ('invoice:' || OLD.status || '>' || NEW.status) = ANY (allowed) THEN
        RAISE EXCEPTION 'illegal transition of invoice %: % -> %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'CG001', HINT = 'See SELECT * FROM outbox.transitions WHERE kind = ''invoice''.';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
$guard$, '@TRANSITIONS@', moves);
END
$regen$;
REVOKE EXECUTE ON FUNCTION outbox.regenerate_guards() FROM PUBLIC;

SELECT outbox.regenerate_guards();

CREATE OR REPLACE FUNCTION outbox.check_in_flight() RETURNS trigger
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
    -- one query, not two: this runs once per changed row at every commit
    SELECT i.status,
           (SELECT count(*) FROM outbox.messages m
             WHERE m.invoice_id = inv AND m.kind = 'charge'
               AND m.state IN ('pending', 'submitting', 'unknown', 'dead'))
      INTO st, live
      FROM billing.invoices i WHERE i.id = inv;
    IF (st = 'in_flight') <> (live = 1) THEN
        RAISE EXCEPTION 'invoice % is % with % live charge row(s): an invoice is in_flight exactly when it has one live charge (invariant I6)', inv, st, live
            USING ERRCODE = 'CG006';
    END IF;
    RETURN NULL;
END
$$;
