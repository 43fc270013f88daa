/*
 * test_amount.c - exact decimal money (lib/amount.c): decimal_parse,
 * decimal_to_cents, decimal_multiply_cents, amount_from_json and
 * quantity_from_json.  The grammar, the 19-significant-digit limit, half-up
 * rounding at every boundary, EE_MAX_CENTS, and JSON numbers read from their
 * literal text rather than through a double.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "amount.h"
#include "check.h"
#include "jsonutil.h"

#define PARSE_FAILS (-1)
#define CENTS_FAILS (-2)

/* decimal_parse then decimal_to_cents: cents, PARSE_FAILS or CENTS_FAILS. */
static long long text_to_cents(const char *text)
{
	struct decimal d;
	if (decimal_parse(text, strlen(text), &d) != 0)
		return PARSE_FAILS;
	int64_t cents = -12345;
	if (decimal_to_cents(&d, &cents) != 0)
		return CENTS_FAILS;
	return cents;
}

static void test_parse_table(void)
{
	static const struct {
		const char *text;
		long long want; /* cents, PARSE_FAILS or CENTS_FAILS */
	} cases[] = {
		/* plain values and rounding to cents */
		{"12.345", 1235},
		{"12.344", 1234},
		{"12.3449999999", 1234},
		{"12.34", 1234},
		{"12", 1200},
		{"0.005", 1},
		{"0.004", 0},
		{"0.0049999999999999999", 0},
		{"0.01", 1},
		{"0.1", 10},
		{"2.675", 268},
		{"1.005", 101},
		{"1.0049999999", 100},
		{"1.015", 102},
		{"0.995", 100},
		{"0.994999", 99},
		{"9.995", 1000},
		{"99.995", 10000},
		{"999.9949", 99999},
		{"0", 0},
		{"0.0", 0},
		{"000", 0},
		{"-0", 0},
		{"-0.00", 0},
		{"007.50", 750},
		{"1.50", 150},
		{"100", 10000},
		{"1.10000000000000000000000000", 110}, /* trailing zeros are not significant */
		{"0.00000000000000000000000000001", 0}, /* leading zeros are not significant */
		/* exponents */
		{"1e3", 100000},
		{"1E3", 100000},
		{"1e+3", 100000},
		{"1E-2", 1},
		{"1e-2", 1},
		{"5e-3", 1},
		{"4.999e-3", 0},
		{"1e-3", 0},
		{"12345e-3", 1235},
		{"0.001e3", 100},
		{"0e400", 0},
		{"1e0", 100},
		{"1e-0", 100},
		{"1e00000000000000000000000000002", 10000},
		{"1e400", CENTS_FAILS},
		{"1e99999999999999999999", CENTS_FAILS},
		{"1e-400", 0},
		{"1e-99999999999999999999", 0},
		{"5e-39", 0},
		{"5e-41", 0},
		/* significant digits */
		{"1234567890123456789", CENTS_FAILS},  /* 19 digits: parses, too many dollars */
		{"12345678901234567891", PARSE_FAILS}, /* 20 significant digits */
		{"12345678901234567890", CENTS_FAILS}, /* 19: the last zero is not significant */
		{"1234567890.123456789", 123456789012}, /* 19 digits, rounded */
		{"1234567890.1234567891", PARSE_FAILS},
		{"12.3450000000000000000000001", PARSE_FAILS},
		{"0.0000000000000000000000000000001234567890123456789", 0},
		{"1000000000000000000000000", CENTS_FAILS}, /* one significant digit */
		/* the limit: 2^53 - 1 cents */
		{"90071992547409.91", 9007199254740991},
		{"90071992547409.914", 9007199254740991},
		{"90071992547409.9149", 9007199254740991},
		{"90071992547409.915", CENTS_FAILS},
		{"90071992547409.92", CENTS_FAILS},
		{"9007199254740991e-2", 9007199254740991},
		{"9007199254740992e-2", CENTS_FAILS},
		{"90071992547410", CENTS_FAILS},
		/* negatives parse, but are not money */
		{"-1", CENTS_FAILS},
		{"-0.01", CENTS_FAILS},
		{"-0.004", CENTS_FAILS},
		/* not the grammar */
		{"abc", PARSE_FAILS},
		{"", PARSE_FAILS},
		{" 1", PARSE_FAILS},
		{"1 ", PARSE_FAILS},
		{"1\t", PARSE_FAILS},
		{"1\n", PARSE_FAILS},
		{"+1", PARSE_FAILS},
		{"--1", PARSE_FAILS},
		{"-", PARSE_FAILS},
		{"0x1", PARSE_FAILS},
		{"0x10", PARSE_FAILS},
		{"1.", PARSE_FAILS},
		{".5", PARSE_FAILS},
		{"-.5", PARSE_FAILS},
		{".", PARSE_FAILS},
		{"1..2", PARSE_FAILS},
		{"1.2.3", PARSE_FAILS},
		{"1e", PARSE_FAILS},
		{"1E", PARSE_FAILS},
		{"1e+", PARSE_FAILS},
		{"1e-", PARSE_FAILS},
		{"1e1.5", PARSE_FAILS},
		{"1ee1", PARSE_FAILS},
		{"e1", PARSE_FAILS},
		{"1.e1", PARSE_FAILS},
		{"NaN", PARSE_FAILS},
		{"nan", PARSE_FAILS},
		{"Infinity", PARSE_FAILS},
		{"-Infinity", PARSE_FAILS},
		{"inf", PARSE_FAILS},
		{"1,5", PARSE_FAILS},
		{"1_000", PARSE_FAILS},
		{"$1", PARSE_FAILS},
		{"1$", PARSE_FAILS},
		{"\"1\"", PARSE_FAILS},
		{"\xd9\xa1", PARSE_FAILS}, /* ARABIC-INDIC DIGIT ONE */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("decimal \"%s\" -> %lld", test_printable(cases[i].text), cases[i].want);
		CHECK_INT(text_to_cents(cases[i].text), cases[i].want);
	}
}

static int parse_text(const char *text, struct decimal *d)
{
	return decimal_parse(text, strlen(text), d);
}

static void test_parse_fields(void)
{
	struct decimal d;
	test_case("decimal_parse fields: 12.345 is 12345e-3");
	CHECK_INT(parse_text("12.345", &d), 0);
	CHECK_INT(d.coefficient, 12345);
	CHECK_INT(d.exponent, -3);
	CHECK(!d.negative);

	test_case("decimal_parse fields: trailing zeros move into the exponent");
	CHECK_INT(parse_text("1500", &d), 0);
	CHECK_INT(d.coefficient, 15);
	CHECK_INT(d.exponent, 2);
	CHECK_INT(parse_text("1.500", &d), 0);
	CHECK_INT(d.coefficient, 15);
	CHECK_INT(d.exponent, -1);

	test_case("decimal_parse fields: -0 is not negative, zero has exponent 0");
	CHECK_INT(parse_text("-0.000e7", &d), 0);
	CHECK_INT(d.coefficient, 0);
	CHECK_INT(d.exponent, 0);
	CHECK(!d.negative);

	test_case("decimal_parse fields: -2.5E+1");
	CHECK_INT(parse_text("-2.5E+1", &d), 0);
	CHECK_INT(d.coefficient, 25);
	CHECK_INT(d.exponent, 0);
	CHECK(d.negative);

	test_case("decimal_parse honours len: digits after len are not read");
	CHECK_INT(decimal_parse("12.345", 4, &d), 0); /* "12.3" */
	CHECK_INT(d.coefficient, 123);
	CHECK_INT(d.exponent, -1);
	CHECK_INT(decimal_parse("12.345", 3, &d), -1); /* "12." */
	CHECK_INT(decimal_parse("1\0" "2", 3, &d), -1); /* embedded NUL */
	CHECK_INT(parse_text("", &d), -1);

	test_case("decimal_parse: exactly 19 significant digits, and 20");
	CHECK_INT(parse_text("9999999999999999999", &d), 0);
	CHECK(d.coefficient == UINT64_C(9999999999999999999));
	CHECK_INT(parse_text("99999999999999999999", &d), -1);
	/* zeros inside the number count, zeros at either end do not */
	CHECK_INT(parse_text("000000000000000000001000000000000000000000", &d), 0);
	CHECK_INT(d.coefficient, 1);
	CHECK_INT(d.exponent, 21);
	CHECK_INT(parse_text("1000000000000000001", &d), 0);
	CHECK_INT(parse_text("10000000000000000001", &d), -1);

	test_case("decimal_parse: huge exponents are clamped, not overflowed");
	CHECK_INT(parse_text("1e2147483648", &d), 0);
	CHECK(d.exponent > 40);
	CHECK_INT(parse_text("1e-2147483649", &d), 0);
	CHECK(d.exponent < -40);
	CHECK_INT(parse_text("0.1e99999999999999999999999", &d), 0);
	CHECK(d.exponent > 40);
}

/*
 * A value written with a million fraction digits and a seven-digit exponent
 * is still inside the grammar and has one significant digit: the exponent
 * must be combined with the digit count before either is clamped.
 */
static void test_long_forms(void)
{
	enum { ZEROS = 999999 };
	char *text = malloc(ZEROS + 32);
	CHECK(text != NULL);
	if (!text)
		return;

	test_case("decimal: 0.(999999 zeros)1e1000001 is $10");
	memcpy(text, "0.", 2);
	memset(text + 2, '0', ZEROS);
	snprintf(text + 2 + ZEROS, 30, "1e1000001");
	CHECK_INT(text_to_cents(text), 1000);

	test_case("decimal: 1(999999 zeros)e-1000000 is $0.10");
	text[0] = '1';
	memset(text + 1, '0', ZEROS);
	snprintf(text + 1 + ZEROS, 30, "e-1000000");
	CHECK_INT(text_to_cents(text), 10);

	test_case("decimal: 1(999999 zeros) without exponent is too large");
	text[1 + ZEROS] = '\0';
	CHECK_INT(text_to_cents(text), CENTS_FAILS);
	free(text);
}

/* Half-up at every cent boundary of the first dollars: x.xx5 up, x.xx4999 down. */
static void test_half_up_boundaries(void)
{
	test_case("half-up at every boundary 0.005 .. 19.995");
	int wrong = 0;
	for (int c = 0; c < 2000; c++) {
		char up[32], down[32], exact[32];
		snprintf(up, sizeof(up), "%d.%02d5", c / 100, c % 100);
		snprintf(down, sizeof(down), "%d.%02d4999", c / 100, c % 100);
		snprintf(exact, sizeof(exact), "%d.%02d", c / 100, c % 100);
		if (text_to_cents(up) != c + 1 || text_to_cents(down) != c ||
		    text_to_cents(exact) != c) {
			if (wrong++ < 5)
				test_fail(__FILE__, __LINE__, "%s -> %lld, %s -> %lld, %s -> %lld", up,
				          text_to_cents(up), down, text_to_cents(down), exact,
				          text_to_cents(exact));
		}
	}
	CHECK_INT(wrong, 0);

	test_case("half-up with exponents: 5e-3, 15e-4, 25e-4, 4999e-6");
	CHECK_INT(text_to_cents("5e-3"), 1);
	CHECK_INT(text_to_cents("15e-4"), 0);
	CHECK_INT(text_to_cents("50e-4"), 1);
	CHECK_INT(text_to_cents("49e-4"), 0);
	CHECK_INT(text_to_cents("4999e-6"), 0);
	CHECK_INT(text_to_cents("5000e-6"), 1);
	CHECK_INT(text_to_cents("1234565e-5"), 1235);
	CHECK_INT(text_to_cents("12344999e-6"), 1234);
}

/*
 * The value as it reaches amount_from_json from a request: the text is put
 * in an object {"v": ...} and parsed as a request body.  *body owns the value.
 */
static struct json_object *field_value(const char *json, struct json_object **body, bool *present)
{
	char text[512];
	snprintf(text, sizeof(text), "{\"v\":%s}", json);
	struct ee_error err;
	*body = NULL;
	*present = false;
	if (json_parse_object(text, strlen(text), body, &err) != 0)
		return NULL;
	return json_get(*body, "v", present);
}

static void test_amount_from_json(void)
{
	static const struct {
		const char *json;
		long long want; /* cents; -1 invalid_amount */
	} cases[] = {
		{"\"12.345\"", 1235},
		{"12.345", 1235},
		{"2.675", 268},
		{"\"2.675\"", 268},
		{"0.1", 10},
		{"0.29", 29},
		{"1.005", 101},
		{"1.015", 102},
		{"8.675", 868},
		{"1e3", 100000},
		{"\"1e3\"", 100000},
		{"1E-2", 1},
		{"1e-2", 1},
		{"\"1E-2\"", 1},
		{"0.005", 1},
		{"\"0.005\"", 1},
		{"\"0.004\"", -1},
		{"0.004", -1},
		{"12", 1200},
		{"\"12\"", 1200},
		{"0", -1},
		{"\"0\"", -1},
		{"0.0", -1},
		{"-1", -1},
		{"\"-1\"", -1},
		{"-0.01", -1},
		{"\"abc\"", -1},
		{"\"\"", -1},
		{"\" 1\"", -1},
		{"\"1 \"", -1},
		{"\"+1\"", -1},
		{"\"0x1\"", -1},
		{"\"1.\"", -1},
		{"\".5\"", -1},
		{"\"1e\"", -1},
		{"\"1e+\"", -1},
		{"\"NaN\"", -1},
		{"\"Infinity\"", -1},
		{"\"1\\u00001\"", -1}, /* a string holding a NUL */
		{"\"90071992547409.91\"", 9007199254740991},
		{"90071992547409.91", 9007199254740991},
		{"\"90071992547409.92\"", -1},
		{"90071992547409.92", -1},
		{"90071992547409.915", -1},
		{"9007199254740991", -1},
		{"1e400", -1},
		{"1e-400", -1},
		{"\"1e400\"", -1},
		{"123456789012345678901234567890", -1},
		{"99999999999999999999", -1},
		{"-99999999999999999999", -1},
		{"12.3450000000000000000000001", -1},
		{"\"12.3450000000000000000000001\"", -1},
		{"null", -1},
		{"true", -1},
		{"false", -1},
		{"[1]", -1},
		{"[]", -1},
		{"{}", -1},
		{"{\"amount\":1}", -1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("amount_from_json %s -> %lld", cases[i].json, cases[i].want);
		struct ee_error err;
		ee_error_clear(&err);
		int64_t cents = -7;
		struct json_object *body;
		bool present;
		struct json_object *v = field_value(cases[i].json, &body, &present);
		CHECK(body != NULL && present, "(the JSON itself did not parse)");
		int rc = amount_from_json(v, present, &cents, &err);
		json_object_put(body);
		if (cases[i].want >= 0) {
			CHECK_INT(rc, 0);
			CHECK_INT(cents, cases[i].want);
		} else {
			CHECK_INT(rc, -1);
			CHECK_INT(err.status, 400);
			CHECK_STR(err.reason, "invalid_amount");
		}
	}

	test_case("amount_from_json: absent field is missing_amount");
	struct ee_error err;
	ee_error_clear(&err);
	int64_t cents = -7;
	CHECK_INT(amount_from_json(NULL, false, &cents, &err), -1);
	CHECK_INT(err.status, 400);
	CHECK_STR(err.reason, "missing_amount");

	test_case("amount_from_json: present but JSON null is invalid_amount");
	ee_error_clear(&err);
	CHECK_INT(amount_from_json(NULL, true, &cents, &err), -1);
	CHECK_STR(err.reason, "invalid_amount");

	test_case("amount_from_json: the field read out of a request object");
	struct json_object *body = NULL;
	const char *text = "{\"amount_usd\":12.345,\"other\":2.675,\"n\":null}";
	CHECK_INT(json_parse_object(text, strlen(text), &body, &err), 0);
	bool present;
	struct json_object *v = json_get(body, "amount_usd", &present);
	CHECK_INT(amount_from_json(v, present, &cents, &err), 0);
	CHECK_INT(cents, 1235);
	v = json_get(body, "other", &present);
	CHECK_INT(amount_from_json(v, present, &cents, &err), 0);
	CHECK_INT(cents, 268);
	v = json_get(body, "n", &present);
	CHECK_INT(amount_from_json(v, present, &cents, &err), -1);
	CHECK_STR(err.reason, "invalid_amount");
	v = json_get(body, "absent", &present);
	CHECK_INT(amount_from_json(v, present, &cents, &err), -1);
	CHECK_STR(err.reason, "missing_amount");
	json_object_put(body);

	test_case("amount_from_json: doubles NaN and Infinity built in code");
	struct json_object *d = json_object_new_double(NAN);
	CHECK_INT(amount_from_json(d, true, &cents, &err), -1);
	CHECK_STR(err.reason, "invalid_amount");
	json_object_put(d);
	d = json_object_new_double(INFINITY);
	CHECK_INT(amount_from_json(d, true, &cents, &err), -1);
	CHECK_STR(err.reason, "invalid_amount");
	json_object_put(d);

	test_case("amount_from_json: numbers built in code (no literal text)");
	struct json_object *n = json_object_new_int64(5);
	CHECK_INT(amount_from_json(n, true, &cents, &err), 0);
	CHECK_INT(cents, 500);
	json_object_put(n);
	n = json_object_new_double(12.345);
	CHECK_INT(amount_from_json(n, true, &cents, &err), 0);
	CHECK_INT(cents, 1235);
	json_object_put(n);
	n = json_object_new_int64(-5);
	CHECK_INT(amount_from_json(n, true, &cents, &err), -1);
	json_object_put(n);
}

/* json-c's tokener takes NaN and Infinity even in strict mode. */
static void test_non_numbers(void)
{
	static const char *const non_numbers[] = {"NaN", "Infinity", "-Infinity"};
	for (size_t i = 0; i < 3; i++) {
		struct ee_error err;
		int64_t cents;
		test_case("amount_from_json: %s is not an amount", non_numbers[i]);
		struct json_object *body;
		bool present;
		struct json_object *v = field_value(non_numbers[i], &body, &present);
		ee_error_clear(&err);
		CHECK_INT(amount_from_json(v, true, &cents, &err), -1);
		CHECK_STR(err.reason, "invalid_amount");
		json_object_put(body);

		test_case("json_parse_object refuses %s (not JSON, RFC 8259 section 6)", non_numbers[i]);
		char text[64];
		snprintf(text, sizeof(text), "{\"v\":%s}", non_numbers[i]);
		body = NULL;
		CHECK_INT(json_parse_object(text, strlen(text), &body, &err), -1);
		CHECK(body == NULL);
		json_object_put(body);
	}
}

/* A quantity given as text, times unit_cents: cents or -1. */
static long long multiply(const char *quantity, int64_t unit_cents)
{
	struct decimal q;
	if (decimal_parse(quantity, strlen(quantity), &q) != 0)
		return -100;
	int64_t cents = -12345;
	if (decimal_multiply_cents(&q, unit_cents, &cents) != 0)
		return -1;
	return cents;
}

static void test_multiply(void)
{
	static const struct {
		const char *quantity;
		int64_t unit;
		long long want; /* -1 refused */
	} cases[] = {
		{"1.5", 250, 375},
		{"1", 250, 250},
		{"0", 250, 0},
		{"2", 0, 0},
		{"0.5", 1, 1},       /* half a cent rounds up */
		{"0.4999", 1, 0},
		{"0.4", 1, 0},
		{"0.333", 3, 1},     /* 0.999 */
		{"0.5", 3, 2},       /* 1.5 */
		{"0.49", 3, 1},      /* 1.47 */
		{"1.25", 2, 3},      /* 2.5 */
		{"1.2499", 2, 2},    /* 2.4998 */
		{"0.001", 500, 1},   /* 0.5 */
		{"0.001", 499, 0},   /* 0.499 */
		{"2.5e-1", 10, 3},   /* 2.5 */
		{"1e2", 7, 700},
		{"1E+2", 7, 700},
		{"100", 250, 25000},
		{"720", 12345, 8888400},
		{"0.0000000000000000000000000000000000000001", 9007199254740991, 0},
		{"1e-41", 9007199254740991, 0},
		{"1", 9007199254740991, 9007199254740991},
		{"1.0000000001", 9007199254740991, -1},
		{"2", 4503599627370496, -1},
		{"2", 4503599627370495, 9007199254740990},
		{"0.5", 9007199254740991, 4503599627370496},
		{"1e41", 1, -1},
		{"1e30", 1, -1},
		{"9999999999999999999", 9007199254740991, -1},
		{"9999999999999999999", INT64_MAX, -1},
		{"0.9999999999999999999", INT64_MAX, -1},
		{"1e-19", INT64_MAX, 1},              /* 0.92 cents */
		{"-1", 250, -1},
		{"-1.5", 250, -1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("multiply %s x %lld -> %lld", cases[i].quantity, (long long)cases[i].unit,
		          cases[i].want);
		CHECK_INT(multiply(cases[i].quantity, cases[i].unit), cases[i].want);
	}

	test_case("multiply: a negative unit price is refused");
	CHECK_INT(multiply("1", -1), -1);

	test_case("multiply: half-up for every quantity 0.001 .. 2.000 at 7 cents");
	int wrong = 0;
	for (int milli = 1; milli <= 2000; milli++) {
		char q[32];
		snprintf(q, sizeof(q), "%d.%03d", milli / 1000, milli % 1000);
		/* milli * 7 / 1000 cents, half-up, in integers */
		long long want = (milli * 7LL * 2 + 1000) / 2000;
		if (multiply(q, 7) != want && wrong++ < 5)
			test_fail(__FILE__, __LINE__, "%s x 7 -> %lld, want %lld", q, multiply(q, 7), want);
	}
	CHECK_INT(wrong, 0);

	/*
	 * The product of a 19-digit coefficient and a unit price near INT64_MAX is
	 * just below 2^127; scaling it by ten for a positive exponent wraps 128
	 * bits.  These values are chosen so that the wrapped result lands below
	 * EE_MAX_CENTS: the true product is about 3.4e37 cents.
	 */
	test_case("multiply: overflow past 128 bits is refused, not wrapped");
	CHECK_INT(multiply("99999999999999882910", INT64_C(3402823669209388619)), -1);
	CHECK_INT(multiply("9999999999999988291e1", INT64_C(6805647338418777238)), -1);
}

static void test_quantity_from_json(void)
{
	static const struct {
		const char *json;
		int ok;
	} cases[] = {
		{"1.5", 1}, {"\"1.5\"", 1}, {"1e3", 1}, {"\"0.0001\"", 1}, {"0", 0},
		{"\"0\"", 0}, {"-1", 0}, {"\"-1\"", 0}, {"\"abc\"", 0}, {"null", 0},
		{"true", 0}, {"[]", 0}, {"{}", 0}, {"\"\"", 0}, {"\" 1\"", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("quantity_from_json %s -> %s", cases[i].json, cases[i].ok ? "ok" : "refused");
		struct json_object *body;
		bool present;
		struct json_object *v = field_value(cases[i].json, &body, &present);
		CHECK(body != NULL && present);
		struct decimal q;
		CHECK_INT(quantity_from_json(v, &q), cases[i].ok ? 0 : -1);
		json_object_put(body);
	}

	test_case("quantity_from_json: 1.5 as a JSON number keeps its digits");
	struct json_object *body;
	bool present;
	struct json_object *v = field_value("1.5", &body, &present);
	struct decimal q;
	CHECK_INT(quantity_from_json(v, &q), 0);
	CHECK_INT(q.coefficient, 15);
	CHECK_INT(q.exponent, -1);
	int64_t cents = 0;
	CHECK_INT(decimal_multiply_cents(&q, 250, &cents), 0);
	CHECK_INT(cents, 375);
	json_object_put(body);
}

/*
 * jsonutil.h promises json_parse_value parses "any JSON value"; json-c only
 * ends a top-level number (or literal) when it sees the byte after it, so a
 * bare scalar must parse as well as one inside an object.
 */
static void test_bare_scalars(void)
{
	static const char *const scalars[] = {"12.345", "1e3", "12", "0", "true", "false"};
	for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
		test_case("json_parse_value parses the bare scalar %s", scalars[i]);
		struct json_object *v = json_parse_value(scalars[i], strlen(scalars[i]));
		CHECK(v != NULL);
		if (v && strcmp(scalars[i], "12.345") == 0) {
			int64_t cents = 0;
			struct ee_error err;
			CHECK_INT(amount_from_json(v, true, &cents, &err), 0);
			CHECK_INT(cents, 1235);
		}
		json_object_put(v);
	}
	test_case("json_parse_value still refuses a number with garbage after it");
	CHECK(json_parse_value("12x", 3) == NULL);
	CHECK(json_parse_value("12 3", 4) == NULL);
}

int main(void)
{
	test_parse_table();
	test_parse_fields();
	test_long_forms();
	test_half_up_boundaries();
	test_amount_from_json();
	test_non_numbers();
	test_multiply();
	test_quantity_from_json();
	test_bare_scalars();
	return test_finish();
}
