/*
 * test_db.c - the database door (lib/db.c) on real SQLite files: migrations
 * under PRAGMA user_version (fresh, reopened, too new, raced by two
 * processes), the per-connection pragmas, BEGIN IMMEDIATE waiting for another
 * writer and failing as database_busy when it cannot, the mapping of SQLite
 * codes to reasons, and the append-only triggers on the ledger.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "db.h"
#include "ledger.h"
#include "log.h"
#include "stack.h"
#include "timeutil.h"

static char tmp_dir[512];
static int db_counter;

/* A path for a database file that does not exist yet. */
static void fresh_path(char *out, size_t size)
{
	snprintf(out, size, "%s/db-%d.sqlite", tmp_dir, ++db_counter);
}

static struct ee_db_options options(int busy_timeout_ms)
{
	struct ee_db_options o = {.busy_timeout_ms = busy_timeout_ms, .synchronous = "NORMAL",
	                          .create = true};
	return o;
}

/* One integer from a query on a raw connection; -999 on failure. */
static long long query_int(sqlite3 *handle, const char *sql)
{
	sqlite3_stmt *stmt;
	long long v = -999;
	if (sqlite3_prepare_v2(handle, sql, -1, &stmt, NULL) != SQLITE_OK)
		return v;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

static const char *query_text(sqlite3 *handle, const char *sql, char *out, size_t size)
{
	sqlite3_stmt *stmt;
	snprintf(out, size, "(error)");
	if (sqlite3_prepare_v2(handle, sql, -1, &stmt, NULL) != SQLITE_OK)
		return out;
	if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0))
		snprintf(out, size, "%s", (const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	return out;
}

/* Sets user_version of a file directly, without lib/db.c. */
static int raw_set_user_version(const char *path, int version)
{
	sqlite3 *h = NULL;
	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		sqlite3_close(h);
		return -1;
	}
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
	int rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
	sqlite3_close(h);
	return rc == SQLITE_OK ? 0 : -1;
}

static void test_fresh_and_reopen(void)
{
	char path[600];
	fresh_path(path, sizeof(path));
	struct ee_db_options o = options(5000);
	struct ee_error err;
	struct ee_db *db = NULL;

	test_case("db_open on a fresh file applies the schema to the latest version");
	CHECK(db_schema_version_latest() >= 1);
	CHECK_INT(db_open(path, &o, &db, &err), 0);
	CHECK(db != NULL);
	if (!db)
		return;
	CHECK_INT(db_schema_version(db), db_schema_version_latest());
	sqlite3 *h = db_handle(db);
	CHECK_INT(query_int(h, "SELECT COUNT(*) FROM accounts"), 2);
	CHECK_INT(query_int(h, "SELECT COUNT(*) FROM accounts WHERE account_id IN ('@mint','@escrow')"
	                       " AND system = 1 AND balance_cents = 0"),
	          2);
	CHECK_INT(query_int(h, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN"
	                       " ('accounts','ledger_txns','ledger_entries','nodes','node_events',"
	                       "'usage_reports','abuse_reports','settlements','idempotency_keys',"
	                       "'apps','app_agents')"),
	          11);
	CHECK(!db_in_transaction(db));

	test_case("a connection has journal_mode=wal, foreign_keys=on, its own busy handler");
	char text[64];
	CHECK_STR(query_text(h, "PRAGMA journal_mode", text, sizeof(text)), "wal");
	CHECK_INT(query_int(h, "PRAGMA foreign_keys"), 1);
	/* db.c's handler (waits of 50 us to 1 ms) replaces SQLite's, whose timeout reads 0 */
	CHECK_INT(query_int(h, "PRAGMA busy_timeout"), 0);
	CHECK_INT(query_int(h, "PRAGMA synchronous"), 1); /* NORMAL */

	test_case("foreign keys are enforced");
	int rc = sqlite3_exec(h,
	                      "INSERT INTO node_events (node_id, event_type, occurred_at)"
	                      " VALUES ('no-such-node', 'health_miss', 1)",
	                      NULL, NULL, NULL);
	CHECK_INT(rc & 0xff, SQLITE_CONSTRAINT);

	/* Something to find after reopening, and the schema cookie to compare. */
	CHECK_INT(sqlite3_exec(h,
	                       "INSERT INTO apps (app_name, repo, created_at) VALUES ('keep', 'r', 1)",
	                       NULL, NULL, NULL),
	          SQLITE_OK);
	long long cookie = query_int(h, "PRAGMA schema_version");
	db_close(db);

	test_case("reopening does not re-run migrations");
	db = NULL;
	CHECK_INT(db_open(path, &o, &db, &err), 0);
	if (!db)
		return;
	h = db_handle(db);
	CHECK_INT(db_schema_version(db), db_schema_version_latest());
	CHECK_INT(query_int(h, "PRAGMA schema_version"), cookie);
	CHECK_INT(query_int(h, "SELECT COUNT(*) FROM apps WHERE app_name = 'keep'"), 1);
	CHECK_INT(query_int(h, "SELECT COUNT(*) FROM accounts"), 2);

	test_case("the synchronous option FULL is applied");
	db_close(db);
	struct ee_db_options full = o;
	full.synchronous = "FULL";
	db = NULL;
	CHECK_INT(db_open(path, &full, &db, &err), 0);
	if (db)
		CHECK_INT(query_int(db_handle(db), "PRAGMA synchronous"), 2);
	db_close(db);

	test_case("a database newer than the program is refused: schema_too_new");
	CHECK_INT(raw_set_user_version(path, db_schema_version_latest() + 1), 0);
	db = (struct ee_db *)&err; /* must be reset to NULL */
	ee_error_clear(&err);
	CHECK_INT(db_open(path, &o, &db, &err), -1);
	CHECK(db == NULL);
	CHECK_INT(err.status, 503);
	CHECK_STR(err.reason, "schema_too_new");
	{
		sqlite3 *raw = NULL;
		CHECK_INT(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
		CHECK_INT(query_int(raw, "PRAGMA user_version"), db_schema_version_latest() + 1);
		CHECK_INT(query_int(raw, "SELECT COUNT(*) FROM apps WHERE app_name = 'keep'"), 1);
		sqlite3_close(raw);
	}

	test_case("db_open without create on a missing file: database_unavailable, no file");
	char missing[600];
	fresh_path(missing, sizeof(missing));
	struct ee_db_options nocreate = o;
	nocreate.create = false;
	db = NULL;
	ee_error_clear(&err);
	CHECK_INT(db_open(missing, &nocreate, &db, &err), -1);
	CHECK(db == NULL);
	CHECK_INT(err.status, 503);
	CHECK_STR(err.reason, "database_unavailable");
	CHECK(access(missing, F_OK) != 0);

	test_case("db_open on a file that is not a database fails cleanly");
	char junk[600];
	fresh_path(junk, sizeof(junk));
	FILE *f = fopen(junk, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("this is not an sqlite database, but it is long enough to have a header...\n",
		      f);
		fclose(f);
	}
	db = NULL;
	ee_error_clear(&err);
	CHECK_INT(db_open(junk, &o, &db, &err), -1);
	CHECK(db == NULL);
	CHECK(err.reason[0] != '\0');
}

/* Opens path in n processes released at the same moment; returns how many succeeded. */
static int race_open(const char *path, int n)
{
	int release[2];
	if (pipe(release) != 0)
		return -1;
	fflush(NULL);
	pid_t pids[16];
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(release[1]);
			char c;
			/* Blocks until the parent closes its end: every child starts together. */
			if (read(release[0], &c, 1) < 0)
				_exit(2);
			struct ee_db_options o = options(10000);
			struct ee_db *db = NULL;
			struct ee_error err;
			int rc = db_open(path, &o, &db, &err);
			if (rc != 0)
				fprintf(stderr, "child %d: db_open failed: %s\n", i, err.reason);
			else if (db_schema_version(db) != db_schema_version_latest())
				rc = -1;
			db_close(db);
			_exit(rc == 0 ? 0 : 1);
		}
	}
	close(release[0]);
	close(release[1]);
	int ok = 0;
	for (int i = 0; i < n; i++) {
		int status = 0;
		if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i] && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0)
			ok++;
	}
	return ok;
}

static void check_applied_once(const char *path)
{
	struct ee_db_options o = options(5000);
	struct ee_db *db = NULL;
	struct ee_error err;
	CHECK_INT(db_open(path, &o, &db, &err), 0);
	if (!db)
		return;
	sqlite3 *h = db_handle(db);
	CHECK_INT(db_schema_version(db), db_schema_version_latest());
	CHECK_INT(query_int(h, "SELECT COUNT(*) FROM accounts"), 2);
	CHECK_INT(query_int(h, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'accounts'"), 1);
	db_close(db);
}

static void test_concurrent_first_open(void)
{
	test_case("two processes opening a fresh database at once both succeed (100 rounds)");
	int failures = 0;
	for (int round = 0; round < 100; round++) {
		char path[600];
		fresh_path(path, sizeof(path));
		int ok = race_open(path, 2);
		if (ok != 2 && failures++ < 3)
			test_fail(__FILE__, __LINE__, "round %d: %d of 2 opened", round, ok);
		check_applied_once(path);
	}
	CHECK_INT(failures, 0);

	test_case("eight processes opening a fresh database at once all succeed");
	char path[600];
	fresh_path(path, sizeof(path));
	CHECK_INT(race_open(path, 8), 8);
	check_applied_once(path);
}

static void test_write_locks(void)
{
	char path[600];
	fresh_path(path, sizeof(path));
	struct ee_db_options o = options(5000);
	struct ee_error err;
	struct ee_db *first = NULL;
	CHECK_INT(db_open(path, &o, &first, &err), 0);
	if (!first)
		return;

	test_case("db_begin_write waits for another process's writer and then succeeds");
	int ready[2];
	CHECK_INT(pipe(ready), 0);
	fflush(NULL);
	pid_t child = fork();
	if (child == 0) {
		close(ready[0]);
		struct ee_db *db = NULL;
		struct ee_error cerr;
		int rc = db_open(path, &o, &db, &cerr);
		if (rc == 0)
			rc = db_begin_write(db, &cerr);
		if (rc == 0)
			rc = sqlite3_exec(db_handle(db),
			                  "INSERT INTO apps (app_name, repo, created_at)"
			                  " VALUES ('from-child', 'r', 1)",
			                  NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
		char c = rc == 0 ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1)
			rc = -1;
		struct timespec hold = {0, 400 * 1000 * 1000};
		nanosleep(&hold, NULL);
		if (rc == 0)
			rc = db_commit(db, &cerr);
		db_close(db);
		_exit(rc == 0 ? 0 : 1);
	}
	close(ready[1]);
	char c = 0;
	CHECK_INT(read(ready[0], &c, 1), 1);
	close(ready[0]);
	CHECK(c == 'y', "(the child could not take the write lock)");
	int64_t start = time_monotonic_ms();
	ee_error_clear(&err);
	CHECK_INT(db_begin_write(first, &err), 0);
	int64_t waited = time_monotonic_ms() - start;
	CHECK(waited >= 200, "(waited only %lld ms)", (long long)waited);
	CHECK(db_in_transaction(first));
	/* The child's committed row is visible to the writer that waited for it. */
	CHECK_INT(query_int(db_handle(first), "SELECT COUNT(*) FROM apps WHERE app_name = 'from-child'"),
	          1);
	CHECK_INT(db_commit(first, &err), 0);
	CHECK(!db_in_transaction(first));
	int status = 0;
	CHECK_INT(waitpid(child, &status, 0), child);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	test_case("with a tiny busy timeout and a held lock: 503 database_busy");
	struct ee_db_options quick = options(10);
	struct ee_db *second = NULL;
	CHECK_INT(db_open(path, &quick, &second, &err), 0);
	if (!second) {
		db_close(first);
		return;
	}
	CHECK_INT(db_begin_write(first, &err), 0);
	ee_error_clear(&err);
	int64_t t0 = time_monotonic_ms();
	CHECK_INT(db_begin_write(second, &err), -1);
	CHECK(time_monotonic_ms() - t0 < 3000);
	CHECK_INT(err.status, 503);
	CHECK_STR(err.reason, "database_busy");
	CHECK(!db_in_transaction(second));

	test_case("the busy handler waits the whole busy timeout before database_busy");
	db_set_busy_timeout(second, 300);
	ee_error_clear(&err);
	t0 = time_monotonic_ms();
	CHECK_INT(db_begin_write(second, &err), -1);
	int64_t busy_waited = time_monotonic_ms() - t0;
	CHECK(busy_waited >= 300 && busy_waited < 3000, "(waited %lld ms)", (long long)busy_waited);
	CHECK_STR(err.reason, "database_busy");
	CHECK(!db_in_transaction(second));

	test_case("readers are not blocked by a writer (WAL)");
	ee_error_clear(&err);
	CHECK_INT(db_begin_read(second, &err), 0);
	CHECK_INT(query_int(db_handle(second), "SELECT COUNT(*) FROM accounts"), 2);
	db_rollback(second);

	test_case("after the writer commits, the other connection can write");
	CHECK_INT(db_commit(first, &err), 0);
	CHECK_INT(db_begin_write(second, &err), 0);
	CHECK_INT(db_commit(second, &err), 0);

	test_case("db_rollback outside a transaction is harmless");
	db_rollback(second);
	CHECK(!db_in_transaction(second));

	db_close(second);
	db_close(first);
}

static void test_fail_mapping(void)
{
	static const struct {
		int rc;
		int status;
		const char *reason;
	} cases[] = {
		{SQLITE_BUSY, 503, "database_busy"},
		{SQLITE_BUSY_SNAPSHOT, 503, "database_busy"},
		{SQLITE_LOCKED, 503, "database_busy"},
		{SQLITE_FULL, 503, "storage_full"},
		{SQLITE_READONLY, 503, "database_readonly"},
		{SQLITE_READONLY_DBMOVED, 503, "database_readonly"},
		{SQLITE_IOERR, 503, "storage_error"},
		{SQLITE_IOERR_FSYNC, 503, "storage_error"},
		{SQLITE_CANTOPEN, 503, "storage_error"},
		{SQLITE_CONSTRAINT, 409, "conflict"},
		{SQLITE_CONSTRAINT_TRIGGER, 409, "conflict"},
		{SQLITE_CONSTRAINT_PRIMARYKEY, 409, "conflict"},
		{SQLITE_CORRUPT, 500, "database_error"},
		{SQLITE_ERROR, 500, "database_error"},
		{SQLITE_MISUSE, 500, "database_error"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("db_fail(%d) -> %d %s", cases[i].rc, cases[i].status, cases[i].reason);
		struct ee_error err;
		ee_error_clear(&err);
		CHECK_INT(db_fail(NULL, cases[i].rc, &err), -1);
		CHECK_INT(err.status, cases[i].status);
		CHECK_STR(err.reason, cases[i].reason);
	}
}

static void test_append_only(void)
{
	char path[600];
	fresh_path(path, sizeof(path));
	struct ee_db_options o = options(5000);
	struct ee_error err;
	struct ee_db *db = NULL;
	CHECK_INT(db_open(path, &o, &db, &err), 0);
	if (!db)
		return;
	sqlite3 *h = db_handle(db);

	test_case("a purchase writes ledger entries");
	char txn[LEDGER_ID_LEN + 1];
	CHECK_INT(db_begin_write(db, &err), 0);
	CHECK_INT(ledger_purchase(db, "alice", 500, txn, &err), 0);
	CHECK_INT(db_commit(db, &err), 0);
	CHECK_INT(query_int(h, "SELECT COUNT(*) FROM ledger_entries"), 2);

	static const struct {
		const char *sql, *message;
	} cases[] = {
		{"UPDATE ledger_entries SET delta_cents = delta_cents * 2", "ledger entries are append-only"},
		{"UPDATE ledger_entries SET reason = 'x' WHERE account_id = 'alice'",
		 "ledger entries are append-only"},
		{"DELETE FROM ledger_entries", "ledger entries are append-only"},
		{"DELETE FROM ledger_entries WHERE account_id = '@mint'", "ledger entries are append-only"},
		{"UPDATE ledger_txns SET kind = 'transfer'", "ledger transactions are append-only"},
		{"DELETE FROM ledger_txns", "ledger transactions are append-only"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("append-only: %s is refused", cases[i].sql);
		char *msg = NULL;
		int rc = sqlite3_exec(h, cases[i].sql, NULL, NULL, &msg);
		CHECK_INT(rc & 0xff, SQLITE_CONSTRAINT);
		CHECK(msg && strstr(msg, cases[i].message), "(message: %s)", msg ? msg : "(none)");
		sqlite3_free(msg);
		CHECK_INT(query_int(h, "SELECT COUNT(*) FROM ledger_entries"), 2);
		CHECK_INT(query_int(h, "SELECT SUM(delta_cents) FROM ledger_entries"), 0);
		CHECK_INT(query_int(h, "SELECT delta_cents FROM ledger_entries WHERE account_id = 'alice'"),
		          500);
		CHECK_INT(ledger_check_invariants(db, &err), 0);
	}

	test_case("append-only inside a write transaction: refused, and the rest can commit");
	CHECK_INT(db_begin_write(db, &err), 0);
	CHECK(sqlite3_exec(h, "DELETE FROM ledger_entries", NULL, NULL, NULL) != SQLITE_OK);
	CHECK(db_in_transaction(db));
	CHECK_INT(ledger_purchase(db, "bob", 100, txn, &err), 0);
	CHECK_INT(db_commit(db, &err), 0);
	CHECK_INT(query_int(h, "SELECT COUNT(*) FROM ledger_entries"), 4);
	CHECK_INT(ledger_check_invariants(db, &err), 0);

	test_case("the schema's CHECKs refuse a negative user balance written directly");
	int rc = sqlite3_exec(h, "UPDATE accounts SET balance_cents = -1 WHERE account_id = 'alice'",
	                      NULL, NULL, NULL);
	CHECK_INT(rc & 0xff, SQLITE_CONSTRAINT);
	rc = sqlite3_exec(h,
	                  "UPDATE accounts SET balance_cents = 9007199254740992 WHERE account_id = 'alice'",
	                  NULL, NULL, NULL);
	CHECK_INT(rc & 0xff, SQLITE_CONSTRAINT);
	CHECK_INT(ledger_check_invariants(db, &err), 0);
	db_close(db);
}

int main(void)
{
	ee_log_init("test_db", EE_LOG_ERROR);
	if (stack_make_dir(tmp_dir, sizeof(tmp_dir), "db") != 0) {
		perror("mkdtemp");
		return 1;
	}
	test_fresh_and_reopen();
	test_concurrent_first_open();
	test_write_locks();
	test_fail_mapping();
	test_append_only();
	if (stack_remove_dir(tmp_dir) != 0)
		fprintf(stderr, "cannot remove %s: %s\n", tmp_dir, strerror(errno));
	return test_finish();
}
