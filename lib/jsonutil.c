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

/* ---- the writer ---- */

/* Room for n more bytes, written by the caller at the returned pointer; NULL when out of memory. */
static char *buf_extend(struct buf *b, size_t n)
{
	/* The usual case, room already there, without a call. */
	if ((b->failed || b->cap - b->len <= n) && buf_reserve(b, n) != 0)
		return NULL;
	char *p = b->data + b->len;
	b->len += n;
	b->data[b->len] = '\0';
	return p;
}

void json_writer_init(struct json_writer *w, struct buf *out)
{
	w->out = out;
	w->depth = 0;
	w->nonempty = 0;
}

/* The separator and key before a value at the current depth. */
static void write_prefix(struct json_writer *w, const char *key)
{
	uint32_t bit = UINT32_C(1) << w->depth;
	bool comma = (w->nonempty & bit) != 0;
	w->nonempty |= bit;
	size_t klen = key ? strlen(key) : 0;
	/* ,"key": in one piece and one pass: room for the worst case (every
	 * byte a \u00XX), then cut to what was written. */
	size_t room = comma + (key ? 6 * klen + 3 : 0);
	char *start = buf_extend(w->out, room);
	if (!start)
		return;
	char *p = start;
	if (comma)
		*p++ = ',';
	if (key) {
		p = json_string_put(p, key, klen);
		*p++ = ':';
	}
	w->out->len -= room - (size_t)(p - start);
	w->out->data[w->out->len] = '\0';
}

static void open_container(struct json_writer *w, const char *key, char open)
{
	write_prefix(w, key);
	if (w->depth >= EE_JSON_MAX_DEPTH) {
		w->out->failed = true;
		return;
	}
	w->depth++;
	w->nonempty &= ~(UINT32_C(1) << w->depth);
	buf_append(w->out, &open, 1);
}

static void close_container(struct json_writer *w, char close)
{
	if (w->depth <= 0) {
		w->out->failed = true;
		return;
	}
	w->depth--;
	buf_append(w->out, &close, 1);
}

void json_write_object_begin(struct json_writer *w, const char *key) { open_container(w, key, '{'); }
void json_write_object_end(struct json_writer *w) { close_container(w, '}'); }
void json_write_array_begin(struct json_writer *w, const char *key) { open_container(w, key, '['); }
void json_write_array_end(struct json_writer *w) { close_container(w, ']'); }

void json_write_string_len(struct json_writer *w, const char *key, const char *value, size_t len)
{
	write_prefix(w, key);
	if (value)
		json_append_string(w->out, value, len);
	else
		buf_append(w->out, "null", 4);
}

void json_write_string(struct json_writer *w, const char *key, const char *value)
{
	json_write_string_len(w, key, value, value ? strlen(value) : 0);
}

void json_write_int(struct json_writer *w, const char *key, int64_t value)
{
	write_prefix(w, key);
	char text[24];
	char *p = text + sizeof(text);
	/* Negated as unsigned so that INT64_MIN needs no special case. */
	uint64_t u = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (value < 0)
		*--p = '-';
	buf_append(w->out, p, (size_t)(text + sizeof(text) - p));
}

void json_write_bool(struct json_writer *w, const char *key, bool value)
{
	write_prefix(w, key);
	if (value)
		buf_append(w->out, "true", 4);
	else
		buf_append(w->out, "false", 5);
}

void json_write_null(struct json_writer *w, const char *key)
{
	write_prefix(w, key);
	buf_append(w->out, "null", 4);
}

void json_write_time(struct json_writer *w, const char *key, int64_t unix_ms)
{
	if (unix_ms <= 0) {
		json_write_null(w, key);
		return;
	}
	write_prefix(w, key);
	/* Formatted in place: room for the quotes and the longest text, then cut to size. */
	size_t room = EE_RFC3339_MAX + 1;
	char *p = buf_extend(w->out, room);
	if (!p)
		return;
	p[0] = '"';
	time_format_rfc3339(unix_ms, p + 1);
	size_t n = strlen(p + 1);
	p[n + 1] = '"';
	w->out->len -= room - (n + 2);
	w->out->data[w->out->len] = '\0';
}

void json_write_raw(struct json_writer *w, const char *key, const char *json, size_t len)
{
	write_prefix(w, key);
	buf_append(w->out, json, len);
}
