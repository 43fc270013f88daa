/*
 * test_bad_input.c - bad input for every endpoint, through real Caddy and
 * ee-api (FastCGI).  Each row of the tables below is one request that must
 * be refused with the expected status and JSON reason ("error", or "reason"
 * for /v1/resolve) and must leave the database exactly as it was.  Also:
 * Idempotency-Key replays, the same bad requests from many processes at
 * once, what Caddy refuses before ee-api sees it (sent straight to ee-api as
 * CGI), and a stack with no token configured, which must fail closed.
 * With EE_TEST_API_MODE=apache-cgi (tests/run does both) the same rows go
 * through Debian's Apache and cgi-bin/ to ee-api run as CGI instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "client.h"
#include "stack.h"
#include "util.h"

/* ee-api's own body limit for this stack: below Caddy's 1MB, so both limits are reached. */
#define API_MAX_BODY_BYTES 65536
#define STRINGIFY(x) #x
#define TEXT_OF(x) STRINGIFY(x)
#define OVER_API_LIMIT (100 * 1024)
#define OVER_CADDY_LIMIT (2 * 1024 * 1024)
#define CONCURRENT_CLIENTS 8
#define CONCURRENT_ROUNDS 2

#define ADMIN "Bearer " TEST_ADMIN_TOKEN
#define LAUNCHER "Bearer " TEST_LAUNCHER_TOKEN
#define UPTIME "Bearer " TEST_UPTIME_TOKEN
#define NODE_1 "Bearer {node_token}" /* node-1's own token, known once it is registered */
#define JSON "application/json"

#define PURCHASE "/v1/credits/purchase"
#define TRANSFER "/v1/credits/transfer"
#define BALANCE "/v1/balances/funded"
#define USAGE "/v1/usage/report"
#define SETTLE "/v1/settlements/2026-01/finalize"
#define ABUSE "/v1/abuse/reports"
#define DECIDE "/v1/abuse/reports/{report}/authorize" /* the report filed while seeding */
#define REGISTER "/v1/nodes/register"
#define NODE_GET "/v1/nodes/node-1"
#define ENTRIES "/v1/ledger/entries"

/* Long names: identifiers are at most 128 characters (accounts, nodes), 64 (apps, labels). */
#define X16 "xxxxxxxxxxxxxxxx"
#define X64 X16 X16 X16 X16
#define X65 X64 "x"
#define X128 X64 X64
#define X129 X128 "x"
#define X256 X128 X128
#define X1024 X256 X256 X256 X256

/* One period that every endpoint accepts, and the pieces used to break it. */
#define PERIOD_OF(start, end) "\"period_start\":\"" start "\",\"period_end\":\"" end "\""
#define PERIOD PERIOD_OF("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
#define USAGE_FIELDS "\"account_id\":\"funded\",\"node_id\":\"node-1\",\"vcpu_hours\":\"1\""

/* Each endpoint's valid request: a row changes one thing in it, or leaves it as it is. */
#define PURCHASE_BODY "{\"account_id\":\"funded\",\"amount_usd\":\"1\"}"
#define TRANSFER_BODY "{\"from_account\":\"funded\",\"to_account\":\"payee\",\"amount_usd\":\"1\"}"
#define USAGE_BODY "{" USAGE_FIELDS "," PERIOD "}"
#define SETTLE_BODY "{\"node_id\":\"node-1\"," PERIOD "}"
#define REGISTER_BODY "{\"node_id\":\"node-new\",\"price_usd\":\"1\"}"

#define EXPECT(status, reason) .expected_status = (status), .expected_reason = (reason)

struct bad_request {
	const char *name;
	const char *method;
	const char *path;            /* "{report}" becomes the seeded abuse report's id */
	const char *authorization;   /* the whole header value, "{node_token}" expanded; NULL: none */
	const char *content_type;    /* NULL: no Content-Type header */
	const char *body;            /* NULL: no body */
	int expected_status;
	const char *expected_reason; /* "error", or "reason" for /v1/resolve */
	size_t body_len;             /* for a body holding NUL bytes; 0: strlen(body) */
	size_t pad_body_to;          /* the body is followed by spaces up to this many bytes */
	const char *idempotency_key;
	/* Caddy refuses some requests itself: then the status is the same and there is no JSON. */
	bool front_may_answer;
};

static const struct bad_request bad_requests[] = {
	/* Routing: unknown paths and wrong methods (answered before the token is checked). */
	{"GET / is no route", "GET", "/", ADMIN, NULL, NULL, EXPECT(404, "not_found")},
	{"GET /v1 is no route", "GET", "/v1", ADMIN, NULL, NULL, EXPECT(404, "not_found")},
	{"unknown path /v1/unknown", "GET", "/v1/unknown", ADMIN, NULL, NULL, EXPECT(404, "not_found")},
	{"paths are case-sensitive: /V1/apps", "GET", "/V1/apps", ADMIN, NULL, NULL, EXPECT(404, "not_found")},
	{"/v1/credits alone is no route", "POST", "/v1/credits", ADMIN, JSON, "{}", EXPECT(404, "not_found")},
	{"extra segment after purchase", "POST", PURCHASE "/extra", ADMIN, JSON,
	 PURCHASE_BODY, EXPECT(404, "not_found")},
	{"balances without an account", "GET", "/v1/balances", ADMIN, NULL, NULL, EXPECT(404, "not_found")},
	{"balances with an empty account segment", "GET", "/v1/balances/", ADMIN, NULL, NULL,
	 EXPECT(404, "not_found")},
	{"empty segment in the middle: /v1/balances//funded", "GET", "/v1/balances//funded", ADMIN, NULL,
	 NULL, EXPECT(404, "not_found")},
	{"leading empty segment: //health", "GET", "//health", NULL, NULL, NULL, EXPECT(404, "not_found")},
	{"extra segment after an app", "GET", "/v1/apps/some-app/agents", ADMIN, NULL, NULL,
	 EXPECT(404, "not_found")},
	{"abuse decision with an unknown verb", "POST", "/v1/abuse/reports/{report}/deny", ADMIN, JSON,
	 "{\"action\":\"deny\"}", EXPECT(404, "not_found")},
	{"more segments than any route", "GET", "/a/b/c/d/e/f/g/h/i", NULL, NULL, NULL,
	 EXPECT(400, "invalid_path")},
	{"path longer than 2048 bytes", "GET", "/v1/apps/" X1024 X1024 X1024, ADMIN, NULL, NULL,
	 EXPECT(414, "path_too_long")},
	{"DELETE /health", "DELETE", "/health", NULL, NULL, NULL, EXPECT(405, "method_not_allowed")},
	{"lowercase method: get /health", "get", "/health", NULL, NULL, NULL,
	 EXPECT(405, "method_not_allowed")},
	{"POST /health", "POST", "/health", NULL, JSON, "{}", EXPECT(405, "method_not_allowed")},
	{"POST /v1/resolve/{app}", "POST", "/v1/resolve/some-app", NULL, JSON, "{}",
	 EXPECT(405, "method_not_allowed")},
	{"PUT /v1/apps", "PUT", "/v1/apps", ADMIN, JSON, "{}", EXPECT(405, "method_not_allowed")},
	{"POST /v1/apps/{app}", "POST", "/v1/apps/some-app", ADMIN, JSON, "{}",
	 EXPECT(405, "method_not_allowed")},
	{"POST /dashboard", "POST", "/dashboard", ADMIN, JSON, "{}", EXPECT(405, "method_not_allowed")},
	{"GET /v1/credits/purchase", "GET", PURCHASE, ADMIN, NULL, NULL, EXPECT(405, "method_not_allowed")},
	{"PUT /v1/credits/purchase", "PUT", PURCHASE, ADMIN, JSON,
	 PURCHASE_BODY, EXPECT(405, "method_not_allowed")},
	{"OPTIONS /v1/credits/purchase", "OPTIONS", PURCHASE, ADMIN, NULL, NULL,
	 EXPECT(405, "method_not_allowed")},
	{"DELETE /v1/credits/transfer", "DELETE", TRANSFER, ADMIN, NULL, NULL,
	 EXPECT(405, "method_not_allowed")},
	{"POST /v1/balances/{account}", "POST", BALANCE, ADMIN, JSON, "{}",
	 EXPECT(405, "method_not_allowed")},
	{"GET /v1/usage/report", "GET", USAGE, UPTIME, NULL, NULL, EXPECT(405, "method_not_allowed")},
	{"GET /v1/settlements/{period}/finalize", "GET", SETTLE, ADMIN, NULL, NULL,
	 EXPECT(405, "method_not_allowed")},
	{"GET /v1/abuse/reports", "GET", ABUSE, LAUNCHER, NULL, NULL, EXPECT(405, "method_not_allowed")},
	{"GET /v1/abuse/reports/{id}/authorize", "GET", DECIDE, ADMIN, NULL, NULL,
	 EXPECT(405, "method_not_allowed")},
	{"PATCH /v1/nodes/register", "PATCH", REGISTER, ADMIN, JSON,
	 REGISTER_BODY, EXPECT(405, "method_not_allowed")},
	{"POST /v1/nodes/{node}", "POST", NODE_GET, ADMIN, JSON, "{}", EXPECT(405, "method_not_allowed")},
	{"DELETE /v1/nodes/{node}", "DELETE", NODE_GET, ADMIN, NULL, NULL,
	 EXPECT(405, "method_not_allowed")},
	{"POST /v1/ledger/entries", "POST", ENTRIES, ADMIN, JSON, "{}", EXPECT(405, "method_not_allowed")},
	{"GET /v1/nodes/register reads the node named \"register\"", "GET", REGISTER, ADMIN, NULL, NULL,
	 EXPECT(404, "node_not_found")},

	/* Tokens: missing, wrong, malformed, or another endpoint's. */
	{"apps list without a token", "GET", "/v1/apps", NULL, NULL, NULL, EXPECT(401, "unauthorized")},
	{"apps list with a wrong token", "GET", "/v1/apps", "Bearer wrong-token", NULL, NULL,
	 EXPECT(401, "unauthorized")},
	{"apps list with the launcher token", "GET", "/v1/apps", LAUNCHER, NULL, NULL,
	 EXPECT(401, "unauthorized")},
	{"apps list with the admin token in the query instead of the header", "GET",
	 "/v1/apps?access_token=" TEST_ADMIN_TOKEN, NULL, NULL, NULL, EXPECT(401, "unauthorized")},
	{"app without a token", "GET", "/v1/apps/some-app", NULL, NULL, NULL, EXPECT(401, "unauthorized")},
	{"app with the uptime token", "GET", "/v1/apps/some-app", UPTIME, NULL, NULL,
	 EXPECT(401, "unauthorized")},
	{"dashboard without a token", "GET", "/dashboard", NULL, NULL, NULL, EXPECT(401, "unauthorized")},
	{"dashboard with Basic auth of the admin token", "GET", "/dashboard",
	 "Basic YWRtaW46dGVzdC1hZG1pbi10b2tlbi0wMDAwMDAwMDAwMDAwMDAwMDE=", NULL, NULL,
	 EXPECT(401, "unauthorized")},
	{"purchase without a token", "POST", PURCHASE, NULL, JSON,
	 PURCHASE_BODY, EXPECT(401, "unauthorized")},
	{"purchase with a wrong token", "POST", PURCHASE, "Bearer wrong-token", JSON,
	 PURCHASE_BODY, EXPECT(401, "unauthorized")},
	{"purchase with the launcher token", "POST", PURCHASE, LAUNCHER, JSON,
	 PURCHASE_BODY, EXPECT(401, "unauthorized")},
	{"purchase with the uptime token", "POST", PURCHASE, UPTIME, JSON,
	 PURCHASE_BODY, EXPECT(401, "unauthorized")},
	{"purchase with a node's token", "POST", PURCHASE, NODE_1, JSON,
	 PURCHASE_BODY, EXPECT(401, "unauthorized")},
	{"purchase with the admin token as Basic", "POST", PURCHASE, "Basic " TEST_ADMIN_TOKEN, JSON,
	 PURCHASE_BODY, EXPECT(401, "unauthorized")},
	{"purchase with the admin token and no scheme", "POST", PURCHASE, TEST_ADMIN_TOKEN, JSON,
	 PURCHASE_BODY, EXPECT(401, "unauthorized")},
	{"purchase with \"Bearer\" and no token", "POST", PURCHASE, "Bearer", JSON,
	 PURCHASE_BODY, EXPECT(401, "unauthorized")},
	{"purchase with the admin token under another scheme", "POST", PURCHASE,
	 "Token " TEST_ADMIN_TOKEN, JSON, PURCHASE_BODY,
	 EXPECT(401, "unauthorized")},
	{"purchase with the admin token missing its last character", "POST", PURCHASE,
	 "Bearer test-admin-token-00000000000000000", JSON,
	 PURCHASE_BODY, EXPECT(401, "unauthorized")},
	{"purchase with the admin token plus one character", "POST", PURCHASE, ADMIN "1", JSON,
	 PURCHASE_BODY, EXPECT(401, "unauthorized")},
	{"purchase with the admin token and a second word", "POST", PURCHASE, ADMIN " extra", JSON,
	 PURCHASE_BODY, EXPECT(401, "unauthorized")},
	{"purchase with a 4KB token", "POST", PURCHASE, "Bearer " X1024 X1024 X1024 X1024, JSON,
	 PURCHASE_BODY, EXPECT(401, "unauthorized")},
	{"purchase with a wrong token and bad JSON: the token is checked first", "POST", PURCHASE,
	 "Bearer wrong-token", JSON, "{", EXPECT(401, "unauthorized")},
	{"transfer without a token", "POST", TRANSFER, NULL, JSON, TRANSFER_BODY,
	 EXPECT(401, "unauthorized")},
	{"transfer with the uptime token", "POST", TRANSFER, UPTIME, JSON, TRANSFER_BODY,
	 EXPECT(401, "unauthorized")},
	{"balance without a token", "GET", BALANCE, NULL, NULL, NULL, EXPECT(401, "unauthorized")},
	{"balance with the launcher token", "GET", BALANCE, LAUNCHER, NULL, NULL,
	 EXPECT(401, "unauthorized")},
	{"balance with a node's token", "GET", BALANCE, NODE_1, NULL, NULL, EXPECT(401, "unauthorized")},
	{"usage without a token", "POST", USAGE, NULL, JSON, USAGE_BODY, EXPECT(401, "unauthorized")},
	{"usage with a wrong token", "POST", USAGE, "Bearer wrong-token", JSON,
	 USAGE_BODY, EXPECT(401, "unauthorized")},
	{"usage with the launcher token", "POST", USAGE, LAUNCHER, JSON, USAGE_BODY,
	 EXPECT(401, "unauthorized")},
	{"usage with a node's token", "POST", USAGE, NODE_1, JSON, USAGE_BODY,
	 EXPECT(401, "unauthorized")},
	{"settlement without a token", "POST", SETTLE, NULL, JSON, SETTLE_BODY,
	 EXPECT(401, "unauthorized")},
	{"settlement with the uptime token", "POST", SETTLE, UPTIME, JSON,
	 SETTLE_BODY, EXPECT(401, "unauthorized")},
	{"settlement with the launcher token", "POST", SETTLE, LAUNCHER, JSON,
	 SETTLE_BODY, EXPECT(401, "unauthorized")},
	{"abuse report without a token", "POST", ABUSE, NULL, JSON, "{\"node_id\":\"node-1\"}",
	 EXPECT(401, "unauthorized")},
	{"abuse report with the uptime token", "POST", ABUSE, UPTIME, JSON, "{\"node_id\":\"node-1\"}",
	 EXPECT(401, "unauthorized")},
	{"abuse report with a node's token", "POST", ABUSE, NODE_1, JSON, "{\"node_id\":\"node-1\"}",
	 EXPECT(401, "unauthorized")},
	{"abuse decision without a token", "POST", DECIDE, NULL, JSON, "{\"action\":\"deny\"}",
	 EXPECT(401, "unauthorized")},
	{"abuse decision with the launcher token", "POST", DECIDE, LAUNCHER, JSON, "{\"action\":\"deny\"}",
	 EXPECT(401, "unauthorized")},
	{"abuse decision with the uptime token", "POST", DECIDE, UPTIME, JSON, "{\"action\":\"deny\"}",
	 EXPECT(401, "unauthorized")},
	{"node registration without a token", "POST", REGISTER, NULL, JSON,
	 REGISTER_BODY, EXPECT(401, "unauthorized")},
	{"node registration with a wrong token", "POST", REGISTER, "Bearer wrong-token", JSON,
	 REGISTER_BODY, EXPECT(401, "unauthorized")},
	{"node registration with the launcher token", "POST", REGISTER, LAUNCHER, JSON,
	 REGISTER_BODY, EXPECT(401, "unauthorized")},
	{"node registration with the uptime token", "POST", REGISTER, UPTIME, JSON,
	 "{\"node_id\":\"node-1\",\"price_usd\":\"1\"}", EXPECT(401, "unauthorized")},
	{"node update with another node's token", "POST", REGISTER, NODE_1, JSON,
	 "{\"node_id\":\"node-2\",\"price_usd\":\"9\"}", EXPECT(401, "unauthorized")},
	{"node registration of a new node with a node's token", "POST", REGISTER, NODE_1, JSON,
	 REGISTER_BODY, EXPECT(401, "unauthorized")},
	{"node registration without a token and bad JSON: the token is checked first", "POST",
	 REGISTER, NULL, JSON, "{", EXPECT(401, "unauthorized")},
	{"a node setting its own status", "POST", REGISTER, NODE_1, JSON,
	 "{\"node_id\":\"node-1\",\"status\":\"inactive\"}", EXPECT(403, "admin_only_field")},
	{"a node rotating its own token", "POST", REGISTER, NODE_1, JSON,
	 "{\"node_id\":\"node-1\",\"rotate_token\":true}", EXPECT(403, "admin_only_field")},
	{"node lookup without a token", "GET", NODE_GET, NULL, NULL, NULL, EXPECT(401, "unauthorized")},
	{"node lookup with the node's own token", "GET", NODE_GET, NODE_1, NULL, NULL,
	 EXPECT(401, "unauthorized")},
	{"ledger entries without a token", "GET", ENTRIES, NULL, NULL, NULL, EXPECT(401, "unauthorized")},
	{"ledger entries with the uptime token", "GET", ENTRIES, UPTIME, NULL, NULL,
	 EXPECT(401, "unauthorized")},

	/* Wrong content type. */
	{"purchase as text/plain", "POST", PURCHASE, ADMIN, "text/plain",
	 PURCHASE_BODY, EXPECT(415, "unsupported_media_type")},
	/* Caddy reports a missing type as a form, so forms are let through; the body must be JSON. */
	{"purchase as a form", "POST", PURCHASE, ADMIN, "application/x-www-form-urlencoded",
	 "account_id=funded&amount_usd=1", EXPECT(400, "invalid_json")},
	{"purchase as multipart", "POST", PURCHASE, ADMIN, "multipart/form-data; boundary=x",
	 PURCHASE_BODY, EXPECT(415, "unsupported_media_type")},
	{"transfer as application/jsonx", "POST", TRANSFER, ADMIN, "application/jsonx", TRANSFER_BODY,
	 EXPECT(415, "unsupported_media_type")},
	{"usage as text/json", "POST", USAGE, UPTIME, "text/json", USAGE_BODY,
	 EXPECT(415, "unsupported_media_type")},
	{"settlement as multipart", "POST", SETTLE, ADMIN, "multipart/form-data; boundary=x",
	 SETTLE_BODY, EXPECT(415, "unsupported_media_type")},
	{"abuse report as application/json-patch+json", "POST", ABUSE, LAUNCHER,
	 "application/json-patch+json", "{\"node_id\":\"node-1\"}", EXPECT(415, "unsupported_media_type")},
	{"abuse decision as text/plain", "POST", DECIDE, ADMIN, "text/plain", "{\"action\":\"deny\"}",
	 EXPECT(415, "unsupported_media_type")},
	{"node registration as application/xml", "POST", REGISTER, ADMIN, "application/xml",
	 REGISTER_BODY, EXPECT(415, "unsupported_media_type")},

	/* Oversized bodies: a valid request padded with spaces. */
	{"purchase body over ee-api's limit", "POST", PURCHASE, ADMIN, JSON,
	 PURCHASE_BODY, EXPECT(413, "body_too_large"),
	 .pad_body_to = OVER_API_LIMIT},
	{"transfer body over ee-api's limit", "POST", TRANSFER, ADMIN, JSON, TRANSFER_BODY,
	 EXPECT(413, "body_too_large"), .pad_body_to = OVER_API_LIMIT},
	{"usage body over ee-api's limit", "POST", USAGE, UPTIME, JSON, USAGE_BODY,
	 EXPECT(413, "body_too_large"), .pad_body_to = OVER_API_LIMIT},
	{"settlement body over ee-api's limit", "POST", SETTLE, ADMIN, JSON,
	 SETTLE_BODY, EXPECT(413, "body_too_large"),
	 .pad_body_to = OVER_API_LIMIT},
	{"abuse report body over ee-api's limit", "POST", ABUSE, LAUNCHER, JSON,
	 "{\"node_id\":\"node-1\"}", EXPECT(413, "body_too_large"), .pad_body_to = OVER_API_LIMIT},
	{"abuse decision body over ee-api's limit", "POST", DECIDE, ADMIN, JSON, "{\"action\":\"deny\"}",
	 EXPECT(413, "body_too_large"), .pad_body_to = OVER_API_LIMIT},
	{"node registration body over ee-api's limit", "POST", REGISTER, ADMIN, JSON,
	 REGISTER_BODY, EXPECT(413, "body_too_large"),
	 .pad_body_to = OVER_API_LIMIT},
	{"purchase body over Caddy's 1MB limit", "POST", PURCHASE, ADMIN, JSON,
	 PURCHASE_BODY, EXPECT(413, "body_too_large"),
	 .pad_body_to = OVER_CADDY_LIMIT, .front_may_answer = true},
	{"node registration body over Caddy's 1MB limit", "POST", REGISTER, ADMIN, JSON,
	 REGISTER_BODY, EXPECT(413, "body_too_large"),
	 .pad_body_to = OVER_CADDY_LIMIT, .front_may_answer = true},

	/* Idempotency-Key headers ee-api refuses (money-moving POSTs only). */
	{"purchase with an Idempotency-Key holding a space", "POST", PURCHASE, ADMIN, JSON,
	 PURCHASE_BODY, EXPECT(400, "invalid_idempotency_key"),
	 .idempotency_key = "retry 1"},
	{"purchase with an Idempotency-Key of 256 characters", "POST", PURCHASE, ADMIN, JSON,
	 PURCHASE_BODY, EXPECT(400, "invalid_idempotency_key"),
	 .idempotency_key = X256},
	{"purchase with an empty Idempotency-Key", "POST", PURCHASE, ADMIN, JSON,
	 PURCHASE_BODY, EXPECT(400, "invalid_idempotency_key"),
	 .idempotency_key = ""},
	{"transfer with an Idempotency-Key holding a tab", "POST", TRANSFER, ADMIN, JSON, TRANSFER_BODY,
	 EXPECT(400, "invalid_idempotency_key"), .idempotency_key = "retry\t1"},
	{"transfer with a non-ASCII Idempotency-Key", "POST", TRANSFER, ADMIN, JSON, TRANSFER_BODY,
	 EXPECT(400, "invalid_idempotency_key"), .idempotency_key = "cl\xc3\xa9"},
	{"usage with an Idempotency-Key holding a space", "POST", USAGE, UPTIME, JSON,
	 USAGE_BODY, EXPECT(400, "invalid_idempotency_key"),
	 .idempotency_key = "usage 1"},
	{"settlement with an Idempotency-Key of 256 characters", "POST", SETTLE, ADMIN, JSON,
	 SETTLE_BODY, EXPECT(400, "invalid_idempotency_key"),
	 .idempotency_key = X256},

	/* Purchase: wrong types, missing fields, invalid identifiers and amounts. */
	{"purchase: account_id is a number", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":42,\"amount_usd\":\"1\"}", EXPECT(400, "invalid_account_id")},
	{"purchase: account_id is an array", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":[\"funded\"],\"amount_usd\":\"1\"}", EXPECT(400, "invalid_account_id")},
	{"purchase: account_id is an object", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":{\"id\":\"funded\"},\"amount_usd\":\"1\"}", EXPECT(400, "invalid_account_id")},
	{"purchase: account_id is a boolean", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":true,\"amount_usd\":\"1\"}", EXPECT(400, "invalid_account_id")},
	{"purchase: account_id is null", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":null,\"amount_usd\":\"1\"}", EXPECT(400, "missing_account_id")},
	{"purchase: account_id is empty", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"\",\"amount_usd\":\"1\"}", EXPECT(400, "missing_account_id")},
	{"purchase: no account_id", "POST", PURCHASE, ADMIN, JSON, "{\"amount_usd\":\"1\"}",
	 EXPECT(400, "missing_account_id")},
	{"purchase: account_id under another key", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account\":\"funded\",\"amount_usd\":\"1\"}", EXPECT(400, "missing_account_id")},
	{"purchase: no amount", "POST", PURCHASE, ADMIN, JSON, "{\"account_id\":\"funded\"}",
	 EXPECT(400, "missing_amount")},
	{"purchase: an empty object", "POST", PURCHASE, ADMIN, JSON, "{}", EXPECT(400, "missing_account_id")},
	{"purchase: account_id with a space", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"fun ded\",\"amount_usd\":\"1\"}", EXPECT(400, "invalid_account_id")},
	{"purchase: account_id with a slash", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"a/b\",\"amount_usd\":\"1\"}", EXPECT(400, "invalid_account_id")},
	{"purchase: account_id with a non-ASCII letter", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"caf\xc3\xa9\",\"amount_usd\":\"1\"}", EXPECT(400, "invalid_account_id")},
	{"purchase: account_id with an escaped NUL", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\\u0000x\",\"amount_usd\":\"1\"}", EXPECT(400, "invalid_account_id")},
	{"purchase: account_id with a newline", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"fun\\nded\",\"amount_usd\":\"1\"}", EXPECT(400, "invalid_account_id")},
	{"purchase: account_id of 129 characters", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"" X129 "\",\"amount_usd\":\"1\"}", EXPECT(400, "invalid_account_id")},
	{"purchase: to the @mint system account", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"@mint\",\"amount_usd\":\"1\"}", EXPECT(400, "reserved_account")},
	{"purchase: to the @escrow system account", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"@escrow\",\"amount_usd\":\"1\"}", EXPECT(400, "reserved_account")},
	{"purchase: amount_usd is a boolean", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":true}", EXPECT(400, "invalid_amount")},
	{"purchase: amount_usd is an array", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":[1]}", EXPECT(400, "invalid_amount")},
	{"purchase: amount_usd is an object", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":{\"usd\":1}}", EXPECT(400, "invalid_amount")},
	{"purchase: amount_usd is null", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":null}", EXPECT(400, "invalid_amount")},
	{"purchase: amount_usd is empty", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":\"\"}", EXPECT(400, "invalid_amount")},
	{"purchase: amount_usd is zero", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":\"0\"}", EXPECT(400, "invalid_amount")},
	{"purchase: amount_usd is negative", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":-5}", EXPECT(400, "invalid_amount")},
	{"purchase: amount_usd with a decimal comma", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":\"1,50\"}", EXPECT(400, "invalid_amount")},
	{"purchase: amount_usd with a dollar sign", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":\"$1\"}", EXPECT(400, "invalid_amount")},

	/*
	 * Not JSON (RFC 8259), though lenient parsers take it: each body is a
	 * valid purchase plus one ignored field holding the flaw, so only the
	 * parser can refuse it.
	 */
	{"purchase: NaN literal", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":\"1\",\"note\":NaN}", EXPECT(400, "invalid_json")},
	{"purchase: Infinity literal", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":\"1\",\"note\":Infinity}", EXPECT(400, "invalid_json")},
	{"purchase: -Infinity literal", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":\"1\",\"note\":-Infinity}", EXPECT(400, "invalid_json")},
	{"purchase: number ending in a decimal point", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":\"1\",\"note\":1.}", EXPECT(400, "invalid_json")},
	{"purchase: number with a leading zero", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":\"1\",\"note\":01}", EXPECT(400, "invalid_json")},
	{"purchase: hexadecimal number", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":\"1\",\"note\":0x10}", EXPECT(400, "invalid_json")},
	{"purchase: raw newline inside a string", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":\"1\",\"note\":\"a\nb\"}", EXPECT(400, "invalid_json")},
	{"purchase: raw control byte 0x01 inside a string", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":\"1\",\"note\":\"a\x01" "b\"}",
	 EXPECT(400, "invalid_json")},
	{"purchase: invalid UTF-8 inside a string", "POST", PURCHASE, ADMIN, JSON,
	 "{\"account_id\":\"funded\",\"amount_usd\":\"1\",\"note\":\"\xff\xfe\"}",
	 EXPECT(400, "invalid_json")},

	/* Transfer. */
	{"transfer: no from_account", "POST", TRANSFER, ADMIN, JSON,
	 "{\"to_account\":\"payee\",\"amount_usd\":\"1\"}", EXPECT(400, "missing_account")},
	{"transfer: no to_account", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":\"funded\",\"amount_usd\":\"1\"}", EXPECT(400, "missing_account")},
	{"transfer: from_account is null", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":null,\"to_account\":\"payee\",\"amount_usd\":\"1\"}",
	 EXPECT(400, "missing_account")},
	{"transfer: to_account is empty", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":\"funded\",\"to_account\":\"\",\"amount_usd\":\"1\"}",
	 EXPECT(400, "missing_account")},
	{"transfer: no amount", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":\"funded\",\"to_account\":\"payee\"}", EXPECT(400, "missing_amount")},
	{"transfer: from_account is a number", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":7,\"to_account\":\"payee\",\"amount_usd\":\"1\"}",
	 EXPECT(400, "invalid_account")},
	{"transfer: from_account is a boolean", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":false,\"to_account\":\"payee\",\"amount_usd\":\"1\"}",
	 EXPECT(400, "invalid_account")},
	{"transfer: to_account is an array", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":\"funded\",\"to_account\":[\"payee\"],\"amount_usd\":\"1\"}",
	 EXPECT(400, "invalid_account")},
	{"transfer: to_account is an object", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":\"funded\",\"to_account\":{},\"amount_usd\":\"1\"}",
	 EXPECT(400, "invalid_account")},
	{"transfer: to_account with a space", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":\"funded\",\"to_account\":\"pay ee\",\"amount_usd\":\"1\"}",
	 EXPECT(400, "invalid_account")},
	{"transfer: from_account of 129 characters", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":\"" X129 "\",\"to_account\":\"payee\",\"amount_usd\":\"1\"}",
	 EXPECT(400, "invalid_account")},
	{"transfer: from the @mint system account", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":\"@mint\",\"to_account\":\"payee\",\"amount_usd\":\"1\"}",
	 EXPECT(400, "reserved_account")},
	{"transfer: to the @escrow system account", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":\"funded\",\"to_account\":\"@escrow\",\"amount_usd\":\"1\"}",
	 EXPECT(400, "reserved_account")},
	{"transfer: to the same account", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":\"funded\",\"to_account\":\"funded\",\"amount_usd\":\"1\"}",
	 EXPECT(400, "same_account")},
	{"transfer: amount is text", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":\"funded\",\"to_account\":\"payee\",\"amount\":\"abc\"}",
	 EXPECT(400, "invalid_amount")},
	{"transfer: amount_usd is zero", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":\"funded\",\"to_account\":\"payee\",\"amount_usd\":0}",
	 EXPECT(400, "invalid_amount")},
	{"transfer: from an account with no credits", "POST", TRANSFER, ADMIN, JSON,
	 "{\"from_account\":\"penniless\",\"to_account\":\"payee\",\"amount_usd\":\"1\"}",
	 EXPECT(400, "insufficient_funds")},

	/* Usage reports. */
	{"usage: no account_id", "POST", USAGE, UPTIME, JSON,
	 "{\"node_id\":\"node-1\",\"vcpu_hours\":\"1\"," PERIOD "}", EXPECT(400, "missing_fields")},
	{"usage: no node_id", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"funded\",\"vcpu_hours\":\"1\"," PERIOD "}", EXPECT(400, "missing_fields")},
	{"usage: no period_start", "POST", USAGE, UPTIME, JSON,
	 "{" USAGE_FIELDS ",\"period_end\":\"2026-01-02T00:00:00Z\"}", EXPECT(400, "missing_fields")},
	{"usage: no period_end", "POST", USAGE, UPTIME, JSON,
	 "{" USAGE_FIELDS ",\"period_start\":\"2026-01-01T00:00:00Z\"}", EXPECT(400, "missing_fields")},
	{"usage: no vcpu_hours", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"funded\",\"node_id\":\"node-1\"," PERIOD "}", EXPECT(400, "missing_fields")},
	{"usage: account_id is empty", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"\",\"node_id\":\"node-1\",\"vcpu_hours\":\"1\"," PERIOD "}",
	 EXPECT(400, "missing_fields")},
	{"usage: node_id is null", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"funded\",\"node_id\":null,\"vcpu_hours\":\"1\"," PERIOD "}",
	 EXPECT(400, "missing_fields")},
	{"usage: vcpu_hours is null", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"funded\",\"node_id\":\"node-1\",\"vcpu_hours\":null," PERIOD "}",
	 EXPECT(400, "missing_fields")},
	{"usage: account_id is a number", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":42,\"node_id\":\"node-1\",\"vcpu_hours\":\"1\"," PERIOD "}",
	 EXPECT(400, "invalid_account_id")},
	{"usage: account_id with a space", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"fun ded\",\"node_id\":\"node-1\",\"vcpu_hours\":\"1\"," PERIOD "}",
	 EXPECT(400, "invalid_account_id")},
	{"usage: charged to the @escrow system account", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"@escrow\",\"node_id\":\"node-1\",\"vcpu_hours\":\"1\"," PERIOD "}",
	 EXPECT(400, "reserved_account")},
	{"usage: node_id is an array", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"funded\",\"node_id\":[\"node-1\"],\"vcpu_hours\":\"1\"," PERIOD "}",
	 EXPECT(400, "invalid_node_id")},
	{"usage: node_id of 129 characters", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"funded\",\"node_id\":\"" X129 "\",\"vcpu_hours\":\"1\"," PERIOD "}",
	 EXPECT(400, "invalid_node_id")},
	{"usage: period_start is not a time", "POST", USAGE, UPTIME, JSON,
	 "{" USAGE_FIELDS "," PERIOD_OF("yesterday", "2026-01-02T00:00:00Z") "}",
	 EXPECT(400, "invalid_period")},
	{"usage: period_start is a number", "POST", USAGE, UPTIME, JSON,
	 "{" USAGE_FIELDS ",\"period_start\":1767225600,\"period_end\":\"2026-01-02T00:00:00Z\"}",
	 EXPECT(400, "invalid_period")},
	{"usage: period_end on February 30", "POST", USAGE, UPTIME, JSON,
	 "{" USAGE_FIELDS "," PERIOD_OF("2026-01-01T00:00:00Z", "2026-02-30T00:00:00Z") "}",
	 EXPECT(400, "invalid_period")},
	{"usage: period_end without a time zone", "POST", USAGE, UPTIME, JSON,
	 "{" USAGE_FIELDS "," PERIOD_OF("2026-01-01T00:00:00Z", "2026-01-02T00:00:00") "}",
	 EXPECT(400, "invalid_period")},
	{"usage: period_start before 1970", "POST", USAGE, UPTIME, JSON,
	 "{" USAGE_FIELDS "," PERIOD_OF("1969-12-31T00:00:00Z", "2026-01-02T00:00:00Z") "}",
	 EXPECT(400, "invalid_period")},
	{"usage: period ends when it starts", "POST", USAGE, UPTIME, JSON,
	 "{" USAGE_FIELDS "," PERIOD_OF("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z") "}",
	 EXPECT(400, "invalid_period")},
	{"usage: period ends before it starts", "POST", USAGE, UPTIME, JSON,
	 "{" USAGE_FIELDS "," PERIOD_OF("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z") "}",
	 EXPECT(400, "invalid_period")},
	{"usage: vcpu_hours is zero", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"funded\",\"node_id\":\"node-1\",\"vcpu_hours\":\"0\"," PERIOD "}",
	 EXPECT(400, "invalid_vcpu_hours")},
	{"usage: vcpu_hours is negative", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"funded\",\"node_id\":\"node-1\",\"vcpu_hours\":-1," PERIOD "}",
	 EXPECT(400, "invalid_vcpu_hours")},
	{"usage: vcpu_hours is text", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"funded\",\"node_id\":\"node-1\",\"vcpu_hours\":\"two\"," PERIOD "}",
	 EXPECT(400, "invalid_vcpu_hours")},
	{"usage: vcpu_hours is a boolean", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"funded\",\"node_id\":\"node-1\",\"vcpu_hours\":true," PERIOD "}",
	 EXPECT(400, "invalid_vcpu_hours")},
	{"usage: vcpu_hours is an object", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"funded\",\"node_id\":\"node-1\",\"vcpu_hours\":{}," PERIOD "}",
	 EXPECT(400, "invalid_vcpu_hours")},
	{"usage: for an unknown node", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"funded\",\"node_id\":\"ghost-node\",\"vcpu_hours\":\"1\"," PERIOD "}",
	 EXPECT(400, "node_price_missing")},
	{"usage: for a node without a price", "POST", USAGE, UPTIME, JSON,
	 "{\"account_id\":\"funded\",\"node_id\":\"node-2\",\"vcpu_hours\":\"1\"," PERIOD "}",
	 EXPECT(400, "node_price_missing")},

	/* Settlements. */
	{"settlement: no node_id", "POST", SETTLE, ADMIN, JSON, "{" PERIOD "}", EXPECT(400, "missing_fields")},
	{"settlement: node_id is empty", "POST", SETTLE, ADMIN, JSON, "{\"node_id\":\"\"," PERIOD "}",
	 EXPECT(400, "missing_fields")},
	{"settlement: no period_start", "POST", SETTLE, ADMIN, JSON,
	 "{\"node_id\":\"node-1\",\"period_end\":\"2026-01-02T00:00:00Z\"}", EXPECT(400, "missing_fields")},
	{"settlement: no period_end", "POST", SETTLE, ADMIN, JSON,
	 "{\"node_id\":\"node-1\",\"period_start\":\"2026-01-01T00:00:00Z\"}", EXPECT(400, "missing_fields")},
	{"settlement: node_id is a number", "POST", SETTLE, ADMIN, JSON, "{\"node_id\":7," PERIOD "}",
	 EXPECT(400, "invalid_node_id")},
	{"settlement: node_id with a space", "POST", SETTLE, ADMIN, JSON,
	 "{\"node_id\":\"node 1\"," PERIOD "}", EXPECT(400, "invalid_node_id")},
	{"settlement: period_start at hour 25", "POST", SETTLE, ADMIN, JSON,
	 "{\"node_id\":\"node-1\"," PERIOD_OF("2026-01-01T25:00:00Z", "2026-01-02T00:00:00Z") "}",
	 EXPECT(400, "invalid_period")},
	{"settlement: period_end is an object", "POST", SETTLE, ADMIN, JSON,
	 "{\"node_id\":\"node-1\",\"period_start\":\"2026-01-01T00:00:00Z\",\"period_end\":{}}",
	 EXPECT(400, "invalid_period")},
	{"settlement: period ends before it starts", "POST", SETTLE, ADMIN, JSON,
	 "{\"node_id\":\"node-1\"," PERIOD_OF("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z") "}",
	 EXPECT(400, "invalid_period")},
	{"settlement: period ends when it starts", "POST", SETTLE, ADMIN, JSON,
	 "{\"node_id\":\"node-1\"," PERIOD_OF("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z") "}",
	 EXPECT(400, "invalid_period")},
	{"settlement: period not ended yet", "POST", SETTLE, ADMIN, JSON,
	 "{\"node_id\":\"node-1\"," PERIOD_OF("2026-01-01T00:00:00Z", "2999-01-01T00:00:00Z") "}",
	 EXPECT(409, "period_not_ended")},
	{"settlement: period label with a space", "POST", "/v1/settlements/2026%2001/finalize", ADMIN, JSON,
	 SETTLE_BODY, EXPECT(400, "invalid_period")},
	{"settlement: period label of 65 characters", "POST", "/v1/settlements/" X65 "/finalize", ADMIN,
	 JSON, SETTLE_BODY, EXPECT(400, "invalid_period")},
	{"settlement: period label starting with @", "POST", "/v1/settlements/%40mint/finalize", ADMIN,
	 JSON, SETTLE_BODY, EXPECT(400, "invalid_period")},
	{"settlement: period label holding an encoded slash", "POST", "/v1/settlements/2026%2F01/finalize",
	 ADMIN, JSON, SETTLE_BODY, EXPECT(400, "invalid_path")},

	/* Abuse reports. */
	{"abuse report: no node_id", "POST", ABUSE, LAUNCHER, JSON, "{\"reason\":\"spam\"}",
	 EXPECT(400, "missing_node_id")},
	{"abuse report: node_id is empty", "POST", ABUSE, LAUNCHER, JSON, "{\"node_id\":\"\"}",
	 EXPECT(400, "missing_node_id")},
	{"abuse report: node_id is null", "POST", ABUSE, LAUNCHER, JSON, "{\"node_id\":null}",
	 EXPECT(400, "missing_node_id")},
	{"abuse report: node_id is a number", "POST", ABUSE, LAUNCHER, JSON, "{\"node_id\":1}",
	 EXPECT(400, "invalid_node_id")},
	{"abuse report: node_id is an object", "POST", ABUSE, LAUNCHER, JSON, "{\"node_id\":{}}",
	 EXPECT(400, "invalid_node_id")},
	{"abuse report: node_id with a slash", "POST", ABUSE, LAUNCHER, JSON, "{\"node_id\":\"node/1\"}",
	 EXPECT(400, "invalid_node_id")},
	{"abuse report: node_id of 129 characters", "POST", ABUSE, LAUNCHER, JSON,
	 "{\"node_id\":\"" X129 "\"}", EXPECT(400, "invalid_node_id")},
	{"abuse report: unknown node", "POST", ABUSE, LAUNCHER, JSON, "{\"node_id\":\"ghost-node\"}",
	 EXPECT(404, "node_not_found")},
	{"abuse report: period_start is not a time", "POST", ABUSE, LAUNCHER, JSON,
	 "{\"node_id\":\"node-1\",\"period_start\":\"soon\"}", EXPECT(400, "invalid_period")},
	{"abuse report: period_end is a number", "POST", ABUSE, LAUNCHER, JSON,
	 "{\"node_id\":\"node-1\",\"period_end\":1767225600}", EXPECT(400, "invalid_period")},
	{"abuse report: period ends before it starts", "POST", ABUSE, LAUNCHER, JSON,
	 "{\"node_id\":\"node-1\"," PERIOD_OF("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z") "}",
	 EXPECT(400, "invalid_period")},
	{"abuse report: period ends when it starts", "POST", ABUSE, LAUNCHER, JSON,
	 "{\"node_id\":\"node-1\"," PERIOD_OF("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z") "}",
	 EXPECT(400, "invalid_period")},
	{"abuse report: reason is a number", "POST", ABUSE, LAUNCHER, JSON,
	 "{\"node_id\":\"node-1\",\"reason\":5}", EXPECT(400, "invalid_reason")},
	{"abuse report: reason longer than 1000 characters", "POST", ABUSE, LAUNCHER, JSON,
	 "{\"node_id\":\"node-1\",\"reason\":\"" X1024 "\"}", EXPECT(400, "invalid_reason")},
	{"abuse report: reason with a control character", "POST", ABUSE, LAUNCHER, JSON,
	 "{\"node_id\":\"node-1\",\"reason\":\"spam\\u0007\"}", EXPECT(400, "invalid_reason")},
	{"abuse report: reported_by is an array", "POST", ABUSE, LAUNCHER, JSON,
	 "{\"node_id\":\"node-1\",\"reported_by\":[\"ops\"]}", EXPECT(400, "invalid_reported_by")},
	{"abuse report: reported_by of 129 characters", "POST", ABUSE, LAUNCHER, JSON,
	 "{\"node_id\":\"node-1\",\"reported_by\":\"" X129 "\"}", EXPECT(400, "invalid_reported_by")},

	/* Abuse decisions. */
	{"abuse decision: unknown report id", "POST", "/v1/abuse/reports/no-such-report/authorize", ADMIN,
	 JSON, "{\"action\":\"deny\"}", EXPECT(400, "report_not_found")},
	{"abuse decision: report id \"..\" (percent-encoded)", "POST", "/v1/abuse/reports/%2E%2E/authorize",
	 ADMIN, JSON, "{\"action\":\"deny\"}", EXPECT(400, "invalid_report_id")},
	{"abuse decision: report id with a space", "POST", "/v1/abuse/reports/bad%20id/authorize", ADMIN,
	 JSON, "{\"action\":\"deny\"}", EXPECT(400, "invalid_report_id")},
	{"abuse decision: report id of 65 characters", "POST", "/v1/abuse/reports/" X65 "/authorize",
	 ADMIN, JSON, "{\"action\":\"deny\"}", EXPECT(400, "invalid_report_id")},
	{"abuse decision: report id holding an encoded slash", "POST",
	 "/v1/abuse/reports/{report}%2Fx/authorize", ADMIN, JSON, "{\"action\":\"deny\"}",
	 EXPECT(400, "invalid_path")},
	{"abuse decision: unknown action", "POST", DECIDE, ADMIN, JSON, "{\"action\":\"maybe\"}",
	 EXPECT(400, "invalid_action")},
	{"abuse decision: action in capitals", "POST", DECIDE, ADMIN, JSON, "{\"action\":\"DENY\"}",
	 EXPECT(400, "invalid_action")},
	{"abuse decision: action is a number", "POST", DECIDE, ADMIN, JSON, "{\"action\":1}",
	 EXPECT(400, "invalid_action")},
	{"abuse decision: action longer than 16 characters", "POST", DECIDE, ADMIN, JSON,
	 "{\"action\":\"authorize-authorize\"}", EXPECT(400, "invalid_action")},
	{"abuse decision: authorized_by is an object", "POST", DECIDE, ADMIN, JSON,
	 "{\"action\":\"deny\",\"authorized_by\":{}}", EXPECT(400, "invalid_authorized_by")},
	{"abuse decision: authorized_by of 129 characters", "POST", DECIDE, ADMIN, JSON,
	 "{\"action\":\"deny\",\"authorized_by\":\"" X129 "\"}", EXPECT(400, "invalid_authorized_by")},

	/* Node registration. */
	{"node registration: no node_id", "POST", REGISTER, ADMIN, JSON, "{\"price_usd\":\"1\"}",
	 EXPECT(400, "missing_node_id")},
	{"node registration: node_id is empty", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"\",\"price_usd\":\"1\"}", EXPECT(400, "missing_node_id")},
	{"node registration: node_id is a number", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":5,\"price_usd\":\"1\"}", EXPECT(400, "invalid_node_id")},
	{"node registration: node_id is a boolean", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":true,\"price_usd\":\"1\"}", EXPECT(400, "invalid_node_id")},
	{"node registration: node_id with a space", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"node new\",\"price_usd\":\"1\"}", EXPECT(400, "invalid_node_id")},
	{"node registration: node_id with a non-ASCII letter", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"n\xc3\xb6" "de\",\"price_usd\":\"1\"}", EXPECT(400, "invalid_node_id")},
	{"node registration: node_id of 129 characters", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"" X129 "\",\"price_usd\":\"1\"}", EXPECT(400, "invalid_node_id")},
	{"node registration: price is text", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"node-new\",\"price_usd\":\"cheap\"}", EXPECT(400, "invalid_amount")},
	{"node registration: price is negative", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"node-new\",\"price_usd_per_vcpu_hour\":-1}", EXPECT(400, "invalid_amount")},
	{"node registration: price is a boolean", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"node-new\",\"price_usd_per_vcpu_hour\":true}", EXPECT(400, "invalid_amount")},
	{"node registration: stake is an array", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"node-new\",\"stake_amount_usd\":[100]}", EXPECT(400, "invalid_amount")},
	{"node registration: stake is negative", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"node-new\",\"stake_amount_usd\":\"-5\"}", EXPECT(400, "invalid_amount")},
	{"node registration: stake_tier is a number", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"node-new\",\"stake_tier\":3}", EXPECT(400, "invalid_stake_tier")},
	{"node registration: stake_tier of 65 characters", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"node-new\",\"stake_tier\":\"" X65 "\"}", EXPECT(400, "invalid_stake_tier")},
	{"node registration: stake_tier with a newline", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"node-new\",\"stake_tier\":\"gold\\n\"}", EXPECT(400, "invalid_stake_tier")},
	{"node registration: unknown status", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"node-new\",\"status\":\"paused\"}", EXPECT(400, "invalid_status")},
	{"node registration: status is a number", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"node-new\",\"status\":1}", EXPECT(400, "invalid_status")},
	{"node registration: allow_update is text", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"node-1\",\"allow_update\":\"yes\",\"price_usd\":\"2\"}",
	 EXPECT(400, "invalid_allow_update")},
	{"node registration: rotate_token is a number", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"node-1\",\"allow_update\":true,\"rotate_token\":1}",
	 EXPECT(400, "invalid_rotate_token")},
	{"node registration: existing node without allow_update", "POST", REGISTER, ADMIN, JSON,
	 "{\"node_id\":\"node-1\",\"price_usd\":\"2\"}", EXPECT(400, "node_exists")},

	/* Identifiers and tricks in path segments. */
	{"balance: account with an encoded space", "GET", "/v1/balances/fun%20ded", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_account")},
	{"balance: account starting with @ that is no system account", "GET", "/v1/balances/%40evil",
	 ADMIN, NULL, NULL, EXPECT(400, "invalid_account")},
	{"balance: account with a non-ASCII letter", "GET", "/v1/balances/caf%C3%A9", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_account")},
	{"balance: account of 129 characters", "GET", "/v1/balances/" X129, ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_account")},
	{"balance: encoded slash in the account", "GET", "/v1/balances/funded%2F..%2F..%2Fhealth", ADMIN,
	 NULL, NULL, EXPECT(400, "invalid_path")},
	{"balance: encoded lowercase slash in the account", "GET", "/v1/balances/a%2fb", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_path")},
	{"balance: encoded newline in the account", "GET", "/v1/balances/fun%0Aded", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_path")},
	{"balance: encoded DEL in the account", "GET", "/v1/balances/fun%7Fded", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_path")},
	{"balance: encoded NUL in the account", "GET", "/v1/balances/funded%00x", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_path"), .front_may_answer = true},
	{"balance: malformed percent escape", "GET", "/v1/balances/%zz", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_path"), .front_may_answer = true},
	{"balance: truncated percent escape", "GET", "/v1/balances/funded%2", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_path"), .front_may_answer = true},
	{"app: name with a colon", "GET", "/v1/apps/bad:name", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_app_name")},
	{"app: name with an encoded space", "GET", "/v1/apps/some%20app", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_app_name")},
	{"app: name of 65 characters", "GET", "/v1/apps/" X65, ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_app_name")},
	{"app: unknown", "GET", "/v1/apps/no-such-app", ADMIN, NULL, NULL, EXPECT(404, "unknown_app")},
	{"app: \"..\" (percent-encoded) is no name", "GET", "/v1/apps/%2E%2E", ADMIN, NULL,
	 NULL, EXPECT(400, "invalid_app_name")},
	{"app: encoded slash", "GET", "/v1/apps/some%2Fapp", ADMIN, NULL, NULL, EXPECT(400, "invalid_path")},
	{"resolve: name with a colon", "GET", "/v1/resolve/bad:name", NULL, NULL, NULL,
	 EXPECT(400, "invalid_app_name")},
	{"resolve: name with an encoded space", "GET", "/v1/resolve/some%20app", NULL, NULL, NULL,
	 EXPECT(400, "invalid_app_name")},
	{"resolve: name of 65 characters", "GET", "/v1/resolve/" X65, NULL, NULL, NULL,
	 EXPECT(400, "invalid_app_name")},
	{"resolve: unknown app", "GET", "/v1/resolve/no-such-app", NULL, NULL, NULL,
	 EXPECT(404, "unknown_app")},
	{"resolve: \"..\" (percent-encoded) is no name", "GET", "/v1/resolve/%2E%2E", NULL,
	 NULL, NULL, EXPECT(400, "invalid_app_name")},
	{"resolve: encoded slash", "GET", "/v1/resolve/some%2F..%2Fapp", NULL, NULL, NULL,
	 EXPECT(400, "invalid_path")},
	{"node: id with an encoded space", "GET", "/v1/nodes/node%201", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_node_id")},
	{"node: id of 129 characters", "GET", "/v1/nodes/" X129, ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_node_id")},
	{"node: unknown", "GET", "/v1/nodes/ghost-node", ADMIN, NULL, NULL, EXPECT(404, "node_not_found")},
	{"node: \"..\" (percent-encoded) is no id", "GET", "/v1/nodes/%2E%2E", ADMIN, NULL,
	 NULL, EXPECT(400, "invalid_node_id")},
	{"node: encoded slash", "GET", "/v1/nodes/node-1%2F", ADMIN, NULL, NULL, EXPECT(400, "invalid_path")},

	/* Query parameters of /v1/ledger/entries. */
	{"entries: limit=0", "GET", ENTRIES "?limit=0", ADMIN, NULL, NULL, EXPECT(400, "invalid_query")},
	{"entries: limit=1001", "GET", ENTRIES "?limit=1001", ADMIN, NULL, NULL, EXPECT(400, "invalid_query")},
	{"entries: limit=-1", "GET", ENTRIES "?limit=-1", ADMIN, NULL, NULL, EXPECT(400, "invalid_query")},
	{"entries: limit is empty", "GET", ENTRIES "?limit=", ADMIN, NULL, NULL, EXPECT(400, "invalid_query")},
	{"entries: limit is a word", "GET", ENTRIES "?limit=ten", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_query")},
	{"entries: limit with trailing letters", "GET", ENTRIES "?limit=10abc", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_query")},
	{"entries: limit in exponent form", "GET", ENTRIES "?limit=1e2", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_query")},
	{"entries: limit of 30 digits", "GET", ENTRIES "?limit=100000000000000000000000000000", ADMIN,
	 NULL, NULL, EXPECT(400, "invalid_query")},
	{"entries: after=-1", "GET", ENTRIES "?after=-1", ADMIN, NULL, NULL, EXPECT(400, "invalid_query")},
	{"entries: after is a word", "GET", ENTRIES "?after=start", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_query")},
	{"entries: after is a fraction", "GET", ENTRIES "?after=1.5", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_query")},
	{"entries: after beyond 64 bits", "GET", ENTRIES "?after=99999999999999999999", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_query")},
	{"entries: account is empty", "GET", ENTRIES "?account=", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_query")},
	{"entries: account with a bad character", "GET", ENTRIES "?account=fun!ded", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_query")},
	{"entries: account of 129 characters", "GET", ENTRIES "?account=" X129, ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_query")},
	{"entries: account with a malformed escape", "GET", ENTRIES "?account=%ZZ", ADMIN, NULL, NULL,
	 EXPECT(400, "invalid_query")},
	{"entries: a good account and a bad limit", "GET", ENTRIES "?account=funded&limit=0", ADMIN, NULL,
	 NULL, EXPECT(400, "invalid_query")},
};

#define BAD_REQUEST_COUNT (sizeof(bad_requests) / sizeof(bad_requests[0]))

/*
 * Malformed JSON, for every endpoint that takes a body: each endpoint's
 * request below is accepted as it stands (the last test case shows it), so
 * each malformed copy is refused for its malformation alone.
 */
struct json_endpoint {
	const char *label;
	const char *path;
	const char *authorization;
	const char *valid_body;
};

static const struct json_endpoint json_endpoints[] = {
	{"purchase", PURCHASE, ADMIN, PURCHASE_BODY},
	{"transfer", TRANSFER, ADMIN, TRANSFER_BODY},
	{"usage", USAGE, UPTIME, USAGE_BODY},
	{"settlement", SETTLE, ADMIN, SETTLE_BODY},
	{"abuse report", ABUSE, LAUNCHER, "{\"node_id\":\"node-1\",\"reason\":\"spam\"}"},
	{"abuse decision", DECIDE, ADMIN, "{\"action\":\"deny\"}"},
	{"node registration", REGISTER, ADMIN, REGISTER_BODY},
};

#define JSON_ENDPOINT_COUNT (sizeof(json_endpoints) / sizeof(json_endpoints[0]))

enum malformation {
	MALFORM_TRUNCATED,
	MALFORM_TRAILING_GARBAGE,
	MALFORM_TWO_OBJECTS,
	MALFORM_SINGLE_QUOTES,
	MALFORM_TRAILING_COMMA,
	MALFORM_COMMENT,
	MALFORM_TOP_LEVEL_ARRAY,
	MALFORM_TOP_LEVEL_STRING,
	MALFORM_TOP_LEVEL_NUMBER,
	MALFORM_TOP_LEVEL_NULL,
	MALFORM_EMPTY,
	MALFORM_WHITESPACE_ONLY,
	MALFORM_NUL_IN_KEY,
	MALFORM_NUL_AFTER_BODY,
	MALFORM_NESTED_TOO_DEEP,
	MALFORM_COUNT
};

static const char *const malformation_names[MALFORM_COUNT] = {
	[MALFORM_TRUNCATED] = "body truncated by one byte",
	[MALFORM_TRAILING_GARBAGE] = "trailing garbage after the object",
	[MALFORM_TWO_OBJECTS] = "the object twice",
	[MALFORM_SINGLE_QUOTES] = "single quotes instead of double",
	[MALFORM_TRAILING_COMMA] = "trailing comma",
	[MALFORM_COMMENT] = "a comment before the object",
	[MALFORM_TOP_LEVEL_ARRAY] = "the object inside an array",
	[MALFORM_TOP_LEVEL_STRING] = "a string instead of an object",
	[MALFORM_TOP_LEVEL_NUMBER] = "a number instead of an object",
	[MALFORM_TOP_LEVEL_NULL] = "null instead of an object",
	[MALFORM_EMPTY] = "empty body",
	[MALFORM_WHITESPACE_ONLY] = "whitespace only",
	[MALFORM_NUL_IN_KEY] = "a NUL byte inside the first key",
	[MALFORM_NUL_AFTER_BODY] = "a NUL byte after the object",
	[MALFORM_NESTED_TOO_DEEP] = "an extra field nested 20 deep",
};

/* Nesting beyond EE_JSON_MAX_DEPTH (16). */
#define TOO_DEEP 20

/* A malformed JSON request built from a json_endpoint; owns its name and body. */
struct malformed_request {
	struct bad_request request;
	char name[128];
	char *body;
};

static struct stack st;
static enum stack_api_mode api_mode;
static char node_token[80];
static char report_id[80];
static struct malformed_request malformed[JSON_ENDPOINT_COUNT * MALFORM_COUNT];
#define MALFORMED_COUNT (sizeof(malformed) / sizeof(malformed[0]))

/* Copies template into out, replacing "{report}" and "{node_token}" by the seeded values. */
static void expand(const char *template, char *out, size_t out_size)
{
	struct buf b;
	buf_init(&b);
	for (const char *p = template; *p;) {
		if (strncmp(p, "{report}", 8) == 0) {
			buf_puts(&b, report_id);
			p += 8;
		} else if (strncmp(p, "{node_token}", 12) == 0) {
			buf_puts(&b, node_token);
			p += 12;
		} else {
			buf_append(&b, p++, 1);
		}
	}
	snprintf(out, out_size, "%s", b.data ? b.data : "");
	buf_free(&b);
}

/* Builds the malformed copy of valid; returns its length, the text in *out (malloc'd). */
static size_t malform(const char *valid, enum malformation how, char **out)
{
	size_t n = strlen(valid);
	struct buf b;
	buf_init(&b);
	switch (how) {
	case MALFORM_TRUNCATED:
		buf_append(&b, valid, n - 1);
		break;
	case MALFORM_TRAILING_GARBAGE:
		buf_printf(&b, "%s x", valid);
		break;
	case MALFORM_TWO_OBJECTS:
		buf_printf(&b, "%s%s", valid, valid);
		break;
	case MALFORM_SINGLE_QUOTES:
		for (size_t i = 0; i < n; i++)
			buf_append(&b, valid[i] == '"' ? "'" : &valid[i], 1);
		break;
	case MALFORM_TRAILING_COMMA:
		buf_append(&b, valid, n - 1);
		buf_puts(&b, ",}");
		break;
	case MALFORM_COMMENT:
		buf_printf(&b, "/* note */%s", valid);
		break;
	case MALFORM_TOP_LEVEL_ARRAY:
		buf_printf(&b, "[%s]", valid);
		break;
	case MALFORM_TOP_LEVEL_STRING:
		buf_puts(&b, "\"funded\"");
		break;
	case MALFORM_TOP_LEVEL_NUMBER:
		buf_puts(&b, "42");
		break;
	case MALFORM_TOP_LEVEL_NULL:
		buf_puts(&b, "null");
		break;
	case MALFORM_EMPTY:
		buf_puts(&b, "");
		break;
	case MALFORM_WHITESPACE_ONLY:
		buf_puts(&b, " \r\n\t ");
		break;
	case MALFORM_NUL_IN_KEY:
		/* {"ac\0count_id": ...: a raw control byte is not allowed inside a JSON string. */
		buf_append(&b, valid, 4);
		buf_append(&b, "\0", 1);
		buf_append(&b, valid + 4, n - 4);
		break;
	case MALFORM_NUL_AFTER_BODY:
		buf_append(&b, valid, n);
		buf_append(&b, "\0", 1);
		break;
	case MALFORM_NESTED_TOO_DEEP:
		buf_append(&b, valid, n - 1);
		buf_puts(&b, ",\"padding\":");
		for (int i = 0; i < TOO_DEEP; i++)
			buf_puts(&b, "[");
		buf_puts(&b, "1");
		for (int i = 0; i < TOO_DEEP; i++)
			buf_puts(&b, "]");
		buf_puts(&b, "}");
		break;
	case MALFORM_COUNT:
		break;
	}
	if (!b.data)
		buf_puts(&b, "");
	*out = b.data;
	return b.len;
}

static void build_malformed_requests(void)
{
	size_t k = 0;
	for (size_t e = 0; e < JSON_ENDPOINT_COUNT; e++) {
		for (int how = 0; how < MALFORM_COUNT; how++, k++) {
			struct malformed_request *m = &malformed[k];
			snprintf(m->name, sizeof(m->name), "%s: %s", json_endpoints[e].label,
			         malformation_names[how]);
			size_t len = malform(json_endpoints[e].valid_body, how, &m->body);
			m->request = (struct bad_request){
				.name = m->name,
				.method = "POST",
				.path = json_endpoints[e].path,
				.authorization = json_endpoints[e].authorization,
				.content_type = JSON,
				.body = m->body,
				.body_len = len,
				.expected_status = 400,
				.expected_reason = "invalid_json",
			};
		}
	}
}

static void free_malformed_requests(void)
{
	for (size_t k = 0; k < MALFORMED_COUNT; k++)
		free(malformed[k].body);
}

/* Sends one row through Caddy. */
static int send_bad_request(struct stack *s, const struct bad_request *row, struct http_result *out)
{
	char path[4096], authorization[8192], auth_header[8300], type_header[200], key_header[400];
	const char *headers[5];
	int n = 0;
	expand(row->path, path, sizeof(path));
	if (row->authorization) {
		expand(row->authorization, authorization, sizeof(authorization));
		snprintf(auth_header, sizeof(auth_header), "Authorization: %s", authorization);
		headers[n++] = auth_header;
	}
	/* "Content-Type:" with no value stops libcurl adding its form type to a body. */
	snprintf(type_header, sizeof(type_header), "Content-Type:%s%s", row->content_type ? " " : "",
	         row->content_type ? row->content_type : "");
	headers[n++] = type_header;
	if (row->idempotency_key) {
		/* "Name;" is how libcurl sends a header with an empty value. */
		if (*row->idempotency_key)
			snprintf(key_header, sizeof(key_header), "Idempotency-Key: %s", row->idempotency_key);
		else
			snprintf(key_header, sizeof(key_header), "Idempotency-Key;");
		headers[n++] = key_header;
	}
	headers[n] = NULL;

	size_t len = row->body ? (row->body_len ? row->body_len : strlen(row->body)) : 0;
	if (!row->body || row->pad_body_to <= len)
		return stack_request_ex(s, row->method, path, headers, row->body, len, out);
	char *padded = malloc(row->pad_body_to);
	if (!padded) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	memcpy(padded, row->body, len);
	memset(padded + len, ' ', row->pad_body_to - len);
	int rc = stack_request_ex(s, row->method, path, headers, padded, row->pad_body_to, out);
	free(padded);
	return rc;
}

/*
 * Apache answers a path holding an encoded slash (AllowEncodedSlashes is
 * off, and a shared host cannot turn it on from .htaccess) or an encoded
 * NUL (always) with its own 404 page, before any CGI program runs.
 */
static bool apache_refuses(const char *path)
{
	return strstr(path, "%2F") || strstr(path, "%2f") || strstr(path, "%00");
}

/* True when the answer is what the row expects; otherwise why not, in why. */
static bool answer_is_expected(const struct bad_request *row, const struct http_result *r,
                               char *why, size_t why_size)
{
	const char *reason = http_reason(r);
	if (r->status == row->expected_status && reason && strcmp(reason, row->expected_reason) == 0)
		return true;
	if (api_mode == STACK_API_APACHE_CGI && apache_refuses(row->path) && r->status == 404 &&
	    !reason)
		return true;
	/* Caddy may refuse first: with its Go server's plain text (no JSON reason at
	 * all) or through caddy/Caddyfile's handle_errors (a generic JSON reason). */
	if (row->front_may_answer && r->status == row->expected_status &&
	    (!reason || strcmp(reason, "bad_request") == 0 || strcmp(reason, "body_too_large") == 0))
		return true;
	snprintf(why, why_size, "got %ld %.300s, want %d %s", r->status,
	         r->body && r->body_len ? r->body : "(no body)", row->expected_status,
	         row->expected_reason);
	return false;
}

/* One row as one test case: the expected answer, and the database untouched. */
static bool run_bad_request(const struct bad_request *row)
{
	test_case("%s -> %d %s", row->name, row->expected_status, row->expected_reason);
	char before[65], after[65], why[512];
	CHECK(db_digest(st.db_path, before) == 0);
	struct http_result r;
	send_bad_request(&st, row, &r);
	if (!answer_is_expected(row, &r, why, sizeof(why)))
		test_fail(__FILE__, __LINE__, "%s %s: %s", row->method, row->path, why);
	http_result_free(&r);
	CHECK(db_digest(st.db_path, after) == 0);
	if (strcmp(before, after) != 0)
		test_fail(__FILE__, __LINE__, "%s %s changed the database", row->method, row->path);
	return !test_case_failed();
}

static void post_ok(const char *path, const char *token, const char *body, struct http_result *r)
{
	stack_request(&st, "POST", path, token, body, r);
	if (r->status != 200)
		test_fail(__FILE__, __LINE__, "POST %s %s -> %ld %s", path, body, r->status, r->body);
}

/* What the rows need: a funded account, two nodes (one priced), an abuse report. */
static void seed(void)
{
	struct http_result r;
	test_case("seed: a funded account, two nodes and an abuse report");
	post_ok(PURCHASE, TEST_ADMIN_TOKEN, "{\"account_id\":\"funded\",\"amount_usd\":\"100\"}", &r);
	http_result_free(&r);
	post_ok(REGISTER, TEST_ADMIN_TOKEN,
	        "{\"node_id\":\"node-1\",\"price_usd_per_vcpu_hour\":\"0.25\",\"stake_amount_usd\":\"100\"}",
	        &r);
	const char *token = http_json_string(&r, "node_token");
	CHECK(token && strlen(token) == 64);
	snprintf(node_token, sizeof(node_token), "%s", token ? token : "none");
	http_result_free(&r);
	post_ok(REGISTER, TEST_ADMIN_TOKEN, "{\"node_id\":\"node-2\"}", &r);
	http_result_free(&r);
	post_ok(ABUSE, TEST_LAUNCHER_TOKEN, "{\"node_id\":\"node-1\",\"reason\":\"seed\"}", &r);
	const char *id = http_json_string(&r, "report_id");
	CHECK(id != NULL);
	snprintf(report_id, sizeof(report_id), "%s", id ? id : "none");
	http_result_free(&r);
	check_ledger(st.db_path);
}

/*
 * A reused Idempotency-Key: with another body it is refused and moves
 * nothing; with the same body it replays the first answer and moves nothing.
 */
static void test_replays(void)
{
	static const struct {
		const char *label, *path, *token, *key, *first_body, *other_body;
	} replays[] = {
		{"purchase", PURCHASE, TEST_ADMIN_TOKEN, "replay-purchase",
		 "{\"account_id\":\"replayed\",\"amount_usd\":\"2\"}",
		 "{\"account_id\":\"replayed\",\"amount_usd\":\"3\"}"},
		{"transfer", TRANSFER, TEST_ADMIN_TOKEN, "replay-transfer",
		 TRANSFER_BODY,
		 "{\"from_account\":\"funded\",\"to_account\":\"other-payee\",\"amount_usd\":\"1\"}"},
		{"usage", USAGE, TEST_UPTIME_TOKEN, "replay-usage", USAGE_BODY,
		 "{\"account_id\":\"funded\",\"node_id\":\"node-1\",\"vcpu_hours\":\"2\"," PERIOD "}"},
		{"settlement", SETTLE, TEST_ADMIN_TOKEN, "replay-settlement",
		 SETTLE_BODY,
		 "{\"node_id\":\"node-2\"," PERIOD "}"},
	};
	for (size_t i = 0; i < sizeof(replays) / sizeof(replays[0]); i++) {
		char auth[200], key[200];
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", replays[i].token);
		snprintf(key, sizeof(key), "Idempotency-Key: %s", replays[i].key);
		const char *headers[] = {auth, "Content-Type: application/json", key, NULL};
		const char *first_body = replays[i].first_body, *other_body = replays[i].other_body;
		struct http_result first, other, again;

		test_case("replay %s: the first request with the key succeeds", replays[i].label);
		stack_request_ex(&st, "POST", replays[i].path, headers, first_body, strlen(first_body), &first);
		CHECK_INT(first.status, 200);
		check_ledger(st.db_path);

		test_case("replay %s: the key with another body -> 422 idempotency_key_reused, nothing moves",
		          replays[i].label);
		char before[65], after[65];
		db_digest(st.db_path, before);
		stack_request_ex(&st, "POST", replays[i].path, headers, other_body, strlen(other_body), &other);
		CHECK_INT(other.status, 422);
		CHECK_STR(http_reason(&other), "idempotency_key_reused");
		db_digest(st.db_path, after);
		CHECK_STR(after, before);

		test_case("replay %s: the key with the first body replays the first answer, nothing moves",
		          replays[i].label);
		stack_request_ex(&st, "POST", replays[i].path, headers, first_body, strlen(first_body), &again);
		CHECK_INT(again.status, 200);
		CHECK_STR(again.body, first.body);
		char replayed[16] = "";
		CHECK(http_header(&again, "Idempotent-Replayed", replayed, sizeof(replayed)));
		CHECK_STR(replayed, "true");
		db_digest(st.db_path, after);
		CHECK_STR(after, before);
		http_result_free(&first);
		http_result_free(&other);
		http_result_free(&again);
		check_ledger(st.db_path);
	}
}

/* What one concurrent client saw. */
struct concurrent_tally {
	int sent;
	int unexpected;
	char first_unexpected[400];
};

static void concurrent_client(int id, const struct bad_request *const *rows, size_t count, int fd)
{
	struct concurrent_tally t = {0};
	for (int round = 0; round < CONCURRENT_ROUNDS; round++) {
		/* Each client walks its own share, in an order that differs from round to round. */
		for (size_t i = (size_t)id; i < count; i += CONCURRENT_CLIENTS) {
			size_t k = round % 2 ? count - 1 - i : i;
			struct http_result r;
			char why[512];
			send_bad_request(&st, rows[k], &r);
			t.sent++;
			if (!answer_is_expected(rows[k], &r, why, sizeof(why)) && t.unexpected++ == 0)
				snprintf(t.first_unexpected, sizeof(t.first_unexpected), "%.120s: %.260s",
				         rows[k]->name, why);
			http_result_free(&r);
		}
	}
	if (write(fd, &t, sizeof(t)) != (ssize_t)sizeof(t))
		_exit(3);
	_exit(0);
}

/*
 * The rows that passed one at a time, sent again by several processes at
 * once: every answer is the same, and the database still does not change.
 * (Rows that already failed alone are reported there, not again here.)
 */
static void test_concurrent_bad_requests(const struct bad_request *const *rows, size_t count)
{
	test_case("%d processes send %zu bad requests at once: every answer as expected, database unchanged",
	          CONCURRENT_CLIENTS, count * CONCURRENT_ROUNDS);
	char before[65], after[65];
	CHECK(db_digest(st.db_path, before) == 0);
	int pipes[CONCURRENT_CLIENTS][2];
	pid_t pids[CONCURRENT_CLIENTS];
	fflush(NULL);
	for (int c = 0; c < CONCURRENT_CLIENTS; c++) {
		pids[c] = -1;
		if (pipe(pipes[c]) != 0) {
			test_fail(__FILE__, __LINE__, "pipe failed");
			continue;
		}
		pids[c] = fork();
		if (pids[c] == 0) {
			close(pipes[c][0]);
			concurrent_client(c, rows, count, pipes[c][1]);
		}
		close(pipes[c][1]);
	}
	int sent = 0;
	for (int c = 0; c < CONCURRENT_CLIENTS; c++) {
		if (pids[c] < 0)
			continue;
		struct concurrent_tally t;
		ssize_t got = read(pipes[c][0], &t, sizeof(t));
		close(pipes[c][0]);
		int status = 0;
		waitpid(pids[c], &status, 0);
		if (got != (ssize_t)sizeof(t) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			test_fail(__FILE__, __LINE__, "client %d did not finish (status %d)", c, status);
			continue;
		}
		sent += t.sent;
		if (t.unexpected)
			test_fail(__FILE__, __LINE__, "client %d: %d unexpected answers, first: %s", c,
			          t.unexpected, t.first_unexpected);
	}
	CHECK_INT(sent, (long long)count * CONCURRENT_ROUNDS);
	CHECK(db_digest(st.db_path, after) == 0);
	CHECK_STR(after, before);
	check_ledger(st.db_path);
}

/* A 405 names the methods the path does take. */
static void test_allow_header(void)
{
	static const struct {
		const char *method, *path, *allow;
	} cases[] = {
		{"GET", PURCHASE, "POST"},
		{"PUT", PURCHASE, "POST"},
		{"DELETE", TRANSFER, "POST"},
		{"PATCH", USAGE, "POST"},
		{"POST", "/health", "GET, HEAD"},
		{"DELETE", BALANCE, "GET, HEAD"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("405 for %s %s has Allow: %s", cases[i].method, cases[i].path, cases[i].allow);
		const char *headers[] = {"Authorization: Bearer " TEST_ADMIN_TOKEN, NULL};
		struct http_result r;
		stack_request_ex(&st, cases[i].method, cases[i].path, headers, NULL, 0, &r);
		CHECK_INT(r.status, 405);
		char allow[64] = "";
		CHECK(http_header(&r, "Allow", allow, sizeof(allow)));
		CHECK_STR(allow, cases[i].allow);
		http_result_free(&r);
	}
}

/* What Caddy refuses (or normalises) before ee-api sees it, sent to ee-api directly as CGI. */
static void test_straight_to_api(void)
{
	static const struct {
		const char *name, *path, *token;
		int expected_status;
		const char *expected_reason;
	} cases[] = {
		/* HTTP drops whitespace around a header value, so only CGI can deliver this one. */
		{"admin token with a trailing space", BALANCE, TEST_ADMIN_TOKEN " ", 401, "unauthorized"},
		{"encoded NUL in a path segment", "/v1/balances/funded%00x", TEST_ADMIN_TOKEN, 400,
		 "invalid_path"},
		{"malformed percent escape", "/v1/balances/%zz", TEST_ADMIN_TOKEN, 400, "invalid_path"},
		{"truncated percent escape", "/v1/balances/funded%2", TEST_ADMIN_TOKEN, 400, "invalid_path"},
		{"literal \"..\" segment", "/v1/nodes/../balances/funded", TEST_ADMIN_TOKEN, 404,
		 "not_found"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("CGI: %s -> %d %s", cases[i].name, cases[i].expected_status,
		          cases[i].expected_reason);
		char before[65], after[65];
		db_digest(st.db_path, before);
		struct http_result r;
		stack_cgi(&st, "GET", cases[i].path, cases[i].token, NULL, &r);
		CHECK_INT(r.status, cases[i].expected_status);
		CHECK_STR(http_reason(&r), cases[i].expected_reason);
		http_result_free(&r);
		db_digest(st.db_path, after);
		CHECK_STR(after, before);
	}
}

/* Limits that must not refuse good input, next to the rows that show they refuse bad input. */
static void test_limits_accept_good_input(void)
{
	struct http_result r;
	test_case("JSON nested exactly 16 deep is accepted (the limit is \"deeper than 16\")");
	struct buf body;
	buf_init(&body);
	/* The object is level 1, so 15 arrays inside it make 16 levels. */
	buf_puts(&body, "{\"account_id\":\"deep\",\"amount_usd\":\"1\",\"padding\":");
	for (int i = 0; i < 15; i++)
		buf_puts(&body, "[");
	buf_puts(&body, "1");
	for (int i = 0; i < 15; i++)
		buf_puts(&body, "]");
	buf_puts(&body, "}");
	stack_request(&st, "POST", PURCHASE, TEST_ADMIN_TOKEN, body.data, &r);
	if (r.status != 200)
		test_fail(__FILE__, __LINE__, "-> %ld %s", r.status, r.body);
	http_result_free(&r);
	buf_free(&body);

	test_case("a node price of \"0.00\" is accepted like \"0\" (zero prices are allowed)");
	stack_request(&st, "POST", REGISTER, TEST_ADMIN_TOKEN,
	              "{\"node_id\":\"free-node\",\"price_usd\":\"0.00\"}", &r);
	if (r.status != 200)
		test_fail(__FILE__, __LINE__, "-> %ld %s", r.status, r.body);
	http_result_free(&r);

	test_case("a percent-encoded account in the ledger query is decoded (org%%3Aalice)");
	post_ok(PURCHASE, TEST_ADMIN_TOKEN, "{\"account_id\":\"org:alice\",\"amount_usd\":\"1\"}", &r);
	http_result_free(&r);
	stack_request(&st, "GET", ENTRIES "?account=org%3Aalice", TEST_ADMIN_TOKEN, NULL, &r);
	if (r.status != 200)
		test_fail(__FILE__, __LINE__, "-> %ld %s", r.status, r.body);
	http_result_free(&r);
	check_ledger(st.db_path);
}

/* Each endpoint's request that the malformed copies were built from is itself accepted. */
static void test_valid_bodies_accepted(void)
{
	for (size_t e = 0; e < JSON_ENDPOINT_COUNT; e++) {
		test_case("%s: the unbroken request is accepted", json_endpoints[e].label);
		char path[256];
		expand(json_endpoints[e].path, path, sizeof(path));
		const char *token = json_endpoints[e].authorization + strlen("Bearer ");
		struct http_result r;
		post_ok(path, token, json_endpoints[e].valid_body, &r);
		http_result_free(&r);
		check_ledger(st.db_path);
	}
}

/* With no token configured, every protected endpoint fails closed; public ones still work. */
static void test_no_tokens_configured(void)
{
	static const struct {
		const char *method, *path, *body;
	} protected_endpoints[] = {
		{"GET", "/v1/apps", NULL},
		{"GET", "/v1/apps/some-app", NULL},
		{"GET", "/dashboard", NULL},
		{"POST", PURCHASE, PURCHASE_BODY},
		{"POST", TRANSFER, TRANSFER_BODY},
		{"GET", BALANCE, NULL},
		{"POST", USAGE, USAGE_BODY},
		{"POST", SETTLE, SETTLE_BODY},
		{"POST", ABUSE, "{\"node_id\":\"node-1\"}"},
		{"POST", "/v1/abuse/reports/some-report/authorize", "{\"action\":\"authorize\"}"},
		{"POST", REGISTER, "{\"node_id\":\"node-1\",\"price_usd\":\"1\"}"},
		{"GET", NODE_GET, NULL},
		{"GET", ENTRIES, NULL},
	};
	struct stack closed;
	struct stack_options opt = {.api_mode = api_mode, .no_tokens = true};
	test_case("no tokens: start %s and ee-api with no token configured",
	          stack_front_name(api_mode));
	if (stack_start(&closed, "bad-input-closed", &opt) != 0) {
		stack_stop(&closed);
		return;
	}
	char before[65], after[65];
	CHECK(db_digest(closed.db_path, before) == 0);
	static const char *const presented[] = {NULL, TEST_ADMIN_TOKEN, ""};
	for (size_t i = 0; i < sizeof(protected_endpoints) / sizeof(protected_endpoints[0]); i++) {
		for (size_t t = 0; t < sizeof(presented) / sizeof(presented[0]); t++) {
			test_case("no tokens: %s %s %s -> 503 auth_not_configured", protected_endpoints[i].method,
			          protected_endpoints[i].path,
			          !presented[t] ? "without a token" : *presented[t] ? "with the test admin token"
			                                                           : "with an empty token");
			struct http_result r;
			stack_request(&closed, protected_endpoints[i].method, protected_endpoints[i].path,
			              presented[t], protected_endpoints[i].body, &r);
			CHECK_INT(r.status, 503);
			CHECK_STR(http_reason(&r), "auth_not_configured");
			http_result_free(&r);
		}
	}
	/* Failing closed comes first: not even the body is looked at. */
	for (size_t i = 0; i < sizeof(protected_endpoints) / sizeof(protected_endpoints[0]); i++) {
		if (!protected_endpoints[i].body)
			continue;
		test_case("no tokens: %s %s with bad JSON -> 503 auth_not_configured",
		          protected_endpoints[i].method, protected_endpoints[i].path);
		struct http_result r;
		stack_request(&closed, protected_endpoints[i].method, protected_endpoints[i].path, NULL,
		              "{", &r);
		CHECK_INT(r.status, 503);
		CHECK_STR(http_reason(&r), "auth_not_configured");
		http_result_free(&r);
	}
	test_case("no tokens: /health still answers");
	struct http_result r;
	stack_request(&closed, "GET", "/health", NULL, NULL, &r);
	CHECK_INT(r.status, 200);
	CHECK_STR(http_json_string(&r, "status"), "ok");
	http_result_free(&r);

	test_case("no tokens: /v1/resolve still answers (404 unknown_app)");
	stack_request(&closed, "GET", "/v1/resolve/some-app", NULL, NULL, &r);
	CHECK_INT(r.status, 404);
	CHECK_STR(http_reason(&r), "unknown_app");
	http_result_free(&r);

	test_case("no tokens: the database did not change");
	CHECK(db_digest(closed.db_path, after) == 0);
	CHECK_STR(after, before);
	check_ledger(closed.db_path);
	stack_stop(&closed);
}

int main(void)
{
	/* Hundreds of wrong tokens from one client: the limit on them is test_auth_limit's. */
	static const char *const env[] = {"EE_MAX_BODY_BYTES=" TEXT_OF(API_MAX_BODY_BYTES),
	                                  "EE_AUTH_FAIL_LIMIT=0", NULL};
	_Static_assert(OVER_API_LIMIT > API_MAX_BODY_BYTES && OVER_API_LIMIT < 1000 * 1000,
	               "reaches ee-api's limit, not Caddy's");
	api_mode = stack_api_mode_from_env();
	struct stack_options opt = {.api_mode = api_mode, .env = env};
	test_case("start %s and ee-api", stack_front_name(api_mode));
	if (stack_start(&st, "bad-input", &opt) != 0) {
		stack_stop(&st);
		return test_finish();
	}
	seed();
	build_malformed_requests();

	const struct bad_request *passed[BAD_REQUEST_COUNT + MALFORMED_COUNT];
	size_t passed_count = 0;
	for (size_t i = 0; i < BAD_REQUEST_COUNT; i++) {
		if (run_bad_request(&bad_requests[i]))
			passed[passed_count++] = &bad_requests[i];
	}
	for (size_t i = 0; i < MALFORMED_COUNT; i++) {
		if (run_bad_request(&malformed[i].request))
			passed[passed_count++] = &malformed[i].request;
	}
	test_case("ledger invariants hold after every bad request");
	check_ledger(st.db_path);

	test_concurrent_bad_requests(passed, passed_count);
	test_allow_header();
	test_straight_to_api();
	test_replays();
	test_limits_accept_good_input();
	test_valid_bodies_accepted();

	test_case("stop cleanly");
	check_ledger(st.db_path);
	stack_stop(&st);
	free_malformed_requests();
	test_no_tokens_configured();
	return test_finish();
}
