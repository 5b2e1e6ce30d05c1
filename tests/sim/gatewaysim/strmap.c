/* strmap.c: open addressing with linear probing, FNV-1a, at most half full. */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_of(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	if (m->cap == 0)
		return NULL;
	uint64_t h = hash_of(key);
	for (size_t i = (size_t)h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		const struct strmap_slot *s = &m->slots[i];
		if (!s->key)
			return NULL;
		if (s->hash == h && strcmp(s->key, key) == 0)
			return s->value;
	}
}

static void place(struct strmap_slot *slots, size_t cap, const struct strmap_slot *from)
{
	size_t i = (size_t)from->hash & (cap - 1);
	while (slots[i].key)
		i = (i + 1) & (cap - 1);
	slots[i] = *from;
}

static int grow(struct strmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	struct strmap_slot *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -1;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key)
			place(slots, cap, &m->slots[i]);
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

int strmap_put(struct strmap *m, const char *key, void *value)
{
	/* Keep the table at most half full: probes stay short. */
	if ((m->count + 1) * 2 > m->cap && grow(m) != 0)
		return -1;
	struct strmap_slot s = {key, hash_of(key), value};
	place(m->slots, m->cap, &s);
	m->count++;
	return 0;
}

void strmap_clear(struct strmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->count = 0;
}
