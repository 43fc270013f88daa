/* dns_sync.c - the records ee-dns wants, and bringing Cloudflare's in line; see dns_sync.h. */
#include "dns_sync.h"

#include <string.h>
#include <strings.h>

#include "log.h"

/* The names kept under EE_DOMAIN. */
static const struct dns_name {
	const char *label;
	bool always_dns_only;
} dns_names[] = {
	{"control", false},
	/* Agents hold their websocket open for days; Cloudflare's proxy would cut it
	 * (idle timeouts, restarts), so agents connect here, straight to Caddy. */
	{"control-direct", true},
	{"*.app", false},
};

int dns_zone_resolve(struct cf_client *c, const struct dns_options *o, struct cf_zone *zone)
{
	if (o->zone_id[0]) {
		if (cf_zone_get(c, o->zone_id, zone) != 0)
			return -1;
		if (!dns_zone_holds(zone->name, o->domain)) {
			cf_client_fail(c, "zone %s is %s, which does not hold %s (GET /zones/%s)", zone->id,
			               zone->name, o->domain, zone->id);
			return -1;
		}
		if (o->zone_name[0] && strcasecmp(zone->name, o->zone_name) != 0) {
			cf_client_fail(c, "zone %s is %s, not CLOUDFLARE_ZONE_NAME %s (GET /zones/%s)",
			               zone->id, zone->name, o->zone_name, zone->id);
			return -1;
		}
	} else if (o->zone_name[0]) {
		if (cf_zone_find(c, o->zone_name, zone) != 0)
			return -1;
	} else {
		/* cp.example.com may be a zone of its own or a part of example.com's. */
		const char *name = o->domain;
		for (;;) {
			int rc = cf_zone_find(c, name, zone);
			if (rc < 0)
				return -1;
			if (rc == 0)
				break;
			const char *parent = strchr(name, '.') + 1;
			if (!strchr(parent, '.')) {
				cf_client_fail(c, "zone not found: this token sees no zone named %s or any "
				                  "parent of it (GET /zones)",
				               o->domain);
				return -1;
			}
			name = parent;
		}
	}
	if (zone->status[0] && strcmp(zone->status, "active") != 0)
		log_warn("zone %s is %s, not active: its records are not served yet", zone->name,
		         zone->status);
	log_debug("zone %s, id %s", zone->name, zone->id);
	return 0;
}

static bool record_same(const struct cf_record *want, const struct cf_record *have, int family)
{
	return dns_address_equal(want->content, have->content, family) &&
	       want->proxied == have->proxied && want->ttl == have->ttl;
}

static void print_ttl(FILE *out, int ttl)
{
	if (ttl == DNS_TTL_AUTO)
		fputs("ttl auto", out);
	else
		fprintf(out, "ttl %d", ttl);
}

static void print_line(FILE *out, const struct cf_record *want, const char *action,
                       const struct cf_record *was)
{
	fprintf(out, "%s %s %s %s %s", want->name, want->type, want->content,
	        want->proxied ? "proxied" : "dns-only", action);
	if (want->ttl != DNS_TTL_AUTO || was) {
		fputs(" (", out);
		if (want->ttl != DNS_TTL_AUTO) {
			print_ttl(out, want->ttl);
			if (was)
				fputs("; ", out);
		}
		if (was) {
			fprintf(out, "was %s %s ", was->content, was->proxied ? "proxied" : "dns-only");
			print_ttl(out, was->ttl);
		}
		fputc(')', out);
	}
	fputc('\n', out);
	fflush(out);
}

static int sync_one(struct cf_client *c, const struct dns_options *o, const struct cf_zone *zone,
                    const struct cf_record *want, int family, FILE *out)
{
	struct cf_record have[DNS_SAME_NAME_MAX];
	size_t count;
	if (cf_records_list(c, zone->id, want->type, want->name, have, DNS_SAME_NAME_MAX, &count) != 0)
		return -1;
	size_t seen = count < DNS_SAME_NAME_MAX ? count : DNS_SAME_NAME_MAX;
	const struct cf_record *match = NULL;
	for (size_t i = 0; i < seen && !match; i++) {
		if (record_same(want, &have[i], family))
			match = &have[i];
	}
	/* With several of one name and type, the first is the one kept in line. */
	const struct cf_record *target = match ? match : seen ? &have[0] : NULL;
	const char *action;
	if (match) {
		action = "unchanged";
	} else if (target) {
		if (!o->dry_run && cf_record_update(c, zone->id, target->id, want) != 0)
			return -1;
		action = o->dry_run ? "would-update" : "updated";
	} else {
		if (!o->dry_run && cf_record_create(c, zone->id, want) != 0)
			return -1;
		action = o->dry_run ? "would-create" : "created";
	}
	if (count > 1)
		log_warn("%s %s has %zu records; %s %s, the others are left as they are", want->name,
		         want->type, count, match ? "kept" : o->dry_run ? "would update" : "updated",
		         target->id);
	print_line(out, want, action, match ? NULL : target);
	return 0;
}

int dns_sync_records(struct cf_client *c, const struct dns_options *o, const struct cf_zone *zone,
                     FILE *out)
{
	static const struct {
		const char *type;
		int family;
	} families[] = {{"A", AF_INET}, {"AAAA", AF_INET6}};
	for (size_t n = 0; n < sizeof(dns_names) / sizeof(dns_names[0]); n++) {
		for (size_t f = 0; f < 2; f++) {
			const char *address = families[f].family == AF_INET ? o->ipv4 : o->ipv6;
			if (!address[0])
				continue;
			struct cf_record want;
			memset(&want, 0, sizeof(want));
			snprintf(want.type, sizeof(want.type), "%s", families[f].type);
			snprintf(want.name, sizeof(want.name), "%s.%s", dns_names[n].label, o->domain);
			snprintf(want.content, sizeof(want.content), "%s", address);
			want.proxied = o->proxied && !dns_names[n].always_dns_only;
			/* Cloudflare keeps proxied records' TTL automatic whatever is sent. */
			want.ttl = want.proxied ? DNS_TTL_AUTO : o->ttl;
			if (sync_one(c, o, zone, &want, families[f].family, out) != 0)
				return -1;
		}
	}
	return 0;
}
