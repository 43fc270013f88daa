/*
 * test_json_writer.c - lib/json_writer.c against json-c's own serializer:
 * every byte alone and in company, quotes, backslashes, controls, DEL and
 * bytes above 0x7f (non-ASCII, valid UTF-8 or not) must come out byte for
 * byte as json-c writes them (JSON_C_TO_STRING_NOSLASHESCAPE), and read
 * back as the same bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "check.h"
#include "json_writer.h"
#include "util.h"

/* What json-c writes for the string s of n bytes. */
static char *json_c_text(const char *s, size_t n)
{
	struct json_object *o = json_object_new_string_len(s, (int)n);
	const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                                      JSON_C_TO_STRING_NOSLASHESCAPE);
	char *copy = strdup(t);
	json_object_put(o);
	return copy;
}

/* Checks the writer, the length function and the buffer form against json-c. */
static void check_same(const char *s, size_t n)
{
	char *want = json_c_text(s, n);
	size_t len = json_string_len(s, n);
	char *got = malloc(len + 1);
	char *end = json_string_put(got, s, n);
	*end = '\0';
	CHECK_INT((long long)(end - got), (long long)len);
	CHECK_INT((long long)len, (long long)strlen(want));
	CHECK_STR(got, want);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "x");
	CHECK_INT(json_append_string(&b, s, n), 0);
	CHECK(b.len == len + 1 && strcmp(b.data + 1, want) == 0, "buffer form of %s", want);
	/* And it reads back as the same bytes. */
	struct json_object *back = json_tokener_parse(got);
	CHECK(back && json_object_is_type(back, json_type_string) &&
	              (size_t)json_object_get_string_len(back) == n &&
	              memcmp(json_object_get_string(back), s, n) == 0,
	      "read back %s", got);
	json_object_put(back);
	buf_free(&b);
	free(got);
	free(want);
}

static void test_each_byte(void)
{
	test_case("json_string_put: each of the 256 bytes alone, as json-c writes it");
	for (int c = 0; c < 256; c++) {
		char s[1] = {(char)c};
		check_same(s, 1);
	}
	test_case("json_string_put: each byte between others");
	for (int c = 0; c < 256; c++) {
		char s[5] = {'a', 'b', (char)c, 'c', 'd'};
		check_same(s, sizeof(s));
	}
	/* The writer looks at eight bytes at a time: every position in and
	 * across those words, and bytes next to the ones that matter (0x1f/0x20,
	 * 0x21/0x23, 0x5b/0x5d, 0x7f, 0x80, 0xff), which a word test could
	 * mistake for them. */
	test_case("json_string_put: each byte at each position of a 19-byte string");
	for (int c = 0; c < 256; c++) {
		for (size_t at = 0; at < 19; at++) {
			char s[19];
			memset(s, 'a', sizeof(s));
			s[at] = (char)c;
			check_same(s, sizeof(s));
			if (at + 1 < sizeof(s)) {
				s[at + 1] = (char)(c ^ 1);
				check_same(s, sizeof(s));
			}
		}
	}
}

static void test_cases(void)
{
	test_case("json_string_put: empty");
	check_same("", 0);
	CHECK_INT((long long)json_string_len("", 0), 2);

	test_case("json_string_put: quotes, backslashes, slashes");
	check_same("say \"hi\"", 8);
	check_same("C:\\path\\", 8);
	check_same("\\\"\\\"", 4);
	check_same("a/b</script>", 12);
	check_same("\"", 1);

	test_case("json_string_put: control characters, short and \\u forms");
	check_same("\b\f\n\r\t", 5);
	check_same("\x01\x1f\x0b\x7f", 4);
	check_same("a\0b", 3);

	test_case("json_string_put: non-ASCII, valid UTF-8 and not");
	check_same("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 15);
	check_same("\xff\xfe\x80", 3);

	test_case("json_string_put: known texts");
	char out[64];
	*json_string_put(out, "a\"b\\c\nd\x01", 8) = '\0';
	CHECK_STR(out, "\"a\\\"b\\\\c\\nd\\u0001\"");
}

static void test_random(void)
{
	test_case("json_string_put: 2,000 random strings up to 300 bytes");
	unsigned int seed = 12345;
	char s[300];
	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)(rand_r(&seed) % 300);
		for (size_t k = 0; k < n; k++) {
			int r = rand_r(&seed) % 8;
			/* Mostly the bytes that matter: controls, quotes, backslashes, high bytes. */
			s[k] = r == 0 ? (char)(rand_r(&seed) % 32)
			       : r == 1 ? '"'
			       : r == 2 ? '\\'
			       : r == 3 ? (char)(0x80 + rand_r(&seed) % 128)
			                : (char)(0x20 + rand_r(&seed) % 95);
		}
		check_same(s, n);
	}
}

int main(void)
{
	test_each_byte();
	test_cases();
	test_random();
	return test_finish();
}
