/* mail.c: I7 notifications, against the SMTP sink's own ledger. */
#include "check.h"

/* Email rows with their charge's state and the customer's address.
 *   a. every `sent` email row reached the sink and the sink acknowledged a
 *      copy (the relay marks `sent` only on the server's 250, so a row whose
 *      copies all went unacknowledged was marked without one);
 *   b. no receipt for a charge that is not `succeeded`, whatever the
 *      email's state: the template is chosen when the outcome is recorded;
 *   c. every message in the sink carries Message-ID <outbox-ID@DOMAIN>, ID
 *      an email row, and went to that row's customer and nobody else;
 *   d. copies of one email row share one Message-ID (same domain too). */
const struct check check_i7 = {
	.id = CHECK_I7,
	.title = "notifications (sent emails reached the SMTP sink, no receipt without a success, "
		 "every sink message is one of our email rows)",
	.sql = "WITH email AS ("
	       " SELECT e.id, e.invoice_id, e.state, e.template, e.parent_id,"
	       "        c.state AS charge_state, lower(btrim(cu.email)) AS addr"
	       "   FROM pg_temp.cg_messages e"
	       "   JOIN billing.invoices i ON i.id = e.invoice_id"
	       "   JOIN billing.customers cu ON cu.id = i.customer_id"
	       "   LEFT JOIN pg_temp.cg_messages c ON c.id = e.parent_id"
	       "  WHERE e.kind = 'email'"
	       "), mail AS ("
	       " SELECT s.*, e.id AS email_id, e.invoice_id, e.addr"
	       "   FROM pg_temp.cg_mail s LEFT JOIN email e ON e.id = s.msg_ref"
	       ")"
	       /* a */
	       " SELECT e.invoice_id, e.id, NULL::bigint,"
	       "        format('invoice %s: email %s is sent, but the SMTP sink %s',"
	       "               e.invoice_id, e.id,"
	       "               CASE WHEN EXISTS (SELECT 1 FROM mail s WHERE s.email_id = e.id)"
	       "                    THEN 'acknowledged none of its copies'"
	       "                    ELSE 'never received it' END)"
	       "   FROM email e"
	       "  WHERE e.state = 'sent'"
	       "    AND NOT EXISTS (SELECT 1 FROM mail s WHERE s.email_id = e.id AND s.acknowledged)"
	       /* b */
	       " UNION ALL"
	       " SELECT e.invoice_id, e.id, NULL::bigint,"
	       "        format('invoice %s: email %s (%s) is a receipt for charge %s, which is %s',"
	       "               e.invoice_id, e.id, e.state, e.parent_id,"
	       "               coalesce(e.charge_state, 'missing'))"
	       "   FROM email e"
	       "  WHERE e.template = 'receipt' AND e.charge_state IS DISTINCT FROM 'succeeded'"
	       /* c */
	       " UNION ALL"
	       " SELECT s.invoice_id, s.email_id, s.seq,"
	       "  CASE WHEN s.message_id IS NULL"
	       "       THEN format('smtp seq %s (line %s): no Message-ID', s.seq, s.line)"
	       "       WHEN s.msg_ref IS NULL"
	       "       THEN format('smtp seq %s (line %s): Message-ID %s is not <outbox-ID@domain>',"
	       "                   s.seq, s.line, s.message_id)"
	       "       WHEN s.email_id IS NULL"
	       "       THEN format('smtp seq %s (line %s): Message-ID %s names outbox row %s,'"
	       "                   || ' which is no email row', s.seq, s.line, s.message_id,"
	       "                   s.msg_ref)"
	       "       ELSE format('invoice %s: email %s: smtp seq %s (line %s) went to %s,'"
	       "                   || ' not only to the customer''s address %s',"
	       "                   s.invoice_id, s.email_id, s.seq, s.line,"
	       "                   coalesce(nullif(array_to_string(s.rcpt, ', '), ''), 'nobody'),"
	       "                   coalesce(s.addr, '(none)'))"
	       "  END"
	       "   FROM mail s"
	       "  WHERE s.email_id IS NULL OR s.addr IS NULL OR cardinality(s.rcpt) = 0"
	       "     OR NOT s.addr = ALL (s.rcpt)"
	       /* d */
	       " UNION ALL"
	       " SELECT max(s.invoice_id), s.email_id, min(s.seq),"
	       "        format('invoice %s: email %s reached the sink under %s Message-IDs: %s',"
	       "               max(s.invoice_id), s.email_id, count(DISTINCT s.message_id),"
	       "               string_agg(DISTINCT s.message_id, ', ' ORDER BY s.message_id))"
	       "   FROM mail s WHERE s.email_id IS NOT NULL"
	       "  GROUP BY s.email_id HAVING count(DISTINCT s.message_id) > 1"
	       "  ORDER BY 1 NULLS FIRST, 2, 3 NULLS FIRST, 4",
};
