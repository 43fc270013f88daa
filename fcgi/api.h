/*
 * api.h - ee-api's request, response and handler interface.
 *
 * A request is read from FastCGI or CGI into struct api_request (http.c),
 * routed (router.c) to one handler, which fills struct api_response; the
 * front end then writes it back the same way it came.  Handlers never touch
 * FastCGI or stdin/stdout.
 */
#ifndef EE_API_H
#define EE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "config.h"
#include "db.h"
#include "error.h"
#include "jsonutil.h"
#include "ledger.h"
#include "ratelimit.h"
#include "registry.h"
#include "util.h"

#define API_PATH_MAX 2048
#define API_MAX_SEGMENTS 8

struct api_request {
	const char *method;
	char path[API_PATH_MAX + 1];   /* without the query, still percent-encoded */
	const char *query;             /* after '?', or "" */
	const char *authorization;
	const char *content_type;
	const char *idempotency_key;
	const char *remote_addr;
	const char *forwarded_for;     /* X-Forwarded-For, believed only from EE_TRUSTED_PROXIES */
	char *body;
	size_t body_len;
	bool body_too_large;           /* the declared or actual body exceeded EE_MAX_BODY_BYTES */
	bool read_incomplete; /* the input ended early or failed: nothing is answered */
	bool path_too_long;
	/* Percent-decoded path segments, filled by the router. */
	char *segments[API_MAX_SEGMENTS];
	int segment_count;
};

struct api_response {
	int status;
	const char *content_type;
	struct buf headers; /* extra "Name: value\r\n" lines */
	struct buf body;
};

/* Everything a handler may use.  One per worker thread, reset per request. */
struct api_context {
	const struct ee_config *cfg;
	struct registry_policy policy;
	struct ee_db *db; /* NULL while the database cannot be opened */
	bool holds_readonly_handle; /* ctx->db is read-only: closed when the request ends */
	struct ratelimit *auth_limit; /* failed tokens per client; NULL when EE_AUTH_FAIL_LIMIT=0 */
	struct commit_group *commits; /* the process's group commit, shared by its threads */
	struct api_request *req;
	struct api_response *res;
	struct json_object *json; /* the parsed body of a JSON POST */
	struct ee_error err;
};

/* Database handle for this request, opening it if needed; NULL after answering 503. */
struct ee_db *api_db(struct api_context *ctx);
/* At the end of each request: closes a handle that could only be opened read-only. */
void api_release_db(struct api_context *ctx);

/* Responses. */
void api_respond_json(struct api_context *ctx, int status, struct json_object *payload);
/*
 * Starts a JSON answer written in place (no json-c tree): the body is
 * emptied and w writes into it.  A later api_respond_* replaces it.
 */
struct json_writer *api_begin_json(struct api_context *ctx, int status, struct json_writer *w);
void api_respond_text(struct api_context *ctx, int status, const char *content_type,
                      const char *body, size_t len);
/* {"error": reason} with the status the error carries. */
void api_respond_error(struct api_context *ctx, int status, const char *reason);
void api_respond_ee_error(struct api_context *ctx, const struct ee_error *err);
void api_add_header(struct api_context *ctx, const char *name, const char *value);

/* Routing and handling: router.c. */
void api_handle(struct api_context *ctx);
/*
 * A presented token did not match: counted against the client, whose
 * requests that need a token get 429 once EE_AUTH_FAIL_LIMIT is reached.
 * Writes the 401 (or 503 when nothing is configured to check against).
 */
void api_respond_auth_failed(struct api_context *ctx);

/* Handlers: handlers_*.c, dashboard.c. */
void handle_health(struct api_context *ctx);
void handle_resolve(struct api_context *ctx);
void handle_apps_list(struct api_context *ctx);
void handle_app_get(struct api_context *ctx);
void handle_dashboard(struct api_context *ctx);
void handle_balance(struct api_context *ctx);
void handle_ledger_entries(struct api_context *ctx);
void handle_node_register(struct api_context *ctx);
void handle_node_get(struct api_context *ctx);
void handle_abuse_file(struct api_context *ctx);
void handle_abuse_decide(struct api_context *ctx);

/*
 * Money-moving POSTs run in two stages so that bad input never opens a
 * write transaction: parse() checks the body and fills args; apply() runs
 * inside BEGIN IMMEDIATE, after the Idempotency-Key lookup, and builds the
 * answer.  router.c owns the transaction and the idempotency record.
 * apply() may run on another thread of the worker, in a savepoint of a
 * transaction shared with other requests (commit.h): it uses ctx->db and its
 * arguments only, and answers through *result and err, never ctx->res.
 */
struct money_op {
	const char *scope; /* idempotency scope, e.g. "credits.transfer" */
	size_t args_size;
	int (*parse)(struct api_context *ctx, void *args, struct ee_error *err);
	int (*apply)(struct api_context *ctx, void *args, struct json_object **result,
	             struct ee_error *err);
};

extern const struct money_op money_purchase;
extern const struct money_op money_transfer;
extern const struct money_op money_usage_report;
extern const struct money_op money_settlement;

/* Field helpers shared by handlers (handlers_common.c). */
int api_field_identifier(struct api_context *ctx, const char *key,
                         bool (*valid)(const char *, size_t), const char *missing_reason,
                         const char *invalid_reason, const char **out, struct ee_error *err);
int api_field_time(struct api_context *ctx, const char *key, bool required,
                   const char *missing_reason, bool *present, int64_t *out, struct ee_error *err);
int api_field_text(struct api_context *ctx, const char *key, size_t max, const char *invalid_reason,
                   const char **out, struct ee_error *err);
/*
 * Looks a query parameter up and percent-decodes it into out.  Returns the
 * decoded length, API_QUERY_ABSENT, or API_QUERY_INVALID (a bad escape, a
 * control character, or a value that does not fit out).
 */
#define API_QUERY_ABSENT (-1)
#define API_QUERY_INVALID (-2)
long api_query_param(const char *query, const char *name, char *out, size_t out_size);

#endif
