/* json_bytes.c - JSON strings read back as bytes; see json_bytes.h. */
#include "json_bytes.h"

#include <string.h>

/* How far json_members_next has come. */
enum {
	MEMBERS_BEFORE, /* the opening brace is still to read */
	MEMBERS_FIRST,  /* after it: a key or the closing brace */
	MEMBERS_AFTER,  /* after a value: a comma or the closing brace */
	MEMBERS_ENDED,
	MEMBERS_FAILED,
};

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/* The four hex digits at p, as a number; -1 when there are not four. */
static long hex4(const char *p, const char *end)
{
	if (end - p < 4)
		return -1;
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int d = hex_digit(p[i]);
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* Appends code point cp as json-c would, but a lone \udc80..\udcff as its byte. */
static void put_code_point(struct buf *out, unsigned long cp)
{
	unsigned char b[4];
	size_t n;
	if (cp >= 0xdc80 && cp <= 0xdcff) {
		b[0] = (unsigned char)(cp - 0xdc00); /* the byte json_bytes_put escaped */
		n = 1;
	} else if (cp >= 0xd800 && cp <= 0xdfff) {
		memcpy(b, "\xef\xbf\xbd", 3); /* any other lone surrogate: U+FFFD, as json-c */
		n = 3;
	} else if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | cp >> 6);
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | cp >> 12);
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | cp >> 18);
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(out, b, n);
}

int json_bytes_decode(const char *text, size_t len, struct buf *out, size_t *used)
{
	const char *p = text, *end = text + len;
	if (p >= end || *p != '"')
		return -1;
	const char *run = ++p; /* bytes copied as they are, appended in one go */
	while (p < end) {
		unsigned char c = (unsigned char)*p;
		if (c == '"') {
			if (out)
				buf_append(out, run, (size_t)(p - run));
			*used = (size_t)(p + 1 - text);
			return out && out->failed ? -1 : 0;
		}
		if (c < 0x20)
			return -1;
		if (c != '\\') {
			p++;
			continue;
		}
		if (out)
			buf_append(out, run, (size_t)(p - run));
		if (end - p < 2)
			return -1;
		char e = p[1], plain;
		p += 2;
		switch (e) {
		case '"': case '\\': case '/': plain = e; break;
		case 'b': plain = '\b'; break;
		case 'f': plain = '\f'; break;
		case 'n': plain = '\n'; break;
		case 'r': plain = '\r'; break;
		case 't': plain = '\t'; break;
		case 'u': {
			long cp = hex4(p, end);
			if (cp < 0)
				return -1;
			p += 4;
			/* A high surrogate pairs with a low one escaped right after it;
			 * else it stands alone, and what follows is read on its own. */
			if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 2 && p[0] == '\\' && p[1] == 'u') {
				long low = hex4(p + 2, end);
				if (low < 0)
					return -1; /* json-c refuses a broken escape there too */
				if (low >= 0xdc00 && low <= 0xdfff) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
					p += 6;
				}
			}
			if (out)
				put_code_point(out, (unsigned long)cp);
			run = p;
			continue;
		}
		default:
			return -1;
		}
		if (out)
			buf_append(out, &plain, 1);
		run = p;
	}
	return -1;
}

int json_bytes_skip_value(const char *text, size_t len, size_t *used)
{
	const char *end = text + len, *p = skip_space(text, end);
	size_t n;
	if (p >= end)
		return -1;
	if (*p == '"') {
		if (json_bytes_decode(p, (size_t)(end - p), NULL, &n) != 0)
			return -1;
		*used = (size_t)(p + n - text);
		return 0;
	}
	if (*p == '{' || *p == '[') {
		/* Brackets are counted, strings stepped over: the text was checked before. */
		int depth = 0;
		while (p < end) {
			char c = *p;
			if (c == '"') {
				if (json_bytes_decode(p, (size_t)(end - p), NULL, &n) != 0)
					return -1;
				p += n;
				continue;
			}
			if (c == '{' || c == '[') {
				depth++;
			} else if (c == '}' || c == ']') {
				if (--depth == 0) {
					*used = (size_t)(p + 1 - text);
					return 0;
				}
			}
			p++;
		}
		return -1;
	}
	/* A number or a literal: the characters they are made of. */
	const char *start = p;
	while (p < end && ((*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') ||
	                   *p == '-' || *p == '+' || *p == '.'))
		p++;
	if (p == start)
		return -1;
	*used = (size_t)(p - text);
	return 0;
}

void json_members_start(struct json_members *m, const char *text, size_t len)
{
	m->p = text;
	m->end = text + len;
	m->state = MEMBERS_BEFORE;
}

static int members_fail(struct json_members *m)
{
	m->state = MEMBERS_FAILED;
	return -1;
}

int json_members_next(struct json_members *m, struct buf *key, const char **value,
                      size_t *value_len)
{
	if (m->state == MEMBERS_ENDED)
		return 0;
	if (m->state == MEMBERS_FAILED)
		return -1;
	const char *p = skip_space(m->p, m->end);
	if (m->state == MEMBERS_BEFORE) {
		if (p >= m->end || *p != '{')
			return members_fail(m);
		p = skip_space(p + 1, m->end);
		m->state = MEMBERS_FIRST;
		if (p < m->end && *p == '}') {
			m->p = p + 1;
			m->state = MEMBERS_ENDED;
			return 0;
		}
	} else if (m->state == MEMBERS_AFTER) {
		if (p < m->end && *p == '}') {
			m->p = p + 1;
			m->state = MEMBERS_ENDED;
			return 0;
		}
		if (p >= m->end || *p != ',')
			return members_fail(m);
		p = skip_space(p + 1, m->end);
	}
	size_t n;
	buf_reset(key);
	if (json_bytes_decode(p, (size_t)(m->end - p), key, &n) != 0)
		return members_fail(m);
	p = skip_space(p + n, m->end);
	if (p >= m->end || *p != ':')
		return members_fail(m);
	p = skip_space(p + 1, m->end);
	if (json_bytes_skip_value(p, (size_t)(m->end - p), &n) != 0)
		return members_fail(m);
	*value = p;
	*value_len = n;
	m->p = p + n;
	m->state = MEMBERS_AFTER;
	return 1;
}

/* A string value decoded into a json-c string; NULL when not one or out of memory. */
static struct json_object *string_value(const char *text, size_t len, struct buf *scratch)
{
	size_t used;
	buf_reset(scratch);
	if (json_bytes_decode(text, len, scratch, &used) != 0 || used != len)
		return NULL;
	return json_object_new_string_len(scratch->data ? scratch->data : "", (int)scratch->len);
}

/* An array whose strings are decoded and whose other elements are null; NULL on a fault. */
static struct json_object *array_value(const char *text, size_t len, struct buf *scratch)
{
	const char *p = text + 1, *end = text + len;
	struct json_object *array = json_object_new_array();
	if (!array)
		return NULL;
	p = skip_space(p, end);
	if (p < end && *p == ']')
		return array;
	for (;;) {
		size_t n;
		p = skip_space(p, end);
		if (json_bytes_skip_value(p, (size_t)(end - p), &n) != 0)
			break;
		struct json_object *element = NULL;
		if (*p == '"' && !(element = string_value(p, n, scratch)))
			break;
		if (json_object_array_add(array, element) != 0) {
			json_object_put(element);
			break;
		}
		p = skip_space(p + n, end);
		if (p < end && *p == ']' && p + 1 == end)
			return array;
		if (p >= end || *p != ',')
			break;
		p++;
	}
	json_object_put(array);
	return NULL;
}

struct json_object *json_bytes_object(const char *text, size_t len)
{
	struct json_object *obj = json_object_new_object();
	if (!obj)
		return NULL;
	struct json_members m;
	struct buf key, scratch;
	buf_init(&key);
	buf_init(&scratch);
	json_members_start(&m, text, len);
	const char *value;
	size_t value_len;
	int rc;
	while ((rc = json_members_next(&m, &key, &value, &value_len)) == 1) {
		struct json_object *v = NULL;
		if (*value == '"')
			v = string_value(value, value_len, &scratch);
		else if (*value == '[')
			v = array_value(value, value_len, &scratch);
		if (!v && (*value == '"' || *value == '[')) {
			rc = -1;
			break;
		}
		/* json-c keeps keys as C strings: a key with a NUL is cut there, as json-c cuts it. */
		if (json_object_object_add(obj, key.data ? key.data : "", v) != 0) {
			json_object_put(v);
			rc = -1;
			break;
		}
	}
	buf_free(&key);
	buf_free(&scratch);
	if (rc != 0 || skip_space(m.p, m.end) != m.end) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/* Whether json-c may have lost a byte here: a U+FFFD, which is what it makes of \udcXX. */
static bool has_replacement(const char *s, size_t n)
{
	for (const char *p = s, *end = s + n; (p = memchr(p, 0xef, (size_t)(end - p))); p++)
		if (end - p >= 3 && (unsigned char)p[1] == 0xbf && (unsigned char)p[2] == 0xbd)
			return true;
	return false;
}

static bool string_has_replacement(struct json_object *v)
{
	return v && json_object_is_type(v, json_type_string) &&
	       has_replacement(json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

bool json_bytes_maybe_lost(struct json_object *headers)
{
	json_object_object_foreach(headers, name, value) {
		if (has_replacement(name, strlen(name)) || string_has_replacement(value))
			return true;
		if (value && json_object_is_type(value, json_type_array))
			for (size_t i = 0; i < json_object_array_length(value); i++)
				if (string_has_replacement(json_object_array_get_idx(value, i)))
					return true;
	}
	return false;
}

struct json_object *json_bytes_member_object(const char *text, size_t len, const char *key)
{
	struct json_members m;
	struct buf name;
	buf_init(&name);
	const char *value, *found = NULL;
	size_t value_len, found_len = 0;
	int rc;
	json_members_start(&m, text, len);
	while ((rc = json_members_next(&m, &name, &value, &value_len)) == 1) {
		/* json-c keeps the last of a repeated key, and cuts a key at a NUL. */
		if (name.data && strcmp(name.data, key) == 0) {
			found = value;
			found_len = value_len;
		}
	}
	buf_free(&name);
	return rc == 0 && found ? json_bytes_object(found, found_len) : NULL;
}
