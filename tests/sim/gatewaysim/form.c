/* form.c: urlencoded decoding and canonical encoding. */
#include "form.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode s[0..len-1] into a fresh string; NULL with why on error. */
static char *decode(const char *s, size_t len, const char *what, char *why, size_t whylen)
{
	char *out = malloc(len + 1);
	if (!out) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi = i + 1 < len ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				snprintf(why, whylen, "invalid %%-escape in a parameter %s", what);
				free(out);
				return NULL;
			}
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0') {
			snprintf(why, whylen, "a parameter %s holds a NUL byte", what);
			free(out);
			return NULL;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return out;
}

int form_add(struct form *f, const char *key, const char *value)
{
	if (f->count == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 4; /* metadata: usually two pairs */
		struct form_pair *p = realloc(f->pairs, cap * sizeof(*p));
		if (!p)
			return -1;
		f->pairs = p;
		f->cap = cap;
	}
	char *k = strdup(key), *v = strdup(value);
	if (!k || !v) {
		free(k);
		free(v);
		return -1;
	}
	f->pairs[f->count++] = (struct form_pair){k, v};
	return 0;
}

int form_parse(struct form *f, const char *body, size_t len, char *why, size_t whylen)
{
	size_t i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && body[end] != '&')
			end++;
		if (end > i) { /* "a=1&&b=2": empty pieces carry nothing */
			size_t eq = i;
			while (eq < end && body[eq] != '=')
				eq++;
			if (eq == i) {
				snprintf(why, whylen, "a parameter has an empty name");
				return -1;
			}
			char *k = decode(body + i, eq - i, "name", why, whylen);
			if (!k)
				return -1;
			/* "name" alone, without '=', is an empty value, as in browsers. */
			char *v = eq < end ? decode(body + eq + 1, end - eq - 1, "value", why, whylen)
					   : strdup("");
			if (!v) {
				if (eq >= end)
					snprintf(why, whylen, "out of memory");
				free(k);
				return -1;
			}
			if (!k[0]) {
				snprintf(why, whylen, "a parameter has an empty name");
				free(k);
				free(v);
				return -1;
			}
			int rc = form_add(f, k, v);
			free(k);
			free(v);
			if (rc != 0) {
				snprintf(why, whylen, "out of memory");
				return -1;
			}
		}
		i = end + 1;
	}
	return 0;
}

const char *form_get(const struct form *f, const char *key)
{
	for (size_t i = 0; i < f->count; i++)
		if (strcmp(f->pairs[i].key, key) == 0)
			return f->pairs[i].value;
	return NULL;
}

size_t form_count(const struct form *f, const char *key)
{
	size_t n = 0;
	for (size_t i = 0; i < f->count; i++)
		n += strcmp(f->pairs[i].key, key) == 0;
	return n;
}

static int pair_cmp(const void *a, const void *b)
{
	const struct form_pair *x = *(const struct form_pair *const *)a;
	const struct form_pair *y = *(const struct form_pair *const *)b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->value, y->value);
}

static bool unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static size_t encoded_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += unreserved((unsigned char)*s) ? 1 : 3;
	return n;
}

static char *encode_into(char *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (unreserved(c)) {
			*out++ = (char)c;
		} else {
			*out++ = '%';
			*out++ = hex[c >> 4];
			*out++ = hex[c & 15];
		}
	}
	return out;
}

char *form_canonical(const struct form *f)
{
	const struct form_pair **sorted = malloc((f->count ? f->count : 1) * sizeof(*sorted));
	if (!sorted)
		return NULL;
	size_t total = 1;
	for (size_t i = 0; i < f->count; i++) {
		sorted[i] = &f->pairs[i];
		total += encoded_len(f->pairs[i].key) + encoded_len(f->pairs[i].value) + 2;
	}
	qsort(sorted, f->count, sizeof(*sorted), pair_cmp);
	char *out = malloc(total);
	if (out) {
		char *p = out;
		for (size_t i = 0; i < f->count; i++) {
			if (i)
				*p++ = '&';
			p = encode_into(p, sorted[i]->key);
			*p++ = '=';
			p = encode_into(p, sorted[i]->value);
		}
		*p = '\0';
	}
	free(sorted);
	return out;
}

void form_free(struct form *f)
{
	for (size_t i = 0; i < f->count; i++) {
		free(f->pairs[i].key);
		free(f->pairs[i].value);
	}
	free(f->pairs);
	f->pairs = NULL;
	f->count = f->cap = 0;
}
