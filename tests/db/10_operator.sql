-- 10_operator: the operator's functions outbox.replay, outbox.cancel and
-- outbox.resolve (0007_operator.sql). Views: 10_operator_views.sql; who may
-- run what: 10_operator_roles.sql.
--
-- Every call runs as a login role granted outbox_operator
-- (cg_test_operator, with SET SESSION AUTHORIZATION, so session_user is that
-- role, not the functions' owner). Proves that:
--   * replay: a dead charge -> unknown and an unknown charge stays unknown,
--     both due for a lookup now with a fresh lookup schedule
--     (failed_lookups 0), "replayed by <role>: <reason>" in last_error, the
--     claim token of a lookup in progress dropped (its late answer is not
--     recorded); never pending, never claimable by claim_charges (never a
--     new POST), but claimable by claim_lookups; a dead email -> pending,
--     due now, template kept (same Message-ID);
--   * cancel: a pending charge -> cancelled, with its waiting email, and its
--     invoice in_flight -> failed (which a person may reopen, and the
--     charger then enqueues it with a new charge row and a new key); a
--     waiting, pending or dead email -> cancelled; a cancelled waiting email
--     stays cancelled when its charge is recorded;
--   * resolve: an unknown or dead charge settled with evidence has exactly
--     the effects record_charges has for the same direct answer (payment,
--     invoice, transaction, released email: compared on twin rows for
--     succeeded, declined and failed), with the given retry schedule; a
--     lookup in progress is not recorded afterwards;
--   * every change writes its events: actor "<session_user> (operator)",
--     detail "replay: / cancel: / resolve: <reason> (evidence: <ref>)",
--     including the unknown -> unknown event replay inserts itself; the
--     caller's own outbox.actor / outbox.detail are untouched afterwards;
--   * I6 holds after every successful call (SET CONSTRAINTS ALL IMMEDIATE);
--   * every refusal listed in 0007 is raised with SQLSTATE CG010, its exact
--     message and a HINT, and changes nothing (no event).
BEGIN;
\ir helpers.psql

CREATE ROLE cg_test_operator LOGIN IN ROLE outbox_operator;
\set actor '''cg_test_operator (operator)'''

CREATE TEMP TABLE fx (name text PRIMARY KEY, id bigint NOT NULL);
CREATE TEMP TABLE marks (name text PRIMARY KEY, ev bigint NOT NULL);

CREATE FUNCTION pg_temp.fx(p_name text)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    i bigint;
BEGIN
    SELECT id INTO STRICT i FROM fx WHERE name = p_name;
    RETURN i;
END
$$;

CREATE FUNCTION pg_temp.inv(p_name text)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT invoice_id FROM outbox.messages WHERE id = pg_temp.fx(p_name)
$$;

-- A message of p_kind in p_state (helpers' cg_message_in), named p_name,
-- with its invoice made consistent with I6 (a settled charge's invoice is
-- no longer in_flight), and, for unknown and dead charges, a last lease
-- that ended an hour ago (the send is long over).
CREATE FUNCTION pg_temp.mk(p_name text, p_kind text, p_state text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    m bigint := pg_temp.cg_message_in(p_kind, p_state);
    i bigint;
BEGIN
    SELECT invoice_id INTO i FROM outbox.messages WHERE id = m;
    IF p_kind = 'charge' THEN
        UPDATE billing.invoices
           SET status = CASE p_state WHEN 'succeeded' THEN 'paid' WHEN 'cancelled' THEN 'failed' ELSE 'open' END,
               amount_due_cents = CASE p_state WHEN 'succeeded' THEN 0 ELSE amount_due_cents END
         WHERE id = i AND p_state IN ('succeeded', 'declined', 'failed', 'cancelled');
        UPDATE outbox.messages SET lease_expires_at = now() - interval '1 hour'
         WHERE id = m AND p_state IN ('unknown', 'dead');
    END IF;
    INSERT INTO fx VALUES (p_name, m);
    RETURN m;
END
$$;

-- Run p_sql as the login role cg_test_operator (session_user and
-- current_user), return its one value.
CREATE FUNCTION pg_temp.as_op(p_sql text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    SET SESSION AUTHORIZATION cg_test_operator;
    EXECUTE p_sql INTO r;
    RESET SESSION AUTHORIZATION;
    RETURN r;
END
$$;

-- p_sql, run as cg_test_operator, must be refused with CG010 and p_message.
CREATE FUNCTION pg_temp.op_refused(p_sql text, p_message text, p_description text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    SET SESSION AUTHORIZATION cg_test_operator;
    t := throws_ok(p_sql, 'CG010', p_message, p_description);
    RESET SESSION AUTHORIZATION;
    RETURN t;
END
$$;

-- The HINT of the error p_sql raises as cg_test_operator ('(not refused)'
-- if it raises none; its effects are undone either way).
CREATE FUNCTION pg_temp.op_hint(p_sql text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    h text;
BEGIN
    BEGIN
        SET SESSION AUTHORIZATION cg_test_operator;
        EXECUTE p_sql;
        RAISE EXCEPTION 'not refused' USING ERRCODE = 'CGT99', HINT = '(not refused)';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
    END;
    RETURN h;
END
$$;

CREATE FUNCTION pg_temp.mark(p_name text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO marks SELECT p_name, coalesce(max(id), 0) FROM outbox.events
$$;

-- The events written since mark p_name.
CREATE FUNCTION pg_temp.events_since(p_name text)
RETURNS SETOF outbox.events LANGUAGE sql STABLE AS $$
    SELECT e.* FROM outbox.events e WHERE e.id > (SELECT ev FROM marks WHERE name = p_name)
$$;

-- What a charge's outcome did, with its own ids and references abstracted
-- away, so two twin rows can be compared: the row, its payments, its
-- invoice, its transactions and its emails.
CREATE FUNCTION pg_temp.effects(p_charge bigint)
RETURNS TABLE (what text, val text) LANGUAGE sql STABLE AS $$
    SELECT 'charge', format('%s ref:%s', m.state, m.gateway_ref IS NOT NULL)
      FROM outbox.messages m WHERE m.id = p_charge
    UNION ALL
    SELECT 'payment', format('%s %s %s ref=row:%s', p.amount_cents, p.currency, p.invoice_id = m.invoice_id,
                             p.gateway_charge_id = m.gateway_ref)
      FROM billing.payments p JOIN outbox.messages m ON m.id = p.outbox_id WHERE p.outbox_id = p_charge
    UNION ALL
    SELECT 'invoice', format('%s %s due:%s failed:%s next:%s', i.status, i.amount_cents, i.amount_due_cents,
                             i.failed_attempts, i.next_attempt_at - now())
      FROM billing.invoices i JOIN outbox.messages m ON m.invoice_id = i.id WHERE m.id = p_charge
    UNION ALL
    SELECT 'transaction', format('%s %s %s ref=row:%s', t.kind, t.amount_cents, t.invoice_id = m.invoice_id,
                                 coalesce((t.gateway_charge_id = m.gateway_ref)::text, 'none'))
      FROM billing.transactions t JOIN outbox.messages m ON m.id = t.outbox_id WHERE t.outbox_id = p_charge
    UNION ALL
    SELECT 'email', format('%s %s due:%s attempts:%s', e.state, e.template, e.not_before - now(), e.attempts)
      FROM outbox.messages e WHERE e.parent_id = p_charge
$$;

-- The ids p_sql (a call of a relay or charger function returning rows
-- with an id column named p_col) would take, its effects undone: a
-- claim here must not move the other fixtures.
CREATE FUNCTION pg_temp.would_take(p_sql text, p_col text DEFAULT 'id')
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    BEGIN
        EXECUTE format('SELECT array_agg(%I) FROM (%s) q', p_col, p_sql) INTO ids;
        RAISE EXCEPTION 'undo' USING ERRCODE = 'CGT99';
    EXCEPTION WHEN SQLSTATE 'CGT99' THEN
        NULL;
    END;
    RETURN QUERY SELECT unnest(ids);
END
$$;

-- The deferred I6 check, now: passes only if every invoice is in_flight
-- exactly when it has one live charge.
CREATE FUNCTION pg_temp.i6_holds(p_description text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    t := lives_ok('SET CONSTRAINTS ALL IMMEDIATE', p_description);
    SET CONSTRAINTS ALL DEFERRED;
    RETURN t;
END
$$;

------------------------------------------------------------------------------
-- Fixtures
------------------------------------------------------------------------------
-- Rows replayed, cancelled and resolved successfully.
SELECT pg_temp.mk('r_dead', 'charge', 'dead'), pg_temp.mk('r_unknown', 'charge', 'unknown'),
       pg_temp.mk('r_email_dead', 'email', 'dead'), pg_temp.mk('r_lookup', 'charge', 'unknown'),
       pg_temp.mk('c_email_waiting', 'email', 'waiting'), pg_temp.mk('c_email_pending', 'email', 'pending'),
       pg_temp.mk('c_email_dead', 'email', 'dead'),
       pg_temp.mk('s_dead', 'charge', 'dead'), pg_temp.mk('s_lookup', 'charge', 'unknown'),
       pg_temp.mk('s_own_ref', 'charge', 'unknown'), pg_temp.mk('s_no_retry', 'charge', 'unknown')
\g /dev/null
-- r_dead gave up after 4 lookups; r_unknown has failed twice and waits an
-- hour; r_lookup and s_lookup are being looked up by a relay right now
-- (claim_lookups' effect: a fresh claim token, the owner, not_before held).
UPDATE outbox.messages SET failed_lookups = 4, last_error = 'gave up after 4 inconclusive lookups; last: HTTP 500'
 WHERE id = pg_temp.fx('r_dead');
UPDATE outbox.messages SET failed_lookups = 2, not_before = now() + interval '1 hour',
       last_error = 'lookup inconclusive: HTTP 503'
 WHERE id = pg_temp.fx('r_unknown');
UPDATE outbox.messages SET claim_token = gen_random_uuid(), lease_owner = 'relay-lookup',
       not_before = now() + interval '60 seconds'
 WHERE id IN (pg_temp.fx('r_lookup'), pg_temp.fx('s_lookup'));
-- s_own_ref: an ambiguous answer that named the gateway's charge id
UPDATE outbox.messages SET gateway_ref = 'ch_seen_by_relay' WHERE id = pg_temp.fx('s_own_ref');
-- c_pending: a pending charge and its waiting email, as the charger wrote them
INSERT INTO fx SELECT 'c_pending', pg_temp.cg_charge(pg_temp.cg_invoice('in_flight', 1200));
INSERT INTO fx SELECT 'c_pending_mail', pg_temp.cg_email(pg_temp.fx('c_pending'));

-- Twins: the same charge (1000 usd, a waiting email), recorded by the relay
-- (_a, a direct answer) and resolved by a person (_b: the answer was
-- ambiguous, so the row is unknown, and its last lease has ended).
INSERT INTO fx SELECT n, pg_temp.cg_claimed()
  FROM unnest(ARRAY['t_ok_a', 't_ok_b', 't_dec_a', 't_dec_b', 't_fail_a', 't_fail_b']) n;
SELECT count(*) FROM outbox.record_charges(jsonb_build_array(
    pg_temp.cg_result(pg_temp.fx('t_ok_a'), 'succeeded', '{"gateway_ref": "ch_twin_ok_a"}'),
    pg_temp.cg_result(pg_temp.fx('t_dec_a'), 'declined', '{"gateway_ref": "ch_twin_dec_a", "error": "card_declined"}'),
    pg_temp.cg_result(pg_temp.fx('t_fail_a'), 'failed', '{"error": "HTTP 400: invalid_request_error"}'),
    pg_temp.cg_result(pg_temp.fx('t_ok_b'), 'unknown', '{"error": "timeout after 30 s: maybe charged"}'),
    pg_temp.cg_result(pg_temp.fx('t_dec_b'), 'unknown', '{"error": "HTTP 502: maybe charged"}'),
    pg_temp.cg_result(pg_temp.fx('t_fail_b'), 'unknown', '{"error": "reset after sending"}')),
  '{86400,259200,604800}', 60)
\g /dev/null
UPDATE outbox.messages SET lease_expires_at = now() - interval '1 hour'
 WHERE id IN (pg_temp.fx('t_ok_b'), pg_temp.fx('t_dec_b'), pg_temp.fx('t_fail_b'));

-- Rows only refused: one per state of each kind.
SELECT pg_temp.mk('x_' || s, 'charge', s)
  FROM unnest(ARRAY['pending', 'submitting', 'succeeded', 'declined', 'failed', 'cancelled']) s
\g /dev/null
SELECT pg_temp.mk('x_mail_' || s, 'email', s)
  FROM unnest(ARRAY['waiting', 'pending', 'submitting', 'sent', 'cancelled']) s
\g /dev/null
SELECT pg_temp.mk('x_unknown', 'charge', 'unknown'), pg_temp.mk('x_dead', 'charge', 'dead'),
       pg_temp.mk('x_mail_dead', 'email', 'dead'), pg_temp.mk('x_leased', 'charge', 'unknown'),
       pg_temp.mk('x_own_ref', 'charge', 'unknown')
\g /dev/null
UPDATE outbox.messages SET gateway_ref = 'ch_seen_by_relay_x' WHERE id = pg_temp.fx('x_own_ref');
-- x_leased: recorded unknown moments ago; its last lease runs 5 more minutes
UPDATE outbox.messages SET lease_expires_at = now() + interval '5 minutes' WHERE id = pg_temp.fx('x_leased');

-- Every refusal: the call, its message, a fragment of its HINT.
CREATE TEMP TABLE refusals (ord serial, fn text, call text, message text, hint text, description text);
INSERT INTO refusals (fn, call, message, hint, description) VALUES
 -- replay
 ('replay', format('SELECT outbox.replay(%s, NULL)', pg_temp.fx('x_dead')),
  'replay refused: a reason is required', 'written to outbox.events', 'replay with a NULL reason'),
 ('replay', format('SELECT outbox.replay(%s, %L)', pg_temp.fx('x_dead'), E' \t '),
  'replay refused: a reason is required', 'written to outbox.events', 'replay with a blank reason'),
 ('replay', 'SELECT outbox.replay(-1, ''why not'')',
  'replay refused: there is no outbox message -1', 'outbox.stuck', 'replay of an id that does not exist'),
 ('replay', 'SELECT outbox.replay(NULL, ''why not'')',
  'replay refused: there is no outbox message NULL', 'outbox.stuck', 'replay of a NULL id'),
 ('replay', format('SELECT outbox.replay(%s, ''again'')', pg_temp.fx('x_pending')),
  format('replay refused: charge %s is pending: replay is only for unknown or dead charges', pg_temp.fx('x_pending')),
  'outbox.cancel', 'replay of a pending charge (the relay sends it anyway)'),
 ('replay', format('SELECT outbox.replay(%s, ''again'')', pg_temp.fx('x_submitting')),
  format('replay refused: charge %s is submitting: replay is only for unknown or dead charges', pg_temp.fx('x_submitting')),
  'janitor', 'replay of a submitting charge (a relay holds it)'),
 ('replay', format('SELECT outbox.replay(%s, ''again'')', pg_temp.fx('x_succeeded')),
  format('replay refused: charge %s is succeeded, settled: there is nothing to replay', pg_temp.fx('x_succeeded')),
  'Settled rows never move', 'replay of a succeeded charge'),
 ('replay', format('SELECT outbox.replay(%s, ''again'')', pg_temp.fx('x_declined')),
  format('replay refused: charge %s is declined, settled: there is nothing to replay', pg_temp.fx('x_declined')),
  'retry policy', 'replay of a declined charge'),
 ('replay', format('SELECT outbox.replay(%s, ''again'')', pg_temp.fx('x_failed')),
  format('replay refused: charge %s is failed, settled: there is nothing to replay', pg_temp.fx('x_failed')),
  'retry policy', 'replay of a failed charge'),
 ('replay', format('SELECT outbox.replay(%s, ''again'')', pg_temp.fx('x_cancelled')),
  format('replay refused: charge %s is cancelled, settled: there is nothing to replay', pg_temp.fx('x_cancelled')),
  'Settled rows never move', 'replay of a cancelled charge'),
 ('replay', format('SELECT outbox.replay(%s, ''again'')', pg_temp.fx('x_mail_waiting')),
  format('replay refused: email %s is waiting for its charge %s: replay is only for dead emails',
         pg_temp.fx('x_mail_waiting'), (SELECT parent_id FROM outbox.messages WHERE id = pg_temp.fx('x_mail_waiting'))),
  'released when its charge is recorded', 'replay of a waiting email'),
 ('replay', format('SELECT outbox.replay(%s, ''again'')', pg_temp.fx('x_mail_pending')),
  format('replay refused: email %s is pending: replay is only for dead emails', pg_temp.fx('x_mail_pending')),
  'outbox.cancel', 'replay of a pending email (the relay sends it anyway)'),
 ('replay', format('SELECT outbox.replay(%s, ''again'')', pg_temp.fx('x_mail_submitting')),
  format('replay refused: email %s is submitting: replay is only for dead emails', pg_temp.fx('x_mail_submitting')),
  'Wait', 'replay of a submitting email'),
 ('replay', format('SELECT outbox.replay(%s, ''again'')', pg_temp.fx('x_mail_sent')),
  format('replay refused: email %s is sent, settled: there is nothing to replay', pg_temp.fx('x_mail_sent')),
  'Settled rows never move', 'replay of a sent email'),
 ('replay', format('SELECT outbox.replay(%s, ''again'')', pg_temp.fx('x_mail_cancelled')),
  format('replay refused: email %s is cancelled, settled: there is nothing to replay', pg_temp.fx('x_mail_cancelled')),
  'Settled rows never move', 'replay of a cancelled email'),
 -- cancel
 ('cancel', format('SELECT outbox.cancel(%s, NULL)', pg_temp.fx('x_pending')),
  'cancel refused: a reason is required', 'written to outbox.events', 'cancel with a NULL reason'),
 ('cancel', format('SELECT outbox.cancel(%s, '''')', pg_temp.fx('x_pending')),
  'cancel refused: a reason is required', 'written to outbox.events', 'cancel with an empty reason'),
 ('cancel', 'SELECT outbox.cancel(-1, ''stop'')',
  'cancel refused: there is no outbox message -1', 'outbox.stuck', 'cancel of an id that does not exist'),
 ('cancel', format('SELECT outbox.cancel(%s, ''stop'')', pg_temp.fx('x_submitting')),
  format('cancel refused: charge %s is submitting: it may have been charged', pg_temp.fx('x_submitting')),
  'outbox.resolve', 'cancel of a submitting charge (its POST may be on the wire)'),
 ('cancel', format('SELECT outbox.cancel(%s, ''stop'')', pg_temp.fx('x_unknown')),
  format('cancel refused: charge %s is unknown: it may have been charged', pg_temp.fx('x_unknown')),
  'Wait for the lookup, or use outbox.resolve with evidence', 'cancel of an unknown charge'),
 ('cancel', format('SELECT outbox.cancel(%s, ''stop'')', pg_temp.fx('x_dead')),
  format('cancel refused: charge %s is dead: it may have been charged', pg_temp.fx('x_dead')),
  'Wait for the lookup, or use outbox.resolve with evidence', 'cancel of a dead charge'),
 ('cancel', format('SELECT outbox.cancel(%s, ''stop'')', pg_temp.fx('x_succeeded')),
  format('cancel refused: charge %s is succeeded, settled: there is nothing to cancel', pg_temp.fx('x_succeeded')),
  'Settled rows never move', 'cancel of a succeeded charge'),
 ('cancel', format('SELECT outbox.cancel(%s, ''stop'')', pg_temp.fx('x_declined')),
  format('cancel refused: charge %s is declined, settled: there is nothing to cancel', pg_temp.fx('x_declined')),
  'Settled rows never move', 'cancel of a declined charge'),
 ('cancel', format('SELECT outbox.cancel(%s, ''stop'')', pg_temp.fx('x_failed')),
  format('cancel refused: charge %s is failed, settled: there is nothing to cancel', pg_temp.fx('x_failed')),
  'Settled rows never move', 'cancel of a failed charge'),
 ('cancel', format('SELECT outbox.cancel(%s, ''stop'')', pg_temp.fx('x_cancelled')),
  format('cancel refused: charge %s is cancelled, settled: there is nothing to cancel', pg_temp.fx('x_cancelled')),
  'Settled rows never move', 'cancel of a cancelled charge'),
 ('cancel', format('SELECT outbox.cancel(%s, ''stop'')', pg_temp.fx('x_mail_submitting')),
  format('cancel refused: email %s is being sent (submitting)', pg_temp.fx('x_mail_submitting')),
  'Wait', 'cancel of a submitting email'),
 ('cancel', format('SELECT outbox.cancel(%s, ''stop'')', pg_temp.fx('x_mail_sent')),
  format('cancel refused: email %s is sent, settled: there is nothing to cancel', pg_temp.fx('x_mail_sent')),
  'Settled rows never move', 'cancel of a sent email'),
 ('cancel', format('SELECT outbox.cancel(%s, ''stop'')', pg_temp.fx('x_mail_cancelled')),
  format('cancel refused: email %s is cancelled, settled: there is nothing to cancel', pg_temp.fx('x_mail_cancelled')),
  'Settled rows never move', 'cancel of a cancelled email'),
 -- resolve
 ('resolve', format('SELECT outbox.resolve(%s, ''succeeded'', ''ch_r1'', NULL)', pg_temp.fx('x_unknown')),
  'resolve refused: a reason is required', 'written to outbox.events', 'resolve with a NULL reason'),
 ('resolve', format('SELECT outbox.resolve(%s, ''succeeded'', ''ch_r1'', ''   '')', pg_temp.fx('x_unknown')),
  'resolve refused: a reason is required', 'written to outbox.events', 'resolve with a blank reason'),
 ('resolve', 'SELECT outbox.resolve(-1, ''succeeded'', ''ch_r1'', ''found it'')',
  'resolve refused: there is no outbox message -1', 'outbox.stuck', 'resolve of an id that does not exist'),
 ('resolve', format('SELECT outbox.resolve(%s, ''failed'', NULL, ''found nothing'')', pg_temp.fx('x_mail_dead')),
  format('resolve refused: email %s is an email, not a charge', pg_temp.fx('x_mail_dead')),
  'outbox.replay', 'resolve of an email'),
 ('resolve', format('SELECT outbox.resolve(%s, ''failed'', NULL, ''found nothing'')', pg_temp.fx('x_pending')),
  format('resolve refused: charge %s is pending: it was never sent, there is nothing to resolve', pg_temp.fx('x_pending')),
  'outbox.cancel', 'resolve of a pending charge'),
 ('resolve', format('SELECT outbox.resolve(%s, ''succeeded'', ''ch_r1'', ''found it'')', pg_temp.fx('x_submitting')),
  format('resolve refused: charge %s is submitting: a relay holds it', pg_temp.fx('x_submitting')),
  'lease to expire', 'resolve of a submitting charge'),
 ('resolve', format('SELECT outbox.resolve(%s, ''succeeded'', ''ch_r1'', ''found it'')', pg_temp.fx('x_succeeded')),
  format('resolve refused: charge %s is succeeded, settled: there is nothing to resolve', pg_temp.fx('x_succeeded')),
  'Settled rows never move', 'resolve of a succeeded charge'),
 ('resolve', format('SELECT outbox.resolve(%s, ''succeeded'', ''ch_r1'', ''found it'')', pg_temp.fx('x_declined')),
  format('resolve refused: charge %s is declined, settled: there is nothing to resolve', pg_temp.fx('x_declined')),
  'Settled rows never move', 'resolve of a declined charge'),
 ('resolve', format('SELECT outbox.resolve(%s, ''succeeded'', ''ch_r1'', ''found it'')', pg_temp.fx('x_failed')),
  format('resolve refused: charge %s is failed, settled: there is nothing to resolve', pg_temp.fx('x_failed')),
  'Settled rows never move', 'resolve of a failed charge'),
 ('resolve', format('SELECT outbox.resolve(%s, ''declined'', NULL, ''found it'')', pg_temp.fx('x_cancelled')),
  format('resolve refused: charge %s is cancelled, settled: there is nothing to resolve', pg_temp.fx('x_cancelled')),
  'Settled rows never move', 'resolve of a cancelled charge'),
 ('resolve', format('SELECT outbox.resolve(%s, ''unknown'', NULL, ''not sure'')', pg_temp.fx('x_unknown')),
  'resolve refused: the outcome must be succeeded, declined or failed, not ''unknown''',
  'outbox.replay', 'resolve with outcome unknown'),
 ('resolve', format('SELECT outbox.resolve(%s, ''Succeeded'', ''ch_r1'', ''found it'')', pg_temp.fx('x_unknown')),
  'resolve refused: the outcome must be succeeded, declined or failed, not ''Succeeded''',
  'outbox.replay', 'resolve with an outcome spelled otherwise'),
 ('resolve', format('SELECT outbox.resolve(%s, NULL, ''ch_r1'', ''found it'')', pg_temp.fx('x_unknown')),
  'resolve refused: the outcome must be succeeded, declined or failed, not NULL',
  'outbox.replay', 'resolve with a NULL outcome'),
 ('resolve', format('SELECT outbox.resolve(%s, ''succeeded'', NULL, ''found it'')', pg_temp.fx('x_unknown')),
  'resolve refused: succeeded needs the gateway''s charge id (p_gateway_ref)',
  'metadata[outbox_id]', 'resolve succeeded without a gateway reference'),
 ('resolve', format('SELECT outbox.resolve(%s, ''succeeded'', ''  '', ''found it'')', pg_temp.fx('x_dead')),
  'resolve refused: succeeded needs the gateway''s charge id (p_gateway_ref)',
  'metadata[outbox_id]', 'resolve succeeded with a blank gateway reference'),
 ('resolve', format('SELECT outbox.resolve(%s, ''succeeded'', ''ch_twin_ok_a'', ''found it'')', pg_temp.fx('x_unknown')),
  format('resolve refused: that charge (ch_twin_ok_a) is already recorded for invoice %s / row %s (payment %s)',
         pg_temp.inv('t_ok_a'), pg_temp.fx('t_ok_a'),
         (SELECT id FROM billing.payments WHERE outbox_id = pg_temp.fx('t_ok_a'))),
  'check billing.payments', 'resolve with a gateway charge already recorded as another row''s payment (checked before the unique index)'),
 ('resolve', format('SELECT outbox.resolve(%s, ''declined'', %L, ''found it'')', pg_temp.fx('x_dead'),
                    (SELECT gateway_ref FROM outbox.messages WHERE id = pg_temp.fx('t_dec_a'))),
  format('resolve refused: that charge (ch_twin_dec_a) is already the gateway reference of invoice %s / row %s (declined)',
         pg_temp.inv('t_dec_a'), pg_temp.fx('t_dec_a')),
  'metadata[outbox_id]', 'resolve with a gateway charge that is another row''s reference (no payment)'),
 ('resolve', format('SELECT outbox.resolve(%s, ''succeeded'', ''ch_other'', ''found it'')', pg_temp.fx('x_own_ref')),
  format('resolve refused: charge %s already carries gateway reference ch_seen_by_relay_x, not ch_other', pg_temp.fx('x_own_ref')),
  'look it up there', 'resolve with a charge id other than the one the relay already saw for this row'),
 ('resolve', format('SELECT outbox.resolve(%s, ''failed'', NULL, ''not in the dashboard'')', pg_temp.fx('x_leased')),
  format('resolve refused: charge %s may still be on its way to the gateway (its last lease runs until %s)',
         pg_temp.fx('x_leased'), now() + interval '5 minutes'),
  '--settle', 'resolve failed while the row''s last lease still runs (absence proves nothing yet)'),
 ('resolve', format('SELECT outbox.resolve(%s, ''declined'', NULL, ''found it'', NULL)', pg_temp.fx('x_unknown')),
  'resolve refused: the retry schedule must be an array of positive waits in seconds',
  '--invoice-retry-schedule', 'resolve with a NULL retry schedule'),
 ('resolve', format('SELECT outbox.resolve(%s, ''declined'', NULL, ''found it'', ''{86400,0}'')', pg_temp.fx('x_unknown')),
  'resolve refused: the retry schedule must be an array of positive waits in seconds',
  '--invoice-retry-schedule', 'resolve with a zero wait in the retry schedule'),
 ('resolve', format('SELECT outbox.resolve(%s, ''declined'', NULL, ''found it'', ''{86400,NULL}'')', pg_temp.fx('x_unknown')),
  'resolve refused: the retry schedule must be an array of positive waits in seconds',
  '--invoice-retry-schedule', 'resolve with a NULL wait in the retry schedule');

SELECT plan((
      1                                                 -- fixtures satisfy I6
    + 17                                                -- replay
    + 15                                                -- cancel
    + 21                                                -- resolve
    + 2 * (SELECT count(*) FROM refusals) + 2           -- refusals, their hints, nothing changed
    + 2                                                 -- replay never a new POST; caller's settings
)::int);

SELECT pg_temp.i6_holds('the fixtures are consistent: every invoice is in_flight exactly when it has one live charge (I6)');

------------------------------------------------------------------------------
-- 1. replay
------------------------------------------------------------------------------
-- The caller's own settings, which the functions must leave alone.
SELECT set_config('outbox.actor', 'psql by hand', true), set_config('outbox.detail', 'my own detail', true)
\g /dev/null

-- a dead charge
SELECT pg_temp.mark('r_dead');
SELECT is(pg_temp.as_op(format('SELECT outbox.replay(%s, %L)', pg_temp.fx('r_dead'), '  gateway outage INC-7 is over ')),
    format('charge %s (invoice %s): dead -> unknown; the relay looks it up now, lookup schedule restarted (never a new POST)',
           pg_temp.fx('r_dead'), pg_temp.inv('r_dead')),
    'replay of a dead charge answers with a one-line summary');
SELECT results_eq(
    format('SELECT state, not_before, failed_lookups, claim_token, last_error, attempts FROM outbox.messages WHERE id = %s',
           pg_temp.fx('r_dead')),
    $$VALUES ('unknown'::text, now(), 0, NULL::uuid, 'replayed by cg_test_operator: gateway outage INC-7 is over'::text, 1)$$,
    'replay: a dead charge becomes unknown, due for a lookup now, with a fresh lookup schedule (failed_lookups 4 -> 0), "replayed by <session_user>: <reason>", attempts unchanged');
SELECT results_eq(
    $$SELECT message_id, from_state, to_state, actor, detail FROM pg_temp.events_since('r_dead')$$,
    format($$VALUES (%s::bigint, 'dead'::text, 'unknown'::text, %s::text, 'replay: gateway outage INC-7 is over'::text)$$,
           pg_temp.fx('r_dead'), quote_literal(:actor)),
    'replay of a dead charge writes one dead -> unknown event: actor "<session_user> (operator)", detail "replay: <reason>" (I8)');
SELECT is((SELECT status FROM billing.invoices WHERE id = pg_temp.inv('r_dead')), 'in_flight',
    'replay: the invoice stays in_flight (the charge is live: nobody may charge it again)');
SELECT pg_temp.i6_holds('I6 holds after replaying a dead charge');

-- an unknown charge: no change of state, so replay writes the event itself
SELECT pg_temp.mark('r_unknown');
SELECT is(pg_temp.as_op(format('SELECT outbox.replay(%s, ''customer called: paid?'')', pg_temp.fx('r_unknown'))),
    format('charge %s (invoice %s): unknown -> unknown; the relay looks it up now, lookup schedule restarted (never a new POST)',
           pg_temp.fx('r_unknown'), pg_temp.inv('r_unknown')),
    'replay of an unknown charge answers with a one-line summary');
SELECT results_eq(
    format('SELECT state, not_before, failed_lookups, last_error FROM outbox.messages WHERE id = %s', pg_temp.fx('r_unknown')),
    $$VALUES ('unknown'::text, now(), 0, 'replayed by cg_test_operator: customer called: paid?'::text)$$,
    'replay: an unknown charge stays unknown and is due for a lookup now (not in an hour), failed_lookups 2 -> 0');
SELECT results_eq(
    $$SELECT message_id, from_state, to_state, actor, detail FROM pg_temp.events_since('r_unknown')$$,
    format($$VALUES (%s::bigint, 'unknown'::text, 'unknown'::text, %s::text, 'replay: customer called: paid?'::text)$$,
           pg_temp.fx('r_unknown'), quote_literal(:actor)),
    'replay of an unknown charge writes exactly one unknown -> unknown event itself (the trigger writes none without a change of state), naming the operator and the reason');
SELECT pg_temp.i6_holds('I6 holds after replaying an unknown charge');

-- a lookup in progress is cut off: its answer is not recorded
CREATE TEMP TABLE old_lookup AS SELECT id, claim_token FROM outbox.messages WHERE id = pg_temp.fx('r_lookup');
SELECT pg_temp.as_op(format('SELECT outbox.replay(%s, ''look again from scratch'')', pg_temp.fx('r_lookup'))) \g /dev/null
SELECT results_eq(
    format($$SELECT recorded FROM outbox.record_lookups(%L, '{86400}', '{60,300}', 900)$$,
           (SELECT jsonb_agg(jsonb_build_object('id', id, 'claim_token', claim_token, 'found', 'inconclusive',
                                                'error', 'HTTP 500')) FROM old_lookup)),
    $$VALUES (false)$$,
    'replay drops the claim token of a lookup in progress: its (late) answer is not recorded');
SELECT results_eq(
    format('SELECT state, failed_lookups, not_before FROM outbox.messages WHERE id = %s', pg_temp.fx('r_lookup')),
    $$VALUES ('unknown'::text, 0, now())$$,
    '... so the replayed row keeps its fresh schedule: unknown, failed_lookups 0, due now');

-- a dead email
SELECT pg_temp.mark('r_email_dead');
SELECT is(pg_temp.as_op(format('SELECT outbox.replay(%s, ''mailbox fixed'')', pg_temp.fx('r_email_dead'))),
    format('email %s (invoice %s): dead -> pending; the relay sends it again now (same Message-ID), with its tries starting over',
           pg_temp.fx('r_email_dead'), pg_temp.inv('r_email_dead')),
    'replay of a dead email answers with a one-line summary');
SELECT results_eq(
    format('SELECT state, not_before, template, last_error, attempts FROM outbox.messages WHERE id = %s', pg_temp.fx('r_email_dead')),
    $$VALUES ('pending'::text, now(), 'receipt'::text, 'replayed by cg_test_operator: mailbox fixed'::text, 0)$$,
    'replay: a dead email is pending again, due now, with its template (re-sent with the same Message-ID) and its tries starting over (attempts 0)');
SELECT results_eq(
    $$SELECT message_id, from_state, to_state, actor, detail FROM pg_temp.events_since('r_email_dead')$$,
    format($$VALUES (%s::bigint, 'dead'::text, 'pending'::text, %s::text, 'replay: mailbox fixed'::text)$$,
           pg_temp.fx('r_email_dead'), quote_literal(:actor)),
    'replay of a dead email writes one dead -> pending event naming the operator and the reason');
SELECT pg_temp.i6_holds('I6 holds after replaying a dead email');

-- never a new POST, but looked up
SELECT is_empty(
    format($$SELECT * FROM pg_temp.would_take('SELECT * FROM outbox.claim_charges(''replay-test'', 30, 1000)') id
              WHERE id IN (%s, %s, %s)$$,
           pg_temp.fx('r_dead'), pg_temp.fx('r_unknown'), pg_temp.fx('r_lookup')),
    'replayed charges are never claimed for sending: no new POST');
SELECT bag_eq(
    format($$SELECT * FROM pg_temp.would_take('SELECT * FROM outbox.claim_lookups(''replay-test'', 30, 1000)') id
              WHERE id IN (%s, %s, %s)$$,
           pg_temp.fx('r_dead'), pg_temp.fx('r_unknown'), pg_temp.fx('r_lookup')),
    format('VALUES (%s::bigint), (%s), (%s)', pg_temp.fx('r_dead'), pg_temp.fx('r_unknown'), pg_temp.fx('r_lookup')),
    'replayed charges are claimed for a lookup right away');

------------------------------------------------------------------------------
-- 2. cancel
------------------------------------------------------------------------------
-- a pending charge with its waiting email
SELECT pg_temp.mark('c_pending');
SELECT is(pg_temp.as_op(format('SELECT outbox.cancel(%s, ''customer disputes the invoice, ticket 881'')', pg_temp.fx('c_pending'))),
    format('charge %s (invoice %s): pending -> cancelled, never sent; 1 waiting email(s) cancelled; invoice %s in_flight -> failed (set it open to charge it later, or void it)',
           pg_temp.fx('c_pending'), pg_temp.inv('c_pending'), pg_temp.inv('c_pending')),
    'cancel of a pending charge answers with a one-line summary');
SELECT results_eq(
    format($$SELECT m.state, m.last_error, e.state, e.last_error, i.status, i.failed_attempts
               FROM outbox.messages m, outbox.messages e, billing.invoices i
              WHERE m.id = %s AND e.id = %s AND i.id = m.invoice_id$$,
           pg_temp.fx('c_pending'), pg_temp.fx('c_pending_mail')),
    format($$VALUES ('cancelled'::text, 'cancelled by cg_test_operator: customer disputes the invoice, ticket 881'::text,
                     'cancelled'::text, 'cancelled with charge %s by cg_test_operator: customer disputes the invoice, ticket 881'::text,
                     'failed'::text, 0)$$, pg_temp.fx('c_pending')),
    'cancel: the pending charge and its waiting email are cancelled, and the invoice leaves in_flight for failed (failed_attempts untouched)');
SELECT bag_eq(
    $$SELECT message_id, from_state, to_state, actor, detail FROM pg_temp.events_since('c_pending')$$,
    format($$VALUES (%s::bigint, 'pending'::text, 'cancelled'::text, %s::text, 'cancel: customer disputes the invoice, ticket 881'::text),
                    (%s, 'waiting', 'cancelled', %s, 'cancel: customer disputes the invoice, ticket 881')$$,
           pg_temp.fx('c_pending'), quote_literal(:actor), pg_temp.fx('c_pending_mail'), quote_literal(:actor)),
    'cancel writes the charge''s and the email''s events, each naming the operator and the reason');
SELECT pg_temp.i6_holds('I6 holds after cancelling a pending charge: its invoice is no longer in_flight');
SELECT is_empty(
    format($$SELECT * FROM pg_temp.would_take('SELECT * FROM outbox.claim_charges(''cancel-test'', 30, 1000)') id
              WHERE id = %s$$, pg_temp.fx('c_pending')),
    'a cancelled charge is never claimed');
-- a person reopens the invoice: the charger would enqueue it again (with a
-- new charge row, so a new key)
UPDATE billing.invoices SET status = 'open' WHERE id = pg_temp.inv('c_pending');
SELECT ok(pg_temp.inv('c_pending') IN (SELECT * FROM pg_temp.would_take('SELECT * FROM outbox.enqueue_due(1000)', 'invoice_id')),
    'once a person sets the invoice open again, the charger enqueues it again (a new charge row, a new key)');
SELECT pg_temp.i6_holds('I6 holds after the cancelled charge''s invoice is reopened');

-- emails: waiting, pending, dead
SELECT pg_temp.mark('c_emails');
SELECT is(pg_temp.as_op(format('SELECT outbox.cancel(%s, ''wrong address'')', pg_temp.fx(n))),
          format('email %s (invoice %s): %s -> cancelled; it will not be sent', pg_temp.fx(n), pg_temp.inv(n), s),
          format('cancel of a %s email answers with a one-line summary', s))
  FROM (VALUES ('c_email_waiting', 'waiting'), ('c_email_pending', 'pending'), ('c_email_dead', 'dead')) v (n, s);
SELECT results_eq(
    format($$SELECT state, last_error FROM outbox.messages WHERE id IN (%s, %s, %s) ORDER BY id$$,
           pg_temp.fx('c_email_waiting'), pg_temp.fx('c_email_pending'), pg_temp.fx('c_email_dead')),
    $$VALUES ('cancelled'::text, 'cancelled by cg_test_operator: wrong address'::text),
             ('cancelled', 'cancelled by cg_test_operator: wrong address'),
             ('cancelled', 'cancelled by cg_test_operator: wrong address')$$,
    'cancel: waiting, pending and dead emails are cancelled, each with who and why');
SELECT bag_eq(
    $$SELECT message_id, from_state, to_state, actor, detail FROM pg_temp.events_since('c_emails')$$,
    format($$VALUES (%s::bigint, 'waiting'::text, 'cancelled'::text, %s::text, 'cancel: wrong address'::text),
                    (%s, 'pending', 'cancelled', %s, 'cancel: wrong address'),
                    (%s, 'dead', 'cancelled', %s, 'cancel: wrong address')$$,
           pg_temp.fx('c_email_waiting'), quote_literal(:actor), pg_temp.fx('c_email_pending'), quote_literal(:actor), pg_temp.fx('c_email_dead'), quote_literal(:actor)),
    'cancelling emails writes one event each, naming the operator and the reason');
SELECT is((SELECT status FROM billing.invoices WHERE id = pg_temp.inv('c_email_waiting')), 'in_flight',
    'cancelling an email leaves its charge and invoice alone (still in_flight)');
SELECT pg_temp.i6_holds('I6 holds after cancelling emails');
-- the waiting email's charge is then sent and recorded: the email stays cancelled
CREATE TEMP TABLE late AS
SELECT (SELECT parent_id FROM outbox.messages WHERE id = pg_temp.fx('c_email_waiting')) AS charge;
SELECT pg_temp.cg_walk(charge, 'submitting') FROM late \g /dev/null
SELECT results_eq(
    format($$SELECT r.recorded, e.state FROM outbox.record_charges(%L, '{86400}', 60) r, outbox.messages e
              WHERE e.id = %s$$,
           jsonb_build_array(pg_temp.cg_result((SELECT charge FROM late), 'succeeded', '{"gateway_ref": "ch_late"}')),
           pg_temp.fx('c_email_waiting')),
    $$VALUES (true, 'cancelled'::text)$$,
    'a cancelled waiting email stays cancelled when its charge is recorded: no receipt goes out (I7: deliberately cancelled)');

------------------------------------------------------------------------------
-- 3. resolve
------------------------------------------------------------------------------
-- succeeded, against its twin recorded by the relay
SELECT pg_temp.mark('t_ok');
SELECT is(pg_temp.as_op(format('SELECT outbox.resolve(%s, ''succeeded'', '' ch_twin_ok_b '', ''found in the Stripe dashboard'')',
                               pg_temp.fx('t_ok_b'))),
    format('charge %s (invoice %s): unknown -> succeeded (gateway charge ch_twin_ok_b); payment of 1000 usd recorded; invoice %s is paid; 1 email(s) released',
           pg_temp.fx('t_ok_b'), pg_temp.inv('t_ok_b'), pg_temp.inv('t_ok_b')),
    'resolve succeeded answers with a one-line summary');
SELECT results_eq(
    format('SELECT * FROM pg_temp.effects(%s) ORDER BY 1, 2', pg_temp.fx('t_ok_b')),
    format('SELECT * FROM pg_temp.effects(%s) ORDER BY 1, 2', pg_temp.fx('t_ok_a')),
    'resolve succeeded has exactly the effects of record_charges for a direct success: row, payment, invoice, transaction, receipt');
SELECT results_eq(
    format($$SELECT m.state, m.gateway_ref, p.gateway_charge_id, p.amount_cents, i.status, i.amount_due_cents, m.last_error
               FROM outbox.messages m JOIN billing.payments p ON p.outbox_id = m.id JOIN billing.invoices i ON i.id = m.invoice_id
              WHERE m.id = %s$$, pg_temp.fx('t_ok_b')),
    $$VALUES ('succeeded'::text, 'ch_twin_ok_b'::text, 'ch_twin_ok_b'::text, 1000::bigint, 'paid'::text, 0::bigint,
              'resolved succeeded by cg_test_operator: found in the Stripe dashboard'::text)$$,
    '... namely: succeeded with the (trimmed) charge id, a payment naming it, the invoice paid');
SELECT bag_eq(
    $$SELECT message_id, from_state, to_state, actor, detail FROM pg_temp.events_since('t_ok')$$,
    format($$VALUES (%s::bigint, 'unknown'::text, 'succeeded'::text, %s::text,
                     'resolve: found in the Stripe dashboard (evidence: ch_twin_ok_b)'::text),
                    (%s, 'waiting', 'pending', %s, 'resolve: found in the Stripe dashboard (evidence: ch_twin_ok_b)')$$,
           pg_temp.fx('t_ok_b'), quote_literal(:actor), pg_temp.cg_email_of(pg_temp.fx('t_ok_b')), quote_literal(:actor)),
    'resolve writes the charge''s event and its receipt''s release, naming the operator, the reason and the evidence');
SELECT pg_temp.i6_holds('I6 holds after resolving a charge as succeeded');

-- declined
SELECT pg_temp.mark('t_dec');
SELECT is(pg_temp.as_op(format('SELECT outbox.resolve(%s, ''declined'', ''ch_twin_dec_b'', ''dashboard: card_declined'')',
                               pg_temp.fx('t_dec_b'))),
    format('charge %s (invoice %s): unknown -> declined (gateway charge ch_twin_dec_b); declined transaction recorded; invoice %s is open (next attempt from %s); 1 email(s) released',
           pg_temp.fx('t_dec_b'), pg_temp.inv('t_dec_b'), pg_temp.inv('t_dec_b'), now() + interval '86400 seconds'),
    'resolve declined answers with a one-line summary, with the next attempt');
SELECT results_eq(
    format('SELECT * FROM pg_temp.effects(%s) ORDER BY 1, 2', pg_temp.fx('t_dec_b')),
    format('SELECT * FROM pg_temp.effects(%s) ORDER BY 1, 2', pg_temp.fx('t_dec_a')),
    'resolve declined has exactly the effects of record_charges for a direct decline: transaction, invoice reopened by the (default) retry schedule, notice released');
SELECT results_eq(
    $$SELECT message_id, from_state, to_state, actor, detail FROM pg_temp.events_since('t_dec') WHERE message_id = $$
        || pg_temp.fx('t_dec_b'),
    format($$VALUES (%s::bigint, 'unknown'::text, 'declined'::text, %s::text,
                     'resolve: dashboard: card_declined (evidence: ch_twin_dec_b)'::text)$$, pg_temp.fx('t_dec_b'), quote_literal(:actor)),
    'resolve declined writes its event naming the operator, the reason and the evidence');
SELECT pg_temp.i6_holds('I6 holds after resolving a charge as declined');

-- failed (not charged), no gateway reference
SELECT pg_temp.mark('t_fail');
SELECT is(pg_temp.as_op(format('SELECT outbox.resolve(%s, ''failed'', NULL, ''no charge in the dashboard after 2 h'')',
                               pg_temp.fx('t_fail_b'))),
    format('charge %s (invoice %s): unknown -> failed; failed transaction recorded; invoice %s is open (next attempt from %s); 1 email(s) released',
           pg_temp.fx('t_fail_b'), pg_temp.inv('t_fail_b'), pg_temp.inv('t_fail_b'), now() + interval '86400 seconds'),
    'resolve failed answers with a one-line summary');
SELECT results_eq(
    format('SELECT * FROM pg_temp.effects(%s) ORDER BY 1, 2', pg_temp.fx('t_fail_b')),
    format('SELECT * FROM pg_temp.effects(%s) ORDER BY 1, 2', pg_temp.fx('t_fail_a')),
    'resolve failed has exactly the effects of record_charges for a direct failure: transaction, invoice reopened, notice released');
SELECT results_eq(
    $$SELECT message_id, from_state, to_state, actor, detail FROM pg_temp.events_since('t_fail') WHERE message_id = $$
        || pg_temp.fx('t_fail_b'),
    format($$VALUES (%s::bigint, 'unknown'::text, 'failed'::text, %s::text,
                     'resolve: no charge in the dashboard after 2 h (evidence: no gateway charge id)'::text)$$,
           pg_temp.fx('t_fail_b'), quote_literal(:actor)),
    'resolve failed writes its event naming the operator and the reason');
SELECT pg_temp.i6_holds('I6 holds after resolving a charge as failed');

-- a dead charge
SELECT pg_temp.mark('s_dead');
SELECT pg_temp.as_op(format('SELECT outbox.resolve(%s, ''succeeded'', ''ch_dead_found'', ''INC-9: found by metadata[outbox_id]'')',
                            pg_temp.fx('s_dead'))) \g /dev/null
SELECT results_eq(
    format($$SELECT m.state, i.status, (SELECT count(*) FROM billing.payments p WHERE p.outbox_id = m.id AND p.gateway_charge_id = 'ch_dead_found'),
                    (SELECT count(*) FROM billing.transactions t WHERE t.outbox_id = m.id AND t.kind = 'charge')
               FROM outbox.messages m JOIN billing.invoices i ON i.id = m.invoice_id WHERE m.id = %s$$, pg_temp.fx('s_dead')),
    $$VALUES ('succeeded'::text, 'paid'::text, 1::bigint, 1::bigint)$$,
    'resolve: a dead charge is settled too (succeeded: payment, charge transaction, invoice paid)');
SELECT results_eq(
    $$SELECT message_id, from_state, to_state, actor, detail FROM pg_temp.events_since('s_dead')$$,
    format($$VALUES (%s::bigint, 'dead'::text, 'succeeded'::text, %s::text,
                     'resolve: INC-9: found by metadata[outbox_id] (evidence: ch_dead_found)'::text)$$, pg_temp.fx('s_dead'), quote_literal(:actor)),
    'resolving a dead charge writes its dead -> succeeded event');
SELECT pg_temp.i6_holds('I6 holds after resolving a dead charge');

-- the charge id the relay already saw for the row is accepted
SELECT pg_temp.as_op(format('SELECT outbox.resolve(%s, ''succeeded'', ''ch_seen_by_relay'', ''confirmed at the gateway'')',
                            pg_temp.fx('s_own_ref'))) \g /dev/null
SELECT results_eq(
    format($$SELECT m.state, p.gateway_charge_id FROM outbox.messages m JOIN billing.payments p ON p.outbox_id = m.id WHERE m.id = %s$$,
           pg_temp.fx('s_own_ref')),
    $$VALUES ('succeeded'::text, 'ch_seen_by_relay'::text)$$,
    'resolve succeeded with the charge id the relay had already seen for the row records it');

-- a lookup in progress is not recorded afterwards
CREATE TEMP TABLE old_lookup2 AS SELECT id, claim_token FROM outbox.messages WHERE id = pg_temp.fx('s_lookup');
SELECT pg_temp.as_op(format('SELECT outbox.resolve(%s, ''declined'', NULL, ''dashboard: declined'')', pg_temp.fx('s_lookup'))) \g /dev/null
SELECT results_eq(
    format($$SELECT recorded FROM outbox.record_lookups(%L, '{86400}', '{60}', 900)$$,
           (SELECT jsonb_agg(jsonb_build_object('id', id, 'claim_token', claim_token, 'found', 'succeeded',
                                                'gateway_ref', 'ch_late_lookup')) FROM old_lookup2)),
    $$VALUES (false)$$,
    'a lookup in progress when the row was resolved is not recorded afterwards (the row is no longer unknown)');
SELECT results_eq(
    format($$SELECT m.state, (SELECT count(*) FROM billing.payments p WHERE p.outbox_id = m.id),
                    (SELECT count(*) FROM billing.transactions t WHERE t.outbox_id = m.id)
               FROM outbox.messages m WHERE m.id = %s$$, pg_temp.fx('s_lookup')),
    $$VALUES ('declined'::text, 0::bigint, 1::bigint)$$,
    '... the resolution stands: declined, one transaction, no payment');

-- declined with no retry left: the invoice is failed
SELECT pg_temp.as_op(format($$SELECT outbox.resolve(%s, 'declined', NULL, 'card reported stolen', '{}')$$,
                            pg_temp.fx('s_no_retry'))) \g /dev/null
SELECT results_eq(
    format('SELECT status, failed_attempts, next_attempt_at FROM billing.invoices WHERE id = %s', pg_temp.inv('s_no_retry')),
    $$VALUES ('failed'::text, 1, NULL::timestamptz)$$,
    'resolve uses the retry schedule given: with ''{}'' a decline fails the invoice (a person decides)');
SELECT pg_temp.i6_holds('I6 holds after the last resolutions');

------------------------------------------------------------------------------
-- 4. Every refusal: CG010 with its message, a HINT, and nothing changed
------------------------------------------------------------------------------
CREATE TEMP TABLE before_refusals AS SELECT * FROM outbox.messages;
SELECT pg_temp.mark('refusals');

SELECT pg_temp.op_refused(call, message, format('%s refused with CG010: %s', fn, description))
  FROM refusals ORDER BY ord;
SELECT ok(coalesce(pg_temp.op_hint(call) LIKE '%' || hint || '%', false),
          format('%s refusal (%s) has a HINT saying what to do instead ("%s")', fn, description, hint))
  FROM refusals ORDER BY ord;

SELECT is_empty('SELECT * FROM pg_temp.events_since(''refusals'')', 'the refused calls wrote no event');
SELECT is_empty('SELECT * FROM outbox.messages EXCEPT SELECT * FROM before_refusals',
    'the refused calls changed no row');

------------------------------------------------------------------------------
-- 5. Across all calls
------------------------------------------------------------------------------
SELECT is_empty(
    $$SELECT e.* FROM outbox.events e JOIN outbox.messages m ON m.id = e.message_id
       WHERE m.kind = 'charge' AND e.actor LIKE '%(operator)' AND e.to_state IN ('pending', 'submitting')$$,
    'no operator call ever made a charge pending or submitting: replay never leads to a new POST');
SELECT results_eq(
    $$SELECT current_setting('outbox.actor'), current_setting('outbox.detail')$$,
    $$VALUES ('psql by hand'::text, 'my own detail'::text)$$,
    'the caller''s own outbox.actor and outbox.detail are untouched by the calls (the functions scope theirs)');

SELECT * FROM finish();
ROLLBACK;
