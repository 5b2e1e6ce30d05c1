/* parking.h: connections whose answer is not due yet. A request's answer
 * is decided at once; the connection is then suspended (libmicrohttpd's
 * MHD_suspend_connection) and one timer thread resumes it when its
 * latency or delay fault is over. Waiting costs no thread and no CPU per
 * connection, only a slot in a min-heap of resume times. */
#ifndef GWS_PARKING_H
#define GWS_PARKING_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct MHD_Connection;

struct parked {
	double due; /* CLOCK_MONOTONIC seconds */
	struct MHD_Connection *conn;
};

struct parking {
	pthread_mutex_t mu;
	pthread_cond_t changed; /* a new earliest resume time, or stopping */
	pthread_t thread;
	bool running;  /* the thread is to be joined */
	bool stopping;
	struct parked *heap; /* min-heap on due, guarded by mu */
	size_t len, cap;
};

/* Start the timer thread. 0, or -1 with err. */
int parking_start(struct parking *p, char *err, size_t errlen);
/* From the access handler only: suspend conn and have it resumed after
 * seconds (libmicrohttpd then calls the handler again). false when
 * stopping or out of memory: conn is not suspended; answer it now. */
bool parking_park(struct parking *p, struct MHD_Connection *conn, double seconds);
/* Resume every parked connection now, and refuse to park any more:
 * libmicrohttpd must not be stopped while a connection is suspended. */
void parking_release_all(struct parking *p);
/* Join the thread and free. After parking_release_all. */
void parking_stop(struct parking *p);

#endif
