/* fuzz_anet_lookup.c: the authorizenet adapter's reading of one page of its
 * lookup walk (relay/anet_lookup.c, anet_parse_lookup): the unsettled list,
 * the settled batch list, a batch's transactions, and the walk position
 * that says which of them a page answers.
 *
 * Input: "AT\nHOURS\nBODY": the position the page was asked at (lookup_at:
 * "", "u:P", "b:W:I", "t:W:I:BATCH:P", each maybe with "~TRANSID"), the age
 * of the row in hours (lookup_since = now - HOURS), the body of a 200.
 * The row is 77, 12.34 usd.
 *
 * Properties (PROTOCOL.md, reconciliation; docs/authorizenet.md): anything
 * malformed is inconclusive, never absent:
 *  - any finding but inconclusive needs one JSON object answering refId
 *    "77" with resultCode "Ok";
 *  - succeeded names a listed transaction with invoiceNumber "77", a
 *    charged status and settleAmount 12.34;
 *  - declined and absent come only at the end of the walk (a batch list
 *    page, "b:..."): declined names the not-charged transaction the position
 *    carries ("~TRANSID"), absent needs a position that carries none;
 *  - the next page never forgets a not-charged match ("~" stays), and never
 *    passes a page that mentions our row (invoiceNumber 77 in any spelling,
 *    string or number) without carrying one; no crash, no leak. */
#include "fuzz.h"
#include "oracle.h"

#include "gateway.h"

#include <stdlib.h>
#include <strings.h>
#include <time.h>

static bool charged_status(const char *s)
{
	return s && (strcmp(s, "settledSuccessfully") == 0 ||
		     strcmp(s, "capturedPendingSettlement") == 0);
}

/* settleAmount is 12.34, as a number or as decimal text. */
static bool our_amount(const cJSON *t)
{
	const cJSON *a = oracle_only(t, "settleAmount");
	double d = cJSON_IsNumber(a) ? a->valuedouble
		   : cJSON_IsString(a) ? strtod(a->valuestring, NULL)
				       : -1;
	return d > 12.3399 && d < 12.3401;
}

/* Does t name our row in any member spelled like invoiceNumber? */
static bool mentions_ours(const cJSON *t)
{
	for (const cJSON *c = cJSON_IsObject(t) ? t->child : NULL; c; c = c->next)
		if (c->string && strcasecmp(c->string, "invoiceNumber") == 0 &&
		    ((cJSON_IsString(c) && strcmp(c->valuestring, "77") == 0) ||
		     (cJSON_IsNumber(c) && c->valuedouble == 77.0)))
			return true;
	return false;
}

static void check(const char *at, const struct lookup_verdict *v, const cJSON *root)
{
	FUZZ_CHECK(root && oracle_string_is(root, "refId", "77") &&
			   oracle_string_is(oracle_only(root, "messages"), "resultCode", "Ok"),
		   "a finding from an answer that is not an Ok for our row");
	const cJSON *list = oracle_only(root, "transactions"), *t;
	if (!cJSON_IsArray(list))
		list = NULL;
	const char *refused = strchr(at, '~');
	bool ours = false, charged = false;
	cJSON_ArrayForEach(t, list)
	{
		ours |= mentions_ours(t);
		charged |= oracle_string_is(t, "transId", v->gateway_ref) &&
			   oracle_string_is(t, "invoiceNumber", "77") &&
			   charged_status(oracle_string(t, "transactionStatus")) && our_amount(t);
	}
	switch (v->found) {
	case LOOKUP_SUCCEEDED:
		FUZZ_CHECK(charged, "succeeded without a listed, charged transaction of ours");
		break;
	case LOOKUP_DECLINED:
		FUZZ_CHECK(strncmp(at, "b:", 2) == 0 && refused && strcmp(refused + 1, v->gateway_ref) == 0,
			   "declined other than at the end of the walk, for the transaction it carried");
		break;
	case LOOKUP_ABSENT:
		FUZZ_CHECK(strncmp(at, "b:", 2) == 0 && !refused,
			   "absent other than at the end of a walk that met nothing of ours");
		break;
	case LOOKUP_NEXT_PAGE:
		FUZZ_CHECK(!refused || strchr(v->next, '~'), "the next page forgets a not-charged match");
		FUZZ_CHECK(!ours || strchr(v->next, '~'),
			   "the next page passes a page that mentions our row");
		break;
	case LOOKUP_INCONCLUSIVE:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char at[160], hours[16];
	const char *rest, *body;
	size_t rest_len, len;
	if (!fuzz_split_line((const char *)data, size, at, sizeof(at), &rest, &rest_len) ||
	    !fuzz_split_line(rest, rest_len, hours, sizeof(hours), &body, &len) || !hours[0] ||
	    strspn(hours, "0123456789") != strlen(hours) || strlen(hours) > 6)
		return 0;
	struct charge ch = {.id = 77, .invoice_id = 12, .amount_cents = 1234};
	snprintf(ch.currency, sizeof(ch.currency), "usd");
	snprintf(ch.customer, sizeof(ch.customer), "900100");
	snprintf(ch.source, sizeof(ch.source), "800200");
	struct gateway_answer ans = {.curl_result = CURLE_OK, .connected = true, .http_status = 200,
				     .body = len ? body : NULL, .body_len = len, .lookup_at = at,
				     .lookup_since = (int64_t)time(NULL) - strtol(hours, NULL, 10) * 3600};
	struct lookup_verdict v;
	gateway_find("authorizenet")->parse_lookup(&ch, &ans, &v);
	FUZZ_CHECK_STRING(v.reason);
	FUZZ_CHECK_STRING(v.next);
	FUZZ_CHECK_STRING(v.gateway_ref);
	if (v.found != LOOKUP_INCONCLUSIVE) {
		cJSON *root = oracle_object(body, len, true);
		check(at, &v, root);
		cJSON_Delete(root);
	}
	return 0;
}
