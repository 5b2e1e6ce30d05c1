/* idem.c: the idempotency key table. */
#include "idem.h"

#include <stdlib.h>
#include <string.h>

struct idem_entry *idem_find(const struct idem *s, const char *key)
{
	return strmap_get(&s->by_key, key);
}

static void entry_free(struct idem_entry *e)
{
	if (!e)
		return;
	free(e->key);
	free(e->params);
	free(e->body);
	free(e);
}

struct idem_entry *idem_add(struct idem *s, const char *key, const char *params,
			    uint64_t owner_seq)
{
	if (s->count == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct idem_entry **items = realloc(s->items, cap * sizeof(*items));
		if (!items)
			return NULL;
		s->items = items;
		s->cap = cap;
	}
	struct idem_entry *e = calloc(1, sizeof(*e));
	if (!e || !(e->key = strdup(key)) || !(e->params = strdup(params)) ||
	    strmap_put(&s->by_key, e->key, e) != 0) {
		entry_free(e);
		return NULL;
	}
	e->executing = true;
	e->owner_seq = owner_seq;
	s->items[s->count++] = e;
	return e;
}

int idem_store(struct idem_entry *e, int status, const char *content_type, const char *body,
	       size_t body_len)
{
	char *copy = malloc(body_len + 1);
	if (!copy)
		return -1;
	memcpy(copy, body, body_len);
	copy[body_len] = '\0';
	free(e->body);
	e->body = copy;
	e->body_len = body_len;
	e->status = status;
	e->content_type = content_type;
	return 0;
}

void idem_clear(struct idem *s)
{
	for (size_t i = 0; i < s->count; i++)
		entry_free(s->items[i]);
	free(s->items);
	strmap_clear(&s->by_key);
	s->items = NULL;
	s->count = s->cap = 0;
}
