/*
 * timeutil.h - the project's clock and its one text form for time.
 *
 * Times are integer Unix milliseconds everywhere inside; JSON carries them as
 * RFC 3339 UTC ("2026-11-24T21:48:30.123Z").  Input periods are parsed into
 * milliseconds, never compared as strings.
 */
#ifndef EE_TIMEUTIL_H
#define EE_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define EE_RFC3339_MAX 32

int64_t time_now_ms(void);
int64_t time_monotonic_ms(void);

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (at least EE_RFC3339_MAX bytes). */
void time_format_rfc3339(int64_t unix_ms, char out[EE_RFC3339_MAX]);

/*
 * Parses RFC 3339: "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)", or a
 * bare date "YYYY-MM-DD" meaning midnight UTC.  Fractions beyond milliseconds
 * are truncated.  Returns 0 and sets *out, or -1 for anything else.
 */
int time_parse_rfc3339(const char *text, size_t len, int64_t *out);

#endif
