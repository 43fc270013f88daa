/*
 * test_verifier.c - the whole attestation decision (lib/verifier.c), one
 * case per reason of docs/ATTESTATION.md's table that the verifier gives.
 *
 * A development network without the network: a dcapgen hierarchy made
 * here, valid now, is the development root on sandbox-1 with its
 * collateral, and allowlists are files in a directory made here.  Quotes
 * are signed for each case with exactly the fault it needs (a nonce
 * replayed, a register other than the one claimed, a debug TD, a platform
 * at an OutOfDate TCB level, ...).
 *
 * Then Intel's path with Intel's real samples (../shared/testdata/dcap,
 * read at run time; missing files fail): the collateral from a fake PCCS
 * (tests/support/fakehttp.c, the PCCS v4 answers split out of
 * tdx_quote_collateral.json as test_pccs.c does) and the allowlist from a
 * fake GitHub, verified at 1751624655.  The real quote's REPORTDATA is
 * fixed, so it cannot bind our nonce: it fails with report_data_mismatch,
 * and DCAP on the same quote and collateral says UpToDate.  A dcapgen
 * quote whose PEM chain ends with Intel's real root certificate (the
 * fingerprint is what the verifier pins; the signatures are what DCAP
 * checks) is refused for its forged CA before anything is fetched.  To get
 * past the signatures on Intel's path, a dcapgen hierarchy stands for
 * Intel's (verifier_options.test_intel_root_sha256) with its collateral
 * from the fake PCCS: quotes with a broken signature fetch nothing, sound
 * ones show the allowlist and collateral fetches, their failures, and the
 * allowlist's memory of failed look-ups.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/pem.h>

#include "attest.h"
#include "base64.h"
#include "check.h"
#include "dcap.h"
#include "dcapgen.h"
#include "fakehttp.h"
#include "jsonutil.h"
#include "pccs.h"
#include "stack.h"
#include "tdx_quote.h"
#include "testagent.h"
#include "timeutil.h"
#include "util.h"
#include "verifier.h"

#define TESTDATA_DIR "../shared/testdata/dcap"
#define AT_SAMPLE 1751624655 /* inside tdx_quote_collateral.json's windows */
#define DAY (24 * 60 * 60)
#define NONCE "00112233445566778899aabbccddeeff"
#define OLD_NONCE "ffeeddccbbaa99887766554433221100"
#define REPO "org/app"
#define TAG "v1.0.0"
#define SAMPLE_FMSPC "B0C06F000000"
#define PATH_TCB "/tdx/certification/v4/tcb?fmspc=" SAMPLE_FMSPC
#define PATH_QE "/tdx/certification/v4/qe/identity"
#define PATH_PCK "/sgx/certification/v4/pckcrl?ca=platform"
#define PATH_ROOT "/sgx/certification/v4/rootcacrl"

struct blob {
	unsigned char *data;
	size_t len;
};

static time_t now;
static char tmp_dir[400], allow_dir[480];
static struct dcapgen *dev; /* the development root's hierarchy, at its defaults */

/* ---- small helpers ---- */

static char *strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *out = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (out) {
		va_start(ap, fmt);
		vsnprintf(out, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	return out;
}

static bool read_file(const char *path, struct blob *out)
{
	out->data = NULL;
	out->len = 0;
	FILE *f = fopen(path, "rb");
	if (!f) {
		test_fail(__FILE__, __LINE__, "cannot open %s: %s (the DCAP testdata must be beside "
		          "the checkout)", path, strerror(errno));
		return false;
	}
	struct buf b;
	buf_init(&b);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	if (b.failed || !b.data) {
		buf_free(&b);
		test_fail(__FILE__, __LINE__, "cannot read %s", path);
		return false;
	}
	out->data = (unsigned char *)b.data;
	out->len = b.len;
	return true;
}

static char *pem_of_cert(X509 *x)
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

static void put_le32(unsigned char *p, size_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* ---- quotes ---- */

/* The REPORTDATA for these measurements and this nonce; zeros for measurements it cannot digest. */
static void expected_report_data(struct json_object *measurements, const char *nonce,
                                 unsigned char out[ATTEST_REPORT_DATA_LEN])
{
	struct ee_error err;
	if (attest_expected_report_data(measurements, nonce, out, &err) != 0)
		memset(out, 0, ATTEST_REPORT_DATA_LEN);
}

/*
 * A v4 quote of g whose PEM chain is replaced by chain_pem (a NUL follows,
 * as Intel's QE writes it): the signatures do not cover the certification
 * data, so only its three sizes change.
 */
static bool quote_with_chain(struct dcapgen *g, const unsigned char rd[64],
                             const struct dcapgen_quote_options *base, const char *chain_pem,
                             struct blob *out)
{
	struct dcapgen_quote_options q = *base;
	q.version = 4;
	q.chain_without_root = true;
	q.pem_without_nul = true;
	q.trailing_zeros = 0;
	unsigned char *raw = NULL;
	size_t len = 0;
	out->data = NULL;
	if (dcapgen_quote(g, rd, &q, &raw, &len) != 0)
		return false;
	const size_t sig_len_at = DCAPGEN_HEADER_LEN + DCAPGEN_BODY_V4_LEN;
	const size_t outer_at = sig_len_at + 4 + DCAPGEN_SIG_LEN + DCAPGEN_PUBKEY_LEN;
	const size_t auth_at = outer_at + 6 + DCAPGEN_QE_REPORT_LEN + DCAPGEN_SIG_LEN;
	size_t auth_len = (size_t)raw[auth_at] | (size_t)raw[auth_at + 1] << 8;
	size_t chain_at = auth_at + 2 + auth_len + 6;
	size_t chain_len = strlen(chain_pem) + 1;
	out->len = chain_at + chain_len;
	out->data = malloc(out->len);
	if (!out->data || chain_at > len) {
		free(raw);
		return false;
	}
	memcpy(out->data, raw, chain_at);
	memcpy(out->data + chain_at, chain_pem, chain_len);
	put_le32(out->data + chain_at - 4, chain_len);
	size_t outer = out->len - (outer_at + 6);
	put_le32(out->data + outer_at + 2, outer);
	put_le32(out->data + sig_len_at, out->len - (sig_len_at + 4));
	free(raw);
	return true;
}

/* ---- what the agent sends ---- */

struct attempt {
	struct dcapgen *g;                /* the signer; NULL: dev */
	const char *network;              /* NULL: sandbox-1 */
	const char *repo;                 /* NULL: REPO */
	bool sealed;
	struct json_object *measurements; /* sent (borrowed); NULL: agent_test_measurements(sealed) */
	const char *quote_nonce;          /* the nonce the quote's REPORTDATA binds; NULL: NONCE */
	bool zero_nonce_half;             /* ... or zeros in its second half (legacy agents) */
	struct json_object *quote_report_data_measurements; /* what its first half binds */
	const char *report_data_hex;      /* the agent's copy of REPORTDATA; NULL: not sent */
	bool send_report_data;            /* send the expected copy */
	void (*change)(struct dcapgen_quote_options *q); /* the quote's fault */
	const struct blob *raw;           /* these quote bytes instead */
	const char *quote_b64;            /* this quote text instead */
	bool omit_quote;
};

/* Runs one attestation through v. */
static void decide(struct verifier *v, const struct attempt *a, struct attest_verdict *out)
{
	struct json_object *meas =
		a->measurements ? json_object_get(a->measurements) : agent_test_measurements(a->sealed);
	unsigned char rd[ATTEST_REPORT_DATA_LEN], expected[ATTEST_REPORT_DATA_LEN];
	expected_report_data(meas, NONCE, expected);
	expected_report_data(a->quote_report_data_measurements ? a->quote_report_data_measurements
	                                                       : meas,
	                     a->quote_nonce ? a->quote_nonce : NONCE, rd);
	if (a->zero_nonce_half)
		memset(rd + 32, 0, 32);
	char rd_hex[2 * ATTEST_REPORT_DATA_LEN + 1];
	util_hex_encode(expected, sizeof(expected), rd_hex);

	char *b64 = NULL;
	if (!a->omit_quote && !a->quote_b64) {
		struct blob q = {0};
		bool own = !a->raw;
		if (own) {
			struct dcapgen_quote_options qo;
			dcapgen_quote_defaults(&qo);
			if (a->change)
				a->change(&qo);
			if (dcapgen_quote(a->g ? a->g : dev, rd, &qo, &q.data, &q.len) != 0)
				test_fail(__FILE__, __LINE__, "dcapgen_quote failed");
		} else {
			q = *a->raw;
		}
		b64 = malloc(base64_encoded_len(q.len) + 1);
		if (b64)
			base64_encode(q.data, q.len, b64);
		if (own)
			free(q.data);
	}
	const char *quote = a->quote_b64 ? a->quote_b64 : b64;
	struct attest_evidence ev = {
		.nonce_hex = NONCE,
		.quote_b64 = quote,
		.quote_b64_len = quote ? strlen(quote) : 0,
		.report_data_hex = a->report_data_hex ? a->report_data_hex
		                                      : (a->send_report_data ? rd_hex : NULL),
		.measurements = meas,
		.network = a->network ? a->network : "sandbox-1",
		.repo = a->repo ? a->repo : REPO,
		.release_tag = TAG,
	};
	verifier_verify(v, &ev, out);
	free(b64);
	json_object_put(meas);
}

static void expect_at(int line, struct verifier *v, const struct attempt *a, const char *reason,
                      bool unavailable)
{
	struct attest_verdict got;
	if (!v) {
		test_fail(__FILE__, line, "no verifier");
		return;
	}
	decide(v, a, &got);
	bool ok = strcmp(reason, "ok") == 0;
	if (got.verified != ok || strcmp(got.reason, reason) != 0 || got.unavailable != unavailable)
		test_fail(__FILE__, line, "verdict %s%s \"%s\", want %s%s \"%s\"",
		          got.verified ? "verified" : "refused", got.unavailable ? " (unavailable)" : "",
		          got.reason, ok ? "verified" : "refused", unavailable ? " (unavailable)" : "",
		          reason);
}
#define EXPECT(v, a, reason) expect_at(__LINE__, (v), (a), (reason), false)
#define EXPECT_UNAVAILABLE(v, a, reason) expect_at(__LINE__, (v), (a), (reason), true)

/* ---- verifiers ---- */

/* Options of a development network pinning g (NULL: no development root). */
static void dev_options(struct verifier_options *o, struct dcapgen *g, bool with_collateral)
{
	verifier_options_default(o);
	snprintf(o->allowlist_dir, sizeof(o->allowlist_dir), "%s", allow_dir);
	/* Nothing here may reach the Internet: unreachable on purpose. */
	snprintf(o->pccs.base_url, sizeof(o->pccs.base_url), "http://127.0.0.1:1");
	snprintf(o->allowlist.api_url, sizeof(o->allowlist.api_url), "http://127.0.0.1:1");
	if (!g)
		return;
	if (dcapgen_root_pem(g, &o->dev_root_pem) != 0 ||
	    (with_collateral && dcapgen_collateral_json(g, &o->dev_collateral_json) != 0))
		test_fail(__FILE__, __LINE__, "the hierarchy's root or collateral");
}

static struct verifier *verifier_from(struct verifier_options *o, struct ee_db *db)
{
	struct verifier *v = NULL;
	struct ee_error err;
	if (verifier_create(o, db, &v, &err) != 0)
		test_fail(__FILE__, __LINE__, "verifier_create: %s", err.reason);
	verifier_options_free(o);
	return v;
}

static struct verifier *dev_verifier(struct dcapgen *g)
{
	struct verifier_options o;
	dev_options(&o, g, true);
	return verifier_from(&o, NULL);
}

/* A hierarchy at the defaults but for what change sets. */
static struct dcapgen *hierarchy(void (*change)(struct dcapgen_options *o))
{
	struct dcapgen_options o;
	dcapgen_defaults_at(&o, now);
	if (change)
		change(&o);
	struct dcapgen *g = NULL;
	if (dcapgen_create(&o, &g) != 0)
		test_fail(__FILE__, __LINE__, "dcapgen_create failed");
	return g;
}

static void allow(const char *repo, const char *json)
{
	if (agent_write_allowlist(allow_dir, repo, TAG, json, true) != 0)
		test_fail(__FILE__, __LINE__, "cannot write the allowlist of %s", repo);
}

/* ---- the development network ---- */

static void quote_tee_sgx(struct dcapgen_quote_options *q) { q->tee_type = 0; }
static void quote_v3(struct dcapgen_quote_options *q) { q->version = 3; }
static void quote_key_type_3(struct dcapgen_quote_options *q) { q->key_type = 3; }
static void quote_body_type_4(struct dcapgen_quote_options *q)
{
	q->version = 5;
	q->body_type = 4;
}
static void quote_inner_type_1(struct dcapgen_quote_options *q) { q->inner_cert_type = 1; }
static void quote_rtmr1_other(struct dcapgen_quote_options *q) { q->rtmr[1][47] ^= 0x01; }
static void quote_bad_signature(struct dcapgen_quote_options *q) { q->bad_quote_signature = true; }
static void quote_bad_qe_signature(struct dcapgen_quote_options *q)
{
	q->bad_qe_report_signature = true;
}
static void quote_qe_unbound(struct dcapgen_quote_options *q) { q->qe_report_data_unbound = true; }
static void quote_debug(struct dcapgen_quote_options *q) { q->td_attributes[0] |= 0x01; }
static void quote_seam_signer(struct dcapgen_quote_options *q) { q->mrsignerseam[0] ^= 0x01; }
static void quote_module_below(struct dcapgen_quote_options *q)
{
	q->tee_tcb_svn[1] = 1; /* TDX_01: levels 4 and 2 */
	q->tee_tcb_svn[0] = 1; /* below both */
}

static void test_evidence_and_binding(struct verifier *v)
{
	struct attempt a = {0};
	test_case("a correct attestation on sandbox-1: ok, UpToDate, not sealed");
	struct attest_verdict got;
	decide(v, &a, &got);
	CHECK(got.verified);
	CHECK_STR(got.reason, "ok");
	CHECK_STR(got.tcb_status, "UpToDate");
	CHECK(!got.sealed && !got.unavailable);

	test_case("sealed, with the agent's copy of REPORTDATA: ok, sealed");
	a = (struct attempt){.sealed = true, .send_report_data = true};
	decide(v, &a, &got);
	CHECK(got.verified && got.sealed, "%s", got.reason);

	test_case("no quote, no measurements, empty measurements: missing_quote_or_measurements");
	a = (struct attempt){.omit_quote = true};
	EXPECT(v, &a, "missing_quote_or_measurements");
	struct json_object *empty = json_object_new_object();
	a = (struct attempt){.measurements = empty};
	EXPECT(v, &a, "missing_quote_or_measurements");
	json_object_put(empty);
	a = (struct attempt){.quote_b64 = ""};
	EXPECT(v, &a, "missing_quote_or_measurements");

	test_case("nested or null measurements: invalid_measurements");
	struct json_object *nested = agent_test_measurements(false);
	json_object_object_add(nested, "extra", json_object_new_object());
	a = (struct attempt){.measurements = nested, .quote_b64 = "AAAA"};
	EXPECT(v, &a, "invalid_measurements");
	json_object_put(nested);
	struct json_object *null_value = agent_test_measurements(false);
	json_object_object_add(null_value, "extra", NULL);
	a = (struct attempt){.measurements = null_value, .quote_b64 = "AAAA"};
	EXPECT(v, &a, "invalid_measurements");
	json_object_put(null_value);

	test_case("unsealed on forge-1: sealed_required, before the quote is looked at");
	a = (struct attempt){.network = "forge-1"};
	EXPECT(v, &a, "sealed_required");
	a = (struct attempt){.network = "forge-1", .quote_b64 = "AAAA"};
	EXPECT(v, &a, "sealed_required");

	test_case("the agent's copy of REPORTDATA is not the expected one: report_data_mismatch");
	a = (struct attempt){.report_data_hex = "00"};
	EXPECT(v, &a, "report_data_mismatch");
	char zeros[129];
	memset(zeros, '0', 128);
	zeros[128] = '\0';
	a = (struct attempt){.report_data_hex = zeros};
	EXPECT(v, &a, "report_data_mismatch");

	test_case("a quote replayed with another nonce (it binds an old one): report_data_mismatch");
	a = (struct attempt){.quote_nonce = OLD_NONCE};
	EXPECT(v, &a, "report_data_mismatch");
	/* A correct copy of REPORTDATA beside the old quote changes nothing. */
	a = (struct attempt){.quote_nonce = OLD_NONCE, .send_report_data = true};
	EXPECT(v, &a, "report_data_mismatch");

	test_case("a quote that binds other measurements: report_data_mismatch");
	struct json_object *other = agent_test_measurements(false);
	json_put_string(other, "build", "2");
	a = (struct attempt){.quote_report_data_measurements = other};
	EXPECT(v, &a, "report_data_mismatch");
	json_object_put(other);

	test_case("a zero nonce half (legacy agents), refused by default: nonce_not_bound");
	a = (struct attempt){.zero_nonce_half = true};
	EXPECT(v, &a, "nonce_not_bound");

	test_case("a register the agent claims that its quote does not bind: measurement_not_bound:rtmr1");
	a = (struct attempt){.change = quote_rtmr1_other};
	EXPECT(v, &a, "measurement_not_bound:rtmr1");
	struct json_object *not_hex = agent_test_measurements(false);
	json_put_string(not_hex, "mrtd", "not a register");
	a = (struct attempt){.measurements = not_hex};
	EXPECT(v, &a, "measurement_not_bound:mrtd");
	json_object_put(not_hex);
}

static void test_quote_encoding(struct verifier *v)
{
	struct attempt a;
	test_case("a quote over the size limit: quote_too_large");
	size_t big = TDX_QUOTE_MAX_BYTES / 3 * 4 + 8;
	char *huge = malloc(big + 1);
	if (huge) {
		memset(huge, 'A', big);
		huge[big] = '\0';
		a = (struct attempt){.quote_b64 = huge};
		EXPECT(v, &a, "quote_too_large");
		free(huge);
	}

	test_case("a quote that is not base64: invalid_quote_encoding");
	a = (struct attempt){.quote_b64 = "not base64!"};
	EXPECT(v, &a, "invalid_quote_encoding");

	test_case("quotes that do not parse: each with the parser's reason");
	a = (struct attempt){.change = quote_tee_sgx};
	EXPECT(v, &a, "not_a_tdx_quote");
	a = (struct attempt){.change = quote_v3};
	EXPECT(v, &a, "unsupported_quote_version");
	a = (struct attempt){.change = quote_key_type_3};
	EXPECT(v, &a, "unsupported_attestation_key_type");
	a = (struct attempt){.change = quote_inner_type_1};
	EXPECT(v, &a, "unsupported_certification_data");
	a = (struct attempt){.change = quote_body_type_4};
	EXPECT(v, &a, "unsupported_body_type");
	a = (struct attempt){.quote_b64 = "AAAA"};
	EXPECT(v, &a, "unsupported_quote_version");

	struct json_object *meas = agent_test_measurements(false);
	unsigned char rd[ATTEST_REPORT_DATA_LEN];
	expected_report_data(meas, NONCE, rd);
	json_object_put(meas);
	struct blob q = {0};
	if (dcapgen_quote(dev, rd, NULL, &q.data, &q.len) != 0)
		return;
	struct blob cut = {q.data, q.len - 100};
	a = (struct attempt){.raw = &cut};
	EXPECT(v, &a, "quote_truncated");
	unsigned char *longer = malloc(q.len + 1);
	if (longer) {
		memcpy(longer, q.data, q.len);
		longer[q.len] = 0x01;
		struct blob tail = {longer, q.len + 1};
		a = (struct attempt){.raw = &tail};
		EXPECT(v, &a, "quote_trailing_bytes");
		free(longer);
	}
	free(q.data);
}

static void test_trust(struct verifier *v)
{
	struct attempt a;
	test_case("a development-root quote on forge-1: pck_chain_untrusted");
	a = (struct attempt){.network = "forge-1", .sealed = true};
	EXPECT(v, &a, "pck_chain_untrusted");

	test_case("a quote of another test hierarchy on sandbox-1: pck_chain_untrusted");
	struct dcapgen *stranger = hierarchy(NULL);
	a = (struct attempt){.g = stranger};
	EXPECT(v, &a, "pck_chain_untrusted");
	dcapgen_destroy(stranger);

	test_case("a verifier without a development root: pck_chain_untrusted on sandbox-1");
	struct verifier *plain = dev_verifier(NULL);
	a = (struct attempt){0};
	EXPECT(plain, &a, "pck_chain_untrusted");
	verifier_destroy(plain);

	test_case("a chain of the leaf alone, or without its root: pck_chain_invalid, pck_chain_untrusted");
	struct json_object *meas = agent_test_measurements(false);
	unsigned char rd[ATTEST_REPORT_DATA_LEN];
	expected_report_data(meas, NONCE, rd);
	json_object_put(meas);
	struct dcapgen_quote_options qo;
	dcapgen_quote_defaults(&qo);
	char *leaf = pem_of_cert(dcapgen_cert(dev, DCAPGEN_PCK_LEAF));
	char *ca = pem_of_cert(dcapgen_cert(dev, DCAPGEN_PCK_CA));
	char *root = pem_of_cert(dcapgen_cert(dev, DCAPGEN_ROOT));
	struct blob q;
	if (leaf && quote_with_chain(dev, rd, &qo, leaf, &q)) {
		a = (struct attempt){.raw = &q};
		EXPECT(v, &a, "pck_chain_invalid");
		free(q.data);
	}
	char *two = leaf && ca ? strprintf("%s%s", leaf, ca) : NULL;
	if (two && quote_with_chain(dev, rd, &qo, two, &q)) {
		a = (struct attempt){.raw = &q};
		EXPECT(v, &a, "pck_chain_untrusted");
		free(q.data);
	}
	/* Four certificates ending at the pinned root: DCAP wants leaf, CA, root. */
	char *four = two && root ? strprintf("%s%s%s", two, ca, root) : NULL;
	if (four && quote_with_chain(dev, rd, &qo, four, &q)) {
		a = (struct attempt){.raw = &q};
		EXPECT(v, &a, "pck_chain_invalid");
		free(q.data);
	}
	/* The surgery itself is sound: the usual three verify. */
	char *three = two && root ? strprintf("%s%s", two, root) : NULL;
	if (three && quote_with_chain(dev, rd, &qo, three, &q)) {
		a = (struct attempt){.raw = &q};
		EXPECT(v, &a, "ok");
		free(q.data);
	}
	free(leaf);
	free(ca);
	free(root);
	free(two);
	free(three);
	free(four);
}

static void test_allowlists(struct verifier *v)
{
	struct attempt a;
	test_case("no allowlist for the release: allowlist_not_found, the agent's failure");
	a = (struct attempt){.repo = "org/unlisted"};
	EXPECT(v, &a, "allowlist_not_found");

	test_case("an allowlist file that is not an allowlist: allowlist_invalid");
	allow("org/broken", "{\"measurements\":");
	a = (struct attempt){.repo = "org/broken"};
	EXPECT(v, &a, "allowlist_invalid");
	allow("org/broken", "{\"measurements\":{\"sealed\":false},\"quote_measurements\":{\"rtmr9\":\"00\"}}");
	EXPECT(v, &a, "allowlist_invalid");

	test_case("the allowlist wants a measurement the agent does not report: measurement_mismatch");
	allow("org/sealed-only", "{\"measurements\":{\"sealed\":true,\"rtmr0\":\"" AGENT_TEST_RTMR0 "\"}}");
	a = (struct attempt){.repo = "org/sealed-only"};
	EXPECT(v, &a, "measurement_mismatch:sealed");
	a = (struct attempt){.repo = "org/sealed-only", .sealed = true};
	EXPECT(v, &a, "ok");

	test_case("the allowlist wants another register in the quote: quote_measurement_mismatch");
	allow("org/other-build", "{\"measurements\":{\"rtmr0\":\"" AGENT_TEST_RTMR0 "\"},"
	                         "\"quote_measurements\":{\"rtmr2\":\"" AGENT_TEST_RTMR3 "\"}}");
	a = (struct attempt){.repo = "org/other-build"};
	EXPECT(v, &a, "quote_measurement_mismatch:rtmr2");
	/* A register the agent does not even report is still checked in the quote. */
	struct json_object *few = json_object_new_object();
	json_put_string(few, "rtmr0", AGENT_TEST_RTMR0);
	a = (struct attempt){.repo = "org/other-build", .measurements = few};
	EXPECT(v, &a, "quote_measurement_mismatch:rtmr2");
	json_object_put(few);
}

static void test_dcap_on_the_dev_root(struct verifier *v)
{
	struct attempt a;
	test_case("DCAP on the development root: each broken signature with its step's reason");
	a = (struct attempt){.change = quote_bad_signature};
	EXPECT(v, &a, "quote_signature");
	a = (struct attempt){.change = quote_bad_qe_signature};
	EXPECT(v, &a, "qe_report_signature");
	a = (struct attempt){.change = quote_qe_unbound};
	EXPECT(v, &a, "qe_report_data_mismatch");

	test_case("a debug TD: debug_td");
	a = (struct attempt){.change = quote_debug};
	EXPECT(v, &a, "debug_td");

	test_case("a TDX module the TCB info does not know: tdx_module_mismatch, tdx_module_tcb_unknown");
	a = (struct attempt){.change = quote_seam_signer};
	EXPECT(v, &a, "tdx_module_mismatch");
	a = (struct attempt){.change = quote_module_below};
	EXPECT(v, &a, "tdx_module_tcb_unknown");
}

static void platform_out_of_date(struct dcapgen_options *o) { o->platform.pcesvn = 10; }
static void platform_below_levels(struct dcapgen_options *o) { o->platform.pcesvn = 4; }
static void platform_revoked(struct dcapgen_options *o)
{
	o->tcb_info.levels[0].tcb_status = DCAPGEN_REVOKED;
}
static void leaf_revoked(struct dcapgen_options *o) { o->pck_leaf.revoked = true; }
static void leaf_expired(struct dcapgen_options *o) { o->pck_leaf.not_after = now - DAY; }
static void leaf_not_yet_valid(struct dcapgen_options *o) { o->pck_leaf.not_before = now + DAY; }
static void qe_other_product(struct dcapgen_options *o) { o->qe_report.isvprodid++; }
static void qe_below_levels(struct dcapgen_options *o) { o->qe_report.isvsvn = 1; }
static void pck_crl_expired(struct dcapgen_options *o) { o->pck_crl.next_update = now - DAY; }
static void tcb_info_expired(struct dcapgen_options *o)
{
	o->tcb_info.issue_date = now - 31 * DAY;
	o->tcb_info.next_update = now - DAY;
}

/* One hierarchy with one knob changed, judged by a verifier that pins it. */
static void expect_hierarchy(int line, void (*change)(struct dcapgen_options *), const char *reason,
                             bool unavailable)
{
	struct dcapgen *g = hierarchy(change);
	struct verifier *v = g ? dev_verifier(g) : NULL;
	struct attempt a = {.g = g};
	if (g)
		expect_at(line, v, &a, reason, unavailable);
	verifier_destroy(v);
	dcapgen_destroy(g);
}

static void test_platforms_and_policy(void)
{
	test_case("a platform at an OutOfDate TCB level: tcb_status_not_accepted:OutOfDate");
	struct dcapgen *g = hierarchy(platform_out_of_date);
	struct verifier *v = dev_verifier(g);
	struct attempt a = {.g = g};
	struct attest_verdict got;
	if (v) {
		decide(v, &a, &got);
		CHECK_STR(got.reason, "tcb_status_not_accepted:OutOfDate");
		CHECK_STR(got.tcb_status, "OutOfDate");
		CHECK(!got.verified && !got.unavailable);
	}
	verifier_destroy(v);

	test_case("the same platform where the policy lists OutOfDate: ok");
	struct verifier_options o;
	dev_options(&o, g, true);
	snprintf(o.tcb_accept_sandbox, sizeof(o.tcb_accept_sandbox), "UpToDate, OutOfDate");
	v = verifier_from(&o, NULL);
	EXPECT(v, &a, "ok");
	verifier_destroy(v);

	test_case("OutOfDate accepted, one of its advisories denied: advisory_refused");
	dev_options(&o, g, true);
	snprintf(o.tcb_accept_sandbox, sizeof(o.tcb_accept_sandbox), "UpToDate,OutOfDate");
	snprintf(o.advisory_deny, sizeof(o.advisory_deny), "INTEL-SA-00001,INTEL-SA-00837");
	v = verifier_from(&o, NULL);
	EXPECT(v, &a, "advisory_refused:INTEL-SA-00837");
	verifier_destroy(v);

	test_case("the forge-1 list does not apply on sandbox-1");
	dev_options(&o, g, true);
	snprintf(o.tcb_accept_forge, sizeof(o.tcb_accept_forge), "UpToDate,OutOfDate");
	v = verifier_from(&o, NULL);
	EXPECT(v, &a, "tcb_status_not_accepted:OutOfDate");
	verifier_destroy(v);
	dcapgen_destroy(g);

	test_case("a platform below every level, a revoked level: tcb_level_unknown, tcb_revoked");
	expect_hierarchy(__LINE__, platform_below_levels, "tcb_level_unknown", false);
	expect_hierarchy(__LINE__, platform_revoked, "tcb_revoked", false);

	test_case("a revoked, expired or future PCK certificate: pck_revoked, pck_cert_expired, "
	          "pck_cert_not_yet_valid");
	expect_hierarchy(__LINE__, leaf_revoked, "pck_revoked", false);
	expect_hierarchy(__LINE__, leaf_expired, "pck_cert_expired", false);
	expect_hierarchy(__LINE__, leaf_not_yet_valid, "pck_cert_not_yet_valid", false);

	test_case("a QE the QE identity does not describe: qe_identity_mismatch, qe_tcb_unknown");
	expect_hierarchy(__LINE__, qe_other_product, "qe_identity_mismatch", false);
	expect_hierarchy(__LINE__, qe_below_levels, "qe_tcb_unknown", false);

	test_case("collateral past its nextUpdate is ours to fix: crl_expired, tcb_info_expired, unavailable");
	expect_hierarchy(__LINE__, pck_crl_expired, "crl_expired", true);
	expect_hierarchy(__LINE__, tcb_info_expired, "tcb_info_expired", true);
}

static void test_collateral_and_legacy(void)
{
	struct attempt a = {0};
	test_case("a development root without its collateral: collateral_unavailable:dev, unavailable");
	struct verifier_options o;
	dev_options(&o, dev, false);
	struct verifier *v = verifier_from(&o, NULL);
	EXPECT_UNAVAILABLE(v, &a, "collateral_unavailable:dev");
	verifier_destroy(v);

	test_case("collateral that does not parse: collateral_invalid, unavailable");
	dev_options(&o, dev, false);
	o.dev_collateral_json = strdup("{\"tcb_info\":7}");
	v = verifier_from(&o, NULL);
	EXPECT_UNAVAILABLE(v, &a, "collateral_invalid");
	verifier_destroy(v);

	test_case("another hierarchy's collateral for the pinned root: unavailable");
	struct dcapgen *stranger = hierarchy(NULL);
	dev_options(&o, dev, false);
	if (stranger && dcapgen_collateral_json(stranger, &o.dev_collateral_json) != 0)
		test_fail(__FILE__, __LINE__, "collateral");
	v = verifier_from(&o, NULL);
	struct attest_verdict got;
	if (v) {
		decide(v, &a, &got);
		CHECK(!got.verified && got.unavailable, "%s", got.reason);
	}
	verifier_destroy(v);
	dcapgen_destroy(stranger);

	test_case("a zero nonce half with EE_SANDBOX_LEGACY_NONCE: ok on sandbox-1 only");
	dev_options(&o, dev, true);
	o.legacy_nonce_sandbox = true;
	v = verifier_from(&o, NULL);
	a = (struct attempt){.zero_nonce_half = true};
	EXPECT(v, &a, "ok");
	/* The agent's copy may be zero in that half too. */
	struct json_object *meas = agent_test_measurements(false);
	unsigned char rd[ATTEST_REPORT_DATA_LEN];
	char hex[2 * ATTEST_REPORT_DATA_LEN + 1];
	expected_report_data(meas, NONCE, rd);
	memset(rd + 32, 0, 32);
	util_hex_encode(rd, sizeof(rd), hex);
	a = (struct attempt){.zero_nonce_half = true, .report_data_hex = hex};
	EXPECT(v, &a, "ok");
	/* Still bound to the measurements, and never a replay of another nonce. */
	json_put_string(meas, "build", "2");
	a = (struct attempt){.zero_nonce_half = true, .quote_report_data_measurements = meas};
	EXPECT(v, &a, "report_data_mismatch");
	json_object_put(meas);
	a = (struct attempt){.quote_nonce = OLD_NONCE};
	EXPECT(v, &a, "report_data_mismatch");
	a = (struct attempt){.zero_nonce_half = true, .network = "forge-1", .sealed = true};
	EXPECT(v, &a, "nonce_not_bound");
	verifier_destroy(v);

	test_case("without EE_SANDBOX_LEGACY_NONCE a zero copy of REPORTDATA: report_data_mismatch");
	v = dev_verifier(dev);
	a = (struct attempt){.zero_nonce_half = true, .report_data_hex = hex};
	EXPECT(v, &a, "report_data_mismatch");
	verifier_destroy(v);
}

/* ---- Intel's path, with Intel's samples ---- */

static struct fakehttp server;
static struct json_object *collateral; /* tdx_quote_collateral.json */

/* What a PCCS answers for one collateral JSON. */
struct pccs_answers {
	char *tcb_body, *tcb_header, *qe_body, *qe_header, *pck_header, *root_hex;
	struct blob pck_der;
};
static struct pccs_answers sample_answers, pretend_answers;
static const struct pccs_answers *answering = &sample_answers;
static struct blob sample, intel_root;
static char *release_agent, *release_other, *allowlist_text, *allowlist_other;
static char sample_regs[5][97]; /* MRTD, RTMR0..3 of the sample, hex */
static const char *const reg_names[5] = {"mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"};

static const char *field_of(struct json_object *col, const char *name)
{
	struct json_object *v;
	return json_object_object_get_ex(col, name, &v) ? json_object_get_string(v) : "";
}

/* Percent-encodes everything but unreserved characters, as Intel's PCS does. */
static char *url_encode(const char *s)
{
	struct buf b;
	buf_init(&b);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~')
			buf_append(&b, p, 1);
		else
			buf_printf(&b, "%%%02X", *p);
	}
	return b.data;
}

static char *chain_header(const char *name, const char *chain)
{
	char *enc = url_encode(chain);
	char *h = enc ? strprintf("%s: %s\r\n", name, enc) : NULL;
	free(enc);
	return h;
}

/* The release JSON of a fake GitHub: the asset "url" on the API host itself. */
static char *release_json(const char *repo)
{
	return strprintf("{\"id\":1,\"tag_name\":\"" TAG "\",\"assets\":[{\"id\":2,\"name\":\"%s\","
	                 "\"url\":\"%s/repos/%s/releases/assets/2\"}]}",
	                 ALLOWLIST_DEFAULT_ASSET, server.base_url, repo);
}

/* The PCCS v4 answers for a collateral JSON (the form of tdx_quote_collateral.json). */
static bool answers_from(struct json_object *col, struct pccs_answers *a)
{
	a->tcb_body = strprintf("{\"tcbInfo\":%s,\"signature\":\"%s\"}", field_of(col, "tcb_info"),
	                        field_of(col, "tcb_info_signature"));
	a->qe_body = strprintf("{\"enclaveIdentity\":%s,\"signature\":\"%s\"}",
	                       field_of(col, "qe_identity"), field_of(col, "qe_identity_signature"));
	a->tcb_header = chain_header("TCB-Info-Issuer-Chain", field_of(col, "tcb_info_issuer_chain"));
	a->qe_header = chain_header("SGX-Enclave-Identity-Issuer-Chain",
	                            field_of(col, "qe_identity_issuer_chain"));
	a->pck_header = chain_header("SGX-PCK-CRL-Issuer-Chain", field_of(col, "pck_crl_issuer_chain"));
	a->root_hex = strdup(field_of(col, "root_ca_crl"));
	const char *pck_hex = field_of(col, "pck_crl");
	a->pck_der.data = malloc(strlen(pck_hex) / 2 + 1);
	return a->tcb_body && a->qe_body && a->tcb_header && a->qe_header && a->pck_header &&
	       a->root_hex && a->pck_der.data &&
	       util_hex_decode(pck_hex, strlen(pck_hex), a->pck_der.data, strlen(pck_hex) / 2,
	                       &a->pck_der.len) == 0;
}

static void answers_free(struct pccs_answers *a)
{
	free(a->tcb_body);
	free(a->tcb_header);
	free(a->qe_body);
	free(a->qe_header);
	free(a->pck_header);
	free(a->root_hex);
	free(a->pck_der.data);
	memset(a, 0, sizeof(*a));
}

static bool load_samples(void)
{
	struct blob text;
	if (!read_file(TESTDATA_DIR "/tdx_quote", &sample) ||
	    !read_file(TESTDATA_DIR "/intel_sgx_root_ca.pem", &intel_root) ||
	    !read_file(TESTDATA_DIR "/tdx_quote_collateral.json", &text))
		return false;
	collateral = json_tokener_parse((const char *)text.data);
	free(text.data);
	if (!collateral) {
		test_fail(__FILE__, __LINE__, "tdx_quote_collateral.json does not parse");
		return false;
	}
	/* The PEM is text: the NUL the blob lacks. */
	unsigned char *pem = realloc(intel_root.data, intel_root.len + 1);
	if (!pem)
		return false;
	pem[intel_root.len] = '\0';
	intel_root.data = pem;

	if (!answers_from(collateral, &sample_answers))
		return false;

	struct tdx_quote q;
	struct ee_error err;
	if (tdx_quote_parse(sample.data, sample.len, &q, &err) != 0) {
		test_fail(__FILE__, __LINE__, "the sample does not parse: %s", err.reason);
		return false;
	}
	util_hex_encode(q.td.mr_td, 48, sample_regs[0]);
	for (int i = 0; i < 4; i++)
		util_hex_encode(q.td.rtmr[i], 48, sample_regs[i + 1]);

	/* The release's allowlist: sealed, and the sample's registers in the quote. */
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "{\"measurements\":{\"sealed\":true},\"quote_measurements\":{");
	for (int i = 0; i < 5; i++)
		buf_printf(&b, "%s\"%s\":\"%s\"", i ? "," : "", reg_names[i], sample_regs[i]);
	buf_printf(&b, "}}");
	allowlist_text = b.data;
	allowlist_other = strprintf("{\"measurements\":{\"sealed\":true},\"quote_measurements\":"
	                            "{\"mrtd\":\"%s\"}}", AGENT_TEST_MRTD);
	release_agent = release_json("acme/agent");
	release_other = release_json("acme/other");
	return allowlist_text && allowlist_other && release_agent && release_other;
}

/* What an agent running the sample's TD reports on forge-1. */
static struct json_object *sample_measurements(void)
{
	struct json_object *m = json_object_new_object();
	for (int i = 0; i < 5; i++)
		json_put_string(m, reg_names[i], sample_regs[i]);
	json_put_bool(m, "sealed", true);
	return m;
}

enum pccs_answer { PCCS_GOOD, PCCS_FAILING };

/* The fake GitHub (four releases) and the fake PCCS (answering), on one server. */
static void serve(enum pccs_answer pccs)
{
	const struct pccs_answers *a = answering;
	struct fakehttp_route r[] = {
		{.target = "/repos/acme/agent/releases/tags/" TAG, .status = 200, .body = release_agent},
		{.target = "/repos/acme/agent/releases/assets/2", .status = 200, .body = allowlist_text},
		{.target = "/repos/acme/other/releases/tags/" TAG, .status = 200, .body = release_other},
		{.target = "/repos/acme/other/releases/assets/2", .status = 200, .body = allowlist_other},
		{.target = "/repos/acme/down/releases/tags/" TAG, .status = 500, .body = "oops"},
		{.target = PATH_TCB, .status = 200, .headers = a->tcb_header, .body = a->tcb_body},
		{.target = PATH_QE, .status = 200, .headers = a->qe_header, .body = a->qe_body},
		{.target = PATH_PCK, .status = 200, .headers = a->pck_header,
		 .body = (const char *)a->pck_der.data, .body_len = a->pck_der.len},
		{.target = PATH_ROOT, .status = 200, .body = a->root_hex},
	};
	size_t n = sizeof(r) / sizeof(r[0]);
	if (pccs == PCCS_FAILING) {
		for (size_t i = 5; i < n; i++)
			r[i] = (struct fakehttp_route){.target = r[i].target, .status = 500, .body = "down"};
	}
	if (fakehttp_serve(&server, r, n) != 0)
		test_fail(__FILE__, __LINE__, "fakehttp_serve failed");
}

static struct verifier *intel_verifier(struct ee_db *db)
{
	struct verifier_options o;
	verifier_options_default(&o);
	snprintf(o.pccs.base_url, sizeof(o.pccs.base_url), "%s", server.base_url);
	snprintf(o.allowlist.api_url, sizeof(o.allowlist.api_url), "%s", server.base_url);
	o.fixed_time_s = AT_SAMPLE;
	return verifier_from(&o, db);
}

static void platform_of_sample(struct dcapgen_options *o)
{
	static const unsigned char fmspc[6] = {0xB0, 0xC0, 0x6F, 0x00, 0x00, 0x00};
	memcpy(o->platform.fmspc, fmspc, sizeof(fmspc));
}

static void test_intel_path(struct ee_db *db)
{
	test_case("Intel's real quote on forge-1: report_data_mismatch (its REPORTDATA cannot bind our nonce)");
	char log[700];
	snprintf(log, sizeof(log), "%s/fakehttp.log", tmp_dir);
	if (fakehttp_open(&server, log) != 0 || !load_samples())
		return;
	serve(PCCS_GOOD);
	struct verifier *v = intel_verifier(db);
	struct json_object *meas = sample_measurements();
	struct attempt a = {.network = "forge-1", .repo = "acme/agent", .measurements = meas,
	                    .raw = &sample};
	EXPECT(v, &a, "report_data_mismatch");

	test_case("the same quote and the collateral the fake PCCS serves: DCAP says UpToDate");
	struct pccs_options po;
	pccs_options_default(&po);
	snprintf(po.base_url, sizeof(po.base_url), "%s", server.base_url);
	struct pccs_client *pccs = NULL;
	struct ee_error err;
	char *json = NULL;
	struct dcap_collateral c;
	struct dcap_trust *trust = NULL;
	struct dcap_result result = {0};
	if (pccs_client_create(&po, &pccs, &err) == 0 &&
	    pccs_get_collateral(pccs, db, SAMPLE_FMSPC, "platform", time_now_ms(), &json, &err) == 0 &&
	    dcap_collateral_from_json(json, strlen(json), &c, &err) == 0) {
		if (dcap_trust_create(&trust, &err) == 0 &&
		    dcap_trust_add_pem(trust, (const char *)intel_root.data, intel_root.len, &err) == 0)
			dcap_verify(trust, &c, sample.data, sample.len, AT_SAMPLE, &result, &err);
		dcap_collateral_free(&c);
	}
	CHECK(result.verified, "%s", result.reason[0] ? result.reason : err.reason);
	CHECK_STR(result.tcb_status, "UpToDate");
	CHECK_INT(result.advisory_count, 0);
	dcap_trust_destroy(trust);
	pccs_client_destroy(pccs);
	free(json);

	/* A quote that binds our nonce and ends, by fingerprint, at Intel's root. */
	struct dcapgen_options go;
	dcapgen_defaults_at(&go, AT_SAMPLE);
	platform_of_sample(&go);
	struct dcapgen *g = NULL;
	struct blob q = {0};
	unsigned char rd[ATTEST_REPORT_DATA_LEN];
	expected_report_data(meas, NONCE, rd);
	char *leaf = NULL, *ca = NULL, *chain = NULL;
	struct dcapgen_quote_options qo;
	dcapgen_quote_defaults(&qo);
	for (int i = 0; i < 5; i++) {
		unsigned char *reg = i == 0 ? qo.mrtd : qo.rtmr[i - 1];
		size_t n;
		util_hex_decode(sample_regs[i], 96, reg, 48, &n);
	}
	if (dcapgen_create(&go, &g) == 0 && (leaf = pem_of_cert(dcapgen_cert(g, DCAPGEN_PCK_LEAF))) &&
	    (ca = pem_of_cert(dcapgen_cert(g, DCAPGEN_PCK_CA))) &&
	    (chain = strprintf("%s%s%s", leaf, ca, (const char *)intel_root.data)))
		quote_with_chain(g, rd, &qo, chain, &q);
	CHECK(q.data != NULL, "no quote chaining to Intel's root");
	a = (struct attempt){.network = "forge-1", .repo = "acme/agent", .measurements = meas,
	                     .raw = &q};

	test_case("a chain that ends at Intel's root with a forged CA: pck_chain_signature, nothing "
	          "fetched (neither the allowlist nor the collateral)");
	serve(PCCS_GOOD);
	fakehttp_clear_log(&server);
	if (q.data)
		EXPECT(v, &a, "pck_chain_signature");
	CHECK_INT(fakehttp_count(&server, NULL), 0);

	test_case("the same with the PCCS failing: still pck_chain_signature, the agent's, nothing fetched");
	serve(PCCS_FAILING);
	fakehttp_clear_log(&server);
	if (q.data)
		EXPECT(v, &a, "pck_chain_signature");
	CHECK_INT(fakehttp_count(&server, NULL), 0);
	verifier_destroy(v);
	v = NULL;

	/*
	 * A hierarchy standing for Intel's (its root pinned as Intel's, on
	 * forge-1, its collateral from the fake PCCS): quotes that pass every
	 * signature reach the fetches.
	 */
	struct ee_db *db2 = NULL;
	char db2_path[700];
	snprintf(db2_path, sizeof(db2_path), "%s/pretend.sqlite", tmp_dir);
	struct ee_db_options dbo = {.busy_timeout_ms = 5000, .synchronous = "NORMAL", .create = true};
	char *pretend_json = NULL;
	struct json_object *pretend_col = NULL;
	struct verifier_options o;
	verifier_options_default(&o);
	snprintf(o.pccs.base_url, sizeof(o.pccs.base_url), "%s", server.base_url);
	snprintf(o.allowlist.api_url, sizeof(o.allowlist.api_url), "%s", server.base_url);
	o.fixed_time_s = AT_SAMPLE;
	X509 *pretend_root = g ? dcapgen_cert(g, DCAPGEN_ROOT) : NULL;
	unsigned char *root_der = NULL;
	int root_len = pretend_root ? i2d_X509(pretend_root, &root_der) : -1;
	unsigned int sha_len;
	if (root_len > 0)
		EVP_Digest(root_der, (size_t)root_len, o.test_intel_root_sha256, &sha_len, EVP_sha256(),
		           NULL);
	OPENSSL_free(root_der);
	if (root_len <= 0 || db_open(db2_path, &dbo, &db2, &err) != 0 ||
	    dcapgen_collateral_json(g, &pretend_json) != 0 ||
	    !(pretend_col = json_tokener_parse(pretend_json)) ||
	    !answers_from(pretend_col, &pretend_answers)) {
		test_fail(__FILE__, __LINE__, "the pretend-Intel hierarchy");
		verifier_options_free(&o);
	} else {
		v = verifier_from(&o, db2);
	}
	free(pretend_json);
	json_object_put(pretend_col);
	answering = &pretend_answers;

	test_case("broken signatures (chain, QE report, its binding, quote) on Intel's path: each "
	          "refused for itself, no allowlist and no collateral fetched");
	serve(PCCS_GOOD);
	fakehttp_clear_log(&server);
	struct blob bad = {0};
	struct dcapgen *stranger = NULL;
	char *stranger_ca = NULL, *forged = NULL, *root_pem = NULL;
	if (dcapgen_create(&go, &stranger) == 0 &&
	    (stranger_ca = pem_of_cert(dcapgen_cert(stranger, DCAPGEN_PCK_CA))) &&
	    (root_pem = pem_of_cert(pretend_root)) &&
	    (forged = strprintf("%s%s%s", leaf, stranger_ca, root_pem)) &&
	    quote_with_chain(g, rd, &qo, forged, &bad)) {
		a = (struct attempt){.network = "forge-1", .repo = "acme/agent", .measurements = meas,
		                     .raw = &bad};
		EXPECT(v, &a, "pck_chain_signature");
		free(bad.data);
	} else {
		test_fail(__FILE__, __LINE__, "a chain with a stranger's CA");
	}
	struct {
		bool *knob;
		const char *reason;
	} broken[] = {
		{&qo.bad_qe_report_signature, "qe_report_signature"},
		{&qo.qe_report_data_unbound, "qe_report_data_mismatch"},
		{&qo.bad_quote_signature, "quote_signature"},
	};
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		*broken[i].knob = true;
		bad = (struct blob){0};
		if (dcapgen_quote(g, rd, &qo, &bad.data, &bad.len) == 0) {
			a = (struct attempt){.network = "forge-1", .repo = "acme/agent", .measurements = meas,
			                     .raw = &bad};
			EXPECT(v, &a, broken[i].reason);
		}
		free(bad.data);
		*broken[i].knob = false;
	}
	CHECK_INT(fakehttp_count(&server, NULL), 0);
	free(stranger_ca);
	free(root_pem);
	free(forged);
	dcapgen_destroy(stranger);

	struct blob good = {0};
	if (g && dcapgen_quote(g, rd, &qo, &good.data, &good.len) != 0)
		test_fail(__FILE__, __LINE__, "dcapgen_quote");
	a = (struct attempt){.network = "forge-1", .repo = "acme/agent", .measurements = meas,
	                     .raw = &good};

	test_case("a sound quote on Intel's path, the PCCS failing: collateral_unavailable, unavailable "
	          "(after the allowlist)");
	serve(PCCS_FAILING);
	fakehttp_clear_log(&server);
	EXPECT_UNAVAILABLE(v, &a, "collateral_unavailable:tcb_info");
	CHECK_INT(fakehttp_count(&server, "/repos/acme/agent/releases/tags/"), 1);
	CHECK_INT(fakehttp_count(&server, PATH_TCB), 1);

	test_case("the same with the PCCS serving: fetched, ok");
	serve(PCCS_GOOD);
	fakehttp_clear_log(&server);
	EXPECT(v, &a, "ok");
	CHECK_INT(fakehttp_count(&server, PATH_TCB), 1);
	CHECK_INT(fakehttp_count(&server, "/repos/acme/agent/releases/tags/"), 0); /* cached */

	test_case("the release's allowlist from GitHub wants other registers: quote_measurement_mismatch");
	a.repo = "acme/other";
	EXPECT(v, &a, "quote_measurement_mismatch:mrtd");

	test_case("no such release on GitHub: allowlist_not_found; GitHub failing: unavailable");
	a.repo = "acme/missing";
	EXPECT(v, &a, "allowlist_not_found");
	a.repo = "acme/down";
	EXPECT_UNAVAILABLE(v, &a, "allowlist_fetch_failed:http_500");

	test_case("the same claims again at once: the same verdicts, GitHub not asked again "
	          "(EE_ALLOWLIST_NEGATIVE_TTL_SEC)");
	fakehttp_clear_log(&server);
	for (int i = 0; i < 3; i++) {
		a.repo = "acme/missing";
		EXPECT(v, &a, "allowlist_not_found");
		a.repo = "acme/down";
		EXPECT_UNAVAILABLE(v, &a, "allowlist_fetch_failed:http_500");
	}
	CHECK_INT(fakehttp_count(&server, "/repos/"), 0);


	test_case("EE_ALLOWLIST_DIR is ignored on forge-1: GitHub's allowlist decides, though the "
	          "directory holds one that would pass");
	struct verifier_options lo;
	verifier_options_default(&lo);
	snprintf(lo.pccs.base_url, sizeof(lo.pccs.base_url), "%s", server.base_url);
	snprintf(lo.allowlist.api_url, sizeof(lo.allowlist.api_url), "%s", server.base_url);
	snprintf(lo.allowlist_dir, sizeof(lo.allowlist_dir), "%s", allow_dir);
	lo.fixed_time_s = AT_SAMPLE;
	memcpy(lo.test_intel_root_sha256, o.test_intel_root_sha256, sizeof(lo.test_intel_root_sha256));
	struct verifier *local = verifier_from(&lo, db2);
	/* The sample's own registers: on sandbox-1 these files would pass the allowlist step. */
	allow("acme/other", allowlist_text);
	allow("acme/missing", allowlist_text);
	fakehttp_clear_log(&server);
	a.repo = "acme/other";
	if (q.data && local)
		EXPECT(local, &a, "quote_measurement_mismatch:mrtd");
	a.repo = "acme/missing";
	if (q.data && local) {
		EXPECT(local, &a, "allowlist_not_found");
		CHECK_INT(fakehttp_count(&server, "/repos/acme/missing/releases/tags/"), 1);
	}
	verifier_destroy(local);
	answering = &sample_answers;

	test_case("EE_DEV_ROOT_CA holding Intel's root is refused: invalid_config:EE_DEV_ROOT_CA");
	struct verifier_options ro;
	verifier_options_default(&ro);
	ro.dev_root_pem = strdup((const char *)intel_root.data);
	struct verifier *refused = NULL;
	struct ee_error rerr = {0};
	CHECK_INT(verifier_create(&ro, db, &refused, &rerr), -1);
	CHECK(refused == NULL);
	CHECK_STR(rerr.reason, "invalid_config:EE_DEV_ROOT_CA");
	verifier_options_free(&ro);
	/* The control: the development root itself is taken. */
	struct verifier_options co;
	dev_options(&co, dev, true);
	struct verifier *taken = NULL;
	CHECK_INT(verifier_create(&co, NULL, &taken, &rerr), 0);
	verifier_destroy(taken);
	verifier_options_free(&co);

	free(good.data);
	db_close(db2);
	free(q.data);
	free(leaf);
	free(ca);
	free(chain);
	dcapgen_destroy(g);
	json_object_put(meas);
	verifier_destroy(v);
	fakehttp_close(&server);
}

/* ---- what it costs ---- */

static void test_timing(struct verifier *v)
{
	test_case("signing and verifying quotes: the cost per quote (printed)");
	enum { N = 200 };
	struct json_object *meas = agent_test_measurements(false);
	unsigned char rd[ATTEST_REPORT_DATA_LEN];
	expected_report_data(meas, NONCE, rd);
	struct blob quotes[N];
	int64_t t0 = time_monotonic_ms();
	int made = 0;
	for (int i = 0; i < N; i++) {
		quotes[i] = (struct blob){0};
		if (dcapgen_quote(dev, rd, NULL, &quotes[i].data, &quotes[i].len) == 0)
			made++;
	}
	int64_t t1 = time_monotonic_ms();
	CHECK_INT(made, N);
	int verified = 0;
	for (int i = 0; i < N; i++) {
		struct attempt a = {.measurements = meas, .raw = &quotes[i]};
		struct attest_verdict got;
		if (quotes[i].data) {
			decide(v, &a, &got);
			verified += got.verified;
		}
	}
	int64_t t2 = time_monotonic_ms();
	CHECK_INT(verified, N);
	printf("# %d quotes signed in %lld ms (%.0f us each), verified in %lld ms (%.0f us each, "
	       "base64 and REPORTDATA included)\n",
	       N, (long long)(t1 - t0), 1000.0 * (double)(t1 - t0) / N, (long long)(t2 - t1),
	       1000.0 * (double)(t2 - t1) / N);
	for (int i = 0; i < N; i++)
		free(quotes[i].data);
	json_object_put(meas);
}

int main(void)
{
	now = time(NULL);
	test_case("a development network: a hierarchy, its root and collateral, allowlists");
	struct ee_db *db = NULL;
	if (stack_make_dir(tmp_dir, sizeof(tmp_dir), "verifier") != 0) {
		test_fail(__FILE__, __LINE__, "cannot make a directory: %s", strerror(errno));
		return test_finish();
	}
	snprintf(allow_dir, sizeof(allow_dir), "%s/allowlists", tmp_dir);
	char db_path[700];
	snprintf(db_path, sizeof(db_path), "%s/cache.sqlite", tmp_dir);
	struct ee_db_options dbo = {.busy_timeout_ms = 5000, .synchronous = "NORMAL", .create = true};
	struct ee_error err;
	dev = hierarchy(NULL);
	if (!dev || mkdir(allow_dir, 0700) != 0 || db_open(db_path, &dbo, &db, &err) != 0) {
		test_fail(__FILE__, __LINE__, "setup failed");
		return test_finish();
	}
	allow(REPO, NULL);
	struct verifier *v = dev_verifier(dev);
	if (v) {
		test_evidence_and_binding(v);
		test_quote_encoding(v);
		test_trust(v);
		test_allowlists(v);
		test_dcap_on_the_dev_root(v);
	}
	test_platforms_and_policy();
	test_collateral_and_legacy();
	test_intel_path(db);
	if (v)
		test_timing(v);
	verifier_destroy(v);

	db_close(db);
	dcapgen_destroy(dev);
	json_object_put(collateral);
	answers_free(&sample_answers);
	answers_free(&pretend_answers);
	free(sample.data);
	free(intel_root.data);
	free(release_agent);
	free(release_other);
	free(allowlist_text);
	free(allowlist_other);
	if (!test_case_failed() && !getenv("EE_TEST_KEEP"))
		stack_remove_dir(tmp_dir);
	return test_finish();
}
