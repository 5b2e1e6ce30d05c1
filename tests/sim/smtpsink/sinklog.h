/* sinklog.h: log.h's lines from many threads: libcommon's logger keeps
 * unsynchronised counters, so the sink's threads take turns. */
#ifndef SMTPSINK_SINKLOG_H
#define SMTPSINK_SINKLOG_H

#include "log.h"

void sink_log(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define slog_debug(...) sink_log(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define slog_info(...)  sink_log(LOG_LEVEL_INFO, __VA_ARGS__)
#define slog_warn(...)  sink_log(LOG_LEVEL_WARN, __VA_ARGS__)
#define slog_error(...) sink_log(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
