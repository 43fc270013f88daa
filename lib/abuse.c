/* abuse.c - filing and deciding abuse reports; see abuse.h. */
#include "abuse.h"

#include <string.h>

#include "timeutil.h"
#include "util.h"

int abuse_file(struct ee_db *db, const char *node_id, bool has_start, int64_t period_start,
               bool has_end, int64_t period_end, const char *reported_by, const char *reason,
               char report_id[LEDGER_ID_LEN + 1], struct ee_error *err)
{
	if (has_start && has_end && period_end <= period_start)
		return ee_fail(err, 400, "invalid_period");
	sqlite3_stmt *stmt = db_stmt(db, SQL_NODE_GET, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, node_id);
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc == SQLITE_DONE)
		return ee_fail(err, 404, "node_not_found");
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, err);

	if (util_random_hex(report_id, LEDGER_ID_LEN / 2) != 0)
		return ee_fail(err, 503, "entropy_unavailable");
	stmt = db_stmt(db, SQL_ABUSE_INSERT, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, report_id);
	db_bind_text(stmt, 2, node_id);
	db_bind_optional_int64(stmt, 3, has_start, period_start);
	db_bind_optional_int64(stmt, 4, has_end, period_end);
	db_bind_text(stmt, 5, reported_by);
	db_bind_text(stmt, 6, reason);
	db_bind_int64(stmt, 7, time_now_ms());
	return db_exec_stmt(db, stmt, err);
}

int abuse_decide(struct ee_db *db, const char *report_id, const char *action,
                 const char *decided_by, const char **status_out, struct ee_error *err)
{
	const char *status;
	if (strcmp(action, "authorize") == 0)
		status = "authorized";
	else if (strcmp(action, "deny") == 0)
		status = "denied";
	else
		return ee_fail(err, 400, "invalid_action");

	sqlite3_stmt *stmt = db_stmt(db, SQL_ABUSE_GET, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, report_id);
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc == SQLITE_DONE)
		return ee_fail(err, 400, "report_not_found");
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, err);

	stmt = db_stmt(db, SQL_ABUSE_DECIDE, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, report_id);
	db_bind_text(stmt, 2, status);
	db_bind_text(stmt, 3, decided_by);
	db_bind_int64(stmt, 4, time_now_ms());
	if (db_exec_stmt(db, stmt, err) != 0)
		return -1;
	*status_out = status;
	return 0;
}
