/*
 * test_agent.c - the whole path end to end: Caddy, ee-api, ee-tunneld,
 * ee-agent and a backend (echohttp.h), all real processes on 127.0.0.1.
 *
 * The agent attests on the development network with the dev quote source
 * (a kit of the stack's test hierarchy); /v1/resolve/<app> says allowed;
 * requests to <app>.app.localhost through Caddy reach the backend and come
 * back byte for byte (every method, headers, binary, empty and large
 * bodies up to the limit, chunked answers, Set-Cookie lines, header values
 * that are not UTF-8 (ISO-8859-1) both ways, redirects not
 * followed, encodings not decoded, many at once answered out of order);
 * the backend down is a clean 502 and slow a 504; the agent killed and
 * restarted serves again; ee-tunneld restarted finds the agent back within
 * the backoff bound; an agent started before the control plane joins when
 * it comes; wss:// through a TLS Caddy with the CA pinned, and refused with
 * the wrong CA; heartbeats keep health while they come and a failing
 * health probe reports fail; the readiness listener's states; refusals
 * (app_name_taken) retried; configuration errors exit 2; SIGTERM closes
 * cleanly; --measurements prints the allowlist entry.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentproc.h"
#include "check.h"
#include "client.h"
#include "echohttp.h"
#include "stack.h"
#include "testagent.h"
#include "timeutil.h"
#include "util.h"

#define REPO "acme/shop"
#define TAG "v1.0.0"
#define MAX_BODY (8 * 1024 * 1024) /* ee-tunneld's EE_PROXY_MAX_BODY_BYTES default */
#define READY_MS 15000
#define RECONNECT_MAX_SEC 2
#define BACKEND_TIMEOUT_SEC 2

static struct stack st;
static struct echohttp backend;
static char kit_dir[400];

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* The environment of an agent of app on the stack; extra overrides (NULL-terminated). */
static const char **agent_env(const char *app, const char *agent_id, const char *control_ws,
                              const char *const *extra)
{
	static char vars[16][512];
	static const char *env[40];
	int n = 0, v = 0;
	char ws[256];
	if (!control_ws) {
		snprintf(ws, sizeof(ws), "ws://127.0.0.1:%d/v1/tunnel", st.port);
		control_ws = ws;
	}
	snprintf(vars[v], sizeof(vars[v]), "EE_CONTROL_WS=%s", control_ws);
	env[n++] = vars[v++];
	snprintf(vars[v], sizeof(vars[v]), "EE_APP_NAME=%s", app);
	env[n++] = vars[v++];
	snprintf(vars[v], sizeof(vars[v]), "EE_AGENT_ID=%s", agent_id);
	env[n++] = vars[v++];
	snprintf(vars[v], sizeof(vars[v]), "EE_BACKEND_URL=%s", backend.base_url);
	env[n++] = vars[v++];
	snprintf(vars[v], sizeof(vars[v]), "EE_DEV_QUOTE_DIR=%s", kit_dir);
	env[n++] = vars[v++];
	snprintf(vars[v], sizeof(vars[v]), "EE_BACKEND_TIMEOUT_SEC=%d", BACKEND_TIMEOUT_SEC);
	env[n++] = vars[v++];
	snprintf(vars[v], sizeof(vars[v]), "EE_RECONNECT_MAX_SEC=%d", RECONNECT_MAX_SEC);
	env[n++] = vars[v++];
	env[n++] = "EE_REPO=" REPO;
	env[n++] = "EE_RELEASE_TAG=" TAG;
	env[n++] = "EE_NETWORK=sandbox-1";
	env[n++] = "EE_QUOTE_SOURCE=dev";
	env[n++] = "EE_RECONNECT_DELAY_SEC=0.2";
	env[n++] = "EE_HEALTH_INTERVAL_SEC=1";
	env[n++] = "EE_LOG_LEVEL=info";
	for (int i = 0; extra && extra[i] && n < 39; i++)
		env[n++] = extra[i];
	env[n] = NULL;
	return env;
}

static bool start_agent(struct agent_proc *p, const char *app, const char *agent_id,
                        const char *control_ws, const char *const *extra)
{
	char log[400];
	snprintf(log, sizeof(log), "%s/ee-agent-%s.log", st.dir, agent_id);
	return agentproc_start(p, stack_bin_dir(), log, agent_env(app, agent_id, control_ws, extra)) ==
	       0;
}

/* Sends a request for app through Caddy; extra headers NULL-terminated. */
static int app_request(const char *app, const char *method, const char *path,
                       const char *const *extra, const void *body, size_t body_len,
                       struct http_result *out)
{
	const char *headers[24];
	char host[128];
	snprintf(host, sizeof(host), "Host: %s.app.localhost", app);
	int n = 0;
	headers[n++] = host;
	for (int i = 0; extra && extra[i] && n < 23; i++)
		headers[n++] = extra[i];
	headers[n] = NULL;
	char url[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", st.port, path);
	return http_do(method, url, headers, body, body_len, out);
}

static void header_is(const struct http_result *r, const char *name, const char *want)
{
	char got[512] = "";
	bool have = http_header(r, name, got, sizeof(got));
	if (!have || strcmp(got, want) != 0)
		test_fail(__FILE__, __LINE__, "header %s = \"%s\", want \"%s\"", name,
		          have ? got : "(absent)", want);
}

static void check_log_clean(const char *path)
{
	check_no_sanitizer_report(path);
}

/* --- the cases --- */

static void test_attested(struct agent_proc *a)
{
	test_case("the agent attests on sandbox-1 with the dev quote source");
	CHECK(agentproc_wait_ready(a, READY_MS), "(see %s)", a->log_path);
	struct http_result r;
	CHECK(agentproc_get(a, "/ready", &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(http_json_string(&r, "state"), "attested");
	CHECK(http_json_bool(&r, "connected", false));
	CHECK_STR(http_json_string(&r, "quote_source"), "dev");
	CHECK_STR(http_json_string(&r, "agent_id"), "shop-1");
	CHECK_INT(http_json_int(&r, "connects", 0), 1);
	http_result_free(&r);

	test_case("/v1/resolve/shop answers 200 allowed through Caddy");
	CHECK(stack_request(&st, "GET", "/v1/resolve/shop", NULL, NULL, &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK(http_json_bool(&r, "allowed", false));
	CHECK_STR(http_json_string(&r, "attestation_status"), "valid");
	CHECK_STR(http_json_string(&r, "health_status"), "pass");
	CHECK_STR(http_json_string(&r, "agent_id"), "shop-1");
	CHECK(http_json_bool(&r, "ws_connected", false));
	http_result_free(&r);
}

static void test_methods(void)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		test_case("%s /echo/m?x=1&y=%%20 reaches the backend as sent", methods[i]);
		struct http_result r;
		CHECK(app_request("shop", methods[i], "/echo/m?x=1&y=%20", NULL, NULL, 0, &r) == 0);
		CHECK_INT(r.status, 200);
		header_is(&r, "X-Echo-Method", methods[i]);
		header_is(&r, "X-Echo-Target", "/echo/m?x=1&y=%20");
		header_is(&r, "X-Echo-Body-Length", "0");
		CHECK_INT(r.body_len, 0);
		http_result_free(&r);
	}

	test_case("HEAD answers the headers GET would, with no body");
	struct http_result r;
	CHECK(app_request("shop", "HEAD", "/bytes/1000", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 200);
	header_is(&r, "Content-Length", "1000");
	CHECK_INT(r.body_len, 0);
	http_result_free(&r);
}

static void test_headers(void)
{
	test_case("request headers reach the backend; hop-by-hop ones and Host do not");
	const char *extra[] = {"X-Test-One: hello world", "X-Test-Two: a, b",
	                       "Accept: text/x-test", "Cookie: k=v", "Keep-Alive: timeout=5",
	                       "TE: trailers", NULL};
	struct http_result r;
	CHECK(app_request("shop", "GET", "/echo/h", extra, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 200);
	header_is(&r, "X-Echoed-One", "hello world");
	header_is(&r, "X-Echoed-Two", "a, b");
	char names[1024] = "", host[128] = "";
	http_header(&r, "X-Echo-Header-Names", names, sizeof(names));
	CHECK(strstr(names, "x-test-one") && strstr(names, "cookie") && strstr(names, "accept"),
	      "(%s)", names);
	CHECK(!strstr(names, "keep-alive") && !strstr(names, "te,") && !strstr(names, "expect") &&
	              !strstr(names, "x-ee-app"),
	      "(%s)", names);
	/* The backend sees its own address as Host, as with any reverse proxy to a fixed URL. */
	http_header(&r, "X-Echo-Host", host, sizeof(host));
	char want[64];
	snprintf(want, sizeof(want), "127.0.0.1:%d", backend.port);
	CHECK_STR(host, want);
	http_result_free(&r);

	/* ee-tunneld escapes what is not UTF-8 (\udcXX); the agent writes the bytes again. */
	test_case("a request header in ISO-8859-1 reaches the backend byte-exact, 200, not the timeout's 504");
	const char *latin1[] = {"X-Test-Latin: caf\xe9 \xff", "X-Test-Mixed: \xc3\xa9\xe9\xed\xa0\x80",
	                        "X-Test-Utf8: caf\xc3\xa9", NULL};
	CHECK(app_request("shop", "GET", "/echo/latin1", latin1, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 200);
	header_is(&r, "X-Echoed-Latin", "caf\xe9 \xff");
	header_is(&r, "X-Echoed-Mixed", "\xc3\xa9\xe9\xed\xa0\x80");
	header_is(&r, "X-Echoed-Utf8", "caf\xc3\xa9");
	http_result_free(&r);
}

static void test_bodies(void)
{
	test_case("a binary body of every byte value comes back byte for byte");
	unsigned char all[512];
	for (int i = 0; i < 512; i++)
		all[i] = (unsigned char)(i & 0xff);
	const char *ct[] = {"Content-Type: application/x-binary", NULL};
	struct http_result r;
	CHECK(app_request("shop", "POST", "/echo/bin", ct, all, sizeof(all), &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.body_len, sizeof(all));
	CHECK(r.body && memcmp(r.body, all, sizeof(all)) == 0);
	header_is(&r, "Content-Type", "application/x-binary");
	http_result_free(&r);

	test_case("an empty POST body arrives empty, with Content-Length 0");
	CHECK(app_request("shop", "POST", "/echo/empty", NULL, "", 0, &r) == 0);
	CHECK_INT(r.status, 200);
	header_is(&r, "X-Echo-Body-Length", "0");
	CHECK_INT(r.body_len, 0);
	http_result_free(&r);

	test_case("a request body of exactly the limit (%d bytes) goes there and back", MAX_BODY);
	unsigned char *big = malloc(MAX_BODY + 1);
	CHECK(big != NULL);
	if (!big)
		return;
	for (size_t i = 0; i < MAX_BODY + 1; i++)
		big[i] = (unsigned char)((i * 131 + 7) >> 3);
	char digest[65];
	util_sha256_hex(big, MAX_BODY, digest);
	CHECK(app_request("shop", "PUT", "/echo/big", NULL, big, MAX_BODY, &r) == 0);
	CHECK_INT(r.status, 200);
	header_is(&r, "X-Echo-Body-Sha256", digest);
	CHECK_INT(r.body_len, MAX_BODY);
	CHECK(r.body && memcmp(r.body, big, MAX_BODY) == 0);
	http_result_free(&r);

	test_case("one byte over the limit is 413 body_too_large");
	CHECK(app_request("shop", "PUT", "/echo/big", NULL, big, MAX_BODY + 1, &r) == 0);
	CHECK_INT(r.status, 413);
	http_result_free(&r);
	free(big);

	test_case("a response body of 8 MiB comes back byte for byte");
	unsigned char *want = malloc(MAX_BODY);
	CHECK(want != NULL);
	if (!want)
		return;
	echohttp_pattern(want, MAX_BODY);
	CHECK(app_request("shop", "GET", "/bytes/8388608", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.body_len, MAX_BODY);
	CHECK(r.body && r.body_len == MAX_BODY && memcmp(r.body, want, MAX_BODY) == 0);
	http_result_free(&r);

	test_case("a chunked backend answer arrives whole, with a length");
	CHECK(app_request("shop", "GET", "/chunked/100000", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 200);
	header_is(&r, "Content-Length", "100000");
	CHECK(r.body && r.body_len == 100000 && memcmp(r.body, want, 100000) == 0);
	http_result_free(&r);
	free(want);
}

static void test_responses(void)
{
	struct http_result r;
	test_case("two Set-Cookie lines stay two lines");
	CHECK(app_request("shop", "GET", "/cookies", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK(r.headers && strstr(r.headers, "Set-Cookie: a=1; Path=/\r\n") &&
	      strstr(r.headers, "Set-Cookie: b=2; HttpOnly\r\n"));
	http_result_free(&r);

	test_case("a backend's ISO-8859-1 header value reaches the client byte-exact, 200, not the timeout's 504");
	CHECK(app_request("shop", "GET", "/latin1", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 200);
	header_is(&r, "Content-Disposition", "attachment; filename=\"caf\xe9.txt\"");
	header_is(&r, "X-Mixed", "\xc3\xa9\xe9\xff \xed\xa0\x80 \xf0\x9f\x98\x80");
	CHECK(r.body && r.body_len == 6 && memcmp(r.body, "latin1", 6) == 0);
	http_result_free(&r);

	test_case("an encoded body passes undecoded, with its Content-Encoding");
	CHECK(app_request("shop", "GET", "/gzip", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 200);
	header_is(&r, "Content-Encoding", "gzip");
	CHECK_INT(r.body_len, 12);
	CHECK(r.body && (unsigned char)r.body[0] == 0x1f && (unsigned char)r.body[1] == 0x8b);
	http_result_free(&r);

	test_case("a redirect goes to the client, not followed");
	CHECK(app_request("shop", "GET", "/redirect", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 302);
	header_is(&r, "Location", "/echo/redirected");
	http_result_free(&r);

	test_case("204 has no body; 404 and 503 from the backend pass as they are");
	CHECK(app_request("shop", "GET", "/status/204", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 204);
	CHECK_INT(r.body_len, 0);
	http_result_free(&r);
	CHECK(app_request("shop", "GET", "/nothing-here", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 404);
	CHECK(r.body && r.body_len == 9 && memcmp(r.body, "not found", 9) == 0);
	http_result_free(&r);
	CHECK(app_request("shop", "GET", "/status/503", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 503);
	http_result_free(&r);
}

/* Many requests at once from children; a slow one does not hold the fast ones. */
static void test_concurrent(void)
{
	test_case("40 requests at once, slow and fast mixed, each gets its own answer");
	enum { N = 40 };
	pid_t pids[N];
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			char path[64], hdr[64];
			snprintf(path, sizeof(path), i % 4 == 0 ? "/slow/800?i=%d" : "/echo/c%d", i);
			snprintf(hdr, sizeof(hdr), "X-Test-Index: %d", i);
			const char *extra[] = {hdr, NULL};
			char body[32];
			int len = snprintf(body, sizeof(body), "body-%d", i);
			struct http_result r;
			int ok = app_request("shop", "POST", path, extra, body, (size_t)len, &r) == 0 &&
			         r.status == 200;
			if (ok && i % 4 != 0) {
				char echoed[32] = "";
				http_header(&r, "X-Echoed-Index", echoed, sizeof(echoed));
				ok = atoi(echoed) == i && r.body_len == (size_t)len &&
				     memcmp(r.body, body, (size_t)len) == 0;
			} else if (ok) {
				ok = r.body_len == 4 && memcmp(r.body, "slow", 4) == 0;
			}
			http_result_free(&r);
			_exit(ok ? 0 : 1);
		}
	}
	int good = 0;
	for (int i = 0; i < N; i++) {
		int status;
		if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i] && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0)
			good++;
	}
	CHECK_INT(good, N);
}

static void test_backend_faults(struct agent_proc *a)
{
	struct http_result r;
	test_case("backend slower than EE_BACKEND_TIMEOUT_SEC: 504 backend_timeout from the agent");
	CHECK(app_request("shop", "GET", "/slow/4000", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 504);
	CHECK_STR(http_reason(&r), "backend_timeout");
	http_result_free(&r);

	test_case("backend down: a clean 502 backend_unavailable; the agent stays attested");
	echohttp_stop(&backend);
	CHECK(app_request("shop", "GET", "/echo/down", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 502);
	CHECK_STR(http_reason(&r), "backend_unavailable");
	header_is(&r, "Content-Type", "application/json");
	http_result_free(&r);
	CHECK(agentproc_get(a, "/ready", &r) == 0);
	CHECK_INT(r.status, 200);
	http_result_free(&r);

	test_case("backend back on its port: served again");
	CHECK(echohttp_start(&backend) == 0);
	CHECK(app_request("shop", "GET", "/echo/up", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 200);
	header_is(&r, "X-Echo-Target", "/echo/up");
	http_result_free(&r);
}

static void test_agent_restart(struct agent_proc *a)
{
	test_case("the agent killed with SIGKILL: resolve says not allowed");
	agentproc_kill(a);
	struct http_result r;
	bool gone = false;
	for (int i = 0; i < 200 && !gone; i++) {
		CHECK(stack_request(&st, "GET", "/v1/resolve/shop", NULL, NULL, &r) == 0);
		gone = r.status == 403;
		http_result_free(&r);
		if (!gone)
			sleep_ms(25);
	}
	CHECK(gone);

	test_case("the agent started again reconnects, attests and serves");
	CHECK(start_agent(a, "shop", "shop-1", NULL, NULL));
	CHECK(agentproc_wait_ready(a, READY_MS), "(see %s)", a->log_path);
	CHECK(app_request("shop", "GET", "/echo/again", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
	CHECK(stack_request(&st, "GET", "/v1/resolve/shop", NULL, NULL, &r) == 0);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
}

static void test_control_plane_restart(struct agent_proc *a)
{
	test_case("ee-tunneld stopped: the agent notices and waits");
	CHECK_INT(stack_stop_tunneld(&st), 0);
	CHECK(agentproc_wait_state(a, "disconnected", 5000));
	struct http_result r;
	CHECK(agentproc_get(a, "/ready", &r) == 0);
	CHECK_INT(r.status, 503);
	CHECK(!http_json_bool(&r, "ready", true));
	http_result_free(&r);
	sleep_ms(3000); /* several failed attempts: the backoff climbs to its cap */

	test_case("ee-tunneld started again: the agent is back within the backoff bound (%d s)",
	          RECONNECT_MAX_SEC);
	CHECK(stack_start_tunneld(&st) == 0, "(see %s/ee-tunneld.log)", st.dir);
	int64_t started = time_monotonic_ms();
	/* The bound, plus the time an attestation takes on a loaded machine. */
	bool back = agentproc_wait_ready(a, RECONNECT_MAX_SEC * 1000 + 5000);
	int64_t took = time_monotonic_ms() - started;
	CHECK(back, "(see %s)", a->log_path);
	printf("  agent back %lld ms after ee-tunneld came up\n", (long long)took);
	CHECK(app_request("shop", "GET", "/echo/after-restart", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
}

static void test_early_agent(void)
{
	test_case("an agent started while the control plane is down waits, then joins");
	CHECK_INT(stack_stop_tunneld(&st), 0);
	struct agent_proc early;
	CHECK(start_agent(&early, "early", "early-1", NULL, NULL));
	CHECK(agentproc_wait_state(&early, "disconnected", 5000));
	struct http_result r;
	CHECK(agentproc_get(&early, "/ready", &r) == 0);
	CHECK_INT(r.status, 503);
	const char *why = http_json_string(&r, "last_reason");
	CHECK(why && strncmp(why, "connect_failed", 14) == 0, "(%s)", why ? why : "null");
	http_result_free(&r);
	CHECK(stack_start_tunneld(&st) == 0);
	CHECK(agentproc_wait_ready(&early, RECONNECT_MAX_SEC * 1000 + 5000), "(see %s)",
	      early.log_path);
	CHECK(app_request("early", "GET", "/echo/early", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
	CHECK_INT(agentproc_stop(&early), 0);
	check_log_clean(early.log_path);
}

/* --- wss:// through a TLS Caddy --- */

static pid_t tls_caddy_pid;

/* Caddy with its internal CA on 127.0.0.1:port, in front of ee-tunneld's control listener. */
static bool start_tls_caddy(int port, char *root_out, size_t root_len)
{
	char dir[400], conf[450], log[450];
	snprintf(dir, sizeof(dir), "%s/caddy-tls", st.dir);
	mkdir(dir, 0700);
	snprintf(conf, sizeof(conf), "%s/Caddyfile", dir);
	snprintf(log, sizeof(log), "%s/caddy-tls.log", st.dir);
	snprintf(root_out, root_len, "%s/caddy/pki/authorities/local/root.crt", dir);
	FILE *f = fopen(conf, "w");
	if (!f)
		return false;
	fprintf(f,
	        "{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n"
	        "\thttp_port %d\n\thttps_port %d\n}\n"
	        "https://127.0.0.1:%d {\n\tbind 127.0.0.1\n\ttls internal\n"
	        "\treverse_proxy 127.0.0.1:%d {\n\t\ttransport http {\n\t\t\tcompression off\n"
	        "\t\t}\n\t}\n}\n",
	        stack_free_port(), port, port, st.control_port);
	fclose(f);
	tls_caddy_pid = fork();
	if (tls_caddy_pid == 0) {
		setpgid(0, 0);
		setenv("XDG_DATA_HOME", dir, 1);
		setenv("XDG_CONFIG_HOME", dir, 1);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execlp("caddy", "caddy", "run", "--config", conf, "--adapter", "caddyfile",
		       (char *)NULL);
		_exit(127);
	}
	/* Caddy writes its root when it has made the site's certificate. */
	for (int i = 0; i < 600; i++) {
		struct stat sb;
		if (stat(root_out, &sb) == 0 && sb.st_size > 0) {
			sleep_ms(200);
			return true;
		}
		sleep_ms(25);
	}
	return false;
}

static void stop_tls_caddy(void)
{
	if (tls_caddy_pid > 0) {
		kill(-tls_caddy_pid, SIGKILL);
		kill(tls_caddy_pid, SIGKILL);
		waitpid(tls_caddy_pid, NULL, 0);
		tls_caddy_pid = 0;
	}
}

static void test_wss(void)
{
	test_case("wss:// through Caddy's TLS with EE_CONTROL_CA_FILE: attested, serving");
	int port = stack_free_port();
	char root[500], ws[128];
	bool caddy = start_tls_caddy(port, root, sizeof(root));
	CHECK(caddy, "(see %s/caddy-tls.log)", st.dir);
	if (!caddy) {
		stop_tls_caddy();
		return;
	}
	snprintf(ws, sizeof(ws), "wss://127.0.0.1:%d/v1/tunnel", port);
	char ca[600];
	snprintf(ca, sizeof(ca), "EE_CONTROL_CA_FILE=%s", root);
	const char *extra[] = {ca, NULL};
	struct agent_proc t;
	CHECK(start_agent(&t, "secure", "secure-1", ws, extra));
	CHECK(agentproc_wait_ready(&t, READY_MS), "(see %s)", t.log_path);
	struct http_result r;
	CHECK(app_request("secure", "GET", "/echo/tls", NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
	CHECK_INT(agentproc_stop(&t), 0);
	check_log_clean(t.log_path);

	test_case("wss:// with another CA pinned: the certificate is refused, never ready");
	char wrong[600];
	snprintf(wrong, sizeof(wrong), "EE_CONTROL_CA_FILE=%s", st.dev_root_path);
	const char *extra2[] = {wrong, NULL};
	CHECK(start_agent(&t, "secure", "secure-2", ws, extra2));
	CHECK(agentproc_wait_state(&t, "disconnected", READY_MS));
	sleep_ms(1500);
	CHECK(agentproc_get(&t, "/ready", &r) == 0);
	CHECK_INT(r.status, 503);
	CHECK_INT(http_json_int(&r, "connects", -1), 0);
	const char *why = http_json_string(&r, "last_reason");
	CHECK(why && strncmp(why, "connect_failed", 14) == 0, "(%s)", why ? why : "null");
	http_result_free(&r);
	CHECK_INT(agentproc_stop(&t), 0);
	check_log_clean(t.log_path);

	test_case("wss:// to a plain-text listener fails the handshake and retries");
	snprintf(ws, sizeof(ws), "wss://127.0.0.1:%d/v1/tunnel", st.port);
	CHECK(start_agent(&t, "secure", "secure-3", ws, extra));
	CHECK(agentproc_wait_state(&t, "disconnected", READY_MS));
	CHECK(agentproc_get(&t, "/ready", &r) == 0);
	CHECK_INT(r.status, 503);
	http_result_free(&r);
	CHECK_INT(agentproc_stop(&t), 0);
	stop_tls_caddy();
}

/* --- health --- */

static const char *app_health(const char *app)
{
	static char health[32];
	struct http_result r;
	health[0] = '\0';
	if (stack_request(&st, "GET", "/v1/resolve/shop", NULL, NULL, &r) == 0 && app) {
		const char *h = http_json_string(&r, "health_status");
		snprintf(health, sizeof(health), "%s", h ? h : "");
	}
	http_result_free(&r);
	return health;
}

static void test_heartbeats(struct agent_proc *a)
{
	test_case("heartbeats every second keep health pass past EE_HEALTH_TIMEOUT_SEC (3 s)");
	sleep_ms(4500);
	CHECK_STR(app_health("shop"), "pass");

	test_case("EE_HEALTH_PATH answering 500: heartbeats say fail, resolve says not allowed");
	CHECK_INT(agentproc_stop(a), 0);
	const char *probe[] = {"EE_HEALTH_PATH=/status/500", NULL};
	CHECK(start_agent(a, "shop", "shop-1", NULL, probe));
	CHECK(agentproc_wait_ready(a, READY_MS));
	bool failed = false;
	for (int i = 0; i < 100 && !failed; i++) {
		failed = strcmp(app_health("shop"), "fail") == 0;
		if (!failed)
			sleep_ms(50);
	}
	CHECK(failed);
	struct http_result r;
	CHECK(stack_request(&st, "GET", "/v1/resolve/shop", NULL, NULL, &r) == 0);
	CHECK_INT(r.status, 403);
	http_result_free(&r);

	test_case("EE_HEALTH_PATH answering 200: heartbeats say pass again");
	CHECK_INT(agentproc_stop(a), 0);
	const char *ok[] = {"EE_HEALTH_PATH=/health", NULL};
	CHECK(start_agent(a, "shop", "shop-1", NULL, ok));
	CHECK(agentproc_wait_ready(a, READY_MS));
	sleep_ms(2500);
	CHECK_STR(app_health("shop"), "pass");
	CHECK(stack_request(&st, "GET", "/v1/resolve/shop", NULL, NULL, &r) == 0);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
}

/* --- refusals, configuration, readiness --- */

static void test_app_name_taken(void)
{
	test_case("an agent of another repository claiming shop: refused, retried, never ready");
	struct agent_proc t;
	const char *other[] = {"EE_REPO=mallory/shop", NULL};
	stack_allow(&st, "mallory/shop", TAG, NULL);
	CHECK(start_agent(&t, "shop", "thief-1", NULL, other));
	bool refused = false;
	for (int i = 0; i < 300 && !refused; i++) {
		struct http_result r;
		if (agentproc_get(&t, "/ready", &r) == 0) {
			const char *why = http_json_string(&r, "last_reason");
			refused = why && strcmp(why, "app_name_taken") == 0 && r.status == 503;
		}
		http_result_free(&r);
		if (!refused)
			sleep_ms(20);
	}
	CHECK(refused, "(see %s)", t.log_path);
	sleep_ms(1500);
	struct http_result r;
	CHECK(agentproc_get(&t, "/ready", &r) == 0);
	CHECK(http_json_int(&r, "connects", 0) >= 2, "connects %lld",
	      http_json_int(&r, "connects", 0));
	http_result_free(&r);
	CHECK(stack_request(&st, "GET", "/v1/resolve/shop", NULL, NULL, &r) == 0);
	CHECK_STR(http_json_string(&r, "repo"), REPO);
	http_result_free(&r);
	CHECK_INT(agentproc_stop(&t), 0);
	check_log_clean(t.log_path);
}

/* Runs ee-agent with env (on a clean environment) and args; exit status and output. */
static int run_agent_once(const char *const *env, const char *arg, char *out, size_t out_len)
{
	int pipefd[2];
	if (pipe(pipefd) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(pipefd[1], STDERR_FILENO);
		char bin[320];
		snprintf(bin, sizeof(bin), "%s/ee-agent", stack_bin_dir());
		clearenv();
		const char *asan = getenv("ASAN_OPTIONS");
		(void)asan;
		for (int i = 0; env[i]; i++)
			putenv((char *)env[i]);
		execl(bin, bin, arg, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	size_t len = 0;
	ssize_t n;
	while (len + 1 < out_len && (n = read(pipefd[0], out + len, out_len - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(pipefd[0]);
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_configuration(void)
{
	char kit[450];
	snprintf(kit, sizeof(kit), "EE_DEV_QUOTE_DIR=%s", kit_dir);
	struct {
		const char *what;
		const char *env[10];
		const char *want;
	} cases[] = {
		{"no EE_CONTROL_WS", {"EE_REPO=a/b", "EE_RELEASE_TAG=v", "EE_APP_NAME=x", NULL},
		 "missing_config:EE_CONTROL_WS"},
		{"EE_CONTROL_WS of another scheme",
		 {"EE_CONTROL_WS=http://127.0.0.1:1/v1/tunnel", "EE_REPO=a/b", "EE_RELEASE_TAG=v",
		  "EE_APP_NAME=x", NULL},
		 "invalid_config:EE_CONTROL_WS"},
		{"no EE_REPO", {"EE_CONTROL_WS=ws://127.0.0.1:1/", "EE_RELEASE_TAG=v", "EE_APP_NAME=x", NULL},
		 "missing_config:EE_REPO"},
		{"EE_QUOTE_SOURCE=dev on forge-1",
		 {"EE_CONTROL_WS=ws://127.0.0.1:1/", "EE_REPO=a/b", "EE_RELEASE_TAG=v", "EE_APP_NAME=x",
		  "EE_QUOTE_SOURCE=dev", kit, NULL},
		 "invalid_config:EE_QUOTE_SOURCE"},
		{"EE_QUOTE_SOURCE=dev without a kit",
		 {"EE_CONTROL_WS=ws://127.0.0.1:1/", "EE_REPO=a/b", "EE_RELEASE_TAG=v", "EE_APP_NAME=x",
		  "EE_NETWORK=sandbox-1", "EE_QUOTE_SOURCE=dev", NULL},
		 "missing_config:EE_DEV_QUOTE_DIR"},
		{"an unknown quote source",
		 {"EE_CONTROL_WS=ws://127.0.0.1:1/", "EE_REPO=a/b", "EE_RELEASE_TAG=v", "EE_APP_NAME=x",
		  "EE_QUOTE_SOURCE=guess", NULL},
		 "invalid_config:EE_QUOTE_SOURCE"},
		{"a backend URL that is not http(s)",
		 {"EE_CONTROL_WS=ws://127.0.0.1:1/", "EE_REPO=a/b", "EE_RELEASE_TAG=v", "EE_APP_NAME=x",
		  "EE_BACKEND_URL=file:///etc/passwd", NULL},
		 "invalid_config:EE_BACKEND_URL"},
		{"a reconnect cap below the first delay",
		 {"EE_CONTROL_WS=ws://127.0.0.1:1/", "EE_REPO=a/b", "EE_RELEASE_TAG=v", "EE_APP_NAME=x",
		  "EE_RECONNECT_DELAY_SEC=10", "EE_RECONNECT_MAX_SEC=5", NULL},
		 "invalid_config:EE_RECONNECT_MAX_SEC"},
		{"a duration with four decimals",
		 {"EE_CONTROL_WS=ws://127.0.0.1:1/", "EE_REPO=a/b", "EE_RELEASE_TAG=v", "EE_APP_NAME=x",
		  "EE_BACKEND_TIMEOUT_SEC=0.0001", NULL},
		 "invalid_config:EE_BACKEND_TIMEOUT_SEC"},
		{"a CA file for ws://",
		 {"EE_CONTROL_WS=ws://127.0.0.1:1/", "EE_REPO=a/b", "EE_RELEASE_TAG=v", "EE_APP_NAME=x",
		  "EE_CONTROL_CA_FILE=/etc/ssl/certs/ca-certificates.crt", NULL},
		 "invalid_config:EE_CONTROL_CA_FILE"},
		{"a response cap that cannot fit a message",
		 {"EE_CONTROL_WS=ws://127.0.0.1:1/", "EE_REPO=a/b", "EE_RELEASE_TAG=v", "EE_APP_NAME=x",
		  "EE_TUNNEL_MAX_MESSAGE_BYTES=1048576", NULL},
		 "invalid_config:EE_BACKEND_MAX_RESPONSE_BYTES"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("configuration with %s: exit 2, %s", cases[i].what, cases[i].want);
		char out[2048];
		CHECK_INT(run_agent_once(cases[i].env, NULL, out, sizeof(out)), 2);
		CHECK(strstr(out, cases[i].want) != NULL, "(%s)", out);
	}

	test_case("--measurements prints the allowlist entry of the machine");
	const char *env[] = {"EE_CONTROL_WS=ws://127.0.0.1:1/", "EE_REPO=a/b", "EE_RELEASE_TAG=v",
	                     "EE_APP_NAME=x", "EE_NETWORK=sandbox-1", "EE_QUOTE_SOURCE=dev", kit,
	                     "EE_SEALED=1", NULL};
	char out[4096];
	CHECK_INT(run_agent_once(env, "--measurements", out, sizeof(out)), 0);
	struct json_object *doc = json_tokener_parse(out);
	struct json_object *m = NULL, *q = NULL, *v = NULL;
	CHECK(doc && json_object_object_get_ex(doc, "measurements", &m) &&
	      json_object_object_get_ex(doc, "quote_measurements", &q), "(%s)", out);
	CHECK(m && json_object_object_get_ex(m, "mrtd", &v) &&
	      strcmp(json_object_get_string(v), AGENT_TEST_MRTD) == 0);
	CHECK(m && json_object_object_get_ex(m, "sealed", &v) && json_object_get_boolean(v));
	CHECK(q && json_object_object_get_ex(q, "rtmr2", &v) &&
	      strcmp(json_object_get_string(v), AGENT_TEST_RTMR2) == 0);
	CHECK(q && !json_object_object_get_ex(q, "sealed", NULL));
	json_object_put(doc);

	test_case("an unknown argument: usage, exit 2");
	CHECK_INT(run_agent_once(env, "--frobnicate", out, sizeof(out)), 2);
	CHECK(strstr(out, "usage") != NULL);
}

static void test_readiness(const struct agent_proc *a)
{
	struct http_result r;
	test_case("the readiness listener: /health 200, unknown paths 404, POST and DELETE 405");
	CHECK(agentproc_get(a, "/health", &r) == 0);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
	CHECK(agentproc_get(a, "/nothing", &r) == 0);
	CHECK_INT(r.status, 404);
	http_result_free(&r);
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ready", a->status_port);
	CHECK(http_do("POST", url, NULL, "x", 1, &r) == 0);
	CHECK_INT(r.status, 405);
	http_result_free(&r);
	CHECK(http_do("DELETE", url, NULL, NULL, 0, &r) == 0);
	CHECK_INT(r.status, 405);
	http_result_free(&r);
	CHECK(agentproc_get(a, "/ready", &r) == 0);
	CHECK_INT(r.status, 200);
	http_result_free(&r);

	test_case("the readiness port taken: the agent logs it and serves anyway");
	struct agent_proc t;
	char taken[64];
	snprintf(taken, sizeof(taken), "EE_STATUS_ADDR=127.0.0.1:%d", a->status_port);
	const char *extra[] = {taken, NULL};
	CHECK(start_agent(&t, "second", "second-1", NULL, extra));
	bool allowed = false;
	for (int i = 0; i < 300 && !allowed; i++) {
		CHECK(stack_request(&st, "GET", "/v1/resolve/second", NULL, NULL, &r) == 0);
		allowed = r.status == 200;
		http_result_free(&r);
		if (!allowed)
			sleep_ms(25);
	}
	CHECK(allowed, "(see %s)", t.log_path);
	CHECK_INT(agentproc_stop(&t), 0);
	check_log_clean(t.log_path);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_case("start Caddy, ee-api, ee-tunneld and the backend");
	static const char *const tunneld_env[] = {"EE_HEALTH_TIMEOUT_SEC=3", NULL};
	struct stack_options opt = {.tunneld_env = tunneld_env};
	if (stack_start(&st, "agent", &opt) != 0)
		return test_finish();
	CHECK(echohttp_start(&backend) == 0);
	snprintf(kit_dir, sizeof(kit_dir), "%s/kit", st.dir);
	CHECK(agentproc_write_kit(kit_dir) == 0);
	stack_allow(&st, REPO, TAG, NULL);

	struct agent_proc a;
	CHECK(start_agent(&a, "shop", "shop-1", NULL, NULL));
	test_attested(&a);
	if (!test_case_failed()) {
		test_methods();
		test_headers();
		test_bodies();
		test_responses();
		test_concurrent();
		test_backend_faults(&a);
		test_agent_restart(&a);
		test_control_plane_restart(&a);
		test_early_agent();
		test_wss();
		test_heartbeats(&a);
		test_app_name_taken();
		test_readiness(&a);
	}
	test_configuration();

	test_case("SIGTERM: the agent closes the tunnel and exits 0");
	CHECK_INT(agentproc_stop(&a), 0);
	check_log_clean(a.log_path);
	echohttp_stop(&backend);
	stack_stop(&st);
	return test_finish();
}
