/*
 * job.c - one proxied request: sent over an allowed agent's tunnel as a
 * proxy_request, matched back by request_id, answered to whichever listener
 * it came from.  Refusals are the ones /v1/resolve gives (404 unknown app,
 * 403 not allowed with the status payload), plus 503 no_tunnel / tunnel_busy
 * and 504 proxy_timeout, each as {"allowed": false, "reason": ...}.
 * When a tunnel closes under a request that is safe to repeat (GET, HEAD,
 * OPTIONS), it is sent to another allowed agent of the app.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "json_writer.h"
#include "jsonutil.h"
#include "log.h"
#include "timeutil.h"
#include "tunneld.h"

#define JOB_MAX_ATTEMPTS 3

static void waiting_timeout_cb(lws_sorted_usec_list_t *sul);

static struct job **seq_bucket(struct tunneld *td, uint64_t seq)
{
	return &td->jobs_by_seq[seq % TD_JOB_BUCKETS];
}

/* Stops the job's clock (answered, cancelled or timed out). */
static void waiting_remove(struct job *j)
{
	if (!j->waiting)
		return;
	struct tunneld *td = j->td;
	if (j->wait_prev)
		j->wait_prev->wait_next = j->wait_next;
	else
		td->waiting_head = j->wait_next;
	if (j->wait_next)
		j->wait_next->wait_prev = j->wait_prev;
	else
		td->waiting_tail = j->wait_prev;
	j->wait_next = j->wait_prev = NULL;
	j->waiting = false;
}

/* Arms the one timer for the oldest waiting job, unless it is armed already. */
static void waiting_arm(struct tunneld *td)
{
	if (td->waiting_timer_set || !td->waiting_head)
		return;
	int64_t wait_ms = td->waiting_head->deadline_ms - time_monotonic_ms();
	td->waiting_timer_set = true;
	lws_sul_schedule(td->context, 0, &td->sul_waiting, waiting_timeout_cb,
	                 wait_ms > 0 ? (lws_usec_t)wait_ms * LWS_US_PER_MS : 1);
}

/* Starts the job's clock: EE_PROXY_TIMEOUT_SEC from now. */
static void waiting_add(struct job *j)
{
	struct tunneld *td = j->td;
	j->deadline_ms = time_monotonic_ms() + (int64_t)td->cfg.proxy_timeout_sec * 1000;
	j->wait_next = NULL;
	j->wait_prev = td->waiting_tail;
	if (td->waiting_tail)
		td->waiting_tail->wait_next = j;
	else
		td->waiting_head = j;
	td->waiting_tail = j;
	j->waiting = true;
	waiting_arm(td);
}

struct job *job_create(struct tunneld *td, const char *app, enum job_origin origin,
                       void *origin_conn, struct job_request *req)
{
	/*
	 * A request id need only be unique among the requests in flight on a
	 * tunnel: answers are matched per session, and only that session's agent
	 * can answer.  So a random prefix drawn once (ids differ across restarts)
	 * and then a 48-bit counter, instead of a getrandom() per request.
	 */
	if (!td->request_id_prefix[0] &&
	    util_random_hex(td->request_id_prefix, TD_REQUEST_ID_PREFIX_LEN / 2) != 0)
		return NULL;
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->seq = td->next_request_seq++ & 0xffffffffffffULL;
	memcpy(j->request_id, td->request_id_prefix, TD_REQUEST_ID_PREFIX_LEN);
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 12; i++)
		j->request_id[TD_REQUEST_ID_PREFIX_LEN + i] = hex[(j->seq >> (44 - 4 * i)) & 15];
	j->request_id[TD_REQUEST_ID_PREFIX_LEN + 12] = '\0';
	j->td = td;
	struct job **bucket = seq_bucket(td, j->seq);
	j->seq_next = *bucket;
	*bucket = j;
	snprintf(j->app, sizeof(j->app), "%s", app);
	j->origin = origin;
	j->origin_conn = origin_conn;
	j->req = *req;
	memset(req, 0, sizeof(*req)); /* the job owns it now */
	return j;
}

void job_destroy(struct job *j)
{
	if (!j)
		return;
	waiting_remove(j);
	struct job **p = seq_bucket(j->td, j->seq);
	while (*p && *p != j)
		p = &(*p)->seq_next;
	if (*p)
		*p = j->seq_next;
	free(j->req.path);
	free(j->req.headers_json);
	free(j->req.body);
	json_object_put(j->resp_headers);
	free(j->resp_body);
	free(j);
}

static void detach(struct job *j)
{
	struct session *s = j->session;
	if (!s)
		return;
	if (j->prev)
		j->prev->next = j->next;
	else
		s->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->next = j->prev = NULL;
	s->inflight--;
	j->session = NULL;
}

/* Sets the answer to a JSON body. */
static void answer_json(struct job *j, int status, struct json_object *payload)
{
	size_t len;
	const char *text = json_text(payload, &len);
	j->status = status;
	free(j->resp_body);
	j->resp_body = malloc(len ? len : 1);
	j->resp_len = j->resp_body ? len : 0;
	if (j->resp_body)
		memcpy(j->resp_body, text, len);
	json_object_put(j->resp_headers);
	j->resp_headers = json_object_new_object();
	json_put_string(j->resp_headers, "Content-Type", "application/json");
}

static void answer_refusal(struct job *j, int status, const char *reason)
{
	struct json_object *o = json_object_new_object();
	json_put_bool(o, "allowed", false);
	json_put_string(o, "reason", reason);
	answer_json(j, status, o);
	json_object_put(o);
}

static void finish(struct job *j)
{
	detach(j);
	waiting_remove(j);
	j->done = true;
	if (!j->origin_conn) {
		job_destroy(j); /* the client has gone */
		return;
	}
	if (j->origin == JOB_ORIGIN_CONTROL)
		control_http_job_done(j);
	else
		proxy_http_job_done(j);
}

/*
 * {"type":"proxy_request","request_id":..,"method":..,"path":..,"headers":{..},"body_b64":".."}
 * written straight into the message sent: no JSON tree, one allocation.
 */
static struct out_msg *proxy_request_msg(const struct job *j)
{
	static const char k_open[] = "{\"type\":\"proxy_request\",\"request_id\":";
	static const char k_method[] = ",\"method\":";
	static const char k_path[] = ",\"path\":";
	static const char k_headers[] = ",\"headers\":";
	static const char k_body[] = ",\"body_b64\":\"";
	static const char k_tail[] = "\"}";
	const struct job_request *r = &j->req;
	const char *headers = r->headers_json ? r->headers_json : "{}";
	size_t headers_len = r->headers_json ? r->headers_json_len : 2;
	size_t id_len = strlen(j->request_id), method_len = strlen(r->method);
	size_t path_len = strlen(r->path);
	size_t b64_len = base64_encoded_len(r->body_len);
	size_t len = sizeof(k_open) - 1 + json_string_len(j->request_id, id_len) +
	             sizeof(k_method) - 1 + json_string_len(r->method, method_len) +
	             sizeof(k_path) - 1 + json_string_len(r->path, path_len) +
	             sizeof(k_headers) - 1 + headers_len + sizeof(k_body) - 1 + b64_len +
	             sizeof(k_tail) - 1;
	struct out_msg *m = session_msg_new(len);
	if (!m)
		return NULL;
	char *p = (char *)m->data + LWS_PRE;
	memcpy(p, k_open, sizeof(k_open) - 1);
	p = json_string_put(p + sizeof(k_open) - 1, j->request_id, id_len);
	memcpy(p, k_method, sizeof(k_method) - 1);
	p = json_string_put(p + sizeof(k_method) - 1, r->method, method_len);
	memcpy(p, k_path, sizeof(k_path) - 1);
	p = json_string_put(p + sizeof(k_path) - 1, r->path, path_len);
	memcpy(p, k_headers, sizeof(k_headers) - 1);
	p += sizeof(k_headers) - 1;
	memcpy(p, headers, headers_len);
	p += headers_len;
	memcpy(p, k_body, sizeof(k_body) - 1);
	p += sizeof(k_body) - 1;
	base64_encode(r->body ? r->body : (const unsigned char *)"", r->body_len, p);
	p += b64_len;
	memcpy(p, k_tail, sizeof(k_tail)); /* with its NUL */
	return m;
}

static void dispatch(struct job *j, struct session *s)
{
	j->session = s;
	j->prev = NULL;
	j->next = s->jobs;
	if (s->jobs)
		s->jobs->prev = j;
	s->jobs = j;
	s->inflight++;
	j->attempts++;

	struct out_msg *m = proxy_request_msg(j);
	if (!m) {
		detach(j);
		answer_refusal(j, 503, "out_of_memory");
		finish(j);
		return;
	}
	session_queue_msg(s, m);
}

/* Why no tunnel takes the job: the registry's answer, as /v1/resolve gives it. */
static void refuse(struct job *j)
{
	struct tunneld *td = j->td;
	struct app_entry *e = route_find(td, j->app);
	if (e) {
		int64_t now = time_now_ms();
		for (struct session *s = e->sessions; s; s = s->app_next) {
			if (session_allowed(s, now)) {
				answer_refusal(j, 503, "tunnel_busy");
				return;
			}
		}
	}
	struct json_object *payload = NULL;
	bool allowed = false;
	struct ee_error err;
	if (registry_app_status(td->db, &td->policy, j->app, time_now_ms(), false, &payload, &allowed,
	                        &err) != 0) {
		answer_refusal(j, err.status == 404 ? 404 : 503,
		               err.status == 404 ? "unknown_app" : "registry_unavailable");
		return;
	}
	if (!allowed)
		answer_json(j, 403, payload);
	else
		answer_refusal(j, 503, "no_tunnel");
	json_object_put(payload);
}

void job_start(struct job *j)
{
	struct tunneld *td = j->td;
	if (td->draining) {
		answer_refusal(j, 503, "shutting_down");
		finish(j);
		return;
	}
	struct session *s = route_pick(td, j->app, NULL);
	if (!s) {
		refuse(j);
		finish(j);
		return;
	}
	waiting_add(j);
	dispatch(j, s);
}

static void waiting_timeout_cb(lws_sorted_usec_list_t *sul)
{
	struct tunneld *td = lws_container_of(sul, struct tunneld, sul_waiting);
	td->waiting_timer_set = false;
	int64_t now = time_monotonic_ms();
	while (td->waiting_head && td->waiting_head->deadline_ms <= now) {
		struct job *j = td->waiting_head;
		waiting_remove(j);
		log_info("request %s to %s timed out", j->request_id, j->app);
		answer_refusal(j, 504, "proxy_timeout");
		finish(j);
	}
	waiting_arm(td);
}

/*
 * The agent's headers, keeping string values and arrays (of which the
 * listeners send the strings): the object itself, with a reference taken,
 * when that is all it holds, which is the usual case; else a copy.
 */
static struct json_object *clean_headers(struct json_object *headers)
{
	if (!headers)
		return json_object_new_object();
	bool clean = true;
	json_object_object_foreach(headers, key, val) {
		(void)key;
		if (!val || !(json_object_is_type(val, json_type_string) ||
		              json_object_is_type(val, json_type_array))) {
			clean = false;
			break;
		}
	}
	if (clean)
		return json_object_get(headers);
	struct json_object *out = json_object_new_object();
	json_object_object_foreach(headers, name, value) {
		if (!value)
			continue;
		if (json_object_is_type(value, json_type_string) ||
		    json_object_is_type(value, json_type_array))
			json_object_object_add(out, name, json_object_get(value));
	}
	return out;
}

/* The job in flight on s with this request id, or NULL. */
static struct job *find_job(struct session *s, const char *request_id)
{
	/* Ids are the process's prefix and 12 lowercase hex digits: matched by the counter. */
	struct job *j = NULL;
	uint64_t seq = 0;
	bool ours = strlen(request_id) == TD_REQUEST_ID_LEN &&
	            memcmp(request_id, s->td->request_id_prefix, TD_REQUEST_ID_PREFIX_LEN) == 0;
	for (int i = TD_REQUEST_ID_PREFIX_LEN; ours && i < TD_REQUEST_ID_LEN; i++) {
		char c = request_id[i];
		ours = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
		seq = seq << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	if (ours) {
		/* In flight on this session, as a walk of s->jobs would find it. */
		j = *seq_bucket(s->td, seq);
		while (j && (j->seq != seq || j->session != s))
			j = j->seq_next;
	}
	return j;
}

void job_on_response(struct session *s, const char *request_id, int status,
                     struct json_object *headers, const char *body_b64, size_t body_b64_len)
{
	struct job *j = find_job(s, request_id);
	if (!j) {
		/* Late (after a timeout) or unknown: the original ignored it too. */
		log_debug("agent %s answered unknown request %s", s->agent_id, request_id);
		return;
	}
	detach(j);
	unsigned char *body = NULL;
	size_t body_len = 0;
	if (body_b64 && body_b64_len) {
		body = malloc(base64_decoded_max(body_b64_len) + 1);
		if (!body || base64_decode(body_b64, body_b64_len, body, &body_len) != 0) {
			free(body);
			log_warn("agent %s answered %s with a body that is not base64", s->agent_id,
			         request_id);
			answer_refusal(j, 502, "invalid_proxy_response");
			finish(j);
			return;
		}
	}
	if (status < 100 || status > 599)
		status = 502; /* the original's default for a missing status */
	j->status = status;
	free(j->resp_body);
	j->resp_body = body;
	j->resp_len = body_len;
	json_object_put(j->resp_headers);
	j->resp_headers = clean_headers(headers);
	finish(j);
}

void job_on_unreadable_response(struct session *s, const char *request_id, const char *reason)
{
	struct job *j = find_job(s, request_id);
	if (!j)
		return; /* late or unknown, as with a readable answer */
	/* The message itself stays out of the log: its headers and body are the app's. */
	static struct log_limit limit = {.burst = 10};
	ee_log_limited(&limit, EE_LOG_WARN, "agent %s answered %s with a message that cannot be "
	               "read (%s): 502 invalid_proxy_response", s->agent_id, request_id, reason);
	detach(j);
	answer_refusal(j, 502, "invalid_proxy_response");
	finish(j);
}

static bool safe_to_repeat(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
	       strcmp(method, "OPTIONS") == 0;
}

void job_on_session_closed(struct session *s)
{
	while (s->jobs) {
		struct job *j = s->jobs;
		detach(j);
		struct session *other = NULL;
		if (safe_to_repeat(j->req.method) && j->attempts < JOB_MAX_ATTEMPTS && !j->td->draining)
			other = route_pick(j->td, j->app, s);
		if (other) {
			dispatch(j, other);
			continue;
		}
		answer_refusal(j, 502, "tunnel_closed");
		finish(j);
	}
}

void job_cancel(struct job *j)
{
	detach(j);
	job_destroy(j);
}
