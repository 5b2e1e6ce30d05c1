/* test_pgconn.c: the async libpq connection against a real PostgreSQL
 * (tests/run exports PGHOST to a throwaway cluster). Each test runs the loop
 * until its scenario ends or a 15 s watchdog fails it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"
#include "pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct run {
	struct ev_loop *loop;
	struct pgc *c, *killer;
	ev_timer watchdog;
	int ready, lost, answers, notifies, step;
	bool timed_out, done;
	char text[256];
	char notify_payload[64];
	char sqlstate[8];
	int backend_pid;
};

static void stop(struct run *r)
{
	r->done = true;
	ev_break(r->loop, EVBREAK_ALL);
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct run *r = w->data;
	r->timed_out = true;
	ev_break(loop, EVBREAK_ALL);
}

static void run_loop(struct run *r)
{
	ev_timer_init(&r->watchdog, on_watchdog, 15., 0.);
	r->watchdog.data = r;
	ev_timer_start(r->loop, &r->watchdog);
	ev_run(r->loop, 0);
	ev_timer_stop(r->loop, &r->watchdog);
	assert_false(r->timed_out);
}

static struct pgc *open_conn(struct run *r, const struct pgc_hooks *hooks, const char *conninfo,
			     const char *const *setup)
{
	struct pgc_options opt = {.name = "test", .conninfo = conninfo, .application_name = "cg-test",
				  .setup = setup, .connect_timeout = 5, .retry_min = 0.05,
				  .retry_max = 0.2};
	struct pgc *c = pgc_new(r->loop, &opt, hooks, r);
	assert_non_null(c);
	pgc_start(c);
	return c;
}

static void setup_run(struct run *r)
{
	memset(r, 0, sizeof(*r));
	r->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(r->loop);
}

static void teardown_run(struct run *r)
{
	pgc_free(r->c);
	pgc_free(r->killer);
	ev_loop_destroy(r->loop);
}

/* --- bound parameters, NULLs, results ---------------------------------- */

static void on_sum(struct pgc *c, const PGresult *res, const char *error, void *arg)
{
	(void)c;
	struct run *r = arg;
	assert_null(error);
	assert_int_equal(PQntuples(res), 1);
	snprintf(r->text, sizeof(r->text), "%s|%s", PQgetvalue(res, 0, 0),
		 PQgetisnull(res, 0, 1) ? "NULL" : PQgetvalue(res, 0, 1));
	stop(r);
}

static void ready_sum(struct pgc *c, void *ud)
{
	struct run *r = ud;
	r->ready++;
	const char *params[] = {"2", "3", NULL, "O'Brien; DROP TABLE x; --"};
	assert_int_equal(pgc_query(c, "SELECT $1::int + $2::int, $3::text, $4::text", 4, params,
				   on_sum, r),
			 0);
}

static void params_and_nulls(void **state)
{
	(void)state;
	struct run r;
	setup_run(&r);
	struct pgc_hooks h = {.ready = ready_sum};
	r.c = open_conn(&r, &h, "", NULL);
	assert_int_equal(pgc_query(r.c, "SELECT 1", 0, NULL, on_sum, &r), -1); /* not ready yet */
	run_loop(&r);
	assert_string_equal(r.text, "5|NULL");
	assert_int_equal(r.ready, 1);
	teardown_run(&r);
}

/* --- a server error leaves the connection usable ------------------------ */

static void on_after_error(struct pgc *c, const PGresult *res, const char *error, void *arg)
{
	(void)c;
	struct run *r = arg;
	assert_null(error);
	assert_string_equal(PQgetvalue(res, 0, 0), "ok");
	stop(r);
}

static void on_div0(struct pgc *c, const PGresult *res, const char *error, void *arg)
{
	struct run *r = arg;
	assert_non_null(res);
	assert_non_null(error);
	snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", pgc_sqlstate(res));
	assert_non_null(strstr(error, "division by zero"));
	assert_null(strchr(error, '\n'));
	assert_int_equal(pgc_query(c, "SELECT 'ok'", 0, NULL, on_after_error, r), 0);
}

static void ready_div0(struct pgc *c, void *ud)
{
	assert_int_equal(pgc_query(c, "SELECT 1/0", 0, NULL, on_div0, ud), 0);
}

static void server_error_then_usable(void **state)
{
	(void)state;
	struct run r;
	setup_run(&r);
	struct pgc_hooks h = {.ready = ready_div0};
	r.c = open_conn(&r, &h, "", NULL);
	run_loop(&r);
	assert_string_equal(r.sqlstate, "22012");
	teardown_run(&r);
}

/* --- many queued statements answer in order ----------------------------- */

static int order_seen[200];

static void on_ordered(struct pgc *c, const PGresult *res, const char *error, void *arg)
{
	(void)c;
	struct run *r = arg;
	assert_null(error);
	order_seen[r->answers++] = atoi(PQgetvalue(res, 0, 0));
	if (r->answers == 200)
		stop(r);
}

static void ready_ordered(struct pgc *c, void *ud)
{
	for (int i = 0; i < 200; i++) {
		char n[12];
		snprintf(n, sizeof(n), "%d", i);
		const char *p[] = {n};
		assert_int_equal(pgc_query(c, "SELECT $1::int", 1, p, on_ordered, ud), 0);
	}
	assert_int_equal(pgc_pending(c), 200);
}

static void queue_keeps_order(void **state)
{
	(void)state;
	struct run r;
	setup_run(&r);
	struct pgc_hooks h = {.ready = ready_ordered};
	r.c = open_conn(&r, &h, "", NULL);
	run_loop(&r);
	for (int i = 0; i < 200; i++)
		assert_int_equal(order_seen[i], i);
	assert_int_equal(pgc_pending(r.c), 0);
	teardown_run(&r);
}

/* --- a parameter larger than the socket buffer (PQflush returns 1) ------ */

static char *big;

static void on_big(struct pgc *c, const PGresult *res, const char *error, void *arg)
{
	(void)c;
	struct run *r = arg;
	assert_null(error);
	snprintf(r->text, sizeof(r->text), "%s", PQgetvalue(res, 0, 0));
	stop(r);
}

static void ready_big(struct pgc *c, void *ud)
{
	const char *p[] = {big};
	assert_int_equal(pgc_query(c, "SELECT length($1)", 1, p, on_big, ud), 0);
}

static void large_parameter_flushes(void **state)
{
	(void)state;
	struct run r;
	setup_run(&r);
	size_t n = 8 * 1024 * 1024;
	big = malloc(n + 1);
	memset(big, 'x', n);
	big[n] = '\0';
	struct pgc_hooks h = {.ready = ready_big};
	r.c = open_conn(&r, &h, "", NULL);
	run_loop(&r);
	assert_string_equal(r.text, "8388608");
	free(big);
	teardown_run(&r);
}

/* --- LISTEN through setup, NOTIFY delivered ----------------------------- */

static void on_notify(struct pgc *c, const char *channel, const char *payload, void *ud)
{
	(void)c;
	struct run *r = ud;
	assert_string_equal(channel, "cg_test");
	snprintf(r->notify_payload, sizeof(r->notify_payload), "%s", payload);
	r->notifies++;
	stop(r);
}

static void on_notified(struct pgc *c, const PGresult *res, const char *error, void *arg)
{
	(void)c;
	(void)res;
	(void)arg;
	assert_null(error);
}

static void ready_notify(struct pgc *c, void *ud)
{
	const char *p[] = {"hello"};
	assert_int_equal(pgc_query(c, "SELECT pg_notify('cg_test', $1)", 1, p, on_notified, ud), 0);
}

static void listen_and_notify(void **state)
{
	(void)state;
	static const char *const setup[] = {"LISTEN cg_test", NULL};
	struct run r;
	setup_run(&r);
	struct pgc_hooks h = {.ready = ready_notify, .notify = on_notify};
	r.c = open_conn(&r, &h, "", setup);
	run_loop(&r);
	assert_int_equal(r.notifies, 1);
	assert_string_equal(r.notify_payload, "hello");
	teardown_run(&r);
}

/* --- the server kills our backend: lost, reconnect, LISTEN again -------- */

static void on_terminated(struct pgc *c, const PGresult *res, const char *error, void *arg)
{
	(void)c;
	(void)res;
	(void)arg;
	assert_null(error);
}

static void killer_ready(struct pgc *c, void *ud)
{
	struct run *r = ud;
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", r->backend_pid);
	const char *p[] = {pid};
	assert_int_equal(pgc_query(c, "SELECT pg_terminate_backend($1::int)", 1, p, on_terminated, r),
			 0);
}

static void on_pid(struct pgc *c, const PGresult *res, const char *error, void *arg)
{
	(void)c;
	struct run *r = arg;
	assert_null(error);
	r->backend_pid = atoi(PQgetvalue(res, 0, 0));
	struct pgc_hooks kh = {.ready = killer_ready};
	r->killer = open_conn(r, &kh, "", NULL);
}

static void on_notify_after_reconnect(struct pgc *c, const char *channel, const char *payload,
				      void *ud)
{
	(void)c;
	(void)channel;
	struct run *r = ud;
	snprintf(r->notify_payload, sizeof(r->notify_payload), "%s", payload);
	stop(r);
}

static void ready_reconnect(struct pgc *c, void *ud)
{
	struct run *r = ud;
	r->ready++;
	if (r->ready == 1) {
		assert_int_equal(pgc_query(c, "SELECT pg_backend_pid()", 0, NULL, on_pid, r), 0);
	} else {
		/* The new session listens again: a notify reaches it. */
		const char *p[] = {"after"};
		assert_int_equal(
			pgc_query(c, "SELECT pg_notify('cg_test', $1)", 1, p, on_notified, r), 0);
	}
}

static void on_lost(struct pgc *c, const char *why, void *ud)
{
	(void)c;
	struct run *r = ud;
	r->lost++;
	snprintf(r->text, sizeof(r->text), "%s", why);
}

static void reconnects_after_kill(void **state)
{
	(void)state;
	static const char *const setup[] = {"LISTEN cg_test", NULL};
	struct run r;
	setup_run(&r);
	struct pgc_hooks h = {.ready = ready_reconnect, .lost = on_lost,
			      .notify = on_notify_after_reconnect};
	r.c = open_conn(&r, &h, "", setup);
	run_loop(&r);
	assert_int_equal(r.ready, 2);
	assert_true(r.lost >= 1);
	/* idle when killed: libpq reports the FATAL as a notice, then the EOF */
	assert_true(strstr(r.text, "terminating connection") ||
		    strstr(r.text, "closed the connection"));
	assert_string_equal(r.notify_payload, "after");
	teardown_run(&r);
}

/* --- statements queued when the connection dies are answered ------------ */

static void on_orphan(struct pgc *c, const PGresult *res, const char *error, void *arg)
{
	(void)c;
	struct run *r = arg;
	if (r->step == 0) { /* the pg_terminate_backend of our own session */
		r->step = 1;
		return;
	}
	assert_null(res);
	assert_non_null(error);
	r->answers++;
	if (r->answers == 3)
		stop(r);
}

static void ready_suicide(struct pgc *c, void *ud)
{
	struct run *r = ud;
	if (r->ready++ > 0)
		return;
	assert_int_equal(pgc_query(c, "SELECT pg_terminate_backend(pg_backend_pid())", 0, NULL,
				   on_orphan, r),
			 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pgc_query(c, "SELECT 1", 0, NULL, on_orphan, r), 0);
}

static void queued_answered_on_loss(void **state)
{
	(void)state;
	struct run r;
	setup_run(&r);
	struct pgc_hooks h = {.ready = ready_suicide, .lost = on_lost};
	r.c = open_conn(&r, &h, "", NULL);
	run_loop(&r);
	assert_int_equal(r.answers, 3);
	assert_true(r.lost >= 1);
	teardown_run(&r);
}

/* --- nothing listening: retries with backoff, never ready --------------- */

static void on_lost_count(struct pgc *c, const char *why, void *ud)
{
	(void)c;
	struct run *r = ud;
	r->lost++;
	snprintf(r->text, sizeof(r->text), "%s", why);
	if (r->lost == 4)
		stop(r);
}

static void ready_never(struct pgc *c, void *ud)
{
	(void)c;
	struct run *r = ud;
	r->ready++;
}

static void unreachable_retries(void **state)
{
	(void)state;
	struct run r;
	setup_run(&r);
	struct pgc_hooks h = {.ready = ready_never, .lost = on_lost_count};
	r.c = open_conn(&r, &h, "host=/nonexistent-cg-socket-dir", NULL);
	run_loop(&r);
	assert_int_equal(r.ready, 0);
	assert_int_equal(r.lost, 4);
	assert_non_null(strstr(r.text, "nonexistent-cg-socket-dir"));
	teardown_run(&r);
}

/* --- host names are resolved off the loop, then handed to libpq --------- */

static void on_lost_stop(struct pgc *c, const char *why, void *ud)
{
	(void)c;
	struct run *r = ud;
	r->lost++;
	snprintf(r->text, sizeof(r->text), "%s", why);
	stop(r);
}

static void name_resolved_then_connect(void **state)
{
	(void)state;
	struct run r;
	setup_run(&r);
	struct pgc_hooks h = {.ready = ready_never, .lost = on_lost_stop};
	/* /etc/hosts answers for localhost; nothing listens on port 1 */
	r.c = open_conn(&r, &h, "host=localhost port=1 dbname=x", NULL);
	run_loop(&r);
	assert_int_equal(r.ready, 0);
	/* libpq was given the address we resolved (hostaddr): it shows that
	 * address alone, where its own lookup would show "localhost" (addr) */
	assert_true(strstr(r.text, "at \"127.0.0.1\"") || strstr(r.text, "at \"::1\""));
	assert_null(strstr(r.text, "localhost"));
	assert_non_null(strstr(r.text, "refused"));
	teardown_run(&r);
}

static void unresolvable_name_fails_cleanly(void **state)
{
	(void)state;
	struct run r;
	setup_run(&r);
	log_set_level(LOG_LEVEL_ERROR);
	struct pgc_hooks h = {.ready = ready_never, .lost = on_lost_stop};
	r.c = open_conn(&r, &h, "host=no-such-host.invalid dbname=x", NULL);
	run_loop(&r);
	log_set_level(LOG_LEVEL_INFO);
	assert_int_equal(r.ready, 0);
	assert_non_null(strstr(r.text, "cannot resolve"));
	assert_non_null(strstr(r.text, "no-such-host.invalid"));
	teardown_run(&r);
}

/* --- a failing setup statement is a failed connection ------------------- */

static void bad_setup_retries(void **state)
{
	(void)state;
	static const char *const setup[] = {"SET no_such_setting_xyz = 1", NULL};
	struct run r;
	setup_run(&r);
	log_set_level(LOG_LEVEL_ERROR); /* the retries are expected */
	struct pgc_hooks h = {.ready = ready_never, .lost = on_lost_count};
	r.c = open_conn(&r, &h, "", setup);
	run_loop(&r);
	assert_int_equal(r.ready, 0);
	assert_int_equal(r.lost, 4);
	log_set_level(LOG_LEVEL_INFO);
	teardown_run(&r);
}

/* --- notices go to the log ---------------------------------------------- */

static void on_notice_done(struct pgc *c, const PGresult *res, const char *error, void *arg)
{
	(void)c;
	(void)res;
	assert_null(error);
	stop(arg);
}

static void ready_notice(struct pgc *c, void *ud)
{
	assert_int_equal(pgc_query(c, "DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$", 0,
				   NULL, on_notice_done, ud),
			 0);
}

static void notices_logged(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	log_set_stream(out);
	struct run r;
	setup_run(&r);
	struct pgc_hooks h = {.ready = ready_notice};
	r.c = open_conn(&r, &h, "", NULL);
	run_loop(&r);
	teardown_run(&r);
	log_set_stream(NULL);
	fclose(out);
	assert_non_null(strstr(buf, "server says: NOTICE: hello from plpgsql"));
	free(buf);
}

/* --- freeing the connection inside its own callback --------------------- */

static void on_free_me(struct pgc *c, const PGresult *res, const char *error, void *arg)
{
	(void)res;
	(void)error;
	struct run *r = arg;
	pgc_free(c); /* deferred until our handler unwinds */
	r->c = NULL;
	stop(r);
}

static void ready_free(struct pgc *c, void *ud)
{
	assert_int_equal(pgc_query(c, "SELECT 1", 0, NULL, on_free_me, ud), 0);
	assert_int_equal(pgc_query(c, "SELECT 2", 0, NULL, on_free_me, ud), 0); /* dropped */
}

static void free_inside_callback(void **state)
{
	(void)state;
	struct run r;
	setup_run(&r);
	struct pgc_hooks h = {.ready = ready_free};
	r.c = open_conn(&r, &h, "", NULL);
	run_loop(&r);
	assert_null(r.c);
	teardown_run(&r);
}

int main(void)
{
	log_init("test_pgconn", LOG_LEVEL_INFO);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(params_and_nulls),
		cmocka_unit_test(server_error_then_usable),
		cmocka_unit_test(queue_keeps_order),
		cmocka_unit_test(large_parameter_flushes),
		cmocka_unit_test(listen_and_notify),
		cmocka_unit_test(reconnects_after_kill),
		cmocka_unit_test(queued_answered_on_loss),
		cmocka_unit_test(unreachable_retries),
		cmocka_unit_test(bad_setup_retries),
		cmocka_unit_test(name_resolved_then_connect),
		cmocka_unit_test(unresolvable_name_fails_cleanly),
		cmocka_unit_test(notices_logged),
		cmocka_unit_test(free_inside_callback),
	};
	return cmocka_run_group_tests_name("pgconn", tests, NULL, NULL);
}
