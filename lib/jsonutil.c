/* jsonutil.c - strict request parsing and response building; see jsonutil.h. */
#include "jsonutil.h"

#include <string.h>

#include "timeutil.h"

/*
 * json-c's strict mode still lets through raw control characters inside
 * strings and NUL bytes; this pass refuses them before parsing.
 */
static bool lexically_valid(const char *text, size_t len)
{
	bool in_string = false, escaped = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (in_string) {
			if (c < 0x20)
				return false;
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			return false;
		}
	}
	return true;
}

/* JSON's number grammar; json-c also takes NaN, Infinity and "1.". */
static bool number_text_valid(const char *s)
{
	size_t i = 0;
	if (s[i] == '-')
		i++;
	if (s[i] == '0')
		i++;
	else if (s[i] >= '1' && s[i] <= '9')
		while (s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return false;
	if (s[i] == '.') {
		i++;
		if (!(s[i] >= '0' && s[i] <= '9'))
			return false;
		while (s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (s[i] == 'e' || s[i] == 'E') {
		i++;
		if (s[i] == '+' || s[i] == '-')
			i++;
		if (!(s[i] >= '0' && s[i] <= '9'))
			return false;
		while (s[i] >= '0' && s[i] <= '9')
			i++;
	}
	return s[i] == '\0';
}

static bool numbers_valid(struct json_object *obj)
{
	switch (json_object_get_type(obj)) {
	case json_type_double:
		/* json-c keeps the literal text of a parsed number. */
		return number_text_valid(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
	case json_type_object: {
		json_object_object_foreach(obj, key, value) {
			(void)key;
			if (value && !numbers_valid(value))
				return false;
		}
		return true;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(obj); i++) {
			struct json_object *v = json_object_array_get_idx(obj, i);
			if (v && !numbers_valid(v))
				return false;
		}
		return true;
	default:
		return true;
	}
}

struct json_object *json_parse_value(const char *text, size_t len)
{
	if (len > (size_t)INT32_MAX || !lexically_valid(text, len))
		return NULL;
	/* json-c counts the outermost value as one level. */
	struct json_tokener *tok = json_tokener_new_ex(EE_JSON_MAX_DEPTH + 1);
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	struct json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	if (!obj && jerr == json_tokener_continue) {
		/* A bare number or literal ends only at the end of input: say so. */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		used = len;
	}
	json_tokener_free(tok);
	if (!obj || jerr != json_tokener_success || !numbers_valid(obj)) {
		json_object_put(obj);
		return NULL;
	}
	/* Everything must be consumed, except trailing whitespace. */
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
