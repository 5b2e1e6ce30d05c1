/* test_backoff.c: delays grow, stay capped, jitter stays in its band. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backoff.h"

static void grows_then_caps(void **state)
{
	(void)state;
	struct backoff b;
	backoff_init(&b, 0.5, 30, 12345);
	double expected = 0.5;
	for (int i = 0; i < 40; i++) {
		double d = backoff_next(&b);
		double base = expected < 30 ? expected : 30;
		assert_true(d >= base * 0.8 - 1e-9);
		assert_true(d < base * 1.2 + 1e-9);
		expected *= 2;
	}
	assert_int_equal(b.failures, 40);
}

static void reset_starts_over(void **state)
{
	(void)state;
	struct backoff b;
	backoff_init(&b, 1, 60, 7);
	for (int i = 0; i < 5; i++)
		backoff_next(&b);
	backoff_reset(&b);
	double d = backoff_next(&b);
	assert_true(d >= 0.8 && d < 1.2);
}

static void jitter_differs_between_seeds(void **state)
{
	(void)state;
	struct backoff a, b;
	backoff_init(&a, 1, 60, 1);
	backoff_init(&b, 1, 60, 2);
	int same = 0;
	for (int i = 0; i < 10; i++)
		same += backoff_next(&a) == backoff_next(&b);
	assert_true(same < 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(grows_then_caps),
		cmocka_unit_test(reset_starts_over),
		cmocka_unit_test(jitter_differs_between_seeds),
	};
	return cmocka_run_group_tests_name("backoff", tests, NULL, NULL);
}
