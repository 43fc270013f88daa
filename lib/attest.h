/*
 * attest.h - what an agent's attestation must prove, and the verifier
 * interface ee-tunneld calls for every attest_response.
 *
 * REPORTDATA binding (DESIGN.md section 5, point 3): the 64 bytes of the
 * quote's REPORTDATA are
 *     SHA-256(measurement material) || SHA-256(nonce)
 * where the nonce is the 32 hex characters the control plane sent, hashed
 * as text, and the measurement material is the agent's "measurements"
 * object in canonical form: a flat object of string, boolean or integer
 * values, written as "key=value\n" lines sorted by key (strings verbatim,
 * booleans as true/false, integers in decimal).  docs/PROTOCOL.md has the
 * same rule for agent authors.
 *
 * verifier.h decides a whole attestation with these.
 */
#ifndef EE_ATTEST_H
#define EE_ATTEST_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "error.h"

#define ATTEST_NONCE_HEX_LEN 32
#define ATTEST_REPORT_DATA_LEN 64
#define ATTEST_MAX_MEASUREMENTS 64    /* keys in a measurements object */
#define ATTEST_MAX_MEASUREMENT_LEN 512 /* bytes of one key or value */
#define ATTEST_MAX_QUOTE_B64 (64 * 1024)

/* The canonical digest of a measurements object: 400 invalid_measurements. */
int attest_measurements_digest(struct json_object *measurements, unsigned char out[32],
                               struct ee_error *err);
/* The REPORTDATA an agent must produce for these measurements and this nonce. */
int attest_expected_report_data(struct json_object *measurements, const char *nonce_hex,
                                unsigned char out[ATTEST_REPORT_DATA_LEN], struct ee_error *err);

#endif
