/* test_hostile_bodies.c: hostile gateway answers (issue 8, "bad inputs").
 * Each case takes a well-formed answer that classifies succeeded or
 * declined, changes one thing in it (a repeated or case-variant key, an
 * amount that is a float, a string, negative or beyond 64 bits, 10,000
 * levels of nesting, a cut, a NUL, bytes that are not UTF-8, an HTML page),
 * and checks that both adapters then say `unknown`: the rule of
 * docs/architecture.md, "Reading gateway answers". The untouched answers
 * are checked too, so a case fails only because of its one change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct gateway_adapter *adapter;
static struct charge ch;

/* Row 77 of invoice 12, 19.99 usd. */
static void row(const char *gateway)
{
	adapter = gateway_find(gateway);
	memset(&ch, 0, sizeof(ch));
	ch.id = 77;
	ch.invoice_id = 12;
	ch.amount_cents = 1999;
	snprintf(ch.currency, sizeof(ch.currency), "usd");
	snprintf(ch.idempotency_key, sizeof(ch.idempotency_key), "cg_12_abc");
	snprintf(ch.customer, sizeof(ch.customer), "900100");
	snprintf(ch.source, sizeof(ch.source), "800200");
}

static int stripe_row(void **state)
{
	(void)state;
	row("stripe");
	return 0;
}

static int anet_row(void **state)
{
	(void)state;
	row("authorizenet");
	return 0;
}

static enum outcome classify(long status, const char *body, size_t len)
{
	struct gateway_answer a = {.curl_result = CURLE_OK, .connected = true, .http_status = status,
				   .body = body, .body_len = len};
	struct verdict v;
	adapter->classify_charge(&ch, &a, &v);
	return v.outcome;
}

/* A copy of body with its first `from` replaced by to[0..tolen) (which may
 * hold NULs); *len is the result's length. */
static char *replace(const char *body, const char *from, const char *to, size_t tolen,
		     size_t *len)
{
	const char *at = strstr(body, from);
	if (!at)
		fail_msg("'%s' is not in the base answer", from);
	size_t head = (size_t)(at - body), tail = strlen(at + strlen(from));
	*len = head + tolen + tail;
	char *out = malloc(*len + 1);
	assert_non_null(out);
	memcpy(out, body, head);
	memcpy(out + head, to, tolen);
	memcpy(out + head + tolen, at + strlen(from), tail);
	out[*len] = '\0';
	return out;
}

/* One change: `from` becomes `to`; tolen 0 means strlen(to) (a NUL is
 * written as a string literal and its explicit length). */
struct change {
	const char *why, *from, *to;
	size_t tolen;
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void each_change_is_unknown(long status, const char *base, enum outcome base_is,
				   const struct change *c, size_t n)
{
	assert_int_equal(classify(status, base, strlen(base)), base_is);
	size_t wrong = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len;
		char *body = replace(base, c[i].from, c[i].to, c[i].tolen ? c[i].tolen : strlen(c[i].to),
				     &len);
		enum outcome o = classify(status, body, len);
		free(body);
		if (o != OUTCOME_UNKNOWN) {
			print_error("%s: %s answer %ld with %s classified %s, expected unknown\n",
				    adapter->name, outcome_state(base_is), status, c[i].why,
				    outcome_state(o));
			wrong++;
		}
	}
	if (wrong)
		fail_msg("%zu of %zu changed answers were not unknown", wrong, n);
}

/* Every proper prefix (a body cut anywhere), the empty body included. */
static void every_cut_is_unknown(long status, const char *base)
{
	size_t len = strlen(base);
	for (size_t cut = 0; cut < len; cut++) {
		char *body = strndup(base, cut); /* exactly cut bytes, no terminator beyond */
		enum outcome o = classify(status, body, cut);
		free(body);
		if (o != OUTCOME_UNKNOWN)
			fail_msg("%s: answer cut after %zu of %zu bytes classified %s", adapter->name, cut,
				 len, outcome_state(o));
	}
	assert_int_equal(classify(status, NULL, 0), OUTCOME_UNKNOWN);
}

/* 10,000 levels of objects or arrays, inside an otherwise good answer. */
static void deep_nesting_is_unknown(long status, const char *base, const char *before)
{
	const size_t depth = 10000;
	const char *open[] = {"{\"a\":", "["}, *close[] = {"}", "]"};
	for (size_t k = 0; k < 2; k++) {
		size_t lo = strlen(open[k]), cap = strlen(before) + depth * (lo + 1) + 16;
		char *deep = malloc(cap), *p = deep;
		assert_non_null(deep);
		p += sprintf(p, "\"deep\":");
		for (size_t i = 0; i < depth; i++)
		{
			memcpy(p, open[k], lo);
			p += lo;
		}
		p += sprintf(p, "1");
		for (size_t i = 0; i < depth; i++)
			*p++ = close[k][0];
		p += sprintf(p, ",%s", before);
		size_t len;
		char *body = replace(base, before, deep, (size_t)(p - deep), &len);
		enum outcome o = classify(status, body, len);
		free(body);
		free(deep);
		if (o != OUTCOME_UNKNOWN)
			fail_msg("%s: %zu levels of %s classified %s", adapter->name, depth, open[k],
				 outcome_state(o));
	}
}

/* Changes both adapters' answers get, around one string member `key` whose
 * value is `value` (given as "\"key\":\"value\""). */
#define STRING_CHANGES(kv, key, value)                                                            \
	{"a NUL inside the string", kv, "\"" key "\":\"" value "\0x\"", sizeof("\"" key "\":\"" value "\0x\"") - 1}, \
	{"a \\u0000 escape inside the string", kv, "\"" key "\":\"" value "\\u0000x\"", 0},        \
	{"a lone surrogate escape", kv, "\"" key "\":\"" value "\\ud800\"", 0},                    \
	{"a byte that is never UTF-8 (0xff)", kv, "\"" key "\":\"" value "\xff\"", 0},             \
	{"a cut-off UTF-8 sequence", kv, "\"" key "\":\"" value "\xc3\"", 0},                      \
	{"an overlong UTF-8 sequence", kv, "\"" key "\":\"" value "\xc0\xaf\"", 0},                \
	{"a UTF-8-encoded surrogate", kv, "\"" key "\":\"" value "\xed\xa0\x80\"", 0},             \
	{"the key twice, the same value", kv, kv "," kv, 0}

/* ---- stripe ---------------------------------------------------------------- */

#define STRIPE_OK                                                                             \
	"{\"id\":\"ch_1\",\"object\":\"charge\",\"status\":\"succeeded\",\"paid\":true,"          \
	"\"amount\":1999,\"currency\":\"usd\",\"description\":\"Invoice 12\","                  \
	"\"metadata\":{\"outbox_id\":\"77\",\"invoice_id\":\"12\"}}"
#define STRIPE_DECLINED                                                                        \
	"{\"error\":{\"type\":\"card_error\",\"code\":\"card_declined\",\"decline_code\":"          \
	"\"insufficient_funds\",\"message\":\"Your card has insufficient funds.\",\"charge\":"    \
	"\"ch_d\"}}"

static void stripe_success_changed_is_unknown(void **state)
{
	(void)state;
	static const struct change c[] = {
		STRING_CHANGES("\"status\":\"succeeded\"", "status", "succeeded"),
		STRING_CHANGES("\"outbox_id\":\"77\"", "outbox_id", "77"),
		{"a NUL after the object", "\"12\"}}", "\"12\"}}\0", 7},
		{"a NUL before the object", "{\"id\"", "\0{\"id\"", 6},
		{"invalid UTF-8 in a member nobody reads", "\"Invoice 12\"", "\"Invoice \xff\xfe\"", 0},
		{"status repeated with another value", "\"status\":\"succeeded\"",
		 "\"status\":\"succeeded\",\"status\":\"failed\"", 0},
		{"status again as Status", "\"status\":\"succeeded\"",
		 "\"status\":\"succeeded\",\"Status\":\"failed\"", 0},
		{"paid again as PAID", "\"paid\":true", "\"paid\":true,\"PAID\":false", 0},
		{"amount again as Amount", "\"amount\":1999", "\"amount\":1999,\"Amount\":1", 0},
		{"id again as Id", "\"id\":\"ch_1\"", "\"id\":\"ch_1\",\"Id\":\"ch_2\"", 0},
		{"metadata again as Metadata", "\"metadata\":{",
		 "\"Metadata\":{\"outbox_id\":\"78\"},\"metadata\":{", 0},
		{"outbox_id again as Outbox_Id", "\"outbox_id\":\"77\"",
		 "\"outbox_id\":\"77\",\"Outbox_Id\":\"78\"", 0},
		{"the amount as a float with cents", "1999", "1999.5", 0},
		{"the amount as a float in units", "1999", "19.99", 0},
		{"the amount as a string", "1999", "\"1999\"", 0},
		{"the amount negative", "1999", "-1999", 0},
		{"the amount 2^63", "1999", "9223372036854775808", 0},
		{"the amount 2^64 + 1999", "1999", "18446744073709553615", 0},
		{"the amount of 30 digits", "1999", "199900000000000000000000000000", 0},
		{"the amount 1e400 (infinite as a double)", "1999", "1e400", 0},
		{"the amount null", "1999", "null", 0},
		{"the amount an object", "1999", "{\"value\":1999}", 0},
		{"an HTML page", STRIPE_OK, "<!DOCTYPE html><html><body>Payment OK</body></html>", 0},
	};
	each_change_is_unknown(200, STRIPE_OK, OUTCOME_SUCCEEDED, c, COUNT(c));
}

static void stripe_decline_changed_is_unknown(void **state)
{
	(void)state;
	static const struct change c[] = {
		STRING_CHANGES("\"type\":\"card_error\"", "type", "card_error"),
		{"invalid UTF-8 in the message", "funds.", "funds.\xff", 0},
		{"type again as Type", "\"type\":\"card_error\"",
		 "\"type\":\"card_error\",\"Type\":\"api_error\"", 0},
		{"error again as Error", "{\"error\":{",
		 "{\"Error\":{\"type\":\"api_error\"},\"error\":{", 0},
		{"error twice", "{\"error\":{", "{\"error\":{\"type\":\"api_error\"},\"error\":{", 0},
		{"an HTML page", STRIPE_DECLINED, "<html><body>Your card was declined</body></html>", 0},
	};
	each_change_is_unknown(402, STRIPE_DECLINED, OUTCOME_DECLINED, c, COUNT(c));
}

static void stripe_cut_nested_is_unknown(void **state)
{
	(void)state;
	every_cut_is_unknown(200, STRIPE_OK);
	every_cut_is_unknown(402, STRIPE_DECLINED);
	deep_nesting_is_unknown(200, STRIPE_OK, "\"metadata\":");
	deep_nesting_is_unknown(402, STRIPE_DECLINED, "\"type\":");
}

/* ---- authorizenet ------------------------------------------------------------ */

#define ANET_MSG_OK                                                                           \
	"\"messages\":{\"resultCode\":\"Ok\",\"message\":[{\"code\":\"I00001\",\"text\":"          \
	"\"Successful.\"}]}"
#define ANET_MSG_ERR                                                                          \
	"\"messages\":{\"resultCode\":\"Error\",\"message\":[{\"code\":\"E00027\",\"text\":"       \
	"\"The transaction was unsuccessful.\"}]}"
#define ANET_OK                                                                               \
	"\xEF\xBB\xBF{\"transactionResponse\":{\"responseCode\":\"1\",\"authCode\":\"A1B2C3\","   \
	"\"transId\":\"60012345678\",\"messages\":[{\"code\":\"1\",\"description\":\"This "      \
	"transaction has been approved.\"}]},\"refId\":\"77\"," ANET_MSG_OK "}"
#define ANET_DECLINED                                                                         \
	"\xEF\xBB\xBF{\"transactionResponse\":{\"responseCode\":\"2\",\"authCode\":\"000000\","   \
	"\"transId\":\"60099\",\"errors\":[{\"errorCode\":\"2\",\"errorText\":\"This "          \
	"transaction has been declined.\"}]},\"refId\":\"77\"," ANET_MSG_ERR "}"

static void anet_success_changed_is_unknown(void **state)
{
	(void)state;
	static const struct change c[] = {
		STRING_CHANGES("\"responseCode\":\"1\"", "responseCode", "1"),
		STRING_CHANGES("\"refId\":\"77\"", "refId", "77"),
		STRING_CHANGES("\"transId\":\"60012345678\"", "transId", "60012345678"),
		{"invalid UTF-8 in a member nobody reads", "approved.", "approved.\xff", 0},
		{"responseCode again as ResponseCode", "\"responseCode\":\"1\"",
		 "\"responseCode\":\"1\",\"ResponseCode\":\"2\"", 0},
		{"resultCode again as resultcode", "\"resultCode\":\"Ok\"",
		 "\"resultCode\":\"Ok\",\"resultcode\":\"Error\"", 0},
		{"refId again as RefID", "\"refId\":\"77\"", "\"refId\":\"77\",\"RefID\":\"78\"", 0},
		{"transactionResponse again in capitals", "{\"transactionResponse\":",
		 "{\"TRANSACTIONRESPONSE\":{\"responseCode\":\"2\"},\"transactionResponse\":", 0},
		{"an HTML page", ANET_OK, "<html><body>Approved</body></html>", 0},
	};
	each_change_is_unknown(200, ANET_OK, OUTCOME_SUCCEEDED, c, COUNT(c));
}

static void anet_decline_changed_is_unknown(void **state)
{
	(void)state;
	static const struct change c[] = {
		STRING_CHANGES("\"errorCode\":\"2\"", "errorCode", "2"),
		{"errors again as Errors", "\"errors\":[",
		 "\"Errors\":[{\"errorCode\":\"11\"}],\"errors\":[", 0},
		{"the reason as a number", "\"errorCode\":\"2\"", "\"errorCode\":2", 0},
		{"the reason negative", "\"errorCode\":\"2\"", "\"errorCode\":\"-2\"", 0},
		{"the reason beyond 64 bits", "\"errorCode\":\"2\"",
		 "\"errorCode\":\"18446744073709551618\"", 0},
		{"the reason as a float", "\"errorCode\":\"2\"", "\"errorCode\":\"2.0\"", 0},
	};
	each_change_is_unknown(200, ANET_DECLINED, OUTCOME_DECLINED, c, COUNT(c));
}

static void anet_cut_nested_is_unknown(void **state)
{
	(void)state;
	every_cut_is_unknown(200, ANET_OK);
	every_cut_is_unknown(200, ANET_DECLINED);
	deep_nesting_is_unknown(200, ANET_OK, "\"refId\":");
	deep_nesting_is_unknown(200, ANET_DECLINED, "\"refId\":");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(stripe_success_changed_is_unknown, stripe_row),
		cmocka_unit_test_setup(stripe_decline_changed_is_unknown, stripe_row),
		cmocka_unit_test_setup(stripe_cut_nested_is_unknown, stripe_row),
		cmocka_unit_test_setup(anet_success_changed_is_unknown, anet_row),
		cmocka_unit_test_setup(anet_decline_changed_is_unknown, anet_row),
		cmocka_unit_test_setup(anet_cut_nested_is_unknown, anet_row),
	};
	return cmocka_run_group_tests_name("hostile_bodies", tests, NULL, NULL);
}
