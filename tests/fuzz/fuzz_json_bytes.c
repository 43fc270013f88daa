/*
 * fuzz_json_bytes.c - libFuzzer target for the tunnel's header strings as
 * bytes: json_bytes_put (lib/json_writer.c) and the reader of
 * lib/json_bytes.c, which reads header names and values of messages from
 * the other end of the tunnel.
 *
 * The input is used three ways:
 *   - as bytes to write: json_bytes_put writes json_bytes_len bytes of
 *     valid UTF-8 that the strict parser takes as one string, the same
 *     text as json_string_put when the bytes are valid UTF-8, and
 *     json_bytes_decode reads back exactly the bytes;
 *   - as a JSON string literal: json_bytes_decode reads what json-c reads,
 *     byte for byte, once each \udc80..\udcff escape is made \udc7f (which
 *     both read alike), and takes the text whenever json-c does; with the
 *     escapes as they were, it takes the same texts;
 *   - as an object: json_members_next ends; json_bytes_object gives, for
 *     an object json-c takes (escapes made \udc7f again), the same keys and
 *     string values as json-c, arrays of the same length with the same
 *     strings, null for every other value; json_bytes_member_object gives
 *     its "headers" object, with as many keys, whenever json-c's has one
 *     (json_bytes_maybe_lost asked of it too);
 *   - nothing crashes, reads out of bounds or leaks (ASan, LSan).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json_bytes.h"
#include "json_writer.h"
#include "jsonutil.h"

#define FUZZ_TARGET "fuzz_json_bytes"
#include "fuzz_support.h"


static void check_write(const char *s, size_t n, const uint8_t *data, size_t size)
{
	size_t len = json_bytes_len(s, n);
	char *text = malloc(len + 1);
	if (!text)
		return;
	char *end = json_bytes_put(text, s, n);
	if ((size_t)(end - text) != len)
		fuzz_fail("json_bytes_put wrote another length than json_bytes_len", data, size);
	if (!json_utf8_valid(text, len))
		fuzz_fail("json_bytes_put wrote bytes that are not UTF-8", data, size);
	struct json_object *o = json_parse_value(text, len);
	if (!o || !json_object_is_type(o, json_type_string))
		fuzz_fail("the strict parser refuses what json_bytes_put wrote", data, size);
	json_object_put(o);
	if (json_utf8_valid(s, n)) {
		char *plain = malloc(json_string_len(s, n));
		if (plain) {
			char *pend = json_string_put(plain, s, n);
			if ((size_t)(pend - plain) != len || memcmp(plain, text, len) != 0)
				fuzz_fail("valid UTF-8 written otherwise than json_string_put writes it", data,
				          size);
			free(plain);
		}
	}
	struct buf back;
	buf_init(&back);
	size_t used = 0;
	if (json_bytes_decode(text, len, &back, &used) != 0 || used != len || back.len != n ||
	    (n && memcmp(back.data, s, n) != 0))
		fuzz_fail("json_bytes_decode does not read back the bytes written", data, size);
	buf_free(&back);
	free(text);
}

/* A copy of text with each \udc80..\udcff escape made \udc7f, which json-c and the decoder read alike. */
static char *without_byte_escapes(const char *text, size_t len)
{
	char *t = malloc(len ? len : 1);
	if (!t)
		return NULL;
	if (len)
		memcpy(t, text, len);
	for (size_t i = 0; i + 6 <= len; i++) {
		if (t[i] != '\\')
			continue;
		if (t[i + 1] == 'u' && (t[i + 2] | 0x20) == 'd' && (t[i + 3] | 0x20) == 'c' &&
		    strchr("89abcdefABCDEF", t[i + 4]) && t[i + 4] &&
		    strchr("0123456789abcdefABCDEF", t[i + 5]) && t[i + 5]) {
			t[i + 4] = '7';
			t[i + 5] = 'f';
		}
		i++; /* an escaped character is not the start of another escape */
	}
	return t;
}

/* How many of the first n bytes of s are in set. */
static size_t strspn_n(const char *s, size_t n, const char *set)
{
	size_t i = 0;
	while (i < n && s[i] && strchr(set, s[i]))
		i++;
	return i;
}

static void check_string(const char *text, size_t len, const uint8_t *data, size_t size)
{
	char *plain = without_byte_escapes(text, len);
	if (!plain)
		return;
	struct buf ours, again;
	buf_init(&ours);
	buf_init(&again);
	size_t used = 0, used_again = 0;
	/* json-c takes white space around the value; the decoder reads from the quote to the quote. */
	size_t lead = strspn_n(plain, len, " \t\r\n");
	int rc = json_bytes_decode(plain + lead, len - lead, &ours, &used);
	int rc_again = json_bytes_decode(text + lead, len - lead, &again, &used_again);
	used += lead;
	used_again += lead;
	if (rc != rc_again || (rc == 0 && used != used_again))
		fuzz_fail("a \\udcXX escape changed where or whether a string ends", data, size);
	struct json_object *ref = json_parse_value(plain, len);
	if (ref && json_object_is_type(ref, json_type_string)) {
		size_t n = (size_t)json_object_get_string_len(ref);
		bool to_end = strspn_n(plain + used, len - used, " \t\r\n") == len - used;
		if (rc != 0 || !to_end || ours.len != n ||
		    (n && memcmp(ours.data, json_object_get_string(ref), n) != 0))
			fuzz_fail("json_bytes_decode reads a string otherwise than json-c", data, size);
	}
	json_object_put(ref);
	buf_free(&ours);
	buf_free(&again);
	free(plain);
}

static void check_same_string(struct json_object *want, struct json_object *got,
                              const uint8_t *data, size_t size)
{
	if (!got || !json_object_is_type(got, json_type_string) ||
	    json_object_get_string_len(got) != json_object_get_string_len(want) ||
	    memcmp(json_object_get_string(got), json_object_get_string(want),
	           (size_t)json_object_get_string_len(want)) != 0)
		fuzz_fail("json_bytes_object reads a string otherwise than json-c", data, size);
}

static void check_object(const char *text, size_t len, const uint8_t *data, size_t size)
{
	struct json_members m;
	struct buf key;
	buf_init(&key);
	json_members_start(&m, text, len);
	const char *v;
	size_t vlen;
	while (json_members_next(&m, &key, &v, &vlen) == 1)
		if (v < text || v + vlen > text + len || vlen == 0)
			fuzz_fail("a member's value outside the text", data, size);
	buf_free(&key);

	char *plain = without_byte_escapes(text, len);
	if (!plain)
		return;
	struct json_object *ours = json_bytes_object(plain, len);
	struct json_object *ref = json_parse_value(plain, len);
	if (ref && json_object_is_type(ref, json_type_object)) {
		if (!ours || json_object_object_length(ours) != json_object_object_length(ref))
			fuzz_fail("json_bytes_object refuses or changes an object json-c takes", data, size);
		json_object_object_foreach(ref, name, value) {
			struct json_object *got = NULL;
			if (!json_object_object_get_ex(ours, name, &got))
				fuzz_fail("json_bytes_object lost a key", data, size);
			if (value && json_object_is_type(value, json_type_string)) {
				check_same_string(value, got, data, size);
			} else if (value && json_object_is_type(value, json_type_array)) {
				size_t n = json_object_array_length(value);
				if (!got || !json_object_is_type(got, json_type_array) ||
				    json_object_array_length(got) != n)
					fuzz_fail("json_bytes_object reads an array otherwise", data, size);
				for (size_t i = 0; i < n; i++) {
					struct json_object *e = json_object_array_get_idx(value, i);
					struct json_object *g = json_object_array_get_idx(got, i);
					if (e && json_object_is_type(e, json_type_string))
						check_same_string(e, g, data, size);
					else if (g)
						fuzz_fail("an array element that is not a string is not null", data,
						          size);
				}
			} else if (got) {
				fuzz_fail("a value that is not a string or an array is not null", data, size);
			}
		}
	}
	struct json_object *headers = NULL;
	if (ref && json_object_is_type(ref, json_type_object) &&
	    json_object_object_get_ex(ref, "headers", &headers) && headers &&
	    json_object_is_type(headers, json_type_object)) {
		(void)json_bytes_maybe_lost(headers);
		struct json_object *member = json_bytes_member_object(plain, len, "headers");
		if (!member || json_object_object_length(member) != json_object_object_length(headers))
			fuzz_fail("json_bytes_member_object reads \"headers\" otherwise than json-c", data,
			          size);
		json_object_put(member);
	}
	json_object_put(ref);
	json_object_put(ours);
	free(plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in;
	if (!fuzz_input_copy(data, size, &in))
		return 0;
	check_write(in ? in : "", size, data, size);
	check_string(in ? in : "", size, data, size);
	check_object(in ? in : "", size, data, size);
	free(in);
	return 0;
}
