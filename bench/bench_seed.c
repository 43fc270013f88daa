/*
 * bench_seed.c - puts an allowed app into a benchmark database, as
 * ee-tunneld would after an agent attested: bench_seed <db> <app>.
 */
#include <stdio.h>

#include "db.h"
#include "log.h"
#include "registry.h"
#include "timeutil.h"

int main(int argc, char **argv)
{
	ee_log_init("bench_seed", EE_LOG_WARN);
	if (argc != 3) {
		fprintf(stderr, "usage: bench_seed <db> <app>\n");
		return 2;
	}
	struct ee_db_options opts = {5000, "FULL", true};
	struct ee_db *db;
	struct ee_error err;
	struct registry_policy policy = {30, 3, NULL};
	int64_t now = time_now_ms();
	if (db_open(argv[1], &opts, &db, &err) != 0 || db_begin_write(db, &err) != 0 ||
	    registry_register_agent(db, &policy, argv[2], "bench/app", "v1.0.0", "sandbox-1",
	                            "bench-agent", now, &err) != 0 ||
	    registry_mark_attested(db, "bench-agent", "valid", false, now, &err) != 0 ||
	    registry_mark_health(db, "bench-agent", "pass", now, &err) != 0 ||
	    registry_mark_connection(db, "bench-agent", true, "bench-tunnel", now, &err) != 0 ||
	    db_commit(db, &err) != 0) {
		fprintf(stderr, "bench_seed: %s\n", err.reason);
		return 1;
	}
	db_close(db);
	return 0;
}
