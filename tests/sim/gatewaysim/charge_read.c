/* charge_read.c: GET /v1/charges (Stripe's list, newest first, cursor
 * pagination) and GET /v1/charges/ID. Forgotten charges (fault
 * forget_after) are absent from both. Runs with the lock held. */
#include "api_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 10
#define LIST_MAX 100

/* A whole decimal number, nothing else. */
static int parse_int(const char *s, long long *out)
{
	char *end;
	if (!s || !*s || !((*s >= '0' && *s <= '9') || *s == '-'))
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (*end || errno == ERANGE)
		return -1;
	*out = v;
	return 0;
}

static bool bound(const struct form *q, const char *name, bool *has, int64_t *value,
		  struct api_reply *reply)
{
	const char *v = form_get(q, name);
	long long n;
	if (!v)
		return true;
	if (parse_int(v, &n) != 0) {
		reply_error(reply, 400, "invalid_request_error", NULL, name,
			    "Invalid integer: %.40s (%s takes unix seconds).", v, name);
		return false;
	}
	*has = true;
	*value = n;
	return true;
}

void charge_list(struct sim *s, const struct api_request *req, struct api_reply *reply)
{
	static const char *const known[] = {"customer", "created", "created[gt]",
					    "created[gte]", "created[lt]", "created[lte]",
					    "limit", "starting_after", "expand[]", NULL};
	const struct form *q = &req->query;
	for (size_t i = 0; i < q->count; i++) {
		bool ok = false;
		for (size_t j = 0; !ok && known[j]; j++)
			ok = strcmp(q->pairs[i].key, known[j]) == 0;
		if (!ok) {
			reply_error(reply, 400, "invalid_request_error", "parameter_unknown",
				    q->pairs[i].key, "Received unknown parameter: %.200s",
				    q->pairs[i].key);
			return;
		}
	}

	struct charge_query cq = {.before = s->charges.count, .limit = LIST_DEFAULT};
	const char *customer = form_get(q, "customer");
	cq.customer = customer && *customer ? customer : NULL;
	bool has_eq = false;
	int64_t eq = 0;
	if (!bound(q, "created", &has_eq, &eq, reply) ||
	    !bound(q, "created[gt]", &cq.has_gt, &cq.gt, reply) ||
	    !bound(q, "created[gte]", &cq.has_gte, &cq.gte, reply) ||
	    !bound(q, "created[lt]", &cq.has_lt, &cq.lt, reply) ||
	    !bound(q, "created[lte]", &cq.has_lte, &cq.lte, reply))
		return;
	if (has_eq) { /* created=T: exactly that second */
		cq.has_gte = cq.has_lte = true;
		cq.gte = cq.lte = eq;
	}
	const char *limit = form_get(q, "limit");
	long long n;
	if (limit) {
		if (parse_int(limit, &n) != 0 || n < 1 || n > LIST_MAX) {
			reply_error(reply, 400, "invalid_request_error", NULL, "limit",
				    "Invalid limit: must be an integer from 1 to %d.", LIST_MAX);
			return;
		}
		cq.limit = (size_t)n;
	}
	const char *after = form_get(q, "starting_after");
	if (after) {
		const struct charge *c = charges_find(&s->charges, after);
		if (!c || c->forgotten) {
			reply_error(reply, 400, "invalid_request_error", "resource_missing",
				    "starting_after", "No such charge: '%.100s'", after);
			return;
		}
		cq.before = c->index;
	}

	const struct charge *found[LIST_MAX];
	bool has_more;
	size_t count = charges_list(&s->charges, &cq, found, &has_more);
	cJSON *root = cJSON_CreateObject();
	cJSON *data = cJSON_CreateArray();
	if (!root || !data) {
		cJSON_Delete(root);
		cJSON_Delete(data);
		reply_json(reply, 500, NULL);
		return;
	}
	cJSON_AddStringToObject(root, "object", "list");
	for (size_t i = 0; i < count; i++)
		cJSON_AddItemToArray(data, charge_api_json(found[i]));
	cJSON_AddItemToObject(root, "data", data);
	cJSON_AddBoolToObject(root, "has_more", has_more);
	cJSON_AddStringToObject(root, "url", "/v1/charges");
	reply_json(reply, 200, root);
}

void charge_retrieve(struct sim *s, const char *id, struct api_reply *reply)
{
	const struct charge *c = charges_find(&s->charges, id);
	if (!c || c->forgotten) {
		reply_error(reply, 404, "invalid_request_error", "resource_missing", "id",
			    "No such charge: '%.100s'", id);
		return;
	}
	reply_json(reply, 200, charge_api_json(c));
}
