/* config.c: defaults < config file < environment < command line. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const cfg_log_formats[] = {"text", "json", NULL};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void *field(void *cfg, const struct cfg_option *opt)
{
	return (char *)cfg + opt->offset;
}

static const char *shown(const struct cfg_option *opt, const char *value)
{
	return (opt->flags & CFG_SECRET) ? "(hidden)" : value;
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *out = true, 0;
		if (strcasecmp(v, no[i]) == 0)
			return *out = false, 0;
	}
	return -1;
}

/* strtoll and strtod skip leading blanks and take "" as 0: refuse both. */
static bool starts_like_number(const char *v)
{
	return *v != '\0' && !isspace((unsigned char)*v);
}

static void describe_range(const struct cfg_option *opt, char *buf, size_t len)
{
	if (opt->type == CFG_INT)
		snprintf(buf, len, "an integer from %.0f to %.0f", opt->min, opt->max);
	else
		snprintf(buf, len, "a number of seconds from %.10g to %.10g", opt->min, opt->max);
}

int cfg_set(const struct cfg_option *opt, void *cfg, const char *value, char *err,
	    size_t errlen)
{
	char range[96];
	switch (opt->type) {
	case CFG_BOOL: {
		bool b;
		if (parse_bool(value, &b) != 0) {
			seterr(err, errlen, "'%s' is not a boolean (true/false, yes/no, on/off, 1/0)",
			       shown(opt, value));
			return -1;
		}
		*(bool *)field(cfg, opt) = b;
		return 0;
	}
	case CFG_INT: {
		char *end;
		errno = 0;
		long long n = strtoll(value, &end, 10);
		describe_range(opt, range, sizeof(range));
		if (!starts_like_number(value) || *end != '\0' || errno == ERANGE) {
			seterr(err, errlen, "'%s' is not an integer; expected %s", shown(opt, value), range);
			return -1;
		}
		if ((double)n < opt->min || (double)n > opt->max) {
			seterr(err, errlen, "%s is out of range; expected %s", shown(opt, value), range);
			return -1;
		}
		*(int *)field(cfg, opt) = (int)n;
		return 0;
	}
	case CFG_SECONDS: {
		char *end;
		errno = 0;
		double d = strtod(value, &end);
		describe_range(opt, range, sizeof(range));
		if (!starts_like_number(value) || *end != '\0' || errno == ERANGE || !isfinite(d)) {
			seterr(err, errlen, "'%s' is not a number; expected %s", shown(opt, value), range);
			return -1;
		}
		if (d < opt->min || d > opt->max) {
			seterr(err, errlen, "%s is out of range; expected %s", shown(opt, value), range);
			return -1;
		}
		*(double *)field(cfg, opt) = d;
		return 0;
	}
	case CFG_STRING: {
		char *copy = strdup(value);
		if (!copy) {
			seterr(err, errlen, "out of memory");
			return -1;
		}
		char **slot = field(cfg, opt);
		free(*slot);
		*slot = copy;
		return 0;
	}
	case CFG_SECONDS_LIST: {
		/* "60,300,3600": every item a number in range; an empty list, an
		 * empty item or a trailing comma is refused. */
		struct cfg_seconds_list list = {0};
		const char *p = value;
		for (;;) {
			char *end;
			errno = 0;
			double d = strtod(p, &end);
			if (!starts_like_number(p) || end == p || errno == ERANGE || !isfinite(d) ||
			    (*end != ',' && *end != '\0') || d < opt->min || d > opt->max ||
			    list.n == CFG_LIST_MAX) {
				seterr(err, errlen,
				       "'%s' is not a list of 1 to %d comma-separated seconds, each from %.10g "
				       "to %.10g",
				       shown(opt, value), CFG_LIST_MAX, opt->min, opt->max);
				return -1;
			}
			list.v[list.n++] = d;
			if (*end == '\0')
				break;
			p = end + 1;
		}
		*(struct cfg_seconds_list *)field(cfg, opt) = list;
		return 0;
	}
	case CFG_ENUM:
		for (int i = 0; opt->choices[i]; i++) {
			if (strcmp(value, opt->choices[i]) == 0) {
				*(int *)field(cfg, opt) = i;
				return 0;
			}
		}
		{
			char list[256] = "";
			size_t len = 0;
			for (int i = 0; opt->choices[i] && len < sizeof(list); i++)
				len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
							i ? ", " : "", opt->choices[i]);
			seterr(err, errlen, "'%s' is not one of: %s", shown(opt, value), list);
		}
		return -1;
	}
	seterr(err, errlen, "internal error: unknown option type");
	return -1;
}

static const struct cfg_option *by_flag(const struct cfg_spec *spec, const char *flag,
					size_t flaglen)
{
	for (size_t i = 0; i < spec->count; i++) {
		const char *f = spec->options[i].flag;
		if (strlen(f) == flaglen && strncmp(f, flag, flaglen) == 0)
			return &spec->options[i];
	}
	return NULL;
}

struct file_ctx {
	const struct cfg_spec *spec;
	void *cfg;
	char msg[512]; /* first error, without the line number */
};

static int file_handler(void *user, const char *section, const char *name, const char *value)
{
	struct file_ctx *ctx = user;
	if (ctx->msg[0])
		return 0; /* keep the first error only */
	if (section[0] && strcmp(section, ctx->spec->program) != 0) {
		for (const char *const *s = ctx->spec->other_sections; s && *s; s++)
			if (strcmp(section, *s) == 0)
				return 1; /* another daemon's section of a shared file */
		snprintf(ctx->msg, sizeof(ctx->msg), "unknown section [%s] (expected [%s])", section,
			 ctx->spec->program);
		return 0;
	}
	for (size_t i = 0; i < ctx->spec->count; i++) {
		const struct cfg_option *opt = &ctx->spec->options[i];
		if (opt->key && strcmp(opt->key, name) == 0) {
			char why[400];
			if (cfg_set(opt, ctx->cfg, value, why, sizeof(why)) != 0) {
				snprintf(ctx->msg, sizeof(ctx->msg), "key '%s': %s", name, why);
				return 0;
			}
			return 1;
		}
	}
	snprintf(ctx->msg, sizeof(ctx->msg), "unknown key '%s'", name);
	return 0;
}

static int load_file(const struct cfg_spec *spec, void *cfg, const char *path, char *err,
		     size_t errlen)
{
	struct file_ctx ctx = {.spec = spec, .cfg = cfg, .msg = ""};
	int rc = ini_parse(path, file_handler, &ctx);
	if (rc == 0)
		return 0;
	if (rc == -1)
		seterr(err, errlen, "config file %s: cannot open: %s", path, strerror(errno));
	else if (rc == -2)
		seterr(err, errlen, "config file %s: out of memory", path);
	else
		seterr(err, errlen, "config file %s line %d: %s", path, rc,
		       ctx.msg[0] ? ctx.msg : "syntax error (expected 'key = value')");
	return -1;
}

/* Split "--flag=value" or "--flag value"; returns the option or NULL. */
static const struct cfg_option *match_arg(const struct cfg_spec *spec, int argc,
					  char *const argv[], int *i, const char **value,
					  char *err, size_t errlen)
{
	const char *arg = argv[*i];
	const char *eq = strchr(arg, '=');
	size_t flaglen = eq ? (size_t)(eq - arg) : strlen(arg);
	const struct cfg_option *opt = by_flag(spec, arg, flaglen);
	if (!opt) {
		if (arg[0] == '-')
			seterr(err, errlen, "unknown option '%.*s' (see --help)", (int)flaglen, arg);
		else
			seterr(err, errlen, "unexpected argument '%s' (see --help)", arg);
		return NULL;
	}
	if (eq) {
		*value = eq + 1;
	} else if (opt->type == CFG_BOOL) {
		*value = "true";
	} else if (*i + 1 < argc) {
		*value = argv[++*i];
	} else {
		seterr(err, errlen, "%s needs a value (%s)", opt->flag,
		       opt->metavar ? opt->metavar : "see --help");
		return NULL;
	}
	return opt;
}

int cfg_load(const struct cfg_spec *spec, void *cfg, int argc, char *const argv[], char *err,
	     size_t errlen)
{
	char why[400];
	err[0] = '\0';

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return CFG_HELP;
		if (strcmp(argv[i], "--version") == 0)
			return CFG_VERSION;
	}

	for (size_t i = 0; i < spec->count; i++) {
		const struct cfg_option *opt = &spec->options[i];
		if (opt->def && cfg_set(opt, cfg, opt->def, why, sizeof(why)) != 0) {
			seterr(err, errlen, "internal error: default of %s: %s", opt->flag, why);
			return CFG_ERROR;
		}
	}

	/* The config file: named on the command line, else by its variable. */
	const struct cfg_option *cfopt =
		spec->config_flag ? by_flag(spec, spec->config_flag, strlen(spec->config_flag)) : NULL;
	const char *path = cfopt && cfopt->env ? getenv(cfopt->env) : NULL;
	for (int i = 1; cfopt && i < argc; i++) {
		const char *value = NULL;
		int j = i;
		const struct cfg_option *opt = match_arg(spec, argc, argv, &j, &value, why, sizeof(why));
		if (opt && opt == cfopt)
			path = value;
		i = j; /* unknown options are reported by the pass below */
	}
	if (path && *path) {
		if (cfg_set(cfopt, cfg, path, why, sizeof(why)) != 0 ||
		    load_file(spec, cfg, path, err, errlen) != 0)
			return CFG_ERROR;
	}

	for (size_t i = 0; i < spec->count; i++) {
		const struct cfg_option *opt = &spec->options[i];
		const char *v = opt->env ? getenv(opt->env) : NULL;
		if (v && cfg_set(opt, cfg, v, why, sizeof(why)) != 0) {
			seterr(err, errlen, "environment %s: %s", opt->env, why);
			return CFG_ERROR;
		}
	}

	for (int i = 1; i < argc; i++) {
		const char *value;
		const struct cfg_option *opt = match_arg(spec, argc, argv, &i, &value, err, errlen);
		if (!opt)
			return CFG_ERROR;
		if (cfg_set(opt, cfg, value, why, sizeof(why)) != 0) {
			seterr(err, errlen, "%s: %s", opt->flag, why);
			return CFG_ERROR;
		}
	}
	return CFG_OK;
}

void cfg_free(const struct cfg_spec *spec, void *cfg)
{
	for (size_t i = 0; i < spec->count; i++) {
		if (spec->options[i].type == CFG_STRING) {
			char **slot = field(cfg, &spec->options[i]);
			free(*slot);
			*slot = NULL;
		}
	}
}

size_t cfg_value_size(const struct cfg_option *opt)
{
	switch (opt->type) {
	case CFG_BOOL:
		return sizeof(bool);
	case CFG_INT:
	case CFG_ENUM:
		return sizeof(int);
	case CFG_SECONDS:
		return sizeof(double);
	case CFG_STRING:
		return sizeof(char *);
	case CFG_SECONDS_LIST:
		return sizeof(struct cfg_seconds_list);
	}
	return 0;
}

static const void *cfield(const void *cfg, const struct cfg_option *opt)
{
	return (const char *)cfg + opt->offset;
}

bool cfg_value_equal(const struct cfg_option *opt, const void *a, const void *b)
{
	if (opt->type == CFG_STRING) {
		const char *x = *(char *const *)cfield(a, opt), *y = *(char *const *)cfield(b, opt);
		return strcmp(x ? x : "", y ? y : "") == 0;
	}
	if (opt->type == CFG_SECONDS_LIST) {
		const struct cfg_seconds_list *x = cfield(a, opt), *y = cfield(b, opt);
		if (x->n != y->n)
			return false;
		for (int i = 0; i < x->n; i++)
			if (x->v[i] != y->v[i])
				return false;
		return true;
	}
	/* bool, int, enum, double: no padding inside, compare the bytes */
	return memcmp(cfield(a, opt), cfield(b, opt), cfg_value_size(opt)) == 0;
}

void cfg_value_format(const struct cfg_option *opt, const void *cfg, char *buf, size_t len)
{
	const void *f = cfield(cfg, opt);
	if (len == 0)
		return;
	buf[0] = '\0';
	if (opt->flags & CFG_SECRET) {
		snprintf(buf, len, "(hidden)");
		return;
	}
	switch (opt->type) {
	case CFG_BOOL:
		snprintf(buf, len, "%s", *(const bool *)f ? "true" : "false");
		break;
	case CFG_INT:
		snprintf(buf, len, "%d", *(const int *)f);
		break;
	case CFG_ENUM:
		snprintf(buf, len, "%s", opt->choices[*(const int *)f]);
		break;
	case CFG_SECONDS:
		snprintf(buf, len, "%.10g", *(const double *)f);
		break;
	case CFG_STRING: {
		const char *s = *(char *const *)f;
		snprintf(buf, len, "'%s'", s ? s : "");
		break;
	}
	case CFG_SECONDS_LIST: {
		const struct cfg_seconds_list *l = f;
		size_t used = 0;
		for (int i = 0; i < l->n && used < len; i++)
			used += (size_t)snprintf(buf + used, len - used, "%s%.10g", i ? "," : "",
					  l->v[i]);
		break;
	}
	}
}

void cfg_print_help(const struct cfg_spec *spec, FILE *out)
{
	fprintf(out, "%s\nOptions (a flag overrides the environment, which overrides the config file):\n",
		spec->synopsis);
	for (size_t i = 0; i < spec->count; i++) {
		const struct cfg_option *o = &spec->options[i];
		char head[64];
		snprintf(head, sizeof(head), "%s%s%s", o->flag, o->metavar ? " " : "",
			 o->metavar ? o->metavar : "");
		fprintf(out, "  %-24s %s\n", head, o->doc);
		char meta[256] = "";
		size_t len = 0;
		if (o->type == CFG_INT)
			len += (size_t)snprintf(meta + len, sizeof(meta) - len, "[%.0f..%.0f] ", o->min, o->max);
		else if (o->type == CFG_SECONDS)
			len += (size_t)snprintf(meta + len, sizeof(meta) - len, "[%g..%g s] ", o->min, o->max);
		else if (o->type == CFG_SECONDS_LIST)
			len += (size_t)snprintf(meta + len, sizeof(meta) - len, "[each %g..%g s] ", o->min, o->max);
		if (o->def && *o->def && len < sizeof(meta))
			len += (size_t)snprintf(meta + len, sizeof(meta) - len, "default %s; ", o->def);
		if (o->key && !(o->flags & CFG_CLI_ONLY) && len < sizeof(meta))
			len += (size_t)snprintf(meta + len, sizeof(meta) - len, "file key %s; ", o->key);
		if (o->env && len < sizeof(meta))
			len += (size_t)snprintf(meta + len, sizeof(meta) - len, "env %s; ", o->env);
		if ((o->flags & CFG_RESTART) && len < sizeof(meta))
			snprintf(meta + len, sizeof(meta) - len, "reload needs a restart; ");
		len = strlen(meta);
		if (len >= 2)
			meta[len - 2] = '\0'; /* drop the last "; " */
		if (meta[0])
			fprintf(out, "  %-24s %s\n", "", meta);
	}
	fprintf(out, "  %-24s show this help\n  %-24s show the version\n", "--help", "--version");
	if (spec->epilog)
		fprintf(out, "\n%s", spec->epilog);
}
