/* http.c: libmicrohttpd glue: request bodies, replies, resets and cut
 * bodies, the per-request log line. One event-loop thread (epoll) serves
 * every connection; a request is answered at once and its connection
 * parked (parking.c) until the answer is due. */
#include "http.h"

#include "api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONN_MEMORY (8 * 1024) /* MHD's per-connection pool: headers and read buffer */
#define CONN_TIMEOUT_S 60       /* idle keep-alive connections are closed after this */

/* What one request accumulates between the access handler's calls. */
struct conn_ctx {
	double t_start;
	char *body;
	size_t len, cap;
	bool too_large;
	/* Decided, and waiting (parked) to be delivered: req borrows MHD's
	 * strings, which live as long as the request. */
	bool decided;
	struct api_request req;
	struct api_reply reply;
};

static void append_body(struct conn_ctx *cx, const char *data, size_t n)
{
	if (cx->too_large)
		return; /* keep reading, to answer 413 rather than drop the connection */
	if (cx->len + n > API_MAX_BODY) {
		cx->too_large = true;
		return;
	}
	if (cx->len + n + 1 > cx->cap) {
		size_t cap = cx->cap ? cx->cap : 1024;
		while (cap < cx->len + n + 1)
			cap *= 2;
		char *b = realloc(cx->body, cap);
		if (!b) {
			cx->too_large = true; /* out of memory: refuse it like a huge body */
			return;
		}
		cx->body = b;
		cx->cap = cap;
	}
	memcpy(cx->body + cx->len, data, n);
	cx->len += n;
	cx->body[cx->len] = '\0';
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	(void)kind;
	/* On failure the argument is lost; the list then reads as if it had
	 * not been given, and the ledger still shows the request. */
	form_add(cls, key, value ? value : "");
	return MHD_YES;
}

/* A body cut short: headers promise `declared` bytes, half the body
 * comes, then the connection closes. */
struct cut_body {
	char *body;
	size_t sent_len;
};

static ssize_t cut_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct cut_body *cb = cls;
	if (pos >= cb->sent_len)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	size_t n = cb->sent_len - (size_t)pos;
	if (n > max)
		n = max;
	memcpy(buf, cb->body + pos, n);
	return (ssize_t)n;
}

static void cut_free(void *cls)
{
	struct cut_body *cb = cls;
	free(cb->body);
	free(cb);
}

/* A TCP reset. MHD_NO makes MHD drop the connection without answering,
 * but MHD 0.9.75 calls shutdown(SHUT_WR) before closing, and that FIN would reach the client
 * first: it would read a clean, empty end of stream (curl: "Empty reply",
 * exit 52), not a reset. So the connection is aborted here: connect() to
 * AF_UNSPEC makes Linux drop an established TCP connection with an RST at
 * once (tcp_disconnect); MHD's later shutdown and close then find nothing
 * to send. SO_LINGER {1, 0} stays as the fallback: if the abort fails,
 * close() still resets rather than lingers. */
static enum MHD_Result reset_connection(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return MHD_NO;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	if (setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) != 0)
		sim_log(LOG_LEVEL_WARN, "SO_LINGER: %s", strerror(errno));
	struct sockaddr sa = {.sa_family = AF_UNSPEC};
	if (connect(ci->connect_fd, &sa, sizeof(sa)) != 0)
		sim_log(LOG_LEVEL_WARN, "cannot abort the connection (%s): the client may see a "
			"FIN instead of a reset", strerror(errno));
	return MHD_NO;
}

static enum MHD_Result deliver(struct MHD_Connection *conn, const struct api_request *req,
			       struct api_reply *r)
{
	if (r->action == REPLY_RESET)
		return reset_connection(conn);
	struct MHD_Response *resp;
	if (r->action == REPLY_CLOSE_MID_BODY || r->action == REPLY_CHUNKED_CUT) {
		struct cut_body *cb = malloc(sizeof(*cb));
		if (!cb)
			return MHD_NO;
		cb->body = r->body;
		cb->sent_len = r->body_len / 2;
		/* no length: MHD sends the body chunked (HTTP/1.1), and the
		 * stream then ends without its last, empty chunk */
		uint64_t declared = r->action == REPLY_CHUNKED_CUT ? MHD_SIZE_UNKNOWN : r->body_len;
		resp = MHD_create_response_from_callback(declared, 4096, cut_read, cb, cut_free);
		if (!resp) {
			free(cb);
			return MHD_NO;
		}
		r->body = NULL; /* the response owns it now */
	} else {
		resp = MHD_create_response_from_buffer(r->body_len, r->body ? r->body : (char *)"",
						       r->body ? MHD_RESPMEM_MUST_FREE
							       : MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		r->body = NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	MHD_add_response_header(resp, "Request-Id", r->request_id);
	if (req->idempotency_key && strncmp(req->path, "/v1/", 4) == 0)
		MHD_add_response_header(resp, "Idempotency-Key", req->idempotency_key);
	if (r->replayed) {
		MHD_add_response_header(resp, "Idempotent-Replayed", "true");
		if (r->original_request[0])
			MHD_add_response_header(resp, "Original-Request", r->original_request);
	}
	if (r->allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void log_request(const struct api_request *req, const struct api_reply *r, double t_end)
{
	char fault[48] = "";
	if (r->fault.kind == FAULT_DELAY)
		snprintf(fault, sizeof(fault), " fault=delay:%g", r->fault.delay_s);
	else if (r->fault.kind != FAULT_NONE)
		snprintf(fault, sizeof(fault), " fault=%s", fault_name(r->fault.kind));
	char status[16];
	if (r->action == REPLY_RESET)
		snprintf(status, sizeof(status), "reset");
	else
		snprintf(status, sizeof(status), "%d", r->status);
	sim_log(LOG_LEVEL_DEBUG, "%s %s -> %s%s%s%s%.80s%s%s%s %.1f ms", req->method, req->path,
		status,
		r->action == REPLY_CLOSE_MID_BODY || r->action == REPLY_CHUNKED_CUT ? " (body cut short)" : "", fault,
		req->idempotency_key ? " key=" : "", req->idempotency_key ? req->idempotency_key : "",
		r->replayed ? " replayed" : "", r->charge_id[0] ? " charge=" : "", r->charge_id,
		(t_end - req->t_start) * 1000);
}

/* The request is complete: decide its answer (the store changes now,
 * under the lock) and fill cx->req and cx->reply. */
static void decide(struct http_server *h, struct MHD_Connection *conn, struct conn_ctx *cx,
		   const char *url, const char *method)
{
	cx->req = (struct api_request){
		.method = method,
		.path = url,
		.authorization =
			MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
		.idempotency_key =
			MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key"),
		.body = cx->body,
		.body_len = cx->len,
		.body_too_large = cx->too_large,
		.t_start = cx->t_start,
	};
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &cx->req.query);
	api_handle(h->sim, &cx->req, &cx->reply);
	cx->decided = true;
}

/* Its wait is over: close the ledger entry (t_end), log, answer. */
static enum MHD_Result finish(struct http_server *h, struct MHD_Connection *conn,
			      struct conn_ctx *cx)
{
	struct api_reply *r = &cx->reply;
	api_finish(h->sim, &cx->req, r->action == REPLY_RESET ? 0 : r->status);
	log_request(&cx->req, r, sim_now());
	enum MHD_Result ret = deliver(conn, &cx->req, r);
	form_free(&cx->req.query);
	api_reply_free(r);
	cx->decided = false;
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	(void)version;
	struct http_server *h = cls;
	struct conn_ctx *cx = *con_cls;
	if (!cx) {
		/* First call: the headers are in; the body (if any) follows. */
		cx = calloc(1, sizeof(*cx));
		if (!cx)
			return MHD_NO;
		cx->t_start = sim_now();
		*con_cls = cx;
		return MHD_YES;
	}
	if (*upload_size) {
		append_body(cx, upload_data, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (cx->decided)
		return finish(h, conn, cx); /* called again once resumed */
	decide(h, conn, cx, url, method);
	/* The latency (and any delay fault) is waited out parked, holding no
	 * thread and no lock; libmicrohttpd calls again once it is over. */
	if (cx->reply.wait_s > 0 && parking_park(&h->parking, conn, cx->reply.wait_s))
		return MHD_YES;
	return finish(h, conn, cx);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)conn, (void)toe;
	struct conn_ctx *cx = *con_cls;
	if (cx) {
		if (cx->decided) {
			/* closed before it was answered (the server stopping) */
			form_free(&cx->req.query);
			api_reply_free(&cx->reply);
		}
		free(cx->body);
		free(cx);
		*con_cls = NULL;
	}
}

/* MHD's own messages (a client that vanished, a malformed request) are
 * noise in a fault-injection run: debug level. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	sim_log(LOG_LEVEL_DEBUG, "libmicrohttpd: %s", line);
}

/* Our own listening socket: clear errors (the port in use...), and the
 * chosen port read back with getsockname for --port 0. */
static int listen_on(int port, int *bound, char *err, size_t errlen)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(err, errlen, "cannot bind 127.0.0.1:%d: %s", port, strerror(errno));
		goto fail;
	}
	/* A deep backlog: a burst of hundreds of fresh connections must wait
	 * in the kernel, not be refused. */
	if (listen(fd, 4096) != 0) {
		snprintf(err, errlen, "listen: %s", strerror(errno));
		goto fail;
	}
	if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		snprintf(err, errlen, "getsockname: %s", strerror(errno));
		goto fail;
	}
	*bound = ntohs(sa.sin_port);
	return fd;
fail:
	close(fd);
	return -1;
}

int http_start(struct http_server *h, struct sim *s, int port, int max_connections, char *err,
	       size_t errlen)
{
	memset(h, 0, sizeof(*h));
	h->sim = s;
	if (parking_start(&h->parking, err, errlen) != 0)
		return -1;
	int fd = listen_on(port, &h->port, err, errlen);
	if (fd < 0) {
		parking_stop(&h->parking);
		return -1;
	}
	/* epoll: one thread for thousands of connections, no FD_SETSIZE
	 * limit; suspend/resume: waits are parked, not slept in a thread. */
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ERROR_LOG;
	h->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, h,
		/* first, so that no message goes to MHD's default logger */
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)max_connections,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
	if (!h->daemon) {
		snprintf(err, errlen, "libmicrohttpd would not start on 127.0.0.1:%d", h->port);
		close(fd);
		parking_stop(&h->parking);
		return -1;
	}
	return 0;
}

void http_stop(struct http_server *h)
{
	/* Answer every parked request now: libmicrohttpd must not stop while
	 * a connection is suspended. */
	parking_release_all(&h->parking);
	if (h->daemon)
		MHD_stop_daemon(h->daemon); /* closes the listening socket too */
	h->daemon = NULL;
	parking_stop(&h->parking);
}
