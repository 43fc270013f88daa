/*
 * test_ledger.c - the double-entry ledger (lib/ledger.c) on fresh SQLite
 * files: purchases, transfers, usage locks into @escrow, and settlement with
 * every reason a period fails.  Each movement runs inside
 * db_begin_write/db_commit (db_rollback on failure) exactly as ee-api does,
 * and ledger_check_invariants must pass after every case.  The last group
 * corrupts a database behind the ledger's back and checks the audit sees it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "abuse.h"
#include "amount.h"
#include "check.h"
#include "db.h"
#include "ledger.h"
#include "log.h"
#include "nodes.h"
#include "stack.h"
#include "timeutil.h"

static char tmp_dir[512];
static int db_counter;

/* The database of the current group, and whether a case is open on it. */
static struct ee_db *db;
static bool case_open;

/* The period most tests settle: 2024-03-01, one hour. */
#define HOUR_MS INT64_C(3600000)
static int64_t P0, P1;

/* The audit must pass; reported in the case that is still open. */
static void check_invariants(void)
{
	struct ee_error err;
	ee_error_clear(&err);
	if (ledger_check_invariants(db, &err) != 0)
		test_fail(__FILE__, __LINE__, "ledger_check_invariants: %s", err.reason);
	CHECK(!db_in_transaction(db), "(a transaction was left open)");
}

/* Starts a case; the previous case of the group ends with the audit. */
static void ledger_case(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ledger_case(const char *fmt, ...)
{
	if (case_open)
		check_invariants();
	char name[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	test_case("%s", name);
	case_open = true;
}

static void group_begin(const char *name)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s-%d.sqlite", tmp_dir, name, ++db_counter);
	struct ee_db_options o = {.busy_timeout_ms = 5000, .synchronous = "NORMAL", .create = true};
	struct ee_error err;
	db = NULL;
	case_open = false;
	if (db_open(path, &o, &db, &err) != 0) {
		test_case("open the database for %s", name);
		test_fail(__FILE__, __LINE__, "db_open %s: %s", path, err.reason);
		test_finish();
		exit(1);
	}
}

static void group_end(bool audit)
{
	if (case_open && audit)
		check_invariants();
	case_open = false;
	db_close(db);
	db = NULL;
}

/* --- movements, each in its own write transaction as ee-api runs them --- */

static char last_reason[EE_REASON_MAX + 16];
static int last_status;

/* Ends the transaction: commit on success, roll back on failure; "" or the reason. */
static const char *finish(int rc, struct ee_error *err)
{
	if (rc == 0 && db_commit(db, err) == 0) {
		last_reason[0] = '\0';
		last_status = 200;
		return last_reason;
	}
	db_rollback(db);
	snprintf(last_reason, sizeof(last_reason), "%s", err->reason[0] ? err->reason : "(none)");
	last_status = err->status;
	return last_reason;
}

static const char *begin(struct ee_error *err)
{
	ee_error_clear(err);
	if (db_begin_write(db, err) != 0) {
		snprintf(last_reason, sizeof(last_reason), "begin: %s", err->reason);
		return last_reason;
	}
	return NULL;
}

static const char *purchase(const char *account, int64_t cents)
{
	struct ee_error err;
	const char *failed = begin(&err);
	if (failed)
		return failed;
	char txn[LEDGER_ID_LEN + 1];
	return finish(ledger_purchase(db, account, cents, txn, &err), &err);
}

static const char *transfer(const char *from, const char *to, int64_t cents)
{
	struct ee_error err;
	const char *failed = begin(&err);
	if (failed)
		return failed;
	char id[LEDGER_ID_LEN + 1];
	return finish(ledger_transfer(db, from, to, cents, id, &err), &err);
}

static const char *report(const char *account, const char *node, const char *hours,
                          int64_t start, int64_t end, struct usage_result *out)
{
	struct decimal q;
	if (decimal_parse(hours, strlen(hours), &q) != 0) {
		snprintf(last_reason, sizeof(last_reason), "(test: bad hours %s)", hours);
		return last_reason;
	}
	struct usage_result ignored;
	if (!out)
		out = &ignored;
	struct ee_error err;
	const char *failed = begin(&err);
	if (failed)
		return failed;
	return finish(ledger_report_usage(db, account, node, &q, hours, start, end, out, &err), &err);
}

static const char *settle(const char *node, int64_t start, int64_t end,
                          struct settlement_result *out)
{
	struct ee_error err;
	memset(out, 0xab, sizeof(*out));
	const char *failed = begin(&err);
	if (failed)
		return failed;
	return finish(ledger_settle(db, "test-period", node, start, end, out, &err), &err);
}

/* A node with the given fields; the rest as nodes_register leaves them. */
static const char *register_node(const char *node, bool has_price, int64_t price, bool has_stake,
                                 int64_t stake, const char *status)
{
	struct node_registration reg = {
		.node_id = node,
		.has_price = has_price,
		.price_cents_per_vcpu_hour = price,
		.has_stake = has_stake,
		.stake_amount_cents = stake,
		.status = status,
	};
	char token[NODE_TOKEN_LEN + 1];
	bool created;
	struct ee_error err;
	const char *failed = begin(&err);
	if (failed)
		return failed;
	return finish(nodes_register(db, &reg, token, &created, &err), &err);
}

static const char *mark(const char *node, const char *attestation, const char *health)
{
	struct ee_error err;
	const char *failed = begin(&err);
	if (failed)
		return failed;
	int64_t now = time_now_ms();
	int rc = 0;
	if (attestation)
		rc = nodes_mark_attestation(db, node, attestation, now, &err);
	if (rc == 0 && health)
		rc = nodes_mark_health(db, node, health, now, &err);
	return finish(rc, &err);
}

static const char *event(const char *node, const char *type, int64_t at)
{
	struct ee_error err;
	const char *failed = begin(&err);
	if (failed)
		return failed;
	return finish(nodes_record_event(db, node, type, "test", at, &err), &err);
}

/* Priced, staked, active, attested and healthy: eligible unless a test spoils it. */
static void good_node(const char *node, int64_t price)
{
	CHECK_STR(register_node(node, true, price, true, 5000, NULL), "");
	CHECK_STR(mark(node, "valid", "pass"), "");
}

static const char *abuse(const char *node, bool has_start, int64_t start, bool has_end,
                         int64_t end, const char *decision)
{
	struct ee_error err;
	const char *failed = begin(&err);
	if (failed)
		return failed;
	char id[LEDGER_ID_LEN + 1];
	int rc = abuse_file(db, node, has_start, start, has_end, end, "launcher", "test", id, &err);
	const char *status = NULL;
	if (rc == 0 && decision)
		rc = abuse_decide(db, id, decision, "owner", &status, &err);
	return finish(rc, &err);
}

/* --- reading state --- */

static long long balance(const char *account)
{
	struct ledger_balance b;
	struct ee_error err;
	if (ledger_get_balance(db, account, &b, &err) != 0)
		return -999999;
	return b.balance_cents;
}

static long long locked(const char *account)
{
	struct ledger_balance b;
	struct ee_error err;
	if (ledger_get_balance(db, account, &b, &err) != 0)
		return -999999;
	return b.locked_cents;
}

static long long count(const char *sql)
{
	sqlite3_stmt *stmt;
	long long v = -1;
	if (sqlite3_prepare_v2(db_handle(db), sql, -1, &stmt, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

static int raw_exec(const char *sql)
{
	return sqlite3_exec(db_handle(db), sql, NULL, NULL, NULL);
}

/* Reasons as one string: "a,b". */
static const char *reasons_of(const struct settlement_result *r)
{
	static char out[256];
	out[0] = '\0';
	if (r->reason_count < 0 || r->reason_count > SETTLE_MAX_REASONS)
		return "(bad reason_count)";
	for (int i = 0; i < r->reason_count; i++) {
		size_t n = strlen(out);
		snprintf(out + n, sizeof(out) - n, "%s%s", i ? "," : "", r->reasons[i]);
	}
	return out;
}

static bool is_hex_id(const char *s)
{
	if (strlen(s) != LEDGER_ID_LEN)
		return false;
	for (const char *p = s; *p; p++) {
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	}
	return true;
}

/* --- the groups --- */

static void test_purchase_and_transfer(void)
{
	group_begin("movements");

	ledger_case("a fresh ledger: every balance zero, audit passes");
	CHECK_INT(balance("@mint"), 0);
	CHECK_INT(balance("@escrow"), 0);
	CHECK_INT(balance("nobody"), 0);
	CHECK_INT(locked("nobody"), 0);

	ledger_case("purchase moves credits from @mint to the account");
	{
		struct ee_error err;
		char txn[LEDGER_ID_LEN + 1] = "";
		CHECK_INT(db_begin_write(db, &err), 0);
		CHECK_INT(ledger_purchase(db, "alice", 1000, txn, &err), 0);
		CHECK_INT(db_commit(db, &err), 0);
		CHECK(is_hex_id(txn), "(txn id %s)", txn);
	}
	CHECK_INT(balance("alice"), 1000);
	CHECK_INT(balance("@mint"), -1000);
	CHECK_INT(balance("@escrow"), 0);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns WHERE kind = 'purchase'"), 1);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_entries"), 2);

	ledger_case("a second purchase adds up");
	CHECK_STR(purchase("alice", 1), "");
	CHECK_INT(balance("alice"), 1001);
	CHECK_INT(balance("@mint"), -1001);

	ledger_case("purchase of 0, negative, or more than EE_MAX_CENTS: invalid_amount");
	long long txns = count("SELECT COUNT(*) FROM ledger_txns");
	CHECK_STR(purchase("alice", 0), "invalid_amount");
	CHECK_INT(last_status, 400);
	CHECK_STR(purchase("alice", -5), "invalid_amount");
	CHECK_STR(purchase("alice", EE_MAX_CENTS + 1), "invalid_amount");
	CHECK_STR(purchase("alice", INT64_MIN), "invalid_amount");
	CHECK_INT(balance("alice"), 1001);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns"), txns);

	ledger_case("purchase into a system account: reserved_account");
	CHECK_STR(purchase("@mint", 100), "reserved_account");
	CHECK_STR(purchase("@escrow", 100), "reserved_account");
	CHECK_STR(purchase("@anything", 100), "reserved_account");
	CHECK_INT(balance("@escrow"), 0);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns"), txns);

	ledger_case("transfer moves between two users");
	CHECK_STR(transfer("alice", "bob", 300), "");
	CHECK_INT(balance("alice"), 701);
	CHECK_INT(balance("bob"), 300);
	CHECK_INT(balance("@mint"), -1001);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_entries WHERE reason = 'transfer_out'"
	                " AND account_id = 'alice' AND delta_cents = -300"),
	          1);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_entries WHERE reason = 'transfer_in'"
	                " AND account_id = 'bob' AND delta_cents = 300"),
	          1);

	ledger_case("insufficient_funds: rolled back, balances and rows unchanged");
	txns = count("SELECT COUNT(*) FROM ledger_txns");
	long long entries = count("SELECT COUNT(*) FROM ledger_entries");
	CHECK_STR(transfer("bob", "alice", 301), "insufficient_funds");
	CHECK_INT(last_status, 400);
	CHECK_INT(balance("alice"), 701);
	CHECK_INT(balance("bob"), 300);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns"), txns);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_entries"), entries);

	ledger_case("insufficient_funds from an account never seen creates nothing");
	long long accounts = count("SELECT COUNT(*) FROM accounts");
	CHECK_STR(transfer("ghost", "alice", 1), "insufficient_funds");
	CHECK_STR(transfer("bob", "newcomer", 301), "insufficient_funds");
	CHECK_INT(count("SELECT COUNT(*) FROM accounts"), accounts);
	CHECK_INT(count("SELECT COUNT(*) FROM accounts WHERE account_id IN ('ghost','newcomer')"), 0);

	ledger_case("transfer of the whole balance leaves exactly zero");
	CHECK_STR(transfer("bob", "carol", 300), "");
	CHECK_INT(balance("bob"), 0);
	CHECK_INT(balance("carol"), 300);
	CHECK_STR(transfer("bob", "carol", 1), "insufficient_funds");

	ledger_case("same_account");
	CHECK_STR(transfer("alice", "alice", 1), "same_account");
	CHECK_INT(last_status, 400);
	CHECK_INT(balance("alice"), 701);

	ledger_case("reserved_account on either side of a transfer");
	CHECK_STR(transfer("alice", "@escrow", 1), "reserved_account");
	CHECK_STR(transfer("alice", "@mint", 1), "reserved_account");
	CHECK_STR(transfer("@mint", "alice", 1), "reserved_account");
	CHECK_STR(transfer("@escrow", "alice", 1), "reserved_account");
	CHECK_INT(balance("@mint"), -1001);
	CHECK_INT(balance("@escrow"), 0);

	ledger_case("transfer of 0, negative, too large: invalid_amount");
	CHECK_STR(transfer("alice", "bob", 0), "invalid_amount");
	CHECK_STR(transfer("alice", "bob", -1), "invalid_amount");
	CHECK_STR(transfer("alice", "bob", EE_MAX_CENTS + 1), "invalid_amount");
	CHECK_INT(balance("alice"), 701);

	ledger_case("the ledger's sum is zero and @mint is the negative of all credits");
	CHECK_INT(count("SELECT SUM(balance_cents) FROM accounts"), 0);
	CHECK_INT(balance("alice") + balance("bob") + balance("carol"), 1001);

	group_end(true);
}

static void test_limits(void)
{
	group_begin("limits");

	ledger_case("a purchase of exactly EE_MAX_CENTS");
	CHECK_STR(purchase("whale", EE_MAX_CENTS), "");
	CHECK_INT(balance("whale"), EE_MAX_CENTS);
	CHECK_INT(balance("@mint"), -EE_MAX_CENTS);

	ledger_case("one more cent to the same account: balance_limit_exceeded");
	long long txns = count("SELECT COUNT(*) FROM ledger_txns");
	CHECK_STR(purchase("whale", 1), "balance_limit_exceeded");
	CHECK_INT(last_status, 400);
	CHECK_INT(balance("whale"), EE_MAX_CENTS);
	CHECK_INT(balance("@mint"), -EE_MAX_CENTS);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns"), txns);

	ledger_case("@mint's own limit: one cent to another account is refused");
	CHECK_STR(purchase("minnow", 1), "balance_limit_exceeded");
	CHECK_INT(balance("minnow"), 0);
	CHECK_INT(count("SELECT COUNT(*) FROM accounts WHERE account_id = 'minnow'"), 0);
	CHECK_INT(balance("@mint"), -EE_MAX_CENTS);

	ledger_case("transfers still work at the limit");
	CHECK_STR(transfer("whale", "minnow", EE_MAX_CENTS), "");
	CHECK_INT(balance("minnow"), EE_MAX_CENTS);
	CHECK_INT(balance("whale"), 0);
	CHECK_STR(transfer("minnow", "whale", 1), "");

	group_end(true);
}

static void test_usage(void)
{
	group_begin("usage");
	struct usage_result u;

	ledger_case("setup: alice buys $100, node-a costs 250 cents per vCPU-hour");
	CHECK_STR(purchase("alice", 10000), "");
	good_node("node-a", 250);

	ledger_case("usage report locks hours x price into @escrow");
	memset(&u, 0, sizeof(u));
	CHECK_STR(report("alice", "node-a", "1.5", P0, P1, &u), "");
	CHECK_INT(u.amount_cents, 375);
	CHECK_INT(u.price_cents_per_vcpu_hour, 250);
	CHECK(is_hex_id(u.usage_id));
	CHECK(is_hex_id(u.lock_id));
	CHECK(strcmp(u.usage_id, u.lock_id) != 0);
	CHECK_INT(balance("alice"), 10000 - 375);
	CHECK_INT(locked("alice"), 375);
	CHECK_INT(balance("@escrow"), 375);
	CHECK_INT(balance("node-a"), 0);
	CHECK_INT(count("SELECT COUNT(*) FROM usage_reports WHERE status = 'locked'"
	                " AND amount_cents = 375 AND vcpu_hours = '1.5'"),
	          1);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns WHERE kind = 'lock'"), 1);

	ledger_case("a second report in another period locks more");
	CHECK_STR(report("alice", "node-a", "2", P1, P1 + HOUR_MS, &u), "");
	CHECK_INT(u.amount_cents, 500);
	CHECK_INT(locked("alice"), 875);
	CHECK_INT(balance("alice"), 10000 - 875);
	CHECK_INT(balance("@escrow"), 875);

	ledger_case("half-up: 0.002 hours x 250 = 0.5 cents -> 1");
	CHECK_STR(report("alice", "node-a", "0.002", P0, P1, &u), "");
	CHECK_INT(u.amount_cents, 1);

	ledger_case("node_price_missing: a node without a price");
	CHECK_STR(register_node("no-price", false, 0, true, 5000, NULL), "");
	long long txns = count("SELECT COUNT(*) FROM ledger_txns");
	long long escrow = balance("@escrow");
	CHECK_STR(report("alice", "no-price", "1", P0, P1, &u), "node_price_missing");
	CHECK_INT(last_status, 400);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns"), txns);
	CHECK_INT(balance("@escrow"), escrow);

	/* docs/API.md: "node_price_missing (unknown node or no price)", as the original. */
	ledger_case("usage for an unknown node: node_price_missing, nothing moves");
	CHECK_STR(report("alice", "no-such-node", "1", P0, P1, &u), "node_price_missing");
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns"), txns);
	CHECK_INT(count("SELECT COUNT(*) FROM nodes WHERE node_id = 'no-such-node'"), 0);

	ledger_case("invalid_amount when hours x price rounds to 0");
	CHECK_STR(register_node("cheap", true, 1, true, 5000, NULL), "");
	CHECK_STR(report("alice", "cheap", "0.4", P0, P1, &u), "invalid_amount");
	CHECK_STR(report("alice", "cheap", "0.4999", P0, P1, &u), "invalid_amount");
	CHECK_STR(report("alice", "node-a", "0.0019", P0, P1, &u), "invalid_amount");
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns"), txns);
	CHECK_STR(report("alice", "cheap", "0.5", P0, P1, &u), "");
	CHECK_INT(u.amount_cents, 1);

	ledger_case("invalid_amount for a node priced at zero");
	CHECK_STR(register_node("free", true, 0, true, 5000, NULL), "");
	txns = count("SELECT COUNT(*) FROM ledger_txns");
	CHECK_STR(report("alice", "free", "10", P0, P1, &u), "invalid_amount");
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns"), txns);

	ledger_case("invalid_amount when hours x price is too large");
	CHECK_STR(report("alice", "node-a", "1e30", P0, P1, &u), "invalid_amount");
	CHECK_STR(report("alice", "node-a", "36028797018963967", P0, P1, &u), "invalid_amount");
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns"), txns);

	ledger_case("insufficient_funds for usage: nothing locked, no usage row");
	long long rows = count("SELECT COUNT(*) FROM usage_reports");
	long long alice = balance("alice");
	CHECK_STR(report("alice", "node-a", "1000", P0, P1, &u), "insufficient_funds");
	CHECK_INT(balance("alice"), alice);
	CHECK_INT(count("SELECT COUNT(*) FROM usage_reports"), rows);
	CHECK_STR(report("pauper", "node-a", "1", P0, P1, &u), "insufficient_funds");
	CHECK_INT(count("SELECT COUNT(*) FROM accounts WHERE account_id = 'pauper'"), 0);

	ledger_case("usage billed to a system account: reserved_account");
	CHECK_STR(report("@mint", "node-a", "1", P0, P1, &u), "reserved_account");
	CHECK_STR(report("@escrow", "node-a", "1", P0, P1, &u), "reserved_account");

	ledger_case("usage with end not after start: invalid_period");
	CHECK_STR(report("alice", "node-a", "1", P1, P0, &u), "invalid_period");
	CHECK_STR(report("alice", "node-a", "1", P0, P0, &u), "invalid_period");

	ledger_case("locked_cents is per account");
	CHECK_STR(purchase("bob", 1000), "");
	CHECK_STR(report("bob", "node-a", "1", P0, P1, &u), "");
	CHECK_INT(locked("bob"), 250);
	CHECK_INT(locked("alice"), 876 + 1);
	CHECK_INT(balance("@escrow"), locked("alice") + locked("bob"));

	group_end(true);
}

/* One node failing for exactly `reason`; alice's lock must come back to her. */
static void expect_failed_period(const char *node, const char *reason, int64_t amount)
{
	struct settlement_result r;
	long long before = balance("alice") + amount;
	CHECK_STR(settle(node, P0, P1, &r), "");
	CHECK(!r.eligible);
	CHECK_STR(reasons_of(&r), reason);
	CHECK_INT(r.settled, 0);
	CHECK_INT(r.failed, 1);
	CHECK_INT(r.settled_cents, 0);
	CHECK_INT(r.failed_cents, amount);
	CHECK_INT(balance("alice"), before);
	CHECK_INT(balance(node), 0);
	CHECK_INT(count("SELECT COUNT(*) FROM usage_reports WHERE status = 'locked'"), 0);
}

/* A fresh good node with alice's one-hour usage locked in [P0, P1]. */
static void node_with_usage(const char *node, int64_t price)
{
	good_node(node, price);
	CHECK_STR(report("alice", node, "1", P0, P1, NULL), "");
}

static void test_settlement(void)
{
	group_begin("settlement");
	struct settlement_result r;
	struct usage_result u;

	ledger_case("setup: alice and bob buy credits");
	CHECK_STR(purchase("alice", 100000), "");
	CHECK_STR(purchase("bob", 100000), "");

	ledger_case("pass: the provider is paid, locks are closed");
	node_with_usage("pass-node", 250);
	CHECK_STR(report("bob", "pass-node", "2", P0, P1, &u), "");
	CHECK_INT(balance("@escrow"), 750);
	CHECK_STR(settle("pass-node", P0, P1, &r), "");
	CHECK(r.eligible);
	CHECK_STR(reasons_of(&r), "");
	CHECK_INT(r.settled, 2);
	CHECK_INT(r.failed, 0);
	CHECK_INT(r.settled_cents, 750);
	CHECK_INT(r.failed_cents, 0);
	CHECK_INT(balance("pass-node"), 750);
	CHECK_INT(balance("@escrow"), 0);
	CHECK_INT(locked("alice"), 0);
	CHECK_INT(locked("bob"), 0);
	CHECK_INT(balance("alice"), 100000 - 250);
	CHECK_INT(balance("bob"), 100000 - 500);
	CHECK_INT(count("SELECT COUNT(*) FROM usage_reports WHERE node_id = 'pass-node'"
	                " AND status = 'settled' AND settle_txn_id IS NOT NULL"),
	          2);
	CHECK_INT(count("SELECT COUNT(*) FROM settlements WHERE node_id = 'pass-node'"
	                " AND eligible = 1 AND reasons = '[]' AND settled = 2 AND settled_cents = 750"),
	          1);

	ledger_case("settling twice moves nothing the second time");
	long long txns = count("SELECT COUNT(*) FROM ledger_txns");
	CHECK_STR(settle("pass-node", P0, P1, &r), "");
	CHECK(r.eligible);
	CHECK_INT(r.settled, 0);
	CHECK_INT(r.failed, 0);
	CHECK_INT(r.settled_cents, 0);
	CHECK_INT(r.failed_cents, 0);
	CHECK_INT(balance("pass-node"), 750);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns"), txns);
	CHECK_INT(count("SELECT COUNT(*) FROM settlements WHERE node_id = 'pass-node'"), 2);

	ledger_case("settlement touches only usage of exactly that period");
	CHECK_STR(report("alice", "pass-node", "1", P1, P1 + HOUR_MS, &u), "");
	CHECK_STR(report("alice", "pass-node", "1", P0, P1 + HOUR_MS, &u), "");
	CHECK_STR(settle("pass-node", P0, P1, &r), "");
	CHECK_INT(r.settled + r.failed, 0);
	CHECK_INT(locked("alice"), 500);
	CHECK_STR(settle("pass-node", P1, P1 + HOUR_MS, &r), "");
	CHECK_INT(r.settled, 1);
	CHECK_INT(locked("alice"), 250);
	CHECK_STR(settle("pass-node", P0, P1 + HOUR_MS, &r), "");
	CHECK_INT(r.settled, 1);
	CHECK_INT(locked("alice"), 0);
	CHECK_INT(balance("pass-node"), 1250);

	ledger_case("settlement with end not after start: invalid_period");
	CHECK_STR(settle("pass-node", P1, P0, &r), "invalid_period");
	CHECK_STR(settle("pass-node", P0, P0, &r), "invalid_period");

	ledger_case("health_miss inside the period fails it; the money goes back");
	node_with_usage("hm-node", 300);
	CHECK_STR(event("hm-node", "health_miss", P0 + HOUR_MS / 2), "");
	expect_failed_period("hm-node", "health_miss", 300);
	CHECK_INT(count("SELECT COUNT(*) FROM usage_reports WHERE node_id = 'hm-node'"
	                " AND status = 'failed' AND settle_txn_id IS NOT NULL"),
	          1);
	CHECK_INT(count("SELECT COUNT(*) FROM settlements WHERE node_id = 'hm-node'"
	                " AND eligible = 0 AND reasons = '[\"health_miss\"]' AND failed_cents = 300"),
	          1);

	ledger_case("attest_miss inside the period fails it");
	node_with_usage("am-node", 300);
	CHECK_STR(event("am-node", "attest_miss", P0 + 1), "");
	expect_failed_period("am-node", "attest_miss", 300);

	ledger_case("misses at the period's first and last millisecond count ([start, end])");
	node_with_usage("edge-start", 100);
	CHECK_STR(event("edge-start", "health_miss", P0), "");
	expect_failed_period("edge-start", "health_miss", 100);
	node_with_usage("edge-end", 100);
	CHECK_STR(event("edge-end", "attest_miss", P1), "");
	expect_failed_period("edge-end", "attest_miss", 100);

	ledger_case("misses just outside the period do not fail it");
	node_with_usage("outside", 200);
	CHECK_STR(event("outside", "health_miss", P0 - 1), "");
	CHECK_STR(event("outside", "attest_miss", P1 + 1), "");
	CHECK_STR(event("outside", "health_miss", P0 - HOUR_MS), "");
	CHECK_STR(event("outside", "some_other_event", P0 + 5), "");
	CHECK_STR(settle("outside", P0, P1, &r), "");
	CHECK(r.eligible, "(reasons: %s)", reasons_of(&r));
	CHECK_INT(r.settled, 1);
	CHECK_INT(balance("outside"), 200);

	ledger_case("abuse_authorized: an authorized report overlapping the period");
	node_with_usage("abuse-node", 400);
	CHECK_STR(abuse("abuse-node", true, P0 + 10 * 60000, true, P0 + 20 * 60000, "authorize"), "");
	expect_failed_period("abuse-node", "abuse_authorized", 400);

	ledger_case("abuse: a report reaching into the period from before counts");
	node_with_usage("abuse-before", 400);
	CHECK_STR(abuse("abuse-before", true, P0 - HOUR_MS, true, P0 + 1, "authorize"), "");
	expect_failed_period("abuse-before", "abuse_authorized", 400);

	ledger_case("abuse: a pending report does not count");
	node_with_usage("abuse-pending", 400);
	CHECK_STR(abuse("abuse-pending", true, P0, true, P1, NULL), "");
	CHECK_STR(settle("abuse-pending", P0, P1, &r), "");
	CHECK(r.eligible, "(reasons: %s)", reasons_of(&r));
	CHECK_INT(balance("abuse-pending"), 400);

	ledger_case("abuse: a denied report does not count");
	node_with_usage("abuse-denied", 400);
	CHECK_STR(abuse("abuse-denied", true, P0, true, P1, "deny"), "");
	CHECK_STR(abuse("abuse-denied", false, 0, false, 0, "deny"), "");
	CHECK_STR(settle("abuse-denied", P0, P1, &r), "");
	CHECK(r.eligible, "(reasons: %s)", reasons_of(&r));
	CHECK_INT(balance("abuse-denied"), 400);

	ledger_case("abuse: authorized reports entirely before or after do not count");
	node_with_usage("abuse-apart", 400);
	CHECK_STR(abuse("abuse-apart", true, P0 - 2 * HOUR_MS, true, P0 - 1, "authorize"), "");
	CHECK_STR(abuse("abuse-apart", true, P1 + 1, true, P1 + HOUR_MS, "authorize"), "");
	CHECK_STR(abuse("abuse-apart", false, 0, true, P0 - 1, "authorize"), "");
	CHECK_STR(abuse("abuse-apart", true, P1 + 1, false, 0, "authorize"), "");
	CHECK_STR(settle("abuse-apart", P0, P1, &r), "");
	CHECK(r.eligible, "(reasons: %s)", reasons_of(&r));
	CHECK_INT(balance("abuse-apart"), 400);

	ledger_case("abuse: an authorized report with no period covers everything");
	node_with_usage("abuse-all", 400);
	CHECK_STR(abuse("abuse-all", false, 0, false, 0, "authorize"), "");
	expect_failed_period("abuse-all", "abuse_authorized", 400);

	ledger_case("abuse: open-ended reports (only a start, only an end) that overlap count");
	node_with_usage("abuse-open-start", 400);
	CHECK_STR(abuse("abuse-open-start", true, P0 - HOUR_MS, false, 0, "authorize"), "");
	expect_failed_period("abuse-open-start", "abuse_authorized", 400);
	node_with_usage("abuse-open-end", 400);
	CHECK_STR(abuse("abuse-open-end", false, 0, true, P1 + HOUR_MS, "authorize"), "");
	expect_failed_period("abuse-open-end", "abuse_authorized", 400);

	ledger_case("abuse: a report on another node does not count");
	node_with_usage("abuse-other", 400);
	CHECK_STR(abuse("pass-node", false, 0, false, 0, "authorize"), "");
	CHECK_STR(settle("abuse-other", P0, P1, &r), "");
	CHECK(r.eligible, "(reasons: %s)", reasons_of(&r));

	ledger_case("stake_missing: no stake");
	CHECK_STR(register_node("no-stake", true, 500, false, 0, NULL), "");
	CHECK_STR(mark("no-stake", "valid", "pass"), "");
	CHECK_STR(report("alice", "no-stake", "1", P0, P1, NULL), "");
	expect_failed_period("no-stake", "stake_missing", 500);

	ledger_case("stake_missing: a stake of zero");
	CHECK_STR(register_node("zero-stake", true, 500, true, 0, NULL), "");
	CHECK_STR(mark("zero-stake", "valid", "pass"), "");
	CHECK_STR(report("alice", "zero-stake", "1", P0, P1, NULL), "");
	expect_failed_period("zero-stake", "stake_missing", 500);

	ledger_case("attestation_invalid: current attestation not valid");
	node_with_usage("bad-attest", 500);
	CHECK_STR(mark("bad-attest", "invalid", NULL), "");
	expect_failed_period("bad-attest", "attestation_invalid", 500);

	ledger_case("attestation_invalid: never attested");
	CHECK_STR(register_node("never-attested", true, 500, true, 5000, NULL), "");
	CHECK_STR(mark("never-attested", NULL, "pass"), "");
	CHECK_STR(report("alice", "never-attested", "1", P0, P1, NULL), "");
	expect_failed_period("never-attested", "attestation_invalid", 500);

	ledger_case("health_fail: current health not pass");
	node_with_usage("sick", 500);
	CHECK_STR(mark("sick", NULL, "fail"), "");
	expect_failed_period("sick", "health_fail", 500);

	ledger_case("node_inactive: registered with status inactive");
	CHECK_STR(register_node("idle", true, 500, true, 5000, "inactive"), "");
	CHECK_STR(mark("idle", "valid", "pass"), "");
	CHECK_STR(report("alice", "idle", "1", P0, P1, NULL), "");
	expect_failed_period("idle", "node_inactive", 500);

	ledger_case("node_not_found: not eligible, one reason, nothing moved");
	txns = count("SELECT COUNT(*) FROM ledger_txns");
	long long alice = balance("alice"), escrow = balance("@escrow");
	CHECK_STR(settle("ghost-node", P0, P1, &r), "");
	CHECK(!r.eligible);
	CHECK_STR(reasons_of(&r), "node_not_found");
	CHECK_INT(r.settled, 0);
	CHECK_INT(r.failed, 0);
	CHECK_INT(r.settled_cents, 0);
	CHECK_INT(r.failed_cents, 0);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns"), txns);
	CHECK_INT(balance("alice"), alice);
	CHECK_INT(balance("@escrow"), escrow);
	CHECK_INT(balance("ghost-node"), 0);
	CHECK_INT(count("SELECT COUNT(*) FROM nodes WHERE node_id = 'ghost-node'"), 0);

	ledger_case("every reason at once, in the documented order");
	CHECK_STR(register_node("worst", true, 500, false, 0, "inactive"), "");
	CHECK_STR(mark("worst", "invalid", "fail"), "");
	CHECK_STR(report("alice", "worst", "1", P0, P1, NULL), "");
	CHECK_STR(event("worst", "attest_miss", P0 + 2), "");
	CHECK_STR(event("worst", "health_miss", P0 + 1), "");
	CHECK_STR(event("worst", "health_miss", P0 + 3), "");
	CHECK_STR(abuse("worst", false, 0, false, 0, "authorize"), "");
	expect_failed_period("worst",
	                     "node_inactive,attestation_invalid,health_fail,stake_missing,"
	                     "health_miss,attest_miss,abuse_authorized",
	                     500);

	ledger_case("a failed period returns each user's own lock");
	node_with_usage("multi-fail", 100);
	CHECK_STR(report("bob", "multi-fail", "3", P0, P1, NULL), "");
	CHECK_STR(report("carol-never-paid", "multi-fail", "1", P0, P1, NULL), "insufficient_funds");
	CHECK_STR(report("alice", "multi-fail", "2", P0, P1, NULL), "");
	alice = balance("alice");
	long long bob = balance("bob");
	CHECK_INT(locked("alice"), 300);
	CHECK_INT(locked("bob"), 300);
	CHECK_STR(event("multi-fail", "health_miss", P0 + 7), "");
	CHECK_STR(settle("multi-fail", P0, P1, &r), "");
	CHECK(!r.eligible);
	CHECK_INT(r.failed, 3);
	CHECK_INT(r.failed_cents, 600);
	CHECK_INT(balance("alice"), alice + 300);
	CHECK_INT(balance("bob"), bob + 300);
	CHECK_INT(locked("alice"), 0);
	CHECK_INT(locked("bob"), 0);
	CHECK_INT(balance("multi-fail"), 0);
	CHECK_INT(balance("@escrow"), 0);

	ledger_case("a failed period settled again moves nothing");
	txns = count("SELECT COUNT(*) FROM ledger_txns");
	CHECK_STR(settle("multi-fail", P0, P1, &r), "");
	CHECK(!r.eligible);
	CHECK_INT(r.failed + r.settled, 0);
	CHECK_INT(r.failed_cents + r.settled_cents, 0);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns"), txns);

	ledger_case("a miss recorded after a pass does not undo the payment");
	CHECK_STR(event("pass-node", "health_miss", P0 + 1), "");
	CHECK_STR(settle("pass-node", P0, P1, &r), "");
	CHECK(!r.eligible);
	CHECK_INT(r.failed + r.settled, 0);
	CHECK_INT(balance("pass-node"), 1250);

	ledger_case("ledger_node_eligibility decides without moving anything");
	node_with_usage("peek", 100);
	txns = count("SELECT COUNT(*) FROM ledger_txns");
	struct ee_error err;
	CHECK_INT(ledger_node_eligibility(db, "peek", P0, P1, &r, &err), 0);
	CHECK(r.eligible);
	CHECK_INT(r.settled + r.failed, 0);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns"), txns);
	CHECK_INT(locked("alice"), 100);
	CHECK_STR(settle("peek", P0, P1, &r), "");
	CHECK_INT(r.settled, 1);

	group_end(true);
}

/* More open usages than one batch of ledger_settle (256). */
static void test_many_usages(void)
{
	group_begin("many");
	struct settlement_result r;
	enum { USAGES = 700 };

	ledger_case("setup: %d usage reports of one period", USAGES);
	CHECK_STR(purchase("alice", 1000000), "");
	CHECK_STR(purchase("bob", 1000000), "");
	good_node("busy-node", 3);
	good_node("busy-fail", 5);
	{
		struct ee_error err;
		CHECK_INT(db_begin_write(db, &err), 0);
		struct decimal one;
		CHECK_INT(decimal_parse("1", 1, &one), 0);
		int bad = 0;
		for (int i = 0; i < USAGES; i++) {
			struct usage_result u;
			const char *who = i % 3 == 0 ? "bob" : "alice";
			if (ledger_report_usage(db, who, "busy-node", &one, "1", P0, P1, &u, &err) != 0 ||
			    ledger_report_usage(db, who, "busy-fail", &one, "1", P0, P1, &u, &err) != 0)
				bad++;
		}
		CHECK_INT(bad, 0);
		CHECK_INT(db_commit(db, &err), 0);
	}
	CHECK_INT(count("SELECT COUNT(*) FROM usage_reports WHERE status = 'locked'"), 2 * USAGES);
	CHECK_INT(balance("@escrow"), USAGES * 3 + USAGES * 5);

	ledger_case("a passing settlement of %d usages closes every one", USAGES);
	CHECK_STR(settle("busy-node", P0, P1, &r), "");
	CHECK(r.eligible);
	CHECK_INT(r.settled, USAGES);
	CHECK_INT(r.settled_cents, USAGES * 3);
	CHECK_INT(balance("busy-node"), USAGES * 3);
	CHECK_INT(count("SELECT COUNT(*) FROM usage_reports WHERE node_id = 'busy-node'"
	                " AND status = 'locked'"),
	          0);

	ledger_case("a failing settlement of %d usages returns every one", USAGES);
	long long alice = balance("alice"), bob = balance("bob");
	int bob_usages = (USAGES + 2) / 3;
	CHECK_STR(event("busy-fail", "attest_miss", P0 + 99), "");
	CHECK_STR(settle("busy-fail", P0, P1, &r), "");
	CHECK(!r.eligible);
	CHECK_INT(r.failed, USAGES);
	CHECK_INT(r.failed_cents, USAGES * 5);
	CHECK_INT(balance("bob"), bob + bob_usages * 5);
	CHECK_INT(balance("alice"), alice + (USAGES - bob_usages) * 5);
	CHECK_INT(balance("@escrow"), 0);
	CHECK_INT(locked("alice") + locked("bob"), 0);

	ledger_case("settling the big period again moves nothing");
	long long txns = count("SELECT COUNT(*) FROM ledger_txns");
	CHECK_STR(settle("busy-node", P0, P1, &r), "");
	CHECK_INT(r.settled + r.failed, 0);
	CHECK_STR(settle("busy-fail", P0, P1, &r), "");
	CHECK_INT(r.settled + r.failed, 0);
	CHECK_INT(count("SELECT COUNT(*) FROM ledger_txns"), txns);

	group_end(true);
}

/* Tampering behind the ledger's back must be seen by the audit. */
static void test_invariant_violations(void)
{
	group_begin("corrupt");
	struct ee_error err;

	ledger_case("setup: purchases, a transfer and an open lock");
	CHECK_STR(purchase("alice", 1000), "");
	CHECK_STR(purchase("bob", 1000), "");
	CHECK_STR(transfer("alice", "bob", 100), "");
	good_node("lock-node", 100);
	CHECK_STR(report("alice", "lock-node", "1", P0, P1, NULL), "");
	check_invariants();
	case_open = false; /* the cases below check the audit themselves */

	test_case("a balance changed directly: ledger_total_not_zero");
	CHECK_INT(raw_exec("UPDATE accounts SET balance_cents = balance_cents + 1"
	                   " WHERE account_id = 'alice'"),
	          SQLITE_OK);
	ee_error_clear(&err);
	CHECK_INT(ledger_check_invariants(db, &err), -1);
	CHECK_STR(err.reason, "ledger_total_not_zero");
	CHECK_INT(err.status, 500);
	CHECK(!db_in_transaction(db));
	CHECK_INT(raw_exec("UPDATE accounts SET balance_cents = balance_cents - 1"
	                   " WHERE account_id = 'alice'"),
	          SQLITE_OK);
	CHECK_INT(ledger_check_invariants(db, &err), 0);

	test_case("balances moved directly but still summing to zero: account_mismatch");
	CHECK_INT(raw_exec("UPDATE accounts SET balance_cents = balance_cents + 5"
	                   " WHERE account_id = 'bob'"),
	          SQLITE_OK);
	CHECK_INT(raw_exec("UPDATE accounts SET balance_cents = balance_cents - 5"
	                   " WHERE account_id = 'alice'"),
	          SQLITE_OK);
	ee_error_clear(&err);
	CHECK_INT(ledger_check_invariants(db, &err), -1);
	CHECK(strcmp(err.reason, "account_mismatch:alice") == 0 ||
	          strcmp(err.reason, "account_mismatch:bob") == 0,
	      "(reason %s)", err.reason);
	CHECK_INT(raw_exec("UPDATE accounts SET balance_cents = balance_cents - 5"
	                   " WHERE account_id = 'bob'"),
	          SQLITE_OK);
	CHECK_INT(raw_exec("UPDATE accounts SET balance_cents = balance_cents + 5"
	                   " WHERE account_id = 'alice'"),
	          SQLITE_OK);
	CHECK_INT(ledger_check_invariants(db, &err), 0);

	test_case("a lock closed without moving its money: escrow_mismatch");
	CHECK_INT(raw_exec("UPDATE usage_reports SET status = 'failed' WHERE status = 'locked'"),
	          SQLITE_OK);
	ee_error_clear(&err);
	CHECK_INT(ledger_check_invariants(db, &err), -1);
	CHECK_STR(err.reason, "escrow_mismatch");
	CHECK_INT(raw_exec("UPDATE usage_reports SET status = 'locked' WHERE status = 'failed'"),
	          SQLITE_OK);
	CHECK_INT(ledger_check_invariants(db, &err), 0);

	test_case("a phantom lock with no money in escrow: escrow_mismatch");
	CHECK_INT(raw_exec("UPDATE usage_reports SET amount_cents = amount_cents + 1"), SQLITE_OK);
	ee_error_clear(&err);
	CHECK_INT(ledger_check_invariants(db, &err), -1);
	CHECK_STR(err.reason, "escrow_mismatch");
	CHECK_INT(raw_exec("UPDATE usage_reports SET amount_cents = amount_cents - 1"), SQLITE_OK);
	CHECK_INT(ledger_check_invariants(db, &err), 0);

	/* Entries are append-only, so this one cannot be undone: it comes last. */
	test_case("entries that balance per account but not per transaction: transaction_unbalanced");
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "INSERT INTO ledger_entries (txn_id, account_id, delta_cents, reason, created_at)"
	         " SELECT txn_id, 'alice', %d, 'tamper', 1 FROM ledger_txns WHERE kind = '%s' LIMIT 1",
	         1, "transfer");
	CHECK_INT(raw_exec(sql), SQLITE_OK);
	snprintf(sql, sizeof(sql),
	         "INSERT INTO ledger_entries (txn_id, account_id, delta_cents, reason, created_at)"
	         " SELECT txn_id, 'alice', %d, 'tamper', 1 FROM ledger_txns WHERE kind = '%s' LIMIT 1",
	         -1, "lock");
	CHECK_INT(raw_exec(sql), SQLITE_OK);
	ee_error_clear(&err);
	CHECK_INT(ledger_check_invariants(db, &err), -1);
	CHECK(strncmp(err.reason, "transaction_unbalanced:", 23) == 0, "(reason %s)", err.reason);

	group_end(false);
}

static void test_ids(void)
{
	group_begin("ids");

	ledger_case("ids sort in the order they were made: 12 hex digits of the time in ms, a counter, 64 random bits");
	{
		struct ee_error err;
		char prev[LEDGER_ID_LEN + 1] = "", id[LEDGER_ID_LEN + 1] = "";
		int64_t start = time_now_ms();
		bool ordered = true, all_hex = true;
		for (int i = 0; i < 200; i++) {
			CHECK_INT(db_begin_write(db, &err), 0);
			CHECK_INT(ledger_purchase(db, "ordered", 1, id, &err), 0);
			CHECK_INT(db_commit(db, &err), 0);
			all_hex = all_hex && is_hex_id(id);
			/* strictly increasing in their first 16 digits: the random part never decides */
			if (prev[0] && strncmp(prev, id, 16) >= 0) {
				ordered = false;
				printf("# %s then %s\n", prev, id);
			}
			memcpy(prev, id, sizeof(prev));
		}
		CHECK(all_hex, "(last id %s)", id);
		CHECK(ordered);
		char when[13];
		memcpy(when, id, 12);
		when[12] = '\0';
		long long ms = strtoll(when, NULL, 16);
		CHECK(ms >= start && ms <= time_now_ms() + 1, "(id %s: %lld ms, started at %lld)", id, ms,
		      (long long)start);
		CHECK_INT(count("SELECT COUNT(DISTINCT substr(txn_id, 17)) FROM ledger_txns"),
		          count("SELECT COUNT(*) FROM ledger_txns"));
	}
	CHECK_INT(balance("ordered"), 200);
	group_end(true);
}

int main(void)
{
	ee_log_init("test_ledger", EE_LOG_ERROR);
	if (time_parse_rfc3339("2024-03-01T00:00:00Z", 20, &P0) != 0)
		return 1;
	P1 = P0 + HOUR_MS;
	if (stack_make_dir(tmp_dir, sizeof(tmp_dir), "ledger") != 0) {
		perror("mkdtemp");
		return 1;
	}
	test_purchase_and_transfer();
	test_ids();
	test_limits();
	test_usage();
	test_settlement();
	test_many_usages();
	test_invariant_violations();
	if (stack_remove_dir(tmp_dir) != 0)
		fprintf(stderr, "cannot remove %s: %s\n", tmp_dir, strerror(errno));
	return test_finish();
}
