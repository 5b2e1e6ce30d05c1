/* http.c: libcurl multi_socket driven by libev (the evhiperfifo pattern,
 * with its integer-division timer bug fixed and none of its calls into
 * libcurl from inside libcurl's own callbacks). */
#include "http.h"

#include "container.h"
#include "log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct http_client {
	struct ev_loop *loop;
	CURLM *multi;
	CURLSH *share; /* DNS cache and TLS sessions, so fresh connections resume */
	ev_timer timer;
	struct http_options opt;
	int active;
	struct http_transfer *transfers; /* running, to abort them at free */
};

/* One watcher per socket libcurl asks us to watch. */
struct sock_watch {
	ev_io io;
	struct http_client *client;
};

struct http_transfer {
	struct http_transfer *prev, *next;
	CURL *easy;
	struct http_client *client;
	http_done_fn done;
	void *arg;
	struct curl_slist *headers, *rcpt;
	char *upload;
	size_t upload_len, upload_off;
	char *body;
	size_t body_len, body_cap;
	bool truncated;
	double retry_after;
	void (*on_sent)(void *arg);
	bool (*before_send)(void *arg);
	bool held_back;
	size_t sent_bytes;
	char errbuf[CURL_ERROR_SIZE];
	struct http_result result;
};

static void check_done(struct http_client *c);

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct http_client *c = container_of(w, struct http_client, timer);
	int running;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

/* libcurl's TIMERFUNCTION: only (re)arm our timer here. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct http_client *c = userp;
	ev_timer_stop(c->loop, &c->timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&c->timer, (double)timeout_ms / 1000.0, 0.);
		ev_timer_start(c->loop, &c->timer);
	}
	return 0;
}

static void on_socket(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	struct sock_watch *sw = (struct sock_watch *)w;
	struct http_client *c = sw->client;
	int action = (revents & EV_READ ? CURL_CSELECT_IN : 0) |
		     (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;
	curl_multi_socket_action(c->multi, w->fd, action, &running);
	check_done(c);
}

/* libcurl's SOCKETFUNCTION: watch, re-watch or forget a socket. */
static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)easy;
	struct http_client *c = userp;
	struct sock_watch *sw = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (sw) {
			ev_io_stop(c->loop, &sw->io);
			free(sw);
			curl_multi_assign(c->multi, s, NULL);
		}
		return 0;
	}
	if (!sw) {
		sw = calloc(1, sizeof(*sw));
		if (!sw)
			return -1;
		sw->client = c;
		ev_init(&sw->io, on_socket);
		curl_multi_assign(c->multi, s, sw);
	}
	int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
	ev_io_stop(c->loop, &sw->io);
	ev_io_set(&sw->io, s, events);
	ev_io_start(c->loop, &sw->io);
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_transfer *t = userp;
	size_t n = size * nmemb;
	size_t max = t->client->opt.max_body;
	if (t->body_len + n > max) {
		t->truncated = true;
		return 0; /* abort: CURLE_WRITE_ERROR; classified as ambiguous */
	}
	if (t->body_len + n + 1 > t->body_cap) {
		size_t cap = (t->body_len + n + 1) * 2;
		if (cap > max + 1)
			cap = max + 1;
		char *b = realloc(t->body, cap);
		if (!b)
			return 0;
		t->body = b;
		t->body_cap = cap;
	}
	memcpy(t->body + t->body_len, data, n);
	t->body_len += n;
	t->body[t->body_len] = '\0';
	return n;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_transfer *t = userp;
	size_t n = size * nmemb;
	static const char name[] = "retry-after:";
	if (n > sizeof(name) && strncasecmp(data, name, sizeof(name) - 1) == 0) {
		char value[32];
		size_t len = n - (sizeof(name) - 1);
		if (len >= sizeof(value))
			len = sizeof(value) - 1;
		memcpy(value, data + sizeof(name) - 1, len);
		value[len] = '\0';
		char *end;
		double s = strtod(value, &end);
		if (end != value && isfinite(s) && s >= 0 && s < 86400)
			t->retry_after = s;
	}
	return n;
}

static size_t read_cb(char *buf, size_t size, size_t nmemb, void *userp)
{
	struct http_transfer *t = userp;
	size_t n = size * nmemb, left = t->upload_len - t->upload_off;
	if (n > left)
		n = left;
	memcpy(buf, t->upload + t->upload_off, n);
	t->upload_off += n;
	return n;
}

static int prereq_cb(void *userp, char *conn_primary_ip, char *conn_local_ip,
		     int conn_primary_port, int conn_local_port)
{
	(void)conn_primary_ip;
	(void)conn_local_ip;
	(void)conn_primary_port;
	(void)conn_local_port;
	struct http_transfer *t = userp;
	if (t->before_send && !t->before_send(t->arg)) {
		t->held_back = true;
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

/* Installed only by http_on_sent: fires once every body byte is out. */
static int debug_cb(CURL *easy, curl_infotype type, char *data, size_t size, void *userp)
{
	(void)easy;
	(void)data;
	struct http_transfer *t = userp;
	if (type == CURLINFO_DATA_OUT)
		t->sent_bytes += size;
	if (t->on_sent && (type == CURLINFO_DATA_OUT || type == CURLINFO_HEADER_OUT) &&
	    t->sent_bytes >= t->upload_len) {
		void (*fn)(void *) = t->on_sent;
		t->on_sent = NULL;
		fn(t->arg);
	}
	return 0;
}

static void transfer_free(struct http_transfer *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else if (t->client->transfers == t)
		t->client->transfers = t->next;
	if (t->next)
		t->next->prev = t->prev;
	if (t->easy)
		curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->headers);
	curl_slist_free_all(t->rcpt);
	if (t->upload) /* a request body may hold a secret (authorizenet's key) */
		explicit_bzero(t->upload, t->upload_len);
	free(t->upload);
	free(t->body);
	free(t);
}

/* Transfers that ended: collect what happened, answer, free. A CURLMsg is
 * invalid after curl_multi_remove_handle, so read it first. */
static void check_done(struct http_client *c)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(c->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *easy = msg->easy_handle;
		CURLcode rc = msg->data.result;
		struct http_transfer *t = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
		curl_multi_remove_handle(c->multi, easy);
		c->active--;

		struct http_result *r = &t->result;
		r->curl_result = rc;
		r->error = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
		/* "Not connected" must be certain, since it allows a re-send:
		 * any sign of a connection or of bytes sent counts as connected. */
		curl_off_t connect_us = 0;
		long connects = 0, request_bytes = 0;
		curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect_us);
		curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
		curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_bytes);
		r->connected = rc == CURLE_OK || connect_us > 0 || connects > 0 ||
			       request_bytes > 0 || r->status > 0 || t->sent_bytes > 0;
		curl_off_t total_us = 0;
		curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total_us);
		r->seconds = (double)total_us / 1e6;
		r->body = t->body ? t->body : "";
		r->body_len = t->body_len;
		r->body_truncated = t->truncated;
		r->retry_after = t->retry_after;
		r->held_back = t->held_back;
		t->done(t, t->arg);
		transfer_free(t);
	}
}

/* Certificates are always verified, name included (libcurl's defaults,
 * stated so no one turns them off); ca_file replaces the system's CAs. */
static void tls_trust(CURL *e, const char *ca_file)
{
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca_file && ca_file[0])
		curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
}

static struct http_transfer *transfer_new(struct http_client *c, const char *url,
					  http_done_fn done, void *arg)
{
	struct http_transfer *t = calloc(1, sizeof(*t));
	if (!t || !(t->easy = curl_easy_init())) {
		free(t);
		return NULL;
	}
	t->client = c;
	t->done = done;
	t->arg = arg;
	CURL *e = t->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_SHARE, c->share);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(c->opt.timeout * 1000));
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->opt.connect_timeout * 1000));
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* never follow a redirect */
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	return t;
}

static struct http_transfer *start(struct http_client *c, struct http_transfer *t)
{
	t->next = c->transfers;
	if (c->transfers)
		c->transfers->prev = t;
	c->transfers = t;
	if (curl_multi_add_handle(c->multi, t->easy) != CURLM_OK) {
		transfer_free(t);
		return NULL;
	}
	c->active++;
	return t;
}

/* A POST of body (headers and body taken over), not yet started; NULL
 * when out of memory. */
static struct http_transfer *post_new(struct http_client *c, const char *url,
				      struct curl_slist *headers, char *body, http_done_fn done,
				      void *arg)
{
	struct http_transfer *t = transfer_new(c, url, done, arg);
	if (!t) {
		curl_slist_free_all(headers);
		if (body)
			explicit_bzero(body, strlen(body));
		free(body);
		return NULL;
	}
	t->headers = headers;
	t->upload = body;
	t->upload_len = body ? strlen(body) : 0;
	CURL *e = t->easy;
	tls_trust(e, c->opt.gateway_ca_file);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->upload);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->upload_len);
	return t;
}

struct http_transfer *http_post_fresh(struct http_client *c, const char *url,
				      struct curl_slist *headers, char *body, http_done_fn done,
				      void *arg)
{
	struct http_transfer *t = post_new(c, url, headers, body, done, arg);
	if (!t)
		return NULL;
	CURL *e = t->easy;
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	/* HTTP/2 lets libcurl retry a refused stream on its own: one request,
	 * one connection, nothing resent behind our back. */
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	return start(c, t);
}

struct http_transfer *http_post_read(struct http_client *c, const char *url,
				     struct curl_slist *headers, char *body, http_done_fn done,
				     void *arg)
{
	struct http_transfer *t = post_new(c, url, headers, body, done, arg);
	return t ? start(c, t) : NULL;
}

struct http_transfer *http_get(struct http_client *c, const char *url,
			       struct curl_slist *headers, http_done_fn done, void *arg)
{
	struct http_transfer *t = transfer_new(c, url, done, arg);
	if (!t) {
		curl_slist_free_all(headers);
		return NULL;
	}
	t->headers = headers;
	tls_trust(t->easy, c->opt.gateway_ca_file);
	curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(t->easy, CURLOPT_HTTPGET, 1L);
	return start(c, t);
}

struct http_transfer *http_smtp_send(struct http_client *c, const char *url, const char *from,
				     const char *to, char *message, http_done_fn done, void *arg)
{
	struct http_transfer *t = transfer_new(c, url, done, arg);
	if (!t) {
		free(message);
		return NULL;
	}
	t->upload = message;
	t->upload_len = strlen(message);
	t->rcpt = curl_slist_append(NULL, to);
	if (!t->rcpt) {
		transfer_free(t);
		return NULL;
	}
	CURL *e = t->easy;
	tls_trust(e, c->opt.smtp_ca_file);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(e, CURLOPT_MAIL_RCPT, t->rcpt);
	curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(e, CURLOPT_READDATA, t);
	curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)t->upload_len);
	return start(c, t);
}

void http_before_send(struct http_transfer *t, bool (*ok)(void *arg))
{
	t->before_send = ok;
	curl_easy_setopt(t->easy, CURLOPT_PREREQFUNCTION, prereq_cb);
	curl_easy_setopt(t->easy, CURLOPT_PREREQDATA, t);
}

void http_on_sent(struct http_transfer *t, void (*fn)(void *arg))
{
	/* libcurl reports bytes out only in verbose mode; with a debug function
	 * set, verbose prints nothing. */
	t->on_sent = fn;
	curl_easy_setopt(t->easy, CURLOPT_DEBUGFUNCTION, debug_cb);
	curl_easy_setopt(t->easy, CURLOPT_DEBUGDATA, t);
	curl_easy_setopt(t->easy, CURLOPT_VERBOSE, 1L);
}

const struct http_result *http_result(const struct http_transfer *t) { return &t->result; }

int http_active(const struct http_client *c) { return c->active; }

struct http_client *http_client_new(struct ev_loop *loop, const struct http_options *opt,
				    char *why, size_t whylen)
{
	const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
	if (!(info->features & CURL_VERSION_ASYNCHDNS)) {
		snprintf(why, whylen,
			 "libcurl %s resolves names synchronously, which would block the event loop",
			 info->version);
		return NULL;
	}
	struct http_client *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	c->loop = loop;
	c->opt = *opt;
	c->multi = curl_multi_init();
	c->share = curl_share_init();
	if (!c->multi || !c->share) {
		snprintf(why, whylen, "cannot initialise libcurl");
		http_client_free(c);
		return NULL;
	}
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	ev_init(&c->timer, on_timer);
	return c;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	ev_timer_stop(c->loop, &c->timer);
	if (c->multi) {
		/* Abort what is still running, without callbacks. */
		while (c->transfers) {
			struct http_transfer *t = c->transfers;
			curl_multi_remove_handle(c->multi, t->easy);
			transfer_free(t);
		}
		curl_multi_cleanup(c->multi);
	}
	if (c->share)
		curl_share_cleanup(c->share);
	free(c);
}
