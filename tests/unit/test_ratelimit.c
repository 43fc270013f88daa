/*
 * test_ratelimit.c - the pieces the per-client limits are made of: the
 * client's address through trusted proxies (lib/netaddr.c), the shared
 * table of counts (lib/ratelimit.c) and the limit on repeated log lines
 * (ee_log_limited, lib/log.c).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "netaddr.h"
#include "ratelimit.h"

static char tmp_dir[256];

static const char *client_of(const char *trusted, const char *peer, const char *xff)
{
	static char out[NETADDR_TEXT_MAX];
	struct netaddr_trust t;
	struct ee_error err;
	if (netaddr_trust_parse(trusted, &t, &err) != 0)
		return "(bad trust list)";
	netaddr_client(&t, peer, xff, out, sizeof(out));
	return out;
}

static void test_netaddr(void)
{
	struct netaddr_trust t;
	struct ee_error err;
	test_case("trust lists: addresses and prefixes, IPv4 and IPv6, commas or spaces");
	CHECK_INT(netaddr_trust_parse("127.0.0.1/32,::1/128 10.0.0.0/8, 2001:db8::/32", &t, &err), 0);
	CHECK_INT(t.count, 4);
	CHECK(netaddr_trusted(&t, "10.200.3.4"));
	CHECK(!netaddr_trusted(&t, "11.0.0.1"));
	CHECK(netaddr_trusted(&t, "2001:db8:ffff::1"));
	CHECK(!netaddr_trusted(&t, "2001:db9::1"));
	CHECK(netaddr_trusted(&t, "::1"));
	CHECK(!netaddr_trusted(&t, "not an address"));
	CHECK_INT(netaddr_trust_parse("", &t, &err), 0);
	CHECK_INT(t.count, 0);
	CHECK_INT(netaddr_trust_parse("192.0.2.1", &t, &err), 0);
	CHECK(netaddr_trusted(&t, "192.0.2.1") && !netaddr_trusted(&t, "192.0.2.2"));

	test_case("trust lists: a bad entry is invalid_config:EE_TRUSTED_PROXIES");
	const char *bad[] = {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/-1",
	                     "example.com", "10.0.0.0/8/8", "300.1.1.1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(netaddr_trust_parse(bad[i], &t, &err), -1);
		CHECK_STR(err.reason, "invalid_config:EE_TRUSTED_PROXIES");
	}
	char many[4096] = "";
	for (int i = 0; i <= NETADDR_MAX_TRUSTED; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "10.0.%d.0/24,", i);
	CHECK_INT(netaddr_trust_parse(many, &t, &err), -1);

	test_case("the client: the peer unless trusted; then the rightmost untrusted hop");
	const char *lo = "127.0.0.1/32,::1/128,198.51.100.0/24";
	CHECK_STR(client_of(lo, "203.0.113.1", "192.0.2.9"), "203.0.113.1");
	CHECK_STR(client_of(lo, "127.0.0.1", NULL), "127.0.0.1");
	CHECK_STR(client_of(lo, "127.0.0.1", "192.0.2.9"), "192.0.2.9");
	CHECK_STR(client_of(lo, "127.0.0.1", "192.0.2.7, 192.0.2.9"), "192.0.2.9");
	CHECK_STR(client_of(lo, "127.0.0.1", "192.0.2.9, 198.51.100.4"), "192.0.2.9");
	CHECK_STR(client_of(lo, "127.0.0.1", " 192.0.2.9 ,198.51.100.4 ,127.0.0.1 "), "192.0.2.9");
	CHECK_STR(client_of(lo, "127.0.0.1", "2001:db8::5"), "2001:db8::5");

	test_case("the client: all hops trusted gives the leftmost; a non-address ends the walk");
	CHECK_STR(client_of(lo, "127.0.0.1", "198.51.100.7, 198.51.100.4"), "198.51.100.7");
	CHECK_STR(client_of(lo, "127.0.0.1", "192.0.2.9, junk, 198.51.100.4"), "198.51.100.4");
	CHECK_STR(client_of(lo, "127.0.0.1", "junk"), "127.0.0.1");
	CHECK_STR(client_of(lo, "127.0.0.1", ""), "127.0.0.1");
	CHECK_STR(client_of(lo, "127.0.0.1", ",,,"), "127.0.0.1");
	CHECK_STR(client_of(lo, "127.0.0.1", "192.0.2.9:443"), "127.0.0.1");
	char long_hop[200];
	memset(long_hop, '1', sizeof(long_hop) - 1);
	long_hop[sizeof(long_hop) - 1] = '\0';
	CHECK_STR(client_of(lo, "127.0.0.1", long_hop), "127.0.0.1");

	test_case("the client: a chain of more than 16 trusted hops is not walked to its end");
	char chain[2048] = "192.0.2.9";
	for (int i = 0; i < 20; i++)
		strcat(chain, ", 198.51.100.1");
	CHECK_STR(client_of(lo, "127.0.0.1", chain), "198.51.100.1");
}

static void test_table(void)
{
	char path[400];
	struct ee_error err;
	snprintf(path, sizeof(path), "%s/table", tmp_dir);
	test_case("counts in a window; the limit reached; the window ends");
	struct ratelimit *rl = ratelimit_open(path, &err);
	CHECK(rl != NULL, "%s", err.reason);
	if (!rl)
		return;
	int retry = 0;
	for (int i = 1; i <= 3; i++) {
		CHECK(!ratelimit_exceeded(rl, "192.0.2.1", 1000, 3, 60, &retry));
		CHECK_INT(ratelimit_hit(rl, "192.0.2.1", 1000 + i, 60), i);
	}
	CHECK(ratelimit_exceeded(rl, "192.0.2.1", 1010, 3, 60, &retry));
	CHECK_INT(retry, 51); /* the window began at the first hit, second 1001 */
	CHECK(!ratelimit_exceeded(rl, "192.0.2.2", 1010, 3, 60, &retry));
	CHECK(!ratelimit_exceeded(rl, "192.0.2.1", 1061, 3, 60, &retry));
	CHECK_INT(ratelimit_hit(rl, "192.0.2.1", 1061, 60), 1);

	test_case("a clock stepped back before a window's start ends the window");
	CHECK_INT(ratelimit_hit(rl, "192.0.2.1", 1062, 60), 2);
	CHECK(!ratelimit_exceeded(rl, "192.0.2.1", 900, 2, 60, &retry));

	test_case("IPv6 addresses of one /64 share a count; a name that is not an address counts too");
	CHECK_INT(ratelimit_hit(rl, "2001:db8:1:2::1", 2000, 60), 1);
	CHECK_INT(ratelimit_hit(rl, "2001:db8:1:2:aaaa::9", 2000, 60), 2);
	CHECK_INT(ratelimit_hit(rl, "2001:db8:1:3::1", 2000, 60), 1);
	CHECK_INT(ratelimit_hit(rl, "unix-socket-peer", 2000, 60), 1);
	CHECK_INT(ratelimit_hit(rl, "unix-socket-peer", 2000, 60), 2);

	test_case("the count saturates instead of wrapping");
	for (int i = 0; i < RATELIMIT_MAX_COUNT + 10; i++)
		ratelimit_hit(rl, "192.0.2.77", 3000, 60);
	CHECK(ratelimit_exceeded(rl, "192.0.2.77", 3001, RATELIMIT_MAX_COUNT, 60, &retry));

	test_case("processes mapping the same file share the counts: 4 children, 250 hits each");
	pid_t kids[4];
	for (int k = 0; k < 4; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			struct ee_error e2;
			struct ratelimit *own = ratelimit_open(path, &e2);
			for (int i = 0; own && i < 250; i++)
				ratelimit_hit(own, "203.0.113.50", 4000, 60);
			ratelimit_close(own);
			_exit(own ? 0 : 1);
		}
	}
	for (int k = 0; k < 4; k++) {
		int status = 1;
		if (kids[k] > 0)
			waitpid(kids[k], &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	CHECK_INT(ratelimit_hit(rl, "203.0.113.50", 4000, 60), 1001);
	CHECK(RATELIMIT_MAX_COUNT > 1001);
	ratelimit_close(rl);

	test_case("reopened, the table keeps its counts; a file of another size starts afresh");
	rl = ratelimit_open(path, &err);
	CHECK(rl && ratelimit_exceeded(rl, "203.0.113.50", 4001, 1001, 60, &retry));
	ratelimit_close(rl);
	int fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && write(fd, "garbage", 7) == 7);
	if (fd >= 0)
		close(fd);
	rl = ratelimit_open(path, &err);
	CHECK(rl && !ratelimit_exceeded(rl, "203.0.113.50", 4001, 1, 60, &retry));
	ratelimit_close(rl);

	test_case("many addresses: each still counted (eviction only of the oldest windows)");
	rl = ratelimit_open(NULL, &err);
	CHECK(rl != NULL);
	int wrong = 0;
	for (int i = 0; rl && i < 20000; i++) {
		char a[32];
		snprintf(a, sizeof(a), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		if (ratelimit_hit(rl, a, 5000 + i / 1000, 600) != 1)
			wrong++;
	}
	CHECK_INT(wrong, 0);
	/* The latest addresses are there; the table holds 16384 slots. */
	CHECK(rl && ratelimit_exceeded(rl, "10.0.78.31", 5020, 1, 600, &retry));
	ratelimit_close(rl);

	test_case("a table that cannot be created: ratelimit_unavailable");
	CHECK(ratelimit_open("/nonexistent-dir/table", &err) == NULL);
	CHECK(strncmp(err.reason, "ratelimit_unavailable", 21) == 0, "%s", err.reason);
}

static void test_log_limit(void)
{
	test_case("ee_log_limited: a burst a minute, the rest counted into the next line written");
	char path[400];
	snprintf(path, sizeof(path), "%s/stderr.log", tmp_dir);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(saved >= 0 && fd >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	ee_log_init("test", EE_LOG_INFO);
	struct log_limit limit = {.burst = 3};
	for (int i = 0; i < 100; i++)
		ee_log_limited(&limit, EE_LOG_WARN, "flood line %d", i);
	struct log_limit debug_limit = {.burst = 3};
	ee_log_limited(&debug_limit, EE_LOG_DEBUG, "below the level");
	/* The next minute: the first line tells how many were not logged. */
	limit.minute_start_ms -= 60000;
	ee_log_limited(&limit, EE_LOG_WARN, "after the minute");
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	FILE *f = fopen(path, "r");
	char line[512];
	int lines = 0;
	bool counted = false, below = false;
	while (f && fgets(line, sizeof(line), f)) {
		lines++;
		if (strstr(line, "after the minute (and 97 more like this, not logged)"))
			counted = true;
		if (strstr(line, "below the level"))
			below = true;
	}
	if (f)
		fclose(f);
	CHECK_INT(lines, 4);
	CHECK(counted, "the count of lines not logged is missing");
	CHECK(!below);
	CHECK_INT(debug_limit.written, 0);
}

int main(void)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "%s/ee-test-ratelimit-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmp_dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_netaddr();
	test_table();
	test_log_limit();
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp_dir);
	return test_finish();
}
