/* fetch.c - one bounded blocking HTTP GET with libcurl; see fetch.h. */
#include "fetch.h"

#include <string.h>

size_t fetch_sink_write(char *data, size_t size, size_t count, void *arg)
{
	struct fetch_sink *s = arg;
	size_t n = size * count;
	/* Enforced as the bytes arrive: a server that sends no Content-Length
	 * (or lies about it) is cut off at the limit, not after. */
	if (n > s->max || s->body->len > s->max - n) {
		s->too_large = true;
		return 0;
	}
	if (buf_append(s->body, data, n) != 0) {
		s->no_memory = true;
		return 0;
	}
	return n;
}

enum fetch_result fetch_get(CURL *curl, const char *url, const char *const *headers,
                            const struct fetch_options *opts, long *status, struct buf *body)
{
	*status = 0;
	buf_reset(body);
	/* The body is a string even when the response has none. */
	if (buf_append(body, "", 0) != 0)
		return FETCH_NO_MEMORY;
	curl_easy_reset(curl);

	struct curl_slist *list = NULL;
	for (size_t i = 0; headers && headers[i]; i++) {
		struct curl_slist *next = curl_slist_append(list, headers[i]);
		if (!next) {
			curl_slist_free_all(list);
			return FETCH_NO_MEMORY;
		}
		list = next;
	}

	struct fetch_sink sink = {.body = body, .max = opts->max_body_bytes};
	bool https = strncmp(url, "https://", 8) == 0;
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                          \
	do {                                                   \
		if (rc == CURLE_OK)                            \
			rc = curl_easy_setopt(curl, opt, val); \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_HTTPGET, 1L);
	SET(CURLOPT_HTTPHEADER, list);
	SET(CURLOPT_USERAGENT, FETCH_USER_AGENT);
	/* Worker threads: no SIGALRM for DNS timeouts. */
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, opts->connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, opts->timeout_ms);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)opts->max_body_bytes);
	SET(CURLOPT_WRITEFUNCTION, fetch_sink_write);
	SET(CURLOPT_WRITEDATA, &sink);
	SET(CURLOPT_FOLLOWLOCATION, opts->follow_redirects ? 1L : 0L);
	SET(CURLOPT_MAXREDIRS, (long)FETCH_MAX_REDIRECTS);
	/* Never downgrade from https on a redirect. */
	SET(CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
	/* Credentials (an Authorization header) go only to the host first asked:
	 * libcurl drops them on a redirect to another host, port or scheme
	 * unless this is on.  Said explicitly, because it matters. */
	SET(CURLOPT_UNRESTRICTED_AUTH, 0L);
#undef SET
	if (rc == CURLE_OK)
		rc = curl_easy_perform(curl);
	curl_slist_free_all(list);
	/* The handle keeps no pointer to the list or the sink past this call. */
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, NULL);

	if (sink.no_memory || body->failed)
		return FETCH_NO_MEMORY;
	if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED)
		return FETCH_TOO_LARGE;
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return FETCH_TIMEOUT;
	if (rc == CURLE_OUT_OF_MEMORY)
		return FETCH_NO_MEMORY;
	if (rc != CURLE_OK)
		return FETCH_NETWORK;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
	return FETCH_OK;
}

const char *fetch_header(CURL *curl, const char *name)
{
	struct curl_header *h = NULL;
	if (curl_easy_header(curl, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h)
		return NULL;
	return h->value;
}

int fetch_base_url(const char *in, char *out, size_t out_size)
{
	if (!in)
		return -1;
	size_t len = strlen(in);
	size_t scheme = strncmp(in, "https://", 8) == 0 ? 8 : strncmp(in, "http://", 7) == 0 ? 7 : 0;
	if (scheme == 0 || !util_valid_printable(in, len, out_size - 1))
		return -1;
	if (strchr(in, '?') || strchr(in, '#'))
		return -1;
	while (len > scheme && in[len - 1] == '/')
		len--;
	if (len == scheme)
		return -1; /* no host */
	memcpy(out, in, len);
	out[len] = '\0';
	return 0;
}

const char *fetch_result_text(enum fetch_result r)
{
	switch (r) {
	case FETCH_OK:
		return "ok";
	case FETCH_TIMEOUT:
		return "timeout";
	case FETCH_NETWORK:
		return "network";
	case FETCH_TOO_LARGE:
		return "too_large";
	case FETCH_NO_MEMORY:
		return "out_of_memory";
	}
	return "network";
}
