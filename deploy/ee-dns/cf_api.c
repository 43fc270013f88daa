/* cf_api.c - the Cloudflare API v4 calls of ee-dns; see cf_api.h. */
#include "cf_api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_http.h"
#include "jsonutil.h"
#include "log.h"

static void error_add_v(struct cf_client *c, const char *fmt, va_list ap)
{
	size_t used = strlen(c->error);
	if (used + 2 >= sizeof(c->error))
		return;
	vsnprintf(c->error + used, sizeof(c->error) - used - 1, fmt, ap);
	used = strlen(c->error);
	c->error[used] = '\n';
	c->error[used + 1] = '\0';
}

static void error_add(struct cf_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void error_add(struct cf_client *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_add_v(c, fmt, ap);
	va_end(ap);
}

void cf_client_fail(struct cf_client *c, const char *fmt, ...)
{
	c->error[0] = '\0';
	va_list ap;
	va_start(ap, fmt);
	error_add_v(c, fmt, ap);
	va_end(ap);
}

int cf_client_init(struct cf_client *c, const char *api_url, const char *token, long timeout_ms)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->api_url, sizeof(c->api_url), "%s", api_url);
	c->timeout_ms = timeout_ms;
	static const char prefix[] = "Authorization: Bearer ";
	size_t n = sizeof(prefix) + strlen(token);
	c->authorization = malloc(n);
	c->curl = curl_easy_init();
	if (!c->authorization || !c->curl) {
		cf_client_fail(c, "cannot start: out of memory or no libcurl");
		return -1;
	}
	snprintf(c->authorization, n, "%s%s", prefix, token);
	return 0;
}

void cf_client_destroy(struct cf_client *c)
{
	if (c->authorization) {
		explicit_bzero(c->authorization, strlen(c->authorization));
		free(c->authorization);
	}
	if (c->curl)
		curl_easy_cleanup(c->curl);
	memset(c, 0, sizeof(*c));
}

/* curl's message, printable only: it is shown as it is. */
static void printable_copy(char *dst, size_t size, const char *src)
{
	size_t i = 0;
	for (; src[i] && i + 1 < size; i++)
		dst[i] = ((unsigned char)src[i] >= 0x20 && (unsigned char)src[i] <= 0x7e) ? src[i] : '?';
	dst[i] = '\0';
	while (i > 0 && dst[i - 1] == ' ')
		dst[--i] = '\0';
}

/* Every error of a refusal, one line each, as Cloudflare numbered and worded it. */
static void report_refusal(struct cf_client *c, const struct cf_response *r, long status,
                           const char *method, const char *path)
{
	c->error[0] = '\0';
	for (size_t i = 0; i < r->error_count && i < CF_ERRORS_KEPT; i++)
		error_add(c, "cloudflare error %ld: %s (%s %s)", r->errors[i].code,
		          r->errors[i].text[0] ? r->errors[i].text : "(no message)", method, path);
	if (r->error_count > CF_ERRORS_KEPT)
		error_add(c, "and %zu more errors from cloudflare (%s %s)",
		          r->error_count - CF_ERRORS_KEPT, method, path);
	if (r->error_count == 0)
		error_add(c, "cloudflare refused the request with HTTP %ld and no error (%s %s)", status,
		          method, path);
}

/*
 * One request: path is what messages show ("/zones"), query follows it in
 * the URL only.  0 with *out holding a successful answer (free it), or -1
 * with c->error saying why.
 */
static int cf_call(struct cf_client *c, const char *method, const char *path, const char *query,
                   const char *json_body, struct cf_response *out)
{
	memset(out, 0, sizeof(*out));
	char url[DNS_URL_MAX + 1024];
	int n = snprintf(url, sizeof(url), "%s%s%s", c->api_url, path, query ? query : "");
	if (n < 0 || (size_t)n >= sizeof(url)) {
		cf_client_fail(c, "request too long (%s %s)", method, path);
		return -1;
	}
	struct dns_http_request req = {
		.method = method,
		.url = url,
		.authorization = c->authorization,
		.json_body = json_body,
		.timeout_ms = c->timeout_ms,
		.max_body_bytes = CF_MAX_ANSWER_BYTES,
	};
	struct dns_http_response resp;
	dns_http_response_init(&resp);
	log_debug("%s %s%s", method, path, query ? query : "");
	enum dns_http_result sent = dns_http_send(c->curl, &req, &resp);
	int rc = -1;
	char why[CURL_ERROR_SIZE];
	switch (sent) {
	case DNS_HTTP_OK:
		break;
	case DNS_HTTP_TIMEOUT:
		cf_client_fail(c, "cloudflare did not answer within %g s (%s %s)",
		               (double)c->timeout_ms / 1000.0, method, path);
		goto out;
	case DNS_HTTP_NETWORK:
		printable_copy(why, sizeof(why), resp.error);
		cf_client_fail(c, "cannot reach cloudflare: %s (%s %s)", why, method, path);
		goto out;
	case DNS_HTTP_TOO_LARGE:
		cf_client_fail(c, "cloudflare answered more than %d bytes (%s %s)", CF_MAX_ANSWER_BYTES,
		               method, path);
		goto out;
	case DNS_HTTP_NO_MEMORY:
		cf_client_fail(c, "out of memory (%s %s)", method, path);
		goto out;
	}
	log_debug("%s %s: HTTP %ld, %zu bytes", method, path, resp.status, resp.body.len);
	bool ok_status = resp.status >= 200 && resp.status < 300;
	switch (cf_response_parse(resp.body.data, resp.body.len, out)) {
	case CF_PARSE_OK:
		break;
	case CF_PARSE_NOT_JSON:
		if (ok_status)
			cf_client_fail(c, "cloudflare answered malformed JSON (HTTP %ld, %s %s)",
			               resp.status, method, path);
		else
			cf_client_fail(c, "cloudflare answered HTTP %ld without an API response (%s %s)",
			               resp.status, method, path);
		goto out;
	case CF_PARSE_NOT_ENVELOPE:
		if (ok_status)
			cf_client_fail(c, "cloudflare answered JSON that is not an API response "
			                  "(HTTP %ld, %s %s)",
			               resp.status, method, path);
		else
			cf_client_fail(c, "cloudflare answered HTTP %ld without an API response (%s %s)",
			               resp.status, method, path);
		goto out;
	}
	if (!out->success || !ok_status) {
		report_refusal(c, out, resp.status, method, path);
		cf_response_free(out);
		goto out;
	}
	rc = 0;
out:
	dns_http_response_free(&resp);
	return rc;
}

static int unexpected(struct cf_client *c, struct cf_response *r, const char *method,
                      const char *path)
{
	cf_client_fail(c, "cloudflare answered with a result of an unexpected shape (%s %s)", method,
	               path);
	cf_response_free(r);
	return -1;
}

/* Appends "?key=value" (or "&key=value") with value percent-encoded; -1 if no room or memory. */
static int query_add(CURL *curl, char *out, size_t size, const char *key, const char *value)
{
	char *escaped = curl_easy_escape(curl, value, 0);
	if (!escaped)
		return -1;
	size_t used = strlen(out);
	int n = snprintf(out + used, size - used, "%c%s=%s", used ? '&' : '?', key, escaped);
	curl_free(escaped);
	return (n < 0 || (size_t)n >= size - used) ? -1 : 0;
}

int cf_zone_find(struct cf_client *c, const char *name, struct cf_zone *zone)
{
	char query[CF_NAME_MAX * 3 + 16] = "";
	if (query_add(c->curl, query, sizeof(query), "name", name) != 0) {
		cf_client_fail(c, "out of memory (GET /zones)");
		return -1;
	}
	struct cf_response r;
	if (cf_call(c, "GET", "/zones", query, NULL, &r) != 0)
		return -1;
	size_t count;
	if (cf_zones_from_result(r.result, zone, 1, &count) != 0)
		return unexpected(c, &r, "GET", "/zones");
	cf_response_free(&r);
	if (count == 0) {
		cf_client_fail(c, "zone not found: this token sees no zone named %s (GET /zones)", name);
		return 1;
	}
	if (count > 1)
		log_warn("%zu zones are named %s; using the first, %s", count, name, zone->id);
	return 0;
}

int cf_zone_get(struct cf_client *c, const char *zone_id, struct cf_zone *zone)
{
	char path[CF_ID_MAX + 16];
	snprintf(path, sizeof(path), "/zones/%s", zone_id);
	struct cf_response r;
	if (cf_call(c, "GET", path, NULL, NULL, &r) != 0)
		return -1;
	if (cf_zone_from_object(r.result, zone) != 0)
		return unexpected(c, &r, "GET", path);
	cf_response_free(&r);
	return 0;
}

int cf_records_list(struct cf_client *c, const char *zone_id, const char *type,
                    const char *name, struct cf_record *out, size_t max, size_t *count)
{
	char path[CF_ID_MAX + 32];
	snprintf(path, sizeof(path), "/zones/%s/dns_records", zone_id);
	char query[CF_NAME_MAX * 3 + 64] = "";
	if (query_add(c->curl, query, sizeof(query), "type", type) != 0 ||
	    query_add(c->curl, query, sizeof(query), "name", name) != 0) {
		cf_client_fail(c, "out of memory (GET %s)", path);
		return -1;
	}
	struct cf_response r;
	if (cf_call(c, "GET", path, query, NULL, &r) != 0)
		return -1;
	if (cf_records_from_result(r.result, out, max, count) != 0)
		return unexpected(c, &r, "GET", path);
	cf_response_free(&r);
	return 0;
}

/* The fields Cloudflare documents for creating and updating an A or AAAA record. */
static char *record_body(const struct cf_record *want)
{
	struct json_object *obj = json_object_new_object();
	if (!obj)
		return NULL;
	json_put_string(obj, "type", want->type);
	json_put_string(obj, "name", want->name);
	json_put_string(obj, "content", want->content);
	json_put_int(obj, "ttl", want->ttl);
	json_put_bool(obj, "proxied", want->proxied);
	size_t len;
	const char *text = json_text(obj, &len);
	char *copy = text ? strdup(text) : NULL;
	json_object_put(obj);
	return copy;
}

static int write_record(struct cf_client *c, const char *method, const char *path,
                        const struct cf_record *want)
{
	char *body = record_body(want);
	if (!body) {
		cf_client_fail(c, "out of memory (%s %s)", method, path);
		return -1;
	}
	struct cf_response r;
	int rc = cf_call(c, method, path, NULL, body, &r);
	free(body);
	if (rc != 0)
		return -1;
	struct cf_record written;
	if (cf_record_from_object(r.result, &written) != 0)
		return unexpected(c, &r, method, path);
	cf_response_free(&r);
	return 0;
}

int cf_record_create(struct cf_client *c, const char *zone_id, const struct cf_record *want)
{
	char path[CF_ID_MAX + 32];
	snprintf(path, sizeof(path), "/zones/%s/dns_records", zone_id);
	return write_record(c, "POST", path, want);
}

int cf_record_update(struct cf_client *c, const char *zone_id, const char *record_id,
                     const struct cf_record *want)
{
	char path[2 * CF_ID_MAX + 32];
	snprintf(path, sizeof(path), "/zones/%s/dns_records/%s", zone_id, record_id);
	return write_record(c, "PATCH", path, want);
}
