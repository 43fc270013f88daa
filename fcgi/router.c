/*
 * router.c - from path and method to handler: path segments are decoded and
 * checked, the method and the token are checked, JSON bodies are parsed, and
 * money-moving POSTs get their transaction and Idempotency-Key handling.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "commit.h"
#include "idempotency.h"
#include "jsonutil.h"
#include "log.h"
#include "netaddr.h"
#include "nodes.h"
#include "timeutil.h"

enum auth_class {
	AUTH_PUBLIC,
	AUTH_ADMIN,
	AUTH_UPTIME,   /* EE_UPTIME_TOKEN or the admin token */
	AUTH_LAUNCHER, /* EE_LAUNCHER_TOKEN or the admin token */
	AUTH_NODE,     /* the admin token or the node's own token: checked by the handler */
};

struct route {
	const char *method;
	const char *pattern; /* a "*" segment matches any one segment */
	enum auth_class auth;
	bool json_body;
	void (*handler)(struct api_context *ctx);
	const struct money_op *money;
};

static const struct route routes[] = {
	{"GET", "/health", AUTH_PUBLIC, false, handle_health, NULL},
	{"GET", "/v1/resolve/*", AUTH_PUBLIC, false, handle_resolve, NULL},
	{"GET", "/v1/apps", AUTH_ADMIN, false, handle_apps_list, NULL},
	{"GET", "/v1/apps/*", AUTH_ADMIN, false, handle_app_get, NULL},
	{"GET", "/dashboard", AUTH_ADMIN, false, handle_dashboard, NULL},
	{"POST", "/v1/credits/purchase", AUTH_ADMIN, true, NULL, &money_purchase},
	{"POST", "/v1/credits/transfer", AUTH_ADMIN, true, NULL, &money_transfer},
	{"GET", "/v1/balances/*", AUTH_ADMIN, false, handle_balance, NULL},
	{"POST", "/v1/usage/report", AUTH_UPTIME, true, NULL, &money_usage_report},
	{"POST", "/v1/settlements/*/finalize", AUTH_ADMIN, true, NULL, &money_settlement},
	{"POST", "/v1/abuse/reports", AUTH_LAUNCHER, true, handle_abuse_file, NULL},
	{"POST", "/v1/abuse/reports/*/authorize", AUTH_ADMIN, true, handle_abuse_decide, NULL},
	{"POST", "/v1/nodes/register", AUTH_NODE, true, handle_node_register, NULL},
	{"GET", "/v1/nodes/*", AUTH_ADMIN, false, handle_node_get, NULL},
	{"GET", "/v1/ledger/entries", AUTH_ADMIN, false, handle_ledger_entries, NULL},
};

#define ROUTE_COUNT (sizeof(routes) / sizeof(routes[0]))

/*
 * Splits the raw path into percent-decoded segments.  A decoded segment
 * holding '/', NUL or a control character is refused: names never contain
 * them, and accepting "%2F" would let one segment pose as two.
 */
static int split_path(struct api_request *req)
{
	const char *p = req->path;
	if (*p != '/')
		return -1;
	while (*p) {
		p++; /* the '/' */
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0 && !end)
			break; /* trailing slash */
		if (req->segment_count == API_MAX_SEGMENTS)
			return -1;
		char *seg = malloc(len + 1);
		size_t n;
		if (!seg || util_percent_decode(p, len, false, seg, len + 1, &n) != 0 ||
		    memchr(seg, '/', n)) {
			free(seg);
			return -1;
		}
		req->segments[req->segment_count++] = seg;
		p += len;
	}
	return 0;
}

static bool pattern_matches(const char *pattern, const struct api_request *req)
{
	int i = 0;
	const char *p = pattern;
	while (*p) {
		p++;
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (i >= req->segment_count)
			return false;
		if (!(len == 1 && *p == '*')) {
			if (strlen(req->segments[i]) != len || strncmp(req->segments[i], p, len) != 0)
				return false;
		}
		i++;
		p += len;
	}
	return i == req->segment_count;
}

/* The token of "Authorization: Bearer <token>", or NULL. */
static const char *bearer_token(const struct api_request *req)
{
	const char *h = req->authorization;
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return *h ? h : NULL;
}

static bool token_matches(const char *presented, const char *configured)
{
	if (!configured || !presented)
		return false;
	return util_secure_equal(presented, strlen(presented), configured, strlen(configured));
}

/* Where the request came from, seen through EE_TRUSTED_PROXIES. */
static void request_client(const struct api_context *ctx, char out[NETADDR_TEXT_MAX])
{
	netaddr_client(&ctx->cfg->trusted_proxies, ctx->req->remote_addr, ctx->req->forwarded_for,
	               out, NETADDR_TEXT_MAX);
}

/*
 * 0 when the client may present a token.  A client that has used up its
 * failures gets 429 for the rest of its window even with a right token:
 * otherwise a guesser would only learn its hits more slowly, not fewer.
 */
static int auth_allowed(struct api_context *ctx)
{
	const struct ee_config *cfg = ctx->cfg;
	if (!ctx->auth_limit || !ctx->req->authorization)
		return 0;
	char client[NETADDR_TEXT_MAX];
	request_client(ctx, client);
	int retry_after;
	if (!ratelimit_exceeded(ctx->auth_limit, client, time_now_ms() / 1000, cfg->auth_fail_limit,
	                        cfg->auth_fail_window_sec, &retry_after))
		return 0;
	char value[16];
	snprintf(value, sizeof(value), "%d", retry_after);
	api_add_header(ctx, "Retry-After", value);
	api_respond_error(ctx, 429, "too_many_auth_failures");
	return -1;
}

void api_respond_auth_failed(struct api_context *ctx)
{
	const struct ee_config *cfg = ctx->cfg;
	/* No token is not a guess; only a presented one counts. */
	if (ctx->auth_limit && ctx->req->authorization) {
		char client[NETADDR_TEXT_MAX];
		request_client(ctx, client);
		int count = ratelimit_hit(ctx->auth_limit, client, time_now_ms() / 1000,
		                          cfg->auth_fail_window_sec);
		if (count == cfg->auth_fail_limit)
			log_warn("client %s sent %d wrong tokens within %d s; its tokens are refused "
			         "until the window ends",
			         client, count, cfg->auth_fail_window_sec);
	}
	api_add_header(ctx, "WWW-Authenticate", "Bearer");
	api_respond_error(ctx, 401, "unauthorized");
}

/* 0 when the caller may proceed; otherwise the answer has been written. */
static int check_auth(struct api_context *ctx, enum auth_class auth)
{
	const struct ee_config *cfg = ctx->cfg;
	const char *own = NULL;
	switch (auth) {
	case AUTH_PUBLIC:
		return 0;
	case AUTH_NODE:
		/* Which node a token belongs to is in the body; without any token,
		 * or with nothing configured to check it against, answer now. */
		if (bearer_token(ctx->req))
			return auth_allowed(ctx);
		if (!cfg->admin_token)
			api_respond_error(ctx, 503, "auth_not_configured");
		else
			api_respond_auth_failed(ctx);
		return -1;
	case AUTH_ADMIN: own = NULL; break;
	case AUTH_UPTIME: own = cfg->uptime_token; break;
	case AUTH_LAUNCHER: own = cfg->launcher_token; break;
	}
	/* Fail closed: with no token configured nobody is let in. */
	if (!cfg->admin_token && !own) {
		api_respond_error(ctx, 503, "auth_not_configured");
		return -1;
	}
	if (auth_allowed(ctx) != 0)
		return -1;
	const char *token = bearer_token(ctx->req);
	/* Both comparisons always run, so timing does not tell which token was close. */
	bool admin_ok = token_matches(token, cfg->admin_token);
	bool own_ok = token_matches(token, own);
	if (admin_ok || own_ok)
		return 0;
	api_respond_auth_failed(ctx);
	return -1;
}

static bool media_type_is(const char *ct, size_t n, const char *type)
{
	return n == strlen(type) && strncasecmp(ct, type, n) == 0;
}

/*
 * JSON bodies come as application/json.  A missing type is also accepted
 * (older clients send none) and so is form-urlencoded, because Caddy's
 * FastCGI transport reports a missing type as that; the body must still be
 * strict JSON.  Anything else is refused.
 */
static bool content_type_acceptable(const char *ct)
{
	if (!ct || !*ct)
		return true;
	size_t n = strcspn(ct, ";");
	while (n > 0 && ct[n - 1] == ' ')
		n--;
	return media_type_is(ct, n, "application/json") ||
	       media_type_is(ct, n, "application/x-www-form-urlencoded");
}

/* A money-moving request as one job of a group commit (commit.h). */
struct money_job {
	struct commit_job job;
	struct api_context *ctx;
	const struct money_op *op;
	void *args;
	const char *key;
	char request_hash[65];
	struct json_object *result;
	bool replayed;
	int replay_status;
};

/*
 * Runs on the thread leading the batch, with its connection; the request's
 * own thread waits meanwhile, so its context is used as if it ran itself.
 */
static int money_job_run(void *arg, struct ee_db *db, struct ee_error *err)
{
	struct money_job *m = arg;
	if (m->key) {
		bool found = false;
		if (idempotency_lookup(db, m->op->scope, m->key, m->request_hash, &found,
		                       &m->replay_status, &m->ctx->res->body, err) != 0)
			return -1;
		if (found) {
			m->replayed = true;
			return 0;
		}
	}
	struct api_context on_db = *m->ctx;
	on_db.db = db;
	if (m->op->apply(&on_db, m->args, &m->result, err) != 0)
		return -1;
	size_t len;
	const char *text = json_text(m->result, &len);
	if (m->key &&
	    idempotency_store(db, m->op->scope, m->key, m->request_hash, 200, text, err) != 0)
		return -1;
	return 0;
}

/* The same key with another body is a different request, not a retry. */
static int request_hash(struct api_context *ctx, char out[65])
{
	struct buf material;
	buf_init(&material);
	buf_printf(&material, "%s %s\n", ctx->req->method, ctx->req->path);
	buf_append(&material, ctx->req->body ? ctx->req->body : "", ctx->req->body_len);
	int rc = material.failed ? -1 : 0;
	if (rc == 0)
		util_sha256_hex(material.data, material.len, out);
	buf_free(&material);
	return rc;
}

static void run_money_op(struct api_context *ctx, const struct money_op *op)
{
	struct ee_error *err = &ctx->err;
	struct money_job m = {.ctx = ctx, .op = op, .key = ctx->req->idempotency_key};
	if (m.key && !idempotency_key_valid(m.key)) {
		api_respond_error(ctx, 400, "invalid_idempotency_key");
		return;
	}
	m.args = calloc(1, op->args_size);
	if (!m.args) {
		api_respond_error(ctx, 503, "out_of_memory");
		return;
	}
	if (op->parse(ctx, m.args, err) != 0) {
		api_respond_ee_error(ctx, err);
		goto out;
	}
	struct ee_db *db = api_db(ctx);
	if (!db)
		goto out;
	if (m.key && request_hash(ctx, m.request_hash) != 0) {
		api_respond_error(ctx, 503, "out_of_memory");
		goto out;
	}
	m.job.run = money_job_run;
	m.job.arg = &m;
	if (commit_group_run(ctx->commits, db, &m.job) != 0) {
		api_respond_ee_error(ctx, &m.job.err);
		goto out;
	}
	if (m.replayed) {
		ctx->res->status = m.replay_status;
		ctx->res->content_type = "application/json";
		api_add_header(ctx, "Idempotent-Replayed", "true");
		goto out;
	}
	size_t len;
	const char *text = json_text(m.result, &len);
	api_respond_text(ctx, 200, "application/json", text, len);
out:
	json_object_put(m.result);
	free(m.args);
}

void api_handle(struct api_context *ctx)
{
	struct api_request *req = ctx->req;
	if (req->path_too_long) {
		api_respond_error(ctx, 414, "path_too_long");
		return;
	}
	if (split_path(req) != 0) {
		api_respond_error(ctx, 400, "invalid_path");
		return;
	}
	const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
	const struct route *match = NULL;
	bool allows_get = false, allows_post = false;
	for (size_t i = 0; i < ROUTE_COUNT; i++) {
		if (!pattern_matches(routes[i].pattern, req))
			continue;
		allows_get |= strcmp(routes[i].method, "GET") == 0;
		allows_post |= strcmp(routes[i].method, "POST") == 0;
		if (strcmp(routes[i].method, method) == 0) {
			match = &routes[i];
			break;
		}
	}
	if (!match) {
		if (allows_get || allows_post) {
			api_add_header(ctx, "Allow",
			               allows_get && allows_post ? "GET, HEAD, POST"
			               : allows_get          ? "GET, HEAD"
			                                     : "POST");
			api_respond_error(ctx, 405, "method_not_allowed");
		} else {
			api_respond_error(ctx, 404, "not_found");
		}
		return;
	}
	if (check_auth(ctx, match->auth) != 0)
		return;
	if (match->json_body) {
		if (req->body_too_large) {
			api_respond_error(ctx, 413, "body_too_large");
			return;
		}
		if (!content_type_acceptable(req->content_type)) {
			api_respond_error(ctx, 415, "unsupported_media_type");
			return;
		}
		if (json_parse_object(req->body ? req->body : "", req->body_len, &ctx->json,
		                      &ctx->err) != 0) {
			api_respond_ee_error(ctx, &ctx->err);
			return;
		}
	}
	if (match->money)
		run_money_op(ctx, match->money);
	else
		match->handler(ctx);
}
