/* emails.c: notifications. Released rows are claimed like charges, sent
 * over SMTP (libcurl, connections reused), and recorded: sent, retry with
 * backoff, or dead. At-least-once: a retry after an ambiguous ending sends
 * the same Message-ID, so receivers can drop the copy. */
#include "relay.h"

#include "email_compose.h"
#include "log.h"
#include "text.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct email_job {
	struct email_job *next;
	struct email_job *all_prev, *all_next; /* relay.email_jobs: freed at exit */
	struct relay *relay;
	int64_t id, invoice_id;
	int attempt;
	char claim_token[40];
	const char *outcome; /* sent | retry | dead */
	char error[256];
	double retry_after;
};

static void track(struct relay *r, struct email_job *e)
{
	e->all_next = r->email_jobs;
	if (r->email_jobs)
		r->email_jobs->all_prev = e;
	r->email_jobs = e;
}

static void email_free(struct relay *r, struct email_job *e)
{
	if (e->all_prev)
		e->all_prev->all_next = e->all_next;
	else
		r->email_jobs = e->all_next;
	if (e->all_next)
		e->all_next->all_prev = e->all_prev;
	free(e);
}

static void email_done(struct relay *r, struct email_job *e, const char *outcome, double retry)
{
	e->outcome = outcome;
	e->retry_after = retry;
	e->next = r->emails_done;
	r->emails_done = e;
	emails_flush(r);
}

static double retry_wait(const struct relay *r, int attempt)
{
	double wait = r->cfg->email_retry;
	for (int i = 1; i < attempt && wait < 6 * 3600; i++)
		wait *= 2;
	return wait < 6 * 3600 ? wait : 6 * 3600;
}

static void on_smtp_done(struct http_transfer *t, void *arg)
{
	struct email_job *e = arg;
	struct relay *r = e->relay;
	const struct http_result *res = http_result(t);
	struct log_ref ref = {.invoice = e->invoice_id, .row = e->id, .attempt = e->attempt};
	if (res->curl_result == CURLE_OK) {
		r->stats.emails_sent++;
		log_at(LOG_LEVEL_DEBUG, &ref, "email sent");
		email_done(r, e, "sent", 0);
		return;
	}
	snprintf(e->error, sizeof(e->error), "SMTP %ld: %s", res->status, res->error);
	utf8_sanitize(e->error);
	/* Even a 5xx is retried: it may answer the connection or the login,
	 * not this message; the attempts bound the retries. */
	if (e->attempt >= r->cfg->email_max_attempts) {
		r->stats.emails_dead++;
		log_at(LOG_LEVEL_ERROR, &ref, "email failed %d times (%s): dead, needs a person",
		       e->attempt, e->error);
		email_done(r, e, "dead", 0);
	} else {
		r->stats.emails_retried++;
		double wait = retry_wait(r, e->attempt);
		log_at(LOG_LEVEL_WARN, &ref, "email failed (%s); retrying in %.1f s", e->error, wait);
		email_done(r, e, "retry", wait);
	}
}

static void take_claimed_emails(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	struct relay *r = arg;
	r->emails_claiming = false;
	if (error) {
		log_warn("claiming emails failed: %s", error);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		struct email_job *e = calloc(1, sizeof(*e));
		if (!e)
			break;
		e->relay = r;
		track(r, e);
		e->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		e->invoice_id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		e->attempt = atoi(PQgetvalue(res, i, 2));
		snprintf(e->claim_token, sizeof(e->claim_token), "%s", PQgetvalue(res, i, 8));
		r->email_inflight++;
		struct email_fields f = {
			.id = e->id,
			.invoice_id = e->invoice_id,
			.template = PQgetvalue(res, i, 3),
			.recipient = PQgetvalue(res, i, 4),
			.from = r->cfg->mail_from,
			.domain = r->mail_domain,
			.amount_cents = strtoll(PQgetvalue(res, i, 5), NULL, 10),
			.currency = PQgetvalue(res, i, 6),
			.gateway_ref = PQgetvalue(res, i, 7),
			.date = time(NULL),
		};
		struct log_ref ref = {.invoice = e->invoice_id, .row = e->id, .attempt = e->attempt};
		char *msg = email_compose(&f, e->error, sizeof(e->error));
		if (!msg) {
			r->stats.emails_dead++;
			log_at(LOG_LEVEL_ERROR, &ref, "email cannot be written (%s): dead", e->error);
			email_done(r, e, "dead", 0);
			continue;
		}
		char from[300], to[300];
		snprintf(from, sizeof(from), "<%s>", r->cfg->mail_from);
		snprintf(to, sizeof(to), "<%s>", f.recipient);
		if (!http_smtp_send(r->http, r->cfg->smtp_url, from, to, msg, on_smtp_done, e)) {
			snprintf(e->error, sizeof(e->error), "cannot start the SMTP transfer");
			email_done(r, e, "retry", retry_wait(r, e->attempt));
		}
	}
}

/* Every claim answer, rows or none, error or not, may be the last thing a
 * stopping relay waits for. */
static void on_emails_claimed(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	take_claimed_emails(db, res, error, arg);
	relay_check_stopped(arg);
}

void emails_claim(struct relay *r)
{
	int room = r->cfg->email_max_inflight - r->email_inflight;
	if (!r->cfg->smtp_url[0] || !r->db_ready || r->stopping || r->emails_claiming || room <= 0)
		return;
	char lease[32], limit[16];
	snprintf(lease, sizeof(lease), "%.3f", r->cfg->lease);
	snprintf(limit, sizeof(limit), "%d", room);
	const char *params[] = {r->owner, lease, limit};
	if (pgc_query(r->db,
		      "SELECT id, invoice_id, attempts, template, recipient, amount_cents, currency,"
		      " coalesce(gateway_ref, ''), claim_token"
		      " FROM outbox.claim_emails($1, $2::float8, $3::integer)",
		      3, params, on_emails_claimed, r) == 0)
		r->emails_claiming = true;
}

static void free_list(struct relay *r, struct email_job *e)
{
	while (e) {
		struct email_job *next = e->next;
		email_free(r, e);
		e = next;
	}
}

static void on_emails_recorded(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	struct relay *r = arg;
	r->emails_recording = false;
	if (error) {
		/* keep them: recorded when the database answers again */
		log_warn("recording emails failed (%s); kept for the next try", error);
		struct email_job *last = r->emails_batch;
		while (last && last->next)
			last = last->next;
		if (last) {
			last->next = r->emails_done;
			r->emails_done = r->emails_batch;
		}
		r->emails_batch = NULL;
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		if (strcmp(PQgetvalue(res, i, 1), "t") != 0) {
			r->stats.emails_lost++;
			log_warn("email row %s: outcome not recorded (claim lost; it will be sent again)",
				 PQgetvalue(res, i, 0));
		}
	}
	int n = 0;
	for (struct email_job *e = r->emails_batch; e; e = e->next)
		n++;
	free_list(r, r->emails_batch);
	r->emails_batch = NULL;
	r->email_inflight -= n;
	emails_flush(r);
	emails_claim(r);
	relay_check_stopped(r);
}

void emails_flush(struct relay *r)
{
	if (!r->db_ready || r->emails_recording || !r->emails_done)
		return;
	cJSON *arr = cJSON_CreateArray();
	for (struct email_job *e = r->emails_done; arr && e; e = e->next) {
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			arr = NULL;
			break;
		}
		char id[24];
		snprintf(id, sizeof(id), "%lld", (long long)e->id);
		cJSON_AddStringToObject(o, "id", id); /* a string: no double rounding */
		cJSON_AddStringToObject(o, "claim_token", e->claim_token);
		cJSON_AddStringToObject(o, "outcome", e->outcome);
		if (e->error[0])
			cJSON_AddStringToObject(o, "error", e->error);
		cJSON_AddNumberToObject(o, "retry_after", e->retry_after);
	}
	char *json = arr ? cJSON_PrintUnformatted(arr) : NULL;
	cJSON_Delete(arr);
	if (!json)
		return;
	const char *params[] = {json};
	if (pgc_query(r->db, "SELECT id, recorded FROM outbox.record_emails($1::jsonb)", 1, params,
		      on_emails_recorded, r) == 0) {
		r->emails_recording = true;
		r->emails_batch = r->emails_done;
		r->emails_done = NULL;
	}
	free(json);
}

void emails_free(struct relay *r)
{
	/* Every job, wherever it is (queued, being recorded, or its transfer
	 * aborted at exit without a callback). */
	while (r->email_jobs)
		email_free(r, r->email_jobs);
	r->emails_done = NULL;
	r->emails_batch = NULL;
}
