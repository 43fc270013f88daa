/* idempotency.c - storing and replaying first answers; see idempotency.h. */
#include "idempotency.h"

#include <string.h>

#include "timeutil.h"

bool idempotency_key_valid(const char *key)
{
	return key && util_valid_printable(key, strlen(key), IDEMPOTENCY_KEY_MAX);
}

int idempotency_lookup(struct ee_db *db, const char *scope, const char *key,
                       const char *request_hash, bool *found, int *status,
                       struct buf *response, struct ee_error *err)
{
	*found = false;
	sqlite3_stmt *stmt = db_stmt(db, SQL_IDEMPOTENCY_GET, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, scope);
	db_bind_text(stmt, 2, key);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(stmt);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(stmt);
		return db_fail(db, rc, err);
	}
	const char *stored_hash = db_column_text(stmt, 0);
	bool same = stored_hash && strcmp(stored_hash, request_hash) == 0;
	if (same) {
		*found = true;
		*status = sqlite3_column_int(stmt, 1);
		buf_reset(response);
		buf_puts(response, db_column_text(stmt, 2) ? db_column_text(stmt, 2) : "");
	}
	sqlite3_reset(stmt);
	if (!same)
		return ee_fail(err, 422, "idempotency_key_reused");
	if (response->failed)
		return ee_fail(err, 503, "out_of_memory");
	return 0;
}

int idempotency_store(struct ee_db *db, const char *scope, const char *key,
                      const char *request_hash, int status, const char *response,
                      struct ee_error *err)
{
	sqlite3_stmt *stmt = db_stmt(db, SQL_IDEMPOTENCY_INSERT, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, scope);
	db_bind_text(stmt, 2, key);
	db_bind_text(stmt, 3, request_hash);
	db_bind_int64(stmt, 4, status);
	db_bind_text(stmt, 5, response);
	db_bind_int64(stmt, 6, time_now_ms());
	return db_exec_stmt(db, stmt, err);
}
