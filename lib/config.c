/* config.c - reading and checking the environment; see config.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ratelimit.h"
#include "util.h"

static const char *env_value(const char *name)
{
	const char *v = getenv(name);
	return (v && *v) ? v : NULL;
}

char *config_get_string(const char *name, const char *def)
{
	const char *v = env_value(name);
	if (!v)
		v = def;
	return v ? strdup(v) : NULL;
}

static int invalid(struct ee_error *err, const char *name)
{
	return ee_fail_detail(err, 500, "invalid_config", name);
}

int config_get_int(const char *name, int def, int min, int max, int *out, struct ee_error *err)
{
	const char *v = env_value(name);
	if (!v) {
		*out = def;
		return 0;
	}
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || end == v || n < min || n > max)
		return invalid(err, name);
	*out = (int)n;
	return 0;
}

int config_get_duration_ms(const char *name, int def_ms, int min_ms, int max_ms, int *out,
                           struct ee_error *err)
{
	const char *v = env_value(name);
	if (!v) {
		*out = def_ms;
		return 0;
	}
	long long ms = 0;
	const char *p = v;
	if (*p < '0' || *p > '9')
		return invalid(err, name);
	while (*p >= '0' && *p <= '9') {
		ms = ms * 10 + (*p++ - '0');
		if (ms > 10000000)
			return invalid(err, name);
	}
	ms *= 1000;
	if (*p == '.') {
		p++;
		long long scale = 100;
		if (*p < '0' || *p > '9')
			return invalid(err, name);
		while (*p >= '0' && *p <= '9') {
			if (scale == 0)
				return invalid(err, name); /* finer than a millisecond */
			ms += (*p++ - '0') * scale;
			scale /= 10;
		}
	}
	if (*p != '\0' || ms < min_ms || ms > max_ms)
		return invalid(err, name);
	*out = (int)ms;
	return 0;
}

int config_get_bool(const char *name, bool def, bool *out, struct ee_error *err)
{
	const char *v = env_value(name);
	if (!v) {
		*out = def;
		return 0;
	}
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return invalid(err, name);
}

/* A token is configured or not; when configured it must be usable in a header. */
static int get_token(const char *name, char **out, struct ee_error *err)
{
	const char *v = env_value(name);
	*out = NULL;
	if (!v)
		return 0;
	if (!util_valid_printable(v, strlen(v), 512))
		return invalid(err, name);
	if (strlen(v) < 16)
		log_warn("%s is shorter than 16 characters; use a long random token", name);
	*out = strdup(v);
	return *out ? 0 : invalid(err, name);
}

int config_load(struct ee_config *cfg, struct ee_error *err)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->db_path = config_get_string("EE_DB_PATH", EE_DEFAULT_DB_PATH);
	cfg->db_synchronous = config_get_string("EE_DB_SYNCHRONOUS", "FULL");
	cfg->control_bind = config_get_string("EE_CONTROL_BIND", "0.0.0.0");
	cfg->proxy_bind = config_get_string("EE_PROXY_BIND", "0.0.0.0");
	cfg->allowlist_asset =
		config_get_string("EE_ALLOWLIST_ASSET", "agent-attestation-allowlist.json");
	cfg->pccs_url = config_get_string("EE_PCCS_URL", NULL);
	cfg->domain = config_get_string("EE_DOMAIN", NULL);
	cfg->log_level = config_get_string("EE_LOG_LEVEL", "info");
	if (!cfg->db_path || !cfg->db_synchronous || !cfg->control_bind || !cfg->proxy_bind ||
	    !cfg->allowlist_asset || !cfg->log_level)
		return ee_fail(err, 500, "out_of_memory");

	if (strcmp(cfg->db_synchronous, "FULL") != 0 && strcmp(cfg->db_synchronous, "NORMAL") != 0)
		return invalid(err, "EE_DB_SYNCHRONOUS");
	enum ee_log_level level;
	if (ee_log_parse_level(cfg->log_level, &level) != 0)
		return invalid(err, "EE_LOG_LEVEL");
	if (cfg->domain && !util_valid_printable(cfg->domain, strlen(cfg->domain), 200))
		return invalid(err, "EE_DOMAIN");

	if (config_get_int("EE_DB_BUSY_TIMEOUT_MS", EE_DEFAULT_BUSY_TIMEOUT_MS, 0, 600000,
	                   &cfg->db_busy_timeout_ms, err) ||
	    config_get_int("EE_CONTROL_PORT", 8088, 1, 65535, &cfg->control_port, err) ||
	    config_get_int("EE_PROXY_PORT", 9090, 1, 65535, &cfg->proxy_port, err) ||
	    config_get_int("EE_ATTEST_INTERVAL_SEC", 3600, 1, 31 * 86400, &cfg->attest_interval_sec,
	                   err) ||
	    config_get_int("EE_ATTEST_DEADLINE_SEC", 30, 1, 3600, &cfg->attest_deadline_sec, err) ||
	    config_get_int("EE_REGISTRATION_TTL_DAYS", 30, 1, 3650, &cfg->registration_ttl_days,
	                   err) ||
	    config_get_int("EE_REGISTRATION_WARN_DAYS", 3, 0, 3650, &cfg->registration_warn_days,
	                   err) ||
	    config_get_int("EE_HEALTH_TIMEOUT_SEC", 120, 1, 86400, &cfg->health_timeout_sec, err) ||
	    config_get_int("EE_MAX_BODY_BYTES", EE_DEFAULT_MAX_BODY_BYTES, 1024, 64 * 1024 * 1024,
	                   &cfg->max_body_bytes, err) ||
	    config_get_int("EE_REQUEST_READ_TIMEOUT_SEC", 30, 1, 3600, &cfg->request_read_timeout_sec,
	                   err) ||
	    config_get_int("EE_AUTH_FAIL_LIMIT", EE_DEFAULT_AUTH_FAIL_LIMIT, 0, RATELIMIT_MAX_COUNT,
	                   &cfg->auth_fail_limit, err) ||
	    config_get_int("EE_AUTH_FAIL_WINDOW_SEC", EE_DEFAULT_AUTH_FAIL_WINDOW_SEC, 1, 86400,
	                   &cfg->auth_fail_window_sec, err) ||
	    netaddr_trust_load(&cfg->trusted_proxies, err))
		return -1;

	if (get_token("EE_ADMIN_TOKEN", &cfg->admin_token, err) ||
	    get_token("EE_LAUNCHER_TOKEN", &cfg->launcher_token, err) ||
	    get_token("EE_UPTIME_TOKEN", &cfg->uptime_token, err) ||
	    get_token("EE_GITHUB_TOKEN", &cfg->github_token, err))
		return -1;
	return 0;
}

void config_free(struct ee_config *cfg)
{
	char **fields[] = {&cfg->db_path,        &cfg->db_synchronous, &cfg->control_bind,
	                   &cfg->proxy_bind,     &cfg->admin_token,    &cfg->launcher_token,
	                   &cfg->uptime_token,   &cfg->github_token,   &cfg->allowlist_asset,
	                   &cfg->pccs_url,       &cfg->domain,         &cfg->log_level};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (*fields[i]) {
			/* Tokens are wiped before the memory goes back to the allocator. */
			memset(*fields[i], 0, strlen(*fields[i]));
			free(*fields[i]);
			*fields[i] = NULL;
		}
	}
}
