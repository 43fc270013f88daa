/*
 * nodes.h - providers: registration, pricing and stake, the node token, and
 * the attestation and health state (with miss events) that settlement reads.
 */
#ifndef EE_NODES_H
#define EE_NODES_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "db.h"
#include "error.h"

#define NODE_TOKEN_LEN 64 /* hex characters of a node token */

struct node_registration {
	const char *node_id;
	bool has_price;
	int64_t price_cents_per_vcpu_hour;
	bool has_stake;
	int64_t stake_amount_cents;
	const char *stake_tier; /* NULL: keep (or none for a new node) */
	const char *status;     /* "active" / "inactive"; NULL: keep (new nodes are active) */
	bool allow_update;      /* an existing node may be changed */
	bool rotate_token;      /* issue a new token for an existing node */
};

/*
 * Creates or updates a node inside the caller's write transaction.  A new
 * node, a rotation, or an existing node without a token gets a fresh token,
 * returned once in token_out (else token_out is ""); only its SHA-256 is
 * stored.  Fields not given keep their value.  Reasons: node_exists.
 */
int nodes_register(struct ee_db *db, const struct node_registration *reg,
                   char token_out[NODE_TOKEN_LEN + 1], bool *created, struct ee_error *err);

/* True when token is node_id's current token (constant-time comparison). */
int nodes_verify_token(struct ee_db *db, const char *node_id, const char *token, bool *ok,
                       struct ee_error *err);

/* The node as JSON (never the token hash); 404 node_not_found. */
int nodes_get_json(struct ee_db *db, const char *node_id, struct json_object **out,
                   struct ee_error *err);

/* Makes sure node_id exists (an agent seen on the tunnel is a node). */
int nodes_ensure(struct ee_db *db, const char *node_id, struct ee_error *err);
int nodes_mark_attestation(struct ee_db *db, const char *node_id, const char *status,
                           int64_t now_ms, struct ee_error *err);
int nodes_mark_health(struct ee_db *db, const char *node_id, const char *status,
                      int64_t now_ms, struct ee_error *err);
/* Records "health_miss" / "attest_miss" (and other) events; detail is a reason, never a secret. */
int nodes_record_event(struct ee_db *db, const char *node_id, const char *event_type,
                       const char *detail, int64_t now_ms, struct ee_error *err);

#endif
