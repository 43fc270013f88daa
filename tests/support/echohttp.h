/*
 * echohttp.h - a backend for the end-to-end tests and benchmarks: a real
 * HTTP/1.1 server on 127.0.0.1 (keep-alive, Content-Length and chunked
 * request bodies, one process per connection) whose answers say what
 * reached it.
 *
 *   /echo...        any method: 200 (or the X-Echo-Status request header),
 *                   the request body back byte for byte, and
 *                     X-Echo-Method, X-Echo-Target, X-Echo-Body-Length,
 *                     X-Echo-Body-Sha256, X-Echo-Host,
 *                     X-Echo-Header-Names (every field name received,
 *                     lower case, comma-separated, in order),
 *                     X-Echoed-<rest> for each X-Test-<rest> received;
 *                   Content-Type as received (application/octet-stream
 *                   if none)
 *   /bytes/N        N bytes, byte i = (i * 7 + 3) & 0xff
 *   /chunked/N      the same N bytes with Transfer-Encoding: chunked
 *   /slow/MS        "slow" after MS milliseconds
 *   /status/N       status N, body "status N" (none for 204 and 304)
 *   /cookies        two Set-Cookie fields
 *   /gzip           bytes that claim Content-Encoding: gzip (never decoded)
 *   /latin1         header values that are not UTF-8: Content-Disposition
 *                   with an ISO-8859-1 filename (caf\xe9.txt) and X-Mixed,
 *                   valid and invalid sequences mixed (see echohttp.c)
 *   /redirect       302 to /echo/redirected
 *   /health         200 "ok"
 *   anything else   404
 * HEAD answers as GET would, without the body.
 */
#ifndef EE_TEST_ECHOHTTP_H
#define EE_TEST_ECHOHTTP_H

#include <stddef.h>
#include <sys/types.h>

struct echohttp {
	int port;
	pid_t pid; /* the accepting process (leader of its process group), or 0 */
	char base_url[64];
};

/* Binds a free loopback port (or e->port when non-zero) and serves from a child. */
int echohttp_start(struct echohttp *e);
/* Kills the server and every connection it serves; the port is then closed. */
void echohttp_stop(struct echohttp *e);

/* The bytes /bytes/N sends, for comparing. */
void echohttp_pattern(unsigned char *out, size_t n);

#endif
