/* anet_control.c: the simulator's own Authorize.Net controls (not part of
 * Authorize.Net's API): settle the unsettled transactions into a batch,
 * and end the reviews of held ones. Runs with the lock held. */
#include "anet_sim.h"
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* POST /_control/anet/settle: every unsettled transaction but the held
 * ones (a review blocks settlement) goes into a new settled batch; the
 * charged ones become settledSuccessfully. {"batchId", "transactions"}. */
void anet_control_settle(struct sim *s, struct api_reply *reply)
{
	struct anet_state *a = &s->anet;
	if (a->nbatches == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		struct anet_batch *b = realloc(a->batches, cap * sizeof(*b));
		if (!b) {
			reply_json(reply, 500, NULL);
			return;
		}
		a->batches = b;
		a->cap = cap;
	}
	struct anet_batch *b = &a->batches[a->nbatches++];
	int64_t id = (int64_t)a->next_batch++;
	snprintf(b->id, sizeof(b->id), "%lld", (long long)id);
	b->settled_at = (int64_t)time(NULL);
	int n = 0;
	for (size_t i = 0; i < s->charges.count; i++) {
		struct charge *c = s->charges.items[i];
		if (!c->anet_status || c->batch || strstr(c->anet_status, "Review"))
			continue;
		c->batch = id;
		if (strcmp(c->anet_status, "capturedPendingSettlement") == 0)
			c->anet_status = "settledSuccessfully";
		n++;
	}
	cJSON *root = cJSON_CreateObject();
	if (root) {
		cJSON_AddStringToObject(root, "batchId", b->id);
		cJSON_AddNumberToObject(root, "transactions", n);
	}
	reply_json(reply, 200, root);
}

/* POST /_control/anet/review {"decision": "approve"|"decline"}: every held
 * transaction is approved (capturedPendingSettlement, with an approval
 * code) or declined after review (failedReview). {"reviewed": N}. */
void anet_control_review(struct sim *s, const struct api_request *req, struct api_reply *reply)
{
	cJSON *body = cJSON_ParseWithLength(req->body ? req->body : "", req->body_len);
	const char *d = anet_str(body, "decision");
	bool approve = d && strcmp(d, "approve") == 0;
	if (!d || (!approve && strcmp(d, "decline") != 0)) {
		cJSON_Delete(body);
		reply_error(reply, 400, "invalid_request_error", NULL, NULL,
			    "expected {\"decision\": \"approve\"} or {\"decision\": \"decline\"}");
		return;
	}
	cJSON_Delete(body);
	int n = 0;
	for (size_t i = 0; i < s->charges.count; i++) {
		struct charge *c = s->charges.items[i];
		if (!c->anet_status || !strstr(c->anet_status, "Review"))
			continue;
		c->anet_status = approve ? "capturedPendingSettlement" : "failedReview";
		if (approve)
			snprintf(c->auth_code, sizeof(c->auth_code), "RV%04d", (int)(i % 10000));
		n++;
	}
	cJSON *root = cJSON_CreateObject();
	if (root)
		cJSON_AddNumberToObject(root, "reviewed", n);
	reply_json(reply, 200, root);
}
