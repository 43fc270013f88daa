/*
 * main.c - ee-api: the REST API as a FastCGI or CGI program.
 *
 * One binary, three ways to run (docs/OPERATIONS.md):
 *   - under a FastCGI manager: the listening socket is fd 0 (spawn-fcgi) or
 *     fd 3 with LISTEN_FDS (systemd socket activation);
 *   - as its own FastCGI server: --listen ADDR --workers N preforks N
 *     workers on one socket and replaces any that dies;
 *   - as CGI: started by a web server with a CGI environment, one request.
 * Each worker holds one database connection for its whole life.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "api.h"
#include "http.h"
#include "log.h"
#include "timeutil.h"

#define MAX_WORKERS 256
#define LISTEN_BACKLOG 1024

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t in_request;

static void worker_on_signal(int sig)
{
	(void)sig;
	/* Idle in accept: leave now.  Mid-request: finish it, then leave. */
	if (!in_request)
		_exit(0);
	stop_requested = 1;
}

/*
 * The failed-token counts live in a file beside the database, shared by
 * every worker and every CGI process.  Where that file cannot be made the
 * counts are this process's own: weaker (a CGI process forgets them) but
 * never a reason to refuse service.
 */
static struct ratelimit *open_auth_limit(const char *db_path)
{
	char path[4096];
	struct ee_error err;
	struct ratelimit *rl = NULL;
	if ((size_t)snprintf(path, sizeof(path), "%s-authfail", db_path) < sizeof(path))
		rl = ratelimit_open(path, &err);
	if (!rl) {
		log_warn("cannot open %s (%s); failed tokens are counted per process", path, err.reason);
		rl = ratelimit_open(NULL, &err);
	}
	return rl;
}

static void context_init(struct api_context *ctx, const struct ee_config *cfg)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->cfg = cfg;
	ctx->policy.registration_ttl_days = cfg->registration_ttl_days;
	ctx->policy.registration_warn_days = cfg->registration_warn_days;
	ctx->policy.domain = cfg->domain;
	struct ee_db_options opts = {cfg->db_busy_timeout_ms, cfg->db_synchronous, true};
	struct ee_error err;
	if (db_open(cfg->db_path, &opts, &ctx->db, &err) != 0)
		log_warn("database not available yet (%s); will retry per request", err.reason);
	if (cfg->auth_fail_limit > 0)
		ctx->auth_limit = open_auth_limit(cfg->db_path);
}

/* Runs one request through the router; logs server-side failures. */
static void serve(struct api_context *ctx, struct api_request *req, struct api_response *res)
{
	ctx->req = req;
	ctx->res = res;
	ctx->json = NULL;
	ee_error_clear(&ctx->err);
	api_handle(ctx);
	if (res->status >= 500)
		log_warn("%s %s -> %d", req->method, req->path, res->status);
	json_object_put(ctx->json);
	ctx->json = NULL;
}

/*
 * libfcgi ends a connection with a lingering close: it shuts down its side
 * and waits for the client to close first, so that unread input cannot
 * turn the close into a reset that loses the answer.  That keeps the
 * worker idle for a round trip on every request.  When the request's input
 * has been read to its end (the usual case: the body was read, or there
 * was none) there is nothing to lose, and the connection is closed at once
 * (FCGX_Detach makes libfcgi's close a plain one); otherwise, or on a kept
 * connection, libfcgi's own way stays.
 */
#define DRAIN_MAX_BYTES (64 * 1024)

static void close_promptly_if_drained(FCGX_Request *fcgi)
{
	if (fcgi->keepConnection)
		return;
	char scrap[4096];
	size_t drained = 0;
	for (;;) {
		int n = FCGX_GetStr(scrap, (int)sizeof(scrap), fcgi->in);
		if (n <= 0)
			break;
		drained += (size_t)n;
		if (drained > DRAIN_MAX_BYTES)
			return;
	}
	if (FCGX_GetError(fcgi->in) == 0)
		FCGX_Detach(fcgi);
}

static int run_fastcgi_worker(int listen_fd, const struct ee_config *cfg)
{
	struct sigaction sa = {0};
	sa.sa_handler = worker_on_signal;
	/* A stop that arrives mid-request must not cut the request's reads or
	 * writes short (EINTR would look like a truncated body): they resume,
	 * and the worker leaves after answering.  Idle, the handler exits. */
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct api_context ctx;
	context_init(&ctx, cfg);
	FCGX_Request fcgi;
	if (FCGX_InitRequest(&fcgi, listen_fd, 0) != 0) {
		log_error("cannot initialise the FastCGI request");
		return 1;
	}
	struct api_response res;
	http_response_init(&res);
	while (!stop_requested) {
		if (FCGX_Accept_r(&fcgi) < 0) {
			if (errno == EINTR && !stop_requested)
				continue;
			break;
		}
		in_request = 1;
		struct api_request req;
		http_read_fcgi(&fcgi, &req, (size_t)cfg->max_body_bytes);
		http_response_reset(&res);
		serve(&ctx, &req, &res);
		http_write_fcgi(&fcgi, &req, &res);
		http_request_free(&req);
		close_promptly_if_drained(&fcgi);
		FCGX_Finish_r(&fcgi);
		in_request = 0;
	}
	http_response_free(&res);
	db_close(ctx.db);
	ratelimit_close(ctx.auth_limit);
	return 0;
}

static int run_cgi(const struct ee_config *cfg)
{
	struct api_context ctx;
	context_init(&ctx, cfg);
	struct api_request req;
	struct api_response res;
	http_response_init(&res);
	http_read_cgi(&req, (size_t)cfg->max_body_bytes);
	serve(&ctx, &req, &res);
	http_write_cgi(&req, &res);
	http_request_free(&req);
	http_response_free(&res);
	db_close(ctx.db);
	ratelimit_close(ctx.auth_limit);
	return 0;
}

static pid_t spawn_worker(int listen_fd, const struct ee_config *cfg)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGCHLD, SIG_DFL);
		/* A worker does not outlive its supervisor (killed with SIGKILL, say):
		 * it is told to stop as SIGTERM would, finishing its request. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(0);
		_exit(run_fastcgi_worker(listen_fd, cfg));
	}
	if (pid < 0)
		log_error("fork failed: %s", strerror(errno));
	return pid;
}

static volatile sig_atomic_t supervisor_stop;
static void supervisor_on_signal(int sig)
{
	(void)sig;
	supervisor_stop = 1;
}

/* --listen: prefork workers on one socket and keep their number up. */
static int run_supervisor(const char *address, int workers, const struct ee_config *cfg)
{
	if (address[0] == '/' || address[0] == '.')
		unlink(address); /* a stale socket from an unclean stop */
	mode_t old = umask(007);
	int fd = FCGX_OpenSocket(address, LISTEN_BACKLOG);
	umask(old);
	if (fd < 0) {
		log_error("cannot listen on %s: %s", address, strerror(errno));
		return 1;
	}
	struct sigaction sa = {0};
	sa.sa_handler = supervisor_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	pid_t pids[MAX_WORKERS] = {0};
	for (int i = 0; i < workers; i++)
		pids[i] = spawn_worker(fd, cfg);
	log_info("listening on %s with %d workers", address, workers);

	int64_t last_restart = 0;
	while (!supervisor_stop) {
		int status;
		pid_t dead = waitpid(-1, &status, 0);
		if (dead < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < workers; i++) {
			if (pids[i] != dead)
				continue;
			if (supervisor_stop)
				break;
			if (WIFSIGNALED(status))
				log_error("worker %d killed by signal %d; replacing it", (int)dead,
				          WTERMSIG(status));
			else
				log_warn("worker %d exited with %d; replacing it", (int)dead,
				         WEXITSTATUS(status));
			/* A worker that dies at once every time must not spin the machine. */
			int64_t now = time_monotonic_ms();
			if (now - last_restart < 1000)
				sleep(1);
			last_restart = now;
			pids[i] = spawn_worker(fd, cfg);
		}
	}
	for (int i = 0; i < workers; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (int i = 0; i < workers; i++)
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
	close(fd);
	if (address[0] == '/' || address[0] == '.')
		unlink(address);
	log_info("stopped");
	return 0;
}

static int run_migrate(const struct ee_config *cfg)
{
	struct ee_db *db;
	struct ee_error err;
	struct ee_db_options opts = {cfg->db_busy_timeout_ms, cfg->db_synchronous, true};
	if (db_open(cfg->db_path, &opts, &db, &err) != 0) {
		fprintf(stderr, "ee-api: cannot open %s: %s\n", cfg->db_path, err.reason);
		return 1;
	}
	printf("database %s at schema version %d\n", cfg->db_path, db_schema_version(db));
	db_close(db);
	return 0;
}

static int run_check_ledger(const struct ee_config *cfg)
{
	struct ee_db *db;
	struct ee_error err;
	struct ee_db_options opts = {cfg->db_busy_timeout_ms, cfg->db_synchronous, false};
	if (db_open(cfg->db_path, &opts, &db, &err) != 0) {
		fprintf(stderr, "ee-api: cannot open %s: %s\n", cfg->db_path, err.reason);
		return 2;
	}
	int rc = ledger_check_invariants(db, &err);
	db_close(db);
	if (rc != 0) {
		printf("ledger check failed: %s\n", err.reason);
		return 1;
	}
	printf("ledger ok\n");
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: ee-api                          FastCGI on fd 0 or LISTEN_FDS, or CGI\n"
	        "       ee-api --listen ADDR [--workers N]  own FastCGI server (ADDR: /path.sock,\n"
	        "                                          127.0.0.1:9000 or :9000)\n"
	        "       ee-api --migrate                 create or upgrade the database, then exit\n"
	        "       ee-api --check-ledger            audit the ledger invariants\n"
	        "Configuration is the environment: see docs/CONFIGURATION.md.\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"listen", required_argument, NULL, 'l'}, {"workers", required_argument, NULL, 'w'},
		{"migrate", no_argument, NULL, 'm'},      {"check-ledger", no_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	const char *listen_addr = NULL;
	long workers = sysconf(_SC_NPROCESSORS_ONLN);
	bool migrate = false, check = false;
	int opt;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'l': listen_addr = optarg; break;
		case 'w': {
			char *end;
			workers = strtol(optarg, &end, 10);
			if (*end || workers < 1 || workers > MAX_WORKERS) {
				fprintf(stderr, "ee-api: --workers must be 1..%d\n", MAX_WORKERS);
				return 2;
			}
			break;
		}
		case 'm': migrate = true; break;
		case 'c': check = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (workers < 1)
		workers = 1;

	ee_log_init("ee-api", EE_LOG_INFO);
	struct ee_config cfg;
	struct ee_error err;
	if (config_load(&cfg, &err) != 0) {
		log_error("configuration: %s", err.reason);
		if (!listen_addr && !migrate && !check && FCGX_IsCGI()) {
			/* A CGI client still gets an answer it can read. */
			printf("Status: 500 Internal Server Error\r\nContent-Type: application/json\r\n\r\n"
			       "{\"error\":\"invalid_config\"}");
		}
		config_free(&cfg);
		return 2;
	}
	enum ee_log_level level;
	if (ee_log_parse_level(cfg.log_level, &level) == 0)
		ee_log_set_level(level);

	int rc;
	if (migrate) {
		rc = run_migrate(&cfg);
	} else if (check) {
		rc = run_check_ledger(&cfg);
	} else if (listen_addr) {
		FCGX_Init();
		rc = run_supervisor(listen_addr, (int)workers, &cfg);
	} else {
		const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
		FCGX_Init();
		if (fds && pid && atoi(fds) >= 1 && atol(pid) == (long)getpid())
			rc = run_fastcgi_worker(3, &cfg); /* systemd socket activation */
		else if (FCGX_IsCGI())
			rc = run_cgi(&cfg);
		else
			rc = run_fastcgi_worker(0, &cfg);
	}
	config_free(&cfg);
	return rc;
}
