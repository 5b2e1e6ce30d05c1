/* api_internal.h: helpers shared by the endpoint files (api.c, charge_post.c,
 * charge_read.c, control.c). */
#ifndef GWS_API_INTERNAL_H
#define GWS_API_INTERNAL_H

#include "api.h"

#include <cjson/cJSON.h>

#define CT_JSON "application/json"
#define CT_HTML "text/html; charset=utf-8"
#define CT_TEXT "text/plain; charset=utf-8"

/* Take ownership of body (malloc'd text). */
void reply_set(struct api_reply *reply, int status, const char *content_type, char *body,
	       size_t len);
/* Print and delete json (NULL: a 500 "out of memory"). */
void reply_json(struct api_reply *reply, int status, cJSON *json);
/* Stripe's error object: {"error": {"type", "code"?, "param"?, "message"}}. */
cJSON *error_object(const char *type, const char *code, const char *param,
		    const char *message);
void reply_error(struct api_reply *reply, int status, const char *type, const char *code,
		 const char *param, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Copy what a charge POST says (amount, currency, customer, source,
 * invoice and outbox ids) into its ledger entry, whatever the answer will
 * be: a 401 or a 400 still shows which charge row it was for. */
void charge_note(const struct api_request *req, struct ledger_request *entry);

/* The endpoints, and charge_note: each runs with the lock held. */
void charge_post(struct sim *s, struct api_request *req, struct api_reply *reply,
		 struct ledger_request *entry);
void charge_list(struct sim *s, const struct api_request *req, struct api_reply *reply);
void charge_retrieve(struct sim *s, const char *id, struct api_reply *reply);
void control_faults_set(struct sim *s, const struct api_request *req, struct api_reply *reply);
void control_faults_get(struct sim *s, struct api_reply *reply);
void control_reset(struct sim *s, struct api_reply *reply);
void control_lookup_faults(struct sim *s, const struct api_request *req, struct api_reply *reply);
void control_ledger(struct sim *s, struct api_reply *reply);

#endif
