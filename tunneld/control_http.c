/*
 * control_http.c - plain HTTP on the control listener:
 *   GET  /health           liveness of ee-tunneld, and how many agents it holds
 *   POST /v1/proxy/{app}   the original's JSON envelope
 *                          {"method","path","headers":{},"body_b64"}; the answer
 *                          is the agent's status, headers and decoded body
 * Anything else is 404 (or 405); websocket upgrades are session.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "http_parser.h"
#include "json_bytes.h"
#include "json_writer.h"
#include "jsonutil.h"
#include "log.h"
#include "tunneld.h"

#define CONTROL_HEADER_BUF (32 * 1024)

struct control_conn {
	struct lws *wsi;
	struct tunneld *td;
	char app[EE_APP_NAME_MAX + 1];
	struct buf body;
	bool too_large;
	struct job *job;            /* in flight, or done and being written */
	/* a response not coming from a job */
	int status;
	struct json_object *local;  /* JSON body of a local answer */
	unsigned char *out;         /* the response body being written */
	size_t out_len, out_sent;
	bool head_sent;
};

static struct control_conn *conn_new(struct lws *wsi, struct tunneld *td)
{
	struct control_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->wsi = wsi;
	c->td = td;
	buf_init(&c->body);
	return c;
}

static void conn_free(struct control_conn *c)
{
	if (!c)
		return;
	if (c->job) {
		if (c->job->done)
			job_destroy(c->job);
		else
			job_cancel(c->job);
	}
	buf_free(&c->body);
	json_object_put(c->local);
	free(c);
}

/* A local JSON answer, written on the next writeable callback. */
static void local_answer(struct control_conn *c, int status, struct json_object *payload)
{
	c->status = status;
	json_object_put(c->local);
	c->local = payload;
	size_t len;
	const char *text = json_text(payload, &len);
	c->out = (unsigned char *)text;
	c->out_len = len;
	c->out_sent = 0;
	lws_callback_on_writable(c->wsi);
}

static void local_refusal(struct control_conn *c, int status, const char *key, const char *reason)
{
	struct json_object *o = json_object_new_object();
	if (strcmp(key, "reason") == 0)
		json_put_bool(o, "allowed", false);
	json_put_string(o, key, reason);
	local_answer(c, status, o);
}

/* 1xx, 204 and 304 answers have no body, whatever the agent sent. */
static bool status_has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

void control_http_job_done(struct job *j)
{
	struct control_conn *c = j->origin_conn;
	c->status = j->status;
	c->out = j->resp_body;
	c->out_len = status_has_body(j->status) ? j->resp_len : 0;
	c->out_sent = 0;
	lws_callback_on_writable(c->wsi);
}

static bool header_forwardable(const char *name)
{
	static const char *const skip[] = {"content-length", "transfer-encoding", "connection",
	                                   "keep-alive", "upgrade", "proxy-connection", "te",
	                                   "trailer", "server", "date"};
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
		if (strcasecmp(name, skip[i]) == 0)
			return false;
	}
	for (const char *p = name; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == ':')
			return false;
	}
	return *name != '\0';
}

static bool value_ok(const char *v)
{
	for (const char *p = v; *p; p++) {
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return false; /* no header injection through an agent's answer */
	}
	return true;
}

/* value_len is the value's whole length: a value holding a NUL is dropped, not cut at it. */
static int add_header(struct lws *wsi, const char *name, const char *value, size_t value_len,
                      unsigned char **p, unsigned char *end)
{
	char lname[256];
	size_t n = strlen(name);
	if (n + 2 > sizeof(lname) || strlen(value) != value_len || !value_ok(value))
		return 0; /* skipped, not fatal */
	for (size_t i = 0; i < n; i++)
		lname[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
	lname[n] = ':';
	lname[n + 1] = '\0';
	if (lws_add_http_header_by_name(wsi, (unsigned char *)lname, (const unsigned char *)value,
	                                (int)strlen(value), p, end))
		return -1;
	return 0;
}

static int write_head(struct control_conn *c)
{
	unsigned char buf[LWS_PRE + CONTROL_HEADER_BUF];
	unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
	struct json_object *headers = c->job ? c->job->resp_headers : NULL;
	bool have_type = false;
	if (lws_add_http_header_status(c->wsi, (unsigned int)c->status, &p, end))
		return -1;
	if (headers) {
		json_object_object_foreach(headers, name, value) {
			if (!header_forwardable(name))
				continue;
			if (strcasecmp(name, "content-type") == 0)
				have_type = true;
			if (json_object_is_type(value, json_type_string)) {
				if (add_header(c->wsi, name, json_object_get_string(value),
				               (size_t)json_object_get_string_len(value), &p, end))
					return -1;
			} else {
				for (size_t i = 0; i < json_object_array_length(value); i++) {
					struct json_object *v = json_object_array_get_idx(value, i);
					if (v && json_object_is_type(v, json_type_string) &&
					    add_header(c->wsi, name, json_object_get_string(v),
					               (size_t)json_object_get_string_len(v), &p, end))
						return -1;
				}
			}
		}
	}
	const char *type = c->job ? "application/octet-stream" : "application/json";
	if (!have_type && add_header(c->wsi, "content-type", type, strlen(type), &p, end))
		return -1;
	if (status_has_body(c->status) &&
	    lws_add_http_header_content_length(c->wsi, c->out_len, &p, end))
		return -1;
	if (lws_finalize_write_http_header(c->wsi, start, &p, end))
		return -1;
	c->head_sent = true;
	return 0;
}

/* Writes the next piece of the answer; returns -1 to close the connection. */
static int write_answer(struct control_conn *c)
{
	if (!c->head_sent) {
		if (write_head(c) != 0)
			return -1;
		if (c->out_len) {
			lws_callback_on_writable(c->wsi);
			return 0;
		}
	} else {
		size_t chunk = c->out_len - c->out_sent;
		if (chunk > TD_WRITE_CHUNK)
			chunk = TD_WRITE_CHUNK;
		bool last = c->out_sent + chunk == c->out_len;
		unsigned char *buf = malloc(LWS_PRE + chunk + 1);
		if (!buf)
			return -1;
		memcpy(buf + LWS_PRE, c->out + c->out_sent, chunk);
		int n = lws_write(c->wsi, buf + LWS_PRE, chunk, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
		free(buf);
		if (n < (int)chunk)
			return -1;
		c->out_sent += chunk;
		if (!last) {
			lws_callback_on_writable(c->wsi);
			return 0;
		}
	}
	/* The whole answer is out: ready for the next request on this connection. */
	if (c->job) {
		job_destroy(c->job);
		c->job = NULL;
	}
	json_object_put(c->local);
	c->local = NULL;
	c->out = NULL;
	c->head_sent = false;
	buf_reset(&c->body);
	c->app[0] = '\0';
	/* Completing the transaction may drop (and free) this connection's state: c is
	 * not touched after it. */
	struct lws *wsi = c->wsi;
	if (lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

/* True when name is one of the comma-separated tokens of a Connection value. */
static bool named_in(const char *connection, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = connection; p && *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		size_t len = strcspn(p, ", \t");
		if (len == n && strncasecmp(p, name, n) == 0)
			return true;
		p += len;
	}
	return false;
}

/*
 * The headers the proxy_request carries, as its JSON text, into out: names
 * and values are bytes, and any that are not UTF-8 go as \udc80..\udcff
 * escapes (json_bytes_put), as on the proxy listener.  -1 out of memory.
 */
static int forwarded_text(struct json_object *forwarded, struct buf *out)
{
	buf_append(out, "{", 1);
	bool first = true;
	json_object_object_foreach(forwarded, name, value) {
		if (!first)
			buf_append(out, ",", 1);
		first = false;
		json_append_bytes(out, name, strlen(name));
		buf_append(out, ":", 1);
		json_append_bytes(out, json_object_get_string(value),
		                  (size_t)json_object_get_string_len(value));
	}
	buf_append(out, "}", 1);
	return out->failed ? -1 : 0;
}

/* A header value the envelope may carry: no control byte but tab, and no NUL within. */
static bool envelope_value_ok(struct json_object *value)
{
	if (!value || !json_object_is_type(value, json_type_string))
		return false;
	const char *s = json_object_get_string(value);
	return strlen(s) == (size_t)json_object_get_string_len(value) && value_ok(s);
}

/* Parses the envelope and starts the job. */
static void start_proxy(struct control_conn *c)
{
	struct tunneld *td = c->td;
	if (c->too_large) {
		local_refusal(c, 413, "reason", "body_too_large");
		return;
	}
	struct json_object *env = json_parse_value(c->body.data ? c->body.data : "", c->body.len);
	if (!env || !json_object_is_type(env, json_type_object)) {
		json_object_put(env);
		local_refusal(c, 400, "reason", "invalid_proxy_payload");
		return;
	}
	struct job_request req = {0};
	const char *method = "GET", *path = "/", *body_b64 = "";
	size_t mlen = 3, plen = 1, blen = 0;
	bool present;
	struct json_object *headers = json_get(env, "headers", &present);
	/* A header's bytes that are not UTF-8 come as \udc80..\udcff escapes, as
	 * in the tunnel's messages; json-c reads those as U+FFFD, so headers
	 * holding one are read again as bytes (docs/PROTOCOL.md, "Header bytes"). */
	if (headers && json_object_is_type(headers, json_type_object) &&
	    json_bytes_maybe_lost(headers)) {
		struct json_object *bytes =
		    json_bytes_member_object(c->body.data ? c->body.data : "", c->body.len, "headers");
		if (!bytes || json_object_object_add(env, "headers", bytes) != 0) {
			json_object_put(bytes);
			json_object_put(env);
			local_refusal(c, 400, "reason", "invalid_proxy_payload");
			return;
		}
		headers = bytes;
	}
	enum json_field_state ms = json_get_string(env, "method", &method, &mlen);
	enum json_field_state ps = json_get_string(env, "path", &path, &plen);
	enum json_field_state bs = json_get_string(env, "body_b64", &body_b64, &blen);
	if (ms == JSON_FIELD_ABSENT || ms == JSON_FIELD_NULL) {
		method = "GET";
		mlen = 3;
	}
	if (ps == JSON_FIELD_ABSENT || ps == JSON_FIELD_NULL) {
		path = "/";
		plen = 1;
	}
	if (bs == JSON_FIELD_ABSENT || bs == JSON_FIELD_NULL) {
		body_b64 = "";
		blen = 0;
	}
	bool ok = ms != JSON_FIELD_WRONG_TYPE && ps != JSON_FIELD_WRONG_TYPE &&
	          bs != JSON_FIELD_WRONG_TYPE && http_is_token(method, mlen) && mlen < sizeof(req.method) &&
	          plen > 0 && plen <= HTTP_MAX_TARGET_BYTES && path[0] == '/' &&
	          (!headers || json_object_is_type(headers, json_type_object));
	for (size_t i = 0; ok && i < plen; i++)
		ok = (unsigned char)path[i] > 0x20 && path[i] != 0x7f;
	struct json_object *forwarded = json_object_new_object();
	const char *connection = NULL;
	if (ok && headers) {
		json_object_object_foreach(headers, name, value) {
			if (!envelope_value_ok(value) || !http_is_token(name, strlen(name))) {
				ok = false;
				break;
			}
			if (strcasecmp(name, "connection") == 0)
				connection = json_object_get_string(value);
		}
	}
	if (ok && headers) {
		json_object_object_foreach(headers, name, value) {
			/* The agent's own Host is its backend's business, as in the original;
			 * hop-by-hop headers and routing metadata stop here. */
			if (strcasecmp(name, "host") == 0 || strcasecmp(name, "x-ee-app") == 0 ||
			    http_header_is_hop_by_hop(name, strlen(name)) || named_in(connection, name))
				continue;
			json_object_object_add(forwarded, name, json_object_get(value));
		}
	}
	/* The job carries the headers as the text the proxy_request sends. */
	bool out_of_memory = false;
	if (ok) {
		struct buf text;
		buf_init(&text);
		if (!forwarded || forwarded_text(forwarded, &text) != 0) {
			buf_free(&text);
			out_of_memory = true;
		} else {
			req.headers_json = text.data; /* taken */
			req.headers_json_len = text.len;
		}
	}
	json_object_put(forwarded);
	if (out_of_memory) {
		json_object_put(env);
		local_refusal(c, 503, "reason", "out_of_memory");
		return;
	}
	bool too_large = false;
	if (ok && blen) {
		req.body = malloc(base64_decoded_max(blen) + 1);
		ok = req.body && base64_decode(body_b64, blen, req.body, &req.body_len) == 0;
		too_large = ok && req.body_len > (size_t)td->cfg.max_body_bytes;
	}
	if (too_large) {
		free(req.body);
		free(req.headers_json);
		json_object_put(env);
		local_refusal(c, 413, "reason", "body_too_large");
		return;
	}
	if (ok) {
		memcpy(req.method, method, mlen);
		req.method[mlen] = '\0';
		req.path = strndup(path, plen);
		ok = req.path != NULL;
	}
	json_object_put(env);
	if (!ok) {
		free(req.path);
		free(req.body);
		free(req.headers_json);
		local_refusal(c, 400, "reason", "invalid_proxy_payload");
		return;
	}
	struct job *j = job_create(td, c->app, JOB_ORIGIN_CONTROL, c, &req);
	if (!j) {
		free(req.path);
		free(req.body);
		free(req.headers_json);
		local_refusal(c, 503, "reason", "out_of_memory");
		return;
	}
	c->job = j;
	job_start(j);
}

static bool method_is(struct lws *wsi, enum lws_token_indexes token)
{
	return lws_hdr_total_length(wsi, token) > 0;
}

int control_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                          void *in, size_t len)
{
	struct conn_data *cd = user;
	struct tunneld *td = lws_context_user(lws_get_context(wsi));
	/* A connection closed before lws gave it its per-connection data (an
	 * abrupt drop mid-handshake) is closed with none: nothing of ours to free. */
	if (!cd)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	switch (reason) {
	case LWS_CALLBACK_HTTP: {
		const char *uri = in;
		if (!cd->http && !(cd->http = conn_new(wsi, td)))
			return -1;
		struct control_conn *c = cd->http;
		if (c->job || c->local)
			return -1; /* a request pipelined behind one not yet answered */
		bool post = method_is(wsi, WSI_TOKEN_POST_URI), get = method_is(wsi, WSI_TOKEN_GET_URI);
		if (strcmp(uri, "/health") == 0) {
			if (!get) {
				local_refusal(c, 405, "error", "method_not_allowed");
				return 0;
			}
			struct json_object *o = json_object_new_object();
			json_put_string(o, "status", td->draining ? "draining" : "ok");
			json_put_int(o, "agents", td->session_count);
			local_answer(c, td->draining ? 503 : 200, o);
			return 0;
		}
		if (strncmp(uri, "/v1/proxy/", 10) == 0) {
			const char *app = uri + 10;
			if (!post) {
				local_refusal(c, 405, "error", "method_not_allowed");
				return 0;
			}
			if (!util_valid_app_name(app, strlen(app))) {
				local_refusal(c, 400, "reason", "invalid_app_name");
				return 0;
			}
			snprintf(c->app, sizeof(c->app), "%s", app);
			buf_reset(&c->body);
			c->too_large = false;
			return 0; /* the body follows */
		}
		local_refusal(c, 404, "error", "not_found");
		return 0;
	}
	case LWS_CALLBACK_HTTP_BODY: {
		struct control_conn *c = cd->http;
		if (!c)
			return -1;
		/* The envelope holds the body in base64, plus headers: allow for both. */
		size_t limit = (size_t)td->cfg.max_body_bytes / 3 * 4 + 4 + 256 * 1024;
		if (c->too_large || c->body.len + len > limit) {
			c->too_large = true;
			buf_reset(&c->body);
			return 0;
		}
		return buf_append(&c->body, in, len) == 0 ? 0 : -1;
	}
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (!cd->http)
			return -1;
		/* The control listener takes one request at a time: a request pipelined
		 * behind one still in flight closes the connection (use the proxy
		 * listener, which pipelines, for that). */
		if (cd->http->job)
			return -1;
		if (cd->http->app[0] && !cd->http->local)
			start_proxy(cd->http);
		return 0;

	case LWS_CALLBACK_HTTP_WRITEABLE: {
		struct control_conn *c = cd->http;
		if (!c || (!c->local && !(c->job && c->job->done)))
			return 0;
		return write_answer(c);
	}
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		/* lws drops the per-connection data between keep-alive transactions too. */
		conn_free(cd->http);
		cd->http = NULL;
		return lws_callback_http_dummy(wsi, reason, user, in, len);

	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}
