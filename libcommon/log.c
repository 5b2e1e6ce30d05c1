/* log.c: line-oriented event log on stderr. */
#include "log.h"

#include "json_escape.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[LOG_LEVEL_COUNT] = {"debug", "info", "warn", "error"};

static struct {
	const char *program;
	enum log_level min;
	enum log_format format;
	FILE *stream;
	uint64_t counts[LOG_LEVEL_COUNT];
} lg = {"chargeguard", LOG_LEVEL_INFO, LOG_FORMAT_TEXT, NULL, {0}};

static const char *const format_names[] = {"text", "json"};

void log_init(const char *program, enum log_level min)
{
	lg.program = program;
	lg.min = min;
}

void log_set_level(enum log_level min) { lg.min = min; }

void log_set_stream(FILE *stream) { lg.stream = stream; }

void log_set_format(enum log_format format) { lg.format = format; }

int log_format_parse(const char *name)
{
	for (int i = 0; i <= LOG_FORMAT_JSON; i++)
		if (strcmp(name, format_names[i]) == 0)
			return i;
	return -1;
}

uint64_t log_count(enum log_level level)
{
	return (unsigned)level < LOG_LEVEL_COUNT ? lg.counts[level] : 0;
}

int log_level_parse(const char *name)
{
	for (int i = 0; i < LOG_LEVEL_COUNT; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

const char *log_level_name(enum log_level level)
{
	return (unsigned)level < LOG_LEVEL_COUNT ? level_names[level] : "?";
}

/* Append printf output to buf at *len, never past cap; *len saturates. */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	if (*len >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len = (size_t)n >= cap - *len ? cap : *len + (size_t)n;
}

/* One event must stay one line: control characters (a newline inside a
 * server message, or injected through customer data) become '?'. */
static void sanitize(char *s, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
}

static void timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

/* The fields of what the line is about, those that are set: " invoice=42"
 * in text, ",\"invoice\":42" in JSON (the claim token escaped there). */
static void append_ref(char *line, size_t cap, size_t *len, const struct log_ref *ref, bool json)
{
	if (!ref)
		return;
	if (ref->invoice)
		append(line, cap, len, json ? ",\"invoice\":%lld" : " invoice=%lld",
		       (long long)ref->invoice);
	if (ref->row)
		append(line, cap, len, json ? ",\"row\":%lld" : " row=%lld", (long long)ref->row);
	if (ref->attempt)
		append(line, cap, len, json ? ",\"attempt\":%d" : " attempt=%d", ref->attempt);
	if (ref->claim && json) {
		char esc[128];
		bool truncated;
		json_escape(esc, sizeof(esc), ref->claim, &truncated);
		append(line, cap, len, ",\"claim\":\"%s\"", esc);
	} else if (ref->claim) {
		append(line, cap, len, " claim=%s", ref->claim);
	}
}

/* "TIME program[pid] level invoice=.. row=..: message", at most cap bytes. */
static size_t text_line(char *line, size_t cap, enum log_level level, const struct log_ref *ref,
			const char *msg)
{
	char when[80];
	size_t len = 0;
	timestamp(when, sizeof(when));
	append(line, cap, &len, "%s %s[%ld] %s", when, lg.program, (long)getpid(),
	       level_names[level]);
	append_ref(line, cap, &len, ref, false);
	append(line, cap, &len, ": ");
	size_t msg_start = len;
	append(line, cap, &len, "%s", msg);
	sanitize(line, msg_start, len);
	if (len == cap)
		memcpy(line + cap - 3, "...", 3);
	return len;
}

/* One JSON object: time, level, program, pid, the ref's fields when set
 * (numbers as numbers, the claim token as a string), message. Strings are
 * escaped, so any message (a server's, a gateway's) stays one valid line. */
static size_t json_line(char *line, size_t cap, enum log_level level, const struct log_ref *ref,
			const char *msg, bool cut)
{
	char when[80], esc[128];
	size_t len = 0;
	bool truncated;
	timestamp(when, sizeof(when));
	json_escape(esc, sizeof(esc), lg.program, &truncated);
	append(line, cap, &len, "{\"time\":\"%s\",\"level\":\"%s\",\"program\":\"%s\",\"pid\":%ld",
	       when, level_names[level], esc, (long)getpid());
	append_ref(line, cap, &len, ref, true);
	append(line, cap, &len, ",\"message\":\"");
	/* room kept for the closing `"...","truncated":true}` */
	const size_t tail = 32;
	if (len + tail < cap)
		len += json_escape(line + len, cap - len - tail, msg, &truncated);
	else
		truncated = true;
	if (truncated || cut)
		append(line, cap, &len, "...\",\"truncated\":true}");
	else
		append(line, cap, &len, "\"}");
	return len;
}

void log_at(enum log_level level, const struct log_ref *ref, const char *fmt, ...)
{
	if ((unsigned)level >= LOG_LEVEL_COUNT || level < lg.min)
		return;
	lg.counts[level]++;

	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		snprintf(msg, sizeof(msg), "(unprintable log message)");

	/* a JSON message may grow six-fold when escaped */
	char line[sizeof(msg) * 6 + 512];
	size_t len;
	if (lg.format == LOG_FORMAT_JSON)
		len = json_line(line, sizeof(line) - 1, level, ref, msg, n >= (int)sizeof(msg));
	else
		len = text_line(line, 2047, level, ref, msg); /* 2048 with the newline */
	line[len++] = '\n';

	/* One write per line keeps lines whole when several processes share
	 * the stream. */
	FILE *out = lg.stream ? lg.stream : stderr;
	if (out == stderr) {
		ssize_t off = 0;
		while ((size_t)off < len) {
			ssize_t w = write(STDERR_FILENO, line + off, len - (size_t)off);
			if (w <= 0)
				break;
			off += w;
		}
	} else {
		fwrite(line, 1, len, out);
		fflush(out);
	}
}
