/* anet_lookup.c: the `authorizenet` adapter's lookup of an unknown charge
 * (PROTOCOL.md, reconciliation; docs/authorizenet.md). Authorize.Net has no
 * search by invoice number, so the lookup walks the transaction lists:
 *
 *   "u:P"          getUnsettledTransactionListRequest, page P (from 1)
 *   "b:W:I"        getSettledBatchListRequest of settlement window W (from
 *                  0; windows of 30 days from the row's creation up to now):
 *                  its I-th settled batch (from 0), or the next window, or
 *                  the end of the walk
 *   "t:W:I:ID:P"   getTransactionListRequest of batch ID (the I-th of
 *                  window W), page P
 *   any of them + "~TRANSID": a transaction of ours that was not charged
 *                  (declined, voided, ...) was seen earlier in the walk
 *
 * The position is the `next` string the core hands back as starting_after
 * ("" is "u:1"), and the answer's `lookup_at` (and `lookup_since`) say which
 * call a page answers. Unsettled first: a charge that settles meanwhile is
 * then in a batch listed later. The batch list is asked again for each batch
 * (the position has no room for all their ids); settled batches never
 * change, new ones come last. A transaction matches when its invoiceNumber
 * is our outbox row id; it must also match our amount. A charged match
 * decides at once; a not-charged one only at the end of the walk (a charged
 * one may follow). Only a walk through every page of every list proves
 * absence; anything malformed or unclear is inconclusive. */
#include "anet.h"
#include "json_get.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 1000 /* Authorize.Net's largest page */
/* getSettledBatchListRequest spans at most 31 days: windows of 30, each
 * after the first reaching back OVERLAP into the one before, so a batch the
 * gateway (its clock up to LOOKUP_CLOCK_SKEW behind ours) settles just
 * before a window's end after the walk has left that window is in the next
 * one. */
#define SETTLED_SPAN (30 * 86400)
#define OVERLAP (2 * LOOKUP_CLOCK_SKEW)
#define POS_MAX 100000 /* pages, windows, batch indexes in a position */

enum walk_kind { WALK_UNSETTLED, WALK_BATCHES, WALK_BATCH };

struct walk {
	enum walk_kind kind;
	long long window, index, page;
	char batch[21];
	char refused[21]; /* "~TRANSID": a not-charged match seen earlier */
};

static bool number(const char *s, long long *out, const char **end)
{
	char *e;
	if (*s < '0' || *s > '9')
		return false;
	long long n = strtoll(s, &e, 10);
	if (n > POS_MAX)
		return false;
	*out = n;
	*end = e;
	return true;
}

/* Window W of a row created at `since`: from since (W = 0) or OVERLAP
 * before since + W * 30 days, to 30 days after since + W * 30 days or
 * now + the clock skew, whichever is sooner. */
static int64_t window_first(int64_t since, long long w)
{
	return since + (int64_t)w * SETTLED_SPAN - (w > 0 ? OVERLAP : 0);
}

static int64_t window_end(int64_t since, long long w) { return since + (int64_t)(w + 1) * SETTLED_SPAN; }

/* Only the positions this file writes; anything else is refused. A window
 * must begin before now (+ skew): the walk never writes a later one. */
static int walk_parse(const char *at, int64_t since, struct walk *w)
{
	const char *p, *tilde = at ? strchr(at, '~') : NULL;
	char base[128];
	memset(w, 0, sizeof(*w));
	if (!at)
		return -1; /* which call is this? */
	size_t n = tilde ? (size_t)(tilde - at) : strlen(at);
	if (n >= sizeof(base) || (tilde && (n == 0 || !anet_trans_id(tilde + 1, sizeof(w->refused)))))
		return -1;
	memcpy(base, at, n);
	base[n] = '\0';
	if (tilde)
		memcpy(w->refused, tilde + 1, strlen(tilde + 1) + 1);
	if (!*base) {
		w->page = 1;
		return 0;
	}
	if (strncmp(base, "u:", 2) == 0)
		return number(base + 2, &w->page, &p) && !*p && w->page >= 1 ? 0 : -1;
	if (strncmp(base, "b:", 2) == 0 || strncmp(base, "t:", 2) == 0) {
		w->kind = base[0] == 'b' ? WALK_BATCHES : WALK_BATCH;
		if (!number(base + 2, &w->window, &p) || *p != ':' || !number(p + 1, &w->index, &p) ||
		    window_first(since, w->window) > (int64_t)time(NULL) + LOOKUP_CLOCK_SKEW)
			return -1;
		if (w->kind == WALK_BATCHES)
			return *p ? -1 : 0;
		const char *id = p + 1, *colon = *p == ':' ? strchr(id, ':') : NULL;
		n = colon ? (size_t)(colon - id) : 0;
		if (n == 0 || n >= sizeof(w->batch) || strspn(id, "0123456789") != n ||
		    !number(colon + 1, &w->page, &p) || *p || w->page < 1)
			return -1;
		memcpy(w->batch, id, n);
		w->batch[n] = '\0';
		return 0;
	}
	return -1;
}

/* The position of w, as walk_parse reads it. */
static void walk_format(const struct walk *w, char *buf, size_t len)
{
	int n;
	if (w->kind == WALK_UNSETTLED)
		n = snprintf(buf, len, "u:%lld", w->page);
	else if (w->kind == WALK_BATCHES)
		n = snprintf(buf, len, "b:%lld:%lld", w->window, w->index);
	else
		n = snprintf(buf, len, "t:%lld:%lld:%s:%lld", w->window, w->index, w->batch, w->page);
	if (w->refused[0] && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "~%s", w->refused);
}

static bool add_paging(cJSON *body, long long page)
{
	cJSON *sorting = cJSON_AddObjectToObject(body, "sorting");
	cJSON *paging = cJSON_AddObjectToObject(body, "paging");
	/* Newest first. The unsettled list changes under the walk: new
	 * transactions arrive at the newest end, and settlement takes the
	 * oldest away. Oldest first, a settlement between two pages would
	 * shift every later transaction forward by the number removed, and the
	 * next page would start past some of them: ours could be skipped while
	 * still unsettled, and the walk end absent while it is charged. Newest
	 * first, removals at the oldest end leave the pages ahead of the walk
	 * where they were (what left is in a batch listed later) and arrivals
	 * push them back, so a page can only repeat a transaction, never skip
	 * one. A settled batch does not change; the same order serves. */
	return sorting && paging && cJSON_AddStringToObject(sorting, "orderBy", "submitTimeUTC") &&
	       cJSON_AddTrueToObject(sorting, "orderDescending") &&
	       cJSON_AddNumberToObject(paging, "limit", PAGE) &&
	       cJSON_AddNumberToObject(paging, "offset", (double)page);
}

static void utc(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int anet_build_lookup(const struct gateway_config *gw, const struct lookup_query *q,
		      struct gateway_request *req, char *why, size_t whylen)
{
	struct walk w;
	memset(req, 0, sizeof(*req));
	if (walk_parse(q->starting_after, q->since, &w) != 0) {
		snprintf(why, whylen, "lookup position '%.60s' is not one this adapter writes",
			 q->starting_after ? q->starting_after : "(none)");
		return -1;
	}
	char row[24];
	snprintf(row, sizeof(row), "%lld", (long long)q->charge->id);
	cJSON *body = cJSON_CreateObject();
	bool ok = body != NULL;
	const char *op;
	if (w.kind == WALK_UNSETTLED) {
		op = "getUnsettledTransactionListRequest";
		ok = ok && add_paging(body, w.page);
	} else if (w.kind == WALK_BATCH) {
		op = "getTransactionListRequest";
		ok = ok && cJSON_AddStringToObject(body, "batchId", w.batch) && add_paging(body, w.page);
	} else {
		op = "getSettledBatchListRequest";
		/* up to now and the clock skew: a gateway clock ahead of ours
		 * stamps a batch settled now a little later */
		int64_t first = window_first(q->since, w.window), last = window_end(q->since, w.window),
			now = (int64_t)time(NULL) + LOOKUP_CLOCK_SKEW;
		if (last > now)
			last = now;
		if (last < first) /* walk_parse: first <= now */
			last = first;
		char first_s[32], last_s[32];
		utc(first, first_s, sizeof(first_s));
		utc(last, last_s, sizeof(last_s));
		ok = ok && cJSON_AddFalseToObject(body, "includeStatistics") &&
		     cJSON_AddStringToObject(body, "firstSettlementDate", first_s) &&
		     cJSON_AddStringToObject(body, "lastSettlementDate", last_s);
	}
	if (!ok) {
		cJSON_Delete(body);
		snprintf(why, whylen, "out of memory building the lookup");
		return -1;
	}
	return anet_request(gw, op, row, body, req, why, whylen);
}

/* Money moved (or will, with the batch). */
static bool status_charged(const char *s)
{
	return strcmp(s, "settledSuccessfully") == 0 || strcmp(s, "capturedPendingSettlement") == 0;
}

/* Money never moved and never will for this transaction. Recorded as
 * declined (the lookup has no "failed"): the invoice goes back to its retry
 * policy either way (docs/authorizenet.md). Not generalError: Authorize.Net
 * could not say what happened to it, so it is inconclusive like any status
 * we do not know. */
static bool status_refused(const char *s)
{
	static const char *const names[] = {"declined", "voided", "expired", "failedReview"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0)
			return true;
	return false;
}

/* A list's array member: false when malformed. An Ok answer without it
 * is an empty list only when it says so (I00004, no records found). */
static bool list_of(const cJSON *root, const char *name, const struct anet_messages *m,
		    const cJSON **out)
{
	const cJSON *list = json_unique(root, name);
	*out = NULL;
	if (!list)
		return strcmp(m->code, "I00004") == 0;
	if (!cJSON_IsArray(list))
		return false;
	*out = list;
	return true;
}

/* What one listed transaction says of our row: not ours, charged (decides),
 * not charged (decides at the end of the walk), or a doubt (the page is
 * inconclusive; a charged match on the same page still decides). */
enum match { NOT_OURS, CHARGED, REFUSED, DOUBT };

static enum match match_of(const struct charge *ch, const char *row, const cJSON *t,
			   const char **doubt)
{
	const char *invoice, *status;
	enum json_member m = json_member_string(t, "invoiceNumber", &invoice);
	if (m == JSON_MISSING || (m == JSON_FOUND && strcmp(invoice, row) != 0))
		return NOT_OURS;
	if (m != JSON_FOUND) { /* a duplicate, a number (77?), null: maybe ours */
		*doubt = "a listed transaction's invoiceNumber is not one string: it may be ours";
		return DOUBT;
	}
	if (json_member_string(t, "transactionStatus", &status) != JSON_FOUND) {
		*doubt = "our transaction's transactionStatus is not one string";
		return DOUBT;
	}
	int64_t amount;
	bool same = anet_amount_cents(json_unique(t, "settleAmount"), &amount) &&
		    amount == ch->amount_cents;
	bool charged = status_charged(status), refused = status_refused(status);
	if ((charged || refused) && !same) {
		*doubt = charged ? "lookup found a charged transaction for our row with another amount"
				 : "lookup found a not-charged transaction for our row with another amount";
		return DOUBT;
	}
	if (charged || refused)
		return charged ? CHARGED : REFUSED;
	*doubt = "lookup found our transaction still pending (review) or in a status we do not know";
	return DOUBT;
}

/* One page of transactions: a charged transaction of ours decides; a doubt
 * makes the page inconclusive; else the walk goes on (next page, or the
 * next list), remembering a not-charged one of ours. */
static void parse_transactions(const struct charge *ch, const cJSON *list, const struct walk *w,
			       struct lookup_verdict *v)
{
	char row[24];
	snprintf(row, sizeof(row), "%lld", (long long)ch->id);
	struct walk next = *w;
	const char *doubt = NULL;
	int count = 0;
	const cJSON *t;
	cJSON_ArrayForEach(t, list)
	{
		count++;
		const char *id = json_string(t, "transId");
		if (!anet_trans_id(id, sizeof(v->gateway_ref))) {
			lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "a listed transaction has no usable transId");
			return;
		}
		switch (match_of(ch, row, t, &doubt)) {
		case CHARGED:
			snprintf(v->gateway_ref, sizeof(v->gateway_ref), "%s", id);
			lookup_verdict_set(v, LOOKUP_SUCCEEDED, "lookup found transaction %s (%s)", id,
					   json_string(t, "transactionStatus"));
			return;
		case REFUSED: /* the first one found; a charged one may still follow */
			if (!next.refused[0])
				snprintf(next.refused, sizeof(next.refused), "%s", id);
			break;
		case NOT_OURS:
		case DOUBT:
			break;
		}
	}
	if (doubt) {
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "%s", doubt);
		return;
	}
	if (count >= PAGE) { /* a full page: another may follow */
		next.page++;
	} else if (w->kind == WALK_UNSETTLED) { /* done: the first settlement window */
		next.kind = WALK_BATCHES;
		next.window = next.index = 0;
	} else { /* this batch is done: the window's next one */
		next.kind = WALK_BATCHES;
		next.index++;
	}
	walk_format(&next, v->next, sizeof(v->next));
	lookup_verdict_set(v, LOOKUP_NEXT_PAGE, "not on this page");
}

static void parse_batches(const struct charge *ch, const cJSON *list, const struct walk *w,
			  int64_t since, struct lookup_verdict *v)
{
	const cJSON *b = list ? list->child : NULL;
	for (long long i = 0; b && i < w->index; i++)
		b = b->next;
	struct walk next = *w;
	if (!b && window_end(since, w->window) < (int64_t)time(NULL) + LOOKUP_CLOCK_SKEW) {
		/* this window is done, but it ends before now: the next one */
		next.window++;
		next.index = 0;
		walk_format(&next, v->next, sizeof(v->next));
		lookup_verdict_set(v, LOOKUP_NEXT_PAGE, "next settlement window");
	} else if (!b && w->refused[0]) {
		snprintf(v->gateway_ref, sizeof(v->gateway_ref), "%s", w->refused);
		lookup_verdict_set(v, LOOKUP_DECLINED,
				   "lookup found transaction %s, not charged, and no charged one", w->refused);
	} else if (!b) {
		char first[32];
		utc(since, first, sizeof(first));
		lookup_verdict_set(v, LOOKUP_ABSENT,
				   "lookup found no transaction for row %lld: not unsettled, in no batch "
				   "settled since %s",
				   (long long)ch->id, first);
	} else {
		const char *id = json_string(b, "batchId");
		if (!id || !*id || strlen(id) > 20 || strspn(id, "0123456789") != strlen(id)) {
			lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "a settled batch has no usable batchId");
			return;
		}
		next.kind = WALK_BATCH;
		snprintf(next.batch, sizeof(next.batch), "%s", id);
		next.page = 1;
		walk_format(&next, v->next, sizeof(v->next));
		lookup_verdict_set(v, LOOKUP_NEXT_PAGE, "next settled batch");
	}
}

void anet_parse_lookup(const struct charge *ch, const struct gateway_answer *ans,
		       struct lookup_verdict *v)
{
	memset(v, 0, sizeof(*v));
	struct walk w;
	if (walk_parse(ans->lookup_at, ans->lookup_since, &w) != 0) {
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "lookup position is not one this adapter writes");
		return;
	}
	if (lookup_transport_verdict(ans, v))
		return;
	cJSON *root = anet_parse(ans->body, ans->body_len);
	struct anet_messages m;
	const char *ref = root ? json_string(root, "refId") : NULL;
	char row[24];
	snprintf(row, sizeof(row), "%lld", (long long)ch->id);
	const cJSON *list;
	if (!root || !anet_messages(root, &m))
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "lookup answer is not a readable Authorize.Net answer");
	else if (!m.ok)
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "lookup refused: %s: %s", m.code, m.text);
	else if (!ref || strcmp(ref, row) != 0)
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "lookup answer for refId %s, not for our row",
		      ref ? ref : "(none)");
	else if (!list_of(root, w.kind == WALK_BATCHES ? "batchList" : "transactions", &m, &list))
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "lookup answer's list is malformed");
	else if (w.kind == WALK_BATCHES)
		parse_batches(ch, list, &w, ans->lookup_since, v);
	else
		parse_transactions(ch, list, &w, v); /* NULL: an empty list */
	cJSON_Delete(root);
}
