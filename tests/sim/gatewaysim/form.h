/* form.h: application/x-www-form-urlencoded parameters (Stripe's request
 * format), and their canonical form, which the idempotency layer compares:
 * the same parameters in another order are the same request. */
#ifndef GWS_FORM_H
#define GWS_FORM_H

#include <stddef.h>

struct form_pair {
	char *key;   /* decoded, owned */
	char *value; /* decoded, owned */
};

struct form {
	struct form_pair *pairs;
	size_t count, cap;
};

/* Decode body (not NUL-terminated) into f, which starts zeroed. 0, or -1
 * with why naming the problem: a bad %-escape, an empty name, a NUL byte
 * (the simulator keeps parameters as C strings), or out of memory. */
int form_parse(struct form *f, const char *body, size_t len, char *why, size_t whylen);
/* Append a copy of key = value. 0, or -1 out of memory. */
int form_add(struct form *f, const char *key, const char *value);
/* The first value of key, or NULL. */
const char *form_get(const struct form *f, const char *key);
/* How many pairs carry key. */
size_t form_count(const struct form *f, const char *key);
/* Pairs sorted by name then value, %-encoded, joined by '&' (malloc'd;
 * NULL out of memory). Two forms are the same parameters exactly when
 * their canonical strings are equal. */
char *form_canonical(const struct form *f);
void form_free(struct form *f);

#endif
