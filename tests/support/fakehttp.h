/*
 * fakehttp.h - a tiny HTTP/1.1 server for tests of code that fetches over
 * HTTP (lib/pccs.c, lib/allowlist.c).  A forked child listens on
 * 127.0.0.1 on a free port and answers GET requests from a table of canned
 * responses; every request's head (request line and headers, verbatim) is
 * appended to a log file before the answer, so a test can read what was
 * asked, e.g. whether an Authorization header was sent.
 *
 * One connection at a time, "Connection: close" on every answer.
 */
#ifndef EE_TEST_FAKEHTTP_H
#define EE_TEST_FAKEHTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct fakehttp_route {
	const char *target;  /* the request target to match exactly: "/path?query" */
	int status;
	const char *headers; /* extra header lines, each ending in "\r\n"; or NULL */
	const char *body;    /* or NULL for none */
	size_t body_len;     /* 0: strlen(body) */
	int delay_ms;        /* wait this long before answering */
	bool hang_up;        /* read the request, then close without answering */
	bool no_length;      /* no Content-Length: the body ends when the connection closes */
};

struct fakehttp {
	int listen_fd;
	int port;
	pid_t pid;           /* the serving child, or 0 */
	char base_url[64];   /* http://127.0.0.1:<port> */
	char log_path[512];
};

/* Binds a free loopback port; requests are logged to log_path (truncated). */
int fakehttp_open(struct fakehttp *f, const char *log_path);
/*
 * Serves this table (count routes) from a new child, replacing the one
 * serving before (same port).  A target not in the table gets 404.  The
 * table is copied into the child at fork time.
 */
int fakehttp_serve(struct fakehttp *f, const struct fakehttp_route *routes, size_t count);
/* Stops the child; the port stays bound until fakehttp_close. */
void fakehttp_stop(struct fakehttp *f);
void fakehttp_close(struct fakehttp *f);

/* Everything logged so far (malloc'd, "" if nothing), or NULL on error. */
char *fakehttp_log(const struct fakehttp *f);
void fakehttp_clear_log(const struct fakehttp *f);
/* Requests logged so far whose request line contains needle (NULL: all). */
int fakehttp_count(const struct fakehttp *f, const char *needle);
/* Requests whose head contains the header line "name: value" (value NULL: any value), ignoring case of name. */
int fakehttp_count_header(const struct fakehttp *f, const char *name, const char *value);

#endif
