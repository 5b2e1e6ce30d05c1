/* tap.h: run checks and print them as TAP, one line per check. */
#ifndef CHECKER_TAP_H
#define CHECKER_TAP_H

#include "check.h"

#include <libpq-fe.h>
#include <stdio.h>

/* At most this many diagnostic lines per failed check. */
#define TAP_MAX_DIAG 20

void tap_plan(FILE *out, int count);
/* A check that was not run, with the reason ("no --smtp-ledger"). */
void tap_skip(FILE *out, int number, const struct check *ck, const char *why);
/* Runs ck and prints its line and diagnostics. 0: it holds, 1: it is
 * broken, -1: the query itself failed (err says why; nothing printed). */
int tap_run(FILE *out, PGconn *c, int number, const struct check *ck, char *err, size_t errlen);
/* "Bail out!" with the reason: the run cannot go on. */
void tap_bail(FILE *out, const char *why);

#endif
