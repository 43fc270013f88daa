/* testquote.c - building and parsing test quotes; see testquote.h. */
#include "testquote.h"

#include <string.h>

#include "base64.h"

void testquote_build(const unsigned char report_data[ATTEST_REPORT_DATA_LEN], bool sealed,
                     char out[TESTQUOTE_B64_LEN + 1])
{
	unsigned char raw[TESTQUOTE_LEN];
	memcpy(raw, TESTQUOTE_MAGIC, 16);
	memcpy(raw + 16, report_data, ATTEST_REPORT_DATA_LEN);
	raw[16 + ATTEST_REPORT_DATA_LEN] = sealed ? 1 : 0;
	base64_encode(raw, sizeof(raw), out);
}

int testquote_parse(const char *b64, size_t len, unsigned char report_data[ATTEST_REPORT_DATA_LEN],
                    bool *sealed)
{
	unsigned char raw[TESTQUOTE_LEN + 3];
	size_t n;
	if (len != TESTQUOTE_B64_LEN || base64_decode(b64, len, raw, &n) != 0 || n != TESTQUOTE_LEN ||
	    memcmp(raw, TESTQUOTE_MAGIC, 16) != 0 || raw[TESTQUOTE_LEN - 1] > 1)
		return -1;
	memcpy(report_data, raw + 16, ATTEST_REPORT_DATA_LEN);
	*sealed = raw[TESTQUOTE_LEN - 1] == 1;
	return 0;
}
