/*
 * error.h - errors as values.
 *
 * A function that can fail returns 0 on success or -1 on failure and fills a
 * struct ee_error with a stable, machine-readable reason ("insufficient_funds")
 * and the HTTP status the API layer should answer with.  Reasons are part of
 * the wire contract: clients match on them, so they never change spelling.
 */
#ifndef EE_ERROR_H
#define EE_ERROR_H

#define EE_REASON_MAX 160

struct ee_error {
	int status;                 /* HTTP status the reason maps to */
	char reason[EE_REASON_MAX]; /* stable machine-readable reason */
};

/* Fill err (if not NULL) and return -1, so callers can `return ee_fail(...)`. */
int ee_fail(struct ee_error *err, int status, const char *reason);

/* Same, with a "prefix:detail" reason such as "measurement_mismatch:rtmr0". */
int ee_fail_detail(struct ee_error *err, int status, const char *reason,
                   const char *detail);

void ee_error_clear(struct ee_error *err);

#endif
