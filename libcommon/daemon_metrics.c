/* daemon_metrics.c: the endpoint both daemons serve, and the metrics they
 * share (log lines, database connection, start time). */
#include "daemon_metrics.h"

#include "log.h"

#include <stdio.h>
#include <string.h>

static void write_common(struct prom_buf *b, const struct daemon_metrics *m)
{
	char name[96];

	snprintf(name, sizeof(name), "%s_log_lines_total", m->prefix);
	prom_family(b, name, "counter",
		    "Log lines written, per level (lines below --log-level are not written)");
	for (int i = 0; i < LOG_LEVEL_COUNT; i++)
		prom_count(b, name, (const char *[]){"level", log_level_name((enum log_level)i), NULL},
			   log_count((enum log_level)i));

	snprintf(name, sizeof(name), "%s_db_connected", m->prefix);
	prom_gauge(b, name, "1 while the database connection is up and ready, else 0",
		   pgc_is_ready(m->db) ? 1 : 0);

	unsigned long connects = pgc_connects(m->db);
	snprintf(name, sizeof(name), "%s_db_reconnects_total", m->prefix);
	prom_counter(b, name,
		     "Database connections made after the first one (each follows a lost connection)",
		     connects > 0 ? connects - 1 : 0);

	snprintf(name, sizeof(name), "%s_db_last_answer_age_seconds", m->prefix);
	prom_gauge(b, name,
		   "Seconds since the database last answered a statement; -1 before its first answer",
		   pgc_answer_age(m->db));

	prom_gauge(b, "process_start_time_seconds",
		   "Start time of the process since the Unix epoch, in seconds", m->started);
}

static void serve_metrics(struct daemon_metrics *m, struct httpd_reply *reply)
{
	struct prom_buf b;
	prom_init(&b);
	m->write(m->ud, &b);
	write_common(&b, m);
	size_t len = 0;
	char *text = prom_take(&b, &len);
	if (!text) {
		log_error("metrics: cannot build the text: %s", b.error);
		httpd_text(reply, 500, "cannot build the metrics: %s\n", b.error);
		return;
	}
	reply->status = 200;
	reply->content_type = PROM_CONTENT_TYPE;
	reply->body = text;
	reply->len = len;
}

static void serve_health(struct daemon_metrics *m, struct httpd_reply *reply)
{
	char why[600];
	bool ok = dbhealth_ok(&m->health, why, sizeof(why));
	if (ok && m->ready)
		ok = m->ready(m->ud, why, sizeof(why));
	httpd_text(reply, ok ? 200 : 503, "%s: %s\n", ok ? "ok" : "unavailable", why);
}

static void on_request(void *ud, const char *path, struct httpd_reply *reply)
{
	if (strcmp(path, "/metrics") == 0)
		serve_metrics(ud, reply);
	else if (strcmp(path, "/healthz") == 0)
		serve_health(ud, reply);
}

int daemon_metrics_start(struct daemon_metrics *m, struct ev_loop *loop, const char *listen,
			 char *why, size_t whylen)
{
	struct hostport where;
	m->started = ev_time();
	if (hostport_parse("--metrics-listen", listen, &where, why, whylen) != 0)
		return -1;
	m->httpd = httpd_start(loop, &where, on_request, m, why, whylen);
	if (!m->httpd)
		return -1;
	/* A ping after 5 s of quiet (a charger between passes asks nothing);
	 * unhealthy after 30 s without an answer, longer than the 20 s
	 * statement timeout a slow statement of the relay may use. */
	dbhealth_start(&m->health, loop, m->db, 5, 30);
	log_info("metrics: serving %s/metrics and /healthz", httpd_url(m->httpd));
	return 0;
}

void daemon_metrics_stop(struct daemon_metrics *m)
{
	httpd_free(m->httpd);
	m->httpd = NULL;
	dbhealth_stop(&m->health);
}
