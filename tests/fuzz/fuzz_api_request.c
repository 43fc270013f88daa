/*
 * fuzz_api_request.c - libFuzzer target for the whole ee-api request path
 * without a network: router.c (percent-decoding of path segments, routing,
 * tokens, JSON bodies, Idempotency-Key, transactions), every handler, and
 * lib/ under them, against one SQLite database per process.
 *
 * An input is up to FUZZ_MAX_REQUESTS requests separated by a line "%%".
 * Each request is lines, as a FastCGI front end would hand them over:
 *     METHOD
 *     TARGET            path[?query], the REQUEST_URI; "{report}" stands for
 *                       the last abuse report id issued
 *     AUTHORIZATION     "-" for none; "@admin", "@uptime", "@launcher" and
 *                       "@node" (the last node token issued) expand to
 *                       "Bearer <token>"; anything else is sent as it is
 *     CONTENT-TYPE      "-" for none
 *     IDEMPOTENCY-KEY   "-" for none
 *     BODY              everything after, bytes as they are
 * Missing lines are absent headers and an empty body.  Like a FastCGI
 * parameter, a header ends at its first NUL; the body may hold NULs.
 *
 * Checks, aborting on any failure:
 *   - the status is one a client can act on (200, 400, 401, 403, 404, 405,
 *     409, 413, 414, 415, 422): a 500, or a 503 from a healthy database, is
 *     a finding;
 *   - a JSON response is one JSON object, and no response buffer ran out
 *     of memory;
 *   - a request answered with an error, and any GET, committed no change
 *     to the database (SQLite's commit and update hooks watch), and no
 *     request leaves a transaction open;
 *   - every FUZZ_CHECK_EVERY requests, ledger_check_invariants passes;
 *   - nothing crashes, reads out of bounds or leaks (ASan, UBSan, LSan).
 *
 * The database lives in a fresh temporary directory, removed at a clean
 * exit (kept, and its path printed, after a finding).  It starts with a few
 * apps, agents, nodes and a funded account (see fixture_load) so that deep
 * paths are reachable from a single request.
 * It keeps what earlier inputs wrote, so a finding is reproduced by running
 * its input on its own, or, if it needs state, the run that led to it.
 * With EE_FUZZ_TRACE set, each request and its answer go to stderr.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "api.h"
#include "commit.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "jsonutil.h"
#include "ledger.h"
#include "log.h"
#include "nodes.h"
#include "registry.h"
#include "timeutil.h"

#define FUZZ_MAX_INPUT 65536
#define FUZZ_MAX_REQUESTS 8
#define FUZZ_CHECK_EVERY 64
#define FUZZ_MAX_BODY "4096" /* small, so that 413 is reachable within the input limit */

#define FUZZ_ADMIN_TOKEN "fuzz-admin-token-00000000000000001"
#define FUZZ_UPTIME_TOKEN "fuzz-uptime-token-0000000000000002"
#define FUZZ_LAUNCHER_TOKEN "fuzz-launcher-token-00000000000003"

static const char separator[] = "\n%%\n";

static char tmp_dir[512];
static char db_path[600];
static struct ee_config cfg;
static struct api_context ctx;
static struct commit_group commits; /* one thread: every batch holds one request */
static char node_token[NODE_TOKEN_LEN + 1];
static char report_id[LEDGER_ID_LEN + 1] = "none";
static unsigned long requests_done;
static bool trace;

/* Rows written since the last commit or rollback, and whether a commit kept any. */
static long pending_rows;
static bool committed_change;

static void on_update(void *arg, int op, const char *db_name, const char *table, sqlite3_int64 row)
{
	(void)arg, (void)op, (void)db_name, (void)table, (void)row;
	pending_rows++;
}

static int on_commit(void *arg)
{
	(void)arg;
	if (pending_rows > 0)
		committed_change = true;
	pending_rows = 0;
	return 0;
}

static void on_rollback(void *arg)
{
	(void)arg;
	pending_rows = 0;
}

static void cleanup(void)
{
	db_close(ctx.db);
	ctx.db = NULL;
	config_free(&cfg);
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char path[640];
		snprintf(path, sizeof(path), "%s%s", db_path, suffixes[i]);
		unlink(path);
	}
	rmdir(tmp_dir);
}

static void die(const char *what, const struct ee_error *err)
{
	fprintf(stderr, "ERROR: fuzz_api_request: %s: %s (database kept at %s)\n", what,
	        err ? err->reason : "", db_path);
	abort();
}

/*
 * Apps in each state the resolver distinguishes, nodes that settle and
 * nodes that do not, and an account with money, all committed at once.
 */
static void fixture_load(void)
{
	struct ee_db *db = ctx.db;
	struct ee_error err = {0};
	int64_t now = time_now_ms();
	/* Registered on 2020-01-01: expired long ago. */
	int64_t long_ago = INT64_C(1577836800000);
	if (db_begin_write(db, &err) != 0)
		die("fixture: begin", &err);
	if (registry_register_agent(db, &ctx.policy, "demo", "acme/demo", "v1.0.0", "sandbox-1",
	                            "agent-demo-1", now, &err) != 0 ||
	    registry_mark_attested(db, "agent-demo-1", "valid", true, now, &err) != 0 ||
	    registry_mark_health(db, "agent-demo-1", "pass", now, &err) != 0 ||
	    registry_mark_connection(db, "agent-demo-1", true, "tunnel-1", now, &err) != 0 ||
	    registry_register_agent(db, &ctx.policy, "unsealed", "acme/unsealed", "v2", "forge-1",
	                            "agent-unsealed-1", now, &err) != 0 ||
	    registry_mark_attested(db, "agent-unsealed-1", "valid", false, now, &err) != 0 ||
	    registry_mark_health(db, "agent-unsealed-1", "pass", now, &err) != 0 ||
	    registry_mark_connection(db, "agent-unsealed-1", true, "tunnel-2", now, &err) != 0 ||
	    registry_register_agent(db, &ctx.policy, "stale", "acme/stale", "v0.1", "sandbox-1",
	                            "agent-stale-1", long_ago, &err) != 0)
		die("fixture: apps", &err);

	struct node_registration good = {.node_id = "node-good", .has_price = true,
	                                 .price_cents_per_vcpu_hour = 100, .has_stake = true,
	                                 .stake_amount_cents = 500000, .stake_tier = "gold"};
	struct node_registration missed = {.node_id = "node-miss", .has_price = true,
	                                   .price_cents_per_vcpu_hour = 250, .has_stake = true,
	                                   .stake_amount_cents = 1000};
	char unused[NODE_TOKEN_LEN + 1];
	bool created;
	/* 2025-01-01T00:30:00Z: inside the hour the seeds settle. */
	int64_t miss_at = INT64_C(1735691400000);
	if (nodes_register(db, &good, node_token, &created, &err) != 0 ||
	    nodes_mark_attestation(db, "node-good", "valid", now, &err) != 0 ||
	    nodes_mark_health(db, "node-good", "pass", now, &err) != 0 ||
	    nodes_register(db, &missed, unused, &created, &err) != 0 ||
	    nodes_mark_attestation(db, "node-miss", "valid", now, &err) != 0 ||
	    nodes_mark_health(db, "node-miss", "pass", now, &err) != 0 ||
	    nodes_record_event(db, "node-miss", "health_miss", "fixture", miss_at, &err) != 0 ||
	    nodes_ensure(db, "node-noprice", &err) != 0)
		die("fixture: nodes", &err);

	char txn[LEDGER_ID_LEN + 1];
	if (ledger_purchase(db, "alice", 100000000, txn, &err) != 0 ||
	    ledger_purchase(db, "bob", 500, txn, &err) != 0)
		die("fixture: purchases", &err);
	if (db_commit(db, &err) != 0)
		die("fixture: commit", &err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	const char *tmp = getenv("TMPDIR");
	snprintf(tmp_dir, sizeof(tmp_dir), "%s/ee-fuzz-api-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(tmp_dir)) {
		perror("fuzz_api_request: mkdtemp");
		abort();
	}
	snprintf(db_path, sizeof(db_path), "%s/control-plane.db", tmp_dir);

	setenv("EE_DB_PATH", db_path, 1);
	/* No fsync per commit: the fuzzer commits thousands of times a second. */
	setenv("EE_DB_SYNCHRONOUS", "NORMAL", 1);
	setenv("EE_ADMIN_TOKEN", FUZZ_ADMIN_TOKEN, 1);
	setenv("EE_UPTIME_TOKEN", FUZZ_UPTIME_TOKEN, 1);
	setenv("EE_LAUNCHER_TOKEN", FUZZ_LAUNCHER_TOKEN, 1);
	setenv("EE_DOMAIN", "fuzz.example", 1);
	setenv("EE_MAX_BODY_BYTES", FUZZ_MAX_BODY, 1);
	setenv("EE_LOG_LEVEL", "error", 1);
	struct ee_error err = {0};
	if (config_load(&cfg, &err) != 0)
		die("config_load", &err);
	/* Expected refusals (constraint conflicts) log warnings; only errors are news. */
	ee_log_init("fuzz_api_request", EE_LOG_ERROR);

	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = &cfg;
	commit_group_init(&commits);
	ctx.commits = &commits;
	ctx.policy.registration_ttl_days = cfg.registration_ttl_days;
	ctx.policy.registration_warn_days = cfg.registration_warn_days;
	ctx.policy.domain = cfg.domain;
	struct ee_db_options opts = {cfg.db_busy_timeout_ms, cfg.db_synchronous, true};
	if (db_open(cfg.db_path, &opts, &ctx.db, &err) != 0)
		die("db_open", &err);
	atexit(cleanup);
	fixture_load();
	trace = getenv("EE_FUZZ_TRACE") != NULL;

	sqlite3 *handle = db_handle(ctx.db);
	sqlite3_update_hook(handle, on_update, NULL);
	sqlite3_commit_hook(handle, on_commit, NULL);
	sqlite3_rollback_hook(handle, on_rollback, NULL);
	return 0;
}

/* A header line as a FastCGI parameter: a copy up to the first NUL, or NULL for "-". */
static char *header_value(const char *line, size_t len)
{
	size_t n = strnlen(line, len);
	if (n == 1 && line[0] == '-')
		return NULL;
	struct { const char *name, *token; } expand[] = {
		{"@admin", FUZZ_ADMIN_TOKEN}, {"@uptime", FUZZ_UPTIME_TOKEN},
		{"@launcher", FUZZ_LAUNCHER_TOKEN}, {"@node", node_token},
	};
	for (size_t i = 0; i < sizeof(expand) / sizeof(expand[0]); i++) {
		if (n == strlen(expand[i].name) && memcmp(line, expand[i].name, n) == 0) {
			size_t tlen = strlen(expand[i].token);
			char *v = malloc(7 + tlen + 1);
			if (!v)
				abort();
			memcpy(v, "Bearer ", 7);
			memcpy(v + 7, expand[i].token, tlen + 1);
			return v;
		}
	}
	char *v = malloc(n + 1);
	if (!v)
		abort();
	memcpy(v, line, n);
	v[n] = '\0';
	return v;
}

/* Cuts the next line off [*p, end); false when there is none. */
static bool next_line(const char **p, const char *end, const char **line, size_t *len)
{
	if (*p >= end)
		return false;
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	*line = *p;
	*len = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
	*p = nl ? nl + 1 : end;
	return true;
}

static bool status_expected(int status)
{
	static const int expected[] = {200, 400, 401, 403, 404, 405, 409, 413, 414, 415, 422};
	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		if (status == expected[i])
			return true;
	}
	return false;
}

static void report(const char *what, const struct api_request *req, const char *raw_path,
                   const struct api_response *res)
{
	fprintf(stderr, "ERROR: fuzz_api_request: %s (database kept at %s)\n  request: %s %s "
	        "(auth %s, content-type %s, idempotency-key %s, body %zu bytes)\n"
	        "  answer: %d %s %.*s\n",
	        what, db_path, req->method, raw_path, req->authorization ? "yes" : "none",
	        req->content_type ? req->content_type : "none",
	        req->idempotency_key ? req->idempotency_key : "none", req->body_len, res->status,
	        res->content_type, (int)(res->body.len < 400 ? res->body.len : 400),
	        res->body.data ? res->body.data : "");
	abort();
}

/* Keeps a string field of a successful answer (a node token, a report id) for later requests. */
static void remember(const struct api_response *res, const char *key, char *out, size_t size)
{
	struct json_object *o = json_parse_value(res->body.data, res->body.len);
	const char *value;
	size_t len;
	if (o && json_get_string(o, key, &value, &len) == JSON_FIELD_OK && len < size)
		memcpy(out, value, len + 1);
	json_object_put(o);
}

/* The target with its first "{report}" replaced by the last report id. */
static char *expand_target(char *target)
{
	static const char mark[] = "{report}";
	char *at = target ? strstr(target, mark) : NULL;
	if (!at)
		return target;
	size_t head = (size_t)(at - target), rlen = strlen(report_id);
	size_t tail = strlen(at + sizeof(mark) - 1);
	char *out = malloc(head + rlen + tail + 1);
	if (!out)
		abort();
	memcpy(out, target, head);
	memcpy(out + head, report_id, rlen);
	memcpy(out + head + rlen, at + sizeof(mark) - 1, tail + 1);
	free(target);
	return out;
}

static void run_request(const char *start, const char *end)
{
	const char *p = start, *line;
	size_t len;
	char *method = NULL, *target = NULL;
	struct api_request req;
	memset(&req, 0, sizeof(req));

	method = next_line(&p, end, &line, &len) ? header_value(line, len) : NULL;
	target = next_line(&p, end, &line, &len) ? header_value(line, len) : NULL;
	target = expand_target(target);
	req.authorization = next_line(&p, end, &line, &len) ? header_value(line, len) : NULL;
	req.content_type = next_line(&p, end, &line, &len) ? header_value(line, len) : NULL;
	req.idempotency_key = next_line(&p, end, &line, &len) ? header_value(line, len) : NULL;
	req.method = method ? method : "";
	req.remote_addr = "127.0.0.1";

	/* As http.c: the path is REQUEST_URI up to '?', "/" when empty, cut at API_PATH_MAX. */
	const char *uri = target ? target : "";
	const char *q = strchr(uri, '?');
	size_t path_len = q ? (size_t)(q - uri) : strlen(uri);
	req.query = q ? q + 1 : "";
	const char *path = uri;
	if (path_len == 0) {
		path = "/";
		path_len = 1;
	}
	if (path_len > API_PATH_MAX) {
		req.path_too_long = true;
		path_len = API_PATH_MAX;
	}
	memcpy(req.path, path, path_len);
	req.path[path_len] = '\0';

	/* As http.c with a declared length: too long a body is not read at all. */
	size_t body_len = (size_t)(end - p);
	if (body_len > (size_t)cfg.max_body_bytes) {
		req.body_too_large = true;
	} else {
		req.body = malloc(body_len + 1);
		if (!req.body)
			abort();
		memcpy(req.body, p, body_len);
		req.body[body_len] = '\0';
		req.body_len = body_len;
	}

	struct api_response res;
	http_response_init(&res);
	ctx.req = &req;
	ctx.res = &res;
	ctx.json = NULL;
	ee_error_clear(&ctx.err);
	pending_rows = 0;
	committed_change = false;

	api_handle(&ctx);

	if (trace)
		fprintf(stderr, "%s %.120s -> %d %.300s\n", req.method, uri, res.status,
		        res.body.data ? res.body.data : "");
	bool is_get = strcmp(req.method, "GET") == 0 || strcmp(req.method, "HEAD") == 0;
	if (!status_expected(res.status))
		report("unexpected status", &req, uri, &res);
	if (res.body.failed || res.headers.failed)
		report("a response buffer ran out of memory", &req, uri, &res);
	if (strcmp(res.content_type, "application/json") == 0) {
		struct json_object *o = json_parse_value(res.body.data ? res.body.data : "", res.body.len);
		bool is_object = o && json_object_is_type(o, json_type_object);
		json_object_put(o);
		if (!is_object)
			report("a JSON answer that is not one JSON object", &req, uri, &res);
	}
	if (committed_change && (res.status != 200 || is_get))
		report(is_get ? "a GET changed the database" : "an error answer changed the database",
		       &req, uri, &res);
	if (db_in_transaction(ctx.db))
		report("a transaction was left open", &req, uri, &res);
	if (res.status == 200 && !is_get && strcmp(req.path, "/v1/nodes/register") == 0)
		remember(&res, "node_token", node_token, sizeof(node_token));
	if (res.status == 200 && !is_get && strcmp(req.path, "/v1/abuse/reports") == 0)
		remember(&res, "report_id", report_id, sizeof(report_id));

	json_object_put(ctx.json);
	ctx.json = NULL;
	ctx.req = NULL;
	ctx.res = NULL;
	free((char *)req.authorization);
	free((char *)req.content_type);
	free((char *)req.idempotency_key);
	http_request_free(&req);
	http_response_free(&res);
	free(method);
	free(target);

	if (++requests_done % FUZZ_CHECK_EVERY == 0) {
		struct ee_error err = {0};
		if (ledger_check_invariants(ctx.db, &err) != 0)
			die("ledger invariants broken", &err);
		if (trace)
			fprintf(stderr, "ledger invariants hold after %lu requests\n", requests_done);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char empty[1];
	if (size > FUZZ_MAX_INPUT)
		return 0;
	const char *p = size ? (const char *)data : empty, *end = p + size;
	for (int n = 0; n < FUZZ_MAX_REQUESTS && p <= end; n++) {
		const char *next = NULL;
		for (const char *s = p; s + sizeof(separator) - 1 <= end; s++) {
			if (memcmp(s, separator, sizeof(separator) - 1) == 0) {
				next = s;
				break;
			}
		}
		run_request(p, next ? next : end);
		if (!next)
			break;
		p = next + sizeof(separator) - 1;
	}
	return 0;
}
