/* relay.h: the relay daemon's state, shared by its steps (charges.c: claim
 * and send; record.c: record; lease.c: heartbeat and janitor; emails.c). */
#ifndef RELAY_RELAY_H
#define RELAY_RELAY_H

#include "daemon_metrics.h"
#include "gateway.h"
#include "http.h"
#include "pgconn.h"
#include "prom.h"
#include "relay_config.h"
#include "schema_check.h"
#include "sdnotify.h"

#include <ev.h>

/* The schema this relay needs (db/migrations/0006_reconcile.sql); with
 * --metrics-listen, also outbox.metrics_snapshot (0008_metrics.sql). */
#define RELAY_SCHEMA_VERSION 6
#define RELAY_SCHEMA_VERSION_METRICS 8

enum job_state {
	JOB_SENDING,   /* the POST is on the wire */
	JOB_ANSWERED,  /* classified, waiting to be recorded */
	JOB_RECORDING, /* in a record transaction */
};

/* One claimed charge row, from claim to record. */
struct job {
	struct job *prev, *next; /* relay.jobs: every live job */
	struct job *queue_next;  /* relay.answered: waiting to be recorded */
	struct relay *relay;
	struct charge charge;
	char claim_token[40];
	enum job_state state;
	double lease_deadline; /* monotonic: send only before this */
	unsigned heartbeat;    /* generation of the last heartbeat that covered it */
	bool lost;             /* the claim is gone: record nothing */
	bool commit_tried;     /* an earlier record's COMMIT went out unanswered */
	bool recorded;
	char record_note[160];
	struct verdict verdict;
};

/* Counters bumped where the events happen; metrics.c reads them when
 * scraped. */
enum lookup_verdict_kind { /* what record_lookups decided (0006_reconcile.sql) */
	LV_SUCCEEDED, LV_DECLINED, LV_FAILED, LV_WAIT, LV_AGAIN, LV_DEAD, LV_COUNT
};

struct relay_stats {
	unsigned long claimed, sent, recorded, claims_lost, not_sent, expired;
	unsigned long outcomes[OUTCOME_DEAD + 1];          /* direct answers, as classified */
	unsigned long recorded_outcomes[OUTCOME_DEAD + 1]; /* committed: answers and lookups */
	unsigned long lookups[LOOKUP_INCONCLUSIVE + 1];    /* what lookups found */
	unsigned long lookup_verdicts[LV_COUNT];
	unsigned long lookups_lost, emails_lost; /* record refused: the claim was gone */
	unsigned long emails_sent, emails_retried, emails_dead;
	struct prom_histogram claim_seconds, send_seconds, record_seconds;
};

/* The database gauges, counted on a connection of their own (metrics_db.c). */
#define METRICS_DB_ROWS 32
struct metrics_db {
	struct pgc *db;
	ev_timer refresh;
	bool busy, failing;
	double taken_at; /* relay_now() of the last snapshot; 0: none yet */
	unsigned long errors;
	int n;
	struct {
		char kind[16], state[16];
		double count, due_age;
	} rows[METRICS_DB_ROWS];
};

struct email_job;

struct relay {
	struct ev_loop *loop;
	const struct relay_config *cfg;
	int argc; /* main's, parsed again on SIGHUP (reload.c) */
	char **argv;
	const struct gateway_adapter *gateway;
	struct gateway_config gw;
	char key[512]; /* the gateway key (gw.key points here) */
	struct pgc *db;
	/* Claims have a connection of their own: behind the records, emails
	 * and lookups queued on db, a claim waited its turn, and with it every
	 * charge's send (docs/performance.md). Autocommit only: each claim is
	 * durable when its answer arrives. Ready once its actor is set. */
	struct pgc *claim_db;
	bool claim_db_ready;
	struct http_client *http;
	struct schema_check check;
	char owner[96]; /* lease_owner and event actor: "relay host:pid" */
	struct sdnotify notify; /* systemd: READY=1 once the database is usable */
	bool db_ready, stopping;

	/* charges */
	struct job *jobs;
	int inflight;
	bool claiming;
	bool claim_again; /* work was announced while a claim ran: claim once more */
	double claim_sent_at;
	bool sending_stopped; /* the gateway refused our key: until SIGHUP */
	struct job *answered_head, *answered_tail;
	int answered;
	bool recording;
	struct job **batch; /* the jobs of the record transaction on the wire */
	int batch_cap;      /* its room: the largest record_batch since start */
	int batch_len;
	int isolate;             /* after a refused batch: record this many one by one */
	char attempt_error[256]; /* the first error of the attempt on the wire */
	bool attempt_server_error;
	bool draining; /* answers kept through an outage go before lease upkeep */

	/* leases */
	bool heartbeat_busy, janitor_busy;
	unsigned heartbeat_gen; /* of the heartbeat last sent */
	double heartbeat_sent_at;

	/* emails */
	struct email_job *emails_done;  /* sent or failed, waiting to be recorded */
	struct email_job *emails_batch; /* being recorded */
	struct email_job *email_jobs;   /* every live email job */
	int email_inflight;
	bool emails_claiming, emails_recording;
	char mail_domain[128];

	/* lookups */
	struct lookup_job *lookup_jobs;   /* every live lookup */
	struct lookup_job *lookups_done;  /* found, waiting to be recorded */
	struct lookup_job *lookups_batch; /* being recorded */
	int lookup_inflight;
	bool lookups_claiming, lookups_recording;

	ev_timer poll, heartbeat, janitor, stop_deadline, retry_record;
	struct relay_stats stats;
	double record_sent_at; /* relay_now() when the record transaction was queued */

	/* --metrics-listen */
	struct daemon_metrics metrics;
	struct metrics_db mdb;
	int exit_code;
};

double relay_now(struct relay *r); /* monotonic seconds */

/* charges.c */
void charges_claim(struct relay *r);
void job_free(struct job *j);
/* A claimed charge from row `row` of claim_charges' or claim_lookups'
 * answer (the same first ten columns, the claim token last). */
void charge_from_row(const PGresult *res, int row, struct charge *c, char *claim_token,
		     size_t token_len);

/* record.c */
void record_enqueue(struct relay *r, struct job *j);
void record_flush(struct relay *r);

/* lease.c */
void lease_heartbeat(struct relay *r);
void lease_janitor(struct relay *r);

/* emails.c */
void emails_claim(struct relay *r);
void emails_flush(struct relay *r);
void emails_free(struct relay *r);

/* reconcile.c */
void reconcile_claim(struct relay *r);
void reconcile_flush(struct relay *r);
void reconcile_free(struct relay *r);

/* metrics.c: /metrics and /healthz (when --metrics-listen is set) */
void relay_metrics_init(struct relay *r); /* histograms; always */
int relay_metrics_start(struct relay *r, char *why, size_t whylen);
void relay_metrics_stop(struct relay *r);

/* metrics_db.c: the outbox gauges, refreshed every --metrics-db-interval */
int metrics_db_start(struct relay *r);
void metrics_db_stop(struct relay *r);

/* reload.c: SIGHUP: the configuration (what may change at run time) and
 * the gateway key; then claim, for limits that went up. */
void relay_reload(struct relay *r);

/* main.c: finish the stop once nothing is left in flight */
void relay_check_stopped(struct relay *r);

#endif
