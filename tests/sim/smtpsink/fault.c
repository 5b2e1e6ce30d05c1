/* fault.c: the drop-after-DATA decision, reproducible from --seed. */
#include "fault.h"

void fault_init(struct fault *f, double prob, uint64_t first, uint64_t seed)
{
	pthread_mutex_init(&f->mu, NULL);
	f->prob = prob;
	f->first = first;
	f->rng = seed;
}

void fault_destroy(struct fault *f)
{
	pthread_mutex_destroy(&f->mu);
}

/* splitmix64: tiny, well mixed even from seeds 0, 1, 2...; rand() is
 * neither thread-safe nor the same on every libc. */
static uint64_t next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

bool fault_drop(struct fault *f, uint64_t seq)
{
	if (seq <= f->first)
		return true;
	if (f->prob <= 0)
		return false;
	pthread_mutex_lock(&f->mu);
	uint64_t r = next(&f->rng);
	pthread_mutex_unlock(&f->mu);
	/* the top 53 bits make a uniform double in [0, 1) */
	return (double)(r >> 11) * 0x1.0p-53 < f->prob;
}
