/*
 * verify_pool.c - attestations are verified off the event loop.
 *
 * A verification may fetch collateral or an allowlist over the network and
 * costs a few signature checks; the loop must not wait for it.  Each worker
 * thread owns a verifier (lib/verifier.h) with its own database connection
 * and curl handles.  Requests go in through a bounded queue; verdicts come
 * back through a second queue, and lws_cancel_service() wakes the loop,
 * which hands each verdict to its session if the session still exists.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "log.h"
#include "timeutil.h"
#include "tunneld.h"
#include "verifier.h"

#define POOL_MAX_THREADS 64

struct verify_pool {
	struct tunneld *td;
	struct verifier_options opts;
	pthread_t threads[POOL_MAX_THREADS];
	int thread_count;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct verify_request *todo_head, *todo_tail;
	struct verify_request *done_head, *done_tail;
	int queued;
	/* The loop's own: the heap's trim after a burst (verify_pool_collect). */
	int verdicts_since_trim;
	int64_t last_verdict_ms;
	bool trim_scheduled;
	lws_sorted_usec_list_t sul_trim;
	bool stopping;
};

void verify_request_free(struct verify_request *r)
{
	if (!r)
		return;
	free(r->quote_b64);
	free(r->report_data_hex);
	free(r->measurements_json);
	free(r);
}

static void *worker(void *arg)
{
	struct verify_pool *pool = arg;
	struct tunneld *td = pool->td;
	struct ee_db *db = NULL;
	struct verifier *v = NULL;
	struct ee_error err;
	struct ee_db_options dbo = {td->cfg.base.db_busy_timeout_ms, td->cfg.base.db_synchronous, true};
	if (db_open(td->cfg.base.db_path, &dbo, &db, &err) != 0 ||
	    verifier_create(&pool->opts, db, &v, &err) != 0)
		log_error("a verifier thread could not start: %s", err.reason);
	for (;;) {
		pthread_mutex_lock(&pool->lock);
		while (!pool->todo_head && !pool->stopping)
			pthread_cond_wait(&pool->wake, &pool->lock);
		if (pool->stopping && !pool->todo_head) {
			pthread_mutex_unlock(&pool->lock);
			break;
		}
		struct verify_request *r = pool->todo_head;
		pool->todo_head = r->next;
		if (!pool->todo_head)
			pool->todo_tail = NULL;
		pthread_mutex_unlock(&pool->lock);

		struct json_object *measurements =
			r->measurements_json ? json_parse_value(r->measurements_json, strlen(r->measurements_json))
			                     : NULL;
		struct attest_evidence ev = {
			.nonce_hex = r->nonce,
			.quote_b64 = r->quote_b64,
			.quote_b64_len = r->quote_b64 ? strlen(r->quote_b64) : 0,
			.report_data_hex = r->report_data_hex,
			.measurements = measurements,
			.network = r->network,
			.repo = r->repo,
			.release_tag = r->release_tag,
		};
		if (v) {
			verifier_verify(v, &ev, &r->verdict);
		} else {
			memset(&r->verdict, 0, sizeof(r->verdict));
			r->verdict.unavailable = true;
			snprintf(r->verdict.reason, sizeof(r->verdict.reason), "verifier_unavailable");
		}
		json_object_put(measurements);

		pthread_mutex_lock(&pool->lock);
		r->next = NULL;
		if (pool->done_tail)
			pool->done_tail->next = r;
		else
			pool->done_head = r;
		pool->done_tail = r;
		pthread_mutex_unlock(&pool->lock);
		lws_cancel_service(td->context);
	}
	verifier_destroy(v);
	db_close(db);
	return NULL;
}

int verify_pool_start(struct tunneld *td, const struct verifier_options *opts, int threads,
                      struct verify_pool **out)
{
	struct verify_pool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -1;
	pool->td = td;
	pool->opts = *opts;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	if (threads > POOL_MAX_THREADS)
		threads = POOL_MAX_THREADS;
	for (int i = 0; i < threads; i++) {
		if (pthread_create(&pool->threads[i], NULL, worker, pool) != 0) {
			log_error("cannot start verifier thread %d", i);
			break;
		}
		pool->thread_count++;
	}
	if (pool->thread_count == 0) {
		free(pool);
		return -1;
	}
	*out = pool;
	return 0;
}

int verify_pool_submit(struct verify_pool *pool, struct verify_request *r)
{
	pthread_mutex_lock(&pool->lock);
	if (pool->stopping || pool->queued >= pool->td->cfg.verify_queue) {
		pthread_mutex_unlock(&pool->lock);
		return -1;
	}
	r->next = NULL;
	if (pool->todo_tail)
		pool->todo_tail->next = r;
	else
		pool->todo_head = r;
	pool->todo_tail = r;
	pool->queued++;
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

/*
 * A burst of attestations (a fleet connecting, or coming back after a
 * restart) leaves its quotes, verdicts and message buffers freed in the
 * middle of the heap, between the sessions that stay, and glibc keeps
 * those pages resident.  After TRIM_AFTER_VERDICTS verdicts, once none
 * has come for TRIM_QUIET_MS and none is queued, malloc_trim gives the
 * free pages back.  While verdicts keep coming (a burst, or a large
 * fleet's periodic attestations) nothing is trimmed: the freed memory is
 * reused, and trimming in the middle of a burst slowed it down by half.
 */
#define TRIM_AFTER_VERDICTS 64
#define TRIM_QUIET_MS 1000

static void trim_cb(lws_sorted_usec_list_t *sul)
{
	struct verify_pool *pool = lws_container_of(sul, struct verify_pool, sul_trim);
	int64_t quiet = time_monotonic_ms() - pool->last_verdict_ms;
	pthread_mutex_lock(&pool->lock);
	bool idle = pool->queued == 0;
	pthread_mutex_unlock(&pool->lock);
	if (!idle || quiet < TRIM_QUIET_MS) {
		int64_t wait_ms = idle ? TRIM_QUIET_MS - quiet : TRIM_QUIET_MS;
		lws_sul_schedule(pool->td->context, 0, &pool->sul_trim, trim_cb,
		                 (lws_usec_t)wait_ms * LWS_US_PER_MS);
		return;
	}
	pool->trim_scheduled = false;
	pool->verdicts_since_trim = 0;
	malloc_trim(0);
}

void verify_pool_collect(struct verify_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	struct verify_request *r = pool->done_head;
	pool->done_head = pool->done_tail = NULL;
	pthread_mutex_unlock(&pool->lock);
	if (!r)
		return;
	while (r) {
		struct verify_request *next = r->next;
		pthread_mutex_lock(&pool->lock);
		pool->queued--;
		pthread_mutex_unlock(&pool->lock);
		session_on_verdict(pool->td, r->session_id, &r->verdict);
		verify_request_free(r);
		pool->verdicts_since_trim++;
		r = next;
	}
	pool->last_verdict_ms = time_monotonic_ms();
	if (pool->verdicts_since_trim >= TRIM_AFTER_VERDICTS && !pool->trim_scheduled) {
		pool->trim_scheduled = true;
		lws_sul_schedule(pool->td->context, 0, &pool->sul_trim, trim_cb,
		                 (lws_usec_t)TRIM_QUIET_MS * LWS_US_PER_MS);
	}
}

void verify_pool_stop(struct verify_pool *pool)
{
	if (!pool)
		return;
	lws_sul_cancel(&pool->sul_trim);
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	/* Verifications not started are dropped: their sockets are closing anyway. */
	struct verify_request *r = pool->todo_head;
	pool->todo_head = pool->todo_tail = NULL;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	while (r) {
		struct verify_request *next = r->next;
		verify_request_free(r);
		r = next;
	}
	for (int i = 0; i < pool->thread_count; i++)
		pthread_join(pool->threads[i], NULL);
	r = pool->done_head;
	while (r) {
		struct verify_request *next = r->next;
		verify_request_free(r);
		r = next;
	}
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->wake);
	verifier_options_free(&pool->opts);
	free(pool);
}
