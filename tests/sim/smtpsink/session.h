/* session.h: one SMTP conversation on one connected, blocking socket, from
 * the 220 greeting to QUIT, EOF, a timeout or a deliberate drop. */
#ifndef SMTPSINK_SESSION_H
#define SMTPSINK_SESSION_H

#include "fault.h"
#include "ledger.h"
#include "smtpsink_config.h"

#include <stdint.h>

/* What every session shares; all of it outlives the sessions. */
struct session_env {
	const struct smtpsink_config *cfg;
	struct ledger *ledger;
	struct fault *fault;
};

/* Run the conversation; fd stays open (the caller closes it). conn names
 * the connection in the log and the ledger; peer is for the log. */
void session_run(const struct session_env *env, int fd, uint64_t conn, const char *peer);

/* Tell a client we will not serve it (421) without reading anything. */
void session_refuse(int fd, const char *why);

#endif
