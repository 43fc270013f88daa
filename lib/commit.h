/*
 * commit.h - group commit: the state changes that several threads of one
 * process ask for at the same moment share one write transaction, and so
 * one fsync, instead of one each.  ee-api's worker threads use it for every
 * money-moving request.
 *
 * A durable commit costs an fsync whatever it holds, so changes committed
 * one at a time cannot outpace the disk's fsync rate (docs/PERFORMANCE.md).
 * Here the first thread with a job to commit becomes the leader: it takes
 * the write lock (BEGIN IMMEDIATE), then every job queued by that moment,
 * runs each in a savepoint of its own on its own connection, and commits
 * once; the first job still queued then leads the next batch.  Each job's
 * thread gets its answer only after that COMMIT has returned, so an
 * answered change is exactly as durable as one committed alone
 * (docs/LEDGER.md, "Group commit").
 */
#ifndef EE_COMMIT_H
#define EE_COMMIT_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>

#include "db.h"
#include "error.h"

/* One state change, run inside the shared transaction on the leader's connection. */
struct commit_job {
	/*
	 * The change itself: 0 to keep it, -1 (with err filled) to undo it.  It
	 * must use only db for the database, and must not wait for anything.
	 */
	int (*run)(void *arg, struct ee_db *db, struct ee_error *err);
	void *arg;
	/* Filled by the leader before the job's thread wakes. */
	int rc;
	struct ee_error err;
	bool done;
	struct commit_job *next;
	/* Posted once the job is done, or to make its thread the next leader. */
	sem_t wake;
};

struct commit_group {
	pthread_mutex_t lock;
	struct commit_job *head, **tail; /* queued, not yet in a batch */
	bool leader_active;
	/* Transactions run and jobs in them, for tests and benchmarks. */
	unsigned long batches, jobs;
};

/* Jobs in one transaction at most; more wait for the next one. */
#define COMMIT_GROUP_MAX_BATCH 64

void commit_group_init(struct commit_group *group);
void commit_group_destroy(struct commit_group *group);

/*
 * Runs job in a write transaction, alone or with other threads' jobs, using
 * db if this thread leads the batch.  Returns job->rc once the transaction
 * holding it has committed (0) or failed (-1; job->err says why: the job's
 * own error, or the commit's, which then applies to every job in it).
 */
int commit_group_run(struct commit_group *group, struct ee_db *db, struct commit_job *job);

#endif
