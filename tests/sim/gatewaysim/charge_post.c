/* charge_post.c: POST /v1/charges: validation, idempotency, faults, and
 * the charge itself (tests/sim/README.md; Stripe's rules where it is
 * silent). Runs with the simulator's lock held. */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_MAX 255          /* Stripe: idempotency keys up to 255 characters */
#define AMOUNT_MAX 99999999  /* Stripe: at most eight digits */
#define METADATA_MAX_KEYS 50 /* Stripe's metadata limits */
#define METADATA_KEY_MAX 40
#define METADATA_VALUE_MAX 500

/* Stripe charge parameters we accept and ignore (so a client sending them
 * is not refused), beside the ones the simulator uses. */
static const char *const ignored_params[] = {
	"capture", "receipt_email", "statement_descriptor", "statement_descriptor_suffix",
	"expand[]", NULL,
};

/* Test tokens that decline (Stripe's, with Stripe's codes and messages). */
static const struct decline {
	const char *source, *code, *decline_code, *message;
} declines[] = {
	{"tok_chargeDeclined", "card_declined", "generic_decline", "Your card was declined."},
	{"tok_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds",
	 "Your card has insufficient funds."},
	{"tok_chargeDeclinedExpiredCard", "expired_card", "expired_card", "Your card has expired."},
};

const char sim_html_page[] =
	"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
	"<body><h1>Bad Gateway</h1><p>The upstream server sent an invalid response.</p>"
	"</body></html>\n";

/* A form value, with "" as absent: Stripe reads an empty value as unset. */
static const char *param(const struct form *f, const char *name)
{
	const char *v = form_get(f, name);
	return v && *v ? v : NULL;
}

static bool is_metadata(const char *name, const char **key, size_t *keylen)
{
	size_t n = strlen(name);
	if (strncmp(name, "metadata[", 9) != 0 || n < 11 || name[n - 1] != ']')
		return false;
	*key = name + 9;
	*keylen = n - 10;
	return true;
}

/* Unknown or repeated parameters, metadata limits. 0, or -1 with the reply set. */
static int check_names(const struct form *f, struct api_reply *reply)
{
	size_t metadata = 0;
	for (size_t i = 0; i < f->count; i++) {
		const char *name = f->pairs[i].key;
		const char *mkey;
		size_t mlen;
		bool known = strcmp(name, "amount") == 0 || strcmp(name, "currency") == 0 ||
			     strcmp(name, "customer") == 0 || strcmp(name, "source") == 0 ||
			     strcmp(name, "description") == 0;
		for (size_t j = 0; !known && ignored_params[j]; j++)
			known = strcmp(name, ignored_params[j]) == 0;
		if (is_metadata(name, &mkey, &mlen)) {
			if (memchr(mkey, '[', mlen) || memchr(mkey, ']', mlen)) {
				reply_error(reply, 400, "invalid_request_error", NULL, name,
					    "Invalid metadata key: %.80s (nested keys are not "
					    "supported).", name);
				return -1;
			}
			if (mlen > METADATA_KEY_MAX) {
				reply_error(reply, 400, "invalid_request_error", NULL, name,
					    "Metadata keys can have up to %d characters.",
					    METADATA_KEY_MAX);
				return -1;
			}
			if (strlen(f->pairs[i].value) > METADATA_VALUE_MAX) {
				reply_error(reply, 400, "invalid_request_error", NULL, name,
					    "Metadata values can have up to %d characters.",
					    METADATA_VALUE_MAX);
				return -1;
			}
			if (++metadata > METADATA_MAX_KEYS) {
				reply_error(reply, 400, "invalid_request_error", NULL, "metadata",
					    "Metadata can have up to %d keys.", METADATA_MAX_KEYS);
				return -1;
			}
			known = true;
		}
		if (!known) {
			reply_error(reply, 400, "invalid_request_error", "parameter_unknown", name,
				    "Received unknown parameter: %.200s", name);
			return -1;
		}
		if (strcmp(name, "expand[]") != 0 && form_count(f, name) > 1) {
			reply_error(reply, 400, "invalid_request_error", NULL, name,
				    "Parameter %.200s was given more than once.", name);
			return -1;
		}
	}
	return 0;
}

/* tests/sim/README.md's validation. 0, or -1 with a 400 in reply. */
static int validate(const struct form *f, struct api_reply *reply, int64_t *amount)
{
	if (check_names(f, reply) != 0)
		return -1;
	const char *a = param(f, "amount"), *cur = param(f, "currency");
	if (!a) {
		reply_error(reply, 400, "invalid_request_error", "parameter_missing", "amount",
			    "Missing required param: amount.");
		return -1;
	}
	size_t n = strlen(a);
	bool digits = n <= 15;
	for (size_t i = 0; digits && i < n; i++)
		digits = a[i] >= '0' && a[i] <= '9';
	if (!digits) {
		reply_error(reply, 400, "invalid_request_error", NULL, "amount",
			    "Invalid positive integer: amount must be a whole number of the "
			    "currency's smallest unit (got '%.40s').", a);
		return -1;
	}
	*amount = strtoll(a, NULL, 10);
	if (*amount < 1) {
		reply_error(reply, 400, "invalid_request_error", NULL, "amount",
			    "Invalid positive integer: amount must be at least 1.");
		return -1;
	}
	if (*amount > AMOUNT_MAX) {
		reply_error(reply, 400, "invalid_request_error", "amount_too_large", "amount",
			    "Amount must be no more than %d.", AMOUNT_MAX);
		return -1;
	}
	if (!cur) {
		reply_error(reply, 400, "invalid_request_error", "parameter_missing", "currency",
			    "Missing required param: currency.");
		return -1;
	}
	bool iso = strlen(cur) == 3;
	for (int i = 0; iso && i < 3; i++)
		iso = cur[i] >= 'a' && cur[i] <= 'z';
	if (!iso) {
		reply_error(reply, 400, "invalid_request_error", NULL, "currency",
			    "Invalid currency: %.40s. Currencies are three lower-case letters "
			    "(ISO 4217, e.g. usd).", cur);
		return -1;
	}
	if (!param(f, "customer") && !param(f, "source")) {
		reply_error(reply, 400, "invalid_request_error", "parameter_missing", "source",
			    "Must provide source or customer.");
		return -1;
	}
	return 0;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Make (or decline) the charge; NULL out of memory. */
static struct charge *make_charge(struct sim *s, const struct form *f, int64_t amount,
				  const char *key)
{
	struct charge *c = charge_new();
	if (!c)
		return NULL;
	memcpy(c->id, "ch_", 3);
	do
		rng_alnum(&s->rng, c->id + 3, CHARGE_ID_LEN - 3);
	while (charges_find(&s->charges, c->id));
	c->created = (int64_t)time(NULL);
	c->amount = amount;
	c->currency = dup_or_null(param(f, "currency"));
	c->customer = dup_or_null(param(f, "customer"));
	c->source = dup_or_null(param(f, "source"));
	c->description = dup_or_null(param(f, "description"));
	c->idempotency_key = dup_or_null(key);
	bool failed = !c->currency || (param(f, "customer") && !c->customer) ||
		      (param(f, "source") && !c->source) ||
		      (param(f, "description") && !c->description) || (key && !c->idempotency_key);
	for (size_t i = 0; !failed && i < f->count; i++) {
		const char *mkey;
		size_t mlen;
		char name[METADATA_KEY_MAX + 1];
		if (!is_metadata(f->pairs[i].key, &mkey, &mlen) || !*f->pairs[i].value)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)mlen, mkey);
		failed = form_add(&c->metadata, name, f->pairs[i].value) != 0;
	}
	for (size_t i = 0; c->source && i < sizeof(declines) / sizeof(declines[0]); i++) {
		if (strcmp(c->source, declines[i].source) == 0) {
			c->declined = true;
			c->failure_code = declines[i].code;
			c->decline_code = declines[i].decline_code;
			c->failure_message = declines[i].message;
		}
	}
	if (failed || charges_add(&s->charges, c) != 0) {
		charge_free(c);
		return NULL;
	}
	return c;
}

/* The answer an executed charge gets without faults: 200 or 402. */
static void normal_answer(const struct charge *c, struct api_reply *reply)
{
	if (!c->declined) {
		reply_json(reply, 200, charge_api_json(c));
		return;
	}
	cJSON *root = error_object("card_error", c->failure_code, NULL, c->failure_message);
	cJSON *e = root ? cJSON_GetObjectItemCaseSensitive(root, "error") : NULL;
	if (e) {
		cJSON_AddStringToObject(e, "decline_code", c->decline_code);
		cJSON_AddStringToObject(e, "charge", c->id);
	}
	reply_json(reply, 402, root);
}

static void api_error_500(struct api_reply *reply)
{
	reply_error(reply, 500, "api_error", NULL, NULL,
		    "An unknown error occurred. Please try again later.");
}

struct fault fault_choose(struct sim *s, const struct fault_request *fr,
			  struct api_reply *reply, struct ledger_request *entry)
{
	struct fault fault = {FAULT_NONE, 0};
	if (!fault_rules_pick(&s->rules, fr, &s->rng, &fault))
		fault_rules_pick(&s->flags, fr, &s->rng, &fault);
	reply->fault = fault;
	if (entry)
		entry->fault = fault;
	return fault;
}

void fault_after(const struct fault *fault, struct charge *c, struct api_reply *reply)
{
	switch (fault->kind) {
	case FAULT_RESET_AFTER:
		reply->action = REPLY_RESET;
		break;
	case FAULT_CLOSE_MID_BODY:
		reply->action = REPLY_CLOSE_MID_BODY;
		break;
	case FAULT_CHUNKED_CUT_AFTER:
		reply->action = REPLY_CHUNKED_CUT;
		break;
	case FAULT_DELAY:
		reply->wait_s += fault->delay_s;
		break;
	case FAULT_NONJSON_AFTER: {
		char *page = strdup(sim_html_page);
		reply_set(reply, 200, CT_HTML, page, page ? strlen(page) : 0);
		break;
	}
	case FAULT_FORGET_AFTER:
		c->forgotten = true;
		break;
	default:
		break;
	}
}

void pad_body(struct api_reply *reply, size_t len)
{
	if (!reply->body || reply->body_len >= len)
		return;
	char *b = realloc(reply->body, len + 1);
	if (!b)
		return;
	memset(b + reply->body_len, ' ', len - 1 - reply->body_len);
	b[len - 1] = '\n';
	b[len] = '\0';
	reply->body = b;
	reply->body_len = len;
}

/* Replay the stored answer: same status, same bytes, nothing else happens. */
static void replay(const struct idem_entry *e, struct api_reply *reply,
		   struct ledger_request *entry)
{
	char *copy = malloc(e->body_len + 1);
	if (!copy) {
		api_error_500(reply);
		return;
	}
	memcpy(copy, e->body, e->body_len);
	copy[e->body_len] = '\0';
	reply_set(reply, e->status, e->content_type, copy, e->body_len);
	reply->replayed = true;
	snprintf(reply->original_request, sizeof(reply->original_request), "%s", e->request_id);
	snprintf(reply->charge_id, sizeof(reply->charge_id), "%s", e->charge_id);
	if (entry) {
		entry->replayed = true;
		snprintf(entry->charge_id, sizeof(entry->charge_id), "%s", e->charge_id);
	}
}

/* Execute: choose a fault, charge (or not), set the reply and the answer
 * stored for the key. */
static void execute(struct sim *s, struct api_request *req, const struct form *f,
		    int64_t amount, const char *canonical, struct api_reply *reply,
		    struct ledger_request *entry)
{
	const char *key = req->idempotency_key;
	struct fault_request fr = {param(f, "source"), param(f, "customer"),
				   param(f, "metadata[invoice_id]"),
				   param(f, "metadata[outbox_id]")};
	struct fault fault = fault_choose(s, &fr, reply, entry);

	/* Refused before executing: nothing stored, nothing charged. */
	if (fault.kind == FAULT_429) {
		reply_error(reply, 429, "rate_limit_error", "rate_limit", NULL,
			    "Too many requests hit the API too quickly. We recommend an "
			    "exponential backoff of your requests.");
		return;
	}
	if (fault.kind == FAULT_RESET_BEFORE) {
		reply->action = REPLY_RESET;
		return;
	}
	/* The answer Stripe gives a request whose key another one is using,
	 * without there being one: the client cannot tell the two apart. */
	if (fault.kind == FAULT_409) {
		reply_error(reply, 409, "idempotency_error", "idempotency_key_in_use", NULL,
			    "There is currently another in-progress request using this "
			    "Idempotency-Key (another request with the same key is in progress): "
			    "%s. Try again later.", key ? key : "(none)");
		return;
	}

	struct idem_entry *e = NULL;
	if (key) {
		e = idem_add(&s->idem, key, canonical, req->seq);
		if (!e) {
			sim_log(LOG_LEVEL_ERROR, "out of memory storing idempotency key %s", key);
			api_error_500(reply);
			return;
		}
		req->holds_key = true;
		snprintf(e->request_id, sizeof(e->request_id), "%s", reply->request_id);
	}
	if (entry)
		entry->executed = true;

	if (fault.kind == FAULT_500_BEFORE) {
		api_error_500(reply);
	} else {
		struct charge *c = make_charge(s, f, amount, key);
		if (!c) {
			sim_log(LOG_LEVEL_ERROR, "out of memory making a charge");
			api_error_500(reply);
		} else {
			snprintf(reply->charge_id, sizeof(reply->charge_id), "%s", c->id);
			if (entry)
				snprintf(entry->charge_id, sizeof(entry->charge_id), "%s", c->id);
			if (e)
				snprintf(e->charge_id, sizeof(e->charge_id), "%s", c->id);
			normal_answer(c, reply);
			if (fault.kind == FAULT_500_AFTER) {
				api_error_500(reply);
			} else if (fault.kind == FAULT_HUGE_AFTER) {
				reply_json(reply, 200, charge_api_json(c));
				pad_body(reply, HUGE_BODY_LEN);
			} else {
				fault_after(&fault, c, reply);
			}
		}
	}
	/* What a retry with the key gets: the answer (for resets and cut
	 * bodies, the answer the client never saw whole). */
	if (e && idem_store(e, reply->status, reply->content_type, reply->body ? reply->body : "",
			    reply->body_len) != 0)
		sim_log(LOG_LEVEL_ERROR, "out of memory storing the answer for key %s", key);
}

void charge_post(struct sim *s, struct api_request *req, struct api_reply *reply,
		 struct ledger_request *entry)
{
	const char *key = req->idempotency_key;
	struct form f = {0};
	char why[256];
	char *canonical = NULL;
	int64_t amount = 0;

	if (key && (!*key || strlen(key) > KEY_MAX)) {
		reply_error(reply, 400, "invalid_request_error", NULL, NULL,
			    "Idempotency-Key must be 1 to %d characters long.", KEY_MAX);
		goto done;
	}
	if (req->body_too_large) {
		reply_error(reply, 413, "invalid_request_error", NULL, NULL,
			    "The request body is larger than %d bytes.", API_MAX_BODY);
		goto done;
	}
	if (form_parse(&f, req->body ? req->body : "", req->body_len, why, sizeof(why)) != 0) {
		reply_error(reply, 400, "invalid_request_error", NULL, NULL,
			    "Invalid request body (expected application/x-www-form-urlencoded): %s.",
			    why);
		goto done;
	}
	if (validate(&f, reply, &amount) != 0)
		goto done;
	if (!(canonical = form_canonical(&f))) {
		api_error_500(reply);
		goto done;
	}

	struct idem_entry *e = key ? idem_find(&s->idem, key) : NULL;
	if (e && e->executing) {
		reply_error(reply, 409, "idempotency_error", "idempotency_key_in_use", NULL,
			    "There is currently another in-progress request using this "
			    "Idempotency-Key (another request with the same key is in progress): "
			    "%s. Try again later.", key);
	} else if (e && strcmp(e->params, canonical) != 0) {
		reply_error(reply, 400, "idempotency_error", NULL, NULL,
			    "Keys for idempotent requests can only be used with the same "
			    "parameters they were first used with. Try using a key other than "
			    "'%s' if you meant to execute a different request.", key);
	} else if (e) {
		replay(e, reply, entry);
	} else {
		execute(s, req, &f, amount, canonical, reply, entry);
	}
done:
	free(canonical);
	form_free(&f);
}

void charge_note(const struct api_request *req, struct ledger_request *entry)
{
	struct form f = {0};
	char why[256];
	if (req->body_too_large ||
	    form_parse(&f, req->body ? req->body : "", req->body_len, why, sizeof(why)) != 0) {
		form_free(&f);
		return;
	}
	ledger_set(&entry->amount, param(&f, "amount"));
	ledger_set(&entry->currency, param(&f, "currency"));
	ledger_set(&entry->customer, param(&f, "customer"));
	ledger_set(&entry->source, param(&f, "source"));
	ledger_set(&entry->invoice_id, param(&f, "metadata[invoice_id]"));
	ledger_set(&entry->outbox_id, param(&f, "metadata[outbox_id]"));
	form_free(&f);
}
