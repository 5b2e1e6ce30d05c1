/* enqueue.c: the charger's batch loop on the event loop. */
#include "enqueue.h"

#include "container.h"
#include "crash.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void start_batch(struct charger *ch);

static void finish(struct charger *ch, int code)
{
	ch->exit_code = code;
	ch->step = STEP_IDLE;
	ev_break(ch->loop, EVBREAK_ALL);
}

static void pass_done(struct charger *ch)
{
	ch->step = STEP_IDLE;
	ch->stats.passes++;
	ch->stats.last_pass_at = ev_time();
	log_info("pass %ld done: %ld invoice(s) enqueued in %ld batch(es), %ld newly unchargeable",
		 ch->pass, ch->enqueued, ch->batch, ch->noted);
	if (ch->cfg->once || ch->stopping) {
		finish(ch, 0);
		return;
	}
	ev_timer_set(&ch->next_pass, ch->cfg->interval, 0.);
	ev_timer_start(ch->loop, &ch->next_pass);
}

/* A statement failed with a server error: roll back, then either give up
 * (--once) or try again at the next pass. */
static void on_rollback(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	(void)res;
	struct charger *ch = arg;
	if (error)
		log_warn("rollback failed: %s", error);
	ch->step = STEP_IDLE;
	if (ch->cfg->once) {
		finish(ch, 1);
		return;
	}
	if (ch->stopping) {
		finish(ch, 0);
		return;
	}
	log_info("next pass in %g s", ch->cfg->interval);
	ev_timer_set(&ch->next_pass, ch->cfg->interval, 0.);
	ev_timer_start(ch->loop, &ch->next_pass);
}

/* Returns true when the statement succeeded; otherwise handles the failure.
 * res == NULL: the connection went away; the server rolls back an open
 * transaction, and a COMMIT on the wire may or may not have happened. Either
 * way nothing can be enqueued twice: the invoices are in_flight or still
 * open. The pass restarts when the connection is back. */
static bool step_ok(struct charger *ch, const PGresult *res, const char *error, const char *what)
{
	if (!error)
		return true;
	ch->stats.batches_failed++;
	if (!res) {
		log_warn("batch %ld of pass %ld abandoned during %s (%s); it is rolled back, or "
			 "committed if the COMMIT got through; the pass restarts on reconnect",
			 ch->batch, ch->pass, what, error);
		ch->step = STEP_CONNECTING;
		return false;
	}
	log_error("batch %ld of pass %ld failed during %s: %s [SQLSTATE %s]", ch->batch, ch->pass,
		  what, error, pgc_sqlstate(res));
	ch->step = STEP_ROLLBACK;
	if (pgc_query(ch->db, "ROLLBACK", 0, NULL, on_rollback, ch) != 0)
		on_rollback(ch->db, NULL, "not connected", ch);
	return false;
}

static long long value_ll(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void on_commit(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	struct charger *ch = arg;
	if (!step_ok(ch, res, error, "COMMIT"))
		return;
	crash_point("charger.after_commit");
	ch->enqueued += ch->batch_enqueued;
	ch->noted += ch->batch_noted;
	ch->stats.enqueued += (unsigned long)ch->batch_enqueued;
	ch->stats.unchargeable += (unsigned long)ch->batch_noted;
	if (ch->batch_enqueued || ch->batch_noted)
		log_info("batch %ld of pass %ld committed: %ld enqueued, %ld newly unchargeable",
			 ch->batch, ch->pass, ch->batch_enqueued, ch->batch_noted);
	if (ch->batch_enqueued > 0 && !ch->stopping)
		start_batch(ch);
	else
		pass_done(ch);
}

static void on_batch(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	struct charger *ch = arg;
	if (!step_ok(ch, res, error, "enqueue_due"))
		return;
	ch->batch_enqueued = ch->batch_noted = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		struct log_ref ref = {.invoice = value_ll(res, i, 0), .row = value_ll(res, i, 1)};
		const char *outcome = PQgetvalue(res, i, 5);
		if (strcmp(outcome, "enqueued") == 0) {
			ch->batch_enqueued++;
			log_at(LOG_LEVEL_DEBUG, &ref, "enqueued charge of %s %s (notification row %s)",
			       PQgetvalue(res, i, 3), PQgetvalue(res, i, 4),
			       PQgetisnull(res, i, 2) ? "none: customer has no email"
						      : PQgetvalue(res, i, 2));
		} else {
			ch->batch_noted++;
			log_at(LOG_LEVEL_WARN, &ref,
			       "not enqueued: %s (reported once; fix it and a later pass charges it)",
			       PQgetvalue(res, i, 6));
		}
	}
	crash_point("charger.before_commit");
	ch->step = STEP_COMMIT;
	if (pgc_query(db, "COMMIT", 0, NULL, on_commit, ch) != 0)
		step_ok(ch, NULL, "not connected", "COMMIT");
}

static void on_begin(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	struct charger *ch = arg;
	if (!step_ok(ch, res, error, "BEGIN"))
		return;
	char batch[16];
	snprintf(batch, sizeof(batch), "%d", ch->cfg->batch);
	/* Look for unchargeable invoices once per pass, in its first batch. */
	const char *params[] = {batch, ch->batch == 1 ? "true" : "false"};
	ch->step = STEP_BATCH;
	if (pgc_query(db,
		      "SELECT invoice_id, charge_id, email_id, amount_cents, currency, outcome, detail"
		      " FROM outbox.enqueue_due($1::integer, $2::boolean)",
		      2, params, on_batch, ch) != 0)
		step_ok(ch, NULL, "not connected", "enqueue_due");
}

static void start_batch(struct charger *ch)
{
	ch->batch++;
	ch->step = STEP_BEGIN;
	if (pgc_query(ch->db, "BEGIN", 0, NULL, on_begin, ch) != 0)
		step_ok(ch, NULL, "not connected", "BEGIN");
}

static void start_pass(struct charger *ch)
{
	if (ch->stopping) {
		finish(ch, 0);
		return;
	}
	ch->pass++;
	ch->batch = 0;
	ch->enqueued = ch->noted = 0;
	start_batch(ch);
}

static void on_next_pass(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct charger *ch = container_of(w, struct charger, next_pass);
	if (ch->step == STEP_IDLE && pgc_is_ready(ch->db))
		start_pass(ch);
}

static void on_actor_set(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	(void)res;
	struct charger *ch = arg;
	if (error) /* connection trouble: the next ready hook starts over */
		return;
	ev_timer_stop(ch->loop, &ch->give_up);
	if (ch->step == STEP_CONNECTING) {
		ch->step = STEP_IDLE;
		start_pass(ch);
	}
}

static void on_schema(void *ud, bool ok, const char *why)
{
	struct charger *ch = ud;
	if (!ok) {
		if (strstr(why, "connection lost"))
			return; /* the ready hook runs the check again */
		log_error("refusing to run: %s", why);
		finish(ch, 1);
		return;
	}
	log_debug("%s", why);
	/* Events written by this session name us, not just the login role. */
	const char *params[] = {ch->actor};
	pgc_query(ch->db, "SELECT set_config('outbox.actor', $1, false)", 1, params, on_actor_set,
		  ch);
}

static void on_ready(struct pgc *db, void *ud)
{
	struct charger *ch = ud;
	ch->check = (struct schema_check){CHARGER_SCHEMA_VERSION, "outbox_charger", on_schema, ch};
	schema_check_start(db, &ch->check);
}

static void on_lost(struct pgc *db, const char *why, void *ud)
{
	(void)db;
	(void)why;
	struct charger *ch = ud;
	ch->step = STEP_CONNECTING;
	if (ch->stopping) {
		finish(ch, 0);
		return;
	}
	if (ch->cfg->once && ch->cfg->db_wait > 0 && !ev_is_active(&ch->give_up)) {
		ev_timer_set(&ch->give_up, ch->cfg->db_wait, 0.);
		ev_timer_start(ch->loop, &ch->give_up);
	}
}

static void on_give_up(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct charger *ch = container_of(w, struct charger, give_up);
	log_error("no database for %g s (--db-wait); giving up with nothing enqueued by this "
		  "attempt",
		  ch->cfg->db_wait);
	finish(ch, 1);
}

int charger_init(struct charger *ch, struct ev_loop *loop, const struct charger_config *cfg)
{
	static const char *const setup[] = {"SET synchronous_commit = on", NULL};
	memset(ch, 0, sizeof(*ch));
	ch->loop = loop;
	ch->cfg = cfg;
	ch->step = STEP_CONNECTING;
	char host[64] = "?";
	gethostname(host, sizeof(host) - 1);
	snprintf(ch->actor, sizeof(ch->actor), "charger %s:%ld", host, (long)getpid());

	ev_init(&ch->next_pass, on_next_pass);
	ev_init(&ch->give_up, on_give_up);
	struct pgc_options opt = {
		.name = "db",
		.conninfo = cfg->db,
		.application_name = "chargeguard-charger",
		.setup = setup,
		.connect_timeout = 10,
		.retry_min = 0.2,
		.retry_max = 10,
	};
	struct pgc_hooks hooks = {.ready = on_ready, .lost = on_lost};
	ch->db = pgc_new(loop, &opt, &hooks, ch);
	if (!ch->db)
		return -1;
	if (cfg->once && cfg->db_wait > 0) {
		ev_timer_set(&ch->give_up, cfg->db_wait, 0.);
		ev_timer_start(loop, &ch->give_up);
	}
	pgc_start(ch->db);
	return 0;
}

void charger_stop(struct charger *ch, const char *why)
{
	if (ch->stopping) {
		log_warn("%s again: stopping now; the open transaction (if any) is rolled back", why);
		finish(ch, 0);
		return;
	}
	ch->stopping = true;
	ev_timer_stop(ch->loop, &ch->next_pass);
	if (ch->step == STEP_IDLE || ch->step == STEP_CONNECTING) {
		log_info("%s: stopping", why);
		finish(ch, 0);
	} else {
		log_info("%s: stopping after the batch in progress", why);
	}
}

void charger_free(struct charger *ch)
{
	ev_timer_stop(ch->loop, &ch->next_pass);
	ev_timer_stop(ch->loop, &ch->give_up);
	pgc_free(ch->db);
	ch->db = NULL;
}
