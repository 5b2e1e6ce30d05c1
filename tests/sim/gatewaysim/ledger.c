/* ledger.c: request records and the ledger's JSON. */
#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ledger_request *ledger_open(struct ledger *l, double t_start, const char *method,
				   const char *path)
{
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct ledger_request **items = realloc(l->items, cap * sizeof(*items));
		if (!items)
			return NULL;
		l->items = items;
		l->cap = cap;
	}
	struct ledger_request *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->seq = l->count + 1;
	r->t_start = t_start;
	r->t_end = -1;
	ledger_set(&r->method, method);
	ledger_set(&r->path, path);
	l->items[l->count++] = r;
	return r;
}

struct ledger_request *ledger_get(const struct ledger *l, uint64_t seq)
{
	return seq >= 1 && seq <= l->count ? l->items[seq - 1] : NULL;
}

void ledger_set(char **field, const char *value)
{
	free(*field);
	*field = value ? strdup(value) : NULL;
}

static void request_free(struct ledger_request *r)
{
	free(r->method);
	free(r->path);
	free(r->idempotency_key);
	free(r->outbox_id);
	free(r->invoice_id);
	free(r->customer);
	free(r->source);
	free(r->currency);
	free(r->amount);
	free(r->operation);
	free(r);
}

void ledger_clear(struct ledger *l)
{
	for (size_t i = 0; i < l->count; i++)
		request_free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = l->cap = 0;
}

static void add_string(cJSON *o, const char *name, const char *value)
{
	if (value)
		cJSON_AddStringToObject(o, name, value);
	else
		cJSON_AddNullToObject(o, name);
}

/* Times as raw numbers with exactly six decimals: cJSON's %.17g would show
 * 1732600000.1234560013. We never call setlocale, so '.' is the point. */
static void add_time(cJSON *o, const char *name, double t)
{
	char buf[40];
	if (t < 0) {
		cJSON_AddNullToObject(o, name);
		return;
	}
	snprintf(buf, sizeof(buf), "%.6f", t);
	cJSON_AddRawToObject(o, name, buf);
}

/* An amount of digits only (at most 15: exact as a double) is a number;
 * anything else the client sent is kept as a string. */
static void add_amount(cJSON *o, const char *amount)
{
	size_t n = amount ? strlen(amount) : 0;
	bool digits = n > 0 && n <= 15;
	for (size_t i = 0; digits && i < n; i++)
		digits = amount[i] >= '0' && amount[i] <= '9';
	if (digits)
		cJSON_AddNumberToObject(o, "amount", strtod(amount, NULL));
	else
		add_string(o, "amount", amount);
}

static cJSON *request_json(const struct ledger_request *r)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "seq", (double)r->seq);
	add_time(o, "t_start", r->t_start);
	add_time(o, "t_end", r->t_end);
	add_string(o, "method", r->method);
	add_string(o, "path", r->path);
	add_string(o, "operation", r->operation);
	add_string(o, "idempotency_key", r->idempotency_key);
	add_string(o, "outbox_id", r->outbox_id);
	add_string(o, "invoice_id", r->invoice_id);
	add_amount(o, r->amount);
	add_string(o, "currency", r->currency);
	add_string(o, "customer", r->customer);
	add_string(o, "source", r->source);
	if (r->t_end < 0)
		cJSON_AddNullToObject(o, "status");
	else
		cJSON_AddNumberToObject(o, "status", r->status);
	cJSON_AddStringToObject(o, "fault", fault_name(r->fault.kind));
	if (r->fault.kind == FAULT_DELAY)
		cJSON_AddNumberToObject(o, "delay_s", r->fault.delay_s);
	cJSON_AddBoolToObject(o, "replayed", r->replayed);
	cJSON_AddBoolToObject(o, "executed", r->executed);
	add_string(o, "charge_id", r->charge_id[0] ? r->charge_id : NULL);
	return o;
}

struct buf {
	char *data;
	size_t len, cap;
	bool failed;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *data = realloc(b->data, cap);
		if (!data) {
			b->failed = true;
			return;
		}
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void buf_add_json(struct buf *b, cJSON *item, bool comma)
{
	char *text = item ? cJSON_PrintUnformatted(item) : NULL;
	cJSON_Delete(item);
	if (!text) {
		b->failed = true;
		return;
	}
	if (comma)
		buf_add(b, ",", 1);
	buf_add(b, text, strlen(text));
	cJSON_free(text);
}

char *ledger_render(const struct ledger *l, const struct charges *cs, size_t *len)
{
	struct buf b = {0};
	static const char head[] = "{\"requests\":[", middle[] = "],\"charges\":[", tail[] = "]}\n";
	buf_add(&b, head, sizeof(head) - 1);
	for (size_t i = 0; i < l->count && !b.failed; i++)
		buf_add_json(&b, request_json(l->items[i]), i > 0);
	buf_add(&b, middle, sizeof(middle) - 1);
	for (size_t i = 0; i < cs->count && !b.failed; i++)
		buf_add_json(&b, charge_ledger_json(cs->items[i]), i > 0);
	buf_add(&b, tail, sizeof(tail) - 1);
	if (b.failed) {
		free(b.data);
		return NULL;
	}
	*len = b.len;
	return b.data;
}
