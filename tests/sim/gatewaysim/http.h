/* http.h: the HTTP side of the simulator (libmicrohttpd): one epoll
 * thread for every connection. A request that waits out its latency or a
 * delay fault is parked (parking.h): it holds no thread and never holds
 * up the others. */
#ifndef GWS_HTTP_H
#define GWS_HTTP_H

#include "parking.h"
#include "sim.h"

#include <stddef.h>

struct http_server {
	struct MHD_Daemon *daemon;
	struct sim *sim;
	struct parking parking;
	int port; /* the port bound (useful with --port 0) */
};

/* Listen on 127.0.0.1:port and serve. 0, or -1 with err. */
int http_start(struct http_server *h, struct sim *s, int port, int max_connections, char *err,
	       size_t errlen);
/* Answer the parked requests at once, stop accepting, close the
 * connections, join the threads. */
void http_stop(struct http_server *h);

#endif
