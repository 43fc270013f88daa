/*
 * bench_seed.c - puts an allowed app into a benchmark database, as
 * ee-tunneld would after an agent attested, and optionally a provider node
 * that settlement finds eligible (active, priced, staked, attestation
 * valid, health pass): bench_seed <db> <app> [node].
 */
#include <stdio.h>

#include "db.h"
#include "log.h"
#include "nodes.h"
#include "registry.h"
#include "timeutil.h"

/* 1 USD per vCPU-hour, 100 USD of stake: a usage report of 0.01 vCPU-hours locks 1 cent. */
#define BENCH_NODE_PRICE_CENTS 100
#define BENCH_NODE_STAKE_CENTS 10000

static int seed_node(struct ee_db *db, const char *node, int64_t now, struct ee_error *err)
{
	struct node_registration reg = {
		.node_id = node,
		.has_price = true,
		.price_cents_per_vcpu_hour = BENCH_NODE_PRICE_CENTS,
		.has_stake = true,
		.stake_amount_cents = BENCH_NODE_STAKE_CENTS,
		.stake_tier = "bench",
		.allow_update = true,
	};
	char token[NODE_TOKEN_LEN + 1];
	bool created;
	return nodes_register(db, &reg, token, &created, err) != 0 ||
	               nodes_mark_attestation(db, node, "valid", now, err) != 0 ||
	               nodes_mark_health(db, node, "pass", now, err) != 0
	           ? -1
	           : 0;
}

int main(int argc, char **argv)
{
	ee_log_init("bench_seed", EE_LOG_WARN);
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: bench_seed <db> <app> [node]\n");
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
	    (argc == 4 && seed_node(db, argv[3], now, &err) != 0) || db_commit(db, &err) != 0) {
		fprintf(stderr, "bench_seed: %s\n", err.reason);
		return 1;
	}
	db_close(db);
	return 0;
}
