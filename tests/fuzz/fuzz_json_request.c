/*
 * fuzz_json_request.c - libFuzzer target for lib/jsonutil.c, the strict
 * parser of request bodies, and the typed field access handlers use.
 *
 * The input bytes, in a buffer of exactly their length with no terminator,
 * go to json_parse_object.  Checks:
 *   - it fails with 400 "invalid_json" and no object, or gives an object;
 *   - json_get_string, json_get_bool and json_get answer consistently with
 *     json-c itself for the fields handlers read and for the body's own keys
 *     (a string holding NUL is WRONG_TYPE; an OK string has its length);
 *   - amount_from_json gives positive cents of at most EE_MAX_CENTS or
 *     missing_amount / invalid_amount, and quantity_from_json a positive
 *     decimal, whatever the field holds;
 *   - the object written back by json_text parses again and writes the
 *     same text, and so does any value json_parse_value accepts (a bare
 *     number or literal included);
 *   - nothing crashes, reads out of bounds or leaks (ASan, LSan).
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
#include "timeutil.h"

#define FUZZ_TARGET "fuzz_json_request"
#define FUZZ_INPUT_SHOWN 300 /* request bodies are longer */
#include "fuzz_support.h"

#define FUZZ_MAX_OWN_KEYS 8

/* The fields the handlers of fcgi/ read, and a key no handler uses. */
static const char *const handler_keys[] = {
	"account_id",   "from_account", "to_account", "amount_usd",       "amount",
	"node_id",      "period_start", "period_end", "vcpu_hours",       "price_usd_per_vcpu_hour",
	"price_usd",    "stake_amount_usd", "stake_tier", "status",       "allow_update",
	"rotate_token", "reason",       "reported_by", "action",          "authorized_by",
	"",
};

static void check_field(struct json_object *obj, const char *key, const uint8_t *data,
                        size_t size)
{
	struct json_object *raw = NULL;
	bool raw_present = json_object_object_get_ex(obj, key, &raw);

	bool present = !raw_present;
	struct json_object *v = json_get(obj, key, &present);
	if (present != raw_present || v != raw)
		fuzz_fail("json_get disagrees with json-c", data, size);

	const char *s = (const char *)1;
	size_t len = 1;
	enum json_field_state st = json_get_string(obj, key, &s, &len);
	switch (st) {
	case JSON_FIELD_ABSENT:
		if (raw_present || s || len)
			fuzz_fail("json_get_string ABSENT for a present key", data, size);
		break;
	case JSON_FIELD_NULL:
		if (!raw_present || raw || s || len)
			fuzz_fail("json_get_string NULL for a non-null value", data, size);
		break;
	case JSON_FIELD_WRONG_TYPE:
		if (!raw || s || len ||
		    (json_object_is_type(raw, json_type_string) &&
		     strlen(json_object_get_string(raw)) == (size_t)json_object_get_string_len(raw)))
			fuzz_fail("json_get_string WRONG_TYPE for a clean string", data, size);
		break;
	case JSON_FIELD_OK:
		if (!raw || !json_object_is_type(raw, json_type_string) || !s || strlen(s) != len)
			fuzz_fail("json_get_string OK without a clean string", data, size);
		/* Handlers hand string fields to the time parser. */
		if (len <= 64) {
			int64_t t;
			(void)time_parse_rfc3339(s, len, &t);
		}
		break;
	default:
		fuzz_fail("json_get_string returned no state", data, size);
	}

	bool b = true;
	st = json_get_bool(obj, key, &b);
	bool want_ok = raw && json_object_is_type(raw, json_type_boolean);
	if ((st == JSON_FIELD_OK) != want_ok || (st != JSON_FIELD_OK && b) ||
	    (st == JSON_FIELD_OK && b != (bool)json_object_get_boolean(raw)))
		fuzz_fail("json_get_bool disagrees with json-c", data, size);

	int64_t cents = -1;
	struct ee_error err = {0};
	if (amount_from_json(v, present, &cents, &err) == 0) {
		if (cents <= 0 || cents > EE_MAX_CENTS)
			fuzz_fail("amount_from_json gave cents out of range", data, size);
	} else if (err.status != 400 ||
	           strcmp(err.reason, present ? "invalid_amount" : "missing_amount") != 0) {
		fuzz_fail("amount_from_json failed with the wrong reason", data, size);
	}

	struct decimal q;
	if (quantity_from_json(v, &q) == 0 && (q.negative || q.coefficient == 0))
		fuzz_fail("quantity_from_json accepted a quantity that is not positive", data, size);
}

/* What json_text writes must be strict JSON that writes itself the same way. */
static void check_round_trip(struct json_object *obj, const uint8_t *data, size_t size)
{
	size_t len = 0;
	const char *text = json_text(obj, &len);
	if (!text)
		fuzz_fail("json_text gave nothing", data, size);
	char *first = malloc(len ? len : 1);
	if (!first)
		abort();
	memcpy(first, text, len);
	struct json_object *again = json_parse_value(first, len);
	if (!again || json_object_get_type(again) != json_object_get_type(obj)) {
		fprintf(stderr, "written as: %.*s\n", (int)(len < 300 ? len : 300), first);
		fuzz_fail("a body written by json_text does not parse again", data, size);
	}
	size_t len2 = 0;
	const char *text2 = json_text(again, &len2);
	if (len2 != len || memcmp(text2, first, len) != 0)
		fuzz_fail("json_text is not stable across a parse", data, size);
	json_object_put(again);
	free(first);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body;
	if (!fuzz_input_copy(data, size, &body))
		return 0;

	struct json_object *obj = (struct json_object *)1;
	struct ee_error err = {0};
	if (json_parse_object(body, size, &obj, &err) != 0) {
		if (obj || err.status != 400 || strcmp(err.reason, "invalid_json") != 0)
			fuzz_fail("a refused body without invalid_json", data, size);
	} else {
		if (!obj || !json_object_is_type(obj, json_type_object))
			fuzz_fail("json_parse_object gave something else than an object", data, size);
		for (size_t i = 0; i < sizeof(handler_keys) / sizeof(handler_keys[0]); i++)
			check_field(obj, handler_keys[i], data, size);
		int own = 0;
		json_object_object_foreach(obj, key, val) {
			(void)val;
			if (own++ == FUZZ_MAX_OWN_KEYS)
				break;
			check_field(obj, key, data, size);
		}
		check_round_trip(obj, data, size);
		json_object_put(obj);
	}

	/* Any JSON value, as tunnel messages are read. */
	struct json_object *value = json_parse_value(body, size);
	if (value) {
		check_round_trip(value, data, size);
		json_object_put(value);
	}
	free(body);
	return 0;
}
