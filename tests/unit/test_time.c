/*
 * test_time.c - RFC 3339 parsing and formatting (lib/timeutil.c):
 * time_parse_rfc3339 with Z/z, numeric offsets, fractions of 1..9 digits
 * (truncated to milliseconds), bare dates, calendar validity (leap days),
 * every field out of range, missing parts, trailing garbage, years before
 * 1970, and round trips through time_format_rfc3339.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "timeutil.h"

#define REFUSED INT64_MIN

/* The parsed milliseconds, or REFUSED. */
static int64_t parse(const char *text)
{
	int64_t out = 0;
	if (time_parse_rfc3339(text, strlen(text), &out) != 0)
		return REFUSED;
	return out;
}

static void test_valid(void)
{
	static const struct {
		const char *text;
		int64_t ms;
	} cases[] = {
		{"1970-01-01T00:00:00Z", 0},
		{"1970-01-01T00:00:00.001Z", 1},
		{"1970-01-01", 0},
		{"1970-01-02", 86400000},
		{"2026-11-24T21:48:30.123Z", INT64_C(1795556910123)},
		{"2026-11-24t21:48:30.123z", INT64_C(1795556910123)},
		{"2026-11-24T21:48:30.123+00:00", INT64_C(1795556910123)},
		{"2026-11-24T21:48:30.123-00:00", INT64_C(1795556910123)},
		{"2024-02-29T00:00:00Z", INT64_C(1709164800000)},
		{"2024-02-29", INT64_C(1709164800000)},
		{"2000-02-29", INT64_C(951782400000)},
		{"2024-01-01T12:00:00+05:30", INT64_C(1704090600000)},
		{"2024-01-01T12:00:00-08:00", INT64_C(1704139200000)},
		{"2024-01-01T06:30:00Z", INT64_C(1704090600000)},
		{"2024-01-01T20:00:00Z", INT64_C(1704139200000)},
		{"2024-01-01T00:00:00+23:59", INT64_C(1704067200000) - (23 * 60 + 59) * 60000LL},
		{"2024-12-31T23:59:59Z", INT64_C(1735689599000)},
		{"2038-01-19T03:14:08Z", INT64_C(2147483648000)},
		{"9999-12-31T23:59:59.999Z", INT64_C(253402300799999)},
		/* fractions: 1..9 digits, truncated (never rounded) to milliseconds */
		{"2024-02-29T00:00:00.1Z", INT64_C(1709164800100)},
		{"2024-02-29T00:00:00.12Z", INT64_C(1709164800120)},
		{"2024-02-29T00:00:00.123Z", INT64_C(1709164800123)},
		{"2024-02-29T00:00:00.1234Z", INT64_C(1709164800123)},
		{"2024-02-29T00:00:00.12345Z", INT64_C(1709164800123)},
		{"2024-02-29T00:00:00.123456Z", INT64_C(1709164800123)},
		{"2024-02-29T00:00:00.1234567Z", INT64_C(1709164800123)},
		{"2024-02-29T00:00:00.12345678Z", INT64_C(1709164800123)},
		{"2024-02-29T00:00:00.123456789Z", INT64_C(1709164800123)},
		{"2024-02-29T00:00:00.999999999Z", INT64_C(1709164800999)},
		{"2024-02-29T00:00:00.0009Z", INT64_C(1709164800000)},
		{"2024-02-29T00:00:00.000000000Z", INT64_C(1709164800000)},
		{"2024-02-29T00:00:00.5+05:30", INT64_C(1709164800500) - 330 * 60000LL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("parse %s", cases[i].text);
		CHECK_INT(parse(cases[i].text), cases[i].ms);
	}
}

static void test_invalid(void)
{
	static const char *const cases[] = {
		/* calendar */
		"2023-02-29",
		"2023-02-29T00:00:00Z",
		"2100-02-29",
		"1900-02-29",
		"2024-02-30",
		"2024-04-31",
		"2024-06-31",
		"2024-09-31",
		"2024-11-31",
		"2024-01-32",
		"2024-12-32",
		"2024-00-10",
		"2024-13-01",
		"2024-99-01",
		"2024-01-00",
		/* clock */
		"2024-01-01T24:00:00Z",
		"2024-01-01T25:00:00Z",
		"2024-01-01T23:60:00Z",
		"2024-01-01T23:59:60Z",
		"2024-01-01T23:59:99Z",
		/* offsets */
		"2024-01-01T00:00:00+24:00",
		"2024-01-01T00:00:00+05:60",
		"2024-01-01T00:00:00+0530",
		"2024-01-01T00:00:00+05",
		"2024-01-01T00:00:00+5:30",
		"2024-01-01T00:00:00+05:30:00",
		"2024-01-01T00:00:00 +05:30",
		"2024-01-01T00:00:00UTC",
		"2024-01-01T00:00:00GMT",
		"2024-01-01T00:00:00ZZ",
		"2024-01-01T00:00:00Z+01:00",
		/* fractions */
		"2024-01-01T00:00:00.Z",
		"2024-01-01T00:00:00.",
		"2024-01-01T00:00:00.1234567890Z",
		"2024-01-01T00:00:00,123Z",
		"2024-01-01T00:00:00.12a3Z",
		"2024-01-01T00:00:00.-1Z",
		"2024-01-01T00:00:00.123",
		/* missing parts */
		"",
		"2024",
		"2024-01",
		"2024-1-01",
		"2024-01-1",
		"24-01-01",
		"2024-01-01T",
		"2024-01-01T00",
		"2024-01-01T00:00",
		"2024-01-01T00:00Z",
		"2024-01-01T00:00:00",
		"2024-01-01T0:00:00Z",
		"2024-01-01T00:0:00Z",
		"2024-01-01T00:00:0Z",
		"T00:00:00Z",
		/* separators */
		"2024-01-01 00:00:00Z",
		"2024-01-01_00:00:00Z",
		"2024/01/01",
		"2024-01-01T00-00-00Z",
		"20240101T000000Z",
		/* trailing and leading garbage */
		"2024-01-01x",
		"2024-01-01 ",
		" 2024-01-01",
		"2024-01-01T00:00:00Zx",
		"2024-01-01T00:00:00Z ",
		"2024-01-01T00:00:00Z\n",
		"2024-01-01T00:00:00+05:30x",
		"2024-01-01T00:00:00.123Zjunk",
		/* signs and non-digits in numeric fields */
		"+2024-01-01",
		"-2024-01-01",
		"2024-+1-01",
		"2024-01--1",
		"2024-01-01T-1:00:00Z",
		"2024-01-01T00:00:+1Z",
		"2O24-01-01",
		"2024-01-01T00:00:00+0a:00",
		/* years outside 1970..9999 */
		"1969-12-31T23:59:59Z",
		"1969-12-31",
		"1900-01-01",
		"0000-01-01",
		"0001-01-01T00:00:00Z",
		"10000-01-01",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("refuse \"%s\"", test_printable(cases[i]));
		int64_t out = 77;
		CHECK_INT(time_parse_rfc3339(cases[i], strlen(cases[i]), &out), -1);
	}

	test_case("refuse a NUL inside the text");
	int64_t out;
	CHECK_INT(time_parse_rfc3339("2024-01-01T00:00:00\0Z", 21, &out), -1);
	CHECK_INT(time_parse_rfc3339("2024-01\0-01", 11, &out), -1);

	test_case("parse honours len: a valid prefix of a longer text");
	CHECK_INT(time_parse_rfc3339("2024-02-29T00:00:00Zjunk", 20, &out), 0);
	CHECK_INT(out, INT64_C(1709164800000));
	CHECK_INT(time_parse_rfc3339("2024-02-29T00:00:00Z", 10, &out), 0);
	CHECK_INT(out, INT64_C(1709164800000));
	CHECK_INT(time_parse_rfc3339("2024-02-29T00:00:00Z", 9, &out), -1);
	CHECK_INT(time_parse_rfc3339("2024-02-29T00:00:00Z", 19, &out), -1);
}

/*
 * Years before 1970 are refused; an offset must not smuggle in an instant
 * before the epoch either (internal times are positive milliseconds, and
 * json_put_time renders 0 or less as null).
 */
static void test_before_epoch_by_offset(void)
{
	static const char *const cases[] = {
		"1970-01-01T00:00:00+01:00",
		"1970-01-01T00:30:00+05:30",
		"1970-01-01T00:00:00.500+00:01",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("an offset does not reach before 1970: %s", cases[i]);
		int64_t out = 0;
		int rc = time_parse_rfc3339(cases[i], strlen(cases[i]), &out);
		CHECK(rc != 0 || out >= 0, "(parsed to %lld ms)", (long long)out);
	}
	test_case("an offset landing exactly on the epoch gives 0");
	CHECK_INT(parse("1970-01-01T05:00:00+05:00"), 0);

	/* Found by fuzz_time: the formatter writes only four-digit years. */
	static const char *const late[] = {"9999-12-31T23:59:50-23:59", "9999-12-31T23:59:59-00:01"};
	for (size_t i = 0; i < sizeof(late) / sizeof(late[0]); i++) {
		test_case("an offset does not reach past 9999: %s", late[i]);
		int64_t out = 0;
		CHECK_INT(time_parse_rfc3339(late[i], strlen(late[i]), &out), -1);
	}
	test_case("the last instant of 9999 is accepted");
	CHECK_INT(parse("9999-12-31T23:59:59.999Z"), INT64_C(253402300799999));
}

static void test_format(void)
{
	static const struct {
		int64_t ms;
		const char *text;
	} cases[] = {
		{0, "1970-01-01T00:00:00.000Z"},
		{1, "1970-01-01T00:00:00.001Z"},
		{999, "1970-01-01T00:00:00.999Z"},
		{1000, "1970-01-01T00:00:01.000Z"},
		{86399999, "1970-01-01T23:59:59.999Z"},
		{INT64_C(1795556910123), "2026-11-24T21:48:30.123Z"},
		{INT64_C(1709164800000), "2024-02-29T00:00:00.000Z"},
		{INT64_C(951782400000), "2000-02-29T00:00:00.000Z"},
		{INT64_C(1735689599000), "2024-12-31T23:59:59.000Z"},
		{INT64_C(2147483648000), "2038-01-19T03:14:08.000Z"},
		{INT64_C(253402300799999), "9999-12-31T23:59:59.999Z"},
		{-1, "1969-12-31T23:59:59.999Z"},
		{-86400000, "1969-12-31T00:00:00.000Z"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("format %lld", (long long)cases[i].ms);
		char out[EE_RFC3339_MAX];
		time_format_rfc3339(cases[i].ms, out);
		CHECK_STR(out, cases[i].text);
	}
}

static void test_round_trips(void)
{
	test_case("round trip format -> parse over many instants");
	int wrong = 0;
	/* Steps that are not a divisor of a day visit every hour, month and leap year. */
	for (int64_t ms = 0; ms < INT64_C(253402300799999); ms += INT64_C(7777777777) + 13) {
		char text[EE_RFC3339_MAX];
		time_format_rfc3339(ms, text);
		int64_t back = parse(text);
		if (back != ms && wrong++ < 5)
			test_fail(__FILE__, __LINE__, "%lld -> %s -> %lld", (long long)ms, text,
			          (long long)back);
	}
	CHECK_INT(wrong, 0);

	test_case("round trip every day of 2023 and 2024 (leap year)");
	wrong = 0;
	int days = 0;
	for (int64_t day = parse("2023-01-01"); day < parse("2025-01-01"); day += 86400000) {
		char text[EE_RFC3339_MAX];
		time_format_rfc3339(day + 43200123, text);
		if (parse(text) != day + 43200123 && wrong++ < 5)
			test_fail(__FILE__, __LINE__, "%s does not round-trip", text);
		char date[11];
		memcpy(date, text, 10);
		date[10] = '\0';
		if (parse(date) != day && wrong++ < 5)
			test_fail(__FILE__, __LINE__, "date %s -> %lld, want %lld", date,
			          (long long)parse(date), (long long)day);
		days++;
	}
	CHECK_INT(wrong, 0);
	CHECK_INT(days, 365 + 366);

	test_case("round trip parse -> format normalises offsets to Z");
	char out[EE_RFC3339_MAX];
	time_format_rfc3339(parse("2024-01-01T12:00:00+05:30"), out);
	CHECK_STR(out, "2024-01-01T06:30:00.000Z");
	time_format_rfc3339(parse("2024-01-01T20:00:00.123456789-08:00"), out);
	CHECK_STR(out, "2024-01-02T04:00:00.123Z");
	time_format_rfc3339(parse("2024-02-28T23:30:00-01:00"), out);
	CHECK_STR(out, "2024-02-29T00:30:00.000Z");
	time_format_rfc3339(parse("2023-02-28T23:30:00-01:00"), out);
	CHECK_STR(out, "2023-03-01T00:30:00.000Z");
}

static void test_clocks(void)
{
	test_case("time_now_ms is after 2024 and formats as a valid time");
	int64_t now = time_now_ms();
	CHECK(now > parse("2024-01-01"));
	char out[EE_RFC3339_MAX];
	time_format_rfc3339(now, out);
	CHECK_INT(parse(out), now);

	test_case("time_monotonic_ms does not go backwards");
	int64_t a = time_monotonic_ms(), b = time_monotonic_ms();
	CHECK(b >= a);
}

int main(void)
{
	test_valid();
	test_invalid();
	test_before_epoch_by_offset();
	test_format();
	test_round_trips();
	test_clocks();
	return test_finish();
}
