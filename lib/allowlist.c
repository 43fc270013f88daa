/* allowlist.c - release allowlists from GitHub, and their cache; see allowlist.h. */
#include "allowlist.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest.h"
#include "config.h"
#include "fetch.h"
#include "jsonutil.h"
#include "log.h"
#include "timeutil.h"
#include "util.h"

#define REPO_PART_MAX 100 /* GitHub's longest repository name */
#define TAG_MAX 128
#define MEASUREMENT_HEX_LEN 96 /* 48-byte MRTD / RTMR */
#define REPORT_DATA_HEX_LEN 128

/* A failed look-up of repo@tag, answered again as it was until `until`. */
struct negative {
	char repo[2 * REPO_PART_MAX + 2];
	char tag[TAG_MAX + 1];
	struct ee_error err;
	int64_t at;    /* when it failed (Unix ms) */
	int64_t until; /* at + negative_ttl_ms; 0: a free slot */
};

struct allowlist_client {
	struct allowlist_options opt;
	char auth_header[ALLOWLIST_TOKEN_MAX + 32]; /* "Authorization: Bearer ..." or empty */
	CURL *curl;
	struct buf body;
	struct negative negative[ALLOWLIST_NEGATIVE_MAX];
};

void allowlist_options_default(struct allowlist_options *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->api_url, sizeof(o->api_url), "%s", ALLOWLIST_DEFAULT_API_URL);
	snprintf(o->asset_name, sizeof(o->asset_name), "%s", ALLOWLIST_DEFAULT_ASSET);
	o->ttl_ms = ALLOWLIST_DEFAULT_TTL_SEC * INT64_C(1000);
	o->negative_ttl_ms = ALLOWLIST_DEFAULT_NEGATIVE_TTL_SEC * INT64_C(1000);
	o->stale_max_ms = ALLOWLIST_DEFAULT_STALE_MAX_MS;
	o->connect_timeout_ms = ALLOWLIST_DEFAULT_CONNECT_TIMEOUT_MS;
	o->timeout_ms = ALLOWLIST_DEFAULT_TIMEOUT_MS;
	o->max_body_bytes = ALLOWLIST_DEFAULT_MAX_BODY_BYTES;
}

/* An asset name is one path-free printable name. */
static bool valid_asset_name(const char *s)
{
	size_t len = strlen(s);
	return util_valid_printable(s, len, ALLOWLIST_ASSET_MAX) && !strchr(s, '/');
}

/* Copies an environment value into a fixed field; -1 if it does not fit or fails check. */
static int env_into(const char *name, const char *def, char *out, size_t size,
                    bool (*check)(const char *), struct ee_error *err)
{
	char *v = config_get_string(name, def);
	if (!v && def)
		return ee_fail(err, 500, "out_of_memory");
	int rc = 0;
	if (v && (strlen(v) >= size || (check && !check(v))))
		rc = ee_fail_detail(err, 500, "invalid_config", name);
	else
		snprintf(out, size, "%s", v ? v : "");
	if (v) {
		memset(v, 0, strlen(v));
		free(v);
	}
	return rc;
}

static bool valid_token(const char *s)
{
	return util_valid_printable(s, strlen(s), ALLOWLIST_TOKEN_MAX);
}

int allowlist_options_from_env(struct allowlist_options *o, struct ee_error *err)
{
	allowlist_options_default(o);
	char *api = config_get_string("EE_GITHUB_API_URL", ALLOWLIST_DEFAULT_API_URL);
	if (!api)
		return ee_fail(err, 500, "out_of_memory");
	int rc = fetch_base_url(api, o->api_url, sizeof(o->api_url));
	free(api);
	if (rc != 0)
		return ee_fail_detail(err, 500, "invalid_config", "EE_GITHUB_API_URL");
	int ttl_sec, negative_sec;
	if (env_into("EE_ALLOWLIST_ASSET", ALLOWLIST_DEFAULT_ASSET, o->asset_name,
	             sizeof(o->asset_name), valid_asset_name, err) != 0 ||
	    env_into("EE_GITHUB_TOKEN", NULL, o->token, sizeof(o->token), valid_token, err) != 0 ||
	    config_get_int("EE_ALLOWLIST_TTL_SEC", ALLOWLIST_DEFAULT_TTL_SEC, 0, 30 * 86400,
	                   &ttl_sec, err) != 0 ||
	    config_get_int("EE_ALLOWLIST_NEGATIVE_TTL_SEC", ALLOWLIST_DEFAULT_NEGATIVE_TTL_SEC, 0, 3600,
	                   &negative_sec, err) != 0) {
		allowlist_options_clear(o);
		return -1;
	}
	o->ttl_ms = ttl_sec * INT64_C(1000);
	o->negative_ttl_ms = negative_sec * INT64_C(1000);
	return 0;
}

void allowlist_options_clear(struct allowlist_options *o) { explicit_bzero(o, sizeof(*o)); }

int allowlist_client_create(const struct allowlist_options *o, struct allowlist_client **out,
                            struct ee_error *err)
{
	*out = NULL;
	struct allowlist_client *c = calloc(1, sizeof(*c));
	if (!c)
		return ee_fail(err, 503, "out_of_memory");
	c->opt = *o;
	int rc = 0;
	if (fetch_base_url(o->api_url, c->opt.api_url, sizeof(c->opt.api_url)) != 0)
		rc = ee_fail_detail(err, 500, "invalid_config", "EE_GITHUB_API_URL");
	else if (!valid_asset_name(o->asset_name))
		rc = ee_fail_detail(err, 500, "invalid_config", "EE_ALLOWLIST_ASSET");
	else if (o->token[0] && !valid_token(o->token))
		rc = ee_fail_detail(err, 500, "invalid_config", "EE_GITHUB_TOKEN");
	else if (o->ttl_ms < 0 || o->stale_max_ms < 0 || o->negative_ttl_ms < 0 || o->connect_timeout_ms <= 0 ||
	         o->timeout_ms <= 0 || o->max_body_bytes == 0)
		rc = ee_fail(err, 500, "invalid_config");
	if (rc == 0 && o->token[0])
		snprintf(c->auth_header, sizeof(c->auth_header), "Authorization: Bearer %s", o->token);
	if (rc == 0 && !(c->curl = curl_easy_init()))
		rc = ee_fail(err, 503, "out_of_memory");
	if (rc != 0) {
		explicit_bzero(c, sizeof(*c));
		free(c);
		return -1;
	}
	buf_init(&c->body);
	*out = c;
	return 0;
}

void allowlist_client_destroy(struct allowlist_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	buf_free(&c->body);
	explicit_bzero(c, sizeof(*c));
	free(c);
}

/* ---- input ---- */

static bool name_part_ok(const char *s, size_t len)
{
	if (len == 0 || len > REPO_PART_MAX)
		return false;
	bool dots_only = true;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return false;
		if (ch != '.')
			dots_only = false;
	}
	/* "." and ".." would be path steps, which libcurl squashes. */
	return !dots_only;
}

/* owner/name, each [A-Za-z0-9._-]{1,100} and not dots only. */
static bool valid_repo(const char *repo)
{
	const char *slash = strchr(repo, '/');
	return slash && name_part_ok(repo, (size_t)(slash - repo)) &&
	       name_part_ok(slash + 1, strlen(slash + 1));
}

/* [A-Za-z0-9._+-]{1,128} without "..", which no git tag can hold. */
static bool valid_tag(const char *tag)
{
	size_t len = strlen(tag);
	if (len == 0 || len > TAG_MAX || strstr(tag, "..") || strcmp(tag, ".") == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = tag[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '+' || ch == '-'))
			return false;
	}
	return true;
}

/* ---- the asset's shape ---- */

static bool hex_string(struct json_object *v, size_t want_len)
{
	if (!v || !json_object_is_type(v, json_type_string))
		return false;
	const char *s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != want_len || strlen(s) != want_len)
		return false;
	for (size_t i = 0; i < want_len; i++) {
		char ch = s[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
			return false;
	}
	return true;
}

static int invalid(struct ee_error *err, const char *why)
{
	log_warn("allowlist invalid: %s", why);
	return ee_fail(err, 502, "allowlist_invalid");
}

int allowlist_validate(struct json_object *a, struct ee_error *err)
{
	if (!a || !json_object_is_type(a, json_type_object))
		return invalid(err, "not a JSON object");
	bool present;
	struct json_object *m = json_get(a, "measurements", &present);
	if (!m || !json_object_is_type(m, json_type_object))
		return invalid(err, "\"measurements\" is not an object");
	int count = json_object_object_length(m);
	if (count == 0 || count > ATTEST_MAX_MEASUREMENTS)
		return invalid(err, "\"measurements\" is empty or too large");
	json_object_object_foreach(m, key, value) {
		if (strlen(key) > ATTEST_MAX_MEASUREMENT_LEN)
			return invalid(err, "a measurement name is too long");
		enum json_type t = value ? json_object_get_type(value) : json_type_null;
		if (t == json_type_string) {
			if ((size_t)json_object_get_string_len(value) > ATTEST_MAX_MEASUREMENT_LEN ||
			    strlen(json_object_get_string(value)) !=
			            (size_t)json_object_get_string_len(value))
				return invalid(err, "a measurement value is too long");
		} else if (t != json_type_boolean && t != json_type_int) {
			return invalid(err, "a measurement is not a string, boolean or integer");
		}
	}

	struct json_object *q = json_get(a, "quote_measurements", &present);
	if (present) {
		if (!q || !json_object_is_type(q, json_type_object))
			return invalid(err, "\"quote_measurements\" is not an object");
		static const char *const known[] = {"mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"};
		json_object_object_foreach(q, qkey, qvalue) {
			bool ok = false;
			for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
				ok = ok || strcmp(qkey, known[i]) == 0;
			if (!ok)
				return invalid(err, "\"quote_measurements\" has a key the verifier does not check");
			if (!hex_string(qvalue, MEASUREMENT_HEX_LEN))
				return invalid(err, "a quote measurement is not 96 hex digits");
		}
	}

	struct json_object *rd = json_get(a, "report_data", &present);
	if (present && !hex_string(rd, REPORT_DATA_HEX_LEN))
		return invalid(err, "\"report_data\" is not 128 hex digits");
	return 0;
}

/* ---- cache ---- */

struct cached {
	char *body;
	int64_t fetched_at;
	int64_t expires_at;
};

static bool cache_read(struct ee_db *db, const char *repo, const char *tag, struct cached *out)
{
	struct ee_error e;
	sqlite3_stmt *stmt = db_stmt(db, SQL_ALLOWLIST_CACHE_GET, &e);
	if (!stmt) {
		log_warn("allowlist cache: cannot read %s@%s: %s", repo, tag, e.reason);
		return false;
	}
	db_bind_text(stmt, 1, repo);
	db_bind_text(stmt, 2, tag);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		const char *body = db_column_text(stmt, 0);
		out->body = body ? strdup(body) : NULL;
		out->fetched_at = sqlite3_column_int64(stmt, 1);
		out->expires_at = sqlite3_column_int64(stmt, 2);
	} else if (rc != SQLITE_DONE) {
		db_fail(db, rc, &e);
	}
	sqlite3_reset(stmt);
	return out->body != NULL;
}

/* Runs one cache statement (store or delete) in its own write transaction. */
static void cache_change(struct ee_db *db, enum db_stmt_id id, const char *repo, const char *tag,
                         const char *body, int64_t fetched_at, int64_t expires_at)
{
	struct ee_error e;
	if (db_in_transaction(db)) {
		log_error("allowlist cache: called inside a transaction; %s@%s not updated", repo, tag);
		return;
	}
	if (db_begin_write(db, &e) != 0) {
		log_warn("allowlist cache: cannot update %s@%s: %s", repo, tag, e.reason);
		return;
	}
	sqlite3_stmt *stmt = db_stmt(db, id, &e);
	if (stmt) {
		db_bind_text(stmt, 1, repo);
		db_bind_text(stmt, 2, tag);
		if (body) {
			db_bind_text(stmt, 3, body);
			db_bind_int64(stmt, 4, fetched_at);
			db_bind_int64(stmt, 5, expires_at);
		}
	}
	if (!stmt || db_exec_stmt(db, stmt, &e) != 0) {
		db_rollback(db);
		log_warn("allowlist cache: cannot update %s@%s: %s", repo, tag, e.reason);
		return;
	}
	if (db_commit(db, &e) != 0)
		log_warn("allowlist cache: cannot update %s@%s: %s", repo, tag, e.reason);
}

/* ---- fetching ---- */

static int fetch_failed(struct ee_error *err, const char *detail)
{
	return ee_fail_detail(err, 503, "allowlist_fetch_failed", detail);
}

/* GET url; 0 with the body in c->body on 200, else the reason (404 is not_found). */
static int github_get(struct allowlist_client *c, const char *url, const char *accept,
                      bool follow, const char *what, struct ee_error *err)
{
	const char *headers[4];
	size_t n = 0;
	headers[n++] = accept;
	headers[n++] = "X-GitHub-Api-Version: 2022-11-28";
	if (c->auth_header[0])
		headers[n++] = c->auth_header;
	headers[n] = NULL;
	struct fetch_options fo = {
		.connect_timeout_ms = c->opt.connect_timeout_ms,
		.timeout_ms = c->opt.timeout_ms,
		.max_body_bytes = c->opt.max_body_bytes,
		.follow_redirects = follow,
	};
	long status;
	enum fetch_result r = fetch_get(c->curl, url, headers, &fo, &status, &c->body);
	if (r == FETCH_NO_MEMORY)
		return ee_fail(err, 503, "out_of_memory");
	if (r != FETCH_OK) {
		log_warn("allowlist: fetching the %s failed: %s", what, fetch_result_text(r));
		return fetch_failed(err, fetch_result_text(r));
	}
	if (status == 404) {
		log_warn("allowlist: the %s is not found (HTTP 404)", what);
		return ee_fail(err, 404, "allowlist_not_found");
	}
	if (status != 200) {
		char detail[32];
		snprintf(detail, sizeof(detail), "http_%ld", status);
		log_warn("allowlist: fetching the %s: HTTP status %ld", what, status);
		return fetch_failed(err, detail);
	}
	return 0;
}

/* The API URL of the named asset of the release JSON in c->body (malloc'd). */
static int find_asset_url(struct allowlist_client *c, char **url, struct ee_error *err)
{
	*url = NULL;
	struct json_object *release = json_parse_value(c->body.data, c->body.len);
	bool present;
	struct json_object *assets =
		release && json_object_is_type(release, json_type_object)
			? json_get(release, "assets", &present)
			: NULL;
	if (!assets || !json_object_is_type(assets, json_type_array)) {
		json_object_put(release);
		log_warn("allowlist: the release JSON has no assets array");
		return fetch_failed(err, "bad_release");
	}
	const char *found = NULL;
	for (size_t i = 0; i < json_object_array_length(assets) && !found; i++) {
		struct json_object *a = json_object_array_get_idx(assets, i);
		const char *name, *u;
		size_t name_len, u_len;
		if (!a || !json_object_is_type(a, json_type_object) ||
		    json_get_string(a, "name", &name, &name_len) != JSON_FIELD_OK ||
		    strcmp(name, c->opt.asset_name) != 0)
			continue;
		if (json_get_string(a, "url", &u, &u_len) != JSON_FIELD_OK) {
			json_object_put(release);
			log_warn("allowlist: asset %s has no url", c->opt.asset_name);
			return fetch_failed(err, "bad_release");
		}
		found = u;
	}
	if (!found) {
		json_object_put(release);
		log_warn("allowlist: the release has no asset %s", c->opt.asset_name);
		return ee_fail(err, 404, "allowlist_not_found");
	}
	/* The token is only ever sent to the API itself. */
	size_t base_len = strlen(c->opt.api_url);
	if (strncmp(found, c->opt.api_url, base_len) != 0 ||
	    strncmp(found + base_len, "/repos/", 7) != 0 ||
	    !util_valid_printable(found, strlen(found), ALLOWLIST_URL_MAX * 2)) {
		json_object_put(release);
		log_warn("allowlist: asset %s has a url outside the API; refused", c->opt.asset_name);
		return fetch_failed(err, "bad_asset_url");
	}
	*url = strdup(found);
	json_object_put(release);
	return *url ? 0 : ee_fail(err, 503, "out_of_memory");
}

/* Fetches and checks the allowlist; *text is the asset as downloaded. */
static int allowlist_fetch(struct allowlist_client *c, const char *repo, const char *tag,
                           char **text, struct json_object **parsed, struct ee_error *err)
{
	*text = NULL;
	*parsed = NULL;
	const char *slash = strchr(repo, '/');
	char *owner = curl_easy_escape(c->curl, repo, (int)(slash - repo));
	char *name = curl_easy_escape(c->curl, slash + 1, 0);
	char *etag = curl_easy_escape(c->curl, tag, 0);
	char *url = NULL;
	int rc = -1;
	if (!owner || !name || !etag) {
		rc = ee_fail(err, 503, "out_of_memory");
		goto out;
	}
	size_t url_size = strlen(c->opt.api_url) + strlen(owner) + strlen(name) + strlen(etag) + 32;
	url = malloc(url_size);
	if (!url) {
		rc = ee_fail(err, 503, "out_of_memory");
		goto out;
	}
	snprintf(url, url_size, "%s/repos/%s/%s/releases/tags/%s", c->opt.api_url, owner, name,
	         etag);
	if (github_get(c, url, "Accept: application/vnd.github+json", false, "release", err) != 0)
		goto out;
	free(url);
	if (find_asset_url(c, &url, err) != 0)
		goto out;
	if (github_get(c, url, "Accept: application/octet-stream", true, "allowlist asset", err) != 0)
		goto out;
	struct json_object *a = json_parse_value(c->body.data, c->body.len);
	if (!a) {
		rc = invalid(err, "the asset is not JSON");
		goto out;
	}
	if (allowlist_validate(a, err) != 0) {
		json_object_put(a);
		goto out;
	}
	*text = strndup(c->body.data, c->body.len);
	if (!*text) {
		json_object_put(a);
		rc = ee_fail(err, 503, "out_of_memory");
		goto out;
	}
	*parsed = a;
	rc = 0;
out:
	curl_free(owner);
	curl_free(name);
	curl_free(etag);
	free(url);
	return rc;
}

/* A cached body as an allowlist, or NULL if it no longer reads as one. */
static struct json_object *parse_cached(const char *repo, const char *tag, const char *body)
{
	struct json_object *a = json_parse_value(body, strlen(body));
	struct ee_error e;
	if (!a || allowlist_validate(a, &e) != 0) {
		log_warn("allowlist cache: entry for %s@%s does not read; fetching again", repo, tag);
		json_object_put(a);
		return NULL;
	}
	return a;
}

/* ---- failed look-ups ---- */

/* The remembered failure of repo@tag, if it is still to be answered at now_ms. */
static const struct negative *negative_find(const struct allowlist_client *c, const char *repo,
                                            const char *tag, int64_t now_ms)
{
	for (size_t i = 0; i < ALLOWLIST_NEGATIVE_MAX; i++) {
		const struct negative *n = &c->negative[i];
		/* A clock that went back does not stretch the interval. */
		if (n->until && now_ms < n->until && now_ms >= n->at && strcmp(n->repo, repo) == 0 &&
		    strcmp(n->tag, tag) == 0)
			return n;
	}
	return NULL;
}

/* Remembers a failed look-up; a slot of the same release, a free or stale one, or the oldest. */
static void negative_remember(struct allowlist_client *c, const char *repo, const char *tag,
                              const struct ee_error *err, int64_t now_ms)
{
	if (c->opt.negative_ttl_ms <= 0 || strcmp(err->reason, "out_of_memory") == 0)
		return;
	struct negative *slot = NULL;
	for (size_t i = 0; i < ALLOWLIST_NEGATIVE_MAX && !slot; i++) {
		struct negative *n = &c->negative[i];
		if (n->until && strcmp(n->repo, repo) == 0 && strcmp(n->tag, tag) == 0)
			slot = n;
	}
	for (size_t i = 0; i < ALLOWLIST_NEGATIVE_MAX && !slot; i++) {
		if (c->negative[i].until <= now_ms)
			slot = &c->negative[i];
	}
	if (!slot) {
		slot = &c->negative[0];
		for (size_t i = 1; i < ALLOWLIST_NEGATIVE_MAX; i++) {
			if (c->negative[i].at < slot->at)
				slot = &c->negative[i];
		}
	}
	snprintf(slot->repo, sizeof(slot->repo), "%s", repo);
	snprintf(slot->tag, sizeof(slot->tag), "%s", tag);
	slot->err = *err;
	slot->at = now_ms;
	slot->until = now_ms + c->opt.negative_ttl_ms;
}

int allowlist_get(struct allowlist_client *c, struct ee_db *db, const char *repo,
                  const char *release_tag, int64_t now_ms, struct json_object **allowlist,
                  struct ee_error *err)
{
	*allowlist = NULL;
	if (!repo || !release_tag || !valid_repo(repo) || !valid_tag(release_tag)) {
		log_warn("allowlist: repo or release tag cannot name a GitHub release");
		return ee_fail(err, 404, "allowlist_not_found");
	}

	struct cached cached = {0};
	struct json_object *cached_list = NULL;
	if (cache_read(db, repo, release_tag, &cached))
		cached_list = parse_cached(repo, release_tag, cached.body);
	if (cached_list && now_ms < cached.expires_at) {
		free(cached.body);
		*allowlist = cached_list;
		return 0;
	}

	char *text;
	struct json_object *fresh;
	struct ee_error fetch_err;
	ee_error_clear(&fetch_err);
	const struct negative *failed = negative_find(c, repo, release_tag, now_ms);
	if (failed) {
		/* Asked and refused a moment ago: GitHub is not asked again before the interval ends. */
		fetch_err = failed->err;
	} else if (allowlist_fetch(c, repo, release_tag, &text, &fresh, &fetch_err) == 0) {
		cache_change(db, SQL_ALLOWLIST_CACHE_PUT, repo, release_tag, text, now_ms,
		             now_ms + c->opt.ttl_ms);
		free(text);
		free(cached.body);
		json_object_put(cached_list);
		*allowlist = fresh;
		return 0;
	}

	if (!failed)
		negative_remember(c, repo, release_tag, &fetch_err, now_ms);
	bool outage = strncmp(fetch_err.reason, "allowlist_fetch_failed", 22) == 0;
	if (outage && cached_list && now_ms - cached.fetched_at < c->opt.stale_max_ms) {
		char when[EE_RFC3339_MAX];
		time_format_rfc3339(cached.fetched_at, when);
		log_warn("allowlist %s@%s: refresh failed (%s); using the copy fetched at %s", repo,
		         release_tag, fetch_err.reason, when);
		free(cached.body);
		*allowlist = cached_list;
		return 0;
	}
	/* A release or asset that is gone, or no longer an allowlist, is not
	 * an outage: the old copy must not stand in for it later. */
	if (cached.body && (strcmp(fetch_err.reason, "allowlist_not_found") == 0 ||
	                    strcmp(fetch_err.reason, "allowlist_invalid") == 0))
		cache_change(db, SQL_ALLOWLIST_CACHE_DELETE, repo, release_tag, NULL, 0, 0);
	free(cached.body);
	json_object_put(cached_list);
	if (err)
		*err = fetch_err;
	return -1;
}
