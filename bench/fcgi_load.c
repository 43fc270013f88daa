/*
 * fcgi_load.c - a FastCGI load client: drives ee-api's socket directly, with
 * no web server in front, the way Caddy's fastcgi transport talks to it.
 *
 *   fcgi_load -a ADDR [-d SECONDS] [-c CONNS] [-t THREADS] [-P PROCS] [-k] [-e]
 *             [-m METHOD] -p PATH [-b BODY] [-T TOKEN] [-o OFFSET] [-A FROM,TO]
 *
 * ADDR is a unix socket path or 127.0.0.1:PORT.  CONNS connections in all,
 * shared out over PROCS processes of THREADS threads, each thread one event
 * loop.  Each connection sends one request, reads the answer to
 * END_REQUEST, and sends the next:
 *   - by default on a new connection every time, as Caddy 2's fastcgi
 *     transport does (FCGI_BEGIN_REQUEST without FCGI_KEEP_CONN);
 *   - with -k on the same connection (FCGI_KEEP_CONN).  libfcgi honours
 *     it, but an ee-api worker then serves that one connection until it
 *     closes: use no more connections than ee-api has workers, or the rest
 *     wait in the listen queue for the whole run.
 * The latency of a request runs from its connect (or, with -k, its first
 * byte) to its END_REQUEST.
 *
 * The client runs on the cores of the server it measures, and on a
 * paravirtualised VM a system call's entry and exit cost more than the
 * work most of them do.  So a thread's loop is an io_uring (Linux 6.1 or
 * later, 6.7 for TCP): a request is one chain of linked operations, SOCKET
 * -> CONNECT -> SEND -> RECV (SEND -> RECV on a kept connection), on the
 * socket held in the connection's own fixed-file slot, and one
 * io_uring_enter per turn of the loop submits every chain queued and waits
 * for the next completion: about 0.2 system calls a request instead of 6.
 * Where a ring cannot be set up (an older kernel, kernel.io_uring_disabled,
 * a seccomp filter) the client falls back, silently, to an epoll loop of
 * plain system calls, as it does with -e.  Both send the same bytes, count
 * the same way and print the same line.
 *
 * PATH and BODY may hold placeholders, filled per request: {n} a number
 * unique over the run (OFFSET plus a per-connection sequence), {from} and
 * {to} two accounts that swap with the parity of {n} (-A, default
 * bench-a,bench-b), {start} and {end} a one-minute period, RFC 3339,
 * {n} minutes after 2000-01-01T00:00:00Z.  A usage report and the
 * settlement of its period then name the same period for the same {n}.
 *
 * Prints one line:
 *   requests N ok N non_200 N conn_errors N answered_200 N seconds S rps R
 *   p50_ms X p90_ms X p99_ms X engine io_uring|epoll
 * requests, ok (Status 200), non_200, the rate and the latencies count the
 * answers that came before the deadline; "conn_errors" connections refused,
 * reset or closed before END_REQUEST.  Requests already sent when the
 * deadline passes are waited for (up to DRAIN_MS) but not counted in the
 * rate: "answered_200" adds their 200s, so it is exactly the number of
 * writes ee-api committed and told this client about.
 * Exits 0 when every answer was a 200 and no connection failed, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FCGI_VERSION_1 1
#define FCGI_BEGIN_REQUEST 1
#define FCGI_END_REQUEST 3
#define FCGI_PARAMS 4
#define FCGI_STDIN 5
#define FCGI_STDOUT 6
#define FCGI_STDERR 7
#define FCGI_RESPONDER 1
#define FCGI_KEEP_CONN 1
#define FCGI_HEADER_LEN 8
#define FCGI_MAX_CONTENT 65535

#define MAX_PROCS 64
#define MAX_THREADS 64
#define MAX_CONNS 4096
#define MAX_TEXT 8192       /* a PATH or BODY after expansion */
#define REQUEST_MAX (3 * MAX_TEXT + 2048)
#define STATUS_PEEK 32      /* bytes of STDOUT kept to read "Status: NNN" */
#define RETRY_DELAY_MS 1    /* after a failed connect, before the next one */
#define DRAIN_MS 10000      /* the longest wait for answers in flight at the deadline */
#define URING_RECV_SIZE 16384 /* a connection's receive buffer in the io_uring engine */

/*
 * Latency histogram in microseconds: exact below 1024 us, then 512
 * sub-buckets per power of two (0.2 % resolution) up to 2^26 us (67 s).
 */
#define HIST_LINEAR 1024
#define HIST_SUB 512
#define HIST_EXP_MIN 10
#define HIST_EXP_MAX 26
#define HIST_BUCKETS (HIST_LINEAR + (HIST_EXP_MAX - HIST_EXP_MIN + 1) * HIST_SUB)

struct result {
	uint64_t requests, ok, non_200, conn_errors; /* answered before the deadline */
	uint64_t late_ok;    /* 200s to requests in flight at the deadline, waited for */
	uint64_t hist[HIST_BUCKETS];
};

static size_t hist_index(uint64_t us)
{
	if (us < HIST_LINEAR)
		return (size_t)us;
	int e = 63 - __builtin_clzll(us);
	if (e > HIST_EXP_MAX)
		return HIST_BUCKETS - 1;
	int shift = e - (HIST_EXP_MIN - 1);
	return HIST_LINEAR + (size_t)(e - HIST_EXP_MIN) * HIST_SUB + (size_t)((us >> shift) - HIST_SUB);
}

/* The middle of a bucket, in microseconds. */
static double hist_value(size_t i)
{
	if (i < HIST_LINEAR)
		return (double)i;
	size_t e = (i - HIST_LINEAR) / HIST_SUB + HIST_EXP_MIN;
	size_t m = (i - HIST_LINEAR) % HIST_SUB + HIST_SUB;
	double width = (double)(1ull << (e - (HIST_EXP_MIN - 1)));
	return (double)m * width + width / 2;
}

static double hist_percentile_ms(const struct result *r, double p)
{
	uint64_t total = 0;
	for (size_t i = 0; i < HIST_BUCKETS; i++)
		total += r->hist[i];
	if (total == 0)
		return 0;
	uint64_t want = (uint64_t)(p / 100.0 * (double)total);
	if (want >= total)
		want = total - 1;
	uint64_t seen = 0;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		seen += r->hist[i];
		if (seen > want)
			return hist_value(i) / 1000.0;
	}
	return 0;
}

/* ---- settings ---- */

static struct {
	const char *addr;
	bool unix_socket;
	struct sockaddr_un sun;
	struct sockaddr_in sin;
	double seconds;
	int conns, threads, procs;
	bool keep;
	bool epoll; /* -e, or no io_uring on this kernel */
	const char *method, *path, *body, *token;
	long long offset;
	char from[129], to[129];
} cfg = {.seconds = 10, .conns = 64, .threads = 1, .procs = 1, .method = "GET"};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- building a request ---- */

/* RFC 3339 of 2000-01-01T00:00:00Z plus minutes. */
static void period_text(long long minutes, char out[32])
{
	time_t t = (time_t)946684800 + (time_t)minutes * 60;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Expands the placeholders of template for request number n; -1 if it does not fit. */
static int expand(const char *template, long long n, char *out, size_t size)
{
	size_t len = 0;
	for (const char *p = template; *p;) {
		char piece[160];
		const char *add = NULL;
		size_t skip = 1;
		if (*p == '{') {
			if (strncmp(p, "{n}", 3) == 0) {
				snprintf(piece, sizeof(piece), "%lld", n);
				add = piece, skip = 3;
			} else if (strncmp(p, "{from}", 6) == 0) {
				add = n % 2 ? cfg.to : cfg.from, skip = 6;
			} else if (strncmp(p, "{to}", 4) == 0) {
				add = n % 2 ? cfg.from : cfg.to, skip = 4;
			} else if (strncmp(p, "{start}", 7) == 0) {
				period_text(n, piece);
				add = piece, skip = 7;
			} else if (strncmp(p, "{end}", 5) == 0) {
				period_text(n + 1, piece);
				add = piece, skip = 5;
			}
		}
		size_t add_len = add ? strlen(add) : 1;
		if (len + add_len + 1 > size)
			return -1;
		memcpy(out + len, add ? add : p, add_len);
		len += add_len;
		p += skip;
	}
	out[len] = '\0';
	return (int)len;
}

static void put_header(unsigned char *h, int type, size_t content_len, size_t padding)
{
	h[0] = FCGI_VERSION_1;
	h[1] = (unsigned char)type;
	h[2] = 0;
	h[3] = 1; /* request id 1: one request at a time per connection */
	h[4] = (unsigned char)(content_len >> 8);
	h[5] = (unsigned char)content_len;
	h[6] = (unsigned char)padding;
	h[7] = 0;
}

/* Appends one name-value pair in FastCGI's length encoding. */
static size_t put_pair(unsigned char *out, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value), at = 0;
	size_t lens[2] = {nl, vl};
	for (int i = 0; i < 2; i++) {
		if (lens[i] < 128) {
			out[at++] = (unsigned char)lens[i];
		} else {
			out[at++] = (unsigned char)(0x80 | (lens[i] >> 24));
			out[at++] = (unsigned char)(lens[i] >> 16);
			out[at++] = (unsigned char)(lens[i] >> 8);
			out[at++] = (unsigned char)lens[i];
		}
	}
	memcpy(out + at, name, nl);
	memcpy(out + at + nl, value, vl);
	return at + nl + vl;
}

/* Appends records of one stream type holding data (split at 64 KiB), then the empty record. */
static size_t put_stream(unsigned char *out, int type, const unsigned char *data, size_t len)
{
	size_t at = 0;
	while (len > 0) {
		size_t n = len > FCGI_MAX_CONTENT ? FCGI_MAX_CONTENT : len;
		put_header(out + at, type, n, 0);
		memcpy(out + at + FCGI_HEADER_LEN, data, n);
		at += FCGI_HEADER_LEN + n;
		data += n;
		len -= n;
	}
	put_header(out + at, type, 0, 0);
	return at + FCGI_HEADER_LEN;
}

/* The whole request n as bytes on the wire; 0 if it does not fit. */
static size_t build_request(long long n, unsigned char *out)
{
	char path[MAX_TEXT], body[MAX_TEXT], length[24], auth[MAX_TEXT];
	if (expand(cfg.path, n, path, sizeof(path)) < 0)
		return 0;
	int body_len = 0;
	body[0] = '\0';
	if (cfg.body && (body_len = expand(cfg.body, n, body, sizeof(body))) < 0)
		return 0;
	snprintf(length, sizeof(length), "%d", body_len);
	char *query = strchr(path, '?');
	char path_only[MAX_TEXT];
	snprintf(path_only, sizeof(path_only), "%.*s", query ? (int)(query - path) : (int)strlen(path),
	         path);

	unsigned char params[4 * MAX_TEXT];
	size_t p = 0;
	p += put_pair(params + p, "GATEWAY_INTERFACE", "CGI/1.1");
	p += put_pair(params + p, "SERVER_PROTOCOL", "HTTP/1.1");
	p += put_pair(params + p, "SERVER_SOFTWARE", "fcgi_load");
	p += put_pair(params + p, "REQUEST_METHOD", cfg.method);
	p += put_pair(params + p, "REQUEST_URI", path);
	p += put_pair(params + p, "SCRIPT_NAME", "");
	p += put_pair(params + p, "PATH_INFO", path_only);
	p += put_pair(params + p, "QUERY_STRING", query ? query + 1 : "");
	p += put_pair(params + p, "REMOTE_ADDR", "127.0.0.1");
	p += put_pair(params + p, "REMOTE_PORT", "40000");
	p += put_pair(params + p, "SERVER_NAME", "127.0.0.1");
	p += put_pair(params + p, "SERVER_PORT", "80");
	p += put_pair(params + p, "HTTP_HOST", "127.0.0.1");
	p += put_pair(params + p, "HTTP_USER_AGENT", "fcgi_load");
	p += put_pair(params + p, "CONTENT_LENGTH", length);
	if (cfg.body)
		p += put_pair(params + p, "CONTENT_TYPE", "application/json");
	if (cfg.token) {
		snprintf(auth, sizeof(auth), "Bearer %s", cfg.token);
		p += put_pair(params + p, "HTTP_AUTHORIZATION", auth);
	}

	/* BEGIN_REQUEST, then each stream's records (one header per 64 KiB) and its empty record. */
	size_t need = 2 * FCGI_HEADER_LEN + p + (size_t)body_len +
	              FCGI_HEADER_LEN * (p / FCGI_MAX_CONTENT + (size_t)body_len / FCGI_MAX_CONTENT + 4);
	if (need > REQUEST_MAX)
		return 0;
	size_t at = 0;
	put_header(out, FCGI_BEGIN_REQUEST, 8, 0);
	unsigned char *b = out + FCGI_HEADER_LEN;
	memset(b, 0, 8);
	b[1] = FCGI_RESPONDER;
	b[2] = cfg.keep ? FCGI_KEEP_CONN : 0;
	at = 2 * FCGI_HEADER_LEN;
	at += put_stream(out + at, FCGI_PARAMS, params, p);
	at += put_stream(out + at, FCGI_STDIN, (const unsigned char *)body, (size_t)body_len);
	return at;
}

/* ---- one connection ---- */

enum conn_state { CONN_IDLE, CONN_CONNECTING, CONN_SENDING, CONN_RECEIVING };

struct conn {
	int fd;
	uint32_t events; /* what the fd is registered for in epoll; 0: not registered */
	enum conn_state state;
	long long index, sequence; /* {n} = offset + index + sequence * total connections */
	int64_t started_us, retry_at_us;
	unsigned char request[REQUEST_MAX];
	size_t request_len, sent;
	/* Reading records: the header being collected, then what is left of its content and padding. */
	unsigned char header[FCGI_HEADER_LEN];
	size_t header_have, content_left, padding_left;
	int record_type;
	char status_peek[STATUS_PEEK + 1];
	size_t status_have;
	bool ended;
	/* The io_uring engine: the socket is the fixed file in the slot at the connection's index. */
	uint32_t chain;  /* the generation of the chain in flight, in its operations' user_data */
	bool connected;  /* the slot holds the connection kept from the last request (-k) */
	bool cancelled;  /* the chain's unsent request was cancelled at the deadline */
};

struct worker {
	struct conn *conns;
	int count;
	int epfd;
	int64_t deadline_us;
	struct result *result;
};

static int status_of(const struct conn *c)
{
	/* ee-api writes "Status: NNN Reason" first; a responder that leaves it out means 200. */
	if (strncmp(c->status_peek, "Status:", 7) != 0)
		return 200;
	return atoi(c->status_peek + 7);
}

/* The close takes the fd out of the epoll set too (it is never duplicated). */
static void conn_close(int epfd, struct conn *c)
{
	(void)epfd;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->events = 0;
	c->state = CONN_IDLE;
}

static void conn_failed(int epfd, struct conn *c, struct result *r)
{
	r->conn_errors++;
	conn_close(epfd, c);
	c->retry_at_us = now_us() + RETRY_DELAY_MS * 1000;
}

static void conn_prepare(struct conn *c)
{
	long long n = cfg.offset + c->index + c->sequence * (long long)cfg.conns;
	c->request_len = build_request(n, c->request);
	c->sent = 0;
	c->header_have = c->content_left = c->padding_left = 0;
	c->status_have = 0;
	c->status_peek[0] = '\0';
	c->ended = false;
	c->started_us = now_us();
}

/*
 * Registers the fd for EVENTS unless it already is.  The client spends no
 * system call it can avoid: the machine's two cores are shared with the
 * server it measures (docs/PERFORMANCE.md).
 */
static int want(int epfd, struct conn *c, uint32_t events)
{
	if (c->events == events)
		return 0;
	struct epoll_event ev = {.events = events, .data.ptr = c};
	int rc = epoll_ctl(epfd, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
	if (rc == 0)
		c->events = events;
	return rc;
}

/* Sends what is left of the request; then waits for the answer.  0, or -1 when the connection failed. */
static int conn_send(int epfd, struct conn *c)
{
	while (c->sent < c->request_len) {
		ssize_t n = send(c->fd, c->request + c->sent, c->request_len - c->sent, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return want(epfd, c, EPOLLOUT);
		if (n <= 0)
			return -1;
		c->sent += (size_t)n;
	}
	c->state = CONN_RECEIVING;
	return want(epfd, c, EPOLLIN);
}

/* Starts the connection's next request: a new socket unless one is kept. */
static void conn_start(int epfd, struct conn *c, struct result *r)
{
	conn_prepare(c);
	if (c->request_len == 0) {
		fprintf(stderr, "fcgi_load: a request does not fit in %d bytes\n", REQUEST_MAX);
		exit(2);
	}
	if (c->fd >= 0) {
		c->state = CONN_SENDING;
		if (conn_send(epfd, c) != 0)
			conn_failed(epfd, c, r);
		return;
	}
	int fd = socket(cfg.unix_socket ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		conn_failed(epfd, c, r);
		return;
	}
	if (!cfg.unix_socket) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	int rc = cfg.unix_socket ? connect(fd, (struct sockaddr *)&cfg.sun, sizeof(cfg.sun))
	                         : connect(fd, (struct sockaddr *)&cfg.sin, sizeof(cfg.sin));
	c->fd = fd;
	if (rc != 0 && errno != EINPROGRESS) {
		/* EAGAIN on a unix socket: the listen queue is full. */
		conn_failed(epfd, c, r);
		return;
	}
	/* A unix socket (and often loopback TCP) is connected at once: send now. */
	c->state = rc == 0 ? CONN_SENDING : CONN_CONNECTING;
	if ((rc == 0 ? conn_send(epfd, c) : want(epfd, c, EPOLLOUT)) != 0)
		conn_failed(epfd, c, r);
}

/* Counts the answer that just ended; false when it came after the deadline. */
static bool answer_count(struct conn *c, struct result *r, int64_t now, int64_t deadline)
{
	int64_t us = now - c->started_us;
	if (now >= deadline) {
		r->late_ok += status_of(c) == 200;
		return false;
	}
	r->requests++;
	r->hist[hist_index(us < 0 ? 0 : (uint64_t)us)]++;
	if (status_of(c) == 200)
		r->ok++;
	else
		r->non_200++;
	c->sequence++;
	return true;
}

static void conn_finish(int epfd, struct conn *c, struct result *r, int64_t now,
                        int64_t deadline)
{
	if (!answer_count(c, r, now, deadline) || !cfg.keep)
		conn_close(epfd, c);
}

/* Consumes response bytes; 1 at END_REQUEST, 0 for more, -1 on a broken stream. */
static int conn_parse(struct conn *c, const unsigned char *data, size_t len)
{
	while (len > 0) {
		if (c->content_left == 0 && c->padding_left == 0 && c->header_have < FCGI_HEADER_LEN) {
			size_t n = FCGI_HEADER_LEN - c->header_have;
			if (n > len)
				n = len;
			memcpy(c->header + c->header_have, data, n);
			c->header_have += n;
			data += n;
			len -= n;
			if (c->header_have < FCGI_HEADER_LEN)
				return 0;
			if (c->header[0] != FCGI_VERSION_1)
				return -1;
			c->record_type = c->header[1];
			c->content_left = (size_t)c->header[4] << 8 | c->header[5];
			c->padding_left = c->header[6];
			if (c->record_type == FCGI_END_REQUEST)
				c->ended = true;
			if (c->content_left == 0 && c->padding_left == 0) {
				c->header_have = 0;
				if (c->ended)
					return len == 0 ? 1 : -1;
			}
			continue;
		}
		if (c->content_left > 0) {
			size_t n = c->content_left < len ? c->content_left : len;
			if (c->record_type == FCGI_STDOUT && c->status_have < STATUS_PEEK) {
				size_t k = STATUS_PEEK - c->status_have;
				if (k > n)
					k = n;
				memcpy(c->status_peek + c->status_have, data, k);
				c->status_have += k;
				c->status_peek[c->status_have] = '\0';
			}
			c->content_left -= n;
			data += n;
			len -= n;
		} else {
			size_t n = c->padding_left < len ? c->padding_left : len;
			c->padding_left -= n;
			data += n;
			len -= n;
		}
		if (c->content_left == 0 && c->padding_left == 0) {
			c->header_have = 0;
			if (c->ended)
				return len == 0 ? 1 : -1;
		}
	}
	return 0;
}

static void conn_event(int epfd, struct conn *c, uint32_t events, struct worker *w)
{
	struct result *r = w->result;
	if (c->state == CONN_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
			conn_failed(epfd, c, r);
			return;
		}
		c->state = CONN_SENDING;
	}
	if (c->state == CONN_SENDING) {
		if (conn_send(epfd, c) != 0)
			conn_failed(epfd, c, r);
		return;
	}
	if (c->state == CONN_RECEIVING && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		unsigned char buf[65536];
		for (;;) {
			ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			if (n <= 0) {
				conn_failed(epfd, c, r);
				return;
			}
			int done = conn_parse(c, buf, (size_t)n);
			if (done < 0) {
				conn_failed(epfd, c, r);
				return;
			}
			if (done > 0) {
				int64_t now = now_us();
				conn_finish(epfd, c, r, now, w->deadline_us);
				if (now < w->deadline_us)
					conn_start(epfd, c, r);
				return;
			}
		}
	}
}

/*
 * Whether a request sent before the deadline is still unanswered.  Those are
 * waited for (up to DRAIN_MS), so that every write ee-api commits is one
 * this client saw answered; a request not yet sent is dropped.
 */
static bool in_flight(struct worker *w, int64_t now)
{
	if (now >= w->deadline_us + DRAIN_MS * 1000)
		return false;
	for (int i = 0; i < w->count; i++) {
		struct conn *c = &w->conns[i];
		if (c->state == CONN_CONNECTING && c->fd >= 0) {
			conn_close(w->epfd, c);
		} else if (c->state == CONN_SENDING && c->sent == 0) {
			conn_close(w->epfd, c);
		} else if (c->state == CONN_SENDING || c->state == CONN_RECEIVING) {
			return true;
		}
	}
	return false;
}

static void *epoll_worker_run(void *arg)
{
	struct worker *w = arg;
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		perror("fcgi_load: epoll_create1");
		exit(2);
	}
	w->epfd = epfd;
	for (int i = 0; i < w->count; i++)
		conn_start(epfd, &w->conns[i], w->result);
	struct epoll_event events[256];
	for (;;) {
		int64_t now = now_us();
		if (now >= w->deadline_us && !in_flight(w, now))
			break;
		int timeout = now < w->deadline_us ? (int)((w->deadline_us - now) / 1000) + 1 : 10;
		for (int i = 0; i < w->count; i++)
			if (w->conns[i].state == CONN_IDLE)
				timeout = RETRY_DELAY_MS;
		int n = epoll_wait(epfd, events, 256, timeout);
		for (int i = 0; i < n; i++)
			conn_event(epfd, events[i].data.ptr, events[i].events, w);
		now = now_us();
		for (int i = 0; i < w->count && now < w->deadline_us; i++) {
			struct conn *c = &w->conns[i];
			if (c->state == CONN_IDLE && c->retry_at_us <= now)
				conn_start(epfd, c, w->result);
		}
	}
	for (int i = 0; i < w->count; i++)
		conn_close(epfd, &w->conns[i]);
	close(epfd);
	return NULL;
}

/* ---- the io_uring engine ---- */

/*
 * One thread's ring, mapped from the kernel.  Only the thread that set it up
 * submits (IORING_SETUP_SINGLE_ISSUER), and the kernel finishes completions
 * only inside that thread's io_uring_enter (IORING_SETUP_DEFER_TASKRUN), so
 * they never interrupt the loop.
 */
struct uring {
	int fd;
	unsigned enter_fd, enter_flags; /* the ring's registered index, when registered */
	unsigned *sq_head, *sq_tail, sq_mask, sq_entries;
	unsigned sq_queued_tail;        /* entries filled in, up to the next io_uring_enter */
	struct io_uring_sqe *sqes;
	unsigned *cq_head, *cq_tail, cq_mask;
	struct io_uring_cqe *cqes;
	void *rings;
	size_t rings_len, sqes_len;
};

/* What an operation's user_data names, beside its connection and chain. */
enum uring_op { OP_SOCKET = 1, OP_NODELAY, OP_CONNECT, OP_SEND, OP_RECV, OP_CLOSE, OP_CANCEL };

/* SOCKET_URING_OP_SETSOCKOPT of Linux 6.7, which older <linux/io_uring.h> lack. */
#define URING_SOCKET_SETSOCKOPT 3

/* Submission entries a connection may queue in one turn of the loop: a chain and two cancels. */
#define URING_ENTRIES_PER_CONN 8

static const int uring_one = 1; /* TCP_NODELAY's value, read when the operation runs */

static void uring_close(struct uring *u)
{
	if (u->sqes)
		munmap(u->sqes, u->sqes_len);
	if (u->rings)
		munmap(u->rings, u->rings_len);
	if (u->fd >= 0)
		close(u->fd);
	u->sqes = NULL;
	u->rings = NULL;
	u->fd = -1;
}

/* The submission queue's size for COUNT connections: a power of two, at most 32768. */
static unsigned uring_entries(int count)
{
	unsigned entries = URING_ENTRIES_PER_CONN;
	while (entries < URING_ENTRIES_PER_CONN * (unsigned)count)
		entries *= 2;
	return entries;
}

/*
 * Sets up a ring for COUNT connections, with one fixed-file slot each; 0,
 * or -1 with errno.  The completion queue is twice the submission queue, more
 * than the completions a turn of the loop can bring (one per chain, one per
 * cancel); should it fill all the same, IORING_FEAT_NODROP keeps the rest in
 * the kernel until the next io_uring_enter, which always waits for events
 * and so flushes them.
 */
static int uring_open(struct uring *u, int count)
{
	memset(u, 0, sizeof(*u));
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
	          IORING_SETUP_CQSIZE;
	p.cq_entries = 2 * uring_entries(count);
	u->fd = (int)syscall(__NR_io_uring_setup, uring_entries(count), &p);
	if (u->fd < 0)
		return -1;
	/* Linked operations that use a fixed file a SOCKET before them fills need LINKED_FILE. */
	unsigned need = IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG |
	                IORING_FEAT_CQE_SKIP | IORING_FEAT_LINKED_FILE;
	if ((p.features & need) != need) {
		uring_close(u);
		errno = ENOSYS;
		return -1;
	}
	size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	u->rings_len = sq_len > cq_len ? sq_len : cq_len;
	u->rings = mmap(NULL, u->rings_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
	                IORING_OFF_SQ_RING);
	u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
	               IORING_OFF_SQES);
	if (u->rings == MAP_FAILED || u->sqes == MAP_FAILED) {
		int saved = errno;
		if (u->rings == MAP_FAILED)
			u->rings = NULL;
		if (u->sqes == MAP_FAILED)
			u->sqes = NULL;
		uring_close(u);
		errno = saved;
		return -1;
	}
	char *rings = u->rings;
	u->sq_head = (unsigned *)(rings + p.sq_off.head);
	u->sq_tail = (unsigned *)(rings + p.sq_off.tail);
	u->sq_mask = *(unsigned *)(rings + p.sq_off.ring_mask);
	u->sq_entries = p.sq_entries;
	u->sq_queued_tail = *u->sq_tail;
	/* Entry i of the submission queue is always sqes[i]: the index array is filled once. */
	unsigned *array = (unsigned *)(rings + p.sq_off.array);
	for (unsigned i = 0; i < p.sq_entries; i++)
		array[i] = i;
	u->cq_head = (unsigned *)(rings + p.cq_off.head);
	u->cq_tail = (unsigned *)(rings + p.cq_off.tail);
	u->cq_mask = *(unsigned *)(rings + p.cq_off.ring_mask);
	u->cqes = (struct io_uring_cqe *)(rings + p.cq_off.cqes);

	/* Sockets in fixed-file slots skip the descriptor table and its lookups. */
	struct io_uring_rsrc_register files = {.nr = (uint32_t)count,
	                                       .flags = IORING_RSRC_REGISTER_SPARSE};
	if (syscall(__NR_io_uring_register, u->fd, IORING_REGISTER_FILES2, &files, sizeof(files)) < 0) {
		int saved = errno;
		uring_close(u);
		errno = saved;
		return -1;
	}
	/* A registered ring spares each io_uring_enter the lookup of its descriptor. */
	struct io_uring_rsrc_update self = {.offset = UINT32_MAX, .data = (uint64_t)u->fd};
	u->enter_fd = (unsigned)u->fd;
	if (syscall(__NR_io_uring_register, u->fd, IORING_REGISTER_RING_FDS, &self, 1) == 1) {
		u->enter_fd = self.offset;
		u->enter_flags = IORING_ENTER_REGISTERED_RING;
	}
	return 0;
}

/*
 * Submits every entry queued and, with WAIT, waits for that many completions
 * or TIMEOUT_US; what io_uring_enter returns, -1 with errno on failure
 * (ETIME when the time ran out).
 */
static int uring_enter(struct uring *u, unsigned wait, int64_t timeout_us)
{
	__atomic_store_n(u->sq_tail, u->sq_queued_tail, __ATOMIC_RELEASE);
	unsigned submit = u->sq_queued_tail - __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE);
	struct __kernel_timespec ts = {.tv_sec = timeout_us / 1000000,
	                               .tv_nsec = timeout_us % 1000000 * 1000};
	struct io_uring_getevents_arg arg = {.ts = (uint64_t)(uintptr_t)&ts};
	unsigned flags = u->enter_flags;
	if (wait)
		flags |= IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
	return (int)syscall(__NR_io_uring_enter, u->enter_fd, submit, wait, flags, wait ? &arg : NULL,
	                    wait ? sizeof(arg) : 0);
}

/*
 * Makes room for N entries in the submission queue, submitting what is
 * queued when it is full; 0, or -1.  A chain is queued only whole: the
 * kernel would run half a chain submitted alone.
 */
static int uring_room(struct uring *u, unsigned n)
{
	while (u->sq_queued_tail - __atomic_load_n(u->sq_head, __ATOMIC_ACQUIRE) + n > u->sq_entries)
		if (uring_enter(u, 0, 0) < 0 && errno != EINTR)
			return -1;
	return 0;
}

/* The next submission entry, zeroed; uring_room() has made room for it. */
static struct io_uring_sqe *uring_sqe(struct uring *u)
{
	struct io_uring_sqe *sqe = &u->sqes[u->sq_queued_tail & u->sq_mask];
	u->sq_queued_tail++;
	memset(sqe, 0, sizeof(*sqe));
	return sqe;
}

/* An operation's user_data: its chain's generation, its connection's index, what it is. */
static uint64_t uring_data(const struct conn *c, int index, enum uring_op op)
{
	return (uint64_t)c->chain << 32 | (uint64_t)index << 8 | (uint64_t)op;
}

/* A new socket in slot INDEX (which closes the one it held), linked to what follows. */
static void uring_prep_socket(struct io_uring_sqe *sqe, int index)
{
	sqe->opcode = IORING_OP_SOCKET;
	sqe->fd = cfg.unix_socket ? AF_UNIX : AF_INET;
	/* Non-blocking, so that a connect to a full unix listen queue fails with EAGAIN. */
	sqe->off = SOCK_STREAM | SOCK_NONBLOCK;
	sqe->file_index = (uint32_t)index + 1; /* slots count from 1 here, 0 meaning none */
	sqe->flags = IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
}

/* setsockopt(TCP_NODELAY) on slot INDEX, as the kernel's socket command. */
static void uring_prep_nodelay(struct io_uring_sqe *sqe, int index)
{
	struct {
		uint32_t level, optname;
	} option = {IPPROTO_TCP, TCP_NODELAY};
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = index;
	sqe->flags = IOSQE_FIXED_FILE;
	sqe->cmd_op = URING_SOCKET_SETSOCKOPT;
	memcpy(&sqe->addr, &option, sizeof(option)); /* sqe->level and sqe->optname */
	sqe->file_index = sizeof(uring_one);         /* sqe->optlen */
	sqe->addr3 = (uint64_t)(uintptr_t)&uring_one; /* sqe->optval */
}

/* A connection's chain, its receive buffer, and what is in flight over the thread. */
struct uring_worker {
	struct worker *w;
	struct uring ring;
	unsigned char *inbox; /* URING_RECV_SIZE bytes per connection, for its RECV */
	int busy;             /* connections with a chain in flight */
};

static void uring_fatal(const char *what)
{
	fprintf(stderr, "fcgi_load: io_uring: %s: %s\n", what, strerror(errno));
	exit(2);
}

/*
 * Queues a RECV of the answer.  The FIRST, linked after the SEND, waits for
 * the socket to be readable before trying: the answer cannot be there yet.
 */
static void uring_queue_recv(struct uring_worker *uw, struct conn *c, int index, bool first)
{
	struct io_uring_sqe *sqe = uring_sqe(&uw->ring);
	sqe->opcode = IORING_OP_RECV;
	sqe->fd = index;
	sqe->flags = IOSQE_FIXED_FILE;
	sqe->addr = (uint64_t)(uintptr_t)(uw->inbox + (size_t)index * URING_RECV_SIZE);
	sqe->len = URING_RECV_SIZE;
	if (first)
		sqe->ioprio = IORING_RECVSEND_POLL_FIRST;
	sqe->user_data = uring_data(c, index, OP_RECV);
}

/*
 * Queues SEND of what is left of the request, then its RECV.  MSG_WAITALL
 * has the kernel send the rest of a short send itself; what comes back short
 * all the same is sent again by uring_on_completion().
 */
static void uring_queue_send(struct uring_worker *uw, struct conn *c, int index)
{
	struct io_uring_sqe *sqe = uring_sqe(&uw->ring);
	sqe->opcode = IORING_OP_SEND;
	sqe->fd = index;
	sqe->flags = IOSQE_FIXED_FILE | IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
	sqe->addr = (uint64_t)(uintptr_t)(c->request + c->sent);
	sqe->len = (uint32_t)(c->request_len - c->sent);
	sqe->msg_flags = MSG_NOSIGNAL | MSG_WAITALL;
	sqe->user_data = uring_data(c, index, OP_SEND);
	uring_queue_recv(uw, c, index, true);
}

/*
 * Starts the connection's next request: SOCKET -> [TCP_NODELAY ->] CONNECT
 * -> SEND -> RECV, or SEND -> RECV on a kept connection.  Every operation
 * before the RECV reports only its failure (IOSQE_CQE_SKIP_SUCCESS), and the
 * kernel then skips the rest of the chain's completions: a chain brings one
 * completion that ends it, a failure or the RECV's, plus one per further RECV.
 */
static void uring_conn_start(struct uring_worker *uw, struct conn *c)
{
	conn_prepare(c);
	if (c->request_len == 0) {
		fprintf(stderr, "fcgi_load: a request does not fit in %d bytes\n", REQUEST_MAX);
		exit(2);
	}
	int index = (int)(c - uw->w->conns);
	if (uring_room(&uw->ring, 5) != 0)
		uring_fatal("submit");
	if (c->state == CONN_IDLE)
		uw->busy++;
	c->chain++;
	c->cancelled = false;
	c->state = c->connected ? CONN_SENDING : CONN_CONNECTING;
	if (!c->connected) {
		struct io_uring_sqe *sqe = uring_sqe(&uw->ring);
		uring_prep_socket(sqe, index);
		sqe->user_data = uring_data(c, index, OP_SOCKET);
		if (!cfg.unix_socket) {
			sqe = uring_sqe(&uw->ring);
			uring_prep_nodelay(sqe, index);
			sqe->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
			sqe->user_data = uring_data(c, index, OP_NODELAY);
		}
		sqe = uring_sqe(&uw->ring);
		sqe->opcode = IORING_OP_CONNECT;
		sqe->fd = index;
		sqe->flags = IOSQE_FIXED_FILE | IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
		sqe->addr = cfg.unix_socket ? (uint64_t)(uintptr_t)&cfg.sun : (uint64_t)(uintptr_t)&cfg.sin;
		sqe->off = cfg.unix_socket ? sizeof(cfg.sun) : sizeof(cfg.sin); /* sqe->addr2: the length */
		sqe->user_data = uring_data(c, index, OP_CONNECT);
	}
	uring_queue_send(uw, c, index);
}

/*
 * The connection's chain has ended without an answer to count, or after
 * the deadline: close its socket (a kept one holds an ee-api worker), and
 * when FAILED count a connection error and retry after RETRY_DELAY_MS.
 */
static void uring_conn_stop(struct uring_worker *uw, struct conn *c, bool failed)
{
	int index = (int)(c - uw->w->conns);
	if (failed) {
		uw->w->result->conn_errors++;
		c->retry_at_us = now_us() + RETRY_DELAY_MS * 1000;
	}
	if (uring_room(&uw->ring, 1) != 0)
		uring_fatal("submit");
	struct io_uring_sqe *sqe = uring_sqe(&uw->ring);
	sqe->opcode = IORING_OP_CLOSE;
	sqe->file_index = (uint32_t)index + 1;
	sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
	sqe->user_data = uring_data(c, index, OP_CLOSE);
	c->state = CONN_IDLE;
	c->connected = false;
	uw->busy--;
}

/*
 * At the deadline, drop the requests not yet sent, as the epoll engine
 * closes a connection still connecting: cancel each chain's pending CONNECT
 * or SEND, which ends it.  A chain past its SEND is not touched (nothing
 * matches): its request went out and its answer is waited for.  So is the
 * request of a chain submitted together with the cancels, whose operations
 * still wait their turn where a cancel does not look, as the epoll engine
 * waits for a request it sent just before the deadline.
 */
static void uring_cancel_unsent(struct uring_worker *uw)
{
	for (int i = 0; i < uw->w->count; i++) {
		struct conn *c = &uw->w->conns[i];
		if (c->state != CONN_CONNECTING && c->state != CONN_SENDING)
			continue;
		if (uring_room(&uw->ring, 2) != 0)
			uring_fatal("submit");
		c->cancelled = true;
		enum uring_op pending[2] = {OP_CONNECT, OP_SEND};
		for (int k = c->state == CONN_CONNECTING ? 0 : 1; k < 2; k++) {
			struct io_uring_sqe *sqe = uring_sqe(&uw->ring);
			sqe->opcode = IORING_OP_ASYNC_CANCEL;
			sqe->fd = -1;
			sqe->addr = uring_data(c, i, pending[k]);
			sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
			sqe->user_data = uring_data(c, i, OP_CANCEL);
		}
	}
}

static void uring_on_recv(struct uring_worker *uw, struct conn *c, int index, int res)
{
	if (res <= 0) { /* refused, reset, or closed before END_REQUEST */
		uring_conn_stop(uw, c, true);
		return;
	}
	int done = conn_parse(c, uw->inbox + (size_t)index * URING_RECV_SIZE, (size_t)res);
	if (done < 0) {
		uring_conn_stop(uw, c, true);
		return;
	}
	if (done == 0) {
		c->state = CONN_RECEIVING;
		if (uring_room(&uw->ring, 1) != 0)
			uring_fatal("submit");
		uring_queue_recv(uw, c, index, false);
		return;
	}
	int64_t now = now_us();
	if (!answer_count(c, uw->w->result, now, uw->w->deadline_us)) {
		uring_conn_stop(uw, c, false);
		return;
	}
	/* Without -k the next SOCKET replaces, and so closes, the socket in the slot. */
	c->connected = cfg.keep;
	uring_conn_start(uw, c);
}

static void uring_on_completion(struct uring_worker *uw, const struct io_uring_cqe *cqe)
{
	enum uring_op op = (enum uring_op)(cqe->user_data & 0xff);
	int index = (int)(cqe->user_data >> 8 & 0xffffff);
	if (op == OP_CLOSE || op == OP_CANCEL || index >= uw->w->count)
		return; /* a slot found empty, a cancel that found its operation done */
	struct conn *c = &uw->w->conns[index];
	if ((uint32_t)(cqe->user_data >> 32) != c->chain || c->state == CONN_IDLE)
		return; /* what is left of an ended chain */
	if (op == OP_RECV) {
		uring_on_recv(uw, c, index, cqe->res);
		return;
	}
	/*
	 * Past here a failure or a short send (successes are not reported); the
	 * kernel ends the rest of the chain with -ECANCELED, unreported too.
	 */
	if (op == OP_SEND && cqe->res >= 0) {
		if ((size_t)cqe->res >= c->request_len - c->sent)
			return; /* a success reported all the same: the RECV follows */
		if (cqe->res > 0 && !c->cancelled) {
			c->sent += (size_t)cqe->res;
			if (uring_room(&uw->ring, 2) != 0)
				uring_fatal("submit");
			c->chain++;
			c->state = CONN_SENDING;
			uring_queue_send(uw, c, index);
			return;
		}
		/* Nothing sent fails, as in the epoll engine; a cancelled send drops its request. */
	} else if (cqe->res >= 0) {
		return; /* a success reported all the same: the chain goes on */
	}
	uring_conn_stop(uw, c, !c->cancelled);
}

/* Takes every completion there is. */
static void uring_reap(struct uring_worker *uw)
{
	struct uring *u = &uw->ring;
	unsigned head = *u->cq_head;
	while (head != __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE)) {
		struct io_uring_cqe cqe = u->cqes[head & u->cq_mask];
		/* Hand the entry back first: handling it may submit, and so complete, more. */
		__atomic_store_n(u->cq_head, ++head, __ATOMIC_RELEASE);
		uring_on_completion(uw, &cqe);
	}
}

static void *uring_worker_run(void *arg)
{
	struct uring_worker uw = {.w = arg};
	struct worker *w = uw.w;
	if (uring_open(&uw.ring, w->count) != 0)
		uring_fatal("setup");
	uw.inbox = malloc((size_t)w->count * URING_RECV_SIZE);
	if (!uw.inbox) {
		fprintf(stderr, "fcgi_load: out of memory\n");
		exit(2);
	}
	for (int i = 0; i < w->count; i++)
		uring_conn_start(&uw, &w->conns[i]);
	bool cancelled = false;
	for (;;) {
		int64_t now = now_us();
		int64_t timeout_us;
		if (now >= w->deadline_us) {
			if (!cancelled)
				uring_cancel_unsent(&uw);
			cancelled = true;
			int64_t drain_end = w->deadline_us + DRAIN_MS * 1000;
			if (uw.busy == 0 || now >= drain_end)
				break;
			timeout_us = drain_end - now < 10000 ? drain_end - now : 10000;
		} else {
			timeout_us = w->deadline_us - now;
			if (uw.busy < w->count && timeout_us > RETRY_DELAY_MS * 1000)
				timeout_us = RETRY_DELAY_MS * 1000;
		}
		if (uring_enter(&uw.ring, 1, timeout_us) < 0 && errno != ETIME && errno != EINTR &&
		    errno != EBUSY)
			uring_fatal("enter");
		uring_reap(&uw);
		now = now_us();
		for (int i = 0; i < w->count && uw.busy < w->count && now < w->deadline_us; i++) {
			struct conn *c = &w->conns[i];
			if (c->state == CONN_IDLE && c->retry_at_us <= now)
				uring_conn_start(&uw, c);
		}
	}
	/* Closing the ring cancels what is still in flight and closes its sockets. */
	uring_close(&uw.ring);
	free(uw.inbox);
	return NULL;
}

/*
 * Whether io_uring can run the client here: sets up a ring as a thread of
 * PER_THREAD connections does and opens a socket of ADDR's family in a
 * slot (with TCP_NODELAY for TCP).
 */
static bool uring_usable(int per_thread)
{
	struct uring u;
	if (uring_open(&u, per_thread) != 0)
		return false;
	struct io_uring_sqe *sqe = uring_sqe(&u);
	uring_prep_socket(sqe, 0);
	if (cfg.unix_socket)
		sqe->flags = 0;
	else
		uring_prep_nodelay(uring_sqe(&u), 0);
	bool ok = uring_enter(&u, 1, 1000000) >= 0 &&
	          *u.cq_head != __atomic_load_n(u.cq_tail, __ATOMIC_ACQUIRE) &&
	          u.cqes[*u.cq_head & u.cq_mask].res >= 0;
	uring_close(&u);
	return ok;
}

/* One process: its share of the connections over cfg.threads threads. */
static void run_process(int proc, struct result *out, int64_t deadline_us)
{
	int per_proc = cfg.conns / cfg.procs + (proc < cfg.conns % cfg.procs);
	int first = proc * (cfg.conns / cfg.procs) + (proc < cfg.conns % cfg.procs ? proc : cfg.conns % cfg.procs);
	int threads = cfg.threads < per_proc ? cfg.threads : per_proc;
	struct conn *conns = calloc((size_t)per_proc, sizeof(*conns));
	struct result *results = calloc((size_t)threads, sizeof(*results));
	struct worker workers[MAX_THREADS];
	pthread_t tids[MAX_THREADS];
	if (!conns || !results) {
		fprintf(stderr, "fcgi_load: out of memory\n");
		exit(2);
	}
	for (int i = 0; i < per_proc; i++) {
		conns[i].fd = -1;
		conns[i].index = first + i;
	}
	int at = 0;
	for (int t = 0; t < threads; t++) {
		int n = per_proc / threads + (t < per_proc % threads);
		workers[t] = (struct worker){conns + at, n, -1, deadline_us, &results[t]};
		at += n;
		if (pthread_create(&tids[t], NULL, cfg.epoll ? epoll_worker_run : uring_worker_run,
		                   &workers[t]) != 0) {
			fprintf(stderr, "fcgi_load: cannot start a thread\n");
			exit(2);
		}
	}
	memset(out, 0, sizeof(*out));
	for (int t = 0; t < threads; t++) {
		pthread_join(tids[t], NULL);
		out->requests += results[t].requests;
		out->ok += results[t].ok;
		out->non_200 += results[t].non_200;
		out->conn_errors += results[t].conn_errors;
		out->late_ok += results[t].late_ok;
		for (size_t i = 0; i < HIST_BUCKETS; i++)
			out->hist[i] += results[t].hist[i];
	}
	free(conns);
	free(results);
}

/* ---- main ---- */

static pid_t children[MAX_PROCS];
static int child_count;

static void on_signal(int sig)
{
	for (int i = 0; i < child_count; i++)
		if (children[i] > 0)
			kill(children[i], SIGTERM);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: fcgi_load -a ADDR [-d SECONDS] [-c CONNS] [-t THREADS] [-P PROCS] [-k] [-e]\n"
	        "                 [-m METHOD] -p PATH [-b BODY] [-T TOKEN] [-o OFFSET] [-A FROM,TO]\n"
	        "  ADDR: /path/to/socket or 127.0.0.1:PORT; placeholders in PATH and BODY:\n"
	        "  {n} {from} {to} {start} {end}; -e: epoll instead of io_uring\n");
	exit(2);
}

static int parse_addr(const char *a)
{
	if (a[0] == '/' || a[0] == '.') {
		if (strlen(a) >= sizeof(cfg.sun.sun_path))
			return -1;
		cfg.unix_socket = true;
		cfg.sun.sun_family = AF_UNIX;
		snprintf(cfg.sun.sun_path, sizeof(cfg.sun.sun_path), "%s", a);
		return 0;
	}
	const char *colon = strrchr(a, ':');
	char host[64];
	if (!colon || (size_t)(colon - a) >= sizeof(host))
		return -1;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - a), a);
	cfg.sin.sin_family = AF_INET;
	cfg.sin.sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &cfg.sin.sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	snprintf(cfg.from, sizeof(cfg.from), "bench-a");
	snprintf(cfg.to, sizeof(cfg.to), "bench-b");
	int opt;
	while ((opt = getopt(argc, argv, "a:d:c:t:P:kem:p:b:T:o:A:")) != -1) {
		switch (opt) {
		case 'a': cfg.addr = optarg; break;
		case 'd': cfg.seconds = atof(optarg); break;
		case 'c': cfg.conns = atoi(optarg); break;
		case 't': cfg.threads = atoi(optarg); break;
		case 'P': cfg.procs = atoi(optarg); break;
		case 'k': cfg.keep = true; break;
		case 'e': cfg.epoll = true; break;
		case 'm': cfg.method = optarg; break;
		case 'p': cfg.path = optarg; break;
		case 'b': cfg.body = optarg; break;
		case 'T': cfg.token = optarg; break;
		case 'o': cfg.offset = atoll(optarg); break;
		case 'A': {
			const char *comma = strchr(optarg, ',');
			if (!comma || comma == optarg || strlen(comma + 1) > 128 ||
			    (size_t)(comma - optarg) > 128)
				usage();
			snprintf(cfg.from, sizeof(cfg.from), "%.*s", (int)(comma - optarg), optarg);
			snprintf(cfg.to, sizeof(cfg.to), "%s", comma + 1);
			break;
		}
		default: usage();
		}
	}
	if (!cfg.addr || !cfg.path || cfg.seconds <= 0 || cfg.conns < 1 || cfg.conns > MAX_CONNS ||
	    cfg.threads < 1 || cfg.threads > MAX_THREADS || cfg.procs < 1 || cfg.procs > MAX_PROCS ||
	    cfg.procs > cfg.conns)
		usage();
	if (parse_addr(cfg.addr) != 0) {
		fprintf(stderr, "fcgi_load: bad address %s\n", cfg.addr);
		return 2;
	}
	unsigned char probe[REQUEST_MAX];
	if (build_request(cfg.offset, probe) == 0) {
		fprintf(stderr, "fcgi_load: the request is too large\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* The most connections a thread gets, as run_process() shares them out. */
	int per_proc = cfg.conns / cfg.procs + (cfg.conns % cfg.procs != 0);
	int threads = cfg.threads < per_proc ? cfg.threads : per_proc;
	if (!cfg.epoll && !uring_usable(per_proc / threads + (per_proc % threads != 0)))
		cfg.epoll = true;

	/* Every process writes its result into its own slot of a shared mapping. */
	struct result *slots = mmap(NULL, sizeof(struct result) * (size_t)cfg.procs,
	                            PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (slots == MAP_FAILED) {
		perror("fcgi_load: mmap");
		return 2;
	}
	int64_t start = now_us();
	int64_t deadline = start + (int64_t)(cfg.seconds * 1e6);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	pid_t parent = getpid();
	for (int p = 1; p < cfg.procs; p++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fcgi_load: fork");
			on_signal(SIGTERM);
		}
		if (pid == 0) {
			signal(SIGINT, SIG_DFL);
			signal(SIGTERM, SIG_DFL);
			/* Never outlive the parent, whatever ends it. */
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != parent)
				_exit(1);
			run_process(p, &slots[p], deadline);
			_exit(0);
		}
		children[child_count++] = pid;
	}
	run_process(0, &slots[0], deadline);
	bool children_ok = true;
	for (int i = 0; i < child_count; i++) {
		int status;
		if (waitpid(children[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			children_ok = false;
	}
	double seconds = (double)(deadline - start) / 1e6;
	struct result total;
	memset(&total, 0, sizeof(total));
	for (int p = 0; p < cfg.procs; p++) {
		total.requests += slots[p].requests;
		total.ok += slots[p].ok;
		total.non_200 += slots[p].non_200;
		total.conn_errors += slots[p].conn_errors;
		total.late_ok += slots[p].late_ok;
		for (size_t i = 0; i < HIST_BUCKETS; i++)
			total.hist[i] += slots[p].hist[i];
	}
	printf("requests %llu ok %llu non_200 %llu conn_errors %llu answered_200 %llu seconds %.2f "
	       "rps %.0f p50_ms %.3f p90_ms %.3f p99_ms %.3f engine %s\n",
	       (unsigned long long)total.requests, (unsigned long long)total.ok,
	       (unsigned long long)total.non_200, (unsigned long long)total.conn_errors,
	       (unsigned long long)(total.ok + total.late_ok), seconds,
	       (double)total.requests / seconds, hist_percentile_ms(&total, 50),
	       hist_percentile_ms(&total, 90), hist_percentile_ms(&total, 99),
	       cfg.epoll ? "epoll" : "io_uring");
	munmap(slots, sizeof(struct result) * (size_t)cfg.procs);
	return children_ok && total.non_200 == 0 && total.conn_errors == 0 && total.ok > 0 ? 0 : 1;
}
