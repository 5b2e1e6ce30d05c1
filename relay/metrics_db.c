/* metrics_db.c: the outbox gauges of /metrics (outbox_messages,
 * outbox_oldest_pending_age_seconds), counted by the database.
 *
 * A scrape never waits for the database and never blocks the loop: every
 * --metrics-db-interval seconds one asynchronous statement
 * (outbox.metrics_snapshot()) refreshes a snapshot kept here, and a scrape
 * serves the latest snapshot with its age (relay_db_snapshot_age_seconds).
 *
 * It runs on a connection of its own: statements on the relay's working
 * connection run one after another, and a count over the whole outbox
 * table queued there would hold up claims, records and heartbeats behind
 * it. Its own statement timeout bounds a slow count; a failed refresh
 * keeps the old snapshot (whose age then grows) and is counted. */
#include "relay.h"

#include "container.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_snapshot(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	struct relay *r = arg;
	struct metrics_db *m = &r->mdb;
	m->busy = false;
	if (error) {
		m->errors++;
		/* once per run of failures: the age gauge tells the rest */
		if (!m->failing)
			log_warn("metrics: counting the outbox failed: %s; serving the last counts, "
				 "their age grows",
				 error);
		m->failing = true;
		return;
	}
	if (m->failing)
		log_info("metrics: counting the outbox works again");
	m->failing = false;
	int n = PQntuples(res);
	m->n = 0;
	for (int i = 0; i < n && m->n < METRICS_DB_ROWS; i++) {
		snprintf(m->rows[m->n].kind, sizeof(m->rows[m->n].kind), "%s", PQgetvalue(res, i, 0));
		snprintf(m->rows[m->n].state, sizeof(m->rows[m->n].state), "%s", PQgetvalue(res, i, 1));
		m->rows[m->n].count = strtod(PQgetvalue(res, i, 2), NULL);
		m->rows[m->n].due_age = strtod(PQgetvalue(res, i, 3), NULL);
		m->n++;
	}
	m->taken_at = relay_now(r);
}

static void refresh(struct relay *r)
{
	struct metrics_db *m = &r->mdb;
	if (m->busy || !pgc_is_ready(m->db))
		return;
	if (pgc_query(m->db,
		      "SELECT kind, state, count, oldest_due_age FROM outbox.metrics_snapshot()", 0,
		      NULL, on_snapshot, r) == 0)
		m->busy = true;
}

static void on_refresh(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	refresh(container_of(w, struct relay, mdb.refresh));
}

/* The first count right after connecting: a scrape soon after start has
 * numbers. */
static void on_ready(struct pgc *db, void *ud)
{
	(void)db;
	refresh(ud);
}

int metrics_db_start(struct relay *r)
{
	/* read-only, and bounded: a count that takes longer than this is
	 * abandoned and tried again at the next interval */
	static const char *const setup[] = {"SET default_transaction_read_only = on",
					    "SET statement_timeout = '10s'", NULL};
	struct metrics_db *m = &r->mdb;
	struct pgc_options opt = {.name = "metrics-db", .conninfo = r->cfg->db,
				  .application_name = "chargeguard-relay-metrics", .setup = setup,
				  .connect_timeout = 10, .retry_min = 1, .retry_max = 30};
	struct pgc_hooks hooks = {.ready = on_ready};
	m->db = pgc_new(r->loop, &opt, &hooks, r);
	if (!m->db)
		return -1;
	ev_timer_init(&m->refresh, on_refresh, r->cfg->metrics_db_interval,
		      r->cfg->metrics_db_interval);
	ev_timer_start(r->loop, &m->refresh);
	pgc_start(m->db);
	return 0;
}

void metrics_db_stop(struct relay *r)
{
	struct metrics_db *m = &r->mdb;
	if (!m->db)
		return;
	ev_timer_stop(r->loop, &m->refresh);
	pgc_free(m->db);
	m->db = NULL;
}
