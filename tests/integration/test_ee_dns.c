/*
 * test_ee_dns.c - ee-dns (deploy/ee-dns/), the real binary, against a fake
 * Cloudflare API on 127.0.0.1 that keeps its zones in memory and speaks
 * API v4's JSON as documented: zones listed by name and read by id, DNS
 * records listed by type and name, created with POST and changed with
 * PATCH, proxied records kept at an automatic TTL, and its error answers
 * (9109 invalid access token with HTTP 403, 7003 unknown zone, 9021 bad
 * TTL, 81057 record already exists, 81058 identical record).  Faults are
 * injected on demand: an HTML 500 page, malformed JSON, JSON that is no
 * API answer, an error with a chain, an answer slower than ee-dns waits.
 *
 * Every run starts ee-dns on a clean environment and checks its lines,
 * its exit status, the zone afterwards and which requests reached the
 * API; the token must never appear in anything ee-dns prints.  Also
 * --auto-ip against a loopback address echo (tests/support/fakehttp.h),
 * bad flags and settings (exit 2, nothing sent), and deploy/ee-dns-on-start.
 *
 * The fake API lives here, not in tests/support/, because only this test
 * needs it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "check.h"
#include "fakehttp.h"
#include "stack.h"
#include "util.h"

#define TEST_TOKEN "cf-test-token-7Hq2xV9pLm4RtZ8wK3nBv"
#define ZONE_ID "023e105f4ecef8ad9ca31a8372d0c353"
#define ZONE_NAME "example.com"
#define OTHER_ZONE_ID "372e67954025e0ba6aaa6d586b9e0b59"
#define OTHER_ZONE_NAME "example.org"
#define PENDING_ZONE_ID "9a7806061c88ada191ed06f989cc3dac"
#define PENDING_ZONE_NAME "pending.test"

#define IP1 "203.0.113.7"
#define IP2 "203.0.113.8"
#define IP6_1 "2001:db8::7"
#define IP6_2 "2001:db8::8"
#define ECHO_IP "198.51.100.23"
#define ECHO_IP6 "2001:db8::23"

#define FAKE_MAX_RECORDS 32
#define FAKE_MAX_REQUEST (64 * 1024)
#define RUN_OUTPUT_MAX (64 * 1024)
#define RUN_DEADLINE_MS 30000
/* Far beyond the 0.5 s ee-dns waits in those cases, so a loaded machine still tells them apart. */
#define SLOW_ANSWER_MS 8000

/* ---- the fake Cloudflare API ------------------------------------------ */

enum fault {
	FAULT_NONE,
	FAULT_RECORD_EXISTS, /* every POST: 400, 81057 Record already exists. */
	FAULT_HTTP_500,      /* every request: 500 with an HTML page */
	FAULT_MALFORMED,     /* every request: 200 with JSON cut short */
	FAULT_NOT_ENVELOPE,  /* every request: 200 with JSON that is no API answer */
	FAULT_ERROR_CHAIN,   /* every request: 400, 6003 with a chain of finer errors */
	FAULT_SLOW,          /* every request answered after SLOW_ANSWER_MS */
	FAULT_SUCCESS_FALSE, /* every request: 200 but success false and no errors */
};

struct fake_record {
	char id[40];
	char zone_id[40];
	char type[8];
	char name[256];
	char content[64];
	int ttl;
	bool proxied;
};

static const struct fake_zone {
	const char *id, *name, *status;
} fake_zones[] = {
	{ZONE_ID, ZONE_NAME, "active"},
	{OTHER_ZONE_ID, OTHER_ZONE_NAME, "active"},
	{PENDING_ZONE_ID, PENDING_ZONE_NAME, "pending"},
};

/* The parent's view: the listening socket, and files the serving child writes. */
static struct {
	int listen_fd;
	int port;
	pid_t pid;
	char base_url[64];
	char dir[256];
	char log_path[320];   /* one line per request: "METHOD target body" */
	char state_path[320]; /* the records, JSON, rewritten after every change */
} cf = {.listen_fd = -1};

/* The child's state. */
static struct fake_record zone_records[FAKE_MAX_RECORDS];
static size_t zone_record_count;
static unsigned next_record_id;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void append_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	test_write_all(fd, text, strlen(text));
	close(fd);
}

static struct json_object *record_json(const struct fake_record *r)
{
	const struct fake_zone *z = NULL;
	for (size_t i = 0; i < sizeof(fake_zones) / sizeof(fake_zones[0]); i++) {
		if (strcmp(fake_zones[i].id, r->zone_id) == 0)
			z = &fake_zones[i];
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(r->id));
	json_object_object_add(o, "zone_id", json_object_new_string(r->zone_id));
	json_object_object_add(o, "zone_name", json_object_new_string(z ? z->name : ""));
	json_object_object_add(o, "name", json_object_new_string(r->name));
	json_object_object_add(o, "type", json_object_new_string(r->type));
	json_object_object_add(o, "content", json_object_new_string(r->content));
	json_object_object_add(o, "proxiable", json_object_new_boolean(true));
	json_object_object_add(o, "proxied", json_object_new_boolean(r->proxied));
	json_object_object_add(o, "ttl", json_object_new_int(r->ttl));
	json_object_object_add(o, "locked", json_object_new_boolean(false));
	struct json_object *meta = json_object_new_object();
	json_object_object_add(meta, "auto_added", json_object_new_boolean(false));
	json_object_object_add(meta, "source", json_object_new_string("primary"));
	json_object_object_add(o, "meta", meta);
	json_object_object_add(o, "comment", NULL);
	json_object_object_add(o, "tags", json_object_new_array());
	json_object_object_add(o, "created_on", json_object_new_string("2024-05-01T10:00:00.000000Z"));
	json_object_object_add(o, "modified_on", json_object_new_string("2024-05-01T10:00:00.000000Z"));
	return o;
}

static void state_save(void)
{
	struct json_object *list = json_object_new_array();
	for (size_t i = 0; i < zone_record_count; i++)
		json_object_array_add(list, record_json(&zone_records[i]));
	char tmp[340];
	snprintf(tmp, sizeof(tmp), "%s.tmp", cf.state_path);
	FILE *f = fopen(tmp, "w");
	if (f) {
		fputs(json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN), f);
		fclose(f);
		rename(tmp, cf.state_path);
	}
	json_object_put(list);
}

static void respond(int fd, int status, const char *content_type, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 %d Fake\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	                 "Connection: close\r\n\r\n",
	                 status, content_type, strlen(body));
	test_write_all(fd, head, (size_t)n);
	test_write_all(fd, body, strlen(body));
}

/* The envelope every answer of the API has. */
static void respond_api(int fd, int status, struct json_object *result, struct json_object *errors,
                        struct json_object *result_info)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "result", result);
	json_object_object_add(o, "success", json_object_new_boolean(errors == NULL));
	json_object_object_add(o, "errors", errors ? errors : json_object_new_array());
	json_object_object_add(o, "messages", json_object_new_array());
	if (result_info)
		json_object_object_add(o, "result_info", result_info);
	respond(fd, status, "application/json",
	        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static struct json_object *api_error(int code, const char *message)
{
	struct json_object *e = json_object_new_object();
	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(e, "message", json_object_new_string(message));
	return e;
}

static void respond_error(int fd, int status, int code, const char *message)
{
	struct json_object *errors = json_object_new_array();
	json_object_array_add(errors, api_error(code, message));
	respond_api(fd, status, NULL, errors, NULL);
}

static struct json_object *list_info(size_t count)
{
	struct json_object *i = json_object_new_object();
	json_object_object_add(i, "page", json_object_new_int(1));
	json_object_object_add(i, "per_page", json_object_new_int(100));
	json_object_object_add(i, "count", json_object_new_int((int)count));
	json_object_object_add(i, "total_count", json_object_new_int((int)count));
	json_object_object_add(i, "total_pages", json_object_new_int(1));
	return i;
}

/* A query parameter, percent-decoded; false when absent. */
static bool query_param(const char *query, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key);
	const char *p = query;
	while (p && *p) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t out_len;
			return util_percent_decode(p + klen + 1, len - klen - 1, true, out, size, &out_len) == 0;
		}
		p = end ? end + 1 : NULL;
	}
	return false;
}

static const struct fake_zone *zone_by_id(const char *id)
{
	for (size_t i = 0; i < sizeof(fake_zones) / sizeof(fake_zones[0]); i++) {
		if (strcmp(fake_zones[i].id, id) == 0)
			return &fake_zones[i];
	}
	return NULL;
}

static bool name_in_zone(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);
	return strcasecmp(name, zone) == 0 ||
	       (n > z && name[n - z - 1] == '.' && strcasecmp(name + n - z, zone) == 0);
}

/*
 * Applies a create or update body to r as Cloudflare does: every field
 * checked, a proxied record's TTL kept automatic.  0, or an error answered.
 */
static int record_apply(int fd, const struct fake_zone *z, const char *body, struct fake_record *r,
                        bool creating)
{
	struct json_object *o = json_tokener_parse(body);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		respond_error(fd, 400, 9207, "Request body is invalid.");
		return -1;
	}
	struct fake_record next = *r;
	struct json_object *v;
	int rc = -1;
	if (json_object_object_get_ex(o, "type", &v))
		snprintf(next.type, sizeof(next.type), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "name", &v))
		snprintf(next.name, sizeof(next.name), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "content", &v))
		snprintf(next.content, sizeof(next.content), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "ttl", &v)) {
		if (!json_object_is_type(v, json_type_int)) {
			respond_error(fd, 400, 9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.");
			goto out;
		}
		next.ttl = json_object_get_int(v);
	} else if (creating) {
		next.ttl = 1;
	}
	if (json_object_object_get_ex(o, "proxied", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			respond_error(fd, 400, 9003, "Invalid 'proxied' value, must be a boolean");
			goto out;
		}
		next.proxied = json_object_get_boolean(v);
	}
	unsigned char bin[16];
	if (strcmp(next.type, "A") != 0 && strcmp(next.type, "AAAA") != 0) {
		respond_error(fd, 400, 1004, "DNS Validation Error");
		goto out;
	}
	if (inet_pton(strcmp(next.type, "A") == 0 ? AF_INET : AF_INET6, next.content, bin) != 1) {
		respond_error(fd, 400, 9005, strcmp(next.type, "A") == 0
		                                     ? "Content for A record must be a valid IPv4 address."
		                                     : "Content for AAAA record must be a valid IPv6 address.");
		goto out;
	}
	if (!name_in_zone(next.name, z->name)) {
		respond_error(fd, 400, 1004, "DNS Validation Error");
		goto out;
	}
	if (next.ttl != 1 && (next.ttl < 60 || next.ttl > 86400)) {
		respond_error(fd, 400, 9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.");
		goto out;
	}
	if (next.proxied)
		next.ttl = 1;
	for (size_t i = 0; i < zone_record_count; i++) {
		const struct fake_record *e = &zone_records[i];
		if (e != r && strcmp(e->zone_id, z->id) == 0 && strcmp(e->type, next.type) == 0 &&
		    strcasecmp(e->name, next.name) == 0 && strcmp(e->content, next.content) == 0) {
			respond_error(fd, 400, 81058, "An identical record already exists.");
			goto out;
		}
	}
	*r = next;
	rc = 0;
out:
	json_object_put(o);
	return rc;
}

static void handle_records(int fd, const char *method, const struct fake_zone *z,
                           const char *record_id, const char *query, const char *body,
                           enum fault fault)
{
	if (!record_id && strcmp(method, "GET") == 0) {
		char type[16] = "", name[256] = "";
		bool by_type = query_param(query, "type", type, sizeof(type));
		bool by_name = query_param(query, "name", name, sizeof(name));
		struct json_object *list = json_object_new_array();
		size_t n = 0;
		for (size_t i = 0; i < zone_record_count; i++) {
			const struct fake_record *r = &zone_records[i];
			if (strcmp(r->zone_id, z->id) != 0 || (by_type && strcmp(r->type, type) != 0) ||
			    (by_name && strcasecmp(r->name, name) != 0))
				continue;
			json_object_array_add(list, record_json(r));
			n++;
		}
		respond_api(fd, 200, list, NULL, list_info(n));
		return;
	}
	if (!record_id && strcmp(method, "POST") == 0) {
		if (fault == FAULT_RECORD_EXISTS) {
			respond_error(fd, 400, 81057, "Record already exists.");
			return;
		}
		if (zone_record_count >= FAKE_MAX_RECORDS) {
			respond_error(fd, 400, 81045, "Record quota exceeded.");
			return;
		}
		struct fake_record r;
		memset(&r, 0, sizeof(r));
		snprintf(r.zone_id, sizeof(r.zone_id), "%s", z->id);
		snprintf(r.id, sizeof(r.id), "372e67954025e0ba6aaa6d58%08x", ++next_record_id);
		if (record_apply(fd, z, body, &r, true) != 0)
			return;
		zone_records[zone_record_count++] = r;
		state_save();
		respond_api(fd, 200, record_json(&r), NULL, NULL);
		return;
	}
	if (record_id && strcmp(method, "PATCH") == 0) {
		for (size_t i = 0; i < zone_record_count; i++) {
			struct fake_record *r = &zone_records[i];
			if (strcmp(r->id, record_id) == 0 && strcmp(r->zone_id, z->id) == 0) {
				if (record_apply(fd, z, body, r, false) != 0)
					return;
				state_save();
				respond_api(fd, 200, record_json(r), NULL, NULL);
				return;
			}
		}
		respond_error(fd, 404, 81044, "Record does not exist.");
		return;
	}
	respond_error(fd, 405, 10000, "Method not allowed for this route");
}

static void handle(int fd, const char *method, const char *target, const char *authorization,
                   const char *body, enum fault fault)
{
	char line[FAKE_MAX_REQUEST + 512];
	snprintf(line, sizeof(line), "%s %s %s\n", method, target, body);
	append_file(cf.log_path, line);

	switch (fault) {
	case FAULT_SLOW:
		sleep_ms(SLOW_ANSWER_MS);
		break;
	case FAULT_HTTP_500:
		respond(fd, 500, "text/html",
		        "<html><head><title>500 Internal Server Error</title></head>"
		        "<body><center><h1>500 Internal Server Error</h1></center></body></html>");
		return;
	case FAULT_MALFORMED:
		respond(fd, 200, "application/json", "{\"result\":[{\"id\":\"372e6795\",\"type\":\"A\",");
		return;
	case FAULT_NOT_ENVELOPE:
		respond(fd, 200, "application/json", "{\"hello\":\"world\"}");
		return;
	case FAULT_SUCCESS_FALSE:
		respond(fd, 200, "application/json",
		        "{\"success\":false,\"errors\":[],\"messages\":[],\"result\":null}");
		return;
	case FAULT_ERROR_CHAIN: {
		struct json_object *e = api_error(6003, "Invalid request headers");
		struct json_object *chain = json_object_new_array();
		json_object_array_add(chain, api_error(6111, "Invalid format for Authorization header"));
		json_object_object_add(e, "error_chain", chain);
		struct json_object *errors = json_object_new_array();
		json_object_array_add(errors, e);
		respond_api(fd, 400, NULL, errors, NULL);
		return;
	}
	default:
		break;
	}

	if (!authorization) {
		respond_error(fd, 400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers");
		return;
	}
	if (strcmp(authorization, "Bearer " TEST_TOKEN) != 0) {
		respond_error(fd, 403, 9109, "Invalid access token");
		return;
	}

	/* The API's base URL ends in /client/v4, as the real one does. */
	static const char prefix[] = "/client/v4";
	if (strncmp(target, prefix, sizeof(prefix) - 1) != 0) {
		respond_error(fd, 404, 7000, "No route for that URI");
		return;
	}
	target += sizeof(prefix) - 1;
	char path[1024];
	const char *q = strchr(target, '?');
	size_t plen = q ? (size_t)(q - target) : strlen(target);
	if (plen >= sizeof(path)) {
		respond_error(fd, 414, 7000, "No route for that URI");
		return;
	}
	memcpy(path, target, plen);
	path[plen] = '\0';
	const char *query = q ? q + 1 : "";

	if (strcmp(path, "/zones") == 0 && strcmp(method, "GET") == 0) {
		char name[256] = "";
		bool by_name = query_param(query, "name", name, sizeof(name));
		struct json_object *list = json_object_new_array();
		size_t n = 0;
		for (size_t i = 0; i < sizeof(fake_zones) / sizeof(fake_zones[0]); i++) {
			if (by_name && strcasecmp(fake_zones[i].name, name) != 0)
				continue;
			struct json_object *z = json_object_new_object();
			json_object_object_add(z, "id", json_object_new_string(fake_zones[i].id));
			json_object_object_add(z, "name", json_object_new_string(fake_zones[i].name));
			json_object_object_add(z, "status", json_object_new_string(fake_zones[i].status));
			json_object_object_add(z, "paused", json_object_new_boolean(false));
			json_object_object_add(z, "type", json_object_new_string("full"));
			json_object_array_add(list, z);
			n++;
		}
		respond_api(fd, 200, list, NULL, list_info(n));
		return;
	}
	if (strncmp(path, "/zones/", 7) == 0) {
		char zone_id[64] = "", rest[512] = "";
		const char *p = path + 7;
		size_t idlen = strcspn(p, "/");
		if (idlen >= sizeof(zone_id)) {
			respond_error(fd, 400, 7003, "Could not route to /zones, perhaps your object identifier is invalid?");
			return;
		}
		memcpy(zone_id, p, idlen);
		snprintf(rest, sizeof(rest), "%s", p + idlen);
		const struct fake_zone *z = zone_by_id(zone_id);
		if (!z) {
			char msg[256];
			snprintf(msg, sizeof(msg),
			         "Could not route to /zones/%s, perhaps your object identifier is invalid?", zone_id);
			respond_error(fd, 400, 7003, msg);
			return;
		}
		if (rest[0] == '\0' && strcmp(method, "GET") == 0) {
			struct json_object *o = json_object_new_object();
			json_object_object_add(o, "id", json_object_new_string(z->id));
			json_object_object_add(o, "name", json_object_new_string(z->name));
			json_object_object_add(o, "status", json_object_new_string(z->status));
			respond_api(fd, 200, o, NULL, NULL);
			return;
		}
		if (strcmp(rest, "/dns_records") == 0) {
			handle_records(fd, method, z, NULL, query, body, fault);
			return;
		}
		if (strncmp(rest, "/dns_records/", 13) == 0 && rest[13] && !strchr(rest + 13, '/')) {
			handle_records(fd, method, z, rest + 13, query, body, fault);
			return;
		}
	}
	respond_error(fd, 404, 7000, "No route for that URI");
}

/* Reads one request: head, then a body of Content-Length bytes. */
static void serve_one(int fd, enum fault fault)
{
	static char req[FAKE_MAX_REQUEST + 1];
	size_t len = 0;
	char *head_end = NULL;
	while (len < FAKE_MAX_REQUEST && !head_end) {
		ssize_t r = read(fd, req + len, FAKE_MAX_REQUEST - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		len += (size_t)r;
		req[len] = '\0';
		head_end = strstr(req, "\r\n\r\n");
	}
	if (!head_end)
		return;
	*head_end = '\0';
	char *body = head_end + 4;
	size_t have = len - (size_t)(body - req);
	size_t want = 0;
	char authorization[1024] = "";
	bool has_auth = false;
	for (char *h = strstr(req, "\r\n"); h; h = strstr(h + 2, "\r\n")) {
		char *v = h + 2, *eol = strstr(v, "\r\n");
		size_t n = eol ? (size_t)(eol - v) : strlen(v);
		if (n > 15 && strncasecmp(v, "content-length:", 15) == 0)
			want = strtoul(v + 15, NULL, 10);
		if (n > 14 && strncasecmp(v, "authorization:", 14) == 0) {
			const char *a = v + 14;
			while (*a == ' ')
				a++;
			snprintf(authorization, sizeof(authorization), "%.*s", (int)(n - (size_t)(a - v)), a);
			has_auth = true;
		}
	}
	if (want > FAKE_MAX_REQUEST - (size_t)(body - req))
		return;
	while (have < want) {
		ssize_t r = read(fd, body + have, want - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		have += (size_t)r;
	}
	body[want] = '\0';
	char method[16] = "", target[4096] = "";
	if (sscanf(req, "%15s %4095s", method, target) != 2)
		return;
	handle(fd, method, target, has_auth ? authorization : NULL, body, fault);
}

static void fakecf_stop(void)
{
	if (cf.pid > 0) {
		kill(cf.pid, SIGKILL);
		while (waitpid(cf.pid, NULL, 0) < 0 && errno == EINTR)
			;
		cf.pid = 0;
	}
}

static int fakecf_open(void)
{
	if (stack_make_dir(cf.dir, sizeof(cf.dir), "ee-dns") != 0)
		return -1;
	snprintf(cf.log_path, sizeof(cf.log_path), "%s/requests.log", cf.dir);
	snprintf(cf.state_path, sizeof(cf.state_path), "%s/records.json", cf.dir);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof(addr);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)&addr, &alen) != 0) {
		close(fd);
		return -1;
	}
	cf.listen_fd = fd;
	cf.port = ntohs(addr.sin_port);
	snprintf(cf.base_url, sizeof(cf.base_url), "http://127.0.0.1:%d/client/v4", cf.port);
	return 0;
}

static void fakecf_clear_log(void)
{
	int fd = open(cf.log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

/*
 * Serves a zone holding these records (copied into a new child) with
 * fault; the request log starts empty.  The /client/v4 prefix of the real
 * API is in cf.base_url and stripped here.
 */
static void fakecf_serve(const struct fake_record *records, size_t count, enum fault fault)
{
	fakecf_stop();
	fakecf_clear_log();
	zone_record_count = 0;
	next_record_id = 0;
	for (size_t i = 0; i < count && i < FAKE_MAX_RECORDS; i++)
		zone_records[zone_record_count++] = records[i];
	state_save();
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		for (;;) {
			int fd = accept(cf.listen_fd, NULL, NULL);
			if (fd < 0) {
				if (errno == EINTR)
					continue;
				_exit(1);
			}
			serve_one(fd, fault);
			shutdown(fd, SHUT_WR);
			close(fd);
		}
	}
	cf.pid = pid;
}

/* ---- what the fake API saw and holds ---------------------------------- */

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return strdup("");
	struct buf b;
	buf_init(&b);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	buf_append(&b, "", 0);
	return b.data;
}

/* Requests whose line ("METHOD target body") starts with prefix. */
static int requests(const char *prefix)
{
	char *log = read_text(cf.log_path);
	int n = 0;
	size_t plen = strlen(prefix);
	for (char *p = log; p && *p;) {
		if (strncmp(p, prefix, plen) == 0)
			n++;
		char *eol = strchr(p, '\n');
		p = eol ? eol + 1 : NULL;
	}
	free(log);
	return n;
}

static int writes(void) { return requests("POST ") + requests("PATCH "); }

/* The zone's records now. */
static size_t zone_now(struct fake_record *out, size_t max)
{
	char *text = read_text(cf.state_path);
	struct json_object *list = json_tokener_parse(text);
	free(text);
	size_t n = 0;
	for (size_t i = 0; list && i < json_object_array_length(list) && n < max; i++) {
		struct json_object *o = json_object_array_get_idx(list, i), *v;
		struct fake_record *r = &out[n++];
		memset(r, 0, sizeof(*r));
#define FIELD(key, dst)                                                         \
	if (json_object_object_get_ex(o, key, &v))                              \
		snprintf(dst, sizeof(dst), "%s", json_object_get_string(v));
		FIELD("id", r->id)
		FIELD("zone_id", r->zone_id)
		FIELD("type", r->type)
		FIELD("name", r->name)
		FIELD("content", r->content)
#undef FIELD
		if (json_object_object_get_ex(o, "ttl", &v))
			r->ttl = json_object_get_int(v);
		if (json_object_object_get_ex(o, "proxied", &v))
			r->proxied = json_object_get_boolean(v);
	}
	json_object_put(list);
	return n;
}

/* Fails the case unless exactly one record of type and name holds these values. */
#define CHECK_RECORD(type, name, content, proxied, ttl) \
	check_record(__LINE__, type, name, content, proxied, ttl)
static void check_record(int line, const char *type, const char *name, const char *content,
                         bool proxied, int ttl)
{
	struct fake_record all[FAKE_MAX_RECORDS];
	size_t n = zone_now(all, FAKE_MAX_RECORDS), found = 0;
	const struct fake_record *r = NULL;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(all[i].type, type) == 0 && strcmp(all[i].name, name) == 0) {
			found++;
			r = &all[i];
		}
	}
	if (found != 1) {
		test_fail(__FILE__, line, "%zu records %s %s, want 1", found, type, name);
		return;
	}
	if (strcmp(r->content, content) != 0 || r->proxied != proxied || r->ttl != ttl)
		test_fail(__FILE__, line, "%s %s is %s proxied=%d ttl=%d, want %s proxied=%d ttl=%d", type,
		          name, r->content, r->proxied, r->ttl, content, proxied, ttl);
}

static size_t zone_count(void)
{
	struct fake_record all[FAKE_MAX_RECORDS];
	return zone_now(all, FAKE_MAX_RECORDS);
}

static struct fake_record make_record(const char *zone_id, const char *id, const char *type,
                                      const char *name, const char *content, bool proxied, int ttl)
{
	struct fake_record r;
	memset(&r, 0, sizeof(r));
	snprintf(r.zone_id, sizeof(r.zone_id), "%s", zone_id);
	snprintf(r.id, sizeof(r.id), "%s", id);
	snprintf(r.type, sizeof(r.type), "%s", type);
	snprintf(r.name, sizeof(r.name), "%s", name);
	snprintf(r.content, sizeof(r.content), "%s", content);
	r.proxied = proxied;
	r.ttl = ttl;
	return r;
}

/* ---- running ee-dns ----------------------------------------------------- */

struct run {
	int status; /* exit status, 128 + signal, or -1 */
	char *out, *err;
	long ms;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Every run's output, for the check that the token never shows. */
static struct buf all_output;

/*
 * Runs argv[0] with argv on a clean environment: PATH and the sanitizer
 * settings, then env ("NAME=value", later ones win; "NAME=" is unset).
 */
static void run_program(struct run *r, const char *const *argv, const char *const *env)
{
	memset(r, 0, sizeof(*r));
	r->status = -1;
	char out_path[340], err_path[340];
	snprintf(out_path, sizeof(out_path), "%s/stdout", cf.dir);
	snprintf(err_path, sizeof(err_path), "%s/stderr", cf.dir);
	long start = now_ms();
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0)
			_exit(126);
		dup2(o, STDOUT_FILENO);
		dup2(e, STDERR_FILENO);
		static const char *const kept[] = {"PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS",
		                                   "LSAN_OPTIONS", "TMPDIR"};
		char *keep[5] = {0};
		for (size_t i = 0; i < 5; i++) {
			const char *v = getenv(kept[i]);
			if (v) {
				size_t n = strlen(kept[i]) + strlen(v) + 2;
				keep[i] = malloc(n);
				if (keep[i])
					snprintf(keep[i], n, "%s=%s", kept[i], v);
			}
		}
		clearenv();
		for (size_t i = 0; i < 5; i++) {
			if (keep[i])
				putenv(keep[i]);
		}
		for (size_t i = 0; env && env[i]; i++)
			putenv(strdup(env[i]));
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int status = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			break;
		if (now_ms() - start > RUN_DEADLINE_MS) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			test_fail(__FILE__, __LINE__, "%s did not finish within %d ms", argv[0],
			          RUN_DEADLINE_MS);
			break;
		}
		sleep_ms(10);
	}
	r->ms = now_ms() - start;
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r->out = read_text(out_path);
	r->err = read_text(err_path);
	check_no_sanitizer_report(out_path);
	check_no_sanitizer_report(err_path);
	buf_puts(&all_output, r->out);
	buf_puts(&all_output, r->err);
	if (strstr(r->out, TEST_TOKEN) || strstr(r->err, TEST_TOKEN) || strstr(r->err, "Bearer"))
		test_fail(__FILE__, __LINE__, "the token shows in the output of %s", argv[0]);
}

#define ENV_MAX 24

/* The settings of every run, then extra (NULL-terminated, may be NULL). */
static void base_env(const char **env, const char *const *extra)
{
	static char api_url[128];
	snprintf(api_url, sizeof(api_url), "CLOUDFLARE_API_URL=%s", cf.base_url);
	size_t n = 0;
	env[n++] = "CLOUDFLARE_API_TOKEN=" TEST_TOKEN;
	env[n++] = api_url;
	env[n++] = "EE_DOMAIN=" ZONE_NAME;
	env[n++] = "EE_DNS_TIMEOUT_SEC=5";
	for (size_t i = 0; extra && extra[i] && n < ENV_MAX - 1; i++)
		env[n++] = extra[i];
	env[n] = NULL;
}

/* ee-dns with args (NULL-terminated) and the base settings plus extra. */
static void run_dns(struct run *r, const char *const *args, const char *const *extra)
{
	char bin[320];
	snprintf(bin, sizeof(bin), "%s/ee-dns", stack_bin_dir());
	const char *argv[24] = {bin};
	size_t n = 1;
	for (size_t i = 0; args && args[i] && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	const char *env[ENV_MAX];
	base_env(env, extra);
	run_program(r, argv, env);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ENV(...) ((const char *const[]){__VA_ARGS__, NULL})

static int lines_with(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) + 1 : strlen(p);
		char line[1024];
		snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) ? len : sizeof(line) - 1), p);
		if (strstr(line, needle))
			n++;
		p += len;
	}
	return n;
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		if (len == n && memcmp(p, line, n) == 0)
			return true;
		p = eol ? eol + 1 : NULL;
	}
	return false;
}

#define CHECK_EXIT(r, want) \
	CHECK((r).status == (want), "exit %d, want %d; stderr: %s", (r).status, (want), \
	      test_printable((r).err))
#define CHECK_HAS(text, needle) \
	CHECK(strstr((text), (needle)) != NULL, "no \"%s\" in: %s", (needle), test_printable(text))
#define CHECK_LINE(text, line) \
	CHECK(has_line((text), (line)), "no line \"%s\" in: %s", (line), test_printable(text))

/* ---- the cases ------------------------------------------------------------ */

static void test_create_all(void)
{
	test_case("an empty zone gets all six records (A and AAAA of three names)");
	fakecf_serve(NULL, 0, FAULT_NONE);
	struct run r;
	run_dns(&r, ARGS("--ip", IP1, "--ipv6", IP6_1), NULL);
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.example.com A " IP1 " proxied created");
	CHECK_LINE(r.out, "control.example.com AAAA " IP6_1 " proxied created");
	CHECK_LINE(r.out, "control-direct.example.com A " IP1 " dns-only created");
	CHECK_LINE(r.out, "control-direct.example.com AAAA " IP6_1 " dns-only created");
	CHECK_LINE(r.out, "*.app.example.com A " IP1 " proxied created");
	CHECK_LINE(r.out, "*.app.example.com AAAA " IP6_1 " proxied created");
	CHECK_INT(lines_with(r.out, "\n"), 6);
	CHECK_INT(requests("POST "), 6);
	CHECK_INT(requests("PATCH "), 0);
	CHECK_INT(zone_count(), 6);
	CHECK_RECORD("A", "control.example.com", IP1, true, 1);
	CHECK_RECORD("AAAA", "control.example.com", IP6_1, true, 1);
	CHECK_RECORD("A", "control-direct.example.com", IP1, false, 1);
	CHECK_RECORD("AAAA", "control-direct.example.com", IP6_1, false, 1);
	CHECK_RECORD("A", "*.app.example.com", IP1, true, 1);
	CHECK_RECORD("AAAA", "*.app.example.com", IP6_1, true, 1);
	/* The zone by its name, the records by type and exact name. */
	CHECK_INT(requests("GET /client/v4/zones?name=example.com "), 1);
	CHECK_INT(requests("GET /client/v4/zones/" ZONE_ID "/dns_records?type=A&name=control.example.com "), 1);
	CHECK_INT(requests("GET /client/v4/zones/" ZONE_ID "/dns_records?type=AAAA&name=%2A.app.example.com "), 1);
	run_free(&r);

	test_case("a second run with the same settings changes nothing and writes nothing");
	fakecf_clear_log();
	run_dns(&r, ARGS("--ip", IP1, "--ipv6", IP6_1), NULL);
	CHECK_EXIT(r, 0);
	CHECK_INT(lines_with(r.out, " unchanged"), 6);
	CHECK_INT(writes(), 0);
	CHECK_INT(zone_count(), 6);
	run_free(&r);

	test_case("a new IPv4 address updates only the three A records, in place");
	fakecf_clear_log();
	struct fake_record before[FAKE_MAX_RECORDS];
	size_t n_before = zone_now(before, FAKE_MAX_RECORDS);
	run_dns(&r, ARGS("--ip", IP2, "--ipv6", IP6_1), NULL);
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.example.com A " IP2 " proxied updated (was " IP1 " proxied ttl auto)");
	CHECK_LINE(r.out, "control-direct.example.com A " IP2 " dns-only updated (was " IP1 " dns-only ttl auto)");
	CHECK_LINE(r.out, "*.app.example.com A " IP2 " proxied updated (was " IP1 " proxied ttl auto)");
	CHECK_INT(lines_with(r.out, " unchanged"), 3);
	CHECK_INT(requests("PATCH "), 3);
	CHECK_INT(requests("POST "), 0);
	CHECK_RECORD("A", "control.example.com", IP2, true, 1);
	CHECK_RECORD("AAAA", "control.example.com", IP6_1, true, 1);
	struct fake_record after[FAKE_MAX_RECORDS];
	size_t n_after = zone_now(after, FAKE_MAX_RECORDS);
	CHECK_INT(n_after, n_before);
	for (size_t i = 0; i < n_after && i < n_before; i++)
		CHECK_STR(after[i].id, before[i].id);
	run_free(&r);

	test_case("only --ipv6: the AAAA records are brought in line, the A records left alone");
	fakecf_clear_log();
	run_dns(&r, ARGS("--ipv6", IP6_2), NULL);
	CHECK_EXIT(r, 0);
	CHECK_INT(lines_with(r.out, " AAAA " IP6_2 " "), 3);
	CHECK_INT(lines_with(r.out, " A "), 0);
	CHECK_INT(requests("PATCH "), 3);
	CHECK_INT(requests("GET /client/v4/zones/" ZONE_ID "/dns_records?type=A&"), 0);
	CHECK_RECORD("A", "control.example.com", IP2, true, 1);
	CHECK_RECORD("AAAA", "control.example.com", IP6_2, true, 1);
	run_free(&r);
}

static void test_proxied(void)
{
	static const struct fake_record none[1];
	test_case("--dns-only makes every record DNS-only");
	fakecf_serve(none, 0, FAULT_NONE);
	struct run r;
	run_dns(&r, ARGS("--ip", IP1), NULL);
	CHECK_EXIT(r, 0);
	run_free(&r);
	fakecf_clear_log();
	run_dns(&r, ARGS("--ip", IP1, "--dns-only"), NULL);
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.example.com A " IP1 " dns-only updated (was " IP1 " proxied ttl auto)");
	CHECK_LINE(r.out, "control-direct.example.com A " IP1 " dns-only unchanged");
	CHECK_LINE(r.out, "*.app.example.com A " IP1 " dns-only updated (was " IP1 " proxied ttl auto)");
	CHECK_INT(requests("PATCH "), 2);
	CHECK_RECORD("A", "control.example.com", IP1, false, 1);
	CHECK_RECORD("A", "*.app.example.com", IP1, false, 1);
	run_free(&r);

	test_case("--proxied proxies control and *.app; control-direct stays DNS-only");
	fakecf_clear_log();
	run_dns(&r, ARGS("--ip", IP1, "--proxied"), ENV("EE_DNS_PROXIED=false"));
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.example.com A " IP1 " proxied updated (was " IP1 " dns-only ttl auto)");
	CHECK_LINE(r.out, "control-direct.example.com A " IP1 " dns-only unchanged");
	CHECK_RECORD("A", "control.example.com", IP1, true, 1);
	CHECK_RECORD("A", "control-direct.example.com", IP1, false, 1);
	CHECK_RECORD("A", "*.app.example.com", IP1, true, 1);
	run_free(&r);

	test_case("EE_DNS_PROXIED=false is --dns-only; the last of --proxied and --dns-only wins");
	fakecf_clear_log();
	run_dns(&r, ARGS("--ip", IP1), ENV("EE_DNS_PROXIED=false"));
	CHECK_EXIT(r, 0);
	CHECK_INT(lines_with(r.out, " dns-only "), 3);
	CHECK_RECORD("A", "control.example.com", IP1, false, 1);
	run_free(&r);
	run_dns(&r, ARGS("--ip", IP1, "--dns-only", "--proxied"), NULL);
	CHECK_EXIT(r, 0);
	CHECK_RECORD("A", "control.example.com", IP1, true, 1);
	CHECK_RECORD("A", "control-direct.example.com", IP1, false, 1);
	run_free(&r);

	test_case("a control-direct record found proxied is made DNS-only whatever --proxied says");
	struct fake_record seeded[] = {
		make_record(ZONE_ID, "aa00000000000000000000000000000a", "A",
		            "control-direct.example.com", IP1, true, 1),
	};
	fakecf_serve(seeded, 1, FAULT_NONE);
	run_dns(&r, ARGS("--ip", IP1, "--proxied"), NULL);
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control-direct.example.com A " IP1 " dns-only updated (was " IP1 " proxied ttl auto)");
	CHECK_RECORD("A", "control-direct.example.com", IP1, false, 1);
	run_free(&r);
}

static void test_ttl(void)
{
	test_case("--ttl sets DNS-only records' TTL; proxied ones stay automatic, and a rerun is unchanged");
	fakecf_serve(NULL, 0, FAULT_NONE);
	struct run r;
	run_dns(&r, ARGS("--ip", IP1, "--ttl", "300"), NULL);
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.example.com A " IP1 " proxied created");
	CHECK_LINE(r.out, "control-direct.example.com A " IP1 " dns-only created (ttl 300)");
	CHECK_RECORD("A", "control.example.com", IP1, true, 1);
	CHECK_RECORD("A", "control-direct.example.com", IP1, false, 300);
	run_free(&r);
	fakecf_clear_log();
	run_dns(&r, ARGS("--ip", IP1, "--ttl=300"), NULL);
	CHECK_EXIT(r, 0);
	CHECK_INT(lines_with(r.out, " unchanged"), 3);
	CHECK_INT(writes(), 0);
	run_free(&r);

	test_case("EE_DNS_TTL with --dns-only: every record gets it; --ttl wins over it");
	fakecf_clear_log();
	run_dns(&r, ARGS("--ip", IP1, "--dns-only"), ENV("EE_DNS_TTL=600"));
	CHECK_EXIT(r, 0);
	CHECK_RECORD("A", "control.example.com", IP1, false, 600);
	CHECK_RECORD("A", "control-direct.example.com", IP1, false, 600);
	CHECK_RECORD("A", "*.app.example.com", IP1, false, 600);
	CHECK_LINE(r.out, "control-direct.example.com A " IP1 " dns-only updated (ttl 600; was " IP1 " dns-only ttl 300)");
	run_free(&r);
	run_dns(&r, ARGS("--ip", IP1, "--dns-only", "--ttl", "1"), ENV("EE_DNS_TTL=600"));
	CHECK_EXIT(r, 0);
	CHECK_RECORD("A", "control.example.com", IP1, false, 1);
	run_free(&r);

	test_case("a TTL the zone's plan refuses is Cloudflare's error 9021, shown as such");
	fakecf_clear_log();
	run_dns(&r, ARGS("--ip", IP1, "--dns-only", "--ttl", "30"), NULL);
	CHECK_EXIT(r, 1);
	CHECK_HAS(r.err, "ee-dns: cloudflare error 9021: Invalid TTL. Must be between 60 and 86400 "
	                 "seconds, or 1 for Automatic. (PATCH /zones/" ZONE_ID "/dns_records/");
	/* It stops at the first refusal. */
	CHECK_INT(requests("PATCH "), 1);
	run_free(&r);
}

static void test_zones(void)
{
	struct run r;
	test_case("the zone by CLOUDFLARE_ZONE_NAME, the domain under it");
	fakecf_serve(NULL, 0, FAULT_NONE);
	run_dns(&r, ARGS("--ip", IP1), ENV("EE_DOMAIN=cp.example.com", "CLOUDFLARE_ZONE_NAME=example.com"));
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.cp.example.com A " IP1 " proxied created");
	CHECK_RECORD("A", "*.app.cp.example.com", IP1, true, 1);
	CHECK_INT(requests("GET /client/v4/zones?name=example.com "), 1);
	CHECK_INT(requests("GET /client/v4/zones?name=cp.example.com "), 0);
	run_free(&r);

	test_case("no zone given: the domain's own zone, else its nearest parent's");
	fakecf_serve(NULL, 0, FAULT_NONE);
	run_dns(&r, ARGS("--ip", IP1), ENV("EE_DOMAIN=Deep.CP.Example.com."));
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.deep.cp.example.com A " IP1 " proxied created");
	CHECK_INT(requests("GET /client/v4/zones?name=deep.cp.example.com "), 1);
	CHECK_INT(requests("GET /client/v4/zones?name=cp.example.com "), 1);
	CHECK_INT(requests("GET /client/v4/zones?name=example.com "), 1);
	CHECK_INT(requests("GET /client/v4/zones?name=com "), 0);
	run_free(&r);

	test_case("the zone by CLOUDFLARE_ZONE_ID: read by id, never searched by name");
	fakecf_serve(NULL, 0, FAULT_NONE);
	run_dns(&r, ARGS("--ip", IP1), ENV("EE_DOMAIN=example.org", "CLOUDFLARE_ZONE_ID=" OTHER_ZONE_ID));
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.example.org A " IP1 " proxied created");
	CHECK_INT(requests("GET /client/v4/zones/" OTHER_ZONE_ID " "), 1);
	CHECK_INT(requests("GET /client/v4/zones?"), 0);
	struct fake_record all[FAKE_MAX_RECORDS];
	size_t n = zone_now(all, FAKE_MAX_RECORDS);
	CHECK_INT(n, 3);
	for (size_t i = 0; i < n; i++)
		CHECK_STR(all[i].zone_id, OTHER_ZONE_ID);
	run_free(&r);

	test_case("--zone takes an id (32 hex digits) or a name, and wins over the variables");
	fakecf_serve(NULL, 0, FAULT_NONE);
	run_dns(&r, ARGS("--ip", IP1, "--zone", ZONE_ID),
	        ENV("CLOUDFLARE_ZONE_ID=" OTHER_ZONE_ID, "CLOUDFLARE_ZONE_NAME=example.org"));
	CHECK_EXIT(r, 0);
	CHECK_INT(requests("GET /client/v4/zones/" ZONE_ID " "), 1);
	CHECK_RECORD("A", "control.example.com", IP1, true, 1);
	run_free(&r);
	fakecf_clear_log();
	run_dns(&r, ARGS("--ip", IP1, "--zone=EXAMPLE.com"), ENV("CLOUDFLARE_ZONE_ID=" OTHER_ZONE_ID));
	CHECK_EXIT(r, 0);
	CHECK_INT(requests("GET /client/v4/zones?name=example.com "), 1);
	CHECK_INT(lines_with(r.out, " unchanged"), 3);
	run_free(&r);

	test_case("a zone id whose zone does not hold the domain is refused before any write");
	fakecf_serve(NULL, 0, FAULT_NONE);
	run_dns(&r, ARGS("--ip", IP1), ENV("CLOUDFLARE_ZONE_ID=" OTHER_ZONE_ID));
	CHECK_EXIT(r, 1);
	CHECK_HAS(r.err, "ee-dns: zone " OTHER_ZONE_ID " is example.org, which does not hold example.com");
	CHECK_INT(writes(), 0);
	CHECK_INT(requests("GET /client/v4/zones/" OTHER_ZONE_ID "/dns_records"), 0);
	run_free(&r);

	test_case("an unknown zone id is Cloudflare's error 7003");
	fakecf_serve(NULL, 0, FAULT_NONE);
	run_dns(&r, ARGS("--ip", IP1, "--zone", "0123456789abcdef0123456789abcdef"), NULL);
	CHECK_EXIT(r, 1);
	CHECK_HAS(r.err, "ee-dns: cloudflare error 7003: Could not route to "
	                 "/zones/0123456789abcdef0123456789abcdef, perhaps your object identifier is "
	                 "invalid? (GET /zones/0123456789abcdef0123456789abcdef)");
	run_free(&r);

	test_case("zone not found (an empty result) names the zone and fails");
	fakecf_serve(NULL, 0, FAULT_NONE);
	run_dns(&r, ARGS("--ip", IP1), ENV("EE_DOMAIN=example.net"));
	CHECK_EXIT(r, 1);
	CHECK_HAS(r.err, "ee-dns: zone not found: this token sees no zone named example.net or any parent of it (GET /zones)");
	CHECK_INT(writes(), 0);
	run_free(&r);
	run_dns(&r, ARGS("--ip", IP1, "--zone", "sub.example.net"), ENV("EE_DOMAIN=sub.example.net"));
	CHECK_EXIT(r, 1);
	CHECK_HAS(r.err, "ee-dns: zone not found: this token sees no zone named sub.example.net (GET /zones)");
	run_free(&r);

	test_case("a zone that is not active yet is used, with a warning");
	fakecf_serve(NULL, 0, FAULT_NONE);
	run_dns(&r, ARGS("--ip", IP1), ENV("EE_DOMAIN=pending.test"));
	CHECK_EXIT(r, 0);
	CHECK_HAS(r.err, "zone pending.test is pending, not active");
	CHECK_RECORD("A", "control.pending.test", IP1, true, 1);
	run_free(&r);
}

static void test_dry_run(void)
{
	struct run r;
	test_case("--dry-run on an empty zone says what it would create and writes nothing");
	fakecf_serve(NULL, 0, FAULT_NONE);
	run_dns(&r, ARGS("--ip", IP1, "--ipv6", IP6_1, "--dry-run"), NULL);
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.example.com A " IP1 " proxied would-create");
	CHECK_LINE(r.out, "control-direct.example.com AAAA " IP6_1 " dns-only would-create");
	CHECK_INT(lines_with(r.out, " would-create"), 6);
	CHECK_INT(writes(), 0);
	CHECK_INT(requests("GET "), 7);
	CHECK_INT(zone_count(), 0);
	run_free(&r);

	test_case("--dry-run with a changed address says what it would update and writes nothing");
	run_dns(&r, ARGS("--ip", IP1, "--ipv6", IP6_1), NULL);
	CHECK_EXIT(r, 0);
	run_free(&r);
	fakecf_clear_log();
	run_dns(&r, ARGS("--ip", IP2, "--ipv6", IP6_1, "--dry-run"), NULL);
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.example.com A " IP2 " proxied would-update (was " IP1 " proxied ttl auto)");
	CHECK_INT(lines_with(r.out, " would-update"), 3);
	CHECK_INT(lines_with(r.out, " unchanged"), 3);
	CHECK_INT(writes(), 0);
	CHECK_RECORD("A", "control.example.com", IP1, true, 1);
	run_free(&r);

	test_case("--dry-run still needs the token: it reads the zone");
	fakecf_clear_log();
	run_dns(&r, ARGS("--ip", IP1, "--dry-run"), ENV("CLOUDFLARE_API_TOKEN="));
	CHECK_EXIT(r, 2);
	CHECK_HAS(r.err, "ee-dns: missing_config:CLOUDFLARE_API_TOKEN");
	CHECK_INT(requests(""), 0);
	run_free(&r);
}

static void test_idempotent_edges(void)
{
	struct run r;
	test_case("several records of one name and type: the first is updated, the others kept, and it says so");
	struct fake_record seeded[] = {
		make_record(ZONE_ID, "bb00000000000000000000000000000b", "A", "control.example.com",
		            "192.0.2.1", true, 1),
		make_record(ZONE_ID, "cc00000000000000000000000000000c", "A", "control.example.com",
		            "192.0.2.2", true, 1),
	};
	fakecf_serve(seeded, 2, FAULT_NONE);
	run_dns(&r, ARGS("--ip", IP1), NULL);
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.example.com A " IP1 " proxied updated (was 192.0.2.1 proxied ttl auto)");
	CHECK_HAS(r.err, "control.example.com A has 2 records; updated bb00000000000000000000000000000b, the others are left as they are");
	CHECK_INT(requests("PATCH /client/v4/zones/" ZONE_ID "/dns_records/bb00000000000000000000000000000b "), 1);
	CHECK_INT(requests("PATCH /client/v4/zones/" ZONE_ID "/dns_records/cc"), 0);
	CHECK_INT(requests("DELETE "), 0);
	struct fake_record all[FAKE_MAX_RECORDS];
	size_t n = zone_now(all, FAKE_MAX_RECORDS);
	CHECK_INT(n, 4);
	CHECK_STR(all[0].content, IP1);
	CHECK_STR(all[1].content, "192.0.2.2");
	run_free(&r);

	test_case("with several, one that already matches counts as unchanged");
	fakecf_clear_log();
	run_dns(&r, ARGS("--ip", "192.0.2.2"), NULL);
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.example.com A 192.0.2.2 proxied unchanged");
	CHECK_HAS(r.err, "control.example.com A has 2 records; kept cc00000000000000000000000000000c");
	CHECK_INT(requests("PATCH /client/v4/zones/" ZONE_ID "/dns_records/bb"), 0);
	run_free(&r);

	test_case("an IPv6 address written differently is the same address: unchanged");
	struct fake_record v6[] = {
		make_record(ZONE_ID, "dd00000000000000000000000000000d", "AAAA", "control.example.com",
		            "2001:0DB8:0000::0007", true, 1),
	};
	fakecf_serve(v6, 1, FAULT_NONE);
	run_dns(&r, ARGS("--ipv6", "2001:db8:0:0:0:0:0:7"), NULL);
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.example.com AAAA " IP6_1 " proxied unchanged");
	CHECK_INT(requests("PATCH "), 0);
	CHECK_INT(requests("POST "), 2);
	run_free(&r);

	test_case("records of other names, types and zones are never touched");
	struct fake_record others[] = {
		make_record(ZONE_ID, "ee00000000000000000000000000000e", "A", "example.com", "192.0.2.9", true, 1),
		make_record(ZONE_ID, "ee00000000000000000000000000000f", "A", "shop.app.example.com", "192.0.2.9", false, 300),
		make_record(OTHER_ZONE_ID, "ee000000000000000000000000000010", "A", "control.example.org", "192.0.2.9", true, 1),
	};
	fakecf_serve(others, 3, FAULT_NONE);
	run_dns(&r, ARGS("--ip", IP1), NULL);
	CHECK_EXIT(r, 0);
	CHECK_INT(requests("PATCH "), 0);
	CHECK_INT(requests("POST "), 3);
	CHECK_RECORD("A", "example.com", "192.0.2.9", true, 1);
	CHECK_RECORD("A", "shop.app.example.com", "192.0.2.9", false, 300);
	CHECK_RECORD("A", "control.example.org", "192.0.2.9", true, 1);
	run_free(&r);
}

static void test_api_errors(void)
{
	struct run r;
	test_case("an invalid token: cloudflare error 9109 (HTTP 403), exit 1, nothing written");
	fakecf_serve(NULL, 0, FAULT_NONE);
	run_dns(&r, ARGS("--ip", IP1), ENV("CLOUDFLARE_API_TOKEN=not-the-right-token-but-long"));
	CHECK_EXIT(r, 1);
	CHECK_LINE(r.err, "ee-dns: cloudflare error 9109: Invalid access token (GET /zones)");
	CHECK(!strstr(r.err, "not-the-right-token"), "the token shows: %s", test_printable(r.err));
	CHECK_STR(r.out, "");
	CHECK_INT(writes(), 0);
	run_free(&r);

	test_case("cloudflare error 81057 (record already exists) on create is shown and fails");
	fakecf_serve(NULL, 0, FAULT_RECORD_EXISTS);
	run_dns(&r, ARGS("--ip", IP1), NULL);
	CHECK_EXIT(r, 1);
	CHECK_LINE(r.err, "ee-dns: cloudflare error 81057: Record already exists. (POST /zones/" ZONE_ID "/dns_records)");
	CHECK_INT(requests("POST "), 1);
	CHECK_INT(zone_count(), 0);
	run_free(&r);

	test_case("an error with a chain of finer errors shows the chain");
	fakecf_serve(NULL, 0, FAULT_ERROR_CHAIN);
	run_dns(&r, ARGS("--ip", IP1), NULL);
	CHECK_EXIT(r, 1);
	CHECK_LINE(r.err, "ee-dns: cloudflare error 6003: Invalid request headers: 6111 Invalid format "
	                  "for Authorization header (GET /zones)");
	run_free(&r);

	test_case("HTTP 500 with an HTML page is an HTTP error, not a JSON one");
	fakecf_serve(NULL, 0, FAULT_HTTP_500);
	run_dns(&r, ARGS("--ip", IP1), NULL);
	CHECK_EXIT(r, 1);
	CHECK_LINE(r.err, "ee-dns: cloudflare answered HTTP 500 without an API response (GET /zones)");
	CHECK(!strstr(r.err, "<html>"), "the page is shown: %s", test_printable(r.err));
	run_free(&r);

	test_case("malformed JSON with HTTP 200 is said to be malformed");
	fakecf_serve(NULL, 0, FAULT_MALFORMED);
	run_dns(&r, ARGS("--ip", IP1), NULL);
	CHECK_EXIT(r, 1);
	CHECK_LINE(r.err, "ee-dns: cloudflare answered malformed JSON (HTTP 200, GET /zones)");
	run_free(&r);

	test_case("JSON that is not an API answer, and success false without errors, each fail clearly");
	fakecf_serve(NULL, 0, FAULT_NOT_ENVELOPE);
	run_dns(&r, ARGS("--ip", IP1), NULL);
	CHECK_EXIT(r, 1);
	CHECK_LINE(r.err, "ee-dns: cloudflare answered JSON that is not an API response (HTTP 200, GET /zones)");
	run_free(&r);
	fakecf_serve(NULL, 0, FAULT_SUCCESS_FALSE);
	run_dns(&r, ARGS("--ip", IP1), NULL);
	CHECK_EXIT(r, 1);
	CHECK_LINE(r.err, "ee-dns: cloudflare refused the request with HTTP 200 and no error (GET /zones)");
	run_free(&r);

	test_case("an answer slower than EE_DNS_TIMEOUT_SEC is a timeout, given up on in time");
	fakecf_serve(NULL, 0, FAULT_SLOW);
	run_dns(&r, ARGS("--ip", IP1), ENV("EE_DNS_TIMEOUT_SEC=0.5"));
	CHECK_EXIT(r, 1);
	CHECK_LINE(r.err, "ee-dns: cloudflare did not answer within 0.5 s (GET /zones)");
	CHECK(r.ms < SLOW_ANSWER_MS / 2, "took %ld ms", r.ms);
	run_free(&r);

	test_case("nothing listening at CLOUDFLARE_API_URL: cannot reach cloudflare");
	fakecf_stop();
	int port = stack_free_port();
	char url[96];
	snprintf(url, sizeof(url), "CLOUDFLARE_API_URL=http://127.0.0.1:%d/client/v4", port);
	run_dns(&r, ARGS("--ip", IP1), ENV(url));
	CHECK_EXIT(r, 1);
	CHECK_HAS(r.err, "ee-dns: cannot reach cloudflare: ");
	CHECK_HAS(r.err, " (GET /zones)");
	run_free(&r);
}

static struct fakehttp echo;

static void test_auto_ip(void)
{
	static const struct fakehttp_route routes[] = {
		{.target = "/ip", .status = 200, .body = ECHO_IP "\n"},
		{.target = "/ipv6", .status = 200, .body = ECHO_IP6},
		{.target = "/html", .status = 200, .body = "<html>" ECHO_IP "</html>"},
		{.target = "/v4", .status = 200, .body = "203.0.113.99"},
		{.target = "/down", .status = 503, .body = "unavailable"},
		{.target = "/slow", .status = 200, .body = ECHO_IP, .delay_ms = SLOW_ANSWER_MS},
	};
	char log[340], ip_url[128], ipv6_url[128], html_url[128], down_url[128], v4_url[128],
		slow_url[128];
	snprintf(log, sizeof(log), "%s/echo.log", cf.dir);
	if (fakehttp_open(&echo, log) != 0 || fakehttp_serve(&echo, routes, sizeof(routes) / sizeof(routes[0])) != 0) {
		test_case("--auto-ip");
		test_fail(__FILE__, __LINE__, "cannot start the address echo");
		return;
	}
	snprintf(ip_url, sizeof(ip_url), "EE_DNS_IP_URL=%s/ip", echo.base_url);
	snprintf(ipv6_url, sizeof(ipv6_url), "EE_DNS_IPV6_URL=%s/ipv6", echo.base_url);
	snprintf(html_url, sizeof(html_url), "EE_DNS_IP_URL=%s/html", echo.base_url);
	snprintf(down_url, sizeof(down_url), "EE_DNS_IPV6_URL=%s/down", echo.base_url);
	snprintf(v4_url, sizeof(v4_url), "EE_DNS_IPV6_URL=%s/v4", echo.base_url);
	snprintf(slow_url, sizeof(slow_url), "EE_DNS_IPV6_URL=%s/slow", echo.base_url);
	struct run r;

	test_case("--auto-ip: both addresses from the echo services");
	fakecf_serve(NULL, 0, FAULT_NONE);
	run_dns(&r, ARGS("--auto-ip"), ENV(ip_url, ipv6_url));
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.example.com A " ECHO_IP " proxied created");
	CHECK_LINE(r.out, "control.example.com AAAA " ECHO_IP6 " proxied created");
	CHECK_RECORD("A", "*.app.example.com", ECHO_IP, true, 1);
	CHECK_RECORD("AAAA", "control-direct.example.com", ECHO_IP6, false, 1);
	CHECK_INT(fakehttp_count(&echo, "GET /ip "), 1);
	CHECK_INT(fakehttp_count(&echo, "GET /ipv6 "), 1);
	/* The echo is not Cloudflare: the token is not sent there. */
	CHECK_INT(fakehttp_count_header(&echo, "Authorization", NULL), 0);
	run_free(&r);

	test_case("EE_DNS_AUTO_IP=true is --auto-ip; a given address is not asked for");
	fakecf_clear_log();
	fakehttp_clear_log(&echo);
	run_dns(&r, NULL, ENV("EE_DNS_AUTO_IP=true", "EE_PUBLIC_IP=" IP1, ip_url, ipv6_url));
	CHECK_EXIT(r, 0);
	CHECK_RECORD("A", "control.example.com", IP1, true, 1);
	CHECK_RECORD("AAAA", "control.example.com", ECHO_IP6, true, 1);
	CHECK_INT(fakehttp_count(&echo, "GET /ip "), 0);
	CHECK_INT(fakehttp_count(&echo, "GET /ipv6 "), 1);
	run_free(&r);

	test_case("--auto-ip without IPv6 (the echo fails or answers IPv4): A records only, with a warning");
	fakecf_serve(NULL, 0, FAULT_NONE);
	run_dns(&r, ARGS("--auto-ip"), ENV(ip_url, down_url));
	CHECK_EXIT(r, 0);
	CHECK_INT(lines_with(r.out, " A " ECHO_IP " "), 3);
	CHECK_INT(lines_with(r.out, " AAAA "), 0);
	CHECK_HAS(r.err, "no public IPv6 address (");
	CHECK_HAS(r.err, "/down answered HTTP 503); AAAA records are left as they are");
	run_free(&r);
	run_dns(&r, ARGS("--auto-ip"), ENV(ip_url, v4_url));
	CHECK_EXIT(r, 0);
	CHECK_HAS(r.err, "/v4 did not answer with a public IPv6 address");
	CHECK_INT(lines_with(r.out, " AAAA "), 0);
	run_free(&r);

	test_case("--auto-ip that finds no address at all fails and changes nothing");
	fakecf_serve(NULL, 0, FAULT_NONE);
	run_dns(&r, ARGS("--auto-ip"), ENV(html_url, down_url));
	CHECK_EXIT(r, 1);
	CHECK_HAS(r.err, "ee-dns: no public IPv4 address: ");
	CHECK_HAS(r.err, "/html did not answer with a public IPv4 address");
	CHECK_HAS(r.err, "ee-dns: --auto-ip found no public address; nothing was changed");
	CHECK_INT(requests(""), 0);
	run_free(&r);

	test_case("--auto-ip: an echo slower than the timeout is given up on");
	run_dns(&r, ARGS("--auto-ip"), ENV(ip_url, slow_url, "EE_DNS_TIMEOUT_SEC=0.5"));
	CHECK_EXIT(r, 0);
	CHECK_HAS(r.err, "/slow did not answer within 0.5 s");
	CHECK(r.ms < SLOW_ANSWER_MS / 2, "took %ld ms", r.ms);
	run_free(&r);
	/* A fresh echo: the one serving is still sleeping on /slow. */
	if (fakehttp_serve(&echo, routes, sizeof(routes) / sizeof(routes[0])) != 0)
		test_fail(__FILE__, __LINE__, "cannot restart the address echo");
}

static void test_bad_input(void)
{
	static const struct {
		const char *what;
		const char *args[6];
		const char *env[4];
		const char *want;
	} cases[] = {
		{"an unknown flag", {"--ip", IP1, "--bogus"}, {NULL}, "unknown_option:--bogus"},
		{"a flag without its value", {"--ip"}, {NULL}, "missing_value:--ip"},
		{"a value for a flag that takes none", {"--ip", IP1, "--dry-run=yes"}, {NULL}, "unexpected_value:--dry-run"},
		{"--ip that is no address", {"--ip", "203.0.113.300"}, {NULL}, "invalid_argument:--ip"},
		{"--ip given an IPv6 address", {"--ip", IP6_1}, {NULL}, "invalid_argument:--ip"},
		{"--ipv6 given an IPv4 address", {"--ipv6", IP1}, {NULL}, "invalid_argument:--ipv6"},
		{"--ipv6 given an IPv4-mapped address", {"--ipv6", "::ffff:203.0.113.7"}, {NULL}, "invalid_argument:--ipv6"},
		{"--ip 0.0.0.0", {"--ip", "0.0.0.0"}, {NULL}, "invalid_argument:--ip"},
		{"--ip of a multicast group", {"--ip", "224.0.0.1"}, {NULL}, "invalid_argument:--ip"},
		{"--ip with trailing text", {"--ip", IP1 " x"}, {NULL}, "invalid_argument:--ip"},
		{"EE_PUBLIC_IP that is no address", {NULL}, {"EE_PUBLIC_IP=localhost"}, "invalid_config:EE_PUBLIC_IP"},
		{"EE_PUBLIC_IPV6 that is no address", {NULL}, {"EE_PUBLIC_IPV6=2001:db8::g"}, "invalid_config:EE_PUBLIC_IPV6"},
		{"no address and no --auto-ip", {NULL}, {NULL}, "missing_config:EE_PUBLIC_IP"},
		{"--ttl below the least", {"--ip", IP1, "--ttl", "5"}, {NULL}, "invalid_argument:--ttl"},
		{"--ttl above the most", {"--ip", IP1, "--ttl", "86401"}, {NULL}, "invalid_argument:--ttl"},
		{"--ttl that is no number", {"--ip", IP1, "--ttl", "5m"}, {NULL}, "invalid_argument:--ttl"},
		{"EE_DNS_TTL that is no number", {"--ip", IP1}, {"EE_DNS_TTL=auto"}, "invalid_config:EE_DNS_TTL"},
		{"EE_DNS_TTL of 0", {"--ip", IP1}, {"EE_DNS_TTL=0"}, "invalid_config:EE_DNS_TTL"},
		{"no EE_DOMAIN", {"--ip", IP1}, {"EE_DOMAIN="}, "missing_config:EE_DOMAIN"},
		{"EE_DOMAIN with a space", {"--ip", IP1}, {"EE_DOMAIN=exa mple.com"}, "invalid_config:EE_DOMAIN"},
		{"EE_DOMAIN of one label", {"--ip", IP1}, {"EE_DOMAIN=localhost"}, "invalid_config:EE_DOMAIN"},
		{"EE_DOMAIN with an empty label", {"--ip", IP1}, {"EE_DOMAIN=a..example.com"}, "invalid_config:EE_DOMAIN"},
		{"EE_DOMAIN with a wildcard", {"--ip", IP1}, {"EE_DOMAIN=*.example.com"}, "invalid_config:EE_DOMAIN"},
		{"--domain with a label starting with a hyphen", {"--ip", IP1, "--domain", "-a.example.com"}, {NULL}, "invalid_argument:--domain"},
		{"EE_DOMAIN too long for control-direct.<domain>",
		 {"--ip", IP1},
		 {"EE_DOMAIN=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com"},
		 "invalid_config:EE_DOMAIN"},
		{"no token", {"--ip", IP1}, {"CLOUDFLARE_API_TOKEN="}, "missing_config:CLOUDFLARE_API_TOKEN"},
		{"a token with a space", {"--ip", IP1}, {"CLOUDFLARE_API_TOKEN=two words"}, "invalid_config:CLOUDFLARE_API_TOKEN"},
		{"CLOUDFLARE_ZONE_ID that is no id", {"--ip", IP1}, {"CLOUDFLARE_ZONE_ID=example.com"}, "invalid_config:CLOUDFLARE_ZONE_ID"},
		{"CLOUDFLARE_ZONE_NAME that does not hold the domain", {"--ip", IP1}, {"CLOUDFLARE_ZONE_NAME=example.org"}, "invalid_config:CLOUDFLARE_ZONE_NAME"},
		{"--zone that does not hold the domain", {"--ip", IP1, "--zone", "ample.com"}, {NULL}, "invalid_argument:--zone"},
		{"--zone that is neither id nor name", {"--ip", IP1, "--zone", "zone/../x"}, {NULL}, "invalid_argument:--zone"},
		{"CLOUDFLARE_API_URL of another scheme", {"--ip", IP1}, {"CLOUDFLARE_API_URL=ftp://127.0.0.1/"}, "invalid_config:CLOUDFLARE_API_URL"},
		{"CLOUDFLARE_API_URL with a query", {"--ip", IP1}, {"CLOUDFLARE_API_URL=http://127.0.0.1/?x=1"}, "invalid_config:CLOUDFLARE_API_URL"},
		{"EE_DNS_PROXIED that is no boolean", {"--ip", IP1}, {"EE_DNS_PROXIED=maybe"}, "invalid_config:EE_DNS_PROXIED"},
		{"EE_DNS_AUTO_IP that is no boolean", {NULL}, {"EE_DNS_AUTO_IP=2"}, "invalid_config:EE_DNS_AUTO_IP"},
		{"EE_DNS_IP_URL that is no URL", {"--auto-ip"}, {"EE_DNS_IP_URL=api.ipify.org"}, "invalid_config:EE_DNS_IP_URL"},
		{"EE_DNS_TIMEOUT_SEC that is negative", {"--ip", IP1}, {"EE_DNS_TIMEOUT_SEC=-1"}, "invalid_config:EE_DNS_TIMEOUT_SEC"},
		{"EE_LOG_LEVEL unknown", {"--ip", IP1}, {"EE_LOG_LEVEL=loud"}, "invalid_config:EE_LOG_LEVEL"},
	};
	fakecf_serve(NULL, 0, FAULT_NONE);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("refused with exit 2 and nothing sent: %s", cases[i].what);
		fakecf_clear_log();
		struct run r;
		run_dns(&r, cases[i].args, cases[i].env);
		CHECK_EXIT(r, 2);
		char want[256];
		snprintf(want, sizeof(want), "ee-dns: %s", cases[i].want);
		CHECK_LINE(r.err, want);
		CHECK_STR(r.out, "");
		CHECK_INT(requests(""), 0);
		run_free(&r);
	}

	test_case("--help prints the usage on standard output and exits 0, with no settings");
	struct run r;
	char bin[320];
	snprintf(bin, sizeof(bin), "%s/ee-dns", stack_bin_dir());
	run_program(&r, (const char *const[]){bin, "--help", NULL}, NULL);
	CHECK_EXIT(r, 0);
	CHECK_HAS(r.out, "usage: ee-dns ");
	CHECK_HAS(r.out, "control-direct");
	CHECK_HAS(r.out, "CLOUDFLARE_API_TOKEN");
	CHECK_STR(r.err, "");
	run_free(&r);
}

static void test_token_never_shown(void)
{
	test_case("the token never appears in any output, debug logging included");
	fakecf_serve(NULL, 0, FAULT_NONE);
	struct run r;
	run_dns(&r, ARGS("--ip", IP1, "--ipv6", IP6_1), ENV("EE_LOG_LEVEL=debug"));
	CHECK_EXIT(r, 0);
	CHECK_HAS(r.err, "GET /zones?name=example.com");
	run_free(&r);
	fakecf_serve(NULL, 0, FAULT_ERROR_CHAIN);
	run_dns(&r, ARGS("--ip", IP1), ENV("EE_LOG_LEVEL=debug"));
	CHECK_EXIT(r, 1);
	run_free(&r);
	buf_append(&all_output, "", 0);
	CHECK(all_output.data && !strstr(all_output.data, TEST_TOKEN), "the token shows");
	CHECK(all_output.len > 1000, "only %zu bytes of output seen", all_output.len);
}

/* Copies a file, executable; 0 or -1. */
static int copy_executable(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	int rc = (in >= 0 && out >= 0) ? 0 : -1;
	char chunk[65536];
	ssize_t n;
	while (rc == 0 && (n = read(in, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(out, chunk, (size_t)n) != n)
			rc = -1;
	}
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0)
		rc = -1;
	return rc;
}

static void test_on_start(void)
{
	char bin_dir[300], ip_url[128], ipv6_url[128];
	snprintf(bin_dir, sizeof(bin_dir), "EE_BIN_DIR=%s", stack_bin_dir());
	snprintf(ip_url, sizeof(ip_url), "EE_DNS_IP_URL=%s/ip", echo.base_url);
	snprintf(ipv6_url, sizeof(ipv6_url), "EE_DNS_IPV6_URL=%s/ipv6", echo.base_url);
	const char *argv[] = {"/bin/sh", "deploy/ee-dns-on-start", NULL};
	struct run r;

	test_case("ee-dns-on-start does nothing when EE_DNS_UPDATE_ON_START is unset or false");
	fakecf_serve(NULL, 0, FAULT_NONE);
	const char *env[ENV_MAX];
	base_env(env, ENV(bin_dir, ip_url, ipv6_url, "EE_DNS_AUTO_IP=true"));
	run_program(&r, argv, env);
	CHECK_EXIT(r, 0);
	CHECK_STR(r.out, "");
	run_free(&r);
	base_env(env, ENV(bin_dir, ip_url, ipv6_url, "EE_DNS_AUTO_IP=true", "EE_DNS_UPDATE_ON_START=false"));
	run_program(&r, argv, env);
	CHECK_EXIT(r, 0);
	run_free(&r);
	CHECK_INT(requests(""), 0);
	CHECK_INT(zone_count(), 0);

	test_case("ee-dns-on-start updates when EE_DNS_UPDATE_ON_START=true, honouring EE_DNS_AUTO_IP and EE_DNS_PROXIED");
	base_env(env, ENV(bin_dir, ip_url, ipv6_url, "EE_DNS_UPDATE_ON_START=true",
	                  "EE_DNS_AUTO_IP=true", "EE_DNS_PROXIED=false"));
	run_program(&r, argv, env);
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.example.com A " ECHO_IP " dns-only created");
	CHECK_RECORD("A", "*.app.example.com", ECHO_IP, false, 1);
	CHECK_RECORD("AAAA", "control.example.com", ECHO_IP6, false, 1);
	CHECK_INT(zone_count(), 6);
	run_free(&r);

	test_case("installed beside ee-dns (deploy/install), ee-dns-on-start finds it with a bare PATH");
	char installed[320], script[340], dns[340];
	snprintf(installed, sizeof(installed), "%s/installed", cf.dir);
	snprintf(script, sizeof(script), "%s/ee-dns-on-start", installed);
	snprintf(dns, sizeof(dns), "%s/ee-dns", installed);
	char built[320];
	snprintf(built, sizeof(built), "%s/ee-dns", stack_bin_dir());
	CHECK(mkdir(installed, 0700) == 0 || errno == EEXIST);
	CHECK(copy_executable("deploy/ee-dns-on-start", script) == 0);
	CHECK(copy_executable(built, dns) == 0);
	fakecf_clear_log();
	base_env(env, ENV("PATH=/nonexistent", "EE_DNS_UPDATE_ON_START=TRUE", "EE_PUBLIC_IP=" IP2));
	run_program(&r, (const char *const[]){"/bin/sh", script, "--dry-run", NULL}, env);
	CHECK_EXIT(r, 0);
	CHECK_LINE(r.out, "control.example.com A " IP2 " proxied would-update (was " ECHO_IP " dns-only ttl auto)");
	CHECK_INT(writes(), 0);
	run_free(&r);

	test_case("ee-dns-on-start passes ee-dns's failure on, and refuses an unknown EE_DNS_UPDATE_ON_START");
	base_env(env, ENV(bin_dir, "EE_DNS_UPDATE_ON_START=yes", "CLOUDFLARE_API_TOKEN=wrong-token-0000000000"));
	run_program(&r, argv, env);
	CHECK_EXIT(r, 2);
	CHECK_HAS(r.err, "missing_config:EE_PUBLIC_IP");
	run_free(&r);
	base_env(env, ENV(bin_dir, "EE_DNS_UPDATE_ON_START=On", "EE_PUBLIC_IP=" IP1,
	                  "CLOUDFLARE_API_TOKEN=wrong-token-0000000000"));
	run_program(&r, argv, env);
	CHECK_EXIT(r, 1);
	CHECK_HAS(r.err, "cloudflare error 9109");
	run_free(&r);
	base_env(env, ENV(bin_dir, "EE_DNS_UPDATE_ON_START=sometimes", "EE_PUBLIC_IP=" IP1));
	fakecf_clear_log();
	run_program(&r, argv, env);
	CHECK_EXIT(r, 2);
	CHECK_LINE(r.err, "ee-dns-on-start: invalid_config:EE_DNS_UPDATE_ON_START");
	CHECK_INT(requests(""), 0);
	run_free(&r);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	buf_init(&all_output);
	if (fakecf_open() != 0) {
		test_case("setup");
		test_fail(__FILE__, __LINE__, "cannot start the fake Cloudflare API: %s", strerror(errno));
		return test_finish();
	}
	test_create_all();
	test_proxied();
	test_ttl();
	test_zones();
	test_dry_run();
	test_idempotent_edges();
	test_api_errors();
	test_auto_ip();
	test_bad_input();
	test_token_never_shown();
	test_on_start();
	fakecf_stop();
	fakehttp_close(&echo);
	close(cf.listen_fd);
	int rc = test_finish();
	if (rc == 0 && !getenv("EE_TEST_KEEP"))
		stack_remove_dir(cf.dir);
	buf_free(&all_output);
	return rc;
}
