/*
 * config.c - ee-agent's environment (docs/AGENT.md lists every variable).
 *
 * The original agent's variables keep their names and defaults; the rest
 * are new.  A bad value stops the agent at start with the variable named:
 * it is a mistake a person must fix, unlike a control plane that is down,
 * which the agent waits out.
 */
#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

#define DEFAULT_BACKEND_URL "http://127.0.0.1:8080"
#define DEFAULT_TSM_DIR "/sys/kernel/config/tsm/report"
#define DEFAULT_STATUS_ADDR "127.0.0.1:9901"
#define VM_IMAGE_ID_FILE "/etc/easy-enclave/vm_image_id"
#define VM_IMAGE_ID_MAX 256
#define MIB (1024 * 1024)

static int invalid(struct ee_error *err, const char *name)
{
	return ee_fail_detail(err, 500, "invalid_config", name);
}

static int missing(struct ee_error *err, const char *name)
{
	return ee_fail_detail(err, 500, "missing_config", name);
}

static bool valid_host(const char *s, size_t len)
{
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == ':'))
			return false;
	}
	return true;
}

/* ws://host[:port][/path] or wss://...; [v6] literals keep their brackets out of host. */
static int parse_control_url(struct agent_config *cfg, struct ee_error *err)
{
	const char *url = cfg->control_url;
	const char *p;
	if (strncmp(url, "ws://", 5) == 0) {
		cfg->control_tls = false;
		cfg->control_port = 80;
		p = url + 5;
	} else if (strncmp(url, "wss://", 6) == 0) {
		cfg->control_tls = true;
		cfg->control_port = 443;
		p = url + 6;
	} else {
		return invalid(err, "EE_CONTROL_WS");
	}
	const char *host = p, *host_end;
	if (*p == '[') {
		host = p + 1;
		host_end = strchr(host, ']');
		if (!host_end)
			return invalid(err, "EE_CONTROL_WS");
		p = host_end + 1;
	} else {
		p += strcspn(p, ":/?#");
		host_end = p;
	}
	if (!valid_host(host, (size_t)(host_end - host)))
		return invalid(err, "EE_CONTROL_WS");
	cfg->control_host = strndup(host, (size_t)(host_end - host));
	if (*p == ':') {
		char *end;
		long port = strtol(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535)
			return invalid(err, "EE_CONTROL_WS");
		cfg->control_port = (int)port;
		p = end;
	}
	if (*p == '#')
		return invalid(err, "EE_CONTROL_WS");
	if (*p == '\0')
		cfg->control_path = strdup("/");
	else if (*p == '/')
		cfg->control_path = strdup(p);
	else if (*p == '?') {
		size_t n = strlen(p) + 2;
		cfg->control_path = malloc(n);
		if (cfg->control_path)
			snprintf(cfg->control_path, n, "/%s", p);
	} else
		return invalid(err, "EE_CONTROL_WS");
	if (!cfg->control_host || !cfg->control_path)
		return ee_fail(err, 500, "out_of_memory");
	if (!util_valid_printable(cfg->control_path, strlen(cfg->control_path), 2048) ||
	    strchr(cfg->control_path, ' ') || strchr(cfg->control_path, '#'))
		return invalid(err, "EE_CONTROL_WS");
	return 0;
}

static int required(const char *name, char **out, struct ee_error *err)
{
	*out = config_get_string(name, NULL);
	if (!*out)
		return missing(err, name);
	if (!util_valid_printable(*out, strlen(*out), 256))
		return invalid(err, name);
	return 0;
}

/* A version 4 UUID, the original's default agent id. */
static char *random_agent_id(void)
{
	unsigned char b[16];
	if (util_random_bytes(b, sizeof(b)) != 0)
		return NULL;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	char hex[33];
	util_hex_encode(b, sizeof(b), hex);
	char *id = malloc(37);
	if (id)
		snprintf(id, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
		         hex + 20);
	return id;
}

/* VM_IMAGE_ID, else the first line of /etc/easy-enclave/vm_image_id, else none. */
static int load_vm_image_id(struct agent_config *cfg, struct ee_error *err)
{
	cfg->vm_image_id = config_get_string("VM_IMAGE_ID", NULL);
	if (!cfg->vm_image_id) {
		char *path = config_get_string("EE_VM_IMAGE_ID_FILE", VM_IMAGE_ID_FILE);
		if (!path)
			return ee_fail(err, 500, "out_of_memory");
		FILE *f = fopen(path, "r");
		free(path);
		if (!f)
			return 0;
		char line[VM_IMAGE_ID_MAX + 2];
		size_t n = fread(line, 1, sizeof(line) - 1, f);
		fclose(f);
		line[n] = '\0';
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
			line[--n] = '\0';
		if (n == 0)
			return 0;
		cfg->vm_image_id = strdup(line);
		if (!cfg->vm_image_id)
			return ee_fail(err, 500, "out_of_memory");
	}
	if (!util_valid_printable(cfg->vm_image_id, strlen(cfg->vm_image_id), VM_IMAGE_ID_MAX))
		return invalid(err, "VM_IMAGE_ID");
	return 0;
}

static int load_status_addr(struct agent_config *cfg, struct ee_error *err)
{
	char *addr = config_get_string("EE_STATUS_ADDR", DEFAULT_STATUS_ADDR);
	if (!addr)
		return ee_fail(err, 500, "out_of_memory");
	if (strcmp(addr, "off") == 0) {
		free(addr);
		return 0;
	}
	char *colon = strrchr(addr, ':');
	char *end;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || colon == addr || end == colon + 1 || *end || port < 0 || port > 65535) {
		free(addr);
		return invalid(err, "EE_STATUS_ADDR");
	}
	*colon = '\0';
	cfg->status_bind = addr;
	cfg->status_port = (int)port;
	return 0;
}

int agent_config_load(struct agent_config *cfg, struct ee_error *err)
{
	memset(cfg, 0, sizeof(*cfg));
	if (required("EE_CONTROL_WS", &cfg->control_url, err) != 0 ||
	    parse_control_url(cfg, err) != 0)
		return -1;
	cfg->control_ca_file = config_get_string("EE_CONTROL_CA_FILE", NULL);
	if (cfg->control_ca_file && !cfg->control_tls)
		return invalid(err, "EE_CONTROL_CA_FILE"); /* a CA for a plain ws:// URL is a mistake */

	if (required("EE_REPO", &cfg->repo, err) != 0 ||
	    required("EE_RELEASE_TAG", &cfg->release_tag, err) != 0 ||
	    required("EE_APP_NAME", &cfg->app_name, err) != 0)
		return -1;
	cfg->network = config_get_string("EE_NETWORK", "forge-1");
	cfg->agent_id = config_get_string("EE_AGENT_ID", NULL);
	if (!cfg->agent_id)
		cfg->agent_id = random_agent_id();
	if (!cfg->network || !cfg->agent_id)
		return ee_fail(err, 500, "out_of_memory");
	if (!util_valid_printable(cfg->network, strlen(cfg->network), 64))
		return invalid(err, "EE_NETWORK");
	if (!util_valid_printable(cfg->agent_id, strlen(cfg->agent_id), 128))
		return invalid(err, "EE_AGENT_ID");

	cfg->backend_url = config_get_string("EE_BACKEND_URL", DEFAULT_BACKEND_URL);
	if (!cfg->backend_url)
		return ee_fail(err, 500, "out_of_memory");
	size_t blen = strlen(cfg->backend_url);
	if ((strncmp(cfg->backend_url, "http://", 7) != 0 &&
	     strncmp(cfg->backend_url, "https://", 8) != 0) ||
	    !util_valid_printable(cfg->backend_url, blen, 2048) || strchr(cfg->backend_url, ' ') ||
	    strchr(cfg->backend_url, '?') || strchr(cfg->backend_url, '#'))
		return invalid(err, "EE_BACKEND_URL");
	while (blen > 0 && cfg->backend_url[blen - 1] == '/')
		cfg->backend_url[--blen] = '\0';
	cfg->health_path = config_get_string("EE_HEALTH_PATH", NULL);
	if (cfg->health_path &&
	    (cfg->health_path[0] != '/' ||
	     !util_valid_printable(cfg->health_path, strlen(cfg->health_path), AGENT_PATH_MAX) ||
	     strchr(cfg->health_path, ' ')))
		return invalid(err, "EE_HEALTH_PATH");

	int max_message, max_response;
	if (config_get_duration_ms("EE_HEALTH_INTERVAL_SEC", 60000, 100, 86400000,
	                           &cfg->health_interval_ms, err) != 0 ||
	    config_get_duration_ms("EE_RECONNECT_DELAY_SEC", 5000, 50, 3600000,
	                           &cfg->reconnect_delay_ms, err) != 0 ||
	    config_get_duration_ms("EE_RECONNECT_MAX_SEC", 60000, 50, 3600000,
	                           &cfg->reconnect_max_ms, err) != 0 ||
	    config_get_duration_ms("EE_BACKEND_TIMEOUT_SEC", 10000, 100, 3600000,
	                           &cfg->backend_timeout_ms, err) != 0 ||
	    config_get_duration_ms("EE_BACKEND_CONNECT_TIMEOUT_SEC", 5000, 100, 600000,
	                           &cfg->backend_connect_timeout_ms, err) != 0 ||
	    config_get_int("EE_BACKEND_WORKERS", 16, 1, 512, &cfg->backend_workers, err) != 0 ||
	    config_get_int("EE_BACKEND_QUEUE", 1024, 1, 65536, &cfg->backend_queue, err) != 0 ||
	    config_get_int("EE_TUNNEL_MAX_MESSAGE_BYTES", 16 * MIB, 64 * 1024, 1024 * MIB,
	                   &max_message, err) != 0 ||
	    config_get_int("EE_BACKEND_MAX_RESPONSE_BYTES", 8 * MIB, 0, 768 * MIB, &max_response,
	                   err) != 0 ||
	    config_get_int("EE_PING_INTERVAL_SEC", 30, 1, 3600, &cfg->ping_interval_sec, err) != 0)
		return -1;
	if (cfg->reconnect_max_ms < cfg->reconnect_delay_ms)
		return invalid(err, "EE_RECONNECT_MAX_SEC");
	cfg->max_message_bytes = (size_t)max_message;
	cfg->max_response_bytes = (size_t)max_response;
	/*
	 * The answer travels as base64 inside one message, which the control plane
	 * caps with the same variable: a larger one would cost the whole tunnel.
	 */
	if (cfg->max_response_bytes / 3 * 4 + 64 * 1024 > cfg->max_message_bytes)
		return invalid(err, "EE_BACKEND_MAX_RESPONSE_BYTES");

	char *source = config_get_string("EE_QUOTE_SOURCE", "tsm");
	if (!source)
		return ee_fail(err, 500, "out_of_memory");
	if (strcmp(source, "tsm") == 0) {
		cfg->quote_source = QUOTE_SOURCE_TSM;
	} else if (strcmp(source, "dev") == 0) {
		cfg->quote_source = QUOTE_SOURCE_DEV;
	} else {
		free(source);
		return invalid(err, "EE_QUOTE_SOURCE");
	}
	free(source);
	cfg->tsm_dir = config_get_string("EE_TSM_REPORT_DIR", DEFAULT_TSM_DIR);
	cfg->dev_quote_dir = config_get_string("EE_DEV_QUOTE_DIR", NULL);
	if (!cfg->tsm_dir)
		return ee_fail(err, 500, "out_of_memory");
	if (cfg->quote_source == QUOTE_SOURCE_DEV) {
		if (!cfg->dev_quote_dir)
			return missing(err, "EE_DEV_QUOTE_DIR");
		/* Production pins Intel's root only; a development quote there is a mistake. */
		if (strcmp(cfg->network, "forge-1") == 0)
			return invalid(err, "EE_QUOTE_SOURCE");
	}

	bool seal_vm;
	if (config_get_bool("SEAL_VM", false, &seal_vm, err) != 0 ||
	    config_get_bool("EE_SEALED", seal_vm, &cfg->sealed, err) != 0)
		return -1;
	if (load_vm_image_id(cfg, err) != 0 || load_status_addr(cfg, err) != 0)
		return -1;
	return 0;
}

void agent_config_free(struct agent_config *cfg)
{
	free(cfg->control_url);
	free(cfg->control_host);
	free(cfg->control_path);
	free(cfg->control_ca_file);
	free(cfg->repo);
	free(cfg->release_tag);
	free(cfg->app_name);
	free(cfg->network);
	free(cfg->agent_id);
	free(cfg->backend_url);
	free(cfg->health_path);
	free(cfg->tsm_dir);
	free(cfg->dev_quote_dir);
	free(cfg->vm_image_id);
	free(cfg->status_bind);
	memset(cfg, 0, sizeof(*cfg));
}
