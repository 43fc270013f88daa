/*
 * db.h - the one door to the SQLite database.
 *
 * Every connection runs in WAL mode with a busy timeout and foreign keys on;
 * every write transaction is BEGIN IMMEDIATE, so two processes never deadlock
 * upgrading a read lock.  All SQL text lives in db_sql.h as prepared
 * statements with bound parameters; modules ask for them by id.  Opening a
 * database applies missing migrations (sql/) under PRAGMA user_version.
 */
#ifndef EE_DB_H
#define EE_DB_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "error.h"

enum db_stmt_id {
#define DB_STMT(id, sql) id,
#include "db_sql.h"
#undef DB_STMT
	DB_STMT_COUNT
};

struct ee_db_options {
	int busy_timeout_ms;
	const char *synchronous; /* "FULL" or "NORMAL" */
	bool create;             /* create the file if missing */
};

struct ee_db;

int db_open(const char *path, const struct ee_db_options *opts, struct ee_db **out,
            struct ee_error *err);
void db_close(struct ee_db *db);
sqlite3 *db_handle(struct ee_db *db);
/* The schema version this program applies, and the version the file has. */
int db_schema_version_latest(void);
int db_schema_version(struct ee_db *db);

/* A prepared statement, reset and with bindings cleared; NULL on failure. */
sqlite3_stmt *db_stmt(struct ee_db *db, enum db_stmt_id id, struct ee_error *err);

/* BEGIN IMMEDIATE: waits up to the busy timeout for another writer, then 503 database_busy. */
int db_begin_write(struct ee_db *db, struct ee_error *err);
int db_begin_read(struct ee_db *db, struct ee_error *err);
int db_commit(struct ee_db *db, struct ee_error *err);
void db_rollback(struct ee_db *db);
bool db_in_transaction(struct ee_db *db);
/*
 * One step of a larger write transaction (fcgi/commit.c): db_savepoint
 * opens it, db_release keeps its changes, db_rollback_to undoes them and
 * closes it.  A step's failure then costs the other steps nothing.  Some
 * errors (SQLITE_FULL, I/O) make SQLite roll back the whole transaction:
 * callers check db_in_transaction after a failed step.
 */
int db_savepoint(struct ee_db *db, struct ee_error *err);
int db_release(struct ee_db *db, struct ee_error *err);
void db_rollback_to(struct ee_db *db);
/*
 * True when SQLite opened the file read-only because it could not open it
 * for writing (permissions, a read-only file system).  Such a handle stays
 * read-only after the fault is fixed: the caller closes it and opens the
 * file again (fcgi/handlers_common.c, api_db).
 */
bool db_read_only(struct ee_db *db);
/* How long this handle waits for another writer (sqlite3_busy_timeout). */
void db_set_busy_timeout(struct ee_db *db, int ms);

/*
 * Maps an SQLite result code to a reason a client can act on:
 * busy/locked -> 503 database_busy, full -> 503 storage_full,
 * read-only -> 503 database_readonly, I/O -> 503 storage_error,
 * constraint -> 409 conflict, anything else -> 500 database_error.
 */
int db_fail(struct ee_db *db, int rc, struct ee_error *err);

/* Steps a statement that returns no rows; maps failures through db_fail. */
int db_exec_stmt(struct ee_db *db, sqlite3_stmt *stmt, struct ee_error *err);

/* Binding helpers: NULL text binds SQL NULL. */
void db_bind_text(sqlite3_stmt *stmt, int index, const char *text);
void db_bind_int64(sqlite3_stmt *stmt, int index, int64_t value);
void db_bind_optional_int64(sqlite3_stmt *stmt, int index, bool present, int64_t value);
/* Column text, or NULL for SQL NULL. */
const char *db_column_text(sqlite3_stmt *stmt, int index);

#endif
