/*
 * wsserver.h - a scripted websocket server for tests of ee-agent: the
 * control plane's side of the tunnel, driven by the test one frame at a
 * time, so it can send what ee-tunneld never would (broken JSON, bad
 * proxy requests, oversized and fragmented messages) and read exactly what
 * the agent answers.  One connection at a time, on 127.0.0.1.
 */
#ifndef EE_TEST_WSSERVER_H
#define EE_TEST_WSSERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "util.h"

struct ws_server {
	int listen_fd;
	int port;
	int fd;           /* the accepted connection, or -1 */
	struct buf in;    /* bytes read and not yet parsed */
	bool auto_pong;   /* answer pings while receiving (default true) */
	int pings;        /* pings received on this connection */
	int close_code;   /* of the client's close frame, 0 if none yet */
};

int wsserver_open(struct ws_server *s);
void wsserver_close(struct ws_server *s);
/* Accepts one connection and completes the handshake; -1 on timeout or a bad upgrade. */
int wsserver_accept(struct ws_server *s, int timeout_ms);
/* Whether a new connection waits to be accepted, within timeout_ms (the current one is kept). */
bool wsserver_wait_pending(struct ws_server *s, int timeout_ms);
/* Closes the accepted connection (no close frame). */
void wsserver_drop(struct ws_server *s);

/* One unmasked frame. */
int wsserver_send_frame(struct ws_server *s, int opcode, bool fin, const void *data, size_t len);
int wsserver_send_text(struct ws_server *s, const char *text);
int wsserver_send_raw(struct ws_server *s, const void *bytes, size_t len);

/*
 * The next text message (fragments joined; pings answered when auto_pong):
 * WS_RECV_OK with *msg (caller frees), WS_RECV_CLOSED, WS_RECV_TIMEOUT or
 * WS_RECV_ERROR (wsclient.h).
 */
int wsserver_recv(struct ws_server *s, char **msg, size_t *len, int timeout_ms);
/* The next message parsed as JSON, or NULL. */
struct json_object *wsserver_recv_json(struct ws_server *s, int timeout_ms);

#endif
