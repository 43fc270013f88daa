/*
 * ee-dcap-fixture - writes the synthetic DCAP fixture of the fuzz targets:
 * DIR/dcap_fixture.h (a pinned test root, collateral signed under it, the
 * verification time) and the seeds that go with it in DIR/corpus/quote and
 * DIR/corpus/dcap_collateral, all made by tests/support/dcapgen.c from one
 * fixed key seed.  TEST ONLY.
 *
 *   ee-dcap-fixture DIR        DIR is tests/fuzz; `make dcap-fixture` runs it
 *
 * The fuzz targets compile the header in, so a seed mutated by libFuzzer is
 * checked against a fixed root and fixed collateral, and the seeds (quotes
 * whose PCK chain ends at that root, collateral signed under it) reach the
 * deep steps of verification.  Keys, serials, names, dates and texts are the
 * same on every run; ECDSA signatures are not (OpenSSL 3.0 draws a random
 * nonce), so a run rewrites the header and every signed seed: commit them
 * together.  Only the files named here are written; inputs added to the
 * corpus by hand (crashes found earlier) stay.
 *
 * Files rather than a fixture made in LLVMFuzzerInitialize because the
 * seeds are files anyway, and their PCK chains must end at the pinned root
 * byte for byte: a root made again at run time would carry another
 * signature.  tests/unit/test_dcap_fixture.c checks that the committed
 * header and seeds fit together and that each seed still reaches the
 * verdict it is made for.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "dcapgen.h"
#include "util.h"

#define FIXTURE_SEED "easyenclave tests/fuzz/dcap_fixture.h"
#define FIXTURE_TIME 1767225600 /* 2026-01-01T00:00:00Z */
#define DAY (24 * 60 * 60)
#define PATH_MAX_LEN 4096
#define HEADER_LINE_MAX 72 /* characters of a C string literal line, escapes included */

/* Byte offsets in the v4 seed (DCAP.md), with the 32 bytes of QE auth data of the defaults. */
#define SIG_DATA_LEN_AT (DCAPGEN_HEADER_LEN + DCAPGEN_BODY_V4_LEN)
#define OUTER_CERT_AT (SIG_DATA_LEN_AT + 4 + DCAPGEN_SIG_LEN + DCAPGEN_PUBKEY_LEN)
#define AUTH_DATA_AT (OUTER_CERT_AT + 6 + DCAPGEN_QE_REPORT_LEN + DCAPGEN_SIG_LEN)
#define INNER_CERT_AT (AUTH_DATA_AT + 2 + 32)
#define V5_DESCRIPTOR_AT DCAPGEN_HEADER_LEN

static const char *out_dir;
static size_t files_written;

/* ---- files ------------------------------------------------------------- */

static int write_file(const char *sub, const char *name, const void *data, size_t len)
{
	char path[PATH_MAX_LEN];
	if (snprintf(path, sizeof(path), "%s/%s%s%s", out_dir, sub, *sub ? "/" : "", name) >=
	    (int)sizeof(path)) {
		fprintf(stderr, "ee-dcap-fixture: %s/%s: path too long\n", sub, name);
		return -1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "ee-dcap-fixture: %s: %s\n", path, strerror(errno));
		return -1;
	}
	const unsigned char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "ee-dcap-fixture: %s: %s\n", path, strerror(errno));
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) < 0) {
		fprintf(stderr, "ee-dcap-fixture: %s: %s\n", path, strerror(errno));
		return -1;
	}
	files_written++;
	return 0;
}

static int make_dir(const char *sub)
{
	char path[PATH_MAX_LEN];
	if (snprintf(path, sizeof(path), "%s/%s", out_dir, sub) >= (int)sizeof(path) ||
	    (mkdir(path, 0755) < 0 && errno != EEXIST)) {
		fprintf(stderr, "ee-dcap-fixture: cannot make %s/%s\n", out_dir, sub);
		return -1;
	}
	return 0;
}

static int write_text(const char *sub, const char *name, const char *text)
{
	return write_file(sub, name, text, strlen(text));
}

/* ---- the hierarchy ----------------------------------------------------- */

/* The fixture and every variant: dcapgen's defaults at FIXTURE_TIME from FIXTURE_SEED. */
static void fixture_options(struct dcapgen_options *o)
{
	dcapgen_defaults_at(o, FIXTURE_TIME);
	o->key_seed = FIXTURE_SEED;
}

/*
 * The seeds' quote: dcapgen's, naming module TDX_01 (TEE_TCB_SVN[1] = 1),
 * so that verification goes through the TCB info's module identities.
 */
static void fixture_quote_options(struct dcapgen_quote_options *q)
{
	dcapgen_quote_defaults(q);
	q->tee_tcb_svn[1] = 1;
	q->tee_tcb_svn2[1] = 1;
}

static const unsigned char *report_data(void)
{
	static unsigned char rd[DCAPGEN_REPORT_DATA_LEN];
	for (int i = 0; i < DCAPGEN_REPORT_DATA_LEN; i++)
		rd[i] = (unsigned char)(0xc0 ^ i);
	return rd;
}

struct fixture {
	struct dcapgen *g;
	char *root_pem, *root_key_pem, *collateral;
};

/*
 * A variant's options: the fixture's under the fixture's own root, so its
 * quotes chain to the pinned root and its collateral prepares under it;
 * the other keys are the fixture's too (same seed).
 */
static void variant_options(const struct fixture *f, struct dcapgen_options *o)
{
	fixture_options(o);
	o->root_key_pem = f->root_key_pem;
	o->root_cert_pem = f->root_pem;
}

/* The variant whose options change changes (NULL: none). */
static struct dcapgen *variant(const struct fixture *f, void (*change)(struct dcapgen_options *))
{
	struct dcapgen_options o;
	variant_options(f, &o);
	if (change)
		change(&o);
	struct dcapgen *g = NULL;
	return dcapgen_create(&o, &g) == 0 ? g : NULL;
}

/* ---- quote seeds ------------------------------------------------------- */

static void q_v5_td10(struct dcapgen_quote_options *q)
{
	q->version = 5;
	q->body_type = 2;
}
static void q_v5_td15(struct dcapgen_quote_options *q)
{
	q->version = 5;
	q->body_type = 3;
}
static void q_debug(struct dcapgen_quote_options *q)
{
	q->td_attributes[0] |= 1;
}
static void q_padded(struct dcapgen_quote_options *q)
{
	q->trailing_zeros = 70; /* as Intel's sample */
}
static void q_module_00(struct dcapgen_quote_options *q)
{
	q->tee_tcb_svn[1] = 0;
}
static void q_module_02(struct dcapgen_quote_options *q)
{
	q->tee_tcb_svn[1] = 2;
}
static void q_module_outdated(struct dcapgen_quote_options *q)
{
	q->tee_tcb_svn[0] = 3;
}
static void q_module_unknown(struct dcapgen_quote_options *q)
{
	q->tee_tcb_svn[0] = 1;
}
static void q_mrsignerseam(struct dcapgen_quote_options *q)
{
	q->mrsignerseam[0] ^= 1;
}
static void q_tdx_svn_low(struct dcapgen_quote_options *q)
{
	q->tee_tcb_svn[2] = 1;
}
static void q_bad_quote_signature(struct dcapgen_quote_options *q)
{
	q->bad_quote_signature = true;
}
static void q_bad_qe_report_signature(struct dcapgen_quote_options *q)
{
	q->bad_qe_report_signature = true;
}
static void q_qe_report_unbound(struct dcapgen_quote_options *q)
{
	q->qe_report_data_unbound = true;
}
static void q_qe_report_tail(struct dcapgen_quote_options *q)
{
	q->qe_report_data_tail_nonzero = true;
}
static void q_chain_without_root(struct dcapgen_quote_options *q)
{
	q->chain_without_root = true;
}
static void q_pem_without_nul(struct dcapgen_quote_options *q)
{
	q->pem_without_nul = true;
}
static void q_no_auth_data(struct dcapgen_quote_options *q)
{
	q->qe_auth_data_len = 0;
}

static void h_platform_outdated(struct dcapgen_options *o)
{
	o->platform.pcesvn = 10;
}
static void h_platform_unknown(struct dcapgen_options *o)
{
	o->platform.pcesvn = 4;
}
static void h_fmspc_other(struct dcapgen_options *o)
{
	o->platform.fmspc[5] ^= 1;
}
static void h_pce_id_other(struct dcapgen_options *o)
{
	o->platform.pce_id[1] ^= 1;
}
static void h_processor_ca(struct dcapgen_options *o)
{
	o->platform.processor_ca = true;
}
static void h_qe_outdated(struct dcapgen_options *o)
{
	o->qe_report.isvsvn = 3;
}
static void h_qe_unknown(struct dcapgen_options *o)
{
	o->qe_report.isvsvn = 1;
}
static void h_qe_mismatch(struct dcapgen_options *o)
{
	o->qe_report.mrsigner[0] ^= 1;
}
static void h_leaf_expired(struct dcapgen_options *o)
{
	o->pck_leaf.not_after = o->now - DAY;
}
static void h_leaf_wrong_signer(struct dcapgen_options *o)
{
	o->pck_leaf.wrong_signer = true;
}
static void h_ca_wrong_signer(struct dcapgen_options *o)
{
	o->pck_ca.wrong_signer = true;
}
static void h_rogue_root(struct dcapgen_options *o)
{
	o->pck_chain_rogue_root = true;
}

/*
 * Quotes with sound structure, each made to stop at (or pass) one step of
 * verification against the fixture; tests/unit/test_dcap_fixture.c checks
 * that each one still does.  hierarchy NULL: the fixture's own.
 */
static const struct {
	const char *name;
	void (*hierarchy)(struct dcapgen_options *o);
	void (*quote)(struct dcapgen_quote_options *q);
} quote_seeds[] = {
	{ "synthetic-v4", NULL, NULL },
	{ "synthetic-v5-td10", NULL, q_v5_td10 },
	{ "synthetic-v5-td15", NULL, q_v5_td15 },
	{ "synthetic-v4-debug", NULL, q_debug },
	{ "synthetic-v4-padded", NULL, q_padded },
	{ "synthetic-v4-no-auth-data", NULL, q_no_auth_data },
	{ "synthetic-v4-module-00", NULL, q_module_00 },
	{ "synthetic-v4-module-02", NULL, q_module_02 },
	{ "synthetic-v4-module-outdated", NULL, q_module_outdated },
	{ "synthetic-v4-module-unknown", NULL, q_module_unknown },
	{ "synthetic-v4-mrsignerseam", NULL, q_mrsignerseam },
	{ "synthetic-v4-tdx-svn-low", NULL, q_tdx_svn_low },
	{ "synthetic-v4-bad-quote-signature", NULL, q_bad_quote_signature },
	{ "synthetic-v4-bad-qe-report-signature", NULL, q_bad_qe_report_signature },
	{ "synthetic-v4-qe-report-unbound", NULL, q_qe_report_unbound },
	{ "synthetic-v4-qe-report-tail", NULL, q_qe_report_tail },
	{ "synthetic-v4-chain-without-root", NULL, q_chain_without_root },
	{ "synthetic-v4-pem-without-nul", NULL, q_pem_without_nul },
	{ "synthetic-v4-platform-outdated", h_platform_outdated, NULL },
	{ "synthetic-v4-platform-unknown", h_platform_unknown, NULL },
	{ "synthetic-v4-fmspc-other", h_fmspc_other, NULL },
	{ "synthetic-v4-pce-id-other", h_pce_id_other, NULL },
	{ "synthetic-v4-processor-ca", h_processor_ca, NULL },
	{ "synthetic-v4-qe-outdated", h_qe_outdated, NULL },
	{ "synthetic-v4-qe-unknown", h_qe_unknown, NULL },
	{ "synthetic-v4-qe-mismatch", h_qe_mismatch, NULL },
	{ "synthetic-v4-leaf-expired", h_leaf_expired, NULL },
	{ "synthetic-v4-leaf-wrong-signer", h_leaf_wrong_signer, NULL },
	{ "synthetic-v4-ca-wrong-signer", h_ca_wrong_signer, NULL },
	{ "synthetic-v4-rogue-root", h_rogue_root, NULL },
};

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* A copy of base with a 16-bit (width 2) or 32-bit (width 4) field set, written as name. */
static int write_edit(const char *name, const unsigned char *base, size_t len, size_t at,
                      int width, uint32_t value)
{
	unsigned char *q = malloc(len);
	if (!q || at + (size_t)width > len) {
		free(q);
		fprintf(stderr, "ee-dcap-fixture: cannot make %s\n", name);
		return -1;
	}
	memcpy(q, base, len);
	if (width == 2)
		put_le16(q + at, (uint16_t)value);
	else
		put_le32(q + at, value);
	int rc = write_file("corpus/quote", name, q, len);
	free(q);
	return rc;
}

/*
 * The quotes whose structure is broken at one place each (the parser's
 * refusals), from the v4 and v5 (TDX 1.5) seeds, and three small quotes
 * built by hand whose PEM text is no certificate.
 */
static int write_broken_quotes(const unsigned char *v4, size_t v4_len, const unsigned char *v5,
                               size_t v5_len)
{
	uint32_t sig_len = get_le32(v4 + SIG_DATA_LEN_AT);
	uint32_t outer_len = get_le32(v4 + OUTER_CERT_AT + 2);
	uint32_t inner_len = get_le32(v4 + INNER_CERT_AT + 2);
	unsigned char *trailing = malloc(v4_len + 1);
	int rc = trailing ? 0 : -1;
	if (trailing) {
		memcpy(trailing, v4, v4_len);
		trailing[v4_len] = 0x01;
		rc = write_file("corpus/quote", "synthetic-v4-trailing", trailing, v4_len + 1);
		free(trailing);
	}
	if (rc == 0)
		rc = write_edit("siglen-past-end", v4, v4_len, SIG_DATA_LEN_AT, 4, sig_len + 1);
	if (rc == 0)
		rc = write_edit("siglen-short", v4, v4_len, SIG_DATA_LEN_AT, 4, sig_len - 1);
	if (rc == 0)
		rc = write_edit("outer-type-5", v4, v4_len, OUTER_CERT_AT, 2, 5);
	if (rc == 0)
		rc = write_edit("outer-len-past-end", v4, v4_len, OUTER_CERT_AT + 2, 4, outer_len + 1);
	if (rc == 0)
		rc = write_edit("auth-len-past-end", v4, v4_len, AUTH_DATA_AT, 2, 0xffff);
	if (rc == 0)
		rc = write_edit("inner-type-6", v4, v4_len, INNER_CERT_AT, 2, 6);
	if (rc == 0)
		rc = write_edit("inner-len-short", v4, v4_len, INNER_CERT_AT + 2, 4, inner_len - 1);
	if (rc == 0)
		rc = write_edit("version-6", v4, v4_len, 0, 2, 6);
	if (rc == 0)
		rc = write_edit("keytype-3", v4, v4_len, 2, 2, 3);
	if (rc == 0)
		rc = write_edit("v5-bodytype-4", v5, v5_len, V5_DESCRIPTOR_AT, 2, 4);
	if (rc == 0)
		rc = write_edit("v5-bodysize-584", v5, v5_len, V5_DESCRIPTOR_AT + 2, 4,
		                DCAPGEN_BODY_V4_LEN);
	/* Version 3 with TEE type 0: an SGX quote. */
	unsigned char *sgx = malloc(v4_len);
	if (rc == 0 && sgx) {
		memcpy(sgx, v4, v4_len);
		put_le16(sgx, 3);
		put_le32(sgx + 4, DCAPGEN_TEE_SGX);
		rc = write_file("corpus/quote", "version-3-sgx", sgx, v4_len);
	} else if (rc == 0) {
		rc = -1;
	}
	free(sgx);
	if (rc == 0)
		rc = write_file("corpus/quote", "header-only", v4, DCAPGEN_HEADER_LEN);
	if (rc == 0)
		rc = write_file("corpus/quote", "truncated-in-body", v4, 300);
	if (rc == 0)
		rc = write_file("corpus/quote", "truncated-in-pem", v4, 2000);
	if (rc == 0)
		rc = write_file("corpus/quote", "empty", "", 0);

	/* Small quotes: zero bodies and signatures, a PEM block of three bytes. */
	static const char pem[] = "-----BEGIN CERTIFICATE-----\nTUlJ\n-----END CERTIFICATE-----\n";
	const size_t pem_len = sizeof(pem); /* with its NUL, as Intel's QE writes it */
	const size_t outer_len_small = DCAPGEN_QE_REPORT_LEN + DCAPGEN_SIG_LEN + 2 + 6 + pem_len;
	const size_t sig_len_small = DCAPGEN_SIG_LEN + DCAPGEN_PUBKEY_LEN + 6 + outer_len_small;
	static const struct {
		const char *name;
		uint16_t version, body_type;
		size_t body_len;
	} small[] = {
		{ "small-v4", 4, 0, DCAPGEN_BODY_V4_LEN },
		{ "small-v5-td10", 5, 2, DCAPGEN_BODY_V4_LEN },
		{ "small-v5-td15", 5, 3, DCAPGEN_BODY_V5_15_LEN },
	};
	for (size_t i = 0; rc == 0 && i < sizeof(small) / sizeof(small[0]); i++) {
		size_t at = DCAPGEN_HEADER_LEN;
		size_t len = at + (small[i].version == 5 ? 6 : 0) + small[i].body_len + 4 + sig_len_small;
		unsigned char *q = calloc(1, len);
		if (!q) {
			rc = -1;
			break;
		}
		put_le16(q, small[i].version);
		put_le16(q + 2, DCAPGEN_KEY_ECDSA_P256);
		put_le32(q + 4, DCAPGEN_TEE_TDX);
		if (small[i].version == 5) {
			put_le16(q + at, small[i].body_type);
			put_le32(q + at + 2, (uint32_t)small[i].body_len);
			at += 6;
		}
		at += small[i].body_len;
		put_le32(q + at, (uint32_t)sig_len_small);
		at += 4 + DCAPGEN_SIG_LEN + DCAPGEN_PUBKEY_LEN;
		put_le16(q + at, DCAPGEN_CERT_DATA_QE_REPORT);
		put_le32(q + at + 2, (uint32_t)outer_len_small);
		at += 6 + DCAPGEN_QE_REPORT_LEN + DCAPGEN_SIG_LEN + 2; /* auth data length 0 */
		put_le16(q + at, DCAPGEN_CERT_DATA_PCK_CHAIN);
		put_le32(q + at + 2, (uint32_t)pem_len);
		memcpy(q + at + 6, pem, pem_len);
		rc = write_file("corpus/quote", small[i].name, q, len);
		free(q);
	}
	if (rc < 0)
		fprintf(stderr, "ee-dcap-fixture: cannot write the broken quotes\n");
	return rc;
}

static int write_quote_seeds(const struct fixture *f)
{
	unsigned char *v4 = NULL, *v5 = NULL;
	size_t v4_len = 0, v5_len = 0;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < sizeof(quote_seeds) / sizeof(quote_seeds[0]); i++) {
		struct dcapgen *g = quote_seeds[i].hierarchy ? variant(f, quote_seeds[i].hierarchy) : f->g;
		struct dcapgen_quote_options q;
		fixture_quote_options(&q);
		if (quote_seeds[i].quote)
			quote_seeds[i].quote(&q);
		unsigned char *quote = NULL;
		size_t len = 0;
		rc = g ? dcapgen_quote(g, report_data(), &q, &quote, &len) : -1;
		if (rc == 0)
			rc = write_file("corpus/quote", quote_seeds[i].name, quote, len);
		if (g != f->g)
			dcapgen_destroy(g);
		if (rc == 0 && strcmp(quote_seeds[i].name, "synthetic-v4") == 0) {
			v4 = quote;
			v4_len = len;
		} else if (rc == 0 && strcmp(quote_seeds[i].name, "synthetic-v5-td15") == 0) {
			v5 = quote;
			v5_len = len;
		} else {
			free(quote);
		}
	}
	if (rc == 0)
		rc = v4 && v5 ? write_broken_quotes(v4, v4_len, v5, v5_len) : -1;
	free(v4);
	free(v5);
	return rc;
}

/* ---- collateral seeds -------------------------------------------------- */

static const char *const platform_statuses[] = {
	DCAPGEN_SW_HARDENING_NEEDED, DCAPGEN_CONFIGURATION_NEEDED,
	DCAPGEN_CONFIGURATION_AND_SW_HARDENING_NEEDED, DCAPGEN_OUT_OF_DATE_CONFIGURATION_NEEDED,
	DCAPGEN_REVOKED,
};
static const char *const platform_advisories[] = {
	"INTEL-SA-00000", "INTEL-SA-00001", "INTEL-SA-00002", "INTEL-SA-00003", "INTEL-SA-00004",
};

static void h_no_identities(struct dcapgen_options *o)
{
	o->tcb_info.module_identity_count = 0;
}
static void h_tcb_info_version_2(struct dcapgen_options *o)
{
	o->tcb_info.version = 2;
}
static void h_qe_levels(struct dcapgen_options *o)
{
	struct dcapgen_isv_level *l = &o->qe_identity.levels[o->qe_identity.level_count++];
	memset(l, 0, sizeof(*l));
	l->isvsvn = 0;
	l->tcb_status = DCAPGEN_REVOKED;
	l->tcb_date = o->now - 5 * 365 * DAY;
}
static void h_platform_revoked(struct dcapgen_options *o)
{
	o->tcb_info.levels[0].tcb_status = DCAPGEN_REVOKED;
}
static void h_bad_tcb_info_signature(struct dcapgen_options *o)
{
	o->tcb_info.bad_signature = true;
}
static void h_bad_qe_identity_signature(struct dcapgen_options *o)
{
	o->qe_identity.bad_signature = true;
}
static void h_tcb_signer_revoked(struct dcapgen_options *o)
{
	o->tcb_signer.revoked = true;
}
static void h_tcb_rogue_root(struct dcapgen_options *o)
{
	o->tcb_chain_rogue_root = true;
}
static void h_root_crl_wrong_signer(struct dcapgen_options *o)
{
	o->root_crl.wrong_signer = true;
}
static void h_pck_crl_wrong_signer(struct dcapgen_options *o)
{
	o->pck_crl.wrong_signer = true;
}

/*
 * Whole collateral JSON of variants under the fixture's root, each made to
 * prepare or to fail one check of dcap_collateral_prepare (checked by
 * tests/unit/test_dcap_fixture.c too).
 */
static const struct {
	const char *name;
	void (*hierarchy)(struct dcapgen_options *o);
} collateral_seeds[] = {
	{ "synthetic-collateral", NULL },
	{ "collateral-platform-revoked", h_platform_revoked },
	{ "collateral-no-identities", h_no_identities },
	{ "collateral-qe-levels", h_qe_levels },
	{ "collateral-processor-ca", h_processor_ca },
	{ "collateral-bad-tcb-info-signature", h_bad_tcb_info_signature },
	{ "collateral-bad-qe-identity-signature", h_bad_qe_identity_signature },
	{ "collateral-tcb-signer-revoked", h_tcb_signer_revoked },
	{ "collateral-tcb-rogue-root", h_tcb_rogue_root },
	{ "collateral-root-crl-wrong-signer", h_root_crl_wrong_signer },
	{ "collateral-pck-crl-wrong-signer", h_pck_crl_wrong_signer },
};

/* The TCB info or QE identity text of g (then destroyed), for the parsers of lib/dcap_tcb.c. */
static int write_text_of(struct dcapgen *g, const char *name, bool qe_identity)
{
	int rc = g ? write_text("corpus/dcap_collateral", name,
	                        qe_identity ? dcapgen_qe_identity_text(g) : dcapgen_tcb_info_text(g))
	           : -1;
	dcapgen_destroy(g);
	return rc;
}

static int write_variant_text(const struct fixture *f, const char *name,
                              void (*change)(struct dcapgen_options *), bool qe_identity)
{
	return write_text_of(variant(f, change), name, qe_identity);
}

/*
 * The fixture's collateral with one field replaced by value, or removed
 * when value is NULL; value is the collateral's (freed with it) in any case.
 */
static int write_collateral_edit(const struct fixture *f, const char *name, const char *key,
                                 struct json_object *value)
{
	struct json_object *c = json_tokener_parse(f->collateral);
	int rc = -1;
	if (!c || !json_object_is_type(c, json_type_object)) {
		json_object_put(value);
	} else if (!value) {
		json_object_object_del(c, key);
		rc = 0;
	} else {
		rc = json_object_object_add(c, key, value) == 0 ? 0 : -1;
	}
	if (rc == 0)
		rc = write_text("corpus/dcap_collateral", name,
		                json_object_to_json_string_ext(c, JSON_C_TO_STRING_PRETTY |
		                                                      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(c);
	return rc;
}

/* The fixture's TCB info with 15 SGX components in its first level. */
static int write_tcb_info_15_components(const struct fixture *f)
{
	struct json_object *t = json_tokener_parse(dcapgen_tcb_info_text(f->g));
	struct json_object *levels, *tcb, *components;
	int rc = -1;
	if (t && json_object_object_get_ex(t, "tcbLevels", &levels) &&
	    json_object_object_get_ex(json_object_array_get_idx(levels, 0), "tcb", &tcb) &&
	    json_object_object_get_ex(tcb, "sgxtcbcomponents", &components) &&
	    json_object_array_del_idx(components, 15, 1) == 0)
		rc = write_text("corpus/dcap_collateral", "tcb-info-15-components",
		                json_object_to_json_string_ext(t, JSON_C_TO_STRING_PLAIN |
		                                                      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(t);
	return rc;
}

static int write_collateral_seeds(const struct fixture *f)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < sizeof(collateral_seeds) / sizeof(collateral_seeds[0]);
	     i++) {
		struct dcapgen *g = collateral_seeds[i].hierarchy
		                            ? variant(f, collateral_seeds[i].hierarchy)
		                            : f->g;
		char *json = NULL;
		rc = g ? dcapgen_collateral_json(g, &json) : -1;
		if (rc == 0)
			rc = write_text("corpus/dcap_collateral", collateral_seeds[i].name, json);
		free(json);
		if (g != f->g)
			dcapgen_destroy(g);
	}
	if (rc == 0)
		rc = write_text("corpus/dcap_collateral", "synthetic-tcb-info",
		                dcapgen_tcb_info_text(f->g));
	if (rc == 0)
		rc = write_text("corpus/dcap_collateral", "synthetic-qe-identity",
		                dcapgen_qe_identity_text(f->g));
	for (size_t i = 0; rc == 0 && i < sizeof(platform_statuses) / sizeof(platform_statuses[0]);
	     i++) {
		char name[96];
		snprintf(name, sizeof(name), "tcb-info-%s", platform_statuses[i]);
		struct dcapgen_options o;
		variant_options(f, &o);
		o.tcb_info.levels[0].tcb_status = platform_statuses[i];
		o.tcb_info.levels[0].advisory_ids[0] = platform_advisories[i];
		struct dcapgen *g = NULL;
		rc = dcapgen_create(&o, &g) == 0 ? write_text_of(g, name, false) : -1;
	}
	if (rc == 0)
		rc = write_variant_text(f, "tcb-info-no-identities", h_no_identities, false);
	if (rc == 0)
		rc = write_variant_text(f, "tcb-info-version-2", h_tcb_info_version_2, false);
	if (rc == 0)
		rc = write_variant_text(f, "qe-identity-levels", h_qe_levels, true);
	if (rc == 0)
		rc = write_tcb_info_15_components(f);

	/* Collateral JSON broken in one field each. */
	struct json_object *c = json_tokener_parse(f->collateral), *v;
	const char *sig = NULL, *crl = NULL;
	if (c && json_object_object_get_ex(c, "tcb_info_signature", &v))
		sig = json_object_get_string(v);
	if (c && json_object_object_get_ex(c, "root_ca_crl", &v))
		crl = json_object_get_string(v);
	if (rc == 0 && (!sig || strlen(sig) < 2 || !crl || strlen(crl) < 2))
		rc = -1;
	if (rc == 0)
		rc = write_collateral_edit(f, "collateral-missing-pck-crl", "pck_crl", NULL);
	if (rc == 0) {
		struct json_object *short_sig = json_object_new_string_len(sig, (int)strlen(sig) - 2);
		rc = short_sig ? write_collateral_edit(f, "collateral-short-signature",
		                                       "tcb_info_signature", short_sig)
		               : -1;
	}
	if (rc == 0) {
		char *bad = strdup(crl);
		struct json_object *bad_hex = NULL;
		if (bad) {
			bad[0] = bad[1] = 'z';
			bad_hex = json_object_new_string(bad);
		}
		free(bad);
		rc = bad_hex ? write_collateral_edit(f, "collateral-bad-hex", "root_ca_crl", bad_hex) : -1;
	}
	json_object_put(c);
	if (rc == 0)
		rc = write_text("corpus/dcap_collateral", "empty-object", "{}");
	if (rc < 0)
		fprintf(stderr, "ee-dcap-fixture: cannot write the collateral seeds\n");
	return rc;
}

/* ---- the header -------------------------------------------------------- */

/* static const char name[] = "..." "...";  split at newlines and every HEADER_LINE_MAX. */
static int append_c_string(struct buf *h, const char *name, const char *text)
{
	buf_printf(h, "static const char %s[] =\n\t\"", name);
	size_t line = 0;
	for (const char *p = text; *p; p++) {
		char esc[8];
		if (*p == '\\' || *p == '"')
			snprintf(esc, sizeof(esc), "\\%c", *p);
		else if (*p == '\n')
			snprintf(esc, sizeof(esc), "\\n");
		else if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			snprintf(esc, sizeof(esc), "\\%03o", (unsigned char)*p);
		else
			snprintf(esc, sizeof(esc), "%c", *p);
		if (line > 0 && line + strlen(esc) > HEADER_LINE_MAX) {
			buf_puts(h, "\"\n\t\"");
			line = 0;
		}
		buf_puts(h, esc);
		line += strlen(esc);
		if (*p == '\n' && p[1]) {
			buf_puts(h, "\"\n\t\"");
			line = 0;
		}
	}
	return buf_puts(h, "\";\n");
}

static int write_header(const struct fixture *f)
{
	struct buf h;
	buf_init(&h);
	buf_puts(&h,
	         "/*\n"
	         " * dcap_fixture.h - GENERATED by tests/tools/ee-dcap-fixture.c: do not edit.\n"
	         " * Regenerate it, with the seeds of tests/fuzz/corpus/quote and\n"
	         " * tests/fuzz/corpus/dcap_collateral, by running from the repository root\n"
	         " *\n"
	         " *     make dcap-fixture\n"
	         " *\n"
	         " * (it builds build/tools/ee-dcap-fixture and runs\n"
	         " * `build/tools/ee-dcap-fixture tests/fuzz`), then commit the header and\n"
	         " * the seeds together: the ECDSA signatures change on every run.\n"
	         " *\n"
	         " * A synthetic DCAP hierarchy for the fuzz targets (fuzz_quote,\n"
	         " * fuzz_dcap_collateral): a test root CA (not Intel's) and the collateral\n"
	         " * signed under it, made by tests/support/dcapgen.c with its defaults at\n"
	         " * DCAP_FIXTURE_TIME, every key derived from the key seed\n"
	         " * \"" FIXTURE_SEED "\" (dcapgen.h, key_seed).\n"
	         " * The seeds are quotes whose PCK chain ends at this root and collateral\n"
	         " * signed under it, so that mutations reach every step of verification.\n"
	         " * Nothing here comes from shared/testdata.  tests/unit/test_dcap_fixture.c\n"
	         " * checks that the header and the seeds still fit together.\n"
	         " */\n"
	         "#ifndef EE_DCAP_FIXTURE_H\n"
	         "#define EE_DCAP_FIXTURE_H\n"
	         "\n"
	         "/* 2026-01-01T00:00:00Z: the verification time, inside every window of the fixture. */\n");
	buf_printf(&h, "#define DCAP_FIXTURE_TIME %d\n\n", FIXTURE_TIME);
	append_c_string(&h, "dcap_fixture_root_pem", f->root_pem);
	buf_puts(&h, "\n");
	append_c_string(&h, "dcap_fixture_collateral_json", f->collateral);
	buf_puts(&h, "\n#endif\n");
	int rc = h.failed ? -1 : write_file("", "dcap_fixture.h", h.data, h.len);
	buf_free(&h);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fputs("usage: ee-dcap-fixture DIR   (DIR is tests/fuzz)\n", stderr);
		return 2;
	}
	out_dir = argv[1];
	struct fixture f = { 0 };
	struct dcapgen_options o;
	fixture_options(&o);
	int rc = 1;
	if (make_dir("corpus") < 0 || make_dir("corpus/quote") < 0 ||
	    make_dir("corpus/dcap_collateral") < 0 || dcapgen_create(&o, &f.g) < 0 ||
	    dcapgen_root_pem(f.g, &f.root_pem) < 0 || dcapgen_root_key_pem(f.g, &f.root_key_pem) < 0 ||
	    dcapgen_collateral_json(f.g, &f.collateral) < 0)
		goto out;
	if (write_header(&f) < 0 || write_quote_seeds(&f) < 0 || write_collateral_seeds(&f) < 0)
		goto out;
	printf("%s/dcap_fixture.h and seeds: %zu files written\n", out_dir, files_written);
	rc = 0;
out:
	free(f.collateral);
	free(f.root_key_pem);
	free(f.root_pem);
	dcapgen_destroy(f.g);
	return rc;
}
