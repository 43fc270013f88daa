/* commit.c - group commit of write transactions shared by threads; see commit.h. */
#include "commit.h"

#include <string.h>

void commit_group_init(struct commit_group *group)
{
	memset(group, 0, sizeof(*group));
	pthread_mutex_init(&group->lock, NULL);
	group->tail = &group->head;
}

void commit_group_destroy(struct commit_group *group) { pthread_mutex_destroy(&group->lock); }

static void fail_all(struct commit_job *batch, const struct ee_error *err)
{
	for (struct commit_job *job = batch; job; job = job->next) {
		job->rc = -1;
		job->err = *err;
	}
}

/* Detaches up to COMMIT_GROUP_MAX_BATCH jobs from the queue's head.  Lock held. */
static struct commit_job *take_batch(struct commit_group *group)
{
	struct commit_job *batch = group->head, *last = batch;
	for (int n = 1; last->next && n < COMMIT_GROUP_MAX_BATCH; n++)
		last = last->next;
	group->head = last->next;
	if (!group->head)
		group->tail = &group->head;
	last->next = NULL;
	return batch;
}

/*
 * The leader's work.  The batch is taken only once the write lock is held,
 * so the jobs queued while this thread waited for another writer (another
 * worker's batch, ee-tunneld) go in this transaction too.
 */
static struct commit_job *run_batch(struct commit_group *group, struct ee_db *db)
{
	struct ee_error err;
	ee_error_clear(&err);
	int begun = db_begin_write(db, &err);
	pthread_mutex_lock(&group->lock);
	struct commit_job *batch = take_batch(group);
	pthread_mutex_unlock(&group->lock);
	if (begun != 0) {
		fail_all(batch, &err);
		return batch;
	}
	bool kept = false;
	for (struct commit_job *job = batch; job; job = job->next) {
		ee_error_clear(&job->err);
		job->rc = -1;
		if (db_savepoint(db, &job->err) == 0) {
			if (job->run(job->arg, db, &job->err) == 0 && db_release(db, &job->err) == 0) {
				job->rc = 0;
				kept = true;
			} else {
				db_rollback_to(db);
			}
		}
		if (!db_in_transaction(db)) {
			/* SQLite undid the whole transaction (a full disk, an I/O error):
			 * the jobs kept before this one are gone with it. */
			err = job->err;
			fail_all(batch, &err);
			return batch;
		}
	}
	if (!kept) {
		/* Every job refused or replayed: nothing to store, no commit to make. */
		db_rollback(db);
		return batch;
	}
	if (db_commit(db, &err) != 0)
		/* Nothing of the batch is stored, and each job's answer was computed
		 * against changes that are now undone: every job gets the failure. */
		fail_all(batch, &err);
	return batch;
}

/*
 * Waking: each job's thread sleeps on its own semaphore, and the leader
 * posts only the jobs it finished, and, when jobs are still queued, the
 * first of them, whose thread then leads the next batch.  One condition
 * variable for all woke every waiting thread at each commit, most of them
 * only to wait again (docs/PERFORMANCE.md, transfers).  A post is the
 * last the leader does with a job: its thread may return at once, and the
 * job lives on that thread's stack.
 */
static void wait_for(struct commit_job *job)
{
	while (sem_wait(&job->wake) != 0)
		; /* EINTR: a signal (the request watchdog's) is not a wake-up */
}

int commit_group_run(struct commit_group *group, struct ee_db *db, struct commit_job *job)
{
	job->done = false;
	job->next = NULL;
	sem_init(&job->wake, 0, 0);
	pthread_mutex_lock(&group->lock);
	*group->tail = job;
	group->tail = &job->next;
	bool lead = !group->leader_active;
	group->leader_active = true;
	pthread_mutex_unlock(&group->lock);
	for (;;) {
		/* Woken and not done: the leader before handed over (leader_active stays set). */
		if (!lead) {
			wait_for(job);
			if (job->done)
				break;
			lead = true;
		}
		struct commit_job *batch = run_batch(group, db);
		bool mine = false;
		unsigned long jobs = 0;
		for (struct commit_job *j = batch; j; j = j->next, jobs++)
			mine = mine || j == job;
		pthread_mutex_lock(&group->lock);
		group->batches++;
		group->jobs += jobs;
		/* The leader is the queue's head, so its own job is in its first
		 * batch; the next leader is the first job queued meanwhile. */
		struct commit_job *next_leader = mine ? group->head : NULL;
		if (mine && !next_leader)
			group->leader_active = false;
		pthread_mutex_unlock(&group->lock);
		for (struct commit_job *j = batch, *next; j; j = next) {
			next = j->next;
			j->done = true;
			if (j != job)
				sem_post(&j->wake);
		}
		if (mine) {
			if (next_leader)
				sem_post(&next_leader->wake);
			break;
		}
	}
	sem_destroy(&job->wake);
	return job->rc;
}
