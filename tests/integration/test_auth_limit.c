/*
 * test_auth_limit.c - token guessing is limited per client: after
 * EE_AUTH_FAIL_LIMIT wrong tokens within EE_AUTH_FAIL_WINDOW_SEC, a
 * client's requests that need a token get 429 for the rest of the window,
 * whichever ee-api worker (or CGI process) answers them.  Other clients,
 * requests without a token and public endpoints are not affected, and the
 * client is told when to come back.  Clients are told apart through
 * X-Forwarded-For, which Caddy keeps and ee-api believes from loopback
 * (EE_TRUSTED_PROXIES' default) and from nowhere else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "client.h"
#include "stack.h"

#define LIMIT 5
#define WINDOW_SEC 5
#define RACERS 6
#define RACER_TRIES 4

static struct stack st;
static enum stack_api_mode api_mode;

/* One request as client `who` (an X-Forwarded-For address, or NULL for the peer itself). */
static void request_as(const char *who, const char *method, const char *path, const char *token,
                       const char *body, struct http_result *r)
{
	char auth[256], xff[128];
	const char *headers[4] = {NULL, NULL, NULL, NULL};
	int n = 0;
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		headers[n++] = auth;
	}
	if (who) {
		snprintf(xff, sizeof(xff), "X-Forwarded-For: %s", who);
		headers[n++] = xff;
	}
	if (body)
		headers[n++] = "Content-Type: application/json";
	stack_request_ex(&st, method, path, headers, body, body ? strlen(body) : 0, r);
}

static long status_as(const char *who, const char *token)
{
	struct http_result r;
	request_as(who, "GET", "/v1/ledger/entries", token, NULL, &r);
	long status = r.status;
	http_result_free(&r);
	return status;
}

static void guess(const char *who, int times)
{
	for (int i = 0; i < times; i++) {
		char wrong[64];
		snprintf(wrong, sizeof(wrong), "wrong-token-%d-guessed-by-a-client", i);
		CHECK_INT(status_as(who, wrong), 401);
	}
}

static void test_blocks_after_limit(void)
{
	const char *guesser = "203.0.113.5";
	char before[65], after[65];
	CHECK(db_digest(st.db_path, before) == 0);
	test_case("%d wrong tokens: each 401 unauthorized", LIMIT);
	guess(guesser, LIMIT);

	test_case("then the right token from the same client: 429 too_many_auth_failures, "
	          "Retry-After within the window");
	struct http_result r;
	request_as(guesser, "GET", "/v1/ledger/entries", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 429);
	CHECK_STR(http_reason(&r), "too_many_auth_failures");
	char retry[32] = "";
	CHECK(http_header(&r, "Retry-After", retry, sizeof(retry)));
	int seconds = atoi(retry);
	CHECK(seconds >= 1 && seconds <= WINDOW_SEC, "Retry-After: %s", retry);
	http_result_free(&r);

	test_case("a blocked client's wrong tokens and node tokens get 429 too");
	CHECK_INT(status_as(guesser, "another-wrong-token-of-the-guesser"), 429);
	request_as(guesser, "POST", "/v1/nodes/register", "a-node-token-guess",
	           "{\"node_id\":\"node-x\",\"price_per_vcpu_hour_usd\":\"0.01\"}", &r);
	CHECK_INT(r.status, 429);
	http_result_free(&r);
	test_case("the 401s and 429s so far left the database unchanged");
	CHECK(db_digest(st.db_path, after) == 0);
	CHECK_STR(after, before);

	test_case("a blocked client is still served the public endpoints");
	request_as(guesser, "GET", "/health", NULL, NULL, &r);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
	request_as(guesser, "GET", "/v1/resolve/no-such-app", NULL, NULL, &r);
	CHECK_INT(r.status, 404);
	http_result_free(&r);

	test_case("another client is not affected: its right token works");
	CHECK_INT(status_as("198.51.100.7", TEST_ADMIN_TOKEN), 200);

	test_case("the same /64 is one IPv6 client; another /64 is another");
	guess("2001:db8:1:2::10", LIMIT);
	CHECK_INT(status_as("2001:db8:1:2:ffff::1", TEST_ADMIN_TOKEN), 429);
	CHECK_INT(status_as("2001:db8:1:3::10", TEST_ADMIN_TOKEN), 200);

	test_case("after the window the client's right token works again");
	sleep(WINDOW_SEC + 1);
	CHECK_INT(status_as(guesser, TEST_ADMIN_TOKEN), 200);
	CHECK_INT(status_as("2001:db8:1:2::10", TEST_ADMIN_TOKEN), 200);
}

static void test_what_counts(void)
{
	const char *client = "192.0.2.44";
	test_case("requests without a token are not guesses: %d of them, then the right token works",
	          LIMIT * 3);
	for (int i = 0; i < LIMIT * 3; i++)
		CHECK_INT(status_as(client, NULL), 401);
	CHECK_INT(status_as(client, TEST_ADMIN_TOKEN), 200);

	test_case("right tokens do not count: %d of them, then %d wrong ones are still 401",
	          LIMIT * 3, LIMIT - 1);
	for (int i = 0; i < LIMIT * 3; i++)
		CHECK_INT(status_as(client, TEST_ADMIN_TOKEN), 200);
	guess(client, LIMIT - 1);
	CHECK_INT(status_as(client, TEST_ADMIN_TOKEN), 200);

	test_case("a wrong node token counts like any other");
	const char *nodes_client = "192.0.2.45";
	char before[65], after[65];
	CHECK(db_digest(st.db_path, before) == 0);
	guess(nodes_client, LIMIT - 1);
	struct http_result r;
	request_as(nodes_client, "POST", "/v1/nodes/register", "not-the-node-token",
	           "{\"node_id\":\"node-y\",\"price_per_vcpu_hour_usd\":\"0.01\"}", &r);
	CHECK_INT(r.status, 401);
	http_result_free(&r);
	CHECK_INT(status_as(nodes_client, TEST_ADMIN_TOKEN), 429);
	CHECK(db_digest(st.db_path, after) == 0);
	CHECK_STR(after, before);
}

static void test_forwarded_for_spoofing(void)
{
	test_case("X-Forwarded-For from a trusted peer: the rightmost address it does not trust "
	          "is the client");
	/* A client writing its own X-Forwarded-For cannot choose another's slot: the proxy appends. */
	guess("192.0.2.60, 192.0.2.61", LIMIT);
	CHECK_INT(status_as("198.51.100.99, 192.0.2.61", TEST_ADMIN_TOKEN), 429);
	CHECK_INT(status_as("192.0.2.60", TEST_ADMIN_TOKEN), 200);

	test_case("an X-Forwarded-For entry that is not an address ends the walk at the peer");
	CHECK_INT(status_as("not-an-address", TEST_ADMIN_TOKEN), 200);
}

/* Every racer sends RACER_TRIES wrong tokens at once; each reports its 401s on fd. */
static void racer(int fd)
{
	int unauthorized = 0;
	for (int i = 0; i < RACER_TRIES; i++) {
		long status = status_as("203.0.113.77", "a-racing-guess-of-the-admin-token");
		if (status == 401)
			unauthorized++;
		else if (status != 429)
			unauthorized += 1000;
	}
	(void)!write(fd, &unauthorized, sizeof(unauthorized));
	_exit(0);
}

static void test_concurrent_guesses(void)
{
	/* A stack of its own, with a window no slow run (CGI under ASan) outlasts. */
	struct stack racing;
	static const char *const env[] = {"EE_AUTH_FAIL_LIMIT=5", "EE_AUTH_FAIL_WINDOW_SEC=600",
	                                  NULL};
	struct stack_options opt = {.api_mode = api_mode, .env = env, .no_tunneld = true};
	test_case("%d clients guess at once from one address: counted across the workers, "
	          "the rest 429, the database unchanged",
	          RACERS);
	if (stack_start(&racing, "auth-limit-racing", &opt) != 0) {
		stack_stop(&racing);
		CHECK(0, "the stack did not start");
		return;
	}
	struct stack saved = st;
	st = racing;
	char before[65], after[65];
	CHECK(db_digest(st.db_path, before) == 0);
	int fds[2];
	pid_t pids[RACERS];
	CHECK(pipe(fds) == 0);
	for (int i = 0; i < RACERS; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(fds[0]);
			racer(fds[1]);
		}
	}
	close(fds[1]);
	int total = 0, part;
	while (read(fds[0], &part, sizeof(part)) == (ssize_t)sizeof(part))
		total += part;
	close(fds[0]);
	for (int i = 0; i < RACERS; i++)
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
	/* A request checks the count before it adds to it: racers in flight may each pass once. */
	CHECK(total >= LIMIT && total <= LIMIT + RACERS - 1, "%d answered 401", total);
	CHECK_INT(status_as("203.0.113.77", TEST_ADMIN_TOKEN), 429);
	CHECK(db_digest(st.db_path, after) == 0);
	CHECK_STR(after, before);
	racing = st;
	st = saved;
	stack_stop(&racing);
}

static void test_untrusted_peer(void)
{
	struct stack untrusting;
	static const char *const env[] = {"EE_AUTH_FAIL_LIMIT=5", "EE_AUTH_FAIL_WINDOW_SEC=60",
	                                  "EE_TRUSTED_PROXIES=192.0.2.255/32", NULL};
	struct stack_options opt = {.api_mode = api_mode, .env = env, .no_tunneld = true};
	test_case("EE_TRUSTED_PROXIES without loopback: X-Forwarded-For from the peer is ignored, "
	          "so it cannot escape a block");
	if (stack_start(&untrusting, "auth-limit-untrusting", &opt) != 0) {
		stack_stop(&untrusting);
		CHECK(0, "the stack did not start");
		return;
	}
	struct stack saved = st;
	st = untrusting;
	guess("192.0.2.1", LIMIT);
	CHECK_INT(status_as("192.0.2.2", TEST_ADMIN_TOKEN), 429);
	CHECK_INT(status_as(NULL, TEST_ADMIN_TOKEN), 429);
	untrusting = st;
	st = saved;
	stack_stop(&untrusting);
}

int main(void)
{
	static const char *const env[] = {"EE_AUTH_FAIL_LIMIT=5", "EE_AUTH_FAIL_WINDOW_SEC=5", NULL};
	_Static_assert(LIMIT == 5 && WINDOW_SEC == 5, "the settings above");
	api_mode = stack_api_mode_from_env();
	struct stack_options opt = {.api_mode = api_mode, .env = env, .no_tunneld = true};
	test_case("start %s and ee-api with EE_AUTH_FAIL_LIMIT=%d, EE_AUTH_FAIL_WINDOW_SEC=%d",
	          stack_front_name(api_mode), LIMIT, WINDOW_SEC);
	if (stack_start(&st, "auth-limit", &opt) != 0) {
		stack_stop(&st);
		return test_finish();
	}
	test_blocks_after_limit();
	test_what_counts();
	test_forwarded_for_spoofing();
	test_concurrent_guesses();
	test_untrusted_peer();
	test_case("stop cleanly");
	stack_stop(&st);
	return test_finish();
}
