/*
 * bench_ledger.c - the ledger's commit rate against SQLite's own.
 *
 * On one database file (so the same disk and the same synchronous setting):
 *   raw:      one single-row INSERT per BEGIN IMMEDIATE ... COMMIT, the
 *             physical limit for a durable write on this disk;
 *   transfer: ledger_transfer() in its own BEGIN IMMEDIATE ... COMMIT,
 *             exactly as ee-api runs it (two balance updates, a transaction
 *             row, two entries).
 * Prints commits per second for each, their ratio, and the pages each commit
 * wrote to the WAL (SQLite's SQLITE_DBSTATUS_CACHE_WRITE over the commits).
 *   bench_ledger <dir> <seconds> <FULL|NORMAL>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "ledger.h"
#include "timeutil.h"

/* Pages this connection has written (to the WAL) so far. */
static int pages_written(struct ee_db *db)
{
	int current = 0, highwater = 0;
	sqlite3_db_status(db_handle(db), SQLITE_DBSTATUS_CACHE_WRITE, &current, &highwater, 0);
	return current;
}

static double raw_pages, transfer_pages; /* per commit */

static double raw_rate(struct ee_db *db, int seconds)
{
	sqlite3 *h = db_handle(db);
	sqlite3_exec(h, "CREATE TABLE IF NOT EXISTS bench_raw (id INTEGER PRIMARY KEY, v INTEGER)",
	             NULL, NULL, NULL);
	sqlite3_stmt *ins;
	sqlite3_prepare_v2(h, "INSERT INTO bench_raw (v) VALUES (?1)", -1, &ins, NULL);
	struct ee_error err;
	int pages = pages_written(db);
	int64_t start = time_monotonic_ms(), n = 0;
	while (time_monotonic_ms() - start < seconds * 1000) {
		if (db_begin_write(db, &err) != 0)
			break;
		sqlite3_bind_int64(ins, 1, n);
		sqlite3_step(ins);
		sqlite3_reset(ins);
		if (db_commit(db, &err) != 0)
			break;
		n++;
	}
	sqlite3_finalize(ins);
	raw_pages = n ? (double)(pages_written(db) - pages) / (double)n : 0;
	return (double)n * 1000.0 / (double)(time_monotonic_ms() - start);
}

static double transfer_rate(struct ee_db *db, int seconds)
{
	struct ee_error err;
	char id[LEDGER_ID_LEN + 1];
	db_begin_write(db, &err);
	ledger_purchase(db, "bench-a", EE_MAX_CENTS / 4, id, &err);
	db_commit(db, &err);
	int pages = pages_written(db);
	int64_t start = time_monotonic_ms(), n = 0;
	while (time_monotonic_ms() - start < seconds * 1000) {
		if (db_begin_write(db, &err) != 0)
			break;
		if (ledger_transfer(db, n % 2 ? "bench-b" : "bench-a", n % 2 ? "bench-a" : "bench-b", 1,
		                    id, &err) != 0) {
			fprintf(stderr, "transfer failed: %s\n", err.reason);
			db_rollback(db);
			break;
		}
		if (db_commit(db, &err) != 0)
			break;
		n++;
	}
	transfer_pages = n ? (double)(pages_written(db) - pages) / (double)n : 0;
	return (double)n * 1000.0 / (double)(time_monotonic_ms() - start);
}

int main(int argc, char **argv)
{
	ee_log_init("bench_ledger", EE_LOG_WARN);
	if (argc != 4) {
		fprintf(stderr, "usage: bench_ledger <dir> <seconds> <FULL|NORMAL>\n");
		return 2;
	}
	char path[512];
	snprintf(path, sizeof(path), "%s/bench-ledger.db", argv[1]);
	struct ee_db_options opts = {5000, argv[3], true};
	struct ee_db *db;
	struct ee_error err;
	if (db_open(path, &opts, &db, &err) != 0) {
		fprintf(stderr, "cannot open %s: %s\n", path, err.reason);
		return 1;
	}
	int seconds = atoi(argv[2]);
	double raw = raw_rate(db, seconds);
	double transfers = transfer_rate(db, seconds);
	int ok = ledger_check_invariants(db, &err) == 0;
	printf("sqlite_raw_commits_per_s %.0f\nledger_transfers_per_s %.0f\nratio %.2f\n"
	       "raw_pages_per_commit %.2f\ntransfer_pages_per_commit %.2f\ninvariants %s\n",
	       raw, transfers, transfers / raw, raw_pages, transfer_pages, ok ? "ok" : err.reason);
	db_close(db);
	return ok ? 0 : 1;
}
