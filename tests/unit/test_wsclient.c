/*
 * test_wsclient.c - the test websocket client (tests/support/wsclient.c)
 * and the test agent's messages (tests/support/testagent.c), without
 * ee-tunneld: a tiny websocket server forked inside the test plays the
 * other side, well or badly as each path asks, and reports what it saw
 * from the client as "notes" through a pipe.
 *
 * Covered: the handshake and Sec-WebSocket-Accept, refusals, round trips
 * at every length encoding boundary, fragment reassembly with interleaved
 * pings, automatic pongs, both close handshakes, abnormal closes,
 * timeouts, every protocol error a server can make, the 64 MiB cap, and
 * the test agent's register / attest / serve flow against a scripted
 * tunnel, with its attest_response judged by lib/verifier.c as a
 * development network would: its DCAP quotes are signed by a dcapgen
 * hierarchy made here, pinned as the development root with its collateral,
 * and the allowlist of org/repo@v1.0.0 is in a directory made here.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include "attest.h"
#include "base64.h"
#include "check.h"
#include "dcapgen.h"
#include "jsonutil.h"
#include "stack.h"
#include "tdx_quote.h"
#include "testagent.h"
#include "timeutil.h"
#include "util.h"
#include "verifier.h"
#include "wsclient.h"

#define T_TIMEOUT 5000
#define MIB (1024 * 1024)

/* ================= the development network both sides use ================= */

static struct dcapgen *devnet;
static char *devnet_root, *devnet_collateral;
static char devnet_dir[512]; /* the allowlist directory */

static int devnet_start(void)
{
	struct dcapgen_options o;
	dcapgen_defaults_at(&o, time(NULL));
	if (dcapgen_create(&o, &devnet) != 0 || dcapgen_root_pem(devnet, &devnet_root) != 0 ||
	    dcapgen_collateral_json(devnet, &devnet_collateral) != 0 ||
	    stack_make_dir(devnet_dir, sizeof(devnet_dir), "wsclient-allowlists") != 0 ||
	    agent_write_allowlist(devnet_dir, "org/repo", AGENT_DEFAULT_RELEASE, NULL, true) != 0)
		return -1;
	agent_set_hierarchy(devnet);
	return 0;
}

static void devnet_stop(void)
{
	agent_set_hierarchy(NULL);
	dcapgen_destroy(devnet);
	free(devnet_root);
	free(devnet_collateral);
	if (devnet_dir[0])
		stack_remove_dir(devnet_dir);
}

/* What ee-tunneld of the development network verifies with. */
static int devnet_verifier(struct verifier **out, struct ee_error *err)
{
	struct verifier_options vo;
	verifier_options_default(&vo);
	vo.dev_root_pem = strdup(devnet_root);
	vo.dev_collateral_json = strdup(devnet_collateral);
	snprintf(vo.allowlist_dir, sizeof(vo.allowlist_dir), "%s", devnet_dir);
	int rc = vo.dev_root_pem && vo.dev_collateral_json ? verifier_create(&vo, NULL, out, err)
	                                                   : ee_fail(err, 503, "out_of_memory");
	verifier_options_free(&vo);
	return rc;
}

/* ================= the server side, in a forked child ================= */

static int note_fd = -1; /* the server's end of the notes pipe */

static void srv_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void srv_note(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One short write is atomic on a pipe: notes of concurrent connections do not mix. */
	ssize_t w = write(note_fd, line, (size_t)n);
	(void)w;
}

static int srv_read_exact(int fd, void *out, size_t len)
{
	unsigned char *p = out;
	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A server frame: unmasked, first byte as given, minimal length. */
static int srv_send(int fd, int first_byte, const void *data, size_t len)
{
	unsigned char hdr[WS_FRAME_HEADER_MAX];
	size_t n = ws_frame_header(hdr, first_byte & 0x7f, first_byte & 0x80, len, NULL);
	unsigned char *frame = malloc(n + len);
	if (!frame)
		return -1;
	memcpy(frame, hdr, n);
	if (len)
		memcpy(frame + n, data, len);
	int rc = test_write_all(fd, frame, n + len);
	free(frame);
	return rc;
}

static int srv_send_text(int fd, const char *text)
{
	return srv_send(fd, 0x80 | WS_OP_TEXT, text, strlen(text));
}

static int srv_send_close(int fd, int code, const char *reason)
{
	unsigned char p[125];
	size_t rlen = strlen(reason);
	p[0] = (unsigned char)(code >> 8);
	p[1] = (unsigned char)code;
	memcpy(p + 2, reason, rlen);
	return srv_send(fd, 0x80 | WS_OP_CLOSE, p, 2 + rlen);
}

struct srv_frame {
	bool fin, masked;
	int opcode;
	unsigned char *data; /* unmasked, NUL after len */
	size_t len;
};

static int srv_read_frame(int fd, struct srv_frame *f)
{
	unsigned char h[2];
	memset(f, 0, sizeof(*f));
	if (srv_read_exact(fd, h, 2) != 0)
		return -1;
	f->fin = h[0] & 0x80;
	f->opcode = h[0] & 0x0f;
	f->masked = h[1] & 0x80;
	uint64_t len = h[1] & 0x7f;
	unsigned char ext[8];
	if (len == 126) {
		if (srv_read_exact(fd, ext, 2) != 0)
			return -1;
		len = ((uint64_t)ext[0] << 8) | ext[1];
	} else if (len == 127) {
		if (srv_read_exact(fd, ext, 8) != 0)
			return -1;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = (len << 8) | ext[i];
	}
	if (len > 128 * MIB)
		return -1;
	unsigned char mask[4] = {0};
	if (f->masked && srv_read_exact(fd, mask, 4) != 0)
		return -1;
	f->data = malloc((size_t)len + 1);
	if (!f->data || srv_read_exact(fd, f->data, (size_t)len) != 0) {
		free(f->data);
		f->data = NULL;
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		f->data[i] ^= mask[i & 3];
	f->data[len] = '\0';
	f->len = (size_t)len;
	return 0;
}

enum { SRV_MSG = 0, SRV_EOF = -1, SRV_CLOSED = -2, SRV_BAD = -3 };

/*
 * One data message from the client, answering pings and noting pongs and
 * closes on the way.  A client frame that is unmasked or has a reserved
 * opcode is noted and answered with close 1002.
 */
static int srv_read_message(int fd, int *opcode, unsigned char **data, size_t *len)
{
	struct buf msg;
	buf_init(&msg);
	bool started = false;
	for (;;) {
		struct srv_frame f;
		if (srv_read_frame(fd, &f) != 0) {
			srv_note("eof");
			buf_free(&msg);
			return SRV_EOF;
		}
		bool known = f.opcode <= WS_OP_BINARY || f.opcode == WS_OP_CLOSE ||
		             f.opcode == WS_OP_PING || f.opcode == WS_OP_PONG;
		if (!f.masked || !known) {
			srv_note(!f.masked ? "unmasked opcode %d" : "bad-opcode %d", f.opcode);
			srv_send_close(fd, 1002, "protocol error");
			free(f.data);
			buf_free(&msg);
			return SRV_BAD;
		}
		switch (f.opcode) {
		case WS_OP_PING:
			srv_send(fd, 0x80 | WS_OP_PONG, f.data, f.len);
			break;
		case WS_OP_PONG:
			srv_note("pong %s", (char *)f.data);
			break;
		case WS_OP_CLOSE:
			if (f.len >= 2)
				srv_note("close %d %s", (f.data[0] << 8) | f.data[1], (char *)f.data + 2);
			else
				srv_note("close empty");
			srv_send(fd, 0x80 | WS_OP_CLOSE, f.data, f.len >= 2 ? 2 : 0);
			free(f.data);
			buf_free(&msg);
			return SRV_CLOSED;
		default:
			if (!started)
				*opcode = f.opcode;
			started = true;
			buf_append(&msg, f.data, f.len);
			if (f.fin) {
				free(f.data);
				*data = (unsigned char *)msg.data;
				*len = msg.len;
				if (!*data)
					*data = (unsigned char *)strdup("");
				return SRV_MSG;
			}
		}
		free(f.data);
	}
}

static void srv_echo(int fd)
{
	for (;;) {
		int opcode = 0;
		unsigned char *data;
		size_t len;
		if (srv_read_message(fd, &opcode, &data, &len) != SRV_MSG)
			return;
		srv_send(fd, 0x80 | opcode, data, len);
		free(data);
	}
}

/* Sends a frame's bytes one at a time for the first few, then the rest. */
static void srv_trickle(int fd, int first_byte, const void *data, size_t len)
{
	unsigned char hdr[WS_FRAME_HEADER_MAX];
	size_t hlen = ws_frame_header(hdr, first_byte & 0x7f, true, len, NULL);
	unsigned char *frame = malloc(hlen + len);
	if (!frame)
		return;
	memcpy(frame, hdr, hlen);
	memcpy(frame + hlen, data, len);
	size_t slow = hlen + 4 < hlen + len ? hlen + 4 : hlen + len;
	for (size_t i = 0; i < slow; i++) {
		test_write_all(fd, frame + i, 1);
		usleep(2000);
	}
	test_write_all(fd, frame + slow, hlen + len - slow);
	free(frame);
}

static struct json_object *srv_read_json(int fd)
{
	int opcode;
	unsigned char *data;
	size_t len;
	if (srv_read_message(fd, &opcode, &data, &len) != SRV_MSG)
		return NULL;
	struct json_object *o = json_parse_value((const char *)data, len);
	free(data);
	return o;
}

static const char *srv_str(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return "";
	return json_object_get_string(v);
}

static void srv_send_json(int fd, struct json_object *o)
{
	size_t len;
	const char *text = json_text(o, &len);
	srv_send(fd, 0x80 | WS_OP_TEXT, text, len);
	json_object_put(o);
}

static void srv_status(int fd, const char *state, const char *reason)
{
	struct json_object *o = json_object_new_object();
	json_put_string(o, "type", "status");
	json_put_string(o, "state", state);
	json_put_string(o, "reason", reason);
	srv_send_json(fd, o);
}

static void srv_attest_request(int fd, char nonce[33], const char *reason)
{
	util_random_hex(nonce, 16);
	struct json_object *o = json_object_new_object();
	json_put_string(o, "type", "attest_request");
	json_put_string(o, "nonce", nonce);
	json_put_int(o, "deadline_s", 30);
	json_put_string(o, "reason", reason);
	srv_send_json(fd, o);
}

static void srv_proxy_request(int fd, const char *id, const char *method, const char *path,
                              const char *body, size_t body_len)
{
	char b64[256];
	base64_encode((const unsigned char *)body, body_len, b64);
	struct json_object *o = json_object_new_object();
	struct json_object *h = json_object_new_object();
	json_put_string(h, "Accept", "text/plain");
	json_put_string(o, "type", "proxy_request");
	json_put_string(o, "request_id", id);
	json_put_string(o, "method", method);
	json_put_string(o, "path", path);
	json_object_object_add(o, "headers", h);
	json_put_string(o, "body_b64", b64);
	srv_send_json(fd, o);
}

/* Reads an attest_response and judges it as ee-tunneld would; true when attested. */
static bool srv_judge_attestation(int fd, const char *nonce)
{
	struct json_object *m = srv_read_json(fd);
	if (!m || strcmp(srv_str(m, "type"), "attest_response") != 0) {
		srv_note("expected attest_response");
		json_object_put(m);
		return false;
	}
	if (strcmp(srv_str(m, "nonce"), nonce) != 0) {
		srv_status(fd, "invalid", "nonce_mismatch");
		json_object_put(m);
		return false;
	}
	struct verifier *v;
	struct ee_error err;
	struct attest_verdict verdict = {.verified = false, .reason = "no_verifier"};
	struct json_object *meas = NULL;
	json_object_object_get_ex(m, "measurements", &meas);
	struct attest_evidence ev = {
		.nonce_hex = nonce,
		.quote_b64 = srv_str(m, "quote"),
		.quote_b64_len = strlen(srv_str(m, "quote")),
		.report_data_hex = srv_str(m, "report_data"),
		.measurements = meas,
		.network = "sandbox-1",
		.repo = "org/repo",
		.release_tag = "v1.0.0",
	};
	if (devnet_verifier(&v, &err) == 0) {
		verifier_verify(v, &ev, &verdict);
		verifier_destroy(v);
	}
	json_object_put(m);
	if (!verdict.verified) {
		srv_status(fd, "invalid", verdict.reason);
		return false;
	}
	return true;
}

/* Notes one proxy_response as "response <id> <status> <X-Echo-Path> <body>". */
static void srv_note_response(int fd)
{
	struct json_object *m = srv_read_json(fd);
	if (!m || strcmp(srv_str(m, "type"), "proxy_response") != 0) {
		srv_note("expected proxy_response");
		json_object_put(m);
		return;
	}
	struct json_object *st = NULL, *h = NULL;
	json_object_object_get_ex(m, "status", &st);
	json_object_object_get_ex(m, "headers", &h);
	const char *b64 = srv_str(m, "body_b64");
	unsigned char body[256];
	size_t blen = 0;
	if (strlen(b64) > 300 || base64_decode(b64, strlen(b64), body, &blen) != 0)
		blen = 0;
	body[blen] = '\0';
	srv_note("response %s %d %s %s", srv_str(m, "request_id"), json_object_get_int(st),
	         srv_str(h, "X-Echo-Path"), (char *)body);
	json_object_put(m);
}

/*
 * A scripted tunnel: register, attest, a request, a periodic attestation
 * with a request overtaking its verdict, a health message, then
 * status invalid and close.
 */
static void srv_tunnel(int fd)
{
	struct json_object *m = srv_read_json(fd);
	if (!m || strcmp(srv_str(m, "type"), "register") != 0) {
		srv_note("expected register");
		json_object_put(m);
		return;
	}
	srv_note("register %s %s %s %s %s", srv_str(m, "app_name"), srv_str(m, "repo"),
	         srv_str(m, "release_tag"), srv_str(m, "network"), srv_str(m, "agent_id"));
	json_object_put(m);
	char nonce[33];
	srv_attest_request(fd, nonce, "register");
	if (!srv_judge_attestation(fd, nonce)) {
		srv_send_close(fd, 1008, "");
		return;
	}
	srv_status(fd, "ok", "attested");
	srv_proxy_request(fd, "r1", "GET", "/hello", "", 0);
	srv_note_response(fd);
	srv_attest_request(fd, nonce, "periodic");
	if (!srv_judge_attestation(fd, nonce)) {
		srv_send_close(fd, 1008, "");
		return;
	}
	srv_proxy_request(fd, "r2", "POST", "/data", "payload", 7);
	srv_status(fd, "ok", "attested");
	srv_note_response(fd);
	m = srv_read_json(fd);
	srv_note("%s %s", srv_str(m, "type"), srv_str(m, "status"));
	json_object_put(m);
	srv_status(fd, "invalid", "unknown_message");
	srv_send_close(fd, 1008, "");
	srv_read_message(fd, &(int){0}, &(unsigned char *){NULL}, &(size_t){0});
}

/* Attests, then three requests in flight at once; notes the order of the answers. */
static void srv_tunnel_multi(int fd)
{
	struct json_object *m = srv_read_json(fd);
	json_object_put(m);
	char nonce[33];
	srv_attest_request(fd, nonce, "register");
	if (!srv_judge_attestation(fd, nonce)) {
		srv_send_close(fd, 1008, "");
		return;
	}
	srv_status(fd, "ok", "attested");
	srv_proxy_request(fd, "r1", "GET", "/1", "", 0);
	srv_proxy_request(fd, "r2", "GET", "/2", "", 0);
	srv_proxy_request(fd, "r3", "GET", "/3", "", 0);
	for (int i = 0; i < 3; i++)
		srv_note_response(fd);
	srv_echo(fd);
}

/* Refuses every registration as a bound app name. */
static void srv_tunnel_taken(int fd)
{
	struct json_object *m = srv_read_json(fd);
	json_object_put(m);
	srv_status(fd, "invalid", "app_name_taken");
	srv_send_close(fd, 1008, "");
	srv_echo(fd);
}

static void srv_handshake_and_serve(int fd)
{
	char req[8192];
	size_t n = 0;
	while (n < sizeof(req) - 1) {
		ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
		if (r <= 0)
			return;
		n += (size_t)r;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	char path[256] = "";
	if (sscanf(req, "GET %255s HTTP/1.1", path) != 1)
		return;
	char key[128] = "", version[32] = "", upgrade[64] = "", connection[128] = "";
	char xtest[128] = "", host[128] = "";
	for (char *line = strstr(req, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
		sscanf(line + 2, "Sec-WebSocket-Key: %127[^\r]", key);
		sscanf(line + 2, "Sec-WebSocket-Version: %31[^\r]", version);
		sscanf(line + 2, "Upgrade: %63[^\r]", upgrade);
		sscanf(line + 2, "Connection: %127[^\r]", connection);
		sscanf(line + 2, "X-Test: %127[^\r]", xtest);
		sscanf(line + 2, "Host: %127[^\r]", host);
	}
	unsigned char raw[128];
	size_t raw_len = 0;
	const char *bad = NULL;
	if (base64_decode(key, strlen(key), raw, &raw_len) != 0 || raw_len != 16)
		bad = "bad key";
	else if (strcmp(version, "13") != 0)
		bad = "bad version";
	else if (strcasecmp(upgrade, "websocket") != 0 || strcasecmp(connection, "Upgrade") != 0)
		bad = "bad upgrade";
	char resp[1024];
	if (bad || strcmp(path, "/refuse") == 0) {
		const char *body = bad ? bad : "{\"error\":\"forbidden_test\"}";
		snprintf(resp, sizeof(resp), "HTTP/1.1 %s\r\nContent-Length: %zu\r\n\r\n%s",
		         bad ? "400 Bad Request" : "403 Forbidden", strlen(body), body);
		test_write_all(fd, resp, strlen(resp));
		return;
	}
	if (strcmp(path, "/refuse-nolen") == 0) {
		const char *r = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nno length";
		test_write_all(fd, r, strlen(r));
		return;
	}
	char accept[WS_ACCEPT_LEN + 1];
	ws_compute_accept(key, accept);
	if (strcmp(path, "/badaccept") == 0)
		accept[3] = accept[3] == 'A' ? 'B' : 'A';
	const char *extra = "";
	if (strcmp(path, "/extension") == 0)
		extra = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
	if (strcmp(path, "/noaccept") == 0)
		snprintf(resp, sizeof(resp),
		         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		         "Connection: Upgrade\r\n\r\n");
	else
		snprintf(resp, sizeof(resp),
		         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		         "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
		         accept, extra);
	if (strcmp(path, "/early") == 0) {
		/* The first frame in the same segment as the 101. */
		size_t rl = strlen(resp);
		unsigned char hdr[WS_FRAME_HEADER_MAX];
		size_t hl = ws_frame_header(hdr, WS_OP_TEXT, true, 5, NULL);
		memcpy(resp + rl, hdr, hl);
		memcpy(resp + rl + hl, "early", 5);
		test_write_all(fd, resp, rl + hl + 5);
		srv_echo(fd);
		return;
	}
	test_write_all(fd, resp, strlen(resp));

	if (strcmp(path, "/echo") == 0 || strcmp(path, "/badaccept") == 0 ||
	    strcmp(path, "/noaccept") == 0 || strcmp(path, "/extension") == 0) {
		srv_echo(fd);
	} else if (strcmp(path, "/headers") == 0) {
		char text[300];
		snprintf(text, sizeof(text), "X-Test=%s;Host=%s", xtest, host);
		srv_send_text(fd, text);
		srv_echo(fd);
	} else if (strcmp(path, "/ping") == 0) {
		srv_send(fd, 0x80 | WS_OP_PING, "hello-ping", 10);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		struct srv_frame f;
		if (poll(&p, 1, 500) != 1) {
			srv_send_text(fd, "no-pong");
		} else if (srv_read_frame(fd, &f) == 0) {
			char text[200];
			snprintf(text, sizeof(text), "%s:%s:%s",
			         f.opcode == WS_OP_PONG ? "pong" : "not-pong", (char *)f.data,
			         f.masked ? "masked" : "unmasked");
			free(f.data);
			srv_send_text(fd, text);
		}
		srv_echo(fd);
	} else if (strcmp(path, "/fragments") == 0) {
		srv_send(fd, WS_OP_TEXT, "frag", 4);
		srv_send(fd, 0x80 | WS_OP_PING, "mid-frag", 8);
		srv_send(fd, WS_OP_CONTINUATION, "ment", 4);
		srv_send(fd, WS_OP_CONTINUATION, "", 0);
		srv_send(fd, 0x80 | WS_OP_CONTINUATION, "ed", 2);
		unsigned char bin[256];
		for (int i = 0; i < 256; i++)
			bin[i] = (unsigned char)i;
		srv_send(fd, WS_OP_BINARY, bin, 100);
		srv_send(fd, 0x80 | WS_OP_CONTINUATION, bin + 100, 156);
		srv_echo(fd);
	} else if (strcmp(path, "/close") == 0 || strcmp(path, "/close-empty") == 0) {
		if (strcmp(path, "/close") == 0)
			srv_send_close(fd, 4001, "bye");
		else
			srv_send(fd, 0x80 | WS_OP_CLOSE, "", 0);
		struct srv_frame f;
		if (srv_read_frame(fd, &f) == 0) {
			if (f.len >= 2)
				srv_note("close-echo %d %s opcode %d", (f.data[0] << 8) | f.data[1],
				         f.masked ? "masked" : "unmasked", f.opcode);
			else
				srv_note("close-echo empty %s opcode %d", f.masked ? "masked" : "unmasked",
				         f.opcode);
			free(f.data);
		}
	} else if (strcmp(path, "/eof") == 0) {
		return;
	} else if (strcmp(path, "/silent") == 0) {
		char sink[256];
		while (recv(fd, sink, sizeof(sink), 0) > 0)
			;
		srv_note("silent-eof");
	} else if (strcmp(path, "/masked") == 0) {
		const unsigned char frame[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
		test_write_all(fd, frame, sizeof(frame));
		srv_echo(fd);
	} else if (strcmp(path, "/rsv") == 0) {
		srv_send(fd, 0x80 | WS_RSV1 | WS_OP_TEXT, "hi", 2);
		srv_echo(fd);
	} else if (strcmp(path, "/nonminimal16") == 0) {
		const unsigned char frame[] = {0x81, 126, 0, 2, 'h', 'i'};
		test_write_all(fd, frame, sizeof(frame));
		srv_echo(fd);
	} else if (strcmp(path, "/nonminimal64") == 0) {
		const unsigned char frame[] = {0x81, 127, 0, 0, 0, 0, 0, 0, 0, 2, 'h', 'i'};
		test_write_all(fd, frame, sizeof(frame));
		srv_echo(fd);
	} else if (strcmp(path, "/topbit") == 0) {
		const unsigned char frame[] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 2, 'h', 'i'};
		test_write_all(fd, frame, sizeof(frame));
		srv_echo(fd);
	} else if (strcmp(path, "/badop") == 0) {
		srv_send(fd, 0x80 | 0x3, "hi", 2);
		srv_echo(fd);
	} else if (strcmp(path, "/badctlop") == 0) {
		srv_send(fd, 0x80 | 0xb, "hi", 2);
		srv_echo(fd);
	} else if (strcmp(path, "/bigctl") == 0) {
		char big[126];
		memset(big, 'p', sizeof(big));
		srv_send(fd, 0x80 | WS_OP_PING, big, sizeof(big));
		srv_echo(fd);
	} else if (strcmp(path, "/fragctl") == 0) {
		srv_send(fd, WS_OP_PING, "hi", 2);
		srv_echo(fd);
	} else if (strcmp(path, "/badutf8") == 0) {
		srv_send(fd, 0x80 | WS_OP_TEXT, "ok\xff", 3);
		srv_echo(fd);
	} else if (strcmp(path, "/splitutf8") == 0) {
		/* One character split across two fragments is fine. */
		srv_send(fd, WS_OP_TEXT, "caf\xc3", 4);
		srv_send(fd, 0x80 | WS_OP_CONTINUATION, "\xa9", 1);
		srv_echo(fd);
	} else if (strcmp(path, "/orphan") == 0) {
		srv_send(fd, 0x80 | WS_OP_CONTINUATION, "hi", 2);
		srv_echo(fd);
	} else if (strcmp(path, "/interleaved") == 0) {
		srv_send(fd, WS_OP_TEXT, "a", 1);
		srv_send(fd, 0x80 | WS_OP_TEXT, "b", 1);
		srv_echo(fd);
	} else if (strcmp(path, "/badclose") == 0) {
		srv_send_close(fd, 1005, "");
		srv_echo(fd);
	} else if (strcmp(path, "/shortclose") == 0) {
		srv_send(fd, 0x80 | WS_OP_CLOSE, "\x03", 1);
		srv_echo(fd);
	} else if (strcmp(path, "/huge") == 0) {
		unsigned char hdr[WS_FRAME_HEADER_MAX];
		size_t hl = ws_frame_header(hdr, WS_OP_BINARY, true, (uint64_t)WS_MAX_MESSAGE + 1, NULL);
		test_write_all(fd, hdr, hl);
		srv_echo(fd);
	} else if (strcmp(path, "/huge-frag") == 0) {
		srv_send(fd, WS_OP_BINARY, "0123456789", 10);
		unsigned char hdr[WS_FRAME_HEADER_MAX];
		size_t hl = ws_frame_header(hdr, WS_OP_CONTINUATION, true,
		                            (uint64_t)WS_MAX_MESSAGE - 9, NULL);
		test_write_all(fd, hdr, hl);
		srv_echo(fd);
	} else if (strcmp(path, "/max") == 0) {
		unsigned char *big = malloc(WS_MAX_MESSAGE);
		if (big) {
			memset(big, 'm', WS_MAX_MESSAGE);
			big[0] = 'M';
			big[WS_MAX_MESSAGE - 1] = 'Z';
			srv_send(fd, 0x80 | WS_OP_BINARY, big, WS_MAX_MESSAGE);
			free(big);
		}
		srv_echo(fd);
	} else if (strcmp(path, "/trickle") == 0) {
		char *big = malloc(70000);
		if (big) {
			memset(big, 't', 70000);
			srv_trickle(fd, WS_OP_TEXT, big, 70000);
			srv_trickle(fd, WS_OP_TEXT, big, 300);
			srv_trickle(fd, WS_OP_BINARY, big, 5);
			free(big);
		}
		srv_echo(fd);
	} else if (strcmp(path, "/stall") == 0) {
		sleep(3); /* reads nothing: the client's sends back up */
	} else if (strcmp(path, "/v1/tunnel") == 0) {
		srv_tunnel(fd);
	} else if (strcmp(path, "/v1/tunnel-multi") == 0) {
		srv_tunnel_multi(fd);
	} else if (strcmp(path, "/v1/tunnel-taken") == 0) {
		srv_tunnel_taken(fd);
	} else {
		srv_send_close(fd, 1011, "unknown path");
	}
}

static void srv_main(int listen_fd)
{
	signal(SIGCHLD, SIG_IGN); /* connection handlers reap themselves */
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(listen_fd);
			struct timeval tv = {.tv_sec = 10};
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			srv_handshake_and_serve(fd);
			close(fd);
			_exit(0);
		}
		close(fd);
	}
}

/* ================= the test side ================= */

static pid_t srv_pid = -1;
static int srv_port;
static int notes_rd = -1;
static char notes_buf[65536];
static size_t notes_len;

static int srv_start(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t slen = sizeof(sa);
	int pipefd[2];
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &slen) != 0 || pipe(pipefd) != 0)
		return -1;
	srv_port = ntohs(sa.sin_port);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setpgid(0, 0);
		close(pipefd[0]);
		note_fd = pipefd[1];
		srv_main(fd);
		_exit(0);
	}
	setpgid(pid, pid);
	srv_pid = pid;
	close(fd);
	close(pipefd[1]);
	notes_rd = pipefd[0];
	return 0;
}

static void srv_stop(void)
{
	if (srv_pid > 0) {
		kill(-srv_pid, SIGTERM);
		waitpid(srv_pid, NULL, 0);
	}
	if (notes_rd >= 0)
		close(notes_rd);
}

/* Waits for a note starting with prefix; earlier notes are dropped.  The line, or NULL. */
static const char *srv_wait_note(const char *prefix, int timeout_ms)
{
	static char line[1024];
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	for (;;) {
		char *nl;
		while ((nl = memchr(notes_buf, '\n', notes_len))) {
			size_t n = (size_t)(nl - notes_buf);
			if (n >= sizeof(line))
				n = sizeof(line) - 1;
			memcpy(line, notes_buf, n);
			line[n] = '\0';
			/* Through a copy: valgrind takes a fortified memmove for an overlapping memcpy. */
			static char rest[sizeof(notes_buf)];
			size_t used = (size_t)(nl - notes_buf) + 1;
			notes_len -= used;
			memcpy(rest, notes_buf + used, notes_len);
			memcpy(notes_buf, rest, notes_len);
			if (strncmp(line, prefix, strlen(prefix)) == 0)
				return line;
		}
		int64_t left = deadline - time_monotonic_ms();
		struct pollfd p = {.fd = notes_rd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return NULL;
		ssize_t r = read(notes_rd, notes_buf + notes_len, sizeof(notes_buf) - notes_len);
		if (r <= 0)
			return NULL;
		notes_len += (size_t)r;
	}
}

static struct ws_client *open_path(const char *path)
{
	char why[512];
	struct ws_client *c = ws_connect("127.0.0.1", srv_port, path, NULL, T_TIMEOUT, why, sizeof(why));
	if (!c)
		test_fail(__FILE__, __LINE__, "ws_connect %s: %s", path, why);
	return c;
}

/* Receives one message and checks it is text equal to want. */
static void expect_text(struct ws_client *c, const char *want)
{
	char *data = NULL;
	size_t len = 0;
	int opcode = -1;
	int rc = ws_recv_message(c, &data, &len, &opcode, T_TIMEOUT);
	CHECK_INT(rc, WS_RECV_OK);
	CHECK_INT(opcode, WS_OP_TEXT);
	if (rc == WS_RECV_OK)
		CHECK_STR(data, want);
	else
		fprintf(stderr, "  ws error: %s\n", ws_last_error(c));
	free(data);
}

static void test_pure_functions(void)
{
	test_case("ws_compute_accept: RFC 6455 section 1.3 example");
	char accept[WS_ACCEPT_LEN + 1];
	ws_compute_accept("dGhlIHNhbXBsZSBub25jZQ==", accept);
	CHECK_STR(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

	test_case("ws_frame_header: length encodings at each boundary");
	unsigned char h[WS_FRAME_HEADER_MAX];
	const unsigned char mask[4] = {1, 2, 3, 4};
	CHECK_INT(ws_frame_header(h, WS_OP_TEXT, true, 0, NULL), 2);
	CHECK(h[0] == 0x81 && h[1] == 0);
	CHECK_INT(ws_frame_header(h, WS_OP_TEXT, true, 125, NULL), 2);
	CHECK(h[1] == 125);
	CHECK_INT(ws_frame_header(h, WS_OP_BINARY, false, 126, NULL), 4);
	CHECK(h[0] == 0x02 && h[1] == 126 && h[2] == 0 && h[3] == 126);
	CHECK_INT(ws_frame_header(h, WS_OP_BINARY, true, 65535, NULL), 4);
	CHECK(h[1] == 126 && h[2] == 0xff && h[3] == 0xff);
	CHECK_INT(ws_frame_header(h, WS_OP_BINARY, true, 65536, NULL), 10);
	CHECK(h[1] == 127 && h[2] == 0 && h[7] == 1 && h[8] == 0 && h[9] == 0);
	CHECK_INT(ws_frame_header(h, WS_OP_PING, true, 5, mask), 6);
	CHECK(h[0] == 0x89 && h[1] == (0x80 | 5) && memcmp(h + 2, mask, 4) == 0);
	CHECK_INT(ws_frame_header(h, WS_OP_TEXT | WS_RSV1 | WS_RSV3, true, 70000, mask), 14);
	CHECK(h[0] == (0x80 | 0x40 | 0x10 | 0x1) && h[1] == (0x80 | 127));

	test_case("ws_utf8_valid: accepts UTF-8, refuses overlongs, surrogates, truncation");
	CHECK(ws_utf8_valid((const unsigned char *)"", 0));
	CHECK(ws_utf8_valid((const unsigned char *)"plain", 5));
	CHECK(ws_utf8_valid((const unsigned char *)"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
	CHECK(ws_utf8_valid((const unsigned char *)"\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
	CHECK(!ws_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
	CHECK(!ws_utf8_valid((const unsigned char *)"\xc0\xaf", 2));         /* overlong '/' */
	CHECK(!ws_utf8_valid((const unsigned char *)"\xe0\x80\xaf", 3));     /* overlong */
	CHECK(!ws_utf8_valid((const unsigned char *)"\xed\xa0\x80", 3));     /* surrogate */
	CHECK(!ws_utf8_valid((const unsigned char *)"\xc3", 1));             /* truncated */
	CHECK(!ws_utf8_valid((const unsigned char *)"\xff", 1));
	CHECK(!ws_utf8_valid((const unsigned char *)"\x80", 1));
}

static void test_handshake(void)
{
	char why[512];
	test_case("ws_connect: handshake with a correct server");
	struct ws_client *c = open_path("/echo");
	if (c) {
		CHECK(ws_fd(c) >= 0);
		CHECK(ws_is_open(c));
		CHECK(strncmp(ws_response_headers(c), "HTTP/1.1 101", 12) == 0);
		CHECK_INT(ws_close_code(c), 0);
		CHECK(ws_send_text(c, "hello", 5) == 0);
		expect_text(c, "hello");
		ws_close(c, 1000);
	}

	test_case("ws_connect: extra headers and Host reach the server");
	const char *const extra[] = {"X-Test: hello world", NULL};
	c = ws_connect("127.0.0.1", srv_port, "/headers", extra, T_TIMEOUT, why, sizeof(why));
	CHECK(c != NULL, "%s", why);
	if (c) {
		char want[128];
		snprintf(want, sizeof(want), "X-Test=hello world;Host=127.0.0.1:%d", srv_port);
		expect_text(c, want);
		ws_close(c, 1000);
	}

	test_case("ws_connect: \"localhost\" resolves");
	c = ws_connect("localhost", srv_port, "/echo", NULL, T_TIMEOUT, why, sizeof(why));
	/* localhost may resolve to ::1 first; the IPv4 address must still be tried. */
	CHECK(c != NULL, "%s", why);
	ws_close(c, 1000);

	test_case("ws_connect: a refusal returns NULL with the status and body");
	c = ws_connect("127.0.0.1", srv_port, "/refuse", NULL, T_TIMEOUT, why, sizeof(why));
	CHECK(c == NULL);
	CHECK_STR(why, "HTTP 403: {\"error\":\"forbidden_test\"}");

	test_case("ws_connect: a refusal without Content-Length: body read to the end");
	int64_t t0 = time_monotonic_ms();
	c = ws_connect("127.0.0.1", srv_port, "/refuse-nolen", NULL, T_TIMEOUT, why, sizeof(why));
	CHECK(c == NULL);
	CHECK_STR(why, "HTTP 503: no length");
	CHECK(time_monotonic_ms() - t0 < 2000);

	test_case("ws_connect: a wrong Sec-WebSocket-Accept is refused");
	c = ws_connect("127.0.0.1", srv_port, "/badaccept", NULL, T_TIMEOUT, why, sizeof(why));
	CHECK(c == NULL);
	CHECK(strstr(why, "Sec-WebSocket-Accept") != NULL, "why: %s", why);
	ws_abort(c);

	test_case("ws_connect_ex: skip_accept_check takes a wrong accept");
	struct ws_connect_options skip = {.skip_accept_check = true};
	c = ws_connect_ex("127.0.0.1", srv_port, "/badaccept", NULL, &skip, T_TIMEOUT, why,
	                  sizeof(why));
	CHECK(c != NULL, "%s", why);
	ws_close(c, 1000);

	test_case("ws_connect: a 101 without Sec-WebSocket-Accept is refused");
	c = ws_connect("127.0.0.1", srv_port, "/noaccept", NULL, T_TIMEOUT, why, sizeof(why));
	CHECK(c == NULL);
	CHECK(strstr(why, "without Sec-WebSocket-Accept") != NULL, "why: %s", why);

	test_case("ws_connect: an extension the client did not offer is refused");
	c = ws_connect("127.0.0.1", srv_port, "/extension", NULL, T_TIMEOUT, why, sizeof(why));
	CHECK(c == NULL);
	CHECK(strstr(why, "extension") != NULL, "why: %s", why);

	test_case("ws_connect_ex: without Sec-WebSocket-Key or Version the server says 400");
	struct ws_connect_options nokey = {.key = ""};
	c = ws_connect_ex("127.0.0.1", srv_port, "/echo", NULL, &nokey, T_TIMEOUT, why, sizeof(why));
	CHECK(c == NULL);
	CHECK_STR(why, "HTTP 400: bad key");
	struct ws_connect_options badkey = {.key = "c2hvcnQ="};
	c = ws_connect_ex("127.0.0.1", srv_port, "/echo", NULL, &badkey, T_TIMEOUT, why, sizeof(why));
	CHECK(c == NULL);
	CHECK_STR(why, "HTTP 400: bad key");
	struct ws_connect_options nover = {.version = ""};
	c = ws_connect_ex("127.0.0.1", srv_port, "/echo", NULL, &nover, T_TIMEOUT, why, sizeof(why));
	CHECK(c == NULL);
	CHECK_STR(why, "HTTP 400: bad version");
	struct ws_connect_options v8 = {.version = "8"};
	c = ws_connect_ex("127.0.0.1", srv_port, "/echo", NULL, &v8, T_TIMEOUT, why, sizeof(why));
	CHECK(c == NULL);
	CHECK_STR(why, "HTTP 400: bad version");

	test_case("ws_connect: nothing listening");
	int port = stack_free_port();
	c = ws_connect("127.0.0.1", port, "/", NULL, T_TIMEOUT, why, sizeof(why));
	CHECK(c == NULL);
	CHECK(strncmp(why, "connect: ", 9) == 0 && strstr(why, "refused"), "why: %s", why);

	test_case("ws_connect: a frame in the same segment as the 101 is kept");
	c = open_path("/early");
	if (c) {
		expect_text(c, "early");
		ws_close(c, 1000);
	}
}

static void test_round_trips(void)
{
	static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 65537, MIB};
	struct ws_client *c = open_path("/echo");
	if (!c)
		return;
	unsigned char *out = malloc(MIB);
	for (size_t i = 0; i < MIB; i++)
		out[i] = (unsigned char)(i * 7 + (i >> 11));
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		for (int binary = 0; binary < 2; binary++) {
			size_t n = sizes[k];
			test_case("round trip: %s message of %zu bytes", binary ? "binary" : "text", n);
			unsigned char *msg = out;
			char *text = NULL;
			if (!binary) {
				/* Text must be UTF-8: printable ASCII. */
				text = malloc(n + 1);
				for (size_t i = 0; i < n; i++)
					text[i] = (char)(' ' + (i * 13) % 95);
				msg = (unsigned char *)text;
			}
			int rc = binary ? ws_send_binary(c, msg, n) : ws_send_text(c, (char *)msg, n);
			CHECK_INT(rc, 0);
			char *data = NULL;
			size_t len = 0;
			int opcode = -1;
			CHECK_INT(ws_recv_message(c, &data, &len, &opcode, T_TIMEOUT), WS_RECV_OK);
			CHECK_INT(opcode, binary ? WS_OP_BINARY : WS_OP_TEXT);
			CHECK_INT(len, n);
			CHECK(data && memcmp(data, msg, n) == 0 && data[n] == '\0');
			free(data);
			free(text);
		}
	}
	free(out);
	ws_close(c, 1000);
}

static void test_fragments_and_control(void)
{
	test_case("recv: a fragmented text message with a ping and an empty fragment inside");
	struct ws_client *c = open_path("/fragments");
	if (c) {
		expect_text(c, "fragmented");
		char *data = NULL;
		size_t len = 0;
		int opcode = -1;
		CHECK_INT(ws_recv_message(c, &data, &len, &opcode, T_TIMEOUT), WS_RECV_OK);
		CHECK_INT(opcode, WS_OP_BINARY);
		CHECK_INT(len, 256);
		bool same = data != NULL;
		for (size_t i = 0; same && i < 256; i++)
			same = (unsigned char)data[i] == i;
		CHECK(same, "binary fragments reassembled in order");
		free(data);
		const char *note = srv_wait_note("pong ", T_TIMEOUT);
		CHECK_STR(note, "pong mid-frag");
		ws_close(c, 1000);
	}

	test_case("recv: a character split across fragments is valid UTF-8");
	c = open_path("/splitutf8");
	if (c) {
		expect_text(c, "caf\xc3\xa9");
		ws_close(c, 1000);
	}

	test_case("recv: a ping is answered with a masked pong of the same payload");
	c = open_path("/ping");
	if (c) {
		expect_text(c, "pong:hello-ping:masked");
		ws_close(c, 1000);
	}

	test_case("recv: with auto pong off, a ping goes unanswered");
	c = open_path("/ping");
	if (c) {
		ws_set_auto_pong(c, false);
		expect_text(c, "no-pong");
		ws_close(c, 1000);
	}

	test_case("send: a ping from the client is answered; the pong is counted");
	c = open_path("/echo");
	if (c) {
		CHECK_INT(ws_send_frame(c, WS_OP_PING, true, true, "abc", 3), 0);
		CHECK_INT(ws_send_text(c, "after", 5), 0);
		expect_text(c, "after");
		CHECK_INT(ws_pongs_received(c), 1);
		CHECK_STR(ws_last_pong(c), "abc");
		ws_close(c, 1000);
	}

	test_case("send: a fragmented message with a ping between fragments");
	c = open_path("/echo");
	if (c) {
		CHECK_INT(ws_send_frame(c, WS_OP_TEXT, false, true, "hel", 3), 0);
		CHECK_INT(ws_send_frame(c, WS_OP_CONTINUATION, false, true, "lo ", 3), 0);
		CHECK_INT(ws_send_frame(c, WS_OP_PING, true, true, "p", 1), 0);
		CHECK_INT(ws_send_frame(c, WS_OP_CONTINUATION, true, true, "world", 5), 0);
		expect_text(c, "hello world");
		CHECK_INT(ws_pongs_received(c), 1);
		ws_close(c, 1000);
	}

	test_case("send: an unmasked frame is sent unmasked (the server closes with 1002)");
	c = open_path("/echo");
	if (c) {
		CHECK_INT(ws_send_frame(c, WS_OP_TEXT, true, false, "x", 1), 0);
		CHECK_STR(srv_wait_note("unmasked", T_TIMEOUT), "unmasked opcode 1");
		char *data = NULL;
		size_t len;
		CHECK_INT(ws_recv_message(c, &data, &len, NULL, T_TIMEOUT), WS_RECV_CLOSED);
		CHECK_INT(ws_close_code(c), 1002);
		CHECK_STR(ws_close_reason(c), "protocol error");
		ws_close(c, 1000);
	}

	test_case("send_raw: garbage on the wire reaches the server as is");
	c = open_path("/echo");
	if (c) {
		const unsigned char garbage[] = {0xff, 0x80, 0, 0, 0, 0};
		CHECK_INT(ws_send_raw(c, garbage, sizeof(garbage)), 0);
		CHECK_STR(srv_wait_note("bad-opcode", T_TIMEOUT), "bad-opcode 15");
		char *data = NULL;
		size_t len;
		CHECK_INT(ws_recv_message(c, &data, &len, NULL, T_TIMEOUT), WS_RECV_CLOSED);
		CHECK_INT(ws_close_code(c), 1002);
		ws_abort(c);
	}

	test_case("send: reserved opcode and RSV bits as asked");
	c = open_path("/echo");
	if (c) {
		CHECK_INT(ws_send_frame(c, 0x3 | WS_RSV2, true, true, "r", 1), 0);
		CHECK_STR(srv_wait_note("bad-opcode", T_TIMEOUT), "bad-opcode 3");
		ws_abort(c);
	}

	test_case("recv: messages trickled a byte at a time across header boundaries");
	c = open_path("/trickle");
	if (c) {
		size_t want[] = {70000, 300, 5};
		for (int i = 0; i < 3; i++) {
			char *data = NULL;
			size_t len = 0;
			int opcode = -1;
			CHECK_INT(ws_recv_message(c, &data, &len, &opcode, T_TIMEOUT), WS_RECV_OK);
			CHECK_INT(len, want[i]);
			CHECK_INT(opcode, i == 2 ? WS_OP_BINARY : WS_OP_TEXT);
			CHECK(data && data[0] == 't' && data[len - 1] == 't');
			free(data);
		}
		ws_close(c, 1000);
	}
}

static void test_closing(void)
{
	char *data = NULL;
	size_t len;

	test_case("close from the server: code and reason reported, echoed masked");
	struct ws_client *c = open_path("/close");
	if (c) {
		CHECK_INT(ws_recv_message(c, &data, &len, NULL, T_TIMEOUT), WS_RECV_CLOSED);
		CHECK(data == NULL);
		CHECK_INT(ws_close_code(c), 4001);
		CHECK_STR(ws_close_reason(c), "bye");
		CHECK(!ws_is_open(c));
		CHECK_STR(srv_wait_note("close-echo", T_TIMEOUT), "close-echo 4001 masked opcode 8");
		CHECK_INT(ws_recv_message(c, &data, &len, NULL, 10), WS_RECV_CLOSED);
		int64_t t0 = time_monotonic_ms();
		ws_close(c, 1000); /* already closed: no second close frame, no wait */
		CHECK(time_monotonic_ms() - t0 < 500);
	}

	test_case("close from the server without a code: 1005, echoed empty");
	c = open_path("/close-empty");
	if (c) {
		CHECK_INT(ws_recv_message(c, &data, &len, NULL, T_TIMEOUT), WS_RECV_CLOSED);
		CHECK_INT(ws_close_code(c), WS_CLOSE_NO_STATUS);
		CHECK_STR(ws_close_reason(c), "");
		CHECK_STR(srv_wait_note("close-echo", T_TIMEOUT), "close-echo empty masked opcode 8");
		ws_close(c, 1000);
	}

	test_case("ws_close: the client's close code reaches the server, which answers");
	c = open_path("/echo");
	if (c) {
		int64_t t0 = time_monotonic_ms();
		ws_close(c, 4321);
		CHECK_STR(srv_wait_note("close ", T_TIMEOUT), "close 4321 ");
		CHECK(time_monotonic_ms() - t0 < 900, "the close handshake did not wait for its timeout");
	}

	test_case("ws_close(c, 0): an empty close frame");
	c = open_path("/echo");
	if (c) {
		ws_close(c, 0);
		CHECK_STR(srv_wait_note("close ", T_TIMEOUT), "close empty");
	}

	test_case("socket closed without a close frame: 1006");
	c = open_path("/eof");
	if (c) {
		CHECK_INT(ws_recv_message(c, &data, &len, NULL, T_TIMEOUT), WS_RECV_CLOSED);
		CHECK_INT(ws_close_code(c), WS_CLOSE_ABNORMAL);
		CHECK(ws_recv_json(c, 10) == NULL);
		ws_close(c, 1000);
	}

	test_case("ws_abort: the server sees the stream end with no close frame");
	c = open_path("/silent");
	if (c) {
		ws_abort(c);
		CHECK(srv_wait_note("silent-eof", T_TIMEOUT) != NULL);
	}

	test_case("timeout: reported after about the time asked, connection still usable");
	c = open_path("/silent");
	if (c) {
		int64_t t0 = time_monotonic_ms();
		CHECK_INT(ws_recv_message(c, &data, &len, NULL, 200), WS_RECV_TIMEOUT);
		int64_t took = time_monotonic_ms() - t0;
		CHECK(took >= 190 && took < 1500, "took %lld ms", (long long)took);
		CHECK(ws_is_open(c));
		CHECK(ws_recv_json(c, 0) == NULL);
		CHECK_INT(ws_close_code(c), 0);
		ws_abort(c);
	}
}

static void test_slow_peers(void)
{
	test_case("send: a server that stops reading makes a send time out");
	struct ws_client *c = open_path("/stall");
	if (c) {
		size_t n = 32 * MIB;
		char *big = calloc(1, n);
		ws_set_send_timeout(c, 300);
		int64_t t0 = time_monotonic_ms();
		CHECK_INT(ws_send_binary(c, big, n), -1);
		int64_t took = time_monotonic_ms() - t0;
		CHECK(took >= 250 && took < 2500, "took %lld ms", (long long)took);
		CHECK(strstr(ws_last_error(c), "timed out") != NULL, "error: %s", ws_last_error(c));
		free(big);
		ws_abort(c);
	}

	test_case("ws_connect_ex: rcvbuf shrinks the receive buffer (a slow reader)");
	struct ws_connect_options small = {.rcvbuf = 4096};
	char why[256];
	c = ws_connect_ex("127.0.0.1", srv_port, "/echo", NULL, &small, T_TIMEOUT, why, sizeof(why));
	CHECK(c != NULL, "%s", why);
	if (c) {
		int size = 0;
		socklen_t slen = sizeof(size);
		CHECK(getsockopt(ws_fd(c), SOL_SOCKET, SO_RCVBUF, &size, &slen) == 0);
		CHECK(size > 0 && size <= 16384, "SO_RCVBUF %d", size); /* Linux doubles what it is given */
		ws_close(c, 1000);
	}
}

static void test_protocol_errors(void)
{
	static const struct {
		const char *path, *what, *error;
	} cases[] = {
		{"/masked", "a masked server frame", "masked"},
		{"/rsv", "RSV1 with no extension", "reserved bits"},
		{"/nonminimal16", "a 16-bit length under 126", "minimal"},
		{"/nonminimal64", "a 64-bit length under 65536", "minimal"},
		{"/topbit", "a 64-bit length with the top bit", "top bit"},
		{"/badop", "reserved data opcode 3", "reserved data opcode"},
		{"/badctlop", "reserved control opcode 0xb", "reserved control opcode"},
		{"/bigctl", "a 126-byte ping", "control frame of 126"},
		{"/fragctl", "a ping without FIN", "fragmented control"},
		{"/badutf8", "text that is not UTF-8", "UTF-8"},
		{"/orphan", "a continuation with nothing to continue", "continuation"},
		{"/interleaved", "a new message inside a fragmented one", "inside a fragmented"},
		{"/badclose", "close code 1005 on the wire", "may not be sent"},
		{"/shortclose", "a 1-byte close payload", "1-byte"},
		{"/huge", "a frame over 64 MiB", "message over"},
		{"/huge-frag", "fragments adding up to over 64 MiB", "message over"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("protocol error: %s", cases[i].what);
		struct ws_client *c = open_path(cases[i].path);
		if (!c)
			continue;
		char *data = NULL;
		size_t len;
		int64_t t0 = time_monotonic_ms();
		CHECK_INT(ws_recv_message(c, &data, &len, NULL, T_TIMEOUT), WS_RECV_ERROR);
		CHECK(time_monotonic_ms() - t0 < 2000, "found without waiting for a payload");
		CHECK(strstr(ws_last_error(c), cases[i].error) != NULL, "error: %s", ws_last_error(c));
		CHECK(!ws_is_open(c));
		CHECK_INT(ws_recv_message(c, &data, &len, NULL, 10), WS_RECV_ERROR);
		ws_abort(c);
	}

	test_case("recv: a message of exactly 64 MiB is accepted");
	struct ws_client *c = open_path("/max");
	if (c) {
		char *data = NULL;
		size_t len = 0;
		int opcode;
		CHECK_INT(ws_recv_message(c, &data, &len, &opcode, 30000), WS_RECV_OK);
		CHECK_INT(len, WS_MAX_MESSAGE);
		CHECK(data && data[0] == 'M' && data[WS_MAX_MESSAGE - 1] == 'Z');
		free(data);
		ws_close(c, 1000);
	}
}

static void test_json(void)
{
	test_case("ws_send_json / ws_recv_json: an object round trip");
	struct ws_client *c = open_path("/echo");
	if (!c)
		return;
	struct json_object *o = json_object_new_object();
	json_put_string(o, "type", "health");
	json_put_string(o, "path", "/a/b");
	CHECK_INT(ws_send_json(c, o), 0);
	json_object_put(o);
	struct json_object *back = ws_recv_json(c, T_TIMEOUT);
	CHECK(back != NULL);
	struct json_object *v;
	CHECK(back && json_object_object_get_ex(back, "path", &v) &&
	      strcmp(json_object_get_string(v), "/a/b") == 0);
	json_object_put(back);

	test_case("ws_recv_json: not JSON, or binary, is NULL");
	CHECK_INT(ws_send_text(c, "{nope", 5), 0);
	CHECK(ws_recv_json(c, T_TIMEOUT) == NULL);
	CHECK(strstr(ws_last_error(c), "not JSON") != NULL);
	CHECK_INT(ws_send_binary(c, "{}", 2), 0);
	CHECK(ws_recv_json(c, T_TIMEOUT) == NULL);
	CHECK(strstr(ws_last_error(c), "binary") != NULL);
	CHECK(ws_is_open(c));
	ws_close(c, 1000);
}

/* ---- the test agent's attest_response, judged by lib/verifier.c ---- */

static void judge(struct json_object *msg, const char *nonce, const char *network,
                  struct attest_verdict *out)
{
	struct verifier *v = NULL;
	struct ee_error err;
	memset(out, 0, sizeof(*out));
	if (devnet_verifier(&v, &err) != 0) {
		test_fail(__FILE__, __LINE__, "verifier_create: %s", err.reason);
		return;
	}
	struct json_object *q = NULL, *rd = NULL, *meas = NULL;
	json_object_object_get_ex(msg, "quote", &q);
	json_object_object_get_ex(msg, "report_data", &rd);
	json_object_object_get_ex(msg, "measurements", &meas);
	struct attest_evidence ev = {
		.nonce_hex = nonce,
		.quote_b64 = q ? json_object_get_string(q) : NULL,
		.quote_b64_len = q ? (size_t)json_object_get_string_len(q) : 0,
		.report_data_hex = rd ? json_object_get_string(rd) : NULL,
		.measurements = meas,
		.network = network,
		.repo = "org/repo",
		.release_tag = "v1.0.0",
	};
	verifier_verify(v, &ev, out);
	verifier_destroy(v);
}

static void check_verdict(const char *nonce, const struct agent_attest_options *opt,
                          const char *network, bool verified, const char *reason)
{
	struct json_object *msg = agent_build_attest_response(nonce, opt);
	CHECK(msg != NULL);
	if (!msg)
		return;
	struct attest_verdict v;
	judge(msg, nonce, network, &v);
	CHECK_INT(v.verified, verified);
	CHECK_STR(v.reason, reason);
	json_object_put(msg);
}

/* The 96 hex digits of a 48-byte register. */
static const char *register_hex(const uint8_t *reg)
{
	static char hex[97];
	util_hex_encode(reg, 48, hex);
	return hex;
}

/* The quote of a built attest_response, parsed (into raw, which must outlive q). */
static bool built_quote(struct json_object *msg, unsigned char **raw, struct tdx_quote *q)
{
	struct json_object *v;
	*raw = NULL;
	if (!json_object_object_get_ex(msg, "quote", &v) || !json_object_is_type(v, json_type_string))
		return false;
	size_t len = (size_t)json_object_get_string_len(v), n = 0;
	struct ee_error err;
	*raw = malloc(base64_decoded_max(len) + 1);
	return *raw && base64_decode(json_object_get_string(v), len, *raw, &n) == 0 &&
	       tdx_quote_parse(*raw, n, q, &err) == 0;
}

static void test_attest_messages(void)
{
	char nonce[33], other[33];
	util_random_hex(nonce, 16);
	util_random_hex(other, 16);

	test_case("agent attest_response: its shape, a TDX quote binding the measurements and nonce");
	struct agent_attest_options sealed = {.sealed = true};
	struct json_object *msg = agent_build_attest_response(nonce, &sealed);
	CHECK(msg != NULL);
	if (msg) {
		struct json_object *v;
		CHECK(json_object_object_get_ex(msg, "type", &v) &&
		      strcmp(json_object_get_string(v), "attest_response") == 0);
		CHECK(json_object_object_get_ex(msg, "nonce", &v) &&
		      strcmp(json_object_get_string(v), nonce) == 0);
		CHECK(json_object_object_get_ex(msg, "report_data", &v) &&
		      json_object_get_string_len(v) == 128);
		struct json_object *meas = NULL, *s;
		CHECK(json_object_object_get_ex(msg, "measurements", &meas) &&
		      json_object_is_type(meas, json_type_object) && json_object_object_length(meas) == 6);
		CHECK(meas && json_object_object_get_ex(meas, "sealed", &s) && json_object_get_boolean(s));
		CHECK(meas && json_object_object_get_ex(meas, "mrtd", &s) &&
		      strcmp(json_object_get_string(s), AGENT_TEST_MRTD) == 0 &&
		      strlen(AGENT_TEST_MRTD) == 96);
		unsigned char *raw, expected[ATTEST_REPORT_DATA_LEN];
		struct tdx_quote q;
		struct ee_error err;
		CHECK(built_quote(msg, &raw, &q), "the quote is not a TDX quote");
		if (raw && meas && attest_expected_report_data(meas, nonce, expected, &err) == 0) {
			CHECK(memcmp(q.td.report_data, expected, sizeof(expected)) == 0);
			CHECK(json_object_object_get_ex(msg, "report_data", &v));
			char hex[2 * ATTEST_REPORT_DATA_LEN + 1];
			util_hex_encode(expected, sizeof(expected), hex);
			CHECK_STR(json_object_get_string(v), hex);
			CHECK_STR(register_hex(q.td.mr_td), AGENT_TEST_MRTD);
			CHECK_STR(register_hex(q.td.rtmr[0]), AGENT_TEST_RTMR0);
			CHECK_STR(register_hex(q.td.rtmr[1]), AGENT_TEST_RTMR1);
			CHECK_STR(register_hex(q.td.rtmr[2]), AGENT_TEST_RTMR2);
			CHECK_STR(register_hex(q.td.rtmr[3]), AGENT_TEST_RTMR3);
			CHECK((q.td.td_attributes[0] & 1) == 0, "a debug TD by default");
		}
		free(raw);
		json_object_put(msg);
	}

	test_case("agent attest_response: verified on sandbox-1, unsealed and sealed");
	check_verdict(nonce, NULL, "sandbox-1", true, "ok");
	check_verdict(nonce, &sealed, "sandbox-1", true, "ok");

	test_case("agent attest_response: refused on forge-1");
	/* forge-1 pins Intel's root only. */
	check_verdict(nonce, &sealed, "forge-1", false, "pck_chain_untrusted");
	check_verdict(nonce, NULL, "forge-1", false, "sealed_required");

	test_case("agent attest_response: corrupted nonce bindings");
	struct agent_attest_options o = {.report_data_nonce = other};
	check_verdict(nonce, &o, "sandbox-1", false, "report_data_mismatch");
	o = (struct agent_attest_options){.quote_nonce = other};
	check_verdict(nonce, &o, "sandbox-1", false, "report_data_mismatch");
	o = (struct agent_attest_options){.report_data_nonce = other, .quote_nonce = other};
	check_verdict(nonce, &o, "sandbox-1", false, "report_data_mismatch");
	/* The whole answer made for another nonce: a replay. */
	msg = agent_build_attest_response(other, NULL);
	struct attest_verdict verdict;
	judge(msg, nonce, "sandbox-1", &verdict);
	CHECK_STR(verdict.reason, "report_data_mismatch");
	json_object_put(msg);
	o = (struct agent_attest_options){.quote_nonce = other, .omit_report_data = true};
	check_verdict(nonce, &o, "sandbox-1", false, "report_data_mismatch");

	test_case("agent attest_response: the nonce field alone changed");
	o = (struct agent_attest_options){.nonce = other};
	msg = agent_build_attest_response(nonce, &o);
	struct json_object *v = NULL;
	CHECK(json_object_object_get_ex(msg, "nonce", &v) &&
	      strcmp(json_object_get_string(v), other) == 0);
	judge(msg, nonce, "sandbox-1", &verdict); /* the verifier leaves the field to tunneld */
	CHECK(verdict.verified);
	json_object_put(msg);
	o = (struct agent_attest_options){.omit_nonce = true};
	msg = agent_build_attest_response(nonce, &o);
	CHECK(!json_object_object_get_ex(msg, "nonce", &v));
	json_object_put(msg);

	test_case("agent attest_response: other measurements, registers and quotes");
	struct json_object *meas = agent_test_measurements(false);
	json_put_string(meas, "rtmr3", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
	                               "ffffffffffffffffffffffffffffffff");
	o = (struct agent_attest_options){.report_data_measurements = meas};
	check_verdict(nonce, &o, "sandbox-1", false, "report_data_mismatch");
	o = (struct agent_attest_options){.quote_report_data_measurements = meas};
	check_verdict(nonce, &o, "sandbox-1", false, "report_data_mismatch");
	/* REPORTDATA binds what is claimed, the registers say otherwise. */
	o = (struct agent_attest_options){.quote_measurements = meas};
	check_verdict(nonce, &o, "sandbox-1", false, "measurement_not_bound:rtmr3");
	/* Consistent, just not the release's: the allowlist refuses it. */
	o = (struct agent_attest_options){.measurements = meas};
	check_verdict(nonce, &o, "sandbox-1", false, "measurement_mismatch:rtmr3");
	msg = agent_build_attest_response(nonce, &o);
	unsigned char *raw = NULL;
	struct tdx_quote q;
	CHECK(msg && built_quote(msg, &raw, &q));
	if (raw)
		CHECK(strspn(register_hex(q.td.rtmr[3]), "f") == 96, "the register follows the claim");
	free(raw);
	json_object_put(msg);
	/* A value that is no register keeps the default one: claimed and quoted differ. */
	json_put_string(meas, "rtmr3", "ff");
	o = (struct agent_attest_options){.measurements = meas};
	check_verdict(nonce, &o, "sandbox-1", false, "measurement_not_bound:rtmr3");
	json_object_put(meas);
	o = (struct agent_attest_options){.debug_td = true};
	check_verdict(nonce, &o, "sandbox-1", false, "debug_td");
	struct dcapgen_quote_options broken;
	dcapgen_quote_defaults(&broken);
	broken.bad_quote_signature = true;
	o = (struct agent_attest_options){.quote_options = &broken};
	check_verdict(nonce, &o, "sandbox-1", false, "quote_signature");
	o = (struct agent_attest_options){.omit_measurements = true};
	check_verdict(nonce, &o, "sandbox-1", false, "missing_quote_or_measurements");
	o = (struct agent_attest_options){.omit_quote = true};
	check_verdict(nonce, &o, "sandbox-1", false, "missing_quote_or_measurements");
	/* The quote carries REPORTDATA; the agent's own copy is optional. */
	o = (struct agent_attest_options){.omit_report_data = true};
	check_verdict(nonce, &o, "sandbox-1", true, "ok");
	o = (struct agent_attest_options){.report_data_hex = "00"};
	check_verdict(nonce, &o, "sandbox-1", false, "report_data_mismatch");
	o = (struct agent_attest_options){.quote_b64 = "AAAA"};
	check_verdict(nonce, &o, "sandbox-1", false, "unsupported_quote_version");
	struct json_object *nested = json_object_new_object();
	json_object_object_add(nested, "mrtd", json_object_new_object());
	o = (struct agent_attest_options){.measurements = nested};
	check_verdict(nonce, &o, "sandbox-1", false, "invalid_measurements");
	json_object_put(nested);

	test_case("agent attest_response: no hierarchy, no answer");
	agent_set_hierarchy(NULL);
	msg = agent_build_attest_response(nonce, NULL);
	CHECK(msg == NULL);
	json_object_put(msg);
	o = (struct agent_attest_options){.quote_b64 = "AAAA"};
	msg = agent_build_attest_response(nonce, &o);
	CHECK(msg != NULL, "a verbatim quote needs no hierarchy");
	json_object_put(msg);
	agent_set_hierarchy(devnet);
}

/* ---- the test agent over a websocket, against the scripted tunnel ---- */

static void reply_teapot(const struct agent_request *req, struct agent_response *resp, void *ctx)
{
	(void)ctx;
	resp->status = 418;
	json_put_string(resp->headers, "X-Echo-Path", req->path);
	buf_puts(&resp->body, "teapot");
}

static void test_agent_flow(void)
{
	test_case("agent: register, attest, serve, periodic re-attestation, health");
	struct test_agent *a = agent_connect("127.0.0.1", srv_port, "app1", "org/repo", "agent-1",
	                                     "sandbox-1");
	CHECK(a != NULL);
	if (!a)
		return;
	CHECK_INT(agent_up(a, false, T_TIMEOUT), 0);
	CHECK_STR(agent_last_reason(a), "attested");
	CHECK_STR(srv_wait_note("register", T_TIMEOUT), "register app1 org/repo v1.0.0 sandbox-1 agent-1");
	CHECK_STR(a->attest_reason, "register");
	CHECK_INT(a->attest_deadline_s, 30);
	CHECK_INT(a->attestations, 1);
	CHECK_INT(agent_serve(a, T_TIMEOUT, NULL, NULL), 0);
	CHECK_STR(srv_wait_note("response", T_TIMEOUT), "response r1 200 /hello ");
	/* A periodic challenge comes first, and r2 overtakes its verdict. */
	CHECK_INT(agent_serve(a, T_TIMEOUT, reply_teapot, NULL), 0);
	CHECK_STR(srv_wait_note("response", T_TIMEOUT), "response r2 418 /data teapot");
	CHECK_STR(a->attest_reason, "periodic");
	CHECK_INT(a->attestations, 2);
	CHECK_INT(a->periodic_attestations, 1);
	CHECK_INT(agent_health(a, "pass"), 0);
	CHECK_STR(srv_wait_note("health", T_TIMEOUT), "health pass");
	struct json_object *m = agent_recv(a, T_TIMEOUT);
	struct json_object *v;
	CHECK(m && json_object_object_get_ex(m, "reason", &v) &&
	      strcmp(json_object_get_string(v), "unknown_message") == 0);
	json_object_put(m);
	CHECK_INT(agent_wait_closed(a, T_TIMEOUT), 1008);
	CHECK(agent_recv(a, 10) == NULL);
	CHECK_STR(agent_last_reason(a), "closed");
	agent_disconnect(a);

	test_case("agent: requests held and answered out of order");
	struct agent_connect_options co = {.path = "/v1/tunnel-multi"};
	a = agent_connect_ex("127.0.0.1", srv_port, "app2", "org/repo", NULL, "sandbox-1", &co);
	CHECK(a != NULL);
	if (!a)
		return;
	CHECK(strncmp(a->agent_id, "agent-", 6) == 0 && strlen(a->agent_id) == 22);
	CHECK_INT(agent_up(a, true, T_TIMEOUT), 0);
	struct agent_request req[3];
	for (int i = 0; i < 3; i++) {
		CHECK_INT(agent_recv_request(a, &req[i], T_TIMEOUT), 0);
		CHECK_STR(req[i].method, "GET");
		CHECK(req[i].body_len == 0 && !req[i].body_invalid);
		v = NULL;
		CHECK(req[i].headers && json_object_object_get_ex(req[i].headers, "Accept", &v) &&
		      strcmp(json_object_get_string(v), "text/plain") == 0);
	}
	CHECK_STR(req[0].request_id, "r1");
	CHECK_STR(req[2].path, "/3");
	for (int i = 2; i >= 0; i--) {
		struct json_object *h = json_object_new_object();
		json_put_string(h, "X-Echo-Path", req[i].path);
		CHECK_INT(agent_send_response(a, req[i].request_id, 201, h, "x", 1), 0);
		json_object_put(h);
		agent_request_free(&req[i]);
	}
	CHECK_STR(srv_wait_note("response", T_TIMEOUT), "response r3 201 /3 x");
	CHECK_STR(srv_wait_note("response", T_TIMEOUT), "response r2 201 /2 x");
	CHECK_STR(srv_wait_note("response", T_TIMEOUT), "response r1 201 /1 x");
	agent_drop(a);
	CHECK(srv_wait_note("eof", T_TIMEOUT) != NULL);

	test_case("agent: a refused registration gives the reason");
	co.path = "/v1/tunnel-taken";
	a = agent_connect_ex("127.0.0.1", srv_port, "app3", "org/other", NULL, NULL, &co);
	CHECK(a != NULL);
	if (!a)
		return;
	char nonce[33] = "x";
	CHECK_INT(agent_register(a, nonce, T_TIMEOUT), -1);
	CHECK_STR(nonce, "");
	CHECK_STR(agent_last_reason(a), "app_name_taken");
	CHECK_INT(agent_wait_closed(a, T_TIMEOUT), 1008);
	agent_disconnect(a);

	test_case("agent: a corrupted attestation gives the verifier's reason");
	a = agent_connect("127.0.0.1", srv_port, "app4", "org/repo", NULL, "sandbox-1");
	CHECK(a != NULL);
	if (!a)
		return;
	CHECK_INT(agent_register(a, nonce, T_TIMEOUT), 0);
	CHECK_INT(strlen(nonce), 32);
	char other[33];
	util_random_hex(other, 16);
	struct agent_attest_options o = {.quote_nonce = other};
	CHECK_INT(agent_attest_ex(a, nonce, &o, T_TIMEOUT), -1);
	CHECK_STR(agent_last_reason(a), "report_data_mismatch");
	CHECK_INT(agent_wait_closed(a, T_TIMEOUT), 1008);
	agent_disconnect(a);

	test_case("agent: a connection refused at the handshake");
	char why[256];
	co = (struct agent_connect_options){.path = "/refuse", .why = why, .why_size = sizeof(why)};
	a = agent_connect_ex("127.0.0.1", srv_port, "app5", "org/repo", NULL, NULL, &co);
	CHECK(a == NULL);
	CHECK(strncmp(why, "HTTP 403", 8) == 0, "why: %s", why);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	/* Before the server forks: it judges with the same hierarchy. */
	if (devnet_start() != 0) {
		test_fail(__FILE__, __LINE__, "cannot make the development network");
		devnet_stop();
		return test_finish();
	}
	if (srv_start() != 0) {
		test_fail(__FILE__, __LINE__, "cannot start the test server: %s", strerror(errno));
		devnet_stop();
		return test_finish();
	}
	test_pure_functions();
	test_handshake();
	test_round_trips();
	test_fragments_and_control();
	test_closing();
	test_slow_peers();
	test_protocol_errors();
	test_json();
	test_attest_messages();
	test_agent_flow();
	srv_stop();
	devnet_stop();
	return test_finish();
}
