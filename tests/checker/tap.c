/* tap.c: run checks and print them as TAP, one line per check. */
#include "tap.h"

#include "db.h"

/* One diagnostic: control characters from ledger data (a key holding a
 * newline) must not break a TAP line or forge a result line. */
static void print_diag(FILE *out, const char *s)
{
	fputs("# ", out);
	for (const char *p = s; *p; p++)
		fputc((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p, out);
	fputc('\n', out);
}

void tap_plan(FILE *out, int count)
{
	fprintf(out, "1..%d\n", count);
}

void tap_skip(FILE *out, int number, const struct check *ck, const char *why)
{
	fprintf(out, "ok %d - %s: %s # SKIP %s\n", number, check_name(ck->id), ck->title, why);
}

int tap_run(FILE *out, PGconn *c, int number, const struct check *ck, char *err, size_t errlen)
{
	PGresult *r = db_exec(c, check_name(ck->id), ck->sql, 0, NULL, err, errlen);
	if (!r)
		return -1;
	int rows = PQntuples(r), last = PQnfields(r) - 1;
	fprintf(out, "%sok %d - %s: %s\n", rows ? "not " : "", number, check_name(ck->id), ck->title);
	for (int i = 0; i < rows && i < TAP_MAX_DIAG; i++)
		print_diag(out, PQgetvalue(r, i, last));
	if (rows > TAP_MAX_DIAG)
		fprintf(out, "# ... and %d more\n", rows - TAP_MAX_DIAG);
	PQclear(r);
	fflush(out);
	return rows ? 1 : 0;
}

void tap_bail(FILE *out, const char *why)
{
	fputs("Bail out! ", out);
	for (const char *p = why; *p; p++)
		fputc((unsigned char)*p < 0x20 ? ' ' : *p, out);
	fputc('\n', out);
	fflush(out);
}
