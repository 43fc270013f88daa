/* agentproc.c - ee-agent as a process for tests; see agentproc.h. */
#include "agentproc.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dcapgen.h"
#include "stack.h"
#include "testagent.h"
#include "util.h"

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int write_file(const char *dir, const char *name, const void *data, size_t len, mode_t mode)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static void register_hex(const char *hex, unsigned char out[48])
{
	size_t n = 0;
	util_hex_decode(hex, 96, out, 48, &n);
}

int agentproc_write_kit(const char *dir)
{
	struct dcapgen *g = agent_hierarchy();
	if (!g) {
		fprintf(stderr, "agentproc: no test hierarchy (start a stack first)\n");
		return -1;
	}
	mkdir(dir, 0700);
	struct dcapgen_quote_options q;
	dcapgen_quote_defaults(&q);
	register_hex(AGENT_TEST_MRTD, q.mrtd);
	register_hex(AGENT_TEST_RTMR0, q.rtmr[0]);
	register_hex(AGENT_TEST_RTMR1, q.rtmr[1]);
	register_hex(AGENT_TEST_RTMR2, q.rtmr[2]);
	register_hex(AGENT_TEST_RTMR3, q.rtmr[3]);
	unsigned char *quote = NULL;
	size_t len = 0;
	char *key = NULL;
	int rc = -1;
	if (dcapgen_quote(g, NULL, &q, &quote, &len) == 0 &&
	    dcapgen_attestation_key_pem(g, &key) == 0 &&
	    write_file(dir, "quote.bin", quote, len, 0644) == 0 &&
	    write_file(dir, "attestation_key.pem", key, strlen(key), 0600) == 0)
		rc = 0;
	else
		fprintf(stderr, "agentproc: cannot write the kit into %s\n", dir);
	free(quote);
	free(key);
	return rc;
}

int agentproc_start(struct agent_proc *p, const char *bin_dir, const char *log_path,
                    const char *const *env)
{
	memset(p, 0, sizeof(*p));
	p->status_port = stack_free_port();
	snprintf(p->log_path, sizeof(p->log_path), "%s", log_path);
	char status_addr[64];
	snprintf(status_addr, sizeof(status_addr), "127.0.0.1:%d", p->status_port);
	char bin[320];
	snprintf(bin, sizeof(bin), "%s/ee-agent", bin_dir);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setpgid(0, 0);
		setenv("EE_STATUS_ADDR", status_addr, 1);
		for (int i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		stack_child_stdio(log_path);
		execl(bin, bin, (char *)NULL);
		_exit(127);
	}
	p->pid = pid;
	return 0;
}

int agentproc_get(const struct agent_proc *p, const char *path, struct http_result *out)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", p->status_port, path);
	return http_do("GET", url, NULL, NULL, 0, out);
}

bool agentproc_wait_state(const struct agent_proc *p, const char *state, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		struct http_result r;
		bool match = false;
		if (agentproc_get(p, "/ready", &r) == 0) {
			const char *s = http_json_string(&r, "state");
			match = s && strcmp(s, state) == 0;
		}
		http_result_free(&r);
		if (match)
			return true;
		sleep_ms(20);
	}
	return false;
}

bool agentproc_wait_ready(const struct agent_proc *p, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		struct http_result r;
		bool ready = agentproc_get(p, "/ready", &r) == 0 && r.status == 200;
		http_result_free(&r);
		if (ready)
			return true;
		sleep_ms(20);
	}
	return false;
}

bool agentproc_exited(struct agent_proc *p, int *status)
{
	*status = -1;
	if (p->pid <= 0)
		return true;
	int st;
	if (waitpid(p->pid, &st, WNOHANG) != p->pid)
		return false;
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	p->pid = 0;
	return true;
}

int agentproc_stop(struct agent_proc *p)
{
	if (p->pid <= 0)
		return -1;
	kill(p->pid, SIGTERM);
	for (int i = 0; i < 1000; i++) {
		int status = -1;
		if (agentproc_exited(p, &status))
			return status;
		sleep_ms(10);
	}
	agentproc_kill(p);
	return -1;
}

void agentproc_kill(struct agent_proc *p)
{
	if (p->pid <= 0)
		return;
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	p->pid = 0;
}
