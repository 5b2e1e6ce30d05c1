/* test_log.c: one event, one line, naming what it is about. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *buf;
static size_t len;
static FILE *out;

static int setup(void **state)
{
	(void)state;
	out = open_memstream(&buf, &len);
	log_init("tester", LOG_LEVEL_DEBUG);
	log_set_stream(out);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_set_stream(NULL);
	fclose(out);
	free(buf);
	buf = NULL;
	return 0;
}

static void names_invoice_row_attempt(void **state)
{
	(void)state;
	struct log_ref ref = {.invoice = 42, .row = 7, .attempt = 2, .claim = "abc"};
	log_at(LOG_LEVEL_WARN, &ref, "declined: %s", "card_declined");
	fflush(out);
	assert_non_null(strstr(buf, " tester["));
	assert_non_null(strstr(buf, " warn invoice=42 row=7 attempt=2 claim=abc: declined: card_declined\n"));
	assert_int_equal(buf[4], '-'); /* ISO 8601 date first */
}

static void omits_empty_fields(void **state)
{
	(void)state;
	struct log_ref ref = {.row = 9};
	log_at(LOG_LEVEL_INFO, &ref, "x");
	fflush(out);
	assert_null(strstr(buf, "invoice="));
	assert_non_null(strstr(buf, " info row=9: x\n"));
}

static void one_line_per_event(void **state)
{
	(void)state;
	log_info("first\nsecond\r\tthird");
	fflush(out);
	assert_non_null(strstr(buf, "first?second??third\n"));
	int newlines = 0;
	for (size_t i = 0; i < len; i++)
		newlines += buf[i] == '\n';
	assert_int_equal(newlines, 1);
}

static void long_lines_truncated_visibly(void **state)
{
	(void)state;
	char big[5000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_info("%s", big);
	fflush(out);
	assert_true(len <= 2048);
	assert_memory_equal(buf + len - 4, "...\n", 4);
}

static void level_filter_and_counts(void **state)
{
	(void)state;
	uint64_t before_debug = log_count(LOG_LEVEL_DEBUG);
	uint64_t before_error = log_count(LOG_LEVEL_ERROR);
	log_set_level(LOG_LEVEL_WARN);
	log_debug("dropped");
	log_error("kept");
	fflush(out);
	assert_null(strstr(buf, "dropped"));
	assert_non_null(strstr(buf, "kept"));
	assert_int_equal(log_count(LOG_LEVEL_DEBUG), before_debug);
	assert_int_equal(log_count(LOG_LEVEL_ERROR), before_error + 1);
	log_set_level(LOG_LEVEL_DEBUG);
}

static void level_names_round_trip(void **state)
{
	(void)state;
	for (int i = 0; i < LOG_LEVEL_COUNT; i++)
		assert_int_equal(log_level_parse(log_level_name((enum log_level)i)), i);
	assert_int_equal(log_level_parse("verbose"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(names_invoice_row_attempt, setup, teardown),
		cmocka_unit_test_setup_teardown(omits_empty_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(one_line_per_event, setup, teardown),
		cmocka_unit_test_setup_teardown(long_lines_truncated_visibly, setup, teardown),
		cmocka_unit_test_setup_teardown(level_filter_and_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(level_names_round_trip, setup, teardown),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
