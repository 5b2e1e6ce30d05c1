/* state.c: the checks on our own state machine: I6 enqueue atomicity,
 * I8 audit, and (with --expect-settled) settled. Pure SQL over the
 * database; no ledger needed. */
#include "check.h"

/* "in_flight exactly when it has one live charge row", read as: an
 * in_flight invoice has exactly one, any other invoice none. (The
 * database's own trigger tests (in_flight) <> (live = 1), which would let
 * an open invoice with two live rows pass; the unique index stops that in
 * a sound database, the checker must not rely on either.) */
const struct check check_i6 = {
	.id = CHECK_I6,
	.title = "enqueue atomicity (an invoice is in_flight exactly when it has one live "
		 "charge row)",
	.sql = "SELECT i.id, format('invoice %s: %s with %s live charge row(s)%s', i.id, i.status,"
	       "               coalesce(l.n, 0), coalesce(': ' || l.row_list, ''))"
	       "   FROM billing.invoices i"
	       "   LEFT JOIN (SELECT invoice_id, count(*) AS n,"
	       "                     string_agg(format('%s (%s)', id, state), ', ' ORDER BY id)"
	       "                       AS row_list"
	       "                FROM pg_temp.cg_messages"
	       "               WHERE kind = 'charge'"
	       "                 AND state IN ('pending', 'submitting', 'unknown', 'dead')"
	       "               GROUP BY invoice_id) l ON l.invoice_id = i.id"
	       "  WHERE CASE WHEN i.status = 'in_flight' THEN coalesce(l.n, 0) <> 1"
	       "             ELSE coalesce(l.n, 0) <> 0 END"
	       "  ORDER BY i.id",
};

/* Each row's events, by id: the first is its creation (from NULL), each is
 * a (kind, from, to) of outbox.transitions, each starts where the previous
 * ended, the last ends in the row's state; a row without events lost its
 * history. Archived rows and events are judged like live ones (scope.h);
 * events of a row in neither have no row to hold their kind and state, and
 * are not judged. */
const struct check check_i8 = {
	.id = CHECK_I8,
	.title = "audit (every message's events form a legal path of outbox.transitions "
		 "ending in its state)",
	.sql = "WITH ev AS ("
	       " SELECT e.id, e.message_id, e.from_state, e.to_state, m.kind, m.state, m.invoice_id,"
	       "        lag(e.to_state) OVER w AS prev_to, row_number() OVER w AS n,"
	       "        count(*) OVER (PARTITION BY e.message_id) AS total,"
	       "        EXISTS (SELECT 1 FROM outbox.transitions t"
	       "                 WHERE t.kind = m.kind AND t.to_state = e.to_state"
	       "                   AND t.from_state IS NOT DISTINCT FROM e.from_state) AS legal"
	       "   FROM pg_temp.cg_events e JOIN pg_temp.cg_messages m ON m.id = e.message_id"
	       " WINDOW w AS (PARTITION BY e.message_id ORDER BY e.id)"
	       "), why AS ("
	       " SELECT *, concat_ws('; ',"
	       "   CASE WHEN n = 1 AND from_state IS NOT NULL"
	       "        THEN 'its first event is not its creation' END,"
	       "   CASE WHEN n > 1 AND from_state IS NULL THEN 'a second creation' END,"
	       "   CASE WHEN n > 1 AND from_state <> prev_to"
	       "        THEN format('but the previous event left it %s', prev_to) END,"
	       "   CASE WHEN NOT legal"
	       "        THEN format('not a %s transition of outbox.transitions', kind) END,"
	       "   CASE WHEN n = total AND to_state <> state"
	       "        THEN format('its last event, but the row is %s', state) END) AS why"
	       "   FROM ev"
	       ")"
	       " SELECT invoice_id, message_id, id,"
	       "        format('invoice %s: %s %s: event %s (%s -> %s): %s', invoice_id, kind,"
	       "               message_id, id, coalesce(from_state, 'NULL'), to_state, why)"
	       "   FROM why WHERE why <> ''"
	       " UNION ALL"
	       " SELECT m.invoice_id, m.id, NULL, format('invoice %s: %s %s (%s) has no events at all',"
	       "                                        m.invoice_id, m.kind, m.id, m.state)"
	       "   FROM pg_temp.cg_messages m"
	       "  WHERE NOT EXISTS (SELECT 1 FROM pg_temp.cg_events e WHERE e.message_id = m.id)"
	       "  ORDER BY 1, 2, 3 NULLS FIRST",
};

/* README.md: no submitting row, no pending charge, every email of a
 * terminal charge sent or cancelled; and, from I5, every dead row carries
 * its reason. */
const struct check check_settled = {
	.id = CHECK_SETTLED,
	.title = "I5 liveness: no submitting row, no pending or unknown charge, every dead row "
		 "with its reason, every email of a terminal charge sent or cancelled",
	.sql = "SELECT invoice_id, id,"
	       "       format('invoice %s: %s %s is still submitting (claimed by %s until %s)',"
	       "              invoice_id, kind, id, coalesce(lease_owner, '?'),"
	       "              coalesce(lease_expires_at::text, '?'))"
	       "   FROM pg_temp.cg_messages WHERE state = 'submitting'"
	       " UNION ALL"
	       " SELECT invoice_id, id, format('invoice %s: charge %s is still pending (%s attempt(s),"
	       " not before %s)', invoice_id, id, attempts, not_before)"
	       "   FROM pg_temp.cg_messages WHERE kind = 'charge' AND state = 'pending'"
	       " UNION ALL"
	       " SELECT invoice_id, id, format('invoice %s: charge %s is still unknown (%s inconclusive"
	       " lookup(s); next at %s): %s', invoice_id, id, failed_lookups, not_before,"
	       " coalesce(last_error, ''))"
	       "   FROM pg_temp.cg_messages WHERE kind = 'charge' AND state = 'unknown'"
	       " UNION ALL"
	       " SELECT e.invoice_id, e.id, format('invoice %s: email %s of charge %s (%s) is %s,"
	       " not sent or cancelled', e.invoice_id, e.id, c.id, c.state, e.state)"
	       "   FROM pg_temp.cg_messages e JOIN pg_temp.cg_messages c ON c.id = e.parent_id"
	       "  WHERE e.kind = 'email' AND c.state IN ('succeeded', 'declined', 'failed', 'cancelled')"
	       "    AND e.state NOT IN ('sent', 'cancelled', 'submitting')"
	       " UNION ALL"
	       " SELECT invoice_id, id, format('invoice %s: %s %s is dead without a reason (last_error"
	       " blank)', invoice_id, kind, id)"
	       "   FROM pg_temp.cg_messages WHERE state = 'dead' AND coalesce(btrim(last_error), '') = ''"
	       "  ORDER BY 1, 2, 3",
};
