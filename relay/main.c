/* main.c: the relay's entry point: options, key, loop, signals, stop. */
#include "relay.h"

#include "container.h"
#include "crash.h"
#include "log.h"
#include "secret.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const crash_points[] = {
	"relay.after_claim_commit",  /* claim committed, nothing sent yet */
	"relay.after_send",          /* request written, no answer read */
	"relay.after_response",      /* answer read, not recorded */
	"relay.before_record_commit", /* outcomes written in the transaction, no COMMIT */
	"relay.after_record_commit", /* COMMIT acknowledged */
	"relay.during_reconcile",    /* a lookup answered, not recorded */
	NULL,
};

/* Lease deadlines need a clock no one can set back (ev_now is wall time)
 * and that keeps counting through a suspend, as the database's does. */
double relay_now(struct relay *r)
{
	(void)r;
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void relay_check_stopped(struct relay *r)
{
	/* A claim on the wire may commit rows we must still give back. */
	if (!r->stopping || r->inflight > 0 || r->email_inflight > 0 || r->recording ||
	    r->emails_recording || r->claiming || r->emails_claiming)
		return;
	log_info("stopped cleanly: everything in flight was recorded");
	ev_break(r->loop, EVBREAK_ALL);
}

static void stop(struct relay *r, const char *why)
{
	if (r->stopping) {
		log_warn("%s again: stopping now", why);
		r->exit_code = r->inflight || r->email_inflight ? 1 : 0;
		ev_break(r->loop, EVBREAK_ALL);
		return;
	}
	r->stopping = true;
	sdnotify_stopping(&r->notify, "stopping: finishing what is in flight");
	log_info("%s: no more claims; finishing %d charge(s) and %d email(s) in flight (at most "
		 "%g s)",
		 why, r->inflight, r->email_inflight, r->cfg->http_timeout + 10);
	ev_timer_stop(r->loop, &r->poll);
	ev_timer_set(&r->stop_deadline, r->cfg->http_timeout + 10, 0.);
	ev_timer_start(r->loop, &r->stop_deadline);
	relay_check_stopped(r);
}

static void on_stop_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct relay *r = container_of(w, struct relay, stop_deadline);
	log_error("stop deadline passed with %d charge(s) and %d email(s) unrecorded: their rows "
		  "stay submitting until their leases expire, then charges are looked up and "
		  "emails re-sent",
		  r->inflight, r->email_inflight);
	r->exit_code = 1;
	ev_break(loop, EVBREAK_ALL);
}

/* Under systemd, `systemctl reload` waits for the READY=1 that ends it. */
static void reload(struct relay *r)
{
	sdnotify_reload_begin(&r->notify);
	relay_reload(r);
	sdnotify_reload_end(&r->notify, "running (SIGHUP handled)");
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	if (w->signum == SIGHUP)
		reload(w->data);
	else
		stop(w->data, w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void work(struct relay *r)
{
	record_flush(r);
	emails_flush(r);
	reconcile_flush(r);
	charges_claim(r);
	emails_claim(r);
	reconcile_claim(r);
}

static void on_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	work(container_of(w, struct relay, poll));
}

static void on_heartbeat(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	lease_heartbeat(container_of(w, struct relay, heartbeat));
}

static void on_janitor(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	lease_janitor(container_of(w, struct relay, janitor));
}

static void on_retry_record(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	record_flush(container_of(w, struct relay, retry_record));
}

static void on_actor_set(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	struct relay *r = arg;
	if (error) {
		if (res) /* a server error on a constant statement: start over */
			pgc_reset(db, error);
		return; /* the connection went; the next ready hook starts over */
	}
	r->db_ready = true;
	/* up: connected, schema checked, role set (sent once; reconnects are
	 * not news to systemd) */
	sdnotify_ready(&r->notify, "running: connected to the database");
	r->draining = r->answered > 0;
	if (r->answered)
		log_info("database back: recording %d outcome(s) kept in memory", r->answered);
	/* Answers kept through an outage go first (statements run in order):
	 * recorded before our own janitor could expire their leases. */
	work(r);
	lease_heartbeat(r);
	lease_janitor(r);
	relay_check_stopped(r);
}

/* The events' actor for every statement of this session (both connections). */
static void set_actor(struct relay *r, struct pgc *db, pgc_result_fn done)
{
	const char *params[] = {r->owner};
	pgc_query(db, "SELECT set_config('outbox.actor', $1, false)", 1, params, done, r);
}

static void on_schema(void *ud, bool ok, const char *why)
{
	struct relay *r = ud;
	if (!ok) {
		if (strstr(why, "connection lost"))
			return;
		log_error("refusing to run: %s", why);
		r->exit_code = 1;
		ev_break(r->loop, EVBREAK_ALL);
		return;
	}
	set_actor(r, r->db, on_actor_set);
}

static void on_ready(struct pgc *db, void *ud)
{
	struct relay *r = ud;
	/* the metrics need 0008; without them an older schema still serves */
	int need = r->cfg->metrics_listen[0] ? RELAY_SCHEMA_VERSION_METRICS : RELAY_SCHEMA_VERSION;
	r->check = (struct schema_check){need, "outbox_relay", on_schema, r};
	schema_check_start(db, &r->check);
}

static void on_lost(struct pgc *db, const char *why, void *ud)
{
	(void)db;
	(void)why;
	struct relay *r = ud;
	r->db_ready = false;
	if (r->inflight)
		log_warn("database away with %d charge(s) in flight: answers are kept and recorded "
			 "when it is back; no new claims meanwhile",
			 r->inflight);
}

static void on_notify(struct pgc *db, const char *channel, const char *payload, void *ud)
{
	(void)db;
	(void)channel;
	(void)payload;
	charges_claim(ud);
}

/* The claim connection: the same session settings and actor as db, then
 * claims. */
static void on_claim_actor_set(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	struct relay *r = arg;
	if (error) {
		if (res)
			pgc_reset(db, error);
		return;
	}
	r->claim_db_ready = true;
	charges_claim(r);
}

static void on_claim_ready(struct pgc *db, void *ud)
{
	set_actor(ud, db, on_claim_actor_set);
}

static void on_claim_lost(struct pgc *db, const char *why, void *ud)
{
	(void)db;
	(void)why;
	struct relay *r = ud;
	r->claim_db_ready = false;
}

static int run(struct relay *r)
{
	/* A statement stuck behind a lock must not hold up the heartbeats
	 * queued after it for longer than a lease can bear. */
	static const char *const setup[] = {"LISTEN outbox_pending", "SET synchronous_commit = on",
					    "SET statement_timeout = '20s'",
					    "SET lock_timeout = '10s'", NULL};
	struct ev_loop *loop = r->loop;
	const struct relay_config *cfg = r->cfg;
	char why[256];
	struct http_options hopt = {.timeout = cfg->http_timeout,
				    .connect_timeout = cfg->http_timeout < 10 ? cfg->http_timeout : 10,
				    .max_body = 1 << 20, .gateway_ca_file = cfg->gateway_ca_file,
				    .smtp_ca_file = cfg->smtp_ca_file};
	/* sized here, not at first use, so a reload knows its room */
	r->batch_cap = cfg->record_batch;
	r->batch = calloc((size_t)r->batch_cap, sizeof(*r->batch));
	if (!r->batch) {
		log_error("out of memory");
		return 1;
	}
	r->http = http_client_new(loop, &hopt, why, sizeof(why));
	if (!r->http) {
		log_error("refusing to run: %s", why);
		return 1;
	}
	struct pgc_options popt = {.name = "db", .conninfo = cfg->db,
				   .application_name = "chargeguard-relay", .setup = setup,
				   .connect_timeout = 10, .retry_min = 0.2, .retry_max = 10};
	struct pgc_hooks hooks = {.ready = on_ready, .lost = on_lost, .notify = on_notify};
	r->db = pgc_new(loop, &popt, &hooks, r);
	struct pgc_options copt = popt;
	copt.name = "claim-db";
	copt.setup = setup + 1; /* the same settings; notifications come to db */
	struct pgc_hooks claim_hooks = {.ready = on_claim_ready, .lost = on_claim_lost};
	r->claim_db = pgc_new(loop, &copt, &claim_hooks, r);
	if (!r->db || !r->claim_db) {
		log_error("out of memory");
		pgc_free(r->db);
		pgc_free(r->claim_db);
		return 1;
	}
	ev_timer_init(&r->poll, on_poll, cfg->poll_interval, cfg->poll_interval);
	ev_timer_init(&r->heartbeat, on_heartbeat, cfg->lease / 3, cfg->lease / 3);
	double jan = cfg->lease / 4 < 1 ? 1 : cfg->lease / 4;
	ev_timer_init(&r->janitor, on_janitor, jan, jan);
	ev_init(&r->stop_deadline, on_stop_deadline);
	ev_init(&r->retry_record, on_retry_record);
	ev_timer_start(loop, &r->poll);
	ev_timer_start(loop, &r->heartbeat);
	ev_timer_start(loop, &r->janitor);
	ev_signal term, intr, hup;
	ev_signal_init(&term, on_signal, SIGTERM);
	ev_signal_init(&intr, on_signal, SIGINT);
	ev_signal_init(&hup, on_signal, SIGHUP);
	term.data = intr.data = hup.data = r;
	ev_signal_start(loop, &term);
	ev_signal_start(loop, &intr);
	ev_signal_start(loop, &hup);
	if (cfg->metrics_listen[0] && relay_metrics_start(r, why, sizeof(why)) != 0) {
		log_error("refusing to run: %s", why);
		r->exit_code = 1;
		goto out;
	}

	log_info("started: gateway %s at %s, at most %d in flight, lease %g s, HTTP timeout %g s, "
		 "settle %g s, emails %s",
		 r->gateway->name, cfg->gateway_url, cfg->max_inflight, cfg->lease, cfg->http_timeout,
		 cfg->settle, cfg->smtp_url[0] ? cfg->smtp_url : "off (no --smtp-url)");
	if (!r->gateway->idempotency_keys)
		/* PROTOCOL.md, timing rules: only the claim's durability stands
		 * between a failover and a second POST of the same row. */
		log_warn("gateway %s has no idempotency keys: a database failover that loses a "
			 "committed claim could send a row twice; run PostgreSQL with synchronous "
			 "replication (not verified by the relay)",
			 r->gateway->name);
	sdnotify_start(&r->notify, loop);
	pgc_start(r->db);
	pgc_start(r->claim_db);
	ev_run(loop, 0);
	sdnotify_stop(&r->notify);

out:
	relay_metrics_stop(r);
	ev_signal_stop(loop, &term);
	ev_signal_stop(loop, &intr);
	ev_signal_stop(loop, &hup);
	ev_timer_stop(loop, &r->poll);
	ev_timer_stop(loop, &r->heartbeat);
	ev_timer_stop(loop, &r->janitor);
	ev_timer_stop(loop, &r->stop_deadline);
	ev_timer_stop(loop, &r->retry_record);
	http_client_free(r->http); /* aborts transfers: no callbacks */
	while (r->jobs)
		job_free(r->jobs);
	free(r->batch);
	emails_free(r);
	reconcile_free(r);
	pgc_free(r->claim_db);
	pgc_free(r->db);
	log_info("exiting with status %d (claimed %lu, sent %lu, recorded %lu, not sent %lu, "
		 "claims lost %lu; emails sent %lu)",
		 r->exit_code, r->stats.claimed, r->stats.sent, r->stats.recorded, r->stats.not_sent,
		 r->stats.claims_lost, r->stats.emails_sent);
	return r->exit_code;
}

int main(int argc, char **argv)
{
	struct relay_config cfg = {0};
	char err[512];
	int rc = cfg_load(&relay_cfg_spec, &cfg, argc, argv, err, sizeof(err));
	if (rc == CFG_HELP || rc == CFG_VERSION) {
		if (rc == CFG_HELP)
			cfg_print_help(&relay_cfg_spec, stdout);
		else
			printf("relay (chargeguard) %s\n", CG_VERSION);
		cfg_free(&relay_cfg_spec, &cfg);
		return 0;
	}
	if (rc == CFG_OK && cfg.list_crash_points) {
		crash_list(crash_points, stdout);
		cfg_free(&relay_cfg_spec, &cfg);
		return 0;
	}
	static struct relay r;
	if (rc != CFG_OK || relay_config_check(&cfg, err, sizeof(err)) != 0 ||
	    crash_init(crash_points, getenv("OUTBOX_CRASH_AT"), err, sizeof(err)) != 0 ||
	    secret_load(cfg.gateway_key_file, "RELAY_GATEWAY_KEY", r.key, sizeof(r.key), err,
			sizeof(err)) != 0) {
		fprintf(stderr, "relay: %s\n", err);
		cfg_free(&relay_cfg_spec, &cfg);
		return 2;
	}
	/* The key was read; keep it out of /proc/PID/environ (a later SIGHUP
	 * reload reads --gateway-key-file; from the environment, nothing). */
	secret_scrub_env("RELAY_GATEWAY_KEY");
	log_init("relay", (enum log_level)cfg.log_level);
	log_set_format((enum log_format)cfg.log_format);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "relay: cannot initialise libcurl\n");
		return 1;
	}

	r.cfg = &cfg;
	r.argc = argc;
	r.argv = argv;
	relay_metrics_init(&r);
	r.gateway = gateway_find(relay_gateways[cfg.gateway]);
	if (r.gateway->check_key && r.gateway->check_key(r.key, err, sizeof(err)) != 0) {
		fprintf(stderr, "relay: gateway key: %s\n", err);
		memset(r.key, 0, sizeof(r.key));
		cfg_free(&relay_cfg_spec, &cfg);
		curl_global_cleanup();
		return 2;
	}
	r.gw = (struct gateway_config){.url = cfg.gateway_url, .key = r.key};
	char host[64] = "?";
	gethostname(host, sizeof(host) - 1);
	snprintf(r.owner, sizeof(r.owner), "relay %s:%ld", host, (long)getpid());
	snprintf(r.mail_domain, sizeof(r.mail_domain), "%s", strchr(cfg.mail_from, '@') + 1);
	r.loop = ev_default_loop(EVFLAG_AUTO);
	rc = r.loop ? run(&r) : 1;

	if (r.loop)
		ev_loop_destroy(r.loop);
	curl_global_cleanup();
	memset(r.key, 0, sizeof(r.key));
	cfg_free(&relay_cfg_spec, &cfg);
	return rc;
}
