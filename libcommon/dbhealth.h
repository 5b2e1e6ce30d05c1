/* dbhealth.h: is the daemon's database reachable, for /healthz?
 *
 * Reachable means: connected, and the server answered a statement within
 * `max_age` seconds. A daemon's own statements usually prove that; when it
 * has asked nothing for `interval` seconds (an idle charger between
 * passes), a "SELECT 1" is queued on the same connection, behind whatever
 * is already queued, so it measures what the daemon's work would see. */
#ifndef CG_DBHEALTH_H
#define CG_DBHEALTH_H

#include "pgconn.h"

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

struct dbhealth {
	ev_timer ping;
	struct ev_loop *loop;
	struct pgc *db;
	double interval, max_age;
	bool pinging;
};

void dbhealth_start(struct dbhealth *h, struct ev_loop *loop, struct pgc *db, double interval,
		    double max_age);
void dbhealth_stop(struct dbhealth *h);
/* true when reachable; why: one line either way ("database answered 0.2 s
 * ago", "database not connected: ..."). */
bool dbhealth_ok(const struct dbhealth *h, char *why, size_t whylen);

#endif
