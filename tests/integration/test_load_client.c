/*
 * test_load_client.c - the benchmarks' FastCGI load client (bench/fcgi_load)
 * against a real ee-api, in both of its engines: what it counts must match
 * what ee-api did, or the figures in docs/PERFORMANCE.md would not mean what
 * they say.  Every purchase it reports as answered (answered_200) is a row
 * in the ledger and no other purchase is; kept connections, several
 * processes and threads, non-200 answers and a dead socket are counted as
 * documented in its header, and the result line names the engine that ran.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "check.h"
#include "stack.h"

static struct stack st;
static char load_path[512];

struct load_result {
	bool ran;       /* the line was printed */
	int exit_code;
	long long requests, ok, non_200, conn_errors, answered_200;
	char engine[16];
};

static long long field(const char *line, const char *name)
{
	char key[40];
	snprintf(key, sizeof(key), "%s ", name);
	const char *at = strstr(line, key);
	return at ? strtoll(at + strlen(key), NULL, 10) : -1;
}

/* Runs fcgi_load on the stack's socket with ARGS (already shell-quoted where needed). */
static struct load_result run_load(const char *address, const char *args)
{
	struct load_result r = {0};
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "'%s' -a '%s' %s", load_path, address, args);
	FILE *p = popen(cmd, "r");
	if (!p) {
		CHECK(false, "cannot run %s", cmd);
		return r;
	}
	char line[1024] = "";
	char got[1024];
	while (fgets(got, sizeof(got), p))
		if (strncmp(got, "requests ", 9) == 0)
			snprintf(line, sizeof(line), "%s", got);
	int status = pclose(p);
	r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	r.ran = line[0] != '\0';
	CHECK(r.ran, "fcgi_load printed no result line: %s", cmd);
	r.requests = field(line, "requests");
	r.ok = field(line, "ok");
	r.non_200 = field(line, "non_200");
	r.conn_errors = field(line, "conn_errors");
	r.answered_200 = field(line, "answered_200");
	const char *engine = strstr(line, "engine ");
	if (engine)
		sscanf(engine + 7, "%15s", r.engine);
	return r;
}

static long long purchases(void)
{
	return stack_sql_int(&st, "SELECT COUNT(*) FROM ledger_txns WHERE kind = 'purchase'");
}

#define PURCHASE \
	"-m POST -p /v1/credits/purchase -T " TEST_ADMIN_TOKEN \
	" -b '{\"account_id\":\"load-a\",\"amount_usd\":\"0.01\"}'"

/* The engine flag and the name the result line must give for it. */
struct engine {
	const char *flag, *name;
};

static void test_purchases(const struct engine *e, const char *shape)
{
	test_case("%s, %s: every purchase answered is a ledger row, and only those", e->name, shape);
	long long before = purchases();
	char args[512];
	snprintf(args, sizeof(args), "%s -d 1 %s " PURCHASE, e->flag, shape);
	struct load_result r = run_load(st.socket_path, args);
	long long after = purchases();
	CHECK_INT(r.exit_code, 0);
	CHECK_STR(r.engine, e->name);
	CHECK(r.ok > 0, "no purchase answered");
	CHECK_INT(r.non_200, 0);
	CHECK_INT(r.conn_errors, 0);
	CHECK(r.answered_200 >= r.ok, "answered_200 %lld < ok %lld", r.answered_200, r.ok);
	CHECK_INT(after - before, r.answered_200);
	check_ledger(st.db_path);
}

static void test_not_found(const struct engine *e)
{
	test_case("%s: a 404 counts as non_200 and the client exits 1", e->name);
	char args[256];
	snprintf(args, sizeof(args), "%s -d 0.5 -c 4 -p /v1/resolve/no-such-app", e->flag);
	struct load_result r = run_load(st.socket_path, args);
	CHECK_INT(r.exit_code, 1);
	CHECK(r.non_200 > 0 && r.ok == 0, "non_200 %lld ok %lld", r.non_200, r.ok);
	CHECK_INT(r.conn_errors, 0);
}

static void test_dead_socket(const struct engine *e)
{
	test_case("%s: nothing listening counts as conn_errors and the client exits 1", e->name);
	char dead[400], args[256];
	snprintf(dead, sizeof(dead), "%s/nobody.sock", st.dir);
	snprintf(args, sizeof(args), "%s -d 0.3 -c 2 -p /health", e->flag);
	struct load_result r = run_load(dead, args);
	CHECK_INT(r.exit_code, 1);
	CHECK(r.conn_errors > 0 && r.requests == 0, "conn_errors %lld requests %lld", r.conn_errors,
	      r.requests);
}

int main(void)
{
	snprintf(load_path, sizeof(load_path), "%s/../bench/fcgi_load", stack_bin_dir());
	test_case("start ee-api alone on a unix socket");
	struct stack_options opt = {.no_caddy = true, .no_tunneld = true};
	if (stack_start(&st, "load_client", &opt) != 0)
		return test_finish();
	/* io_uring where the kernel allows it; the epoll loop otherwise, which the line then names. */
	struct load_result probe = run_load(st.socket_path, "-d 0.2 -c 1 -p /health");
	printf("# default engine here: %s\n", probe.engine);
	struct engine engines[2] = {{"", probe.engine}, {"-e", "epoll"}};
	for (int i = 0; i < 2; i++) {
		const struct engine *e = &engines[i];
		test_purchases(e, "-c 16");
		test_purchases(e, "-c 4 -k");
		test_purchases(e, "-c 8 -P 2 -t 2");
		test_not_found(e);
		test_dead_socket(e);
	}
	test_case("stop cleanly");
	stack_stop(&st);
	return test_finish();
}
