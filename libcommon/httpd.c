/* httpd.c: libmicrohttpd in external-epoll mode on a libev loop. */
#include "httpd.h"

#include "container.h"
#include "log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct httpd {
	ev_io io;       /* MHD's epoll descriptor: readable when MHD has work */
	ev_timer timer; /* from MHD_get_timeout */
	struct ev_loop *loop;
	struct MHD_Daemon *mhd;
	httpd_handler_fn fn;
	void *ud;
	unsigned port;
	char url[96];         /* http://127.0.0.1:9100, the port as bound */
	char last_error[256]; /* MHD's last complaint, for httpd_start's why */
};

void httpd_text(struct httpd_reply *reply, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = NULL;
	int n = vasprintf(&text, fmt, ap);
	va_end(ap);
	reply->status = status;
	reply->content_type = "text/plain; charset=utf-8";
	reply->body = n < 0 ? NULL : text;
	reply->len = n < 0 ? 0 : (size_t)n;
}

/* MHD's messages end with a newline; one log line each. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct httpd *h = cls;
	vsnprintf(h->last_error, sizeof(h->last_error), fmt, ap);
	h->last_error[strcspn(h->last_error, "\r\n")] = '\0';
	if (h->mhd) /* during start, httpd_start reports it */
		log_warn("metrics http: %s", h->last_error);
}

/* Let MHD do what is ready (never blocks: external mode polls with a zero
 * timeout), then wake up again when it wants to run next. A timeout of 0
 * (work left over) fires on the next loop iteration, after other events. */
static void drive(struct httpd *h)
{
	MHD_run(h->mhd);
	MHD_UNSIGNED_LONG_LONG ms;
	ev_timer_stop(h->loop, &h->timer);
	if (MHD_get_timeout(h->mhd, &ms) == MHD_YES) {
		ev_timer_set(&h->timer, (double)ms / 1000.0, 0.);
		ev_timer_start(h->loop, &h->timer);
	}
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	drive((struct httpd *)w);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	drive(container_of(w, struct httpd, timer));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	(void)version;
	(void)upload_data;
	(void)con_cls;
	struct httpd *h = cls;
	struct httpd_reply reply = {0};
	bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (*upload_data_size) { /* a body we do not want: skip it */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		httpd_text(&reply, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	else {
		httpd_text(&reply, MHD_HTTP_NOT_FOUND, "not found: try /metrics or /healthz\n");
		char *fallback = reply.body;
		h->fn(h->ud, url, &reply);
		if (reply.body != fallback)
			free(fallback);
	}
	struct MHD_Response *resp;
	if (reply.body)
		resp = MHD_create_response_from_buffer(reply.len, reply.body, MHD_RESPMEM_MUST_FREE);
	else {
		static char oom[] = "out of memory\n";
		reply.status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		reply.content_type = "text/plain; charset=utf-8";
		resp = MHD_create_response_from_buffer(sizeof(oom) - 1, oom, MHD_RESPMEM_PERSISTENT);
	}
	if (!resp) {
		free(reply.body);
		return MHD_NO; /* MHD closes the connection */
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (reply.status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)reply.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

struct httpd *httpd_start(struct ev_loop *loop, const struct hostport *where,
			  httpd_handler_fn fn, void *ud, char *why, size_t whylen)
{
	struct httpd *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	h->loop = loop;
	h->fn = fn;
	h->ud = ud;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (where->family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* A scraper needs one connection; a few spare ones, each dropped after
	 * 10 s idle, so a stuck client cannot pile up descriptors. */
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
				  MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&where->addr,
				  MHD_OPTION_CONNECTION_LIMIT, 16u,
				  MHD_OPTION_CONNECTION_TIMEOUT, 10u,
				  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
				  MHD_OPTION_END);
	const union MHD_DaemonInfo *epoll =
		h->mhd ? MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	const union MHD_DaemonInfo *port =
		h->mhd ? MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT) : NULL;
	if (!epoll || epoll->epoll_fd < 0 || !port) {
		snprintf(why, whylen, "cannot listen on %s: %s", where->text,
			 h->last_error[0] ? h->last_error : "libmicrohttpd refused to start");
		if (h->mhd)
			MHD_stop_daemon(h->mhd);
		free(h);
		return NULL;
	}
	h->port = port->port;
	char host[INET6_ADDRSTRLEN] = "?";
	const void *in = where->family == AF_INET6
				 ? (const void *)&((const struct sockaddr_in6 *)&where->addr)->sin6_addr
				 : (const void *)&((const struct sockaddr_in *)&where->addr)->sin_addr;
	inet_ntop(where->family, in, host, sizeof(host));
	snprintf(h->url, sizeof(h->url), where->family == AF_INET6 ? "http://[%s]:%u" : "http://%s:%u",
		 host, h->port);
	ev_io_init(&h->io, on_io, epoll->epoll_fd, EV_READ);
	ev_io_start(loop, &h->io);
	ev_init(&h->timer, on_timer);
	drive(h);
	return h;
}

unsigned httpd_port(const struct httpd *h) { return h->port; }

const char *httpd_url(const struct httpd *h) { return h->url; }

void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	ev_io_stop(h->loop, &h->io);
	ev_timer_stop(h->loop, &h->timer);
	MHD_stop_daemon(h->mhd);
	free(h);
}
