/* gateway_stripe.c: the `stripe` adapter (CONTRACT.md, "Gateway wire
 * format"): POST /v1/charges, form-encoded, with an Idempotency-Key. */
#include "gateway.h"
#include "json_get.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct form {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void form_add(struct form *f, const char *key, const char *value)
{
	if (f->failed)
		return;
	char *k = curl_easy_escape(NULL, key, 0);
	char *v = curl_easy_escape(NULL, value, 0);
	size_t need = (k ? strlen(k) : 0) + (v ? strlen(v) : 0) + 2;
	if (!k || !v || (f->len + need + 1 > f->cap &&
			 !(f->buf = realloc(f->buf, f->cap = (f->len + need + 1) * 2)))) {
		f->failed = true;
	} else {
		f->len += (size_t)snprintf(f->buf + f->len, f->cap - f->len, "%s%s=%s",
					   f->len ? "&" : "", k, v);
	}
	curl_free(k);
	curl_free(v);
}

/* A header line must not smuggle a second header in. */
static bool header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int build_charge(const struct gateway_config *gw, const struct charge *ch,
			struct gateway_request *req, char *why, size_t whylen)
{
	memset(req, 0, sizeof(*req));
	if (!header_safe(gw->key) || !header_safe(ch->idempotency_key)) {
		snprintf(why, whylen, "API key or idempotency key holds a control character");
		return -1;
	}
	snprintf(req->url, sizeof(req->url), "%s/v1/charges", gw->url);

	char amount[24], invoice[24], row[24], description[48];
	snprintf(amount, sizeof(amount), "%lld", (long long)ch->amount_cents);
	snprintf(invoice, sizeof(invoice), "%lld", (long long)ch->invoice_id);
	snprintf(row, sizeof(row), "%lld", (long long)ch->id);
	snprintf(description, sizeof(description), "Invoice %lld", (long long)ch->invoice_id);
	struct form f = {0};
	form_add(&f, "amount", amount);
	form_add(&f, "currency", ch->currency);
	if (ch->customer[0])
		form_add(&f, "customer", ch->customer);
	if (ch->source[0])
		form_add(&f, "source", ch->source);
	form_add(&f, "description", description);
	form_add(&f, "metadata[invoice_id]", invoice);
	form_add(&f, "metadata[outbox_id]", row);

	char auth[600], idem[300];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", gw->key);
	snprintf(idem, sizeof(idem), "Idempotency-Key: %s", ch->idempotency_key);
	const char *lines[] = {auth, idem, "Content-Type: application/x-www-form-urlencoded",
			       "Accept: application/json", "Expect:"};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]) && !f.failed; i++) {
		struct curl_slist *h = curl_slist_append(req->headers, lines[i]);
		if (!h)
			f.failed = true;
		else
			req->headers = h;
	}
	memset(auth, 0, sizeof(auth)); /* the key does not linger on the stack */
	req->body = f.buf;
	if (f.failed) {
		gateway_request_free(req);
		snprintf(why, whylen, "out of memory building the request");
		return -1;
	}
	return 0;
}

static const char *or_empty(const char *s) { return s ? s : ""; }

/* 200: a charge object that must match what we asked for, to the cent. */
static void classify_ok(const struct charge *ch, const cJSON *root, struct verdict *v)
{
	const char *id = json_string(root, "id");
	const char *status = json_string(root, "status");
	const char *currency = json_string(root, "currency");
	const cJSON *metadata = json_unique(root, "metadata");
	const char *outbox = metadata ? json_string(metadata, "outbox_id") : NULL;
	int64_t amount;
	char row[24];
	snprintf(row, sizeof(row), "%lld", (long long)ch->id);

	if (!id || !*id || strlen(id) >= sizeof(v->gateway_ref)) {
		verdict_set(v, OUTCOME_UNKNOWN, "200 without a usable charge id");
		return;
	}
	snprintf(v->gateway_ref, sizeof(v->gateway_ref), "%s", id);
	if (!status || strcmp(status, "succeeded") != 0 || !json_is_true(root, "paid")) {
		verdict_set(v, OUTCOME_UNKNOWN, "200 but the charge is not settled (status %s)",
		    status ? status : "missing");
		return;
	}
	if (!json_int64(root, "amount", &amount) || amount != ch->amount_cents || !currency ||
	    strcmp(currency, ch->currency) != 0 || !outbox || strcmp(outbox, row) != 0) {
		verdict_set(v, OUTCOME_UNKNOWN,
		    "200 for a charge that does not match ours (amount, currency or outbox_id)");
		return;
	}
	verdict_set(v, OUTCOME_SUCCEEDED, "charged");
}

static void classify_charge(const struct charge *ch, const struct gateway_answer *ans,
			    struct verdict *v)
{
	memset(v, 0, sizeof(*v));
	char status[16];
	snprintf(status, sizeof(status), "%ld", ans->http_status);

	if (gateway_transport_verdict(ans, v))
		return;
	switch (ans->http_status) {
	case 401:
	case 403:
		/* Not executed (authentication comes first), but PROTOCOL.md allows
		 * a re-send only after no connection or a 429: the row waits for a
		 * person (fix the key, then replay), and sending stops. */
		verdict_set(v, OUTCOME_DEAD,
		    "gateway refused our API key (%s): not charged; fix the key, reload (SIGHUP), "
		    "then replay the row",
		    status);
		v->stop_sending = true;
		return;
	case 409:
		verdict_set(v, OUTCOME_UNKNOWN, "409: a request with this idempotency key was already in progress");
		return;
	case 429:
		verdict_set(v, OUTCOME_RETRY_LATER, "rate limited (429)");
		v->retry_after = ans->retry_after;
		return;
	default:
		break;
	}
	if (ans->http_status >= 500) {
		verdict_set(v, OUTCOME_UNKNOWN, "gateway error %s", status);
		return;
	}

	cJSON *root = json_parse_object(ans->body, ans->body_len);
	if (!root) {
		verdict_set(v, OUTCOME_UNKNOWN, "answer %s is not a JSON object", status);
		return;
	}
	const cJSON *error = json_unique(root, "error");
	const char *type = error ? json_string(error, "type") : NULL;
	const char *message = error ? json_string(error, "message") : NULL;
	switch (ans->http_status) {
	case 200:
		classify_ok(ch, root, v);
		break;
	case 402:
		if (type && strcmp(type, "card_error") == 0) {
			const char *charge = json_string(error, "charge");
			if (charge && strlen(charge) < sizeof(v->gateway_ref))
				snprintf(v->gateway_ref, sizeof(v->gateway_ref), "%s", charge);
			const char *code = json_string(error, "decline_code");
			if (!code)
				code = json_string(error, "code");
			verdict_set(v, OUTCOME_DECLINED, "declined: %s: %s", code ? code : "card_error",
			    or_empty(message));
		} else {
			verdict_set(v, OUTCOME_UNKNOWN, "402 without a card_error");
		}
		break;
	case 400:
		if (type && strcmp(type, "invalid_request_error") == 0)
			verdict_set(v, OUTCOME_FAILED, "refused: invalid_request_error: %s", or_empty(message));
		else if (type && strcmp(type, "idempotency_error") == 0)
			verdict_set(v, OUTCOME_DEAD,
			    "idempotency_error (our key was used with other parameters: a bug): %s",
			    or_empty(message));
		else
			verdict_set(v, OUTCOME_UNKNOWN, "400 of unknown type %s", type ? type : "(none)");
		break;
	default:
		verdict_set(v, OUTCOME_UNKNOWN, "unexpected HTTP status %s", status);
		break;
	}
	cJSON_Delete(root);
}

/* GET /v1/charges?customer=ID&created[gte]=T&limit=100[&starting_after=X]:
 * list APIs are read-after-write consistent (the search API is not). A
 * customer without a gateway id: list by creation time alone. */
static int build_lookup(const struct gateway_config *gw, const struct lookup_query *q,
			struct gateway_request *req, char *why, size_t whylen)
{
	memset(req, 0, sizeof(*req));
	if (!header_safe(gw->key)) {
		snprintf(why, whylen, "API key holds a control character");
		return -1;
	}
	char *customer = q->charge->customer[0] ? curl_easy_escape(NULL, q->charge->customer, 0) : NULL;
	char *after = q->starting_after[0] ? curl_easy_escape(NULL, q->starting_after, 0) : NULL;
	int n = snprintf(req->url, sizeof(req->url),
			 "%s/v1/charges?limit=100&created%%5Bgte%%5D=%lld%s%s%s%s", gw->url,
			 (long long)q->since, customer ? "&customer=" : "", customer ? customer : "",
			 after ? "&starting_after=" : "", after ? after : "");
	curl_free(customer);
	curl_free(after);
	if (n < 0 || (size_t)n >= sizeof(req->url)) {
		snprintf(why, whylen, "lookup URL too long");
		return -1;
	}
	char auth[600];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", gw->key);
	const char *lines[] = {auth, "Accept: application/json"};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct curl_slist *h = curl_slist_append(req->headers, lines[i]);
		if (!h) {
			memset(auth, 0, sizeof(auth));
			gateway_request_free(req);
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		req->headers = h;
	}
	memset(auth, 0, sizeof(auth));
	return 0;
}

/* Which row a listed charge is for: its one "metadata" object's one
 * "outbox_id" string. Missing (no metadata member, or no outbox_id in it)
 * is someone else's charge; a member given twice, spelled in another case,
 * or of another type is unclear: the charge may be ours, so the page must
 * not be passed by (found by fuzz_stripe_lookup: a duplicate "metadata"
 * made our charge invisible and the lookup absent). */
static enum json_member listed_outbox(const cJSON *item, const char **outbox)
{
	const cJSON *metadata;
	enum json_member m = json_member_object(item, "metadata", &metadata);
	*outbox = NULL;
	if (m != JSON_FOUND)
		return m;
	return json_member_string(metadata, "outbox_id", outbox);
}

/* One page of the list: find our row by metadata[outbox_id]. A found
 * charge must match ours to the cent, or the answer is inconclusive. */
static void parse_lookup(const struct charge *ch, const struct gateway_answer *ans,
			 struct lookup_verdict *v)
{
	memset(v, 0, sizeof(*v));
	if (lookup_transport_verdict(ans, v))
		return;
	cJSON *root = json_parse_object(ans->body, ans->body_len);
	const char *object = root ? json_string(root, "object") : NULL;
	const cJSON *data = root ? json_unique(root, "data") : NULL;
	const cJSON *more = root ? json_unique(root, "has_more") : NULL;
	if (!object || strcmp(object, "list") != 0 || !cJSON_IsArray(data) || !cJSON_IsBool(more)) {
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "lookup answer is not a list");
		cJSON_Delete(root);
		return;
	}
	char row[24];
	snprintf(row, sizeof(row), "%lld", (long long)ch->id);
	const char *last_id = NULL;
	bool declined = false, pending = false, mismatch = false, unclear = false;
	const cJSON *item;
	cJSON_ArrayForEach(item, data)
	{
		const char *id = json_string(item, "id");
		if (!id || !*id || strlen(id) >= sizeof(v->gateway_ref)) {
			lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "a listed charge has no usable id");
			cJSON_Delete(root);
			return;
		}
		last_id = id;
		const char *outbox;
		enum json_member named = listed_outbox(item, &outbox);
		if (named == JSON_UNCLEAR) {
			unclear = true;
			continue;
		}
		if (named == JSON_MISSING || strcmp(outbox, row) != 0)
			continue;
		const char *status = json_string(item, "status");
		const char *currency = json_string(item, "currency");
		int64_t amount;
		if (!json_int64(item, "amount", &amount) || amount != ch->amount_cents || !currency ||
		    strcmp(currency, ch->currency) != 0) {
			mismatch = true;
			continue;
		}
		if (status && strcmp(status, "succeeded") == 0 && json_is_true(item, "paid")) {
			/* a success wins over anything else found for the row */
			snprintf(v->gateway_ref, sizeof(v->gateway_ref), "%s", id);
			lookup_verdict_set(v, LOOKUP_SUCCEEDED, "lookup found charge %s", id);
			cJSON_Delete(root);
			return;
		}
		if (status && strcmp(status, "failed") == 0) {
			declined = true;
			snprintf(v->gateway_ref, sizeof(v->gateway_ref), "%s", id);
		} else {
			pending = true;
		}
	}
	if (unclear)
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE,
			   "a listed charge's metadata.outbox_id is not one string: it may be ours");
	else if (mismatch)
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE,
			   "lookup found a charge for our row that does not match it (amount or currency)");
	else if (pending)
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "lookup found our charge still pending");
	else if (declined)
		lookup_verdict_set(v, LOOKUP_DECLINED, "lookup found declined charge %s", v->gateway_ref);
	else if (cJSON_IsTrue(more) && last_id) {
		snprintf(v->next, sizeof(v->next), "%s", last_id);
		lookup_verdict_set(v, LOOKUP_NEXT_PAGE, "not on this page");
	} else if (cJSON_IsTrue(more))
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "lookup says there is more but gave an empty page");
	else
		lookup_verdict_set(v, LOOKUP_ABSENT, "lookup found no charge for row %s", row);
	cJSON_Delete(root);
}

const struct gateway_adapter gateway_stripe = {
	.name = "stripe",
	.idempotency_keys = true,
	.build_charge = build_charge,
	.classify_charge = classify_charge,
	.build_lookup = build_lookup,
	.parse_lookup = parse_lookup,
};
