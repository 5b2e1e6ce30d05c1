/* session.c: the SMTP server side of one connection (RFC 5321 subset). */
#include "session.h"

#include "lineio.h"
#include "message.h"
#include "sinklog.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* RFC 5321 4.5.3.1.4 says 512 with CRLF, extensions may add to it: be
 * generous with commands, strict with what the relay could get wrong. */
#define CMD_MAX 2046
/* 4.5.3.1.3: a path is at most 256 octets with its angle brackets */
#define ADDR_MAX 254
#define HOSTNAME "localhost"

struct session {
	const struct session_env *env;
	uint64_t conn;
	struct lineio io;
	size_t data_max; /* longest message line without CRLF */
	char *line;
	size_t line_cap;
	bool greeted;
	char *mail_from; /* non-NULL: a transaction is open */
	char **rcpt;
	size_t nrcpt;
	char *msg; /* the message being received, unstuffed, CRLF ends */
	size_t msg_len, msg_cap;
	uint64_t accepted; /* messages answered 250 on this connection */
	const char *why;   /* why the conversation ended, for the log */
};

/* Close with a reason, or carry on. */
enum step { STEP_ON = 0, STEP_CLOSE = -1 };

static void reset_tx(struct session *s)
{
	free(s->mail_from);
	s->mail_from = NULL;
	for (size_t i = 0; i < s->nrcpt; i++)
		free(s->rcpt[i]);
	s->nrcpt = 0;
}

static enum step reply(struct session *s, const char *text)
{
	if (lio_reply(&s->io, "%s", text) != 0) {
		s->why = errno == EAGAIN || errno == EWOULDBLOCK ? "client stopped reading"
								 : "cannot write";
		return STEP_CLOSE;
	}
	return STEP_ON;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* "FROM:<addr> params" (prefix "FROM:"): the address (owned) and where
 * the parameters start. A blank after the colon is tolerated (a common
 * client error). 0, or -1 with the 501 text in *why. */
static int parse_path(const char *arg, const char *prefix, char **addr, const char **params,
		      const char **why)
{
	size_t plen = strlen(prefix);
	if (strncasecmp(arg, prefix, plen) != 0) {
		*why = "501 Syntax error in parameters (expected FROM:<address> or TO:<address>)";
		return -1;
	}
	const char *p = arg + plen;
	while (is_blank(*p))
		p++;
	const char *close = *p == '<' ? strchr(p, '>') : NULL;
	if (!close) {
		*why = "501 Syntax error: the address must be in angle brackets";
		return -1;
	}
	size_t n = (size_t)(close - p - 1);
	if (n > ADDR_MAX) {
		*why = "501 Path too long (RFC 5321: 256 octets)";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[1 + i];
		if (c < 0x20 || c == 0x7f || c == ' ') {
			*why = "501 Syntax error: blank or control character in the address";
			return -1;
		}
	}
	if (close[1] != '\0' && !is_blank(close[1])) {
		*why = "501 Syntax error after the address";
		return -1;
	}
	*addr = utf8_sanitize(p + 1, n);
	if (!*addr) {
		*why = "451 Out of memory";
		return -1;
	}
	*params = close + 1;
	return 0;
}

/* Next blank-separated token of *p, NUL-terminated in place. */
static char *next_token(char **p)
{
	char *t = *p;
	while (is_blank(*t))
		t++;
	if (!*t)
		return NULL;
	char *e = t;
	while (*e && !is_blank(*e))
		e++;
	if (*e)
		*e++ = '\0';
	*p = e;
	return t;
}

static enum step do_ehlo(struct session *s, const char *arg, bool extended)
{
	if (!*arg)
		return reply(s, extended ? "501 Syntax: EHLO hostname" : "501 Syntax: HELO hostname");
	reset_tx(s); /* RFC 5321 4.1.4: EHLO implies RSET */
	s->greeted = true;
	if (!extended)
		return reply(s, "250 " HOSTNAME);
	char buf[256];
	/* only what session_run really handles: SIZE is checked at MAIL and
	 * at the end of DATA, 8BITMIME is free (we keep bytes as they come),
	 * PIPELINING holds because replies follow commands in order and no
	 * input is thrown away between them */
	snprintf(buf, sizeof(buf),
		 "250-" HOSTNAME " greets you\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
		 "250-SIZE %d\r\n250 HELP\r\n",
		 s->env->cfg->max_message_size);
	if (lio_write(&s->io, buf, strlen(buf)) != 0) {
		s->why = "cannot write";
		return STEP_CLOSE;
	}
	return STEP_ON;
}

static enum step do_mail(struct session *s, char *arg)
{
	if (!s->greeted)
		return reply(s, "503 Send EHLO or HELO first");
	if (s->mail_from)
		return reply(s, "503 Nested MAIL command (send RSET first)");
	char *addr;
	const char *params, *why;
	if (parse_path(arg, "FROM:", &addr, &params, &why) != 0)
		return reply(s, why);
	char *p = (char *)params;
	for (char *t; (t = next_token(&p));) {
		if (strncasecmp(t, "SIZE=", 5) == 0) {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(t + 5, &end, 10);
			if (t[5] < '0' || t[5] > '9' || *end) {
				free(addr);
				return reply(s, "501 Syntax error in SIZE");
			}
			if (errno == ERANGE || n > (unsigned long long)s->env->cfg->max_message_size) {
				free(addr);
				return reply(s, "552 Message size exceeds fixed maximum message size");
			}
		} else if (strcasecmp(t, "BODY=7BIT") == 0 || strcasecmp(t, "BODY=8BITMIME") == 0) {
			/* nothing to do: bytes are kept as they come */
		} else {
			free(addr);
			return reply(s, "555 MAIL FROM parameter not recognized or not implemented");
		}
	}
	s->mail_from = addr;
	return reply(s, "250 OK");
}

static enum step do_rcpt(struct session *s, char *arg)
{
	if (!s->mail_from)
		return reply(s, "503 Send MAIL first");
	char *addr;
	const char *params, *why;
	if (parse_path(arg, "TO:", &addr, &params, &why) != 0)
		return reply(s, why);
	if (!*addr) {
		free(addr);
		return reply(s, "501 Empty recipient");
	}
	char *p = (char *)params;
	if (next_token(&p)) {
		free(addr);
		return reply(s, "555 RCPT TO parameters not recognized or not implemented");
	}
	if (s->nrcpt >= (size_t)s->env->cfg->max_recipients) {
		free(addr);
		return reply(s, "452 Too many recipients");
	}
	s->rcpt[s->nrcpt++] = addr;
	return reply(s, "250 OK");
}

/* Append one unstuffed line and CRLF; false once past the size bound. */
static bool msg_append(struct session *s, const char *line, size_t n)
{
	size_t max = (size_t)s->env->cfg->max_message_size;
	if (s->msg_len > max || n + 2 > max - s->msg_len)
		return false;
	if (s->msg_len + n + 2 > s->msg_cap) {
		size_t cap = s->msg_cap ? s->msg_cap : 4096;
		while (cap < s->msg_len + n + 2)
			cap *= 2;
		if (cap > max)
			cap = max;
		char *m = realloc(s->msg, cap);
		if (!m)
			return false;
		s->msg = m;
		s->msg_cap = cap;
	}
	memcpy(s->msg + s->msg_len, line, n);
	memcpy(s->msg + s->msg_len + n, "\r\n", 2);
	s->msg_len += n + 2;
	return true;
}

/* A whole message arrived: number it, keep it, then answer 250 or drop. */
static enum step complete(struct session *s, const struct timespec *t)
{
	const struct session_env *env = s->env;
	struct msg_headers h;
	if (msg_headers_parse(s->msg, s->msg_len, &h) != 0) {
		reset_tx(s);
		return reply(s, "451 Out of memory, try again later");
	}
	uint64_t seq = ledger_next_seq(env->ledger);
	unsigned long long sq = (unsigned long long)seq, cn = (unsigned long long)s->conn;
	ledger_store_raw(env->ledger, seq, s->msg, s->msg_len);
	struct ledger_entry e = {
		.seq = seq,
		.t = (double)t->tv_sec + (double)t->tv_nsec / 1e9,
		.conn = s->conn,
		.mail_from = s->mail_from,
		.rcpt = s->rcpt,
		.nrcpt = s->nrcpt,
		.headers = &h,
		.size = s->msg_len,
		.acknowledged = false,
	};
	const char *mid = h.message_id ? h.message_id : "(none)";
	enum step step;
	if (fault_drop(env->fault, seq)) {
		/* written before the close, so a client that sees the close can
		 * already find the line */
		ledger_append(env->ledger, &e);
		slog_info("conn=%llu seq=%llu: message %s (%zu bytes, %zu rcpt) received; "
			  "dropping the connection instead of answering 250 (fault)",
			  cn, sq, mid, s->msg_len, s->nrcpt);
		s->why = "dropped after DATA (fault)";
		step = STEP_CLOSE;
	} else {
		char ok[64];
		snprintf(ok, sizeof(ok), "250 OK: message %llu accepted", sq);
		step = reply(s, ok);
		e.acknowledged = step == STEP_ON;
		ledger_append(env->ledger, &e);
		if (step == STEP_ON)
			s->accepted++;
		slog_info("conn=%llu seq=%llu: message %s (%zu bytes, %zu rcpt) %s", cn, sq, mid,
			  s->msg_len, s->nrcpt,
			  step == STEP_ON ? "accepted" : "received, but the 250 could not be sent");
	}
	msg_headers_free(&h);
	reset_tx(s);
	return step;
}

/* After 354: lines up to ".", unstuffed; refusals only once the whole
 * message is read, since the client cannot be stopped mid-DATA. */
static enum step receive_data(struct session *s)
{
	bool too_big = false, too_long = false;
	s->msg_len = 0;
	for (;;) {
		size_t n;
		bool over;
		enum lio_result r = lio_read_line(&s->io, s->line, s->data_max + 2, &n, &over);
		if (r == LIO_TIMEOUT) {
			slog_info("conn=%llu: idle timeout in DATA: message not recorded",
				  (unsigned long long)s->conn);
			reply(s, "421 " HOSTNAME " Idle timeout, closing connection");
			s->why = "idle timeout in DATA";
			return STEP_CLOSE;
		}
		if (r != LIO_LINE) {
			slog_info("conn=%llu: connection %s in DATA after %zu bytes: message not "
				  "recorded", (unsigned long long)s->conn,
				  r == LIO_EOF ? "closed" : "failed", s->msg_len);
			s->why = r == LIO_EOF ? "client closed in DATA" : "read failed in DATA";
			return STEP_CLOSE;
		}
		if (over || n > s->data_max)
			too_long = true;
		if (!over && n == 1 && s->line[0] == '.')
			break;
		/* RFC 5321 4.5.2: a leading '.' was added by the client; drop it */
		const char *text = s->line[0] == '.' ? s->line + 1 : s->line;
		size_t tn = s->line[0] == '.' ? n - 1 : n;
		if (!too_big && !too_long && !msg_append(s, text, tn))
			too_big = true;
	}
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	if (too_long) {
		slog_info("conn=%llu: message refused: a line exceeds %d bytes",
			  (unsigned long long)s->conn, s->env->cfg->max_line_length);
		reset_tx(s);
		char why[96];
		snprintf(why, sizeof(why), "500 Line too long (limit %d bytes with CRLF)",
			 s->env->cfg->max_line_length);
		return reply(s, why);
	}
	if (too_big) {
		slog_info("conn=%llu: message refused: larger than %d bytes",
			  (unsigned long long)s->conn, s->env->cfg->max_message_size);
		reset_tx(s);
		return reply(s, "552 Message size exceeds fixed maximum message size");
	}
	return complete(s, &t);
}

static enum step do_data(struct session *s, const char *arg)
{
	if (*arg)
		return reply(s, "501 DATA takes no parameters");
	if (!s->mail_from)
		return reply(s, "503 Send MAIL first");
	if (s->nrcpt == 0)
		return reply(s, "503 Send RCPT first");
	if (reply(s, "354 End data with <CR><LF>.<CR><LF>") != STEP_ON)
		return STEP_CLOSE;
	return receive_data(s);
}

static enum step dispatch(struct session *s, char *line)
{
	char *arg = line;
	while (*arg && !is_blank(*arg))
		arg++;
	size_t vlen = (size_t)(arg - line);
	while (is_blank(*arg))
		arg++;
	/* trailing blanks are not part of any argument */
	size_t alen = strlen(arg);
	while (alen > 0 && is_blank(arg[alen - 1]))
		arg[--alen] = '\0';
#define VERB(v) (vlen == sizeof(v) - 1 && strncasecmp(line, v, vlen) == 0)
	if (VERB("EHLO"))
		return do_ehlo(s, arg, true);
	if (VERB("HELO"))
		return do_ehlo(s, arg, false);
	if (VERB("MAIL"))
		return do_mail(s, arg);
	if (VERB("RCPT"))
		return do_rcpt(s, arg);
	if (VERB("DATA"))
		return do_data(s, arg);
	if (VERB("RSET")) {
		reset_tx(s);
		return reply(s, "250 OK");
	}
	if (VERB("NOOP"))
		return reply(s, "250 OK");
	if (VERB("QUIT")) {
		reply(s, "221 " HOSTNAME " Bye");
		s->why = "client quit";
		return STEP_CLOSE;
	}
	if (VERB("VRFY"))
		return reply(s, "252 Cannot VRFY user, but will accept the message");
	if (VERB("HELP"))
		return reply(s, "214 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT");
	if (VERB("EXPN") || VERB("BDAT") || VERB("STARTTLS") || VERB("AUTH") || VERB("ETRN") ||
	    VERB("TURN"))
		return reply(s, "502 Command not implemented");
#undef VERB
	return reply(s, "500 Command unrecognized");
}

void session_run(const struct session_env *env, int fd, uint64_t conn, const char *peer)
{
	struct session s = {.env = env, .conn = conn};
	lio_init(&s.io, fd);
	unsigned long long cn = (unsigned long long)conn;
	s.data_max = (size_t)env->cfg->max_line_length - 2;
	s.line_cap = (s.data_max > CMD_MAX ? s.data_max : CMD_MAX) + 2;
	s.line = malloc(s.line_cap);
	s.rcpt = calloc((size_t)env->cfg->max_recipients, sizeof(*s.rcpt));
	if (!s.line || !s.rcpt) {
		slog_error("conn=%llu: out of memory", cn);
		session_refuse(fd, "out of memory");
		goto done;
	}
	slog_info("conn=%llu: connected from %s", cn, peer);
	if (reply(&s, "220 " HOSTNAME " ESMTP smtpsink ready") != STEP_ON)
		goto end;
	for (;;) {
		size_t n;
		bool over;
		enum lio_result r = lio_read_line(&s.io, s.line, CMD_MAX + 2, &n, &over);
		if (r == LIO_TIMEOUT) {
			reply(&s, "421 " HOSTNAME " Idle timeout, closing connection");
			s.why = "idle timeout";
			break;
		}
		if (r == LIO_EOF) {
			/* also how a SIGTERM's shutdown() reaches this thread */
			s.why = "connection closed";
			break;
		}
		if (r != LIO_LINE) {
			s.why = "read failed";
			break;
		}
		if (over || n > CMD_MAX) {
			if (reply(&s, "500 Line too long") != STEP_ON)
				break;
			continue;
		}
		slog_debug("conn=%llu: < %s", cn, s.line);
		if (dispatch(&s, s.line) != STEP_ON)
			break;
	}
end:
	slog_info("conn=%llu: %s; %llu message(s) accepted on this connection", cn,
		  s.why ? s.why : "closed", (unsigned long long)s.accepted);
done:
	reset_tx(&s);
	free(s.rcpt);
	free(s.line);
	free(s.msg);
}

void session_refuse(int fd, const char *why)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "421 " HOSTNAME " %s, try again later\r\n", why);
	if (n > 0 && (size_t)n < sizeof(line))
		(void)!send(fd, line, (size_t)n, MSG_NOSIGNAL);
}
