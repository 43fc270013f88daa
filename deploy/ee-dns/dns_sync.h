/*
 * dns_sync.h - making Cloudflare's records say what ee-dns wants: find the
 * zone, then for each name and address family list the records of that
 * name and type and create, update or leave alone, printing one line per
 * record.  Idempotent: a second run with the same settings writes nothing.
 */
#ifndef EE_DNS_SYNC_H
#define EE_DNS_SYNC_H

#include <stdio.h>

#include "cf_api.h"
#include "ee_dns.h"

/* Records of one name and type looked at; Cloudflare allows several (round robin). */
#define DNS_SAME_NAME_MAX 16

/*
 * The zone: by id, by name, or else the domain's own zone or its nearest
 * parent's.  0, or -1 with c->error saying why (an unknown zone included).
 */
int dns_zone_resolve(struct cf_client *c, const struct dns_options *o, struct cf_zone *zone);

/*
 * Brings every record in line (none written with o->dry_run), one line per
 * record on out:
 *   control.example.com A 203.0.113.7 proxied created
 * Stops at the first failure: 0, or -1 with c->error saying why.
 */
int dns_sync_records(struct cf_client *c, const struct dns_options *o, const struct cf_zone *zone,
                     FILE *out);

#endif
