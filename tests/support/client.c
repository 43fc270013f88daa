/* client.c - libcurl requests for tests; see client.h. */
#include "client.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

struct sink {
	char *data;
	size_t len;
};

static size_t collect(char *ptr, size_t size, size_t n, void *userdata)
{
	struct sink *s = userdata;
	size_t add = size * n;
	char *p = realloc(s->data, s->len + add + 1);
	if (!p)
		return 0;
	memcpy(p + s->len, ptr, add);
	s->data = p;
	s->len += add;
	s->data[s->len] = '\0';
	return add;
}

int http_do(const char *method, const char *url, const char *const *headers, const void *body,
            size_t body_len, struct http_result *out)
{
	memset(out, 0, sizeof(*out));
	CURL *curl = curl_easy_init();
	if (!curl)
		return -1;
	struct sink body_sink = {0}, head_sink = {0};
	struct curl_slist *list = NULL;
	for (int i = 0; headers && headers[i]; i++)
		list = curl_slist_append(list, headers[i]);
	/* libcurl adds "Expect: 100-continue" to large bodies; nothing here wants it. */
	list = curl_slist_append(list, "Expect:");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body_sink);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &head_sink);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	if (body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	CURLcode rc = curl_easy_perform(curl);
	out->curl_code = (int)rc;
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
	curl_slist_free_all(list);
	curl_easy_cleanup(curl);
	out->body = body_sink.data ? body_sink.data : calloc(1, 1);
	out->body_len = body_sink.len;
	out->headers = head_sink.data ? head_sink.data : calloc(1, 1);
	if (out->body_len)
		out->json = json_tokener_parse(out->body);
	return rc == CURLE_OK ? 0 : -1;
}

void http_result_free(struct http_result *r)
{
	free(r->body);
	free(r->headers);
	json_object_put(r->json);
	memset(r, 0, sizeof(*r));
}

const char *http_json_string(const struct http_result *r, const char *key)
{
	struct json_object *v;
	if (!r->json || !json_object_object_get_ex(r->json, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

long long http_json_int(const struct http_result *r, const char *key, long long def)
{
	struct json_object *v;
	if (!r->json || !json_object_object_get_ex(r->json, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return def;
	return json_object_get_int64(v);
}

bool http_json_bool(const struct http_result *r, const char *key, bool def)
{
	struct json_object *v;
	if (!r->json || !json_object_object_get_ex(r->json, key, &v) ||
	    !json_object_is_type(v, json_type_boolean))
		return def;
	return json_object_get_boolean(v);
}

const char *http_reason(const struct http_result *r)
{
	const char *e = http_json_string(r, "error");
	return e ? e : http_json_string(r, "reason");
}

bool http_header(const struct http_result *r, const char *name, char *out, size_t out_size)
{
	size_t n = strlen(name);
	const char *p = r->headers;
	while (p && *p) {
		const char *eol = strstr(p, "\r\n");
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			while (*v == ' ')
				v++;
			size_t vlen = len - (size_t)(v - p);
			if (vlen >= out_size)
				vlen = out_size - 1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return true;
		}
		p = eol ? eol + 2 : NULL;
	}
	return false;
}
