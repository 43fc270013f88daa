/* json_writer.c - JSON string literals written directly; see json_writer.h. */
#include "json_writer.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/*
 * What each byte becomes: 0 copied as it is, a letter for a short escape
 * (\b \t \n \f \r \" \\), 'u' for \u00xx.
 */
static const char escape_kind[256] = {
	['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r',
	['"'] = '"', ['\\'] = '\\',
	[0x00] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u', [0x05] = 'u',
	[0x06] = 'u', [0x07] = 'u', [0x0b] = 'u', [0x0e] = 'u', [0x0f] = 'u', [0x10] = 'u',
	[0x11] = 'u', [0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u', [0x16] = 'u',
	[0x17] = 'u', [0x18] = 'u', [0x19] = 'u', [0x1a] = 'u', [0x1b] = 'u', [0x1c] = 'u',
	[0x1d] = 'u', [0x1e] = 'u', [0x1f] = 'u',
};

/*
 * Whether any of the eight bytes in v needs an escape: a control byte
 * (below 0x20), a quote or a backslash.  Exact for the word as a whole
 * (the usual "has a zero byte" tests), so a word it passes is copied as it
 * is; a word it flags is looked at byte by byte.  Most strings written
 * (ids, names, hex digests) have no such byte at all.
 */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

static bool word_needs_escape(uint64_t v)
{
	uint64_t quote = v ^ (ONES * '"');
	uint64_t backslash = v ^ (ONES * '\\');
	uint64_t below_space = (v - ONES * 0x20) & ~v;
	uint64_t is_quote = (quote - ONES) & ~quote;
	uint64_t is_backslash = (backslash - ONES) & ~backslash;
	return ((below_space | is_quote | is_backslash) & HIGHS) != 0;
}

/* The index of the first byte at or after i that needs an escape, or n. */
static size_t next_escape(const char *s, size_t i, size_t n)
{
	for (; n - i >= 8; i += 8) {
		uint64_t v;
		memcpy(&v, s + i, 8);
		if (word_needs_escape(v))
			break;
	}
	while (i < n && !escape_kind[(unsigned char)s[i]])
		i++;
	return i;
}

size_t json_string_len(const char *s, size_t n)
{
	size_t len = n + 2;
	for (size_t i = next_escape(s, 0, n); i < n; i = next_escape(s, i + 1, n))
		len += escape_kind[(unsigned char)s[i]] == 'u' ? 5 : 1;
	return len;
}

char *json_string_put(char *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	*out++ = '"';
	size_t i = 0;
	for (;;) {
		size_t j = next_escape(s, i, n);
		memcpy(out, s + i, j - i);
		out += j - i;
		if (j == n)
			break;
		unsigned char c = (unsigned char)s[j];
		char k = escape_kind[c];
		*out++ = '\\';
		if (k == 'u') {
			*out++ = 'u';
			*out++ = '0';
			*out++ = '0';
			*out++ = hex[c >> 4];
			*out++ = hex[c & 15];
		} else {
			*out++ = k;
		}
		i = j + 1;
	}
	*out++ = '"';
	return out;
}

/* Strings up to this long are written in one pass, with room for the worst case. */
#define ONE_PASS_MAX 256

int json_append_string(struct buf *b, const char *s, size_t n)
{
	size_t len = n <= ONE_PASS_MAX ? 6 * n + 2 : json_string_len(s, n);
	if (buf_reserve(b, len) != 0)
		return -1;
	char *end = json_string_put(b->data + b->len, s, n);
	b->len = (size_t)(end - b->data);
	b->data[b->len] = '\0';
	return 0;
}

/* ---- bytes: invalid UTF-8 as \udc80..\udcff ---- */

size_t json_utf8_sequence_len(const unsigned char *s, size_t n)
{
	if (n == 0)
		return 0;
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	/* RFC 3629's table: the second byte's range rules out overlong forms,
	 * surrogates (ED A0..BF) and code points past U+10FFFF (F4 90..). */
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

bool json_utf8_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t seq = json_utf8_sequence_len((const unsigned char *)s + i, n - i);
		if (!seq)
			return false;
		i += seq;
	}
	return true;
}

size_t json_bytes_len(const char *s, size_t n)
{
	size_t len = n + 2;
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n; i++) {
		if (u[i] >= 0x80) {
			size_t seq = json_utf8_sequence_len(u + i, n - i);
			if (seq)
				i += seq - 1;
			else
				len += 5; /* one byte becomes \udcXX */
			continue;
		}
		char k = escape_kind[u[i]];
		if (k)
			len += k == 'u' ? 5 : 1;
	}
	return len;
}

char *json_bytes_put(char *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	*out++ = '"';
	size_t run = 0; /* bytes copied as they are, written in one go */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = u[i];
		if (c >= 0x80) {
			size_t seq = json_utf8_sequence_len(u + i, n - i);
			if (seq) {
				i += seq - 1;
				continue;
			}
		} else if (!escape_kind[c]) {
			continue;
		}
		memcpy(out, s + run, i - run);
		out += i - run;
		run = i + 1;
		*out++ = '\\';
		char k = escape_kind[c];
		if (c >= 0x80) {
			memcpy(out, "udc", 3);
			out[3] = hex[c >> 4];
			out[4] = hex[c & 15];
			out += 5;
		} else if (k == 'u') {
			memcpy(out, "u00", 3);
			out[3] = hex[c >> 4];
			out[4] = hex[c & 15];
			out += 5;
		} else {
			*out++ = k;
		}
	}
	memcpy(out, s + run, n - run);
	out += n - run;
	*out++ = '"';
	return out;
}

int json_append_bytes(struct buf *b, const char *s, size_t n)
{
	size_t len = json_bytes_len(s, n);
	if (buf_reserve(b, len) != 0)
		return -1;
	char *end = json_bytes_put(b->data + b->len, s, n);
	b->len = (size_t)(end - b->data);
	b->data[b->len] = '\0';
	return 0;
}
