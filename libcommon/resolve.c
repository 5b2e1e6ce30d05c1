/* resolve.c: asynchronous host resolution for libpq connections, with
 * glibc's getaddrinfo_a, polled from a libev timer (no signals, no threads
 * of ours). */
#include "resolve.h"

#include "container.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HOSTS 16

struct resolve {
	ev_timer poll; /* first member */
	struct ev_loop *loop;
	resolve_done_fn done;
	void *arg;
	double deadline;
	int n;
	char host[1024];            /* the effective host list */
	char *names[MAX_HOSTS];     /* each item, or NULL when no lookup is needed */
	struct gaicb cb[MAX_HOSTS]; /* glibc writes ar_result into these */
	struct gaicb *list[MAX_HOSTS];
	struct addrinfo hints;
	double interval;
	bool orphan; /* given up on: free once glibc lets go of our buffers */
};

/* The host list libpq would use: the conninfo's, else PGHOST, else "". A
 * conninfo hostaddr means libpq will not resolve anything itself. */
static int effective_hosts(const char *conninfo, char *host, size_t len, bool *has_hostaddr,
			   char *why, size_t whylen)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo && *conninfo ? conninfo : "", &err);
	if (!opts) {
		snprintf(why, whylen, "bad conninfo: %s", err ? err : "out of memory");
		PQfreemem(err);
		return -1;
	}
	host[0] = '\0';
	*has_hostaddr = false;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (strcmp(o->keyword, "host") == 0 && o->val && *o->val)
			snprintf(host, len, "%s", o->val);
		if (strcmp(o->keyword, "hostaddr") == 0 && o->val && *o->val)
			*has_hostaddr = true;
	}
	PQconninfoFree(opts);
	if (!host[0] && getenv("PGHOST"))
		snprintf(host, len, "%s", getenv("PGHOST"));
	if (!*has_hostaddr && getenv("PGHOSTADDR") && *getenv("PGHOSTADDR"))
		*has_hostaddr = true;
	return 0;
}

/* A socket path, or an IP literal: libpq will not look it up. */
static bool literal(const char *h)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return !*h || h[0] == '/' || h[0] == '@' || inet_pton(AF_INET, h, buf) == 1 ||
	       inet_pton(AF_INET6, h, buf) == 1;
}

int resolve_needed(const char *conninfo, char *why, size_t whylen)
{
	char host[1024];
	bool has_hostaddr;
	if (effective_hosts(conninfo, host, sizeof(host), &has_hostaddr, why, whylen) != 0)
		return -1;
	if (has_hostaddr)
		return 0;
	char *save = NULL;
	for (char *h = strtok_r(host, ",", &save); h; h = strtok_r(NULL, ",", &save))
		if (!literal(h))
			return 1;
	return 0;
}

static double now(struct ev_loop *loop) { return ev_now(loop); }

static bool any_pending(struct resolve *r)
{
	for (int i = 0; i < r->n; i++)
		if (r->names[i] && gai_error(&r->cb[i]) == EAI_INPROGRESS)
			return true;
	return false;
}

static void destroy(struct resolve *r)
{
	ev_timer_stop(r->loop, &r->poll);
	for (int i = 0; i < r->n; i++) {
		if (r->cb[i].ar_result)
			freeaddrinfo(r->cb[i].ar_result);
		free(r->names[i]);
	}
	free(r);
}

static void rearm(struct resolve *r)
{
	/* poll gently: 1 ms, doubling to 50 ms */
	r->interval = r->interval * 2 > 0.05 ? 0.05 : r->interval * 2;
	ev_timer_set(&r->poll, r->interval, 0.);
	ev_timer_start(r->loop, &r->poll);
}

/* Stop caring: cancel what glibc still works on; free now if it let go,
 * else keep polling until it does. Never waits. */
static void abandon(struct resolve *r)
{
	r->orphan = true;
	for (int i = 0; i < r->n; i++)
		if (r->names[i] && gai_error(&r->cb[i]) == EAI_INPROGRESS)
			gai_cancel(&r->cb[i]);
	if (any_pending(r))
		rearm(r);
	else
		destroy(r);
}

static void on_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct resolve *r = (struct resolve *)w;
	if (r->orphan) {
		if (any_pending(r))
			rearm(r);
		else
			destroy(r);
		return;
	}
	bool pending = any_pending(r);
	if (pending && now(loop) < r->deadline) {
		rearm(r);
		return;
	}
	char why[512] = "";
	if (pending)
		snprintf(why, sizeof(why), "cannot resolve %.400s: no answer in time", r->host);
	for (int i = 0; i < r->n && !why[0]; i++) {
		int rc = r->names[i] ? gai_error(&r->cb[i]) : 0;
		if (rc != 0)
			snprintf(why, sizeof(why), "cannot resolve %.400s: %s", r->names[i],
				 gai_strerror(rc));
	}
	char hostaddr[2048] = "";
	size_t off = 0;
	for (int i = 0; !why[0] && i < r->n && off < sizeof(hostaddr); i++) {
		char ip[INET6_ADDRSTRLEN] = "";
		struct addrinfo *ai = r->names[i] ? r->cb[i].ar_result : NULL;
		if (ai && ai->ai_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, ip, sizeof(ip));
		else if (ai && ai->ai_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, ip,
				  sizeof(ip));
		off += (size_t)snprintf(hostaddr + off, sizeof(hostaddr) - off, "%s%s", i ? "," : "", ip);
	}
	resolve_done_fn done = r->done;
	void *arg = r->arg;
	char host[sizeof(r->host)];
	memcpy(host, r->host, sizeof(host));
	abandon(r); /* frees r now, or once glibc is done with a timed-out lookup */
	done(arg, host, why[0] ? NULL : hostaddr, why[0] ? why : NULL);
}

struct resolve *resolve_start(struct ev_loop *loop, const char *conninfo, double timeout,
			      resolve_done_fn done, void *arg)
{
	struct resolve *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->loop = loop;
	r->done = done;
	r->arg = arg;
	r->deadline = now(loop) + timeout;
	r->interval = 0.001;
	char why[256];
	bool has_hostaddr;
	if (effective_hosts(conninfo, r->host, sizeof(r->host), &has_hostaddr, why, sizeof(why)) != 0) {
		free(r);
		return NULL;
	}
	r->hints.ai_socktype = SOCK_STREAM;
	r->hints.ai_family = AF_UNSPEC;
	char copy[sizeof(r->host)];
	memcpy(copy, r->host, sizeof(copy));
	char *save = NULL;
	int to_ask = 0;
	for (char *h = strtok_r(copy, ",", &save); h && r->n < MAX_HOSTS;
	     h = strtok_r(NULL, ",", &save), r->n++) {
		if (literal(h))
			continue;
		r->names[r->n] = strdup(h);
		if (!r->names[r->n])
			continue;
		r->cb[r->n].ar_name = r->names[r->n];
		r->cb[r->n].ar_request = &r->hints;
		r->list[to_ask++] = &r->cb[r->n];
	}
	/* Batch the lookups; GAI_NOWAIT returns at once. */
	if (to_ask && getaddrinfo_a(GAI_NOWAIT, r->list, to_ask, NULL) != 0) {
		for (int i = 0; i < r->n; i++)
			free(r->names[i]);
		free(r);
		return NULL;
	}
	/* list[] was packed for the call; index it by host from now on */
	for (int i = 0; i < r->n; i++)
		r->list[i] = &r->cb[i];
	ev_timer_init(&r->poll, on_poll, 0., 0.);
	ev_timer_start(loop, &r->poll);
	return r;
}

void resolve_cancel(struct resolve *r)
{
	if (r && !r->orphan)
		abandon(r);
}
