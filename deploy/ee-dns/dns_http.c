/* dns_http.c - one bounded HTTP request with libcurl; see dns_http.h. */
#include "dns_http.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fetch.h"

void dns_http_response_init(struct dns_http_response *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body);
}

void dns_http_response_free(struct dns_http_response *r)
{
	buf_free(&r->body);
	memset(r, 0, sizeof(*r));
}

/* The header list holds a copy of the token: wiped before it is freed. */
static void headers_free(struct curl_slist *list)
{
	for (struct curl_slist *h = list; h; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(list);
}

static int headers_add(struct curl_slist **list, const char *line)
{
	struct curl_slist *next = curl_slist_append(*list, line);
	if (!next)
		return -1;
	*list = next;
	return 0;
}

enum dns_http_result dns_http_send(CURL *curl, const struct dns_http_request *req,
                                   struct dns_http_response *resp)
{
	resp->status = 0;
	resp->error[0] = '\0';
	buf_reset(&resp->body);
	/* An empty answer is still a string: buf_reserve alone leaves no terminator. */
	if (buf_append(&resp->body, "", 0) != 0)
		return DNS_HTTP_NO_MEMORY;
	curl_easy_reset(curl);

	struct curl_slist *headers = NULL;
	/* "Expect:" stops curl from waiting for a 100 Continue before a body. */
	if (headers_add(&headers, "Accept: application/json") != 0 ||
	    (req->json_body && headers_add(&headers, "Content-Type: application/json") != 0) ||
	    (req->json_body && headers_add(&headers, "Expect:") != 0) ||
	    (req->authorization && headers_add(&headers, req->authorization) != 0)) {
		headers_free(headers);
		return DNS_HTTP_NO_MEMORY;
	}

	struct fetch_sink sink = {.body = &resp->body, .max = req->max_body_bytes};
	long connect_ms = req->timeout_ms < DNS_HTTP_CONNECT_TIMEOUT_MS ? req->timeout_ms
	                                                                : DNS_HTTP_CONNECT_TIMEOUT_MS;
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                          \
	do {                                                   \
		if (rc == CURLE_OK)                            \
			rc = curl_easy_setopt(curl, opt, val); \
	} while (0)
	SET(CURLOPT_URL, req->url);
	if (req->json_body) {
		SET(CURLOPT_POSTFIELDS, req->json_body);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(req->json_body));
	} else {
		SET(CURLOPT_HTTPGET, 1L);
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0)
		SET(CURLOPT_CUSTOMREQUEST, req->method);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_USERAGENT, FETCH_USER_AGENT);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	SET(CURLOPT_TIMEOUT_MS, req->timeout_ms);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_body_bytes);
	SET(CURLOPT_WRITEFUNCTION, fetch_sink_write);
	SET(CURLOPT_WRITEDATA, &sink);
	SET(CURLOPT_ERRORBUFFER, resp->error);
#undef SET
	if (rc == CURLE_OK)
		rc = curl_easy_perform(curl);
	else
		snprintf(resp->error, sizeof(resp->error), "%s", curl_easy_strerror(rc));
	/* The handle keeps no pointer to anything of this call past it. */
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, NULL);
	headers_free(headers);

	if (sink.no_memory || resp->body.failed || rc == CURLE_OUT_OF_MEMORY)
		return DNS_HTTP_NO_MEMORY;
	if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED)
		return DNS_HTTP_TOO_LARGE;
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return DNS_HTTP_TIMEOUT;
	if (rc != CURLE_OK) {
		if (resp->error[0] == '\0')
			snprintf(resp->error, sizeof(resp->error), "%s", curl_easy_strerror(rc));
		return DNS_HTTP_NETWORK;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
	return DNS_HTTP_OK;
}
