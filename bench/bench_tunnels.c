/*
 * bench_tunnels.c - what a tunnel costs ee-tunneld in memory: idle tunnels
 * of attested agents, and connect/attest/disconnect churn.
 *
 *   bench_tunnels <bin_dir> <dir> idle <agents> [settle_seconds]
 *   bench_tunnels <bin_dir> <dir> churn <cycles> [client_processes]
 *
 * Each run starts its own ee-tunneld (<bin_dir>/ee-tunneld) on free
 * 127.0.0.1 ports with a fresh database in <dir>, as a development network:
 * a dcapgen hierarchy (tests/support/dcapgen.h) made here is its sandbox-1
 * root (EE_DEV_ROOT_CA, EE_DEV_COLLATERAL_FILE) and the release's allowlist
 * is a file (EE_ALLOWLIST_DIR).  Agents are testagent.h's: they speak the
 * protocol exactly as ee-agent does (register, attest_response with a
 * DCAP quote signed over REPORTDATA for the nonce, status ok attested), so
 * every tunnel is a real attested session with its database rows.
 *
 * idle: 50 agents attest and leave first, so that the verifier threads have
 * prepared their collateral and the loop has its buffers; then the base
 * VmRSS of ee-tunneld.  <agents> agents from client processes of at most
 * 500 each connect, register and attest, 100 at a time per process, and
 * stay.  VmRSS when ee-tunneld's /health counts them all, and again after
 * settle_seconds (default 5) of idleness.  Prints bytes per tunnel:
 * (VmRSS - base) / agents.  The database rows of the agents (the SQLite
 * page cache of ee-tunneld's connection) are part of that, as in service.
 *
 * churn: <cycles> cycles from client processes (default 4) running at
 * once; a cycle connects, registers, attests, then closes cleanly (three in
 * four) or drops the TCP connection without a close frame (one in four).
 * Agent ids repeat (16 per process), as a fleet that reconnects.  VmRSS
 * before the first cycle, after each 1,000 and at the end (with the
 * database size beside it: ee-tunneld records a health_miss disconnect
 * event per cycle, and SQLite's page cache follows the file up to its
 * 2 MB default).
 *
 * Every process this starts (ee-tunneld, the client processes) is ended
 * on every exit path: atexit, SIGINT/SIGTERM/SIGHUP, and PR_SET_PDEATHSIG
 * should this process be killed outright.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "dcapgen.h"
#include "testagent.h"
#include "timeutil.h"

#define HOST "127.0.0.1"
#define NETWORK "sandbox-1"
#define REPO "bench/tunnels"
#define AGENTS_PER_PROCESS 500
#define BATCH 100
#define AGENTS_PER_APP 10
#define WARMUP_AGENTS 50
#define MAX_PROCS 256
#define CHURN_EVERY 1000
#define CHURN_IDS 16
#define WAIT_MS 120000        /* one answer, at worst, with thousands queued for the verifier */
#define START_TIMEOUT_MS 15000

static pid_t tunneld_pid;
static pid_t client_pids[MAX_PROCS];
static int client_count;
static int control_port;
static char dir[400];

/* ---- processes ---- */

static void stop_all(void)
{
	for (int i = 0; i < client_count; i++) {
		if (client_pids[i] > 0) {
			kill(client_pids[i], SIGKILL);
			waitpid(client_pids[i], NULL, 0);
			client_pids[i] = 0;
		}
	}
	client_count = 0;
	if (tunneld_pid > 0) {
		kill(tunneld_pid, SIGTERM);
		for (int i = 0; i < 200 && waitpid(tunneld_pid, NULL, WNOHANG) == 0; i++) {
			struct timespec ts = {0, 50 * 1000000L};
			nanosleep(&ts, NULL);
		}
		if (waitpid(tunneld_pid, NULL, WNOHANG) == 0) {
			kill(tunneld_pid, SIGKILL);
			waitpid(tunneld_pid, NULL, 0);
		}
		tunneld_pid = 0;
	}
}

static void on_signal(int sig)
{
	stop_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sin);
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* "agents" of ee-tunneld's GET /health, or -1. */
static long health_agents(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)control_port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {2, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	static const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	char buf[4096];
	size_t len = 0;
	long agents = -1;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof(req) - 1)) {
		ssize_t n;
		while (len < sizeof(buf) - 1 && (n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0)) > 0)
			len += (size_t)n;
		buf[len] = '\0';
		const char *a = strstr(buf, "\"agents\":");
		if (strncmp(buf, "HTTP/1.1 200", 12) == 0 && a)
			agents = strtol(a + 9, NULL, 10);
	}
	close(fd);
	return agents;
}

static bool wait_agents(long want, int timeout_ms)
{
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	do {
		if (health_agents() == want)
			return true;
		sleep_ms(50);
	} while (time_monotonic_ms() < deadline);
	return false;
}

static long vmrss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

/* The size of the database file ("") or of its write-ahead log ("-wal"), in KiB. */
static long file_kb(const char *suffix)
{
	char path[480];
	struct stat st;
	snprintf(path, sizeof(path), "%s/tunnels.db%s", dir, suffix);
	return stat(path, &st) == 0 ? (long)(st.st_size / 1024) : 0;
}
static long db_kb(void) { return file_kb(""); }
static long wal_kb(void) { return file_kb("-wal"); }

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	int rc = fputs(text, f) < 0 ? -1 : 0;
	return fclose(f) != 0 ? -1 : rc;
}

/* Writes the hierarchy's root, collateral and allowlist, and starts ee-tunneld. */
static int start_tunneld(const char *bin_dir, long agents)
{
	struct dcapgen *g = agent_hierarchy();
	char *root = NULL, *collateral = NULL;
	char root_path[480], collateral_path[480], allow_dir[480], db_path[480], log_path[480];
	snprintf(root_path, sizeof(root_path), "%s/root.pem", dir);
	snprintf(collateral_path, sizeof(collateral_path), "%s/collateral.json", dir);
	snprintf(allow_dir, sizeof(allow_dir), "%s/allowlists", dir);
	snprintf(db_path, sizeof(db_path), "%s/tunnels.db", dir);
	snprintf(log_path, sizeof(log_path), "%s/ee-tunneld.log", dir);
	mkdir(allow_dir, 0700);
	if (dcapgen_root_pem(g, &root) != 0 || dcapgen_collateral_json(g, &collateral) != 0 ||
	    write_text(root_path, root) != 0 || write_text(collateral_path, collateral) != 0 ||
	    agent_write_allowlist(allow_dir, REPO, AGENT_DEFAULT_RELEASE, NULL, true) != 0) {
		free(root);
		free(collateral);
		fprintf(stderr, "bench_tunnels: cannot write the development network into %s\n", dir);
		return -1;
	}
	free(root);
	free(collateral);
	control_port = free_port();
	int proxy_port = free_port();
	char exe[480], n_control[16], n_proxy[16], n_pending[24], n_max[24];
	snprintf(exe, sizeof(exe), "%s/ee-tunneld", bin_dir);
	snprintf(n_control, sizeof(n_control), "%d", control_port);
	snprintf(n_proxy, sizeof(n_proxy), "%d", proxy_port);
	/* Every agent comes from 127.0.0.1 and may be unattested at the same moment. */
	snprintf(n_pending, sizeof(n_pending), "%ld", agents + WARMUP_AGENTS + 100);
	snprintf(n_max, sizeof(n_max), "%ld", agents + WARMUP_AGENTS + 1000 > 20000
	                                          ? agents + WARMUP_AGENTS + 1000 : 20000);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		setenv("EE_DB_PATH", db_path, 1);
		setenv("EE_CONTROL_BIND", HOST, 1);
		setenv("EE_CONTROL_PORT", n_control, 1);
		setenv("EE_PROXY_BIND", HOST, 1);
		setenv("EE_PROXY_PORT", n_proxy, 1);
		setenv("EE_DEV_ROOT_CA", root_path, 1);
		setenv("EE_DEV_COLLATERAL_FILE", collateral_path, 1);
		setenv("EE_ALLOWLIST_DIR", allow_dir, 1);
		setenv("EE_MAX_PENDING_PER_SOURCE", n_pending, 1);
		setenv("EE_MAX_AGENTS", n_max, 1);
		setenv("EE_CONNECT_RATE_LIMIT", "0", 1); /* every agent is 127.0.0.1 */
		setenv("EE_VERIFY_QUEUE", n_pending, 1);
		setenv("EE_REGISTER_TIMEOUT_SEC", "600", 1);
		setenv("EE_ATTEST_DEADLINE_SEC", "600", 1);
		setenv("EE_DRAIN_TIMEOUT_SEC", "1", 1);
		setenv("EE_LOG_LEVEL", "warn", 1);
		execl(exe, exe, (char *)NULL);
		fprintf(stderr, "cannot run %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	tunneld_pid = pid;
	if (!wait_agents(0, START_TIMEOUT_MS)) {
		fprintf(stderr, "bench_tunnels: ee-tunneld did not start (see %s)\n", log_path);
		return -1;
	}
	return 0;
}

/* ---- client processes ---- */

struct client_report {
	int connected, attested, connect_retries;
	char failure[200];
};

static void note(struct client_report *r, const char *what, const struct test_agent *a)
{
	if (!r->failure[0])
		snprintf(r->failure, sizeof(r->failure), "%s: %s", what, a ? agent_last_reason(a) : "");
}

static const char *msg_string(struct json_object *m, const char *key)
{
	struct json_object *v;
	return m && json_object_object_get_ex(m, key, &v) && json_object_is_type(v, json_type_string)
	           ? json_object_get_string(v)
	           : NULL;
}

/*
 * Brings agents [first, first + count) up, BATCH at a time, all of a batch
 * in flight at once as a fleet that starts together.
 */
static void bring_up(struct test_agent **agents, const char *prefix, long first, int count,
                     struct client_report *r)
{
	char nonces[BATCH][33];
	for (int b = 0; b < count; b += BATCH) {
		int n = count - b < BATCH ? count - b : BATCH;
		struct test_agent **batch = agents + b;
		for (int i = 0; i < n; i++) {
			long k = first + b + i;
			char app[48], id[64];
			snprintf(app, sizeof(app), "%s-app-%ld", prefix, k / AGENTS_PER_APP);
			snprintf(id, sizeof(id), "%s-agent-%ld", prefix, k);
			/* A connect refused in a burst (listen queue full) is tried again, and counted. */
			char why[160] = "";
			struct agent_connect_options co = {.why = why, .why_size = sizeof(why),
			                                   .timeout_ms = 30000};
			for (int attempt = 0; attempt < 3 && !batch[i]; attempt++) {
				if (attempt > 0)
					r->connect_retries++;
				batch[i] = agent_connect_ex(HOST, control_port, app, REPO, id, NETWORK, &co);
			}
			if (!batch[i]) {
				if (!r->failure[0])
					snprintf(r->failure, sizeof(r->failure), "connect: %s", why);
				continue;
			}
			r->connected++;
			batch[i]->write_allowlist = false;
			if (agent_send_register(batch[i]) != 0)
				note(r, "register", batch[i]);
		}
		for (int i = 0; i < n; i++) {
			nonces[i][0] = '\0';
			if (!batch[i])
				continue;
			struct json_object *m = agent_recv(batch[i], WAIT_MS);
			const char *type = msg_string(m, "type"), *nonce = msg_string(m, "nonce");
			if (type && strcmp(type, "attest_request") == 0 && nonce)
				snprintf(nonces[i], sizeof(nonces[i]), "%s", nonce);
			else
				note(r, "attest_request", batch[i]);
			json_object_put(m);
		}
		for (int i = 0; i < n; i++)
			if (batch[i] && nonces[i][0] && agent_send_attest_response(batch[i], nonces[i], NULL) != 0)
				note(r, "attest_response", batch[i]);
		for (int i = 0; i < n; i++) {
			if (!batch[i] || !nonces[i][0])
				continue;
			struct json_object *m = agent_recv(batch[i], WAIT_MS);
			const char *reason = msg_string(m, "reason");
			if (reason && strcmp(reason, "attested") == 0)
				r->attested++;
			else
				note(r, reason ? reason : "verdict", batch[i]);
			json_object_put(m);
		}
	}
}

/* One client process of the idle run: up, report, hold until the parent says go, drop. */
static void idle_child(const char *prefix, long first, int count, int result_fd, int go_fd)
{
	struct test_agent **agents = calloc((size_t)count, sizeof(*agents));
	struct client_report r;
	memset(&r, 0, sizeof(r));
	if (!agents)
		_exit(3);
	bring_up(agents, prefix, first, count, &r);
	if (write(result_fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(3);
	char c;
	while (read(go_fd, &c, 1) < 0 && errno == EINTR)
		;
	for (int i = 0; i < count; i++)
		if (agents[i])
			agent_drop(agents[i]);
	free(agents);
	_exit(0);
}

static pid_t spawn_client(void)
{
	fflush(stdout);
	fflush(stderr);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(3);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		return 0;
	}
	if (pid > 0 && client_count < MAX_PROCS)
		client_pids[client_count++] = pid;
	return pid;
}

static void reap_clients(void)
{
	for (int i = 0; i < client_count; i++)
		if (client_pids[i] > 0)
			waitpid(client_pids[i], NULL, 0);
	client_count = 0;
}

/* Brings `agents` agents up from several processes; 0 when all attested. */
static int fleet_up(const char *prefix, long agents, int *go_write)
{
	int res[2], go[2];
	if (pipe(res) != 0 || pipe(go) != 0)
		return -1;
	int procs = (int)((agents + AGENTS_PER_PROCESS - 1) / AGENTS_PER_PROCESS);
	long first = 0;
	for (int p = 0; p < procs; p++) {
		int count = (int)(agents - first < AGENTS_PER_PROCESS ? agents - first : AGENTS_PER_PROCESS);
		pid_t pid = spawn_client();
		if (pid < 0)
			return -1;
		if (pid == 0) {
			close(res[0]);
			close(go[1]);
			idle_child(prefix, first, count, res[1], go[0]);
		}
		first += count;
	}
	close(res[1]);
	close(go[0]);
	struct client_report total = {0}, r;
	for (int p = 0; p < procs; p++) {
		if (read(res[0], &r, sizeof(r)) != (ssize_t)sizeof(r)) {
			snprintf(total.failure, sizeof(total.failure), "a client process died");
			break;
		}
		total.connected += r.connected;
		total.attested += r.attested;
		total.connect_retries += r.connect_retries;
		if (r.failure[0] && !total.failure[0])
			memcpy(total.failure, r.failure, sizeof(total.failure));
	}
	close(res[0]);
	*go_write = go[1];
	if (total.connect_retries)
		fprintf(stderr, "bench_tunnels: %d connects were tried again\n", total.connect_retries);
	if (total.attested != agents) {
		fprintf(stderr, "bench_tunnels: %d of %ld agents connected, %d attested; first failure: %s\n",
		        total.connected, agents, total.attested, total.failure);
		return -1;
	}
	return 0;
}

/* Lets the fleet go (its processes drop their sockets) and waits for ee-tunneld to hold none. */
static int fleet_down(int go_write)
{
	close(go_write);
	reap_clients();
	return wait_agents(0, WAIT_MS) ? 0 : -1;
}

static int run_idle(long agents, int settle_s)
{
	int go;
	if (fleet_up("warm", WARMUP_AGENTS, &go) != 0 || fleet_down(go) != 0)
		return -1;
	sleep_ms(1000);
	long base = vmrss_kb(tunneld_pid), base_db = db_kb() + wal_kb();
	int64_t t0 = time_monotonic_ms();
	if (fleet_up("idle", agents, &go) != 0)
		return -1;
	if (!wait_agents(agents, WAIT_MS)) {
		fprintf(stderr, "bench_tunnels: ee-tunneld does not count %ld agents\n", agents);
		return -1;
	}
	int64_t up_ms = time_monotonic_ms() - t0;
	long attested = vmrss_kb(tunneld_pid);
	sleep_ms(settle_s * 1000);
	long settled = vmrss_kb(tunneld_pid), settled_db = db_kb() + wal_kb();
	long still = health_agents();
	printf("agents %ld\n", agents);
	printf("connect_attest_ms %lld\n", (long long)up_ms);
	printf("attested_per_s %.0f\n", (double)agents * 1000.0 / (double)(up_ms ? up_ms : 1));
	printf("rss_base_kb %ld\n", base);
	printf("rss_attested_kb %ld\n", attested);
	printf("rss_settled_kb %ld\n", settled);
	printf("db_growth_kb %ld\n", settled_db - base_db);
	printf("bytes_per_tunnel_attested %.0f\n", (double)(attested - base) * 1024.0 / (double)agents);
	printf("bytes_per_tunnel %.0f\n", (double)(settled - base) * 1024.0 / (double)agents);
	printf("agents_after_settle %ld\n", still);
	fflush(stdout);
	if (fleet_down(go) != 0)
		return -1;
	return still == agents ? 0 : -1;
}

/* ---- churn ---- */

struct churn_shared {
	atomic_long next;     /* the next cycle to claim */
	atomic_long done;
	atomic_long failed;
	char failure[200];
};

static void churn_child(struct churn_shared *sh, int proc, long cycles)
{
	for (;;) {
		long i = atomic_fetch_add(&sh->next, 1);
		if (i >= cycles)
			break;
		char app[48], id[64];
		snprintf(app, sizeof(app), "churn-app-%d", proc % 4);
		snprintf(id, sizeof(id), "churn-agent-%d-%ld", proc, i % CHURN_IDS);
		struct test_agent *a = agent_connect(HOST, control_port, app, REPO, id, NETWORK);
		bool ok = a != NULL;
		if (a) {
			a->write_allowlist = false;
			ok = agent_up(a, false, WAIT_MS) == 0;
			if (!ok && atomic_fetch_add(&sh->failed, 1) == 0)
				snprintf(sh->failure, sizeof(sh->failure), "cycle %ld: %s", i, agent_last_reason(a));
			if (i % 4 == 3)
				agent_drop(a);
			else
				agent_disconnect(a);
		} else if (atomic_fetch_add(&sh->failed, 1) == 0) {
			snprintf(sh->failure, sizeof(sh->failure), "cycle %ld: the websocket did not open", i);
		}
		atomic_fetch_add(&sh->done, 1);
	}
	_exit(0);
}

static int run_churn(long cycles, int procs)
{
	struct churn_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
	                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -1;
	memset(sh, 0, sizeof(*sh));
	sleep_ms(500);
	long base = vmrss_kb(tunneld_pid);
	long base_db = db_kb();
	printf("churn_cycles 0 rss_kb %ld db_kb %ld wal_kb %ld\n", base, base_db, wal_kb());
	fflush(stdout);
	int64_t t0 = time_monotonic_ms();
	for (int p = 0; p < procs; p++) {
		pid_t pid = spawn_client();
		if (pid < 0)
			return -1;
		if (pid == 0)
			churn_child(sh, p, cycles);
	}
	long next_mark = CHURN_EVERY, first_mark = -1, first_db = base_db;
	while (atomic_load(&sh->done) < cycles) {
		long done = atomic_load(&sh->done);
		if (done >= next_mark) {
			long rss = vmrss_kb(tunneld_pid);
			if (first_mark < 0) {
				first_mark = rss;
				first_db = db_kb();
			}
			printf("churn_cycles %ld rss_kb %ld db_kb %ld wal_kb %ld\n", next_mark, rss, db_kb(),
			       wal_kb());
			fflush(stdout);
			next_mark += CHURN_EVERY;
		}
		bool alive = false;
		for (int i = 0; i < client_count; i++)
			if (waitpid(client_pids[i], NULL, WNOHANG) == 0)
				alive = true;
		if (!alive && atomic_load(&sh->done) < cycles)
			break;
		sleep_ms(5);
	}
	int64_t elapsed = time_monotonic_ms() - t0;
	reap_clients();
	long done = atomic_load(&sh->done), failed = atomic_load(&sh->failed);
	bool drained = wait_agents(0, WAIT_MS);
	sleep_ms(1000);
	long end = vmrss_kb(tunneld_pid);
	if (first_mark < 0)
		first_mark = end;
	long end_db = db_kb();
	printf("churn_cycles %ld rss_kb %ld db_kb %ld wal_kb %ld (end, all closed)\n", done, end, end_db,
	       wal_kb());
	printf("churn_cycles_per_s %.0f\n", (double)done * 1000.0 / (double)(elapsed ? elapsed : 1));
	printf("churn_rss_growth_kb %ld\n", end - base);
	printf("churn_rss_growth_after_first_%d_kb %ld\n", CHURN_EVERY, end - first_mark);
	printf("churn_db_growth_after_first_%d_kb %ld\n", CHURN_EVERY, end_db - first_db);
	printf("churn_failed_cycles %ld\n", failed);
	if (failed)
		fprintf(stderr, "bench_tunnels: first failure: %s\n", sh->failure);
	munmap(sh, sizeof(*sh));
	return done == cycles && failed == 0 && drained ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc < 5 || argc > 6 || (strcmp(argv[3], "idle") != 0 && strcmp(argv[3], "churn") != 0)) {
		fprintf(stderr, "usage: bench_tunnels <bin_dir> <dir> idle <agents> [settle_seconds]\n"
		                "       bench_tunnels <bin_dir> <dir> churn <cycles> [client_processes]\n");
		return 2;
	}
	bool idle = strcmp(argv[3], "idle") == 0;
	long n = atol(argv[4]);
	int extra = argc == 6 ? atoi(argv[5]) : (idle ? 5 : 4);
	if (n < 1 || n > 100000 || extra < (idle ? 0 : 1) || extra > MAX_PROCS) {
		fprintf(stderr, "bench_tunnels: bad count\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", argv[2]);
	/* Thousands of sockets here and in ee-tunneld, which inherits the limit. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (idle && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (long)rl.rlim_cur < n + WARMUP_AGENTS + 200) {
		fprintf(stderr, "bench_tunnels: RLIMIT_NOFILE %llu is too low for %ld agents\n",
		        (unsigned long long)rl.rlim_cur, n);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	atexit(stop_all);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);

	struct dcapgen_options o;
	dcapgen_defaults(&o);
	struct dcapgen *g;
	if (dcapgen_create(&o, &g) != 0) {
		fprintf(stderr, "bench_tunnels: cannot make the test hierarchy\n");
		return 1;
	}
	agent_set_hierarchy(g);
	int rc = start_tunneld(argv[1], idle ? n : 0);
	if (rc == 0)
		rc = idle ? run_idle(n, extra) : run_churn(n, extra);
	stop_all();
	dcapgen_destroy(g);
	return rc == 0 ? 0 : 1;
}
