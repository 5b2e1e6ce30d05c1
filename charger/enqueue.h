/* enqueue.h: the charger's passes. A pass runs batches of one transaction
 * each (BEGIN; SELECT outbox.enqueue_due(...); COMMIT) until a batch
 * enqueues nothing. */
#ifndef CHARGER_ENQUEUE_H
#define CHARGER_ENQUEUE_H

#include "charger_config.h"
#include "pgconn.h"
#include "schema_check.h"

#include <ev.h>

/* The schema version this charger needs (db/migrations/0004_charger.sql). */
#define CHARGER_SCHEMA_VERSION 4

enum charger_step { STEP_CONNECTING, STEP_IDLE, STEP_BEGIN, STEP_BATCH, STEP_COMMIT, STEP_ROLLBACK };

struct charger {
	struct ev_loop *loop;
	const struct charger_config *cfg;
	struct pgc *db;
	ev_timer next_pass; /* daemon mode */
	ev_timer give_up;   /* --once with --db-wait */
	struct schema_check check;
	enum charger_step step;
	bool stopping;
	int exit_code;
	char actor[96];
	/* the current pass */
	long pass, batch;
	long enqueued, noted;
	long batch_enqueued, batch_noted;
	/* since start, for /metrics */
	struct {
		unsigned long passes, enqueued, unchargeable, batches_failed;
		double last_pass_at; /* unix seconds of the last finished pass; 0: none */
	} stats;
};

int charger_init(struct charger *ch, struct ev_loop *loop, const struct charger_config *cfg);
/* SIGTERM/SIGINT: finish the batch on the wire, then stop. */
void charger_stop(struct charger *ch, const char *why);
void charger_free(struct charger *ch);

#endif
