/*
 * soak.c - `make soak`: the whole control plane on loopback for a long
 * while, with a fleet of attested agents that come and go under proxied
 * traffic, checked for errors the design does not expect and for memory
 * that keeps growing.
 *
 *   soak            settings from the environment (docs/TESTING.md, "Soak"):
 *     EE_SOAK_SECONDS         600   how long the soak runs once the fleet is up
 *     EE_SOAK_AGENTS          1000  agents (a multiple of 40)
 *     EE_SOAK_RPS             200   proxied and REST requests per second
 *     EE_SOAK_CHURN_PER_MIN   120   agents taken down per minute (closed
 *                                   cleanly and dropped in turn; half at
 *                                   random, half as a request reaches them),
 *                                   each back after 1-4 s with a new
 *                                   register and quote
 *     EE_SOAK_HEARTBEAT_SEC   10    each agent's health heartbeat period
 *     EE_SOAK_ATTEST_SEC      60    ee-tunneld's EE_ATTEST_INTERVAL_SEC
 *     EE_SOAK_WARMUP_PERCENT  20    memory is judged from the end of this
 *                                   share of EE_SOAK_SECONDS (at least
 *                                   MIN_WARMUP_MS) to the end
 *     EE_SOAK_MEMORY                "report": VmRSS printed, not judged
 *                                   (sanitizer builds)
 *     EE_TEST_BIN                   the programs (default build/bin)
 *
 * The stack is tests/support/stack.h's: ee-api as its own FastCGI server
 * (two workers), ee-tunneld with its control and proxy listeners, Caddy in
 * front, a fresh database, and sandbox-1 as a development network whose
 * root (a dcapgen hierarchy) signs the agents' quotes.  Agents are
 * testagent.h's, run non-blocking from AGENT_PROCS processes: they register,
 * attest with a DCAP quote, send heartbeats, answer periodic attestation
 * and every proxy_request (status 200, X-Soak-App naming their app, a body
 * echoing the request).  AGENTS_PER_APP agents serve each app; at most
 * MAX_DOWN_PER_APP of an app are taken down at once, so every app always
 * has an agent to serve it.
 *
 * TRAFFIC_PROCS processes (libcurl multi) send EE_SOAK_RPS requests a
 * second, paced, by every way in: the proxy listener by Host and by
 * X-EE-App, Caddy by Host, the JSON envelope through Caddy, and REST calls
 * to ee-api through Caddy (resolve, an app's agents, purchases and
 * transfers with Idempotency-Key, balances).  Every answer is classified:
 *   ok                  200, and for a proxied request the echo of its own
 *                       app's agent
 *   expected            502 tunnel_closed, 503 no_tunnel, 504 proxy_timeout,
 *                       only when the soak's latest takedown of an agent of
 *                       that app came less than TAKEDOWN_SLACK_MS before the
 *                       request or after it (a POST in flight on a closing
 *                       tunnel is 502 tunnel_closed by design; a GET goes to
 *                       another agent)
 *   error               anything else, printed (the first few of each kind)
 *
 * Failures (exit 1, "soak: FAIL" summary line): any error answer; an agent
 * closed, refused or left unattested by the control plane when the soak did
 * not ask for it; an ee-api worker or ee-tunneld gone; an error or warning
 * line in ee-tunneld's or ee-api's log that is not in expected_log_lines;
 * VmRSS of ee-tunneld or of ee-api (master and workers together) growing
 * more than RSS_BOUND_KB + RSS_BOUND_PERCENT % from the end of the warm-up
 * to the end; at the end, ee-api --check-ledger and the ledger audit, the
 * balances the soak's own purchases and transfers add up to, PRAGMA
 * integrity_check and foreign_key_check, no agent left connected in the
 * database once the fleet has gone, and node_events holding no miss but
 * one health_miss "disconnect" per tunnel.
 *
 * Every process this starts is ended on every exit path (the children of
 * fork with PR_SET_PDEATHSIG; the stack by stack_stop, atexit and signals).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <sqlite3.h>

#include "base64.h"
#include "check.h"
#include "client.h"
#include "jsonutil.h"
#include "stack.h"
#include "testagent.h"
#include "timeutil.h"
#include "util.h"

#define HOST "127.0.0.1"
#define NETWORK "sandbox-1"
#define REPO "soak/fleet"
#define APP_HOST_SUFFIX "app.localhost" /* caddy/Caddyfile's default */
#define AGENTS_PER_APP 10
#define MAX_DOWN_PER_APP 3
#define AGENT_PROCS 4
#define TRAFFIC_PROCS 2
#define MAX_AGENTS 20000
#define MAX_APPS (MAX_AGENTS / AGENTS_PER_APP)
#define CONNECTS_PER_TICK 25        /* new sockets per agent process per loop turn */
#define TRAFFIC_MAX_INFLIGHT 64     /* per traffic process */
#define TAKEDOWN_SLACK_MS 3000      /* a takedown this long before a request still explains it */
#define UP_TIMEOUT_MS 60000         /* register to attested, at worst, before it is an error */
#define FLEET_UP_TIMEOUT_MS 300000
#define SAMPLE_EVERY_MS 5000
#define REPORT_EVERY_MS 30000
#define MAX_SAMPLES 4096
#define MAX_API_WORKERS 16
#define ERRORS_SHOWN 8              /* printed per kind per process */
#define LOG_KINDS 64
/*
 * Memory is flat when, from the end of the warm-up to the end, VmRSS grew
 * by less than RSS_BOUND_KB plus RSS_BOUND_PERCENT of its value then.  The
 * fixed part is what a process may still settle into after its warm-up
 * without leaking: SQLite's page cache (2 MB by default per connection)
 * filling as the database grows by an event per disconnect, malloc's arenas
 * reaching their high-water mark in a busier minute (ee-tunneld moves by
 * about 2 MiB either way in a default run).  In the last 8 minutes of a
 * default run, a leak of 4.3 KiB per takedown (960 of them), 600 bytes per
 * periodic attestation (about 7,000) or 64 bytes per proxied request or
 * heartbeat (about 67,000 and 48,000) passes it.
 */
#define RSS_BOUND_KB 3072
#define MIN_WARMUP_MS 60000
#define RSS_BOUND_PERCENT 5

/* ---- settings ---- */

static struct settings {
	int seconds, agents, rps, churn_per_min, heartbeat_sec, attest_sec, warmup_percent;
	bool judge_memory; /* EE_SOAK_MEMORY=report: print, do not judge (sanitizer builds) */
} cfg;

static int env_int(const char *name, int def, int min, int max)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *end;
	long n = strtol(v, &end, 10);
	if (*end || n < min || n > max) {
		fprintf(stderr, "soak: %s=%s: want an integer from %d to %d\n", name, v, min, max);
		exit(2);
	}
	return (int)n;
}

/* ---- what the processes share (an anonymous shared mapping made before fork) ---- */

enum answer_class {
	ANSWER_OK_PROXY,      /* 200 from an agent of the app asked for */
	ANSWER_OK_API,        /* 200 from ee-api */
	/* An agent of the app was taken down meanwhile, and the reason says so. */
	ANSWER_EXPECTED_502,  /* tunnel_closed: a POST on the closing tunnel */
	ANSWER_EXPECTED_503,  /* no_tunnel: none of the app's agents could take it */
	ANSWER_EXPECTED_504,  /* proxy_timeout: the agent went without answering */
	ANSWER_ERROR_STATUS,  /* any other status */
	ANSWER_ERROR_BODY,    /* 200 with another app's or a wrong echo */
	ANSWER_ERROR_TRANSPORT, /* no HTTP answer at all */
	ANSWER_CLASSES
};

static const char *const answer_names[ANSWER_CLASSES] = {
	"ok_proxy_200", "ok_api_200", "expected_502_tunnel_closed", "expected_503_no_tunnel",
	"expected_504_proxy_timeout",
	"error_status", "error_body",  "error_transport",
};

enum route {
	ROUTE_PROXY_HOST,     /* the proxy listener, app from Host */
	ROUTE_PROXY_HEADER,   /* the proxy listener, app from X-EE-App */
	ROUTE_CADDY_HOST,     /* Caddy by <app>.app.localhost */
	ROUTE_CADDY_ENVELOPE, /* POST /v1/proxy/{app} through Caddy */
	ROUTE_API,            /* ee-api through Caddy */
	ROUTES
};

static const char *const route_names[ROUTES] = {"proxy listener by Host", "proxy listener by X-EE-App",
                                               "Caddy by Host", "Caddy envelope", "ee-api"};

struct app_shared {
	atomic_int up;                /* attested agents of the app the soak holds */
	atomic_llong last_down_ms;    /* monotonic ms of the soak's last takedown in the app */
};

enum phase {
	PHASE_BRING_UP,       /* the agents connect and attest */
	PHASE_SOAK,           /* traffic and takedowns */
	PHASE_TRAFFIC_STOP,   /* no new requests; those in flight are answered */
	PHASE_AGENTS_STOP,    /* every agent closes */
};

struct shared {
	atomic_int phase;             /* enum phase */
	atomic_long connects, connect_failures, attested, periodic_attested, heartbeats, served;
	atomic_long clean_closes, drops;
	atomic_long mid_request;      /* of those, taken down holding a request unanswered */
	atomic_long unexpected_closes, agent_errors; /* failures */
	atomic_long answers[ANSWER_CLASSES];
	atomic_long by_route[ROUTES];
	atomic_long purchased_cents[TRAFFIC_PROCS], transferred_cents[TRAFFIC_PROCS];
	atomic_long ledger_ops_unsure; /* a money POST with no clear answer: balances not comparable */
	struct app_shared apps[MAX_APPS];
};

static struct shared *sh;
static struct stack st;
static pid_t children[AGENT_PROCS + TRAFFIC_PROCS];
static int child_count;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static unsigned int rnd(void)
{
	static unsigned int state;
	if (!state)
		state = (unsigned int)getpid() * 2654435761u ^ (unsigned int)time_monotonic_ms();
	state ^= state << 13;
	state ^= state >> 17;
	state ^= state << 5;
	return state;
}

/* Prints one failure, at most ERRORS_SHOWN per kind per process. */
static void report_error(int *shown, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report_error(int *shown, const char *fmt, ...)
{
	if ((*shown)++ >= ERRORS_SHOWN)
		return;
	char line[900];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "soak: [%d] %s\n", (int)getpid(), line);
}

static void app_name_of(int app, char *out, size_t size) { snprintf(out, size, "soak-app-%d", app); }

/* ---- the agents ---- */

enum slot_state { SLOT_DOWN, SLOT_REGISTERING, SLOT_ATTESTING, SLOT_UP };
static const char *const slot_state_names[] = {"down", "registering", "attesting", "up"};

struct slot {
	struct test_agent *a;
	enum slot_state state;
	int index;              /* the agent's number in the fleet */
	int64_t next_at;        /* down: when to reconnect; up: the next heartbeat */
	int64_t since;          /* when the current state began */
};

static int shown_agent_errors, shown_unexpected;
/*
 * Takedowns owed by this agent process (its share of EE_SOAK_CHURN_PER_MIN):
 * half at random, half of an agent the moment a proxy_request reaches it,
 * unanswered, so that requests in flight on a closing tunnel are part of it.
 */
static double takedowns_owed;
static int mid_request_owed;
static bool clean_next = true;

static void agent_failed(struct slot *s, const char *what)
{
	atomic_fetch_add(&sh->agent_errors, 1);
	report_error(&shown_agent_errors, "agent soak-agent-%d (%s): %s", s->index,
	             slot_state_names[s->state], what);
}

/* The control plane ended a tunnel the soak did not take down. */
static void lost(struct slot *s, int64_t now)
{
	if (atomic_load(&sh->phase) < PHASE_AGENTS_STOP) {
		atomic_fetch_add(&sh->unexpected_closes, 1);
		report_error(&shown_unexpected,
		             "agent soak-agent-%d (%s) lost its tunnel: %s, close %d \"%s\" (%s)", s->index,
		             slot_state_names[s->state], agent_last_reason(s->a), ws_close_code(s->a->ws),
		             ws_close_reason(s->a->ws), ws_last_error(s->a->ws));
	}
	if (s->state == SLOT_UP)
		atomic_fetch_sub(&sh->apps[s->index / AGENTS_PER_APP].up, 1);
	agent_drop(s->a);
	s->a = NULL;
	s->state = SLOT_DOWN;
	s->next_at = now + 1000;
	s->since = now;
}

static void slot_connect(struct slot *s, int64_t now)
{
	char app[48], id[48], why[200] = "";
	app_name_of(s->index / AGENTS_PER_APP, app, sizeof(app));
	snprintf(id, sizeof(id), "soak-agent-%d", s->index);
	struct agent_connect_options co = {.why = why, .why_size = sizeof(why), .timeout_ms = 10000};
	s->a = agent_connect_ex(HOST, st.control_port, app, REPO, id, NETWORK, &co);
	s->since = now;
	if (!s->a) {
		atomic_fetch_add(&sh->connect_failures, 1);
		agent_failed(s, why);
		s->next_at = now + 1000;
		return;
	}
	atomic_fetch_add(&sh->connects, 1);
	s->a->write_allowlist = false; /* the parent wrote it once */
	if (agent_send_register(s->a) != 0) {
		lost(s, now);
		return;
	}
	s->state = SLOT_REGISTERING;
}

/* An attested agent whose app keeps enough others. */
static bool may_take_down(const struct slot *s)
{
	return s->state == SLOT_UP &&
	       atomic_load(&sh->apps[s->index / AGENTS_PER_APP].up) > AGENTS_PER_APP - MAX_DOWN_PER_APP;
}

/* Takes an attested agent down as the soak's own doing: clean closes and dropped sockets in turn. */
static void slot_take_down(struct slot *s, int64_t now)
{
	bool clean = clean_next;
	clean_next = !clean_next;
	struct app_shared *app = &sh->apps[s->index / AGENTS_PER_APP];
	/* Marked before the socket goes, so that a request answered 502 sees it. */
	atomic_store(&app->last_down_ms, (long long)now);
	atomic_fetch_sub(&app->up, 1);
	if (clean) {
		agent_disconnect(s->a);
		atomic_fetch_add(&sh->clean_closes, 1);
	} else {
		agent_drop(s->a);
		atomic_fetch_add(&sh->drops, 1);
	}
	s->a = NULL;
	s->state = SLOT_DOWN;
	s->since = now;
	s->next_at = now + 1000 + (int64_t)(rnd() % 3000);
}

/* The answer to a proxy_request: 200, the app's name, an echo of what was asked. */
static int answer_request(struct slot *s, struct json_object *m)
{
	const char *id = NULL, *method = "", *path = "", *b64 = "";
	size_t n, b64_len = 0;
	json_get_string(m, "request_id", &id, &n);
	json_get_string(m, "method", &method, &n);
	json_get_string(m, "path", &path, &n);
	json_get_string(m, "body_b64", &b64, &b64_len);
	if (!id) {
		agent_failed(s, "a proxy_request without request_id");
		return 0;
	}
	struct buf body;
	buf_init(&body);
	buf_printf(&body, "%s %s %s\n", s->a->agent_id, method, path);
	unsigned char *raw = malloc(base64_decoded_max(b64_len) + 1);
	size_t raw_len = 0;
	if (!raw || base64_decode(b64, b64_len, raw, &raw_len) != 0) {
		agent_failed(s, "a proxy_request body that is not base64");
		raw_len = 0;
	}
	buf_append(&body, raw, raw_len);
	free(raw);
	struct json_object *h = json_object_new_object();
	json_put_string(h, "Content-Type", "text/plain");
	json_put_string(h, "X-Soak-App", s->a->app_name);
	int rc = body.failed ? -1 : agent_send_response(s->a, id, 200, h, body.data, body.len);
	json_object_put(h);
	buf_free(&body);
	if (rc == 0)
		atomic_fetch_add(&sh->served, 1);
	return rc;
}

/* One message from the control plane; -1 when the tunnel is gone. */
static int slot_on_message(struct slot *s, struct json_object *m, int64_t now)
{
	const char *type = NULL;
	size_t n;
	json_get_string(m, "type", &type, &n);
	if (!type) {
		agent_failed(s, "a message without a type");
		return 0;
	}
	if (strcmp(type, "proxy_request") == 0) {
		if (s->state != SLOT_UP)
			agent_failed(s, "a proxy_request before attestation");
		if (mid_request_owed > 0 && s->state == SLOT_UP && may_take_down(s)) {
			mid_request_owed--;
			atomic_fetch_add(&sh->mid_request, 1);
			slot_take_down(s, now);
			return 0;
		}
		return answer_request(s, m);
	}
	if (strcmp(type, "attest_request") == 0) {
		const char *nonce = NULL, *reason = "";
		json_get_string(m, "nonce", &nonce, &n);
		json_get_string(m, "reason", &reason, &n);
		if (!nonce) {
			agent_failed(s, "an attest_request without a nonce");
			return 0;
		}
		snprintf(s->a->attest_reason, sizeof(s->a->attest_reason), "%s", reason);
		if (s->state == SLOT_REGISTERING) {
			s->state = SLOT_ATTESTING;
		} else if (s->state != SLOT_UP || strcmp(reason, "periodic") != 0) {
			agent_failed(s, "an attest_request out of turn");
		}
		return agent_send_attest_response(s->a, nonce, NULL);
	}
	if (strcmp(type, "status") == 0) {
		const char *state = "", *reason = "";
		json_get_string(m, "state", &state, &n);
		json_get_string(m, "reason", &reason, &n);
		if (strcmp(state, "ok") == 0 && strcmp(reason, "attested") == 0) {
			if (s->state == SLOT_ATTESTING) {
				s->state = SLOT_UP;
				s->since = now;
				s->next_at = now + (int64_t)(rnd() % ((unsigned)cfg.heartbeat_sec * 1000u));
				atomic_fetch_add(&sh->apps[s->index / AGENTS_PER_APP].up, 1);
				atomic_fetch_add(&sh->attested, 1);
			} else if (s->state == SLOT_UP && strcmp(s->a->attest_reason, "periodic") == 0) {
				atomic_fetch_add(&sh->periodic_attested, 1);
			} else {
				agent_failed(s, "attested out of turn");
			}
			return 0;
		}
		char what[200];
		snprintf(what, sizeof(what), "status %s %s", state, reason);
		agent_failed(s, what);
		return 0;
	}
	char what[120];
	snprintf(what, sizeof(what), "an unexpected message type %s", type);
	agent_failed(s, what);
	return 0;
}

/* Reads everything the socket holds without waiting. */
static void slot_drain(struct slot *s, int64_t now)
{
	while (s->a) {
		struct json_object *m = agent_recv(s->a, 0);
		if (!m) {
			if (strcmp(agent_last_reason(s->a), "timeout") != 0)
				lost(s, now);
			return;
		}
		int rc = slot_on_message(s, m, now);
		json_object_put(m);
		if (rc != 0) {
			lost(s, now);
			return;
		}
	}
}

static void agent_process(int first, int count)
{
	struct slot *slots = calloc((size_t)count, sizeof(*slots));
	struct pollfd *fds = calloc((size_t)count, sizeof(*fds));
	int *which = calloc((size_t)count, sizeof(*which));
	if (!slots || !fds || !which)
		_exit(3);
	for (int i = 0; i < count; i++)
		slots[i].index = first + i;
	int64_t last = time_monotonic_ms();
	while (atomic_load(&sh->phase) < PHASE_AGENTS_STOP) {
		int64_t now = time_monotonic_ms();
		int opened = 0;
		for (int i = 0; i < count; i++) {
			struct slot *s = &slots[i];
			if (s->state == SLOT_DOWN && now >= s->next_at && opened < CONNECTS_PER_TICK) {
				slot_connect(s, now);
				opened++;
			} else if (s->state == SLOT_UP && now >= s->next_at) {
				if (agent_health(s->a, "pass") != 0) {
					lost(s, now);
					continue;
				}
				atomic_fetch_add(&sh->heartbeats, 1);
				s->next_at = now + cfg.heartbeat_sec * 1000;
			} else if ((s->state == SLOT_REGISTERING || s->state == SLOT_ATTESTING) &&
			           now - s->since > UP_TIMEOUT_MS) {
				agent_failed(s, "not attested within UP_TIMEOUT_MS");
				lost(s, now);
			}
		}
		if (atomic_load(&sh->phase) == PHASE_SOAK) {
			takedowns_owed += (double)(now - last) * cfg.churn_per_min * count / cfg.agents / 60000.0;
			while (takedowns_owed >= 1) {
				takedowns_owed -= 1;
				if (rnd() % 2 && mid_request_owed < 4) {
					mid_request_owed++;
					continue;
				}
				for (int tries = 0; tries < 20; tries++) {
					struct slot *s = &slots[rnd() % (unsigned)count];
					if (may_take_down(s)) {
						slot_take_down(s, now);
						break;
					}
				}
			}
		}
		last = now;
		int n = 0;
		for (int i = 0; i < count; i++) {
			if (slots[i].a) {
				fds[n] = (struct pollfd){.fd = ws_fd(slots[i].a->ws), .events = POLLIN};
				which[n++] = i;
			}
		}
		if (poll(fds, (nfds_t)n, 50) < 0 && errno != EINTR)
			_exit(3);
		now = time_monotonic_ms();
		for (int k = 0; k < n; k++)
			if (fds[k].revents)
				slot_drain(&slots[which[k]], now);
	}
	/* The end: every agent goes, cleanly; the parent then checks the database says so. */
	for (int i = 0; i < count; i++)
		if (slots[i].a)
			agent_disconnect(slots[i].a);
	free(slots);
	free(fds);
	free(which);
	_exit(0);
}

/* ---- the traffic ---- */

struct request {
	CURL *easy;
	struct curl_slist *headers;
	struct buf answer, head;
	char *body;              /* what was sent */
	size_t body_len;
	char *echo;              /* the body the agent must echo (the envelope's inner one) */
	size_t echo_len;
	enum route route;
	int app;
	int64_t start_ms;
	char expect[160];        /* the echo line's end the agent must answer with */
	int ledger;              /* 1 purchase, 2 transfer, 0 neither */
	long cents;
	char what[400];          /* method and URL, for messages */
};

static int traffic_index;
static int shown_status, shown_body, shown_transport;
static char caddy_base[64], proxy_base[64];
static char account_a[48], account_b[48];
static long sequence;

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	return buf_append(ctx, data, size * n) == 0 ? size * n : 0;
}

/* The apps: AGENTS_PER_APP agents each. */
static int apps(void) { return cfg.agents / AGENTS_PER_APP; }

static void add_header(struct request *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_header(struct request *r, const char *fmt, ...)
{
	char line[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	struct curl_slist *l = curl_slist_append(r->headers, line);
	if (l)
		r->headers = l;
}

/* A body of len bytes that names the request. */
static void fill_body(struct request *r, size_t len, long n)
{
	r->body = malloc(len + 1);
	if (!r->body)
		return;
	int k = snprintf(r->body, len + 1, "soak %d %ld ", traffic_index, n);
	for (size_t i = (size_t)k; i < len; i++)
		r->body[i] = (char)('a' + (i + (size_t)n) % 26);
	r->body[len] = '\0';
	r->body_len = len;
}

/* Builds the next request of the mix into r. */
static void request_build(struct request *r)
{
	long n = sequence++;
	char app[48], url[300], path[64];
	r->app = (int)(rnd() % (unsigned)apps());
	app_name_of(r->app, app, sizeof(app));
	snprintf(path, sizeof(path), "/soak/%d/%ld", traffic_index, n);
	const char *method = "GET";
	switch (n % 10) {
	case 0:
	case 1:
		r->route = ROUTE_PROXY_HOST;
		snprintf(url, sizeof(url), "%s%s", proxy_base, path);
		add_header(r, "Host: %s.%s", app, APP_HOST_SUFFIX);
		break;
	case 2:
		r->route = ROUTE_PROXY_HEADER;
		method = "POST";
		snprintf(url, sizeof(url), "%s%s", proxy_base, path);
		add_header(r, "X-EE-App: %s", app);
		fill_body(r, 64, n);
		break;
	case 3:
	case 4:
		r->route = ROUTE_CADDY_HOST;
		snprintf(url, sizeof(url), "%s%s", caddy_base, path);
		add_header(r, "Host: %s.%s", app, APP_HOST_SUFFIX);
		break;
	case 5:
		r->route = ROUTE_CADDY_HOST;
		method = "POST";
		snprintf(url, sizeof(url), "%s%s", caddy_base, path);
		add_header(r, "Host: %s.%s", app, APP_HOST_SUFFIX);
		fill_body(r, 1024, n);
		break;
	case 6: {
		r->route = ROUTE_CADDY_ENVELOPE;
		method = "POST";
		snprintf(url, sizeof(url), "%s/v1/proxy/%s", caddy_base, app);
		fill_body(r, 256, n);
		r->echo = r->body;
		r->echo_len = r->body_len;
		r->body = NULL;
		r->body_len = 0;
		char *b64 = r->echo ? malloc(base64_encoded_len(r->echo_len) + 1) : NULL;
		if (b64) {
			base64_encode((const unsigned char *)r->echo, r->echo_len, b64);
			struct buf env;
			buf_init(&env);
			buf_printf(&env, "{\"method\":\"POST\",\"path\":\"%s\",\"body_b64\":\"%s\"}", path,
			           b64);
			if (env.failed)
				buf_free(&env);
			else
				r->body = env.data, r->body_len = env.len;
		}
		free(b64);
		add_header(r, "Content-Type: application/json");
		break;
	}
	default:
		r->route = ROUTE_API;
		add_header(r, "Authorization: Bearer %s", TEST_ADMIN_TOKEN);
		switch ((n / 10) % 5) {
		case 0:
			snprintf(url, sizeof(url), "%s/v1/resolve/%s", caddy_base, app);
			break;
		case 1:
			snprintf(url, sizeof(url), "%s/v1/apps/%s", caddy_base, app);
			break;
		case 2:
		case 3: {
			bool purchase = (n / 10) % 5 == 2;
			method = "POST";
			r->ledger = purchase ? 1 : 2;
			r->cents = purchase ? 100 : 1;
			snprintf(url, sizeof(url), "%s/v1/credits/%s", caddy_base,
			         purchase ? "purchase" : "transfer");
			add_header(r, "Content-Type: application/json");
			add_header(r, "Idempotency-Key: soak-%d-%ld", traffic_index, n);
			struct buf b;
			buf_init(&b);
			if (purchase)
				buf_printf(&b, "{\"account_id\":\"%s\",\"amount_usd\":\"1.00\"}", account_a);
			else
				buf_printf(&b, "{\"from_account\":\"%s\",\"to_account\":\"%s\",\"amount_usd\":\"0.01\"}",
				           account_a, account_b);
			r->body = b.failed ? NULL : b.data;
			r->body_len = b.failed ? 0 : b.len;
			break;
		}
		default:
			snprintf(url, sizeof(url), "%s/v1/balances/%s", caddy_base,
			         n % 20 < 10 ? account_a : account_b);
			break;
		}
		break;
	}
	if (r->route != ROUTE_API) {
		/* The agent echoes the request it got: for the envelope, the one inside it. */
		snprintf(r->expect, sizeof(r->expect), " %s %s\n", method, path);
		if (r->route != ROUTE_CADDY_ENVELOPE) {
			r->echo = r->body_len ? malloc(r->body_len + 1) : NULL;
			if (r->echo) {
				memcpy(r->echo, r->body, r->body_len + 1);
				r->echo_len = r->body_len;
			}
		}
	}
	snprintf(r->what, sizeof(r->what), "%s %s (%s, %s)", method, url, route_names[r->route], app);
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body ? r->body : "");
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)r->body_len);
	} else {
		curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
	}
	add_header(r, "Expect:"); /* no 100-continue round trip */
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
}

static void request_reset(struct request *r)
{
	curl_slist_free_all(r->headers);
	r->headers = NULL;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	free(r->echo);
	r->echo = NULL;
	r->echo_len = 0;
	buf_reset(&r->answer);
	buf_reset(&r->head);
	r->expect[0] = '\0';
	r->ledger = 0;
	r->cents = 0;
}

/* The reason of a JSON refusal, for the class of an error. */
static void answer_reason(const struct request *r, char *out, size_t size)
{
	struct json_object *o = r->answer.len ? json_tokener_parse(r->answer.data) : NULL;
	const char *reason = NULL;
	size_t n;
	if (o && json_get_string(o, "reason", &reason, &n) != JSON_FIELD_OK)
		json_get_string(o, "error", &reason, &n);
	snprintf(out, size, "%s", reason ? reason : "");
	json_object_put(o);
}

static void classify(struct request *r, CURLcode code)
{
	long status = 0;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	atomic_fetch_add(&sh->by_route[r->route], 1);
	if (code != CURLE_OK) {
		atomic_fetch_add(&sh->answers[ANSWER_ERROR_TRANSPORT], 1);
		report_error(&shown_transport, "%s: %s", r->what, curl_easy_strerror(code));
		if (r->ledger)
			atomic_fetch_add(&sh->ledger_ops_unsure, 1);
		return;
	}
	if (status == 200 && r->route == ROUTE_API) {
		atomic_fetch_add(&sh->answers[ANSWER_OK_API], 1);
		if (r->ledger == 1)
			atomic_fetch_add(&sh->purchased_cents[traffic_index], r->cents);
		else if (r->ledger == 2)
			atomic_fetch_add(&sh->transferred_cents[traffic_index], r->cents);
		return;
	}
	if (status == 200) {
		char want_app[80];
		snprintf(want_app, sizeof(want_app), "X-Soak-App: soak-app-%d\r\n", r->app);
		const char *line = r->expect[0] ? strstr(r->answer.data ? r->answer.data : "", r->expect) : NULL;
		bool ok = r->head.data && strstr(r->head.data, want_app) && line &&
		          strncmp(r->answer.data, "soak-agent-", 11) == 0;
		/* The echoed body follows the line, to the end. */
		if (ok) {
			const char *echoed = line + strlen(r->expect);
			size_t echoed_len = r->answer.len - (size_t)(echoed - r->answer.data);
			ok = echoed_len == r->echo_len && memcmp(echoed, r->echo ? r->echo : "", r->echo_len) == 0;
		}
		atomic_fetch_add(&sh->answers[ok ? ANSWER_OK_PROXY : ANSWER_ERROR_BODY], 1);
		if (!ok)
			report_error(&shown_body, "%s: 200 but not its app's echo: %.200s", r->what,
			             r->answer.data ? r->answer.data : "");
		return;
	}
	char reason[80];
	answer_reason(r, reason, sizeof(reason));
	long long down = atomic_load(&sh->apps[r->app].last_down_ms);
	/* The latest takedown only: a later one in the app may have replaced the one that explains it. */
	bool explained = r->route != ROUTE_API && down >= r->start_ms - TAKEDOWN_SLACK_MS &&
	                 ((status == 502 && strcmp(reason, "tunnel_closed") == 0) ||
	                  (status == 503 && strcmp(reason, "no_tunnel") == 0) ||
	                  (status == 504 && strcmp(reason, "proxy_timeout") == 0));
	if (explained) {
		atomic_fetch_add(&sh->answers[status == 502   ? ANSWER_EXPECTED_502
		                              : status == 503 ? ANSWER_EXPECTED_503
		                                              : ANSWER_EXPECTED_504],
		                 1);
		return;
	}
	atomic_fetch_add(&sh->answers[ANSWER_ERROR_STATUS], 1);
	if (r->ledger)
		atomic_fetch_add(&sh->ledger_ops_unsure, 1);
	report_error(&shown_status, "%s: %ld %s (last takedown in the app %lld ms before the request)",
	             r->what, status, reason[0] ? reason : (r->answer.data ? r->answer.data : ""),
	             down ? (long long)(r->start_ms - down) : -1LL);
}

static void traffic_process(int index)
{
	traffic_index = index;
	snprintf(account_a, sizeof(account_a), "soak-%d-a", index);
	snprintf(account_b, sizeof(account_b), "soak-%d-b", index);
	snprintf(caddy_base, sizeof(caddy_base), "http://%s:%d", HOST, st.port);
	snprintf(proxy_base, sizeof(proxy_base), "http://%s:%d", HOST, st.proxy_port);
	CURLM *multi = curl_multi_init();
	struct request *reqs = calloc(TRAFFIC_MAX_INFLIGHT, sizeof(*reqs));
	bool *busy = calloc(TRAFFIC_MAX_INFLIGHT, sizeof(*busy));
	if (!multi || !reqs || !busy)
		_exit(3);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)TRAFFIC_MAX_INFLIGHT * 2);
	for (int i = 0; i < TRAFFIC_MAX_INFLIGHT; i++) {
		struct request *r = &reqs[i];
		buf_init(&r->answer);
		buf_init(&r->head);
		r->easy = curl_easy_init();
		if (!r->easy)
			_exit(3);
		curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
		curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, &r->answer);
		curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_body);
		curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, &r->head);
		curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, 60000L);
		curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	}
	/* Money first, so that no transfer finds the account empty. */
	char url[160], key[80], body[160];
	snprintf(url, sizeof(url), "%s/v1/credits/purchase", caddy_base);
	snprintf(key, sizeof(key), "Idempotency-Key: soak-%d-start", index);
	snprintf(body, sizeof(body), "{\"account_id\":\"%s\",\"amount_usd\":\"100.00\"}", account_a);
	char auth[160];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", TEST_ADMIN_TOKEN);
	const char *const start_headers[] = {auth, key, "Content-Type: application/json", NULL};
	struct http_result first;
	if (http_do("POST", url, start_headers, body, strlen(body), &first) != 0 || first.status != 200) {
		atomic_fetch_add(&sh->ledger_ops_unsure, 1);
		fprintf(stderr, "soak: the first purchase failed: %ld %s\n", first.status,
		        first.body ? first.body : "");
	} else {
		atomic_fetch_add(&sh->purchased_cents[index], 10000);
	}
	http_result_free(&first);
	double per_ms = (double)cfg.rps / TRAFFIC_PROCS / 1000.0, owed = 0;
	int64_t last = time_monotonic_ms();
	int inflight = 0;
	for (;;) {
		int64_t now = time_monotonic_ms();
		bool stopping = atomic_load(&sh->phase) >= PHASE_TRAFFIC_STOP;
		if (stopping && inflight == 0)
			break;
		owed += (double)(now - last) * per_ms;
		last = now;
		if (owed > TRAFFIC_MAX_INFLIGHT)
			owed = TRAFFIC_MAX_INFLIGHT; /* behind: do not burst to catch up */
		for (int i = 0; !stopping && owed >= 1 && i < TRAFFIC_MAX_INFLIGHT; i++) {
			if (busy[i])
				continue;
			struct request *r = &reqs[i];
			request_reset(r);
			request_build(r);
			r->start_ms = now;
			busy[i] = true;
			inflight++;
			owed -= 1;
			curl_multi_add_handle(multi, r->easy);
		}
		int running;
		curl_multi_perform(multi, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			char *priv = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			struct request *r = (struct request *)(void *)priv;
			CURLcode code = msg->data.result;
			curl_multi_remove_handle(multi, msg->easy_handle);
			classify(r, code);
			busy[r - reqs] = false;
			inflight--;
		}
		curl_multi_poll(multi, NULL, 0, 5, NULL);
	}
	for (int i = 0; i < TRAFFIC_MAX_INFLIGHT; i++) {
		request_reset(&reqs[i]);
		buf_free(&reqs[i].answer);
		buf_free(&reqs[i].head);
		curl_easy_cleanup(reqs[i].easy);
	}
	curl_multi_cleanup(multi);
	free(reqs);
	free(busy);
	_exit(0);
}

/* ---- the parent: processes, samples, reports, verdict ---- */

static pid_t spawn_child(void)
{
	fflush(stdout);
	fflush(stderr);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(3);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		return 0;
	}
	if (pid > 0)
		children[child_count++] = pid;
	return pid;
}

static void stop_children(void)
{
	for (int i = 0; i < child_count; i++) {
		if (children[i] > 0) {
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
	}
}

static void stop_everything(void)
{
	stop_children();
	if (st.dir[0])
		stack_stop(&st);
	st.dir[0] = '\0';
}

static void on_signal(int sig)
{
	stop_everything();
	signal(sig, SIG_DFL);
	raise(sig);
}

static long vmrss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

/* ee-api's workers: the children of its master (/proc/<pid>/task/<pid>/children). */
static int api_workers(pid_t master, pid_t out[MAX_API_WORKERS])
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)master, (int)master);
	FILE *f = fopen(path, "r");
	int n = 0;
	long pid;
	while (f && n < MAX_API_WORKERS && fscanf(f, "%ld", &pid) == 1)
		out[n++] = (pid_t)pid;
	if (f)
		fclose(f);
	return n;
}

struct sample {
	int64_t t_ms;          /* since the soak began */
	long tunneld_kb, api_kb, caddy_kb;
};

static struct sample samples[MAX_SAMPLES];
static int sample_count;
static pid_t first_workers[MAX_API_WORKERS];
static int first_worker_count;
static bool workers_changed;

static void take_sample(int64_t t_ms)
{
	pid_t w[MAX_API_WORKERS];
	int n = api_workers(st.api_pid, w);
	long api = vmrss_kb(st.api_pid);
	for (int i = 0; i < n; i++)
		api += vmrss_kb(w[i]);
	if (first_worker_count == 0) {
		first_worker_count = n;
		memcpy(first_workers, w, sizeof(w));
	} else if (n != first_worker_count || memcmp(w, first_workers, sizeof(pid_t) * (size_t)n) != 0) {
		if (!workers_changed)
			fprintf(stderr, "soak: ee-api's workers changed (a worker died and was replaced)\n");
		workers_changed = true;
	}
	if (sample_count < MAX_SAMPLES)
		samples[sample_count++] = (struct sample){t_ms, vmrss_kb(st.tunneld_pid), api,
		                                          vmrss_kb(st.caddy_pid)};
}

/* "agents" of ee-tunneld's own GET /health, or -1. */
static long tunneld_agents(void)
{
	char url[96];
	snprintf(url, sizeof(url), "http://%s:%d/health", HOST, st.control_port);
	struct http_result r;
	long n = -1;
	if (http_do("GET", url, NULL, NULL, 0, &r) == 0 && r.status == 200)
		n = (long)http_json_int(&r, "agents", -1);
	http_result_free(&r);
	return n;
}

static long total_answers(void)
{
	long n = 0;
	for (int i = 0; i < ANSWER_CLASSES; i++)
		n += atomic_load(&sh->answers[i]);
	return n;
}

static long error_answers(void)
{
	return atomic_load(&sh->answers[ANSWER_ERROR_STATUS]) +
	       atomic_load(&sh->answers[ANSWER_ERROR_BODY]) +
	       atomic_load(&sh->answers[ANSWER_ERROR_TRANSPORT]);
}

static void print_progress(int64_t t_ms)
{
	const struct sample *s = sample_count ? &samples[sample_count - 1] : NULL;
	printf("soak: t=%llds agents=%ld requests=%ld ok=%ld+%ld expected=%ld/%ld/%ld errors=%ld "
	       "connects=%ld attested=%ld periodic=%ld heartbeats=%ld takedowns=%ld+%ld "
	       "unexpected_closes=%ld agent_errors=%ld rss_kb tunneld=%ld api=%ld caddy=%ld\n",
	       (long long)(t_ms / 1000), tunneld_agents(), total_answers(),
	       atomic_load(&sh->answers[ANSWER_OK_PROXY]), atomic_load(&sh->answers[ANSWER_OK_API]),
	       atomic_load(&sh->answers[ANSWER_EXPECTED_502]),
	       atomic_load(&sh->answers[ANSWER_EXPECTED_503]),
	       atomic_load(&sh->answers[ANSWER_EXPECTED_504]), error_answers(),
	       atomic_load(&sh->connects), atomic_load(&sh->attested),
	       atomic_load(&sh->periodic_attested), atomic_load(&sh->heartbeats),
	       atomic_load(&sh->clean_closes), atomic_load(&sh->drops),
	       atomic_load(&sh->unexpected_closes), atomic_load(&sh->agent_errors),
	       s ? s->tunneld_kb : -1, s ? s->api_kb : -1, s ? s->caddy_kb : -1);
	fflush(stdout);
}

/* The largest of the samples within 15 s before t_ms: one reading is noisy. */
static long rss_at(int64_t t_ms, size_t field)
{
	long best = -1;
	for (int i = 0; i < sample_count; i++) {
		if (samples[i].t_ms > t_ms || samples[i].t_ms < t_ms - 15000)
			continue;
		long v = *(const long *)((const char *)&samples[i] + field);
		if (v > best)
			best = v;
	}
	return best;
}

/* Least-squares slope of the samples after the warm-up, in KiB per minute. */
static double rss_slope(int64_t from_ms, size_t field)
{
	double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
	for (int i = 0; i < sample_count; i++) {
		if (samples[i].t_ms < from_ms)
			continue;
		double x = (double)samples[i].t_ms / 60000.0;
		double y = (double)*(const long *)((const char *)&samples[i] + field);
		n++;
		sx += x;
		sy += y;
		sxx += x * x;
		sxy += x * y;
	}
	double d = n * sxx - sx * sx;
	return n < 3 || d == 0 ? 0 : (n * sxy - sx * sy) / d;
}

static bool judge_memory(const char *name, size_t field, int64_t warm_ms, int64_t end_ms)
{
	long base = rss_at(warm_ms, field), end = rss_at(end_ms, field);
	long bound = RSS_BOUND_KB + base * RSS_BOUND_PERCENT / 100;
	bool ok = base > 0 && end > 0 && (end - base <= bound || !cfg.judge_memory);
	printf("soak: memory %s: VmRSS %ld KiB at warm-up end (t=%llds), %ld KiB at the end "
	       "(t=%llds): %+ld KiB, bound %ld KiB; slope after warm-up %+.1f KiB/min: %s\n",
	       name, base, (long long)(warm_ms / 1000), end, (long long)(end_ms / 1000), end - base,
	       bound, rss_slope(warm_ms, field),
	       !cfg.judge_memory ? "not judged" : ok ? "flat" : "GROWING");
	return ok;
}

/*
 * Error and warning lines of the logs.  A line is "<time> <program>[<pid>]
 * <level>: <message>"; the ones the design expects are matched by a
 * fragment of their message, in the log of the program that may write it.
 */
struct expected_line {
	const char *log, *fragment;
};

static const struct expected_line expected_log_lines[] = {
	/* At start, on any development network (stack.c sets EE_DEV_ROOT_CA). */
	{"ee-tunneld.log", "EE_DEV_ROOT_CA is set"},
	/*
	 * ee-tunneld's loop waits TD_LOOP_BUSY_TIMEOUT_MS (20 ms) at most for
	 * the write lock, then keeps its writes queued and retries with backoff
	 * (tunneld/store.c): ee-api's money POSTs hold the lock that long on a
	 * busy machine.  Expected, provided every "failing" is followed by
	 * "database writes resumed" (checked beside) and the end state is right.
	 */
	{"ee-tunneld.log", "warn: database busy: database is locked"},
	{"ee-tunneld.log", "warn: database writes failing"},
	{NULL, NULL},
};

struct log_kind {
	char text[160];
	long count;
};

struct log_scan {
	struct log_kind kinds[LOG_KINDS];
	int kind_count;
	long expected, unexpected;
	long writes_failing, writes_resumed; /* ee-tunneld's store episodes */
};

static void scan_log(const char *name, struct log_scan *ls)
{
	char path[400], line[1200];
	snprintf(path, sizeof(path), "%s/%s", st.dir, name);
	FILE *f = fopen(path, "r");
	if (!f) {
		printf("soak: cannot read %s\n", path);
		ls->unexpected++;
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "] warn: database writes failing"))
			ls->writes_failing++;
		if (strstr(line, "] info: database writes resumed"))
			ls->writes_resumed++;
		char *level = strstr(line, "] error: ");
		if (!level)
			level = strstr(line, "] warn: ");
		if (!level && (strstr(line, "AddressSanitizer") || strstr(line, "runtime error:") ||
		               strstr(line, "LeakSanitizer")))
			level = line;
		if (!level)
			continue;
		bool known = false;
		for (int i = 0; expected_log_lines[i].log; i++)
			known = known || (strcmp(expected_log_lines[i].log, name) == 0 &&
			                  strstr(level, expected_log_lines[i].fragment));
		if (known) {
			ls->expected++;
			continue;
		}
		ls->unexpected++;
		line[strcspn(line, "\n")] = '\0';
		/* Counted by their first 60 characters after the level: ids make each line unique. */
		char key[160];
		snprintf(key, sizeof(key), "%s: %.60s", name, level == line ? line : level + 2);
		int k = 0;
		while (k < ls->kind_count && strcmp(ls->kinds[k].text, key) != 0)
			k++;
		if (k == ls->kind_count && k < LOG_KINDS) {
			snprintf(ls->kinds[k].text, sizeof(ls->kinds[k].text), "%s", key);
			ls->kind_count++;
			printf("soak: unexpected log line: %s\n", line);
		}
		if (k < ls->kind_count)
			ls->kinds[k].count++;
	}
	fclose(f);
}

/* One value of an SQL query on the database (read only), as text. */
static int db_query(const char *sql, char *out, size_t size)
{
	sqlite3 *h;
	out[0] = '\0';
	if (sqlite3_open_v2(st.db_path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(h);
		return -1;
	}
	sqlite3_busy_timeout(h, 10000);
	sqlite3_stmt *s;
	int rc = -1;
	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK) {
		int step = sqlite3_step(s);
		if (step == SQLITE_ROW) {
			const unsigned char *v = sqlite3_column_text(s, 0);
			snprintf(out, size, "%s", v ? (const char *)v : "");
			rc = 0;
		} else if (step == SQLITE_DONE) {
			rc = 0; /* no row: "" */
		}
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
	return rc;
}

/* ee-api --check-ledger on the soak's database; its exit status. */
static int run_check_ledger(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		stack_apply_env(&st);
		char exe[400];
		snprintf(exe, sizeof(exe), "%s/ee-api", st.bin_dir);
		execl(exe, exe, "--check-ledger", (char *)NULL);
		_exit(127);
	}
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The end state of the database: integrity, ledger, the soak's own money, no agent connected. */
static int check_database(void)
{
	int failures = 0;
	char v[256];
	if (db_query("PRAGMA integrity_check", v, sizeof(v)) != 0 || strcmp(v, "ok") != 0) {
		printf("soak: PRAGMA integrity_check: %s\n", v);
		failures++;
	}
	if (db_query("PRAGMA foreign_key_check", v, sizeof(v)) != 0 || v[0]) {
		printf("soak: PRAGMA foreign_key_check: a row refers to nothing (%s)\n", v);
		failures++;
	}
	int rc = run_check_ledger();
	if (rc != 0) {
		printf("soak: ee-api --check-ledger exited %d\n", rc);
		failures++;
	}
	check_ledger(st.db_path); /* the same audit through lib/, failing the harness's case */
	if (test_case_failed())
		failures++;
	/*
	 * Events settlement reads: every heartbeat and attestation was in time,
	 * so no health_miss "timeout" and no attest_miss at all; one health_miss
	 * "disconnect" per registered tunnel that closed (all of them, by now),
	 * fewer only where a dropped tunnel was replaced by its agent's new one
	 * before ee-tunneld saw the drop.
	 */
	char misses[32], disconnects[32];
	if (db_query("SELECT count(*) FROM node_events WHERE event_type = 'attest_miss' OR "
	             "(event_type = 'health_miss' AND detail != 'disconnect')",
	             misses, sizeof(misses)) != 0 ||
	    db_query("SELECT count(*) FROM node_events WHERE event_type = 'health_miss' AND "
	             "detail = 'disconnect'",
	             disconnects, sizeof(disconnects)) != 0) {
		printf("soak: cannot read node_events\n");
		failures++;
	} else {
		long d = atol(disconnects), connects = atomic_load(&sh->connects);
		bool ok = strcmp(misses, "0") == 0 && d <= connects && d >= connects - atomic_load(&sh->drops);
		printf("soak: node_events: %s attest_miss or health_miss other than disconnect, %ld "
		       "health_miss disconnect for %ld tunnels: %s\n",
		       misses, d, connects, ok ? "as expected" : "WRONG");
		if (!ok)
			failures++;
	}
	if (db_query("SELECT count(*) FROM app_agents WHERE ws_connected != 0", v, sizeof(v)) != 0 ||
	    strcmp(v, "0") != 0) {
		printf("soak: %s agents still connected in the database after the fleet left\n", v);
		failures++;
	}
	if (atomic_load(&sh->ledger_ops_unsure) == 0) {
		for (int t = 0; t < TRAFFIC_PROCS; t++) {
			char a[48], b[48];
			snprintf(a, sizeof(a), "soak-%d-a", t);
			snprintf(b, sizeof(b), "soak-%d-b", t);
			long bought = atomic_load(&sh->purchased_cents[t]);
			long moved = atomic_load(&sh->transferred_cents[t]);
			long long got_a = stack_balance(&st, a, NULL), got_b = stack_balance(&st, b, NULL);
			/* An account never written is 404 (-1 here): zero. */
			if (got_a < 0)
				got_a = 0;
			if (got_b < 0)
				got_b = 0;
			if (got_a != bought - moved || got_b != moved) {
				printf("soak: balances of %s and %s are %lld and %lld cents; the soak's answered "
				       "purchases and transfers make %ld and %ld\n",
				       a, b, got_a, got_b, bought - moved, moved);
				failures++;
			}
		}
	} else {
		printf("soak: %ld money POSTs had no clear answer; balances not compared\n",
		       atomic_load(&sh->ledger_ops_unsure));
	}
	return failures;
}

int main(void)
{
	cfg.seconds = env_int("EE_SOAK_SECONDS", 600, 10, 7 * 86400);
	cfg.agents = env_int("EE_SOAK_AGENTS", 1000, AGENT_PROCS * AGENTS_PER_APP, MAX_AGENTS);
	cfg.rps = env_int("EE_SOAK_RPS", 200, 1, 100000);
	cfg.churn_per_min = env_int("EE_SOAK_CHURN_PER_MIN", 120, 0, 100000);
	cfg.heartbeat_sec = env_int("EE_SOAK_HEARTBEAT_SEC", 10, 1, 3600);
	cfg.attest_sec = env_int("EE_SOAK_ATTEST_SEC", 60, 1, 86400);
	cfg.warmup_percent = env_int("EE_SOAK_WARMUP_PERCENT", 20, 1, 90);
	const char *memory = getenv("EE_SOAK_MEMORY");
	cfg.judge_memory = !memory || strcmp(memory, "report") != 0;
	if (cfg.agents % (AGENT_PROCS * AGENTS_PER_APP) != 0) {
		fprintf(stderr, "soak: EE_SOAK_AGENTS must be a multiple of %d\n",
		        AGENT_PROCS * AGENTS_PER_APP);
		return 2;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (long)rl.rlim_cur < cfg.agents + 1000) {
		fprintf(stderr, "soak: RLIMIT_NOFILE %llu is too low for %d agents\n",
		        (unsigned long long)rl.rlim_cur, cfg.agents);
		return 1;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	memset(sh, 0, sizeof(*sh));
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_ALL);
	atexit(stop_everything);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);

	/*
	 * ee-tunneld as deployed but with periodic attestation every
	 * EE_SOAK_ATTEST_SEC, the heartbeat watchdog at six heartbeats (so a
	 * heartbeat lost matters), and every agent from one address.
	 */
	static char attest_env[64], health_env[64], pending_env[64];
	snprintf(attest_env, sizeof(attest_env), "EE_ATTEST_INTERVAL_SEC=%d", cfg.attest_sec);
	snprintf(health_env, sizeof(health_env), "EE_HEALTH_TIMEOUT_SEC=%d", cfg.heartbeat_sec * 6);
	snprintf(pending_env, sizeof(pending_env), "EE_MAX_PENDING_PER_SOURCE=%d", cfg.agents + 100);
	const char *tunneld_env[] = {attest_env, health_env, pending_env, NULL};
	struct stack_options opt = {.tunneld_env = tunneld_env};
	test_case("soak");
	printf("soak: %d agents (%d apps), %d s, %d req/s, %d takedowns/min, heartbeat %d s, "
	       "periodic attestation %d s, warm-up %d %%\n",
	       cfg.agents, apps(), cfg.seconds, cfg.rps, cfg.churn_per_min, cfg.heartbeat_sec,
	       cfg.attest_sec, cfg.warmup_percent);
	if (stack_start(&st, "soak", &opt) != 0) {
		test_finish();
		return 1;
	}
	printf("soak: stack in %s (ee-tunneld %d, ee-api %d, caddy %d)\n", st.dir, (int)st.tunneld_pid,
	       (int)st.api_pid, (int)st.caddy_pid);
	stack_allow(&st, REPO, AGENT_DEFAULT_RELEASE, NULL);
	fflush(stdout);

	int per = cfg.agents / AGENT_PROCS;
	for (int p = 0; p < AGENT_PROCS; p++) {
		pid_t pid = spawn_child();
		if (pid == 0)
			agent_process(p * per, per);
		if (pid < 0)
			return 1;
	}
	int64_t t0 = time_monotonic_ms();
	while (tunneld_agents() != cfg.agents || atomic_load(&sh->attested) < cfg.agents) {
		if (time_monotonic_ms() - t0 > FLEET_UP_TIMEOUT_MS) {
			printf("soak: FAIL: the fleet did not come up: ee-tunneld holds %ld of %d agents\n",
			       tunneld_agents(), cfg.agents);
			return 1;
		}
		sleep_ms(200);
	}
	printf("soak: %d agents attested in %lld ms\n", cfg.agents, (long long)(time_monotonic_ms() - t0));
	fflush(stdout);
	atomic_store(&sh->phase, PHASE_SOAK);
	for (int t = 0; t < TRAFFIC_PROCS; t++) {
		pid_t pid = spawn_child();
		if (pid == 0)
			traffic_process(t);
		if (pid < 0)
			return 1;
	}

	int64_t start = time_monotonic_ms(), end_at = start + (int64_t)cfg.seconds * 1000;
	int64_t next_sample = start, next_report = start + REPORT_EVERY_MS;
	bool died = false;
	for (;;) {
		int64_t now = time_monotonic_ms();
		if (now >= next_sample) {
			take_sample(now - start);
			next_sample += SAMPLE_EVERY_MS;
		}
		if (now >= next_report) {
			print_progress(now - start);
			next_report += REPORT_EVERY_MS;
		}
		if (now >= end_at)
			break;
		for (int i = 0; i < child_count; i++) {
			if (children[i] > 0 && waitpid(children[i], NULL, WNOHANG) == children[i]) {
				printf("soak: a soak process (%d) died\n", (int)children[i]);
				children[i] = 0;
				died = true;
			}
		}
		if (waitpid(st.tunneld_pid, NULL, WNOHANG) == st.tunneld_pid ||
		    waitpid(st.api_pid, NULL, WNOHANG) == st.api_pid) {
			printf("soak: ee-tunneld or ee-api exited\n");
			died = true;
		}
		if (died)
			break;
		sleep_ms(200);
	}
	int64_t end_ms = time_monotonic_ms() - start;
	take_sample(end_ms);
	print_progress(end_ms);

	/*
	 * The end: the requests in flight answered while the fleet is still
	 * whole, then every agent closes; the database must then hold none.
	 */
	atomic_store(&sh->phase, PHASE_TRAFFIC_STOP);
	for (int i = AGENT_PROCS; i < child_count; i++)
		if (children[i] > 0) {
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
	atomic_store(&sh->phase, PHASE_AGENTS_STOP);
	for (int i = 0; i < AGENT_PROCS; i++)
		if (children[i] > 0) {
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
	int64_t wait0 = time_monotonic_ms();
	while (tunneld_agents() != 0 && time_monotonic_ms() - wait0 < 60000)
		sleep_ms(200);
	sleep_ms(2000); /* ee-tunneld's queued database writes */

	int failures = died ? 1 : 0;
	if (workers_changed)
		failures++;
	long answers = total_answers();
	printf("soak: requests %ld:", answers);
	for (int i = 0; i < ANSWER_CLASSES; i++)
		printf(" %s=%ld", answer_names[i], atomic_load(&sh->answers[i]));
	printf("\nsoak: by route:");
	for (int i = 0; i < ROUTES; i++)
		printf(" %s=%ld%s", route_names[i], atomic_load(&sh->by_route[i]), i + 1 < ROUTES ? "," : "");
	printf("\nsoak: agents: connects=%ld connect_failures=%ld attested=%ld periodic_attestations=%ld "
	       "heartbeats=%ld served=%ld clean_closes=%ld drops=%ld (holding a request: %ld) "
	       "unexpected_closes=%ld agent_errors=%ld\n",
	       atomic_load(&sh->connects), atomic_load(&sh->connect_failures),
	       atomic_load(&sh->attested), atomic_load(&sh->periodic_attested),
	       atomic_load(&sh->heartbeats), atomic_load(&sh->served), atomic_load(&sh->clean_closes),
	       atomic_load(&sh->drops), atomic_load(&sh->mid_request),
	       atomic_load(&sh->unexpected_closes), atomic_load(&sh->agent_errors));
	if (error_answers() || answers == 0)
		failures++;
	if (atomic_load(&sh->unexpected_closes) || atomic_load(&sh->agent_errors))
		failures++;
	if (cfg.churn_per_min && atomic_load(&sh->clean_closes) + atomic_load(&sh->drops) == 0)
		failures++;

	/*
	 * The warm-up: EE_SOAK_WARMUP_PERCENT of the run, and at least
	 * MIN_WARMUP_MS, the time the processes take to settle (ee-api's workers
	 * fill their page caches, the first periodic attestations come).  A run
	 * too short to leave a fifth of itself after that is not judged.
	 */
	int64_t warm_ms = end_ms * cfg.warmup_percent / 100;
	if (warm_ms < MIN_WARMUP_MS)
		warm_ms = MIN_WARMUP_MS;
	if (warm_ms > end_ms * 4 / 5) {
		warm_ms = end_ms / 5;
		if (cfg.judge_memory)
			printf("soak: memory not judged: the run is too short (a %d s warm-up must leave "
			       "a fifth of it)\n",
			       MIN_WARMUP_MS / 1000);
		cfg.judge_memory = false;
	}
	bool flat = judge_memory("ee-tunneld", offsetof(struct sample, tunneld_kb), warm_ms, end_ms);
	flat = judge_memory("ee-api (master and workers)", offsetof(struct sample, api_kb), warm_ms,
	                    end_ms) && flat;
	printf("soak: memory caddy (not judged): VmRSS %ld KiB at warm-up end, %ld KiB at the end\n",
	       rss_at(warm_ms, offsetof(struct sample, caddy_kb)),
	       rss_at(end_ms, offsetof(struct sample, caddy_kb)));
	if (!flat)
		failures++;

	failures += check_database();
	char path[400];
	snprintf(path, sizeof(path), "%s/soak-rss.tsv", st.dir);
	FILE *f = fopen(path, "w");
	for (int i = 0; f && i < sample_count; i++)
		fprintf(f, "%lld\t%ld\t%ld\t%ld\n", (long long)samples[i].t_ms, samples[i].tunneld_kb,
		        samples[i].api_kb, samples[i].caddy_kb);
	if (f)
		fclose(f);

	/*
	 * Logs last: a sanitizer writes its report when the program exits.
	 * stack_stop would remove the directory; it is kept for the logs, and
	 * removed below if everything passed (unless EE_TEST_KEEP is set).
	 */
	bool keep = getenv("EE_TEST_KEEP") != NULL;
	char dir[sizeof(st.dir)];
	snprintf(dir, sizeof(dir), "%s", st.dir);
	setenv("EE_TEST_KEEP", "1", 1);
	stack_stop(&st);
	snprintf(st.dir, sizeof(st.dir), "%s", dir);
	static struct log_scan ls;
	scan_log("ee-tunneld.log", &ls);
	scan_log("ee-api.log", &ls);
	for (int k = 0; k < ls.kind_count; k++)
		printf("soak: %ld x %s\n", ls.kinds[k].count, ls.kinds[k].text);
	printf("soak: log lines at warn or error: %ld expected, %ld not; ee-tunneld's database "
	       "writes waited on the lock %ld times and resumed %ld times\n",
	       ls.expected, ls.unexpected, ls.writes_failing, ls.writes_resumed);
	if (ls.unexpected || ls.writes_failing != ls.writes_resumed)
		failures++;
	if (test_case_failed())
		failures++;
	bool pass = failures == 0;
	printf("soak: %s: %d agents, %d s, %ld requests (%ld ok, %ld expected 5xx, %ld errors), "
	       "%ld takedowns, %ld unexpected closes%s%s\n",
	       pass ? "PASS" : "FAIL", cfg.agents, (int)(end_ms / 1000), answers,
	       atomic_load(&sh->answers[ANSWER_OK_PROXY]) + atomic_load(&sh->answers[ANSWER_OK_API]),
	       atomic_load(&sh->answers[ANSWER_EXPECTED_502]) +
	           atomic_load(&sh->answers[ANSWER_EXPECTED_503]) +
	           atomic_load(&sh->answers[ANSWER_EXPECTED_504]),
	       error_answers(), atomic_load(&sh->clean_closes) + atomic_load(&sh->drops),
	       atomic_load(&sh->unexpected_closes), pass && !keep ? "" : "; the files are in ",
	       pass && !keep ? "" : st.dir);
	st.dir[0] = '\0';
	if (pass && !keep)
		stack_remove_dir(dir);
	curl_global_cleanup();
	return pass ? 0 : 1;
}
