/* backoff.c: capped exponential backoff with jitter. */
#include "backoff.h"

#include <math.h>

void backoff_init(struct backoff *b, double min, double max, unsigned seed)
{
	b->min = min;
	b->max = max;
	b->failures = 0;
	b->seed = seed ? seed : 1;
}

/* xorshift32: cheap, and deterministic under a fixed seed for tests. */
static unsigned next_rand(unsigned *s)
{
	unsigned x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

double backoff_next(struct backoff *b)
{
	double d = b->min * ldexp(1.0, b->failures < 30 ? b->failures : 30);
	if (d > b->max)
		d = b->max;
	b->failures++;
	double jitter = 0.8 + 0.4 * (next_rand(&b->seed) % 10000) / 10000.0;
	return d * jitter;
}

void backoff_reset(struct backoff *b) { b->failures = 0; }
