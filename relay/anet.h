/* anet.h: what the `authorizenet` adapter's charge side
 * (gateway_authorizenet.c) and lookup side (anet_lookup.c) share: the one
 * API URL, the credentials, the request envelope, the answer's BOM and
 * `messages`, and amounts as decimal strings. */
#ifndef RELAY_ANET_H
#define RELAY_ANET_H

#include "gateway.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every call goes to this one path (production:
 * https://api.authorize.net/xml/v1/request.api). */
#define ANET_PATH "/xml/v1/request.api"

/* Credentials: the relay's single gateway key, "LOGINID:TRANSACTIONKEY".
 * Authorize.Net's limits: login id up to 25 characters, transaction key 16
 * (we allow up to 64 in case that grows). 0, or -1 with why (never the
 * key). */
int anet_split_key(const char *key, char login[26], char tkey[65], char *why, size_t whylen);

/* Fill req with `{"<op>": {"merchantAuthentication": {...}, "refId": ref,
 * <members of body, in order>}}` POSTed to ANET_PATH. Authorize.Net reads
 * its JSON in the XML schema's element order, so order matters. body is
 * consumed (deleted) in every case. 0, or -1 with why. */
int anet_request(const struct gateway_config *gw, const char *op, const char *ref_id, cJSON *body,
		 struct gateway_request *req, char *why, size_t whylen);

/* The answer as one JSON object, after the UTF-8 byte order mark
 * Authorize.Net puts in front of its JSON; NULL when it is not one. */
cJSON *anet_parse(const char *body, size_t len);

/* The answer's `messages`: {"resultCode": "Ok"|"Error", "message": [{"code",
 * "text"}, ...]}. False when it is missing or not of that shape. */
struct anet_messages {
	bool ok;          /* resultCode "Ok" */
	const char *code; /* the first message's code, e.g. "I00001", "E00007" */
	const char *text; /* its text, or "" */
};
bool anet_messages(const cJSON *root, struct anet_messages *m);

/* 1234 -> "12.34" (two-decimal currencies only). */
void anet_amount_format(int64_t cents, char *buf, size_t len);
/* "12.34", "12.3", "12" or the number 12.34 -> 1234. False when it is not a
 * non-negative amount of at most two decimals. */
bool anet_amount_cents(const cJSON *v, int64_t *cents);

/* A usable transaction id: a non-empty string of digits, not "0" (which
 * Authorize.Net returns when no transaction was made) nor any other string
 * of zeros, that fits. */
bool anet_trans_id(const char *id, size_t cap);

/* The lookup side (anet_lookup.c): the adapter's build_lookup and
 * parse_lookup. */
int anet_build_lookup(const struct gateway_config *gw, const struct lookup_query *q,
		      struct gateway_request *req, char *why, size_t whylen);
void anet_parse_lookup(const struct charge *ch, const struct gateway_answer *ans,
		       struct lookup_verdict *v);

#endif
