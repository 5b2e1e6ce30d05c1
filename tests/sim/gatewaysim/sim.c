/* sim.c: shared state, thread-safe logging. */
#include "sim.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

void sim_log(enum log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_mu);
	log_at(level, NULL, "%s", line);
	pthread_mutex_unlock(&log_mu);
}

double sim_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000) / 1e6;
}

int sim_init(struct sim *s, double latency_s, uint64_t seed, const char *key_prefix,
	     struct fault_rules *flags)
{
	memset(s, 0, sizeof(*s));
	if (pthread_mutex_init(&s->mu, NULL) != 0)
		return -1;
	s->latency_s = latency_s;
	s->seed = seed;
	s->key_prefix = key_prefix;
	s->flags = *flags;
	memset(flags, 0, sizeof(*flags));
	rng_seed(&s->rng, seed);
	anet_state_clear(&s->anet);
	return 0;
}

void sim_reset_locked(struct sim *s)
{
	s->generation++;
	charges_clear(&s->charges);
	idem_clear(&s->idem);
	fault_rules_free(&s->rules);
	ledger_clear(&s->ledger);
	s->lookup_fault_status = 0;
	anet_state_clear(&s->anet);
	rng_seed(&s->rng, s->seed);
}

void sim_free(struct sim *s)
{
	sim_reset_locked(s);
	fault_rules_free(&s->flags);
	pthread_mutex_destroy(&s->mu);
}
