/* json_writer.c - JSON string literals written directly; see json_writer.h. */
#include "json_writer.h"

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

size_t json_string_len(const char *s, size_t n)
{
	size_t len = n + 2;
	for (size_t i = 0; i < n; i++) {
		char k = escape_kind[(unsigned char)s[i]];
		if (k)
			len += k == 'u' ? 5 : 1;
	}
	return len;
}

char *json_string_put(char *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	*out++ = '"';
	size_t run = 0; /* bytes copied as they are, written in one go */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char k = escape_kind[c];
		if (!k)
			continue;
		memcpy(out, s + run, i - run);
		out += i - run;
		run = i + 1;
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
	}
	memcpy(out, s + run, n - run);
	out += n - run;
	*out++ = '"';
	return out;
}

int json_append_string(struct buf *b, const char *s, size_t n)
{
	size_t len = json_string_len(s, n);
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
