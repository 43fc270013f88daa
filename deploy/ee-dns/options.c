/*
 * options.c - ee-dns's settings: the command line first, then the
 * environment for whatever it left unset (docs/DNS.md lists both).  A bad
 * value is refused before anything is sent anywhere, with the flag or the
 * variable named, as every program of the project does.
 */
#include "ee_dns.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "fetch.h"
#include "log.h"
#include "util.h"

void dns_usage(FILE *f)
{
	fputs("usage: ee-dns [--domain NAME] [--zone NAME|ID] [--ip ADDR] [--ipv6 ADDR] [--auto-ip]\n"
	      "              [--proxied | --dns-only] [--ttl N] [--dry-run]\n"
	      "Points the A and AAAA records of control.<domain>, control-direct.<domain> and\n"
	      "*.app.<domain> at this control plane through Cloudflare's API: creates what is\n"
	      "missing, updates what differs, never deletes (docs/DNS.md).\n"
	      "  --domain NAME    the domain (EE_DOMAIN)\n"
	      "  --zone NAME|ID   the Cloudflare zone; 32 hex digits are an id, anything else a\n"
	      "                   name (CLOUDFLARE_ZONE_ID, CLOUDFLARE_ZONE_NAME; by default the\n"
	      "                   domain's own zone, else its parent domain's)\n"
	      "  --ip ADDR        the IPv4 address of the A records (EE_PUBLIC_IP)\n"
	      "  --ipv6 ADDR      the IPv6 address of the AAAA records (EE_PUBLIC_IPV6)\n"
	      "  --auto-ip        discover the addresses not given (EE_DNS_AUTO_IP, from\n"
	      "                   EE_DNS_IP_URL and EE_DNS_IPV6_URL)\n"
	      "  --proxied        control and *.app through Cloudflare's proxy (the default;\n"
	      "                   EE_DNS_PROXIED); control-direct is always DNS-only\n"
	      "  --dns-only       every record DNS-only\n"
	      "  --ttl N          TTL of DNS-only records: 1 (automatic) or 30 to 86400 seconds\n"
	      "                   (EE_DNS_TTL); proxied records are always automatic\n"
	      "  --dry-run        say what would change, change nothing\n"
	      "  --help           this text\n"
	      "CLOUDFLARE_API_TOKEN (Zone:Read, DNS:Edit) is required, also for --dry-run,\n"
	      "which reads the zone and its records.\n"
	      "Exit status: 0 done, 1 the network or Cloudflare failed, 2 a bad flag or setting.\n",
	      f);
}

/* What the command line said; NULL and false for what it did not. */
struct flags {
	const char *domain, *zone, *ip, *ipv6, *ttl;
	bool auto_ip;
	bool proxied_given, proxied; /* the last of --proxied and --dns-only wins */
	bool dry_run;
};

static const char **flag_value_slot(struct flags *f, const char *name)
{
	if (strcmp(name, "--domain") == 0)
		return &f->domain;
	if (strcmp(name, "--zone") == 0)
		return &f->zone;
	if (strcmp(name, "--ip") == 0)
		return &f->ip;
	if (strcmp(name, "--ipv6") == 0)
		return &f->ipv6;
	if (strcmp(name, "--ttl") == 0)
		return &f->ttl;
	return NULL;
}

/* --flag VALUE and --flag=VALUE both work. */
static int flags_parse(int argc, char **argv, struct flags *f, bool *help, struct ee_error *err)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			*help = true;
			return 0;
		}
		const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
		size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
		char name[32];
		if (name_len >= sizeof(name))
			return ee_fail_detail(err, 400, "unknown_option", arg);
		memcpy(name, arg, name_len);
		name[name_len] = '\0';
		const char *value = eq ? eq + 1 : NULL;
		const char **slot = flag_value_slot(f, name);
		if (slot) {
			if (!value) {
				if (i + 1 >= argc)
					return ee_fail_detail(err, 400, "missing_value", name);
				value = argv[++i];
			}
			*slot = value;
			continue;
		}
		if (strcmp(name, "--auto-ip") == 0)
			f->auto_ip = true;
		else if (strcmp(name, "--proxied") == 0)
			f->proxied_given = f->proxied = true;
		else if (strcmp(name, "--dns-only") == 0)
			f->proxied_given = true, f->proxied = false;
		else if (strcmp(name, "--dry-run") == 0)
			f->dry_run = true;
		else
			return ee_fail_detail(err, 400, "unknown_option", name);
		if (value)
			return ee_fail_detail(err, 400, "unexpected_value", name);
	}
	return 0;
}

/* The flag's value when given, else the variable's; an empty variable is unset. */
static const char *setting(const char *flag_value, const char *variable)
{
	if (flag_value)
		return flag_value;
	const char *v = getenv(variable);
	return v && *v ? v : NULL;
}

/* Names whichever of the two the bad value came from. */
static int refuse(struct ee_error *err, const char *flag_value, const char *flag,
                  const char *variable)
{
	if (flag_value)
		return ee_fail_detail(err, 400, "invalid_argument", flag);
	return ee_fail_detail(err, 500, "invalid_config", variable);
}

/*
 * A host name as a zone or EE_DOMAIN: labels of letters, digits and
 * hyphens (not first or last), at least two labels; one trailing dot is
 * dropped and letters are lowered, as Cloudflare writes names.
 */
static int hostname_normalise(const char *in, char *out, size_t max)
{
	size_t len = strlen(in);
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > max)
		return -1;
	size_t label = 0, labels = 1;
	for (size_t i = 0; i < len; i++) {
		char c = (char)tolower((unsigned char)in[i]);
		if (c == '.') {
			if (label == 0 || out[i - 1] == '-')
				return -1;
			label = 0;
			labels++;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
			if (++label > 63 || (label == 1 && c == '-'))
				return -1;
		} else {
			return -1;
		}
		out[i] = c;
	}
	if (label == 0 || out[len - 1] == '-' || labels < 2)
		return -1;
	out[len] = '\0';
	return 0;
}

/* Zone ids are written in lower case; a copied id may not be. */
static void zone_id_copy(char *out, const char *id)
{
	for (size_t i = 0; i <= DNS_ZONE_ID_LEN; i++)
		out[i] = (char)tolower((unsigned char)id[i]);
}

static bool is_zone_id(const char *s)
{
	if (strlen(s) != DNS_ZONE_ID_LEN)
		return false;
	for (const char *p = s; *p; p++) {
		if (!isxdigit((unsigned char)*p))
			return false;
	}
	return true;
}

bool dns_zone_holds(const char *zone, const char *domain)
{
	size_t z = strlen(zone), d = strlen(domain);
	return strcasecmp(zone, domain) == 0 ||
	       (d > z && domain[d - z - 1] == '.' && strcasecmp(domain + d - z, zone) == 0);
}

static int load_zone(const struct flags *f, struct dns_options *o, struct ee_error *err)
{
	const char *flag_or_variable = f->zone ? "--zone" : "CLOUDFLARE_ZONE_NAME";
	if (f->zone) {
		if (is_zone_id(f->zone)) {
			zone_id_copy(o->zone_id, f->zone);
			return 0;
		}
		if (hostname_normalise(f->zone, o->zone_name, CF_NAME_MAX) != 0)
			return ee_fail_detail(err, 400, "invalid_argument", "--zone");
	} else {
		const char *id = setting(NULL, "CLOUDFLARE_ZONE_ID");
		const char *name = setting(NULL, "CLOUDFLARE_ZONE_NAME");
		if (id && !is_zone_id(id))
			return ee_fail_detail(err, 500, "invalid_config", "CLOUDFLARE_ZONE_ID");
		if (name && hostname_normalise(name, o->zone_name, CF_NAME_MAX) != 0)
			return ee_fail_detail(err, 500, "invalid_config", "CLOUDFLARE_ZONE_NAME");
		if (id)
			zone_id_copy(o->zone_id, id);
	}
	if (o->zone_name[0] && !dns_zone_holds(o->zone_name, o->domain))
		return refuse(err, f->zone, "--zone", flag_or_variable);
	return 0;
}

/* http:// or https://, printable, no spaces; the echo's URL is used as given. */
static bool valid_url(const char *url)
{
	size_t len = strlen(url);
	return (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) &&
	       util_valid_printable(url, len, DNS_URL_MAX - 1);
}

static int load_addresses(const struct flags *f, struct dns_options *o, struct ee_error *err)
{
	const char *ip = setting(f->ip, "EE_PUBLIC_IP");
	const char *ipv6 = setting(f->ipv6, "EE_PUBLIC_IPV6");
	if (ip && dns_address_parse(ip, AF_INET, o->ipv4, sizeof(o->ipv4)) != 0)
		return refuse(err, f->ip, "--ip", "EE_PUBLIC_IP");
	if (ipv6 && dns_address_parse(ipv6, AF_INET6, o->ipv6, sizeof(o->ipv6)) != 0)
		return refuse(err, f->ipv6, "--ipv6", "EE_PUBLIC_IPV6");
	o->auto_ip = f->auto_ip;
	if (!f->auto_ip && config_get_bool("EE_DNS_AUTO_IP", false, &o->auto_ip, err) != 0)
		return -1;
	const char *ip_url = setting(NULL, "EE_DNS_IP_URL");
	const char *ipv6_url = setting(NULL, "EE_DNS_IPV6_URL");
	if (ip_url && !valid_url(ip_url))
		return ee_fail_detail(err, 500, "invalid_config", "EE_DNS_IP_URL");
	if (ipv6_url && !valid_url(ipv6_url))
		return ee_fail_detail(err, 500, "invalid_config", "EE_DNS_IPV6_URL");
	snprintf(o->ip_url, sizeof(o->ip_url), "%s", ip_url ? ip_url : DNS_DEFAULT_IP_URL);
	snprintf(o->ipv6_url, sizeof(o->ipv6_url), "%s", ipv6_url ? ipv6_url : DNS_DEFAULT_IPV6_URL);
	if (!o->ipv4[0] && !o->ipv6[0] && !o->auto_ip)
		return ee_fail_detail(err, 500, "missing_config", "EE_PUBLIC_IP");
	return 0;
}

static int load_ttl(const struct flags *f, struct dns_options *o, struct ee_error *err)
{
	if (f->ttl) {
		char *end;
		errno = 0;
		long ttl = strtol(f->ttl, &end, 10);
		if (errno != 0 || end == f->ttl || *end != '\0' || ttl < DNS_TTL_AUTO ||
		    ttl > DNS_TTL_MAX)
			return ee_fail_detail(err, 400, "invalid_argument", "--ttl");
		o->ttl = (int)ttl;
	} else if (config_get_int("EE_DNS_TTL", DNS_TTL_AUTO, DNS_TTL_AUTO, DNS_TTL_MAX, &o->ttl,
	                          err) != 0) {
		return -1;
	}
	if (o->ttl != DNS_TTL_AUTO && o->ttl < DNS_TTL_MIN)
		return refuse(err, f->ttl, "--ttl", "EE_DNS_TTL");
	return 0;
}

static int load_api(struct dns_options *o, struct ee_error *err)
{
	const char *token = setting(NULL, "CLOUDFLARE_API_TOKEN");
	if (!token)
		return ee_fail_detail(err, 500, "missing_config", "CLOUDFLARE_API_TOKEN");
	if (!util_valid_printable(token, strlen(token), DNS_TOKEN_MAX))
		return ee_fail_detail(err, 500, "invalid_config", "CLOUDFLARE_API_TOKEN");
	o->token = strdup(token);
	if (!o->token)
		return ee_fail(err, 500, "out_of_memory");
	const char *url = setting(NULL, "CLOUDFLARE_API_URL");
	if (fetch_base_url(url ? url : DNS_DEFAULT_API_URL, o->api_url, sizeof(o->api_url)) != 0)
		return ee_fail_detail(err, 500, "invalid_config", "CLOUDFLARE_API_URL");
	/* Said, not refused: a test or a local relay may well be plain http. */
	if (strncmp(o->api_url, "http://", 7) == 0 && strncmp(o->api_url, "http://127.", 11) != 0 &&
	    strncmp(o->api_url, "http://localhost", 16) != 0 &&
	    strncmp(o->api_url, "http://[::1]", 12) != 0)
		log_warn("CLOUDFLARE_API_URL is plain http: the API token crosses the network unencrypted");
	return config_get_duration_ms("EE_DNS_TIMEOUT_SEC", DNS_DEFAULT_TIMEOUT_MS, 100, 300000,
	                              &o->timeout_ms, err);
}

int dns_options_load(int argc, char **argv, struct dns_options *o, struct ee_error *err)
{
	memset(o, 0, sizeof(*o));
	struct flags f;
	memset(&f, 0, sizeof(f));
	if (flags_parse(argc, argv, &f, &o->help, err) != 0)
		return -1;
	if (o->help)
		return 0;

	const char *domain = setting(f.domain, "EE_DOMAIN");
	if (!domain)
		return ee_fail_detail(err, 500, "missing_config", "EE_DOMAIN");
	if (hostname_normalise(domain, o->domain, DNS_DOMAIN_MAX) != 0)
		return refuse(err, f.domain, "--domain", "EE_DOMAIN");
	if (load_zone(&f, o, err) != 0 || load_addresses(&f, o, err) != 0 ||
	    load_ttl(&f, o, err) != 0)
		return -1;
	o->proxied = f.proxied;
	if (!f.proxied_given && config_get_bool("EE_DNS_PROXIED", true, &o->proxied, err) != 0)
		return -1;
	o->dry_run = f.dry_run;
	return load_api(o, err);
}

void dns_options_free(struct dns_options *o)
{
	if (o->token) {
		explicit_bzero(o->token, strlen(o->token));
		free(o->token);
	}
	memset(o, 0, sizeof(*o));
}
