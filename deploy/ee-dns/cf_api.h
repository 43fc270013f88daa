/*
 * cf_api.h - the calls ee-dns makes to Cloudflare's API v4, with a bearer
 * token: find a zone by name or id, list the records of one name and
 * type, create a record, update one.
 *
 * A call that fails leaves a message for a person in cf_client.error, one
 * line per problem, each naming the request ("GET /zones"):
 *   cloudflare error 9109: Invalid access token (GET /zones)
 *   cloudflare did not answer within 30 s (GET /zones)
 * The token never appears in a message, a log line or a URL.
 */
#ifndef EE_CF_API_H
#define EE_CF_API_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "cf_response.h"
#include "ee_dns.h"

#define CF_ERROR_TEXT_MAX 2048
/* Every answer ee-dns asks for is a few records or zones. */
#define CF_MAX_ANSWER_BYTES (1024 * 1024)

struct cf_client {
	CURL *curl;                    /* also lent to public_ip.c */
	char api_url[DNS_URL_MAX];
	char *authorization;           /* "Authorization: Bearer <token>"; wiped on destroy */
	long timeout_ms;
	char error[CF_ERROR_TEXT_MAX]; /* the last failure; lines end in '\n' */
};

/* -1 (with c->error set) when there is no memory or no curl handle. */
int cf_client_init(struct cf_client *c, const char *api_url, const char *token, long timeout_ms);
void cf_client_destroy(struct cf_client *c);
/* Replaces the message with one line of text (for failures the callers find). */
void cf_client_fail(struct cf_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The zone of this name: 0 found, 1 no such zone (c->error says so), -1 failed. */
int cf_zone_find(struct cf_client *c, const char *name, struct cf_zone *zone);
/* The zone of this id: 0, or -1 (an unknown id is Cloudflare's error). */
int cf_zone_get(struct cf_client *c, const char *zone_id, struct cf_zone *zone);

/*
 * The records of one type and name (GET .../dns_records?type=&name=): the
 * first max go to out, *count is how many there are.
 */
int cf_records_list(struct cf_client *c, const char *zone_id, const char *type,
                    const char *name, struct cf_record *out, size_t max, size_t *count);
/* POST a record of want's type, name, content, ttl and proxied; id is ignored. */
int cf_record_create(struct cf_client *c, const char *zone_id, const struct cf_record *want);
/* PATCH the record record_id to want's type, name, content, ttl and proxied. */
int cf_record_update(struct cf_client *c, const char *zone_id, const char *record_id,
                     const struct cf_record *want);

#endif
