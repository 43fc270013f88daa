/*
 * allowlist.h - the attestation allowlist of a release: the asset
 * EE_ALLOWLIST_ASSET of the GitHub release repo@release_tag, fetched through
 * the GitHub REST API (EE_GITHUB_API_URL) and cached in the database
 * (allowlist_cache) for EE_ALLOWLIST_TTL_SEC.
 *
 * Fetching:
 *   GET {api}/repos/{owner}/{name}/releases/tags/{tag}
 *       Accept: application/vnd.github+json
 *   GET <the asset's "url">  Accept: application/octet-stream
 *       (GitHub answers with a redirect to its download host, which is followed)
 * Both carry "Authorization: Bearer <EE_GITHUB_TOKEN>" when a token is
 * configured.  The token goes only to the API host: an asset "url" that is
 * not under {api}/repos/ is refused, and libcurl drops the header when a
 * redirect leaves the host (CURLOPT_UNRESTRICTED_AUTH stays off).  Tokens
 * never appear in a log line.
 *
 * The asset is a JSON object:
 *   "measurements"        required, a non-empty object of at most
 *                         ATTEST_MAX_MEASUREMENTS values, each a string,
 *                         boolean or integer (the agent's measurements)
 *   "quote_measurements"  optional, an object whose keys are among mrtd,
 *                         rtmr0, rtmr1, rtmr2, rtmr3, each 96 hex digits: a key
 *                         the verifier would not check is refused, not ignored
 *   "report_data"         optional, 128 hex digits
 * Other members (version, release_tag, created_at) are allowed and ignored.
 *
 * Caching.  An entry is used until expires_at (fetched_at + TTL).  Then the
 * allowlist is fetched again; if that fails with allowlist_fetch_failed and
 * the entry is less than stale_max (24 h) old, the entry is used and a
 * warning logged.  allowlist_not_found and allowlist_invalid are answers,
 * not outages: they delete the entry and are returned.
 *
 * Failed look-ups.  A look-up that fails (allowlist_fetch_failed,
 * allowlist_not_found, allowlist_invalid) is remembered by the client for
 * negative_ttl_ms (EE_ALLOWLIST_NEGATIVE_TTL_SEC, default 60 s) per
 * repo@release_tag: until then the same answer is given again without a
 * request to GitHub (a cached copy still stands in for an outage as
 * above), so repeated claims to a missing or failing release cost GitHub
 * one request per interval.  Afterwards the next call asks again: a
 * transient failure is never kept.  At most ALLOWLIST_NEGATIVE_MAX are
 * remembered; beyond that the oldest is forgotten.  out_of_memory is not
 * remembered.
 *
 * Reasons:
 *   503 allowlist_fetch_failed:<detail>  detail: timeout, network, too_large,
 *                                        http_<status>, bad_release,
 *                                        bad_asset_url
 *   404 allowlist_not_found              no such release (404), no asset of
 *                                        that name, the asset is gone (404),
 *                                        or a repo/tag that cannot name one
 *   502 allowlist_invalid                the asset is not an allowlist
 *   503 out_of_memory
 * A failure to read or write the cache is logged and otherwise ignored.
 *
 * A client is one worker thread's: it owns a CURL handle.  Blocking.
 */
#ifndef EE_ALLOWLIST_H
#define EE_ALLOWLIST_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "db.h"
#include "error.h"

#define ALLOWLIST_URL_MAX 512
#define ALLOWLIST_ASSET_MAX 255
#define ALLOWLIST_TOKEN_MAX 512
#define ALLOWLIST_DEFAULT_API_URL "https://api.github.com"
#define ALLOWLIST_DEFAULT_ASSET "agent-attestation-allowlist.json"
#define ALLOWLIST_DEFAULT_TTL_SEC 3600
#define ALLOWLIST_DEFAULT_NEGATIVE_TTL_SEC 60
#define ALLOWLIST_NEGATIVE_MAX 128 /* failed look-ups remembered per client */
#define ALLOWLIST_DEFAULT_STALE_MAX_MS (24 * 3600 * INT64_C(1000))
#define ALLOWLIST_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define ALLOWLIST_DEFAULT_TIMEOUT_MS 20000
#define ALLOWLIST_DEFAULT_MAX_BODY_BYTES (1024 * 1024)

struct allowlist_options {
	char api_url[ALLOWLIST_URL_MAX];          /* EE_GITHUB_API_URL; trailing '/' ignored */
	char asset_name[ALLOWLIST_ASSET_MAX + 1]; /* EE_ALLOWLIST_ASSET */
	char token[ALLOWLIST_TOKEN_MAX + 1];      /* EE_GITHUB_TOKEN; empty: none */
	int64_t ttl_ms;                           /* EE_ALLOWLIST_TTL_SEC */
	int64_t stale_max_ms;  /* how old an entry may be and still stand in for a failed fetch */
	int64_t negative_ttl_ms; /* EE_ALLOWLIST_NEGATIVE_TTL_SEC; 0: failures are not remembered */
	long connect_timeout_ms;
	long timeout_ms;
	size_t max_body_bytes; /* for the release JSON and the asset each */
};

/* The defaults: api.github.com, the default asset, no token, 1 h TTL, 60 s for failures, 24 h stale, 5 s/20 s, 1 MiB. */
void allowlist_options_default(struct allowlist_options *o);
/*
 * The defaults, then EE_GITHUB_API_URL, EE_ALLOWLIST_ASSET, EE_GITHUB_TOKEN,
 * EE_ALLOWLIST_TTL_SEC (0..2592000), EE_ALLOWLIST_NEGATIVE_TTL_SEC
 * (0..3600).  An invalid value is 500
 * invalid_config:<variable>.
 */
int allowlist_options_from_env(struct allowlist_options *o, struct ee_error *err);
/* Wipes the options (the token) once a client has been created from them. */
void allowlist_options_clear(struct allowlist_options *o);

struct allowlist_client;

int allowlist_client_create(const struct allowlist_options *o, struct allowlist_client **out,
                            struct ee_error *err);
void allowlist_client_destroy(struct allowlist_client *c);

/*
 * The allowlist of repo ("owner/name") at release_tag, checked as above.
 * now_ms is the current time (Unix ms).  On success *allowlist is a new
 * reference the caller puts.  Call outside any transaction on db.
 */
int allowlist_get(struct allowlist_client *c, struct ee_db *db, const char *repo,
                  const char *release_tag, int64_t now_ms, struct json_object **allowlist,
                  struct ee_error *err);

/* The shape check alone (for tests and tools): 0, or -1 with 502 allowlist_invalid. */
int allowlist_validate(struct json_object *allowlist, struct ee_error *err);

#endif
