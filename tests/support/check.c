/* check.c - case bookkeeping and TAP-like output; see check.h. */
#include "check.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char current[256];
static bool have_case, failed;
static int passed_count, failed_count;
static char first_failure[1024];

static void report(void)
{
	if (!have_case)
		return;
	if (failed) {
		failed_count++;
		printf("not ok - %s: %s\n", current, first_failure);
	} else {
		passed_count++;
		printf("ok - %s\n", current);
	}
	fflush(stdout);
	have_case = false;
}

void test_case(const char *name, ...)
{
	report();
	va_list ap;
	va_start(ap, name);
	vsnprintf(current, sizeof(current), name, ap);
	va_end(ap);
	have_case = true;
	failed = false;
	first_failure[0] = '\0';
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
	char msg[900];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!have_case) {
		snprintf(current, sizeof(current), "setup");
		have_case = true;
	}
	if (!failed)
		snprintf(first_failure, sizeof(first_failure), "%s:%d: %s", file, line, msg);
	else
		fprintf(stderr, "  also %s:%d: %s\n", file, line, msg);
	failed = true;
}

void test_fail_check(const char *file, int line, const char *cond, const char *fmt, ...)
{
	char detail[700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	test_fail(file, line, "check failed: %s%s", cond, detail);
}

bool test_case_failed(void) { return failed; }

const char *test_printable(const char *text)
{
	static char out[256];
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)text; *p && n + 5 < sizeof(out); p++) {
		if (*p < 0x20 || *p >= 0x7f)
			n += (size_t)snprintf(out + n, sizeof(out) - n, "\\x%02x", *p);
		else
			out[n++] = (char)*p;
	}
	out[n] = '\0';
	return out;
}

int test_finish(void)
{
	report();
	printf("# %d passed, %d failed\n", passed_count, failed_count);
	return failed_count ? 1 : 0;
}

int test_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	bool socket = true;
	while (len > 0) {
		ssize_t n = socket ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);
		if (n < 0 && socket && errno == ENOTSOCK) {
			socket = false;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
