/* record.c: step 3. Answers wait in a queue; a batch of them is recorded in
 * one transaction (BEGIN; SELECT outbox.record_charges(...); COMMIT), each
 * row guarded by its claim token in the database. When the database is
 * away the answers stay here and are recorded once it is back. Never a
 * transaction open across a network call.
 *
 * The three statements are queued together: the relay's other statements
 * on this connection (emails, lookups, heartbeats) would run inside the
 * transaction if one slipped in between. Claims have a connection of their
 * own, so no claim can run inside it and be sent uncommitted. pgc sends
 * one statement at a time, so the crash point between the SELECT's answer
 * and the COMMIT still comes before the COMMIT leaves. pgc answers every
 * queued statement (with an error if the connection goes), so the
 * COMMIT's callback is always the attempt's last:
 * only it decides the attempt, and no new attempt starts before it. */
#include "relay.h"

#include "crash.h"
#include "log.h"
#include "text.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct log_ref ref_of(const struct job *j)
{
	return (struct log_ref){.invoice = j->charge.invoice_id, .row = j->charge.id,
				.attempt = j->charge.attempt, .claim = j->claim_token};
}

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

/* The attempt did not commit (or we cannot know): its answers go back to
 * the head of the queue, in order. */
static void requeue_batch(struct relay *r)
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

/* Gateway text goes into a JSON parameter: it must be valid UTF-8 or
 * PostgreSQL refuses the whole batch. Ids travel as strings (no double
 * rounding above 2^53). */
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
		char id[24];
		snprintf(id, sizeof(id), "%lld", (long long)j->charge.id);
		utf8_sanitize(j->verdict.reason);
		utf8_sanitize(j->verdict.gateway_ref);
		cJSON_AddStringToObject(o, "id", id);
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

/* The attempt failed with a server error: isolate the culprit. */
static void attempt_refused(struct relay *r, const char *error)
{
	if (r->batch_len > 1) {
		log_warn("recording %d outcome(s) failed (%s); retrying them one by one to isolate "
			 "the culprit",
			 r->batch_len, error);
		r->isolate = r->batch_len;
		requeue_batch(r);
		return;
	}
	/* Alone, this answer cannot be recorded (a bug, or data the schema
	 * refuses): record the row as unknown with the reason, so a lookup
	 * settles it. If even that fails, drop it: the row stays submitting
	 * until its lease expires, then the janitor makes it unknown. */
	struct job *j = r->batch[0];
	struct log_ref ref = ref_of(j);
	if (j->verdict.outcome != OUTCOME_UNKNOWN) {
		char reason[sizeof(j->verdict.reason)];
		snprintf(reason, sizeof(reason), "cannot record %s (%.120s): %.100s",
			 outcome_state(j->verdict.outcome), j->verdict.reason, error);
		memcpy(j->verdict.reason, reason, sizeof(reason));
		utf8_sanitize(j->verdict.reason);
		j->verdict.outcome = OUTCOME_UNKNOWN;
		log_at(LOG_LEVEL_ERROR, &ref, "recording it as unknown instead: %s", j->verdict.reason);
		requeue_batch(r);
		return;
	}
	r->stats.claims_lost++;
	log_at(LOG_LEVEL_ERROR, &ref,
	       "cannot record it even as unknown (%s): left to its lease, then looked up", error);
	job_free(j);
	r->batch_len = 0;
	if (r->isolate > 0)
		r->isolate--;
}

static void attempt_committed(struct relay *r)
{
	for (int i = 0; i < r->batch_len; i++) {
		struct job *j = r->batch[i];
		struct log_ref ref = ref_of(j);
		if (j->recorded) {
			r->stats.recorded++;
			r->stats.recorded_outcomes[j->verdict.outcome]++;
			log_at(LOG_LEVEL_DEBUG, &ref, "recorded %s", outcome_state(j->verdict.outcome));
		} else if (j->commit_tried) {
			/* An earlier COMMIT carrying it went out unanswered: that one
			 * may have recorded it, or the janitor took the row since. */
			log_at(LOG_LEVEL_INFO, &ref,
			       "not recorded now (%s): an earlier attempt's COMMIT, whose answer was lost, "
			       "probably did",
			       j->record_note);
		} else {
			r->stats.claims_lost++;
			log_at(LOG_LEVEL_WARN, &ref, "outcome %s NOT recorded: %s",
			       outcome_state(j->verdict.outcome), j->record_note);
		}
		job_free(j);
	}
	r->batch_len = 0;
	if (r->isolate > 0)
		r->isolate--;
}

static void on_begun(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	(void)res;
	struct relay *r = arg;
	if (error && !r->attempt_error[0])
		snprintf(r->attempt_error, sizeof(r->attempt_error), "BEGIN: %s", error);
}

static void on_recorded(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	struct relay *r = arg;
	if (error) {
		if (!r->attempt_error[0])
			snprintf(r->attempt_error, sizeof(r->attempt_error), "%s", error);
		r->attempt_server_error = res != NULL;
		return; /* the queued COMMIT ends the aborted transaction */
	}
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

static void on_committed(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	struct relay *r = arg;
	if (!error && !r->attempt_error[0] && strcmp(PQcmdStatus((PGresult *)res), "COMMIT") == 0) {
		crash_point("relay.after_record_commit");
		prom_hist_observe(&r->stats.record_seconds, relay_now(r) - r->record_sent_at);
		attempt_committed(r);
	} else if (r->attempt_server_error) {
		attempt_refused(r, r->attempt_error);
		record_retry_soon(r, 0.2);
	} else {
		/* The connection went, or the COMMIT's answer was lost: keep the
		 * answers; if that COMMIT did happen, the claim token refuses the
		 * retry harmlessly. */
		log_warn("recording %d outcome(s) interrupted (%s); kept for when the database is back",
			 r->batch_len, r->attempt_error[0] ? r->attempt_error : error ? error : "rolled back");
		requeue_batch(r);
	}
	r->recording = false;
	if (r->answered == 0)
		r->draining = false; /* kept answers recorded: leases may be tended again */
	emails_claim(r); /* the batch may have released notifications */
	relay_check_stopped(r);
	record_flush(r);
	charges_claim(r);
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
	int limit = r->isolate > 0 ? 1 : r->cfg->record_batch;
	while (r->answered_head && r->batch_len < limit) {
		struct job *j = r->answered_head;
		r->answered_head = j->queue_next;
		if (!r->answered_head)
			r->answered_tail = NULL;
		r->answered--;
		j->state = JOB_RECORDING;
		r->batch[r->batch_len++] = j;
	}
	char *json = results_json(r);
	if (!json) {
		log_error("out of memory building the record batch; retrying");
		requeue_batch(r);
		record_retry_soon(r, 1);
		return;
	}
	char retry[512], lookup[32];
	schedule_literal(&r->cfg->invoice_retry_schedule, retry, sizeof(retry));
	snprintf(lookup, sizeof(lookup), "%.3f", r->cfg->reconcile_schedule.v[0]);
	const char *params[] = {json, retry, lookup};
	r->attempt_error[0] = '\0';
	r->attempt_server_error = false;
	int queued = pgc_query(r->db, "BEGIN", 0, NULL, on_begun, r) == 0;
	if (queued)
		queued += pgc_query(r->db,
				    "SELECT id, recorded, coalesce(note, '')"
				    " FROM outbox.record_charges($1::jsonb, $2::float8[], $3::float8)",
				    3, params, on_recorded, r) == 0;
	if (queued == 2)
		queued += pgc_query(r->db, "COMMIT", 0, NULL, on_committed, r) == 0;
	free(json);
	if (queued == 3) {
		r->recording = true;
		r->record_sent_at = relay_now(r);
		return;
	}
	/* Could not queue the whole transaction (out of memory): never leave a
	 * BEGIN behind on the shared connection. */
	requeue_batch(r);
	if (queued > 0)
		pgc_reset(r->db, "could not queue a whole record transaction");
	record_retry_soon(r, 1);
}
