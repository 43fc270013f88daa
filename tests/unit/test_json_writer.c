/*
 * test_json_writer.c - lib/json_writer.c against json-c's own serializer:
 * every byte alone and in company, quotes, backslashes, controls, DEL and
 * bytes above 0x7f (non-ASCII, valid UTF-8 or not) must come out byte for
 * byte as json-c writes them (JSON_C_TO_STRING_NOSLASHESCAPE), and read
 * back as the same bytes.
 *
 * The bytes form (json_bytes_put, for the tunnel's header names and
 * values): every byte 0x00..0xff alone, between others and all in one
 * value, mixed valid multibyte UTF-8 and invalid bytes, truncated
 * sequences, overlong forms, surrogates in UTF-8 (ED A0 80), 4-byte
 * sequences up to U+10FFFF and past it; the text is valid UTF-8 and
 * strict JSON, the same as json_string_put for valid UTF-8, and
 * json_bytes_decode (lib/json_bytes.c) reads it back byte-exact.  The
 * UTF-8 check itself against the definition, over every 1-, 2- and
 * 3-byte sequence and every code point.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "check.h"
#include "json_bytes.h"
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


/*
 * Checks the bytes form of s: its length function, the buffer form, valid
 * UTF-8 and strict JSON out, json_string_put's text for valid UTF-8, and
 * json_bytes_decode giving back s.  want, when not NULL, is the exact text.
 */
static void check_bytes(const char *s, size_t n, const char *want)
{
	size_t len = json_bytes_len(s, n);
	char *got = malloc(len + 1);
	char *end = json_bytes_put(got, s, n);
	*end = '\0';
	CHECK_INT((long long)(end - got), (long long)len);
	if (want)
		CHECK(strcmp(got, want) == 0, "%s, want %s", test_printable(got), want);
	CHECK(json_utf8_valid(got, len), "not UTF-8: %s", test_printable(got));
	for (size_t i = 0; i < len; i++)
		CHECK((unsigned char)got[i] >= 0x20, "a raw control in %s", test_printable(got));
	if (json_utf8_valid(s, n)) {
		char *text = malloc(json_string_len(s, n) + 1);
		*json_string_put(text, s, n) = '\0';
		CHECK(strcmp(text, got) == 0, "valid UTF-8 written otherwise: %s", test_printable(got));
		free(text);
	}
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "x");
	CHECK_INT(json_append_bytes(&b, s, n), 0);
	CHECK(b.len == len + 1 && strcmp(b.data + 1, got) == 0, "buffer form of %s",
	      test_printable(got));
	/* Strict JSON, UTF-8 checked, as the peer reads it. */
	struct json_tokener *tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	struct json_object *o = json_tokener_parse_ex(tok, got, (int)len);
	CHECK(o && json_object_is_type(o, json_type_string), "json-c refuses %s",
	      test_printable(got));
	json_object_put(o);
	json_tokener_free(tok);
	/* And read back byte for byte. */
	buf_reset(&b);
	size_t used = 0;
	CHECK_INT(json_bytes_decode(got, len, &b, &used), 0);
	CHECK_INT((long long)used, (long long)len);
	CHECK(b.len == n && (n == 0 || memcmp(b.data, s, n) == 0), "read back %s",
	      test_printable(got));
	buf_free(&b);
	free(got);
}

/* A string literal's bytes, without its terminating NUL. */
#define check_literal(lit, want) check_bytes(lit, sizeof(lit) - 1, want)

static void test_bytes(void)
{
	test_case("json_bytes_put: each of the 256 bytes alone, read back byte-exact");
	for (int c = 0; c < 256; c++) {
		char s[1] = {(char)c};
		char want[16];
		if (c >= 0x80)
			snprintf(want, sizeof(want), "\"\\udc%02x\"", c);
		check_bytes(s, 1, c >= 0x80 ? want : NULL);
	}
	test_case("json_bytes_put: each byte between others; all 256 in one value");
	char all[256];
	for (int c = 0; c < 256; c++) {
		char s[5] = {'a', 'b', (char)c, 'c', 'd'};
		check_bytes(s, sizeof(s), NULL);
		all[c] = (char)c;
	}
	check_bytes(all, sizeof(all), NULL);

	test_case("json_bytes_put: ASCII and valid UTF-8 written as json_string_put writes them");
	check_literal("", "\"\"");
	check_literal("attachment; filename=\"a.txt\"", "\"attachment; filename=\\\"a.txt\\\"\"");
	check_literal("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	              "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	check_literal("\xed\x9f\xbf \xee\x80\x80 \xf4\x8f\xbf\xbf",
	              "\"\xed\x9f\xbf \xee\x80\x80 \xf4\x8f\xbf\xbf\""); /* U+D7FF, U+E000, U+10FFFF */

	test_case("json_bytes_put: ISO-8859-1 and mixed valid and invalid bytes");
	check_literal("attachment; filename=\"caf\xe9.txt\"",
	              "\"attachment; filename=\\\"caf\\udce9.txt\\\"\"");
	check_literal("\xc3\xa9\xe9\xc3\xa9", "\"\xc3\xa9\\udce9\xc3\xa9\"");
	check_literal("\xe2\x82\xac\xff\xf0\x9f\x98\x80\xfe",
	              "\"\xe2\x82\xac\\udcff\xf0\x9f\x98\x80\\udcfe\"");
	check_literal("\x80\xbf", "\"\\udc80\\udcbf\""); /* continuation bytes alone */

	test_case("json_bytes_put: truncated sequences, each byte escaped");
	check_literal("\xc3", "\"\\udcc3\"");
	check_literal("\xe2\x82", "\"\\udce2\\udc82\"");
	check_literal("\xf0\x9f\x98", "\"\\udcf0\\udc9f\\udc98\"");
	check_literal("\xe2\x82x", "\"\\udce2\\udc82x\"");
	check_literal("\xf0\x9f\x98\xc3\xa9", "\"\\udcf0\\udc9f\\udc98\xc3\xa9\"");

	test_case("json_bytes_put: overlong forms escaped");
	check_literal("\xc0\xaf", "\"\\udcc0\\udcaf\"");
	check_literal("\xc1\xbf", "\"\\udcc1\\udcbf\"");
	check_literal("\xe0\x80\xaf", "\"\\udce0\\udc80\\udcaf\"");
	check_literal("\xe0\x9f\xbf", "\"\\udce0\\udc9f\\udcbf\"");
	check_literal("\xf0\x80\x80\xaf", "\"\\udcf0\\udc80\\udc80\\udcaf\"");
	check_literal("\xf0\x8f\xbf\xbf", "\"\\udcf0\\udc8f\\udcbf\\udcbf\"");

	test_case("json_bytes_put: surrogates in UTF-8 (ED A0 80..ED BF BF) escaped");
	check_literal("\xed\xa0\x80", "\"\\udced\\udca0\\udc80\"");
	check_literal("\xed\xb3\xa9", "\"\\udced\\udcb3\\udca9\"");
	check_literal("\xed\xbf\xbf", "\"\\udced\\udcbf\\udcbf\"");

	test_case("json_bytes_put: 4-byte sequences, past U+10FFFF escaped");
	check_literal("\xf0\x90\x80\x80", "\"\xf0\x90\x80\x80\"");
	check_literal("\xf4\x90\x80\x80", "\"\\udcf4\\udc90\\udc80\\udc80\"");
	check_literal("\xf5\x80\x80\x80", "\"\\udcf5\\udc80\\udc80\\udc80\"");
	check_literal("\xf8\x88\x80\x80\x80", "\"\\udcf8\\udc88\\udc80\\udc80\\udc80\"");

	test_case("json_bytes_put: escapes of quotes and controls as json_string_put's");
	check_literal("a\"b\\c\nd\x01\xe9", "\"a\\\"b\\\\c\\nd\\u0001\\udce9\"");
	check_literal("a\0b", "\"a\\u0000b\"");

	test_case("json_bytes_put: 5,000 random byte strings read back byte-exact");
	unsigned int seed = 4242;
	char s[300];
	for (int i = 0; i < 5000; i++) {
		size_t n = (size_t)(rand_r(&seed) % 300);
		for (size_t k = 0; k < n; k++) {
			int r = rand_r(&seed) % 6;
			/* Mostly high bytes, so that valid and broken sequences both come up. */
			s[k] = r == 0 ? (char)(rand_r(&seed) % 32)
			       : r == 1 ? (char)(0xc0 + rand_r(&seed) % 64)
			       : r <= 3 ? (char)(0x80 + rand_r(&seed) % 64)
			                : (char)(0x20 + rand_r(&seed) % 95);
		}
		check_bytes(s, n, NULL);
	}
}

/* The UTF-8 encoding of cp into out; its length. */
static size_t encode(unsigned long cp, unsigned char out[4])
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The code point of a sequence of len bytes read without any check but the bit layout. */
static unsigned long decode_loose(const unsigned char *s, size_t len)
{
	static const unsigned char lead_mask[5] = {0, 0x7f, 0x1f, 0x0f, 0x07};
	unsigned long cp = s[0] & lead_mask[len];
	for (size_t i = 1; i < len; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	return cp;
}

static void test_utf8_definition(void)
{
	test_case("json_utf8_sequence_len: every code point's encoding is valid, surrogates aside");
	int wrong = 0;
	for (unsigned long cp = 0; cp <= 0x10ffff; cp++) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		unsigned char b[4];
		size_t n = encode(cp, b);
		if (json_utf8_sequence_len(b, n) != n || json_utf8_sequence_len(b, n - 1) != 0)
			wrong++;
	}
	CHECK_INT(wrong, 0);

	test_case("json_utf8_sequence_len: of all 1-, 2- and 3-byte sequences, only the shortest "
	          "encodings of non-surrogate code points are taken");
	wrong = 0;
	long taken = 0;
	for (unsigned long v = 0; v < 0x1000000; v++) {
		unsigned char b[3] = {(unsigned char)(v >> 16), (unsigned char)(v >> 8),
		                      (unsigned char)v};
		size_t n = json_utf8_sequence_len(b, 3);
		if (!n)
			continue;
		taken++;
		unsigned char again[4];
		unsigned long cp = decode_loose(b, n);
		if (n > 3 || (cp >= 0xd800 && cp <= 0xdfff) || encode(cp, again) != n ||
		    memcmp(again, b, n) != 0)
			wrong++;
	}
	CHECK_INT(wrong, 0);
	/* Every 3-byte buffer starts with a valid sequence of 1 (ASCII), 2 or 3 bytes, or none. */
	CHECK_INT(taken, 128L * 65536 + 1920L * 256 + 61440L);

	test_case("json_utf8_sequence_len: 4-byte sequences, F0 90..F4 8F only");
	wrong = 0;
	unsigned int seed = 99;
	for (int i = 0; i < 200000; i++) {
		unsigned char b[4] = {(unsigned char)(0xf0 + rand_r(&seed) % 16),
		                      (unsigned char)(0x80 + rand_r(&seed) % 64),
		                      (unsigned char)(rand_r(&seed) % 2 ? 0x80 + rand_r(&seed) % 64
		                                                        : rand_r(&seed) % 256),
		                      (unsigned char)(0x80 + rand_r(&seed) % 64)};
		size_t n = json_utf8_sequence_len(b, 4);
		unsigned long cp = decode_loose(b, 4);
		bool want = b[0] <= 0xf4 && (b[2] & 0xc0) == 0x80 && cp >= 0x10000 && cp <= 0x10ffff;
		if ((n == 4) != want || (n != 0 && n != 4))
			wrong++;
	}
	CHECK_INT(wrong, 0);
}

int main(void)
{
	test_each_byte();
	test_cases();
	test_random();
	test_bytes();
	test_utf8_definition();
	return test_finish();
}
