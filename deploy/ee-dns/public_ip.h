/*
 * public_ip.h - this machine's public address as the internet sees it
 * (--auto-ip): a GET to an echo service that answers with the caller's
 * address as plain text (api.ipify.org for IPv4, api6.ipify.org for IPv6,
 * or EE_DNS_IP_URL / EE_DNS_IPV6_URL).
 */
#ifndef EE_DNS_PUBLIC_IP_H
#define EE_DNS_PUBLIC_IP_H

#include <stddef.h>

#include <curl/curl.h>

/* An echo's answer is one address; anything longer is not one. */
#define PUBLIC_IP_MAX_ANSWER 256

/*
 * Asks url for an address of family (AF_INET or AF_INET6) and writes it,
 * canonical, to out.  -1 with a reason in why (for a person) when the
 * service cannot be reached or answers anything but such an address.
 */
int public_ip_discover(CURL *curl, const char *url, int family, long timeout_ms, char *out,
                       size_t out_size, char *why, size_t why_size);

#endif
