/* test_log.c: one event, one line, naming what it is about. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "json_escape.h"
#include "log.h"

#include <cjson/cJSON.h>
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
	log_set_format(LOG_FORMAT_TEXT);
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

/* --log-format json: one object per line, parsed back with cJSON. */
static cJSON *json_event(void)
{
	fflush(out);
	assert_true(len > 0);
	assert_int_equal(buf[len - 1], '\n');
	for (size_t i = 0; i + 1 < len; i++)
		assert_true(buf[i] != '\n'); /* one line */
	cJSON *o = cJSON_ParseWithLength(buf, len);
	assert_non_null(o);
	assert_true(cJSON_IsObject(o));
	return o;
}

static const char *str_field(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

static double num_field(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

static void json_has_fields(void **state)
{
	(void)state;
	log_set_format(LOG_FORMAT_JSON);
	struct log_ref ref = {.invoice = 42, .row = 7, .attempt = 2,
			      .claim = "0b3c7e5e-9d6e-4c1e-8a57-2f0d3c7a1b11"};
	log_at(LOG_LEVEL_WARN, &ref, "declined: %s", "card_declined");
	cJSON *o = json_event();
	assert_string_equal(str_field(o, "level"), "warn");
	assert_string_equal(str_field(o, "program"), "tester");
	assert_string_equal(str_field(o, "message"), "declined: card_declined");
	assert_string_equal(str_field(o, "claim"), "0b3c7e5e-9d6e-4c1e-8a57-2f0d3c7a1b11");
	assert_true(num_field(o, "invoice") == 42);
	assert_true(num_field(o, "row") == 7);
	assert_true(num_field(o, "attempt") == 2);
	assert_true(num_field(o, "pid") > 0);
	const char *t = str_field(o, "time"); /* 2024-01-02T03:04:05.678Z */
	assert_int_equal(strlen(t), 24);
	assert_int_equal(t[10], 'T');
	assert_int_equal(t[23], 'Z');
	assert_null(cJSON_GetObjectItemCaseSensitive(o, "truncated"));
	cJSON_Delete(o);
}

static void json_omits_empty_fields(void **state)
{
	(void)state;
	log_set_format(LOG_FORMAT_JSON);
	log_info("no ref");
	cJSON *o = json_event();
	assert_null(cJSON_GetObjectItemCaseSensitive(o, "invoice"));
	assert_null(cJSON_GetObjectItemCaseSensitive(o, "row"));
	assert_null(cJSON_GetObjectItemCaseSensitive(o, "attempt"));
	assert_null(cJSON_GetObjectItemCaseSensitive(o, "claim"));
	assert_string_equal(str_field(o, "message"), "no ref");
	cJSON_Delete(o);
}

static void json_escapes_everything(void **state)
{
	(void)state;
	log_set_format(LOG_FORMAT_JSON);
	/* quotes, backslashes, control characters, a server message's
	 * newlines, a character, and bytes that are not UTF-8 */
	log_info("say \"hi\"\\ \n\r\t\x01\x7f caf\xc3\xa9 bad\xff\xc3 end");
	cJSON *o = json_event();
	assert_string_equal(str_field(o, "message"),
			    "say \"hi\"\\ \n\r\t\x01\x7f caf\xc3\xa9 bad\xef\xbf\xbd\xef\xbf\xbd end");
	cJSON_Delete(o);
	assert_non_null(strstr(buf, "\\\"hi\\\"\\\\ \\n\\r\\t\\u0001\\u007f"));
}

static void json_long_message_truncated_validly(void **state)
{
	(void)state;
	log_set_format(LOG_FORMAT_JSON);
	char big[6000];
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = i % 2 ? '"' : '\n'; /* every byte escapes to two */
	big[sizeof(big) - 1] = '\0';
	log_info("%s", big);
	cJSON *o = json_event();
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "truncated");
	assert_true(cJSON_IsTrue(t));
	const char *msg = str_field(o, "message");
	assert_true(strlen(msg) > 1000);
	assert_memory_equal(msg + strlen(msg) - 3, "...", 3);
	cJSON_Delete(o);
}

static void json_escape_never_cuts_a_sequence(void **state)
{
	(void)state;
	char esc[8];
	bool cut;
	/* "ab" then \n (2 bytes): 5 of 8 bytes; é (2 bytes) fits, the next \n
	 * would need 2 more plus the NUL */
	size_t n = json_escape(esc, sizeof(esc), "ab\n\xc3\xa9\nzz", &cut);
	assert_true(cut);
	assert_int_equal(n, 6);
	assert_string_equal(esc, "ab\\n\xc3\xa9");
	n = json_escape(esc, sizeof(esc), "ok", &cut);
	assert_false(cut);
	assert_string_equal(esc, "ok");
	n = json_escape(esc, 4, "\x02", &cut); /* \u0002 needs 7 */
	assert_true(cut);
	assert_int_equal(n, 0);
	assert_string_equal(esc, "");
}

static void format_names(void **state)
{
	(void)state;
	assert_int_equal(log_format_parse("text"), LOG_FORMAT_TEXT);
	assert_int_equal(log_format_parse("json"), LOG_FORMAT_JSON);
	assert_int_equal(log_format_parse("JSON"), -1);
	assert_int_equal(log_format_parse("logfmt"), -1);
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
		cmocka_unit_test_setup_teardown(json_has_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(json_omits_empty_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(json_escapes_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(json_long_message_truncated_validly, setup, teardown),
		cmocka_unit_test(json_escape_never_cuts_a_sequence),
		cmocka_unit_test(format_names),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
