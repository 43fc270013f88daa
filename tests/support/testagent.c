/* testagent.c - the tunnel protocol's agent side for tests; see testagent.h. */
#include "testagent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest.h"
#include "base64.h"
#include "dcapgen.h"
#include "jsonutil.h"
#include "timeutil.h"
#include "tunnel_msg.h"

struct agent_pending {
	struct json_object *msg;
	struct agent_pending *next;
};

/* The development network agents attest to: its quote signer and allowlist directories. */
static struct dcapgen *hierarchy;
static char allowlist_dirs[AGENT_ALLOWLIST_DIRS][512];

static void set_reason(struct test_agent *a, const char *reason)
{
	snprintf(a->last_reason, sizeof(a->last_reason), "%s", reason ? reason : "");
}

static int64_t deadline_after(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : time_monotonic_ms() + timeout_ms;
}

/* What is left of a deadline as a timeout: -1 forever, 0 when it has passed. */
static int time_left(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - time_monotonic_ms();
	return left <= 0 ? 0 : (left > 1000000 ? 1000000 : (int)left);
}

static const char *string_field(struct json_object *msg, const char *key)
{
	struct json_object *v;
	if (!msg || !json_object_is_type(msg, json_type_object) ||
	    !json_object_object_get_ex(msg, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool is_type(struct json_object *msg, const char *type)
{
	const char *t = string_field(msg, "type");
	return t && strcmp(t, type) == 0;
}

/* ---- messages kept for later ---- */

static void pending_push(struct test_agent *a, struct json_object *msg)
{
	struct agent_pending *p = malloc(sizeof(*p));
	if (!p) {
		json_object_put(msg);
		return;
	}
	p->msg = msg;
	p->next = NULL;
	struct agent_pending **tail = &a->pending;
	while (*tail)
		tail = &(*tail)->next;
	*tail = p;
}

/* Removes and returns the oldest kept message that want() accepts, or NULL. */
static struct json_object *pending_take(struct test_agent *a,
                                        bool (*want)(struct test_agent *, struct json_object *))
{
	for (struct agent_pending **pp = &a->pending; *pp; pp = &(*pp)->next) {
		if (!want || want(a, (*pp)->msg)) {
			struct agent_pending *p = *pp;
			struct json_object *msg = p->msg;
			*pp = p->next;
			free(p);
			return msg;
		}
	}
	return NULL;
}

static void pending_clear(struct test_agent *a)
{
	struct json_object *msg;
	while ((msg = pending_take(a, NULL)))
		json_object_put(msg);
}

/* The next message from the socket itself; NULL with last_reason on anything else. */
static struct json_object *socket_recv(struct test_agent *a, int64_t deadline)
{
	char *data;
	size_t len;
	int opcode;
	int rc = ws_recv_message(a->ws, &data, &len, &opcode, time_left(deadline));
	switch (rc) {
	case WS_RECV_OK: break;
	case WS_RECV_TIMEOUT: set_reason(a, "timeout"); return NULL;
	case WS_RECV_CLOSED: set_reason(a, "closed"); return NULL;
	default: set_reason(a, "ws_error"); return NULL;
	}
	struct json_object *msg = NULL;
	struct tunnel_msg m;
	struct ee_error err;
	if (opcode != WS_OP_TEXT) {
		set_reason(a, "binary_message");
	} else if (tunnel_msg_parse(data, len, &m, &err) == 0) {
		/* Read as ee-agent reads it: header names and values as bytes (\udcXX). */
		msg = json_object_get(m.root);
		tunnel_msg_free(&m);
	} else if (!(msg = json_parse_value(data, len))) {
		set_reason(a, "invalid_json");
	}
	free(data);
	return msg;
}

/* A status invalid ends a wait: its reason becomes the caller's failure. */
static bool is_invalid_status(struct test_agent *a, struct json_object *msg)
{
	if (!is_type(msg, "status"))
		return false;
	const char *state = string_field(msg, "state");
	if (!state || strcmp(state, "invalid") != 0)
		return false;
	const char *reason = string_field(msg, "reason");
	set_reason(a, reason ? reason : "invalid");
	return true;
}

/* ---- the development network ---- */

void agent_set_hierarchy(struct dcapgen *g) { hierarchy = g; }

struct dcapgen *agent_hierarchy(void) { return hierarchy; }

int agent_add_allowlist_dir(const char *dir)
{
	for (int i = 0; i < AGENT_ALLOWLIST_DIRS; i++) {
		if (!allowlist_dirs[i][0] && strlen(dir) < sizeof(allowlist_dirs[i])) {
			snprintf(allowlist_dirs[i], sizeof(allowlist_dirs[i]), "%s", dir);
			return 0;
		}
	}
	return -1;
}

void agent_remove_allowlist_dir(const char *dir)
{
	for (int i = 0; i < AGENT_ALLOWLIST_DIRS; i++) {
		if (strcmp(allowlist_dirs[i], dir) == 0)
			allowlist_dirs[i][0] = '\0';
	}
}

const char *agent_default_allowlist(void)
{
#define AGENT_REGISTERS                                                                    \
	"{\"mrtd\":\"" AGENT_TEST_MRTD "\",\"rtmr0\":\"" AGENT_TEST_RTMR0 "\",\"rtmr1\":\"" \
	AGENT_TEST_RTMR1 "\",\"rtmr2\":\"" AGENT_TEST_RTMR2 "\",\"rtmr3\":\"" AGENT_TEST_RTMR3 "\"}"
	return "{\"measurements\":" AGENT_REGISTERS ",\"quote_measurements\":" AGENT_REGISTERS "}\n";
#undef AGENT_REGISTERS
}

/* A path segment that names a file inside the directory: no slash, no leading dot. */
static bool segment_ok(const char *s, size_t n, bool plus)
{
	if (n == 0 || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || (plus && c == '+')))
			return false;
	}
	return true;
}

int agent_write_allowlist(const char *dir, const char *repo, const char *tag, const char *json,
                          bool replace)
{
	const char *slash = strchr(repo, '/');
	if (!slash || !segment_ok(repo, (size_t)(slash - repo), false) ||
	    !segment_ok(slash + 1, strlen(slash + 1), false) || !segment_ok(tag, strlen(tag), true))
		return -1;
	char path[1024], tmp[1100];
	snprintf(path, sizeof(path), "%s/%.*s", dir, (int)(slash - repo), repo);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir, repo);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return -1;
	if (snprintf(path, sizeof(path), "%s/%s/%s.json", dir, repo, tag) >= (int)sizeof(path))
		return -1;
	if (!replace && access(path, F_OK) == 0)
		return 0;
	/* Agents of several processes may write the same release at once: a whole file or none. */
	static unsigned counter;
	snprintf(tmp, sizeof(tmp), "%s.%d.%u.tmp", path, (int)getpid(), counter++);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	const char *text = json ? json : agent_default_allowlist();
	bool ok = fputs(text, f) >= 0;
	ok = fclose(f) == 0 && ok;
	int rc = -1;
	if (ok && replace)
		rc = rename(tmp, path);
	else if (ok) /* link() never replaces: an allowlist a test wrote stands */
		rc = (link(tmp, path) == 0 || errno == EEXIST) ? 0 : -1;
	unlink(tmp); /* gone already after a rename */
	return rc;
}

/* ---- connecting and registering ---- */

struct test_agent *agent_connect_ex(const char *host, int port, const char *app,
                                    const char *repo, const char *agent_id, const char *network,
                                    const struct agent_connect_options *opt)
{
	static const struct agent_connect_options defaults;
	if (!opt)
		opt = &defaults;
	struct test_agent *a = calloc(1, sizeof(*a));
	if (!a) {
		if (opt->why && opt->why_size)
			snprintf(opt->why, opt->why_size, "out of memory");
		return NULL;
	}
	snprintf(a->app_name, sizeof(a->app_name), "%s", app ? app : "");
	snprintf(a->repo, sizeof(a->repo), "%s", repo ? repo : "");
	snprintf(a->release_tag, sizeof(a->release_tag), "%s", AGENT_DEFAULT_RELEASE);
	snprintf(a->network, sizeof(a->network), "%s", network ? network : "");
	if (agent_id) {
		snprintf(a->agent_id, sizeof(a->agent_id), "%s", agent_id);
	} else {
		char hex[17];
		if (util_random_hex(hex, 8) != 0) {
			free(a);
			return NULL;
		}
		snprintf(a->agent_id, sizeof(a->agent_id), "agent-%s", hex);
	}
	a->auto_attest = true;
	a->write_allowlist = true;
	a->ws = ws_connect_ex(host, port, opt->path ? opt->path : AGENT_TUNNEL_PATH, opt->headers,
	                      opt->ws, opt->timeout_ms ? opt->timeout_ms : AGENT_CONNECT_TIMEOUT_MS,
	                      opt->why, opt->why_size);
	if (!a->ws) {
		free(a);
		return NULL;
	}
	return a;
}

struct test_agent *agent_connect(const char *host, int port, const char *app, const char *repo,
                                 const char *agent_id, const char *network)
{
	return agent_connect_ex(host, port, app, repo, agent_id, network, NULL);
}

int agent_send_json(struct test_agent *a, struct json_object *obj)
{
	if (ws_send_json(a->ws, obj) != 0) {
		set_reason(a, "ws_error");
		return -1;
	}
	return 0;
}

static void put_if_set(struct json_object *o, const char *key, const char *value)
{
	if (value[0])
		json_put_string(o, key, value);
}

int agent_send_register(struct test_agent *a)
{
	for (int i = 0; a->write_allowlist && i < AGENT_ALLOWLIST_DIRS; i++) {
		/* A release no file can name is left for the control plane to refuse. */
		if (allowlist_dirs[i][0])
			(void)agent_write_allowlist(allowlist_dirs[i], a->repo, a->release_tag, NULL, false);
	}
	struct json_object *o = json_object_new_object();
	if (!o)
		return -1;
	json_put_string(o, "type", "register");
	put_if_set(o, "repo", a->repo);
	put_if_set(o, "release_tag", a->release_tag);
	put_if_set(o, "app_name", a->app_name);
	put_if_set(o, "network", a->network);
	put_if_set(o, "agent_id", a->agent_id);
	put_if_set(o, "tunnel_version", a->tunnel_version);
	int rc = agent_send_json(a, o);
	json_object_put(o);
	return rc;
}

/* Remembers an attest_request's nonce, reason and deadline. */
static void note_attest_request(struct test_agent *a, struct json_object *msg)
{
	const char *nonce = string_field(msg, "nonce");
	const char *reason = string_field(msg, "reason");
	struct json_object *d;
	snprintf(a->attest_nonce, sizeof(a->attest_nonce), "%s", nonce ? nonce : "");
	snprintf(a->attest_reason, sizeof(a->attest_reason), "%s", reason ? reason : "");
	a->attest_deadline_s = json_object_object_get_ex(msg, "deadline_s", &d) &&
	                               json_object_is_type(d, json_type_int)
	                           ? json_object_get_int(d)
	                           : -1;
}

int agent_register(struct test_agent *a, char nonce_out[33], int timeout_ms)
{
	if (nonce_out)
		nonce_out[0] = '\0';
	int64_t deadline = deadline_after(timeout_ms);
	if (agent_send_register(a) != 0)
		return -1;
	for (;;) {
		struct json_object *msg = socket_recv(a, deadline);
		if (!msg)
			return -1;
		if (is_type(msg, "attest_request")) {
			note_attest_request(a, msg);
			json_object_put(msg);
			if (nonce_out) {
				/* A longer nonce is cut here; a->attest_nonce keeps it whole. */
				size_t n = strnlen(a->attest_nonce, 32);
				memcpy(nonce_out, a->attest_nonce, n);
				nonce_out[n] = '\0';
			}
			return 0;
		}
		if (is_invalid_status(a, msg)) {
			json_object_put(msg);
			return -1;
		}
		pending_push(a, msg);
	}
}

/* ---- attestation ---- */

struct json_object *agent_test_measurements(bool sealed)
{
	struct json_object *m = json_object_new_object();
	if (!m)
		return NULL;
	json_put_string(m, "mrtd", AGENT_TEST_MRTD);
	json_put_string(m, "rtmr0", AGENT_TEST_RTMR0);
	json_put_string(m, "rtmr1", AGENT_TEST_RTMR1);
	json_put_string(m, "rtmr2", AGENT_TEST_RTMR2);
	json_put_string(m, "rtmr3", AGENT_TEST_RTMR3);
	json_put_bool(m, "sealed", sealed);
	return m;
}

/* The REPORTDATA for these measurements and nonce; zeros when they cannot be digested. */
static void report_data_for(struct json_object *measurements, const char *nonce,
                            unsigned char out[ATTEST_REPORT_DATA_LEN])
{
	struct ee_error err;
	if (attest_expected_report_data(measurements, nonce, out, &err) != 0)
		memset(out, 0, ATTEST_REPORT_DATA_LEN);
}

/* Sets a register from measurements[key] when that is 96 hex digits. */
static void register_from(struct json_object *measurements, const char *key, unsigned char reg[48])
{
	struct json_object *v;
	unsigned char bytes[48];
	size_t n = 0;
	if (json_object_is_type(measurements, json_type_object) &&
	    json_object_object_get_ex(measurements, key, &v) && json_object_is_type(v, json_type_string) &&
	    json_object_get_string_len(v) == 96 &&
	    util_hex_decode(json_object_get_string(v), 96, bytes, sizeof(bytes), &n) == 0 && n == 48)
		memcpy(reg, bytes, 48);
}

/* The quote, base64, for these options; NULL (said on stderr) when it cannot be signed. */
static char *signed_quote(const char *nonce, struct json_object *measurements,
                          const struct agent_attest_options *opt)
{
	if (!hierarchy) {
		fprintf(stderr, "testagent: no DCAP hierarchy to sign quotes (agent_set_hierarchy)\n");
		return NULL;
	}
	struct dcapgen_quote_options q;
	if (opt->quote_options)
		q = *opt->quote_options;
	else
		dcapgen_quote_defaults(&q);
	struct json_object *regs = opt->quote_measurements ? opt->quote_measurements : measurements;
	register_from(regs, "mrtd", q.mrtd);
	static const char *const rtmr[] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};
	for (int i = 0; i < 4; i++)
		register_from(regs, rtmr[i], q.rtmr[i]);
	if (opt->debug_td)
		q.td_attributes[0] |= 0x01;
	unsigned char rd[ATTEST_REPORT_DATA_LEN];
	report_data_for(opt->quote_report_data_measurements ? opt->quote_report_data_measurements
	                                                    : measurements,
	                opt->quote_nonce ? opt->quote_nonce : nonce, rd);
	unsigned char *raw = NULL;
	size_t len = 0;
	if (dcapgen_quote(hierarchy, rd, &q, &raw, &len) != 0)
		return NULL;
	char *b64 = malloc(base64_encoded_len(len) + 1);
	if (b64)
		base64_encode(raw, len, b64);
	free(raw);
	return b64;
}

struct json_object *agent_build_attest_response(const char *nonce,
                                                const struct agent_attest_options *opt)
{
	static const struct agent_attest_options defaults;
	if (!opt)
		opt = &defaults;
	struct json_object *measurements = opt->measurements
	                                       ? json_object_get(opt->measurements)
	                                       : agent_test_measurements(opt->sealed);
	struct json_object *msg = json_object_new_object();
	char *quote = NULL;
	if (measurements && msg && !opt->omit_quote && !opt->quote_b64)
		quote = signed_quote(nonce, measurements, opt);
	if (!measurements || !msg || (!opt->omit_quote && !opt->quote_b64 && !quote)) {
		json_object_put(measurements);
		json_object_put(msg);
		return NULL;
	}
	json_put_string(msg, "type", "attest_response");
	if (!opt->omit_nonce)
		json_put_string(msg, "nonce", opt->nonce ? opt->nonce : nonce);
	if (!opt->omit_quote)
		json_put_string(msg, "quote", opt->quote_b64 ? opt->quote_b64 : quote);
	free(quote);

	if (!opt->omit_report_data) {
		char hex[ATTEST_REPORT_DATA_LEN * 2 + 1];
		if (!opt->report_data_hex) {
			unsigned char rd[ATTEST_REPORT_DATA_LEN];
			report_data_for(opt->report_data_measurements ? opt->report_data_measurements
			                                              : measurements,
			                opt->report_data_nonce ? opt->report_data_nonce : nonce, rd);
			util_hex_encode(rd, sizeof(rd), hex);
		}
		json_put_string(msg, "report_data", opt->report_data_hex ? opt->report_data_hex : hex);
	}

	if (!opt->omit_measurements)
		json_object_object_add(msg, "measurements", measurements);
	else
		json_object_put(measurements);
	return msg;
}

int agent_send_attest_response(struct test_agent *a, const char *nonce,
                               const struct agent_attest_options *opt)
{
	struct json_object *msg = agent_build_attest_response(nonce, opt);
	if (!msg) {
		set_reason(a, "no_attest_response");
		return -1;
	}
	int rc = agent_send_json(a, msg);
	json_object_put(msg);
	return rc;
}

int agent_attest_ex(struct test_agent *a, const char *nonce,
                    const struct agent_attest_options *opt, int timeout_ms)
{
	int64_t deadline = deadline_after(timeout_ms);
	if (agent_send_attest_response(a, nonce, opt) != 0)
		return -1;
	for (;;) {
		struct json_object *msg = socket_recv(a, deadline);
		if (!msg)
			return -1;
		if (is_invalid_status(a, msg)) {
			json_object_put(msg);
			return -1;
		}
		const char *state = string_field(msg, "state");
		const char *reason = string_field(msg, "reason");
		if (is_type(msg, "status") && state && strcmp(state, "ok") == 0 && reason &&
		    strcmp(reason, "attested") == 0) {
			json_object_put(msg);
			a->attestations++;
			if (strcmp(a->attest_reason, "periodic") == 0)
				a->periodic_attestations++;
			set_reason(a, "attested");
			return 0;
		}
		/* Proxied requests may overtake the verdict; they are served later. */
		pending_push(a, msg);
	}
}

int agent_attest(struct test_agent *a, const char *nonce, bool sealed, int timeout_ms)
{
	struct agent_attest_options opt = {.sealed = sealed};
	return agent_attest_ex(a, nonce, &opt, timeout_ms);
}

int agent_up(struct test_agent *a, bool sealed, int timeout_ms)
{
	int64_t deadline = deadline_after(timeout_ms);
	char nonce[33];
	a->sealed = sealed;
	if (agent_register(a, nonce, timeout_ms) != 0)
		return -1;
	return agent_attest(a, nonce, sealed, time_left(deadline));
}

int agent_health(struct test_agent *a, const char *status)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return -1;
	json_put_string(o, "type", "health");
	if (status)
		json_put_string(o, "status", status);
	int rc = agent_send_json(a, o);
	json_object_put(o);
	return rc;
}

/* ---- proxied requests ---- */

void agent_request_free(struct agent_request *req)
{
	free(req->request_id);
	free(req->method);
	free(req->path);
	free(req->body);
	json_object_put(req->msg);
	memset(req, 0, sizeof(*req));
}

static int decode_request(struct json_object *msg, struct agent_request *req)
{
	memset(req, 0, sizeof(*req));
	req->msg = msg;
	const char *id = string_field(msg, "request_id");
	const char *method = string_field(msg, "method");
	const char *path = string_field(msg, "path");
	req->request_id = strdup(id ? id : "");
	req->method = strdup(method ? method : "");
	req->path = strdup(path ? path : "");
	struct json_object *headers;
	if (json_object_object_get_ex(msg, "headers", &headers))
		req->headers = headers;
	const char *b64 = string_field(msg, "body_b64");
	size_t b64_len = b64 ? strlen(b64) : 0;
	req->body = malloc(base64_decoded_max(b64_len) + 1);
	if (!req->request_id || !req->method || !req->path || !req->body) {
		agent_request_free(req);
		return -1;
	}
	if (b64 && base64_decode(b64, b64_len, req->body, &req->body_len) != 0) {
		req->body_invalid = true;
		req->body_len = 0;
	}
	req->body[req->body_len] = '\0';
	return 0;
}

/* What agent_recv_request takes from the kept messages. */
static bool wanted_by_recv_request(struct test_agent *a, struct json_object *msg)
{
	return is_type(msg, "proxy_request") || (a->auto_attest && is_type(msg, "attest_request"));
}

int agent_recv_request(struct test_agent *a, struct agent_request *req, int timeout_ms)
{
	memset(req, 0, sizeof(*req));
	int64_t deadline = deadline_after(timeout_ms);
	for (;;) {
		struct json_object *msg = pending_take(a, wanted_by_recv_request);
		if (!msg)
			msg = socket_recv(a, deadline);
		if (!msg)
			return -1;
		if (is_type(msg, "proxy_request")) {
			if (decode_request(msg, req) != 0) {
				set_reason(a, "out_of_memory");
				return -1;
			}
			return 0;
		}
		if (a->auto_attest && is_type(msg, "attest_request")) {
			note_attest_request(a, msg);
			json_object_put(msg);
			char nonce[AGENT_FIELD_MAX];
			snprintf(nonce, sizeof(nonce), "%s", a->attest_nonce);
			/* Past the caller's deadline too: a verdict left unread would be the next message. */
			int wait = time_left(deadline);
			if (wait >= 0 && wait < AGENT_VERDICT_WAIT_MS)
				wait = AGENT_VERDICT_WAIT_MS;
			if (agent_attest(a, nonce, a->sealed, wait) != 0)
				return -1;
			continue;
		}
		if (is_invalid_status(a, msg)) {
			json_object_put(msg);
			return -1;
		}
		pending_push(a, msg);
	}
}

int agent_send_response(struct test_agent *a, const char *request_id, int status,
                        struct json_object *headers, const void *body, size_t body_len)
{
	char *b64 = malloc(base64_encoded_len(body_len) + 1);
	struct json_object *o = json_object_new_object();
	struct json_object *h = headers ? json_object_get(headers) : json_object_new_object();
	if (!b64 || !o || !h) {
		free(b64);
		json_object_put(o);
		json_object_put(h);
		set_reason(a, "out_of_memory");
		return -1;
	}
	base64_encode(body, body_len, b64);
	json_put_string(o, "type", "proxy_response");
	json_put_string(o, "request_id", request_id);
	json_put_int(o, "status", status);
	json_object_object_add(o, "headers", h);
	json_put_string(o, "body_b64", b64);
	free(b64);
	int rc = agent_send_json(a, o);
	json_object_put(o);
	return rc;
}

void agent_echo_handler(const struct agent_request *req, struct agent_response *resp,
                        void *ctx)
{
	(void)ctx;
	resp->status = 200;
	json_put_string(resp->headers, "X-Echo-Method", req->method);
	json_put_string(resp->headers, "X-Echo-Path", req->path);
	if (req->headers && json_object_is_type(req->headers, json_type_object)) {
		json_object_object_foreach(req->headers, name, value) {
			if (!json_object_is_type(value, json_type_string))
				continue;
			char key[300];
			snprintf(key, sizeof(key), "X-Echo-Header-%s", name);
			json_put_string(resp->headers, key, json_object_get_string(value));
		}
	}
	buf_append(&resp->body, req->body, req->body_len);
}

int agent_serve(struct test_agent *a, int timeout_ms, agent_handler fn, void *ctx)
{
	struct agent_request req;
	if (agent_recv_request(a, &req, timeout_ms) != 0)
		return -1;
	struct agent_response resp = {.status = 200, .headers = json_object_new_object()};
	buf_init(&resp.body);
	if (!resp.headers) {
		agent_request_free(&req);
		set_reason(a, "out_of_memory");
		return -1;
	}
	(fn ? fn : agent_echo_handler)(&req, &resp, ctx);
	int rc = 0;
	if (resp.body.failed) {
		set_reason(a, "out_of_memory");
		rc = -1;
	} else if (!resp.no_reply) {
		rc = agent_send_response(a, req.request_id, resp.status, resp.headers, resp.body.data,
		                         resp.body.len);
	}
	json_object_put(resp.headers);
	buf_free(&resp.body);
	agent_request_free(&req);
	return rc;
}

/* ---- anything else ---- */

struct json_object *agent_recv(struct test_agent *a, int timeout_ms)
{
	struct json_object *msg = pending_take(a, NULL);
	return msg ? msg : socket_recv(a, deadline_after(timeout_ms));
}

int agent_wait_closed(struct test_agent *a, int timeout_ms)
{
	struct json_object *msg;
	while ((msg = pending_take(a, NULL))) {
		(void)is_invalid_status(a, msg);
		json_object_put(msg);
	}
	int64_t deadline = deadline_after(timeout_ms);
	for (;;) {
		char *data;
		size_t len;
		int opcode;
		int rc = ws_recv_message(a->ws, &data, &len, &opcode, time_left(deadline));
		if (rc == WS_RECV_CLOSED)
			return ws_close_code(a->ws);
		if (rc == WS_RECV_TIMEOUT) {
			set_reason(a, "timeout");
			return -1;
		}
		if (rc != WS_RECV_OK) {
			set_reason(a, "ws_error");
			return -1;
		}
		if (opcode == WS_OP_TEXT && (msg = json_parse_value(data, len))) {
			(void)is_invalid_status(a, msg);
			json_object_put(msg);
		}
		free(data);
	}
}

const char *agent_last_reason(const struct test_agent *a) { return a->last_reason; }

void agent_disconnect(struct test_agent *a)
{
	if (!a)
		return;
	pending_clear(a);
	ws_close(a->ws, 1000);
	free(a);
}

void agent_drop(struct test_agent *a)
{
	if (!a)
		return;
	pending_clear(a);
	ws_abort(a->ws);
	free(a);
}
