/* nodes.c - provider records, tokens and health/attestation marks; see nodes.h. */
#include "nodes.h"

#include <stdio.h>
#include <string.h>

#include "jsonutil.h"
#include "timeutil.h"
#include "util.h"

int nodes_register(struct ee_db *db, const struct node_registration *reg,
                   char token_out[NODE_TOKEN_LEN + 1], bool *created, struct ee_error *err)
{
	token_out[0] = '\0';
	*created = false;
	sqlite3_stmt *stmt = db_stmt(db, SQL_NODE_GET, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, reg->node_id);
	int rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sqlite3_reset(stmt);
		return db_fail(db, rc, err);
	}
	bool exists = rc == SQLITE_ROW;
	/* The current values, kept where the request does not change them. */
	char status[16] = "active", tier[128] = "", token_hash[65] = "";
	bool has_price = false, has_stake = false, has_tier = false;
	int64_t price = 0, stake = 0;
	if (exists) {
		snprintf(status, sizeof(status), "%s", db_column_text(stmt, 1));
		has_price = sqlite3_column_type(stmt, 2) != SQLITE_NULL;
		price = sqlite3_column_int64(stmt, 2);
		has_tier = sqlite3_column_type(stmt, 3) != SQLITE_NULL;
		if (has_tier)
			snprintf(tier, sizeof(tier), "%s", db_column_text(stmt, 3));
		has_stake = sqlite3_column_type(stmt, 4) != SQLITE_NULL;
		stake = sqlite3_column_int64(stmt, 4);
		if (db_column_text(stmt, 11))
			snprintf(token_hash, sizeof(token_hash), "%s", db_column_text(stmt, 11));
	}
	sqlite3_reset(stmt);
	if (exists && !reg->allow_update)
		return ee_fail(err, 400, "node_exists");

	if (reg->has_price) {
		has_price = true;
		price = reg->price_cents_per_vcpu_hour;
	}
	if (reg->has_stake) {
		has_stake = true;
		stake = reg->stake_amount_cents;
	}
	if (reg->stake_tier) {
		has_tier = true;
		snprintf(tier, sizeof(tier), "%s", reg->stake_tier);
	}
	if (reg->status)
		snprintf(status, sizeof(status), "%s", reg->status);
	if (!exists || reg->rotate_token || token_hash[0] == '\0') {
		if (util_random_hex(token_out, NODE_TOKEN_LEN / 2) != 0)
			return ee_fail(err, 503, "entropy_unavailable");
		util_sha256_hex(token_out, NODE_TOKEN_LEN, token_hash);
	}

	int64_t now = time_now_ms();
	stmt = db_stmt(db, exists ? SQL_NODE_UPDATE : SQL_NODE_INSERT, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, reg->node_id);
	db_bind_text(stmt, 2, status);
	db_bind_optional_int64(stmt, 3, has_price, price);
	db_bind_text(stmt, 4, has_tier ? tier : NULL);
	db_bind_optional_int64(stmt, 5, has_stake, stake);
	db_bind_text(stmt, 6, token_hash);
	db_bind_int64(stmt, 7, now);
	if (db_exec_stmt(db, stmt, err) != 0)
		return -1;
	*created = !exists;
	return 0;
}

int nodes_verify_token(struct ee_db *db, const char *node_id, const char *token, bool *ok,
                       struct ee_error *err)
{
	*ok = false;
	sqlite3_stmt *stmt = db_stmt(db, SQL_NODE_GET, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, node_id);
	int rc = sqlite3_step(stmt);
	char stored[65] = "";
	if (rc == SQLITE_ROW && db_column_text(stmt, 11))
		snprintf(stored, sizeof(stored), "%s", db_column_text(stmt, 11));
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, err);
	if (stored[0] == '\0' || !token || !*token)
		return 0;
	char presented[65];
	util_sha256_hex(token, strlen(token), presented);
	*ok = util_secure_equal(presented, 64, stored, strlen(stored));
	return 0;
}

int nodes_get_json(struct ee_db *db, const char *node_id, struct json_object **out,
                   struct ee_error *err)
{
	*out = NULL;
	sqlite3_stmt *stmt = db_stmt(db, SQL_NODE_GET, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, node_id);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(stmt);
		return ee_fail(err, 404, "node_not_found");
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(stmt);
		return db_fail(db, rc, err);
	}
	struct json_object *o = json_object_new_object();
	json_put_string(o, "node_id", db_column_text(stmt, 0));
	json_put_string(o, "status", db_column_text(stmt, 1));
	if (sqlite3_column_type(stmt, 2) == SQLITE_NULL)
		json_put_string(o, "price_cents_per_vcpu_hour", NULL);
	else
		json_put_int(o, "price_cents_per_vcpu_hour", sqlite3_column_int64(stmt, 2));
	json_put_string(o, "stake_tier", db_column_text(stmt, 3));
	if (sqlite3_column_type(stmt, 4) == SQLITE_NULL)
		json_put_string(o, "stake_amount_cents", NULL);
	else
		json_put_int(o, "stake_amount_cents", sqlite3_column_int64(stmt, 4));
	json_put_string(o, "attestation_status", db_column_text(stmt, 5));
	json_put_string(o, "health_status", db_column_text(stmt, 6));
	json_put_time(o, "last_attested_at", sqlite3_column_int64(stmt, 7));
	json_put_time(o, "last_health_at", sqlite3_column_int64(stmt, 8));
	json_put_time(o, "created_at", sqlite3_column_int64(stmt, 9));
	json_put_time(o, "updated_at", sqlite3_column_int64(stmt, 10));
	sqlite3_reset(stmt);
	*out = o;
	return 0;
}

int nodes_ensure(struct ee_db *db, const char *node_id, struct ee_error *err)
{
	sqlite3_stmt *stmt = db_stmt(db, SQL_NODE_ENSURE, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, node_id);
	db_bind_int64(stmt, 2, time_now_ms());
	return db_exec_stmt(db, stmt, err);
}

static int mark(struct ee_db *db, enum db_stmt_id id, const char *node_id, const char *status,
                int64_t now_ms, struct ee_error *err)
{
	if (nodes_ensure(db, node_id, err) != 0)
		return -1;
	sqlite3_stmt *stmt = db_stmt(db, id, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, node_id);
	db_bind_text(stmt, 2, status);
	db_bind_int64(stmt, 3, now_ms);
	return db_exec_stmt(db, stmt, err);
}

int nodes_mark_attestation(struct ee_db *db, const char *node_id, const char *status,
                           int64_t now_ms, struct ee_error *err)
{
	return mark(db, SQL_NODE_MARK_ATTESTATION, node_id, status, now_ms, err);
}

int nodes_mark_health(struct ee_db *db, const char *node_id, const char *status,
                      int64_t now_ms, struct ee_error *err)
{
	return mark(db, SQL_NODE_MARK_HEALTH, node_id, status, now_ms, err);
}

int nodes_record_event(struct ee_db *db, const char *node_id, const char *event_type,
                       const char *detail, int64_t now_ms, struct ee_error *err)
{
	if (nodes_ensure(db, node_id, err) != 0)
		return -1;
	sqlite3_stmt *stmt = db_stmt(db, SQL_NODE_EVENT_INSERT, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, node_id);
	db_bind_text(stmt, 2, event_type);
	db_bind_int64(stmt, 3, now_ms);
	db_bind_text(stmt, 4, detail);
	return db_exec_stmt(db, stmt, err);
}
