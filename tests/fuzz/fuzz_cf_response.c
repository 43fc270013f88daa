/*
 * fuzz_cf_response.c - what ee-dns does with an answer from Cloudflare's
 * API (deploy/ee-dns/cf_response.c): the envelope, then its result read as
 * each shape ee-dns asks for: a list of zones, one zone, a list of DNS
 * records, one record.
 * Properties: no crash, no leak, no read past the body; a failed parse
 * holds nothing; every error text is printable ASCII within its bound;
 * every zone and record read has an id and name of the allowed character
 * sets, a bounded printable content and status, a positive TTL, and a
 * count no smaller than what was kept.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_TARGET "fuzz_cf_response"
#include "fuzz_support.h"

#include "cf_response.h"

#define KEPT 3

static bool printable(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	}
	return true;
}

static void check_zone(const struct cf_zone *z, const uint8_t *data, size_t size)
{
	if (!cf_valid_id(z->id, strnlen(z->id, sizeof(z->id))) ||
	    !cf_valid_name(z->name, strnlen(z->name, sizeof(z->name))) ||
	    !printable(z->status, CF_STATUS_MAX))
		fuzz_fail("a zone with a bad field was accepted", data, size);
}

static void check_record(const struct cf_record *r, const uint8_t *data, size_t size)
{
	size_t type_len = strnlen(r->type, sizeof(r->type));
	if (!cf_valid_id(r->id, strnlen(r->id, sizeof(r->id))) ||
	    !cf_valid_name(r->name, strnlen(r->name, sizeof(r->name))) || type_len == 0 ||
	    type_len > CF_TYPE_MAX || !printable(r->content, CF_CONTENT_MAX) || r->ttl < 1)
		fuzz_fail("a record with a bad field was accepted", data, size);
	for (size_t i = 0; i < type_len; i++) {
		if (!((r->type[i] >= 'A' && r->type[i] <= 'Z') || (r->type[i] >= '0' && r->type[i] <= '9')))
			fuzz_fail("a record type outside [A-Z0-9] was accepted", data, size);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body;
	if (!fuzz_input_copy(data, size, &body))
		return 0;
	struct cf_response r;
	enum cf_parse_result parsed = cf_response_parse(body, size, &r);
	if (parsed != CF_PARSE_OK) {
		if (r.root || r.result || r.error_count)
			fuzz_fail("a failed parse holds something", data, size);
		free(body);
		return 0;
	}
	for (size_t i = 0; i < r.error_count && i < CF_ERRORS_KEPT; i++) {
		if (!printable(r.errors[i].text, CF_MESSAGE_MAX))
			fuzz_fail("an error text is not printable or too long", data, size);
	}

	struct cf_zone zones[KEPT], zone;
	struct cf_record records[KEPT], record;
	size_t count;
	if (cf_zones_from_result(r.result, zones, KEPT, &count) == 0) {
		if (!r.result || count != json_object_array_length(r.result))
			fuzz_fail("a zone count differs from the list", data, size);
		for (size_t i = 0; i < count && i < KEPT; i++)
			check_zone(&zones[i], data, size);
	}
	if (cf_records_from_result(r.result, records, KEPT, &count) == 0) {
		if (!r.result || count != json_object_array_length(r.result))
			fuzz_fail("a record count differs from the list", data, size);
		for (size_t i = 0; i < count && i < KEPT; i++)
			check_record(&records[i], data, size);
	}
	if (cf_zone_from_object(r.result, &zone) == 0)
		check_zone(&zone, data, size);
	if (cf_record_from_object(r.result, &record) == 0)
		check_record(&record, data, size);
	cf_response_free(&r);
	free(body);
	return 0;
}
