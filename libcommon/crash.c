/* crash.c: OUTBOX_CRASH_AT fault injection. */
#include "crash.h"

#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
	char name[128];
	long target; /* the pass that kills; 0 = disarmed */
	long passes;
} armed;

int crash_init(const char *const *known, const char *spec, char *err, size_t errlen)
{
	armed.target = 0;
	armed.passes = 0;
	if (!spec || !*spec)
		return 0;

	const char *colon = strchr(spec, ':');
	size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
	long n = 1;
	if (colon) {
		char *end;
		errno = 0;
		n = strtol(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || errno || n < 1) {
			snprintf(err, errlen,
				 "OUTBOX_CRASH_AT=%s: the pass count after ':' must be a positive integer",
				 spec);
			return -1;
		}
	}
	if (len >= sizeof(armed.name)) {
		snprintf(err, errlen, "OUTBOX_CRASH_AT: name too long");
		return -1;
	}
	for (const char *const *k = known; *k; k++) {
		if (strlen(*k) == len && strncmp(*k, spec, len) == 0) {
			memcpy(armed.name, spec, len);
			armed.name[len] = '\0';
			armed.target = n;
			return 0;
		}
	}
	snprintf(err, errlen, "OUTBOX_CRASH_AT=%s: no such crash point (see --list-crash-points)",
		 spec);
	return -1;
}

bool crash_armed(const char *name)
{
	return armed.target && strcmp(name, armed.name) == 0;
}

void crash_point(const char *name)
{
	if (!armed.target || strcmp(name, armed.name) != 0)
		return;
	if (++armed.passes < armed.target)
		return;
	log_warn("crash point %s reached (pass %ld): killing myself with SIGKILL", name,
		 armed.passes);
	kill(getpid(), SIGKILL);
	abort(); /* not reached */
}

void crash_list(const char *const *known, FILE *out)
{
	for (const char *const *k = known; *k; k++)
		fprintf(out, "%s\n", *k);
}
