/* dbhealth.c: the database's reachability, kept fresh with rare pings. */
#include "dbhealth.h"

#include "container.h"

#include <stdio.h>

static void on_pong(struct pgc *db, const PGresult *res, const char *error, void *arg)
{
	(void)db;
	(void)res;
	(void)error; /* pgc records the answer's time; a lost connection shows itself */
	struct dbhealth *h = arg;
	h->pinging = false;
}

static void on_ping(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct dbhealth *h = container_of(w, struct dbhealth, ping);
	double age = pgc_answer_age(h->db);
	if (h->pinging || !pgc_is_ready(h->db) || (age >= 0 && age < h->interval))
		return;
	if (pgc_query(h->db, "SELECT 1", 0, NULL, on_pong, h) == 0)
		h->pinging = true;
}

void dbhealth_start(struct dbhealth *h, struct ev_loop *loop, struct pgc *db, double interval,
		    double max_age)
{
	h->loop = loop;
	h->db = db;
	h->interval = interval;
	h->max_age = max_age;
	h->pinging = false;
	ev_timer_init(&h->ping, on_ping, interval, interval);
	ev_timer_start(loop, &h->ping);
}

void dbhealth_stop(struct dbhealth *h)
{
	if (h->loop)
		ev_timer_stop(h->loop, &h->ping);
}

bool dbhealth_ok(const struct dbhealth *h, char *why, size_t whylen)
{
	double age = pgc_answer_age(h->db);
	if (!pgc_is_ready(h->db)) {
		const char *last = pgc_last_failure(h->db);
		snprintf(why, whylen, "database not connected%s%s", last[0] ? ": " : "", last);
		return false;
	}
	if (age < 0 || age > h->max_age) {
		snprintf(why, whylen,
			 "database connected but no answer for more than %g s (a statement may be stuck)",
			 h->max_age);
		return false;
	}
	snprintf(why, whylen, "database answered %.1f s ago", age);
	return true;
}
