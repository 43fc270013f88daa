/*
 * main.c - ee-api: the REST API as a FastCGI or CGI program.
 *
 * One binary, three ways to run (docs/OPERATIONS.md):
 *   - under a FastCGI manager: the listening socket is fd 0 (spawn-fcgi) or
 *     fd 3 with LISTEN_FDS (systemd socket activation);
 *   - as its own FastCGI server: --listen ADDR --workers N preforks N
 *     workers on one socket and replaces any that dies;
 *   - as CGI: started by a web server with a CGI environment, one request.
 * A FastCGI worker serves --threads requests at once, one per thread; each
 * thread holds one database connection for its whole life.  The threads'
 * money-moving requests share write transactions (commit.h), which is what
 * the threads are for: reads gain little from them.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "api.h"
#include "commit.h"
#include "http.h"
#include "log.h"
#include "timeutil.h"

#define MAX_WORKERS 256
#define MAX_THREADS 64
/* Enough requests in flight per worker for transfers to share commits
 * (docs/PERFORMANCE.md: 8, 16 and 32 measured). */
#define DEFAULT_THREADS 32
#define LISTEN_BACKLOG 1024

/* Lock-free atomics, so that the signal handler may use them. */
static atomic_int stop_requested;
static atomic_int requests_in_progress;

/* One group commit per process: its threads' money-moving requests. */
static struct commit_group commits;

static void worker_on_signal(int sig)
{
	(void)sig;
	/* Idle in accept: leave now.  Mid-request: finish, then the last
	 * request to finish leaves (serve_connections). */
	atomic_store(&stop_requested, 1);
	if (atomic_load(&requests_in_progress) == 0)
		_exit(0);
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
	ctx->commits = &commits;
	struct ee_db_options opts = {cfg->db_busy_timeout_ms, cfg->db_synchronous, true};
	struct ee_error err;
	if (db_open(cfg->db_path, &opts, &ctx->db, &err) != 0) {
		log_warn("database not available yet (%s); will retry per request", err.reason);
	} else if (db_read_only(ctx->db)) {
		/* Not kept: see api_db. */
		db_close(ctx->db);
		ctx->db = NULL;
	}
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
	api_release_db(ctx);
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

/*
 * A worker's threads take turns in accept (leader and followers): one
 * thread waits in accept while the others wait for the lock, and whoever
 * finishes a request next takes over.  Without the lock every idle thread
 * sleeps in accept and each connection wakes a cold one: reads measured a
 * fifth slower with 8 threads than with 1 (docs/PERFORMANCE.md).  libfcgi
 * keeps all of a request's state in its FCGX_Request, so nothing else is
 * shared.
 *
 * On a unix socket the worker accepts by itself and hands the connection
 * to libfcgi, which then only reads and writes it.  libfcgi's own accept
 * waits up to 2 s in poll(2) for each unix connection to become readable,
 * holding the turn; that is a system call on every request, and a peer
 * that connects and sends nothing stalled every accept of the worker.
 * Here the turn is given back at once, and the watchdog below bounds the
 * wait.  On TCP libfcgi accepts (it also applies FCGI_WEB_SERVER_ADDRS and
 * TCP_NODELAY there).
 */

/*
 * The watchdog: a request must arrive whole within EE_REQUEST_READ_TIMEOUT_SEC
 * of its connection, and its head within HEAD_TIMEOUT_MS.  A thread
 * reading a request arms its slot with the deadline; once a second a
 * watchdog thread sends each thread past its deadline a real-time signal,
 * whose empty handler makes the blocked read fail with EINTR.  The request
 * is then dropped without an answer.  The thread disarms under the slot's
 * lock and then waits until every signal sent to it has arrived (they are
 * queued and counted), so no signal is left over to interrupt a later
 * read or write.  Arming costs no system call.  A kept connection
 * (FCGI_KEEP_CONN) must bring its next request within
 * EE_REQUEST_READ_TIMEOUT_SEC of the last answer, or it is closed.
 */
#define HEAD_TIMEOUT_MS 2000
#define WATCHDOG_PERIOD_MS 250

struct thread_slot {
	pthread_mutex_t lock;
	pthread_t thread;
	bool started;
	int64_t deadline_ms; /* 0: not armed */
	int signals_sent;
	struct worker *worker;
};

struct worker {
	int listen_fd;
	bool own_accept; /* a unix socket: accept4 here, not libfcgi's accept */
	const struct ee_config *cfg;
	pthread_mutex_t accept_lock;
	int threads;
	struct thread_slot slots[MAX_THREADS];
};

static _Thread_local volatile sig_atomic_t signals_received;

static void watchdog_on_signal(int sig)
{
	(void)sig;
	signals_received = signals_received + 1;
}

static int watchdog_signal(void)
{
	return SIGRTMIN + 1;
}

static void watch(struct thread_slot *slot, int64_t deadline_ms)
{
	pthread_mutex_lock(&slot->lock);
	slot->deadline_ms = deadline_ms;
	pthread_mutex_unlock(&slot->lock);
}

/* Disarms the slot; true when the watchdog had signalled this thread. */
static bool unwatch(struct thread_slot *slot)
{
	pthread_mutex_lock(&slot->lock);
	slot->deadline_ms = 0;
	int sent = slot->signals_sent;
	slot->signals_sent = 0;
	pthread_mutex_unlock(&slot->lock);
	if (sent == 0)
		return false;
	/* Sent, so pending or handled: any system call lets a pending one in. */
	while (signals_received < sent)
		sched_yield();
	signals_received = 0;
	return true;
}

static void *run_watchdog(void *arg)
{
	struct worker *w = arg;
	const struct timespec period = {0, WATCHDOG_PERIOD_MS * 1000000L};
	for (;;) {
		nanosleep(&period, NULL);
		int64_t now = time_monotonic_ms();
		for (int i = 0; i < w->threads; i++) {
			struct thread_slot *slot = &w->slots[i];
			pthread_mutex_lock(&slot->lock);
			if (slot->started && slot->deadline_ms != 0 && now >= slot->deadline_ms &&
			    pthread_kill(slot->thread, watchdog_signal()) == 0)
				slot->signals_sent++;
			pthread_mutex_unlock(&slot->lock);
		}
	}
	return NULL;
}

/* What next_request found when it has no request. */
enum { NO_REQUEST = -1, ACCEPT_BROKEN = -2 };

/* The next connection, accepted in turn; NO_REQUEST or ACCEPT_BROKEN when there is none. */
static int accept_in_turn(struct worker *w)
{
	pthread_mutex_lock(&w->accept_lock);
	int fd = atomic_load(&stop_requested) ? -1 : accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	int saved = errno;
	pthread_mutex_unlock(&w->accept_lock);
	if (fd >= 0 || atomic_load(&stop_requested))
		return fd >= 0 ? fd : NO_REQUEST;
	switch (saved) {
	case EINTR:
	case EAGAIN:
	case ECONNABORTED:
	case EPROTO:
		return NO_REQUEST;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM: {
		/* Out of descriptors or memory: the connection waits in the queue. */
		static struct log_limit accept_log = {.burst = 10};
		ee_log_limited(&accept_log, EE_LOG_ERROR, "accept failed: %s", strerror(saved));
		struct timespec pause = {0, 10 * 1000000L};
		nanosleep(&pause, NULL);
		return NO_REQUEST;
	}
	default:
		log_error("accept failed: %s", strerror(saved));
		return ACCEPT_BROKEN;
	}
}

/*
 * The next request's head, read by libfcgi: on a connection kept from the
 * last request, a new one accepted here (own_accept), or one libfcgi
 * accepts.  0 with a request; NO_REQUEST when a connection brought none
 * (or an accept was interrupted), to try again; ACCEPT_BROKEN when the
 * listening socket fails.
 */
static int next_request(struct worker *w, struct thread_slot *slot, FCGX_Request *fcgi)
{
	int64_t read_limit_ms = (int64_t)w->cfg->request_read_timeout_sec * 1000;
	int rc;
	if (fcgi->ipcFd >= 0) {
		/* A kept connection: its next request must begin within the read
		 * limit, or the connection is closed (detached: a plain close).
		 * When it brings none libfcgi goes on to accept; its listening
		 * socket is hidden meanwhile, so that it returns instead and the
		 * next accept is made in turn. */
		int listen_sock = fcgi->listen_sock;
		fcgi->listen_sock = -1;
		fcgi->detached = 1;
		watch(slot, time_monotonic_ms() + read_limit_ms);
		rc = FCGX_Accept_r(fcgi);
		fcgi->listen_sock = listen_sock;
		if (rc < 0) {
			unwatch(slot);
			return NO_REQUEST;
		}
		fcgi->detached = 0;
	} else if (w->own_accept) {
		int fd = accept_in_turn(w);
		if (fd < 0)
			return fd;
		int64_t now = time_monotonic_ms();
		watch(slot, now + (read_limit_ms < HEAD_TIMEOUT_MS ? read_limit_ms : HEAD_TIMEOUT_MS));
		/* libfcgi reads a connection it holds (ipcFd) without accepting;
		 * keepConnection stops the finish it starts with from closing it,
		 * and detached makes its close of a connection that brought no
		 * request a plain one, not a wait of up to 2 s for the peer. */
		fcgi->ipcFd = fd;
		fcgi->keepConnection = 1;
		fcgi->detached = 1;
		if (FCGX_Accept_r(fcgi) >= 0) {
			fcgi->detached = 0;
			watch(slot, now + read_limit_ms);
			return 0;
		}
		/* libfcgi closed it: nothing came, or not a FastCGI request. */
		unwatch(slot);
		return NO_REQUEST;
	} else {
		pthread_mutex_lock(&w->accept_lock);
		rc = atomic_load(&stop_requested) ? -1 : FCGX_Accept_r(fcgi);
		int saved = errno;
		pthread_mutex_unlock(&w->accept_lock);
		if (rc < 0)
			return saved == EINTR || saved == ECONNABORTED ? NO_REQUEST : ACCEPT_BROKEN;
	}
	if (rc >= 0)
		watch(slot, time_monotonic_ms() + read_limit_ms);
	return rc;
}

/* One thread of a FastCGI worker: accepts and answers one request at a time. */
static void *serve_connections(void *arg)
{
	struct thread_slot *slot = arg;
	struct worker *w = slot->worker;
	struct api_context ctx;
	context_init(&ctx, w->cfg);
	FCGX_Request fcgi;
	/* With own_accept libfcgi must never accept: its listening socket is none. */
	if (FCGX_InitRequest(&fcgi, w->own_accept ? -1 : w->listen_fd, 0) != 0) {
		log_error("cannot initialise the FastCGI request");
		return NULL;
	}
	struct api_response res;
	http_response_init(&res);
	for (;;) {
		int rc = next_request(w, slot, &fcgi);
		if (atomic_load(&stop_requested) && rc < 0)
			break;
		if (rc == NO_REQUEST)
			continue;
		if (rc == ACCEPT_BROKEN)
			break;
		atomic_fetch_add(&requests_in_progress, 1);
		struct api_request req;
		http_read_fcgi(&fcgi, &req, (size_t)w->cfg->max_body_bytes);
		bool timed_out = unwatch(slot);
		if (timed_out || req.read_incomplete) {
			static struct log_limit late_log = {.burst = 10};
			if (timed_out)
				ee_log_limited(&late_log, EE_LOG_WARN,
				               "a request did not arrive whole within its limit "
				               "(EE_REQUEST_READ_TIMEOUT_SEC); connection dropped");
			fcgi.keepConnection = 0;
		} else {
			http_response_reset(&res);
			serve(&ctx, &req, &res);
			http_write_fcgi(&fcgi, &req, &res);
			close_promptly_if_drained(&fcgi);
		}
		http_request_free(&req);
		FCGX_Finish_r(&fcgi);
		/* Asked to stop: the last request to finish ends the process (the
		 * other threads are idle in accept). */
		if (atomic_fetch_sub(&requests_in_progress, 1) == 1 && atomic_load(&stop_requested))
			_exit(0);
	}
	http_response_free(&res);
	db_close(ctx.db);
	ratelimit_close(ctx.auth_limit);
	return NULL;
}

static int run_fastcgi_worker(int listen_fd, int threads, const struct ee_config *cfg)
{
	/* libfcgi allocates 8 KiB stream buffers for every request, and glibc
	 * consolidates its small-chunk bins before each such allocation while
	 * any are binned: without those bins (small frees go to the per-thread
	 * caches and the ordinary bins) that work is gone, about 1,000
	 * instructions a request (docs/PERFORMANCE.md). */
	mallopt(M_MXFAST, 0);
	struct sigaction sa = {0};
	sa.sa_handler = worker_on_signal;
	/* A stop that arrives mid-request must not cut the request's reads or
	 * writes short (EINTR would look like a truncated body): they resume,
	 * and the worker leaves after answering.  Idle, the handler exits. */
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* The watchdog's signal must interrupt the read it is sent for. */
	struct sigaction wd = {0};
	wd.sa_handler = watchdog_on_signal;
	sigaction(watchdog_signal(), &wd, NULL);

	static struct worker w;
	w.listen_fd = listen_fd;
	w.cfg = cfg;
	w.threads = threads;
	struct sockaddr_storage addr;
	socklen_t addr_len = sizeof(addr);
	w.own_accept = getsockname(listen_fd, (struct sockaddr *)&addr, &addr_len) == 0 &&
	               addr.ss_family == AF_UNIX;
	pthread_mutex_init(&w.accept_lock, NULL);
	for (int i = 0; i < threads; i++) {
		pthread_mutex_init(&w.slots[i].lock, NULL);
		w.slots[i].worker = &w;
	}
	w.slots[0].thread = pthread_self();
	w.slots[0].started = true;
	pthread_t watchdog;
	if (pthread_create(&watchdog, NULL, run_watchdog, &w) != 0)
		log_warn("cannot start the request watchdog; requests are read without a time limit");
	int started = 1;
	for (int i = 1; i < threads; i++) {
		struct thread_slot *slot = &w.slots[i];
		pthread_mutex_lock(&slot->lock);
		int rc = pthread_create(&slot->thread, NULL, serve_connections, slot);
		slot->started = rc == 0;
		pthread_mutex_unlock(&slot->lock);
		if (rc != 0) {
			log_warn("cannot start a worker thread (%s); serving with %d", strerror(rc), started);
			break;
		}
		started++;
	}
	serve_connections(&w.slots[0]);
	for (int i = 1; i < started; i++)
		pthread_join(w.slots[i].thread, NULL);
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

static pid_t spawn_worker(int listen_fd, int threads, const struct ee_config *cfg)
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
		_exit(run_fastcgi_worker(listen_fd, threads, cfg));
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
static int run_supervisor(const char *address, int workers, int threads,
                          const struct ee_config *cfg)
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
		pids[i] = spawn_worker(fd, threads, cfg);
	log_info("listening on %s with %d workers of %d threads", address, workers, threads);

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
			pids[i] = spawn_worker(fd, threads, cfg);
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
	        "       ee-api --listen ADDR [--workers N] [--threads T]\n"
	        "                                        own FastCGI server (ADDR: /path.sock,\n"
	        "                                        127.0.0.1:9000 or :9000)\n"
	        "       --threads T                      requests a worker serves at once (default %d)\n"
	        "       ee-api --migrate                 create or upgrade the database, then exit\n"
	        "       ee-api --check-ledger            audit the ledger invariants\n"
	        "Configuration is the environment: see docs/CONFIGURATION.md.\n",
	        DEFAULT_THREADS);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"listen", required_argument, NULL, 'l'}, {"workers", required_argument, NULL, 'w'},
		{"threads", required_argument, NULL, 't'}, {"migrate", no_argument, NULL, 'm'},
		{"check-ledger", no_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	const char *listen_addr = NULL;
	long workers = sysconf(_SC_NPROCESSORS_ONLN);
	long threads = DEFAULT_THREADS;
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
		case 't': {
			char *end;
			threads = strtol(optarg, &end, 10);
			if (*end || threads < 1 || threads > MAX_THREADS) {
				fprintf(stderr, "ee-api: --threads must be 1..%d\n", MAX_THREADS);
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
	commit_group_init(&commits);
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
		rc = run_supervisor(listen_addr, (int)workers, (int)threads, &cfg);
	} else {
		const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
		FCGX_Init();
		if (fds && pid && atoi(fds) >= 1 && atol(pid) == (long)getpid())
			rc = run_fastcgi_worker(3, (int)threads, &cfg); /* systemd socket activation */
		else if (FCGX_IsCGI())
			rc = run_cgi(&cfg);
		else
			rc = run_fastcgi_worker(0, (int)threads, &cfg);
	}
	config_free(&cfg);
	return rc;
}
