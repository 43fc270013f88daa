/* util.c - random ids, hashing, constant-time compare, name checks, buffers. */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

int util_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

void util_hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int util_hex_decode(const char *in, size_t in_len, unsigned char *out, size_t out_max,
                    size_t *out_len)
{
	if (in_len % 2 != 0 || in_len / 2 > out_max)
		return -1;
	for (size_t i = 0; i < in_len / 2; i++) {
		int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	*out_len = in_len / 2;
	return 0;
}

int util_percent_decode(const char *in, size_t len, bool plus_is_space, char *out,
                        size_t out_size, size_t *out_len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == '%') {
			int hi = i + 2 < len ? hex_value(in[i + 1]) : -1;
			int lo = i + 2 < len ? hex_value(in[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && plus_is_space) {
			c = ' ';
		}
		if ((unsigned char)c < 0x20 || c == 0x7f || n + 1 >= out_size)
			return -1;
		out[n++] = c;
	}
	if (out_size == 0)
		return -1;
	out[n] = '\0';
	*out_len = n;
	return 0;
}

int util_random_hex(char *out, size_t nbytes)
{
	unsigned char raw[64];
	if (nbytes > sizeof(raw) || util_random_bytes(raw, nbytes) != 0)
		return -1;
	util_hex_encode(raw, nbytes, out);
	return 0;
}

void util_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	unsigned int dlen = 0;
	EVP_Digest(data, len, digest, &dlen, EVP_sha256(), NULL);
	util_hex_encode(digest, SHA256_DIGEST_LENGTH, out);
}

bool util_secure_equal(const char *a, size_t a_len, const char *b, size_t b_len)
{
	/* Hash both sides first so the comparison loop never depends on where they differ
	 * nor leaks the configured token's length. */
	unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
	unsigned int n = 0;
	EVP_Digest(a, a_len, da, &n, EVP_sha256(), NULL);
	EVP_Digest(b, b_len, db, &n, EVP_sha256(), NULL);
	unsigned char diff = 0;
	for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++)
		diff |= (unsigned char)(da[i] ^ db[i]);
	return diff == 0 && a_len == b_len;
}

static bool valid_charset(const char *s, size_t len, size_t max, const char *extra)
{
	if (len == 0 || len > max)
		return false;
	/* "." and ".." would read as path steps wherever a name becomes a path. */
	if (strspn(s, ".") >= len)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			continue;
		if (c != '\0' && strchr(extra, c))
			continue;
		return false;
	}
	return true;
}

bool util_valid_account(const char *s, size_t len)
{
	return valid_charset(s, len, EE_ACCOUNT_MAX, "._:-");
}

bool util_valid_node_id(const char *s, size_t len)
{
	return valid_charset(s, len, EE_NODE_ID_MAX, "._:-");
}

bool util_valid_app_name(const char *s, size_t len)
{
	return valid_charset(s, len, EE_APP_NAME_MAX, "._-");
}

bool util_valid_printable(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	}
	return true;
}

const char *util_http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 501: return "Not Implemented";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Status";
	}
}

void buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = false;
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->data)
		b->data[0] = '\0';
}

int buf_reserve(struct buf *b, size_t extra)
{
	if (b->failed)
		return -1;
	if (extra > SIZE_MAX / 2 - b->len) {
		b->failed = true;
		return -1;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p) {
		b->failed = true;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) != 0)
		return -1;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) != 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int buf_append_html(struct buf *b, const char *s)
{
	for (const char *p = s; *p; p++) {
		int rc;
		switch (*p) {
		case '&': rc = buf_puts(b, "&amp;"); break;
		case '<': rc = buf_puts(b, "&lt;"); break;
		case '>': rc = buf_puts(b, "&gt;"); break;
		case '"': rc = buf_puts(b, "&quot;"); break;
		case '\'': rc = buf_puts(b, "&#39;"); break;
		default:
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				rc = buf_puts(b, "&#xFFFD;");
			else
				rc = buf_append(b, p, 1);
		}
		if (rc != 0)
			return -1;
	}
	return 0;
}
