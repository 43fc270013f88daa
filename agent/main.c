/*
 * ee-agent - the agent side of the tunnel: runs inside a TDX VM beside the
 * backend it publishes (docs/AGENT.md).
 *
 *   ee-agent                  run: connect, attest, serve, reconnect forever
 *   ee-agent --measurements   print this machine's allowlist entry and exit
 *   ee-agent --help
 *
 * Configuration is the environment only (docs/AGENT.md).  Exit status: 0
 * after SIGTERM or SIGINT, 2 on a configuration error, 1 when it cannot
 * start at all.
 */
#include "agent.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <libwebsockets.h>

#include "config.h"
#include "log.h"

static struct agent *signal_agent;

static void on_signal(int sig)
{
	(void)sig;
	struct agent *a = signal_agent;
	if (a) {
		a->stop_requested = 1;
		if (a->context)
			lws_cancel_service(a->context);
	}
}

static void lws_log_to_ours(int level, const char *line)
{
	size_t n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		n--;
	if (level & LLL_ERR)
		log_error("lws: %.*s", (int)n, line);
	else
		log_warn("lws: %.*s", (int)n, line);
}

static void usage(FILE *f)
{
	fputs("usage: ee-agent [--measurements]\n"
	      "  Configured by the environment: EE_CONTROL_WS, EE_REPO, EE_RELEASE_TAG,\n"
	      "  EE_APP_NAME, EE_NETWORK, EE_AGENT_ID, EE_BACKEND_URL, ... (docs/AGENT.md).\n"
	      "  --measurements  print the allowlist entry of this machine and exit\n",
	      f);
}

/* The allowlist document for this machine's release (docs/ATTESTATION.md's shape). */
static int print_measurements(const struct agent_config *cfg)
{
	struct quote_source *qs;
	struct ee_error err;
	if (quote_source_open(cfg, &qs, &err) != 0) {
		fprintf(stderr, "ee-agent: quote source: %s\n", err.reason);
		return 1;
	}
	struct json_object *m = quote_measurements(qs, &err);
	quote_source_close(qs);
	if (!m) {
		fprintf(stderr, "ee-agent: %s\n", err.reason);
		return 1;
	}
	struct json_object *doc = json_object_new_object();
	struct json_object *registers = json_object_new_object();
	static const char *const names[] = {"mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"};
	for (size_t i = 0; i < 5; i++) {
		struct json_object *v;
		if (json_object_object_get_ex(m, names[i], &v))
			json_object_object_add(registers, names[i], json_object_get(v));
	}
	json_object_object_add(doc, "measurements", m);
	json_object_object_add(doc, "quote_measurements", registers);
	puts(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
	                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
	return 0;
}

static struct lws_vhost *make_client_vhost(struct agent *a)
{
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.vhost_name = "tunnel";
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = agent_conn_protocols();
	if (a->cfg->control_tls) {
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		/* A CA file pins the control plane's CA: the system store is left out. */
		if (a->cfg->control_ca_file) {
			info.client_ssl_ca_filepath = a->cfg->control_ca_file;
			info.options |= LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
		}
	}
	return lws_create_vhost(a->context, &info);
}

static void make_status_vhost(struct agent *a)
{
	if (!a->cfg->status_bind)
		return;
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.vhost_name = "status";
	info.port = a->cfg->status_port;
	info.iface = a->cfg->status_bind;
	info.protocols = agent_status_protocols();
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	/* Without it the agent still serves: readiness is for supervisors, not for traffic. */
	if (!lws_create_vhost(a->context, &info))
		log_error("cannot listen on %s:%d for readiness; continuing without it",
		          a->cfg->status_bind, a->cfg->status_port);
	else
		log_info("readiness on http://%s:%d/ready", a->cfg->status_bind, a->cfg->status_port);
}

int main(int argc, char **argv)
{
	bool measurements = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--measurements") == 0) {
			measurements = true;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	enum ee_log_level level = EE_LOG_INFO;
	const char *lv = getenv("EE_LOG_LEVEL");
	if (lv && *lv && ee_log_parse_level(lv, &level) != 0) {
		fprintf(stderr, "ee-agent: invalid_config:EE_LOG_LEVEL\n");
		return 2;
	}
	ee_log_init("ee-agent", level);

	struct agent_config cfg;
	struct ee_error err;
	if (agent_config_load(&cfg, &err) != 0) {
		fprintf(stderr, "ee-agent: %s\n", err.reason);
		agent_config_free(&cfg);
		return 2;
	}
	if (measurements) {
		int rc = print_measurements(&cfg);
		agent_config_free(&cfg);
		return rc;
	}
	if (cfg.quote_source == QUOTE_SOURCE_DEV)
		log_warn("quote source dev: DEVELOPMENT ONLY, these quotes prove nothing about hardware");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "ee-agent: cannot initialise libcurl\n");
		agent_config_free(&cfg);
		return 1;
	}

	static struct agent a;
	a.cfg = &cfg;
	int rc = 1;
	if (outbox_init(&a.outbox) != 0) {
		fprintf(stderr, "ee-agent: out of memory\n");
		goto out_curl;
	}
	if (agent_conn_init(&a, &err) != 0 ||
	    backend_pool_start(&cfg, &a.outbox, &a.pool, &err) != 0 ||
	    attester_start(&cfg, &a.outbox, &a.attester, &err) != 0) {
		fprintf(stderr, "ee-agent: %s\n", err.reason);
		goto out_threads;
	}

	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_to_ours);
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	if (cfg.control_tls)
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.user = &a;
	/* The loop's read buffer: a burst of proxy_requests arrives in one read, not 4 KiB at a time. */
	info.pt_serv_buf_size = AGENT_SERVICE_BUFFER;
	a.context = lws_create_context(&info);
	if (!a.context) {
		fprintf(stderr, "ee-agent: cannot create the event loop\n");
		goto out_threads;
	}
	a.client_vhost = make_client_vhost(&a);
	if (!a.client_vhost) {
		fprintf(stderr, "ee-agent: cannot set up the client (EE_CONTROL_CA_FILE readable?)\n");
		goto out_context;
	}
	make_status_vhost(&a);
	pthread_mutex_lock(&a.outbox.lock);
	a.outbox.context = a.context;
	pthread_mutex_unlock(&a.outbox.lock);

	signal_agent = &a;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	log_info("ee-agent for %s (%s@%s) on %s, control plane %s, backend %s", cfg.app_name,
	         cfg.repo, cfg.release_tag, cfg.network, cfg.control_url, cfg.backend_url);
	agent_conn_start(&a);
	lws_cancel_service(a.context); /* anything posted before the context existed */
	while (!a.done) {
		if (lws_service(a.context, 0) < 0)
			break;
	}
	log_info("stopped");
	rc = 0;

out_context:
	pthread_mutex_lock(&a.outbox.lock);
	a.outbox.context = NULL;
	pthread_mutex_unlock(&a.outbox.lock);
out_threads:
	attester_stop(a.attester);
	backend_pool_stop(a.pool);
	if (a.context)
		lws_context_destroy(a.context);
	signal_agent = NULL;
	outbox_destroy(&a.outbox);
	agent_conn_free(&a);
out_curl:
	curl_global_cleanup();
	agent_config_free(&cfg);
	return rc;
}
