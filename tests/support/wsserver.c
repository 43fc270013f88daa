/* wsserver.c - a scripted websocket server for tests; see wsserver.h. */
#define _GNU_SOURCE
#include "wsserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "timeutil.h"
#include "wsclient.h"

int wsserver_open(struct ws_server *s)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->auto_pong = true;
	buf_init(&s->in);
	s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0)
		return -1;
	int one = 1;
	setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	if (bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(s->listen_fd, 16) != 0 ||
	    getsockname(s->listen_fd, (struct sockaddr *)&sa, &sl) != 0) {
		close(s->listen_fd);
		s->listen_fd = -1;
		return -1;
	}
	s->port = ntohs(sa.sin_port);
	return 0;
}

void wsserver_drop(struct ws_server *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	buf_reset(&s->in);
	s->pings = 0;
	s->close_code = 0;
}

void wsserver_close(struct ws_server *s)
{
	wsserver_drop(s);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
	buf_free(&s->in);
}

/* Reads more into s->in; 1 read, 0 timeout, -1 closed or error. */
static int read_more(struct ws_server *s, int64_t deadline)
{
	int64_t left = deadline - time_monotonic_ms();
	if (left < 0)
		left = 0;
	struct pollfd p = {.fd = s->fd, .events = POLLIN};
	int rc = poll(&p, 1, (int)left);
	if (rc == 0)
		return 0;
	if (rc < 0)
		return errno == EINTR ? 0 : -1;
	char chunk[65536];
	ssize_t n = read(s->fd, chunk, sizeof(chunk));
	if (n <= 0)
		return -1;
	return buf_append(&s->in, chunk, (size_t)n) == 0 ? 1 : -1;
}

static void consume(struct ws_server *s, size_t n)
{
	memmove(s->in.data, s->in.data + n, s->in.len - n);
	s->in.len -= n;
}

bool wsserver_wait_pending(struct ws_server *s, int timeout_ms)
{
	struct pollfd p = {.fd = s->listen_fd, .events = POLLIN};
	return poll(&p, 1, timeout_ms) == 1;
}

int wsserver_accept(struct ws_server *s, int timeout_ms)
{
	wsserver_drop(s);
	struct pollfd p = {.fd = s->listen_fd, .events = POLLIN};
	if (poll(&p, 1, timeout_ms) <= 0)
		return -1;
	s->fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (s->fd < 0)
		return -1;
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	char *end = NULL;
	while (!(s->in.data && (end = memmem(s->in.data, s->in.len, "\r\n\r\n", 4)))) {
		if (read_more(s, deadline) <= 0 || s->in.len > 65536)
			goto fail;
	}
	size_t head_len = (size_t)(end - s->in.data) + 4;
	char key[128] = "";
	const char *k = memmem(s->in.data, head_len, "Sec-WebSocket-Key:", 18);
	if (!k)
		k = memmem(s->in.data, head_len, "sec-websocket-key:", 18);
	if (!k)
		goto fail;
	k += 18;
	while (*k == ' ')
		k++;
	size_t kl = strcspn(k, "\r\n");
	if (kl >= sizeof(key))
		goto fail;
	memcpy(key, k, kl);
	key[kl] = '\0';
	consume(s, head_len);
	char accept[WS_ACCEPT_LEN + 1];
	ws_compute_accept(key, accept);
	char resp[256];
	int n = snprintf(resp, sizeof(resp),
	                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	                 accept);
	if (wsserver_send_raw(s, resp, (size_t)n) != 0)
		goto fail;
	return 0;
fail:
	wsserver_drop(s);
	return -1;
}

int wsserver_send_raw(struct ws_server *s, const void *bytes, size_t len)
{
	return test_write_all(s->fd, bytes, len);
}

int wsserver_send_frame(struct ws_server *s, int opcode, bool fin, const void *data, size_t len)
{
	unsigned char hdr[WS_FRAME_HEADER_MAX];
	size_t hl = ws_frame_header(hdr, opcode, fin, len, NULL);
	if (wsserver_send_raw(s, hdr, hl) != 0)
		return -1;
	return len ? wsserver_send_raw(s, data, len) : 0;
}

int wsserver_send_text(struct ws_server *s, const char *text)
{
	return wsserver_send_frame(s, WS_OP_TEXT, true, text, strlen(text));
}

/* Parses one frame from s->in: 1 with the frame, 0 incomplete, -1 broken. */
static int take_frame(struct ws_server *s, int *opcode, bool *fin, struct buf *payload)
{
	const unsigned char *p = (const unsigned char *)s->in.data;
	size_t have = s->in.len;
	if (have < 2)
		return 0;
	*fin = p[0] & 0x80;
	*opcode = p[0] & 0x0f;
	if (!(p[1] & 0x80))
		return -1; /* a client's frames are masked */
	uint64_t len = p[1] & 0x7f;
	size_t off = 2;
	if (len == 126) {
		if (have < 4)
			return 0;
		len = ((uint64_t)p[2] << 8) | p[3];
		off = 4;
	} else if (len == 127) {
		if (have < 10)
			return 0;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = (len << 8) | p[2 + i];
		off = 10;
	}
	if (len > (64u << 20))
		return -1;
	if (have < off + 4 + len)
		return 0;
	const unsigned char *mask = p + off;
	off += 4;
	size_t start = payload->len;
	if (buf_append(payload, p + off, (size_t)len) != 0)
		return -1;
	for (size_t i = 0; i < len; i++)
		payload->data[start + i] ^= (char)mask[i % 4];
	consume(s, off + (size_t)len);
	return 1;
}

int wsserver_recv(struct ws_server *s, char **msg, size_t *len, int timeout_ms)
{
	*msg = NULL;
	*len = 0;
	if (s->fd < 0)
		return WS_RECV_CLOSED;
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	struct buf message;
	buf_init(&message);
	for (;;) {
		int opcode = 0;
		bool fin = false;
		struct buf control;
		buf_init(&control);
		size_t before = message.len;
		int rc;
		/* Control frames may come between fragments: read each into its own buffer. */
		if (s->in.len >= 1 && ((unsigned char)s->in.data[0] & 0x08))
			rc = take_frame(s, &opcode, &fin, &control);
		else
			rc = take_frame(s, &opcode, &fin, &message);
		if (rc < 0) {
			buf_free(&control);
			buf_free(&message);
			return WS_RECV_ERROR;
		}
		if (rc == 0) {
			buf_free(&control);
			int r = read_more(s, deadline);
			if (r == 0) {
				buf_free(&message);
				return WS_RECV_TIMEOUT;
			}
			if (r < 0) {
				buf_free(&message);
				return WS_RECV_CLOSED;
			}
			continue;
		}
		if (opcode == WS_OP_PING) {
			s->pings++;
			if (s->auto_pong)
				wsserver_send_frame(s, WS_OP_PONG, true, control.data, control.len);
			buf_free(&control);
			continue;
		}
		if (opcode == WS_OP_PONG) {
			buf_free(&control);
			continue;
		}
		if (opcode == WS_OP_CLOSE) {
			s->close_code = control.len >= 2 ? ((unsigned char)control.data[0] << 8) |
			                                           (unsigned char)control.data[1]
			                                 : 1005;
			buf_free(&control);
			buf_free(&message);
			return WS_RECV_CLOSED;
		}
		buf_free(&control);
		(void)before;
		if (fin) {
			if (buf_append(&message, "", 1) != 0) {
				buf_free(&message);
				return WS_RECV_ERROR;
			}
			*msg = message.data;
			*len = message.len - 1;
			return WS_RECV_OK;
		}
	}
}

struct json_object *wsserver_recv_json(struct ws_server *s, int timeout_ms)
{
	char *msg;
	size_t len;
	if (wsserver_recv(s, &msg, &len, timeout_ms) != WS_RECV_OK)
		return NULL;
	struct json_object *o = json_tokener_parse(msg);
	free(msg);
	return o;
}
