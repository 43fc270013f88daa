/*
 * route.c - which live tunnel serves an app, and how many unattested
 * sockets each source address holds.
 *
 * Apps live in a hash table of TD_APP_BUCKETS chains; each app keeps the
 * list of its sessions.  A request goes to the allowed session with the
 * fewest requests in flight (ties broken round-robin), never to one at
 * EE_TUNNEL_MAX_INFLIGHT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"
#include "tunneld.h"

static unsigned int bucket_of(const char *name)
{
	unsigned int h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % TD_APP_BUCKETS;
}

struct app_entry *route_find(struct tunneld *td, const char *app)
{
	for (struct app_entry *e = td->apps[bucket_of(app)]; e; e = e->bucket_next) {
		if (strcmp(e->name, app) == 0)
			return e;
	}
	return NULL;
}

struct app_entry *route_get(struct tunneld *td, const char *app, const char *repo)
{
	struct app_entry *e = route_find(td, app);
	if (e)
		return e;
	size_t name_len = strlen(app), repo_len = strlen(repo);
	e = calloc(1, sizeof(*e) + name_len + 1 + repo_len + 1);
	if (!e)
		return NULL;
	memcpy(e->name, app, name_len + 1);
	char *r = e->name + name_len + 1;
	memcpy(r, repo, repo_len + 1);
	e->repo = r;
	unsigned int b = bucket_of(app);
	e->bucket_next = td->apps[b];
	td->apps[b] = e;
	return e;
}

void route_add(struct tunneld *td, struct session *s)
{
	struct app_entry *e = route_get(td, s->app_name, s->repo);
	if (!e)
		return;
	s->app = e;
	s->app_prev = NULL;
	s->app_next = e->sessions;
	if (e->sessions)
		e->sessions->app_prev = s;
	e->sessions = s;
}

void route_remove(struct tunneld *td, struct session *s)
{
	struct app_entry *e = s->app;
	if (!e)
		return;
	if (s->app_prev)
		s->app_prev->app_next = s->app_next;
	else
		e->sessions = s->app_next;
	if (s->app_next)
		s->app_next->app_prev = s->app_prev;
	s->app = NULL;
	s->app_next = s->app_prev = NULL;
	/* An app with no live session is forgotten here; its binding stays in the database. */
	if (!e->sessions) {
		unsigned int b = bucket_of(e->name);
		struct app_entry **pp = &td->apps[b];
		while (*pp && *pp != e)
			pp = &(*pp)->bucket_next;
		if (*pp)
			*pp = e->bucket_next;
		free(e);
	}
}

struct session *route_pick(struct tunneld *td, const char *app, const struct session *exclude)
{
	struct app_entry *e = route_find(td, app);
	if (!e)
		return NULL;
	unsigned int count = 0;
	for (struct session *s = e->sessions; s; s = s->app_next)
		count++;
	if (count == 0)
		return NULL;
	/* Among the least busy, take the first at or after a rotating start. */
	unsigned int start = e->next_pick++ % count, index = 0, best_rank = 0;
	int64_t now = time_now_ms();
	struct session *best = NULL;
	for (struct session *s = e->sessions; s; s = s->app_next, index++) {
		if (s == exclude || !session_allowed(s, now) || s->inflight >= td->cfg.max_inflight)
			continue;
		unsigned int rank = (index + count - start) % count;
		if (!best || s->inflight < best->inflight ||
		    (s->inflight == best->inflight && rank < best_rank)) {
			best = s;
			best_rank = rank;
		}
	}
	return best;
}

int source_acquire(struct tunneld *td, const char *addr)
{
	struct source_count *c = td->sources;
	while (c && strcmp(c->addr, addr) != 0)
		c = c->next;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -1;
		snprintf(c->addr, sizeof(c->addr), "%s", addr);
		c->next = td->sources;
		td->sources = c;
	}
	if (c->pending >= td->cfg.max_pending_per_source)
		return -1;
	c->pending++;
	return 0;
}

void source_release(struct tunneld *td, const char *addr)
{
	struct source_count **pp = &td->sources;
	while (*pp && strcmp((*pp)->addr, addr) != 0)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	if (--(*pp)->pending <= 0) {
		struct source_count *gone = *pp;
		*pp = gone->next;
		free(gone);
	}
}
