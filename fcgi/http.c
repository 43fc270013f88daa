/* http.c - reading requests from FastCGI or CGI and writing responses; see http.h. */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef const char *(*param_fn)(void *source, const char *name);

static const char *fcgi_param(void *source, const char *name)
{
	return FCGX_GetParam(name, ((FCGX_Request *)source)->envp);
}

static const char *cgi_param(void *source, const char *name)
{
	(void)source;
	return getenv(name);
}

static const char *or_empty(const char *s) { return s ? s : ""; }

/* Fills method, path, query and the headers handlers use. */
static void read_params(struct api_request *req, param_fn param, void *source)
{
	req->method = or_empty(param(source, "REQUEST_METHOD"));
	req->authorization = param(source, "HTTP_AUTHORIZATION");
	req->content_type = param(source, "CONTENT_TYPE");
	req->idempotency_key = param(source, "HTTP_IDEMPOTENCY_KEY");
	req->remote_addr = or_empty(param(source, "REMOTE_ADDR"));
	req->forwarded_for = param(source, "HTTP_X_FORWARDED_FOR");
	req->query = or_empty(param(source, "QUERY_STRING"));

	/* REQUEST_URI is what the client asked for, whatever the server rewrote it to. */
	const char *uri = param(source, "REQUEST_URI");
	const char *path = uri;
	size_t len;
	if (uri && *uri) {
		const char *q = strchr(uri, '?');
		len = q ? (size_t)(q - uri) : strlen(uri);
		/* Called as /cgi-bin/ee-api.cgi/v1/...: the script's own name is not part of the route. */
		const char *script = param(source, "SCRIPT_NAME");
		size_t slen = script ? strlen(script) : 0;
		if (slen > 1 && len >= slen && strncmp(uri, script, slen) == 0 &&
		    (len == slen || uri[slen] == '/')) {
			path += slen;
			len -= slen;
		}
	} else {
		path = or_empty(param(source, "PATH_INFO"));
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

void http_read_fcgi(FCGX_Request *fcgi, struct api_request *req, size_t max_body)
{
	memset(req, 0, sizeof(*req));
	read_params(req, fcgi_param, fcgi);
	long long declared = content_length(fcgi_param(fcgi, "CONTENT_LENGTH"));
	if (declared == -2 || declared > (long long)max_body) {
		req->body_too_large = true;
		return;
	}
	size_t cap = declared >= 0 ? (size_t)declared : max_body + 1;
	req->body = malloc(cap + 1);
	if (!req->body) {
		req->body_too_large = true;
		return;
	}
	size_t got = 0;
	while (got < cap) {
		int n = FCGX_GetStr(req->body + got, (int)(cap - got > 65536 ? 65536 : cap - got),
		                    fcgi->in);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got > max_body)
		req->body_too_large = true;
	req->body[got] = '\0';
	req->body_len = got;
}

void http_read_cgi(struct api_request *req, size_t max_body)
{
	memset(req, 0, sizeof(*req));
	read_params(req, cgi_param, NULL);
	long long declared = content_length(getenv("CONTENT_LENGTH"));
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

/* The header block both front ends write. */
static void format_head(const struct api_response *res, struct buf *out)
{
	const struct api_response *r = res;
	bool failed = r->body.failed || r->headers.failed;
	int status = failed ? 500 : r->status;
	buf_printf(out, "Status: %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	           "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
	           status, util_http_status_text(status), r->content_type, failed ? 0 : r->body.len);
	if (!failed && r->headers.len)
		buf_append(out, r->headers.data, r->headers.len);
	buf_puts(out, "\r\n");
}

static bool is_head(const struct api_request *req) { return strcmp(req->method, "HEAD") == 0; }

void http_write_fcgi(FCGX_Request *fcgi, const struct api_request *req,
                     const struct api_response *res)
{
	struct buf head;
	buf_init(&head);
	format_head(res, &head);
	if (!head.failed)
		FCGX_PutStr(head.data, (int)head.len, fcgi->out);
	if (!is_head(req) && res->body.len && !res->body.failed && !res->headers.failed)
		FCGX_PutStr(res->body.data, (int)res->body.len, fcgi->out);
	buf_free(&head);
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
	format_head(res, &head);
	if (!head.failed)
		write_all(STDOUT_FILENO, head.data, head.len);
	if (!is_head(req) && res->body.len && !res->body.failed && !res->headers.failed)
		write_all(STDOUT_FILENO, res->body.data, res->body.len);
	buf_free(&head);
}
