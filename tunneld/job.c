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
#include "jsonutil.h"
#include "log.h"
#include "timeutil.h"
#include "tunneld.h"

#define JOB_MAX_ATTEMPTS 3

static void timeout_cb(lws_sorted_usec_list_t *sul);

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
	snprintf(j->request_id, sizeof(j->request_id), "%s%012llx", td->request_id_prefix,
	         (unsigned long long)(td->next_request_seq++ & 0xffffffffffffULL));
	j->td = td;
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
	lws_sul_cancel(&j->sul_timeout);
	free(j->req.path);
	json_object_put(j->req.headers);
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
	lws_sul_cancel(&j->sul_timeout);
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

	struct json_object *o = json_object_new_object();
	json_put_string(o, "type", "proxy_request");
	json_put_string(o, "request_id", j->request_id);
	json_put_string(o, "method", j->req.method);
	json_put_string(o, "path", j->req.path);
	json_object_object_add(o, "headers",
	                       j->req.headers ? json_object_get(j->req.headers) : json_object_new_object());
	char *b64 = malloc(base64_encoded_len(j->req.body_len) + 1);
	if (!b64) {
		json_object_put(o);
		detach(j);
		answer_refusal(j, 503, "out_of_memory");
		finish(j);
		return;
	}
	base64_encode(j->req.body ? j->req.body : (const unsigned char *)"", j->req.body_len, b64);
	json_put_string(o, "body_b64", b64);
	free(b64);
	session_queue_json(s, o);
	json_object_put(o);
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
	lws_sul_schedule(td->context, 0, &j->sul_timeout, timeout_cb,
	                 (lws_usec_t)td->cfg.proxy_timeout_sec * LWS_US_PER_SEC);
	dispatch(j, s);
}

static void timeout_cb(lws_sorted_usec_list_t *sul)
{
	struct job *j = lws_container_of(sul, struct job, sul_timeout);
	log_info("request %s to %s timed out", j->request_id, j->app);
	answer_refusal(j, 504, "proxy_timeout");
	finish(j);
}

/* Copies the agent's headers, keeping string values and arrays of strings. */
static struct json_object *clean_headers(struct json_object *headers)
{
	struct json_object *out = json_object_new_object();
	if (!headers)
		return out;
	json_object_object_foreach(headers, name, value) {
		if (!value)
			continue;
		if (json_object_is_type(value, json_type_string) ||
		    json_object_is_type(value, json_type_array))
			json_object_object_add(out, name, json_object_get(value));
	}
	return out;
}

void job_on_response(struct session *s, const char *request_id, int status,
                     struct json_object *headers, const char *body_b64, size_t body_b64_len)
{
	struct job *j = s->jobs;
	while (j && strcmp(j->request_id, request_id) != 0)
		j = j->next;
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
