/* config_reload.h: SIGHUP for both daemons. The configuration is parsed
 * again from the same sources (config file, environment, the original argv)
 * into a fresh struct and validated whole; only then are the values a reload
 * may change moved into the running struct, and each restart-only value that
 * changed is named. An invalid value anywhere leaves the running struct as it
 * was. Reading the file happens on the caller's thread: a daemon calls this
 * from its event loop, which a small local file does not hold up. */
#ifndef CG_CONFIG_RELOAD_H
#define CG_CONFIG_RELOAD_H

#include "config.h"

/* The daemon's cross-checks (relay_config_check ...): 0, or -1 with why. */
typedef int (*cfg_check_fn)(const void *cfg, char *why, size_t whylen);

/* *fresh: a zeroed struct of `size` bytes, the daemon's config type. Fills
 * it and checks it twice: as parsed (what a restart would run, so a restart
 * later does not fail on it) and as the running struct with fresh's
 * reloadable values (what runs after the swap). 0, or -1 with one line in
 * err naming the key, flag or variable and what it accepts. Either way the
 * caller cfg_free's *fresh; *running is not touched. */
int cfg_reload_load(const struct cfg_spec *spec, const void *running, void *fresh, size_t size,
		    int argc, char *const argv[], cfg_check_fn check, char *err, size_t errlen);

/* Move every reloadable value that differs from *fresh into *running (the
 * old one goes to *fresh, for the caller's cfg_free) and log it as
 * "SIGHUP: KEY changed: OLD -> NEW"; log each restart-only one that differs
 * as a warning "SIGHUP: KEY needs a restart; still using OLD (the
 * configuration now says NEW)". Returns the number of values swapped. */
int cfg_reload_apply(const struct cfg_spec *spec, void *running, void *fresh);

/* Before the swap, what the daemon must prepare for the new values (room
 * for a bigger batch): 0, or -1 with why (the reload is refused). */
typedef int (*cfg_prepare_fn)(void *ud, const void *fresh, char *why, size_t whylen);

/* The whole SIGHUP: cfg_reload_load, then prepare (may be NULL), then
 * cfg_reload_apply, with a more verbose --log-level in force first so the
 * reload's own lines show. Logs the refusal ("SIGHUP: configuration not
 * reloaded, every setting stays as it was: WHY") or a summary line. 0: the
 * reloadable values that ran before are now in *fresh (for the daemon to
 * compare, then cfg_free); -1: refused. The caller cfg_free's *fresh. */
int cfg_reload(const struct cfg_spec *spec, void *running, void *fresh, size_t size, int argc,
	       char *const argv[], cfg_check_fn check, cfg_prepare_fn prepare, void *ud);

#endif
