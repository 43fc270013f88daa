/*
 * dns_http.h - one HTTP request with libcurl, as ee-dns makes them: any
 * method, an optional JSON body and Authorization header, a total time
 * limit, a body size limit enforced while the body arrives, http and https
 * only, no redirects (an API that redirects is misconfigured, and the
 * token must not follow), and curl's own words when the request fails.
 * lib/fetch.c does the same for GETs only; ee-dns also writes.
 */
#ifndef EE_DNS_HTTP_H
#define EE_DNS_HTTP_H

#include <stddef.h>

#include <curl/curl.h>

#include "util.h"

#define DNS_HTTP_CONNECT_TIMEOUT_MS 10000L

enum dns_http_result {
	DNS_HTTP_OK = 0,    /* an answer arrived: look at its status */
	DNS_HTTP_TIMEOUT,   /* no whole answer within timeout_ms */
	DNS_HTTP_NETWORK,   /* name resolution, connection, TLS or protocol; see error */
	DNS_HTTP_TOO_LARGE, /* the body is over max_body_bytes */
	DNS_HTTP_NO_MEMORY,
};

struct dns_http_request {
	const char *method;        /* "GET", "POST" or "PATCH" */
	const char *url;
	const char *authorization; /* a whole "Authorization: ..." line, or NULL */
	const char *json_body;     /* sent as application/json, or NULL */
	long timeout_ms;
	size_t max_body_bytes;
};

struct dns_http_response {
	long status;
	struct buf body;                /* always NUL-terminated */
	char error[CURL_ERROR_SIZE];    /* curl's explanation when not DNS_HTTP_OK */
};

void dns_http_response_init(struct dns_http_response *r);
void dns_http_response_free(struct dns_http_response *r);

/* Sends req on curl (reset first; its connection cache survives). */
enum dns_http_result dns_http_send(CURL *curl, const struct dns_http_request *req,
                                   struct dns_http_response *resp);

#endif
