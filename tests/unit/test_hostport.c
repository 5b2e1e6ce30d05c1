/* test_hostport.c: --metrics-listen takes a numeric HOST:PORT only (no DNS
 * on the event loop), and a refusal names the flag and the accepted form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hostport.h"

#include <arpa/inet.h>
#include <string.h>

/* s parses, with this family and port. */
static struct hostport parse_ok(const char *s, int family, unsigned port)
{
	struct hostport hp;
	char why[256];
	assert_int_equal(hostport_parse("--metrics-listen", s, &hp, why, sizeof(why)), 0);
	assert_int_equal(hp.family, family);
	const struct sockaddr_in *in = (const struct sockaddr_in *)&hp.addr;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&hp.addr;
	assert_int_equal(ntohs(family == AF_INET ? in->sin_port : in6->sin6_port), port);
	assert_string_equal(hp.text, s);
	return hp;
}

static void ipv4(void **state)
{
	(void)state;
	struct hostport hp = parse_ok("127.0.0.1:9100", AF_INET, 9100);
	assert_int_equal(ntohl(((const struct sockaddr_in *)&hp.addr)->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(hp.len, sizeof(struct sockaddr_in));
	parse_ok("0.0.0.0:0", AF_INET, 0); /* port 0: any free port */
}

static void ipv6_in_brackets(void **state)
{
	(void)state;
	struct hostport hp = parse_ok("[::1]:9100", AF_INET6, 9100);
	assert_true(IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&hp.addr)->sin6_addr));
	assert_int_equal(hp.len, sizeof(struct sockaddr_in6));
}

static void refused(void **state)
{
	(void)state;
	const char *bad[] = {"localhost:9100", "metrics.example.com:9100", "127.0.0.1", "127.0.0.1:",
			     "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:91x", ":9100",
			     "::1:9100", "[::1]", "[::1:9100", "[localhost]:9100", "[127.0.0.1]:9100",
			     "999.0.0.1:80", " 127.0.0.1:80", NULL};
	for (int i = 0; bad[i]; i++) {
		struct hostport hp;
		char why[256] = "";
		assert_int_equal(hostport_parse("--metrics-listen", bad[i], &hp, why, sizeof(why)), -1);
		assert_non_null(strstr(why, "--metrics-listen"));
		assert_non_null(strstr(why, bad[i]));
		assert_non_null(strstr(why, "127.0.0.1:9100"));
	}
	char why[256];
	struct hostport hp;
	hostport_parse("--metrics-listen", "localhost:9100", &hp, why, sizeof(why));
	assert_non_null(strstr(why, "not resolved"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ipv4),
		cmocka_unit_test(ipv6_in_brackets),
		cmocka_unit_test(refused),
	};
	return cmocka_run_group_tests_name("hostport", tests, NULL, NULL);
}
