/*
 * test_settlement.c - the settlement rules of DESIGN.md section 3 through the
 * API: one node per failing reason (health_miss, attest_miss,
 * abuse_authorized, stake_missing, attestation_invalid, health_fail,
 * node_inactive, node_not_found) and one that passes.  A failed period
 * returns the locked credits to the user, a passed one pays the provider,
 * and finalizing any period twice moves nothing the second time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "client.h"
#include "nodes.h"
#include "stack.h"
#include "timeutil.h"

static struct stack st;

#define PERIOD_START "2026-03-01T00:00:00Z"
#define PERIOD_END "2026-03-02T00:00:00Z"
#define INSIDE_MS INT64_C(1772366400000)  /* 2026-03-01T12:00:00Z */
#define OUTSIDE_MS INT64_C(1772496000000) /* 2026-03-03T00:00:00Z */

static void post(const char *path, const char *token, const char *body, int want)
{
	struct http_result r;
	stack_request(&st, "POST", path, token, body, &r);
	if (r.status != want)
		test_fail(__FILE__, __LINE__, "POST %s %s -> %ld %s", path, body, r.status, r.body);
	http_result_free(&r);
}

/* A priced, staked, attested and healthy node with one user's usage in the period. */
static void prepare(const char *node, const char *user, bool staked)
{
	char body[512];
	snprintf(body, sizeof(body),
	         "{\"node_id\":\"%s\",\"price_usd\":\"1.00\"%s}", node,
	         staked ? ",\"stake_amount_usd\":\"50\"" : "");
	post("/v1/nodes/register", TEST_ADMIN_TOKEN, body, 200);
	snprintf(body, sizeof(body), "{\"account_id\":\"%s\",\"amount_usd\":\"10\"}", user);
	post("/v1/credits/purchase", TEST_ADMIN_TOKEN, body, 200);
	struct ee_db *db = stack_db(&st);
	struct ee_error err;
	if (db) {
		int64_t now = time_now_ms();
		CHECK(nodes_mark_attestation(db, node, "valid", now, &err) == 0);
		CHECK(nodes_mark_health(db, node, "pass", now, &err) == 0);
		/* A miss outside the period never counts against it. */
		CHECK(nodes_record_event(db, node, "health_miss", "timeout", OUTSIDE_MS, &err) == 0);
		db_close(db);
	}
	snprintf(body, sizeof(body),
	         "{\"account_id\":\"%s\",\"node_id\":\"%s\",\"vcpu_hours\":\"2.5\","
	         "\"period_start\":\"" PERIOD_START "\",\"period_end\":\"" PERIOD_END "\"}",
	         user, node);
	post("/v1/usage/report", TEST_UPTIME_TOKEN, body, 200);
}

static void finalize(const char *node, struct http_result *r)
{
	char body[256];
	snprintf(body, sizeof(body),
	         "{\"node_id\":\"%s\",\"period_start\":\"" PERIOD_START "\",\"period_end\":\"" PERIOD_END "\"}",
	         node);
	stack_request(&st, "POST", "/v1/settlements/2026-03-01/finalize", TEST_ADMIN_TOKEN, body, r);
}

static bool has_reason(const struct http_result *r, const char *reason)
{
	struct json_object *reasons;
	if (!r->json || !json_object_object_get_ex(r->json, "reasons", &reasons))
		return false;
	for (size_t i = 0; i < json_object_array_length(reasons); i++) {
		if (strcmp(json_object_get_string(json_object_array_get_idx(reasons, i)), reason) == 0)
			return true;
	}
	return false;
}

static int reason_count(const struct http_result *r)
{
	struct json_object *reasons;
	if (!r->json || !json_object_object_get_ex(r->json, "reasons", &reasons))
		return -1;
	return (int)json_object_array_length(reasons);
}

/* Settles, checks the single reason and the refund, then settles again. */
static void expect_failed(const char *node, const char *user, const char *reason)
{
	struct http_result r;
	finalize(node, &r);
	CHECK_INT(r.status, 200);
	CHECK(!http_json_bool(&r, "eligible", true));
	CHECK(has_reason(&r, reason), "reasons: %s", r.body);
	CHECK_INT(reason_count(&r), 1);
	CHECK_INT(http_json_int(&r, "failed", -1), 1);
	CHECK_INT(http_json_int(&r, "settled", -1), 0);
	CHECK_INT(http_json_int(&r, "failed_cents", -1), 250);
	http_result_free(&r);
	CHECK_INT(stack_balance(&st, user, NULL), 1000);
	CHECK_INT(stack_balance(&st, node, NULL), 0);
	check_ledger(st.db_path);

	finalize(node, &r);
	CHECK_INT(r.status, 200);
	CHECK_INT(http_json_int(&r, "failed", -1), 0);
	CHECK_INT(http_json_int(&r, "settled", -1), 0);
	http_result_free(&r);
	CHECK_INT(stack_balance(&st, user, NULL), 1000);
	check_ledger(st.db_path);
}

static struct ee_db *db_or_fail(void)
{
	struct ee_db *db = stack_db(&st);
	CHECK(db != NULL);
	return db;
}

int main(void)
{
	test_case("start Caddy and ee-api");
	if (stack_start(&st, "settlement", NULL) != 0)
		return test_finish();
	struct ee_error err;
	struct ee_db *db;

	test_case("pass: the provider is paid, twice moves nothing");
	prepare("node-pass", "user-pass", true);
	struct http_result r;
	finalize("node-pass", &r);
	CHECK(http_json_bool(&r, "eligible", false), "%s", r.body);
	CHECK_INT(reason_count(&r), 0);
	CHECK_INT(http_json_int(&r, "settled", -1), 1);
	CHECK_INT(http_json_int(&r, "settled_cents", -1), 250);
	http_result_free(&r);
	CHECK_INT(stack_balance(&st, "node-pass", NULL), 250);
	CHECK_INT(stack_balance(&st, "user-pass", NULL), 750);
	finalize("node-pass", &r);
	CHECK_INT(http_json_int(&r, "settled", -1), 0);
	http_result_free(&r);
	CHECK_INT(stack_balance(&st, "node-pass", NULL), 250);
	check_ledger(st.db_path);

	test_case("health_miss inside the period fails it");
	prepare("node-hm", "user-hm", true);
	if ((db = db_or_fail())) {
		CHECK(nodes_record_event(db, "node-hm", "health_miss", "timeout", INSIDE_MS, &err) == 0);
		db_close(db);
	}
	expect_failed("node-hm", "user-hm", "health_miss");

	test_case("attest_miss inside the period fails it");
	prepare("node-am", "user-am", true);
	if ((db = db_or_fail())) {
		CHECK(nodes_record_event(db, "node-am", "attest_miss", "timeout", INSIDE_MS, &err) == 0);
		db_close(db);
	}
	expect_failed("node-am", "user-am", "attest_miss");

	test_case("an authorized abuse report covering the period fails it");
	prepare("node-ab", "user-ab", true);
	stack_request(&st, "POST", "/v1/abuse/reports", TEST_LAUNCHER_TOKEN,
	              "{\"node_id\":\"node-ab\",\"period_start\":\"2026-03-01T06:00:00Z\","
	              "\"period_end\":\"2026-03-01T07:00:00Z\"}", &r);
	CHECK_INT(r.status, 200);
	char path[160];
	snprintf(path, sizeof(path), "/v1/abuse/reports/%s/authorize",
	         http_json_string(&r, "report_id") ? http_json_string(&r, "report_id") : "x");
	http_result_free(&r);
	post(path, TEST_ADMIN_TOKEN, "{\"action\":\"authorize\"}", 200);
	expect_failed("node-ab", "user-ab", "abuse_authorized");

	test_case("a pending abuse report does not fail the period");
	prepare("node-ap", "user-ap", true);
	post("/v1/abuse/reports", TEST_LAUNCHER_TOKEN, "{\"node_id\":\"node-ap\"}", 200);
	finalize("node-ap", &r);
	CHECK(http_json_bool(&r, "eligible", false), "%s", r.body);
	http_result_free(&r);
	check_ledger(st.db_path);

	test_case("stake_missing fails it");
	prepare("node-sm", "user-sm", false);
	expect_failed("node-sm", "user-sm", "stake_missing");

	test_case("attestation_invalid fails it");
	prepare("node-ai", "user-ai", true);
	if ((db = db_or_fail())) {
		CHECK(nodes_mark_attestation(db, "node-ai", "invalid", time_now_ms(), &err) == 0);
		db_close(db);
	}
	expect_failed("node-ai", "user-ai", "attestation_invalid");

	test_case("health_fail fails it");
	prepare("node-hf", "user-hf", true);
	if ((db = db_or_fail())) {
		CHECK(nodes_mark_health(db, "node-hf", "fail", time_now_ms(), &err) == 0);
		db_close(db);
	}
	expect_failed("node-hf", "user-hf", "health_fail");

	test_case("node_inactive fails it");
	prepare("node-in", "user-in", true);
	post("/v1/nodes/register", TEST_ADMIN_TOKEN,
	     "{\"node_id\":\"node-in\",\"allow_update\":true,\"status\":\"inactive\"}", 200);
	expect_failed("node-in", "user-in", "node_inactive");

	test_case("node_not_found: nothing to settle, nothing moves");
	long long mint = stack_balance(&st, "@mint", NULL);
	finalize("node-ghost", &r);
	CHECK_INT(r.status, 200);
	CHECK(!http_json_bool(&r, "eligible", true));
	CHECK(has_reason(&r, "node_not_found"));
	CHECK_INT(http_json_int(&r, "settled", -1), 0);
	CHECK_INT(http_json_int(&r, "failed", -1), 0);
	http_result_free(&r);
	CHECK_INT(stack_balance(&st, "@mint", NULL), mint);
	check_ledger(st.db_path);

	test_case("several failing reasons are all listed");
	prepare("node-multi", "user-multi", false);
	if ((db = db_or_fail())) {
		CHECK(nodes_record_event(db, "node-multi", "health_miss", "disconnect", INSIDE_MS, &err) == 0);
		CHECK(nodes_record_event(db, "node-multi", "attest_miss", "timeout", INSIDE_MS, &err) == 0);
		CHECK(nodes_mark_health(db, "node-multi", "fail", time_now_ms(), &err) == 0);
		db_close(db);
	}
	finalize("node-multi", &r);
	CHECK(has_reason(&r, "health_miss") && has_reason(&r, "attest_miss") &&
	      has_reason(&r, "stake_missing") && has_reason(&r, "health_fail"), "%s", r.body);
	CHECK_INT(reason_count(&r), 4);
	http_result_free(&r);
	CHECK_INT(stack_balance(&st, "user-multi", NULL), 1000);
	check_ledger(st.db_path);

	test_case("stop cleanly");
	stack_stop(&st);
	return test_finish();
}
