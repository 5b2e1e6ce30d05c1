/* idem.h: the idempotency keys seen so far (Stripe's rules; see
 * tests/sim/README.md). A key is stored only once a request with it starts
 * executing; it then holds the request's canonical parameters, whether
 * that request is still running (another request with the key meanwhile
 * gets a 409) and the answer to replay. Keys live as long as the simulator
 * (Stripe keeps them 24 h). Not thread-safe: callers hold the lock. */
#ifndef GWS_IDEM_H
#define GWS_IDEM_H

#include "charges.h"
#include "strmap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct idem_entry {
	char *key;
	char *params;       /* form_canonical() of the first request */
	bool executing;     /* its first request has not answered yet */
	uint64_t owner_seq; /* that request's ledger seq */
	/* The stored answer, replayed byte for byte. */
	int status;
	const char *content_type; /* static string */
	char *body;
	size_t body_len;
	char charge_id[CHARGE_ID_LEN + 1]; /* the charge the key made, or "" */
	char request_id[32];               /* for Stripe's Original-Request header */
};

struct idem {
	struct idem_entry **items;
	size_t count, cap;
	struct strmap by_key;
};

struct idem_entry *idem_find(const struct idem *s, const char *key);
/* A new executing entry for key (not present yet); NULL out of memory. */
struct idem_entry *idem_add(struct idem *s, const char *key, const char *params,
			    uint64_t owner_seq);
/* Store the answer to replay (copies body). 0, or -1 out of memory. */
int idem_store(struct idem_entry *e, int status, const char *content_type, const char *body,
	       size_t body_len);
void idem_clear(struct idem *s);

#endif
