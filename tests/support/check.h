/*
 * check.h - the test harness: named cases, checks that report the failing
 * line, and one "ok" / "not ok" line per case for tests/run to count.
 */
#ifndef EE_TEST_CHECK_H
#define EE_TEST_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Starts a case; the previous one (if any) is reported. */
void test_case(const char *name, ...) __attribute__((format(printf, 1, 2)));
/* Records a failure in the current case. */
void test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same for CHECK: cond is shown as text, fmt (maybe "") adds detail. */
void test_fail_check(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Reports the last case and the totals; returns the exit status. */
int test_finish(void);
bool test_case_failed(void);

/*
 * The text as a case name: control and non-ASCII bytes as \xNN, one line,
 * at most 255 bytes.  Returns a static buffer that the next call
 * overwrites.
 */
const char *test_printable(const char *text);

/*
 * Writes all len bytes to fd (a socket, without SIGPIPE, or a pipe or
 * file), retrying short writes and EINTR.  0, or -1 on error.
 */
int test_write_all(int fd, const void *data, size_t len);

#define CHECK(cond, ...)                                                              \
	do {                                                                          \
		if (!(cond))                                                          \
			test_fail_check(__FILE__, __LINE__, #cond, " " __VA_ARGS__); \
	} while (0)

#define CHECK_INT(got, want)                                                        \
	do {                                                                        \
		long long g_ = (long long)(got), w_ = (long long)(want);          \
		if (g_ != w_)                                                       \
			test_fail(__FILE__, __LINE__, "%s = %lld, want %lld", #got, g_, w_); \
	} while (0)

#define CHECK_STR(got, want)                                                          \
	do {                                                                          \
		const char *g_ = (got), *w_ = (want);                                 \
		if (!g_ || !w_ || strcmp(g_, w_) != 0)                                \
			test_fail(__FILE__, __LINE__, "%s = \"%s\", want \"%s\"", #got,  \
			          g_ ? g_ : "(null)", w_ ? w_ : "(null)");            \
	} while (0)

#endif
