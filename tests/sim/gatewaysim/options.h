/* options.h: gatewaysim's command line, one table: flag, value, doc and
 * parser (the same table prints --help). --fault repeats, which the shared
 * libcommon/config module does not do, hence a table of our own. */
#ifndef GWS_OPTIONS_H
#define GWS_OPTIONS_H

#include "faults.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct options {
	int port; /* -1 until given */
	int latency_ms;
	uint64_t seed;
	bool seed_given;
	char *key_prefix; /* owned */
	char *anet_login, *anet_key; /* owned: Authorize.Net credentials accepted */
	char *ready_file; /* owned, or NULL */
	bool verbose;
	int max_connections;
	struct fault_rules faults; /* one rule per --fault, in order */
};

enum options_result { OPTIONS_OK, OPTIONS_HELP, OPTIONS_VERSION, OPTIONS_ERROR };

/* Fill *o (zeroed by the caller). On OPTIONS_ERROR, err holds one line
 * naming the option and what it accepts; *o must still be freed. */
enum options_result options_parse(struct options *o, int argc, char *const argv[], char *err,
				  size_t errlen);
void options_print_help(FILE *out);
void options_free(struct options *o);

#endif
