/*
 * fetch.h - one blocking HTTP GET with libcurl, with the limits every
 * outbound fetch of the control plane needs: connect and total timeouts, a
 * body size limit enforced while the body arrives, http/https only, and
 * redirects only when asked for.  Used by lib/pccs.c (Intel collateral) and
 * lib/allowlist.c (GitHub release assets), which run in ee-tunneld's worker
 * threads: each thread owns its CURL handle, so connections are reused per
 * thread and nothing here is shared.
 *
 * libcurl must be initialised once per process (curl_global_init) before
 * the first thread creates a handle.
 */
#ifndef EE_FETCH_H
#define EE_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "util.h"

#define FETCH_USER_AGENT "easyenclave-control-plane/1"
#define FETCH_MAX_REDIRECTS 5

struct fetch_options {
	long connect_timeout_ms;
	long timeout_ms;       /* the whole transfer, redirects included */
	size_t max_body_bytes; /* a longer body fails the fetch as FETCH_TOO_LARGE */
	bool follow_redirects;
};

enum fetch_result {
	FETCH_OK = 0,     /* a response arrived: look at its status */
	FETCH_TIMEOUT,    /* connect or total timeout */
	FETCH_NETWORK,    /* DNS, connection, TLS, protocol error */
	FETCH_TOO_LARGE,  /* the body is over max_body_bytes */
	FETCH_NO_MEMORY,
};

/*
 * GETs url on curl (reset first; its connection cache survives).  headers
 * is a NULL-terminated list of "Name: value" lines, or NULL.  On FETCH_OK,
 * *status is the status of the last response and body holds its body
 * (body is emptied first in any case).  Response headers of the last
 * response stay readable through fetch_header until the next fetch.
 */
enum fetch_result fetch_get(CURL *curl, const char *url, const char *const *headers,
                            const struct fetch_options *opts, long *status, struct buf *body);

/*
 * A response body kept up to max bytes, for any libcurl transfer:
 * CURLOPT_WRITEFUNCTION fetch_sink_write, CURLOPT_WRITEDATA the sink.  A
 * body over max (whatever Content-Length said) stops the transfer with
 * too_large set; no_memory when the buffer could not grow.
 */
struct fetch_sink {
	struct buf *body;
	size_t max;
	bool too_large;
	bool no_memory;
};
size_t fetch_sink_write(char *data, size_t size, size_t count, void *sink);

/* A header of the last response of the last fetch on curl, or NULL. */
const char *fetch_header(CURL *curl, const char *name);

/*
 * Checks a configured base URL (http:// or https://, printable, no query or
 * fragment, shorter than out_size) and copies it to out without trailing
 * slashes.  -1 if it is not acceptable.
 */
int fetch_base_url(const char *in, char *out, size_t out_size);

/* "timeout", "network", "too_large", "out_of_memory" (or "ok"). */
const char *fetch_result_text(enum fetch_result r);

#endif
