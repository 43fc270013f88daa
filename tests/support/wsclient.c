/* wsclient.c - the blocking RFC 6455 test client; see wsclient.h. */
#include "wsclient.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>

#include "base64.h"
#include "jsonutil.h"
#include "timeutil.h"
#include "util.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_READ_CHUNK (64 * 1024)
#define WS_CLOSE_WAIT_MS 1000
/* How long a refused upgrade's body may take when it has no Content-Length. */
#define WS_REFUSAL_BODY_MS 500

struct ws_client {
	int fd;
	/* Bytes received and not yet consumed: rx[rx_off .. rx_len). */
	unsigned char *rx;
	size_t rx_off, rx_len, rx_cap;
	/* The message being reassembled from fragments. */
	unsigned char *msg;
	size_t msg_len, msg_cap;
	int msg_opcode;
	bool in_message;
	/* Connection state. */
	bool close_sent, close_received, eof, failed;
	int close_code;
	char close_reason[124];
	bool auto_pong;
	int send_timeout_ms;
	int pongs;
	char last_pong[126];
	char error[256];
	char *response_headers;
};

static void set_error(struct ws_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct ws_client *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
}

static void set_why(char *why, size_t why_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t why_size, const char *fmt, ...)
{
	if (!why || why_size == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, why_size, fmt, ap);
	va_end(ap);
}

/* Milliseconds left until deadline (-1: none), clamped for poll(). */
static int remaining_ms(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - time_monotonic_ms();
	if (left <= 0)
		return 0;
	return left > 1000000 ? 1000000 : (int)left;
}

static int64_t deadline_after(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : time_monotonic_ms() + timeout_ms;
}

void ws_compute_accept(const char *key, char out[WS_ACCEPT_LEN + 1])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char material[256];
	int n = snprintf(material, sizeof(material), "%s%s", key, WS_GUID);
	if (n < 0 || (size_t)n >= sizeof(material) ||
	    EVP_Digest(material, (size_t)n, digest, &dlen, EVP_sha1(), NULL) != 1 || dlen != 20) {
		/* A key too long to be real cannot match anything the server computes. */
		memset(out, '!', WS_ACCEPT_LEN);
		out[WS_ACCEPT_LEN] = '\0';
		return;
	}
	base64_encode(digest, 20, out);
}

bool ws_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char b = s[i];
		size_t extra;
		uint32_t cp, min;
		if (b < 0x80) {
			i++;
			continue;
		} else if ((b & 0xe0) == 0xc0) {
			extra = 1, cp = b & 0x1f, min = 0x80;
		} else if ((b & 0xf0) == 0xe0) {
			extra = 2, cp = b & 0x0f, min = 0x800;
		} else if ((b & 0xf8) == 0xf0) {
			extra = 3, cp = b & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (len - i <= extra)
			return false;
		for (size_t k = 1; k <= extra; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += extra + 1;
	}
	return true;
}

/* ---- sockets ---- */

static int set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	return flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? -1 : 0;
}

static int connect_tcp(const char *host, int port, int rcvbuf, int64_t deadline, char *why,
                       size_t why_size)
{
	char service[16];
	snprintf(service, sizeof(service), "%d", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(host, service, &hints, &res);
	if (gai != 0) {
		set_why(why, why_size, "connect: %s: %s", host, gai_strerror(gai));
		return -1;
	}
	int fd = -1, saved = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		/* The receive window is fixed at connect time, so a slow reader sets it first. */
		if (rcvbuf > 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (set_nonblocking(fd) != 0) {
			saved = errno;
			close(fd);
			fd = -1;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int n;
			do
				n = poll(&p, 1, remaining_ms(deadline));
			while (n < 0 && errno == EINTR);
			int err = 0;
			socklen_t elen = sizeof(err);
			if (n == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0)
				break;
			saved = n == 0 ? ETIMEDOUT : (err ? err : errno);
		} else {
			saved = errno;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		set_why(why, why_size, "connect: %s:%d: %s", host, port, strerror(saved));
	return fd;
}

/* Writes everything or fails: -1 on error or when the deadline passes. */
static int write_all(int fd, const void *data, size_t len, int64_t deadline, char *err,
                     size_t err_size)
{
	const unsigned char *p = data;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			int r = poll(&pfd, 1, remaining_ms(deadline));
			if (r == 0) {
				set_why(err, err_size, "send: timed out with %zu bytes unsent", len);
				return -1;
			}
			if (r < 0 && errno != EINTR) {
				set_why(err, err_size, "poll: %s", strerror(errno));
				return -1;
			}
			continue;
		}
		set_why(err, err_size, "send: %s", n < 0 ? strerror(errno) : "wrote nothing");
		return -1;
	}
	return 0;
}

static int rx_reserve(struct ws_client *c, size_t want)
{
	if (c->rx_off == c->rx_len)
		c->rx_off = c->rx_len = 0;
	if (c->rx_cap - c->rx_len >= want)
		return 0;
	/*
	 * Compacts only when the bytes to keep do not overlap their new place:
	 * memcpy, because valgrind reports glibc's fortified memmove as an
	 * overlapping memcpy.  Otherwise the buffer grows.
	 */
	if (c->rx_off > 0 && c->rx_off >= c->rx_len - c->rx_off) {
		memcpy(c->rx, c->rx + c->rx_off, c->rx_len - c->rx_off);
		c->rx_len -= c->rx_off;
		c->rx_off = 0;
		if (c->rx_cap - c->rx_len >= want)
			return 0;
	}
	/* Doubling for small growth; a big frame gets exactly its size (64 MiB, not 128). */
	size_t cap = c->rx_cap ? c->rx_cap * 2 : WS_READ_CHUNK;
	if (cap - c->rx_len < want)
		cap = c->rx_len + want;
	unsigned char *p = realloc(c->rx, cap);
	if (!p) {
		set_error(c, "out of memory for a %zu byte receive buffer", cap);
		return -1;
	}
	c->rx = p;
	c->rx_cap = cap;
	return 0;
}

/*
 * Reads what the socket has, waiting until deadline.  1: bytes came;
 * 0: timeout; -1: end of stream or a socket error (c->eof set).
 */
static int read_more(struct ws_client *c, size_t want, int64_t deadline)
{
	if (c->eof)
		return -1;
	if (rx_reserve(c, want < WS_READ_CHUNK ? WS_READ_CHUNK : want) != 0)
		return -1;
	for (;;) {
		ssize_t n = recv(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len, 0);
		if (n > 0) {
			c->rx_len += (size_t)n;
			return 1;
		}
		if (n == 0) {
			c->eof = true;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			set_error(c, "recv: %s", strerror(errno));
			c->eof = true;
			return -1;
		}
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int r = poll(&p, 1, remaining_ms(deadline));
		if (r == 0)
			return 0;
		if (r < 0 && errno != EINTR) {
			set_error(c, "poll: %s", strerror(errno));
			c->eof = true;
			return -1;
		}
	}
}

/* ---- the handshake ---- */

/* The first header called name in a "Name: value\r\n" block, trimmed; false if none. */
static bool header_value(const char *headers, const char *name, char *out, size_t out_size)
{
	size_t nlen = strlen(name);
	const char *line = strstr(headers, "\r\n");
	while (line) {
		line += 2;
		if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			const char *v = line + nlen + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			const char *end = strstr(v, "\r\n");
			if (!end)
				end = v + strlen(v);
			while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
			size_t n = (size_t)(end - v);
			if (n >= out_size)
				n = out_size - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return true;
		}
		line = strstr(line, "\r\n");
	}
	return false;
}

/* True when a comma-separated header value holds token (case-insensitive). */
static bool has_token(const char *value, const char *token)
{
	size_t tlen = strlen(token);
	const char *p = value;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *start = p;
		while (*p && *p != ',')
			p++;
		const char *end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - start) == tlen && strncasecmp(start, token, tlen) == 0)
			return true;
	}
	return false;
}

static bool offered(const char *const *extra_headers, const char *name)
{
	size_t nlen = strlen(name);
	for (size_t i = 0; extra_headers && extra_headers[i]; i++) {
		if (strncasecmp(extra_headers[i], name, nlen) == 0 && extra_headers[i][nlen] == ':')
			return true;
	}
	return false;
}

/* Body of a refused upgrade, for the caller's "why"; best effort. */
static void read_refusal_body(struct ws_client *c, const char *headers, int64_t deadline)
{
	char value[32];
	long want = -1;
	if (header_value(headers, "Content-Length", value, sizeof(value)))
		want = strtol(value, NULL, 10);
	if (want < 0 || want > 4096) {
		int64_t soon = time_monotonic_ms() + WS_REFUSAL_BODY_MS;
		if (deadline < 0 || soon < deadline)
			deadline = soon;
		want = 4096;
	}
	while (c->rx_len - c->rx_off < (size_t)want) {
		if (read_more(c, 0, deadline) <= 0)
			break;
	}
}

static bool handshake(struct ws_client *c, const char *host, int port, const char *path,
                      const char *const *extra_headers, const struct ws_connect_options *opt,
                      int64_t deadline, char *why, size_t why_size)
{
	char key[64];
	if (opt->key) {
		snprintf(key, sizeof(key), "%s", opt->key);
	} else {
		unsigned char raw[16];
		if (util_random_bytes(raw, sizeof(raw)) != 0) {
			set_why(why, why_size, "no randomness for Sec-WebSocket-Key");
			return false;
		}
		base64_encode(raw, sizeof(raw), key);
	}
	struct buf req;
	buf_init(&req);
	buf_printf(&req, "GET %s HTTP/1.1\r\n", path);
	if (!opt->host)
		buf_printf(&req, "Host: %s:%d\r\n", host, port);
	else if (opt->host[0])
		buf_printf(&req, "Host: %s\r\n", opt->host);
	buf_puts(&req, "Upgrade: websocket\r\nConnection: Upgrade\r\n");
	if (key[0])
		buf_printf(&req, "Sec-WebSocket-Key: %s\r\n", key);
	const char *version = opt->version ? opt->version : "13";
	if (version[0])
		buf_printf(&req, "Sec-WebSocket-Version: %s\r\n", version);
	for (size_t i = 0; extra_headers && extra_headers[i]; i++)
		buf_printf(&req, "%s\r\n", extra_headers[i]);
	buf_puts(&req, "\r\n");
	if (req.failed) {
		buf_free(&req);
		set_why(why, why_size, "out of memory building the request");
		return false;
	}
	int rc = write_all(c->fd, req.data, req.len, deadline, why, why_size);
	buf_free(&req);
	if (rc != 0)
		return false;

	/* The answer's header block, up to the blank line. */
	size_t header_end = 0;
	for (;;) {
		if (rx_reserve(c, 1) != 0) {
			set_why(why, why_size, "out of memory");
			return false;
		}
		c->rx[c->rx_len] = '\0';
		char *end = c->rx_len ? strstr((char *)c->rx, "\r\n\r\n") : NULL;
		if (end) {
			header_end = (size_t)(end - (char *)c->rx) + 4;
			break;
		}
		if (c->rx_len > WS_MAX_HANDSHAKE) {
			set_why(why, why_size, "handshake: answer headers over %d bytes", WS_MAX_HANDSHAKE);
			return false;
		}
		int r = read_more(c, 1, deadline);
		if (r == 0) {
			set_why(why, why_size, "handshake: timed out waiting for the answer (%zu bytes so far)",
			        c->rx_len);
			return false;
		}
		if (r < 0) {
			set_why(why, why_size, "handshake: connection closed before the answer (%zu bytes)%s%s",
			        c->rx_len, c->error[0] ? ": " : "", c->error);
			return false;
		}
	}
	c->response_headers = strndup((const char *)c->rx, header_end - 4);
	if (!c->response_headers) {
		set_why(why, why_size, "out of memory");
		return false;
	}
	c->rx_off = header_end;
	/* Keep CRLF before each header for header_value(); the block is its own copy. */
	char *hdrs = c->response_headers;

	int status = 0;
	if ((strncmp(hdrs, "HTTP/1.1 ", 9) != 0 && strncmp(hdrs, "HTTP/1.0 ", 9) != 0) ||
	    sscanf(hdrs + 9, "%3d", &status) != 1) {
		set_why(why, why_size, "handshake: not an HTTP answer: %.80s", hdrs);
		return false;
	}
	if (status != 101) {
		read_refusal_body(c, hdrs, deadline);
		size_t blen = c->rx_len - c->rx_off;
		set_why(why, why_size, "HTTP %d: %.*s", status, (int)(blen > 4096 ? 4096 : blen),
		        (const char *)c->rx + c->rx_off);
		return false;
	}
	char value[512];
	if (!header_value(hdrs, "Upgrade", value, sizeof(value)) || strcasecmp(value, "websocket") != 0) {
		set_why(why, why_size, "handshake: 101 without Upgrade: websocket");
		return false;
	}
	if (!header_value(hdrs, "Connection", value, sizeof(value)) || !has_token(value, "upgrade")) {
		set_why(why, why_size, "handshake: 101 without Connection: Upgrade");
		return false;
	}
	if (!opt->skip_accept_check) {
		char want[WS_ACCEPT_LEN + 1];
		ws_compute_accept(key, want);
		if (!header_value(hdrs, "Sec-WebSocket-Accept", value, sizeof(value))) {
			set_why(why, why_size, "handshake: 101 without Sec-WebSocket-Accept");
			return false;
		}
		if (strcmp(value, want) != 0) {
			set_why(why, why_size, "handshake: Sec-WebSocket-Accept is \"%s\", want \"%s\"",
			        value, want);
			return false;
		}
	}
	/* RFC 6455 4.1: an extension or subprotocol the client did not offer fails the connection. */
	if (header_value(hdrs, "Sec-WebSocket-Extensions", value, sizeof(value)) &&
	    !offered(extra_headers, "Sec-WebSocket-Extensions")) {
		set_why(why, why_size, "handshake: server chose an extension not offered: %s", value);
		return false;
	}
	if (header_value(hdrs, "Sec-WebSocket-Protocol", value, sizeof(value)) &&
	    !offered(extra_headers, "Sec-WebSocket-Protocol")) {
		set_why(why, why_size, "handshake: server chose a subprotocol not offered: %s", value);
		return false;
	}
	return true;
}

static void client_free(struct ws_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->rx);
	free(c->msg);
	free(c->response_headers);
	free(c);
}

struct ws_client *ws_connect_ex(const char *host, int port, const char *path,
                                const char *const *extra_headers,
                                const struct ws_connect_options *opt, int timeout_ms, char *why,
                                size_t why_size)
{
	static const struct ws_connect_options defaults;
	if (!opt)
		opt = &defaults;
	set_why(why, why_size, "%s", "");
	int64_t deadline = deadline_after(timeout_ms);
	struct ws_client *c = calloc(1, sizeof(*c));
	if (!c) {
		set_why(why, why_size, "out of memory");
		return NULL;
	}
	c->fd = -1;
	c->auto_pong = true;
	c->send_timeout_ms = WS_SEND_TIMEOUT_MS;
	if (rx_reserve(c, WS_READ_CHUNK) != 0) {
		set_why(why, why_size, "out of memory");
		client_free(c);
		return NULL;
	}
	c->fd = connect_tcp(host, port, opt->rcvbuf, deadline, why, why_size);
	if (c->fd < 0 || !handshake(c, host, port, path, extra_headers, opt, deadline, why, why_size)) {
		client_free(c);
		return NULL;
	}
	return c;
}

struct ws_client *ws_connect(const char *host, int port, const char *path,
                             const char *const *extra_headers, int timeout_ms, char *why,
                             size_t why_size)
{
	return ws_connect_ex(host, port, path, extra_headers, NULL, timeout_ms, why, why_size);
}

/* ---- sending ---- */

size_t ws_frame_header(unsigned char out[WS_FRAME_HEADER_MAX], int opcode, bool fin,
                       uint64_t len, const unsigned char mask[4])
{
	size_t n = 0;
	out[n++] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x7f));
	unsigned char m = mask ? 0x80 : 0;
	if (len < 126) {
		out[n++] = (unsigned char)(m | len);
	} else if (len <= 0xffff) {
		out[n++] = m | 126;
		out[n++] = (unsigned char)(len >> 8);
		out[n++] = (unsigned char)len;
	} else {
		out[n++] = m | 127;
		for (int shift = 56; shift >= 0; shift -= 8)
			out[n++] = (unsigned char)(len >> shift);
	}
	if (mask) {
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

int ws_send_raw(struct ws_client *c, const void *bytes, size_t len)
{
	c->error[0] = '\0';
	return write_all(c->fd, bytes, len, deadline_after(c->send_timeout_ms), c->error,
	                 sizeof(c->error));
}

int ws_send_frame(struct ws_client *c, int opcode, bool fin, bool masked, const void *data,
                  size_t len)
{
	unsigned char mask[4];
	if (masked && util_random_bytes(mask, sizeof(mask)) != 0) {
		set_error(c, "no randomness for a mask");
		return -1;
	}
	unsigned char *frame = malloc(WS_FRAME_HEADER_MAX + len);
	if (!frame) {
		set_error(c, "out of memory for a %zu byte frame", len);
		return -1;
	}
	size_t n = ws_frame_header(frame, opcode, fin, len, masked ? mask : NULL);
	const unsigned char *in = data;
	if (masked) {
		for (size_t i = 0; i < len; i++)
			frame[n + i] = in[i] ^ mask[i & 3];
	} else if (len) {
		memcpy(frame + n, in, len);
	}
	int rc = ws_send_raw(c, frame, n + len);
	free(frame);
	if (rc == 0 && (opcode & 0x0f) == WS_OP_CLOSE)
		c->close_sent = true;
	return rc;
}

int ws_send_text(struct ws_client *c, const char *data, size_t len)
{
	return ws_send_frame(c, WS_OP_TEXT, true, true, data, len);
}

int ws_send_binary(struct ws_client *c, const void *data, size_t len)
{
	return ws_send_frame(c, WS_OP_BINARY, true, true, data, len);
}

int ws_send_json(struct ws_client *c, struct json_object *obj)
{
	size_t len = 0;
	const char *text = json_text(obj, &len);
	if (!text) {
		set_error(c, "cannot serialise JSON");
		return -1;
	}
	return ws_send_text(c, text, len);
}

/* ---- receiving ---- */

static bool close_code_valid(int code)
{
	/* RFC 6455 7.4: the codes an endpoint may put on the wire. */
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

static int protocol_error(struct ws_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int protocol_error(struct ws_client *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	c->failed = true;
	return WS_RECV_ERROR;
}

static int on_close_frame(struct ws_client *c, const unsigned char *p, size_t len)
{
	c->close_received = true;
	if (len == 1)
		return protocol_error(c, "close frame with a 1-byte payload");
	if (len == 0) {
		c->close_code = WS_CLOSE_NO_STATUS;
	} else {
		c->close_code = (p[0] << 8) | p[1];
		size_t rlen = len - 2;
		if (rlen >= sizeof(c->close_reason))
			rlen = sizeof(c->close_reason) - 1;
		memcpy(c->close_reason, p + 2, rlen);
		c->close_reason[rlen] = '\0';
		if (!ws_utf8_valid(p + 2, len - 2))
			return protocol_error(c, "close reason is not UTF-8");
		if (!close_code_valid(c->close_code))
			return protocol_error(c, "close code %d may not be sent", c->close_code);
	}
	if (!c->close_sent) {
		/* Answer with the code the server sent, as RFC 6455 5.5.1 suggests. */
		int rc = ws_send_frame(c, WS_OP_CLOSE, true, true, p, len >= 2 ? 2 : 0);
		(void)rc; /* the server may already be gone */
	}
	set_error(c, "closed by the server with code %d", c->close_code);
	return WS_RECV_CLOSED;
}

/*
 * Takes one frame from the receive buffer if a whole one is there.
 * 1: *done set when a message is complete; 0: more bytes needed (*need is
 * how many in all); otherwise a WS_RECV_* to return.
 */
static int take_frame(struct ws_client *c, bool *done, size_t *need)
{
	const unsigned char *p = c->rx + c->rx_off;
	size_t avail = c->rx_len - c->rx_off;
	*done = false;
	*need = 2;
	if (avail < 2)
		return 0;
	bool fin = p[0] & 0x80;
	int rsv = p[0] & 0x70, opcode = p[0] & 0x0f;
	bool masked = p[1] & 0x80;
	uint64_t len = p[1] & 0x7f;
	size_t hlen = 2;
	if (len == 126) {
		hlen = 4;
	} else if (len == 127) {
		hlen = 10;
	}
	*need = hlen;
	if (avail < hlen)
		return 0;
	if (len == 126) {
		len = ((uint64_t)p[2] << 8) | p[3];
		if (len < 126)
			return protocol_error(c, "16-bit length %llu not in minimal form",
			                      (unsigned long long)len);
	} else if (len == 127) {
		len = 0;
		for (int i = 2; i < 10; i++)
			len = (len << 8) | p[i];
		if (len >> 63)
			return protocol_error(c, "64-bit length with the top bit set");
		if (len <= 0xffff)
			return protocol_error(c, "64-bit length %llu not in minimal form",
			                      (unsigned long long)len);
	}
	if (rsv)
		return protocol_error(c, "reserved bits 0x%02x set with no extension", rsv);
	if (masked)
		return protocol_error(c, "masked frame from the server");
	bool control = opcode & 0x08;
	if (control) {
		if (opcode != WS_OP_CLOSE && opcode != WS_OP_PING && opcode != WS_OP_PONG)
			return protocol_error(c, "reserved control opcode 0x%x", opcode);
		if (!fin)
			return protocol_error(c, "fragmented control frame (opcode 0x%x)", opcode);
		if (len > 125)
			return protocol_error(c, "control frame of %llu bytes", (unsigned long long)len);
	} else {
		if (opcode != WS_OP_CONTINUATION && opcode != WS_OP_TEXT && opcode != WS_OP_BINARY)
			return protocol_error(c, "reserved data opcode 0x%x", opcode);
		if (opcode == WS_OP_CONTINUATION && !c->in_message)
			return protocol_error(c, "continuation frame with no message started");
		if (opcode != WS_OP_CONTINUATION && c->in_message)
			return protocol_error(c, "new message (opcode 0x%x) inside a fragmented one", opcode);
		if (len > WS_MAX_MESSAGE || c->msg_len + len > WS_MAX_MESSAGE)
			return protocol_error(c, "message over %d bytes", WS_MAX_MESSAGE);
	}
	*need = hlen + (size_t)len;
	if (avail < *need)
		return 0;
	const unsigned char *payload = p + hlen;
	c->rx_off += *need;

	switch (opcode) {
	case WS_OP_PING:
		/* A failed pong shows up as the end of the stream on the next read. */
		if (c->auto_pong && !c->close_sent)
			(void)ws_send_frame(c, WS_OP_PONG, true, true, payload, (size_t)len);
		return 1;
	case WS_OP_PONG:
		c->pongs++;
		memcpy(c->last_pong, payload, (size_t)len);
		c->last_pong[len] = '\0';
		return 1;
	case WS_OP_CLOSE:
		return on_close_frame(c, payload, (size_t)len);
	default:
		break;
	}
	if (opcode != WS_OP_CONTINUATION) {
		c->in_message = true;
		c->msg_opcode = opcode;
		c->msg_len = 0;
	}
	if (c->msg_len + len + 1 > c->msg_cap) {
		size_t cap = c->msg_cap ? c->msg_cap * 2 : 4096;
		if (cap < c->msg_len + len + 1)
			cap = c->msg_len + len + 1;
		unsigned char *m = realloc(c->msg, cap);
		if (!m)
			return protocol_error(c, "out of memory for a %zu byte message", cap);
		c->msg = m;
		c->msg_cap = cap;
	}
	if (len)
		memcpy(c->msg + c->msg_len, payload, (size_t)len);
	c->msg_len += (size_t)len;
	if (fin) {
		c->in_message = false;
		if (c->msg_opcode == WS_OP_TEXT && !ws_utf8_valid(c->msg, c->msg_len))
			return protocol_error(c, "text message of %zu bytes is not UTF-8", c->msg_len);
		*done = true;
	}
	return 1;
}

int ws_recv_message(struct ws_client *c, char **data, size_t *len, int *opcode, int timeout_ms)
{
	*data = NULL;
	*len = 0;
	if (opcode)
		*opcode = 0;
	if (c->failed)
		return WS_RECV_ERROR;
	if (c->close_received)
		return WS_RECV_CLOSED;
	int64_t deadline = deadline_after(timeout_ms);
	for (;;) {
		bool done;
		size_t need;
		int r = take_frame(c, &done, &need);
		if (r == 1) {
			if (!done)
				continue;
			/* The message buffer itself is handed over; the next one starts afresh. */
			c->msg[c->msg_len] = '\0';
			*data = (char *)c->msg;
			*len = c->msg_len;
			if (opcode)
				*opcode = c->msg_opcode;
			c->msg = NULL;
			c->msg_len = c->msg_cap = 0;
			return WS_RECV_OK;
		}
		if (r != 0)
			return r;
		size_t have = c->rx_len - c->rx_off;
		r = read_more(c, need > have ? need - have : 1, deadline);
		if (r == 0) {
			set_error(c, "timed out after %d ms", timeout_ms);
			return WS_RECV_TIMEOUT;
		}
		if (r < 0) {
			if (c->failed)
				return WS_RECV_ERROR;
			c->close_code = WS_CLOSE_ABNORMAL;
			c->close_received = true;
			if (!c->error[0])
				set_error(c, "connection closed without a close frame");
			return WS_RECV_CLOSED;
		}
	}
}

struct json_object *ws_recv_json(struct ws_client *c, int timeout_ms)
{
	char *data;
	size_t len;
	int opcode;
	if (ws_recv_message(c, &data, &len, &opcode, timeout_ms) != WS_RECV_OK)
		return NULL;
	struct json_object *obj = NULL;
	if (opcode != WS_OP_TEXT)
		set_error(c, "binary message of %zu bytes where JSON was expected", len);
	else if (!(obj = json_parse_value(data, len)))
		set_error(c, "not JSON: %.120s", data);
	free(data);
	return obj;
}

/* ---- state and closing ---- */

int ws_close_code(const struct ws_client *c) { return c->close_code; }
const char *ws_close_reason(const struct ws_client *c) { return c->close_reason; }
const char *ws_last_error(const struct ws_client *c) { return c->error; }
int ws_pongs_received(const struct ws_client *c) { return c->pongs; }
const char *ws_last_pong(const struct ws_client *c) { return c->last_pong; }
void ws_set_auto_pong(struct ws_client *c, bool on) { c->auto_pong = on; }
void ws_set_send_timeout(struct ws_client *c, int timeout_ms) { c->send_timeout_ms = timeout_ms; }
const char *ws_response_headers(const struct ws_client *c) { return c->response_headers; }
int ws_fd(const struct ws_client *c) { return c->fd; }

bool ws_is_open(const struct ws_client *c)
{
	return !c->close_sent && !c->close_received && !c->eof && !c->failed;
}

void ws_close(struct ws_client *c, int code)
{
	if (!c)
		return;
	if (ws_is_open(c)) {
		unsigned char payload[2] = {(unsigned char)(code >> 8), (unsigned char)code};
		if (ws_send_frame(c, WS_OP_CLOSE, true, true, payload, code ? 2 : 0) == 0) {
			/* The server answers with its own close frame and then ends the stream. */
			int64_t deadline = deadline_after(WS_CLOSE_WAIT_MS);
			while (!c->close_received && !c->failed && remaining_ms(deadline) > 0) {
				char *data;
				size_t len;
				int r = ws_recv_message(c, &data, &len, NULL, remaining_ms(deadline));
				free(data);
				if (r != WS_RECV_OK)
					break;
			}
			c->rx_off = c->rx_len = 0;
			while (!c->eof && read_more(c, 1, deadline) > 0)
				c->rx_off = c->rx_len = 0;
		}
	}
	client_free(c);
}

void ws_abort(struct ws_client *c)
{
	if (!c)
		return;
	/* No lingering: the peer sees the stream end (or a reset) with no close frame. */
	client_free(c);
}
