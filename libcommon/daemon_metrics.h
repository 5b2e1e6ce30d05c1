/* daemon_metrics.h: the /metrics and /healthz endpoint every daemon has
 * (--metrics-listen), on its own loop (httpd.c).
 *
 * GET /metrics: the daemon's own metrics (its `write` hook), then those
 * every daemon has: log lines per level, its database connection, its
 * start time. Built when scraped, from counters bumped where events
 * happen; nothing here waits for the database.
 * GET /healthz: 200 "ok: ..." when the loop answers (it does, to serve
 * this), the database is reachable (dbhealth.c) and the daemon's `ready`
 * hook, if any, agrees; else 503 with one line saying why. */
#ifndef CG_DAEMON_METRICS_H
#define CG_DAEMON_METRICS_H

#include "dbhealth.h"
#include "httpd.h"
#include "pgconn.h"
#include "prom.h"

#include <ev.h>
#include <stdbool.h>

struct daemon_metrics {
	/* set by the daemon */
	const char *prefix; /* "relay": relay_log_lines_total ... */
	struct pgc *db;     /* its working connection */
	void (*write)(void *ud, struct prom_buf *b);
	bool (*ready)(void *ud, char *why, size_t whylen); /* optional */
	void *ud;
	/* set by daemon_metrics_start */
	struct httpd *httpd;
	struct dbhealth health;
	double started; /* unix seconds */
};

/* Listen on `listen` (numeric HOST:PORT, checked again here). 0, or -1
 * with why naming --metrics-listen. */
int daemon_metrics_start(struct daemon_metrics *m, struct ev_loop *loop, const char *listen,
			 char *why, size_t whylen);
/* Stop serving; safe when never started. */
void daemon_metrics_stop(struct daemon_metrics *m);

#endif
