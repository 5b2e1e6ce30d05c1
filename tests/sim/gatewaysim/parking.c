/* parking.c: suspended connections and the one thread that resumes them
 * when they are due. */
#include "parking.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RESUME_BATCH 256 /* resumed per pass, outside the lock */

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct timespec mono_timespec(double t)
{
	struct timespec ts = {.tv_sec = (time_t)t};
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static void heap_swap(struct parked *a, struct parked *b)
{
	struct parked t = *a;
	*a = *b;
	*b = t;
}

/* Lock held; the caller made room. */
static void heap_push(struct parking *p, struct parked item)
{
	size_t i = p->len++;
	p->heap[i] = item;
	while (i > 0 && p->heap[(i - 1) / 2].due > p->heap[i].due) {
		heap_swap(&p->heap[(i - 1) / 2], &p->heap[i]);
		i = (i - 1) / 2;
	}
}

/* Lock held; the heap is not empty. */
static struct parked heap_pop(struct parking *p)
{
	struct parked top = p->heap[0];
	p->heap[0] = p->heap[--p->len];
	for (size_t i = 0;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < p->len && p->heap[l].due < p->heap[m].due)
			m = l;
		if (r < p->len && p->heap[r].due < p->heap[m].due)
			m = r;
		if (m == i)
			break;
		heap_swap(&p->heap[i], &p->heap[m]);
		i = m;
	}
	return top;
}

/* Every connection that is due (all of them once stopping), a batch at a
 * time: MHD_resume_connection runs without our lock, so that the access
 * handler (which parks under it) never waits for a resume pass. */
static void *resume_loop(void *arg)
{
	struct parking *p = arg;
	struct MHD_Connection *batch[RESUME_BATCH];
	pthread_mutex_lock(&p->mu);
	for (;;) {
		size_t n = 0;
		double t = mono_now();
		while (p->len > 0 && n < RESUME_BATCH && (p->stopping || p->heap[0].due <= t))
			batch[n++] = heap_pop(p).conn;
		if (n > 0) {
			pthread_mutex_unlock(&p->mu);
			for (size_t i = 0; i < n; i++)
				MHD_resume_connection(batch[i]);
			pthread_mutex_lock(&p->mu);
			continue;
		}
		if (p->stopping)
			break;
		if (p->len == 0) {
			pthread_cond_wait(&p->changed, &p->mu);
		} else {
			struct timespec due = mono_timespec(p->heap[0].due);
			pthread_cond_timedwait(&p->changed, &p->mu, &due);
		}
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int parking_start(struct parking *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	pthread_condattr_t ca;
	int rc = pthread_condattr_init(&ca);
	if (rc == 0) {
		/* resume times are monotonic: a wall-clock step must not stretch
		 * or cut a latency */
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		rc = pthread_cond_init(&p->changed, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (rc != 0) {
		snprintf(err, errlen, "pthread_cond_init: %s", strerror(rc));
		return -1;
	}
	rc = pthread_mutex_init(&p->mu, NULL);
	if (rc == 0) {
		rc = pthread_create(&p->thread, NULL, resume_loop, p);
		if (rc != 0)
			pthread_mutex_destroy(&p->mu);
		p->running = rc == 0;
	}
	if (rc != 0) {
		pthread_cond_destroy(&p->changed);
		snprintf(err, errlen, "cannot start the resume thread: %s", strerror(rc));
		return -1;
	}
	return 0;
}

bool parking_park(struct parking *p, struct MHD_Connection *conn, double seconds)
{
	struct parked item = {.due = mono_now() + seconds, .conn = conn};
	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mu);
		return false;
	}
	if (p->len == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 1024;
		struct parked *h = realloc(p->heap, cap * sizeof(*h));
		if (!h) {
			pthread_mutex_unlock(&p->mu);
			return false;
		}
		p->heap = h;
		p->cap = cap;
	}
	/* Suspended before the resume thread can see it: a resume must never
	 * come first. */
	MHD_suspend_connection(conn);
	heap_push(p, item);
	if (p->heap[0].conn == conn)
		pthread_cond_signal(&p->changed); /* the earliest now: rearm the wait */
	pthread_mutex_unlock(&p->mu);
	return true;
}

void parking_release_all(struct parking *p)
{
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_signal(&p->changed);
	pthread_mutex_unlock(&p->mu);
	/* The thread resumes what is left and ends: once joined, nothing is
	 * suspended and nothing more will be. */
	if (p->running)
		pthread_join(p->thread, NULL);
	p->running = false;
}

void parking_stop(struct parking *p)
{
	parking_release_all(p);
	free(p->heap);
	p->heap = NULL;
	pthread_cond_destroy(&p->changed);
	pthread_mutex_destroy(&p->mu);
}
