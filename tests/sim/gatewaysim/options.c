/* options.c: the option table, its parser and --help. */
#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct option_def {
	const char *flag;
	const char *metavar; /* NULL: a switch without a value */
	const char *doc;
	int (*set)(struct options *o, const char *value, char *why, size_t whylen);
};

static int parse_long(const char *v, long long min, long long max, long long *out)
{
	char *end;
	if (!*v || !((*v >= '0' && *v <= '9') || *v == '-'))
		return -1;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (*end || errno == ERANGE || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

static int set_port(struct options *o, const char *v, char *why, size_t whylen)
{
	long long n;
	if (parse_long(v, 0, 65535, &n) != 0) {
		snprintf(why, whylen, "'%s' is not a port; expected 0 (any free port) to 65535", v);
		return -1;
	}
	o->port = (int)n;
	return 0;
}

static int set_latency(struct options *o, const char *v, char *why, size_t whylen)
{
	long long n;
	if (parse_long(v, 0, 600000, &n) != 0) {
		snprintf(why, whylen, "'%s' is not a latency; expected milliseconds from 0 to 600000",
			 v);
		return -1;
	}
	o->latency_ms = (int)n;
	return 0;
}

static int set_seed(struct options *o, const char *v, char *why, size_t whylen)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (!*v || *v < '0' || *v > '9' || *end || errno == ERANGE) {
		snprintf(why, whylen, "'%s' is not a seed; expected an integer from 0 to 2^64-1", v);
		return -1;
	}
	o->seed = n;
	o->seed_given = true;
	return 0;
}

static int set_fault(struct options *o, const char *v, char *why, size_t whylen)
{
	return fault_rules_add_flag(&o->faults, v, why, whylen);
}

static int set_string(char **slot, const char *v, char *why, size_t whylen)
{
	char *copy = strdup(v);
	if (!copy) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	free(*slot);
	*slot = copy;
	return 0;
}

static int set_key_prefix(struct options *o, const char *v, char *why, size_t whylen)
{
	for (const char *p = v; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			snprintf(why, whylen, "the prefix may not hold blanks or control characters");
			return -1;
		}
	}
	return set_string(&o->key_prefix, v, why, whylen);
}

static int set_anet_login(struct options *o, const char *v, char *why, size_t whylen)
{
	return set_string(&o->anet_login, v, why, whylen);
}

static int set_anet_key(struct options *o, const char *v, char *why, size_t whylen)
{
	return set_string(&o->anet_key, v, why, whylen);
}

static int set_ready_file(struct options *o, const char *v, char *why, size_t whylen)
{
	if (!*v) {
		snprintf(why, whylen, "needs a file name");
		return -1;
	}
	return set_string(&o->ready_file, v, why, whylen);
}

static int set_verbose(struct options *o, const char *v, char *why, size_t whylen)
{
	(void)v, (void)why, (void)whylen;
	o->verbose = true;
	return 0;
}

static int set_max_connections(struct options *o, const char *v, char *why, size_t whylen)
{
	long long n;
	if (parse_long(v, 1, 100000, &n) != 0) {
		snprintf(why, whylen, "'%s' is not a count; expected 1 to 100000", v);
		return -1;
	}
	o->max_connections = (int)n;
	return 0;
}

static const struct option_def defs[] = {
	{"--port", "N", "TCP port on 127.0.0.1 (required); 0 picks a free one (see --ready-file)",
	 set_port},
	{"--latency-ms", "MS",
	 "delay every answer to /v1/* this long (default 0); requests wait in parallel", set_latency},
	{"--seed", "S",
	 "seed for charge ids and fault draws (default: from the clock and pid); the same seed "
	 "and the same request sequence give the same ids and faults",
	 set_seed},
	{"--fault", "KIND:PROB",
	 "apply fault KIND to each charge POST with probability PROB (0..1); repeatable, tried in "
	 "order after the rules of POST /_control/faults. KIND: 500_before, 500_after, "
	 "reset_after, close_mid_body, delay:S (S seconds, fractional allowed), 429, "
	 "nonjson_after, reset_before, forget_after, 409, huge_after, duplicate_after, "
	 "chunked_cut_after. E.g. --fault 500_after:0.1 "
	 "--fault delay:2.5:0.05",
	 set_fault},
	{"--key-prefix", "PREFIX",
	 "API keys must start with this (default sk_test_); others get 401", set_key_prefix},
	{"--anet-login", "ID",
	 "Authorize.Net: the API login id accepted (default cg_login); others get E00007",
	 set_anet_login},
	{"--anet-key", "KEY",
	 "Authorize.Net: the transaction key accepted (default cg_transaction_key)", set_anet_key},
	{"--ready-file", "PATH",
	 "once accepting connections, write the port and a newline here (atomically: a reader "
	 "never sees half of it); removed again on a clean exit",
	 set_ready_file},
	{"--max-connections", "N", "connections served at once (default 4096)",
	 set_max_connections},
	{"--verbose", NULL, "log one line per request on stderr", set_verbose},
};

#define NDEFS (sizeof(defs) / sizeof(defs[0]))

static const struct option_def *find(const char *arg, size_t len)
{
	for (size_t i = 0; i < NDEFS; i++)
		if (strlen(defs[i].flag) == len && strncmp(defs[i].flag, arg, len) == 0)
			return &defs[i];
	return NULL;
}

enum options_result options_parse(struct options *o, int argc, char *const argv[], char *err,
				  size_t errlen)
{
	char why[400];
	o->port = -1;
	o->max_connections = 4096;
	if (set_string(&o->key_prefix, "sk_test_", err, errlen) != 0 ||
	    set_string(&o->anet_login, "cg_login", err, errlen) != 0 ||
	    set_string(&o->anet_key, "cg_transaction_key", err, errlen) != 0)
		return OPTIONS_ERROR;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return OPTIONS_HELP;
		if (strcmp(argv[i], "--version") == 0)
			return OPTIONS_VERSION;
	}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *eq = strchr(arg, '=');
		size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
		const struct option_def *d = arg[0] == '-' ? find(arg, len) : NULL;
		if (!d) {
			if (arg[0] == '-')
				snprintf(err, errlen, "unknown option '%.*s' (see --help)", (int)len, arg);
			else
				snprintf(err, errlen, "unexpected argument '%s' (see --help)", arg);
			return OPTIONS_ERROR;
		}
		const char *value = NULL;
		if (!d->metavar) {
			if (eq) {
				snprintf(err, errlen, "%s takes no value", d->flag);
				return OPTIONS_ERROR;
			}
		} else if (eq) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			snprintf(err, errlen, "%s needs a value (%s)", d->flag, d->metavar);
			return OPTIONS_ERROR;
		}
		if (d->set(o, value, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s: %s", d->flag, why);
			return OPTIONS_ERROR;
		}
	}
	if (o->port < 0) {
		snprintf(err, errlen, "--port is required (0 picks a free port)");
		return OPTIONS_ERROR;
	}
	return OPTIONS_OK;
}

void options_print_help(FILE *out)
{
	fprintf(out,
		"Usage: gatewaysim --port N [--latency-ms MS] [--seed S] [--fault KIND:PROB]...\n"
		"                  [--key-prefix sk_test_] [--anet-login ID] [--anet-key KEY]\n"
		"                  [--ready-file PATH] [--verbose]\n"
		"\n"
		"A fake of the subset of Stripe's API that chargeguard's relay uses, for tests:\n"
		"POST /v1/charges (form-encoded, Idempotency-Key, Stripe's replay rules),\n"
		"GET /v1/charges (customer, created[gte], limit, starting_after) and\n"
		"GET /v1/charges/ID, with injected faults. Listens on 127.0.0.1 only.\n"
		"And Authorize.Net's JSON API: POST /xml/v1/request.api with\n"
		"createTransactionRequest (duplicateWindow, answers with a byte order mark),\n"
		"getUnsettledTransactionListRequest, getSettledBatchListRequest and\n"
		"getTransactionListRequest, with the same faults (429/409: an intermediary's\n"
		"plain answer, never run; duplicate_after: Authorize.Net only).\n"
		"Its own endpoints: GET /_health, POST /_control/faults (a JSON array of rules),\n"
		"POST /_control/reset, GET /_ledger (every request and charge, as JSON),\n"
		"POST /_control/anet/settle (unsettled -> a settled batch),\n"
		"POST /_control/anet/review ({\"decision\": \"approve\"|\"decline\"}).\n"
		"\n"
		"Options:\n");
	for (size_t i = 0; i < NDEFS; i++) {
		char head[48];
		snprintf(head, sizeof(head), "%s%s%s", defs[i].flag, defs[i].metavar ? " " : "",
			 defs[i].metavar ? defs[i].metavar : "");
		/* Wrap the doc at about 80 columns, under its own column. */
		const char *doc = defs[i].doc;
		bool first = true;
		while (*doc) {
			size_t n = strlen(doc);
			if (n > 52) {
				n = 52;
				while (n > 0 && doc[n] != ' ')
					n--;
				if (n == 0)
					n = 52;
			}
			fprintf(out, "  %-24s %.*s\n", first ? head : "", (int)n, doc);
			first = false;
			doc += n;
			while (*doc == ' ')
				doc++;
		}
	}
	fprintf(out, "  %-24s %s\n  %-24s %s\n", "--help", "show this help", "--version",
		"show the version");
	fprintf(out,
		"\n"
		"Signals: SIGTERM or SIGINT stops the simulator (exit 0).\n"
		"Exit status: 0 stopped by a signal (or --help), 1 cannot listen or start,\n"
		"2 bad usage. Docs: tests/sim/README.md.\n");
}

void options_free(struct options *o)
{
	free(o->key_prefix);
	free(o->ready_file);
	free(o->anet_login);
	free(o->anet_key);
	o->anet_login = o->anet_key = NULL;
	fault_rules_free(&o->faults);
	o->key_prefix = o->ready_file = NULL;
}
