/*
 * config.h - the environment, read once and checked.
 *
 * Every setting is an environment variable with the original service's name
 * and default (docs/CONFIGURATION.md lists them all).  An empty variable is
 * the same as an unset one.  An invalid value is an error naming the variable,
 * and programs refuse to start on it.
 */
#ifndef EE_CONFIG_H
#define EE_CONFIG_H

#include <stdbool.h>

#include "error.h"
#include "netaddr.h"

#define EE_DEFAULT_DB_PATH "data/control-plane.db"
#define EE_DEFAULT_MAX_BODY_BYTES (1024 * 1024)
#define EE_DEFAULT_BUSY_TIMEOUT_MS 5000
#define EE_DEFAULT_AUTH_FAIL_LIMIT 20
#define EE_DEFAULT_AUTH_FAIL_WINDOW_SEC 300

struct ee_config {
	char *db_path;
	int db_busy_timeout_ms;        /* EE_DB_BUSY_TIMEOUT_MS */
	char *db_synchronous;          /* EE_DB_SYNCHRONOUS: FULL (default) or NORMAL */

	char *control_bind;            /* EE_CONTROL_BIND */
	int control_port;              /* EE_CONTROL_PORT */
	char *proxy_bind;              /* EE_PROXY_BIND */
	int proxy_port;                /* EE_PROXY_PORT */

	char *admin_token;             /* NULL when not configured */
	char *launcher_token;
	char *uptime_token;
	char *github_token;

	char *allowlist_asset;
	char *pccs_url;
	char *domain;                  /* EE_DOMAIN: apps are served at <app>.app.<domain> */

	int attest_interval_sec;
	int attest_deadline_sec;
	int registration_ttl_days;
	int registration_warn_days;
	int health_timeout_sec;

	int max_body_bytes;            /* EE_MAX_BODY_BYTES: largest request body ee-api reads */
	int request_read_timeout_sec;  /* EE_REQUEST_READ_TIMEOUT_SEC: a FastCGI request must arrive whole within it */
	int auth_fail_limit;           /* EE_AUTH_FAIL_LIMIT: failed tokens per client per window; 0 off */
	int auth_fail_window_sec;      /* EE_AUTH_FAIL_WINDOW_SEC */
	struct netaddr_trust trusted_proxies; /* EE_TRUSTED_PROXIES */
	char *log_level;               /* EE_LOG_LEVEL */
};

/* Reads the environment.  On an invalid value, err->reason names the variable. */
int config_load(struct ee_config *cfg, struct ee_error *err);
void config_free(struct ee_config *cfg);

/* Helpers for programs with their own variables.  Each names the variable on error. */
int config_get_int(const char *name, int def, int min, int max, int *out, struct ee_error *err);
int config_get_bool(const char *name, bool def, bool *out, struct ee_error *err);
/* Seconds, whole or with up to three decimals ("0.25"), as milliseconds. */
int config_get_duration_ms(const char *name, int def_ms, int min_ms, int max_ms, int *out,
                           struct ee_error *err);
/* Returns a malloc'd copy of the value or of def (which may be NULL). */
char *config_get_string(const char *name, const char *def);

#endif
