/* ledger.h: the third parties' ledgers, loaded into temporary tables so
 * the checks can join them with ours in SQL.
 *
 *   pg_temp.cg_req     one row per gateway request (tests/sim/README.md)
 *   pg_temp.cg_post    the charge POSTs among them (POST /v1/charges)
 *   pg_temp.cg_charge  one row per gateway charge, metadata unpacked
 *   pg_temp.cg_mail    one row per message the SMTP sink received
 *
 * Columns keep the ledger's names; *_ref columns hold the id a text field
 * names (outbox_id "17" -> 17), NULL when it is not a plain decimal id. */
#ifndef CHECKER_LEDGER_H
#define CHECKER_LEDGER_H

#include "fetch.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

/* Create the (empty) temporary tables, views and functions. Must run
 * outside the read-only transaction the checks use: CREATE is refused
 * there, INSERT into a temporary table is not. */
int ledger_prepare(PGconn *c, char *err, size_t errlen);

/* The gateway simulator's GET /_ledger document. A ledger that is not what
 * tests/sim/README.md describes (a missing or mistyped field, a charge
 * status other than succeeded/failed, a duplicate charge id or request
 * seq) is refused: a check must never pass because its input was garbled.
 * src names the ledger in err. */
int ledger_load_gateway(PGconn *c, const struct text *doc, const char *src, char *err,
			size_t errlen);

/* The SMTP sink's JSONL file: one JSON object per line, blank lines
 * skipped. A line that is not a JSON object (e.g. cut short) is refused,
 * naming its number. */
int ledger_load_smtp(PGconn *c, const struct text *jsonl, const char *src, char *err,
		     size_t errlen);

/* TAP comment lines saying how much each loaded ledger holds. */
int ledger_summary(PGconn *c, bool gateway, bool smtp, FILE *out, char *err, size_t errlen);

#endif
