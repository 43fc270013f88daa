/* timeutil.c - clocks and RFC 3339 formatting and parsing; see timeutil.h. */
#include "timeutil.h"

#include <stdio.h>
#include <time.h>

int64_t time_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's method). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* value (0 <= value < 10^width) as exactly width decimal digits. */
static void put_digits(char *out, int value, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		out[i] = (char)('0' + value % 10);
		value /= 10;
	}
}

void time_format_rfc3339(int64_t unix_ms, char out[EE_RFC3339_MAX])
{
	int64_t secs = unix_ms / 1000;
	int64_t ms = unix_ms % 1000;
	if (ms < 0) {
		ms += 1000;
		secs -= 1;
	}
	int64_t days = secs / 86400;
	int64_t rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days -= 1;
	}
	int64_t y;
	int m, d;
	civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999) {
		snprintf(out, EE_RFC3339_MAX, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y,
		         m, d, (int)(rem / 3600), (int)(rem % 3600 / 60), (int)(rem % 60), (int)ms);
		return;
	}
	/* Every answer carries times: digits written directly, not through snprintf. */
	put_digits(out, (int)y, 4);
	out[4] = '-';
	put_digits(out + 5, m, 2);
	out[7] = '-';
	put_digits(out + 8, d, 2);
	out[10] = 'T';
	put_digits(out + 11, (int)(rem / 3600), 2);
	out[13] = ':';
	put_digits(out + 14, (int)(rem % 3600 / 60), 2);
	out[16] = ':';
	put_digits(out + 17, (int)(rem % 60), 2);
	out[19] = '.';
	put_digits(out + 20, (int)ms, 3);
	out[23] = 'Z';
	out[24] = '\0';
}

static int digits(const char *p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dim[m - 1];
}

int time_parse_rfc3339(const char *s, size_t len, int64_t *out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off_min = 0;
	if (len < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d))
		return -1;
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return -1;
	size_t i = 10;
	if (len > 10) {
		if (len < 20 || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
		    s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
		    digits(s + 17, 2, &sec))
			return -1;
		if (h > 23 || mi > 59 || sec > 59)
			return -1;
		i = 19;
		if (s[i] == '.') {
			i++;
			size_t start = i;
			int scale = 100;
			while (i < len && s[i] >= '0' && s[i] <= '9') {
				ms += (s[i] - '0') * scale;
				scale /= 10;
				i++;
			}
			if (i == start || i - start > 9)
				return -1;
		}
		if (i >= len)
			return -1;
		if (s[i] == 'Z' || s[i] == 'z') {
			i++;
		} else if (s[i] == '+' || s[i] == '-') {
			int oh, om;
			if (len - i != 6 || digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
			    digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
				return -1;
			off_min = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
			i += 6;
		} else {
			return -1;
		}
	}
	if (i != len)
		return -1;
	int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	               (int64_t)off_min * 60;
	/* An offset may not move the instant out of 1970..9999, which is all
	 * time_format_rfc3339 writes and this function reads. */
	if (secs < 0 || secs >= INT64_C(253402300800))
		return -1;
	*out = secs * 1000 + ms;
	return 0;
}
