/* echohttp.c - the echoing test backend; see echohttp.h. */
#include "echohttp.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "http_parser.h"
#include "util.h"

#define ECHO_MAX_BODY (64u * 1024 * 1024)

void echohttp_pattern(unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)((i * 7 + 3) & 0xff);
}

static const char *header_value(const struct http_request_head *h, const char *name, size_t *len)
{
	for (int i = 0; i < h->header_count; i++) {
		if (h->headers[i].name_len == strlen(name) &&
		    strncasecmp(h->headers[i].name, name, h->headers[i].name_len) == 0) {
			*len = h->headers[i].value_len;
			return h->headers[i].value;
		}
	}
	return NULL;
}

/* Writes status line, fields, Content-Length, and the body unless head. */
static int answer(int fd, int status, const char *fields, const void *body, size_t body_len,
                  bool head, bool keep_alive)
{
	struct buf out;
	buf_init(&out);
	buf_printf(&out, "HTTP/1.1 %d %s\r\n%s", status, util_http_status_text(status),
	           fields ? fields : "");
	if (status != 204 && status != 304)
		buf_printf(&out, "Content-Length: %zu\r\n", body_len);
	if (!keep_alive)
		buf_puts(&out, "Connection: close\r\n");
	buf_puts(&out, "\r\n");
	if (!head && status != 204 && status != 304 && body_len)
		buf_append(&out, body, body_len);
	int rc = out.failed ? -1 : test_write_all(fd, out.data, out.len);
	buf_free(&out);
	return rc;
}

static int answer_echo(int fd, const struct http_request_head *h, const unsigned char *body,
                       size_t body_len, bool head, bool keep_alive)
{
	struct buf f;
	buf_init(&f);
	size_t vlen = 0;
	const char *v = header_value(h, "content-type", &vlen);
	if (v)
		buf_printf(&f, "Content-Type: %.*s\r\n", (int)vlen, v);
	else
		buf_puts(&f, "Content-Type: application/octet-stream\r\n");
	buf_printf(&f, "X-Echo-Method: %.*s\r\n", (int)h->method_len, h->method);
	buf_printf(&f, "X-Echo-Target: %.*s\r\n", (int)h->target_len, h->target);
	buf_printf(&f, "X-Echo-Body-Length: %zu\r\n", body_len);
	char digest[65];
	util_sha256_hex(body, body_len, digest);
	buf_printf(&f, "X-Echo-Body-Sha256: %s\r\n", digest);
	if (h->host)
		buf_printf(&f, "X-Echo-Host: %.*s\r\n", (int)h->host_len, h->host);
	buf_puts(&f, "X-Echo-Header-Names: ");
	for (int i = 0; i < h->header_count; i++) {
		if (i)
			buf_puts(&f, ",");
		for (size_t j = 0; j < h->headers[i].name_len; j++) {
			char c = (char)tolower((unsigned char)h->headers[i].name[j]);
			buf_append(&f, &c, 1);
		}
	}
	buf_puts(&f, "\r\n");
	for (int i = 0; i < h->header_count; i++) {
		const struct http_header *x = &h->headers[i];
		if (x->name_len > 7 && strncasecmp(x->name, "x-test-", 7) == 0)
			buf_printf(&f, "X-Echoed-%.*s: %.*s\r\n", (int)(x->name_len - 7), x->name + 7,
			           (int)x->value_len, x->value);
	}
	int status = 200;
	v = header_value(h, "x-echo-status", &vlen);
	if (v && vlen == 3)
		status = atoi(v);
	int rc = f.failed ? -1 : answer(fd, status, f.data, body, body_len, head, keep_alive);
	buf_free(&f);
	return rc;
}

static int answer_chunked(int fd, size_t n, bool head, bool keep_alive)
{
	struct buf out;
	buf_init(&out);
	buf_puts(&out, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
	               "Transfer-Encoding: chunked\r\n");
	if (!keep_alive)
		buf_puts(&out, "Connection: close\r\n");
	buf_puts(&out, "\r\n");
	if (!head) {
		unsigned char *data = malloc(n ? n : 1);
		if (!data) {
			buf_free(&out);
			return -1;
		}
		echohttp_pattern(data, n);
		for (size_t off = 0; off < n; off += 1000) {
			size_t len = n - off < 1000 ? n - off : 1000;
			buf_printf(&out, "%zx\r\n", len);
			buf_append(&out, data + off, len);
			buf_puts(&out, "\r\n");
		}
		buf_puts(&out, "0\r\n\r\n");
		free(data);
	}
	int rc = out.failed ? -1 : test_write_all(fd, out.data, out.len);
	buf_free(&out);
	return rc;
}

static bool target_is(const struct http_request_head *h, const char *prefix, const char **rest)
{
	size_t n = strlen(prefix);
	if (h->target_len < n || memcmp(h->target, prefix, n) != 0)
		return false;
	*rest = h->target + n;
	return true;
}

static int route(int fd, const struct http_request_head *h, const unsigned char *body,
                 size_t body_len)
{
	bool head = h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0;
	bool ka = h->keep_alive;
	const char *rest;
	if (target_is(h, "/echo", &rest))
		return answer_echo(fd, h, body, body_len, head, ka);
	if (target_is(h, "/bytes/", &rest) || target_is(h, "/chunked/", &rest)) {
		size_t n = strtoul(rest, NULL, 10);
		if (n > ECHO_MAX_BODY)
			return answer(fd, 400, NULL, "too big", 7, head, ka);
		if (h->target[1] == 'c')
			return answer_chunked(fd, n, head, ka);
		unsigned char *data = malloc(n ? n : 1);
		if (!data)
			return -1;
		echohttp_pattern(data, n);
		int rc = answer(fd, 200, "Content-Type: application/octet-stream\r\n", data, n, head,
		                ka);
		free(data);
		return rc;
	}
	if (target_is(h, "/slow/", &rest)) {
		long ms = strtol(rest, NULL, 10);
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		return answer(fd, 200, "Content-Type: text/plain\r\n", "slow", 4, head, ka);
	}
	if (target_is(h, "/status/", &rest)) {
		int status = atoi(rest);
		if (status < 200 || status > 599)
			status = 400;
		char text[32];
		int n = snprintf(text, sizeof(text), "status %d", status);
		return answer(fd, status, "Content-Type: text/plain\r\n", text, (size_t)n, head, ka);
	}
	if (target_is(h, "/cookies", &rest))
		return answer(fd, 200,
		              "Content-Type: text/plain\r\nSet-Cookie: a=1; Path=/\r\n"
		              "Set-Cookie: b=2; HttpOnly\r\n",
		              "cookies", 7, head, ka);
	if (target_is(h, "/gzip", &rest)) {
		static const unsigned char fake_gzip[] = {0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad,
		                                          0xbe, 0xef, 0x00, 0x03, 0xff, 0x00};
		return answer(fd, 200,
		              "Content-Type: text/plain\r\nContent-Encoding: gzip\r\nVary: "
		              "Accept-Encoding\r\n",
		              fake_gzip, sizeof(fake_gzip), head, ka);
	}
	if (target_is(h, "/latin1", &rest))
		return answer(fd, 200,
		              "Content-Type: text/plain\r\n"
		              "Content-Disposition: attachment; filename=\"caf\xe9.txt\"\r\n"
		              "X-Mixed: \xc3\xa9\xe9\xff \xed\xa0\x80 \xf0\x9f\x98\x80\r\n",
		              "latin1", 6, head, ka);
	if (target_is(h, "/redirect", &rest))
		return answer(fd, 302, "Location: /echo/redirected\r\nContent-Type: text/plain\r\n",
		              "moved", 5, head, ka);
	if (target_is(h, "/health", &rest))
		return answer(fd, 200, "Content-Type: text/plain\r\n", "ok", 2, head, ka);
	return answer(fd, 404, "Content-Type: text/plain\r\n", "not found", 9, head, ka);
}

/* One connection: requests until the client closes or asks to. */
static void serve_connection(int fd)
{
	struct buf in;
	buf_init(&in);
	char chunk[65536];
	for (;;) {
		struct http_request_head h;
		size_t head_len = 0;
		struct ee_error err;
		int rc = http_parse_request_head(in.data ? in.data : "", in.len, &h, &head_len, &err);
		if (rc == HTTP_PARSE_ERROR) {
			answer(fd, err.status, NULL, err.reason, strlen(err.reason), false, false);
			break;
		}
		if (rc == HTTP_PARSE_INCOMPLETE) {
			ssize_t n = read(fd, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || buf_append(&in, chunk, (size_t)n) != 0)
				break;
			continue;
		}
		/* The head points into in.data, which must not move while it is used. */
		struct buf body;
		buf_init(&body);
		size_t used = head_len;
		bool ok = true;
		if (h.has_content_length) {
			if (h.content_length > ECHO_MAX_BODY) {
				ok = false;
			} else {
				while (ok && in.len - used < h.content_length) {
					ssize_t n = read(fd, chunk, sizeof(chunk));
					if (n < 0 && errno == EINTR)
						continue;
					ok = n > 0 && buf_append(&in, chunk, (size_t)n) == 0;
				}
				/* in.data may have moved: parse the head again where it now is. */
				if (ok)
					ok = http_parse_request_head(in.data, in.len, &h, &head_len, &err) ==
					             HTTP_PARSE_DONE &&
					     buf_append(&body, in.data + used, h.content_length) == 0;
				used += h.content_length;
			}
		} else if (h.chunked) {
			struct http_chunked_decoder d;
			http_chunked_init(&d, ECHO_MAX_BODY);
			size_t took = 0;
			int drc = http_chunked_decode(&d, in.data + used, in.len - used, &body, &took, &err);
			used += took;
			while (drc == HTTP_PARSE_INCOMPLETE) {
				ssize_t n = read(fd, chunk, sizeof(chunk));
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0)
					break;
				if (buf_append(&in, chunk, (size_t)n) != 0)
					break;
				drc = http_chunked_decode(&d, chunk, (size_t)n, &body, &took, &err);
				used += took;
			}
			ok = drc == HTTP_PARSE_DONE &&
			     http_parse_request_head(in.data, in.len, &h, &head_len, &err) ==
			             HTTP_PARSE_DONE;
		}
		if (!ok || body.failed) {
			buf_free(&body);
			break;
		}
		if (h.expect_continue)
			test_write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		bool keep = h.keep_alive;
		rc = route(fd, &h, (const unsigned char *)(body.data ? body.data : ""), body.len);
		buf_free(&body);
		if (rc != 0 || !keep)
			break;
		/* Keep what follows (a pipelined request). */
		memmove(in.data, in.data + used, in.len - used);
		in.len -= used;
	}
	buf_free(&in);
	close(fd);
}

static void serve(int listen_fd)
{
	signal(SIGCHLD, SIG_IGN); /* connection processes reap themselves */
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			_exit(1);
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pid_t pid = fork();
		if (pid == 0) {
			close(listen_fd);
			serve_connection(fd);
			_exit(0);
		}
		close(fd);
	}
}

int echohttp_start(struct echohttp *e)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e->port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 512) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		close(fd);
		return -1;
	}
	e->port = ntohs(sa.sin_port);
	snprintf(e->base_url, sizeof(e->base_url), "http://127.0.0.1:%d", e->port);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		close(fd);
		return -1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		serve(fd);
		_exit(0);
	}
	setpgid(pid, pid); /* also here, so that stop can kill the group at once */
	close(fd);
	e->pid = pid;
	return 0;
}

void echohttp_stop(struct echohttp *e)
{
	if (e->pid <= 0)
		return;
	kill(-e->pid, SIGKILL);
	kill(e->pid, SIGKILL);
	waitpid(e->pid, NULL, 0);
	e->pid = 0;
}
