/* json_get.c: strict reads of untrusted JSON. */
#include "json_get.h"

#include "utf8.h"

#include <math.h>
#include <string.h>
#include <strings.h>

/* JSON is UTF-8 text (RFC 8259). cJSON checks neither, and ends its strings
 * at a NUL, so "succeeded\0..." or "succeeded\u0000..." would read as
 * "succeeded": a body with a NUL (raw or escaped) or bytes that are not
 * UTF-8 is not an answer. Bounded by len: the body need not end in a NUL. */
static bool json_text_ok(const char *body, size_t len)
{
	for (size_t i = 0; i < len;) {
		char c[5] = {0};
		memcpy(c, body + i, len - i < 4 ? len - i : 4);
		if (c[0] == '\0')
			return false;
		if (c[0] == '\\' && i + 5 < len && memcmp(body + i + 1, "u0000", 5) == 0)
			return false;
		size_t n = c[0] == '\\' ? 2 : utf8_char_len(c); /* an escape: skip the escaped byte */
		if (n == 0 || (c[0] == '\\' && (unsigned char)c[1] >= 0x80))
			return false;
		i += n;
	}
	return true;
}

cJSON *json_parse_object(const char *body, size_t len)
{
	if (!body || len == 0 || !json_text_ok(body, len))
		return NULL;
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
	if (!root)
		return NULL;
	for (const char *p = end; p && p < body + len; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			cJSON_Delete(root); /* trailing garbage: not one object */
			return NULL;
		}
	}
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

const cJSON *json_unique(const cJSON *obj, const char *key)
{
	const cJSON *found = NULL;
	int named = 0;
	for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next) {
		if (c->string && strcasecmp(c->string, key) == 0) {
			/* a duplicate, or the name again in another case (which a
			 * case-blind reader, cJSON's own getter among them, would
			 * take): ambiguous */
			if (++named > 1)
				return NULL;
			if (strcmp(c->string, key) == 0)
				found = c;
		}
	}
	return found;
}

const char *json_string(const cJSON *obj, const char *key)
{
	const cJSON *v = json_unique(obj, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Members named key in any case. */
static int count_named(const cJSON *obj, const char *key)
{
	int named = 0;
	for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next)
		named += c->string && strcasecmp(c->string, key) == 0;
	return named;
}

enum json_member json_member_string(const cJSON *obj, const char *key, const char **out)
{
	int named = count_named(obj, key);
	*out = json_string(obj, key);
	if (named == 0)
		return JSON_MISSING;
	return named == 1 && *out ? JSON_FOUND : JSON_UNCLEAR;
}

enum json_member json_member_object(const cJSON *obj, const char *key, const cJSON **out)
{
	int named = count_named(obj, key);
	const cJSON *v = json_unique(obj, key);
	*out = cJSON_IsObject(v) ? v : NULL;
	if (named == 0)
		return JSON_MISSING;
	return named == 1 && *out ? JSON_FOUND : JSON_UNCLEAR;
}

bool json_int64(const cJSON *obj, const char *key, int64_t *out)
{
	const cJSON *v = json_unique(obj, key);
	if (!cJSON_IsNumber(v))
		return false;
	double d = v->valuedouble; /* valueint is clamped to INT_MAX */
	if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0)
		return false;
	*out = (int64_t)d;
	return true;
}

bool json_is_true(const cJSON *obj, const char *key)
{
	return cJSON_IsTrue(json_unique(obj, key));
}
