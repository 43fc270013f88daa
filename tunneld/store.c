/*
 * store.c - ee-tunneld's writes to the database.
 *
 * The event loop never waits on the disk for long: state changes are queued
 * and written in one BEGIN IMMEDIATE transaction per turn of the loop.  When
 * the database is busy, full or read-only the batch stays queued and is
 * retried with backoff, so a health_miss or attest_miss event (which
 * settlement reads) is delayed, never lost.  Each operation carries its own
 * time, so a late write still records when things happened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nodes.h"
#include "timeutil.h"
#include "tunneld.h"

#define STORE_MAX_QUEUED 1000000
#define STORE_RETRY_MIN_MS 50
#define STORE_RETRY_MAX_MS 5000
/* A lock held by ee-api's writes for a moment is normal: only longer is worth a warning. */
#define STORE_WARN_AFTER_MS 2000

enum op_kind { OP_REGISTER, OP_ATTESTATION, OP_HEALTH, OP_CONNECTION, OP_EVENT, OP_DISCONNECT_ALL };

struct store_op {
	struct store_op *next;
	enum op_kind kind;
	int64_t at_ms;
	bool flag; /* sealed, or connected */
	char agent_id[EE_NODE_ID_MAX + 1];
	char app[EE_APP_NAME_MAX + 1];
	char repo[REGISTRY_REPO_MAX + 1];
	char release_tag[REGISTRY_TAG_MAX + 1];
	char network[REGISTRY_NETWORK_MAX + 1];
	char text[64];    /* status, or event type */
	char detail[160]; /* event detail, or tunnel id */
};

struct store {
	struct tunneld *td;
	struct store_op *head, *tail;
	int queued;
	bool scheduled;
	int retry_ms;
	int64_t failing_since_ms; /* the first failed flush of this episode; 0 when none */
	bool warned;              /* the episode has been logged */
	lws_sorted_usec_list_t sul;
};

static void flush_cb(lws_sorted_usec_list_t *sul);

int store_create(struct tunneld *td, struct store **out)
{
	struct store *st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	st->td = td;
	*out = st;
	return 0;
}

void store_destroy(struct store *st)
{
	if (!st)
		return;
	lws_sul_cancel(&st->sul);
	while (st->head) {
		struct store_op *op = st->head;
		st->head = op->next;
		free(op);
	}
	free(st);
}

static void schedule(struct store *st, int delay_ms)
{
	/* While the loop is being torn down, store_flush_now() writes the queue. */
	if (st->scheduled || !st->td->context || st->td->stop)
		return;
	st->scheduled = true;
	lws_sul_schedule(st->td->context, 0, &st->sul, flush_cb,
	                 delay_ms > 0 ? (lws_usec_t)delay_ms * LWS_US_PER_MS : 1);
}

static struct store_op *new_op(struct store *st, enum op_kind kind, const char *agent_id,
                               int64_t at_ms)
{
	if (st->queued >= STORE_MAX_QUEUED) {
		log_error("database write queue full (%d operations); dropping a %d for %s",
		          st->queued, (int)kind, agent_id);
		return NULL;
	}
	struct store_op *op = calloc(1, sizeof(*op));
	if (!op) {
		log_error("out of memory queueing a database write for %s", agent_id);
		return NULL;
	}
	op->kind = kind;
	op->at_ms = at_ms;
	snprintf(op->agent_id, sizeof(op->agent_id), "%s", agent_id);
	if (st->tail)
		st->tail->next = op;
	else
		st->head = op;
	st->tail = op;
	st->queued++;
	schedule(st, st->retry_ms);
	return op;
}

void store_register(struct store *st, const struct session *s, int64_t now_ms)
{
	struct store_op *op = new_op(st, OP_REGISTER, s->agent_id, now_ms);
	if (!op)
		return;
	snprintf(op->app, sizeof(op->app), "%s", s->app_name);
	snprintf(op->repo, sizeof(op->repo), "%s", s->repo);
	snprintf(op->release_tag, sizeof(op->release_tag), "%s", s->release_tag);
	snprintf(op->network, sizeof(op->network), "%s", s->network);
}

void store_attestation(struct store *st, const struct session *s, const char *status,
                       int64_t now_ms)
{
	struct store_op *op = new_op(st, OP_ATTESTATION, s->agent_id, now_ms);
	if (!op)
		return;
	op->flag = s->sealed;
	snprintf(op->text, sizeof(op->text), "%s", status);
}

void store_health(struct store *st, const struct session *s, const char *status, int64_t now_ms)
{
	struct store_op *op = new_op(st, OP_HEALTH, s->agent_id, now_ms);
	if (op)
		snprintf(op->text, sizeof(op->text), "%s", status);
}

void store_connection(struct store *st, const struct session *s, bool connected, int64_t now_ms)
{
	struct store_op *op = new_op(st, OP_CONNECTION, s->agent_id, now_ms);
	if (!op)
		return;
	op->flag = connected;
	snprintf(op->detail, sizeof(op->detail), "%s", s->tunnel_id);
}

void store_event(struct store *st, const char *agent_id, const char *type, const char *detail,
                 int64_t now_ms)
{
	struct store_op *op = new_op(st, OP_EVENT, agent_id, now_ms);
	if (!op)
		return;
	snprintf(op->text, sizeof(op->text), "%s", type);
	snprintf(op->detail, sizeof(op->detail), "%s", detail ? detail : "");
}

static int apply(struct store *st, const struct store_op *op, struct ee_error *err)
{
	struct ee_db *db = st->td->db;
	switch (op->kind) {
	case OP_REGISTER:
		if (nodes_ensure(db, op->agent_id, err) != 0)
			return -1;
		return registry_register_agent(db, &st->td->policy, op->app, op->repo, op->release_tag,
		                               op->network, op->agent_id, op->at_ms, err);
	case OP_ATTESTATION:
		if (registry_mark_attested(db, op->agent_id, op->text, op->flag, op->at_ms, err) != 0)
			return -1;
		return nodes_mark_attestation(db, op->agent_id, op->text, op->at_ms, err);
	case OP_HEALTH:
		if (registry_mark_health(db, op->agent_id, op->text, op->at_ms, err) != 0)
			return -1;
		return nodes_mark_health(db, op->agent_id, op->text, op->at_ms, err);
	case OP_CONNECTION:
		return registry_mark_connection(db, op->agent_id, op->flag, op->detail, op->at_ms, err);
	case OP_EVENT:
		return nodes_record_event(db, op->agent_id, op->text, op->detail, op->at_ms, err);
	case OP_DISCONNECT_ALL:
		return registry_disconnect_all(db, op->at_ms, err);
	}
	return 0;
}

/* A failure the same batch may survive later (the disk), rather than a bad operation. */
static bool transient(const struct ee_error *err) { return err->status == 503; }

/* Writes the queue; returns 0 when it is empty afterwards, -1 to retry later. */
static int flush(struct store *st)
{
	while (st->head) {
		struct ee_error err;
		if (db_begin_write(st->td->db, &err) != 0)
			return -1;
		struct store_op *op = st->head, *bad = NULL;
		int count = 0;
		for (; op; op = op->next, count++) {
			if (apply(st, op, &err) != 0) {
				bad = op;
				break;
			}
		}
		if (bad) {
			db_rollback(st->td->db);
			if (transient(&err))
				return -1;
			/* One operation the database refuses must not hold back the rest. */
			log_error("dropping a database write for agent %s: %s", bad->agent_id, err.reason);
			struct store_op **pp = &st->head;
			while (*pp != bad)
				pp = &(*pp)->next;
			*pp = bad->next;
			if (st->tail == bad) {
				st->tail = st->head;
				while (st->tail && st->tail->next)
					st->tail = st->tail->next;
			}
			free(bad);
			st->queued--;
			continue;
		}
		if (db_commit(st->td->db, &err) != 0)
			return -1;
		while (count-- > 0) {
			struct store_op *done = st->head;
			st->head = done->next;
			free(done);
			st->queued--;
		}
		st->tail = NULL;
	}
	return 0;
}

static void flush_cb(lws_sorted_usec_list_t *sul)
{
	struct store *st = lws_container_of(sul, struct store, sul);
	st->scheduled = false;
	int64_t now = time_now_ms();
	if (flush(st) == 0) {
		if (st->warned)
			log_info("database writes resumed after %lld ms",
			         (long long)(now - st->failing_since_ms));
		st->retry_ms = 0;
		st->failing_since_ms = 0;
		st->warned = false;
		return;
	}
	int next = st->retry_ms ? st->retry_ms * 2 : STORE_RETRY_MIN_MS;
	if (next > STORE_RETRY_MAX_MS)
		next = STORE_RETRY_MAX_MS;
	if (!st->failing_since_ms)
		st->failing_since_ms = now;
	if (!st->warned && now - st->failing_since_ms >= STORE_WARN_AFTER_MS) {
		log_warn("database writes failing for %lld ms; %d queued, retrying",
		         (long long)(now - st->failing_since_ms), st->queued);
		st->warned = true;
	}
	st->retry_ms = next;
	schedule(st, next);
}

void store_disconnect_all(struct store *st, int64_t now_ms)
{
	new_op(st, OP_DISCONNECT_ALL, "*", now_ms);
}

void store_start(struct store *st)
{
	if (st->head)
		schedule(st, 0);
}

int store_flush_now(struct store *st)
{
	lws_sul_cancel(&st->sul);
	st->scheduled = false;
	return flush(st);
}
