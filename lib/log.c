/* log.c - timestamped single-line messages on stderr; see log.h. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "ee";
static enum ee_log_level log_level = EE_LOG_INFO;

void ee_log_init(const char *program, enum ee_log_level level)
{
	log_program = program;
	log_level = level;
}

void ee_log_set_level(enum ee_log_level level) { log_level = level; }

enum ee_log_level ee_log_get_level(void) { return log_level; }

int ee_log_parse_level(const char *text, enum ee_log_level *out)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	for (int i = 0; i < 4; i++) {
		if (strcmp(text, names[i]) == 0) {
			*out = (enum ee_log_level)i;
			return 0;
		}
	}
	return -1;
}

/* Writes one line: the prefix, the message, then suffix (may be ""). */
static void log_write(enum ee_log_level level, const char *suffix, const char *fmt, va_list ap)
{
	static const char *const tags[] = {"error", "warn", "info", "debug"};
	char line[1024];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s: ",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, ts.tv_nsec / 1000000, log_program, (int)getpid(), tags[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	size_t extra = strlen(suffix);
	if (extra > sizeof(line) - 2 - len)
		extra = sizeof(line) - 2 - len;
	memcpy(line + len, suffix, extra);
	len += extra;
	/* One message is one line: control characters from any source are flattened. */
	for (size_t i = (size_t)n; i < len; i++) {
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = ' ';
	}
	line[len++] = '\n';
	/* A single write keeps lines from concurrent processes whole. */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void ee_log(enum ee_log_level level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_write(level, "", fmt, ap);
	va_end(ap);
}

/* The limits' counters: ee-api's threads share a call site's limit. */
static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;

void ee_log_limited(struct log_limit *limit, enum ee_log_level level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	pthread_mutex_lock(&limit_lock);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (limit->minute_start_ms == 0 || now_ms - limit->minute_start_ms >= 60000) {
		limit->minute_start_ms = now_ms;
		limit->written = 0;
	}
	if (limit->written >= limit->burst) {
		limit->suppressed++;
		pthread_mutex_unlock(&limit_lock);
		return;
	}
	limit->written++;
	char suffix[96] = "";
	if (limit->suppressed > 0)
		snprintf(suffix, sizeof(suffix), " (and %lu more like this, not logged)",
		         limit->suppressed);
	limit->suppressed = 0;
	pthread_mutex_unlock(&limit_lock);
	va_list ap;
	va_start(ap, fmt);
	log_write(level, suffix, fmt, ap);
	va_end(ap);
}
