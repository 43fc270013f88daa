/* amount.c - exact decimal parsing and rounding for money; see amount.h. */
#include "amount.h"

#include <string.h>

#include <json-c/json.h>

#define MAX_SIGNIFICANT 19
/*
 * Exponents are clamped far beyond any amount that fits (so the arithmetic
 * cannot overflow) but only after the digit count is combined with them.
 */
#define MAX_EXPONENT_LITERAL INT64_C(1000000000000)
#define MAX_EXPONENT_RESULT 100000


static bool is_digit(char c) { return c >= '0' && c <= '9'; }

int decimal_parse(const char *s, size_t len, struct decimal *out)
{
	size_t i = 0;
	bool negative = false;
	if (i < len && s[i] == '-') {
		negative = true;
		i++;
	}
	/* Collect the digits of the integer and fraction parts without leading zeros. */
	char sig[MAX_SIGNIFICANT + 1];
	size_t nsig = 0;
	size_t trailing_zeros = 0; /* zeros seen after the last nonzero significant digit */
	int64_t frac_digits = 0;
	bool any = false;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (i < len && is_digit(s[i])) {
			char c = s[i++];
			any = true;
			if (part == 1)
				frac_digits++;
			if (nsig == 0 && c == '0')
				continue;
			if (c == '0') {
				trailing_zeros++;
				continue;
			}
			/* Flush zeros that turned out to be inside the number. */
			while (trailing_zeros > 0) {
				if (nsig >= MAX_SIGNIFICANT)
					return -1;
				sig[nsig++] = '0';
				trailing_zeros--;
			}
			if (nsig >= MAX_SIGNIFICANT)
				return -1;
			sig[nsig++] = c;
		}
		if (i == start)
			return -1; /* "", "-", ".5", "5." */
		if (part == 0) {
			if (i < len && s[i] == '.') {
				i++;
				continue;
			}
			break;
		}
	}
	if (!any)
		return -1;
	int64_t exponent = 0;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		bool eneg = false;
		if (i < len && (s[i] == '+' || s[i] == '-')) {
			eneg = s[i] == '-';
			i++;
		}
		size_t start = i;
		while (i < len && is_digit(s[i])) {
			if (exponent < MAX_EXPONENT_LITERAL)
				exponent = exponent * 10 + (s[i] - '0');
			i++;
		}
		if (i == start)
			return -1;
		if (eneg)
			exponent = -exponent;
	}
	if (i != len)
		return -1;

	uint64_t coefficient = 0;
	for (size_t k = 0; k < nsig; k++)
		coefficient = coefficient * 10 + (uint64_t)(sig[k] - '0');
	out->coefficient = coefficient;
	out->negative = negative && coefficient != 0;
	/* Zeros dropped from the end of the significant digits scale the value up. */
	int64_t exp_total = exponent - frac_digits + (int64_t)trailing_zeros;
	if (coefficient == 0)
		exp_total = 0;
	if (exp_total > MAX_EXPONENT_RESULT)
		exp_total = MAX_EXPONENT_RESULT;
	if (exp_total < -MAX_EXPONENT_RESULT)
		exp_total = -MAX_EXPONENT_RESULT;
	out->exponent = (int)exp_total;
	return 0;
}

/* value * 10^shift rounded half-up, for value < 2^64; -1 if above limit. */
static int scale_round(unsigned __int128 value, int shift, uint64_t limit, uint64_t *out)
{
	if (value == 0) {
		*out = 0;
		return 0;
	}
	if (shift >= 0) {
		for (int k = 0; k < shift; k++) {
			/* Compare before multiplying, so the product cannot wrap. */
			if (value > limit / 10)
				return -1;
			value *= 10;
		}
		if (value > limit)
			return -1;
		*out = (uint64_t)value;
		return 0;
	}
	int down = -shift;
	if (down > 38) {
		*out = 0; /* far below half a cent */
		return 0;
	}
	unsigned __int128 divisor = 1;
	for (int k = 0; k < down; k++)
		divisor *= 10;
	unsigned __int128 q = value / divisor, r = value % divisor;
	/* Half-up: a remainder of at least half the divisor rounds away from zero. */
	if (r >= divisor - r)
		q += 1;
	if (q > limit)
		return -1;
	*out = (uint64_t)q;
	return 0;
}

int decimal_to_cents(const struct decimal *d, int64_t *cents)
{
	if (d->negative)
		return -1;
	uint64_t v;
	if (d->exponent > 40)
		return d->coefficient == 0 ? (*cents = 0, 0) : -1;
	if (scale_round(d->coefficient, d->exponent + 2, (uint64_t)EE_MAX_CENTS, &v) != 0)
		return -1;
	*cents = (int64_t)v;
	return 0;
}

int decimal_multiply_cents(const struct decimal *quantity, int64_t unit_cents, int64_t *cents)
{
	if (quantity->negative || unit_cents < 0)
		return -1;
	if (quantity->exponent > 40)
		return -1;
	unsigned __int128 product = (unsigned __int128)quantity->coefficient * (uint64_t)unit_cents;
	uint64_t v;
	if (scale_round(product, quantity->exponent, (uint64_t)EE_MAX_CENTS, &v) != 0)
		return -1;
	*cents = (int64_t)v;
	return 0;
}

/* The exact text of a JSON string or number; NULL for any other type. */
static const char *number_text(struct json_object *value, size_t *len)
{
	switch (json_object_get_type(value)) {
	case json_type_string: {
		const char *s = json_object_get_string(value);
		*len = (size_t)json_object_get_string_len(value);
		if (strlen(s) != *len)
			return NULL; /* embedded NUL */
		return s;
	}
	case json_type_int:
	case json_type_double: {
		/* json-c keeps the literal text of a parsed number for serialisation. */
		const char *s = json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN);
		*len = strlen(s);
		return s;
	}
	default:
		return NULL;
	}
}

int amount_from_json(struct json_object *value, bool present, int64_t *cents,
                     struct ee_error *err)
{
	if (!present)
		return ee_fail(err, 400, "missing_amount");
	size_t len;
	const char *text = value ? number_text(value, &len) : NULL;
	struct decimal d;
	if (!text || len > 64 || decimal_parse(text, len, &d) != 0 ||
	    decimal_to_cents(&d, cents) != 0 || *cents <= 0)
		return ee_fail(err, 400, "invalid_amount");
	return 0;
}

int quantity_or_zero_from_json(struct json_object *value, struct decimal *out)
{
	size_t len;
	const char *text = value ? number_text(value, &len) : NULL;
	if (!text || len > 64 || decimal_parse(text, len, out) != 0 || out->negative)
		return -1;
	return 0;
}

int quantity_from_json(struct json_object *value, struct decimal *out)
{
	size_t len;
	const char *text = value ? number_text(value, &len) : NULL;
	if (!text || len > 64 || decimal_parse(text, len, out) != 0 || out->negative ||
	    out->coefficient == 0)
		return -1;
	return 0;
}
