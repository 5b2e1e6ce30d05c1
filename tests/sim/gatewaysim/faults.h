/* faults.h: the faults the simulator injects into charge POSTs, and the
 * rules that choose them (--fault flags and POST /_control/faults). Not
 * thread-safe: callers hold the simulator's lock (a rule's `times` counts
 * down as it hits). */
#ifndef GWS_FAULTS_H
#define GWS_FAULTS_H

#include "rng.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

enum fault_kind {
	FAULT_NONE,
	FAULT_500_BEFORE,     /* 500, not charged; stored for replay */
	FAULT_500_AFTER,      /* charged, then 500; stored */
	FAULT_RESET_AFTER,    /* charged, then a TCP reset; the answer is stored */
	FAULT_CLOSE_MID_BODY, /* charged; the body is cut short */
	FAULT_DELAY,          /* charged; the answer comes delay_s late */
	FAULT_429,            /* rate limited: not executed, nothing stored */
	FAULT_NONJSON_AFTER,  /* charged; a 200 HTML page instead of JSON */
	FAULT_RESET_BEFORE,   /* a TCP reset, not executed, nothing stored */
	FAULT_FORGET_AFTER,   /* charged, answered; then absent from every read */
	FAULT_409,            /* 409 idempotency_error: not executed, nothing stored */
	FAULT_HUGE_AFTER,     /* charged; a 200 whose body is HUGE_BODY_LEN bytes; stored */
	FAULT_DUPLICATE_AFTER, /* Authorize.Net only: charged, answered 3/11 naming it */
	FAULT_CHUNKED_CUT_AFTER, /* charged; a chunked 200 whose stream stops mid-body */
	FAULT_KIND_COUNT
};

/* The size of a huge_after answer: far past what a client should read. */
#define HUGE_BODY_LEN (5 * 1024 * 1024)

struct fault {
	enum fault_kind kind;
	double delay_s; /* FAULT_DELAY */
};

/* "500_before", "delay", ... */
const char *fault_name(enum fault_kind kind);
/* Parse a kind as written in flags and rules: "500_before", "delay:1.5".
 * 0, or -1 with why. */
int fault_parse(const char *text, struct fault *out, char *why, size_t whylen);

struct fault_rule {
	struct fault fault;
	/* Match: each non-NULL field must equal the request's. */
	char *source, *customer, *invoice_id, *outbox_id;
	double probability; /* 0..1 */
	long long times;    /* hits left; -1: unlimited */
};

struct fault_rules {
	struct fault_rule *items;
	size_t count, cap;
};

/* What a charge POST offers the rules to match on (NULL: not given). */
struct fault_request {
	const char *source, *customer, *invoice_id, *outbox_id;
};

/* Add the rule a --fault KIND:PROB flag describes. 0, or -1 with why. */
int fault_rules_add_flag(struct fault_rules *r, const char *spec, char *why, size_t whylen);
/* Parse a JSON array of rules ({"fault", "match", "probability", "times"})
 * into *out (zeroed). 0, or -1 with why; *out is then empty. */
int fault_rules_parse_json(struct fault_rules *out, const char *json, size_t len, char *why,
			   size_t whylen);
/* Try the rules in order; the first that matches, has hits left and wins
 * its draw applies (counting one hit). True when one applied. */
bool fault_rules_pick(struct fault_rules *r, const struct fault_request *req, struct rng *rng,
		      struct fault *out);
/* The rules as JSON (times: null when unlimited). NULL out of memory. */
cJSON *fault_rules_json(const struct fault_rules *r);
void fault_rules_free(struct fault_rules *r);

#endif
