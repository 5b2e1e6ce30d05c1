/* test_prom.c: the Prometheus text builder writes exposition format 0.0.4:
 * HELP and TYPE lines, escaped label values and help text, cumulative
 * histogram buckets ending with +Inf, _sum and _count; bad names fail the
 * whole text instead of producing a line a scraper would reject. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "prom.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *take(struct prom_buf *b)
{
	size_t len = 12345;
	char *text = prom_take(b, &len);
	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	return text;
}

/* The buffer's whole text is `want`. */
static void expect(struct prom_buf *b, const char *want)
{
	char *text = take(b);
	assert_string_equal(text, want);
	free(text);
}

static void family_and_samples(void **state)
{
	(void)state;
	struct prom_buf b;
	prom_init(&b);
	prom_family(&b, "outbox_messages", "gauge", "Rows per kind and state");
	prom_value(&b, "outbox_messages", (const char *[]){"kind", "charge", "state", "pending", NULL},
		   42);
	prom_count(&b, "relay_claims_total", NULL, 7);
	expect(&b, "# HELP outbox_messages Rows per kind and state\n"
	       "# TYPE outbox_messages gauge\n"
	       "outbox_messages{kind=\"charge\",state=\"pending\"} 42\n"
	       "relay_claims_total 7\n");
}

static void one_sample_helpers(void **state)
{
	(void)state;
	struct prom_buf b;
	prom_init(&b);
	prom_counter(&b, "a_total", "A.", 3);
	prom_gauge(&b, "b", "B.", 0.5);
	expect(&b, "# HELP a_total A.\n# TYPE a_total counter\na_total 3\n"
	       "# HELP b B.\n# TYPE b gauge\nb 0.5\n");
}

static void label_values_escaped(void **state)
{
	(void)state;
	struct prom_buf b;
	prom_init(&b);
	prom_value(&b, "m", (const char *[]){"why", "a\\b \"q\"\nnext", NULL}, 1);
	expect(&b, "m{why=\"a\\\\b \\\"q\\\"\\nnext\"} 1\n");
}

static void help_escaped_but_quotes_kept(void **state)
{
	(void)state;
	struct prom_buf b;
	prom_init(&b);
	prom_family(&b, "m", "counter", "a \"quoted\" back\\slash\nsecond line");
	expect(&b, "# HELP m a \"quoted\" back\\\\slash\\nsecond line\n# TYPE m counter\n");
}

static void numbers(void **state)
{
	(void)state;
	struct prom_buf b;
	prom_init(&b);
	prom_value(&b, "a", NULL, 1e12);         /* integral: digits, no exponent */
	prom_value(&b, "b", NULL, -1);
	prom_value(&b, "c", NULL, 0.25);
	prom_value(&b, "d", NULL, INFINITY);
	prom_value(&b, "e", NULL, -INFINITY);
	prom_value(&b, "f", NULL, NAN);
	prom_count(&b, "g", NULL, UINT64_MAX);   /* counters are exact past 2^53 */
	expect(&b, "a 1000000000000\nb -1\nc 0.25\nd +Inf\ne -Inf\nf NaN\n"
	       "g 18446744073709551615\n");
}

static void histogram_cumulative(void **state)
{
	(void)state;
	static const double bounds[] = {0.125, 1, 10};
	struct prom_histogram h;
	assert_int_equal(prom_hist_init(&h, bounds, 3), 0);
	prom_hist_observe(&h, 0.0625);
	prom_hist_observe(&h, 0.125); /* le: a value on a bound belongs to that bucket */
	prom_hist_observe(&h, 5);
	prom_hist_observe(&h, 100); /* above every bound: only in +Inf */
	struct prom_buf b;
	prom_init(&b);
	prom_family(&b, "lat_seconds", "histogram", "Latency");
	prom_hist_write(&b, "lat_seconds", (const char *[]){"step", "claim", NULL}, &h);
	expect(&b, "# HELP lat_seconds Latency\n"
	       "# TYPE lat_seconds histogram\n"
	       "lat_seconds_bucket{step=\"claim\",le=\"0.125\"} 2\n"
	       "lat_seconds_bucket{step=\"claim\",le=\"1\"} 2\n"
	       "lat_seconds_bucket{step=\"claim\",le=\"10\"} 3\n"
	       "lat_seconds_bucket{step=\"claim\",le=\"+Inf\"} 4\n"
	       "lat_seconds_sum{step=\"claim\"} 105.1875\n"
	       "lat_seconds_count{step=\"claim\"} 4\n");
}

static void histogram_without_labels(void **state)
{
	(void)state;
	static const double bounds[] = {1};
	struct prom_histogram h;
	assert_int_equal(prom_hist_init(&h, bounds, 1), 0);
	struct prom_buf b;
	prom_init(&b);
	prom_hist_write(&b, "x", NULL, &h);
	expect(&b, "x_bucket{le=\"1\"} 0\nx_bucket{le=\"+Inf\"} 0\nx_sum 0\nx_count 0\n");
}

static void histogram_bounds_checked(void **state)
{
	(void)state;
	struct prom_histogram h;
	assert_int_equal(prom_hist_init(&h, (const double[]){1, 1}, 2), -1);   /* not strictly ascending */
	assert_int_equal(prom_hist_init(&h, (const double[]){2, 1}, 2), -1);
	assert_int_equal(prom_hist_init(&h, (const double[]){INFINITY}, 1), -1); /* +Inf is implicit */
	assert_int_equal(prom_hist_init(&h, (const double[]){1}, 0), -1);
	double many[PROM_MAX_BUCKETS + 1];
	for (int i = 0; i <= PROM_MAX_BUCKETS; i++)
		many[i] = i;
	assert_int_equal(prom_hist_init(&h, many, PROM_MAX_BUCKETS + 1), -1);
	assert_int_equal(prom_hist_init(&h, many, PROM_MAX_BUCKETS), 0);
}

static void bad_names_fail_the_text(void **state)
{
	(void)state;
	const char *bad_metric[] = {"", "9lives", "has-dash", "sp ace", NULL};
	for (int i = 0; bad_metric[i]; i++) {
		struct prom_buf b;
		prom_init(&b);
		prom_count(&b, "ok_total", NULL, 1);
		prom_count(&b, bad_metric[i], NULL, 1);
		size_t len;
		assert_null(prom_take(&b, &len));
		assert_non_null(strstr(b.error, "bad metric name"));
	}
	struct prom_buf b;
	prom_init(&b);
	prom_value(&b, "m", (const char *[]){"__reserved", "x", NULL}, 1);
	size_t len;
	assert_null(prom_take(&b, &len));
	prom_init(&b);
	prom_value(&b, "m", (const char *[]){"le-x", "x", NULL}, 1);
	assert_null(prom_take(&b, &len));
	prom_init(&b);
	prom_family(&b, "m", "summary", "not supported");
	assert_null(prom_take(&b, &len));
	assert_true(prom_metric_name_ok("ns:sub_name_total"));
	assert_false(prom_label_name_ok("a:b"));
	assert_true(prom_label_name_ok("_x9"));
}

static void empty_text(void **state)
{
	(void)state;
	struct prom_buf b;
	prom_init(&b);
	expect(&b, "");
}

static void grows_past_its_first_block(void **state)
{
	(void)state;
	struct prom_buf b;
	prom_init(&b);
	for (int i = 0; i < 2000; i++)
		prom_value(&b, "some_metric_name", (const char *[]){"label", "value", NULL}, i);
	char *text = take(&b);
	assert_true(strlen(text) > 4096 * 4);
	assert_non_null(strstr(text, "some_metric_name{label=\"value\"} 1999\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(family_and_samples),
		cmocka_unit_test(one_sample_helpers),
		cmocka_unit_test(label_values_escaped),
		cmocka_unit_test(help_escaped_but_quotes_kept),
		cmocka_unit_test(numbers),
		cmocka_unit_test(histogram_cumulative),
		cmocka_unit_test(histogram_without_labels),
		cmocka_unit_test(histogram_bounds_checked),
		cmocka_unit_test(bad_names_fail_the_text),
		cmocka_unit_test(empty_text),
		cmocka_unit_test(grows_past_its_first_block),
	};
	return cmocka_run_group_tests_name("prom", tests, NULL, NULL);
}
