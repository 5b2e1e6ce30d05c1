/* fuzz_smtpsink.c: the SMTP sink's side of a conversation
 * (tests/sim/smtpsink: session.c's command parsing and DATA reading,
 * lineio.c's line reader, message.c's header parsing, ledger.c's JSON
 * line), on what a client sends.
 *
 * Input: the client's bytes, whole: written into one end of a socketpair,
 * which is then shut for writing, and session_run reads the other end to
 * EOF (never waits: the input is all there). The session's end does not
 * block on send either: replies that no longer fit end the session, as a
 * client that stopped reading would.
 *
 * Properties: every reply line the sink writes is "DDD" (a code from 200 to
 * 599) then ' ' or '-', ending in CRLF, the first one 220; no crash, no leak.
 *
 * SMTP replies to the relay are read by libcurl, not by our code: there is
 * no harness for them (docs/fuzzing.md). */
#include "fuzz.h"

#include "../sim/smtpsink/session.h"
#include "log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* Each reply line well-formed, the first a greeting. */
static void check_replies(const char *r, size_t n)
{
	FUZZ_CHECK(n >= 4 && memcmp(r, "220 ", 4) == 0, "no 220 greeting first");
	for (const char *end = r + n; r < end;) {
		const char *crlf = memmem(r, (size_t)(end - r), "\r\n", 2);
		FUZZ_CHECK(crlf, "a reply line without CRLF");
		FUZZ_CHECK(crlf - r >= 4 && r[0] >= '2' && r[0] <= '5' && r[1] >= '0' && r[1] <= '9' &&
				   r[2] >= '0' && r[2] <= '9' && (r[3] == ' ' || r[3] == '-'),
			   "a reply line that is not DDD then ' ' or '-'");
		r = crlf + 2;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	if (!quiet) {
		log_init("smtpsink", LOG_LEVEL_COUNT); /* silence: inputs are not events */
		quiet = true;
	}
	if (size > 64 * 1024)
		return 0; /* more than a socket buffer holds before the session reads */
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return 0;
	int big = 1 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	if (size && write(sv[1], data, size) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	shutdown(sv[1], SHUT_WR);

	/* small limits, so that inputs of a few KB reach them */
	struct smtpsink_config cfg = {.max_message_size = 2048, .max_line_length = 200,
				      .max_recipients = 3};
	struct ledger ledger;
	char err[128];
	struct fault fault;
	if (ledger_open(&ledger, "/dev/null", NULL, err, sizeof(err)) == 0) {
		fault_init(&fault, 0.25, 0, 1);
		struct session_env env = {.cfg = &cfg, .ledger = &ledger, .fault = &fault};
		session_run(&env, sv[0], 1, "fuzz");
		fault_destroy(&fault);
		ledger_close(&ledger);
		shutdown(sv[0], SHUT_WR); /* the replies end here */

		/* every reply, in a buffer grown as needed (a large one per input
		 * costs an mmap and munmap each time under ASan) */
		size_t cap = 16384, n = 0;
		char *replies = malloc(cap);
		for (ssize_t r; replies && (r = read(sv[1], replies + n, cap - n)) > 0;) {
			n += (size_t)r;
			if (n == cap) {
				char *more = realloc(replies, cap *= 2);
				if (!more)
					free(replies);
				replies = more;
			}
		}
		if (replies)
			check_replies(replies, n);
		free(replies);
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}
