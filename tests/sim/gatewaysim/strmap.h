/* strmap.h: a string-keyed hash table (open addressing), for the charge
 * index and the idempotency keys: a run of 100,000 charges must not make
 * each lookup a scan. Keys are borrowed from the values they index, so a
 * value must outlive its slot. No removal: the simulator only ever adds,
 * or forgets everything at once (strmap_clear). Not thread-safe. */
#ifndef GWS_STRMAP_H
#define GWS_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_slot {
	const char *key; /* NULL: empty slot */
	uint64_t hash;
	void *value;
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap; /* a power of two, or 0 */
	size_t count;
};

/* NULL when absent. */
void *strmap_get(const struct strmap *m, const char *key);
/* Add key -> value (key must not be present yet). 0, or -1 out of memory. */
int strmap_put(struct strmap *m, const char *key, void *value);
/* Forget every slot (the values belong to the caller). */
void strmap_clear(struct strmap *m);

#endif
