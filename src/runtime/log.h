/* Logging: one line per event on stderr, `key=value` text (default) or JSON (--logFormat=json).
 *
 *   log_info("raw-output", "published part path=%s records=%zu", path, n);
 *
 * The component names where the line comes from; the message is free text whose words are
 * preferably key=value pairs. Secrets never go through here. Thread-safe (one write(2) per line). */
#ifndef LOGPROC_LOG_H
#define LOGPROC_LOG_H

#include <stdarg.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level;

/* Process-wide settings; call before threads start. fmt_json: 0 text, 1 JSON. */
void log_configure(log_level min_level, int fmt_json);
/* Parses "debug|info|warn|error" into *out; returns 0, or -1 for anything else. */
int log_level_parse(const char *s, log_level *out);

void log_write(log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vwrite(log_level level, const char *component, const char *fmt, va_list ap);

#define log_debug(c, ...) log_write(LOG_DEBUG, (c), __VA_ARGS__)
#define log_info(c, ...) log_write(LOG_INFO, (c), __VA_ARGS__)
#define log_warn(c, ...) log_write(LOG_WARN, (c), __VA_ARGS__)
#define log_error(c, ...) log_write(LOG_ERROR, (c), __VA_ARGS__)

#endif
