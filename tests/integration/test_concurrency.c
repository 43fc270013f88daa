/*
 * test_concurrency.c - money moved by many processes at once: FastCGI
 * workers behind Caddy and CGI invocations of the same binary, all on the
 * same accounts.  Afterwards nothing is lost or created, no balance is
 * negative, every 200 is a committed transfer, and no client ever saw
 * "database is locked" or any 5xx.  Also: the same Idempotency-Key sent by
 * many clients at the same moment moves money exactly once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "client.h"
#include "stack.h"

#define ACCOUNTS 4
#define HTTP_CLIENTS 6
#define CGI_CLIENTS 2
#define TRANSFERS_PER_CLIENT 150
#define START_CENTS 100000LL

static struct stack st;
static const char *const names[ACCOUNTS] = {"acct-a", "acct-b", "acct-c", "acct-d"};

struct tally {
	int ok;           /* 200: committed */
	int refused;      /* 400 insufficient_funds */
	int unexpected;   /* anything else */
	long long moved;  /* cents moved by committed transfers */
	char first_unexpected[200];
};

static void client_run(int id, bool use_cgi, int fd)
{
	struct tally t = {0};
	srand((unsigned)(getpid() * 7919 + id));
	for (int i = 0; i < TRANSFERS_PER_CLIENT; i++) {
		int from = rand() % ACCOUNTS, to = (from + 1 + rand() % (ACCOUNTS - 1)) % ACCOUNTS;
		int cents = 1 + rand() % 50000;
		char body[200];
		snprintf(body, sizeof(body),
		         "{\"from_account\":\"%s\",\"to_account\":\"%s\",\"amount_usd\":\"%d.%02d\"}",
		         names[from], names[to], cents / 100, cents % 100);
		struct http_result r;
		if (use_cgi)
			stack_cgi(&st, "POST", "/v1/credits/transfer", TEST_ADMIN_TOKEN, body, &r);
		else
			stack_request(&st, "POST", "/v1/credits/transfer", TEST_ADMIN_TOKEN, body, &r);
		const char *reason = http_reason(&r);
		if (r.status == 200) {
			t.ok++;
			t.moved += cents;
		} else if (r.status == 400 && reason && strcmp(reason, "insufficient_funds") == 0) {
			t.refused++;
		} else {
			if (t.unexpected++ == 0)
				snprintf(t.first_unexpected, sizeof(t.first_unexpected), "%ld %s", r.status,
				         r.body ? r.body : "(no body)");
		}
		http_result_free(&r);
	}
	if (write(fd, &t, sizeof(t)) != (ssize_t)sizeof(t))
		_exit(3);
	_exit(0);
}

static long long count_transfers(void)
{
	return stack_sql_int(&st, "SELECT COUNT(*) FROM ledger_txns WHERE kind = 'transfer'");
}

static void test_mixed_writers(void)
{
	test_case("fund the accounts");
	for (int i = 0; i < ACCOUNTS; i++) {
		char body[128];
		snprintf(body, sizeof(body), "{\"account_id\":\"%s\",\"amount_usd\":\"%lld\"}", names[i],
		         START_CENTS / 100);
		struct http_result r;
		stack_request(&st, "POST", "/v1/credits/purchase", TEST_ADMIN_TOKEN, body, &r);
		CHECK_INT(r.status, 200);
		http_result_free(&r);
	}
	long long before = count_transfers();

	test_case("%d FastCGI clients and %d CGI clients transfer at once", HTTP_CLIENTS, CGI_CLIENTS);
	int fds[2];
	CHECK(pipe(fds) == 0);
	pid_t pids[HTTP_CLIENTS + CGI_CLIENTS];
	for (int i = 0; i < HTTP_CLIENTS + CGI_CLIENTS; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(fds[0]);
			client_run(i, i >= HTTP_CLIENTS, fds[1]);
		}
	}
	close(fds[1]);
	struct tally total = {0};
	for (int i = 0; i < HTTP_CLIENTS + CGI_CLIENTS; i++) {
		struct tally t;
		if (read(fds[0], &t, sizeof(t)) != (ssize_t)sizeof(t)) {
			test_fail(__FILE__, __LINE__, "a client died");
			break;
		}
		total.ok += t.ok;
		total.refused += t.refused;
		total.unexpected += t.unexpected;
		if (t.unexpected && !total.first_unexpected[0])
			memcpy(total.first_unexpected, t.first_unexpected, sizeof(t.first_unexpected));
	}
	close(fds[0]);
	for (int i = 0; i < HTTP_CLIENTS + CGI_CLIENTS; i++)
		waitpid(pids[i], NULL, 0);
	CHECK_INT(total.unexpected, 0);
	if (total.unexpected)
		test_fail(__FILE__, __LINE__, "first unexpected answer: %s", total.first_unexpected);
	CHECK_INT(total.ok + total.refused, (HTTP_CLIENTS + CGI_CLIENTS) * TRANSFERS_PER_CLIENT);
	CHECK(total.ok > 0);
	printf("# %d committed, %d refused for insufficient funds\n", total.ok, total.refused);

	test_case("every 200 is exactly one committed transfer");
	CHECK_INT(count_transfers() - before, total.ok);

	test_case("transfer ids from all the processes: 32 hex digits, distinct, in commit order by time");
	CHECK_INT(stack_sql_int(&st, "SELECT COUNT(*) FROM ledger_txns WHERE length(txn_id) != 32"
	                                " OR txn_id GLOB '*[^0-9a-f]*'"),
	          0);
	CHECK_INT(stack_sql_int(&st, "SELECT COUNT(DISTINCT substr(txn_id, 17)) FROM ledger_txns"),
	          stack_sql_int(&st, "SELECT COUNT(*) FROM ledger_txns"));
	/* Each id is made inside its write transaction, so commit (rowid) order is time order. */
	CHECK_INT(stack_sql_int(&st, "SELECT COUNT(*) FROM ledger_txns a JOIN ledger_txns b"
	                                " ON b.rowid = (SELECT MIN(rowid) FROM ledger_txns WHERE rowid > a.rowid)"
	                                " WHERE substr(b.txn_id, 1, 12) < substr(a.txn_id, 1, 12)"),
	          0);

	test_case("nothing lost, nothing created, nothing negative");
	long long sum = 0;
	for (int i = 0; i < ACCOUNTS; i++) {
		long long b = stack_balance(&st, names[i], NULL);
		CHECK(b >= 0, "%s has %lld", names[i], b);
		sum += b;
	}
	CHECK_INT(sum, START_CENTS * ACCOUNTS);
	check_ledger(st.db_path);
}

#define SAME_KEY_CLIENTS 8

static void test_same_key_at_once(void)
{
	test_case("%d clients send the same Idempotency-Key at the same moment: one transfer",
	          SAME_KEY_CLIENTS);
	long long a = stack_balance(&st, "acct-a", NULL), e = stack_balance(&st, "acct-e", NULL);
	const char *body = "{\"from_account\":\"acct-a\",\"to_account\":\"acct-e\",\"amount_usd\":\"3.21\"}";
	int fds[2];
	CHECK(pipe(fds) == 0);
	int go[2];
	CHECK(pipe(go) == 0);
	pid_t pids[SAME_KEY_CLIENTS];
	for (int i = 0; i < SAME_KEY_CLIENTS; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(fds[0]);
			close(go[1]);
			char c;
			if (read(go[0], &c, 1) < 0)
				_exit(4); /* released together when the parent closes the pipe */
			const char *headers[] = {"Authorization: Bearer " TEST_ADMIN_TOKEN,
			                         "Content-Type: application/json",
			                         "Idempotency-Key: concurrent-key-1", NULL};
			struct http_result r;
			stack_request_ex(&st, "POST", "/v1/credits/transfer", headers, body, strlen(body), &r);
			char line[512];
			snprintf(line, sizeof(line), "%ld %.400s", r.status, r.body ? r.body : "");
			http_result_free(&r);
			if (write(fds[1], line, sizeof(line)) != (ssize_t)sizeof(line))
				_exit(3);
			_exit(0);
		}
	}
	close(fds[1]);
	close(go[0]);
	close(go[1]);
	char first[512] = "";
	for (int i = 0; i < SAME_KEY_CLIENTS; i++) {
		char line[512];
		if (read(fds[0], line, sizeof(line)) != (ssize_t)sizeof(line)) {
			test_fail(__FILE__, __LINE__, "a client died");
			break;
		}
		CHECK(strncmp(line, "200 ", 4) == 0, "got %s", line);
		if (!first[0])
			memcpy(first, line, sizeof(line));
		else
			CHECK_STR(line, first);
	}
	close(fds[0]);
	for (int i = 0; i < SAME_KEY_CLIENTS; i++)
		waitpid(pids[i], NULL, 0);
	CHECK_INT(stack_balance(&st, "acct-a", NULL), a - 321);
	CHECK_INT(stack_balance(&st, "acct-e", NULL), e + 321);
	check_ledger(st.db_path);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_case("start Caddy and ee-api with 4 workers");
	struct stack_options opt = {.workers = 4};
	if (stack_start(&st, "concurrency", &opt) != 0)
		return test_finish();
	test_mixed_writers();
	test_same_key_at_once();
	test_case("stop cleanly");
	stack_stop(&st);
	return test_finish();
}
