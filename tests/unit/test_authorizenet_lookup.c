/* test_authorizenet_lookup.c: the authorizenet adapter's walk through the
 * unsettled list, the settled batch list and each batch's transactions
 * (anet_lookup.c): every position builds the right call, every page moves
 * the walk on or decides; anything malformed is inconclusive, never absent,
 * and only the end of the walk is absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "anet_fixture.h"
#include "gateway.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static struct lookup_verdict page_at(const char *at, const char *body)
{
	struct gateway_answer a = {.curl_result = CURLE_OK, .connected = true, .http_status = 200,
				   .body = body, .body_len = strlen(body), .lookup_at = at};
	struct lookup_verdict v;
	anet->parse_lookup(&ch, &a, &v);
	return v;
}

#define OK "\"refId\":\"77\",\"messages\":{\"resultCode\":\"Ok\",\"message\":[{\"code\":\"I00001\",\"text\":\"Successful.\"}]}"
#define NONE "\"refId\":\"77\",\"messages\":{\"resultCode\":\"Ok\",\"message\":[{\"code\":\"I00004\",\"text\":\"No records found.\"}]}"

static char *txn_page(const char *status, const char *invoice, const char *amount)
{
	char *b = malloc(1024);
	snprintf(b, 1024,
		 "{\"transactions\":[{\"transId\":\"600111\",\"invoiceNumber\":\"5\","
		 "\"transactionStatus\":\"capturedPendingSettlement\",\"settleAmount\":9.99},"
		 "{\"transId\":\"600222\",\"invoiceNumber\":\"%s\",\"transactionStatus\":\"%s\","
		 "\"settleAmount\":%s}],\"totalNumInResultSet\":2," OK "}",
		 invoice, status, amount);
	return b;
}

static struct lookup_verdict txn(const char *at, const char *status, const char *invoice,
				 const char *amount)
{
	char *b = txn_page(status, invoice, amount);
	struct lookup_verdict v = page_at(at, b);
	free(b);
	return v;
}

/* --- the requests --------------------------------------------------------- */

static cJSON *request(const char *at, int *rc)
{
	struct lookup_query q = {.charge = &ch, .since = 1700000000, .starting_after = at};
	struct gateway_request req;
	char why[256];
	*rc = anet->build_lookup(&gw, &q, &req, why, sizeof(why));
	if (*rc != 0)
		return NULL;
	assert_string_equal(req.url, "http://127.0.0.1:9/xml/v1/request.api");
	assert_non_null(req.body); /* reads are POSTs with a body */
	cJSON *j = cJSON_Parse(req.body);
	gateway_request_free(&req);
	return j;
}

static const cJSON *get(const cJSON *j, const char *a, const char *b, const char *c)
{
	j = cJSON_GetObjectItemCaseSensitive(j, a);
	j = b ? cJSON_GetObjectItemCaseSensitive(j, b) : j;
	return c ? cJSON_GetObjectItemCaseSensitive(j, c) : j;
}

static void builds_each_call(void **state)
{
	(void)state;
	int rc;
	cJSON *j = request("", &rc);
	const char *u = "getUnsettledTransactionListRequest";
	assert_non_null(get(j, u, "merchantAuthentication", "name"));
	assert_string_equal(get(j, u, "refId", NULL)->valuestring, "77");
	assert_int_equal(get(j, u, "paging", "offset")->valueint, 1);
	assert_int_equal(get(j, u, "paging", "limit")->valueint, 1000);
	assert_string_equal(get(j, u, "sorting", "orderBy")->valuestring, "submitTimeUTC");
	assert_true(cJSON_IsFalse(get(j, u, "sorting", "orderDescending")));
	cJSON_Delete(j);

	j = request("u:3", &rc);
	assert_int_equal(get(j, u, "paging", "offset")->valueint, 3);
	cJSON_Delete(j);

	j = request("b:2", &rc);
	const char *b = "getSettledBatchListRequest";
	assert_string_equal(get(j, b, "firstSettlementDate", NULL)->valuestring, "2023-11-14T22:13:20Z");
	assert_string_equal(get(j, b, "lastSettlementDate", NULL)->valuestring, "2023-12-14T22:13:20Z");
	cJSON_Delete(j);

	j = request("t:4:9876:2", &rc);
	const char *t = "getTransactionListRequest";
	assert_string_equal(get(j, t, "batchId", NULL)->valuestring, "9876");
	assert_int_equal(get(j, t, "paging", "offset")->valueint, 2);
	cJSON_Delete(j);
}

static void refuses_positions_it_did_not_write(void **state)
{
	(void)state;
	static const char *const bad[] = {"x", "u:", "u:0", "u:abc", "b:", "b:-1", "t:1:abc:1",
					  "t:1::1", "t:1:99:0", "t:1:99", "u:1x", "ch_123"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc;
		assert_null(request(bad[i], &rc));
		assert_int_equal(rc, -1);
		assert_int_equal(page_at(bad[i], "{" OK "}").found, LOOKUP_INCONCLUSIVE);
	}
}

/* --- the pages ------------------------------------------------------------ */

static void found_charged(void **state)
{
	(void)state;
	struct lookup_verdict v = txn("", "capturedPendingSettlement", "77", "12.34");
	assert_int_equal(v.found, LOOKUP_SUCCEEDED);
	assert_string_equal(v.gateway_ref, "600222");
	v = txn("t:0:555:1", "settledSuccessfully", "77", "\"12.34\"");
	assert_int_equal(v.found, LOOKUP_SUCCEEDED);
	assert_string_equal(v.gateway_ref, "600222");
}

static void found_not_charged_is_declined(void **state)
{
	(void)state;
	static const char *const statuses[] = {"declined", "voided", "expired", "generalError",
					       "failedReview"};
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		struct lookup_verdict v = txn("u:1", statuses[i], "77", "0.00");
		assert_int_equal(v.found, LOOKUP_DECLINED);
		assert_string_equal(v.gateway_ref, "600222");
	}
}

static void found_in_review_or_unknown_status_is_inconclusive(void **state)
{
	(void)state;
	static const char *const statuses[] = {"FDSPendingReview", "FDSAuthorizedPendingReview",
					       "underReview", "somethingNew", "approvedReview"};
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		assert_int_equal(txn("u:1", statuses[i], "77", "12.34").found, LOOKUP_INCONCLUSIVE);
}

static void charged_with_another_amount_is_inconclusive(void **state)
{
	(void)state;
	assert_int_equal(txn("u:1", "settledSuccessfully", "77", "12.35").found, LOOKUP_INCONCLUSIVE);
	assert_int_equal(txn("u:1", "settledSuccessfully", "77", "\"12.345\"").found,
			 LOOKUP_INCONCLUSIVE);
	assert_int_equal(txn("u:1", "settledSuccessfully", "77", "null").found, LOOKUP_INCONCLUSIVE);
}

static void not_on_a_short_page_moves_to_the_batches(void **state)
{
	(void)state;
	/* invoice 770 and 7 are not 77 */
	struct lookup_verdict v = txn("", "settledSuccessfully", "770", "12.34");
	assert_int_equal(v.found, LOOKUP_NEXT_PAGE);
	assert_string_equal(v.next, "b:0");
	v = txn("u:2", "settledSuccessfully", "7", "12.34");
	assert_string_equal(v.next, "b:0");
	v = txn("t:3:555:1", "settledSuccessfully", "770", "12.34");
	assert_int_equal(v.found, LOOKUP_NEXT_PAGE);
	assert_string_equal(v.next, "b:4");
	/* an empty list (no records) is short too */
	v = page_at("u:1", "{" NONE "}");
	assert_string_equal(v.next, "b:0");
	v = page_at("t:0:555:1", "{\"transactions\":[]," OK "}");
	assert_string_equal(v.next, "b:1");
}

/* A full page (1000) means another one may follow. */
static void full_page_asks_for_the_next(void **state)
{
	(void)state;
	size_t cap = 1000 * 120 + 256, len = 0;
	char *b = malloc(cap);
	len += (size_t)snprintf(b + len, cap - len, "{\"transactions\":[");
	for (int i = 0; i < 1000; i++)
		len += (size_t)snprintf(b + len, cap - len,
					"%s{\"transId\":\"%d\",\"invoiceNumber\":\"%d\","
					"\"transactionStatus\":\"settledSuccessfully\",\"settleAmount\":1}",
					i ? "," : "", 1000 + i, 1000 + i);
	snprintf(b + len, cap - len, "]," OK "}");
	struct lookup_verdict v = page_at("u:1", b);
	assert_int_equal(v.found, LOOKUP_NEXT_PAGE);
	assert_string_equal(v.next, "u:2");
	v = page_at("t:2:555:3", b);
	assert_string_equal(v.next, "t:2:555:4");
	free(b);
}

static void batches_walked_then_absent(void **state)
{
	(void)state;
	const char *list = "{\"batchList\":[{\"batchId\":\"555\",\"settlementState\":"
			   "\"settledSuccessfully\"},{\"batchId\":\"556\"}]," OK "}";
	struct lookup_verdict v = page_at("b:0", list);
	assert_int_equal(v.found, LOOKUP_NEXT_PAGE);
	assert_string_equal(v.next, "t:0:555:1");
	v = page_at("b:1", list);
	assert_string_equal(v.next, "t:1:556:1");
	v = page_at("b:2", list);
	assert_int_equal(v.found, LOOKUP_ABSENT);
	v = page_at("b:0", "{" NONE "}"); /* no settled batch at all */
	assert_int_equal(v.found, LOOKUP_ABSENT);
}

/* Malformed: all inconclusive, never absent nor declined. */
static void malformed_is_inconclusive(void **state)
{
	(void)state;
	static const struct {
		const char *at, *body;
	} cases[] = {
		{"u:1", ""},
		{"u:1", "<html>"},
		{"u:1", "{\"transactions\":[]}"}, /* no messages */
		{"u:1", "{\"transactions\":[],\"refId\":\"78\",\"messages\":{\"resultCode\":\"Ok\",\"message\":[{\"code\":\"I00001\"}]}}"},
		{"u:1", "{\"transactions\":[],\"messages\":{\"resultCode\":\"Ok\",\"message\":[{\"code\":\"I00001\"}]}}"},
		{"u:1", "{\"refId\":\"77\",\"messages\":{\"resultCode\":\"Error\",\"message\":[{\"code\":\"E00001\",\"text\":\"x\"}]}}"},
		{"u:1", "{" OK "}"}, /* Ok, no list, and not "no records" */
		{"u:1", "{\"transactions\":{}," OK "}"},
		{"u:1", "{\"transactions\":[{\"invoiceNumber\":\"77\"}]," OK "}"}, /* no transId */
		{"u:1", "{\"transactions\":[{\"transId\":\"0\",\"invoiceNumber\":\"5\"}]," OK "}"},
		{"u:1", "{\"transactions\":[{\"transId\":\"x1\",\"invoiceNumber\":\"5\"}]," OK "}"},
		{"u:1", "{\"transactions\":[{\"transId\":\"9\",\"invoiceNumber\":\"77\"}]," OK "}"}, /* no status */
		{"u:1", "{\"transactions\":[]," OK "} x"},
		{"b:0", "{\"batchList\":[{\"batchId\":\"x5\"}]," OK "}"},
		{"b:0", "{\"batchList\":[{}]," OK "}"},
		{"b:0", "{\"batchList\":{}," OK "}"},
		{"b:0", "{" OK "}"},
		{"b:0", "{\"transactions\":[]," OK "}"}, /* the wrong list for the call */
		{"t:0:5:1", "{\"batchList\":[]," OK "}"},
		{NULL, "{\"transactions\":[]," OK "}"}, /* which call? (no position) */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lookup_verdict v = page_at(cases[i].at ? cases[i].at : "bogus", cases[i].body);
		if (v.found != LOOKUP_INCONCLUSIVE)
			fail_msg("case %zu found %s: %s", i, lookup_found_name(v.found), cases[i].body);
	}
}

static void bom_and_transport(void **state)
{
	(void)state;
	char *b = txn_page("settledSuccessfully", "77", "12.34");
	char with_bom[1100];
	snprintf(with_bom, sizeof(with_bom), "\xEF\xBB\xBF%s", b);
	free(b);
	assert_int_equal(page_at("u:1", with_bom).found, LOOKUP_SUCCEEDED);
	struct gateway_answer a = {.curl_result = CURLE_OK, .http_status = 503, .body = "{}",
				   .body_len = 2, .lookup_at = ""};
	struct lookup_verdict v;
	anet->parse_lookup(&ch, &a, &v);
	assert_int_equal(v.found, LOOKUP_INCONCLUSIVE);
	a = (struct gateway_answer){.curl_result = CURLE_RECV_ERROR, .lookup_at = ""};
	anet->parse_lookup(&ch, &a, &v);
	assert_int_equal(v.found, LOOKUP_INCONCLUSIVE);
	a = (struct gateway_answer){.curl_result = CURLE_OK, .http_status = 200, .body = with_bom,
				    .body_len = strlen(with_bom), .body_truncated = true,
				    .lookup_at = ""};
	anet->parse_lookup(&ch, &a, &v);
	assert_int_equal(v.found, LOOKUP_INCONCLUSIVE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(builds_each_call, setup),
		cmocka_unit_test_setup(refuses_positions_it_did_not_write, setup),
		cmocka_unit_test_setup(found_charged, setup),
		cmocka_unit_test_setup(found_not_charged_is_declined, setup),
		cmocka_unit_test_setup(found_in_review_or_unknown_status_is_inconclusive, setup),
		cmocka_unit_test_setup(charged_with_another_amount_is_inconclusive, setup),
		cmocka_unit_test_setup(not_on_a_short_page_moves_to_the_batches, setup),
		cmocka_unit_test_setup(full_page_asks_for_the_next, setup),
		cmocka_unit_test_setup(batches_walked_then_absent, setup),
		cmocka_unit_test_setup(malformed_is_inconclusive, setup),
		cmocka_unit_test_setup(bom_and_transport, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
