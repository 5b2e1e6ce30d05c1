/* anet_lookup.c: the `authorizenet` adapter's lookup of an unknown charge
 * (PROTOCOL.md, reconciliation; docs/authorizenet.md). Authorize.Net has no
 * search by invoice number, so the lookup walks the transaction lists:
 *
 *   "u:P"        getUnsettledTransactionListRequest, page P (from 1)
 *   "b:I"        getSettledBatchListRequest since the row was created: the
 *                I-th settled batch (from 0), or the end of the walk
 *   "t:I:ID:P"   getTransactionListRequest of batch ID (the I-th), page P
 *
 * The position is the `next` string the core hands back as starting_after
 * ("" is "u:1"), and the answer's `lookup_at` says which call a page
 * answers. Unsettled first: a charge that settles meanwhile is then in a
 * batch listed later. The batch list is asked again for each batch (the
 * position has no room for all their ids); settled batches never change,
 * new ones come last. A transaction matches when its invoiceNumber is our
 * outbox row id; it must also match our amount. Only a walk through every
 * page of every list proves absence; anything malformed is inconclusive. */
#include "anet.h"
#include "json_get.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 1000 /* Authorize.Net's largest page */
#define SETTLED_SPAN (30 * 86400) /* the batch list spans at most 31 days */

enum walk_kind { WALK_UNSETTLED, WALK_BATCHES, WALK_BATCH };

struct walk {
	enum walk_kind kind;
	long index, page;
	char batch[21];
};

static bool number(const char *s, long max, long *out, const char **end)
{
	char *e;
	if (*s < '0' || *s > '9')
		return false;
	long n = strtol(s, &e, 10);
	if (n > max)
		return false;
	*out = n;
	*end = e;
	return true;
}

/* Only the positions this file writes; anything else is refused. */
static int walk_parse(const char *at, struct walk *w)
{
	const char *p;
	memset(w, 0, sizeof(*w));
	if (!at || !*at) {
		w->page = 1;
		return 0;
	}
	if (strncmp(at, "u:", 2) == 0 && number(at + 2, 100000, &w->page, &p) && !*p &&
	    w->page >= 1)
		return 0;
	if (strncmp(at, "b:", 2) == 0 && number(at + 2, 100000, &w->index, &p) && !*p) {
		w->kind = WALK_BATCHES;
		return 0;
	}
	if (strncmp(at, "t:", 2) == 0 && number(at + 2, 100000, &w->index, &p) && *p == ':') {
		const char *id = p + 1, *colon = strchr(id, ':');
		size_t n = colon ? (size_t)(colon - id) : 0;
		if (n == 0 || n >= sizeof(w->batch) || strspn(id, "0123456789") != n ||
		    !number(colon + 1, 100000, &w->page, &p) || *p || w->page < 1)
			return -1;
		memcpy(w->batch, id, n);
		w->batch[n] = '\0';
		w->kind = WALK_BATCH;
		return 0;
	}
	return -1;
}

static bool add_paging(cJSON *body, long page)
{
	cJSON *sorting = cJSON_AddObjectToObject(body, "sorting");
	cJSON *paging = cJSON_AddObjectToObject(body, "paging");
	/* oldest first: pages already read stay the same as new ones arrive */
	return sorting && paging && cJSON_AddStringToObject(sorting, "orderBy", "submitTimeUTC") &&
	       cJSON_AddFalseToObject(sorting, "orderDescending") &&
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
	if (walk_parse(q->starting_after, &w) != 0) {
		snprintf(why, whylen, "lookup position '%.60s' is not one this adapter writes",
			 q->starting_after);
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
		int64_t now = (int64_t)time(NULL), last = q->since + SETTLED_SPAN;
		if (last > now)
			last = now;
		if (last < q->since)
			last = q->since;
		char first_s[32], last_s[32];
		utc(q->since, first_s, sizeof(first_s));
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
 * policy either way (docs/authorizenet.md). */
static bool status_refused(const char *s)
{
	static const char *const names[] = {"declined", "voided", "expired", "generalError",
					    "failedReview"};
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

/* One page of transactions: our row's transaction decides, else the walk
 * goes on (next page, or the next list). */
static void parse_transactions(const struct charge *ch, const cJSON *list, const struct walk *w,
			       struct lookup_verdict *v)
{
	char row[24];
	snprintf(row, sizeof(row), "%lld", (long long)ch->id);
	bool refused = false, pending = false, mismatch = false;
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
		const char *invoice = json_string(t, "invoiceNumber");
		if (!invoice || strcmp(invoice, row) != 0)
			continue;
		const char *status = json_string(t, "transactionStatus");
		int64_t amount;
		bool same = anet_amount_cents(json_unique(t, "settleAmount"), &amount) &&
			    amount == ch->amount_cents;
		if (status && status_charged(status)) {
			if (!same) {
				mismatch = true;
				continue;
			}
			snprintf(v->gateway_ref, sizeof(v->gateway_ref), "%s", id);
			lookup_verdict_set(v, LOOKUP_SUCCEEDED, "lookup found transaction %s (%s)", id, status);
			return;
		}
		if (status && status_refused(status)) {
			/* no money moved: the amount does not matter */
			refused = true;
			snprintf(v->gateway_ref, sizeof(v->gateway_ref), "%s", id);
		} else {
			pending = true; /* under review, or a status we do not know */
		}
	}
	if (mismatch)
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE,
		      "lookup found a charged transaction for our row with another amount");
	else if (pending)
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "lookup found our transaction still pending (review)");
	else if (refused)
		lookup_verdict_set(v, LOOKUP_DECLINED, "lookup found transaction %s, not charged", v->gateway_ref);
	else if (count >= PAGE && w->kind == WALK_UNSETTLED)
		snprintf(v->next, sizeof(v->next), "u:%ld", w->page + 1);
	else if (count >= PAGE)
		snprintf(v->next, sizeof(v->next), "t:%ld:%s:%ld", w->index, w->batch, w->page + 1);
	else /* this list is done: the (next) settled batch */
		snprintf(v->next, sizeof(v->next), "b:%ld", w->kind == WALK_UNSETTLED ? 0 : w->index + 1);
	if (v->next[0])
		lookup_verdict_set(v, LOOKUP_NEXT_PAGE, "not on this page");
}

static void parse_batches(const struct charge *ch, const cJSON *list, const struct walk *w,
			  struct lookup_verdict *v)
{
	const cJSON *b = list ? list->child : NULL;
	for (long i = 0; b && i < w->index; i++)
		b = b->next;
	if (!b) {
		lookup_verdict_set(v, LOOKUP_ABSENT,
		      "lookup found no transaction for row %lld: not unsettled, in none of %ld "
		      "settled batch(es)",
		      (long long)ch->id, w->index);
		return;
	}
	const char *id = json_string(b, "batchId");
	if (!id || !*id || strlen(id) > 20 || strspn(id, "0123456789") != strlen(id)) {
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "a settled batch has no usable batchId");
		return;
	}
	snprintf(v->next, sizeof(v->next), "t:%ld:%s:1", w->index, id);
	lookup_verdict_set(v, LOOKUP_NEXT_PAGE, "next settled batch");
}

void anet_parse_lookup(const struct charge *ch, const struct gateway_answer *ans,
		       struct lookup_verdict *v)
{
	memset(v, 0, sizeof(*v));
	struct walk w;
	if (walk_parse(ans->lookup_at, &w) != 0) {
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
		parse_batches(ch, list, &w, v);
	else
		parse_transactions(ch, list, &w, v); /* NULL: an empty list */
	cJSON_Delete(root);
}
