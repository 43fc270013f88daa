/*
 * test_deploy.c - the deployment files, each checked against the real
 * thing (docs/DEPLOY.md):
 *
 *   - every Caddyfile in caddy/ (and the tests') passes `caddy validate`
 *     with Debian's caddy; tls-cloudflare.caddy, whose DNS module Debian's
 *     caddy lacks, fails for that module and nothing else, and validates
 *     without its one `dns` line;
 *   - Caddyfile.production, run by real Caddy with its internal CA on
 *     loopback, routes control.<domain>, control-direct.<domain> and
 *     *.app.<domain> over TLS to ee-api and ee-tunneld (websocket upgrades
 *     included), and tls-acme.caddy's on-demand "ask" site says yes only for
 *     an app ee-api allows;
 *   - every systemd unit in deploy/systemd passes `systemd-analyze verify`
 *     (its /usr/local/bin programs replaced by stubs in a copy) and carries
 *     the hardening and settings DEPLOY.md promises; the units, the
 *     Caddyfile and the compose file agree on the FastCGI socket and ports;
 *   - deploy/env.example and deploy/agent.env.example list every variable
 *     the programs, production scripts and production Caddyfiles read
 *     (found in the sources at run time), nothing they do not read, each
 *     documented, with the defaults docs/ tables give;
 *   - docker-compose.yml and the Dockerfile (no Docker daemon or registry
 *     here: read, not run) have their services, volumes and stages, and
 *     every file they copy exists;
 *   - deploy/install into a staging directory installs every file the
 *     units and Caddyfile name, and keeps an existing env file;
 *   - deploy/ee-backup, run again and again while clients transfer money
 *     through Caddy, writes complete copies holding every transfer answered
 *     before it began; deploy/ee-restore puts one into a new stack, whose
 *     ee-api serves it with the ledger intact; bad inputs fail clearly and
 *     change nothing.
 *
 * Run from the repository's top directory (tests/run does).  make run's
 * own files (deploy/run-local, caddy/Caddyfile's variables) are
 * development tools, documented in docs/CONFIGURATION.md, and are not
 * part of the production variable lists.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sqlite3.h>

#include "check.h"
#include "client.h"
#include "stack.h"

#define DOMAIN "example.test"
#define OUTPUT_MAX (4 * 1024 * 1024)
#define NAMES_MAX 512
#define TRANSFER_CLIENTS 3
#define TRANSFERS_MAX 4000   /* per client: the loop is bounded in count ... */
#define TRANSFER_SECONDS 60  /* ... and in time */
#define BACKUP_ROUNDS 4
#define ACCOUNTS 4

static char scratch[256]; /* this run's own directory */

/* ---- small helpers --------------------------------------------------------- */

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static long long monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 2) {
			char *p = realloc(buf, cap * 2);
			if (!p) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = p;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	bool ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static bool is_executable_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/*
 * Runs argv with stdout and stderr captured together into *out (always set,
 * caller frees).  env: "NAME=value" to set, "NAME" to unset, NULL-terminated.
 * Returns the exit status, 128+signal, or -1 when it could not run.  A
 * program still running after timeout_s is killed.
 */
static int run(const char *const argv[], const char *const env[], int timeout_s, char **out)
{
	*out = calloc(1, 1);
	int fds[2];
	if (!*out || pipe(fds) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		for (int i = 0; env && env[i]; i++) {
			if (strchr(env[i], '='))
				putenv(strdup(env[i]));
			else
				unsetenv(env[i]);
		}
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	size_t len = 0;
	long long deadline = monotonic_ms() + (long long)timeout_s * 1000;
	bool killed = false;
	for (;;) {
		struct pollfd p = {fds[0], POLLIN, 0};
		long long left = deadline - monotonic_ms();
		if (left <= 0 && !killed) {
			kill(pid, SIGKILL);
			killed = true;
		}
		int r = poll(&p, 1, left > 0 ? (int)(left > 1000 ? 1000 : left) : 1000);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		char chunk[8192];
		ssize_t n = read(fds[0], chunk, sizeof(chunk));
		if (n <= 0)
			break;
		if (len + (size_t)n < OUTPUT_MAX) {
			char *grown = realloc(*out, len + (size_t)n + 1);
			if (grown) {
				memcpy(grown + len, chunk, (size_t)n);
				len += (size_t)n;
				grown[len] = '\0';
				*out = grown;
			}
		}
	}
	close(fds[0]);
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (killed)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The last line of a program's output, for a failure message. */
static const char *last_lines(const char *out)
{
	size_t len = strlen(out);
	return len > 600 ? out + len - 600 : out;
}

/* ---- a set of variable names, each with where it was first seen ------------ */

struct names {
	char *name[NAMES_MAX];
	char *where[NAMES_MAX];
	size_t n;
};

static bool names_has(const struct names *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->name[i], name) == 0)
			return true;
	}
	return false;
}

static void names_add(struct names *s, const char *name, size_t len, const char *where)
{
	char buf[128];
	if (len == 0 || len >= sizeof(buf))
		return;
	memcpy(buf, name, len);
	buf[len] = '\0';
	if (names_has(s, buf) || s->n == NAMES_MAX)
		return;
	s->name[s->n] = strdup(buf);
	s->where[s->n] = strdup(where);
	s->n++;
}

static void names_free(struct names *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->name[i]);
		free(s->where[i]);
	}
	s->n = 0;
}

static bool is_name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* A variable this project's programs read: EE_*, CLOUDFLARE_*, and the original agent's two. */
static bool is_setting_name(const char *s, size_t len)
{
	return (len > 3 && strncmp(s, "EE_", 3) == 0) || (len > 11 && strncmp(s, "CLOUDFLARE_", 11) == 0) ||
	       (len == 7 && strncmp(s, "SEAL_VM", 7) == 0) ||
	       (len == 11 && strncmp(s, "VM_IMAGE_ID", 11) == 0);
}

/* C: every string literal that is exactly a setting's name ("EE_DB_PATH"). */
static void scan_c_text(struct names *s, const char *text, const char *where)
{
	for (const char *p = strchr(text, '"'); p; p = strchr(p + 1, '"')) {
		const char *q = p + 1;
		while (is_name_char(*q))
			q++;
		if (*q == '"' && is_setting_name(p + 1, (size_t)(q - p - 1)))
			names_add(s, p + 1, (size_t)(q - p - 1), where);
	}
}

/* Shell: $NAME and ${NAME...}. */
static void scan_shell_text(struct names *s, const char *text, const char *where)
{
	for (const char *p = strchr(text, '$'); p; p = strchr(p + 1, '$')) {
		const char *q = p + 1;
		if (*q == '{')
			q++;
		const char *start = q;
		while (is_name_char(*q))
			q++;
		if (is_setting_name(start, (size_t)(q - start)))
			names_add(s, start, (size_t)(q - start), where);
	}
}

/* Caddyfile: {$NAME} / {$NAME:default} (read when parsed) and {env.NAME} (at run time). */
static void scan_caddy_text(struct names *s, const char *text, const char *where)
{
	for (const char *p = strchr(text, '{'); p; p = strchr(p + 1, '{')) {
		const char *start = NULL;
		if (p[1] == '$')
			start = p + 2;
		else if (strncmp(p + 1, "env.", 4) == 0)
			start = p + 5;
		if (!start)
			continue;
		const char *q = start;
		while (is_name_char(*q))
			q++;
		if (is_setting_name(start, (size_t)(q - start)))
			names_add(s, start, (size_t)(q - start), where);
	}
}

/* Every .c and .h file under dir, recursively. */
static void scan_c_tree(struct names *s, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		struct stat st;
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			scan_c_tree(s, path);
		} else if (ends_with(e->d_name, ".c") || ends_with(e->d_name, ".h")) {
			char *text = read_text(path);
			if (text)
				scan_c_text(s, text, path);
			free(text);
		}
	}
	closedir(d);
}

/* make run's development scripts: their settings are docs/CONFIGURATION.md's "make run" table. */
static bool is_development_script(const char *name)
{
	return strcmp(name, "run-local") == 0 || strcmp(name, "install-deps") == 0;
}

/* The production scripts: executable files starting with #! in deploy/ and cgi-bin/. */
static void scan_scripts(struct names *s, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || is_development_script(e->d_name))
			continue;
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!is_executable_file(path))
			continue;
		char *text = read_text(path);
		if (text && strncmp(text, "#!", 2) == 0)
			scan_shell_text(s, text, path);
		free(text);
	}
	closedir(d);
}

/* The production Caddyfile and the files it imports (not make run's caddy/Caddyfile). */
static void scan_production_caddy(struct names *s)
{
	DIR *d = opendir("caddy");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, "Caddyfile.production") != 0 && !ends_with(e->d_name, ".caddy"))
			continue;
		char path[512];
		snprintf(path, sizeof(path), "caddy/%s", e->d_name);
		char *text = read_text(path);
		if (text)
			scan_caddy_text(s, text, path);
		free(text);
	}
	closedir(d);
}

/* What the control plane's side reads, and what ee-agent reads. */
static void settings_read(struct names *server, struct names *agent)
{
	static const char *const server_dirs[] = {"lib", "fcgi", "tunneld", "tools", "deploy"};
	for (size_t i = 0; i < sizeof(server_dirs) / sizeof(server_dirs[0]); i++)
		scan_c_tree(server, server_dirs[i]);
	scan_scripts(server, "deploy");
	scan_scripts(server, "cgi-bin");
	scan_production_caddy(server);
	scan_c_tree(agent, "agent");
}

/* ---- env example files ----------------------------------------------------- */

struct env_entry {
	char name[96];
	char value[512];
	bool active;        /* NAME=value, not #NAME=value */
	char comment[1024]; /* the prose comment lines right above it */
	int line;
};

struct env_file {
	struct env_entry e[NAMES_MAX];
	size_t n;
	char problems[1024]; /* format problems, if any */
};

static bool assignment(const char *line, size_t *name_len)
{
	size_t i = 0;
	if (!(line[0] >= 'A' && line[0] <= 'Z'))
		return false;
	while (is_name_char(line[i]))
		i++;
	*name_len = i;
	return line[i] == '=';
}

static void env_problem(struct env_file *f, const char *fmt, const char *arg, int line)
{
	size_t used = strlen(f->problems);
	if (used + 10 < sizeof(f->problems))
		snprintf(f->problems + used, sizeof(f->problems) - used, fmt, arg, line);
}

static int env_parse(const char *path, struct env_file *f)
{
	memset(f, 0, sizeof(*f));
	char *text = read_text(path);
	if (!text)
		return -1;
	char comment[1024] = "";
	int number = 0;
	for (char *line = text; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		number++;
		size_t nlen;
		bool commented = line[0] == '#' && assignment(line + 1, &nlen);
		if (commented || assignment(line, &nlen)) {
			const char *start = commented ? line + 1 : line;
			const char *value = start + nlen + 1;
			if (f->n == NAMES_MAX)
				break;
			struct env_entry *e = &f->e[f->n++];
			snprintf(e->name, sizeof(e->name), "%.*s", (int)nlen, start);
			snprintf(e->value, sizeof(e->value), "%s", value);
			e->active = !commented;
			e->line = number;
			snprintf(e->comment, sizeof(e->comment), "%s", comment);
			if (strpbrk(value, " \t\"'"))
				env_problem(f, "%s has a space or a quote in its value (line %d); ", e->name, number);
			for (size_t i = 0; i + 1 < f->n; i++) {
				if (strcmp(f->e[i].name, e->name) == 0)
					env_problem(f, "%s is listed twice (line %d); ", e->name, number);
			}
			comment[0] = '\0';
		} else if (line[0] == '#') {
			size_t used = strlen(comment);
			snprintf(comment + used, sizeof(comment) - used, "%s\n", line);
		} else if (line[0] == '\0') {
			comment[0] = '\0';
		} else {
			env_problem(f, "a line that is neither a comment nor NAME=value: %s (line %d); ",
			            test_printable(line), number);
		}
		line = next;
	}
	free(text);
	return 0;
}

static const struct env_entry *env_find(const struct env_file *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->e[i].name, name) == 0)
			return &f->e[i];
	}
	return NULL;
}

/* ---- defaults the documentation's tables give ------------------------------ */

struct doc_default {
	char name[96];
	char value[256];
	char where[128];
};

struct doc_defaults {
	struct doc_default d[NAMES_MAX];
	size_t n;
	char conflicts[1024];
};

/* The backticked pieces of a table cell, split on " / "; -1 if the cell is anything else. */
static int cell_literals(const char *cell, char out[][256], int max)
{
	int n = 0;
	const char *p = cell;
	while (*p == ' ')
		p++;
	while (*p) {
		if (*p != '`' || n == max)
			return -1;
		const char *end = strchr(p + 1, '`');
		if (!end || end - p - 1 >= 256)
			return -1;
		snprintf(out[n++], 256, "%.*s", (int)(end - p - 1), p + 1);
		p = end + 1;
		while (*p == ' ')
			p++;
		if (*p == '/') {
			p++;
			while (*p == ' ')
				p++;
		} else if (*p) {
			return -1;
		}
	}
	return n;
}

static void doc_defaults_add(struct doc_defaults *d, const char *name, const char *value,
                             const char *where)
{
	for (size_t i = 0; i < d->n; i++) {
		if (strcmp(d->d[i].name, name) == 0) {
			if (strcmp(d->d[i].value, value) != 0) {
				size_t used = strlen(d->conflicts);
				snprintf(d->conflicts + used, sizeof(d->conflicts) - used,
				         "%s is `%s` in %s but `%s` in %s; ", name, d->d[i].value, d->d[i].where,
				         value, where);
			}
			return;
		}
	}
	if (d->n == NAMES_MAX)
		return;
	struct doc_default *x = &d->d[d->n++];
	snprintf(x->name, sizeof(x->name), "%.95s", name);
	snprintf(x->value, sizeof(x->value), "%.255s", value);
	snprintf(x->where, sizeof(x->where), "%.127s", where);
}

/*
 * Rows of every table in docs/ (*.md) whose header has a "variable" and a
 * "default" column ("| variable | default | meaning |", "| flag | variable |
 * default | meaning |"), with "`A` / `B` | `1` / `2`" rows split; rows
 * whose default is prose ("(required)", "a random UUID ...") give none.
 */
static void doc_defaults_load(struct doc_defaults *d)
{
	memset(d, 0, sizeof(*d));
	DIR *dir = opendir("docs");
	if (!dir)
		return;
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		if (!ends_with(e->d_name, ".md"))
			continue;
		char path[512];
		snprintf(path, sizeof(path), "docs/%s", e->d_name);
		char *text = read_text(path);
		bool in_table = false;
		int var_col = -1, def_col = -1;
		for (char *line = text; line && *line;) {
			char *next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			char *cells[8];
			int ncells = 0;
			if (line[0] == '|') {
				/* Cells between unescaped bars ("\|" stays inside a cell). */
				char *p = line + 1;
				cells[ncells++] = p;
				for (; *p && ncells < 8; p++) {
					if (*p == '|' && p[-1] != '\\') {
						*p = '\0';
						cells[ncells++] = p + 1;
					}
				}
				ncells--; /* what follows the last bar is not a cell */
			}
			if (line[0] != '|') {
				in_table = false;
			} else if (!in_table) {
				in_table = true;
				var_col = def_col = -1;
				for (int i = 0; i < ncells; i++) {
					char *c = cells[i];
					while (*c == ' ')
						c++;
					if (strncmp(c, "variable ", 9) == 0)
						var_col = i;
					if (strncmp(c, "default ", 8) == 0)
						def_col = i;
				}
			} else if (var_col >= 0 && def_col >= 0 && var_col < ncells && def_col < ncells) {
				char names[4][256], values[4][256];
				int nn = cell_literals(cells[var_col], names, 4);
				int nv = cell_literals(cells[def_col], values, 4);
				for (int i = 0; nn > 0 && nn == nv && i < nn; i++) {
					if (is_setting_name(names[i], strlen(names[i])))
						doc_defaults_add(d, names[i], values[i], path);
				}
			}
			line = next;
		}
		free(text);
	}
	closedir(dir);
}

/* ---- case (a): caddy validate ------------------------------------------------ */

static char caddy_home[320];

static int caddy_validate(const char *config, const char *const extra_env[], char **out)
{
	const char *env[32];
	char xdg_data[400], xdg_config[400];
	snprintf(xdg_data, sizeof(xdg_data), "XDG_DATA_HOME=%s", caddy_home);
	snprintf(xdg_config, sizeof(xdg_config), "XDG_CONFIG_HOME=%s", caddy_home);
	size_t n = 0;
	env[n++] = xdg_data;
	env[n++] = xdg_config;
	for (size_t i = 0; extra_env && extra_env[i] && n + 1 < 32; i++)
		env[n++] = extra_env[i];
	env[n] = NULL;
	const char *argv[] = {"caddy", "validate", "--adapter", "caddyfile", "--config", config, NULL};
	return run(argv, env, 60, out);
}

static void check_valid(const char *config, const char *const env[])
{
	char *out;
	int rc = caddy_validate(config, env, &out);
	CHECK(rc == 0 && strstr(out, "Valid configuration"), "%s: exit %d: %s", config, rc,
	      last_lines(out));
	free(out);
}

static bool caddy_has_module(const char *module)
{
	const char *argv[] = {"caddy", "list-modules", NULL};
	char *out;
	int rc = run(argv, NULL, 30, &out);
	bool has = false;
	for (char *line = out; rc == 0 && line && *line;) {
		char *next = strchr(line, '\n');
		size_t len = next ? (size_t)(next - line) : strlen(line);
		if (len == strlen(module) && strncmp(line, module, len) == 0)
			has = true;
		line = next ? next + 1 : NULL;
	}
	free(out);
	return has;
}

#define PRODUCTION_ENV(tls)                                                              \
	{"EE_DOMAIN=" DOMAIN, "EE_CADDY_TLS=" tls, "EE_API_UPSTREAM=unix//tmp/ee-none.sock", \
	 "EE_TUNNELD_CONTROL=127.0.0.1:1", "EE_TUNNELD_PROXY=127.0.0.1:1", NULL}

static void test_caddy_validate(void)
{
	bool covered_dev = false, covered_production = false;

	test_case("caddy validate: caddy/Caddyfile (make run)");
	const char *dev_env[] = {"EE_API_UPSTREAM=unix//tmp/ee-none.sock", NULL};
	check_valid("caddy/Caddyfile", dev_env);
	covered_dev = true;

	test_case("caddy validate: tests/integration/dashboard.Caddyfile");
	const char *dash_env[] = {"EE_HTTP_PORT=18001", "EE_DASH_BROWSER_PORT=18002",
	                          "EE_API_UPSTREAM=unix//tmp/ee-none.sock",
	                          "EE_ADMIN_TOKEN=test-admin-token-000000000000000001",
	                          "EE_DASH_CONTROL_DIR=/tmp", NULL};
	check_valid("tests/integration/dashboard.Caddyfile", dash_env);

	test_case("caddy validate: caddy/Caddyfile.production with tls-internal.caddy");
	const char *internal_env[] = PRODUCTION_ENV("tls-internal.caddy");
	check_valid("caddy/Caddyfile.production", internal_env);

	test_case("caddy validate: caddy/Caddyfile.production with tls-acme.caddy");
	const char *acme_env[] = PRODUCTION_ENV("tls-acme.caddy");
	check_valid("caddy/Caddyfile.production", acme_env);

	test_case("caddy validate: caddy/Caddyfile.production with its defaults (but EE_DOMAIN) and "
	          "tls-cloudflare.caddy");
	const char *cf_env[] = {"EE_DOMAIN=" DOMAIN, "EE_CADDY_TLS", "EE_API_UPSTREAM",
	                        "EE_TUNNELD_CONTROL", "EE_TUNNELD_PROXY", "EE_CADDY_ADMIN",
	                        "EE_CADDY_BIND", "EE_CADDY_HTTP_PORT", "EE_CADDY_HTTPS_PORT",
	                        "CLOUDFLARE_API_TOKEN=test-token", NULL};
	if (caddy_has_module("dns.providers.cloudflare")) {
		check_valid("caddy/Caddyfile.production", cf_env);
	} else {
		/* Debian's caddy: the module is the one thing missing. */
		char *out;
		int rc = caddy_validate("caddy/Caddyfile.production", cf_env, &out);
		CHECK(rc != 0, "validated without the module?");
		CHECK(strstr(out, "tls-cloudflare.caddy") &&
		          strstr(out, "module not registered: dns.providers.cloudflare"),
		      "expected only the missing module, got: %s", last_lines(out));
		CHECK(!strstr(out, "unrecognized") && !strstr(out, "unknown"), "%s", last_lines(out));
		free(out);
	}
	covered_production = true;

	test_case("caddy validate: tls-cloudflare.caddy without its dns line, in a copy");
	char *cf = read_text("caddy/tls-cloudflare.caddy");
	char *production = read_text("caddy/Caddyfile.production");
	CHECK(cf && production);
	if (cf && production) {
		char *dns = strstr(cf, "dns cloudflare {env.CLOUDFLARE_API_TOKEN}");
		CHECK(dns != NULL, "tls-cloudflare.caddy has no \"dns cloudflare {env.CLOUDFLARE_API_TOKEN}\"");
		if (dns) {
			/*
			 * The one line becomes the plain ACME issuer (a tls block may not
			 * be empty); everything else must stand as written.
			 */
			char *end = strchr(dns, '\n');
			size_t len = end ? (size_t)(end - dns) : strlen(dns);
			memset(dns, ' ', len);
			memcpy(dns, "issuer acme", 11);
			char dir[400], path[480];
			snprintf(dir, sizeof(dir), "%s/caddy-copy", scratch);
			mkdir(dir, 0700);
			snprintf(path, sizeof(path), "%s/tls-cloudflare.caddy", dir);
			CHECK(write_text(path, cf) == 0);
			char *trusted = read_text("caddy/trusted-proxies.caddy");
			snprintf(path, sizeof(path), "%s/trusted-proxies.caddy", dir);
			CHECK(trusted && write_text(path, trusted) == 0);
			free(trusted);
			snprintf(path, sizeof(path), "%s/Caddyfile.production", dir);
			CHECK(write_text(path, production) == 0);
			const char *env[] = PRODUCTION_ENV("tls-cloudflare.caddy");
			check_valid(path, env);
		}
	}
	free(cf);
	free(production);

	test_case("every file in caddy/ is validated by a case above");
	DIR *d = opendir("caddy");
	CHECK(d != NULL);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		bool covered = (strcmp(e->d_name, "Caddyfile") == 0 && covered_dev) ||
		               (strcmp(e->d_name, "Caddyfile.production") == 0 && covered_production) ||
		               strcmp(e->d_name, "tls-internal.caddy") == 0 ||
		               (strcmp(e->d_name, "trusted-proxies.caddy") == 0 && covered_production) ||
		               strcmp(e->d_name, "tls-acme.caddy") == 0 ||
		               strcmp(e->d_name, "tls-cloudflare.caddy") == 0;
		CHECK(covered, "caddy/%s is validated by no case of test_deploy.c", e->d_name);
	}
	if (d)
		closedir(d);
}

/* ---- case (a2): the production Caddyfile served by real Caddy ---------------- */

struct tls_result {
	long status;
	char body[4096];
	char headers[4096];
};

static size_t sink_body(char *ptr, size_t size, size_t n, void *userdata)
{
	char *buf = userdata;
	size_t used = strlen(buf), add = size * n;
	size_t room = 4095 - used;
	memcpy(buf + used, ptr, add < room ? add : room);
	buf[used + (add < room ? add : room)] = '\0';
	return size * n;
}

/* A request to https://<host>:<port><path>, <host> resolved to 127.0.0.1, trusting ca only. */
static int tls_request(const char *scheme, const char *host, int port, const char *method,
                       const char *path, const char *const *headers, const char *body,
                       const char *ca, struct tls_result *r)
{
	memset(r, 0, sizeof(*r));
	CURL *curl = curl_easy_init();
	if (!curl)
		return -1;
	char url[512], resolve_entry[300];
	snprintf(url, sizeof(url), "%s://%s:%d%s", scheme, host, port, path);
	snprintf(resolve_entry, sizeof(resolve_entry), "%s:%d:127.0.0.1", host, port);
	struct curl_slist *resolve = curl_slist_append(NULL, resolve_entry);
	struct curl_slist *list = NULL;
	for (int i = 0; headers && headers[i]; i++)
		list = curl_slist_append(list, headers[i]);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, r->body);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, sink_body);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, r->headers);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	if (body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	CURLcode rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
	else
		snprintf(r->body, sizeof(r->body), "curl: %s", curl_easy_strerror(rc));
	curl_easy_cleanup(curl);
	curl_slist_free_all(resolve);
	curl_slist_free_all(list);
	return rc == CURLE_OK ? 0 : -1;
}

/*
 * A websocket upgrade of /v1/tunnel over TLS, by hand on a connection
 * libcurl opened (CONNECT_ONLY): returns the status line's code, or -1.
 */
static int tls_websocket_upgrade(const char *host, int port, const char *ca)
{
	CURL *curl = curl_easy_init();
	if (!curl)
		return -1;
	char url[512], resolve_entry[300];
	snprintf(url, sizeof(url), "https://%s:%d/", host, port);
	snprintf(resolve_entry, sizeof(resolve_entry), "%s:%d:127.0.0.1", host, port);
	struct curl_slist *resolve = curl_slist_append(NULL, resolve_entry);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
	curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L);
	/* HTTP/1.1 only: a websocket upgrade does not exist in HTTP/2. */
	curl_easy_setopt(curl, CURLOPT_SSL_ENABLE_ALPN, 0L);
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
	int code = -1;
	if (curl_easy_perform(curl) == CURLE_OK) {
		char request[512];
		int len = snprintf(request, sizeof(request),
		                   "GET /v1/tunnel HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
		                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		                   "Sec-WebSocket-Version: 13\r\n\r\n",
		                   host);
		size_t sent = 0;
		long long deadline = monotonic_ms() + 10000;
		while (sent < (size_t)len && monotonic_ms() < deadline) {
			size_t n = 0;
			CURLcode rc = curl_easy_send(curl, request + sent, (size_t)len - sent, &n);
			if (rc == CURLE_AGAIN) {
				sleep_ms(10);
				continue;
			}
			if (rc != CURLE_OK)
				break;
			sent += n;
		}
		char answer[2048] = "";
		size_t got = 0;
		while (got < sizeof(answer) - 1 && !strstr(answer, "\r\n\r\n") &&
		       monotonic_ms() < deadline) {
			size_t n = 0;
			CURLcode rc = curl_easy_recv(curl, answer + got, sizeof(answer) - 1 - got, &n);
			if (rc == CURLE_AGAIN) {
				sleep_ms(10);
				continue;
			}
			if (rc != CURLE_OK || n == 0)
				break;
			got += n;
			answer[got] = '\0';
		}
		if (strncmp(answer, "HTTP/1.1 ", 9) == 0)
			code = atoi(answer + 9);
		/* The accept value of RFC 6455's own example key. */
		if (code == 101 && !strstr(answer, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
			code = -2;
	}
	curl_easy_cleanup(curl);
	curl_slist_free_all(resolve);
	return code;
}

static pid_t spawn_caddy(const char *config, const char *const env[], const char *log)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	setpgid(0, 0);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	for (int i = 0; env[i]; i++)
		putenv(strdup(env[i]));
	execlp("caddy", "caddy", "run", "--config", config, "--adapter", "caddyfile", (char *)NULL);
	_exit(127);
}

static void stop_caddy(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		sleep_ms(25);
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Waits until Caddy's internal CA exists and control.<domain> answers over TLS. */
static bool wait_tls(int port, const char *ca, pid_t caddy)
{
	for (int i = 0; i < 300; i++) {
		if (waitpid(caddy, NULL, WNOHANG) == caddy)
			return false;
		struct tls_result r;
		if (file_exists(ca) &&
		    tls_request("https", "control." DOMAIN, port, "GET", "/health", NULL, NULL, ca, &r) == 0 &&
		    r.status == 200)
			return true;
		sleep_ms(100);
	}
	return false;
}

static void test_production_served(void)
{
	test_case("Caddyfile.production (tls-internal.caddy) comes up on loopback with ee-api and "
	          "ee-tunneld");
	struct stack st;
	struct stack_options opt = {.no_caddy = true};
	if (stack_start(&st, "deploy-caddy", &opt) != 0) {
		stack_stop(&st);
		return;
	}
	int https = stack_free_port(), http = stack_free_port();
	char dir[400], ca[500], log[500];
	snprintf(dir, sizeof(dir), "%s/caddy-run", scratch);
	mkdir(dir, 0700);
	snprintf(ca, sizeof(ca), "%s/caddy/pki/authorities/local/root.crt", dir);
	snprintf(log, sizeof(log), "%s/caddy.log", dir);
	char e_https[64], e_http[64], e_api[400], e_control[64], e_proxy[64], e_data[450],
		e_config[450], e_admin[450];
	snprintf(e_https, sizeof(e_https), "EE_CADDY_HTTPS_PORT=%d", https);
	snprintf(e_http, sizeof(e_http), "EE_CADDY_HTTP_PORT=%d", http);
	snprintf(e_api, sizeof(e_api), "EE_API_UPSTREAM=%s", st.upstream);
	snprintf(e_control, sizeof(e_control), "EE_TUNNELD_CONTROL=127.0.0.1:%d", st.control_port);
	snprintf(e_proxy, sizeof(e_proxy), "EE_TUNNELD_PROXY=127.0.0.1:%d", st.proxy_port);
	snprintf(e_data, sizeof(e_data), "XDG_DATA_HOME=%s", dir);
	snprintf(e_config, sizeof(e_config), "XDG_CONFIG_HOME=%s", dir);
	snprintf(e_admin, sizeof(e_admin), "EE_CADDY_ADMIN=unix/%s/admin.sock", dir);
	const char *env[] = {"EE_DOMAIN=" DOMAIN, "EE_CADDY_TLS=tls-internal.caddy",
	                     "EE_CADDY_BIND=127.0.0.1", e_https, e_http, e_api, e_control, e_proxy,
	                     e_data, e_config, e_admin, NULL};
	pid_t caddy = spawn_caddy("caddy/Caddyfile.production", env, log);
	bool up = caddy > 0 && wait_tls(https, ca, caddy);
	CHECK(up, "Caddy did not serve https://control.%s (see %s)", DOMAIN, log);
	if (!up) {
		stop_caddy(caddy);
		stack_stop(&st);
		return;
	}
	struct tls_result r;
	const char *control = "control." DOMAIN, *direct = "control-direct." DOMAIN,
		   *app = "shop.app." DOMAIN;

	test_case("https://control.<domain>: REST to ee-api over FastCGI");
	tls_request("https", control, https, "GET", "/health", NULL, NULL, ca, &r);
	CHECK_INT(r.status, 200);
	CHECK(strstr(r.body, "\"status\":\"ok\"") && !strstr(r.body, "agents"),
	      "not ee-api's /health: %s", r.body);
	const char *admin[] = {"Authorization: Bearer " TEST_ADMIN_TOKEN, NULL};
	tls_request("https", control, https, "GET", "/v1/apps", admin, NULL, ca, &r);
	CHECK_INT(r.status, 200);
	tls_request("https", control, https, "GET", "/v1/apps", NULL, NULL, ca, &r);
	CHECK_INT(r.status, 401);
	const char *json[] = {"Authorization: Bearer " TEST_ADMIN_TOKEN,
	                      "Content-Type: application/json", NULL};
	tls_request("https", control, https, "POST", "/v1/credits/purchase", json,
	            "{\"account_id\":\"tls-user\",\"amount_usd\":\"1.25\"}", ca, &r);
	CHECK_INT(r.status, 200);

	test_case("https://control.<domain>: /v1/proxy/* and /v1/tunnel to ee-tunneld");
	tls_request("https", control, https, "POST", "/v1/proxy/shop", json, "", ca, &r);
	CHECK(r.status == 400 && strstr(r.body, "invalid_proxy_payload"),
	      "not ee-tunneld's answer: %ld %s", r.status, r.body);
	CHECK_INT(tls_websocket_upgrade(control, https, ca), 101);

	test_case("https://control-direct.<domain>: the tunnel and /health only");
	CHECK_INT(tls_websocket_upgrade(direct, https, ca), 101);
	tls_request("https", direct, https, "GET", "/health", NULL, NULL, ca, &r);
	CHECK(r.status == 200 && strstr(r.body, "\"agents\":"), "not ee-tunneld's /health: %ld %s",
	      r.status, r.body);
	tls_request("https", direct, https, "GET", "/v1/apps", admin, NULL, ca, &r);
	CHECK(r.status == 404 && strstr(r.body, "not_found"), "%ld %s", r.status, r.body);
	tls_request("https", direct, https, "POST", "/v1/credits/purchase", json,
	            "{\"account_id\":\"tls-user\",\"amount_usd\":\"1.25\"}", ca, &r);
	CHECK_INT(r.status, 404);

	test_case("https://<app>.app.<domain>: to ee-tunneld's proxy listener");
	tls_request("https", app, https, "GET", "/", NULL, NULL, ca, &r);
	CHECK(r.status == 404 && strstr(r.body, "unknown_app"), "%ld %s", r.status, r.body);

	test_case("http:// on EE_CADDY_HTTP_PORT redirects to https");
	tls_request("http", control, http, "GET", "/health", NULL, NULL, ca, &r);
	CHECK_INT(r.status, 308);
	CHECK(strstr(r.headers, "Location: https://control." DOMAIN), "%s", r.headers);

	test_case("caddy reload through the admin socket (ExecReload of ee-caddy.service)");
	char address[450];
	snprintf(address, sizeof(address), "unix/%s/admin.sock", dir);
	const char *reload[] = {"caddy", "reload", "--config", "caddy/Caddyfile.production",
	                        "--adapter", "caddyfile", "--address", address, NULL};
	char *out;
	int rc = run(reload, env, 60, &out);
	CHECK(rc == 0, "exit %d: %s", rc, last_lines(out));
	free(out);
	tls_request("https", control, https, "GET", "/health", NULL, NULL, ca, &r);
	CHECK_INT(r.status, 200);

	stop_caddy(caddy);
	stack_stop(&st);
}

static void test_ondemand_ask(void)
{
	test_case("tls-acme.caddy's ask site: 200 only for an app ee-api allows");
	struct stack st;
	struct stack_options opt = {.no_caddy = true, .no_tunneld = true};
	if (stack_start(&st, "deploy-ask", &opt) != 0) {
		stack_stop(&st);
		return;
	}
	struct stack_agent good = {"shop", "acme/shop", "v1", "forge-1", "shop-vm-1",
	                           "valid", true, "pass", true};
	struct stack_agent bad = {"stale", "acme/stale", "v1", "forge-1", "stale-vm-1",
	                          "invalid", true, "pass", true};
	stack_seed_agent(&st, &good);
	stack_seed_agent(&st, &bad);

	/* Only the ask site: the snippets are unused, so no certificate is ever asked for. */
	char dir[400], config[480], text[800], log[480];
	snprintf(dir, sizeof(dir), "%s/caddy-ask", scratch);
	mkdir(dir, 0700);
	char cwd[512];
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	snprintf(config, sizeof(config), "%s/Caddyfile", dir);
	snprintf(log, sizeof(log), "%s/caddy.log", dir);
	snprintf(text, sizeof(text),
	         "{\n\tadmin off\n\tskip_install_trust\n}\nimport %s/caddy/tls-acme.caddy\n",
	         cwd);
	CHECK(write_text(config, text) == 0);
	int port = stack_free_port();
	char e_port[64], e_api[400], e_data[450], e_config[450];
	snprintf(e_port, sizeof(e_port), "EE_CADDY_ASK_PORT=%d", port);
	snprintf(e_api, sizeof(e_api), "EE_API_UPSTREAM=%s", st.upstream);
	snprintf(e_data, sizeof(e_data), "XDG_DATA_HOME=%s", dir);
	snprintf(e_config, sizeof(e_config), "XDG_CONFIG_HOME=%s", dir);
	const char *env[] = {"EE_DOMAIN=" DOMAIN, e_port, e_api, e_data, e_config, NULL};
	pid_t caddy = spawn_caddy(config, env, log);
	char base[64];
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	struct {
		const char *query;
		long want;
	} asks[] = {
		{"/ask?domain=shop.app." DOMAIN, 200},    /* registered and allowed */
		{"/ask?domain=stale.app." DOMAIN, 403},   /* registered, not allowed */
		{"/ask?domain=nobody.app." DOMAIN, 404},  /* unknown */
		{"/ask?domain=shop.app.elsewhere.org", 404}, /* not our domain */
		{"/ask?domain=a.b.app." DOMAIN, 404},     /* not one label */
		{"/ask", 404},
		{"/v1/resolve/shop", 404},                /* nothing but /ask */
	};
	bool up = false;
	for (int i = 0; i < 200 && !up; i++) {
		char url[256];
		snprintf(url, sizeof(url), "%s/ask", base);
		struct http_result r;
		up = http_do("GET", url, NULL, NULL, 0, &r) == 0;
		http_result_free(&r);
		if (!up)
			sleep_ms(50);
	}
	CHECK(up, "the ask site did not come up (see %s)", log);
	for (size_t i = 0; up && i < sizeof(asks) / sizeof(asks[0]); i++) {
		char url[256];
		snprintf(url, sizeof(url), "%s%s", base, asks[i].query);
		struct http_result r;
		http_do("GET", url, NULL, NULL, 0, &r);
		CHECK(r.status == asks[i].want, "%s: %ld, want %ld", asks[i].query, r.status, asks[i].want);
		http_result_free(&r);
	}
	stop_caddy(caddy);
	stack_stop(&st);
}

/* ---- case (b): systemd units ------------------------------------------------- */

/* The value of "Key=" in a unit's text (the last one), or NULL; static buffer. */
static const char *unit_value(const char *text, const char *key)
{
	static char value[512];
	const char *found = NULL;
	size_t klen = strlen(key);
	for (const char *line = text; line && *line;) {
		if (strncmp(line, key, klen) == 0 && line[klen] == '=')
			found = line + klen + 1;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (!found)
		return NULL;
	size_t len = strcspn(found, "\n");
	snprintf(value, sizeof(value), "%.*s", (int)len, found);
	return value;
}

static bool unit_has_line(const char *text, const char *line_text)
{
	size_t len = strlen(line_text);
	for (const char *line = text; line && *line;) {
		if (strncmp(line, line_text, len) == 0 && (line[len] == '\n' || line[len] == '\0'))
			return true;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return false;
}

/* Programs the units run from /usr/local/bin, gathered for the install case. */
static struct names unit_programs;

static void collect_programs(const char *text, const char *unit)
{
	for (const char *p = strstr(text, "/usr/local/bin/"); p; p = strstr(p + 1, "/usr/local/bin/")) {
		const char *start = p + strlen("/usr/local/bin/");
		size_t len = strcspn(start, " \n");
		if (len > 0 && len < 96) {
			char name[96];
			snprintf(name, sizeof(name), "%.*s", (int)len, start);
			names_add(&unit_programs, name, len, unit);
		}
	}
}

static void check_service_hardening(const char *name, const char *text)
{
	bool dynamic = unit_has_line(text, "DynamicUser=yes");
	const char *user = unit_value(text, "User");
	CHECK(dynamic || (user && strcmp(user, "easyenclave") == 0), "%s: not User=easyenclave", name);
	if (!dynamic)
		CHECK(unit_has_line(text, "StateDirectory=easyenclave"), "%s: no StateDirectory", name);
	static const char *const required[] = {
		"ProtectSystem=strict", "ProtectHome=yes",         "PrivateTmp=yes",
		"NoNewPrivileges=yes",  "PrivateDevices=yes",      "SystemCallFilter=@system-service",
		"LockPersonality=yes",  "MemoryDenyWriteExecute=yes", "RestrictSUIDSGID=yes",
		"EnvironmentFile=/etc/easyenclave/env",
	};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		CHECK(unit_has_line(text, required[i]), "%s: no %s", name, required[i]);
	CHECK(unit_value(text, "RestrictAddressFamilies") != NULL, "%s: no RestrictAddressFamilies", name);
	const char *type = unit_value(text, "Type");
	if (!type || strcmp(type, "oneshot") != 0)
		CHECK(unit_has_line(text, "Restart=on-failure"), "%s: no Restart=on-failure", name);
}

static void test_systemd_units(void)
{
	char dir[400], bin[480];
	snprintf(dir, sizeof(dir), "%s/units", scratch);
	snprintf(bin, sizeof(bin), "%s/bin", dir);
	mkdir(dir, 0700);
	mkdir(bin, 0700);
	bool have_analyze = access("/usr/bin/systemd-analyze", X_OK) == 0;

	/* First a copy of every unit, programs pointed at stubs, so dependencies resolve. */
	DIR *d = opendir("deploy/systemd");
	CHECK(d != NULL, "no deploy/systemd");
	char *names[64];
	size_t count = 0;
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL && count < 64) {
		if (e->d_name[0] == '.')
			continue;
		names[count++] = strdup(e->d_name);
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < count; i++) {
		char path[600], copy[600];
		snprintf(path, sizeof(path), "deploy/systemd/%s", names[i]);
		char *text = read_text(path);
		if (!text)
			continue;
		collect_programs(text, names[i]);
		/* /usr/local/bin/X -> <scratch>/units/bin/X, a stub that does nothing. */
		size_t cap = strlen(text) * 3 + 1024;
		char *rewritten = malloc(cap);
		size_t used = 0;
		for (const char *p = text; *p && used + 600 < cap;) {
			if (strncmp(p, "/usr/local/bin/", 15) == 0) {
				used += (size_t)snprintf(rewritten + used, cap - used, "%s/", bin);
				p += 15;
			} else {
				rewritten[used++] = *p++;
			}
		}
		rewritten[used] = '\0';
		snprintf(copy, sizeof(copy), "%s/%s", dir, names[i]);
		write_text(copy, rewritten);
		free(rewritten);
		free(text);
	}
	for (size_t i = 0; i < unit_programs.n; i++) {
		char stub[700];
		snprintf(stub, sizeof(stub), "%s/%s", bin, unit_programs.name[i]);
		write_text(stub, "#!/bin/sh\nexit 0\n");
		chmod(stub, 0755);
	}

	for (size_t i = 0; i < count; i++) {
		test_case("systemd unit %s: %s", names[i],
		          have_analyze ? "systemd-analyze verify, hardening"
		                       : "structure and hardening (no systemd-analyze here)");
		char path[600], copy[600];
		snprintf(path, sizeof(path), "deploy/systemd/%s", names[i]);
		snprintf(copy, sizeof(copy), "%s/%s", dir, names[i]);
		char *text = read_text(path);
		CHECK(text != NULL);
		if (!text)
			continue;
		CHECK(strstr(text, "[Unit]\n") && strstr(text, "Description="), "%s: no [Unit] Description",
		      names[i]);
		CHECK(text[0] == '#', "%s: no comment saying what it is for", names[i]);
		if (ends_with(names[i], ".service")) {
			CHECK(strstr(text, "\n[Service]\n"), "%s: no [Service]", names[i]);
			check_service_hardening(names[i], text);
		}
		if (!ends_with(names[i], ".service") || !strstr(names[i], "backup"))
			CHECK(strstr(text, "\n[Install]\n"), "%s: no [Install]: cannot be enabled", names[i]);
		if (have_analyze) {
			const char *argv[] = {"/usr/bin/systemd-analyze", "verify", copy, NULL};
			char *out;
			int rc = run(argv, NULL, 60, &out);
			/* Warnings count: an unknown key is only a warning to systemd. */
			CHECK(rc == 0 && out[0] == '\0', "exit %d: %s", rc, last_lines(out));
			free(out);
		}
		free(text);
	}

	/*
	 * Debian's caddy.service runs "caddy run --environ", which prints the
	 * whole environment, tokens included, to the journal (docs/DEPLOY.md).
	 */
	test_case("ee-caddy.service starts Caddy without --environ, and so does every unit and the "
	          "compose file wherever they run caddy");
	int caddy_lines = 0;
	bool ee_caddy_runs = false;
	for (size_t i = 0; i < count; i++) {
		char path[600];
		snprintf(path, sizeof(path), "deploy/systemd/%s", names[i]);
		char *text = read_text(path);
		for (const char *line = text; line && *line;) {
			size_t len = strcspn(line, "\n");
			char one[1024];
			snprintf(one, sizeof(one), "%.*s", (int)len, line);
			const char *cmd = strncmp(one, "Exec", 4) == 0 ? strchr(one, '=') : NULL;
			if (cmd) {
				cmd++;
				cmd += strspn(cmd, "-@:+!");
				const char *base = cmd + strcspn(cmd, " ");
				while (base > cmd && base[-1] != '/')
					base--;
				if (strncmp(base, "caddy ", 6) == 0) {
					caddy_lines++;
					CHECK(!strstr(one, "--environ"), "%s: %s", names[i], one);
					if (strcmp(names[i], "ee-caddy.service") == 0 &&
					    strncmp(one, "ExecStart=", 10) == 0 && strstr(one, "caddy run "))
						ee_caddy_runs = true;
				}
			}
			line += len;
			if (*line)
				line++;
		}
		free(text);
	}
	CHECK(ee_caddy_runs, "ee-caddy.service has no ExecStart=caddy run");
	char *compose = read_text("deploy/docker-compose.yml");
	CHECK(compose && strstr(compose, "\"caddy\", \"run\""), "the compose file runs no caddy");
	CHECK(compose && !strstr(compose, "--environ"), "the compose file passes --environ");
	free(compose);
	printf("# %d Exec lines run caddy\n", caddy_lines);

	test_case("the units, the Caddyfile and the compose file agree on sockets and ports");
	char *socket = read_text("deploy/systemd/ee-api.socket");
	char *workers = read_text("deploy/systemd/ee-api-workers.service");
	char *tunneld = read_text("deploy/systemd/ee-tunneld.service");
	char *caddyfile = read_text("caddy/Caddyfile.production");
	char *env = read_text("deploy/env.example");
	CHECK(socket && workers && tunneld && caddyfile && env);
	if (socket && workers && tunneld && caddyfile && env) {
		const char *listen = unit_value(socket, "ListenStream");
		char path[256];
		snprintf(path, sizeof(path), "%s", listen ? listen : "(none)");
		char upstream[300];
		snprintf(upstream, sizeof(upstream), "{$EE_API_UPSTREAM:unix/%s}", path);
		CHECK(strstr(caddyfile, upstream), "Caddyfile.production's default upstream is not %s",
		      path);
		char workers_listen[300];
		snprintf(workers_listen, sizeof(workers_listen), "--listen %s", path);
		CHECK(strstr(workers, workers_listen), "ee-api-workers.service does not listen on %s", path);
		CHECK(strstr(caddyfile, "{$EE_TUNNELD_CONTROL:127.0.0.1:8088}") &&
		          strstr(caddyfile, "{$EE_TUNNELD_PROXY:127.0.0.1:9090}"),
		      "Caddyfile.production's default tunneld ports are not 8088/9090");
		CHECK(strstr(env, "\nEE_CONTROL_BIND=127.0.0.1\n") && strstr(env, "\nEE_PROXY_BIND=127.0.0.1\n"),
		      "env.example does not keep ee-tunneld on loopback");
		/* ee-tunneld drains for EE_DRAIN_TIMEOUT_SEC (10) before systemd kills it. */
		const char *stop = unit_value(tunneld, "TimeoutStopSec");
		CHECK(stop && atoi(stop) > 10, "ee-tunneld.service: TimeoutStopSec=%s", stop ? stop : "-");
		CHECK(strstr(tunneld, "ExecStartPre=-/usr/local/bin/ee-dns-on-start"),
		      "ee-tunneld.service does not run ee-dns-on-start first, failure allowed");
	}
	free(socket);
	free(workers);
	free(tunneld);
	free(caddyfile);
	free(env);
	for (size_t i = 0; i < count; i++)
		free(names[i]);
}

/* ---- case (c): the variables --------------------------------------------------- */

static void check_defaults(const char *file, const struct env_file *f, const struct doc_defaults *docs)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct env_entry *e = &f->e[i];
		const char *doc = NULL, *where = NULL;
		for (size_t j = 0; j < docs->n; j++) {
			if (strcmp(docs->d[j].name, e->name) == 0) {
				doc = docs->d[j].value;
				where = docs->d[j].where;
			}
		}
		if (!doc)
			continue;
		if (!e->active) {
			/* #NAME= (empty) may instead explain, naming the docs' default, where it applies. */
			CHECK(strcmp(e->value, doc) == 0 || (e->value[0] == '\0' && strstr(e->comment, doc)),
			      "%s line %d: #%s=%s, but %s says the default is `%s`", file, e->line, e->name,
			      e->value, where, doc);
		} else if (strcmp(e->value, doc) != 0) {
			char said[300];
			snprintf(said, sizeof(said), "(default %s)", doc);
			CHECK(strstr(e->comment, said), "%s line %d: %s=%s without \"%s\" above it (%s)", file,
			      e->line, e->name, e->value, said, where);
		}
	}
}

static void test_variables(void)
{
	struct names server = {0}, agent = {0};
	settings_read(&server, &agent);
	struct env_file *env = calloc(1, sizeof(*env)), *agent_env = calloc(1, sizeof(*agent_env));
	struct doc_defaults *docs = calloc(1, sizeof(*docs));
	if (!env || !agent_env || !docs) {
		test_fail(__FILE__, __LINE__, "out of memory");
		free(env);
		free(agent_env);
		free(docs);
		return;
	}

	test_case("deploy/env.example and agent.env.example: one NAME=value or #NAME=value a line");
	CHECK(env_parse("deploy/env.example", env) == 0, "cannot read deploy/env.example");
	CHECK(env_parse("deploy/agent.env.example", agent_env) == 0, "cannot read agent.env.example");
	CHECK(env->problems[0] == '\0', "env.example: %s", env->problems);
	CHECK(agent_env->problems[0] == '\0', "agent.env.example: %s", agent_env->problems);
	CHECK(server.n > 40 && agent.n > 20, "the scan found too little: %zu and %zu names", server.n,
	      agent.n);

	test_case("deploy/env.example lists every variable the control plane's programs, scripts and "
	          "production Caddyfile read");
	for (size_t i = 0; i < server.n; i++)
		CHECK(env_find(env, server.name[i]), "%s (read in %s) is not in deploy/env.example",
		      server.name[i], server.where[i]);

	test_case("EE_TRUSTED_PROXIES in deploy/env.example and caddy/trusted-proxies.caddy name the "
	          "same networks, in the same order");
	const struct env_entry *trusted = env_find(env, "EE_TRUSTED_PROXIES");
	char *snippet = read_text("caddy/trusted-proxies.caddy");
	CHECK(trusted && snippet);
	if (trusted && snippet) {
		/* The snippet's networks: the words after trusted_proxies, backslashes aside. */
		char from_caddy[2048] = "";
		const char *p = strstr(snippet, "\ttrusted_proxies ");
		p = p ? p + strlen("\ttrusted_proxies ") : "";
		while (*p && *p != '}') {
			while (*p == ' ' || *p == '\t' || *p == '\\' || *p == '\n')
				p++;
			size_t n = strcspn(p, " \t\\\n}");
			if (n > 0 && strlen(from_caddy) + n + 2 < sizeof(from_caddy)) {
				if (from_caddy[0])
					strcat(from_caddy, ",");
				strncat(from_caddy, p, n);
			}
			p += n;
		}
		CHECK_STR(from_caddy, trusted->value);
	}
	free(snippet);

	test_case("deploy/agent.env.example lists every variable ee-agent reads");
	for (size_t i = 0; i < agent.n; i++)
		CHECK(env_find(agent_env, agent.name[i]), "%s (read in %s) is not in agent.env.example",
		      agent.name[i], agent.where[i]);

	test_case("every variable the env examples list is read by something");
	for (size_t i = 0; i < env->n; i++)
		CHECK(names_has(&server, env->e[i].name), "deploy/env.example line %d: %s is read by nothing",
		      env->e[i].line, env->e[i].name);
	for (size_t i = 0; i < agent_env->n; i++)
		CHECK(names_has(&agent, agent_env->e[i].name),
		      "agent.env.example line %d: %s is read by nothing", agent_env->e[i].line,
		      agent_env->e[i].name);

	test_case("every variable the env examples list is documented in docs/");
	struct names documented = {0};
	DIR *d = opendir("docs");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		if (!ends_with(e->d_name, ".md"))
			continue;
		char path[512];
		snprintf(path, sizeof(path), "docs/%s", e->d_name);
		char *text = read_text(path);
		for (const char *p = text; p && *p; p++) {
			if ((p == text || !is_name_char(p[-1])) && is_name_char(*p)) {
				const char *q = p;
				while (is_name_char(*q))
					q++;
				if (is_setting_name(p, (size_t)(q - p)))
					names_add(&documented, p, (size_t)(q - p), path);
				p = q - 1;
			}
		}
		free(text);
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < env->n; i++)
		CHECK(names_has(&documented, env->e[i].name), "%s is in no docs/*.md", env->e[i].name);
	for (size_t i = 0; i < agent_env->n; i++)
		CHECK(names_has(&documented, agent_env->e[i].name), "%s is in no docs/*.md",
		      agent_env->e[i].name);
	names_free(&documented);

	test_case("the env examples' defaults are the ones docs/ tables give");
	doc_defaults_load(docs);
	CHECK(docs->n > 40, "only %zu defaults found in docs/ tables", docs->n);
	CHECK(docs->conflicts[0] == '\0', "docs disagree: %s", docs->conflicts);
	check_defaults("deploy/env.example", env, docs);
	check_defaults("deploy/agent.env.example", agent_env, docs);

	test_case("deploy/env.example leaves the tokens empty and the development settings off");
	static const char *const empty[] = {"EE_ADMIN_TOKEN", "EE_LAUNCHER_TOKEN", "EE_UPTIME_TOKEN",
	                                    "CLOUDFLARE_API_TOKEN"};
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		const struct env_entry *x = env_find(env, empty[i]);
		CHECK(x && x->value[0] == '\0', "%s has a value in the example", empty[i]);
	}
	static const char *const dev[] = {"EE_DEV_ROOT_CA", "EE_DEV_COLLATERAL_FILE", "EE_ALLOWLIST_DIR",
	                                  "EE_SANDBOX_LEGACY_NONCE"};
	for (size_t i = 0; i < sizeof(dev) / sizeof(dev[0]); i++) {
		const struct env_entry *x = env_find(env, dev[i]);
		CHECK(x && !x->active, "%s is set in the example", dev[i]);
	}

	names_free(&server);
	names_free(&agent);
	free(env);
	free(agent_env);
	free(docs);
}

/* ---- case (d): docker -------------------------------------------------------- */

/* A YAML subset: block mappings and sequences by indentation, scalars, flow lists kept as text. */
struct yaml_line {
	int indent;
	char path[256];  /* dotted keys to this line: services.caddy.ports */
	char key[96];    /* "" for a sequence item */
	char value[512]; /* after "key:" or "- ", unquoted; "" when a block follows */
};

struct yaml_doc {
	struct yaml_line l[512];
	size_t n;
	char problems[512];
};

static void unquote(char *s)
{
	size_t len = strlen(s);
	if (len >= 2 && ((s[0] == '"' && s[len - 1] == '"') || (s[0] == '\'' && s[len - 1] == '\''))) {
		memmove(s, s + 1, len - 2);
		s[len - 2] = '\0';
	}
}

static int yaml_parse(const char *path, struct yaml_doc *y)
{
	memset(y, 0, sizeof(*y));
	char *text = read_text(path);
	if (!text)
		return -1;
	struct {
		int indent;
		char key[96];
	} stack[16];
	int depth = 0, number = 0;
	for (char *line = text; line && *line && y->n < 512;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		number++;
		int indent = 0;
		while (line[indent] == ' ')
			indent++;
		if (line[indent] == '\t') {
			snprintf(y->problems, sizeof(y->problems), "a tab indents line %d", number);
			break;
		}
		char *content = line + indent;
		if (*content == '\0' || *content == '#') {
			line = next;
			continue;
		}
		while (depth > 0 && stack[depth - 1].indent >= indent)
			depth--;
		struct yaml_line *l = &y->l[y->n++];
		l->indent = indent;
		l->path[0] = '\0';
		for (int i = 0; i < depth; i++) {
			size_t used = strlen(l->path);
			snprintf(l->path + used, sizeof(l->path) - used, "%s%s", i ? "." : "", stack[i].key);
		}
		if (content[0] == '-' && (content[1] == ' ' || content[1] == '\0')) {
			snprintf(l->value, sizeof(l->value), "%s", content[1] ? content + 2 : "");
		} else {
			char *colon = strstr(content, ": ");
			size_t len = strlen(content);
			if (!colon && len > 0 && content[len - 1] == ':')
				colon = content + len - 1;
			if (!colon) {
				snprintf(y->problems, sizeof(y->problems), "line %d is not key: value", number);
				break;
			}
			snprintf(l->key, sizeof(l->key), "%.*s", (int)(colon - content), content);
			unquote(l->key);
			const char *v = colon[1] ? colon + 2 : "";
			while (*v == ' ')
				v++;
			snprintf(l->value, sizeof(l->value), "%s", v);
			if (depth < 16) {
				stack[depth].indent = indent;
				snprintf(stack[depth].key, sizeof(stack[depth].key), "%s", l->key);
				depth++;
			}
		}
		unquote(l->value);
		line = next;
	}
	free(text);
	return 0;
}

/* The value at path.key (a scalar), or NULL. */
static const char *yaml_get(const struct yaml_doc *y, const char *path, const char *key)
{
	for (size_t i = 0; i < y->n; i++) {
		if (strcmp(y->l[i].path, path) == 0 && strcmp(y->l[i].key, key) == 0)
			return y->l[i].value;
	}
	return NULL;
}

/* Whether the sequence at path holds item. */
static bool yaml_list_has(const struct yaml_doc *y, const char *path, const char *item)
{
	for (size_t i = 0; i < y->n; i++) {
		if (strcmp(y->l[i].path, path) == 0 && y->l[i].key[0] == '\0' &&
		    strcmp(y->l[i].value, item) == 0)
			return true;
	}
	return false;
}

static void test_docker(void)
{
	struct yaml_doc *y = calloc(1, sizeof(*y));
	if (!y) {
		test_fail(__FILE__, __LINE__, "out of memory");
		return;
	}
	test_case("deploy/docker-compose.yml: ee-api, ee-tunneld and caddy from one image "
	          "(structure only: no docker compose here)");
	CHECK(yaml_parse("deploy/docker-compose.yml", y) == 0, "cannot read it");
	CHECK(y->problems[0] == '\0', "%s", y->problems);
	static const char *const services[] = {"ee-api", "ee-tunneld", "caddy"};
	size_t service_count = 0;
	for (size_t i = 0; i < y->n; i++) {
		if (strcmp(y->l[i].path, "services") == 0)
			service_count++;
	}
	CHECK_INT(service_count, 3);
	for (size_t i = 0; i < 3; i++) {
		char path[128];
		snprintf(path, sizeof(path), "services.%s", services[i]);
		const char *image = yaml_get(y, path, "image");
		CHECK(image && strcmp(image, "easyenclave-control-plane:local") == 0, "%s: image %s",
		      services[i], image ? image : "(none)");
		const char *env_file = yaml_get(y, path, "env_file");
		CHECK(env_file && strcmp(env_file, ".env") == 0, "%s: env_file", services[i]);
		CHECK(yaml_get(y, path, "restart") != NULL, "%s: no restart policy", services[i]);
		CHECK(yaml_get(y, path, "command") != NULL, "%s: no command", services[i]);
	}
	const char *context = yaml_get(y, "services.ee-api.build", "context");
	const char *dockerfile = yaml_get(y, "services.ee-api.build", "dockerfile");
	CHECK(context && strcmp(context, "..") == 0, "build context is not the repository");
	CHECK(dockerfile && strcmp(dockerfile, "deploy/Dockerfile") == 0 &&
	          file_exists("deploy/Dockerfile"),
	      "build dockerfile");

	test_case("docker-compose.yml: the database on a volume both database programs share, ports "
	          "on Caddy only, upstreams that match");
	CHECK(yaml_list_has(y, "services.ee-api.volumes", "ee-data:/var/lib/easyenclave"));
	CHECK(yaml_list_has(y, "services.ee-tunneld.volumes", "ee-data:/var/lib/easyenclave"));
	CHECK(!yaml_list_has(y, "services.caddy.volumes", "ee-data:/var/lib/easyenclave"),
	      "Caddy needs no database");
	for (size_t i = 0; i < y->n; i++) {
		/* Every named volume used is declared at the top. */
		if (ends_with(y->l[i].path, ".volumes") && strncmp(y->l[i].path, "services.", 9) == 0) {
			char name[96];
			snprintf(name, sizeof(name), "%.*s", (int)strcspn(y->l[i].value, ":"), y->l[i].value);
			CHECK(yaml_get(y, "volumes", name) != NULL, "volume %s is not declared", name);
		}
		if (strcmp(y->l[i].key, "ports") == 0)
			CHECK(strcmp(y->l[i].path, "services.caddy") == 0, "%s publishes ports", y->l[i].path);
	}
	CHECK(yaml_list_has(y, "services.caddy.ports", "80:80") &&
	          yaml_list_has(y, "services.caddy.ports", "443:443"));
	const char *db = yaml_get(y, "services.ee-api.environment", "EE_DB_PATH");
	const char *db2 = yaml_get(y, "services.ee-tunneld.environment", "EE_DB_PATH");
	CHECK(db && db2 && strcmp(db, db2) == 0 && strncmp(db, "/var/lib/easyenclave/", 21) == 0,
	      "EE_DB_PATH is not the same file on the volume");
	const char *api_cmd = yaml_get(y, "services.ee-api", "command");
	const char *upstream = yaml_get(y, "services.caddy.environment", "EE_API_UPSTREAM");
	CHECK(api_cmd && upstream && strstr(api_cmd, "\"--listen\", \":9000\"") &&
	          strcmp(upstream, "ee-api:9000") == 0,
	      "Caddy's EE_API_UPSTREAM (%s) is not where ee-api listens (%s)", upstream ? upstream : "-",
	      api_cmd ? api_cmd : "-");
	const char *control = yaml_get(y, "services.caddy.environment", "EE_TUNNELD_CONTROL");
	const char *control_port = yaml_get(y, "services.ee-tunneld.environment", "EE_CONTROL_PORT");
	const char *bind = yaml_get(y, "services.ee-tunneld.environment", "EE_CONTROL_BIND");
	char want[64];
	snprintf(want, sizeof(want), "ee-tunneld:%s", control_port ? control_port : "?");
	CHECK(control && strcmp(control, want) == 0, "EE_TUNNELD_CONTROL %s, want %s",
	      control ? control : "-", want);
	CHECK(bind && strcmp(bind, "0.0.0.0") == 0, "ee-tunneld must listen beyond its container");
	const char *caddy_cmd = yaml_get(y, "services.caddy", "command");
	CHECK(caddy_cmd && strstr(caddy_cmd, "/etc/easyenclave/caddy/Caddyfile.production"),
	      "caddy does not run the production Caddyfile");
	free(y);

	test_case("deploy/Dockerfile: Debian 12 build and runtime stages, Caddy with or without the "
	          "DNS module, every copied file exists");
	char *text = read_text("deploy/Dockerfile");
	CHECK(text != NULL);
	if (!text)
		return;
	char stages[16][64];
	int nstages = 0;
	char last_user[64] = "root";
	bool make_runs = false;
	char *copy = strdup(text);
	/* Continuation lines joined, one instruction a line. */
	for (char *p = copy; *p; p++) {
		if (p[0] == '\\' && p[1] == '\n') {
			p[0] = ' ';
			p[1] = ' ';
		}
		if (*p == '\t')
			*p = ' ';
	}
	char *joined = strdup(copy); /* kept whole: the loop below cuts copy into lines */
	for (char *line = copy; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		if (strncmp(line, "FROM ", 5) == 0) {
			char image[128] = "", as[8] = "", name[64] = "";
			sscanf(line + 5, "%127s %7s %63s", image, as, name);
			if (strcasecmp(as, "AS") == 0 && nstages < 16)
				snprintf(stages[nstages++], 64, "%s", name);
			if (strncmp(image, "caddy:", 6) != 0 && strncmp(image, "caddy-", 6) != 0)
				CHECK(strncmp(image, "debian:12", 9) == 0, "a stage from %s, not Debian 12", image);
			snprintf(last_user, sizeof(last_user), "root");
		} else if (strncmp(line, "USER ", 5) == 0) {
			snprintf(last_user, sizeof(last_user), "%.63s", line + 5);
		} else if (strncmp(line, "COPY ", 5) == 0) {
			const char *args = line + 5;
			if (strncmp(args, "--from=", 7) == 0) {
				char stage[64] = "";
				sscanf(args + 7, "%63s", stage);
				bool known = false;
				for (int i = 0; i < nstages; i++)
					known = known || strcmp(stages[i], stage) == 0;
				CHECK(known, "COPY --from=%s: no such stage", stage);
			} else {
				/* Sources are every word but the last, relative to the context (the top). */
				char words[16][256];
				int n = 0;
				const char *p = args;
				while (*p && n < 16) {
					while (*p == ' ' || *p == '\t')
						p++;
					size_t len = strcspn(p, " \t");
					if (len == 0)
						break;
					snprintf(words[n++], 256, "%.*s", (int)len, p);
					p += len;
				}
				for (int i = 0; i + 1 < n; i++)
					CHECK(file_exists(words[i]), "COPY %s: no such file in the repository", words[i]);
			}
		} else if (strncmp(line, "RUN ", 4) == 0 && strstr(line, "make ")) {
			make_runs = strstr(line, "build/bin/ee-api") && strstr(line, "build/bin/ee-tunneld");
		}
		line = next;
	}
	static const char *const wanted[] = {"build", "caddy-cloudflare", "caddy-debian", "caddy",
	                                     "runtime"};
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		bool found = false;
		for (int j = 0; j < nstages; j++)
			found = found || strcmp(stages[j], wanted[i]) == 0;
		CHECK(found, "no stage %s", wanted[i]);
	}
	CHECK(nstages > 0 && strcmp(stages[nstages - 1], "runtime") == 0, "the last stage is not runtime");
	CHECK(strstr(text, "xcaddy build --with github.com/caddy-dns/cloudflare"),
	      "caddy-cloudflare does not build the module");
	CHECK(make_runs, "the build stage does not make ee-api and ee-tunneld");
	CHECK(strcmp(last_user, "root") != 0 && strcmp(last_user, "0") != 0,
	      "the runtime runs as root");
	/* The runtime libraries: Debian 12's names for what GNUmakefile links. */
	static const char *const libs[] = {"libfcgi0ldbl", "libsqlite3-0", "libjson-c5", "libssl3",
	                                   "libcurl4",     "libwebsockets17", "sqlite3"};
	for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
		char pattern[64];
		snprintf(pattern, sizeof(pattern), " %s ", libs[i]);
		CHECK(joined && strstr(joined, pattern), "the runtime stage does not install %s", libs[i]);
		/* The names are real: this Debian 12 machine has them installed (the -dev packages pull them). */
		const char *argv[] = {"dpkg-query", "-W", "-f=${Status}", libs[i], NULL};
		char *out;
		int rc = run(argv, NULL, 30, &out);
		CHECK(rc == 0 && strstr(out, "install ok installed"), "%s is not a Debian 12 package here: %s",
		      libs[i], out);
		free(out);
	}
	/*
	 * What the GNUmakefile needs for the programs is copied into the build
	 * stage: their sources, the SQL compiled in, and every file it includes.
	 */
	char *makefile = read_text("GNUmakefile");
	CHECK(makefile != NULL);
	static const char *const sources[] = {"lib", "fcgi", "tunneld", "tools", "sql", "deploy"};
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		char want_copy[128];
		snprintf(want_copy, sizeof(want_copy), "COPY %s/ %s/", sources[i], sources[i]);
		CHECK(strstr(text, want_copy), "the build stage lacks %s", want_copy);
	}
	for (const char *p = makefile; p && *p;) {
		if (strncmp(p, "include ", 8) == 0) {
			const char *start = p + 8;
			size_t len = strcspn(start, "/\n");
			char want_copy[128];
			snprintf(want_copy, sizeof(want_copy), "COPY %.*s/ %.*s/", (int)len, start, (int)len,
			         start);
			CHECK(strstr(text, want_copy), "GNUmakefile includes %.*s, but the build stage lacks %s",
			      (int)strcspn(start, "\n"), start, want_copy);
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	free(makefile);
	free(joined);
	free(copy);
	free(text);
}

/* ---- case (g): deploy/install into a staging directory ------------------------- */

static void test_install(void)
{
	test_case("deploy/install (DESTDIR) installs every program the units run and the Caddyfile");
	char stage[400], destdir[450], bindir[450];
	snprintf(stage, sizeof(stage), "%s/stage", scratch);
	snprintf(destdir, sizeof(destdir), "DESTDIR=%s", stage);
	snprintf(bindir, sizeof(bindir), "EE_BIN_DIR=%s", stack_bin_dir());
	const char *env[] = {destdir, bindir, NULL};
	const char *argv[] = {"deploy/install", "--domain", DOMAIN, NULL};
	char *out;
	int rc = run(argv, env, 120, &out);
	CHECK(rc == 0, "exit %d: %s", rc, last_lines(out));
	free(out);
	CHECK(unit_programs.n >= 4, "the units name only %zu programs", unit_programs.n);
	for (size_t i = 0; i < unit_programs.n; i++) {
		char path[700];
		snprintf(path, sizeof(path), "%s/usr/local/bin/%s", stage, unit_programs.name[i]);
		CHECK(is_executable_file(path), "%s (run by %s) is not installed", unit_programs.name[i],
		      unit_programs.where[i]);
	}
	static const char *const files[] = {
		"/etc/easyenclave/caddy/Caddyfile.production", "/etc/easyenclave/caddy/tls-cloudflare.caddy",
		"/etc/easyenclave/caddy/tls-acme.caddy",       "/etc/easyenclave/caddy/tls-internal.caddy",
		"/etc/easyenclave/caddy/trusted-proxies.caddy",
		"/etc/systemd/system/easyenclave.target",     "/etc/systemd/system/ee-api.socket",
		"/etc/systemd/system/ee-caddy.service",        "/usr/local/share/doc/easyenclave/DEPLOY.md",
		"/usr/local/share/doc/easyenclave/env.example",
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[700];
		snprintf(path, sizeof(path), "%s%s", stage, files[i]);
		CHECK(file_exists(path), "%s is not installed", files[i]);
	}

	test_case("deploy/install writes /etc/easyenclave/env once, with fresh tokens, mode 0640");
	char env_path[500];
	snprintf(env_path, sizeof(env_path), "%s/etc/easyenclave/env", stage);
	struct env_file *f = calloc(1, sizeof(*f));
	CHECK(f && env_parse(env_path, f) == 0, "no env file");
	if (f && f->n > 0) {
		static const char *const tokens[] = {"EE_ADMIN_TOKEN", "EE_LAUNCHER_TOKEN", "EE_UPTIME_TOKEN"};
		for (size_t i = 0; i < 3; i++) {
			const struct env_entry *x = env_find(f, tokens[i]);
			CHECK(x && x->active && strlen(x->value) == 64 &&
			          strspn(x->value, "0123456789abcdef") == 64,
			      "%s is not 64 hex digits", tokens[i]);
		}
		const struct env_entry *a = env_find(f, "EE_ADMIN_TOKEN"), *b = env_find(f, "EE_UPTIME_TOKEN");
		CHECK(a && b && strcmp(a->value, b->value) != 0, "the tokens are the same");
		const struct env_entry *domain = env_find(f, "EE_DOMAIN");
		CHECK(domain && strcmp(domain->value, DOMAIN) == 0, "EE_DOMAIN not set from --domain");
	}
	struct stat st;
	CHECK(stat(env_path, &st) == 0 && (st.st_mode & 0777) == 0640, "mode %o", st.st_mode & 0777);
	char *before = read_text(env_path);
	const char *again[] = {"deploy/install", NULL};
	rc = run(again, env, 120, &out);
	CHECK(rc == 0, "second run: exit %d: %s", rc, last_lines(out));
	free(out);
	char *after = read_text(env_path);
	CHECK(before && after && strcmp(before, after) == 0, "a second install changed the env file");
	free(before);
	free(after);
	free(f);

	test_case("the installed Caddyfile validates where it was installed (imports beside it)");
	char config[600];
	snprintf(config, sizeof(config), "%s/etc/easyenclave/caddy/Caddyfile.production", stage);
	const char *caddy_env[] = PRODUCTION_ENV("tls-internal.caddy");
	check_valid(config, caddy_env);
}

/* ---- case (e): backups while money moves --------------------------------------- */

static const char *const account_names[ACCOUNTS] = {"bk-a", "bk-b", "bk-c", "bk-d"};

/* One client: transfers until told to stop; each 200 as "<transfer_id> <monotonic ms>" in its file. */
static void transfer_client(struct stack *st, int id, const char *record, const char *stop_file)
{
	FILE *f = fopen(record, "w");
	if (!f)
		_exit(3);
	srand((unsigned)(getpid() * 7919 + id));
	long long until = monotonic_ms() + TRANSFER_SECONDS * 1000LL;
	for (int i = 0; i < TRANSFERS_MAX && monotonic_ms() < until; i++) {
		if (access(stop_file, F_OK) == 0)
			break;
		int from = rand() % ACCOUNTS, to = (from + 1 + rand() % (ACCOUNTS - 1)) % ACCOUNTS;
		int cents = 1 + rand() % 500;
		char body[200];
		snprintf(body, sizeof(body),
		         "{\"from_account\":\"%s\",\"to_account\":\"%s\",\"amount_usd\":\"%d.%02d\"}",
		         account_names[from], account_names[to], cents / 100, cents % 100);
		struct http_result r;
		stack_request(st, "POST", "/v1/credits/transfer", TEST_ADMIN_TOKEN, body, &r);
		long long now = monotonic_ms();
		const char *id_text = r.status == 200 ? http_json_string(&r, "transfer_id") : NULL;
		if (id_text)
			fprintf(f, "%s %lld\n", id_text, now);
		else if (!(r.status == 400 && http_reason(&r) && strcmp(http_reason(&r), "insufficient_funds") == 0))
			fprintf(f, "! %ld %s\n", r.status, r.body ? test_printable(r.body) : "");
		fflush(f);
		http_result_free(&r);
	}
	fclose(f);
	_exit(0);
}

struct answered {
	char id[80];
	long long at;
};

/* Every transfer the clients saw answered 200, with when. */
static size_t read_answered(const char *dir, struct answered **out, char *unexpected, size_t size)
{
	size_t n = 0, cap = 1024;
	*out = malloc(cap * sizeof(**out));
	unexpected[0] = '\0';
	for (int c = 0; c < TRANSFER_CLIENTS && *out; c++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/client-%d.txt", dir, c);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		char line[512];
		while (fgets(line, sizeof(line), f)) {
			if (line[0] == '!') {
				if (!unexpected[0])
					snprintf(unexpected, size, "%s", line);
				continue;
			}
			if (n == cap) {
				cap *= 2;
				struct answered *grown = realloc(*out, cap * sizeof(**out));
				if (!grown)
					break;
				*out = grown;
			}
			if (sscanf(line, "%79s %lld", (*out)[n].id, &(*out)[n].at) == 2)
				n++;
		}
		fclose(f);
	}
	return n;
}

/* Whether db holds the transfer id (ledger_txns); -1 if it cannot be read. */
static int db_has_txn(sqlite3 *h, const char *id)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(h, "SELECT 1 FROM ledger_txns WHERE txn_id = ?1 AND kind = 'transfer'",
	                       -1, &s, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static long long db_count(const char *path, const char *sql)
{
	sqlite3 *h;
	long long n = -1;
	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *s;
		if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
			n = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
	return n;
}

static char *integrity(const char *path)
{
	const char *argv[] = {"sqlite3", "-readonly", path, "PRAGMA integrity_check;", NULL};
	char *out;
	run(argv, NULL, 60, &out);
	return out;
}

static void backup_env(const char *db, const char *dir, char env_db[], char env_dir[], char env_api[],
                       size_t size)
{
	snprintf(env_db, size, "EE_DB_PATH=%s", db);
	snprintf(env_dir, size, "EE_BACKUP_DIR=%s", dir);
	snprintf(env_api, size, "EE_API_BIN=%s/ee-api", stack_bin_dir());
}

static void test_backup(void)
{
	test_case("backup: a stack with funded accounts");
	struct stack st;
	if (stack_start(&st, "deploy-backup", NULL) != 0) {
		stack_stop(&st);
		return;
	}
	for (int i = 0; i < ACCOUNTS; i++) {
		char body[128];
		snprintf(body, sizeof(body), "{\"account_id\":\"%s\",\"amount_usd\":\"1000\"}", account_names[i]);
		struct http_result r;
		stack_request(&st, "POST", "/v1/credits/purchase", TEST_ADMIN_TOKEN, body, &r);
		CHECK_INT(r.status, 200);
		http_result_free(&r);
	}
	char backups[400], stop_file[400], log[400];
	snprintf(backups, sizeof(backups), "%s/backups", st.dir);
	snprintf(stop_file, sizeof(stop_file), "%s/stop-clients", st.dir);
	snprintf(log, sizeof(log), "%s/ee-backup.log", st.dir);
	char env_db[512], env_dir[512], env_api[512];
	backup_env(st.db_path, backups, env_db, env_dir, env_api, sizeof(env_db));
	const char *env[] = {env_db, env_dir, env_api, "EE_BACKUP_KEEP=10", NULL};

	test_case("backup: %d rounds of deploy/ee-backup while %d clients transfer through Caddy",
	          BACKUP_ROUNDS, TRANSFER_CLIENTS);
	pid_t clients[TRANSFER_CLIENTS];
	for (int c = 0; c < TRANSFER_CLIENTS; c++) {
		char record[512];
		snprintf(record, sizeof(record), "%s/client-%d.txt", st.dir, c);
		clients[c] = fork();
		if (clients[c] == 0)
			transfer_client(&st, c, record, stop_file);
	}
	/* Let money move before the first backup. */
	static const char count_transfers[] =
		"SELECT COUNT(*) FROM ledger_txns WHERE kind = 'transfer'";
	for (int i = 0; i < 200 && db_count(st.db_path, count_transfers) < 30; i++)
		sleep_ms(50);
	char paths[BACKUP_ROUNDS][512];
	long long began[BACKUP_ROUNDS];
	long long live_before[BACKUP_ROUNDS];
	FILE *logf = fopen(log, "w");
	for (int b = 0; b < BACKUP_ROUNDS; b++) {
		paths[b][0] = '\0';
		live_before[b] =
			db_count(st.db_path, count_transfers);
		began[b] = monotonic_ms();
		const char *argv[] = {"deploy/ee-backup", NULL};
		char *out;
		int rc = run(argv, env, 120, &out);
		if (logf)
			fprintf(logf, "round %d: exit %d\n%s\n", b, rc, out);
		CHECK(rc == 0, "round %d: exit %d: %s", b, rc, last_lines(out));
		/* The path is the last line of standard output. */
		char *line = out, *last = NULL;
		for (char *p = strtok(line, "\n"); p; p = strtok(NULL, "\n"))
			last = p;
		if (rc == 0 && last)
			snprintf(paths[b], sizeof(paths[b]), "%s", last);
		free(out);
		sleep_ms(150);
	}
	if (logf)
		fclose(logf);
	check_no_sanitizer_report(log);
	write_text(stop_file, "stop\n");
	for (int c = 0; c < TRANSFER_CLIENTS; c++) {
		int status;
		waitpid(clients[c], &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "client %d died", c);
	}
	struct answered *answered;
	char unexpected[512];
	size_t n = read_answered(st.dir, &answered, unexpected, sizeof(unexpected));
	CHECK(unexpected[0] == '\0', "a client got an unexpected answer: %s", unexpected);
	CHECK(n > 0, "no transfer was answered");
	printf("# %zu transfers answered 200 during the backups\n", n);

	test_case("backup: each copy passes integrity_check and holds every transfer answered before it "
	          "began, and none the live database lacks");
	sqlite3 *live = NULL;
	CHECK(sqlite3_open_v2(st.db_path, &live, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
	for (int b = 0; b < BACKUP_ROUNDS; b++) {
		if (!paths[b][0])
			continue;
		char *ok = integrity(paths[b]);
		CHECK(strcmp(ok, "ok\n") == 0, "%s: %s", paths[b], ok);
		free(ok);
		sqlite3 *h;
		if (sqlite3_open_v2(paths[b], &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
			test_fail(__FILE__, __LINE__, "cannot open %s", paths[b]);
			sqlite3_close(h);
			continue;
		}
		size_t before = 0, missing = 0;
		for (size_t i = 0; i < n; i++) {
			if (answered[i].at >= began[b])
				continue;
			before++;
			if (db_has_txn(h, answered[i].id) != 1 && missing++ == 0)
				test_fail(__FILE__, __LINE__, "backup %d lacks transfer %s, answered %lld ms before it began",
				          b, answered[i].id, began[b] - answered[i].at);
		}
		CHECK_INT(missing, 0);
		long long in_copy = db_count(paths[b], count_transfers);
		CHECK(in_copy >= live_before[b], "backup %d holds %lld transfers, the database had %lld before it",
		      b, in_copy, live_before[b]);
		/* Nothing in a copy that the live database does not have. */
		sqlite3_stmt *s;
		size_t phantom = 0;
		if (sqlite3_prepare_v2(h, "SELECT txn_id FROM ledger_txns", -1, &s, NULL) == SQLITE_OK) {
			while (sqlite3_step(s) == SQLITE_ROW) {
				const char *id = (const char *)sqlite3_column_text(s, 0);
				sqlite3_stmt *q;
				if (sqlite3_prepare_v2(live, "SELECT 1 FROM ledger_txns WHERE txn_id = ?1", -1, &q,
				                       NULL) == SQLITE_OK) {
					sqlite3_bind_text(q, 1, id, -1, SQLITE_TRANSIENT);
					if (sqlite3_step(q) != SQLITE_ROW)
						phantom++;
					sqlite3_finalize(q);
				}
			}
			sqlite3_finalize(s);
		}
		CHECK_INT(phantom, 0);
		sqlite3_close(h);
		/* The ledger, on a copy: opening a database for it sets WAL mode, a write. */
		char copy_path[600];
		snprintf(copy_path, sizeof(copy_path), "%s/ledger-check-%d.db", st.dir, b);
		FILE *in = fopen(paths[b], "rb"), *outf = fopen(copy_path, "wb");
		if (in && outf) {
			char chunk[65536];
			size_t got;
			while ((got = fread(chunk, 1, sizeof(chunk), in)) > 0)
				fwrite(chunk, 1, got, outf);
		}
		if (in)
			fclose(in);
		if (outf)
			fclose(outf);
		check_ledger(copy_path);
		/* One self-contained file: reading it left nothing beside it. */
		char wal[600];
		snprintf(wal, sizeof(wal), "%.500s-wal", paths[b]);
		CHECK(!file_exists(wal), "reading a backup left %s", wal);
		printf("# backup %d: %zu transfers answered before it began, %lld in it\n", b, before, in_copy);
	}
	sqlite3_close(live);
	free(answered);

	test_case("restore: ee-restore refuses while the database is open, and changes nothing");
	char digest_before[65], digest_after[65];
	CHECK(db_digest(st.db_path, digest_before) == 0);
	if (paths[BACKUP_ROUNDS - 1][0]) {
		char env_restore_db[512];
		snprintf(env_restore_db, sizeof(env_restore_db), "EE_DB_PATH=%s", st.db_path);
		const char *renv[] = {env_restore_db, env_api, NULL};
		const char *argv[] = {"deploy/ee-restore", paths[BACKUP_ROUNDS - 1], NULL};
		char *out;
		int rc = run(argv, renv, 120, &out);
		CHECK(rc == 1 && strstr(out, "is in use") && strstr(out, "stop the control plane"),
		      "exit %d: %s", rc, last_lines(out));
		free(out);
	}
	CHECK(db_digest(st.db_path, digest_after) == 0 && strcmp(digest_before, digest_after) == 0,
	      "the live database changed");

	test_case("restore: the last backup into a new stack; its ee-api serves it, the ledger holds");
	struct stack fresh;
	struct stack_options opt = {.no_tunneld = true};
	if (stack_start(&fresh, "deploy-restored", &opt) != 0 || !paths[BACKUP_ROUNDS - 1][0]) {
		stack_stop(&fresh);
		stack_stop(&st);
		return;
	}
	/* Stopped first, as DEPLOY.md says. */
	kill(fresh.api_pid, SIGTERM);
	waitpid(fresh.api_pid, NULL, 0);
	fresh.api_pid = 0;
	char env_fresh_db[512];
	snprintf(env_fresh_db, sizeof(env_fresh_db), "EE_DB_PATH=%s", fresh.db_path);
	const char *renv[] = {env_fresh_db, env_api, NULL};
	const char *rargv[] = {"deploy/ee-restore", paths[BACKUP_ROUNDS - 1], NULL};
	char *out;
	int rc = run(rargv, renv, 120, &out);
	CHECK(rc == 0 && strstr(out, fresh.db_path), "exit %d: %s", rc, last_lines(out));
	free(out);
	char *ok = integrity(fresh.db_path);
	CHECK(strcmp(ok, "ok\n") == 0, "%s", ok);
	free(ok);
	CHECK(stack_restart_api(&fresh) == 0, "ee-api did not start on the restored database");
	check_ledger(fresh.db_path);
	long long copied = db_count(paths[BACKUP_ROUNDS - 1], "SELECT COUNT(*) FROM ledger_txns");
	CHECK(copied > 0 && db_count(fresh.db_path, "SELECT COUNT(*) FROM ledger_txns") == copied);
	/* Balances through the API are the backup's. */
	sqlite3 *h;
	if (sqlite3_open_v2(paths[BACKUP_ROUNDS - 1], &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		for (int i = 0; i < ACCOUNTS; i++) {
			sqlite3_stmt *s;
			long long want = -2;
			if (sqlite3_prepare_v2(h, "SELECT balance_cents FROM accounts WHERE account_id = ?1", -1, &s,
			                       NULL) == SQLITE_OK) {
				sqlite3_bind_text(s, 1, account_names[i], -1, SQLITE_STATIC);
				if (sqlite3_step(s) == SQLITE_ROW)
					want = sqlite3_column_int64(s, 0);
				sqlite3_finalize(s);
			}
			CHECK_INT(stack_balance(&fresh, account_names[i], NULL), want);
		}
	}
	sqlite3_close(h);
	struct http_result r;
	stack_request(&fresh, "POST", "/v1/credits/transfer", TEST_ADMIN_TOKEN,
	              "{\"from_account\":\"bk-a\",\"to_account\":\"bk-b\",\"amount_usd\":\"0.01\"}", &r);
	CHECK_INT(r.status, 200);
	http_result_free(&r);
	check_ledger(fresh.db_path);
	stack_stop(&fresh);

	test_case("ee-backup keeps the newest EE_BACKUP_KEEP copies");
	const char *keep_env[] = {env_db, env_dir, env_api, "EE_BACKUP_KEEP=2", NULL};
	const char *bargv[] = {"deploy/ee-backup", NULL};
	rc = run(bargv, keep_env, 120, &out);
	CHECK(rc == 0, "exit %d: %s", rc, last_lines(out));
	free(out);
	int files = 0;
	DIR *d = opendir(backups);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			CHECK(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0,
			      "a temporary file is left: %s", e->d_name);
		else if (ends_with(e->d_name, ".db"))
			files++;
		else
			test_fail(__FILE__, __LINE__, "a file beside the backups: %s", e->d_name);
	}
	if (d)
		closedir(d);
	CHECK_INT(files, 2);
	CHECK(!file_exists(paths[0]), "the oldest backup is still there");

	test_case("ee-backup of a missing database fails clearly and creates no database");
	char missing[512], env_missing[600];
	snprintf(missing, sizeof(missing), "%s/no-such.db", st.dir);
	snprintf(env_missing, sizeof(env_missing), "EE_DB_PATH=%s", missing);
	const char *menv[] = {env_missing, env_dir, env_api, NULL};
	rc = run(bargv, menv, 60, &out);
	CHECK(rc == 1 && strstr(out, "no database at"), "exit %d: %s", rc, last_lines(out));
	CHECK(!file_exists(missing), "ee-backup created %s", missing);
	free(out);

	test_case("ee-backup to a destination it cannot write fails clearly and leaves nothing");
	char blocker[512], env_blocked[600];
	snprintf(blocker, sizeof(blocker), "%s/not-a-directory", st.dir);
	write_text(blocker, "a file\n");
	snprintf(env_blocked, sizeof(env_blocked), "EE_BACKUP_DIR=%s/sub", blocker);
	const char *benv[] = {env_db, env_blocked, env_api, NULL};
	rc = run(bargv, benv, 60, &out);
	CHECK(rc == 1 && strstr(out, "cannot create the backup directory"), "exit %d: %s", rc,
	      last_lines(out));
	free(out);
	snprintf(env_blocked, sizeof(env_blocked), "EE_BACKUP_DIR=%s", blocker);
	rc = run(bargv, benv, 60, &out);
	CHECK(rc == 1 && strstr(out, "cannot create the backup directory"),
	      "a file as the directory: exit %d: %s", rc, last_lines(out));
	free(out);
	char *blocker_text = read_text(blocker);
	CHECK(blocker_text && strcmp(blocker_text, "a file\n") == 0, "the file was changed");
	free(blocker_text);

	test_case("ee-backup refuses a bad EE_BACKUP_KEEP; ee-restore refuses a corrupt backup");
	const char *kenv[] = {env_db, env_dir, env_api, "EE_BACKUP_KEEP=0", NULL};
	rc = run(bargv, kenv, 60, &out);
	CHECK(rc == 2 && strstr(out, "EE_BACKUP_KEEP"), "exit %d: %s", rc, last_lines(out));
	free(out);
	char corrupt[512], target[512], env_target[600];
	snprintf(corrupt, sizeof(corrupt), "%s/corrupt.db", st.dir);
	write_text(corrupt, "SQLite format 3 but not really\n");
	snprintf(target, sizeof(target), "%s/restore-target.db", st.dir);
	snprintf(env_target, sizeof(env_target), "EE_DB_PATH=%s", target);
	const char *cenv[] = {env_target, env_api, NULL};
	const char *cargv[] = {"deploy/ee-restore", corrupt, NULL};
	rc = run(cargv, cenv, 60, &out);
	CHECK(rc == 1 && strstr(out, "ee-restore:"), "exit %d: %s", rc, last_lines(out));
	CHECK(!file_exists(target), "a corrupt backup was restored");
	free(out);

	stack_stop(&st);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	signal(SIGPIPE, SIG_IGN);
	if (stack_make_dir(scratch, sizeof(scratch), "deploy") != 0) {
		fprintf(stderr, "cannot make a scratch directory\n");
		return 1;
	}
	snprintf(caddy_home, sizeof(caddy_home), "%s/caddy-home", scratch);
	mkdir(caddy_home, 0700);

	test_caddy_validate();
	test_production_served();
	test_ondemand_ask();
	test_systemd_units();
	test_variables();
	test_docker();
	test_install();
	test_backup();

	names_free(&unit_programs);
	int rc = test_finish();
	if (rc == 0 && !getenv("EE_TEST_KEEP"))
		stack_remove_dir(scratch);
	curl_global_cleanup();
	return rc;
}
