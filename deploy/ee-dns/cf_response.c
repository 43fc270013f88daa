/* cf_response.c - Cloudflare's JSON answers, checked field by field; see cf_response.h. */
#include "cf_response.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jsonutil.h"

bool cf_valid_id(const char *s, size_t len)
{
	if (len == 0 || len > CF_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool cf_valid_name(const char *s, size_t len)
{
	if (len == 0 || len > CF_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '*' || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static bool valid_type(const char *s, size_t len)
{
	if (len == 0 || len > CF_TYPE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
			return false;
	}
	return true;
}

/* Printable ASCII and spaces, as in a record's content or a zone's status. */
static bool valid_text(const char *s, size_t len, size_t max)
{
	if (len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	}
	return true;
}

/*
 * Appends text to a message for a person: bytes that are not printable
 * ASCII become '?', and a message too long ends in "...".
 */
static void message_append(char *dst, const char *text)
{
	size_t at = strlen(dst);
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (at >= CF_MESSAGE_MAX) {
			memcpy(dst + CF_MESSAGE_MAX - 3, "...", 3);
			break;
		}
		dst[at++] = (*p >= 0x20 && *p <= 0x7e) ? (char)*p : '?';
	}
	dst[at] = '\0';
}

/* A code as a long, or 0 when absent or not an integer. */
static long message_code(struct json_object *obj)
{
	bool present;
	struct json_object *v = json_get(obj, "code", &present);
	if (!v || !json_object_is_type(v, json_type_int))
		return 0;
	int64_t code = json_object_get_int64(v);
	return (code >= -2147483647 && code <= 2147483647) ? (long)code : 0;
}

static const char *message_text(struct json_object *obj)
{
	const char *s;
	size_t n;
	return json_get_string(obj, "message", &s, &n) == JSON_FIELD_OK ? s : "";
}

/*
 * One entry of "errors".  An entry of the wrong shape is still an error
 * Cloudflare reported: it is kept with code 0 and whatever text it has.
 */
static void message_from(struct json_object *item, struct cf_message *out)
{
	out->code = 0;
	out->text[0] = '\0';
	if (!item || !json_object_is_type(item, json_type_object))
		return;
	out->code = message_code(item);
	message_append(out->text, message_text(item));
	/* Cloudflare explains some errors with a chain of finer ones. */
	bool present;
	struct json_object *chain = json_get(item, "error_chain", &present);
	if (!chain || !json_object_is_type(chain, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(chain); i++) {
		struct json_object *link = json_object_array_get_idx(chain, i);
		if (!link || !json_object_is_type(link, json_type_object))
			continue;
		char part[48];
		snprintf(part, sizeof(part), ": %ld ", message_code(link));
		message_append(out->text, part);
		message_append(out->text, message_text(link));
	}
}

enum cf_parse_result cf_response_parse(const char *body, size_t len, struct cf_response *out)
{
	memset(out, 0, sizeof(*out));
	struct json_object *root = json_parse_value(body, len);
	if (!root)
		return CF_PARSE_NOT_JSON;
	bool success, present;
	struct json_object *errors = NULL;
	if (!json_object_is_type(root, json_type_object) ||
	    json_get_bool(root, "success", &success) != JSON_FIELD_OK)
		goto not_envelope;
	errors = json_get(root, "errors", &present);
	if (errors && !json_object_is_type(errors, json_type_array))
		goto not_envelope;
	out->success = success;
	out->error_count = errors ? json_object_array_length(errors) : 0;
	for (size_t i = 0; i < out->error_count && i < CF_ERRORS_KEPT; i++)
		message_from(json_object_array_get_idx(errors, i), &out->errors[i]);
	out->root = root;
	out->result = json_get(root, "result", &present);
	return CF_PARSE_OK;

not_envelope:
	json_object_put(root);
	return CF_PARSE_NOT_ENVELOPE;
}

void cf_response_free(struct cf_response *r)
{
	json_object_put(r->root);
	memset(r, 0, sizeof(*r));
}

/* A required string field held to check(), copied into out (size max + 1). */
static int copy_string(struct json_object *obj, const char *key, bool (*check)(const char *, size_t),
                       char *out, size_t max)
{
	const char *s;
	size_t n;
	if (json_get_string(obj, key, &s, &n) != JSON_FIELD_OK || n > max || !check(s, n))
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static bool valid_content(const char *s, size_t len) { return valid_text(s, len, CF_CONTENT_MAX); }

static bool valid_status(const char *s, size_t len) { return valid_text(s, len, CF_STATUS_MAX); }

int cf_zone_from_object(struct json_object *obj, struct cf_zone *out)
{
	memset(out, 0, sizeof(*out));
	if (!obj || !json_object_is_type(obj, json_type_object))
		return -1;
	if (copy_string(obj, "id", cf_valid_id, out->id, CF_ID_MAX) != 0 ||
	    copy_string(obj, "name", cf_valid_name, out->name, CF_NAME_MAX) != 0)
		return -1;
	const char *s;
	size_t n;
	switch (json_get_string(obj, "status", &s, &n)) {
	case JSON_FIELD_ABSENT:
	case JSON_FIELD_NULL:
		return 0;
	case JSON_FIELD_OK:
		return copy_string(obj, "status", valid_status, out->status, CF_STATUS_MAX);
	default:
		return -1;
	}
}

int cf_record_from_object(struct json_object *obj, struct cf_record *out)
{
	memset(out, 0, sizeof(*out));
	if (!obj || !json_object_is_type(obj, json_type_object))
		return -1;
	if (copy_string(obj, "id", cf_valid_id, out->id, CF_ID_MAX) != 0 ||
	    copy_string(obj, "type", valid_type, out->type, CF_TYPE_MAX) != 0 ||
	    copy_string(obj, "name", cf_valid_name, out->name, CF_NAME_MAX) != 0 ||
	    copy_string(obj, "content", valid_content, out->content, CF_CONTENT_MAX) != 0)
		return -1;
	bool present;
	struct json_object *ttl = json_get(obj, "ttl", &present);
	if (!ttl || !json_object_is_type(ttl, json_type_int))
		return -1;
	int64_t t = json_object_get_int64(ttl);
	if (t < 1 || t > INT32_MAX)
		return -1;
	out->ttl = (int)t;
	enum json_field_state proxied = json_get_bool(obj, "proxied", &out->proxied);
	if (proxied != JSON_FIELD_OK && proxied != JSON_FIELD_ABSENT)
		return -1;
	return 0;
}

int cf_zones_from_result(struct json_object *result, struct cf_zone *out, size_t max,
                         size_t *count)
{
	*count = 0;
	if (!result || !json_object_is_type(result, json_type_array))
		return -1;
	size_t n = json_object_array_length(result);
	for (size_t i = 0; i < n; i++) {
		struct cf_zone scratch;
		if (cf_zone_from_object(json_object_array_get_idx(result, i),
		                        i < max ? &out[i] : &scratch) != 0)
			return -1;
	}
	*count = n;
	return 0;
}

int cf_records_from_result(struct json_object *result, struct cf_record *out, size_t max,
                           size_t *count)
{
	*count = 0;
	if (!result || !json_object_is_type(result, json_type_array))
		return -1;
	size_t n = json_object_array_length(result);
	for (size_t i = 0; i < n; i++) {
		struct cf_record scratch;
		if (cf_record_from_object(json_object_array_get_idx(result, i),
		                          i < max ? &out[i] : &scratch) != 0)
			return -1;
	}
	*count = n;
	return 0;
}
