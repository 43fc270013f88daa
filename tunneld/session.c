/*
 * session.c - one agent's websocket: the tunnel protocol of DESIGN.md
 * section 4, message for message, with the original service's reasons.
 *
 *   register        -> checks, then attest_request (reason "register")
 *   attest_response -> nonce, deadline, verifier; status ok "attested"
 *   (every EE_ATTEST_INTERVAL_SEC) attest_request (reason "periodic")
 *   health          -> recorded; the watchdog fires after EE_HEALTH_TIMEOUT_SEC
 *   proxy_response  -> handed to job.c by request_id
 *
 * Events settlement reads are recorded exactly where the original records
 * them: attest_miss on a failed or late attestation, health_miss on a
 * heartbeat timeout and on any disconnect of a registered agent — except a
 * disconnect the control plane itself causes by shutting down.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "log.h"
#include "netaddr.h"
#include "nodes.h"
#include "timeutil.h"
#include "tunnel_msg.h"
#include "tunneld.h"

#define SESSION_MAX_OUTQ_BYTES (64 * 1024 * 1024) /* an agent that stops reading is dropped */
#define SESSION_RX_KEEP 1024 /* a message buffer larger than this is freed once handled */

static int64_t now_ms(void) { return time_now_ms(); }

bool session_allowed(const struct session *s, int64_t now)
{
	return s->state == SESSION_ATTESTED && !s->close_after_flush && s->attestation_valid &&
	       s->health_pass && now < s->expires_at_ms &&
	       (s->sealed || !registry_network_requires_sealed(s->network));
}

struct out_msg *session_msg_new(size_t len)
{
	struct out_msg *m = malloc(sizeof(*m) + LWS_PRE + len + 1);
	if (m) {
		m->next = NULL;
		m->len = len;
		m->sent = 0;
	}
	return m;
}

void session_queue_msg(struct session *s, struct out_msg *m)
{
	size_t len = m->len;
	if (s->close_after_flush) {
		free(m);
		return;
	}
	if (s->outq_bytes + len > SESSION_MAX_OUTQ_BYTES) {
		free(m);
		static struct log_limit limit = {.burst = 10};
		ee_log_limited(&limit, EE_LOG_WARN, "agent %s (%s) is not reading its tunnel; closing it",
		               s->agent_id, s->peer);
		s->close_after_flush = true;
		s->close_code = LWS_CLOSE_STATUS_POLICY_VIOLATION;
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_ASYNC);
		return;
	}
	if (s->outq_tail)
		s->outq_tail->next = m;
	else
		s->outq_head = m;
	s->outq_tail = m;
	s->outq_bytes += len;
	lws_callback_on_writable(s->wsi);
}

void session_queue_json(struct session *s, struct json_object *msg)
{
	size_t len;
	const char *text = json_text(msg, &len);
	if (s->close_after_flush)
		return;
	struct out_msg *m = session_msg_new(len);
	if (!m) {
		log_error("out of memory queueing a message for agent %s", s->agent_id);
		return;
	}
	memcpy(m->data + LWS_PRE, text, len);
	session_queue_msg(s, m);
}

void session_send_status(struct session *s, const char *state, const char *reason, bool close)
{
	struct json_object *o = json_object_new_object();
	json_put_string(o, "type", "status");
	json_put_string(o, "state", state);
	json_put_string(o, "reason", reason);
	session_queue_json(s, o);
	json_object_put(o);
	if (close && !s->close_after_flush) {
		s->close_after_flush = true;
		s->close_code = LWS_CLOSE_STATUS_POLICY_VIOLATION;
		lws_callback_on_writable(s->wsi);
	}
}

static void invalid(struct session *s, const char *reason, bool close)
{
	session_send_status(s, "invalid", reason, close);
}

static void attest_deadline_cb(lws_sorted_usec_list_t *sul);
static void attest_periodic_cb(lws_sorted_usec_list_t *sul);
static void health_watchdog_cb(lws_sorted_usec_list_t *sul);
static void register_deadline_cb(lws_sorted_usec_list_t *sul);

static void schedule_secs(struct session *s, lws_sorted_usec_list_t *sul, sul_cb_t cb, int secs)
{
	lws_sul_schedule(s->td->context, 0, sul, cb, (lws_usec_t)secs * LWS_US_PER_SEC);
}

static void send_attest_request(struct session *s, const char *reason)
{
	if (s->attesting || s->verifying || s->close_after_flush)
		return;
	if (util_random_hex(s->nonce, ATTEST_NONCE_HEX_LEN / 2) != 0) {
		log_error("no entropy for a nonce; closing agent %s", s->agent_id);
		invalid(s, "internal_error", true);
		return;
	}
	s->attesting = true;
	s->nonce_sent_mono_ms = time_monotonic_ms();
	struct json_object *o = json_object_new_object();
	json_put_string(o, "type", "attest_request");
	json_put_string(o, "nonce", s->nonce);
	json_put_int(o, "deadline_s", s->td->cfg.base.attest_deadline_sec);
	json_put_string(o, "reason", reason);
	session_queue_json(s, o);
	json_object_put(o);
	schedule_secs(s, &s->sul_deadline, attest_deadline_cb, s->td->cfg.base.attest_deadline_sec);
}

/*
 * Whether what happens to this session may be written as its agent's
 * state.  Agent ids are public (resolve shows them), so a socket that has
 * not attested does not speak for an agent that holds an attested tunnel:
 * its failures and its disconnect are its own, not the agent's.
 */
static bool speaks_for_agent(const struct session *s)
{
	if (s->state == SESSION_ATTESTED)
		return true;
	for (const struct session *o = s->td->sessions; o; o = o->all_next)
		if (o != s && o->state == SESSION_ATTESTED && !o->replaced &&
		    strcmp(o->agent_id, s->agent_id) == 0)
			return false;
	return true;
}

/* Marks the attestation failed, records attest_miss, answers and closes. */
static void attestation_failed(struct session *s, const char *reason, const char *event_detail)
{
	int64_t now = now_ms();
	s->attestation_valid = false;
	s->attesting = false;
	lws_sul_cancel(&s->sul_deadline);
	if (speaks_for_agent(s)) {
		store_attestation(s->td->store, s, "invalid", now);
		store_event(s->td->store, s->agent_id, "attest_miss", event_detail, now);
	}
	static struct log_limit limit = {.burst = 30};
	ee_log_limited(&limit, EE_LOG_INFO, "agent %s (%s) for %s: attestation failed: %s",
	               s->agent_id, s->peer, s->app_name, reason);
	invalid(s, reason, true);
}

static void attest_deadline_cb(lws_sorted_usec_list_t *sul)
{
	struct session *s = lws_container_of(sul, struct session, sul_deadline);
	if (!s->attesting)
		return;
	attestation_failed(s, "attestation_timeout", "timeout");
}

static void attest_periodic_cb(lws_sorted_usec_list_t *sul)
{
	struct session *s = lws_container_of(sul, struct session, sul_periodic);
	send_attest_request(s, "periodic");
	schedule_secs(s, &s->sul_periodic, attest_periodic_cb, s->td->cfg.base.attest_interval_sec);
}

static void health_watchdog_cb(lws_sorted_usec_list_t *sul)
{
	struct session *s = lws_container_of(sul, struct session, sul_health);
	if (s->state != SESSION_ATTESTED || !s->health_pass)
		return; /* one miss per failing streak, as the original */
	int64_t now = now_ms();
	s->health_pass = false;
	store_health(s->td->store, s, "fail", now);
	store_event(s->td->store, s->agent_id, "health_miss", "timeout", now);
	log_info("agent %s for %s missed its heartbeat", s->agent_id, s->app_name);
}

static void register_deadline_cb(lws_sorted_usec_list_t *sul)
{
	struct session *s = lws_container_of(sul, struct session, sul_register);
	if (s->state == SESSION_ATTESTED || s->close_after_flush)
		return;
	invalid(s, "register_timeout", true);
}

static bool text_present(const char *s) { return s && *s; }

static void on_register(struct session *s, const struct tunnel_msg *m)
{
	struct tunneld *td = s->td;
	if (s->state != SESSION_CONNECTED) {
		invalid(s, "already_registered", false);
		return;
	}
	const char *network = text_present(m->network) ? m->network : "forge-1";
	if (!registry_network_known(network)) {
		invalid(s, "invalid_network", false);
		return;
	}
	if (!text_present(m->repo) || !text_present(m->release_tag) || !text_present(m->app_name) ||
	    !text_present(m->agent_id)) {
		invalid(s, "missing_fields", false);
		return;
	}
	if (!util_valid_app_name(m->app_name, strlen(m->app_name)) ||
	    !registry_valid_repo(m->repo, strlen(m->repo)) ||
	    !registry_valid_release_tag(m->release_tag, strlen(m->release_tag)) ||
	    !util_valid_node_id(m->agent_id, strlen(m->agent_id))) {
		invalid(s, "invalid_fields", false);
		return;
	}
	/* An app name belongs to the repository that registered it first. */
	struct app_entry *e = route_find(td, m->app_name);
	bool taken = e && strcmp(e->repo, m->repo) != 0;
	if (!e) {
		char repo[REGISTRY_REPO_MAX + 1];
		bool found;
		struct ee_error err;
		if (registry_app_binding(td->db, m->app_name, repo, &found, &err) != 0) {
			invalid(s, "registry_unavailable", true);
			return;
		}
		taken = found && strcmp(repo, m->repo) != 0;
	}
	if (taken) {
		static struct log_limit limit = {.burst = 10};
		ee_log_limited(&limit, EE_LOG_INFO, "agent %s (%s): app name %s is bound to another "
		               "repository", m->agent_id, s->peer, m->app_name);
		invalid(s, "app_name_taken", true);
		return;
	}
	/* An agent id held by an attested tunnel of another app or repository is
	 * not for the taking: ids are public, and the registry row is the agent's. */
	for (struct session *o = td->sessions; o; o = o->all_next) {
		if (o != s && o->state == SESSION_ATTESTED && !o->replaced &&
		    strcmp(o->agent_id, m->agent_id) == 0 &&
		    (strcmp(o->repo, m->repo) != 0 || strcmp(o->app_name, m->app_name) != 0)) {
			static struct log_limit limit = {.burst = 10};
			ee_log_limited(&limit, EE_LOG_INFO,
			               "agent id %s claimed from %s for another app or repository",
			               m->agent_id, s->peer);
			invalid(s, "agent_id_taken", true);
			return;
		}
	}
	/* The same agent on a new socket replaces its old one (a reconnect), once
	 * the new one has attested (session_on_verdict): registering alone proves
	 * nothing. */
	snprintf(s->agent_id, sizeof(s->agent_id), "%s", m->agent_id);
	snprintf(s->app_name, sizeof(s->app_name), "%s", m->app_name);
	size_t repo_len = strlen(m->repo), tag_len = strlen(m->release_tag);
	size_t network_len = strlen(network);
	char *strings = malloc(repo_len + 1 + tag_len + 1 + network_len + 1);
	if (!strings) {
		invalid(s, "internal_error", true);
		return;
	}
	free(s->registration);
	s->registration = strings;
	memcpy(strings, m->repo, repo_len + 1);
	s->repo = strings;
	strings += repo_len + 1;
	memcpy(strings, m->release_tag, tag_len + 1);
	s->release_tag = strings;
	strings += tag_len + 1;
	memcpy(strings, network, network_len + 1);
	s->network = strings;
	char suffix[17];
	if (util_random_hex(suffix, 8) != 0) {
		invalid(s, "internal_error", true);
		return;
	}
	snprintf(s->tunnel_id, sizeof(s->tunnel_id), "%s:%s", s->app_name, suffix);
	s->state = SESSION_REGISTERED;
	send_attest_request(s, "register");
}

static void on_attest_response(struct session *s, const struct tunnel_msg *m)
{
	struct tunneld *td = s->td;
	if (!s->attesting || s->verifying) {
		invalid(s, "unexpected_attestation", false);
		return;
	}
	if (!m->nonce || strcmp(m->nonce, s->nonce) != 0) {
		s->attesting = false;
		lws_sul_cancel(&s->sul_deadline);
		invalid(s, "nonce_mismatch", true);
		return;
	}
	if (time_monotonic_ms() - s->nonce_sent_mono_ms >
	    (int64_t)td->cfg.base.attest_deadline_sec * 1000) {
		s->attesting = false;
		lws_sul_cancel(&s->sul_deadline);
		invalid(s, "attestation_timeout", true);
		return;
	}
	/* The nonce is used once, whatever the verdict. */
	s->attesting = false;
	lws_sul_cancel(&s->sul_deadline);
	struct verify_request *r = calloc(1, sizeof(*r));
	struct json_object *measurements = m->measurements;
	if (r) {
		r->session_id = s->id;
		memcpy(r->nonce, s->nonce, sizeof(r->nonce));
		snprintf(r->network, sizeof(r->network), "%s", s->network);
		snprintf(r->repo, sizeof(r->repo), "%s", s->repo);
		snprintf(r->release_tag, sizeof(r->release_tag), "%s", s->release_tag);
		r->quote_b64 = m->quote ? strndup(m->quote, m->quote_len) : NULL;
		r->report_data_hex = m->report_data ? strdup(m->report_data) : NULL;
		r->measurements_json =
			measurements ? strdup(json_object_to_json_string_ext(measurements, JSON_C_TO_STRING_PLAIN))
			             : NULL;
	}
	memset(s->nonce, 0, sizeof(s->nonce));
	if (!r || (m->quote && !r->quote_b64) || verify_pool_submit(td->verify_pool, r) != 0) {
		verify_request_free(r);
		static struct log_limit limit = {.burst = 5};
		ee_log_limited(&limit, EE_LOG_WARN, "the verifier is saturated; agent %s must try again "
		               "later", s->agent_id);
		invalid(s, "verifier_busy", true);
		s->close_code = 1013; /* try again later */
		return;
	}
	s->verifying = true;
}

/* A verdict came back from the verifier threads. */
void session_on_verdict(struct tunneld *td, uint64_t session_id, const struct attest_verdict *v)
{
	struct session *s = td->sessions;
	while (s && s->id != session_id)
		s = s->all_next;
	if (!s || !s->verifying || s->close_after_flush)
		return; /* the socket has gone meanwhile */
	s->verifying = false;
	if (!v->verified) {
		if (v->unavailable) {
			/* Our collateral or allowlist could not be had: not the agent's miss. */
			log_warn("agent %s (%s) for %s: attestation could not be decided: %s", s->agent_id,
			         s->peer, s->app_name, v->reason);
			if (s->state == SESSION_ATTESTED) {
				/* Keep the last good attestation; ask again soon. */
				schedule_secs(s, &s->sul_periodic, attest_periodic_cb, TD_RETRY_ATTEST_SEC);
				return;
			}
			invalid(s, v->reason, true);
			return;
		}
		s->sealed = v->sealed;
		attestation_failed(s, v->reason, v->reason);
		return;
	}
	int64_t now = now_ms();
	bool first = s->state == SESSION_REGISTERED;
	if (first) {
		/* Checked again: another repository may have taken the name meanwhile. */
		struct app_entry *e = route_find(td, s->app_name);
		if (e && strcmp(e->repo, s->repo) != 0) {
			invalid(s, "app_name_taken", true);
			return;
		}
		/* The same agent on a new socket replaces its old one (a reconnect). */
		for (struct session *o = td->sessions; o; o = o->all_next) {
			if (o != s && o->state != SESSION_CONNECTED && !o->close_after_flush &&
			    strcmp(o->agent_id, s->agent_id) == 0) {
				log_info("agent %s reconnected from %s; closing its old tunnel", s->agent_id,
				         s->peer);
				o->replaced = true;
				route_remove(td, o);
				invalid(o, "replaced", true);
			}
		}
		route_add(td, s);
		if (s->holds_source_slot) {
			source_release(td, s->peer);
			s->holds_source_slot = false;
		}
		lws_sul_cancel(&s->sul_register);
		s->state = SESSION_ATTESTED;
		log_info("agent %s (%s) attested for %s on %s", s->agent_id, s->peer, s->app_name,
		         s->network);
	}
	s->sealed = v->sealed;
	s->attestation_valid = true;
	s->expires_at_ms = now + (int64_t)td->cfg.base.registration_ttl_days * 86400000;
	/* Every successful attestation renews the registration, as in the original. */
	store_register(td->store, s, now);
	store_attestation(td->store, s, "valid", now);
	if (first) {
		/* A new tunnel has just proved it is alive; later health is the heartbeats' to say. */
		s->health_pass = true;
		store_health(td->store, s, "pass", now);
		store_connection(td->store, s, true, now);
		schedule_secs(s, &s->sul_health, health_watchdog_cb, td->cfg.base.health_timeout_sec);
	}
	session_send_status(s, "ok", "attested", false);
	schedule_secs(s, &s->sul_periodic, attest_periodic_cb, td->cfg.base.attest_interval_sec);
}

static void on_health(struct session *s, const struct tunnel_msg *m)
{
	if (s->state != SESSION_ATTESTED) {
		invalid(s, "not_registered", false);
		return;
	}
	/* Absent means pass and anything else but pass/fail means fail, as in the original. */
	const char *status = m->status ? m->status : "pass";
	bool pass = strcmp(status, "pass") == 0;
	s->health_pass = pass;
	store_health(s->td->store, s, pass ? "pass" : "fail", now_ms());
	schedule_secs(s, &s->sul_health, health_watchdog_cb, s->td->cfg.base.health_timeout_sec);
}

static void handle_message(struct session *s, const char *text, size_t len)
{
	struct tunnel_msg m;
	struct ee_error err;
	if (tunnel_msg_parse(text, len, &m, &err) != 0) {
		/* An answer that names its request ends that request now, not at its timeout. */
		char request_id[TD_REQUEST_ID_LEN + 1];
		if (s->state == SESSION_ATTESTED &&
		    tunnel_msg_request_id(text, len, TUNNEL_MSG_PROXY_RESPONSE, request_id,
		                          sizeof(request_id)))
			job_on_unreadable_response(s, request_id, err.reason);
		invalid(s, err.reason, false);
		return;
	}
	switch (m.type) {
	case TUNNEL_MSG_REGISTER: on_register(s, &m); break;
	case TUNNEL_MSG_ATTEST_RESPONSE: on_attest_response(s, &m); break;
	case TUNNEL_MSG_HEALTH: on_health(s, &m); break;
	case TUNNEL_MSG_PROXY_RESPONSE:
		if (s->state == SESSION_ATTESTED && m.request_id)
			job_on_response(s, m.request_id, m.http_status, m.headers, m.body_b64,
			                m.body_b64_len);
		break;
	default:
		/* Messages of the other direction are not for us. */
		invalid(s, "unknown_message", false);
	}
	tunnel_msg_free(&m);
}

static struct session *session_create(struct tunneld *td, struct lws *wsi)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->td = td;
	s->wsi = wsi;
	s->id = ++td->next_session_id;
	s->repo = s->release_tag = s->network = "";
	buf_init(&s->rx);
	/* Behind Caddy the socket's peer is Caddy; the agent is in X-Forwarded-For. */
	char peer[NETADDR_TEXT_MAX] = "", forwarded[1024] = "";
	lws_get_peer_simple(wsi, peer, sizeof(peer));
	bool has_forwarded =
		lws_hdr_copy(wsi, forwarded, (int)sizeof(forwarded), WSI_TOKEN_X_FORWARDED_FOR) > 0;
	netaddr_client(&td->cfg.base.trusted_proxies, peer, has_forwarded ? forwarded : NULL,
	               s->peer, sizeof(s->peer));
	s->all_next = td->sessions;
	if (td->sessions)
		td->sessions->all_prev = s;
	td->sessions = s;
	td->session_count++;
	return s;
}

static void session_destroy(struct session *s)
{
	struct tunneld *td = s->td;
	int64_t now = now_ms();
	/* A replaced session's agent lives on in its newer tunnel: its state is not ours to write. */
	if (s->state != SESSION_CONNECTED && s->agent_id[0] && !s->replaced && speaks_for_agent(s)) {
		store_connection(td->store, s, false, now);
		store_health(td->store, s, "fail", now);
		/* A restart of the control plane is not the provider's miss. */
		store_event(td->store, s->agent_id, td->draining ? "control_plane_disconnect" : "health_miss",
		            "disconnect", now);
	}
	job_on_session_closed(s);
	if (s->holds_source_slot)
		source_release(td, s->peer);
	route_remove(td, s);
	lws_sul_cancel(&s->sul_deadline);
	lws_sul_cancel(&s->sul_periodic);
	lws_sul_cancel(&s->sul_health);
	lws_sul_cancel(&s->sul_register);
	while (s->outq_head) {
		struct out_msg *m = s->outq_head;
		s->outq_head = m->next;
		free(m);
	}
	buf_free(&s->rx);
	free(s->registration);
	if (s->all_prev)
		s->all_prev->all_next = s->all_next;
	else
		td->sessions = s->all_next;
	if (s->all_next)
		s->all_next->all_prev = s->all_prev;
	td->session_count--;
	free(s);
}

/* Writes the next fragment of the first queued message. */
static int write_next(struct session *s)
{
	struct out_msg *m = s->outq_head;
	if (!m) {
		if (s->close_after_flush) {
			lws_close_reason(s->wsi, (enum lws_close_status)s->close_code, NULL, 0);
			return -1;
		}
		return 0;
	}
	size_t chunk = m->len - m->sent;
	if (chunk > TD_WRITE_CHUNK)
		chunk = TD_WRITE_CHUNK;
	bool first = m->sent == 0, last = m->sent + chunk == m->len;
	int flags = first ? LWS_WRITE_TEXT : LWS_WRITE_CONTINUATION;
	if (!last)
		flags |= LWS_WRITE_NO_FIN;
	/* The bytes before this fragment have been sent: lws may build the frame header there. */
	if (lws_write(s->wsi, m->data + LWS_PRE + m->sent, chunk, (enum lws_write_protocol)flags) <
	    (int)chunk)
		return -1;
	m->sent += chunk;
	if (last) {
		s->outq_head = m->next;
		if (!s->outq_head)
			s->outq_tail = NULL;
		s->outq_bytes -= m->len;
		free(m);
	}
	if (s->outq_head || s->close_after_flush)
		lws_callback_on_writable(s->wsi);
	return 0;
}

static int on_receive(struct session *s, const char *in, size_t len)
{
	struct lws *wsi = s->wsi;
	if (lws_is_first_fragment(wsi)) {
		buf_reset(&s->rx);
		s->rx_overflow = false;
	}
	if (lws_frame_is_binary(wsi))
		return 0; /* the protocol is text frames; the original ignored binary ones */
	if (!s->rx_overflow) {
		if (s->rx.len + len > (size_t)s->td->cfg.max_message_bytes) {
			s->rx_overflow = true;
			buf_reset(&s->rx);
			static struct log_limit limit = {.burst = 10};
			ee_log_limited(&limit, EE_LOG_WARN, "agent %s (%s) sent a message over %d bytes; "
			               "closing", s->agent_id, s->peer, s->td->cfg.max_message_bytes);
			session_send_status(s, "invalid", "message_too_large", true);
			s->close_code = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
		} else if (buf_append(&s->rx, in, len) != 0) {
			return -1;
		}
	}
	if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi) && !s->rx_overflow &&
	    !s->close_after_flush) {
		handle_message(s, s->rx.data ? s->rx.data : "", s->rx.len);
		/*
		 * An idle tunnel keeps no message buffer: a large one (the
		 * attest_response, a proxied body) is given back, a heartbeat's
		 * small one is reused.
		 */
		if (s->rx.cap > SESSION_RX_KEEP)
			buf_free(&s->rx);
		else
			buf_reset(&s->rx);
	}
	return 0;
}

static bool path_is_tunnel(struct lws *wsi)
{
	char uri[64];
	int n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
	if (n <= 0)
		return false;
	char *q = strchr(uri, '?');
	if (q)
		*q = '\0';
	return strcmp(uri, "/v1/tunnel") == 0;
}

static int control_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                            void *in, size_t len)
{
	struct conn_data *cd = user;
	struct tunneld *td = lws_context_user(lws_get_context(wsi));
	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		/* A verifier thread finished something. */
		if (td->verify_pool)
			verify_pool_collect(td->verify_pool);
		return 0;

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* Websockets only at /v1/tunnel. */
		return path_is_tunnel(wsi) ? 0 : -1;

	case LWS_CALLBACK_ESTABLISHED: {
		if (!cd)
			return -1;
		struct session *s = session_create(td, wsi);
		if (!s)
			return -1;
		cd->session = s;
		if (td->draining) {
			s->close_code = LWS_CLOSE_STATUS_GOINGAWAY;
			session_send_status(s, "invalid", "shutting_down", true);
			s->close_code = LWS_CLOSE_STATUS_GOINGAWAY;
			return 0;
		}
		/* Refused sockets count too: a client that keeps trying stays refused. */
		bool over_rate =
			td->connect_limit &&
			ratelimit_hit(td->connect_limit, s->peer, now_ms() / 1000, 60) >
				td->cfg.connect_rate_limit;
		if (over_rate) {
			static struct log_limit rate_log = {.burst = 5};
			ee_log_limited(&rate_log, EE_LOG_WARN,
			               "%s opened more than %d sockets within a minute; refusing one",
			               s->peer, td->cfg.connect_rate_limit);
			session_send_status(s, "invalid", "too_many_connections", true);
			s->state = SESSION_CLOSING;
			s->close_code = 1013; /* try again later */
			return 0;
		}
		bool over_total = td->session_count > td->cfg.max_agents;
		if (over_total || source_acquire(td, s->peer) != 0) {
			/* A flood is logged once a minute or so, not once a socket. */
			static struct log_limit total_limit = {.burst = 5}, source_limit = {.burst = 5};
			if (over_total)
				ee_log_limited(&total_limit, EE_LOG_WARN,
				               "agent limit (%d) reached; refusing a socket from %s",
				               td->cfg.max_agents, s->peer);
			else
				ee_log_limited(&source_limit, EE_LOG_WARN,
				               "too many unattested sockets from %s; refusing one", s->peer);
			session_send_status(s, "invalid", "too_many_connections", true);
			s->state = SESSION_CLOSING;
			s->close_code = 1013; /* try again later (RFC 6455 registry) */
			return 0;
		}
		s->holds_source_slot = true;
		schedule_secs(s, &s->sul_register, register_deadline_cb, td->cfg.register_timeout_sec);
		return 0;
	}

	case LWS_CALLBACK_RECEIVE:
		if (!cd || !cd->session)
			return -1;
		return on_receive(cd->session, in, len);

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!cd || !cd->session)
			return -1;
		return write_next(cd->session);

	case LWS_CALLBACK_CLOSED:
		if (cd && cd->session) {
			session_destroy(cd->session);
			cd->session = NULL;
		}
		return 0;

	default:
		return control_http_callback(wsi, reason, user, in, len);
	}
}

void session_close_all(struct tunneld *td)
{
	for (struct session *s = td->sessions; s; s = s->all_next) {
		if (!s->close_after_flush) {
			session_send_status(s, "invalid", "shutting_down", true);
			s->close_code = LWS_CLOSE_STATUS_GOINGAWAY;
		}
	}
}

/*
 * libwebsockets gives every connection a receive buffer of rx_buffer_size
 * for its whole life; messages larger than it arrive in pieces, which the
 * session joins (on_receive).  1 KiB keeps an idle tunnel near 4 KiB in
 * all (docs/PERFORMANCE.md).  What one send() may carry is set apart, so
 * large messages to agents still go out in 64 KiB writes.
 */
const struct lws_protocols tunneld_control_protocol = {
	.name = "ee-tunnel",
	.callback = control_callback,
	.per_session_data_size = sizeof(struct conn_data),
	.rx_buffer_size = 1024,
	.tx_packet_size = 65536,
};
