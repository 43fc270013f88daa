/*
 * test_limits.c - limits the control plane defends in code that no other
 * test showed (docs/SECURITY.md, sections 3 and 4), each driven past its
 * edge on a real stack:
 *   - EE_MAX_AGENTS: sockets past the cap get too_many_connections, 1013;
 *   - EE_VERIFY_QUEUE: attestations past it get verifier_busy, 1013, while
 *     verification is slowed by a fake GitHub that answers late;
 *   - an attested agent that stops reading is closed once its outgoing
 *     queue passes 64 MiB (SESSION_MAX_OUTQ_BYTES), and ee-tunneld goes on
 *     serving the others;
 *   - a message over EE_TUNNEL_MAX_MESSAGE_BYTES sent as many small
 *     websocket fragments;
 *   - the proxy listener's head and body timeouts (EE_PROXY_HEAD_TIMEOUT_SEC,
 *     EE_PROXY_BODY_TIMEOUT_SEC), counted from their start, not refreshed by
 *     each byte;
 *   - no token, guessed token, Idempotency-Key, body, proxied header value,
 *     nonce or quote in the logs of ee-api, ee-tunneld and Caddy.  Every
 *     program runs at debug level from the start; the scan runs last and
 *     reads what every case before it logged too.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>

#include "allowlist.h"
#include "attest.h"
#include "base64.h"
#include "check.h"
#include "client.h"
#include "fakehttp.h"
#include "jsonutil.h"
#include "stack.h"
#include "testagent.h"
#include "timeutil.h"

#define HOST "127.0.0.1"
#define NETWORK "sandbox-1"
#define WAIT_MS 10000
#define CLOSE_MESSAGE_TOO_LARGE 1009
#define CLOSE_TRY_AGAIN_LATER 1013
#define OUTQ_BODY_BYTES (8 * 1024 * 1024) /* EE_PROXY_MAX_BODY_BYTES's default */
#define OUTQ_MAX_REQUESTS 10

static struct stack st;
static struct fakehttp github; /* GitHub's releases API, for allowlists fetched (slowly) */

/* ---- small helpers ---- */

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static const char *msg_string(struct json_object *msg, const char *key)
{
	struct json_object *v;
	if (!msg || !json_object_is_type(msg, json_type_object) ||
	    !json_object_object_get_ex(msg, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool msg_is(struct json_object *msg, const char *type, const char *state, const char *reason)
{
	const char *t = msg_string(msg, "type"), *s = msg_string(msg, "state"),
	           *r = msg_string(msg, "reason");
	return t && strcmp(t, type) == 0 && (!state || (s && strcmp(s, state) == 0)) &&
	       (!reason || (r && strcmp(r, reason) == 0));
}

static const char *msg_text(struct json_object *m, const struct test_agent *a)
{
	return m ? json_object_to_json_string(m) : a ? agent_last_reason(a) : "no agent";
}

static struct test_agent *connect_agent(const char *app, const char *repo, const char *id)
{
	struct test_agent *a = agent_connect(HOST, st.control_port, app, repo, id, NETWORK);
	CHECK(a != NULL, "%s: the websocket did not open", id);
	return a;
}

/* Connects and attests; NULL (the case failed) when either did not happen. */
static struct test_agent *agent_ready(const char *app, const char *repo, const char *id)
{
	struct test_agent *a = connect_agent(app, repo, id);
	if (a && agent_up(a, false, WAIT_MS) != 0) {
		test_fail(__FILE__, __LINE__, "%s not attested: %s", id, agent_last_reason(a));
		agent_drop(a);
		a = NULL;
	}
	return a;
}

static bool tunneld_restart(const char *const *env) { return stack_restart_tunneld(&st, env); }

static bool wait_tunneld_agents(long long want, int timeout_ms, long long *last)
{
	return stack_wait_tunneld_agents(&st, want, timeout_ms, last);
}

/* A log of the stack (ee-api.log, ee-tunneld.log, caddy.log), whole, NUL-terminated. */
static char *read_log(const char *name, size_t *len)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", st.dir, name);
	FILE *f = fopen(path, "rb");
	struct buf b;
	buf_init(&b);
	if (f) {
		char chunk[8192];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			buf_append(&b, chunk, n);
		fclose(f);
	}
	CHECK(f != NULL, "no %s", path);
	*len = b.len;
	return b.data ? b.data : strdup("");
}

/* The next message must be status invalid <reason>, then a close with code. */
static void expect_refused(struct test_agent *a, const char *reason, int code)
{
	if (!a)
		return;
	struct json_object *m = agent_recv(a, WAIT_MS);
	CHECK(msg_is(m, "status", "invalid", reason), "got %s", msg_text(m, a));
	json_object_put(m);
	CHECK_INT(agent_wait_closed(a, WAIT_MS), code);
}

/* ---- raw TCP to the proxy listener ---- */

static int raw_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {0};
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		fd = -1;
	}
	CHECK(fd >= 0, "cannot connect to 127.0.0.1:%d", port);
	return fd;
}

/*
 * Reads and drops whatever comes until the peer closes: the milliseconds
 * that took, or -1 if it was still open after timeout_ms.
 */
static int wait_closed(int fd, int timeout_ms)
{
	int64_t start = time_monotonic_ms();
	for (;;) {
		int left = timeout_ms - (int)(time_monotonic_ms() - start);
		if (left <= 0)
			return -1;
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, left) < 0 && errno != EINTR)
			return -1;
		if (p.revents) {
			char junk[4096];
			ssize_t n = recv(fd, junk, sizeof(junk), 0);
			if (n <= 0)
				return (int)(time_monotonic_ms() - start);
		}
	}
}

/*
 * Sends text one byte every gap_ms, watching for the peer to close: the
 * milliseconds from start_ms until it did, or -1 when every byte went.
 */
static int drip(int fd, const char *text, int gap_ms, int64_t start_ms)
{
	for (const char *p = text; *p; p++) {
		if (send(fd, p, 1, MSG_NOSIGNAL) != 1)
			return (int)(time_monotonic_ms() - start_ms);
		struct pollfd pf = {fd, POLLIN, 0};
		if (poll(&pf, 1, gap_ms) > 0) {
			char junk[4096];
			if (recv(fd, junk, sizeof(junk), 0) <= 0)
				return (int)(time_monotonic_ms() - start_ms);
		}
	}
	return -1;
}

/* One HTTP/1.1 answer from fd: its status, and its body (malloc'd) if body is not NULL. */
static long raw_response(int fd, int timeout_ms, char **body, size_t *body_len)
{
	struct buf b;
	buf_init(&b);
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	long status = -1;
	size_t want = 0;
	const char *end = NULL;
	for (;;) {
		if (b.data && !end && (end = strstr(b.data, "\r\n\r\n")) != NULL) {
			sscanf(b.data, "HTTP/1.1 %ld", &status);
			const char *cl = strcasestr(b.data, "\r\ncontent-length:");
			want = (size_t)(end - b.data) + 4 + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
		}
		if (end && b.len >= want)
			break;
		int left = (int)(deadline - time_monotonic_ms());
		struct pollfd p = {fd, POLLIN, 0};
		if (left <= 0 || poll(&p, 1, left) <= 0) {
			status = -1;
			break;
		}
		char chunk[65536];
		ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
		if (n <= 0) {
			status = end ? status : -1;
			break;
		}
		buf_append(&b, chunk, (size_t)n);
		end = NULL;
	}
	if (body) {
		*body = NULL;
		*body_len = 0;
		const char *e = b.data ? strstr(b.data, "\r\n\r\n") : NULL;
		if (e && status > 0) {
			size_t off = (size_t)(e - b.data) + 4;
			*body_len = b.len - off;
			*body = malloc(*body_len + 1);
			if (*body) {
				memcpy(*body, b.data + off, *body_len);
				(*body)[*body_len] = '\0';
			}
		}
	}
	buf_free(&b);
	return status;
}

/* ---- a client in a child process, while this one plays the agent ---- */

struct bg_request {
	pid_t pid;
	int fd;
};

static void bg_start(struct bg_request *bg, const char *method, const char *url,
                     const char *const *headers, const char *body)
{
	int p[2];
	bg->pid = -1;
	bg->fd = -1;
	if (pipe(p) != 0) {
		test_fail(__FILE__, __LINE__, "pipe: %s", strerror(errno));
		return;
	}
	bg->pid = fork();
	if (bg->pid == 0) {
		/* The agent's websocket must not outlive the parent's close of it here. */
		for (int fd = 3; fd < 1024; fd++)
			if (fd != p[1])
				close(fd);
		struct http_result r;
		long status = -1;
		if (http_do(method, url, headers, body, body ? strlen(body) : 0, &r) == 0)
			status = r.status;
		http_result_free(&r);
		_exit(test_write_all(p[1], &status, sizeof(status)) == 0 ? 0 : 1);
	}
	close(p[1]);
	bg->fd = p[0];
}

/* The status the child got, or -1. */
static long bg_finish(struct bg_request *bg, int timeout_ms)
{
	long status = -1;
	struct pollfd p = {bg->fd, POLLIN, 0};
	if (bg->fd >= 0 && poll(&p, 1, timeout_ms) > 0 &&
	    read(bg->fd, &status, sizeof(status)) != (ssize_t)sizeof(status))
		status = -1;
	if (bg->fd >= 0)
		close(bg->fd);
	if (bg->pid > 0) {
		kill(bg->pid, SIGKILL);
		waitpid(bg->pid, NULL, 0);
	}
	bg->fd = -1;
	bg->pid = -1;
	return status;
}

/* ---- the fake GitHub ---- */

#define GITHUB_MAX_REPOS 4

/* Serves the default allowlist of each repo's AGENT_DEFAULT_RELEASE, the release after delay_ms. */
static void github_serve(const char *const *repos, int count, int delay_ms)
{
	static char release[GITHUB_MAX_REPOS][512], tag_path[GITHUB_MAX_REPOS][256],
		asset_path[GITHUB_MAX_REPOS][256];
	struct fakehttp_route routes[2 * GITHUB_MAX_REPOS];
	int n = 0;
	for (int i = 0; i < count && i < GITHUB_MAX_REPOS; i++) {
		snprintf(tag_path[i], sizeof(tag_path[i]), "/repos/%s/releases/tags/%s", repos[i],
		         AGENT_DEFAULT_RELEASE);
		snprintf(asset_path[i], sizeof(asset_path[i]), "/repos/%s/releases/assets/2", repos[i]);
		snprintf(release[i], sizeof(release[i]),
		         "{\"id\":1,\"tag_name\":\"%s\",\"assets\":[{\"id\":2,\"name\":\"%s\","
		         "\"url\":\"%s%s\"}]}",
		         AGENT_DEFAULT_RELEASE, ALLOWLIST_DEFAULT_ASSET, github.base_url, asset_path[i]);
		routes[n++] = (struct fakehttp_route){.target = tag_path[i], .status = 200,
		                                      .body = release[i], .delay_ms = delay_ms};
		routes[n++] = (struct fakehttp_route){.target = asset_path[i], .status = 200,
		                                      .body = agent_default_allowlist()};
	}
	if (fakehttp_serve(&github, routes, (size_t)n) != 0)
		test_fail(__FILE__, __LINE__, "the fake GitHub did not start");
}

/* "EE_GITHUB_API_URL=<the fake>", kept for ee-tunneld's environment. */
static const char *github_url_setting(void)
{
	static char setting[128];
	snprintf(setting, sizeof(setting), "EE_GITHUB_API_URL=%s", github.base_url);
	return setting;
}

/* ---- 1. EE_MAX_AGENTS ---- */

static void test_max_agents(void)
{
	static const char *const env[] = {"EE_MAX_AGENTS=3", NULL};
	test_case("EE_MAX_AGENTS=3: two attested agents and one socket not yet registered fill it; "
	          "a fourth socket gets too_many_connections and close code 1013");
	if (!tunneld_restart(env))
		return;
	struct test_agent *a = agent_ready("cap-app", "cap/app", "cap-agent-1");
	struct test_agent *b = agent_ready("cap-app", "cap/app", "cap-agent-2");
	struct test_agent *c = connect_agent("cap-app", "cap/app", "cap-agent-3");
	long long n;
	CHECK(wait_tunneld_agents(3, WAIT_MS, &n), "ee-tunneld holds %lld sockets", n);
	struct test_agent *d = connect_agent("cap-app", "cap/app", "cap-agent-4");
	expect_refused(d, "too_many_connections", CLOSE_TRY_AGAIN_LATER);
	agent_drop(d);

	test_case("a socket refused at the cap takes no slot: the next one is refused too");
	CHECK(wait_tunneld_agents(3, WAIT_MS, &n), "ee-tunneld holds %lld sockets", n);
	d = connect_agent("cap-app", "cap/app", "cap-agent-5");
	expect_refused(d, "too_many_connections", CLOSE_TRY_AGAIN_LATER);
	agent_drop(d);

	test_case("closing one frees a slot: a new socket registers and attests, and the cap is "
	          "full again");
	if (a)
		agent_disconnect(a);
	a = NULL;
	CHECK(wait_tunneld_agents(2, WAIT_MS, &n), "ee-tunneld holds %lld sockets", n);
	d = agent_ready("cap-app", "cap/app", "cap-agent-6");
	struct test_agent *e = connect_agent("cap-app", "cap/app", "cap-agent-7");
	expect_refused(e, "too_many_connections", CLOSE_TRY_AGAIN_LATER);
	agent_drop(e);
	if (d)
		agent_disconnect(d);
	if (c)
		agent_disconnect(c);
	if (b)
		agent_disconnect(b);
}

/* ---- 1b. EE_CONNECT_RATE_LIMIT ---- */

/* A socket opened as if forwarded by Caddy for client `who` (NULL: 127.0.0.1 itself). */
static struct test_agent *connect_as(const char *who, const char *id)
{
	char xff[96];
	snprintf(xff, sizeof(xff), "X-Forwarded-For: %s", who ? who : "127.0.0.1");
	const char *headers[] = {xff, NULL};
	struct agent_connect_options opt = {.headers = headers};
	struct test_agent *a =
		agent_connect_ex(HOST, st.control_port, "rate-app", "rate/app", id, NETWORK, &opt);
	CHECK(a != NULL, "%s: the websocket did not open", id);
	return a;
}

static void test_connect_rate(void)
{
	static const char *const env[] = {"EE_CONNECT_RATE_LIMIT=4", NULL};
	test_case("EE_CONNECT_RATE_LIMIT=4: four sockets opened and closed in a row are accepted, "
	          "the fifth within the minute gets too_many_connections and close code 1013");
	if (!tunneld_restart(env))
		return;
	for (int i = 0; i < 4; i++) {
		char id[32], nonce[33];
		snprintf(id, sizeof(id), "rate-agent-%d", i);
		struct test_agent *a = connect_as("203.0.113.30", id);
		if (a && agent_register(a, nonce, WAIT_MS) != 0)
			test_fail(__FILE__, __LINE__, "%s not accepted: %s", id, agent_last_reason(a));
		if (a)
			agent_disconnect(a);
	}
	struct test_agent *a = connect_as("203.0.113.30", "rate-agent-4");
	expect_refused(a, "too_many_connections", CLOSE_TRY_AGAIN_LATER);
	agent_drop(a);

	test_case("refused sockets count too: the client stays refused; another client is "
	          "accepted and attests");
	a = connect_as("203.0.113.30", "rate-agent-5");
	expect_refused(a, "too_many_connections", CLOSE_TRY_AGAIN_LATER);
	agent_drop(a);
	a = connect_as("198.51.100.30", "rate-agent-other");
	if (a && agent_up(a, false, WAIT_MS) != 0)
		test_fail(__FILE__, __LINE__, "the other client: %s", agent_last_reason(a));
	if (a)
		agent_disconnect(a);
}

/* ---- 1c. connections dropped at every stage ---- */

#define DROPS 1500

/*
 * Connections reset (SO_LINGER 0) after nothing, part of a websocket
 * handshake, a whole one, a request, or a request with half its body:
 * libwebsockets closes some of them before it has given them their
 * per-connection data, and a callback that assumed it had crashed.
 */
static void test_abrupt_drops(void)
{
	static const char upgrade[] =
		"GET /v1/tunnel HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
	static const char *const other[] = {
		"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1/proxy/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
	};
	test_case("%d connections reset at every stage of a handshake or request, on both "
	          "listeners: ee-tunneld stays up and answers",
	          DROPS);
	if (!tunneld_restart(NULL))
		return;
	unsigned seed = 7;
	for (int i = 0; i < DROPS; i++) {
		int fd = raw_connect(i % 2 ? st.proxy_port : st.control_port);
		if (fd < 0)
			break;
		seed = seed * 1103515245u + 12345u;
		switch (i / 2 % 5) {
		case 1: test_write_all(fd, upgrade, 1 + seed % (sizeof(upgrade) - 2)); break;
		case 2: test_write_all(fd, upgrade, sizeof(upgrade) - 1); break;
		case 3: test_write_all(fd, other[0], strlen(other[0])); break;
		case 4: test_write_all(fd, other[1], strlen(other[1])); break;
		default: break;
		}
		struct linger reset = {1, 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
		close(fd);
	}
	CHECK(kill(st.tunneld_pid, 0) == 0 && waitpid(st.tunneld_pid, NULL, WNOHANG) == 0,
	      "ee-tunneld is gone");
	long long n;
	CHECK(wait_tunneld_agents(0, WAIT_MS, &n), "ee-tunneld's /health: agents %lld", n);
	struct test_agent *a = agent_ready("drop-app", "drop/app", "drop-agent");
	if (a)
		agent_disconnect(a);
}

/* ---- 2. EE_VERIFY_QUEUE ---- */

#define BUSY_AGENTS 3
#define BUSY_DELAY_MS 1500 /* the fake GitHub's answer: how long one verification takes */

static void test_verifier_busy(void)
{
	static const char *const repos[] = {"busy/app"};
	static const char *env[] = {"EE_VERIFY_QUEUE=1", "EE_ALLOWLIST_DIR=", NULL, NULL};
	test_case("EE_VERIFY_QUEUE=1, each verification slowed to %d ms by a late GitHub: of %d agents "
	          "answering at once one is attested, the others get verifier_busy and close 1013",
	          BUSY_DELAY_MS, BUSY_AGENTS);
	github_serve(repos, 1, BUSY_DELAY_MS);
	fakehttp_clear_log(&github);
	env[2] = github_url_setting();
	if (!tunneld_restart(env))
		return;
	struct test_agent *a[BUSY_AGENTS];
	char nonce[BUSY_AGENTS][33];
	for (int i = 0; i < BUSY_AGENTS; i++) {
		char id[32];
		snprintf(id, sizeof(id), "busy-agent-%d", i);
		a[i] = connect_agent("busy-app", "busy/app", id);
		CHECK(a[i] && agent_register(a[i], nonce[i], WAIT_MS) == 0, "%s: %s", id,
		      a[i] ? agent_last_reason(a[i]) : "no websocket");
	}
	if (test_case_failed())
		goto out;
	/* Built first, sent together: all are in ee-tunneld before the first verdict. */
	struct json_object *answers[BUSY_AGENTS];
	for (int i = 0; i < BUSY_AGENTS; i++)
		answers[i] = agent_build_attest_response(nonce[i], NULL);
	for (int i = 0; i < BUSY_AGENTS; i++) {
		CHECK(answers[i] && agent_send_json(a[i], answers[i]) == 0);
		json_object_put(answers[i]);
	}
	int attested = 0, busy = 0, closed_1013 = 0, retry = -1;
	for (int i = 0; i < BUSY_AGENTS; i++) {
		struct json_object *m = agent_recv(a[i], BUSY_DELAY_MS + WAIT_MS);
		if (msg_is(m, "status", "ok", "attested")) {
			attested++;
		} else if (msg_is(m, "status", "invalid", "verifier_busy")) {
			busy++;
			retry = i;
			if (agent_wait_closed(a[i], WAIT_MS) == CLOSE_TRY_AGAIN_LATER)
				closed_1013++;
		} else {
			test_fail(__FILE__, __LINE__, "%s got %s", a[i]->agent_id, msg_text(m, a[i]));
		}
		json_object_put(m);
	}
	CHECK_INT(attested, 1);
	CHECK_INT(busy, BUSY_AGENTS - 1);
	CHECK_INT(closed_1013, BUSY_AGENTS - 1);
	CHECK_INT(fakehttp_count(&github, "/releases/tags/"), 1);

	test_case("the verdict given, the queue has room again: a refused agent that comes back is "
	          "attested");
	if (retry >= 0) {
		char id[AGENT_FIELD_MAX];
		snprintf(id, sizeof(id), "%s", a[retry]->agent_id);
		agent_drop(a[retry]);
		a[retry] = agent_ready("busy-app", "busy/app", id);
	} else {
		test_fail(__FILE__, __LINE__, "no agent was refused");
	}
out:
	for (int i = 0; i < BUSY_AGENTS; i++)
		if (a[i])
			agent_drop(a[i]);
}

/* ---- 3. an agent that stops reading ---- */

static void test_stalled_reader(void)
{
	static const char *const env[] = {"EE_PROXY_TIMEOUT_SEC=120", NULL};
	test_case("an attested agent that stops reading, sent requests of 8 MiB: ee-tunneld closes "
	          "it once its outgoing queue passes 64 MiB, not before");
	if (!tunneld_restart(env))
		return;
	/* A small receive buffer: the kernel holds little of what the agent does not read. */
	struct ws_connect_options small = {.rcvbuf = 4096};
	struct agent_connect_options opt = {.ws = &small};
	struct test_agent *slow = agent_connect_ex(HOST, st.control_port, "stall-app", "stall/app",
	                                           "stall-agent", NETWORK, &opt);
	CHECK(slow && agent_up(slow, false, WAIT_MS) == 0, "%s",
	      slow ? agent_last_reason(slow) : "no websocket");
	struct test_agent *other = agent_ready("stall-other", "stall/other", "stall-other-agent");
	unsigned char *body = malloc(OUTQ_BODY_BYTES);
	if (!slow || !other || !body || test_case_failed()) {
		free(body);
		if (slow)
			agent_drop(slow);
		if (other)
			agent_drop(other);
		return;
	}
	for (size_t i = 0; i < OUTQ_BODY_BYTES; i++)
		body[i] = (unsigned char)('a' + i % 26);
	char head[256];
	int head_len = snprintf(head, sizeof(head),
	                        "POST /stall HTTP/1.1\r\nHost: stall-app.app.localhost\r\n"
	                        "Content-Length: %d\r\n\r\n",
	                        OUTQ_BODY_BYTES);
	int fds[OUTQ_MAX_REQUESTS];
	int sent = 0, closed_after = 0;
	long long n = -1;
	int64_t t0 = time_monotonic_ms();
	/*
	 * Each request becomes a proxy_request of about 11.2 MiB (base64) queued
	 * for the agent: five are 55.9 MiB, under the cap whatever the kernel
	 * took of them, so those go at once; then one at a time until it closes.
	 */
	bool open_after_five = false;
	while (sent < OUTQ_MAX_REQUESTS && !closed_after) {
		int fd = raw_connect(st.proxy_port);
		if (fd < 0)
			break;
		fds[sent++] = fd;
		CHECK(test_write_all(fd, head, (size_t)head_len) == 0 &&
		          test_write_all(fd, body, OUTQ_BODY_BYTES) == 0,
		      "request %d not sent", sent);
		if (sent < 5)
			continue;
		if (sent == 5) {
			sleep_ms(1000);
			open_after_five = stack_tunneld_agents(&st) == 2;
			continue;
		}
		if (wait_tunneld_agents(1, 5000, &n))
			closed_after = sent;
	}
	printf("# closed after %d requests of 8 MiB, %lld ms\n", closed_after,
	       (long long)(time_monotonic_ms() - t0));
	CHECK(closed_after > 0, "still connected after %d requests (%lld sockets)", sent, n);
	CHECK(open_after_five, "closed before the queue could pass 64 MiB");
	CHECK(closed_after >= 6, "closed after %d requests", closed_after);
	size_t log_len;
	char *log = read_log("ee-tunneld.log", &log_len);
	CHECK(strstr(log, "agent stall-agent (") && strstr(log, "is not reading its tunnel; closing it"),
	      "ee-tunneld did not say why it closed the tunnel");
	free(log);

	test_case("the requests in flight on the closed tunnel are answered 502, none is left "
	          "hanging");
	for (int i = 0; i < sent; i++) {
		long status = raw_response(fds[i], WAIT_MS, NULL, NULL);
		/* The request that found the tunnel closing may have been refused as unrouted. */
		if (i < closed_after - 1)
			CHECK(status == 502, "request %d: %ld", i + 1, status);
		else
			CHECK(status >= 400, "request %d: %ld", i + 1, status);
		close(fds[i]);
	}
	agent_drop(slow);

	test_case("ee-tunneld stays healthy: /health 200, another agent's request of 1 MiB comes back "
	          "whole");
	CHECK_INT(stack_tunneld_agents(&st), 1);
	int fd = raw_connect(st.proxy_port);
	const size_t other_len = 1024 * 1024;
	head_len = snprintf(head, sizeof(head),
	                    "POST /echo HTTP/1.1\r\nX-EE-App: stall-other\r\nHost: x\r\n"
	                    "Content-Length: %zu\r\n\r\n",
	                    other_len);
	if (fd >= 0) {
		CHECK(test_write_all(fd, head, (size_t)head_len) == 0 &&
		      test_write_all(fd, body, other_len) == 0);
		CHECK(agent_serve(other, WAIT_MS, NULL, NULL) == 0, "%s", agent_last_reason(other));
		char *got = NULL;
		size_t got_len = 0;
		CHECK_INT(raw_response(fd, WAIT_MS, &got, &got_len), 200);
		CHECK(got_len == other_len && got && memcmp(got, body, other_len) == 0,
		      "%zu bytes back", got_len);
		free(got);
		close(fd);
	}
	agent_disconnect(other);
	free(body);
}

/* ---- 4. an over-limit message in many fragments ---- */

/* Sends text as fragments of frag bytes: a text frame, then continuations, FIN on the last. */
static int send_fragments(struct ws_client *ws, const char *text, size_t len, size_t frag)
{
	int frames = 0;
	for (size_t off = 0; off < len; off += frag) {
		size_t n = len - off < frag ? len - off : frag;
		bool last = off + n == len;
		if (ws_send_frame(ws, off == 0 ? WS_OP_TEXT : WS_OP_CONTINUATION, last, true, text + off,
		                  n) != 0)
			break;
		frames++;
	}
	return frames;
}

/* {"type":"<type>","pad":"   ...   "} of exactly len bytes. */
static char *padded_message(const char *type, size_t len)
{
	char *text = malloc(len + 1);
	if (!text)
		return NULL;
	int n = snprintf(text, len + 1, "{\"type\":\"%s\",\"pad\":\"", type);
	memset(text + n, ' ', len - (size_t)n - 2);
	memcpy(text + len - 2, "\"}", 3);
	return text;
}

static void test_fragments(void)
{
	static const char *const env[] = {"EE_TUNNEL_MAX_MESSAGE_BYTES=65536", NULL};
	test_case("EE_TUNNEL_MAX_MESSAGE_BYTES=65536: a message of 70000 bytes sent as 274 fragments "
	          "of 256 bytes: message_too_large, closed with 1009");
	if (!tunneld_restart(env))
		return;
	struct test_agent *a = connect_agent("frag-big", "frag/big", "frag-agent-big");
	char *text = padded_message("health", 70000);
	if (a && text) {
		int frames = send_fragments(a->ws, text, 70000, 256);
		/* The limit is passed at the 257th; the socket may close before the rest go. */
		CHECK(frames > 65536 / 256, "only %d fragments sent", frames);
		expect_refused(a, "message_too_large", CLOSE_MESSAGE_TOO_LARGE);
	}
	free(text);
	if (a)
		agent_drop(a);

	test_case("a message of 65000 bytes in 254 fragments of 256 bytes is read whole (status "
	          "unknown_message), and the socket goes on to attest");
	a = connect_agent("frag-fits", "frag/fits", "frag-agent-fits");
	text = padded_message("bogus", 65000);
	if (a && text) {
		CHECK_INT(send_fragments(a->ws, text, 65000, 256), 254);
		struct json_object *m = agent_recv(a, WAIT_MS);
		CHECK(msg_is(m, "status", "invalid", "unknown_message"), "got %s", msg_text(m, a));
		json_object_put(m);
		CHECK(agent_up(a, false, WAIT_MS) == 0, "%s", agent_last_reason(a));
	}
	free(text);
	if (a)
		agent_disconnect(a);
}

/* ---- 5. the proxy listener's head and body timeouts ---- */

static void test_proxy_timeouts(void)
{
	static const char *const env[] = {"EE_PROXY_HEAD_TIMEOUT_SEC=1", "EE_PROXY_BODY_TIMEOUT_SEC=2",
	                                  NULL};
	test_case("EE_PROXY_HEAD_TIMEOUT_SEC=1: half a head, then nothing: closed within 1 to 3 s, "
	          "the agent sees nothing");
	if (!tunneld_restart(env))
		return;
	struct test_agent *a = agent_ready("drip-app", "drip/app", "drip-agent");
	if (!a)
		return;
	int fd = raw_connect(st.proxy_port);
	const char *half = "GET /half HTTP/1.1\r\nHost: drip-app.app.localhost\r\nX-Half: ";
	if (fd >= 0) {
		CHECK(test_write_all(fd, half, strlen(half)) == 0);
		int ms = wait_closed(fd, 6000);
		printf("# half a head: closed after %d ms\n", ms);
		CHECK(ms >= 900 && ms <= 3000, "closed after %d ms", ms);
		close(fd);
	}
	struct json_object *m = agent_recv(a, 100);
	CHECK(!m, "the agent got %s", msg_text(m, a));
	json_object_put(m);

	test_case("a head dripped a byte every 100 ms (6 s in all): closed at the head timeout, not "
	          "refreshed by each byte");
	fd = raw_connect(st.proxy_port);
	if (fd >= 0) {
		char slow_head[128];
		snprintf(slow_head, sizeof(slow_head), "%s%s", half, "abcdefghijklmnopqrstuvw\r\n\r\n");
		int ms = drip(fd, slow_head, 100, time_monotonic_ms());
		printf("# dripped head: closed after %d ms\n", ms);
		CHECK(ms >= 900 && ms <= 3000, "closed after %d ms (-1: never)", ms);
		close(fd);
	}

	test_case("EE_PROXY_BODY_TIMEOUT_SEC=2: a body of 100 bytes trickled a byte every 100 ms is "
	          "cut 2 to 4 s after its head, not refreshed by each byte; the agent sees nothing");
	fd = raw_connect(st.proxy_port);
	if (fd >= 0) {
		const char *head = "POST /trickle HTTP/1.1\r\nHost: drip-app.app.localhost\r\n"
		                   "Content-Length: 100\r\n\r\n";
		char trickle[101];
		memset(trickle, 'b', 100);
		trickle[100] = '\0';
		CHECK(test_write_all(fd, head, strlen(head)) == 0);
		int ms = drip(fd, trickle, 100, time_monotonic_ms());
		printf("# trickled body: cut after %d ms\n", ms);
		CHECK(ms >= 1800 && ms <= 4000, "cut after %d ms (-1: never)", ms);
		close(fd);
	}
	m = agent_recv(a, 100);
	CHECK(!m, "the agent got %s", msg_text(m, a));
	json_object_put(m);

	test_case("with those timeouts a request sent at once is answered, and a keep-alive "
	          "connection idle for 1.5 s between requests is not cut by the head timeout");
	fd = raw_connect(st.proxy_port);
	const char *request = "POST /whole HTTP/1.1\r\nHost: drip-app.app.localhost\r\n"
	                      "Content-Length: 5\r\n\r\nhello";
	for (int round = 0; fd >= 0 && round < 2; round++) {
		if (round == 1)
			sleep_ms(1500);
		CHECK(test_write_all(fd, request, strlen(request)) == 0);
		CHECK(agent_serve(a, WAIT_MS, NULL, NULL) == 0, "%s", agent_last_reason(a));
		char *body = NULL;
		size_t len = 0;
		CHECK_INT(raw_response(fd, WAIT_MS, &body, &len), 200);
		CHECK(body && strcmp(body, "hello") == 0, "body \"%s\"", body ? body : "");
		free(body);
	}
	if (fd >= 0)
		close(fd);
	agent_disconnect(a);
}

/* ---- 6. no secrets in the logs ---- */

#define MARK_BODY "body-marker-5d2e8c41"
#define MARK_QUERY "query-marker-0b7d66a2"
#define MARK_IDEM "idem-key-marker-7f3a91c0"
#define MARK_IDEM_BUSY "idem-key-marker-busy-22c4e9"
#define MARK_GUESS "guess-token-marker-c81f0e3b99"
#define MARK_REQ_HEADER "proxied-header-marker-93be17"
#define MARK_REQ_AUTH "proxied-auth-marker-40aa5d"
#define MARK_COOKIE "cookie-marker-6e02b3"
#define MARK_REQ_BODY "proxied-body-marker-a6f1d2"
#define MARK_ANSWER_HEADER "answer-header-marker-4c2a88"
#define MARK_ANSWER_BODY "answer-body-marker-11d0f7"
#define GITHUB_TOKEN "ghp_limitsSecretGithubToken000000000001"
/* A guesser's near miss: the admin token with its last character changed. */
#define NEAR_ADMIN_TOKEN "test-admin-token-000000000000000009"

/* The agent's answer: markers in a header and the body, status from ctx (NULL: 200). */
static void answer_with_markers(const struct agent_request *req, struct agent_response *resp,
                                void *ctx)
{
	(void)req;
	resp->status = ctx ? *(const int *)ctx : 200;
	json_put_string(resp->headers, "X-Answer", MARK_ANSWER_HEADER);
	buf_puts(&resp->body, MARK_ANSWER_BODY);
}

/* Sends a request from a child process and serves it as a; the client's status. */
static long proxied(struct test_agent *a, const char *method, const char *url,
                    const char *const *headers, const char *body, int status)
{
	struct bg_request bg;
	bg_start(&bg, method, url, headers, body);
	CHECK(agent_serve(a, WAIT_MS, answer_with_markers, &status) == 0, "%s", agent_last_reason(a));
	return bg_finish(&bg, WAIT_MS);
}

/* Registers, answers the challenge with a real quote and keeps its nonce and quote text. */
static struct json_object *attest_keeping(struct test_agent *a,
                                          const struct agent_attest_options *opt, char nonce[33],
                                          char **quote)
{
	*quote = NULL;
	if (!a || agent_register(a, nonce, WAIT_MS) != 0)
		return NULL;
	struct json_object *answer = agent_build_attest_response(nonce, opt);
	const char *q = msg_string(answer, "quote");
	*quote = q ? strdup(q) : NULL;
	int rc = answer ? agent_send_json(a, answer) : -1;
	json_object_put(answer);
	return rc == 0 ? agent_recv(a, WAIT_MS) : NULL;
}

struct secret {
	const char *what;
	char value[16384];
};
#define SECRETS_MAX 32
static struct secret secrets[SECRETS_MAX];
static int secret_count;

static void secret_add(const char *what, const char *value)
{
	if (!value || !*value || secret_count == SECRETS_MAX) {
		test_fail(__FILE__, __LINE__, "no value for %s", what);
		return;
	}
	secrets[secret_count].what = what;
	snprintf(secrets[secret_count].value, sizeof(secrets[secret_count].value), "%s", value);
	secret_count++;
}


/*
 * Fails the case for each secret found in the log: whole, or, for values
 * longer than 48 characters (quotes), any 32 characters of them at an offset
 * that is a multiple of 16, so that any 48 characters in a row are caught.
 */
static void scan_log(const char *name, const char *log, size_t len)
{
	for (int i = 0; i < secret_count; i++) {
		const char *v = secrets[i].value;
		size_t vlen = strlen(v);
		if (vlen <= 48) {
			CHECK(!memmem(log, len, v, vlen), "%s holds %s", name, secrets[i].what);
			continue;
		}
		for (size_t off = 0; off + 32 <= vlen; off += 16) {
			if (memmem(log, len, v + off, 32)) {
				test_fail(__FILE__, __LINE__, "%s holds 32 characters of %s (at %zu)", name,
				          secrets[i].what, off);
				break;
			}
		}
	}
}

static void test_no_secrets_in_logs(void)
{
	static const char *const repos[] = {"secret/app"};
	static const char *env[] = {"EE_ALLOWLIST_DIR=", "EE_GITHUB_TOKEN=" GITHUB_TOKEN,
	                            "EE_PROXY_TIMEOUT_SEC=1", NULL, NULL};
	test_case("every program at debug level, traffic carrying secrets: tokens, guessed tokens, "
	          "Idempotency-Keys, bodies, a 503 of ee-api, proxied bodies, headers and cookies, "
	          "a 504 and a 502 of ee-tunneld, a passing and a failing attestation");
	github_serve(repos, 1, 0);
	fakehttp_clear_log(&github);
	env[3] = github_url_setting();
	if (!tunneld_restart(env))
		return;
	secret_count = 0;
	secret_add("the admin token", TEST_ADMIN_TOKEN);
	secret_add("the launcher token", TEST_LAUNCHER_TOKEN);
	secret_add("the uptime token", TEST_UPTIME_TOKEN);
	secret_add("EE_GITHUB_TOKEN", GITHUB_TOKEN);
	secret_add("a guessed token", MARK_GUESS);
	secret_add("a near miss of the admin token", NEAR_ADMIN_TOKEN);
	secret_add("a request body", MARK_BODY);
	secret_add("a query string", MARK_QUERY);
	secret_add("an Idempotency-Key", MARK_IDEM);
	secret_add("the Idempotency-Key of a 503", MARK_IDEM_BUSY);
	secret_add("a proxied header value", MARK_REQ_HEADER);
	secret_add("a proxied Authorization", MARK_REQ_AUTH);
	secret_add("a proxied cookie", MARK_COOKIE);
	secret_add("a proxied body", MARK_REQ_BODY);
	secret_add("an agent's answer header", MARK_ANSWER_HEADER);
	secret_add("an agent's answer body", MARK_ANSWER_BODY);

	struct http_result r;
	char auth[160];
	/* The REST API with every token, right and wrong. */
	stack_request(&st, "GET", "/v1/apps", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
	const char *guesses[] = {MARK_GUESS, NEAR_ADMIN_TOKEN, TEST_LAUNCHER_TOKEN, TEST_UPTIME_TOKEN};
	for (size_t i = 0; i < sizeof(guesses) / sizeof(guesses[0]); i++) {
		stack_request(&st, "GET", "/v1/ledger/entries", guesses[i], NULL, &r);
		CHECK(r.status == 401, "guess %zu: %ld", i, r.status);
		http_result_free(&r);
	}
	const char *basic[] = {"Authorization: Basic " MARK_GUESS, NULL};
	stack_request_ex(&st, "GET", "/v1/apps", basic, NULL, 0, &r);
	CHECK_INT(r.status, 401);
	http_result_free(&r);
	stack_request(&st, "GET", "/v1/apps?token=" TEST_ADMIN_TOKEN, NULL, NULL, &r);
	CHECK_INT(r.status, 401);
	http_result_free(&r);
	stack_request(&st, "POST", "/v1/nodes/register", TEST_ADMIN_TOKEN,
	              "{\"node_id\":\"secret-node\",\"price_usd_per_vcpu_hour\":\"0.25\","
	              "\"stake_amount_usd\":\"100\",\"stake_tier\":\"gold\"}",
	              &r);
	CHECK_INT(r.status, 200);
	const char *node_token = http_json_string(&r, "node_token");
	secret_add("a node's token", node_token);
	http_result_free(&r);
	stack_request(&st, "POST", "/v1/nodes/register", secrets[secret_count - 1].value,
	              "{\"node_id\":\"secret-node\",\"price_usd_per_vcpu_hour\":\"0.30\"}", &r);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
	stack_request(&st, "POST", "/v1/nodes/register", secrets[secret_count - 1].value,
	              "{\"node_id\":\"another-node\",\"price_usd_per_vcpu_hour\":\"0.30\"}", &r);
	CHECK_INT(r.status, 401);
	http_result_free(&r);
	stack_request(&st, "POST", "/v1/abuse/reports", TEST_LAUNCHER_TOKEN,
	              "{\"node_id\":\"secret-node\",\"reason\":\"" MARK_BODY "\"}", &r);
	CHECK(r.status >= 200 && r.status < 500, "abuse report: %ld", r.status);
	http_result_free(&r);
	stack_request(&st, "POST", "/v1/usage/report", TEST_UPTIME_TOKEN, "{\"" MARK_BODY "\":", &r);
	CHECK_INT(r.status, 400);
	http_result_free(&r);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", TEST_ADMIN_TOKEN);
	const char *idem[] = {auth, "Content-Type: application/json", "Idempotency-Key: " MARK_IDEM,
	                      "X-Secret: " MARK_REQ_HEADER, NULL};
	const char *buy = "{\"account_id\":\"secret-buyer\",\"amount\":\"5\"}";
	stack_request_ex(&st, "POST", "/v1/credits/purchase", idem, buy, strlen(buy), &r);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
	const char *other = "{\"account_id\":\"secret-buyer\",\"amount\":\"6\",\"memo\":\"" MARK_BODY
	                    "\"}";
	stack_request_ex(&st, "POST", "/v1/credits/purchase", idem, other, strlen(other), &r);
	CHECK(r.status == 422 || r.status == 400, "reused key: %ld", r.status);
	http_result_free(&r);
	/* A 5xx of ee-api (the one kind it logs): the write lock held past its busy timeout. */
	sqlite3 *lock = NULL;
	CHECK(sqlite3_open(st.db_path, &lock) == SQLITE_OK &&
	      sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
	const char *idem_busy[] = {auth, "Content-Type: application/json",
	                           "Idempotency-Key: " MARK_IDEM_BUSY, NULL};
	const char *busy_body = "{\"account_id\":\"secret-buyer\",\"amount\":\"7\",\"memo\":\"" MARK_BODY
	                        "\"}";
	stack_request_ex(&st, "POST", "/v1/credits/purchase?q=" MARK_QUERY, idem_busy, busy_body,
	                 strlen(busy_body), &r);
	CHECK(r.status >= 500, "with the write lock held: %ld", r.status);
	http_result_free(&r);
	sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(lock);

	/* Two attestations with real quotes: one that passes (its allowlist fetched with the token), one not. */
	char nonce[2][33];
	char *quote[2] = {NULL, NULL};
	struct test_agent *a = connect_agent("secret-app", "secret/app", "secret-agent");
	struct json_object *m = attest_keeping(a, NULL, nonce[0], &quote[0]);
	CHECK(msg_is(m, "status", "ok", "attested"), "got %s", msg_text(m, a));
	json_object_put(m);
	CHECK(fakehttp_count_header(&github, "authorization", "Bearer " GITHUB_TOKEN) >= 1,
	      "the token was not sent to the fake GitHub");
	struct test_agent *bad = connect_agent("secret-app", "secret/app", "secret-agent-bad");
	char wrong[ATTEST_REPORT_DATA_LEN * 2 + 1];
	memset(wrong, '1', sizeof(wrong) - 1);
	wrong[sizeof(wrong) - 1] = '\0';
	struct agent_attest_options broken = {.report_data_hex = wrong};
	m = attest_keeping(bad, &broken, nonce[1], &quote[1]);
	CHECK(msg_is(m, "status", "invalid", "report_data_mismatch"), "got %s", msg_text(m, bad));
	json_object_put(m);
	if (bad)
		agent_drop(bad);
	for (int i = 0; i < 2; i++) {
		secret_add(i ? "the nonce of a failed attestation" : "an attestation's nonce", nonce[i]);
		secret_add(i ? "the quote of a failed attestation" : "an attestation's quote", quote[i]);
		free(quote[i]);
	}
	if (!a || test_case_failed()) {
		if (a)
			agent_drop(a);
		return;
	}

	/* Proxied requests by every way in, with answers, an app's 500, a 504 and a 502. */
	const char *by_host[] = {"Host: secret-app.app.localhost", "X-Api-Key: " MARK_REQ_HEADER,
	                         "Authorization: Bearer " MARK_REQ_AUTH,
	                         "Cookie: sid=" MARK_COOKIE, NULL};
	char url[256];
	snprintf(url, sizeof(url), "%s/submit?token=%s", st.base_url, MARK_QUERY);
	CHECK_INT(proxied(a, "POST", url, by_host, MARK_REQ_BODY, 200), 200);
	const char *by_app[] = {"X-EE-App: secret-app", "X-Api-Key: " MARK_REQ_HEADER,
	                        "Authorization: Bearer " MARK_REQ_AUTH, NULL};
	snprintf(url, sizeof(url), "http://%s:%d/fail?token=%s", HOST, st.proxy_port, MARK_QUERY);
	CHECK_INT(proxied(a, "PUT", url, by_app, MARK_REQ_BODY, 500), 500);
	char envelope[1024];
	char b64[128];
	base64_encode((const unsigned char *)MARK_REQ_BODY, strlen(MARK_REQ_BODY), b64);
	snprintf(envelope, sizeof(envelope),
	         "{\"method\":\"POST\",\"path\":\"/env?token=%s\",\"headers\":{\"X-Api-Key\":\"%s\","
	         "\"Cookie\":\"sid=%s\"},\"body_b64\":\"%s\"}",
	         MARK_QUERY, MARK_REQ_HEADER, MARK_COOKIE, b64);
	const char *json_type[] = {"Content-Type: application/json", NULL};
	snprintf(url, sizeof(url), "%s/v1/proxy/secret-app", st.base_url);
	CHECK_INT(proxied(a, "POST", url, json_type, envelope, 201), 201);
	char bad_envelope[256];
	snprintf(bad_envelope, sizeof(bad_envelope),
	         "{\"method\":\"POST\",\"path\":\"/x\",\"headers\":{\"X-A\":\"%s\\r\\nX-B: b\"}}",
	         MARK_REQ_HEADER);
	http_do("POST", url, json_type, bad_envelope, strlen(bad_envelope), &r);
	CHECK_INT(r.status, 400);
	http_result_free(&r);
	/* 504: the agent holds the request past EE_PROXY_TIMEOUT_SEC=1. */
	snprintf(url, sizeof(url), "http://%s:%d/v1/proxy/secret-app", HOST, st.control_port);
	struct bg_request bg;
	bg_start(&bg, "POST", url, json_type, envelope);
	struct agent_request held;
	CHECK(agent_recv_request(a, &held, WAIT_MS) == 0, "%s", agent_last_reason(a));
	agent_request_free(&held);
	CHECK_INT(bg_finish(&bg, WAIT_MS), 504);
	/* 502: the agent drops with a POST in flight. */
	bg_start(&bg, "POST", url, json_type, envelope);
	CHECK(agent_recv_request(a, &held, WAIT_MS) == 0, "%s", agent_last_reason(a));
	agent_request_free(&held);
	agent_drop(a);
	CHECK_INT(bg_finish(&bg, WAIT_MS), 502);

	/* Every log complete: the programs stopped. */
	CHECK_INT(stack_stop_tunneld(&st), 0);
	stack_stop_pid(&st.caddy_pid);
	stack_stop_pid(&st.api_pid);

	size_t api_len, tunneld_len, caddy_len;
	char *api_log = read_log("ee-api.log", &api_len);
	char *tunneld_log = read_log("ee-tunneld.log", &tunneld_len);
	char *caddy_log = read_log("caddy.log", &caddy_len);

	test_case("ee-api's log holds no token, guess, Idempotency-Key, body or query string; its "
	          "503 line names method and path only");
	scan_log("ee-api.log", api_log, api_len);
	CHECK(strstr(api_log, "POST /v1/credits/purchase -> 503"), "the 503 was not logged");

	test_case("ee-tunneld's log holds no token, header value, body, nonce or 32 characters of a "
	          "quote, though it logged both attestations");
	scan_log("ee-tunneld.log", tunneld_log, tunneld_len);
	CHECK(strstr(tunneld_log, "agent secret-agent (") && strstr(tunneld_log, "attested for "
	                                                                            "secret-app"),
	      "the attestation was not logged");
	CHECK(strstr(tunneld_log, "attestation failed: report_data_mismatch"),
	      "the failed attestation was not logged");

	test_case("Caddy's log holds none of them either");
	scan_log("caddy.log", caddy_log, caddy_len);
	free(api_log);
	free(tunneld_log);
	free(caddy_log);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_case("start Caddy, ee-api and ee-tunneld, every one at debug level");
	/*
	 * Debug for all from the start: the last case reads every log.  A short
	 * busy timeout lets that case get a 503 from ee-api with the lock held.
	 */
	static const char *const env[] = {"EE_LOG_LEVEL=debug", "EE_DB_BUSY_TIMEOUT_MS=300", NULL};
	struct stack_options opt = {.env = env};
	char log[400];
	if (stack_start(&st, "limits", &opt) != 0)
		return test_finish();
	snprintf(log, sizeof(log), "%s/fakegithub.log", st.dir);
	CHECK(fakehttp_open(&github, log) == 0, "the fake GitHub cannot listen");
	int64_t t0 = time_monotonic_ms();
	test_max_agents();
	test_connect_rate();
	test_abrupt_drops();
	test_verifier_busy();
	test_stalled_reader();
	test_fragments();
	test_proxy_timeouts();
	test_no_secrets_in_logs();
	printf("# all cases: %lld ms\n", (long long)(time_monotonic_ms() - t0));
	fakehttp_close(&github);
	stack_stop(&st);
	return test_finish();
}
