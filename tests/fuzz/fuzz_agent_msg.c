/*
 * fuzz_agent_msg.c - what ee-agent does with input it does not control.
 * The first byte picks the parser, the rest is its input:
 *   even: a websocket text frame from the control plane, as conn.c reads
 *         it: tunnel_msg_parse, then for a proxy_request the checks of
 *         backend_job_from_request (agent/backend.c) that decide whether
 *         it may go to the backend, and the error answer for a refused one;
 *   odd:  a backend's answer header block, line by line as libcurl hands
 *         it over, into the headers object the agent sends back
 *         (backend_header_line; bit 1 of the first byte: a HEAD answer).
 * Properties: no crash, no leak, no read past the input; an accepted
 * request has a token method other than CONNECT and a path of visible
 * ASCII from '/'; a frame tunnel_msg_parse refuses gives at most a
 * printable request id (tunnel_msg_request_id); the headers sent back
 * are strict JSON in valid UTF-8 (bytes that are not as \udcXX escapes),
 * read back as bytes (lib/json_bytes.c) they have token names, no
 * hop-by-hop field, no Content-Length except for HEAD, and no value with
 * CR, LF, NUL or another control character but tab.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FUZZ_TARGET "fuzz_agent_msg"
#include "fuzz_support.h"

#include "agent.h"
#include "http_parser.h"
#include "json_bytes.h"
#include "jsonutil.h"
#include "tunnel_msg.h"

static struct agent_config config;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	config.backend_url = strdup("http://127.0.0.1:1");
	config.max_message_bytes = 16u << 20;
	config.max_response_bytes = 8u << 20;
	if (!config.backend_url)
		abort();
	return 0;
}

static bool visible_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static void check_value(const uint8_t *data, size_t size, struct json_object *v)
{
	if (!json_object_is_type(v, json_type_string))
		fuzz_fail("a header value that is not a string", data, size);
	const char *s = json_object_get_string(v);
	size_t len = (size_t)json_object_get_string_len(v);
	if (strlen(s) != len)
		fuzz_fail("a header value with a NUL", data, size);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			fuzz_fail("a header value with a control character", data, size);
	}
}

/* Text the agent wrote must read back as JSON (not checking UTF-8: values pass bytes through). */
static struct json_object *read_back(const uint8_t *data, size_t size, const char *text,
                                     size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		abort();
	struct json_object *o = json_tokener_parse_ex(tok, text, (int)len);
	bool whole = o && json_tokener_get_error(tok) == json_tokener_success &&
	             json_tokener_get_parse_end(tok) == len;
	json_tokener_free(tok);
	if (!whole || !json_object_is_type(o, json_type_object))
		fuzz_fail("the agent wrote JSON that does not read back", data, size);
	return o;
}

static void fuzz_frame(const uint8_t *data, size_t size, const char *text, size_t len)
{
	struct tunnel_msg m;
	struct ee_error err;
	/* The reader without json-c takes a subset, and makes exactly the same job of it. */
	struct backend_job *fast = backend_job_from_text(&config, text ? text : "", len, 1);
	if (tunnel_msg_parse(text ? text : "", len, &m, &err) != 0) {
		if (fast)
			fuzz_fail("the fast reader took what json-c refuses", data, size);
		char id[AGENT_REQUEST_ID_MAX + 1];
		if (tunnel_msg_request_id(text ? text : "", len, TUNNEL_MSG_PROXY_REQUEST, id,
		                          sizeof(id)) &&
		    !util_valid_printable(id, strlen(id), AGENT_REQUEST_ID_MAX))
			fuzz_fail("the id of an unreadable request is not printable", data, size);
		return;
	}
	if (fast) {
		struct backend_job *slow = m.type == TUNNEL_MSG_PROXY_REQUEST
		                                   ? backend_job_from_request(&config, m.root, 1, &err)
		                                   : NULL;
		if (!slow)
			fuzz_fail("the fast reader took a request the checks refuse", data, size);
		struct buf a, b;
		buf_init(&a);
		buf_init(&b);
		if (backend_job_describe(fast, &a) != 0 || backend_job_describe(slow, &b) != 0)
			abort();
		if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
			fuzz_fail("the two readers made different jobs", data, size);
		buf_free(&a);
		buf_free(&b);
		backend_job_free(slow);
		backend_job_free(fast);
	}
	if (m.type == TUNNEL_MSG_PROXY_REQUEST) {
		struct backend_job *job = backend_job_from_request(&config, m.root, 1, &err);
		if (job) {
			const char *method = m.method ? m.method : "GET";
			if (!http_is_token(method, strlen(method)) || strcasecmp(method, "CONNECT") == 0)
				fuzz_fail("a request accepted with a bad method", data, size);
			if (m.path && (m.path[0] != '/' || !visible_ascii(m.path)))
				fuzz_fail("a request accepted with a bad path", data, size);
			backend_job_free(job);
		} else {
			if (!err.reason[0] || err.status < 400)
				fuzz_fail("a refusal without a reason or an error status", data, size);
			if (m.request_id && *m.request_id && strlen(m.request_id) <= AGENT_REQUEST_ID_MAX) {
				struct outbox_msg *answer =
					backend_error_response(1, m.request_id, err.status, err.reason);
				if (!answer)
					abort();
				struct json_object *o = read_back(data, size, answer->text, answer->len);
				struct json_object *id;
				if (!json_object_object_get_ex(o, "request_id", &id) ||
				    strcmp(json_object_get_string(id), m.request_id) != 0)
					fuzz_fail("the error answer does not carry the request id", data, size);
				json_object_put(o);
				outbox_msg_free(answer);
			}
		}
	}
	tunnel_msg_free(&m);
}

static void fuzz_headers(const uint8_t *data, size_t size, const char *text, size_t len,
                         bool head)
{
	struct backend_headers h;
	backend_headers_init(&h);
	size_t start = 0;
	while (start < len) {
		const char *nl = memchr(text + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - text) + 1 : len;
		if (backend_header_line(&h, text + start, end - start, head) != 0)
			break;
		start = end;
	}
	struct buf out;
	buf_init(&out);
	if (backend_headers_json(&h, &out) != 0)
		abort();
	/* As ee-tunneld reads it: strict JSON, UTF-8 checked, then the strings as bytes. */
	struct json_object *strict = json_parse_value(out.data, out.len);
	if (!strict)
		fuzz_fail("the headers object is not strict JSON in UTF-8", data, size);
	json_object_put(strict);
	json_object_put(read_back(data, size, out.data, out.len));
	struct json_object *headers = json_bytes_object(out.data, out.len);
	if (!headers)
		fuzz_fail("the headers object does not read back as bytes", data, size);
	if (json_object_object_length(headers) != h.count || h.count > AGENT_HEADERS_MAX)
		fuzz_fail("the headers object lost or gained a name", data, size);
	json_object_object_foreach(headers, name, v)
	{
		size_t nlen = strlen(name);
		if (!http_is_token(name, nlen))
			fuzz_fail("a header name that is not a token", data, size);
		if (http_header_is_hop_by_hop(name, nlen))
			fuzz_fail("a hop-by-hop header sent back", data, size);
		if (!head && strcasecmp(name, "content-length") == 0)
			fuzz_fail("Content-Length sent back for a body that is re-framed", data, size);
		if (json_object_is_type(v, json_type_array)) {
			if (strcasecmp(name, "set-cookie") != 0)
				fuzz_fail("a list for a field other than Set-Cookie", data, size);
			for (size_t i = 0; i < json_object_array_length(v); i++)
				check_value(data, size, json_object_array_get_idx(v, i));
		} else {
			check_value(data, size, v);
		}
	}
	json_object_put(headers);
	buf_free(&out);
	backend_headers_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char *text;
	if (!fuzz_input_copy(data + 1, size - 1, &text))
		return 0;
	if ((data[0] & 1) == 0)
		fuzz_frame(data, size, text, size - 1);
	else
		fuzz_headers(data, size, text, size - 1, (data[0] & 2) != 0);
	free(text);
	return 0;
}
