/* faults.c: fault kinds, rule parsing, matching and drawing. */
#include "faults.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DELAY_MAX_S 3600.0 /* longer than any client timeout worth testing */

static const char *const names[FAULT_KIND_COUNT] = {
	[FAULT_NONE] = "none",
	[FAULT_500_BEFORE] = "500_before",
	[FAULT_500_AFTER] = "500_after",
	[FAULT_RESET_AFTER] = "reset_after",
	[FAULT_CLOSE_MID_BODY] = "close_mid_body",
	[FAULT_DELAY] = "delay",
	[FAULT_429] = "429",
	[FAULT_NONJSON_AFTER] = "nonjson_after",
	[FAULT_RESET_BEFORE] = "reset_before",
	[FAULT_FORGET_AFTER] = "forget_after",
	[FAULT_409] = "409",
	[FAULT_HUGE_AFTER] = "huge_after",
	[FAULT_DUPLICATE_AFTER] = "duplicate_after",
	[FAULT_CHUNKED_CUT_AFTER] = "chunked_cut_after",
};

const char *fault_name(enum fault_kind kind)
{
	return (unsigned)kind < FAULT_KIND_COUNT ? names[kind] : "?";
}

/* strtod that refuses blanks, trailing junk, NaN and infinities. */
static int parse_double(const char *s, double *out)
{
	char *end;
	if (!*s || *s == ' ' || *s == '\t')
		return -1;
	errno = 0;
	double d = strtod(s, &end);
	if (*end || errno == ERANGE || !isfinite(d))
		return -1;
	*out = d;
	return 0;
}

int fault_parse(const char *text, struct fault *out, char *why, size_t whylen)
{
	*out = (struct fault){FAULT_NONE, 0};
	if (strncmp(text, "delay:", 6) == 0) {
		double s;
		if (parse_double(text + 6, &s) != 0 || s < 0 || s > DELAY_MAX_S) {
			snprintf(why, whylen, "fault '%s': delay:S needs S in seconds from 0 to %g",
				 text, DELAY_MAX_S);
			return -1;
		}
		*out = (struct fault){FAULT_DELAY, s};
		return 0;
	}
	for (int k = FAULT_NONE + 1; k < FAULT_KIND_COUNT; k++) {
		if (k != FAULT_DELAY && strcmp(text, names[k]) == 0) {
			out->kind = (enum fault_kind)k;
			return 0;
		}
	}
	snprintf(why, whylen,
		 "unknown fault '%s' (expected 500_before, 500_after, reset_after, close_mid_body, "
		 "delay:S, 429, nonjson_after, reset_before, forget_after, 409, huge_after, "
		 "duplicate_after or chunked_cut_after)",
		 text);
	return -1;
}

static void rule_free(struct fault_rule *rule)
{
	free(rule->source);
	free(rule->customer);
	free(rule->invoice_id);
	free(rule->outbox_id);
}

void fault_rules_free(struct fault_rules *r)
{
	for (size_t i = 0; i < r->count; i++)
		rule_free(&r->items[i]);
	free(r->items);
	r->items = NULL;
	r->count = r->cap = 0;
}

/* Append *rule (its strings now belong to r). 0, or -1 out of memory. */
static int rules_push(struct fault_rules *r, const struct fault_rule *rule)
{
	if (r->count == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		struct fault_rule *items = realloc(r->items, cap * sizeof(*items));
		if (!items)
			return -1;
		r->items = items;
		r->cap = cap;
	}
	r->items[r->count++] = *rule;
	return 0;
}

int fault_rules_add_flag(struct fault_rules *r, const char *spec, char *why, size_t whylen)
{
	/* The probability follows the last ':' (the kind may hold one: delay:S). */
	const char *colon = strrchr(spec, ':');
	char kind[64];
	double p;
	if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(kind)) {
		snprintf(why, whylen, "'%s' is not KIND:PROB (e.g. 500_before:0.1, delay:2.5:1)",
			 spec);
		return -1;
	}
	snprintf(kind, sizeof(kind), "%.*s", (int)(colon - spec), spec);
	if (parse_double(colon + 1, &p) != 0 || p < 0 || p > 1) {
		snprintf(why, whylen, "'%s': PROB must be a number from 0 to 1", spec);
		return -1;
	}
	struct fault_rule rule = {.probability = p, .times = -1};
	if (fault_parse(kind, &rule.fault, why, whylen) != 0)
		return -1;
	if (rules_push(r, &rule) != 0) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

/* A match value: a string, or an integer (ids are often written bare). */
static int match_value(const cJSON *v, const char *name, char **out, char *why, size_t whylen)
{
	char buf[32];
	if (cJSON_IsString(v)) {
		*out = strdup(v->valuestring);
	} else if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
		   fabs(v->valuedouble) < 9007199254740992.0) {
		snprintf(buf, sizeof(buf), "%lld", (long long)v->valuedouble);
		*out = strdup(buf);
	} else {
		snprintf(why, whylen, "match.%s must be a string or an integer", name);
		return -1;
	}
	if (!*out) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

static int parse_match(const cJSON *match, struct fault_rule *rule, char *why, size_t whylen)
{
	if (cJSON_IsNull(match))
		return 0;
	if (!cJSON_IsObject(match)) {
		snprintf(why, whylen, "match must be an object");
		return -1;
	}
	for (const cJSON *f = match->child; f; f = f->next) {
		char **slot = NULL;
		if (strcmp(f->string, "source") == 0)
			slot = &rule->source;
		else if (strcmp(f->string, "customer") == 0)
			slot = &rule->customer;
		else if (strcmp(f->string, "invoice_id") == 0)
			slot = &rule->invoice_id;
		else if (strcmp(f->string, "outbox_id") == 0)
			slot = &rule->outbox_id;
		if (!slot) {
			snprintf(why, whylen,
				 "unknown match field '%.60s' (expected source, customer, invoice_id, "
				 "outbox_id)",
				 f->string);
			return -1;
		}
		if (*slot) {
			snprintf(why, whylen, "match.%s given twice", f->string);
			return -1;
		}
		if (match_value(f, f->string, slot, why, whylen) != 0)
			return -1;
	}
	return 0;
}

/* One rule object. Unknown or repeated fields are refused: a typo such as
 * "probabilty" must not silently make a rule always fire. */
static int parse_rule(const cJSON *o, struct fault_rule *rule, char *why, size_t whylen)
{
	*rule = (struct fault_rule){.probability = 1, .times = -1};
	if (!cJSON_IsObject(o)) {
		snprintf(why, whylen, "each rule must be an object");
		return -1;
	}
	bool seen_fault = false, seen_match = false, seen_p = false, seen_times = false;
	for (const cJSON *f = o->child; f; f = f->next) {
		bool *seen = strcmp(f->string, "fault") == 0         ? &seen_fault
			     : strcmp(f->string, "match") == 0       ? &seen_match
			     : strcmp(f->string, "probability") == 0 ? &seen_p
			     : strcmp(f->string, "times") == 0       ? &seen_times
								     : NULL;
		if (!seen) {
			snprintf(why, whylen,
				 "unknown rule field '%.60s' (expected fault, match, probability, times)",
				 f->string);
			return -1;
		}
		if (*seen) {
			snprintf(why, whylen, "rule field '%s' given twice", f->string);
			return -1;
		}
		*seen = true;
		if (seen == &seen_fault) {
			if (!cJSON_IsString(f)) {
				snprintf(why, whylen, "fault must be a string such as \"500_before\"");
				return -1;
			}
			if (fault_parse(f->valuestring, &rule->fault, why, whylen) != 0)
				return -1;
		} else if (seen == &seen_match) {
			if (parse_match(f, rule, why, whylen) != 0)
				return -1;
		} else if (seen == &seen_p) {
			if (!cJSON_IsNumber(f) || !(f->valuedouble >= 0 && f->valuedouble <= 1)) {
				snprintf(why, whylen, "probability must be a number from 0 to 1");
				return -1;
			}
			rule->probability = f->valuedouble;
		} else if (!cJSON_IsNull(f)) {
			/* valueint is clamped to int: read the double. */
			double t = cJSON_IsNumber(f) ? f->valuedouble : -1;
			if (!(t >= 0 && t <= 1e15 && t == floor(t))) {
				snprintf(why, whylen, "times must be a whole number >= 0 (or null)");
				return -1;
			}
			rule->times = (long long)t;
		}
	}
	if (!seen_fault) {
		snprintf(why, whylen, "a rule needs \"fault\"");
		return -1;
	}
	return 0;
}

int fault_rules_parse_json(struct fault_rules *out, const char *json, size_t len, char *why,
			   size_t whylen)
{
	memset(out, 0, sizeof(*out));
	cJSON *root = cJSON_ParseWithLength(json, len);
	if (!root || !cJSON_IsArray(root)) {
		snprintf(why, whylen, "the body must be a JSON array of rules");
		cJSON_Delete(root);
		return -1;
	}
	int i = 0;
	for (const cJSON *o = root->child; o; o = o->next, i++) {
		struct fault_rule rule;
		char inner[400];
		if (parse_rule(o, &rule, inner, sizeof(inner)) != 0) {
			snprintf(why, whylen, "rule %d: %s", i, inner);
			rule_free(&rule);
			goto fail;
		}
		if (rules_push(out, &rule) != 0) {
			snprintf(why, whylen, "out of memory");
			rule_free(&rule);
			goto fail;
		}
	}
	cJSON_Delete(root);
	return 0;
fail:
	cJSON_Delete(root);
	fault_rules_free(out);
	return -1;
}

static bool field_matches(const char *want, const char *have)
{
	return !want || (have && strcmp(want, have) == 0);
}

bool fault_rules_pick(struct fault_rules *r, const struct fault_request *req, struct rng *rng,
		      struct fault *out)
{
	for (size_t i = 0; i < r->count; i++) {
		struct fault_rule *rule = &r->items[i];
		if (rule->times == 0 || !field_matches(rule->source, req->source) ||
		    !field_matches(rule->customer, req->customer) ||
		    !field_matches(rule->invoice_id, req->invoice_id) ||
		    !field_matches(rule->outbox_id, req->outbox_id))
			continue;
		/* Certain outcomes take no draw, so adding a probability-1 rule
		 * does not shift the charge ids a seed produces. */
		if (rule->probability <= 0)
			continue;
		if (rule->probability < 1 && rng_unit(rng) >= rule->probability)
			continue;
		if (rule->times > 0)
			rule->times--;
		*out = rule->fault;
		return true;
	}
	return false;
}

static void add_opt_string(cJSON *o, const char *name, const char *value)
{
	if (value)
		cJSON_AddStringToObject(o, name, value);
}

cJSON *fault_rules_json(const struct fault_rules *r)
{
	cJSON *arr = cJSON_CreateArray();
	for (size_t i = 0; arr && i < r->count; i++) {
		const struct fault_rule *rule = &r->items[i];
		cJSON *o = cJSON_CreateObject(), *m = cJSON_CreateObject();
		if (!o || !m) {
			cJSON_Delete(o);
			cJSON_Delete(m);
			cJSON_Delete(arr);
			return NULL;
		}
		char kind[48];
		if (rule->fault.kind == FAULT_DELAY)
			snprintf(kind, sizeof(kind), "delay:%g", rule->fault.delay_s);
		else
			snprintf(kind, sizeof(kind), "%s", fault_name(rule->fault.kind));
		cJSON_AddStringToObject(o, "fault", kind);
		add_opt_string(m, "source", rule->source);
		add_opt_string(m, "customer", rule->customer);
		add_opt_string(m, "invoice_id", rule->invoice_id);
		add_opt_string(m, "outbox_id", rule->outbox_id);
		cJSON_AddItemToObject(o, "match", m);
		cJSON_AddNumberToObject(o, "probability", rule->probability);
		if (rule->times < 0)
			cJSON_AddNullToObject(o, "times");
		else
			cJSON_AddNumberToObject(o, "times", (double)rule->times);
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}
