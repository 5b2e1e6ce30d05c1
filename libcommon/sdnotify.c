/* sdnotify.c: sd_notify glue. libsystemd sends each message as one
 * datagram on a fresh AF_UNIX socket to systemd's notify socket, which
 * systemd drains at once: the loop does not wait on it in practice. */
#include "sdnotify.h"

#include "container.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

/* Errors are logged, never fatal: a daemon that cannot tell systemd how
 * it is doing still charges correctly (systemd then times it out). */
static void notify_send(struct sdnotify *n, const char *msg)
{
	int rc = sd_notify(0, msg);
	if (rc < 0 && !n->warned) { /* once: the watchdog would repeat it forever */
		n->warned = true;
		log_warn("systemd notify: cannot send %.*s: %s (further failures not logged)",
			 (int)strcspn(msg, "\n"), msg, strerror(-rc));
	}
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	notify_send(container_of(w, struct sdnotify, watchdog), "WATCHDOG=1");
}

void sdnotify_start(struct sdnotify *n, struct ev_loop *loop)
{
	*n = (struct sdnotify){.loop = loop};
	uint64_t usec = 0;
	/* > 0 only when WATCHDOG_USEC is set (and WATCHDOG_PID, if set, is us) */
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	/* half the timeout, as sd_watchdog_enabled(3) advises: one late ping
	 * from a busy loop is not yet a missed one */
	double every = (double)usec / 2e6;
	ev_timer_init(&n->watchdog, on_watchdog, every, every);
	ev_timer_start(loop, &n->watchdog);
	ev_unref(loop); /* the pings alone must not keep ev_run going */
	n->watching = true;
	log_info("systemd watchdog: pinging every %g s", every);
	notify_send(n, "WATCHDOG=1");
}

void sdnotify_ready(struct sdnotify *n, const char *status)
{
	if (n->ready)
		return;
	n->ready = true;
	char msg[256];
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
	notify_send(n, msg);
}

void sdnotify_reload_begin(struct sdnotify *n)
{
	if (!n->ready || n->reloading)
		return;
	n->reloading = true;
	/* MONOTONIC_USEC: systemd 253's Type=notify-reload wants it; older
	 * versions ignore it */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char msg[96];
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
		 (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
	notify_send(n, msg);
}

void sdnotify_reload_end(struct sdnotify *n, const char *status)
{
	if (!n->reloading)
		return;
	n->reloading = false;
	char msg[256];
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
	notify_send(n, msg);
}

void sdnotify_stopping(struct sdnotify *n, const char *status)
{
	char msg[256];
	snprintf(msg, sizeof(msg), "STOPPING=1\nSTATUS=%s", status);
	notify_send(n, msg);
}

void sdnotify_stop(struct sdnotify *n)
{
	if (!n->watching)
		return;
	ev_ref(n->loop);
	ev_timer_stop(n->loop, &n->watchdog);
	n->watching = false;
}
