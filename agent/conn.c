/*
 * conn.c - the tunnel to the control plane (docs/PROTOCOL.md), on the
 * libwebsockets event loop.
 *
 * Connects outbound (ws:// or wss:// with the server's certificate
 * checked), registers, hands attestation challenges to the attestation
 * thread and proxied requests to the backend pool, sends heartbeats once
 * attested, and reconnects forever: the delay doubles from
 * EE_RECONNECT_DELAY_SEC up to EE_RECONNECT_MAX_SEC, each one drawn at
 * random from its upper half so that a fleet of agents does not come back
 * all at once, and starts again from the bottom after an attestation.
 * A websocket ping after EE_PING_INTERVAL_SEC of silence finds a control
 * plane that vanished without closing.
 */
#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "attest.h"
#include "timeutil.h"
#include "log.h"
#include "tunnel_msg.h"
#include "util.h"

#define TUNNEL_VERSION "1"
#define RX_INITIAL 4096

struct conn_timers {
	struct agent *agent;
	lws_sorted_usec_list_t reconnect;
	lws_sorted_usec_list_t health;
	lws_sorted_usec_list_t stop;
	lws_retry_bo_t idle_policy;
	char host_header[300];
};


const char *agent_state_name(enum agent_state state)
{
	switch (state) {
	case AGENT_WAITING_SOURCE: return "waiting_for_quote_source";
	case AGENT_DISCONNECTED: return "disconnected";
	case AGENT_CONNECTING: return "connecting";
	case AGENT_REGISTERED: return "registered";
	case AGENT_ATTESTED: return "attested";
	}
	return "unknown";
}

static void set_state(struct agent *a, enum agent_state state)
{
	if (a->state != state) {
		a->state = state;
		a->state_since_ms = time_now_ms();
	}
}

static void set_reason(struct agent *a, const char *reason)
{
	snprintf(a->last_reason, sizeof(a->last_reason), "%s", reason ? reason : "");
}

static struct conn_timers *timers(struct agent *a)
{
	return a->timers;
}

/* --- sending --- */

static void send_queue_clear(struct agent *a)
{
	while (a->send_head) {
		struct outbox_msg *next = a->send_head->next;
		outbox_msg_free(a->send_head);
		a->send_head = next;
	}
	a->send_tail = NULL;
	a->send_offset = 0;
}

static void send_msg(struct agent *a, struct outbox_msg *m)
{
	if (!a->wsi || m->generation != a->generation) {
		outbox_msg_free(m); /* made for a connection that is gone */
		return;
	}
	m->next = NULL;
	if (a->send_tail)
		a->send_tail->next = m;
	else
		a->send_head = m;
	a->send_tail = m;
	lws_callback_on_writable(a->wsi);
}

static void send_text(struct agent *a, const char *text)
{
	struct outbox_msg *m = outbox_msg_new(a->generation, text, strlen(text));
	if (m)
		send_msg(a, m);
	else
		log_error("out of memory queueing a message");
}

/* Writes one frame of the oldest message; long messages go as 64 KiB fragments. */
static int write_some(struct agent *a, struct lws *wsi)
{
	struct outbox_msg *m = a->send_head;
	if (!m)
		return 0;
	size_t left = m->len - a->send_offset;
	size_t chunk = left > AGENT_FRAME_FRAGMENT ? AGENT_FRAME_FRAGMENT : left;
	int flags = a->send_offset == 0 ? LWS_WRITE_TEXT : LWS_WRITE_CONTINUATION;
	if (chunk < left)
		flags |= LWS_WRITE_NO_FIN;
	/* lws_write uses the LWS_PRE bytes before the fragment: already sent, or headroom. */
	int n = lws_write(wsi, (unsigned char *)m->text + a->send_offset, chunk,
	                  (enum lws_write_protocol)flags);
	if (n < (int)chunk)
		return -1;
	a->send_offset += chunk;
	if (a->send_offset == m->len) {
		a->send_head = m->next;
		if (!a->send_head)
			a->send_tail = NULL;
		a->send_offset = 0;
		outbox_msg_free(m);
	}
	if (a->send_head)
		lws_callback_on_writable(wsi);
	return 0;
}

/* --- reconnecting --- */

static void connect_now(lws_sorted_usec_list_t *sul);

static void schedule_reconnect(struct agent *a)
{
	if (a->stopping)
		return;
	const struct agent_config *cfg = a->cfg;
	int64_t delay = cfg->reconnect_delay_ms;
	for (int i = 0; i < a->attempt && delay < cfg->reconnect_max_ms; i++)
		delay *= 2;
	if (delay > cfg->reconnect_max_ms)
		delay = cfg->reconnect_max_ms;
	uint32_t r = 0;
	util_random_bytes(&r, sizeof(r));
	delay = delay / 2 + (int64_t)(r % (uint32_t)(delay / 2 + 1));
	a->attempt++;
	log_debug("reconnecting in %lld ms", (long long)delay);
	lws_sul_schedule(a->context, 0, &timers(a)->reconnect, connect_now,
	                 (lws_usec_t)delay * LWS_US_PER_MS);
}

static void connect_now(lws_sorted_usec_list_t *sul)
{
	struct agent *a = lws_container_of(sul, struct conn_timers, reconnect)->agent;
	if (a->stopping || a->wsi)
		return;
	if (!attester_source_ready(a->attester)) {
		set_state(a, AGENT_WAITING_SOURCE);
		char why[EE_REASON_MAX];
		attester_last_error(a->attester, why, sizeof(why));
		set_reason(a, why);
		schedule_reconnect(a);
		return;
	}
	const struct agent_config *cfg = a->cfg;
	struct lws_client_connect_info info;
	memset(&info, 0, sizeof(info));
	info.context = a->context;
	info.vhost = a->client_vhost;
	info.address = cfg->control_host;
	info.port = cfg->control_port;
	info.path = cfg->control_path;
	info.host = timers(a)->host_header;
	info.origin = timers(a)->host_header;
	info.ssl_connection = cfg->control_tls ? LCCSCF_USE_SSL : 0;
	/* HTTP/1.1 only: the websocket upgrade, never HTTP/2 through ALPN. */
	info.alpn = "http/1.1";
	info.local_protocol_name = "ee-agent";
	info.retry_and_idle_policy = &timers(a)->idle_policy;
	info.userdata = a;
	set_state(a, AGENT_CONNECTING);
	a->wsi = lws_client_connect_via_info(&info);
	if (!a->wsi && a->state == AGENT_CONNECTING) {
		set_state(a, AGENT_DISCONNECTED);
		if (!a->last_reason[0])
			set_reason(a, "connect_failed");
		schedule_reconnect(a);
	}
}

/* --- heartbeats --- */

static void health_tick(lws_sorted_usec_list_t *sul)
{
	struct agent *a = lws_container_of(sul, struct conn_timers, health)->agent;
	if (a->wsi && a->state == AGENT_ATTESTED) {
		if (a->cfg->health_path) {
			struct backend_job *job = backend_job_health(a->generation);
			if (!job || backend_pool_submit(a->pool, job) != 0) {
				backend_job_free(job);
				send_text(a, "{\"type\":\"health\",\"status\":\"fail\"}");
			}
		} else {
			send_text(a, "{\"type\":\"health\",\"status\":\"pass\"}");
		}
	}
	lws_sul_schedule(a->context, 0, &timers(a)->health, health_tick,
	                 (lws_usec_t)a->cfg->health_interval_ms * LWS_US_PER_MS);
}

/* --- receiving --- */

static void on_status(struct agent *a, const struct tunnel_msg *msg)
{
	const char *state = msg->state ? msg->state : "";
	const char *reason = msg->reason ? msg->reason : "";
	if (strcmp(state, "ok") == 0 && strcmp(reason, "attested") == 0) {
		if (a->state != AGENT_ATTESTED)
			log_info("attested by the control plane (%s on %s)", a->cfg->app_name,
			         a->cfg->network);
		set_state(a, AGENT_ATTESTED);
		a->attempt = 0;
		a->attestations++;
		set_reason(a, "attested");
		return;
	}
	/* The control plane's reasons are short identifiers; keep them printable in the log. */
	char safe[EE_REASON_MAX];
	size_t n = 0;
	for (const char *p = reason; *p && n < sizeof(safe) - 1; p++)
		safe[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	safe[n] = '\0';
	if (strcmp(state, "invalid") == 0)
		log_warn("control plane refused: %s", safe);
	else
		log_info("control plane status %s: %s", strcmp(state, "ok") == 0 ? "ok" : "other",
		         safe);
	set_reason(a, safe);
}

/* Hands a checked request to the backend pool, or answers 503 agent_busy. */
static void submit_proxy_job(struct agent *a, struct backend_job *job)
{
	char request_id[AGENT_REQUEST_ID_MAX + 1];
	snprintf(request_id, sizeof(request_id), "%s", backend_job_request_id(job));
	if (backend_pool_submit(a->pool, job) != 0) {
		backend_job_free(job);
		struct outbox_msg *m =
			backend_error_response(a->generation, request_id, 503, "agent_busy");
		if (m)
			send_msg(a, m);
	}
}

static void on_proxy_request(struct agent *a, const struct tunnel_msg *msg)
{
	struct ee_error err;
	struct backend_job *job = backend_job_from_request(a->cfg, msg->root, a->generation, &err);
	if (!job) {
		if (msg->request_id && *msg->request_id &&
		    strlen(msg->request_id) <= AGENT_REQUEST_ID_MAX) {
			struct outbox_msg *m = backend_error_response(a->generation, msg->request_id,
			                                              err.status, err.reason);
			if (m)
				send_msg(a, m);
		} else {
			log_warn("proxy_request without a usable request_id: ignored");
		}
		return;
	}
	submit_proxy_job(a, job);
}

static void on_message(struct agent *a, const char *text, size_t len)
{
	/* The usual proxy_request needs no json-c tree (backend.c); anything else does. */
	struct backend_job *job = backend_job_from_text(a->cfg, text, len, a->generation);
	if (job) {
		submit_proxy_job(a, job);
		return;
	}
	struct tunnel_msg msg;
	struct ee_error err;
	if (tunnel_msg_parse(text, len, &msg, &err) != 0) {
		log_warn("control plane sent a message we cannot read: %s", err.reason);
		/* A request that names its id is refused now, not left to the control plane's timeout. */
		char request_id[AGENT_REQUEST_ID_MAX + 1];
		if (tunnel_msg_request_id(text, len, TUNNEL_MSG_PROXY_REQUEST, request_id,
		                          sizeof(request_id))) {
			struct ee_error refusal;
			ee_fail_detail(&refusal, 400, "invalid_proxy_request", err.reason);
			struct outbox_msg *m = backend_error_response(a->generation, request_id,
			                                              refusal.status, refusal.reason);
			if (m)
				send_msg(a, m);
		}
		return;
	}
	switch (msg.type) {
	case TUNNEL_MSG_ATTEST_REQUEST:
		if (!msg.nonce || strlen(msg.nonce) != ATTEST_NONCE_HEX_LEN) {
			log_warn("attest_request without a valid nonce: ignored");
			break;
		}
		log_debug("attest_request (%s)", msg.reason ? msg.reason : "");
		attester_request(a->attester, a->generation, msg.nonce);
		break;
	case TUNNEL_MSG_PROXY_REQUEST:
		on_proxy_request(a, &msg);
		break;
	case TUNNEL_MSG_STATUS:
		on_status(a, &msg);
		break;
	default:
		log_debug("ignored a %s message", tunnel_msg_type_name(msg.type));
		break;
	}
	tunnel_msg_free(&msg);
}

static int on_receive(struct agent *a, struct lws *wsi, const void *in, size_t len)
{
	if (a->close_code)
		return 0; /* closing: the rest is not read */
	if (lws_frame_is_binary(wsi)) {
		a->rx.len = 0;
		return 0; /* binary frames mean nothing in this protocol */
	}
	if (a->rx.len + len > a->cfg->max_message_bytes) {
		log_error("control plane message over %zu bytes: closing", a->cfg->max_message_bytes);
		set_reason(a, "message_too_large");
		/* Closed from the writable callback, where lws lets a close frame be sent. */
		a->close_code = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
		a->rx.len = 0;
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (a->rx.len + len + 1 > a->rx.cap) {
		size_t cap = a->rx.cap ? a->rx.cap : RX_INITIAL;
		while (cap < a->rx.len + len + 1)
			cap *= 2;
		char *p = realloc(a->rx.data, cap);
		if (!p)
			return -1;
		a->rx.data = p;
		a->rx.cap = cap;
	}
	memcpy(a->rx.data + a->rx.len, in, len);
	a->rx.len += len;
	if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
		a->rx.data[a->rx.len] = '\0';
		on_message(a, a->rx.data, a->rx.len);
		a->rx.len = 0;
		/* A large message's buffer is not kept for the life of the tunnel. */
		if (a->rx.cap > 1024 * 1024) {
			free(a->rx.data);
			a->rx.data = NULL;
			a->rx.cap = 0;
		}
	}
	return 0;
}

/* --- the outbox and shutdown, in the loop --- */

static void drain_outbox(struct agent *a)
{
	struct outbox_msg *m = outbox_take_all(&a->outbox);
	while (m) {
		struct outbox_msg *next = m->next;
		if (m->is_attest_failure) {
			/* No quote: the control plane would wait out the deadline; start afresh instead. */
			if (a->wsi && m->generation == a->generation) {
				set_reason(a, m->text);
				lws_set_timeout(a->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
			}
			outbox_msg_free(m);
		} else {
			send_msg(a, m);
		}
		m = next;
	}
}

static void stop_deadline(lws_sorted_usec_list_t *sul)
{
	struct agent *a = lws_container_of(sul, struct conn_timers, stop)->agent;
	log_warn("the tunnel did not close in time; leaving anyway");
	a->done = true;
}

static void disconnected(struct agent *a, const char *why)
{
	a->wsi = NULL;
	a->close_code = 0;
	a->generation++;
	a->rx.len = 0;
	send_queue_clear(a);
	set_state(a, AGENT_DISCONNECTED);
	if (why)
		set_reason(a, why);
	if (a->stopping) {
		a->done = true;
		return;
	}
	schedule_reconnect(a);
}

static int callback_agent(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
	struct agent *a = lws_context_user(lws_get_context(wsi));
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
		char why[EE_REASON_MAX];
		snprintf(why, sizeof(why), "connect_failed: %s", in ? (const char *)in : "unknown");
		/* Once per streak: an agent waiting for the control plane would fill the log. */
		if (strcmp(why, a->last_reason) != 0)
			log_warn("cannot reach the control plane at %s: %s", a->cfg->control_url,
			         in ? (const char *)in : "unknown");
		if (wsi == a->wsi || !a->wsi)
			disconnected(a, why);
		return 0;
	}
	case LWS_CALLBACK_CLIENT_ESTABLISHED: {
		a->wsi = wsi;
		a->close_code = 0;
		a->generation++;
		a->connects++;
		a->rx.len = 0;
		send_queue_clear(a);
		set_state(a, AGENT_REGISTERED);
		set_reason(a, "registering");
		log_info("connected to the control plane; registering %s as %s", a->cfg->app_name,
		         a->cfg->agent_id);
		struct json_object *reg = json_object_new_object();
		if (!reg)
			return -1;
		const struct agent_config *cfg = a->cfg;
		json_object_object_add(reg, "type", json_object_new_string("register"));
		json_object_object_add(reg, "repo", json_object_new_string(cfg->repo));
		json_object_object_add(reg, "release_tag", json_object_new_string(cfg->release_tag));
		json_object_object_add(reg, "app_name", json_object_new_string(cfg->app_name));
		json_object_object_add(reg, "network", json_object_new_string(cfg->network));
		json_object_object_add(reg, "agent_id", json_object_new_string(cfg->agent_id));
		json_object_object_add(reg, "tunnel_version", json_object_new_string(TUNNEL_VERSION));
		const char *text = json_object_to_json_string_ext(
			reg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (text)
			send_text(a, text);
		json_object_put(reg);
		return text ? 0 : -1;
	}
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (wsi != a->wsi)
			return -1;
		return on_receive(a, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (wsi != a->wsi)
			return -1;
		if (a->stopping || a->close_code) {
			lws_close_reason(wsi,
			                 a->close_code ? (enum lws_close_status)a->close_code
			                               : LWS_CLOSE_STATUS_GOINGAWAY,
			                 NULL, 0);
			return -1;
		}
		return write_some(a, wsi);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (len >= 2 && in) {
			const unsigned char *p = in;
			log_info("the control plane closed the tunnel (%d)", (p[0] << 8) | p[1]);
		}
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (wsi == a->wsi) {
			log_info("tunnel closed");
			disconnected(a, NULL);
		}
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (!a)
			return 0;
		drain_outbox(a);
		if (a->stop_requested)
			agent_conn_stop(a);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols conn_protocols[] = {
	{"ee-agent", callback_agent, 0, 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

const struct lws_protocols *agent_conn_protocols(void)
{
	return conn_protocols;
}

int agent_conn_init(struct agent *a, struct ee_error *err)
{
	struct conn_timers *t = calloc(1, sizeof(*t));
	if (!t)
		return ee_fail(err, 500, "out_of_memory");
	const struct agent_config *cfg = a->cfg;
	bool default_port = cfg->control_port == (cfg->control_tls ? 443 : 80);
	bool v6 = strchr(cfg->control_host, ':') != NULL;
	if (default_port)
		snprintf(t->host_header, sizeof(t->host_header), v6 ? "[%s]" : "%s",
		         cfg->control_host);
	else
		snprintf(t->host_header, sizeof(t->host_header), v6 ? "[%s]:%d" : "%s:%d",
		         cfg->control_host, cfg->control_port);
	t->idle_policy.secs_since_valid_ping = (uint16_t)cfg->ping_interval_sec;
	t->idle_policy.secs_since_valid_hangup = (uint16_t)(cfg->ping_interval_sec * 2 + 5);
	t->agent = a;
	a->timers = t;
	a->state = AGENT_DISCONNECTED;
	a->state_since_ms = time_now_ms();
	return 0;
}

void agent_conn_start(struct agent *a)
{
	lws_sul_schedule(a->context, 0, &timers(a)->reconnect, connect_now, 1);
	lws_sul_schedule(a->context, 0, &timers(a)->health, health_tick,
	                 (lws_usec_t)a->cfg->health_interval_ms * LWS_US_PER_MS);
}

void agent_conn_stop(struct agent *a)
{
	if (a->stopping)
		return;
	a->stopping = true;
	lws_sul_cancel(&timers(a)->reconnect);
	lws_sul_cancel(&timers(a)->health);
	if (!a->wsi) {
		a->done = true;
		return;
	}
	if (a->state == AGENT_CONNECTING)
		lws_set_timeout(a->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC); /* no tunnel yet */
	else
		lws_callback_on_writable(a->wsi);
	lws_sul_schedule(a->context, 0, &timers(a)->stop, stop_deadline, 3 * LWS_USEC_PER_SEC);
}

void agent_conn_free(struct agent *a)
{
	send_queue_clear(a);
	free(a->rx.data);
	a->rx.data = NULL;
	free(a->timers);
	a->timers = NULL;
}
