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

/* A gateway's HTML error page (a proxy's 502), for nonjson_after. */
extern const char sim_html_page[];
/* Pad the reply's body with blanks (then a newline) to len bytes: still
 * the same JSON, for a client that reads it all (huge_after). Unchanged
 * when out of memory. */
void pad_body(struct api_reply *reply, size_t len);

/* The fault for this charge request: the rules of /_control/faults, then
 * the --fault flags; noted in the reply and the ledger entry. */
struct fault fault_choose(struct sim *s, const struct fault_request *fr,
			  struct api_reply *reply, struct ledger_request *entry);

/* The faults both APIs apply alike once the charge is made and the
 * normal answer is in reply: reset_after, close_mid_body, delay,
 * nonjson_after, forget_after (others: nothing). */
void fault_after(const struct fault *fault, struct charge *c, struct api_reply *reply);

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
