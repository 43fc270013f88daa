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
 */
#ifndef EE_JSON_WRITER_H
#define EE_JSON_WRITER_H

#include <stddef.h>

#include "util.h"

/* The bytes json_string_put writes for n bytes of s, quotes included. */
size_t json_string_len(const char *s, size_t n);

/* Writes s as a quoted JSON string at out (room for json_string_len); returns the end. */
char *json_string_put(char *out, const char *s, size_t n);

/* Appends s as a quoted JSON string to b; -1 when out of memory (or b failed before). */
int json_append_string(struct buf *b, const char *s, size_t n);

#endif
