/*
 * fuzz_time.c - libFuzzer target for lib/timeutil.c, RFC 3339 parsing and
 * formatting.
 *
 * The input bytes go to time_parse_rfc3339 from a buffer of exactly their
 * length with no terminator, so a read past len is an ASan report.  Checks:
 *   - a reference parser written here from timeutil.h (the grammar checked
 *     field by field, the instant computed with timegm) accepts exactly the
 *     same texts and gets the same instant;
 *   - whatever parses, time_format_rfc3339 writes and time_parse_rfc3339
 *     reads back to the same instant, to the millisecond, and formatting
 *     that again gives the same text;
 *   - the first 8 input bytes, taken as an instant between 1970 and 9999,
 *     survive format then parse unchanged.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timeutil.h"

#define FUZZ_TARGET "fuzz_time"
#include "fuzz_support.h"

/* 10000-01-01T00:00:00Z in Unix milliseconds: the first instant with a 5-digit year. */
#define YEAR_10000_MS INT64_C(253402300800000)

static bool ref_number(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool ref_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/*
 * "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DDTHH:MM:SS[.1-9 digits](Z|+HH:MM|-HH:MM)",
 * T and Z in either case, years 1970..9999, no leap second, the fraction
 * truncated to milliseconds, and no instant outside 1970..9999 once the offset
 * is applied.
 */
static bool ref_parse(const char *s, size_t len, int64_t *out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off = 0;
	if (len < 10 || !ref_number(s, 4, &y) || s[4] != '-' || !ref_number(s + 5, 2, &mo) ||
	    s[7] != '-' || !ref_number(s + 8, 2, &d))
		return false;
	static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 ||
	    d > month_days[mo - 1] + (mo == 2 && ref_leap(y)))
		return false;
	if (len > 10) {
		if (len < 20 || (s[10] != 'T' && s[10] != 't') || !ref_number(s + 11, 2, &h) ||
		    s[13] != ':' || !ref_number(s + 14, 2, &mi) || s[16] != ':' ||
		    !ref_number(s + 17, 2, &sec) || h > 23 || mi > 59 || sec > 59)
			return false;
		size_t i = 19;
		if (s[i] == '.') {
			size_t start = ++i;
			while (i < len && s[i] >= '0' && s[i] <= '9')
				i++;
			size_t n = i - start;
			if (n == 0 || n > 9)
				return false;
			char frac[4] = "000";
			memcpy(frac, s + start, n < 3 ? n : 3);
			ms = atoi(frac);
		}
		if (len - i == 1 && (s[i] == 'Z' || s[i] == 'z')) {
			off = 0;
		} else if (len - i == 6 && (s[i] == '+' || s[i] == '-')) {
			int oh, om;
			if (!ref_number(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
			    !ref_number(s + i + 4, 2, &om) || oh > 23 || om > 59)
				return false;
			off = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
		} else {
			return false;
		}
	}
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	int64_t secs = (int64_t)t - (int64_t)off * 60;
	if (secs < 0 || secs * 1000 >= YEAR_10000_MS)
		return false; /* an offset that moves the instant out of 1970..9999 */
	*out = secs * 1000 + ms;
	return true;
}

/* Format, parse back, format again: the instant and the text must hold. */
static void check_round_trip(int64_t instant, const char *what, const uint8_t *data, size_t size)
{
	char text[EE_RFC3339_MAX], again[EE_RFC3339_MAX];
	time_format_rfc3339(instant, text);
	size_t len = strnlen(text, sizeof(text));
	char *copy = malloc(len);
	if (!copy)
		abort();
	memcpy(copy, text, len);
	int64_t back = -1;
	int rc = time_parse_rfc3339(copy, len, &back);
	free(copy);
	if (rc != 0 || back != instant) {
		fprintf(stderr, "instant %lld formats as \"%s\", which %s\n", (long long)instant, text,
		        rc != 0 ? "does not parse" : "parses to another instant");
		fuzz_fail(what, data, size);
	}
	time_format_rfc3339(back, again);
	if (strcmp(text, again) != 0)
		fuzz_fail("formatting is not stable", data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	if (!fuzz_input_copy(data, size, &text))
		return 0;

	int64_t got = 0, want = 0;
	int rc = time_parse_rfc3339(text, size, &got);
	bool want_ok = ref_parse(text, size, &want);
	if ((rc == 0) != want_ok)
		fuzz_fail(rc == 0 ? "parser accepted what the reference refuses"
		                  : "parser refused what the reference accepts",
		          data, size);
	if (rc == 0 && got != want) {
		fprintf(stderr, "parsed %lld, reference %lld\n", (long long)got, (long long)want);
		fuzz_fail("parser and reference disagree on the instant", data, size);
	}
	if (rc == 0)
		check_round_trip(got, "a parsed time does not survive format and parse", data, size);
	free(text);

	if (size >= 8) {
		uint64_t raw;
		memcpy(&raw, data, sizeof(raw));
		check_round_trip((int64_t)(raw % (uint64_t)YEAR_10000_MS),
		                 "an instant between 1970 and 9999 does not survive format and parse",
		                 data, size);
	}
	return 0;
}
