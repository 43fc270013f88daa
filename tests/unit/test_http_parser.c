/*
 * test_http_parser.c - lib/http_parser.c: request heads that must parse
 * (and the facts derived from them), heads that must be refused with a
 * given status and reason (the request-smuggling classics among them), the
 * limits at and past their edges, feeding a head in pieces, pipelined
 * requests, the chunked body decoder fed whole, split and byte by byte, and
 * the hop-by-hop classification a proxy needs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http_parser.h"
#include "util.h"

/* A string literal with its length, NULs inside included. */
#define LIT(s) s, sizeof(s) - 1

static bool span_is(const char *p, size_t n, const char *want)
{
	return p && strlen(want) == n && memcmp(p, want, n) == 0;
}

/* A copy of exactly len bytes, so ASan sees any read past the end. */
static char *exact_copy(const char *text, size_t len)
{
	char *p = malloc(len ? len : 1);
	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	memcpy(p, text, len);
	return p;
}

struct parsed {
	int rc;
	struct http_request_head head;
	size_t head_len;
	struct ee_error err;
};

/* Parses buf (not copied); checks that every pointer lies inside it. */
static void parse_in_place(const char *buf, size_t len, struct parsed *p)
{
	ee_error_clear(&p->err);
	p->rc = http_parse_request_head(buf, len, &p->head, &p->head_len, &p->err);
	if (p->rc != HTTP_PARSE_DONE)
		return;
	const char *end = buf + len;
	CHECK(p->head_len <= len && p->head_len <= HTTP_MAX_HEAD_BYTES);
	CHECK(p->head_len >= 4 && memcmp(buf + p->head_len - 4, "\r\n\r\n", 4) == 0);
	CHECK(p->head.method == buf);
	CHECK(p->head.target > buf && p->head.target + p->head.target_len <= end);
	for (int i = 0; i < p->head.header_count; i++) {
		const struct http_header *h = &p->head.headers[i];
		CHECK(h->name >= buf && h->name + h->name_len <= buf + p->head_len);
		CHECK(h->value >= buf && h->value + h->value_len <= buf + p->head_len);
	}
}

/*
 * Parses an exact copy of text.  The copy lives until the next call, so
 * the pointers in p stay valid until then.
 */
static char *parse_copy;

static void parse(const char *text, size_t len, struct parsed *p)
{
	free(parse_copy);
	parse_copy = exact_copy(text, len);
	parse_in_place(parse_copy, len, p);
}

/* ---- heads that parse ---- */

struct good_case {
	const char *text;
	size_t len;
	const char *method, *target;
	int minor, headers;
	bool chunked, has_cl;
	uint64_t cl;
	bool keep_alive, expect_continue, upgrade;
	const char *host; /* NULL: no Host */
};

#define GOOD(s, m, t, minor, n, ch, hcl, cl, ka, ex, up, host) \
	{s, sizeof(s) - 1, m, t, minor, n, ch, hcl, cl, ka, ex, up, host}

static const struct good_case good_cases[] = {
	GOOD("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "GET", "/", 1, 1, false, false, 0,
	     true, false, false, "example.com"),
	GOOD("GET /a/b?c=d&e=%20&f={x}|^ HTTP/1.1\r\nHost: app.example.com:8443\r\n"
	     "User-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
	     "GET", "/a/b?c=d&e=%20&f={x}|^", 1, 3, false, false, 0, true, false, false,
	     "app.example.com:8443"),
	GOOD("POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n"
	     "Content-Type: text/plain\r\n\r\n",
	     "POST", "/submit", 1, 3, false, true, 11, true, false, false, "h"),
	GOOD("POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", "POST", "/up", 1,
	     2, true, false, 0, true, false, false, "h"),
	GOOD("POST /up HTTP/1.1\r\nhost: h\r\ntransfer-encoding:CHUNKED\r\n\r\n", "POST", "/up", 1,
	     2, true, false, 0, true, false, false, "h"),
	GOOD("POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \t chunked \t \r\n\r\n", "POST",
	     "/up", 1, 2, true, false, 0, true, false, false, "h"),
	GOOD("GET / HTTP/1.0\r\n\r\n", "GET", "/", 0, 0, false, false, 0, false, false, false, NULL),
	GOOD("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET", "/", 0, 1, false, false, 0,
	     true, false, false, NULL),
	GOOD("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nConnection: close\r\n\r\n", "GET", "/",
	     0, 2, false, false, 0, false, false, false, NULL),
	GOOD("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", "GET", "/", 0, 1, false,
	     false, 0, false, false, false, NULL),
	GOOD("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "GET", "/", 1, 2, false,
	     false, 0, false, false, false, "h"),
	GOOD("GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n", "GET", "/", 1, 2, false,
	     false, 0, false, false, false, "h"),
	GOOD("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", "GET", "/", 1, 2, false,
	     false, 0, true, false, false, "h"),
	GOOD("GET / HTTP/1.1\r\nHost: h\r\nConnection: , ,X-Secret, close,\r\n\r\n", "GET", "/", 1,
	     2, false, false, 0, false, false, false, "h"),
	GOOD("PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
	     "PUT", "/f", 1, 3, false, true, 3, true, true, false, "h"),
	GOOD("PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n",
	     "PUT", "/f", 1, 3, false, true, 3, true, true, false, "h"),
	GOOD("PUT /f HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", "PUT", "/f", 0,
	     2, false, true, 3, false, false, false, NULL),
	GOOD("PUT /f HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n", "PUT", "/f", 1, 2,
	     false, false, 0, true, false, false, "h"),
	GOOD("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	     "GET", "/ws", 1, 5, false, false, 0, true, false, true, "h"),
	GOOD("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, upgrade\r\n\r\n", "GET", "/ws",
	     1, 2, false, false, 0, true, false, true, "h"),
	GOOD("GET /ws HTTP/1.1\r\nHost: h\r\nupgrade: h2c\r\n\r\n", "GET", "/ws", 1, 2, false, false,
	     0, true, false, true, "h"),
	GOOD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", "POST",
	     "/", 1, 3, false, true, 5, true, false, false, "h"),
	GOOD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5,5\r\n\r\n", "POST", "/", 1, 2,
	     false, true, 5, true, false, false, "h"),
	GOOD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 005\r\nContent-Length: 5\r\n\r\n",
	     "POST", "/", 1, 3, false, true, 5, true, false, false, "h"),
	GOOD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "POST", "/", 1, 2, false,
	     true, 0, true, false, false, "h"),
	GOOD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\t7 \t\r\n\r\n", "POST", "/", 1, 2,
	     false, true, 7, true, false, false, "h"),
	GOOD("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n", "POST",
	     "/", 1, 2, false, true, UINT64_C(9223372036854775807), true, false, false, "h"),
	GOOD("GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Blank:   \r\n\r\n", "GET", "/", 1, 3,
	     false, false, 0, true, false, false, "h"),
	GOOD("GET / HTTP/1.1\r\nHost: h\r\nX-Utf8: caf\xc3\xa9 \xff\r\nX-Tab: a\tb\r\n\r\n", "GET",
	     "/", 1, 3, false, false, 0, true, false, false, "h"),
	GOOD("M-SEARCH /x HTTP/1.1\r\nHost: h\r\n\r\n", "M-SEARCH", "/x", 1, 1, false, false, 0,
	     true, false, false, "h"),
	GOOD("ABCDEFGHIJKLMNOP / HTTP/1.1\r\nHost: h\r\n\r\n", "ABCDEFGHIJKLMNOP", "/", 1, 1, false,
	     false, 0, true, false, false, "h"),
	GOOD("get /lower HTTP/1.1\r\nHost: h\r\n\r\n", "get", "/lower", 1, 1, false, false, 0, true,
	     false, false, "h"),
	GOOD("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "GET", "/", 1, 1, false, false, 0, true,
	     false, false, "[::1]:8080"),
	GOOD("GET / HTTP/1.1\r\nHOST:   spaced.example   \r\n\r\n", "GET", "/", 1, 1, false, false,
	     0, true, false, false, "spaced.example"),
	GOOD("GET / HTTP/1.0\r\nHost: one.example\r\n\r\n", "GET", "/", 0, 1, false, false, 0,
	     false, false, false, "one.example"),
	GOOD("GET /!$&'()*+,;=:@-._~%2F/?/? HTTP/1.1\r\nHost: h\r\n\r\n", "GET",
	     "/!$&'()*+,;=:@-._~%2F/?/?", 1, 1, false, false, 0, true, false, false, "h"),
	GOOD("DELETE /x HTTP/1.1\r\nHost: h\r\nX-!#$%&'*+-.^_`|~: ok\r\n\r\n", "DELETE", "/x", 1,
	     2, false, false, 0, true, false, false, "h"),
};

static void check_good(const struct good_case *g)
{
	struct parsed p;
	parse(g->text, g->len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	if (p.rc != HTTP_PARSE_DONE) {
		test_fail(__FILE__, __LINE__, "refused with %d %s", p.err.status, p.err.reason);
		return;
	}
	CHECK_INT(p.head_len, g->len);
	CHECK(span_is(p.head.method, p.head.method_len, g->method));
	CHECK(span_is(p.head.target, p.head.target_len, g->target));
	CHECK_INT(p.head.version_minor, g->minor);
	CHECK_INT(p.head.header_count, g->headers);
	CHECK_INT(p.head.chunked, g->chunked);
	CHECK_INT(p.head.has_content_length, g->has_cl);
	CHECK_INT(p.head.content_length, g->cl);
	CHECK_INT(p.head.keep_alive, g->keep_alive);
	CHECK_INT(p.head.expect_continue, g->expect_continue);
	CHECK_INT(p.head.upgrade, g->upgrade);
	if (g->host)
		CHECK(span_is(p.head.host, p.head.host_len, g->host));
	else
		CHECK(p.head.host == NULL && p.head.host_len == 0);
}

static void test_good_heads(void)
{
	for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		test_case("valid head: %s", test_printable(good_cases[i].text));
		check_good(&good_cases[i]);
	}

	test_case("valid head: header names and values as sent, values trimmed");
	struct parsed p;
	const char text[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Mixed-Case:  a b  c \t\r\nX-Empty:\r\n\r\n";
	char *copy = exact_copy(LIT(text));
	parse_in_place(copy, sizeof(text) - 1, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	CHECK_INT(p.head.header_count, 3);
	CHECK(span_is(p.head.headers[1].name, p.head.headers[1].name_len, "X-Mixed-Case"));
	CHECK(span_is(p.head.headers[1].value, p.head.headers[1].value_len, "a b  c"));
	CHECK(span_is(p.head.headers[2].name, p.head.headers[2].name_len, "X-Empty"));
	CHECK_INT(p.head.headers[2].value_len, 0);
	free(copy);
}

/* ---- heads that are refused ---- */

struct bad_case {
	const char *name;
	const char *text;
	size_t len;
	int status;
	const char *reason;
};

#define BAD(name, s, status, reason) {name, s, sizeof(s) - 1, status, reason}
#define H11 "GET / HTTP/1.1\r\nHost: h\r\n"

static const struct bad_case bad_cases[] = {
	/* request line */
	BAD("empty line before the request line", "\r\n" H11 "\r\n", 400, "bad_request_line"),
	BAD("leading space", " GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request_line"),
	BAD("two spaces after method", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	    "bad_request_line"),
	BAD("two spaces before version", "GET /  HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	    "bad_request_line"),
	BAD("tab as separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request_line"),
	BAD("space after version", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "bad_request_line"),
	BAD("HTTP/0.9 request", "GET /\r\n\r\n", 400, "bad_request_line"),
	BAD("lowercase protocol", "GET / http/1.1\r\nHost: h\r\n\r\n", 400, "bad_request_line"),
	BAD("bare LF after request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400,
	    "bad_request_line"),
	BAD("CR CR LF after request line", "GET / HTTP/1.1\r\r\nHost: h\r\n\r\n", 400,
	    "bad_request_line"),
	BAD("bare CR after request line", "GET / HTTP/1.1\rHost: h\r\n\r\n", 400,
	    "bad_request_line"),
	BAD("version 1.10", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400, "bad_request_line"),
	BAD("version 11", "GET / HTTP/11\r\nHost: h\r\n\r\n", 400, "bad_request_line"),
	BAD("version with trailing garbage", "GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 400,
	    "bad_request_line"),
	BAD("version letter", "GET / HTTP/1.x\r\nHost: h\r\n\r\n", 400, "bad_request_line"),
	BAD("HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "http_version_not_supported"),
	BAD("HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505, "http_version_not_supported"),
	BAD("HTTP/0.9 line", "GET / HTTP/0.9\r\n\r\n", 505, "http_version_not_supported"),
	BAD("HTTP/3.0", "GET / HTTP/3.0\r\n\r\n", 505, "http_version_not_supported"),
	BAD("method of 17 bytes", "ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	    "bad_request_line"),
	BAD("method with a non-token byte", "GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	    "bad_request_line"),
	BAD("method with a NUL", "GE\0T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request_line"),
	BAD("method with UTF-8", "G\xc3\x89T / HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	    "bad_request_line"),
	BAD("absolute-form target", "GET http://example.com/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	    "bad_request_target"),
	BAD("asterisk-form target", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	    "bad_request_target"),
	BAD("authority-form target", "CONNECT example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	    "bad_request_target"),
	BAD("fragment in target", "GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	    "bad_request_target"),
	BAD("control byte in target", "GET /a\x01" "b HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	    "bad_request_line"),
	BAD("DEL in target", "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request_line"),
	BAD("NUL in target", "GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request_line"),
	BAD("raw UTF-8 in target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	    "bad_request_line"),
	BAD("tab in target", "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request_line"),

	/* field lines */
	BAD("space before colon (Host)", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "bad_header"),
	BAD("space before colon (Transfer-Encoding)",
	    H11 "Transfer-Encoding : chunked\r\n\r\n", 400, "bad_header"),
	BAD("tab before colon", H11 "Content-Length\t: 5\r\n\r\n", 400, "bad_header"),
	BAD("obs-fold continuation line", H11 "X-A: a\r\n b\r\n\r\n", 400, "bad_header"),
	BAD("obs-fold of Transfer-Encoding", H11 "Transfer-Encoding:\r\n chunked\r\n\r\n", 400,
	    "bad_header"),
	BAD("first field line starts with a space", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400,
	    "bad_header"),
	BAD("field line starts with a tab", H11 "\tX: a\r\n\r\n", 400, "bad_header"),
	BAD("space inside a name", H11 "X-A b: c\r\n\r\n", 400, "bad_header"),
	BAD("empty name", H11 ": value\r\n\r\n", 400, "bad_header"),
	BAD("no colon", H11 "NoColon\r\n\r\n", 400, "bad_header"),
	BAD("NUL in a value", H11 "X: a\0b\r\n\r\n", 400, "bad_header"),
	BAD("NUL in a name", H11 "X\0Y: a\r\n\r\n", 400, "bad_header"),
	BAD("bare CR in a value", H11 "X: a\rb\r\n\r\n", 400, "bad_header"),
	BAD("bare CR ending a value", H11 "X: a\r\r\n\r\n", 400, "bad_header"),
	BAD("bare LF ending a field line", H11 "X: a\nY: b\r\n\r\n", 400, "bad_header"),
	BAD("bare LF as the blank line", H11 "\n", 400, "bad_header"),
	BAD("bare LF then CRLF", "GET / HTTP/1.1\r\nHost: h\n\r\n", 400, "bad_header"),
	BAD("DEL in a value", H11 "X: a\x7f\r\n\r\n", 400, "bad_header"),
	BAD("vertical tab in a value", H11 "X: a\x0b" "b\r\n\r\n", 400, "bad_header"),
	BAD("vertical tab before chunked", H11 "Transfer-Encoding: \x0b" "chunked\r\n\r\n", 400,
	    "bad_header"),
	BAD("form feed in a value", H11 "X: \x0c\r\n\r\n", 400, "bad_header"),
	BAD("escape byte in a value", H11 "X: \x1b[31m\r\n\r\n", 400, "bad_header"),
	BAD("non-token name byte", H11 "X(y): a\r\n\r\n", 400, "bad_header"),
	BAD("UTF-8 in a name", H11 "X-\xc3\xa9: a\r\n\r\n", 400, "bad_header"),
	BAD("Connection token with ';'", H11 "Connection: close;x\r\n\r\n", 400, "bad_header"),
	BAD("Connection token with '/'", H11 "Connection: a/b\r\n\r\n", 400, "bad_header"),

	/* Host */
	BAD("HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400, "missing_host"),
	BAD("HTTP/1.1 without Host but with others", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400,
	    "missing_host"),
	BAD("two Host fields", H11 "Host: h\r\n\r\n", 400, "duplicate_host"),
	BAD("two Host fields, other case", H11 "hOsT: evil\r\n\r\n", 400, "duplicate_host"),
	BAD("two Host fields in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400,
	    "duplicate_host"),
	BAD("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400, "bad_host"),
	BAD("Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad_host"),
	BAD("Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "bad_host"),
	BAD("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", 400, "bad_host"),
	BAD("Host with a comma list", "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", 400, "bad_host"),

	/* body framing */
	BAD("Content-Length and Transfer-Encoding",
	    H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
	    "conflicting_length"),
	BAD("Transfer-Encoding and Content-Length",
	    H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400,
	    "conflicting_length"),
	BAD("Transfer-Encoding and a bad Content-Length",
	    H11 "Transfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n", 400,
	    "conflicting_length"),
	BAD("Transfer-Encoding: chunked, identity", H11 "Transfer-Encoding: chunked, identity\r\n\r\n",
	    501, "unsupported_transfer_encoding"),
	BAD("Transfer-Encoding: gzip, chunked", H11 "Transfer-Encoding: gzip, chunked\r\n\r\n", 501,
	    "unsupported_transfer_encoding"),
	BAD("Transfer-Encoding: identity", H11 "Transfer-Encoding: identity\r\n\r\n", 501,
	    "unsupported_transfer_encoding"),
	BAD("Transfer-Encoding: chunked, chunked", H11 "Transfer-Encoding: chunked, chunked\r\n\r\n",
	    501, "unsupported_transfer_encoding"),
	BAD("Transfer-Encoding: chunked twice",
	    H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501,
	    "unsupported_transfer_encoding"),
	BAD("Transfer-Encoding: xchunked", H11 "Transfer-Encoding: xchunked\r\n\r\n", 501,
	    "unsupported_transfer_encoding"),
	BAD("Transfer-Encoding: chunked;q=1", H11 "Transfer-Encoding: chunked;q=1\r\n\r\n", 501,
	    "unsupported_transfer_encoding"),
	BAD("Transfer-Encoding: chunked,", H11 "Transfer-Encoding: chunked,\r\n\r\n", 501,
	    "unsupported_transfer_encoding"),
	BAD("Transfer-Encoding: quoted", H11 "Transfer-Encoding: \"chunked\"\r\n\r\n", 501,
	    "unsupported_transfer_encoding"),
	BAD("Transfer-Encoding empty", H11 "Transfer-Encoding:\r\n\r\n", 501,
	    "unsupported_transfer_encoding"),
	BAD("Transfer-Encoding: chunk", H11 "Transfer-Encoding: chunk\r\n\r\n", 501,
	    "unsupported_transfer_encoding"),
	BAD("Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	    400, "bad_transfer_encoding"),
	BAD("Content-Length values differ in two fields",
	    H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400, "conflicting_length"),
	BAD("Content-Length values differ in a list", H11 "Content-Length: 5, 6\r\n\r\n", 400,
	    "conflicting_length"),
	BAD("Content-Length with a plus sign", H11 "Content-Length: +5\r\n\r\n", 400,
	    "bad_content_length"),
	BAD("Content-Length negative", H11 "Content-Length: -1\r\n\r\n", 400, "bad_content_length"),
	BAD("Content-Length with a space inside", H11 "Content-Length: 1 2\r\n\r\n", 400,
	    "bad_content_length"),
	BAD("Content-Length hex", H11 "Content-Length: 0x5\r\n\r\n", 400, "bad_content_length"),
	BAD("Content-Length exponent", H11 "Content-Length: 1e3\r\n\r\n", 400, "bad_content_length"),
	BAD("Content-Length decimal", H11 "Content-Length: 5.0\r\n\r\n", 400, "bad_content_length"),
	BAD("Content-Length empty", H11 "Content-Length:\r\n\r\n", 400, "bad_content_length"),
	BAD("Content-Length empty list element", H11 "Content-Length: 5,,5\r\n\r\n", 400,
	    "bad_content_length"),
	BAD("Content-Length trailing comma", H11 "Content-Length: 5,\r\n\r\n", 400,
	    "bad_content_length"),
	BAD("Content-Length leading comma", H11 "Content-Length: ,5\r\n\r\n", 400,
	    "bad_content_length"),
	BAD("Content-Length past INT64_MAX", H11 "Content-Length: 9223372036854775808\r\n\r\n", 400,
	    "bad_content_length"),
	BAD("Content-Length past UINT64_MAX", H11 "Content-Length: 18446744073709551616\r\n\r\n", 400,
	    "bad_content_length"),
	BAD("Content-Length of 30 digits",
	    H11 "Content-Length: 999999999999999999999999999999\r\n\r\n", 400, "bad_content_length"),
	BAD("Content-Length with a letter", H11 "Content-Length: 5a\r\n\r\n", 400,
	    "bad_content_length"),
	BAD("Content-Length quoted", H11 "Content-Length: \"5\"\r\n\r\n", 400, "bad_content_length"),
	BAD("Content-Length with obs-text", H11 "Content-Length: 5\xc2\xa0\r\n\r\n", 400,
	    "bad_content_length"),
};

static void check_bad(const struct bad_case *b)
{
	struct parsed p;
	parse(b->text, b->len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_ERROR);
	CHECK_INT(p.err.status, b->status);
	CHECK_STR(p.err.reason, b->reason);

	/* every prefix is incomplete or already the same error */
	for (size_t k = 0; k < b->len; k++) {
		struct parsed q;
		parse(b->text, k, &q);
		if (q.rc == HTTP_PARSE_INCOMPLETE)
			continue;
		if (q.rc != HTTP_PARSE_ERROR || q.err.status != b->status ||
		    strcmp(q.err.reason, b->reason) != 0) {
			test_fail(__FILE__, __LINE__, "prefix of %zu bytes: rc %d, %d %s", k, q.rc,
			          q.err.status, q.err.reason);
			break;
		}
	}
}

static void test_bad_heads(void)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		test_case("refused head: %s -> %d %s", bad_cases[i].name, bad_cases[i].status,
		          bad_cases[i].reason);
		check_bad(&bad_cases[i]);
	}
}

/* ---- limits ---- */

/* "GET <target> HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n" in b. */
static void build_head(struct buf *b, size_t target_len, int fields, size_t pad_to)
{
	buf_reset(b);
	buf_puts(b, "GET /");
	for (size_t i = 1; i < target_len; i++)
		buf_append(b, "a", 1);
	buf_puts(b, " HTTP/1.1\r\nHost: h\r\n");
	for (int i = 0; i < fields; i++)
		buf_printf(b, "X-%d: v\r\n", i);
	/* pad with one field so the head is exactly pad_to bytes long */
	if (pad_to) {
		const char *start = "X-Pad: ";
		size_t fixed = b->len + strlen(start) + 2 + 2;
		buf_puts(b, start);
		while (fixed < pad_to) {
			buf_append(b, "p", 1);
			fixed++;
		}
		buf_puts(b, "\r\n");
	}
	buf_puts(b, "\r\n");
}

static void test_limits(void)
{
	struct buf b;
	buf_init(&b);
	struct parsed p;

	test_case("limit: target of HTTP_MAX_TARGET_BYTES parses");
	build_head(&b, HTTP_MAX_TARGET_BYTES, 0, 0);
	parse(b.data, b.len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	CHECK_INT(p.head.target_len, HTTP_MAX_TARGET_BYTES);

	test_case("limit: target of HTTP_MAX_TARGET_BYTES + 1 is 414 uri_too_long");
	build_head(&b, HTTP_MAX_TARGET_BYTES + 1, 0, 0);
	parse(b.data, b.len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_ERROR);
	CHECK_INT(p.err.status, 414);
	CHECK_STR(p.err.reason, "uri_too_long");

	test_case("limit: an unfinished over-long target is refused before its end");
	parse(b.data, 5 + HTTP_MAX_TARGET_BYTES + 1, &p);
	CHECK_INT(p.rc, HTTP_PARSE_ERROR);
	CHECK_INT(p.err.status, 414);
	parse(b.data, 4 + HTTP_MAX_TARGET_BYTES, &p);
	CHECK_INT(p.rc, HTTP_PARSE_INCOMPLETE);

	test_case("limit: HTTP_MAX_HEADERS fields parse");
	build_head(&b, 1, HTTP_MAX_HEADERS - 1, 0);
	parse(b.data, b.len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	CHECK_INT(p.head.header_count, HTTP_MAX_HEADERS);
	CHECK(span_is(p.head.headers[HTTP_MAX_HEADERS - 1].name,
	              p.head.headers[HTTP_MAX_HEADERS - 1].name_len, "X-98"));

	test_case("limit: HTTP_MAX_HEADERS + 1 fields are 431 too_many_headers");
	build_head(&b, 1, HTTP_MAX_HEADERS, 0);
	parse(b.data, b.len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_ERROR);
	CHECK_INT(p.err.status, 431);
	CHECK_STR(p.err.reason, "too_many_headers");

	test_case("limit: a head of exactly HTTP_MAX_HEAD_BYTES parses");
	build_head(&b, 1, 0, HTTP_MAX_HEAD_BYTES);
	CHECK_INT(b.len, HTTP_MAX_HEAD_BYTES);
	parse(b.data, b.len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	CHECK_INT(p.head_len, HTTP_MAX_HEAD_BYTES);
	/* with more bytes after it (a body) it is the same */
	buf_puts(&b, "body");
	parse(b.data, b.len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	CHECK_INT(p.head_len, HTTP_MAX_HEAD_BYTES);

	test_case("limit: a head of HTTP_MAX_HEAD_BYTES + 1 is 431 header_too_large");
	build_head(&b, 1, 0, HTTP_MAX_HEAD_BYTES + 1);
	CHECK_INT(b.len, HTTP_MAX_HEAD_BYTES + 1);
	parse(b.data, b.len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_ERROR);
	CHECK_INT(p.err.status, 431);
	CHECK_STR(p.err.reason, "header_too_large");
	parse(b.data, HTTP_MAX_HEAD_BYTES, &p);
	CHECK_INT(p.rc, HTTP_PARSE_ERROR);
	CHECK_STR(p.err.reason, "header_too_large");
	parse(b.data, HTTP_MAX_HEAD_BYTES - 1, &p);
	CHECK_INT(p.rc, HTTP_PARSE_INCOMPLETE);

	test_case("limit: a head whose blank line is missing its LF at the limit is 431");
	build_head(&b, 1, 0, HTTP_MAX_HEAD_BYTES + 1);
	parse(b.data, HTTP_MAX_HEAD_BYTES + 1, &p);
	CHECK_STR(p.err.reason, "header_too_large");

	test_case("limit: one endless field line is 431 once the limit is reached");
	buf_reset(&b);
	buf_puts(&b, H11 "X: ");
	while (b.len < 3 * HTTP_MAX_HEAD_BYTES)
		buf_append(&b, "y", 1);
	parse(b.data, b.len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_ERROR);
	CHECK_INT(p.err.status, 431);
	CHECK_STR(p.err.reason, "header_too_large");

	test_case("limit: Host of HTTP_MAX_HOST_BYTES parses, one more is bad_host");
	buf_reset(&b);
	buf_puts(&b, "GET / HTTP/1.1\r\nHost: ");
	for (int i = 0; i < HTTP_MAX_HOST_BYTES; i++)
		buf_append(&b, "h", 1);
	buf_puts(&b, "\r\n\r\n");
	parse(b.data, b.len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	CHECK_INT(p.head.host_len, HTTP_MAX_HOST_BYTES);
	buf_reset(&b);
	buf_puts(&b, "GET / HTTP/1.1\r\nHost: ");
	for (int i = 0; i <= HTTP_MAX_HOST_BYTES; i++)
		buf_append(&b, "h", 1);
	buf_puts(&b, "\r\n\r\n");
	parse(b.data, b.len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_ERROR);
	CHECK_STR(p.err.reason, "bad_host");

	test_case("limit: empty input and a NULL buffer are incomplete");
	parse("", 0, &p);
	CHECK_INT(p.rc, HTTP_PARSE_INCOMPLETE);
	size_t hl = 99;
	struct http_request_head head;
	CHECK_INT(http_parse_request_head(NULL, 10, &head, &hl, NULL), HTTP_PARSE_INCOMPLETE);
	CHECK_INT(hl, 0);

	test_case("limit: errors without an ee_error to fill are still errors");
	CHECK_INT(http_parse_request_head(LIT("GET / HTTP/9.9\r\n\r\n"), &head, &hl, NULL),
	          HTTP_PARSE_ERROR);

	buf_free(&b);
}

/* ---- feeding in pieces and pipelining ---- */

static const char *const split_requests[] = {
	"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
	"POST /api/v1/items?x=1 HTTP/1.1\r\nHost: app.example.com\r\nContent-Type: "
	"application/json\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"a\":\"hello\"}",
	"PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
	"5\r\nhello\r\n0\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\nGET /next HTTP/1.0\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
};

static void test_split(void)
{
	for (size_t r = 0; r < sizeof(split_requests) / sizeof(split_requests[0]); r++) {
		const char *text = split_requests[r];
		size_t len = strlen(text);
		test_case("split: every prefix of %s", test_printable(text));
		char *copy = exact_copy(text, len);
		struct parsed whole;
		parse_in_place(copy, len, &whole);
		CHECK_INT(whole.rc, HTTP_PARSE_DONE);
		for (size_t k = 0; k <= len; k++) {
			struct parsed part;
			char *prefix = exact_copy(text, k);
			parse_in_place(prefix, k, &part);
			int want = k < whole.head_len ? HTTP_PARSE_INCOMPLETE : HTTP_PARSE_DONE;
			if (part.rc != want) {
				test_fail(__FILE__, __LINE__, "prefix %zu: rc %d, want %d (%s)", k, part.rc,
				          want, part.err.reason);
				free(prefix);
				break;
			}
			if (part.rc == HTTP_PARSE_DONE) {
				CHECK_INT(part.head_len, whole.head_len);
				CHECK_INT(part.head.header_count, whole.head.header_count);
				CHECK_INT(part.head.content_length, whole.head.content_length);
				CHECK_INT(part.head.keep_alive, whole.head.keep_alive);
				CHECK_INT(part.head.chunked, whole.head.chunked);
				CHECK_INT(part.head.target_len, whole.head.target_len);
			}
			free(prefix);
		}
		free(copy);
	}
}

static void test_pipeline(void)
{
	test_case("pipeline: three requests, one with a body, parsed one after another");
	const char text[] = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
	                    "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
	                    "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
	char *copy = exact_copy(LIT(text));
	size_t len = sizeof(text) - 1, off = 0;
	struct parsed p;

	parse_in_place(copy, len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	CHECK(span_is(p.head.target, p.head.target_len, "/a"));
	CHECK_INT(p.head.content_length, 5);
	off = p.head_len;
	CHECK(memcmp(copy + off, "hello", 5) == 0);
	off += 5;

	parse_in_place(copy + off, len - off, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	CHECK(span_is(p.head.target, p.head.target_len, "/b"));
	CHECK(p.head.keep_alive);
	CHECK(!p.head.has_content_length && !p.head.chunked);
	off += p.head_len;

	parse_in_place(copy + off, len - off, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	CHECK(span_is(p.head.target, p.head.target_len, "/c"));
	CHECK(!p.head.keep_alive);
	off += p.head_len;
	CHECK_INT(off, len);
	free(copy);

	test_case("pipeline: a chunked request followed by another");
	const char text2[] = "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                     "3\r\nabc\r\n0\r\n\r\n"
	                     "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
	copy = exact_copy(LIT(text2));
	len = sizeof(text2) - 1;
	parse_in_place(copy, len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	CHECK(p.head.chunked);
	off = p.head_len;
	struct http_chunked_decoder d;
	struct buf body;
	buf_init(&body);
	http_chunked_init(&d, 1000);
	size_t used = 0;
	struct ee_error err;
	CHECK_INT(http_chunked_decode(&d, copy + off, len - off, &body, &used, &err),
	          HTTP_PARSE_DONE);
	CHECK_STR(body.data, "abc");
	off += used;
	parse_in_place(copy + off, len - off, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	CHECK(span_is(p.head.target, p.head.target_len, "/b"));
	CHECK_INT(off + p.head_len, len);
	buf_free(&body);
	free(copy);

	test_case("pipeline: a second request refused does not change the first");
	const char text3[] = "GET /ok HTTP/1.1\r\nHost: h\r\n\r\nGET /bad HTTP/1.1\r\nHost : h\r\n\r\n";
	copy = exact_copy(LIT(text3));
	len = sizeof(text3) - 1;
	parse_in_place(copy, len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	parse_in_place(copy + p.head_len, len - p.head_len, &p);
	CHECK_INT(p.rc, HTTP_PARSE_ERROR);
	CHECK_STR(p.err.reason, "bad_header");
	free(copy);
}

/* ---- chunked bodies ---- */

struct decoded {
	int rc;
	size_t used; /* in all calls */
	struct ee_error err;
	struct buf out;
};

/* Feeds text to a fresh decoder in pieces of at most step bytes (0: whole). */
static void decode(const char *text, size_t len, uint64_t max, size_t step, struct decoded *r)
{
	struct http_chunked_decoder d;
	http_chunked_init(&d, max);
	buf_init(&r->out);
	ee_error_clear(&r->err);
	r->used = 0;
	r->rc = HTTP_PARSE_INCOMPLETE;
	size_t off = 0;
	do {
		size_t n = step && len - off > step ? step : len - off;
		char *piece = exact_copy(text + off, n);
		size_t used = 0;
		r->rc = http_chunked_decode(&d, piece, n, &r->out, &used, &r->err);
		free(piece);
		if (used > n)
			test_fail(__FILE__, __LINE__, "used %zu of %zu", used, n);
		if (r->rc == HTTP_PARSE_INCOMPLETE && used != n)
			test_fail(__FILE__, __LINE__, "incomplete but used %zu of %zu", used, n);
		r->used += used;
		off += n;
	} while (r->rc == HTTP_PARSE_INCOMPLETE && off < len);
}

/* Feeds text split at k: [0, k) then [k, len). */
static void decode_split(const char *text, size_t len, uint64_t max, size_t k, struct decoded *r)
{
	struct http_chunked_decoder d;
	http_chunked_init(&d, max);
	buf_init(&r->out);
	ee_error_clear(&r->err);
	size_t used = 0;
	char *a = exact_copy(text, k);
	r->rc = http_chunked_decode(&d, a, k, &r->out, &used, &r->err);
	free(a);
	r->used = used;
	if (r->rc != HTTP_PARSE_INCOMPLETE)
		return;
	char *b = exact_copy(text + k, len - k);
	r->rc = http_chunked_decode(&d, b, len - k, &r->out, &used, &r->err);
	free(b);
	r->used += used;
}

/* The same decoded bytes (a buffer never appended to has data NULL). */
static bool same_output(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

struct chunk_good {
	const char *name;
	const char *text;
	size_t len;
	const char *body;
	size_t used; /* 0: all of text */
};

#define CGOOD(name, s, body, used) {name, s, sizeof(s) - 1, body, used}

static const struct chunk_good chunk_goods[] = {
	CGOOD("one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", 0),
	CGOOD("no chunks", "0\r\n\r\n", "", 0),
	CGOOD("several chunks, hex sizes", "5\r\nhello\r\n1\r\n \r\na\r\n0123456789\r\n0\r\n\r\n",
	      "hello 0123456789", 0),
	CGOOD("upper and lower hex", "A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0\r\n\r\n",
	      "0123456789abcdefghijk", 0),
	CGOOD("leading zeros, 16 digits", "0000000000000005\r\nhello\r\n0000000000000000\r\n\r\n",
	      "hello", 0),
	CGOOD("extensions", "5;name\r\nhello\r\n5;a=b;c=\"q \\\" ;x\"\r\nworld\r\n0;last=1\r\n\r\n",
	      "helloworld", 0),
	CGOOD("extensions with whitespace", "5 ; a = b ;c\r\nhello\r\n0\t;\tz\r\n\r\n", "hello", 0),
	CGOOD("empty quoted extension", "5;e=\"\"\r\nhello\r\n0\r\n\r\n", "hello", 0),
	CGOOD("trailers", "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Empty:\r\nX-Sp: a b\t\r\n\r\n",
	      "hello", 0),
	CGOOD("binary data with CRLF and NUL inside", "6\r\n\r\n\0\r\n\n\r\n0\r\n\r\n",
	      "\r\n", 0), /* strcmp stops at the NUL; the length is checked below */
	CGOOD("next request after the body", "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "abc", 13),
	CGOOD("next bytes after the trailers", "0\r\nT: v\r\n\r\nXYZ", "", 11),
};

static void test_chunked_good(void)
{
	for (size_t i = 0; i < sizeof(chunk_goods) / sizeof(chunk_goods[0]); i++) {
		const struct chunk_good *c = &chunk_goods[i];
		size_t want_used = c->used ? c->used : c->len;
		struct decoded whole;
		test_case("chunked: %s, whole", c->name);
		decode(c->text, c->len, 1 << 20, 0, &whole);
		CHECK_INT(whole.rc, HTTP_PARSE_DONE);
		CHECK_INT(whole.used, want_used);
		/* a buffer never appended to has no data yet */
		const char *got = whole.out.data ? whole.out.data : "";
		CHECK(strcmp(got, c->body) == 0, "got \"%s\"", test_printable(got));

		test_case("chunked: %s, byte by byte and split at every byte", c->name);
		struct decoded r;
		decode(c->text, c->len, 1 << 20, 1, &r);
		CHECK_INT(r.rc, HTTP_PARSE_DONE);
		CHECK_INT(r.used, want_used);
		CHECK(same_output(&r.out, &whole.out));
		buf_free(&r.out);
		for (size_t k = 0; k <= c->len; k++) {
			decode_split(c->text, c->len, 1 << 20, k, &r);
			bool same = r.rc == HTTP_PARSE_DONE && r.used == want_used &&
			            same_output(&r.out, &whole.out);
			buf_free(&r.out);
			if (!same) {
				test_fail(__FILE__, __LINE__, "split at %zu differs: rc %d used %zu", k, r.rc,
				          r.used);
				break;
			}
		}
		buf_free(&whole.out);
	}

	test_case("chunked: binary data keeps its length");
	struct decoded r;
	decode(LIT("6\r\n\r\n\0\r\n\n\r\n0\r\n\r\n"), 100, 0, &r);
	CHECK_INT(r.rc, HTTP_PARSE_DONE);
	CHECK_INT(r.out.len, 6);
	CHECK(r.out.data && memcmp(r.out.data, "\r\n\0\r\n\n", 6) == 0);
	buf_free(&r.out);

	test_case("chunked: out NULL drops the data");
	struct http_chunked_decoder d;
	http_chunked_init(&d, 100);
	size_t used;
	struct ee_error err;
	CHECK_INT(http_chunked_decode(&d, LIT("5\r\nhello\r\n0\r\n\r\nrest"), NULL, &used, &err),
	          HTTP_PARSE_DONE);
	CHECK_INT(used, 15);
	CHECK_INT(d.body_len, 5);

	test_case("chunked: after DONE, calls use nothing and say DONE");
	CHECK_INT(http_chunked_decode(&d, LIT("0\r\n\r\n"), NULL, &used, &err), HTTP_PARSE_DONE);
	CHECK_INT(used, 0);

	test_case("chunked: the caller may drain the buffer between calls");
	struct buf out;
	buf_init(&out);
	http_chunked_init(&d, 100);
	CHECK_INT(http_chunked_decode(&d, LIT("5\r\nhel"), &out, &used, &err), HTTP_PARSE_INCOMPLETE);
	CHECK_INT(used, 6);
	CHECK_STR(out.data, "hel");
	buf_reset(&out);
	CHECK_INT(http_chunked_decode(&d, LIT("lo\r\n0\r\n\r\n"), &out, &used, &err),
	          HTTP_PARSE_DONE);
	CHECK_STR(out.data, "lo");
	CHECK_INT(used, 9);
	buf_free(&out);

	test_case("chunked: an empty call is incomplete and uses nothing");
	http_chunked_init(&d, 100);
	CHECK_INT(http_chunked_decode(&d, "", 0, NULL, &used, &err), HTTP_PARSE_INCOMPLETE);
	CHECK_INT(used, 0);
	CHECK_INT(http_chunked_decode(&d, NULL, 5, NULL, &used, &err), HTTP_PARSE_INCOMPLETE);
	CHECK_INT(used, 0);
}

struct chunk_bad {
	const char *name;
	const char *text;
	size_t len;
	uint64_t max;
	int status;
	const char *reason;
};

#define CBAD(name, s, max, status, reason) {name, s, sizeof(s) - 1, max, status, reason}

static const struct chunk_bad chunk_bads[] = {
	CBAD("empty size line", "\r\nhello\r\n0\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("size not hex", "g\r\n", 100, 400, "bad_chunk"),
	CBAD("negative size", "-1\r\n", 100, 400, "bad_chunk"),
	CBAD("size with 0x", "0x5\r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("size with a plus sign", "+5\r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("leading space before size", " 5\r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("trailing space after size", "5 \r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("space inside size", "1 0\r\n", 100, 400, "bad_chunk"),
	CBAD("17 hex digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("17 digits overflow", "10000000000000000\r\n", UINT64_MAX, 400, "bad_chunk"),
	CBAD("size line with bare LF", "5\nhello\r\n0\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("size line with bare CR", "5\rhello\r\n0\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("data without CRLF", "5\r\nhelloX\r\n0\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("data followed by bare LF", "5\r\nhello\n0\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("data followed by CR only", "5\r\nhello\r0\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("data shorter than the size", "6\r\nhello\r\n0\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("final line bare LF", "5\r\nhello\r\n0\r\n\n", 100, 400, "bad_chunk"),
	CBAD("last chunk bare LF", "5\r\nhello\r\n0\n\r\n", 100, 400, "bad_chunk"),
	CBAD("bare LF in an extension", "5;a\nhello\r\n0\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("bare LF in an extension value", "5;a=b\nhello\r\n0\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("bare LF in a quoted extension", "5;a=\"b\nc\"\r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("CR inside a quoted extension", "5;a=\"b\rc\"\r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("NUL in an extension", "5;a\0b\r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("extension without a name", "5;\r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("extension with '=' but no value", "5;a=\r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("extension name not a token", "5;a@b\r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("extension value not a token", "5;a=b@c\r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("extension ending in whitespace", "5;a \r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("extension value ending in whitespace", "5;a=b \r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("unterminated quoted extension", "5;a=\"b\r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("text after a quoted extension", "5;a=\"b\"c\r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("size followed by garbage", "5x\r\nhello\r\n", 100, 400, "bad_chunk"),
	CBAD("trailer obs-fold", "0\r\nA: b\r\n c\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("trailer with space before colon", "0\r\nA : b\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("trailer without colon", "0\r\nAb\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("trailer with empty name", "0\r\n: b\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("trailer with bare LF", "0\r\nA: b\n\r\n", 100, 400, "bad_chunk"),
	CBAD("trailer with NUL", "0\r\nA: b\0\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("trailer with bare CR", "0\r\nA: b\rc\r\n\r\n", 100, 400, "bad_chunk"),
	CBAD("one chunk over the limit", "5\r\nhello\r\n0\r\n\r\n", 4, 413, "body_too_large"),
	CBAD("chunks summing over the limit", "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 5, 413,
	     "body_too_large"),
	CBAD("huge size with a small limit", "FFFFFFFFFFFFFFFF\r\n", 1 << 20, 413, "body_too_large"),
	CBAD("any data with a zero limit", "1\r\nx\r\n0\r\n\r\n", 0, 413, "body_too_large"),
	CBAD("2^64-1 with a limit one below", "FFFFFFFFFFFFFFFF\r\n", UINT64_MAX - 1, 413,
	     "body_too_large"),
};

static void test_chunked_bad(void)
{
	for (size_t i = 0; i < sizeof(chunk_bads) / sizeof(chunk_bads[0]); i++) {
		const struct chunk_bad *c = &chunk_bads[i];
		test_case("chunked refused: %s -> %d %s", c->name, c->status, c->reason);
		struct decoded r;
		decode(c->text, c->len, c->max, 0, &r);
		CHECK_INT(r.rc, HTTP_PARSE_ERROR);
		CHECK_INT(r.err.status, c->status);
		CHECK_STR(r.err.reason, c->reason);
		buf_free(&r.out);
		decode(c->text, c->len, c->max, 1, &r);
		CHECK_INT(r.rc, HTTP_PARSE_ERROR);
		CHECK_STR(r.err.reason, c->reason);
		buf_free(&r.out);
	}

	test_case("chunked: exactly the limit is accepted");
	struct decoded r;
	decode(LIT("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), 5, 0, &r);
	CHECK_INT(r.rc, HTTP_PARSE_DONE);
	CHECK_STR(r.out.data, "abcde");
	buf_free(&r.out);

	test_case("chunked: 16 F digits with no limit announce 2^64-1 bytes");
	struct http_chunked_decoder d;
	http_chunked_init(&d, UINT64_MAX);
	size_t used;
	struct ee_error err;
	CHECK_INT(http_chunked_decode(&d, LIT("FFFFFFFFFFFFFFFF\r\nab"), NULL, &used, &err),
	          HTTP_PARSE_INCOMPLETE);
	CHECK_INT(d.body_len, UINT64_MAX);
	CHECK(d.chunk_left == UINT64_MAX - 2);

	test_case("chunked: after an error every call fails the same way");
	http_chunked_init(&d, 100);
	CHECK_INT(http_chunked_decode(&d, LIT("zz"), NULL, &used, &err), HTTP_PARSE_ERROR);
	CHECK_INT(used, 1);
	ee_error_clear(&err);
	CHECK_INT(http_chunked_decode(&d, LIT("5\r\nhello\r\n0\r\n\r\n"), NULL, &used, &err),
	          HTTP_PARSE_ERROR);
	CHECK_INT(used, 0);
	CHECK_INT(err.status, 400);
	CHECK_STR(err.reason, "bad_chunk");
	CHECK_INT(http_chunked_decode(&d, "", 0, NULL, &used, NULL), HTTP_PARSE_ERROR);

	test_case("chunked: trailers of HTTP_MAX_TRAILER_BYTES pass, one more is 431");
	struct buf b;
	buf_init(&b);
	for (int extra = 0; extra <= 1; extra++) {
		buf_reset(&b);
		buf_puts(&b, "0\r\nT: ");
		/* trailer section = "T: " + filler + "\r\n" + "\r\n" */
		while (b.len - 3 + 4 < (size_t)HTTP_MAX_TRAILER_BYTES + (size_t)extra)
			buf_append(&b, "v", 1);
		buf_puts(&b, "\r\n\r\n");
		decode(b.data, b.len, 100, 0, &r);
		if (extra) {
			CHECK_INT(r.rc, HTTP_PARSE_ERROR);
			CHECK_INT(r.err.status, 431);
			CHECK_STR(r.err.reason, "trailer_too_large");
		} else {
			CHECK_INT(r.rc, HTTP_PARSE_DONE);
			CHECK_INT(r.used, b.len);
		}
		buf_free(&r.out);
	}

	test_case("chunked: many small trailer fields count toward the same limit");
	buf_reset(&b);
	buf_puts(&b, "0\r\n");
	while (b.len < 2 * HTTP_MAX_TRAILER_BYTES)
		buf_puts(&b, "A: b\r\n");
	buf_puts(&b, "\r\n");
	decode(b.data, b.len, 100, 0, &r);
	CHECK_INT(r.rc, HTTP_PARSE_ERROR);
	CHECK_STR(r.err.reason, "trailer_too_large");
	buf_free(&r.out);

	test_case("chunked: extensions past HTTP_MAX_CHUNK_EXT_BYTES in one body are refused");
	buf_reset(&b);
	while (b.len < 2 * HTTP_MAX_CHUNK_EXT_BYTES)
		buf_puts(&b, "1;abcdefgh=ijklmnop\r\nx\r\n");
	buf_puts(&b, "0\r\n\r\n");
	decode(b.data, b.len, 1 << 20, 0, &r);
	CHECK_INT(r.rc, HTTP_PARSE_ERROR);
	CHECK_STR(r.err.reason, "bad_chunk");
	buf_free(&r.out);

	test_case("chunked: one extension of HTTP_MAX_CHUNK_EXT_BYTES passes");
	buf_reset(&b);
	buf_puts(&b, "1;");
	while (b.len - 1 < HTTP_MAX_CHUNK_EXT_BYTES)
		buf_append(&b, "e", 1);
	buf_puts(&b, "\r\nx\r\n0\r\n\r\n");
	decode(b.data, b.len, 100, 0, &r);
	CHECK_INT(r.rc, HTTP_PARSE_DONE);
	CHECK_STR(r.out.data, "x");
	buf_free(&r.out);
	buf_free(&b);
}

/* ---- keep-alive and hop-by-hop ---- */

static void test_keep_alive(void)
{
	static const struct {
		const char *text;
		bool keep_alive;
	} cases[] = {
		{"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: x, close\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: x\r\nConnection: close\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: h\r\nX-Connection: close\r\n\r\n", true},
		{"GET / HTTP/1.0\r\n\r\n", false},
		{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
		{"GET / HTTP/1.0\r\nConnection: KEEP-ALIVE\r\n\r\n", true},
		{"GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n", false},
		{"GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n", false},
		{"GET / HTTP/1.0\r\nConnection: keepalive\r\n\r\n", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("keep-alive: %s", test_printable(cases[i].text));
		struct parsed p;
		parse(cases[i].text, strlen(cases[i].text), &p);
		CHECK_INT(p.rc, HTTP_PARSE_DONE);
		CHECK_INT(p.head.keep_alive, cases[i].keep_alive);
	}
}

static void test_hop_by_hop(void)
{
	test_case("hop-by-hop: the fixed list, any case");
	static const char *const hop[] = {
		"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
		"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
		"connection", "KEEP-ALIVE", "te", "tRaNsFeR-eNcOdInG", "upgrade",
	};
	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		CHECK(http_header_is_hop_by_hop(hop[i], strlen(hop[i])), "%s", hop[i]);

	test_case("hop-by-hop: end-to-end fields are forwarded");
	static const char *const end_to_end[] = {
		"Host", "Content-Length", "Content-Type", "Trailers", "Tee", "T", "Upgrade-Insecure-Requests",
		"Proxy", "Authorization", "Cookie", "X-Forwarded-For", "Connectionx", "Keep", "",
	};
	for (size_t i = 0; i < sizeof(end_to_end) / sizeof(end_to_end[0]); i++)
		CHECK(!http_header_is_hop_by_hop(end_to_end[i], strlen(end_to_end[i])), "%s",
		      end_to_end[i]);
	CHECK(!http_header_is_hop_by_hop(NULL, 0));
	CHECK(!http_header_is_hop_by_hop("Upgrade", 6)); /* "Upgrad" */
	CHECK(http_header_is_hop_by_hop("TE: x", 2));

	test_case("hop-by-hop: fields named in Connection");
	const char text[] = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close, X-Secret,,x-other\r\n"
	                    "connection: X-Third\r\nX-Secret: 1\r\nX-Other: 2\r\nX-Third: 3\r\n"
	                    "X-Kept: 4\r\nKeep-Alive: timeout=5\r\n\r\n";
	char *copy = exact_copy(LIT(text));
	struct parsed p;
	parse_in_place(copy, sizeof(text) - 1, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	const struct http_request_head *h = &p.head;
	CHECK(http_head_header_is_hop_by_hop(h, "X-Secret", 8));
	CHECK(http_head_header_is_hop_by_hop(h, "x-secret", 8));
	CHECK(http_head_header_is_hop_by_hop(h, "X-OTHER", 7));
	CHECK(http_head_header_is_hop_by_hop(h, "X-Third", 7));
	CHECK(http_head_header_is_hop_by_hop(h, "Keep-Alive", 10));
	CHECK(http_head_header_is_hop_by_hop(h, "close", 5));
	CHECK(!http_head_header_is_hop_by_hop(h, "X-Kept", 6));
	CHECK(!http_head_header_is_hop_by_hop(h, "Host", 4));
	CHECK(!http_head_header_is_hop_by_hop(h, "X-Secre", 7));
	CHECK(!http_head_header_is_hop_by_hop(h, "", 0));
	CHECK(!http_head_header_is_hop_by_hop(NULL, "X-Secret", 8));
	CHECK(http_head_header_is_hop_by_hop(NULL, "Upgrade", 7));
	int forwarded = 0;
	for (int i = 0; i < h->header_count; i++) {
		if (!http_head_header_is_hop_by_hop(h, h->headers[i].name, h->headers[i].name_len))
			forwarded++;
	}
	CHECK_INT(forwarded, 2); /* Host and X-Kept */
	free(copy);

	test_case("http_find_header: case-insensitive, first of several, absent");
	const char text2[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\nx-a: two\r\n\r\n";
	copy = exact_copy(LIT(text2));
	parse_in_place(copy, sizeof(text2) - 1, &p);
	CHECK_INT(p.rc, HTTP_PARSE_DONE);
	const struct http_header *f = http_find_header(&p.head, "X-a");
	CHECK(f && span_is(f->value, f->value_len, "one"));
	f = http_find_header(&p.head, "HOST");
	CHECK(f && span_is(f->value, f->value_len, "h"));
	CHECK(http_find_header(&p.head, "X") == NULL);
	CHECK(http_find_header(&p.head, "X-AB") == NULL);
	CHECK(http_find_header(&p.head, "") == NULL);
	CHECK(http_find_header(NULL, "Host") == NULL);
	CHECK(http_find_header(&p.head, NULL) == NULL);
	free(copy);

	test_case("http_is_token");
	CHECK(http_is_token("GET", 3));
	CHECK(http_is_token("!#$%&'*+-.^_`|~09azAZ", 21));
	CHECK(!http_is_token("", 0));
	CHECK(!http_is_token(NULL, 3));
	CHECK(!http_is_token("a b", 3));
	CHECK(!http_is_token("a:b", 3));
	CHECK(!http_is_token("a\0b", 3));
	int tokens = 0;
	for (int c = 0; c < 256; c++) {
		char s[1] = {(char)c};
		if (http_is_token(s, 1))
			tokens++;
	}
	CHECK_INT(tokens, 26 * 2 + 10 + 15);
}

int main(void)
{
	test_good_heads();
	test_bad_heads();
	test_limits();
	test_split();
	test_pipeline();
	test_chunked_good();
	test_chunked_bad();
	test_keep_alive();
	test_hop_by_hop();
	free(parse_copy);
	return test_finish();
}
