/* tunnel_msg.c - parsing tunnel protocol messages; see tunnel_msg.h. */
#include "tunnel_msg.h"

#include <string.h>

#include "json_bytes.h"
#include "jsonutil.h"
#include "util.h"

static const char *const type_names[] = {
	[TUNNEL_MSG_REGISTER] = "register",
	[TUNNEL_MSG_ATTEST_REQUEST] = "attest_request",
	[TUNNEL_MSG_ATTEST_RESPONSE] = "attest_response",
	[TUNNEL_MSG_HEALTH] = "health",
	[TUNNEL_MSG_PROXY_REQUEST] = "proxy_request",
	[TUNNEL_MSG_PROXY_RESPONSE] = "proxy_response",
	[TUNNEL_MSG_STATUS] = "status",
};

#define TYPE_COUNT (sizeof(type_names) / sizeof(type_names[0]))

const char *tunnel_msg_type_name(enum tunnel_msg_type type)
{
	return (size_t)type < TYPE_COUNT ? type_names[type] : "unknown";
}

/* A string field, or NULL when absent, null or of another type. */
static const char *string_field(struct json_object *root, const char *key, size_t *len)
{
	const char *s;
	size_t n;
	if (json_get_string(root, key, &s, &n) != JSON_FIELD_OK)
		return NULL;
	if (len)
		*len = n;
	return s;
}

static struct json_object *object_field(struct json_object *root, const char *key)
{
	bool present;
	struct json_object *v = json_get(root, key, &present);
	return v && json_object_is_type(v, json_type_object) ? v : NULL;
}

static int int_field(struct json_object *root, const char *key)
{
	bool present;
	struct json_object *v = json_get(root, key, &present);
	if (!v || !json_object_is_type(v, json_type_int))
		return 0;
	int64_t n = json_object_get_int64(v);
	return n < -1000000000 || n > 1000000000 ? 0 : (int)n;
}

/*
 * Header names and values are bytes: one that is not UTF-8 travels as
 * \udc80..\udcff (json_bytes_put), which json-c reads as U+FFFD.  When
 * json-c's headers hold a U+FFFD, they are read again from the text with
 * lib/json_bytes.c, which gives those bytes back; the usual message, with
 * none, costs only the look for one.  -1 when the text cannot be read so.
 */
static int restore_header_bytes(struct tunnel_msg *msg, const char *text, size_t len)
{
	if (!msg->headers || !json_bytes_maybe_lost(msg->headers))
		return 0;
	struct json_object *headers = json_bytes_member_object(text, len, "headers");
	if (!headers)
		return -1;
	if (json_object_object_add(msg->root, "headers", headers) != 0) {
		json_object_put(headers);
		return -1;
	}
	msg->headers = headers;
	return 0;
}

bool tunnel_msg_request_id(const char *text, size_t len, enum tunnel_msg_type type, char *out,
                           size_t out_size)
{
	struct json_members m;
	struct buf key, value;
	buf_init(&key);
	buf_init(&value);
	bool type_seen = false, id_seen = false;
	const char *v;
	size_t vlen, used;
	json_members_start(&m, text, len);
	out[0] = '\0';
	while (json_members_next(&m, &key, &v, &vlen) == 1) {
		bool is_type = key.data && strcmp(key.data, "type") == 0;
		bool is_id = key.data && strcmp(key.data, "request_id") == 0;
		if (!is_type && !is_id)
			continue;
		buf_reset(&value);
		bool string = json_bytes_decode(v, vlen, &value, &used) == 0 && value.data;
		if (is_type) {
			type_seen = string && strcmp(value.data, tunnel_msg_type_name(type)) == 0;
		} else {
			id_seen = string && value.len < out_size &&
			          util_valid_printable(value.data, value.len, out_size - 1);
			if (id_seen)
				memcpy(out, value.data, value.len + 1);
		}
	}
	buf_free(&key);
	buf_free(&value);
	return type_seen && id_seen;
}

int tunnel_msg_parse(const char *text, size_t len, struct tunnel_msg *out, struct ee_error *err)
{
	memset(out, 0, sizeof(*out));
	if (json_parse_object(text, len, &out->root, err) != 0)
		return -1;
	const char *type = string_field(out->root, "type", NULL);
	size_t t = 0;
	while (type && t < TYPE_COUNT && strcmp(type, type_names[t]) != 0)
		t++;
	if (!type || t == TYPE_COUNT) {
		tunnel_msg_free(out);
		return ee_fail(err, 400, "unknown_message");
	}
	struct json_object *r = out->root;
	out->type = (enum tunnel_msg_type)t;
	switch (out->type) {
	case TUNNEL_MSG_REGISTER:
		out->repo = string_field(r, "repo", NULL);
		out->release_tag = string_field(r, "release_tag", NULL);
		out->app_name = string_field(r, "app_name", NULL);
		out->network = string_field(r, "network", NULL);
		out->agent_id = string_field(r, "agent_id", NULL);
		out->tunnel_version = string_field(r, "tunnel_version", NULL);
		break;
	case TUNNEL_MSG_ATTEST_REQUEST:
		out->nonce = string_field(r, "nonce", NULL);
		out->deadline_s = int_field(r, "deadline_s");
		out->reason = string_field(r, "reason", NULL);
		break;
	case TUNNEL_MSG_ATTEST_RESPONSE:
		out->nonce = string_field(r, "nonce", NULL);
		out->quote = string_field(r, "quote", &out->quote_len);
		out->report_data = string_field(r, "report_data", NULL);
		out->measurements = object_field(r, "measurements");
		break;
	case TUNNEL_MSG_HEALTH:
		out->status = string_field(r, "status", NULL);
		break;
	case TUNNEL_MSG_PROXY_REQUEST:
	case TUNNEL_MSG_PROXY_RESPONSE:
		out->request_id = string_field(r, "request_id", NULL);
		out->method = string_field(r, "method", NULL);
		out->path = string_field(r, "path", NULL);
		out->headers = object_field(r, "headers");
		out->body_b64 = string_field(r, "body_b64", &out->body_b64_len);
		out->http_status = int_field(r, "status");
		if (restore_header_bytes(out, text, len) != 0) {
			tunnel_msg_free(out);
			return ee_fail(err, 400, "invalid_json");
		}
		break;
	case TUNNEL_MSG_STATUS:
		out->state = string_field(r, "state", NULL);
		out->reason = string_field(r, "reason", NULL);
		break;
	}
	return 0;
}

void tunnel_msg_free(struct tunnel_msg *msg)
{
	json_object_put(msg->root);
	memset(msg, 0, sizeof(*msg));
}
