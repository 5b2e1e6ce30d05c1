/* anet_charge.c: createTransactionRequest (authCaptureTransaction):
 * validation, the duplicate window, faults, and the transaction itself
 * (tests/sim/README.md, "Authorize.Net"). Runs with the lock held. */
#include "anet_sim.h"
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WINDOW_DEFAULT 120 /* Authorize.Net's default duplicate window */
#define WINDOW_MAX 28800

/* What the request asks for, borrowed from its JSON. */
struct anet_ask {
	int64_t amount;      /* cents; -1 when invalid */
	const char *currency; /* currencyCode, or NULL (the account's: USD) */
	const char *customer, *source, *invoice_number, *invoice_id;
	int window;
};

/* "12.34" -> 1234; -1 when not a positive amount of at most 2 decimals. */
static int64_t cents(const cJSON *v)
{
	char buf[32];
	if (cJSON_IsString(v))
		snprintf(buf, sizeof(buf), "%s", v->valuestring);
	else if (cJSON_IsNumber(v))
		snprintf(buf, sizeof(buf), "%.2f", v->valuedouble);
	else
		return -1;
	char *dot = strchr(buf, '.'), *end;
	if (dot && (strlen(dot + 1) == 0 || strlen(dot + 1) > 2 || strspn(dot + 1, "0123456789") != strlen(dot + 1)))
		return -1;
	if (dot)
		*dot = '\0';
	if (!*buf || strspn(buf, "0123456789") != strlen(buf) || strlen(buf) > 12)
		return -1;
	int64_t c = strtoll(buf, &end, 10) * 100;
	if (dot)
		c += strtoll(dot + 1, NULL, 10) * (strlen(dot + 1) == 1 ? 10 : 1);
	return c > 0 ? c : -1;
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static void read_ask(const cJSON *tr, struct anet_ask *a)
{
	memset(a, 0, sizeof(*a));
	a->amount = cents(get(tr, "amount"));
	a->currency = anet_str(tr, "currencyCode");
	const cJSON *profile = get(tr, "profile");
	if (profile) {
		a->customer = anet_str(profile, "customerProfileId");
		a->source = anet_str(get(profile, "paymentProfile"), "paymentProfileId");
	} else {
		a->source = anet_str(get(get(tr, "payment"), "opaqueData"), "dataValue");
	}
	a->invoice_number = anet_str(get(tr, "order"), "invoiceNumber");
	a->window = WINDOW_DEFAULT;
	const cJSON *setting;
	cJSON_ArrayForEach(setting, get(get(tr, "transactionSettings"), "setting"))
	{
		const char *name = anet_str(setting, "settingName"), *value = anet_str(setting, "settingValue");
		if (name && value && strcmp(name, "duplicateWindow") == 0)
			a->window = atoi(value);
	}
	const cJSON *field;
	cJSON_ArrayForEach(field, get(get(tr, "userFields"), "userField"))
	{
		const char *name = anet_str(field, "name");
		if (name && strcmp(name, "invoice_id") == 0)
			a->invoice_id = anet_str(field, "value");
	}
}

/* The ledger's view of the request, whatever the answer. */
static void note(const struct anet_ask *a, struct ledger_request *entry)
{
	char amount[24], currency[8] = "usd";
	if (!entry)
		return;
	if (a->amount > 0) {
		snprintf(amount, sizeof(amount), "%lld", (long long)a->amount);
		ledger_set(&entry->amount, amount);
	}
	if (a->currency) {
		snprintf(currency, sizeof(currency), "%.3s", a->currency);
		for (char *p = currency; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	}
	ledger_set(&entry->currency, currency);
	ledger_set(&entry->customer, a->customer);
	ledger_set(&entry->source, a->source);
	ledger_set(&entry->outbox_id, a->invoice_number);
	ledger_set(&entry->invoice_id, a->invoice_id);
}

/* {"transactionResponse": {...}, "refId", "messages"}: code 1..4, with
 * the transaction (or none), an error reason or a message. */
static void answer(struct api_reply *reply, const char *ref, int code, const struct charge *c,
		   int reason, const char *text)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *tr = root ? cJSON_AddObjectToObject(root, "transactionResponse") : NULL;
	if (tr) {
		char rc[4];
		snprintf(rc, sizeof(rc), "%d", code);
		cJSON_AddStringToObject(tr, "responseCode", rc);
		cJSON_AddStringToObject(tr, "authCode", c ? c->auth_code : "");
		cJSON_AddStringToObject(tr, "avsResultCode", "Y");
		cJSON_AddStringToObject(tr, "cvvResultCode", "P");
		cJSON_AddStringToObject(tr, "transId", c ? c->id : "0");
		cJSON_AddStringToObject(tr, "refTransID", "");
		cJSON_AddStringToObject(tr, "testRequest", "0");
		cJSON_AddStringToObject(tr, "accountNumber", "XXXX1111");
		cJSON_AddStringToObject(tr, "accountType", "Visa");
		cJSON *list = cJSON_AddArrayToObject(tr, code == 1 || code == 4 ? "messages" : "errors");
		cJSON *item = cJSON_CreateObject();
		char r[8];
		snprintf(r, sizeof(r), "%d", reason);
		if (list && item && cJSON_AddItemToArray(list, item)) {
			cJSON_AddStringToObject(item, code == 1 || code == 4 ? "code" : "errorCode", r);
			cJSON_AddStringToObject(item, code == 1 || code == 4 ? "description" : "errorText",
						text);
		} else {
			cJSON_Delete(item);
		}
	}
	if (root) {
		bool ok = code == 1 || code == 4;
		anet_messages(root, ref, ok, ok ? "I00001" : "E00027",
			      ok ? "Successful." : "The transaction was unsuccessful.");
	}
	anet_reply(reply, root);
}

/* An earlier transaction the duplicate window still covers. */
static const struct charge *duplicate_of(const struct sim *s, const struct anet_ask *a)
{
	int64_t now = (int64_t)time(NULL);
	for (size_t i = s->charges.count; i-- > 0;) {
		const struct charge *c = s->charges.items[i];
		if (!c->anet_status || !c->invoice_number || !a->invoice_number ||
		    strcmp(c->invoice_number, a->invoice_number) != 0 || c->amount != a->amount ||
		    now - c->created >= a->window)
			continue;
		if ((c->customer ? strcmp(c->customer, a->customer ? a->customer : "") : !!a->customer) ||
		    (c->source ? strcmp(c->source, a->source ? a->source : "") : !!a->source))
			continue;
		return c;
	}
	return NULL;
}

static void text_reply(struct api_reply *reply, int status, const char *text)
{
	char *t = strdup(text);
	reply_set(reply, status, CT_TEXT, t, t ? strlen(t) : 0);
}

/* Make the transaction: its status from the payment token. */
static struct charge *transact(struct sim *s, const struct anet_ask *a, int *code, int *reason,
			       const char **text)
{
	struct charge *c = charge_new();
	if (!c)
		return NULL;
	snprintf(c->id, sizeof(c->id), "%llu", (unsigned long long)s->anet.next_trans++);
	c->created = (int64_t)time(NULL);
	c->amount = a->amount;
	c->currency = strdup("usd");
	c->customer = a->customer ? strdup(a->customer) : NULL;
	c->source = a->source ? strdup(a->source) : NULL;
	c->invoice_number = a->invoice_number ? strdup(a->invoice_number) : NULL;
	c->duplicate_window = a->window;
	const char *src = a->source ? a->source : "";
	if (strncmp(src, "tok_chargeDeclined", 18) == 0) {
		c->anet_status = "declined";
		*code = 2, *reason = 2, *text = "This transaction has been declined.";
	} else if (strcmp(src, "tok_heldForReview") == 0) {
		c->anet_status = "FDSPendingReview";
		*code = 4, *reason = 252,
		*text = "Your order has been received. Thank you for your business!";
	} else {
		c->anet_status = "capturedPendingSettlement";
		rng_alnum(&s->rng, c->auth_code, 6);
		for (char *p = c->auth_code; *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		*code = 1, *reason = 1, *text = "This transaction has been approved.";
	}
	bool failed = !c->currency || (a->customer && !c->customer) || (a->source && !c->source) ||
		      (a->invoice_number && !c->invoice_number) ||
		      (a->invoice_number && form_add(&c->metadata, "outbox_id", a->invoice_number)) ||
		      (a->invoice_id && form_add(&c->metadata, "invoice_id", a->invoice_id));
	if (failed || charges_add(&s->charges, c) != 0) {
		charge_free(c);
		return NULL;
	}
	return c;
}

/* The request is valid and not a duplicate: faults, then the charge. */
static void execute(struct sim *s, const struct anet_ask *a, const char *ref,
		    struct api_reply *reply, struct ledger_request *entry)
{
	struct fault_request fr = {a->source, a->customer, a->invoice_id, a->invoice_number};
	struct fault fault = fault_choose(s, &fr, reply, entry);
	/* Authorize.Net itself never answers 429 or 409: these come from
	 * something in front of it (a rate limiter, a proxy), before it ran. */
	if (fault.kind == FAULT_429 || fault.kind == FAULT_409) {
		text_reply(reply, fault.kind == FAULT_429 ? 429 : 409,
			   fault.kind == FAULT_429 ? "Too Many Requests\n" : "Conflict\n");
		return;
	}
	if (fault.kind == FAULT_RESET_BEFORE) {
		reply->action = REPLY_RESET;
		return;
	}
	if (entry)
		entry->executed = true;
	if (fault.kind == FAULT_500_BEFORE) {
		text_reply(reply, 500, "Internal Server Error\n");
		return;
	}
	int code = 0, reason = 0;
	const char *text = "";
	struct charge *c = transact(s, a, &code, &reason, &text);
	if (!c) {
		text_reply(reply, 500, "out of memory\n");
		return;
	}
	snprintf(reply->charge_id, sizeof(reply->charge_id), "%s", c->id);
	if (entry)
		snprintf(entry->charge_id, sizeof(entry->charge_id), "%s", c->id);
	answer(reply, ref, code, c, reason, text);
	if (fault.kind == FAULT_500_AFTER) {
		text_reply(reply, 500, "Internal Server Error\n");
	} else if (fault.kind == FAULT_HUGE_AFTER) {
		pad_body(reply, HUGE_BODY_LEN);
	} else if (fault.kind == FAULT_DUPLICATE_AFTER) {
		/* as if this were a re-send of an earlier, identical request */
		answer(reply, ref, 3, c, 11, "A duplicate transaction has been submitted.");
	} else {
		fault_after(&fault, c, reply);
	}
}

void anet_create_transaction(struct sim *s, struct api_request *req, const cJSON *call,
			     const char *ref_id, struct api_reply *reply,
			     struct ledger_request *entry)
{
	(void)req;
	const cJSON *tr = get(call, "transactionRequest");
	const char *type = anet_str(tr, "transactionType");
	struct anet_ask a;
	read_ask(tr, &a);
	note(&a, entry);
	if (!type || strcmp(type, "authCaptureTransaction") != 0) {
		answer(reply, ref_id, 3, NULL, 3, "The transaction type is not supported here.");
	} else if (a.amount <= 0) {
		answer(reply, ref_id, 3, NULL, 5, "A valid amount is required.");
	} else if (a.currency && strcmp(a.currency, "USD") != 0) {
		answer(reply, ref_id, 3, NULL, 39,
		       "The supplied currency code is either invalid, not supported, not allowed "
		       "for this merchant or doesn't have an exchange rate.");
	} else if (!a.source && !a.customer) {
		answer(reply, ref_id, 3, NULL, 33, "A payment method is required.");
	} else if (a.source && strcmp(a.source, "tok_invalidCard") == 0) {
		answer(reply, ref_id, 3, NULL, 6, "The credit card number is invalid.");
	} else if ((a.invoice_number && strlen(a.invoice_number) > 20) || a.window < 0 ||
		   a.window > WINDOW_MAX) {
		answer(reply, ref_id, 3, NULL, 33, "invoiceNumber or duplicateWindow is invalid.");
	} else {
		const struct charge *orig = duplicate_of(s, &a);
		if (!orig) {
			execute(s, &a, ref_id, reply, entry);
			return;
		}
		/* The original's id always; its approval code only if it
		 * was approved (Authorize.Net's duplicate answer). */
		struct charge shown = *orig;
		if (!charge_succeeded(orig))
			shown.auth_code[0] = '\0';
		if (entry)
			snprintf(entry->charge_id, sizeof(entry->charge_id), "%s", orig->id);
		answer(reply, ref_id, 3, &shown, 11, "A duplicate transaction has been submitted.");
	}
}
