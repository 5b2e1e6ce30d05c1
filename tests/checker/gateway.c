/* gateway.c: the checks on what was sent to the gateway: I4 at-most-once
 * send, and charges-have-rows. Only charge POSTs count (pg_temp.cg_post);
 * lookups cannot move money. */
#include "check.h"

/* Per idempotency key, requests in seq order. The rule, stated once for
 * every request that has a successor with the same key: it must be a
 * request the gateway did not execute and whose answer proves that (429, or
 * the connection reset before execution, fault `reset_before`). With an
 * executed request this is exactly "every request before it proves
 * non-execution, none comes after it, at most one executes"; without one
 * it also refuses a re-send after any other answer (400, 401, ...), which
 * PROTOCOL.md does not allow either. Besides: no 409 (two requests with
 * one key at once), and no charge POST without a key. A 409 the simulator
 * made up (fault `409`: no other request with the key existed) is no sign
 * of a double send; it proves nothing either, so a re-send after it is
 * still broken by the rule above. A request's
 * invoice is its key's charge row's, else its outbox_id's row's, else its
 * metadata[invoice_id]. A gateway without idempotency keys (Authorize.Net:
 * the ledger names the operation) is judged per invoiceNumber, which is
 * the outbox row id: the same rule, per charge row. */
const struct check check_i4 = {
	.id = CHECK_I4,
	.title = "at-most-once send (per key one executed POST, re-sent only after an answer "
		 "proving non-execution, none after it, no 409)",
	.sql = "WITH post AS ("
	       " SELECT r.*, coalesce(k.invoice_id, o.invoice_id, r.invoice_ref) AS inv,"
	       "        coalesce(nullif(r.idem_key, ''), CASE WHEN r.operation IS NOT NULL"
	       "                 THEN 'invoiceNumber ' || coalesce(r.outbox_id, '?') END) AS send_key,"
	       "        coalesce(r.status, 0) = 429 OR r.fault = 'reset_before' AS proves_not_executed,"
	       "        format('seq %s (%s%s%s%s)', r.seq,"
	       "               CASE WHEN r.status IS NULL THEN 'not answered yet'"
	       "                    WHEN r.status = 0 THEN 'connection reset'"
	       "                    ELSE 'status ' || r.status END,"
	       "               CASE WHEN r.fault <> 'none' THEN ', fault ' || r.fault END,"
	       "               CASE WHEN r.replayed THEN ', replayed' END,"
	       "               CASE WHEN r.executed THEN ', executed' END) AS what"
	       "   FROM pg_temp.cg_post r"
	       "   LEFT JOIN pg_temp.cg_messages k ON k.kind = 'charge' AND k.idempotency_key = r.idem_key"
	       "   LEFT JOIN pg_temp.cg_messages o ON o.id = r.outbox_ref"
	       "), keyed AS ("
	       " SELECT p.*, lead(p.seq) OVER w AS next_seq,"
	       "        min(p.seq) FILTER (WHERE p.executed) OVER (PARTITION BY p.send_key) AS exec_seq"
	       "   FROM post p WHERE p.send_key IS NOT NULL"
	       " WINDOW w AS (PARTITION BY p.send_key ORDER BY p.seq)"
	       "), why AS ("
	       " SELECT inv, seq, send_key, what, concat_ws('; ',"
	       "   CASE WHEN seq > exec_seq"
	       "        THEN format('sent after seq %s had executed', exec_seq) END,"
	       "   CASE WHEN next_seq IS NOT NULL AND NOT executed AND NOT proves_not_executed"
	       "             AND (exec_seq IS NULL OR seq < exec_seq)"
	       "        THEN format('re-sent as seq %s, but this answer does not prove'"
	       "                    || ' non-execution (only 429 or reset_before do)', next_seq) END,"
	       "   CASE WHEN status = 409 AND fault <> '409'"
	       "        THEN 'answered 409: two requests with this key at once' END) AS why"
	       "   FROM keyed"
	       ")"
	       " SELECT inv, seq, format('invoice %s: key %s: request %s: %s',"
	       "                        coalesce(inv::text, '?'), send_key, what, why)"
	       "   FROM why WHERE why <> ''"
	       " UNION ALL"
	       " SELECT inv, seq, format('invoice %s: request %s (metadata[outbox_id] %s)'"
	       "                        || ' has no Idempotency-Key', coalesce(inv::text, '?'), what,"
	       "                        coalesce(outbox_id, 'none'))"
	       "   FROM post WHERE send_key IS NULL"
	       "  ORDER BY 1, 2, 3",
};

/* Every charge POST names (metadata[outbox_id], or Authorize.Net's
 * invoiceNumber) a charge row of ours and agrees with it: the same key (for
 * a gateway that takes one), amount, currency, and metadata[invoice_id]
 * (CONTRACT.md's wire format sends it; I1 and I2 rely on it). */
const struct check check_have_rows = {
	.id = CHECK_HAVE_ROWS,
	.title = "every charge POST names a charge row of ours with the same key, amount and "
		 "currency",
	.sql = "WITH why AS ("
	       " SELECT r.seq, r.idem_key, coalesce(m.invoice_id, r.invoice_ref) AS inv,"
	       "        coalesce(m.invoice_id::text, r.invoice_id, '?') AS inv_label,"
	       "  CASE WHEN r.outbox_id IS NULL THEN 'no metadata[outbox_id]'"
	       "       WHEN m.id IS NULL"
	       "       THEN format('metadata[outbox_id] %s is no outbox row', r.outbox_id)"
	       "       WHEN m.kind <> 'charge'"
	       "       THEN format('metadata[outbox_id] %s is an %s row, not a charge',"
	       "                   r.outbox_id, m.kind)"
	       "       ELSE concat_ws('; ',"
	       "         CASE WHEN r.operation IS NULL AND r.idem_key IS DISTINCT FROM m.idempotency_key"
	       "              THEN format('charge row %s has key %s', m.id, m.idempotency_key) END,"
	       "         CASE WHEN pg_temp.cg_ref(r.amount) IS DISTINCT FROM m.amount_cents"
	       "              THEN format('amount %s, charge row %s has %s',"
	       "                          coalesce(r.amount, 'none'), m.id, m.amount_cents) END,"
	       "         CASE WHEN r.currency IS DISTINCT FROM m.currency"
	       "              THEN format('currency %s, charge row %s has %s',"
	       "                          coalesce(r.currency, 'none'), m.id, m.currency) END,"
	       "         CASE WHEN r.invoice_id IS DISTINCT FROM m.invoice_id::text"
	       "              THEN format('metadata[invoice_id] %s, charge row %s is for invoice %s',"
	       "                          coalesce(r.invoice_id, 'none'), m.id, m.invoice_id) END)"
	       "  END AS why"
	       "   FROM pg_temp.cg_post r LEFT JOIN pg_temp.cg_messages m ON m.id = r.outbox_ref"
	       ")"
	       " SELECT inv, seq, format('invoice %s: request seq %s (key %s): %s', inv_label, seq,"
	       "                        coalesce(idem_key, 'none'), why)"
	       "   FROM why WHERE why <> '' ORDER BY 1, 2",
};
