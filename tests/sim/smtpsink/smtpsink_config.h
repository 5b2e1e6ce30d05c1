/* smtpsink_config.h: the SMTP sink's options (one table: flag, type, bounds,
 * default, doc) and the checks that turn their text into usable values. */
#ifndef SMTPSINK_CONFIG_H
#define SMTPSINK_CONFIG_H

#include "config.h"

struct smtpsink_config {
	/* as given */
	char *port;            /* text: cfg's CFG_INT cannot say "required" */
	char *ledger;          /* NULL: no ledger; "-": stdout */
	char *ready_file;
	char *drop_after_data; /* text: a probability, not CFG_SECONDS */
	int drop_after_data_first;
	int seed;
	char *maildir;
	int max_message_size;
	int max_line_length;
	int max_recipients;
	int max_connections;
	double idle_timeout;
	int log_level; /* enum log_level */
	char *config;

	/* filled by smtpsink_config_check */
	int port_num;
	double drop_prob;
};

extern const struct cfg_spec smtpsink_cfg_spec;

/* Validate what cfg_load cannot (required --port, the probability); 0 or -1
 * with one line in err naming the flag and what it accepts. */
int smtpsink_config_check(struct smtpsink_config *cfg, char *err, size_t errlen);

#endif
