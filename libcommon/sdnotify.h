/* sdnotify.h: the systemd service-manager protocol (sd_notify) for both
 * daemons: READY=1, RELOADING=1, STOPPING=1, STATUS= and WATCHDOG=1 pings
 * from a libev timer. Every call is a no-op when NOTIFY_SOCKET is unset,
 * i.e. when the daemon does not run under systemd (Type=notify). */
#ifndef CG_SDNOTIFY_H
#define CG_SDNOTIFY_H

#include <ev.h>
#include <stdbool.h>

struct sdnotify {
	struct ev_loop *loop;
	ev_timer watchdog; /* every WATCHDOG_USEC/2 while the loop turns */
	bool watching;
	bool warned; /* a send failed (logged once) */
	bool ready;     /* the first READY=1 was sent */
	bool reloading; /* RELOADING=1 sent, READY=1 not yet */
};

/* Start the watchdog pings if systemd asked for them (WatchdogSec=). The
 * timer does not keep the loop alive on its own. */
void sdnotify_start(struct sdnotify *n, struct ev_loop *loop);
/* READY=1 with a STATUS= line: the daemon is up. Only the first call
 * sends anything (the relay calls it on every reconnect). */
void sdnotify_ready(struct sdnotify *n, const char *status);
/* RELOADING=1 ... READY=1 around a SIGHUP. Before the first READY=1 both
 * send nothing: systemd is still waiting for that one, and a READY=1 from
 * a reload must not announce a daemon that is not up yet. */
void sdnotify_reload_begin(struct sdnotify *n);
void sdnotify_reload_end(struct sdnotify *n, const char *status);
/* STOPPING=1 with a STATUS= line: SIGTERM/SIGINT was received. */
void sdnotify_stopping(struct sdnotify *n, const char *status);
/* Stop the pings (before the loop is destroyed). */
void sdnotify_stop(struct sdnotify *n);

#endif
