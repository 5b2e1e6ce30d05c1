/* charges.h: the charges the simulated gateway made or declined, in the
 * order it made them (the order Stripe lists them in, newest first), with
 * an index by id. Not thread-safe: callers hold the simulator's lock. */
#ifndef GWS_CHARGES_H
#define GWS_CHARGES_H

#include "form.h"
#include "strmap.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHARGE_ID_LEN 27 /* "ch_" and 24 alphanumerics */

struct charge {
	char id[CHARGE_ID_LEN + 1];
	int64_t created; /* unix seconds */
	int64_t amount;
	/* Owned strings; NULL when the request did not give them. */
	char *currency, *customer, *source, *description, *idempotency_key;
	struct form metadata; /* "invoice_id" -> "42": names without metadata[...] */
	bool declined;
	/* When declined: Stripe's error code, decline code and message
	 * (static strings). */
	const char *failure_code, *decline_code, *failure_message;
	bool forgotten; /* fault forget_after: absent from every read */
	size_t index;   /* position in creation order */
	/* Authorize.Net transactions (anet_*.c); anet_status NULL for Stripe
	 * charges. The id is then the numeric transId. */
	const char *anet_status; /* static: capturedPendingSettlement, declined, ... */
	char *invoice_number;
	char auth_code[8];    /* "" when not approved */
	int duplicate_window; /* seconds, from the request */
	int64_t batch;        /* settled batch id; 0 while unsettled */
};

/* Did money move (or will it, with the batch)? */
bool charge_succeeded(const struct charge *c);

struct charges {
	struct charge **items; /* creation order */
	size_t count, cap;
	struct strmap by_id;
};

/* A zeroed charge, or NULL. */
struct charge *charge_new(void);
void charge_free(struct charge *c);

/* Append c (its id set and unique), taking ownership. 0, or -1 out of
 * memory (c is then still the caller's). */
int charges_add(struct charges *cs, struct charge *c);
/* The charge with this id, forgotten or not; NULL when none. */
struct charge *charges_find(const struct charges *cs, const char *id);
void charges_clear(struct charges *cs);

struct charge_query {
	const char *customer; /* NULL: any */
	bool has_gt, has_gte, has_lt, has_lte;
	int64_t gt, gte, lt, lte; /* bounds on created */
	size_t before;            /* only charges with index < before */
	size_t limit;
};

/* Newest first: up to q->limit matching charges (forgotten ones never
 * match) into out; *has_more tells whether another one follows. */
size_t charges_list(const struct charges *cs, const struct charge_query *q,
		    const struct charge **out, bool *has_more);

/* The charge as Stripe's API shows it. NULL out of memory. */
cJSON *charge_api_json(const struct charge *c);
/* The charge as the ledger records it (tests/sim/README.md). */
cJSON *charge_ledger_json(const struct charge *c);

#endif
