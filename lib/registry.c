/* registry.c - app and agent state and the allowed decision; see registry.h. */
#include "registry.h"

#include <string.h>

#include "jsonutil.h"
#include "util.h"

#define DAY_MS INT64_C(86400000)

bool registry_network_known(const char *network)
{
	return strcmp(network, "forge-1") == 0 || strcmp(network, "sandbox-1") == 0;
}

bool registry_network_requires_sealed(const char *network)
{
	/* Anything but the development network is held to the production rule. */
	return strcmp(network, "sandbox-1") != 0;
}

static bool charset_ok(const char *s, size_t len, size_t max, const char *extra)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c && strchr(extra, c))))
			return false;
	}
	return true;
}

static bool dot_segment(const char *p, size_t n)
{
	return (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.');
}

bool registry_valid_repo(const char *repo, size_t len)
{
	const char *slash = memchr(repo, '/', len);
	if (!slash || slash == repo || slash == repo + len - 1 ||
	    memchr(slash + 1, '/', len - (size_t)(slash - repo) - 1))
		return false;
	/* "." and ".." name no repository, and would walk out of an allowlist directory. */
	size_t owner_len = (size_t)(slash - repo);
	if (dot_segment(repo, owner_len) || dot_segment(slash + 1, len - owner_len - 1))
		return false;
	return charset_ok(repo, len, REGISTRY_REPO_MAX, "._-/");
}

bool registry_valid_release_tag(const char *tag, size_t len)
{
	return charset_ok(tag, len, REGISTRY_TAG_MAX, "._+-");
}

struct agent_row {
	char agent_id[EE_NODE_ID_MAX + 1];
	char release_tag[REGISTRY_TAG_MAX + 1];
	char network[REGISTRY_NETWORK_MAX + 1];
	char attestation_status[32];
	char health_status[32];
	int64_t registered_at;
	int64_t expires_at;
	int64_t last_attested_at;
	int64_t last_health_at;
	bool sealed;
	bool ws_connected;
};

/* Column text into out, cut to fit; "" for NULL. */
static void copy_column(sqlite3_stmt *stmt, int col, char *out, size_t size)
{
	const char *s = db_column_text(stmt, col);
	size_t n = s ? strnlen(s, size - 1) : 0;
	memcpy(out, s ? s : "", n);
	out[n] = '\0';
}

/* Appends text at *at inside out[size], cut to fit, kept NUL-terminated. */
static void append_bounded(char *out, size_t size, size_t *at, const char *text)
{
	size_t n = strnlen(text, size - 1 - *at);
	memcpy(out + *at, text, n);
	*at += n;
	out[*at] = '\0';
}

static void read_agent(sqlite3_stmt *stmt, struct agent_row *a)
{
	copy_column(stmt, 0, a->agent_id, sizeof(a->agent_id));
	copy_column(stmt, 1, a->release_tag, sizeof(a->release_tag));
	copy_column(stmt, 2, a->network, sizeof(a->network));
	a->registered_at = sqlite3_column_int64(stmt, 3);
	a->expires_at = sqlite3_column_int64(stmt, 4);
	a->sealed = sqlite3_column_int(stmt, 5) != 0;
	copy_column(stmt, 6, a->attestation_status, sizeof(a->attestation_status));
	copy_column(stmt, 7, a->health_status, sizeof(a->health_status));
	a->ws_connected = sqlite3_column_int(stmt, 8) != 0;
	a->last_attested_at = sqlite3_column_int64(stmt, 10);
	a->last_health_at = sqlite3_column_int64(stmt, 11);
}

static const char *registration_state(const struct agent_row *a,
                                      const struct registry_policy *policy, int64_t now)
{
	if (now >= a->expires_at)
		return "expired";
	if (now >= a->expires_at - (int64_t)policy->registration_warn_days * DAY_MS)
		return "warning";
	return "active";
}

static bool agent_allowed(const struct agent_row *a, const struct registry_policy *policy,
                          int64_t now)
{
	/* "warning" still serves: it announces the expiry, it does not cause it. */
	return strcmp(registration_state(a, policy, now), "expired") != 0 &&
	       strcmp(a->attestation_status, "valid") == 0 &&
	       strcmp(a->health_status, "pass") == 0 && a->ws_connected &&
	       (a->sealed || !registry_network_requires_sealed(a->network));
}

static void write_agent(struct json_writer *w, const struct agent_row *a,
                        const struct registry_policy *policy, int64_t now)
{
	json_write_object_begin(w, NULL);
	json_write_string(w, "agent_id", a->agent_id);
	json_write_string(w, "release_tag", a->release_tag);
	json_write_string(w, "network", a->network);
	json_write_time(w, "registered_at", a->registered_at);
	json_write_time(w, "registration_expires_at", a->expires_at);
	json_write_string(w, "registration_state", registration_state(a, policy, now));
	json_write_bool(w, "sealed", a->sealed);
	json_write_string(w, "attestation_status", a->attestation_status);
	json_write_string(w, "health_status", a->health_status);
	json_write_bool(w, "ws_connected", a->ws_connected);
	json_write_time(w, "last_attested_at", a->last_attested_at);
	json_write_time(w, "last_health_at", a->last_health_at);
	json_write_bool(w, "allowed", agent_allowed(a, policy, now));
	json_write_object_end(w);
}

/* Columns of SQL_APP_WITH_AGENTS and SQL_APPS_WITH_AGENTS after the agent's. */
#define COL_REPO 12
#define COL_APP_NAME 13

static bool same_app(sqlite3_stmt *stmt, const char *app_name)
{
	const char *name = db_column_text(stmt, COL_APP_NAME);
	return name && strcmp(name, app_name) == 0;
}

/*
 * Writes the payload of the app whose first row stmt has just stepped to
 * (*rc is SQLITE_ROW), reading that app's rows; leaves *rc at the step
 * after them: the next app's first row, SQLITE_DONE, or an error (and
 * then writes nothing).
 */
static void write_app(sqlite3_stmt *stmt, int *rc, const struct registry_policy *policy,
                      int64_t now, bool with_agents, struct json_writer *w, bool *allowed_out)
{
	char app_name[EE_APP_NAME_MAX + 1], repo[REGISTRY_REPO_MAX + 1];
	copy_column(stmt, COL_APP_NAME, app_name, sizeof(app_name));
	copy_column(stmt, COL_REPO, repo, sizeof(repo));
	struct agent_row chosen, row;
	bool have = false, chosen_allowed = false;
	int total = 0, allowed_count = 0;
	/* The agents array goes last in the payload but is known first. */
	struct buf agents_text;
	struct json_writer agents;
	buf_init(&agents_text);
	json_writer_init(&agents, &agents_text);
	if (with_agents)
		json_write_array_begin(&agents, NULL);
	do {
		if (sqlite3_column_type(stmt, 0) == SQLITE_NULL)
			continue; /* the LEFT JOIN's row of an app without agents */
		read_agent(stmt, &row);
		bool ok = agent_allowed(&row, policy, now);
		total++;
		allowed_count += ok;
		if (!have || (ok && !chosen_allowed)) {
			chosen = row;
			chosen_allowed = ok;
			have = true;
		}
		if (with_agents)
			write_agent(&agents, &row, policy, now);
	} while ((*rc = sqlite3_step(stmt)) == SQLITE_ROW && same_app(stmt, app_name));
	if (*rc != SQLITE_ROW && *rc != SQLITE_DONE) {
		buf_free(&agents_text);
		return; /* nothing written: the caller reports the error */
	}
	if (with_agents)
		json_write_array_end(&agents);

	const char *state = have ? registration_state(&chosen, policy, now) : "expired";
	json_write_object_begin(w, NULL);
	json_write_string(w, "app_name", app_name);
	json_write_string(w, "repo", repo);
	json_write_string(w, "release_tag", have ? chosen.release_tag : NULL);
	json_write_string(w, "network", have ? chosen.network : NULL);
	json_write_string(w, "agent_id", have ? chosen.agent_id : NULL);
	json_write_time(w, "registered_at", have ? chosen.registered_at : 0);
	json_write_time(w, "registration_expires_at", have ? chosen.expires_at : 0);
	json_write_string(w, "registration_state", state);
	json_write_bool(w, "sealed", have && chosen.sealed);
	json_write_string(w, "attestation_status", have ? chosen.attestation_status : "unknown");
	json_write_string(w, "health_status", have ? chosen.health_status : "unknown");
	json_write_bool(w, "ws_connected", have && chosen.ws_connected);
	json_write_time(w, "last_attested_at", have ? chosen.last_attested_at : 0);
	json_write_time(w, "last_health_at", have ? chosen.last_health_at : 0);
	json_write_bool(w, "allowed", chosen_allowed);
	/* The documented short form. */
	json_write_string(w, "status", state);
	char endpoint[EE_APP_NAME_MAX + 256];
	size_t at = 0;
	if (policy->domain) {
		append_bounded(endpoint, sizeof(endpoint), &at, "https://");
		append_bounded(endpoint, sizeof(endpoint), &at, app_name);
		append_bounded(endpoint, sizeof(endpoint), &at, ".app.");
		append_bounded(endpoint, sizeof(endpoint), &at, policy->domain);
	} else {
		append_bounded(endpoint, sizeof(endpoint), &at, "/v1/proxy/");
		append_bounded(endpoint, sizeof(endpoint), &at, app_name);
	}
	json_write_string_len(w, "endpoint", endpoint, at);
	json_write_time(w, "last_attest", have ? chosen.last_attested_at : 0);
	json_write_int(w, "agents_total", total);
	json_write_int(w, "agents_allowed", allowed_count);
	if (with_agents) {
		if (agents_text.failed)
			w->out->failed = true;
		else
			json_write_raw(w, "agents", agents_text.data, agents_text.len);
	}
	json_write_object_end(w);
	buf_free(&agents_text);
	if (allowed_out)
		*allowed_out = chosen_allowed;
}

int registry_write_app_status(struct ee_db *db, const struct registry_policy *policy,
                              const char *app_name, int64_t now_ms, bool with_agents,
                              struct json_writer *w, bool *allowed, struct ee_error *err)
{
	*allowed = false;
	sqlite3_stmt *stmt = db_stmt(db, SQL_APP_WITH_AGENTS, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, app_name);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		write_app(stmt, &rc, policy, now_ms, with_agents, w, allowed);
	else if (rc == SQLITE_DONE)
		rc = SQLITE_NOTFOUND;
	sqlite3_reset(stmt);
	if (rc == SQLITE_NOTFOUND)
		return ee_fail(err, 404, "unknown_app");
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, err);
	return 0;
}

int registry_write_apps(struct ee_db *db, const struct registry_policy *policy, int64_t now_ms,
                        struct json_writer *w, const char *key, struct ee_error *err)
{
	sqlite3_stmt *stmt = db_stmt(db, SQL_APPS_WITH_AGENTS, err);
	if (!stmt)
		return -1;
	json_write_array_begin(w, key);
	int rc = sqlite3_step(stmt);
	for (int listed = 0; rc == SQLITE_ROW && listed < REGISTRY_LIST_MAX; listed++)
		write_app(stmt, &rc, policy, now_ms, false, w, NULL);
	if (rc == SQLITE_ROW)
		rc = SQLITE_DONE; /* more apps than a listing shows */
	json_write_array_end(w);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, err);
	return 0;
}

/* The tree form of a payload just written, for callers that read fields back. */
static int payload_tree(struct buf *text, struct json_object **out, struct ee_error *err)
{
	if (text->failed)
		return ee_fail(err, 503, "out_of_memory");
	struct json_tokener *tok = json_tokener_new_ex(EE_JSON_MAX_DEPTH + 1);
	if (!tok)
		return ee_fail(err, 503, "out_of_memory");
	*out = json_tokener_parse_ex(tok, text->data, (int)text->len);
	json_tokener_free(tok);
	if (!*out)
		return ee_fail(err, 500, "internal_error");
	return 0;
}

int registry_app_status(struct ee_db *db, const struct registry_policy *policy,
                        const char *app_name, int64_t now_ms, bool with_agents,
                        struct json_object **out, bool *allowed, struct ee_error *err)
{
	*out = NULL;
	struct buf text;
	struct json_writer w;
	buf_init(&text);
	json_writer_init(&w, &text);
	int rc = registry_write_app_status(db, policy, app_name, now_ms, with_agents, &w, allowed, err);
	if (rc == 0)
		rc = payload_tree(&text, out, err);
	buf_free(&text);
	return rc;
}

int registry_list_apps(struct ee_db *db, const struct registry_policy *policy, int64_t now_ms,
                       struct json_object **out, struct ee_error *err)
{
	*out = NULL;
	struct buf text;
	struct json_writer w;
	buf_init(&text);
	json_writer_init(&w, &text);
	int rc = registry_write_apps(db, policy, now_ms, &w, NULL, err);
	if (rc == 0)
		rc = payload_tree(&text, out, err);
	buf_free(&text);
	return rc;
}

int registry_app_binding(struct ee_db *db, const char *app_name, char repo[REGISTRY_REPO_MAX + 1],
                         bool *found, struct ee_error *err)
{
	sqlite3_stmt *stmt = db_stmt(db, SQL_APP_GET, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, app_name);
	int rc = sqlite3_step(stmt);
	*found = rc == SQLITE_ROW;
	repo[0] = '\0';
	if (*found)
		copy_column(stmt, 1, repo, REGISTRY_REPO_MAX + 1);
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, err);
	return 0;
}

int registry_register_agent(struct ee_db *db, const struct registry_policy *policy,
                            const char *app_name, const char *repo, const char *release_tag,
                            const char *network, const char *agent_id, int64_t now_ms,
                            struct ee_error *err)
{
	sqlite3_stmt *stmt = db_stmt(db, SQL_APP_GET, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, app_name);
	int rc = sqlite3_step(stmt);
	bool exists = rc == SQLITE_ROW;
	bool same_repo = exists && db_column_text(stmt, 1) && strcmp(db_column_text(stmt, 1), repo) == 0;
	sqlite3_reset(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, err);
	if (exists && !same_repo)
		return ee_fail(err, 409, "app_name_taken");
	if (!exists) {
		stmt = db_stmt(db, SQL_APP_INSERT, err);
		if (!stmt)
			return -1;
		db_bind_text(stmt, 1, app_name);
		db_bind_text(stmt, 2, repo);
		db_bind_int64(stmt, 3, now_ms);
		if (db_exec_stmt(db, stmt, err) != 0)
			return -1;
	}
	stmt = db_stmt(db, SQL_AGENT_UPSERT, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, agent_id);
	db_bind_text(stmt, 2, app_name);
	db_bind_text(stmt, 3, release_tag);
	db_bind_text(stmt, 4, network);
	db_bind_int64(stmt, 5, now_ms);
	db_bind_int64(stmt, 6, now_ms + (int64_t)policy->registration_ttl_days * DAY_MS);
	return db_exec_stmt(db, stmt, err);
}

int registry_mark_attested(struct ee_db *db, const char *agent_id, const char *status,
                           bool sealed, int64_t now_ms, struct ee_error *err)
{
	sqlite3_stmt *stmt = db_stmt(db, SQL_AGENT_MARK_ATTESTED, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, agent_id);
	db_bind_text(stmt, 2, status);
	db_bind_int64(stmt, 3, sealed);
	db_bind_int64(stmt, 4, now_ms);
	return db_exec_stmt(db, stmt, err);
}

int registry_mark_health(struct ee_db *db, const char *agent_id, const char *status,
                         int64_t now_ms, struct ee_error *err)
{
	sqlite3_stmt *stmt = db_stmt(db, SQL_AGENT_MARK_HEALTH, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, agent_id);
	db_bind_text(stmt, 2, status);
	db_bind_int64(stmt, 3, now_ms);
	return db_exec_stmt(db, stmt, err);
}

int registry_mark_connection(struct ee_db *db, const char *agent_id, bool connected,
                             const char *tunnel_id, int64_t now_ms, struct ee_error *err)
{
	sqlite3_stmt *stmt = db_stmt(db, SQL_AGENT_MARK_CONNECTION, err);
	if (!stmt)
		return -1;
	db_bind_text(stmt, 1, agent_id);
	db_bind_int64(stmt, 2, connected);
	db_bind_text(stmt, 3, connected ? tunnel_id : NULL);
	db_bind_int64(stmt, 4, now_ms);
	return db_exec_stmt(db, stmt, err);
}

int registry_disconnect_all(struct ee_db *db, int64_t now_ms, struct ee_error *err)
{
	sqlite3_stmt *stmt = db_stmt(db, SQL_AGENTS_DISCONNECT_ALL, err);
	if (!stmt)
		return -1;
	db_bind_int64(stmt, 1, now_ms);
	return db_exec_stmt(db, stmt, err);
}
