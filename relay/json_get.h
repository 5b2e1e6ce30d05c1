/* json_get.h: strict reads of untrusted JSON (gateway answers). cJSON's own
 * getters ignore key case and take the first of duplicate keys; here a key
 * must appear exactly once, spelled exactly, with the expected type, or it
 * counts as absent, so ambiguous input classifies as unknown. */
#ifndef RELAY_JSON_GET_H
#define RELAY_JSON_GET_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The body parsed as one JSON object with nothing after it but blanks;
 * NULL also when the body holds a NUL (raw or as \u0000) or bytes that are
 * not UTF-8. */
cJSON *json_parse_object(const char *body, size_t len);
/* obj[key] if it appears exactly once, spelled exactly, and in no other
 * case either ("Status" beside "status"), else NULL. */
const cJSON *json_unique(const cJSON *obj, const char *key);
/* A string member, or NULL. */
const char *json_string(const cJSON *obj, const char *key);
/* A member whose mere presence matters: absent (no member of that name,
 * in any case), found (exactly one, spelled exactly, of the expected type:
 * *out), or unclear (a duplicate, another type, another case). */
enum json_member { JSON_MISSING, JSON_FOUND, JSON_UNCLEAR };
enum json_member json_member_string(const cJSON *obj, const char *key, const char **out);
enum json_member json_member_object(const cJSON *obj, const char *key, const cJSON **out);
/* An integral number member within +-2^53, or false. */
bool json_int64(const cJSON *obj, const char *key, int64_t *out);
/* A member that is literally true. */
bool json_is_true(const cJSON *obj, const char *key);

#endif
