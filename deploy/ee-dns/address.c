/* address.c - checking and comparing the addresses ee-dns publishes; see ee_dns.h. */
#include "ee_dns.h"

#include <string.h>

int dns_address_parse(const char *text, int family, char *out, size_t out_size)
{
	unsigned char bin[16];
	static const unsigned char zero[16];
	if (!text || inet_pton(family, text, bin) != 1)
		return -1;
	if (family == AF_INET) {
		if (memcmp(bin, zero, 4) == 0 || (bin[0] & 0xf0) == 0xe0 ||
		    memcmp(bin, "\xff\xff\xff\xff", 4) == 0)
			return -1;
	} else {
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(bin, zero, 16) == 0 || bin[0] == 0xff || memcmp(bin, mapped, 12) == 0)
			return -1;
	}
	return inet_ntop(family, bin, out, (socklen_t)out_size) ? 0 : -1;
}

bool dns_address_equal(const char *a, const char *b, int family)
{
	unsigned char x[16], y[16];
	if (inet_pton(family, a, x) != 1 || inet_pton(family, b, y) != 1)
		return false;
	return memcmp(x, y, family == AF_INET ? 4 : 16) == 0;
}
