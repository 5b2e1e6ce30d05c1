/* config_reload.c: parse again, validate whole, swap what may change. */
#include "config_reload.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

static bool reloadable(const struct cfg_option *opt)
{
	return !(opt->flags & CFG_RESTART);
}

static const char *name_of(const struct cfg_option *opt)
{
	return opt->key ? opt->key : opt->flag;
}

int cfg_reload_load(const struct cfg_spec *spec, const void *running, void *fresh, size_t size,
		    int argc, char *const argv[], cfg_check_fn check, char *err, size_t errlen)
{
	int rc = cfg_load(spec, fresh, argc, argv, err, errlen);
	if (rc != CFG_OK) {
		if (rc != CFG_ERROR) /* --help in the argv we started with: impossible */
			snprintf(err, errlen, "the command line asks for help, not a run");
		return -1;
	}
	if (!check)
		return 0;
	if (check(fresh, err, errlen) != 0)
		return -1;
	/* A shallow merge, never freed field by field: its strings belong to
	 * *running or *fresh. */
	char *merged = malloc(size);
	if (!merged) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(merged, running, size);
	for (size_t i = 0; i < spec->count; i++) {
		const struct cfg_option *opt = &spec->options[i];
		if (reloadable(opt))
			memcpy(merged + opt->offset, (const char *)fresh + opt->offset,
			       cfg_value_size(opt));
	}
	rc = check(merged, err, errlen);
	free(merged);
	return rc == 0 ? 0 : -1;
}

int cfg_reload_apply(const struct cfg_spec *spec, void *running, void *fresh)
{
	int changed = 0;
	for (size_t i = 0; i < spec->count; i++) {
		const struct cfg_option *opt = &spec->options[i];
		if (cfg_value_equal(opt, running, fresh))
			continue;
		char was[256], now[256];
		cfg_value_format(opt, running, was, sizeof(was));
		cfg_value_format(opt, fresh, now, sizeof(now));
		if (!reloadable(opt)) {
			log_warn("SIGHUP: %s needs a restart; still using %s (the configuration now "
				 "says %s)",
				 name_of(opt), was, now);
			continue;
		}
		log_info("SIGHUP: %s changed: %s -> %s", name_of(opt), was, now);
		/* swap, so the old string (if any) is freed with *fresh */
		char tmp[sizeof(struct cfg_seconds_list)];
		size_t n = cfg_value_size(opt);
		char *a = (char *)running + opt->offset, *b = (char *)fresh + opt->offset;
		memcpy(tmp, a, n);
		memcpy(a, b, n);
		memcpy(b, tmp, n);
		changed++;
	}
	return changed;
}

/* Both daemons spell it --log-level, its choices in enum log_level's order. */
static void verbose_first(const struct cfg_spec *spec, const void *running, const void *fresh)
{
	for (size_t i = 0; i < spec->count; i++) {
		const struct cfg_option *opt = &spec->options[i];
		if (opt->type != CFG_ENUM || strcmp(opt->flag, "--log-level") != 0)
			continue;
		int was = *(const int *)((const char *)running + opt->offset);
		int now = *(const int *)((const char *)fresh + opt->offset);
		if (now < was)
			log_set_level((enum log_level)now);
	}
}

int cfg_reload(const struct cfg_spec *spec, void *running, void *fresh, size_t size, int argc,
	       char *const argv[], cfg_check_fn check, cfg_prepare_fn prepare, void *ud)
{
	char err[512];
	if (cfg_reload_load(spec, running, fresh, size, argc, argv, check, err, sizeof(err)) != 0 ||
	    (prepare && prepare(ud, fresh, err, sizeof(err)) != 0)) {
		log_error("SIGHUP: configuration not reloaded, every setting stays as it was: %s", err);
		return -1;
	}
	verbose_first(spec, running, fresh);
	int changed = cfg_reload_apply(spec, running, fresh);
	log_info("SIGHUP: configuration reloaded (%d setting(s) changed)", changed);
	return 0;
}
