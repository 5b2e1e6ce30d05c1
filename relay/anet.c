/* anet.c: what both sides of the `authorizenet` adapter share. */
#include "anet.h"

#include "json_get.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int anet_split_key(const char *key, char login[26], char tkey[65], char *why, size_t whylen)
{
	const char *colon = key ? strchr(key, ':') : NULL;
	if (!colon) {
		snprintf(why, whylen,
			 "the authorizenet key must be LOGINID:TRANSACTIONKEY (API login id, a colon, "
			 "transaction key); this one has no colon");
		return -1;
	}
	size_t n = (size_t)(colon - key), k = strlen(colon + 1);
	if (n == 0 || n > 25 || k == 0 || k > 64 || strchr(colon + 1, ':')) {
		snprintf(why, whylen,
			 "the authorizenet key must be LOGINID:TRANSACTIONKEY with a login id of 1 to "
			 "25 characters and a transaction key of 1 to 64, one colon between them");
		return -1;
	}
	memcpy(login, key, n);
	login[n] = '\0';
	memcpy(tkey, colon + 1, k + 1);
	return 0;
}

/* root printed into a buffer of our own that cJSON never reallocates: a
 * reallocation while printing would leave a copy of the transaction key in
 * freed memory. A buffer too small is zeroed before it is freed. */
static char *print_wiped(cJSON *root)
{
	for (size_t cap = 4096; cap <= 1024 * 1024; cap *= 2) {
		char *buf = malloc(cap);
		if (!buf)
			return NULL;
		if (cJSON_PrintPreallocated(root, buf, (int)cap, false))
			return buf;
		explicit_bzero(buf, cap);
		free(buf);
	}
	return NULL;
}

int anet_request(const struct gateway_config *gw, const char *op, const char *ref_id, cJSON *body,
		 struct gateway_request *req, char *why, size_t whylen)
{
	memset(req, 0, sizeof(*req));
	char login[26], tkey[65];
	if (anet_split_key(gw->key, login, tkey, why, whylen) != 0) {
		cJSON_Delete(body);
		return -1;
	}
	int n = snprintf(req->url, sizeof(req->url), "%s%s", gw->url, ANET_PATH);
	cJSON *root = cJSON_CreateObject();
	cJSON *call = root ? cJSON_AddObjectToObject(root, op) : NULL;
	cJSON *auth = call ? cJSON_AddObjectToObject(call, "merchantAuthentication") : NULL;
	bool ok = auth && cJSON_AddStringToObject(auth, "name", login) &&
		  cJSON_AddStringToObject(auth, "transactionKey", tkey) &&
		  cJSON_AddStringToObject(call, "refId", ref_id) && body;
	/* the body's members follow refId, in their order */
	while (ok && body->child) {
		cJSON *item = cJSON_DetachItemViaPointer(body, body->child);
		char *name = item->string;
		item->string = NULL;
		cJSON_AddItemToObject(call, name, item);
		cJSON_free(name);
	}
	cJSON_Delete(body);
	req->body = ok ? print_wiped(root) : NULL;
	cJSON *k = auth ? cJSON_GetObjectItemCaseSensitive(auth, "transactionKey") : NULL;
	if (cJSON_IsString(k)) /* the key does not linger in freed memory */
		explicit_bzero(k->valuestring, strlen(k->valuestring));
	cJSON_Delete(root);
	explicit_bzero(tkey, sizeof(tkey));
	const char *lines[] = {"Content-Type: application/json", "Accept: application/json",
			       "Expect:"};
	for (size_t i = 0; req->body && i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct curl_slist *h = curl_slist_append(req->headers, lines[i]);
		if (!h)
			break;
		req->headers = h;
	}
	if (!req->body || !req->headers || n < 0 || (size_t)n >= sizeof(req->url)) {
		gateway_request_free(req);
		snprintf(why, whylen, "cannot build the %s request (out of memory or URL too long)",
			 op);
		return -1;
	}
	return 0;
}

cJSON *anet_parse(const char *body, size_t len)
{
	static const char bom[] = "\xEF\xBB\xBF";
	if (body && len >= 3 && memcmp(body, bom, 3) == 0) {
		body += 3;
		len -= 3;
	}
	return json_parse_object(body, len);
}

bool anet_messages(const cJSON *root, struct anet_messages *m)
{
	const cJSON *msgs = json_unique(root, "messages");
	const char *result = msgs ? json_string(msgs, "resultCode") : NULL;
	const cJSON *list = msgs ? json_unique(msgs, "message") : NULL;
	const cJSON *first = cJSON_IsArray(list) ? list->child : NULL;
	const char *code = first ? json_string(first, "code") : NULL;
	if (!result || (strcmp(result, "Ok") != 0 && strcmp(result, "Error") != 0) || !code || !*code)
		return false;
	const char *text = json_string(first, "text");
	*m = (struct anet_messages){.ok = strcmp(result, "Ok") == 0, .code = code,
				    .text = text ? text : ""};
	return true;
}

void anet_amount_format(int64_t cents, char *buf, size_t len)
{
	snprintf(buf, len, "%lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
}

static bool amount_text(const char *s, int64_t *cents)
{
	int64_t whole = 0, frac = 0;
	size_t i = 0, digits = 0, decimals = 0;
	for (; s[i] >= '0' && s[i] <= '9' && digits < 13; i++, digits++)
		whole = whole * 10 + (s[i] - '0');
	if (digits == 0)
		return false;
	if (s[i] == '.') {
		for (i++; s[i] >= '0' && s[i] <= '9' && decimals < 2; i++, decimals++)
			frac = frac * 10 + (s[i] - '0');
		if (decimals == 0)
			return false;
	}
	if (s[i] != '\0')
		return false;
	*cents = whole * 100 + (decimals == 1 ? frac * 10 : frac);
	return true;
}

bool anet_amount_cents(const cJSON *v, int64_t *cents)
{
	if (cJSON_IsString(v))
		return amount_text(v->valuestring, cents);
	if (!cJSON_IsNumber(v))
		return false;
	double d = v->valuedouble * 100.0, r = round(d);
	if (!isfinite(d) || d < 0 || r > 9007199254740992.0 || fabs(d - r) > 1e-6)
		return false;
	*cents = (int64_t)r;
	return true;
}

bool anet_trans_id(const char *id, size_t cap)
{
	/* "0" means no transaction was made; "00" and the like are no better */
	size_t n = id ? strlen(id) : 0;
	return n > 0 && n < cap && strspn(id, "0123456789") == n && strspn(id, "0") != n;
}
