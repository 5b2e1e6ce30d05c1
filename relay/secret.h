/* secret.h: the gateway API key, from a file only its owner can read, or
 * from the environment; never from argv, never logged. */
#ifndef RELAY_SECRET_H
#define RELAY_SECRET_H

#include <stddef.h>

/* path non-empty: read the file (refused when group or others may read it,
 * or it is not a regular file); else the variable `env`. The key must be
 * printable ASCII without blanks. 0, or -1 with why (never the key). */
int secret_load(const char *path, const char *env, char *key, size_t len, char *why,
		size_t whylen);

/* Overwrite the variable's value in place, then unset it: unsetenv alone
 * leaves the bytes readable in /proc/PID/environ. */
void secret_scrub_env(const char *env);

#endif
