/* gateway.h: the payment gateway adapter interface. The relay's core knows
 * nothing of any gateway's wire format: an adapter builds the request for a
 * charge and classifies the answer. New gateways are new files. */
#ifndef RELAY_GATEWAY_H
#define RELAY_GATEWAY_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What an answer means for the charge row (PROTOCOL.md, "Charge states"). */
enum outcome {
	OUTCOME_SUCCEEDED,   /* charged */
	OUTCOME_DECLINED,    /* the gateway declined the card */
	OUTCOME_FAILED,      /* refused before acting: definitely not charged */
	OUTCOME_UNKNOWN,     /* maybe charged: look it up, never re-send */
	OUTCOME_RETRY_LATER, /* proven not executed: pending again, same key */
	OUTCOME_DEAD,        /* the request itself is wrong: needs a person */
};

/* The outcome's name as stored in outbox.messages.state. */
const char *outcome_state(enum outcome o);

/* One charge row, as claimed. */
struct charge {
	int64_t id, invoice_id, customer_id;
	int attempt;
	int64_t amount_cents;
	char currency[4];
	char idempotency_key[256];
	char customer[128]; /* gateway customer id, or "" */
	char source[128];   /* payment source, or "" */
};

/* An HTTP request an adapter wants sent. */
struct gateway_request {
	char url[1024];
	char *body;                 /* owned (malloc); NULL for GET */
	struct curl_slist *headers; /* owned */
};

/* What came back: curl's result, and what the transport knew. */
struct gateway_answer {
	CURLcode curl_result;
	bool connected; /* a connection was established (the request may have left) */
	long http_status; /* 0 when there was no HTTP answer */
	const char *body;
	size_t body_len;
	bool body_truncated; /* larger than the relay reads */
	double retry_after;  /* from a Retry-After header, seconds, or 0 */
	/* Lookups: the starting_after this page was asked with ("" for the
	 * first), so an adapter whose walk spans several kinds of request
	 * (authorizenet) knows which one this answers. NULL for charges. */
	const char *lookup_at;
	/* Lookups: the lookup_query.since this page was asked with (a walk
	 * whose extent depends on it, authorizenet's settled windows, knows
	 * where it ends). 0 for charges. */
	int64_t lookup_since;
};

struct verdict {
	enum outcome outcome;
	char gateway_ref[128]; /* the gateway's charge id, when known */
	char reason[256];      /* why, in one line: stored as last_error */
	double retry_after;    /* OUTCOME_RETRY_LATER: suggested wait, or 0 */
	bool stop_sending;     /* the gateway refuses our credentials: pause */
};

/* What a lookup of an unknown charge found (PROTOCOL.md, reconciliation). */
enum lookup_found {
	LOOKUP_SUCCEEDED,    /* the gateway charged it */
	LOOKUP_DECLINED,     /* the gateway declined it */
	LOOKUP_ABSENT,       /* no such charge (proof only after the settle window) */
	LOOKUP_NEXT_PAGE,    /* not on this page; ask for the next */
	LOOKUP_INCONCLUSIVE, /* no usable answer: ask again later */
};

/* Its name as record_lookups takes it. */
const char *lookup_found_name(enum lookup_found f);

struct lookup_verdict {
	enum lookup_found found;
	char gateway_ref[128]; /* the charge found */
	char next[128];        /* LOOKUP_NEXT_PAGE: where to continue */
	char reason[256];
};

/* How far the gateway's clock may be from ours, seconds: a lookup lists from
 * this much before a row's creation and, where a call names its end
 * (authorizenet's settled batches), to this much after now. */
#define LOOKUP_CLOCK_SKEW 300

/* One page of a lookup. */
struct lookup_query {
	const struct charge *charge;
	int64_t since;             /* unix seconds: no send can predate this */
	const char *starting_after; /* "" for the first page */
};

struct gateway_config {
	const char *url; /* base URL, no trailing slash */
	const char *key; /* secret: never logged */
};

struct gateway_adapter {
	const char *name;
	/* Does the gateway dedupe by idempotency key (PROTOCOL.md, lookups)? */
	bool idempotency_keys;
	/* Fill req for POSTing this charge; 0, or -1 with why (out of memory:
	 * the row goes back to pending), or GATEWAY_REFUSE with why when the
	 * row can never be sent as it is (a currency the adapter cannot
	 * express): the row becomes dead with why, and nothing is POSTed. */
	int (*build_charge)(const struct gateway_config *gw, const struct charge *ch,
			    struct gateway_request *req, char *why, size_t whylen);
	/* Classify the answer to that POST. Must never call anything it cannot
	 * parse "declined": malformed or unexpected input is unknown. */
	void (*classify_charge)(const struct charge *ch, const struct gateway_answer *ans,
				struct verdict *v);
	/* A read-only request for one page of the lookup of an unknown charge. */
	int (*build_lookup)(const struct gateway_config *gw, const struct lookup_query *q,
			    struct gateway_request *req, char *why, size_t whylen);
	/* What that page says about the charge. Anything malformed or
	 * unexpected is inconclusive, never absent. */
	void (*parse_lookup)(const struct charge *ch, const struct gateway_answer *ans,
			     struct lookup_verdict *v);
	/* Optional: is this key usable at all (its shape)? Checked at start
	 * (the relay refuses to run) and on SIGHUP (the old key is kept).
	 * 0, or -1 with why (never the key itself). */
	int (*check_key)(const char *key, char *why, size_t whylen);
};

/* build_charge's answer for a row that can never be sent as it is. */
#define GATEWAY_REFUSE (-2)

/* The adapter named `name`, or NULL. */
const struct gateway_adapter *gateway_find(const char *name);
void gateway_request_free(struct gateway_request *req);

/* Set a verdict's outcome and reason (printf-style). */
void verdict_set(struct verdict *v, enum outcome o, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Set a lookup verdict's finding and reason (printf-style). */
void lookup_verdict_set(struct lookup_verdict *v, enum lookup_found f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* What the transport alone says of a charge POST's answer, before any body
 * is read: never connected -> retry later; failed after connecting, or a
 * body larger than the relay reads -> unknown. True when that decided it. */
bool gateway_transport_verdict(const struct gateway_answer *ans, struct verdict *v);

/* The same for a lookup page: a failed or cut-off transfer, or any status
 * but 200, is inconclusive. True when that decided it. */
bool lookup_transport_verdict(const struct gateway_answer *ans, struct lookup_verdict *v);

/* Transport failures that prove the request never left: no connection was
 * ever established. Everything else after a send is ambiguous. */
bool gateway_not_sent(const struct gateway_answer *ans);

#endif
