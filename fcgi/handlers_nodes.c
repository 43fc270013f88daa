/* handlers_nodes.c - /v1/nodes/register, /v1/nodes/{node} and the abuse reports. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "abuse.h"
#include "api.h"
#include "jsonutil.h"
#include "nodes.h"

static const char *bearer(const struct api_request *req)
{
	const char *h = req->authorization;
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return *h ? h : NULL;
}

/* A price or stake in dollars: zero allowed, unlike a purchase. */
static int optional_money(struct api_context *ctx, const char *key, const char *fallback,
                          bool *has, int64_t *cents, struct ee_error *err)
{
	bool present;
	struct json_object *v = json_get(ctx->json, key, &present);
	if ((!present || !v) && fallback)
		v = json_get(ctx->json, fallback, &present);
	*has = false;
	if (!present || !v)
		return 0;
	struct decimal d;
	if (quantity_or_zero_from_json(v, &d) != 0 || decimal_to_cents(&d, cents) != 0)
		return ee_fail(err, 400, "invalid_amount");
	*has = true;
	return 0;
}

static int read_bool(struct api_context *ctx, const char *key, bool *out, struct ee_error *err)
{
	switch (json_get_bool(ctx->json, key, out)) {
	case JSON_FIELD_WRONG_TYPE: {
		char reason[64];
		snprintf(reason, sizeof(reason), "invalid_%s", key);
		return ee_fail(err, 400, reason);
	}
	default:
		return 0;
	}
}

/*
 * POST /v1/nodes/register: the admin creates or updates any node; a node
 * holding its own token may update its own price and stake.
 */
void handle_node_register(struct api_context *ctx)
{
	struct ee_error *err = &ctx->err;
	struct node_registration reg = {0};
	bool allow_update = false, rotate = false;
	const char *status = NULL;
	if (api_field_identifier(ctx, "node_id", util_valid_node_id, "missing_node_id",
	                         "invalid_node_id", &reg.node_id, err) != 0 ||
	    optional_money(ctx, "price_usd_per_vcpu_hour", "price_usd", &reg.has_price,
	                   &reg.price_cents_per_vcpu_hour, err) != 0 ||
	    optional_money(ctx, "stake_amount_usd", NULL, &reg.has_stake, &reg.stake_amount_cents,
	                   err) != 0 ||
	    api_field_text(ctx, "stake_tier", 64, "invalid_stake_tier", &reg.stake_tier, err) != 0 ||
	    api_field_text(ctx, "status", 16, "invalid_status", &status, err) != 0 ||
	    read_bool(ctx, "allow_update", &allow_update, err) != 0 ||
	    read_bool(ctx, "rotate_token", &rotate, err) != 0) {
		api_respond_ee_error(ctx, err);
		return;
	}
	if (status && strcmp(status, "active") != 0 && strcmp(status, "inactive") != 0) {
		api_respond_error(ctx, 400, "invalid_status");
		return;
	}

	const char *token = bearer(ctx->req);
	const char *admin = ctx->cfg->admin_token;
	bool is_admin = admin && token &&
	                util_secure_equal(token, strlen(token), admin, strlen(admin));
	struct ee_db *db = api_db(ctx);
	if (!db)
		return;
	if (!is_admin) {
		bool node_ok = false;
		if (nodes_verify_token(db, reg.node_id, token, &node_ok, err) != 0) {
			api_respond_ee_error(ctx, err);
			return;
		}
		if (!node_ok) {
			if (!admin)
				api_respond_error(ctx, 503, "auth_not_configured");
			else
				api_respond_auth_failed(ctx);
			return;
		}
		/* A node may change its offer, not its standing or its credentials. */
		if (status || rotate) {
			api_respond_error(ctx, 403, "admin_only_field");
			return;
		}
		allow_update = true;
	}
	reg.allow_update = allow_update;
	reg.rotate_token = rotate;
	reg.status = status;

	char node_token[NODE_TOKEN_LEN + 1];
	bool created;
	struct json_object *node = NULL;
	if (db_begin_write(db, err) != 0 ||
	    (nodes_register(db, &reg, node_token, &created, err) != 0 ||
	     nodes_get_json(db, reg.node_id, &node, err) != 0 || db_commit(db, err) != 0)) {
		if (db_in_transaction(db))
			db_rollback(db);
		json_object_put(node);
		api_respond_ee_error(ctx, err);
		return;
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "node", node);
	json_put_string(o, "node_token", node_token[0] ? node_token : NULL);
	json_put_bool(o, "created", created);
	api_respond_json(ctx, 200, o);
	json_object_put(o);
	/* The token was sent once; do not leave it in this worker's memory. */
	memset(node_token, 0, sizeof(node_token));
}

/* GET /v1/nodes/{node} */
void handle_node_get(struct api_context *ctx)
{
	const char *node_id = ctx->req->segments[2];
	if (!util_valid_node_id(node_id, strlen(node_id))) {
		api_respond_error(ctx, 400, "invalid_node_id");
		return;
	}
	struct ee_db *db = api_db(ctx);
	if (!db)
		return;
	struct json_object *node;
	if (nodes_get_json(db, node_id, &node, &ctx->err) != 0) {
		api_respond_ee_error(ctx, &ctx->err);
		return;
	}
	api_respond_json(ctx, 200, node);
	json_object_put(node);
}

/* POST /v1/abuse/reports {"node_id", "period_start"?, "period_end"?, "reason"?, "reported_by"?} */
void handle_abuse_file(struct api_context *ctx)
{
	struct ee_error *err = &ctx->err;
	const char *node_id, *reason, *reported_by;
	bool has_start, has_end;
	int64_t start = 0, end = 0;
	if (api_field_identifier(ctx, "node_id", util_valid_node_id, "missing_node_id",
	                         "invalid_node_id", &node_id, err) != 0 ||
	    api_field_time(ctx, "period_start", false, NULL, &has_start, &start, err) != 0 ||
	    api_field_time(ctx, "period_end", false, NULL, &has_end, &end, err) != 0 ||
	    api_field_text(ctx, "reason", 1000, "invalid_reason", &reason, err) != 0 ||
	    api_field_text(ctx, "reported_by", 128, "invalid_reported_by", &reported_by, err) != 0) {
		api_respond_ee_error(ctx, err);
		return;
	}
	struct ee_db *db = api_db(ctx);
	if (!db)
		return;
	char report_id[LEDGER_ID_LEN + 1];
	if (db_begin_write(db, err) != 0 ||
	    abuse_file(db, node_id, has_start, start, has_end, end,
	               reported_by ? reported_by : "launcher", reason, report_id, err) != 0 ||
	    db_commit(db, err) != 0) {
		if (db_in_transaction(db))
			db_rollback(db);
		api_respond_ee_error(ctx, err);
		return;
	}
	struct json_object *o = json_object_new_object();
	json_put_string(o, "report_id", report_id);
	json_put_string(o, "status", "pending");
	api_respond_json(ctx, 200, o);
	json_object_put(o);
}

static bool valid_report_id(const char *s, size_t len)
{
	return util_valid_node_id(s, len) && len <= 64;
}

/* POST /v1/abuse/reports/{id}/authorize {"action": "authorize"|"deny", "authorized_by"?} */
void handle_abuse_decide(struct api_context *ctx)
{
	struct ee_error *err = &ctx->err;
	const char *report_id = ctx->req->segments[3];
	if (!valid_report_id(report_id, strlen(report_id))) {
		api_respond_error(ctx, 400, "invalid_report_id");
		return;
	}
	const char *action, *by;
	if (api_field_text(ctx, "action", 16, "invalid_action", &action, err) != 0 ||
	    api_field_text(ctx, "authorized_by", 128, "invalid_authorized_by", &by, err) != 0) {
		api_respond_ee_error(ctx, err);
		return;
	}
	struct ee_db *db = api_db(ctx);
	if (!db)
		return;
	const char *status;
	if (db_begin_write(db, err) != 0 ||
	    abuse_decide(db, report_id, action ? action : "authorize", by ? by : "owner", &status,
	                 err) != 0 ||
	    db_commit(db, err) != 0) {
		if (db_in_transaction(db))
			db_rollback(db);
		api_respond_ee_error(ctx, err);
		return;
	}
	struct json_object *o = json_object_new_object();
	json_put_string(o, "report_id", report_id);
	json_put_string(o, "status", status);
	api_respond_json(ctx, 200, o);
	json_object_put(o);
}
