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
 * A verifier decides one attestation.  Until the DCAP verifier exists, the
 * only quotes any verifier accepts are test quotes (testquote.h), and only
 * on the development network (sandbox-1) when EE_TEST_VERIFIER=1: on
 * forge-1 every attestation is refused ("dcap_unavailable").
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

/* What the agent sent in attest_response, with the context it is judged in. */
struct attest_evidence {
	const char *nonce_hex;        /* the nonce the control plane issued */
	const char *quote_b64;        /* NULL if absent */
	size_t quote_b64_len;
	const char *report_data_hex;  /* NULL if absent */
	struct json_object *measurements; /* NULL if absent */
	const char *network;
	const char *repo;
	const char *release_tag;
};

struct attest_verdict {
	bool verified;
	bool sealed;
	char reason[EE_REASON_MAX]; /* "ok", or why not: the original's reasons */
};

struct verifier_options {
	bool test_quotes_on_sandbox; /* EE_TEST_VERIFIER: accept test quotes on sandbox-1 */
};

struct verifier;

int verifier_create(const struct verifier_options *opts, struct verifier **out,
                    struct ee_error *err);
void verifier_destroy(struct verifier *v);
/* Decides one attestation; never fails to answer. */
void verifier_verify(struct verifier *v, const struct attest_evidence *ev,
                     struct attest_verdict *out);

#endif
