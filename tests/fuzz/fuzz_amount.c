/*
 * fuzz_amount.c - libFuzzer target for lib/amount.c, the money parser.
 *
 * The input bytes (copied into a buffer of exactly their length, so any read
 * past the end is an ASan report) go to decimal_parse.  A slow reference
 * written here from amount.h alone - the grammar checked character by
 * character, the value kept as a digit string, rounding done on digits -
 * must agree with the library on every input, or the target aborts:
 *   - decimal_parse accepts exactly the grammar with at most 19 significant
 *     digits, and fills coefficient, exponent and sign with the same value;
 *   - decimal_to_cents succeeds only for non-negative values that round
 *     half-up to at most EE_MAX_CENTS cents, and gives the same cents;
 *   - decimal_multiply_cents (usage: quantity times a unit price) gives the
 *     same half-up product for a few unit prices, or fails on overflow;
 *   - amount_from_json and quantity_from_json on the bytes as a JSON string,
 *     and amount_from_json on the bytes parsed as a JSON number, accept
 *     exactly the positive amounts of at most 64 characters.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "amount.h"
#include "error.h"
#include "jsonutil.h"

#define FUZZ_TARGET "fuzz_amount"
#include "fuzz_support.h"

#define REF_MAX_SIGNIFICANT 19
#define REF_AMOUNT_TEXT_MAX 64
/* An exponent beyond this is "huge" for the reference: no digit string can bring it back. */
#define REF_EXPONENT_SATURATE 1000000000LL

static const char max_cents_text[] = "9007199254740991"; /* EE_MAX_CENTS */

/* The value of a text under the grammar of amount.h, as the reference sees it. */
struct ref_decimal {
	bool valid;               /* matches the grammar */
	bool negative;            /* a '-' and a nonzero value */
	char digits[FUZZ_MAX_INPUT + 1]; /* significant digits: no leading, no trailing zeros */
	size_t ndigits;           /* 0 for zero */
	long long exponent;       /* value = digits * 10^exponent */
	bool exponent_literal_big; /* the written exponent was 100000 or more in size */
};

static bool ref_is_digit(char c) { return c >= '0' && c <= '9'; }

static void ref_parse(const char *s, size_t len, struct ref_decimal *r)
{
	r->valid = false;
	r->negative = false;
	r->ndigits = 0;
	r->exponent = 0;
	r->exponent_literal_big = false;
	size_t i = 0;
	bool minus = false;
	if (i < len && s[i] == '-') {
		minus = true;
		i++;
	}
	size_t int_start = i;
	while (i < len && ref_is_digit(s[i]))
		i++;
	size_t int_end = i;
	if (int_end == int_start)
		return;
	size_t frac_start = i, frac_end = i;
	if (i < len && s[i] == '.') {
		i++;
		frac_start = i;
		while (i < len && ref_is_digit(s[i]))
			i++;
		frac_end = i;
		if (frac_end == frac_start)
			return;
	}
	long long literal = 0;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		bool eneg = false;
		if (i < len && (s[i] == '+' || s[i] == '-')) {
			eneg = s[i] == '-';
			i++;
		}
		size_t start = i;
		while (i < len && ref_is_digit(s[i])) {
			literal = literal * 10 + (s[i] - '0');
			if (literal > REF_EXPONENT_SATURATE)
				literal = REF_EXPONENT_SATURATE;
			i++;
		}
		if (i == start)
			return;
		r->exponent_literal_big = literal >= 100000;
		if (eneg)
			literal = -literal;
	}
	if (i != len)
		return;
	r->valid = true;

	/* All digits in order, then strip zeros at both ends. */
	size_t n = 0;
	for (size_t k = int_start; k < int_end; k++)
		r->digits[n++] = s[k];
	for (size_t k = frac_start; k < frac_end; k++)
		r->digits[n++] = s[k];
	size_t lead = 0;
	while (lead < n && r->digits[lead] == '0')
		lead++;
	if (lead == n) {
		r->ndigits = 0;
		r->digits[0] = '\0';
		return;
	}
	size_t end = n;
	while (r->digits[end - 1] == '0')
		end--;
	long long trailing = (long long)(n - end);
	memmove(r->digits, r->digits + lead, end - lead);
	r->ndigits = end - lead;
	r->digits[r->ndigits] = '\0';
	r->negative = minus;
	r->exponent = literal - (long long)(frac_end - frac_start) + trailing;
}

/*
 * digits (no leading zeros, n may be 0) * 10^shift rounded half-up to an
 * integer: -1 when above EE_MAX_CENTS.  Half-up on a digit string is just
 * "the first digit dropped is 5 or more".
 */
static int ref_round(const char *digits, size_t n, long long shift, int64_t *out)
{
	if (n == 0) {
		*out = 0;
		return 0;
	}
	size_t max_len = sizeof(max_cents_text) - 1;
	if (shift >= 0) {
		if ((long long)n + shift > (long long)max_len)
			return -1;
		char text[32];
		memcpy(text, digits, n);
		memset(text + n, '0', (size_t)shift);
		size_t len = n + (size_t)shift;
		text[len] = '\0';
		if (len == max_len && strcmp(text, max_cents_text) > 0)
			return -1;
		*out = strtoll(text, NULL, 10);
		return 0;
	}
	long long drop = -shift;
	if (drop > (long long)n) {
		*out = 0; /* the first dropped digit is an implicit leading zero */
		return 0;
	}
	size_t keep = n - (size_t)drop;
	bool up = digits[keep] >= '5';
	if (keep > max_len)
		return -1;
	uint64_t v = 0;
	for (size_t k = 0; k < keep; k++)
		v = v * 10 + (uint64_t)(digits[k] - '0');
	if (up)
		v++;
	if (v > (uint64_t)EE_MAX_CENTS)
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* The reference for decimal_to_cents. */
static int ref_cents(const struct ref_decimal *r, int64_t *cents)
{
	if (r->negative && r->ndigits > 0)
		return -1;
	return ref_round(r->digits, r->ndigits, r->exponent + 2, cents);
}

/* The reference for decimal_multiply_cents: digits * unit, then rounding. */
static int ref_multiply(const struct ref_decimal *r, int64_t unit, int64_t *cents)
{
	if (r->negative && r->ndigits > 0)
		return -1;
	if (r->ndigits == 0 || unit == 0) {
		*cents = 0;
		return 0;
	}
	/* Schoolbook: the digit string times a 53-bit number, least significant first. */
	static char product[REF_MAX_SIGNIFICANT + 24];
	char reversed[REF_MAX_SIGNIFICANT + 24];
	size_t len = 0;
	unsigned __int128 carry = 0;
	for (size_t k = r->ndigits; k-- > 0;) {
		carry += (unsigned __int128)(r->digits[k] - '0') * (uint64_t)unit;
		reversed[len++] = (char)('0' + (int)(carry % 10));
		carry /= 10;
	}
	while (carry > 0) {
		reversed[len++] = (char)('0' + (int)(carry % 10));
		carry /= 10;
	}
	while (len > 1 && reversed[len - 1] == '0')
		len--;
	for (size_t k = 0; k < len; k++)
		product[k] = reversed[len - 1 - k];
	return ref_round(product, len, r->exponent, cents);
}

static uint64_t ref_coefficient(const struct ref_decimal *r)
{
	uint64_t v = 0;
	for (size_t k = 0; k < r->ndigits; k++)
		v = v * 10 + (uint64_t)(r->digits[k] - '0');
	return v;
}

static void check_decimal(const struct ref_decimal *r, const struct decimal *d,
                          const uint8_t *data, size_t size)
{
	if (d->coefficient != ref_coefficient(r))
		fuzz_fail("coefficient differs from the reference", data, size);
	if (d->negative != (r->negative && r->ndigits > 0))
		fuzz_fail("sign differs from the reference", data, size);
	if (r->ndigits == 0) {
		if (d->exponent != 0)
			fuzz_fail("zero with a nonzero exponent", data, size);
		return;
	}
	if (!r->exponent_literal_big) {
		long long want = r->exponent;
		if (want > 100000)
			want = 100000;
		if (want < -100000)
			want = -100000;
		if (d->exponent != want)
			fuzz_fail("exponent differs from the reference", data, size);
		return;
	}
	/* A written exponent of 100000 or more is capped while reading: only the side matters. */
	if ((r->exponent > 0) != (d->exponent > 0) || d->exponent > 100000 ||
	    d->exponent < -100000 || (d->exponent < 30000 && d->exponent > -30000))
		fuzz_fail("huge exponent not kept huge", data, size);
}

static const int64_t unit_prices[] = {1, 3, 50, 100, 999, 12345, INT64_C(70000000000),
                                      EE_MAX_CENTS};

static void check_text(const char *text, size_t size, const uint8_t *data)
{
	static struct ref_decimal r;
	ref_parse(text, size, &r);
	bool want_parse = r.valid && r.ndigits <= REF_MAX_SIGNIFICANT;
	struct decimal d;
	int rc = decimal_parse(text, size, &d);
	if ((rc == 0) != want_parse)
		fuzz_fail(rc == 0 ? "decimal_parse accepted what the reference refuses"
		                  : "decimal_parse refused what the reference accepts",
		          data, size);

	/* The JSON string path: the same text as a string value. */
	struct json_object *str = json_object_new_string_len(text, (int)size);
	if (!str)
		abort();
	bool clean = size <= REF_AMOUNT_TEXT_MAX && memchr(text, '\0', size) == NULL;
	int64_t want_cents = 0;
	bool want_amount = clean && want_parse && ref_cents(&r, &want_cents) == 0 && want_cents > 0;
	int64_t cents = -1;
	struct ee_error err = {0};
	rc = amount_from_json(str, true, &cents, &err);
	if ((rc == 0) != want_amount)
		fuzz_fail(rc == 0 ? "amount_from_json accepted a bad amount"
		                  : "amount_from_json refused a good amount",
		          data, size);
	if (rc == 0 && cents != want_cents)
		fuzz_fail("amount_from_json cents differ from the reference", data, size);
	if (rc != 0 && (err.status != 400 || strcmp(err.reason, "invalid_amount") != 0))
		fuzz_fail("amount_from_json failed with the wrong reason", data, size);
	struct decimal q;
	rc = quantity_from_json(str, &q);
	bool want_quantity = clean && want_parse && !r.negative && r.ndigits > 0;
	if ((rc == 0) != want_quantity)
		fuzz_fail("quantity_from_json disagrees with the reference", data, size);
	json_object_put(str);

	if (!want_parse)
		return;
	check_decimal(&r, &d, data, size);

	int64_t want = 0;
	int want_rc = ref_cents(&r, &want);
	cents = -1;
	rc = decimal_to_cents(&d, &cents);
	if (rc != want_rc)
		fuzz_fail(rc == 0 ? "decimal_to_cents accepted what the reference refuses"
		                  : "decimal_to_cents refused what the reference accepts",
		          data, size);
	if (rc == 0 && (cents != want || cents < 0 || cents > EE_MAX_CENTS))
		fuzz_fail("decimal_to_cents differs from the reference", data, size);

	for (size_t k = 0; k < sizeof(unit_prices) / sizeof(unit_prices[0]); k++) {
		want_rc = ref_multiply(&r, unit_prices[k], &want);
		cents = -1;
		rc = decimal_multiply_cents(&d, unit_prices[k], &cents);
		if (rc != want_rc || (rc == 0 && cents != want)) {
			fprintf(stderr, "unit %lld: library rc %d cents %lld, reference rc %d cents %lld\n",
			        (long long)unit_prices[k], rc, (long long)cents, want_rc, (long long)want);
			fuzz_fail("decimal_multiply_cents differs from the reference", data, size);
		}
	}
}

/* The JSON number path: json-c keeps a parsed number's text, which must read the same. */
static void check_json_number(const char *text, size_t size, const uint8_t *data)
{
	struct json_object *v = json_parse_value(text, size);
	if (!v)
		return;
	enum json_type type = json_object_get_type(v);
	if (type == json_type_int || type == json_type_double) {
		size_t start = 0, end = size;
		while (start < end && strchr(" \t\r\n", text[start]) && text[start])
			start++;
		while (end > start && strchr(" \t\r\n", text[end - 1]) && text[end - 1])
			end--;
		static struct ref_decimal r;
		ref_parse(text + start, end - start, &r);
		const char *shown = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
		int64_t want = 0;
		bool want_ok = r.valid && r.ndigits <= REF_MAX_SIGNIFICANT &&
		               strlen(shown) <= REF_AMOUNT_TEXT_MAX && ref_cents(&r, &want) == 0 &&
		               want > 0;
		int64_t cents = -1;
		struct ee_error err = {0};
		int rc = amount_from_json(v, true, &cents, &err);
		if ((rc == 0) != want_ok || (rc == 0 && cents != want)) {
			fprintf(stderr, "json-c shows the number as \"%s\"; library rc %d cents %lld, "
			        "reference ok %d cents %lld\n", shown, rc, (long long)cents, want_ok,
			        (long long)want);
			fuzz_fail("amount_from_json on a JSON number differs from the reference", data, size);
		}
	}
	json_object_put(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	if (!fuzz_input_copy(data, size, &text))
		return 0;

	check_text(text, size, data);
	check_json_number(text, size, data);

	struct ee_error err = {0};
	int64_t cents = 0;
	if (amount_from_json(NULL, false, &cents, &err) == 0 ||
	    strcmp(err.reason, "missing_amount") != 0)
		fuzz_fail("an absent amount is not missing_amount", data, size);

	free(text);
	return 0;
}
