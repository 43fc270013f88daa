/*
 * test_agent_headers.c - the agent's side of a proxy_response, written
 * without json-c (agent/backend.c): a backend's header lines into the
 * headers object (every shape the json-c version made: one string, Set-Cookie
 * lists, joined repeats, first spelling kept, 1xx blocks dropped, the
 * AGENT_HEADERS_MAX cap), escaping of values with quotes, backslashes, tabs
 * and non-ASCII bytes (bytes that are not UTF-8 as \udcXX), and the agent's
 * own error answers; and the
 * proxy_request reader without json-c (backend_job_from_text), which must
 * take only what it can read exactly and make the same job of it as
 * tunnel_msg_parse and backend_job_from_request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../../agent/agent.h"
#include "check.h"
#include "tunnel_msg.h"

/* The headers object for a block of header lines separated by "\n". */
static char *render(const char *block, bool head)
{
	struct backend_headers h;
	backend_headers_init(&h);
	const char *p = block;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
		/* libcurl hands lines over with CRLF */
		char line[9000];
		memcpy(line, p, n);
		if (nl) {
			line[n - 1] = '\r';
			line[n++] = '\n';
		}
		CHECK_INT(backend_header_line(&h, line, n, head), 0);
		p += nl ? (size_t)(nl - p) + 1 : strlen(p);
	}
	struct buf out;
	buf_init(&out);
	CHECK_INT(backend_headers_json(&h, &out), 0);
	backend_headers_free(&h);
	return out.data;
}

static void check_render(const char *block, bool head, const char *want)
{
	char *got = render(block, head);
	CHECK_STR(got, want);
	struct json_object *o = json_tokener_parse(got);
	CHECK(o && json_object_is_type(o, json_type_object), "%s reads back", got);
	json_object_put(o);
	free(got);
}

static void test_shapes(void)
{
	test_case("headers: none");
	check_render("HTTP/1.1 200 OK\n", false, "{}");

	test_case("headers: one field, a string");
	check_render("HTTP/1.1 200 OK\nContent-Type: text/plain\n", false,
	             "{\"Content-Type\":\"text/plain\"}");

	test_case("headers: Content-Length dropped, kept for HEAD; hop-by-hop dropped");
	check_render("HTTP/1.1 200 OK\nContent-Length: 32\nConnection: keep-alive\nX-A: 1\n", false,
	             "{\"X-A\":\"1\"}");
	check_render("HTTP/1.1 200 OK\nContent-Length: 32\nTransfer-Encoding: chunked\n", true,
	             "{\"Content-Length\":\"32\"}");

	test_case("headers: Set-Cookie once is a string, twice or more a list");
	check_render("HTTP/1.1 200 OK\nSet-Cookie: a=1\n", false, "{\"Set-Cookie\":\"a=1\"}");
	check_render("HTTP/1.1 200 OK\nSet-Cookie: a=1\nX-B: b\nset-cookie: b=2\nSET-COOKIE: c=3\n",
	             false, "{\"Set-Cookie\":[\"a=1\",\"b=2\",\"c=3\"],\"X-B\":\"b\"}");

	test_case("headers: other repeats joined with \", \", first spelling, first position");
	check_render("HTTP/1.1 200 OK\nVary: Accept\nX-C: c\nvary: Origin\nVARY: Cookie\n", false,
	             "{\"Vary\":\"Accept, Origin, Cookie\",\"X-C\":\"c\"}");

	test_case("headers: a 1xx block is dropped, the final one kept");
	check_render("HTTP/1.1 100 Continue\nX-Early: 1\n\nHTTP/1.1 200 OK\nX-Late: 2\n", false,
	             "{\"X-Late\":\"2\"}");

	test_case("headers: values trimmed, empty values kept, broken lines dropped");
	check_render("HTTP/1.1 200 OK\nX-T: \t spaced \t\nX-E:\n folded\nno colon\n: x\nBad Name: v\n",
	             false, "{\"X-T\":\"spaced\",\"X-E\":\"\"}");

	test_case("headers: values with control characters dropped, DEL too");
	check_render("HTTP/1.1 200 OK\nX-Bell: a\007b\nX-Del: a\177b\nX-Ok: fine\n", false,
	             "{\"X-Ok\":\"fine\"}");

	test_case("headers: quotes, backslashes, tabs and UTF-8 escaped as json-c did; other bytes "
	          "as \\udcXX");
	check_render("HTTP/1.1 200 OK\nX-Q: say \"hi\"\nX-B: C:\\dir\\\nX-Tab: a\tb\n"
	             "X-U: caf\xc3\xa9 \xff\nX-S: </a>\n",
	             false,
	             "{\"X-Q\":\"say \\\"hi\\\"\",\"X-B\":\"C:\\\\dir\\\\\",\"X-Tab\":\"a\\tb\","
	             "\"X-U\":\"caf\xc3\xa9 \\udcff\",\"X-S\":\"</a>\"}");

	test_case("headers: an ISO-8859-1 value, repeats joined and Set-Cookie lists, as \\udcXX");
	check_render("HTTP/1.1 200 OK\nContent-Disposition: attachment; filename=\"caf\xe9.txt\"\n"
	             "X-J: \xe9\nx-j: \xc3\xa9\nSet-Cookie: a=\xff\nSet-Cookie: b=\xed\xa0\x80\n",
	             false,
	             "{\"Content-Disposition\":\"attachment; filename=\\\"caf\\udce9.txt\\\"\","
	             "\"X-J\":\"\\udce9, \xc3\xa9\",\"Set-Cookie\":[\"a=\\udcff\","
	             "\"b=\\udced\\udca0\\udc80\"]}");

	test_case("headers: a joined value with quotes");
	check_render("HTTP/1.1 200 OK\nX-J: \"a\"\nx-j: b\\\n", false, "{\"X-J\":\"\\\"a\\\", b\\\\\"}");
}

static void test_cap(void)
{
	test_case("headers: at most AGENT_HEADERS_MAX names; then even repeats are dropped");
	struct backend_headers h;
	backend_headers_init(&h);
	char line[64];
	for (int i = 0; i < AGENT_HEADERS_MAX + 5; i++) {
		int n = snprintf(line, sizeof(line), "X-%d: v%d\r\n", i, i);
		CHECK_INT(backend_header_line(&h, line, (size_t)n, false), 0);
	}
	CHECK_INT(h.count, AGENT_HEADERS_MAX);
	CHECK_INT(backend_header_line(&h, "X-0: again\r\n", 12, false), 0);
	struct buf out;
	buf_init(&out);
	CHECK_INT(backend_headers_json(&h, &out), 0);
	struct json_object *o = json_tokener_parse(out.data);
	CHECK(o && json_object_object_length(o) == AGENT_HEADERS_MAX);
	struct json_object *v;
	CHECK(json_object_object_get_ex(o, "X-0", &v) &&
	      strcmp(json_object_get_string(v), "v0") == 0);
	CHECK(!json_object_object_get_ex(o, "X-100", &v));
	json_object_put(o);
	buf_free(&out);

	test_case("headers: reset by a new status line, reusable");
	CHECK_INT(backend_header_line(&h, "HTTP/1.1 200 OK\r\n", 17, false), 0);
	CHECK_INT(h.count, 0);
	CHECK_INT(backend_header_line(&h, "A: b\r\n", 6, false), 0);
	buf_init(&out);
	CHECK_INT(backend_headers_json(&h, &out), 0);
	CHECK_STR(out.data, "{\"A\":\"b\"}");
	buf_free(&out);
	backend_headers_free(&h);
}

static void test_error_answer(void)
{
	test_case("backend_error_response: the whole message, the body in base64");
	struct outbox_msg *m = backend_error_response(7, "id-1", 503, "agent_busy");
	CHECK(m != NULL);
	if (!m)
		return;
	CHECK_INT((long long)m->generation, 7);
	CHECK_INT((long long)m->len, (long long)strlen(m->text));
	/* {"allowed":false,"reason":"agent_busy"} */
	CHECK_STR(m->text, "{\"type\":\"proxy_response\",\"request_id\":\"id-1\",\"status\":503,"
	                   "\"headers\":{\"Content-Type\":\"application/json\"},"
	                   "\"body_b64\":\"eyJhbGxvd2VkIjpmYWxzZSwicmVhc29uIjoiYWdlbnRfYnVzeSJ9\"}");
	outbox_msg_free(m);

	test_case("backend_error_response: a request id with quotes and backslashes");
	m = backend_error_response(1, "a\"b\\c", 400, "invalid_proxy_request");
	CHECK(m != NULL);
	if (!m)
		return;
	struct json_object *o = json_tokener_parse(m->text);
	struct json_object *id, *status;
	CHECK(o && json_object_object_get_ex(o, "request_id", &id) &&
	      strcmp(json_object_get_string(id), "a\"b\\c") == 0);
	CHECK(o && json_object_object_get_ex(o, "status", &status) &&
	      json_object_get_int(status) == 400);
	json_object_put(o);
	outbox_msg_free(m);
}

static struct agent_config config = {.backend_url = "http://127.0.0.1:1"};

/*
 * Reads text both ways: fast says whether the reader without json-c must
 * take it; slow_status is what the json-c way gives (0: a job, else the
 * refusal's status, -1: not a proxy_request at all).
 */
static void check_reader(const char *text, bool fast, int slow_status)
{
	size_t len = strlen(text);
	struct backend_job *f = backend_job_from_text(&config, text, len, 1);
	CHECK(!!f == fast, "fast reader %s: %s", fast ? "takes" : "leaves", text);
	struct tunnel_msg m;
	struct ee_error err = {0};
	struct backend_job *s = NULL;
	int status = -1;
	if (tunnel_msg_parse(text, len, &m, &err) == 0) {
		if (m.type == TUNNEL_MSG_PROXY_REQUEST) {
			s = backend_job_from_request(&config, m.root, 1, &err);
			status = s ? 0 : err.status;
		}
		tunnel_msg_free(&m);
	}
	CHECK_INT(status, slow_status);
	if (f && s) {
		struct buf a, b;
		buf_init(&a);
		buf_init(&b);
		backend_job_describe(f, &a);
		backend_job_describe(s, &b);
		CHECK_STR(a.data, b.data);
		buf_free(&a);
		buf_free(&b);
	}
	backend_job_free(f);
	backend_job_free(s);
}

static void test_reader(void)
{
	test_case("proxy_request reader: as ee-tunneld writes it, with and without a body");
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"0123456789ab000000000001\","
	             "\"method\":\"GET\",\"path\":\"/x?y=1&z=%20\",\"headers\":{\"User-Agent\":"
	             "\"wrk\",\"X-Empty\":\"\",\"Cookie\":\"a=1; b=2\"},\"body_b64\":\"\"}",
	             true, 0);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r1\",\"method\":\"POST\","
	             "\"path\":\"/p\",\"headers\":{\"Content-Type\":\"text/plain\"},"
	             "\"body_b64\":\"aGVsbG8=\"}",
	             true, 0);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r1\",\"method\":\"PUT\","
	             "\"path\":\"/\",\"headers\":{}}",
	             true, 0);

	test_case("proxy_request reader: defaults, any order, white space, skipped headers");
	check_reader("{\"request_id\":\"r2\",\"type\":\"proxy_request\"}", true, 0);
	check_reader(" {\n\t\"type\" : \"proxy_request\" ,\r\n \"headers\" : { \"Host\" : \"h\" ,"
	             " \"accept\" : \"x/y\" , \"Connection\" : \"close\" } , \"request_id\" : \"r3\" } \n",
	             true, 0);

	test_case("proxy_request reader: escapes and non-ASCII go to json-c, which reads them");
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r4\",\"headers\":{\"X-Q\":"
	             "\"say \\\"hi\\\" \\\\ \\/\"}}",
	             false, 0);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r5\",\"headers\":{\"X-U\":"
	             "\"caf\xc3\xa9\"}}",
	             false, 0);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r6\",\"path\":\"/\\u0061\"}", false,
	             0);

	test_case("proxy_request reader: \\udcXX escapes go to json-c, and the job has the bytes");
	static const char latin1[] =
		"{\"type\":\"proxy_request\",\"request_id\":\"r30\",\"headers\":{\"X-L\":"
		"\"caf\\udce9 \\udcff\",\"X-U\":\"caf\xc3\xa9\"}}";
	check_reader(latin1, false, 0);
	struct tunnel_msg lm;
	struct ee_error lerr;
	if (tunnel_msg_parse(latin1, sizeof(latin1) - 1, &lm, &lerr) == 0) {
		struct backend_job *job = backend_job_from_request(&config, lm.root, 1, &lerr);
		struct buf d;
		buf_init(&d);
		if (job)
			backend_job_describe(job, &d);
		CHECK(d.data && strstr(d.data, "\nX-L: caf\xe9 \xff\n") &&
		          strstr(d.data, "\nX-U: caf\xc3\xa9\n"),
		      "(%s)", test_printable(d.data ? d.data : ""));
		buf_free(&d);
		backend_job_free(job);
		tunnel_msg_free(&lm);
	} else {
		test_fail(__FILE__, __LINE__, "tunnel_msg_parse refused %s", latin1);
	}

	test_case("proxy_request reader: repeats, other fields and types go to json-c");
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r7\",\"headers\":{\"A\":\"1\","
	             "\"A\":\"2\"}}",
	             false, 0);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r8\",\"request_id\":\"r9\"}", false,
	             0);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r10\",\"extra\":\"x\"}", false, 0);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r11\",\"headers\":null}", false, 0);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r12\",\"body_b64\":null}", false, 0);

	test_case("proxy_request reader: refusals are the json-c way's to answer");
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r13\",\"method\":\"CONNECT\"}", false,
	             501);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r14\",\"method\":\"connect\"}", false,
	             501);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r15\",\"path\":\"x\"}", false, 400);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r16\",\"path\":\"/a b\"}", false, 400);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r17\",\"body_b64\":\"abc\"}", false,
	             400);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r18\",\"method\":\"G E\"}", false,
	             400);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r19\",\"method\":\"\"}", false, 400);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"\"}", false, 400);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"a b\"}", false, 400);
	check_reader("{\"type\":\"proxy_request\"}", false, 400);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r20\",\"headers\":{\"Bad Name\":"
	             "\"v\"}}",
	             false, 400);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r21\",\"headers\":{\"X\":"
	             "\"a\\u0000b\"}}",
	             false, 400);

	test_case("proxy_request reader: AGENT_HEADERS_MAX headers taken, one more refused");
	struct buf t;
	buf_init(&t);
	buf_puts(&t, "{\"type\":\"proxy_request\",\"request_id\":\"r22\",\"headers\":{");
	for (int i = 0; i < AGENT_HEADERS_MAX; i++)
		buf_printf(&t, "%s\"X-%d\":\"%d\"", i ? "," : "", i, i);
	buf_puts(&t, "}}");
	check_reader(t.data, true, 0);
	t.len -= 2;
	buf_puts(&t, ",\"X-last\":\"v\"}}");
	check_reader(t.data, false, 400);
	buf_free(&t);

	test_case("proxy_request reader: other messages and broken text are not its own");
	check_reader("{\"type\":\"status\",\"state\":\"ok\",\"reason\":\"attested\"}", false, -1);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r23\"} x", false, -1);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r24\",}", false, -1);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r25\"", false, -1);
	check_reader("{\"type\":\"proxy_request\",\"request_id\":\"r26\",\"headers\":{\"A\":\"1\",}}",
	             false, -1);
	check_reader("", false, -1);
}

int main(void)
{
	test_reader();
	test_shapes();
	test_cap();
	test_error_answer();
	return test_finish();
}
