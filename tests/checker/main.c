/* main.c: the invariant checker's entry point (README.md in this
 * directory): load the ledgers, run the checks in one snapshot, print TAP.
 * Exit 0: every check holds; 1: one is broken; 2: nothing could be judged
 * (usage, database, unreadable ledger), never mistaken for a pass. */
#include "check.h"
#include "db.h"
#include "fetch.h"
#include "ledger.h"
#include "options.h"
#include "scope.h"
#include "tap.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

static const struct check *const all_checks[CHECK_COUNT] = {
	[CHECK_I1] = &check_i1,
	[CHECK_I2] = &check_i2,
	[CHECK_I3] = &check_i3,
	[CHECK_I4] = &check_i4,
	[CHECK_I6] = &check_i6,
	[CHECK_I7] = &check_i7,
	[CHECK_I8] = &check_i8,
	[CHECK_HAVE_ROWS] = &check_have_rows,
	[CHECK_SETTLED] = &check_settled,
};

/* Fetch one ledger and load it with `load`; err names the source. */
static int load_ledger(PGconn *c, const char *src,
		       int (*load)(PGconn *, const struct text *, const char *, char *, size_t),
		       char *err, size_t errlen)
{
	struct text t;
	if (fetch_source(src, &t, err, errlen) != 0)
		return -1;
	int rc = load(c, &t, src, err, errlen);
	free(t.data);
	return rc;
}

static int run(const struct checker_options *o)
{
	char err[4096];
	PGconn *c = db_connect(o->db, err, sizeof(err));
	if (!c) {
		tap_bail(stdout, err);
		fprintf(stderr, "checker: %s\n", err);
		return 2;
	}
	bool use_smtp = o->smtp_ledger && o->selected[CHECK_I7];
	int rc = 2;
	/* One snapshot for every check, taken (by the first SELECT) before the
	 * ledgers are read: whatever the database records happened at the
	 * peers before, so it is in their ledgers. Read-only: the checker
	 * writes nothing but its temporary tables. */
	if (ledger_prepare(c, err, sizeof(err)) != 0 || scope_prepare(c, err, sizeof(err)) != 0 ||
	    db_run(c, "BEGIN", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, err,
		   sizeof(err)) != 0 ||
	    db_run(c, "taking the snapshot", "SELECT 1", 0, NULL, err,
		   sizeof(err)) != 0 ||
	    db_run(c, "setting --allow-unknown",
		   "SELECT set_config('checker.allow_unknown', $1, true)", 1,
		   (const char *const[]){o->allow_unknown ? "on" : "off"}, err, sizeof(err)) != 0 ||
	    (o->gateway_ledger &&
	     load_ledger(c, o->gateway_ledger, ledger_load_gateway, err, sizeof(err)) != 0) ||
	    (use_smtp && load_ledger(c, o->smtp_ledger, ledger_load_smtp, err, sizeof(err)) != 0))
		goto fail;

	int planned = 0;
	for (int i = 0; i < CHECK_COUNT; i++)
		planned += o->selected[i];
	tap_plan(stdout, planned);
	if ((o->gateway_ledger || use_smtp) &&
	    ledger_summary(c, o->gateway_ledger != NULL, use_smtp, stdout, err, sizeof(err)) != 0)
		goto fail;

	int number = 0, broken = 0;
	for (int i = 0; i < CHECK_COUNT; i++) {
		if (!o->selected[i])
			continue;
		number++;
		if (i == CHECK_I7 && !use_smtp) {
			tap_skip(stdout, number, all_checks[i], "no --smtp-ledger given");
			continue;
		}
		int r = tap_run(stdout, c, number, all_checks[i], err, sizeof(err));
		if (r < 0)
			goto fail;
		broken += r;
	}
	if (broken)
		printf("# %d of %d check(s) broken\n", broken, planned);
	rc = broken ? 1 : 0;
	PQfinish(c);
	return rc;
fail:
	tap_bail(stdout, err);
	fprintf(stderr, "checker: %s\n", err);
	PQfinish(c);
	return rc;
}

int main(int argc, char **argv)
{
	struct checker_options o;
	char err[512];
	switch (options_parse(&o, argc, argv, err, sizeof(err))) {
	case OPTIONS_HELP:
		options_usage(stdout);
		return 0;
	case OPTIONS_ERROR:
		fprintf(stderr, "checker: %s (see --help)\n", err);
		return 2;
	case OPTIONS_OK:
		break;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "checker: cannot initialise libcurl\n");
		return 2;
	}
	int rc = run(&o);
	curl_global_cleanup();
	return rc;
}
