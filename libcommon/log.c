/* log.c: line-oriented event log on stderr. */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[LOG_LEVEL_COUNT] = {"debug", "info", "warn", "error"};

static struct {
	const char *program;
	enum log_level min;
	FILE *stream;
	uint64_t counts[LOG_LEVEL_COUNT];
} lg = {"chargeguard", LOG_LEVEL_INFO, NULL, {0}};

void log_init(const char *program, enum log_level min)
{
	lg.program = program;
	lg.min = min;
}

void log_set_level(enum log_level min) { lg.min = min; }

void log_set_stream(FILE *stream) { lg.stream = stream; }

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

void log_at(enum log_level level, const struct log_ref *ref, const char *fmt, ...)
{
	if ((unsigned)level >= LOG_LEVEL_COUNT || level < lg.min)
		return;
	lg.counts[level]++;

	char line[2048];
	const size_t cap = sizeof(line) - 1; /* room for the newline */
	size_t len = 0;

	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	append(line, cap, &len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld] %s",
	       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	       tm.tm_sec, ts.tv_nsec / 1000000, lg.program, (long)getpid(),
	       level_names[level]);
	if (ref) {
		if (ref->invoice)
			append(line, cap, &len, " invoice=%lld", (long long)ref->invoice);
		if (ref->row)
			append(line, cap, &len, " row=%lld", (long long)ref->row);
		if (ref->attempt)
			append(line, cap, &len, " attempt=%d", ref->attempt);
		if (ref->claim)
			append(line, cap, &len, " claim=%s", ref->claim);
	}
	append(line, cap, &len, ": ");
	size_t msg_start = len;

	va_list ap;
	va_start(ap, fmt);
	if (len < cap) {
		int n = vsnprintf(line + len, cap - len, fmt, ap);
		if (n > 0)
			len = (size_t)n >= cap - len ? cap : len + (size_t)n;
	}
	va_end(ap);
	sanitize(line, msg_start, len);
	if (len == cap)
		memcpy(line + cap - 3, "...", 3);
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
