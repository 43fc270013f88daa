/*
 * ee_dns.h - what the parts of ee-dns share: its settings, read once from
 * the command line and the environment (options.c), the exit statuses,
 * and address handling (address.c).
 *
 * ee-dns keeps six Cloudflare records pointing at this control plane: A and
 * AAAA for control.<domain>, control-direct.<domain> and *.app.<domain>
 * (docs/DNS.md).  It only creates and updates; it never deletes.
 */
#ifndef EE_DNS_H
#define EE_DNS_H

#include <stdbool.h>
#include <stdio.h>

#include <arpa/inet.h>

#include "cf_response.h"
#include "error.h"

#define DNS_EXIT_OK 0
#define DNS_EXIT_FAILED 1 /* the network or Cloudflare failed, or refused a change */
#define DNS_EXIT_USAGE 2  /* a bad flag or setting: nothing was asked of anyone */

/* The longest name written is control-direct.<domain>, and a name is at most 253. */
#define DNS_LONGEST_LABEL "control-direct."
#define DNS_DOMAIN_MAX (CF_NAME_MAX - (sizeof(DNS_LONGEST_LABEL) - 1))
#define DNS_URL_MAX 512
#define DNS_TOKEN_MAX 512
#define DNS_ZONE_ID_LEN 32 /* Cloudflare's ids are 32 hexadecimal digits */

/* Cloudflare's TTLs: 1 means automatic, otherwise 30 (Enterprise) or 60 to 86400 s. */
#define DNS_TTL_AUTO 1
#define DNS_TTL_MIN 30
#define DNS_TTL_MAX 86400

#define DNS_DEFAULT_API_URL "https://api.cloudflare.com/client/v4"
/* Each answers with the caller's address as plain text, one family each. */
#define DNS_DEFAULT_IP_URL "https://api.ipify.org"
#define DNS_DEFAULT_IPV6_URL "https://api6.ipify.org"
#define DNS_DEFAULT_TIMEOUT_MS 30000

struct dns_options {
	char *token;                       /* CLOUDFLARE_API_TOKEN; wiped on free */
	char domain[DNS_DOMAIN_MAX + 1];   /* EE_DOMAIN, lower case, no trailing dot */
	char zone_id[DNS_ZONE_ID_LEN + 1]; /* a zone given by id, or "" */
	char zone_name[CF_NAME_MAX + 1];   /* a zone given by name, or "" */
	char api_url[DNS_URL_MAX];         /* without trailing slashes */
	char ipv4[INET_ADDRSTRLEN];        /* canonical text, "" when none */
	char ipv6[INET6_ADDRSTRLEN];
	bool auto_ip;                      /* discover what ipv4/ipv6 leave empty */
	char ip_url[DNS_URL_MAX];
	char ipv6_url[DNS_URL_MAX];
	bool proxied;                      /* for control and *.app; control-direct never is */
	int ttl;                           /* for DNS-only records; proxied ones are automatic */
	bool dry_run;
	int timeout_ms;                    /* each request to Cloudflare or an address echo */
	bool help;
};

/*
 * Reads the command line, then the environment for whatever the command
 * line left unset.  On a bad flag or setting, err->reason says which
 * ("invalid_config:EE_DOMAIN", "invalid_argument:--ttl").  --help sets
 * o->help and reads nothing else.
 */
int dns_options_load(int argc, char **argv, struct dns_options *o, struct ee_error *err);
void dns_options_free(struct dns_options *o);
void dns_usage(FILE *f);

/* Whether domain is the zone's apex or a name under it (case aside). */
bool dns_zone_holds(const char *zone, const char *domain);

/*
 * Parses an address of family (AF_INET or AF_INET6) into canonical text
 * (inet_ntop's).  -1 for text that is not one, and for addresses no
 * public record can hold: unspecified, multicast, broadcast, and IPv6's
 * IPv4-mapped form.
 */
int dns_address_parse(const char *text, int family, char *out, size_t out_size);
/* Whether two texts are the same address of family (2001:db8::1 = 2001:DB8:0::1). */
bool dns_address_equal(const char *a, const char *b, int family);

#endif
