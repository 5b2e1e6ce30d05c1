/* server.c: accept loop, a thread per connection, clean stop on a signal. */
#include "server.h"

#include "sinklog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Sessions recurse nowhere and keep their buffers on the heap; a small
 * stack lets a thousand connections cost little address space (ASan's
 * frames are larger, hence not smaller still). */
#define THREAD_STACK (512 * 1024)

struct conn {
	struct conn *next, *prev;
	struct server *srv;
	pthread_t thread;
	int fd; /* open while on the live list */
	uint64_t id;
	char peer[64];
};

int server_listen(struct server *srv, const struct session_env *env, char *err, size_t errlen)
{
	memset(srv, 0, sizeof(*srv));
	srv->env = *env;
	srv->listen_fd = -1;
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->all_gone, NULL);

	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	int one = 1;
	/* a test run restarting the sink on its old port must not wait out
	 * TIME_WAIT */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)env->cfg->port_num),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		snprintf(err, errlen, "cannot bind 127.0.0.1:%d: %s", env->cfg->port_num,
			 strerror(errno));
		close(fd);
		return -1;
	}
	if (listen(fd, SOMAXCONN) != 0) {
		snprintf(err, errlen, "listen: %s", strerror(errno));
		close(fd);
		return -1;
	}
	socklen_t alen = sizeof(a);
	if (getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
		snprintf(err, errlen, "getsockname: %s", strerror(errno));
		close(fd);
		return -1;
	}
	srv->listen_fd = fd;
	srv->port = ntohs(a.sin_port);
	return 0;
}

static void list_remove(struct conn **head, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

static void list_push(struct conn **head, struct conn *c)
{
	c->prev = NULL;
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct server *srv = c->srv;
	session_run(&srv->env, c->fd, c->id, c->peer);
	pthread_mutex_lock(&srv->mu);
	/* closed under the lock: the stopping thread only shutdown()s sockets
	 * on the live list, and the number must not be reused meanwhile */
	close(c->fd);
	c->fd = -1;
	list_remove(&srv->live, c);
	list_push(&srv->done, c);
	if (--srv->nlive == 0)
		pthread_cond_broadcast(&srv->all_gone);
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}

/* Join the threads that have finished (their conn structs go with them). */
static void reap(struct server *srv)
{
	pthread_mutex_lock(&srv->mu);
	struct conn *list = srv->done;
	srv->done = NULL;
	pthread_mutex_unlock(&srv->mu);
	while (list) {
		struct conn *next = list->next;
		pthread_join(list->thread, NULL);
		free(list);
		list = next;
	}
}

static void accept_one(struct server *srv)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	/* accept4 does not pass O_NONBLOCK on: sessions block, with timeouts */
	int fd = accept4(srv->listen_fd, (struct sockaddr *)&a, &alen, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			slog_warn("accept: %s; pausing 100 ms", strerror(errno));
			usleep(100 * 1000); /* the connection waits in the backlog */
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			   errno != ECONNABORTED) {
			slog_warn("accept: %s", strerror(errno));
		}
		return;
	}
	double t = srv->env.cfg->idle_timeout;
	struct timeval tv = {.tv_sec = (time_t)t,
			     .tv_usec = (suseconds_t)((t - (double)(time_t)t) * 1e6)};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

	pthread_mutex_lock(&srv->mu);
	uint64_t id = ++srv->next_conn;
	bool full = srv->nlive >= (size_t)srv->env.cfg->max_connections;
	pthread_mutex_unlock(&srv->mu);
	if (full) {
		slog_warn("conn=%llu: refused: already %d connections (--max-connections)",
			  (unsigned long long)id, srv->env.cfg->max_connections);
		session_refuse(fd, "too many connections");
		close(fd);
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		slog_error("conn=%llu: out of memory", (unsigned long long)id);
		session_refuse(fd, "out of memory");
		close(fd);
		return;
	}
	c->srv = srv;
	c->fd = fd;
	c->id = id;
	char ip[INET_ADDRSTRLEN] = "?";
	inet_ntop(AF_INET, &a.sin_addr, ip, sizeof(ip));
	snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, (unsigned)ntohs(a.sin_port));

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	/* on the live list before the thread starts: it unlinks itself */
	pthread_mutex_lock(&srv->mu);
	list_push(&srv->live, c);
	srv->nlive++;
	int rc = pthread_create(&c->thread, &attr, conn_main, c);
	if (rc != 0) {
		list_remove(&srv->live, c);
		srv->nlive--;
	}
	pthread_mutex_unlock(&srv->mu);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		slog_error("conn=%llu: cannot start a thread: %s", (unsigned long long)id,
			   strerror(rc));
		session_refuse(fd, "cannot start a thread");
		close(fd);
		free(c);
	}
}

/* Wake every session (its blocking recv or send returns), then wait for
 * all of them to finish and join them. */
static void stop_all(struct server *srv)
{
	pthread_mutex_lock(&srv->mu);
	size_t n = srv->nlive;
	for (struct conn *c = srv->live; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (srv->nlive > 0)
		pthread_cond_wait(&srv->all_gone, &srv->mu);
	pthread_mutex_unlock(&srv->mu);
	reap(srv);
	if (n)
		slog_info("closed %zu open connection(s)", n);
}

int server_run(struct server *srv, char *err, size_t errlen)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* the signals arrive as a readable fd beside the listening socket, so
	 * stopping is ordinary code, not a handler's */
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		return -1;
	}
	int rc = 0;
	for (;;) {
		struct pollfd p[2] = {{.fd = srv->listen_fd, .events = POLLIN},
				      {.fd = sfd, .events = POLLIN}};
		/* the timeout only paces reaping finished threads */
		int n = poll(p, 2, 1000);
		if (n < 0 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			rc = -1;
			break;
		}
		if (n > 0 && (p[1].revents & POLLIN)) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				slog_info("%s: stopping", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
				break;
			}
		}
		if (n > 0 && (p[0].revents & POLLIN))
			accept_one(srv);
		reap(srv);
	}
	close(sfd);
	/* no new connection may slip in while the others are closed */
	close(srv->listen_fd);
	srv->listen_fd = -1;
	stop_all(srv);
	return rc;
}

void server_close(struct server *srv)
{
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	srv->listen_fd = -1;
	pthread_cond_destroy(&srv->all_gone);
	pthread_mutex_destroy(&srv->mu);
}
