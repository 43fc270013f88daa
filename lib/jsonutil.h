/*
 * jsonutil.h - json-c at the boundary: strict parsing of request bodies and
 * typed field access, and small builders for responses.
 */
#ifndef EE_JSONUTIL_H
#define EE_JSONUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "error.h"
#include "json_writer.h"
#include "util.h"

#define EE_JSON_MAX_DEPTH 16

/*
 * Parses a request body that must be one JSON object and nothing else
 * (strict JSON: no single quotes, no trailing garbage, no nesting deeper
 * than EE_JSON_MAX_DEPTH).  On failure: 400 "invalid_json".
 */
int json_parse_object(const char *body, size_t len, struct json_object **out,
                      struct ee_error *err);
/* The same for any JSON value (tunnel messages check the type themselves). */
struct json_object *json_parse_value(const char *text, size_t len);

enum json_field_state {
	JSON_FIELD_ABSENT,     /* no such key */
	JSON_FIELD_NULL,       /* the key holds null */
	JSON_FIELD_WRONG_TYPE, /* present with another type, or a string with a NUL */
	JSON_FIELD_OK,
};

/* A string field; *len excludes the terminator.  Strings holding NUL are WRONG_TYPE. */
enum json_field_state json_get_string(struct json_object *obj, const char *key,
                                      const char **out, size_t *len);
enum json_field_state json_get_bool(struct json_object *obj, const char *key, bool *out);
/* Any value; NULL for absent or null. */
struct json_object *json_get(struct json_object *obj, const char *key, bool *present);

/* Response builders.  A time of 0 or less renders as null. */
void json_put_string(struct json_object *obj, const char *key, const char *value);
void json_put_int(struct json_object *obj, const char *key, int64_t value);
void json_put_bool(struct json_object *obj, const char *key, bool value);
void json_put_time(struct json_object *obj, const char *key, int64_t unix_ms);
/* Serialises without escaping '/'; the string belongs to obj. */
const char *json_text(struct json_object *obj, size_t *len);

/*
 * A JSON writer: an answer whose fields are known is written straight into
 * a buffer, without building a json-c tree first (the read endpoints'
 * answers, on every request).  The text is what json_text would write for
 * the same tree: no spaces, '/' not escaped, the same escapes.
 *
 * Every value call takes the key it is written under inside an object, or
 * NULL inside an array and at the top.  Calls cannot fail one by one: an
 * allocation failure marks the buffer (buf.failed), which the caller checks
 * once at the end.  Nesting deeper than EE_JSON_MAX_DEPTH marks it too.
 */
struct json_writer {
	struct buf *out;
	int depth;
	uint32_t nonempty; /* bit d: the container at depth d has a value, the next needs ',' */
};

void json_writer_init(struct json_writer *w, struct buf *out);
void json_write_object_begin(struct json_writer *w, const char *key);
void json_write_object_end(struct json_writer *w);
void json_write_array_begin(struct json_writer *w, const char *key);
void json_write_array_end(struct json_writer *w);
/* NULL writes null. */
void json_write_string(struct json_writer *w, const char *key, const char *value);
void json_write_string_len(struct json_writer *w, const char *key, const char *value, size_t len);
void json_write_int(struct json_writer *w, const char *key, int64_t value);
void json_write_bool(struct json_writer *w, const char *key, bool value);
void json_write_null(struct json_writer *w, const char *key);
/* RFC 3339 UTC; 0 or less writes null, as json_put_time. */
void json_write_time(struct json_writer *w, const char *key, int64_t unix_ms);
/* A value that is already JSON text (the caller vouches for it). */
void json_write_raw(struct json_writer *w, const char *key, const char *json, size_t len);

#endif
