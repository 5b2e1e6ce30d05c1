/* pgconn.h: one asynchronous PostgreSQL connection on a libev loop.
 *
 * Never blocks the loop once connected: non-blocking connect (PQconnectPoll),
 * PQsendQueryParams only, PQflush handled in both directions, results read
 * only when PQisBusy says they are complete. Statements run one after
 * another in the order queued. LISTEN channels and session settings are
 * re-established on every (re)connect through `setup`; notifications and
 * server notices are delivered as they arrive. A dropped or refused
 * connection is retried with capped exponential backoff, forever.
 * Host names are resolved first without blocking (resolve.c) and handed to
 * libpq as `hostaddr`, because libpq's own lookup would block the loop. */
#ifndef CG_PGCONN_H
#define CG_PGCONN_H

#include <ev.h>
#include <libpq-fe.h>
#include <stdbool.h>

struct pgc;

/* The answer to one statement. res is borrowed (freed after the callback)
 * and NULL when the connection was lost or closed before an answer came:
 * then a COMMIT may or may not have happened. error is NULL on success, else
 * one line (the server's message, or why the connection was lost). */
typedef void (*pgc_result_fn)(struct pgc *c, const PGresult *res, const char *error,
			      void *arg);

struct pgc_hooks {
	/* Connected and `setup` done: queries may be sent. Called after every
	 * (re)connect. */
	void (*ready)(struct pgc *c, void *ud);
	/* A connect attempt failed or an open connection dropped; queued
	 * statements have already been answered with errors, and the next
	 * attempt is scheduled. */
	void (*lost)(struct pgc *c, const char *why, void *ud);
	void (*notify)(struct pgc *c, const char *channel, const char *payload, void *ud);
};

struct pgc_options {
	const char *name;             /* in log lines, e.g. "db" */
	const char *conninfo;         /* conninfo or URI; "" = libpq's PG* defaults */
	const char *application_name; /* unless the conninfo names one */
	/* Constant statements (no values; must outlive the pgc) run after each
	 * connect, before `ready`: "LISTEN chan", "SET synchronous_commit = on". */
	const char *const *setup;
	double connect_timeout;      /* per attempt, seconds */
	double retry_min, retry_max; /* backoff between attempts, seconds */
};

struct pgc *pgc_new(struct ev_loop *loop, const struct pgc_options *opt,
		    const struct pgc_hooks *hooks, void *ud);
/* Begin connecting (returns at once). */
void pgc_start(struct pgc *c);
/* Queue one statement with bound text parameters (values may be NULL for SQL
 * NULL; they are copied). sql must outlive the answer: use literals, never
 * text built from values. Returns -1 when not ready (nothing queued). */
int pgc_query(struct pgc *c, const char *sql, int nparams, const char *const *values,
	      pgc_result_fn fn, void *arg);
bool pgc_is_ready(const struct pgc *c);
/* Statements queued or awaiting their answer. */
int pgc_pending(const struct pgc *c);
/* Seconds since the server last answered a statement (an SQL error counts:
 * it is a round trip), or -1 if it never has. For health checks. */
double pgc_answer_age(const struct pgc *c);
/* Successful connections since pgc_new (the first included). */
unsigned long pgc_connects(const struct pgc *c);
/* Why the last connect attempt or connection failed, or "". */
const char *pgc_last_failure(const struct pgc *c);
/* Is the session inside a transaction block (BEGIN without its end)? */
bool pgc_in_transaction(const struct pgc *c);
/* Drop the connection now (the server rolls back an open transaction);
 * queued statements are answered with errors from the loop, then the usual
 * reconnect follows. For a caller that cannot finish what it queued. */
void pgc_reset(struct pgc *c, const char *why);
/* Close and free; statements not yet answered are dropped without their
 * callbacks. Safe to call from inside a callback of this pgc. */
void pgc_free(struct pgc *c);

/* A result callback for statements whose answer only matters when it is
 * an error (a ROLLBACK, a SET): logs the error, if any. */
void pgc_log_errors(struct pgc *c, const PGresult *res, const char *error, void *arg);

/* SQLSTATE of a result, or "" */
const char *pgc_sqlstate(const PGresult *res);

#endif
