/* netaddr.c - the client's address behind trusted proxies (netaddr.h). */
#include "netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"


/* Forwarded-for entries looked at, from the right: a longer chain is not a real one. */
#define NETADDR_MAX_HOPS 16

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int netaddr_parse(const char *text, struct netaddr *out)
{
	struct in_addr v4;
	if (!text)
		return -1;
	if (inet_pton(AF_INET, text, &v4) == 1) {
		memcpy(out->bytes, v4_mapped_prefix, 12);
		memcpy(out->bytes + 12, &v4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, text, out->bytes) == 1)
		return 0;
	return -1;
}

bool netaddr_is_ipv4(const struct netaddr *a)
{
	return memcmp(a->bytes, v4_mapped_prefix, 12) == 0;
}

static bool prefix_matches(const struct netaddr *a, const struct netaddr *net, int bits)
{
	int whole = bits / 8, rest = bits % 8;
	if (memcmp(a->bytes, net->bytes, (size_t)whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a->bytes[whole] & mask) == (net->bytes[whole] & mask);
}

static bool trusted_addr(const struct netaddr_trust *trust, const struct netaddr *a)
{
	for (int i = 0; i < trust->count; i++)
		if (prefix_matches(a, &trust->net[i], trust->prefix[i]))
			return true;
	return false;
}

static int parse_cidr(const char *item, size_t len, struct netaddr *net, int *prefix)
{
	char text[NETADDR_TEXT_MAX + 4];
	if (len == 0 || len >= sizeof(text))
		return -1;
	memcpy(text, item, len);
	text[len] = '\0';
	char *slash = strchr(text, '/');
	long bits = -1;
	if (slash) {
		*slash = '\0';
		char *end;
		if (!slash[1] || slash[1] < '0' || slash[1] > '9')
			return -1;
		bits = strtol(slash + 1, &end, 10);
		if (*end)
			return -1;
	}
	if (netaddr_parse(text, net) != 0)
		return -1;
	/* An IPv4 prefix counts bits of the IPv4 address. */
	long max = netaddr_is_ipv4(net) ? 32 : 128;
	if (bits < 0)
		bits = max;
	if (bits > max)
		return -1;
	*prefix = (int)(netaddr_is_ipv4(net) ? bits + 96 : bits);
	return 0;
}

int netaddr_trust_parse(const char *list, struct netaddr_trust *trust, struct ee_error *err)
{
	trust->count = 0;
	const char *p = list ? list : "";
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *end = p;
		while (*end && *end != ',' && *end != ' ')
			end++;
		if (end == p)
			break;
		if (trust->count == NETADDR_MAX_TRUSTED ||
		    parse_cidr(p, (size_t)(end - p), &trust->net[trust->count],
		               &trust->prefix[trust->count]) != 0)
			return ee_fail(err, 500, "invalid_config:EE_TRUSTED_PROXIES");
		trust->count++;
		p = end;
	}
	return 0;
}

int netaddr_trust_load(struct netaddr_trust *trust, struct ee_error *err)
{
	char *value = config_get_string("EE_TRUSTED_PROXIES", NETADDR_DEFAULT_TRUSTED);
	if (!value)
		return ee_fail(err, 500, "out_of_memory");
	int rc = netaddr_trust_parse(value, trust, err);
	free(value);
	return rc;
}

bool netaddr_trusted(const struct netaddr_trust *trust, const char *text)
{
	struct netaddr a;
	return netaddr_parse(text, &a) == 0 && trusted_addr(trust, &a);
}

static void copy_text(char *out, size_t out_len, const char *text, size_t len)
{
	if (out_len == 0)
		return;
	if (len >= out_len)
		len = out_len - 1;
	memcpy(out, text, len);
	out[len] = '\0';
}

void netaddr_client(const struct netaddr_trust *trust, const char *peer,
                    const char *forwarded_for, char *out, size_t out_len)
{
	const char *chosen = peer ? peer : "";
	size_t chosen_len = strlen(chosen);
	if (!forwarded_for || !netaddr_trusted(trust, chosen)) {
		copy_text(out, out_len, chosen, chosen_len);
		return;
	}
	const char *end = forwarded_for + strlen(forwarded_for);
	for (int hop = 0; hop < NETADDR_MAX_HOPS && end > forwarded_for; hop++) {
		const char *start = end;
		while (start > forwarded_for && start[-1] != ',')
			start--;
		const char *a = start, *b = end;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		char text[NETADDR_TEXT_MAX];
		struct netaddr addr;
		if (b == a || (size_t)(b - a) >= sizeof(text))
			break;
		memcpy(text, a, (size_t)(b - a));
		text[b - a] = '\0';
		if (netaddr_parse(text, &addr) != 0)
			break;
		chosen = a;
		chosen_len = (size_t)(b - a);
		if (!trusted_addr(trust, &addr))
			break;
		end = start > forwarded_for ? start - 1 : start;
	}
	copy_text(out, out_len, chosen, chosen_len);
}
