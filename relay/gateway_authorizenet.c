/* gateway_authorizenet.c: the `authorizenet` adapter, charge side
 * (CONTRACT.md; docs/authorizenet.md): createTransactionRequest with
 * invoiceNumber = the outbox row id and a long duplicateWindow. Authorize.Net
 * has no idempotency key: the row's state (one POST per row) is the guard,
 * the duplicate window only a second line behind it. The lookup side is
 * anet_lookup.c. */
#include "anet.h"
#include "json_get.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Seconds in which Authorize.Net refuses a second transaction with the same
 * invoice number, amount and payment (its maximum, 8 hours). Without an
 * idempotency key this window is the gateway's only protection if a row were
 * ever POSTed twice (a failover that forgot a claim); the default of 2
 * minutes would let a late second POST charge again. */
#define ANET_DUPLICATE_WINDOW "28800"

/* Two-decimal currencies only; an Authorize.Net account settles in one
 * currency, and we send it explicitly (currencyCode) so an account in
 * another currency refuses the charge rather than charging 12.34 of its
 * own. More currencies need the account's currency in the configuration. */
static const char *const currencies[][2] = {{"usd", "USD"}};

static int check_key(const char *key, char *why, size_t whylen)
{
	char login[26], tkey[65];
	int rc = anet_split_key(key, login, tkey, why, whylen);
	explicit_bzero(tkey, sizeof(tkey));
	return rc;
}

static cJSON *add_obj(cJSON *o, const char *name) { return o ? cJSON_AddObjectToObject(o, name) : NULL; }

/* {"name": [{}]}: the array's one element, to fill. */
static cJSON *add_list_item(cJSON *o, const char *name)
{
	cJSON *list = o ? cJSON_AddArrayToObject(o, name) : NULL, *item = cJSON_CreateObject();
	if (!list || !item || !cJSON_AddItemToArray(list, item)) {
		cJSON_Delete(item);
		return NULL;
	}
	return item;
}

static bool add_str(cJSON *o, const char *name, const char *value)
{
	return o && cJSON_AddStringToObject(o, name, value);
}

/* userFields: {"userField": [{"name", "value"}, ...]}: name/value pairs
 * Authorize.Net keeps with the transaction (our metadata). */
static bool add_user_field(cJSON *fields, const char *name, const char *value)
{
	cJSON *list = cJSON_GetObjectItemCaseSensitive(fields, "userField");
	if (fields && !list)
		list = cJSON_AddArrayToObject(fields, "userField");
	cJSON *f = list ? cJSON_CreateObject() : NULL;
	if (!f || !cJSON_AddItemToArray(list, f)) {
		cJSON_Delete(f);
		return false;
	}
	return add_str(f, "name", name) && add_str(f, "value", value);
}

static int build_charge(const struct gateway_config *gw, const struct charge *ch,
			struct gateway_request *req, char *why, size_t whylen)
{
	memset(req, 0, sizeof(*req));
	const char *code = NULL;
	for (size_t i = 0; i < sizeof(currencies) / sizeof(currencies[0]); i++)
		if (strcmp(ch->currency, currencies[i][0]) == 0)
			code = currencies[i][1];
	if (!code) {
		snprintf(why, whylen,
			 "currency '%s' is not supported by the authorizenet adapter (usd only): "
			 "resolve the row by hand",
			 ch->currency);
		return GATEWAY_REFUSE;
	}
	if (ch->amount_cents <= 0) {
		snprintf(why, whylen, "amount %lld is not positive", (long long)ch->amount_cents);
		return GATEWAY_REFUSE;
	}
	if (!ch->customer[0] && !ch->source[0]) {
		snprintf(why, whylen, "no payment method (neither customer profile nor token)");
		return GATEWAY_REFUSE;
	}
	if (check_key(gw->key, why, whylen) != 0)
		return GATEWAY_REFUSE;

	char amount[32], row[24], invoice[24], description[48];
	anet_amount_format(ch->amount_cents, amount, sizeof(amount));
	snprintf(row, sizeof(row), "%lld", (long long)ch->id);
	snprintf(invoice, sizeof(invoice), "%lld", (long long)ch->invoice_id);
	snprintf(description, sizeof(description), "Invoice %lld", (long long)ch->invoice_id);

	/* Members in the schema's order: transactionType, amount, currencyCode,
	 * payment | profile, order, transactionSettings, userFields. */
	cJSON *body = cJSON_CreateObject();
	cJSON *tr = add_obj(body, "transactionRequest");
	bool ok = add_str(tr, "transactionType", "authCaptureTransaction") &&
		  add_str(tr, "amount", amount) && add_str(tr, "currencyCode", code);
	if (ch->customer[0]) {
		cJSON *profile = add_obj(tr, "profile");
		ok = ok && add_str(profile, "customerProfileId", ch->customer);
		if (ch->source[0])
			ok = ok && add_str(add_obj(profile, "paymentProfile"), "paymentProfileId",
					   ch->source);
	} else {
		cJSON *opaque = add_obj(add_obj(tr, "payment"), "opaqueData");
		ok = ok && add_str(opaque, "dataDescriptor", "COMMON.ACCEPT.INAPP.PAYMENT") &&
		     add_str(opaque, "dataValue", ch->source);
	}
	cJSON *order = add_obj(tr, "order");
	ok = ok && add_str(order, "invoiceNumber", row) && add_str(order, "description", description);
	cJSON *setting = add_list_item(add_obj(tr, "transactionSettings"), "setting");
	ok = ok && add_str(setting, "settingName", "duplicateWindow") &&
	     add_str(setting, "settingValue", ANET_DUPLICATE_WINDOW);
	cJSON *fields = add_obj(tr, "userFields");
	ok = ok && add_user_field(fields, "invoice_id", invoice) &&
	     add_user_field(fields, "outbox_id", row);
	if (!ok) {
		cJSON_Delete(body);
		snprintf(why, whylen, "out of memory building the request");
		return -1;
	}
	return anet_request(gw, "createTransactionRequest", row, body, req, why, whylen);
}

/* Authentication refused: not executed, but PROTOCOL.md allows a re-send
 * only after no connection: the row waits for a person, sending stops
 * (like Stripe's 401). E00005..E00008: key invalid, name invalid, wrong
 * credentials, account inactive. */
static bool auth_error(const char *code)
{
	static const char *const codes[] = {"E00005", "E00006", "E00007", "E00008"};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(code, codes[i]) == 0)
			return true;
	return false;
}

/* Response code 3 reasons that report trouble between Authorize.Net and
 * the card processor (19-23, 25-26, 57-63: "try again in 5 minutes";
 * 120-122: the processor timed out and the automatic void may have
 * failed; 180-181: processor error). Authorize.Net itself warns that
 * retrying through them may authorize twice: the card may have been
 * charged, so they are unknown, never failed. */
static bool processor_trouble(long reason)
{
	return (reason >= 19 && reason <= 23) || reason == 25 || reason == 26 ||
	       (reason >= 57 && reason <= 63) || (reason >= 120 && reason <= 122) ||
	       reason == 180 || reason == 181;
}

/* errors: [{"errorCode": "N", "errorText": "..."}]: the codes, checked:
 * each a plain decimal number (no sign, no blank) that fits, else false. */
struct reasons {
	bool duplicate, trouble, login;
	long first;
	const char *text;
};

static bool read_reasons(const cJSON *tr, struct reasons *r)
{
	const cJSON *errors = json_unique(tr, "errors");
	const cJSON *e;
	memset(r, 0, sizeof(*r));
	if (!cJSON_IsArray(errors) || !errors->child)
		return false;
	cJSON_ArrayForEach(e, errors)
	{
		const char *code = json_string(e, "errorCode");
		size_t len = code ? strlen(code) : 0;
		if (len == 0 || len > 9 || strspn(code, "0123456789") != len)
			return false;
		long n = strtol(code, NULL, 10);
		if (!r->text) {
			const char *t = json_string(e, "errorText");
			r->first = n;
			r->text = t ? t : "";
		}
		r->duplicate |= n == 11;
		r->trouble |= processor_trouble(n);
		r->login |= n == 13; /* login id invalid or account inactive */
	}
	return true;
}

/* An approval code proves the original of a duplicate was approved: the
 * gateway sends one only then (a decline may show "000000"). Up to 6
 * letters and digits, not all zeros; blanks are no code. */
static bool approval_code(const char *code)
{
	static const char alnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	size_t n = code ? strlen(code) : 0;
	return n > 0 && n <= 6 && strspn(code, alnum) == n && strspn(code, "0") != n;
}

static void classify_error(const cJSON *tr, struct verdict *v)
{
	struct reasons r;
	if (!read_reasons(tr, &r)) {
		verdict_set(v, OUTCOME_UNKNOWN, "response code 3 without readable error codes");
		return;
	}
	if (r.duplicate) {
		/* We POST a row once; a duplicate means this row reached the
		 * gateway before (e.g. a failover forgot a claim). */
		const char *id = json_string(tr, "transId");
		if (anet_trans_id(id, sizeof(v->gateway_ref)) && approval_code(json_string(tr, "authCode"))) {
			snprintf(v->gateway_ref, sizeof(v->gateway_ref), "%s", id);
			verdict_set(v, OUTCOME_SUCCEEDED, "already charged: transaction %s", id);
		} else {
			verdict_set(v, OUTCOME_UNKNOWN,
			    "duplicate transaction (error 11) without proof the original was approved: "
			    "look it up");
		}
	} else if (r.login) {
		verdict_set(v, OUTCOME_DEAD,
		    "gateway refused our login id (error 13): not charged; fix the key, reload (SIGHUP), "
		    "then replay the row");
		v->stop_sending = true;
	} else if (r.trouble) {
		verdict_set(v, OUTCOME_UNKNOWN, "processor trouble (error %ld: %s): maybe charged, look it up",
		    r.first, r.text);
	} else {
		verdict_set(v, OUTCOME_FAILED, "refused: error %ld: %s", r.first, r.text);
	}
}

static void classify_body(const struct charge *ch, const cJSON *root, struct verdict *v)
{
	struct anet_messages m;
	if (!anet_messages(root, &m)) {
		verdict_set(v, OUTCOME_UNKNOWN, "answer without a readable messages.resultCode");
		return;
	}
	const cJSON *tr = json_unique(root, "transactionResponse");
	if (!tr) {
		if (!m.ok && auth_error(m.code)) {
			verdict_set(v, OUTCOME_DEAD,
			    "gateway refused our credentials (%s): not charged; fix the key, reload "
			    "(SIGHUP), then replay the row",
			    m.code);
			v->stop_sending = true;
		} else {
			verdict_set(v, OUTCOME_UNKNOWN, "answer %s without a transactionResponse: %s", m.code, m.text);
		}
		return;
	}
	const char *rc = cJSON_IsObject(tr) ? json_string(tr, "responseCode") : NULL;
	const char *ref = json_string(root, "refId");
	char row[24];
	snprintf(row, sizeof(row), "%lld", (long long)ch->id);
	if (!rc || strlen(rc) != 1 || rc[0] < '1' || rc[0] > '4') {
		verdict_set(v, OUTCOME_UNKNOWN, "transactionResponse without a response code 1 to 4");
		return;
	}
	if (!ref || strcmp(ref, row) != 0) {
		verdict_set(v, OUTCOME_UNKNOWN, "answer for refId %s, not for our row %s", ref ? ref : "(none)",
		    row);
		return;
	}
	/* resultCode must agree: Ok with 1, Error with 2 and 3 */
	if ((rc[0] == '1' && !m.ok) || ((rc[0] == '2' || rc[0] == '3') && m.ok)) {
		verdict_set(v, OUTCOME_UNKNOWN, "response code %s contradicts resultCode %s", rc,
		    m.ok ? "Ok" : "Error");
		return;
	}
	const char *id = json_string(tr, "transId");
	switch (rc[0]) {
	case '1':
		if (!anet_trans_id(id, sizeof(v->gateway_ref))) {
			verdict_set(v, OUTCOME_UNKNOWN, "approved without a usable transId");
			return;
		}
		snprintf(v->gateway_ref, sizeof(v->gateway_ref), "%s", id);
		verdict_set(v, OUTCOME_SUCCEEDED, "charged: transaction %s", id);
		return;
	case '2': {
		/* A decline only when its reasons say so: a duplicate (11) may
		 * name an approved original, a login refusal (13) or processor
		 * trouble may hide a charge, and no readable reason proves
		 * nothing. Those are looked up. */
		struct reasons r;
		if (anet_trans_id(id, sizeof(v->gateway_ref)))
			snprintf(v->gateway_ref, sizeof(v->gateway_ref), "%s", id);
		if (!read_reasons(tr, &r))
			verdict_set(v, OUTCOME_UNKNOWN, "response code 2 without readable reasons: look it up");
		else if (r.duplicate || r.login || r.trouble)
			verdict_set(v, OUTCOME_UNKNOWN,
			    "response code 2 with reason%s%s%s (first %ld: %s): maybe charged, look it up",
			    r.duplicate ? " 11 (duplicate)" : "", r.login ? " 13 (login)" : "",
			    r.trouble ? " of processor trouble" : "", r.first, r.text);
		else
			verdict_set(v, OUTCOME_DECLINED, "declined: reason %ld: %s", r.first, r.text);
		return;
	}
	case '3':
		classify_error(tr, v);
		return;
	default:
		/* Held for review: neither charged nor declined yet. Never
		 * re-sent; looked up until the review ends (settled or declined). */
		if (anet_trans_id(id, sizeof(v->gateway_ref)))
			snprintf(v->gateway_ref, sizeof(v->gateway_ref), "%s", id);
		verdict_set(v, OUTCOME_UNKNOWN, "held for review (response code 4): looked up until decided");
		return;
	}
}

static void classify_charge(const struct charge *ch, const struct gateway_answer *ans,
			    struct verdict *v)
{
	memset(v, 0, sizeof(*v));
	if (gateway_transport_verdict(ans, v))
		return;
	/* Authorize.Net answers every call with 200; nothing else (a 429 or
	 * 503 from something in front of it) proves the request was not run. */
	if (ans->http_status != 200) {
		verdict_set(v, OUTCOME_UNKNOWN, "HTTP %ld from the gateway", ans->http_status);
		return;
	}
	cJSON *root = anet_parse(ans->body, ans->body_len);
	if (!root) {
		verdict_set(v, OUTCOME_UNKNOWN, "answer is not a JSON object");
		return;
	}
	classify_body(ch, root, v);
	cJSON_Delete(root);
}

const struct gateway_adapter gateway_authorizenet = {
	.name = "authorizenet",
	/* no idempotency key: a row is never re-POSTed once it may have
	 * reached the gateway (the core re-sends only provably unsent rows) */
	.idempotency_keys = false,
	.build_charge = build_charge,
	.classify_charge = classify_charge,
	.build_lookup = anet_build_lookup,
	.parse_lookup = anet_parse_lookup,
	.check_key = check_key,
};
