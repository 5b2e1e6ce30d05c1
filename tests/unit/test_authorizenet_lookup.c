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
#include <time.h>

/* A page asked with starting_after `at` for a row created at `since`. */
static struct lookup_verdict page_since(const char *at, int64_t since, const char *body)
{
	struct gateway_answer a = {.curl_result = CURLE_OK, .connected = true, .http_status = 200,
				   .body = body, .body_len = strlen(body), .lookup_at = at,
				   .lookup_since = since};
	struct lookup_verdict v;
	anet->parse_lookup(&ch, &a, &v);
	return v;
}

/* ... for a row created an hour ago: one settled window reaches now. */
static struct lookup_verdict page_at(const char *at, const char *body)
{
	return page_since(at, (int64_t)time(NULL) - 3600, body);
}

/* Each of cases, between before and after, is a page at `at` that finds
 * want. */
static void each_finds(const char *at, const char *before, const char *const *cases, size_t n,
		       const char *after, enum lookup_found want)
{
	for (size_t i = 0; i < n; i++) {
		char body[1024];
		snprintf(body, sizeof(body), "%s%s%s", before, cases[i], after);
		struct lookup_verdict v = page_at(at, body);
		if (v.found != want)
			fail_msg("case %zu (%s): %s (%s)", i, cases[i], lookup_found_name(v.found), v.reason);
	}
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

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

static int64_t parse_utc(const char *s)
{
	struct tm tm = {0};
	strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return (int64_t)timegm(&tm);
}

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
	assert_true(cJSON_IsTrue(get(j, u, "sorting", "orderDescending"))); /* newest first */
	cJSON_Delete(j);

	j = request("u:3", &rc);
	assert_int_equal(get(j, u, "paging", "offset")->valueint, 3);
	cJSON_Delete(j);

	/* settlement windows of 30 days from since (1700000000); the later
	 * ones reach 10 minutes back into the one before */
	j = request("b:0:2", &rc);
	const char *b = "getSettledBatchListRequest";
	assert_string_equal(get(j, b, "firstSettlementDate", NULL)->valuestring, "2023-11-14T22:13:20Z");
	assert_string_equal(get(j, b, "lastSettlementDate", NULL)->valuestring, "2023-12-14T22:13:20Z");
	cJSON_Delete(j);
	j = request("b:1:0~600222", &rc);
	assert_string_equal(get(j, b, "firstSettlementDate", NULL)->valuestring, "2023-12-14T22:03:20Z");
	assert_string_equal(get(j, b, "lastSettlementDate", NULL)->valuestring, "2024-01-13T22:13:20Z");
	cJSON_Delete(j);

	j = request("t:0:4:9876:2", &rc);
	const char *t = "getTransactionListRequest";
	assert_string_equal(get(j, t, "batchId", NULL)->valuestring, "9876");
	assert_int_equal(get(j, t, "paging", "offset")->valueint, 2);
	assert_true(cJSON_IsTrue(get(j, t, "sorting", "orderDescending")));
	cJSON_Delete(j);

	/* the window that reaches now ends 5 minutes after it (clock skew) */
	int64_t now = (int64_t)time(NULL);
	struct lookup_query q = {.charge = &ch, .since = now - 3600, .starting_after = "b:0:0"};
	struct gateway_request req;
	char why[256];
	assert_int_equal(anet->build_lookup(&gw, &q, &req, why, sizeof(why)), 0);
	j = cJSON_Parse(req.body);
	gateway_request_free(&req);
	int64_t last = parse_utc(get(j, b, "lastSettlementDate", NULL)->valuestring);
	assert_true(last >= now + 300 && last <= (int64_t)time(NULL) + 300);
	cJSON_Delete(j);
}

static void refuses_positions_it_did_not_write(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"x", "u:", "u:0", "u:abc", "b:", "b:-1", "t:1:abc:1", "t:1::1", "t:1:99:0", "t:1:99",
		"u:1x", "ch_123",
		/* the positions before settlement windows */
		"b:0", "t:0:555:1",
		/* a window that begins after now (+ skew); numbers past the bound */
		"b:999:0", "t:999:0:555:1", "b:0:100001", "u:100001", "b:0:0:1", "t:0:0:555:1:2",
		/* a remembered not-charged transaction that is no transId */
		"u:1~", "u:1~0", "u:1~000", "u:1~12a", "~600222", "b:0:0~1~2",
		"t:0:0:555:1~123456789012345678901"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc;
		cJSON *j = request(bad[i], &rc);
		if (j) {
			cJSON_Delete(j);
			fail_msg("position '%s' was taken", bad[i]);
		}
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
	v = txn("t:0:0:555:1", "settledSuccessfully", "77", "\"12.34\"");
	assert_int_equal(v.found, LOOKUP_SUCCEEDED);
	assert_string_equal(v.gateway_ref, "600222");
}

static void found_not_charged_is_declined(void **state)
{
	(void)state;
	static const char *const statuses[] = {"declined", "voided", "expired", "failedReview"};
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		/* remembered to the end of the walk: a charged one may follow */
		struct lookup_verdict v = txn("u:1", statuses[i], "77", "12.34");
		assert_int_equal(v.found, LOOKUP_NEXT_PAGE);
		assert_string_equal(v.next, "b:0:0~600222");
		v = page_at(v.next, "{" NONE "}");
		assert_int_equal(v.found, LOOKUP_DECLINED);
		assert_string_equal(v.gateway_ref, "600222");
		/* in a batch: carried on to the next batch */
		v = txn("t:0:3:555:1", statuses[i], "77", "\"12.34\"");
		assert_string_equal(v.next, "b:0:4~600222");
		/* the first one found is the one named */
		v = txn("t:0:3:555:1~600111", statuses[i], "77", "12.34");
		assert_string_equal(v.next, "b:0:4~600111");
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
	assert_string_equal(v.next, "b:0:0");
	v = txn("u:2", "settledSuccessfully", "7", "12.34");
	assert_string_equal(v.next, "b:0:0");
	v = txn("t:0:3:555:1", "settledSuccessfully", "770", "12.34");
	assert_int_equal(v.found, LOOKUP_NEXT_PAGE);
	assert_string_equal(v.next, "b:0:4");
	/* an empty list (no records) is short too */
	v = page_at("u:1", "{" NONE "}");
	assert_string_equal(v.next, "b:0:0");
	v = page_at("t:0:0:555:1", "{\"transactions\":[]," OK "}");
	assert_string_equal(v.next, "b:0:1");
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
	v = page_at("t:0:2:555:3", b);
	assert_string_equal(v.next, "t:0:2:555:4");
	v = page_at("u:4~600222", b); /* a remembered not-charged one travels on */
	assert_string_equal(v.next, "u:5~600222");
	free(b);
}

static void batches_walked_then_absent(void **state)
{
	(void)state;
	const char *list = "{\"batchList\":[{\"batchId\":\"555\",\"settlementState\":"
			   "\"settledSuccessfully\"},{\"batchId\":\"556\"}]," OK "}";
	struct lookup_verdict v = page_at("b:0:0", list);
	assert_int_equal(v.found, LOOKUP_NEXT_PAGE);
	assert_string_equal(v.next, "t:0:0:555:1");
	v = page_at("b:0:1", list);
	assert_string_equal(v.next, "t:0:1:556:1");
	v = page_at("b:0:2", list);
	assert_int_equal(v.found, LOOKUP_ABSENT);
	v = page_at("b:0:0", "{" NONE "}"); /* no settled batch at all */
	assert_int_equal(v.found, LOOKUP_ABSENT);
	/* a row created 45 days ago: window 0 ends before now, window 1 is
	 * the last; absent only after it */
	int64_t since = (int64_t)time(NULL) - 45 * 86400;
	v = page_since("b:0:2", since, list);
	assert_int_equal(v.found, LOOKUP_NEXT_PAGE);
	assert_string_equal(v.next, "b:1:0");
	v = page_since("b:1:0~600222", since, list);
	assert_string_equal(v.next, "t:1:0:555:1~600222");
	v = page_since("b:1:2", since, list);
	assert_int_equal(v.found, LOOKUP_ABSENT);
	assert_int_equal(page_since("b:2:0", since, list).found, LOOKUP_INCONCLUSIVE);
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
		{"b:0:0", "{\"batchList\":[{\"batchId\":\"x5\"}]," OK "}"},
		{"b:0:0", "{\"batchList\":[{}]," OK "}"},
		{"b:0:0", "{\"batchList\":{}," OK "}"},
		{"b:0:0", "{" OK "}"},
		{"b:0:0", "{\"transactions\":[]," OK "}"}, /* the wrong list for the call */
		{"t:0:0:5:1", "{\"batchList\":[]," OK "}"},
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

/* --- review regressions: our transaction must never be skipped ----------- */

/* An invoiceNumber present but not exactly one string (a duplicate key, a
 * number, null) may be ours: the page is inconclusive, never "not ours". */
static void unclear_invoice_number_is_inconclusive(void **state)
{
	(void)state;
	static const char *const members[] = {
		"\"invoiceNumber\":\"77\",\"invoiceNumber\":\"77\"",
		"\"invoiceNumber\":\"5\",\"invoiceNumber\":\"77\"",
		"\"invoiceNumber\":77",
		"\"invoiceNumber\":77.0",
		"\"invoiceNumber\":null",
		"\"invoiceNumber\":[\"77\"]",
		"\"invoicenumber\":\"77\"",
	};
	each_finds("u:1", "{\"transactions\":[{\"transId\":\"600222\",", members, COUNT(members),
		   ",\"transactionStatus\":\"settledSuccessfully\",\"settleAmount\":12.34}]," OK "}",
		   LOOKUP_INCONCLUSIVE);
	/* no invoiceNumber at all: not ours, the walk goes on */
	struct lookup_verdict v = page_at("u:1", "{\"transactions\":[{\"transId\":\"600222\","
						 "\"transactionStatus\":\"settledSuccessfully\","
						 "\"settleAmount\":12.34}]," OK "}");
	assert_int_equal(v.found, LOOKUP_NEXT_PAGE);
}

/* Ours, but its status or amount appears twice or with the wrong type. */
static void unclear_status_or_amount_of_ours_is_inconclusive(void **state)
{
	(void)state;
	static const char *const members[] = {
		"\"transactionStatus\":\"declined\",\"transactionStatus\":\"declined\",\"settleAmount\":12.34",
		"\"transactionStatus\":\"declined\",\"settleAmount\":12.34,\"settleAmount\":12.34",
		"\"transactionStatus\":\"declined\"",
		"\"transactionStatus\":1,\"settleAmount\":12.34",
		"\"transactionStatus\":\"settledSuccessfully\",\"settleAmount\":12.34,\"settleAmount\":1",
	};
	each_finds("u:1", "{\"transactions\":[{\"transId\":\"600222\",\"invoiceNumber\":\"77\",", members,
		   COUNT(members), "}]," OK "}", LOOKUP_INCONCLUSIVE);
}

/* --- a small Authorize.Net, walked as reconcile.c walks the adapter ------ */

struct model_txn {
	long id;
	char invoice[24];
	const char *status;
	long batch; /* 0: unsettled */
};
struct model_batch {
	long id;
	int64_t settled_at;
};
static struct model_txn txns[4000]; /* oldest first */
static size_t ntxns;
static struct model_batch batches[16];
static size_t nbatches;
static void (*between_pages)(int page_no);

static void model_reset(void)
{
	ntxns = nbatches = 0;
	between_pages = NULL;
}

static void model_add(long id, const char *invoice, const char *status, long batch)
{
	txns[ntxns] = (struct model_txn){.id = id, .status = status, .batch = batch};
	snprintf(txns[ntxns].invoice, sizeof(txns[ntxns].invoice), "%s", invoice);
	ntxns++;
}

/* The answer to one request body: batches by settlement time, and the
 * transactions of the unsettled list or a batch, paged, oldest first unless
 * sorting.orderDescending is true. */
static char *model_answer(const char *body)
{
	cJSON *req = cJSON_Parse(body);
	const cJSON *op = req->child;
	size_t cap = 256 + ntxns * 160, len = 0;
	char *out = malloc(cap);
	long n = 0;
	if (strcmp(op->string, "getSettledBatchListRequest") == 0) {
		int64_t f = parse_utc(get(op, "firstSettlementDate", NULL, NULL)->valuestring);
		int64_t l = parse_utc(get(op, "lastSettlementDate", NULL, NULL)->valuestring);
		assert_true(l - f <= 31 * 86400); /* Authorize.Net refuses more */
		len += (size_t)snprintf(out + len, cap - len, "{\"batchList\":[");
		for (size_t i = 0; i < nbatches; i++)
			if (batches[i].settled_at >= f && batches[i].settled_at <= l)
				len += (size_t)snprintf(out + len, cap - len, "%s{\"batchId\":\"%ld\"}",
							n++ ? "," : "", batches[i].id);
	} else {
		long batch = 0;
		if (strcmp(op->string, "getTransactionListRequest") == 0)
			batch = atol(get(op, "batchId", NULL, NULL)->valuestring);
		bool newest_first = cJSON_IsTrue(get(op, "sorting", "orderDescending", NULL));
		long limit = get(op, "paging", "limit", NULL)->valueint;
		long skip = (get(op, "paging", "offset", NULL)->valueint - 1) * limit;
		len += (size_t)snprintf(out + len, cap - len, "{\"transactions\":[");
		for (size_t k = 0; k < ntxns && n < limit; k++) {
			const struct model_txn *t = &txns[newest_first ? ntxns - 1 - k : k];
			if (t->batch != batch || skip-- > 0)
				continue;
			len += (size_t)snprintf(out + len, cap - len,
						"%s{\"transId\":\"%ld\",\"invoiceNumber\":\"%s\","
						"\"transactionStatus\":\"%s\",\"settleAmount\":12.34}",
						n++ ? "," : "", t->id, t->invoice, t->status);
		}
	}
	if (n == 0)
		snprintf(out, cap, "{" NONE "}");
	else
		snprintf(out + len, cap - len, "]," OK "}");
	cJSON_Delete(req);
	return out;
}

/* A whole lookup of row 77 created at `since`, as reconcile.c drives it
 * (starting_after and lookup_at = the previous page's next; 100 pages). */
static struct lookup_verdict model_walk(int64_t since)
{
	struct lookup_verdict v = {0};
	for (int pages = 0; pages < 100; pages++) {
		char at[sizeof(v.next)];
		snprintf(at, sizeof(at), "%s", v.next);
		struct lookup_query q = {.charge = &ch, .since = since, .starting_after = at};
		struct gateway_request req;
		char why[256];
		if (anet->build_lookup(&gw, &q, &req, why, sizeof(why)) != 0)
			fail_msg("page %d at '%s': %s", pages, at, why);
		if (between_pages)
			between_pages(pages);
		char *body = model_answer(req.body);
		gateway_request_free(&req);
		v = page_since(at, since, body);
		free(body);
		if (v.found != LOOKUP_NEXT_PAGE)
			return v;
	}
	fail_msg("the walk did not end in 100 pages");
	return v;
}

/* The daily settlement runs after the first page was read: the 1100 oldest
 * transactions go into batch 9001, and 300 new ones arrive. */
static void settle_oldest(int page_no)
{
	if (page_no != 1)
		return;
	batches[nbatches++] = (struct model_batch){9001, (int64_t)time(NULL) - 10};
	for (size_t i = 0; i < 1100; i++)
		txns[i].batch = 9001;
	for (int i = 0; i < 300; i++) {
		char inv[24];
		snprintf(inv, sizeof(inv), "%d", 300000 + i);
		model_add(700000 + i, inv, "capturedPendingSettlement", 0);
	}
}

/* Oldest first, the settlement shifts the list under the walk and our
 * transaction (still unsettled) is never on the page read; newest first,
 * removals are behind the pages ahead and arrivals only repeat. */
static void unsettled_shift_skips_ours(void **state)
{
	(void)state;
	model_reset();
	for (int i = 0; i < 2500; i++) {
		char inv[24];
		snprintf(inv, sizeof(inv), "%d", 100000 + i);
		model_add(500000 + i, i == 1200 ? "77" : inv, "capturedPendingSettlement", 0);
	}
	between_pages = settle_oldest;
	struct lookup_verdict v = model_walk((int64_t)time(NULL) - 3600);
	assert_int_equal(v.found, LOOKUP_SUCCEEDED);
	assert_string_equal(v.gateway_ref, "501200");
	model_reset();
}

/* Our charged transaction 700001, alone in batch 9100 settled at
 * `settled_at`: the walk for a row created at `since` finds it. */
static void finds_settled(int64_t settled_at, int64_t since)
{
	model_reset();
	model_add(700001, "77", "settledSuccessfully", 9100);
	batches[nbatches++] = (struct model_batch){9100, settled_at};
	struct lookup_verdict v = model_walk(since);
	assert_int_equal(v.found, LOOKUP_SUCCEEDED);
	assert_string_equal(v.gateway_ref, "700001");
	model_reset();
}

/* A row created 40 days before it was sent: its batch settled yesterday,
 * outside the first 30 days. */
static void old_row_batch_outside_window(void **state)
{
	(void)state;
	int64_t now = (int64_t)time(NULL);
	finds_settled(now - 86400, now - 40 * 86400 - 300);
	/* a year: 13 windows, still within the walk; absent only after all */
	finds_settled(now - 86400, now - 365 * 86400);
	finds_settled(now - 300 * 86400, now - 365 * 86400);
	assert_int_equal(model_walk(now - 365 * 86400).found, LOOKUP_ABSENT);
}

/* The batch list reaches past our now by the clock skew: a gateway clock a
 * little ahead of ours stamps a batch "in the future". */
static void last_settlement_reaches_past_now(void **state)
{
	(void)state;
	finds_settled((int64_t)time(NULL) + 2, (int64_t)time(NULL) - 3600);
}

/* A declined transaction with our invoice number on an earlier page does
 * not end the walk: a charged one anywhere wins; declined only at the end,
 * and only with our amount. */
static void refused_match_waits_for_the_end(void **state)
{
	(void)state;
	int64_t now = (int64_t)time(NULL);
	model_reset();
	model_add(800001, "77", "declined", 0);
	model_add(800002, "77", "settledSuccessfully", 9300);
	batches[nbatches++] = (struct model_batch){9300, now - 100};
	struct lookup_verdict v = model_walk(now - 3600);
	assert_int_equal(v.found, LOOKUP_SUCCEEDED);
	assert_string_equal(v.gateway_ref, "800002");
	txns[1].status = "voided";
	v = model_walk(now - 3600);
	assert_int_equal(v.found, LOOKUP_DECLINED);
	assert_string_equal(v.gateway_ref, "800001");
	model_reset();
	/* declined with another amount: not proof of our row's outcome */
	char *b = txn_page("declined", "77", "12.35");
	v = page_at("u:1", b);
	free(b);
	assert_int_equal(v.found, LOOKUP_INCONCLUSIVE);
}

/* generalError: Authorize.Net could not say what happened: not a decline. */
static void general_error_is_inconclusive(void **state)
{
	(void)state;
	assert_int_equal(txn("u:1", "generalError", "77", "12.34").found, LOOKUP_INCONCLUSIVE);
}

/* No position at all: the adapter cannot tell which call this answers. */
static void no_position_is_inconclusive(void **state)
{
	(void)state;
	struct gateway_answer a = {.curl_result = CURLE_OK, .connected = true, .http_status = 200,
				   .body = "{\"transactions\":[]," OK "}",
				   .body_len = strlen("{\"transactions\":[]," OK "}"), .lookup_at = NULL};
	struct lookup_verdict v;
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
		cmocka_unit_test_setup(unclear_invoice_number_is_inconclusive, setup),
		cmocka_unit_test_setup(unclear_status_or_amount_of_ours_is_inconclusive, setup),
		cmocka_unit_test_setup(unsettled_shift_skips_ours, setup),
		cmocka_unit_test_setup(old_row_batch_outside_window, setup),
		cmocka_unit_test_setup(last_settlement_reaches_past_now, setup),
		cmocka_unit_test_setup(refused_match_waits_for_the_end, setup),
		cmocka_unit_test_setup(general_error_is_inconclusive, setup),
		cmocka_unit_test_setup(no_position_is_inconclusive, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
