/* money.c: the money checks: I1 no double charge, I2 no lost money,
 * I3 balances. Counted from the gateway's ledger, not from our tables. */
#include "check.h"

/* Each query computes its reasons once (concat_ws of CASEs, '' when there
 * are none) and keeps the rows that have some, so the condition and its
 * diagnostic cannot disagree. */

/* A successful gateway charge is one the ledger says `succeeded`, forgotten
 * or not: `forget_after` only hides it from GET /v1/charges, the money
 * moved. It belongs to the invoice its metadata names AND to the invoice of
 * the charge row its metadata[outbox_id] names: when the two differ (a bug
 * charges-have-rows reports) it counts against both, never against neither.
 * A charge in another currency than its invoice's cannot be summed against
 * it, and is reported too. */
const struct check check_i1 = {
	.id = CHECK_I1,
	.title = "no double charge (at most one successful gateway charge per invoice, "
		 "never more than its amount)",
	.sql = "WITH won AS ("
	       " SELECT ci.invoice_id, c.id, c.amount, c.currency, c.forgotten, c.created,"
	       "        i.id IS NOT NULL AS known, i.amount_cents, i.currency AS inv_currency"
	       "   FROM pg_temp.cg_charge c"
	       "   CROSS JOIN LATERAL ("
	       "     SELECT c.invoice_ref"
	       "     UNION SELECT m.invoice_id FROM pg_temp.cg_messages m"
	       "            WHERE m.id = c.outbox_ref AND m.kind = 'charge') ci (invoice_id)"
	       "   LEFT JOIN billing.invoices i ON i.id = ci.invoice_id"
	       "  WHERE c.status = 'succeeded' AND ci.invoice_id IS NOT NULL"
	       "), per AS ("
	       " SELECT invoice_id, bool_or(known) AS known, max(amount_cents) AS amount_cents,"
	       "        max(inv_currency) AS inv_currency, count(*) AS n, sum(amount) AS total,"
	       "        string_agg(format('%s (%s %s%s)', id, amount, currency,"
	       "                          CASE WHEN forgotten THEN ', forgotten' ELSE '' END),"
	       "                   ', ' ORDER BY created, id) AS charges,"
	       "        string_agg(format('%s in %s', id, currency), ', ' ORDER BY created, id)"
	       "          FILTER (WHERE currency IS DISTINCT FROM inv_currency) AS foreign_ones"
	       "   FROM won GROUP BY invoice_id"
	       "), why AS ("
	       " SELECT invoice_id, concat_ws('; ',"
	       "   CASE WHEN NOT known"
	       "        THEN format('charged by %s but there is no such invoice', charges) END,"
	       "   CASE WHEN n > 1 THEN format('%s successful charges: %s', n, charges) END,"
	       "   CASE WHEN total > amount_cents"
	       "        THEN format('charged %s in total, more than its amount_cents %s',"
	       "                    total, amount_cents) END,"
	       "   CASE WHEN known AND foreign_ones IS NOT NULL"
	       "        THEN format('charged in another currency than its own (%s): %s',"
	       "                    inv_currency, foreign_ones) END) AS why"
	       "   FROM per"
	       ")"
	       " SELECT invoice_id, format('invoice %s: %s', invoice_id, why)"
	       "   FROM why WHERE why <> '' ORDER BY invoice_id",
};

/* Both ways: each successful gateway charge has exactly one payment row that
 * agrees with it (amount, currency, invoice, outbox row); each payment row
 * has a successful gateway charge, and its outbox row, live or archived
 * (since 0013 no foreign key keeps it: the delete guard does). Charges no metadata ties to an invoice
 * still need their payment row: money moved. */
const struct check check_i2 = {
	.id = CHECK_I2,
	.title = "no lost money (every successful gateway charge has exactly one matching "
		 "payment row, every payment row its gateway charge)",
	.sql = "WITH won AS ("
	       " SELECT c.*, m.invoice_id AS row_invoice,"
	       "        array_remove(ARRAY[c.invoice_ref, m.invoice_id], NULL) AS invoices"
	       "   FROM pg_temp.cg_charge c"
	       "   LEFT JOIN pg_temp.cg_messages m ON m.id = c.outbox_ref AND m.kind = 'charge'"
	       "  WHERE c.status = 'succeeded'"
	       "), paid AS ("
	       " SELECT w.id, count(p.id) AS n, string_agg(p.id::text, ', ' ORDER BY p.id) AS ids"
	       "   FROM won w LEFT JOIN billing.payments p ON p.gateway_charge_id = w.id"
	       "  GROUP BY w.id"
	       "), disagree AS ("
	       " SELECT p.*, w.id AS charge, concat_ws('; ',"
	       "   CASE WHEN p.amount_cents <> w.amount"
	       "        THEN format('amount_cents %s, the charge''s amount %s',"
	       "                    p.amount_cents, w.amount) END,"
	       "   CASE WHEN p.currency <> w.currency"
	       "        THEN format('currency %s, the charge''s %s', p.currency, w.currency) END,"
	       "   CASE WHEN cardinality(w.invoices) = 0 OR NOT p.invoice_id = ALL (w.invoices)"
	       "        THEN format('the charge is for invoice %s (metadata[invoice_id]) / %s'"
	       "                    || ' (its outbox row)', coalesce(w.invoice_id, 'none'),"
	       "                    coalesce(w.row_invoice::text, 'none')) END,"
	       "   CASE WHEN p.outbox_id IS DISTINCT FROM w.outbox_ref"
	       "        THEN format('outbox_id %s, the charge''s metadata[outbox_id] %s',"
	       "                    p.outbox_id, coalesce(w.outbox_id, 'none')) END) AS why"
	       "   FROM billing.payments p JOIN won w ON w.id = p.gateway_charge_id"
	       ")"
	       " SELECT coalesce(w.row_invoice, w.invoice_ref) AS k, w.id,"
	       "        format('invoice %s: gateway charge %s (%s %s, metadata[outbox_id] %s%s) has %s',"
	       "               coalesce(w.row_invoice::text, w.invoice_id, '?'), w.id, w.amount,"
	       "               w.currency, coalesce(w.outbox_id, 'none'),"
	       "               CASE WHEN w.forgotten THEN ', forgotten by the gateway''s list' END,"
	       "               CASE WHEN pd.n = 0 THEN 'no billing.payments row'"
	       "                    ELSE format('%s billing.payments rows (%s)', pd.n, pd.ids) END)"
	       "   FROM won w JOIN paid pd ON pd.id = w.id WHERE pd.n <> 1"
	       "    AND NOT (pd.n = 0 AND current_setting('checker.allow_unknown') = 'on'"
	       "             AND EXISTS (SELECT 1 FROM pg_temp.cg_messages u WHERE u.id = w.outbox_ref"
	       "                          AND u.kind = 'charge' AND u.state IN ('unknown', 'dead')))"
	       " UNION ALL"
	       " SELECT invoice_id, charge, format('invoice %s: payment %s of gateway charge %s: %s',"
	       "                                  invoice_id, id, charge, why)"
	       "   FROM disagree WHERE why <> ''"
	       " UNION ALL"
	       " SELECT p.invoice_id, p.gateway_charge_id,"
	       "        format('invoice %s: payment %s (%s %s, outbox %s) has no successful gateway'"
	       "               || ' charge: %s', p.invoice_id, p.id, p.amount_cents, p.currency,"
	       "               p.outbox_id,"
	       "               CASE WHEN c.id IS NULL"
	       "                    THEN format('the gateway never made %s', p.gateway_charge_id)"
	       "                    ELSE format('the gateway''s charge %s is %s', c.id, c.status) END)"
	       "   FROM billing.payments p LEFT JOIN pg_temp.cg_charge c ON c.id = p.gateway_charge_id"
	       "  WHERE c.status IS DISTINCT FROM 'succeeded'"
	       " UNION ALL"
	       " SELECT p.invoice_id, p.gateway_charge_id,"
	       "        format('invoice %s: payment %s names outbox row %s, which is neither in'"
	       "               || ' outbox.messages nor in outbox_archive.messages', p.invoice_id,"
	       "               p.id, p.outbox_id)"
	       "   FROM billing.payments p"
	       "  WHERE NOT EXISTS (SELECT 1 FROM pg_temp.cg_messages m WHERE m.id = p.outbox_id)"
	       "  ORDER BY 1, 2, 3",
};

/* `paid` exactly when nothing is due (amount_due_cents <= 0: an overpaid
 * invoice owes nothing; I1 reports the overpayment) and something was
 * paid (an invoice of zero is not "paid" by nobody). */
const struct check check_i3 = {
	.id = CHECK_I3,
	.title = "balances (amount_due_cents = amount_cents - payments; paid exactly when "
		 "nothing is due)",
	.sql = "WITH why AS ("
	       " SELECT i.id, concat_ws('; ',"
	       "   CASE WHEN i.amount_due_cents <> i.amount_cents - coalesce(p.total, 0)"
	       "        THEN format('amount_due_cents is %s, but amount_cents %s - payments %s = %s',"
	       "                    i.amount_due_cents, i.amount_cents, coalesce(p.total, 0),"
	       "                    i.amount_cents - coalesce(p.total, 0)) END,"
	       "   CASE WHEN (i.status = 'paid') <> (i.amount_due_cents <= 0 AND coalesce(p.n, 0) > 0)"
	       "        THEN format('status is %s with %s cents due and %s payment(s)', i.status,"
	       "                    i.amount_due_cents, coalesce(p.n, 0)) END) AS why"
	       "   FROM billing.invoices i"
	       "   LEFT JOIN (SELECT invoice_id, sum(amount_cents) AS total, count(*) AS n"
	       "                FROM billing.payments GROUP BY invoice_id) p ON p.invoice_id = i.id"
	       ")"
	       " SELECT id, format('invoice %s: %s', id, why) FROM why WHERE why <> '' ORDER BY id",
};
