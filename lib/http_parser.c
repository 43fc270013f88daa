/*
 * http_parser.c - the strict HTTP/1.1 request head parser and chunked body
 * decoder of ee-tunneld's proxy listener; see http_parser.h for the rules.
 */
#include "http_parser.h"

#include <string.h>

/* Content-Length stays within a signed 64-bit count (off_t, int64_t). */
#define HTTP_MAX_CONTENT_LENGTH ((uint64_t)INT64_MAX)
/* "HTTP/1.1" CR LF */
#define HTTP_VERSION_LINE_BYTES 10

/* The longest request line fits well inside the head limit. */
_Static_assert(HTTP_MAX_METHOD_BYTES + 1 + HTTP_MAX_TARGET_BYTES + 1 + HTTP_VERSION_LINE_BYTES <
                   HTTP_MAX_HEAD_BYTES,
               "a request line must fit in a head");

/* ---- character classes (RFC 9110 5.6.2, RFC 3986) ---- */

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static bool is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

static bool is_tchar(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* field-vchar / SP / HTAB: everything but the controls (HTAB aside) and DEL. */
static bool is_field_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

/*
 * Visible ASCII but '#': browsers send '{', '|', '^' raw in queries, so the
 * strict RFC 3986 set would refuse real traffic; a fragment is never sent.
 */
static bool is_target_char(unsigned char c) { return c >= 0x21 && c <= 0x7e && c != '#'; }

static bool is_host_char(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c != 0 && strchr("-._~:[]", c) != NULL);
}

static int hex_value(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

static bool equal_nocase(const char *s, size_t len, const char *lower)
{
	size_t n = strlen(lower);
	if (len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c | 0x20);
		if (c != (unsigned char)lower[i])
			return false;
	}
	return true;
}

static bool equal_nocase_n(const char *a, size_t a_len, const char *b, size_t b_len)
{
	if (a_len != b_len)
		return false;
	for (size_t i = 0; i < a_len; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x | 0x20);
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y | 0x20);
		if (x != y)
			return false;
	}
	return true;
}

bool http_is_token(const char *s, size_t len)
{
	if (!s || len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!is_tchar((unsigned char)s[i]))
			return false;
	}
	return true;
}

/*
 * Walks a comma-separated list (RFC 9110 5.6.1): each element with its
 * OWS trimmed, empty elements included, so "a,,b" gives "a", "", "b".
 */
struct list_walk {
	const char *p, *end;
	bool done;
};

static void list_start(struct list_walk *w, const char *s, size_t len)
{
	w->p = s;
	w->end = s + len;
	w->done = false;
}

static bool list_next(struct list_walk *w, const char **elem, size_t *elem_len)
{
	if (w->done)
		return false;
	const char *comma = memchr(w->p, ',', (size_t)(w->end - w->p));
	const char *stop = comma ? comma : w->end;
	const char *a = w->p;
	while (a < stop && is_ows((unsigned char)*a))
		a++;
	const char *b = stop;
	while (b > a && is_ows((unsigned char)b[-1]))
		b--;
	*elem = a;
	*elem_len = (size_t)(b - a);
	if (comma)
		w->p = comma + 1;
	else
		w->done = true;
	return true;
}

/* ---- the request line ---- */

/*
 * method SP origin-form SP "HTTP/" DIGIT "." DIGIT CRLF, checked byte by
 * byte so that garbage is refused before the line is complete.
 */
static int parse_request_line(const char *buf, size_t len, struct http_request_head *out,
                              size_t *line_len, struct ee_error *err)
{
	size_t i = 0;
	while (i < len && is_tchar((unsigned char)buf[i])) {
		if (i == HTTP_MAX_METHOD_BYTES)
			return ee_fail(err, 400, "bad_request_line");
		i++;
	}
	if (i == len)
		return HTTP_PARSE_INCOMPLETE;
	if (i == 0 || buf[i] != ' ')
		return ee_fail(err, 400, "bad_request_line");
	out->method = buf;
	out->method_len = i;

	size_t target = ++i;
	if (i == len)
		return HTTP_PARSE_INCOMPLETE;
	/* absolute-form, authority-form and "*" are for proxies and OPTIONS; not here */
	if (buf[i] != '/')
		return ee_fail(err, 400, is_target_char((unsigned char)buf[i]) ? "bad_request_target"
		                                                                : "bad_request_line");
	while (i < len && is_target_char((unsigned char)buf[i])) {
		if (i - target == HTTP_MAX_TARGET_BYTES)
			return ee_fail(err, 414, "uri_too_long");
		i++;
	}
	if (i == len)
		return HTTP_PARSE_INCOMPLETE;
	if (buf[i] == '#')
		return ee_fail(err, 400, "bad_request_target");
	if (buf[i] != ' ')
		return ee_fail(err, 400, "bad_request_line");
	out->target = buf + target;
	out->target_len = i - target;

	static const char pattern[HTTP_VERSION_LINE_BYTES + 1] = "HTTP/9.9\r\n";
	size_t version = ++i;
	for (size_t k = 0; k < HTTP_VERSION_LINE_BYTES; k++) {
		if (version + k == len)
			return HTTP_PARSE_INCOMPLETE;
		unsigned char c = (unsigned char)buf[version + k];
		bool ok = pattern[k] == '9' ? is_digit(c) : c == (unsigned char)pattern[k];
		if (!ok)
			return ee_fail(err, 400, "bad_request_line");
	}
	char major = buf[version + 5], minor = buf[version + 7];
	if (major != '1' || (minor != '0' && minor != '1'))
		return ee_fail(err, 505, "http_version_not_supported");
	out->version_minor = minor - '0';
	*line_len = version + HTTP_VERSION_LINE_BYTES;
	return HTTP_PARSE_DONE;
}

/* ---- field lines ---- */

/* name ":" OWS value OWS, without its CRLF. */
static int parse_field_line(const char *s, size_t n, struct http_header *h, struct ee_error *err)
{
	size_t i = 0;
	/* a leading SP / HTAB (obs-fold) or a space before the colon stops here */
	while (i < n && is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i == n || s[i] != ':')
		return ee_fail(err, 400, "bad_header");
	h->name = s;
	h->name_len = i;
	i++;
	while (i < n && is_ows((unsigned char)s[i]))
		i++;
	size_t end = n;
	while (end > i && is_ows((unsigned char)s[end - 1]))
		end--;
	for (size_t k = i; k < end; k++) {
		if (!is_field_char((unsigned char)s[k]))
			return ee_fail(err, 400, "bad_header");
	}
	h->value = s + i;
	h->value_len = end - i;
	return 0;
}

static bool header_is(const struct http_header *h, const char *lower)
{
	return equal_nocase(h->name, h->name_len, lower);
}

/* Every element of every Content-Length field: digits, all the same number. */
static int derive_content_length(struct http_request_head *out, struct ee_error *err)
{
	for (int i = 0; i < out->header_count; i++) {
		const struct http_header *h = &out->headers[i];
		if (!header_is(h, "content-length"))
			continue;
		struct list_walk w;
		const char *e;
		size_t elen;
		list_start(&w, h->value, h->value_len);
		while (list_next(&w, &e, &elen)) {
			if (elen == 0)
				return ee_fail(err, 400, "bad_content_length");
			uint64_t v = 0;
			for (size_t k = 0; k < elen; k++) {
				unsigned char c = (unsigned char)e[k];
				if (!is_digit(c))
					return ee_fail(err, 400, "bad_content_length");
				if (v > (HTTP_MAX_CONTENT_LENGTH - (uint64_t)(c - '0')) / 10)
					return ee_fail(err, 400, "bad_content_length");
				v = v * 10 + (uint64_t)(c - '0');
			}
			if (out->has_content_length && v != out->content_length)
				return ee_fail(err, 400, "conflicting_length");
			out->has_content_length = true;
			out->content_length = v;
		}
	}
	return 0;
}

/* The tokens of every Connection field; flags close, keep-alive and upgrade. */
static int derive_connection(struct http_request_head *out, bool *close, bool *keep_alive,
                             struct ee_error *err)
{
	for (int i = 0; i < out->header_count; i++) {
		const struct http_header *h = &out->headers[i];
		if (header_is(h, "upgrade"))
			out->upgrade = true;
		if (!header_is(h, "connection"))
			continue;
		struct list_walk w;
		const char *e;
		size_t elen;
		list_start(&w, h->value, h->value_len);
		while (list_next(&w, &e, &elen)) {
			if (elen == 0)
				continue; /* "a, , b" is a valid list */
			if (!http_is_token(e, elen))
				return ee_fail(err, 400, "bad_header");
			if (equal_nocase(e, elen, "close"))
				*close = true;
			else if (equal_nocase(e, elen, "keep-alive"))
				*keep_alive = true;
			else if (equal_nocase(e, elen, "upgrade"))
				out->upgrade = true;
		}
	}
	return 0;
}

/*
 * The facts a proxy acts on, checked in a fixed order so that a head with
 * several faults always gets the same reason: Host, then the body's
 * framing (Transfer-Encoding, then Content-Length), then Connection.
 */
static int derive_facts(struct http_request_head *out, struct ee_error *err)
{
	int hosts = 0, transfer_encodings = 0;
	const struct http_header *te = NULL;
	bool content_length = false;
	for (int i = 0; i < out->header_count; i++) {
		const struct http_header *h = &out->headers[i];
		if (header_is(h, "host")) {
			hosts++;
			out->host = h->value;
			out->host_len = h->value_len;
		} else if (header_is(h, "transfer-encoding")) {
			transfer_encodings++;
			te = h;
		} else if (header_is(h, "content-length")) {
			content_length = true;
		} else if (header_is(h, "expect")) {
			/* RFC 9110 10.1.1: an HTTP/1.0 100-continue is ignored */
			if (out->version_minor == 1 && equal_nocase(h->value, h->value_len, "100-continue"))
				out->expect_continue = true;
		}
	}

	if (hosts > 1)
		return ee_fail(err, 400, "duplicate_host");
	if (hosts == 0 && out->version_minor == 1)
		return ee_fail(err, 400, "missing_host");
	if (hosts == 1) {
		if (out->host_len == 0 || out->host_len > HTTP_MAX_HOST_BYTES)
			return ee_fail(err, 400, "bad_host");
		for (size_t k = 0; k < out->host_len; k++) {
			if (!is_host_char((unsigned char)out->host[k]))
				return ee_fail(err, 400, "bad_host");
		}
	}

	if (transfer_encodings > 0) {
		/* HTTP/1.0 has no chunked coding: a 1.0 peer would frame the body otherwise */
		if (out->version_minor == 0)
			return ee_fail(err, 400, "bad_transfer_encoding");
		if (content_length)
			return ee_fail(err, 400, "conflicting_length");
		/* one field, one coding: anything else could be framed two ways */
		if (transfer_encodings > 1 || !equal_nocase(te->value, te->value_len, "chunked"))
			return ee_fail(err, 501, "unsupported_transfer_encoding");
		out->chunked = true;
	}
	if (derive_content_length(out, err) != 0)
		return -1;

	bool close = false, keep_alive = false;
	if (derive_connection(out, &close, &keep_alive, err) != 0)
		return -1;
	out->keep_alive = out->version_minor == 1 ? !close : keep_alive && !close;
	return 0;
}

int http_parse_request_head(const char *buf, size_t len, struct http_request_head *out,
                            size_t *head_len, struct ee_error *err)
{
	memset(out, 0, sizeof(*out));
	*head_len = 0;
	if (!buf)
		len = 0;

	size_t pos = 0;
	int rc = parse_request_line(buf, len, out, &pos, err);
	if (rc != HTTP_PARSE_DONE)
		return rc;

	/* Nothing past the limit is ever looked at, so a prefix decides the same way. */
	size_t window = len < HTTP_MAX_HEAD_BYTES ? len : HTTP_MAX_HEAD_BYTES;
	for (;;) {
		const char *nl = pos < window ? memchr(buf + pos, '\n', window - pos) : NULL;
		if (!nl) {
			if (len >= HTTP_MAX_HEAD_BYTES)
				return ee_fail(err, 431, "header_too_large");
			return HTTP_PARSE_INCOMPLETE;
		}
		size_t lf = (size_t)(nl - buf);
		if (lf == pos || buf[lf - 1] != '\r')
			return ee_fail(err, 400, "bad_header"); /* a bare LF */
		size_t content_end = lf - 1;
		if (content_end == pos) {
			pos = lf + 1;
			break;
		}
		if (out->header_count == HTTP_MAX_HEADERS)
			return ee_fail(err, 431, "too_many_headers");
		if (parse_field_line(buf + pos, content_end - pos, &out->headers[out->header_count],
		                     err) != 0)
			return HTTP_PARSE_ERROR;
		out->header_count++;
		pos = lf + 1;
	}

	if (derive_facts(out, err) != 0)
		return HTTP_PARSE_ERROR;
	*head_len = pos;
	return HTTP_PARSE_DONE;
}

/* ---- header helpers ---- */

const struct http_header *http_find_header(const struct http_request_head *head,
                                           const char *name)
{
	if (!head || !name)
		return NULL;
	size_t n = strlen(name);
	for (int i = 0; i < head->header_count; i++) {
		const struct http_header *h = &head->headers[i];
		if (equal_nocase_n(h->name, h->name_len, name, n))
			return h;
	}
	return NULL;
}

bool http_header_is_hop_by_hop(const char *name, size_t name_len)
{
	static const char *const hop_by_hop[] = {
		"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
		"proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
	};
	if (!name)
		return false;
	for (size_t i = 0; i < sizeof(hop_by_hop) / sizeof(hop_by_hop[0]); i++) {
		if (equal_nocase(name, name_len, hop_by_hop[i]))
			return true;
	}
	return false;
}

bool http_head_header_is_hop_by_hop(const struct http_request_head *head, const char *name,
                                    size_t name_len)
{
	if (http_header_is_hop_by_hop(name, name_len))
		return true;
	if (!head || !name || name_len == 0)
		return false;
	for (int i = 0; i < head->header_count; i++) {
		const struct http_header *h = &head->headers[i];
		if (!header_is(h, "connection"))
			continue;
		struct list_walk w;
		const char *e;
		size_t elen;
		list_start(&w, h->value, h->value_len);
		while (list_next(&w, &e, &elen)) {
			if (equal_nocase_n(e, elen, name, name_len))
				return true;
		}
	}
	return false;
}

/* ---- the chunked body decoder (RFC 9112 7.1) ---- */

enum chunked_state {
	CH_SIZE,              /* hex digits of a chunk-size */
	CH_BWS_BEFORE_SEMI,   /* whitespace that must lead to ';' */
	CH_EXT_NAME_START,    /* after ';': BWS, then a token */
	CH_EXT_NAME,          /* in an extension name */
	CH_BWS_AFTER_NAME,    /* whitespace that must lead to '=' or ';' */
	CH_EXT_VALUE_START,   /* after '=': BWS, then a token or a quoted string */
	CH_EXT_TOKEN_VALUE,   /* in a token value */
	CH_EXT_QUOTED,        /* in a quoted-string value */
	CH_EXT_QUOTED_ESCAPE, /* after a backslash in a quoted string */
	CH_EXT_AFTER_QUOTED,  /* after the closing quote */
	CH_SIZE_LF,           /* the LF ending a chunk-size line */
	CH_DATA,              /* chunk data */
	CH_DATA_CR,           /* the CRLF after chunk data */
	CH_DATA_LF,
	CH_TRAILER_START,     /* a trailer field line, or the final CRLF */
	CH_TRAILER_NAME,
	CH_TRAILER_VALUE,
	CH_TRAILER_LF,
	CH_FINAL_LF,
	CH_DONE,
	CH_FAILED,
};

void http_chunked_init(struct http_chunked_decoder *d, uint64_t max_body)
{
	memset(d, 0, sizeof(*d));
	d->state = CH_SIZE;
	d->max_body = max_body;
	ee_error_clear(&d->error);
}

static int chunked_fail(struct http_chunked_decoder *d, int status, const char *reason,
                        struct ee_error *err)
{
	d->state = CH_FAILED;
	ee_fail(&d->error, status, reason);
	if (err)
		*err = d->error;
	return HTTP_PARSE_ERROR;
}

/* One byte of a chunk-size line after the digits; returns the next state or -1. */
static int chunked_ext_step(int state, unsigned char c)
{
	bool ows = is_ows(c), tchar = is_tchar(c);
	switch (state) {
	case CH_BWS_BEFORE_SEMI:
		return ows ? CH_BWS_BEFORE_SEMI : c == ';' ? CH_EXT_NAME_START : -1;
	case CH_EXT_NAME_START:
		return ows ? CH_EXT_NAME_START : tchar ? CH_EXT_NAME : -1;
	case CH_EXT_NAME:
		if (tchar)
			return CH_EXT_NAME;
		return c == '\r' ? CH_SIZE_LF : c == ';' ? CH_EXT_NAME_START
		       : c == '=' ? CH_EXT_VALUE_START : ows ? CH_BWS_AFTER_NAME : -1;
	case CH_BWS_AFTER_NAME:
		return ows ? CH_BWS_AFTER_NAME : c == ';' ? CH_EXT_NAME_START
		       : c == '=' ? CH_EXT_VALUE_START : -1;
	case CH_EXT_VALUE_START:
		return ows ? CH_EXT_VALUE_START : tchar ? CH_EXT_TOKEN_VALUE
		       : c == '"' ? CH_EXT_QUOTED : -1;
	case CH_EXT_TOKEN_VALUE:
	case CH_EXT_AFTER_QUOTED:
		if (tchar && state == CH_EXT_TOKEN_VALUE)
			return CH_EXT_TOKEN_VALUE;
		return c == '\r' ? CH_SIZE_LF : c == ';' ? CH_EXT_NAME_START
		       : ows ? CH_BWS_BEFORE_SEMI : -1;
	case CH_EXT_QUOTED:
		if (c == '"')
			return CH_EXT_AFTER_QUOTED;
		if (c == '\\')
			return CH_EXT_QUOTED_ESCAPE;
		return is_field_char(c) ? CH_EXT_QUOTED : -1; /* qdtext */
	case CH_EXT_QUOTED_ESCAPE:
		return is_field_char(c) ? CH_EXT_QUOTED : -1; /* quoted-pair */
	default:
		return -1;
	}
}

int http_chunked_decode(struct http_chunked_decoder *d, const char *in, size_t len,
                        struct buf *out, size_t *used, struct ee_error *err)
{
	*used = 0;
	if (d->state == CH_DONE)
		return HTTP_PARSE_DONE;
	if (d->state == CH_FAILED) {
		if (err)
			*err = d->error;
		return HTTP_PARSE_ERROR;
	}
	if (!in)
		len = 0;

	size_t i = 0;
	while (i < len) {
		if (d->state == CH_DATA) {
			size_t n = len - i;
			if ((uint64_t)n > d->chunk_left)
				n = (size_t)d->chunk_left;
			if (out && buf_append(out, in + i, n) != 0)
				return chunked_fail(d, 500, "out_of_memory", err);
			i += n;
			*used = i;
			d->chunk_left -= n;
			if (d->chunk_left == 0)
				d->state = CH_DATA_CR;
			continue;
		}
		unsigned char c = (unsigned char)in[i++];
		*used = i;
		switch (d->state) {
		case CH_SIZE: {
			int h = hex_value(c);
			if (h >= 0) {
				if (d->size_digits == HTTP_MAX_CHUNK_SIZE_DIGITS)
					return chunked_fail(d, 400, "bad_chunk", err);
				d->size_digits++;
				d->chunk_left = d->chunk_left * 16 + (uint64_t)h;
				/* refused on the size alone, before any of the data arrives */
				if (d->chunk_left > d->max_body - d->body_len)
					return chunked_fail(d, 413, "body_too_large", err);
				break;
			}
			if (d->size_digits == 0)
				return chunked_fail(d, 400, "bad_chunk", err);
			if (c == '\r') {
				d->state = CH_SIZE_LF;
				break;
			}
			int next = chunked_ext_step(CH_BWS_BEFORE_SEMI, c);
			if (next < 0 || ++d->ext_bytes > HTTP_MAX_CHUNK_EXT_BYTES)
				return chunked_fail(d, 400, "bad_chunk", err);
			d->state = next;
			break;
		}
		case CH_BWS_BEFORE_SEMI:
		case CH_EXT_NAME_START:
		case CH_EXT_NAME:
		case CH_BWS_AFTER_NAME:
		case CH_EXT_VALUE_START:
		case CH_EXT_TOKEN_VALUE:
		case CH_EXT_QUOTED:
		case CH_EXT_QUOTED_ESCAPE:
		case CH_EXT_AFTER_QUOTED: {
			int next = chunked_ext_step(d->state, c);
			if (next < 0)
				return chunked_fail(d, 400, "bad_chunk", err);
			/* the CR ending the line is not extension text */
			if (next != CH_SIZE_LF && ++d->ext_bytes > HTTP_MAX_CHUNK_EXT_BYTES)
				return chunked_fail(d, 400, "bad_chunk", err);
			d->state = next;
			break;
		}
		case CH_SIZE_LF:
			if (c != '\n')
				return chunked_fail(d, 400, "bad_chunk", err);
			if (d->chunk_left == 0) {
				d->state = CH_TRAILER_START;
			} else {
				d->body_len += d->chunk_left;
				d->state = CH_DATA;
			}
			break;
		case CH_DATA_CR:
			if (c != '\r')
				return chunked_fail(d, 400, "bad_chunk", err);
			d->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (c != '\n')
				return chunked_fail(d, 400, "bad_chunk", err);
			d->size_digits = 0;
			d->state = CH_SIZE;
			break;
		default: /* the trailer section */
			if (++d->trailer_bytes > HTTP_MAX_TRAILER_BYTES)
				return chunked_fail(d, 431, "trailer_too_large", err);
			switch (d->state) {
			case CH_TRAILER_START:
				/* a leading SP / HTAB would be obs-fold */
				if (c == '\r')
					d->state = CH_FINAL_LF;
				else if (is_tchar(c))
					d->state = CH_TRAILER_NAME;
				else
					return chunked_fail(d, 400, "bad_chunk", err);
				break;
			case CH_TRAILER_NAME:
				if (c == ':')
					d->state = CH_TRAILER_VALUE;
				else if (!is_tchar(c))
					return chunked_fail(d, 400, "bad_chunk", err);
				break;
			case CH_TRAILER_VALUE:
				if (c == '\r')
					d->state = CH_TRAILER_LF;
				else if (!is_field_char(c))
					return chunked_fail(d, 400, "bad_chunk", err);
				break;
			case CH_TRAILER_LF:
				if (c != '\n')
					return chunked_fail(d, 400, "bad_chunk", err);
				d->state = CH_TRAILER_START;
				break;
			case CH_FINAL_LF:
				if (c != '\n')
					return chunked_fail(d, 400, "bad_chunk", err);
				d->state = CH_DONE;
				return HTTP_PARSE_DONE;
			default:
				return chunked_fail(d, 500, "bad_decoder_state", err);
			}
		}
	}
	*used = len;
	return HTTP_PARSE_INCOMPLETE;
}
