/*
 * test_util.c - the small helpers of lib/util.c: constant-time comparison,
 * the identifier validators (length boundaries and every character class),
 * HTML escaping, hex decoding and encoding, SHA-256, random hex ids, and the
 * growable buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "util.h"

static void test_secure_equal(void)
{
	test_case("util_secure_equal: equal strings");
	CHECK(util_secure_equal("token-123", 9, "token-123", 9));
	CHECK(util_secure_equal("a", 1, "a", 1));

	test_case("util_secure_equal: different strings of one length");
	CHECK(!util_secure_equal("token-123", 9, "token-124", 9));
	CHECK(!util_secure_equal("Token-123", 9, "token-123", 9));
	CHECK(!util_secure_equal("a", 1, "b", 1));

	test_case("util_secure_equal: different lengths, prefix of the other");
	CHECK(!util_secure_equal("token", 5, "token-123", 9));
	CHECK(!util_secure_equal("token-123", 9, "token", 5));
	CHECK(!util_secure_equal("token-123", 8, "token-123", 9));

	test_case("util_secure_equal: empty");
	CHECK(util_secure_equal("", 0, "", 0));
	CHECK(!util_secure_equal("", 0, "x", 1));
	CHECK(!util_secure_equal("x", 1, "", 0));

	test_case("util_secure_equal: bytes after len are not compared; NULs are");
	CHECK(util_secure_equal("abcX", 3, "abcY", 3));
	CHECK(!util_secure_equal("ab\0c", 4, "ab\0d", 4));
	CHECK(util_secure_equal("ab\0c", 4, "ab\0c", 4));

	test_case("util_secure_equal: long inputs differing in the last byte");
	char a[4096], b[4096];
	memset(a, 'q', sizeof(a));
	memcpy(b, a, sizeof(b));
	CHECK(util_secure_equal(a, sizeof(a), b, sizeof(b)));
	b[sizeof(b) - 1] = 'r';
	CHECK(!util_secure_equal(a, sizeof(a), b, sizeof(b)));
}

/* A string of n copies of c (n < 512). */
static const char *repeat(char c, size_t n)
{
	static char s[512];
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

typedef bool (*validator)(const char *, size_t);

static void check_charset(const char *name, validator valid, size_t max, const char *extra)
{
	test_case("%s: lengths 0, 1, max, max+1", name);
	CHECK(!valid("", 0));
	CHECK(valid("a", 1));
	CHECK(valid(repeat('a', max), max));
	CHECK(!valid(repeat('a', max + 1), max + 1));
	CHECK(valid(repeat('Z', max), max));
	CHECK(valid(repeat('9', max - 1), max - 1));

	test_case("%s: every byte value", name);
	for (int c = 1; c < 256; c++) {
		char s[4] = {'a', (char)c, 'b', '\0'};
		bool want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		            (c >= '0' && c <= '9') || strchr(extra, c) != NULL;
		if (valid(s, 3) != want)
			test_fail(__FILE__, __LINE__, "%s with byte 0x%02x: got %d, want %d", name, c,
			          !want, want);
		/* the same byte alone and at the end; a lone "." is no name */
		if (c == '.')
			want = false;
		if (valid(s + 1, 1) != want)
			test_fail(__FILE__, __LINE__, "%s of the single byte 0x%02x: got %d", name, c,
			          !want);
	}

	test_case("%s: a NUL inside the length is refused", name);
	CHECK(!valid("ab\0c", 4));
	CHECK(!valid("\0", 1));
	CHECK(!valid("abc\0", 4));

	test_case("%s: forbidden classes (space, slash, @, quote, UTF-8, controls)", name);
	static const char *const bad[] = {
		"a b", "a/b", "a\\b", "@mint", "a@b", "a\"b", "a'b", "a<b", "a>b", "a&b",
		"a?b", "a#b", "a%b", "a+b", "a=b", "a,b", "a;b", "a*b", "a~b", "a!b",
		"a$b", "a(b", "a)b", "a[b", "a]b", "a{b", "a}b", "a|b", "a^b", "a`b",
		"a\tb", "a\nb", "a\rb", "a\x7f" "b", "caf\xc3\xa9", "\xff", "a\x1b",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (valid(bad[i], strlen(bad[i])))
			test_fail(__FILE__, __LINE__, "%s accepted entry %zu", name, i);
	}

	test_case("%s: allowed punctuation %s", name, extra);
	for (const char *p = extra; *p; p++) {
		char s[4] = {'x', *p, 'y', '\0'};
		CHECK(valid(s, 3));
		if (*p != '.')
			CHECK(valid(p, 1));
	}
	CHECK(valid("Abc-09", 6));

	test_case("%s: names made of dots only are refused", name);
	CHECK(!valid(".", 1));
	CHECK(!valid("..", 2));
	CHECK(!valid("...", 3));
	CHECK(valid(".a", 2));
	CHECK(valid("a.", 2));
	CHECK(valid("a..b", 4));
}

static void test_identifiers(void)
{
	check_charset("util_valid_account", util_valid_account, EE_ACCOUNT_MAX, "._:-");
	check_charset("util_valid_node_id", util_valid_node_id, EE_NODE_ID_MAX, "._:-");
	check_charset("util_valid_app_name", util_valid_app_name, EE_APP_NAME_MAX, "._-");

	test_case("util_valid_app_name: a colon is an account character, not an app one");
	CHECK(!util_valid_app_name("a:b", 3));
	CHECK(util_valid_account("a:b", 3));
	CHECK(util_valid_node_id("a:b", 3));

	test_case("util_valid_printable: 0x21..0x7e, 1..max");
	CHECK(util_valid_printable("!", 1, 10));
	CHECK(util_valid_printable("~", 1, 10));
	CHECK(util_valid_printable("abc", 3, 3));
	CHECK(!util_valid_printable("abcd", 4, 3));
	CHECK(!util_valid_printable("", 0, 3));
	CHECK(!util_valid_printable(" ", 1, 3));
	CHECK(!util_valid_printable("a b", 3, 3));
	CHECK(!util_valid_printable("a\x7f", 2, 3));
	CHECK(!util_valid_printable("a\x80", 2, 3));
	CHECK(!util_valid_printable("a\t", 2, 3));
	CHECK(!util_valid_printable("a\0", 2, 3));
	int wrong = 0;
	for (int c = 1; c < 256; c++) {
		char s[2] = {(char)c, '\0'};
		bool want = c >= 0x21 && c <= 0x7e;
		if (util_valid_printable(s, 1, 1) != want)
			wrong++;
	}
	CHECK_INT(wrong, 0);
}

static void test_html(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"", ""},
		{"plain text 123", "plain text 123"},
		{"&", "&amp;"},
		{"<", "&lt;"},
		{">", "&gt;"},
		{"\"", "&quot;"},
		{"'", "&#39;"},
		{"<script>alert('x' & \"y\")</script>",
		 "&lt;script&gt;alert(&#39;x&#39; &amp; &quot;y&quot;)&lt;/script&gt;"},
		{"&amp;", "&amp;amp;"},
		{"a\nb", "a&#xFFFD;b"},
		{"a\tb", "a&#xFFFD;b"},
		{"a\rb", "a&#xFFFD;b"},
		{"\x01\x1f", "&#xFFFD;&#xFFFD;"},
		{"\x1b[31m", "&#xFFFD;[31m"},
		{"del\x7f", "del&#xFFFD;"},
		{"caf\xc3\xa9", "caf\xc3\xa9"}, /* UTF-8 passes through */
		{" ", " "},
		{"`=/", "`=/"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("buf_append_html case %zu", i);
		struct buf b;
		buf_init(&b);
		CHECK_INT(buf_puts(&b, "["), 0);
		CHECK_INT(buf_append_html(&b, cases[i].in), 0);
		CHECK_INT(buf_puts(&b, "]"), 0);
		char want[256];
		snprintf(want, sizeof(want), "[%s]", cases[i].out);
		CHECK_STR(b.data, want);
		CHECK_INT(b.len, strlen(want));
		buf_free(&b);
	}

	test_case("buf_append_html: every control character becomes U+FFFD");
	struct buf b;
	buf_init(&b);
	char all[33];
	for (int c = 1; c < 32; c++)
		all[c - 1] = (char)c;
	all[31] = 0x7f;
	all[32] = '\0';
	CHECK_INT(buf_append_html(&b, all), 0);
	CHECK_INT(b.len, 32 * strlen("&#xFFFD;"));
	for (size_t i = 0; i < b.len; i++) {
		if ((unsigned char)b.data[i] < 0x20 || b.data[i] == 0x7f) {
			test_fail(__FILE__, __LINE__, "raw control byte at %zu", i);
			break;
		}
	}
	buf_free(&b);

	test_case("buf_append_html: long input grows the buffer");
	buf_init(&b);
	for (int i = 0; i < 1000; i++)
		CHECK_INT(buf_append_html(&b, "<&>"), 0);
	CHECK_INT(b.len, 1000 * strlen("&lt;&amp;&gt;"));
	CHECK(strncmp(b.data + b.len - 13, "&lt;&amp;&gt;", 13) == 0);
	buf_free(&b);
}

static void test_hex(void)
{
	unsigned char out[8];
	size_t n = 99;

	test_case("util_hex_decode: lower and upper case");
	CHECK_INT(util_hex_decode("00ff10Ab", 8, out, sizeof(out), &n), 0);
	CHECK_INT(n, 4);
	CHECK_INT(out[0], 0x00);
	CHECK_INT(out[1], 0xff);
	CHECK_INT(out[2], 0x10);
	CHECK_INT(out[3], 0xab);

	test_case("util_hex_decode: empty input");
	n = 99;
	CHECK_INT(util_hex_decode("", 0, out, sizeof(out), &n), 0);
	CHECK_INT(n, 0);

	test_case("util_hex_decode: odd length refused");
	CHECK_INT(util_hex_decode("abc", 3, out, sizeof(out), &n), -1);
	CHECK_INT(util_hex_decode("a", 1, out, sizeof(out), &n), -1);

	test_case("util_hex_decode: non-hex characters refused");
	static const char *const bad[] = {"0g", "g0", "0x", " 0", "0 ", "-1", "+1", "\0a", "a\0",
	                                  "0G", "zz", ":0", "/0", "@0", "`0", "0\xff"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (util_hex_decode(bad[i], 2, out, sizeof(out), &n) != -1)
			test_fail(__FILE__, __LINE__, "decoded bad entry %zu", i);
	}

	test_case("util_hex_decode: output limit");
	CHECK_INT(util_hex_decode("0011223344556677", 16, out, 8, &n), 0);
	CHECK_INT(n, 8);
	CHECK_INT(util_hex_decode("001122334455667788", 18, out, 8, &n), -1);
	CHECK_INT(util_hex_decode("0011", 4, out, 1, &n), -1);
	CHECK_INT(util_hex_decode("00", 2, out, 0, &n), -1);

	test_case("util_hex_encode / decode round trip of every byte");
	unsigned char all[256], back[256];
	char text[513];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	util_hex_encode(all, 256, text);
	CHECK_INT(strlen(text), 512);
	CHECK(strncmp(text, "000102", 6) == 0);
	CHECK(strcmp(text + 506, "fdfeff") == 0);
	CHECK_INT(util_hex_decode(text, 512, back, sizeof(back), &n), 0);
	CHECK_INT(n, 256);
	CHECK(memcmp(all, back, 256) == 0);
}

static bool all_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

static void test_random(void)
{
	test_case("util_random_hex: length and charset for 1..64 bytes");
	for (size_t nbytes = 1; nbytes <= 64; nbytes++) {
		char out[130];
		memset(out, 'X', sizeof(out));
		CHECK_INT(util_random_hex(out, nbytes), 0);
		CHECK_INT(strlen(out), 2 * nbytes);
		CHECK(all_lower_hex(out, 2 * nbytes));
		CHECK(out[2 * nbytes + 1] == 'X', "(wrote past the terminator)");
	}

	test_case("util_random_hex: more than 64 bytes is refused");
	char big[200];
	CHECK_INT(util_random_hex(big, 65), -1);

	test_case("util_random_hex: zero bytes gives an empty string");
	char empty[2] = "X";
	CHECK_INT(util_random_hex(empty, 0), 0);
	CHECK_STR(empty, "");

	test_case("util_random_hex: ids do not repeat and use every digit");
	char seen[100][33];
	int digits_seen[16] = {0};
	for (int i = 0; i < 100; i++) {
		CHECK_INT(util_random_hex(seen[i], 16), 0);
		for (int j = 0; j < i; j++) {
			if (strcmp(seen[i], seen[j]) == 0)
				test_fail(__FILE__, __LINE__, "id %d repeats id %d", i, j);
		}
		for (int k = 0; k < 32; k++) {
			char c = seen[i][k];
			digits_seen[c <= '9' ? c - '0' : c - 'a' + 10]++;
		}
	}
	for (int d = 0; d < 16; d++)
		CHECK(digits_seen[d] > 0, "(hex digit %x never appeared in 3200)", d);

	test_case("util_random_bytes: fills the buffer");
	unsigned char bytes[64] = {0};
	CHECK_INT(util_random_bytes(bytes, sizeof(bytes)), 0);
	int zeros = 0;
	for (size_t i = 0; i < sizeof(bytes); i++)
		zeros += bytes[i] == 0;
	CHECK(zeros < 16);
}

static void test_sha256(void)
{
	test_case("util_sha256_hex: known vectors");
	char out[65];
	util_sha256_hex("", 0, out);
	CHECK_STR(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	util_sha256_hex("abc", 3, out);
	CHECK_STR(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_buf(void)
{
	struct buf b;

	test_case("buf: a fresh buffer is empty and owns nothing");
	buf_init(&b);
	CHECK(b.data == NULL);
	CHECK_INT(b.len, 0);
	CHECK(!b.failed);
	buf_free(&b);

	test_case("buf: appending nothing still gives a NUL-terminated string");
	buf_init(&b);
	CHECK_INT(buf_append(&b, "", 0), 0);
	CHECK(b.data != NULL);
	CHECK_STR(b.data, "");
	buf_free(&b);

	test_case("buf: growth past many doublings keeps every byte");
	buf_init(&b);
	size_t total = 0;
	for (int i = 0; i < 5000; i++) {
		char piece[16];
		int n = snprintf(piece, sizeof(piece), "%d,", i);
		CHECK_INT(buf_append(&b, piece, (size_t)n), 0);
		total += (size_t)n;
	}
	CHECK_INT(b.len, total);
	CHECK_INT(strlen(b.data), total);
	CHECK(b.cap > b.len);
	CHECK(strncmp(b.data, "0,1,2,", 6) == 0);
	CHECK(strcmp(b.data + total - 5, "4999,") == 0);
	CHECK(!b.failed);
	buf_free(&b);

	test_case("buf: one big append");
	buf_init(&b);
	char *big = malloc(100000);
	CHECK(big != NULL);
	if (big) {
		memset(big, 'z', 100000);
		CHECK_INT(buf_append(&b, big, 100000), 0);
		CHECK_INT(b.len, 100000);
		CHECK(b.data[99999] == 'z' && b.data[100000] == '\0');
		free(big);
	}
	buf_free(&b);

	test_case("buf: binary data with NULs");
	buf_init(&b);
	CHECK_INT(buf_append(&b, "a\0b", 3), 0);
	CHECK_INT(b.len, 3);
	CHECK(memcmp(b.data, "a\0b", 4) == 0);
	buf_free(&b);

	test_case("buf_printf: formats, appends and grows");
	buf_init(&b);
	CHECK_INT(buf_puts(&b, "x="), 0);
	CHECK_INT(buf_printf(&b, "%d %s", 42, "y"), 0);
	CHECK_STR(b.data, "x=42 y");
	CHECK_INT(b.len, 6);
	char longer[1000];
	memset(longer, 'w', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	CHECK_INT(buf_printf(&b, "[%s]", longer), 0);
	CHECK_INT(b.len, 6 + 2 + 999);
	CHECK_INT(strlen(b.data), b.len);
	CHECK(b.data[b.len - 1] == ']');
	buf_free(&b);

	test_case("buf_reset: empties but keeps the allocation");
	buf_init(&b);
	buf_puts(&b, "hello");
	char *before = b.data;
	size_t cap = b.cap;
	buf_reset(&b);
	CHECK_INT(b.len, 0);
	CHECK_STR(b.data, "");
	CHECK(b.data == before && b.cap == cap);
	buf_puts(&b, "again");
	CHECK_STR(b.data, "again");
	buf_free(&b);
	buf_init(&b);
	buf_reset(&b); /* on a buffer that never allocated */
	CHECK(b.data == NULL);
	buf_free(&b);

	test_case("buf_reserve: an impossible size fails and marks the buffer");
	buf_init(&b);
	buf_puts(&b, "abc");
	CHECK_INT(buf_reserve(&b, SIZE_MAX - 1), -1);
	CHECK(b.failed);
	CHECK_INT(buf_puts(&b, "more"), -1);
	CHECK_STR(b.data, "abc");
	buf_reset(&b);
	CHECK(!b.failed);
	CHECK_INT(buf_puts(&b, "ok"), 0);
	CHECK_STR(b.data, "ok");
	buf_free(&b);
}

int main(void)
{
	test_secure_equal();
	test_identifiers();
	test_html();
	test_hex();
	test_random();
	test_sha256();
	test_buf();
	return test_finish();
}
