/* sim.h: the simulator's shared state. One store of charges, keys, rules
 * and ledger behind one mutex (a simulator needs correctness more than
 * parallel throughput; the lock is never held while a request waits out
 * its latency). */
#ifndef GWS_SIM_H
#define GWS_SIM_H

#include "anet_state.h"
#include "charges.h"
#include "faults.h"
#include "idem.h"
#include "ledger.h"
#include "log.h"
#include "rng.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct sim {
	pthread_mutex_t mu;

	/* Configuration (fixed after sim_init). */
	double latency_s;
	uint64_t seed;
	const char *key_prefix; /* borrowed from the options */

	/* State, guarded by mu. /_control/reset empties all of it except the
	 * --fault flags and bumps generation, so a request that started
	 * before the reset leaves the new state alone when it finishes. */
	uint64_t generation;
	struct rng rng;
	struct charges charges;
	struct idem idem;
	struct fault_rules rules; /* POST /_control/faults */
	struct fault_rules flags; /* --fault, never reset */
	struct ledger ledger;
	int lookup_fault_status; /* POST /_control/lookup_faults: reads answer this (0: off) */
	struct anet_state anet;  /* Authorize.Net: counters and settled batches */
	uint64_t request_ids; /* for Request-Id headers; never reset */
};

/* flags is moved into the simulator (and zeroed). 0, or -1. */
int sim_init(struct sim *s, double latency_s, uint64_t seed, const char *key_prefix,
	     struct fault_rules *flags);
void sim_free(struct sim *s);
/* Forget every key, charge, rule and ledger entry; reseed. Lock held. */
void sim_reset_locked(struct sim *s);

/* Unix time in seconds, with microseconds. */
double sim_now(void);

/* log_at from any thread: the log module itself keeps no lock. */
void sim_log(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
