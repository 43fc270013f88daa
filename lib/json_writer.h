/*
 * json_writer.h - JSON string literals written straight into a buffer, for
 * messages built on the hot path (the tunnel's proxy_request and
 * proxy_response, ee-api's answers through the writer in jsonutil.h)
 * without a json-c tree in between.
 *
 * The escaping is json-c's (JSON_C_TO_STRING_NOSLASHESCAPE), byte for byte:
 * '"' and '\\' and the controls below 0x20 are escaped (\b \t \n \f \r
 * short, the others as \u00xx in lowercase hex); every other byte, '/',
 * DEL and bytes of 0x80 and above included, is copied as it is.  So a
 * message reads the same as the one json-c would have made, and the peer's
 * parser (which checks UTF-8) accepts exactly what it accepted before.
 *
 * The json_bytes_* forms are for strings that are bytes, not text: the
 * tunnel's header names and values, which an HTTP peer may send in
 * ISO-8859-1 or anything else.  They write what json_string_put writes,
 * except that each byte that is not part of a valid UTF-8 sequence
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF, no
 * truncated sequence) becomes the escape of a lone low surrogate,
 * \udc80..\udcff (0xDC00 plus the byte), as Python's surrogateescape does.
 * Valid UTF-8 never yields such an escape, so lib/json_bytes.c maps them
 * back to the bytes without ambiguity; text that is valid UTF-8 is
 * written exactly as json_string_put writes it (docs/PROTOCOL.md).
 */
#ifndef EE_JSON_WRITER_H
#define EE_JSON_WRITER_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* The bytes json_string_put writes for n bytes of s, quotes included. */
size_t json_string_len(const char *s, size_t n);

/* Writes s as a quoted JSON string at out (room for json_string_len); returns the end. */
char *json_string_put(char *out, const char *s, size_t n);

/* Appends s as a quoted JSON string to b; -1 when out of memory (or b failed before). */
int json_append_string(struct buf *b, const char *s, size_t n);

/* The length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 when s[0] starts none. */
size_t json_utf8_sequence_len(const unsigned char *s, size_t n);

/* Whether s[0..n) is valid UTF-8 as a whole (RFC 3629, as json_utf8_sequence_len reads it). */
bool json_utf8_valid(const char *s, size_t n);

/* The same three for bytes: invalid UTF-8 written as \udc80..\udcff, one escape a byte. */
size_t json_bytes_len(const char *s, size_t n);
char *json_bytes_put(char *out, const char *s, size_t n);
int json_append_bytes(struct buf *b, const char *s, size_t n);

#endif
