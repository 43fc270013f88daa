/*
 * fuzz_quote.c - what the control plane does with the bytes of an agent's
 * quote: tdx_quote_parse (lib/tdx_quote.c), then the whole DCAP
 * verification (lib/dcap.c) against synthetic collateral under a test root
 * (dcap_fixture.h), and the PEM chain and SGX extension parsers of
 * lib/dcap_x509.c on what the quote carries and on the raw input.
 * Properties: no crash, no leak, no read outside the input; a parsed quote
 * points only inside the input, its lengths add up to the input's, and its
 * padding is zeros; a refused quote has a known reason and status 400 and
 * a zeroed struct; a verified quote parsed, is not a debug TD and has a
 * status other than Revoked; every failure names a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_TARGET "fuzz_quote"
#include "fuzz_support.h"

#include "dcap.h"
#include "dcap_fixture.h"
#include "dcap_x509.h"
#include "tdx_quote.h"

static struct dcap_prepared *prepared;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	struct dcap_trust *trust;
	struct dcap_collateral c;
	struct ee_error err;
	if (dcap_trust_create(&trust, &err) != 0 ||
	    dcap_trust_add_pem(trust, dcap_fixture_root_pem, strlen(dcap_fixture_root_pem), &err) != 0 ||
	    dcap_collateral_from_json(dcap_fixture_collateral_json, strlen(dcap_fixture_collateral_json),
	                              &c, &err) != 0 ||
	    dcap_collateral_prepare(trust, &c, &prepared, &err) != 0)
		abort();
	dcap_collateral_free(&c);
	dcap_trust_destroy(trust);
	return 0;
}

static const char *const parse_reasons[] = {
	"quote_too_large", "quote_truncated", "unsupported_quote_version",
	"unsupported_attestation_key_type", "not_a_tdx_quote", "unsupported_body_type",
	"body_size_mismatch", "unsupported_certification_data", "signature_data_size_mismatch",
	"certification_data_size_mismatch", "invalid_pck_chain", "quote_trailing_bytes",
};

static bool known_parse_reason(const char *reason)
{
	for (size_t i = 0; i < sizeof(parse_reasons) / sizeof(parse_reasons[0]); i++) {
		if (strcmp(reason, parse_reasons[i]) == 0)
			return true;
	}
	return false;
}

static bool within(const uint8_t *base, size_t len, const void *p, size_t n)
{
	const uint8_t *b = p;
	return b && b >= base && n <= len && (size_t)(b - base) <= len - n;
}

static void check_parsed(const uint8_t *data, size_t size, const uint8_t *buf,
                         const struct tdx_quote *q)
{
	const struct tdx_td_report *td = &q->td;
	const struct tdx_qe_report *qe = &q->qe_report;
	size_t body = q->body_type == TDX_BODY_TYPE_TD15 ? TDX_TD15_BODY_LEN : TDX_TD10_BODY_LEN;
	const struct {
		const void *p;
		size_t n;
	} fields[] = {
		{q->header, 48}, {q->qe_vendor_id, 16}, {q->user_data, 20}, {q->body, q->body_len},
		{td->tee_tcb_svn, 16}, {td->mr_seam, 48}, {td->mr_signer_seam, 48},
		{td->seam_attributes, 8}, {td->td_attributes, 8}, {td->xfam, 8}, {td->mr_td, 48},
		{td->mr_config_id, 48}, {td->mr_owner, 48}, {td->mr_owner_config, 48},
		{td->rtmr[0], 48}, {td->rtmr[1], 48}, {td->rtmr[2], 48}, {td->rtmr[3], 48},
		{td->report_data, 64}, {q->signed_data, q->signed_len}, {q->signature, 64},
		{q->attestation_key, 64}, {qe->raw, 384}, {qe->cpu_svn, 16}, {qe->misc_select, 4},
		{qe->attributes, 16}, {qe->mr_enclave, 32}, {qe->mr_signer, 32}, {qe->report_data, 64},
		{q->qe_report_signature, 64}, {q->pck_chain_pem, q->pck_chain_pem_len},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (!within(buf, size, fields[i].p, fields[i].n))
			fuzz_fail("a field outside the input", data, size);
	}
	if (q->qe_auth_data_len && !within(buf, size, q->qe_auth_data, q->qe_auth_data_len))
		fuzz_fail("QE auth data outside the input", data, size);
	if (q->body_type == TDX_BODY_TYPE_TD15) {
		if (!within(buf, size, td->tee_tcb_svn2, 16) || !within(buf, size, td->mr_service_td, 48))
			fuzz_fail("a TDX 1.5 field outside the input", data, size);
	} else if (td->tee_tcb_svn2 || td->mr_service_td) {
		fuzz_fail("TDX 1.5 fields in a 1.0 body", data, size);
	}
	if ((q->version != 4 && q->version != 5) || q->attestation_key_type != 2 ||
	    q->tee_type != 0x81 || (q->version == 4 && q->body_type != TDX_BODY_TYPE_TD10) ||
	    q->body_len != body)
		fuzz_fail("a parsed quote of a kind the parser refuses", data, size);
	size_t header = 48 + (q->version == 5 ? 6 : 0);
	if (q->data != buf || q->len != size || q->signed_data != buf ||
	    q->signed_len != header + body || q->body != buf + header ||
	    q->signature != buf + q->signed_len + 4 ||
	    q->signed_len + 4 + (size_t)q->signature_data_len + q->padding_len != size ||
	    (size_t)q->certification_data_len + 134 != q->signature_data_len ||
	    384 + 64 + 2 + q->qe_auth_data_len + 6 + q->pck_chain_pem_len != q->certification_data_len)
		fuzz_fail("lengths that do not add up", data, size);
	for (size_t i = size - q->padding_len; i < size; i++) {
		if (buf[i] != 0)
			fuzz_fail("padding that is not zeros", data, size);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;
	if (!fuzz_input_copy(data, size, &copy))
		return 0;
	const uint8_t *buf = (const uint8_t *)copy;
	struct tdx_quote q;
	struct ee_error err;
	int parsed = tdx_quote_parse(buf, size, &q, &err);
	if (parsed == 0) {
		check_parsed(data, size, buf, &q);
	} else {
		static const struct tdx_quote zero;
		if (err.status != 400 || !known_parse_reason(err.reason))
			fuzz_fail("an unknown parse reason", data, size);
		if (memcmp(&q, &zero, sizeof(q)) != 0)
			fuzz_fail("a refused quote left fields set", data, size);
	}

	struct dcap_result r;
	int verified = dcap_verify_prepared(prepared, buf, size, DCAP_FIXTURE_TIME, &r, &err);
	if (!r.reason[0] || (verified == 0) != r.verified)
		fuzz_fail("a verdict without a reason", data, size);
	if (verified == 0 && (parsed != 0 || tdx_quote_is_debug(&q) ||
	                      strcmp(r.tcb_status, "Revoked") == 0 || !r.tcb_status[0] ||
	                      !r.signatures_verified))
		fuzz_fail("a quote verified that should not be", data, size);
	if (r.advisory_count > DCAP_MAX_ADVISORIES)
		fuzz_fail("too many advisories", data, size);

	if (parsed == 0) {
		struct dcap_chain chain;
		if (dcap_chain_from_pem(q.pck_chain_pem, q.pck_chain_pem_len, &chain) == 0) {
			struct dcap_sgx_extension ext;
			for (size_t i = 0; i < chain.count; i++)
				dcap_sgx_extension_from_cert(chain.certs[i].x509, &ext);
			dcap_chain_free(&chain);
		}
	}
	/* The SGX extension's DER parser on arbitrary bytes. */
	struct dcap_sgx_extension ext;
	dcap_sgx_extension_parse(buf, size, &ext);
	free(copy);
	return 0;
}
