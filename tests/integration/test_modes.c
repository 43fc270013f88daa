/*
 * test_modes.c - the three ways to run ee-api, each behind real Caddy:
 * its own FastCGI server (--listen on a unix socket and on TCP), under a
 * FastCGI manager (spawn-fcgi), with a socket handed over the systemd way
 * (LISTEN_FDS), and as CGI (covered in test_api.c).  Also: a worker killed
 * with SIGKILL is replaced; a database that cannot be opened answers 503
 * and recovers without a restart; a bad setting stops the program with a
 * message naming the variable; connections the FastCGI client keeps
 * (FCGI_KEEP_CONN, as nginx's fastcgi_keep_conn does) are served in turn;
 * a FastCGI peer that sends nothing, or not its whole request, holds up
 * nothing else and is dropped without an answer and without a change; a
 * kept connection left idle past the read limit is closed.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "client.h"
#include "stack.h"

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* A purchase and a balance read: the round trip every mode must serve. */
static void exercise(struct stack *st)
{
	struct http_result r;
	stack_request(st, "POST", "/v1/credits/purchase", TEST_ADMIN_TOKEN,
	              "{\"account_id\":\"mode-user\",\"amount_usd\":\"2.50\"}", &r);
	CHECK_INT(r.status, 200);
	CHECK_INT(http_json_int(&r, "balance_cents", -1), 250);
	http_result_free(&r);
	stack_request(st, "GET", "/v1/balances/mode-user", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 200);
	CHECK_INT(http_json_int(&r, "balance_cents", -1), 250);
	http_result_free(&r);
	stack_request(st, "GET", "/v1/balances/mode-user", NULL, NULL, &r);
	CHECK_INT(r.status, 401);
	http_result_free(&r);
	check_ledger(st->db_path);
}

static void run_mode(enum stack_api_mode mode, const char *name)
{
	struct stack st;
	test_case("%s: serves requests through Caddy", name);
	struct stack_options opt = {.api_mode = mode};
	if (stack_start(&st, name, &opt) != 0) {
		stack_stop(&st);
		return;
	}
	exercise(&st);
	test_case("%s: stops cleanly on SIGTERM", name);
	pid_t pid = st.api_pid;
	kill(pid, SIGTERM);
	int status = 0;
	bool exited = false;
	for (int i = 0; i < 200 && !exited; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			exited = true;
		else
			sleep_ms(25);
	}
	CHECK(exited, "ee-api did not stop within 5 s");
	CHECK(exited && WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	if (exited)
		st.api_pid = 0;
	stack_stop(&st);
}

/* The supervisor's children, read from /proc. */
static int children_of(pid_t parent, pid_t *out, int max)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)parent, (int)parent);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int n = 0, pid;
	while (n < max && fscanf(f, "%d", &pid) == 1)
		out[n++] = pid;
	fclose(f);
	return n;
}

static void test_worker_replaced(void)
{
	struct stack st;
	test_case("a worker killed with SIGKILL is replaced and service continues");
	struct stack_options opt = {.workers = 2};
	if (stack_start(&st, "respawn", &opt) != 0) {
		stack_stop(&st);
		return;
	}
	pid_t kids[8];
	int n = children_of(st.api_pid, kids, 8);
	CHECK_INT(n, 2);
	if (n > 0)
		kill(kids[0], SIGKILL);
	sleep_ms(300);
	for (int i = 0; i < 20; i++) {
		struct http_result r;
		stack_request(&st, "GET", "/health", NULL, NULL, &r);
		CHECK_INT(r.status, 200);
		http_result_free(&r);
	}
	pid_t after[8];
	int m = 0;
	for (int i = 0; i < 100; i++) {
		m = children_of(st.api_pid, after, 8);
		if (m == 2)
			break;
		sleep_ms(50);
	}
	CHECK_INT(m, 2);
	for (int i = 0; i < m; i++)
		CHECK(after[i] != kids[0], "the killed worker is still listed");
	exercise(&st);
	stack_stop(&st);
}

static void test_database_recovers(void)
{
	struct stack st;
	test_case("a database that cannot be opened answers 503 and recovers without a restart");
	char dir[256], db_env[400];
	CHECK(stack_make_dir(dir, sizeof(dir), "dbdir") == 0);
	/* Two missing levels: ee-api creates only the last one, so opening fails. */
	snprintf(db_env, sizeof(db_env), "EE_DB_PATH=%s/missing/data/control-plane.db", dir);
	const char *env[] = {db_env, NULL};
	/* ee-tunneld waits for its database before it listens; this test is about ee-api. */
	struct stack_options opt = {.env = env, .no_tunneld = true};
	if (stack_start(&st, "dbrecover", &opt) != 0) {
		stack_stop(&st);
		return;
	}
	struct http_result r;
	stack_request(&st, "GET", "/v1/balances/someone", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 503);
	CHECK_STR(http_reason(&r), "database_unavailable");
	char retry[16];
	CHECK(http_header(&r, "Retry-After", retry, sizeof(retry)));
	http_result_free(&r);

	char missing[320];
	snprintf(missing, sizeof(missing), "%s/missing", dir);
	CHECK(mkdir(missing, 0700) == 0);
	stack_request(&st, "POST", "/v1/credits/purchase", TEST_ADMIN_TOKEN,
	              "{\"account_id\":\"late\",\"amount_usd\":\"1\"}", &r);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
	stack_stop(&st);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
}

/* ---- a FastCGI client that keeps its connections ---- */

/* One record: the 8-byte header (version 1, type, request id 1) and content. */
static size_t fcgi_record(unsigned char *out, int type, const void *content, size_t len)
{
	out[0] = 1;
	out[1] = (unsigned char)type;
	out[2] = 0;
	out[3] = 1;
	out[4] = (unsigned char)(len >> 8);
	out[5] = (unsigned char)len;
	out[6] = 0;
	out[7] = 0;
	memcpy(out + 8, content, len);
	return 8 + len;
}

static size_t fcgi_param(unsigned char *out, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);
	out[0] = (unsigned char)n;
	out[1] = (unsigned char)v;
	memcpy(out + 2, name, n);
	memcpy(out + 2 + n, value, v);
	return 2 + n + v;
}

/* Sends GET /health with FCGI_KEEP_CONN; 0 once its END_REQUEST came with a 200 before it. */
static int fcgi_kept_request(int fd)
{
	unsigned char msg[1024], params[512];
	static const unsigned char begin[8] = {0, 1, 1}; /* role responder, flags keep-conn */
	size_t p = 0;
	p += fcgi_param(params + p, "REQUEST_METHOD", "GET");
	p += fcgi_param(params + p, "REQUEST_URI", "/health");
	p += fcgi_param(params + p, "SCRIPT_NAME", "");
	p += fcgi_param(params + p, "REMOTE_ADDR", "127.0.0.1");
	size_t n = fcgi_record(msg, 1, begin, sizeof(begin));
	n += fcgi_record(msg + n, 4, params, p);
	n += fcgi_record(msg + n, 4, "", 0);
	n += fcgi_record(msg + n, 5, "", 0);
	if (test_write_all(fd, msg, n) != 0)
		return -1;
	char got[4096];
	size_t have = 0;
	bool ok = false;
	for (;;) {
		/* Records until END_REQUEST (type 3); the answer is in STDOUT (type 6). */
		while (have >= 8) {
			size_t clen = (size_t)got[4] << 8 | (unsigned char)got[5];
			size_t total = 8 + clen + (unsigned char)got[6];
			if (have < total)
				break;
			if (got[1] == 6 && clen >= 11 && memcmp(got + 8, "Status: 200", 11) == 0)
				ok = true;
			if (got[1] == 3)
				return ok ? 0 : -1;
			memmove(got, got + total, have - total);
			have -= total;
		}
		struct pollfd pfd = {fd, POLLIN, 0};
		if (poll(&pfd, 1, 5000) != 1)
			return -1; /* no answer in 5 s */
		ssize_t r = read(fd, got + have, sizeof(got) - have);
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
}

#define KEPT_CONNECTIONS 4
#define KEPT_ROUNDS 50

static void test_kept_connections(void)
{
	struct stack st;
	test_case("FastCGI connections kept by the client (FCGI_KEEP_CONN): %d of them, %d requests "
	          "each in turn, all answered",
	          KEPT_CONNECTIONS, KEPT_ROUNDS);
	struct stack_options opt = {.api_mode = STACK_API_LISTEN_UNIX, .workers = 1};
	if (stack_start(&st, "kept", &opt) != 0) {
		stack_stop(&st);
		return;
	}
	int fds[KEPT_CONNECTIONS];
	for (int i = 0; i < KEPT_CONNECTIONS; i++) {
		struct sockaddr_un addr = {.sun_family = AF_UNIX};
		size_t len = strlen(st.socket_path);
		CHECK(len < sizeof(addr.sun_path), "socket path too long");
		memcpy(addr.sun_path, st.socket_path, len < sizeof(addr.sun_path) ? len : 0);
		fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(fds[i] >= 0 && connect(fds[i], (struct sockaddr *)&addr, sizeof(addr)) == 0,
		      "connect %s", st.socket_path);
	}
	int answered = 0;
	/* Round robin: each connection's next request only after the others' answers. */
	for (int round = 0; round < KEPT_ROUNDS && !test_case_failed(); round++) {
		for (int i = 0; i < KEPT_CONNECTIONS; i++) {
			if (fcgi_kept_request(fds[i]) != 0) {
				test_fail(__FILE__, __LINE__, "connection %d, request %d: no answer", i,
				          round + 1);
				break;
			}
			answered++;
		}
	}
	CHECK_INT(answered, KEPT_CONNECTIONS * KEPT_ROUNDS);
	for (int i = 0; i < KEPT_CONNECTIONS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	stack_stop(&st);
}

/* ---- peers that send nothing, or part of a request ---- */

static int connect_unix(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if (len >= sizeof(addr.sun_path))
		return -1;
	memcpy(addr.sun_path, path, len);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Whether the peer has closed fd (end of input), waiting up to ms. */
static bool closed_within(int fd, int ms)
{
	struct pollfd pfd = {fd, POLLIN, 0};
	if (poll(&pfd, 1, ms) != 1)
		return false;
	char scrap[256];
	return read(fd, scrap, sizeof(scrap)) <= 0;
}

/* What came back on fd within ms: an answer, or none and then its close. */
enum outcome { ANSWERED, CLOSED_UNANSWERED, STILL_OPEN };

static enum outcome outcome_of(int fd, int ms)
{
	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		if (poll(&pfd, 1, ms) != 1)
			return STILL_OPEN;
		char scrap[256];
		ssize_t n = read(fd, scrap, sizeof(scrap));
		if (n <= 0)
			return CLOSED_UNANSWERED;
		/* Empty STDOUT and END_REQUEST records are not an answer; a status is. */
		for (ssize_t i = 0; i + 7 <= n; i++)
			if (memcmp(scrap + i, "Status:", 7) == 0)
				return ANSWERED;
	}
}

/* A transfer whose STDIN carries `sent` of the body's bytes (CONTENT_LENGTH is the whole), then, if `end`, the end of STDIN. */
static int send_partial_transfer(int fd, size_t sent, bool end)
{
	static const char body[] = "{\"from_account\":\"acct-a\",\"to_account\":\"acct-b\","
	                           "\"amount_usd\":\"1.00\"}";
	char length[16];
	snprintf(length, sizeof(length), "%zu", strlen(body));
	unsigned char msg[2048], params[1024];
	static const unsigned char begin[8] = {0, 1, 0};
	size_t p = 0;
	p += fcgi_param(params + p, "REQUEST_METHOD", "POST");
	p += fcgi_param(params + p, "REQUEST_URI", "/v1/credits/transfer");
	p += fcgi_param(params + p, "SCRIPT_NAME", "");
	p += fcgi_param(params + p, "REMOTE_ADDR", "127.0.0.1");
	p += fcgi_param(params + p, "CONTENT_TYPE", "application/json");
	p += fcgi_param(params + p, "CONTENT_LENGTH", length);
	p += fcgi_param(params + p, "HTTP_AUTHORIZATION", "Bearer " TEST_ADMIN_TOKEN);
	size_t n = fcgi_record(msg, 1, begin, sizeof(begin));
	n += fcgi_record(msg + n, 4, params, p);
	n += fcgi_record(msg + n, 4, "", 0);
	n += fcgi_record(msg + n, 5, body, sent);
	if (end)
		n += fcgi_record(msg + n, 5, "", 0);
	return test_write_all(fd, msg, n);
}

#define SILENT_PEERS 3

static void test_slow_peers(void)
{
	struct stack st;
	test_case("FastCGI peers that send nothing do not hold up other requests, and are dropped");
	/* A 3 s limit for the whole request: 2 s for its head. */
	static const char *const env[] = {"EE_REQUEST_READ_TIMEOUT_SEC=3", NULL};
	struct stack_options opt = {.api_mode = STACK_API_LISTEN_UNIX, .workers = 1, .env = env};
	if (stack_start(&st, "slow", &opt) != 0) {
		stack_stop(&st);
		return;
	}
	int silent[SILENT_PEERS];
	for (int i = 0; i < SILENT_PEERS; i++) {
		silent[i] = connect_unix(st.socket_path);
		CHECK(silent[i] >= 0, "connect %s", st.socket_path);
	}
	/* One worker: before, its accept waited on the first silent peer (2 s). */
	int fd = connect_unix(st.socket_path);
	CHECK(fd >= 0 && fcgi_kept_request(fd) == 0, "GET /health beside silent peers: no answer");
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < SILENT_PEERS; i++) {
		struct pollfd pfd = {silent[i], POLLIN, 0};
		CHECK(silent[i] < 0 || poll(&pfd, 1, 0) == 0,
		      "silent peer %d was closed before the others were served", i);
	}
	for (int i = 0; i < SILENT_PEERS; i++) {
		if (silent[i] < 0)
			continue;
		CHECK(closed_within(silent[i], 15000), "silent peer %d still open after 15 s", i);
		close(silent[i]);
	}

	test_case("a request whose body stops coming is dropped unanswered, the database unchanged");
	char before[65], after[65];
	CHECK_INT(db_digest(st.db_path, before), 0);
	fd = connect_unix(st.socket_path);
	CHECK(fd >= 0 && send_partial_transfer(fd, 10, false) == 0, "send a partial transfer");
	if (fd >= 0) {
		enum outcome o = outcome_of(fd, 15000);
		CHECK(o == CLOSED_UNANSWERED, "a request with half a body was %s",
		      o == ANSWERED ? "answered" : "still open after 15 s");
		close(fd);
	}

	test_case("a request whose body ends before its CONTENT_LENGTH is dropped unanswered");
	fd = connect_unix(st.socket_path);
	CHECK(fd >= 0 && send_partial_transfer(fd, 20, true) == 0, "send a short transfer");
	if (fd >= 0) {
		enum outcome o = outcome_of(fd, 15000);
		CHECK(o == CLOSED_UNANSWERED, "a request with a short body was %s",
		      o == ANSWERED ? "answered" : "still open after 15 s");
		close(fd);
	}
	CHECK_INT(db_digest(st.db_path, after), 0);
	CHECK_STR(after, before);

	test_case("after the slow peers, requests are served as before");
	fd = connect_unix(st.socket_path);
	CHECK(fd >= 0 && fcgi_kept_request(fd) == 0, "GET /health after the slow peers");
	if (fd >= 0)
		close(fd);
	stack_stop(&st);
}

/* A connection to ee-api itself: its unix socket, or its loopback TCP port. */
static int connect_api(const struct stack *st)
{
	if (strncmp(st->upstream, "unix/", 5) == 0)
		return connect_unix(st->socket_path);
	const char *colon = strrchr(st->upstream, ':');
	struct sockaddr_in addr = {.sin_family = AF_INET};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.sin_port = htons((uint16_t)(colon ? atoi(colon + 1) : 0));
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void test_kept_idle(enum stack_api_mode mode, const char *name)
{
	struct stack st;
	test_case("%s: a kept connection idle past EE_REQUEST_READ_TIMEOUT_SEC is closed, and "
	          "one that comes back in time is served", name);
	static const char *const env[] = {"EE_REQUEST_READ_TIMEOUT_SEC=2", NULL};
	struct stack_options opt = {.api_mode = mode, .workers = 1, .env = env};
	if (stack_start(&st, "idle", &opt) != 0) {
		stack_stop(&st);
		return;
	}
	int idle = connect_api(&st), back = connect_api(&st);
	CHECK(idle >= 0 && back >= 0, "connect to %s", st.upstream);
	CHECK(idle >= 0 && fcgi_kept_request(idle) == 0, "first request on the idle connection");
	CHECK(back >= 0 && fcgi_kept_request(back) == 0, "first request on the other connection");
	/* Within the limit: the connection stays, and its next request is served. */
	struct timespec second = {1, 0};
	nanosleep(&second, NULL);
	CHECK(back >= 0 && fcgi_kept_request(back) == 0, "a request after 1 s of idling");
	if (idle >= 0) {
		CHECK(closed_within(idle, 15000), "a kept connection idle for 15 s is still open");
		close(idle);
	}
	/* The thread that held it serves others, in turn as before. */
	int fd = connect_api(&st);
	CHECK(fd >= 0 && fcgi_kept_request(fd) == 0, "a new connection after the idle one closed");
	if (fd >= 0)
		close(fd);
	if (back >= 0)
		close(back);
	stack_stop(&st);
}

static void test_bad_setting(void)
{
	test_case("an invalid setting stops ee-api at start and names the variable");
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
	         "EE_CONTROL_PORT=notaport %s/ee-api --migrate 2>&1 | grep -q EE_CONTROL_PORT",
	         stack_bin_dir());
	CHECK(system(cmd) == 0);
	snprintf(cmd, sizeof(cmd), "EE_HEALTH_TIMEOUT_SEC=-5 %s/ee-api --migrate >/dev/null 2>&1",
	         stack_bin_dir());
	int rc = system(cmd);
	CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "exit status %d", rc);

	test_case("EE_REQUEST_READ_TIMEOUT_SEC outside 1..3600 is refused at start, naming it");
	static const char *const bad_timeouts[] = {"0", "3601", "-1", "30s"};
	for (size_t i = 0; i < sizeof(bad_timeouts) / sizeof(bad_timeouts[0]); i++) {
		snprintf(cmd, sizeof(cmd),
		         "EE_REQUEST_READ_TIMEOUT_SEC='%s' %s/ee-api --migrate 2>&1 | "
		         "grep -q EE_REQUEST_READ_TIMEOUT_SEC",
		         bad_timeouts[i], stack_bin_dir());
		CHECK(system(cmd) == 0, "EE_REQUEST_READ_TIMEOUT_SEC='%s' accepted", bad_timeouts[i]);
	}

	test_case("--threads outside 1..64 is refused at start with a message");
	static const char *const bad[] = {"0", "65", "-1", "8x", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(cmd, sizeof(cmd),
		         "%s/ee-api --listen /nonexistent/x.sock --threads '%s' 2>&1 | grep -q -- --threads",
		         stack_bin_dir(), bad[i]);
		CHECK(system(cmd) == 0, "--threads '%s' accepted", bad[i]);
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	run_mode(STACK_API_LISTEN_UNIX, "listen-unix");
	run_mode(STACK_API_LISTEN_TCP, "listen-tcp");
	run_mode(STACK_API_SPAWN_FCGI, "spawn-fcgi");
	run_mode(STACK_API_SOCKET_ACTIVATION, "socket-activation");
	test_worker_replaced();
	test_database_recovers();
	test_kept_connections();
	test_slow_peers();
	test_kept_idle(STACK_API_LISTEN_UNIX, "unix socket");
	test_kept_idle(STACK_API_LISTEN_TCP, "TCP");
	test_bad_setting();
	return test_finish();
}
