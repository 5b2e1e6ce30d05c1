/* anet_sim.h: the simulator's Authorize.Net API (tests/sim/README.md,
 * "Authorize.Net"): POST /xml/v1/request.api with createTransactionRequest
 * (anet_charge.c) and the three list calls (anet_lists.c), routed and
 * answered by anet_api.c; settled batches and reviews move by control
 * endpoints (anet_control.c). Transactions live in the simulator's charge
 * store (anet_status set), so the ledger shows them like Stripe charges.
 * Everything runs with the simulator's lock held. */
#ifndef GWS_ANET_SIM_H
#define GWS_ANET_SIM_H

#include "api.h"
#include "ledger.h"

#include <cjson/cJSON.h>

#define ANET_SIM_PATH "/xml/v1/request.api"

/* POST /xml/v1/request.api: everything, ledger entry included. */
void anet_handle(struct sim *s, struct api_request *req, struct api_reply *reply);

/* Shared by the anet files. */
/* The reply: 200, a UTF-8 byte order mark, then the JSON (as the real API
 * sends it); json is consumed. */
void anet_reply(struct api_reply *reply, cJSON *json);
/* {"refId"?, "messages": {"resultCode", "message": [{"code", "text"}]}}
 * added to root. */
void anet_messages(cJSON *root, const char *ref_id, bool ok, const char *code, const char *text);
/* A JSON member's string, or NULL (exact key). */
const char *anet_str(const cJSON *o, const char *key);

void anet_create_transaction(struct sim *s, struct api_request *req, const cJSON *call,
			     const char *ref_id, struct api_reply *reply,
			     struct ledger_request *entry);
void anet_unsettled_list(struct sim *s, const cJSON *call, const char *ref_id,
			 struct api_reply *reply);
void anet_batch_list(struct sim *s, const cJSON *call, const char *ref_id,
		     struct api_reply *reply);
void anet_transaction_list(struct sim *s, const cJSON *call, const char *ref_id,
			   struct api_reply *reply);

/* POST /_control/anet/settle and /_control/anet/review. */
void anet_control_settle(struct sim *s, struct api_reply *reply);
void anet_control_review(struct sim *s, const struct api_request *req, struct api_reply *reply);

#endif
