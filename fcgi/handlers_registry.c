/*
 * handlers_registry.c - /health, /v1/resolve/{app}, /v1/apps and /v1/apps/{app}.
 *
 * The answers are written straight into the response body (registry.c's
 * JSON writer), not through a json-c tree: resolve is the busiest endpoint.
 */
#include <string.h>

#include "api.h"
#include "jsonutil.h"
#include "timeutil.h"

#define JSON_TEXT(s) s, sizeof(s) - 1

void handle_health(struct api_context *ctx)
{
	api_respond_text(ctx, 200, "application/json", JSON_TEXT("{\"status\":\"ok\"}"));
}

/* The {app} segment; answers 400 itself when it is not a possible app name. */
static const char *app_segment(struct api_context *ctx, int index, bool resolve_style)
{
	const char *app = ctx->req->segments[index];
	if (!util_valid_app_name(app, strlen(app))) {
		if (resolve_style)
			api_respond_text(ctx, 400, "application/json",
			                 JSON_TEXT("{\"allowed\":false,\"reason\":\"invalid_app_name\"}"));
		else
			api_respond_error(ctx, 400, "invalid_app_name");
		return NULL;
	}
	return app;
}

void handle_resolve(struct api_context *ctx)
{
	const char *app = app_segment(ctx, 2, true);
	struct ee_db *db;
	if (!app || !(db = api_db(ctx)))
		return;
	struct json_writer w;
	bool allowed;
	if (registry_write_app_status(db, &ctx->policy, app, time_now_ms(), false,
	                              api_begin_json(ctx, 200, &w), &allowed, &ctx->err) != 0) {
		if (ctx->err.status == 404)
			api_respond_text(ctx, 404, "application/json",
			                 JSON_TEXT("{\"allowed\":false,\"reason\":\"unknown_app\"}"));
		else
			api_respond_ee_error(ctx, &ctx->err);
		return;
	}
	ctx->res->status = allowed ? 200 : 403;
}

void handle_apps_list(struct api_context *ctx)
{
	struct ee_db *db = api_db(ctx);
	if (!db)
		return;
	struct json_writer w;
	json_write_object_begin(api_begin_json(ctx, 200, &w), NULL);
	if (registry_write_apps(db, &ctx->policy, time_now_ms(), &w, "apps", &ctx->err) != 0) {
		api_respond_ee_error(ctx, &ctx->err);
		return;
	}
	json_write_object_end(&w);
}

void handle_app_get(struct api_context *ctx)
{
	const char *app = app_segment(ctx, 2, false);
	struct ee_db *db;
	if (!app || !(db = api_db(ctx)))
		return;
	struct json_writer w;
	bool allowed;
	if (registry_write_app_status(db, &ctx->policy, app, time_now_ms(), true,
	                              api_begin_json(ctx, 200, &w), &allowed, &ctx->err) != 0) {
		api_respond_ee_error(ctx, &ctx->err);
		return;
	}
}
