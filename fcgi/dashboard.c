/*
 * dashboard.c - GET /dashboard: apps, nodes and balances as one HTML page.
 *
 * App names, repositories and node ids come from agents and operators, so
 * every value is HTML-escaped, and the Content-Security-Policy forbids all
 * scripts: even a missed escape could not run code.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "jsonutil.h"
#include "timeutil.h"

#define DASHBOARD_ROWS 500

static const char csp[] = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "
                          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

static void cell(struct buf *b, const char *text)
{
	buf_puts(b, "<td>");
	buf_append_html(b, text ? text : "");
	buf_puts(b, "</td>");
}

static void cell_json(struct buf *b, struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	json_object_object_get_ex(o, key, &v);
	if (!v)
		cell(b, "-");
	else if (json_object_is_type(v, json_type_boolean))
		cell(b, json_object_get_boolean(v) ? "yes" : "no");
	else
		cell(b, json_object_get_string(v));
}

static void cell_cents(struct buf *b, int64_t cents)
{
	char text[48];
	int64_t abs = cents < 0 ? -cents : cents;
	snprintf(text, sizeof(text), "%s$%lld.%02lld", cents < 0 ? "-" : "", (long long)(abs / 100),
	         (long long)(abs % 100));
	cell(b, text);
}

static void cell_time(struct buf *b, sqlite3_stmt *stmt, int col)
{
	if (sqlite3_column_type(stmt, col) == SQLITE_NULL) {
		cell(b, "-");
		return;
	}
	char text[EE_RFC3339_MAX];
	time_format_rfc3339(sqlite3_column_int64(stmt, col), text);
	cell(b, text);
}

static int apps_section(struct api_context *ctx, struct buf *b)
{
	struct json_object *apps;
	if (registry_list_apps(ctx->db, &ctx->policy, time_now_ms(), &apps, &ctx->err) != 0)
		return -1;
	size_t n = json_object_array_length(apps);
	buf_printf(b, "<h2>Apps (%zu)</h2>\n<table><thead><tr><th>App</th><th>Repo</th>"
	              "<th>Release</th><th>Network</th><th>Registration</th><th>Attestation</th>"
	              "<th>Health</th><th>Sealed</th><th>Connected</th><th>Agents</th>"
	              "<th>Expires</th><th>Allowed</th></tr></thead><tbody>\n",
	           n);
	static const char *const keys[] = {"app_name", "repo", "release_tag", "network",
	                                   "registration_state", "attestation_status",
	                                   "health_status", "sealed", "ws_connected"};
	for (size_t i = 0; i < n && i < DASHBOARD_ROWS; i++) {
		struct json_object *app = json_object_array_get_idx(apps, i);
		buf_puts(b, "<tr>");
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			cell_json(b, app, keys[k]);
		struct json_object *total = NULL, *allowed = NULL;
		json_object_object_get_ex(app, "agents_total", &total);
		json_object_object_get_ex(app, "agents_allowed", &allowed);
		char agents[48];
		snprintf(agents, sizeof(agents), "%d of %d allowed", json_object_get_int(allowed),
		         json_object_get_int(total));
		cell(b, agents);
		cell_json(b, app, "registration_expires_at");
		cell_json(b, app, "allowed");
		buf_puts(b, "</tr>\n");
	}
	if (n == 0)
		buf_puts(b, "<tr><td colspan=\"12\">No apps registered</td></tr>\n");
	buf_puts(b, "</tbody></table>\n");
	json_object_put(apps);
	return 0;
}

static int nodes_section(struct api_context *ctx, struct buf *b)
{
	sqlite3_stmt *stmt = db_stmt(ctx->db, SQL_NODES_LIST, &ctx->err);
	if (!stmt)
		return -1;
	db_bind_int64(stmt, 1, DASHBOARD_ROWS);
	buf_puts(b, "<h2>Nodes</h2>\n<table><thead><tr><th>Node</th><th>Status</th>"
	            "<th>Price / vCPU-hour</th><th>Stake tier</th><th>Stake</th>"
	            "<th>Attestation</th><th>Health</th><th>Last attested</th>"
	            "<th>Last health</th></tr></thead><tbody>\n");
	int rc, rows = 0;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		buf_puts(b, "<tr>");
		cell(b, db_column_text(stmt, 0));
		cell(b, db_column_text(stmt, 1));
		if (sqlite3_column_type(stmt, 2) == SQLITE_NULL)
			cell(b, "-");
		else
			cell_cents(b, sqlite3_column_int64(stmt, 2));
		cell(b, db_column_text(stmt, 3));
		if (sqlite3_column_type(stmt, 4) == SQLITE_NULL)
			cell(b, "-");
		else
			cell_cents(b, sqlite3_column_int64(stmt, 4));
		cell(b, db_column_text(stmt, 5));
		cell(b, db_column_text(stmt, 6));
		cell_time(b, stmt, 7);
		cell_time(b, stmt, 8);
		buf_puts(b, "</tr>\n");
		rows++;
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return db_fail(ctx->db, rc, &ctx->err);
	if (rows == 0)
		buf_puts(b, "<tr><td colspan=\"9\">No nodes registered</td></tr>\n");
	buf_puts(b, "</tbody></table>\n");
	return 0;
}

static int balances_section(struct api_context *ctx, struct buf *b)
{
	sqlite3_stmt *stmt = db_stmt(ctx->db, SQL_ACCOUNTS_LIST, &ctx->err);
	if (!stmt)
		return -1;
	db_bind_int64(stmt, 1, DASHBOARD_ROWS);
	buf_puts(b, "<h2>Balances</h2>\n<table><thead><tr><th>Account</th><th>Balance</th>"
	            "<th>Locked</th><th>Kind</th></tr></thead><tbody>\n");
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		buf_puts(b, "<tr>");
		cell(b, db_column_text(stmt, 0));
		cell_cents(b, sqlite3_column_int64(stmt, 1));
		cell_cents(b, sqlite3_column_int64(stmt, 3));
		cell(b, sqlite3_column_int(stmt, 2) ? "system" : "user");
		buf_puts(b, "</tr>\n");
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return db_fail(ctx->db, rc, &ctx->err);
	buf_puts(b, "</tbody></table>\n");
	return 0;
}

void handle_dashboard(struct api_context *ctx)
{
	if (!api_db(ctx))
		return;
	struct buf *b = &ctx->res->body;
	buf_reset(b);
	char now[EE_RFC3339_MAX];
	time_format_rfc3339(time_now_ms(), now);
	buf_puts(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	            "<title>easyenclave control plane</title>"
	            "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
	            "table{border-collapse:collapse;width:100%;margin-bottom:32px}"
	            "th,td{border:1px solid #ddd;padding:6px 8px;text-align:left;font-size:14px}"
	            "th{background:#f2f2f2}</style></head><body>\n"
	            "<h1>easyenclave control plane</h1>\n<p>Generated ");
	buf_puts(b, now);
	buf_puts(b, "</p>\n");
	if (db_begin_read(ctx->db, &ctx->err) != 0 || apps_section(ctx, b) != 0 ||
	    nodes_section(ctx, b) != 0 || balances_section(ctx, b) != 0) {
		if (db_in_transaction(ctx->db))
			db_rollback(ctx->db);
		buf_reset(b);
		api_respond_ee_error(ctx, &ctx->err);
		return;
	}
	db_rollback(ctx->db);
	buf_puts(b, "</body></html>\n");
	ctx->res->status = 200;
	ctx->res->content_type = "text/html; charset=utf-8";
	api_add_header(ctx, "Content-Security-Policy", csp);
	api_add_header(ctx, "Referrer-Policy", "no-referrer");
	api_add_header(ctx, "X-Frame-Options", "DENY");
}
