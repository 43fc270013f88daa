/*
 * test_tunnel.c - the tunnel protocol as ee-tunneld speaks it: every
 * message and every failure of DESIGN.md section 4, each asserting both
 * the answer on the socket and the state ee-api then reports (resolve,
 * apps) or the database holds (nodes, node_events).  Agents connect
 * directly to the control listener and through Caddy.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "client.h"
#include "jsonutil.h"
#include "stack.h"
#include "testagent.h"

#define WAIT_MS 5000

static struct stack st;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static struct test_agent *direct(const char *app, const char *repo, const char *agent,
                                 const char *network)
{
	struct test_agent *a = agent_connect("127.0.0.1", st.control_port, app, repo, agent, network);
	CHECK(a != NULL, "cannot connect to ee-tunneld");
	return a;
}

/* The next status message: its state and reason, or false. */
static bool next_status(struct test_agent *a, char *state, char *reason)
{
	struct json_object *m = agent_recv(a, WAIT_MS);
	if (!m)
		return false;
	const char *type = NULL, *st_text = NULL, *why = NULL;
	size_t n;
	json_get_string(m, "type", &type, &n);
	json_get_string(m, "state", &st_text, &n);
	json_get_string(m, "reason", &why, &n);
	bool ok = type && strcmp(type, "status") == 0;
	snprintf(state, 32, "%s", st_text ? st_text : "");
	snprintf(reason, 128, "%s", why ? why : "");
	json_object_put(m);
	return ok;
}

static void expect_status(struct test_agent *a, const char *state, const char *reason)
{
	char got_state[32] = "", got_reason[128] = "";
	CHECK(next_status(a, got_state, got_reason), "no status message (last: %s)",
	      agent_last_reason(a));
	CHECK_STR(got_state, state);
	CHECK_STR(got_reason, reason);
}

static void expect_closed(struct test_agent *a)
{
	int code = agent_wait_closed(a, WAIT_MS);
	CHECK(code > 0, "the socket was not closed (code %d)", code);
}

/* Polls resolve until it answers want (state writes are batched). */
static long resolve_until(const char *app, long want, struct http_result *out)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/resolve/%s", app);
	for (int i = 0; i < 100; i++) {
		stack_request(&st, "GET", path, NULL, NULL, out);
		if (out->status == want || i == 99)
			return out->status;
		http_result_free(out);
		sleep_ms(50);
	}
	return out->status;
}

static int count_events(const char *agent, const char *type, const char *detail)
{
	sqlite3 *h;
	int n = -1;
	if (sqlite3_open_v2(st.db_path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(h, 2000);
		sqlite3_stmt *s;
		if (sqlite3_prepare_v2(h,
		                       "SELECT COUNT(*) FROM node_events WHERE node_id = ?1 AND event_type = ?2"
		                       " AND (?3 IS NULL OR detail = ?3)",
		                       -1, &s, NULL) == SQLITE_OK) {
			sqlite3_bind_text(s, 1, agent, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 2, type, -1, SQLITE_STATIC);
			if (detail)
				sqlite3_bind_text(s, 3, detail, -1, SQLITE_STATIC);
			if (sqlite3_step(s) == SQLITE_ROW)
				n = sqlite3_column_int(s, 0);
		}
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
	return n;
}

/* Polls until the count of events reaches want. */
static int events_until(const char *agent, const char *type, const char *detail, int want)
{
	int n = -1;
	for (int i = 0; i < 100; i++) {
		n = count_events(agent, type, detail);
		if (n >= want)
			return n;
		sleep_ms(50);
	}
	return n;
}

static void test_happy_path(void)
{
	test_case("register: attest_request with a fresh nonce, reason register, deadline_s");
	struct test_agent *a = direct("happy", "org/happy", "agent-happy", "sandbox-1");
	if (!a)
		return;
	char nonce[33];
	CHECK_INT(agent_register(a, nonce, WAIT_MS), 0);
	CHECK_INT(strlen(nonce), 32);
	CHECK_STR(a->attest_reason, "register");
	CHECK_INT(a->attest_deadline_s, 30);

	test_case("attest_response: status ok attested");
	CHECK(agent_attest(a, nonce, false, WAIT_MS) == 0, "reason %s", agent_last_reason(a));

	test_case("ee-api then resolves the app: 200, attested, healthy, connected");
	struct http_result r;
	CHECK_INT(resolve_until("happy", 200, &r), 200);
	CHECK(http_json_bool(&r, "allowed", false));
	CHECK_STR(http_json_string(&r, "attestation_status"), "valid");
	CHECK_STR(http_json_string(&r, "health_status"), "pass");
	CHECK(http_json_bool(&r, "ws_connected", false));
	CHECK_STR(http_json_string(&r, "agent_id"), "agent-happy");
	CHECK_STR(http_json_string(&r, "network"), "sandbox-1");
	CHECK_STR(http_json_string(&r, "registration_state"), "active");
	http_result_free(&r);

	test_case("the agent is a node with a valid attestation");
	stack_request(&st, "GET", "/v1/nodes/agent-happy", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 200);
	CHECK_STR(http_json_string(&r, "attestation_status"), "valid");
	CHECK_STR(http_json_string(&r, "health_status"), "pass");
	http_result_free(&r);

	test_case("health fail: resolve says 403; health pass: 200 again");
	CHECK_INT(agent_health(a, "fail"), 0);
	CHECK_INT(resolve_until("happy", 403, &r), 403);
	CHECK_STR(http_json_string(&r, "health_status"), "fail");
	http_result_free(&r);
	CHECK_INT(agent_health(a, "pass"), 0);
	CHECK_INT(resolve_until("happy", 200, &r), 200);
	http_result_free(&r);

	test_case("a health status that is neither pass nor fail counts as fail");
	CHECK_INT(agent_health(a, "sort-of"), 0);
	CHECK_INT(resolve_until("happy", 403, &r), 403);
	http_result_free(&r);
	CHECK_INT(agent_health(a, NULL), 0); /* absent means pass, as in the original */
	CHECK_INT(resolve_until("happy", 200, &r), 200);
	http_result_free(&r);

	test_case("disconnect: resolve 403, not connected, a health_miss \"disconnect\"");
	agent_disconnect(a);
	CHECK_INT(resolve_until("happy", 403, &r), 403);
	CHECK(!http_json_bool(&r, "ws_connected", true));
	CHECK_STR(http_json_string(&r, "health_status"), "fail");
	http_result_free(&r);
	CHECK_INT(events_until("agent-happy", "health_miss", "disconnect", 1), 1);
}

static void test_through_caddy(void)
{
	test_case("an agent through Caddy (websocket upgrade proxied) is attested");
	struct test_agent *a = agent_connect("127.0.0.1", st.port, "via-caddy", "org/via-caddy",
	                                     "agent-caddy", "sandbox-1");
	CHECK(a != NULL);
	if (!a)
		return;
	CHECK(agent_up(a, false, WAIT_MS) == 0, "reason %s", agent_last_reason(a));
	struct http_result r;
	CHECK_INT(resolve_until("via-caddy", 200, &r), 200);
	http_result_free(&r);
	agent_disconnect(a);
}

static void test_bad_messages(void)
{
	struct test_agent *a = direct("bad", "org/bad", "agent-bad", "sandbox-1");
	if (!a)
		return;
	static const struct {
		const char *name, *frame, *reason;
	} cases[] = {
		{"not JSON", "{not json", "invalid_json"},
		{"a JSON array", "[1,2]", "invalid_json"},
		{"a JSON string", "\"register\"", "invalid_json"},
		{"trailing garbage", "{\"type\":\"health\"} x", "invalid_json"},
		{"no type", "{\"status\":\"pass\"}", "unknown_message"},
		{"an unknown type", "{\"type\":\"hello\"}", "unknown_message"},
		{"a type of the other direction", "{\"type\":\"attest_request\",\"nonce\":\"x\"}",
		 "unknown_message"},
		{"type not a string", "{\"type\":7}", "unknown_message"},
		{"health before registration", "{\"type\":\"health\",\"status\":\"pass\"}",
		 "not_registered"},
		{"attestation before registration",
		 "{\"type\":\"attest_response\",\"nonce\":\"00\",\"quote\":\"x\"}", "unexpected_attestation"},
		{"register with an unknown network",
		 "{\"type\":\"register\",\"repo\":\"o/r\",\"release_tag\":\"v1\",\"app_name\":\"x\","
		 "\"agent_id\":\"a\",\"network\":\"mainnet\"}",
		 "invalid_network"},
		{"register without repo",
		 "{\"type\":\"register\",\"release_tag\":\"v1\",\"app_name\":\"x\",\"agent_id\":\"a\","
		 "\"network\":\"sandbox-1\"}",
		 "missing_fields"},
		{"register without release_tag",
		 "{\"type\":\"register\",\"repo\":\"o/r\",\"app_name\":\"x\",\"agent_id\":\"a\","
		 "\"network\":\"sandbox-1\"}",
		 "missing_fields"},
		{"register without app_name",
		 "{\"type\":\"register\",\"repo\":\"o/r\",\"release_tag\":\"v1\",\"agent_id\":\"a\","
		 "\"network\":\"sandbox-1\"}",
		 "missing_fields"},
		{"register without agent_id",
		 "{\"type\":\"register\",\"repo\":\"o/r\",\"release_tag\":\"v1\",\"app_name\":\"x\","
		 "\"network\":\"sandbox-1\"}",
		 "missing_fields"},
		{"register with an empty app_name",
		 "{\"type\":\"register\",\"repo\":\"o/r\",\"release_tag\":\"v1\",\"app_name\":\"\","
		 "\"agent_id\":\"a\",\"network\":\"sandbox-1\"}",
		 "missing_fields"},
		{"register with a number for repo",
		 "{\"type\":\"register\",\"repo\":5,\"release_tag\":\"v1\",\"app_name\":\"x\","
		 "\"agent_id\":\"a\",\"network\":\"sandbox-1\"}",
		 "missing_fields"},
		{"register with an app name holding a space",
		 "{\"type\":\"register\",\"repo\":\"o/r\",\"release_tag\":\"v1\",\"app_name\":\"a b\","
		 "\"agent_id\":\"a\",\"network\":\"sandbox-1\"}",
		 "invalid_fields"},
		{"register with a repo without owner",
		 "{\"type\":\"register\",\"repo\":\"repo\",\"release_tag\":\"v1\",\"app_name\":\"x\","
		 "\"agent_id\":\"a\",\"network\":\"sandbox-1\"}",
		 "invalid_fields"},
		{"register with a repo whose owner is ..",
		 "{\"type\":\"register\",\"repo\":\"../x\",\"release_tag\":\"v1\",\"app_name\":\"x\","
		 "\"agent_id\":\"a\",\"network\":\"sandbox-1\"}",
		 "invalid_fields"},
		{"register with a repo named .",
		 "{\"type\":\"register\",\"repo\":\"o/.\",\"release_tag\":\"v1\",\"app_name\":\"x\","
		 "\"agent_id\":\"a\",\"network\":\"sandbox-1\"}",
		 "invalid_fields"},
		{"register with an app name of 65 characters",
		 "{\"type\":\"register\",\"repo\":\"o/r\",\"release_tag\":\"v1\",\"app_name\":"
		 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
		 "\"agent_id\":\"a\",\"network\":\"sandbox-1\"}",
		 "invalid_fields"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("%s: status invalid %s, the socket stays open", cases[i].name, cases[i].reason);
		CHECK_INT(ws_send_text(a->ws, cases[i].frame, strlen(cases[i].frame)), 0);
		expect_status(a, "invalid", cases[i].reason);
	}

	test_case("a binary frame is ignored");
	CHECK_INT(ws_send_binary(a->ws, "{\"type\":\"x\"}", 12), 0);
	CHECK(agent_recv(a, 300) == NULL, "a binary frame was answered");

	test_case("a fragmented text message is reassembled");
	const char *reg = "{\"type\":\"register\",\"repo\":\"org/bad\",\"release_tag\":\"v1.0.0\","
	                  "\"app_name\":\"bad\",\"agent_id\":\"agent-bad\",\"network\":\"sandbox-1\"}";
	size_t half = strlen(reg) / 2;
	CHECK_INT(ws_send_frame(a->ws, WS_OP_TEXT, false, true, reg, half), 0);
	CHECK_INT(ws_send_frame(a->ws, WS_OP_CONTINUATION, true, true, reg + half, strlen(reg) - half), 0);
	struct json_object *m = agent_recv(a, WAIT_MS);
	const char *type = NULL;
	size_t n;
	if (m)
		json_get_string(m, "type", &type, &n);
	CHECK(type && strcmp(type, "attest_request") == 0, "got %s", m ? json_text(m, &n) : "nothing");
	json_object_put(m);

	test_case("a second register on the same socket: already_registered");
	CHECK_INT(agent_send_register(a), 0);
	expect_status(a, "invalid", "already_registered");

	test_case("health after register but before attestation: not_registered");
	CHECK_INT(agent_health(a, "pass"), 0);
	expect_status(a, "invalid", "not_registered");

	test_case("a proxy_response for an unknown request id is ignored");
	CHECK_INT(agent_send_response(a, "no-such-request", 200, NULL, "x", 1), 0);
	CHECK(agent_recv(a, 300) == NULL, "an unknown proxy_response was answered");
	CHECK(ws_is_open(a->ws));
	agent_drop(a);

	test_case("an upgrade on another path is refused");
	char why[256] = "";
	struct ws_client *ws = ws_connect("127.0.0.1", st.control_port, "/v1/other", NULL, WAIT_MS,
	                                  why, sizeof(why));
	CHECK(ws == NULL, "a websocket was accepted on /v1/other");
	ws_abort(ws);
}

static void test_attestation_failures(void)
{
	struct http_result r;
	test_case("a wrong nonce: nonce_mismatch and the socket closes");
	struct test_agent *a = direct("nonce-app", "org/nonce", "agent-nonce", "sandbox-1");
	char nonce[33];
	if (a && agent_register(a, nonce, WAIT_MS) == 0) {
		struct agent_attest_options opt = {.nonce = "0123456789abcdef0123456789abcdef"};
		CHECK_INT(agent_attest_ex(a, nonce, &opt, WAIT_MS), -1);
		CHECK_STR(agent_last_reason(a), "nonce_mismatch");
		expect_closed(a);
	}
	agent_drop(a);
	test_case("an agent never attested stays unknown to resolve");
	stack_request(&st, "GET", "/v1/resolve/nonce-app", NULL, NULL, &r);
	CHECK_INT(r.status, 404);
	http_result_free(&r);

	test_case("report data bound to another nonce: report_data_mismatch, attest_miss recorded");
	a = direct("rd-app", "org/rd", "agent-rd", "sandbox-1");
	if (a && agent_register(a, nonce, WAIT_MS) == 0) {
		struct agent_attest_options opt = {.report_data_nonce = "ffffffffffffffffffffffffffffffff",
		                                   .quote_nonce = "ffffffffffffffffffffffffffffffff"};
		CHECK_INT(agent_attest_ex(a, nonce, &opt, WAIT_MS), -1);
		CHECK_STR(agent_last_reason(a), "report_data_mismatch");
		expect_closed(a);
	}
	agent_drop(a);
	CHECK_INT(events_until("agent-rd", "attest_miss", "report_data_mismatch", 1), 1);
	stack_request(&st, "GET", "/v1/nodes/agent-rd", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_STR(http_json_string(&r, "attestation_status"), "invalid");
	http_result_free(&r);

	test_case("a quote of other report data: report_data_mismatch");
	a = direct("rd2-app", "org/rd2", "agent-rd2", "sandbox-1");
	if (a && agent_register(a, nonce, WAIT_MS) == 0) {
		struct agent_attest_options opt = {.quote_nonce = "ffffffffffffffffffffffffffffffff"};
		CHECK_INT(agent_attest_ex(a, nonce, &opt, WAIT_MS), -1);
		CHECK_STR(agent_last_reason(a), "report_data_mismatch");
	}
	agent_drop(a);

	test_case("no measurements: missing_quote_or_measurements");
	a = direct("mq-app", "org/mq", "agent-mq", "sandbox-1");
	if (a && agent_register(a, nonce, WAIT_MS) == 0) {
		struct agent_attest_options opt = {.omit_measurements = true};
		CHECK_INT(agent_attest_ex(a, nonce, &opt, WAIT_MS), -1);
		CHECK_STR(agent_last_reason(a), "missing_quote_or_measurements");
	}
	agent_drop(a);

	test_case("an unsealed agent on forge-1: sealed_required");
	a = direct("forge-open", "org/forge-open", "agent-fo", "forge-1");
	if (a && agent_register(a, nonce, WAIT_MS) == 0) {
		CHECK_INT(agent_attest(a, nonce, false, WAIT_MS), -1);
		CHECK_STR(agent_last_reason(a), "sealed_required");
	}
	agent_drop(a);

	test_case("a sealed agent on forge-1 with a development-root quote: pck_chain_untrusted");
	a = direct("forge-sealed", "org/forge-sealed", "agent-fs", NULL);
	if (a && agent_register(a, nonce, WAIT_MS) == 0) {
		CHECK_INT(agent_attest(a, nonce, true, WAIT_MS), -1);
		CHECK_STR(agent_last_reason(a), "pck_chain_untrusted");
	}
	agent_drop(a);

	test_case("registers other than the measurements reported: measurement_not_bound:rtmr1");
	a = direct("lie-app", "org/lie", "agent-lie", "sandbox-1");
	if (a && agent_register(a, nonce, WAIT_MS) == 0) {
		struct json_object *real = agent_test_measurements(false);
		json_put_string(real, "rtmr1", "0000000000000000000000000000000000000000000000000000000000"
		                               "00000000000000000000000000000000000000");
		struct agent_attest_options opt = {.quote_measurements = real};
		CHECK_INT(agent_attest_ex(a, nonce, &opt, WAIT_MS), -1);
		CHECK_STR(agent_last_reason(a), "measurement_not_bound:rtmr1");
		json_object_put(real);
		expect_closed(a);
	}
	agent_drop(a);
	CHECK_INT(events_until("agent-lie", "attest_miss", "measurement_not_bound:rtmr1", 1), 1);

	test_case("a release without an allowlist: allowlist_not_found");
	a = direct("unlisted", "org/unlisted", "agent-unlisted", "sandbox-1");
	if (a) {
		a->write_allowlist = false;
		if (agent_register(a, nonce, WAIT_MS) == 0) {
			CHECK_INT(agent_attest(a, nonce, false, WAIT_MS), -1);
			CHECK_STR(agent_last_reason(a), "allowlist_not_found");
		}
	}
	agent_drop(a);

	test_case("an allowlist that wants another MRTD: quote_measurement_mismatch:mrtd");
	stack_allow(&st, "org/other-build", AGENT_DEFAULT_RELEASE,
	            "{\"measurements\":{\"rtmr0\":\"" AGENT_TEST_RTMR0 "\"},"
	            "\"quote_measurements\":{\"mrtd\":\"" AGENT_TEST_RTMR3 "\"}}");
	a = direct("other-build", "org/other-build", "agent-ob", "sandbox-1");
	if (a && agent_register(a, nonce, WAIT_MS) == 0) {
		CHECK_INT(agent_attest(a, nonce, false, WAIT_MS), -1);
		CHECK_STR(agent_last_reason(a), "quote_measurement_mismatch:mrtd");
	}
	agent_drop(a);

	test_case("a debug TD: debug_td");
	a = direct("debug-app", "org/debug", "agent-debug", "sandbox-1");
	if (a && agent_register(a, nonce, WAIT_MS) == 0) {
		struct agent_attest_options opt = {.debug_td = true};
		CHECK_INT(agent_attest_ex(a, nonce, &opt, WAIT_MS), -1);
		CHECK_STR(agent_last_reason(a), "debug_td");
	}
	agent_drop(a);

	test_case("an attestation answered twice: the nonce is used once");
	a = direct("twice", "org/twice", "agent-twice", "sandbox-1");
	if (a && agent_register(a, nonce, WAIT_MS) == 0) {
		CHECK_INT(agent_attest(a, nonce, false, WAIT_MS), 0);
		CHECK_INT(agent_send_attest_response(a, nonce, NULL), 0);
		expect_status(a, "invalid", "unexpected_attestation");
		CHECK(ws_is_open(a->ws));
	}
	agent_disconnect(a);
}

static void test_app_binding_and_replacement(void)
{
	struct http_result r;
	test_case("an app name bound to another repository: app_name_taken, closed");
	struct test_agent *owner = direct("owned", "org/owner", "agent-owner", "sandbox-1");
	CHECK(owner && agent_up(owner, false, WAIT_MS) == 0);
	struct test_agent *thief = direct("owned", "evil/other", "agent-thief", "sandbox-1");
	if (thief) {
		CHECK_INT(agent_register(thief, NULL, WAIT_MS), -1);
		CHECK_STR(agent_last_reason(thief), "app_name_taken");
		expect_closed(thief);
	}
	agent_drop(thief);

	test_case("the binding outlives the owner's tunnel (it is in the database)");
	agent_disconnect(owner);
	CHECK_INT(resolve_until("owned", 403, &r), 403);
	http_result_free(&r);
	thief = direct("owned", "evil/other", "agent-thief2", "sandbox-1");
	if (thief) {
		CHECK_INT(agent_register(thief, NULL, WAIT_MS), -1);
		CHECK_STR(agent_last_reason(thief), "app_name_taken");
	}
	agent_drop(thief);

	test_case("the same agent on a new socket replaces its old tunnel");
	struct test_agent *first = direct("twin", "org/twin", "agent-twin", "sandbox-1");
	CHECK(first && agent_up(first, false, WAIT_MS) == 0);
	struct test_agent *second = direct("twin", "org/twin", "agent-twin", "sandbox-1");
	CHECK(second && agent_up(second, false, WAIT_MS) == 0, "reason %s",
	      second ? agent_last_reason(second) : "");
	if (first) {
		expect_status(first, "invalid", "replaced");
		expect_closed(first);
	}
	CHECK_INT(resolve_until("twin", 200, &r), 200);
	http_result_free(&r);
	agent_drop(first);
	agent_disconnect(second);

	/* Agent ids are public (resolve shows them): claiming one proves nothing. */
	test_case("a socket claiming an attested agent's id cannot displace it or write its state");
	struct test_agent *holder = direct("guard", "org/guard", "agent-guard", "sandbox-1");
	CHECK(holder && agent_up(holder, false, WAIT_MS) == 0);
	int misses = count_events("agent-guard", "attest_miss", NULL);
	int health_misses = count_events("agent-guard", "health_miss", NULL);
	struct test_agent *impostor = direct("guard", "org/guard", "agent-guard", "sandbox-1");
	char nonce[33];
	if (impostor && agent_register(impostor, nonce, WAIT_MS) == 0) {
		struct agent_attest_options opt = {.report_data_nonce = "ffffffffffffffffffffffffffffffff",
		                                   .quote_nonce = "ffffffffffffffffffffffffffffffff"};
		CHECK_INT(agent_attest_ex(impostor, nonce, &opt, WAIT_MS), -1);
		CHECK_STR(agent_last_reason(impostor), "report_data_mismatch");
	}
	agent_drop(impostor);
	/* One that registers and leaves without attesting. */
	impostor = direct("guard", "org/guard", "agent-guard", "sandbox-1");
	if (impostor && agent_register(impostor, nonce, WAIT_MS) == 0)
		agent_drop(impostor);
	else
		agent_drop(impostor);
	/* And one for another app: refused at once. */
	impostor = direct("other-guard", "org/other", "agent-guard", "sandbox-1");
	if (impostor) {
		CHECK_INT(agent_send_register(impostor), 0);
		expect_status(impostor, "invalid", "agent_id_taken");
		expect_closed(impostor);
	}
	agent_drop(impostor);
	sleep_ms(300);
	CHECK_INT(resolve_until("guard", 200, &r), 200);
	CHECK(http_json_bool(&r, "ws_connected", false), "the holder's tunnel was marked disconnected");
	CHECK_STR(http_json_string(&r, "attestation_status"), "valid");
	http_result_free(&r);
	CHECK_INT(count_events("agent-guard", "attest_miss", NULL), misses);
	CHECK_INT(count_events("agent-guard", "health_miss", NULL), health_misses);
	if (holder) {
		CHECK_INT(agent_health(holder, "pass"), 0);
		struct json_object *m = agent_recv(holder, 300);
		CHECK(!m, "the holder got %s", m ? json_object_to_json_string(m) : "");
		json_object_put(m);
	}
	agent_disconnect(holder);
}

static void test_limits(void)
{
	struct stack small;
	const char *env[] = {"EE_TUNNEL_MAX_MESSAGE_BYTES=65536", "EE_REGISTER_TIMEOUT_SEC=1", NULL};
	struct stack_options opt = {.tunneld_env = env, .no_caddy = true};
	test_case("a stack with a 64 KiB message limit and a 1 s registration limit");
	if (stack_start(&small, "tunnel-limits", &opt) != 0) {
		stack_stop(&small);
		return;
	}
	test_case("a message over the limit: message_too_large, closed with 1009");
	struct test_agent *a = agent_connect("127.0.0.1", small.control_port, "big", "org/big",
	                                     "agent-big", "sandbox-1");
	if (a) {
		size_t len = 70000;
		char *frame = malloc(len + 1);
		memset(frame, ' ', len);
		memcpy(frame, "{\"type\":\"health\",\"pad\":\"", 25);
		memcpy(frame + len - 2, "\"}", 2);
		frame[len] = '\0';
		CHECK_INT(ws_send_text(a->ws, frame, len), 0);
		free(frame);
		expect_status(a, "invalid", "message_too_large");
		CHECK_INT(agent_wait_closed(a, WAIT_MS), 1009);
	}
	agent_drop(a);

	test_case("a socket that never registers: register_timeout, closed");
	a = agent_connect("127.0.0.1", small.control_port, "idle", "org/idle", "agent-idle", "sandbox-1");
	if (a) {
		expect_status(a, "invalid", "register_timeout");
		expect_closed(a);
	}
	agent_drop(a);

	test_case("a message just under the limit is read");
	a = agent_connect("127.0.0.1", small.control_port, "fits", "org/fits", "agent-fits", "sandbox-1");
	if (a) {
		size_t len = 65000;
		char *frame = malloc(len + 1);
		memset(frame, ' ', len);
		memcpy(frame, "{\"type\":\"bogus\",\"pad\":\"", 23);
		memcpy(frame + len - 2, "\"}", 2);
		frame[len] = '\0';
		CHECK_INT(ws_send_text(a->ws, frame, len), 0);
		free(frame);
		expect_status(a, "invalid", "unknown_message");
	}
	agent_drop(a);
	stack_stop(&small);
}

static void test_control_http(void)
{
	struct http_result r;
	char url[128];
	test_case("ee-tunneld's GET /health counts its agents");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", st.control_port);
	http_do("GET", url, NULL, NULL, 0, &r);
	CHECK_INT(r.status, 200);
	CHECK_STR(http_json_string(&r, "status"), "ok");
	CHECK(http_json_int(&r, "agents", -1) >= 0);
	http_result_free(&r);

	test_case("a plain GET /v1/tunnel without an upgrade: 404");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/tunnel", st.control_port);
	http_do("GET", url, NULL, NULL, 0, &r);
	CHECK_INT(r.status, 404);
	http_result_free(&r);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_case("start Caddy, ee-api and ee-tunneld");
	if (stack_start(&st, "tunnel", NULL) != 0)
		return test_finish();
	test_happy_path();
	test_through_caddy();
	test_bad_messages();
	test_attestation_failures();
	test_app_binding_and_replacement();
	test_control_http();
	test_limits();
	test_case("stop cleanly");
	stack_stop(&st);
	return test_finish();
}
