/* json_get.c: strict reads of untrusted JSON. */
#include "json_get.h"

#include <math.h>
#include <string.h>
#include <strings.h>

cJSON *json_parse_object(const char *body, size_t len)
{
	if (!body || len == 0)
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
	for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next) {
		if (c->string && strcmp(c->string, key) == 0) {
			if (found)
				return NULL; /* duplicate: ambiguous */
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

enum json_member json_member_string(const cJSON *obj, const char *key, const char **out)
{
	int named = 0;
	for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next)
		named += c->string && strcasecmp(c->string, key) == 0;
	*out = json_string(obj, key);
	if (named == 0)
		return JSON_MISSING;
	return named == 1 && *out ? JSON_STRING : JSON_UNCLEAR;
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
