/* charger_config.h: the charger's options (one table: flag, file key,
 * environment variable, type, bounds, default, doc). */
#ifndef CHARGER_CONFIG_H
#define CHARGER_CONFIG_H

#include "config.h"

struct charger_config {
	char *db;
	bool once;
	double interval;
	int batch;
	double db_wait;
	int log_level; /* enum log_level */
	int log_format; /* enum log_format */
	char *metrics_listen;
	char *config;
	bool list_crash_points;
};

extern const struct cfg_spec charger_cfg_spec;

/* Checks beyond one value's bounds (the metrics address): 0, or -1 with why. */
int charger_config_check(const struct charger_config *cfg, char *why, size_t whylen);

#endif
