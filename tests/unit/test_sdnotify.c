/* test_sdnotify.c: the notify glue's rules that a system test cannot see
 * easily: nothing is sent without NOTIFY_SOCKET; READY=1 is sent once; a
 * reload before the first READY=1 sends nothing (it must not announce a
 * daemon that is not up); the watchdog timer runs only with WATCHDOG_USEC
 * and does not keep the loop alive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"
#include "sdnotify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct listener {
	int fd;
	char dir[64], path[96];
};

static int setup(void **state)
{
	struct listener *l = calloc(1, sizeof(*l));
	snprintf(l->dir, sizeof(l->dir), "/tmp/cg-sdnotify.XXXXXX");
	if (!l || !mkdtemp(l->dir))
		return -1;
	snprintf(l->path, sizeof(l->path), "%s/notify", l->dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", l->path);
	l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return -1;
	setenv("NOTIFY_SOCKET", l->path, 1);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	*state = l;
	return 0;
}

static int teardown(void **state)
{
	struct listener *l = *state;
	close(l->fd);
	unlink(l->path);
	rmdir(l->dir);
	free(l);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	return 0;
}

/* every message waiting, joined by '|', newlines shown as ' ' */
static const char *received(struct listener *l)
{
	static char all[1024];
	all[0] = '\0';
	char buf[256];
	ssize_t n;
	while ((n = recv(l->fd, buf, sizeof(buf) - 1, 0)) > 0) {
		buf[n] = '\0';
		for (char *p = buf; *p; p++)
			if (*p == '\n')
				*p = ' ';
		size_t len = strlen(all);
		snprintf(all + len, sizeof(all) - len, "%s%s", len ? "|" : "", buf);
	}
	return all;
}

static void nothing_without_notify_socket(void **state)
{
	struct listener *l = *state;
	unsetenv("NOTIFY_SOCKET");
	struct sdnotify n;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	sdnotify_start(&n, loop);
	sdnotify_ready(&n, "up");
	sdnotify_reload_begin(&n);
	sdnotify_reload_end(&n, "up");
	sdnotify_stopping(&n, "bye");
	sdnotify_stop(&n);
	assert_string_equal(received(l), "");
	assert_false(n.warned); /* not an error: simply not under systemd */
	ev_loop_destroy(loop);
}

static void ready_once_and_reload_pairs(void **state)
{
	struct listener *l = *state;
	struct sdnotify n;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	sdnotify_start(&n, loop);
	sdnotify_reload_begin(&n); /* before READY=1: nothing */
	sdnotify_reload_end(&n, "early");
	assert_string_equal(received(l), "");
	sdnotify_ready(&n, "up");
	sdnotify_ready(&n, "up again"); /* a reconnect: not news */
	assert_string_equal(received(l), "READY=1 STATUS=up");
	sdnotify_reload_begin(&n);
	sdnotify_reload_end(&n, "reloaded");
	const char *got = received(l);
	assert_non_null(strstr(got, "RELOADING=1 MONOTONIC_USEC="));
	assert_non_null(strstr(got, "|READY=1 STATUS=reloaded"));
	sdnotify_stopping(&n, "bye");
	assert_string_equal(received(l), "STOPPING=1 STATUS=bye");
	sdnotify_stop(&n);
	ev_loop_destroy(loop);
}

static void on_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void watchdog_pings_and_lets_the_loop_end(void **state)
{
	struct listener *l = *state;
	setenv("WATCHDOG_USEC", "100000", 1); /* a ping every 50 ms */
	struct sdnotify n;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	sdnotify_start(&n, loop);
	assert_true(n.watching);
	ev_timer done;
	ev_timer_init(&done, on_done, 0.3, 0);
	ev_timer_start(loop, &done);
	ev_run(loop, 0);
	const char *got = received(l);
	int pings = 0;
	for (const char *p = got; (p = strstr(p, "WATCHDOG=1")); p++)
		pings++;
	assert_in_range(pings, 2, 9); /* one at start, then about 6 (fewer on a loaded machine) */
	/* with only the pings left, ev_run returns at once */
	ev_run(loop, 0);
	sdnotify_stop(&n);
	assert_false(n.watching);
	ev_loop_destroy(loop);
}

int main(void)
{
	log_init("test", LOG_LEVEL_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(nothing_without_notify_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(ready_once_and_reload_pairs, setup, teardown),
		cmocka_unit_test_setup_teardown(watchdog_pings_and_lets_the_loop_end, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
