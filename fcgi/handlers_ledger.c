/*
 * handlers_ledger.c - the money endpoints: purchase, transfer, usage report,
 * settlement (as money_ops run by router.c), balances and the ledger listing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "jsonutil.h"
#include "timeutil.h"

/*
 * A user account, or a system one ("@mint", "@escrow") so that the ledger
 * can refuse it by name (reserved_account) rather than as malformed.
 */
static bool valid_user_account(const char *s, size_t len)
{
	if (len > 1 && s[0] == '@')
		return util_valid_account(s + 1, len - 1);
	return util_valid_account(s, len);
}

/* Any account that can exist: a user's or one of the two system accounts. */
static bool valid_any_account(const char *s, size_t len)
{
	return util_valid_account(s, len) || (len == 5 && memcmp(s, LEDGER_MINT, 5) == 0) ||
	       (len == 7 && memcmp(s, LEDGER_ESCROW, 7) == 0);
}

/* Reads "amount_usd", falling back to "amount" as the original did. */
static int read_amount(struct api_context *ctx, int64_t *cents, struct ee_error *err)
{
	bool present;
	struct json_object *v = json_get(ctx->json, "amount_usd", &present);
	if (!present)
		v = json_get(ctx->json, "amount", &present);
	return amount_from_json(v, present, cents, err);
}

static int add_balance(struct api_context *ctx, struct json_object *o, const char *account,
                       struct ee_error *err)
{
	struct ledger_balance bal;
	if (ledger_get_balance(ctx->db, account, &bal, err) != 0)
		return -1;
	json_put_int(o, "balance_cents", bal.balance_cents);
	json_put_int(o, "locked_cents", bal.locked_cents);
	return 0;
}

/* POST /v1/credits/purchase {"account_id", "amount_usd"} */
struct purchase_args {
	const char *account;
	int64_t cents;
};

static int purchase_parse(struct api_context *ctx, void *a, struct ee_error *err)
{
	struct purchase_args *args = a;
	if (api_field_identifier(ctx, "account_id", valid_user_account, "missing_account_id",
	                         "invalid_account_id", &args->account, err) != 0)
		return -1;
	return read_amount(ctx, &args->cents, err);
}

static int purchase_apply(struct api_context *ctx, void *a, struct json_object **result,
                          struct ee_error *err)
{
	struct purchase_args *args = a;
	char txn_id[LEDGER_ID_LEN + 1];
	if (ledger_purchase(ctx->db, args->account, args->cents, txn_id, err) != 0)
		return -1;
	struct json_object *o = json_object_new_object();
	json_put_string(o, "account_id", args->account);
	if (add_balance(ctx, o, args->account, err) != 0) {
		json_object_put(o);
		return -1;
	}
	json_put_int(o, "amount_cents", args->cents);
	json_put_string(o, "txn_id", txn_id);
	*result = o;
	return 0;
}

const struct money_op money_purchase = {"credits.purchase", sizeof(struct purchase_args),
                                        purchase_parse, purchase_apply};

/* POST /v1/credits/transfer {"from_account", "to_account", "amount_usd"} */
struct transfer_args {
	const char *from, *to;
	int64_t cents;
};

static int transfer_parse(struct api_context *ctx, void *a, struct ee_error *err)
{
	struct transfer_args *args = a;
	if (api_field_identifier(ctx, "from_account", valid_user_account, "missing_account",
	                         "invalid_account", &args->from, err) != 0 ||
	    api_field_identifier(ctx, "to_account", valid_user_account, "missing_account",
	                         "invalid_account", &args->to, err) != 0)
		return -1;
	return read_amount(ctx, &args->cents, err);
}

static int transfer_apply(struct api_context *ctx, void *a, struct json_object **result,
                          struct ee_error *err)
{
	struct transfer_args *args = a;
	char transfer_id[LEDGER_ID_LEN + 1];
	if (ledger_transfer(ctx->db, args->from, args->to, args->cents, transfer_id, err) != 0)
		return -1;
	struct json_object *o = json_object_new_object();
	json_put_string(o, "transfer_id", transfer_id);
	json_put_string(o, "from_account", args->from);
	json_put_string(o, "to_account", args->to);
	json_put_int(o, "amount_cents", args->cents);
	*result = o;
	return 0;
}

const struct money_op money_transfer = {"credits.transfer", sizeof(struct transfer_args),
                                        transfer_parse, transfer_apply};

/* POST /v1/usage/report {"account_id", "node_id", "period_start", "period_end", "vcpu_hours"} */
struct usage_args {
	const char *account, *node;
	int64_t start, end;
	struct decimal hours;
	char hours_text[72];
};

static int usage_parse(struct api_context *ctx, void *a, struct ee_error *err)
{
	struct usage_args *args = a;
	bool present;
	/* Any of the five missing (or empty) is "missing_fields", as in the original. */
	static const char *const required[] = {"account_id", "node_id", "period_start",
	                                       "period_end", "vcpu_hours"};
	for (int i = 0; i < 5; i++) {
		struct json_object *v = json_get(ctx->json, required[i], &present);
		if (!v || (json_object_is_type(v, json_type_string) &&
		           json_object_get_string_len(v) == 0))
			return ee_fail(err, 400, "missing_fields");
	}
	if (api_field_identifier(ctx, "account_id", valid_user_account, "missing_fields",
	                         "invalid_account_id", &args->account, err) != 0 ||
	    api_field_identifier(ctx, "node_id", util_valid_node_id, "missing_fields",
	                         "invalid_node_id", &args->node, err) != 0 ||
	    api_field_time(ctx, "period_start", true, "missing_fields", &present, &args->start,
	                   err) != 0 ||
	    api_field_time(ctx, "period_end", true, "missing_fields", &present, &args->end,
	                   err) != 0)
		return -1;
	if (args->end <= args->start)
		return ee_fail(err, 400, "invalid_period");
	struct json_object *hours = json_get(ctx->json, "vcpu_hours", &present);
	if (quantity_from_json(hours, &args->hours) != 0)
		return ee_fail(err, 400, "invalid_vcpu_hours");
	const char *text = json_object_is_type(hours, json_type_string)
	                           ? json_object_get_string(hours)
	                           : json_object_to_json_string_ext(hours, JSON_C_TO_STRING_PLAIN);
	snprintf(args->hours_text, sizeof(args->hours_text), "%s", text);
	return 0;
}

static int usage_apply(struct api_context *ctx, void *a, struct json_object **result,
                       struct ee_error *err)
{
	struct usage_args *args = a;
	struct usage_result u;
	if (ledger_report_usage(ctx->db, args->account, args->node, &args->hours, args->hours_text,
	                        args->start, args->end, &u, err) != 0)
		return -1;
	struct json_object *o = json_object_new_object();
	json_put_string(o, "usage_id", u.usage_id);
	json_put_string(o, "lock_id", u.lock_id);
	json_put_int(o, "amount_cents", u.amount_cents);
	json_put_int(o, "price_cents_per_vcpu_hour", u.price_cents_per_vcpu_hour);
	*result = o;
	return 0;
}

const struct money_op money_usage_report = {"usage.report", sizeof(struct usage_args),
                                            usage_parse, usage_apply};

/* POST /v1/settlements/{period}/finalize {"node_id", "period_start", "period_end"} */
struct settlement_args {
	const char *label, *node;
	int64_t start, end;
};

static bool valid_period_label(const char *s, size_t len)
{
	return util_valid_account(s, len) && len <= 64;
}

static int settlement_parse(struct api_context *ctx, void *a, struct ee_error *err)
{
	struct settlement_args *args = a;
	bool present;
	args->label = ctx->req->segments[2];
	if (!valid_period_label(args->label, strlen(args->label)))
		return ee_fail(err, 400, "invalid_period");
	if (api_field_identifier(ctx, "node_id", util_valid_node_id, "missing_fields",
	                         "invalid_node_id", &args->node, err) != 0 ||
	    api_field_time(ctx, "period_start", true, "missing_fields", &present, &args->start,
	                   err) != 0 ||
	    api_field_time(ctx, "period_end", true, "missing_fields", &present, &args->end,
	                   err) != 0)
		return -1;
	if (args->end <= args->start)
		return ee_fail(err, 400, "invalid_period");
	/* Events can still land in an open period; settling it early would pay for them. */
	if (args->end > time_now_ms())
		return ee_fail(err, 409, "period_not_ended");
	return 0;
}

static int settlement_apply(struct api_context *ctx, void *a, struct json_object **result,
                            struct ee_error *err)
{
	struct settlement_args *args = a;
	struct settlement_result r;
	if (ledger_settle(ctx->db, args->label, args->node, args->start, args->end, &r, err) != 0)
		return -1;
	struct json_object *o = json_object_new_object();
	json_put_string(o, "period", args->label);
	json_put_string(o, "node_id", args->node);
	json_put_time(o, "period_start", args->start);
	json_put_time(o, "period_end", args->end);
	json_put_bool(o, "eligible", r.eligible);
	struct json_object *reasons = json_object_new_array();
	for (int i = 0; i < r.reason_count; i++)
		json_object_array_add(reasons, json_object_new_string(r.reasons[i]));
	json_object_object_add(o, "reasons", reasons);
	json_put_int(o, "settled", r.settled);
	json_put_int(o, "failed", r.failed);
	json_put_int(o, "settled_cents", r.settled_cents);
	json_put_int(o, "failed_cents", r.failed_cents);
	*result = o;
	return 0;
}

const struct money_op money_settlement = {"settlements.finalize", sizeof(struct settlement_args),
                                          settlement_parse, settlement_apply};

/*
 * GET /v1/balances/{account}, written without a json-c tree.  Both figures
 * come from one read transaction: one snapshot, and one WAL read lock
 * (two fcntl calls) instead of one per statement.
 */
void handle_balance(struct api_context *ctx)
{
	const char *account = ctx->req->segments[2];
	if (!valid_any_account(account, strlen(account))) {
		api_respond_error(ctx, 400, "invalid_account");
		return;
	}
	struct ee_db *db = api_db(ctx);
	if (!db)
		return;
	struct ledger_balance bal;
	bool own_txn = !db_in_transaction(db);
	if (own_txn && db_begin_read(db, &ctx->err) != 0) {
		api_respond_ee_error(ctx, &ctx->err);
		return;
	}
	int rc = ledger_get_balance(db, account, &bal, &ctx->err);
	if (own_txn)
		db_rollback(db);
	if (rc != 0) {
		api_respond_ee_error(ctx, &ctx->err);
		return;
	}
	struct json_writer w;
	json_write_object_begin(api_begin_json(ctx, 200, &w), NULL);
	json_write_string(&w, "account_id", account);
	json_write_int(&w, "balance_cents", bal.balance_cents);
	json_write_int(&w, "locked_cents", bal.locked_cents);
	json_write_object_end(&w);
}

#define ENTRIES_DEFAULT_LIMIT 100
#define ENTRIES_MAX_LIMIT 1000

static int query_int(const char *query, const char *name, long long def, long long min,
                     long long max, long long *out)
{
	char text[24];
	long n = api_query_param(query, name, text, sizeof(text));
	if (n == API_QUERY_ABSENT) {
		*out = def;
		return 0;
	}
	if (n <= 0 || text[0] < '0' || text[0] > '9')
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* GET /v1/ledger/entries?account=<id>&after=<entry_id>&limit=<n> */
void handle_ledger_entries(struct api_context *ctx)
{
	char account[EE_ACCOUNT_MAX + 2];
	long alen = api_query_param(ctx->req->query, "account", account, sizeof(account));
	bool by_account = alen != API_QUERY_ABSENT;
	long long after, limit;
	if ((by_account && (alen < 0 || !valid_any_account(account, (size_t)alen))) ||
	    query_int(ctx->req->query, "after", 0, 0, INT64_MAX, &after) != 0 ||
	    query_int(ctx->req->query, "limit", ENTRIES_DEFAULT_LIMIT, 1, ENTRIES_MAX_LIMIT,
	              &limit) != 0) {
		api_respond_error(ctx, 400, "invalid_query");
		return;
	}
	struct ee_db *db = api_db(ctx);
	if (!db)
		return;
	sqlite3_stmt *stmt = db_stmt(db, SQL_ENTRIES_PAGE, &ctx->err);
	if (!stmt) {
		api_respond_ee_error(ctx, &ctx->err);
		return;
	}
	db_bind_text(stmt, 1, by_account ? account : NULL);
	db_bind_int64(stmt, 2, after);
	db_bind_int64(stmt, 3, limit);
	struct json_object *entries = json_object_new_array();
	int rc, count = 0;
	int64_t last = 0;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct json_object *e = json_object_new_object();
		last = sqlite3_column_int64(stmt, 0);
		json_put_int(e, "entry_id", last);
		json_put_string(e, "txn_id", db_column_text(stmt, 1));
		json_put_string(e, "account_id", db_column_text(stmt, 2));
		json_put_int(e, "delta_cents", sqlite3_column_int64(stmt, 3));
		json_put_string(e, "reason", db_column_text(stmt, 4));
		json_put_time(e, "created_at", sqlite3_column_int64(stmt, 5));
		json_put_string(e, "kind", db_column_text(stmt, 6));
		json_put_string(e, "ref_type", db_column_text(stmt, 7));
		json_put_string(e, "ref_id", db_column_text(stmt, 8));
		json_object_array_add(entries, e);
		count++;
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		json_object_put(entries);
		db_fail(db, rc, &ctx->err);
		api_respond_ee_error(ctx, &ctx->err);
		return;
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "entries", entries);
	if (count == limit)
		json_put_int(o, "next_after", last);
	else
		json_put_string(o, "next_after", NULL);
	api_respond_json(ctx, 200, o);
	json_object_put(o);
}
