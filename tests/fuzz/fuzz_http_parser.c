/*
 * fuzz_http_parser.c - libFuzzer target for lib/http_parser.c, the request
 * head parser and chunked body decoder of ee-tunneld's proxy listener.
 *
 * The input bytes, copied into a buffer of exactly their length, go to
 * http_parse_request_head.  Checks:
 *   - a DONE head: head_len <= len and <= HTTP_MAX_HEAD_BYTES, it ends in
 *     CRLF CRLF, every LF in it follows a CR and every CR comes before an
 *     LF, it holds no NUL, there is one field per line between the request
 *     line and the blank line, every method / target / name / value pointer
 *     lies inside the head, names are tokens, values hold no control byte
 *     but HTAB and no leading or trailing whitespace, and the derived facts
 *     agree (never chunked with Content-Length, no chunked in HTTP/1.0, a
 *     Host in HTTP/1.1);
 *   - an ERROR has one of the documented statuses and a reason;
 *   - prefixes (each in its own exact buffer) at several split points: an
 *     incomplete whole has incomplete prefixes, an error on a prefix is the
 *     same error on the whole, a DONE prefix is the same DONE; a DONE whole
 *     is incomplete on every prefix shorter than head_len;
 *   - the hop-by-hop and lookup helpers answer consistently on every field;
 *   - the chunked decoder, given the bytes after a DONE head (or the whole
 *     input otherwise), gives the same result, bytes used, output and error
 *     fed at once, byte by byte, and split at one point; its output never
 *     exceeds the limit it was given.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "http_parser.h"
#include "util.h"

#define FUZZ_TARGET "fuzz_http_parser"
#include "fuzz_support.h"

/* Body limits the decoder is tried with: small enough to be hit by fuzzed sizes. */
#define FUZZ_SMALL_BODY 64
#define FUZZ_LARGE_BODY (1u << 20)

struct head_result {
	int rc;
	size_t head_len;
	struct ee_error err;
	struct http_request_head head;
};

static const uint8_t *g_data;
static size_t g_size;

__attribute__((noreturn)) static void fail(const char *what) { fuzz_fail(what, g_data, g_size); }

/* Parses an exact copy of buf[0..len); the copy is freed, only facts are kept. */
static void parse_prefix(const char *buf, size_t len, struct head_result *r)
{
	char *copy = malloc(len ? len : 1);
	if (!copy)
		abort();
	if (len)
		memcpy(copy, buf, len);
	ee_error_clear(&r->err);
	r->rc = http_parse_request_head(copy, len, &r->head, &r->head_len, &r->err);
	free(copy);
}

static bool known_status(int status)
{
	return status == 400 || status == 414 || status == 431 || status == 501 || status == 505;
}

static bool inside(const char *p, size_t n, const char *lo, const char *hi)
{
	return p && p >= lo && p <= hi && n <= (size_t)(hi - p);
}

static void check_done_head(const char *buf, size_t len, const struct head_result *r)
{
	const struct http_request_head *h = &r->head;
	size_t n = r->head_len;
	if (n > len || n > HTTP_MAX_HEAD_BYTES || n < 4)
		fail("head_len out of range");
	if (memcmp(buf + n - 4, "\r\n\r\n", 4) != 0)
		fail("head does not end in CRLF CRLF");
	size_t lines = 0;
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\0')
			fail("NUL inside an accepted head");
		if (buf[i] == '\n') {
			if (i == 0 || buf[i - 1] != '\r')
				fail("bare LF inside an accepted head");
			lines++;
		}
		if (buf[i] == '\r' && (i + 1 >= n || buf[i + 1] != '\n'))
			fail("bare CR inside an accepted head");
	}
	if (lines != (size_t)h->header_count + 2)
		fail("field count is not the number of lines");
	if (h->header_count < 0 || h->header_count > HTTP_MAX_HEADERS)
		fail("header_count out of range");

	const char *end = buf + n;
	if (h->method != buf || h->method_len == 0 || h->method_len > HTTP_MAX_METHOD_BYTES ||
	    !http_is_token(h->method, h->method_len))
		fail("bad method accepted");
	if (!inside(h->target, h->target_len, buf, end) || h->target_len == 0 ||
	    h->target_len > HTTP_MAX_TARGET_BYTES || h->target[0] != '/')
		fail("bad target accepted");
	for (size_t i = 0; i < h->target_len; i++) {
		unsigned char c = (unsigned char)h->target[i];
		if (c <= 0x20 || c >= 0x7f || c == '#')
			fail("bad target byte accepted");
	}
	if (h->version_minor != 0 && h->version_minor != 1)
		fail("version_minor out of range");

	for (int i = 0; i < h->header_count; i++) {
		const struct http_header *f = &h->headers[i];
		if (!inside(f->name, f->name_len, buf, end) || !inside(f->value, f->value_len, buf, end))
			fail("a field points outside the head");
		if (!http_is_token(f->name, f->name_len))
			fail("a field name is not a token");
		if (f->name + f->name_len >= end || f->name[f->name_len] != ':')
			fail("a field name is not followed by its colon");
		for (size_t k = 0; k < f->value_len; k++) {
			unsigned char c = (unsigned char)f->value[k];
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				fail("a control byte in an accepted value");
		}
		if (f->value_len > 0 && (f->value[0] == ' ' || f->value[0] == '\t' ||
		                         f->value[f->value_len - 1] == ' ' ||
		                         f->value[f->value_len - 1] == '\t'))
			fail("a value was not trimmed");

		/* the helpers agree with each other on every field */
		if (http_header_is_hop_by_hop(f->name, f->name_len) &&
		    !http_head_header_is_hop_by_hop(h, f->name, f->name_len))
			fail("hop-by-hop with the head is weaker than without");
		char name[HTTP_MAX_HEAD_BYTES + 1];
		memcpy(name, f->name, f->name_len);
		name[f->name_len] = '\0';
		const struct http_header *found = http_find_header(h, name);
		if (!found || found > f || found->name_len != f->name_len)
			fail("http_find_header misses a field");
	}

	if (h->chunked && h->has_content_length)
		fail("chunked together with Content-Length");
	if (h->chunked && h->version_minor == 0)
		fail("chunked in HTTP/1.0");
	if (h->version_minor == 1 && !h->host)
		fail("HTTP/1.1 without Host accepted");
	if (h->host && (!inside(h->host, h->host_len, buf, end) || h->host_len == 0 ||
	                h->host_len > HTTP_MAX_HOST_BYTES))
		fail("bad Host accepted");
	if (h->has_content_length && h->content_length > (uint64_t)INT64_MAX)
		fail("Content-Length beyond INT64_MAX");
	if (h->expect_continue && h->version_minor == 0)
		fail("100-continue honoured in HTTP/1.0");
}

static bool same_head(const struct head_result *a, const struct head_result *b)
{
	const struct http_request_head *x = &a->head, *y = &b->head;
	return a->head_len == b->head_len && x->method_len == y->method_len &&
	       x->target_len == y->target_len && x->version_minor == y->version_minor &&
	       x->header_count == y->header_count && x->chunked == y->chunked &&
	       x->has_content_length == y->has_content_length &&
	       x->content_length == y->content_length && x->keep_alive == y->keep_alive &&
	       x->expect_continue == y->expect_continue && x->upgrade == y->upgrade &&
	       x->host_len == y->host_len;
}

/* The whole and one prefix of it must not disagree. */
static void check_prefix(const char *buf, const struct head_result *whole, size_t k)
{
	struct head_result part;
	parse_prefix(buf, k, &part);
	if (whole->rc == HTTP_PARSE_INCOMPLETE && part.rc != HTTP_PARSE_INCOMPLETE)
		fail("a prefix decided what the whole left incomplete");
	if (part.rc == HTTP_PARSE_ERROR &&
	    (whole->rc != HTTP_PARSE_ERROR || part.err.status != whole->err.status ||
	     strcmp(part.err.reason, whole->err.reason) != 0))
		fail("an error on a prefix is not the same error on the whole");
	if (part.rc == HTTP_PARSE_DONE && (whole->rc != HTTP_PARSE_DONE || !same_head(&part, whole)))
		fail("a DONE prefix differs from the whole");
	if (whole->rc == HTTP_PARSE_DONE) {
		int want = k < whole->head_len ? HTTP_PARSE_INCOMPLETE : HTTP_PARSE_DONE;
		if (part.rc != want)
			fail("a DONE head is not incomplete before head_len and DONE after");
	}
}

struct body_result {
	int rc;
	size_t used;
	struct ee_error err;
	struct buf out;
};

/* Feeds in[0..len) in pieces of step bytes (0: at once), or split at split (step 0). */
static void decode_body(const char *in, size_t len, uint64_t max, size_t step, size_t split,
                        struct body_result *r)
{
	struct http_chunked_decoder d;
	http_chunked_init(&d, max);
	buf_init(&r->out);
	ee_error_clear(&r->err);
	r->rc = HTTP_PARSE_INCOMPLETE;
	r->used = 0;
	size_t off = 0;
	bool first = true;
	do {
		size_t n = len - off;
		if (step && n > step)
			n = step;
		else if (!step && first && split < len)
			n = split;
		first = false;
		size_t used = 0;
		r->rc = http_chunked_decode(&d, in + off, n, &r->out, &used, &r->err);
		if (used > n)
			fail("the decoder used more than it was given");
		if (r->rc == HTTP_PARSE_INCOMPLETE && used != n)
			fail("an incomplete decode did not use everything");
		r->used += used;
		off += n;
	} while (r->rc == HTTP_PARSE_INCOMPLETE && off < len);
	if (r->out.failed)
		abort(); /* out of memory is no finding */
	if (r->out.len > max)
		fail("decoded more than the limit");
	if (r->rc == HTTP_PARSE_DONE && d.body_len != r->out.len)
		fail("body_len is not the decoded length");
	if (r->rc == HTTP_PARSE_DONE &&
	    (r->used < 5 || memcmp(in + r->used - 2, "\r\n", 2) != 0))
		fail("a complete body does not end in CRLF");
	if (r->rc == HTTP_PARSE_ERROR && r->err.reason[0] == '\0')
		fail("a decoder error without a reason");
}

static bool same_body(const struct body_result *a, const struct body_result *b)
{
	return a->rc == b->rc && a->used == b->used && a->out.len == b->out.len &&
	       (a->out.len == 0 || memcmp(a->out.data, b->out.data, a->out.len) == 0) &&
	       a->err.status == b->err.status && strcmp(a->err.reason, b->err.reason) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf;
	if (!fuzz_input_copy(data, size, &buf))
		return 0;
	g_data = data;
	g_size = size;

	struct head_result whole;
	ee_error_clear(&whole.err);
	whole.rc = http_parse_request_head(buf, size, &whole.head, &whole.head_len, &whole.err);
	if (whole.rc == HTTP_PARSE_DONE)
		check_done_head(buf, size, &whole);
	else if (whole.rc == HTTP_PARSE_ERROR &&
	         (!known_status(whole.err.status) || whole.err.reason[0] == '\0'))
		fail("an error with an undocumented status or no reason");
	else if (whole.rc != HTTP_PARSE_ERROR && whole.rc != HTTP_PARSE_INCOMPLETE)
		fail("an unknown result");

	/* a point chosen by the input, the middle, and the edges of the head */
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < size && i < 64; i++)
		h = (h ^ data[i]) * 16777619u;
	check_prefix(buf, &whole, size ? h % (size + 1) : 0);
	check_prefix(buf, &whole, size / 2);
	if (size)
		check_prefix(buf, &whole, size - 1);
	if (whole.rc == HTTP_PARSE_DONE) {
		check_prefix(buf, &whole, whole.head_len - 1);
		check_prefix(buf, &whole, whole.head_len);
	}

	const char *body = buf;
	size_t body_len = size;
	if (whole.rc == HTTP_PARSE_DONE) {
		body = buf + whole.head_len;
		body_len = size - whole.head_len;
	}
	uint64_t max = size && (data[size - 1] & 1) ? FUZZ_SMALL_BODY : FUZZ_LARGE_BODY;
	struct body_result at_once, bytewise, split;
	decode_body(body, body_len, max, 0, body_len, &at_once);
	decode_body(body, body_len, max, 1, 0, &bytewise);
	decode_body(body, body_len, max, 0, body_len ? h % (body_len + 1) : 0, &split);
	if (!same_body(&at_once, &bytewise))
		fail("the chunked decoder fed byte by byte differs from fed at once");
	if (!same_body(&at_once, &split))
		fail("the chunked decoder fed in two pieces differs from fed at once");
	buf_free(&at_once.out);
	buf_free(&bytewise.out);
	buf_free(&split.out);

	free(buf);
	return 0;
}
