/* lease.c: step 4. The heartbeat extends the leases of the rows this relay
 * holds (a row it no longer holds is marked lost: nothing of it is
 * recorded); the janitor turns submitting rows whose lease expired into
 * unknown (never pending: their POST may have left). */
#include "relay.h"

#include "log.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

static void on_extended(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	struct relay *r = arg;
	r->heartbeat_busy = false;
	if (error) {
		/* Leases run on; if they expire, the rows are looked up. */
		log_warn("heartbeat failed: %s", error);
		return;
	}
	int n = PQntuples(res);
	long long *ids = malloc((size_t)(n ? n : 1) * sizeof(*ids));
	if (!ids)
		return;
	for (int i = 0; i < n; i++)
		ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	qsort(ids, (size_t)n, sizeof(*ids), cmp_ll);
	double deadline = r->heartbeat_sent_at + r->cfg->lease - relay_lease_margin(r->cfg);
	for (struct job *j = r->jobs; j; j = j->next) {
		if (j->heartbeat != r->heartbeat_gen || j->lost)
			continue; /* claimed after this heartbeat went out */
		long long id = j->charge.id;
		if (bsearch(&id, ids, (size_t)n, sizeof(*ids), cmp_ll)) {
			if (deadline > j->lease_deadline)
				j->lease_deadline = deadline;
		} else {
			j->lost = true;
			struct log_ref ref = {.invoice = j->charge.invoice_id, .row = j->charge.id,
					      .attempt = j->charge.attempt, .claim = j->claim_token};
			log_at(LOG_LEVEL_WARN, &ref,
			       "lease lost (expired, or the row was taken over): nothing more is sent for "
			       "it; an answer already received is still offered, and refused if the row "
			       "was taken");
		}
	}
	free(ids);
}

void lease_heartbeat(struct relay *r)
{
	/* While answers kept through an outage are being recorded, wait: an
	 * expired lease is not extended, and would be called lost. */
	if (!r->db_ready || r->heartbeat_busy || !r->jobs || r->draining)
		return;
	cJSON *arr = cJSON_CreateArray();
	if (!arr)
		return;
	r->heartbeat_gen++;
	for (struct job *j = r->jobs; j; j = j->next) {
		if (j->lost)
			continue;
		j->heartbeat = r->heartbeat_gen;
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			break;
		}
		char id[24];
		snprintf(id, sizeof(id), "%lld", (long long)j->charge.id);
		cJSON_AddStringToObject(o, "id", id); /* a string: no double rounding */
		cJSON_AddStringToObject(o, "claim_token", j->claim_token);
	}
	char *json = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	char lease[32];
	snprintf(lease, sizeof(lease), "%.3f", r->cfg->lease);
	const char *params[] = {json, lease};
	r->heartbeat_sent_at = relay_now(r);
	if (json && pgc_query(r->db, "SELECT id FROM outbox.extend_leases($1::jsonb, $2::float8)", 2,
			      params, on_extended, r) == 0)
		r->heartbeat_busy = true;
	free(json);
}

static void on_expired(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	struct relay *r = arg;
	r->janitor_busy = false;
	if (error) {
		log_warn("janitor failed: %s", error);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		struct log_ref ref = {.row = strtoll(PQgetvalue(res, i, 0), NULL, 10),
				      .invoice = strtoll(PQgetvalue(res, i, 2), NULL, 10)};
		r->stats.expired++;
		log_at(LOG_LEVEL_WARN, &ref, "%s row: lease of %s expired; now %s%s",
		       PQgetvalue(res, i, 1), PQgetvalue(res, i, 3), PQgetvalue(res, i, 4),
		       strcmp(PQgetvalue(res, i, 1), "charge") == 0
			       ? " (maybe charged: to be looked up, never re-sent)"
			       : " (to be sent again)");
	}
	if (PQntuples(res) == 100)
		lease_janitor(r); /* more may be waiting */
}

void lease_janitor(struct relay *r)
{
	if (!r->db_ready || r->janitor_busy || r->draining)
		return;
	char lookup[32];
	snprintf(lookup, sizeof(lookup), "%.3f", r->cfg->reconcile_schedule.v[0]);
	const char *params[] = {lookup};
	if (pgc_query(r->db,
		      "SELECT id, kind, invoice_id, lease_owner, to_state"
		      " FROM outbox.expire_leases(100, $1::float8)",
		      1, params, on_expired, r) == 0)
		r->janitor_busy = true;
}
