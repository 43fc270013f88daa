/*
 * base64.h - standard base64 (RFC 4648 section 4, with padding), strict.
 *
 * Used for proxied bodies (body_b64) and quotes on the tunnel.  Decoding
 * refuses characters outside the alphabet, missing or misplaced padding,
 * and non-zero bits after the last byte, so one text has one meaning.
 */
#ifndef EE_BASE64_H
#define EE_BASE64_H

#include <stddef.h>

/* Bytes needed to encode n bytes, without the terminating NUL. */
size_t base64_encoded_len(size_t n);
/* The most bytes a text of len characters can decode to. */
size_t base64_decoded_max(size_t len);

/* Writes base64_encoded_len(n) characters and a NUL into out. */
void base64_encode(const unsigned char *in, size_t n, char *out);

/* Decodes into out (room for base64_decoded_max(len)); -1 on malformed text. */
int base64_decode(const char *in, size_t len, unsigned char *out, size_t *out_len);

#endif
