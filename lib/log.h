/*
 * log.h - one-line diagnostics on stderr.
 *
 * Callers pass only identifiers and reasons; tokens, quotes, request bodies
 * and private environment never go through here (docs/SECURITY.md).
 */
#ifndef EE_LOG_H
#define EE_LOG_H

#include <stdint.h>

enum ee_log_level { EE_LOG_ERROR = 0, EE_LOG_WARN, EE_LOG_INFO, EE_LOG_DEBUG };

void ee_log_init(const char *program, enum ee_log_level level);
void ee_log_set_level(enum ee_log_level level);
enum ee_log_level ee_log_get_level(void);
/* Parses "error", "warn", "info", "debug"; returns -1 on anything else. */
int ee_log_parse_level(const char *text, enum ee_log_level *out);

void ee_log(enum ee_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * A line that remote input can cause again and again (a flood of sockets,
 * of oversized messages, of forged quotes) goes through a limit kept at its
 * call site: at most `burst` lines a minute, the rest counted and the count
 * told in the next line that is written.  Threads may share a limit.
 */
struct log_limit {
	int burst;            /* lines a minute; set it where the limit is declared */
	int written;          /* in the current minute */
	int64_t minute_start_ms;
	unsigned long suppressed;
};

void ee_log_limited(struct log_limit *limit, enum ee_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) ee_log(EE_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) ee_log(EE_LOG_WARN, __VA_ARGS__)
#define log_info(...) ee_log(EE_LOG_INFO, __VA_ARGS__)
#define log_debug(...) ee_log(EE_LOG_DEBUG, __VA_ARGS__)

#endif
