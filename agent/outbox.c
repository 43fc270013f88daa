/*
 * outbox.c - finished messages from the worker threads to the event loop.
 *
 * A mutex-guarded list: threads append and wake the loop with
 * lws_cancel_service (safe from any thread) when the list was empty; the
 * loop takes the whole list in LWS_CALLBACK_EVENT_WAIT_CANCELLED.
 */
#include "agent.h"

#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

int outbox_init(struct outbox *ob)
{
	memset(ob, 0, sizeof(*ob));
	return pthread_mutex_init(&ob->lock, NULL) == 0 ? 0 : -1;
}

void outbox_destroy(struct outbox *ob)
{
	struct outbox_msg *m = outbox_take_all(ob);
	while (m) {
		struct outbox_msg *next = m->next;
		outbox_msg_free(m);
		m = next;
	}
	pthread_mutex_destroy(&ob->lock);
}

struct outbox_msg *outbox_msg_new(uint64_t generation, const char *text, size_t len)
{
	struct outbox_msg *m = calloc(1, sizeof(*m));
	char *mem = malloc(LWS_PRE + len + 1);
	if (!m || !mem) {
		free(m);
		free(mem);
		return NULL;
	}
	m->generation = generation;
	m->text = mem + LWS_PRE;
	if (len)
		memcpy(m->text, text, len);
	m->text[len] = '\0';
	m->len = len;
	return m;
}

struct outbox_msg *outbox_msg_adopt(uint64_t generation, char *mem, size_t len)
{
	struct outbox_msg *m = calloc(1, sizeof(*m));
	if (!m) {
		free(mem);
		return NULL;
	}
	m->generation = generation;
	m->text = mem + LWS_PRE;
	m->len = len;
	return m;
}

void outbox_msg_free(struct outbox_msg *m)
{
	if (!m)
		return;
	if (m->text)
		free(m->text - LWS_PRE);
	free(m);
}

void outbox_post(struct outbox *ob, struct outbox_msg *m)
{
	m->next = NULL;
	pthread_mutex_lock(&ob->lock);
	/* A list that was not empty has a wake on its way already: the loop takes the lot. */
	bool wake = !ob->head;
	if (ob->tail)
		ob->tail->next = m;
	else
		ob->head = m;
	ob->tail = m;
	struct lws_context *context = ob->context;
	pthread_mutex_unlock(&ob->lock);
	if (context && wake)
		lws_cancel_service(context);
}

struct outbox_msg *outbox_take_all(struct outbox *ob)
{
	pthread_mutex_lock(&ob->lock);
	struct outbox_msg *m = ob->head;
	ob->head = ob->tail = NULL;
	pthread_mutex_unlock(&ob->lock);
	return m;
}
