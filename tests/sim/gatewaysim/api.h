/* api.h: what the simulator answers, apart from HTTP plumbing. The HTTP
 * layer fills a request, api_handle decides the reply (changing the store
 * under the lock), the HTTP layer waits out reply.wait_s without the lock,
 * then api_finish closes the ledger entry and releases the key, and the
 * reply is delivered (or the connection reset, or the body cut short). */
#ifndef GWS_API_H
#define GWS_API_H

#include "form.h"
#include "sim.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_MAX_BODY (64 * 1024) /* larger request bodies get a 413 */

struct api_request {
	/* Filled by the HTTP layer; strings borrowed for the request's life. */
	const char *method, *path;
	struct form query;          /* decoded query-string arguments */
	const char *authorization;  /* header, or NULL */
	const char *idempotency_key; /* header, or NULL */
	const char *body;
	size_t body_len;
	bool body_too_large;
	double t_start;

	/* Kept by api_handle for api_finish. */
	uint64_t generation, seq; /* seq 0: not in the ledger */
	bool holds_key;           /* it set its key's executing flag */
};

enum reply_action {
	REPLY_SEND,           /* the answer, whole */
	REPLY_RESET,          /* no answer: a TCP reset */
	REPLY_CLOSE_MID_BODY, /* headers, then part of the body, then close */
	REPLY_CHUNKED_CUT,    /* chunked: part of the body, then close, no last chunk */
};

struct api_reply {
	int status;
	const char *content_type; /* static */
	char *body;               /* malloc'd; the HTTP layer takes it */
	size_t body_len;
	enum reply_action action;
	double wait_s; /* latency plus any delay fault */
	bool replayed; /* Idempotent-Replayed: true */
	char request_id[32];
	char original_request[32]; /* "" unless replayed */
	const char *allow;         /* for a 405 */
	/* For the request's log line. */
	struct fault fault;
	char charge_id[CHARGE_ID_LEN + 1];
};

void api_handle(struct sim *s, struct api_request *req, struct api_reply *reply);
/* status_sent: 0 when the connection is reset. */
void api_finish(struct sim *s, const struct api_request *req, int status_sent);
void api_reply_free(struct api_reply *reply);

#endif
