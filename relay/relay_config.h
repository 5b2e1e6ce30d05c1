/* relay_config.h: the relay's options (one table) and the cross-checks of
 * PROTOCOL.md's timing rules. */
#ifndef RELAY_CONFIG_H
#define RELAY_CONFIG_H

#include "config.h"

struct relay_config {
	char *db;
	char *gateway_url;
	int gateway; /* index into relay_gateways */
	char *gateway_key_file;
	char *smtp_url;
	char *gateway_ca_file; /* CURLOPT_CAINFO for the gateway, or "" */
	char *smtp_ca_file;    /* CURLOPT_CAINFO for SMTP, or "" */
	char *mail_from;
	int max_inflight;
	int claim_batch;
	int record_batch;
	double http_timeout;
	double lease;
	double settle;
	struct cfg_seconds_list reconcile_schedule;
	struct cfg_seconds_list invoice_retry_schedule;
	double poll_interval;
	int email_max_inflight;
	int lookup_max_inflight;
	int email_max_attempts;
	double email_retry;
	int log_level;
	int log_format; /* enum log_format */
	char *metrics_listen;
	double metrics_db_interval;
	char *config;
	bool list_crash_points;
};

extern const struct cfg_spec relay_cfg_spec;
extern const char *const relay_gateways[];

/* How long before its lease ends a relay stops trusting it. */
double relay_lease_margin(const struct relay_config *cfg);

/* PROTOCOL.md's ordering of windows, URLs, addresses: 0, or -1 with why. */
int relay_config_check(const struct relay_config *cfg, char *why, size_t whylen);

#endif
