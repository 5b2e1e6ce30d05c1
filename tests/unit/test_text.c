/* test_text.c: outside text becomes valid, printable UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "text.h"

#include <string.h>

static void check(const char *in, const char *want)
{
	char buf[64];
	strncpy(buf, in, sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	utf8_sanitize(buf);
	assert_string_equal(buf, want);
}

static void valid_text_kept(void **state)
{
	(void)state;
	check("card declined", "card declined");
	check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xb3", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xb3");
}

static void invalid_bytes_replaced(void **state)
{
	(void)state;
	check("a\xff" "b", "a?b");
	check("\xc3" "(", "?(");              /* lead byte without continuation */
	check("\xc0\xaf", "??");              /* overlong '/' */
	check("\xed\xa0\x80", "???");         /* a UTF-16 surrogate */
	check("\xf4\x90\x80\x80", "????");    /* beyond U+10FFFF */
	check("\x80", "?");                   /* a lone continuation byte */
}

static void cut_sequence_at_end_replaced(void **state)
{
	(void)state;
	check("abc\xc3", "abc?");       /* truncated in the middle of "é" */
	check("abc\xe2\x82", "abc??");  /* of "€" */
}

static void controls_become_blanks(void **state)
{
	(void)state;
	check("a\r\nb\tc\x7f", "a  b c ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_text_kept),
		cmocka_unit_test(invalid_bytes_replaced),
		cmocka_unit_test(cut_sequence_at_end_replaced),
		cmocka_unit_test(controls_become_blanks),
	};
	return cmocka_run_group_tests_name("text", tests, NULL, NULL);
}
