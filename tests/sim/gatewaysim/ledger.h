/* ledger.h: the simulator's own record of every /v1 request and every
 * charge, which the invariant checker reads (GET /_ledger; the format is in
 * tests/sim/README.md). A request's entry is opened when it arrives (so seq
 * is arrival order) and closed when its answer is queued or the connection
 * is reset; entries still open show "t_end": null. Not thread-safe: callers
 * hold the simulator's lock. */
#ifndef GWS_LEDGER_H
#define GWS_LEDGER_H

#include "charges.h"
#include "faults.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ledger_request {
	uint64_t seq; /* from 1 */
	double t_start, t_end; /* unix seconds; t_end < 0 while open */
	char *method, *path;
	/* From the request; NULL when absent. */
	char *idempotency_key, *outbox_id, *invoice_id, *customer, *source, *currency;
	char *amount; /* as sent; shown as a number when it is an integer */
	char *operation; /* Authorize.Net's call (createTransactionRequest, ...), or NULL */
	int status;   /* HTTP status sent; 0 when the connection was reset */
	struct fault fault;
	bool replayed, executed;
	char charge_id[CHARGE_ID_LEN + 1]; /* "" when none */
};

struct ledger {
	struct ledger_request **items; /* items[seq - 1] */
	size_t count, cap;
};

/* Open an entry; NULL out of memory. */
struct ledger_request *ledger_open(struct ledger *l, double t_start, const char *method,
				   const char *path);
/* The entry with this seq, or NULL. */
struct ledger_request *ledger_get(const struct ledger *l, uint64_t seq);
/* Set a string field from a possibly NULL value (a failed copy leaves NULL:
 * the ledger loses a detail rather than the request). */
void ledger_set(char **field, const char *value);
void ledger_clear(struct ledger *l);

/* {"requests": [...], "charges": [...]} as one malloc'd string (*len set),
 * built entry by entry so 100,000 requests never exist as one cJSON tree;
 * NULL out of memory. */
char *ledger_render(const struct ledger *l, const struct charges *cs, size_t *len);

#endif
