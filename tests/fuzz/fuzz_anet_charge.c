/* fuzz_anet_charge.c: the authorizenet adapter's classification of the
 * answer to createTransactionRequest (relay/gateway_authorizenet.c,
 * classify_charge; relay/anet.c, anet_parse and anet_messages).
 *
 * Input: "STATUS\nBODY" (see oracle.h). The charge is row 77, 12.34 usd.
 *
 * Properties (PROTOCOL.md; docs/authorizenet.md): only a 200 whose body is
 * one JSON object (after an optional byte order mark) answering refId "77"
 * decides anything:
 *  - succeeded: transactionResponse.transId (a usable id, the one reported)
 *    with responseCode "1" and resultCode "Ok", or responseCode "3" with
 *    error 11 (a duplicate) and an authCode;
 *  - declined: responseCode "2", resultCode "Error", readable error codes
 *    of which none is 11 (duplicate), 13 (login) or processor trouble;
 *  - failed: responseCode "3", resultCode "Error", no such code either;
 *  - dead: a credentials refusal (E00005..E00008) or error 13;
 *  - never retry later (the request connected); no crash, no leak. */
#include "fuzz.h"
#include "oracle.h"

#include "gateway.h"

#include <stdlib.h>

/* Error codes that make a "not charged" answer doubtful (duplicate, login,
 * processor trouble), as docs/authorizenet.md lists them. */
static bool doubtful_code(long n)
{
	return n == 11 || n == 13 || (n >= 19 && n <= 23) || n == 25 || n == 26 ||
	       (n >= 57 && n <= 63) || (n >= 120 && n <= 122) || n == 180 || n == 181;
}

/* Every errors[].errorCode is a plain decimal; *doubt when one is doubtful,
 * *duplicate when one is 11. False when there are none or one is unreadable. */
static bool error_codes(const cJSON *tr, bool *doubt, bool *duplicate)
{
	const cJSON *errors = oracle_only(tr, "errors"), *e;
	*doubt = *duplicate = false;
	if (!cJSON_IsArray(errors) || !errors->child)
		return false;
	cJSON_ArrayForEach(e, errors)
	{
		const char *code = oracle_string(e, "errorCode");
		if (!code || !*code || strlen(code) > 9 || strspn(code, "0123456789") != strlen(code))
			return false;
		long n = strtol(code, NULL, 10);
		*doubt |= doubtful_code(n);
		*duplicate |= n == 11;
	}
	return true;
}

static const char *result_code(const cJSON *root)
{
	return oracle_string(oracle_only(root, "messages"), "resultCode");
}

static bool usable_trans_id(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	return n > 0 && strspn(id, "0123456789") == n && strspn(id, "0") != n;
}

static void check(const struct verdict *v, long status, const cJSON *root)
{
	const cJSON *tr = oracle_only(root, "transactionResponse");
	const char *rc = oracle_string(tr, "responseCode"), *result = result_code(root);
	bool ours = status == 200 && root && oracle_string_is(root, "refId", "77");
	bool doubt = false, duplicate = false, codes = tr && error_codes(tr, &doubt, &duplicate);
	switch (v->outcome) {
	case OUTCOME_SUCCEEDED:
		FUZZ_CHECK(ours && usable_trans_id(v->gateway_ref) &&
				   oracle_string_is(tr, "transId", v->gateway_ref),
			   "succeeded without a usable transId of an answer for our row");
		FUZZ_CHECK((rc && strcmp(rc, "1") == 0 && result && strcmp(result, "Ok") == 0) ||
				   (rc && strcmp(rc, "3") == 0 && codes && duplicate &&
				    oracle_string(tr, "authCode")),
			   "succeeded without approval (1, Ok) or a duplicate with an authCode");
		break;
	case OUTCOME_DECLINED:
	case OUTCOME_FAILED:
		FUZZ_CHECK(ours && rc && result && strcmp(result, "Error") == 0 && codes && !doubt,
			   "declined or failed without readable, undoubtful reasons for our row");
		FUZZ_CHECK(strcmp(rc, v->outcome == OUTCOME_DECLINED ? "2" : "3") == 0,
			   "declined not from response code 2, or failed not from 3");
		break;
	case OUTCOME_DEAD:
		FUZZ_CHECK(status == 200 && root && result && strcmp(result, "Error") == 0 && v->stop_sending,
			   "dead without a refusal of our credentials");
		break;
	case OUTCOME_RETRY_LATER:
		FUZZ_CHECK(false, "retry later for a request that connected");
		break;
	case OUTCOME_UNKNOWN:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body;
	size_t len;
	long status;
	if (!fuzz_split_status(data, size, &status, &body, &len))
		return 0;
	struct charge ch = {.id = 77, .invoice_id = 12, .amount_cents = 1234};
	snprintf(ch.currency, sizeof(ch.currency), "usd");
	snprintf(ch.customer, sizeof(ch.customer), "900100");
	snprintf(ch.source, sizeof(ch.source), "800200");
	struct gateway_answer ans = {.curl_result = CURLE_OK, .connected = true,
				     .http_status = status, .body = len ? body : NULL,
				     .body_len = len};
	struct verdict v;
	gateway_find("authorizenet")->classify_charge(&ch, &ans, &v);
	FUZZ_CHECK_STRING(v.reason);
	FUZZ_CHECK_STRING(v.gateway_ref);
	cJSON *root = oracle_object(body, len, true);
	check(&v, status, root);
	cJSON_Delete(root);
	return 0;
}
