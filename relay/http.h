/* http.h: libcurl's multi interface on the libev loop, for gateway HTTP and
 * SMTP. Transfers run concurrently on the one loop; nothing blocks (libcurl
 * must resolve names asynchronously: http_client_new refuses otherwise). */
#ifndef RELAY_HTTP_H
#define RELAY_HTTP_H

#include <curl/curl.h>
#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

struct http_client;
struct http_transfer;

/* Called once per transfer, when it is over. The transfer (and its body) is
 * freed when the callback returns. */
typedef void (*http_done_fn)(struct http_transfer *t, void *arg);

struct http_options {
	double timeout;       /* whole transfer, connect included, seconds */
	double connect_timeout;
	size_t max_body;      /* bytes of answer read; more is "truncated" */
	/* PEM CA bundles trusted instead of the system's (CURLOPT_CAINFO), or
	 * NULL/"": gateway requests, SMTP. Borrowed for the client's life. */
	const char *gateway_ca_file, *smtp_ca_file;
};

struct http_client *http_client_new(struct ev_loop *loop, const struct http_options *opt,
				    char *why, size_t whylen);
void http_client_free(struct http_client *c); /* aborts transfers, no callbacks */
int http_active(const struct http_client *c);

/* A charge POST: always on a fresh connection, never reused afterwards
 * (PROTOCOL.md step 2: libcurl before 8.16 may silently re-send a POST on a
 * reused connection that dies). headers and body are taken over. */
struct http_transfer *http_post_fresh(struct http_client *c, const char *url,
				      struct curl_slist *headers, char *body, http_done_fn done,
				      void *arg);

/* A read (lookup): connections may be reused, it changes nothing.
 * headers are taken over. */
struct http_transfer *http_get(struct http_client *c, const char *url,
			       struct curl_slist *headers, http_done_fn done, void *arg);

/* A read sent as a POST (APIs whose reads take a body, like Authorize.Net's
 * reporting calls): connections may be reused, it changes nothing. headers
 * and body are taken over. */
struct http_transfer *http_post_read(struct http_client *c, const char *url,
				     struct curl_slist *headers, char *body, http_done_fn done,
				     void *arg);

/* An SMTP submission; connections may be reused. message is taken over
 * (CRLF line ends; libcurl dot-stuffs). */
struct http_transfer *http_smtp_send(struct http_client *c, const char *url, const char *from,
				     const char *to, char *message, http_done_fn done, void *arg);

/* Ask `ok(arg)` once connected, right before the first byte is sent; if it
 * says no, the transfer is abandoned unsent and its result says
 * `held_back` (the request provably never left). */
void http_before_send(struct http_transfer *t, bool (*ok)(void *arg));

/* Fire `fn` once the request's bytes have all been handed to the socket
 * (for the relay.after_send crash point; costs a debug callback). */
void http_on_sent(struct http_transfer *t, void (*fn)(void *arg));

/* What came back, valid inside the done callback. */
struct http_result {
	CURLcode curl_result;
	const char *error; /* curl's detailed message, or "" */
	bool connected;    /* a connection was established */
	long status;       /* HTTP status or last SMTP reply code; 0 if none */
	const char *body;  /* NUL-terminated */
	size_t body_len;
	bool body_truncated;
	double retry_after; /* Retry-After header in seconds, or 0 */
	bool held_back;     /* http_before_send said no: nothing was sent */
	double seconds;     /* total time */
};
const struct http_result *http_result(const struct http_transfer *t);

#endif
