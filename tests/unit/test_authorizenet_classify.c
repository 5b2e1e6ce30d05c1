/* test_authorizenet_classify.c: the authorizenet adapter's request and the
 * class of every answer (docs/authorizenet.md): approved, declined, error
 * (failed), duplicate (already charged only with proof), processor trouble
 * and held for review (unknown), credentials (dead, stop sending);
 * malformed input is unknown, never declined; only "never connected" is
 * retry-later. */
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


static struct verdict answer(long status, const char *body)
{
	struct gateway_answer a = {.curl_result = CURLE_OK, .connected = true, .http_status = status,
				   .body = body, .body_len = body ? strlen(body) : 0};
	struct verdict v;
	anet->classify_charge(&ch, &a, &v);
	return v;
}

static struct verdict ok200(const char *body) { return answer(200, body); }

/* Each of cases, between before and after, is a 200 answer of class want. */
static void each_is(const char *before, const char *const *cases, size_t n, const char *after,
		    enum outcome want)
{
	for (size_t i = 0; i < n; i++) {
		char body[1024];
		snprintf(body, sizeof(body), "%s%s%s", before, cases[i], after);
		struct verdict v = ok200(body);
		if (v.outcome != want)
			fail_msg("case %zu (%s): %s (%s)", i, cases[i], outcome_state(v.outcome), v.reason);
	}
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define MSG_OK "\"messages\":{\"resultCode\":\"Ok\",\"message\":[{\"code\":\"I00001\",\"text\":\"Successful.\"}]}"
#define MSG_ERR "\"messages\":{\"resultCode\":\"Error\",\"message\":[{\"code\":\"E00027\",\"text\":\"The transaction was unsuccessful.\"}]}"
#define REF "\"refId\":\"77\""
#define APPROVED                                                                             \
	"{\"transactionResponse\":{\"responseCode\":\"1\",\"authCode\":\"A1B2C3\","          \
	"\"transId\":\"60012345678\",\"messages\":[{\"code\":\"1\",\"description\":\"This " \
	"transaction has been approved.\"}]}," REF "," MSG_OK "}"

/* --- the request ---------------------------------------------------------- */

static cJSON *built(const struct charge *c, int *rc)
{
	struct gateway_request req;
	char why[256];
	*rc = anet->build_charge(&gw, c, &req, why, sizeof(why));
	if (*rc != 0)
		return NULL;
	assert_string_equal(req.url, "http://127.0.0.1:9/xml/v1/request.api");
	cJSON *j = cJSON_Parse(req.body);
	gateway_request_free(&req);
	assert_non_null(j);
	return j;
}

static const cJSON *at(const cJSON *j, const char *path)
{
	char buf[256], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = strtok_r(buf, ".", &save); j && p; p = strtok_r(NULL, ".", &save))
		j = cJSON_IsArray(j) ? cJSON_GetArrayItem(j, atoi(p))
				     : cJSON_GetObjectItemCaseSensitive(j, p);
	return j;
}

static const char *str(const cJSON *j, const char *path)
{
	const cJSON *v = at(j, path);
	return cJSON_IsString(v) ? v->valuestring : "(none)";
}

static void request_with_profile(void **state)
{
	(void)state;
	int rc;
	cJSON *j = built(&ch, &rc);
	assert_int_equal(rc, 0);
	const char *c = "createTransactionRequest.";
	char p[128];
#define AT(x) (snprintf(p, sizeof(p), "%s%s", c, x), p)
	assert_string_equal(str(j, AT("merchantAuthentication.name")), "login1");
	assert_string_equal(str(j, AT("merchantAuthentication.transactionKey")), "key123");
	assert_string_equal(str(j, AT("refId")), "77");
	assert_string_equal(str(j, AT("transactionRequest.transactionType")), "authCaptureTransaction");
	assert_string_equal(str(j, AT("transactionRequest.amount")), "12.34");
	assert_string_equal(str(j, AT("transactionRequest.currencyCode")), "USD");
	assert_string_equal(str(j, AT("transactionRequest.profile.customerProfileId")), "900100");
	assert_string_equal(str(j, AT("transactionRequest.profile.paymentProfile.paymentProfileId")),
			    "800200");
	assert_null(at(j, AT("transactionRequest.payment")));
	assert_string_equal(str(j, AT("transactionRequest.order.invoiceNumber")), "77");
	assert_string_equal(str(j, AT("transactionRequest.order.description")), "Invoice 12");
	assert_string_equal(str(j, AT("transactionRequest.transactionSettings.setting.0.settingName")),
			    "duplicateWindow");
	assert_string_equal(str(j, AT("transactionRequest.transactionSettings.setting.0.settingValue")),
			    "28800");
	assert_string_equal(str(j, AT("transactionRequest.userFields.userField.0.value")), "12");
	/* the schema's order: merchantAuthentication first, refId second */
	const cJSON *call = at(j, "createTransactionRequest");
	assert_string_equal(call->child->string, "merchantAuthentication");
	assert_string_equal(call->child->next->string, "refId");
#undef AT
	cJSON_Delete(j);
}

static void request_with_token(void **state)
{
	(void)state;
	struct charge c = ch;
	c.customer[0] = '\0';
	snprintf(c.source, sizeof(c.source), "eyJ0b2tlbiI6");
	c.amount_cents = 5;
	int rc;
	cJSON *j = built(&c, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(str(j, "createTransactionRequest.transactionRequest.amount"), "0.05");
	assert_string_equal(
		str(j, "createTransactionRequest.transactionRequest.payment.opaqueData.dataDescriptor"),
		"COMMON.ACCEPT.INAPP.PAYMENT");
	assert_string_equal(
		str(j, "createTransactionRequest.transactionRequest.payment.opaqueData.dataValue"),
		"eyJ0b2tlbiI6");
	assert_null(at(j, "createTransactionRequest.transactionRequest.profile"));
	cJSON_Delete(j);
}

static void other_currency_refused_never_sent(void **state)
{
	(void)state;
	struct charge c = ch;
	snprintf(c.currency, sizeof(c.currency), "eur");
	int rc;
	assert_null(built(&c, &rc));
	assert_int_equal(rc, GATEWAY_REFUSE);
}

static void key_without_colon(void **state)
{
	(void)state;
	char why[256];
	assert_int_equal(anet->check_key("login1:key123", why, sizeof(why)), 0);
	assert_int_equal(anet->check_key("sk_test_abc", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "LOGINID:TRANSACTIONKEY"));
	assert_null(strstr(why, "sk_test_abc")); /* never the key */
	assert_int_equal(anet->check_key(":key", why, sizeof(why)), -1);
	assert_int_equal(anet->check_key("login:", why, sizeof(why)), -1);
	struct gateway_config bad = {.url = gw.url, .key = "nocolon"};
	struct gateway_request req;
	assert_int_equal(anet->build_charge(&bad, &ch, &req, why, sizeof(why)), GATEWAY_REFUSE);
}

/* --- the answers ---------------------------------------------------------- */

static void approved(void **state)
{
	(void)state;
	struct verdict v = ok200(APPROVED);
	assert_int_equal(v.outcome, OUTCOME_SUCCEEDED);
	assert_string_equal(v.gateway_ref, "60012345678");
}

static void approved_after_bom(void **state)
{
	(void)state;
	struct verdict v = ok200("\xEF\xBB\xBF" APPROVED);
	assert_int_equal(v.outcome, OUTCOME_SUCCEEDED);
}

static void approved_without_usable_trans_id(void **state)
{
	(void)state;
	static const char *const ids[] = {"\"0\"", "\"00\"", "\"000000\"", "\"\"", "\"abc\"",
					  "60012345678", "null"};
	each_is("{\"transactionResponse\":{\"responseCode\":\"1\",\"transId\":", ids, COUNT(ids),
		"}," REF "," MSG_OK "}", OUTCOME_UNKNOWN);
}

static void declined(void **state)
{
	(void)state;
	struct verdict v = ok200("{\"transactionResponse\":{\"responseCode\":\"2\",\"authCode\":"
				 "\"000000\",\"transId\":\"60099\",\"errors\":[{\"errorCode\":\"2\","
				 "\"errorText\":\"This transaction has been declined.\"}]}," REF
				 "," MSG_ERR "}");
	assert_int_equal(v.outcome, OUTCOME_DECLINED);
	assert_string_equal(v.gateway_ref, "60099");
	assert_non_null(strstr(v.reason, "been declined"));
}

/* Response code 2 is a decline only when its reasons say so: a duplicate
 * (11) may name an approved original, a login refusal (13) or processor
 * trouble may hide a charge, and no readable reason proves nothing. */
static void declined_only_with_clear_reasons(void **state)
{
	(void)state;
	static const char *const tr[] = {
		"\"authCode\":\"A1B2C3\",\"transId\":\"600123\",\"errors\":[{\"errorCode\":\"11\","
		"\"errorText\":\"A duplicate transaction has been submitted.\"}]",
		"\"transId\":\"600123\",\"errors\":[{\"errorCode\":\"2\",\"errorText\":\"x\"},"
		"{\"errorCode\":\"11\",\"errorText\":\"dup\"}]",
		"\"transId\":\"0\",\"errors\":[{\"errorCode\":\"120\",\"errorText\":\"x\"}]",
		"\"transId\":\"0\",\"errors\":[{\"errorCode\":\"19\",\"errorText\":\"x\"}]",
		"\"transId\":\"0\",\"errors\":[{\"errorCode\":\"13\",\"errorText\":\"x\"}]",
		"\"transId\":\"0\"",
		"\"transId\":\"0\",\"errors\":[]",
		"\"transId\":\"0\",\"errors\":[{\"errorCode\":\"x\"}]",
		"\"transId\":\"0\",\"errors\":[{\"errorCode\":\"99999999999999999999999\"}]",
	};
	each_is("{\"transactionResponse\":{\"responseCode\":\"2\",", tr, COUNT(tr), "}," REF "," MSG_ERR "}",
		OUTCOME_UNKNOWN);
}

/* An error code that is not a plain number in range says nothing: unknown,
 * never failed. */
static void unreadable_error_code_is_unknown(void **state)
{
	(void)state;
	static const char *const codes[] = {"99999999999999999999999", "9223372036854775808",
					    "+6", " 6", "-6", "6x", "", "0x6"};
	each_is("{\"transactionResponse\":{\"responseCode\":\"3\",\"transId\":\"0\",\"errors\":"
		"[{\"errorCode\":\"",
		codes, COUNT(codes), "\",\"errorText\":\"x\"}]}," REF "," MSG_ERR "}", OUTCOME_UNKNOWN);
}

static void error_is_failed(void **state)
{
	(void)state;
	struct verdict v = ok200("{\"transactionResponse\":{\"responseCode\":\"3\",\"transId\":\"0\","
				 "\"errors\":[{\"errorCode\":\"6\",\"errorText\":\"The credit card "
				 "number is invalid.\"}]}," REF "," MSG_ERR "}");
	assert_int_equal(v.outcome, OUTCOME_FAILED);
	assert_non_null(strstr(v.reason, "error 6"));
}

static void error_processor_trouble_is_unknown(void **state)
{
	(void)state;
	static const char *const codes[] = {"19", "23", "57", "120", "121", "122"};
	each_is("{\"transactionResponse\":{\"responseCode\":\"3\",\"errors\":[{\"errorCode\":\"", codes,
		COUNT(codes),
		"\",\"errorText\":\"An error occurred during processing.\"}]}," REF "," MSG_ERR "}",
		OUTCOME_UNKNOWN);
}

static void duplicate_of_approved_is_already_charged(void **state)
{
	(void)state;
	struct verdict v = ok200("{\"transactionResponse\":{\"responseCode\":\"3\",\"authCode\":"
				 "\"A1B2C3\",\"transId\":\"60055\",\"errors\":[{\"errorCode\":\"11\","
				 "\"errorText\":\"A duplicate transaction has been submitted.\"}]},"
				 REF "," MSG_ERR "}");
	assert_int_equal(v.outcome, OUTCOME_SUCCEEDED);
	assert_string_equal(v.gateway_ref, "60055");
	assert_string_equal(v.reason, "already charged: transaction 60055");
}

static void duplicate_without_proof_is_unknown(void **state)
{
	(void)state;
	/* no transId; a transId but no approval code (the original may have
	 * been declined: "000000" or none) */
	static const char *const tr[] = {
		"\"transId\":\"0\",\"authCode\":\"A1B2C3\"",
		"\"transId\":\"60055\"",
		"\"transId\":\"60055\",\"authCode\":\"000000\"",
		"\"transId\":\"60055\",\"authCode\":\"\"",
		/* blanks are no approval code */
		"\"transId\":\"60055\",\"authCode\":\"      \"",
		"\"transId\":\"60055\",\"authCode\":\" 0 0 \"",
		"\"transId\":\"60055\",\"authCode\":\"\\t\"",
		/* a transId of zeros is no transaction */
		"\"transId\":\"000\",\"authCode\":\"A1B2C3\"",
	};
	each_is("{\"transactionResponse\":{\"responseCode\":\"3\",", tr, COUNT(tr),
		",\"errors\":[{\"errorCode\":\"11\",\"errorText\":\"A duplicate transaction has been "
		"submitted.\"}]}," REF "," MSG_ERR "}",
		OUTCOME_UNKNOWN);
}

static void held_for_review_is_unknown(void **state)
{
	(void)state;
	struct verdict v = ok200("{\"transactionResponse\":{\"responseCode\":\"4\",\"transId\":"
				 "\"60077\",\"messages\":[{\"code\":\"253\",\"description\":\"held for "
				 "review\"}]}," REF "," MSG_OK "}");
	assert_int_equal(v.outcome, OUTCOME_UNKNOWN);
	assert_non_null(strstr(v.reason, "review"));
	assert_false(v.stop_sending);
}

static void credentials_refused_dead_and_stop(void **state)
{
	(void)state;
	static const char *const codes[] = {"E00007", "E00008"};
	for (size_t i = 0; i < 2; i++) {
		char body[512];
		snprintf(body, sizeof(body),
			 "{" REF ",\"messages\":{\"resultCode\":\"Error\",\"message\":[{\"code\":"
			 "\"%s\",\"text\":\"User authentication failed.\"}]}}",
			 codes[i]);
		struct verdict v = ok200(body);
		assert_int_equal(v.outcome, OUTCOME_DEAD);
		assert_true(v.stop_sending);
	}
	struct verdict v = ok200("{\"transactionResponse\":{\"responseCode\":\"3\",\"errors\":[{"
				 "\"errorCode\":\"13\",\"errorText\":\"The merchant login ID or "
				 "password is invalid or the account is inactive.\"}]}," REF
				 "," MSG_ERR "}");
	assert_int_equal(v.outcome, OUTCOME_DEAD);
	assert_true(v.stop_sending);
}

static void other_request_error_is_unknown(void **state)
{
	(void)state;
	/* E00001: an unexpected system error; no transaction response */
	struct verdict v = ok200("{" REF ",\"messages\":{\"resultCode\":\"Error\",\"message\":[{"
				 "\"code\":\"E00001\",\"text\":\"An error occurred during "
				 "processing.\"}]}}");
	assert_int_equal(v.outcome, OUTCOME_UNKNOWN);
	assert_false(v.stop_sending);
}

static void transport(void **state)
{
	(void)state;
	struct gateway_answer never = {.curl_result = CURLE_COULDNT_CONNECT};
	struct gateway_answer timeout_connecting = {.curl_result = CURLE_OPERATION_TIMEDOUT};
	struct gateway_answer timeout_after = {.curl_result = CURLE_OPERATION_TIMEDOUT,
					       .connected = true};
	struct gateway_answer reset = {.curl_result = CURLE_RECV_ERROR, .connected = true};
	struct gateway_answer cut = {.curl_result = CURLE_PARTIAL_FILE, .connected = true,
				     .http_status = 200};
	struct gateway_answer huge = {.curl_result = CURLE_OK, .connected = true,
				      .http_status = 200, .body = APPROVED,
				      .body_len = strlen(APPROVED), .body_truncated = true};
	struct verdict v;
	anet->classify_charge(&ch, &never, &v);
	assert_int_equal(v.outcome, OUTCOME_RETRY_LATER);
	anet->classify_charge(&ch, &timeout_connecting, &v);
	assert_int_equal(v.outcome, OUTCOME_RETRY_LATER);
	anet->classify_charge(&ch, &timeout_after, &v);
	assert_int_equal(v.outcome, OUTCOME_UNKNOWN);
	anet->classify_charge(&ch, &reset, &v);
	assert_int_equal(v.outcome, OUTCOME_UNKNOWN);
	anet->classify_charge(&ch, &cut, &v);
	assert_int_equal(v.outcome, OUTCOME_UNKNOWN);
	anet->classify_charge(&ch, &huge, &v);
	assert_int_equal(v.outcome, OUTCOME_UNKNOWN);
}

static void http_status_not_200_is_unknown(void **state)
{
	(void)state;
	/* no 429-like answer exists: a 429 or 503 from in front of the API
	 * proves nothing */
	static const long statuses[] = {429, 409, 500, 502, 503, 401, 404, 201};
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		assert_int_equal(answer(statuses[i], APPROVED).outcome, OUTCOME_UNKNOWN);
}

/* Malformed input: all unknown, never declined or failed. */
static void malformed_is_unknown(void **state)
{
	(void)state;
	static const char *const bodies[] = {
		"",
		"<html>502 Bad Gateway</html>",
		"\xEF\xBB",
		"\xEF\xBB\xBF",
		"[1,2]",
		"{\"transactionResponse\":{\"responseCode\":\"2\"}," REF "}", /* no messages */
		"{\"transactionResponse\":{\"responseCode\":\"2\"}," REF ",\"messages\":{\"resultCode\":\"Maybe\",\"message\":[{\"code\":\"E00027\"}]}}",
		"{\"transactionResponse\":{\"responseCode\":\"2\"}," REF ",\"messages\":{\"resultCode\":\"Error\",\"message\":[]}}",
		"{\"transactionResponse\":{\"responseCode\":2}," REF "," MSG_ERR "}",
		"{\"transactionResponse\":{\"responseCode\":\"5\"}," REF "," MSG_ERR "}",
		"{\"transactionResponse\":{\"responseCode\":\"22\"}," REF "," MSG_ERR "}",
		"{\"transactionResponse\":{\"responseCode\":\"2\"},\"refId\":\"78\"," MSG_ERR "}",
		"{\"transactionResponse\":{\"responseCode\":\"2\"}," MSG_ERR "}", /* no refId */
		"{\"transactionResponse\":{\"responseCode\":\"2\"}," REF "," MSG_OK "}", /* contradiction */
		"{\"transactionResponse\":{\"responseCode\":\"3\",\"errors\":[{\"errorCode\":\"6\"}]}," REF "," MSG_OK "}",
		"{\"transactionResponse\":{\"responseCode\":\"1\",\"transId\":\"6001\"}," REF "," MSG_ERR "}",
		"{\"transactionResponse\":{\"responseCode\":\"3\"}," REF "," MSG_ERR "}", /* no errors */
		"{\"transactionResponse\":{\"responseCode\":\"3\",\"errors\":[{\"errorCode\":\"x6\"}]}," REF "," MSG_ERR "}",
		"{\"transactionResponse\":{\"responseCode\":\"3\",\"errors\":{}}," REF "," MSG_ERR "}",
		"{\"transactionResponse\":\"2\"," REF "," MSG_ERR "}",
		"{\"transactionResponse\":{\"responseCode\":\"2\",\"responseCode\":\"1\"}," REF "," MSG_ERR "}",
		"{\"transactionResponse\":{\"responseCode\":\"2\"},\"transactionResponse\":{}," REF "," MSG_ERR "}",
		"{\"transactionResponse\":{\"responseCode\":\"2\"}," REF "," MSG_ERR "} trailing",
		"{\"transactionResponse\":{\"responseCode\":\"2\"}," REF "," MSG_ERR,
		"{" REF "," MSG_OK "}", /* Ok without a transaction response */
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct verdict v = ok200(bodies[i]);
		if (v.outcome != OUTCOME_UNKNOWN)
			fail_msg("body %zu classified %s: %s", i, outcome_state(v.outcome), bodies[i]);
	}
}

static void adapter_has_no_idempotency_keys(void **state)
{
	(void)state;
	assert_non_null(anet);
	assert_false(anet->idempotency_keys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(request_with_profile, setup),
		cmocka_unit_test_setup(request_with_token, setup),
		cmocka_unit_test_setup(other_currency_refused_never_sent, setup),
		cmocka_unit_test_setup(key_without_colon, setup),
		cmocka_unit_test_setup(approved, setup),
		cmocka_unit_test_setup(approved_after_bom, setup),
		cmocka_unit_test_setup(approved_without_usable_trans_id, setup),
		cmocka_unit_test_setup(declined, setup),
		cmocka_unit_test_setup(declined_only_with_clear_reasons, setup),
		cmocka_unit_test_setup(unreadable_error_code_is_unknown, setup),
		cmocka_unit_test_setup(error_is_failed, setup),
		cmocka_unit_test_setup(error_processor_trouble_is_unknown, setup),
		cmocka_unit_test_setup(duplicate_of_approved_is_already_charged, setup),
		cmocka_unit_test_setup(duplicate_without_proof_is_unknown, setup),
		cmocka_unit_test_setup(held_for_review_is_unknown, setup),
		cmocka_unit_test_setup(credentials_refused_dead_and_stop, setup),
		cmocka_unit_test_setup(other_request_error_is_unknown, setup),
		cmocka_unit_test_setup(transport, setup),
		cmocka_unit_test_setup(http_status_not_200_is_unknown, setup),
		cmocka_unit_test_setup(malformed_is_unknown, setup),
		cmocka_unit_test_setup(adapter_has_no_idempotency_keys, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
