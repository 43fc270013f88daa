/* ledger.c - double-entry movements, usage locks and settlement; see ledger.h. */
#include "ledger.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "timeutil.h"
#include "util.h"

struct posting {
	const char *account;
	int64_t delta_cents;
	const char *reason;
};

/*
 * A new id: 12 hex digits of the time in milliseconds, 4 of a counter of this
 * process, 16 random.  Ids made later sort after earlier ones (across
 * processes too, to the millisecond), so a new ledger_txns row and its index
 * entries land on the rightmost B-tree pages, which the previous commits
 * already wrote, instead of a random page each; 64 random bits keep ids of
 * different processes apart and unguessable.  Within a process the time never
 * goes back and the counter orders ids of the same millisecond.
 */
static int new_id(char out[LEDGER_ID_LEN + 1], struct ee_error *err)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static int64_t last_ms;
	static unsigned counter;
	int64_t now = time_now_ms();
	pthread_mutex_lock(&lock);
	if (now > last_ms) {
		last_ms = now;
		counter = 0;
	} else if (++counter > 0xffff) {
		last_ms++; /* 65,536 ids in one millisecond: borrow the next one */
		counter = 0;
	}
	int64_t ms = last_ms;
	unsigned n = counter;
	pthread_mutex_unlock(&lock);
	snprintf(out, LEDGER_ID_LEN + 1, "%012llx%04x", (unsigned long long)ms & 0xffffffffffffULL, n);
	if (util_random_hex(out + 16, (LEDGER_ID_LEN - 16) / 2) != 0)
		return ee_fail(err, 503, "entropy_unavailable");
	return 0;
}

/* Reads a balance; *exists tells whether the account row is there. */
static int read_balance(struct ee_db *db, const char *account, int64_t *balance, bool *exists,
                        struct ee_error *err)
{
	sqlite3_stmt *stmt = db_stmt(db, SQL_ACCOUNT_GET, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, account);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*balance = sqlite3_column_int64(stmt, 0);
		*exists = true;
	} else if (rc == SQLITE_DONE) {
		*balance = 0;
		*exists = false;
	} else {
		sqlite3_reset(stmt);
		return db_fail(db, rc, err);
	}
	sqlite3_reset(stmt);
	return 0;
}

/*
 * Writes one transaction: the txn row, then each posting checked against the
 * balance rules.  Any failure leaves the caller to roll back the transaction.
 */
static int post(struct ee_db *db, const char *kind, const char *ref_type, const char *ref_id,
                const struct posting *postings, int count, char txn_id[LEDGER_ID_LEN + 1],
                struct ee_error *err)
{
	int64_t sum = 0;
	for (int i = 0; i < count; i++)
		sum += postings[i].delta_cents;
	if (sum != 0) {
		log_error("refusing unbalanced %s transaction", kind);
		return ee_fail(err, 500, "ledger_unbalanced");
	}
	if (new_id(txn_id, err) != 0)
		return -1;
	int64_t now = time_now_ms();

	sqlite3_stmt *stmt = db_stmt(db, SQL_TXN_INSERT, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, txn_id);
	db_bind_text(stmt, 2, kind);
	db_bind_text(stmt, 3, ref_type);
	db_bind_text(stmt, 4, ref_id);
	db_bind_int64(stmt, 5, now);
	if (db_exec_stmt(db, stmt, err) != 0)
		return -1;

	for (int i = 0; i < count; i++) {
		const struct posting *p = &postings[i];
		int64_t balance;
		bool exists;
		if (read_balance(db, p->account, &balance, &exists, err) != 0)
			return -1;
		if (!exists) {
			stmt = db_stmt(db, SQL_ACCOUNT_ENSURE, err);
			if (!stmt)
				return -1;
			db_bind_text(stmt, 1, p->account);
			db_bind_int64(stmt, 2, now);
			if (db_exec_stmt(db, stmt, err) != 0)
				return -1;
		}
		int64_t next = balance + p->delta_cents; /* both within +-2^53: no overflow */
		if (next < 0 && strcmp(p->account, LEDGER_MINT) != 0)
			return ee_fail(err, 400, "insufficient_funds");
		if (next > EE_MAX_CENTS || next < -EE_MAX_CENTS)
			return ee_fail(err, 400, "balance_limit_exceeded");

		stmt = db_stmt(db, SQL_ACCOUNT_ADD, err);
		if (!stmt)
			return -1;
		db_bind_text(stmt, 1, p->account);
		db_bind_int64(stmt, 2, p->delta_cents);
		db_bind_int64(stmt, 3, now);
		if (db_exec_stmt(db, stmt, err) != 0)
			return -1;

		stmt = db_stmt(db, SQL_ENTRY_INSERT, err);
		if (!stmt)
			return -1;
		db_bind_text(stmt, 1, txn_id);
		db_bind_text(stmt, 2, p->account);
		db_bind_int64(stmt, 3, p->delta_cents);
		db_bind_text(stmt, 4, p->reason);
		db_bind_int64(stmt, 5, now);
		if (db_exec_stmt(db, stmt, err) != 0)
			return -1;
	}
	return 0;
}

static bool is_system_account(const char *account) { return account[0] == '@'; }

int ledger_get_balance(struct ee_db *db, const char *account, struct ledger_balance *out,
                       struct ee_error *err)
{
	bool exists;
	if (read_balance(db, account, &out->balance_cents, &exists, err) != 0)
		return -1;
	sqlite3_stmt *stmt = db_stmt(db, SQL_ACCOUNT_LOCKED_SUM, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, account);
	int rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(stmt);
		return db_fail(db, rc, err);
	}
	out->locked_cents = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	return 0;
}

int ledger_purchase(struct ee_db *db, const char *account, int64_t cents,
                    char txn_id[LEDGER_ID_LEN + 1], struct ee_error *err)
{
	if (cents <= 0 || cents > EE_MAX_CENTS)
		return ee_fail(err, 400, "invalid_amount");
	if (is_system_account(account))
		return ee_fail(err, 400, "reserved_account");
	struct posting p[] = {
		{LEDGER_MINT, -cents, "purchase"},
		{account, cents, "purchase"},
	};
	return post(db, "purchase", "purchase", NULL, p, 2, txn_id, err);
}

int ledger_transfer(struct ee_db *db, const char *from, const char *to, int64_t cents,
                    char transfer_id[LEDGER_ID_LEN + 1], struct ee_error *err)
{
	if (cents <= 0 || cents > EE_MAX_CENTS)
		return ee_fail(err, 400, "invalid_amount");
	if (is_system_account(from) || is_system_account(to))
		return ee_fail(err, 400, "reserved_account");
	if (strcmp(from, to) == 0)
		return ee_fail(err, 400, "same_account");
	struct posting p[] = {
		{from, -cents, "transfer_out"},
		{to, cents, "transfer_in"},
	};
	return post(db, "transfer", "transfer", NULL, p, 2, transfer_id, err);
}

int ledger_report_usage(struct ee_db *db, const char *account, const char *node,
                        const struct decimal *vcpu_hours, const char *vcpu_hours_text,
                        int64_t period_start, int64_t period_end, struct usage_result *out,
                        struct ee_error *err)
{
	if (is_system_account(account))
		return ee_fail(err, 400, "reserved_account");
	if (period_end <= period_start)
		return ee_fail(err, 400, "invalid_period");

	sqlite3_stmt *stmt = db_stmt(db, SQL_NODE_GET, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, node);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(stmt);
		return ee_fail(err, 400, "node_price_missing");
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(stmt);
		return db_fail(db, rc, err);
	}
	bool has_price = sqlite3_column_type(stmt, 2) != SQLITE_NULL;
	int64_t price = sqlite3_column_int64(stmt, 2);
	sqlite3_reset(stmt);
	if (!has_price)
		return ee_fail(err, 400, "node_price_missing");

	int64_t amount;
	if (decimal_multiply_cents(vcpu_hours, price, &amount) != 0 || amount <= 0)
		return ee_fail(err, 400, "invalid_amount");

	if (new_id(out->usage_id, err) != 0 || new_id(out->lock_id, err) != 0)
		return -1;
	out->amount_cents = amount;
	out->price_cents_per_vcpu_hour = price;

	char txn_id[LEDGER_ID_LEN + 1];
	struct posting p[] = {
		{account, -amount, "lock"},
		{LEDGER_ESCROW, amount, "lock"},
	};
	if (post(db, "lock", "usage", out->usage_id, p, 2, txn_id, err) != 0)
		return -1;

	stmt = db_stmt(db, SQL_USAGE_INSERT, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, out->usage_id);
	db_bind_text(stmt, 2, out->lock_id);
	db_bind_text(stmt, 3, node);
	db_bind_text(stmt, 4, account);
	db_bind_text(stmt, 5, vcpu_hours_text);
	db_bind_int64(stmt, 6, price);
	db_bind_int64(stmt, 7, amount);
	db_bind_int64(stmt, 8, period_start);
	db_bind_int64(stmt, 9, period_end);
	db_bind_text(stmt, 10, txn_id);
	db_bind_int64(stmt, 11, time_now_ms());
	return db_exec_stmt(db, stmt, err);
}

static void add_reason(struct settlement_result *r, const char *reason)
{
	for (int i = 0; i < r->reason_count; i++) {
		if (strcmp(r->reasons[i], reason) == 0)
			return;
	}
	if (r->reason_count < SETTLE_MAX_REASONS)
		r->reasons[r->reason_count++] = reason;
}

/* Runs a statement that answers "is there such a row". */
static int exists_query(struct ee_db *db, sqlite3_stmt *stmt, bool *found, struct ee_error *err)
{
	int rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, err);
	*found = rc == SQLITE_ROW;
	return 0;
}

int ledger_node_eligibility(struct ee_db *db, const char *node, int64_t period_start,
                            int64_t period_end, struct settlement_result *out,
                            struct ee_error *err)
{
	memset(out, 0, sizeof(*out));
	sqlite3_stmt *stmt = db_stmt(db, SQL_NODE_GET, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, node);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(stmt);
		add_reason(out, "node_not_found");
		return 0;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(stmt);
		return db_fail(db, rc, err);
	}
	const char *status = db_column_text(stmt, 1);
	const char *attestation = db_column_text(stmt, 5);
	const char *health = db_column_text(stmt, 6);
	bool stake_ok = sqlite3_column_type(stmt, 4) != SQLITE_NULL && sqlite3_column_int64(stmt, 4) > 0;
	if (!status || strcmp(status, "active") != 0)
		add_reason(out, "node_inactive");
	if (!attestation || strcmp(attestation, "valid") != 0)
		add_reason(out, "attestation_invalid");
	if (!health || strcmp(health, "pass") != 0)
		add_reason(out, "health_fail");
	if (!stake_ok)
		add_reason(out, "stake_missing");
	sqlite3_reset(stmt);

	static const char *const misses[] = {"health_miss", "attest_miss"};
	for (int i = 0; i < 2; i++) {
		bool found = false;
		stmt = db_stmt(db, SQL_NODE_EVENT_IN_PERIOD, err);
		if (!stmt)
			return -1;
		db_bind_text(stmt, 1, node);
		db_bind_text(stmt, 2, misses[i]);
		db_bind_int64(stmt, 3, period_start);
		db_bind_int64(stmt, 4, period_end);
		if (exists_query(db, stmt, &found, err) != 0)
			return -1;
		if (found)
			add_reason(out, misses[i]);
	}

	bool abuse = false;
	stmt = db_stmt(db, SQL_ABUSE_AUTHORIZED_OVERLAP, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, node);
	db_bind_int64(stmt, 2, period_start);
	db_bind_int64(stmt, 3, period_end);
	if (exists_query(db, stmt, &abuse, err) != 0)
		return -1;
	if (abuse)
		add_reason(out, "abuse_authorized");
	out->eligible = out->reason_count == 0;
	return 0;
}

/* The usage rows a settlement closes, read before any of them is changed. */
struct open_usage {
	char usage_id[LEDGER_ID_LEN + 1];
	char account[EE_ACCOUNT_MAX + 1];
	int64_t amount_cents;
};

#define SETTLE_BATCH 256

int ledger_settle(struct ee_db *db, const char *period_label, const char *node,
                  int64_t period_start, int64_t period_end, struct settlement_result *out,
                  struct ee_error *err)
{
	if (period_end <= period_start)
		return ee_fail(err, 400, "invalid_period");
	if (ledger_node_eligibility(db, node, period_start, period_end, out, err) != 0)
		return -1;

	struct open_usage batch[SETTLE_BATCH];
	for (;;) {
		/* Closed rows drop out of the query, so each pass sees only what is left. */
		sqlite3_stmt *stmt = db_stmt(db, SQL_USAGE_LOCKED_FOR_PERIOD, err);
		if (!stmt)
			return -1;
		db_bind_text(stmt, 1, node);
		db_bind_int64(stmt, 2, period_start);
		db_bind_int64(stmt, 3, period_end);
		int n = 0, rc;
		while (n < SETTLE_BATCH && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
			snprintf(batch[n].usage_id, sizeof(batch[n].usage_id), "%s", db_column_text(stmt, 0));
			snprintf(batch[n].account, sizeof(batch[n].account), "%s", db_column_text(stmt, 1));
			batch[n].amount_cents = sqlite3_column_int64(stmt, 2);
			n++;
		}
		if (n < SETTLE_BATCH && rc != SQLITE_DONE) {
			sqlite3_reset(stmt);
			return db_fail(db, rc, err);
		}
		sqlite3_reset(stmt);
		if (n == 0)
			break;

		for (int i = 0; i < n; i++) {
			struct open_usage *u = &batch[i];
			char txn_id[LEDGER_ID_LEN + 1];
			const char *to = out->eligible ? node : u->account;
			struct posting p[] = {
				{LEDGER_ESCROW, -u->amount_cents, out->eligible ? "settlement" : "unlock"},
				{to, u->amount_cents, out->eligible ? "settlement" : "unlock"},
			};
			if (post(db, out->eligible ? "settle" : "release", "usage", u->usage_id, p, 2,
			         txn_id, err) != 0)
				return -1;
			stmt = db_stmt(db, SQL_USAGE_CLOSE, err);
			if (!stmt)
				return -1;
			db_bind_text(stmt, 1, u->usage_id);
			db_bind_text(stmt, 2, out->eligible ? "settled" : "failed");
			db_bind_text(stmt, 3, txn_id);
			db_bind_int64(stmt, 4, time_now_ms());
			if (db_exec_stmt(db, stmt, err) != 0)
				return -1;
			if (out->eligible) {
				out->settled++;
				out->settled_cents += u->amount_cents;
			} else {
				out->failed++;
				out->failed_cents += u->amount_cents;
			}
		}
	}

	char reasons[256] = "[";
	for (int i = 0; i < out->reason_count; i++) {
		size_t len = strlen(reasons);
		snprintf(reasons + len, sizeof(reasons) - len, "%s\"%s\"", i ? "," : "", out->reasons[i]);
	}
	strncat(reasons, "]", sizeof(reasons) - strlen(reasons) - 1);

	sqlite3_stmt *stmt = db_stmt(db, SQL_SETTLEMENT_INSERT, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, period_label);
	db_bind_text(stmt, 2, node);
	db_bind_int64(stmt, 3, period_start);
	db_bind_int64(stmt, 4, period_end);
	db_bind_int64(stmt, 5, out->eligible);
	db_bind_text(stmt, 6, reasons);
	db_bind_int64(stmt, 7, out->settled);
	db_bind_int64(stmt, 8, out->failed);
	db_bind_int64(stmt, 9, out->settled_cents);
	db_bind_int64(stmt, 10, out->failed_cents);
	db_bind_int64(stmt, 11, time_now_ms());
	return db_exec_stmt(db, stmt, err);
}

/* Runs a one-row check query; *text gets column 0 if a row came back. */
static int check_query(struct ee_db *db, enum db_stmt_id id, char *text, size_t text_size,
                       bool *found, struct ee_error *err)
{
	sqlite3_stmt *stmt = db_stmt(db, id, err);
	if (!stmt)
		return -1;
	int rc = sqlite3_step(stmt);
	*found = rc == SQLITE_ROW;
	if (*found && text)
		snprintf(text, text_size, "%s", db_column_text(stmt, 0) ? db_column_text(stmt, 0) : "");
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, err);
	return 0;
}

int ledger_check_invariants(struct ee_db *db, struct ee_error *err)
{
	if (db_begin_read(db, err) != 0)
		return -1;
	int result = -1;
	char text[256];
	bool found;

	sqlite3_stmt *stmt = db_stmt(db, SQL_CHECK_TOTAL, err);
	if (!stmt)
		goto out;
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		sqlite3_reset(stmt);
		db_fail(db, sqlite3_errcode(db_handle(db)), err);
		goto out;
	}
	int64_t total = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	if (total != 0) {
		ee_fail(err, 500, "ledger_total_not_zero");
		goto out;
	}
	if (check_query(db, SQL_CHECK_ACCOUNT_VS_ENTRIES, text, sizeof(text), &found, err) != 0)
		goto out;
	if (found) {
		ee_fail_detail(err, 500, "account_mismatch", text);
		goto out;
	}
	if (check_query(db, SQL_CHECK_TXN_BALANCED, text, sizeof(text), &found, err) != 0)
		goto out;
	if (found) {
		ee_fail_detail(err, 500, "transaction_unbalanced", text);
		goto out;
	}
	if (check_query(db, SQL_CHECK_NEGATIVE, text, sizeof(text), &found, err) != 0)
		goto out;
	if (found) {
		ee_fail_detail(err, 500, "negative_balance", text);
		goto out;
	}
	stmt = db_stmt(db, SQL_CHECK_ESCROW, err);
	if (!stmt)
		goto out;
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		sqlite3_reset(stmt);
		db_fail(db, sqlite3_errcode(db_handle(db)), err);
		goto out;
	}
	int64_t escrow = sqlite3_column_int64(stmt, 0), locked = sqlite3_column_int64(stmt, 1);
	sqlite3_reset(stmt);
	if (escrow != locked) {
		ee_fail(err, 500, "escrow_mismatch");
		goto out;
	}
	result = 0;
out:
	db_rollback(db); /* a read transaction: nothing to keep */
	return result;
}
