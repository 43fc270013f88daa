/*
 * fuzz_dcap_collateral.c - what the control plane does with collateral a
 * PCCS sends: dcap_collateral_from_json and dcap_collateral_prepare
 * (lib/dcap.c: PEM chains, CRLs, signatures) under a synthetic test root
 * (dcap_fixture.h), and the TCB info / QE identity JSON parsers and level
 * matching of lib/dcap_tcb.c on the input itself.
 * Properties: no crash, no leak; parsed texts are NUL-terminated at their
 * length; a failure names one of the documented reasons; a parsed TCB info
 * or QE identity has its counts within their limits, known statuses,
 * NUL-terminated advisory IDs, issueDate before nextUpdate, and matching
 * only ever answers with one of its own levels.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_TARGET "fuzz_dcap_collateral"
#include "fuzz_support.h"

#include "dcap.h"
#include "dcap_fixture.h"
#include "dcap_tcb.h"

static struct dcap_trust *trust;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	struct ee_error err;
	if (dcap_trust_create(&trust, &err) != 0 ||
	    dcap_trust_add_pem(trust, dcap_fixture_root_pem, strlen(dcap_fixture_root_pem), &err) != 0)
		abort();
	return 0;
}

static const char *const prepare_reasons[] = {
	"collateral_invalid", "crl_invalid", "tcb_signing_chain_invalid",
	"tcb_signing_chain_untrusted", "tcb_signing_cert_revoked", "tcb_info_signature",
	"qe_identity_signature", "tcb_info_invalid", "qe_identity_invalid",
	"collateral_root_mismatch", "out_of_memory",
};

static bool known(const char *reason)
{
	for (size_t i = 0; i < sizeof(prepare_reasons) / sizeof(prepare_reasons[0]); i++) {
		if (strcmp(reason, prepare_reasons[i]) == 0)
			return true;
	}
	return false;
}

static void check_advisories(const uint8_t *data, size_t size, const struct dcap_advisories *a)
{
	if (a->count > DCAP_LEVEL_ADVISORIES_MAX || (a->count && !a->ids))
		fuzz_fail("advisories beyond the limit", data, size);
	for (size_t i = 0; i < a->count; i++) {
		size_t n = strnlen(a->ids[i], DCAP_ADVISORY_ID_MAX);
		if (n == 0 || n == DCAP_ADVISORY_ID_MAX)
			fuzz_fail("an advisory ID that is empty or not terminated", data, size);
	}
}

static bool status_ok(unsigned s)
{
	return (s & ~0xfu) == 0;
}

static void check_tcb_info(const uint8_t *data, size_t size, const struct dcap_tcb_info *t)
{
	if (t->next_update <= t->issue_date || t->level_count == 0 ||
	    t->level_count > DCAP_TCB_LEVELS_MAX || t->identity_count > DCAP_MODULE_IDENTITIES_MAX)
		fuzz_fail("a TCB info beyond its limits", data, size);
	for (size_t i = 0; i < t->level_count; i++) {
		if (!status_ok(t->levels[i].status))
			fuzz_fail("an unknown platform status", data, size);
		check_advisories(data, size, &t->levels[i].advisories);
	}
	for (size_t i = 0; i < t->identity_count; i++) {
		const struct dcap_module_identity *m = &t->identities[i];
		if (strlen(m->id) != 6 || memcmp(m->id, "TDX_", 4) != 0 || m->level_count == 0)
			fuzz_fail("a malformed module identity", data, size);
		for (size_t j = 0; j < m->level_count; j++)
			check_advisories(data, size, &m->levels[j].advisories);
	}
	/* Matching with SVNs taken from the input: the answer is one of the levels, or none. */
	uint8_t svn[16] = {0}, tee[16] = {0}, signer[48] = {0}, attrs[8] = {0};
	memcpy(svn, data, size < 16 ? size : 16);
	if (size > 16)
		memcpy(tee, data + 16, size - 16 < 16 ? size - 16 : 16);
	const struct dcap_platform_level *l = dcap_tcb_platform_level(t, svn, (uint16_t)size, tee);
	if (l && (l < t->levels || l >= t->levels + t->level_count))
		fuzz_fail("a platform level from nowhere", data, size);
	const struct dcap_module_level *ml;
	const char *reason;
	if (dcap_tcb_module_check(t, tee, signer, attrs, &ml, &reason) != 0 && !reason)
		fuzz_fail("a module check without a reason", data, size);
	memset(svn, 0xff, sizeof(svn));
	memset(tee, 0xff, sizeof(tee));
	l = dcap_tcb_platform_level(t, svn, 0xffff, tee);
	if (!l)
		fuzz_fail("the highest TCB meets no level", data, size);
}

static void check_qe_identity(const uint8_t *data, size_t size, const struct dcap_qe_identity *q)
{
	if (q->next_update <= q->issue_date || q->level_count == 0 ||
	    q->level_count > DCAP_TCB_LEVELS_MAX)
		fuzz_fail("a QE identity beyond its limits", data, size);
	for (size_t i = 0; i < q->level_count; i++) {
		if (!status_ok(q->levels[i].status))
			fuzz_fail("an unknown QE status", data, size);
		check_advisories(data, size, &q->levels[i].advisories);
	}
	if (!dcap_qe_identity_level(q, 0xffff))
		fuzz_fail("the highest ISVSVN meets no QE level", data, size);
	const struct dcap_qe_level *l = dcap_qe_identity_level(q, (uint16_t)size);
	if (l && (l < q->levels || l >= q->levels + q->level_count))
		fuzz_fail("a QE level from nowhere", data, size);
	uint8_t zeros[32] = {0};
	dcap_qe_identity_matches(q, zeros, 0, zeros, zeros);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	if (!fuzz_input_copy(data, size, &text))
		return 0;
	struct ee_error err;
	struct dcap_collateral c;
	if (dcap_collateral_from_json(text, size, &c, &err) == 0) {
		const char *texts[] = {c.pck_crl_issuer_chain, c.tcb_info_issuer_chain, c.tcb_info,
		                       c.qe_identity_issuer_chain, c.qe_identity};
		const size_t lens[] = {c.pck_crl_issuer_chain_len, c.tcb_info_issuer_chain_len,
		                       c.tcb_info_len, c.qe_identity_issuer_chain_len, c.qe_identity_len};
		for (int i = 0; i < 5; i++) {
			if (!texts[i] || strlen(texts[i]) != lens[i])
				fuzz_fail("a collateral text not terminated at its length", data, size);
		}
		if (!c.root_ca_crl || !c.pck_crl || !c.root_ca_crl_len || !c.pck_crl_len)
			fuzz_fail("a collateral CRL missing", data, size);
		struct dcap_prepared *p = NULL;
		if (dcap_collateral_prepare(trust, &c, &p, &err) == 0) {
			check_tcb_info(data, size, dcap_prepared_tcb_info(p));
			check_qe_identity(data, size, dcap_prepared_qe_identity(p));
			if (dcap_prepared_next_update(p) > dcap_prepared_tcb_info(p)->next_update)
				fuzz_fail("a next update after the TCB info's", data, size);
			dcap_prepared_free(p);
		} else if (!known(err.reason) || p) {
			fuzz_fail("an unknown prepare reason", data, size);
		}
		dcap_collateral_free(&c);
	} else if (strcmp(err.reason, "collateral_invalid") != 0) {
		fuzz_fail("an unknown collateral reason", data, size);
	}

	struct dcap_tcb_info t;
	if (dcap_tcb_info_parse(text, size, &t, &err) == 0) {
		check_tcb_info(data, size, &t);
		dcap_tcb_info_free(&t);
	} else if (strcmp(err.reason, "tcb_info_invalid") != 0) {
		fuzz_fail("an unknown TCB info reason", data, size);
	}
	struct dcap_qe_identity q;
	if (dcap_qe_identity_parse(text, size, &q, &err) == 0) {
		check_qe_identity(data, size, &q);
		dcap_qe_identity_free(&q);
	} else if (strcmp(err.reason, "qe_identity_invalid") != 0) {
		fuzz_fail("an unknown QE identity reason", data, size);
	}
	free(text);
	return 0;
}
