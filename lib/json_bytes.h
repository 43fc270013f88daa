/*
 * json_bytes.h - reading back the JSON strings json_bytes_put writes
 * (lib/json_writer.h): the tunnel's header names and values, which are
 * bytes, not text.  A byte that is not part of valid UTF-8 travels as a
 * lone low surrogate escape, \udc80..\udcff; json-c reads that as U+FFFD
 * and the byte is lost, so this reader gives it back.
 *
 * Everything else reads as json-c reads it, byte for byte: the usual
 * escapes, a surrogate pair as its 4-byte UTF-8, any other lone surrogate
 * as U+FFFD (EF BF BD), \u0000 as a NUL byte, raw bytes as they are.  The
 * grammar of strings is checked here; UTF-8 is not: the text has passed
 * json-c's strict parser first (tunnel_msg_parse), which checks it.
 */
#ifndef EE_JSON_BYTES_H
#define EE_JSON_BYTES_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "util.h"

/*
 * Decodes the JSON string at text[0..len), from its opening quote, and
 * appends its bytes to out (NULL: only checked); *used is the length of
 * the literal, quotes included.  -1 when there is no valid string there
 * (or out ran out of memory).
 */
int json_bytes_decode(const char *text, size_t len, struct buf *out, size_t *used);

/*
 * Skips the white space and then the one JSON value at text[0..len): *used
 * bytes in all.  Strings are checked as json_bytes_decode checks them; the
 * rest only as far as finding where the value ends.  -1 when no value
 * ends inside the text.
 */
int json_bytes_skip_value(const char *text, size_t len, size_t *used);

/* The members of a JSON object's text, one at a time, in the order written. */
struct json_members {
	const char *p, *end; /* what is still to read */
	int state;           /* json_bytes.c's MEMBERS_* */
};

void json_members_start(struct json_members *m, const char *text, size_t len);

/*
 * The next member: its key decoded into key (reset first), its value's
 * text at *value (*value_len bytes, no white space around it).  Returns 1
 * for a member, 0 at the end of the object, -1 when the text is not an
 * object from here on (members before the fault were given all the same).
 */
int json_members_next(struct json_members *m, struct buf *key, const char **value,
                      size_t *value_len);

/*
 * The object of which text[0..len) is the JSON text, as json-c would read
 * it but with every string decoded as bytes: keys (cut at a NUL, as
 * json-c cuts them; a repeated key keeps its first place and its last
 * value), string values, and strings in arrays.  Any other value, and any
 * other element of an array, reads as null: the readers of headers take
 * strings and arrays of strings only.  NULL when text is not an object or
 * out of memory.
 */
struct json_object *json_bytes_object(const char *text, size_t len);

/*
 * Whether json-c's reading of a headers object may have lost bytes: a
 * U+FFFD, which is what it makes of \udcXX, in a name, a string value or
 * a string in an array value.  The usual headers hold none, and then
 * json-c's reading is kept.
 */
bool json_bytes_maybe_lost(struct json_object *headers);

/*
 * The member key of the object whose JSON text is text[0..len), read as
 * json_bytes_object reads (the last of a repeated key, as json-c keeps
 * it).  NULL when there is no such member, it is not an object, or the
 * text cannot be read so.
 */
struct json_object *json_bytes_member_object(const char *text, size_t len, const char *key);

#endif
