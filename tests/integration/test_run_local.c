/*
 * test_run_local.c - `make run` as a newcomer runs it: deploy/run-local on
 * free loopback ports and a fresh state directory brings up Caddy, ee-api,
 * ee-tunneld and the demo (a backend and ee-agent attested on sandbox-1
 * with a development kit), and the README's requests answer through the
 * tunnel.  Ctrl-C (SIGINT to the script) stops everything it started.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "client.h"
#include "stack.h"

struct run_local {
	pid_t pid;
	char dir[256];
	char out_path[320];
	int http_port, control_port, proxy_port, backend_port, status_port;
};

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/*
 * Starts deploy/run-local on r's directory and ports; waits (30 s at most)
 * for its "Ctrl-C stops it." line.
 */
static int run_local_launch(struct run_local *r, bool demo)
{
	char state[300], tools[300];
	snprintf(state, sizeof(state), "%s/var", r->dir);
	snprintf(tools, sizeof(tools), "%s/../tools", stack_bin_dir());
	/* The last run's output must not pass for this one's. */
	unlink(r->out_path);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setpgid(0, 0);
		const struct {
			const char *name;
			int port;
		} ports[] = {{"EE_HTTP_PORT", r->http_port},
		             {"EE_CONTROL_PORT", r->control_port},
		             {"EE_PROXY_PORT", r->proxy_port},
		             {"EE_DEMO_BACKEND_PORT", r->backend_port},
		             {"EE_DEMO_STATUS_PORT", r->status_port}};
		for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
			char text[16];
			snprintf(text, sizeof(text), "%d", ports[i].port);
			setenv(ports[i].name, text, 1);
		}
		setenv("EE_DEMO", demo ? "1" : "0", 1);
		setenv("EE_STATE_DIR", state, 1);
		setenv("EE_BIN_DIR", stack_bin_dir(), 1);
		setenv("EE_TOOLS_DIR", tools, 1);
		/* Nothing of the test process's own settings leaks in. */
		unsetenv("EE_DB_PATH");
		unsetenv("EE_ADMIN_TOKEN");
		unsetenv("EE_LAUNCHER_TOKEN");
		unsetenv("EE_UPTIME_TOKEN");
		int fd = open(r->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execl("deploy/run-local", "run-local", (char *)NULL);
		_exit(127);
	}
	r->pid = pid;
	for (int waited = 0; waited < 30000; waited += 100) {
		const char *out = read_all(r->out_path);
		if (out && strstr(out, "Ctrl-C stops it."))
			return 0;
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			r->pid = 0;
			return -1;
		}
		sleep_ms(100);
	}
	return -1;
}

/* A fresh directory and free ports, then run_local_launch. */
static int run_local_start(struct run_local *r, const char *name, bool demo)
{
	memset(r, 0, sizeof(*r));
	if (stack_make_dir(r->dir, sizeof(r->dir), name) != 0)
		return -1;
	snprintf(r->out_path, sizeof(r->out_path), "%s/run-local.out", r->dir);
	r->http_port = stack_free_port();
	r->control_port = stack_free_port();
	r->proxy_port = stack_free_port();
	r->backend_port = stack_free_port();
	r->status_port = stack_free_port();
	return run_local_launch(r, demo);
}

/* Ctrl-C: SIGINT to the script; returns its exit status, or -1 if it hung. */
static int run_local_stop(struct run_local *r)
{
	if (r->pid <= 0)
		return -1;
	kill(r->pid, SIGINT);
	int status = -1;
	for (int waited = 0; waited < 15000; waited += 50) {
		if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
			r->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		sleep_ms(50);
	}
	kill(-r->pid, SIGKILL);
	waitpid(r->pid, &status, 0);
	r->pid = 0;
	return -1;
}

static int get(const struct run_local *r, const char *host, const char *path,
               const char *token, struct http_result *out)
{
	char url[256], host_hdr[128], auth[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", r->http_port, path);
	const char *headers[3] = {NULL, NULL, NULL};
	int n = 0;
	if (host) {
		snprintf(host_hdr, sizeof(host_hdr), "Host: %s", host);
		headers[n++] = host_hdr;
	}
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		headers[n++] = auth;
	}
	return http_do("GET", url, headers, NULL, 0, out);
}

static bool port_open(int port)
{
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	struct http_result r;
	int rc = http_do("GET", url, NULL, NULL, 0, &r);
	http_result_free(&r);
	return rc == 0;
}

static void test_demo(void)
{
	struct run_local r;
	test_case("make run: the control plane and the demo come up on a fresh state directory");
	if (run_local_start(&r, "run-local-demo", true) != 0) {
		test_fail(__FILE__, __LINE__, "run-local did not come up: %s",
		          test_printable(read_all(r.out_path) ? read_all(r.out_path) : "(no output)"));
		run_local_stop(&r);
		return;
	}
	const char *out = read_all(r.out_path);
	CHECK(strstr(out, "curl http://localhost:") != NULL, "the README's requests are printed");

	test_case("make run: the demo agent is attested and its readiness says so");
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ready", r.status_port);
	struct http_result h;
	CHECK_INT(http_do("GET", url, NULL, NULL, 0, &h), 0);
	CHECK_INT(h.status, 200);
	CHECK_STR(http_json_string(&h, "state"), "attested");
	CHECK_STR(http_json_string(&h, "quote_source"), "dev");
	http_result_free(&h);

	test_case("make run: /v1/resolve/demo answers 200 allowed on sandbox-1");
	CHECK_INT(get(&r, NULL, "/v1/resolve/demo", NULL, &h), 0);
	CHECK_INT(h.status, 200);
	CHECK(http_json_bool(&h, "allowed", false));
	CHECK_STR(http_json_string(&h, "network"), "sandbox-1");
	CHECK_STR(http_json_string(&h, "attestation_status"), "valid");
	http_result_free(&h);

	test_case("make run: demo.app.localhost answers through the tunnel from the backend");
	CHECK_INT(get(&r, "demo.app.localhost", "/", NULL, &h), 0);
	CHECK_INT(h.status, 200);
	CHECK(h.body && strstr(h.body, "hello from the demo backend") != NULL, "body: %s",
	      h.body ? test_printable(h.body) : "(none)");
	http_result_free(&h);

	test_case("make run: the JSON proxy /v1/proxy/demo reaches the same backend");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/proxy/demo", r.http_port);
	const char *envelope = "{\"method\":\"GET\",\"path\":\"/\",\"headers\":{}}";
	const char *json[] = {"Content-Type: application/json", NULL};
	CHECK_INT(http_do("POST", url, json, envelope, strlen(envelope), &h), 0);
	CHECK_INT(h.status, 200);
	CHECK(h.body && strstr(h.body, "through the tunnel") != NULL);
	http_result_free(&h);

	test_case("make run: the admin token it made works and is readable by its owner only");
	char path[400];
	snprintf(path, sizeof(path), "%s/var/admin-token", r.dir);
	struct stat st;
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 077, 0);
	char token[128] = "";
	FILE *f = fopen(path, "r");
	if (f) {
		if (!fgets(token, sizeof(token), f))
			token[0] = '\0';
		fclose(f);
	}
	CHECK_INT(get(&r, NULL, "/v1/apps", token, &h), 0);
	CHECK_INT(h.status, 200);
	CHECK(h.body && strstr(h.body, "\"demo\"") != NULL);
	http_result_free(&h);

	test_case("make run: Ctrl-C stops every process it started");
	int rc = run_local_stop(&r);
	CHECK(rc == 0 || rc == 130, "run-local exited %d", rc);
	sleep_ms(200);
	CHECK(!port_open(r.http_port), "Caddy still answers");
	CHECK(!port_open(r.backend_port), "the demo backend still answers");
	CHECK(!port_open(r.status_port), "ee-agent still answers");

	test_case("make run: a second run on the same state keeps the tokens and the root");
	char root1[4096] = "", root2[4096] = "";
	snprintf(path, sizeof(path), "%s/var/dev/root.pem", r.dir);
	const char *t = read_all(path);
	snprintf(root1, sizeof(root1), "%s", t ? t : "");
	CHECK(run_local_launch(&r, true) == 0, "second run did not come up: %s",
	      test_printable(read_all(r.out_path)));
	t = read_all(path);
	snprintf(root2, sizeof(root2), "%s", t ? t : "");
	CHECK(root1[0] && strcmp(root1, root2) == 0, "the development root changed");
	CHECK_INT(get(&r, NULL, "/v1/apps", token, &h), 0);
	CHECK_INT(h.status, 200);
	http_result_free(&h);
	CHECK_INT(get(&r, "demo.app.localhost", "/", NULL, &h), 0);
	CHECK_INT(h.status, 200);
	http_result_free(&h);
	rc = run_local_stop(&r);
	CHECK(rc == 0 || rc == 130, "run-local exited %d", rc);
	stack_remove_dir(r.dir);
}

static void test_no_demo(void)
{
	struct run_local r;
	test_case("make run with EE_DEMO=0: the control plane alone, no demo app");
	if (run_local_start(&r, "run-local-nodemo", false) != 0) {
		test_fail(__FILE__, __LINE__, "run-local did not come up: %s",
		          test_printable(read_all(r.out_path) ? read_all(r.out_path) : "(no output)"));
		run_local_stop(&r);
		return;
	}
	struct http_result h;
	CHECK_INT(get(&r, NULL, "/health", NULL, &h), 0);
	CHECK_INT(h.status, 200);
	http_result_free(&h);
	CHECK_INT(get(&r, NULL, "/v1/resolve/demo", NULL, &h), 0);
	CHECK_INT(h.status, 404);
	http_result_free(&h);
	CHECK(!port_open(r.status_port), "an agent runs without the demo");
	int rc = run_local_stop(&r);
	CHECK(rc == 0 || rc == 130, "run-local exited %d", rc);
	stack_remove_dir(r.dir);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_demo();
	test_no_demo();
	return test_finish();
}
