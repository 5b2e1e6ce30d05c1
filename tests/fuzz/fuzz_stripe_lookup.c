/* fuzz_stripe_lookup.c: the stripe adapter's reading of one page of the
 * charge list that settles an unknown charge (relay/gateway_stripe.c,
 * parse_lookup).
 *
 * Input: "STATUS\nBODY" as in fuzz_stripe_charge.c. The row is 77, 1999 usd.
 *
 * Properties (PROTOCOL.md, reconciliation: anything malformed or unexpected
 * is inconclusive, never absent, since absence lets the invoice be charged
 * again):
 *  - any finding but inconclusive needs a 200 whose body is one JSON object
 *    with one "object": "list", one "data" array and one boolean "has_more";
 *  - succeeded names a listed charge of ours (metadata.outbox_id "77") with
 *    status "succeeded", paid true, our amount and currency;
 *  - declined names a listed charge of ours with status "failed";
 *  - absent and next page only when no listed item mentions our row (a
 *    "metadata" member holding an "outbox_id" of "77", even one given twice):
 *    an item that may be ours never lets the walk pass it by;
 *  - absent only with has_more false; next page only with has_more true and
 *    the last item's id; no crash, no leak. */
#include "fuzz.h"
#include "stripe_fixture.h"

/* Does item name our row in any of its metadata members? */
static bool mentions_ours(const cJSON *item)
{
	for (const cJSON *m = cJSON_IsObject(item) ? item->child : NULL; m; m = m->next) {
		if (!m->string || strcmp(m->string, "metadata") != 0 || !cJSON_IsObject(m))
			continue;
		for (const cJSON *o = m->child; o; o = o->next)
			if (o->string && strcmp(o->string, "outbox_id") == 0 && cJSON_IsString(o) &&
			    strcmp(o->valuestring, "77") == 0)
				return true;
	}
	return false;
}

/* Is some listed item with this id a charge of ours (its members each
 * there once) in this status, paid when asked, of our amount and currency? */
static bool listed_ours(const cJSON *list, const char *id, const char *status, bool paid)
{
	const cJSON *item;
	cJSON_ArrayForEach(item, list)
	{
		const cJSON *amount = oracle_only(item, "amount");
		const cJSON *metadata = oracle_only(item, "metadata");
		if (oracle_string_is(item, "id", id) && oracle_string_is(item, "status", status) &&
		    (!paid || cJSON_IsTrue(oracle_only(item, "paid"))) && cJSON_IsNumber(amount) &&
		    amount->valuedouble == 1999.0 && oracle_string_is(item, "currency", "usd") &&
		    oracle_string_is(metadata, "outbox_id", "77"))
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gateway_answer ans;
	if (!stripe_answer(data, size, &ans))
		return 0;
	struct charge ch = stripe_row();
	long status = ans.http_status;
	struct lookup_verdict v;
	gateway_find("stripe")->parse_lookup(&ch, &ans, &v);

	FUZZ_CHECK_STRING(v.reason);
	FUZZ_CHECK_STRING(v.next);
	FUZZ_CHECK_STRING(v.gateway_ref);
	if (v.found == LOOKUP_INCONCLUSIVE)
		return 0;
	cJSON *root = oracle_object(ans.body, ans.body_len, false);
	const cJSON *list = oracle_only(root, "data"), *more = oracle_only(root, "has_more");
	FUZZ_CHECK(status == 200 && root && oracle_string_is(root, "object", "list") &&
			   cJSON_IsArray(list) && cJSON_IsBool(more),
		   "a finding from something that is not a 200 list");
	bool ours = false;
	const cJSON *item, *last = NULL;
	cJSON_ArrayForEach(item, list)
	{
		ours |= mentions_ours(item);
		last = item;
	}
	switch (v.found) {
	case LOOKUP_SUCCEEDED:
		FUZZ_CHECK(listed_ours(list, v.gateway_ref, "succeeded", true),
			   "succeeded without a listed, paid charge of ours");
		break;
	case LOOKUP_DECLINED:
		FUZZ_CHECK(listed_ours(list, v.gateway_ref, "failed", false),
			   "declined without a listed, failed charge of ours");
		break;
	case LOOKUP_ABSENT:
		FUZZ_CHECK(!ours && cJSON_IsFalse(more), "absent, but the page may hold our charge");
		break;
	case LOOKUP_NEXT_PAGE:
		FUZZ_CHECK(!ours && cJSON_IsTrue(more) && last && oracle_string_is(last, "id", v.next),
			   "next page past a charge that may be ours, or not from the last id");
		break;
	case LOOKUP_INCONCLUSIVE:
		break;
	}
	cJSON_Delete(root);
	return 0;
}
