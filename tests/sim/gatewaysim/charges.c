/* charges.c: the charge store and the charge's two JSON shapes. */
#include "charges.h"

#include <stdlib.h>
#include <string.h>

struct charge *charge_new(void) { return calloc(1, sizeof(struct charge)); }

void charge_free(struct charge *c)
{
	if (!c)
		return;
	free(c->currency);
	free(c->customer);
	free(c->source);
	free(c->description);
	free(c->idempotency_key);
	free(c->invoice_number);
	form_free(&c->metadata);
	free(c);
}

int charges_add(struct charges *cs, struct charge *c)
{
	if (cs->count == cs->cap) {
		size_t cap = cs->cap ? cs->cap * 2 : 256;
		struct charge **items = realloc(cs->items, cap * sizeof(*items));
		if (!items)
			return -1;
		cs->items = items;
		cs->cap = cap;
	}
	if (strmap_put(&cs->by_id, c->id, c) != 0)
		return -1;
	c->index = cs->count;
	cs->items[cs->count++] = c;
	return 0;
}

struct charge *charges_find(const struct charges *cs, const char *id)
{
	return strmap_get(&cs->by_id, id);
}

void charges_clear(struct charges *cs)
{
	for (size_t i = 0; i < cs->count; i++)
		charge_free(cs->items[i]);
	free(cs->items);
	strmap_clear(&cs->by_id);
	cs->items = NULL;
	cs->count = cs->cap = 0;
}

static bool matches(const struct charge *c, const struct charge_query *q)
{
	if (c->forgotten)
		return false;
	if (q->customer && (!c->customer || strcmp(c->customer, q->customer) != 0))
		return false;
	return (!q->has_gt || c->created > q->gt) && (!q->has_gte || c->created >= q->gte) &&
	       (!q->has_lt || c->created < q->lt) && (!q->has_lte || c->created <= q->lte);
}

size_t charges_list(const struct charges *cs, const struct charge_query *q,
		    const struct charge **out, bool *has_more)
{
	size_t n = 0;
	size_t i = q->before < cs->count ? q->before : cs->count;
	*has_more = false;
	while (i-- > 0) {
		const struct charge *c = cs->items[i];
		if (!matches(c, q))
			continue;
		if (n == q->limit) {
			*has_more = true;
			break;
		}
		out[n++] = c;
	}
	return n;
}

/* cJSON_AddStringToObject with NULL as JSON null. */
static void add_string(cJSON *o, const char *name, const char *value)
{
	if (value)
		cJSON_AddStringToObject(o, name, value);
	else
		cJSON_AddNullToObject(o, name);
}

static cJSON *metadata_json(const struct charge *c)
{
	cJSON *m = cJSON_CreateObject();
	for (size_t i = 0; m && i < c->metadata.count; i++)
		cJSON_AddStringToObject(m, c->metadata.pairs[i].key, c->metadata.pairs[i].value);
	return m;
}

/* cJSON holds numbers as doubles: exact for the amounts (at most 8 digits)
 * and timestamps the simulator makes. */
cJSON *charge_api_json(const struct charge *c)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	bool ok = !c->declined;
	cJSON_AddStringToObject(o, "id", c->id);
	cJSON_AddStringToObject(o, "object", "charge");
	cJSON_AddNumberToObject(o, "amount", (double)c->amount);
	cJSON_AddNumberToObject(o, "amount_captured", ok ? (double)c->amount : 0);
	cJSON_AddNumberToObject(o, "amount_refunded", 0);
	cJSON_AddBoolToObject(o, "captured", ok);
	cJSON_AddNumberToObject(o, "created", (double)c->created);
	add_string(o, "currency", c->currency);
	add_string(o, "customer", c->customer);
	add_string(o, "description", c->description);
	add_string(o, "failure_code", c->declined ? c->failure_code : NULL);
	add_string(o, "failure_message", c->declined ? c->failure_message : NULL);
	cJSON_AddBoolToObject(o, "livemode", false);
	cJSON_AddItemToObject(o, "metadata", metadata_json(c));
	cJSON_AddBoolToObject(o, "paid", ok);
	cJSON_AddBoolToObject(o, "refunded", false);
	add_string(o, "source", c->source);
	cJSON_AddStringToObject(o, "status", ok ? "succeeded" : "failed");
	return o;
}

bool charge_succeeded(const struct charge *c)
{
	if (c->anet_status)
		return strcmp(c->anet_status, "capturedPendingSettlement") == 0 ||
		       strcmp(c->anet_status, "settledSuccessfully") == 0;
	return !c->declined;
}

cJSON *charge_ledger_json(const struct charge *c)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "id", c->id);
	cJSON_AddNumberToObject(o, "created", (double)c->created);
	cJSON_AddNumberToObject(o, "amount", (double)c->amount);
	add_string(o, "currency", c->currency);
	add_string(o, "customer", c->customer);
	add_string(o, "source", c->source);
	add_string(o, "description", c->description);
	/* a held (review) transaction moved no money yet: failed until approved */
	cJSON_AddStringToObject(o, "status", charge_succeeded(c) ? "succeeded" : "failed");
	if (c->anet_status)
		cJSON_AddStringToObject(o, "outcome", c->anet_status);
	else
		cJSON_AddStringToObject(o, "outcome", c->declined ? "declined" : "succeeded");
	add_string(o, "decline_code", c->declined ? c->decline_code : NULL);
	add_string(o, "idempotency_key", c->idempotency_key);
	cJSON_AddItemToObject(o, "metadata", metadata_json(c));
	cJSON_AddBoolToObject(o, "forgotten", c->forgotten);
	return o;
}
