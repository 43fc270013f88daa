/*
 * test_api.c - every endpoint's normal use through real Caddy and ee-api
 * (FastCGI), and the same answers from ee-api run as CGI.  The ledger
 * invariants are checked after every case that moves money.  With
 * EE_TEST_API_MODE=apache-cgi (tests/run does both) every case runs
 * through Debian's Apache and cgi-bin/ instead: ee-api as CGI, one process
 * per request, as on a shared host.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "client.h"
#include "jsonutil.h"
#include "nodes.h"
#include "registry.h"
#include "stack.h"
#include "timeutil.h"

static struct stack st;
static enum stack_api_mode api_mode;

/* Every balance read here must answer 200. */
static long long balance_of(const char *account, long long *locked)
{
	long long b = stack_balance(&st, account, locked);
	CHECK(b >= 0, "(GET /v1/balances/%s did not answer 200 with balance_cents)", account);
	return b;
}

static void post_ok(const char *path, const char *token, const char *body, struct http_result *r)
{
	stack_request(&st, "POST", path, token, body, r);
	if (r->status != 200)
		test_fail(__FILE__, __LINE__, "POST %s %s -> %ld %s", path, body, r->status, r->body);
}

static void test_health(void)
{
	test_case("GET /health through %s", stack_front_name(api_mode));
	struct http_result r;
	stack_request(&st, "GET", "/health", NULL, NULL, &r);
	CHECK_INT(r.status, 200);
	CHECK_STR(http_json_string(&r, "status"), "ok");
	http_result_free(&r);

	test_case("HEAD /health has no body");
	stack_request(&st, "HEAD", "/health", NULL, NULL, &r);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.body_len, 0);
	http_result_free(&r);
}

static void test_purchase_and_amounts(void)
{
	static const struct {
		const char *amount; /* JSON text of the amount */
		long long cents;    /* -1: invalid_amount; -2: missing_amount */
	} cases[] = {
		{"\"12.345\"", 1235}, {"12.345", 1235}, {"\"0.005\"", 1}, {"\"0.004\"", -1},
		{"\"1e3\"", 100000}, {"1e3", 100000}, {"\"-1\"", -1}, {"-1", -1}, {"\"abc\"", -1},
		{"null", -1}, {"true", -1}, {"[1]", -1}, {"{}", -1}, {"\"\"", -1}, {"\" 1\"", -1},
		{"\"NaN\"", -1}, {"\"Infinity\"", -1}, {"\"0x10\"", -1}, {"0", -1},
		{"\"90071992547409.92\"", -1},
		{"90071992547409.915", -1}, {"1e400", -1}, {"123456789012345678901234567890", -1},
		{"\"1.005\"", 101}, {"\"1.0049999999\"", 100}, {"2.675", 268}, {"\"1E2\"", 10000},
		{"\"12.3450000000000000000000001\"", -1}, {"0.1", 10},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("purchase amount %s", cases[i].amount);
		char body[256];
		snprintf(body, sizeof(body), "{\"account_id\":\"amounts-%zu\",\"amount_usd\":%s}", i,
		         cases[i].amount);
		char before[65], after[65];
		db_digest(st.db_path, before);
		struct http_result r;
		stack_request(&st, "POST", "/v1/credits/purchase", TEST_ADMIN_TOKEN, body, &r);
		if (cases[i].cents >= 0) {
			CHECK_INT(r.status, 200);
			CHECK_INT(http_json_int(&r, "balance_cents", -1), cases[i].cents);
			CHECK_INT(http_json_int(&r, "amount_cents", -1), cases[i].cents);
			CHECK_INT(http_json_int(&r, "locked_cents", -1), 0);
		} else {
			CHECK_INT(r.status, 400);
			CHECK_STR(http_reason(&r), "invalid_amount");
			db_digest(st.db_path, after);
			CHECK_STR(after, before);
		}
		http_result_free(&r);
		check_ledger(st.db_path);
	}

	test_case("purchase with \"amount\" instead of \"amount_usd\"");
	struct http_result r;
	post_ok("/v1/credits/purchase", TEST_ADMIN_TOKEN, "{\"account_id\":\"alice\",\"amount\":\"100\"}", &r);
	CHECK_INT(http_json_int(&r, "balance_cents", -1), 10000);
	CHECK_STR(http_json_string(&r, "account_id"), "alice");
	CHECK(http_json_string(&r, "txn_id") != NULL);
	http_result_free(&r);
	CHECK_INT(balance_of("alice", NULL), 10000);
	check_ledger(st.db_path);

	test_case("purchase with no amount: missing_amount");
	stack_request(&st, "POST", "/v1/credits/purchase", TEST_ADMIN_TOKEN, "{\"account_id\":\"alice\"}", &r);
	CHECK_INT(r.status, 400);
	CHECK_STR(http_reason(&r), "missing_amount");
	http_result_free(&r);

	test_case("unknown account has zero balance");
	CHECK_INT(balance_of("nobody-yet", NULL), 0);
}

static void test_transfer(void)
{
	struct http_result r;
	test_case("transfer moves exactly the amount");
	post_ok("/v1/credits/transfer", TEST_ADMIN_TOKEN,
	        "{\"from_account\":\"alice\",\"to_account\":\"bob\",\"amount_usd\":\"12.34\"}", &r);
	CHECK(http_json_string(&r, "transfer_id") != NULL);
	CHECK_INT(http_json_int(&r, "amount_cents", -1), 1234);
	http_result_free(&r);
	CHECK_INT(balance_of("alice", NULL), 10000 - 1234);
	CHECK_INT(balance_of("bob", NULL), 1234);
	check_ledger(st.db_path);

	test_case("transfer beyond the balance: insufficient_funds, nothing moves");
	char before[65], after[65];
	db_digest(st.db_path, before);
	stack_request(&st, "POST", "/v1/credits/transfer", TEST_ADMIN_TOKEN,
	              "{\"from_account\":\"bob\",\"to_account\":\"alice\",\"amount_usd\":\"12.35\"}", &r);
	CHECK_INT(r.status, 400);
	CHECK_STR(http_reason(&r), "insufficient_funds");
	http_result_free(&r);
	db_digest(st.db_path, after);
	CHECK_STR(after, before);

	test_case("transfer from an unknown account: insufficient_funds");
	stack_request(&st, "POST", "/v1/credits/transfer", TEST_ADMIN_TOKEN,
	              "{\"from_account\":\"ghost\",\"to_account\":\"alice\",\"amount_usd\":\"1\"}", &r);
	CHECK_INT(r.status, 400);
	CHECK_STR(http_reason(&r), "insufficient_funds");
	http_result_free(&r);
	db_digest(st.db_path, after);
	CHECK_STR(after, before);

	test_case("transfer of the whole balance leaves exactly zero");
	post_ok("/v1/credits/transfer", TEST_ADMIN_TOKEN,
	        "{\"from_account\":\"bob\",\"to_account\":\"carol\",\"amount\":12.34}", &r);
	http_result_free(&r);
	CHECK_INT(balance_of("bob", NULL), 0);
	CHECK_INT(balance_of("carol", NULL), 1234);
	check_ledger(st.db_path);

	test_case("system accounts cannot be used directly");
	stack_request(&st, "POST", "/v1/credits/transfer", TEST_ADMIN_TOKEN,
	              "{\"from_account\":\"@mint\",\"to_account\":\"alice\",\"amount\":1}", &r);
	CHECK_INT(r.status, 400);
	http_result_free(&r);
	check_ledger(st.db_path);
}

static void test_idempotency(void)
{
	const char *body = "{\"from_account\":\"alice\",\"to_account\":\"dave\",\"amount_usd\":\"1.00\"}";
	const char *headers[] = {"Authorization: Bearer " TEST_ADMIN_TOKEN,
	                         "Content-Type: application/json", "Idempotency-Key: retry-1", NULL};
	struct http_result first, again, other;
	long long alice = balance_of("alice", NULL);

	test_case("Idempotency-Key: a retry returns the first answer and moves nothing");
	stack_request_ex(&st, "POST", "/v1/credits/transfer", headers, body, strlen(body), &first);
	CHECK_INT(first.status, 200);
	stack_request_ex(&st, "POST", "/v1/credits/transfer", headers, body, strlen(body), &again);
	CHECK_INT(again.status, 200);
	CHECK_STR(again.body, first.body);
	char replayed[16] = "";
	CHECK(http_header(&again, "Idempotent-Replayed", replayed, sizeof(replayed)));
	CHECK_INT(balance_of("alice", NULL), alice - 100);
	CHECK_INT(balance_of("dave", NULL), 100);
	check_ledger(st.db_path);

	test_case("Idempotency-Key reused for a different request: 422, nothing moves");
	char before[65], after[65];
	db_digest(st.db_path, before);
	const char *body2 = "{\"from_account\":\"alice\",\"to_account\":\"dave\",\"amount_usd\":\"2.00\"}";
	stack_request_ex(&st, "POST", "/v1/credits/transfer", headers, body2, strlen(body2), &other);
	CHECK_INT(other.status, 422);
	CHECK_STR(http_reason(&other), "idempotency_key_reused");
	db_digest(st.db_path, after);
	CHECK_STR(after, before);
	http_result_free(&first);
	http_result_free(&again);
	http_result_free(&other);

	test_case("the same key on another endpoint is a separate request");
	const char *pbody = "{\"account_id\":\"dave\",\"amount_usd\":\"1.00\"}";
	stack_request_ex(&st, "POST", "/v1/credits/purchase", headers, pbody, strlen(pbody), &other);
	CHECK_INT(other.status, 200);
	CHECK_INT(http_json_int(&other, "balance_cents", -1), 200);
	http_result_free(&other);
	check_ledger(st.db_path);

	test_case("a failed request stores nothing; its retry is evaluated again");
	const char *h2[] = {"Authorization: Bearer " TEST_ADMIN_TOKEN,
	                    "Content-Type: application/json", "Idempotency-Key: retry-2", NULL};
	const char *big = "{\"from_account\":\"erin\",\"to_account\":\"dave\",\"amount_usd\":\"5\"}";
	stack_request_ex(&st, "POST", "/v1/credits/transfer", h2, big, strlen(big), &other);
	CHECK_INT(other.status, 400);
	http_result_free(&other);
	post_ok("/v1/credits/purchase", TEST_ADMIN_TOKEN, "{\"account_id\":\"erin\",\"amount_usd\":\"5\"}", &other);
	http_result_free(&other);
	stack_request_ex(&st, "POST", "/v1/credits/transfer", h2, big, strlen(big), &other);
	CHECK_INT(other.status, 200);
	http_result_free(&other);
	CHECK_INT(balance_of("erin", NULL), 0);
	check_ledger(st.db_path);
}

static char node_token[80];

static void test_nodes(void)
{
	struct http_result r;
	test_case("node registration returns a token once");
	post_ok("/v1/nodes/register", TEST_ADMIN_TOKEN,
	        "{\"node_id\":\"node-1\",\"price_usd_per_vcpu_hour\":\"0.25\","
	        "\"stake_amount_usd\":\"100\",\"stake_tier\":\"gold\"}", &r);
	const char *tok = NULL;
	struct json_object *t;
	if (r.json && json_object_object_get_ex(r.json, "node_token", &t) && t)
		tok = json_object_get_string(t);
	CHECK(tok && strlen(tok) == 64);
	snprintf(node_token, sizeof(node_token), "%s", tok ? tok : "");
	struct json_object *node;
	CHECK(r.json && json_object_object_get_ex(r.json, "node", &node));
	http_result_free(&r);

	test_case("GET /v1/nodes/{node} shows price and stake, never the token");
	stack_request(&st, "GET", "/v1/nodes/node-1", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 200);
	CHECK_INT(http_json_int(&r, "price_cents_per_vcpu_hour", -1), 25);
	CHECK_INT(http_json_int(&r, "stake_amount_cents", -1), 10000);
	CHECK_STR(http_json_string(&r, "stake_tier"), "gold");
	CHECK_STR(http_json_string(&r, "status"), "active");
	CHECK(strstr(r.body, "token") == NULL);
	CHECK(strstr(r.body, node_token) == NULL);
	http_result_free(&r);

	test_case("registering an existing node without allow_update: node_exists");
	stack_request(&st, "POST", "/v1/nodes/register", TEST_ADMIN_TOKEN, "{\"node_id\":\"node-1\"}", &r);
	CHECK_INT(r.status, 400);
	CHECK_STR(http_reason(&r), "node_exists");
	http_result_free(&r);

	test_case("a node updates its own price with its token; omitted fields are kept");
	post_ok("/v1/nodes/register", node_token, "{\"node_id\":\"node-1\",\"price_usd\":\"0.50\"}", &r);
	struct json_object *nt;
	CHECK(json_object_object_get_ex(r.json, "node_token", &nt) && nt == NULL);
	http_result_free(&r);
	stack_request(&st, "GET", "/v1/nodes/node-1", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(http_json_int(&r, "price_cents_per_vcpu_hour", -1), 50);
	CHECK_INT(http_json_int(&r, "stake_amount_cents", -1), 10000);
	http_result_free(&r);

	test_case("a node's token does not work for another node");
	post_ok("/v1/nodes/register", TEST_ADMIN_TOKEN, "{\"node_id\":\"node-2\",\"price_usd\":\"1\"}", &r);
	http_result_free(&r);
	stack_request(&st, "POST", "/v1/nodes/register", node_token, "{\"node_id\":\"node-2\",\"price_usd\":\"9\"}", &r);
	CHECK_INT(r.status, 401);
	http_result_free(&r);

	test_case("a node cannot change its status or rotate its token");
	stack_request(&st, "POST", "/v1/nodes/register", node_token, "{\"node_id\":\"node-1\",\"status\":\"active\"}", &r);
	CHECK_INT(r.status, 403);
	http_result_free(&r);

	test_case("the admin rotates a node token; the old one stops working");
	post_ok("/v1/nodes/register", TEST_ADMIN_TOKEN,
	        "{\"node_id\":\"node-1\",\"allow_update\":true,\"rotate_token\":true}", &r);
	const char *fresh = http_json_string(&r, "node_token");
	CHECK(fresh && strcmp(fresh, node_token) != 0);
	char fresh_token[80];
	snprintf(fresh_token, sizeof(fresh_token), "%s", fresh ? fresh : "");
	http_result_free(&r);
	stack_request(&st, "POST", "/v1/nodes/register", node_token, "{\"node_id\":\"node-1\",\"price_usd\":\"1\"}", &r);
	CHECK_INT(r.status, 401);
	http_result_free(&r);
	snprintf(node_token, sizeof(node_token), "%s", fresh_token);
	post_ok("/v1/nodes/register", node_token, "{\"node_id\":\"node-1\",\"price_usd\":\"0.50\"}", &r);
	http_result_free(&r);

	test_case("GET /v1/nodes/{node} for an unknown node: 404 node_not_found");
	stack_request(&st, "GET", "/v1/nodes/nope", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 404);
	CHECK_STR(http_reason(&r), "node_not_found");
	http_result_free(&r);
}

static void make_node_healthy(const char *node)
{
	struct ee_db *db = stack_db(&st);
	struct ee_error err;
	if (!db)
		return;
	int64_t now = time_now_ms();
	CHECK(nodes_mark_attestation(db, node, "valid", now, &err) == 0);
	CHECK(nodes_mark_health(db, node, "pass", now, &err) == 0);
	db_close(db);
}

static void test_usage_and_settlement(void)
{
	struct http_result r;
	make_node_healthy("node-1");
	post_ok("/v1/credits/purchase", TEST_ADMIN_TOKEN, "{\"account_id\":\"user-1\",\"amount_usd\":\"10\"}", &r);
	http_result_free(&r);

	test_case("usage report locks vcpu_hours x price into escrow");
	post_ok("/v1/usage/report", TEST_UPTIME_TOKEN,
	        "{\"account_id\":\"user-1\",\"node_id\":\"node-1\",\"vcpu_hours\":\"3.5\","
	        "\"period_start\":\"2026-01-01T00:00:00Z\",\"period_end\":\"2026-01-02T00:00:00Z\"}", &r);
	CHECK_INT(http_json_int(&r, "amount_cents", -1), 175);
	CHECK(http_json_string(&r, "usage_id") && http_json_string(&r, "lock_id"));
	http_result_free(&r);
	long long locked;
	CHECK_INT(balance_of("user-1", &locked), 1000 - 175);
	CHECK_INT(locked, 175);
	CHECK_INT(balance_of("@escrow", NULL), 175);
	check_ledger(st.db_path);

	test_case("usage report with the admin token works too");
	post_ok("/v1/usage/report", TEST_ADMIN_TOKEN,
	        "{\"account_id\":\"user-1\",\"node_id\":\"node-1\",\"vcpu_hours\":1,"
	        "\"period_start\":\"2026-01-01T00:00:00Z\",\"period_end\":\"2026-01-02T00:00:00Z\"}", &r);
	CHECK_INT(http_json_int(&r, "amount_cents", -1), 50);
	http_result_free(&r);
	check_ledger(st.db_path);

	test_case("usage beyond the balance: insufficient_funds, nothing locked");
	char before[65], after[65];
	db_digest(st.db_path, before);
	stack_request(&st, "POST", "/v1/usage/report", TEST_UPTIME_TOKEN,
	              "{\"account_id\":\"user-1\",\"node_id\":\"node-1\",\"vcpu_hours\":\"10000\","
	              "\"period_start\":\"2026-01-01T00:00:00Z\",\"period_end\":\"2026-01-02T00:00:00Z\"}", &r);
	CHECK_INT(r.status, 400);
	CHECK_STR(http_reason(&r), "insufficient_funds");
	http_result_free(&r);
	db_digest(st.db_path, after);
	CHECK_STR(after, before);

	test_case("usage for a node without a price: node_price_missing");
	stack_request(&st, "POST", "/v1/usage/report", TEST_UPTIME_TOKEN,
	              "{\"account_id\":\"user-1\",\"node_id\":\"unpriced\",\"vcpu_hours\":\"1\","
	              "\"period_start\":\"2026-01-01T00:00:00Z\",\"period_end\":\"2026-01-02T00:00:00Z\"}", &r);
	CHECK_INT(r.status, 400);
	CHECK_STR(http_reason(&r), "node_price_missing");
	http_result_free(&r);

	test_case("settlement of a clean period pays the provider");
	post_ok("/v1/settlements/2026-01-01/finalize", TEST_ADMIN_TOKEN,
	        "{\"node_id\":\"node-1\",\"period_start\":\"2026-01-01T00:00:00Z\","
	        "\"period_end\":\"2026-01-02T00:00:00+00:00\"}", &r);
	CHECK(http_json_bool(&r, "eligible", false));
	CHECK_INT(http_json_int(&r, "settled", -1), 2);
	CHECK_INT(http_json_int(&r, "failed", -1), 0);
	CHECK_INT(http_json_int(&r, "settled_cents", -1), 225);
	http_result_free(&r);
	CHECK_INT(balance_of("node-1", NULL), 225);
	CHECK_INT(balance_of("user-1", &locked), 1000 - 225);
	CHECK_INT(locked, 0);
	CHECK_INT(balance_of("@escrow", NULL), 0);
	check_ledger(st.db_path);

	test_case("settling the same period again moves nothing");
	long long provider = balance_of("node-1", NULL);
	post_ok("/v1/settlements/2026-01-01/finalize", TEST_ADMIN_TOKEN,
	        "{\"node_id\":\"node-1\",\"period_start\":\"2026-01-01T00:00:00Z\","
	        "\"period_end\":\"2026-01-02T00:00:00Z\"}", &r);
	CHECK_INT(http_json_int(&r, "settled", -1), 0);
	CHECK_INT(http_json_int(&r, "failed", -1), 0);
	http_result_free(&r);
	CHECK_INT(balance_of("node-1", NULL), provider);
	check_ledger(st.db_path);

	test_case("a period that has not ended cannot be settled");
	char body[256], end[EE_RFC3339_MAX];
	time_format_rfc3339(time_now_ms() + 3600 * 1000, end);
	snprintf(body, sizeof(body),
	         "{\"node_id\":\"node-1\",\"period_start\":\"2026-01-01T00:00:00Z\",\"period_end\":\"%s\"}", end);
	db_digest(st.db_path, before);
	stack_request(&st, "POST", "/v1/settlements/now/finalize", TEST_ADMIN_TOKEN, body, &r);
	CHECK_INT(r.status, 409);
	CHECK_STR(http_reason(&r), "period_not_ended");
	http_result_free(&r);
	db_digest(st.db_path, after);
	CHECK_STR(after, before);
}

static void seed_app(const char *app, const char *repo, const char *agent, const char *network,
                     bool attested, bool healthy, bool connected, bool sealed)
{
	struct stack_agent a = {
		.app_name = app,
		.repo = repo,
		.release_tag = "v1.0.0",
		.network = network,
		.agent_id = agent,
		.attestation = attested ? "valid" : "invalid",
		.sealed = sealed,
		.health = healthy ? "pass" : "fail",
		.connected = connected,
	};
	stack_seed_agent(&st, &a);
}

/* Runs SQL on the stack's database directly (rows ee-tunneld would write). */
static void exec_sql(const char *sql)
{
	struct ee_db *db = stack_db(&st);
	CHECK(db != NULL);
	if (!db)
		return;
	char *msg = NULL;
	CHECK(sqlite3_exec(db_handle(db), sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql,
	      msg ? msg : "");
	sqlite3_free(msg);
	db_close(db);
}

static const char *agent_id_at(struct json_object *agents, size_t i)
{
	struct json_object *a = json_object_array_get_idx(agents, i), *id = NULL;
	return a && json_object_object_get_ex(a, "agent_id", &id) ? json_object_get_string(id) : NULL;
}

static bool is_type(const struct http_result *r, const char *key, enum json_type type)
{
	struct json_object *v = NULL;
	return r->json && json_object_object_get_ex(r->json, key, &v) && json_object_is_type(v, type);
}

/* After test_registry: shapes and orders the registry's answers keep. */
static void test_registry_shapes(void)
{
	struct http_result r;
	exec_sql("INSERT INTO apps (app_name, repo, created_at) VALUES ('bare-app', 'org/bare', 1)");

	test_case("resolve an app without agents: 403, nulls, expired, no agents");
	stack_request(&st, "GET", "/v1/resolve/bare-app", NULL, NULL, &r);
	CHECK_INT(r.status, 403);
	CHECK(is_type(&r, "allowed", json_type_boolean) && !http_json_bool(&r, "allowed", true));
	CHECK(is_type(&r, "sealed", json_type_boolean) && !http_json_bool(&r, "sealed", true));
	CHECK(is_type(&r, "agent_id", json_type_null));
	CHECK(is_type(&r, "release_tag", json_type_null));
	CHECK(is_type(&r, "registered_at", json_type_null));
	CHECK(is_type(&r, "last_attest", json_type_null));
	CHECK_STR(http_json_string(&r, "repo"), "org/bare");
	CHECK_STR(http_json_string(&r, "registration_state"), "expired");
	CHECK_STR(http_json_string(&r, "status"), "expired");
	CHECK_STR(http_json_string(&r, "attestation_status"), "unknown");
	CHECK(is_type(&r, "agents_total", json_type_int));
	CHECK_INT(http_json_int(&r, "agents_total", -1), 0);
	CHECK(!is_type(&r, "agents", json_type_array));
	http_result_free(&r);

	test_case("resolve's types: times are RFC 3339 strings, counts integers, flags booleans");
	stack_request(&st, "GET", "/v1/resolve/good-app", NULL, NULL, &r);
	CHECK(is_type(&r, "registered_at", json_type_string));
	const char *at = http_json_string(&r, "registered_at");
	CHECK(at && strlen(at) == 24 && at[10] == 'T' && at[23] == 'Z', "%s", at ? at : "");
	CHECK(is_type(&r, "agents_allowed", json_type_int));
	CHECK(is_type(&r, "ws_connected", json_type_boolean));
	http_result_free(&r);

	test_case("GET /v1/apps/{app}: agents newest first, then by id; the allowed one answers");
	/* agent-p1 (not connected) newest; agent-p2 and agent-p0 older and tied. */
	exec_sql("UPDATE app_agents SET registered_at = registered_at + 5000 WHERE agent_id = 'agent-p1'");
	seed_app("pair-app", "org/pair", "agent-p0", "sandbox-1", true, true, false, false);
	exec_sql("UPDATE app_agents SET registered_at = (SELECT registered_at FROM app_agents"
	         " WHERE agent_id = 'agent-p2') WHERE agent_id = 'agent-p0'");
	stack_request(&st, "GET", "/v1/apps/pair-app", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 200);
	struct json_object *agents = NULL;
	CHECK(r.json && json_object_object_get_ex(r.json, "agents", &agents) &&
	      json_object_array_length(agents) == 3);
	CHECK_STR(agent_id_at(agents, 0), "agent-p1");
	CHECK_STR(agent_id_at(agents, 1), "agent-p0");
	CHECK_STR(agent_id_at(agents, 2), "agent-p2");
	CHECK_STR(http_json_string(&r, "agent_id"), "agent-p2");
	CHECK_INT(http_json_int(&r, "agents_total", -1), 3);
	CHECK_INT(http_json_int(&r, "agents_allowed", -1), 1);
	http_result_free(&r);

	test_case("GET /v1/apps/{app} with no agent allowed describes the newest");
	exec_sql("UPDATE app_agents SET health_status = 'fail' WHERE agent_id = 'agent-p2'");
	stack_request(&st, "GET", "/v1/resolve/pair-app", NULL, NULL, &r);
	CHECK_INT(r.status, 403);
	CHECK_STR(http_json_string(&r, "agent_id"), "agent-p1");
	CHECK_INT(http_json_int(&r, "agents_allowed", -1), 0);
	http_result_free(&r);
	exec_sql("UPDATE app_agents SET health_status = 'pass' WHERE agent_id = 'agent-p2'");

	test_case("GET /v1/apps: every app once, by name, each with its own agents");
	stack_request(&st, "GET", "/v1/apps", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 200);
	struct json_object *apps = NULL;
	CHECK(r.json && json_object_object_get_ex(r.json, "apps", &apps) &&
	      json_object_array_length(apps) == 5);
	static const char *const names[] = {"bare-app", "good-app", "open-app", "pair-app",
	                                    "sick-app"};
	static const int totals[] = {0, 1, 1, 3, 1};
	for (size_t i = 0; apps && i < 5 && i < json_object_array_length(apps); i++) {
		struct json_object *app = json_object_array_get_idx(apps, i), *v = NULL;
		CHECK(json_object_object_get_ex(app, "app_name", &v) &&
		      strcmp(json_object_get_string(v), names[i]) == 0, "app %zu", i);
		CHECK(json_object_object_get_ex(app, "agents_total", &v) &&
		      json_object_get_int(v) == totals[i], "app %zu", i);
		CHECK(!json_object_object_get_ex(app, "agents", &v), "app %zu lists no agents", i);
	}
	http_result_free(&r);
}

static void test_registry(void)
{
	struct http_result r;
	seed_app("good-app", "org/good", "agent-good", "sandbox-1", true, true, true, false);
	seed_app("sick-app", "org/sick", "agent-sick", "sandbox-1", true, false, true, false);
	seed_app("open-app", "org/open", "agent-open", "forge-1", true, true, true, false);

	test_case("resolve an allowed app: 200 with the original's fields and the short form");
	stack_request(&st, "GET", "/v1/resolve/good-app", NULL, NULL, &r);
	CHECK_INT(r.status, 200);
	static const char *const fields[] = {
		"app_name", "repo", "release_tag", "network", "agent_id", "registered_at",
		"registration_expires_at", "registration_state", "sealed", "attestation_status",
		"health_status", "ws_connected", "last_attested_at", "last_health_at", "allowed",
		"status", "endpoint", "last_attest"};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		struct json_object *v;
		CHECK(r.json && json_object_object_get_ex(r.json, fields[i], &v), "field %s", fields[i]);
	}
	CHECK(http_json_bool(&r, "allowed", false));
	CHECK_STR(http_json_string(&r, "registration_state"), "active");
	CHECK_STR(http_json_string(&r, "status"), "active");
	CHECK_STR(http_json_string(&r, "repo"), "org/good");
	CHECK_STR(http_json_string(&r, "endpoint"), "/v1/proxy/good-app");
	http_result_free(&r);

	test_case("resolve an app whose agent fails health: 403");
	stack_request(&st, "GET", "/v1/resolve/sick-app", NULL, NULL, &r);
	CHECK_INT(r.status, 403);
	CHECK(!http_json_bool(&r, "allowed", true));
	CHECK_STR(http_json_string(&r, "health_status"), "fail");
	http_result_free(&r);

	test_case("resolve an unsealed app on forge-1: 403");
	stack_request(&st, "GET", "/v1/resolve/open-app", NULL, NULL, &r);
	CHECK_INT(r.status, 403);
	http_result_free(&r);

	test_case("resolve an unknown app: 404 unknown_app");
	stack_request(&st, "GET", "/v1/resolve/nope", NULL, NULL, &r);
	CHECK_INT(r.status, 404);
	CHECK_STR(http_reason(&r), "unknown_app");
	CHECK(!http_json_bool(&r, "allowed", true));
	http_result_free(&r);

	test_case("two agents for one app: allowed while either is");
	seed_app("pair-app", "org/pair", "agent-p1", "sandbox-1", true, true, false, false);
	seed_app("pair-app", "org/pair", "agent-p2", "sandbox-1", true, true, true, false);
	stack_request(&st, "GET", "/v1/resolve/pair-app", NULL, NULL, &r);
	CHECK_INT(r.status, 200);
	CHECK_STR(http_json_string(&r, "agent_id"), "agent-p2");
	CHECK_INT(http_json_int(&r, "agents_total", -1), 2);
	CHECK_INT(http_json_int(&r, "agents_allowed", -1), 1);
	http_result_free(&r);

	test_case("an app name bound to another repo is refused: app_name_taken");
	struct ee_db *db = stack_db(&st);
	if (db) {
		struct ee_error err;
		struct registry_policy policy = {30, 3, NULL};
		CHECK(registry_register_agent(db, &policy, "good-app", "evil/other", "v1", "sandbox-1",
		                              "agent-evil", time_now_ms(), &err) != 0);
		CHECK_STR(err.reason, "app_name_taken");
		db_close(db);
	}

	test_case("GET /v1/apps lists every app with its status");
	stack_request(&st, "GET", "/v1/apps", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 200);
	struct json_object *apps;
	CHECK(r.json && json_object_object_get_ex(r.json, "apps", &apps) &&
	      json_object_array_length(apps) == 4);
	http_result_free(&r);

	test_case("GET /v1/apps/{app} includes every agent");
	stack_request(&st, "GET", "/v1/apps/pair-app", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 200);
	struct json_object *agents;
	CHECK(r.json && json_object_object_get_ex(r.json, "agents", &agents) &&
	      json_object_array_length(agents) == 2);
	http_result_free(&r);

	test_case("GET /v1/apps/{app} for an unknown app: 404");
	stack_request(&st, "GET", "/v1/apps/nope", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 404);
	CHECK_STR(http_reason(&r), "unknown_app");
	http_result_free(&r);
}

static void test_abuse(void)
{
	struct http_result r;
	test_case("the launcher files an abuse report");
	post_ok("/v1/abuse/reports", TEST_LAUNCHER_TOKEN,
	        "{\"node_id\":\"node-2\",\"reason\":\"spam\",\"period_start\":\"2026-02-01T00:00:00Z\"}", &r);
	CHECK_STR(http_json_string(&r, "status"), "pending");
	char id[80];
	snprintf(id, sizeof(id), "%s", http_json_string(&r, "report_id") ? http_json_string(&r, "report_id") : "");
	http_result_free(&r);

	test_case("the admin authorizes it");
	char path[160];
	snprintf(path, sizeof(path), "/v1/abuse/reports/%s/authorize", id);
	post_ok(path, TEST_ADMIN_TOKEN, "{\"action\":\"authorize\"}", &r);
	CHECK_STR(http_json_string(&r, "status"), "authorized");
	http_result_free(&r);

	test_case("or denies it");
	post_ok(path, TEST_ADMIN_TOKEN, "{\"action\":\"deny\",\"authorized_by\":\"ops\"}", &r);
	CHECK_STR(http_json_string(&r, "status"), "denied");
	http_result_free(&r);

	test_case("the launcher token cannot authorize");
	stack_request(&st, "POST", path, TEST_LAUNCHER_TOKEN, "{\"action\":\"authorize\"}", &r);
	CHECK_INT(r.status, 401);
	http_result_free(&r);
}

static void test_ledger_entries(void)
{
	struct http_result r;
	test_case("GET /v1/ledger/entries pages through every movement");
	long long after = 0, total = 0, sum = 0;
	for (int page = 0; page < 1000; page++) {
		char path[128];
		snprintf(path, sizeof(path), "/v1/ledger/entries?limit=7&after=%lld", after);
		stack_request(&st, "GET", path, TEST_ADMIN_TOKEN, NULL, &r);
		CHECK_INT(r.status, 200);
		struct json_object *entries;
		if (!r.json || !json_object_object_get_ex(r.json, "entries", &entries)) {
			http_result_free(&r);
			break;
		}
		size_t n = json_object_array_length(entries);
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(entries, i), *v;
			json_object_object_get_ex(e, "delta_cents", &v);
			sum += json_object_get_int64(v);
			total++;
		}
		long long next = http_json_int(&r, "next_after", -1);
		http_result_free(&r);
		if (next < 0)
			break;
		after = next;
	}
	CHECK(total > 10);
	CHECK_INT(sum, 0);

	test_case("GET /v1/ledger/entries?account= shows one account's movements");
	stack_request(&st, "GET", "/v1/ledger/entries?account=alice&limit=1000", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 200);
	struct json_object *entries;
	long long s = 0;
	if (r.json && json_object_object_get_ex(r.json, "entries", &entries)) {
		for (size_t i = 0; i < json_object_array_length(entries); i++) {
			struct json_object *e = json_object_array_get_idx(entries, i), *v;
			json_object_object_get_ex(e, "account_id", &v);
			CHECK_STR(json_object_get_string(v), "alice");
			json_object_object_get_ex(e, "delta_cents", &v);
			s += json_object_get_int64(v);
		}
	}
	http_result_free(&r);
	CHECK_INT(s, balance_of("alice", NULL));
}

static void test_cgi(void)
{
	struct http_result r;
	test_case("CGI: the same binary answers a CGI request");
	stack_cgi(&st, "GET", "/health", NULL, NULL, &r);
	CHECK_INT(r.status, 200);
	CHECK_STR(http_json_string(&r, "status"), "ok");
	http_result_free(&r);

	test_case("CGI: money moved by CGI is seen through FastCGI");
	long long before = balance_of("alice", NULL);
	stack_cgi(&st, "POST", "/v1/credits/transfer", TEST_ADMIN_TOKEN,
	          "{\"from_account\":\"alice\",\"to_account\":\"cgi-user\",\"amount_usd\":\"0.50\"}", &r);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
	CHECK_INT(balance_of("alice", NULL), before - 50);
	check_ledger(st.db_path);

	test_case("CGI: called as /cgi-bin/ee-api.cgi/v1/... the script name is not part of the route");
	stack_cgi(&st, "GET", "/cgi-bin/ee-api.cgi/v1/balances/cgi-user", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 200);
	CHECK_INT(http_json_int(&r, "balance_cents", -1), 50);
	http_result_free(&r);

	test_case("CGI: errors are the same JSON");
	stack_cgi(&st, "GET", "/v1/balances/cgi-user", "wrong-token", NULL, &r);
	CHECK_INT(r.status, 401);
	CHECK_STR(http_reason(&r), "unauthorized");
	http_result_free(&r);
}

/*
 * cgi-bin/.htaccess: what must never be served, should it land in the web
 * root; decoys are put there to show it.
 */
static void test_apache_refuses_private_files(void)
{
	static const char *const names[] = {"ee-api.env", "control-plane.db", "control-plane.db-wal",
	                                    "ee-api", "README.md", ".htaccess"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		test_case("Apache: GET /%s is refused (403), never served", names[i]);
		char decoy[600], path[80];
		snprintf(decoy, sizeof(decoy), "%s/htdocs/%s", st.dir, names[i]);
		snprintf(path, sizeof(path), "/%s", names[i]);
		FILE *f = strcmp(names[i], ".htaccess") != 0 ? fopen(decoy, "w") : NULL;
		if (f) {
			fputs("EE_DECOY=served\n", f);
			CHECK(fclose(f) == 0);
		}
		struct http_result r;
		stack_request(&st, "GET", path, TEST_ADMIN_TOKEN, NULL, &r);
		CHECK_INT(r.status, 403);
		CHECK(!r.body || (!strstr(r.body, "EE_DECOY") && !strstr(r.body, "RewriteRule")),
		      "the file was served");
		http_result_free(&r);
	}
}

int main(void)
{
	api_mode = stack_api_mode_from_env();
	struct stack_options opt = {.api_mode = api_mode};
	test_case("start %s and ee-api", stack_front_name(api_mode));
	if (stack_start(&st, "api", &opt) != 0) {
		stack_stop(&st);
		return test_finish();
	}
	test_health();
	test_purchase_and_amounts();
	test_transfer();
	test_idempotency();
	test_nodes();
	test_usage_and_settlement();
	test_registry();
	test_registry_shapes();
	test_abuse();
	test_ledger_entries();
	test_cgi();
	if (api_mode == STACK_API_APACHE_CGI)
		test_apache_refuses_private_files();
	test_case("stop cleanly");
	stack_stop(&st);
	return test_finish();
}
