/* test_crash.c: OUTBOX_CRASH_AT parsing, and that the armed pass really
 * kills the process with SIGKILL (in a child), and no earlier pass does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crash.h"
#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const points[] = {"a.before", "a.after", NULL};
static char err[256];

static void unset_is_disarmed(void **state)
{
	(void)state;
	assert_int_equal(crash_init(points, NULL, err, sizeof(err)), 0);
	assert_int_equal(crash_init(points, "", err, sizeof(err)), 0);
	crash_point("a.before"); /* must return */
}

static void unknown_point_refused(void **state)
{
	(void)state;
	assert_int_equal(crash_init(points, "a.befor", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no such crash point"));
	assert_int_equal(crash_init(points, "a.before.x", err, sizeof(err)), -1);
}

static void bad_counts_refused(void **state)
{
	(void)state;
	const char *bad[] = {"a.before:", "a.before:0", "a.before:-1", "a.before:x", "a.before:2x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(crash_init(points, bad[i], err, sizeof(err)), -1);
		assert_non_null(strstr(err, "positive integer"));
	}
	assert_int_equal(crash_init(points, "a.before:3", err, sizeof(err)), 0);
	crash_init(points, NULL, err, sizeof(err));
}

/* Child: arm, then pass the point up to 5 times, reporting each pass
 * before taking it. Returns the number of passes reported and the status. */
static int run_child(const char *spec, const char *pass_name, int *status)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		log_set_level(LOG_LEVEL_ERROR); /* keep the test output clean */
		if (crash_init(points, spec, err, sizeof(err)) != 0)
			_exit(3);
		for (int i = 0; i < 5; i++) {
			if (write(fds[1], "x", 1) != 1)
				_exit(4);
			crash_point("a.after"); /* another point never fires */
			crash_point(pass_name);
		}
		_exit(0);
	}
	close(fds[1]);
	char buf[16];
	int passes = 0;
	ssize_t n;
	while ((n = read(fds[0], buf, sizeof(buf))) > 0)
		passes += (int)n;
	close(fds[0]);
	assert_int_equal(waitpid(pid, status, 0), pid);
	return passes;
}

static void first_pass_kills(void **state)
{
	(void)state;
	int status;
	int passes = run_child("a.before", "a.before", &status);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_int_equal(passes, 1);
}

static void nth_pass_kills(void **state)
{
	(void)state;
	int status;
	int passes = run_child("a.before:3", "a.before", &status);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_int_equal(passes, 3);
}

static void other_point_survives(void **state)
{
	(void)state;
	int status;
	int passes = run_child("a.before:9", "a.before", &status);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(passes, 5);
}

static void list_prints_all(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	crash_list(points, out);
	fclose(out);
	assert_string_equal(buf, "a.before\na.after\n");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unset_is_disarmed),    cmocka_unit_test(unknown_point_refused),
		cmocka_unit_test(bad_counts_refused),   cmocka_unit_test(first_pass_kills),
		cmocka_unit_test(nth_pass_kills),       cmocka_unit_test(other_point_survives),
		cmocka_unit_test(list_prints_all),
	};
	return cmocka_run_group_tests_name("crash", tests, NULL, NULL);
}
