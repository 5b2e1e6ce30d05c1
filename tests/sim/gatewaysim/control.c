/* control.c: the simulator's own endpoints, outside Stripe's API: fault
 * rules, reset, ledger (tests/sim/README.md). Run with the lock held. */
#include "api_internal.h"

#include <stdlib.h>
#include <string.h>

void control_faults_set(struct sim *s, const struct api_request *req, struct api_reply *reply)
{
	struct fault_rules rules;
	char why[512];
	if (req->body_too_large) {
		reply_error(reply, 413, "invalid_request_error", NULL, NULL,
			    "The request body is larger than %d bytes.", API_MAX_BODY);
		return;
	}
	if (fault_rules_parse_json(&rules, req->body ? req->body : "", req->body_len, why,
				   sizeof(why)) != 0) {
		reply_error(reply, 400, "invalid_request_error", NULL, NULL, "%s", why);
		return;
	}
	/* Replace, never merge: a test states the whole set it wants. */
	fault_rules_free(&s->rules);
	s->rules = rules;
	sim_log(LOG_LEVEL_DEBUG, "fault rules replaced: %zu rule(s)", rules.count);
	control_faults_get(s, reply);
}

void control_faults_get(struct sim *s, struct api_reply *reply)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *rules = fault_rules_json(&s->rules), *flags = fault_rules_json(&s->flags);
	if (!root || !rules || !flags) {
		cJSON_Delete(root);
		cJSON_Delete(rules);
		cJSON_Delete(flags);
		reply_json(reply, 500, NULL);
		return;
	}
	cJSON_AddItemToObject(root, "rules", rules);
	cJSON_AddItemToObject(root, "flags", flags);
	reply_json(reply, 200, root);
}

void control_reset(struct sim *s, struct api_reply *reply)
{
	sim_reset_locked(s);
	sim_log(LOG_LEVEL_DEBUG, "reset: keys, charges, rules and ledger forgotten");
	cJSON *root = cJSON_CreateObject();
	cJSON_AddBoolToObject(root, "reset", true);
	reply_json(reply, 200, root);
}

void control_ledger(struct sim *s, struct api_reply *reply)
{
	size_t len = 0;
	char *text = ledger_render(&s->ledger, &s->charges, &len);
	if (!text) {
		reply_json(reply, 500, NULL);
		return;
	}
	reply_set(reply, 200, CT_JSON, text, len);
}

/* {"status": 500}: every read (list, retrieve) answers that status until
 * {"status": 0} or a reset: lookups of unknown charges stay inconclusive. */
void control_lookup_faults(struct sim *s, const struct api_request *req, struct api_reply *reply)
{
	cJSON *root = cJSON_ParseWithLength(req->body ? req->body : "", req->body_len);
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "status");
	double v = cJSON_IsNumber(st) ? st->valuedouble : -1;
	cJSON_Delete(root);
	if (!(v == 0 || (v >= 400 && v <= 599)) || v != (int)v) {
		reply_error(reply, 400, "invalid_request_error", NULL, NULL,
			    "expected {\"status\": 0} or an HTTP error status from 400 to 599");
		return;
	}
	s->lookup_fault_status = (int)v;
	cJSON *out = cJSON_CreateObject();
	if (out)
		cJSON_AddNumberToObject(out, "status", v);
	reply_json(reply, 200, out);
}
