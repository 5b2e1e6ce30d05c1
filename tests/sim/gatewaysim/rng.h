/* rng.h: a small seeded generator (xoshiro256**), so that charge ids and
 * fault draws repeat exactly for a given --seed. Not thread-safe: callers
 * hold the simulator's lock. */
#ifndef GWS_RNG_H
#define GWS_RNG_H

#include <stddef.h>
#include <stdint.h>

struct rng {
	uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, 1): a draw "wins" probability p when rng_unit() < p, so
 * p = 1 always wins and p = 0 never does. */
double rng_unit(struct rng *r);
/* Fill out[0..n-1] with [A-Za-z0-9] and terminate it (out holds n + 1). */
void rng_alnum(struct rng *r, char *out, size_t n);

#endif
