/*
 * test_agent_protocol.c - ee-agent against a scripted control plane
 * (wsserver.h) that sends what ee-tunneld never would, and a real backend
 * (echohttp.h).
 *
 * Covered: the register message; the attest_response (nonce, REPORTDATA
 * binding measurements and nonce, the quote's registers and REPORTDATA);
 * a register made again after a reconnect; proxy requests answered with
 * their request_id, many in flight out of order; every bad proxy_request
 * answered 400 invalid_proxy_request:<what> (request_id, method, path,
 * headers, header values with CR/LF, body_b64) or 501 for CONNECT, or
 * ignored when it has no usable request_id, with the tunnel still serving;
 * invalid JSON, unknown types, binary frames, bad nonces ignored;
 * fragmented messages joined; a message over the limit closes the tunnel
 * and the agent comes back; a status with control characters logged
 * safely; agent_busy past the queue; response_too_large; a control plane
 * that stops answering pings is left and reconnected to; the tsm source
 * missing keeps the agent from connecting; nothing secret in the log.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentproc.h"
#include "attest.h"
#include "base64.h"
#include "check.h"
#include "client.h"
#include "dcapgen.h"
#include "echohttp.h"
#include "stack.h"
#include "tdx_quote.h"
#include "testagent.h"
#include "timeutil.h"
#include "util.h"
#include "wsclient.h"
#include "wsserver.h"

#define WAIT_MS 10000
#define NOTHING_MS 400
#define NONCE "0123456789abcdef0123456789abcdef"

static char dir[256];
static char kit_dir[300];
static struct echohttp backend;
static struct ws_server cp;

static bool start(struct agent_proc *a, const char *name, const char *const *extra)
{
	static char vars[6][512];
	const char *env[32];
	int n = 0;
	snprintf(vars[0], sizeof(vars[0]), "EE_CONTROL_WS=ws://127.0.0.1:%d/v1/tunnel", cp.port);
	snprintf(vars[1], sizeof(vars[1]), "EE_BACKEND_URL=%s", backend.base_url);
	snprintf(vars[2], sizeof(vars[2]), "EE_DEV_QUOTE_DIR=%s", kit_dir);
	snprintf(vars[3], sizeof(vars[3]), "EE_AGENT_ID=%s", name);
	for (int i = 0; i < 4; i++)
		env[n++] = vars[i];
	env[n++] = "EE_REPO=acme/shop";
	env[n++] = "EE_RELEASE_TAG=v1";
	env[n++] = "EE_APP_NAME=shop";
	env[n++] = "EE_NETWORK=sandbox-1";
	env[n++] = "EE_QUOTE_SOURCE=dev";
	env[n++] = "EE_RECONNECT_DELAY_SEC=0.1";
	env[n++] = "EE_RECONNECT_MAX_SEC=0.5";
	env[n++] = "EE_HEALTH_INTERVAL_SEC=600";
	env[n++] = "EE_LOG_LEVEL=debug";
	for (int i = 0; extra && extra[i] && n < 31; i++)
		env[n++] = extra[i];
	env[n] = NULL;
	char log[400];
	snprintf(log, sizeof(log), "%s/ee-agent-%s.log", dir, name);
	return agentproc_start(a, stack_bin_dir(), log, env) == 0;
}

static const char *str(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int integer(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int(v);
}

/* Accepts the agent's connection and reads its register. */
static bool accept_register(void)
{
	if (wsserver_accept(&cp, WAIT_MS) != 0)
		return false;
	struct json_object *reg = wsserver_recv_json(&cp, WAIT_MS);
	bool ok = reg && str(reg, "type") && strcmp(str(reg, "type"), "register") == 0;
	json_object_put(reg);
	return ok;
}

/* Sends an attest_request, reads the answer, says "attested". */
static struct json_object *attest(const char *nonce)
{
	char req[160];
	snprintf(req, sizeof(req),
	         "{\"type\":\"attest_request\",\"nonce\":\"%s\",\"deadline_s\":30,\"reason\":\"register\"}",
	         nonce);
	wsserver_send_text(&cp, req);
	struct json_object *resp = wsserver_recv_json(&cp, WAIT_MS);
	wsserver_send_text(&cp, "{\"type\":\"status\",\"state\":\"ok\",\"reason\":\"attested\"}");
	return resp;
}

/* Sends text and reads the next message as JSON. */
static struct json_object *exchange(const char *text)
{
	if (wsserver_send_text(&cp, text) != 0)
		return NULL;
	return wsserver_recv_json(&cp, WAIT_MS);
}

static void expect_refusal(const char *request, const char *id, int status, const char *reason)
{
	struct json_object *r = exchange(request);
	CHECK(r != NULL, "no answer");
	CHECK_STR(str(r, "type"), "proxy_response");
	CHECK_STR(str(r, "request_id"), id);
	CHECK_INT(integer(r, "status"), status);
	const char *b64 = str(r, "body_b64");
	unsigned char body[512];
	size_t len = 0;
	CHECK(b64 && strlen(b64) < 600 && base64_decode(b64, strlen(b64), body, &len) == 0);
	body[len < sizeof(body) ? len : sizeof(body) - 1] = '\0';
	char want[256];
	snprintf(want, sizeof(want), "{\"allowed\":false,\"reason\":\"%s\"}", reason);
	CHECK_STR((const char *)body, want);
	json_object_put(r);
}

/* Nothing arrives for a while, and the tunnel still answers a good request. */
static void expect_ignored(void)
{
	char *msg = NULL;
	size_t len;
	int rc = wsserver_recv(&cp, &msg, &len, NOTHING_MS);
	CHECK_INT(rc, WS_RECV_TIMEOUT);
	if (msg)
		fprintf(stderr, "  unexpected: %s\n", msg);
	free(msg);
	struct json_object *r = exchange("{\"type\":\"proxy_request\",\"request_id\":\"after\","
	                                 "\"method\":\"GET\",\"path\":\"/echo/after\",\"headers\":{},"
	                                 "\"body_b64\":\"\"}");
	CHECK_STR(str(r, "request_id"), "after");
	CHECK_INT(integer(r, "status"), 200);
	json_object_put(r);
}

static void test_register_and_attest(struct agent_proc *a)
{
	test_case("register carries the configuration and tunnel_version \"1\"");
	CHECK(wsserver_accept(&cp, WAIT_MS) == 0);
	struct json_object *reg = wsserver_recv_json(&cp, WAIT_MS);
	CHECK_STR(str(reg, "type"), "register");
	CHECK_STR(str(reg, "repo"), "acme/shop");
	CHECK_STR(str(reg, "release_tag"), "v1");
	CHECK_STR(str(reg, "app_name"), "shop");
	CHECK_STR(str(reg, "network"), "sandbox-1");
	CHECK_STR(str(reg, "agent_id"), "proto");
	CHECK_STR(str(reg, "tunnel_version"), "1");
	json_object_put(reg);

	test_case("before attestation /ready is 503 in state registered");
	CHECK(agentproc_wait_state(a, "registered", WAIT_MS));
	struct http_result r;
	CHECK(agentproc_get(a, "/ready", &r) == 0);
	CHECK_INT(r.status, 503);
	http_result_free(&r);

	test_case("attest_response binds the measurements and the nonce, in the quote too");
	struct json_object *resp = attest(NONCE);
	CHECK_STR(str(resp, "type"), "attest_response");
	CHECK_STR(str(resp, "nonce"), NONCE);
	struct json_object *m = NULL;
	CHECK(resp && json_object_object_get_ex(resp, "measurements", &m) &&
	      json_object_is_type(m, json_type_object));
	CHECK_STR(str(m, "mrtd"), AGENT_TEST_MRTD);
	CHECK_STR(str(m, "rtmr0"), AGENT_TEST_RTMR0);
	CHECK_STR(str(m, "rtmr3"), AGENT_TEST_RTMR3);
	struct json_object *sealed = NULL;
	CHECK(m && json_object_object_get_ex(m, "sealed", &sealed) &&
	      json_object_is_type(sealed, json_type_boolean) && !json_object_get_boolean(sealed));
	unsigned char want[64];
	char want_hex[129];
	CHECK(m && attest_expected_report_data(m, NONCE, want, NULL) == 0);
	util_hex_encode(want, 64, want_hex);
	CHECK_STR(str(resp, "report_data"), want_hex);
	const char *b64 = str(resp, "quote");
	unsigned char quote[16384];
	size_t qlen = 0;
	struct tdx_quote q;
	CHECK(b64 && strlen(b64) < 20000 && base64_decode(b64, strlen(b64), quote, &qlen) == 0 &&
	      tdx_quote_parse(quote, qlen, &q, NULL) == 0);
	if (!test_case_failed()) {
		CHECK(memcmp(q.td.report_data, want, 64) == 0);
		char mrtd[97];
		util_hex_encode(q.td.mr_td, 48, mrtd);
		CHECK_STR(mrtd, AGENT_TEST_MRTD);
	}
	json_object_put(resp);

	test_case("status ok attested: /ready is 200");
	CHECK(agentproc_wait_ready(a, WAIT_MS));

	test_case("a periodic attest_request with another nonce gets a new binding");
	resp = attest("fedcba9876543210fedcba9876543210");
	CHECK_STR(str(resp, "nonce"), "fedcba9876543210fedcba9876543210");
	CHECK(str(resp, "report_data") && strcmp(str(resp, "report_data"), want_hex) != 0);
	json_object_put(resp);
}

static void test_proxying(void)
{
	test_case("proxy_request: method, path, headers and body reach the backend; answer matched");
	struct json_object *r = exchange(
		"{\"type\":\"proxy_request\",\"request_id\":\"r1\",\"method\":\"POST\","
		"\"path\":\"/echo/p?q=1\",\"headers\":{\"X-Test-A\":\"b\",\"Content-Type\":\"text/x\"},"
		"\"body_b64\":\"aGVsbG8=\"}");
	CHECK_STR(str(r, "type"), "proxy_response");
	CHECK_STR(str(r, "request_id"), "r1");
	CHECK_INT(integer(r, "status"), 200);
	CHECK_STR(str(r, "body_b64"), "aGVsbG8=");
	struct json_object *h = NULL;
	CHECK(r && json_object_object_get_ex(r, "headers", &h));
	CHECK_STR(str(h, "X-Echoed-A"), "b");
	CHECK_STR(str(h, "X-Echo-Method"), "POST");
	CHECK_STR(str(h, "X-Echo-Target"), "/echo/p?q=1");
	CHECK_STR(str(h, "Content-Type"), "text/x");
	CHECK(h && !json_object_object_get_ex(h, "Content-Length", NULL));
	json_object_put(r);

	test_case("proxy_request: \\udcXX escapes reach the backend as their bytes and come back "
	          "escaped; UTF-8 as it is");
	CHECK(wsserver_send_text(&cp, "{\"type\":\"proxy_request\",\"request_id\":\"u1\","
	                              "\"method\":\"GET\",\"path\":\"/echo/u\",\"headers\":{"
	                              "\"X-Test-Latin\":\"caf\\udce9 \\udcff\","
	                              "\"X-Test-Utf8\":\"caf\xc3\xa9\"},\"body_b64\":\"\"}") == 0);
	char *raw = NULL;
	size_t raw_len = 0;
	CHECK_INT(wsserver_recv(&cp, &raw, &raw_len, WAIT_MS), WS_RECV_OK);
	CHECK(raw && strstr(raw, "\"request_id\":\"u1\"") &&
	          strstr(raw, "\"X-Echoed-Latin\":\"caf\\udce9 \\udcff\"") &&
	          strstr(raw, "\"X-Echoed-Utf8\":\"caf\xc3\xa9\""),
	      "(%s)", test_printable(raw ? raw : ""));
	free(raw);

	test_case("the original's defaults: no method is GET, no path is /, no body is empty");
	r = exchange("{\"type\":\"proxy_request\",\"request_id\":\"r2\"}");
	CHECK_STR(str(r, "request_id"), "r2");
	CHECK_INT(integer(r, "status"), 404); /* the backend's answer for "/" */
	json_object_put(r);

	test_case("Set-Cookie lines come back as an array");
	r = exchange("{\"type\":\"proxy_request\",\"request_id\":\"c\",\"method\":\"GET\","
	             "\"path\":\"/cookies\",\"headers\":{},\"body_b64\":\"\"}");
	struct json_object *cookies = NULL;
	CHECK(r && json_object_object_get_ex(r, "headers", &h) &&
	      json_object_object_get_ex(h, "Set-Cookie", &cookies) &&
	      json_object_is_type(cookies, json_type_array) && json_object_array_length(cookies) == 2);
	json_object_put(r);

	test_case("30 requests in flight answered as they finish, each with its request_id");
	for (int i = 0; i < 30; i++) {
		char req[256];
		snprintf(req, sizeof(req),
		         "{\"type\":\"proxy_request\",\"request_id\":\"f%d\",\"method\":\"GET\","
		         "\"path\":\"%s%d\",\"headers\":{},\"body_b64\":\"\"}",
		         i, i < 5 ? "/slow/1500?" : "/echo/", i);
		wsserver_send_text(&cp, req);
	}
	bool seen[30] = {false};
	int first_slow_at = -1;
	for (int n = 0; n < 30; n++) {
		r = wsserver_recv_json(&cp, WAIT_MS);
		const char *id = str(r, "request_id");
		int i = id && id[0] == 'f' ? atoi(id + 1) : -1;
		CHECK(i >= 0 && i < 30 && !seen[i], "(%s)", id ? id : "null");
		if (i >= 0 && i < 30)
			seen[i] = true;
		if (i >= 0 && i < 5 && first_slow_at < 0)
			first_slow_at = n;
		CHECK_INT(integer(r, "status"), 200);
		json_object_put(r);
	}
	/* The five slow ones (1.5 s: a loaded machine under ASan needs the margin) were sent first
	 * and still came after the fast ones. */
	CHECK(first_slow_at >= 25, "first slow answer at %d", first_slow_at);
}

static void test_bad_requests(void)
{
	struct {
		const char *what, *request, *id;
		int status;
		const char *reason;
	} cases[] = {
		{"a header value with CR LF (header injection)",
		 "{\"type\":\"proxy_request\",\"request_id\":\"b1\",\"method\":\"GET\",\"path\":\"/echo\","
		 "\"headers\":{\"X-A\":\"x\\r\\nX-Injected: 1\"}}",
		 "b1", 400, "invalid_proxy_request:header_value"},
		{"a header value with NUL",
		 "{\"type\":\"proxy_request\",\"request_id\":\"b2\",\"headers\":{\"X-A\":\"x\\u0000y\"}}",
		 "b2", 400, "invalid_proxy_request:header_value"},
		{"a header value that is a number",
		 "{\"type\":\"proxy_request\",\"request_id\":\"b3\",\"headers\":{\"X-A\":5}}", "b3", 400,
		 "invalid_proxy_request:header_value"},
		{"a header name that is not a token",
		 "{\"type\":\"proxy_request\",\"request_id\":\"b4\",\"headers\":{\"X A\":\"v\"}}", "b4",
		 400, "invalid_proxy_request:header_name"},
		{"headers that are not an object",
		 "{\"type\":\"proxy_request\",\"request_id\":\"b5\",\"headers\":[\"X-A: v\"]}", "b5", 400,
		 "invalid_proxy_request:headers"},
		{"a path without its slash",
		 "{\"type\":\"proxy_request\",\"request_id\":\"b6\",\"path\":\"echo\"}", "b6", 400,
		 "invalid_proxy_request:path"},
		{"a path with a space", "{\"type\":\"proxy_request\",\"request_id\":\"b7\",\"path\":\"/a b\"}",
		 "b7", 400, "invalid_proxy_request:path"},
		{"a path to another host",
		 "{\"type\":\"proxy_request\",\"request_id\":\"b8\",\"path\":\"http://evil/\"}", "b8", 400,
		 "invalid_proxy_request:path"},
		{"a path that is a number", "{\"type\":\"proxy_request\",\"request_id\":\"b9\",\"path\":7}",
		 "b9", 400, "invalid_proxy_request:path"},
		{"a method that is not a token",
		 "{\"type\":\"proxy_request\",\"request_id\":\"b10\",\"method\":\"GE T\"}", "b10", 400,
		 "invalid_proxy_request:method"},
		{"a method that is not a string",
		 "{\"type\":\"proxy_request\",\"request_id\":\"b11\",\"method\":[]}", "b11", 400,
		 "invalid_proxy_request:method"},
		{"CONNECT", "{\"type\":\"proxy_request\",\"request_id\":\"b12\",\"method\":\"CONNECT\"}",
		 "b12", 501, "method_not_supported"},
		{"body_b64 that is not base64",
		 "{\"type\":\"proxy_request\",\"request_id\":\"b13\",\"body_b64\":\"!!!!\"}", "b13", 400,
		 "invalid_proxy_request:body_b64"},
		{"body_b64 with bad padding",
		 "{\"type\":\"proxy_request\",\"request_id\":\"b14\",\"body_b64\":\"aGVsbG8\"}", "b14",
		 400, "invalid_proxy_request:body_b64"},
		{"body_b64 that is a number",
		 "{\"type\":\"proxy_request\",\"request_id\":\"b15\",\"body_b64\":12}", "b15", 400,
		 "invalid_proxy_request:body_b64"},
		/* Not JSON at all, but it names its request: refused now, not left to time out. */
		{"a raw ISO-8859-1 header value (not UTF-8, so not JSON)",
		 "{\"type\":\"proxy_request\",\"request_id\":\"b16\",\"headers\":{\"X-A\":\"caf\xe9\"}}",
		 "b16", 400, "invalid_proxy_request:invalid_json"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("proxy_request with %s: %d %s", cases[i].what, cases[i].status,
		          cases[i].reason);
		expect_refusal(cases[i].request, cases[i].id, cases[i].status, cases[i].reason);
	}

	struct {
		const char *what, *text;
	} ignored[] = {
		{"a proxy_request without request_id", "{\"type\":\"proxy_request\",\"path\":\"/echo\"}"},
		{"a proxy_request whose request_id is a number",
		 "{\"type\":\"proxy_request\",\"request_id\":7}"},
		{"invalid JSON", "{\"type\":"},
		{"a JSON array", "[1,2,3]"},
		{"an unknown type", "{\"type\":\"launch_missiles\"}"},
		{"a message of the agent's direction", "{\"type\":\"register\",\"repo\":\"x/y\"}"},
		{"an attest_request with a short nonce",
		 "{\"type\":\"attest_request\",\"nonce\":\"abc\",\"deadline_s\":30}"},
		{"an attest_request without nonce", "{\"type\":\"attest_request\",\"deadline_s\":30}"},
	};
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
		test_case("%s is ignored and the tunnel keeps serving", ignored[i].what);
		CHECK(wsserver_send_text(&cp, ignored[i].text) == 0);
		expect_ignored();
	}

	test_case("a request_id of 129 characters gets no answer (it could not be matched)");
	char req[512];
	char id[130];
	memset(id, 'i', 129);
	id[129] = '\0';
	snprintf(req, sizeof(req), "{\"type\":\"proxy_request\",\"request_id\":\"%s\"}", id);
	CHECK(wsserver_send_text(&cp, req) == 0);
	expect_ignored();

	test_case("a binary frame is ignored");
	CHECK(wsserver_send_frame(&cp, WS_OP_BINARY, true, "\x01\x02", 2) == 0);
	expect_ignored();

	test_case("a message in three fragments is joined");
	const char *part1 = "{\"type\":\"proxy_request\",\"request_id\":\"frag\",";
	const char *part2 = "\"method\":\"GET\",\"path\":\"/echo/fr";
	const char *part3 = "ag\",\"headers\":{}}";
	CHECK(wsserver_send_frame(&cp, WS_OP_TEXT, false, part1, strlen(part1)) == 0);
	CHECK(wsserver_send_frame(&cp, WS_OP_PING, true, "p", 1) == 0);
	CHECK(wsserver_send_frame(&cp, WS_OP_CONTINUATION, false, part2, strlen(part2)) == 0);
	CHECK(wsserver_send_frame(&cp, WS_OP_CONTINUATION, true, part3, strlen(part3)) == 0);
	struct json_object *r = wsserver_recv_json(&cp, WAIT_MS);
	CHECK_STR(str(r, "request_id"), "frag");
	struct json_object *h = NULL;
	CHECK(r && json_object_object_get_ex(r, "headers", &h));
	CHECK_STR(str(h, "X-Echo-Target"), "/echo/frag");
	json_object_put(r);

	test_case("a status with control characters in its reason is logged safely");
	CHECK(wsserver_send_text(&cp, "{\"type\":\"status\",\"state\":\"invalid\",\"reason\":"
	                              "\"bad\\nnews\\u001b[31m\"}") == 0);
	expect_ignored();
}

static void test_large_and_reconnect(struct agent_proc *a)
{
	test_case("a response over EE_BACKEND_MAX_RESPONSE_BYTES is 502 response_too_large");
	expect_refusal("{\"type\":\"proxy_request\",\"request_id\":\"big\",\"path\":\"/bytes/300000\"}",
	               "big", 502, "response_too_large");

	test_case("a message over EE_TUNNEL_MAX_MESSAGE_BYTES closes the tunnel");
	size_t n = 1200 * 1024;
	char *huge = malloc(n + 64);
	CHECK(huge != NULL);
	if (!huge)
		return;
	int off = snprintf(huge, 64, "{\"type\":\"status\",\"reason\":\"");
	memset(huge + off, 'x', n);
	strcpy(huge + off + n, "\"}");
	wsserver_send_text(&cp, huge);
	free(huge);
	char *msg = NULL;
	size_t len;
	int rc = wsserver_recv(&cp, &msg, &len, WAIT_MS);
	free(msg);
	CHECK_INT(rc, WS_RECV_CLOSED);
	CHECK_INT(cp.close_code, 1009);

	test_case("the agent comes back, registers again and serves");
	CHECK(accept_register());
	json_object_put(attest(NONCE));
	CHECK(agentproc_wait_ready(a, WAIT_MS));
	struct http_result r;
	CHECK(agentproc_get(a, "/ready", &r) == 0);
	CHECK_INT(http_json_int(&r, "connects", 0), 2);
	http_result_free(&r);
	expect_ignored();

	test_case("the control plane goes away: /ready 503, then the agent reconnects");
	wsserver_drop(&cp);
	CHECK(accept_register());
	json_object_put(attest(NONCE));
	CHECK(agentproc_wait_ready(a, WAIT_MS));
	CHECK(agentproc_get(a, "/ready", &r) == 0);
	CHECK_INT(http_json_int(&r, "connects", 0), 3);
	http_result_free(&r);
}

static void test_busy(void)
{
	test_case("one worker and a queue of two: the requests past them get 503 agent_busy");
	struct agent_proc a;
	const char *extra[] = {"EE_BACKEND_WORKERS=1", "EE_BACKEND_QUEUE=2", NULL};
	CHECK(start(&a, "busy", extra));
	CHECK(accept_register());
	json_object_put(attest(NONCE));
	CHECK(agentproc_wait_ready(&a, WAIT_MS));
	for (int i = 0; i < 6; i++) {
		char req[200];
		snprintf(req, sizeof(req),
		         "{\"type\":\"proxy_request\",\"request_id\":\"q%d\",\"path\":\"/slow/500\"}", i);
		wsserver_send_text(&cp, req);
	}
	int ok = 0, busy = 0;
	for (int i = 0; i < 6; i++) {
		struct json_object *r = wsserver_recv_json(&cp, WAIT_MS);
		int status = integer(r, "status");
		ok += status == 200;
		busy += status == 503;
		json_object_put(r);
	}
	/*
	 * One running and two queued; the rest are turned away at once.  (The
	 * worker may not have taken the first before the third arrives: 2 or 3.)
	 */
	CHECK(ok >= 2 && ok <= 3, "ok %d", ok);
	CHECK_INT(ok + busy, 6);
	CHECK_INT(agentproc_stop(&a), 0);
	char *msg = NULL;
	size_t len;
	CHECK_INT(wsserver_recv(&cp, &msg, &len, WAIT_MS), WS_RECV_CLOSED);
	free(msg);
	check_no_sanitizer_report(a.log_path);
}

static void test_silent_control_plane(void)
{
	test_case("a control plane that stops answering pings is left, and reconnected to");
	struct agent_proc a;
	const char *extra[] = {"EE_PING_INTERVAL_SEC=1", NULL};
	CHECK(start(&a, "ping", extra));
	CHECK(accept_register());
	json_object_put(attest(NONCE));
	CHECK(agentproc_wait_ready(&a, WAIT_MS));
	/* Answer pings for a while: the tunnel stays. */
	cp.auto_pong = true;
	char *msg = NULL;
	size_t len;
	CHECK_INT(wsserver_recv(&cp, &msg, &len, 2500), WS_RECV_TIMEOUT);
	CHECK(cp.pings >= 1, "pings %d", cp.pings);
	/* Then stop reading altogether: no pongs. */
	free(msg);
	int64_t t0 = time_monotonic_ms();
	bool again = wsserver_wait_pending(&cp, 30000);
	int64_t took = time_monotonic_ms() - t0;
	CHECK(again, "no reconnection in 30 s");
	/* Not at once: only after pings went unanswered (EE_PING_INTERVAL_SEC=1). */
	CHECK(took >= 1000, "reconnected after %lld ms", (long long)took);
	printf("  the agent reconnected %lld ms after the control plane fell silent\n",
	       (long long)took);
	CHECK(accept_register());
	CHECK_INT(agentproc_stop(&a), 0);
	check_no_sanitizer_report(a.log_path);
}

static void test_no_tsm(void)
{
	test_case("EE_QUOTE_SOURCE=tsm without configfs-tsm: waits, never connects, says why");
	struct agent_proc a;
	const char *extra[] = {"EE_QUOTE_SOURCE=tsm", "EE_TSM_REPORT_DIR=/nonexistent/tsm/report",
	                       NULL};
	CHECK(start(&a, "notsm", extra));
	CHECK(agentproc_wait_state(&a, "waiting_for_quote_source", WAIT_MS));
	CHECK(wsserver_accept(&cp, 1000) != 0, "it connected");
	struct http_result r;
	CHECK(agentproc_get(&a, "/ready", &r) == 0);
	CHECK_INT(r.status, 503);
	CHECK(!http_json_bool(&r, "quote_source_ready", true));
	const char *why = http_json_string(&r, "last_reason");
	CHECK(why && strncmp(why, "tsm_unavailable", 15) == 0, "(%s)", why ? why : "null");
	http_result_free(&r);
	CHECK_INT(agentproc_stop(&a), 0);
	check_no_sanitizer_report(a.log_path);
}

static void test_log_has_no_secrets(const char *log_path)
{
	test_case("the agent's log holds no nonce, quote, body or header value");
	FILE *f = fopen(log_path, "r");
	CHECK(f != NULL);
	if (!f)
		return;
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		CHECK(!strstr(line, NONCE) && !strstr(line, "aGVsbG8") && !strstr(line, "hello") &&
		              !strstr(line, "X-Injected") && !strstr(line, "\x1b"),
		      "log line: %s", line);
	}
	fclose(f);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_case("a test hierarchy, its kit, a backend and a scripted control plane");
	CHECK(stack_make_dir(dir, sizeof(dir), "agent-protocol") == 0);
	struct dcapgen_options o;
	dcapgen_defaults(&o);
	struct dcapgen *g = NULL;
	CHECK(dcapgen_create(&o, &g) == 0);
	agent_set_hierarchy(g);
	snprintf(kit_dir, sizeof(kit_dir), "%s/kit", dir);
	CHECK(agentproc_write_kit(kit_dir) == 0);
	CHECK(echohttp_start(&backend) == 0);
	CHECK(wsserver_open(&cp) == 0);
	if (test_case_failed())
		return test_finish();

	struct agent_proc a;
	const char *extra[] = {"EE_BACKEND_MAX_RESPONSE_BYTES=200000",
	                       "EE_TUNNEL_MAX_MESSAGE_BYTES=1048576", NULL};
	CHECK(start(&a, "proto", extra));
	test_register_and_attest(&a);
	test_proxying();
	test_bad_requests();
	test_large_and_reconnect(&a);
	test_case("SIGTERM closes the tunnel with 1001 and exits 0");
	CHECK_INT(agentproc_stop(&a), 0);
	char *msg = NULL;
	size_t len;
	CHECK_INT(wsserver_recv(&cp, &msg, &len, WAIT_MS), WS_RECV_CLOSED);
	free(msg);
	CHECK_INT(cp.close_code, 1001);
	check_no_sanitizer_report(a.log_path);
	test_log_has_no_secrets(a.log_path);

	test_busy();
	test_silent_control_plane();
	test_no_tsm();

	wsserver_close(&cp);
	echohttp_stop(&backend);
	agent_set_hierarchy(NULL);
	dcapgen_destroy(g);
	if (!getenv("EE_TEST_KEEP") && !test_case_failed())
		stack_remove_dir(dir);
	return test_finish();
}
