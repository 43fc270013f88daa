/*
 * backend.c - proxied requests to the backend, many at a time.
 *
 * A fixed pool of threads, each with one libcurl handle it reuses (so
 * connections to the backend are kept alive), takes jobs from a bounded
 * queue.  A job is a proxy_request already checked at the boundary
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

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <libwebsockets.h>

#include "base64.h"
#include "http_parser.h"
#include "log.h"
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

struct backend_pool {
	const struct agent_config *cfg;
	struct outbox *outbox;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct backend_job *head, *tail;
	int queued, running;
	bool stop;
	int thread_count;
	pthread_t *threads;
	atomic_bool failing;  /* the last request could not reach the backend */
	atomic_bool aborting; /* stopping: transfers under way give up */
};

/* What one request brings back, filled by libcurl's callbacks. */
struct backend_reply {
	struct json_object *headers;
	struct buf body;
	size_t max_body;
	bool too_large;
	bool keep_length; /* HEAD: the length the body would have is the answer's */
};

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

static int add_header(struct backend_job *job, const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 3;
	char *line = malloc(n);
	if (!line)
		return -1;
	/* "Name;" is libcurl's way to send a field with an empty value. */
	if (*value)
		snprintf(line, n, "%s: %s", name, value);
	else
		snprintf(line, n, "%s;", name);
	struct curl_slist *l = curl_slist_append(job->headers, line);
	free(line);
	if (!l)
		return -1;
	job->headers = l;
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
			const char *v = json_object_get_string(value);
			if (!valid_header_value(v, (size_t)json_object_get_string_len(value)) ||
			    strlen(v) != (size_t)json_object_get_string_len(value))
				return fail_request(err, "header_value");
			if (skipped_request_header(name, nlen))
				continue;
			if (strcasecmp(name, "accept") == 0)
				has_accept = true;
			if (add_header(job, name, v) != 0)
				return ee_fail(err, 500, "out_of_memory");
		}
	}
	/* Keep libcurl from adding what the client did not send. */
	if ((!has_accept && add_header(job, "Accept", "") != 0) ||
	    !(job->headers = curl_slist_append(job->headers, "Expect:")))
		return ee_fail(err, 500, "out_of_memory");
	return 0;
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

static char *json_text(struct json_object *o)
{
	const char *s =
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	return s ? strdup(s) : NULL;
}

/*
 * {"type":"proxy_response","request_id":..,"status":..,"headers":{..},"body_b64":".."}
 * written once into an LWS_PRE-headroomed buffer.
 */
static struct outbox_msg *proxy_response(uint64_t generation, const char *request_id, int status,
                                         struct json_object *headers, const unsigned char *body,
                                         size_t body_len)
{
	struct json_object *id = json_object_new_string(request_id);
	char *id_text = id ? json_text(id) : NULL;
	char *headers_text = json_text(headers);
	json_object_put(id);
	struct outbox_msg *m = NULL;
	if (id_text && headers_text) {
		char head[64];
		snprintf(head, sizeof(head), ",\"status\":%d,\"headers\":", status);
		static const char open_text[] = "{\"type\":\"proxy_response\",\"request_id\":";
		static const char body_key[] = ",\"body_b64\":\"";
		static const char tail[] = "\"}";
		size_t b64_len = base64_encoded_len(body_len);
		size_t len = strlen(open_text) + strlen(id_text) + strlen(head) + strlen(headers_text) +
		             strlen(body_key) + b64_len + strlen(tail);
		char *mem = malloc(LWS_PRE + len + 1);
		if (mem) {
			char *p = mem + LWS_PRE;
			p += sprintf(p, "%s%s%s%s%s", open_text, id_text, head, headers_text, body_key);
			base64_encode(body, body_len, p);
			p += b64_len;
			memcpy(p, tail, sizeof(tail));
			m = outbox_msg_adopt(generation, mem, len);
		}
	}
	free(id_text);
	free(headers_text);
	return m;
}

struct outbox_msg *backend_error_response(uint64_t generation, const char *request_id, int status,
                                          const char *reason)
{
	struct json_object *headers = json_object_new_object();
	struct json_object *body = json_object_new_object();
	struct outbox_msg *m = NULL;
	if (headers && body) {
		json_object_object_add(headers, "Content-Type",
		                       json_object_new_string("application/json"));
		json_object_object_add(body, "allowed", json_object_new_boolean(false));
		json_object_object_add(body, "reason", json_object_new_string(reason));
		char *text = json_text(body);
		if (text)
			m = proxy_response(generation, request_id, status, headers,
			                   (const unsigned char *)text, strlen(text));
		free(text);
	}
	json_object_put(headers);
	json_object_put(body);
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

/* One response field into the headers object: Set-Cookie lines as an array, others joined. */
static int add_response_header(struct json_object *headers, const char *name, const char *value)
{
	struct json_object *prev = NULL;
	const char *key = name;
	json_object_object_foreach(headers, existing, v)
	{
		if (strcasecmp(existing, name) == 0) {
			prev = v;
			key = existing;
			break;
		}
	}
	if (!prev)
		return json_object_object_add(headers, name, json_object_new_string(value));
	if (strcasecmp(name, "set-cookie") == 0) {
		if (json_object_is_type(prev, json_type_array))
			return json_object_array_add(prev, json_object_new_string(value));
		struct json_object *list = json_object_new_array();
		if (!list)
			return -1;
		json_object_array_add(list, json_object_get(prev));
		json_object_array_add(list, json_object_new_string(value));
		return json_object_object_add(headers, key, list);
	}
	struct buf joined;
	buf_init(&joined);
	buf_printf(&joined, "%s, %s", json_object_get_string(prev), value);
	int rc = joined.failed ? -1
	                       : json_object_object_add(headers, key,
	                                                json_object_new_string_len(
	                                                        joined.data, (int)joined.len));
	buf_free(&joined);
	return rc;
}

int backend_header_line(struct json_object **headers, const char *data, size_t n,
                        bool keep_length)
{
	/* A new status line starts a new header block (after 1xx answers). */
	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		json_object_put(*headers);
		*headers = json_object_new_object();
		return *headers ? 0 : -1;
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
	if (!*headers)
		return -1;
	if (json_object_object_length(*headers) >= AGENT_HEADERS_MAX)
		return 0; /* more fields than any sane answer has: the rest are dropped */
	char *value = strndup(v, (size_t)(end - v));
	if (!value)
		return -1;
	int rc = add_response_header(*headers, name, value);
	free(value);
	return rc;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct backend_reply *r = arg;
	size_t n = size * nmemb;
	return backend_header_line(&r->headers, data, n, r->keep_length) == 0 ? n : 0;
}

/* --- the workers --- */

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	struct backend_pool *pool = arg;
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return atomic_load(&pool->aborting) ? 1 : 0;
}

static void set_common(struct backend_pool *pool, CURL *c, const char *url)
{
	const struct agent_config *cfg = pool->cfg;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cfg->backend_timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->backend_connect_timeout_ms);
	/* Bytes go through as the backend sent them: no decoding of Content-Encoding. */
	curl_easy_setopt(c, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	curl_easy_setopt(c, CURLOPT_HTTP_TRANSFER_DECODING, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, pool);
}

static void note_backend(struct backend_pool *pool, bool ok, const char *why)
{
	bool was_failing = atomic_exchange(&pool->failing, !ok);
	if (!ok && !was_failing)
		log_warn("backend unavailable: %s", why);
	else if (ok && was_failing)
		log_info("backend reachable again");
}

static char *job_url(const struct agent_config *cfg, const char *path)
{
	size_t n = strlen(cfg->backend_url) + strlen(path) + 1;
	char *url = malloc(n);
	if (url)
		snprintf(url, n, "%s%s", cfg->backend_url, path);
	return url;
}

static struct outbox_msg *run_proxy(struct backend_pool *pool, CURL *c, struct backend_job *job)
{
	const struct agent_config *cfg = pool->cfg;
	char *url = job_url(cfg, job->path);
	struct backend_reply reply = {.headers = json_object_new_object(),
	                              .max_body = cfg->max_response_bytes};
	buf_init(&reply.body);
	if (!url || !reply.headers) {
		free(url);
		json_object_put(reply.headers);
		return backend_error_response(job->generation, job->request_id, 500, "out_of_memory");
	}
	curl_easy_reset(c);
	set_common(pool, c, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, job->headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &reply);
	bool head = strcmp(job->method, "HEAD") == 0;
	reply.keep_length = head;
	bool sends_body = job->body_len > 0 || strcmp(job->method, "POST") == 0 ||
	                  strcmp(job->method, "PUT") == 0 || strcmp(job->method, "PATCH") == 0;
	if (head) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (sends_body) {
		static const unsigned char empty[1];
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, job->body ? (void *)job->body : (void *)empty);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)job->body_len);
		if (strcmp(job->method, "POST") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, job->method);
	} else if (strcmp(job->method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, job->method);
	}
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	struct outbox_msg *m;
	if (rc == CURLE_OK && status >= 100 && status <= 599) {
		note_backend(pool, true, NULL);
		m = proxy_response(job->generation, job->request_id, (int)status, reply.headers,
		                   (const unsigned char *)reply.body.data, reply.body.len);
	} else if (reply.too_large) {
		log_warn("backend response over %zu bytes: answered 502", cfg->max_response_bytes);
		m = backend_error_response(job->generation, job->request_id, 502,
		                           "response_too_large");
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		if (status == 0)
			note_backend(pool, false, curl_easy_strerror(rc));
		m = backend_error_response(job->generation, job->request_id, 504, "backend_timeout");
	} else {
		note_backend(pool, false, curl_easy_strerror(rc));
		m = backend_error_response(job->generation, job->request_id, 502,
		                           "backend_unavailable");
	}
	free(url);
	json_object_put(reply.headers);
	buf_free(&reply.body);
	return m;
}

static struct outbox_msg *run_health(struct backend_pool *pool, CURL *c, struct backend_job *job)
{
	const struct agent_config *cfg = pool->cfg;
	char *url = job_url(cfg, cfg->health_path);
	struct backend_reply reply = {.max_body = 64 * 1024};
	buf_init(&reply.body);
	long status = 0;
	CURLcode rc = CURLE_OUT_OF_MEMORY;
	if (url) {
		curl_easy_reset(c);
		set_common(pool, c, url);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
		rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	}
	bool pass = rc == CURLE_OK && status >= 200 && status < 400;
	if (!pass)
		log_warn("backend health probe failed: %s",
		         rc != CURLE_OK ? curl_easy_strerror(rc) : util_http_status_text((int)status));
	free(url);
	buf_free(&reply.body);
	const char *text = pass ? "{\"type\":\"health\",\"status\":\"pass\"}"
	                        : "{\"type\":\"health\",\"status\":\"fail\"}";
	return outbox_msg_new(job->generation, text, strlen(text));
}

static void *worker_main(void *arg)
{
	struct backend_pool *pool = arg;
	CURL *c = curl_easy_init();
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->stop && !pool->head)
			pthread_cond_wait(&pool->wake, &pool->lock);
		if (pool->stop)
			break;
		struct backend_job *job = pool->head;
		pool->head = job->next;
		if (!pool->head)
			pool->tail = NULL;
		pool->queued--;
		pool->running++;
		pthread_mutex_unlock(&pool->lock);

		struct outbox_msg *m;
		if (!c)
			m = job->kind == JOB_PROXY ? backend_error_response(job->generation,
			                                                    job->request_id, 500,
			                                                    "out_of_memory")
			                           : NULL;
		else if (job->kind == JOB_PROXY)
			m = run_proxy(pool, c, job);
		else
			m = run_health(pool, c, job);
		if (m)
			outbox_post(pool->outbox, m);
		else
			log_error("out of memory answering a proxied request");
		backend_job_free(job);

		pthread_mutex_lock(&pool->lock);
		pool->running--;
	}
	pthread_mutex_unlock(&pool->lock);
	curl_easy_cleanup(c);
	return NULL;
}

int backend_pool_start(const struct agent_config *cfg, struct outbox *ob,
                       struct backend_pool **out, struct ee_error *err)
{
	struct backend_pool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return ee_fail(err, 500, "out_of_memory");
	pool->cfg = cfg;
	pool->outbox = ob;
	pool->threads = calloc((size_t)cfg->backend_workers, sizeof(pthread_t));
	if (!pool->threads || pthread_mutex_init(&pool->lock, NULL) != 0) {
		free(pool->threads);
		free(pool);
		return ee_fail(err, 500, "out_of_memory");
	}
	pthread_cond_init(&pool->wake, NULL);
	for (int i = 0; i < cfg->backend_workers; i++) {
		if (pthread_create(&pool->threads[i], NULL, worker_main, pool) != 0) {
			backend_pool_stop(pool);
			return ee_fail(err, 500, "thread_start_failed");
		}
		pool->thread_count++;
	}
	*out = pool;
	return 0;
}

int backend_pool_submit(struct backend_pool *pool, struct backend_job *job)
{
	pthread_mutex_lock(&pool->lock);
	if (pool->queued >= pool->cfg->backend_queue) {
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
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
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
	atomic_store(&pool->aborting, true);
	pthread_mutex_lock(&pool->lock);
	pool->stop = true;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	for (int i = 0; i < pool->thread_count; i++)
		pthread_join(pool->threads[i], NULL);
	while (pool->head) {
		struct backend_job *next = pool->head->next;
		backend_job_free(pool->head);
		pool->head = next;
	}
	pthread_cond_destroy(&pool->wake);
	pthread_mutex_destroy(&pool->lock);
	free(pool->threads);
	free(pool);
}
