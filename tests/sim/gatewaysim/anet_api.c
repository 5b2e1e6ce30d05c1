/* anet_api.c: POST /xml/v1/request.api: the call's name is the JSON
 * document's one member; credentials first (E00007), then the call. Every
 * answer is HTTP 200 with a byte order mark, like the real API; reads fail
 * on purpose with /_control/lookup_faults. Runs with the lock held. */
#include "anet_sim.h"
#include "api_internal.h"

#include <stdlib.h>
#include <string.h>

void anet_state_clear(struct anet_state *a)
{
	free(a->batches);
	a->batches = NULL;
	a->nbatches = a->cap = 0;
	a->next_trans = 60000000001ULL; /* transIds look like the real ones */
	a->next_batch = 9000001;
}

void anet_reply(struct api_reply *reply, cJSON *json)
{
	char *text = json ? cJSON_PrintUnformatted(json) : NULL;
	cJSON_Delete(json);
	size_t n = text ? strlen(text) : 0;
	char *body = text ? malloc(n + 4) : NULL;
	if (!body) {
		free(text);
		reply_json(reply, 500, NULL);
		return;
	}
	memcpy(body, "\xEF\xBB\xBF", 3);
	memcpy(body + 3, text, n + 1);
	free(text);
	reply_set(reply, 200, CT_JSON, body, n + 3);
}

void anet_messages(cJSON *root, const char *ref_id, bool ok, const char *code, const char *text)
{
	if (ref_id)
		cJSON_AddStringToObject(root, "refId", ref_id);
	cJSON *m = cJSON_AddObjectToObject(root, "messages");
	cJSON *list = m ? cJSON_AddArrayToObject(m, "message") : NULL;
	cJSON *item = cJSON_CreateObject();
	if (!m || !list || !item || !cJSON_AddItemToArray(list, item)) {
		cJSON_Delete(item);
		return;
	}
	cJSON_AddStringToObject(m, "resultCode", ok ? "Ok" : "Error");
	cJSON_AddStringToObject(item, "code", code);
	cJSON_AddStringToObject(item, "text", text);
}

const char *anet_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void error_only(struct api_reply *reply, const char *ref_id, const char *code,
		       const char *text)
{
	cJSON *root = cJSON_CreateObject();
	if (root)
		anet_messages(root, ref_id, false, code, text);
	anet_reply(reply, root);
}

static bool credentials_ok(const struct sim *s, const cJSON *call)
{
	const cJSON *auth = cJSON_GetObjectItemCaseSensitive(call, "merchantAuthentication");
	const char *name = anet_str(auth, "name"), *key = anet_str(auth, "transactionKey");
	return name && key && strcmp(name, s->anet.login) == 0 && strcmp(key, s->anet.key) == 0;
}

void anet_handle(struct sim *s, struct api_request *req, struct api_reply *reply)
{
	reply->wait_s = s->latency_s;
	if (strcmp(req->method, "POST") != 0) {
		reply->allow = "POST";
		reply_error(reply, 405, "invalid_request_error", NULL, NULL, "POST only.");
		return;
	}
	const char *body = req->body ? req->body : "";
	size_t len = req->body_len;
	if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) {
		body += 3;
		len -= 3;
	}
	cJSON *root = req->body_too_large ? NULL : cJSON_ParseWithLength(body, len);
	const cJSON *call = cJSON_IsObject(root) ? root->child : NULL;
	const char *op = call && cJSON_IsObject(call) && !call->next ? call->string : NULL;
	/* Every call is in the ledger, named; the charge call fills in more. */
	struct ledger_request *entry = ledger_open(&s->ledger, req->t_start, req->method, req->path);
	if (entry) {
		req->seq = entry->seq;
		ledger_set(&entry->operation, op);
	}
	const char *ref = anet_str(call, "refId");
	if (!op) {
		error_only(reply, NULL, "E00003", "An error occurred while parsing the request.");
	} else if (!credentials_ok(s, call)) {
		error_only(reply, ref, "E00007",
			   "User authentication failed due to invalid authentication values.");
	} else if (strcmp(op, "createTransactionRequest") == 0) {
		anet_create_transaction(s, req, call, ref, reply, entry);
	} else if (s->lookup_fault_status) {
		reply_error(reply, s->lookup_fault_status, "api_error", NULL, NULL,
			    "Reads are failing on purpose (/_control/lookup_faults).");
	} else if (strcmp(op, "getUnsettledTransactionListRequest") == 0) {
		anet_unsettled_list(s, call, ref, reply);
	} else if (strcmp(op, "getSettledBatchListRequest") == 0) {
		anet_batch_list(s, call, ref, reply);
	} else if (strcmp(op, "getTransactionListRequest") == 0) {
		anet_transaction_list(s, call, ref, reply);
	} else {
		error_only(reply, ref, "E00004", "The name of the requested API method is invalid.");
	}
	cJSON_Delete(root);
}
