/* config.h: declarative option tables. Each daemon describes its options in
 * one table (flag, config-file key, environment variable, type, bounds,
 * default, doc); this module fills a config struct from, in increasing
 * precedence: defaults, the config file, the environment, the command line.
 * Every bad value is refused with a message naming where it came from and
 * what is accepted. No globals: a reload can parse into a fresh struct. */
#ifndef CG_CONFIG_H
#define CG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum cfg_type {
	CFG_BOOL,    /* bool;   a flag with no value sets it true */
	CFG_INT,     /* int;    bounds min..max */
	CFG_SECONDS, /* double; bounds min..max, decimal seconds */
	CFG_STRING,  /* char *; owned by the struct, freed by cfg_free */
	CFG_ENUM,    /* int;    index into choices */
	CFG_SECONDS_LIST, /* struct cfg_seconds_list; "60,300,3600", each min..max */
};

#define CFG_LIST_MAX 32
struct cfg_seconds_list {
	int n;
	double v[CFG_LIST_MAX];
};

#define CFG_CLI_ONLY 0x1u /* command line (and env) only, not a file key */
#define CFG_RESTART  0x2u /* a reload cannot change it; needs a restart */
#define CFG_SECRET   0x4u /* never echoed back in messages */

struct cfg_option {
	const char *flag; /* "--batch" */
	const char *key;  /* config-file key, or NULL */
	const char *env;  /* environment variable, or NULL */
	enum cfg_type type;
	size_t offset; /* of the field in the daemon's config struct */
	double min, max;
	const char *const *choices; /* CFG_ENUM: NULL-terminated */
	const char *def;            /* default as text; NULL: empty / false / 0 */
	const char *metavar;
	const char *doc;
	unsigned flags;
};

struct cfg_spec {
	const char *program;
	const char *synopsis; /* printed by --help above the option list */
	const char *epilog;   /* printed by --help below it */
	const struct cfg_option *options;
	size_t count;
	const char *config_flag; /* the option naming the config file, or NULL */
	const char *const *other_sections; /* file sections that belong to others */
};

/* Options both daemons have, spelled the same: their own environment
 * variable, the field's offset, an example address for the doc. */
extern const char *const cfg_log_formats[]; /* "text", "json": enum log_format */
#define CFG_OPT_LOG_FORMAT(env, off)                                                        \
	{"--log-format", "log_format", env, CFG_ENUM, off, 0, 0, cfg_log_formats, "text",       \
	 "FORMAT",                                                                              \
	 "text (one line per event) or json (one JSON object per line: time, level, "           \
	 "message, and invoice, row, attempt, claim when the event has them)",                  \
	 CFG_RESTART}
#define CFG_OPT_METRICS_LISTEN(env, off, example)                                           \
	{"--metrics-listen", "metrics_listen", env, CFG_STRING, off, 0, 0, NULL, "",            \
	 "HOST:PORT",                                                                           \
	 "serve GET /metrics (Prometheus text) and GET /healthz on this numeric address, "      \
	 "e.g. 127.0.0.1:" example " or [::1]:" example " (port 0: any free port, logged); "  \
	 "empty: off",                                                                          \
	 CFG_RESTART}

enum cfg_result {
	CFG_ERROR = -1,
	CFG_OK = 0,
	CFG_HELP = 1,    /* --help or -h was given */
	CFG_VERSION = 2, /* --version was given */
};

/* Fill *out (zeroed by the caller or freshly allocated). On CFG_ERROR, err
 * holds one line that names the flag, key or variable and the accepted
 * values; *out may hold partial values and must still be cfg_free'd. */
int cfg_load(const struct cfg_spec *spec, void *out, int argc, char *const argv[],
	     char *err, size_t errlen);

/* Parse one value for one option into *out (used by cfg_load; exposed for
 * tests and for reload). */
int cfg_set(const struct cfg_option *opt, void *out, const char *value, char *err,
	    size_t errlen);

void cfg_free(const struct cfg_spec *spec, void *cfg);

/* One option's value in two config structs of the same spec: equal? (for a
 * reload, which compares the running struct with a freshly parsed one) */
bool cfg_value_equal(const struct cfg_option *opt, const void *a, const void *b);
/* The value as an operator would write it ("(hidden)" for CFG_SECRET). */
void cfg_value_format(const struct cfg_option *opt, const void *cfg, char *buf, size_t len);
/* Bytes of the option's field in the struct (for a reload's swap). */
size_t cfg_value_size(const struct cfg_option *opt);
void cfg_print_help(const struct cfg_spec *spec, FILE *out);

#endif
