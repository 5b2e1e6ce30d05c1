/* fault.h: which messages the sink drops after DATA instead of answering
 * 250 (--drop-after-data PROB, --drop-after-data-first N). */
#ifndef SMTPSINK_FAULT_H
#define SMTPSINK_FAULT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct fault {
	pthread_mutex_t mu; /* guards rng: draws come from every connection */
	double prob;
	uint64_t first;
	uint64_t rng;
};

void fault_init(struct fault *f, double prob, uint64_t first, uint64_t seed);
void fault_destroy(struct fault *f);

/* Whether to drop the message numbered seq (1-based): every seq <= first,
 * then a draw with probability prob. The draws follow one seeded sequence,
 * so one client sending in order sees the same drops on every run. */
bool fault_drop(struct fault *f, uint64_t seq);

#endif
