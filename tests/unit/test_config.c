/* test_config.c: option tables: types, bounds, precedence, messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tcfg {
	char *db;
	bool once;
	int batch;
	double interval;
	int level;
	char *config;
};

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const others[] = {"relay", NULL};
static const struct cfg_option opts[] = {
	{"--db", "db", "T_DB", CFG_STRING, offsetof(struct tcfg, db), 0, 0, NULL, "", "CONNINFO",
	 "conninfo", CFG_SECRET},
	{"--once", NULL, NULL, CFG_BOOL, offsetof(struct tcfg, once), 0, 0, NULL, NULL, NULL,
	 "once", CFG_CLI_ONLY},
	{"--batch", "batch", "T_BATCH", CFG_INT, offsetof(struct tcfg, batch), 1, 10000, NULL,
	 "500", "N", "batch", 0},
	{"--interval", "interval", "T_INTERVAL", CFG_SECONDS, offsetof(struct tcfg, interval), 0.1,
	 86400, NULL, "60", "S", "interval", 0},
	{"--log-level", "log_level", NULL, CFG_ENUM, offsetof(struct tcfg, level), 0, 0, levels,
	 "info", "L", "level", 0},
	{"--config", NULL, "T_CONFIG", CFG_STRING, offsetof(struct tcfg, config), 0, 0, NULL, NULL,
	 "FILE", "config file", CFG_CLI_ONLY},
};
static const struct cfg_spec spec = {
	.program = "tester",
	.synopsis = "Usage: tester",
	.options = opts,
	.count = sizeof(opts) / sizeof(opts[0]),
	.config_flag = "--config",
	.other_sections = others,
};

static char err[512];
static struct tcfg cfg;

static int load(int argc, char **argv)
{
	cfg_free(&spec, &cfg);
	memset(&cfg, 0, sizeof(cfg));
	return cfg_load(&spec, &cfg, argc, argv, err, sizeof(err));
}

static char *write_file(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/cg-test-config.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static int teardown(void **state)
{
	(void)state;
	cfg_free(&spec, &cfg);
	unsetenv("T_DB");
	unsetenv("T_BATCH");
	unsetenv("T_INTERVAL");
	unsetenv("T_CONFIG");
	return 0;
}

static void defaults_apply(void **state)
{
	(void)state;
	char *argv[] = {"t", NULL};
	assert_int_equal(load(1, argv), CFG_OK);
	assert_int_equal(cfg.batch, 500);
	assert_true(cfg.interval == 60.0);
	assert_int_equal(cfg.level, 1);
	assert_string_equal(cfg.db, "");
	assert_false(cfg.once);
}

static void flags_both_forms(void **state)
{
	(void)state;
	char *argv[] = {"t", "--batch", "7", "--interval=0.5", "--once", "--log-level", "debug", NULL};
	assert_int_equal(load(7, argv), CFG_OK);
	assert_int_equal(cfg.batch, 7);
	assert_true(cfg.interval == 0.5);
	assert_true(cfg.once);
	assert_int_equal(cfg.level, 0);
}

static void int_bounds_named(void **state)
{
	(void)state;
	char *lo[] = {"t", "--batch", "0", NULL};
	assert_int_equal(load(3, lo), CFG_ERROR);
	assert_non_null(strstr(err, "--batch"));
	assert_non_null(strstr(err, "from 1 to 10000"));
	char *hi[] = {"t", "--batch=10001", NULL};
	assert_int_equal(load(2, hi), CFG_ERROR);
	assert_non_null(strstr(err, "out of range"));
	char *edge[] = {"t", "--batch=10000", NULL};
	assert_int_equal(load(2, edge), CFG_OK);
	assert_int_equal(cfg.batch, 10000);
}

static void int_garbage_refused(void **state)
{
	(void)state;
	const char *bad[] = {"abc", "12x", "", "1.5", "99999999999999999999999", " 5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = {"t", "--batch", (char *)bad[i], NULL};
		assert_int_equal(load(3, argv), CFG_ERROR);
		assert_non_null(strstr(err, "--batch"));
	}
}

static void seconds_refuse_nan_and_range(void **state)
{
	(void)state;
	const char *bad[] = {"nan", "inf", "0.05", "86401", "1e999", "x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = {"t", "--interval", (char *)bad[i], NULL};
		assert_int_equal(load(3, argv), CFG_ERROR);
		assert_non_null(strstr(err, "--interval"));
	}
}

static void enum_lists_choices(void **state)
{
	(void)state;
	char *argv[] = {"t", "--log-level", "loud", NULL};
	assert_int_equal(load(3, argv), CFG_ERROR);
	assert_non_null(strstr(err, "debug, info, warn, error"));
}

static void unknown_and_missing(void **state)
{
	(void)state;
	char *unknown[] = {"t", "--bogus", NULL};
	assert_int_equal(load(2, unknown), CFG_ERROR);
	assert_non_null(strstr(err, "unknown option '--bogus'"));
	char *missing[] = {"t", "--batch", NULL};
	assert_int_equal(load(2, missing), CFG_ERROR);
	assert_non_null(strstr(err, "needs a value"));
	char *positional[] = {"t", "stray", NULL};
	assert_int_equal(load(2, positional), CFG_ERROR);
	assert_non_null(strstr(err, "unexpected argument"));
}

static void help_and_version_win(void **state)
{
	(void)state;
	char *h[] = {"t", "--batch", "0", "--help", NULL};
	assert_int_equal(load(4, h), CFG_HELP);
	char *v[] = {"t", "--version", NULL};
	assert_int_equal(load(2, v), CFG_VERSION);
}

static void precedence_file_env_flag(void **state)
{
	(void)state;
	char *path = write_file("# comment\nbatch = 11\ninterval = 2\n[relay]\nwhatever = 1\n");
	char *file_only[] = {"t", "--config", path, NULL};
	assert_int_equal(load(3, file_only), CFG_OK);
	assert_int_equal(cfg.batch, 11);
	assert_true(cfg.interval == 2.0);

	setenv("T_BATCH", "22", 1);
	assert_int_equal(load(3, file_only), CFG_OK);
	assert_int_equal(cfg.batch, 22); /* env beats file */
	assert_true(cfg.interval == 2.0);

	char *with_flag[] = {"t", "--batch", "33", "--config", path, NULL};
	assert_int_equal(load(5, with_flag), CFG_OK);
	assert_int_equal(cfg.batch, 33); /* flag beats env, whatever the order */

	setenv("T_CONFIG", path, 1); /* the file named by the environment */
	unsetenv("T_BATCH");
	char *none[] = {"t", NULL};
	assert_int_equal(load(1, none), CFG_OK);
	assert_int_equal(cfg.batch, 11);
	unlink(path);
}

static void file_errors_name_line_and_key(void **state)
{
	(void)state;
	char *path = write_file("batch = 5\n\ninterval = soon\n");
	char *argv[] = {"t", "--config", path, NULL};
	assert_int_equal(load(3, argv), CFG_ERROR);
	assert_non_null(strstr(err, "line 3"));
	assert_non_null(strstr(err, "key 'interval'"));
	unlink(path);

	path = write_file("batchsize = 5\n");
	assert_int_equal(load(3, argv), CFG_ERROR);
	assert_non_null(strstr(err, "unknown key 'batchsize'"));
	unlink(path);

	path = write_file("[chargr]\nbatch = 5\n");
	assert_int_equal(load(3, argv), CFG_ERROR);
	assert_non_null(strstr(err, "unknown section [chargr]"));
	unlink(path);

	path = write_file("[tester]\nbatch = 6\n");
	assert_int_equal(load(3, argv), CFG_OK);
	assert_int_equal(cfg.batch, 6);
	unlink(path);

	char *missing[] = {"t", "--config", "/nonexistent/x.conf", NULL};
	assert_int_equal(load(3, missing), CFG_ERROR);
	assert_non_null(strstr(err, "cannot open"));
}

static void env_errors_name_variable(void **state)
{
	(void)state;
	setenv("T_INTERVAL", "-1", 1);
	char *argv[] = {"t", NULL};
	assert_int_equal(load(1, argv), CFG_ERROR);
	assert_non_null(strstr(err, "environment T_INTERVAL"));
}

static void secrets_not_echoed(void **state)
{
	(void)state;
	const struct cfg_option secret_int = {"--pin", NULL, NULL, CFG_INT, 0, 0, 9, NULL, NULL,
					      NULL, "pin", CFG_SECRET};
	int pin = 0;
	assert_int_equal(cfg_set(&secret_int, &pin, "s3cr3t-value", err, sizeof(err)), -1);
	assert_null(strstr(err, "s3cr3t"));
	assert_non_null(strstr(err, "(hidden)"));
}

static void seconds_lists(void **state)
{
	(void)state;
	struct cfg_seconds_list list;
	const struct cfg_option opt = {"--schedule", NULL, NULL, CFG_SECONDS_LIST, 0, 1, 1e6, NULL,
				       NULL, "S1,S2", "schedule", 0};
	assert_int_equal(cfg_set(&opt, &list, "60,300,3600.5", err, sizeof(err)), 0);
	assert_int_equal(list.n, 3);
	assert_true(list.v[0] == 60 && list.v[1] == 300 && list.v[2] == 3600.5);
	assert_int_equal(cfg_set(&opt, &list, "5", err, sizeof(err)), 0);
	assert_int_equal(list.n, 1);
	const char *bad[] = {"", ",", "60,", ",60", "60,,300", "60;300", "0.5", "60, 300", "x", "nan"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cfg_set(&opt, &list, bad[i], err, sizeof(err)), -1);
		assert_non_null(strstr(err, "comma-separated seconds"));
	}
	char many[512] = "1";
	for (int i = 0; i < CFG_LIST_MAX; i++)
		strncat(many, ",1", sizeof(many) - strlen(many) - 1);
	assert_int_equal(cfg_set(&opt, &list, many, err, sizeof(err)), -1); /* 33 items */
}

/* A program without a config-file option: unknown flags are still refused
 * cleanly (this once read an uninitialised value). */
static void no_config_option(void **state)
{
	(void)state;
	struct cfg_spec bare = spec;
	bare.config_flag = NULL;
	bare.count = 3; /* --db, --once, --batch */
	struct tcfg c = {0};
	char *argv[] = {"t", "--bogus", "--batch", "3", NULL};
	assert_int_equal(cfg_load(&bare, &c, 4, argv, err, sizeof(err)), CFG_ERROR);
	assert_non_null(strstr(err, "unknown option '--bogus'"));
	cfg_free(&bare, &c);
	char *ok[] = {"t", "--batch", "3", NULL};
	memset(&c, 0, sizeof(c));
	assert_int_equal(cfg_load(&bare, &c, 3, ok, err, sizeof(err)), CFG_OK);
	assert_int_equal(c.batch, 3);
	cfg_free(&bare, &c);
}

static void help_lists_every_option(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	cfg_print_help(&spec, out);
	fclose(out);
	for (size_t i = 0; i < spec.count; i++)
		assert_non_null(strstr(buf, opts[i].flag));
	assert_non_null(strstr(buf, "env T_BATCH"));
	assert_non_null(strstr(buf, "[1..10000]"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(defaults_apply, teardown),
		cmocka_unit_test_teardown(flags_both_forms, teardown),
		cmocka_unit_test_teardown(int_bounds_named, teardown),
		cmocka_unit_test_teardown(int_garbage_refused, teardown),
		cmocka_unit_test_teardown(seconds_refuse_nan_and_range, teardown),
		cmocka_unit_test_teardown(enum_lists_choices, teardown),
		cmocka_unit_test_teardown(unknown_and_missing, teardown),
		cmocka_unit_test_teardown(help_and_version_win, teardown),
		cmocka_unit_test_teardown(precedence_file_env_flag, teardown),
		cmocka_unit_test_teardown(file_errors_name_line_and_key, teardown),
		cmocka_unit_test_teardown(env_errors_name_variable, teardown),
		cmocka_unit_test_teardown(secrets_not_echoed, teardown),
		cmocka_unit_test_teardown(seconds_lists, teardown),
		cmocka_unit_test_teardown(no_config_option, teardown),
		cmocka_unit_test_teardown(help_lists_every_option, teardown),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
