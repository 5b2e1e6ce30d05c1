/* test_stripe_lookup.c: reading the gateway's list to settle an unknown
 * charge: found, declined, absent, next page; anything odd inconclusive,
 * never absent (absence would let the invoice be charged again). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gateway.h"

#include <stdio.h>
#include <string.h>

static const struct gateway_adapter *stripe;
static struct charge ch;

static int setup(void **state)
{
	(void)state;
	stripe = gateway_find("stripe");
	memset(&ch, 0, sizeof(ch));
	ch.id = 77;
	ch.invoice_id = 12;
	ch.amount_cents = 1999;
	snprintf(ch.currency, sizeof(ch.currency), "usd");
	snprintf(ch.customer, sizeof(ch.customer), "cus_1");
	return 0;
}

static struct lookup_verdict page(long status, const char *body)
{
	struct gateway_answer a = {.curl_result = CURLE_OK, .connected = true, .http_status = status,
				   .body = body, .body_len = body ? strlen(body) : 0};
	struct lookup_verdict v;
	stripe->parse_lookup(&ch, &a, &v);
	return v;
}

#define OURS(id, status, paid)                                                                  \
	"{\"id\":\"" id "\",\"status\":\"" status "\",\"paid\":" paid ",\"amount\":1999,"          \
	"\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"77\"}}"
#define OTHER(id)                                                                               \
	"{\"id\":\"" id "\",\"status\":\"succeeded\",\"paid\":true,\"amount\":500,"                \
	"\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"78\"}}"
#define LIST(items, more) "{\"object\":\"list\",\"data\":[" items "],\"has_more\":" more "}"

static void found_succeeded(void **state)
{
	(void)state;
	struct lookup_verdict v = page(200, LIST(OTHER("ch_a") "," OURS("ch_b", "succeeded", "true"), "false"));
	assert_int_equal(v.found, LOOKUP_SUCCEEDED);
	assert_string_equal(v.gateway_ref, "ch_b");
}

static void found_declined(void **state)
{
	(void)state;
	struct lookup_verdict v = page(200, LIST(OURS("ch_d", "failed", "false"), "false"));
	assert_int_equal(v.found, LOOKUP_DECLINED);
	assert_string_equal(v.gateway_ref, "ch_d");
}

static void success_wins_over_decline(void **state)
{
	(void)state;
	struct lookup_verdict v =
		page(200, LIST(OURS("ch_d", "failed", "false") "," OURS("ch_s", "succeeded", "true"), "false"));
	assert_int_equal(v.found, LOOKUP_SUCCEEDED);
	assert_string_equal(v.gateway_ref, "ch_s");
}

static void absent_only_on_a_complete_list(void **state)
{
	(void)state;
	assert_int_equal(page(200, LIST(OTHER("ch_a"), "false")).found, LOOKUP_ABSENT);
	assert_int_equal(page(200, LIST("", "false")).found, LOOKUP_ABSENT);
	struct lookup_verdict v = page(200, LIST(OTHER("ch_a") "," OTHER("ch_z"), "true"));
	assert_int_equal(v.found, LOOKUP_NEXT_PAGE);
	assert_string_equal(v.next, "ch_z");
	assert_int_equal(page(200, LIST("", "true")).found, LOOKUP_INCONCLUSIVE);
}

static void odd_answers_inconclusive(void **state)
{
	(void)state;
	const struct {
		long status;
		const char *body;
	} cases[] = {
		{500, "{}"},
		{429, "{}"},
		{404, LIST("", "false")},
		{200, ""},
		{200, "<html>ok</html>"},
		{200, "{\"object\":\"list\",\"data\":[]}"},                  /* no has_more */
		{200, "{\"object\":\"charge\",\"data\":[],\"has_more\":false}"},
		{200, "{\"object\":\"list\",\"data\":{},\"has_more\":false}"},
		{200, "{\"object\":\"list\",\"data\":[],\"has_more\":\"false\"}"},
		{200, "{\"object\":\"list\",\"data\":[],\"data\":[],\"has_more\":false}"},
		{200, LIST("{\"status\":\"succeeded\"}", "false")},         /* no id */
		{200, LIST(OURS("ch_p", "pending", "false"), "false")},
		{200, LIST("{\"id\":\"ch_x\",\"status\":\"succeeded\",\"paid\":true,\"amount\":2000,"
			   "\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"77\"}}",
			   "false")}, /* ours by metadata, wrong amount */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lookup_verdict v = page(cases[i].status, cases[i].body);
		if (v.found != LOOKUP_INCONCLUSIVE)
			fail_msg("case %zu (%ld %s) read as %s, expected inconclusive", i, cases[i].status,
				 cases[i].body, lookup_found_name(v.found));
	}
	struct gateway_answer a = {.curl_result = CURLE_OPERATION_TIMEDOUT, .connected = true};
	struct lookup_verdict v;
	stripe->parse_lookup(&ch, &a, &v);
	assert_int_equal(v.found, LOOKUP_INCONCLUSIVE);
}

/* A listed charge whose metadata or outbox_id is given twice, in another
 * case or as another type may be ours: never absent, never the next page
 * (found by tests/fuzz/fuzz_stripe_lookup). */
static void unclear_outbox_inconclusive(void **state)
{
	(void)state;
	static const char *const items[] = {
		"{\"id\":\"ch_a\",\"metadata\":{\"outbox_id\":\"1\"},\"metadata\":{\"outbox_id\":\"77\"}}",
		"{\"id\":\"ch_a\",\"metadata\":{\"outbox_id\":\"1\",\"outbox_id\":\"77\"}}",
		"{\"id\":\"ch_a\",\"Metadata\":{\"outbox_id\":\"77\"}}",
		"{\"id\":\"ch_a\",\"metadata\":{\"OUTBOX_ID\":\"77\"}}",
		"{\"id\":\"ch_a\",\"metadata\":{\"outbox_id\":77}}",
		"{\"id\":\"ch_a\",\"metadata\":\"outbox_id=77\"}",
	};
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		for (int more = 0; more < 2; more++) {
			char body[512];
			snprintf(body, sizeof(body), "{\"object\":\"list\",\"data\":[%s],\"has_more\":%s}",
				 items[i], more ? "true" : "false");
			struct lookup_verdict v = page(200, body);
			if (v.found != LOOKUP_INCONCLUSIVE)
				fail_msg("item %zu, has_more %d: %s (%s)", i, more,
					 lookup_found_name(v.found), v.reason);
		}
	}
	/* metadata without our key, or no metadata: someone else's charge */
	assert_int_equal(page(200, LIST("{\"id\":\"ch_a\",\"metadata\":{}}", "false")).found,
			 LOOKUP_ABSENT);
	assert_int_equal(page(200, LIST("{\"id\":\"ch_a\"}", "false")).found, LOOKUP_ABSENT);
}

static void request_shape(void **state)
{
	(void)state;
	struct gateway_config gw = {.url = "http://127.0.0.1:1", .key = "sk_test_k"};
	struct lookup_query q = {.charge = &ch, .since = 1700000000, .starting_after = ""};
	struct gateway_request req;
	char why[128];
	assert_int_equal(stripe->build_lookup(&gw, &q, &req, why, sizeof(why)), 0);
	assert_string_equal(req.url, "http://127.0.0.1:1/v1/charges?limit=100&created%5Bgte%5D="
				     "1700000000&customer=cus_1");
	assert_null(req.body);
	gateway_request_free(&req);
	ch.customer[0] = '\0'; /* no gateway customer: by creation time alone */
	q.starting_after = "ch_z";
	assert_int_equal(stripe->build_lookup(&gw, &q, &req, why, sizeof(why)), 0);
	assert_string_equal(req.url, "http://127.0.0.1:1/v1/charges?limit=100&created%5Bgte%5D="
				     "1700000000&starting_after=ch_z");
	gateway_request_free(&req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(found_succeeded, setup),
		cmocka_unit_test_setup(found_declined, setup),
		cmocka_unit_test_setup(success_wins_over_decline, setup),
		cmocka_unit_test_setup(absent_only_on_a_complete_list, setup),
		cmocka_unit_test_setup(odd_answers_inconclusive, setup),
		cmocka_unit_test_setup(unclear_outbox_inconclusive, setup),
		cmocka_unit_test_setup(request_shape, setup),
	};
	return cmocka_run_group_tests_name("stripe_lookup", tests, NULL, NULL);
}
