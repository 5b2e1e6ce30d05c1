/* sinklog.c: serialise log_at across the sink's connection threads. */
#include "sinklog.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

void sink_log(enum log_level level, const char *fmt, ...)
{
	/* log_at truncates at 2 KiB anyway; format here, outside the lock */
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_mu);
	log_at(level, NULL, "%s", msg);
	pthread_mutex_unlock(&log_mu);
}
