/* check.h: one invariant check: a title and one SQL query over the
 * database and the loaded ledgers (ledger.h) returning one row per
 * violation, already ordered; the last column is the diagnostic line,
 * which names the invoice and the row, message or request at fault. */
#ifndef CHECKER_CHECK_H
#define CHECKER_CHECK_H

#include "options.h"

struct check {
	enum check_id id;
	const char *title; /* printed after "NAME: " on the TAP line */
	const char *sql;
};

/* money.c */
extern const struct check check_i1, check_i2, check_i3;
/* gateway.c */
extern const struct check check_i4, check_have_rows;
/* state.c */
extern const struct check check_i6, check_i8, check_settled;
/* mail.c */
extern const struct check check_i7;

#endif
