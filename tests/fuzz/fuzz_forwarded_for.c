/*
 * fuzz_forwarded_for.c - libFuzzer target for lib/netaddr.c: the trust
 * list (EE_TRUSTED_PROXIES) and the client taken from X-Forwarded-For,
 * whose value any client writes.
 *
 * The input is three parts split at the first two newlines: a trust list,
 * the peer's address and the X-Forwarded-For value (each copied into a
 * buffer of exactly its length plus the terminator the callers give).
 * Checks:
 *   - a trust list that parses holds at most NETADDR_MAX_TRUSTED networks;
 *   - the client is the peer when the peer is not trusted or there is no
 *     header; otherwise the peer or one entry of the header, blanks
 *     trimmed, that is an address;
 *   - it always fits NETADDR_TEXT_MAX with its terminator.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

#define FUZZ_TARGET "fuzz_forwarded_for"
#include "fuzz_support.h"

static char *part(const char *start, size_t len)
{
	char *p = malloc(len + 1);
	if (!p)
		return NULL;
	memcpy(p, start, len);
	p[len] = '\0';
	return p;
}

/* True when client is one comma-separated entry of header, trimmed, and an address. */
static bool is_entry_of(const char *client, const char *header)
{
	struct netaddr a;
	if (netaddr_parse(client, &a) != 0)
		return false;
	size_t n = strlen(client);
	for (const char *p = header; (p = strstr(p, client)) != NULL; p++) {
		const char *before = p, *after = p + n;
		while (before > header && (before[-1] == ' ' || before[-1] == '\t'))
			before--;
		while (*after == ' ' || *after == '\t')
			after++;
		if ((before == header || before[-1] == ',') && (*after == '\0' || *after == ','))
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	if (!fuzz_input_copy(data, size, &text))
		return 0;
	const char *end = text + size;
	const char *nl1 = memchr(text, '\n', size);
	const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
	char *list = part(text, nl1 ? (size_t)(nl1 - text) : size);
	char *peer = nl1 ? part(nl1 + 1, (size_t)((nl2 ? nl2 : end) - nl1 - 1)) : part("", 0);
	char *header = nl2 ? part(nl2 + 1, (size_t)(end - nl2 - 1)) : NULL;
	free(text);
	if (!list || !peer || (nl2 && !header))
		goto out;
	/* A NUL inside a part: the callers never pass one, C strings end there. */
	struct netaddr_trust trust;
	struct ee_error err;
	if (netaddr_trust_parse(list, &trust, &err) != 0) {
		if (strcmp(err.reason, "invalid_config:EE_TRUSTED_PROXIES") != 0)
			fuzz_fail("a trust list refused with another reason", data, size);
		netaddr_trust_parse("127.0.0.1/32,::1/128,10.0.0.0/8,2001:db8::/32", &trust, &err);
	}
	if (trust.count < 0 || trust.count > NETADDR_MAX_TRUSTED)
		fuzz_fail("more networks than NETADDR_MAX_TRUSTED", data, size);

	char client[NETADDR_TEXT_MAX + 8];
	memset(client, 'X', sizeof(client));
	netaddr_client(&trust, peer, header, client, NETADDR_TEXT_MAX);
	if (memchr(client, '\0', NETADDR_TEXT_MAX) == NULL)
		fuzz_fail("the client does not fit NETADDR_TEXT_MAX", data, size);
	char peer_cut[NETADDR_TEXT_MAX];
	snprintf(peer_cut, sizeof(peer_cut), "%s", peer);
	bool is_peer = strcmp(client, peer_cut) == 0;
	if ((!header || !netaddr_trusted(&trust, peer)) && !is_peer)
		fuzz_fail("the header was believed from a peer not trusted", data, size);
	if (!is_peer && !is_entry_of(client, header))
		fuzz_fail("the client is neither the peer nor an address in the header", data, size);
out:
	free(list);
	free(peer);
	free(header);
	return 0;
}
