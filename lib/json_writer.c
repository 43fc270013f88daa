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
