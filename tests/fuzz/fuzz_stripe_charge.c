/* fuzz_stripe_charge.c: the stripe adapter's classification of the answer
 * to a charge POST (relay/gateway_stripe.c, classify_charge).
 *
 * Input: "STATUS\nBODY": the HTTP status (1 to 3 digits), a newline, the
 * body as received (any bytes). The charge is row 77, 1999 usd.
 *
 * Properties (PROTOCOL.md: malformed or unexpected input is unknown):
 *  - succeeded only for a 200 whose body is one JSON object with id,
 *    status "succeeded", paid true, our amount, currency and outbox_id,
 *    each member there exactly once;
 *  - declined only for a 402 whose body is one JSON object with one
 *    "error" holding one "type": "card_error";
 *  - failed only for a 400 with error.type "invalid_request_error";
 *  - dead only for 401, 403 or a 400 idempotency_error; retry later only
 *    for a 429 (the request did connect);
 *  - reason and gateway_ref are terminated strings; no crash, no leak. */
#include "fuzz.h"
#include "stripe_fixture.h"

/* The error object's type, read by the oracle. */
static bool error_type_is(const cJSON *root, const char *type)
{
	const cJSON *e = oracle_only(root, "error");
	return cJSON_IsObject(e) && oracle_string_is(e, "type", type);
}

static bool well_formed_success(const cJSON *root, const char *ref)
{
	const cJSON *amount = oracle_only(root, "amount");
	const cJSON *paid = oracle_only(root, "paid");
	const cJSON *metadata = oracle_only(root, "metadata");
	return oracle_string_is(root, "id", ref) && *ref &&
	       oracle_string_is(root, "status", "succeeded") && cJSON_IsTrue(paid) &&
	       cJSON_IsNumber(amount) && amount->valuedouble == 1999.0 &&
	       oracle_string_is(root, "currency", "usd") && cJSON_IsObject(metadata) &&
	       oracle_string_is(metadata, "outbox_id", "77");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gateway_answer ans;
	if (!stripe_answer(data, size, &ans))
		return 0;
	struct charge ch = stripe_row();
	long status = ans.http_status;
	struct verdict v;
	gateway_find("stripe")->classify_charge(&ch, &ans, &v);

	FUZZ_CHECK_STRING(v.reason);
	FUZZ_CHECK_STRING(v.gateway_ref);
	cJSON *root = oracle_object(ans.body, ans.body_len, false);
	switch (v.outcome) {
	case OUTCOME_SUCCEEDED:
		FUZZ_CHECK(status == 200 && root && well_formed_success(root, v.gateway_ref),
			   "succeeded without a well-formed 200 charge of ours");
		break;
	case OUTCOME_DECLINED:
		FUZZ_CHECK(status == 402 && root && error_type_is(root, "card_error"),
			   "declined without a well-formed 402 card_error");
		break;
	case OUTCOME_FAILED:
		FUZZ_CHECK(status == 400 && root && error_type_is(root, "invalid_request_error"),
			   "failed without a well-formed 400 invalid_request_error");
		break;
	case OUTCOME_DEAD:
		FUZZ_CHECK(status == 401 || status == 403 ||
				   (status == 400 && root && error_type_is(root, "idempotency_error")),
			   "dead without 401, 403 or an idempotency_error");
		break;
	case OUTCOME_RETRY_LATER:
		FUZZ_CHECK(status == 429, "retry later for a request that connected, without a 429");
		break;
	case OUTCOME_UNKNOWN:
		break;
	}
	cJSON_Delete(root);
	return 0;
}
