/* server.h: the listening socket on 127.0.0.1, one thread per connection,
 * and a clean stop on SIGTERM/SIGINT (every connection closed and joined). */
#ifndef SMTPSINK_SERVER_H
#define SMTPSINK_SERVER_H

#include "session.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;

struct server {
	struct session_env env;
	int listen_fd;
	int port; /* the one bound (the chosen one for --port 0) */
	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t all_gone;
	struct conn *live; /* running threads, their sockets still open */
	struct conn *done; /* finished threads, not yet joined */
	size_t nlive;
	uint64_t next_conn;
};

/* Bind and listen. 0, or -1 with err set. */
int server_listen(struct server *srv, const struct session_env *env, char *err,
		  size_t errlen);

/* Accept until SIGTERM or SIGINT (which the caller has blocked in every
 * thread, this one included); then close every connection, join every
 * thread. 0, or -1 with err set when the loop itself failed. */
int server_run(struct server *srv, char *err, size_t errlen);

void server_close(struct server *srv);

#endif
