/*
 * backend.c - proxied requests to the backend, many at a time.
 *
 * One transfer thread drives up to EE_BACKEND_WORKERS transfers at once
 * with libcurl's multi interface (curl_multi_socket_action over its own
 * poll()), each in a slot whose easy handle is reused; the multi handle
 * keeps the connections to the backend alive.  Jobs wait in a bounded
 * queue (EE_BACKEND_QUEUE) for a free slot.  One thread rather than one per
 * request in flight: a burst of requests costs one wake of it, and each
 * ready socket is served without a thread switch (docs/PERFORMANCE.md).
 * A job is a proxy_request already checked at the boundary
 * (backend_job_from_request) or a health probe.  The answer is built as
 * the tunnel message itself, in a buffer with the headroom lws_write needs,
 * so a large body is encoded once and never copied again.
 *
 * The agent's own answers, when the backend gives none, are JSON like the
 * control plane's: 502 backend_unavailable (refused, reset, DNS),
 * 504 backend_timeout (EE_BACKEND_TIMEOUT_SEC), 502 response_too_large
 * (over EE_BACKEND_MAX_RESPONSE_MIB), 503 agent_busy (queue full).
 */
#include "agent.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sys/eventfd.h>

#include <curl/curl.h>
#include <libwebsockets.h>

#include "base64.h"
#include "http_parser.h"
#include "json_writer.h"
#include "log.h"
#include "timeutil.h"
#include "util.h"

enum job_kind { JOB_PROXY, JOB_HEALTH };

struct backend_job {
	struct backend_job *next;
	enum job_kind kind;
	uint64_t generation;
	char request_id[AGENT_REQUEST_ID_MAX + 1];
	char method[AGENT_METHOD_MAX + 1];
	char *path;
	struct curl_slist *headers;
	unsigned char *body;
	size_t body_len;
};

/* What one request brings back, filled by libcurl's callbacks. */
struct backend_reply {
	struct backend_headers headers;
	struct buf body;
	size_t max_body;
	bool too_large;
	bool keep_length; /* HEAD: the length the body would have is the answer's */
};

/*
 * One transfer under way: a slot of the pool, with the easy handle it keeps
 * (and curl_easy_reset()s) from one job to the next.
 */
struct backend_slot {
	CURL *easy;
	struct backend_job *job; /* NULL: the slot is free */
	bool proxy_ready; /* easy holds a proxied request's settings: no curl_easy_reset needed */
	struct backend_reply reply;
};

/*
 * The loop thread appends jobs under lock and wakes the transfer thread
 * through wake_fd only when no wake is pending yet, so that a burst of
 * requests costs one wake.  The transfer thread drives every transfer with
 * one libcurl multi handle through curl_multi_socket_action over its own
 * poll() (libcurl says which sockets to watch and when its next timeout
 * is), so it touches only the sockets that are ready, and posts the
 * answers to the outbox.
 */
struct backend_pool {
	const struct agent_config *cfg;
	struct outbox *outbox;
	CURLM *multi;
	pthread_mutex_t lock;
	struct backend_job *head, *tail; /* waiting for a free slot */
	int queued, running;
	bool stop;
	bool wake_pending; /* a wake written to wake_fd, not yet read by the transfer thread */
	bool started;
	int wake_fd; /* an eventfd: the first entry of pfds */
	pthread_t thread;
	struct backend_slot *slots; /* cfg->backend_workers of them */

	/* The transfer thread's own. */
	struct pollfd *pfds; /* wake_fd, then the sockets libcurl watches */
	int npfds, cap_pfds;
	bool timer_set; /* libcurl wants CURL_SOCKET_TIMEOUT at timer_due_ms */
	int64_t timer_due_ms;
	bool failing; /* the last request could not reach the backend */
	struct buf scratch; /* URLs and header objects, reused from one request to the next */
	/* The proxy settings libcurl would read from the environment on every request. */
	const char *proxy, *noproxy;
};

/*
 * What libcurl takes from the environment for the backend's scheme, read
 * once: <scheme>_proxy (for https also HTTPS_PROXY; never HTTP_PROXY),
 * then all_proxy, ALL_PROXY; and no_proxy, NO_PROXY.  Set explicitly, they
 * spare libcurl half a dozen getenv() calls per request; "" is none.
 */
static void read_proxy_env(struct backend_pool *pool)
{
	const char *proxy;
	if (strncasecmp(pool->cfg->backend_url, "https:", 6) == 0) {
		proxy = getenv("https_proxy");
		if (!proxy)
			proxy = getenv("HTTPS_PROXY");
	} else {
		proxy = getenv("http_proxy");
	}
	if (!proxy)
		proxy = getenv("all_proxy");
	if (!proxy)
		proxy = getenv("ALL_PROXY");
	const char *noproxy = getenv("no_proxy");
	if (!noproxy)
		noproxy = getenv("NO_PROXY");
	pool->proxy = proxy ? proxy : "";
	pool->noproxy = noproxy ? noproxy : "";
}

static bool valid_request_id(const char *s)
{
	size_t len = strlen(s);
	return len > 0 && len <= AGENT_REQUEST_ID_MAX && util_valid_printable(s, len, len);
}

/* The path as sent on the request line: visible ASCII, from '/'. */
static bool valid_path(const char *s, size_t len)
{
	if (len == 0 || len > AGENT_PATH_MAX || s[0] != '/')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '#')
			return false;
	}
	return true;
}

/* A field value: no CR, LF or NUL (header injection), no other controls but tab. */
static bool valid_header_value(const char *s, size_t len)
{
	if (len > AGENT_HEADER_VALUE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* Fields the agent never forwards: hop-by-hop ones and those libcurl must write itself. */
static bool skipped_request_header(const char *name, size_t len)
{
	return http_header_is_hop_by_hop(name, len) || strcasecmp(name, "host") == 0 ||
	       strcasecmp(name, "content-length") == 0 || strcasecmp(name, "expect") == 0;
}

static int fail_request(struct ee_error *err, const char *detail)
{
	return ee_fail_detail(err, 400, "invalid_proxy_request", detail);
}

/* name and value are checked: at most AGENT_HEADER_NAME_MAX and AGENT_HEADER_VALUE_MAX. */
static int add_header(struct backend_job *job, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
	char line[AGENT_HEADER_NAME_MAX + AGENT_HEADER_VALUE_MAX + 3];
	memcpy(line, name, nlen);
	/* "Name;" is libcurl's way to send a field with an empty value. */
	if (vlen) {
		line[nlen] = ':';
		line[nlen + 1] = ' ';
		memcpy(line + nlen + 2, value, vlen);
		line[nlen + 2 + vlen] = '\0';
	} else {
		line[nlen] = ';';
		line[nlen + 1] = '\0';
	}
	struct curl_slist *l = curl_slist_append(job->headers, line);
	if (!l)
		return -1;
	job->headers = l;
	return 0;
}

/*
 * One field of the request, its name NUL-terminated (nlen bytes) and its
 * value a string of vlen bytes; both proxy_request readers use it.
 */
static int take_header(struct backend_job *job, const char *name, size_t nlen, const char *v,
                       size_t vlen, bool *has_accept, struct ee_error *err)
{
	if (nlen > AGENT_HEADER_NAME_MAX || !http_is_token(name, nlen))
		return fail_request(err, "header_name");
	if (!valid_header_value(v, vlen) || memchr(v, '\0', vlen))
		return fail_request(err, "header_value");
	if (skipped_request_header(name, nlen))
		return 0;
	if (strcasecmp(name, "accept") == 0)
		*has_accept = true;
	if (add_header(job, name, nlen, v, vlen) != 0)
		return ee_fail(err, 500, "out_of_memory");
	return 0;
}

/* After the request's fields: keep libcurl from adding what the client did not send. */
static int finish_headers(struct backend_job *job, bool has_accept, struct ee_error *err)
{
	if ((!has_accept && add_header(job, "Accept", 6, "", 0) != 0) ||
	    !(job->headers = curl_slist_append(job->headers, "Expect:")))
		return ee_fail(err, 500, "out_of_memory");
	return 0;
}

static int take_headers(struct backend_job *job, struct json_object *headers,
                        struct ee_error *err)
{
	bool has_accept = false;
	int count = 0;
	if (headers) {
		json_object_object_foreach(headers, name, value)
		{
			size_t nlen = strlen(name);
			if (++count > AGENT_HEADERS_MAX)
				return fail_request(err, "too_many_headers");
			if (nlen > AGENT_HEADER_NAME_MAX || !http_is_token(name, nlen))
				return fail_request(err, "header_name");
			if (!json_object_is_type(value, json_type_string))
				return fail_request(err, "header_value");
			if (take_header(job, name, nlen, json_object_get_string(value),
			                (size_t)json_object_get_string_len(value), &has_accept, err) != 0)
				return -1;
		}
	}
	return finish_headers(job, has_accept, err);
}

struct backend_job *backend_job_from_request(const struct agent_config *cfg,
                                             struct json_object *request, uint64_t generation,
                                             struct ee_error *err)
{
	(void)cfg;
	struct json_object *v;
	struct backend_job *job = calloc(1, sizeof(*job));
	if (!job) {
		ee_fail(err, 500, "out_of_memory");
		return NULL;
	}
	job->kind = JOB_PROXY;
	job->generation = generation;
	if (!json_object_object_get_ex(request, "request_id", &v) ||
	    !json_object_is_type(v, json_type_string) || !valid_request_id(json_object_get_string(v))) {
		fail_request(err, "request_id");
		goto fail;
	}
	snprintf(job->request_id, sizeof(job->request_id), "%s", json_object_get_string(v));

	/* The original's defaults: GET and "/". */
	const char *method = "GET";
	if (json_object_object_get_ex(request, "method", &v)) {
		if (!json_object_is_type(v, json_type_string)) {
			fail_request(err, "method");
			goto fail;
		}
		method = json_object_get_string(v);
	}
	size_t mlen = strlen(method);
	if (mlen > AGENT_METHOD_MAX || !http_is_token(method, mlen)) {
		fail_request(err, "method");
		goto fail;
	}
	/* CONNECT would make the backend a tunnel to anywhere. */
	if (strcasecmp(method, "CONNECT") == 0) {
		ee_fail(err, 501, "method_not_supported");
		goto fail;
	}
	memcpy(job->method, method, mlen + 1);

	const char *path = "/";
	size_t plen = 1;
	if (json_object_object_get_ex(request, "path", &v)) {
		if (!json_object_is_type(v, json_type_string)) {
			fail_request(err, "path");
			goto fail;
		}
		path = json_object_get_string(v);
		plen = (size_t)json_object_get_string_len(v);
	}
	if (!valid_path(path, plen) || strlen(path) != plen) {
		fail_request(err, "path");
		goto fail;
	}
	job->path = strdup(path);
	if (!job->path) {
		ee_fail(err, 500, "out_of_memory");
		goto fail;
	}

	struct json_object *headers = NULL;
	if (json_object_object_get_ex(request, "headers", &headers) && headers &&
	    !json_object_is_type(headers, json_type_object)) {
		fail_request(err, "headers");
		goto fail;
	}
	if (take_headers(job, headers, err) != 0)
		goto fail;

	if (json_object_object_get_ex(request, "body_b64", &v) && v) {
		if (!json_object_is_type(v, json_type_string)) {
			fail_request(err, "body_b64");
			goto fail;
		}
		const char *b64 = json_object_get_string(v);
		size_t b64_len = (size_t)json_object_get_string_len(v);
		job->body = malloc(base64_decoded_max(b64_len) + 1);
		if (!job->body) {
			ee_fail(err, 500, "out_of_memory");
			goto fail;
		}
		if (base64_decode(b64, b64_len, job->body, &job->body_len) != 0) {
			fail_request(err, "body_b64");
			goto fail;
		}
	}
	return job;
fail:
	backend_job_free(job);
	return NULL;
}

/* --- the usual proxy_request, read without json-c --- */

struct span {
	const char *s;
	size_t len;
};

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* A string of printable ASCII with no escape: NULL for anything else (json-c reads it then). */
static const char *plain_string(const char *p, const char *end, struct span *out)
{
	if (p >= end || *p != '"')
		return NULL;
	const char *start = ++p;
	while (p < end && *p != '"') {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c >= 0x7f || c == '\\')
			return NULL;
		p++;
	}
	if (p >= end)
		return NULL;
	out->s = start;
	out->len = (size_t)(p - start);
	return p + 1;
}

static bool span_is(const struct span *a, const char *lit)
{
	size_t n = strlen(lit);
	return a->len == n && memcmp(a->s, lit, n) == 0;
}

/* The fields of a proxy_request as the fast reader found them (absent: s NULL). */
struct plain_request {
	struct span type, request_id, method, path, body_b64;
	int header_count;
	struct span header_names[AGENT_HEADERS_MAX], header_values[AGENT_HEADERS_MAX];
};

/* {"name":"value",...} of plain strings, no name twice, at most AGENT_HEADERS_MAX. */
static const char *plain_headers(const char *p, const char *end, struct plain_request *r)
{
	if (p >= end || *p != '{')
		return NULL;
	p = skip_space(p + 1, end);
	if (p < end && *p == '}')
		return p + 1;
	for (;;) {
		if (r->header_count == AGENT_HEADERS_MAX)
			return NULL;
		struct span *name = &r->header_names[r->header_count];
		struct span *value = &r->header_values[r->header_count];
		p = plain_string(p, end, name);
		if (!p)
			return NULL;
		p = skip_space(p, end);
		if (p >= end || *p != ':')
			return NULL;
		p = plain_string(skip_space(p + 1, end), end, value);
		if (!p)
			return NULL;
		/* json-c keeps the last of a repeated name: not for this reader. */
		for (int i = 0; i < r->header_count; i++)
			if (r->header_names[i].len == name->len &&
			    memcmp(r->header_names[i].s, name->s, name->len) == 0)
				return NULL;
		r->header_count++;
		p = skip_space(p, end);
		if (p < end && *p == ',') {
			p = skip_space(p + 1, end);
			continue;
		}
		return p < end && *p == '}' ? p + 1 : NULL;
	}
}

/*
 * Reads the proxy_request as ee-tunneld writes it: one object of the six
 * known fields, each once, every value a string of printable ASCII with no
 * escape (headers an object of them).  Whatever else (escapes, other bytes,
 * other fields or types, repeats) is left to json-c: false.
 */
static bool plain_request_read(const char *text, size_t len, struct plain_request *r)
{
	const char *p = text, *end = text + len;
	memset(r, 0, offsetof(struct plain_request, header_names));
	p = skip_space(p, end);
	if (p >= end || *p != '{')
		return false;
	p = skip_space(p + 1, end);
	bool seen_headers = false;
	for (;;) {
		struct span key;
		p = plain_string(p, end, &key);
		if (!p)
			return false;
		p = skip_space(p, end);
		if (p >= end || *p != ':')
			return false;
		p = skip_space(p + 1, end);
		struct span *field = span_is(&key, "type")         ? &r->type
		                     : span_is(&key, "request_id") ? &r->request_id
		                     : span_is(&key, "method")     ? &r->method
		                     : span_is(&key, "path")       ? &r->path
		                     : span_is(&key, "body_b64")   ? &r->body_b64
		                                                   : NULL;
		if (field) {
			if (field->s)
				return false;
			p = plain_string(p, end, field);
		} else if (span_is(&key, "headers") && !seen_headers) {
			seen_headers = true;
			p = plain_headers(p, end, r);
		} else {
			return false;
		}
		if (!p)
			return false;
		p = skip_space(p, end);
		if (p < end && *p == ',') {
			p = skip_space(p + 1, end);
			continue;
		}
		if (p >= end || *p != '}')
			return false;
		return skip_space(p + 1, end) == end && span_is(&r->type, "proxy_request");
	}
}

struct backend_job *backend_job_from_text(const struct agent_config *cfg, const char *text,
                                          size_t len, uint64_t generation)
{
	(void)cfg;
	struct plain_request r;
	if (!plain_request_read(text, len, &r))
		return NULL;
	/* The checks of backend_job_from_request; a request that fails one goes that way. */
	if (!r.request_id.s || r.request_id.len > AGENT_REQUEST_ID_MAX ||
	    !util_valid_printable(r.request_id.s, r.request_id.len, AGENT_REQUEST_ID_MAX))
		return NULL;
	struct span method = r.method.s ? r.method : (struct span){"GET", 3};
	struct span path = r.path.s ? r.path : (struct span){"/", 1};
	if (method.len > AGENT_METHOD_MAX || !http_is_token(method.s, method.len) ||
	    (method.len == 7 && strncasecmp(method.s, "CONNECT", 7) == 0) ||
	    !valid_path(path.s, path.len))
		return NULL;
	struct backend_job *job = calloc(1, sizeof(*job));
	if (!job)
		return NULL;
	struct ee_error err;
	job->kind = JOB_PROXY;
	job->generation = generation;
	memcpy(job->request_id, r.request_id.s, r.request_id.len);
	memcpy(job->method, method.s, method.len);
	job->path = strndup(path.s, path.len);
	if (!job->path)
		goto fallback;
	bool has_accept = false;
	for (int i = 0; i < r.header_count; i++) {
		char name[AGENT_HEADER_NAME_MAX + 1];
		size_t nlen = r.header_names[i].len;
		if (nlen > AGENT_HEADER_NAME_MAX)
			goto fallback;
		memcpy(name, r.header_names[i].s, nlen);
		name[nlen] = '\0';
		if (take_header(job, name, nlen, r.header_values[i].s, r.header_values[i].len,
		                &has_accept, &err) != 0)
			goto fallback;
	}
	if (finish_headers(job, has_accept, &err) != 0)
		goto fallback;
	if (r.body_b64.s) {
		job->body = malloc(base64_decoded_max(r.body_b64.len) + 1);
		if (!job->body ||
		    base64_decode(r.body_b64.s, r.body_b64.len, job->body, &job->body_len) != 0)
			goto fallback;
	}
	return job;
fallback:
	backend_job_free(job);
	return NULL;
}

int backend_job_describe(const struct backend_job *job, struct buf *out)
{
	buf_printf(out, "%s %s %s\n", job->request_id, job->method, job->path ? job->path : "");
	for (const struct curl_slist *l = job->headers; l; l = l->next)
		buf_printf(out, "%s\n", l->data);
	buf_printf(out, "body %s %zu:", job->body ? "set" : "none", job->body_len);
	if (job->body_len)
		buf_append(out, job->body, job->body_len);
	return out->failed ? -1 : 0;
}

const char *backend_job_request_id(const struct backend_job *job)
{
	return job->request_id;
}

struct backend_job *backend_job_health(uint64_t generation)
{
	struct backend_job *job = calloc(1, sizeof(*job));
	if (job) {
		job->kind = JOB_HEALTH;
		job->generation = generation;
	}
	return job;
}

void backend_job_free(struct backend_job *job)
{
	if (!job)
		return;
	free(job->path);
	curl_slist_free_all(job->headers);
	free(job->body);
	free(job);
}

/* --- building the answer --- */

/*
 * {"type":"proxy_response","request_id":..,"status":..,"headers":{..},"body_b64":".."}
 * written once, straight into an LWS_PRE-headroomed buffer; headers_json
 * is the headers object's text.
 */
static struct outbox_msg *proxy_response(uint64_t generation, const char *request_id, int status,
                                         const char *headers_json, size_t headers_len,
                                         const unsigned char *body, size_t body_len)
{
	static const char open_text[] = "{\"type\":\"proxy_response\",\"request_id\":";
	static const char body_key[] = ",\"body_b64\":\"";
	static const char tail[] = "\"}";
	char status_text[48];
	int status_len = snprintf(status_text, sizeof(status_text), ",\"status\":%d,\"headers\":",
	                          status);
	size_t id_len = strlen(request_id);
	size_t b64_len = base64_encoded_len(body_len);
	size_t len = sizeof(open_text) - 1 + json_string_len(request_id, id_len) +
	             (size_t)status_len + headers_len + sizeof(body_key) - 1 + b64_len +
	             sizeof(tail) - 1;
	char *mem = malloc(LWS_PRE + len + 1);
	if (!mem)
		return NULL;
	char *p = mem + LWS_PRE;
	memcpy(p, open_text, sizeof(open_text) - 1);
	p = json_string_put(p + sizeof(open_text) - 1, request_id, id_len);
	memcpy(p, status_text, (size_t)status_len);
	p += status_len;
	memcpy(p, headers_json, headers_len);
	p += headers_len;
	memcpy(p, body_key, sizeof(body_key) - 1);
	p += sizeof(body_key) - 1;
	base64_encode(body, body_len, p);
	p += b64_len;
	memcpy(p, tail, sizeof(tail)); /* with its NUL */
	return outbox_msg_adopt(generation, mem, len);
}

struct outbox_msg *backend_error_response(uint64_t generation, const char *request_id, int status,
                                          const char *reason)
{
	static const char headers[] = "{\"Content-Type\":\"application/json\"}";
	static const char open_body[] = "{\"allowed\":false,\"reason\":";
	size_t reason_len = strlen(reason);
	size_t len = sizeof(open_body) - 1 + json_string_len(reason, reason_len) + 1;
	char *body = malloc(len + 1);
	if (!body)
		return NULL;
	memcpy(body, open_body, sizeof(open_body) - 1);
	char *p = json_string_put(body + sizeof(open_body) - 1, reason, reason_len);
	*p = '}';
	struct outbox_msg *m = proxy_response(generation, request_id, status, headers,
	                                      sizeof(headers) - 1, (const unsigned char *)body, len);
	free(body);
	return m;
}

/* --- libcurl callbacks --- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct backend_reply *r = arg;
	size_t n = size * nmemb;
	if (r->body.len + n > r->max_body) {
		r->too_large = true;
		return 0; /* aborts the transfer */
	}
	if (buf_append(&r->body, data, n) != 0)
		return 0;
	return n;
}

void backend_headers_init(struct backend_headers *h)
{
	buf_init(&h->fields);
	h->count = 0;
}

void backend_headers_reset(struct backend_headers *h)
{
	buf_reset(&h->fields);
	h->fields.failed = false;
	h->count = 0;
}

void backend_headers_free(struct backend_headers *h)
{
	buf_free(&h->fields);
	h->count = 0;
}

/* Keeps one field; its name is a token of at most AGENT_HEADER_NAME_MAX bytes. */
static int add_response_header(struct backend_headers *h, const char *name, size_t nlen,
                               const char *value, size_t vlen)
{
	/* More fields than any sane answer has: the rest, repeats too, are dropped. */
	if (h->count >= AGENT_HEADERS_MAX)
		return 0;
	int i = 0;
	while (i < h->count && (h->names[i].len != nlen ||
	                        strncasecmp(h->fields.data + h->names[i].off, name, nlen) != 0))
		i++;
	unsigned char index = (unsigned char)i;
	size_t off = h->fields.len + 1;
	if (buf_reserve(&h->fields, 1 + nlen + 1 + vlen + 1) != 0 ||
	    buf_append(&h->fields, &index, 1) != 0 || buf_append(&h->fields, name, nlen + 1) != 0 ||
	    buf_append(&h->fields, value, vlen) != 0 || buf_append(&h->fields, "", 1) != 0)
		return -1;
	if (i == h->count) {
		h->names[i].off = off;
		h->names[i].len = nlen;
		h->names[i].count = 0;
		h->count++;
	}
	h->names[i].count++;
	return 0;
}

int backend_header_line(struct backend_headers *h, const char *data, size_t n, bool keep_length)
{
	/* A new status line starts a new header block (after 1xx answers). */
	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		backend_headers_reset(h);
		return 0;
	}
	size_t len = n;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	if (len == 0)
		return 0;
	const char *colon = memchr(data, ':', len);
	if (!colon || colon == data || (size_t)(colon - data) > AGENT_HEADER_NAME_MAX ||
	    len > AGENT_HEADER_NAME_MAX + AGENT_HEADER_VALUE_MAX)
		return 0; /* folded or broken lines are dropped, not forwarded */
	char name[AGENT_HEADER_NAME_MAX + 1];
	size_t nlen = (size_t)(colon - data);
	memcpy(name, data, nlen);
	name[nlen] = '\0';
	if (!http_is_token(name, nlen) || http_header_is_hop_by_hop(name, nlen) ||
	    (!keep_length && strcasecmp(name, "content-length") == 0))
		return 0;
	const char *v = colon + 1, *end = data + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	/* A value is forwarded only as a header line can carry it. */
	if (!valid_header_value(v, (size_t)(end - v)))
		return 0;
	if (h->fields.failed)
		return -1;
	return add_response_header(h, name, nlen, v, (size_t)(end - v));
}

/*
 * The next value of header name number i in the packed fields (each entry:
 * the name's index byte, the name, NUL, the value, NUL), from *p on;
 * NULL when there is none.
 */
static const char *next_value_of(const char **p, const char *end, int i, size_t *vlen)
{
	while (*p < end) {
		unsigned char index = (unsigned char)**p;
		const char *value = *p + 1 + strlen(*p + 1) + 1;
		*vlen = strlen(value);
		*p = value + *vlen + 1;
		if (index == i)
			return value;
	}
	return NULL;
}

int backend_headers_json(const struct backend_headers *h, struct buf *out)
{
	if (h->count == 0 || !h->fields.data)
		return buf_append(out, "{}", 2);
	const char *fields = h->fields.data;
	const char *fields_end = fields + h->fields.len;
	buf_append(out, "{", 1);
	for (int i = 0; i < h->count; i++) {
		const struct backend_header_name *nm = &h->names[i];
		const char *name = fields + nm->off;
		bool list = nm->count > 1 && strcasecmp(name, "set-cookie") == 0;
		if (i)
			buf_append(out, ",", 1);
		json_append_bytes(out, name, nm->len);
		buf_append(out, list ? ":[" : ":", list ? 2 : 1);
		if (nm->count == 1 || list) {
			const char *p = fields, *value;
			size_t vlen;
			for (unsigned seen = 0; seen < nm->count &&
			                        (value = next_value_of(&p, fields_end, i, &vlen));
			     seen++) {
				if (seen)
					buf_append(out, ",", 1);
				json_append_bytes(out, value, vlen);
			}
			if (list)
				buf_append(out, "]", 1);
			continue;
		}
		/* Other repeats: one string, the values joined with ", ". */
		struct buf joined;
		buf_init(&joined);
		const char *p = fields, *value;
		size_t vlen;
		for (unsigned seen = 0;
		     seen < nm->count && (value = next_value_of(&p, fields_end, i, &vlen)); seen++) {
			if (seen)
				buf_append(&joined, ", ", 2);
			buf_append(&joined, value, vlen);
		}
		int rc = joined.failed ? -1 : json_append_bytes(out, joined.data, joined.len);
		buf_free(&joined);
		if (rc != 0)
			return -1;
	}
	buf_append(out, "}", 1);
	return out->failed ? -1 : 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct backend_reply *r = arg;
	size_t n = size * nmemb;
	return backend_header_line(&r->headers, data, n, r->keep_length) == 0 ? n : 0;
}

/* --- the transfer thread --- */

static void set_common(struct backend_pool *pool, CURL *c)
{
	const struct agent_config *cfg = pool->cfg;
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cfg->backend_timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->backend_connect_timeout_ms);
	/* Bytes go through as the backend sent them: no decoding of Content-Encoding. */
	curl_easy_setopt(c, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	curl_easy_setopt(c, CURLOPT_HTTP_TRANSFER_DECODING, 1L);
	curl_easy_setopt(c, CURLOPT_PROXY, pool->proxy);
	curl_easy_setopt(c, CURLOPT_NOPROXY, pool->noproxy);
}

static void note_backend(struct backend_pool *pool, bool ok, const char *why)
{
	bool was_failing = pool->failing;
	pool->failing = !ok;
	if (!ok && !was_failing)
		log_warn("backend unavailable: %s", why);
	else if (ok && was_failing)
		log_info("backend reachable again");
}

/* Sets the URL of path on the backend (libcurl keeps a copy). */
static int set_url(struct backend_pool *pool, CURL *c, const char *path)
{
	struct buf *url = &pool->scratch;
	buf_reset(url);
	if (buf_puts(url, pool->cfg->backend_url) != 0 || buf_puts(url, path) != 0)
		return -1;
	return curl_easy_setopt(c, CURLOPT_URL, url->data) == CURLE_OK ? 0 : -1;
}

/*
 * Sets the slot's easy handle up for its job; -1 when out of memory.  A
 * handle that served a proxied request last keeps every setting but those
 * that differ between requests (URL, header list, method and body), which
 * are all set again here: curl_easy_reset and a dozen options per request
 * were a measurable part of the agent's CPU (docs/PERFORMANCE.md).
 */
static int slot_prepare(struct backend_pool *pool, struct backend_slot *slot)
{
	const struct agent_config *cfg = pool->cfg;
	struct backend_job *job = slot->job;
	struct backend_reply *reply = &slot->reply;
	backend_headers_reset(&reply->headers);
	buf_reset(&reply->body);
	reply->body.failed = false;
	reply->too_large = false;
	CURL *c = slot->easy;
	if (job->kind == JOB_HEALTH) {
		curl_easy_reset(c);
		slot->proxy_ready = false;
		curl_easy_setopt(c, CURLOPT_PRIVATE, (void *)slot);
		reply->max_body = 64 * 1024;
		reply->keep_length = false;
		set_common(pool, c);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
		return set_url(pool, c, cfg->health_path);
	}
	reply->max_body = cfg->max_response_bytes;
	if (!slot->proxy_ready) {
		curl_easy_reset(c);
		curl_easy_setopt(c, CURLOPT_PRIVATE, (void *)slot);
		set_common(pool, c);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
		curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(c, CURLOPT_HEADERDATA, reply);
		slot->proxy_ready = true;
	}
	if (set_url(pool, c, job->path) != 0)
		return -1;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, job->headers);
	bool head = strcmp(job->method, "HEAD") == 0;
	reply->keep_length = head;
	bool sends_body = job->body_len > 0 || strcmp(job->method, "POST") == 0 ||
	                  strcmp(job->method, "PUT") == 0 || strcmp(job->method, "PATCH") == 0;
	/* Back to a plain GET with no body and no custom method; then this job's. */
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
	if (head) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (sends_body) {
		static const unsigned char empty[1];
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)job->body_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, job->body ? (void *)job->body : (void *)empty);
		if (strcmp(job->method, "POST") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, job->method);
	} else if (strcmp(job->method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, job->method);
	}
	return 0;
}

/* The tunnel message for a finished proxied request. */
static struct outbox_msg *proxy_answer(struct backend_pool *pool, struct backend_slot *slot,
                                       CURLcode rc)
{
	const struct agent_config *cfg = pool->cfg;
	struct backend_job *job = slot->job;
	struct backend_reply *reply = &slot->reply;
	long status = 0;
	curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_OK && status >= 100 && status <= 599) {
		note_backend(pool, true, NULL);
		struct buf *headers = &pool->scratch;
		buf_reset(headers);
		headers->failed = false;
		if (backend_headers_json(&reply->headers, headers) != 0)
			return NULL;
		return proxy_response(job->generation, job->request_id, (int)status, headers->data,
		                      headers->len, (const unsigned char *)reply->body.data,
		                      reply->body.len);
	}
	if (reply->too_large) {
		log_warn("backend response over %zu bytes: answered 502", cfg->max_response_bytes);
		return backend_error_response(job->generation, job->request_id, 502,
		                              "response_too_large");
	}
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		if (status == 0)
			note_backend(pool, false, curl_easy_strerror(rc));
		return backend_error_response(job->generation, job->request_id, 504, "backend_timeout");
	}
	note_backend(pool, false, curl_easy_strerror(rc));
	return backend_error_response(job->generation, job->request_id, 502, "backend_unavailable");
}

/* The heartbeat for a finished probe of EE_HEALTH_PATH. */
static struct outbox_msg *health_answer(struct backend_slot *slot, CURLcode rc)
{
	long status = 0;
	curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &status);
	bool pass = rc == CURLE_OK && status >= 200 && status < 400;
	if (!pass)
		log_warn("backend health probe failed: %s",
		         rc != CURLE_OK ? curl_easy_strerror(rc) : util_http_status_text((int)status));
	const char *text = pass ? "{\"type\":\"health\",\"status\":\"pass\"}"
	                        : "{\"type\":\"health\",\"status\":\"fail\"}";
	return outbox_msg_new(slot->job->generation, text, strlen(text));
}

/* Frees what the slot's job holds; the slot is free again. */
static void slot_release(struct backend_slot *slot)
{
	backend_job_free(slot->job);
	slot->job = NULL;
	backend_headers_reset(&slot->reply.headers);
	/* A large body's buffer is not kept for the next request. */
	if (slot->reply.body.cap > 64 * 1024)
		buf_free(&slot->reply.body);
	else
		buf_reset(&slot->reply.body);
	if (slot->reply.headers.fields.cap > 64 * 1024)
		backend_headers_free(&slot->reply.headers);
}

static void post_answer(struct backend_pool *pool, struct outbox_msg *m)
{
	if (m)
		outbox_post(pool->outbox, m);
	else
		log_error("out of memory answering a proxied request");
}

/* Starts the job in a free slot; an answer at once when it cannot start. */
static void slot_start(struct backend_pool *pool, struct backend_slot *slot,
                       struct backend_job *job)
{
	slot->job = job;
	if (slot->easy && slot_prepare(pool, slot) == 0 &&
	    curl_multi_add_handle(pool->multi, slot->easy) == CURLM_OK)
		return;
	post_answer(pool, job->kind == JOB_PROXY
	                          ? backend_error_response(job->generation, job->request_id, 500,
	                                                   "out_of_memory")
	                          : health_answer(slot, CURLE_OUT_OF_MEMORY));
	slot_release(slot);
	pthread_mutex_lock(&pool->lock);
	pool->running--;
	pthread_mutex_unlock(&pool->lock);
}

/* Moves waiting jobs into free slots. */
static void start_waiting(struct backend_pool *pool)
{
	int workers = pool->cfg->backend_workers;
	for (int i = 0; i < workers; i++) {
		if (pool->slots[i].job)
			continue;
		pthread_mutex_lock(&pool->lock);
		struct backend_job *job = pool->head;
		if (job) {
			pool->head = job->next;
			if (!pool->head)
				pool->tail = NULL;
			pool->queued--;
			pool->running++;
		}
		pthread_mutex_unlock(&pool->lock);
		if (!job)
			return;
		slot_start(pool, &pool->slots[i], job);
	}
}

/* Answers every transfer libcurl has finished and frees its slot; how many finished. */
static int finish_done(struct backend_pool *pool)
{
	CURLMsg *msg;
	int left, finished = 0;
	while ((msg = curl_multi_info_read(pool->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *easy = msg->easy_handle;
		CURLcode rc = msg->data.result;
		char *priv = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		struct backend_slot *slot = (struct backend_slot *)(void *)priv;
		curl_multi_remove_handle(pool->multi, easy);
		if (!slot || !slot->job)
			continue;
		post_answer(pool, slot->job->kind == JOB_PROXY ? proxy_answer(pool, slot, rc)
		                                               : health_answer(slot, rc));
		slot_release(slot);
		pthread_mutex_lock(&pool->lock);
		pool->running--;
		pthread_mutex_unlock(&pool->lock);
		finished++;
	}
	return finished;
}

/* CURLMOPT_SOCKETFUNCTION: keeps pfds as libcurl wants its sockets watched. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *arg, void *socketp)
{
	struct backend_pool *pool = arg;
	(void)easy, (void)socketp;
	int i = 1;
	while (i < pool->npfds && pool->pfds[i].fd != s)
		i++;
	if (what == CURL_POLL_REMOVE) {
		if (i < pool->npfds)
			pool->pfds[i] = pool->pfds[--pool->npfds];
		return 0;
	}
	if (i == pool->npfds) {
		if (pool->npfds == pool->cap_pfds) {
			int cap = pool->cap_pfds * 2;
			struct pollfd *p = realloc(pool->pfds, (size_t)cap * sizeof(*p));
			if (!p)
				return -1; /* libcurl fails the transfer */
			pool->pfds = p;
			pool->cap_pfds = cap;
		}
		pool->pfds[i].fd = s;
		pool->npfds++;
	}
	pool->pfds[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) |
	                               ((what & CURL_POLL_OUT) ? POLLOUT : 0));
	pool->pfds[i].revents = 0;
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: when libcurl next wants CURL_SOCKET_TIMEOUT (-1: never). */
static int on_timer(CURLM *multi, long timeout_ms, void *arg)
{
	struct backend_pool *pool = arg;
	(void)multi;
	pool->timer_set = timeout_ms >= 0;
	if (pool->timer_set)
		pool->timer_due_ms = time_monotonic_ms() + timeout_ms;
	return 0;
}

/* Reads the wake; jobs submitted from here on write another. */
static void take_wake(struct backend_pool *pool)
{
	uint64_t n;
	while (read(pool->wake_fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&pool->lock);
	pool->wake_pending = false;
	pthread_mutex_unlock(&pool->lock);
}

static bool stopping(struct backend_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	bool stop = pool->stop;
	pthread_mutex_unlock(&pool->lock);
	return stop;
}

static void *transfer_main(void *arg)
{
	struct backend_pool *pool = arg;
	int running_handles;
	/* At most this many ready sockets are served per poll; the rest at the next. */
	enum { READY_MAX = 64 };
	struct pollfd ready[READY_MAX];
	while (!stopping(pool)) {
		start_waiting(pool);
		/* New transfers ask for a timeout of 0: they start here, before any sleep. */
		if (pool->timer_set && pool->timer_due_ms <= time_monotonic_ms()) {
			pool->timer_set = false;
			curl_multi_socket_action(pool->multi, CURL_SOCKET_TIMEOUT, 0, &running_handles);
			if (finish_done(pool) > 0)
				continue;
		}
		int timeout = -1;
		if (pool->timer_set) {
			int64_t wait = pool->timer_due_ms - time_monotonic_ms();
			timeout = wait < 0 ? 0 : wait > 1000 ? 1000 : (int)wait;
		}
		int n = poll(pool->pfds, (nfds_t)pool->npfds, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("backend poll: %s", strerror(errno));
			break;
		}
		if (n <= 0)
			continue;
		/* libcurl changes pfds while it acts: copy the ready entries first. */
		int nready = 0;
		for (int i = 0; i < pool->npfds && nready < READY_MAX; i++)
			if (pool->pfds[i].revents)
				ready[nready++] = pool->pfds[i];
		for (int i = 0; i < nready; i++) {
			if (ready[i].fd == pool->wake_fd) {
				take_wake(pool);
				continue;
			}
			int bits = ((ready[i].revents & POLLIN) ? CURL_CSELECT_IN : 0) |
			           ((ready[i].revents & POLLOUT) ? CURL_CSELECT_OUT : 0) |
			           ((ready[i].revents & (POLLERR | POLLHUP | POLLNVAL)) ? CURL_CSELECT_ERR
			                                                               : 0);
			curl_multi_socket_action(pool->multi, ready[i].fd, bits, &running_handles);
		}
		finish_done(pool);
	}
	/* Stopping: transfers under way are abandoned, their answers never sent. */
	for (int i = 0; i < pool->cfg->backend_workers; i++) {
		if (pool->slots[i].job) {
			curl_multi_remove_handle(pool->multi, pool->slots[i].easy);
			slot_release(&pool->slots[i]);
		}
	}
	return NULL;
}

static void pool_free(struct backend_pool *pool)
{
	while (pool->head) {
		struct backend_job *next = pool->head->next;
		backend_job_free(pool->head);
		pool->head = next;
	}
	if (pool->slots)
		for (int i = 0; i < pool->cfg->backend_workers; i++) {
			curl_easy_cleanup(pool->slots[i].easy);
			backend_headers_free(&pool->slots[i].reply.headers);
			buf_free(&pool->slots[i].reply.body);
		}
	buf_free(&pool->scratch);
	free(pool->slots);
	if (pool->multi)
		curl_multi_cleanup(pool->multi);
	if (pool->wake_fd >= 0)
		close(pool->wake_fd);
	free(pool->pfds);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

int backend_pool_start(const struct agent_config *cfg, struct outbox *ob,
                       struct backend_pool **out, struct ee_error *err)
{
	struct backend_pool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return ee_fail(err, 500, "out_of_memory");
	if (pthread_mutex_init(&pool->lock, NULL) != 0) {
		free(pool);
		return ee_fail(err, 500, "out_of_memory");
	}
	pool->cfg = cfg;
	pool->outbox = ob;
	read_proxy_env(pool);
	pool->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pool->multi = curl_multi_init();
	pool->slots = calloc((size_t)cfg->backend_workers, sizeof(*pool->slots));
	pool->cap_pfds = 16;
	pool->pfds = calloc((size_t)pool->cap_pfds, sizeof(*pool->pfds));
	if (pool->wake_fd < 0 || !pool->multi || !pool->slots || !pool->pfds) {
		pool_free(pool);
		return ee_fail(err, 500, "out_of_memory");
	}
	pool->pfds[0].fd = pool->wake_fd;
	pool->pfds[0].events = POLLIN;
	pool->npfds = 1;
	buf_init(&pool->scratch);
	for (int i = 0; i < cfg->backend_workers; i++) {
		backend_headers_init(&pool->slots[i].reply.headers);
		buf_init(&pool->slots[i].reply.body);
		pool->slots[i].easy = curl_easy_init();
		if (!pool->slots[i].easy) {
			pool_free(pool);
			return ee_fail(err, 500, "out_of_memory");
		}
	}
	curl_multi_setopt(pool->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(pool->multi, CURLMOPT_SOCKETDATA, pool);
	curl_multi_setopt(pool->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(pool->multi, CURLMOPT_TIMERDATA, pool);
	/* One idle connection kept per slot, as each worker thread's handle used to keep one. */
	curl_multi_setopt(pool->multi, CURLMOPT_MAXCONNECTS, (long)cfg->backend_workers);
	if (pthread_create(&pool->thread, NULL, transfer_main, pool) != 0) {
		pool_free(pool);
		return ee_fail(err, 500, "thread_start_failed");
	}
	pool->started = true;
	*out = pool;
	return 0;
}

/* Wakes the transfer thread (any thread; the eventfd counts, one read takes them all). */
static void wake_transfers(struct backend_pool *pool)
{
	uint64_t one = 1;
	while (write(pool->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

int backend_pool_submit(struct backend_pool *pool, struct backend_job *job)
{
	pthread_mutex_lock(&pool->lock);
	/* A job first takes a free slot; past them at most EE_BACKEND_QUEUE wait. */
	int free_slots = pool->cfg->backend_workers - pool->running;
	if (pool->queued - (free_slots > 0 ? free_slots : 0) >= pool->cfg->backend_queue) {
		pthread_mutex_unlock(&pool->lock);
		return -1;
	}
	job->next = NULL;
	if (pool->tail)
		pool->tail->next = job;
	else
		pool->head = job;
	pool->tail = job;
	pool->queued++;
	bool wake = !pool->wake_pending;
	pool->wake_pending = true;
	pthread_mutex_unlock(&pool->lock);
	if (wake)
		wake_transfers(pool);
	return 0;
}

int backend_pool_busy(struct backend_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	int n = pool->queued + pool->running;
	pthread_mutex_unlock(&pool->lock);
	return n;
}

void backend_pool_stop(struct backend_pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stop = true;
	pthread_mutex_unlock(&pool->lock);
	wake_transfers(pool);
	if (pool->started)
		pthread_join(pool->thread, NULL);
	pool_free(pool);
}
