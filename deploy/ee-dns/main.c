/*
 * ee-dns - points Cloudflare's DNS records for this control plane at it:
 * A and AAAA records of control.<domain>, control-direct.<domain> and
 * *.app.<domain> (docs/DNS.md).
 *
 *   ee-dns [--ip ADDR] [--ipv6 ADDR] [--auto-ip] [--proxied | --dns-only]
 *          [--ttl N] [--zone NAME|ID] [--domain NAME] [--dry-run]
 *
 * One line per record on standard output, what went wrong on standard
 * error.  Exit status: 0 done, 1 the network or Cloudflare failed (or
 * refused), 2 a bad flag or setting, found before anything was sent.
 * deploy/ee-dns-on-start runs it at start-up when EE_DNS_UPDATE_ON_START
 * is set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cf_api.h"
#include "dns_sync.h"
#include "ee_dns.h"
#include "log.h"
#include "public_ip.h"

/* c->error, one "ee-dns: " line per problem. */
static void print_failure(const struct cf_client *c)
{
	const char *p = c->error;
	if (!*p)
		p = "failed\n";
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		fprintf(stderr, "ee-dns: %.*s\n", (int)n, p);
		p += n + (eol ? 1 : 0);
	}
}

/*
 * --auto-ip: asks for each family not given.  A family that cannot be
 * found is left alone with a warning (many hosts have no IPv6); finding
 * neither is a failure.
 */
static int discover_addresses(struct cf_client *c, struct dns_options *o)
{
	static const struct {
		int family;
		const char *name, *records;
	} families[] = {{AF_INET, "IPv4", "A"}, {AF_INET6, "IPv6", "AAAA"}};
	char why[2][600] = {"", ""};
	for (size_t i = 0; i < 2; i++) {
		char *address = families[i].family == AF_INET ? o->ipv4 : o->ipv6;
		size_t size = families[i].family == AF_INET ? sizeof(o->ipv4) : sizeof(o->ipv6);
		const char *url = families[i].family == AF_INET ? o->ip_url : o->ipv6_url;
		if (address[0])
			continue;
		if (public_ip_discover(c->curl, url, families[i].family, o->timeout_ms, address, size,
		                       why[i], sizeof(why[i])) == 0) {
			log_info("public %s address %s", families[i].name, address);
		} else {
			address[0] = '\0';
		}
	}
	if (!o->ipv4[0] && !o->ipv6[0]) {
		for (size_t i = 0; i < 2; i++) {
			if (why[i][0])
				fprintf(stderr, "ee-dns: no public %s address: %s\n", families[i].name, why[i]);
		}
		fputs("ee-dns: --auto-ip found no public address; nothing was changed\n", stderr);
		return -1;
	}
	for (size_t i = 0; i < 2; i++) {
		if (why[i][0])
			log_warn("no public %s address (%s); %s records are left as they are",
			         families[i].name, why[i], families[i].records);
	}
	return 0;
}

int main(int argc, char **argv)
{
	enum ee_log_level level = EE_LOG_INFO;
	const char *lv = getenv("EE_LOG_LEVEL");
	if (lv && *lv && ee_log_parse_level(lv, &level) != 0) {
		fputs("ee-dns: invalid_config:EE_LOG_LEVEL\n", stderr);
		return DNS_EXIT_USAGE;
	}
	ee_log_init("ee-dns", level);

	struct dns_options o;
	struct ee_error err;
	if (dns_options_load(argc, argv, &o, &err) != 0) {
		fprintf(stderr, "ee-dns: %s\n", err.reason);
		fputs("ee-dns: ee-dns --help lists the options and variables\n", stderr);
		dns_options_free(&o);
		return DNS_EXIT_USAGE;
	}
	if (o.help) {
		dns_usage(stdout);
		dns_options_free(&o);
		return DNS_EXIT_OK;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fputs("ee-dns: cannot initialise libcurl\n", stderr);
		dns_options_free(&o);
		return DNS_EXIT_FAILED;
	}

	int rc = DNS_EXIT_FAILED;
	struct cf_client c;
	struct cf_zone zone;
	if (cf_client_init(&c, o.api_url, o.token, o.timeout_ms) != 0) {
		print_failure(&c);
		goto out;
	}
	if (o.auto_ip && discover_addresses(&c, &o) != 0)
		goto out;
	if (dns_zone_resolve(&c, &o, &zone) != 0 || dns_sync_records(&c, &o, &zone, stdout) != 0) {
		print_failure(&c);
		goto out;
	}
	rc = DNS_EXIT_OK;
out:
	cf_client_destroy(&c);
	curl_global_cleanup();
	dns_options_free(&o);
	return rc;
}
