/* reconcile.c: step 5. Unknown charges are looked up with the gateway's
 * read API, never POSTed again: claim_lookups hands out rows due for a
 * lookup, the adapter reads the gateway's list page by page, and
 * record_lookups records what was found. The database decides what
 * "absent" proves (only after the settle window) and when an inconclusive
 * row is looked up again or given up (dead). */
#include "relay.h"

#include "crash.h"
#include "log.h"
#include "text.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAGES 100 /* 10,000 charges listed: past that, ask again later */

struct lookup_job {
	struct lookup_job *next;               /* relay.lookups_done / lookups_batch */
	struct lookup_job *all_prev, *all_next; /* relay.lookup_jobs: freed at exit */
	struct relay *relay;
	struct charge charge;
	char claim_token[40];
	int64_t since;
	int pages;
	struct lookup_verdict verdict;
};

static struct log_ref ref_of(const struct lookup_job *l)
{
	return (struct log_ref){.invoice = l->charge.invoice_id, .row = l->charge.id,
				.attempt = l->charge.attempt};
}

static void lookup_free(struct relay *r, struct lookup_job *l)
{
	if (l->all_prev)
		l->all_prev->all_next = l->all_next;
	else
		r->lookup_jobs = l->all_next;
	if (l->all_next)
		l->all_next->all_prev = l->all_prev;
	r->lookup_inflight--;
	free(l);
}

static void done(struct relay *r, struct lookup_job *l)
{
	struct log_ref ref = ref_of(l);
	utf8_sanitize(l->verdict.reason);
	utf8_sanitize(l->verdict.gateway_ref);
	log_at(l->verdict.found == LOOKUP_INCONCLUSIVE ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, &ref,
	       "lookup: %s (%s)", lookup_found_name(l->verdict.found), l->verdict.reason);
	crash_point("relay.during_reconcile");
	r->stats.lookups[l->verdict.found]++;
	l->next = r->lookups_done;
	r->lookups_done = l;
	reconcile_flush(r);
}

static void start_page(struct relay *r, struct lookup_job *l);

static void on_page(struct http_transfer *t, void *arg)
{
	struct lookup_job *l = arg;
	struct relay *r = l->relay;
	const struct http_result *res = http_result(t);
	char at[sizeof(l->verdict.next)]; /* parse_lookup overwrites the verdict */
	snprintf(at, sizeof(at), "%s", l->verdict.next);
	struct gateway_answer ans = {
		.curl_result = res->curl_result,
		.connected = res->connected,
		.http_status = res->status,
		.body = res->body,
		.body_len = res->body_len,
		.body_truncated = res->body_truncated,
		.lookup_at = at,
		.lookup_since = l->since,
	};
	r->gateway->parse_lookup(&l->charge, &ans, &l->verdict);
	if (l->verdict.found == LOOKUP_NEXT_PAGE) {
		if (++l->pages >= MAX_PAGES) {
			l->verdict.found = LOOKUP_INCONCLUSIVE;
			snprintf(l->verdict.reason, sizeof(l->verdict.reason),
				 "not found in %d pages of the gateway's list", MAX_PAGES);
		} else {
			start_page(r, l); /* continues after verdict.next */
			return;
		}
	}
	done(r, l);
}

static void start_page(struct relay *r, struct lookup_job *l)
{
	struct lookup_query q = {.charge = &l->charge, .since = l->since,
				 .starting_after = l->verdict.next};
	struct gateway_request req;
	char why[160];
	if (r->gateway->build_lookup(&r->gw, &q, &req, why, sizeof(why)) == 0) {
		/* a body means a read the API takes as a POST (Authorize.Net) */
		if (req.body ? http_post_read(r->http, req.url, req.headers, req.body, on_page, l)
			     : http_get(r->http, req.url, req.headers, on_page, l))
			return;
		snprintf(why, sizeof(why), "cannot start the lookup (out of memory)");
	}
	l->verdict = (struct lookup_verdict){.found = LOOKUP_INCONCLUSIVE};
	snprintf(l->verdict.reason, sizeof(l->verdict.reason), "%s", why);
	done(r, l);
}

static void on_claimed(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	struct relay *r = arg;
	r->lookups_claiming = false;
	if (error) {
		log_warn("claiming lookups failed: %s", error);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		struct lookup_job *l = calloc(1, sizeof(*l));
		if (!l)
			break;
		l->relay = r;
		l->all_next = r->lookup_jobs;
		if (r->lookup_jobs)
			r->lookup_jobs->all_prev = l;
		r->lookup_jobs = l;
		r->lookup_inflight++;
		struct charge *c = &l->charge;
		charge_from_row(res, i, c, l->claim_token, sizeof(l->claim_token));
		/* the row was created before any send of it; the gateway's
		 * clock may run behind ours: list from a little earlier */
		l->since = strtoll(PQgetvalue(res, i, 10), NULL, 10) - LOOKUP_CLOCK_SKEW;
		struct log_ref ref = ref_of(l);
		log_at(LOG_LEVEL_DEBUG, &ref, "looking up (%s inconclusive so far)",
		       PQgetvalue(res, i, 11));
		start_page(r, l);
	}
}

void reconcile_claim(struct relay *r)
{
	int room = r->cfg->lookup_max_inflight - r->lookup_inflight;
	if (!r->db_ready || r->stopping || r->lookups_claiming || room <= 0 || r->draining)
		return;
	char hold[32], limit[16];
	/* Held for a lease: after a crash the row is looked up again soon. A
	 * longer lookup may meet a second one (reads: harmless); the claim
	 * token, rotated by each claim, fences the older answer out. */
	snprintf(hold, sizeof(hold), "%.3f", r->cfg->lease);
	snprintf(limit, sizeof(limit), "%d", room);
	const char *params[] = {r->owner, hold, limit};
	if (pgc_query(r->db,
		      "SELECT id, invoice_id, attempts, idempotency_key, amount_cents, currency,"
		      " customer_id, gateway_customer_id, payment_source, claim_token, created_epoch,"
		      " failed_lookups FROM outbox.claim_lookups($1, $2::float8, $3::integer)",
		      3, params, on_claimed, r) == 0)
		r->lookups_claiming = true;
}

/* For /metrics: what the database decided, and the charge outcomes it
 * recorded (a settled lookup is recorded as a direct answer would be). */
static void count_verdict(struct relay_stats *s, bool recorded, const char *verdict)
{
	static const char *const names[LV_COUNT] = {"succeeded", "declined", "failed",
						    "wait",      "again",    "dead"};
	static const enum outcome outcomes[LV_COUNT] = {OUTCOME_SUCCEEDED, OUTCOME_DECLINED,
							OUTCOME_FAILED,    OUTCOME_UNKNOWN,
							OUTCOME_UNKNOWN,   OUTCOME_DEAD};
	if (!recorded) {
		s->lookups_lost++;
		return;
	}
	for (int v = 0; v < LV_COUNT; v++) {
		if (strcmp(verdict, names[v]) != 0)
			continue;
		s->lookup_verdicts[v]++;
		if (v != LV_WAIT && v != LV_AGAIN) /* still unknown: no new outcome */
			s->recorded_outcomes[outcomes[v]]++;
		return;
	}
}

static void on_recorded(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	struct relay *r = arg;
	r->lookups_recording = false;
	if (error) {
		/* keep them for the next try */
		log_warn("recording lookups failed (%s); kept for the next try", error);
		struct lookup_job *last = r->lookups_batch;
		while (last && last->next)
			last = last->next;
		if (last) {
			last->next = r->lookups_done;
			r->lookups_done = r->lookups_batch;
		}
		r->lookups_batch = NULL;
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		struct log_ref ref = {.row = strtoll(PQgetvalue(res, i, 0), NULL, 10)};
		const char *outcome = PQgetvalue(res, i, 2);
		bool recorded = strcmp(PQgetvalue(res, i, 1), "t") == 0;
		count_verdict(&r->stats, recorded, outcome);
		if (!recorded)
			log_at(LOG_LEVEL_WARN, &ref,
			       "lookup not recorded: the row was settled or replayed meanwhile");
		else if (strcmp(outcome, "dead") == 0)
			log_at(LOG_LEVEL_ERROR, &ref,
			       "lookups exhausted: the row is dead and needs a person (see outbox.stuck)");
		else if (strcmp(outcome, "succeeded") == 0 || strcmp(outcome, "declined") == 0 ||
			 strcmp(outcome, "failed") == 0)
			log_at(LOG_LEVEL_INFO, &ref, "reconciled: %s", outcome);
	}
	while (r->lookups_batch) {
		struct lookup_job *next = r->lookups_batch->next;
		lookup_free(r, r->lookups_batch);
		r->lookups_batch = next;
	}
	emails_claim(r); /* a reconciled charge releases its notification */
	reconcile_flush(r);
	reconcile_claim(r);
}

/* "{60,300}": a parameter value, from configured numbers. */
static void schedule_literal(const struct cfg_seconds_list *l, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "{");
	for (int i = 0; i < l->n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%.3f", i ? "," : "", l->v[i]);
	if (off < len)
		snprintf(buf + off, len - off, "}");
}

void reconcile_flush(struct relay *r)
{
	if (!r->db_ready || r->lookups_recording || !r->lookups_done)
		return;
	cJSON *arr = cJSON_CreateArray();
	for (struct lookup_job *l = r->lookups_done; arr && l; l = l->next) {
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			arr = NULL;
			break;
		}
		char id[24];
		snprintf(id, sizeof(id), "%lld", (long long)l->charge.id);
		cJSON_AddStringToObject(o, "id", id);
		cJSON_AddStringToObject(o, "claim_token", l->claim_token);
		cJSON_AddStringToObject(o, "found", lookup_found_name(l->verdict.found));
		if (l->verdict.gateway_ref[0])
			cJSON_AddStringToObject(o, "gateway_ref", l->verdict.gateway_ref);
		cJSON_AddStringToObject(o, "error", l->verdict.reason);
	}
	char *json = arr ? cJSON_PrintUnformatted(arr) : NULL;
	cJSON_Delete(arr);
	if (!json)
		return;
	char retry[512], sched[512], settle[32];
	schedule_literal(&r->cfg->invoice_retry_schedule, retry, sizeof(retry));
	schedule_literal(&r->cfg->reconcile_schedule, sched, sizeof(sched));
	snprintf(settle, sizeof(settle), "%.3f", r->cfg->settle);
	const char *params[] = {json, retry, sched, settle};
	if (pgc_query(r->db,
		      "SELECT id, recorded, coalesce(outcome, '') FROM outbox.record_lookups("
		      "$1::jsonb, $2::float8[], $3::float8[], $4::float8)",
		      4, params, on_recorded, r) == 0) {
		r->lookups_recording = true;
		r->lookups_batch = r->lookups_done;
		r->lookups_done = NULL;
	}
	free(json);
}

void reconcile_free(struct relay *r)
{
	while (r->lookup_jobs)
		lookup_free(r, r->lookup_jobs);
	r->lookups_done = r->lookups_batch = NULL;
}
