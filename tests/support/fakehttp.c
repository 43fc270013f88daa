/* fakehttp.c - canned HTTP answers from a forked child, for tests; see fakehttp.h. */
#include "fakehttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX (64 * 1024)

int fakehttp_open(struct fakehttp *f, const char *log_path)
{
	memset(f, 0, sizeof(*f));
	f->listen_fd = -1;
	snprintf(f->log_path, sizeof(f->log_path), "%s", log_path);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(addr);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
		close(fd);
		return -1;
	}
	f->listen_fd = fd;
	f->port = ntohs(addr.sin_port);
	snprintf(f->base_url, sizeof(f->base_url), "http://127.0.0.1:%d", f->port);
	fakehttp_clear_log(f);
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void log_request(const char *path, const char *head, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	write_all(fd, head, len);
	close(fd);
}

static void serve_one(int fd, const char *log_path, const struct fakehttp_route *routes,
                      size_t count)
{
	static char head[HEAD_MAX + 1];
	size_t len = 0;
	char *end = NULL;
	while (len < HEAD_MAX) {
		ssize_t r = read(fd, head + len, HEAD_MAX - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		len += (size_t)r;
		head[len] = '\0';
		if ((end = strstr(head, "\r\n\r\n")) != NULL)
			break;
	}
	if (!end)
		return;
	size_t head_len = (size_t)(end - head) + 4;
	log_request(log_path, head, head_len);

	/* "GET <target> HTTP/1.1" */
	char target[4096] = "";
	const char *sp1 = memchr(head, ' ', head_len);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', head_len - (size_t)(sp1 + 1 - head)) : NULL;
	if (sp1 && sp2 && (size_t)(sp2 - sp1 - 1) < sizeof(target)) {
		memcpy(target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
		target[sp2 - sp1 - 1] = '\0';
	}
	const struct fakehttp_route *route = NULL;
	for (size_t i = 0; i < count && !route; i++) {
		if (routes[i].target && strcmp(routes[i].target, target) == 0)
			route = &routes[i];
	}
	static const struct fakehttp_route not_found = {.status = 404, .body = "not found"};
	if (!route)
		route = &not_found;
	if (route->delay_ms > 0)
		sleep_ms(route->delay_ms);
	if (route->hang_up)
		return;

	size_t body_len = route->body ? (route->body_len ? route->body_len : strlen(route->body)) : 0;
	char status_line[256];
	int n = snprintf(status_line, sizeof(status_line), "HTTP/1.1 %d Canned\r\nConnection: close\r\n",
	                 route->status);
	write_all(fd, status_line, (size_t)n);
	if (!route->no_length) {
		n = snprintf(status_line, sizeof(status_line), "Content-Length: %zu\r\n", body_len);
		write_all(fd, status_line, (size_t)n);
	}
	if (route->headers)
		write_all(fd, route->headers, strlen(route->headers));
	write_all(fd, "\r\n", 2);
	if (body_len)
		write_all(fd, route->body, body_len);
}

static void serve_forever(int listen_fd, const char *log_path,
                          const struct fakehttp_route *routes, size_t count)
{
	/* A client that gave up (a timeout test) must not kill the server. */
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		serve_one(fd, log_path, routes, count);
		shutdown(fd, SHUT_WR);
		/* Let the client read everything before the close. */
		char drain[256];
		struct timeval tv = {0, 200000};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (read(fd, drain, sizeof(drain)) > 0)
			;
		close(fd);
	}
}

int fakehttp_serve(struct fakehttp *f, const struct fakehttp_route *routes, size_t count)
{
	fakehttp_stop(f);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		serve_forever(f->listen_fd, f->log_path, routes, count);
		_exit(0);
	}
	f->pid = pid;
	return 0;
}

void fakehttp_stop(struct fakehttp *f)
{
	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		while (waitpid(f->pid, NULL, 0) < 0 && errno == EINTR)
			;
		f->pid = 0;
	}
}

void fakehttp_close(struct fakehttp *f)
{
	fakehttp_stop(f);
	if (f->listen_fd >= 0)
		close(f->listen_fd);
	f->listen_fd = -1;
	unlink(f->log_path);
}

char *fakehttp_log(const struct fakehttp *f)
{
	FILE *fp = fopen(f->log_path, "rb");
	if (!fp)
		return strdup("");
	size_t cap = 4096, len = 0;
	char *text = malloc(cap);
	while (text) {
		if (len + 1024 + 1 > cap) {
			char *p = realloc(text, cap * 2);
			if (!p) {
				free(text);
				text = NULL;
				break;
			}
			text = p;
			cap *= 2;
		}
		size_t got = fread(text + len, 1, cap - len - 1, fp);
		len += got;
		if (got == 0)
			break;
	}
	fclose(fp);
	if (text)
		text[len] = '\0';
	return text;
}

void fakehttp_clear_log(const struct fakehttp *f)
{
	int fd = open(f->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

/* Calls fn for each logged request head; returns how many fn accepted. */
static int count_heads(const struct fakehttp *f, int (*fn)(const char *head, const void *arg),
                       const void *arg)
{
	char *log = fakehttp_log(f);
	if (!log)
		return -1;
	int n = 0;
	char *p = log;
	while (*p) {
		char *end = strstr(p, "\r\n\r\n");
		if (!end)
			break;
		end[2] = '\0'; /* keep the last header's CRLF */
		n += fn(p, arg);
		p = end + 4;
	}
	free(log);
	return n;
}

static int line_has(const char *head, const void *arg)
{
	const char *needle = arg;
	const char *eol = strstr(head, "\r\n");
	size_t line_len = eol ? (size_t)(eol - head) : strlen(head);
	if (!needle)
		return 1;
	size_t nl = strlen(needle);
	for (size_t i = 0; i + nl <= line_len; i++) {
		if (memcmp(head + i, needle, nl) == 0)
			return 1;
	}
	return 0;
}

int fakehttp_count(const struct fakehttp *f, const char *needle)
{
	return count_heads(f, line_has, needle);
}

struct header_query {
	const char *name, *value;
};

static int header_has(const char *head, const void *arg)
{
	const struct header_query *q = arg;
	size_t nl = strlen(q->name);
	const char *line = strstr(head, "\r\n");
	while (line && line[2]) {
		line += 2;
		const char *eol = strstr(line, "\r\n");
		if (!eol)
			break;
		if (strncasecmp(line, q->name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (*v == ' ')
				v++;
			if (!q->value ||
			    ((size_t)(eol - v) == strlen(q->value) && memcmp(v, q->value, (size_t)(eol - v)) == 0))
				return 1;
		}
		line = eol;
	}
	return 0;
}

int fakehttp_count_header(const struct fakehttp *f, const char *name, const char *value)
{
	struct header_query q = {name, value};
	return count_heads(f, header_has, &q);
}
