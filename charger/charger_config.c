/* charger_config.c: the charger's option table. */
#include "charger_config.h"

#include "hostport.h"

#include <stddef.h>

#define OFF(f) offsetof(struct charger_config, f)

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const other_sections[] = {"relay", NULL};

static const struct cfg_option options[] = {
	{"--db", "db", "CHARGER_DB", CFG_STRING, OFF(db), 0, 0, NULL, "", "CONNINFO",
	 "PostgreSQL conninfo or URI; empty: libpq's PG* variables", CFG_SECRET | CFG_RESTART},
	{"--once", NULL, NULL, CFG_BOOL, OFF(once), 0, 0, NULL, NULL, NULL,
	 "enqueue everything due now, then exit (for cron or a web trigger)", CFG_CLI_ONLY},
	{"--interval", "interval", "CHARGER_INTERVAL", CFG_SECONDS, OFF(interval), 0.1, 86400,
	 NULL, "60", "SECONDS", "daemon mode: time between passes", 0},
	{"--batch", "batch", "CHARGER_BATCH", CFG_INT, OFF(batch), 1, 10000, NULL, "500", "N",
	 "invoices per transaction", 0},
	{"--db-wait", "db_wait", "CHARGER_DB_WAIT", CFG_SECONDS, OFF(db_wait), 0, 86400, NULL,
	 "300", "SECONDS",
	 "with --once: give up (exit 1) after this long without the database; 0: wait forever",
	 0},
	{"--log-level", "log_level", "CHARGER_LOG_LEVEL", CFG_ENUM, OFF(log_level), 0, 0,
	 log_levels, "info", "LEVEL", "debug, info, warn or error", 0},
	CFG_OPT_LOG_FORMAT("CHARGER_LOG_FORMAT", OFF(log_format)),
	CFG_OPT_METRICS_LISTEN("CHARGER_METRICS_LISTEN", OFF(metrics_listen), "9101"),
	{"--config", NULL, "CHARGER_CONFIG", CFG_STRING, OFF(config), 0, 0, NULL, NULL, "FILE",
	 "config file of 'key = value' lines (keys as listed here; optional [charger] section)",
	 CFG_CLI_ONLY | CFG_RESTART},
	{"--list-crash-points", NULL, NULL, CFG_BOOL, OFF(list_crash_points), 0, 0, NULL, NULL,
	 NULL, "print the crash points OUTBOX_CRASH_AT=name[:n] accepts, then exit", CFG_CLI_ONLY},
};

const struct cfg_spec charger_cfg_spec = {
	.program = "charger",
	.synopsis =
		"Usage: charger [--once] [--db CONNINFO] [--interval SECONDS] [--batch N] [--config FILE]\n"
		"\n"
		"Enqueues due invoices for charging: in one transaction per batch it locks due\n"
		"open invoices (skipping those another charger holds), marks them in_flight and\n"
		"writes their charge and notification rows to the outbox, then notifies the\n"
		"relay. Nothing leaves the database. Any number of chargers may run at once;\n"
		"no invoice is enqueued twice.\n",
	.epilog = "Signals: SIGTERM/SIGINT finish the batch on the wire, then exit. SIGHUP\n"
		  "reloads the config file, environment and flags: every option not marked\n"
		  "'reload needs a restart' takes its new value, one bad value keeps them all.\n"
		  "Environment: OUTBOX_CRASH_AT=name[:n] kills the process at the n-th pass of a\n"
		  "crash point (fault-injection tests); PG* variables as for libpq.\n"
		  "Exit status: 0 done (or stopped by SIGTERM/SIGINT), 1 runtime failure (database\n"
		  "unreachable past --db-wait, schema too old, SQL error), 2 bad usage or configuration.\n"
		  "Docs: docs/architecture.md, docs/schema.md, docs/operations.md (metrics, alerts).\n",
	.options = options,
	.count = sizeof(options) / sizeof(options[0]),
	.config_flag = "--config",
	.other_sections = other_sections,
};

int charger_config_check(const struct charger_config *cfg, char *why, size_t whylen)
{
	struct hostport hp;
	if (cfg->metrics_listen[0] &&
	    hostport_parse("--metrics-listen", cfg->metrics_listen, &hp, why, whylen) != 0)
		return -1;
	return 0;
}
