/*
 * amount.h - exact decimal amounts.
 *
 * Money arrives as JSON strings ("12.345") or numbers (12.345, 1e3) in US
 * dollars and is kept as integer cents.  The text of the number is parsed as a
 * decimal, never through a double, and rounded half-up to cents as the
 * original service did.  The grammar is
 *     [-] digits [ "." digits ] [ ("e"|"E") [+|-] digits ]
 * with at most 19 significant digits; no spaces, no "NaN", no "Infinity".
 * An amount must be positive after rounding and at most EE_MAX_CENTS.
 */
#ifndef EE_AMOUNT_H
#define EE_AMOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct json_object;

/* 2^53 - 1: every amount and balance stays exact in any JSON reader. */
#define EE_MAX_CENTS INT64_C(9007199254740991)

/* value = (negative ? -1 : 1) * coefficient * 10^exponent */
struct decimal {
	uint64_t coefficient;
	int exponent;
	bool negative;
};

/* Parses the grammar above; -1 on anything else. */
int decimal_parse(const char *text, size_t len, struct decimal *out);

/* Dollars to cents, half-up.  -1 if negative or above EE_MAX_CENTS. */
int decimal_to_cents(const struct decimal *d, int64_t *cents);

/* quantity * unit_cents, half-up (usage: vCPU-hours times price).  -1 on overflow. */
int decimal_multiply_cents(const struct decimal *quantity, int64_t unit_cents, int64_t *cents);

/*
 * Reads a dollar amount from a JSON value (string or number).  value NULL
 * means the field was absent: "missing_amount".  Everything that is not a
 * positive amount of at most EE_MAX_CENTS cents is "invalid_amount".
 */
int amount_from_json(struct json_object *value, bool present, int64_t *cents,
                     struct ee_error *err);

/* Reads a positive decimal quantity (vCPU-hours) from a JSON string or number. */
int quantity_from_json(struct json_object *value, struct decimal *out);
/* The same, zero allowed (a price or a stake may be zero). */
int quantity_or_zero_from_json(struct json_object *value, struct decimal *out);

#endif
