/* scope.c: the live + archive views the checks read (scope.h). */
#include "scope.h"

#include "db.h"

/* One statement: the archive's presence decides the views' text, which
 * plpgsql plans only when the branch runs. */
static const char scope_sql[] =
	"DO $$ BEGIN"
	" IF to_regclass('outbox_archive.messages') IS NULL THEN"
	"  CREATE TEMP VIEW cg_messages AS SELECT * FROM outbox.messages;"
	"  CREATE TEMP VIEW cg_events AS SELECT * FROM outbox.events;"
	" ELSE"
	"  CREATE TEMP VIEW cg_messages AS"
	"   SELECT * FROM outbox.messages UNION ALL SELECT * FROM outbox_archive.messages;"
	"  CREATE TEMP VIEW cg_events AS"
	"   SELECT * FROM outbox.events UNION ALL SELECT * FROM outbox_archive.events;"
	" END IF;"
	" END $$";

int scope_prepare(PGconn *c, char *err, size_t errlen)
{
	return db_run(c, "preparing the live + archive views", scope_sql, 0, NULL, err, errlen);
}
