/*
 * http_parser.h - a strict HTTP/1.1 request parser for ee-tunneld's proxy
 * listener: the request head (request line and header fields), an
 * incremental chunked body decoder, and the header facts a proxy needs
 * (which fields are hop-by-hop).
 *
 * The listener sits behind Caddy, so anything two parsers could read two
 * ways (request smuggling) is refused rather than guessed at:
 *   - lines end in CRLF only.  A bare LF or a bare CR anywhere in the head
 *     is a 400; no empty lines before the request line.
 *   - no obs-fold (a field line starting with SP or HTAB), no whitespace
 *     between a field name and its colon, field names are tokens, values
 *     hold no control character but HTAB (obs-text, 0x80-0xff, is allowed).
 *   - origin-form targets only ("/path?query"): 0x21-0x7e without '#'.
 *   - Content-Length and Transfer-Encoding together are refused; so is any
 *     Transfer-Encoding but a single "chunked".
 *
 * The head parser keeps no state between calls: the caller appends what it
 * read and calls again with the whole buffer.  One call costs time linear in
 * min(len, HTTP_MAX_HEAD_BYTES); call it once per read(), not once per byte.
 * Errors are found left to right and depend only on the bytes before the
 * point where they are found, so an error on a prefix is the same error on
 * any longer buffer, and a DONE stays the same DONE.
 */
#ifndef EE_HTTP_PARSER_H
#define EE_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "util.h"

/* The whole head, request line to the blank line included. */
#define HTTP_MAX_HEAD_BYTES 16384
#define HTTP_MAX_HEADERS 100
#define HTTP_MAX_TARGET_BYTES 8192
#define HTTP_MAX_METHOD_BYTES 16
/* Host is a DNS name (at most 253) with a port, or a bracketed IPv6 literal. */
#define HTTP_MAX_HOST_BYTES 300
/* A chunk-size is at most 16 hex digits, leading zeros included: no overflow. */
#define HTTP_MAX_CHUNK_SIZE_DIGITS 16
/* Everything after the chunk-sizes (whitespace and extensions), whole body. */
#define HTTP_MAX_CHUNK_EXT_BYTES 4096
/* The trailer section of a chunked body, its final CRLF included. */
#define HTTP_MAX_TRAILER_BYTES HTTP_MAX_HEAD_BYTES

/* Results of http_parse_request_head and http_chunked_decode. */
#define HTTP_PARSE_ERROR (-1)
#define HTTP_PARSE_DONE 0
#define HTTP_PARSE_INCOMPLETE 1

/* One field line; both strings point into the caller's buffer. */
struct http_header {
	const char *name; /* a token, as sent (any case) */
	size_t name_len;
	const char *value; /* leading and trailing SP / HTAB trimmed; may be empty */
	size_t value_len;
};

/*
 * A parsed head.  Every pointer points into the buffer given to
 * http_parse_request_head, which must outlive this struct.
 */
struct http_request_head {
	const char *method; /* a token of 1..HTTP_MAX_METHOD_BYTES */
	size_t method_len;
	const char *target; /* origin-form: starts with '/', 1..HTTP_MAX_TARGET_BYTES */
	size_t target_len;
	int version_minor; /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
	struct http_header headers[HTTP_MAX_HEADERS];
	int header_count;

	/* Derived from the fields above. */
	bool chunked;            /* Transfer-Encoding: chunked (HTTP/1.1 only) */
	bool has_content_length; /* never together with chunked */
	uint64_t content_length; /* the body's length when has_content_length */
	/* HTTP/1.1: unless "Connection: close"; HTTP/1.0: only with "keep-alive". */
	bool keep_alive;
	bool expect_continue; /* "Expect: 100-continue" in HTTP/1.1 */
	bool upgrade;         /* an Upgrade field, or "upgrade" in Connection */
	const char *host;     /* the Host field's value, NULL if absent (HTTP/1.0) */
	size_t host_len;
};

/*
 * Parses the head at the start of buf[0..len).  Returns
 *   HTTP_PARSE_DONE: *out is filled and *head_len is the length of the
 *     head, request line through the blank line's CRLF (so buf[head_len]
 *     is the first body byte or the next request); head_len <=
 *     HTTP_MAX_HEAD_BYTES.
 *   HTTP_PARSE_INCOMPLETE: no error so far; read more and call again.
 *   HTTP_PARSE_ERROR: err gets the status and reason to answer with
 *     (and the connection should close):
 *     400 bad_request_line, bad_request_target, bad_header, missing_host,
 *         duplicate_host, bad_host, bad_transfer_encoding (in HTTP/1.0),
 *         conflicting_length (Content-Length with Transfer-Encoding, or
 *         Content-Length values that differ), bad_content_length
 *     414 uri_too_long
 *     431 header_too_large, too_many_headers
 *     501 unsupported_transfer_encoding
 *     505 http_version_not_supported
 * A request with neither Content-Length nor chunked has no body.
 * *out and *head_len are only meaningful after DONE.  No allocation.
 */
int http_parse_request_head(const char *buf, size_t len, struct http_request_head *out,
                            size_t *head_len, struct ee_error *err);

/* The first field named name (any case), or NULL. */
const struct http_header *http_find_header(const struct http_request_head *head,
                                           const char *name);

/* True when s[0..len) is a non-empty RFC 9110 token. */
bool http_is_token(const char *s, size_t len);

/*
 * True for the fields a proxy never forwards, whatever the request:
 * Connection, Keep-Alive, Proxy-Connection, Proxy-Authenticate,
 * Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade (any case).
 */
bool http_header_is_hop_by_hop(const char *name, size_t name_len);

/*
 * The same for a field of this request: also true for every field named
 * in one of its Connection fields ("Connection: close, X-Secret").
 */
bool http_head_header_is_hop_by_hop(const struct http_request_head *head, const char *name,
                                    size_t name_len);

/*
 * The chunked body decoder: a state machine fed with whatever bytes
 * arrived.  Decoded data is appended to a struct buf, which the caller may
 * drain (buf_reset) between calls.
 *
 *   struct http_chunked_decoder d;
 *   http_chunked_init(&d, max_body);
 *   loop: rc = http_chunked_decode(&d, in, in_len, &out, &used, &err);
 *     DONE: the body and its trailers are complete; in[used..] belongs
 *           to the next request.
 *     INCOMPLETE: used == in_len; read more and call with the new bytes only.
 *     ERROR: err says why (400 bad_chunk, 413 body_too_large,
 *            431 trailer_too_large, 500 out_of_memory); close the connection.
 * Chunk extensions and trailer fields are checked and dropped.  After DONE
 * or ERROR further calls use nothing and return the same again.
 */
struct http_chunked_decoder {
	int state;
	uint64_t max_body;   /* decoded bytes allowed in all */
	uint64_t body_len;   /* data bytes announced by the chunk-sizes read so far */
	uint64_t chunk_left; /* bytes of the current chunk's data still to come */
	int size_digits;     /* hex digits read of the current chunk-size */
	size_t ext_bytes;    /* bytes after chunk-sizes so far, whole body */
	size_t trailer_bytes;
	struct ee_error error; /* kept, so later calls fail the same way */
};

void http_chunked_init(struct http_chunked_decoder *d, uint64_t max_body);

/* out may be NULL to drop the data (skipping a body). */
int http_chunked_decode(struct http_chunked_decoder *d, const char *in, size_t len,
                        struct buf *out, size_t *used, struct ee_error *err);

#endif
