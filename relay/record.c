/* record.c: step 3. Answers wait in a queue; a batch of them is recorded in
 * one transaction (BEGIN; SELECT outbox.record_charges(...); COMMIT), each
 * outcome all-or-nothing and guarded by its claim token in the database.
 * When the database is away the answers stay here, and are recorded once
 * it is back. Never a transaction open across a network call.
 *
 * The three statements are queued together: the relay's other statements
 * (claims above all) share the connection, and one slipped in between
 * would run inside this transaction, so a claim would not be committed
 * before its POST. pgc sends one statement at a time, so the crash point
 * between the SELECT's answer and the COMMIT still comes before the COMMIT
 * leaves. */
#include "relay.h"

#include "crash.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void record_retry_soon(struct relay *r, double delay)
{
	ev_timer_stop(r->loop, &r->retry_record);
	ev_timer_set(&r->retry_record, delay, 0.);
	ev_timer_start(r->loop, &r->retry_record);
}

void record_enqueue(struct relay *r, struct job *j)
{
	j->state = JOB_ANSWERED;
	j->queue_next = NULL;
	if (r->answered_tail)
		r->answered_tail->queue_next = j;
	else
		r->answered_head = j;
	r->answered_tail = j;
	r->answered++;
	record_flush(r);
}

/* The batch on the wire did not commit (or we cannot know): put it back at
 * the head of the queue, in order. */
void record_requeue_batch(struct relay *r)
{
	for (int i = r->batch_len - 1; i >= 0; i--) {
		struct job *j = r->batch[i];
		j->state = JOB_ANSWERED;
		j->queue_next = r->answered_head;
		r->answered_head = j;
		if (!r->answered_tail)
			r->answered_tail = j;
		r->answered++;
	}
	r->batch_len = 0;
	r->recording = false;
}

static double pending_wait(const struct job *j)
{
	if (j->verdict.retry_after > 0)
		return j->verdict.retry_after;
	double wait = 1;
	for (int i = 1; i < j->charge.attempt && wait < 300; i++)
		wait *= 2;
	return wait < 300 ? wait : 300;
}

static char *results_json(struct relay *r)
{
	cJSON *arr = cJSON_CreateArray();
	for (int i = 0; arr && i < r->batch_len; i++) {
		struct job *j = r->batch[i];
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			return NULL;
		}
		cJSON_AddNumberToObject(o, "id", (double)j->charge.id);
		cJSON_AddStringToObject(o, "claim_token", j->claim_token);
		cJSON_AddStringToObject(o, "outcome", outcome_state(j->verdict.outcome));
		if (j->verdict.gateway_ref[0])
			cJSON_AddStringToObject(o, "gateway_ref", j->verdict.gateway_ref);
		if (j->verdict.outcome != OUTCOME_SUCCEEDED)
			cJSON_AddStringToObject(o, "error", j->verdict.reason);
		if (j->verdict.outcome == OUTCOME_RETRY_LATER)
			cJSON_AddNumberToObject(o, "retry_after", pending_wait(j));
	}
	char *text = arr ? cJSON_PrintUnformatted(arr) : NULL;
	cJSON_Delete(arr);
	return text;
}

/* "{86400,259200}": a parameter value, from configured numbers. */
static void schedule_literal(const struct cfg_seconds_list *l, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "{");
	for (int i = 0; i < l->n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%.3f", i ? "," : "", l->v[i]);
	if (off < len)
		snprintf(buf + off, len - off, "}");
}

static void batch_failed(struct relay *r, const PGresult *res, const char *error,
			 const char *step)
{
	if (!r->recording)
		return; /* the rest of a failed attempt's statements */
	if (!res) {
		log_warn("recording %d outcome(s) interrupted during %s (%s); they are kept and "
			 "recorded when the database is back",
			 r->batch_len, step, error);
		record_requeue_batch(r);
		return;
	}
	log_error("recording %d outcome(s) failed during %s: %s [SQLSTATE %s]", r->batch_len, step,
		  error, pgc_sqlstate(res));
	if (r->batch_len == 1) {
		/* Isolated: this answer itself cannot be recorded (a bug, or data
		 * the schema refuses). Record the row as unknown, with the reason,
		 * so a lookup settles it; if even that fails, leave it to its
		 * lease (the janitor makes it unknown). */
		struct job *j = r->batch[0];
		struct log_ref ref = {.invoice = j->charge.invoice_id, .row = j->charge.id,
				      .attempt = j->charge.attempt, .claim = j->claim_token};
		if (j->verdict.outcome != OUTCOME_UNKNOWN) {
			char reason[sizeof(j->verdict.reason)];
			snprintf(reason, sizeof(reason), "cannot record %s (%.120s): %.100s",
				 outcome_state(j->verdict.outcome), j->verdict.reason, error);
			memcpy(j->verdict.reason, reason, sizeof(reason));
			j->verdict.outcome = OUTCOME_UNKNOWN;
			log_at(LOG_LEVEL_ERROR, &ref, "recording it as unknown instead: %s", reason);
		} else {
			r->stats.claims_lost++;
			j->lost = true; /* no more heartbeats: the lease will expire */
			log_at(LOG_LEVEL_ERROR, &ref,
			       "cannot record it even as unknown: left to its lease, then looked up");
		}
	} else {
		log_info("retrying those %d outcome(s) one by one to isolate the culprit",
			 r->batch_len);
	}
	r->record_one_by_one = true;
	record_requeue_batch(r);
	record_retry_soon(r, 0.5);
}

static void on_committed(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	struct relay *r = arg;
	if (!r->recording)
		return; /* this attempt already failed */
	if (!error && strcmp(PQcmdStatus((PGresult *)res), "COMMIT") != 0)
		error = "the transaction was rolled back";
	if (error) {
		/* A COMMIT without an answer may have happened: the entries stay
		 * queued; a retry is refused by the claim token if it did. */
		batch_failed(r, res, error, "COMMIT");
		return;
	}
	crash_point("relay.after_record_commit");
	for (int i = 0; i < r->batch_len; i++) {
		struct job *j = r->batch[i];
		struct log_ref ref = {.invoice = j->charge.invoice_id, .row = j->charge.id,
				      .attempt = j->charge.attempt, .claim = j->claim_token};
		if (j->recorded) {
			r->stats.recorded++;
			log_at(LOG_LEVEL_DEBUG, &ref, "recorded %s", outcome_state(j->verdict.outcome));
		} else if (j->commit_tried && strncmp(j->record_note, "claim lost", 10) == 0) {
			log_at(LOG_LEVEL_INFO, &ref,
			       "already recorded by an earlier attempt whose COMMIT answer was lost");
		} else {
			r->stats.claims_lost++;
			log_at(LOG_LEVEL_WARN, &ref, "outcome %s NOT recorded: %s",
			       outcome_state(j->verdict.outcome), j->record_note);
		}
		job_free(j);
	}
	r->batch_len = 0;
	r->recording = false;
	r->record_one_by_one = false;
	emails_claim(r); /* the batch may have released notifications */
	relay_check_stopped(r);
	record_flush(r);
	charges_claim(r);
}

static void on_recorded(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	struct relay *r = arg;
	if (!r->recording)
		return;
	if (error) {
		/* The transaction is aborted; the queued COMMIT ends it (as a
		 * ROLLBACK, which on_committed then ignores). */
		batch_failed(r, res, error, "record_charges");
		return;
	}
	/* Rows come back in the order sent; match by id to be safe. */
	for (int i = 0; i < PQntuples(res); i++) {
		long long id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		for (int k = 0; k < r->batch_len; k++) {
			struct job *j = r->batch[k];
			if (j->charge.id != id)
				continue;
			j->recorded = strcmp(PQgetvalue(res, i, 1), "t") == 0;
			snprintf(j->record_note, sizeof(j->record_note), "%s", PQgetvalue(res, i, 2));
			break;
		}
	}
	crash_point("relay.before_record_commit");
	for (int k = 0; k < r->batch_len; k++)
		r->batch[k]->commit_tried = true;
}

static void on_begun(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	struct relay *r = arg;
	if (error)
		batch_failed(r, res, error, "BEGIN");
}

void record_flush(struct relay *r)
{
	if (!r->db_ready || r->recording || !r->answered_head)
		return;
	if (!r->batch && !(r->batch = calloc((size_t)r->cfg->record_batch, sizeof(*r->batch)))) {
		log_error("out of memory");
		return;
	}
	r->batch_len = 0;
	int limit = r->record_one_by_one ? 1 : r->cfg->record_batch;
	while (r->answered_head && r->batch_len < limit) {
		struct job *j = r->answered_head;
		r->answered_head = j->queue_next;
		if (!r->answered_head)
			r->answered_tail = NULL;
		r->answered--;
		if (j->lost) {
			struct log_ref ref = {.invoice = j->charge.invoice_id, .row = j->charge.id,
					      .attempt = j->charge.attempt, .claim = j->claim_token};
			r->stats.claims_lost++;
			log_at(LOG_LEVEL_WARN, &ref,
			       "lease lost before recording: outcome %s (%s) not recorded; the row is "
			       "looked up instead",
			       outcome_state(j->verdict.outcome), j->verdict.reason);
			job_free(j);
			continue;
		}
		j->state = JOB_RECORDING;
		r->batch[r->batch_len++] = j;
	}
	if (r->batch_len == 0) {
		relay_check_stopped(r);
		return;
	}
	char *json = results_json(r);
	char retry[512], lookup[32];
	schedule_literal(&r->cfg->invoice_retry_schedule, retry, sizeof(retry));
	snprintf(lookup, sizeof(lookup), "%.3f", r->cfg->reconcile_schedule.v[0]);
	const char *params[] = {json, retry, lookup};
	r->recording = true;
	int rc = json ? pgc_query(r->db, "BEGIN", 0, NULL, on_begun, r) : -1;
	if (rc == 0)
		rc = pgc_query(r->db,
			       "SELECT id, recorded, coalesce(note, '')"
			       " FROM outbox.record_charges($1::jsonb, $2::float8[], $3::float8)",
			       3, params, on_recorded, r);
	if (rc == 0)
		rc = pgc_query(r->db, "COMMIT", 0, NULL, on_committed, r);
	free(json);
	if (rc != 0)
		batch_failed(r, NULL, json ? "not connected" : "out of memory", "BEGIN");
}
