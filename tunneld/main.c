/*
 * main.c - ee-tunneld: configuration, the database, the two listeners, the
 * event loop and a clean stop.
 *
 * On start every agent the database says is connected is marked
 * disconnected: sockets do not survive a restart.  On SIGTERM or SIGINT it
 * drains: new sockets and requests are refused with "shutting_down",
 * requests in flight get up to EE_DRAIN_TIMEOUT_SEC to be answered, then
 * every tunnel is closed, its state written, and the program exits.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"
#include "timeutil.h"
#include "tunneld.h"

static volatile sig_atomic_t signalled;
static struct lws_context *signal_context;

static void on_signal(int sig)
{
	(void)sig;
	signalled = 1;
	if (signal_context)
		lws_cancel_service(signal_context);
}

int tunneld_config_load(struct tunneld_config *cfg, struct ee_error *err)
{
	memset(cfg, 0, sizeof(*cfg));
	if (config_load(&cfg->base, err) != 0)
		return -1;
	return config_get_int("EE_TUNNEL_MAX_MESSAGE_BYTES", TD_DEFAULT_MAX_MESSAGE_BYTES, 64 * 1024,
	                      256 * 1024 * 1024, &cfg->max_message_bytes, err) ||
	               config_get_int("EE_PROXY_MAX_BODY_BYTES", TD_DEFAULT_MAX_BODY_BYTES, 0,
	                              128 * 1024 * 1024, &cfg->max_body_bytes, err) ||
	               config_get_int("EE_TUNNEL_MAX_INFLIGHT", TD_DEFAULT_MAX_INFLIGHT, 1, 65536,
	                              &cfg->max_inflight, err) ||
	               config_get_int("EE_MAX_PENDING_PER_SOURCE", TD_DEFAULT_MAX_PENDING_PER_SOURCE,
	                              1, 1000000, &cfg->max_pending_per_source, err) ||
	               config_get_int("EE_PROXY_TIMEOUT_SEC", TD_DEFAULT_PROXY_TIMEOUT_SEC, 1, 3600,
	                              &cfg->proxy_timeout_sec, err) ||
	               config_get_int("EE_PROXY_HEAD_TIMEOUT_SEC", TD_DEFAULT_PROXY_HEAD_TIMEOUT_SEC, 1,
	                              3600, &cfg->proxy_head_timeout_sec, err) ||
	               config_get_int("EE_PROXY_BODY_TIMEOUT_SEC", TD_DEFAULT_PROXY_BODY_TIMEOUT_SEC, 1,
	                              3600, &cfg->proxy_body_timeout_sec, err) ||
	               config_get_int("EE_REGISTER_TIMEOUT_SEC", TD_DEFAULT_REGISTER_TIMEOUT_SEC, 1,
	                              3600, &cfg->register_timeout_sec, err) ||
	               config_get_int("EE_MAX_AGENTS", TD_DEFAULT_MAX_AGENTS, 1, 1000000,
	                              &cfg->max_agents, err) ||
	               config_get_int("EE_CONNECT_RATE_LIMIT", TD_DEFAULT_CONNECT_RATE, 0,
	                              RATELIMIT_MAX_COUNT, &cfg->connect_rate_limit, err) ||
	               config_get_int("EE_DRAIN_TIMEOUT_SEC", TD_DEFAULT_DRAIN_SEC, 0, 3600,
	                              &cfg->drain_sec, err) ||
	               config_get_int("EE_VERIFY_THREADS", TD_DEFAULT_VERIFY_THREADS, 1, 64,
	                              &cfg->verify_threads, err) ||
	               config_get_int("EE_VERIFY_QUEUE", TD_DEFAULT_VERIFY_QUEUE, 1, 1000000,
	                              &cfg->verify_queue, err) ||
	               verifier_options_from_env(&cfg->verifier, err)
	           ? -1
	           : 0;
}

static void lws_log_to_ours(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (level & LLL_ERR)
		log_error("lws: %.*s", (int)n, line);
	else if (level & LLL_WARN)
		log_warn("lws: %.*s", (int)n, line);
	else
		log_debug("lws: %.*s", (int)n, line);
}

static bool jobs_in_flight(struct tunneld *td)
{
	for (struct session *s = td->sessions; s; s = s->all_next) {
		if (s->inflight)
			return true;
	}
	return false;
}

static void drain_cb(lws_sorted_usec_list_t *sul)
{
	struct tunneld *td = lws_container_of(sul, struct tunneld, sul_drain);
	int64_t now = time_monotonic_ms();
	static bool sessions_told;
	if (!sessions_told && (!jobs_in_flight(td) || now >= td->drain_deadline_mono_ms)) {
		session_close_all(td);
		sessions_told = true;
	}
	/* Sockets that do not close politely are dropped a little later. */
	if ((sessions_told && td->session_count == 0) || now >= td->drain_deadline_mono_ms + 3000) {
		td->stop = true;
		lws_cancel_service(td->context);
		return;
	}
	lws_sul_schedule(td->context, 0, &td->sul_drain, drain_cb, 50 * LWS_US_PER_MS);
}

static void begin_drain(struct tunneld *td)
{
	if (td->draining)
		return;
	log_info("stopping: %d agents connected; draining requests in flight", td->session_count);
	td->draining = true;
	td->drain_deadline_mono_ms = time_monotonic_ms() + (int64_t)td->cfg.drain_sec * 1000;
	lws_sul_schedule(td->context, 0, &td->sul_drain, drain_cb, 1);
}

static struct lws_vhost *make_vhost(struct tunneld *td, const char *name, const char *bind,
                                    int port, const struct lws_protocols *protocols, bool raw)
{
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.vhost_name = name;
	info.port = port;
	/* "0.0.0.0" means all IPv4 interfaces, as in the original. */
	info.iface = strcmp(bind, "0.0.0.0") == 0 ? NULL : bind;
	info.protocols = protocols;
	info.keepalive_timeout = 60;
	info.timeout_secs = 30;
	if (raw) {
		info.options = LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG;
		info.listen_accept_role = "raw-skt";
		info.listen_accept_protocol = protocols[0].name;
	}
	struct lws_vhost *vh = lws_create_vhost(td->context, &info);
	if (!vh)
		log_error("cannot listen on %s:%d (%s)", bind, port, name);
	return vh;
}

int main(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: ee-tunneld   (configuration is the environment: "
		                "docs/CONFIGURATION.md)\n");
		return 2;
	}
	ee_log_init("ee-tunneld", EE_LOG_INFO);
	static struct tunneld td;
	struct ee_error err;
	/* libcurl's global state must exist before any verifier thread uses it. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (tunneld_config_load(&td.cfg, &err) != 0) {
		log_error("configuration: %s", err.reason);
		return 2;
	}
	enum ee_log_level level;
	if (ee_log_parse_level(td.cfg.base.log_level, &level) == 0)
		ee_log_set_level(level);
	td.policy.registration_ttl_days = td.cfg.base.registration_ttl_days;
	td.policy.registration_warn_days = td.cfg.base.registration_warn_days;
	td.policy.domain = td.cfg.base.domain;

	/* Without its database the daemon could record nothing; it waits for it
	 * rather than exit, so a late disk does not need a person to restart it. */
	struct ee_db_options opts = {td.cfg.base.db_busy_timeout_ms, td.cfg.base.db_synchronous, true};
	/* A file SQLite can only open read-only (permissions, a read-only file
	 * system) is waited for too: such a handle would stay read-only after the
	 * fault is fixed, and the verifier threads' handles with it. */
	for (int attempt = 0;; attempt++) {
		if (db_open(td.cfg.base.db_path, &opts, &td.db, &err) == 0) {
			if (!db_read_only(td.db))
				break;
			db_close(td.db);
			td.db = NULL;
			ee_fail(&err, 503, "database_readonly");
		}
		if (attempt % 30 == 0)
			log_error("cannot open the database %s for writing (%s); retrying",
			          td.cfg.base.db_path, err.reason);
		sleep(1);
	}
	if (td.cfg.connect_rate_limit > 0 && !(td.connect_limit = ratelimit_open(NULL, &err))) {
		log_error("cannot make the connect-rate table: %s", err.reason);
		return 1;
	}
	if (store_create(&td, &td.store) != 0) {
		log_error("cannot start: out of memory");
		return 1;
	}
	/* Sockets do not survive a restart; the database must not say they did.
	 * If it cannot be written now (read-only, full, locked), that write goes
	 * first in the store's queue and is retried; tunnels are served meanwhile. */
	int64_t started_ms = time_now_ms();
	if (db_begin_write(td.db, &err) != 0 ||
	    registry_disconnect_all(td.db, started_ms, &err) != 0 || db_commit(td.db, &err) != 0) {
		if (db_in_transaction(td.db))
			db_rollback(td.db);
		log_warn("cannot mark agents disconnected yet (%s); retrying while serving", err.reason);
		store_disconnect_all(td.store, started_ms);
	}
	db_set_busy_timeout(td.db, TD_LOOP_BUSY_TIMEOUT_MS);
	if (td.cfg.verifier.dev_root_pem)
		log_warn("EE_DEV_ROOT_CA is set: quotes chaining to the development root are accepted on "
		         "sandbox-1");

	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_to_ours);
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DISABLE_IPV6;
	info.user = &td;
	info.fd_limit_per_thread = 0;
	/*
	 * The one buffer the loop reads every socket into (not per connection):
	 * 64 KiB takes a burst of answers, or a large one, in few reads instead of
	 * one recv and one poll per 4 KiB (docs/PERFORMANCE.md).
	 */
	info.pt_serv_buf_size = TD_SERVICE_BUFFER;
	td.context = lws_create_context(&info);
	if (!td.context) {
		log_error("cannot create the event loop");
		return 1;
	}
	/* lws keeps pointers to these for the life of the context. */
	static struct lws_protocols control[2], proxy[2];
	control[0] = tunneld_control_protocol;
	proxy[0] = tunneld_proxy_protocol;
	td.control_vhost = make_vhost(&td, "control", td.cfg.base.control_bind,
	                              td.cfg.base.control_port, control, false);
	td.proxy_vhost = make_vhost(&td, "proxy", td.cfg.base.proxy_bind, td.cfg.base.proxy_port,
	                            proxy, true);
	if (!td.control_vhost || !td.proxy_vhost) {
		lws_context_destroy(td.context);
		return 1;
	}
	if (verify_pool_start(&td, &td.cfg.verifier, td.cfg.verify_threads, &td.verify_pool) != 0) {
		log_error("cannot start the verifier threads");
		lws_context_destroy(td.context);
		return 1;
	}
	signal_context = td.context;
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_info("control on %s:%d, proxy on %s:%d", td.cfg.base.control_bind, td.cfg.base.control_port,
	         td.cfg.base.proxy_bind, td.cfg.base.proxy_port);
	store_start(td.store);

	while (!td.stop) {
		if (lws_service(td.context, 0) < 0)
			break;
		if (signalled && !td.draining)
			begin_drain(&td);
	}

	/* The workers go first (they wake the loop); then closing the context closes
	 * whatever is left, whose state is queued and then written. */
	verify_pool_stop(td.verify_pool);
	td.verify_pool = NULL;
	lws_context_destroy(td.context);
	td.context = NULL;
	signal_context = NULL;
	/* At exit there is no loop to stall: wait for a writer as long as configured. */
	db_set_busy_timeout(td.db, td.cfg.base.db_busy_timeout_ms);
	if (store_flush_now(td.store) != 0)
		log_error("some state could not be written at exit");
	if (db_begin_write(td.db, &err) == 0 && registry_disconnect_all(td.db, time_now_ms(), &err) == 0)
		db_commit(td.db, &err);
	else if (db_in_transaction(td.db))
		db_rollback(td.db);
	store_destroy(td.store);
	ratelimit_close(td.connect_limit);
	db_close(td.db);
	curl_global_cleanup();
	config_free(&td.cfg.base);
	log_info("stopped");
	return 0;
}
