/*
 * test_dcap_samples.c - lib/tdx_quote.c and lib/dcap*.c against real Intel
 * quotes and collateral (shared/testdata/dcap, read from ../shared beside
 * the checkout; a missing file is a failure, never a skip): the fields the
 * README gives, verification at fixed times, the outdated platform, the SGX
 * quote, expiry at the real time, a flipped byte in every signed region,
 * every truncation, and bytes appended.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "dcap.h"
#include "dcap_x509.h"
#include "tdx_quote.h"
#include "util.h"

#define DATA_DIR "../shared/testdata/dcap/"
#define AT_TDX 1751624655      /* README: inside tdx_quote's collateral */
#define AT_OUTDATED 1772707833 /* README: inside tdx_quote_outdated's collateral */

struct blob {
	unsigned char *data;
	size_t len;
};

static bool read_file(const char *name, struct blob *out)
{
	char path[256];
	snprintf(path, sizeof(path), DATA_DIR "%s", name);
	out->data = NULL;
	out->len = 0;
	FILE *f = fopen(path, "rb");
	if (!f) {
		test_fail(__FILE__, __LINE__, "cannot open %s (run from the repository root, with "
		          "shared/ beside it)", path);
		return false;
	}
	size_t cap = 1 << 16;
	out->data = malloc(cap);
	while (out->data) {
		size_t n = fread(out->data + out->len, 1, cap - out->len, f);
		out->len += n;
		if (out->len < cap)
			break;
		cap *= 2;
		unsigned char *bigger = realloc(out->data, cap);
		if (!bigger) {
			free(out->data);
			out->data = NULL;
		}
		out->data = bigger;
	}
	fclose(f);
	if (!out->data)
		test_fail(__FILE__, __LINE__, "out of memory reading %s", path);
	return out->data != NULL;
}

static bool hex_is(const uint8_t *p, size_t n, const char *want)
{
	char hex[1024];
	if (!p || 2 * n + 1 > sizeof(hex))
		return false;
	util_hex_encode(p, n, hex);
	return strcmp(hex, want) == 0;
}

static bool inside(const struct tdx_quote *q, const void *p, size_t n)
{
	const uint8_t *b = p;
	return b && b >= q->data && b + n <= q->data + q->len;
}

/* Everything a test needs of the samples, loaded once. */
static struct blob tdx, outdated, sgx, tdx_json, outdated_json, sgx_json, root_pem;
static struct dcap_trust *trust;
static struct dcap_collateral tdx_col, outdated_col, sgx_col;
static struct dcap_prepared *tdx_prep, *outdated_prep;

static bool load_samples(void)
{
	test_case("samples: every file of shared/testdata/dcap is there and loads");
	bool ok = read_file("tdx_quote", &tdx) && read_file("tdx_quote_outdated", &outdated) &&
	          read_file("sgx_quote", &sgx) && read_file("tdx_quote_collateral.json", &tdx_json) &&
	          read_file("tdx_quote_outdated_collateral.json", &outdated_json) &&
	          read_file("sgx_quote_collateral.json", &sgx_json) &&
	          read_file("intel_sgx_root_ca.pem", &root_pem);
	if (!ok)
		return false;
	struct ee_error err;
	CHECK(dcap_trust_create(&trust, &err) == 0);
	CHECK(dcap_trust_add_pem(trust, (const char *)root_pem.data, root_pem.len, &err) == 0,
	      "%s", err.reason);
	CHECK_INT(dcap_trust_count(trust), 1);
	CHECK(dcap_collateral_from_json((const char *)tdx_json.data, tdx_json.len, &tdx_col, &err) == 0,
	      "%s", err.reason);
	CHECK(dcap_collateral_from_json((const char *)outdated_json.data, outdated_json.len,
	                                &outdated_col, &err) == 0, "%s", err.reason);
	CHECK(dcap_collateral_from_json((const char *)sgx_json.data, sgx_json.len, &sgx_col, &err) == 0,
	      "%s", err.reason);
	CHECK(dcap_collateral_prepare(trust, &tdx_col, &tdx_prep, &err) == 0, "%s", err.reason);
	CHECK(dcap_collateral_prepare(trust, &outdated_col, &outdated_prep, &err) == 0, "%s",
	      err.reason);
	return !test_case_failed();
}

static void test_root(void)
{
	test_case("trust: Intel's root has the README's SHA-256 fingerprint");
	struct dcap_chain chain;
	CHECK(dcap_chain_from_pem((const char *)root_pem.data, root_pem.len, &chain) == 0);
	CHECK_INT(chain.count, 1);
	if (chain.count == 1) {
		char fp[65];
		util_sha256_hex(chain.certs[0].der, chain.certs[0].der_len, fp);
		CHECK_STR(fp, "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3");
	}
	dcap_chain_free(&chain);

	test_case("trust: pinning the same root twice keeps one; a chain or garbage is refused");
	struct ee_error err;
	CHECK(dcap_trust_add_pem(trust, (const char *)root_pem.data, root_pem.len, &err) == 0);
	CHECK_INT(dcap_trust_count(trust), 1);
	CHECK(dcap_trust_add_pem(trust, tdx_col.tcb_info_issuer_chain, tdx_col.tcb_info_issuer_chain_len,
	                         &err) != 0);
	CHECK_STR(err.reason, "trust_invalid");
	CHECK(dcap_trust_add_pem(trust, "hello", 5, &err) != 0);
	CHECK_STR(err.reason, "trust_invalid");
	CHECK(dcap_trust_add_file(trust, "/nonexistent/root.pem", &err) != 0);
	CHECK_STR(err.reason, "trust_invalid");
	CHECK_INT(dcap_trust_count(trust), 1);

	test_case("trust: the TCB signing certificate alone is not a root (not self-signed)");
	/* The first certificate of the issuer chain, on its own. */
	const char *chain_text = tdx_col.tcb_info_issuer_chain;
	const char *end = strstr(chain_text, "-----END CERTIFICATE-----");
	CHECK(end != NULL);
	if (end) {
		size_t n = (size_t)(end - chain_text) + strlen("-----END CERTIFICATE-----");
		CHECK(dcap_trust_add_pem(trust, chain_text, n, &err) != 0);
		CHECK_STR(err.reason, "trust_invalid");
	}
}

static void test_parse_tdx(void)
{
	struct tdx_quote q;
	struct ee_error err;
	test_case("tdx_quote: parses with the README's fields");
	CHECK(tdx_quote_parse(tdx.data, tdx.len, &q, &err) == 0, "%s", err.reason);
	CHECK_INT(tdx.len, 5006);
	CHECK_INT(q.version, 4);
	CHECK_INT(q.attestation_key_type, 2);
	CHECK_INT(q.tee_type, 0x81);
	CHECK_INT(q.body_type, TDX_BODY_TYPE_TD10);
	CHECK_INT(q.body_len, TDX_TD10_BODY_LEN);
	CHECK(q.body == tdx.data + 48);
	CHECK(hex_is(q.td.td_attributes, 8, "0000001000000000"));
	CHECK(hex_is(q.td.mr_td, 48, "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
	                             "de03ae6dc5f87f27428b2538873118b7"));
	CHECK(hex_is(q.td.report_data, 64, "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d"
	                                   "35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518f"
	                                   "adb92c2b523f20"));
	CHECK(!tdx_quote_is_debug(&q));
	CHECK(q.td.tee_tcb_svn2 == NULL && q.td.mr_service_td == NULL);

	test_case("tdx_quote: layout of the signature data");
	CHECK(q.signed_data == tdx.data);
	CHECK_INT(q.signed_len, 48 + 584);
	CHECK_INT(q.signature_data_len, 4300);
	CHECK(q.signature == tdx.data + 636);
	CHECK(q.attestation_key == tdx.data + 700);
	CHECK_INT(q.certification_data_len, 4166);
	CHECK(q.qe_report.raw == tdx.data + 770);
	CHECK(q.qe_report_signature == tdx.data + 770 + 384);
	CHECK_INT(q.qe_auth_data_len, 32);
	CHECK_INT(q.pck_chain_pem_len, 3678);
	CHECK(q.pck_chain_pem + q.pck_chain_pem_len == (const char *)tdx.data + 4936);
	CHECK_INT(q.qe_report.isv_prod_id, 2);
	CHECK_INT(q.qe_report.isv_svn, 6);
	CHECK(hex_is(q.qe_report.mr_signer, 32,
	             "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5"));
	/* Intel's quote generator left 70 zero bytes after the signature data. */
	CHECK_INT(q.padding_len, 70);

	test_case("tdx_quote: every field pointer lies inside the buffer");
	const struct {
		const void *p;
		size_t n;
	} fields[] = {
		{q.header, 48}, {q.qe_vendor_id, 16}, {q.user_data, 20}, {q.body, q.body_len},
		{q.td.tee_tcb_svn, 16}, {q.td.mr_seam, 48}, {q.td.mr_signer_seam, 48},
		{q.td.seam_attributes, 8}, {q.td.td_attributes, 8}, {q.td.xfam, 8}, {q.td.mr_td, 48},
		{q.td.mr_config_id, 48}, {q.td.mr_owner, 48}, {q.td.mr_owner_config, 48},
		{q.td.rtmr[0], 48}, {q.td.rtmr[1], 48}, {q.td.rtmr[2], 48}, {q.td.rtmr[3], 48},
		{q.td.report_data, 64}, {q.signature, 64}, {q.attestation_key, 64},
		{q.qe_report.raw, 384}, {q.qe_report.cpu_svn, 16}, {q.qe_report.misc_select, 4},
		{q.qe_report.attributes, 16}, {q.qe_report.mr_enclave, 32}, {q.qe_report.mr_signer, 32},
		{q.qe_report.report_data, 64}, {q.qe_report_signature, 64},
		{q.qe_auth_data, q.qe_auth_data_len}, {q.pck_chain_pem, q.pck_chain_pem_len},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		CHECK(inside(&q, fields[i].p, fields[i].n), "field %zu", i);
}

static void test_parse_outdated(void)
{
	struct tdx_quote q;
	struct ee_error err;
	test_case("tdx_quote_outdated: a version 5 quote with a TDX 1.5 body");
	CHECK(tdx_quote_parse(outdated.data, outdated.len, &q, &err) == 0, "%s", err.reason);
	CHECK_INT(q.version, 5);
	CHECK_INT(q.body_type, TDX_BODY_TYPE_TD15);
	CHECK_INT(q.body_len, TDX_TD15_BODY_LEN);
	CHECK(q.body == outdated.data + 54);
	CHECK_INT(q.signed_len, 48 + 6 + 648);
	CHECK_INT(q.padding_len, 0);
	CHECK(inside(&q, q.td.tee_tcb_svn2, 16));
	CHECK(inside(&q, q.td.mr_service_td, 48));
	CHECK(q.td.tee_tcb_svn2 == q.body + 584 && q.td.mr_service_td == q.body + 600);
	CHECK(hex_is(q.td.tee_tcb_svn, 16, "07010300000000000000000000000000"));
	CHECK(hex_is(q.td.tee_tcb_svn2, 16, "0d010300000000000000000000000000"));
	CHECK(!tdx_quote_is_debug(&q));
}

static void test_verify_tdx(void)
{
	struct dcap_result r;
	struct ee_error err;
	test_case("tdx_quote: verifies at %d, UpToDate, no advisory IDs", AT_TDX);
	CHECK(dcap_verify_prepared(tdx_prep, tdx.data, tdx.len, AT_TDX, &r, &err) == 0, "%s",
	      err.reason);
	CHECK(r.verified);
	CHECK(r.signatures_verified);
	CHECK_STR(r.reason, "ok");
	CHECK_INT(r.status, 0);
	CHECK_STR(r.tcb_status, "UpToDate");
	CHECK_STR(r.platform_status, "UpToDate");
	CHECK_STR(r.qe_status, "UpToDate");
	CHECK_STR(r.module_status, "UpToDate"); /* TEE_TCB_SVN[1] = 1: identity TDX_01 */
	CHECK_INT(r.advisory_count, 0);
	CHECK(r.have_pck_extension);
	CHECK(hex_is(r.fmspc, 6, "b0c06f000000"));
	CHECK(hex_is(r.pce_id, 2, "0000"));
	CHECK_INT(r.tcb_evaluation_data_number, 17);
	CHECK(r.platform_tcb_date == 1710288000); /* 2024-03-13 */
	CHECK(r.collateral_next_update > AT_TDX);
	CHECK(r.collateral_next_update == dcap_prepared_next_update(tdx_prep));

	test_case("tdx_quote: dcap_verify (prepare and verify in one) answers the same");
	struct dcap_result again;
	CHECK(dcap_verify(trust, &tdx_col, tdx.data, tdx.len, AT_TDX, &again, &err) == 0, "%s",
	      err.reason);
	CHECK(again.verified);
	CHECK_STR(again.tcb_status, r.tcb_status);

	test_case("tdx_quote: a prepared collateral verifies many times alike");
	int ok = 0;
	for (int i = 0; i < 200; i++)
		ok += dcap_verify_prepared(tdx_prep, tdx.data, tdx.len, AT_TDX + i, &again, &err) == 0;
	CHECK_INT(ok, 200);

	test_case("tdx_quote: with the other quote's collateral it is another platform");
	CHECK(dcap_verify_prepared(outdated_prep, tdx.data, tdx.len, AT_OUTDATED, &r, &err) != 0);
	CHECK(r.signatures_verified);
	CHECK_STR(r.reason, "fmspc_mismatch");
}

struct worker {
	const struct blob *quote;
	const struct dcap_prepared *prepared;
	int64_t at;
	int ok;
};

static void *verify_many(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 100; i++) {
		struct dcap_result r;
		struct ee_error err;
		w->ok += dcap_verify_prepared(w->prepared, w->quote->data, w->quote->len, w->at, &r, &err) == 0 &&
		         strcmp(r.tcb_status, "UpToDate") == 0;
	}
	return NULL;
}

static void test_threads(void)
{
	test_case("threads: 4 threads share one trust and one prepared collateral");
	/* Each thread also prepares its own copy, so preparing and verifying overlap. */
	pthread_t threads[4];
	struct worker workers[4];
	for (int i = 0; i < 4; i++) {
		workers[i] = (struct worker){.quote = &tdx, .prepared = tdx_prep, .at = AT_TDX + i};
		CHECK(pthread_create(&threads[i], NULL, verify_many, &workers[i]) == 0);
	}
	struct dcap_prepared *mine[4] = {0};
	struct ee_error err;
	for (int i = 0; i < 4; i++)
		CHECK(dcap_collateral_prepare(trust, &tdx_col, &mine[i], &err) == 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		CHECK_INT(workers[i].ok, 100);
		dcap_prepared_free(mine[i]);
	}
}

static void test_verify_outdated(void)
{
	struct dcap_result r;
	struct ee_error err;
	/*
	 * What the sample shows.  Every signature, the PCK chain, both CRLs and
	 * the collateral hold at this time; the QE is UpToDate (ISVSVN 7 >= 4)
	 * and the TDX module would be too (TDX_01, TEE_TCB_SVN[0] 7 >= 6).  But
	 * the PCK certificate's SGX TCB components are 3,3,2,2,4,1,0,3,0... and
	 * every one of the TCB info's three platform levels asks for 5 in the
	 * eighth component (the SEAMLDR ACM SVN: 3,3,2,2,4,1,0,5 for UpToDate,
	 * 2,2,2,2,3,1,0,5 for both OutOfDate levels).  Compared component by
	 * component, as DCAP.md step 8 and Intel's library do, no level is met:
	 * the platform's TCB is older than anything the TCB info knows, and the
	 * quote is refused whatever the policy.  (A verifier that compares the
	 * 16 SVNs as one string, lexicographically, would stop at the second
	 * level and call it OutOfDate with INTEL-SA-01036, -01079, -01099,
	 * -01103, -01111: that is the "not UpToDate" the README expects.)
	 */
	test_case("tdx_quote_outdated: signatures verify at %d, then no platform TCB level is met",
	          AT_OUTDATED);
	CHECK(dcap_verify_prepared(outdated_prep, outdated.data, outdated.len, AT_OUTDATED, &r, &err) != 0);
	CHECK(r.signatures_verified);
	CHECK(!r.verified);
	CHECK_STR(r.reason, "tcb_level_unknown");
	CHECK_STR(err.reason, "tcb_level_unknown");
	CHECK_INT(err.status, 403);
	CHECK(strcmp(r.tcb_status, "UpToDate") != 0);
	CHECK_STR(r.tcb_status, ""); /* no merged status: the platform has none */
	CHECK_STR(r.platform_status, "");
	CHECK_STR(r.qe_status, "UpToDate");
	CHECK_INT(r.advisory_count, 0);
	CHECK(r.have_pck_extension);
	CHECK(hex_is(r.fmspc, 6, "90c06f000000"));
	CHECK_INT(r.tcb_evaluation_data_number, 18);

	test_case("tdx_quote_outdated: the PCK certificate's TCB is what the comment above says");
	struct tdx_quote q;
	struct dcap_chain chain;
	struct dcap_sgx_extension ext;
	CHECK(tdx_quote_parse(outdated.data, outdated.len, &q, &err) == 0);
	CHECK(dcap_chain_from_pem(q.pck_chain_pem, q.pck_chain_pem_len, &chain) == 0);
	CHECK_INT(chain.count, 3);
	if (chain.count == 3) {
		CHECK(dcap_sgx_extension_from_cert(chain.certs[0].x509, &ext) == 0);
		CHECK(hex_is(ext.tcb_components, 16, "03030202040100030000000000000000"));
		CHECK_INT(ext.pce_svn, 13);
		CHECK(hex_is(ext.cpu_svn, 16, "03030202040100030000000000000000"));
		const struct dcap_tcb_info *t = dcap_prepared_tcb_info(outdated_prep);
		CHECK_INT(t->level_count, 3);
		for (size_t i = 0; i < t->level_count; i++)
			CHECK_INT(t->levels[i].sgx_svn[7], 5);
		CHECK(dcap_tcb_platform_level(t, ext.tcb_components, ext.pce_svn, q.td.tee_tcb_svn) == NULL);
		/* With the eighth component at 5 the UpToDate level would be met. */
		ext.tcb_components[7] = 5;
		const struct dcap_platform_level *l =
			dcap_tcb_platform_level(t, ext.tcb_components, ext.pce_svn, q.td.tee_tcb_svn);
		CHECK(l == &t->levels[0]);
	}
	dcap_chain_free(&chain);

	test_case("tdx_quote_outdated: dcap_verify with the collateral as JSON answers the same");
	CHECK(dcap_verify(trust, &outdated_col, outdated.data, outdated.len, AT_OUTDATED, &r, &err) != 0);
	CHECK(r.signatures_verified);
	CHECK_STR(r.reason, "tcb_level_unknown");
}

static void test_sgx(void)
{
	struct tdx_quote q;
	struct dcap_result r;
	struct ee_error err;
	test_case("sgx_quote: refused as not_a_tdx_quote, by the parser and the verifier");
	CHECK(tdx_quote_parse(sgx.data, sgx.len, &q, &err) != 0);
	CHECK_STR(err.reason, "not_a_tdx_quote");
	CHECK_INT(err.status, 400);
	CHECK(dcap_verify_prepared(tdx_prep, sgx.data, sgx.len, AT_TDX, &r, &err) != 0);
	CHECK_STR(r.reason, "not_a_tdx_quote");
	CHECK(!r.signatures_verified);

	test_case("sgx_quote: its collateral is SGX's: a TDX verifier cannot prepare it");
	struct dcap_prepared *p = NULL;
	CHECK(dcap_collateral_prepare(trust, &sgx_col, &p, &err) != 0);
	CHECK_STR(err.reason, "tcb_info_invalid"); /* id "SGX", not "TDX" */
	CHECK(p == NULL);
	CHECK(dcap_verify(trust, &sgx_col, sgx.data, sgx.len, AT_TDX, &r, &err) != 0);
	CHECK(!r.verified);
	CHECK_STR(r.reason, "tcb_info_invalid");
}

static bool is_expiry(const char *reason)
{
	return strcmp(reason, "crl_expired") == 0 || strcmp(reason, "tcb_info_expired") == 0 ||
	       strcmp(reason, "qe_identity_expired") == 0;
}

static void test_real_time(void)
{
	struct dcap_result r;
	struct ee_error err;
	int64_t now = (int64_t)time(NULL);
	test_case("real time: every quote is refused because its collateral has expired");
	CHECK(now > dcap_prepared_next_update(tdx_prep));
	CHECK(now > dcap_prepared_next_update(outdated_prep));
	CHECK(dcap_verify_prepared(tdx_prep, tdx.data, tdx.len, now, &r, &err) != 0);
	/* The CRLs are checked with the PCK chain (step 2), before the TCB info (step 6). */
	CHECK_STR(r.reason, "crl_expired");
	CHECK(is_expiry(r.reason));
	CHECK_INT(r.status, 503);
	CHECK(dcap_verify_prepared(outdated_prep, outdated.data, outdated.len, now, &r, &err) != 0);
	CHECK_STR(r.reason, "crl_expired");
	CHECK(dcap_verify_prepared(tdx_prep, sgx.data, sgx.len, now, &r, &err) != 0);
	CHECK_STR(r.reason, "not_a_tdx_quote");

	test_case("time: the collateral windows, one second either side");
	const struct dcap_tcb_info *t = dcap_prepared_tcb_info(tdx_prep);
	const struct dcap_qe_identity *qi = dcap_prepared_qe_identity(tdx_prep);
	int64_t last = dcap_prepared_next_update(tdx_prep);
	CHECK(t->issue_date == 1750328163 && t->next_update == 1752920163);
	/* The PCK CRL (2025-06-19T10:00:35Z .. 2025-07-19T10:00:35Z) ends first. */
	CHECK(last == 1752919235);
	CHECK(dcap_verify_prepared(tdx_prep, tdx.data, tdx.len, qi->issue_date, &r, &err) == 0, "%s",
	      r.reason);
	CHECK(dcap_verify_prepared(tdx_prep, tdx.data, tdx.len, last - 1, &r, &err) == 0, "%s",
	      r.reason);
	CHECK(dcap_verify_prepared(tdx_prep, tdx.data, tdx.len, last, &r, &err) != 0);
	CHECK_STR(r.reason, "crl_expired");
	CHECK(dcap_verify_prepared(tdx_prep, tdx.data, tdx.len, qi->issue_date - 1, &r, &err) != 0);
	CHECK_STR(r.reason, "qe_identity_not_yet_valid");
	CHECK(dcap_verify_prepared(tdx_prep, tdx.data, tdx.len, t->issue_date - 1, &r, &err) != 0);
	CHECK_STR(r.reason, "tcb_info_not_yet_valid");
	CHECK(dcap_verify_prepared(tdx_prep, tdx.data, tdx.len, 1750327235 - 1, &r, &err) != 0);
	CHECK_STR(r.reason, "crl_not_yet_valid");
	CHECK(dcap_verify_prepared(tdx_prep, tdx.data, tdx.len, 0, &r, &err) != 0);
	CHECK_STR(r.reason, "pck_cert_not_yet_valid");
	CHECK(dcap_verify_prepared(tdx_prep, tdx.data, tdx.len, 4102444800, &r, &err) != 0); /* 2100 */
	CHECK_STR(r.reason, "pck_cert_expired");
}

/* The first reason for the quote with byte `at` XORed with mask. */
static const char *flipped_reason(const struct dcap_prepared *p, const struct blob *quote,
                                  size_t at, uint8_t mask, int64_t when)
{
	static char reason[EE_REASON_MAX];
	unsigned char *copy = malloc(quote->len);
	if (!copy)
		return "out_of_memory";
	memcpy(copy, quote->data, quote->len);
	copy[at] ^= mask;
	struct dcap_result r;
	struct ee_error err;
	dcap_verify_prepared(p, copy, quote->len, when, &r, &err);
	snprintf(reason, sizeof(reason), "%s", r.reason);
	free(copy);
	return reason;
}

/* The first reason for the quote with the n-byte little-endian size at `at` set to value. */
static const char *sized_reason(const struct dcap_prepared *p, const struct blob *quote, size_t at,
                                int n, uint32_t value, int64_t when)
{
	static char reason[EE_REASON_MAX];
	unsigned char *copy = malloc(quote->len);
	if (!copy)
		return "out_of_memory";
	memcpy(copy, quote->data, quote->len);
	for (int i = 0; i < n; i++)
		copy[at + (size_t)i] = (uint8_t)(value >> (8 * i));
	struct dcap_result r;
	struct ee_error err;
	dcap_verify_prepared(p, copy, quote->len, when, &r, &err);
	snprintf(reason, sizeof(reason), "%s", r.reason);
	free(copy);
	return reason;
}

/* Flips every byte of [start, start+n) (two ways) and expects one reason for all. */
static void flip_region(const struct dcap_prepared *p, const struct blob *quote, int64_t when,
                        const char *region, size_t start, size_t n, const char *want)
{
	test_case("flip: every byte of the %s (%zu bytes at %zu) -> %s", region, n, start, want);
	int wrong = 0;
	for (size_t i = start; i < start + n; i++) {
		static const uint8_t masks[] = {0x01, 0x80};
		for (size_t m = 0; m < 2; m++) {
			const char *got = flipped_reason(p, quote, i, masks[m], when);
			if (strcmp(got, want) != 0 && wrong++ < 5)
				test_fail(__FILE__, __LINE__, "byte %zu ^ 0x%02x: %s", i, masks[m], got);
		}
	}
	CHECK_INT(wrong, 0);
}

static void flip_quote(const char *name, const struct dcap_prepared *p, const struct blob *quote,
                       int64_t when)
{
	struct tdx_quote q;
	struct ee_error err;
	if (tdx_quote_parse(quote->data, quote->len, &q, &err) != 0) {
		test_case("flip: %s parses", name);
		test_fail(__FILE__, __LINE__, "%s", err.reason);
		return;
	}
#define AT(ptr) ((size_t)((const uint8_t *)(ptr) - quote->data))
	test_case("flip: %s header bytes 0-7 are the parser's to refuse", name);
	CHECK_STR(flipped_reason(p, quote, 0, 0xff, when), "unsupported_quote_version");
	CHECK_STR(flipped_reason(p, quote, 1, 0xff, when), "unsupported_quote_version");
	CHECK_STR(flipped_reason(p, quote, 2, 0xff, when), "unsupported_attestation_key_type");
	CHECK_STR(flipped_reason(p, quote, 3, 0xff, when), "unsupported_attestation_key_type");
	for (size_t i = 4; i < 8; i++)
		CHECK_STR(flipped_reason(p, quote, i, 0x01, when), "not_a_tdx_quote");
	flip_region(p, quote, when, "header (signed part)", 8, 40, "quote_signature");
	if (q.version == 5) {
		test_case("flip: %s body descriptor", name);
		CHECK_STR(flipped_reason(p, quote, 48, 0x04, when), "unsupported_body_type");
		CHECK_STR(flipped_reason(p, quote, 50, 0x01, when), "body_size_mismatch");
		CHECK_STR(flipped_reason(p, quote, 53, 0x01, when), "body_size_mismatch");
	}
	flip_region(p, quote, when, "TD report body", AT(q.body), q.body_len, "quote_signature");
	flip_region(p, quote, when, "quote signature", AT(q.signature), 64, "quote_signature");
	flip_region(p, quote, when, "attestation key", AT(q.attestation_key), 64,
	            "qe_report_data_mismatch");
	flip_region(p, quote, when, "QE report", AT(q.qe_report.raw), 384, "qe_report_signature");
	flip_region(p, quote, when, "QE report signature", AT(q.qe_report_signature), 64,
	            "qe_report_signature");
	flip_region(p, quote, when, "QE auth data", AT(q.qe_auth_data), q.qe_auth_data_len,
	            "qe_report_data_mismatch");

	test_case("flip: %s certification data types are the parser's to refuse", name);
	size_t outer = AT(q.attestation_key) + 64;
	size_t inner = AT(q.qe_auth_data) + q.qe_auth_data_len;
	CHECK_STR(flipped_reason(p, quote, outer, 0x01, when), "unsupported_certification_data");
	CHECK_STR(flipped_reason(p, quote, inner, 0x01, when), "unsupported_certification_data");

	test_case("lengths: %s sizes one less, one more, far more", name);
	size_t sig_len_at = AT(q.signature) - 4;
	uint32_t sig_len = q.signature_data_len, outer_len = q.certification_data_len;
	uint32_t inner_len = (uint32_t)q.pck_chain_pem_len;
	/* One less than the parts: the last part no longer fits. */
	CHECK_STR(sized_reason(p, quote, sig_len_at, 4, sig_len - 1, when), "quote_truncated");
	/* One more: past the end, or (with padding after it) parts that do not fill it. */
	CHECK_STR(sized_reason(p, quote, sig_len_at, 4, sig_len + 1, when),
	          q.padding_len ? "signature_data_size_mismatch" : "quote_truncated");
	CHECK_STR(sized_reason(p, quote, sig_len_at, 4, 0xffffffffu, when), "quote_truncated");
	CHECK_STR(sized_reason(p, quote, outer + 2, 4, outer_len - 1, when),
	          "signature_data_size_mismatch");
	CHECK_STR(sized_reason(p, quote, outer + 2, 4, outer_len + 1, when), "quote_truncated");
	CHECK_STR(sized_reason(p, quote, outer + 2, 4, 0xffffffffu, when), "quote_truncated");
	CHECK_STR(sized_reason(p, quote, inner + 2, 4, inner_len - 1, when),
	          "certification_data_size_mismatch");
	CHECK_STR(sized_reason(p, quote, inner + 2, 4, inner_len + 1, when), "quote_truncated");
	CHECK_STR(sized_reason(p, quote, AT(q.qe_auth_data) - 2, 2, 0xffff, when), "quote_truncated");
	/* Auth data one longer eats the inner type's first byte. */
	CHECK_STR(sized_reason(p, quote, AT(q.qe_auth_data) - 2, 2, q.qe_auth_data_len + 1, when),
	          "unsupported_certification_data");

	test_case("flip: %s PCK chain text -> a PCK chain reason", name);
	int wrong = 0;
	size_t start = AT(q.pck_chain_pem);
	/* The NUL at the end is the generator's terminator, not part of the PEM. */
	for (size_t i = start; i < start + q.pck_chain_pem_len - 1; i++) {
		const char *got = flipped_reason(p, quote, i, 0x01, when);
		if (strcmp(got, "pck_chain_invalid") != 0 && strcmp(got, "pck_chain_signature") != 0 &&
		    strcmp(got, "pck_chain_untrusted") != 0 && strcmp(got, "invalid_pck_chain") != 0 &&
		    wrong++ < 5)
			test_fail(__FILE__, __LINE__, "byte %zu: %s", i, got);
	}
	CHECK_INT(wrong, 0);
#undef AT
}

/* Prepares a copy of c with byte i of field flipped; returns the reason ("ok" if it prepared). */
static const char *prepare_flipped(const struct dcap_collateral *c, char *field, size_t i,
                                   uint8_t mask)
{
	static char reason[EE_REASON_MAX];
	struct dcap_prepared *p = NULL;
	struct ee_error err;
	field[i] = (char)(field[i] ^ mask);
	int rc = dcap_collateral_prepare(trust, c, &p, &err);
	field[i] = (char)(field[i] ^ mask);
	snprintf(reason, sizeof(reason), "%s", rc == 0 ? "ok" : err.reason);
	dcap_prepared_free(p);
	return reason;
}

static void flip_collateral(const char *name, struct dcap_collateral *c)
{
	test_case("flip: every byte of %s's signed tcb_info text -> tcb_info_signature", name);
	int wrong = 0;
	for (size_t i = 0; i < c->tcb_info_len; i++) {
		const char *got = prepare_flipped(c, c->tcb_info, i, 0x01);
		if (strcmp(got, "tcb_info_signature") != 0 && wrong++ < 5)
			test_fail(__FILE__, __LINE__, "byte %zu: %s", i, got);
	}
	CHECK_INT(wrong, 0);

	test_case("flip: every byte of %s's signed qe_identity text -> qe_identity_signature", name);
	wrong = 0;
	for (size_t i = 0; i < c->qe_identity_len; i++) {
		const char *got = prepare_flipped(c, c->qe_identity, i, 0x01);
		if (strcmp(got, "qe_identity_signature") != 0 && wrong++ < 5)
			test_fail(__FILE__, __LINE__, "byte %zu: %s", i, got);
	}
	CHECK_INT(wrong, 0);

	test_case("flip: every byte of %s's two collateral signatures", name);
	wrong = 0;
	for (size_t i = 0; i < 64; i++) {
		const char *got = prepare_flipped(c, (char *)c->tcb_info_signature, i, 0x01);
		if (strcmp(got, "tcb_info_signature") != 0 && wrong++ < 5)
			test_fail(__FILE__, __LINE__, "tcb_info_signature byte %zu: %s", i, got);
		got = prepare_flipped(c, (char *)c->qe_identity_signature, i, 0x01);
		if (strcmp(got, "qe_identity_signature") != 0 && wrong++ < 5)
			test_fail(__FILE__, __LINE__, "qe_identity_signature byte %zu: %s", i, got);
	}
	CHECK_INT(wrong, 0);

	test_case("flip: %s's CRLs (every 7th byte) -> crl_invalid", name);
	wrong = 0;
	for (size_t i = 0; i < c->root_ca_crl_len; i += 7) {
		const char *got = prepare_flipped(c, (char *)c->root_ca_crl, i, 0x01);
		if (strcmp(got, "crl_invalid") != 0 && wrong++ < 5)
			test_fail(__FILE__, __LINE__, "root_ca_crl byte %zu: %s", i, got);
	}
	for (size_t i = 0; i < c->pck_crl_len; i += 7) {
		const char *got = prepare_flipped(c, (char *)c->pck_crl, i, 0x01);
		if (strcmp(got, "crl_invalid") != 0 && wrong++ < 5)
			test_fail(__FILE__, __LINE__, "pck_crl byte %zu: %s", i, got);
	}
	CHECK_INT(wrong, 0);

	test_case("flip: %s's TCB signing chain text -> a signing chain reason", name);
	wrong = 0;
	for (size_t i = 0; i < c->tcb_info_issuer_chain_len; i += 3) {
		const char *got = prepare_flipped(c, c->tcb_info_issuer_chain, i, 0x01);
		if (strcmp(got, "tcb_signing_chain_invalid") != 0 &&
		    strcmp(got, "tcb_signing_chain_untrusted") != 0 &&
		    strcmp(got, "tcb_info_signature") != 0 && wrong++ < 5)
			test_fail(__FILE__, __LINE__, "byte %zu: %s", i, got);
	}
	CHECK_INT(wrong, 0);
}

static void test_truncations(const char *name, const struct dcap_prepared *p,
                             const struct blob *quote, int64_t when)
{
	struct tdx_quote full;
	struct ee_error err;
	CHECK(tdx_quote_parse(quote->data, quote->len, &full, &err) == 0);
	size_t end = quote->len - full.padding_len; /* where the signature data ends */
	test_case("truncate: %s to every length below %zu fails to parse with a reason", name, end);
	int wrong = 0;
	for (size_t n = 0; n < quote->len; n++) {
		/* An exact-size copy, so that ASan sees any read past the end. */
		unsigned char *copy = malloc(n ? n : 1);
		if (!copy)
			break;
		memcpy(copy, quote->data, n);
		struct tdx_quote q;
		int rc = tdx_quote_parse(copy, n, &q, &err);
		if (n < end) {
			if ((rc == 0 || !err.reason[0] || err.status != 400) && wrong++ < 5)
				test_fail(__FILE__, __LINE__, "length %zu: rc %d reason '%s'", n, rc, err.reason);
			struct dcap_result r;
			if (dcap_verify_prepared(p, copy, n, when, &r, &err) == 0 && wrong++ < 5)
				test_fail(__FILE__, __LINE__, "length %zu verified", n);
		} else if ((rc != 0 || q.padding_len != n - end) && wrong++ < 5) {
			/* Cutting only zero padding leaves the quote whole. */
			test_fail(__FILE__, __LINE__, "length %zu (padding only): rc %d %s", n, rc, err.reason);
		}
		free(copy);
	}
	CHECK_INT(wrong, 0);
}

static void test_appended(void)
{
	struct tdx_quote q;
	struct dcap_result r;
	struct ee_error err;
	test_case("append: a non-zero byte after the signature data is refused");
	const struct blob *quotes[] = {&tdx, &outdated};
	for (int k = 0; k < 2; k++) {
		const struct blob *b = quotes[k];
		unsigned char *copy = malloc(b->len + 64);
		if (!copy)
			continue;
		memcpy(copy, b->data, b->len);
		for (size_t extra = 1; extra <= 64; extra++) {
			memset(copy + b->len, 0, extra);
			copy[b->len + extra - 1] = 0x01;
			CHECK(tdx_quote_parse(copy, b->len + extra, &q, &err) != 0);
			CHECK_STR(err.reason, "quote_trailing_bytes");
			copy[b->len + extra - 1] = 0;
			copy[b->len] = 0xAA;
			CHECK(tdx_quote_parse(copy, b->len + extra, &q, &err) != 0);
			CHECK_STR(err.reason, "quote_trailing_bytes");
		}
		copy[b->len] = 'x';
		CHECK(dcap_verify_prepared(k == 0 ? tdx_prep : outdated_prep, copy, b->len + 1,
		                           k == 0 ? AT_TDX : AT_OUTDATED, &r, &err) != 0);
		CHECK_STR(r.reason, "quote_trailing_bytes");
		free(copy);
	}

	test_case("append: zero padding is accepted (Intel's own v4 sample carries 70 bytes)");
	unsigned char *padded = calloc(1, outdated.len + 100);
	if (padded) {
		memcpy(padded, outdated.data, outdated.len);
		CHECK(tdx_quote_parse(padded, outdated.len + 100, &q, &err) == 0, "%s", err.reason);
		CHECK_INT(q.padding_len, 100);
		free(padded);
	}

	test_case("size: a quote over TDX_QUOTE_MAX_BYTES is refused before anything is read");
	unsigned char *big = calloc(1, TDX_QUOTE_MAX_BYTES + 1);
	if (big) {
		memcpy(big, tdx.data, tdx.len);
		CHECK(tdx_quote_parse(big, TDX_QUOTE_MAX_BYTES + 1, &q, &err) != 0);
		CHECK_STR(err.reason, "quote_too_large");
		CHECK(tdx_quote_parse(big, TDX_QUOTE_MAX_BYTES, &q, &err) == 0, "%s", err.reason);
		free(big);
	}
}

static void test_collateral_json(void)
{
	struct dcap_collateral c;
	struct ee_error err;
	test_case("collateral JSON: each field missing, of the wrong type, or badly encoded");
	static const char *const fields[] = {
		"pck_crl_issuer_chain", "root_ca_crl", "pck_crl", "tcb_info_issuer_chain", "tcb_info",
		"tcb_info_signature", "qe_identity_issuer_chain", "qe_identity", "qe_identity_signature",
	};
	char *text = malloc(tdx_json.len + 1);
	if (!text)
		return;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char key[64];
		snprintf(key, sizeof(key), "\"%s\"", fields[i]);
		memcpy(text, tdx_json.data, tdx_json.len);
		text[tdx_json.len] = '\0';
		char *at = strstr(text, key);
		CHECK(at != NULL, "%s", fields[i]);
		if (!at)
			continue;
		at[1] = 'X'; /* renamed: absent */
		CHECK(dcap_collateral_from_json(text, tdx_json.len, &c, &err) != 0, "%s", fields[i]);
		CHECK_STR(err.reason, "collateral_invalid");
		at[1] = fields[i][0];
		/* The value's first character: '"' -> a number instead. */
		char *colon = strchr(at + strlen(key), '"');
		if (colon) {
			*colon = '1';
			CHECK(dcap_collateral_from_json(text, tdx_json.len, &c, &err) != 0, "%s", fields[i]);
			*colon = '"';
			/* Hex fields: a non-hex digit. */
			if (strstr(fields[i], "crl") && !strstr(fields[i], "chain")) {
				colon[1] = 'g';
				CHECK(dcap_collateral_from_json(text, tdx_json.len, &c, &err) != 0, "%s", fields[i]);
			}
		}
	}
	free(text);
	CHECK(dcap_collateral_from_json("[]", 2, &c, &err) != 0);
	CHECK(dcap_collateral_from_json("{", 1, &c, &err) != 0);
	CHECK(dcap_collateral_from_json(NULL, 0, &c, &err) != 0);
	CHECK_STR(err.reason, "collateral_invalid");

	test_case("collateral JSON: the parsed fields are the file's");
	CHECK_INT(tdx_col.tcb_info_len, 2934);
	CHECK(strncmp(tdx_col.tcb_info, "{\"id\":\"TDX\",\"version\":3,", 24) == 0);
	CHECK_INT(tdx_col.qe_identity_len, 461);
	CHECK_INT(tdx_col.root_ca_crl_len, 584 / 2);
	CHECK_INT(tdx_col.pck_crl_len, 5326 / 2);
	CHECK(tdx_col.tcb_info_signature[0] == 0x02 && tdx_col.tcb_info_signature[63] == 0x4f);
}

static void test_collateral_mixups(void)
{
	struct dcap_prepared *p = NULL;
	struct dcap_collateral c;
	struct ee_error err;
	test_case("collateral: parts swapped between the two samples");
	/* Borrowed pointers only: c is never freed. */
	c = tdx_col;
	c.pck_crl = outdated_col.pck_crl;
	c.pck_crl_len = outdated_col.pck_crl_len;
	CHECK(dcap_collateral_prepare(trust, &c, &p, &err) == 0, "%s", err.reason);
	dcap_prepared_free(p);
	c = tdx_col;
	c.tcb_info = outdated_col.tcb_info;
	c.tcb_info_len = outdated_col.tcb_info_len;
	CHECK(dcap_collateral_prepare(trust, &c, &p, &err) != 0);
	CHECK_STR(err.reason, "tcb_info_signature");
	c = tdx_col;
	c.root_ca_crl = tdx_col.pck_crl;
	c.root_ca_crl_len = tdx_col.pck_crl_len;
	CHECK(dcap_collateral_prepare(trust, &c, &p, &err) != 0);
	CHECK_STR(err.reason, "crl_invalid");
	c = tdx_col;
	c.pck_crl_issuer_chain = tdx_col.tcb_info_issuer_chain; /* signing cert is no CA of PCKs */
	c.pck_crl_issuer_chain_len = tdx_col.tcb_info_issuer_chain_len;
	CHECK(dcap_collateral_prepare(trust, &c, &p, &err) != 0);
	CHECK_STR(err.reason, "crl_invalid");

	test_case("collateral: an empty trust verifies nothing");
	struct dcap_trust *empty;
	CHECK(dcap_trust_create(&empty, &err) == 0);
	CHECK(dcap_collateral_prepare(empty, &tdx_col, &p, &err) != 0);
	CHECK_STR(err.reason, "trust_empty");
	dcap_trust_destroy(empty);
}

int main(void)
{
	if (load_samples()) {
		test_root();
		test_parse_tdx();
		test_parse_outdated();
		test_verify_tdx();
		test_threads();
		test_verify_outdated();
		test_sgx();
		test_real_time();
		flip_quote("tdx_quote", tdx_prep, &tdx, AT_TDX);
		flip_quote("tdx_quote_outdated", outdated_prep, &outdated, AT_OUTDATED);
		flip_collateral("tdx_quote", &tdx_col);
		flip_collateral("tdx_quote_outdated", &outdated_col);
		test_truncations("tdx_quote", tdx_prep, &tdx, AT_TDX);
		test_truncations("tdx_quote_outdated", outdated_prep, &outdated, AT_OUTDATED);
		test_appended();
		test_collateral_json();
		test_collateral_mixups();
	}
	dcap_prepared_free(tdx_prep);
	dcap_prepared_free(outdated_prep);
	dcap_collateral_free(&tdx_col);
	dcap_collateral_free(&outdated_col);
	dcap_collateral_free(&sgx_col);
	dcap_trust_destroy(trust);
	struct blob *blobs[] = {&tdx, &outdated, &sgx, &tdx_json, &outdated_json, &sgx_json, &root_pem};
	for (size_t i = 0; i < sizeof(blobs) / sizeof(blobs[0]); i++)
		free(blobs[i]->data);
	return test_finish();
}
