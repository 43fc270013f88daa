/*
 * wsclient.h - a small blocking RFC 6455 websocket client for tests.
 *
 * Written from the RFC rather than on libwebsockets so that a test controls
 * every byte on the wire: it can speak the protocol exactly (masked frames,
 * minimal length encodings, close handshake) and break it on purpose
 * (unmasked or fragmented frames, reserved opcodes and bits, lying lengths,
 * garbage).  Plain TCP, one HTTP/1.1 upgrade; works the same straight to
 * ee-tunneld and through Caddy.
 *
 * Receiving is strict: anything a server must not send (a masked frame, a
 * reserved bit or opcode, a fragmented or oversize control frame, a length
 * not in its minimal form, a broken fragment sequence, invalid UTF-8 in a
 * text message or close reason) is WS_RECV_ERROR, with the reason in
 * ws_last_error().  Pings are answered by the client itself.
 */
#ifndef EE_TEST_WSCLIENT_H
#define EE_TEST_WSCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define WS_OP_CONTINUATION 0x0
#define WS_OP_TEXT 0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE 0x8
#define WS_OP_PING 0x9
#define WS_OP_PONG 0xa
/* Reserved bits, OR-ed into ws_send_frame's opcode to set them on the wire. */
#define WS_RSV1 0x40
#define WS_RSV2 0x20
#define WS_RSV3 0x10

#define WS_MAX_MESSAGE (64 * 1024 * 1024)  /* a received message (all fragments) */
#define WS_MAX_HANDSHAKE (64 * 1024)       /* the server's answer to the upgrade */
#define WS_FRAME_HEADER_MAX 14
#define WS_ACCEPT_LEN 28                   /* base64 of a SHA-1 */
#define WS_SEND_TIMEOUT_MS 10000           /* default bound on one blocked send */

/* Close codes the client itself reports (RFC 6455 section 7.4.1). */
#define WS_CLOSE_NO_STATUS 1005  /* a close frame with no code */
#define WS_CLOSE_ABNORMAL 1006   /* the socket closed without a close frame */

/* ws_recv_message's answers. */
#define WS_RECV_OK 0
#define WS_RECV_CLOSED (-1)   /* close frame received, or the socket closed */
#define WS_RECV_TIMEOUT (-2)
#define WS_RECV_ERROR (-3)    /* the server broke the protocol; see ws_last_error */

struct ws_client;

/* Less common handshakes; every field is optional (zero means the default). */
struct ws_connect_options {
	const char *key;       /* Sec-WebSocket-Key to send ("" sends none); default random */
	const char *version;   /* Sec-WebSocket-Version ("" sends none); default "13" */
	const char *host;      /* Host header ("" sends none); default "host:port" */
	int rcvbuf;            /* SO_RCVBUF before connecting, for tests of a slow reader */
	bool skip_accept_check; /* take any 101, even with a wrong Sec-WebSocket-Accept */
};

/*
 * Connects to host:port and upgrades GET path.  extra_headers is a
 * NULL-terminated list of "Name: value" lines, or NULL.  On any failure
 * returns NULL with why set: "connect: ...", "HTTP 403: <body>" when the
 * server refused the upgrade, or what was wrong with its 101 answer.
 */
struct ws_client *ws_connect(const char *host, int port, const char *path,
                             const char *const *extra_headers, int timeout_ms, char *why,
                             size_t why_size);
struct ws_client *ws_connect_ex(const char *host, int port, const char *path,
                                const char *const *extra_headers,
                                const struct ws_connect_options *opt, int timeout_ms, char *why,
                                size_t why_size);

/*
 * One masked text frame with FIN set.  0, or -1 (see ws_last_error); after
 * a failed send the stream may end inside a frame.
 */
int ws_send_text(struct ws_client *c, const char *data, size_t len);
/* One masked binary frame with FIN set. */
int ws_send_binary(struct ws_client *c, const void *data, size_t len);
/* The object as compact JSON in one text frame; obj stays the caller's. */
int ws_send_json(struct ws_client *c, struct json_object *obj);
/*
 * One frame exactly as asked: opcode 0..15 (reserved ones too) with any of
 * WS_RSV1..3 OR-ed in, FIN or not, masked with a random key or not, length
 * in its minimal encoding.  For fragmentation, unmasked frames, pings,
 * oversize frames and the like.
 */
int ws_send_frame(struct ws_client *c, int opcode, bool fin, bool masked, const void *data,
                  size_t len);
/*
 * Writes a frame header as ws_send_frame would, for a payload of len bytes
 * (which need not follow: a header may lie).  mask NULL means unmasked.
 * Returns its size (2..WS_FRAME_HEADER_MAX).
 */
size_t ws_frame_header(unsigned char out[WS_FRAME_HEADER_MAX], int opcode, bool fin,
                       uint64_t len, const unsigned char mask[4]);
/* Bytes on the wire as they are: garbage, hand-built frames, half frames. */
int ws_send_raw(struct ws_client *c, const void *bytes, size_t len);

/*
 * Waits up to timeout_ms (negative: forever) for one whole text or binary
 * message, fragments reassembled; pings are answered and pongs counted on
 * the way.  On WS_RECV_OK, *data is malloc'ed with a NUL after its *len
 * bytes (the caller frees) and *opcode (if not NULL) is WS_OP_TEXT or
 * WS_OP_BINARY.  A close frame from the server is answered with the same
 * code (unless the client closed first) and reported as WS_RECV_CLOSED, as
 * is every later call.
 */
int ws_recv_message(struct ws_client *c, char **data, size_t *len, int *opcode, int timeout_ms);
/* The next message parsed as JSON (any value); NULL on timeout, close, error or non-JSON. */
struct json_object *ws_recv_json(struct ws_client *c, int timeout_ms);

/*
 * The server's close code: 0 while none came, WS_CLOSE_NO_STATUS for an
 * empty close frame, WS_CLOSE_ABNORMAL when the socket closed without one.
 */
int ws_close_code(const struct ws_client *c);
const char *ws_close_reason(const struct ws_client *c); /* "" when none */
/* Why the last call failed, in words; "" when nothing failed. */
const char *ws_last_error(const struct ws_client *c);
/* Pongs received so far (the server answering ws_send_frame(WS_OP_PING)). */
int ws_pongs_received(const struct ws_client *c);
/* Payload of the last pong, NUL-terminated (at most 125 bytes). */
const char *ws_last_pong(const struct ws_client *c);
/* Pings from the server are answered unless this is turned off (a dead agent). */
void ws_set_auto_pong(struct ws_client *c, bool on);
/* Bound on one blocked send (default WS_SEND_TIMEOUT_MS); -1 when it runs out. */
void ws_set_send_timeout(struct ws_client *c, int timeout_ms);
/* The server's 101 answer, status line and headers. */
const char *ws_response_headers(const struct ws_client *c);
/* True until a close frame went either way, the socket closed, or a protocol error. */
bool ws_is_open(const struct ws_client *c);
int ws_fd(const struct ws_client *c);

/*
 * Sends a close frame with code (0: an empty close frame) if the
 * connection is still open, waits up to a second for the server's close
 * frame and end of stream, closes the socket and frees.  NULL is ignored.
 */
void ws_close(struct ws_client *c, int code);
/* Closes the TCP socket with no close frame and frees.  NULL is ignored. */
void ws_abort(struct ws_client *c);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key GUID)), and a NUL. */
void ws_compute_accept(const char *key, char out[WS_ACCEPT_LEN + 1]);
/* True when the bytes are valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool ws_utf8_valid(const unsigned char *s, size_t len);

#endif
