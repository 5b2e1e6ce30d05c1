/* charges.c: step 1 (claim, committed before any byte is sent) and step 2
 * (send each charge once, on a fresh connection, and classify the answer). */
#include "relay.h"

#include "crash.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct log_ref ref_of(const struct job *j)
{
	return (struct log_ref){.invoice = j->charge.invoice_id, .row = j->charge.id,
				.attempt = j->charge.attempt, .claim = j->claim_token};
}

void job_free(struct job *j)
{
	struct relay *r = j->relay;
	if (j->prev)
		j->prev->next = j->next;
	else
		r->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	r->inflight--;
	free(j);
}

static bool lease_still_ours(void *arg)
{
	struct job *j = arg;
	return !j->lost && relay_now(j->relay) + j->relay->cfg->http_timeout <= j->lease_deadline;
}

static void on_sent(void *arg)
{
	(void)arg;
	crash_point("relay.after_send");
}

/* The answer is in: classify it and hand it to the record step. */
static void on_answer(struct http_transfer *t, void *arg)
{
	struct job *j = arg;
	struct relay *r = j->relay;
	const struct http_result *res = http_result(t);
	if (res->held_back) {
		/* Checked right before the first byte: provably not sent. */
		r->stats.not_sent++;
		j->verdict = (struct verdict){.outcome = OUTCOME_RETRY_LATER};
		snprintf(j->verdict.reason, sizeof(j->verdict.reason),
			 "not sent: the lease would end before the request could");
		struct log_ref ref = ref_of(j);
		log_at(LOG_LEVEL_WARN, &ref, "%s; back to pending with the same key", j->verdict.reason);
		record_enqueue(r, j);
		return;
	}
	struct gateway_answer ans = {
		.curl_result = res->curl_result,
		.connected = res->connected,
		.http_status = res->status,
		.body = res->body,
		.body_len = res->body_len,
		.body_truncated = res->body_truncated,
		.retry_after = res->retry_after,
	};
	r->gateway->classify_charge(&j->charge, &ans, &j->verdict);
	crash_point("relay.after_response");
	prom_hist_observe(&r->stats.send_seconds, res->seconds);

	struct log_ref ref = ref_of(j);
	enum outcome o = j->verdict.outcome;
	r->stats.outcomes[o]++;
	log_at(o == OUTCOME_SUCCEEDED || o == OUTCOME_DECLINED ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, &ref,
	       "gateway answered %ld in %.3f s%s%s: %s (%s)", res->status, res->seconds,
	       res->curl_result ? ", transport: " : "", res->curl_result ? res->error : "",
	       outcome_state(o), j->verdict.reason);
	if (j->verdict.stop_sending && !r->sending_stopped) {
		r->sending_stopped = true;
		log_error("the gateway refuses our API key: no more charges are sent until the key is "
			  "fixed and reloaded (SIGHUP) or the relay restarts");
	}
	record_enqueue(r, j);
}

/* Send a claimed row, or, if its lease cannot cover the whole request,
 * give it back unsent (it is provably not executed). */
static void send_job(struct relay *r, struct job *j)
{
	struct log_ref ref = ref_of(j);
	double now = relay_now(r);
	const char *not_sent = NULL;
	char why[160];
	struct gateway_request req;
	int built = 0;

	if (now + r->cfg->http_timeout > j->lease_deadline)
		not_sent = "not sent: the lease would end before the request could";
	else if (r->sending_stopped)
		not_sent = "not sent: sending is stopped (the gateway refused our key)";
	else if (r->stopping)
		not_sent = "not sent: the relay is stopping";
	else if ((built = r->gateway->build_charge(&r->gw, &j->charge, &req, why, sizeof(why))) != 0)
		not_sent = why;
	if (!not_sent) {
		j->state = JOB_SENDING;
		struct http_transfer *t =
			http_post_fresh(r->http, req.url, req.headers, req.body, on_answer, j);
		if (t) {
			/* the lease is checked again right before bytes leave: the
			 * loop may have stalled since (PROTOCOL.md, timing rules) */
			http_before_send(t, lease_still_ours);
			if (crash_armed("relay.after_send"))
				http_on_sent(t, on_sent);
			r->stats.sent++;
			log_at(LOG_LEVEL_DEBUG, &ref, "POST %s (%lld %s)", req.url,
			       (long long)j->charge.amount_cents, j->charge.currency);
			return;
		}
		not_sent = "not sent: cannot start the transfer (out of memory)";
	}
	r->stats.not_sent++;
	if (built == GATEWAY_REFUSE) {
		/* Never sent, and never sendable as it is: a person decides. */
		j->verdict = (struct verdict){.outcome = OUTCOME_DEAD};
		snprintf(j->verdict.reason, sizeof(j->verdict.reason), "not sent: %s", not_sent);
		log_at(LOG_LEVEL_ERROR, &ref, "%s; the row is dead (never sent)", j->verdict.reason);
		record_enqueue(r, j);
		return;
	}
	j->verdict = (struct verdict){.outcome = OUTCOME_RETRY_LATER};
	snprintf(j->verdict.reason, sizeof(j->verdict.reason), "%s", not_sent);
	log_at(LOG_LEVEL_WARN, &ref, "%s; back to pending with the same key", not_sent);
	record_enqueue(r, j);
}

static void copy_field(char *dst, size_t len, const PGresult *res, int row, int col)
{
	snprintf(dst, len, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

void charge_from_row(const PGresult *res, int row, struct charge *c, char *claim_token,
		     size_t token_len)
{
	c->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
	c->invoice_id = strtoll(PQgetvalue(res, row, 1), NULL, 10);
	c->attempt = atoi(PQgetvalue(res, row, 2));
	copy_field(c->idempotency_key, sizeof(c->idempotency_key), res, row, 3);
	c->amount_cents = strtoll(PQgetvalue(res, row, 4), NULL, 10);
	copy_field(c->currency, sizeof(c->currency), res, row, 5);
	c->customer_id = strtoll(PQgetvalue(res, row, 6), NULL, 10);
	copy_field(c->customer, sizeof(c->customer), res, row, 7);
	copy_field(c->source, sizeof(c->source), res, row, 8);
	copy_field(claim_token, token_len, res, row, 9);
}

static void take_claimed(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	struct relay *r = arg;
	r->claiming = false;
	if (error) {
		if (!res)
			log_warn("claim interrupted (%s): any rows it took stay submitting until their "
				 "lease expires, then are looked up, never re-sent blindly",
				 error);
		else
			log_error("claim failed: %s [SQLSTATE %s]", error, pgc_sqlstate(res));
		return;
	}
	crash_point("relay.after_claim_commit");
	prom_hist_observe(&r->stats.claim_seconds, relay_now(r) - r->claim_sent_at);
	if (pgc_in_transaction(db)) {
		/* Never happens by design (record.c queues whole transactions);
		 * if it did, this claim would not be committed: send nothing, and
		 * drop the connection so the server rolls it back. */
		log_error("claim answered inside an open transaction: nothing sent, reconnecting");
		pgc_reset(db, "claim inside an open transaction");
		return;
	}
	int n = PQntuples(res);
	double deadline = r->claim_sent_at + r->cfg->lease - relay_lease_margin(r->cfg);
	for (int i = 0; i < n; i++) {
		struct job *j = calloc(1, sizeof(*j));
		if (!j) {
			log_error("out of memory: claimed rows left to their leases");
			break;
		}
		j->relay = r;
		charge_from_row(res, i, &j->charge, j->claim_token, sizeof(j->claim_token));
		j->lease_deadline = deadline;
		j->heartbeat = 0; /* in no heartbeat yet: one on the wire must not judge it */
		j->next = r->jobs;
		if (r->jobs)
			r->jobs->prev = j;
		r->jobs = j;
		r->inflight++;
		r->stats.claimed++;
		send_job(r, j);
	}
	if (n > 0)
		log_debug("claimed %d charge(s); %d in flight", n, r->inflight);
	/* there may be more waiting: a full batch, or a NOTIFY (a charger's
	 * commit) that came while this claim ran and may have missed its rows */
	bool again = n == r->cfg->claim_batch || r->claim_again;
	r->claim_again = false;
	if (again)
		charges_claim(r);
}

/* Every claim answer, rows or none, error or not, may be the last thing a
 * stopping relay waits for. */
static void on_claimed(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	take_claimed(db, res, error, arg);
	relay_check_stopped(arg);
}

void charges_claim(struct relay *r)
{
	int room = r->cfg->max_inflight - r->inflight;
	if (r->claiming) {
		r->claim_again = true;
		return;
	}
	/* both connections: what is claimed must be recorded and its lease tended */
	if (!r->db_ready || !r->claim_db_ready || r->stopping || room <= 0 || r->sending_stopped)
		return;
	if (room > r->cfg->claim_batch)
		room = r->cfg->claim_batch;
	char lease[32], limit[16];
	snprintf(lease, sizeof(lease), "%.3f", r->cfg->lease);
	snprintf(limit, sizeof(limit), "%d", room);
	const char *params[] = {r->owner, lease, limit};
	/* The lease is measured from before the claim is sent: our deadline is
	 * never later than the database's. */
	r->claim_sent_at = relay_now(r);
	if (pgc_query(r->claim_db,
		      "SELECT id, invoice_id, attempts, idempotency_key, amount_cents, currency,"
		      " customer_id, gateway_customer_id, payment_source, claim_token"
		      " FROM outbox.claim_charges($1, $2::float8, $3::integer)",
		      3, params, on_claimed, r) == 0)
		r->claiming = true;
}
