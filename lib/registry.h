/*
 * registry.h - which agents serve which app, and whether an app may receive
 * traffic.
 *
 * An app name is bound to one repository the first time an agent of that
 * repository registers it; agents of the same repository may serve it side
 * by side.  ee-tunneld writes the rows as agents connect, attest, report
 * health and leave; ee-api reads them for /v1/resolve, /v1/apps and the
 * dashboard.  An agent is allowed when its registration has not expired,
 * its attestation is valid, its health passes, its tunnel is connected, and
 * it is sealed where the network requires it.  An app is allowed when one of
 * its agents is; the payload describes that agent (or, if none is allowed,
 * the most recently registered one).
 */
#ifndef EE_REGISTRY_H
#define EE_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "db.h"
#include "error.h"
#include "jsonutil.h"

#define REGISTRY_REPO_MAX 200
#define REGISTRY_TAG_MAX 128
#define REGISTRY_NETWORK_MAX 32
#define REGISTRY_TUNNEL_ID_MAX 128
#define REGISTRY_LIST_MAX 10000 /* rows a listing returns at most */

struct registry_policy {
	int registration_ttl_days;
	int registration_warn_days;
	const char *domain; /* endpoint is https://<app>.app.<domain> when set */
};

bool registry_network_known(const char *network);
bool registry_network_requires_sealed(const char *network);
bool registry_valid_repo(const char *repo, size_t len);
bool registry_valid_release_tag(const char *tag, size_t len);

/*
 * The status payload of one app, written to w (ee-api's answer, without a
 * tree); 404 "unknown_app" with nothing written.  *allowed mirrors the
 * payload.  One statement: one snapshot, inside or outside a transaction.
 */
int registry_write_app_status(struct ee_db *db, const struct registry_policy *policy,
                              const char *app_name, int64_t now_ms, bool with_agents,
                              struct json_writer *w, bool *allowed, struct ee_error *err);
/* Every app's status payload, by name, as one array written to w under key (NULL: none). */
int registry_write_apps(struct ee_db *db, const struct registry_policy *policy, int64_t now_ms,
                        struct json_writer *w, const char *key, struct ee_error *err);

/* The same payloads as json-c trees, for callers that read fields back. */
int registry_app_status(struct ee_db *db, const struct registry_policy *policy,
                        const char *app_name, int64_t now_ms, bool with_agents,
                        struct json_object **out, bool *allowed, struct ee_error *err);

int registry_list_apps(struct ee_db *db, const struct registry_policy *policy, int64_t now_ms,
                       struct json_object **out, struct ee_error *err);

/* The repository an app name is bound to; *found is false for a name never registered. */
int registry_app_binding(struct ee_db *db, const char *app_name, char repo[REGISTRY_REPO_MAX + 1],
                         bool *found, struct ee_error *err);

/* Writes, for ee-tunneld; each is one statement, callers group them in transactions. */
int registry_register_agent(struct ee_db *db, const struct registry_policy *policy,
                            const char *app_name, const char *repo, const char *release_tag,
                            const char *network, const char *agent_id, int64_t now_ms,
                            struct ee_error *err);
int registry_mark_attested(struct ee_db *db, const char *agent_id, const char *status,
                           bool sealed, int64_t now_ms, struct ee_error *err);
int registry_mark_health(struct ee_db *db, const char *agent_id, const char *status,
                         int64_t now_ms, struct ee_error *err);
int registry_mark_connection(struct ee_db *db, const char *agent_id, bool connected,
                             const char *tunnel_id, int64_t now_ms, struct ee_error *err);
int registry_disconnect_all(struct ee_db *db, int64_t now_ms, struct ee_error *err);

#endif
