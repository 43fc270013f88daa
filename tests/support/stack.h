/*
 * stack.h - a running control plane for integration tests: a fresh
 * directory and database, ee-api as its own FastCGI server, and Debian's
 * Caddy in front of it on a free loopback port.  Also runs ee-api as a CGI
 * program the way a web server does, and snapshots the database.  In
 * STACK_API_APACHE_CGI, Debian's Apache takes Caddy's place and runs
 * ee-api as CGI the way a shared host does, from cgi-bin/ as shipped.
 *
 * sandbox-1 is a real development network: ee-tunneld verifies DCAP quotes
 * chaining to a test root (EE_DEV_ROOT_CA, EE_DEV_COLLATERAL_FILE), made by
 * a dcapgen hierarchy (dcapgen.h) valid at the time the stack started, and
 * reads allowlists from <dir>/allowlists (EE_ALLOWLIST_DIR).  The hierarchy
 * is the process's: stacks running at once share it, and it signs the
 * quotes of every test agent (testagent.h, agent_set_hierarchy), which also
 * writes the default allowlist of its release there when it registers.
 * forge-1 pins Intel's root only, so no test agent attests there.
 */
#ifndef EE_TEST_STACK_H
#define EE_TEST_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "client.h"
#include "db.h"

#define TEST_ADMIN_TOKEN "test-admin-token-000000000000000001"
#define TEST_LAUNCHER_TOKEN "test-launcher-token-00000000000002"
#define TEST_UPTIME_TOKEN "test-uptime-token-0000000000000003"

/* How ee-api is started: the three ways of docs/OPERATIONS.md. */
enum stack_api_mode {
	STACK_API_LISTEN_UNIX = 0, /* ee-api --listen <socket> --workers N */
	STACK_API_LISTEN_TCP,      /* ee-api --listen 127.0.0.1:<port> --workers N */
	STACK_API_SPAWN_FCGI,      /* spawn-fcgi hands ee-api the socket on fd 0 */
	STACK_API_SOCKET_ACTIVATION, /* systemd style: fd 3 with LISTEN_FDS/LISTEN_PID */
	/*
	 * Plain CGI behind Debian's Apache instead of Caddy: a document root
	 * holding cgi-bin/.htaccess and cgi-bin/ee-api.cgi as shipped, the
	 * settings file (ee-api.env) and a copy of ee-api beside it outside the
	 * document root, Apache (prefork, mod_cgi, mod_rewrite) on a free
	 * 127.0.0.1 port with the overrides a shared host allows.  As root,
	 * Apache runs CGI programs as www-data, which then owns the stack's
	 * directory and database.  /v1/tunnel and /v1/proxy are not routed
	 * (ee-tunneld still runs on its own ports); no_caddy is ignored.
	 */
	STACK_API_APACHE_CGI,
};

struct stack_options {
	enum stack_api_mode api_mode;
	int workers;             /* ee-api workers (default 2) */
	bool no_tokens;          /* start with no token configured at all */
	bool no_caddy;           /* ee-api only */
	const char *const *env;  /* extra "NAME=value" settings, NULL-terminated */
	const char *const *tunneld_env; /* extra settings for ee-tunneld only */
	bool no_tunneld;         /* ee-api (and Caddy) only */
};

struct stack {
	char dir[256];
	char db_path[320];
	char socket_path[320];
	char upstream[340];      /* what Caddy forwards to: unix//path or 127.0.0.1:port */
	char base_url[64];       /* http://127.0.0.1:<port> (Caddy) */
	int port;
	char bin_dir[256];
	pid_t api_pid, caddy_pid, tunneld_pid;
	int control_port;        /* ee-tunneld's control listener (agents, /v1/proxy) */
	int proxy_port;          /* ee-tunneld's proxy listener (host-routed apps) */
	char dev_root_path[320];       /* EE_DEV_ROOT_CA: the hierarchy's root, PEM */
	char dev_collateral_path[320]; /* EE_DEV_COLLATERAL_FILE */
	char allowlist_dir[320];       /* EE_ALLOWLIST_DIR */
	bool holds_hierarchy;          /* this stack counts among the hierarchy's users */
	struct stack_options opt;
	pid_t apache_pid;              /* STACK_API_APACHE_CGI: Apache, in Caddy's place */
	char apache_dir[320];          /* its ServerRoot: httpd.conf, error.log, access.log */
};

/* The directory holding ee-api (EE_TEST_BIN, default build/bin). */
const char *stack_bin_dir(void);
/*
 * The api_mode EE_TEST_API_MODE asks for, for the binaries tests/run runs
 * once per mode: unset, empty or "fastcgi" is STACK_API_LISTEN_UNIX,
 * "apache-cgi" STACK_API_APACHE_CGI; anything else fails the current case.
 */
enum stack_api_mode stack_api_mode_from_env(void);
/* What answers stack_request in that mode: "Caddy" or "Apache" (for case names). */
const char *stack_front_name(enum stack_api_mode mode);
/* A fresh directory under $TMPDIR for one test. */
int stack_make_dir(char *out, size_t size, const char *name);
/*
 * Removes a directory and everything in it: a database with its -wal and
 * -shm files, Caddy's "caddy" subdirectory.  Links are removed, never
 * followed.  0, or -1 with errno set by the first thing that failed.
 */
int stack_remove_dir(const char *path);
int stack_free_port(void);
/* In a forked child about to exec: stdout and stderr appended to log_path, stdin /dev/null. */
void stack_child_stdio(const char *log_path);

int stack_start(struct stack *s, const char *name, const struct stack_options *opt);
/* Stops everything; fails the current test case if a sanitizer reported anything. */
void stack_stop(struct stack *s);
/* Replaces a stopped ee-api with a fresh one on the same socket and database (CGI: nothing to do). */
int stack_restart_api(struct stack *s);
/* Starts ee-tunneld (again) on the stack's ports; waits for its /health. */
int stack_start_tunneld(struct stack *s);
/* Stops ee-tunneld with SIGTERM (clean drain); returns its exit status, or -1. */
int stack_stop_tunneld(struct stack *s);
/*
 * Stops ee-tunneld (which must exit 0) and starts it with env as its own
 * settings (opt.tunneld_env).  False, with the current case failed, when it
 * did not come up.
 */
bool stack_restart_tunneld(struct stack *s, const char *const *env);
/* "agents" (its sockets) of ee-tunneld's own GET /health, or -1. */
long long stack_tunneld_agents(const struct stack *s);
/* Waits until ee-tunneld holds want sockets; *last is the last count seen. */
bool stack_wait_tunneld_agents(const struct stack *s, long long want, int timeout_ms,
                               long long *last);
/* Stops a process with SIGTERM, then SIGKILL after 5 s; *pid becomes 0. */
void stack_stop_pid(pid_t *pid);

/*
 * Writes the allowlist of repo@tag (JSON text, docs/ATTESTATION.md's shape)
 * into the stack's allowlist directory, replacing any; NULL writes the
 * default one (agent_default_allowlist).  Fails the current case on error.
 */
void stack_allow(struct stack *s, const char *repo, const char *tag, const char *allowlist_json);
/* Removes the allowlist of repo@tag: the release then has none (allowlist_not_found). */
void stack_disallow(struct stack *s, const char *repo, const char *tag);

/* Environment for a process of this stack: tokens, database path. */
void stack_apply_env(const struct stack *s);

/* A request through Caddy (or Apache): path like "/v1/apps". token NULL sends no Authorization. */
int stack_request(struct stack *s, const char *method, const char *path, const char *token,
                  const char *body, struct http_result *out);
/* Same with extra headers (NULL-terminated "Name: value" list). */
int stack_request_ex(struct stack *s, const char *method, const char *path,
                     const char *const *headers, const void *body, size_t body_len,
                     struct http_result *out);

/*
 * Runs ee-api once as CGI, as a web server would: REQUEST_METHOD,
 * REQUEST_URI, CONTENT_LENGTH, HTTP_AUTHORIZATION ... in the environment,
 * the body on stdin, the answer parsed from stdout.
 */
int stack_cgi(struct stack *s, const char *method, const char *path, const char *token,
              const char *body, struct http_result *out);

/*
 * GET /v1/balances/{account} with the admin token: balance_cents, and
 * locked_cents in *locked unless locked is NULL.  Either is -1 when the
 * answer is not a 200 holding it.
 */
long long stack_balance(struct stack *s, const char *account, long long *locked);

/*
 * The one number a query on the stack's database answers (read-only, waiting
 * up to 5 s for a writer), or -1 when it fails.
 */
long long stack_sql_int(const struct stack *s, const char *sql);

/* Opens the stack's database through lib/db.c (for seeding and checks). */
struct ee_db *stack_db(struct stack *s);

/* One agent of an app, with the statuses ee-tunneld would record for it. */
struct stack_agent {
	const char *app_name, *repo, *release_tag, *network, *agent_id;
	const char *attestation; /* "valid", "invalid", or any text: the registry keeps it as is */
	bool sealed;
	const char *health;      /* "pass", "fail", or any text */
	bool connected;
};

/*
 * Registers the agent through lib/registry.c and marks its attestation,
 * health and connection, in one write transaction; fails the current case
 * if any step fails.
 */
void stack_seed_agent(struct stack *s, const struct stack_agent *agent);

/* SHA-256 over every row of every table, to show a request changed nothing. */
int db_digest(const char *db_path, char out[65]);

/* Fails the current case if the ledger invariants do not hold. */
void check_ledger(const char *db_path);

/* Fails the current case if a file holds a sanitizer report. */
void check_no_sanitizer_report(const char *path);

#endif
