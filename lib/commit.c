/* commit.c - group commit of write transactions shared by threads; see commit.h. */
#include "commit.h"

#include <string.h>

void commit_group_init(struct commit_group *group)
{
	memset(group, 0, sizeof(*group));
	pthread_mutex_init(&group->lock, NULL);
	pthread_cond_init(&group->finished, NULL);
	group->tail = &group->head;
}

void commit_group_destroy(struct commit_group *group)
{
	pthread_cond_destroy(&group->finished);
	pthread_mutex_destroy(&group->lock);
}

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

int commit_group_run(struct commit_group *group, struct ee_db *db, struct commit_job *job)
{
	job->done = false;
	job->next = NULL;
	pthread_mutex_lock(&group->lock);
	*group->tail = job;
	group->tail = &job->next;
	while (!job->done) {
		if (group->leader_active) {
			pthread_cond_wait(&group->finished, &group->lock);
			continue;
		}
		group->leader_active = true;
		pthread_mutex_unlock(&group->lock);
		struct commit_job *batch = run_batch(group, db);
		pthread_mutex_lock(&group->lock);
		/* job->next is read before done is set: once done, the job's thread
		 * may return and its job (on its stack) is gone. */
		group->batches++;
		for (struct commit_job *j = batch, *next; j; j = next) {
			next = j->next;
			j->done = true;
			group->jobs++;
		}
		group->leader_active = false;
		pthread_cond_broadcast(&group->finished);
	}
	pthread_mutex_unlock(&group->lock);
	return job->rc;
}
