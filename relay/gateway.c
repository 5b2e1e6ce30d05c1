/* gateway.c: adapter registry and what all adapters share. */
#include "gateway.h"

#include <stdlib.h>
#include <string.h>

extern const struct gateway_adapter gateway_stripe;

static const struct gateway_adapter *const adapters[] = {&gateway_stripe, NULL};

const struct gateway_adapter *gateway_find(const char *name)
{
	for (int i = 0; adapters[i]; i++)
		if (strcmp(adapters[i]->name, name) == 0)
			return adapters[i];
	return NULL;
}

const char *outcome_state(enum outcome o)
{
	switch (o) {
	case OUTCOME_SUCCEEDED:
		return "succeeded";
	case OUTCOME_DECLINED:
		return "declined";
	case OUTCOME_FAILED:
		return "failed";
	case OUTCOME_UNKNOWN:
		return "unknown";
	case OUTCOME_RETRY_LATER:
		return "pending";
	case OUTCOME_DEAD:
		return "dead";
	}
	return "unknown";
}

const char *lookup_found_name(enum lookup_found f)
{
	switch (f) {
	case LOOKUP_SUCCEEDED:
		return "succeeded";
	case LOOKUP_DECLINED:
		return "declined";
	case LOOKUP_ABSENT:
		return "absent";
	default:
		return "inconclusive";
	}
}

void gateway_request_free(struct gateway_request *req)
{
	free(req->body);
	req->body = NULL;
	curl_slist_free_all(req->headers);
	req->headers = NULL;
}

bool gateway_not_sent(const struct gateway_answer *ans)
{
	switch (ans->curl_result) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return true;
	case CURLE_OPERATION_TIMEDOUT:
		return !ans->connected; /* timed out while connecting */
	default:
		return false;
	}
}
