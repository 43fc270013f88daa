/*
 * ratelimit.h - events counted per client address in fixed windows, in a
 * table every process mapping the same file shares.
 *
 * ee-api counts failed authentications with it: its FastCGI workers, and
 * each CGI process on a shared host, are separate processes, and a guesser
 * must be counted however its requests are spread among them.  The table is
 * a small file beside the database; nothing in it is money or history, so
 * losing it only forgets the current windows.
 */
#ifndef EE_RATELIMIT_H
#define EE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

#define RATELIMIT_SLOTS 16384  /* 128 KiB of table */
#define RATELIMIT_PROBES 8     /* slots an address may use */
#define RATELIMIT_MAX_COUNT 0xfff /* 4095: counts saturate there */

struct ratelimit;

/* Maps (creating if needed) the table in path; NULL path: this process only. */
struct ratelimit *ratelimit_open(const char *path, struct ee_error *err);
void ratelimit_close(struct ratelimit *rl);

/*
 * True when address has had at least limit events in its current window
 * of window_sec seconds; *retry_after_sec is then the seconds left.
 */
bool ratelimit_exceeded(struct ratelimit *rl, const char *address, int64_t now_sec, int limit,
                        int window_sec, int *retry_after_sec);
/* Counts one event for address; returns the count in its window. */
int ratelimit_hit(struct ratelimit *rl, const char *address, int64_t now_sec, int window_sec);

#endif
