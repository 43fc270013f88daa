/*
 * test_dashboard.c - a real browser (Debian's headless chromium) loads
 * /dashboard through real Caddy and ee-api while the database holds hostile
 * app names, repositories, release tags, node ids and account ids, and no
 * script may run: each hostile value must show as text in its own cell, no
 * payload's marker may appear, and the loopback listener the payloads call
 * home to must hear nothing.  The escaping and the Content-Security-Policy
 * are each tested on their own, and control pages prove the detection works.
 *
 * Caddy runs tests/integration/dashboard.Caddyfile: the usual site, plus a
 * loopback site that adds the admin token for the browser.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "client.h"
#include "ledger.h"
#include "nodes.h"
#include "registry.h"
#include "stack.h"
#include "timeutil.h"
#include "util.h"

#define CHROMIUM "/usr/bin/chromium"
#define CHROMIUM_TIMEOUT "60" /* seconds, enforced by timeout(1) */
#define BROWSER_DEADLINE 75   /* seconds before the test kills the whole group */
#define HOSTILE_MAX 512

/*
 * What every payload does if it ever runs.  "xss" + "ran" is joined only at
 * run time, so MARKER appears in the page's DOM (title, attribute, anything)
 * only if a script wrote it; the page's text holds just the pieces.
 */
#define MARKER "xssran"
#define JS "document.title='xss'+'ran'"
#define JS_CALL_HOME JS ";fetch('//127.0.0.1:@PORT@/'+'xss'+'ran')"

/* registry.c reads agent statuses into char[32]; nodes.c a stake tier into char[128]. */
#define AGENT_STATUS_MAX 31
#define NODE_TIER_MAX 127

enum hostile_id {
	APP1_NAME, APP1_REPO, APP1_TAG, APP1_NETWORK, APP1_ATTESTATION, APP1_HEALTH,
	APP2_NAME, APP2_REPO, APP2_TAG,
	APP3_NAME, APP3_REPO, APP3_TAG, APP3_NETWORK, APP3_ATTESTATION, APP3_HEALTH,
	NODE1_ID, NODE1_TIER, NODE1_ATTESTATION, NODE1_HEALTH,
	NODE2_ID, NODE2_TIER,
	ACCOUNT1, ACCOUNT2, ACCOUNT_SYSTEM,
	HOSTILE_COUNT
};

/* @PORT@ becomes the listener's port. */
static const struct {
	const char *where;
	const char *text;
	size_t max; /* what the dashboard's reader keeps: longer would be cut */
} hostile_spec[HOSTILE_COUNT] = {
	[APP1_NAME] = {"app name", "<script>" JS "</script>", EE_APP_NAME_MAX},
	[APP1_REPO] = {"repo", "<img src=x onerror=\"" JS_CALL_HOME "\">", REGISTRY_REPO_MAX},
	[APP1_TAG] = {"release tag", "\"><svg onload=" JS_CALL_HOME ">", REGISTRY_TAG_MAX},
	[APP1_NETWORK] = {"network", "<svg onload=title='xss'+'ran'>", REGISTRY_NETWORK_MAX},
	/* Unclosed: unescaped, it would swallow the rest of the page. */
	[APP1_ATTESTATION] = {"agent attestation", "<script>title='xss'+'ran'", AGENT_STATUS_MAX},
	[APP1_HEALTH] = {"agent health", "</td></tr></table><script>", AGENT_STATUS_MAX},
	[APP2_NAME] = {"app name", "</td></tr></table><script>" JS "</script>", EE_APP_NAME_MAX},
	[APP2_REPO] = {"repo", "javascript:" JS_CALL_HOME "//<a href=\"javascript:" JS "\">x</a>",
	               REGISTRY_REPO_MAX},
	[APP2_TAG] = {"release tag", "<img src=//127.0.0.1:@PORT@/img>", REGISTRY_TAG_MAX},
	[APP3_NAME] = {"app name", "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;",
	               EE_APP_NAME_MAX},
	[APP3_REPO] = {"repo", "<iframe srcdoc=\"<script>parent." JS_CALL_HOME "</script>\">",
	               REGISTRY_REPO_MAX},
	[APP3_TAG] = {"release tag",
	              "<meta http-equiv=refresh content=\"0;url=//127.0.0.1:@PORT@/meta\">",
	              REGISTRY_TAG_MAX},
	[APP3_NETWORK] = {"network", "<base href=//127.0.0.1:@PORT@/>", REGISTRY_NETWORK_MAX},
	[APP3_ATTESTATION] = {"agent attestation", "<plaintext>", AGENT_STATUS_MAX},
	[APP3_HEALTH] = {"agent health", "<textarea><!--", AGENT_STATUS_MAX},
	[NODE1_ID] = {"node id", "\"><img src=x onerror=" JS_CALL_HOME ">", HOSTILE_MAX - 1},
	[NODE1_TIER] = {"stake tier", "</style></title><script>" JS_CALL_HOME "</script>",
	                NODE_TIER_MAX},
	[NODE1_ATTESTATION] = {"node attestation", "<svg><script>" JS_CALL_HOME "</script></svg>",
	                       HOSTILE_MAX - 1},
	[NODE1_HEALTH] = {"node health", "<object data=\"javascript:" JS "\"></object>",
	                  HOSTILE_MAX - 1},
	[NODE2_ID] = {"node id", "javascript:" JS_CALL_HOME, HOSTILE_MAX - 1},
	[NODE2_TIER] = {"stake tier", "&lt;b&gt;already escaped&lt;/b&gt; &#60;script&#62;",
	                NODE_TIER_MAX},
	[ACCOUNT1] = {"account id", "<script>" JS_CALL_HOME "</script>", HOSTILE_MAX - 1},
	[ACCOUNT2] = {"account id",
	              "</td></tr></table><link rel=stylesheet href=//127.0.0.1:@PORT@/css>",
	              HOSTILE_MAX - 1},
	/* ledger.c refuses "@" names (system accounts): written with sqlite3 directly. */
	[ACCOUNT_SYSTEM] = {"system account id", "@<svg onload=" JS_CALL_HOME ">", HOSTILE_MAX - 1},
};

static char hostile[HOSTILE_COUNT][HOSTILE_MAX];

/* Elements no dashboard has; one in the DOM or the HTML means a value broke out. */
static const char *const foreign_tags[] = {
	"<script", "<img", "<svg", "<iframe", "<object", "<embed", "<base", "<link",
	"<meta http-equiv", "<a ", "<a>", "<plaintext", "<textarea", "<!--",
};

#define APP_COUNT 4 /* three hostile, one plain */

static struct stack st;
static char work_dir[256];      /* control page, browser profiles, DOM dumps */
static int browser_port;
static char browser_url[64];
static char dashboard_csp[512]; /* as ee-api sent it */

/* The loopback socket every payload calls home to; it answers nothing. */
static int listener_fd = -1;
static int listener_port;

struct browser_run {
	int exit_status;      /* chromium's, or -1 when it did not exit by itself */
	char *dom;            /* the page as --dump-dom serialized it */
	char *log;            /* chromium's stderr, the page's console messages included */
	int calls_home;       /* connections the listener took meanwhile */
	char first_call[160]; /* the request line of the first */
};

static bool contains(const char *haystack, const char *needle)
{
	return haystack && strstr(haystack, needle) != NULL;
}

static bool contains_nocase(const char *haystack, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = haystack; p && *p; p++)
		if (strncasecmp(p, needle, n) == 0)
			return true;
	return false;
}

/* Replaces each @PORT@ of text with the listener's port. */
static void hostile_expand(const char *text, char *out, size_t size)
{
	char port[16];
	snprintf(port, sizeof(port), "%d", listener_port);
	size_t o = 0;
	for (const char *p = text; *p && o + 1 < size;) {
		if (strncmp(p, "@PORT@", 6) == 0) {
			for (const char *q = port; *q && o + 1 < size; q++)
				out[o++] = *q;
			p += 6;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
}

/* How chromium serializes text: only &, < and > are escaped. */
static void dom_text(const char *s, char *out, size_t size)
{
	size_t o = 0;
	for (; *s; s++) {
		const char *rep = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
		size_t len = rep ? strlen(rep) : 1;
		if (o + len + 1 > size)
			break;
		memcpy(out + o, rep ? rep : s, len);
		o += len;
	}
	out[o] = '\0';
}

static void url_encode(const char *s, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 4 < size; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p)) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct buf b;
	buf_init(&b);
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	return b.data ? b.data : strdup("");
}

static int listener_open(void)
{
	listener_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	if (listener_fd < 0 || fcntl(listener_fd, F_SETFD, FD_CLOEXEC) != 0 ||
	    fcntl(listener_fd, F_SETFL, O_NONBLOCK) != 0 ||
	    bind(listener_fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(listener_fd, 64) != 0 ||
	    getsockname(listener_fd, (struct sockaddr *)&a, &len) != 0)
		return -1;
	listener_port = ntohs(a.sin_port);
	return 0;
}

/* Takes every waiting connection, keeps the first request line, closes it unanswered. */
static void listener_drain(struct browser_run *run)
{
	int fd;
	while ((fd = accept(listener_fd, NULL, NULL)) >= 0) {
		struct timeval tv = {1, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		char request[160] = "";
		ssize_t n = recv(fd, request, sizeof(request) - 1, 0);
		request[n > 0 ? n : 0] = '\0';
		request[strcspn(request, "\r\n")] = '\0';
		if (run->calls_home++ == 0)
			snprintf(run->first_call, sizeof(run->first_call), "%s",
			         request[0] ? request : "(connected, sent nothing)");
		close(fd);
	}
}

/* Loads url in a fresh headless chromium and keeps what it dumped and logged. */
static void browser_load(const char *url, struct browser_run *run)
{
	static int runs;
	memset(run, 0, sizeof(*run));
	run->exit_status = -1;
	listener_drain(run); /* nothing left over from before counts */
	run->calls_home = 0;
	run->first_call[0] = '\0';

	runs++;
	char profile[320], dom_path[320], log_path[320], home[320];
	snprintf(profile, sizeof(profile), "--user-data-dir=%s/profile-%d", work_dir, runs);
	snprintf(dom_path, sizeof(dom_path), "%s/dom-%d.html", work_dir, runs);
	snprintf(log_path, sizeof(log_path), "%s/chromium-%d.log", work_dir, runs);
	snprintf(home, sizeof(home), "%s/home", work_dir);
	pid_t pid = fork();
	if (pid < 0) {
		test_fail(__FILE__, __LINE__, "fork: cannot start chromium");
		return;
	}
	if (pid == 0) {
		setpgid(0, 0);
		int out = open(dom_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int err = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int devnull = open("/dev/null", O_RDONLY);
		if (out < 0 || err < 0 || devnull < 0)
			_exit(126);
		dup2(out, STDOUT_FILENO);
		dup2(err, STDERR_FILENO);
		dup2(devnull, STDIN_FILENO);
		/* Chromium's launcher and profile code read $HOME: keep them in the test's directory. */
		setenv("HOME", home, 1);
		unsetenv("DISPLAY");
		char *argv[] = {"timeout", "-k", "5", CHROMIUM_TIMEOUT, CHROMIUM, "--headless",
		                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		                "--disable-background-networking", "--disable-component-update",
		                "--disable-sync", "--enable-logging=stderr", profile, "--dump-dom",
		                (char *)url, NULL};
		execvp(argv[0], argv);
		_exit(127);
	}
	time_t deadline = time(NULL) + BROWSER_DEADLINE;
	int status;
	for (;;) {
		struct pollfd p = {listener_fd, POLLIN, 0};
		if (poll(&p, 1, 50) > 0)
			listener_drain(run);
		pid_t done = waitpid(pid, &status, WNOHANG);
		if (done == pid) {
			run->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			break;
		}
		if (done < 0 || time(NULL) > deadline) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			test_fail(__FILE__, __LINE__, "chromium did not finish loading %s", url);
			break;
		}
	}
	/* A connection made just before chromium exited waits in the backlog. */
	listener_drain(run);
	run->dom = read_text(dom_path);
	run->log = read_text(log_path);
	if (run->exit_status != 0)
		test_fail(__FILE__, __LINE__, "chromium exited with %d loading %s (see %s)",
		          run->exit_status, url, log_path);
}

static void browser_run_free(struct browser_run *run)
{
	free(run->dom);
	free(run->log);
}

static int write_control_page(void)
{
	char script[256], path[320];
	hostile_expand(JS_CALL_HOME ";document.documentElement.setAttribute('data-'+'xss'+'ran','')",
	               script, sizeof(script));
	snprintf(path, sizeof(path), "%s/control/control.html", work_dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>control</title>"
	           "</head><body><p>control</p><script>%s</script></body></html>\n",
	        script);
	return fclose(f);
}

static int setup(void)
{
	if (stack_make_dir(work_dir, sizeof(work_dir), "dashboard-browser") != 0)
		return -1;
	char dir[320];
	snprintf(dir, sizeof(dir), "%s/control", work_dir);
	if (mkdir(dir, 0700) != 0 || listener_open() != 0 || write_control_page() != 0)
		return -1;
	browser_port = stack_free_port();
	if (browser_port <= 0)
		return -1;
	snprintf(browser_url, sizeof(browser_url), "http://127.0.0.1:%d", browser_port);
	char port[16];
	snprintf(port, sizeof(port), "%d", browser_port);
	setenv("EE_DASH_BROWSER_PORT", port, 1);
	setenv("EE_DASH_CONTROL_DIR", dir, 1);
	setenv("EE_TEST_CADDYFILE", "tests/integration/dashboard.Caddyfile", 1);
	for (int i = 0; i < HOSTILE_COUNT; i++)
		hostile_expand(hostile_spec[i].text, hostile[i], sizeof(hostile[i]));
	return stack_start(&st, "dashboard", NULL);
}

/* An unsealed, connected agent whose statuses may be any text. */
static void seed_app(const char *name, const char *repo, const char *tag, const char *network,
                     const char *agent, const char *attestation, const char *health)
{
	struct stack_agent a = {
		.app_name = name,
		.repo = repo,
		.release_tag = tag,
		.network = network,
		.agent_id = agent,
		.attestation = attestation,
		.sealed = false,
		.health = health,
		.connected = true,
	};
	stack_seed_agent(&st, &a);
}

static void seed_node(const char *node_id, const char *tier, const char *attestation,
                      const char *health)
{
	struct ee_db *db = stack_db(&st);
	if (!db)
		return;
	struct ee_error err;
	struct node_registration reg = {
		.node_id = node_id,
		.has_price = true,
		.price_cents_per_vcpu_hour = 12,
		.has_stake = true,
		.stake_amount_cents = 50000,
		.stake_tier = tier,
	};
	char token[NODE_TOKEN_LEN + 1];
	bool created;
	int64_t now = time_now_ms();
	CHECK(db_begin_write(db, &err) == 0);
	CHECK(nodes_register(db, &reg, token, &created, &err) == 0, "%s", err.reason);
	if (attestation)
		CHECK(nodes_mark_attestation(db, node_id, attestation, now, &err) == 0, "%s", err.reason);
	if (health)
		CHECK(nodes_mark_health(db, node_id, health, now, &err) == 0, "%s", err.reason);
	CHECK(db_commit(db, &err) == 0, "%s", err.reason);
	db_close(db);
}

static void seed_accounts(void)
{
	struct ee_db *db = stack_db(&st);
	if (!db)
		return;
	struct ee_error err;
	char txn[LEDGER_ID_LEN + 1];
	CHECK(db_begin_write(db, &err) == 0);
	CHECK(ledger_purchase(db, hostile[ACCOUNT1], 100, txn, &err) == 0, "%s", err.reason);
	CHECK(ledger_purchase(db, hostile[ACCOUNT2], 250, txn, &err) == 0, "%s", err.reason);
	CHECK(ledger_purchase(db, hostile[ACCOUNT_SYSTEM], 100, txn, &err) != 0);
	CHECK_STR(err.reason, "reserved_account");
	CHECK(db_commit(db, &err) == 0, "%s", err.reason);
	db_close(db);

	/* Old or corrupt data: a row the library would never write. */
	sqlite3 *h = NULL;
	sqlite3_stmt *stmt = NULL;
	CHECK(sqlite3_open_v2(st.db_path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	CHECK(sqlite3_prepare_v2(h,
	                         "INSERT INTO accounts (account_id, balance_cents, system, created_at,"
	                         " updated_at) VALUES (?1, 0, 1, ?2, ?2)",
	                         -1, &stmt, NULL) == SQLITE_OK,
	      "%s", sqlite3_errmsg(h));
	sqlite3_bind_text(stmt, 1, hostile[ACCOUNT_SYSTEM], -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, time_now_ms());
	CHECK(sqlite3_step(stmt) == SQLITE_DONE, "%s", sqlite3_errmsg(h));
	sqlite3_finalize(stmt);
	sqlite3_close(h);
}

static void test_seed(void)
{
	test_case("hostile values fit their columns uncut");
	for (int i = 0; i < HOSTILE_COUNT; i++)
		CHECK(strlen(hostile[i]) <= hostile_spec[i].max, "%s %s is %zu bytes, limit %zu",
		      hostile_spec[i].where, hostile[i], strlen(hostile[i]), hostile_spec[i].max);

	test_case("seed hostile apps, nodes and accounts through lib/ and sqlite3");
	seed_app(hostile[APP1_NAME], hostile[APP1_REPO], hostile[APP1_TAG], hostile[APP1_NETWORK],
	         "agent-1", hostile[APP1_ATTESTATION], hostile[APP1_HEALTH]);
	seed_app(hostile[APP2_NAME], hostile[APP2_REPO], hostile[APP2_TAG], "sandbox-1", "agent-2",
	         "valid", "pass");
	seed_app(hostile[APP3_NAME], hostile[APP3_REPO], hostile[APP3_TAG], hostile[APP3_NETWORK],
	         "agent-3", hostile[APP3_ATTESTATION], hostile[APP3_HEALTH]);
	seed_app("plain-app", "org/plain", "v1.0.0", "sandbox-1", "agent-plain", "valid", "pass");
	seed_node(hostile[NODE1_ID], hostile[NODE1_TIER], hostile[NODE1_ATTESTATION],
	          hostile[NODE1_HEALTH]);
	seed_node(hostile[NODE2_ID], hostile[NODE2_TIER], NULL, NULL);
	seed_accounts();
	check_ledger(st.db_path);
}

/* True when the policy leaves no way to run a script, inline or loaded. */
static bool csp_forbids_scripts(const char *csp)
{
	char copy[512];
	snprintf(copy, sizeof(copy), "%s", csp);
	const char *fallback = NULL, *script = NULL;
	bool others_none = true;
	char *save = NULL;
	for (char *d = strtok_r(copy, ";", &save); d; d = strtok_r(NULL, ";", &save)) {
		while (*d == ' ')
			d++;
		char *value = strchr(d, ' ');
		if (value)
			*value++ = '\0';
		else
			value = "";
		while (*value == ' ')
			value++;
		if (strcmp(d, "default-src") == 0)
			fallback = value;
		else if (strcmp(d, "script-src") == 0)
			script = value;
		else if (strncmp(d, "script-src-", 11) == 0 && strcmp(value, "'none'") != 0)
			others_none = false;
	}
	const char *effective = script ? script : fallback;
	return others_none && effective && strcmp(effective, "'none'") == 0;
}

static void test_dashboard_response(void)
{
	struct http_result r;
	test_case("GET /dashboard without a token: 401");
	stack_request(&st, "GET", "/dashboard", NULL, NULL, &r);
	CHECK_INT(r.status, 401);
	http_result_free(&r);

	test_case("GET /dashboard: HTML with a Content-Security-Policy that forbids scripts");
	stack_request(&st, "GET", "/dashboard", TEST_ADMIN_TOKEN, NULL, &r);
	CHECK_INT(r.status, 200);
	char type[128] = "";
	CHECK(http_header(&r, "Content-Type", type, sizeof(type)));
	CHECK(strncmp(type, "text/html", 9) == 0, "Content-Type: %s", type);
	CHECK(http_header(&r, "Content-Security-Policy", dashboard_csp, sizeof(dashboard_csp)),
	      "no Content-Security-Policy header");
	CHECK(csp_forbids_scripts(dashboard_csp), "Content-Security-Policy: %s", dashboard_csp);

	test_case("the dashboard's HTML holds no hostile value unescaped and no foreign element");
	for (int i = 0; i < HOSTILE_COUNT; i++)
		if (strchr(hostile[i], '<'))
			CHECK(!contains(r.body, hostile[i]), "%s %s", hostile_spec[i].where, hostile[i]);
	for (size_t i = 0; i < sizeof(foreign_tags) / sizeof(foreign_tags[0]); i++)
		CHECK(!contains_nocase(r.body, foreign_tags[i]), "%s in the HTML", foreign_tags[i]);
	http_result_free(&r);
}

static void test_browser_site(void)
{
	struct http_result r;
	char url[256], value[512];
	test_case("the browser's site: /dashboard with the policy, ?csp=off without, nothing else");
	snprintf(url, sizeof(url), "%s/dashboard", browser_url);
	http_do("GET", url, NULL, NULL, 0, &r);
	CHECK_INT(r.status, 200);
	CHECK(http_header(&r, "Content-Security-Policy", value, sizeof(value)));
	http_result_free(&r);
	snprintf(url, sizeof(url), "%s/dashboard?csp=off", browser_url);
	http_do("GET", url, NULL, NULL, 0, &r);
	CHECK_INT(r.status, 200);
	CHECK(!http_header(&r, "Content-Security-Policy", value, sizeof(value)));
	http_result_free(&r);
	snprintf(url, sizeof(url), "%s/v1/balances/alice", browser_url);
	http_do("GET", url, NULL, NULL, 0, &r);
	CHECK_INT(r.status, 404);
	http_result_free(&r);
}

static void check_no_script_ran(const struct browser_run *run)
{
	CHECK(!contains(run->dom, MARKER), "a payload ran: \"" MARKER "\" is in the DOM");
	CHECK(run->calls_home == 0, "the listener was called %d times, first: %s", run->calls_home,
	      run->first_call);
}

/* No value became markup, each is the entire text of its own cell, and the page is whole. */
static void check_dashboard_dom(const struct browser_run *run)
{
	CHECK(run->dom && run->dom[0], "chromium dumped nothing");
	for (size_t i = 0; i < sizeof(foreign_tags) / sizeof(foreign_tags[0]); i++)
		CHECK(!contains_nocase(run->dom, foreign_tags[i]), "%s in the DOM", foreign_tags[i]);
	for (int i = 0; i < HOSTILE_COUNT; i++) {
		char cell[HOSTILE_MAX * 5 + 16], text[HOSTILE_MAX * 5];
		dom_text(hostile[i], text, sizeof(text));
		snprintf(cell, sizeof(cell), "<td>%s</td>", text);
		CHECK(contains(run->dom, cell), "%s %s is not shown as text", hostile_spec[i].where,
		      hostile[i]);
	}
	char apps[64];
	snprintf(apps, sizeof(apps), "<h2>Apps (%d)</h2>", APP_COUNT);
	CHECK(contains(run->dom, apps), "no \"%s\"", apps);
	CHECK(contains(run->dom, "<td>plain-app</td><td>org/plain</td><td>v1.0.0</td>"));
	CHECK(contains(run->dom, "<h2>Nodes</h2>"));
	CHECK(contains(run->dom, "<h2>Balances</h2>"));
	CHECK(contains(run->dom, "<td>@mint</td>"), "the page was cut short");
	CHECK(contains(run->dom, "<title>easyenclave control plane</title>"));
}

static void test_control_without_policy(void)
{
	test_case("control: an inline script served unescaped and without a policy is seen to run");
	char url[128];
	snprintf(url, sizeof(url), "%s/control.html", browser_url);
	struct browser_run run;
	browser_load(url, &run);
	CHECK(contains(run.dom, "<p>control</p>"), "the control page did not render");
	CHECK(contains(run.dom, "<title>" MARKER "</title>"), "the title marker is missing");
	CHECK(contains(run.dom, "data-" MARKER), "the attribute marker is missing");
	CHECK(run.calls_home >= 1, "the listener heard nothing");
	CHECK(contains(run.first_call, "GET /" MARKER " "), "first call: %s", run.first_call);
	browser_run_free(&run);
}

static void test_control_under_policy(void)
{
	test_case("control: the dashboard's policy alone stops the same inline script");
	if (!dashboard_csp[0]) {
		test_fail(__FILE__, __LINE__, "the dashboard sent no Content-Security-Policy to try");
		return;
	}
	char encoded[1600], url[1700];
	url_encode(dashboard_csp, encoded, sizeof(encoded));
	snprintf(url, sizeof(url), "%s/control-csp.html?csp=%s", browser_url, encoded);
	struct http_result r;
	char served[512] = "";
	http_do("GET", url, NULL, NULL, 0, &r);
	CHECK_INT(r.status, 200);
	CHECK(http_header(&r, "Content-Security-Policy", served, sizeof(served)));
	CHECK_STR(served, dashboard_csp);
	http_result_free(&r);

	struct browser_run run;
	browser_load(url, &run);
	CHECK(contains(run.dom, "<p>control</p>"), "the control page did not render");
	CHECK(contains(run.dom, "<script>"), "the script is not on the page");
	check_no_script_ran(&run);
	CHECK(contains(run.log, "Content Security Policy"), "chromium logged no blocked script");
	browser_run_free(&run);
}

static void test_dashboard_in_browser(void)
{
	test_case("chromium loads /dashboard with hostile data: all text, no script ran");
	char url[128];
	snprintf(url, sizeof(url), "%s/dashboard", browser_url);
	struct browser_run run;
	browser_load(url, &run);
	check_no_script_ran(&run);
	check_dashboard_dom(&run);
	/* The policy is the second wall: the escaping left it nothing to block. */
	CHECK(!contains(run.log, "Content Security Policy"), "chromium blocked something");
	browser_run_free(&run);

	test_case("chromium loads /dashboard without its policy: the escaping alone holds");
	snprintf(url, sizeof(url), "%s/dashboard?csp=off", browser_url);
	browser_load(url, &run);
	check_no_script_ran(&run);
	check_dashboard_dom(&run);
	browser_run_free(&run);
}

int main(void)
{
	test_case("chromium is installed");
	if (access(CHROMIUM, X_OK) != 0) {
		test_fail(__FILE__, __LINE__,
		          "%s is missing: install the Debian package chromium (make deps)", CHROMIUM);
		return test_finish();
	}
	test_case("start Caddy, ee-api and the listener");
	if (setup() != 0) {
		test_fail(__FILE__, __LINE__, "setup failed (see %s)", work_dir);
		stack_stop(&st); /* whatever did start */
		return test_finish();
	}
	test_seed();
	test_dashboard_response();
	test_browser_site();
	test_control_without_policy();
	test_control_under_policy();
	test_dashboard_in_browser();
	test_case("stop cleanly");
	stack_stop(&st);
	close(listener_fd);
	int rc = test_finish();
	if (rc == 0 && !getenv("EE_TEST_KEEP") && stack_remove_dir(work_dir) != 0)
		fprintf(stderr, "could not remove %s: %s\n", work_dir, strerror(errno));
	return rc;
}
