/*
 * proxy_http.c - the proxy listener: plain HTTP/1.1 on a raw socket,
 * parsed by lib/http_parser.c so that every header of the client's request
 * reaches the agent (libwebsockets' own HTTP server only exposes the
 * headers it knows).
 *
 * The app is X-EE-App, else the first label of Host.  Hop-by-hop headers,
 * Host and X-EE-App are not forwarded; repeated headers are joined with
 * ", " ("; " for Cookie).  Keep-alive and pipelining are honoured, one
 * request at a time.  A slow client gets EE_PROXY_HEAD_TIMEOUT_SEC for its
 * head (from its first byte) and EE_PROXY_BODY_TIMEOUT_SEC for its body
 * (from the end of the head), each counted from its start, not refreshed
 * by each byte, so dripping bytes does not hold a socket.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_parser.h"
#include "json_writer.h"
#include "jsonutil.h"
#include "log.h"
#include "tunneld.h"

#define PROXY_IDLE_TIMEOUT_SEC 60
/* Writing an answer to a client that reads slowly. */
#define PROXY_WRITE_TIMEOUT_SEC 60
/* The largest refused body read and dropped rather than cut off. */
#define PROXY_MAX_DISCARD (64 * 1024 * 1024)
/* Pipelined input held while a request is answered, beyond one head. */
#define PROXY_MAX_BUFFERED (HTTP_MAX_HEAD_BYTES + 64 * 1024)

enum proxy_state {
	PROXY_HEAD,          /* reading a request head */
	PROXY_BODY_LENGTH,   /* reading a Content-Length body */
	PROXY_BODY_CHUNKED,  /* reading a chunked body */
	PROXY_WAITING,       /* the request is with an agent */
	PROXY_WRITING,       /* the answer is being written */
};

struct proxy_conn {
	struct lws *wsi;
	struct tunneld *td;
	enum proxy_state state;
	struct buf in;              /* received, not yet consumed */
	/* the request being read */
	struct job_request req;
	char app[EE_APP_NAME_MAX + 1];
	bool keep_alive;
	bool head_only;             /* HEAD: the answer has no body */
	uint64_t body_left;
	struct buf body;
	struct http_chunked_decoder chunked;
	struct job *job;
	/* the answer being written */
	struct buf out;
	size_t out_sent;
	bool close_after_write;
	bool started;               /* bytes of a new request have arrived */
	uint64_t discard_left;      /* bytes of a refused body still to read and drop */
};

static void conn_reset_request(struct proxy_conn *c)
{
	free(c->req.path);
	free(c->req.headers_json);
	free(c->req.body);
	memset(&c->req, 0, sizeof(c->req));
	buf_reset(&c->body);
	c->app[0] = '\0';
	c->body_left = 0;
	c->head_only = false;
	c->started = false;
}

static void consume(struct proxy_conn *c, size_t n)
{
	memmove(c->in.data, c->in.data + n, c->in.len - n);
	c->in.len -= n;
	c->in.data[c->in.len] = '\0';
}

/* Appends the decimal digits of n (no printf on the per-request path). */
static void append_decimal(struct buf *b, unsigned long long n)
{
	char digits[24];
	size_t i = sizeof(digits);
	do {
		digits[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	buf_append(b, digits + i, sizeof(digits) - i);
}

/* Appends "name: value\r\n". */
static void append_field(struct buf *b, const char *name, size_t nlen, const char *value,
                         size_t vlen)
{
	if (buf_reserve(b, nlen + vlen + 4) != 0)
		return;
	buf_append(b, name, nlen);
	buf_append(b, ": ", 2);
	buf_append(b, value, vlen);
	buf_append(b, "\r\n", 2);
}

/* Puts a complete HTTP answer in c->out and asks to write it. */
static void queue_answer(struct proxy_conn *c, int status, struct json_object *headers,
                         const unsigned char *body, size_t body_len, bool close)
{
	buf_reset(&c->out);
	c->out_sent = 0;
	if (close)
		c->keep_alive = false;
	c->close_after_write = !c->keep_alive;
	buf_append(&c->out, "HTTP/1.1 ", 9);
	append_decimal(&c->out, (unsigned long long)(status < 0 ? 0 : status));
	buf_append(&c->out, " ", 1);
	buf_puts(&c->out, util_http_status_text(status));
	buf_append(&c->out, "\r\n", 2);
	bool have_type = false;
	/* HEAD: the agent may say how long the body would be; nothing else sets it. */
	const char *head_length = NULL;
	if (headers) {
		json_object_object_foreach(headers, name, value) {
			size_t nlen = strlen(name);
			if (c->head_only && strcasecmp(name, "content-length") == 0 &&
			    json_object_is_type(value, json_type_string)) {
				const char *v = json_object_get_string(value);
				size_t vlen = strlen(v);
				if (vlen > 0 && vlen <= 18 && strspn(v, "0123456789") == vlen)
					head_length = v;
			}
			if (!http_is_token(name, nlen) || http_header_is_hop_by_hop(name, nlen) ||
			    strcasecmp(name, "content-length") == 0 || strcasecmp(name, "date") == 0)
				continue;
			size_t count = json_object_is_type(value, json_type_array)
			                       ? json_object_array_length(value)
			                       : 1;
			for (size_t i = 0; i < count; i++) {
				struct json_object *v = json_object_is_type(value, json_type_array)
				                                ? json_object_array_get_idx(value, i)
				                                : value;
				if (!v || !json_object_is_type(v, json_type_string))
					continue;
				const char *text = json_object_get_string(v);
				/* No response splitting through an agent's header: no CR, LF, NUL. */
				bool ok = strlen(text) == (size_t)json_object_get_string_len(v);
				for (const char *p = text; *p && ok; p++)
					ok = (unsigned char)*p >= 0x20 || *p == '\t';
				if (!ok)
					continue;
				if (strcasecmp(name, "content-type") == 0)
					have_type = true;
				append_field(&c->out, name, nlen, text, strlen(text));
			}
		}
	}
	/* 1xx, 204 and 304 answers have no body, whatever the agent sent. */
	bool has_body = status >= 200 && status != 204 && status != 304;
	if (!has_body)
		body_len = 0;
	if (!have_type && body_len)
		buf_puts(&c->out, "Content-Type: application/octet-stream\r\n");
	if (has_body && head_length)
		append_field(&c->out, "Content-Length", 14, head_length, strlen(head_length));
	else if (has_body) {
		buf_append(&c->out, "Content-Length: ", 16);
		append_decimal(&c->out, (unsigned long long)body_len);
		buf_append(&c->out, "\r\n", 2);
	}
	if (c->close_after_write)
		buf_puts(&c->out, "Connection: close\r\n");
	buf_puts(&c->out, "\r\n");
	if (body_len && !c->head_only)
		buf_append(&c->out, body, body_len);
	if (c->out.failed) {
		buf_reset(&c->out);
		c->close_after_write = true;
	}
	c->state = PROXY_WRITING;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, PROXY_WRITE_TIMEOUT_SEC);
	lws_callback_on_writable(c->wsi);
}

static void answer_error(struct proxy_conn *c, int status, const char *key, const char *reason,
                         bool close)
{
	struct json_object *o = json_object_new_object();
	if (strcmp(key, "reason") == 0)
		json_put_bool(o, "allowed", false);
	json_put_string(o, key, reason);
	size_t len;
	const char *text = json_text(o, &len);
	struct json_object *headers = json_object_new_object();
	json_put_string(headers, "Content-Type", "application/json");
	queue_answer(c, status, headers, (const unsigned char *)text, len, close);
	json_object_put(headers);
	json_object_put(o);
}

void proxy_http_job_done(struct job *j)
{
	struct proxy_conn *c = j->origin_conn;
	queue_answer(c, j->status, j->resp_headers, j->resp_body, j->resp_len, false);
	job_destroy(j);
	c->job = NULL;
}

/* The app a request is for: X-EE-App, else the first label of Host. */
static bool pick_app(struct proxy_conn *c, const struct http_request_head *head)
{
	const struct http_header *h = http_find_header(head, "x-ee-app");
	const char *name;
	size_t len;
	if (h && h->value_len) {
		name = h->value;
		len = h->value_len;
	} else if (head->host && head->host_len) {
		name = head->host;
		len = strcspn(head->host, ".:");
		if (len > head->host_len)
			len = head->host_len;
	} else {
		return false;
	}
	if (len > EE_APP_NAME_MAX)
		return false;
	memcpy(c->app, name, len);
	c->app[len] = '\0';
	return len > 0;
}

/* Whether the head's i-th field is forwarded to the agent. */
static bool forwarded_header(const struct http_request_head *head, int i)
{
	const struct http_header *h = &head->headers[i];
	if (h->name_len >= 256 || http_head_header_is_hop_by_hop(head, h->name, h->name_len))
		return false;
	return !(h->name_len == 4 && strncasecmp(h->name, "host", 4) == 0) &&
	       !(h->name_len == 8 && strncasecmp(h->name, "x-ee-app", 8) == 0);
}

static bool same_name(const struct http_header *a, const struct http_header *b)
{
	return a->name_len == b->name_len && strncasecmp(a->name, b->name, a->name_len) == 0;
}

/*
 * Copies what the agent needs out of the head (which points into c->in):
 * the headers as the JSON object the proxy_request carries, written
 * directly.  Names keep the client's spelling, in the order they first
 * came; a repeat (in any case) joins the first with ", " ("; " for
 * Cookie).  Values may hold any byte from 0x80 up (obs-text): bytes that
 * are not UTF-8 go as \udc80..\udcff escapes (json_bytes_put).
 */
static int take_request(struct proxy_conn *c, const struct http_request_head *head)
{
	memcpy(c->req.method, head->method, head->method_len);
	c->req.method[head->method_len] = '\0';
	c->head_only = strcmp(c->req.method, "HEAD") == 0;
	c->req.path = strndup(head->target, head->target_len);
	if (!c->req.path)
		return -1;
	struct buf out;
	buf_init(&out);
	bool fwd[HTTP_MAX_HEADERS];
	for (int i = 0; i < head->header_count; i++)
		fwd[i] = forwarded_header(head, i);
	buf_append(&out, "{", 1);
	bool first = true;
	for (int i = 0; i < head->header_count; i++) {
		const struct http_header *h = &head->headers[i];
		if (!fwd[i])
			continue;
		bool repeat = false;
		for (int k = 0; k < i && !repeat; k++)
			repeat = fwd[k] && same_name(&head->headers[k], h);
		if (repeat)
			continue; /* written with its first */
		if (!first)
			buf_append(&out, ",", 1);
		first = false;
		json_append_bytes(&out, h->name, h->name_len);
		buf_append(&out, ":", 1);
		int repeats = 0;
		for (int k = i + 1; k < head->header_count; k++)
			if (fwd[k] && same_name(&head->headers[k], h))
				repeats++;
		if (!repeats) {
			json_append_bytes(&out, h->value, h->value_len);
			continue;
		}
		struct buf joined;
		buf_init(&joined);
		buf_append(&joined, h->value, h->value_len);
		for (int k = i + 1; k < head->header_count; k++) {
			const struct http_header *r = &head->headers[k];
			if (!fwd[k] || !same_name(r, h))
				continue;
			bool cookie = r->name_len == 6 && strncasecmp(r->name, "cookie", 6) == 0;
			buf_append(&joined, cookie ? "; " : ", ", 2);
			buf_append(&joined, r->value, r->value_len);
		}
		if (!joined.failed)
			json_append_bytes(&out, joined.data, joined.len);
		else
			out.failed = true;
		buf_free(&joined);
	}
	buf_append(&out, "}", 1);
	if (out.failed) {
		buf_free(&out);
		return -1;
	}
	c->req.headers_json = out.data; /* taken */
	c->req.headers_json_len = out.len;
	return 0;
}

static void dispatch(struct proxy_conn *c)
{
	if (c->body.len) {
		c->req.body = malloc(c->body.len);
		if (!c->req.body) {
			answer_error(c, 503, "reason", "out_of_memory", true);
			return;
		}
		memcpy(c->req.body, c->body.data, c->body.len);
		c->req.body_len = c->body.len;
	}
	c->state = PROXY_WAITING;
	/* Pipelined bytes wait in c->in; nothing more is read until the answer is out. */
	lws_rx_flow_control(c->wsi, 0);
	lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
	struct job *j = job_create(c->td, c->app, JOB_ORIGIN_PROXY, c, &c->req);
	if (!j) {
		answer_error(c, 503, "reason", "out_of_memory", true);
		return;
	}
	c->job = j;
	job_start(j);
}

/* Advances through whatever input there is. */
static void process(struct proxy_conn *c)
{
	struct ee_error err;
	for (;;) {
		switch (c->state) {
		case PROXY_HEAD: {
			if (c->in.len == 0)
				return;
			struct http_request_head head;
			size_t head_len;
			int rc = http_parse_request_head(c->in.data, c->in.len, &head, &head_len, &err);
			/*
			 * The head's deadline runs from its first byte.  A head that came
			 * whole needs none: every way on from here sets the next timeout
			 * (body, answer) or clears it (sent to an agent), and a timer
			 * armed for nothing costs an insertion into lws's sorted list.
			 */
			if (!c->started && rc == HTTP_PARSE_INCOMPLETE)
				lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK,
				                c->td->cfg.proxy_head_timeout_sec);
			c->started = true;
			if (rc == HTTP_PARSE_INCOMPLETE)
				return;
			if (rc == HTTP_PARSE_ERROR) {
				answer_error(c, err.status, "error", err.reason, true);
				return;
			}
			c->keep_alive = head.keep_alive && !c->td->draining;
			if (take_request(c, &head) != 0) {
				answer_error(c, 503, "error", "out_of_memory", true);
				return;
			}
			bool has_app = pick_app(c, &head);
			bool upgrade = head.upgrade;
			bool chunked = head.chunked, expect = head.expect_continue;
			uint64_t length = head.has_content_length ? head.content_length : 0;
			consume(c, head_len);
			if (upgrade) {
				answer_error(c, 501, "error", "upgrade_not_supported", true);
				return;
			}
			if (!has_app) {
				answer_error(c, 400, "error", "missing_app", !length && !chunked ? false : true);
				return;
			}
			if (!util_valid_app_name(c->app, strlen(c->app))) {
				answer_error(c, 400, "reason", "invalid_app_name", true);
				return;
			}
			if (length > (uint64_t)c->td->cfg.max_body_bytes) {
				/* Closing with the body unread would reset the connection and lose
				 * the answer; a body of reasonable size is read and dropped first. */
				if (length <= PROXY_MAX_DISCARD) {
					size_t have = c->in.len < length ? c->in.len : (size_t)length;
					c->discard_left = length - have;
					consume(c, c->in.len);
				}
				answer_error(c, 413, "reason", "body_too_large", true);
				return;
			}
			if ((chunked || length) && expect)
				lws_write(c->wsi, (unsigned char *)"HTTP/1.1 100 Continue\r\n\r\n", 25, LWS_WRITE_RAW);
			if (chunked) {
				http_chunked_init(&c->chunked, (uint64_t)c->td->cfg.max_body_bytes);
				c->state = PROXY_BODY_CHUNKED;
			} else if (length) {
				c->body_left = length;
				c->state = PROXY_BODY_LENGTH;
			} else {
				dispatch(c);
				return;
			}
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, c->td->cfg.proxy_body_timeout_sec);
			break;
		}
		case PROXY_BODY_LENGTH: {
			size_t take = c->in.len < c->body_left ? c->in.len : (size_t)c->body_left;
			if (take && buf_append(&c->body, c->in.data, take) != 0) {
				answer_error(c, 503, "reason", "out_of_memory", true);
				return;
			}
			consume(c, take);
			c->body_left -= take;
			if (c->body_left)
				return;
			dispatch(c);
			return;
		}
		case PROXY_BODY_CHUNKED: {
			size_t used = 0;
			int rc = http_chunked_decode(&c->chunked, c->in.data, c->in.len, &c->body, &used, &err);
			consume(c, used);
			if (rc == HTTP_PARSE_INCOMPLETE)
				return;
			if (rc == HTTP_PARSE_ERROR) {
				answer_error(c, err.status, err.status == 413 ? "reason" : "error", err.reason, true);
				return;
			}
			dispatch(c);
			return;
		}
		case PROXY_WAITING:
		case PROXY_WRITING:
			return;
		}
	}
}

static int write_out(struct proxy_conn *c)
{
	size_t left = c->out.len - c->out_sent;
	if (left) {
		size_t chunk = left > TD_WRITE_CHUNK ? TD_WRITE_CHUNK : left;
		if (lws_write(c->wsi, (unsigned char *)c->out.data + c->out_sent, chunk, LWS_WRITE_RAW) <
		    (int)chunk)
			return -1;
		c->out_sent += chunk;
		if (c->out_sent < c->out.len) {
			lws_callback_on_writable(c->wsi);
			return 0;
		}
	}
	if (c->close_after_write) {
		if (c->discard_left)
			return 0; /* closed once the refused body has been read */
		return -1;
	}
	/* Ready for the next request on this connection. */
	buf_reset(&c->out);
	c->out_sent = 0;
	conn_reset_request(c);
	c->state = PROXY_HEAD;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, PROXY_IDLE_TIMEOUT_SEC);
	lws_rx_flow_control(c->wsi, 1);
	process(c);
	return 0;
}

static int proxy_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
	struct proxy_conn **slot = user;
	struct tunneld *td = lws_context_user(lws_get_context(wsi));
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT: {
		if (!slot)
			return -1;
		struct proxy_conn *c = calloc(1, sizeof(*c));
		if (!c)
			return -1;
		c->wsi = wsi;
		c->td = td;
		buf_init(&c->in);
		buf_init(&c->body);
		buf_init(&c->out);
		*slot = c;
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, PROXY_IDLE_TIMEOUT_SEC);
		return 0;
	}
	case LWS_CALLBACK_RAW_RX: {
		struct proxy_conn *c = slot ? *slot : NULL;
		if (!c)
			return -1;
		if (c->state == PROXY_WRITING && c->close_after_write) {
			/* An answer that ends the connection is on its way: drop what follows. */
			if (c->discard_left) {
				c->discard_left = len >= c->discard_left ? 0 : c->discard_left - len;
				if (!c->discard_left && c->out_sent == c->out.len)
					return -1;
			}
			return 0;
		}
		if (c->in.len + len > PROXY_MAX_BUFFERED && c->state != PROXY_BODY_LENGTH &&
		    c->state != PROXY_BODY_CHUNKED) {
			if (c->state == PROXY_HEAD)
				answer_error(c, 431, "error", "header_too_large", true);
			return 0;
		}
		if (buf_append(&c->in, in, len) != 0)
			return -1;
		process(c);
		return 0;
	}
	case LWS_CALLBACK_RAW_WRITEABLE: {
		struct proxy_conn *c = slot ? *slot : NULL;
		if (!c || c->state != PROXY_WRITING)
			return 0;
		return write_out(c);
	}
	case LWS_CALLBACK_RAW_CLOSE: {
		struct proxy_conn *c = slot ? *slot : NULL;
		if (!c)
			return 0;
		if (c->job) {
			if (c->job->done)
				job_destroy(c->job);
			else
				job_cancel(c->job);
		}
		conn_reset_request(c);
		buf_free(&c->in);
		buf_free(&c->body);
		buf_free(&c->out);
		free(c);
		*slot = NULL;
		return 0;
	}
	default:
		return 0;
	}
}

const struct lws_protocols tunneld_proxy_protocol = {
	.name = "ee-proxy",
	.callback = proxy_callback,
	.per_session_data_size = sizeof(struct proxy_conn *),
	.rx_buffer_size = 65536,
};
