/*
 * agentproc.h - ee-agent as a real process, for the end-to-end tests and
 * the benchmarks: a development kit from the test hierarchy, start and
 * stop, and its readiness listener.
 */
#ifndef EE_TEST_AGENTPROC_H
#define EE_TEST_AGENTPROC_H

#include <stdbool.h>
#include <sys/types.h>

#include "client.h"

struct agent_proc {
	pid_t pid;
	int status_port;    /* EE_STATUS_ADDR's port */
	char log_path[320]; /* stdout and stderr */
};

/*
 * Writes the development kit of the process's test hierarchy
 * (agent_hierarchy(), set by stack_start) into dir: quote.bin with the
 * AGENT_TEST_* registers and attestation_key.pem.  0 or -1 (said on stderr).
 */
int agentproc_write_kit(const char *dir);

/*
 * Starts bin_dir/ee-agent with env ("NAME=value", NULL-terminated) on top of
 * the caller's environment and EE_STATUS_ADDR=127.0.0.1:<free port>;
 * output appended to log_path.  0 or -1.
 */
int agentproc_start(struct agent_proc *p, const char *bin_dir, const char *log_path,
                    const char *const *env);
/* GET /ready (or another path) on the readiness listener. */
int agentproc_get(const struct agent_proc *p, const char *path, struct http_result *out);
/* Waits until /ready says 200 (true) or timeout_ms passes (false). */
bool agentproc_wait_ready(const struct agent_proc *p, int timeout_ms);
/* Waits until /ready's "state" is state; false on timeout. */
bool agentproc_wait_state(const struct agent_proc *p, const char *state, int timeout_ms);
/* SIGTERM, then the exit status (128 + signal if killed; -1 if it would not stop in 10 s). */
int agentproc_stop(struct agent_proc *p);
/* SIGKILL, reaped. */
void agentproc_kill(struct agent_proc *p);
/* Whether the process has exited; *status gets its exit status. */
bool agentproc_exited(struct agent_proc *p, int *status);

#endif
