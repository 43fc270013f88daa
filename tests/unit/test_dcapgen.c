/*
 * test_dcapgen.c - the fake DCAP hierarchy of tests/support/dcapgen.c,
 * checked without the DCAP verifier: the quote's layout against DCAP.md
 * (and the same walk over Intel's real sample quote), every signature with
 * OpenSSL, the chains with X509_verify_cert and the CRLs, the SGX extension
 * decoded back with OpenSSL's ASN.1 parser, and the collateral JSON against
 * the real sample's field names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "dcapgen.h"
#include "util.h"

#define SAMPLE_DIR "../shared/testdata/dcap/"
#define SGX_OID "1.2.840.113741.1.13.1"
#define NOW ((time_t)1760000000) /* 2025-10-09: every case pins its clock */

/* ---- helpers ----------------------------------------------------------- */

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	unsigned char *data = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? 2 * cap : 65536;
			unsigned char *p = realloc(data, cap + 1);
			if (!p) {
				free(data);
				fclose(f);
				return NULL;
			}
			data = p;
		}
		size_t got = fread(data + n, 1, cap - n, f);
		if (got == 0)
			break;
		n += got;
	}
	fclose(f);
	data[n] = '\0';
	*len = n;
	return data;
}

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A quote taken apart by DCAP.md's layout, every length checked. */
struct walked {
	uint16_t version, key_type, body_type;
	uint32_t tee_type;
	size_t body_off, body_len, signed_len, sig_data_off, end;
	uint32_t sig_data_len;
	const unsigned char *quote_sig, *att_key;
	uint16_t outer_type;
	uint32_t outer_len;
	const unsigned char *qe_report, *qe_sig, *auth;
	uint16_t auth_len;
	uint16_t inner_type;
	uint32_t inner_len;
	const unsigned char *pem;
};

static int walk_quote(const unsigned char *q, size_t n, struct walked *w)
{
	memset(w, 0, sizeof(*w));
	if (n < 48)
		return -1;
	w->version = le16(q);
	w->key_type = le16(q + 2);
	w->tee_type = le32(q + 4);
	size_t off = 48;
	if (w->version == 5) {
		if (n < off + 6)
			return -1;
		w->body_type = le16(q + off);
		w->body_len = le32(q + off + 2);
		off += 6;
	} else {
		w->body_len = 584;
	}
	w->body_off = off;
	if (n - off < w->body_len + 4)
		return -1;
	off += w->body_len;
	w->signed_len = off;
	w->sig_data_len = le32(q + off);
	off += 4;
	w->sig_data_off = off;
	if (n - off < w->sig_data_len || w->sig_data_len < 64 + 64 + 6)
		return -1;
	w->end = off + w->sig_data_len;
	w->quote_sig = q + off;
	w->att_key = q + off + 64;
	off += 128;
	w->outer_type = le16(q + off);
	w->outer_len = le32(q + off + 2);
	off += 6;
	if (w->end - off < w->outer_len || w->outer_len < 384 + 64 + 2)
		return -1;
	size_t outer_end = off + w->outer_len;
	w->qe_report = q + off;
	w->qe_sig = q + off + 384;
	off += 448;
	w->auth_len = le16(q + off);
	off += 2;
	if (outer_end - off < (size_t)w->auth_len + 6)
		return -1;
	w->auth = q + off;
	off += w->auth_len;
	w->inner_type = le16(q + off);
	w->inner_len = le32(q + off + 2);
	off += 6;
	if (outer_end - off < w->inner_len)
		return -1;
	w->pem = q + off;
	return 0;
}

static STACK_OF(X509) *pem_certs(const void *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509 *x;
	while (bio && certs && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(certs, x);
	ERR_clear_error(); /* the read that ends the loop leaves "no start line" */
	BIO_free(bio);
	return certs;
}

static EVP_PKEY *key_from_xy(const unsigned char xy[64])
{
	unsigned char point[65] = { 0x04 };
	memcpy(point + 1, xy, 64);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *k = NULL;
	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) != 1)
		k = NULL;
	EVP_PKEY_CTX_free(ctx);
	return k;
}

/* ECDSA P-256 SHA-256 with a 64-byte r||s signature. */
static bool verify_rs(EVP_PKEY *k, const void *data, size_t len, const unsigned char sig[64])
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
	unsigned char *der = NULL;
	int der_len = -1;
	bool ok = false;
	if (s && r && ss && ECDSA_SIG_set0(s, r, ss) == 1) {
		r = ss = NULL;
		der_len = i2d_ECDSA_SIG(s, &der);
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (der_len > 0 && ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k) == 1)
		ok = EVP_DigestVerify(ctx, der, (size_t)der_len, data, len) == 1;
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	BN_free(r);
	BN_free(ss);
	ECDSA_SIG_free(s);
	return ok;
}

static bool hex_is(const char *hex, const unsigned char *bytes, size_t n)
{
	unsigned char buf[512];
	size_t got = 0;
	return hex && strlen(hex) == 2 * n && n <= sizeof(buf) &&
	       util_hex_decode(hex, 2 * n, buf, sizeof(buf), &got) == 0 && got == n &&
	       memcmp(buf, bytes, n) == 0;
}

/*
 * X509_verify_cert of leaf over intermediates, trusting only anchor, at
 * time at; CRLs (may be NULL) checked for the whole chain.  Returns the
 * X509_V_ code (X509_V_OK when it verifies).
 */
static int verify_chain(X509 *leaf, X509 *intermediate, X509 *anchor, X509_CRL *crl1,
                        X509_CRL *crl2, time_t at)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	int code = -1;
	if (!store || !ctx || !untrusted || X509_STORE_add_cert(store, anchor) != 1)
		goto out;
	if (intermediate)
		sk_X509_push(untrusted, intermediate);
	unsigned long flags = X509_V_FLAG_X509_STRICT;
	if (crl1 || crl2)
		flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
	if ((crl1 && X509_STORE_add_crl(store, crl1) != 1) ||
	    (crl2 && X509_STORE_add_crl(store, crl2) != 1))
		goto out;
	if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1)
		goto out;
	X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(param, flags);
	X509_VERIFY_PARAM_set_time(param, at);
	code = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	if (code == X509_V_OK && X509_STORE_CTX_get_error(ctx) != X509_V_OK)
		code = X509_STORE_CTX_get_error(ctx);
out:
	ERR_clear_error();
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return code;
}

static struct dcapgen *make(const struct dcapgen_options *o)
{
	struct dcapgen *g = NULL;
	if (dcapgen_create(o, &g) < 0)
		return NULL;
	return g;
}

static void defaults(struct dcapgen_options *o)
{
	dcapgen_defaults_at(o, NOW);
}

/* ---- the quote's layout ------------------------------------------------ */

static void check_td_body(const unsigned char *body, const struct dcapgen_quote_options *q,
                          const unsigned char rd[64])
{
	CHECK(memcmp(body + 0, q->tee_tcb_svn, 16) == 0);
	CHECK(memcmp(body + 16, q->mrseam, 48) == 0);
	CHECK(memcmp(body + 64, q->mrsignerseam, 48) == 0);
	CHECK(memcmp(body + 112, q->seam_attributes, 8) == 0);
	CHECK(memcmp(body + 120, q->td_attributes, 8) == 0);
	CHECK(memcmp(body + 128, q->xfam, 8) == 0);
	CHECK(memcmp(body + 136, q->mrtd, 48) == 0);
	CHECK(memcmp(body + 184, q->mrconfigid, 48) == 0);
	CHECK(memcmp(body + 232, q->mrowner, 48) == 0);
	CHECK(memcmp(body + 280, q->mrownerconfig, 48) == 0);
	for (int i = 0; i < 4; i++)
		CHECK(memcmp(body + 328 + 48 * i, q->rtmr[i], 48) == 0, "rtmr%d", i);
	CHECK(memcmp(body + 520, rd, 64) == 0);
}

static void test_sample_walk(void)
{
	test_case("layout walk: Intel's real sample quote, fields as README.md lists them");
	size_t n = 0;
	unsigned char *q = read_file(SAMPLE_DIR "tdx_quote", &n);
	CHECK(q != NULL, "cannot read " SAMPLE_DIR "tdx_quote");
	if (!q)
		return;
	struct walked w;
	CHECK(walk_quote(q, n, &w) == 0);
	CHECK_INT(w.version, 4);
	CHECK_INT(w.key_type, 2);
	CHECK_INT(w.tee_type, 0x81);
	CHECK_INT(w.outer_type, 6);
	CHECK_INT(w.inner_type, 5);
	CHECK_INT(w.auth_len, 32);
	CHECK(hex_is("0000001000000000", q + 48 + 120, 8));
	CHECK(hex_is("9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb4"
	             "81601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20",
	             q + 48 + 520, 64));
	/* Intel's QE report binds Intel's attestation key the same way ours does. */
	unsigned char h[32];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, w.att_key, 64);
	EVP_DigestUpdate(md, w.auth, w.auth_len);
	EVP_DigestFinal_ex(md, h, NULL);
	EVP_MD_CTX_free(md);
	CHECK(memcmp(w.qe_report + 320, h, 32) == 0);
	STACK_OF(X509) *certs = pem_certs(w.pem, w.inner_len);
	CHECK_INT(sk_X509_num(certs), 3);
	CHECK(w.pem[w.inner_len - 1] == '\0', "Intel's PEM ends with a NUL");
	CHECK(verify_rs(X509_get0_pubkey(sk_X509_value(certs, 0)), w.qe_report, 384, w.qe_sig));
	EVP_PKEY *att = key_from_xy(w.att_key);
	CHECK(att && verify_rs(att, q, w.signed_len, w.quote_sig));
	EVP_PKEY_free(att);
	sk_X509_pop_free(certs, X509_free);
	free(q);
}

static void test_quote_v4_layout(void)
{
	test_case("quote v4: header, TD report body and signature data at DCAP.md's offsets");
	struct dcapgen *g = make(NULL);
	CHECK(g != NULL);
	if (!g)
		return;
	struct dcapgen_quote_options qo;
	dcapgen_quote_defaults(&qo);
	qo.qe_svn = 0x0102;
	qo.pce_svn = 0x0304;
	memset(qo.user_data, 0x77, 20);
	memset(qo.mrconfigid, 0x11, 48);
	memset(qo.mrowner, 0x22, 48);
	memset(qo.mrownerconfig, 0x33, 48);
	qo.mrsignerseam[47] = 0x44;
	qo.seam_attributes[7] = 0x55;
	unsigned char rd[64];
	for (int i = 0; i < 64; i++)
		rd[i] = (unsigned char)(200 - i);
	unsigned char *q = NULL;
	size_t n = 0;
	CHECK(dcapgen_quote(g, rd, &qo, &q, &n) == 0);
	struct walked w;
	CHECK(q && walk_quote(q, n, &w) == 0);
	if (!q) {
		dcapgen_destroy(g);
		return;
	}
	CHECK_INT(le16(q + 0), 4);
	CHECK_INT(le16(q + 2), 2);
	CHECK_INT(le32(q + 4), 0x81);
	CHECK_INT(le16(q + 8), 0x0102);
	CHECK_INT(le16(q + 10), 0x0304);
	CHECK(hex_is("939a7233f79c4ca9940a0db3957f0607", q + 12, 16));
	CHECK(memcmp(q + 28, qo.user_data, 20) == 0);
	CHECK_INT(w.body_off, 48);
	CHECK_INT(w.signed_len, 632);
	check_td_body(q + 48, &qo, rd);
	CHECK_INT(w.sig_data_off, 636);
	CHECK_INT(w.end, n);
	CHECK_INT(w.sig_data_len, n - 636);
	unsigned char att[64];
	dcapgen_attestation_key(g, att);
	CHECK(memcmp(q + 636 + 64, att, 64) == 0);
	CHECK_INT(le16(q + 636 + 128), 6);
	CHECK_INT(le32(q + 636 + 130), n - (636 + 134));
	CHECK(w.qe_report == q + 636 + 134);
	CHECK_INT(w.auth_len, 32);
	for (int i = 0; i < 32; i++)
		CHECK_INT(w.auth[i], i);
	CHECK_INT(w.inner_type, 5);
	CHECK_INT((size_t)(w.pem - q) + w.inner_len, n);
	CHECK(w.pem[w.inner_len - 1] == '\0');
	CHECK(memcmp(w.pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);

	/* The PEM chain is leaf, CA, root. */
	STACK_OF(X509) *certs = pem_certs(w.pem, w.inner_len);
	CHECK_INT(sk_X509_num(certs), 3);
	if (sk_X509_num(certs) == 3) {
		CHECK(X509_cmp(sk_X509_value(certs, 0), dcapgen_cert(g, DCAPGEN_PCK_LEAF)) == 0);
		CHECK(X509_cmp(sk_X509_value(certs, 1), dcapgen_cert(g, DCAPGEN_PCK_CA)) == 0);
		CHECK(X509_cmp(sk_X509_value(certs, 2), dcapgen_cert(g, DCAPGEN_ROOT)) == 0);
	}
	sk_X509_pop_free(certs, X509_free);

	/* QE report fields (DCAP.md) from the options. */
	struct dcapgen_options o;
	dcapgen_defaults(&o);
	const unsigned char *r = w.qe_report;
	CHECK(memcmp(r + 0, o.qe_report.cpusvn, 16) == 0);
	CHECK_INT(le32(r + 16), o.qe_report.miscselect);
	CHECK(memcmp(r + 48, o.qe_report.attributes, 16) == 0);
	CHECK(hex_is("1500000000000000e700000000000000", r + 48, 16));
	CHECK(memcmp(r + 64, o.qe_report.mrenclave, 32) == 0);
	CHECK(hex_is("dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5", r + 128, 32));
	CHECK_INT(le16(r + 256), 2);
	CHECK_INT(le16(r + 258), 4);
	free(q);

	test_case("quote v4: report_data NULL is 64 zero bytes; defaults when options are NULL");
	CHECK(dcapgen_quote(g, NULL, NULL, &q, &n) == 0);
	static const unsigned char zeros[64];
	CHECK(q && n > 700 && memcmp(q + 48 + 520, zeros, 64) == 0);
	CHECK(q && hex_is("a0a1a2a3", q + 48 + 136, 4), "MRTD as testagent.h's");
	CHECK(q && hex_is("05000200", q + 48, 4), "TEE_TCB_SVN default");
	CHECK(q && hex_is("0000001000000000", q + 48 + 120, 8), "TD_ATTRIBUTES: no debug");
	free(q);
	dcapgen_destroy(g);
}

static void test_quote_v5_layout(void)
{
	struct dcapgen *g = make(NULL);
	CHECK(g != NULL);
	if (!g)
		return;
	for (int type = 2; type <= 3; type++) {
		test_case("quote v5 body type %d: descriptor, body, signature data", type);
		struct dcapgen_quote_options qo;
		dcapgen_quote_defaults(&qo);
		qo.version = 5;
		qo.body_type = (uint16_t)type;
		memset(qo.mrservicetd, 0x99, 48);
		qo.tee_tcb_svn2[0] = 0x42;
		unsigned char rd[64];
		memset(rd, 0xAB, 64);
		unsigned char *q = NULL;
		size_t n = 0;
		struct walked w;
		CHECK(dcapgen_quote(g, rd, &qo, &q, &n) == 0);
		CHECK(q && walk_quote(q, n, &w) == 0);
		if (!q)
			continue;
		size_t body_len = type == 3 ? 648 : 584;
		CHECK_INT(le16(q), 5);
		CHECK_INT(le16(q + 48), type);
		CHECK_INT(le32(q + 50), body_len);
		CHECK_INT(w.body_off, 54);
		check_td_body(q + 54, &qo, rd);
		if (type == 3) {
			CHECK(memcmp(q + 54 + 584, qo.tee_tcb_svn2, 16) == 0);
			CHECK(memcmp(q + 54 + 600, qo.mrservicetd, 48) == 0);
		}
		CHECK_INT(w.signed_len, 54 + body_len);
		CHECK_INT(w.end, n);
		EVP_PKEY *att = key_from_xy(w.att_key);
		CHECK(att && verify_rs(att, q, w.signed_len, w.quote_sig),
		      "signature covers header, descriptor and body");
		EVP_PKEY_free(att);
		free(q);
	}
	dcapgen_destroy(g);
}

/* ---- signatures in the quote ------------------------------------------- */

static void test_quote_signatures(void)
{
	struct dcapgen *g = make(NULL);
	CHECK(g != NULL);
	if (!g)
		return;
	struct dcapgen_quote_options qo;
	unsigned char *q = NULL;
	size_t n = 0;
	struct walked w;
	unsigned char att[64];
	dcapgen_attestation_key(g, att);

	test_case("quote signature: verifies with the attestation key over header+body");
	dcapgen_quote_defaults(&qo);
	CHECK(dcapgen_quote(g, NULL, &qo, &q, &n) == 0 && walk_quote(q, n, &w) == 0);
	EVP_PKEY *k = key_from_xy(w.att_key);
	CHECK(k && verify_rs(k, q, w.signed_len, w.quote_sig));
	CHECK(verify_rs(dcapgen_key(g, DCAPGEN_ATTESTATION), q, w.signed_len, w.quote_sig));
	q[48 + 200] ^= 1;
	CHECK(!verify_rs(k, q, w.signed_len, w.quote_sig), "a flipped body byte breaks it");
	q[48 + 200] ^= 1;

	test_case("QE report: signed by the PCK leaf; REPORTDATA = SHA-256(key||auth) || zeros");
	STACK_OF(X509) *certs = pem_certs(w.pem, w.inner_len);
	CHECK(sk_X509_num(certs) >= 1 &&
	      verify_rs(X509_get0_pubkey(sk_X509_value(certs, 0)), w.qe_report, 384, w.qe_sig));
	sk_X509_pop_free(certs, X509_free);
	unsigned char bind[64 + 32], h[32];
	memcpy(bind, att, 64);
	memcpy(bind + 64, w.auth, 32);
	SHA256(bind, sizeof(bind), h);
	static const unsigned char zeros[32];
	CHECK(memcmp(w.qe_report + 320, h, 32) == 0);
	CHECK(memcmp(w.qe_report + 352, zeros, 32) == 0);
	EVP_PKEY_free(k);
	free(q);

	test_case("QE auth data of another length is bound too");
	dcapgen_quote_defaults(&qo);
	qo.qe_auth_data_len = 5;
	memcpy(qo.qe_auth_data, "hello", 5);
	CHECK(dcapgen_quote(g, NULL, &qo, &q, &n) == 0 && walk_quote(q, n, &w) == 0);
	CHECK_INT(w.auth_len, 5);
	memcpy(bind + 64, "hello", 5);
	SHA256(bind, 69, h);
	CHECK(memcmp(w.qe_report + 320, h, 32) == 0);
	free(q);
	qo.qe_auth_data_len = DCAPGEN_MAX_AUTH_DATA + 1;
	CHECK(dcapgen_quote(g, NULL, &qo, &q, &n) < 0, "too much auth data is refused");

	test_case("knob bad_quote_signature: only the quote signature fails");
	dcapgen_quote_defaults(&qo);
	qo.bad_quote_signature = true;
	CHECK(dcapgen_quote(g, NULL, &qo, &q, &n) == 0 && walk_quote(q, n, &w) == 0);
	k = key_from_xy(w.att_key);
	CHECK(k && !verify_rs(k, q, w.signed_len, w.quote_sig));
	CHECK(verify_rs(dcapgen_key(g, DCAPGEN_PCK_LEAF), w.qe_report, 384, w.qe_sig));
	EVP_PKEY_free(k);
	free(q);

	test_case("knob bad_qe_report_signature: only the QE report signature fails");
	dcapgen_quote_defaults(&qo);
	qo.bad_qe_report_signature = true;
	CHECK(dcapgen_quote(g, NULL, &qo, &q, &n) == 0 && walk_quote(q, n, &w) == 0);
	CHECK(!verify_rs(dcapgen_key(g, DCAPGEN_PCK_LEAF), w.qe_report, 384, w.qe_sig));
	k = key_from_xy(w.att_key);
	CHECK(k && verify_rs(k, q, w.signed_len, w.quote_sig));
	EVP_PKEY_free(k);
	free(q);

	test_case("knob qe_report_data_unbound: signed QE report that hashes another key");
	dcapgen_quote_defaults(&qo);
	qo.qe_report_data_unbound = true;
	CHECK(dcapgen_quote(g, NULL, &qo, &q, &n) == 0 && walk_quote(q, n, &w) == 0);
	memcpy(bind + 64, w.auth, 32);
	SHA256(bind, sizeof(bind), h);
	CHECK(memcmp(w.qe_report + 320, h, 32) != 0);
	CHECK(memcmp(w.att_key, att, 64) == 0, "the quote still carries the real key");
	CHECK(verify_rs(dcapgen_key(g, DCAPGEN_PCK_LEAF), w.qe_report, 384, w.qe_sig));
	free(q);

	test_case("knob qe_report_data_tail_nonzero: REPORTDATA[32..64] not zero, hash right");
	dcapgen_quote_defaults(&qo);
	qo.qe_report_data_tail_nonzero = true;
	CHECK(dcapgen_quote(g, NULL, &qo, &q, &n) == 0 && walk_quote(q, n, &w) == 0);
	CHECK(memcmp(w.qe_report + 320, h, 32) == 0);
	CHECK(memcmp(w.qe_report + 352, zeros, 32) != 0);
	CHECK(verify_rs(dcapgen_key(g, DCAPGEN_PCK_LEAF), w.qe_report, 384, w.qe_sig));
	free(q);
	dcapgen_destroy(g);
}

static void test_quote_knobs(void)
{
	struct dcapgen *g = make(NULL);
	CHECK(g != NULL);
	if (!g)
		return;
	struct dcapgen_quote_options qo;
	unsigned char *q = NULL;
	size_t n = 0;
	struct walked w;

	test_case("knobs: debug bit, SGX TEE type, version, key type");
	dcapgen_quote_defaults(&qo);
	qo.td_attributes[0] |= 1;
	qo.tee_type = DCAPGEN_TEE_SGX;
	qo.key_type = 3;
	CHECK(dcapgen_quote(g, NULL, &qo, &q, &n) == 0 && walk_quote(q, n, &w) == 0);
	CHECK(q && (q[48 + 120] & 1) == 1);
	CHECK_INT(w.tee_type, 0);
	CHECK_INT(w.key_type, 3);
	free(q);

	test_case("knobs: certification data types");
	dcapgen_quote_defaults(&qo);
	qo.outer_cert_type = 5;
	qo.inner_cert_type = 3;
	CHECK(dcapgen_quote(g, NULL, &qo, &q, &n) == 0 && walk_quote(q, n, &w) == 0);
	CHECK_INT(w.outer_type, 5);
	CHECK_INT(w.inner_type, 3);
	free(q);

	test_case("knobs: chain without root, PEM without NUL, trailing zeros");
	dcapgen_quote_defaults(&qo);
	qo.chain_without_root = true;
	qo.pem_without_nul = true;
	qo.trailing_zeros = 70;
	CHECK(dcapgen_quote(g, NULL, &qo, &q, &n) == 0 && walk_quote(q, n, &w) == 0);
	CHECK_INT(n - w.end, 70);
	CHECK(w.pem && w.pem[w.inner_len - 1] == '\n');
	STACK_OF(X509) *certs = pem_certs(w.pem, w.inner_len);
	CHECK_INT(sk_X509_num(certs), 2);
	sk_X509_pop_free(certs, X509_free);
	free(q);

	test_case("knobs: module fields and TEE_TCB_SVN land in the body");
	dcapgen_quote_defaults(&qo);
	qo.tee_tcb_svn[1] = 1;
	qo.mrsignerseam[0] ^= 1;
	qo.seam_attributes[0] = 1;
	CHECK(dcapgen_quote(g, NULL, &qo, &q, &n) == 0 && walk_quote(q, n, &w) == 0);
	CHECK(q && q[48 + 1] == 1 && q[48 + 64] == 1 && q[48 + 112] == 1);
	free(q);
	dcapgen_destroy(g);

	test_case("knobs: QE report fields follow options.qe_report");
	struct dcapgen_options o;
	defaults(&o);
	o.qe_report.mrsigner[0] ^= 1;
	o.qe_report.isvprodid = 7;
	o.qe_report.isvsvn = 3;
	o.qe_report.miscselect = 0x01020304;
	o.qe_report.attributes[0] ^= 0x01;
	CHECK((g = make(&o)) != NULL);
	if (!g)
		return;
	CHECK(dcapgen_quote(g, NULL, NULL, &q, &n) == 0 && walk_quote(q, n, &w) == 0);
	CHECK(w.qe_report && w.qe_report[128] == (0xDC ^ 1));
	CHECK_INT(le16(w.qe_report + 256), 7);
	CHECK_INT(le16(w.qe_report + 258), 3);
	CHECK_INT(le32(w.qe_report + 16), 0x01020304);
	CHECK_INT(w.qe_report[48], 0x14);
	free(q);
	dcapgen_destroy(g);
}

/* ---- certificates and CRLs --------------------------------------------- */

static void test_chain(void)
{
	struct dcapgen_options o;
	defaults(&o);
	struct dcapgen *g = make(&o);
	CHECK(g != NULL);
	if (!g)
		return;
	X509 *root = dcapgen_cert(g, DCAPGEN_ROOT), *ca = dcapgen_cert(g, DCAPGEN_PCK_CA),
	     *leaf = dcapgen_cert(g, DCAPGEN_PCK_LEAF), *tcb = dcapgen_cert(g, DCAPGEN_TCB_SIGNER);
	X509_CRL *root_crl = dcapgen_root_crl(g), *pck_crl = dcapgen_pck_crl(g);

	test_case("chain: leaf -> CA -> root verifies (strict, with both CRLs)");
	CHECK_INT(verify_chain(leaf, ca, root, NULL, NULL, NOW), X509_V_OK);
	CHECK_INT(verify_chain(leaf, ca, root, root_crl, pck_crl, NOW), X509_V_OK);
	CHECK(dcapgen_cert(g, DCAPGEN_ROGUE_ROOT) == NULL);

	test_case("chain: TCB signer -> root verifies (strict, with the root CRL)");
	CHECK_INT(verify_chain(tcb, NULL, root, root_crl, NULL, NOW), X509_V_OK);

	test_case("chain: outside the validity windows, the defaults fail");
	CHECK_INT(verify_chain(leaf, ca, root, NULL, NULL, NOW - 40 * 86400),
	          X509_V_ERR_CERT_NOT_YET_VALID);
	CHECK_INT(verify_chain(leaf, ca, root, NULL, NULL, NOW + 8 * 365 * 86400L),
	          X509_V_ERR_CERT_HAS_EXPIRED);
	CHECK_INT(verify_chain(leaf, ca, root, root_crl, pck_crl, NOW + 30 * 86400),
	          X509_V_ERR_CRL_HAS_EXPIRED);

	test_case("certificates: Intel's names, extensions and key ids");
	char cn[128];
	X509_NAME_get_text_by_NID(X509_get_subject_name(root), NID_commonName, cn, sizeof(cn));
	CHECK_STR(cn, "Intel SGX Root CA");
	X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn, sizeof(cn));
	CHECK_STR(cn, "Intel SGX PCK Platform CA");
	X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn));
	CHECK_STR(cn, "Intel SGX PCK Certificate");
	X509_NAME_get_text_by_NID(X509_get_subject_name(tcb), NID_commonName, cn, sizeof(cn));
	CHECK_STR(cn, "Intel SGX TCB Signing");
	CHECK(X509_check_ca(root) == 1 && X509_check_ca(ca) == 1);
	CHECK(X509_check_ca(leaf) == 0 && X509_check_ca(tcb) == 0);
	CHECK_INT(X509_get_pathlen(root), 1);
	CHECK_INT(X509_get_pathlen(ca), 0);
	CHECK(X509_get_key_usage(root) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
	CHECK(X509_get_key_usage(leaf) == (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION));
	CHECK(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(root),
	                            X509_get0_subject_key_id(root)) == 0);
	CHECK(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf),
	                            X509_get0_subject_key_id(ca)) == 0);
	CHECK_INT(ASN1_STRING_length(X509_get0_serialNumber(leaf)), 20);
	STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(root, NID_crl_distribution_points, NULL, NULL);
	CHECK(dps && sk_DIST_POINT_num(dps) == 1);
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	dps = X509_get_ext_d2i(leaf, NID_crl_distribution_points, NULL, NULL);
	CHECK(dps && sk_DIST_POINT_num(dps) == 1);
	if (dps && sk_DIST_POINT_num(dps) == 1) {
		GENERAL_NAMES *names = sk_DIST_POINT_value(dps, 0)->distpoint->name.fullname;
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, 0);
		const char *uri = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		CHECK(strstr(uri, "pckcrl?ca=platform") != NULL, "%s", uri);
	}
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	dcapgen_destroy(g);

	struct {
		const char *name;
		struct dcapgen_cert_options *cert;
		bool not_yet;
		int want;
	} windows[] = {
		{ "leaf expired", &o.pck_leaf, false, X509_V_ERR_CERT_HAS_EXPIRED },
		{ "leaf not yet valid", &o.pck_leaf, true, X509_V_ERR_CERT_NOT_YET_VALID },
		{ "CA expired", &o.pck_ca, false, X509_V_ERR_CERT_HAS_EXPIRED },
		{ "CA not yet valid", &o.pck_ca, true, X509_V_ERR_CERT_NOT_YET_VALID },
		{ "TCB signer expired", &o.tcb_signer, false, X509_V_ERR_CERT_HAS_EXPIRED },
		{ "TCB signer not yet valid", &o.tcb_signer, true, X509_V_ERR_CERT_NOT_YET_VALID },
	};
	for (size_t i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
		test_case("knob: %s", windows[i].name);
		defaults(&o);
		if (windows[i].not_yet)
			windows[i].cert->not_before = NOW + 60;
		else
			windows[i].cert->not_after = NOW - 60;
		CHECK((g = make(&o)) != NULL);
		if (!g)
			continue;
		if (windows[i].cert == &o.tcb_signer) {
			CHECK_INT(verify_chain(dcapgen_cert(g, DCAPGEN_TCB_SIGNER), NULL,
			                       dcapgen_cert(g, DCAPGEN_ROOT), NULL, NULL, NOW),
			          windows[i].want);
			CHECK_INT(verify_chain(dcapgen_cert(g, DCAPGEN_PCK_LEAF),
			                       dcapgen_cert(g, DCAPGEN_PCK_CA),
			                       dcapgen_cert(g, DCAPGEN_ROOT), NULL, NULL, NOW),
			          X509_V_OK);
		} else {
			CHECK_INT(verify_chain(dcapgen_cert(g, DCAPGEN_PCK_LEAF),
			                       dcapgen_cert(g, DCAPGEN_PCK_CA),
			                       dcapgen_cert(g, DCAPGEN_ROOT), NULL, NULL, NOW),
			          windows[i].want);
		}
		dcapgen_destroy(g);
	}

	test_case("knob: wrong_signer on the leaf, the CA and the TCB signer");
	defaults(&o);
	o.pck_leaf.wrong_signer = true;
	CHECK((g = make(&o)) != NULL);
	if (g) {
		CHECK_INT(verify_chain(dcapgen_cert(g, DCAPGEN_PCK_LEAF), dcapgen_cert(g, DCAPGEN_PCK_CA),
		                       dcapgen_cert(g, DCAPGEN_ROOT), NULL, NULL, NOW),
		          X509_V_ERR_CERT_SIGNATURE_FAILURE);
		dcapgen_destroy(g);
	}
	defaults(&o);
	o.pck_ca.wrong_signer = true;
	o.tcb_signer.wrong_signer = true;
	CHECK((g = make(&o)) != NULL);
	if (g) {
		/* Only the quote's copy of the CA is broken; the collateral's is sound. */
		X509 *bad = dcapgen_cert(g, DCAPGEN_PCK_CA), *good = dcapgen_cert(g, DCAPGEN_CRL_CA);
		CHECK(X509_cmp(bad, good) != 0);
		CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber(bad), X509_get0_serialNumber(good)) == 0);
		CHECK(EVP_PKEY_eq(X509_get0_pubkey(bad), X509_get0_pubkey(good)) == 1);
		CHECK_INT(verify_chain(good, NULL, dcapgen_cert(g, DCAPGEN_ROOT), NULL, NULL, NOW),
		          X509_V_OK);
		CHECK_INT(verify_chain(dcapgen_cert(g, DCAPGEN_PCK_LEAF), dcapgen_cert(g, DCAPGEN_PCK_CA),
		                       dcapgen_cert(g, DCAPGEN_ROOT), NULL, NULL, NOW),
		          X509_V_ERR_CERT_SIGNATURE_FAILURE);
		CHECK_INT(verify_chain(dcapgen_cert(g, DCAPGEN_TCB_SIGNER), NULL,
		                       dcapgen_cert(g, DCAPGEN_ROOT), NULL, NULL, NOW),
		          X509_V_ERR_CERT_SIGNATURE_FAILURE);
		dcapgen_destroy(g);
	}

	test_case("knob: pck_chain_rogue_root: the chain ends at a root that is not pinned");
	defaults(&o);
	o.pck_chain_rogue_root = true;
	CHECK((g = make(&o)) != NULL);
	if (g) {
		X509 *rogue = dcapgen_cert(g, DCAPGEN_ROGUE_ROOT);
		CHECK(rogue != NULL && X509_cmp(rogue, dcapgen_cert(g, DCAPGEN_ROOT)) != 0);
		CHECK(X509_NAME_cmp(X509_get_subject_name(rogue),
		                    X509_get_subject_name(dcapgen_cert(g, DCAPGEN_ROOT))) == 0,
		      "same name as the pinned root");
		CHECK(verify_chain(dcapgen_cert(g, DCAPGEN_PCK_LEAF), dcapgen_cert(g, DCAPGEN_PCK_CA),
		                   dcapgen_cert(g, DCAPGEN_ROOT), NULL, NULL, NOW) != X509_V_OK);
		CHECK_INT(verify_chain(dcapgen_cert(g, DCAPGEN_PCK_LEAF), dcapgen_cert(g, DCAPGEN_PCK_CA),
		                       rogue, NULL, NULL, NOW),
		          X509_V_OK);
		CHECK_INT(verify_chain(dcapgen_cert(g, DCAPGEN_TCB_SIGNER), NULL,
		                       dcapgen_cert(g, DCAPGEN_ROOT), NULL, NULL, NOW),
		          X509_V_OK);
		unsigned char *q = NULL;
		size_t n = 0;
		struct walked w;
		CHECK(dcapgen_quote(g, NULL, NULL, &q, &n) == 0 && walk_quote(q, n, &w) == 0);
		STACK_OF(X509) *certs = pem_certs(w.pem, w.inner_len);
		CHECK(sk_X509_num(certs) == 3 && X509_cmp(sk_X509_value(certs, 2), rogue) == 0);
		sk_X509_pop_free(certs, X509_free);
		free(q);
		/* The collateral stays genuine: the real CA under the pinned root. */
		X509 *crl_ca = dcapgen_cert(g, DCAPGEN_CRL_CA);
		CHECK(crl_ca && X509_cmp(crl_ca, dcapgen_cert(g, DCAPGEN_PCK_CA)) != 0);
		CHECK_INT(verify_chain(crl_ca, NULL, dcapgen_cert(g, DCAPGEN_ROOT), NULL, NULL, NOW),
		          X509_V_OK);
		CHECK(X509_CRL_verify(dcapgen_pck_crl(g), X509_get0_pubkey(crl_ca)) == 1);
		char *json = NULL;
		CHECK(dcapgen_collateral_json(g, &json) == 0);
		struct json_object *c = json ? json_tokener_parse(json) : NULL;
		struct json_object *chain_value = NULL;
		CHECK(c && json_object_object_get_ex(c, "pck_crl_issuer_chain", &chain_value));
		const char *chain = json_object_get_string(chain_value);
		certs = chain ? pem_certs(chain, strlen(chain)) : NULL;
		CHECK(sk_X509_num(certs) == 2 && X509_cmp(sk_X509_value(certs, 0), crl_ca) == 0 &&
		      X509_cmp(sk_X509_value(certs, 1), dcapgen_cert(g, DCAPGEN_ROOT)) == 0);
		sk_X509_pop_free(certs, X509_free);
		json_object_put(c);
		free(json);
		char *pem = NULL;
		CHECK(dcapgen_root_pem(g, &pem) == 0);
		STACK_OF(X509) *pinned = pem_certs(pem, strlen(pem));
		CHECK(sk_X509_num(pinned) == 1 &&
		      X509_cmp(sk_X509_value(pinned, 0), dcapgen_cert(g, DCAPGEN_ROOT)) == 0);
		sk_X509_pop_free(pinned, X509_free);
		free(pem);
		dcapgen_destroy(g);
	}

	test_case("knob: tcb_chain_rogue_root: the TCB signer chains to an unpinned root");
	defaults(&o);
	o.tcb_chain_rogue_root = true;
	CHECK((g = make(&o)) != NULL);
	if (g) {
		CHECK(verify_chain(dcapgen_cert(g, DCAPGEN_TCB_SIGNER), NULL,
		                   dcapgen_cert(g, DCAPGEN_ROOT), NULL, NULL, NOW) != X509_V_OK);
		CHECK_INT(verify_chain(dcapgen_cert(g, DCAPGEN_PCK_LEAF), dcapgen_cert(g, DCAPGEN_PCK_CA),
		                       dcapgen_cert(g, DCAPGEN_ROOT), NULL, NULL, NOW),
		          X509_V_OK);
		dcapgen_destroy(g);
	}
}

static bool crl_lists(X509_CRL *crl, X509 *x)
{
	X509_REVOKED *r = NULL;
	return X509_CRL_get0_by_serial(crl, &r, X509_get0_serialNumber(x)) == 1;
}

static void test_crls(void)
{
	struct dcapgen_options o;
	defaults(&o);
	struct dcapgen *g = make(&o);
	CHECK(g != NULL);
	if (!g)
		return;

	test_case("CRLs: each verifies with its issuer's key, v2, Intel's dates and extensions");
	X509_CRL *root_crl = dcapgen_root_crl(g), *pck_crl = dcapgen_pck_crl(g);
	CHECK(X509_CRL_verify(root_crl, X509_get0_pubkey(dcapgen_cert(g, DCAPGEN_ROOT))) == 1);
	CHECK(X509_CRL_verify(pck_crl, X509_get0_pubkey(dcapgen_cert(g, DCAPGEN_PCK_CA))) == 1);
	CHECK(X509_CRL_verify(pck_crl, X509_get0_pubkey(dcapgen_cert(g, DCAPGEN_ROOT))) != 1);
	ERR_clear_error();
	CHECK_INT(X509_CRL_get_version(root_crl), 1);
	CHECK(X509_NAME_cmp(X509_CRL_get_issuer(pck_crl),
	                    X509_get_subject_name(dcapgen_cert(g, DCAPGEN_PCK_CA))) == 0);
	CHECK(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(pck_crl), NOW - 86400) == 0);
	CHECK(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(pck_crl), NOW + 29 * 86400) == 0);
	CHECK(X509_CRL_get_ext_by_NID(root_crl, NID_crl_number, -1) >= 0);
	CHECK(X509_CRL_get_ext_by_NID(root_crl, NID_authority_key_identifier, -1) >= 0);
	/* Nothing revoked: no revokedCertificates field at all, as in Intel's root CRL. */
	CHECK(X509_CRL_get_REVOKED(root_crl) == NULL);
	CHECK_INT(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(pck_crl)), 2);
	CHECK(!crl_lists(pck_crl, dcapgen_cert(g, DCAPGEN_PCK_LEAF)));
	dcapgen_destroy(g);

	test_case("knob: pck_leaf.revoked lists the leaf in the PCK CRL");
	defaults(&o);
	o.pck_leaf.revoked = true;
	o.pck_crl.extra_revoked = 5;
	CHECK((g = make(&o)) != NULL);
	if (g) {
		CHECK(crl_lists(dcapgen_pck_crl(g), dcapgen_cert(g, DCAPGEN_PCK_LEAF)));
		CHECK_INT(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(dcapgen_pck_crl(g))), 6);
		X509_REVOKED *r = NULL;
		X509_CRL_get0_by_serial(dcapgen_pck_crl(g), &r,
		                        X509_get0_serialNumber(dcapgen_cert(g, DCAPGEN_PCK_LEAF)));
		ASN1_ENUMERATED *reason = r ? X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL)
		                            : NULL;
		CHECK(reason && ASN1_ENUMERATED_get(reason) == CRL_REASON_KEY_COMPROMISE);
		ASN1_ENUMERATED_free(reason);
		CHECK_INT(verify_chain(dcapgen_cert(g, DCAPGEN_PCK_LEAF), dcapgen_cert(g, DCAPGEN_PCK_CA),
		                       dcapgen_cert(g, DCAPGEN_ROOT), dcapgen_root_crl(g),
		                       dcapgen_pck_crl(g), NOW),
		          X509_V_ERR_CERT_REVOKED);
		dcapgen_destroy(g);
	}

	test_case("knob: pck_ca.revoked and tcb_signer.revoked list them in the root CRL");
	defaults(&o);
	o.pck_ca.revoked = true;
	o.tcb_signer.revoked = true;
	CHECK((g = make(&o)) != NULL);
	if (g) {
		CHECK(crl_lists(dcapgen_root_crl(g), dcapgen_cert(g, DCAPGEN_PCK_CA)));
		CHECK(crl_lists(dcapgen_root_crl(g), dcapgen_cert(g, DCAPGEN_TCB_SIGNER)));
		CHECK(!crl_lists(dcapgen_pck_crl(g), dcapgen_cert(g, DCAPGEN_PCK_LEAF)));
		CHECK_INT(verify_chain(dcapgen_cert(g, DCAPGEN_PCK_LEAF), dcapgen_cert(g, DCAPGEN_PCK_CA),
		                       dcapgen_cert(g, DCAPGEN_ROOT), dcapgen_root_crl(g),
		                       dcapgen_pck_crl(g), NOW),
		          X509_V_ERR_CERT_REVOKED);
		CHECK_INT(verify_chain(dcapgen_cert(g, DCAPGEN_TCB_SIGNER), NULL,
		                       dcapgen_cert(g, DCAPGEN_ROOT), dcapgen_root_crl(g), NULL, NOW),
		          X509_V_ERR_CERT_REVOKED);
		dcapgen_destroy(g);
	}

	test_case("knob: expired CRLs and CRLs signed by a stray key");
	defaults(&o);
	o.root_crl.next_update = NOW - 60;
	o.pck_crl.wrong_signer = true;
	CHECK((g = make(&o)) != NULL);
	if (g) {
		CHECK(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(dcapgen_root_crl(g)), NOW) < 0);
		CHECK(X509_CRL_verify(dcapgen_pck_crl(g),
		                      X509_get0_pubkey(dcapgen_cert(g, DCAPGEN_PCK_CA))) != 1);
		ERR_clear_error();
		CHECK_INT(verify_chain(dcapgen_cert(g, DCAPGEN_PCK_LEAF), dcapgen_cert(g, DCAPGEN_PCK_CA),
		                       dcapgen_cert(g, DCAPGEN_ROOT), NULL, dcapgen_pck_crl(g), NOW),
		          X509_V_ERR_CRL_SIGNATURE_FAILURE);
		dcapgen_destroy(g);
	}
}

/* ---- the SGX extension ------------------------------------------------- */

/* The SEQUENCE { OID, value } pairs of a DER SEQUENCE OF, as ASN1_TYPEs. */
static ASN1_SEQUENCE_ANY *decode_seq(const unsigned char *der, long len)
{
	const unsigned char *p = der;
	ASN1_SEQUENCE_ANY *s = d2i_ASN1_SEQUENCE_ANY(NULL, &p, len);
	if (s && p != der + len) {
		sk_ASN1_TYPE_pop_free(s, ASN1_TYPE_free);
		return NULL;
	}
	return s;
}

/* Finds SGX_OID.<sub> among the pairs of seq; returns its value. */
static ASN1_TYPE *sgx_find(ASN1_SEQUENCE_ANY *seq, const char *sub, ASN1_SEQUENCE_ANY **pair_out)
{
	char want[64], got[64];
	snprintf(want, sizeof(want), SGX_OID ".%s", sub);
	for (int i = 0; i < sk_ASN1_TYPE_num(seq); i++) {
		ASN1_TYPE *t = sk_ASN1_TYPE_value(seq, i);
		if (t->type != V_ASN1_SEQUENCE)
			continue;
		ASN1_SEQUENCE_ANY *pair =
			decode_seq(t->value.sequence->data, t->value.sequence->length);
		if (pair && sk_ASN1_TYPE_num(pair) == 2 &&
		    sk_ASN1_TYPE_value(pair, 0)->type == V_ASN1_OBJECT &&
		    OBJ_obj2txt(got, sizeof(got), sk_ASN1_TYPE_value(pair, 0)->value.object, 1) > 0 &&
		    strcmp(got, want) == 0) {
			*pair_out = pair;
			return sk_ASN1_TYPE_value(pair, 1);
		}
		sk_ASN1_TYPE_pop_free(pair, ASN1_TYPE_free);
	}
	*pair_out = NULL;
	return NULL;
}

static bool sgx_octets(ASN1_SEQUENCE_ANY *seq, const char *sub, const unsigned char *want, int n)
{
	ASN1_SEQUENCE_ANY *pair;
	ASN1_TYPE *v = sgx_find(seq, sub, &pair);
	bool ok = v && v->type == V_ASN1_OCTET_STRING &&
	          ASN1_STRING_length(v->value.octet_string) == n &&
	          memcmp(ASN1_STRING_get0_data(v->value.octet_string), want, (size_t)n) == 0;
	sk_ASN1_TYPE_pop_free(pair, ASN1_TYPE_free);
	return ok;
}

static long sgx_integer(ASN1_SEQUENCE_ANY *seq, const char *sub, int type)
{
	ASN1_SEQUENCE_ANY *pair;
	ASN1_TYPE *v = sgx_find(seq, sub, &pair);
	long value = -1;
	if (v && v->type == type && type == V_ASN1_INTEGER)
		value = ASN1_INTEGER_get(v->value.integer);
	else if (v && v->type == type && type == V_ASN1_ENUMERATED)
		value = ASN1_ENUMERATED_get(v->value.enumerated);
	sk_ASN1_TYPE_pop_free(pair, ASN1_TYPE_free);
	return value;
}

/* The decoded extension of cert, NULL if it has none. */
static ASN1_SEQUENCE_ANY *sgx_extension(X509 *cert, bool *critical)
{
	ASN1_OBJECT *oid = OBJ_txt2obj(SGX_OID, 1);
	int idx = X509_get_ext_by_OBJ(cert, oid, -1);
	ASN1_OBJECT_free(oid);
	if (idx < 0)
		return NULL;
	X509_EXTENSION *e = X509_get_ext(cert, idx);
	*critical = X509_EXTENSION_get_critical(e);
	ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(e);
	return decode_seq(ASN1_STRING_get0_data(v), ASN1_STRING_length(v));
}

static void test_sgx_extension(void)
{
	struct dcapgen_options o;
	defaults(&o);
	/* Values a sloppy decoder would get wrong: 0x80+ needs a leading zero byte. */
	for (int i = 0; i < 16; i++)
		o.platform.sgx_svn[i] = (unsigned char)(i * 17);
	o.platform.pcesvn = 0x1234;
	o.platform.cpusvn[15] = 0xFE;
	memcpy(o.platform.fmspc, "\x00\x90\x6E\xA1\x00\x00", 6);
	memcpy(o.platform.pce_id, "\x01\x02", 2);
	/* Keep the TCB info's own levels; only the certificate is checked here. */
	struct dcapgen *g = make(&o);
	CHECK(g != NULL);
	if (!g)
		return;

	test_case("SGX extension: decodes back to PPID, 16 SVNs, PCESVN, CPUSVN, PCE-ID, FMSPC");
	bool critical = true;
	ASN1_SEQUENCE_ANY *ext = sgx_extension(dcapgen_cert(g, DCAPGEN_PCK_LEAF), &critical);
	CHECK(ext != NULL);
	CHECK(!critical);
	if (ext) {
		CHECK(sgx_octets(ext, "1", o.platform.ppid, 16));
		CHECK(sgx_octets(ext, "3", o.platform.pce_id, 2));
		CHECK(sgx_octets(ext, "4", o.platform.fmspc, 6));
		CHECK_INT(sgx_integer(ext, "5", V_ASN1_ENUMERATED), 1);
		ASN1_SEQUENCE_ANY *pair;
		ASN1_TYPE *v = sgx_find(ext, "6", &pair);
		CHECK(v && v->type == V_ASN1_OCTET_STRING);
		sk_ASN1_TYPE_pop_free(pair, ASN1_TYPE_free);
		v = sgx_find(ext, "7", &pair);
		CHECK(v && v->type == V_ASN1_SEQUENCE);
		sk_ASN1_TYPE_pop_free(pair, ASN1_TYPE_free);
		v = sgx_find(ext, "2", &pair);
		CHECK(v && v->type == V_ASN1_SEQUENCE);
		if (v && v->type == V_ASN1_SEQUENCE) {
			ASN1_SEQUENCE_ANY *tcb =
				decode_seq(v->value.sequence->data, v->value.sequence->length);
			CHECK(tcb && sk_ASN1_TYPE_num(tcb) == 18);
			char sub[16];
			for (int i = 1; tcb && i <= 16; i++) {
				snprintf(sub, sizeof(sub), "2.%d", i);
				CHECK_INT(sgx_integer(tcb, sub, V_ASN1_INTEGER), o.platform.sgx_svn[i - 1]);
			}
			if (tcb) {
				CHECK_INT(sgx_integer(tcb, "2.17", V_ASN1_INTEGER), 0x1234);
				CHECK(sgx_octets(tcb, "2.18", o.platform.cpusvn, 16));
			}
			sk_ASN1_TYPE_pop_free(tcb, ASN1_TYPE_free);
		}
		sk_ASN1_TYPE_pop_free(pair, ASN1_TYPE_free);
	}
	sk_ASN1_TYPE_pop_free(ext, ASN1_TYPE_free);
	CHECK(sgx_extension(dcapgen_cert(g, DCAPGEN_PCK_CA), &critical) == NULL,
	      "only the leaf carries it");
	dcapgen_destroy(g);

	test_case("SGX extension: the same shape as in Intel's real PCK certificate");
	size_t n = 0;
	unsigned char *q = read_file(SAMPLE_DIR "tdx_quote", &n);
	struct walked w;
	CHECK(q && walk_quote(q, n, &w) == 0);
	if (q) {
		STACK_OF(X509) *certs = pem_certs(w.pem, w.inner_len);
		ext = sk_X509_num(certs) > 0 ? sgx_extension(sk_X509_value(certs, 0), &critical)
		                             : NULL;
		CHECK(ext != NULL);
		if (ext) {
			CHECK(sgx_octets(ext, "4", (const unsigned char *)"\xB0\xC0\x6F\x00\x00\x00", 6));
			CHECK_INT(sgx_integer(ext, "5", V_ASN1_ENUMERATED), 1);
		}
		sk_ASN1_TYPE_pop_free(ext, ASN1_TYPE_free);
		sk_X509_pop_free(certs, X509_free);
		free(q);
	}

	test_case("knob: platform.processor_ca: Processor CA, SGX type 0, no .6/.7");
	defaults(&o);
	o.platform.processor_ca = true;
	CHECK((g = make(&o)) != NULL);
	if (!g)
		return;
	char cn[128];
	X509_NAME_get_text_by_NID(X509_get_subject_name(dcapgen_cert(g, DCAPGEN_PCK_CA)),
	                          NID_commonName, cn, sizeof(cn));
	CHECK_STR(cn, "Intel SGX PCK Processor CA");
	ext = sgx_extension(dcapgen_cert(g, DCAPGEN_PCK_LEAF), &critical);
	CHECK(ext && sk_ASN1_TYPE_num(ext) == 5);
	if (ext)
		CHECK_INT(sgx_integer(ext, "5", V_ASN1_ENUMERATED), 0);
	sk_ASN1_TYPE_pop_free(ext, ASN1_TYPE_free);
	CHECK_INT(verify_chain(dcapgen_cert(g, DCAPGEN_PCK_LEAF), dcapgen_cert(g, DCAPGEN_PCK_CA),
	                       dcapgen_cert(g, DCAPGEN_ROOT), dcapgen_root_crl(g), dcapgen_pck_crl(g),
	                       NOW),
	          X509_V_OK);
	dcapgen_destroy(g);
}

/* ---- TCB info and QE identity ------------------------------------------ */

/* Every key of every object in the tree, as "path.key" lines, arrays merged. */
static void key_paths(struct json_object *v, const char *path, struct json_object *set)
{
	if (json_object_is_type(v, json_type_object)) {
		json_object_object_foreach(v, key, child) {
			char p[256];
			snprintf(p, sizeof(p), "%s.%s", path, key);
			json_object_object_add(set, p, NULL);
			key_paths(child, p, set);
		}
	} else if (json_object_is_type(v, json_type_array)) {
		char p[256];
		snprintf(p, sizeof(p), "%s[]", path);
		for (size_t i = 0; i < json_object_array_length(v); i++)
			key_paths(json_object_array_get_idx(v, i), p, set);
	}
}

/* Whether every key path of a is in b and back; names the first difference. */
static bool same_keys(struct json_object *a, struct json_object *b, char *diff, size_t diff_size)
{
	struct json_object *ka = json_object_new_object(), *kb = json_object_new_object();
	key_paths(a, "", ka);
	key_paths(b, "", kb);
	bool same = true;
	json_object_object_foreach(ka, key, unused_a) {
		(void)unused_a;
		if (!json_object_object_get_ex(kb, key, NULL)) {
			snprintf(diff, diff_size, "only ours: %s", key);
			same = false;
			break;
		}
	}
	json_object_object_foreach(kb, key2, unused_b) {
		(void)unused_b;
		if (same && !json_object_object_get_ex(ka, key2, NULL)) {
			snprintf(diff, diff_size, "only Intel's: %s", key2);
			same = false;
		}
	}
	json_object_put(ka);
	json_object_put(kb);
	return same;
}

static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
	               ? json_object_get_string(v)
	               : NULL;
}

static int64_t get_int(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int)
	               ? json_object_get_int64(v)
	               : -1;
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	json_object_object_get_ex(o, key, &v);
	return v;
}

static void test_signed_texts(void)
{
	struct dcapgen_options o;
	defaults(&o);
	struct dcapgen *g = make(&o);
	CHECK(g != NULL);
	if (!g)
		return;
	EVP_PKEY *tcb_key = X509_get0_pubkey(dcapgen_cert(g, DCAPGEN_TCB_SIGNER));
	const char *ti = dcapgen_tcb_info_text(g), *qi = dcapgen_qe_identity_text(g);

	test_case("TCB info / QE identity: signatures verify over the exact text");
	CHECK(verify_rs(tcb_key, ti, strlen(ti), dcapgen_tcb_info_signature(g)));
	CHECK(verify_rs(tcb_key, qi, strlen(qi), dcapgen_qe_identity_signature(g)));
	CHECK(!verify_rs(tcb_key, ti, strlen(ti) - 1, dcapgen_tcb_info_signature(g)));
	CHECK(!verify_rs(tcb_key, qi, strlen(qi), dcapgen_tcb_info_signature(g)));

	test_case("TCB info: TDX v3 with the platform's FMSPC and PCE-ID, levels in order");
	struct json_object *t = json_tokener_parse(ti);
	CHECK(t != NULL, "%s", ti);
	CHECK_STR(get_str(t, "id"), "TDX");
	CHECK_INT(get_int(t, "version"), 3);
	CHECK_STR(get_str(t, "fmspc"), "90C06F000000");
	CHECK_STR(get_str(t, "pceId"), "0000");
	CHECK_INT(get_int(t, "tcbType"), 0);
	CHECK_INT(get_int(t, "tcbEvaluationDataNumber"), 17);
	CHECK_STR(get_str(t, "issueDate"), "2025-10-08T08:53:20Z");
	CHECK_STR(get_str(t, "nextUpdate"), "2025-11-07T08:53:20Z");
	struct json_object *levels = get(t, "tcbLevels");
	CHECK(levels && json_object_array_length(levels) == 2);
	if (levels && json_object_array_length(levels) == 2) {
		struct json_object *l0 = json_object_array_get_idx(levels, 0);
		struct json_object *l1 = json_object_array_get_idx(levels, 1);
		CHECK_STR(get_str(l0, "tcbStatus"), "UpToDate");
		CHECK(get(l0, "advisoryIDs") == NULL);
		CHECK_STR(get_str(l1, "tcbStatus"), "OutOfDate");
		CHECK_INT(json_object_array_length(get(l1, "advisoryIDs")), 2);
		struct json_object *tcb = get(l0, "tcb");
		CHECK_INT(get_int(tcb, "pcesvn"), 11);
		CHECK_INT(get_int(get(l1, "tcb"), "pcesvn"), 5);
		CHECK_INT(json_object_array_length(get(tcb, "sgxtcbcomponents")), 16);
		CHECK_INT(json_object_array_length(get(tcb, "tdxtcbcomponents")), 16);
		CHECK_INT(get_int(json_object_array_get_idx(get(tcb, "sgxtcbcomponents"), 4), "svn"), 3);
		CHECK_INT(get_int(json_object_array_get_idx(get(tcb, "tdxtcbcomponents"), 2), "svn"), 2);
	}
	struct json_object *ids = get(t, "tdxModuleIdentities");
	CHECK(ids && json_object_array_length(ids) == 2);
	if (ids && json_object_array_length(ids) == 2) {
		CHECK_STR(get_str(json_object_array_get_idx(ids, 0), "id"), "TDX_03");
		CHECK_STR(get_str(json_object_array_get_idx(ids, 1), "id"), "TDX_01");
	}
	CHECK_STR(get_str(get(t, "tdxModule"), "attributesMask"), "FFFFFFFFFFFFFFFF");

	test_case("TCB info: the same key paths as Intel's sample");
	size_t n = 0;
	char *sample_text = (char *)read_file(SAMPLE_DIR "tdx_quote_outdated_collateral.json", &n);
	struct json_object *sample = sample_text ? json_tokener_parse(sample_text) : NULL;
	CHECK(sample != NULL, "cannot read the sample collateral");
	char diff[300] = "";
	struct json_object *sample_ti = sample ? json_tokener_parse(get_str(sample, "tcb_info")) : NULL;
	struct json_object *sample_qi =
		sample ? json_tokener_parse(get_str(sample, "qe_identity")) : NULL;
	CHECK(sample_ti && same_keys(t, sample_ti, diff, sizeof(diff)), "%s", diff);
	json_object_put(t);

	test_case("QE identity: TD_QE v2, masks, MRSIGNER, levels; Intel's key paths");
	struct json_object *qj = json_tokener_parse(qi);
	CHECK(qj != NULL, "%s", qi);
	CHECK_STR(get_str(qj, "id"), "TD_QE");
	CHECK_INT(get_int(qj, "version"), 2);
	CHECK_STR(get_str(qj, "miscselect"), "00000000");
	CHECK_STR(get_str(qj, "miscselectMask"), "FFFFFFFF");
	CHECK_STR(get_str(qj, "attributes"), "11000000000000000000000000000000");
	CHECK_STR(get_str(qj, "attributesMask"), "FBFFFFFFFFFFFFFF0000000000000000");
	CHECK_STR(get_str(qj, "mrsigner"),
	          "DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5");
	CHECK_INT(get_int(qj, "isvprodid"), 2);
	struct json_object *ql = get(qj, "tcbLevels");
	CHECK(ql && json_object_array_length(ql) == 2);
	if (ql && json_object_array_length(ql) == 2) {
		CHECK_INT(get_int(get(json_object_array_get_idx(ql, 0), "tcb"), "isvsvn"), 4);
		CHECK_STR(get_str(json_object_array_get_idx(ql, 1), "tcbStatus"), "OutOfDate");
	}
	/* Intel's QE identity has no advisoryIDs at the moment; ours adds them on level 2. */
	struct json_object *qj_no_adv = json_tokener_parse(qi);
	if (qj_no_adv && ql && json_object_array_length(ql) == 2)
		json_object_object_del(json_object_array_get_idx(get(qj_no_adv, "tcbLevels"), 1),
		                       "advisoryIDs");
	CHECK(sample_qi && same_keys(qj_no_adv, sample_qi, diff, sizeof(diff)), "%s", diff);
	json_object_put(qj_no_adv);
	json_object_put(qj);
	json_object_put(sample_ti);
	json_object_put(sample_qi);
	json_object_put(sample);
	free(sample_text);
	dcapgen_destroy(g);

	test_case("knobs: bad signatures on TCB info and QE identity");
	defaults(&o);
	o.tcb_info.bad_signature = true;
	o.qe_identity.bad_signature = true;
	CHECK((g = make(&o)) != NULL);
	if (g) {
		tcb_key = X509_get0_pubkey(dcapgen_cert(g, DCAPGEN_TCB_SIGNER));
		ti = dcapgen_tcb_info_text(g);
		qi = dcapgen_qe_identity_text(g);
		CHECK(!verify_rs(tcb_key, ti, strlen(ti), dcapgen_tcb_info_signature(g)));
		CHECK(!verify_rs(tcb_key, qi, strlen(qi), dcapgen_qe_identity_signature(g)));
		dcapgen_destroy(g);
	}

	test_case("knobs: FMSPC / PCE-ID mismatch, past nextUpdate, statuses, advisories");
	defaults(&o);
	o.tcb_info.fmspc_mismatch = true;
	o.tcb_info.pce_id_mismatch = true;
	o.tcb_info.next_update = NOW - 1;
	o.qe_identity.next_update = NOW - 1;
	o.tcb_info.levels[0].tcb_status = DCAPGEN_SW_HARDENING_NEEDED;
	o.tcb_info.levels[0].advisory_ids[0] = "INTEL-SA-00001";
	o.tcb_info.module_identity_count = 0;
	o.qe_identity.levels[0].tcb_status = DCAPGEN_REVOKED;
	o.qe_identity.miscselect = 0x01020304;
	CHECK((g = make(&o)) != NULL);
	if (g) {
		t = json_tokener_parse(dcapgen_tcb_info_text(g));
		CHECK_STR(get_str(t, "fmspc"), "90C06F000001");
		CHECK_STR(get_str(t, "pceId"), "0001");
		CHECK_STR(get_str(t, "nextUpdate"), "2025-10-09T08:53:19Z");
		CHECK(get(t, "tdxModuleIdentities") == NULL);
		struct json_object *l0 = json_object_array_get_idx(get(t, "tcbLevels"), 0);
		CHECK_STR(get_str(l0, "tcbStatus"), "SWHardeningNeeded");
		CHECK_STR(json_object_get_string(json_object_array_get_idx(get(l0, "advisoryIDs"), 0)),
		          "INTEL-SA-00001");
		json_object_put(t);
		qj = json_tokener_parse(dcapgen_qe_identity_text(g));
		CHECK_STR(get_str(qj, "nextUpdate"), "2025-10-09T08:53:19Z");
		CHECK_STR(get_str(qj, "miscselect"), "04030201"); /* the bytes in report order */
		CHECK_STR(get_str(json_object_array_get_idx(get(qj, "tcbLevels"), 0), "tcbStatus"),
		          "Revoked");
		json_object_put(qj);
		dcapgen_destroy(g);
	}
}

/* ---- collateral JSON, root PEM ------------------------------------------ */

static void test_collateral(void)
{
	struct dcapgen_options o;
	defaults(&o);
	o.pck_leaf.revoked = true;
	struct dcapgen *g = make(&o);
	CHECK(g != NULL);
	if (!g)
		return;
	char *json = NULL;

	test_case("collateral: the sample's field names, all strings");
	CHECK(dcapgen_collateral_json(g, &json) == 0);
	struct json_object *c = json ? json_tokener_parse(json) : NULL;
	CHECK(c != NULL);
	size_t n = 0;
	char *sample_text = (char *)read_file(SAMPLE_DIR "tdx_quote_collateral.json", &n);
	struct json_object *sample = sample_text ? json_tokener_parse(sample_text) : NULL;
	CHECK(sample != NULL);
	if (c && sample) {
		CHECK_INT(json_object_object_length(c), json_object_object_length(sample));
		json_object_object_foreach(sample, key, value) {
			struct json_object *ours = get(c, key);
			CHECK(ours && json_object_is_type(ours, json_type_string), "%s", key);
			CHECK(json_object_get_type(value) == json_type_string, "%s", key);
		}
	}

	test_case("collateral: values round-trip to the generator's objects");
	if (c) {
		CHECK_STR(get_str(c, "tcb_info"), dcapgen_tcb_info_text(g));
		CHECK_STR(get_str(c, "qe_identity"), dcapgen_qe_identity_text(g));
		CHECK(hex_is(get_str(c, "tcb_info_signature"), dcapgen_tcb_info_signature(g), 64));
		CHECK(hex_is(get_str(c, "qe_identity_signature"), dcapgen_qe_identity_signature(g),
		             64));
		unsigned char *der = NULL;
		int der_len = i2d_X509_CRL(dcapgen_pck_crl(g), &der);
		CHECK(der_len > 0 && hex_is(get_str(c, "pck_crl"), der, (size_t)der_len));
		OPENSSL_free(der);
		der = NULL;
		der_len = i2d_X509_CRL(dcapgen_root_crl(g), &der);
		CHECK(der_len > 0 && hex_is(get_str(c, "root_ca_crl"), der, (size_t)der_len));
		OPENSSL_free(der);
		/* The CRL decoded from the JSON lists the revoked leaf. */
		const char *hex = get_str(c, "pck_crl");
		unsigned char bin[8192];
		size_t bin_len = 0;
		CHECK(hex && util_hex_decode(hex, strlen(hex), bin, sizeof(bin), &bin_len) == 0);
		const unsigned char *p = bin;
		X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)bin_len);
		CHECK(crl && crl_lists(crl, dcapgen_cert(g, DCAPGEN_PCK_LEAF)));
		X509_CRL_free(crl);

		const char *chain = get_str(c, "pck_crl_issuer_chain");
		STACK_OF(X509) *certs = chain ? pem_certs(chain, strlen(chain)) : NULL;
		CHECK(sk_X509_num(certs) == 2 &&
		      X509_cmp(sk_X509_value(certs, 0), dcapgen_cert(g, DCAPGEN_PCK_CA)) == 0 &&
		      X509_cmp(sk_X509_value(certs, 1), dcapgen_cert(g, DCAPGEN_ROOT)) == 0);
		sk_X509_pop_free(certs, X509_free);
		const char *keys[] = { "tcb_info_issuer_chain", "qe_identity_issuer_chain" };
		for (int i = 0; i < 2; i++) {
			chain = get_str(c, keys[i]);
			certs = chain ? pem_certs(chain, strlen(chain)) : NULL;
			CHECK(sk_X509_num(certs) == 2 &&
			      X509_cmp(sk_X509_value(certs, 0), dcapgen_cert(g, DCAPGEN_TCB_SIGNER)) == 0 &&
			      X509_cmp(sk_X509_value(certs, 1), dcapgen_cert(g, DCAPGEN_ROOT)) == 0,
			      "%s", keys[i]);
			sk_X509_pop_free(certs, X509_free);
		}
		/* Signed text verified as a verifier would: from the JSON alone. */
		const char *ti = get_str(c, "tcb_info");
		unsigned char sig[64];
		size_t sig_len = 0;
		const char *sig_hex = get_str(c, "tcb_info_signature");
		CHECK(sig_hex && util_hex_decode(sig_hex, strlen(sig_hex), sig, 64, &sig_len) == 0);
		CHECK(ti && verify_rs(X509_get0_pubkey(dcapgen_cert(g, DCAPGEN_TCB_SIGNER)), ti,
		                      strlen(ti), sig));
	}
	json_object_put(c);
	json_object_put(sample);
	free(sample_text);
	free(json);

	test_case("root PEM: one certificate, the pinned root; the key round-trips");
	char *pem = NULL, *key = NULL;
	CHECK(dcapgen_root_pem(g, &pem) == 0 && dcapgen_root_key_pem(g, &key) == 0);
	STACK_OF(X509) *roots = pem ? pem_certs(pem, strlen(pem)) : NULL;
	CHECK(sk_X509_num(roots) == 1 &&
	      X509_cmp(sk_X509_value(roots, 0), dcapgen_cert(g, DCAPGEN_ROOT)) == 0);
	defaults(&o);
	o.root_key_pem = key;
	o.root_cert_pem = pem;
	struct dcapgen *g2 = make(&o);
	CHECK(g2 != NULL);
	if (g2 && sk_X509_num(roots) == 1) {
		CHECK(X509_cmp(dcapgen_cert(g2, DCAPGEN_ROOT), sk_X509_value(roots, 0)) == 0);
		CHECK_INT(verify_chain(dcapgen_cert(g2, DCAPGEN_PCK_LEAF),
		                       dcapgen_cert(g2, DCAPGEN_PCK_CA), sk_X509_value(roots, 0),
		                       dcapgen_root_crl(g2), dcapgen_pck_crl(g2), NOW),
		          X509_V_OK);
	}
	dcapgen_destroy(g2);
	o.root_key_pem = NULL;
	CHECK(dcapgen_create(&o, &g2) < 0 && g2 == NULL, "a certificate without its key");
	sk_X509_pop_free(roots, X509_free);
	free(pem);
	free(key);
	dcapgen_destroy(g);
}

/* ---- key_seed ---------------------------------------------------------- */

static bool same_serial(X509 *a, X509 *b)
{
	return ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)) == 0;
}

static bool same_revoked(X509_CRL *a, X509_CRL *b)
{
	STACK_OF(X509_REVOKED) *ra = X509_CRL_get_REVOKED(a), *rb = X509_CRL_get_REVOKED(b);
	if (sk_X509_REVOKED_num(ra) != sk_X509_REVOKED_num(rb))
		return false;
	for (int i = 0; i < sk_X509_REVOKED_num(ra); i++) {
		if (ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(ra, i)),
		                     X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(rb, i))) != 0)
			return false;
	}
	return true;
}

static void test_key_seed(void)
{
	static const enum dcapgen_cert_id roles[] = { DCAPGEN_ROOT, DCAPGEN_PCK_CA, DCAPGEN_PCK_LEAF,
		                                      DCAPGEN_TCB_SIGNER };
	struct dcapgen_options o;
	defaults(&o);
	o.key_seed = "test_dcapgen";
	o.root_crl.extra_revoked = 2;
	struct dcapgen *a = make(&o), *b = make(&o);
	o.key_seed = "test_dcapgen 2";
	struct dcapgen *other = make(&o);
	o.key_seed = NULL;
	struct dcapgen *unseeded = make(&o);
	unsigned char xy_a[64], xy_b[64], xy_other[64], xy_unseeded[64];

	test_case("key_seed: one seed makes the same keys, serials, CRL entries and texts");
	CHECK(a && b && other && unseeded);
	if (!a || !b || !other || !unseeded)
		goto out;
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		X509 *xa = dcapgen_cert(a, roles[i]), *xb = dcapgen_cert(b, roles[i]);
		CHECK(EVP_PKEY_eq(dcapgen_key(a, roles[i]), dcapgen_key(b, roles[i])) == 1, "role %d",
		      roles[i]);
		CHECK(X509_check_private_key(xb, dcapgen_key(a, roles[i])) == 1, "role %d", roles[i]);
		CHECK(same_serial(xa, xb), "role %d", roles[i]);
	}
	dcapgen_attestation_key(a, xy_a);
	dcapgen_attestation_key(b, xy_b);
	CHECK(memcmp(xy_a, xy_b, 64) == 0);
	CHECK(same_revoked(dcapgen_root_crl(a), dcapgen_root_crl(b)));
	CHECK(same_revoked(dcapgen_pck_crl(a), dcapgen_pck_crl(b)));
	CHECK_INT(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(dcapgen_root_crl(a))), 2);
	CHECK_STR(dcapgen_tcb_info_text(a), dcapgen_tcb_info_text(b));
	CHECK_STR(dcapgen_qe_identity_text(a), dcapgen_qe_identity_text(b));
	/* b's certificates verify under a's keys: a seed is a hierarchy, not a copy of bytes. */
	CHECK(X509_verify(dcapgen_cert(b, DCAPGEN_PCK_LEAF), dcapgen_key(a, DCAPGEN_PCK_CA)) == 1);
	CHECK(X509_CRL_verify(dcapgen_pck_crl(b), dcapgen_key(a, DCAPGEN_CRL_CA)) == 1);
	CHECK(verify_rs(dcapgen_key(a, DCAPGEN_TCB_SIGNER), dcapgen_tcb_info_text(b),
	                strlen(dcapgen_tcb_info_text(b)), dcapgen_tcb_info_signature(b)));

	test_case("key_seed: another seed, or none, makes other keys and serials");
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		EVP_PKEY *k = dcapgen_key(a, roles[i]);
		CHECK(EVP_PKEY_eq(k, dcapgen_key(other, roles[i])) != 1, "role %d", roles[i]);
		CHECK(EVP_PKEY_eq(k, dcapgen_key(unseeded, roles[i])) != 1, "role %d", roles[i]);
		CHECK(!same_serial(dcapgen_cert(a, roles[i]), dcapgen_cert(other, roles[i])), "role %d",
		      roles[i]);
	}
	dcapgen_attestation_key(other, xy_other);
	dcapgen_attestation_key(unseeded, xy_unseeded);
	CHECK(memcmp(xy_a, xy_other, 64) != 0 && memcmp(xy_a, xy_unseeded, 64) != 0);
	CHECK(!same_revoked(dcapgen_pck_crl(a), dcapgen_pck_crl(other)));

	test_case("key_seed: with the first one's root, a variant revokes the first one's leaf");
	char *pem = NULL, *key = NULL;
	CHECK(dcapgen_root_pem(a, &pem) == 0 && dcapgen_root_key_pem(a, &key) == 0);
	defaults(&o);
	o.key_seed = "test_dcapgen";
	o.root_key_pem = key;
	o.root_cert_pem = pem;
	o.pck_leaf.revoked = true;
	struct dcapgen *variant = pem && key ? make(&o) : NULL;
	CHECK(variant != NULL);
	if (variant) {
		X509 *root = dcapgen_cert(a, DCAPGEN_ROOT);
		CHECK(X509_cmp(dcapgen_cert(variant, DCAPGEN_ROOT), root) == 0);
		CHECK(crl_lists(dcapgen_pck_crl(variant), dcapgen_cert(a, DCAPGEN_PCK_LEAF)));
		CHECK(!crl_lists(dcapgen_pck_crl(a), dcapgen_cert(a, DCAPGEN_PCK_LEAF)));
		CHECK_INT(verify_chain(dcapgen_cert(a, DCAPGEN_PCK_LEAF), dcapgen_cert(a, DCAPGEN_PCK_CA),
		                       root, dcapgen_root_crl(variant), dcapgen_pck_crl(variant), NOW),
		          X509_V_ERR_CERT_REVOKED);
	}
	dcapgen_destroy(variant);
	free(pem);
	free(key);
out:
	dcapgen_destroy(a);
	dcapgen_destroy(b);
	dcapgen_destroy(other);
	dcapgen_destroy(unseeded);
}

int main(void)
{
	test_sample_walk();
	test_quote_v4_layout();
	test_quote_v5_layout();
	test_quote_signatures();
	test_quote_knobs();
	test_chain();
	test_crls();
	test_sgx_extension();
	test_signed_texts();
	test_collateral();
	test_key_seed();
	return test_finish();
}
