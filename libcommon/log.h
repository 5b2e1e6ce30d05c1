/* log.h: one line per event on stderr, naming the invoice / outbox row /
 * attempt it concerns, so an operator can grep one invoice's whole story. */
#ifndef CG_LOG_H
#define CG_LOG_H

#include <stdint.h>
#include <stdio.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_COUNT
};

/* text: "TIME program[pid] level invoice=1 row=2 attempt=1 claim=..: message";
 * json: one object per line, {"time","level","program","pid", "invoice",
 * "row", "attempt", "claim" when set, "message"}, plus "truncated": true
 * when the message was cut. */
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/* What a line is about. Zero / NULL fields are left out of the line. */
struct log_ref {
	int64_t invoice;
	int64_t row;
	int attempt;
	const char *claim;
};

/* program: the name printed on each line; min: lines below are dropped. */
void log_init(const char *program, enum log_level min);
void log_set_level(enum log_level min);
void log_set_format(enum log_format format);
/* "text" / "json" -> enum log_format; -1 when unknown. */
int log_format_parse(const char *name);
/* Redirect output (tests); NULL means stderr. */
void log_set_stream(FILE *stream);

void log_at(enum log_level level, const struct log_ref *ref, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Lines emitted per level since start (dropped lines are not counted). */
uint64_t log_count(enum log_level level);

/* "debug" -> LOG_LEVEL_DEBUG ...; -1 when unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

#define log_debug(...) log_at(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)
#define log_info(...)  log_at(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_LEVEL_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_at(LOG_LEVEL_ERROR, NULL, __VA_ARGS__)

#endif
