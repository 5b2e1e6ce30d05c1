/* api.c: routing, authentication, replies, and the request's bookkeeping
 * (ledger entry, key release). */
#include "anet_sim.h"
#include "api_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void reply_set(struct api_reply *reply, int status, const char *content_type, char *body,
	       size_t len)
{
	free(reply->body);
	reply->status = status;
	reply->content_type = content_type;
	reply->body = body;
	reply->body_len = len;
}

void reply_json(struct api_reply *reply, int status, cJSON *json)
{
	char *text = json ? cJSON_PrintUnformatted(json) : NULL;
	cJSON_Delete(json);
	if (!text) {
		static const char oom[] =
			"{\"error\":{\"type\":\"api_error\",\"message\":\"out of memory\"}}";
		char *copy = strdup(oom);
		reply_set(reply, 500, CT_JSON, copy, copy ? strlen(copy) : 0);
		return;
	}
	/* cJSON allocates with malloc (we never install hooks): free() is right. */
	reply_set(reply, status, CT_JSON, text, strlen(text));
}

cJSON *error_object(const char *type, const char *code, const char *param,
		    const char *message)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *e = cJSON_AddObjectToObject(root, "error");
	if (!e) {
		cJSON_Delete(root);
		return NULL;
	}
	cJSON_AddStringToObject(e, "type", type);
	if (code)
		cJSON_AddStringToObject(e, "code", code);
	if (param)
		cJSON_AddStringToObject(e, "param", param);
	cJSON_AddStringToObject(e, "message", message);
	return root;
}

void reply_error(struct api_reply *reply, int status, const char *type, const char *code,
		 const char *param, const char *fmt, ...)
{
	char message[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	reply_json(reply, status, error_object(type, code, param, message));
}

void api_reply_free(struct api_reply *reply)
{
	free(reply->body);
	reply->body = NULL;
}

/* Decode standard base64 (Basic auth); -1 when malformed or too long. */
static int base64_decode(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (; *in && *in != '='; in++) {
		const char *alphabet =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		const char *p = strchr(alphabet, *in);
		if (!p)
			return -1;
		acc = ((acc << 6) | (unsigned)(p - alphabet)) & 0xffffu; /* 14 bits suffice */
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 >= cap)
				return -1;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	return 0;
}

/* Stripe takes the secret key as a Bearer token or as the Basic user name
 * (curl -u sk_test_...:). The key itself is never logged nor echoed. */
static bool key_accepted(const char *header, const char *prefix, bool *given)
{
	char decoded[512];
	const char *key = NULL;
	*given = header && *header;
	if (!*given)
		return false;
	if (strncasecmp(header, "Bearer ", 7) == 0) {
		key = header + 7;
	} else if (strncasecmp(header, "Basic ", 6) == 0) {
		if (base64_decode(header + 6, decoded, sizeof(decoded)) != 0)
			return false;
		char *colon = strchr(decoded, ':');
		if (colon)
			*colon = '\0';
		key = decoded;
	}
	while (key && *key == ' ')
		key++;
	bool ok = key && *key && strncmp(key, prefix, strlen(prefix)) == 0;
	explicit_bzero(decoded, sizeof(decoded));
	return ok;
}

static void method_not_allowed(struct api_reply *reply, const struct api_request *req,
			       const char *allow)
{
	reply->allow = allow;
	reply_error(reply, 405, "invalid_request_error", NULL, NULL,
		    "Unrecognized request URL (%s: %s). This URL accepts %s.", req->method,
		    req->path, allow);
}

static void handle_v1(struct sim *s, struct api_request *req, struct api_reply *reply,
		      struct ledger_request *entry)
{
	bool given;
	if (!key_accepted(req->authorization, s->key_prefix, &given)) {
		if (given)
			reply_error(reply, 401, "invalid_request_error", NULL, NULL,
				    "Invalid API Key provided.");
		else
			reply_error(reply, 401, "invalid_request_error", NULL, NULL,
				    "You did not provide an API key. You need to provide your API "
				    "key in the Authorization header, using Bearer auth (e.g. "
				    "'Authorization: Bearer YOUR_SECRET_KEY').");
		return;
	}
	bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;
	if (get && s->lookup_fault_status) {
		/* reads fail on purpose: lookups stay inconclusive */
		reply_error(reply, s->lookup_fault_status, "api_error", NULL, NULL,
			    "Reads are failing on purpose (/_control/lookup_faults).");
		return;
	}
	if (strcmp(req->path, "/v1/charges") == 0) {
		if (post)
			charge_post(s, req, reply, entry);
		else if (get)
			charge_list(s, req, reply);
		else
			method_not_allowed(reply, req, "GET, POST");
		return;
	}
	const char *id = strncmp(req->path, "/v1/charges/", 12) == 0 ? req->path + 12 : NULL;
	if (id && *id && !strchr(id, '/')) {
		if (get)
			charge_retrieve(s, id, reply);
		else
			method_not_allowed(reply, req, "GET");
		return;
	}
	reply_error(reply, 404, "invalid_request_error", NULL, NULL,
		    "Unrecognized request URL (%s: %s).", req->method, req->path);
}

static void handle_control(struct sim *s, struct api_request *req, struct api_reply *reply)
{
	bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;
	if (strcmp(req->path, "/_health") == 0) {
		if (!get) {
			method_not_allowed(reply, req, "GET");
		} else {
			char *ok = strdup("ok\n");
			reply_set(reply, 200, CT_TEXT, ok, ok ? 3 : 0);
		}
	} else if (strcmp(req->path, "/_control/faults") == 0) {
		if (post)
			control_faults_set(s, req, reply);
		else if (get)
			control_faults_get(s, reply);
		else
			method_not_allowed(reply, req, "GET, POST");
	} else if (strcmp(req->path, "/_control/lookup_faults") == 0) {
		if (post)
			control_lookup_faults(s, req, reply);
		else
			method_not_allowed(reply, req, "POST");
	} else if (strcmp(req->path, "/_control/anet/settle") == 0) {
		if (post)
			anet_control_settle(s, reply);
		else
			method_not_allowed(reply, req, "POST");
	} else if (strcmp(req->path, "/_control/anet/review") == 0) {
		if (post)
			anet_control_review(s, req, reply);
		else
			method_not_allowed(reply, req, "POST");
	} else if (strcmp(req->path, "/_control/reset") == 0) {
		if (post)
			control_reset(s, reply);
		else
			method_not_allowed(reply, req, "POST");
	} else if (strcmp(req->path, "/_ledger") == 0) {
		if (get)
			control_ledger(s, reply);
		else
			method_not_allowed(reply, req, "GET");
	} else {
		reply_error(reply, 404, "invalid_request_error", NULL, NULL,
			    "Unrecognized request URL (%s: %s).", req->method, req->path);
	}
}

void api_handle(struct sim *s, struct api_request *req, struct api_reply *reply)
{
	memset(reply, 0, sizeof(*reply));
	reply->content_type = CT_JSON;
	reply->action = REPLY_SEND;
	pthread_mutex_lock(&s->mu);
	req->generation = s->generation;
	req->seq = 0;
	req->holds_key = false;
	snprintf(reply->request_id, sizeof(reply->request_id), "req_%014llu",
		 (unsigned long long)++s->request_ids);
	if (strncmp(req->path, "/v1/", 4) == 0 || strcmp(req->path, "/v1") == 0) {
		/* Stripe's API: in the ledger, and answered after --latency-ms. */
		struct ledger_request *entry =
			ledger_open(&s->ledger, req->t_start, req->method, req->path);
		if (entry) {
			req->seq = entry->seq;
			ledger_set(&entry->idempotency_key, req->idempotency_key);
			if (strcmp(req->method, "POST") == 0 && strcmp(req->path, "/v1/charges") == 0)
				charge_note(req, entry);
		} else {
			sim_log(LOG_LEVEL_ERROR, "out of memory: %s %s missing from the ledger",
				req->method, req->path);
		}
		reply->wait_s = s->latency_s;
		handle_v1(s, req, reply, entry);
	} else if (strcmp(req->path, ANET_SIM_PATH) == 0) {
		anet_handle(s, req, reply); /* Authorize.Net's API: its own ledger entry */
	} else {
		handle_control(s, req, reply);
	}
	pthread_mutex_unlock(&s->mu);
}

void api_finish(struct sim *s, const struct api_request *req, int status_sent)
{
	pthread_mutex_lock(&s->mu);
	if (req->generation == s->generation) {
		struct ledger_request *entry = req->seq ? ledger_get(&s->ledger, req->seq) : NULL;
		if (entry) {
			entry->t_end = sim_now();
			entry->status = status_sent;
		}
		struct idem_entry *e = req->holds_key ? idem_find(&s->idem, req->idempotency_key)
						      : NULL;
		if (e && e->owner_seq == req->seq)
			e->executing = false;
	}
	pthread_mutex_unlock(&s->mu);
}
