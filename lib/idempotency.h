/*
 * idempotency.h - Idempotency-Key for money-moving POSTs.
 *
 * Inside the request's write transaction: look the key up; a stored answer
 * for the same request is replayed and nothing moves; a stored answer for a
 * different request under the same key is refused (422
 * idempotency_key_reused).  A new successful answer is stored in the same
 * transaction as the movement.  Failed requests store nothing: they changed
 * nothing, so a retry is simply evaluated again.
 */
#ifndef EE_IDEMPOTENCY_H
#define EE_IDEMPOTENCY_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"
#include "error.h"
#include "util.h"

#define IDEMPOTENCY_KEY_MAX 255

/* Keys are 1..255 printable ASCII characters without spaces. */
bool idempotency_key_valid(const char *key);

/* request_hash: SHA-256 hex of what identifies the request (method, path, body). */
int idempotency_lookup(struct ee_db *db, const char *scope, const char *key,
                       const char *request_hash, bool *found, int *status,
                       struct buf *response, struct ee_error *err);

int idempotency_store(struct ee_db *db, const char *scope, const char *key,
                      const char *request_hash, int status, const char *response,
                      struct ee_error *err);

#endif
