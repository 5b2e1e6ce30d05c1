/* pgconn.c: asynchronous libpq connection driven by libev. */
#include "pgconn.h"

#include "backoff.h"
#include "container.h"
#include "log.h"
#include "resolve.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum pgc_state { PGC_IDLE, PGC_RESOLVING, PGC_CONNECTING, PGC_SETUP, PGC_READY, PGC_WAITING };

struct query {
	struct query *next;
	const char *sql;
	int nparams;
	char **values;
	pgc_result_fn fn; /* NULL: an internal setup statement */
	void *arg;
};

struct pgc {
	ev_io io; /* first member: callbacks cast back */
	ev_timer timer;    /* connect timeout, or the wait before a retry */
	ev_timer deferred; /* failure noticed inside a caller's stack */
	struct ev_loop *loop;
	struct pgc_hooks hooks;
	void *ud;
	char *name, *conninfo, *appname;
	const char *const *setup;
	double connect_timeout;
	struct backoff backoff;

	PGconn *conn;
	struct resolve *resolving; /* host names being looked up, off the loop */
	enum pgc_state state;
	int io_events;
	struct query *head, *tail; /* head is on the wire when busy */
	bool busy;
	PGresult *result; /* of the statement on the wire */
	int queued;
	char broken[512]; /* pending failure for `deferred` */
	/* for health checks and metrics */
	double last_answer;          /* monotonic seconds; 0: never */
	unsigned long connects;      /* successful connects (setup included) */
	char last_failure[512];      /* why the last attempt or connection failed */
	int depth;        /* nesting of our own handlers */
	bool free_pending;
};

static void conn_failed(struct pgc *c, const char *why);
static void dispatch(struct pgc *c);

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* libpq messages span lines ("...failed: ...\n\tIs the server running...").
 * One log line per event: flatten. */
static void one_line(char *dst, size_t len, const char *src)
{
	size_t j = 0;
	bool space = false;
	for (size_t i = 0; src && src[i] && j + 1 < len; i++) {
		unsigned char ch = (unsigned char)src[i];
		if (ch == '\n' || ch == '\t' || ch == '\r' || ch == ' ') {
			space = j > 0;
			continue;
		}
		if (space && j + 2 < len)
			dst[j++] = ' ';
		space = false;
		dst[j++] = (char)ch;
	}
	dst[j] = '\0';
}

void pgc_log_errors(struct pgc *c, const PGresult *res, const char *error, void *arg)
{
	(void)res;
	if (error)
		log_warn("%s: %s failed: %s", c->name, arg ? (const char *)arg : "statement", error);
}

const char *pgc_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s ? s : "";
}

static void watch(struct pgc *c, int events)
{
	int fd = c->conn ? PQsocket(c->conn) : -1;
	if (ev_is_active(&c->io) && c->io.fd == fd && c->io_events == events)
		return;
	ev_io_stop(c->loop, &c->io);
	if (fd < 0)
		return;
	ev_io_set(&c->io, fd, events);
	c->io_events = events;
	ev_io_start(c->loop, &c->io);
}

static void free_query(struct query *q)
{
	for (int i = 0; i < q->nparams; i++)
		free(q->values[i]);
	free(q->values);
	free(q);
}

static void destroy(struct pgc *c)
{
	resolve_cancel(c->resolving);
	ev_io_stop(c->loop, &c->io);
	ev_timer_stop(c->loop, &c->timer);
	ev_timer_stop(c->loop, &c->deferred);
	if (c->conn)
		PQfinish(c->conn);
	PQclear(c->result);
	for (struct query *q = c->head, *n; q; q = n) {
		n = q->next;
		free_query(q);
	}
	free(c->name);
	free(c->conninfo);
	free(c->appname);
	free(c);
}

/* Our handlers run user callbacks; a callback may call pgc_free. Handlers
 * bracket their work with enter/leave and stop as soon as `gone` says so. */
static void enter(struct pgc *c) { c->depth++; }
static bool gone(const struct pgc *c) { return c->free_pending; }
static void leave(struct pgc *c)
{
	if (--c->depth == 0 && c->free_pending)
		destroy(c);
}

static void on_notice(void *arg, const char *message)
{
	struct pgc *c = arg;
	char line[1024];
	one_line(line, sizeof(line), message);
	log_info("%s: server says: %s", c->name, line);
}

static void enqueue(struct pgc *c, struct query *q)
{
	q->next = NULL;
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	c->queued++;
}

static struct query *new_query(const char *sql, int nparams, const char *const *values)
{
	struct query *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->sql = sql;
	if (nparams > 0) {
		q->values = calloc((size_t)nparams, sizeof(char *));
		if (!q->values) {
			free(q);
			return NULL;
		}
		q->nparams = nparams;
		for (int i = 0; i < nparams; i++) {
			if (values[i] && !(q->values[i] = strdup(values[i]))) {
				free_query(q);
				return NULL;
			}
		}
	}
	return q;
}

static void connected(struct pgc *c)
{
	ev_timer_stop(c->loop, &c->timer);
	if (PQsetnonblocking(c->conn, 1) != 0) {
		conn_failed(c, "cannot make the connection non-blocking");
		return;
	}
	PQsetNoticeProcessor(c->conn, on_notice, c);
	backoff_reset(&c->backoff);
	c->connects++;
	log_info("%s: connected (server %d, pid %d)", c->name, PQserverVersion(c->conn),
		 PQbackendPID(c->conn));
	c->state = PGC_SETUP;
	for (const char *const *s = c->setup; s && *s; s++) {
		struct query *q = new_query(*s, 0, NULL);
		if (!q) {
			conn_failed(c, "out of memory");
			return;
		}
		enqueue(c, q);
	}
	if (!c->head) {
		c->state = PGC_READY;
		watch(c, EV_READ);
		if (c->hooks.ready)
			c->hooks.ready(c, c->ud);
		return;
	}
	dispatch(c);
}

/* The statement on the wire is complete: answer it, then send the next. */
static void complete(struct pgc *c)
{
	struct query *q = c->head;
	c->head = q->next;
	if (!c->head)
		c->tail = NULL;
	c->queued--;
	c->busy = false;

	PGresult *res = c->result;
	c->result = NULL;
	if (res) /* any answer, an SQL error too, is a round trip */
		c->last_answer = mono_now();
	char err[1024];
	const char *error = NULL;
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (!res) {
		error = "no result from the server";
	} else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		one_line(err, sizeof(err), PQresultErrorMessage(res));
		error = err;
	}

	if (!q->fn) { /* setup statement */
		if (error) {
			log_error("%s: session setup '%s' failed: %s", c->name, q->sql, error);
			PQclear(res);
			free_query(q);
			conn_failed(c, "session setup failed");
			return;
		}
		PQclear(res);
		free_query(q);
		if (!c->head) {
			c->state = PGC_READY;
			if (c->hooks.ready)
				c->hooks.ready(c, c->ud);
		}
		return;
	}
	q->fn(c, res, error, q->arg);
	PQclear(res);
	free_query(q);
}

/* A failure found inside a caller's stack (pgc_query) is handled from the
 * loop instead, because handling it answers callbacks. */
static void fail_soon(struct pgc *c, const char *why)
{
	one_line(c->broken, sizeof(c->broken), why);
	if (!c->broken[0])
		snprintf(c->broken, sizeof(c->broken), "send failed");
	ev_timer_set(&c->deferred, 0., 0.);
	ev_timer_start(c->loop, &c->deferred);
}

/* Put the head statement on the wire if the wire is free. */
static void send_head(struct pgc *c, bool in_caller)
{
	if (c->busy || !c->head || c->broken[0] ||
	    (c->state != PGC_READY && c->state != PGC_SETUP))
		return;
	struct query *q = c->head;
	int r = -1;
	if (PQsendQueryParams(c->conn, q->sql, q->nparams, NULL,
			      (const char *const *)q->values, NULL, NULL, 0)) {
		c->busy = true;
		r = PQflush(c->conn);
	}
	if (r < 0) {
		if (in_caller)
			fail_soon(c, PQerrorMessage(c->conn));
		else
			conn_failed(c, PQerrorMessage(c->conn));
		return;
	}
	/* While output is pending, wait for read OR write: the server may need
	 * us to read before it can accept more. */
	watch(c, r ? EV_READ | EV_WRITE : EV_READ);
}

static void dispatch(struct pgc *c) { send_head(c, false); }

/* Called from the loop on a connected socket. */
static void on_io_connected(struct pgc *c, int revents)
{
	if (revents & EV_READ) {
		if (!PQconsumeInput(c->conn)) {
			conn_failed(c, PQerrorMessage(c->conn));
			return;
		}
	}
	if (c->busy && (c->io_events & EV_WRITE)) {
		int r = PQflush(c->conn);
		if (r < 0) {
			conn_failed(c, PQerrorMessage(c->conn));
			return;
		}
		watch(c, r ? EV_READ | EV_WRITE : EV_READ);
	}

	PGnotify *n;
	while (!gone(c) && c->conn && (n = PQnotifies(c->conn))) {
		if (c->hooks.notify)
			c->hooks.notify(c, n->relname, n->extra, c->ud);
		PQfreemem(n);
	}

	while (!gone(c) && c->conn && c->busy && !PQisBusy(c->conn)) {
		PGresult *r = PQgetResult(c->conn);
		if (!r) {
			complete(c);
			if (!gone(c))
				dispatch(c);
			continue;
		}
		/* One statement, one result; keep an error over anything else. */
		if (c->result && PQresultStatus(c->result) == PGRES_FATAL_ERROR)
			PQclear(r);
		else {
			PQclear(c->result);
			c->result = r;
		}
	}
	if (!gone(c) && c->conn && PQstatus(c->conn) == CONNECTION_BAD)
		conn_failed(c, PQerrorMessage(c->conn));
}

static void on_io_connecting(struct pgc *c)
{
	switch (PQconnectPoll(c->conn)) {
	case PGRES_POLLING_READING:
		watch(c, EV_READ); /* the socket may have changed: watch re-reads it */
		break;
	case PGRES_POLLING_WRITING:
		watch(c, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		connected(c);
		break;
	default:
		conn_failed(c, PQerrorMessage(c->conn));
		break;
	}
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	struct pgc *c = (struct pgc *)w;
	enter(c);
	if (c->state == PGC_CONNECTING)
		on_io_connecting(c);
	else if (c->conn)
		on_io_connected(c, revents);
	leave(c);
}

/* host/hostaddr: NULL to let libpq take them from the conninfo (only when
 * it needs no name lookup: libpq's own lookup would block the loop). */
static void connect_to(struct pgc *c, const char *host, const char *hostaddr)
{
	/* Keepalives first: a half-open TCP connection must fail within about
	 * half a minute, not the OS's two hours. The conninfo (expanded from
	 * dbname, later in the list) overrides them. */
	const char *keys[] = {"keepalives", "keepalives_idle", "keepalives_interval",
			      "keepalives_count", "tcp_user_timeout", "dbname",
			      "fallback_application_name", "host", "hostaddr", NULL};
	const char *vals[] = {"1", "15", "5", "3", "30000", c->conninfo, c->appname, host, hostaddr,
			      NULL};
	if (!host)
		keys[7] = NULL;
	c->conn = PQconnectStartParams(keys, vals, 1);
	if (!c->conn) {
		conn_failed(c, "out of memory");
		return;
	}
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		conn_failed(c, PQerrorMessage(c->conn));
		return;
	}
	c->state = PGC_CONNECTING;
	/* libpq: behave as if PQconnectPoll had returned PGRES_POLLING_WRITING. */
	watch(c, EV_WRITE);
	ev_timer_stop(c->loop, &c->timer);
	ev_timer_set(&c->timer, c->connect_timeout, 0.);
	ev_timer_start(c->loop, &c->timer);
}

static void on_resolved(void *arg, const char *host, const char *hostaddr, const char *why)
{
	struct pgc *c = arg;
	c->resolving = NULL;
	enter(c);
	if (why)
		conn_failed(c, why);
	else
		connect_to(c, host, hostaddr);
	leave(c);
}

static void start_attempt(struct pgc *c)
{
	char why[512];
	int need = resolve_needed(c->conninfo, why, sizeof(why));
	if (need < 0) {
		conn_failed(c, why);
	} else if (need == 0) {
		connect_to(c, NULL, NULL);
	} else {
		c->state = PGC_RESOLVING;
		c->resolving = resolve_start(c->loop, c->conninfo, c->connect_timeout, on_resolved, c);
		if (!c->resolving)
			conn_failed(c, "cannot start resolving the host name");
	}
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct pgc *c = container_of(w, struct pgc, timer);
	enter(c);
	if (c->state == PGC_CONNECTING) {
		char why[64];
		snprintf(why, sizeof(why), "no connection within %g s", c->connect_timeout);
		conn_failed(c, why);
	} else if (c->state == PGC_WAITING) {
		start_attempt(c);
	}
	leave(c);
}

static void on_deferred(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct pgc *c = container_of(w, struct pgc, deferred);
	enter(c);
	if (c->broken[0]) {
		char why[sizeof(c->broken)];
		memcpy(why, c->broken, sizeof(why));
		c->broken[0] = '\0';
		conn_failed(c, why);
	} else {
		dispatch(c);
	}
	leave(c);
}

static void conn_failed(struct pgc *c, const char *why)
{
	char line[512];
	one_line(line, sizeof(line), why);
	if (!line[0])
		snprintf(line, sizeof(line), "connection lost");
	snprintf(c->last_failure, sizeof(c->last_failure), "%s", line);

	ev_io_stop(c->loop, &c->io);
	ev_timer_stop(c->loop, &c->timer);
	ev_timer_stop(c->loop, &c->deferred);
	c->broken[0] = '\0';
	if (c->conn)
		PQfinish(c->conn);
	c->conn = NULL;
	PQclear(c->result);
	c->result = NULL;
	c->busy = false;
	bool was_up = c->state == PGC_READY || c->state == PGC_SETUP;
	c->state = PGC_WAITING;

	double delay = backoff_next(&c->backoff);
	ev_timer_set(&c->timer, delay, 0.);
	ev_timer_start(c->loop, &c->timer);
	log_warn("%s: %s: %s; attempt %d in %.1f s", c->name,
		 was_up ? "connection lost" : "cannot connect", line, c->backoff.failures + 1,
		 delay);

	/* Answer everything queued: none of it can be sent on this connection,
	 * and whether a statement on the wire took effect is unknown. */
	struct query *q = c->head;
	c->head = c->tail = NULL;
	c->queued = 0;
	while (q) {
		struct query *next = q->next;
		if (q->fn && !gone(c))
			q->fn(c, NULL, line, q->arg);
		free_query(q);
		q = next;
	}
	if (!gone(c) && c->hooks.lost)
		c->hooks.lost(c, line, c->ud);
}

struct pgc *pgc_new(struct ev_loop *loop, const struct pgc_options *opt,
		    const struct pgc_hooks *hooks, void *ud)
{
	struct pgc *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->loop = loop;
	if (hooks)
		c->hooks = *hooks;
	c->ud = ud;
	c->name = strdup(opt->name ? opt->name : "db");
	c->conninfo = strdup(opt->conninfo ? opt->conninfo : "");
	c->appname = strdup(opt->application_name ? opt->application_name : "chargeguard");
	if (!c->name || !c->conninfo || !c->appname) {
		destroy(c);
		return NULL;
	}
	c->setup = opt->setup;
	c->connect_timeout = opt->connect_timeout > 0 ? opt->connect_timeout : 10.;
	backoff_init(&c->backoff, opt->retry_min > 0 ? opt->retry_min : 0.2,
		     opt->retry_max > 0 ? opt->retry_max : 30.,
		     (unsigned)getpid() ^ (unsigned)time(NULL));
	ev_init(&c->io, on_io);
	ev_init(&c->timer, on_timer);
	ev_init(&c->deferred, on_deferred);
	c->state = PGC_IDLE;
	return c;
}

void pgc_start(struct pgc *c)
{
	if (c->state == PGC_IDLE) {
		enter(c);
		start_attempt(c);
		leave(c);
	}
}

int pgc_query(struct pgc *c, const char *sql, int nparams, const char *const *values,
	      pgc_result_fn fn, void *arg)
{
	if (c->state != PGC_READY || gone(c) || !fn)
		return -1;
	struct query *q = new_query(sql, nparams, values);
	if (!q)
		return -1;
	q->fn = fn;
	q->arg = arg;
	enqueue(c, q);
	send_head(c, true);
	return 0;
}

bool pgc_is_ready(const struct pgc *c) { return c->state == PGC_READY && !gone(c); }

bool pgc_in_transaction(const struct pgc *c)
{
	PGTransactionStatusType t = c->conn ? PQtransactionStatus(c->conn) : PQTRANS_UNKNOWN;
	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
}

void pgc_reset(struct pgc *c, const char *why)
{
	if (c->state == PGC_READY || c->state == PGC_SETUP)
		fail_soon(c, why);
}

int pgc_pending(const struct pgc *c) { return c->queued; }

double pgc_answer_age(const struct pgc *c)
{
	return c->last_answer > 0 ? mono_now() - c->last_answer : -1;
}

unsigned long pgc_connects(const struct pgc *c) { return c->connects; }

const char *pgc_last_failure(const struct pgc *c) { return c->last_failure; }

void pgc_free(struct pgc *c)
{
	if (!c)
		return;
	if (c->depth > 0) {
		c->free_pending = true;
		ev_io_stop(c->loop, &c->io);
		ev_timer_stop(c->loop, &c->timer);
		ev_timer_stop(c->loop, &c->deferred);
		return;
	}
	destroy(c);
}
