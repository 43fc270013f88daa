/*
 * netaddr.h - the client's address, seen through trusted proxies.
 *
 * Behind Caddy every request and every tunnel comes from Caddy's address.
 * The limits that count per client (failed authentication in ee-api,
 * unattested sockets in ee-tunneld) need the address Caddy was reached
 * from.  X-Forwarded-For carries it, but any client can write that header,
 * so it is believed only as far as the hops are in EE_TRUSTED_PROXIES.
 */
#ifndef EE_NETADDR_H
#define EE_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define NETADDR_TEXT_MAX 64     /* room for any IPv6 text form and its NUL */
#define NETADDR_MAX_TRUSTED 64  /* networks in EE_TRUSTED_PROXIES */
#define NETADDR_DEFAULT_TRUSTED "127.0.0.1/32,::1/128"

/* An address as 16 bytes; IPv4 is kept as an IPv4-mapped IPv6 address. */
struct netaddr {
	uint8_t bytes[16];
};

struct netaddr_trust {
	struct netaddr net[NETADDR_MAX_TRUSTED];
	int prefix[NETADDR_MAX_TRUSTED]; /* in bits of the 16-byte form */
	int count;
};

/* A literal IPv4 or IPv6 address (no port, no brackets); -1 otherwise. */
int netaddr_parse(const char *text, struct netaddr *out);
bool netaddr_is_ipv4(const struct netaddr *a);

/*
 * "cidr,cidr,...", each "address" or "address/prefix" (spaces are taken
 * as commas); "" trusts nothing.
 */
int netaddr_trust_parse(const char *list, struct netaddr_trust *trust, struct ee_error *err);
/* Reads EE_TRUSTED_PROXIES (default: the loopback addresses). */
int netaddr_trust_load(struct netaddr_trust *trust, struct ee_error *err);
bool netaddr_trusted(const struct netaddr_trust *trust, const char *text);

/*
 * The client behind peer: peer itself unless it is trusted; then the
 * rightmost address of forwarded_for (X-Forwarded-For, may be NULL) that is
 * not trusted, or the leftmost when all are.  An entry that is not an
 * address ends the walk at the last hop believed.  out gets at most
 * NETADDR_TEXT_MAX bytes.
 */
void netaddr_client(const struct netaddr_trust *trust, const char *peer,
                    const char *forwarded_for, char *out, size_t out_len);

#endif
