/* schema_check.h: refuse to run on a database schema older than the daemon
 * needs, with a message that tells the operator what to do. */
#ifndef CG_SCHEMA_CHECK_H
#define CG_SCHEMA_CHECK_H

#include "pgconn.h"

/* ok: the schema is at least `required`. Otherwise why says what is wrong
 * and how to fix it (run db/migrate, grant the role). */
typedef void (*schema_check_fn)(void *ud, bool ok, const char *why);

/* Caller-owned state of one check (no allocation: a pgc freed while the
 * check is queued drops it without a leak). */
struct schema_check {
	int required;
	const char *role_hint; /* "outbox_charger" */
	schema_check_fn fn;
	void *ud;
};

/* Queue the check on a ready connection; -1 if it could not be queued. */
int schema_check_start(struct pgc *db, struct schema_check *ck);

#endif
