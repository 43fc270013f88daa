/* jsonutil.c - strict request parsing and response building; see jsonutil.h. */
#include "jsonutil.h"

#include <string.h>

#include "timeutil.h"

struct json_object *json_parse_value(const char *text, size_t len)
{
	if (len > (size_t)INT32_MAX)
		return NULL;
	struct json_tokener *tok = json_tokener_new_ex(EE_JSON_MAX_DEPTH);
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	/* Everything must be consumed, except trailing whitespace. */
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!obj || jerr != json_tokener_success) {
		json_object_put(obj);
		return NULL;
	}
	for (size_t i = used; i < len; i++) {
		if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n') {
			json_object_put(obj);
			return NULL;
		}
	}
	return obj;
}

int json_parse_object(const char *body, size_t len, struct json_object **out,
                      struct ee_error *err)
{
	*out = NULL;
	struct json_object *obj = json_parse_value(body, len);
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return ee_fail(err, 400, "invalid_json");
	}
	*out = obj;
	return 0;
}

struct json_object *json_get(struct json_object *obj, const char *key, bool *present)
{
	struct json_object *value = NULL;
	*present = json_object_object_get_ex(obj, key, &value);
	return value;
}

enum json_field_state json_get_string(struct json_object *obj, const char *key,
                                      const char **out, size_t *len)
{
	bool present;
	struct json_object *v = json_get(obj, key, &present);
	*out = NULL;
	*len = 0;
	if (!present)
		return JSON_FIELD_ABSENT;
	if (!v)
		return JSON_FIELD_NULL;
	if (!json_object_is_type(v, json_type_string))
		return JSON_FIELD_WRONG_TYPE;
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	if (strlen(s) != n)
		return JSON_FIELD_WRONG_TYPE;
	*out = s;
	*len = n;
	return JSON_FIELD_OK;
}

enum json_field_state json_get_bool(struct json_object *obj, const char *key, bool *out)
{
	bool present;
	struct json_object *v = json_get(obj, key, &present);
	*out = false;
	if (!present)
		return JSON_FIELD_ABSENT;
	if (!v)
		return JSON_FIELD_NULL;
	if (!json_object_is_type(v, json_type_boolean))
		return JSON_FIELD_WRONG_TYPE;
	*out = json_object_get_boolean(v);
	return JSON_FIELD_OK;
}

void json_put_string(struct json_object *obj, const char *key, const char *value)
{
	json_object_object_add(obj, key, value ? json_object_new_string(value) : NULL);
}

void json_put_int(struct json_object *obj, const char *key, int64_t value)
{
	json_object_object_add(obj, key, json_object_new_int64(value));
}

void json_put_bool(struct json_object *obj, const char *key, bool value)
{
	json_object_object_add(obj, key, json_object_new_boolean(value));
}

void json_put_time(struct json_object *obj, const char *key, int64_t unix_ms)
{
	if (unix_ms <= 0) {
		json_object_object_add(obj, key, NULL);
		return;
	}
	char text[EE_RFC3339_MAX];
	time_format_rfc3339(unix_ms, text);
	json_object_object_add(obj, key, json_object_new_string(text));
}

const char *json_text(struct json_object *obj, size_t *len)
{
	return json_object_to_json_string_length(
		obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}
