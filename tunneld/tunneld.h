/*
 * tunneld.h - ee-tunneld's shared state.
 *
 * One libwebsockets event loop with two listeners:
 *   control (EE_CONTROL_BIND:EE_CONTROL_PORT): the agents' websockets at
 *     GET /v1/tunnel (session.c), POST /v1/proxy/{app} and GET /health
 *     (control_http.c);
 *   proxy (EE_PROXY_BIND:EE_PROXY_PORT): any request, routed by X-EE-App or
 *     the first label of Host (proxy_http.c, its own HTTP/1.1 parser so that
 *     every header passes through).
 * A request for an app becomes a job (job.c) sent over one allowed agent's
 * tunnel and matched back by request_id; routing is route.c.  State the
 * rest of the control plane reads goes to the database through store.c,
 * which batches writes and retries them, so a slow or failing disk never
 * stalls the loop or loses an event.
 */
#ifndef EE_TUNNELD_H
#define EE_TUNNELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <libwebsockets.h>

#include "attest.h"
#include "verifier.h"
#include "config.h"
#include "db.h"
#include "ratelimit.h"
#include "registry.h"
#include "util.h"

/* Named limits; each can be changed with the variable in brackets. */
#define TD_DEFAULT_MAX_MESSAGE_BYTES (16 * 1024 * 1024) /* EE_TUNNEL_MAX_MESSAGE_BYTES */
#define TD_DEFAULT_MAX_BODY_BYTES (8 * 1024 * 1024)     /* EE_PROXY_MAX_BODY_BYTES */
#define TD_DEFAULT_MAX_INFLIGHT 256                     /* EE_TUNNEL_MAX_INFLIGHT */
#define TD_DEFAULT_MAX_PENDING_PER_SOURCE 64            /* EE_MAX_PENDING_PER_SOURCE */
#define TD_DEFAULT_PROXY_TIMEOUT_SEC 15                 /* EE_PROXY_TIMEOUT_SEC (the original's) */
#define TD_DEFAULT_PROXY_HEAD_TIMEOUT_SEC 10            /* EE_PROXY_HEAD_TIMEOUT_SEC */
#define TD_DEFAULT_PROXY_BODY_TIMEOUT_SEC 60            /* EE_PROXY_BODY_TIMEOUT_SEC */
#define TD_DEFAULT_REGISTER_TIMEOUT_SEC 30              /* EE_REGISTER_TIMEOUT_SEC */
#define TD_DEFAULT_MAX_AGENTS 20000                     /* EE_MAX_AGENTS */
#define TD_DEFAULT_CONNECT_RATE 120                     /* EE_CONNECT_RATE_LIMIT, a minute */
#define TD_DEFAULT_DRAIN_SEC 10                         /* EE_DRAIN_TIMEOUT_SEC */
#define TD_DEFAULT_VERIFY_THREADS 2                     /* EE_VERIFY_THREADS */
#define TD_DEFAULT_VERIFY_QUEUE 4096                    /* EE_VERIFY_QUEUE */
#define TD_RETRY_ATTEST_SEC 60 /* an undecidable periodic attestation is asked again after this */
#define TD_WRITE_CHUNK (64 * 1024) /* bytes written per writeable callback */
#define TD_REQUEST_ID_LEN 24       /* hex characters */
#define TD_SERVICE_BUFFER 65536    /* lws pt_serv_buf_size: the loop's read buffer */
#define TD_REQUEST_ID_PREFIX_LEN 12 /* of them random, the other 12 a counter */
#define TD_APP_BUCKETS 4096
#define TD_JOB_BUCKETS 1024 /* jobs by request id counter (job.c) */

struct tunneld_config {
	struct ee_config base;
	int max_message_bytes;
	int max_body_bytes;
	int max_inflight;
	int max_pending_per_source;
	int proxy_timeout_sec;
	int proxy_head_timeout_sec; /* a request head must arrive within this of its first byte */
	int proxy_body_timeout_sec; /* its body within this of the end of the head */
	int register_timeout_sec;
	int max_agents;
	int connect_rate_limit; /* sockets one client may open a minute; 0: no limit */
	int drain_sec;
	int verify_threads;
	int verify_queue;
	struct verifier_options verifier;
};

int tunneld_config_load(struct tunneld_config *cfg, struct ee_error *err);

struct job;
struct app_entry;

/* One outgoing websocket message, written in TD_WRITE_CHUNK fragments. */
struct out_msg {
	struct out_msg *next;
	size_t len;
	size_t sent;
	unsigned char data[]; /* LWS_PRE bytes of headroom, then the text */
};

enum session_state {
	SESSION_CONNECTED,  /* the socket is open; nothing registered yet */
	SESSION_REGISTERED, /* register accepted; the first attestation is pending */
	SESSION_ATTESTED,   /* attested at least once: may carry traffic */
	SESSION_CLOSING,    /* a final status is being sent, then it closes */
};

/* One agent websocket.  Created on ESTABLISHED, destroyed on CLOSED. */
struct session {
	struct tunneld *td;
	struct lws *wsi;
	uint64_t id;                    /* never reused: verdicts find their session by it */
	bool verifying;                 /* an attestation is with the verifier threads */
	enum session_state state;
	char peer[64];
	bool holds_source_slot;         /* counted in its address's unattested sockets */
	bool replaced;                  /* its agent_id lives on in a newer session */
	char agent_id[EE_NODE_ID_MAX + 1];
	char app_name[EE_APP_NAME_MAX + 1];
	/* From the register message, in one allocation (registration) sized to
	 * them: an idle tunnel's memory is mostly its session (docs/PERFORMANCE.md).
	 * "" until then. */
	const char *repo, *release_tag, *network;
	char *registration;
	char tunnel_id[EE_APP_NAME_MAX + 24];
	bool sealed;
	bool attestation_valid;
	bool health_pass;
	int64_t expires_at_ms;          /* registration expiry (wall clock) */
	/* attestation in progress */
	char nonce[ATTEST_NONCE_HEX_LEN + 1];
	int64_t nonce_sent_mono_ms;
	bool attesting;
	lws_sorted_usec_list_t sul_deadline; /* the attestation deadline */
	lws_sorted_usec_list_t sul_periodic; /* the next periodic attestation */
	lws_sorted_usec_list_t sul_health;   /* the health watchdog */
	lws_sorted_usec_list_t sul_register; /* a socket must register in time */
	/* incoming message being reassembled */
	struct buf rx;
	bool rx_overflow;
	/* outgoing */
	struct out_msg *outq_head, *outq_tail;
	size_t outq_bytes;
	bool close_after_flush;
	int close_code;
	/* traffic */
	struct job *jobs; /* in flight on this tunnel */
	int inflight;
	struct app_entry *app;
	struct session *app_next, *app_prev;
	struct session *all_next, *all_prev;
};

/* The live sessions serving one app name. */
struct app_entry {
	struct session *sessions;
	unsigned int next_pick;
	struct app_entry *bucket_next;
	const char *repo; /* in the same allocation, after name */
	char name[];
};

/* Per-source-address accounting of sockets that have not attested yet. */
struct source_count {
	char addr[64];
	int pending;
	struct source_count *next;
};

struct store;
struct verify_pool;

/* One attestation on its way through the verifier threads. */
struct verify_request {
	struct verify_request *next;
	uint64_t session_id;
	char nonce[ATTEST_NONCE_HEX_LEN + 1];
	char network[REGISTRY_NETWORK_MAX + 1];
	char repo[REGISTRY_REPO_MAX + 1];
	char release_tag[REGISTRY_TAG_MAX + 1];
	char *quote_b64;
	char *report_data_hex;
	char *measurements_json;
	struct attest_verdict verdict; /* filled by the worker */
};

struct tunneld {
	struct tunneld_config cfg;
	struct registry_policy policy;
	struct lws_context *context;
	struct lws_vhost *control_vhost, *proxy_vhost;
	struct ee_db *db;
	struct store *store;
	struct verify_pool *verify_pool;
	uint64_t next_session_id;
	/* request ids: a random prefix drawn once, then a counter (job.c, job_create) */
	char request_id_prefix[TD_REQUEST_ID_PREFIX_LEN + 1];
	uint64_t next_request_seq;
	struct job *jobs_by_seq[TD_JOB_BUCKETS]; /* every job, by seq % TD_JOB_BUCKETS */
	/*
	 * Jobs waiting for an agent's answer, oldest first.  Every job gets the
	 * same EE_PROXY_TIMEOUT_SEC, so this order is also the order of their
	 * deadlines, and one timer (for the oldest) serves them all: lws keeps
	 * its timers in a sorted list, and a timer per request cost an
	 * insertion walk over every other timer per request.
	 */
	struct job *waiting_head, *waiting_tail;
	lws_sorted_usec_list_t sul_waiting;
	bool waiting_timer_set;
	struct session *sessions;
	int session_count;
	struct app_entry *apps[TD_APP_BUCKETS];
	struct source_count *sources;
	struct ratelimit *connect_limit; /* sockets opened per client and minute */
	struct job *unassigned; /* jobs waiting for nothing: refused or done, being written */
	bool draining;
	bool stop;
	int64_t drain_deadline_mono_ms;
	lws_sorted_usec_list_t sul_drain;
};

/* What lws keeps per connection on the control listener (session.c, control_http.c). */
struct conn_data {
	struct session *session;       /* websocket connections */
	struct control_conn *http;     /* HTTP connections */
};

/* session.c */
extern const struct lws_protocols tunneld_control_protocol;
void session_queue_json(struct session *s, struct json_object *msg);
/* A message of len bytes to fill at data + LWS_PRE (one more for a NUL); NULL when out of memory. */
struct out_msg *session_msg_new(size_t len);
/* Queues m (taken) for s's agent. */
void session_queue_msg(struct session *s, struct out_msg *m);
void session_send_status(struct session *s, const char *state, const char *reason, bool close);
bool session_allowed(const struct session *s, int64_t now_ms);
void session_close_all(struct tunneld *td);

void session_on_verdict(struct tunneld *td, uint64_t session_id, const struct attest_verdict *v);

/* verify_pool.c */
int verify_pool_start(struct tunneld *td, const struct verifier_options *opts, int threads,
                      struct verify_pool **out);
/* -1 when the queue is full (EE_VERIFY_QUEUE) or stopping; the caller keeps r then. */
int verify_pool_submit(struct verify_pool *pool, struct verify_request *r);
/* Hands finished verdicts to their sessions; called on the loop when woken. */
void verify_pool_collect(struct verify_pool *pool);
void verify_pool_stop(struct verify_pool *pool);
void verify_request_free(struct verify_request *r);

/* route.c */
struct app_entry *route_find(struct tunneld *td, const char *app);
struct app_entry *route_get(struct tunneld *td, const char *app, const char *repo);
void route_add(struct tunneld *td, struct session *s);
void route_remove(struct tunneld *td, struct session *s);
/* An allowed session of app with room for one more request, least busy first. */
struct session *route_pick(struct tunneld *td, const char *app, const struct session *exclude);
int source_acquire(struct tunneld *td, const char *addr);
void source_release(struct tunneld *td, const char *addr);

/* job.c: a proxied request and its answer. */
enum job_origin { JOB_ORIGIN_CONTROL, JOB_ORIGIN_PROXY };

struct job_request {
	char method[17];
	char *path;                  /* owned */
	char *headers_json;          /* owned: a JSON object of strings, name -> value, as sent */
	size_t headers_json_len;
	unsigned char *body;         /* owned */
	size_t body_len;
};

struct job {
	struct tunneld *td;
	char request_id[TD_REQUEST_ID_LEN + 1];
	char app[EE_APP_NAME_MAX + 1];
	struct job_request req;
	struct session *session;     /* the tunnel it is in flight on, or NULL */
	struct job *next, *prev;     /* in session->jobs */
	int attempts;
	uint64_t seq;                /* the counter in request_id */
	struct job *seq_next;        /* in td->jobs_by_seq */
	struct job *wait_next, *wait_prev; /* in td->waiting_head.. while timed */
	bool waiting;
	int64_t deadline_ms;         /* time_monotonic_ms() at which it times out */
	/* where the answer goes */
	enum job_origin origin;
	void *origin_conn;           /* control_http's or proxy_http's connection */
	/* the answer */
	bool done;
	int status;
	struct json_object *resp_headers; /* owned */
	unsigned char *resp_body;         /* owned */
	size_t resp_len;
};

struct job *job_create(struct tunneld *td, const char *app, enum job_origin origin,
                       void *origin_conn, struct job_request *req);
/* Sends the job to an allowed agent or answers it as resolve would refuse it. */
void job_start(struct job *j);
/* The agent answered: called by session.c with the parsed proxy_response. */
void job_on_response(struct session *s, const char *request_id, int status,
                     struct json_object *headers, const char *body_b64, size_t body_b64_len);
/*
 * The agent's proxy_response for request_id could not be read (reason is
 * tunnel_msg_parse's): 502 invalid_proxy_response now, not 504 at the
 * timeout.
 */
void job_on_unreadable_response(struct session *s, const char *request_id, const char *reason);
/* The tunnel closed under its jobs: retried elsewhere when safe, else 502. */
void job_on_session_closed(struct session *s);
/* The client went away: forget the job. */
void job_cancel(struct job *j);
void job_destroy(struct job *j);
/* Delivers the answer to the job's origin (control_http.c / proxy_http.c). */
void control_http_job_done(struct job *j);
void proxy_http_job_done(struct job *j);

/* control_http.c, proxy_http.c */
extern const struct lws_protocols tunneld_proxy_protocol;
int control_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                          void *in, size_t len);

/* store.c: database writes, batched and retried. */
int store_create(struct tunneld *td, struct store **out);
void store_destroy(struct store *st);
/* Writes everything queued now (used at shutdown); returns 0 when the queue is empty. */
int store_flush_now(struct store *st);
/* Once the event loop exists: writes what was queued before it. */
void store_start(struct store *st);
/* Every agent disconnected as of now_ms (the start-up write, when it could not be made at once). */
void store_disconnect_all(struct store *st, int64_t now_ms);
/*
 * How long the event loop's own database handle waits for another writer:
 * briefly, so a lock held elsewhere delays the queued writes (retried with
 * backoff) instead of stalling every tunnel.
 */
#define TD_LOOP_BUSY_TIMEOUT_MS 20
void store_register(struct store *st, const struct session *s, int64_t now_ms);
void store_attestation(struct store *st, const struct session *s, const char *status,
                       int64_t now_ms);
void store_health(struct store *st, const struct session *s, const char *status, int64_t now_ms);
void store_connection(struct store *st, const struct session *s, bool connected, int64_t now_ms);
void store_event(struct store *st, const char *agent_id, const char *type, const char *detail,
                 int64_t now_ms);

#endif
