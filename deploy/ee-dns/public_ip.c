/* public_ip.c - asking an echo service for our public address; see public_ip.h. */
#include "public_ip.h"

#include <stdio.h>
#include <string.h>

#include "dns_http.h"
#include "ee_dns.h"
#include "log.h"

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

int public_ip_discover(CURL *curl, const char *url, int family, long timeout_ms, char *out,
                       size_t out_size, char *why, size_t why_size)
{
	const char *what = family == AF_INET ? "IPv4" : "IPv6";
	struct dns_http_request req = {
		.method = "GET",
		.url = url,
		.timeout_ms = timeout_ms,
		.max_body_bytes = PUBLIC_IP_MAX_ANSWER,
	};
	struct dns_http_response resp;
	dns_http_response_init(&resp);
	log_debug("GET %s for the public %s address", url, what);
	int rc = -1;
	switch (dns_http_send(curl, &req, &resp)) {
	case DNS_HTTP_OK:
		break;
	case DNS_HTTP_TIMEOUT:
		snprintf(why, why_size, "%s did not answer within %g s", url, (double)timeout_ms / 1000.0);
		goto out;
	case DNS_HTTP_NETWORK:
		snprintf(why, why_size, "cannot reach %s: %s", url, resp.error);
		goto out;
	case DNS_HTTP_TOO_LARGE:
		snprintf(why, why_size, "%s answered more than an address", url);
		goto out;
	case DNS_HTTP_NO_MEMORY:
		snprintf(why, why_size, "out of memory");
		goto out;
	}
	if (resp.status != 200) {
		snprintf(why, why_size, "%s answered HTTP %ld", url, resp.status);
		goto out;
	}
	const char *text = resp.body.data;
	size_t len = resp.body.len;
	while (len > 0 && is_space(*text)) {
		text++;
		len--;
	}
	while (len > 0 && is_space(text[len - 1]))
		len--;
	char address[PUBLIC_IP_MAX_ANSWER + 1];
	memcpy(address, text, len);
	address[len] = '\0';
	/* A NUL inside the answer would make the text look shorter than it is. */
	if (strlen(address) != len || dns_address_parse(address, family, out, out_size) != 0) {
		snprintf(why, why_size, "%s did not answer with a public %s address", url, what);
		goto out;
	}
	rc = 0;
out:
	dns_http_response_free(&resp);
	return rc;
}
