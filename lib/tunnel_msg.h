/*
 * tunnel_msg.h - the tunnel protocol's messages (DESIGN.md section 4), in
 * both directions, parsed from one websocket text frame.
 *
 * Parsing only reads JSON and types: a string field of the wrong type reads
 * as absent.  What a message means and which fields it must carry is the
 * receiver's business (ee-tunneld answers "missing_fields" and the like in
 * the original's order).  Every string points into msg->root and lives as
 * long as the message.  Header names and values are bytes: a \udc80..\udcff
 * escape in them reads as its byte (lib/json_bytes.h, docs/PROTOCOL.md).
 */
#ifndef EE_TUNNEL_MSG_H
#define EE_TUNNEL_MSG_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "error.h"

enum tunnel_msg_type {
	TUNNEL_MSG_REGISTER,        /* agent -> control plane */
	TUNNEL_MSG_ATTEST_REQUEST,  /* control plane -> agent */
	TUNNEL_MSG_ATTEST_RESPONSE, /* agent -> control plane */
	TUNNEL_MSG_HEALTH,          /* agent -> control plane */
	TUNNEL_MSG_PROXY_REQUEST,   /* control plane -> agent */
	TUNNEL_MSG_PROXY_RESPONSE,  /* agent -> control plane */
	TUNNEL_MSG_STATUS,          /* control plane -> agent */
};

struct tunnel_msg {
	enum tunnel_msg_type type;
	struct json_object *root; /* owns everything below */
	/* register */
	const char *repo, *release_tag, *app_name, *network, *agent_id, *tunnel_version;
	/* attest_request / attest_response */
	const char *nonce;
	int deadline_s;
	const char *reason; /* also status */
	const char *quote;
	size_t quote_len;
	const char *report_data;
	struct json_object *measurements; /* NULL unless an object */
	/* health, status */
	const char *status; /* health's "pass"/"fail" as sent; NULL if absent */
	const char *state;  /* status's "ok"/"invalid" */
	/* proxy_request / proxy_response */
	const char *request_id;
	const char *method;
	const char *path;
	struct json_object *headers; /* NULL unless an object */
	const char *body_b64;
	size_t body_b64_len;
	int http_status; /* proxy_response's status; 0 when absent or not an integer */
};

/*
 * Parses one message.  400 "invalid_json" for anything but one JSON object;
 * 400 "unknown_message" for a missing or unknown "type".  On success the
 * caller frees with tunnel_msg_free.
 */
int tunnel_msg_parse(const char *text, size_t len, struct tunnel_msg *out, struct ee_error *err);
void tunnel_msg_free(struct tunnel_msg *msg);

/*
 * The request id of a message that tunnel_msg_parse refused, when its
 * members read up to the first fault name it a message of this type and
 * carry a request_id of printable ASCII shorter than out_size: so that the
 * request it answers ends at once rather than at its timeout.  Nothing of
 * the message but the id is kept.
 */
bool tunnel_msg_request_id(const char *text, size_t len, enum tunnel_msg_type type, char *out,
                           size_t out_size);

const char *tunnel_msg_type_name(enum tunnel_msg_type type);

#endif
