/* options.h: the checker's command line, parsed into one struct. */
#ifndef CHECKER_OPTIONS_H
#define CHECKER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The checks, in the order their TAP lines are printed. */
enum check_id {
	CHECK_I1,
	CHECK_I2,
	CHECK_I3,
	CHECK_I4,
	CHECK_I6,
	CHECK_I7,
	CHECK_I8,
	CHECK_HAVE_ROWS,
	CHECK_SETTLED,
	CHECK_COUNT
};

struct checker_options {
	const char *db;             /* libpq conninfo or URI; "" = PG* variables */
	const char *gateway_ledger; /* http(s):// URL or a file, or NULL */
	const char *smtp_ledger;    /* JSONL file, or NULL */
	bool expect_settled;
	/* I2 accepts a successful gateway charge without its payment row while
	 * the charge's outbox row is unknown or dead: not lost, only not yet
	 * settled by a lookup (runs without reconciliation). */
	bool allow_unknown;
	bool selected[CHECK_COUNT]; /* which checks print a line */
};

enum options_result { OPTIONS_OK, OPTIONS_HELP, OPTIONS_ERROR };

/* Fills o from argv (pointers borrow argv). OPTIONS_ERROR: err says why. */
enum options_result options_parse(struct checker_options *o, int argc, char **argv, char *err,
				  size_t errlen);
void options_usage(FILE *out);

/* "I1", "charges-have-rows", ... as printed and as accepted by --only. */
const char *check_name(enum check_id id);

#endif
