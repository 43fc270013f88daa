/*
 * fuzz_support.h - what the libFuzzer targets of tests/fuzz/ share: the
 * input copied into a buffer of exactly its length, and the one way a
 * finding is reported.  A target defines FUZZ_TARGET (its name, for the
 * report) before including this header; FUZZ_INPUT_SHOWN, how many input
 * bytes a report shows, may be set the same way.
 */
#ifndef EE_FUZZ_SUPPORT_H
#define EE_FUZZ_SUPPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_TARGET
#error "define FUZZ_TARGET before including fuzz_support.h"
#endif

/* Inputs longer than this are skipped: nothing a request carries is that long. */
#define FUZZ_MAX_INPUT 65536

#ifndef FUZZ_INPUT_SHOWN
#define FUZZ_INPUT_SHOWN 200
#endif

/*
 * Reports a finding with the input that led to it (printable bytes only,
 * the rest as '?') and aborts, so libFuzzer keeps the input as a crash.
 */
__attribute__((noreturn)) static inline void fuzz_fail(const char *what, const uint8_t *data,
                                                       size_t size)
{
	fprintf(stderr, "ERROR: " FUZZ_TARGET ": %s for input \"", what);
	for (size_t i = 0; i < size && i < FUZZ_INPUT_SHOWN; i++)
		fputc(data[i] >= 0x20 && data[i] < 0x7f ? data[i] : '?', stderr);
	fprintf(stderr, "\"\n");
	abort();
}

/*
 * Copies the input into *out, exactly size bytes and no terminator, so a
 * read past the end is an ASan report; the caller frees *out (which may be
 * NULL for an empty input).  False when the input is to be skipped: longer
 * than FUZZ_MAX_INPUT, or no memory for it.
 */
static inline bool fuzz_input_copy(const uint8_t *data, size_t size, char **out)
{
	*out = NULL;
	if (size > FUZZ_MAX_INPUT)
		return false;
	*out = malloc(size);
	if (!*out && size)
		return false;
	if (size)
		memcpy(*out, data, size);
	return true;
}

#endif
