/* http.c - reading requests from FastCGI or CGI and writing responses; see http.h. */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/*
 * The variables ee-api reads, found in one pass over the environment
 * (libfcgi's FCGX_GetParam and getenv would each scan it once per name).
 * As with those, the first occurrence of a name wins.
 */
enum param {
	PARAM_METHOD,
	PARAM_AUTHORIZATION,
	PARAM_CONTENT_TYPE,
	PARAM_IDEMPOTENCY_KEY,
	PARAM_REMOTE_ADDR,
	PARAM_FORWARDED_FOR,
	PARAM_QUERY,
	PARAM_URI,
	PARAM_SCRIPT_NAME,
	PARAM_PATH_INFO,
	PARAM_CONTENT_LENGTH,
	PARAM_COUNT
};

#define PARAM_NAME(s) {s, sizeof(s) - 1}
static const struct {
	const char *name;
	size_t len;
} param_names[PARAM_COUNT] = {
	[PARAM_METHOD] = PARAM_NAME("REQUEST_METHOD"),
	[PARAM_AUTHORIZATION] = PARAM_NAME("HTTP_AUTHORIZATION"),
	[PARAM_CONTENT_TYPE] = PARAM_NAME("CONTENT_TYPE"),
	[PARAM_IDEMPOTENCY_KEY] = PARAM_NAME("HTTP_IDEMPOTENCY_KEY"),
	[PARAM_REMOTE_ADDR] = PARAM_NAME("REMOTE_ADDR"),
	[PARAM_FORWARDED_FOR] = PARAM_NAME("HTTP_X_FORWARDED_FOR"),
	[PARAM_QUERY] = PARAM_NAME("QUERY_STRING"),
	[PARAM_URI] = PARAM_NAME("REQUEST_URI"),
	[PARAM_SCRIPT_NAME] = PARAM_NAME("SCRIPT_NAME"),
	[PARAM_PATH_INFO] = PARAM_NAME("PATH_INFO"),
	[PARAM_CONTENT_LENGTH] = PARAM_NAME("CONTENT_LENGTH"),
};

static void find_params(char **envp, const char *value[PARAM_COUNT])
{
	for (int k = 0; k < PARAM_COUNT; k++)
		value[k] = NULL;
	for (char **e = envp; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq)
			continue;
		size_t n = (size_t)(eq - *e);
		for (int k = 0; k < PARAM_COUNT; k++) {
			if (param_names[k].len == n && !value[k] && memcmp(param_names[k].name, *e, n) == 0) {
				value[k] = eq + 1;
				break;
			}
		}
	}
}

static const char *or_empty(const char *s) { return s ? s : ""; }

/* Fills method, path, query and the headers handlers use. */
static void read_params(struct api_request *req, const char *const param[PARAM_COUNT])
{
	req->method = or_empty(param[PARAM_METHOD]);
	req->authorization = param[PARAM_AUTHORIZATION];
	req->content_type = param[PARAM_CONTENT_TYPE];
	req->idempotency_key = param[PARAM_IDEMPOTENCY_KEY];
	req->remote_addr = or_empty(param[PARAM_REMOTE_ADDR]);
	req->forwarded_for = param[PARAM_FORWARDED_FOR];
	req->query = or_empty(param[PARAM_QUERY]);

	/* REQUEST_URI is what the client asked for, whatever the server rewrote it to. */
	const char *uri = param[PARAM_URI];
	const char *path = uri;
	size_t len;
	if (uri && *uri) {
		const char *q = strchr(uri, '?');
		len = q ? (size_t)(q - uri) : strlen(uri);
		/* Called as /cgi-bin/ee-api.cgi/v1/...: the script's own name is not part of the route. */
		const char *script = param[PARAM_SCRIPT_NAME];
		size_t slen = script ? strlen(script) : 0;
		if (slen > 1 && len >= slen && strncmp(uri, script, slen) == 0 &&
		    (len == slen || uri[slen] == '/')) {
			path += slen;
			len -= slen;
		}
	} else {
		path = or_empty(param[PARAM_PATH_INFO]);
		len = strlen(path);
	}
	if (len == 0) {
		path = "/";
		len = 1;
	}
	if (len > API_PATH_MAX) {
		req->path_too_long = true;
		len = API_PATH_MAX;
	}
	memcpy(req->path, path, len);
	req->path[len] = '\0';
}

/* Parses CONTENT_LENGTH: -1 when absent, -2 when malformed. */
static long long content_length(const char *text)
{
	if (!text || !*text)
		return -1;
	char *end;
	errno = 0;
	long long n = strtoll(text, &end, 10);
	if (errno || *end || n < 0)
		return -2;
	return n;
}

/* Reads up to len bytes, fewer only at the end of the input or on an error. */
static int read_stream(FCGX_Stream *in, char *out, int len)
{
	int got = 0;
	while (got < len) {
		int n = FCGX_GetStr(out + got, len - got, in);
		if (n <= 0)
			break;
		got += n;
	}
	return got;
}

void http_read_fcgi(FCGX_Request *fcgi, struct api_request *req, size_t max_body)
{
	const char *param[PARAM_COUNT];
	find_params(fcgi->envp, param);
	memset(req, 0, sizeof(*req));
	read_params(req, param);
	long long declared = content_length(param[PARAM_CONTENT_LENGTH]);
	if (declared == -2 || declared > (long long)max_body) {
		req->body_too_large = true;
		return;
	}
	size_t cap = declared >= 0 ? (size_t)declared : max_body + 1;
	size_t got = 0;
	if (declared < 0) {
		/* No length given: most such requests have no body at all.  Look
		 * first, so that they do not cost an allocation of max_body. */
		char first[1024];
		got = (size_t)read_stream(fcgi->in, first, sizeof(first));
		if (got < sizeof(first))
			cap = got;
		req->body = malloc(cap + 1);
		if (!req->body) {
			req->body_too_large = true;
			return;
		}
		memcpy(req->body, first, got);
	} else {
		req->body = malloc(cap + 1);
		if (!req->body) {
			req->body_too_large = true;
			return;
		}
	}
	while (got < cap) {
		int n = FCGX_GetStr(req->body + got, (int)(cap - got > 65536 ? 65536 : cap - got),
		                    fcgi->in);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got > max_body)
		req->body_too_large = true;
	/* A body cut short (the peer went away, or the worker stopped waiting
	 * for it: see serve_connections) must not be served as if whole. */
	if (FCGX_GetError(fcgi->in) != 0 || (declared >= 0 && got < (size_t)declared))
		req->read_incomplete = true;
	req->body[got] = '\0';
	req->body_len = got;
}

void http_read_cgi(struct api_request *req, size_t max_body)
{
	const char *param[PARAM_COUNT];
	find_params(environ, param);
	memset(req, 0, sizeof(*req));
	read_params(req, param);
	long long declared = content_length(param[PARAM_CONTENT_LENGTH]);
	if (declared == -2 || declared > (long long)max_body) {
		req->body_too_large = true;
		return;
	}
	/* Without a length a CGI body is empty (RFC 3875 4.2). */
	size_t cap = declared > 0 ? (size_t)declared : 0;
	req->body = malloc(cap + 1);
	if (!req->body) {
		req->body_too_large = true;
		return;
	}
	size_t got = 0;
	while (got < cap) {
		ssize_t n = read(STDIN_FILENO, req->body + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	req->body[got] = '\0';
	req->body_len = got;
}

void http_request_free(struct api_request *req)
{
	free(req->body);
	for (int i = 0; i < req->segment_count; i++)
		free(req->segments[i]);
	memset(req, 0, sizeof(*req));
}

void http_response_init(struct api_response *res)
{
	res->status = 200;
	res->content_type = "application/json";
	buf_init(&res->headers);
	buf_init(&res->body);
}

void http_response_reset(struct api_response *res)
{
	res->status = 200;
	res->content_type = "application/json";
	buf_reset(&res->headers);
	buf_reset(&res->body);
}

void http_response_free(struct api_response *res)
{
	buf_free(&res->headers);
	buf_free(&res->body);
}

/* Where the header block goes: libfcgi's output stream, or a buffer for CGI. */
typedef void (*emit_fn)(void *sink, const char *data, size_t len);

static void emit_fcgi(void *sink, const char *data, size_t len)
{
	FCGX_PutStr(data, (int)len, (FCGX_Stream *)sink);
}

static void emit_buf(void *sink, const char *data, size_t len) { buf_append(sink, data, len); }

static void emit_str(emit_fn emit, void *sink, const char *s) { emit(sink, s, strlen(s)); }

static void emit_size(emit_fn emit, void *sink, size_t n)
{
	char text[24];
	char *p = text + sizeof(text);
	do {
		*--p = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	emit(sink, p, (size_t)(text + sizeof(text) - p));
}

#define EMIT_LITERAL(emit, sink, s) emit(sink, s, sizeof(s) - 1)

/* The header block both front ends write, in pieces (no formatting pass, no buffer). */
static void write_head(const struct api_response *r, emit_fn emit, void *sink)
{
	bool failed = r->body.failed || r->headers.failed;
	int status = failed ? 500 : r->status;
	EMIT_LITERAL(emit, sink, "Status: ");
	emit_size(emit, sink, status > 0 ? (size_t)status : 0);
	emit(sink, " ", 1);
	emit_str(emit, sink, util_http_status_text(status));
	EMIT_LITERAL(emit, sink, "\r\nContent-Type: ");
	emit_str(emit, sink, r->content_type);
	EMIT_LITERAL(emit, sink, "\r\nContent-Length: ");
	emit_size(emit, sink, failed ? 0 : r->body.len);
	EMIT_LITERAL(emit, sink, "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n");
	if (!failed && r->headers.len)
		emit(sink, r->headers.data, r->headers.len);
	EMIT_LITERAL(emit, sink, "\r\n");
}

static bool is_head(const struct api_request *req) { return strcmp(req->method, "HEAD") == 0; }

void http_write_fcgi(FCGX_Request *fcgi, const struct api_request *req,
                     const struct api_response *res)
{
	write_head(res, emit_fcgi, fcgi->out);
	if (!is_head(req) && res->body.len && !res->body.failed && !res->headers.failed)
		FCGX_PutStr(res->body.data, (int)res->body.len, fcgi->out);
}

static void write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		data += n;
		len -= (size_t)n;
	}
}

void http_write_cgi(const struct api_request *req, const struct api_response *res)
{
	struct buf head;
	buf_init(&head);
	write_head(res, emit_buf, &head);
	if (!head.failed)
		write_all(STDOUT_FILENO, head.data, head.len);
	if (!is_head(req) && res->body.len && !res->body.failed && !res->headers.failed)
		write_all(STDOUT_FILENO, res->body.data, res->body.len);
	buf_free(&head);
}
