/* metrics.c: the relay's GET /metrics and GET /healthz (--metrics-listen).
 * The text is built from the counters of struct relay_stats only when
 * scraped, on the loop; the outbox gauges come from metrics_db.c's
 * snapshot, so a scrape never waits for the database. Every metric is
 * listed in docs/operations.md, "Metrics and alerts". */
#include "relay.h"

#include <stdio.h>
#include <string.h>

/* Seconds: a database round trip takes milliseconds, a gateway call up
 * to --http-timeout (300 s at most). */
static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
					0.5,   1,      2.5,   5,    10,    30,   60,  300};
#define NBOUNDS ((int)(sizeof(latency_bounds) / sizeof(latency_bounds[0])))

void relay_metrics_init(struct relay *r)
{
	prom_hist_init(&r->stats.claim_seconds, latency_bounds, NBOUNDS);
	prom_hist_init(&r->stats.send_seconds, latency_bounds, NBOUNDS);
	prom_hist_init(&r->stats.record_seconds, latency_bounds, NBOUNDS);
}

/* outbox_charge_outcomes_total: CONTRACT.md's four, and dead (a person must
 * act). A row given back pending is no outcome: relay_charges_requeued_total. */
static const struct {
	enum outcome o;
	const char *label;
} recorded_labels[] = {{OUTCOME_SUCCEEDED, "succeeded"}, {OUTCOME_DECLINED, "declined"},
		       {OUTCOME_FAILED, "failed"},       {OUTCOME_UNKNOWN, "unknown"},
		       {OUTCOME_DEAD, "dead"}};

static const char *const answer_class[OUTCOME_DEAD + 1] = {
	[OUTCOME_SUCCEEDED] = "succeeded", [OUTCOME_DECLINED] = "declined",
	[OUTCOME_FAILED] = "failed",       [OUTCOME_UNKNOWN] = "unknown",
	[OUTCOME_RETRY_LATER] = "retry_later", [OUTCOME_DEAD] = "dead"};

static const char *const lookup_verdict_names[LV_COUNT] = {
	[LV_SUCCEEDED] = "succeeded", [LV_DECLINED] = "declined", [LV_FAILED] = "failed",
	[LV_WAIT] = "wait",           [LV_AGAIN] = "again",       [LV_DEAD] = "dead"};

static void write_outcomes(struct prom_buf *b, const struct relay_stats *s)
{
	const char *n = "outbox_charge_outcomes_total";
	prom_family(b, n, "counter",
		    "Charge outcomes this relay recorded since start, from gateway answers and from "
		    "lookups (a row that went unknown and was settled later counts in both)");
	for (size_t i = 0; i < sizeof(recorded_labels) / sizeof(recorded_labels[0]); i++)
		prom_count(b, n, (const char *[]){"outcome", recorded_labels[i].label, NULL},
			   s->recorded_outcomes[recorded_labels[i].o]);
	prom_counter(b, "relay_charges_requeued_total",
		"Charge rows given back pending with the same key, provably not executed (no "
		"connection, 429, lease too short to send)",
		s->recorded_outcomes[OUTCOME_RETRY_LATER]);

	n = "relay_gateway_answers_total";
	prom_family(b, n, "counter", "Answers to charge POSTs, by how they were classified");
	for (int o = 0; o <= OUTCOME_DEAD; o++)
		prom_count(b, n, (const char *[]){"class", answer_class[o], NULL}, s->outcomes[o]);
}

static void write_steps(struct prom_buf *b, const struct relay *r)
{
	const struct relay_stats *s = &r->stats;
	prom_counter(b, "relay_charges_claimed_total", "Charge rows claimed", s->claimed);
	prom_counter(b, "relay_charges_sent_total", "Charge POSTs started", s->sent);
	prom_counter(b, "relay_charges_not_sent_total",
		"Claimed charge rows given back unsent (lease too short, sending stopped, stopping)",
		s->not_sent);
	prom_counter(b, "relay_leases_expired_total",
		"Rows whose lease expired, turned unknown (charges) or pending (emails) by this "
		"relay's janitor",
		s->expired);

	const char *n = "relay_claims_lost_total";
	prom_family(b, n, "counter",
		    "Records refused because the row's claim token was gone (lease expired, taken "
		    "over, settled meanwhile): nothing was recorded");
	prom_count(b, n, (const char *[]){"step", "record", NULL}, s->claims_lost);
	prom_count(b, n, (const char *[]){"step", "lookup", NULL}, s->lookups_lost);
	prom_count(b, n, (const char *[]){"step", "email", NULL}, s->emails_lost);

	n = "relay_lookups_total";
	prom_family(b, n, "counter", "Lookups of unknown charges finished, by what the gateway's list showed");
	static const enum lookup_found found[] = {LOOKUP_SUCCEEDED, LOOKUP_DECLINED, LOOKUP_ABSENT,
						  LOOKUP_INCONCLUSIVE};
	for (size_t i = 0; i < sizeof(found) / sizeof(found[0]); i++)
		prom_count(b, n, (const char *[]){"found", lookup_found_name(found[i]), NULL},
			   s->lookups[found[i]]);

	n = "relay_lookup_verdicts_total";
	prom_family(b, n, "counter",
		    "Lookups recorded, by the database's verdict (wait: absent but inside the settle "
		    "window; again: inconclusive, looked up later; dead: schedule spent)");
	for (int i = 0; i < LV_COUNT; i++)
		prom_count(b, n, (const char *[]){"verdict", lookup_verdict_names[i], NULL},
			   s->lookup_verdicts[i]);

	n = "relay_emails_total";
	prom_family(b, n, "counter", "Notification emails, by the result of each SMTP try");
	prom_count(b, n, (const char *[]){"result", "sent", NULL}, s->emails_sent);
	prom_count(b, n, (const char *[]){"result", "retry", NULL}, s->emails_retried);
	prom_count(b, n, (const char *[]){"result", "dead", NULL}, s->emails_dead);

	prom_family(b, "relay_claim_seconds", "histogram", "Time from sending a claim to its committed answer");
	prom_hist_write(b, "relay_claim_seconds", NULL, &s->claim_seconds);
	prom_family(b, "relay_send_seconds", "histogram", "Time of one charge POST, connect included, until its answer or failure");
	prom_hist_write(b, "relay_send_seconds", NULL, &s->send_seconds);
	prom_family(b, "relay_record_seconds", "histogram", "Time of one committed record transaction (BEGIN to COMMIT's answer)");
	prom_hist_write(b, "relay_record_seconds", NULL, &s->record_seconds);
}

static void write_gauges(struct prom_buf *b, const struct relay *r)
{
	prom_gauge(b, "relay_inflight", "Charges claimed and not yet recorded", r->inflight);
	prom_gauge(b, "relay_answers_waiting",
	      "Gateway answers waiting to be recorded (grows while the database is away)",
	      r->answered);
	prom_gauge(b, "relay_lookups_inflight", "Lookups of unknown charges in progress", r->lookup_inflight);
	prom_gauge(b, "relay_emails_inflight", "Emails claimed and not yet recorded", r->email_inflight);
	prom_gauge(b, "relay_sending_stopped",
	      "1 while the gateway refuses our key (401/403): no charge is sent until SIGHUP",
	      r->sending_stopped ? 1 : 0);
}

static void write_outbox(struct prom_buf *b, const struct relay *r)
{
	const struct metrics_db *m = &r->mdb;
	prom_family(b, "outbox_messages", "gauge",
		    "Outbox rows per kind and state, counted by the database every "
		    "--metrics-db-interval seconds (see relay_db_snapshot_age_seconds)");
	for (int i = 0; i < m->n; i++)
		prom_value(b, "outbox_messages",
			   (const char *[]){"kind", m->rows[i].kind, "state", m->rows[i].state, NULL},
			   m->rows[i].count);
	prom_family(b, "outbox_oldest_pending_age_seconds", "gauge",
		    "Seconds since the oldest due pending row of this kind became due (0: none due)");
	for (int i = 0; i < m->n; i++)
		if (strcmp(m->rows[i].state, "pending") == 0)
			prom_value(b, "outbox_oldest_pending_age_seconds",
				   (const char *[]){"kind", m->rows[i].kind, NULL}, m->rows[i].due_age);
	prom_gauge(b, "relay_db_snapshot_age_seconds",
	      "Age of the outbox counts above; -1 before the first count",
	      m->taken_at > 0 ? relay_now((struct relay *)r) - m->taken_at : -1);
	prom_counter(b, "relay_db_snapshot_errors_total", "Outbox counts that failed (the last one is kept)",
		m->errors);
}

static void write_relay(void *ud, struct prom_buf *b)
{
	const struct relay *r = ud;
	write_outcomes(b, &r->stats);
	write_steps(b, r);
	write_gauges(b, r);
	write_outbox(b, r);
}

/* /healthz also wants the session set up (schema checked, actor set). */
static bool relay_ready(void *ud, char *why, size_t whylen)
{
	const struct relay *r = ud;
	if (!r->db_ready)
		snprintf(why, whylen, "database connected, session not set up yet (schema check)");
	return r->db_ready;
}

int relay_metrics_start(struct relay *r, char *why, size_t whylen)
{
	r->metrics = (struct daemon_metrics){.prefix = "relay", .db = r->db, .write = write_relay,
					     .ready = relay_ready, .ud = r};
	if (daemon_metrics_start(&r->metrics, r->loop, r->cfg->metrics_listen, why, whylen) != 0)
		return -1;
	if (metrics_db_start(r) != 0) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

void relay_metrics_stop(struct relay *r)
{
	daemon_metrics_stop(&r->metrics);
	metrics_db_stop(r);
}
