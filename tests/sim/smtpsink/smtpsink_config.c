/* smtpsink_config.c: the SMTP sink's option table and its extra checks. */
#include "smtpsink_config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define OFF(f) offsetof(struct smtpsink_config, f)

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

/* No environment variables: a test peer is started by a script that names
 * everything it wants, on the command line or in a --config file. */
static const struct cfg_option options[] = {
	{"--port", "port", NULL, CFG_STRING, OFF(port), 0, 0, NULL, NULL, "N",
	 "TCP port on 127.0.0.1 (required); 0: a free one, see --ready-file", 0},
	{"--ledger", "ledger", NULL, CFG_STRING, OFF(ledger), 0, 0, NULL, NULL, "FILE",
	 "one JSON line per message (truncated at start; '-': stdout; default none)", 0},
	{"--ready-file", "ready_file", NULL, CFG_STRING, OFF(ready_file), 0, 0, NULL, NULL, "PATH",
	 "once listening, write the port and a newline here (atomically)", 0},
	{"--drop-after-data", "drop_after_data", NULL, CFG_STRING, OFF(drop_after_data), 0, 0, NULL, "0",
	 "PROB",
	 "probability (0..1) of closing after a whole message instead of the 250", 0},
	{"--drop-after-data-first", "drop_after_data_first", NULL, CFG_INT, OFF(drop_after_data_first), 0,
	 1000000000, NULL, "0", "N",
	 "drop that way the messages with seq 1..N, whatever the draw says", 0},
	{"--seed", "seed", NULL, CFG_INT, OFF(seed), 0, 2147483647, NULL, "1", "S",
	 "seed of the --drop-after-data draws (same seed, same order: same drops)", 0},
	{"--maildir", "maildir", NULL, CFG_STRING, OFF(maildir), 0, 0, NULL, NULL, "DIR",
	 "also keep each message received as DIR/SEQ.eml (DIR created if missing)", 0},
	{"--max-message-size", "max_message_size", NULL, CFG_INT, OFF(max_message_size), 1024, 1073741824,
	 NULL, "1048576", "BYTES",
	 "bigger messages get 552 and are not recorded (advertised as SIZE)", 0},
	{"--max-line-length", "max_line_length", NULL, CFG_INT, OFF(max_line_length), 80, 1048576, NULL,
	 "1000", "BYTES",
	 "longest message line with CRLF (RFC 5321); longer: 500, not recorded", 0},
	{"--max-recipients", "max_recipients", NULL, CFG_INT, OFF(max_recipients), 1, 100000, NULL, "100",
	 "N", "recipients per message; more RCPT TO get 452", 0},
	{"--max-connections", "max_connections", NULL, CFG_INT, OFF(max_connections), 1, 100000, NULL,
	 "1024", "N", "connections at once; the next ones get 421 and are closed", 0},
	{"--idle-timeout", "idle_timeout", NULL, CFG_SECONDS, OFF(idle_timeout), 0.1, 86400, NULL, "300",
	 "SECONDS", "close with 421 a connection silent (or not reading) this long", 0},
	{"--config", NULL, NULL, CFG_STRING, OFF(config), 0, 0, NULL, NULL, "FILE",
	 "file of 'key = value' lines (keys as listed; optional [smtpsink] section)",
	 CFG_CLI_ONLY},
	{"--log-level", "log_level", NULL, CFG_ENUM, OFF(log_level), 0, 0, log_levels, "info",
	 "LEVEL", "debug (each command), info (connections, messages), warn, error", 0},
};

const struct cfg_spec smtpsink_cfg_spec = {
	.program = "smtpsink",
	.synopsis =
		"Usage: smtpsink --port N [--ledger FILE] [--ready-file PATH]\n"
		"                [--drop-after-data PROB] [--drop-after-data-first N] [--seed S]\n"
		"                [--maildir DIR] [--max-message-size BYTES] ...\n"
		"\n"
		"A minimal SMTP server for tests, on 127.0.0.1 only. It speaks EHLO/HELO, MAIL\n"
		"FROM, RCPT TO, DATA, RSET, NOOP, VRFY, HELP and QUIT (with 8BITMIME, SIZE and\n"
		"PIPELINING), accepts every sender and recipient, keeps connections open for\n"
		"several messages, and delivers nothing: each message received up to its\n"
		"terminating '.' becomes one ledger line\n"
		"  {\"seq\", \"t\", \"conn\", \"mail_from\", \"rcpt\": [...], \"message_id\",\n"
		"   \"subject\", \"to\", \"size\", \"acknowledged\"}\n"
		"t is unix seconds at the final '.'; conn numbers connections from 1;\n"
		"mail_from is \"\" for <>; message_id, subject and to are the headers\n"
		"(names in any case, first occurrence, unfolded, trimmed, not MIME-decoded;\n"
		"null when absent); size counts the message after dot-unstuffing, with\n"
		"CRLF line ends. acknowledged is false when the sink closed the connection\n"
		"instead of answering 250 (--drop-after-data*, or the 250 could not be\n"
		"written), true once the 250 was written; the line is written before the\n"
		"close, or after the 250.\n",
	.epilog = "seq numbers messages in the order they were completely received; with\n"
		  "concurrent connections, lines may reach the ledger slightly out of seq order.\n"
		  "Exit status: 0 stopped by SIGTERM/SIGINT, 1 runtime failure (cannot listen,\n"
		  "cannot open the ledger), 2 bad usage.\n"
		  "Docs: tests/sim/README.md.\n",
	.options = options,
	.count = sizeof(options) / sizeof(options[0]),
	.config_flag = "--config",
	.other_sections = NULL,
};

int smtpsink_config_check(struct smtpsink_config *cfg, char *err, size_t errlen)
{
	char *end;
	if (!cfg->port) {
		snprintf(err, errlen, "--port is required (0 picks a free port)");
		return -1;
	}
	errno = 0;
	long port = strtol(cfg->port, &end, 10);
	if (cfg->port[0] < '0' || cfg->port[0] > '9' || *end != '\0' || errno == ERANGE ||
	    port < 0 || port > 65535) {
		snprintf(err, errlen, "--port: '%s' is not a port; expected an integer from 0 to "
			 "65535 (0: pick a free port)", cfg->port);
		return -1;
	}
	cfg->port_num = (int)port;

	const char *p = cfg->drop_after_data;
	errno = 0;
	double prob = strtod(p, &end);
	/* strtod takes blanks, "nan" and "inf": none is a probability */
	if (!((p[0] >= '0' && p[0] <= '9') || p[0] == '.') || *end != '\0' || errno == ERANGE ||
	    !isfinite(prob) || prob < 0 || prob > 1) {
		snprintf(err, errlen, "--drop-after-data: '%s' is not a probability; expected a "
			 "number from 0 to 1", p);
		return -1;
	}
	cfg->drop_prob = prob;
	if (cfg->ledger && !cfg->ledger[0]) {
		snprintf(err, errlen, "--ledger: empty path (use '-' for stdout)");
		return -1;
	}
	if (cfg->ready_file && !cfg->ready_file[0]) {
		snprintf(err, errlen, "--ready-file: empty path");
		return -1;
	}
	if (cfg->maildir && !cfg->maildir[0]) {
		snprintf(err, errlen, "--maildir: empty path");
		return -1;
	}
	if (cfg->max_line_length > cfg->max_message_size) {
		snprintf(err, errlen, "--max-line-length %d exceeds --max-message-size %d",
			 cfg->max_line_length, cfg->max_message_size);
		return -1;
	}
	return 0;
}
