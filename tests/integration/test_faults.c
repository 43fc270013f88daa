/*
 * test_faults.c - crash safety and storage faults, with the real processes:
 *   1. several client processes transfer money with Idempotency-Keys while
 *      ee-api's workers are SIGKILLed again and again, and its master once
 *      (then restarted): every 200 is in the ledger, retrying every key
 *      moves money at most once, no transaction is half there, the audit
 *      passes;
 *   2. the same for usage reports, then for settlements;
 *   3. ee-tunneld SIGKILLed with agents connected, waiting for their
 *      challenge and being verified: started again, it leaves no stale
 *      "connected" row, and the agents (test agents and a real ee-agent)
 *      come back and are attested again;
 *   4. storage faults under ee-api: another process holding the write lock
 *      past EE_DB_BUSY_TIMEOUT_MS, the disk full, the database read-only:
 *      503 with a stable reason and Retry-After, nothing changed, reads
 *      still served, and writes back once the fault is gone;
 *   5. the same faults under ee-tunneld: tunnels are still served, its
 *      writes wait in its queue and land once the fault is gone.
 *
 * As root the storage stack keeps its database on a small tmpfs of its own,
 * filled up for "disk full" and remounted read-only for "read-only" (chmod
 * does not stop root).  Without root, or where mounting is refused, the
 * read-only fault is chmod and the full disk is RLIMIT_FSIZE lowered on the
 * servers with prlimit(2) (SQLite then sees EFBIG: storage_error).
 */
#define _GNU_SOURCE /* prlimit */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "agentproc.h"
#include "check.h"
#include "client.h"
#include "echohttp.h"
#include "nodes.h"
#include "stack.h"
#include "testagent.h"
#include "timeutil.h"

#define HOST "127.0.0.1"
#define NETWORK "sandbox-1"

static struct stack st;
/* The running stack's database (the storage stack keeps it on its own file system). */
static char db_path[512];

/* ---- small helpers ---- */

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Keeps the first note only: the one that explains the rest. */
static void note(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(char *buf, size_t size, const char *fmt, ...)
{
	if (buf[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

static sqlite3 *db_reader(void)
{
	sqlite3 *h = NULL;
	if (sqlite3_open_v2(db_path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(h);
		return NULL;
	}
	sqlite3_busy_timeout(h, 5000);
	return h;
}

/* One integer from a query with up to two text parameters; -1 on any error. */
static long long sql_int(const char *sql, const char *p1, const char *p2)
{
	long long v = -1;
	sqlite3 *h = db_reader();
	sqlite3_stmt *s = NULL;
	if (h && sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK) {
		if (p1)
			sqlite3_bind_text(s, 1, p1, -1, SQLITE_TRANSIENT);
		if (p2)
			sqlite3_bind_text(s, 2, p2, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
	} else if (h) {
		fprintf(stderr, "# query failed: %s: %s\n", sqlite3_errmsg(h), sql);
	}
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

/* PRAGMA integrity_check's first line, "ok" for a sound file. */
static void check_integrity(void)
{
	char text[200] = "(no answer)";
	sqlite3 *h = db_reader();
	sqlite3_stmt *s = NULL;
	if (h && sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
		snprintf(text, sizeof(text), "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(h);
	CHECK_STR(text, "ok");
}

/*
 * No half-applied transaction: every transaction has exactly two entries
 * (every kind this ledger writes has two) summing to zero, and no entry
 * lacks its transaction.
 */
static void check_pairs(void)
{
	long long bad = sql_int(
		"SELECT (SELECT COUNT(*) FROM ledger_txns t WHERE"
		"  (SELECT COUNT(*) FROM ledger_entries e WHERE e.txn_id = t.txn_id) != 2 OR"
		"  (SELECT COALESCE(SUM(delta_cents), 1) FROM ledger_entries e WHERE e.txn_id = t.txn_id) != 0)"
		" + (SELECT COUNT(*) FROM ledger_entries e WHERE NOT EXISTS"
		"  (SELECT 1 FROM ledger_txns t WHERE t.txn_id = e.txn_id))",
		NULL, NULL);
	CHECK_INT(bad, 0);
}

static long long account_balance_sql(const char *account)
{
	return sql_int("SELECT COALESCE((SELECT balance_cents FROM accounts WHERE account_id = ?1), 0)",
	               account, NULL);
}

/* A POST with the admin (or another) token and, when key is set, an Idempotency-Key. */
static void money_post(const char *path, const char *token, const char *key, const char *body,
                       struct http_result *r)
{
	char auth[160], idem[160];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	const char *headers[4] = {auth, "Content-Type: application/json", NULL, NULL};
	if (key) {
		snprintf(idem, sizeof(idem), "Idempotency-Key: %s", key);
		headers[2] = idem;
	}
	stack_request_ex(&st, "POST", path, headers, body, strlen(body), r);
}

static bool replayed(const struct http_result *r)
{
	char v[16];
	return http_header(r, "Idempotent-Replayed", v, sizeof(v)) && strcmp(v, "true") == 0;
}

static bool has_retry_after(const struct http_result *r)
{
	char v[16];
	return http_header(r, "Retry-After", v, sizeof(v));
}

static const char *reason_of(const struct http_result *r)
{
	const char *why = http_reason(r);
	return why ? why : "";
}

static void fund(const char *account, long long cents)
{
	char body[160];
	snprintf(body, sizeof(body), "{\"account_id\":\"%s\",\"amount_usd\":\"%lld.%02lld\"}", account,
	         cents / 100, cents % 100);
	struct http_result r;
	stack_request(&st, "POST", "/v1/credits/purchase", TEST_ADMIN_TOKEN, body, &r);
	CHECK(r.status == 200, "purchase for %s: %ld %s", account, r.status, r.body ? r.body : "");
	http_result_free(&r);
}

/* GET /v1/resolve/{app}: its status. */
static long resolve(const char *app)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/resolve/%s", app);
	struct http_result r;
	stack_request(&st, "GET", path, NULL, NULL, &r);
	long status = r.status;
	http_result_free(&r);
	return status;
}

static bool wait_resolve(const char *app, long want, int timeout_ms, long *last)
{
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	for (;;) {
		*last = resolve(app);
		if (*last == want)
			return true;
		if (time_monotonic_ms() >= deadline)
			return false;
		sleep_ms(30);
	}
}

/* Waits for a query to give want; returns the last value. */
static long long wait_sql(const char *sql, const char *p1, const char *p2, long long want,
                          int timeout_ms)
{
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	for (;;) {
		long long v = sql_int(sql, p1, p2);
		if (v == want || time_monotonic_ms() >= deadline)
			return v;
		sleep_ms(30);
	}
}

/* ee-tunneld's own GET /health: its status, and how long it took in *ms. */
static long tunneld_health(int64_t *ms, long long *agents)
{
	char url[96];
	snprintf(url, sizeof(url), "http://%s:%d/health", HOST, st.control_port);
	struct http_result r;
	int64_t t0 = time_monotonic_ms();
	http_do("GET", url, NULL, NULL, 0, &r);
	if (ms)
		*ms = time_monotonic_ms() - t0;
	if (agents)
		*agents = http_json_int(&r, "agents", -1);
	long status = r.status;
	http_result_free(&r);
	return status;
}

/* ---- processes ---- */

/* State letter, parent and process group from /proc/<pid>/stat; false when gone. */
static bool proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	int pp, pg;
	char s;
	if (!p || sscanf(p + 1, " %c %d %d", &s, &pp, &pg) != 3)
		return false;
	*state = s;
	if (ppid)
		*ppid = pp;
	if (pgrp)
		*pgrp = pg;
	return true;
}

/* Every process of /proc whose parent (by_group false) or process group is id, zombies left out. */
static int scan_proc(pid_t id, bool by_group, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < max) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		char state;
		pid_t ppid, pgrp;
		if (proc_stat((pid_t)pid, &state, &ppid, &pgrp) && state != 'Z' &&
		    (by_group ? pgrp : ppid) == id)
			out[n++] = (pid_t)pid;
	}
	closedir(d);
	return n;
}

/*
 * The live workers of an ee-api master: /proc/<pid>/task/<pid>/children
 * where the kernel has it, else a scan of /proc for the parent.
 */
static int api_workers(pid_t master, pid_t *out, int max)
{
	char path[80];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)master, (int)master);
	FILE *f = fopen(path, "r");
	if (!f)
		return scan_proc(master, false, out, max);
	int n = 0, pid;
	while (n < max && fscanf(f, "%d", &pid) == 1) {
		char state;
		pid_t ppid;
		if (proc_stat(pid, &state, &ppid, NULL) && state != 'Z' && ppid == master)
			out[n++] = pid;
	}
	fclose(f);
	return n;
}

/* Waits until no live process is left in a process group. */
static bool wait_group_gone(pid_t group, int timeout_ms)
{
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	pid_t left[64];
	while (scan_proc(group, true, left, 64) > 0) {
		if (time_monotonic_ms() >= deadline)
			return false;
		sleep_ms(10);
	}
	return true;
}

/* Waits for ee-api's /health through Caddy (after a restart). */
static bool wait_api(int timeout_ms)
{
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	for (;;) {
		struct http_result r;
		stack_request(&st, "GET", "/health", NULL, NULL, &r);
		long status = r.status;
		http_result_free(&r);
		if (status == 200)
			return true;
		if (time_monotonic_ms() >= deadline)
			return false;
		sleep_ms(20);
	}
}

/* kill -9 of the whole ee-api (master and workers, as a crash or a cgroup kill), reaped. */
static void crash_api(void)
{
	pid_t master = st.api_pid;
	if (master <= 0)
		return;
	kill(-master, SIGKILL);
	kill(master, SIGKILL);
	waitpid(master, NULL, 0);
	st.api_pid = 0;
	CHECK(wait_group_gone(master, 5000), "ee-api's workers outlived kill -9");
}

/* ---- many clients at once, with kill -9 underneath ---- */

#define MAX_CLIENTS 8
#define OP_BODY_MAX 320
#define OP_ANSWER_MAX 600

/* One money-moving POST, made up front so that a retry sends exactly the same request. */
struct op {
	char key[64];
	char path[96];
	char body[OP_BODY_MAX];
	bool uptime_token;    /* the uptime token instead of the admin one */
	int a, b, period;     /* for the accounting: from/to, user/node, period */
	long long cents;
};

/* What one attempt at an op got. status 0: no HTTP answer; -1: no attempt recorded. */
struct outcome {
	int op;
	long status;
	bool replayed;
	char reason[48];
	char body[OP_ANSWER_MAX];
};

static void send_op(const struct op *o, struct outcome *out)
{
	struct http_result r;
	money_post(o->path, o->uptime_token ? TEST_UPTIME_TOKEN : TEST_ADMIN_TOKEN, o->key, o->body, &r);
	memset(out, 0, sizeof(*out));
	out->status = r.status;
	out->replayed = replayed(&r);
	snprintf(out->reason, sizeof(out->reason), "%s", reason_of(&r));
	snprintf(out->body, sizeof(out->body), "%s", r.body ? r.body : "");
	http_result_free(&r);
}

/* What the chaos did during one run. */
struct chaos {
	int worker_kills;
	bool master_killed;
	int orphans;          /* workers the killed master left running */
	bool restart_failed;
};

static void kill_one_worker(struct chaos *c)
{
	pid_t w[32];
	int n = api_workers(st.api_pid, w, 32);
	/* One is left serving: the master replaces at most one worker a second. */
	if (n < 2)
		return;
	if (kill(w[rand() % n], SIGKILL) == 0)
		c->worker_kills++;
}

/*
 * kill -9 of the master alone, then a new ee-api on the same socket and
 * database.  The old workers are orphans that still hold the old listening
 * socket and whatever request they are in; they are killed a moment later,
 * in the middle of it, as a control-group kill would.
 */
static void crash_master(struct chaos *c)
{
	pid_t old = st.api_pid;
	kill(old, SIGKILL);
	waitpid(old, NULL, 0);
	st.api_pid = 0;
	pid_t left[32];
	c->orphans = scan_proc(old, true, left, 32);
	if (stack_restart_api(&st) != 0)
		c->restart_failed = true;
	sleep_ms(50);
	kill(-old, SIGKILL);
	c->master_killed = true;
	wait_group_gone(old, 5000);
}

static int outcomes_done(char paths[][400], int clients)
{
	long long bytes = 0;
	for (int i = 0; i < clients; i++) {
		struct stat sb;
		if (stat(paths[i], &sb) == 0)
			bytes += sb.st_size;
	}
	return (int)(bytes / (long long)sizeof(struct outcome));
}

/* A client process: its share of the ops, one record per attempt into its own file. */
static void client_child(const char *path, const struct op *ops, int n, int clients, int id)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		_exit(3);
	for (int i = id; i < n; i += clients) {
		struct outcome o;
		send_op(&ops[i], &o);
		o.op = i;
		if (write(fd, &o, sizeof(o)) != (ssize_t)sizeof(o))
			_exit(3);
	}
	close(fd);
	_exit(0);
}

/*
 * Sends every op once from clients processes at once; with chaos, kills an
 * ee-api worker about every sixteenth of the way (never the last one alive)
 * and the master once, near the middle.  out[i] gets op i's outcome.
 */
static bool run_ops(const char *tag, const struct op *ops, int n, int clients, bool chaos,
                    struct outcome *out, struct chaos *c, int64_t *took_ms)
{
	static char paths[MAX_CLIENTS][400];
	pid_t pids[MAX_CLIENTS];
	memset(c, 0, sizeof(*c));
	fflush(stdout);
	fflush(stderr);
	int64_t t0 = time_monotonic_ms();
	for (int i = 0; i < clients; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/outcomes-%s-%d", st.dir, tag, i);
		unlink(paths[i]);
		pids[i] = fork();
		if (pids[i] == 0)
			client_child(paths[i], ops, n, clients, i);
	}
	int alive = clients, step = n / 16 > 0 ? n / 16 : 1, next_kill = step;
	bool ok = true;
	int64_t last_kill = 0;
	while (alive > 0) {
		for (int i = 0; i < clients; i++) {
			int status;
			if (pids[i] > 0 && waitpid(pids[i], &status, WNOHANG) == pids[i]) {
				pids[i] = 0;
				alive--;
				if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
					ok = false;
			}
		}
		if (chaos && alive > 0) {
			int done = outcomes_done(paths, clients);
			int64_t now = time_monotonic_ms();
			if (!c->master_killed && done >= n * 45 / 100) {
				crash_master(c);
			} else if (done >= next_kill && now - last_kill >= 150) {
				kill_one_worker(c);
				next_kill += step;
				last_kill = now;
			}
		}
		sleep_ms(chaos ? 5 : 10);
	}
	*took_ms = time_monotonic_ms() - t0;
	for (int i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].op = i;
		out[i].status = -1;
	}
	for (int i = 0; i < clients; i++) {
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		struct outcome o;
		while (fd >= 0 && read(fd, &o, sizeof(o)) == (ssize_t)sizeof(o)) {
			if (o.op >= 0 && o.op < n)
				out[o.op] = o;
		}
		if (fd >= 0)
			close(fd);
		unlink(paths[i]);
	}
	for (int i = 0; i < n; i++) {
		if (out[i].status == -1)
			ok = false;
	}
	return ok;
}

/* Tallies a run's answers: what a killed worker or master may cause is 503 upstream_unavailable or no answer. */
struct tally {
	int ok, unavailable, no_answer, other;
	char first_other[300];
};

static struct tally tally_outcomes(const struct op *ops, const struct outcome *out, int n)
{
	struct tally t;
	memset(&t, 0, sizeof(t));
	for (int i = 0; i < n; i++) {
		if (out[i].status == 200)
			t.ok++;
		else if (out[i].status == 503 && strcmp(out[i].reason, "upstream_unavailable") == 0)
			t.unavailable++;
		else if (out[i].status == 0)
			t.no_answer++;
		else if (t.other++ == 0)
			snprintf(t.first_other, sizeof(t.first_other), "%.60s: %ld %.200s", ops[i].key,
			         out[i].status, out[i].body);
	}
	return t;
}

/*
 * After a run under chaos: every key sent again twice, from as many
 * processes.  The first retry must be 200 for every key: a key that had its
 * 200 replays it byte for byte; a key that had none either commits now or
 * replays the answer its lost attempt committed.  The second retry replays
 * the first for every key.  Returns how many of the unanswered had in fact
 * committed.
 */
static int retry_all(const char *tag, const struct op *ops, const struct outcome *load, int n,
                     int clients, struct outcome *retry, struct outcome *again)
{
	struct chaos c;
	int64_t ms;
	char name[64];
	/* The clients retry once the service is back: the run may have ended
	 * while the restarted master was still coming up. */
	CHECK(wait_api(10000), "ee-api did not come back after the run (see %s)", st.dir);
	snprintf(name, sizeof(name), "%s-retry", tag);
	CHECK(run_ops(name, ops, n, clients, false, retry, &c, &ms), "a client process died");
	snprintf(name, sizeof(name), "%s-again", tag);
	CHECK(run_ops(name, ops, n, clients, false, again, &c, &ms), "a client process died");
	int lost_but_committed = 0;
	char first[400] = "";
	for (int i = 0; i < n; i++) {
		if (retry[i].status != 200) {
			note(first, sizeof(first), "retry of %s: %ld %s", ops[i].key, retry[i].status,
			     retry[i].body);
			continue;
		}
		if (load[i].status == 200) {
			if (!retry[i].replayed || strcmp(retry[i].body, load[i].body) != 0)
				note(first, sizeof(first), "retry of %s (answered 200) was not a replay: %s vs %s",
				     ops[i].key, retry[i].body, load[i].body);
		} else if (retry[i].replayed) {
			lost_but_committed++;
		}
		if (again[i].status != 200 || !again[i].replayed || strcmp(again[i].body, retry[i].body) != 0)
			note(first, sizeof(first), "second retry of %s: %ld replayed=%d %s", ops[i].key,
			     again[i].status, again[i].replayed, again[i].body);
	}
	CHECK(!first[0], "%s", first);
	return lost_but_committed;
}

/* A string field of a stored JSON answer, copied; "" when absent. */
static void answer_field(const char *body, const char *key, char *out, size_t size)
{
	out[0] = '\0';
	struct json_object *o = json_tokener_parse(body), *v;
	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		snprintf(out, size, "%s", json_object_get_string(v));
	json_object_put(o);
}

static long long answer_int(const char *body, const char *key)
{
	long long n = -1;
	struct json_object *o = json_tokener_parse(body), *v;
	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int))
		n = json_object_get_int64(v);
	json_object_put(o);
	return n;
}

/* ---- 1. transfers with kill -9 ---- */

#define ACCOUNTS 4
#define CLIENTS 6
#define TRANSFERS 480
#define FUND_CENTS 100000LL /* far above what the transfers move: none is refused */

static const char *const accounts[ACCOUNTS] = {"crash-acct-a", "crash-acct-b", "crash-acct-c",
                                               "crash-acct-d"};
static struct op transfer_ops[TRANSFERS];
static struct outcome transfer_load[TRANSFERS], transfer_retry[TRANSFERS],
	transfer_again[TRANSFERS];

/* Both entries of a transfer as the client was told: from -cents, to +cents. */
static bool transfer_in_ledger(sqlite3 *h, const char *txn_id, const struct op *o)
{
	sqlite3_stmt *s = NULL;
	bool from_ok = false, to_ok = false;
	int rows = 0;
	if (sqlite3_prepare_v2(h,
	                       "SELECT account_id, delta_cents FROM ledger_entries e JOIN ledger_txns t"
	                       " USING (txn_id) WHERE txn_id = ?1 AND t.kind = 'transfer'",
	                       -1, &s, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(s, 1, txn_id, -1, SQLITE_TRANSIENT);
	while (sqlite3_step(s) == SQLITE_ROW) {
		rows++;
		const char *account = (const char *)sqlite3_column_text(s, 0);
		long long delta = sqlite3_column_int64(s, 1);
		if (account && strcmp(account, accounts[o->a]) == 0 && delta == -o->cents)
			from_ok = true;
		if (account && strcmp(account, accounts[o->b]) == 0 && delta == o->cents)
			to_ok = true;
	}
	sqlite3_finalize(s);
	return rows == 2 && from_ok && to_ok;
}

static void test_transfers_under_kill(void)
{
	test_case("fund %d accounts", ACCOUNTS);
	for (int i = 0; i < ACCOUNTS; i++)
		fund(accounts[i], FUND_CENTS);
	long long transfers_before =
		sql_int("SELECT COUNT(*) FROM ledger_txns WHERE kind = 'transfer'", NULL, NULL);
	srand(20261205);
	for (int i = 0; i < TRANSFERS; i++) {
		struct op *o = &transfer_ops[i];
		o->a = rand() % ACCOUNTS;
		o->b = (o->a + 1 + rand() % (ACCOUNTS - 1)) % ACCOUNTS;
		o->cents = 1 + rand() % 100;
		snprintf(o->key, sizeof(o->key), "crash-transfer-%03d", i);
		snprintf(o->path, sizeof(o->path), "/v1/credits/transfer");
		snprintf(o->body, sizeof(o->body),
		         "{\"from_account\":\"%s\",\"to_account\":\"%s\",\"amount_usd\":\"%lld.%02lld\"}",
		         accounts[o->a], accounts[o->b], o->cents / 100, o->cents % 100);
	}

	test_case("%d clients send %d transfers with Idempotency-Keys while ee-api's workers are "
	          "SIGKILLed and its master is SIGKILLed and restarted",
	          CLIENTS, TRANSFERS);
	struct chaos c;
	int64_t ms;
	CHECK(run_ops("transfer", transfer_ops, TRANSFERS, CLIENTS, true, transfer_load, &c, &ms),
	      "a client process died or lost an answer");
	struct tally t = tally_outcomes(transfer_ops, transfer_load, TRANSFERS);
	printf("# %d ms: %d worker kills, master killed %s (%d orphaned workers); answers: %d ok, "
	       "%d upstream_unavailable, %d none, %d other\n",
	       (int)ms, c.worker_kills, c.master_killed ? "and restarted" : "NOT", c.orphans, t.ok,
	       t.unavailable, t.no_answer, t.other);
	CHECK(c.master_killed && !c.restart_failed, "the master was not killed and restarted mid-load");
	CHECK(c.worker_kills >= 2, "only %d worker kills landed", c.worker_kills);
	CHECK(t.other == 0, "%d unexpected answers, first %s", t.other, t.first_other);
	CHECK(t.ok > 0);

	test_case("every transfer answered 200 is in the ledger: its two entries, as answered");
	sqlite3 *h = db_reader();
	CHECK(h != NULL);
	int missing = 0;
	char first[300] = "";
	for (int i = 0; h && i < TRANSFERS; i++) {
		if (transfer_load[i].status != 200)
			continue;
		char id[80];
		answer_field(transfer_load[i].body, "transfer_id", id, sizeof(id));
		if (!id[0] || !transfer_in_ledger(h, id, &transfer_ops[i])) {
			missing++;
			note(first, sizeof(first), "%s answered %s", transfer_ops[i].key, transfer_load[i].body);
		}
	}
	sqlite3_close(h);
	CHECK(missing == 0, "%d not found; first: %s", missing, first);

	test_case("every key retried twice: the 200s replay byte for byte, the others commit or "
	          "replay, then all replay");
	int lost = retry_all("transfer", transfer_ops, transfer_load, TRANSFERS, CLIENTS,
	                     transfer_retry, transfer_again);
	printf("# %d of %d unanswered transfers had committed before the kill\n", lost,
	       TRANSFERS - t.ok);

	test_case("each key moved money exactly once: one transfer per key, every balance adds up");
	CHECK_INT(sql_int("SELECT COUNT(*) FROM ledger_txns WHERE kind = 'transfer'", NULL, NULL) -
	              transfers_before,
	          TRANSFERS);
	CHECK_INT(sql_int("SELECT COUNT(*) FROM idempotency_keys WHERE scope = 'credits.transfer'"
	                  " AND idem_key GLOB 'crash-transfer-*'",
	                  NULL, NULL),
	          TRANSFERS);
	/* Each stored answer names a transfer that exists. */
	CHECK_INT(sql_int("SELECT COUNT(*) FROM idempotency_keys k WHERE scope = 'credits.transfer'"
	                  " AND NOT EXISTS (SELECT 1 FROM ledger_txns t WHERE t.kind = 'transfer'"
	                  " AND t.txn_id = json_extract(k.response, '$.transfer_id'))",
	                  NULL, NULL),
	          0);
	long long want[ACCOUNTS];
	for (int i = 0; i < ACCOUNTS; i++)
		want[i] = FUND_CENTS;
	for (int i = 0; i < TRANSFERS; i++) {
		want[transfer_ops[i].a] -= transfer_ops[i].cents;
		want[transfer_ops[i].b] += transfer_ops[i].cents;
	}
	for (int i = 0; i < ACCOUNTS; i++)
		CHECK(stack_balance(&st, accounts[i], NULL) == want[i], "%s: %lld, want %lld",
		      accounts[i], stack_balance(&st, accounts[i], NULL), want[i]);

	test_case("no half-applied transaction, the ledger audit passes, the file is sound");
	check_pairs();
	check_ledger(db_path);
	check_integrity();
}

/* ---- 2. usage reports and settlements with kill -9 ---- */

#define NODES 4   /* 0 and 1 pass; 2 and 3 have no stake */
#define USERS 4
#define PERIODS 8
#define REPORTS_EACH 2
#define USAGE_OPS (USERS * NODES * PERIODS * REPORTS_EACH)
#define SETTLE_OPS (NODES * PERIODS * 2)
#define PRICE_CENTS 100

static struct op usage_ops[USAGE_OPS], settle_ops[SETTLE_OPS];
static struct outcome usage_load[USAGE_OPS], usage_retry[USAGE_OPS], usage_again[USAGE_OPS];
static struct outcome settle_load[SETTLE_OPS], settle_retry[SETTLE_OPS], settle_again[SETTLE_OPS];

static void node_name(int n, char *out, size_t size) { snprintf(out, size, "crash-node-%d", n); }
static void user_name(int u, char *out, size_t size) { snprintf(out, size, "crash-user-%d", u); }
static bool node_eligible(int n) { return n < 2; }

static void period_bounds(int p, char start[32], char end[32])
{
	snprintf(start, 32, "2025-01-%02dT00:00:00Z", p + 1);
	snprintf(end, 32, "2025-01-%02dT00:00:00Z", p + 2);
}

static void settlement_setup(void)
{
	test_case("%d priced nodes (%d staked), attested and healthy; %d funded users", NODES,
	          NODES / 2, USERS);
	for (int n = 0; n < NODES; n++) {
		char node[32], body[200];
		node_name(n, node, sizeof(node));
		snprintf(body, sizeof(body), "{\"node_id\":\"%s\",\"price_usd\":\"1.00\"%s}", node,
		         node_eligible(n) ? ",\"stake_amount_usd\":\"50\"" : "");
		struct http_result r;
		stack_request(&st, "POST", "/v1/nodes/register", TEST_ADMIN_TOKEN, body, &r);
		CHECK(r.status == 200, "%s: %ld %s", node, r.status, r.body ? r.body : "");
		http_result_free(&r);
	}
	struct ee_db *db = stack_db(&st);
	if (db) {
		struct ee_error err;
		int64_t now = time_now_ms();
		for (int n = 0; n < NODES; n++) {
			char node[32];
			node_name(n, node, sizeof(node));
			CHECK(nodes_mark_attestation(db, node, "valid", now, &err) == 0, "%s", err.reason);
			CHECK(nodes_mark_health(db, node, "pass", now, &err) == 0, "%s", err.reason);
		}
		db_close(db);
	}
	for (int u = 0; u < USERS; u++) {
		char user[32];
		user_name(u, user, sizeof(user));
		fund(user, FUND_CENTS);
	}
	int i = 0;
	for (int u = 0; u < USERS; u++)
		for (int n = 0; n < NODES; n++)
			for (int p = 0; p < PERIODS; p++)
				for (int k = 0; k < REPORTS_EACH; k++, i++) {
					struct op *o = &usage_ops[i];
					char user[32], node[32], start[32], end[32];
					user_name(u, user, sizeof(user));
					node_name(n, node, sizeof(node));
					period_bounds(p, start, end);
					int quarters = 4 + (u + n + p + k) % 4; /* 1.00 to 1.75 hours */
					o->a = u;
					o->b = n;
					o->period = p;
					o->cents = PRICE_CENTS * quarters / 4;
					o->uptime_token = true;
					snprintf(o->key, sizeof(o->key), "crash-usage-%03d", i);
					snprintf(o->path, sizeof(o->path), "/v1/usage/report");
					snprintf(o->body, sizeof(o->body),
					         "{\"account_id\":\"%s\",\"node_id\":\"%s\",\"period_start\":\"%s\","
					         "\"period_end\":\"%s\",\"vcpu_hours\":\"%d.%02d\"}",
					         user, node, start, end, quarters / 4, (quarters % 4) * 25);
				}
	i = 0;
	for (int n = 0; n < NODES; n++)
		for (int p = 0; p < PERIODS; p++)
			for (int v = 0; v < 2; v++, i++) {
				/* Two keys per node and period: two finalizations race, one settles. */
				struct op *o = &settle_ops[i];
				char node[32], start[32], end[32];
				node_name(n, node, sizeof(node));
				period_bounds(p, start, end);
				o->b = n;
				o->period = p;
				snprintf(o->key, sizeof(o->key), "crash-settle-%d-%d-%c", n, p, 'a' + v);
				snprintf(o->path, sizeof(o->path), "/v1/settlements/2025-01-%02d/finalize", p + 1);
				snprintf(o->body, sizeof(o->body),
				         "{\"node_id\":\"%s\",\"period_start\":\"%s\",\"period_end\":\"%s\"}", node,
				         start, end);
			}
}

static void test_usage_under_kill(void)
{
	test_case("%d clients send %d usage reports with Idempotency-Keys under kill -9", CLIENTS,
	          USAGE_OPS);
	struct chaos c;
	int64_t ms;
	CHECK(run_ops("usage", usage_ops, USAGE_OPS, CLIENTS, true, usage_load, &c, &ms),
	      "a client process died or lost an answer");
	struct tally t = tally_outcomes(usage_ops, usage_load, USAGE_OPS);
	printf("# %d ms: %d worker kills, master killed %s; answers: %d ok, %d upstream_unavailable, "
	       "%d none, %d other\n",
	       (int)ms, c.worker_kills, c.master_killed ? "and restarted" : "NOT", t.ok, t.unavailable,
	       t.no_answer, t.other);
	CHECK(c.master_killed && !c.restart_failed, "the master was not killed and restarted mid-load");
	CHECK(t.other == 0, "%d unexpected answers, first %s", t.other, t.first_other);
	int missing = 0;
	for (int i = 0; i < USAGE_OPS; i++) {
		char id[80];
		if (usage_load[i].status != 200)
			continue;
		answer_field(usage_load[i].body, "usage_id", id, sizeof(id));
		if (sql_int("SELECT COUNT(*) FROM usage_reports WHERE usage_id = ?1", id, NULL) != 1)
			missing++;
	}
	CHECK(missing == 0, "%d usage reports answered 200 are not in the database", missing);

	test_case("every usage key retried twice: one report per key, nothing locked twice");
	int lost = retry_all("usage", usage_ops, usage_load, USAGE_OPS, CLIENTS, usage_retry,
	                     usage_again);
	printf("# %d of %d unanswered usage reports had committed before the kill\n", lost,
	       USAGE_OPS - t.ok);
	CHECK_INT(sql_int("SELECT COUNT(*) FROM usage_reports WHERE node_id GLOB 'crash-node-*'", NULL,
	                  NULL),
	          USAGE_OPS);
	long long locked_total = 0, user_locked[USERS] = {0};
	for (int i = 0; i < USAGE_OPS; i++) {
		CHECK(answer_int(usage_retry[i].body, "amount_cents") == usage_ops[i].cents, "%s: %s",
		      usage_ops[i].key, usage_retry[i].body);
		locked_total += usage_ops[i].cents;
		user_locked[usage_ops[i].a] += usage_ops[i].cents;
	}
	CHECK_INT(account_balance_sql("@escrow"), locked_total);
	for (int u = 0; u < USERS; u++) {
		char user[32];
		long long locked;
		user_name(u, user, sizeof(user));
		long long balance = stack_balance(&st, user, &locked);
		CHECK(balance == FUND_CENTS - user_locked[u] && locked == user_locked[u],
		      "%s: balance %lld locked %lld, want %lld and %lld", user, balance, locked,
		      FUND_CENTS - user_locked[u], user_locked[u]);
	}
	check_pairs();
	check_ledger(db_path);
}

static void test_settlements_under_kill(void)
{
	test_case("%d finalizations (two keys per node and period) under kill -9", SETTLE_OPS);
	long long settlements_before =
		sql_int("SELECT COUNT(*) FROM settlements WHERE node_id GLOB 'crash-node-*'", NULL, NULL);
	struct chaos c;
	int64_t ms;
	CHECK(run_ops("settle", settle_ops, SETTLE_OPS, CLIENTS, true, settle_load, &c, &ms),
	      "a client process died or lost an answer");
	struct tally t = tally_outcomes(settle_ops, settle_load, SETTLE_OPS);
	printf("# %d ms: %d worker kills, master killed %s; answers: %d ok, %d upstream_unavailable, "
	       "%d none, %d other\n",
	       (int)ms, c.worker_kills, c.master_killed ? "and restarted" : "NOT", t.ok, t.unavailable,
	       t.no_answer, t.other);
	CHECK(c.master_killed && !c.restart_failed, "the master was not killed and restarted mid-load");
	CHECK(t.other == 0, "%d unexpected answers, first %s", t.other, t.first_other);

	test_case("every finalization key retried twice: each report settled or released exactly once");
	int lost = retry_all("settle", settle_ops, settle_load, SETTLE_OPS, CLIENTS, settle_retry,
	                     settle_again);
	printf("# %d of %d unanswered finalizations had committed before the kill\n", lost,
	       SETTLE_OPS - t.ok);
	/* Each key committed once: one settlements row each. */
	CHECK_INT(sql_int("SELECT COUNT(*) FROM settlements WHERE node_id GLOB 'crash-node-*'", NULL,
	                  NULL) -
	              settlements_before,
	          SETTLE_OPS);
	CHECK_INT(sql_int("SELECT COUNT(*) FROM usage_reports WHERE node_id GLOB 'crash-node-*'"
	                  " AND status = 'locked'",
	                  NULL, NULL),
	          0);
	CHECK_INT(sql_int("SELECT COUNT(*) FROM usage_reports u WHERE node_id GLOB 'crash-node-*' AND"
	                  " (SELECT COUNT(*) FROM ledger_txns t WHERE t.kind IN ('settle', 'release')"
	                  "  AND t.ref_type = 'usage' AND t.ref_id = u.usage_id) != 1",
	                  NULL, NULL),
	          0);
	/* The two answers of a node and period together closed each of its reports once. */
	char first[400] = "";
	for (int i = 0; i < SETTLE_OPS; i += 2) {
		const struct op *o = &settle_ops[i];
		long long count = 0, cents = 0, want_cents = 0;
		for (int v = 0; v < 2; v++) {
			const char *body = settle_retry[i + v].body;
			count += answer_int(body, node_eligible(o->b) ? "settled" : "failed");
			cents += answer_int(body, node_eligible(o->b) ? "settled_cents" : "failed_cents");
			CHECK_INT(answer_int(body, node_eligible(o->b) ? "failed" : "settled"), 0);
			struct json_object *a = json_tokener_parse(body), *e;
			bool eligible = a && json_object_object_get_ex(a, "eligible", &e) &&
			                json_object_get_boolean(e);
			json_object_put(a);
			if (eligible != node_eligible(o->b) ||
			    (!node_eligible(o->b) && !strstr(body, "\"stake_missing\"")))
				note(first, sizeof(first), "%s: %s", o->key, body);
		}
		for (int k = 0; k < USAGE_OPS; k++) {
			if (usage_ops[k].b == o->b && usage_ops[k].period == o->period)
				want_cents += usage_ops[k].cents;
		}
		if (count != USERS * REPORTS_EACH || cents != want_cents)
			note(first, sizeof(first), "%s and its twin closed %lld reports for %lld cents, want %d "
			     "for %lld", o->key, count, cents, USERS * REPORTS_EACH, want_cents);
	}
	CHECK(!first[0], "%s", first);

	test_case("after settlement: @escrow empty, providers paid, failed periods refunded, audit "
	          "passes");
	CHECK_INT(account_balance_sql("@escrow"), 0);
	long long node_want[NODES] = {0}, user_want[USERS];
	for (int u = 0; u < USERS; u++)
		user_want[u] = FUND_CENTS;
	for (int k = 0; k < USAGE_OPS; k++) {
		if (node_eligible(usage_ops[k].b)) {
			node_want[usage_ops[k].b] += usage_ops[k].cents;
			user_want[usage_ops[k].a] -= usage_ops[k].cents;
		}
	}
	for (int n = 0; n < NODES; n++) {
		char node[32];
		node_name(n, node, sizeof(node));
		CHECK(stack_balance(&st, node, NULL) == node_want[n], "%s: %lld, want %lld", node,
		      stack_balance(&st, node, NULL), node_want[n]);
	}
	for (int u = 0; u < USERS; u++) {
		char user[32];
		long long locked;
		user_name(u, user, sizeof(user));
		long long balance = stack_balance(&st, user, &locked);
		CHECK(balance == user_want[u] && locked == 0, "%s: balance %lld locked %lld, want %lld", user,
		      balance, locked, user_want[u]);
	}
	check_pairs();
	check_ledger(db_path);
	check_integrity();
}

/* ---- 3. ee-tunneld killed with agents connected, challenged and being verified ---- */

#define STEADY 4
#define CHALLENGED 3
#define VERIFYING 3
#define TEST_AGENTS (STEADY + CHALLENGED + VERIFYING)
#define REAL_REPO "crash/real"
#define REAL_APP "crash-e"

static void crash_agent_ids(int i, char app[32], char id[40])
{
	if (i < STEADY) {
		snprintf(app, 32, "crash-%c", i % 2 ? 'b' : 'a');
		snprintf(id, 40, "crash-steady-%d", i);
	} else if (i < STEADY + CHALLENGED) {
		snprintf(app, 32, "crash-c");
		snprintf(id, 40, "crash-challenged-%d", i);
	} else {
		snprintf(app, 32, "crash-d");
		snprintf(id, 40, "crash-verifying-%d", i);
	}
}

static struct test_agent *crash_connect(int i)
{
	char app[32], id[40];
	crash_agent_ids(i, app, id);
	return agent_connect(HOST, st.control_port, app, "crash/app", id, NETWORK);
}

static bool start_real_agent(struct agent_proc *p, const struct echohttp *backend,
                             const char *kit)
{
	static char vars[4][512];
	snprintf(vars[0], sizeof(vars[0]), "EE_CONTROL_WS=ws://127.0.0.1:%d/v1/tunnel", st.port);
	snprintf(vars[1], sizeof(vars[1]), "EE_BACKEND_URL=%s", backend->base_url);
	snprintf(vars[2], sizeof(vars[2]), "EE_DEV_QUOTE_DIR=%s", kit);
	const char *env[] = {vars[0], vars[1], vars[2], "EE_APP_NAME=" REAL_APP,
	                     "EE_AGENT_ID=crash-real-1", "EE_REPO=" REAL_REPO,
	                     "EE_RELEASE_TAG=" AGENT_DEFAULT_RELEASE, "EE_NETWORK=" NETWORK,
	                     "EE_QUOTE_SOURCE=dev", "EE_RECONNECT_DELAY_SEC=0.2",
	                     "EE_RECONNECT_MAX_SEC=1", "EE_HEALTH_INTERVAL_SEC=1",
	                     "EE_LOG_LEVEL=info", NULL};
	char log[400];
	snprintf(log, sizeof(log), "%s/ee-agent-crash-real-1.log", st.dir);
	return agentproc_start(p, stack_bin_dir(), log, env) == 0;
}

static void test_tunneld_kill(void)
{
	test_case("agents attested and connected, others challenged or being verified, a real "
	          "ee-agent ready");
	struct echohttp backend;
	struct agent_proc real;
	memset(&backend, 0, sizeof(backend));
	memset(&real, 0, sizeof(real));
	char kit[400];
	snprintf(kit, sizeof(kit), "%s/kit", st.dir);
	CHECK(echohttp_start(&backend) == 0);
	CHECK(agentproc_write_kit(kit) == 0);
	stack_allow(&st, REAL_REPO, AGENT_DEFAULT_RELEASE, NULL);
	bool real_started = start_real_agent(&real, &backend, kit);
	CHECK(real_started);
	struct test_agent *a[TEST_AGENTS] = {0};
	char nonce[TEST_AGENTS][33];
	for (int i = 0; i < TEST_AGENTS; i++) {
		a[i] = crash_connect(i);
		if (!a[i]) {
			test_fail(__FILE__, __LINE__, "agent %d: no websocket", i);
			continue;
		}
		if (i < STEADY)
			CHECK(agent_up(a[i], false, 5000) == 0, "%d: %s", i, agent_last_reason(a[i]));
		else
			CHECK(agent_register(a[i], nonce[i], 5000) == 0, "%d: %s", i, agent_last_reason(a[i]));
	}
	long last;
	CHECK(wait_resolve("crash-a", 200, 10000, &last), "crash-a: %ld", last);
	CHECK(wait_resolve("crash-b", 200, 10000, &last), "crash-b: %ld", last);
	CHECK(real_started && agentproc_wait_ready(&real, 15000), "(see %s)", real.log_path);
	CHECK(wait_resolve(REAL_APP, 200, 10000, &last), REAL_APP ": %ld", last);
	if (test_case_failed())
		goto out;

	test_case("kill -9 ee-tunneld right after the verifying agents answered their challenge");
	for (int i = STEADY + CHALLENGED; i < TEST_AGENTS; i++)
		CHECK(agent_send_attest_response(a[i], nonce[i], NULL) == 0);
	pid_t pid = st.tunneld_pid;
	CHECK(kill(pid, SIGKILL) == 0);
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d", status);
	st.tunneld_pid = 0;
	for (int i = 0; i < TEST_AGENTS; i++)
		CHECK_INT(agent_wait_closed(a[i], 5000), WS_CLOSE_ABNORMAL);
	long long stale = sql_int("SELECT COUNT(*) FROM app_agents WHERE ws_connected = 1 AND"
	                          " agent_id GLOB 'crash-*'",
	                          NULL, NULL);
	printf("# %lld agents still marked connected while ee-tunneld is down\n", stale);
	CHECK(stale >= STEADY, "the kill left %lld rows connected", stale);

	test_case("ee-tunneld started again: no stale connected row, the apps not allowed");
	char restart_ms[32];
	snprintf(restart_ms, sizeof(restart_ms), "%lld", (long long)time_now_ms());
	if (stack_start_tunneld(&st) != 0) {
		test_fail(__FILE__, __LINE__, "ee-tunneld did not start again (see %s)", st.dir);
		goto out;
	}
	/* The real agent may already be back: only rows older than the start count as stale. */
	CHECK_INT(sql_int("SELECT COUNT(*) FROM app_agents WHERE ws_connected = 1 AND"
	                  " updated_at < CAST(?1 AS INTEGER)",
	                  restart_ms, NULL),
	          0);
	CHECK_INT(sql_int("SELECT COUNT(*) FROM app_agents WHERE ws_connected = 1 AND"
	                  " agent_id GLOB 'crash-[scv]*'",
	                  NULL, NULL),
	          0);
	static const char *const test_apps[] = {"crash-a", "crash-b", "crash-c", "crash-d"};
	CHECK_INT(resolve("crash-a"), 403);
	CHECK_INT(resolve("crash-b"), 403);
	/* ee-tunneld writes an agent once it is attested: these may be unknown (404). */
	long challenged = resolve("crash-c"), verifying = resolve("crash-d");
	CHECK(challenged == 404, "crash-c: %ld", challenged);
	CHECK(verifying == 403 || verifying == 404, "crash-d: %ld", verifying);

	test_case("the agents reconnect and are attested again: resolve 200, the database says "
	          "connected and freshly attested");
	for (int i = 0; i < TEST_AGENTS; i++) {
		if (a[i])
			agent_drop(a[i]);
		a[i] = crash_connect(i);
		CHECK(a[i] && agent_up(a[i], false, 5000) == 0, "%d: %s", i,
		      a[i] ? agent_last_reason(a[i]) : "no websocket");
	}
	CHECK(agentproc_wait_ready(&real, 15000), "the real agent did not come back (see %s)",
	      real.log_path);
	for (int i = 0; i < 4; i++)
		CHECK(wait_resolve(test_apps[i], 200, 10000, &last), "%s: %ld", test_apps[i], last);
	CHECK(wait_resolve(REAL_APP, 200, 10000, &last), REAL_APP ": %ld", last);
	long long fresh = wait_sql("SELECT COUNT(*) FROM app_agents WHERE agent_id GLOB 'crash-*' AND"
	                           " ws_connected = 1 AND attestation_status = 'valid' AND"
	                           " last_attested_at >= CAST(?1 AS INTEGER)",
	                           restart_ms, NULL, TEST_AGENTS + 1, 10000);
	CHECK_INT(fresh, TEST_AGENTS + 1);
	long long agents = -1;
	CHECK_INT(tunneld_health(NULL, &agents), 200);
	CHECK_INT(agents, TEST_AGENTS + 1);

	test_case("the real agent's app serves through Caddy again");
	char url[160], host[80];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo/after-crash", st.port);
	snprintf(host, sizeof(host), "Host: %s.app.localhost", REAL_APP);
	const char *headers[] = {host, NULL};
	struct http_result r;
	http_do("GET", url, headers, NULL, 0, &r);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
out:
	for (int i = 0; i < TEST_AGENTS; i++) {
		if (a[i])
			agent_disconnect(a[i]);
	}
	if (real.pid > 0)
		CHECK_INT(agentproc_stop(&real), 0);
	if (real.log_path[0])
		check_no_sanitizer_report(real.log_path);
	echohttp_stop(&backend);
}

/* ---- storage faults: the database on a file system of its own ---- */

#define BUSY_MS 300
#define DATA_FS_SIZE "6m"

static char data_dir[256];
static bool data_mounted;     /* a tmpfs of our own (root): ENOSPC and remount,ro */
static char filler_path[320];
static bool readonly_on, full_on;
static pid_t limited[40];     /* processes given RLIMIT_FSIZE (the unprivileged full disk) */
static int limited_count;

static void data_dir_cleanup(void)
{
	if (!data_dir[0])
		return;
	if (filler_path[0])
		unlink(filler_path);
	if (data_mounted) {
		if (umount2(data_dir, 0) != 0 && umount2(data_dir, MNT_DETACH) != 0)
			fprintf(stderr, "# cannot unmount %s: %s\n", data_dir, strerror(errno));
		data_mounted = false;
	} else {
		chmod(data_dir, 0700);
	}
	stack_remove_dir(data_dir);
	data_dir[0] = '\0';
}

/* The data directory: as root a tmpfs mounted on it; a plain directory otherwise. */
static int data_dir_make(void)
{
	if (stack_make_dir(data_dir, sizeof(data_dir), "faults-data") != 0)
		return -1;
	atexit(data_dir_cleanup);
	snprintf(filler_path, sizeof(filler_path), "%s/filler", data_dir);
	if (geteuid() == 0) {
		if (mount("tmpfs", data_dir, "tmpfs", MS_NOSUID | MS_NODEV,
		          "size=" DATA_FS_SIZE ",mode=0700") == 0)
			data_mounted = true;
		else
			printf("# root, but mounting a tmpfs failed (%s): chmod and RLIMIT_FSIZE instead\n",
			       strerror(errno));
	}
	snprintf(db_path, sizeof(db_path), "%s/control-plane.db", data_dir);
	return 0;
}

/* Read-only: remount the tmpfs (nothing may hold a file open for writing), or chmod. */
static bool readonly_set(bool on)
{
	if (data_mounted) {
		unsigned long flags = MS_REMOUNT | MS_NOSUID | MS_NODEV | (on ? MS_RDONLY : 0);
		for (int i = 0; i < 100; i++) {
			if (mount("tmpfs", data_dir, "tmpfs", flags, "size=" DATA_FS_SIZE) == 0) {
				readonly_on = on;
				return true;
			}
			if (errno != EBUSY)
				break;
			sleep_ms(20);
		}
		test_fail(__FILE__, __LINE__, "remount %s of %s: %s", on ? "ro" : "rw", data_dir,
		          strerror(errno));
		return false;
	}
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	bool ok = true;
	for (int i = 0; i < 3; i++) {
		char path[600];
		snprintf(path, sizeof(path), "%s%s", db_path, suffixes[i]);
		if (chmod(path, on ? 0444 : 0600) != 0 && errno != ENOENT)
			ok = false;
	}
	if (chmod(data_dir, on ? 0555 : 0700) != 0)
		ok = false;
	CHECK(ok, "chmod in %s: %s", data_dir, strerror(errno));
	readonly_on = on && ok;
	return ok;
}

/* The processes whose writes reach the database: ee-api's master and workers, ee-tunneld. */
static int server_pids(pid_t *out, int max)
{
	int n = 0;
	if (st.api_pid > 0 && n < max) {
		out[n++] = st.api_pid;
		int w = api_workers(st.api_pid, out + n, max - n);
		if (w > 0)
			n += w;
	}
	if (st.tunneld_pid > 0 && n < max)
		out[n++] = st.tunneld_pid;
	return n;
}

/*
 * Disk full: as root the tmpfs filled to the last page; otherwise every
 * server's RLIMIT_FSIZE lowered to 1 byte (SIGXFSZ is ignored, as the test
 * process ignores it before starting them), so that each write fails with
 * EFBIG.
 */
static bool full_set(bool on)
{
	if (data_mounted) {
		if (!on) {
			bool ok = unlink(filler_path) == 0;
			CHECK(ok, "unlink %s: %s", filler_path, strerror(errno));
			full_on = !ok;
			return ok;
		}
		int fd = open(filler_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0) {
			test_fail(__FILE__, __LINE__, "%s: %s", filler_path, strerror(errno));
			return false;
		}
		static char chunk[65536];
		memset(chunk, 0xee, sizeof(chunk));
		size_t size = sizeof(chunk);
		int err = 0;
		while (size >= 1) {
			ssize_t w = write(fd, chunk, size);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && errno != ENOSPC) {
				err = errno;
				break;
			}
			if (w < (ssize_t)size)
				size /= 2; /* the last pages, then the last bytes of a page */
		}
		close(fd);
		if (err) {
			test_fail(__FILE__, __LINE__, "filling %s: %s", data_dir, strerror(err));
			return false;
		}
		full_on = true;
		return true;
	}
	if (on) {
		limited_count = server_pids(limited, 40);
		for (int i = 0; i < limited_count; i++) {
			struct rlimit old, rl;
			if (prlimit(limited[i], RLIMIT_FSIZE, NULL, &old) != 0)
				continue;
			rl.rlim_cur = 1;
			rl.rlim_max = old.rlim_max;
			CHECK(prlimit(limited[i], RLIMIT_FSIZE, &rl, NULL) == 0, "prlimit %d: %s",
			      (int)limited[i], strerror(errno));
		}
	} else {
		for (int i = 0; i < limited_count; i++) {
			struct rlimit old, rl;
			if (prlimit(limited[i], RLIMIT_FSIZE, NULL, &old) != 0)
				continue; /* gone */
			rl.rlim_cur = old.rlim_max;
			rl.rlim_max = old.rlim_max;
			prlimit(limited[i], RLIMIT_FSIZE, &rl, NULL);
		}
		limited_count = 0;
	}
	full_on = on;
	return true;
}

/* What SQLite makes of the full disk: ENOSPC is SQLITE_FULL; EFBIG an I/O error. */
static const char *full_reason(void) { return data_mounted ? "storage_full" : "storage_error"; }

/* Another process holding the write lock (BEGIN EXCLUSIVE) until lock_release. */
struct lock_holder {
	pid_t pid;
	int release_fd;
};

static bool lock_take(struct lock_holder *l)
{
	int ready[2], release[2];
	if (pipe(ready) != 0 || pipe(release) != 0)
		return false;
	fflush(stdout);
	fflush(stderr);
	l->pid = fork();
	if (l->pid == 0) {
		close(ready[0]);
		close(release[1]);
		sqlite3 *h = NULL;
		char ok = 'n';
		if (sqlite3_open_v2(db_path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
			sqlite3_busy_timeout(h, 5000);
			if (sqlite3_exec(h, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK)
				ok = 'y';
		}
		if (write(ready[1], &ok, 1) != 1)
			_exit(3);
		char c;
		while (read(release[0], &c, 1) < 0 && errno == EINTR)
			;
		sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_close(h);
		_exit(ok == 'y' ? 0 : 1);
	}
	close(ready[1]);
	close(release[0]);
	l->release_fd = release[1];
	char ok = 'n';
	bool got = read(ready[0], &ok, 1) == 1 && ok == 'y';
	close(ready[0]);
	CHECK(got, "the lock holder could not take the lock");
	return got;
}

static void lock_release(struct lock_holder *l)
{
	if (l->pid <= 0)
		return;
	close(l->release_fd);
	int status = 0;
	waitpid(l->pid, &status, 0);
	l->pid = 0;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "lock holder status %d", status);
}

/* ee-tunneld's /health sampled from a child process while the parent works the agents. */
struct sampler {
	pid_t pid;
	int stop_fd, result_fd;
};
struct sample_result {
	int samples, failures;
	int64_t max_ms;
};

static void sampler_start(struct sampler *s)
{
	int stop[2], result[2];
	if (pipe(stop) != 0 || pipe(result) != 0) {
		s->pid = -1;
		return;
	}
	fflush(stdout);
	fflush(stderr);
	s->pid = fork();
	if (s->pid == 0) {
		close(stop[1]);
		close(result[0]);
		struct sample_result r = {0, 0, 0};
		struct pollfd p = {stop[0], POLLIN, 0};
		while (poll(&p, 1, 20) == 0) {
			int64_t ms;
			if (tunneld_health(&ms, NULL) != 200)
				r.failures++;
			r.samples++;
			if (ms > r.max_ms)
				r.max_ms = ms;
		}
		if (write(result[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(3);
		_exit(0);
	}
	close(stop[0]);
	close(result[1]);
	s->stop_fd = stop[1];
	s->result_fd = result[0];
}

static struct sample_result sampler_stop(struct sampler *s)
{
	struct sample_result r = {0, 1, -1};
	if (s->pid <= 0)
		return r;
	close(s->stop_fd);
	if (read(s->result_fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		r.failures = -1;
	close(s->result_fd);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
	return r;
}

/* POST /v1/proxy/{app} on ee-tunneld from a child while this process answers as the agent. */
static long proxy_through(struct test_agent *a, const char *app, const char *path)
{
	int fds[2];
	if (pipe(fds) != 0)
		return -1;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		char url[128], body[160];
		snprintf(url, sizeof(url), "http://%s:%d/v1/proxy/%s", HOST, st.control_port, app);
		snprintf(body, sizeof(body), "{\"method\":\"GET\",\"path\":\"%s\"}", path);
		const char *headers[] = {"Content-Type: application/json", NULL};
		struct http_result r;
		http_do("POST", url, headers, body, strlen(body), &r);
		long status = r.status;
		http_result_free(&r);
		if (write(fds[1], &status, sizeof(status)) != (ssize_t)sizeof(status))
			_exit(3);
		_exit(0);
	}
	close(fds[1]);
	int served = agent_serve(a, 10000, NULL, NULL);
	long status = -1;
	if (read(fds[0], &status, sizeof(status)) != (ssize_t)sizeof(status))
		status = -1;
	close(fds[0]);
	waitpid(pid, NULL, 0);
	return served == 0 ? status : -2;
}

/* What the storage cases moved between their two accounts. */
static long long store_a = FUND_CENTS, store_b = FUND_CENTS;

static long transfer_cents(const char *key, long long cents, struct http_result *r)
{
	char body[200];
	snprintf(body, sizeof(body),
	         "{\"from_account\":\"store-a\",\"to_account\":\"store-b\",\"amount_usd\":\"%lld.%02lld\"}",
	         cents / 100, cents % 100);
	money_post("/v1/credits/transfer", TEST_ADMIN_TOKEN, key, body, r);
	if (r->status == 200 && !replayed(r)) {
		store_a -= cents;
		store_b += cents;
	}
	return r->status;
}

static void check_store_balances(void)
{
	CHECK(stack_balance(&st, "store-a", NULL) == store_a, "store-a %lld, want %lld",
	      stack_balance(&st, "store-a", NULL), store_a);
	CHECK(stack_balance(&st, "store-b", NULL) == store_b, "store-b %lld, want %lld",
	      stack_balance(&st, "store-b", NULL), store_b);
}

/* A 503 with the reason and Retry-After. */
static void check_503(const struct http_result *r, const char *reason)
{
	CHECK(r->status == 503 && strcmp(reason_of(r), reason) == 0, "got %ld %s, want 503 %s",
	      r->status, r->body ? r->body : "", reason);
	CHECK(has_retry_after(r), "no Retry-After");
}

/* ---- 4c and 5: the write lock held by another process ---- */

static void test_lock_api(void)
{
	test_case("another process holds the write lock past EE_DB_BUSY_TIMEOUT_MS (%d ms): writes "
	          "503 database_busy, reads served, nothing changed",
	          BUSY_MS);
	char before[65], during[65], after[65];
	CHECK(db_digest(db_path, before) == 0);
	struct lock_holder l = {0, -1};
	if (!lock_take(&l))
		return;
	struct http_result r;
	int64_t t0 = time_monotonic_ms();
	transfer_cents("lock-transfer-1", 123, &r);
	int64_t waited = time_monotonic_ms() - t0;
	check_503(&r, "database_busy");
	http_result_free(&r);
	/* A writer waits the busy timeout once (db_begin_write), then answers. */
	CHECK(waited >= BUSY_MS - 20 && waited <= BUSY_MS + 1500,
	      "answered after %lld ms", (long long)waited);
	printf("# database_busy after %lld ms (EE_DB_BUSY_TIMEOUT_MS=%d)\n", (long long)waited,
	       BUSY_MS);
	stack_request(&st, "POST", "/v1/credits/purchase", TEST_ADMIN_TOKEN,
	              "{\"account_id\":\"store-a\",\"amount_usd\":\"1\"}", &r);
	check_503(&r, "database_busy");
	http_result_free(&r);
	CHECK(stack_balance(&st, "store-a", NULL) == store_a, "a read under the lock failed");
	CHECK(db_digest(db_path, during) == 0);
	CHECK_STR(during, before);
	lock_release(&l);
	CHECK(db_digest(db_path, after) == 0);
	CHECK_STR(after, before);

	test_case("the lock released: the same key commits once, its retry replays");
	CHECK_INT(transfer_cents("lock-transfer-1", 123, &r), 200);
	CHECK(!replayed(&r));
	char first[OP_ANSWER_MAX];
	snprintf(first, sizeof(first), "%s", r.body ? r.body : "");
	http_result_free(&r);
	CHECK_INT(transfer_cents("lock-transfer-1", 123, &r), 200);
	CHECK(replayed(&r) && r.body && strcmp(r.body, first) == 0, "retry: %s", r.body);
	http_result_free(&r);
	check_store_balances();
	check_ledger(db_path);
}

static struct test_agent *store_agent(const char *app, const char *id)
{
	char repo[64];
	snprintf(repo, sizeof(repo), "store/%s", app);
	struct test_agent *a = agent_connect(HOST, st.control_port, app, repo, id, NETWORK);
	CHECK(a && agent_up(a, false, 5000) == 0, "%s: %s", id, a ? agent_last_reason(a) : "no websocket");
	return a;
}

static void test_lock_tunneld(struct test_agent **steady, struct test_agent **late)
{
	test_case("ee-tunneld under the held lock: tunnels served, a new agent attested, a proxied "
	          "request answered");
	long last;
	*steady = store_agent("store-a", "store-agent-a");
	CHECK(wait_resolve("store-a", 200, 10000, &last), "store-a: %ld", last);
	if (test_case_failed())
		return;
	struct lock_holder l = {0, -1};
	if (!lock_take(&l))
		return;
	int64_t locked_at = time_monotonic_ms();
	struct sampler s;
	sampler_start(&s);
	*late = store_agent("store-b", "store-agent-b");
	CHECK_INT(proxy_through(*steady, "store-a", "/under-lock"), 200);
	CHECK_INT(agent_health(*steady, "fail"), 0);
	/* ee-api still reads; ee-tunneld's writes wait in its queue. */
	CHECK_INT(resolve("store-b"), 404);
	CHECK_INT(resolve("store-a"), 200);
	int64_t held = time_monotonic_ms() - locked_at;
	if (held < 2500)
		sleep_ms((int)(2500 - held)); /* several retries of ee-tunneld's queue */
	struct sample_result sr = sampler_stop(&s);
	printf("# ee-tunneld /health under the lock: %d samples, %d failed, slowest %lld ms\n",
	       sr.samples, sr.failures, (long long)sr.max_ms);
	CHECK(sr.samples > 0 && sr.failures == 0, "%d of %d /health failed", sr.failures, sr.samples);
	lock_release(&l);

	/*
	 * ee-tunneld's event loop waits on a held lock for TD_LOOP_BUSY_TIMEOUT_MS
	 * at most per try (store.c retries with backoff), so its /health answers
	 * in well under the busy timeout.
	 */
	test_case("ee-tunneld's event loop did not stall on the lock: /health always under %d ms",
	          BUSY_MS);
	CHECK(sr.max_ms < BUSY_MS, "slowest /health %lld ms while the lock was held",
	      (long long)sr.max_ms);

	test_case("the lock released: ee-tunneld's queued writes land (new agent allowed, health "
	          "fail recorded)");
	CHECK(wait_resolve("store-b", 200, 10000, &last), "store-b: %ld", last);
	CHECK(wait_resolve("store-a", 403, 10000, &last), "store-a: %ld", last);
	CHECK_INT(wait_sql("SELECT COUNT(*) FROM app_agents WHERE agent_id = 'store-agent-b' AND"
	                   " ws_connected = 1 AND attestation_status = 'valid'",
	                   NULL, NULL, 1, 5000),
	          1);
	CHECK_INT(sql_int("SELECT COUNT(*) FROM app_agents WHERE agent_id = 'store-agent-a' AND"
	                  " health_status = 'fail'",
	                  NULL, NULL),
	          1);
}

/* ---- 4b and 5: the disk full ---- */

/* Fills the disk, then transfers until one is refused: the WAL may still have room to reuse. */
static bool fill_until_refused(const char *tag, struct http_result *refused, int *committed)
{
	*committed = 0;
	if (!full_set(true))
		return false;
	for (int i = 0; i < 400; i++) {
		char key[64];
		snprintf(key, sizeof(key), "%s-%d", tag, i);
		transfer_cents(key, 1, refused);
		if (refused->status != 200)
			return true;
		(*committed)++;
		http_result_free(refused);
	}
	test_fail(__FILE__, __LINE__, "400 transfers committed on a full disk");
	memset(refused, 0, sizeof(*refused));
	return false;
}

static void test_full_api(void)
{
	test_case("the disk full (%s): a write is refused with 503 %s, nothing changed, reads served",
	          data_mounted ? "a " DATA_FS_SIZE " tmpfs filled to the last byte"
	                       : "RLIMIT_FSIZE of 1 byte on the servers",
	          full_reason());
	struct http_result r;
	int committed;
	if (!fill_until_refused("full-transfer", &r, &committed)) {
		full_set(false);
		return;
	}
	printf("# %d transfers still fitted in the database's files\n", committed);
	check_503(&r, full_reason());
	http_result_free(&r);
	char before[65], after[65];
	CHECK(db_digest(db_path, before) == 0);
	transfer_cents("full-transfer-refused", 250, &r);
	check_503(&r, full_reason());
	http_result_free(&r);
	stack_request(&st, "POST", "/v1/credits/purchase", TEST_ADMIN_TOKEN,
	              "{\"account_id\":\"store-a\",\"amount_usd\":\"1\"}", &r);
	check_503(&r, full_reason());
	http_result_free(&r);
	CHECK(db_digest(db_path, after) == 0);
	CHECK_STR(after, before);
	check_store_balances();
	check_ledger(db_path);
	check_integrity();

	test_case("space again: the refused key commits once, new writes succeed, nothing corrupted");
	full_set(false);
	CHECK_INT(transfer_cents("full-transfer-refused", 250, &r), 200);
	CHECK(!replayed(&r));
	http_result_free(&r);
	CHECK_INT(transfer_cents("full-transfer-refused", 250, &r), 200);
	CHECK(replayed(&r));
	http_result_free(&r);
	CHECK_INT(transfer_cents("full-transfer-after", 5, &r), 200);
	http_result_free(&r);
	check_store_balances();
	check_pairs();
	check_ledger(db_path);
	check_integrity();
}

static void test_full_tunneld(struct test_agent **steady, struct test_agent **late)
{
	test_case("ee-tunneld with the disk full: a new agent attested, a proxied request answered, "
	          "its writes wait");
	struct http_result r;
	int committed;
	struct test_agent *third = NULL;
	if (!*steady || !*late) {
		test_fail(__FILE__, __LINE__, "the agents of the lock case are not there");
		return;
	}
	if (!fill_until_refused("full-tunneld", &r, &committed)) {
		full_set(false);
		return;
	}
	http_result_free(&r);
	third = store_agent("store-c", "store-agent-c");
	CHECK_INT(proxy_through(*late, "store-b", "/disk-full"), 200);
	CHECK_INT(agent_health(*late, "fail"), 0);
	char disconnected[32], refilled[32];
	snprintf(disconnected, sizeof(disconnected), "%lld", (long long)time_now_ms());
	agent_disconnect(*steady); /* a health_miss (disconnect) event to write */
	*steady = NULL;
	CHECK_INT(tunneld_health(NULL, NULL), 200);
	sleep_ms(1500); /* a few retries */
	CHECK_INT(resolve("store-c"), 404);
	CHECK_INT(resolve("store-b"), 200);

	test_case("space again: ee-tunneld's queued writes land, with the times things happened");
	snprintf(refilled, sizeof(refilled), "%lld", (long long)time_now_ms());
	full_set(false);
	long last;
	CHECK(wait_resolve("store-c", 200, 10000, &last), "store-c: %ld", last);
	CHECK(wait_resolve("store-b", 403, 10000, &last), "store-b: %ld", last);
	CHECK_INT(wait_sql("SELECT COUNT(*) FROM app_agents WHERE agent_id = 'store-agent-a' AND"
	                   " ws_connected = 0",
	                   NULL, NULL, 1, 5000),
	          1);
	/* Recorded when it happened (during the fault), not when it was written. */
	CHECK_INT(wait_sql("SELECT COUNT(*) FROM node_events WHERE node_id = 'store-agent-a' AND"
	                   " event_type = 'health_miss' AND detail = 'disconnect' AND"
	                   " occurred_at >= CAST(?1 AS INTEGER) AND occurred_at < CAST(?2 AS INTEGER)",
	                   disconnected, refilled, 1, 5000),
	          1);
	if (third)
		agent_disconnect(third);
	check_ledger(db_path);
	check_integrity();
}

/* ---- 4a and 5: the database read-only ---- */

static void test_readonly(struct test_agent **late)
{
	test_case("the database read-only (%s), ee-api and ee-tunneld started on it",
	          data_mounted ? "its tmpfs remounted ro" : "chmod a-w");
	if (*late) {
		agent_disconnect(*late);
		*late = NULL;
	}
	CHECK_INT(stack_stop_tunneld(&st), 0);
	/* A crash leaves the -wal and -shm files, which let a read-only connection read. */
	crash_api();
	if (test_case_failed() || !readonly_set(true))
		return;
	CHECK(stack_restart_api(&st) == 0 && wait_api(10000), "ee-api did not start (see %s)", st.dir);

	test_case("read-only: writes 503 database_readonly, reads served");
	struct http_result r;
	transfer_cents("ro-transfer-1", 77, &r);
	check_503(&r, "database_readonly");
	http_result_free(&r);
	stack_request(&st, "POST", "/v1/credits/purchase", TEST_ADMIN_TOKEN,
	              "{\"account_id\":\"store-a\",\"amount_usd\":\"1\"}", &r);
	check_503(&r, "database_readonly");
	http_result_free(&r);
	check_store_balances();
	stack_request(&st, "GET", "/v1/ledger/entries?account=store-a&limit=5", TEST_ADMIN_TOKEN, NULL,
	              &r);
	CHECK_INT(r.status, 200);
	http_result_free(&r);

	/*
	 * ee-tunneld does not take a handle SQLite could only open read-only
	 * (it would stay read-only after the fault, and every handle of the
	 * process with it): it waits, alive, for write access.
	 */
	test_case("ee-tunneld started on the read-only database waits for write access");
	bool tunneld_up = stack_start_tunneld(&st) == 0;
	CHECK(!tunneld_up, "ee-tunneld serves on a database it cannot write");
	CHECK(st.tunneld_pid > 0 && kill(st.tunneld_pid, 0) == 0,
	      "ee-tunneld exited (see %s/ee-tunneld.log)", st.dir);

	test_case("writable again: writes succeed without restarting anything");
	readonly_set(false);
	long status = 0;
	for (int64_t deadline = time_monotonic_ms() + 3000; time_monotonic_ms() < deadline;
	     sleep_ms(100)) {
		status = transfer_cents("ro-transfer-1", 77, &r);
		if (status != 200)
			CHECK(status == 503, "got %ld %s", status, r.body ? r.body : "");
		http_result_free(&r);
		if (status == 200)
			break;
	}
	CHECK(status == 200, "still %ld database_readonly 3 s after the fault was fixed", status);
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", st.control_port);
	bool healthy = false;
	for (int64_t deadline = time_monotonic_ms() + 5000;
	     !healthy && time_monotonic_ms() < deadline; sleep_ms(100)) {
		struct http_result h;
		healthy = http_do("GET", url, NULL, NULL, 0, &h) == 0 && h.status == 200;
		http_result_free(&h);
	}
	CHECK(healthy, "ee-tunneld did not start serving once the database was writable");

	test_case("writable again: an agent attests and its state lands, nothing restarted");
	struct test_agent *a = store_agent("store-d", "store-agent-d");
	long last;
	CHECK(wait_resolve("store-d", 200, 10000, &last), "store-d: %ld", last);
	if (a)
		agent_disconnect(a);
	check_store_balances();
	check_pairs();
	check_ledger(db_path);
	check_integrity();
}

static void storage_cases(void)
{
	test_case("start a stack whose database has a file system of its own, "
	          "EE_DB_BUSY_TIMEOUT_MS=%d", BUSY_MS);
	if (data_dir_make() != 0) {
		test_fail(__FILE__, __LINE__, "cannot make the data directory");
		return;
	}
	printf("# storage faults as %s: %s\n", geteuid() == 0 ? "root" : "a user",
	       data_mounted ? "tmpfs filled and remounted read-only" : "chmod and RLIMIT_FSIZE");
	static char db_env[600];
	snprintf(db_env, sizeof(db_env), "EE_DB_PATH=%s", db_path);
	static const char *env[] = {db_env, "EE_DB_BUSY_TIMEOUT_MS=300", NULL};
	struct stack_options opt = {.env = env};
	if (stack_start(&st, "faults-storage", &opt) != 0) {
		stack_stop(&st);
		data_dir_cleanup();
		return;
	}
	fund("store-a", FUND_CENTS);
	fund("store-b", FUND_CENTS);
	struct test_agent *steady = NULL, *late = NULL;
	if (!test_case_failed()) {
		test_lock_api();
		test_lock_tunneld(&steady, &late);
		test_full_api();
		test_full_tunneld(&steady, &late);
		test_readonly(&late);
	}
	if (steady)
		agent_disconnect(steady);
	if (late)
		agent_disconnect(late);
	test_case("the storage stack stops cleanly, every fault undone");
	if (full_on)
		full_set(false);
	if (readonly_on)
		readonly_set(false);
	CHECK_INT(stack_stop_tunneld(&st), 0);
	stack_stop(&st);
	data_dir_cleanup();
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	/* The servers inherit it: over RLIMIT_FSIZE a write fails with EFBIG instead of killing. */
	signal(SIGXFSZ, SIG_IGN);
	int64_t t0 = time_monotonic_ms();

	test_case("start Caddy, ee-api with 6 workers and ee-tunneld");
	struct stack_options opt = {.workers = 6};
	if (stack_start(&st, "faults-crash", &opt) == 0) {
		snprintf(db_path, sizeof(db_path), "%s", st.db_path);
		test_transfers_under_kill();
		settlement_setup();
		test_usage_under_kill();
		test_settlements_under_kill();
		test_tunneld_kill();
		test_case("the crash stack stops cleanly");
		CHECK_INT(stack_stop_tunneld(&st), 0);
	}
	stack_stop(&st);

	storage_cases();
	printf("# all cases: %lld ms\n", (long long)(time_monotonic_ms() - t0));
	return test_finish();
}
