/*
 * util.h - small helpers every program needs: random identifiers, SHA-256,
 * constant-time comparison, character-set checks for identifiers, and a
 * growable byte buffer.
 */
#ifndef EE_UTIL_H
#define EE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fills buf with n bytes from the kernel's CSPRNG; -1 if it cannot. */
int util_random_bytes(void *buf, size_t n);
/* Writes 2*nbytes lowercase hex digits and a NUL into out. */
int util_random_hex(char *out, size_t nbytes);
void util_hex_encode(const unsigned char *in, size_t n, char *out);
/* Decodes exactly 2*n hex digits; -1 on any non-hex character. */
int util_hex_decode(const char *in, size_t in_len, unsigned char *out, size_t out_max,
                    size_t *out_len);

/*
 * Decodes %XX escapes of a URL path segment or query value into out (NUL
 * terminated), '+' as a space when plus_is_space.  -1 for a malformed
 * escape, a decoded control character (below 0x20, or 0x7f), or no room.
 */
int util_percent_decode(const char *in, size_t len, bool plus_is_space, char *out,
                        size_t out_size, size_t *out_len);

/* SHA-256 of data as 64 lowercase hex digits and a NUL. */
void util_sha256_hex(const void *data, size_t len, char out[65]);

/* Compares in time that depends only on the lengths, never on the contents. */
bool util_secure_equal(const char *a, size_t a_len, const char *b, size_t b_len);

/*
 * Identifier checks.  Every name that crosses the boundary (path segment or
 * JSON field) is held to one of these before use.
 *   account: [A-Za-z0-9._:-]{1,128}; "@..." names are the ledger's own.
 *   node / agent: [A-Za-z0-9._:-]{1,128}
 *   app: [A-Za-z0-9._-]{1,64}
 *   none of them may consist of dots only
 *   token-safe printable: 0x21..0x7e
 */
#define EE_ACCOUNT_MAX 128
#define EE_NODE_ID_MAX 128
#define EE_APP_NAME_MAX 64
bool util_valid_account(const char *s, size_t len);
bool util_valid_node_id(const char *s, size_t len);
bool util_valid_app_name(const char *s, size_t len);
bool util_valid_printable(const char *s, size_t len, size_t max);

/* The reason phrase of an HTTP status code ("Status" for codes it does not know). */
const char *util_http_status_text(int status);

/* A growable byte buffer, always NUL-terminated. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
	bool failed; /* an allocation failed; contents are incomplete */
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s with &, <, >, ", ' and control characters replaced by entities. */
int buf_append_html(struct buf *b, const char *s);

#endif
