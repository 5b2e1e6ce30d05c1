-- 02_transitions: the database enforces exactly the state machine of PROTOCOL.md.
--
-- Proves, exhaustively and generated from the state lists below (never by
-- hand), that:
--   * outbox.transitions holds exactly the moves PROTOCOL.md describes;
--   * for every kind (charge, email) and every ordered pair of different
--     states (from, to), a row in `from` can be moved to `to` if and only if
--     (kind, from, to) is in outbox.transitions; any other move is refused
--     with CG001. Each attempt runs on a fresh row walked to `from` along a
--     legal path, and the UPDATE also sets whatever `to` requires (claim
--     token, attempts + 1, lease, last_error, gateway_ref, template), so only
--     the transition rule decides;
--   * a charge can only be created pending, an e-mail only waiting (CG001);
--   * invoice statuses move only along outbox.transitions (kind 'invoice'),
--     all 20 ordered pairs. (I6 is a deferred constraint trigger; it never
--     fires here since nothing forces it and the transaction rolls back.)
BEGIN;
\ir helpers.psql

-- The states of each kind, in PROTOCOL.md / CONTRACT.md order.
CREATE TEMP TABLE states (kind text, state text, ord bigint);
INSERT INTO states
SELECT 'charge', s, n FROM unnest(ARRAY['pending', 'submitting', 'succeeded', 'declined',
                                       'failed', 'unknown', 'dead', 'cancelled']) WITH ORDINALITY AS u (s, n)
UNION ALL
SELECT 'email', s, n FROM unnest(ARRAY['waiting', 'pending', 'submitting', 'sent',
                                      'cancelled', 'dead']) WITH ORDINALITY AS u (s, n)
UNION ALL
SELECT 'invoice', s, n FROM unnest(ARRAY['open', 'in_flight', 'paid', 'failed', 'void']) WITH ORDINALITY AS u (s, n);

-- Every ordered pair of different states, with the legal move (if any).
CREATE TEMP TABLE pairs AS
SELECT f.kind, f.state AS from_state, t.state AS to_state, tr.meaning, f.ord AS f_ord, t.ord AS t_ord
  FROM states f
  JOIN states t ON t.kind = f.kind AND t.state <> f.state
  LEFT JOIN outbox.transitions tr
         ON tr.kind = f.kind AND tr.from_state = f.state AND tr.to_state = t.state;

-- What each attempted message move did (checked in bulk at the end).
CREATE TEMP TABLE attempts (id bigint, kind text, from_state text, to_state text, legal boolean);

SELECT plan((
      1                                                             -- the transitions table
    + (SELECT count(*) FROM pairs WHERE kind IN ('charge', 'email'))  -- every message move
    + 3                                                             -- moves really happened / did not / events
    + (SELECT count(*) FROM states WHERE kind IN ('charge', 'email')) -- creation in each state
    + (SELECT count(*) FROM pairs WHERE kind = 'invoice')           -- every invoice move
    + 1                                                             -- invoice moves really happened
)::int);

-- 1. The single list of legal moves is the one PROTOCOL.md describes
--    (submitting -> dead: CONTRACT.md's 400 idempotency_error).
SELECT set_eq(
    $$SELECT kind, from_state, to_state FROM outbox.transitions$$,
    $$VALUES
      ('charge', NULL,         'pending'),
      ('charge', 'pending',    'submitting'),
      ('charge', 'pending',    'cancelled'),
      ('charge', 'submitting', 'succeeded'),
      ('charge', 'submitting', 'declined'),
      ('charge', 'submitting', 'failed'),
      ('charge', 'submitting', 'unknown'),
      ('charge', 'submitting', 'pending'),
      ('charge', 'submitting', 'dead'),
      ('charge', 'unknown',    'succeeded'),
      ('charge', 'unknown',    'declined'),
      ('charge', 'unknown',    'failed'),
      ('charge', 'unknown',    'dead'),
      ('charge', 'unknown',    'unknown'),
      ('charge', 'dead',       'unknown'),
      ('charge', 'dead',       'succeeded'),
      ('charge', 'dead',       'declined'),
      ('charge', 'dead',       'failed'),
      ('email',  NULL,         'waiting'),
      ('email',  'waiting',    'pending'),
      ('email',  'waiting',    'cancelled'),
      ('email',  'pending',    'submitting'),
      ('email',  'pending',    'cancelled'),
      ('email',  'submitting', 'sent'),
      ('email',  'submitting', 'pending'),
      ('email',  'submitting', 'dead'),
      ('email',  'dead',       'pending'),
      ('email',  'dead',       'cancelled'),
      ('invoice', 'open',      'in_flight'),
      ('invoice', 'open',      'void'),
      ('invoice', 'open',      'paid'),
      ('invoice', 'open',      'failed'),
      ('invoice', 'in_flight', 'paid'),
      ('invoice', 'in_flight', 'open'),
      ('invoice', 'in_flight', 'failed'),
      ('invoice', 'failed',    'open'),
      ('invoice', 'failed',    'void')$$,
    'outbox.transitions is exactly the state machine of PROTOCOL.md (a change there must change this test)');

-- 2. Every ordered pair of message states.
CREATE FUNCTION pg_temp.message_moves(p_kind text)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    m bigint;
BEGIN
    FOR r IN SELECT * FROM pairs WHERE kind = p_kind ORDER BY f_ord, t_ord LOOP
        m := pg_temp.cg_message_in(r.kind, r.from_state);
        INSERT INTO attempts VALUES (m, r.kind, r.from_state, r.to_state, r.meaning IS NOT NULL);
        IF r.meaning IS NOT NULL THEN
            RETURN NEXT lives_ok(pg_temp.cg_move_sql(m, r.to_state),
                format('%s %s -> %s is allowed (%s)', r.kind, r.from_state, r.to_state, r.meaning));
        ELSE
            RETURN NEXT throws_ok(pg_temp.cg_move_sql(m, r.to_state), 'CG001', NULL,
                format('%s %s -> %s is refused with CG001: not a move of outbox.transitions',
                       r.kind, r.from_state, r.to_state));
        END IF;
    END LOOP;
END
$$;

SELECT * FROM pg_temp.message_moves('charge');
SELECT * FROM pg_temp.message_moves('email');

-- lives_ok alone would also pass on an UPDATE that matched no row.
SELECT is(
    (SELECT count(*) FROM attempts a JOIN outbox.messages m ON m.id = a.id
      WHERE a.legal AND m.state = a.to_state),
    (SELECT count(*) FROM attempts WHERE legal),
    'every allowed move really moved its row to the target state');
SELECT is(
    (SELECT count(*) FROM attempts a JOIN outbox.messages m ON m.id = a.id
      WHERE NOT a.legal AND m.state = a.from_state),
    (SELECT count(*) FROM attempts WHERE NOT legal),
    'every refused move left its row in the state it was in');
SELECT is(
    (SELECT count(*) FROM attempts a
      WHERE (SELECT count(*) FROM outbox.events e
              WHERE e.message_id = a.id AND e.from_state = a.from_state
                AND e.to_state = a.to_state) = CASE WHEN a.legal THEN 1 ELSE 0 END),
    (SELECT count(*) FROM attempts),
    'every allowed move wrote one event (from, to), no refused move wrote one');

-- 3. Creation: a charge only pending, an e-mail only waiting. The INSERT
--    carries the columns its state needs, so only the creation rule decides.
CREATE FUNCTION pg_temp.creations(p_kind text)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    inv bigint;
    ch bigint;
    cols text;
    vals text;
    q text;
BEGIN
    FOR r IN SELECT s.state, t.meaning FROM states s
               LEFT JOIN outbox.transitions t
                      ON t.kind = s.kind AND t.from_state IS NULL AND t.to_state = s.state
              WHERE s.kind = p_kind ORDER BY s.ord LOOP
        inv := pg_temp.cg_invoice('in_flight');
        IF p_kind = 'charge' THEN
            cols := 'kind, invoice_id, idempotency_key, amount_cents, currency, state';
            vals := format('''charge'', %s, %L, 1000, ''usd'', %L', inv, 'create_' || inv, r.state);
        ELSE
            ch := pg_temp.cg_charge(inv);
            cols := 'kind, invoice_id, parent_id, state';
            vals := format('''email'', %s, %s, %L', inv, ch, r.state);
            IF r.state NOT IN ('waiting', 'cancelled') THEN
                cols := cols || ', template';
                vals := vals || ', ''receipt''';
            END IF;
        END IF;
        IF r.state = 'submitting' THEN
            cols := cols || ', attempts, claim_token, lease_owner, lease_expires_at';
            vals := vals || ', 1, gen_random_uuid(), ''test-relay'', now() + interval ''5 minutes''';
        ELSIF r.state = 'dead' THEN
            cols := cols || ', last_error';
            vals := vals || ', ''test: needs a person''';
        ELSIF r.state = 'succeeded' THEN
            cols := cols || ', gateway_ref';
            vals := vals || ', ''ch_test''';
        END IF;
        q := format('INSERT INTO outbox.messages (%s) VALUES (%s)', cols, vals);
        IF r.meaning IS NOT NULL THEN
            RETURN NEXT lives_ok(q, format('a new %s row may be created %s (%s)', p_kind, r.state, r.meaning));
        ELSE
            RETURN NEXT throws_ok(q, 'CG001', NULL,
                format('a new %s row cannot be created %s: CG001, rows start at the beginning of the state machine',
                       p_kind, r.state));
        END IF;
    END LOOP;
END
$$;

SELECT * FROM pg_temp.creations('charge');
SELECT * FROM pg_temp.creations('email');

-- 4. Every ordered pair of invoice statuses. A fresh invoice is inserted in
--    `from` (the invoice table accepts any status on INSERT).
CREATE TEMP TABLE invoice_attempts (id bigint, from_state text, to_state text, legal boolean);

CREATE FUNCTION pg_temp.invoice_moves()
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    inv bigint;
    q text;
BEGIN
    FOR r IN SELECT * FROM pairs WHERE kind = 'invoice' ORDER BY f_ord, t_ord LOOP
        inv := pg_temp.cg_invoice(r.from_state);
        INSERT INTO invoice_attempts VALUES (inv, r.from_state, r.to_state, r.meaning IS NOT NULL);
        q := format('UPDATE billing.invoices SET status = %L WHERE id = %s', r.to_state, inv);
        IF r.meaning IS NOT NULL THEN
            RETURN NEXT lives_ok(q, format('invoice %s -> %s is allowed (%s)', r.from_state, r.to_state, r.meaning));
        ELSE
            RETURN NEXT throws_ok(q, 'CG001', NULL,
                format('invoice %s -> %s is refused with CG001: not a move of outbox.transitions',
                       r.from_state, r.to_state));
        END IF;
    END LOOP;
END
$$;

SELECT * FROM pg_temp.invoice_moves();

SELECT is(
    (SELECT count(*) FROM invoice_attempts a JOIN billing.invoices i ON i.id = a.id
      WHERE i.status = CASE WHEN a.legal THEN a.to_state ELSE a.from_state END),
    (SELECT count(*) FROM invoice_attempts),
    'every allowed invoice move changed the status, every refused one left it');

SELECT * FROM finish();
ROLLBACK;
