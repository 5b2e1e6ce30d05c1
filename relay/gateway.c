/* gateway.c: adapter registry and what all adapters share. */
#include "gateway.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct gateway_adapter gateway_stripe;
extern const struct gateway_adapter gateway_authorizenet;

static const struct gateway_adapter *const adapters[] = {&gateway_stripe, &gateway_authorizenet,
							 NULL};

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
	if (req->body) /* it may hold a secret (authorizenet's transaction key) */
		explicit_bzero(req->body, strlen(req->body));
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

void verdict_set(struct verdict *v, enum outcome o, const char *fmt, ...)
{
	v->outcome = o;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

void lookup_verdict_set(struct lookup_verdict *v, enum lookup_found f, const char *fmt, ...)
{
	v->found = f;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

bool gateway_transport_verdict(const struct gateway_answer *ans, struct verdict *v)
{
	if (gateway_not_sent(ans))
		verdict_set(v, OUTCOME_RETRY_LATER, "not sent: %s", curl_easy_strerror(ans->curl_result));
	else if (ans->body_truncated) /* before the curl error it caused (a write error) */
		verdict_set(v, OUTCOME_UNKNOWN, "answer %ld larger than the relay reads",
			    ans->http_status);
	else if (ans->curl_result != CURLE_OK)
		verdict_set(v, OUTCOME_UNKNOWN, "no complete answer: %s",
			    curl_easy_strerror(ans->curl_result));
	else
		return false;
	return true;
}

bool lookup_transport_verdict(const struct gateway_answer *ans, struct lookup_verdict *v)
{
	if (ans->curl_result != CURLE_OK || ans->body_truncated)
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "lookup failed: %s",
				   ans->body_truncated ? "answer too large"
						       : curl_easy_strerror(ans->curl_result));
	else if (ans->http_status != 200)
		lookup_verdict_set(v, LOOKUP_INCONCLUSIVE, "lookup answered HTTP %ld", ans->http_status);
	else
		return false;
	return true;
}
