/*
 * bench_backend.c - the app behind the tunnel in the proxy benchmark: a
 * minimal HTTP/1.1 server on 127.0.0.1, keep-alive, one epoll loop per
 * thread (SO_REUSEPORT spreads the connections), so that what is measured
 * through the tunnel is the tunnel and not the backend.  wrk against it
 * directly is the physical reference the proxied figures are divided by.
 *
 *   bench_backend PORT [THREADS]   serve until SIGTERM (THREADS: default nproc)
 *   bench_backend --free-port      print a free loopback TCP port and exit
 *
 * Any path starting with /1mb answers 1 MiB (1048576 bytes); anything else a
 * small body (BACKEND_SMALL_BODY, 32 bytes).  Request bodies
 * (Content-Length) are read and dropped; HEAD gets no body;
 * "Connection: close" and HTTP/1.0 close after the answer.
 */
/* memmem and accept4 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define BACKEND_SMALL_BODY "hello from bench_backend, 32 B.\n"
#define BACKEND_LARGE_LEN (1024 * 1024)
#define BACKEND_MAX_HEAD 16384 /* a request head larger than this closes the connection */
#define BACKEND_MAX_THREADS 64

struct conn {
	int fd;
	char in[BACKEND_MAX_HEAD];
	size_t in_len;
	size_t body_left;       /* request body bytes still to drop */
	/* The answer being written: head, then body. */
	char head[256];
	size_t head_len, head_sent;
	const char *body;
	size_t body_len, body_sent;
	bool close_after;
	bool writing;
};

static char *large_body;
static int listen_port;

static int listen_socket(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 4096) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void conn_free(int epfd, struct conn *c)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* Value of a header in the head [p, end), or NULL; *len its length. */
static const char *header_value(const char *p, const char *end, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			break;
		if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = eol;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
				ve--;
			*len = (size_t)(ve - v);
			return v;
		}
		p = eol + 1;
	}
	return NULL;
}

/* Writes what is pending; 0 done, 1 blocked (EPOLLOUT wanted), -1 broken. */
static int conn_flush(struct conn *c)
{
	while (c->head_sent < c->head_len || c->body_sent < c->body_len) {
		struct iovec iov[2];
		int n = 0;
		if (c->head_sent < c->head_len)
			iov[n++] = (struct iovec){c->head + c->head_sent, c->head_len - c->head_sent};
		if (c->body_sent < c->body_len)
			iov[n++] = (struct iovec){(char *)c->body + c->body_sent, c->body_len - c->body_sent};
		ssize_t w = writev(c->fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		if (w <= 0)
			return -1;
		size_t k = (size_t)w, h = c->head_len - c->head_sent;
		if (k >= h) {
			c->head_sent = c->head_len;
			c->body_sent += k - h;
		} else {
			c->head_sent += k;
		}
	}
	return 0;
}

/*
 * Handles every whole request in the input buffer (pipelining included);
 * stops when an answer blocks.  0 keep going, -1 close.
 */
static int conn_process(int epfd, struct conn *c)
{
	for (;;) {
		if (c->writing) {
			int rc = conn_flush(c);
			if (rc < 0)
				return -1;
			if (rc > 0) {
				struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
				epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
				return 0;
			}
			c->writing = false;
			struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
			epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
			if (c->close_after)
				return -1;
		}
		if (c->body_left > 0) {
			size_t n = c->body_left < c->in_len ? c->body_left : c->in_len;
			memmove(c->in, c->in + n, c->in_len - n);
			c->in_len -= n;
			c->body_left -= n;
			if (c->body_left > 0)
				return 0;
		}
		char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
		if (!end)
			return c->in_len >= sizeof(c->in) ? -1 : 0;
		size_t head_len = (size_t)(end - c->in) + 4;
		const char *line_end = memchr(c->in, '\n', head_len);
		bool head_only = strncmp(c->in, "HEAD ", 5) == 0;
		bool http10 = line_end && line_end - c->in >= 9 &&
		              strncmp(line_end - 9, "HTTP/1.0", 8) == 0;
		const char *sp = memchr(c->in, ' ', head_len);
		bool large = sp && strncmp(sp + 1, "/1mb", 4) == 0;
		size_t vlen = 0;
		const char *v = header_value(line_end ? line_end + 1 : c->in, c->in + head_len,
		                             "Content-Length", &vlen);
		size_t body = v ? (size_t)strtoull(v, NULL, 10) : 0;
		v = header_value(line_end ? line_end + 1 : c->in, c->in + head_len, "Connection", &vlen);
		c->close_after = http10 || (v && vlen == 5 && strncasecmp(v, "close", 5) == 0);

		memmove(c->in, c->in + head_len, c->in_len - head_len);
		c->in_len -= head_len;
		c->body_left = body;

		c->body = large ? large_body : BACKEND_SMALL_BODY;
		size_t len = large ? BACKEND_LARGE_LEN : strlen(BACKEND_SMALL_BODY);
		c->head_len = (size_t)snprintf(c->head, sizeof(c->head),
		                               "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
		                               "Content-Length: %zu\r\n%s\r\n",
		                               len, c->close_after ? "Connection: close\r\n" : "");
		c->body_len = head_only ? 0 : len;
		c->head_sent = c->body_sent = 0;
		c->writing = true;
	}
}

static void *serve(void *arg)
{
	(void)arg;
	int lfd = listen_socket(listen_port);
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || epfd < 0) {
		fprintf(stderr, "bench_backend: cannot listen on 127.0.0.1:%d: %s\n", listen_port,
		        strerror(errno));
		exit(1);
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
	struct epoll_event events[256];
	for (;;) {
		int n = epoll_wait(epfd, events, 256, -1);
		for (int i = 0; i < n; i++) {
			struct conn *c = events[i].data.ptr;
			if (!c) {
				int fd;
				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					int one = 1;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					struct conn *nc = calloc(1, sizeof(*nc));
					if (!nc) {
						close(fd);
						continue;
					}
					nc->fd = fd;
					struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
					if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &cev) != 0) {
						close(fd);
						free(nc);
					}
				}
				continue;
			}
			bool broken = false;
			if (!c->writing && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				for (;;) {
					ssize_t r = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
					if (r < 0 && errno == EINTR)
						continue;
					if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
						break;
					if (r <= 0) {
						broken = true;
						break;
					}
					c->in_len += (size_t)r;
					if (conn_process(epfd, c) != 0) {
						broken = true;
						break;
					}
					if (c->writing)
						break;
				}
			} else if (c->writing && conn_process(epfd, c) != 0) {
				broken = true;
			}
			if (broken)
				conn_free(epfd, c);
		}
	}
	return NULL;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sin);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
		return -1;
	close(fd);
	return ntohs(sin.sin_port);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--free-port") == 0) {
		int port = free_port();
		if (port < 0)
			return 1;
		printf("%d\n", port);
		return 0;
	}
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: bench_backend PORT [THREADS] | bench_backend --free-port\n");
		return 2;
	}
	listen_port = atoi(argv[1]);
	long threads = argc == 3 ? atol(argv[2]) : sysconf(_SC_NPROCESSORS_ONLN);
	if (listen_port <= 0 || listen_port > 65535 || threads < 1 || threads > BACKEND_MAX_THREADS) {
		fprintf(stderr, "bench_backend: bad port or thread count\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	large_body = malloc(BACKEND_LARGE_LEN);
	if (!large_body)
		return 1;
	for (size_t i = 0; i < BACKEND_LARGE_LEN; i++)
		large_body[i] = (char)('a' + i % 26);
	pthread_t tids[BACKEND_MAX_THREADS];
	for (long t = 1; t < threads; t++)
		pthread_create(&tids[t], NULL, serve, NULL);
	serve(NULL);
	return 0;
}
