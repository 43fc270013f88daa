/* handlers_registry.c - /health, /v1/resolve/{app}, /v1/apps and /v1/apps/{app}. */
#include <string.h>

#include "api.h"
#include "jsonutil.h"
#include "timeutil.h"

void handle_health(struct api_context *ctx)
{
	static const char ok[] = "{\"status\":\"ok\"}";
	api_respond_text(ctx, 200, "application/json", ok, sizeof(ok) - 1);
}

/* The {app} segment; answers 400 itself when it is not a possible app name. */
static const char *app_segment(struct api_context *ctx, int index, bool resolve_style)
{
	const char *app = ctx->req->segments[index];
	if (!util_valid_app_name(app, strlen(app))) {
		if (resolve_style) {
			struct json_object *o = json_object_new_object();
			json_put_bool(o, "allowed", false);
			json_put_string(o, "reason", "invalid_app_name");
			api_respond_json(ctx, 400, o);
			json_object_put(o);
		} else {
			api_respond_error(ctx, 400, "invalid_app_name");
		}
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
	struct json_object *payload;
	bool allowed;
	if (registry_app_status(db, &ctx->policy, app, time_now_ms(), false, &payload, &allowed,
	                        &ctx->err) != 0) {
		if (ctx->err.status == 404) {
			payload = json_object_new_object();
			json_put_bool(payload, "allowed", false);
			json_put_string(payload, "reason", "unknown_app");
			api_respond_json(ctx, 404, payload);
			json_object_put(payload);
		} else {
			api_respond_ee_error(ctx, &ctx->err);
		}
		return;
	}
	api_respond_json(ctx, allowed ? 200 : 403, payload);
	json_object_put(payload);
}

void handle_apps_list(struct api_context *ctx)
{
	struct ee_db *db = api_db(ctx);
	if (!db)
		return;
	struct json_object *list;
	if (registry_list_apps(db, &ctx->policy, time_now_ms(), &list, &ctx->err) != 0) {
		api_respond_ee_error(ctx, &ctx->err);
		return;
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "apps", list);
	api_respond_json(ctx, 200, o);
	json_object_put(o);
}

void handle_app_get(struct api_context *ctx)
{
	const char *app = app_segment(ctx, 2, false);
	struct ee_db *db;
	if (!app || !(db = api_db(ctx)))
		return;
	struct json_object *payload;
	bool allowed;
	if (registry_app_status(db, &ctx->policy, app, time_now_ms(), true, &payload, &allowed,
	                        &ctx->err) != 0) {
		api_respond_ee_error(ctx, &ctx->err);
		return;
	}
	api_respond_json(ctx, 200, payload);
	json_object_put(payload);
}
