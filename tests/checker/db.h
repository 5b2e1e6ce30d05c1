/* db.h: blocking libpq helpers. The checker is a test tool run once after
 * a test, so plain PQexecParams is fine; every value is a bound parameter. */
#ifndef CHECKER_DB_H
#define CHECKER_DB_H

#include <libpq-fe.h>
#include <stddef.h>

/* Connect with conninfo ("" = libpq's PG* variables). NULL with err set. */
PGconn *db_connect(const char *conninfo, char *err, size_t errlen);

/* Run one statement with text parameters. Returns the result (PQclear it)
 * when it succeeded, else NULL with err holding the server's message, its
 * detail and SQLSTATE on one line, prefixed by `what`. */
PGresult *db_exec(PGconn *c, const char *what, const char *sql, int nparams,
		  const char *const *params, char *err, size_t errlen);

/* db_exec for statements whose result is not needed: 0 or -1. */
int db_run(PGconn *c, const char *what, const char *sql, int nparams, const char *const *params,
	   char *err, size_t errlen);

#endif
