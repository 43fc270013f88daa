/*
 * test_dcap_synthetic.c - DCAP verification (lib/dcap*.c) under a synthetic
 * test root, as a development network would pin one.  The hierarchy, its
 * quotes and collateral are made here, at run time, by
 * tests/support/dcapgen.c (its defaults at AT, keys from a fixed key seed),
 * so no generated file has to be kept in step with this test.  Each case
 * re-signs a changed TCB info or QE identity with the hierarchy's TCB
 * signing key, or swaps in a CRL of a variant hierarchy (same seed and
 * root, one certificate revoked), and reaches a verdict that Intel's own
 * samples never show: revoked PCK certificate, CA and TCB level, every
 * status merge, module and QE identity mismatches, FMSPC / PCE-ID
 * mismatches, and two pinned roots whose collateral must not be mixed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <openssl/pem.h>

#include "check.h"
#include "dcap.h"
#include "dcapgen.h"
#include "tdx_quote.h"

#define AT ((time_t)1767225600) /* 2026-01-01T00:00:00Z, the verification time */
#define DAY (24 * 60 * 60)
#define YEAR (365 * DAY)
#define KEY_SEED "tests/unit/test_dcap_synthetic.c"
#define OLD_TCB_DATE ((time_t)1515024000) /* 2018-01-04: the OutOfDate platform level's */
/* The module identity the quotes name (TEE_TCB_SVN[1] = 1): dcapgen's second, TDX_01. */
#define MODULE "tdxModuleIdentities/1"

/*
 * What the cases rely on, from dcapgen.h's defaults: the platform has SGX
 * SVNs 3,3,2,2,4,1,0,5, PCESVN 11, FMSPC 90C06F000000; TCB level 0 wants
 * 2,2,2,2,3,1,0,5 / 11 / TDX 1,0,2 (UpToDate), level 1 the same with PCESVN 5
 * (OutOfDate, INTEL-SA-00106 and -00837); TDX_01 has levels 4 (UpToDate) and
 * 2 (OutOfDate, INTEL-SA-01036); the QE identity levels 4 (UpToDate) and 2
 * (OutOfDate, INTEL-SA-00615); the QE reports ISVSVN 4 and ATTRIBUTES 15..,
 * the TD TEE_TCB_SVN 5,1,2.  Certificates are valid from AT - 30 days (the
 * leaf) on, CRLs from AT - 1 day to AT + 29 days.
 */

struct blob {
	unsigned char *data;
	size_t len;
};

static bool read_file(const char *path, struct blob *out)
{
	out->data = NULL;
	out->len = 0;
	FILE *f = fopen(path, "rb");
	if (!f) {
		test_fail(__FILE__, __LINE__, "cannot open %s (run from the repository root)", path);
		return false;
	}
	out->data = malloc(1 << 20);
	if (out->data)
		out->len = fread(out->data, 1, 1 << 20, f);
	fclose(f);
	return out->data != NULL;
}

static struct dcapgen *hierarchy;
static char *dev_root_pem, *dev_root_key_pem;
static struct dcap_trust *dev_trust;
static struct dcap_collateral base;
static struct blob v4, v5_td10, v5_td15, v4_debug;
/* CRLs (DER) of variants of the hierarchy that revoke one of its certificates. */
static struct blob pck_crl_revoking_pck, root_crl_revoking_ca, root_crl_revoking_signing;

/* ---- the hierarchy ---- */

static void hierarchy_options(struct dcapgen_options *o)
{
	dcapgen_defaults_at(o, AT);
	o->key_seed = KEY_SEED;
	o->tcb_info.levels[1].tcb_date = OLD_TCB_DATE;
}

static bool make_quote(void (*change)(struct dcapgen_quote_options *), struct blob *out)
{
	static const unsigned char report_data[DCAPGEN_REPORT_DATA_LEN] = "synthetic";
	struct dcapgen_quote_options q;
	dcapgen_quote_defaults(&q);
	q.tee_tcb_svn[1] = 1;
	q.tee_tcb_svn2[1] = 1;
	if (change)
		change(&q);
	return dcapgen_quote(hierarchy, report_data, &q, &out->data, &out->len) == 0;
}

static void quote_v5_td10(struct dcapgen_quote_options *q)
{
	q->version = 5;
	q->body_type = 2;
}

static void quote_v5_td15(struct dcapgen_quote_options *q)
{
	q->version = 5;
	q->body_type = 3;
}

static void quote_debug(struct dcapgen_quote_options *q)
{
	q->td_attributes[0] |= 1;
}

enum revoke { REVOKE_PCK, REVOKE_CA, REVOKE_SIGNING };

/*
 * The CRL of a variant that revokes one of the hierarchy's certificates:
 * the same key seed gives the variant the same keys and serials, the same
 * root its root, so its CRLs are valid for the hierarchy's quotes.
 */
static bool variant_crl(enum revoke what, struct blob *out)
{
	struct dcapgen_options o;
	hierarchy_options(&o);
	o.root_key_pem = dev_root_key_pem;
	o.root_cert_pem = dev_root_pem;
	o.pck_leaf.revoked = what == REVOKE_PCK;
	o.pck_ca.revoked = what == REVOKE_CA;
	o.tcb_signer.revoked = what == REVOKE_SIGNING;
	struct dcapgen *g = NULL;
	unsigned char *der = NULL;
	int n = -1;
	if (dcapgen_create(&o, &g) == 0)
		n = i2d_X509_CRL(what == REVOKE_PCK ? dcapgen_pck_crl(g) : dcapgen_root_crl(g), &der);
	dcapgen_destroy(g);
	out->data = NULL;
	out->len = 0;
	if (n > 0 && (out->data = malloc((size_t)n)) != NULL) {
		memcpy(out->data, der, (size_t)n);
		out->len = (size_t)n;
	}
	OPENSSL_free(der);
	return out->data != NULL;
}

static bool make_hierarchy(void)
{
	struct dcapgen_options o;
	struct ee_error err;
	char *json = NULL;
	hierarchy_options(&o);
	bool ok = dcapgen_create(&o, &hierarchy) == 0 && dcapgen_root_pem(hierarchy, &dev_root_pem) == 0 &&
	          dcapgen_root_key_pem(hierarchy, &dev_root_key_pem) == 0 &&
	          dcapgen_collateral_json(hierarchy, &json) == 0;
	CHECK(ok);
	ok = ok && make_quote(NULL, &v4) && make_quote(quote_v5_td10, &v5_td10) &&
	     make_quote(quote_v5_td15, &v5_td15) && make_quote(quote_debug, &v4_debug);
	CHECK(ok, "the quotes");
	ok = ok && variant_crl(REVOKE_PCK, &pck_crl_revoking_pck) &&
	     variant_crl(REVOKE_CA, &root_crl_revoking_ca) &&
	     variant_crl(REVOKE_SIGNING, &root_crl_revoking_signing);
	CHECK(ok, "the variants' CRLs");
	if (ok) {
		CHECK(dcap_trust_create(&dev_trust, &err) == 0);
		CHECK(dev_trust && dcap_trust_add_pem(dev_trust, dev_root_pem, strlen(dev_root_pem),
		                                      &err) == 0,
		      "%s", err.reason);
		CHECK(dcap_collateral_from_json(json, strlen(json), &base, &err) == 0, "%s", err.reason);
	}
	free(json);
	return !test_case_failed();
}

/* ---- signing variants of the collateral ---- */

static void sign_raw(const char *text, unsigned char sig[64])
{
	memset(sig, 0, 64);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char der[128];
	size_t len = sizeof(der);
	if (ctx &&
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL,
	                       dcapgen_key(hierarchy, DCAPGEN_TCB_SIGNER)) == 1 &&
	    EVP_DigestSign(ctx, der, &len, (const unsigned char *)text, strlen(text)) == 1) {
		const unsigned char *p = der;
		ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
		if (s) {
			BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32);
			BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32);
			ECDSA_SIG_free(s);
		}
	}
	EVP_MD_CTX_free(ctx);
}

/* The value at a path like "tcbLevels/0/tcbStatus"'s parent, and the last key. */
static struct json_object *parent_of(struct json_object *root, const char *path, char *last)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	struct json_object *cur = root;
	char *save = NULL, *part = strtok_r(buf, "/", &save);
	while (part) {
		char *next = strtok_r(NULL, "/", &save);
		if (!next) {
			snprintf(last, 64, "%s", part);
			return cur;
		}
		if (json_object_is_type(cur, json_type_array))
			cur = json_object_array_get_idx(cur, (size_t)atoi(part));
		else if (!json_object_object_get_ex(cur, part, &cur))
			return NULL;
		part = next;
	}
	return NULL;
}

/* Sets (value) or deletes (NULL) the field at path. */
static void set(struct json_object *root, const char *path, struct json_object *value)
{
	char last[64];
	struct json_object *parent = parent_of(root, path, last);
	if (!parent) {
		test_fail(__FILE__, __LINE__, "no path %s", path);
		json_object_put(value);
		return;
	}
	if (json_object_is_type(parent, json_type_array))
		json_object_array_put_idx(parent, (size_t)atoi(last), value);
	else if (value)
		json_object_object_add(parent, last, value);
	else
		json_object_object_del(parent, last);
}

static struct json_object *str(const char *s)
{
	return json_object_new_string(s);
}

/*
 * A change to the collateral: edits to the TCB info and QE identity
 * (re-signed), or other CRLs.  Cases fill what they change.
 */
struct variant {
	void (*tcb)(struct json_object *t);
	void (*qe)(struct json_object *q);
	const struct blob *root_crl;
	const struct blob *pck_crl;
};

/* Verifies quote under base changed by v; the result in *r, the reason returned. */
static const char *verify_variant(const struct variant *v, const struct blob *quote, int64_t at,
                                  struct dcap_result *r)
{
	static char reason[EE_REASON_MAX];
	struct dcap_collateral c = base; /* borrowed pointers; only the replacements are freed */
	char *tcb_text = NULL, *qe_text = NULL;
	if (v->tcb) {
		struct json_object *t = json_tokener_parse(base.tcb_info);
		v->tcb(t);
		tcb_text = strdup(json_object_to_json_string_ext(t, JSON_C_TO_STRING_PLAIN |
		                                                    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(t);
		c.tcb_info = tcb_text;
		c.tcb_info_len = strlen(tcb_text);
		sign_raw(tcb_text, c.tcb_info_signature);
	}
	if (v->qe) {
		struct json_object *q = json_tokener_parse(base.qe_identity);
		v->qe(q);
		qe_text = strdup(json_object_to_json_string_ext(q, JSON_C_TO_STRING_PLAIN |
		                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(q);
		c.qe_identity = qe_text;
		c.qe_identity_len = strlen(qe_text);
		sign_raw(qe_text, c.qe_identity_signature);
	}
	if (v->root_crl) {
		c.root_ca_crl = v->root_crl->data;
		c.root_ca_crl_len = v->root_crl->len;
	}
	if (v->pck_crl) {
		c.pck_crl = v->pck_crl->data;
		c.pck_crl_len = v->pck_crl->len;
	}
	struct ee_error err;
	dcap_verify(dev_trust, &c, quote->data, quote->len, at, r, &err);
	snprintf(reason, sizeof(reason), "%s", r->reason);
	free(tcb_text);
	free(qe_text);
	return reason;
}

static bool has_advisory(const struct dcap_result *r, const char *id)
{
	for (size_t i = 0; i < r->advisory_count; i++) {
		if (strcmp(r->advisory_ids[i], id) == 0)
			return true;
	}
	return false;
}

/* ---- cases ---- */

static void test_hierarchy_verifies(void)
{
	struct dcap_result r;
	struct ee_error err;
	struct dcap_prepared *p;
	test_case("synthetic: the collateral prepares under the development root");
	CHECK(dcap_collateral_prepare(dev_trust, &base, &p, &err) == 0, "%s", err.reason);
	if (test_case_failed())
		return;
	const struct blob *quotes[] = {&v4, &v5_td10, &v5_td15};
	const char *names[] = {"v4", "v5 with a TDX 1.0 body", "v5 with a TDX 1.5 body"};
	for (int i = 0; i < 3; i++) {
		test_case("synthetic: the %s quote verifies, UpToDate", names[i]);
		CHECK(dcap_verify_prepared(p, quotes[i]->data, quotes[i]->len, AT, &r, &err) == 0, "%s",
		      r.reason);
		CHECK_STR(r.tcb_status, "UpToDate");
		CHECK_STR(r.module_status, "UpToDate");
		CHECK(memcmp(r.fmspc, "\x90\xc0\x6f\x00\x00\x00", 6) == 0);
	}
	test_case("synthetic: a debug TD is refused after everything else holds");
	CHECK(dcap_verify_prepared(p, v4_debug.data, v4_debug.len, AT, &r, &err) != 0);
	CHECK_STR(r.reason, "debug_td");
	CHECK(r.signatures_verified);
	CHECK_STR(r.tcb_status, "UpToDate");

	test_case("synthetic: the certificates' and CRLs' windows");
	/* The leaf is valid from AT - 30 days to AT + 7 years. */
	CHECK(dcap_verify_prepared(p, v4.data, v4.len, AT - 60 * DAY, &r, &err) != 0);
	CHECK_STR(r.reason, "pck_cert_not_yet_valid");
	CHECK(dcap_verify_prepared(p, v4.data, v4.len, AT + 8 * YEAR, &r, &err) != 0);
	CHECK_STR(r.reason, "pck_cert_expired");
	/* Both CRLs from AT - 1 day to AT + 29 days. */
	CHECK(dcap_verify_prepared(p, v4.data, v4.len, AT + 60 * DAY, &r, &err) != 0);
	CHECK_STR(r.reason, "crl_expired");
	CHECK(dcap_verify_prepared(p, v4.data, v4.len, AT - 2 * DAY, &r, &err) != 0);
	CHECK_STR(r.reason, "crl_not_yet_valid");
	dcap_prepared_free(p);
}

static void tcb_revoked(struct json_object *t)
{
	set(t, "tcbLevels/0/tcbStatus", str("Revoked"));
}

static void tcb_sw_hardening(struct json_object *t)
{
	set(t, "tcbLevels/0/tcbStatus", str("SWHardeningNeeded"));
	struct json_object *ids = json_object_new_array();
	json_object_array_add(ids, str("INTEL-SA-00615"));
	set(t, "tcbLevels/0/advisoryIDs", ids);
}

/* Platform ConfigurationNeeded, and the TD's module (ISVSVN 5) falls to an OutOfDate level. */
static void tcb_config_and_module_outdated(struct json_object *t)
{
	set(t, "tcbLevels/0/tcbStatus", str("ConfigurationNeeded"));
	struct json_object *ids = json_object_new_array();
	json_object_array_add(ids, str("INTEL-SA-00615"));
	json_object_array_add(ids, str("INTEL-SA-01036"));
	set(t, "tcbLevels/0/advisoryIDs", ids);
	set(t, MODULE "/tcbLevels/0/tcb/isvsvn", json_object_new_int(6));
}

/* The QE (ISVSVN 4) falls to the level of ISVSVN 2, given its own date and advisory. */
static void qe_outdated(struct json_object *q)
{
	set(q, "tcbLevels/0/tcb/isvsvn", json_object_new_int(5));
	set(q, "tcbLevels/1/tcbDate", str("2023-01-01T00:00:00Z"));
	struct json_object *ids = json_object_new_array();
	json_object_array_add(ids, str("INTEL-SA-00999"));
	set(q, "tcbLevels/1/advisoryIDs", ids);
}

static void qe_revoked(struct json_object *q)
{
	set(q, "tcbLevels/0/tcbStatus", str("Revoked"));
}

static void test_statuses(void)
{
	struct dcap_result r;
	struct variant v;
	test_case("status: the platform's level Revoked -> tcb_revoked");
	v = (struct variant){.tcb = tcb_revoked};
	CHECK_STR(verify_variant(&v, &v4, AT, &r), "tcb_revoked");
	CHECK_STR(r.tcb_status, "Revoked");
	CHECK(r.signatures_verified && !r.verified);

	test_case("status: SWHardeningNeeded verifies; the policy is the caller's");
	v = (struct variant){.tcb = tcb_sw_hardening};
	CHECK_STR(verify_variant(&v, &v4, AT, &r), "ok");
	CHECK_STR(r.tcb_status, "SWHardeningNeeded");
	CHECK_INT(r.advisory_count, 1);
	CHECK(has_advisory(&r, "INTEL-SA-00615"));

	test_case("status: ConfigurationNeeded + module OutOfDate -> OutOfDateConfigurationNeeded");
	v = (struct variant){.tcb = tcb_config_and_module_outdated};
	CHECK_STR(verify_variant(&v, &v4, AT, &r), "ok");
	CHECK_STR(r.platform_status, "ConfigurationNeeded");
	CHECK_STR(r.module_status, "OutOfDate");
	CHECK_STR(r.qe_status, "UpToDate");
	CHECK_STR(r.tcb_status, "OutOfDateConfigurationNeeded");
	/* The union: INTEL-SA-01036 is listed by both levels and counted once. */
	CHECK_INT(r.advisory_count, 2);
	CHECK(has_advisory(&r, "INTEL-SA-00615") && has_advisory(&r, "INTEL-SA-01036"));

	test_case("status: the QE's level OutOfDate makes the whole OutOfDate");
	v = (struct variant){.qe = qe_outdated};
	CHECK_STR(verify_variant(&v, &v4, AT, &r), "ok");
	CHECK_STR(r.qe_status, "OutOfDate");
	CHECK_STR(r.tcb_status, "OutOfDate");
	CHECK(has_advisory(&r, "INTEL-SA-00999"));
	CHECK(r.qe_tcb_date == 1672531200);

	test_case("status: all three at once");
	v = (struct variant){.tcb = tcb_config_and_module_outdated, .qe = qe_outdated};
	CHECK_STR(verify_variant(&v, &v4, AT, &r), "ok");
	CHECK_STR(r.tcb_status, "OutOfDateConfigurationNeeded");
	CHECK_INT(r.advisory_count, 3);

	test_case("status: the QE's level Revoked -> tcb_revoked");
	v = (struct variant){.qe = qe_revoked};
	CHECK_STR(verify_variant(&v, &v4, AT, &r), "tcb_revoked");
	CHECK_STR(r.tcb_status, "Revoked");
}

static void fmspc_other(struct json_object *t)
{
	set(t, "fmspc", str("90C06F000001"));
}
static void pceid_other(struct json_object *t)
{
	set(t, "pceId", str("0100"));
}
static void levels_too_high(struct json_object *t)
{
	set(t, "tcbLevels/0/tcb/pcesvn", json_object_new_int(12));
	set(t, "tcbLevels/1/tcb/tdxtcbcomponents/2/svn", json_object_new_int(3));
}
static void tdx_component_high(struct json_object *t)
{
	/* The UpToDate level wants TEE_TCB_SVN[2] >= 3 (the TD has 2): the OutOfDate one is met. */
	set(t, "tcbLevels/0/tcb/tdxtcbcomponents/2/svn", json_object_new_int(3));
}
static void first_sgx_level_revoked_tdx_unmet(struct json_object *t)
{
	set(t, "tcbLevels/0/tcbStatus", str("Revoked"));
	set(t, "tcbLevels/0/tcb/tdxtcbcomponents/2/svn", json_object_new_int(3));
}
static void module_signer_other(struct json_object *t)
{
	set(t, MODULE "/mrsigner", str("01000000000000000000000000000000000000000000"
	                               "0000000000000000000000000000000000000000000000000000"));
}
static void module_attributes_other(struct json_object *t)
{
	set(t, MODULE "/attributes", str("0000000000000001"));
}
static void module_unknown_version(struct json_object *t)
{
	set(t, MODULE "/id", str("TDX_02"));
}
static void module_levels_too_high(struct json_object *t)
{
	set(t, MODULE "/tcbLevels/0/tcb/isvsvn", json_object_new_int(9));
	set(t, MODULE "/tcbLevels/1/tcb/isvsvn", json_object_new_int(8));
}
static void no_module_identities(struct json_object *t)
{
	set(t, "tdxModuleIdentities", NULL);
}
static void no_identities_signer_other(struct json_object *t)
{
	set(t, "tdxModuleIdentities", NULL);
	set(t, "tdxModule/mrsigner", str("01000000000000000000000000000000000000000000"
	                                 "0000000000000000000000000000000000000000000000000000"));
}
static void tcb_expired(struct json_object *t)
{
	set(t, "nextUpdate", str("2026-01-01T00:00:00Z")); /* AT itself */
}
static void tcb_unknown_status(struct json_object *t)
{
	set(t, "tcbLevels/1/tcbStatus", str("TDRelaunchAdvised"));
}
static void tcb_version_2(struct json_object *t)
{
	set(t, "version", json_object_new_int(2));
}
static void tcb_svn_256(struct json_object *t)
{
	set(t, "tcbLevels/1/tcb/sgxtcbcomponents/3/svn", json_object_new_int(256));
}
static void tcb_svn_string(struct json_object *t)
{
	set(t, "tcbLevels/1/tcb/sgxtcbcomponents/3/svn", str("2"));
}
static void tcb_15_components(struct json_object *t)
{
	struct json_object *parent = NULL;
	char last[64];
	parent = parent_of(t, "tcbLevels/0/tcb/tdxtcbcomponents/x", last);
	if (parent)
		json_object_array_del_idx(parent, 15, 1);
}
static void tcb_no_levels(struct json_object *t)
{
	set(t, "tcbLevels", json_object_new_array());
}
static void tcb_bad_fmspc(struct json_object *t)
{
	set(t, "fmspc", str("90C06F00000"));
}
static void tcb_long_advisory(struct json_object *t)
{
	struct json_object *ids = json_object_new_array();
	json_object_array_add(ids, str("INTEL-SA-0000000000000000000000000000001"));
	set(t, "tcbLevels/1/advisoryIDs", ids);
}
static void tcb_module_id_bad(struct json_object *t)
{
	set(t, MODULE "/id", str("TDX_1"));
}
static void tcb_dates_reversed(struct json_object *t)
{
	set(t, "nextUpdate", str("2024-01-01T00:00:00Z"));
}
static void tcb_type_1(struct json_object *t)
{
	set(t, "tcbType", json_object_new_int(1));
}

static void test_tcb_info_cases(void)
{
	struct dcap_result r;
	static const struct {
		const char *what;
		void (*edit)(struct json_object *);
		const char *want;
	} cases[] = {
		{"another FMSPC", fmspc_other, "fmspc_mismatch"},
		{"another PCE-ID", pceid_other, "pceid_mismatch"},
		{"every level above the platform", levels_too_high, "tcb_level_unknown"},
		{"the first level wants a newer TDX component", tdx_component_high, "ok"},
		{"the first SGX level Revoked, its TDX side unmet", first_sgx_level_revoked_tdx_unmet,
		 "tcb_revoked"},
		{"the module identity's MRSIGNER", module_signer_other, "tdx_module_mismatch"},
		{"the module identity's attributes", module_attributes_other, "tdx_module_mismatch"},
		{"no identity for module version 01", module_unknown_version, "tdx_module_mismatch"},
		{"no module level for ISVSVN 5", module_levels_too_high, "tdx_module_tcb_unknown"},
		{"no module identities: tdxModule decides", no_module_identities, "ok"},
		{"no module identities, tdxModule's MRSIGNER differs", no_identities_signer_other,
		 "tdx_module_mismatch"},
		{"nextUpdate at the verification time", tcb_expired, "tcb_info_expired"},
		{"a status Intel does not use", tcb_unknown_status, "tcb_info_invalid"},
		{"version 2", tcb_version_2, "tcb_info_invalid"},
		{"an SVN of 256", tcb_svn_256, "tcb_info_invalid"},
		{"an SVN as a string", tcb_svn_string, "tcb_info_invalid"},
		{"15 TDX components", tcb_15_components, "tcb_info_invalid"},
		{"no levels", tcb_no_levels, "tcb_info_invalid"},
		{"an FMSPC of 11 hex digits", tcb_bad_fmspc, "tcb_info_invalid"},
		{"an advisory ID of 40 characters", tcb_long_advisory, "tcb_info_invalid"},
		{"a module identity id TDX_1", tcb_module_id_bad, "tcb_info_invalid"},
		{"nextUpdate before issueDate", tcb_dates_reversed, "tcb_info_invalid"},
		{"tcbType 1", tcb_type_1, "tcb_info_invalid"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("TCB info: %s -> %s", cases[i].what, cases[i].want);
		struct variant v = {.tcb = cases[i].edit};
		CHECK_STR(verify_variant(&v, &v4, AT, &r), cases[i].want);
	}
	test_case("TCB info: the OutOfDate level met for a newer-TDX first level has its advisories");
	struct variant v = {.tcb = tdx_component_high};
	verify_variant(&v, &v4, AT, &r);
	CHECK_STR(r.platform_status, "OutOfDate");
	CHECK(has_advisory(&r, "INTEL-SA-00106") && has_advisory(&r, "INTEL-SA-00837"));
	CHECK(r.platform_tcb_date == OLD_TCB_DATE);
}

static void qe_signer_other(struct json_object *q)
{
	set(q, "mrsigner", str("DD9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5"));
}
static void qe_prod_other(struct json_object *q)
{
	set(q, "isvprodid", json_object_new_int(3));
}
static void qe_misc_other(struct json_object *q)
{
	set(q, "miscselect", str("01000000"));
}
static void qe_misc_masked(struct json_object *q)
{
	set(q, "miscselectMask", str("FEFFFFFF"));
}
static void qe_attr_other(struct json_object *q)
{
	set(q, "attributes", str("13000000000000000000000000000000"));
}
static void qe_attr_masked(struct json_object *q)
{
	/* The report's ATTRIBUTES are 15.. and E7..: with bit 2 of byte 0 masked out, 11 matches. */
	set(q, "attributesMask", str("FBFFFFFFFFFFFFFF0000000000000000"));
	set(q, "attributes", str("11000000000000000000000000000000"));
}
static void qe_levels_too_high(struct json_object *q)
{
	set(q, "tcbLevels/0/tcb/isvsvn", json_object_new_int(8));
	set(q, "tcbLevels/1/tcb/isvsvn", json_object_new_int(5));
}
static void qe_expired(struct json_object *q)
{
	set(q, "nextUpdate", str("2026-01-01T00:00:00Z"));
}
static void qe_version_1(struct json_object *q)
{
	set(q, "version", json_object_new_int(1));
}
static void qe_id_sgx(struct json_object *q)
{
	set(q, "id", str("QE"));
}
static void qe_prod_big(struct json_object *q)
{
	set(q, "isvprodid", json_object_new_int(65536));
}

static void test_qe_identity_cases(void)
{
	struct dcap_result r;
	static const struct {
		const char *what;
		void (*edit)(struct json_object *);
		const char *want;
	} cases[] = {
		{"another MRSIGNER", qe_signer_other, "qe_identity_mismatch"},
		{"another ISVPRODID", qe_prod_other, "qe_identity_mismatch"},
		{"another MISCSELECT", qe_misc_other, "qe_identity_mismatch"},
		{"a narrower MISCSELECT mask", qe_misc_masked, "ok"},
		{"another ATTRIBUTES", qe_attr_other, "qe_identity_mismatch"},
		{"ATTRIBUTES 0x15 masked by 0xFB to the identity's 0x11", qe_attr_masked, "ok"},
		{"no level for ISVSVN 4", qe_levels_too_high, "qe_tcb_unknown"},
		{"nextUpdate at the verification time", qe_expired, "qe_identity_expired"},
		{"version 1", qe_version_1, "qe_identity_invalid"},
		{"the SGX QE's id", qe_id_sgx, "qe_identity_invalid"},
		{"ISVPRODID 65536", qe_prod_big, "qe_identity_invalid"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		test_case("QE identity: %s -> %s", cases[i].what, cases[i].want);
		struct variant v = {.qe = cases[i].edit};
		CHECK_STR(verify_variant(&v, &v4, AT, &r), cases[i].want);
	}
}

static void test_crls(void)
{
	struct dcap_result r;
	struct variant v;
	test_case("CRL: the PCK CRL lists the PCK certificate -> pck_revoked");
	v = (struct variant){.pck_crl = &pck_crl_revoking_pck};
	CHECK_STR(verify_variant(&v, &v4, AT, &r), "pck_revoked");
	CHECK(!r.signatures_verified);
	test_case("CRL: the root CA CRL lists the PCK CA -> pck_ca_revoked");
	v = (struct variant){.root_crl = &root_crl_revoking_ca};
	CHECK_STR(verify_variant(&v, &v4, AT, &r), "pck_ca_revoked");
	test_case("CRL: the root CA CRL lists the TCB signing certificate");
	v = (struct variant){.root_crl = &root_crl_revoking_signing};
	CHECK_STR(verify_variant(&v, &v4, AT, &r), "tcb_signing_cert_revoked");
	test_case("CRL: the two CRLs swapped -> crl_invalid");
	v = (struct variant){.root_crl = &pck_crl_revoking_pck, .pck_crl = &root_crl_revoking_ca};
	CHECK_STR(verify_variant(&v, &v4, AT, &r), "crl_invalid");
}

static void test_two_roots(void)
{
	struct blob intel_root, intel_json, tdx;
	struct ee_error err;
	struct dcap_result r;
	test_case("two roots: Intel's (from ../shared) and the development root");
	if (!read_file("../shared/testdata/dcap/intel_sgx_root_ca.pem", &intel_root) ||
	    !read_file("../shared/testdata/dcap/tdx_quote_collateral.json", &intel_json) ||
	    !read_file("../shared/testdata/dcap/tdx_quote", &tdx))
		return;
	struct dcap_trust *both, *intel_only;
	struct dcap_collateral intel_col;
	struct dcap_prepared *intel_prep = NULL, *dev_prep = NULL, *p = NULL;
	CHECK(dcap_trust_create(&both, &err) == 0 && dcap_trust_create(&intel_only, &err) == 0);
	CHECK(dcap_trust_add_pem(both, (char *)intel_root.data, intel_root.len, &err) == 0);
	CHECK(dcap_trust_add_pem(both, dev_root_pem, strlen(dev_root_pem), &err) == 0);
	CHECK(dcap_trust_add_pem(intel_only, (char *)intel_root.data, intel_root.len, &err) == 0);
	CHECK_INT(dcap_trust_count(both), 2);
	CHECK(dcap_collateral_from_json((char *)intel_json.data, intel_json.len, &intel_col, &err) == 0);
	CHECK(dcap_collateral_prepare(both, &intel_col, &intel_prep, &err) == 0, "%s", err.reason);
	CHECK(dcap_collateral_prepare(both, &base, &dev_prep, &err) == 0, "%s", err.reason);
	if (intel_prep && dev_prep) {
		test_case("two roots: each quote verifies with its own collateral");
		CHECK(dcap_verify_prepared(intel_prep, tdx.data, tdx.len, 1751624655, &r, &err) == 0, "%s",
		      r.reason);
		CHECK(dcap_verify_prepared(dev_prep, v4.data, v4.len, AT, &r, &err) == 0, "%s", r.reason);
		test_case("two roots: a quote with the other root's collateral -> collateral_root_mismatch");
		/* At AT, when the development chain is valid: the roots are what differs. */
		CHECK(dcap_verify_prepared(intel_prep, v4.data, v4.len, AT, &r, &err) != 0);
		CHECK_STR(r.reason, "collateral_root_mismatch");
		CHECK(dcap_verify_prepared(dev_prep, tdx.data, tdx.len, AT, &r, &err) != 0);
		CHECK_STR(r.reason, "collateral_root_mismatch");
	}
	test_case("Intel's root only: the development hierarchy is not trusted");
	CHECK(dcap_collateral_prepare(intel_only, &base, &p, &err) != 0);
	CHECK_STR(err.reason, "crl_invalid");
	CHECK(dcap_verify(intel_only, &intel_col, v4.data, v4.len, 1751624655, &r, &err) != 0);
	CHECK_STR(r.reason, "pck_chain_untrusted");

	test_case("two roots: collateral whose parts hang from different roots is refused");
	struct dcap_collateral mixed = base; /* borrowed */
	mixed.tcb_info_issuer_chain = intel_col.tcb_info_issuer_chain;
	mixed.tcb_info_issuer_chain_len = intel_col.tcb_info_issuer_chain_len;
	CHECK(dcap_collateral_prepare(both, &mixed, &p, &err) != 0);
	CHECK_STR(err.reason, "collateral_root_mismatch");

	dcap_prepared_free(intel_prep);
	dcap_prepared_free(dev_prep);
	dcap_collateral_free(&intel_col);
	dcap_trust_destroy(both);
	dcap_trust_destroy(intel_only);
	free(intel_root.data);
	free(intel_json.data);
	free(tdx.data);
}

/* ---- the cache of verified PCK chains ---- */

static char *pem_of(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p = NULL, *out = NULL;
	long n;
	if (bio && PEM_write_bio_X509(bio, x) == 1 && (n = BIO_get_mem_data(bio, &p)) > 0 &&
	    (out = malloc((size_t)n + 1)) != NULL) {
		memcpy(out, p, (size_t)n);
		out[n] = '\0';
	}
	BIO_free(bio);
	return out;
}

/* Collateral prepared from base with other CRLs (NULL: base's). */
static struct dcap_prepared *prepared_with(const struct blob *root_crl, const struct blob *pck_crl)
{
	struct dcap_collateral c = base; /* borrowed */
	if (root_crl) {
		c.root_ca_crl = root_crl->data;
		c.root_ca_crl_len = root_crl->len;
	}
	if (pck_crl) {
		c.pck_crl = pck_crl->data;
		c.pck_crl_len = pck_crl->len;
	}
	struct dcap_prepared *p = NULL;
	struct ee_error err;
	if (dcap_collateral_prepare(dev_trust, &c, &p, &err) != 0)
		test_fail(__FILE__, __LINE__, "prepare: %s", err.reason);
	return p;
}

/*
 * Both halves as lib/verifier.c runs them, through cache; chain_pem (NULL:
 * the quote's own) stands for the quote's PCK chain, which no signature
 * covers.  The reason.
 */
static const char *verify_cached(struct dcap_pck_cache *cache, const struct dcap_prepared *p,
                                 const struct blob *quote, const char *chain_pem, int64_t at)
{
	static char reason[EE_REASON_MAX];
	struct tdx_quote q;
	struct ee_error err;
	struct dcap_result r;
	if (!p || tdx_quote_parse(quote->data, quote->len, &q, &err) != 0)
		return "no quote";
	if (chain_pem) {
		q.pck_chain_pem = chain_pem;
		q.pck_chain_pem_len = strlen(chain_pem);
	}
	struct dcap_pck *pck = NULL;
	if (dcap_quote_check(dev_trust, cache, &q, at, &pck, &r, &err) == 0)
		dcap_quote_check_collateral(p, &q, pck, at, &r, &err);
	dcap_pck_release(pck);
	snprintf(reason, sizeof(reason), "%s", r.reason);
	return reason;
}

static struct dcap_pck_cache_stats cache_stats(const struct dcap_pck_cache *c)
{
	struct dcap_pck_cache_stats s;
	dcap_pck_cache_get_stats(c, &s);
	return s;
}

/* A quote of a variant of the hierarchy: same seed and root, so the same keys, other signatures. */
static bool variant_quote(struct blob *out)
{
	struct dcapgen_options o;
	hierarchy_options(&o);
	o.root_key_pem = dev_root_key_pem;
	o.root_cert_pem = dev_root_pem;
	struct dcapgen *g = NULL;
	static const unsigned char report_data[DCAPGEN_REPORT_DATA_LEN] = "synthetic";
	struct dcapgen_quote_options q;
	dcapgen_quote_defaults(&q);
	q.tee_tcb_svn[1] = 1;
	bool ok = dcapgen_create(&o, &g) == 0 && dcapgen_quote(g, report_data, &q, &out->data, &out->len) == 0;
	dcapgen_destroy(g);
	return ok;
}

static void test_pck_cache(void)
{
	struct dcap_pck_cache *cache = NULL;
	struct ee_error err;
	struct dcap_prepared *p = prepared_with(NULL, NULL);
	test_case("PCK cache: the first quote verifies the chain, the second is a hit, both ok");
	CHECK(dcap_pck_cache_create(2, &cache, &err) == 0, "%s", err.reason);
	if (!cache || !p) {
		dcap_prepared_free(p);
		return;
	}
	CHECK_STR(verify_cached(cache, p, &v4, NULL, AT), "ok");
	CHECK_INT(cache_stats(cache).misses, 1);
	CHECK_STR(verify_cached(cache, p, &v5_td15, NULL, AT), "ok");
	CHECK_INT(cache_stats(cache).hits, 1);
	CHECK_INT(cache_stats(cache).entries, 1);

	test_case("PCK cache: a revoked PCK after a cache hit is refused once the CRL lists it");
	struct dcap_prepared *revoking_pck = prepared_with(NULL, &pck_crl_revoking_pck);
	struct dcap_prepared *revoking_ca = prepared_with(&root_crl_revoking_ca, NULL);
	CHECK_STR(verify_cached(cache, revoking_pck, &v4, NULL, AT), "pck_revoked");
	CHECK_STR(verify_cached(cache, revoking_ca, &v4, NULL, AT), "pck_ca_revoked");
	CHECK_INT(cache_stats(cache).hits, 3);
	CHECK_STR(verify_cached(cache, p, &v4, NULL, AT), "ok");

	test_case("PCK cache: an expired or not yet valid certificate after a cache hit is refused");
	int64_t leaf_until = 0, leaf_from = 0;
	X509 *leaf = dcapgen_cert(hierarchy, DCAPGEN_PCK_LEAF);
	CHECK(dcap_asn1_time_to_unix(X509_get0_notAfter(leaf), &leaf_until) == 0 &&
	      dcap_asn1_time_to_unix(X509_get0_notBefore(leaf), &leaf_from) == 0);
	struct dcap_result r;
	CHECK_STR(verify_cached(cache, p, &v4, NULL, leaf_until + 1), "pck_cert_expired");
	CHECK_STR(verify_cached(cache, p, &v4, NULL, leaf_from - 1), "pck_cert_not_yet_valid");
	CHECK_INT(cache_stats(cache).misses, 1);
	/* The same verdicts as without a cache. */
	dcap_verify_prepared(p, v4.data, v4.len, leaf_until + 1, &r, &err);
	CHECK_STR(r.reason, "pck_cert_expired");
	dcap_verify_prepared(p, v4.data, v4.len, leaf_from - 1, &r, &err);
	CHECK_STR(r.reason, "pck_cert_not_yet_valid");

	test_case("PCK cache: a chain with the same leaf and another CA is not the cached one");
	struct dcapgen *stranger = NULL;
	struct dcapgen_options so;
	dcapgen_defaults_at(&so, AT);
	char *leaf_pem = pem_of(leaf), *root_pem = pem_of(dcapgen_cert(hierarchy, DCAPGEN_ROOT));
	char *ca_pem = pem_of(dcapgen_cert(hierarchy, DCAPGEN_PCK_CA)), *other_ca = NULL;
	if (dcapgen_create(&so, &stranger) == 0)
		other_ca = pem_of(dcapgen_cert(stranger, DCAPGEN_PCK_CA));
	size_t size = 3 * 4096;
	char *same = malloc(size), *forged = malloc(size);
	if (leaf_pem && root_pem && ca_pem && other_ca && same && forged) {
		snprintf(same, size, "%s%s%s", leaf_pem, ca_pem, root_pem);
		snprintf(forged, size, "%s%s%s", leaf_pem, other_ca, root_pem);
		uint64_t hits = cache_stats(cache).hits;
		CHECK_STR(verify_cached(cache, p, &v4, forged, AT), "pck_chain_signature");
		CHECK_STR(verify_cached(cache, p, &v4, forged, AT), "pck_chain_signature");
		CHECK_INT(cache_stats(cache).hits, hits);
		/* The genuine chain, re-encoded as PEM, is the same DER: still a hit. */
		CHECK_STR(verify_cached(cache, p, &v4, same, AT), "ok");
		CHECK_INT(cache_stats(cache).hits, hits + 1);
	} else {
		test_fail(__FILE__, __LINE__, "the chains");
	}
	free(leaf_pem);
	free(root_pem);
	free(ca_pem);
	free(other_ca);
	free(same);
	free(forged);
	dcapgen_destroy(stranger);

	test_case("PCK cache: bounded; the least recently used chain goes first");
	struct blob a = {0}, b = {0};
	CHECK(variant_quote(&a) && variant_quote(&b));
	CHECK_STR(verify_cached(cache, p, &a, NULL, AT), "ok");
	CHECK_INT(cache_stats(cache).entries, 2);
	CHECK_STR(verify_cached(cache, p, &b, NULL, AT), "ok"); /* evicts v4's chain */
	CHECK_INT(cache_stats(cache).entries, 2);
	CHECK_INT(cache_stats(cache).evictions, 1);
	uint64_t misses = cache_stats(cache).misses;
	CHECK_STR(verify_cached(cache, p, &a, NULL, AT), "ok");
	CHECK_INT(cache_stats(cache).misses, misses);
	CHECK_STR(verify_cached(cache, p, &v4, NULL, AT), "ok");
	CHECK_INT(cache_stats(cache).misses, misses + 1);
	CHECK_INT(cache_stats(cache).evictions, 2);
	free(a.data);
	free(b.data);

	test_case("PCK cache: 0 or too many entries is invalid_config");
	struct dcap_pck_cache *bad = NULL;
	CHECK(dcap_pck_cache_create(0, &bad, &err) != 0 && bad == NULL);
	CHECK(dcap_pck_cache_create(DCAP_PCK_CACHE_LIMIT + 1, &bad, &err) != 0 && bad == NULL);
	dcap_prepared_free(revoking_pck);
	dcap_prepared_free(revoking_ca);
	dcap_prepared_free(p);
	dcap_pck_cache_destroy(cache);
}

int main(void)
{
	test_case("hierarchy: dcapgen makes the synthetic hierarchy, its quotes and collateral");
	if (make_hierarchy()) {
		test_hierarchy_verifies();
		test_statuses();
		test_tcb_info_cases();
		test_qe_identity_cases();
		test_crls();
		test_two_roots();
		test_pck_cache();
	}
	dcap_collateral_free(&base);
	dcap_trust_destroy(dev_trust);
	dcapgen_destroy(hierarchy);
	free(dev_root_pem);
	free(dev_root_key_pem);
	struct blob *blobs[] = {&v4, &v5_td10, &v5_td15, &v4_debug, &pck_crl_revoking_pck,
	                        &root_crl_revoking_ca, &root_crl_revoking_signing};
	for (size_t i = 0; i < sizeof(blobs) / sizeof(blobs[0]); i++)
		free(blobs[i]->data);
	return test_finish();
}
