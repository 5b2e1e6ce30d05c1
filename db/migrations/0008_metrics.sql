-- 0008: what the relay's /metrics needs from the database.
--
-- outbox_relay may not read outbox.messages directly (it works through its
-- functions only), so the gauges outbox_messages{kind,state} and
-- outbox_oldest_pending_age_seconds{kind} come from this one function:
-- one row per (kind, state) the state machine allows, zero included (a
-- series that vanishes at zero breaks alerts and graphs), plus any other
-- pair present (none, while the CHECK constraint holds).
--
-- Cost: one pass over outbox.messages (count per kind and state), so the
-- relay runs it every --metrics-db-interval seconds on a connection of its
-- own, never on the one that claims and records.

CREATE FUNCTION outbox.metrics_snapshot()
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
    SELECT k.kind, k.state, coalesce(c.n, 0), coalesce(c.due_age, 0)::double precision
      FROM (SELECT a.kind, a.state FROM allowed a UNION SELECT c2.kind, c2.state FROM counted c2) k
      LEFT JOIN counted c ON c.kind = k.kind AND c.state = k.state
     ORDER BY k.kind, k.state
$$;
COMMENT ON FUNCTION outbox.metrics_snapshot() IS
    'per kind and state: count (zero included) and, for pending rows, seconds since the oldest due one became due';

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA billing, outbox FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outbox.metrics_snapshot() TO outbox_relay;
