/* anet_lists.c: the three reporting calls Authorize.Net's lookups use:
 * getUnsettledTransactionListRequest and getTransactionListRequest (paged,
 * oldest first, or newest first with sorting.orderDescending) and getSettledBatchListRequest (by settlement date, at most
 * 31 days). Forgotten transactions (fault forget_after) are in none of
 * them. Runs with the lock held. */
#include "anet_sim.h"
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE_MAX 1000
#define SPAN_MAX (31 * 86400)

static void utc(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "2024-05-01T16:00:00Z" (or without the Z, or a date alone) -> unix. */
static bool parse_utc(const char *s, int64_t *out)
{
	struct tm tm = {0};
	const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!end && s)
		end = strptime(s, "%Y-%m-%d", &tm);
	if (!end || (*end && strcmp(end, "Z") != 0))
		return false;
	*out = (int64_t)timegm(&tm);
	return true;
}

static void refuse(struct api_reply *reply, const char *ref, const char *code, const char *text)
{
	cJSON *root = cJSON_CreateObject();
	if (root)
		anet_messages(root, ref, false, code, text);
	anet_reply(reply, root);
}

/* True (and a 500 set) when either could not be made. */
static bool out_of_memory(cJSON *root, cJSON *list, struct api_reply *reply)
{
	if (root && list)
		return false;
	cJSON_Delete(root);
	cJSON_Delete(list);
	reply_json(reply, 500, NULL);
	return true;
}

static cJSON *summary(const struct charge *c)
{
	cJSON *o = cJSON_CreateObject();
	char t[32];
	if (!o)
		return NULL;
	utc(c->created, t, sizeof(t));
	cJSON_AddStringToObject(o, "transId", c->id);
	cJSON_AddStringToObject(o, "submitTimeUTC", t);
	cJSON_AddStringToObject(o, "transactionStatus", c->anet_status);
	if (c->invoice_number)
		cJSON_AddStringToObject(o, "invoiceNumber", c->invoice_number);
	cJSON_AddStringToObject(o, "accountType", "Visa");
	cJSON_AddStringToObject(o, "accountNumber", "XXXX1111");
	cJSON_AddNumberToObject(o, "settleAmount", (double)c->amount / 100.0);
	cJSON_AddStringToObject(o, "marketType", "eCommerce");
	cJSON_AddStringToObject(o, "product", "Card Not Present");
	return o;
}

/* paging {limit 1..1000, offset (page) >= 1}; absent: everything. */
static bool paging(const cJSON *call, size_t *limit, size_t *page)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(call, "paging");
	*limit = 100000;
	*page = 1;
	if (!p)
		return true;
	const cJSON *l = cJSON_GetObjectItemCaseSensitive(p, "limit");
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(p, "offset");
	double lv = cJSON_IsNumber(l) ? l->valuedouble : cJSON_IsString(l) ? atof(l->valuestring) : 0;
	double ov = cJSON_IsNumber(o) ? o->valuedouble : cJSON_IsString(o) ? atof(o->valuestring) : 0;
	if (lv < 1 || lv > PAGE_MAX || ov < 1 || ov > 100000)
		return false;
	*limit = (size_t)lv;
	*page = (size_t)ov;
	return true;
}

/* sorting {orderBy, orderDescending}: true when the newest come first
 * (submitTimeUTC and id order alike here: transactions are kept in the
 * order they were made). */
static bool newest_first(const cJSON *call)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(call, "sorting"), "orderDescending");
	return cJSON_IsTrue(d) || (cJSON_IsString(d) && strcmp(d->valuestring, "true") == 0);
}

/* One page of the transactions in `batch` (0: unsettled), oldest first
 * unless sorting asks for the newest first. */
static void list_page(struct sim *s, const cJSON *call, const char *ref, int64_t batch,
		      struct api_reply *reply)
{
	size_t limit, page;
	if (!paging(call, &limit, &page)) {
		refuse(reply, ref, "E00013", "Paging: limit must be 1 to 1000, offset 1 or more.");
		return;
	}
	bool descending = newest_first(call);
	cJSON *root = cJSON_CreateObject(), *list = cJSON_CreateArray();
	size_t skip = (page - 1) * limit, n = 0, count = s->charges.count;
	for (size_t i = 0; root && list && i < count && n < limit; i++) {
		const struct charge *c = s->charges.items[descending ? count - 1 - i : i];
		if (!c->anet_status || c->forgotten || c->batch != batch)
			continue;
		if (skip > 0) {
			skip--;
			continue;
		}
		cJSON_AddItemToArray(list, summary(c));
		n++;
	}
	if (out_of_memory(root, list, reply))
		return;
	if (n > 0) {
		cJSON_AddItemToObject(root, "transactions", list);
		cJSON_AddNumberToObject(root, "totalNumInResultSet", (double)n);
		anet_messages(root, ref, true, "I00001", "Successful.");
	} else {
		cJSON_Delete(list);
		anet_messages(root, ref, true, "I00004", "No records found.");
	}
	anet_reply(reply, root);
}

void anet_unsettled_list(struct sim *s, const cJSON *call, const char *ref_id,
			 struct api_reply *reply)
{
	list_page(s, call, ref_id, 0, reply);
}

void anet_transaction_list(struct sim *s, const cJSON *call, const char *ref_id,
			   struct api_reply *reply)
{
	const char *id = anet_str(call, "batchId");
	for (size_t i = 0; id && i < s->anet.nbatches; i++) {
		if (strcmp(s->anet.batches[i].id, id) == 0) {
			list_page(s, call, ref_id, strtoll(id, NULL, 10), reply);
			return;
		}
	}
	refuse(reply, ref_id, "E00040", "The record cannot be found (batchId).");
}

void anet_batch_list(struct sim *s, const cJSON *call, const char *ref_id,
		     struct api_reply *reply)
{
	int64_t now = (int64_t)time(NULL), first = now - 86400, last = now;
	const char *f = anet_str(call, "firstSettlementDate"), *l = anet_str(call, "lastSettlementDate");
	if ((f && !parse_utc(f, &first)) || (l && !parse_utc(l, &last)) || last < first ||
	    last - first > SPAN_MAX) {
		refuse(reply, ref_id, "E00013",
		       "firstSettlementDate/lastSettlementDate: dates in order, at most 31 days apart.");
		return;
	}
	cJSON *root = cJSON_CreateObject(), *list = cJSON_CreateArray();
	size_t n = 0;
	for (size_t i = 0; root && list && i < s->anet.nbatches; i++) {
		const struct anet_batch *b = &s->anet.batches[i];
		cJSON *o = b->settled_at >= first && b->settled_at <= last ? cJSON_CreateObject() : NULL;
		char t[32];
		if (!o)
			continue;
		utc(b->settled_at, t, sizeof(t));
		cJSON_AddStringToObject(o, "batchId", b->id);
		cJSON_AddStringToObject(o, "settlementTimeUTC", t);
		cJSON_AddStringToObject(o, "settlementState", "settledSuccessfully");
		cJSON_AddStringToObject(o, "paymentMethod", "creditCard");
		cJSON_AddItemToArray(list, o);
		n++;
	}
	if (out_of_memory(root, list, reply))
		return;
	if (n > 0)
		cJSON_AddItemToObject(root, "batchList", list);
	else
		cJSON_Delete(list);
	anet_messages(root, ref_id, true, n ? "I00001" : "I00004",
		      n ? "Successful." : "No records found.");
	anet_reply(reply, root);
}
