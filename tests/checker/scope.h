/* scope.h: what "our rows" are for the checks: the live outbox and, since
 * migration 0013, its archive.
 *
 *   pg_temp.cg_messages  outbox.messages UNION ALL outbox_archive.messages
 *   pg_temp.cg_events    outbox.events UNION ALL outbox_archive.events
 *
 * A row is in one or the other, never both (archive_settled moves it in one
 * transaction, and the checks read one snapshot), so every check reads
 * these instead of the live tables: an archived charge still counts for
 * I1, I2 and I4, an archived email for I7, archived events for I8. On a
 * database without outbox_archive the views are the live tables alone. */
#ifndef CHECKER_SCOPE_H
#define CHECKER_SCOPE_H

#include <libpq-fe.h>
#include <stddef.h>

/* Create the two views. Outside the read-only transaction (like
 * ledger_prepare): CREATE is refused there; the views read that
 * transaction's snapshot when the checks run. */
int scope_prepare(PGconn *c, char *err, size_t errlen);

#endif
