/* db.c - connections, prepared statements, transactions, migrations; see db.h. */
#include "db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"

/* Generated from sql/schema.sql and sql/migrations/ by the build (GNUmakefile). */
extern const char *const db_migration_sql[];
extern const char *const db_migration_name[];
extern const int db_migration_count;

static const char *const statement_text[DB_STMT_COUNT] = {
#define DB_STMT(id, sql) [id] = sql,
#include "db_sql.h"
#undef DB_STMT
};

struct ee_db {
	sqlite3 *handle;
	sqlite3_stmt *stmts[DB_STMT_COUNT];
	sqlite3_stmt *begin_immediate, *begin_deferred, *commit, *rollback;
	sqlite3_stmt *savepoint, *release, *rollback_to;
	int busy_timeout_ms;
	int64_t busy_since_us; /* when the current wait began (busy_wait's first call) */
	int64_t busy_last_us;  /* busy_wait's latest call */
	int checkpoint_retry_frames; /* after a checkpoint that could not finish */
};

/* Frames in the WAL (about 4 MB of 4 KiB pages, SQLite's default) before a commit checkpoints. */
#define DB_CHECKPOINT_FRAMES 1000
#define DB_CHECKPOINT_WAIT_MS 25
#define DB_CHECKPOINT_RETRY_FRAMES 100

static int64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * The busy handler: retries every 50 us for the first 2 ms, then backs off to
 * 1 ms, until the busy timeout.  SQLite's own handler sleeps 1, 2, 5, 10 ms...,
 * while a write transaction holds the lock for a fraction of a millisecond:
 * with several processes writing, a waiter slept through most of the
 * commits and the writers took turns instead of overlapping one's fsync
 * with another's request (docs/PERFORMANCE.md, "What limits it").
 */
static int busy_wait(void *arg, int count)
{
	struct ee_db *db = arg;
	int64_t now = monotonic_us();
	/* A new wait; the second test in case SQLite ever kept count from an earlier one. */
	if (count == 0 || now - db->busy_last_us > 100000)
		db->busy_since_us = now;
	db->busy_last_us = now;
	int64_t waited = now - db->busy_since_us;
	if (waited >= (int64_t)db->busy_timeout_ms * 1000)
		return 0;
	int64_t pause = waited < 2000 ? 50 : waited < 20000 ? 250 : 1000;
	struct timespec ts = {0, (long)pause * 1000};
	nanosleep(&ts, NULL);
	return 1;
}

/*
 * After each commit (SQLite's wal hook): once the WAL holds
 * DB_CHECKPOINT_FRAMES, one RESTART checkpoint copies it into the database
 * and makes the next writer start the WAL from its beginning.  SQLite's
 * default here is a PASSIVE checkpoint after every commit past the size; with
 * other processes committing meanwhile it seldom copies the whole WAL, so
 * the WAL did not restart and one commit in seven paid a checkpoint (two
 * more fsyncs) until one happened to.  RESTART holds other writers back while
 * it copies and waits (through the busy handler) for the writer in progress
 * and for readers of the old WAL: for DB_CHECKPOINT_WAIT_MS at most, so that
 * a long reader (an audit, a listing) never holds the writers up for long.
 * A checkpoint that could not finish is tried again DB_CHECKPOINT_RETRY_FRAMES
 * later.  The commit has already succeeded, so the hook always answers
 * SQLITE_OK (anything else would fail the COMMIT).
 */
static int checkpoint_after_commit(void *arg, sqlite3 *handle, const char *name, int frames)
{
	struct ee_db *db = arg;
	if (frames < DB_CHECKPOINT_FRAMES || frames < db->checkpoint_retry_frames)
		return SQLITE_OK;
	int timeout = db->busy_timeout_ms;
	if (db->busy_timeout_ms > DB_CHECKPOINT_WAIT_MS)
		db->busy_timeout_ms = DB_CHECKPOINT_WAIT_MS;
	int rc = sqlite3_wal_checkpoint_v2(handle, name, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
	db->busy_timeout_ms = timeout;
	db->checkpoint_retry_frames = rc == SQLITE_OK ? 0 : frames + DB_CHECKPOINT_RETRY_FRAMES;
	return SQLITE_OK;
}

int db_schema_version_latest(void) { return db_migration_count; }

int db_fail(struct ee_db *db, int rc, struct ee_error *err)
{
	int primary = rc & 0xff;
	const char *msg = db && db->handle ? sqlite3_errmsg(db->handle) : sqlite3_errstr(rc);
	switch (primary) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED: {
		/* Under load the lock is contended all the time: a few lines a minute say so. */
		static struct log_limit busy_log = {.burst = 10};
		ee_log_limited(&busy_log, EE_LOG_WARN, "database busy: %s", msg);
		return ee_fail(err, 503, "database_busy");
	}
	case SQLITE_FULL:
		log_error("database full: %s", msg);
		return ee_fail(err, 503, "storage_full");
	case SQLITE_READONLY:
		log_error("database read-only: %s", msg);
		return ee_fail(err, 503, "database_readonly");
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		log_error("database I/O error: %s", msg);
		return ee_fail(err, 503, "storage_error");
	case SQLITE_CONSTRAINT:
		log_warn("database constraint: %s", msg);
		return ee_fail(err, 409, "conflict");
	default:
		log_error("database error %d: %s", rc, msg);
		return ee_fail(err, 500, "database_error");
	}
}

static int exec_sql(struct ee_db *db, const char *sql, struct ee_error *err)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db->handle, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		log_error("sql failed: %s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return db_fail(db, rc, err);
	}
	return 0;
}

static int prepare(struct ee_db *db, const char *sql, sqlite3_stmt **out, struct ee_error *err)
{
	int rc = sqlite3_prepare_v3(db->handle, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
	if (rc != SQLITE_OK)
		return db_fail(db, rc, err);
	return 0;
}

int db_schema_version(struct ee_db *db)
{
	sqlite3_stmt *stmt;
	int version = -1;
	if (sqlite3_prepare_v2(db->handle, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		version = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return version;
}

static int migrate(struct ee_db *db, struct ee_error *err)
{
	int version = db_schema_version(db);
	if (version < 0)
		return db_fail(db, sqlite3_errcode(db->handle), err);
	if (version == db_migration_count)
		return 0;
	if (version > db_migration_count) {
		log_error("database schema version %d is newer than this program's %d", version,
		          db_migration_count);
		return ee_fail(err, 503, "schema_too_new");
	}
	if (db_begin_write(db, err) != 0)
		return -1;
	/* Another process may have migrated while this one waited for the lock. */
	version = db_schema_version(db);
	for (int v = version; v < db_migration_count; v++) {
		log_info("applying database migration %s", db_migration_name[v]);
		if (exec_sql(db, db_migration_sql[v], err) != 0) {
			db_rollback(db);
			return -1;
		}
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
		if (exec_sql(db, pragma, err) != 0) {
			db_rollback(db);
			return -1;
		}
	}
	return db_commit(db, err);
}

/*
 * Switching a fresh database to WAL needs a lock that SQLite does not wait
 * for (the busy handler is not called for it), so two processes opening a
 * new file at once would see SQLITE_BUSY.  Retry for the busy timeout.
 */
static int enable_wal(struct ee_db *db, int busy_timeout_ms, struct ee_error *err)
{
	int64_t waited = 0;
	for (;;) {
		sqlite3_stmt *stmt;
		int rc = sqlite3_prepare_v2(db->handle, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);
		if (rc == SQLITE_OK) {
			rc = sqlite3_step(stmt);
			if (rc == SQLITE_ROW) {
				const char *mode = (const char *)sqlite3_column_text(stmt, 0);
				bool wal = mode && strcmp(mode, "wal") == 0;
				sqlite3_finalize(stmt);
				if (wal)
					return 0;
				log_error("database refused WAL mode (journal_mode is %s)", mode ? mode : "?");
				return ee_fail(err, 503, "database_unavailable");
			}
			sqlite3_finalize(stmt);
		}
		if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
			return db_fail(db, rc, err);
		if (waited >= busy_timeout_ms)
			return db_fail(db, rc, err);
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
		waited += 10;
	}
}

/* Makes the directory holding path, one level, if it does not exist. */
static void ensure_parent_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return;
	char dir[4096];
	size_t n = (size_t)(slash - path);
	if (n >= sizeof(dir))
		return;
	memcpy(dir, path, n);
	dir[n] = '\0';
	if (mkdir(dir, 0750) != 0 && errno != EEXIST)
		log_warn("cannot create directory %s: %s", dir, strerror(errno));
}

/*
 * SQLite keeps memory statistics behind one process-wide mutex, taken on
 * every allocation: with a worker's threads each on its own connection
 * that lock is shared by all of them, for figures nothing here reads.
 * It must be turned off before SQLite starts, hence here, once, before
 * the process's first connection.
 */
static void sqlite_configure(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int db_open(const char *path, const struct ee_db_options *opts, struct ee_db **out,
            struct ee_error *err)
{
	static pthread_once_t configured = PTHREAD_ONCE_INIT;
	pthread_once(&configured, sqlite_configure);
	*out = NULL;
	struct ee_db *db = calloc(1, sizeof(*db));
	if (!db)
		return ee_fail(err, 503, "out_of_memory");
	if (opts->create)
		ensure_parent_dir(path);
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (opts->create ? SQLITE_OPEN_CREATE : 0);
	int rc = sqlite3_open_v2(path, &db->handle, flags, NULL);
	if (rc != SQLITE_OK) {
		log_error("cannot open database %s: %s", path,
		          db->handle ? sqlite3_errmsg(db->handle) : sqlite3_errstr(rc));
		sqlite3_close(db->handle);
		free(db);
		return ee_fail(err, 503, "database_unavailable");
	}
	sqlite3_extended_result_codes(db->handle, 1);
	db_set_busy_timeout(db, opts->busy_timeout_ms);
	sqlite3_wal_hook(db->handle, checkpoint_after_commit, db);

	char pragmas[128];
	snprintf(pragmas, sizeof(pragmas), "PRAGMA synchronous = %s; PRAGMA foreign_keys = ON;",
	         strcmp(opts->synchronous, "NORMAL") == 0 ? "NORMAL" : "FULL");
	if (enable_wal(db, opts->busy_timeout_ms, err) != 0 || exec_sql(db, pragmas, err) != 0 ||
	    prepare(db, "BEGIN IMMEDIATE", &db->begin_immediate, err) != 0 ||
	    prepare(db, "BEGIN", &db->begin_deferred, err) != 0 ||
	    prepare(db, "COMMIT", &db->commit, err) != 0 ||
	    prepare(db, "ROLLBACK", &db->rollback, err) != 0 ||
	    prepare(db, "SAVEPOINT step", &db->savepoint, err) != 0 ||
	    prepare(db, "RELEASE step", &db->release, err) != 0 ||
	    prepare(db, "ROLLBACK TO step", &db->rollback_to, err) != 0 || migrate(db, err) != 0) {
		db_close(db);
		return -1;
	}
	*out = db;
	return 0;
}

void db_close(struct ee_db *db)
{
	if (!db)
		return;
	for (int i = 0; i < DB_STMT_COUNT; i++)
		sqlite3_finalize(db->stmts[i]);
	sqlite3_finalize(db->begin_immediate);
	sqlite3_finalize(db->begin_deferred);
	sqlite3_finalize(db->commit);
	sqlite3_finalize(db->rollback);
	sqlite3_finalize(db->savepoint);
	sqlite3_finalize(db->release);
	sqlite3_finalize(db->rollback_to);
	sqlite3_close(db->handle);
	free(db);
}

sqlite3 *db_handle(struct ee_db *db) { return db->handle; }

sqlite3_stmt *db_stmt(struct ee_db *db, enum db_stmt_id id, struct ee_error *err)
{
	sqlite3_stmt *stmt = db->stmts[id];
	if (!stmt) {
		if (prepare(db, statement_text[id], &db->stmts[id], err) != 0)
			return NULL;
		return db->stmts[id];
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return stmt;
}

static int step_control(struct ee_db *db, sqlite3_stmt *stmt, struct ee_error *err)
{
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, err);
	return 0;
}

int db_begin_write(struct ee_db *db, struct ee_error *err)
{
	/* The busy handler waits up to the busy timeout inside sqlite3_step. */
	int rc = sqlite3_step(db->begin_immediate);
	sqlite3_reset(db->begin_immediate);
	if (rc == SQLITE_DONE)
		return 0;
	return db_fail(db, rc, err);
}

int db_begin_read(struct ee_db *db, struct ee_error *err)
{
	return step_control(db, db->begin_deferred, err);
}

int db_commit(struct ee_db *db, struct ee_error *err)
{
	int rc = sqlite3_step(db->commit);
	sqlite3_reset(db->commit);
	if (rc != SQLITE_DONE) {
		db_fail(db, rc, err);
		db_rollback(db);
		return -1;
	}
	return 0;
}

void db_rollback(struct ee_db *db)
{
	if (sqlite3_get_autocommit(db->handle))
		return; /* SQLite already rolled back (e.g. after SQLITE_FULL) */
	sqlite3_step(db->rollback);
	sqlite3_reset(db->rollback);
}

int db_savepoint(struct ee_db *db, struct ee_error *err)
{
	return step_control(db, db->savepoint, err);
}

int db_release(struct ee_db *db, struct ee_error *err)
{
	return step_control(db, db->release, err);
}

void db_rollback_to(struct ee_db *db)
{
	if (sqlite3_get_autocommit(db->handle))
		return; /* the whole transaction is gone already */
	/* ROLLBACK TO keeps the savepoint open; RELEASE ends it with nothing in it. */
	sqlite3_step(db->rollback_to);
	sqlite3_reset(db->rollback_to);
	sqlite3_step(db->release);
	sqlite3_reset(db->release);
}

bool db_in_transaction(struct ee_db *db) { return !sqlite3_get_autocommit(db->handle); }

bool db_read_only(struct ee_db *db) { return sqlite3_db_readonly(db->handle, "main") == 1; }

void db_set_busy_timeout(struct ee_db *db, int ms)
{
	db->busy_timeout_ms = ms > 0 ? ms : 0;
	sqlite3_busy_handler(db->handle, busy_wait, db);
}

int db_exec_stmt(struct ee_db *db, sqlite3_stmt *stmt, struct ee_error *err)
{
	int rc = sqlite3_step(stmt);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		sqlite3_reset(stmt);
		return db_fail(db, rc, err);
	}
	sqlite3_reset(stmt);
	return 0;
}

void db_bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
	if (text)
		sqlite3_bind_text(stmt, index, text, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(stmt, index);
}

void db_bind_int64(sqlite3_stmt *stmt, int index, int64_t value)
{
	sqlite3_bind_int64(stmt, index, value);
}

void db_bind_optional_int64(sqlite3_stmt *stmt, int index, bool present, int64_t value)
{
	if (present)
		sqlite3_bind_int64(stmt, index, value);
	else
		sqlite3_bind_null(stmt, index);
}

const char *db_column_text(sqlite3_stmt *stmt, int index)
{
	return (const char *)sqlite3_column_text(stmt, index);
}
