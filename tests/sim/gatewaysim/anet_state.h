/* anet_state.h: the Authorize.Net side of the simulator's state (struct
 * sim.anet): the credentials it accepts, its id counters and the settled
 * batches. Guarded by the simulator's lock. */
#ifndef GWS_ANET_STATE_H
#define GWS_ANET_STATE_H

#include <stddef.h>
#include <stdint.h>

struct anet_batch {
	char id[16];
	int64_t settled_at; /* unix seconds */
};

struct anet_state {
	const char *login, *key; /* accepted credentials (borrowed from the options) */
	uint64_t next_trans, next_batch;
	struct anet_batch *batches; /* settlement order */
	size_t nbatches, cap;
};

/* Forget the batches and restart the counters (the credentials stay). */
void anet_state_clear(struct anet_state *a);

#endif
