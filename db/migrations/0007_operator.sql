-- 0007: the DBA surface (CONTRACT.md "DBA surface"; docs/operations.md is
-- the runbook).
--
--   outbox.summary   counts and oldest age per kind and state
--   outbox.stuck     rows needing attention, oldest first, with why and
--                    what happens next
--   outbox.replay    unknown|dead charge -> unknown (look it up again now,
--                    never a new POST); dead email -> pending (re-send)
--   outbox.cancel    pending charge -> cancelled (its waiting emails too,
--                    its invoice in_flight -> failed); waiting, pending or
--                    dead email -> cancelled
--   outbox.resolve   unknown|dead charge -> succeeded|declined|failed, on
--                    a person's evidence from the gateway, with exactly the
--                    side effects the relay's record step has
--
-- The three functions are SECURITY DEFINER (the operator writes no table
-- directly), lock the row before deciding, refuse what would break an
-- invariant with SQLSTATE CG010 and a HINT saying what to do instead, and
-- have every change they make written to outbox.events with the login role
-- (session_user) followed by "(operator)" and the reason. The settings they
-- use for that (outbox.actor, outbox.detail) are scoped to the call by the
-- functions' SET clauses: nothing leaks into the caller's transaction.

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------

-- One row per (kind, state) present: how many, how old the oldest (by
-- updated_at: the time of its last change), and which row that is.
CREATE VIEW outbox.summary AS
SELECT s.kind, s.state, s.count, s.oldest_age, s.oldest_id
  FROM (SELECT DISTINCT ON (m.kind, m.state)
               m.kind, m.state,
               count(*) OVER (PARTITION BY m.kind, m.state) AS count,
               now() - m.updated_at AS oldest_age,
               m.id AS oldest_id
          FROM outbox.messages m
         ORDER BY m.kind, m.state, m.updated_at, m.id) s
 ORDER BY s.kind,
          array_position(ARRAY['waiting', 'pending', 'submitting', 'unknown', 'dead',
                               'succeeded', 'declined', 'failed', 'sent', 'cancelled'], s.state);
COMMENT ON VIEW outbox.summary IS
    'per kind and state: count, age of the oldest row (now() - min(updated_at)) and its id';

-- Rows needing attention, oldest first. Each message appears at most once
-- (the situations are told apart by state):
--   dead                        a person must act
--   unknown (charges)           the relay looks it up at not_before
--   submitting, lease expired   its relay died or stalled; the janitor takes it
--   pending, due > 5 min ago    no relay is draining the outbox, or it is stuck
--   waiting email, parent settled   a bug: nothing will ever release it
-- next_action_at: when the relay is due to act on its own (in the past: it
-- is late, is one running?), NULL when only a person can act.
CREATE VIEW outbox.stuck AS
WITH s AS (
    SELECT m.*, p.state AS parent_state,
           CASE
               WHEN m.state = 'dead' THEN 'dead'
               WHEN m.kind = 'charge' AND m.state = 'unknown' THEN 'unknown'
               WHEN m.state = 'submitting' AND m.lease_expires_at < now() THEN 'lease_expired'
               WHEN m.state = 'pending' AND m.not_before < now() - interval '5 minutes' THEN 'overdue'
               WHEN m.kind = 'email' AND m.state = 'waiting'
                    AND p.state IN ('succeeded', 'declined', 'failed', 'cancelled') THEN 'orphan'
           END AS situation
      FROM outbox.messages m
      LEFT JOIN outbox.messages p ON p.id = m.parent_id
     WHERE m.state IN ('dead', 'unknown', 'submitting', 'pending', 'waiting')
)
SELECT s.id, s.kind, s.invoice_id, s.state, s.attempts, s.failed_lookups,
       s.updated_at AS since,
       now() - s.updated_at AS age,
       CASE s.situation
           WHEN 'unknown' THEN s.not_before
           WHEN 'lease_expired' THEN s.lease_expires_at
           WHEN 'overdue' THEN s.not_before
       END AS next_action_at,
       CASE s.situation
           WHEN 'dead' THEN 'dead: ' || coalesce(s.last_error, 'no reason recorded')
           WHEN 'unknown' THEN
               format('maybe charged, outcome unknown (%s inconclusive lookup(s)): %s',
                      s.failed_lookups, coalesce(s.last_error, 'no reason recorded'))
           WHEN 'lease_expired' THEN
               format('lease of %s expired %s ago: the relay holding it died or stalled',
                      coalesce(s.lease_owner, '?'), date_trunc('second', now() - s.lease_expires_at))
           WHEN 'overdue' THEN
               format('due %s ago and not claimed: no relay running, or it is stopped or overloaded%s',
                      date_trunc('second', now() - s.not_before),
                      coalesce('; last error: ' || s.last_error, ''))
           WHEN 'orphan' THEN
               format('BUG: its charge %s is %s but this email was never released or cancelled',
                      s.parent_id, s.parent_state)
       END AS why,
       CASE
           WHEN s.situation = 'dead' AND s.kind = 'charge' THEN
               format('needs a person: find key %s / metadata[outbox_id]=%s at the gateway, then '
                      'outbox.resolve(%s, outcome, charge_id, reason); or outbox.replay(%s, reason) '
                      'to have it looked up again', s.idempotency_key, s.id, s.id, s.id)
           WHEN s.situation = 'dead' THEN
               format('needs a person: fix the cause (address, SMTP), then outbox.replay(%s, reason) '
                      'to re-send (same Message-ID), or outbox.cancel(%s, reason)', s.id, s.id)
           WHEN s.situation = 'unknown' AND s.not_before < now() - interval '5 minutes' THEN
               format('lookup overdue since %s: is a relay running? Never re-POSTed; '
                      'with evidence from the gateway: outbox.resolve(%s, ...)',
                      date_trunc('second', s.not_before), s.id)
           WHEN s.situation = 'unknown' THEN
               format('relay looks it up at %s (never a new POST); with evidence from the gateway: '
                      'outbox.resolve(%s, ...)', date_trunc('second', s.not_before), s.id)
           WHEN s.situation = 'lease_expired' AND s.kind = 'charge' THEN
               'a running relay''s janitor makes it unknown, then it is looked up (never re-POSTed); '
               'if it stays here, no relay is running: start one'
           WHEN s.situation = 'lease_expired' THEN
               'a running relay''s janitor puts it back to pending: re-sent, same Message-ID; '
               'if it stays here, no relay is running: start one'
           WHEN s.situation = 'overdue' AND s.kind = 'charge' THEN
               format('check the relay is up and its log ("refuses our API key", "lease lost"); '
                      'it sends this on its own; outbox.cancel(%s, reason) only if it must not be charged',
                      s.id)
           WHEN s.situation = 'overdue' THEN
               format('check the relay is up (and --smtp-url set) and its log; it sends this on its own; '
                      'outbox.cancel(%s, reason) if it must not be sent', s.id)
           WHEN s.situation = 'orphan' THEN
               format('nothing will release it: report a bug; outbox.cancel(%s, reason) closes it unsent',
                      s.id)
       END AS next_step
  FROM s
 WHERE s.situation IS NOT NULL
 ORDER BY s.updated_at, s.id;
COMMENT ON VIEW outbox.stuck IS
    'rows needing attention, oldest first: why, and what the relay (or a person) does next';

GRANT SELECT ON outbox.summary, outbox.stuck TO outbox_reader;

------------------------------------------------------------------------------
-- outbox.replay
------------------------------------------------------------------------------
CREATE FUNCTION outbox.replay(p_message_id bigint, p_reason text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET outbox.actor = 'operator'
SET outbox.detail = ''
AS $$
DECLARE
    m outbox.messages%ROWTYPE;
    why text := nullif(regexp_replace(p_reason, '^\s+|\s+$', '', 'g'), '');
BEGIN
    IF why IS NULL THEN
        RAISE EXCEPTION 'replay refused: a reason is required'
            USING ERRCODE = 'CG010',
                  HINT = 'It is written to outbox.events with your role, e.g. '
                         'SELECT outbox.replay(42, ''gateway outage INC-123 is over'').';
    END IF;
    SELECT * INTO m FROM outbox.messages WHERE id = p_message_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'replay refused: there is no outbox message %', coalesce(p_message_id::text, 'NULL')
            USING ERRCODE = 'CG010',
                  HINT = 'Take the id from outbox.stuck, or from outbox.messages by invoice_id.';
    END IF;
    IF m.state IN ('succeeded', 'declined', 'failed', 'cancelled', 'sent') THEN
        RAISE EXCEPTION 'replay refused: % % is %, settled: there is nothing to replay', m.kind, m.id, m.state
            USING ERRCODE = 'CG010',
                  HINT = CASE m.kind WHEN 'charge'
                         THEN 'Settled rows never move. A declined or failed invoice gets a new charge row '
                              'from the charger along its retry policy (billing.invoices.next_attempt_at).'
                         ELSE 'Settled rows never move.' END;
    END IF;
    IF m.state = 'pending' THEN
        RAISE EXCEPTION 'replay refused: % % is pending: replay is only for %', m.kind, m.id,
                CASE m.kind WHEN 'charge' THEN 'unknown or dead charges' ELSE 'dead emails' END
            USING ERRCODE = 'CG010',
                  HINT = format('The relay sends it on its own (not before %s); to stop it, use outbox.cancel.',
                                m.not_before);
    END IF;
    IF m.state = 'submitting' THEN
        RAISE EXCEPTION 'replay refused: % % is submitting: replay is only for %', m.kind, m.id,
                CASE m.kind WHEN 'charge' THEN 'unknown or dead charges' ELSE 'dead emails' END
            USING ERRCODE = 'CG010',
                  HINT = format('Relay %s holds it until %s; if it dies the janitor takes the row back. Wait.',
                                m.lease_owner, m.lease_expires_at);
    END IF;
    IF m.state = 'waiting' THEN
        RAISE EXCEPTION 'replay refused: email % is waiting for its charge %: replay is only for dead emails',
                m.id, m.parent_id
            USING ERRCODE = 'CG010',
                  HINT = 'It is released when its charge is recorded. If that charge is settled, this is a '
                         'bug (see outbox.stuck); outbox.cancel closes the email.';
    END IF;
    IF m.kind = 'email' AND m.state <> 'dead' THEN  -- no other state exists; never fall through
        RAISE EXCEPTION 'replay refused: email % is %', m.id, m.state USING ERRCODE = 'CG010';
    END IF;

    PERFORM set_config('outbox.actor', 'operator', true);
    PERFORM set_config('outbox.detail', 'replay: ' || why, true);

    IF m.kind = 'email' THEN
        -- its tries start over (--email-max-attempts more before dead again)
        UPDATE outbox.messages
           SET state = 'pending', not_before = now(), attempts = 0,
               last_error = format('replayed by %s: %s', session_user, why)
         WHERE id = m.id;
        RETURN format('email %s (invoice %s): dead -> pending; the relay sends it again now '
                      '(same Message-ID), with its tries starting over', m.id, m.invoice_id);
    END IF;

    -- A charge, unknown or dead: looked up again from the start of the
    -- lookup schedule. The claim token of a lookup in progress is dropped,
    -- so its answer is not recorded (the fresh lookup's is). Never pending:
    -- the POST may have been executed.
    UPDATE outbox.messages
       SET state = 'unknown', not_before = now(), failed_lookups = 0, claim_token = NULL,
           last_error = format('replayed by %s: %s', session_user, why)
     WHERE id = m.id;
    IF m.state = 'unknown' THEN
        -- no change of state: the trigger writes no event, so write it here
        INSERT INTO outbox.events (message_id, from_state, to_state, actor, detail)
        VALUES (m.id, 'unknown', 'unknown', outbox.current_actor(), 'replay: ' || why);
    END IF;
    RETURN format('charge %s (invoice %s): %s -> unknown; the relay looks it up now, lookup schedule '
                  'restarted (never a new POST)', m.id, m.invoice_id, m.state);
END
$$;

------------------------------------------------------------------------------
-- outbox.cancel
------------------------------------------------------------------------------
CREATE FUNCTION outbox.cancel(p_message_id bigint, p_reason text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET outbox.actor = 'operator'
SET outbox.detail = ''
AS $$
DECLARE
    m outbox.messages%ROWTYPE;
    why text := nullif(regexp_replace(p_reason, '^\s+|\s+$', '', 'g'), '');
    n_emails bigint;
BEGIN
    IF why IS NULL THEN
        RAISE EXCEPTION 'cancel refused: a reason is required'
            USING ERRCODE = 'CG010',
                  HINT = 'It is written to outbox.events with your role, e.g. '
                         'SELECT outbox.cancel(42, ''customer disputes invoice, ticket 881'').';
    END IF;
    SELECT * INTO m FROM outbox.messages WHERE id = p_message_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'cancel refused: there is no outbox message %', coalesce(p_message_id::text, 'NULL')
            USING ERRCODE = 'CG010',
                  HINT = 'Take the id from outbox.stuck, or from outbox.messages by invoice_id.';
    END IF;
    IF m.state IN ('succeeded', 'declined', 'failed', 'cancelled', 'sent') THEN
        RAISE EXCEPTION 'cancel refused: % % is %, settled: there is nothing to cancel', m.kind, m.id, m.state
            USING ERRCODE = 'CG010', HINT = 'Settled rows never move.';
    END IF;
    IF m.kind = 'charge' AND m.state IN ('submitting', 'unknown', 'dead') THEN
        RAISE EXCEPTION 'cancel refused: charge % is %: it may have been charged', m.id, m.state
            USING ERRCODE = 'CG010',
                  HINT = CASE m.state WHEN 'submitting'
                         THEN format('A relay is sending it (lease until %s): wait for its answer, or for the '
                                     'lookup once it is unknown, or use outbox.resolve with evidence then.',
                                     m.lease_expires_at)
                         ELSE 'Wait for the lookup, or use outbox.resolve with evidence from the gateway.' END;
    END IF;
    IF m.kind = 'email' AND m.state = 'submitting' THEN
        RAISE EXCEPTION 'cancel refused: email % is being sent (submitting)', m.id
            USING ERRCODE = 'CG010',
                  HINT = format('Wait: relay %s (lease until %s) records it sent, or puts it back pending or '
                                'dead; cancel it then if it is not sent.', m.lease_owner, m.lease_expires_at);
    END IF;

    PERFORM set_config('outbox.actor', 'operator', true);
    PERFORM set_config('outbox.detail', 'cancel: ' || why, true);

    IF m.kind = 'email' THEN  -- waiting, pending or dead
        UPDATE outbox.messages
           SET state = 'cancelled', last_error = format('cancelled by %s: %s', session_user, why)
         WHERE id = m.id;
        RETURN format('email %s (invoice %s): %s -> cancelled; it will not be sent', m.id, m.invoice_id, m.state);
    END IF;

    -- A pending charge, never sent: cancelled with its notifications, and
    -- its invoice leaves in_flight (I6 holds when this transaction commits).
    UPDATE outbox.messages
       SET state = 'cancelled', last_error = format('cancelled by %s: %s', session_user, why)
     WHERE id = m.id;
    WITH e AS (
        UPDATE outbox.messages
           SET state = 'cancelled', last_error = format('cancelled with charge %s by %s: %s', m.id, session_user, why)
         WHERE parent_id = m.id AND kind = 'email' AND state = 'waiting'
        RETURNING id
    )
    SELECT count(*) INTO n_emails FROM e;
    UPDATE billing.invoices SET status = 'failed' WHERE id = m.invoice_id;
    RETURN format('charge %s (invoice %s): pending -> cancelled, never sent; %s waiting email(s) cancelled; '
                  'invoice %s in_flight -> failed (set it open to charge it later, or void it)',
                  m.id, m.invoice_id, n_emails, m.invoice_id);
END
$$;

------------------------------------------------------------------------------
-- outbox.resolve
------------------------------------------------------------------------------
CREATE FUNCTION outbox.resolve(p_message_id bigint, p_outcome text, p_gateway_ref text, p_reason text,
                               p_retry_schedule double precision[] DEFAULT '{86400,259200,604800}')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET outbox.actor = 'operator'
SET outbox.detail = ''
AS $$
DECLARE
    m outbox.messages%ROWTYPE;
    why text := nullif(regexp_replace(p_reason, '^\s+|\s+$', '', 'g'), '');
    ref text := nullif(regexp_replace(p_gateway_ref, '^\s+|\s+$', '', 'g'), '');
    other record;
    inv billing.invoices%ROWTYPE;
    n_emails bigint;
    was text;
BEGIN
    IF why IS NULL THEN
        RAISE EXCEPTION 'resolve refused: a reason is required'
            USING ERRCODE = 'CG010',
                  HINT = 'It is written to outbox.events with your role, e.g. '
                         'SELECT outbox.resolve(42, ''succeeded'', ''ch_3Nx...'', ''found in Stripe dashboard'').';
    END IF;
    IF p_outcome IS NULL OR p_outcome NOT IN ('succeeded', 'declined', 'failed') THEN
        RAISE EXCEPTION 'resolve refused: the outcome must be succeeded, declined or failed, not %',
                coalesce(quote_literal(p_outcome), 'NULL')
            USING ERRCODE = 'CG010',
                  HINT = 'To have the relay look the charge up again instead, use outbox.replay.';
    END IF;
    IF p_outcome = 'succeeded' AND ref IS NULL THEN
        RAISE EXCEPTION 'resolve refused: succeeded needs the gateway''s charge id (p_gateway_ref)'
            USING ERRCODE = 'CG010',
                  HINT = 'Find the charge at the gateway (metadata[outbox_id] = the row id, or its '
                         'idempotency key) and pass its id, e.g. ''ch_...''.';
    END IF;
    IF p_retry_schedule IS NULL OR array_position(p_retry_schedule, NULL) IS NOT NULL
       OR EXISTS (SELECT 1 FROM unnest(p_retry_schedule) w WHERE NOT w > 0) THEN
        RAISE EXCEPTION 'resolve refused: the retry schedule must be an array of positive waits in seconds'
            USING ERRCODE = 'CG010',
                  HINT = 'Leave it out to use the default {86400,259200,604800}, pass the relay''s '
                         '--invoice-retry-schedule, or ''{}'' for no retry (a decline fails the invoice).';
    END IF;

    SELECT * INTO m FROM outbox.messages WHERE id = p_message_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'resolve refused: there is no outbox message %', coalesce(p_message_id::text, 'NULL')
            USING ERRCODE = 'CG010',
                  HINT = 'Take the id from outbox.stuck, or from outbox.messages by invoice_id.';
    END IF;
    IF m.kind <> 'charge' THEN
        RAISE EXCEPTION 'resolve refused: % % is an email, not a charge', m.kind, m.id
            USING ERRCODE = 'CG010',
                  HINT = 'Emails are re-sent with outbox.replay or dropped with outbox.cancel.';
    END IF;
    IF m.state = 'pending' THEN
        RAISE EXCEPTION 'resolve refused: charge % is pending: it was never sent, there is nothing to resolve', m.id
            USING ERRCODE = 'CG010', HINT = 'To stop it being sent, use outbox.cancel.';
    END IF;
    IF m.state = 'submitting' THEN
        RAISE EXCEPTION 'resolve refused: charge % is submitting: a relay holds it', m.id
            USING ERRCODE = 'CG010',
                  HINT = format('Wait for the relay''s answer, or for its lease to expire (%s) and the janitor '
                                'to make it unknown; resolve it then if the lookup does not.', m.lease_expires_at);
    END IF;
    IF m.state NOT IN ('unknown', 'dead') THEN
        RAISE EXCEPTION 'resolve refused: charge % is %, settled: there is nothing to resolve', m.id, m.state
            USING ERRCODE = 'CG010',
                  HINT = 'Settled rows never move; see billing.payments and billing.transactions for what was recorded.';
    END IF;

    IF ref IS NOT NULL THEN
        SELECT p.id AS payment_id, p.invoice_id, p.outbox_id INTO other
          FROM billing.payments p WHERE p.gateway_charge_id = ref;
        IF FOUND THEN
            RAISE EXCEPTION 'resolve refused: that charge (%) is already recorded for invoice % / row % (payment %)',
                    ref, other.invoice_id, other.outbox_id, other.payment_id
                USING ERRCODE = 'CG010',
                      HINT = 'One gateway charge pays one row: check billing.payments and the charge''s '
                             'metadata[outbox_id] at the gateway.';
        END IF;
        SELECT o.id, o.invoice_id, o.state INTO other
          FROM outbox.messages o WHERE o.gateway_ref = ref AND o.id <> m.id AND o.kind = 'charge'
         ORDER BY o.id LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'resolve refused: that charge (%) is already the gateway reference of invoice % / row % (%)',
                    ref, other.invoice_id, other.id, other.state
                USING ERRCODE = 'CG010',
                      HINT = 'One gateway charge belongs to one row: check the charge''s metadata[outbox_id] '
                             'at the gateway.';
        END IF;
        IF m.gateway_ref IS NOT NULL AND m.gateway_ref <> ref THEN
            RAISE EXCEPTION 'resolve refused: charge % already carries gateway reference %, not %', m.id, m.gateway_ref, ref
                USING ERRCODE = 'CG010',
                      HINT = 'The relay got that id from the gateway: look it up there and resolve with it.';
        END IF;
    END IF;
    IF p_outcome = 'failed' AND m.lease_expires_at > now() THEN
        RAISE EXCEPTION 'resolve refused: charge % may still be on its way to the gateway (its last lease runs until %)',
                m.id, m.lease_expires_at
            USING ERRCODE = 'CG010',
                  HINT = 'Finding no charge proves nothing yet: look again after the relay''s settle window '
                         '(--settle) has passed since then, or let the relay''s lookup decide.';
    END IF;

    was := m.state;
    PERFORM set_config('outbox.actor', 'operator', true);
    PERFORM set_config('outbox.detail',
        format('resolve: %s (evidence: %s)', why, coalesce(ref, 'no gateway charge id')), true);

    UPDATE outbox.messages
       SET state = p_outcome,
           gateway_ref = coalesce(ref, gateway_ref),
           last_error = format('resolved %s by %s: %s', p_outcome, session_user, why)
     WHERE id = m.id
    RETURNING * INTO m;
    -- Exactly what the relay's record step does for a direct answer.
    PERFORM outbox.apply_charge_outcomes(
        jsonb_build_array(jsonb_build_object('id', m.id, 'outcome', p_outcome, 'gateway_ref', m.gateway_ref)),
        p_retry_schedule);

    SELECT * INTO inv FROM billing.invoices WHERE id = m.invoice_id;
    SELECT count(*) INTO n_emails FROM outbox.messages
     WHERE parent_id = m.id AND kind = 'email' AND state = 'pending';
    RETURN format('charge %s (invoice %s): %s -> %s%s; %s; invoice %s is %s%s; %s email(s) released',
                  m.id, m.invoice_id, was, p_outcome,
                  coalesce(' (gateway charge ' || m.gateway_ref || ')', ''),
                  CASE p_outcome WHEN 'succeeded'
                       THEN format('payment of %s %s recorded', m.amount_cents, m.currency)
                       ELSE p_outcome || ' transaction recorded' END,
                  inv.id, inv.status,
                  CASE WHEN inv.status = 'open' AND inv.next_attempt_at IS NOT NULL AND p_outcome <> 'succeeded'
                       THEN format(' (next attempt from %s)', inv.next_attempt_at) ELSE '' END,
                  n_emails);
END
$$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA billing, outbox FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    outbox.replay(bigint, text),
    outbox.cancel(bigint, text),
    outbox.resolve(bigint, text, text, text, double precision[])
TO outbox_operator;
