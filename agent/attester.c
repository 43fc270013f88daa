/*
 * attester.c - the thread that makes attestation answers.
 *
 * A quote from configfs-tsm takes the kernel a while, and the tunnel must
 * keep serving meanwhile, so quotes are made here and the answers posted
 * to the outbox.  Only the newest challenge matters (the control plane
 * keeps one outstanding per tunnel), so a new request replaces a waiting
 * one.  The quote source is opened here too, and reopened until it works:
 * configfs may be mounted after the agent starts.
 */
#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest.h"
#include "log.h"

#define SOURCE_RETRY_MS 2000

struct attester {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	bool pending;
	uint64_t generation;
	char nonce[ATTEST_NONCE_HEX_LEN + 1];
	bool source_ready;
	char last_error[EE_REASON_MAX];
	const struct agent_config *cfg;
	struct outbox *outbox;
	struct quote_source *source; /* the thread's alone */
};

static void set_error(struct attester *at, const char *reason)
{
	pthread_mutex_lock(&at->lock);
	snprintf(at->last_error, sizeof(at->last_error), "%s", reason);
	pthread_mutex_unlock(&at->lock);
}

static void try_open(struct attester *at)
{
	struct ee_error err;
	if (quote_source_open(at->cfg, &at->source, &err) != 0) {
		/* Said once per streak: the loop retries quietly. */
		if (strcmp(at->last_error, err.reason) != 0)
			log_error("quote source %s unavailable: %s",
			          at->cfg->quote_source == QUOTE_SOURCE_DEV ? "dev" : "tsm", err.reason);
		set_error(at, err.reason);
		return;
	}
	log_info("quote source %s ready", quote_source_name(at->source));
	pthread_mutex_lock(&at->lock);
	at->source_ready = true;
	at->last_error[0] = '\0';
	pthread_mutex_unlock(&at->lock);
}

static void answer(struct attester *at, uint64_t generation, const char *nonce)
{
	struct ee_error err;
	char *text = quote_attest_response(at->source, nonce, &err);
	struct outbox_msg *m;
	if (text) {
		m = outbox_msg_new(generation, text, strlen(text));
		free(text);
		set_error(at, "");
	} else {
		log_error("cannot make an attestation quote: %s", err.reason);
		set_error(at, err.reason);
		m = outbox_msg_new(generation, err.reason, strlen(err.reason));
		if (m)
			m->is_attest_failure = true;
	}
	if (m)
		outbox_post(at->outbox, m);
}

static void *attester_main(void *arg)
{
	struct attester *at = arg;
	pthread_mutex_lock(&at->lock);
	for (;;) {
		if (at->stop)
			break;
		if (!at->source_ready) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += SOURCE_RETRY_MS / 1000;
			pthread_cond_timedwait(&at->wake, &at->lock, &until);
			if (at->stop)
				break;
			pthread_mutex_unlock(&at->lock);
			try_open(at);
			pthread_mutex_lock(&at->lock);
			continue;
		}
		if (!at->pending) {
			pthread_cond_wait(&at->wake, &at->lock);
			continue;
		}
		uint64_t generation = at->generation;
		char nonce[sizeof(at->nonce)];
		memcpy(nonce, at->nonce, sizeof(nonce));
		at->pending = false;
		pthread_mutex_unlock(&at->lock);
		answer(at, generation, nonce);
		pthread_mutex_lock(&at->lock);
	}
	pthread_mutex_unlock(&at->lock);
	return NULL;
}

int attester_start(const struct agent_config *cfg, struct outbox *ob, struct attester **out,
                   struct ee_error *err)
{
	struct attester *at = calloc(1, sizeof(*at));
	if (!at)
		return ee_fail(err, 500, "out_of_memory");
	at->cfg = cfg;
	at->outbox = ob;
	if (pthread_mutex_init(&at->lock, NULL) != 0) {
		free(at);
		return ee_fail(err, 500, "thread_start_failed");
	}
	if (pthread_cond_init(&at->wake, NULL) != 0) {
		pthread_mutex_destroy(&at->lock);
		free(at);
		return ee_fail(err, 500, "thread_start_failed");
	}
	/* The first try happens now, so that the agent knows before it connects. */
	try_open(at);
	if (pthread_create(&at->thread, NULL, attester_main, at) != 0) {
		quote_source_close(at->source);
		pthread_cond_destroy(&at->wake);
		pthread_mutex_destroy(&at->lock);
		free(at);
		return ee_fail(err, 500, "thread_start_failed");
	}
	*out = at;
	return 0;
}

void attester_request(struct attester *at, uint64_t generation, const char *nonce)
{
	pthread_mutex_lock(&at->lock);
	at->generation = generation;
	snprintf(at->nonce, sizeof(at->nonce), "%s", nonce);
	at->pending = true;
	pthread_cond_signal(&at->wake);
	pthread_mutex_unlock(&at->lock);
}

bool attester_source_ready(struct attester *at)
{
	pthread_mutex_lock(&at->lock);
	bool ready = at->source_ready;
	pthread_mutex_unlock(&at->lock);
	return ready;
}

void attester_last_error(struct attester *at, char *out, size_t out_len)
{
	pthread_mutex_lock(&at->lock);
	snprintf(out, out_len, "%s", at->last_error);
	pthread_mutex_unlock(&at->lock);
}

void attester_stop(struct attester *at)
{
	if (!at)
		return;
	pthread_mutex_lock(&at->lock);
	at->stop = true;
	pthread_cond_signal(&at->wake);
	pthread_mutex_unlock(&at->lock);
	pthread_join(at->thread, NULL);
	quote_source_close(at->source);
	pthread_cond_destroy(&at->wake);
	pthread_mutex_destroy(&at->lock);
	free(at);
}
