/*
 * test_dcap_fixture.c - the fuzz targets' DCAP fixture still does its job:
 * tests/fuzz/dcap_fixture.h pins a root that lib/dcap.c accepts, its
 * collateral prepares, and each seed of tests/fuzz/corpus/quote and
 * corpus/dcap_collateral that tests/tools/ee-dcap-fixture.c made reaches
 * the verdict it was made for.  A seed refused earlier than meant (a
 * regenerated header without its seeds, a verifier that grew a new check)
 * would leave the deep steps of verification unfuzzed without any fuzz
 * target noticing.  Run from the repository root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/dcap_fixture.h"
#include "check.h"
#include "dcap.h"
#include "dcap_tcb.h"

#define QUOTE_DIR "tests/fuzz/corpus/quote/"
#define COLLATERAL_DIR "tests/fuzz/corpus/dcap_collateral/"
#define SEED_MAX (1 << 20)

static char *read_seed(const char *dir, const char *name, size_t *len)
{
	char path[256];
	snprintf(path, sizeof(path), "%s%s", dir, name);
	FILE *f = fopen(path, "rb");
	char *data = f ? malloc(SEED_MAX + 1) : NULL;
	*len = data ? fread(data, 1, SEED_MAX, f) : 0;
	if (data)
		data[*len] = '\0';
	if (f)
		fclose(f);
	if (!data)
		test_fail(__FILE__, __LINE__, "cannot read %s (run from the repository root)", path);
	return data;
}

/* reason "ok": verifies, with that TCB status. */
static const struct {
	const char *seed;
	const char *reason;
	const char *tcb_status;
} quotes[] = {
	{ "synthetic-v4", "ok", "UpToDate" },
	{ "synthetic-v5-td10", "ok", "UpToDate" },
	{ "synthetic-v5-td15", "ok", "UpToDate" },
	{ "synthetic-v4-padded", "ok", "UpToDate" },
	{ "synthetic-v4-no-auth-data", "ok", "UpToDate" },
	{ "synthetic-v4-module-00", "ok", "UpToDate" },
	{ "synthetic-v4-module-outdated", "ok", "OutOfDate" },
	{ "synthetic-v4-platform-outdated", "ok", "OutOfDate" },
	{ "synthetic-v4-qe-outdated", "ok", "OutOfDate" },
	{ "synthetic-v4-debug", "debug_td", NULL },
	{ "synthetic-v4-module-02", "tdx_module_mismatch", NULL },
	{ "synthetic-v4-mrsignerseam", "tdx_module_mismatch", NULL },
	{ "synthetic-v4-module-unknown", "tdx_module_tcb_unknown", NULL },
	{ "synthetic-v4-tdx-svn-low", "tcb_level_unknown", NULL },
	{ "synthetic-v4-platform-unknown", "tcb_level_unknown", NULL },
	{ "synthetic-v4-fmspc-other", "fmspc_mismatch", NULL },
	{ "synthetic-v4-pce-id-other", "pceid_mismatch", NULL },
	{ "synthetic-v4-qe-unknown", "qe_tcb_unknown", NULL },
	{ "synthetic-v4-qe-mismatch", "qe_identity_mismatch", NULL },
	{ "synthetic-v4-bad-quote-signature", "quote_signature", NULL },
	{ "synthetic-v4-bad-qe-report-signature", "qe_report_signature", NULL },
	{ "synthetic-v4-qe-report-unbound", "qe_report_data_mismatch", NULL },
	{ "synthetic-v4-qe-report-tail", "qe_report_data_mismatch", NULL },
	{ "synthetic-v4-processor-ca", "pck_crl_issuer_mismatch", NULL },
	{ "synthetic-v4-leaf-expired", "pck_cert_expired", NULL },
	{ "synthetic-v4-leaf-wrong-signer", "pck_chain_signature", NULL },
	{ "synthetic-v4-ca-wrong-signer", "pck_chain_signature", NULL },
	{ "synthetic-v4-rogue-root", "pck_chain_untrusted", NULL },
	{ "synthetic-v4-chain-without-root", "pck_chain_invalid", NULL },
	{ "synthetic-v4-pem-without-nul", "ok", "UpToDate" },
	{ "synthetic-v4-trailing", "quote_trailing_bytes", NULL },
	{ "siglen-past-end", "quote_truncated", NULL },
	{ "outer-type-5", "unsupported_certification_data", NULL },
	{ "inner-type-6", "unsupported_certification_data", NULL },
	{ "version-3-sgx", "not_a_tdx_quote", NULL },
	{ "keytype-3", "unsupported_attestation_key_type", NULL },
	{ "v5-bodytype-4", "unsupported_body_type", NULL },
	{ "header-only", "quote_truncated", NULL },
	{ "small-v4", "pck_chain_invalid", NULL },
};

/* reason "ok": dcap_collateral_prepare accepts it under the fixture's root. */
static const struct {
	const char *seed;
	const char *reason;
} collaterals[] = {
	{ "synthetic-collateral", "ok" },
	{ "collateral-platform-revoked", "ok" },
	{ "collateral-no-identities", "ok" },
	{ "collateral-qe-levels", "ok" },
	{ "collateral-processor-ca", "ok" },
	{ "collateral-bad-tcb-info-signature", "tcb_info_signature" },
	{ "collateral-bad-qe-identity-signature", "qe_identity_signature" },
	{ "collateral-tcb-signer-revoked", "tcb_signing_cert_revoked" },
	{ "collateral-tcb-rogue-root", "tcb_signing_chain_untrusted" },
	{ "collateral-root-crl-wrong-signer", "crl_invalid" },
	{ "collateral-pck-crl-wrong-signer", "crl_invalid" },
	{ "collateral-missing-pck-crl", "collateral_invalid" },
	{ "collateral-short-signature", "collateral_invalid" },
	{ "collateral-bad-hex", "collateral_invalid" },
};

/* The TCB info / QE identity texts, for the parsers of lib/dcap_tcb.c. */
static const char *const tcb_infos[] = {
	"synthetic-tcb-info", "tcb-info-SWHardeningNeeded", "tcb-info-ConfigurationNeeded",
	"tcb-info-ConfigurationAndSWHardeningNeeded", "tcb-info-OutOfDateConfigurationNeeded",
	"tcb-info-Revoked", "tcb-info-no-identities",
};

static void test_quotes(struct dcap_prepared *p)
{
	for (size_t i = 0; i < sizeof(quotes) / sizeof(quotes[0]); i++) {
		test_case("quote seed %s -> %s", quotes[i].seed, quotes[i].reason);
		size_t len;
		char *q = read_seed(QUOTE_DIR, quotes[i].seed, &len);
		if (!q)
			continue;
		struct dcap_result r;
		struct ee_error err;
		int rc = dcap_verify_prepared(p, (const unsigned char *)q, len, DCAP_FIXTURE_TIME, &r,
		                              &err);
		CHECK_STR(r.reason, quotes[i].reason);
		CHECK((rc == 0) == (strcmp(quotes[i].reason, "ok") == 0));
		if (quotes[i].tcb_status)
			CHECK_STR(r.tcb_status, quotes[i].tcb_status);
		free(q);
	}
}

static void test_collaterals(struct dcap_trust *trust)
{
	for (size_t i = 0; i < sizeof(collaterals) / sizeof(collaterals[0]); i++) {
		test_case("collateral seed %s -> %s", collaterals[i].seed, collaterals[i].reason);
		size_t len;
		char *text = read_seed(COLLATERAL_DIR, collaterals[i].seed, &len);
		if (!text)
			continue;
		struct dcap_collateral c;
		struct dcap_prepared *p = NULL;
		struct ee_error err;
		const char *reason = "ok";
		if (dcap_collateral_from_json(text, len, &c, &err) != 0) {
			reason = err.reason;
		} else {
			if (dcap_collateral_prepare(trust, &c, &p, &err) != 0)
				reason = err.reason;
			dcap_collateral_free(&c);
		}
		CHECK_STR(reason, collaterals[i].reason);
		dcap_prepared_free(p);
		free(text);
	}
	test_case("TCB info and QE identity seeds parse");
	for (size_t i = 0; i < sizeof(tcb_infos) / sizeof(tcb_infos[0]); i++) {
		size_t len;
		char *text = read_seed(COLLATERAL_DIR, tcb_infos[i], &len);
		struct dcap_tcb_info t;
		struct ee_error err;
		bool parsed = text && dcap_tcb_info_parse(text, len, &t, &err) == 0;
		CHECK(parsed, "%s", tcb_infos[i]);
		if (parsed)
			dcap_tcb_info_free(&t);
		free(text);
	}
	const char *qe_identities[] = { "synthetic-qe-identity", "qe-identity-levels" };
	for (size_t i = 0; i < 2; i++) {
		size_t len;
		char *text = read_seed(COLLATERAL_DIR, qe_identities[i], &len);
		struct dcap_qe_identity q;
		struct ee_error err;
		bool parsed = text && dcap_qe_identity_parse(text, len, &q, &err) == 0;
		CHECK(parsed, "%s", qe_identities[i]);
		if (parsed)
			dcap_qe_identity_free(&q);
		free(text);
	}
}

int main(void)
{
	struct dcap_trust *trust = NULL;
	struct dcap_collateral c;
	struct dcap_prepared *p = NULL;
	struct ee_error err;
	test_case("fixture: the root pins and the collateral prepares");
	CHECK(dcap_trust_create(&trust, &err) == 0);
	CHECK(trust && dcap_trust_add_pem(trust, dcap_fixture_root_pem,
	                                  strlen(dcap_fixture_root_pem), &err) == 0,
	      "%s", err.reason);
	CHECK(dcap_collateral_from_json(dcap_fixture_collateral_json,
	                                strlen(dcap_fixture_collateral_json), &c, &err) == 0,
	      "%s", err.reason);
	if (!test_case_failed()) {
		CHECK(dcap_collateral_prepare(trust, &c, &p, &err) == 0, "%s", err.reason);
		dcap_collateral_free(&c);
	}
	if (p) {
		test_quotes(p);
		test_collaterals(trust);
	}
	dcap_prepared_free(p);
	dcap_trust_destroy(trust);
	return test_finish();
}
