/*
 * test_proxy.c - requests for apps carried by ee-tunneld to a test agent
 * and back, by every way in: Host through Caddy (<app>.app.localhost), the
 * proxy listener directly (by Host and by X-EE-App), and the JSON envelope
 * of POST /v1/proxy/{app} through Caddy and on the control listener.
 *
 * Covered: every method; what the agent sees (path with the query,
 * headers with repeats joined and the hop-by-hop ones, Host and X-EE-App
 * gone, bodies byte for byte: binary, empty, chunked, exactly the size
 * limit) and what the client gets back (status, headers, Set-Cookie
 * arrays, body, no response splitting through an agent's header, no body
 * after a 204); header values that are not UTF-8 byte-exact both ways
 * (\udcXX on the tunnel); one byte over the limit is 413; keep-alive and pipelining
 * on both listeners; 50 requests in flight on one tunnel answered in
 * reverse order; the refusals (404 unknown_app, 403 with the resolve
 * payload, 503 tunnel_busy, 504 proxy_timeout, 502 invalid_proxy_response
 * (a body that is not base64; an answer that is not JSON but names its
 * request, at once) and tunnel_closed, 400s, 501), an answer to an unknown request_id and
 * to a client that has gone; two agents of one app sharing the load, one
 * dropping with a GET (re-sent to the other) and a POST (502) in flight;
 * an agent of another repository refused the name; a lone agent dropping
 * under requests.
 *
 * The agents run in this process; every client runs in a forked child and
 * hands its answer back through a pipe, so an agent can hold, inspect and
 * answer requests in any order while the clients wait.  ee-tunneld runs
 * three times: with a small body limit; with a 1 s proxy timeout and two
 * requests in flight per tunnel; and once more for pipelining on the
 * control listener, which can leave the daemon spinning.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "base64.h"
#include "check.h"
#include "client.h"
#include "jsonutil.h"
#include "stack.h"
#include "testagent.h"
#include "timeutil.h"
#include "util.h"

#define MAX_BODY 262144          /* EE_PROXY_MAX_BODY_BYTES of the first run */
#define AGENT_WAIT_MS 5000       /* for a request the agent must get */
#define NOTHING_MS 300           /* for a request the agent must not get */
#define CALL_WAIT_MS 30000       /* for a client child's answer */
#define RAW_WAIT_MS 10000        /* a raw client's reads */
#define IN_FLIGHT 50
#define RAW_MAX_RESPONSES 8

static struct stack st;

static const char *const first_env[] = {
	"EE_PROXY_MAX_BODY_BYTES=262144", "EE_PROXY_TIMEOUT_SEC=10", "EE_DRAIN_TIMEOUT_SEC=2", NULL};
static const char *const second_env[] = {
	"EE_PROXY_MAX_BODY_BYTES=262144", "EE_PROXY_TIMEOUT_SEC=1", "EE_TUNNEL_MAX_INFLIGHT=2",
	"EE_DRAIN_TIMEOUT_SEC=2", NULL};

/* ================= clients in child processes ================= */

struct call {
	pid_t pid;
	int fd; /* the read end of the child's answer */
};

static int read_full(int fd, void *out, size_t len, int64_t deadline)
{
	unsigned char *p = out;
	while (len > 0) {
		int64_t left = deadline - time_monotonic_ms();
		if (left <= 0)
			return -1;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A length-prefixed piece of a child's answer. */
static void put_blob(int fd, const void *data, size_t len)
{
	uint64_t n = len;
	if (test_write_all(fd, &n, sizeof(n)) != 0 || (len && test_write_all(fd, data, len) != 0))
		_exit(3);
}

static int get_blob(int fd, char **out, size_t *len, int64_t deadline)
{
	uint64_t n;
	*out = NULL;
	*len = 0;
	if (read_full(fd, &n, sizeof(n), deadline) != 0 || n > 64 * 1024 * 1024)
		return -1;
	char *p = malloc((size_t)n + 1);
	if (!p)
		return -1;
	if (n && read_full(fd, p, (size_t)n, deadline) != 0) {
		free(p);
		return -1;
	}
	p[n] = '\0';
	*out = p;
	*len = (size_t)n;
	return 0;
}

/*
 * Forks a client.  The child keeps only its end of the pipe: a copy of an
 * agent's socket in a child would keep that tunnel open after agent_drop.
 */
static bool call_fork(struct call *c)
{
	int fds[2];
	c->pid = -1;
	c->fd = -1;
	if (pipe(fds) != 0) {
		test_fail(__FILE__, __LINE__, "pipe: %s", strerror(errno));
		return false;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	if (pid == 0) {
		for (int fd = 3; fd < 1024; fd++) {
			if (fd != fds[1])
				close(fd);
		}
		c->fd = fds[1];
		c->pid = 0;
		return true;
	}
	close(fds[1]);
	c->pid = pid;
	c->fd = fds[0];
	return true;
}

static void call_end(struct call *c, bool kill_it)
{
	if (c->pid > 0) {
		if (kill_it)
			kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->pid = -1;
	c->fd = -1;
}

/* One libcurl request in a child. */
static void call_start_http(struct call *c, const char *method, const char *url,
                            const char *const *headers, const void *body, size_t body_len)
{
	if (!call_fork(c) || c->pid != 0)
		return;
	struct http_result r;
	http_do(method, url, headers, body, body_len, &r);
	char head[64];
	snprintf(head, sizeof(head), "%ld %d", r.status, r.curl_code);
	put_blob(c->fd, head, strlen(head));
	put_blob(c->fd, r.headers, strlen(r.headers));
	put_blob(c->fd, r.body, r.body_len);
	_exit(0);
}

/* The child's answer, as http_do would have given it; -1 if the child gave none. */
static int call_finish_http(struct call *c, struct http_result *r)
{
	memset(r, 0, sizeof(*r));
	int64_t deadline = time_monotonic_ms() + CALL_WAIT_MS;
	char *head = NULL;
	size_t head_len, headers_len;
	int rc = -1;
	if (c->fd >= 0 && get_blob(c->fd, &head, &head_len, deadline) == 0 &&
	    get_blob(c->fd, &r->headers, &headers_len, deadline) == 0 &&
	    get_blob(c->fd, &r->body, &r->body_len, deadline) == 0) {
		int code = 0;
		if (sscanf(head, "%ld %d", &r->status, &code) == 2) {
			r->curl_code = code;
			rc = 0;
		}
		if (r->body_len)
			r->json = json_tokener_parse(r->body);
	}
	free(head);
	if (!r->headers)
		r->headers = calloc(1, 1);
	if (!r->body)
		r->body = calloc(1, 1);
	call_end(c, rc != 0);
	if (rc != 0)
		test_fail(__FILE__, __LINE__, "a client gave no answer in %d ms", CALL_WAIT_MS);
	return rc;
}

/* ---- raw HTTP/1.1 on a TCP socket, for keep-alive, pipelining and chunked bodies ---- */

struct raw_response {
	int status;
	const char *head; /* status line through the blank line */
	size_t head_len;
	const char *body;
	size_t body_len;
};

static const char *find_bytes(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= len; i++) {
		if (memcmp(hay + i, needle, n) == 0)
			return hay + i;
	}
	return NULL;
}

/* The value of a header of a raw head (any case), or false. */
static bool raw_header(const struct raw_response *r, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);
	const char *p = r->head, *end = r->head + r->head_len;
	while (p < end) {
		const char *eol = find_bytes(p, (size_t)(end - p), "\r\n");
		if (!eol)
			break;
		if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			while (v < eol && *v == ' ')
				v++;
			size_t vlen = (size_t)(eol - v);
			if (vlen >= size)
				vlen = size - 1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return true;
		}
		p = eol + 2;
	}
	return false;
}

/*
 * One response at data[0..len): 1 (complete, *used bytes), 0 (incomplete)
 * or -1 (not an HTTP response).  head_only: it answers a HEAD.
 */
static int raw_parse(const char *data, size_t len, bool head_only, struct raw_response *r,
                     size_t *used)
{
	memset(r, 0, sizeof(*r));
	if (memcmp(data, "HTTP/1.1 ", len < 9 ? len : 9) != 0)
		return -1;
	const char *end = find_bytes(data, len, "\r\n\r\n");
	if (!end)
		return 0;
	r->head = data;
	r->head_len = (size_t)(end + 4 - data);
	r->status = atoi(data + 9);
	if (r->status < 100 || r->status > 599)
		return -1;
	size_t body_len = 0;
	char cl[32];
	if (raw_header(r, "content-length", cl, sizeof(cl)))
		body_len = (size_t)strtoull(cl, NULL, 10);
	if (head_only || r->status < 200 || r->status == 204 || r->status == 304)
		body_len = 0;
	if (len - r->head_len < body_len)
		return 0;
	r->body = data + r->head_len;
	r->body_len = body_len;
	*used = r->head_len + body_len;
	return 1;
}

/* Splits data into complete responses; bit i of head_mask: response i answers a HEAD. */
static int raw_split(const char *data, size_t len, unsigned head_mask, struct raw_response *out,
                     int max, size_t *rest)
{
	int n = 0;
	size_t off = 0;
	while (n < max && off < len) {
		size_t used;
		if (raw_parse(data + off, len - off, head_mask & (1u << n), &out[n], &used) != 1)
			break;
		off += used;
		n++;
	}
	if (rest)
		*rest = len - off;
	return n;
}

struct raw_step {
	const char *data;
	size_t len;    /* 0: strlen(data) */
	int responses; /* complete responses (in all) to wait for after sending this */
};

static int raw_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads into b until want responses are complete (want < 0: until end of stream). */
static bool raw_read(int fd, struct buf *b, int want, unsigned head_mask, int64_t deadline)
{
	struct raw_response rs[RAW_MAX_RESPONSES];
	for (;;) {
		if (want >= 0 && raw_split(b->data ? b->data : "", b->len, head_mask, rs,
		                           RAW_MAX_RESPONSES, NULL) >= want)
			return false;
		int64_t left = deadline - time_monotonic_ms();
		if (left <= 0)
			return false;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		char tmp[65536];
		ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return true; /* end of stream (or reset) */
		if (buf_append(b, tmp, (size_t)n) != 0)
			return false;
	}
}

/*
 * A child that connects to port, sends the steps in turn (each one's bytes
 * in one send), waits after each for its responses, and at the end reads
 * until the server closes.  Its answer: the bytes, and how it ended.
 */
static void call_start_raw(struct call *c, int port, const struct raw_step *steps, int nsteps,
                           unsigned head_mask)
{
	if (!call_fork(c) || c->pid != 0)
		return;
	struct buf b;
	buf_init(&b);
	const char *how = "connect-failed";
	int fd = raw_connect(port);
	if (fd >= 0) {
		int64_t deadline = time_monotonic_ms() + RAW_WAIT_MS;
		bool eof = false, send_failed = false;
		for (int i = 0; i < nsteps && !eof && !send_failed; i++) {
			size_t len = steps[i].len ? steps[i].len : strlen(steps[i].data);
			const char *p = steps[i].data;
			while (len > 0) {
				ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					send_failed = true;
					break;
				}
				p += n;
				len -= (size_t)n;
			}
			eof = raw_read(fd, &b, steps[i].responses, head_mask, deadline);
		}
		if (!eof)
			eof = raw_read(fd, &b, -1, head_mask, deadline);
		how = eof ? (send_failed ? "send-failed,eof" : "eof") : "open";
		close(fd);
	}
	put_blob(c->fd, b.data ? b.data : "", b.len);
	put_blob(c->fd, how, strlen(how));
	_exit(0);
}

/* The raw child's bytes (caller frees) and how the connection ended ("eof" when closed). */
static char *call_finish_raw(struct call *c, size_t *len, char how[32])
{
	int64_t deadline = time_monotonic_ms() + CALL_WAIT_MS;
	char *data = NULL, *end = NULL;
	size_t end_len;
	how[0] = '\0';
	*len = 0;
	if (c->fd < 0 || get_blob(c->fd, &data, len, deadline) != 0 ||
	    get_blob(c->fd, &end, &end_len, deadline) != 0) {
		free(data);
		data = NULL;
		test_fail(__FILE__, __LINE__, "a raw client gave no answer");
	} else {
		snprintf(how, 32, "%s", end);
	}
	free(end);
	call_end(c, data == NULL);
	if (!data) {
		data = calloc(1, 1);
		*len = 0;
	}
	return data;
}

/* ================= the ways in ================= */

enum route {
	ROUTE_CADDY_HOST,
	ROUTE_PROXY_HOST,
	ROUTE_PROXY_APP_HEADER,
	ROUTE_CADDY_ENVELOPE,
	ROUTE_CONTROL_ENVELOPE,
	ROUTE_COUNT
};

static const char *const route_names[ROUTE_COUNT] = {
	"Caddy by Host", "proxy listener by Host", "proxy listener by X-EE-App",
	"Caddy envelope", "control listener envelope",
};

static bool route_is_envelope(enum route r)
{
	return r == ROUTE_CADDY_ENVELOPE || r == ROUTE_CONTROL_ENVELOPE;
}

/* What a client asks for. */
struct request {
	const char *method;
	const char *path;            /* with the query */
	const char *const *headers;  /* "Name: value", NULL-terminated; may be NULL */
	const void *body;            /* NULL: none */
	size_t body_len;
	const char *envelope;        /* the envelope routes: this text as it is, not one made */
};

#define MAX_HEADER_LINES 64

/* The envelope of POST /v1/proxy/{app} for a request; the caller frees it. */
static char *envelope_text(const struct request *rq)
{
	struct json_object *o = json_object_new_object();
	struct json_object *h = json_object_new_object();
	json_put_string(o, "method", rq->method);
	json_put_string(o, "path", rq->path);
	for (int i = 0; rq->headers && rq->headers[i]; i++) {
		const char *colon = strchr(rq->headers[i], ':');
		if (!colon)
			continue;
		char name[128];
		snprintf(name, sizeof(name), "%.*s", (int)(colon - rq->headers[i]), rq->headers[i]);
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		json_object_object_add(h, name, json_object_new_string(v));
	}
	json_object_object_add(o, "headers", h);
	char *b64 = malloc(base64_encoded_len(rq->body_len) + 1);
	if (b64) {
		base64_encode(rq->body ? rq->body : (const unsigned char *)"", rq->body_len, b64);
		json_put_string(o, "body_b64", b64);
	}
	free(b64);
	size_t len;
	char *text = strdup(json_text(o, &len));
	json_object_put(o);
	return text;
}

/* Starts a client sending rq for app by route. */
static void request_start(struct call *c, enum route route, const char *app,
                          const struct request *rq)
{
	char url[9000], route_header[300];
	const char *lines[MAX_HEADER_LINES + 3];
	int n = 0;
	c->pid = -1;
	c->fd = -1;
	switch (route) {
	case ROUTE_CADDY_HOST:
	case ROUTE_PROXY_HOST:
		if (route == ROUTE_CADDY_HOST)
			snprintf(url, sizeof(url), "%s%s", st.base_url, rq->path);
		else
			snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", st.proxy_port, rq->path);
		snprintf(route_header, sizeof(route_header), "Host: %s.app.localhost", app);
		lines[n++] = route_header;
		break;
	case ROUTE_PROXY_APP_HEADER:
		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", st.proxy_port, rq->path);
		snprintf(route_header, sizeof(route_header), "X-EE-App: %s", app);
		lines[n++] = route_header;
		break;
	case ROUTE_CADDY_ENVELOPE:
	case ROUTE_CONTROL_ENVELOPE: {
		if (route == ROUTE_CADDY_ENVELOPE)
			snprintf(url, sizeof(url), "%s/v1/proxy/%s", st.base_url, app);
		else
			snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/proxy/%s", st.control_port, app);
		char *env = rq->envelope ? strdup(rq->envelope) : envelope_text(rq);
		const char *h[] = {"Content-Type: application/json", NULL};
		call_start_http(c, "POST", url, h, env, env ? strlen(env) : 0);
		free(env);
		return;
	}
	default:
		return;
	}
	for (int i = 0; rq->headers && rq->headers[i] && n < MAX_HEADER_LINES; i++)
		lines[n++] = rq->headers[i];
	lines[n] = NULL;
	call_start_http(c, rq->method, url, lines, rq->body, rq->body_len);
}

/* ================= the agent's side ================= */

/* What an agent answers. */
struct reply {
	int status;                /* 0: 200 */
	const char *headers_json;  /* the "headers" object as JSON text; NULL: {} */
	const void *body;          /* NULL: none */
	size_t body_len;           /* 0 with a body: strlen(body) */
};

static int reply_send(struct test_agent *a, const char *request_id, const struct reply *rp)
{
	static const struct reply none;
	if (!rp)
		rp = &none;
	struct json_object *h = NULL;
	if (rp->headers_json && !(h = json_tokener_parse(rp->headers_json))) {
		test_fail(__FILE__, __LINE__, "the test's headers are not JSON: %s", rp->headers_json);
		return -1;
	}
	size_t len = rp->body ? (rp->body_len ? rp->body_len : strlen(rp->body)) : 0;
	int rc = agent_send_response(a, request_id, rp->status ? rp->status : 200, h,
	                             rp->body ? rp->body : "", len);
	json_object_put(h);
	if (rc != 0)
		test_fail(__FILE__, __LINE__, "the agent could not answer: %s", agent_last_reason(a));
	return rc;
}

/* A proxy_response whose body_b64 is not base64. */
static void reply_bad_base64(struct test_agent *a, const char *request_id)
{
	struct json_object *o = json_object_new_object();
	json_put_string(o, "type", "proxy_response");
	json_put_string(o, "request_id", request_id);
	json_put_int(o, "status", 200);
	json_object_object_add(o, "headers", json_object_new_object());
	json_put_string(o, "body_b64", "not*base64!");
	CHECK(agent_send_json(a, o) == 0);
	json_object_put(o);
}

/* A header the agent received (any case), or NULL. */
static const char *req_header(const struct agent_request *req, const char *name)
{
	if (!req->headers || !json_object_is_type(req->headers, json_type_object))
		return NULL;
	json_object_object_foreach(req->headers, key, value) {
		if (strcasecmp(key, name) == 0 && json_object_is_type(value, json_type_string))
			return json_object_get_string(value);
	}
	return NULL;
}

static const char *req_headers_text(const struct agent_request *req)
{
	return req->headers ? json_object_to_json_string_ext(req->headers, JSON_C_TO_STRING_PLAIN)
	                    : "(none)";
}

/* How many header lines called name a response has. */
static int header_lines(const char *block, const char *name)
{
	int count = 0;
	size_t n = strlen(name);
	for (const char *p = block; p && *p;) {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':')
			count++;
		p = strstr(p, "\n");
		if (p)
			p++;
	}
	return count;
}

static bool contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; p && *p; p++) {
		if (strncasecmp(p, needle, n) == 0)
			return true;
	}
	return false;
}

static bool has_line_value(const char *block, const char *name, const char *value)
{
	char line[512];
	snprintf(line, sizeof(line), "%s: %s\r\n", name, value);
	size_t n = strlen(line);
	for (const char *p = block; p && *p;) {
		if (strncasecmp(p, line, n) == 0)
			return true;
		p = strstr(p, "\n");
		if (p)
			p++;
	}
	return false;
}

/* Checks that the agent gets no request in the next NOTHING_MS. */
static void check_agent_idle(struct test_agent *a)
{
	struct agent_request req;
	if (agent_recv_request(a, &req, NOTHING_MS) == 0) {
		test_fail(__FILE__, __LINE__, "the agent got an unexpected %s %s", req.method, req.path);
		agent_request_free(&req);
	}
}

/*
 * One request through route, received by the agent and answered with rp.
 * What the agent saw stays in *seen (agent_request_free it).  False when
 * the agent got nothing; *got is the client's answer either way.
 */
static bool exchange(struct test_agent *a, enum route route, const char *app,
                     const struct request *rq, const struct reply *rp, struct agent_request *seen,
                     struct http_result *got)
{
	struct call c;
	request_start(&c, route, app, rq);
	bool received = agent_recv_request(a, seen, AGENT_WAIT_MS) == 0;
	if (received)
		reply_send(a, seen->request_id, rp);
	call_finish_http(&c, got);
	return received;
}

/* A request the agent must never see; *got is the refusal. */
static void refused(struct test_agent *a, enum route route, const char *app,
                    const struct request *rq, struct http_result *got)
{
	struct call c;
	request_start(&c, route, app, rq);
	call_finish_http(&c, got);
	if (a)
		check_agent_idle(a);
}

/*
 * Waits until ee-tunneld has handled everything the agent sent: lws
 * answers a ping after the frames before it.
 */
static void agent_sync(struct test_agent *a)
{
	int before = ws_pongs_received(a->ws);
	if (ws_send_frame(a->ws, WS_OP_PING, true, true, "sync", 4) != 0) {
		test_fail(__FILE__, __LINE__, "ping: %s", ws_last_error(a->ws));
		return;
	}
	int64_t deadline = time_monotonic_ms() + AGENT_WAIT_MS;
	while (ws_pongs_received(a->ws) == before && time_monotonic_ms() < deadline) {
		char *data;
		size_t len;
		int opcode;
		int rc = ws_recv_message(a->ws, &data, &len, &opcode, 50);
		if (rc == WS_RECV_OK) {
			test_fail(__FILE__, __LINE__, "unexpected message while syncing: %.200s", data);
			free(data);
		} else if (rc != WS_RECV_TIMEOUT) {
			test_fail(__FILE__, __LINE__, "the tunnel ended while syncing: %s",
			          ws_last_error(a->ws));
			return;
		}
	}
	CHECK(ws_pongs_received(a->ws) > before, "(no pong in %d ms)", AGENT_WAIT_MS);
}

/* An attested agent on sandbox-1, connected to port (Caddy or the control listener). */
static struct test_agent *agent_start(int port, const char *app, const char *repo,
                                      const char *agent_id)
{
	struct test_agent *a = agent_connect("127.0.0.1", port, app, repo, agent_id, "sandbox-1");
	if (!a) {
		test_fail(__FILE__, __LINE__, "agent %s could not connect to port %d", agent_id, port);
		return NULL;
	}
	if (agent_up(a, false, AGENT_WAIT_MS) != 0) {
		test_fail(__FILE__, __LINE__, "agent %s was not attested: %s", agent_id,
		          agent_last_reason(a));
		agent_drop(a);
		return NULL;
	}
	return a;
}

/* Checks a refusal's exact JSON body and its content type. */
static void check_refusal(const struct http_result *r, long status, const char *body)
{
	CHECK_INT(r->status, status);
	CHECK_STR(r->body, body);
	char type[128] = "";
	CHECK(http_header(r, "Content-Type", type, sizeof(type)) &&
	          strncmp(type, "application/json", 16) == 0,
	      "(Content-Type \"%s\")", type);
}

static const char *control_url(const char *path)
{
	static char url[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", st.control_port, path);
	return url;
}

/* ================= the cases ================= */

static struct test_agent *demo; /* app "demo" of acme/demo, connected through Caddy */

/* An answer ee-tunneld cannot read but that names its request: raw
 * ISO-8859-1, as agents wrote it before the escapes (json-c writes the
 * byte as it is: not UTF-8, so not JSON ee-tunneld reads). */
static void reply_raw_latin1(struct test_agent *a, const char *request_id)
{
	reply_send(a, request_id,
	           &(struct reply){.headers_json = "{\"X-Raw\":\"caf\xe9\"}", .body = "raw"});
}

/* GET path to "demo" by route, answered by the agent with reply; the client's result in r. */
static void answer_badly(int route, const char *path,
                         void (*reply)(struct test_agent *, const char *), struct http_result *r)
{
	struct call bc;
	struct request rq = {.method = "GET", .path = path};
	request_start(&bc, (enum route)route, "demo", &rq);
	struct agent_request seen;
	if (agent_recv_request(demo, &seen, AGENT_WAIT_MS) == 0) {
		reply(demo, seen.request_id);
		agent_request_free(&seen);
	} else {
		test_fail(__FILE__, __LINE__, "the agent got nothing");
	}
	call_finish_http(&bc, r);
}

static void test_methods(void)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD",
	                                      "OPTIONS"};
	for (int route = 0; route < ROUTE_COUNT; route++) {
		for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
			const char *method = methods[m];
			test_case("%s: %s reaches the agent and its answer comes back", route_names[route],
			          method);
			bool with_body = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
			                 strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0;
			char path[128], body[64], answer[64], headers[128];
			snprintf(path, sizeof(path), "/m/%s?x=1&y=two", method);
			snprintf(body, sizeof(body), "body of %s", method);
			snprintf(answer, sizeof(answer), "answer to %s", method);
			snprintf(headers, sizeof(headers), "{\"X-Answer\":\"%s\"}", method);
			struct request rq = {.method = method, .path = path, .body = with_body ? body : NULL,
			                     .body_len = with_body ? strlen(body) : 0};
			struct reply rp = {.status = 200, .headers_json = headers, .body = answer};
			struct agent_request seen;
			struct http_result r;
			if (exchange(demo, (enum route)route, "demo", &rq, &rp, &seen, &r)) {
				CHECK_STR(seen.method, method);
				CHECK_STR(seen.path, path);
				CHECK_INT(seen.body_len, with_body ? strlen(body) : 0);
				CHECK(!seen.body_invalid);
				if (with_body)
					CHECK(seen.body_len == strlen(body) && memcmp(seen.body, body, seen.body_len) == 0,
					      "(agent got \"%s\")", (const char *)seen.body);
				CHECK_INT(strlen(seen.request_id), 24);
				agent_request_free(&seen);
			} else {
				test_fail(__FILE__, __LINE__, "the agent got nothing; the client got %ld %s",
				          r.status, r.body);
			}
			CHECK_INT(r.status, 200);
			char v[128] = "";
			CHECK(http_header(&r, "X-Answer", v, sizeof(v)) && strcmp(v, method) == 0,
			      "(X-Answer \"%s\")", v);
			/* A HEAD has no body on the wire, except inside the envelope's POST. */
			bool no_body = strcmp(method, "HEAD") == 0 && !route_is_envelope((enum route)route);
			CHECK_STR(r.body, no_body ? "" : answer);
			if (no_body) {
				CHECK(http_header(&r, "Content-Length", v, sizeof(v)) &&
				          atoi(v) == (int)strlen(answer),
				      "(HEAD's Content-Length \"%s\")", v);
			}
			http_result_free(&r);
		}
	}

	test_case("the query string arrives in path, percent escapes as sent");
	for (int route = 0; route < ROUTE_COUNT; route++) {
		const char *path = "/search/a%2Fb?q=a%20b&empty=&list=1&list=2&u=%E2%82%AC";
		struct request rq = {.method = "GET", .path = path};
		struct agent_request seen;
		struct http_result r;
		if (exchange(demo, (enum route)route, "demo", &rq, NULL, &seen, &r)) {
			CHECK(strcmp(seen.path, path) == 0, "(%s: agent got %s)", route_names[route],
			      seen.path);
			agent_request_free(&seen);
		}
		CHECK_INT(r.status, 200);
		http_result_free(&r);
	}
}

static void check_no_hop_headers(const struct agent_request *seen, bool envelope)
{
	static const char *const gone[] = {"Connection", "Keep-Alive", "TE", "Trailer",
	                                   "Proxy-Connection", "Upgrade", "Transfer-Encoding",
	                                   "X-Hop-Named", "Host", "X-EE-App"};
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
		const char *v = req_header(seen, gone[i]);
		CHECK(v == NULL, "(%s%s arrived as \"%s\"; all: %s)", envelope ? "envelope: " : "",
		      gone[i], v ? v : "", req_headers_text(seen));
	}
}

static void test_request_headers(void)
{
	for (int route = 0; route < ROUTE_COUNT; route++) {
		if (route_is_envelope((enum route)route))
			continue;
		test_case("%s: custom and repeated headers arrive, hop-by-hop ones, Host and X-EE-App do not",
		          route_names[route]);
		/* Caddy would forward "Upgrade" as a websocket upgrade; alone it is hop-by-hop. */
		const char *headers[] = {"X-Custom-One: one",
		                         "X-Custom-Two: two words, with a comma",
		                         "X-Multi: a",
		                         "X-Multi: b",
		                         "Cookie: a=1",
		                         "Cookie: b=2",
		                         "Connection: keep-alive, X-Hop-Named",
		                         "X-Hop-Named: secret",
		                         "Keep-Alive: timeout=5",
		                         "TE: trailers",
		                         "Trailer: X-Later",
		                         "Proxy-Connection: keep-alive",
		                         route == ROUTE_CADDY_HOST ? "Upgrade: h2c" : NULL,
		                         NULL};
		struct request rq = {.method = "GET", .path = "/headers", .headers = headers};
		struct agent_request seen;
		struct http_result r;
		if (exchange(demo, (enum route)route, "demo", &rq, NULL, &seen, &r)) {
			const char *v;
			CHECK((v = req_header(&seen, "X-Custom-One")) && strcmp(v, "one") == 0,
			      "(X-Custom-One: %s)", v ? v : "(none)");
			CHECK((v = req_header(&seen, "X-Custom-Two")) &&
			          strcmp(v, "two words, with a comma") == 0,
			      "(X-Custom-Two: %s)", v ? v : "(none)");
			CHECK((v = req_header(&seen, "X-Multi")) && strcmp(v, "a, b") == 0,
			      "(X-Multi: %s)", v ? v : "(none)");
			CHECK((v = req_header(&seen, "Cookie")) && strcmp(v, "a=1; b=2") == 0,
			      "(Cookie: %s)", v ? v : "(none)");
			check_no_hop_headers(&seen, false);
			agent_request_free(&seen);
		}
		CHECK_INT(r.status, 200);
		http_result_free(&r);

		/* ee-tunneld writes the headers' JSON itself: every byte must arrive as sent. */
		test_case("%s: values with quotes, backslashes, tabs and UTF-8 arrive as sent; a repeat "
		          "in another case joins the first spelling",
		          route_names[route]);
		const char *odd[] = {"X-Quote: say \"hi\" \"\"",
		                     "X-Backslash: C:\\dir\\ \\\"",
		                     "X-Tab: a\tb",
		                     "X-Utf8: caf\xc3\xa9 \xe2\x82\xac",
		                     "X-Slash: </script>",
		                     "X-Case: first",
		                     "x-case: \"second\"",
		                     NULL};
		struct request rq2 = {.method = "GET", .path = "/headers", .headers = odd};
		if (exchange(demo, (enum route)route, "demo", &rq2, NULL, &seen, &r)) {
			const char *v;
			CHECK((v = req_header(&seen, "X-Quote")) && strcmp(v, "say \"hi\" \"\"") == 0,
			      "(X-Quote: %s)", v ? v : "(none)");
			CHECK((v = req_header(&seen, "X-Backslash")) && strcmp(v, "C:\\dir\\ \\\"") == 0,
			      "(X-Backslash: %s)", v ? v : "(none)");
			CHECK((v = req_header(&seen, "X-Tab")) && strcmp(v, "a\tb") == 0, "(X-Tab: %s)",
			      v ? v : "(none)");
			CHECK((v = req_header(&seen, "X-Utf8")) &&
			          strcmp(v, "caf\xc3\xa9 \xe2\x82\xac") == 0,
			      "(X-Utf8: %s)", v ? v : "(none)");
			CHECK((v = req_header(&seen, "X-Slash")) && strcmp(v, "</script>") == 0,
			      "(X-Slash: %s)", v ? v : "(none)");
			CHECK((v = req_header(&seen, "X-Case")) && strcmp(v, "first, \"second\"") == 0,
			      "(X-Case: %s; %s)", v ? v : "(none)", req_headers_text(&seen));
			CHECK(strstr(req_headers_text(&seen), "\"X-Case\"") != NULL, "(%s)",
			      req_headers_text(&seen));
			agent_request_free(&seen);
		}
		CHECK_INT(r.status, 200);
		http_result_free(&r);

		/* On the tunnel they are \udcXX escapes; the agent reads them back as the bytes. */
		test_case("%s: values in ISO-8859-1, or UTF-8 and broken bytes mixed, arrive byte-exact",
		          route_names[route]);
		const char *latin1[] = {"X-Latin: caf\xe9 \xff", "X-Mixed: \xc3\xa9\xe9\xed\xa0\x80",
		                        "X-Latin-Repeat: \xe9", "X-Latin-Repeat: \xea", NULL};
		struct request rq3 = {.method = "GET", .path = "/latin1", .headers = latin1};
		if (exchange(demo, (enum route)route, "demo", &rq3, NULL, &seen, &r)) {
			const char *v;
			CHECK((v = req_header(&seen, "X-Latin")) && strcmp(v, "caf\xe9 \xff") == 0,
			      "(X-Latin: %s)", v ? test_printable(v) : "(none)");
			CHECK((v = req_header(&seen, "X-Mixed")) && strcmp(v, "\xc3\xa9\xe9\xed\xa0\x80") == 0,
			      "(X-Mixed: %s)", v ? test_printable(v) : "(none)");
			CHECK((v = req_header(&seen, "X-Latin-Repeat")) && strcmp(v, "\xe9, \xea") == 0,
			      "(X-Latin-Repeat: %s)", v ? test_printable(v) : "(none)");
			agent_request_free(&seen);
		}
		CHECK_INT(r.status, 200);
		http_result_free(&r);
	}

	for (int route = ROUTE_CADDY_ENVELOPE; route <= ROUTE_CONTROL_ENVELOPE; route++) {
		test_case("%s: headers arrive; hop-by-hop ones, Host and X-EE-App do not",
		          route_names[route]);
		const char *headers[] = {"X-Custom-One: one",
		                         "X-Custom-Two: two words, with a comma",
		                         "Cookie: a=1; b=2",
		                         "Connection: keep-alive, X-Hop-Named",
		                         "X-Hop-Named: secret",
		                         "Keep-Alive: timeout=5",
		                         "TE: trailers",
		                         "Trailer: X-Later",
		                         "Proxy-Connection: keep-alive",
		                         "Upgrade: websocket",
		                         "Transfer-Encoding: chunked",
		                         "Host: elsewhere.example",
		                         "X-EE-App: other-app",
		                         NULL};
		struct request rq = {.method = "POST", .path = "/headers", .headers = headers,
		                     .body = "x", .body_len = 1};
		struct agent_request seen;
		struct http_result r;
		if (exchange(demo, (enum route)route, "demo", &rq, NULL, &seen, &r)) {
			const char *v;
			CHECK((v = req_header(&seen, "X-Custom-One")) && strcmp(v, "one") == 0,
			      "(X-Custom-One: %s)", v ? v : "(none)");
			CHECK((v = req_header(&seen, "X-Custom-Two")) &&
			          strcmp(v, "two words, with a comma") == 0,
			      "(X-Custom-Two: %s)", v ? v : "(none)");
			CHECK((v = req_header(&seen, "Cookie")) && strcmp(v, "a=1; b=2") == 0,
			      "(Cookie: %s)", v ? v : "(none)");
			check_no_hop_headers(&seen, true);
			CHECK_INT(seen.body_len, 1);
			agent_request_free(&seen);
		}
		CHECK_INT(r.status, 200);
		http_result_free(&r);

		/* The envelope is JSON: a client writes a byte that is not UTF-8 as
		 * \udc80..\udcff, as the tunnel's messages do; json-c alone reads U+FFFD. */
		test_case("%s: a client's \\udc80..\\udcff escapes in header values reach the agent "
		          "as their bytes; pairs and other lone surrogates as json-c reads them",
		          route_names[route]);
		struct request rq2 = {
		    .method = "GET", .path = "/latin1",
		    .envelope = "{\"method\":\"GET\",\"path\":\"/latin1\",\"headers\":{"
		                "\"X-Latin\":\"caf\\udce9 \\udcff\",\"X-Mixed\":\"\\u00e9\\udce9\","
		                "\"X-Pair\":\"\\ud83d\\ude00\",\"X-Lone\":\"\\ud800x\","
		                "\"X-Plain\":\"plain\"}}"};
		if (exchange(demo, (enum route)route, "demo", &rq2, NULL, &seen, &r)) {
			const char *v;
			CHECK((v = req_header(&seen, "X-Latin")) && strcmp(v, "caf\xe9 \xff") == 0,
			      "(X-Latin: %s)", v ? test_printable(v) : "(none)");
			CHECK((v = req_header(&seen, "X-Mixed")) && strcmp(v, "\xc3\xa9\xe9") == 0,
			      "(X-Mixed: %s)", v ? test_printable(v) : "(none)");
			CHECK((v = req_header(&seen, "X-Pair")) && strcmp(v, "\xf0\x9f\x98\x80") == 0,
			      "(X-Pair: %s)", v ? test_printable(v) : "(none)");
			CHECK((v = req_header(&seen, "X-Lone")) && strcmp(v, "\xef\xbf\xbdx") == 0,
			      "(X-Lone: %s)", v ? test_printable(v) : "(none)");
			CHECK((v = req_header(&seen, "X-Plain")) && strcmp(v, "plain") == 0,
			      "(X-Plain: %s)", v ? test_printable(v) : "(none)");
			agent_request_free(&seen);
		}
		CHECK_INT(r.status, 200);
		http_result_free(&r);
	}

	test_case("proxy listener: an Upgrade is 501 upgrade_not_supported, the agent sees nothing");
	const char *upgrade[] = {"Host: demo.app.localhost", "Connection: Upgrade",
	                         "Upgrade: websocket", NULL};
	struct call c;
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ws", st.proxy_port);
	call_start_http(&c, "GET", url, upgrade, NULL, 0);
	struct http_result r;
	call_finish_http(&c, &r);
	check_refusal(&r, 501, "{\"error\":\"upgrade_not_supported\"}");
	http_result_free(&r);
	check_agent_idle(demo);

	test_case("Caddy: a websocket upgrade for an app is 501 upgrade_not_supported");
	snprintf(url, sizeof(url), "%s/ws", st.base_url);
	const char *upgrade_caddy[] = {"Host: demo.app.localhost", "Connection: Upgrade",
	                               "Upgrade: websocket", "Sec-WebSocket-Version: 13",
	                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", NULL};
	call_start_http(&c, "GET", url, upgrade_caddy, NULL, 0);
	call_finish_http(&c, &r);
	CHECK_INT(r.status, 501);
	CHECK_STR(http_reason(&r), "upgrade_not_supported");
	http_result_free(&r);
	check_agent_idle(demo);
}

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 7 + seed + i / 256) & 0xff);
}

static void test_bodies(void)
{
	unsigned char all[1024], reversed[1024];
	for (size_t i = 0; i < sizeof(all); i++) {
		all[i] = (unsigned char)(i & 0xff);
		reversed[sizeof(all) - 1 - i] = all[i];
	}
	for (int route = 0; route < ROUTE_COUNT; route++) {
		test_case("%s: every byte value in both directions, byte for byte", route_names[route]);
		const char *headers[] = {"Content-Type: application/octet-stream", NULL};
		struct request rq = {.method = "POST", .path = "/binary", .headers = headers,
		                     .body = all, .body_len = sizeof(all)};
		struct reply rp = {.headers_json = "{\"Content-Type\":\"application/octet-stream\"}",
		                   .body = reversed, .body_len = sizeof(reversed)};
		struct agent_request seen;
		struct http_result r;
		if (exchange(demo, (enum route)route, "demo", &rq, &rp, &seen, &r)) {
			CHECK(seen.body_len == sizeof(all) && memcmp(seen.body, all, sizeof(all)) == 0,
			      "(agent got %zu bytes)", seen.body_len);
			agent_request_free(&seen);
		}
		CHECK_INT(r.status, 200);
		CHECK(r.body_len == sizeof(reversed) && memcmp(r.body, reversed, sizeof(reversed)) == 0,
		      "(client got %zu bytes)", r.body_len);
		http_result_free(&r);

		test_case("%s: empty bodies both ways", route_names[route]);
		struct request empty = {.method = "POST", .path = "/empty", .body = "", .body_len = 0};
		if (exchange(demo, (enum route)route, "demo", &empty, NULL, &seen, &r)) {
			CHECK_INT(seen.body_len, 0);
			CHECK(!seen.body_invalid);
			agent_request_free(&seen);
		}
		CHECK_INT(r.status, 200);
		CHECK_INT(r.body_len, 0);
		char v[32] = "";
		CHECK(http_header(&r, "Content-Length", v, sizeof(v)) && strcmp(v, "0") == 0,
		      "(Content-Length \"%s\")", v);
		http_result_free(&r);
	}

	unsigned char *big = malloc(MAX_BODY + 1);
	if (!big) {
		test_fail(__FILE__, __LINE__, "out of memory");
		return;
	}
	fill_pattern(big, MAX_BODY + 1, 3);
	for (int route = 0; route < ROUTE_COUNT; route++) {
		test_case("%s: a body of exactly EE_PROXY_MAX_BODY_BYTES (%d) goes through and back",
		          route_names[route], MAX_BODY);
		struct request rq = {.method = "PUT", .path = "/big", .body = big, .body_len = MAX_BODY};
		struct reply rp = {.body = big, .body_len = MAX_BODY};
		struct agent_request seen;
		struct http_result r;
		if (exchange(demo, (enum route)route, "demo", &rq, &rp, &seen, &r)) {
			CHECK(seen.body_len == MAX_BODY && memcmp(seen.body, big, MAX_BODY) == 0,
			      "(agent got %zu bytes)", seen.body_len);
			agent_request_free(&seen);
		}
		CHECK_INT(r.status, 200);
		CHECK(r.body_len == MAX_BODY && memcmp(r.body, big, MAX_BODY) == 0,
		      "(client got %zu bytes)", r.body_len);
		http_result_free(&r);

		test_case("%s: one byte more is 413 body_too_large and never reaches the agent",
		          route_names[route]);
		struct request over = {.method = "PUT", .path = "/big", .body = big,
		                       .body_len = MAX_BODY + 1};
		refused(demo, (enum route)route, "demo", &over, &r);
		CHECK(r.curl_code == 0, "(curl error %d: the answer was lost)", r.curl_code);
		check_refusal(&r, 413, "{\"allowed\":false,\"reason\":\"body_too_large\"}");
		http_result_free(&r);
	}
	free(big);
}

/* Sends a raw script to port and splits the answer; returns the number of responses. */
static int raw_exchange_finish(struct call *c, unsigned head_mask, struct raw_response *rs,
                               char **data, char how[32])
{
	size_t len, rest;
	*data = call_finish_raw(c, &len, how);
	int n = raw_split(*data, len, head_mask, rs, RAW_MAX_RESPONSES, &rest);
	CHECK(rest == 0, "(%zu bytes after %d responses: \"%.200s\")", rest, n, *data + (len - rest));
	return n;
}

static void test_chunked(void)
{
	static const char chunked_head[] =
		"POST /chunked?via=raw HTTP/1.1\r\n"
		"Host: demo.app.localhost\r\n"
		"Transfer-Encoding: chunked\r\n"
		"Connection: close\r\n"
		"\r\n"
		"5\r\nhello\r\n"
		"6;ext=1\r\n wor\x00\xff\r\n"
		"3\r\nld!\r\n"
		"0\r\nX-Trailer: t\r\n\r\n";
	static const char expected[] = "hello wor\x00\xffld!";
	const int ports[2] = {st.proxy_port, st.port};
	for (int i = 0; i < 2; i++) {
		test_case("%s: a chunked request body arrives decoded, without Transfer-Encoding",
		          i == 0 ? "proxy listener" : "Caddy");
		struct raw_step step = {chunked_head, sizeof(chunked_head) - 1, 1};
		struct call c;
		call_start_raw(&c, ports[i], &step, 1, 0);
		struct agent_request seen;
		if (agent_recv_request(demo, &seen, AGENT_WAIT_MS) == 0) {
			CHECK_STR(seen.method, "POST");
			CHECK_STR(seen.path, "/chunked?via=raw");
			CHECK(seen.body_len == sizeof(expected) - 1 &&
			          memcmp(seen.body, expected, sizeof(expected) - 1) == 0,
			      "(agent got %zu bytes: %s)", seen.body_len, (const char *)seen.body);
			CHECK(!req_header(&seen, "Transfer-Encoding"), "(%s)", req_headers_text(&seen));
			CHECK(!req_header(&seen, "X-Trailer"), "(%s)", req_headers_text(&seen));
			reply_send(demo, seen.request_id, &(struct reply){.status = 201, .body = "chunked ok"});
			agent_request_free(&seen);
		} else {
			test_fail(__FILE__, __LINE__, "the agent got nothing: %s", agent_last_reason(demo));
		}
		struct raw_response rs[RAW_MAX_RESPONSES];
		char *data, how[32];
		int n = raw_exchange_finish(&c, 0, rs, &data, how);
		CHECK(n == 1, "(%d responses in: %s)", n, test_printable(data));
		if (n >= 1) {
			CHECK_INT(rs[0].status, 201);
			CHECK(rs[0].body_len == 10 && memcmp(rs[0].body, "chunked ok", 10) == 0);
		}
		CHECK_STR(how, "eof");
		free(data);
	}

	/* Exactly the limit in chunks of 64 KiB, then one byte over. */
	struct buf body;
	buf_init(&body);
	unsigned char *big = malloc(MAX_BODY);
	if (!big)
		return;
	fill_pattern(big, MAX_BODY, 11);
	for (int over = 0; over <= 1; over++) {
		test_case(over ? "proxy listener: a chunked body one byte over the limit is 413"
		               : "proxy listener: a chunked body of exactly the limit goes through");
		buf_reset(&body);
		buf_puts(&body, "PUT /chunked-big HTTP/1.1\r\nHost: demo.app.localhost\r\n"
		                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
		for (size_t off = 0; off < MAX_BODY; off += 65536) {
			buf_printf(&body, "%x\r\n", 65536);
			buf_append(&body, big + off, 65536);
			buf_puts(&body, "\r\n");
		}
		if (over)
			buf_puts(&body, "1\r\nZ\r\n");
		buf_puts(&body, "0\r\n\r\n");
		struct raw_step step = {body.data, body.len, 1};
		struct call c;
		call_start_raw(&c, st.proxy_port, &step, 1, 0);
		if (!over) {
			struct agent_request seen;
			if (agent_recv_request(demo, &seen, AGENT_WAIT_MS) == 0) {
				CHECK(seen.body_len == MAX_BODY && memcmp(seen.body, big, MAX_BODY) == 0,
				      "(agent got %zu bytes)", seen.body_len);
				reply_send(demo, seen.request_id, &(struct reply){.body = "big ok"});
				agent_request_free(&seen);
			} else {
				test_fail(__FILE__, __LINE__, "the agent got nothing");
			}
		}
		struct raw_response rs[RAW_MAX_RESPONSES];
		char *data, how[32];
		int n = raw_exchange_finish(&c, 0, rs, &data, how);
		CHECK(n == 1, "(%d responses in: %s)", n, test_printable(data));
		if (n >= 1 && over) {
			CHECK_INT(rs[0].status, 413);
			static const char too_large[] = "{\"allowed\":false,\"reason\":\"body_too_large\"}";
			CHECK(rs[0].body_len == strlen(too_large) &&
			          memcmp(rs[0].body, too_large, strlen(too_large)) == 0,
			      "(%.*s)", (int)rs[0].body_len, rs[0].body);
		} else if (n >= 1) {
			CHECK_INT(rs[0].status, 200);
		}
		free(data);
		if (over)
			check_agent_idle(demo);
	}
	buf_free(&body);
	free(big);
}

static void test_responses(void)
{
	static const int statuses[] = {200, 201, 204, 301, 404, 500};
	for (int route = 0; route < ROUTE_COUNT; route++) {
		for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
			int status = statuses[i];
			test_case("%s: the agent's %d, its headers and two Set-Cookie lines come back",
			          route_names[route], status);
			char headers[512], body[64];
			snprintf(headers, sizeof(headers),
			         "{\"X-Reply\":\"r-%d\",\"Content-Type\":\"text/plain; charset=utf-8\","
			         "\"Set-Cookie\":[\"a=1; Path=/\",\"b=2; Path=/; HttpOnly\"]%s}",
			         status, status == 301 ? ",\"Location\":\"/elsewhere\"" : "");
			snprintf(body, sizeof(body), "status %d", status);
			struct request rq = {.method = "GET", .path = "/status"};
			struct reply rp = {.status = status, .headers_json = headers,
			                   .body = status == 204 ? NULL : body};
			struct agent_request seen;
			struct http_result r;
			if (exchange(demo, (enum route)route, "demo", &rq, &rp, &seen, &r))
				agent_request_free(&seen);
			CHECK_INT(r.status, status);
			char v[128] = "";
			snprintf(v, sizeof(v), "r-%d", status);
			CHECK(has_line_value(r.headers, "X-Reply", v), "(headers: %s)", r.headers);
			CHECK(has_line_value(r.headers, "Content-Type", "text/plain; charset=utf-8"),
			      "(headers: %s)", r.headers);
			CHECK_INT(header_lines(r.headers, "Set-Cookie"), 2);
			CHECK(has_line_value(r.headers, "Set-Cookie", "a=1; Path=/"), "(headers: %s)",
			      r.headers);
			CHECK(has_line_value(r.headers, "Set-Cookie", "b=2; Path=/; HttpOnly"),
			      "(headers: %s)", r.headers);
			if (status == 301)
				CHECK(has_line_value(r.headers, "Location", "/elsewhere"), "(headers: %s)",
				      r.headers);
			CHECK_STR(r.body, status == 204 ? "" : body);
			http_result_free(&r);
		}

		test_case("%s: header values with CR, LF or NUL are dropped, framing headers are ours",
		          route_names[route]);
		const char *evil =
			"{\"X-Good\":\"fine\",\"X-Split\":\"a\\r\\nX-Injected: yes\","
			"\"X-Nul\":\"d\\u0000X-Injected-Nul: yes\","
			"\"X-Lf\":\"b\\nX-Injected-Lf: yes\",\"X-Cr\":\"c\\rX-Injected-Cr: yes\","
			"\"Set-Cookie\":[\"ok=1\",\"bad=1\\r\\nX-Injected-Cookie: yes\"],"
			"\"Content-Length\":\"999\",\"Transfer-Encoding\":\"chunked\"}";
		struct request rq = {.method = "GET", .path = "/evil"};
		struct reply rp = {.headers_json = evil, .body = "abc"};
		struct agent_request seen;
		struct http_result r;
		if (exchange(demo, (enum route)route, "demo", &rq, &rp, &seen, &r))
			agent_request_free(&seen);
		CHECK(r.curl_code == 0, "(curl error %d)", r.curl_code);
		CHECK_INT(r.status, 200);
		CHECK_STR(r.body, "abc");
		CHECK(has_line_value(r.headers, "X-Good", "fine"), "(headers: %s)", r.headers);
		CHECK(!contains_nocase(r.headers, "X-Injected"), "(headers: %s)", r.headers);
		CHECK_INT(header_lines(r.headers, "X-Split"), 0);
		CHECK_INT(header_lines(r.headers, "X-Lf"), 0);
		CHECK_INT(header_lines(r.headers, "X-Cr"), 0);
		CHECK_INT(header_lines(r.headers, "X-Nul"), 0);
		CHECK_INT(header_lines(r.headers, "Set-Cookie"), 1);
		CHECK(has_line_value(r.headers, "Set-Cookie", "ok=1"), "(headers: %s)", r.headers);
		CHECK(has_line_value(r.headers, "Content-Length", "3"), "(headers: %s)", r.headers);
		CHECK_INT(header_lines(r.headers, "Transfer-Encoding"), 0);
		http_result_free(&r);

		test_case("%s: an agent's \\udcXX escapes in header values reach the client as their bytes",
		          route_names[route]);
		struct call lc;
		struct request lrq = {.method = "GET", .path = "/latin1-answer"};
		request_start(&lc, (enum route)route, "demo", &lrq);
		if (agent_recv_request(demo, &seen, AGENT_WAIT_MS) == 0) {
			/* Written by hand: json-c would write the bytes raw, as agents did before. */
			struct buf t;
			buf_init(&t);
			buf_printf(&t, "{\"type\":\"proxy_response\",\"request_id\":\"%s\",\"status\":200,"
			           "\"headers\":{\"Content-Disposition\":\"attachment; filename=\\\"caf\\udce9"
			           ".txt\\\"\",\"Set-Cookie\":[\"a=\\udcff\",\"b=\xc3\xa9\"]},"
			           "\"body_b64\":\"bGF0aW4x\"}",
			           seen.request_id);
			CHECK(ws_send_text(demo->ws, t.data, t.len) == 0);
			buf_free(&t);
			agent_request_free(&seen);
		} else {
			test_fail(__FILE__, __LINE__, "the agent got nothing");
		}
		call_finish_http(&lc, &r);
		CHECK_INT(r.status, 200);
		CHECK(has_line_value(r.headers, "Content-Disposition", "attachment; filename=\"caf\xe9.txt\""),
		      "(headers: %s)", test_printable(r.headers ? r.headers : ""));
		CHECK(has_line_value(r.headers, "Set-Cookie", "a=\xff"), "(headers: %s)",
		      test_printable(r.headers ? r.headers : ""));
		CHECK(has_line_value(r.headers, "Set-Cookie", "b=\xc3\xa9"), "(headers: %s)",
		      test_printable(r.headers ? r.headers : ""));
		CHECK_STR(r.body, "latin1");
		http_result_free(&r);
	}

	test_case("an agent's status outside 100..599 becomes 502");
	for (int route = 0; route < ROUTE_COUNT; route++) {
		struct request rq = {.method = "GET", .path = "/odd-status"};
		struct reply rp = {.status = 600, .body = "odd"};
		struct agent_request seen;
		struct http_result r;
		if (exchange(demo, (enum route)route, "demo", &rq, &rp, &seen, &r))
			agent_request_free(&seen);
		CHECK(r.status == 502, "(%s: %ld)", route_names[route], r.status);
		http_result_free(&r);
	}
}

/* Answers the next request of a, checking its method and path. */
static void serve_expect(struct test_agent *a, const char *method, const char *path,
                         const struct reply *rp)
{
	struct agent_request seen;
	if (agent_recv_request(a, &seen, AGENT_WAIT_MS) != 0) {
		test_fail(__FILE__, __LINE__, "no request for %s %s: %s", method, path,
		          agent_last_reason(a));
		return;
	}
	CHECK_STR(seen.method, method);
	CHECK_STR(seen.path, path);
	reply_send(a, seen.request_id, rp);
	agent_request_free(&seen);
}

static void test_keep_alive_and_pipelining(void)
{
	test_case("proxy listener: keep-alive, two requests one after the other on one connection");
	struct raw_step steps[] = {
		{"GET /ka/1 HTTP/1.1\r\nHost: demo.app.localhost\r\n\r\n", 0, 1},
		{"GET /ka/2 HTTP/1.1\r\nHost: demo.app.localhost\r\nConnection: close\r\n\r\n", 0, 2},
	};
	struct call c;
	call_start_raw(&c, st.proxy_port, steps, 2, 0);
	serve_expect(demo, "GET", "/ka/1", &(struct reply){.body = "one"});
	serve_expect(demo, "GET", "/ka/2", &(struct reply){.body = "two"});
	struct raw_response rs[RAW_MAX_RESPONSES];
	char *data, how[32], v[64];
	int n = raw_exchange_finish(&c, 0, rs, &data, how);
	CHECK(n == 2, "(%d responses in: %s)", n, test_printable(data));
	if (n == 2) {
		CHECK(rs[0].status == 200 && rs[0].body_len == 3 && memcmp(rs[0].body, "one", 3) == 0);
		CHECK(!raw_header(&rs[0], "Connection", v, sizeof(v)) || strcasecmp(v, "close") != 0,
		      "(first answer says Connection: %s)", v);
		CHECK(rs[1].status == 200 && rs[1].body_len == 3 && memcmp(rs[1].body, "two", 3) == 0);
		CHECK(raw_header(&rs[1], "Connection", v, sizeof(v)) && strcasecmp(v, "close") == 0);
	}
	CHECK_STR(how, "eof");
	free(data);

	test_case("proxy listener: three pipelined requests in one send, answered in order, "
	          "one at a time");
	static const char pipelined[] =
		"POST /pipe/1 HTTP/1.1\r\nHost: demo.app.localhost\r\nContent-Length: 3\r\n\r\nabc"
		"HEAD /pipe/2 HTTP/1.1\r\nHost: demo.app.localhost\r\n\r\n"
		"GET /pipe/3 HTTP/1.1\r\nHost: demo.app.localhost\r\nConnection: close\r\n\r\n";
	struct raw_step one = {pipelined, 0, 3};
	call_start_raw(&c, st.proxy_port, &one, 1, 1u << 1);
	struct agent_request seen;
	if (agent_recv_request(demo, &seen, AGENT_WAIT_MS) == 0) {
		CHECK_STR(seen.path, "/pipe/1");
		CHECK(seen.body_len == 3 && memcmp(seen.body, "abc", 3) == 0);
		/* The listener takes the next request only once this one is answered. */
		check_agent_idle(demo);
		reply_send(demo, seen.request_id, &(struct reply){.body = "first"});
		agent_request_free(&seen);
	} else {
		test_fail(__FILE__, __LINE__, "no first request");
	}
	serve_expect(demo, "HEAD", "/pipe/2", &(struct reply){.body = "not sent for a HEAD"});
	serve_expect(demo, "GET", "/pipe/3", &(struct reply){.body = "third"});
	n = raw_exchange_finish(&c, 1u << 1, rs, &data, how);
	CHECK(n == 3, "(%d responses in: %s)", n, test_printable(data));
	if (n == 3) {
		CHECK(rs[0].body_len == 5 && memcmp(rs[0].body, "first", 5) == 0);
		CHECK_INT(rs[1].status, 200);
		CHECK(raw_header(&rs[1], "Content-Length", v, sizeof(v)) && strcmp(v, "19") == 0,
		      "(HEAD's Content-Length %s)", v);
		CHECK(rs[2].body_len == 5 && memcmp(rs[2].body, "third", 5) == 0);
	}
	CHECK_STR(how, "eof");
	free(data);

	test_case("proxy listener: an agent's 204 with a body sends no body; the next answer is intact");
	static const char two[] =
		"GET /nc/1 HTTP/1.1\r\nHost: demo.app.localhost\r\n\r\n"
		"GET /nc/2 HTTP/1.1\r\nHost: demo.app.localhost\r\nConnection: close\r\n\r\n";
	struct raw_step both = {two, 0, 2};
	call_start_raw(&c, st.proxy_port, &both, 1, 0);
	serve_expect(demo, "GET", "/nc/1", &(struct reply){.status = 204, .body = "junk"});
	serve_expect(demo, "GET", "/nc/2", &(struct reply){.body = "after"});
	n = raw_exchange_finish(&c, 0, rs, &data, how);
	CHECK(n == 2, "(%d responses in: %s)", n, test_printable(data));
	if (n == 2) {
		CHECK_INT(rs[0].status, 204);
		CHECK(rs[1].status == 200 && rs[1].body_len == 5 && memcmp(rs[1].body, "after", 5) == 0);
	}
	free(data);

	test_case("proxy listener: a missing app is 400 and the connection stays usable");
	static const char missing_then_ok[] =
		"GET / HTTP/1.1\r\nHost: :8080\r\n\r\n"
		"GET /after-missing HTTP/1.1\r\nHost: demo.app.localhost\r\nConnection: close\r\n\r\n";
	struct raw_step ms = {missing_then_ok, 0, 2};
	call_start_raw(&c, st.proxy_port, &ms, 1, 0);
	serve_expect(demo, "GET", "/after-missing", &(struct reply){.body = "fine"});
	n = raw_exchange_finish(&c, 0, rs, &data, how);
	CHECK(n == 2, "(%d responses in: %s)", n, test_printable(data));
	if (n == 2) {
		CHECK_INT(rs[0].status, 400);
		CHECK(rs[0].body_len == 23 && memcmp(rs[0].body, "{\"error\":\"missing_app\"}", 23) == 0,
		      "(%.*s)", (int)rs[0].body_len, rs[0].body);
		CHECK(rs[1].status == 200 && rs[1].body_len == 4);
	}
	free(data);
}

/*
 * Two envelopes on one connection to the control listener, the second
 * sent after the first answer (keep-alive) or with it (pipelined).
 */
static void control_two_envelopes(bool pipelined, const char *path, const struct reply *first,
                                  const struct reply *second, struct raw_response rs[2], int *n,
                                  char **data, char how[32])
{
	char envelope[128], one[512], two[512];
	snprintf(envelope, sizeof(envelope), "{\"method\":\"GET\",\"path\":\"%s\"}", path);
	snprintf(one, sizeof(one),
	         "POST /v1/proxy/demo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	         strlen(envelope), envelope);
	snprintf(two, sizeof(two),
	         "POST /v1/proxy/demo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
	         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	         strlen(envelope), envelope);
	char both[1024];
	snprintf(both, sizeof(both), "%s%s", one, two);
	struct raw_step steps[2] = {{one, 0, 1}, {two, 0, 2}};
	struct raw_step single = {both, 0, 2};
	struct call c;
	if (pipelined)
		call_start_raw(&c, st.control_port, &single, 1, 0);
	else
		call_start_raw(&c, st.control_port, steps, 2, 0);
	serve_expect(demo, "GET", path, first);
	serve_expect(demo, "GET", path, second);
	/* Exactly two: anything more is a replay (counted for up to 2 s). */
	int replays = 0;
	int64_t until = time_monotonic_ms() + 2000;
	struct agent_request extra;
	while (time_monotonic_ms() < until && agent_recv_request(demo, &extra, NOTHING_MS) == 0) {
		replays++;
		agent_request_free(&extra);
	}
	CHECK(replays == 0, "(the agent got %d more copies of %s in 2 s)", replays, path);
	struct raw_response all[RAW_MAX_RESPONSES];
	*n = raw_exchange_finish(&c, 0, all, data, how);
	memcpy(rs, all, 2 * sizeof(*rs));
}

static void test_control_listener_reuse(void)
{
	struct raw_response rs[2];
	char *data, how[32];
	int n;
	test_case("control listener: keep-alive, two envelopes one after the other on one connection");
	control_two_envelopes(false, "/cka/1", &(struct reply){.body = "one"},
	                      &(struct reply){.body = "two"}, rs, &n, &data, how);
	CHECK(n == 2, "(%d responses in: %s)", n, test_printable(data));
	if (n == 2) {
		CHECK(rs[0].status == 200 && rs[0].body_len == 3 && memcmp(rs[0].body, "one", 3) == 0);
		CHECK(rs[1].status == 200 && rs[1].body_len == 3 && memcmp(rs[1].body, "two", 3) == 0);
	}
	CHECK_STR(how, "eof");
	free(data);

	test_case("control listener: an agent's 204 with a body sends no body after the head");
	static const char envelope[] = "{\"method\":\"GET\",\"path\":\"/c204\"}";
	char request[512];
	snprintf(request, sizeof(request),
	         "POST /v1/proxy/demo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
	         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	         strlen(envelope), envelope);
	struct raw_step step = {request, 0, 1};
	struct call c;
	call_start_raw(&c, st.control_port, &step, 1, 0);
	serve_expect(demo, "GET", "/c204", &(struct reply){.status = 204, .body = "junk"});
	struct raw_response all[RAW_MAX_RESPONSES];
	n = raw_exchange_finish(&c, 0, all, &data, how);
	CHECK(n == 1 && all[0].status == 204, "(%d responses in: %s)", n, test_printable(data));
	CHECK_STR(how, "eof");
	free(data);
}

/*
 * Run last, on its own ee-tunneld.  The control listener takes one request
 * at a time (docs/PROTOCOL.md): a request pipelined behind one in flight
 * closes the connection.  What matters is that nothing is sent twice, that
 * the daemon does not spin, and that it goes on serving.
 */
static void test_control_pipelining(void)
{
	test_case("control listener: two pipelined envelopes close the connection; nothing is sent "
	          "twice and the daemon goes on serving");
	static const char envelope[] = "{\"method\":\"GET\",\"path\":\"/cpipe\"}";
	char one[512], both[1024];
	snprintf(one, sizeof(one),
	         "POST /v1/proxy/demo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	         strlen(envelope), envelope);
	snprintf(both, sizeof(both), "%s%s", one, one);
	struct raw_step single = {both, 0, 2};
	struct call c;
	call_start_raw(&c, st.control_port, &single, 1, 0);
	int received = 0;
	struct agent_request req;
	int64_t until = time_monotonic_ms() + 2000;
	while (time_monotonic_ms() < until && agent_recv_request(demo, &req, NOTHING_MS) == 0) {
		received++;
		reply_send(demo, req.request_id, &(struct reply){.body = "one"});
		agent_request_free(&req);
	}
	CHECK(received <= 1, "(the agent got %d copies of /cpipe)", received);
	struct raw_response all[RAW_MAX_RESPONSES];
	char *data, how[32];
	int n = raw_exchange_finish(&c, 0, all, &data, how);
	CHECK(n <= 1, "(%d responses in: %s)", n, test_printable(data));
	CHECK_STR(how, "eof");
	free(data);

	struct http_result r;
	const char *json[] = {"Content-Type: application/json", NULL};
	call_start_http(&c, "POST", control_url("/v1/proxy/demo"), json, envelope, strlen(envelope));
	CHECK_INT(agent_recv_request(demo, &req, 5000), 0);
	reply_send(demo, req.request_id, &(struct reply){.body = "after"});
	agent_request_free(&req);
	call_finish_http(&c, &r);
	CHECK_INT(r.status, 200);
	CHECK(r.body_len == 5 && memcmp(r.body, "after", 5) == 0);
	http_result_free(&r);
}

static void test_many_in_flight(void)
{
	test_case("%d requests in flight on one tunnel, answered in reverse order, each to its client",
	          IN_FLIGHT);
	struct call calls[IN_FLIGHT];
	char paths[IN_FLIGHT][32];
	for (int i = 0; i < IN_FLIGHT; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/inflight/%d", i);
		struct request rq = {.method = i % 2 ? "POST" : "GET", .path = paths[i],
		                     .body = i % 2 ? paths[i] : NULL,
		                     .body_len = i % 2 ? strlen(paths[i]) : 0};
		request_start(&calls[i], (enum route)(i % ROUTE_COUNT), "demo", &rq);
	}
	struct agent_request reqs[IN_FLIGHT];
	int got = 0;
	bool seen_marker[IN_FLIGHT] = {false};
	while (got < IN_FLIGHT && agent_recv_request(demo, &reqs[got], 10000) == 0) {
		int marker = -1;
		if (sscanf(reqs[got].path, "/inflight/%d", &marker) != 1 || marker < 0 ||
		    marker >= IN_FLIGHT || seen_marker[marker]) {
			test_fail(__FILE__, __LINE__, "unexpected or repeated request %s", reqs[got].path);
		} else {
			seen_marker[marker] = true;
			for (int k = 0; k < got; k++)
				CHECK(strcmp(reqs[k].request_id, reqs[got].request_id) != 0,
				      "(request_id %s given twice)", reqs[got].request_id);
		}
		got++;
	}
	CHECK_INT(got, IN_FLIGHT);
	for (int k = got - 1; k >= 0; k--) {
		int marker = -1;
		if (sscanf(reqs[k].path, "/inflight/%d", &marker) != 1)
			marker = -1;
		char body[64], headers[64];
		snprintf(body, sizeof(body), "answer-%d", marker);
		snprintf(headers, sizeof(headers), "{\"X-Marker\":\"%d\"}", marker);
		reply_send(demo, reqs[k].request_id,
		           &(struct reply){.status = 200 + (marker % 3), .headers_json = headers,
		                           .body = body});
		agent_request_free(&reqs[k]);
	}
	int wrong = 0;
	for (int i = 0; i < IN_FLIGHT; i++) {
		struct http_result r;
		call_finish_http(&calls[i], &r);
		char body[64], marker[16] = "";
		snprintf(body, sizeof(body), "answer-%d", i);
		http_header(&r, "X-Marker", marker, sizeof(marker));
		if (r.status != 200 + i % 3 || strcmp(r.body, body) != 0 || atoi(marker) != i) {
			if (wrong++ == 0)
				test_fail(__FILE__, __LINE__, "client %d (%s) got %ld \"%.100s\" marker %s", i,
				          route_names[i % ROUTE_COUNT], r.status, r.body, marker);
		}
		http_result_free(&r);
	}
	CHECK_INT(wrong, 0);
}

static void test_refusals(void)
{
	struct http_result r;
	for (int route = 0; route < ROUTE_COUNT; route++) {
		test_case("%s: unknown app is 404 unknown_app", route_names[route]);
		struct request rq = {.method = "GET", .path = "/"};
		refused(NULL, (enum route)route, "no-such-app", &rq, &r);
		check_refusal(&r, 404, "{\"allowed\":false,\"reason\":\"unknown_app\"}");
		http_result_free(&r);
	}

	test_case("proxy listener: HTTP/1.0 with no Host and no X-EE-App is 400 missing_app");
	struct call c;
	struct raw_step s10 = {"GET / HTTP/1.0\r\n\r\n", 0, 1};
	call_start_raw(&c, st.proxy_port, &s10, 1, 0);
	struct raw_response rs[RAW_MAX_RESPONSES];
	char *data, how[32];
	int n = raw_exchange_finish(&c, 0, rs, &data, how);
	CHECK(n == 1, "(%d responses in: %s)", n, test_printable(data));
	if (n == 1) {
		CHECK_INT(rs[0].status, 400);
		CHECK(rs[0].body_len == 23 && memcmp(rs[0].body, "{\"error\":\"missing_app\"}", 23) == 0,
		      "(%.*s)", (int)rs[0].body_len, rs[0].body);
	}
	free(data);

	test_case("proxy listener: HTTP/1.1 with no Host is 400 missing_host");
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", st.proxy_port);
	const char *no_host[] = {"Host:", NULL};
	call_start_http(&c, "GET", url, no_host, NULL, 0);
	call_finish_http(&c, &r);
	check_refusal(&r, 400, "{\"error\":\"missing_host\"}");
	http_result_free(&r);

	test_case("proxy listener: parse errors answer the parser's status and reason");
	static const struct {
		const char *request;
		int status;
		const char *body;
	} bad[] = {
		{"GET / HTTP/1.1\r\nHost: demo.app.localhost\r\nHost: x\r\n\r\n", 400,
		 "{\"error\":\"duplicate_host\"}"},
		{"GET / HTTP/1.1\r\nHost: demo.app.localhost\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
		 "{\"error\":\"unsupported_transfer_encoding\"}"},
		{"GET / HTTP/1.1\nHost: demo.app.localhost\r\n\r\n", 400,
		 "{\"error\":\"bad_request_line\"}"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct raw_step step = {bad[i].request, 0, 1};
		call_start_raw(&c, st.proxy_port, &step, 1, 0);
		n = raw_exchange_finish(&c, 0, rs, &data, how);
		CHECK(n == 1 && rs[0].status == bad[i].status &&
		          rs[0].body_len == strlen(bad[i].body) &&
		          memcmp(rs[0].body, bad[i].body, rs[0].body_len) == 0,
		      "(%s -> %d %.*s)", test_printable(bad[i].request), n ? rs[0].status : 0,
		      n ? (int)rs[0].body_len : 0, n ? rs[0].body : "");
		CHECK_STR(how, "eof");
		free(data);
	}
	check_agent_idle(demo);

	test_case("proxy listener: X-EE-App wins over the Host label");
	const char *both[] = {"X-EE-App: demo", NULL};
	struct request rq_both = {.method = "GET", .path = "/by-header", .headers = both};
	struct agent_request seen_both;
	if (exchange(demo, ROUTE_PROXY_HOST, "no-such-app", &rq_both, NULL, &seen_both, &r)) {
		CHECK_STR(seen_both.path, "/by-header");
		agent_request_free(&seen_both);
	}
	CHECK_INT(r.status, 200);
	http_result_free(&r);

	test_case("invalid app names are 400 invalid_app_name");
	const char *bad_app[] = {"X-EE-App: bad!name", NULL};
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", st.proxy_port);
	call_start_http(&c, "GET", url, bad_app, NULL, 0);
	call_finish_http(&c, &r);
	check_refusal(&r, 400, "{\"allowed\":false,\"reason\":\"invalid_app_name\"}");
	http_result_free(&r);
	const char *json[] = {"Content-Type: application/json", NULL};
	call_start_http(&c, "POST", control_url("/v1/proxy/bad!name"), json, "{}", 2);
	call_finish_http(&c, &r);
	check_refusal(&r, 400, "{\"allowed\":false,\"reason\":\"invalid_app_name\"}");
	http_result_free(&r);

	static const char *const bad_envelopes[] = {
		"not json", "[1]", "{\"method\":\"GET\",\"path\":\"no-slash\"}",
		"{\"method\":\"GE T\",\"path\":\"/\"}", "{\"headers\":[]}",
		"{\"headers\":{\"X-A\":1}}", "{\"headers\":{\"X-A\":\"a\\r\\nX-B: b\"}}",
		"{\"body_b64\":\"***\"}", "{\"path\":\"/a b\"}", "{\"method\":7}",
		"{\"headers\":{\"X-A\":\"a\\u0000b\"}}",
		"{\"headers\":{\"X-A\":\"\\udce9\\r\\nX-B: b\"}}",
		"{\"headers\":{\"X-\\udce9\":\"a\"}}",
	};
	char digest_before[65], digest_after[65];
	CHECK_INT(db_digest(st.db_path, digest_before), 0);
	for (size_t i = 0; i < sizeof(bad_envelopes) / sizeof(bad_envelopes[0]); i++) {
		test_case("envelope %s is 400 invalid_proxy_payload", test_printable(bad_envelopes[i]));
		for (int via_caddy = 0; via_caddy <= 1; via_caddy++) {
			char envelope_url[256];
			if (via_caddy)
				snprintf(envelope_url, sizeof(envelope_url), "%s/v1/proxy/demo", st.base_url);
			else
				snprintf(envelope_url, sizeof(envelope_url), "%s", control_url("/v1/proxy/demo"));
			call_start_http(&c, "POST", envelope_url, json, bad_envelopes[i],
			                strlen(bad_envelopes[i]));
			call_finish_http(&c, &r);
			check_refusal(&r, 400, "{\"allowed\":false,\"reason\":\"invalid_proxy_payload\"}");
			http_result_free(&r);
		}
		check_agent_idle(demo);
	}
	test_case("the refused envelopes left the database unchanged");
	CHECK_INT(db_digest(st.db_path, digest_after), 0);
	CHECK_STR(digest_after, digest_before);

	test_case("envelope by GET is 405 method_not_allowed");
	call_start_http(&c, "GET", control_url("/v1/proxy/demo"), NULL, NULL, 0);
	call_finish_http(&c, &r);
	check_refusal(&r, 405, "{\"error\":\"method_not_allowed\"}");
	http_result_free(&r);

	for (int route = 0; route < ROUTE_COUNT; route++) {
		test_case("%s: a body_b64 from the agent that is not base64 is 502 invalid_proxy_response",
		          route_names[route]);
		answer_badly(route, "/bad-b64", reply_bad_base64, &r);
		check_refusal(&r, 502, "{\"allowed\":false,\"reason\":\"invalid_proxy_response\"}");
		http_result_free(&r);
	}

	for (int route = 0; route < ROUTE_COUNT; route++) {
		test_case("%s: an answer that cannot be read but names its request (raw ISO-8859-1, as "
		          "agents wrote it before the escapes) is 502 invalid_proxy_response, not the timeout's 504",
		          route_names[route]);
		answer_badly(route, "/raw-latin1", reply_raw_latin1, &r);
		/* A 504 would be the timeout's answer: this is the prompt one. */
		check_refusal(&r, 502, "{\"allowed\":false,\"reason\":\"invalid_proxy_response\"}");
		http_result_free(&r);
		/* The agent is told, as for any frame that is not JSON, and stays connected. */
		struct json_object *said = agent_recv(demo, AGENT_WAIT_MS);
		const char *reason = NULL;
		struct json_object *rv;
		if (said && json_object_object_get_ex(said, "reason", &rv))
			reason = json_object_get_string(rv);
		CHECK(reason && strcmp(reason, "invalid_json") == 0, "(%s)",
		      said ? json_object_to_json_string(said) : "nothing");
		json_object_put(said);
		CHECK(ws_is_open(demo->ws));
	}

	test_case("a proxy_response for an unknown request_id is ignored; the tunnel keeps working");
	struct request rq = {.method = "GET", .path = "/held"};
	request_start(&c, ROUTE_PROXY_HOST, "demo", &rq);
	struct agent_request seen;
	if (agent_recv_request(demo, &seen, AGENT_WAIT_MS) == 0) {
		reply_send(demo, "0123456789abcdef01234567",
		           &(struct reply){.status = 500, .body = "not yours"});
		reply_send(demo, "", &(struct reply){.status = 500, .body = "nobody's"});
		reply_send(demo, seen.request_id, &(struct reply){.body = "yours"});
		agent_request_free(&seen);
	} else {
		test_fail(__FILE__, __LINE__, "the agent got nothing");
	}
	call_finish_http(&c, &r);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "yours");
	http_result_free(&r);
	struct json_object *msg = agent_recv(demo, NOTHING_MS);
	CHECK(msg == NULL, "(the control plane said %s)",
	      msg ? json_object_to_json_string(msg) : "");
	json_object_put(msg);
	CHECK(ws_is_open(demo->ws));
	struct request after = {.method = "GET", .path = "/after-unknown-id"};
	struct http_result r2;
	if (exchange(demo, ROUTE_CADDY_HOST, "demo", &after, &(struct reply){.body = "still here"},
	             &seen, &r2))
		agent_request_free(&seen);
	CHECK_INT(r2.status, 200);
	CHECK_STR(r2.body, "still here");
	http_result_free(&r2);
}

static void test_client_gone(void)
{
	static const enum route routes[] = {ROUTE_PROXY_HOST, ROUTE_CONTROL_ENVELOPE, ROUTE_CADDY_HOST};
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		test_case("%s: a client gone while its request is in flight: the late answer is dropped",
		          route_names[routes[i]]);
		struct call c;
		struct request rq = {.method = "POST", .path = "/gone", .body = "bye", .body_len = 3};
		request_start(&c, routes[i], "demo", &rq);
		struct agent_request seen;
		bool got = agent_recv_request(demo, &seen, AGENT_WAIT_MS) == 0;
		CHECK(got);
		call_end(&c, true); /* the client's socket closes with its process */
		/* Nothing to wait on for ee-tunneld noticing; a moment is plenty on loopback. */
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
		if (got) {
			reply_send(demo, seen.request_id, &(struct reply){.body = "nobody listens"});
			agent_request_free(&seen);
		}
		struct json_object *msg = agent_recv(demo, NOTHING_MS);
		CHECK(msg == NULL, "(the control plane said %s)",
		      msg ? json_object_to_json_string(msg) : "");
		json_object_put(msg);
		struct request next = {.method = "GET", .path = "/after-gone"};
		struct http_result r;
		if (exchange(demo, routes[i], "demo", &next, &(struct reply){.body = "here"}, &seen, &r))
			agent_request_free(&seen);
		CHECK_INT(r.status, 200);
		CHECK_STR(r.body, "here");
		http_result_free(&r);
	}
}

/* GET /v1/resolve/{app} from ee-api. */
static void resolve(const char *app, struct http_result *r)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/resolve/%s", app);
	stack_request(&st, "GET", path, NULL, NULL, r);
}

static void test_not_allowed(void)
{
	test_case("agent sick of acme/sick attests");
	struct test_agent *sick = agent_start(st.control_port, "sick", "acme/sick", "sick-one");
	if (!sick)
		return;
	struct http_result r;
	struct agent_request seen;
	struct request rq = {.method = "GET", .path = "/"};
	if (exchange(sick, ROUTE_PROXY_HOST, "sick", &rq, NULL, &seen, &r))
		agent_request_free(&seen);
	CHECK_INT(r.status, 200);
	http_result_free(&r);

	test_case("an app whose only agent reports health fail: 403 with the resolve payload");
	CHECK(agent_health(sick, "fail") == 0);
	agent_sync(sick);
	struct http_result res;
	resolve("sick", &res);
	CHECK_INT(res.status, 403);
	for (int route = 0; route < ROUTE_COUNT; route++) {
		refused(sick, (enum route)route, "sick", &rq, &r);
		CHECK(r.status == 403, "(%s: %ld %s)", route_names[route], r.status, r.body);
		CHECK(!http_json_bool(&r, "allowed", true));
		CHECK_STR(http_json_string(&r, "app_name"), "sick");
		CHECK_STR(http_json_string(&r, "repo"), "acme/sick");
		CHECK_STR(http_json_string(&r, "agent_id"), "sick-one");
		CHECK_STR(http_json_string(&r, "health_status"), "fail");
		CHECK_STR(http_json_string(&r, "attestation_status"), "valid");
		CHECK(http_json_bool(&r, "ws_connected", false));
		CHECK_INT(http_json_int(&r, "agents_allowed", -1), 0);
		CHECK_INT(http_json_int(&r, "agents_total", -1), 1);
		/* The same verdict ee-api's resolve gives. */
		CHECK_STR(http_json_string(&r, "status"), http_json_string(&res, "status"));
		CHECK_STR(http_json_string(&r, "health_status"), http_json_string(&res, "health_status"));
		http_result_free(&r);
	}
	http_result_free(&res);

	test_case("health pass again: the app is served again");
	CHECK(agent_health(sick, "pass") == 0);
	agent_sync(sick);
	if (exchange(sick, ROUTE_CADDY_HOST, "sick", &rq, &(struct reply){.body = "better"}, &seen,
	             &r))
		agent_request_free(&seen);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "better");
	http_result_free(&r);
	agent_disconnect(sick);
}

/* The next request on either agent: 0 or 1 for which, -1 when none came. */
static int recv_either(struct test_agent *agents[2], struct agent_request *req, int timeout_ms)
{
	int64_t deadline = time_monotonic_ms() + timeout_ms;
	while (time_monotonic_ms() < deadline) {
		for (int i = 0; i < 2; i++) {
			if (agent_recv_request(agents[i], req, 20) == 0)
				return i;
		}
	}
	return -1;
}

static void test_two_agents(void)
{
	test_case("two agents of acme/pair serve app pair");
	struct test_agent *agents[2];
	agents[0] = agent_start(st.control_port, "pair", "acme/pair", "pair-one");
	agents[1] = agent_start(st.port, "pair", "acme/pair", "pair-two");
	if (!agents[0] || !agents[1]) {
		agent_drop(agents[0]);
		agent_drop(agents[1]);
		return;
	}

	test_case("requests are spread over both agents");
	int served[2] = {0, 0};
	for (int i = 0; i < 10; i++) {
		struct call c;
		char path[32];
		snprintf(path, sizeof(path), "/spread/%d", i);
		struct request rq = {.method = "GET", .path = path};
		request_start(&c, (enum route)(i % ROUTE_COUNT), "pair", &rq);
		struct agent_request seen;
		int which = recv_either(agents, &seen, AGENT_WAIT_MS);
		if (which >= 0) {
			served[which]++;
			CHECK_STR(seen.path, path);
			char body[32];
			snprintf(body, sizeof(body), "from %d", which);
			reply_send(agents[which], seen.request_id, &(struct reply){.body = body});
			agent_request_free(&seen);
		}
		struct http_result r;
		call_finish_http(&c, &r);
		CHECK_INT(r.status, 200);
		http_result_free(&r);
	}
	printf("# agent pair-one served %d, pair-two %d\n", served[0], served[1]);
	CHECK(served[0] >= 3 && served[1] >= 3, "(%d and %d of 10)", served[0], served[1]);

	test_case("an agent of another repository cannot take app pair: app_name_taken, closed");
	struct test_agent *intruder =
		agent_connect("127.0.0.1", st.control_port, "pair", "evil/pair", "intruder", "sandbox-1");
	CHECK(intruder != NULL);
	if (intruder) {
		CHECK(agent_register(intruder, NULL, AGENT_WAIT_MS) != 0);
		CHECK_STR(agent_last_reason(intruder), "app_name_taken");
		int code = agent_wait_closed(intruder, AGENT_WAIT_MS);
		CHECK_INT(code, 1008);
		agent_drop(intruder);
	}

	test_case("drop an agent with a GET and a POST in flight: the GET is answered by the other");
	/* Both requests go to the victim while the survivor reports health fail. */
	struct test_agent *victim = agents[0], *survivor = agents[1];
	CHECK(agent_health(survivor, "fail") == 0);
	agent_sync(survivor);
	struct call get_call, post_call;
	struct request get_rq = {.method = "GET", .path = "/in-flight-get"};
	struct request post_rq = {.method = "POST", .path = "/in-flight-post", .body = "once",
	                          .body_len = 4};
	request_start(&get_call, ROUTE_CADDY_HOST, "pair", &get_rq);
	request_start(&post_call, ROUTE_CONTROL_ENVELOPE, "pair", &post_rq);
	struct agent_request held[2];
	int held_count = 0;
	while (held_count < 2 && agent_recv_request(victim, &held[held_count], AGENT_WAIT_MS) == 0)
		held_count++;
	CHECK_INT(held_count, 2);
	for (int i = 0; i < held_count; i++)
		agent_request_free(&held[i]);
	CHECK(agent_health(survivor, "pass") == 0);
	agent_sync(survivor);
	agent_drop(victim);
	agents[0] = NULL;
	struct agent_request seen;
	if (agent_recv_request(survivor, &seen, AGENT_WAIT_MS) == 0) {
		CHECK_STR(seen.method, "GET");
		CHECK_STR(seen.path, "/in-flight-get");
		reply_send(survivor, seen.request_id, &(struct reply){.body = "from the survivor"});
		agent_request_free(&seen);
	} else {
		test_fail(__FILE__, __LINE__, "the GET was not re-sent to the other agent");
	}
	struct http_result r;
	call_finish_http(&get_call, &r);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "from the survivor");
	http_result_free(&r);

	test_case("the POST in flight on the dropped agent is 502 tunnel_closed, not re-sent");
	call_finish_http(&post_call, &r);
	check_refusal(&r, 502, "{\"allowed\":false,\"reason\":\"tunnel_closed\"}");
	http_result_free(&r);
	check_agent_idle(survivor);

	test_case("afterwards every request is served by the remaining agent");
	for (int i = 0; i < 6; i++) {
		struct request rq = {.method = i % 2 ? "POST" : "GET", .path = "/after-drop",
		                     .body = i % 2 ? "b" : NULL, .body_len = i % 2 ? 1 : 0};
		if (exchange(survivor, (enum route)(i % ROUTE_COUNT), "pair", &rq,
		             &(struct reply){.body = "survivor"}, &seen, &r))
			agent_request_free(&seen);
		else
			test_fail(__FILE__, __LINE__, "request %d did not reach the remaining agent", i);
		CHECK_INT(r.status, 200);
		CHECK_STR(r.body, "survivor");
		http_result_free(&r);
	}
	agent_disconnect(survivor);
}

static void test_lone_agent_drop(void)
{
	test_case("a lone agent drops with a POST and a GET in flight: both 502 tunnel_closed");
	struct test_agent *solo = agent_start(st.control_port, "solo", "acme/solo", "solo-one");
	if (!solo)
		return;
	struct call post_call, get_call;
	struct request post_rq = {.method = "POST", .path = "/solo-post", .body = "x",
	                          .body_len = 1};
	struct request get_rq = {.method = "GET", .path = "/solo-get"};
	request_start(&post_call, ROUTE_CADDY_HOST, "solo", &post_rq);
	request_start(&get_call, ROUTE_PROXY_APP_HEADER, "solo", &get_rq);
	struct agent_request held[2];
	int held_count = 0;
	while (held_count < 2 && agent_recv_request(solo, &held[held_count], AGENT_WAIT_MS) == 0)
		held_count++;
	CHECK_INT(held_count, 2);
	for (int i = 0; i < held_count; i++)
		agent_request_free(&held[i]);
	agent_drop(solo);
	struct http_result r;
	call_finish_http(&post_call, &r);
	check_refusal(&r, 502, "{\"allowed\":false,\"reason\":\"tunnel_closed\"}");
	http_result_free(&r);
	call_finish_http(&get_call, &r);
	check_refusal(&r, 502, "{\"allowed\":false,\"reason\":\"tunnel_closed\"}");
	http_result_free(&r);

	test_case("then new requests are 403: resolve says not connected");
	struct request rq = {.method = "GET", .path = "/"};
	for (int route = 0; route < ROUTE_COUNT; route++) {
		refused(NULL, (enum route)route, "solo", &rq, &r);
		CHECK(r.status == 403, "(%s: %ld %s)", route_names[route], r.status, r.body);
		CHECK(!http_json_bool(&r, "allowed", true));
		CHECK_STR(http_json_string(&r, "app_name"), "solo");
		CHECK(!http_json_bool(&r, "ws_connected", true), "(%s)", r.body);
		http_result_free(&r);
	}
	resolve("solo", &r);
	CHECK_INT(r.status, 403);
	CHECK(!http_json_bool(&r, "ws_connected", true), "(%s)", r.body);
	http_result_free(&r);
}

static void test_timeout_and_busy(void)
{
	test_case("agent slow of acme/slow attests (1 s proxy timeout, 2 in flight per tunnel)");
	struct test_agent *slow = agent_start(st.port, "slow", "acme/slow", "slow-one");
	if (!slow)
		return;

	test_case("a request the agent never answers is 504 proxy_timeout; one answered meanwhile is 200");
	struct call slow_call, fast_call;
	struct request slow_rq = {.method = "GET", .path = "/never"};
	struct request fast_rq = {.method = "GET", .path = "/fast"};
	int64_t t0 = time_monotonic_ms();
	request_start(&slow_call, ROUTE_PROXY_HOST, "slow", &slow_rq);
	struct agent_request never;
	bool have_never = agent_recv_request(slow, &never, AGENT_WAIT_MS) == 0;
	CHECK(have_never);
	CHECK(!have_never || strcmp(never.path, "/never") == 0);
	request_start(&fast_call, ROUTE_CADDY_ENVELOPE, "slow", &fast_rq);
	serve_expect(slow, "GET", "/fast", &(struct reply){.body = "quick"});
	struct http_result r;
	call_finish_http(&fast_call, &r);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "quick");
	http_result_free(&r);
	call_finish_http(&slow_call, &r);
	int64_t elapsed = time_monotonic_ms() - t0;
	check_refusal(&r, 504, "{\"allowed\":false,\"reason\":\"proxy_timeout\"}");
	CHECK(elapsed >= 900 && elapsed < 4000, "(after %lld ms)", (long long)elapsed);
	http_result_free(&r);

	test_case("the answer to a timed-out request is ignored; the tunnel keeps working");
	if (have_never) {
		reply_send(slow, never.request_id, &(struct reply){.body = "too late"});
		agent_request_free(&never);
	}
	struct json_object *msg = agent_recv(slow, NOTHING_MS);
	CHECK(msg == NULL, "(the control plane said %s)", msg ? json_object_to_json_string(msg) : "");
	json_object_put(msg);
	struct agent_request seen;
	struct request next = {.method = "GET", .path = "/next"};
	if (exchange(slow, ROUTE_PROXY_APP_HEADER, "slow", &next, &(struct reply){.body = "on time"},
	             &seen, &r))
		agent_request_free(&seen);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "on time");
	http_result_free(&r);

	test_case("control listener envelope: an unanswered request is 504 proxy_timeout too");
	request_start(&slow_call, ROUTE_CONTROL_ENVELOPE, "slow", &slow_rq);
	have_never = agent_recv_request(slow, &never, AGENT_WAIT_MS) == 0;
	CHECK(have_never);
	call_finish_http(&slow_call, &r);
	check_refusal(&r, 504, "{\"allowed\":false,\"reason\":\"proxy_timeout\"}");
	http_result_free(&r);
	if (have_never)
		agent_request_free(&never);

	test_case("EE_TUNNEL_MAX_INFLIGHT=2: the third concurrent request is 503 tunnel_busy");
	struct call held_calls[2], third;
	struct request held_rq[2] = {{.method = "GET", .path = "/held/0"},
	                             {.method = "POST", .path = "/held/1", .body = "h",
	                              .body_len = 1}};
	request_start(&held_calls[0], ROUTE_CADDY_HOST, "slow", &held_rq[0]);
	request_start(&held_calls[1], ROUTE_CONTROL_ENVELOPE, "slow", &held_rq[1]);
	struct agent_request held[2];
	int held_count = 0;
	while (held_count < 2 && agent_recv_request(slow, &held[held_count], AGENT_WAIT_MS) == 0)
		held_count++;
	CHECK_INT(held_count, 2);
	struct request third_rq = {.method = "GET", .path = "/third"};
	request_start(&third, ROUTE_PROXY_APP_HEADER, "slow", &third_rq);
	call_finish_http(&third, &r);
	check_refusal(&r, 503, "{\"allowed\":false,\"reason\":\"tunnel_busy\"}");
	http_result_free(&r);
	for (int i = 0; i < held_count; i++) {
		char body[32];
		snprintf(body, sizeof(body), "held %s", held[i].path);
		reply_send(slow, held[i].request_id, &(struct reply){.body = body});
	}
	for (int i = 0; i < 2; i++) {
		call_finish_http(&held_calls[i], &r);
		char body[32];
		snprintf(body, sizeof(body), "held /held/%d", i);
		CHECK(r.status == 200 && strcmp(r.body, body) == 0, "(%d: %ld %s)", i, r.status, r.body);
		http_result_free(&r);
	}
	for (int i = 0; i < held_count; i++)
		agent_request_free(&held[i]);
	check_agent_idle(slow);
	agent_disconnect(slow);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_case("start Caddy, ee-api and ee-tunneld (bodies up to %d bytes)", MAX_BODY);
	struct stack_options opt = {.tunneld_env = first_env};
	if (stack_start(&st, "proxy", &opt) != 0)
		return test_finish();

	test_case("agent demo of acme/demo attests through Caddy");
	demo = agent_start(st.port, "demo", "acme/demo", "demo-one");
	if (demo) {
		test_methods();
		test_request_headers();
		test_bodies();
		test_chunked();
		test_responses();
		test_keep_alive_and_pipelining();
		test_many_in_flight();
		test_refusals();
		test_client_gone();
		agent_disconnect(demo);
	}
	test_not_allowed();
	test_two_agents();
	test_lone_agent_drop();

	test_case("restart ee-tunneld with a 1 s proxy timeout and 2 requests in flight per tunnel");
	CHECK_INT(stack_stop_tunneld(&st), 0);
	st.opt.tunneld_env = second_env;
	CHECK(stack_start_tunneld(&st) == 0, "(see %s/ee-tunneld.log)", st.dir);
	if (st.tunneld_pid > 0)
		test_timeout_and_busy();

	test_case("agent demo attests again");
	demo = st.tunneld_pid > 0 ? agent_start(st.port, "demo", "acme/demo", "demo-one") : NULL;
	if (demo) {
		test_control_listener_reuse();
		agent_disconnect(demo);
	}

	test_case("stop ee-tunneld cleanly; start it again for the pipelining case");
	CHECK_INT(stack_stop_tunneld(&st), 0);
	st.opt.tunneld_env = first_env;
	CHECK(stack_start_tunneld(&st) == 0, "(see %s/ee-tunneld.log)", st.dir);
	demo = st.tunneld_pid > 0 ? agent_start(st.port, "demo", "acme/demo", "demo-one") : NULL;
	if (demo) {
		test_control_pipelining();
		agent_drop(demo);
	}

	test_case("stop cleanly");
	stack_stop(&st);
	return test_finish();
}
