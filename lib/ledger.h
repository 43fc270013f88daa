/*
 * ledger.h - the double-entry USD credit ledger.
 *
 * Every movement is one ledger_txns row and entries that sum to zero, so the
 * sum of all balances (the system accounts "@mint" and "@escrow" included) is
 * zero after every transaction.  Purchases move credits from @mint to a user;
 * a usage report locks credits from the user into @escrow; settlement moves
 * each lock to the provider (the period passed) or back to the user (it
 * failed).  No balance but @mint's goes below zero, and no balance leaves
 * +-EE_MAX_CENTS, so every figure stays exact in JSON.
 *
 * The functions that move money expect the caller to hold a write
 * transaction (db_begin_write) so that the movement, the business rows and
 * the idempotency record commit together or not at all.
 */
#ifndef EE_LEDGER_H
#define EE_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "amount.h"
#include "db.h"
#include "error.h"

#define LEDGER_ID_LEN 32 /* hex characters of transfer, usage and lock ids */
#define LEDGER_MINT "@mint"
#define LEDGER_ESCROW "@escrow"

struct ledger_balance {
	int64_t balance_cents; /* spendable */
	int64_t locked_cents;  /* held in @escrow by this account's open usage reports */
};

/* Reads a balance; an account never seen has zero of both. */
int ledger_get_balance(struct ee_db *db, const char *account, struct ledger_balance *out,
                       struct ee_error *err);

/* Credits `cents` to account from @mint.  txn_id receives the movement's id. */
int ledger_purchase(struct ee_db *db, const char *account, int64_t cents,
                    char txn_id[LEDGER_ID_LEN + 1], struct ee_error *err);

/* Moves cents between two user accounts: insufficient_funds, same_account. */
int ledger_transfer(struct ee_db *db, const char *from, const char *to, int64_t cents,
                    char transfer_id[LEDGER_ID_LEN + 1], struct ee_error *err);

struct usage_result {
	char usage_id[LEDGER_ID_LEN + 1];
	char lock_id[LEDGER_ID_LEN + 1];
	int64_t amount_cents;
	int64_t price_cents_per_vcpu_hour;
};

/*
 * Locks vcpu_hours * the node's price (half-up) from account into @escrow
 * for the period [start, end].  Reasons: node_price_missing (also for an unknown node),
 * invalid_amount (rounds to zero or too large), insufficient_funds.
 */
int ledger_report_usage(struct ee_db *db, const char *account, const char *node,
                        const struct decimal *vcpu_hours, const char *vcpu_hours_text,
                        int64_t period_start, int64_t period_end, struct usage_result *out,
                        struct ee_error *err);

/* Reasons a period fails, in the order they are reported. */
#define SETTLE_MAX_REASONS 8

struct settlement_result {
	bool eligible;
	const char *reasons[SETTLE_MAX_REASONS]; /* static strings */
	int reason_count;
	int settled;
	int failed;
	int64_t settled_cents;
	int64_t failed_cents;
};

/*
 * Settles every open usage report of node for exactly [start, end]: to the
 * provider when the node is eligible, back to the users otherwise.  A period
 * already settled has nothing open, so settling it again moves nothing.
 */
int ledger_settle(struct ee_db *db, const char *period_label, const char *node,
                  int64_t period_start, int64_t period_end, struct settlement_result *out,
                  struct ee_error *err);

/* Decides a node's eligibility for a period without moving anything. */
int ledger_node_eligibility(struct ee_db *db, const char *node, int64_t period_start,
                            int64_t period_end, struct settlement_result *out,
                            struct ee_error *err);

/*
 * Audits the whole ledger: balances sum to zero, each account's balance is
 * the sum of its entries, each transaction sums to zero, no balance below
 * zero but @mint's, @escrow holds exactly the open locks.  On a violation
 * err->reason says which ("ledger_unbalanced", "account_mismatch:<id>", ...).
 */
int ledger_check_invariants(struct ee_db *db, struct ee_error *err);

#endif
