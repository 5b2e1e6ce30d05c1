/* backoff.h: capped exponential backoff with jitter, for reconnects and
 * retries. Jitter spreads out many clients retrying after one outage. */
#ifndef CG_BACKOFF_H
#define CG_BACKOFF_H

struct backoff {
	double min, max; /* seconds */
	int failures;    /* consecutive */
	unsigned seed;
};

void backoff_init(struct backoff *b, double min, double max, unsigned seed);
/* Delay before the next try: min * 2^failures, capped at max, times a
 * factor in [0.8, 1.2); counts one more failure. */
double backoff_next(struct backoff *b);
void backoff_reset(struct backoff *b);

#endif
