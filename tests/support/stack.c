/* stack.c - start, drive and stop the control plane for tests; see stack.h. */
#include "stack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "check.h"
#include "dcapgen.h"
#include "ledger.h"
#include "registry.h"
#include "testagent.h"
#include "timeutil.h"
#include "util.h"

/*
 * The development network's hierarchy: made by the first stack to start,
 * shared by every stack running at once (an agent does not know which
 * stack it talks to), destroyed with the last one.
 */
static struct dcapgen *hierarchy;
static int hierarchy_users;

const char *stack_bin_dir(void)
{
	const char *b = getenv("EE_TEST_BIN");
	return b && *b ? b : "build/bin";
}

enum stack_api_mode stack_api_mode_from_env(void)
{
	const char *mode = getenv("EE_TEST_API_MODE");
	if (!mode || !*mode || strcmp(mode, "fastcgi") == 0)
		return STACK_API_LISTEN_UNIX;
	if (strcmp(mode, "apache-cgi") == 0)
		return STACK_API_APACHE_CGI;
	test_fail(__FILE__, __LINE__, "EE_TEST_API_MODE=%s: want fastcgi or apache-cgi", mode);
	return STACK_API_LISTEN_UNIX;
}

const char *stack_front_name(enum stack_api_mode mode)
{
	return mode == STACK_API_APACHE_CGI ? "Apache" : "Caddy";
}

int stack_make_dir(char *out, size_t size, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(out, size, "%s/ee-test-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	return mkdtemp(out) ? 0 : -1;
}

int stack_remove_dir(const char *path)
{
	int first_errno = 0;
	DIR *d = opendir(path);
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char child[PATH_MAX];
		struct stat st;
		int rc;
		if (snprintf(child, sizeof(child), "%s/%s", path, e->d_name) >= (int)sizeof(child)) {
			errno = ENAMETOOLONG;
			rc = -1;
		} else if (lstat(child, &st) != 0) {
			rc = -1;
		} else {
			rc = S_ISDIR(st.st_mode) ? stack_remove_dir(child) : unlink(child);
		}
		if (rc != 0 && !first_errno)
			first_errno = errno;
	}
	closedir(d);
	if (rmdir(path) != 0 && !first_errno)
		first_errno = errno;
	if (!first_errno)
		return 0;
	errno = first_errno;
	return -1;
}

void stack_child_stdio(const char *log_path)
{
	int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	int devnull = open("/dev/null", O_RDONLY);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	if (devnull >= 0)
		dup2(devnull, STDIN_FILENO);
}

int stack_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return ntohs(a.sin_port);
}

void stack_apply_env(const struct stack *s)
{
	setenv("EE_DB_PATH", s->db_path, 1);
	setenv("EE_LOG_LEVEL", "info", 1);
	if (s->opt.no_tokens) {
		unsetenv("EE_ADMIN_TOKEN");
		unsetenv("EE_LAUNCHER_TOKEN");
		unsetenv("EE_UPTIME_TOKEN");
	} else {
		setenv("EE_ADMIN_TOKEN", TEST_ADMIN_TOKEN, 1);
		setenv("EE_LAUNCHER_TOKEN", TEST_LAUNCHER_TOKEN, 1);
		setenv("EE_UPTIME_TOKEN", TEST_UPTIME_TOKEN, 1);
	}
	for (int i = 0; s->opt.env && s->opt.env[i]; i++)
		putenv((char *)s->opt.env[i]);
}

/* Forks argv with output to log_path; the child gets its own process group. */
static pid_t spawn(const struct stack *s, char *const argv[], const char *log_path)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	setpgid(0, 0);
	stack_apply_env(s);
	stack_child_stdio(log_path);
	execvp(argv[0], argv);
	_exit(127);
}

static bool wait_health(struct stack *s, const char *url)
{
	for (int i = 0; i < 300; i++) {
		struct http_result r;
		int rc = http_do("GET", url, NULL, NULL, 0, &r);
		long status = r.status;
		http_result_free(&r);
		if (rc == 0 && status == 200)
			return true;
		int st;
		if (s->api_pid > 0 && waitpid(s->api_pid, &st, WNOHANG) == s->api_pid) {
			s->api_pid = 0;
			return false;
		}
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return false;
}

/* The systemd way: a listening socket on fd 3 and LISTEN_FDS/LISTEN_PID naming it. */
static pid_t spawn_socket_activated(const struct stack *s, const char *api, const char *log_path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un addr = {0};
	addr.sun_family = AF_UNIX;
	size_t len = strlen(s->socket_path);
	if (len >= sizeof(addr.sun_path)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	memcpy(addr.sun_path, s->socket_path, len + 1);
	unlink(s->socket_path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 128) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		stack_apply_env(s);
		int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (logfd >= 0) {
			dup2(logfd, STDOUT_FILENO);
			dup2(logfd, STDERR_FILENO);
		}
		if (fd != 3) {
			dup2(fd, 3);
			close(fd);
		}
		char pidtext[32];
		snprintf(pidtext, sizeof(pidtext), "%d", (int)getpid());
		setenv("LISTEN_FDS", "1", 1);
		setenv("LISTEN_PID", pidtext, 1);
		execl(api, api, (char *)NULL);
		_exit(127);
	}
	close(fd);
	return pid;
}

static int start_api(struct stack *s)
{
	char api[300], workers[16], log[320], listen_addr[64];
	snprintf(api, sizeof(api), "%s/ee-api", s->bin_dir);
	snprintf(workers, sizeof(workers), "%d", s->opt.workers);
	snprintf(log, sizeof(log), "%s/ee-api.log", s->dir);
	switch (s->opt.api_mode) {
	case STACK_API_LISTEN_UNIX: {
		snprintf(s->upstream, sizeof(s->upstream), "unix/%s", s->socket_path);
		char *argv[] = {api, "--listen", s->socket_path, "--workers", workers, NULL};
		s->api_pid = spawn(s, argv, log);
		break;
	}
	case STACK_API_LISTEN_TCP: {
		int port = stack_free_port();
		snprintf(listen_addr, sizeof(listen_addr), "127.0.0.1:%d", port);
		snprintf(s->upstream, sizeof(s->upstream), "%s", listen_addr);
		char *argv[] = {api, "--listen", listen_addr, "--workers", workers, NULL};
		s->api_pid = spawn(s, argv, log);
		break;
	}
	case STACK_API_SPAWN_FCGI: {
		snprintf(s->upstream, sizeof(s->upstream), "unix/%s", s->socket_path);
		char *argv[] = {"spawn-fcgi", "-n", "-s", s->socket_path, "--", api, NULL};
		s->api_pid = spawn(s, argv, log);
		break;
	}
	case STACK_API_SOCKET_ACTIVATION:
		snprintf(s->upstream, sizeof(s->upstream), "unix/%s", s->socket_path);
		s->api_pid = spawn_socket_activated(s, api, log);
		break;
	case STACK_API_APACHE_CGI:
		return 0; /* Apache starts ee-api afresh for every request */
	}
	if (s->api_pid < 0)
		return -1;
	if (s->opt.api_mode == STACK_API_LISTEN_TCP)
		return 0; /* Caddy's health wait covers it */
	/* The socket appears once something listens on it. */
	for (int i = 0; i < 200; i++) {
		struct stat st;
		if (stat(s->socket_path, &st) == 0)
			return 0;
		struct timespec ts = {0, 25 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* Forks ee-tunneld with its own settings on the stack's ports. */
static pid_t spawn_tunneld(const struct stack *s, const char *log_path)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	setpgid(0, 0);
	stack_apply_env(s);
	char control[16], proxy[16];
	snprintf(control, sizeof(control), "%d", s->control_port);
	snprintf(proxy, sizeof(proxy), "%d", s->proxy_port);
	setenv("EE_CONTROL_BIND", "127.0.0.1", 1);
	setenv("EE_CONTROL_PORT", control, 1);
	setenv("EE_PROXY_BIND", "127.0.0.1", 1);
	setenv("EE_PROXY_PORT", proxy, 1);
	setenv("EE_DEV_ROOT_CA", s->dev_root_path, 1);
	setenv("EE_DEV_COLLATERAL_FILE", s->dev_collateral_path, 1);
	setenv("EE_ALLOWLIST_DIR", s->allowlist_dir, 1);
	/* Every test agent comes from 127.0.0.1: the connect rate is test_limits' own case. */
	setenv("EE_CONNECT_RATE_LIMIT", "0", 1);
	for (int i = 0; s->opt.tunneld_env && s->opt.tunneld_env[i]; i++)
		putenv((char *)s->opt.tunneld_env[i]);
	stack_child_stdio(log_path);
	char bin[300];
	snprintf(bin, sizeof(bin), "%s/ee-tunneld", s->bin_dir);
	execl(bin, bin, (char *)NULL);
	_exit(127);
}

int stack_start_tunneld(struct stack *s)
{
	char log[320], url[128];
	snprintf(log, sizeof(log), "%s/ee-tunneld.log", s->dir);
	s->tunneld_pid = spawn_tunneld(s, log);
	if (s->tunneld_pid < 0)
		return -1;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", s->control_port);
	for (int i = 0; i < 400; i++) {
		struct http_result r;
		int rc = http_do("GET", url, NULL, NULL, 0, &r);
		long status = r.status;
		http_result_free(&r);
		if (rc == 0 && status == 200)
			return 0;
		int st;
		if (waitpid(s->tunneld_pid, &st, WNOHANG) == s->tunneld_pid) {
			s->tunneld_pid = 0;
			return -1;
		}
		struct timespec ts = {0, 25 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -1;
}

int stack_stop_tunneld(struct stack *s)
{
	if (s->tunneld_pid <= 0)
		return -1;
	kill(s->tunneld_pid, SIGTERM);
	for (int i = 0; i < 800; i++) {
		int status;
		if (waitpid(s->tunneld_pid, &status, WNOHANG) == s->tunneld_pid) {
			s->tunneld_pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		struct timespec ts = {0, 25 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	kill(s->tunneld_pid, SIGKILL);
	waitpid(s->tunneld_pid, NULL, 0);
	s->tunneld_pid = 0;
	return -1;
}

bool stack_restart_tunneld(struct stack *s, const char *const *env)
{
	if (s->tunneld_pid > 0)
		CHECK_INT(stack_stop_tunneld(s), 0);
	s->opt.tunneld_env = env;
	if (stack_start_tunneld(s) != 0) {
		test_fail(__FILE__, __LINE__, "ee-tunneld did not start (see %s/ee-tunneld.log)", s->dir);
		return false;
	}
	return true;
}

long long stack_tunneld_agents(const struct stack *s)
{
	char url[96];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", s->control_port);
	struct http_result r;
	long long n = -1;
	if (http_do("GET", url, NULL, NULL, 0, &r) == 0 && r.status == 200)
		n = http_json_int(&r, "agents", -1);
	http_result_free(&r);
	return n;
}

bool stack_wait_tunneld_agents(const struct stack *s, long long want, int timeout_ms,
                               long long *last)
{
	struct timespec t0, now, pause = {0, 20 * 1000 * 1000};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		*last = stack_tunneld_agents(s);
		if (*last == want)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long elapsed_ms = (now.tv_sec - t0.tv_sec) * 1000LL +
		                       (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (elapsed_ms >= timeout_ms)
			return false;
		nanosleep(&pause, NULL);
	}
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	bool ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Takes (or makes) the hierarchy, writes its root and collateral and the allowlist directory. */
static int devnet_join(struct stack *s)
{
	if (!hierarchy) {
		struct dcapgen_options o;
		dcapgen_defaults_at(&o, time(NULL));
		if (dcapgen_create(&o, &hierarchy) != 0)
			return -1;
		agent_set_hierarchy(hierarchy);
	}
	hierarchy_users++;
	s->holds_hierarchy = true;
	snprintf(s->dev_root_path, sizeof(s->dev_root_path), "%s/dev-root.pem", s->dir);
	snprintf(s->dev_collateral_path, sizeof(s->dev_collateral_path), "%s/dev-collateral.json",
	         s->dir);
	snprintf(s->allowlist_dir, sizeof(s->allowlist_dir), "%s/allowlists", s->dir);
	char *root = NULL, *collateral = NULL;
	int rc = dcapgen_root_pem(hierarchy, &root) == 0 &&
	                 dcapgen_collateral_json(hierarchy, &collateral) == 0 &&
	                 write_text(s->dev_root_path, root) == 0 &&
	                 write_text(s->dev_collateral_path, collateral) == 0 &&
	                 mkdir(s->allowlist_dir, 0700) == 0 &&
	                 agent_add_allowlist_dir(s->allowlist_dir) == 0
	             ? 0
	             : -1;
	free(root);
	free(collateral);
	return rc;
}

static void devnet_leave(struct stack *s)
{
	if (!s->holds_hierarchy)
		return;
	s->holds_hierarchy = false;
	agent_remove_allowlist_dir(s->allowlist_dir);
	if (--hierarchy_users == 0) {
		agent_set_hierarchy(NULL);
		dcapgen_destroy(hierarchy);
		hierarchy = NULL;
	}
}

void stack_allow(struct stack *s, const char *repo, const char *tag, const char *allowlist_json)
{
	if (agent_write_allowlist(s->allowlist_dir, repo, tag, allowlist_json, true) != 0)
		test_fail(__FILE__, __LINE__, "cannot write the allowlist of %s@%s into %s", repo, tag,
		          s->allowlist_dir);
}

void stack_disallow(struct stack *s, const char *repo, const char *tag)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s/%s.json", s->allowlist_dir, repo, tag);
	if (unlink(path) != 0 && errno != ENOENT)
		test_fail(__FILE__, __LINE__, "cannot remove %s: %s", path, strerror(errno));
}

/*
 * STACK_API_APACHE_CGI: Debian's Apache in Caddy's place, running ee-api as
 * CGI the way a shared host does (cgi-bin/README.md).  The stack's
 * directory stands for the host user's home:
 *   htdocs/            the document root: cgi-bin/.htaccess and
 *                      cgi-bin/ee-api.cgi, copied unchanged
 *   ee-api.env         the settings file ee-api.cgi reads (tokens), mode 600
 *   ee-api             a copy of the built program, where ee-api.cgi looks
 *   control-plane.db   made before Apache starts, by the user CGI runs as
 *   sanitizer/         sanitizer reports of the CGI runs (log_path)
 *   apache/            ServerRoot: httpd.conf, error.log, access.log
 */
#define APACHE_BIN_DEFAULT "/usr/sbin/apache2"        /* EE_TEST_APACHE */
#define APACHE_MODULES_DEFAULT "/usr/lib/apache2/modules" /* EE_TEST_APACHE_MODULES */
#define CGI_SOURCE_DEFAULT "cgi-bin"                  /* EE_TEST_CGI_DIR */
#define APACHE_START_TRIES 300                        /* of 50 ms */

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v && *v ? v : fallback;
}

/*
 * Who CGI programs run as: the test's own user; as root (CI), www-data,
 * since Apache refuses to run them as root.  That user then owns the
 * stack's directory and database, as the host user does on a shared host;
 * root still reads and writes them (SQLite gives the -wal and -shm files
 * root creates to the database's owner).
 */
struct cgi_user {
	bool is_other; /* Apache switches to it (User/Group) */
	uid_t uid;
	gid_t gid;
};

static int cgi_user_get(struct cgi_user *u)
{
	memset(u, 0, sizeof(*u));
	u->uid = geteuid();
	u->gid = getegid();
	if (u->uid != 0)
		return 0;
	const struct passwd *pw = getpwnam("www-data");
	if (!pw)
		pw = getpwnam("nobody");
	if (!pw)
		return -1;
	u->is_other = true;
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	return 0;
}

static int give_to(const struct cgi_user *u, const char *path)
{
	return u->is_other ? chown(path, u->uid, u->gid) : 0;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	int rc = out < 0 ? -1 : 0;
	char chunk[65536];
	ssize_t n = 0;
	while (rc == 0 && (n = read(in, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno != EINTR)
				rc = -1;
			continue;
		}
		for (ssize_t off = 0; rc == 0 && off < n;) {
			ssize_t w = write(out, chunk + off, (size_t)(n - off));
			if (w < 0 && errno != EINTR)
				rc = -1;
			else if (w > 0)
				off += w;
		}
	}
	close(in);
	if (out >= 0) {
		if (fchmod(out, mode) != 0) /* whatever the umask */
			rc = -1;
		if (close(out) != 0)
			rc = -1;
	}
	return rc;
}

/* ee-api.env: what stack_apply_env sets, as NAME=value lines (cgi-bin/ee-api.cgi). */
static int write_cgi_settings(const struct stack *s, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fprintf(f, "# written by tests/support/stack.c\nEE_DB_PATH=%s\nEE_LOG_LEVEL=info\n",
	        s->db_path);
	if (!s->opt.no_tokens)
		fprintf(f, "EE_ADMIN_TOKEN=%s\nEE_LAUNCHER_TOKEN=%s\nEE_UPTIME_TOKEN=%s\n",
		        TEST_ADMIN_TOKEN, TEST_LAUNCHER_TOKEN, TEST_UPTIME_TOKEN);
	for (int i = 0; s->opt.env && s->opt.env[i]; i++)
		fprintf(f, "%s\n", s->opt.env[i]);
	bool ok = !ferror(f);
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Creates the database as the CGI user, so that root (ee-tunneld, the test) never makes it. */
static int migrate_as(const struct stack *s, const struct cgi_user *u, const char *api)
{
	char log[340];
	snprintf(log, sizeof(log), "%s/ee-api.log", s->dir);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (u->is_other &&
		    (setgroups(0, NULL) != 0 || setgid(u->gid) != 0 || setuid(u->uid) != 0))
			_exit(126);
		stack_apply_env(s);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execl(api, api, "--migrate", (char *)NULL);
		_exit(127);
	}
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* The home-like layout above, up to (not including) Apache's configuration. */
static int apache_prepare(struct stack *s)
{
	struct cgi_user u;
	const char *source = env_or("EE_TEST_CGI_DIR", CGI_SOURCE_DEFAULT);
	char htdocs[340], from[PATH_MAX], to[PATH_MAX], sanitizer[340];
	snprintf(s->apache_dir, sizeof(s->apache_dir), "%s/apache", s->dir);
	snprintf(htdocs, sizeof(htdocs), "%s/htdocs", s->dir);
	snprintf(sanitizer, sizeof(sanitizer), "%s/sanitizer", s->dir);
	if (cgi_user_get(&u) != 0 || give_to(&u, s->dir) != 0 || mkdir(htdocs, 0755) != 0 ||
	    give_to(&u, htdocs) != 0 || mkdir(s->apache_dir, 0755) != 0 ||
	    give_to(&u, s->apache_dir) != 0 || mkdir(sanitizer, 0755) != 0 ||
	    give_to(&u, sanitizer) != 0)
		return -1;
	static const struct {
		const char *name;
		mode_t mode;
	} shipped[] = {{".htaccess", 0644}, {"ee-api.cgi", 0755}};
	for (size_t i = 0; i < sizeof(shipped) / sizeof(shipped[0]); i++) {
		snprintf(from, sizeof(from), "%s/%s", source, shipped[i].name);
		snprintf(to, sizeof(to), "%s/%s", htdocs, shipped[i].name);
		if (copy_file(from, to, shipped[i].mode) != 0 || give_to(&u, to) != 0)
			return -1;
	}
	/* A copy: the build directory need not be readable by the CGI user. */
	snprintf(from, sizeof(from), "%s/ee-api", s->bin_dir);
	snprintf(to, sizeof(to), "%s/ee-api", s->dir);
	if (copy_file(from, to, 0755) != 0 || give_to(&u, to) != 0)
		return -1;
	char settings[340];
	snprintf(settings, sizeof(settings), "%s/ee-api.env", s->dir);
	if (write_cgi_settings(s, settings) != 0 || give_to(&u, settings) != 0)
		return -1;
	return migrate_as(s, &u, to);
}

/* Sanitizer options for CGI runs: the test's own, with reports to files in <dir>/sanitizer. */
static void apache_sanitizer_env(FILE *f, const struct stack *s, const char *name)
{
	const char *own = getenv(name);
	if (own && strpbrk(own, "\"\\\n"))
		own = NULL; /* not expressible in httpd.conf; tests/run never sets such */
	fprintf(f, "SetEnv %s \"%s%slog_path=%s/sanitizer/report\"\n", name, own ? own : "",
	        own && *own ? ":" : "", s->dir);
}

static int apache_write_conf(const struct stack *s, const char *path)
{
	struct cgi_user u;
	if (cgi_user_get(&u) != 0)
		return -1;
	const char *modules = env_or("EE_TEST_APACHE_MODULES", APACHE_MODULES_DEFAULT);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	const char *a = s->apache_dir;
	fprintf(f,
	        "# written by tests/support/stack.c: one test stack's Apache, loopback only\n"
	        "ServerRoot \"%s\"\nServerName 127.0.0.1\nListen 127.0.0.1:%d\n"
	        "PidFile \"%s/apache2.pid\"\nErrorLog \"%s/error.log\"\nLogLevel warn\n"
	        "DefaultRuntimeDir \"%s\"\nMutex file:%s default\n",
	        a, s->port, a, a, a, a);
	static const char *const modules_used[][2] = {
		{"mpm_prefork_module", "mod_mpm_prefork.so"}, {"authz_core_module", "mod_authz_core.so"},
		{"mime_module", "mod_mime.so"},               {"env_module", "mod_env.so"},
		{"rewrite_module", "mod_rewrite.so"},         {"cgi_module", "mod_cgi.so"},
	};
	for (size_t i = 0; i < sizeof(modules_used) / sizeof(modules_used[0]); i++)
		fprintf(f, "LoadModule %s %s/%s\n", modules_used[i][0], modules, modules_used[i][1]);
	if (u.is_other)
		fprintf(f, "User #%ld\nGroup #%ld\n", (long)u.uid, (long)u.gid);
	fprintf(f,
	        "TypesConfig /dev/null\nTimeout 60\nKeepAlive On\n"
	        "StartServers 2\nMinSpareServers 2\nMaxSpareServers 16\nMaxRequestWorkers 64\n"
	        "LogFormat \"%%h \\\"%%r\\\" %%>s %%b %%Dus\" stack\nCustomLog \"%s/access.log\" stack\n"
	        "DocumentRoot \"%s/htdocs\"\nAccessFileName .htaccess\n"
	        "<Directory />\n\tAllowOverride None\n\tOptions None\n\tRequire all denied\n"
	        "</Directory>\n"
	        "# What a shared host lets .htaccess change, and nothing turned on here:\n"
	        "# cgi-bin/.htaccess must enable CGI and rewriting itself.\n"
	        "<Directory \"%s/htdocs\">\n"
	        "\tAllowOverride AuthConfig FileInfo Indexes Limit "
	        "Options=ExecCGI,Indexes,SymLinksIfOwnerMatch,FollowSymLinks\n"
	        "\tOptions None\n\tRequire all granted\n</Directory>\n"
	        "<Files \".ht*\">\n\tRequire all denied\n</Files>\n"
	        "# A path, not a secret: the tokens are in the file.\n"
	        "SetEnv EE_CGI_CONFIG \"%s/ee-api.env\"\n",
	        a, s->dir, s->dir, s->dir);
	apache_sanitizer_env(f, s, "ASAN_OPTIONS");
	apache_sanitizer_env(f, s, "UBSAN_OPTIONS");
	bool ok = !ferror(f);
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Starts Apache on a free loopback port and waits for /health through ee-api.cgi. */
static int apache_start(struct stack *s)
{
	char conf[360], log[360], url[128];
	s->port = stack_free_port();
	snprintf(s->base_url, sizeof(s->base_url), "http://127.0.0.1:%d", s->port);
	snprintf(conf, sizeof(conf), "%s/httpd.conf", s->apache_dir);
	snprintf(log, sizeof(log), "%s/stderr.log", s->apache_dir);
	if (s->port <= 0 || apache_write_conf(s, conf) != 0)
		return -1;
	const char *apache = env_or("EE_TEST_APACHE", APACHE_BIN_DEFAULT);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setpgid(0, 0);
		/* Apache goes when the test goes, however the test ends. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
			_exit(126);
		stack_child_stdio(log);
		execl(apache, apache, "-f", conf, "-DFOREGROUND", (char *)NULL);
		_exit(127);
	}
	s->apache_pid = pid;
	snprintf(url, sizeof(url), "%s/health", s->base_url);
	for (int i = 0; i < APACHE_START_TRIES; i++) {
		struct http_result r;
		int rc = http_do("GET", url, NULL, NULL, 0, &r);
		long status = r.status;
		http_result_free(&r);
		if (rc == 0 && status == 200)
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			s->apache_pid = 0;
			return -1;
		}
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	stack_stop_pid(&s->apache_pid);
	return -1;
}

/* Fails the current case if a CGI run left a report in <dir>/sanitizer; shows the first. */
static void check_no_cgi_sanitizer_reports(const struct stack *s)
{
	char dir[340], first[PATH_MAX] = "";
	snprintf(dir, sizeof(dir), "%s/sanitizer", s->dir);
	DIR *d = opendir(dir);
	if (!d)
		return;
	int reports = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.' && reports++ == 0)
			snprintf(first, sizeof(first), "%s/%s", dir, e->d_name);
	}
	closedir(d);
	if (reports == 0)
		return;
	check_no_sanitizer_report(first);
	test_fail(__FILE__, __LINE__, "%d sanitizer report(s) from CGI runs in %s", reports, dir);
}

int stack_start(struct stack *s, const char *name, const struct stack_options *opt)
{
	memset(s, 0, sizeof(*s));
	if (opt)
		s->opt = *opt;
	if (s->opt.workers <= 0)
		s->opt.workers = 2;
	snprintf(s->bin_dir, sizeof(s->bin_dir), "%s", stack_bin_dir());
	if (stack_make_dir(s->dir, sizeof(s->dir), name) != 0)
		return -1;
	snprintf(s->db_path, sizeof(s->db_path), "%s/control-plane.db", s->dir);
	snprintf(s->socket_path, sizeof(s->socket_path), "%s/ee-api.sock", s->dir);
	if (devnet_join(s) != 0) {
		test_fail(__FILE__, __LINE__, "cannot set up the development network in %s", s->dir);
		return -1;
	}
	if (s->opt.api_mode == STACK_API_APACHE_CGI) {
		if (apache_prepare(s) != 0) {
			test_fail(__FILE__, __LINE__,
			          "cannot lay out ee-api for Apache in %s (see ee-api.log there)", s->dir);
			return -1;
		}
	} else if (start_api(s) != 0) {
		test_fail(__FILE__, __LINE__, "ee-api did not start (see %s/ee-api.log)", s->dir);
		return -1;
	}
	if (!s->opt.no_tunneld) {
		s->control_port = stack_free_port();
		s->proxy_port = stack_free_port();
		if (stack_start_tunneld(s) != 0) {
			test_fail(__FILE__, __LINE__, "ee-tunneld did not start (see %s/ee-tunneld.log)",
			          s->dir);
			return -1;
		}
	}
	if (s->opt.api_mode == STACK_API_APACHE_CGI) {
		if (apache_start(s) != 0) {
			test_fail(__FILE__, __LINE__, "Apache did not serve /health (see %s/error.log)",
			          s->apache_dir);
			return -1;
		}
		return 0;
	}
	if (s->opt.no_caddy)
		return 0;
	s->port = stack_free_port();
	snprintf(s->base_url, sizeof(s->base_url), "http://127.0.0.1:%d", s->port);
	char port[16], log[320], xdg[320];
	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(log, sizeof(log), "%s/caddy.log", s->dir);
	snprintf(xdg, sizeof(xdg), "%s/caddy", s->dir);
	setenv("EE_HTTP_PORT", port, 1);
	setenv("EE_API_UPSTREAM", s->upstream, 1);
	char control[64], proxy[64];
	snprintf(control, sizeof(control), "127.0.0.1:%d", s->control_port ? s->control_port : 1);
	snprintf(proxy, sizeof(proxy), "127.0.0.1:%d", s->proxy_port ? s->proxy_port : 1);
	setenv("EE_TUNNELD_CONTROL", control, 1);
	setenv("EE_TUNNELD_PROXY", proxy, 1);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	setenv("XDG_DATA_HOME", xdg, 1);
	const char *caddyfile = getenv("EE_TEST_CADDYFILE");
	char *argv[] = {"caddy", "run", "--config",
	                (char *)(caddyfile && *caddyfile ? caddyfile : "caddy/Caddyfile"),
	                "--adapter", "caddyfile", NULL};
	s->caddy_pid = spawn(s, argv, log);
	char url[128];
	snprintf(url, sizeof(url), "%s/health", s->base_url);
	if (s->caddy_pid < 0 || !wait_health(s, url)) {
		test_fail(__FILE__, __LINE__, "stack did not come up (see %s)", s->dir);
		return -1;
	}
	return 0;
}

void stack_stop_pid(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(*pid, NULL, WNOHANG) == *pid) {
			*pid = 0;
			return;
		}
		struct timespec ts = {0, 25 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	kill(-*pid, SIGKILL);
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

void check_no_sanitizer_report(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[1024];
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "AddressSanitizer") || strstr(line, "LeakSanitizer") ||
		    strstr(line, "runtime error:") || strstr(line, "UndefinedBehaviorSanitizer")) {
			test_fail(__FILE__, __LINE__, "sanitizer report in %s: %s", path, line);
			break;
		}
	}
	fclose(f);
}

void stack_stop(struct stack *s)
{
	stack_stop_pid(&s->apache_pid);
	stack_stop_pid(&s->caddy_pid);
	stack_stop_pid(&s->tunneld_pid);
	stack_stop_pid(&s->api_pid);
	devnet_leave(s);
	char log[320];
	snprintf(log, sizeof(log), "%s/ee-api.log", s->dir);
	check_no_sanitizer_report(log);
	snprintf(log, sizeof(log), "%s/ee-tunneld.log", s->dir);
	check_no_sanitizer_report(log);
	snprintf(log, sizeof(log), "%s/cgi.log", s->dir);
	check_no_sanitizer_report(log);
	if (s->opt.api_mode == STACK_API_APACHE_CGI && s->apache_dir[0]) {
		char error_log[360];
		snprintf(error_log, sizeof(error_log), "%s/error.log", s->apache_dir);
		check_no_sanitizer_report(error_log);
		check_no_cgi_sanitizer_reports(s);
	}
	if (!getenv("EE_TEST_KEEP") && !test_case_failed() && stack_remove_dir(s->dir) != 0)
		fprintf(stderr, "could not remove %s: %s\n", s->dir, strerror(errno));
}

int stack_restart_api(struct stack *s)
{
	stack_stop_pid(&s->api_pid);
	return start_api(s);
}

int stack_request_ex(struct stack *s, const char *method, const char *path,
                     const char *const *headers, const void *body, size_t body_len,
                     struct http_result *out)
{
	char url[4096];
	snprintf(url, sizeof(url), "%s%s", s->base_url, path);
	return http_do(method, url, headers, body, body_len, out);
}

int stack_request(struct stack *s, const char *method, const char *path, const char *token,
                  const char *body, struct http_result *out)
{
	char auth[256];
	const char *headers[3] = {NULL, NULL, NULL};
	int n = 0;
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		headers[n++] = auth;
	}
	if (body)
		headers[n++] = "Content-Type: application/json";
	return stack_request_ex(s, method, path, headers, body, body ? strlen(body) : 0, out);
}

int stack_cgi(struct stack *s, const char *method, const char *path, const char *token,
              const char *body, struct http_result *out)
{
	memset(out, 0, sizeof(*out));
	int in[2], outp[2];
	if (pipe(in) != 0 || pipe(outp) != 0)
		return -1;
	size_t body_len = body ? strlen(body) : 0;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(in[0], STDIN_FILENO);
		dup2(outp[1], STDOUT_FILENO);
		close(in[1]);
		close(outp[0]);
		char log[320];
		snprintf(log, sizeof(log), "%s/cgi.log", s->dir);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0)
			dup2(fd, STDERR_FILENO);
		stack_apply_env(s);
		char len[32], auth[256];
		snprintf(len, sizeof(len), "%zu", body_len);
		setenv("GATEWAY_INTERFACE", "CGI/1.1", 1);
		setenv("REQUEST_METHOD", method, 1);
		setenv("REQUEST_URI", path, 1);
		setenv("SCRIPT_NAME", "/cgi-bin/ee-api.cgi", 1);
		setenv("SERVER_PROTOCOL", "HTTP/1.1", 1);
		setenv("REMOTE_ADDR", "127.0.0.1", 1);
		const char *q = strchr(path, '?');
		setenv("QUERY_STRING", q ? q + 1 : "", 1);
		if (body) {
			setenv("CONTENT_LENGTH", len, 1);
			setenv("CONTENT_TYPE", "application/json", 1);
		}
		if (token) {
			snprintf(auth, sizeof(auth), "Bearer %s", token);
			setenv("HTTP_AUTHORIZATION", auth, 1);
		}
		char api[300];
		snprintf(api, sizeof(api), "%s/ee-api", s->bin_dir);
		execl(api, api, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(outp[1]);
	size_t off = 0;
	while (off < body_len) {
		ssize_t n = write(in[1], body + off, body_len - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(in[1]);
	struct buf raw;
	buf_init(&raw);
	char chunk[4096];
	ssize_t n;
	while ((n = read(outp[0], chunk, sizeof(chunk))) > 0)
		buf_append(&raw, chunk, (size_t)n);
	close(outp[0]);
	int status;
	waitpid(pid, &status, 0);
	if (!raw.data) {
		buf_free(&raw);
		return -1;
	}
	char *sep = strstr(raw.data, "\r\n\r\n");
	if (!sep) {
		buf_free(&raw);
		return -1;
	}
	*sep = '\0';
	out->headers = strdup(raw.data);
	out->body = strdup(sep + 4);
	out->body_len = raw.len - (size_t)(sep + 4 - raw.data);
	if (strncmp(raw.data, "Status: ", 8) == 0)
		out->status = strtol(raw.data + 8, NULL, 10);
	if (out->body_len)
		out->json = json_tokener_parse(out->body);
	buf_free(&raw);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

long long stack_sql_int(const struct stack *s, const char *sql)
{
	sqlite3 *h = NULL;
	long long n = -1;
	if (sqlite3_open_v2(s->db_path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(h, 5000);
		sqlite3_stmt *stmt = NULL;
		if (sqlite3_prepare_v2(h, sql, -1, &stmt, NULL) == SQLITE_OK &&
		    sqlite3_step(stmt) == SQLITE_ROW)
			n = sqlite3_column_int64(stmt, 0);
		sqlite3_finalize(stmt);
	}
	sqlite3_close(h);
	return n;
}

long long stack_balance(struct stack *s, const char *account, long long *locked)
{
	char path[320];
	snprintf(path, sizeof(path), "/v1/balances/%s", account);
	struct http_result r;
	stack_request(s, "GET", path, TEST_ADMIN_TOKEN, NULL, &r);
	bool ok = r.status == 200;
	long long balance = ok ? http_json_int(&r, "balance_cents", -1) : -1;
	if (locked)
		*locked = ok ? http_json_int(&r, "locked_cents", -1) : -1;
	http_result_free(&r);
	return balance;
}

struct ee_db *stack_db(struct stack *s)
{
	struct ee_db *db;
	struct ee_error err;
	struct ee_db_options opts = {5000, "FULL", true};
	if (db_open(s->db_path, &opts, &db, &err) != 0) {
		test_fail(__FILE__, __LINE__, "cannot open %s: %s", s->db_path, err.reason);
		return NULL;
	}
	return db;
}

int db_digest(const char *db_path, char out[65])
{
	sqlite3 *h;
	if (sqlite3_open_v2(db_path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(h);
		return -1;
	}
	sqlite3_busy_timeout(h, 5000);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	sqlite3_stmt *tables;
	sqlite3_prepare_v2(h, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", -1,
	                   &tables, NULL);
	while (sqlite3_step(tables) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(tables, 0);
		char sql[256];
		snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\" ORDER BY 1", name);
		sqlite3_stmt *rows;
		if (sqlite3_prepare_v2(h, sql, -1, &rows, NULL) != SQLITE_OK)
			continue;
		EVP_DigestUpdate(md, name, strlen(name));
		while (sqlite3_step(rows) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(rows); c++) {
				const unsigned char *v = sqlite3_column_text(rows, c);
				int len = sqlite3_column_bytes(rows, c);
				EVP_DigestUpdate(md, v ? (const void *)v : "\x01NULL", v ? (size_t)len : 5);
				EVP_DigestUpdate(md, "\x00", 1);
			}
			EVP_DigestUpdate(md, "\n", 1);
		}
		sqlite3_finalize(rows);
	}
	sqlite3_finalize(tables);
	sqlite3_close(h);
	unsigned char digest[32];
	unsigned int dlen;
	EVP_DigestFinal_ex(md, digest, &dlen);
	EVP_MD_CTX_free(md);
	util_hex_encode(digest, 32, out);
	return 0;
}

void check_ledger(const char *db_path)
{
	struct ee_db *db;
	struct ee_error err;
	struct ee_db_options opts = {5000, "FULL", false};
	if (db_open(db_path, &opts, &db, &err) != 0) {
		test_fail(__FILE__, __LINE__, "cannot open %s: %s", db_path, err.reason);
		return;
	}
	if (ledger_check_invariants(db, &err) != 0)
		test_fail(__FILE__, __LINE__, "ledger invariant broken: %s", err.reason);
	db_close(db);
}

void stack_seed_agent(struct stack *s, const struct stack_agent *a)
{
	struct ee_db *db = stack_db(s);
	if (!db)
		return;
	struct ee_error err;
	ee_error_clear(&err);
	struct registry_policy policy = {30, 3, NULL};
	int64_t now = time_now_ms();
	CHECK(db_begin_write(db, &err) == 0, "%s", err.reason);
	CHECK(registry_register_agent(db, &policy, a->app_name, a->repo, a->release_tag, a->network,
	                              a->agent_id, now, &err) == 0,
	      "%s", err.reason);
	CHECK(registry_mark_attested(db, a->agent_id, a->attestation, a->sealed, now, &err) == 0,
	      "%s", err.reason);
	CHECK(registry_mark_health(db, a->agent_id, a->health, now, &err) == 0, "%s", err.reason);
	CHECK(registry_mark_connection(db, a->agent_id, a->connected, "tunnel-x", now, &err) == 0,
	      "%s", err.reason);
	CHECK(db_commit(db, &err) == 0, "%s", err.reason);
	db_close(db);
}
