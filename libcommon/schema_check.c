/* schema_check.c: compare outbox.schema_migrations with what we need. */
#include "schema_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_version(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	struct schema_check *ck = arg;
	char why[768];
	bool ok = false;
	const char *state = pgc_sqlstate(res);

	if (!res) {
		snprintf(why, sizeof(why), "connection lost during the schema check: %s", error);
	} else if (error && (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0)) {
		snprintf(why, sizeof(why),
			 "this database has no chargeguard schema (%s): run db/migrate against it",
			 error);
	} else if (error && strcmp(state, "42501") == 0) {
		snprintf(why, sizeof(why),
			 "permission denied reading outbox.schema_migrations: grant %s to this login role (%s)",
			 ck->role_hint, error);
	} else if (error) {
		snprintf(why, sizeof(why), "schema check failed: %s", error);
	} else {
		int have = atoi(PQgetvalue(res, 0, 0));
		if (have < ck->required)
			snprintf(why, sizeof(why),
				 "database schema is at version %d but this program needs %d: run db/migrate",
				 have, ck->required);
		else {
			snprintf(why, sizeof(why), "schema version %d (need %d)", have, ck->required);
			ok = true;
		}
	}
	ck->fn(ck->ud, ok, why);
}

int schema_check_start(struct pgc *db, struct schema_check *ck)
{
	return pgc_query(db, "SELECT coalesce(max(version), 0) FROM outbox.schema_migrations", 0,
			 NULL, on_version, ck);
}
