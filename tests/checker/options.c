/* options.c: the checker's command line (README.md in this directory). */
#include "options.h"

#include <getopt.h>
#include <string.h>
#include <strings.h>

static const char *const names[CHECK_COUNT] = {
	[CHECK_I1] = "I1",
	[CHECK_I2] = "I2",
	[CHECK_I3] = "I3",
	[CHECK_I4] = "I4",
	[CHECK_I6] = "I6",
	[CHECK_I7] = "I7",
	[CHECK_I8] = "I8",
	[CHECK_HAVE_ROWS] = "charges-have-rows",
	[CHECK_SETTLED] = "settled",
};

const char *check_name(enum check_id id)
{
	return id < CHECK_COUNT ? names[id] : "?";
}

void options_usage(FILE *out)
{
	fputs("usage: checker --db CONNINFO --gateway-ledger URL|FILE [--smtp-ledger FILE]\n"
	      "               [--expect-settled] [--allow-unknown] [--only I1,I2,...]\n"
	      "\n"
	      "Asserts PROTOCOL.md's invariants against the database and the test peers'\n"
	      "ledgers; prints TAP, one line per check; exits 0 when all hold, 1 when one\n"
	      "fails, 2 when it cannot check (usage, database, unreadable ledger).\n"
	      "\n"
	      "  --db CONNINFO            libpq conninfo or URI of the database to check\n"
	      "  --gateway-ledger SRC     http://HOST:PORT/_ledger, or a file holding its JSON\n"
	      "                           (needed by I1, I2, I4 and charges-have-rows)\n"
	      "  --smtp-ledger FILE       the SMTP sink's JSONL ledger; without it I7 is skipped\n"
	      "  --expect-settled         also check that everything settled (check 'settled')\n"
	      "  --allow-unknown          I2: a charge whose row is still unknown/dead (to be looked\n"
	      "                           up) may lack its payment row for now\n"
	      "  --only LIST              run only these checks (comma-separated):\n"
	      "                           I1 I2 I3 I4 I6 I7 I8 charges-have-rows settled\n"
	      "  --help                   this text\n",
	      out);
}

/* One comma-separated --only list, added to `want`. */
static int parse_only(const char *list, bool want[CHECK_COUNT], char *err, size_t errlen)
{
	const char *p = list;
	for (;;) {
		size_t len = strcspn(p, ",");
		bool found = false;
		for (int i = 0; i < CHECK_COUNT; i++) {
			if (len > 0 && strlen(names[i]) == len && strncasecmp(p, names[i], len) == 0) {
				want[i] = true;
				found = true;
			}
		}
		if (!found) {
			snprintf(err, errlen,
				 "--only: unknown check '%.*s'; expected a comma-separated list of "
				 "I1 I2 I3 I4 I6 I7 I8 charges-have-rows settled",
				 (int)(len > 64 ? 64 : len), p);
			return -1;
		}
		if (p[len] == '\0')
			return 0;
		p += len + 1;
	}
}

enum options_result options_parse(struct checker_options *o, int argc, char **argv, char *err,
				  size_t errlen)
{
	enum { OPT_DB = 1, OPT_GATEWAY, OPT_SMTP, OPT_SETTLED, OPT_ONLY, OPT_HELP, OPT_UNKNOWN };
	static const struct option longopts[] = {
		{"db", required_argument, NULL, OPT_DB},
		{"gateway-ledger", required_argument, NULL, OPT_GATEWAY},
		{"smtp-ledger", required_argument, NULL, OPT_SMTP},
		{"expect-settled", no_argument, NULL, OPT_SETTLED},
		{"allow-unknown", no_argument, NULL, OPT_UNKNOWN},
		{"only", required_argument, NULL, OPT_ONLY},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	bool only[CHECK_COUNT] = {false};
	bool have_only = false;

	memset(o, 0, sizeof(*o));
	opterr = 0; /* our own messages, naming the option */
	optind = 1;
	for (;;) {
		int c = getopt_long(argc, argv, "", longopts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case OPT_DB:
			o->db = optarg;
			break;
		case OPT_GATEWAY:
			o->gateway_ledger = optarg;
			break;
		case OPT_SMTP:
			o->smtp_ledger = optarg;
			break;
		case OPT_SETTLED:
			o->expect_settled = true;
			break;
		case OPT_UNKNOWN:
			o->allow_unknown = true;
			break;
		case OPT_ONLY:
			if (parse_only(optarg, only, err, errlen) != 0)
				return OPTIONS_ERROR;
			have_only = true;
			break;
		case OPT_HELP:
			return OPTIONS_HELP;
		default:
			if (optopt)
				snprintf(err, errlen, "option '%s' needs a value",
					 argv[optind - 1]);
			else
				snprintf(err, errlen, "unknown option '%s'", argv[optind - 1]);
			return OPTIONS_ERROR;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
		return OPTIONS_ERROR;
	}
	if (!o->db) {
		snprintf(err, errlen, "--db is required (a libpq conninfo or URI)");
		return OPTIONS_ERROR;
	}

	for (int i = 0; i < CHECK_COUNT; i++)
		o->selected[i] = have_only ? only[i] : true;
	if (!have_only)
		o->selected[CHECK_SETTLED] = o->expect_settled;
	/* Naming a check whose input is missing would print nothing for it:
	 * refuse, so a typo in a test cannot silently check less. */
	if (have_only && only[CHECK_SETTLED] && !o->expect_settled) {
		snprintf(err, errlen, "--only settled needs --expect-settled");
		return OPTIONS_ERROR;
	}
	if (have_only && only[CHECK_I7] && !o->smtp_ledger) {
		snprintf(err, errlen, "--only I7 needs --smtp-ledger");
		return OPTIONS_ERROR;
	}
	if (!o->gateway_ledger && (o->selected[CHECK_I1] || o->selected[CHECK_I2] ||
				   o->selected[CHECK_I4] || o->selected[CHECK_HAVE_ROWS])) {
		snprintf(err, errlen,
			 "--gateway-ledger is required (I1, I2, I4 and charges-have-rows read it; "
			 "--only can leave them out)");
		return OPTIONS_ERROR;
	}
	return OPTIONS_OK;
}
