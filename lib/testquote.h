/*
 * testquote.h - quotes for machines without TDX, for tests and development.
 *
 * A test quote is base64 of "EE-TEST-QUOTE-V1" (16 bytes), the 64-byte
 * REPORTDATA, and one byte 1/0 for sealed.  It proves nothing about
 * hardware: the verifier accepts it only on the development network and
 * only when EE_TEST_VERIFIER=1 (attest.h).  The DCAP work replaces it with
 * real-format quotes signed by a local test root (EE_DEV_ROOT_CA).
 */
#ifndef EE_TESTQUOTE_H
#define EE_TESTQUOTE_H

#include <stdbool.h>
#include <stddef.h>

#include "attest.h"

#define TESTQUOTE_MAGIC "EE-TEST-QUOTE-V1"
#define TESTQUOTE_LEN (16 + ATTEST_REPORT_DATA_LEN + 1)
#define TESTQUOTE_B64_LEN 108 /* base64 of TESTQUOTE_LEN bytes */

/* Builds the quote for report_data; out gets TESTQUOTE_B64_LEN chars and a NUL. */
void testquote_build(const unsigned char report_data[ATTEST_REPORT_DATA_LEN], bool sealed,
                     char out[TESTQUOTE_B64_LEN + 1]);

/* Parses a test quote; -1 if it is not one. */
int testquote_parse(const char *b64, size_t len, unsigned char report_data[ATTEST_REPORT_DATA_LEN],
                    bool *sealed);

#endif
