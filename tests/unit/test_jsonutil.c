/*
 * test_jsonutil.c - the JSON writer of lib/jsonutil.c (json_writer,
 * json_append_string): escapes of quotes, backslashes and every control
 * character, '/' and DEL and UTF-8 (valid or not) passed through, NUL
 * inside a counted string; the same text as json-c writes for the same
 * tree, byte for byte, over every single byte and random strings; commas
 * and keys in nested objects and arrays; integers at their limits; times
 * and null; nesting too deep or an end without a begin marking the buffer
 * failed; and the text parsing back with the strict parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "check.h"
#include "jsonutil.h"
#include "timeutil.h"

/* What json-c writes for the string s[0..len) (the reference). */
static const char *json_c_string(const char *s, size_t len, struct json_object **keep)
{
	*keep = json_object_new_string_len(s, (int)len);
	size_t n;
	return json_text(*keep, &n);
}

static void test_escapes(void)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
		{"", 0, "\"\""},
		{"plain text", 10, "\"plain text\""},
		{"a\"b", 3, "\"a\\\"b\""},
		{"a\\b", 3, "\"a\\\\b\""},
		{"\\\"", 2, "\"\\\\\\\"\""},
		{"a/b", 3, "\"a/b\""},
		{"\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\""},
		{"\x01\x1f", 2, "\"\\u0001\\u001f\""},
		{"x\x0by", 3, "\"x\\u000by\""},
		{"a\0b", 3, "\"a\\u0000b\""},
		{"\x7f", 1, "\"\x7f\""},
		{"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
		{"\xff\xfe\xc3", 3, "\"\xff\xfe\xc3\""},
		{"</script>", 9, "\"</script>\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("json_append_string %s", test_printable(cases[i].out));
		struct buf b;
		buf_init(&b);
		CHECK_INT(json_append_string(&b, cases[i].in, cases[i].len), 0);
		CHECK_INT(b.len, strlen(cases[i].out));
		CHECK(b.data && memcmp(b.data, cases[i].out, b.len) == 0, "got %s",
		      test_printable(b.data ? b.data : ""));
		buf_free(&b);
	}
}

static void test_same_as_json_c(void)
{
	test_case("json_append_string writes every single byte as json-c does");
	for (int c = 0; c < 256; c++) {
		char in = (char)c;
		struct json_object *ref;
		const char *want = json_c_string(&in, 1, &ref);
		struct buf b;
		buf_init(&b);
		json_append_string(&b, &in, 1);
		CHECK(b.data && strcmp(b.data, want) == 0, "byte 0x%02x: %s, json-c %s", c,
		      b.data ? b.data : "", want);
		buf_free(&b);
		json_object_put(ref);
	}

	test_case("json_append_string writes 20,000 random strings as json-c does");
	srand(7);
	char in[64];
	int differ = 0;
	for (int round = 0; round < 20000 && differ < 5; round++) {
		size_t len = (size_t)(rand() % (int)sizeof(in));
		for (size_t i = 0; i < len; i++) {
			/* Biased towards the bytes that matter: controls, quote, backslash, high bytes. */
			int pick = rand() % 4;
			in[i] = (char)(pick == 0 ? rand() % 0x20 : pick == 1 ? "\"\\/\x7f"[rand() % 4]
			                                        : pick == 2 ? 0x80 + rand() % 0x80
			                                                    : 0x20 + rand() % 0x5f);
		}
		struct json_object *ref;
		const char *want = json_c_string(in, len, &ref);
		struct buf b;
		buf_init(&b);
		json_append_string(&b, in, len);
		if (!b.data || strcmp(b.data, want) != 0) {
			differ++;
			test_fail(__FILE__, __LINE__, "round %d: %s", round, test_printable(want));
		}
		buf_free(&b);
		json_object_put(ref);
	}
}

static void test_structure(void)
{
	test_case("nested objects and arrays: commas, keys, every value type, same as json-c");
	struct buf b;
	buf_init(&b);
	struct json_writer w;
	json_writer_init(&w, &b);
	json_write_object_begin(&w, NULL);
	json_write_string(&w, "s", "v\"1");
	json_write_string(&w, "none", NULL);
	json_write_int(&w, "zero", 0);
	json_write_int(&w, "neg", -42);
	json_write_int(&w, "min", INT64_MIN);
	json_write_int(&w, "max", INT64_MAX);
	json_write_bool(&w, "t", true);
	json_write_bool(&w, "f", false);
	json_write_null(&w, "n");
	json_write_time(&w, "epoch", 0);
	json_write_time(&w, "before", -1);
	json_write_time(&w, "at", INT64_C(1795556910123));
	json_write_array_begin(&w, "empty");
	json_write_array_end(&w);
	json_write_object_begin(&w, "obj");
	json_write_object_end(&w);
	json_write_array_begin(&w, "list");
	json_write_int(&w, NULL, 1);
	json_write_object_begin(&w, NULL);
	json_write_string(&w, "k\n", "x");
	json_write_array_begin(&w, "inner");
	json_write_bool(&w, NULL, true);
	json_write_null(&w, NULL);
	json_write_array_end(&w);
	json_write_object_end(&w);
	json_write_string_len(&w, NULL, "a\0b", 3);
	json_write_array_end(&w);
	json_write_raw(&w, "raw", "[1,{\"a\":2}]", 11);
	json_write_object_end(&w);
	CHECK(!b.failed);

	struct json_object *o = json_object_new_object();
	json_put_string(o, "s", "v\"1");
	json_put_string(o, "none", NULL);
	json_put_int(o, "zero", 0);
	json_put_int(o, "neg", -42);
	json_put_int(o, "min", INT64_MIN);
	json_put_int(o, "max", INT64_MAX);
	json_put_bool(o, "t", true);
	json_put_bool(o, "f", false);
	json_object_object_add(o, "n", NULL);
	json_put_time(o, "epoch", 0);
	json_put_time(o, "before", -1);
	json_put_time(o, "at", INT64_C(1795556910123));
	json_object_object_add(o, "empty", json_object_new_array());
	json_object_object_add(o, "obj", json_object_new_object());
	struct json_object *list = json_object_new_array();
	json_object_array_add(list, json_object_new_int64(1));
	struct json_object *inner_obj = json_object_new_object();
	json_put_string(inner_obj, "k\n", "x");
	struct json_object *inner = json_object_new_array();
	json_object_array_add(inner, json_object_new_boolean(true));
	json_object_array_add(inner, NULL);
	json_object_object_add(inner_obj, "inner", inner);
	json_object_array_add(list, inner_obj);
	json_object_array_add(list, json_object_new_string_len("a\0b", 3));
	json_object_object_add(o, "list", list);
	struct json_object *raw = json_object_new_array();
	json_object_array_add(raw, json_object_new_int(1));
	struct json_object *raw_obj = json_object_new_object();
	json_put_int(raw_obj, "a", 2);
	json_object_array_add(raw, raw_obj);
	json_object_object_add(o, "raw", raw);
	size_t n;
	const char *want = json_text(o, &n);
	CHECK(b.data && strcmp(b.data, want) == 0, "\n  got  %s\n  want %s", b.data ? b.data : "",
	      want);
	CHECK(strstr(want, "\"at\":\"2026-11-24T21:48:30.123Z\"") != NULL);
	CHECK(strstr(want, "\"min\":-9223372036854775808") != NULL);

	test_case("the writer's text parses back with the strict parser");
	struct json_object *back = NULL;
	struct ee_error err;
	CHECK_INT(json_parse_object(b.data, b.len, &back, &err), 0);
	CHECK(back && json_object_equal(back, o));
	json_object_put(back);
	json_object_put(o);
	buf_free(&b);

	test_case("a top-level array of scalars");
	buf_init(&b);
	json_writer_init(&w, &b);
	json_write_array_begin(&w, NULL);
	json_write_string(&w, NULL, "a");
	json_write_string(&w, NULL, "b");
	json_write_int(&w, NULL, 3);
	json_write_array_end(&w);
	CHECK_STR(b.data, "[\"a\",\"b\",3]");
	buf_free(&b);
}

static void test_misuse(void)
{
	test_case("nesting deeper than EE_JSON_MAX_DEPTH marks the buffer failed");
	struct buf b;
	buf_init(&b);
	struct json_writer w;
	json_writer_init(&w, &b);
	for (int i = 0; i < EE_JSON_MAX_DEPTH; i++)
		json_write_array_begin(&w, NULL);
	CHECK(!b.failed);
	json_write_array_begin(&w, NULL);
	CHECK(b.failed);
	buf_free(&b);

	test_case("an end without a begin marks the buffer failed");
	buf_init(&b);
	json_writer_init(&w, &b);
	json_write_object_end(&w);
	CHECK(b.failed);
	buf_free(&b);

	test_case("a failed buffer takes no more text");
	buf_init(&b);
	b.failed = true;
	json_writer_init(&w, &b);
	json_write_object_begin(&w, NULL);
	json_write_string(&w, "k", "v");
	json_write_object_end(&w);
	CHECK_INT(b.len, 0);
	CHECK_INT(json_append_string(&b, "x", 1), -1);
	buf_free(&b);
}

int main(void)
{
	test_escapes();
	test_same_as_json_c();
	test_structure();
	test_misuse();
	return test_finish();
}
