/* sim.c: shared state, interruptible sleeps, thread-safe logging. */
#include "sim.h"

#include <errno.h>
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
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0)
		return -1;
	/* Sleeps are measured on the monotonic clock: a wall-clock step must
	 * not stretch or cut a latency. */
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0)
		return -1;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		pthread_cond_destroy(&s->wake);
		return -1;
	}
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
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->mu);
}

void sim_stop(struct sim *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->mu);
}

void sim_sleep(struct sim *s, double seconds)
{
	if (seconds <= 0)
		return;
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	long long ns = (long long)(seconds * 1e9);
	deadline.tv_sec += (time_t)(ns / 1000000000LL);
	deadline.tv_nsec += (long)(ns % 1000000000LL);
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		int rc = pthread_cond_timedwait(&s->wake, &s->mu, &deadline);
		if (rc == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&s->mu);
}
