/*
 * test_allowlist.c - release allowlists from a fake GitHub
 * (tests/support/fakehttp.c; lib/allowlist.c): the release is looked up,
 * its asset downloaded through a redirect to another host; the token goes
 * to the API host and never to the download host or a log line; 404s,
 * missing assets, bad asset JSON and shapes; the cache, its TTL and the
 * stale copy that stands in for a failed refresh; slow and broken servers;
 * repo and tag checks before anything is put in a URL; the options.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "allowlist.h"
#include "check.h"
#include "db.h"
#include "fakehttp.h"
#include "log.h"
#include "stack.h"
#include "timeutil.h"
#include "util.h"

#define TOKEN "ghp_test_token_0123456789abcdefXYZ"
#define ASSET "agent-attestation-allowlist.json"
#define PATH_RELEASE "/repos/acme/agent/releases/tags/v1.0.0"
#define PATH_ASSET "/repos/acme/agent/releases/assets/2"
#define PATH_DOWNLOAD "/dl/allowlist.json?sig=abc"
#define MRTD "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
#define HEX96 "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
#define HEX128 HEX96 "00000000000000000000000000000000"

/* A call that must succeed; err is the caller's struct ee_error. */
#define CHECK_OK(expr)                                                                    \
	do {                                                                              \
		int rc_ = (expr);                                                         \
		if (rc_ != 0)                                                             \
			test_fail(__FILE__, __LINE__, "%s = %d (%s)", #expr, rc_, err.reason); \
	} while (0)

static const char *const allowlist_text =
	"{\n  \"version\": \"1.0\",\n  \"release_tag\": \"v1.0.0\",\n"
	"  \"created_at\": \"2026-01-01T00:00:00+00:00\",\n"
	"  \"measurements\": {\"image_sha256\": \"ab12\", \"sealed\": true, \"build\": 7},\n"
	"  \"report_data\": \"" HEX128 "\",\n"
	"  \"quote_measurements\": {\"mrtd\": \"" MRTD "\", \"rtmr0\": \"" HEX96 "\"}\n}\n";

static char tmp_dir[512];
static struct fakehttp api, dl; /* the GitHub API host and its download host */
static const int64_t t0 = INT64_C(1800000000000);

static char *strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *out = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (out) {
		va_start(ap, fmt);
		vsnprintf(out, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	return out;
}

/* The release JSON GitHub answers, with the allowlist asset at asset_url. */
static char *release_json(const char *asset_name, const char *asset_url)
{
	return strprintf(
		"{\"url\":\"%s/repos/acme/agent/releases/1\",\"id\":1,\"tag_name\":\"v1.0.0\","
		"\"body\":\"notes with } and { and \\\"quotes\\\"\",\"author\":{\"login\":\"acme-bot\"},"
		"\"assets\":[{\"id\":1,\"name\":\"other.txt\",\"url\":\"%s/repos/acme/agent/releases/assets/1\"},"
		"{\"id\":2,\"name\":\"%s\",\"url\":\"%s\",\"size\":512,"
		"\"browser_download_url\":\"https://github.com/acme/agent/releases/download/v1.0.0/%s\"}]}",
		api.base_url, api.base_url, asset_name, asset_url, asset_name);
}

static char *release_ok, *release_no_asset, *release_foreign_url, *redirect_header;

static void serve_both(const struct fakehttp_route *a, size_t na, const struct fakehttp_route *d,
                       size_t nd)
{
	if (fakehttp_serve(&api, a, na) != 0 || fakehttp_serve(&dl, d, nd) != 0)
		test_fail(__FILE__, __LINE__, "fakehttp_serve failed");
	fakehttp_clear_log(&api);
	fakehttp_clear_log(&dl);
}

/* The usual GitHub: release on the API host, asset redirected to the download host. */
static void serve_github(void)
{
	struct fakehttp_route a[] = {
		{.target = PATH_RELEASE, .status = 200, .body = release_ok},
		{.target = PATH_ASSET, .status = 302, .headers = redirect_header, .body = ""},
	};
	struct fakehttp_route d[] = {
		{.target = PATH_DOWNLOAD, .status = 200, .body = allowlist_text},
	};
	serve_both(a, 2, d, 1);
}

static struct ee_db *open_db(const char *name)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s.sqlite", tmp_dir, name);
	struct ee_db_options o = {.busy_timeout_ms = 5000, .synchronous = "NORMAL", .create = true};
	struct ee_db *db = NULL;
	struct ee_error err;
	if (db_open(path, &o, &db, &err) != 0) {
		test_fail(__FILE__, __LINE__, "db_open %s: %s", path, err.reason);
		return NULL;
	}
	return db;
}

static struct allowlist_client *client(const char *token, long timeout_ms, int64_t ttl_ms)
{
	struct allowlist_options o;
	allowlist_options_default(&o);
	snprintf(o.api_url, sizeof(o.api_url), "%s", api.base_url);
	if (token)
		snprintf(o.token, sizeof(o.token), "%s", token);
	if (timeout_ms)
		o.timeout_ms = timeout_ms;
	if (ttl_ms >= 0)
		o.ttl_ms = ttl_ms;
	struct allowlist_client *c = NULL;
	struct ee_error err;
	if (allowlist_client_create(&o, &c, &err) != 0)
		test_fail(__FILE__, __LINE__, "allowlist_client_create: %s", err.reason);
	allowlist_options_clear(&o);
	return c;
}

static int get(struct allowlist_client *c, struct ee_db *db, const char *repo, const char *tag,
               int64_t now, struct json_object **out, struct ee_error *err)
{
	ee_error_clear(err);
	*out = NULL;
	return allowlist_get(c, db, repo, tag, now, out, err);
}

static void check_allowlist(struct json_object *a)
{
	struct json_object *m, *v, *q;
	CHECK(a && json_object_object_get_ex(a, "measurements", &m));
	if (!a || !json_object_object_get_ex(a, "measurements", &m))
		return;
	CHECK(json_object_object_get_ex(m, "image_sha256", &v) &&
	      strcmp(json_object_get_string(v), "ab12") == 0);
	CHECK(json_object_object_get_ex(m, "sealed", &v) && json_object_get_boolean(v));
	CHECK(json_object_object_get_ex(a, "quote_measurements", &q) &&
	      json_object_object_get_ex(q, "mrtd", &v) && strcmp(json_object_get_string(v), MRTD) == 0);
}

static void test_fetch_and_token(void)
{
	struct ee_error err;
	struct json_object *a;
	struct ee_db *db = open_db("fetch");
	struct allowlist_client *c = client(TOKEN, 0, -1);
	if (!db || !c)
		return;

	test_case("release found, asset downloaded through GitHub's redirect");
	serve_github();
	CHECK_OK(get(c, db, "acme/agent", "v1.0.0", t0, &a, &err));
	check_allowlist(a);
	json_object_put(a);
	CHECK_INT(fakehttp_count(&api, "GET " PATH_RELEASE " HTTP/1.1"), 1);
	CHECK_INT(fakehttp_count(&api, "GET " PATH_ASSET " HTTP/1.1"), 1);
	CHECK_INT(fakehttp_count(&dl, "GET " PATH_DOWNLOAD " HTTP/1.1"), 1);

	test_case("the API requests carry the GitHub headers");
	CHECK_INT(fakehttp_count_header(&api, "Accept", "application/vnd.github+json"), 1);
	CHECK_INT(fakehttp_count_header(&api, "Accept", "application/octet-stream"), 1);
	CHECK_INT(fakehttp_count_header(&api, "User-Agent", NULL), 2);
	CHECK_INT(fakehttp_count_header(&api, "X-GitHub-Api-Version", "2022-11-28"), 2);

	test_case("the token goes to the API host, both requests");
	CHECK_INT(fakehttp_count_header(&api, "Authorization", "Bearer " TOKEN), 2);

	test_case("the token does not follow the redirect to the download host");
	CHECK_INT(fakehttp_count_header(&dl, "Authorization", NULL), 0);
	CHECK_INT(fakehttp_count_header(&dl, "Accept", "application/octet-stream"), 1);
	char *log = fakehttp_log(&dl);
	CHECK(log && !strstr(log, TOKEN));
	free(log);

	test_case("an asset the API host serves itself gets the token (same host)");
	struct fakehttp_route direct[] = {
		{.target = PATH_RELEASE, .status = 200, .body = release_ok},
		{.target = PATH_ASSET, .status = 200, .body = allowlist_text},
	};
	serve_both(direct, 2, NULL, 0);
	struct ee_db *db2 = open_db("fetch-direct");
	CHECK_OK(get(c, db2, "acme/agent", "v1.0.0", t0, &a, &err));
	check_allowlist(a);
	json_object_put(a);
	CHECK_INT(fakehttp_count_header(&api, "Authorization", "Bearer " TOKEN), 2);
	db_close(db2);

	test_case("without a token no Authorization header is sent at all");
	struct allowlist_client *anon = client(NULL, 0, -1);
	serve_github();
	struct ee_db *db3 = open_db("fetch-anon");
	CHECK_OK(get(anon, db3, "acme/agent", "v1.0.0", t0, &a, &err));
	json_object_put(a);
	CHECK_INT(fakehttp_count(&api, NULL), 2);
	CHECK_INT(fakehttp_count_header(&api, "Authorization", NULL), 0);
	CHECK_INT(fakehttp_count_header(&dl, "Authorization", NULL), 0);
	db_close(db3);
	allowlist_client_destroy(anon);

	test_case("an asset url outside the API: refused, nothing sent there");
	struct fakehttp_route foreign[] = {
		{.target = PATH_RELEASE, .status = 200, .body = release_foreign_url},
	};
	struct fakehttp_route d[] = {
		{.target = PATH_DOWNLOAD, .status = 200, .body = allowlist_text},
	};
	serve_both(foreign, 1, d, 1);
	struct ee_db *db4 = open_db("fetch-foreign");
	CHECK_INT(get(c, db4, "acme/agent", "v1.0.0", t0, &a, &err), -1);
	CHECK_STR(err.reason, "allowlist_fetch_failed:bad_asset_url");
	CHECK_INT(fakehttp_count(&dl, NULL), 0);
	db_close(db4);

	test_case("the tag is URL-escaped ('+' as %%2B)");
	struct fakehttp_route plus[] = {
		{.target = "/repos/acme/agent/releases/tags/v1.0.0%2Bbuild.5", .status = 200,
		 .body = release_ok},
		{.target = PATH_ASSET, .status = 200, .body = allowlist_text},
	};
	serve_both(plus, 2, NULL, 0);
	CHECK_OK(get(c, db, "acme/agent", "v1.0.0+build.5", t0, &a, &err));
	json_object_put(a);

	allowlist_client_destroy(c);
	db_close(db);
}

/* One failing scenario on a fresh database. */
static void expect_failure(const char *name, const struct fakehttp_route *a, size_t na,
                           const char *repo, const char *tag, long timeout_ms, const char *want)
{
	static int seq;
	char dbname[64];
	snprintf(dbname, sizeof(dbname), "fail-%d", ++seq);
	struct fakehttp_route d[] = {{.target = PATH_DOWNLOAD, .status = 200, .body = allowlist_text}};
	serve_both(a, na, d, 1);
	struct ee_db *db = open_db(dbname);
	struct allowlist_client *c = client(TOKEN, timeout_ms, -1);
	if (!db || !c) {
		db_close(db);
		allowlist_client_destroy(c);
		return;
	}
	struct ee_error err;
	struct json_object *out;
	int64_t start = time_monotonic_ms();
	int rc = get(c, db, repo ? repo : "acme/agent", tag ? tag : "v1.0.0", t0, &out, &err);
	int64_t took = time_monotonic_ms() - start;
	if (rc != -1 || strcmp(err.reason, want) != 0)
		test_fail(__FILE__, __LINE__, "%s: rc %d reason \"%s\", want \"%s\"", name, rc,
		          err.reason, want);
	if (out)
		test_fail(__FILE__, __LINE__, "%s: an allowlist came back with the failure", name);
	if (timeout_ms && took > timeout_ms + 1500)
		test_fail(__FILE__, __LINE__, "%s: took %lld ms with a %ld ms timeout", name,
		          (long long)took, timeout_ms);
	json_object_put(out);
	allowlist_client_destroy(c);
	db_close(db);
}

static void test_failures(void)
{
	test_case("no such release (404): allowlist_not_found");
	struct fakehttp_route none[] = {{.target = "/nothing", .status = 200, .body = "{}"}};
	expect_failure("404", none, 1, NULL, NULL, 0, "allowlist_not_found");

	test_case("a release without the asset: allowlist_not_found");
	struct fakehttp_route no_asset[] = {
		{.target = PATH_RELEASE, .status = 200, .body = release_no_asset}};
	expect_failure("no asset", no_asset, 1, NULL, NULL, 0, "allowlist_not_found");

	test_case("the asset download answers 404: allowlist_not_found");
	struct fakehttp_route asset_gone[] = {{.target = PATH_RELEASE, .status = 200, .body = release_ok}};
	expect_failure("asset 404", asset_gone, 1, NULL, NULL, 0, "allowlist_not_found");

	test_case("rate limited (403): allowlist_fetch_failed:http_403");
	struct fakehttp_route limited[] = {
		{.target = PATH_RELEASE, .status = 403, .body = "{\"message\":\"API rate limit exceeded\"}"}};
	expect_failure("403", limited, 1, NULL, NULL, 0, "allowlist_fetch_failed:http_403");

	test_case("GitHub failing (502): allowlist_fetch_failed:http_502");
	struct fakehttp_route bad_gateway[] = {{.target = PATH_RELEASE, .status = 502, .body = ""}};
	expect_failure("502", bad_gateway, 1, NULL, NULL, 0, "allowlist_fetch_failed:http_502");

	test_case("a release JSON that is not one: allowlist_fetch_failed:bad_release");
	struct fakehttp_route garbage[] = {
		{.target = PATH_RELEASE, .status = 200, .body = "<html>rate limited</html>"}};
	expect_failure("bad release", garbage, 1, NULL, NULL, 0, "allowlist_fetch_failed:bad_release");

	test_case("an asset that is not JSON: allowlist_invalid");
	struct fakehttp_route not_json[] = {
		{.target = PATH_RELEASE, .status = 200, .body = release_ok},
		{.target = PATH_ASSET, .status = 200, .body = "{\"measurements\": {\"a\": \"b\""}};
	expect_failure("asset not json", not_json, 2, NULL, NULL, 0, "allowlist_invalid");

	test_case("an asset of the wrong shape: allowlist_invalid");
	struct fakehttp_route wrong[] = {
		{.target = PATH_RELEASE, .status = 200, .body = release_ok},
		{.target = PATH_ASSET, .status = 200, .body = "{\"measurements\": [\"a\"]}"}};
	expect_failure("asset shape", wrong, 2, NULL, NULL, 0, "allowlist_invalid");

	test_case("a slow API: allowlist_fetch_failed:timeout, within the timeout");
	struct fakehttp_route slow[] = {
		{.target = PATH_RELEASE, .status = 200, .body = release_ok, .delay_ms = 2500}};
	expect_failure("slow", slow, 1, NULL, NULL, 300, "allowlist_fetch_failed:timeout");

	test_case("a slow download host: allowlist_fetch_failed:timeout");
	struct fakehttp_route a[] = {
		{.target = PATH_RELEASE, .status = 200, .body = release_ok},
		{.target = PATH_ASSET, .status = 302, .headers = redirect_header, .body = ""}};
	struct fakehttp_route d[] = {
		{.target = PATH_DOWNLOAD, .status = 200, .body = allowlist_text, .delay_ms = 2500}};
	serve_both(a, 2, d, 1);
	struct ee_db *db = open_db("slow-dl");
	struct allowlist_client *c = client(TOKEN, 400, -1);
	struct ee_error err;
	struct json_object *out;
	CHECK_INT(get(c, db, "acme/agent", "v1.0.0", t0, &out, &err), -1);
	CHECK_STR(err.reason, "allowlist_fetch_failed:timeout");
	allowlist_client_destroy(c);
	db_close(db);

	test_case("a server that hangs up: allowlist_fetch_failed:network");
	struct fakehttp_route hang[] = {{.target = PATH_RELEASE, .hang_up = true}};
	expect_failure("hang-up", hang, 1, NULL, NULL, 0, "allowlist_fetch_failed:network");

	test_case("an oversized release JSON: allowlist_fetch_failed:too_large");
	size_t big_len = 2 * 1024 * 1024;
	char *big = malloc(big_len + 1);
	memset(big, ' ', big_len);
	big[big_len] = '\0';
	memcpy(big, release_ok, strlen(release_ok));
	struct fakehttp_route large[] = {
		{.target = PATH_RELEASE, .status = 200, .body = big, .no_length = true}};
	expect_failure("large", large, 1, NULL, NULL, 0, "allowlist_fetch_failed:too_large");
	free(big);

	test_case("repos and tags that cannot name a release: allowlist_not_found, no request");
	const char *bad_repos[] = {"acme",     "acme/",     "/agent",     "acme/agent/x", "acme/..",
	                           "../agent", "a b/agent", "acme/age%nt", "acme/agent?x", ""};
	for (size_t i = 0; i < sizeof(bad_repos) / sizeof(bad_repos[0]); i++) {
		expect_failure(bad_repos[i], none, 1, bad_repos[i], NULL, 0, "allowlist_not_found");
		CHECK_INT(fakehttp_count(&api, NULL), 0);
	}
	const char *bad_tags[] = {"..", ".", "v1/2", "v1..2", "v 1", "v1?x", "", "v1#x"};
	for (size_t i = 0; i < sizeof(bad_tags) / sizeof(bad_tags[0]); i++) {
		expect_failure(bad_tags[i], none, 1, NULL, bad_tags[i], 0, "allowlist_not_found");
		CHECK_INT(fakehttp_count(&api, NULL), 0);
	}
}

static void test_cache(void)
{
	struct ee_error err;
	struct json_object *a;
	int64_t ttl = 3600 * 1000;
	struct ee_db *db = open_db("cache");
	struct allowlist_client *c = client(TOKEN, 0, ttl);
	if (!db || !c)
		return;
	serve_github();
	CHECK_OK(get(c, db, "acme/agent", "v1.0.0", t0, &a, &err));
	json_object_put(a);

	test_case("a second call within the TTL makes no request");
	fakehttp_clear_log(&api);
	fakehttp_clear_log(&dl);
	CHECK_OK(get(c, db, "acme/agent", "v1.0.0", t0 + ttl - 1, &a, &err));
	check_allowlist(a);
	json_object_put(a);
	CHECK_INT(fakehttp_count(&api, NULL) + fakehttp_count(&dl, NULL), 0);

	test_case("another release tag is another entry");
	CHECK_INT(get(c, db, "acme/agent", "v2.0.0", t0, &a, &err), -1);
	CHECK_STR(err.reason, "allowlist_not_found");

	test_case("after the TTL it is fetched again");
	fakehttp_clear_log(&api);
	CHECK_OK(get(c, db, "acme/agent", "v1.0.0", t0 + ttl, &a, &err));
	json_object_put(a);
	CHECK_INT(fakehttp_count(&api, NULL), 2);
	fakehttp_clear_log(&api);
	CHECK_OK(get(c, db, "acme/agent", "v1.0.0", t0 + ttl + 1000, &a, &err));
	json_object_put(a);
	CHECK_INT(fakehttp_count(&api, NULL), 0);

	int64_t fetched = t0 + ttl;
	test_case("expired and GitHub failing: the copy is used while under 24 h old");
	struct fakehttp_route failing[] = {{.target = PATH_RELEASE, .status = 500, .body = "oops"}};
	serve_both(failing, 1, NULL, 0);
	CHECK_OK(get(c, db, "acme/agent", "v1.0.0", fetched + 2 * ttl, &a, &err));
	check_allowlist(a);
	json_object_put(a);
	CHECK_INT(fakehttp_count(&api, NULL), 1);
	CHECK_OK(get(c, db, "acme/agent", "v1.0.0", fetched + 24 * ttl - 1, &a, &err));
	json_object_put(a);

	test_case("expired, GitHub failing, copy 24 h old: allowlist_fetch_failed");
	CHECK_INT(get(c, db, "acme/agent", "v1.0.0", fetched + 24 * ttl, &a, &err), -1);
	CHECK_STR(err.reason, "allowlist_fetch_failed:http_500");
	CHECK_INT(err.status, 503);
	CHECK(a == NULL);

	test_case("expired and the server timing out: the copy is used");
	struct allowlist_client *quick = client(TOKEN, 300, ttl);
	struct fakehttp_route slow[] = {
		{.target = PATH_RELEASE, .status = 200, .body = release_ok, .delay_ms = 2000}};
	serve_both(slow, 1, NULL, 0);
	CHECK_OK(get(quick, db, "acme/agent", "v1.0.0", fetched + 2 * ttl, &a, &err));
	json_object_put(a);
	allowlist_client_destroy(quick);

	test_case("expired and the release now 404: allowlist_not_found, the copy is dropped");
	struct fakehttp_route gone[] = {{.target = "/nothing", .status = 200, .body = "{}"}};
	serve_both(gone, 1, NULL, 0);
	CHECK_INT(get(c, db, "acme/agent", "v1.0.0", fetched + 2 * ttl, &a, &err), -1);
	CHECK_STR(err.reason, "allowlist_not_found");
	serve_both(failing, 1, NULL, 0);
	/* Past the interval for which the 404 is remembered, so GitHub is asked again. */
	int64_t negative = ALLOWLIST_DEFAULT_NEGATIVE_TTL_SEC * INT64_C(1000);
	CHECK_INT(get(c, db, "acme/agent", "v1.0.0", fetched + 2 * ttl + negative, &a, &err), -1);
	CHECK_STR(err.reason, "allowlist_fetch_failed:http_500");
	CHECK_INT(fakehttp_count(&api, NULL), 1);

	test_case("TTL 0: every call fetches");
	struct allowlist_client *nocache = client(TOKEN, 0, 0);
	serve_github();
	CHECK_OK(get(nocache, db, "acme/agent", "v1.0.0", t0, &a, &err));
	json_object_put(a);
	CHECK_OK(get(nocache, db, "acme/agent", "v1.0.0", t0, &a, &err));
	json_object_put(a);
	CHECK_INT(fakehttp_count(&api, PATH_RELEASE), 2);
	allowlist_client_destroy(nocache);

	allowlist_client_destroy(c);
	db_close(db);
}

/* A failed look-up is answered again from memory for the interval, then asked again. */
static void test_negative_cache(void)
{
	struct ee_error err;
	struct json_object *a = NULL;
	int64_t negative = ALLOWLIST_DEFAULT_NEGATIVE_TTL_SEC * INT64_C(1000);
	struct ee_db *db = open_db("negative");
	struct allowlist_client *c = client(TOKEN, 0, 3600 * 1000);
	if (!db || !c)
		return;

	test_case("GitHub failing: the failure is remembered for 60 s, no request until then");
	struct fakehttp_route failing[] = {{.target = PATH_RELEASE, .status = 500, .body = "oops"}};
	serve_both(failing, 1, NULL, 0);
	CHECK_INT(get(c, db, "acme/agent", "v1.0.0", t0, &a, &err), -1);
	CHECK_STR(err.reason, "allowlist_fetch_failed:http_500");
	CHECK_INT(fakehttp_count(&api, NULL), 1);
	for (int i = 0; i < 5; i++) {
		CHECK_INT(get(c, db, "acme/agent", "v1.0.0", t0 + i * (negative - 1) / 4, &a, &err), -1);
		CHECK_STR(err.reason, "allowlist_fetch_failed:http_500");
		CHECK_INT(err.status, 503);
	}
	CHECK_INT(fakehttp_count(&api, NULL), 1);

	test_case("another tag or repository is asked for itself");
	CHECK_INT(get(c, db, "acme/agent", "v2.0.0", t0 + 1, &a, &err), -1);
	CHECK_INT(get(c, db, "acme/other", "v1.0.0", t0 + 1, &a, &err), -1);
	CHECK_INT(fakehttp_count(&api, NULL), 3);

	test_case("a transient failure is not kept: GitHub back, asked again once the interval ends");
	serve_github();
	CHECK_INT(get(c, db, "acme/agent", "v1.0.0", t0 + negative - 1, &a, &err), -1);
	CHECK_STR(err.reason, "allowlist_fetch_failed:http_500");
	CHECK_INT(fakehttp_count(&api, NULL), 0);
	CHECK_OK(get(c, db, "acme/agent", "v1.0.0", t0 + negative, &a, &err));
	check_allowlist(a);
	json_object_put(a);
	CHECK_INT(fakehttp_count(&api, PATH_RELEASE), 1);

	test_case("no such release: allowlist_not_found remembered (404), asked again after 60 s");
	struct fakehttp_route none[] = {{.target = "/nothing", .status = 200, .body = "{}"}};
	serve_both(none, 1, NULL, 0);
	CHECK_INT(get(c, db, "acme/gone", "v1.0.0", t0, &a, &err), -1);
	CHECK_STR(err.reason, "allowlist_not_found");
	CHECK_INT(get(c, db, "acme/gone", "v1.0.0", t0 + negative - 1, &a, &err), -1);
	CHECK_STR(err.reason, "allowlist_not_found");
	CHECK_INT(err.status, 404);
	CHECK_INT(fakehttp_count(&api, NULL), 1);
	CHECK_INT(get(c, db, "acme/gone", "v1.0.0", t0 + negative, &a, &err), -1);
	CHECK_INT(fakehttp_count(&api, NULL), 2);

	test_case("a clock that went back does not stretch the interval");
	fakehttp_clear_log(&api);
	CHECK_INT(get(c, db, "acme/gone", "v1.0.0", t0 - 1, &a, &err), -1);
	CHECK_INT(fakehttp_count(&api, NULL), 1);

	test_case("more failed releases than remembered: the oldest is forgotten, nothing breaks");
	fakehttp_clear_log(&api);
	for (int i = 0; i < ALLOWLIST_NEGATIVE_MAX + 8; i++) {
		char repo[32];
		snprintf(repo, sizeof(repo), "acme/r%d", i);
		CHECK_INT(get(c, db, repo, "v1.0.0", t0 + 2 * negative + i, &a, &err), -1);
	}
	CHECK_INT(fakehttp_count(&api, NULL), ALLOWLIST_NEGATIVE_MAX + 8);
	CHECK_INT(get(c, db, "acme/r0", "v1.0.0", t0 + 2 * negative + 500, &a, &err), -1);
	CHECK_INT(get(c, db, "acme/r100", "v1.0.0", t0 + 2 * negative + 500, &a, &err), -1);
	CHECK_INT(fakehttp_count(&api, NULL), ALLOWLIST_NEGATIVE_MAX + 9);
	allowlist_client_destroy(c);

	test_case("EE_ALLOWLIST_NEGATIVE_TTL_SEC=0: every failed look-up asks again");
	struct allowlist_options o;
	allowlist_options_default(&o);
	snprintf(o.api_url, sizeof(o.api_url), "%s", api.base_url);
	o.negative_ttl_ms = 0;
	struct allowlist_client *always = NULL;
	if (allowlist_client_create(&o, &always, &err) != 0)
		test_fail(__FILE__, __LINE__, "allowlist_client_create: %s", err.reason);
	serve_both(failing, 1, NULL, 0);
	for (int i = 0; i < 3 && always; i++)
		CHECK_INT(get(always, db, "acme/agent2", "v1.0.0", t0 + i, &a, &err), -1);
	CHECK_INT(fakehttp_count(&api, NULL), 3);
	allowlist_client_destroy(always);
	db_close(db);
}

static void test_shapes(void)
{
	struct {
		const char *json;
		bool ok;
	} cases[] = {
		{"{\"measurements\":{\"a\":\"b\"}}", true},
		{"{\"measurements\":{\"a\":true,\"n\":3},\"version\":\"1.0\",\"extra\":[1]}", true},
		{"{\"measurements\":{\"a\":\"b\"},\"quote_measurements\":{\"mrtd\":\"" MRTD
		 "\",\"rtmr3\":\"" HEX96 "\"},\"report_data\":\"" HEX128 "\"}",
		 true},
		{"{\"measurements\":{\"a\":\"b\"},\"quote_measurements\":{}}", true},
		{"[]", false},
		{"{}", false},
		{"{\"measurements\":{}}", false},
		{"{\"measurements\":null}", false},
		{"{\"measurements\":{\"a\":1.5}}", false},
		{"{\"measurements\":{\"a\":null}}", false},
		{"{\"measurements\":{\"a\":{\"b\":1}}}", false},
		{"{\"measurements\":{\"a\":\"b\"},\"quote_measurements\":[]}", false},
		{"{\"measurements\":{\"a\":\"b\"},\"quote_measurements\":{\"mrtd\":\"abc\"}}", false},
		{"{\"measurements\":{\"a\":\"b\"},\"quote_measurements\":{\"mrtd\":\"" HEX96 "0\"}}", false},
		{"{\"measurements\":{\"a\":\"b\"},\"quote_measurements\":{\"rtmr4\":\"" HEX96 "\"}}", false},
		{"{\"measurements\":{\"a\":\"b\"},\"quote_measurements\":{\"mrseam\":\"" HEX96 "\"}}", false},
		{"{\"measurements\":{\"a\":\"b\"},\"quote_measurements\":{\"mrtd\":\"" HEX96 "\",\"report_data\":\"" HEX128 "\"}}", false},
		{"{\"measurements\":{\"a\":\"b\"},\"report_data\":\"xyz\"}", false},
		{"{\"measurements\":{\"a\":\"b\"},\"report_data\":null}", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("allowlist shape %s: %s", cases[i].ok ? "accepted" : "allowlist_invalid",
		          test_printable(cases[i].json));
		struct json_object *a = json_tokener_parse(cases[i].json);
		struct ee_error err;
		ee_error_clear(&err);
		int rc = allowlist_validate(a, &err);
		CHECK_INT(rc, cases[i].ok ? 0 : -1);
		if (!cases[i].ok)
			CHECK_STR(err.reason, "allowlist_invalid");
		json_object_put(a);
	}
}

static void test_token_never_logged(void)
{
	test_case("the token appears in no log line, even at debug level");
	char path[700];
	snprintf(path, sizeof(path), "%s/stderr.log", tmp_dir);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, STDERR_FILENO);
	close(fd);
	ee_log_set_level(EE_LOG_DEBUG);

	struct ee_db *db = open_db("log");
	struct allowlist_client *c = client(TOKEN, 300, 0);
	struct ee_error err;
	struct json_object *a;
	serve_github();
	get(c, db, "acme/agent", "v1.0.0", t0, &a, &err);
	json_object_put(a);
	struct fakehttp_route failing[] = {
		{.target = PATH_RELEASE, .status = 401, .body = "{\"message\":\"Bad credentials\"}"}};
	serve_both(failing, 1, NULL, 0);
	get(c, db, "acme/agent", "v1.0.0", t0 + 1, &a, &err);
	json_object_put(a);
	struct fakehttp_route slow[] = {{.target = PATH_RELEASE, .status = 200, .delay_ms = 1000}};
	serve_both(slow, 1, NULL, 0);
	get(c, db, "acme/agent", "v1.0.0", t0 + 2, &a, &err);
	json_object_put(a);
	allowlist_client_destroy(c);
	db_close(db);

	ee_log_set_level(EE_LOG_ERROR);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	FILE *fp = fopen(path, "r");
	char text[65536];
	size_t n = fp ? fread(text, 1, sizeof(text) - 1, fp) : 0;
	if (fp)
		fclose(fp);
	text[n] = '\0';
	CHECK(n > 0, "nothing was logged");
	CHECK(!strstr(text, TOKEN));
	CHECK(!strstr(text, "ghp_"));
}

static void test_options(void)
{
	struct allowlist_options o;
	struct ee_error err;
	const char *vars[] = {"EE_GITHUB_API_URL", "EE_ALLOWLIST_ASSET", "EE_GITHUB_TOKEN",
	                      "EE_ALLOWLIST_TTL_SEC", "EE_ALLOWLIST_NEGATIVE_TTL_SEC"};
	for (size_t i = 0; i < 5; i++)
		unsetenv(vars[i]);

	test_case("options: the defaults");
	CHECK_INT(allowlist_options_from_env(&o, &err), 0);
	CHECK_STR(o.api_url, "https://api.github.com");
	CHECK_STR(o.asset_name, ASSET);
	CHECK_STR(o.token, "");
	CHECK_INT(o.ttl_ms, 3600 * 1000);
	CHECK_INT(o.stale_max_ms, 24 * 3600 * 1000);
	CHECK_INT(o.negative_ttl_ms, 60 * 1000);

	test_case("options: set from the environment");
	setenv("EE_GITHUB_API_URL", "https://ghe.example/api/v3/", 1);
	setenv("EE_ALLOWLIST_ASSET", "allow.json", 1);
	setenv("EE_GITHUB_TOKEN", TOKEN, 1);
	setenv("EE_ALLOWLIST_TTL_SEC", "60", 1);
	setenv("EE_ALLOWLIST_NEGATIVE_TTL_SEC", "5", 1);
	CHECK_INT(allowlist_options_from_env(&o, &err), 0);
	CHECK_INT(o.negative_ttl_ms, 5 * 1000);
	CHECK_STR(o.api_url, "https://ghe.example/api/v3");
	CHECK_STR(o.asset_name, "allow.json");
	CHECK_STR(o.token, TOKEN);
	CHECK_INT(o.ttl_ms, 60 * 1000);
	allowlist_options_clear(&o);
	CHECK_STR(o.token, "");

	struct {
		const char *var, *value;
	} bad[] = {
		{"EE_GITHUB_API_URL", "api.github.com"},
		{"EE_GITHUB_API_URL", "file:///etc/passwd"},
		{"EE_ALLOWLIST_ASSET", "dir/allow.json"},
		{"EE_ALLOWLIST_ASSET", "allow list.json"},
		{"EE_GITHUB_TOKEN", "has space"},
		{"EE_ALLOWLIST_TTL_SEC", "soon"},
		{"EE_ALLOWLIST_TTL_SEC", "-1"},
		{"EE_ALLOWLIST_NEGATIVE_TTL_SEC", "-1"},
		{"EE_ALLOWLIST_NEGATIVE_TTL_SEC", "3601"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		test_case("options: %s=%s is invalid_config:%s", bad[i].var, bad[i].value, bad[i].var);
		for (size_t j = 0; j < 5; j++)
			unsetenv(vars[j]);
		setenv(bad[i].var, bad[i].value, 1);
		ee_error_clear(&err);
		CHECK_INT(allowlist_options_from_env(&o, &err), -1);
		char want[128];
		snprintf(want, sizeof(want), "invalid_config:%s", bad[i].var);
		CHECK_STR(err.reason, want);
	}
	for (size_t i = 0; i < 5; i++)
		unsetenv(vars[i]);
}

int main(void)
{
	ee_log_init("test_allowlist", EE_LOG_ERROR);
	if (stack_make_dir(tmp_dir, sizeof(tmp_dir), "allowlist") != 0) {
		perror("mkdtemp");
		return 1;
	}
	char api_log[600], dl_log[600];
	snprintf(api_log, sizeof(api_log), "%s/api.log", tmp_dir);
	snprintf(dl_log, sizeof(dl_log), "%s/dl.log", tmp_dir);
	if (fakehttp_open(&api, api_log) != 0 || fakehttp_open(&dl, dl_log) != 0) {
		perror("fakehttp_open");
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	char *asset_url = strprintf("%s" PATH_ASSET, api.base_url);
	char *foreign_url = strprintf("%s" PATH_DOWNLOAD, dl.base_url);
	release_ok = release_json(ASSET, asset_url);
	release_no_asset = release_json("something-else.json", asset_url);
	release_foreign_url = release_json(ASSET, foreign_url);
	redirect_header = strprintf("Location: %s" PATH_DOWNLOAD "\r\n", dl.base_url);

	test_fetch_and_token();
	test_failures();
	test_cache();
	test_negative_cache();
	test_shapes();
	test_token_never_logged();
	test_options();

	fakehttp_close(&api);
	fakehttp_close(&dl);
	curl_global_cleanup();
	free(asset_url);
	free(foreign_url);
	free(release_ok);
	free(release_no_asset);
	free(release_foreign_url);
	free(redirect_header);
	if (stack_remove_dir(tmp_dir) != 0)
		fprintf(stderr, "cannot remove %s: %s\n", tmp_dir, strerror(errno));
	return test_finish();
}
