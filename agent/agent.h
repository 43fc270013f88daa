/*
 * agent.h - ee-agent, the agent side of the tunnel (DESIGN.md sections 1,
 * 4, 5; docs/AGENT.md).
 *
 * One event loop thread (libwebsockets) holds the websocket to the control
 * plane, the timers and the readiness listener.  Proxied requests go to the
 * backend pool's one transfer thread (libcurl's multi interface, many
 * requests at a time, backend.c); attestation quotes
 * are made by one attestation thread, because a quote can take a while and
 * the tunnel must keep moving meanwhile.  Threads hand finished messages
 * back through the outbox (outbox_post), which wakes the loop when it was
 * empty.
 *
 * Every message carries the generation of the connection it answers: a
 * message made for a connection that has since gone is dropped, never sent
 * down its successor.
 */
#ifndef EE_AGENT_H
#define EE_AGENT_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "error.h"
#include "util.h"

/* Limits, each a named constant (docs/AGENT.md). */
#define AGENT_REQUEST_ID_MAX 128
#define AGENT_METHOD_MAX 32
#define AGENT_PATH_MAX 8192
#define AGENT_HEADER_NAME_MAX 256
#define AGENT_HEADER_VALUE_MAX 8192
#define AGENT_HEADERS_MAX 100
#define AGENT_FRAME_FRAGMENT 65536 /* outgoing frames are split at this size */
#define AGENT_SERVICE_BUFFER 65536 /* lws pt_serv_buf_size: the loop's read buffer */

enum quote_source_kind {
	QUOTE_SOURCE_TSM, /* configfs-tsm: a real TDX quote from the kernel */
	QUOTE_SOURCE_DEV, /* a development kit's key signs the quote: no hardware proof */
};

struct agent_config {
	/* EE_CONTROL_WS, split */
	char *control_url;
	bool control_tls; /* wss:// */
	char *control_host;
	int control_port;
	char *control_path; /* with the query, if any */
	char *control_ca_file; /* EE_CONTROL_CA_FILE: trust only this CA (PEM) */

	/* what register says */
	char *repo, *release_tag, *app_name, *network, *agent_id;

	char *backend_url;  /* EE_BACKEND_URL, without a trailing '/' */
	char *health_path;  /* EE_HEALTH_PATH: the backend's probe; NULL: always pass */
	int health_interval_ms;
	int reconnect_delay_ms; /* first backoff step */
	int reconnect_max_ms;   /* the backoff's cap */
	int backend_timeout_ms;
	int backend_connect_timeout_ms;
	int backend_workers;
	int backend_queue;
	size_t max_message_bytes;  /* incoming tunnel messages */
	size_t max_response_bytes; /* a backend response body */
	int ping_interval_sec;     /* websocket ping after this much silence */

	enum quote_source_kind quote_source;
	char *tsm_dir;       /* EE_TSM_REPORT_DIR */
	char *dev_quote_dir; /* EE_DEV_QUOTE_DIR */
	bool sealed;         /* EE_SEALED (or the original's SEAL_VM) */
	char *vm_image_id;   /* VM_IMAGE_ID or /etc/easy-enclave/vm_image_id, if any */

	char *status_bind; /* EE_STATUS_ADDR; NULL: no readiness listener */
	int status_port;
};

/* Reads the environment; -1 with err naming the variable on a bad value. */
int agent_config_load(struct agent_config *cfg, struct ee_error *err);
void agent_config_free(struct agent_config *cfg);

/* --- quotes (quote.c, quote_tsm.c, quote_dev.c) --- */

struct quote_source;

/*
 * Opens the configured source.  -1 with err when it cannot work at all
 * (no configfs-tsm, a broken development kit): the caller retries later,
 * since configfs may appear after boot.
 */
int quote_source_open(const struct agent_config *cfg, struct quote_source **out,
                      struct ee_error *err);
void quote_source_close(struct quote_source *qs);
const char *quote_source_name(const struct quote_source *qs);

/*
 * Builds the attest_response for nonce (32 hex digits): the measurements
 * (the quote's MRTD and RTMR0-3, sealed, vm_image_id), REPORTDATA =
 * SHA-256(material) || SHA-256(nonce), and a quote carrying it.  Registers
 * are learnt from the quote itself; when they changed since the last one
 * (an RTMR extended), the quote is made again with the new material.
 * Returns the JSON text (caller frees) or NULL with err.
 */
char *quote_attest_response(struct quote_source *qs, const char *nonce, struct ee_error *err);

/* The measurements this agent reports, as an allowlist would list them (caller frees). */
struct json_object *quote_measurements(struct quote_source *qs, struct ee_error *err);

/* One raw quote over report_data, from the source (caller frees *quote). */
int quote_source_get(struct quote_source *qs, const unsigned char report_data[64],
                     unsigned char **quote, size_t *quote_len, struct ee_error *err);

/* Implementations. */
int quote_tsm_get(const char *dir, const unsigned char report_data[64], unsigned char **quote,
                  size_t *quote_len, struct ee_error *err);
struct quote_dev;
int quote_dev_open(const char *dir, struct quote_dev **out, struct ee_error *err);
void quote_dev_close(struct quote_dev *dev);
int quote_dev_get(struct quote_dev *dev, const unsigned char report_data[64],
                  unsigned char **quote, size_t *quote_len, struct ee_error *err);

/* --- the outbox: finished messages back to the loop (outbox.c) --- */

struct outbox_msg {
	struct outbox_msg *next;
	uint64_t generation;
	bool is_attest_failure; /* the attestation thread could not make a quote */
	char *text;             /* JSON, with LWS_PRE bytes of headroom before it */
	size_t len;
};

struct outbox {
	pthread_mutex_t lock;
	struct outbox_msg *head, *tail;
	struct lws_context *context; /* woken by lws_cancel_service */
};

int outbox_init(struct outbox *ob);
void outbox_destroy(struct outbox *ob);
/* Copies text into a new message with LWS_PRE headroom; NULL when out of memory. */
struct outbox_msg *outbox_msg_new(uint64_t generation, const char *text, size_t len);
/*
 * Takes mem, which holds LWS_PRE bytes and then len bytes of text
 * (no copy of a large body); frees it and returns NULL when out of memory.
 */
struct outbox_msg *outbox_msg_adopt(uint64_t generation, char *mem, size_t len);
void outbox_msg_free(struct outbox_msg *m);
/* Takes m and wakes the loop. */
void outbox_post(struct outbox *ob, struct outbox_msg *m);
/* Everything posted so far, oldest first; the caller owns the list. */
struct outbox_msg *outbox_take_all(struct outbox *ob);

/* --- the backend pool (backend.c) --- */

struct backend_job;
struct backend_pool;

/*
 * Checks a proxy_request and makes a job of it.  NULL with err (400
 * invalid_proxy_request and what is wrong) when the request cannot be
 * forwarded as it is; the caller answers it.
 */
struct backend_job *backend_job_from_request(const struct agent_config *cfg,
                                             struct json_object *request, uint64_t generation,
                                             struct ee_error *err);
/*
 * The same for the usual proxy_request, read from its text without json-c
 * (plain strings, the known fields once each): the job when the text reads
 * so and passes every check of backend_job_from_request, else NULL, and the
 * caller goes the json-c way (tunnel_msg_parse, backend_job_from_request),
 * which answers a refusal as before.
 */
struct backend_job *backend_job_from_text(const struct agent_config *cfg, const char *text,
                                          size_t len, uint64_t generation);
/* What the job sends, as text (tests compare the two readers with it). */
int backend_job_describe(const struct backend_job *job, struct buf *out);
/* The request id of a job made from a proxy_request. */
const char *backend_job_request_id(const struct backend_job *job);
/* A probe of EE_HEALTH_PATH whose answer is a health message. */
struct backend_job *backend_job_health(uint64_t generation);
void backend_job_free(struct backend_job *job);

/*
 * The proxy_response for request_id with an error body
 * {"allowed":false,"reason":...}: the agent's own answer when the backend
 * could not give one.  NULL when out of memory.
 */
struct outbox_msg *backend_error_response(uint64_t generation, const char *request_id, int status,
                                          const char *reason);

/*
 * A backend's answer header fields, kept as they came (in order) until the
 * proxy_response is written: no JSON tree per request.  fields holds, per
 * line, the index of its name in names (one byte), the name, a NUL, the
 * value and a NUL; names holds each distinct name (case-insensitively),
 * where its first spelling starts in fields, and how many lines have it.
 */
struct backend_header_name {
	size_t off, len; /* the first spelling, in fields */
	unsigned count;
};
struct backend_headers {
	struct buf fields;
	struct backend_header_name names[AGENT_HEADERS_MAX];
	int count; /* distinct names */
};

void backend_headers_init(struct backend_headers *h);
void backend_headers_reset(struct backend_headers *h);
void backend_headers_free(struct backend_headers *h);

/*
 * One header line of a backend's answer, as libcurl hands it over (with
 * its CRLF), into h: a status line starts afresh (after 1xx answers);
 * hop-by-hop fields, Content-Length (unless keep_length: HEAD), broken or
 * folded lines and values with control characters are dropped; lines past
 * AGENT_HEADERS_MAX distinct names are dropped.  0, or -1 when out of memory.
 */
int backend_header_line(struct backend_headers *h, const char *line, size_t len,
                        bool keep_length);

/*
 * Appends the headers object of the proxy_response to out, names in the
 * order they first came, each with its first spelling: Set-Cookie lines
 * as an array of strings when there are several, other repeats joined
 * with ", ".  Bytes that are not UTF-8 (an ISO-8859-1 filename, say) go
 * as \udc80..\udcff escapes (json_bytes_put), which ee-tunneld reads back
 * as the bytes.  -1 when out of memory.
 */
int backend_headers_json(const struct backend_headers *h, struct buf *out);

int backend_pool_start(const struct agent_config *cfg, struct outbox *ob,
                       struct backend_pool **out, struct ee_error *err);
/* Queues job (taken); -1 when the queue is full (the caller answers 503). */
int backend_pool_submit(struct backend_pool *pool, struct backend_job *job);
/* Jobs queued or running. */
int backend_pool_busy(struct backend_pool *pool);
void backend_pool_stop(struct backend_pool *pool);

/* --- the attestation thread (attester.c) --- */

struct attester;
int attester_start(const struct agent_config *cfg, struct outbox *ob, struct attester **out,
                   struct ee_error *err);
/* Asks for an attest_response to nonce for connection generation (replaces any waiting one). */
void attester_request(struct attester *at, uint64_t generation, const char *nonce);
/* Whether the quote source is open (false until it could be, e.g. before configfs appears). */
bool attester_source_ready(struct attester *at);
/* The last reason a quote could not be made ("" if none), copied into out. */
void attester_last_error(struct attester *at, char *out, size_t out_len);
void attester_stop(struct attester *at);

/* --- the agent: the loop thread's state (conn.c, status.c, main.c) --- */

enum agent_state {
	AGENT_WAITING_SOURCE, /* no quote source yet: not connecting */
	AGENT_DISCONNECTED,   /* waiting to reconnect */
	AGENT_CONNECTING,
	AGENT_REGISTERED,     /* connected, register sent, not attested yet */
	AGENT_ATTESTED,       /* serving */
};

struct lws_context;
struct lws_vhost;
struct lws;

struct agent {
	struct agent_config *cfg;
	struct lws_context *context;
	struct lws_vhost *client_vhost;
	struct lws *wsi;      /* the tunnel while connecting or connected; NULL otherwise */
	uint64_t generation;  /* bumped on every connect and every disconnect */
	enum agent_state state;
	volatile sig_atomic_t stop_requested; /* set by the signal handler */
	bool stopping;        /* SIGTERM: close, do not reconnect */
	bool done;            /* the loop may end */
	int close_code;       /* closing the tunnel with this code from the writable callback */
	int attempt;          /* failed connections since the last attestation */
	unsigned long connects, attestations;
	int64_t state_since_ms;
	char last_reason[EE_REASON_MAX]; /* the control plane's last word, or the connect error */

	struct {
		char *data;
		size_t len, cap;
	} rx; /* an incoming message being reassembled from fragments */
	struct outbox_msg *send_head, *send_tail;
	size_t send_offset; /* of send_head, already written */

	struct outbox outbox;
	struct backend_pool *pool;
	struct attester *attester;
	void *timers; /* conn.c's lws timers */
};

/* conn.c: the tunnel */
int agent_conn_init(struct agent *a, struct ee_error *err);
void agent_conn_start(struct agent *a); /* first connect attempt, now */
void agent_conn_stop(struct agent *a);  /* SIGTERM: close the tunnel cleanly */
void agent_conn_free(struct agent *a);
const struct lws_protocols *agent_conn_protocols(void);
const char *agent_state_name(enum agent_state state);

/* status.c: the readiness listener (EE_STATUS_ADDR) */
const struct lws_protocols *agent_status_protocols(void);
/* The /ready document; *ready says whether the agent is serving. Caller frees. */
char *agent_status_json(struct agent *a, bool *ready);

#endif
