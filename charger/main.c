/* main.c: the charger's entry point: options, signals, the loop. */
#include "charger_config.h"
#include "crash.h"
#include "enqueue.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "sdnotify.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const crash_points[] = {
	"charger.before_commit", /* batch written, COMMIT not yet sent */
	"charger.after_commit",  /* COMMIT acknowledged, nothing logged yet */
	NULL,
};


struct charger_main {
	struct charger ch;
	struct sdnotify notify;
	int argc; /* parsed again on SIGHUP */
	char **argv;
};

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	struct charger_main *m = w->data;
	if (w->signum == SIGHUP) { /* a reload must never kill a daemon */
		sdnotify_reload_begin(&m->notify);
		charger_reload(&m->ch, m->argc, m->argv);
		sdnotify_reload_end(&m->notify, "running (SIGHUP handled)");
	} else {
		sdnotify_stopping(&m->notify, "stopping: finishing the batch on the wire");
		charger_stop(&m->ch, w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
	}
}

int main(int argc, char **argv)
{
	struct charger_config cfg = {0};
	char err[512];
	int rc = cfg_load(&charger_cfg_spec, &cfg, argc, argv, err, sizeof(err));
	if (rc == CFG_HELP) {
		cfg_print_help(&charger_cfg_spec, stdout);
		cfg_free(&charger_cfg_spec, &cfg);
		return 0;
	}
	if (rc == CFG_VERSION) {
		printf("charger (chargeguard) %s\n", CG_VERSION);
		cfg_free(&charger_cfg_spec, &cfg);
		return 0;
	}
	if (rc != CFG_OK) {
		fprintf(stderr, "charger: %s\n", err);
		cfg_free(&charger_cfg_spec, &cfg);
		return 2;
	}
	if (cfg.list_crash_points) {
		crash_list(crash_points, stdout);
		cfg_free(&charger_cfg_spec, &cfg);
		return 0;
	}
	if (crash_init(crash_points, getenv("OUTBOX_CRASH_AT"), err, sizeof(err)) != 0) {
		fprintf(stderr, "charger: %s\n", err);
		cfg_free(&charger_cfg_spec, &cfg);
		return 2;
	}
	if (charger_config_check(&cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "charger: %s\n", err);
		cfg_free(&charger_cfg_spec, &cfg);
		return 2;
	}
	log_init("charger", (enum log_level)cfg.log_level);
	log_set_format((enum log_format)cfg.log_format);
	signal(SIGPIPE, SIG_IGN);

	struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
	if (!loop) {
		fprintf(stderr, "charger: cannot initialise the event loop\n");
		cfg_free(&charger_cfg_spec, &cfg);
		return 1;
	}
	struct charger_main m = {.argc = argc, .argv = argv};
	struct charger *ch = &m.ch;
	if (charger_init(ch, loop, &cfg) != 0) {
		log_error("out of memory");
		cfg_free(&charger_cfg_spec, &cfg);
		return 1;
	}
	ev_signal term, intr, hup;
	ev_signal_init(&term, on_signal, SIGTERM);
	ev_signal_init(&intr, on_signal, SIGINT);
	ev_signal_init(&hup, on_signal, SIGHUP);
	term.data = intr.data = hup.data = &m;
	ev_signal_start(loop, &term);
	ev_signal_start(loop, &intr);
	ev_signal_start(loop, &hup);
	struct daemon_metrics metrics = {0};
	if (cfg.metrics_listen[0] && charger_metrics_start(&metrics, ch, err, sizeof(err)) != 0) {
		log_error("refusing to run: %s", err);
		ch->exit_code = 1;
	} else {
		log_info("started (%s, batch %d%s)", cfg.once ? "once" : "daemon", cfg.batch,
			 cfg.once ? "" : ", interval set by --interval");
		/* the loop is about to turn: up, for systemd (the first pass
		 * waits for the database on its own, with backoff) */
		sdnotify_start(&m.notify, loop);
		sdnotify_ready(&m.notify, cfg.once ? "running once" : "running: a pass every --interval");
		ev_run(loop, 0);
		sdnotify_stop(&m.notify);
	}

	daemon_metrics_stop(&metrics);
	ev_signal_stop(loop, &term);
	ev_signal_stop(loop, &intr);
	ev_signal_stop(loop, &hup);
	charger_free(ch);
	ev_loop_destroy(loop);
	log_info("exiting with status %d", ch->exit_code);
	cfg_free(&charger_cfg_spec, &cfg);
	return ch->exit_code;
}
