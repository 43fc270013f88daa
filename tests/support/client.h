/*
 * client.h - a small HTTP client for tests (libcurl), with JSON helpers.
 */
#ifndef EE_TEST_CLIENT_H
#define EE_TEST_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

struct http_result {
	long status;
	char *body;
	size_t body_len;
	char *headers;              /* raw response header block */
	struct json_object *json;   /* parsed body, or NULL */
	int curl_code;
};

/*
 * Sends one request.  headers is a NULL-terminated list of "Name: value"
 * lines; body may be NULL.  Returns 0 when an HTTP answer came back.
 */
int http_do(const char *method, const char *url, const char *const *headers, const void *body,
            size_t body_len, struct http_result *out);
void http_result_free(struct http_result *r);

/* The JSON string field of the answer, or NULL. */
const char *http_json_string(const struct http_result *r, const char *key);
long long http_json_int(const struct http_result *r, const char *key, long long def);
bool http_json_bool(const struct http_result *r, const char *key, bool def);
/* The "error" field, or for resolve-style answers the "reason" field. */
const char *http_reason(const struct http_result *r);
/* Value of a response header (case-insensitive), copied into out. */
bool http_header(const struct http_result *r, const char *name, char *out, size_t out_size);

#endif
