/* db.c: blocking libpq helpers for the checker. */
#include "db.h"

#include <stdio.h>
#include <string.h>

/* libpq messages end in a newline and may span lines; TAP wants one line. */
static void one_line(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
}

PGconn *db_connect(const char *conninfo, char *err, size_t errlen)
{
	/* application_name comes first so that one in the conninfo wins */
	const char *const keys[] = {"application_name", "dbname", NULL};
	const char *const vals[] = {"checker", conninfo, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (!c) {
		snprintf(err, errlen, "cannot connect: out of memory");
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to the database: %s", PQerrorMessage(c));
		one_line(err);
		PQfinish(c);
		return NULL;
	}
	if (PQsetClientEncoding(c, "UTF8") != 0) {
		snprintf(err, errlen, "cannot set client_encoding to UTF8: %s", PQerrorMessage(c));
		one_line(err);
		PQfinish(c);
		return NULL;
	}
	return c;
}

PGresult *db_exec(PGconn *c, const char *what, const char *sql, int nparams,
		  const char *const *params, char *err, size_t errlen)
{
	PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return r;
	if (r && PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)) {
		const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		char det[512] = "";
		if (detail)
			snprintf(det, sizeof(det), " (%s)", detail);
		snprintf(err, errlen, "%s: %s%s [SQLSTATE %s]", what,
			 PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), det, state ? state : "?");
	} else {
		snprintf(err, errlen, "%s: %s", what, PQerrorMessage(c));
	}
	one_line(err);
	PQclear(r);
	return NULL;
}

int db_run(PGconn *c, const char *what, const char *sql, int nparams, const char *const *params,
	   char *err, size_t errlen)
{
	PGresult *r = db_exec(c, what, sql, nparams, params, err, errlen);
	if (!r)
		return -1;
	PQclear(r);
	return 0;
}
