/* test_stripe_classify.c: every answer of the stripe adapter lands in the
 * class PROTOCOL.md gives it; malformed or unexpected input is unknown,
 * never declined; only proof of non-execution gives retry-later. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
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
	snprintf(ch.idempotency_key, sizeof(ch.idempotency_key), "cg_12_abc");
	snprintf(ch.customer, sizeof(ch.customer), "cus_1");
	return 0;
}

static struct verdict answer(long status, const char *body)
{
	struct gateway_answer a = {.curl_result = CURLE_OK, .connected = true, .http_status = status,
				   .body = body, .body_len = body ? strlen(body) : 0};
	struct verdict v;
	stripe->classify_charge(&ch, &a, &v);
	return v;
}

static struct verdict transport(CURLcode rc, bool connected)
{
	struct gateway_answer a = {.curl_result = rc, .connected = connected};
	struct verdict v;
	stripe->classify_charge(&ch, &a, &v);
	return v;
}

#define CHARGE_OK                                                                          \
	"{\"id\":\"ch_1\",\"object\":\"charge\",\"status\":\"succeeded\",\"paid\":true,"        \
	"\"amount\":1999,\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"77\",\"invoice_id\":\"12\"}}"

static void succeeded(void **state)
{
	(void)state;
	struct verdict v = answer(200, CHARGE_OK);
	assert_int_equal(v.outcome, OUTCOME_SUCCEEDED);
	assert_string_equal(v.gateway_ref, "ch_1");
}

static void declined(void **state)
{
	(void)state;
	struct verdict v = answer(402, "{\"error\":{\"type\":\"card_error\",\"code\":\"card_declined\","
				       "\"decline_code\":\"insufficient_funds\",\"message\":\"Your card has "
				       "insufficient funds.\",\"charge\":\"ch_d\"}}");
	assert_int_equal(v.outcome, OUTCOME_DECLINED);
	assert_string_equal(v.gateway_ref, "ch_d");
	assert_non_null(strstr(v.reason, "insufficient_funds"));
}

static void failed_invalid_request(void **state)
{
	(void)state;
	struct verdict v = answer(400, "{\"error\":{\"type\":\"invalid_request_error\",\"message\":\"No such customer\"}}");
	assert_int_equal(v.outcome, OUTCOME_FAILED);
	assert_non_null(strstr(v.reason, "No such customer"));
}

static void dead_idempotency_error(void **state)
{
	(void)state;
	struct verdict v = answer(400, "{\"error\":{\"type\":\"idempotency_error\",\"message\":\"Keys for idempotent requests can only be used with the same parameters\"}}");
	assert_int_equal(v.outcome, OUTCOME_DEAD);
}

static void retry_later_429_dead_auth(void **state)
{
	(void)state;
	assert_int_equal(answer(429, "{\"error\":{\"type\":\"rate_limit_error\"}}").outcome,
			 OUTCOME_RETRY_LATER);
	assert_int_equal(answer(429, "not json").outcome, OUTCOME_RETRY_LATER);
	/* not executed, but only no-connection and 429 allow a re-send
	 * (PROTOCOL.md): the row is dead (a person fixes the key and replays),
	 * and sending stops */
	struct verdict v = answer(401, "{\"error\":{\"type\":\"authentication_error\"}}");
	assert_int_equal(v.outcome, OUTCOME_DEAD);
	assert_true(v.stop_sending);
	v = answer(403, "{\"error\":{\"type\":\"permission_error\"}}");
	assert_int_equal(v.outcome, OUTCOME_DEAD);
	assert_true(v.stop_sending);
}

static void retry_later_only_without_connection(void **state)
{
	(void)state;
	assert_int_equal(transport(CURLE_COULDNT_CONNECT, false).outcome, OUTCOME_RETRY_LATER);
	assert_int_equal(transport(CURLE_COULDNT_RESOLVE_HOST, false).outcome, OUTCOME_RETRY_LATER);
	assert_int_equal(transport(CURLE_OPERATION_TIMEDOUT, false).outcome, OUTCOME_RETRY_LATER);
	/* once connected, the POST may have left: ambiguous */
	assert_int_equal(transport(CURLE_OPERATION_TIMEDOUT, true).outcome, OUTCOME_UNKNOWN);
	assert_int_equal(transport(CURLE_RECV_ERROR, true).outcome, OUTCOME_UNKNOWN);
	assert_int_equal(transport(CURLE_GOT_NOTHING, true).outcome, OUTCOME_UNKNOWN);
	assert_int_equal(transport(CURLE_PARTIAL_FILE, true).outcome, OUTCOME_UNKNOWN);
	assert_int_equal(transport(CURLE_SEND_ERROR, true).outcome, OUTCOME_UNKNOWN);
	assert_int_equal(transport(CURLE_WRITE_ERROR, true).outcome, OUTCOME_UNKNOWN);
}

static void unknown_409_and_5xx(void **state)
{
	(void)state;
	assert_int_equal(answer(409, "{\"error\":{\"type\":\"idempotency_error\"}}").outcome,
			 OUTCOME_UNKNOWN);
	for (long s = 500; s <= 504; s++)
		assert_int_equal(answer(s, "{\"error\":{\"type\":\"api_error\"}}").outcome,
				 OUTCOME_UNKNOWN);
	assert_int_equal(answer(503, "<html>down</html>").outcome, OUTCOME_UNKNOWN);
}

static void unknown_odd_statuses(void **state)
{
	(void)state;
	const long odd[] = {201, 202, 204, 301, 302, 304, 404, 405, 418, 422};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
		assert_int_equal(answer(odd[i], CHARGE_OK).outcome, OUTCOME_UNKNOWN);
}

/* Malformed or unexpected input: unknown, never declined, never succeeded. */
static void malformed_is_unknown(void **state)
{
	(void)state;
	struct {
		long status;
		const char *body;
	} cases[] = {
		{200, ""},
		{200, NULL},
		{200, "<html><body>OK</body></html>"},
		{200, "{\"id\":\"ch_1\""},                        /* truncated */
		{200, CHARGE_OK "garbage"},                       /* trailing bytes */
		{200, "[" CHARGE_OK "]"},                         /* not an object */
		{200, "{\"ID\":\"ch_1\",\"status\":\"succeeded\",\"paid\":true,\"amount\":1999,\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"77\"}}"},
		{200, "{\"id\":\"ch_1\",\"id\":\"ch_2\",\"status\":\"succeeded\",\"paid\":true,\"amount\":1999,\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"77\"}}"},
		{200, "{\"id\":\"ch_1\",\"status\":\"succeeded\",\"paid\":true,\"amount\":1999.5,\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"77\"}}"},
		{200, "{\"id\":\"ch_1\",\"status\":\"succeeded\",\"paid\":true,\"amount\":\"1999\",\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"77\"}}"},
		{200, "{\"id\":\"ch_1\",\"status\":\"succeeded\",\"paid\":true,\"amount\":1e300,\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"77\"}}"},
		{200, "{\"id\":\"ch_1\",\"status\":\"succeeded\",\"paid\":true,\"amount\":2000,\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"77\"}}"},
		{200, "{\"id\":\"ch_1\",\"status\":\"succeeded\",\"paid\":true,\"amount\":1999,\"currency\":\"USD\",\"metadata\":{\"outbox_id\":\"77\"}}"},
		{200, "{\"id\":\"ch_1\",\"status\":\"succeeded\",\"paid\":true,\"amount\":1999,\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"78\"}}"},
		{200, "{\"id\":\"ch_1\",\"status\":\"succeeded\",\"paid\":true,\"amount\":1999,\"currency\":\"usd\"}"},
		{200, "{\"id\":\"ch_1\",\"status\":\"pending\",\"paid\":false,\"amount\":1999,\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"77\"}}"},
		{200, "{\"id\":\"ch_1\",\"status\":\"failed\",\"paid\":false,\"amount\":1999,\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"77\"}}"},
		{200, "{\"id\":\"ch_1\",\"status\":\"succeeded\",\"paid\":\"true\",\"amount\":1999,\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"77\"}}"},
		{200, "{\"id\":\"\",\"status\":\"succeeded\",\"paid\":true,\"amount\":1999,\"currency\":\"usd\",\"metadata\":{\"outbox_id\":\"77\"}}"},
		{402, "{}"},
		{402, "not json"},
		{402, "{\"error\":{\"type\":\"api_error\"}}"},
		{402, "{\"error\":{\"type\":\"Card_Error\"}}"},
		{402, "{\"error\":{\"type\":\"card_error\"},\"error\":{\"type\":\"api_error\"}}"},
		{400, "{\"error\":{\"type\":\"something_new\"}}"},
		{400, "{}"},
		{400, ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct verdict v = answer(cases[i].status, cases[i].body);
		if (v.outcome != OUTCOME_UNKNOWN)
			fail_msg("case %zu (%ld %s) classified %s, expected unknown", i, cases[i].status,
				 cases[i].body ? cases[i].body : "NULL", outcome_state(v.outcome));
	}
}

static void deep_nesting_is_unknown(void **state)
{
	(void)state;
	size_t depth = 10000;
	char *body = malloc(2 * depth + 1);
	memset(body, '[', depth);
	memset(body + depth, ']', depth);
	body[2 * depth] = '\0';
	assert_int_equal(answer(200, body).outcome, OUTCOME_UNKNOWN);
	assert_int_equal(answer(402, body).outcome, OUTCOME_UNKNOWN);
	free(body);
}

static void truncated_body_is_unknown(void **state)
{
	(void)state;
	struct gateway_answer a = {.curl_result = CURLE_OK, .connected = true, .http_status = 402,
				   .body = "{\"error\":{\"type\":\"card_error\"}}", .body_truncated = true};
	a.body_len = strlen(a.body);
	struct verdict v;
	stripe->classify_charge(&ch, &a, &v);
	assert_int_equal(v.outcome, OUTCOME_UNKNOWN);
}

static void request_shape(void **state)
{
	(void)state;
	struct gateway_config gw = {.url = "http://127.0.0.1:1", .key = "sk_test_secret"};
	snprintf(ch.source, sizeof(ch.source), "tok visa&x=1");
	struct gateway_request req;
	char why[128];
	assert_int_equal(stripe->build_charge(&gw, &ch, &req, why, sizeof(why)), 0);
	assert_string_equal(req.url, "http://127.0.0.1:1/v1/charges");
	assert_string_equal(req.body, "amount=1999&currency=usd&customer=cus_1&source=tok%20visa%26x%3D1"
				      "&description=Invoice%2012&metadata%5Binvoice_id%5D=12"
				      "&metadata%5Boutbox_id%5D=77");
	bool auth = false, key = false;
	for (struct curl_slist *h = req.headers; h; h = h->next) {
		auth |= strcmp(h->data, "Authorization: Bearer sk_test_secret") == 0;
		key |= strcmp(h->data, "Idempotency-Key: cg_12_abc") == 0;
	}
	assert_true(auth && key);
	gateway_request_free(&req);

	gw.key = "sk_test\r\nX-Evil: 1";
	assert_int_equal(stripe->build_charge(&gw, &ch, &req, why, sizeof(why)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(succeeded, setup),
		cmocka_unit_test_setup(declined, setup),
		cmocka_unit_test_setup(failed_invalid_request, setup),
		cmocka_unit_test_setup(dead_idempotency_error, setup),
		cmocka_unit_test_setup(retry_later_429_dead_auth, setup),
		cmocka_unit_test_setup(retry_later_only_without_connection, setup),
		cmocka_unit_test_setup(unknown_409_and_5xx, setup),
		cmocka_unit_test_setup(unknown_odd_statuses, setup),
		cmocka_unit_test_setup(malformed_is_unknown, setup),
		cmocka_unit_test_setup(deep_nesting_is_unknown, setup),
		cmocka_unit_test_setup(truncated_body_is_unknown, setup),
		cmocka_unit_test_setup(request_shape, setup),
	};
	return cmocka_run_group_tests_name("stripe_classify", tests, NULL, NULL);
}
