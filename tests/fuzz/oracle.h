/* oracle.h: the harnesses' own reading of a JSON answer, written apart from
 * relay/json_get.c so that a property is checked against an independent
 * reading: a body that is not exactly one JSON object, or a member that is
 * not there exactly once, can never back a decisive verdict. */
#ifndef CG_FUZZ_ORACLE_H
#define CG_FUZZ_ORACLE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The body (after an optional UTF-8 byte order mark when bom) as one JSON
 * object followed by nothing but JSON blanks; NULL otherwise. */
static inline cJSON *oracle_object(const char *body, size_t len, bool bom)
{
	if (bom && len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) {
		body += 3;
		len -= 3;
	}
	const char *end = NULL;
	cJSON *root = len ? cJSON_ParseWithLengthOpts(body, len, &end, false) : NULL;
	if (!cJSON_IsObject(root) || !end) {
		cJSON_Delete(root);
		return NULL;
	}
	for (; end < body + len; end++)
		if (!strchr(" \t\r\n", *end) || !*end) {
			cJSON_Delete(root);
			return NULL;
		}
	return root;
}

/* obj[key] when the key (exact spelling) appears exactly once, else NULL. */
static inline const cJSON *oracle_only(const cJSON *obj, const char *key)
{
	const cJSON *found = NULL;
	int n = 0;
	for (const cJSON *c = cJSON_IsObject(obj) ? obj->child : NULL; c; c = c->next)
		if (c->string && strcmp(c->string, key) == 0)
			n++, found = c;
	return n == 1 ? found : NULL;
}

/* obj[key] is there exactly once and is the string want. */
static inline bool oracle_string_is(const cJSON *obj, const char *key, const char *want)
{
	const cJSON *v = oracle_only(obj, key);
	return cJSON_IsString(v) && strcmp(v->valuestring, want) == 0;
}

/* The string obj[key] (there exactly once), or NULL. */
static inline const char *oracle_string(const cJSON *obj, const char *key)
{
	const cJSON *v = oracle_only(obj, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The text up to the first '\n' of data (the harness's header line) and
 * what follows; false when there is no '\n' or the line is too long. */
static inline bool fuzz_split_line(const char *data, size_t size, char *line, size_t cap,
				   const char **rest, size_t *rest_len)
{
	const char *nl = memchr(data, '\n', size);
	size_t n = nl ? (size_t)(nl - data) : 0;
	if (!nl || n >= cap)
		return false;
	memcpy(line, data, n);
	line[n] = '\0';
	*rest = nl + 1;
	*rest_len = size - n - 1;
	return true;
}

/* "STATUS\nBODY": an HTTP status of 1 to 3 digits on the first line, the
 * body after it; false when the input does not start that way. */
static inline bool fuzz_split_status(const uint8_t *data, size_t size, long *status,
				     const char **body, size_t *len)
{
	char line[8];
	if (!fuzz_split_line((const char *)data, size, line, sizeof(line), body, len) ||
	    !line[0] || strspn(line, "0123456789") != strlen(line) || strlen(line) > 3)
		return false;
	*status = strtol(line, NULL, 10);
	return true;
}

#endif
