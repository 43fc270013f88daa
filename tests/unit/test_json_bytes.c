/*
 * test_json_bytes.c - reading the tunnel's header strings back as bytes
 * (lib/json_bytes.c) and what tunnel_msg_parse does with them.
 *
 * json_bytes_decode: each \udc80..\udcff escape gives its one byte; every
 * other string reads as json-c reads it (escapes, surrogate pairs, any
 * other lone surrogate as U+FFFD, \u0000, raw bytes); broken strings are
 * refused.  The member walk and json_bytes_object: values of every type
 * stepped over, the last of a repeated key, a key cut at a NUL, arrays of
 * strings, other values null, faults.  tunnel_msg_parse: a proxy_response
 * or proxy_request whose headers carry \udcXX gets the bytes, any other
 * keeps json-c's tree as it is; tunnel_msg_request_id finds the id of a
 * message json-c refuses (raw ISO-8859-1 bytes, as an agent that predates
 * the escapes writes them) and nothing else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "check.h"
#include "json_bytes.h"
#include "json_writer.h"
#include "tunnel_msg.h"

/* A string literal's bytes, without its terminating NUL. */
#define LIT(s) s, sizeof(s) - 1

/* What json-c reads for the JSON string text (strict, UTF-8 checked); NULL if it refuses. */
static struct json_object *json_c_read(const char *text, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	struct json_object *o = json_tokener_parse_ex(tok, text, (int)len);
	json_tokener_free(tok);
	return o;
}

/* Decodes text, which must read as want[0..want_len) and be json-c's reading when same_as_json_c. */
static void check_decode(const char *text, const char *want, size_t want_len, bool same_as_json_c)
{
	size_t len = strlen(text), used = 0;
	struct buf b;
	buf_init(&b);
	int rc = json_bytes_decode(text, len, &b, &used);
	CHECK(rc == 0 && used == len && b.len == want_len &&
	              (want_len == 0 || memcmp(b.data, want, want_len) == 0),
	      "%s reads as %s", text, test_printable(b.data ? b.data : ""));
	struct json_object *o = json_c_read(text, len);
	CHECK(o && json_object_is_type(o, json_type_string), "json-c refuses %s", text);
	if (o && same_as_json_c)
		CHECK((size_t)json_object_get_string_len(o) == b.len &&
		              memcmp(json_object_get_string(o), b.data ? b.data : "", b.len) == 0,
		      "json-c reads %s otherwise", text);
	json_object_put(o);
	/* Only checking gives the same verdict. */
	CHECK(json_bytes_decode(text, len, NULL, &used) == 0 && used == len);
	buf_free(&b);
}

static void check_refused(const char *text, size_t len)
{
	struct buf b;
	buf_init(&b);
	size_t used;
	CHECK(json_bytes_decode(text, len, &b, &used) != 0, "%s taken", test_printable(text));
	CHECK(json_bytes_decode(text, len, NULL, &used) != 0, "%s taken", test_printable(text));
	buf_free(&b);
}

static void test_decode(void)
{
	test_case("json_bytes_decode: each \\udc80..\\udcff escape is its one byte (either case)");
	for (int c = 0x80; c < 0x100; c++) {
		char text[32], upper[32];
		snprintf(text, sizeof(text), "\"a\\udc%02xb\"", c);
		snprintf(upper, sizeof(upper), "\"a\\uDC%02Xb\"", c);
		char want[3] = {'a', (char)c, 'b'};
		check_decode(text, want, 3, false);
		check_decode(upper, want, 3, false);
	}

	test_case("json_bytes_decode: ISO-8859-1 as the agent writes it");
	check_decode("\"attachment; filename=\\\"caf\\udce9.txt\\\"\"",
	             LIT("attachment; filename=\"caf\xe9.txt\""), false);

	test_case("json_bytes_decode: the rest as json-c reads it");
	check_decode("\"\"", LIT(""), true);
	check_decode("\"plain text\"", LIT("plain text"), true);
	check_decode("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", LIT("\" \\ / \b \f \n \r \t"), true);
	check_decode("\"\\u0041\\u00e9\\u20ac\"", LIT("A\xc3\xa9\xe2\x82\xac"), true);
	check_decode("\"\\u0000x\"", LIT("\0x"), true);
	check_decode("\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", LIT("caf\xc3\xa9 \xf0\x9f\x98\x80"), true);
	check_decode("\"\\ud83d\\ude00\"", LIT("\xf0\x9f\x98\x80"), true);
	check_decode("\"\\udbff\\udfff\"", LIT("\xf4\x8f\xbf\xbf"), true);
	/* A high surrogate takes a low one after it, \udcXX too: that pair is one code point. */
	check_decode("\"\\ud800\\udce9\"", LIT("\xf0\x90\x83\xa9"), true);

	test_case("json_bytes_decode: other lone surrogates are U+FFFD, as json-c reads them");
	check_decode("\"\\ud800\"", LIT("\xef\xbf\xbd"), true);
	check_decode("\"\\ud800x\"", LIT("\xef\xbf\xbdx"), true);
	check_decode("\"\\ud800\\u0041\"", LIT("\xef\xbf\xbd" "A"), true);
	check_decode("\"\\ud800\\n\"", LIT("\xef\xbf\xbd\n"), true);
	check_decode("\"\\ud800\\ud800\\udc00\"", LIT("\xef\xbf\xbd\xf0\x90\x80\x80"), true);
	check_decode("\"\\udc00\\udc7f\\udd00\\udfff\"",
	             LIT("\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"), true);

	test_case("json_bytes_decode: broken strings refused");
	check_refused(LIT(""));
	check_refused(LIT("x"));
	check_refused(LIT("\"open"));
	check_refused(LIT("\"ends in a backslash\\"));
	check_refused(LIT("\"\\x41\""));
	check_refused(LIT("\"\\u12\""));
	check_refused(LIT("\"\\u12g4\""));
	check_refused(LIT("\"\\ud800\\uzzzz\""));
	check_refused(LIT("\"\\ud800\\u00\""));
	check_refused(LIT("\"raw\nnewline\""));
	check_refused(LIT("\"raw\ttab\""));
	check_refused("\"a\0b\"", 5);

	test_case("json_bytes_decode: reads one literal and says where it ends");
	size_t used = 0;
	CHECK(json_bytes_decode(LIT("\"ab\" , \"cd\""), NULL, &used) == 0 && used == 4);
}

static void test_members(void)
{
	test_case("json_members_next: every kind of value stepped over, keys decoded");
	const char *text = " { \"a\" : 1 , \"b\\u0041\":[1,{\"x\":\"]\"},\"}\"] ,\"c\":{\"d\":[]},"
	                   "\"e\":true,\"f\":null,\"g\":-1.5e+3,\"h\":\"s\\\"\"} ";
	static const char *const keys[] = {"a", "bA", "c", "e", "f", "g", "h"};
	static const char *const values[] = {"1", "[1,{\"x\":\"]\"},\"}\"]", "{\"d\":[]}", "true",
	                                     "null", "-1.5e+3", "\"s\\\"\""};
	struct json_members m;
	struct buf key;
	buf_init(&key);
	json_members_start(&m, text, strlen(text));
	const char *v;
	size_t vlen;
	int n = 0;
	while (json_members_next(&m, &key, &v, &vlen) == 1 && n < 7) {
		CHECK_STR(key.data, keys[n]);
		CHECK(vlen == strlen(values[n]) && memcmp(v, values[n], vlen) == 0, "value %.*s",
		      (int)vlen, v);
		n++;
	}
	CHECK_INT(n, 7);
	CHECK_INT(json_members_next(&m, &key, &v, &vlen), 0);
	CHECK_INT(json_members_next(&m, &key, &v, &vlen), 0);

	test_case("json_members_next: an empty object; members up to a fault, then -1");
	json_members_start(&m, LIT("{ }"));
	CHECK_INT(json_members_next(&m, &key, &v, &vlen), 0);
	json_members_start(&m, LIT("{\"type\":\"x\",\"id\":\"r1\",\"bad\":\"\xe9\n\",\"z\":1}"));
	CHECK_INT(json_members_next(&m, &key, &v, &vlen), 1);
	CHECK_INT(json_members_next(&m, &key, &v, &vlen), 1);
	CHECK_STR(key.data, "id");
	CHECK_INT(json_members_next(&m, &key, &v, &vlen), -1);
	CHECK_INT(json_members_next(&m, &key, &v, &vlen), -1);
	static const char *const broken[] = {"", "[1]", "{", "{\"a\"", "{\"a\":", "{\"a\" 1}",
	                                     "{\"a\":1,}", "{\"a\":1 \"b\":2}", "{1:2}", "{\"a\":}"};
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		json_members_start(&m, broken[i], strlen(broken[i]));
		int rc;
		while ((rc = json_members_next(&m, &key, &v, &vlen)) == 1)
			;
		CHECK(rc == -1, "%s", broken[i]);
	}
	buf_free(&key);
}

/* json_bytes_object of text, written back by json-c, must be want (NULL: refused). */
static void check_object(const char *text, size_t len, const char *want)
{
	struct json_object *o = json_bytes_object(text, len);
	if (!want) {
		CHECK(!o, "%s taken", test_printable(text));
	} else {
		const char *got = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
		CHECK(got && strcmp(got, want) == 0, "%s, want %s", got ? test_printable(got) : "(null)",
		      want);
	}
	json_object_put(o);
}

static void test_object(void)
{
	test_case("json_bytes_object: strings and arrays of strings as bytes, other values null");
	struct json_object *o = json_bytes_object(
		LIT("{\"X-File\":\"caf\\udce9\",\"Set-Cookie\":[\"a=\\udcff\",1,\"b\"],\"N\":5,\"O\":{}}"));
	CHECK(o != NULL);
	struct json_object *v;
	CHECK(o && json_object_object_get_ex(o, "X-File", &v) &&
	      json_object_get_string_len(v) == 4 && memcmp(json_object_get_string(v), "caf\xe9", 4) == 0);
	CHECK(o && json_object_object_get_ex(o, "Set-Cookie", &v) &&
	      json_object_is_type(v, json_type_array) && json_object_array_length(v) == 3 &&
	      strcmp(json_object_get_string(json_object_array_get_idx(v, 0)), "a=\xff") == 0 &&
	      json_object_array_get_idx(v, 1) == NULL &&
	      strcmp(json_object_get_string(json_object_array_get_idx(v, 2)), "b") == 0);
	CHECK(o && json_object_object_get_ex(o, "N", &v) && v == NULL);
	CHECK(o && json_object_object_get_ex(o, "O", &v) && v == NULL);
	json_object_put(o);

	test_case("json_bytes_object: a repeated key keeps its first place and last value, as json-c");
	check_object(LIT("{\"a\":\"1\",\"b\":\"2\",\"a\":\"3\"}"), "{\"a\":\"3\",\"b\":\"2\"}");
	check_object(LIT("{\"k\\u0000x\":\"v\"}"), "{\"k\":\"v\"}");
	check_object(LIT("{\"\\udce9\":\"v\"}"), "{\"\xe9\":\"v\"}");
	check_object(LIT(" {} "), "{}");
	check_object(LIT("{\"a\":[]}"), "{\"a\":[]}");

	test_case("json_bytes_object: not an object, or broken, is NULL");
	check_object(LIT("[]"), NULL);
	check_object(LIT("\"s\""), NULL);
	check_object(LIT("{\"a\":\"1\"} x"), NULL);
	check_object(LIT("{\"a\":[\"1\" \"2\"]}"), NULL);
	check_object(LIT("{\"a\":[\"1\",]}"), NULL);
	check_object(LIT("{\"a\":\"\\q\"}"), NULL);
	check_object(LIT(""), NULL);
}

static void check_member(const char *text, size_t len, const char *key, const char *want)
{
	struct json_object *o = json_bytes_member_object(text, len, key);
	const char *got = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
	CHECK(want ? got && strcmp(got, want) == 0 : !o, "%s in %s: %s, want %s", key,
	      test_printable(text), got ? test_printable(got) : "(null)", want ? want : "(null)");
	json_object_put(o);
}

static void test_member(void)
{
	test_case("json_bytes_member_object: the member's object as bytes; the last of a repeat");
	check_member(LIT("{\"method\":\"GET\",\"headers\":{\"X\":\"caf\\udce9\"}}"), "headers",
	             "{\"X\":\"caf\xe9\"}");
	check_member(LIT("{\"headers\":{\"a\":\"1\"},\"headers\":{\"b\":\"\\udcff\"}}"), "headers",
	             "{\"b\":\"\xff\"}");
	check_member(LIT("{\"h\":{\"in\":{\"headers\":{}}}}"), "h", "{\"in\":null}");

	test_case("json_bytes_member_object: absent, not an object, or broken text is NULL");
	check_member(LIT("{\"method\":\"GET\"}"), "headers", NULL);
	check_member(LIT("{\"headers\":[\"a\"]}"), "headers", NULL);
	check_member(LIT("{\"headers\":\"a\"}"), "headers", NULL);
	check_member(LIT("{\"headers\":{\"a\":\"1\"},"), "headers", NULL);
	check_member(LIT("[{\"headers\":{}}]"), "headers", NULL);

	test_case("json_bytes_maybe_lost: a U+FFFD in a name, a value, or a string of an array");
	static const char *const lost[] = {"{\"a\":\"x\\ufffd\"}", "{\"\\ufffd\":\"x\"}",
	                                   "{\"a\":[\"b\",\"\\ufffd\"]}"};
	static const char *const kept[] = {"{\"a\":\"x\"}", "{}", "{\"a\":[\"\\u00e9\"],\"b\":1}"};
	for (size_t i = 0; i < 3; i++) {
		struct json_object *o = json_tokener_parse(lost[i]);
		CHECK(o && json_bytes_maybe_lost(o), "%s", lost[i]);
		json_object_put(o);
		o = json_tokener_parse(kept[i]);
		CHECK(o && !json_bytes_maybe_lost(o), "%s", kept[i]);
		json_object_put(o);
	}
}

/* The value of header name in m's headers, as bytes; NULL if absent or not a string. */
static const char *header_of(const struct tunnel_msg *m, const char *name, size_t *len)
{
	struct json_object *v;
	if (!m->headers || !json_object_object_get_ex(m->headers, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

static void test_tunnel_msg(void)
{
	test_case("tunnel_msg_parse: a proxy_response's \\udcXX header bytes come back byte-exact");
	static const char response[] =
		"{\"type\":\"proxy_response\",\"request_id\":\"r1\",\"status\":200,\"headers\":"
		"{\"Content-Disposition\":\"attachment; filename=\\\"caf\\udce9.txt\\\"\","
		"\"Set-Cookie\":[\"a=\\udcff\",\"b=\xc3\xa9\"],\"X-Plain\":\"p\"},\"body_b64\":\"\"}";
	struct tunnel_msg m;
	struct ee_error err;
	size_t len = 0;
	const char *v;
	CHECK_INT(tunnel_msg_parse(LIT(response), &m, &err), 0);
	CHECK((v = header_of(&m, "Content-Disposition", &len)) && len == 31 &&
	      memcmp(v, "attachment; filename=\"caf\xe9.txt\"", 31) == 0);
	struct json_object *cookies;
	CHECK(m.headers && json_object_object_get_ex(m.headers, "Set-Cookie", &cookies) &&
	      strcmp(json_object_get_string(json_object_array_get_idx(cookies, 0)), "a=\xff") == 0 &&
	      strcmp(json_object_get_string(json_object_array_get_idx(cookies, 1)), "b=\xc3\xa9") == 0);
	CHECK((v = header_of(&m, "X-Plain", &len)) && strcmp(v, "p") == 0);
	/* The tree's own "headers" is the one read again. */
	struct json_object *h;
	CHECK(json_object_object_get_ex(m.root, "headers", &h) && h == m.headers);
	CHECK_STR(m.request_id, "r1");
	CHECK_INT(m.http_status, 200);
	tunnel_msg_free(&m);

	test_case("tunnel_msg_parse: every byte 0x80..0xff through json_bytes_put and back");
	for (int c = 0x80; c < 0x100; c++) {
		char value[3] = {'x', (char)c, 'y'};
		struct buf t;
		buf_init(&t);
		buf_puts(&t, "{\"type\":\"proxy_request\",\"request_id\":\"r2\",\"headers\":{\"X-B\":");
		json_append_bytes(&t, value, 3);
		buf_puts(&t, "}}");
		bool ok = tunnel_msg_parse(t.data, t.len, &m, &err) == 0;
		CHECK(ok && (v = header_of(&m, "X-B", &len)) && len == 3 && memcmp(v, value, 3) == 0,
		      "byte %02x", c);
		if (ok)
			tunnel_msg_free(&m);
		buf_free(&t);
	}

	test_case("tunnel_msg_parse: headers without \\udcXX are json-c's own, U+FFFD kept as sent");
	static const char plain[] =
		"{\"type\":\"proxy_response\",\"request_id\":\"r3\",\"headers\":{\"A\":\"\xef\xbf\xbd\","
		"\"B\":\"\\ufffd\",\"C\":\"\\ud800\"}}";
	CHECK_INT(tunnel_msg_parse(LIT(plain), &m, &err), 0);
	CHECK((v = header_of(&m, "A", &len)) && strcmp(v, "\xef\xbf\xbd") == 0);
	CHECK((v = header_of(&m, "B", &len)) && strcmp(v, "\xef\xbf\xbd") == 0);
	CHECK((v = header_of(&m, "C", &len)) && strcmp(v, "\xef\xbf\xbd") == 0);
	tunnel_msg_free(&m);

	test_case("tunnel_msg_parse: the last of two headers objects is the one read, as json-c");
	static const char twice[] =
		"{\"type\":\"proxy_response\",\"request_id\":\"r4\",\"headers\":{\"A\":\"\\udce9\"},"
		"\"status\":201,\"headers\":{\"B\":\"\\udcea\"}}";
	CHECK_INT(tunnel_msg_parse(LIT(twice), &m, &err), 0);
	CHECK(!header_of(&m, "A", &len));
	CHECK((v = header_of(&m, "B", &len)) && strcmp(v, "\xea") == 0);
	tunnel_msg_free(&m);

	test_case("tunnel_msg_parse: raw bytes that are not UTF-8 are still invalid_json");
	static const char raw[] = "{\"type\":\"proxy_response\",\"request_id\":\"0123456789ab000000000007\","
	                          "\"status\":200,\"headers\":{\"X\":\"caf\xe9\"},\"body_b64\":\"\"}";
	CHECK(tunnel_msg_parse(LIT(raw), &m, &err) != 0);
	CHECK_STR(err.reason, "invalid_json");

	test_case("tunnel_msg_request_id: the id of a refused proxy_response, members before the fault");
	char id[25];
	CHECK(tunnel_msg_request_id(LIT(raw), TUNNEL_MSG_PROXY_RESPONSE, id, sizeof(id)));
	CHECK_STR(id, "0123456789ab000000000007");
	CHECK(!tunnel_msg_request_id(LIT(raw), TUNNEL_MSG_PROXY_REQUEST, id, sizeof(id)));
	CHECK(!tunnel_msg_request_id(LIT(raw), TUNNEL_MSG_PROXY_RESPONSE, id, 24)); /* too long */

	test_case("tunnel_msg_request_id: nothing when the id comes after the fault, or is odd");
	CHECK(!tunnel_msg_request_id(LIT("{\"type\":\"proxy_response\",\"h\":\"\xe9\n\",\"request_id\":\"r\"}"),
	                             TUNNEL_MSG_PROXY_RESPONSE, id, sizeof(id)));
	CHECK(!tunnel_msg_request_id(LIT("{\"request_id\":\"r\",\"x\":\"\xe9\n\",\"type\":\"proxy_response\"}"),
	                             TUNNEL_MSG_PROXY_RESPONSE, id, sizeof(id)));
	CHECK(!tunnel_msg_request_id(LIT("{\"type\":\"proxy_response\",\"request_id\":\"a b\",}"),
	                             TUNNEL_MSG_PROXY_RESPONSE, id, sizeof(id)));
	CHECK(!tunnel_msg_request_id(LIT("{\"type\":\"proxy_response\",\"request_id\":7,}"),
	                             TUNNEL_MSG_PROXY_RESPONSE, id, sizeof(id)));
	CHECK(!tunnel_msg_request_id(LIT("{\"type\":\"proxy_response\",\"request_id\":\"\",}"),
	                             TUNNEL_MSG_PROXY_RESPONSE, id, sizeof(id)));
	CHECK(!tunnel_msg_request_id(LIT("not json"), TUNNEL_MSG_PROXY_RESPONSE, id, sizeof(id)));
	CHECK(tunnel_msg_request_id(LIT("{\"type\":\"proxy_request\",\"request_id\":\"q1\",\"x\":}"),
	                            TUNNEL_MSG_PROXY_REQUEST, id, sizeof(id)));
	CHECK_STR(id, "q1");
}

int main(void)
{
	test_decode();
	test_members();
	test_object();
	test_member();
	test_tunnel_msg();
	return test_finish();
}
