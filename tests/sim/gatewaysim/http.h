/* http.h: the HTTP side of the simulator (libmicrohttpd): one thread per
 * connection, so a request that waits out its latency or a delay fault
 * holds only its own thread and never holds up the others. */
#ifndef GWS_HTTP_H
#define GWS_HTTP_H

#include "sim.h"

#include <stddef.h>

struct http_server {
	struct MHD_Daemon *daemon;
	struct sim *sim;
	int port; /* the port bound (useful with --port 0) */
};

/* Listen on 127.0.0.1:port and serve. 0, or -1 with err. */
int http_start(struct http_server *h, struct sim *s, int port, int max_connections, char *err,
	       size_t errlen);
/* Stop accepting, finish the connections, join the threads. Call
 * sim_stop first so that sleeping requests wake up. */
void http_stop(struct http_server *h);

#endif
