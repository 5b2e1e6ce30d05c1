/* httpd.h: a small HTTP server (libmicrohttpd) driven by the daemon's own
 * libev loop, for /metrics and /healthz.
 *
 * No thread of MHD's own: MHD runs in "external polling" mode with epoll.
 * Its one epoll descriptor (MHD_DAEMON_INFO_EPOLL_FD) is watched by an
 * ev_io; when it is readable, or when the ev_timer set from
 * MHD_get_timeout fires (connection timeouts, work MHD left for later),
 * MHD_run does what is ready without blocking and the timer is set again.
 * So handlers run on the loop, between the daemon's other events, and read
 * the daemon's counters without locks. Only GET and HEAD are served. */
#ifndef CG_HTTPD_H
#define CG_HTTPD_H

#include "hostport.h"

#include <ev.h>
#include <stddef.h>

struct httpd;

struct httpd_reply {
	int status;               /* 404 unless the handler says otherwise */
	const char *content_type; /* static text */
	char *body;               /* malloc'd, taken over; NULL: out of memory (500) */
	size_t len;
};

/* One request: path is the URL's path (no query). Fill reply. */
typedef void (*httpd_handler_fn)(void *ud, const char *path, struct httpd_reply *reply);

/* Listen on `where` (port 0: any free port, see httpd_port). NULL, with
 * why, when the address cannot be bound. */
struct httpd *httpd_start(struct ev_loop *loop, const struct hostport *where,
			  httpd_handler_fn fn, void *ud, char *why, size_t whylen);
unsigned httpd_port(const struct httpd *h);
/* "http://127.0.0.1:9100", with the port as bound, for log lines. */
const char *httpd_url(const struct httpd *h);
/* Stop listening and close every connection. NULL is fine. */
void httpd_free(struct httpd *h);

/* For handlers: a malloc'd one-line text reply. */
void httpd_text(struct httpd_reply *reply, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
