/*
 * test_commit.c - group commit (lib/commit.c) on real SQLite files: threads
 * with a connection each hand in ledger movements; a batch commits them in
 * one transaction, each in its own savepoint.  A job's failure undoes that
 * job alone; a failure of the transaction itself (BEGIN, COMMIT, or SQLite
 * undoing the whole transaction) fails every job of the batch and stores
 * none of them.  The ledger audit runs after every case.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "commit.h"
#include "db.h"
#include "ledger.h"
#include "log.h"
#include "stack.h"

static char tmp_dir[512];
static char db_path[600];
static int db_counter;

static struct ee_db *open_db(int busy_timeout_ms)
{
	struct ee_db_options opts = {busy_timeout_ms, "FULL", true};
	struct ee_db *db = NULL;
	struct ee_error err;
	if (db_open(db_path, &opts, &db, &err) != 0)
		test_fail(__FILE__, __LINE__, "db_open %s: %s", db_path, err.reason);
	return db;
}

static void new_database(void)
{
	snprintf(db_path, sizeof(db_path), "%s/commit-%d.sqlite", tmp_dir, ++db_counter);
	db_close(open_db(5000));
}

static int64_t balance(struct ee_db *db, const char *account)
{
	struct ledger_balance b;
	struct ee_error err;
	if (ledger_get_balance(db, account, &b, &err) != 0)
		return -1;
	return b.balance_cents;
}

static void check_audit(struct ee_db *db)
{
	struct ee_error err;
	if (ledger_check_invariants(db, &err) != 0)
		test_fail(__FILE__, __LINE__, "ledger_check_invariants: %s", err.reason);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* ---- jobs ---- */

enum job_kind {
	JOB_PURCHASE,          /* credit account with cents: kept */
	JOB_PURCHASE_THEN_FAIL, /* credit, then fail: must be undone */
	JOB_TRANSFER,          /* move cents from account to "sink" (may be refused) */
	JOB_END_TRANSACTION,   /* end the shared transaction behind the group's back */
	JOB_BREAK_AT_COMMIT,   /* a deferred foreign-key violation: COMMIT fails */
	JOB_HOLD,              /* sleep while the next batch queues (first job only) */
};

struct job {
	struct commit_job commit;
	enum job_kind kind;
	char account[32];
	int64_t cents;
	int hold_ms;
};

static int run_job(void *arg, struct ee_db *db, struct ee_error *err)
{
	struct job *j = arg;
	char id[LEDGER_ID_LEN + 1];
	switch (j->kind) {
	case JOB_HOLD:
		sleep_ms(j->hold_ms);
		/* fall through */
	case JOB_PURCHASE:
		return ledger_purchase(db, j->account, j->cents, id, err);
	case JOB_PURCHASE_THEN_FAIL:
		if (ledger_purchase(db, j->account, j->cents, id, err) != 0)
			return -1;
		return ee_fail(err, 409, "changed_my_mind");
	case JOB_TRANSFER:
		return ledger_transfer(db, j->account, "sink", j->cents, id, err);
	case JOB_END_TRANSACTION:
		sqlite3_exec(db_handle(db), "ROLLBACK", NULL, NULL, NULL);
		return ee_fail(err, 503, "storage_error");
	case JOB_BREAK_AT_COMMIT:
		if (sqlite3_exec(db_handle(db),
		                 "PRAGMA defer_foreign_keys = ON; INSERT INTO node_events "
		                 "(node_id, event_type, occurred_at) VALUES ('no-such-node', 'x', 1)",
		                 NULL, NULL, NULL) != SQLITE_OK)
			return ee_fail(err, 500, "setup_failed");
		return 0;
	}
	return -1;
}

struct worker {
	pthread_t thread;
	struct commit_group *group;
	struct job *jobs;
	int count;
	int start_delay_ms;
	int busy_timeout_ms;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	sleep_ms(w->start_delay_ms);
	struct ee_db *db = open_db(w->busy_timeout_ms);
	if (!db)
		return NULL;
	for (int i = 0; i < w->count; i++) {
		w->jobs[i].commit.run = run_job;
		w->jobs[i].commit.arg = &w->jobs[i];
		commit_group_run(w->group, db, &w->jobs[i].commit);
	}
	db_close(db);
	return NULL;
}

/*
 * Runs jobs[0] (JOB_HOLD, which holds its batch for a while) and then, one
 * thread each, jobs[1..n-1] while it holds: those queue up and go in the
 * next batch together.
 */
#define HELD_MAX (COMMIT_GROUP_MAX_BATCH + 8)

static void run_held_batch(struct commit_group *group, struct job *jobs, int n)
{
	static struct worker w[HELD_MAX];
	for (int i = 0; i < n; i++) {
		w[i] = (struct worker){.group = group, .jobs = &jobs[i], .count = 1,
		                       .start_delay_ms = i == 0 ? 0 : 150, .busy_timeout_ms = 5000};
		pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < n; i++)
		pthread_join(w[i].thread, NULL);
}

static struct job hold_job(const char *account)
{
	struct job j = {.kind = JOB_HOLD, .cents = 1, .hold_ms = 600};
	snprintf(j.account, sizeof(j.account), "%s", account);
	return j;
}

static struct job make_job(enum job_kind kind, const char *account, int64_t cents)
{
	struct job j = {.kind = kind, .cents = cents};
	snprintf(j.account, sizeof(j.account), "%s", account);
	return j;
}

/* ---- cases ---- */

static void test_one_job(void)
{
	test_case("one job alone: committed, and visible to another connection");
	new_database();
	struct commit_group group;
	commit_group_init(&group);
	struct ee_db *db = open_db(5000), *other = open_db(5000);
	struct job j = make_job(JOB_PURCHASE, "alice", 500);
	j.commit.run = run_job;
	j.commit.arg = &j;
	CHECK_INT(commit_group_run(&group, db, &j.commit), 0);
	CHECK_INT(j.commit.rc, 0);
	CHECK_INT(balance(other, "alice"), 500);
	CHECK_INT(group.batches, 1);
	CHECK_INT(group.jobs, 1);
	CHECK(!db_in_transaction(db), "a transaction was left open");
	check_audit(other);
	db_close(db);
	db_close(other);
	commit_group_destroy(&group);
}

static void test_mixed_batch(void)
{
	test_case("one batch of 8: a refused and an undone job cost the others nothing");
	new_database();
	struct commit_group group;
	commit_group_init(&group);
	struct job jobs[8] = {
		hold_job("holder"),
		make_job(JOB_PURCHASE, "bob", 100),
		make_job(JOB_PURCHASE_THEN_FAIL, "carol", 700),
		make_job(JOB_PURCHASE, "dave", 300),
		make_job(JOB_TRANSFER, "erin", 50), /* erin has nothing: insufficient_funds */
		make_job(JOB_PURCHASE, "frank", 400),
		make_job(JOB_PURCHASE_THEN_FAIL, "bob", 900),
		make_job(JOB_PURCHASE, "grace", 200),
	};
	run_held_batch(&group, jobs, 8);
	CHECK_INT(group.batches, 2);
	CHECK_INT(group.jobs, 8);
	int expect_rc[8] = {0, 0, -1, 0, -1, 0, -1, 0};
	for (int i = 0; i < 8; i++)
		CHECK(jobs[i].commit.rc == expect_rc[i], "job %d: rc %d (%s)", i, jobs[i].commit.rc,
		      jobs[i].commit.err.reason);
	CHECK_STR(jobs[2].commit.err.reason, "changed_my_mind");
	CHECK_STR(jobs[4].commit.err.reason, "insufficient_funds");
	CHECK_INT(jobs[4].commit.err.status, 400);
	struct ee_db *db = open_db(5000);
	CHECK_INT(balance(db, "bob"), 100);
	CHECK_INT(balance(db, "carol"), 0);
	CHECK_INT(balance(db, "dave"), 300);
	CHECK_INT(balance(db, "frank"), 400);
	CHECK_INT(balance(db, "grace"), 200);
	CHECK_INT(balance(db, "holder"), 1);
	check_audit(db);
	db_close(db);
	commit_group_destroy(&group);
}

static void test_transaction_lost(void)
{
	test_case("a job after which SQLite has undone the transaction: the whole batch fails, "
	          "none of it stored, and the next batch works");
	new_database();
	struct commit_group group;
	commit_group_init(&group);
	struct job jobs[5] = {
		hold_job("holder"),
		make_job(JOB_PURCHASE, "kept-before", 100),
		make_job(JOB_PURCHASE, "kept-before-2", 100),
		make_job(JOB_END_TRANSACTION, "x", 0),
		make_job(JOB_PURCHASE, "after", 100),
	};
	/* The breaking job must not be first in its batch, or nothing is before it:
	 * the threads queue in start order, 10 ms apart. */
	struct worker w[5];
	for (int i = 0; i < 5; i++) {
		w[i] = (struct worker){.group = &group, .jobs = &jobs[i], .count = 1,
		                       .start_delay_ms = i == 0 ? 0 : 150 + 20 * i,
		                       .busy_timeout_ms = 5000};
		pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 5; i++)
		pthread_join(w[i].thread, NULL);
	CHECK_INT(group.batches, 2);
	CHECK_INT(jobs[0].commit.rc, 0);
	for (int i = 1; i < 5; i++) {
		CHECK(jobs[i].commit.rc == -1, "job %d kept", i);
		CHECK_STR(jobs[i].commit.err.reason, "storage_error");
	}
	struct ee_db *db = open_db(5000);
	CHECK_INT(balance(db, "kept-before"), 0);
	CHECK_INT(balance(db, "kept-before-2"), 0);
	CHECK_INT(balance(db, "after"), 0);
	CHECK_INT(balance(db, "holder"), 1);
	struct job next = make_job(JOB_PURCHASE, "next", 5);
	next.commit.run = run_job;
	next.commit.arg = &next;
	CHECK_INT(commit_group_run(&group, db, &next.commit), 0);
	CHECK_INT(balance(db, "next"), 5);
	check_audit(db);
	db_close(db);
	commit_group_destroy(&group);
}

static void test_commit_fails(void)
{
	test_case("COMMIT fails (a deferred foreign key): every job of the batch gets the failure, "
	          "none of it stored");
	new_database();
	struct commit_group group;
	commit_group_init(&group);
	struct job jobs[4] = {
		hold_job("holder"),
		make_job(JOB_PURCHASE, "one", 100),
		make_job(JOB_BREAK_AT_COMMIT, "x", 0),
		make_job(JOB_TRANSFER, "nobody", 10), /* refused on its own */
	};
	run_held_batch(&group, jobs, 4);
	CHECK_INT(group.batches, 2);
	CHECK_INT(jobs[0].commit.rc, 0);
	for (int i = 1; i < 4; i++) {
		CHECK(jobs[i].commit.rc == -1, "job %d kept", i);
		CHECK_STR(jobs[i].commit.err.reason, "conflict");
	}
	struct ee_db *db = open_db(5000);
	CHECK_INT(balance(db, "one"), 0);
	sqlite3_stmt *stmt;
	sqlite3_prepare_v2(db_handle(db), "SELECT COUNT(*) FROM node_events", -1, &stmt, NULL);
	CHECK(sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_int(stmt, 0) == 0,
	      "the broken row was stored");
	sqlite3_finalize(stmt);
	check_audit(db);
	db_close(db);
	commit_group_destroy(&group);
}

static void test_begin_busy(void)
{
	test_case("another process holds the write lock past the busy timeout: database_busy, "
	          "nothing stored; then it commits");
	new_database();
	struct commit_group group;
	commit_group_init(&group);
	struct ee_db *holder = open_db(5000), *db = open_db(100);
	struct ee_error err;
	CHECK_INT(db_begin_write(holder, &err), 0);
	struct job j = make_job(JOB_PURCHASE, "late", 100);
	j.commit.run = run_job;
	j.commit.arg = &j;
	CHECK_INT(commit_group_run(&group, db, &j.commit), -1);
	CHECK_STR(j.commit.err.reason, "database_busy");
	CHECK_INT(j.commit.err.status, 503);
	db_rollback(holder);
	CHECK_INT(balance(holder, "late"), 0);
	CHECK_INT(commit_group_run(&group, db, &j.commit), 0);
	CHECK_INT(balance(holder, "late"), 100);
	check_audit(holder);
	db_close(db);
	db_close(holder);
	commit_group_destroy(&group);
}

/*
 * More jobs queue behind the held batch than one batch takes: the leader of
 * each batch hands over to the first job left, which leads the next.
 */
static void test_more_than_a_batch(void)
{
	enum { QUEUED = HELD_MAX - 1 };
	test_case("%d jobs queued behind a held batch: batches of at most %d, each led by the "
	          "first job left, every job committed",
	          QUEUED, COMMIT_GROUP_MAX_BATCH);
	new_database();
	struct commit_group group;
	commit_group_init(&group);
	static struct job jobs[HELD_MAX];
	jobs[0] = hold_job("holder");
	for (int i = 1; i < HELD_MAX; i++) {
		char account[32];
		snprintf(account, sizeof(account), "acct-%d", i);
		jobs[i] = make_job(JOB_PURCHASE, account, i);
	}
	run_held_batch(&group, jobs, HELD_MAX);
	CHECK_INT(group.jobs, HELD_MAX);
	/* The held batch, then at least two for the jobs behind it (more if some came late). */
	CHECK(group.batches >= 3, "%lu batches", group.batches);
	CHECK(!group.leader_active && !group.head, "the group was left with a leader or a queue");
	struct ee_db *db = open_db(5000);
	for (int i = 1; i < HELD_MAX; i++) {
		char account[32];
		snprintf(account, sizeof(account), "acct-%d", i);
		CHECK(jobs[i].commit.rc == 0, "job %d: %s", i, jobs[i].commit.err.reason);
		CHECK_INT(balance(db, account), i);
	}
	check_audit(db);
	printf("# %lu jobs in %lu transactions\n", group.jobs, group.batches);
	db_close(db);
	commit_group_destroy(&group);
}

#define STRESS_THREADS 8
#define STRESS_JOBS 150

static void test_many_threads(void)
{
	test_case("%d threads, %d jobs each, purchases and transfers between them: every answer "
	          "matches what is stored",
	          STRESS_THREADS, STRESS_JOBS);
	new_database();
	struct commit_group group;
	commit_group_init(&group);
	static struct job jobs[STRESS_THREADS][STRESS_JOBS];
	struct worker w[STRESS_THREADS];
	for (int t = 0; t < STRESS_THREADS; t++) {
		char account[32];
		snprintf(account, sizeof(account), "acct-%d", t);
		for (int i = 0; i < STRESS_JOBS; i++)
			jobs[t][i] = make_job(i % 3 == 2 ? JOB_TRANSFER : JOB_PURCHASE, account,
			                      i % 3 == 2 ? 15 : 10);
		w[t] = (struct worker){.group = &group, .jobs = jobs[t], .count = STRESS_JOBS,
		                       .busy_timeout_ms = 5000};
		pthread_create(&w[t].thread, NULL, worker_main, &w[t]);
	}
	for (int t = 0; t < STRESS_THREADS; t++)
		pthread_join(w[t].thread, NULL);
	CHECK_INT(group.jobs, STRESS_THREADS * STRESS_JOBS);
	struct ee_db *db = open_db(5000);
	int64_t sink = 0;
	for (int t = 0; t < STRESS_THREADS; t++) {
		/* Each thread's jobs run in its order: 10, 10, then 15 out, so every
		 * transfer finds enough (20 - 15 + 20 - 15 ...). */
		int64_t expect = 0;
		for (int i = 0; i < STRESS_JOBS; i++) {
			CHECK(jobs[t][i].commit.rc == 0, "thread %d job %d: %s", t, i,
			      jobs[t][i].commit.err.reason);
			expect += jobs[t][i].kind == JOB_PURCHASE ? 10 : -15;
			sink += jobs[t][i].kind == JOB_TRANSFER ? 15 : 0;
		}
		char account[32];
		snprintf(account, sizeof(account), "acct-%d", t);
		CHECK_INT(balance(db, account), expect);
	}
	CHECK_INT(balance(db, "sink"), sink);
	check_audit(db);
	printf("# %lu jobs in %lu transactions\n", group.jobs, group.batches);
	db_close(db);
	commit_group_destroy(&group);
}

int main(void)
{
	ee_log_init("test_commit", EE_LOG_ERROR);
	if (stack_make_dir(tmp_dir, sizeof(tmp_dir), "commit") != 0) {
		perror("mkdtemp");
		return 1;
	}
	test_one_job();
	test_mixed_batch();
	test_transaction_lost();
	test_commit_fails();
	test_begin_busy();
	test_more_than_a_batch();
	test_many_threads();
	if (stack_remove_dir(tmp_dir) != 0)
		fprintf(stderr, "cannot remove %s: %s\n", tmp_dir, strerror(errno));
	return test_finish();
}
