/* resolve.h: the host names of a libpq conninfo, resolved without blocking.
 * libpq resolves a host *name* with a blocking getaddrinfo() inside
 * PQconnectStartParams; resolving first and passing `hostaddr` keeps the
 * event loop free. Socket paths and IP literals need no resolution. */
#ifndef CG_RESOLVE_H
#define CG_RESOLVE_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

struct resolve;

/* Called once: hostaddr is the comma-separated list to pass with `host`
 * (same number of items; empty items for socket paths), or NULL with why. */
typedef void (*resolve_done_fn)(void *arg, const char *host, const char *hostaddr,
				const char *why);

/* Does this conninfo (with PGHOST as libpq would use it) name any host that
 * needs resolving? 0 no, 1 yes, -1 the conninfo does not parse (why). */
int resolve_needed(const char *conninfo, char *why, size_t whylen);

/* Start resolving; done is called from the loop (never from here). */
struct resolve *resolve_start(struct ev_loop *loop, const char *conninfo, double timeout,
			      resolve_done_fn done, void *arg);
/* Cancel: no callback, never waits (a lookup glibc still works on frees
 * itself later from the loop). */
void resolve_cancel(struct resolve *r);

#endif
