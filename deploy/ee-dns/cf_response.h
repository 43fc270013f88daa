/*
 * cf_response.h - Cloudflare API v4 answers, parsed and checked.
 *
 * Every answer is one JSON object (the "envelope"):
 *   {"success": bool, "errors": [{"code": N, "message": "...",
 *    "error_chain": [...]}], "messages": [...], "result": ...}
 * and, for the calls ee-dns makes, result is a list of zones, one zone, a
 * list of DNS records or one record.  Everything here comes from the
 * network, so it is held to types, lengths and character sets before use:
 * the ids go into URL paths, the names and contents are compared and
 * printed.  Error messages are kept as printable ASCII only, cut to
 * CF_MESSAGE_MAX, since they are shown to a person as they are.
 * tests/fuzz/fuzz_cf_response.c feeds this file arbitrary bytes.
 */
#ifndef EE_CF_RESPONSE_H
#define EE_CF_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#define CF_NAME_MAX 253    /* a DNS name in text form */
#define CF_ID_MAX 64       /* Cloudflare's ids are 32 hex digits; some room */
#define CF_TYPE_MAX 10     /* "A", "AAAA", "HTTPS", ... */
#define CF_CONTENT_MAX 255 /* an A or AAAA record's content is far shorter */
#define CF_STATUS_MAX 31   /* a zone's status: "active", "pending", ... */
#define CF_MESSAGE_MAX 300 /* an error message and its chain, as shown */
#define CF_ERRORS_KEPT 4   /* errors shown of one answer; the rest are counted */

struct cf_message {
	long code;
	char text[CF_MESSAGE_MAX + 1]; /* the message, then ": code message" per chained error */
};

struct cf_response {
	bool success;
	size_t error_count;                      /* errors in the answer */
	struct cf_message errors[CF_ERRORS_KEPT]; /* the first ones */
	struct json_object *root;                /* owns everything below */
	struct json_object *result;              /* NULL when absent or null */
};

enum cf_parse_result {
	CF_PARSE_OK = 0,
	CF_PARSE_NOT_JSON = -1,     /* not strict JSON */
	CF_PARSE_NOT_ENVELOPE = -2, /* JSON, but no object with a boolean "success" */
};

struct cf_zone {
	char id[CF_ID_MAX + 1];
	char name[CF_NAME_MAX + 1];
	char status[CF_STATUS_MAX + 1]; /* "" when the answer has none */
};

struct cf_record {
	char id[CF_ID_MAX + 1];
	char type[CF_TYPE_MAX + 1];
	char name[CF_NAME_MAX + 1];
	char content[CF_CONTENT_MAX + 1];
	int ttl;                        /* 1 is automatic */
	bool proxied;                   /* false when the answer has none */
};

/* Parses an answer's body (len bytes, not necessarily NUL-terminated). */
enum cf_parse_result cf_response_parse(const char *body, size_t len, struct cf_response *out);
void cf_response_free(struct cf_response *r);

/*
 * A result that is a list: the first max entries go to out, *count is how
 * many the list holds.  -1 if the result is not a list or an entry (kept
 * or not) is not a well-formed zone or record.
 */
int cf_zones_from_result(struct json_object *result, struct cf_zone *out, size_t max,
                         size_t *count);
int cf_records_from_result(struct json_object *result, struct cf_record *out, size_t max,
                           size_t *count);
/* A result that is one zone or one record; -1 if it is not well-formed. */
int cf_zone_from_object(struct json_object *obj, struct cf_zone *out);
int cf_record_from_object(struct json_object *obj, struct cf_record *out);

/* Ids: [A-Za-z0-9_-]{1,CF_ID_MAX}, safe in a URL path. */
bool cf_valid_id(const char *s, size_t len);
/* Names as Cloudflare writes them: [A-Za-z0-9*_.-]{1,CF_NAME_MAX}. */
bool cf_valid_name(const char *s, size_t len);

#endif
