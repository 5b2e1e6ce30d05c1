/* crash.h: named crash points for fault-injection tests.
 * OUTBOX_CRASH_AT=name[:n] makes the n-th pass (default 1) of crash point
 * `name` kill the process with SIGKILL: no exit handlers, no flushing, no
 * goodbye to the database, exactly like a power cut or the OOM killer. */
#ifndef CG_CRASH_H
#define CG_CRASH_H

#include <stdbool.h>
#include <stdio.h>

/* known: the daemon's NULL-terminated list of points (for validation and
 * --list-crash-points). spec: the variable's value or NULL. Returns 0, or -1
 * with err naming the problem (an unknown point is an error, so a typo in a
 * test cannot silently test nothing). */
int crash_init(const char *const *known, const char *spec, char *err, size_t errlen);

/* Whether `name` is the armed point (to switch on costly instrumentation,
 * such as watching the bytes of a request leave, only when needed). */
bool crash_armed(const char *name);

/* Count a pass of `name`; kill the process if it is the armed pass. */
void crash_point(const char *name);

void crash_list(const char *const *known, FILE *out);

#endif
