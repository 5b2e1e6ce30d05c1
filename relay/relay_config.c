/* relay_config.c: the relay's option table and its cross-checks. */
#include "relay_config.h"

#include "email_compose.h"
#include "hostport.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define OFF(f) offsetof(struct relay_config, f)

const char *const relay_gateways[] = {"stripe", "authorizenet", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const other_sections[] = {"charger", NULL};

static const struct cfg_option options[] = {
	{"--db", "db", "RELAY_DB", CFG_STRING, OFF(db), 0, 0, NULL, "", "CONNINFO",
	 "PostgreSQL conninfo or URI; empty: libpq's PG* variables", CFG_SECRET | CFG_RESTART},
	{"--gateway-url", "gateway_url", "RELAY_GATEWAY_URL", CFG_STRING, OFF(gateway_url), 0, 0,
	 NULL, "", "URL", "the gateway's base URL (required); plain http only on loopback",
	 CFG_RESTART},
	{"--gateway", "gateway", "RELAY_GATEWAY", CFG_ENUM, OFF(gateway), 0, 0, relay_gateways,
	 "stripe", "NAME", "gateway adapter: stripe or authorizenet (key LOGINID:TRANSACTIONKEY)", CFG_RESTART},
	{"--gateway-key-file", "gateway_key_file", "RELAY_GATEWAY_KEY_FILE", CFG_STRING,
	 OFF(gateway_key_file), 0, 0, NULL, "", "PATH",
	 "file holding the gateway API key (mode 0600 or stricter); else RELAY_GATEWAY_KEY",
	 CFG_RESTART},
	{"--smtp-url", "smtp_url", "RELAY_SMTP_URL", CFG_STRING, OFF(smtp_url), 0, 0, NULL, "",
	 "URL", "SMTP server for notifications (smtp://host:port); empty: emails wait", 0},
	{"--gateway-ca-file", "gateway_ca_file", "RELAY_GATEWAY_CA_FILE", CFG_STRING,
	 OFF(gateway_ca_file), 0, 0, NULL, "", "PATH",
	 "PEM file of the CA certificates that may sign the gateway's certificate, instead of "
	 "the system's; empty: the system's",
	 CFG_RESTART},
	{"--smtp-ca-file", "smtp_ca_file", "RELAY_SMTP_CA_FILE", CFG_STRING, OFF(smtp_ca_file), 0,
	 0, NULL, "", "PATH",
	 "PEM file of the CA certificates that may sign the SMTP server's certificate, instead of "
	 "the system's; empty: the system's",
	 CFG_RESTART},
	{"--mail-from", "mail_from", "RELAY_MAIL_FROM", CFG_STRING, OFF(mail_from), 0, 0, NULL,
	 "billing@localhost", "ADDR", "sender address; its domain names the Message-IDs", 0},
	{"--max-inflight", "max_inflight", "RELAY_MAX_INFLIGHT", CFG_INT, OFF(max_inflight), 1,
	 10000, NULL, "256", "N", "charges claimed and not yet recorded, at most", 0},
	{"--claim-batch", "claim_batch", "RELAY_CLAIM_BATCH", CFG_INT, OFF(claim_batch), 1, 1000,
	 NULL, "100", "N", "rows claimed per transaction", 0},
	{"--record-batch", "record_batch", "RELAY_RECORD_BATCH", CFG_INT, OFF(record_batch), 1,
	 1000, NULL, "200", "N", "outcomes recorded per transaction", 0},
	{"--http-timeout", "http_timeout", "RELAY_HTTP_TIMEOUT", CFG_SECONDS, OFF(http_timeout),
	 0.1, 300, NULL, "30", "SECONDS", "bound on one gateway request, connect included", CFG_RESTART},
	{"--lease", "lease", "RELAY_LEASE", CFG_SECONDS, OFF(lease), 1, 3600, NULL, "90",
	 "SECONDS", "how long a claim is ours without a heartbeat; longer than --http-timeout",
	 CFG_RESTART},
	{"--settle", "settle", "RELAY_SETTLE", CFG_SECONDS, OFF(settle), 1, 604800, NULL, "900",
	 "SECONDS",
	 "after this long since the send, a lookup that finds nothing proves no charge", CFG_RESTART},
	{"--reconcile-schedule", "reconcile_schedule", "RELAY_RECONCILE_SCHEDULE",
	 CFG_SECONDS_LIST, OFF(reconcile_schedule), 1, 31536000, NULL,
	 "60,300,1800,3600,21600,86400,259200", "S1,S2,...",
	 "waits before each lookup of an unknown row; when it runs out the row is dead", 0},
	{"--invoice-retry-schedule", "invoice_retry_schedule", "RELAY_INVOICE_RETRY_SCHEDULE",
	 CFG_SECONDS_LIST, OFF(invoice_retry_schedule), 1, 31536000, NULL,
	 "86400,259200,604800", "S1,S2,...",
	 "after a decline or failure, the invoice's next attempt waits this long; after the last "
	 "it is failed",
	 0},
	{"--poll-interval", "poll_interval", "RELAY_POLL_INTERVAL", CFG_SECONDS, OFF(poll_interval),
	 0.01, 60, NULL, "1", "SECONDS", "look for work this often even without a NOTIFY", 0},
	{"--email-max-inflight", "email_max_inflight", "RELAY_EMAIL_MAX_INFLIGHT", CFG_INT,
	 OFF(email_max_inflight), 1, 1000, NULL, "64", "N", "emails being sent at once, at most",
	 0},
	{"--lookup-max-inflight", "lookup_max_inflight", "RELAY_LOOKUP_MAX_INFLIGHT", CFG_INT,
	 OFF(lookup_max_inflight), 1, 1000, NULL, "16", "N",
	 "lookups of unknown charges at once, at most", 0},
	{"--email-max-attempts", "email_max_attempts", "RELAY_EMAIL_MAX_ATTEMPTS", CFG_INT,
	 OFF(email_max_attempts), 1, 1000, NULL, "12", "N",
	 "tries per email before it is dead (needs a person)", 0},
	{"--email-retry", "email_retry", "RELAY_EMAIL_RETRY", CFG_SECONDS, OFF(email_retry), 0.01,
	 86400, NULL, "60", "SECONDS", "first wait before re-sending a failed email; doubles each time",
	 0},
	{"--log-level", "log_level", "RELAY_LOG_LEVEL", CFG_ENUM, OFF(log_level), 0, 0, log_levels,
	 "info", "LEVEL", "debug, info, warn or error", 0},
	CFG_OPT_LOG_FORMAT("RELAY_LOG_FORMAT", OFF(log_format)),
	CFG_OPT_METRICS_LISTEN("RELAY_METRICS_LISTEN", OFF(metrics_listen), "9100"),
	{"--metrics-db-interval", "metrics_db_interval", "RELAY_METRICS_DB_INTERVAL", CFG_SECONDS,
	 OFF(metrics_db_interval), 1, 3600, NULL, "15", "SECONDS",
	 "with --metrics-listen: how often the outbox gauges are counted in the database (on a "
	 "connection of their own; each count reads the whole outbox table)",
	 CFG_RESTART},
	{"--config", NULL, "RELAY_CONFIG", CFG_STRING, OFF(config), 0, 0, NULL, NULL, "FILE",
	 "config file of 'key = value' lines (keys as listed here; optional [relay] section)",
	 CFG_CLI_ONLY | CFG_RESTART},
	{"--list-crash-points", NULL, NULL, CFG_BOOL, OFF(list_crash_points), 0, 0, NULL, NULL,
	 NULL, "print the crash points OUTBOX_CRASH_AT=name[:n] accepts, then exit", CFG_CLI_ONLY},
};

const struct cfg_spec relay_cfg_spec = {
	.program = "relay",
	.synopsis =
		"Usage: relay --gateway-url URL [--db CONNINFO] [--gateway-key-file PATH] [OPTION]...\n"
		"\n"
		"Drains the outbox: claims pending charges (committed before any byte is sent),\n"
		"POSTs each at most once on a fresh connection with its idempotency key,\n"
		"records each outcome in one guarded transaction, and sends the notification\n"
		"emails. Ambiguous outcomes become 'unknown' and are never sent again.\n"
		"The gateway key comes from --gateway-key-file or RELAY_GATEWAY_KEY, never argv.\n",
	.epilog = "Signals: SIGTERM/SIGINT stop claiming, finish and record what is in flight\n"
		  "(bounded by --http-timeout), then exit. SIGHUP reloads the config file,\n"
		  "environment and flags: every option not marked 'reload needs a restart' takes\n"
		  "its new value, one bad value keeps them all; then it rereads the key file.\n"
		  "Environment: OUTBOX_CRASH_AT=name[:n] (fault-injection tests); PG* as for libpq.\n"
		  "Exit status: 0 stopped cleanly, 1 runtime failure (schema too old, outcomes left\n"
		  "unrecorded at stop), 2 bad usage or configuration.\n"
		  "Docs: docs/architecture.md, docs/schema.md, docs/operations.md (metrics, alerts).\n",
	.options = options,
	.count = sizeof(options) / sizeof(options[0]),
	.config_flag = "--config",
	.other_sections = other_sections,
};

double relay_lease_margin(const struct relay_config *cfg)
{
	double m = cfg->lease * 0.1;
	return m < 1.0 ? 1.0 : m;
}

static bool loopback(const char *host)
{
	return strcasecmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
	       strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/* scheme must be one of `secure`/`plain`; plain only towards loopback. */
static int check_url(const char *what, const char *url, const char *secure, const char *plain,
		     char *why, size_t whylen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = -1;
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(why, whylen, "%s '%s' is not a URL", what, url);
	} else if (strcmp(scheme, plain) == 0 && !loopback(host)) {
		snprintf(why, whylen, "%s: plain %s:// is refused for %s (not loopback); use %s://",
			 what, plain, host, secure);
	} else if (strcmp(scheme, plain) != 0 && strcmp(scheme, secure) != 0) {
		snprintf(why, whylen, "%s: scheme %s:// is not %s:// or %s://", what, scheme, secure,
			 plain);
	} else {
		rc = 0;
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

/* A CA file given must be a readable regular file, checked at start: libcurl
 * would only fail each request later, with every charge then unknown. */
static int check_ca_file(const char *flag, const char *key, const char *path, char *why,
			 size_t whylen)
{
	if (!path[0])
		return 0;
	struct stat st;
	FILE *f = fopen(path, "r");
	int err = f ? (fstat(fileno(f), &st) != 0 ? errno : S_ISREG(st.st_mode) ? 0 : EISDIR) : errno;
	if (f)
		fclose(f);
	if (err)
		snprintf(why, whylen, "%s (%s): cannot read CA file '%s': %s", flag, key, path,
			 err == EISDIR ? "not a regular file" : strerror(err));
	return err ? -1 : 0;
}

int relay_config_check(const struct relay_config *cfg, char *why, size_t whylen)
{
	double margin = relay_lease_margin(cfg);
	if (!cfg->gateway_url[0]) {
		snprintf(why, whylen, "--gateway-url is required (or gateway_url / RELAY_GATEWAY_URL)");
		return -1;
	}
	if (cfg->gateway_url[strlen(cfg->gateway_url) - 1] == '/') {
		snprintf(why, whylen, "--gateway-url: give the base URL without a trailing '/'");
		return -1;
	}
	if (check_url("--gateway-url", cfg->gateway_url, "https", "http", why, whylen) != 0)
		return -1;
	if (cfg->smtp_url[0] &&
	    check_url("--smtp-url", cfg->smtp_url, "smtps", "smtp", why, whylen) != 0)
		return -1;
	if (check_ca_file("--gateway-ca-file", "gateway_ca_file", cfg->gateway_ca_file, why,
			  whylen) != 0 ||
	    check_ca_file("--smtp-ca-file", "smtp_ca_file", cfg->smtp_ca_file, why, whylen) != 0)
		return -1;
	struct hostport hp;
	if (cfg->metrics_listen[0] &&
	    hostport_parse("--metrics-listen", cfg->metrics_listen, &hp, why, whylen) != 0)
		return -1;
	if (!email_address_ok(cfg->mail_from)) {
		snprintf(why, whylen, "--mail-from '%s' is not a plain address like billing@example.com",
			 cfg->mail_from);
		return -1;
	}
	if (cfg->http_timeout + margin > cfg->lease) {
		snprintf(why, whylen,
			 "--lease %g s must exceed --http-timeout %g s by the margin %g s: a relay "
			 "sends only while its lease holds",
			 cfg->lease, cfg->http_timeout, margin);
		return -1;
	}
	if (cfg->settle <= cfg->lease + cfg->http_timeout + margin) {
		snprintf(why, whylen,
			 "--settle %g s must exceed --lease + --http-timeout + margin (%g s): a lookup "
			 "may prove absence only once no send can still be under way",
			 cfg->settle, cfg->lease + cfg->http_timeout + margin);
		return -1;
	}
	if (cfg->invoice_retry_schedule.v[0] <= cfg->settle) {
		snprintf(why, whylen,
			 "the first --invoice-retry-schedule wait (%g s) must be longer than --settle "
			 "(%g s): a new key must not race the old one's settle window",
			 cfg->invoice_retry_schedule.v[0], cfg->settle);
		return -1;
	}
	return 0;
}
