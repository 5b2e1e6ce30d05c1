/* test_config_reload.c: SIGHUP's parse-validate-swap (config_reload.c):
 * reloadable values move, restart-only ones are named and kept, any bad
 * value or failed check leaves the running struct as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config_reload.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rcfg {
	int limit;
	double wait;
	char *name;
	char *password;
	int level;
	int fixed; /* restart-only; must be at least limit */
	struct cfg_seconds_list sched;
	char *config;
};

#define OFF(f) offsetof(struct rcfg, f)
static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
static const struct cfg_option opts[] = {
	{"--limit", "limit", NULL, CFG_INT, OFF(limit), 1, 100, NULL, "10", "N", "limit", 0},
	{"--wait", "wait", NULL, CFG_SECONDS, OFF(wait), 0.01, 31536000, NULL, "1", "S", "wait", 0},
	{"--name", "name", NULL, CFG_STRING, OFF(name), 0, 0, NULL, "a", "S", "name", 0},
	{"--password", "password", NULL, CFG_STRING, OFF(password), 0, 0, NULL, "", "S", "secret",
	 CFG_SECRET},
	{"--log-level", "log_level", NULL, CFG_ENUM, OFF(level), 0, 0, levels, "info", "L", "level",
	 0},
	{"--fixed", "fixed", NULL, CFG_INT, OFF(fixed), 1, 100, NULL, "50", "N", "fixed",
	 CFG_RESTART},
	{"--sched", "sched", NULL, CFG_SECONDS_LIST, OFF(sched), 1, 3600, NULL, "60", "S,..",
	 "schedule", 0},
	{"--config", NULL, NULL, CFG_STRING, OFF(config), 0, 0, NULL, NULL, "FILE", "config",
	 CFG_CLI_ONLY | CFG_RESTART},
};
static const struct cfg_spec spec = {
	.program = "tester",
	.synopsis = "Usage: tester",
	.options = opts,
	.count = sizeof(opts) / sizeof(opts[0]),
	.config_flag = "--config",
};

static int check(const void *p, char *why, size_t whylen)
{
	const struct rcfg *c = p;
	if (c->fixed < c->limit) {
		snprintf(why, whylen, "--fixed %d must be at least --limit %d", c->fixed, c->limit);
		return -1;
	}
	return 0;
}

static char path[64];
static char *argv_file[] = {"tester", "--config", path, NULL};
static struct rcfg running, fresh;
static char err[512];
static char *logbuf;
static size_t loglen;
static FILE *logout;

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static const char *logged(void)
{
	fflush(logout);
	return logbuf ? logbuf : "";
}

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/cg-test-reload.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	write_file("limit = 10\nname = a\n");
	memset(&running, 0, sizeof(running));
	memset(&fresh, 0, sizeof(fresh));
	assert_int_equal(cfg_load(&spec, &running, 3, argv_file, err, sizeof(err)), CFG_OK);
	logout = open_memstream(&logbuf, &loglen);
	log_init("tester", LOG_LEVEL_DEBUG);
	log_set_stream(logout);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_set_stream(NULL);
	fclose(logout);
	free(logbuf);
	logbuf = NULL;
	cfg_free(&spec, &running);
	cfg_free(&spec, &fresh);
	unlink(path);
	return 0;
}

static int reload(int argc, char **argv)
{
	cfg_free(&spec, &fresh);
	memset(&fresh, 0, sizeof(fresh));
	return cfg_reload_load(&spec, &running, &fresh, sizeof(fresh), argc, argv, check, err,
			       sizeof(err));
}

static void reloadable_values_move(void **state)
{
	(void)state;
	write_file("limit = 20\nname = b\nsched = 1,2.5\nlog_level = warn\nwait = 31536000\n");
	assert_int_equal(reload(3, argv_file), 0);
	assert_int_equal(cfg_reload_apply(&spec, &running, &fresh), 5);
	assert_int_equal(running.limit, 20);
	assert_string_equal(running.name, "b");
	assert_int_equal(running.sched.n, 2);
	assert_int_equal(running.level, 2);
	assert_string_equal(fresh.name, "a"); /* the old string, freed with fresh */
	assert_non_null(strstr(logged(), "SIGHUP: limit changed: 10 -> 20"));
	assert_non_null(strstr(logged(), "SIGHUP: name changed: 'a' -> 'b'"));
	assert_non_null(strstr(logged(), "SIGHUP: sched changed: 60 -> 1,2.5"));
	assert_non_null(strstr(logged(), "SIGHUP: log_level changed: info -> warn"));
	assert_non_null(strstr(logged(), "SIGHUP: wait changed: 1 -> 31536000"));
}

static void nothing_changed_nothing_logged(void **state)
{
	(void)state;
	assert_int_equal(reload(3, argv_file), 0);
	assert_int_equal(cfg_reload_apply(&spec, &running, &fresh), 0);
	assert_string_equal(logged(), "");
}

static void restart_only_named_and_kept(void **state)
{
	(void)state;
	write_file("limit = 10\nname = a\nfixed = 70\n");
	assert_int_equal(reload(3, argv_file), 0);
	assert_int_equal(cfg_reload_apply(&spec, &running, &fresh), 0);
	assert_int_equal(running.fixed, 50);
	assert_non_null(strstr(logged(), "warn"));
	assert_non_null(
		strstr(logged(), "SIGHUP: fixed needs a restart; still using 50 (the configuration "
				 "now says 70)"));
}

static void bad_value_refused_whole(void **state)
{
	(void)state;
	write_file("limit = 20\nname = b\nwait = 0\n");
	assert_int_equal(reload(3, argv_file), -1);
	assert_non_null(strstr(err, "key 'wait'"));
	assert_non_null(strstr(err, "expected a number of seconds from 0.01 to 31536000"));
	assert_int_equal(running.limit, 10); /* the valid change beside it waits too */
	assert_string_equal(running.name, "a");
}

static void unreadable_file_refused(void **state)
{
	(void)state;
	unlink(path);
	assert_int_equal(reload(3, argv_file), -1);
	assert_non_null(strstr(err, "cannot open"));
	assert_non_null(strstr(err, path));
}

/* A reloadable value is checked against the restart-only values that will
 * really run, not against the file's new ones. */
static void checked_against_running_restart_values(void **state)
{
	(void)state;
	write_file("limit = 60\nfixed = 80\n"); /* fine at the next restart, not now */
	assert_int_equal(reload(3, argv_file), -1);
	assert_string_equal(err, "--fixed 50 must be at least --limit 60");
	assert_int_equal(running.limit, 10);
}

/* And a file that a restart would refuse is refused now. */
static void checked_as_a_restart_would(void **state)
{
	(void)state;
	write_file("limit = 20\nfixed = 15\n");
	assert_int_equal(reload(3, argv_file), -1);
	assert_string_equal(err, "--fixed 15 must be at least --limit 20");
	assert_int_equal(running.limit, 10);
}

static void flags_still_win(void **state)
{
	(void)state;
	char *argv[] = {"tester", "--config", path, "--limit", "10", NULL};
	write_file("limit = 30\n");
	assert_int_equal(reload(5, argv), 0);
	assert_int_equal(cfg_reload_apply(&spec, &running, &fresh), 0);
	assert_int_equal(running.limit, 10);
}

static void secrets_hidden(void **state)
{
	(void)state;
	write_file("limit = 10\nname = a\npassword = hunter2\n");
	assert_int_equal(reload(3, argv_file), 0);
	assert_int_equal(cfg_reload_apply(&spec, &running, &fresh), 1);
	assert_string_equal(running.password, "hunter2");
	assert_non_null(strstr(logged(), "password changed: (hidden) -> (hidden)"));
	assert_null(strstr(logged(), "hunter2"));
}

static void values_format_and_compare(void **state)
{
	(void)state;
	char buf[64];
	cfg_value_format(&opts[4], &running, buf, sizeof(buf));
	assert_string_equal(buf, "info");
	struct rcfg other = running;
	other.sched.v[0] = 61;
	assert_false(cfg_value_equal(&opts[6], &running, &other));
	other.sched = running.sched;
	other.sched.n = 0;
	assert_false(cfg_value_equal(&opts[6], &running, &other));
	other.sched = running.sched;
	assert_true(cfg_value_equal(&opts[6], &running, &other));
	cfg_value_format(&opts[0], &running, buf, 3); /* cut, never overrun */
	assert_string_equal(buf, "10");
}

static int refuse(void *ud, const void *p, char *why, size_t whylen)
{
	(void)p;
	snprintf(why, whylen, "%s", (const char *)ud);
	return -1;
}

/* The wrapper both daemons call: the refusal is one error line and applies
 * nothing, even when only the daemon's own preparation failed. */
static void whole_reload_logs_refusal(void **state)
{
	(void)state;
	write_file("limit = 20\n");
	assert_int_equal(cfg_reload(&spec, &running, &fresh, sizeof(fresh), 3, argv_file, check,
				    refuse, "no room"),
			 -1);
	assert_int_equal(running.limit, 10);
	assert_non_null(strstr(logged(), "error: SIGHUP: configuration not reloaded, every setting "
					 "stays as it was: no room"));
}

/* Going to a more verbose level, the reload's own lines already show. */
static void whole_reload_verbose_first(void **state)
{
	(void)state;
	log_set_level(LOG_LEVEL_WARN);
	running.level = 2;
	write_file("limit = 20\nlog_level = debug\n");
	cfg_free(&spec, &fresh);
	memset(&fresh, 0, sizeof(fresh));
	assert_int_equal(cfg_reload(&spec, &running, &fresh, sizeof(fresh), 3, argv_file, check,
				    NULL, NULL),
			 0);
	assert_int_equal(fresh.limit, 10); /* what ran before, for the daemon */
	assert_non_null(strstr(logged(), "SIGHUP: limit changed: 10 -> 20"));
	assert_non_null(strstr(logged(), "SIGHUP: configuration reloaded (2 setting(s) changed)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(reloadable_values_move, setup, teardown),
		cmocka_unit_test_setup_teardown(nothing_changed_nothing_logged, setup, teardown),
		cmocka_unit_test_setup_teardown(restart_only_named_and_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_value_refused_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(unreadable_file_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(checked_against_running_restart_values, setup,
						teardown),
		cmocka_unit_test_setup_teardown(checked_as_a_restart_would, setup, teardown),
		cmocka_unit_test_setup_teardown(flags_still_win, setup, teardown),
		cmocka_unit_test_setup_teardown(secrets_hidden, setup, teardown),
		cmocka_unit_test_setup_teardown(values_format_and_compare, setup, teardown),
		cmocka_unit_test_setup_teardown(whole_reload_logs_refusal, setup, teardown),
		cmocka_unit_test_setup_teardown(whole_reload_verbose_first, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
