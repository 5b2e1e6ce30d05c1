/* fuzz_gatewaysim.c: the gateway simulator's request handling below
 * libmicrohttpd (tests/sim/gatewaysim: api.c routing and authentication,
 * form.c for Stripe's form bodies and query strings, charge_post.c and
 * charge_read.c, the Authorize.Net JSON calls of anet_*.c, the /_control
 * endpoints). HTTP framing itself is libmicrohttpd's, not ours.
 *
 * Input: up to 8 requests separated by "\n%%\n", each
 *   "METHOD PATH[?QUERY]\n" then "Name: value\n" header lines
 *   (Authorization, Idempotency-Key), a blank line, then the body;
 * run in order against one fresh simulator (so a second request can
 * replay an idempotency key or read a charge the first made), the way
 * http.c hands them to api_handle and api_finish.
 *
 * Properties: every reply but a reset has an HTTP status from 100 to 599, a content
 * type, and no body length without a body; a form body that parses
 * has a canonical form that parses back to itself (form_canonical is what
 * the idempotency layer compares); no crash, no leak (the simulator is
 * freed after each input). */
#include "fuzz.h"

#include "../sim/gatewaysim/api.h"

#include <stdlib.h>
#include <strings.h>

#define MAX_REQUESTS 8

/* Parse, canonicalise, parse again: the same canonical text. */
static void check_canonical(const char *body, size_t len)
{
	struct form a = {0}, b = {0};
	char why[128];
	if (form_parse(&a, body, len, why, sizeof(why)) == 0) {
		char *c1 = form_canonical(&a);
		if (c1) {
			FUZZ_CHECK(form_parse(&b, c1, strlen(c1), why, sizeof(why)) == 0,
				   "a canonical form does not parse");
			char *c2 = form_canonical(&b);
			FUZZ_CHECK(!c2 || strcmp(c1, c2) == 0, "canonical form is not stable");
			free(c2);
		}
		free(c1);
	}
	form_free(&a);
	form_free(&b);
}

/* A header line's value when it is "name: value" (any case), else NULL. */
static char *header_value(char *line, const char *name)
{
	size_t n = strlen(name);
	if (strncasecmp(line, name, n) != 0 || line[n] != ':')
		return NULL;
	char *v = line + n + 1;
	while (*v == ' ')
		v++;
	return v;
}

static void one_request(struct sim *s, const char *text, size_t size)
{
	/* the head (request line and headers) as a C string; the body apart,
	 * NUL-terminated like http.c's, or NULL when empty */
	const char *blank = memmem(text, size, "\n\n", 2);
	size_t head_len = blank ? (size_t)(blank - text) : size;
	size_t body_len = blank ? size - head_len - 2 : 0;
	char *head = strndup(text, head_len);
	char *body = body_len ? malloc(body_len + 1) : NULL;
	if (!head || (body_len && !body)) {
		free(head);
		free(body);
		return;
	}
	if (body) {
		memcpy(body, blank + 2, body_len);
		body[body_len] = '\0';
	}
	char *save, *line = strtok_r(head, "\n", &save);
	char *method = line ? strtok_r(line, " ", &line) : NULL;
	char *target = method ? strtok_r(NULL, " ", &line) : NULL;
	struct api_request req = {.method = method, .path = target, .body = body,
				  .body_len = body_len, .body_too_large = body_len > API_MAX_BODY,
				  .t_start = sim_now()};
	for (char *h; target && (h = strtok_r(NULL, "\n", &save));) {
		char *v;
		if ((v = header_value(h, "Authorization")))
			req.authorization = v;
		else if ((v = header_value(h, "Idempotency-Key")))
			req.idempotency_key = v;
	}
	if (target) {
		char *q = strchr(target, '?'), why[128];
		if (q) {
			*q++ = '\0';
			form_parse(&req.query, q, strlen(q), why, sizeof(why));
		}
		struct api_reply reply;
		api_handle(s, &req, &reply);
		api_finish(s, &req, reply.action == REPLY_RESET ? 0 : reply.status);
		/* a reset (a fault) sends nothing, so it has no status */
		FUZZ_CHECK(reply.action == REPLY_RESET || (reply.status >= 100 && reply.status <= 599),
			   "reply status out of range");
		FUZZ_CHECK(reply.content_type, "reply without a content type");
		FUZZ_CHECK(reply.body || !reply.body_len, "a reply body length without a body");
		api_reply_free(&reply);
		form_free(&req.query);
	}
	if (body)
		check_canonical(body, body_len);
	free(head);
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	if (!quiet) {
		log_init("gatewaysim", LOG_LEVEL_COUNT); /* silence: inputs are not events */
		quiet = true;
	}
	struct fault_rules none = {0};
	struct sim s;
	if (sim_init(&s, 0, 1, "sk_test_", &none) != 0)
		return 0;
	s.anet.login = "cg_login";
	s.anet.key = "cg_transaction_key";
	const char *p = (const char *)data, *end = p + size;
	for (int i = 0; i < MAX_REQUESTS && p < end; i++) {
		const char *sep = memmem(p, (size_t)(end - p), "\n%%\n", 4);
		size_t n = sep ? (size_t)(sep - p) : (size_t)(end - p);
		one_request(&s, p, n);
		p += n + (sep ? 4 : 0);
	}
	sim_free(&s);
	return 0;
}
