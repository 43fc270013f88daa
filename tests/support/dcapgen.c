/*
 * dcapgen.c - a fake Intel DCAP hierarchy for tests: certificates, CRLs,
 * signed TCB info / QE identity, and TDX quotes (see dcapgen.h).
 *
 * The shapes follow Intel's real PCK certificates, CRLs and collateral in
 * shared/testdata/dcap (names, extensions and their order, key ids, JSON
 * key order) so a verifier tested against these meets nothing new on real
 * quotes.  The organisation name says "not Intel" so nobody mistakes a dump.
 */
#include "dcapgen.h"

#include <stdarg.h>
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
#include <openssl/x509v3.h>

#include "util.h"

#define ORGANIZATION "EasyEnclave test DCAP (not Intel)"
#define ROOT_CN "Intel SGX Root CA"
#define PLATFORM_CA_CN "Intel SGX PCK Platform CA"
#define PROCESSOR_CA_CN "Intel SGX PCK Processor CA"
#define LEAF_CN "Intel SGX PCK Certificate"
#define TCB_SIGNER_CN "Intel SGX TCB Signing"
#define ROOT_CRL_URL "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
#define PCK_CRL_URL "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca="
#define SGX_OID "1.2.840.113741.1.13.1"
#define SERIAL_LEN 20
#define DAY (24 * 60 * 60)
#define YEAR (365 * DAY)

struct dcapgen {
	struct dcapgen_options o; /* pointers inside are only read by dcapgen_create */
	EVP_PKEY *root_key, *rogue_key, *ca_key, *leaf_key, *tcb_key, *att_key;
	X509 *root, *rogue, *ca, *leaf, *tcb;
	/*
	 * The PCK CA of the quote's chain, which issued the leaf: ca itself
	 * (one more reference) unless a knob puts a forged one there; ca stays
	 * the genuine one of the collateral, issuer of the PCK CRL.
	 */
	X509 *quote_ca;
	EVP_PKEY *quote_ca_key;
	X509_CRL *root_crl, *pck_crl;
	char *tcb_info, *qe_identity;
	unsigned char tcb_info_sig[DCAPGEN_SIG_LEN], qe_identity_sig[DCAPGEN_SIG_LEN];
	unsigned char att_pub[DCAPGEN_PUBKEY_LEN];
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("dcapgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	ERR_print_errors_fp(stderr);
	return -1;
}

/* ---- defaults ---------------------------------------------------------- */

static void set_level_status(struct dcapgen_isv_level *l, uint16_t isvsvn, const char *status,
                             time_t date)
{
	memset(l, 0, sizeof(*l));
	l->isvsvn = isvsvn;
	l->tcb_status = status;
	l->tcb_date = date;
}

void dcapgen_defaults_at(struct dcapgen_options *o, time_t now)
{
	memset(o, 0, sizeof(*o));
	o->now = now;
	o->root = (struct dcapgen_cert_options){ now - YEAR, now + 20 * YEAR, false, false };
	o->pck_ca = (struct dcapgen_cert_options){ now - YEAR, now + 10 * YEAR, false, false };
	o->pck_leaf = (struct dcapgen_cert_options){ now - 30 * DAY, now + 7 * YEAR, false, false };
	o->tcb_signer = (struct dcapgen_cert_options){ now - 30 * DAY, now + 7 * YEAR, false, false };
	o->root_crl = (struct dcapgen_crl_options){ now - DAY, now + 29 * DAY, false, 0 };
	o->pck_crl = (struct dcapgen_crl_options){ now - DAY, now + 29 * DAY, false, 2 };

	struct dcapgen_platform *p = &o->platform;
	for (int i = 0; i < 16; i++)
		p->ppid[i] = (unsigned char)(0x10 + i);
	static const unsigned char platform_sgx[16] = { 3, 3, 2, 2, 4, 1, 0, 5 };
	memcpy(p->sgx_svn, platform_sgx, 16);
	p->pcesvn = 11;
	static const unsigned char cpusvn[16] = { 3, 3, 2, 2, 4, 1, 0, 5 };
	memcpy(p->cpusvn, cpusvn, 16);
	static const unsigned char fmspc[6] = { 0x90, 0xC0, 0x6F, 0x00, 0x00, 0x00 };
	memcpy(p->fmspc, fmspc, 6);

	time_t tcb_date = now - 90 * DAY, old_date = now - 2 * YEAR;
	struct dcapgen_tcb_info *t = &o->tcb_info;
	t->id = "TDX";
	t->version = 3;
	t->issue_date = now - DAY;
	t->next_update = now + 29 * DAY;
	t->tcb_evaluation_data_number = 17;
	memset(t->tdx_module.attributes_mask, 0xFF, 8);
	/* Two module identities as Intel publishes them: TDX_03 and TDX_01. */
	t->module_identity_count = 2;
	t->module_identities[0] = t->tdx_module;
	t->module_identities[0].major = 3;
	t->module_identities[0].level_count = 1;
	set_level_status(&t->module_identities[0].levels[0], 3, DCAPGEN_UP_TO_DATE, tcb_date);
	t->module_identities[1] = t->tdx_module;
	t->module_identities[1].major = 1;
	t->module_identities[1].level_count = 2;
	set_level_status(&t->module_identities[1].levels[0], 4, DCAPGEN_UP_TO_DATE, tcb_date);
	set_level_status(&t->module_identities[1].levels[1], 2, DCAPGEN_OUT_OF_DATE, old_date);
	t->module_identities[1].levels[1].advisory_ids[0] = "INTEL-SA-01036";

	static const unsigned char level_sgx[16] = { 2, 2, 2, 2, 3, 1, 0, 5 };
	static const unsigned char level_tdx[16] = { 1, 0, 2 };
	t->level_count = 2;
	for (int i = 0; i < 2; i++) {
		memcpy(t->levels[i].sgx_svn, level_sgx, 16);
		memcpy(t->levels[i].tdx_svn, level_tdx, 16);
	}
	t->levels[0].pcesvn = 11;
	t->levels[0].tcb_status = DCAPGEN_UP_TO_DATE;
	t->levels[0].tcb_date = tcb_date;
	t->levels[1].pcesvn = 5;
	t->levels[1].tcb_status = DCAPGEN_OUT_OF_DATE;
	t->levels[1].tcb_date = old_date;
	t->levels[1].advisory_ids[0] = "INTEL-SA-00106";
	t->levels[1].advisory_ids[1] = "INTEL-SA-00837";

	/* Intel's TD QE: its real MRSIGNER, product 2, SVN 4. */
	static const unsigned char qe_mrsigner[32] = {
		0xDC, 0x9E, 0x2A, 0x7C, 0x6F, 0x94, 0x8F, 0x17, 0x47, 0x4E, 0x34,
		0xA7, 0xFC, 0x43, 0xED, 0x03, 0x0F, 0x7C, 0x15, 0x63, 0xF1, 0xBA,
		0xBD, 0xDF, 0x63, 0x40, 0xC8, 0x2E, 0x0E, 0x54, 0xA8, 0xC5,
	};
	struct dcapgen_qe_identity *q = &o->qe_identity;
	q->id = "TD_QE";
	q->version = 2;
	q->issue_date = now - DAY;
	q->next_update = now + 29 * DAY;
	q->tcb_evaluation_data_number = 17;
	q->miscselect = 0;
	q->miscselect_mask = 0xFFFFFFFF;
	q->attributes[0] = 0x11;
	memset(q->attributes_mask, 0xFF, 8);
	q->attributes_mask[0] = 0xFB;
	memcpy(q->mrsigner, qe_mrsigner, 32);
	q->isvprodid = 2;
	q->level_count = 2;
	set_level_status(&q->levels[0], 4, DCAPGEN_UP_TO_DATE, tcb_date);
	set_level_status(&q->levels[1], 2, DCAPGEN_OUT_OF_DATE, old_date);
	q->levels[1].advisory_ids[0] = "INTEL-SA-00615";

	/* What Intel's QE reports: bit 2 of ATTRIBUTES[0] is outside the mask. */
	struct dcapgen_qe_report *r = &o->qe_report;
	memcpy(r->cpusvn, cpusvn, 16);
	r->miscselect = 0;
	r->attributes[0] = 0x15;
	r->attributes[8] = 0xE7;
	for (int i = 0; i < 32; i++)
		r->mrenclave[i] = (unsigned char)(0xE0 ^ i);
	memcpy(r->mrsigner, qe_mrsigner, 32);
	r->isvprodid = 2;
	r->isvsvn = 4;
}

void dcapgen_defaults(struct dcapgen_options *o)
{
	dcapgen_defaults_at(o, time(NULL));
}

void dcapgen_quote_defaults(struct dcapgen_quote_options *q)
{
	static const unsigned char intel_qe_vendor[16] = {
		0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
		0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
	};
	memset(q, 0, sizeof(*q));
	q->version = 4;
	q->body_type = 2;
	q->key_type = DCAPGEN_KEY_ECDSA_P256;
	q->tee_type = DCAPGEN_TEE_TDX;
	memcpy(q->qe_vendor_id, intel_qe_vendor, 16);
	q->tee_tcb_svn[0] = 5;
	q->tee_tcb_svn[2] = 2;
	memcpy(q->tee_tcb_svn2, q->tee_tcb_svn, 16);
	for (int i = 0; i < 48; i++) {
		q->mrseam[i] = (unsigned char)(0x50 ^ i);
		/* The same values as testagent.h's AGENT_TEST_MRTD and RTMRs. */
		q->mrtd[i] = (unsigned char)(0xa0 + i);
		q->rtmr[0][i] = (unsigned char)(0x00 + i);
		q->rtmr[1][i] = (unsigned char)(0x30 + i);
		q->rtmr[2][i] = (unsigned char)(0x60 + i);
		q->rtmr[3][i] = (unsigned char)(0x90 + i);
	}
	q->td_attributes[3] = 0x10; /* SEPT_VE_DISABLE, as in Intel's sample; not DEBUG */
	q->xfam[0] = 0xe7;
	q->xfam[1] = 0x02;
	q->xfam[2] = 0x06;
	q->qe_auth_data_len = 32;
	for (int i = 0; i < 32; i++)
		q->qe_auth_data[i] = (unsigned char)i;
	q->outer_cert_type = DCAPGEN_CERT_DATA_QE_REPORT;
	q->inner_cert_type = DCAPGEN_CERT_DATA_PCK_CHAIN;
}

/* ---- small encoders ---------------------------------------------------- */

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

static int append_le16(struct buf *b, uint16_t v)
{
	unsigned char p[2];
	put_le16(p, v);
	return buf_append(b, p, 2);
}

static int append_le32(struct buf *b, uint32_t v)
{
	unsigned char p[4];
	put_le32(p, v);
	return buf_append(b, p, 4);
}

static int append_hex(struct buf *b, const unsigned char *p, size_t n, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	if (buf_reserve(b, 2 * n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char two[2] = { digits[p[i] >> 4], digits[p[i] & 15] };
		if (buf_append(b, two, 2) < 0)
			return -1;
	}
	return 0;
}

static int append_date(struct buf *b, time_t t)
{
	struct tm tm;
	char s[32];
	if (!gmtime_r(&t, &tm) || strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return -1;
	return buf_puts(b, s);
}

/* A JSON string; test strings are ASCII, but quotes and controls are escaped. */
static int append_json_string(struct buf *b, const char *s)
{
	int rc = buf_puts(b, "\"");
	for (; *s && rc == 0; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			rc = buf_printf(b, "\\%c", c);
		else if (c < 0x20)
			rc = buf_printf(b, "\\u%04x", c);
		else
			rc = buf_append(b, s, 1);
	}
	return rc < 0 ? -1 : buf_puts(b, "\"");
}

/* DER: tag, definite length, content. */
static int der_tlv(struct buf *b, unsigned char tag, const void *content, size_t len)
{
	unsigned char h[4];
	size_t n = 0;
	h[n++] = tag;
	if (len < 0x80) {
		h[n++] = (unsigned char)len;
	} else if (len < 0x100) {
		h[n++] = 0x81;
		h[n++] = (unsigned char)len;
	} else if (len < 0x10000) {
		h[n++] = 0x82;
		h[n++] = (unsigned char)(len >> 8);
		h[n++] = (unsigned char)len;
	} else {
		return -1;
	}
	if (buf_append(b, h, n) < 0 || buf_append(b, content, len) < 0)
		return -1;
	return 0;
}

#define DER_BOOLEAN 0x01
#define DER_INTEGER 0x02
#define DER_OCTET_STRING 0x04
#define DER_ENUMERATED 0x0a
#define DER_SEQUENCE 0x30

/* A non-negative INTEGER or ENUMERATED in the fewest bytes. */
static int der_uint(struct buf *b, unsigned char tag, uint32_t v)
{
	unsigned char c[5];
	size_t n = 0;
	int shift = 24;
	while (shift > 0 && ((v >> shift) & 0xff) == 0)
		shift -= 8;
	if ((v >> shift) & 0x80)
		c[n++] = 0;
	for (; shift >= 0; shift -= 8)
		c[n++] = (unsigned char)(v >> shift);
	return der_tlv(b, tag, c, n);
}

static int der_oid(struct buf *b, const char *dotted)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(dotted, 1);
	unsigned char *der = NULL;
	int n = obj ? i2d_ASN1_OBJECT(obj, &der) : -1;
	int rc = n > 0 ? buf_append(b, der, (size_t)n) : -1;
	OPENSSL_free(der);
	ASN1_OBJECT_free(obj);
	return rc;
}

/* SEQUENCE { OID SGX_OID.<sub>, value } where value is already DER in v. */
static int der_sgx_pair(struct buf *b, const char *sub, const struct buf *v)
{
	char oid[64];
	struct buf seq;
	buf_init(&seq);
	snprintf(oid, sizeof(oid), SGX_OID ".%s", sub);
	int rc = der_oid(&seq, oid);
	if (rc == 0)
		rc = buf_append(&seq, v->data, v->len);
	if (rc == 0)
		rc = der_tlv(b, DER_SEQUENCE, seq.data, seq.len);
	buf_free(&seq);
	return rc;
}

static int der_sgx_octets(struct buf *b, const char *sub, const unsigned char *p, size_t n)
{
	struct buf v;
	buf_init(&v);
	int rc = der_tlv(&v, DER_OCTET_STRING, p, n);
	if (rc == 0)
		rc = der_sgx_pair(b, sub, &v);
	buf_free(&v);
	return rc;
}

static int der_sgx_uint(struct buf *b, const char *sub, unsigned char tag, uint32_t value)
{
	struct buf v;
	buf_init(&v);
	int rc = der_uint(&v, tag, value);
	if (rc == 0)
		rc = der_sgx_pair(b, sub, &v);
	buf_free(&v);
	return rc;
}

static int der_sgx_true(struct buf *b, const char *sub)
{
	static const unsigned char t = 0xFF;
	struct buf v;
	buf_init(&v);
	int rc = der_tlv(&v, DER_BOOLEAN, &t, 1);
	if (rc == 0)
		rc = der_sgx_pair(b, sub, &v);
	buf_free(&v);
	return rc;
}

/* SEQUENCE { OID sub, SEQUENCE { inner } } */
static int der_sgx_nested(struct buf *b, const char *sub, const struct buf *inner)
{
	struct buf v;
	buf_init(&v);
	int rc = der_tlv(&v, DER_SEQUENCE, inner->data, inner->len);
	if (rc == 0)
		rc = der_sgx_pair(b, sub, &v);
	buf_free(&v);
	return rc;
}

/* The value of extension 1.2.840.113741.1.13.1, in Intel's order. */
static int sgx_extension_der(const struct dcapgen_platform *p, struct buf *out)
{
	struct buf top, tcb, config;
	buf_init(&top);
	buf_init(&tcb);
	buf_init(&config);
	int rc = der_sgx_octets(&top, "1", p->ppid, 16);
	char sub[16];
	for (int i = 0; i < 16 && rc == 0; i++) {
		snprintf(sub, sizeof(sub), "2.%d", i + 1);
		rc = der_sgx_uint(&tcb, sub, DER_INTEGER, p->sgx_svn[i]);
	}
	if (rc == 0)
		rc = der_sgx_uint(&tcb, "2.17", DER_INTEGER, p->pcesvn);
	if (rc == 0)
		rc = der_sgx_octets(&tcb, "2.18", p->cpusvn, 16);
	if (rc == 0)
		rc = der_sgx_nested(&top, "2", &tcb);
	if (rc == 0)
		rc = der_sgx_octets(&top, "3", p->pce_id, 2);
	if (rc == 0)
		rc = der_sgx_octets(&top, "4", p->fmspc, 6);
	/* SGX type: 0 Standard (processor CA), 1 Scalable (platform CA). */
	if (rc == 0)
		rc = der_sgx_uint(&top, "5", DER_ENUMERATED, p->processor_ca ? 0 : 1);
	if (rc == 0 && !p->processor_ca) {
		unsigned char instance[16];
		for (int i = 0; i < 16; i++)
			instance[i] = (unsigned char)(p->ppid[i] ^ 0x5A);
		rc = der_sgx_octets(&top, "6", instance, 16);
		/* Configuration: dynamicPlatform, cachedKeys, smtEnabled. */
		if (rc == 0)
			rc = der_sgx_true(&config, "7.1");
		if (rc == 0)
			rc = der_sgx_true(&config, "7.2");
		if (rc == 0)
			rc = der_sgx_true(&config, "7.3");
		if (rc == 0)
			rc = der_sgx_nested(&top, "7", &config);
	}
	if (rc == 0)
		rc = der_tlv(out, DER_SEQUENCE, top.data, top.len);
	buf_free(&top);
	buf_free(&tcb);
	buf_free(&config);
	return rc;
}

/* ---- keys and signatures ----------------------------------------------- */

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	if (!k)
		fail("cannot make a P-256 key");
	return k;
}

/* SHA-256(seed "/" kind "/" label): the material of every seeded key and serial. */
static int seed_digest(const char *seed, const char *kind, const char *label,
                       unsigned char out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 0;
	int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	         EVP_DigestUpdate(md, seed, strlen(seed)) == 1 &&
	         EVP_DigestUpdate(md, "/", 1) == 1 &&
	         EVP_DigestUpdate(md, kind, strlen(kind)) == 1 &&
	         EVP_DigestUpdate(md, "/", 1) == 1 &&
	         EVP_DigestUpdate(md, label, strlen(label)) == 1 &&
	         EVP_DigestFinal_ex(md, out, &len) == 1 && len == 32;
	EVP_MD_CTX_free(md);
	return ok ? 0 : fail("cannot hash the key seed");
}

/*
 * The P-256 key of label under seed: d = digest mod (n - 1) + 1, never 0
 * and always below the order n; the public point is computed here because
 * OpenSSL 3.0 does not derive it when a key is imported.
 */
static EVP_PKEY *seeded_key(const char *seed, const char *label)
{
	unsigned char digest[32], point[65];
	EC_GROUP *group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	BN_CTX *bn = BN_CTX_new();
	BIGNUM *d = BN_new(), *order = NULL;
	EC_POINT *pub = group ? EC_POINT_new(group) : NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *k = NULL;
	int ok = group && bn && d && pub && bld && ctx && seed_digest(seed, "key", label, digest) == 0 &&
	         (order = BN_dup(EC_GROUP_get0_order(group))) != NULL && BN_sub_word(order, 1) &&
	         BN_bin2bn(digest, sizeof(digest), d) && BN_mod(d, d, order, bn) &&
	         BN_add_word(d, 1) && EC_POINT_mul(group, pub, d, NULL, NULL, bn) &&
	         EC_POINT_point2oct(group, pub, POINT_CONVERSION_UNCOMPRESSED, point, sizeof(point),
	                            bn) == sizeof(point) &&
	         OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
	         OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) &&
	         OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
	                                          sizeof(point)) &&
	         (params = OSSL_PARAM_BLD_to_param(bld)) != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
	         EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, params) == 1;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EC_POINT_free(pub);
	BN_clear_free(d);
	BN_free(order);
	BN_CTX_free(bn);
	EC_GROUP_free(group);
	OPENSSL_cleanse(digest, sizeof(digest));
	if (!ok) {
		EVP_PKEY_free(k);
		fail("cannot derive the key %s from the seed", label);
		return NULL;
	}
	return k;
}

/* A key of the hierarchy: derived from the seed when there is one, else fresh. */
static EVP_PKEY *role_key(const char *seed, const char *label)
{
	return seed ? seeded_key(seed, label) : new_key();
}

static int public_key_xy(EVP_PKEY *k, unsigned char out[DCAPGEN_PUBKEY_LEN])
{
	unsigned char point[65];
	size_t n = 0;
	if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
	                                    sizeof(point), &n) != 1 ||
	    n != 65 || point[0] != 0x04)
		return fail("cannot read the public point");
	memcpy(out, point + 1, 64);
	return 0;
}

/* ECDSA P-256 SHA-256 over data, as the 64 bytes r||s DCAP uses. */
static int sign_raw(EVP_PKEY *k, const void *data, size_t len, unsigned char out[DCAPGEN_SIG_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char der[128];
	size_t der_len = sizeof(der);
	ECDSA_SIG *sig = NULL;
	int rc = -1;
	if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) != 1 ||
	    EVP_DigestSign(ctx, der, &der_len, data, len) != 1) {
		fail("cannot sign");
		goto out;
	}
	const unsigned char *p = der;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	const BIGNUM *r = NULL, *s = NULL;
	if (sig)
		ECDSA_SIG_get0(sig, &r, &s);
	if (!sig || BN_bn2binpad(r, out, 32) != 32 || BN_bn2binpad(s, out + 32, 32) != 32) {
		fail("cannot convert a signature to r||s");
		goto out;
	}
	rc = 0;
out:
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* ---- certificates ------------------------------------------------------ */

static X509_NAME *make_name(const char *cn)
{
	X509_NAME *n = X509_NAME_new();
	if (!n ||
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
	                                (const unsigned char *)ORGANIZATION, -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(n, "L", MBSTRING_UTF8,
	                                (const unsigned char *)"Santa Clara", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(n, "ST", MBSTRING_UTF8, (const unsigned char *)"CA", -1, -1,
	                                0) ||
	    !X509_NAME_add_entry_by_NID(n, NID_countryName, V_ASN1_PRINTABLESTRING,
	                                (const unsigned char *)"US", -1, -1, 0)) {
		X509_NAME_free(n);
		fail("cannot make the name %s", cn);
		return NULL;
	}
	return n;
}

/* A positive serial of 20 bytes, as Intel's: random, or from the seed for label. */
static ASN1_INTEGER *new_serial(const char *seed, const char *label)
{
	unsigned char b[32];
	if (seed ? seed_digest(seed, "serial", label, b) < 0 : util_random_bytes(b, SERIAL_LEN) < 0)
		return NULL;
	b[0] = (unsigned char)((b[0] & 0x7F) | 0x01);
	BIGNUM *bn = BN_bin2bn(b, SERIAL_LEN, NULL);
	ASN1_INTEGER *i = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	BN_free(bn);
	return i;
}

/* The key id is SHA-1 of the public key bits (RFC 5280 4.2.1.2 method 1), as Intel's. */
static ASN1_OCTET_STRING *key_id(X509 *x)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();
	if (!id || !X509_pubkey_digest(x, EVP_sha1(), md, &md_len) ||
	    !ASN1_OCTET_STRING_set(id, md, (int)md_len)) {
		ASN1_OCTET_STRING_free(id);
		return NULL;
	}
	return id;
}

/* Authority key id: the issuer's subject key id (x's own when self-signed). */
static int add_aki(X509 *x, X509 *issuer)
{
	AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
	if (akid)
		akid->keyid = issuer ? ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(issuer))
		                     : key_id(x);
	int ok = akid && akid->keyid &&
	         X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, 0) == 1;
	AUTHORITY_KEYID_free(akid);
	return ok ? 0 : -1;
}

static int add_ski(X509 *x)
{
	ASN1_OCTET_STRING *ski = key_id(x);
	int ok = ski && X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, 0) == 1;
	ASN1_OCTET_STRING_free(ski);
	return ok ? 0 : -1;
}

static int add_conf_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	int ok = e && X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

static int add_sgx_ext(X509 *x, const struct dcapgen_platform *p)
{
	struct buf der;
	buf_init(&der);
	ASN1_OBJECT *obj = OBJ_txt2obj(SGX_OID, 1);
	ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e = NULL;
	int ok = obj && value && sgx_extension_der(p, &der) == 0 &&
	         ASN1_OCTET_STRING_set(value, (unsigned char *)der.data, (int)der.len) &&
	         (e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, value)) != NULL &&
	         X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(value);
	ASN1_OBJECT_free(obj);
	buf_free(&der);
	return ok ? 0 : -1;
}

struct cert_spec {
	const char *cn;
	EVP_PKEY *key;             /* the subject's key */
	X509 *issuer;              /* NULL: self-signed */
	EVP_PKEY *issuer_key;
	const struct dcapgen_cert_options *opt;
	const ASN1_INTEGER *serial; /* NULL: a new one (new_serial of seed and label) */
	int pathlen;               /* -1: not a CA */
	const char *crl_url;
	const struct dcapgen_platform *sgx; /* PCK leaf only */
	const char *seed;          /* options.key_seed */
	const char *label;         /* the role, for a seeded serial */
};

static X509 *make_cert(const struct cert_spec *s)
{
	X509 *x = X509_new();
	X509_NAME *subject = make_name(s->cn);
	ASN1_INTEGER *serial = s->serial ? ASN1_INTEGER_dup(s->serial) : new_serial(s->seed, s->label);
	EVP_PKEY *stray = NULL;
	char value[160];
	int ok = x && subject && serial && X509_set_version(x, 2) &&
	         X509_set_serialNumber(x, serial) &&
	         X509_set_issuer_name(x, s->issuer ? X509_get_subject_name(s->issuer) : subject) &&
	         X509_set_subject_name(x, subject) &&
	         ASN1_TIME_set(X509_getm_notBefore(x), s->opt->not_before) &&
	         ASN1_TIME_set(X509_getm_notAfter(x), s->opt->not_after) &&
	         X509_set_pubkey(x, s->key) && add_aki(x, s->issuer) == 0 &&
	         add_conf_ext(x, s->issuer, NID_crl_distribution_points, s->crl_url) == 0 &&
	         add_ski(x) == 0;
	if (ok) {
		const char *usage = s->pathlen >= 0 ? "critical,keyCertSign,cRLSign"
		                                    : "critical,digitalSignature,nonRepudiation";
		if (s->pathlen >= 0)
			snprintf(value, sizeof(value), "critical,CA:TRUE,pathlen:%d", s->pathlen);
		else
			snprintf(value, sizeof(value), "critical,CA:FALSE");
		ok = add_conf_ext(x, s->issuer, NID_key_usage, usage) == 0 &&
		     add_conf_ext(x, s->issuer, NID_basic_constraints, value) == 0;
	}
	if (ok && s->sgx)
		ok = add_sgx_ext(x, s->sgx) == 0;
	EVP_PKEY *signer = s->issuer ? s->issuer_key : s->key;
	if (ok && s->opt->wrong_signer)
		ok = (signer = stray = new_key()) != NULL;
	if (ok)
		ok = X509_sign(x, signer, EVP_sha256()) > 0;
	EVP_PKEY_free(stray);
	ASN1_INTEGER_free(serial);
	X509_NAME_free(subject);
	if (!ok) {
		fail("cannot make the certificate %s", s->cn);
		X509_free(x);
		return NULL;
	}
	return x;
}

/* ---- CRLs -------------------------------------------------------------- */

static int crl_add_revoked(X509_CRL *crl, const ASN1_INTEGER *serial, time_t when)
{
	X509_REVOKED *r = X509_REVOKED_new();
	ASN1_TIME *t = ASN1_TIME_set(NULL, when);
	ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();
	int ok = r && t && reason && X509_REVOKED_set_serialNumber(r, (ASN1_INTEGER *)serial) &&
	         X509_REVOKED_set_revocationDate(r, t) &&
	         ASN1_ENUMERATED_set(reason, CRL_REASON_KEY_COMPROMISE) &&
	         X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0, 0) == 1 &&
	         X509_CRL_add0_revoked(crl, r) == 1;
	ASN1_ENUMERATED_free(reason);
	ASN1_TIME_free(t);
	if (!ok) {
		X509_REVOKED_free(r);
		return -1;
	}
	return 0;
}

/*
 * A v2 CRL of issuer listing revoked[] and opt->extra_revoked other serials
 * (random, or from seed and "label/i").
 */
static X509_CRL *make_crl(X509 *issuer, EVP_PKEY *issuer_key, const struct dcapgen_crl_options *opt,
                          X509 *const revoked[], size_t n_revoked, const char *seed,
                          const char *label)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *this_update = ASN1_TIME_set(NULL, opt->this_update);
	ASN1_TIME *next_update = ASN1_TIME_set(NULL, opt->next_update);
	ASN1_INTEGER *number = ASN1_INTEGER_new();
	AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
	EVP_PKEY *stray = NULL;
	int ok = crl && this_update && next_update && number && akid &&
	         X509_CRL_set_version(crl, 1) &&
	         X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) &&
	         X509_CRL_set1_lastUpdate(crl, this_update) &&
	         X509_CRL_set1_nextUpdate(crl, next_update) && ASN1_INTEGER_set(number, 1) &&
	         X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) == 1 &&
	         (akid->keyid = ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(issuer))) != NULL &&
	         X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0) == 1;
	for (size_t i = 0; ok && i < n_revoked; i++)
		ok = crl_add_revoked(crl, X509_get0_serialNumber(revoked[i]), opt->this_update) == 0;
	for (unsigned i = 0; ok && i < opt->extra_revoked; i++) {
		char extra[64];
		snprintf(extra, sizeof(extra), "%s/%u", label, i);
		ASN1_INTEGER *serial = new_serial(seed, extra);
		ok = serial && crl_add_revoked(crl, serial, opt->this_update - (time_t)i * DAY) == 0;
		ASN1_INTEGER_free(serial);
	}
	EVP_PKEY *signer = issuer_key;
	if (ok && opt->wrong_signer)
		ok = (signer = stray = new_key()) != NULL;
	if (ok)
		ok = X509_CRL_sort(crl) && X509_CRL_sign(crl, signer, EVP_sha256()) > 0;
	EVP_PKEY_free(stray);
	AUTHORITY_KEYID_free(akid);
	ASN1_INTEGER_free(number);
	ASN1_TIME_free(this_update);
	ASN1_TIME_free(next_update);
	if (!ok) {
		fail("cannot make a CRL");
		X509_CRL_free(crl);
		return NULL;
	}
	return crl;
}

/* ---- TCB info and QE identity texts ------------------------------------ */

static int append_advisories(struct buf *b, const char *const ids[DCAPGEN_MAX_ADVISORIES])
{
	if (!ids[0])
		return 0;
	int rc = buf_puts(b, ",\"advisoryIDs\":[");
	for (int i = 0; i < DCAPGEN_MAX_ADVISORIES && ids[i] && rc == 0; i++) {
		if (i > 0)
			rc = buf_puts(b, ",");
		if (rc == 0)
			rc = append_json_string(b, ids[i]);
	}
	return rc < 0 ? -1 : buf_puts(b, "]");
}

/* ,"tcbDate":"...","tcbStatus":"..."[,"advisoryIDs":[...]] */
static int append_level_tail(struct buf *b, time_t date, const char *status,
                             const char *const ids[DCAPGEN_MAX_ADVISORIES])
{
	if (buf_puts(b, ",\"tcbDate\":\"") < 0 || append_date(b, date) < 0 ||
	    buf_puts(b, "\",\"tcbStatus\":") < 0 ||
	    append_json_string(b, status ? status : DCAPGEN_UP_TO_DATE) < 0 ||
	    append_advisories(b, ids) < 0)
		return -1;
	return 0;
}

static int append_isv_levels(struct buf *b, const struct dcapgen_isv_level *levels, size_t n)
{
	if (buf_puts(b, "\"tcbLevels\":[") < 0)
		return -1;
	for (size_t i = 0; i < n && i < DCAPGEN_MAX_ISV_LEVELS; i++) {
		const struct dcapgen_isv_level *l = &levels[i];
		if (buf_printf(b, "%s{\"tcb\":{\"isvsvn\":%u}", i ? "," : "", l->isvsvn) < 0 ||
		    append_level_tail(b, l->tcb_date, l->tcb_status, l->advisory_ids) < 0 ||
		    buf_puts(b, "}") < 0)
			return -1;
	}
	return buf_puts(b, "]");
}

/* "mrsigner":"..","attributes":"..","attributesMask":".." */
static int append_module_fields(struct buf *b, const struct dcapgen_tdx_module *m)
{
	if (buf_puts(b, "\"mrsigner\":\"") < 0 || append_hex(b, m->mrsigner, 48, true) < 0 ||
	    buf_puts(b, "\",\"attributes\":\"") < 0 || append_hex(b, m->attributes, 8, true) < 0 ||
	    buf_puts(b, "\",\"attributesMask\":\"") < 0 ||
	    append_hex(b, m->attributes_mask, 8, true) < 0 || buf_puts(b, "\"") < 0)
		return -1;
	return 0;
}

/* The descriptions Intel attaches to the first components; verifiers ignore them. */
static const char *const sgx_component_desc[16] = {
	",\"category\":\"BIOS\",\"type\":\"Early Microcode Update\"",
	",\"category\":\"OS/VMM\",\"type\":\"SGX Late Microcode Update\"",
	",\"category\":\"OS/VMM\",\"type\":\"TXT SINIT\"",
	",\"category\":\"BIOS\"",
	",\"category\":\"BIOS\"",
	",\"category\":\"BIOS\"",
	NULL,
	",\"category\":\"OS/VMM\",\"type\":\"SEAMLDR ACM\"",
};
static const char *const tdx_component_desc[16] = {
	",\"category\":\"OS/VMM\",\"type\":\"TDX Module\"",
	",\"category\":\"OS/VMM\",\"type\":\"TDX Module\"",
	",\"category\":\"OS/VMM\",\"type\":\"TDX Late Microcode Update\"",
};

static int append_components(struct buf *b, const char *name, const unsigned char svn[16],
                             const char *const desc[16])
{
	if (buf_printf(b, "\"%s\":[", name) < 0)
		return -1;
	for (int i = 0; i < 16; i++)
		if (buf_printf(b, "%s{\"svn\":%u%s}", i ? "," : "", svn[i], desc[i] ? desc[i] : "") < 0)
			return -1;
	return buf_puts(b, "]");
}

static int tcb_info_text(const struct dcapgen_options *o, struct buf *b)
{
	const struct dcapgen_tcb_info *t = &o->tcb_info;
	unsigned char fmspc[6], pce_id[2];
	memcpy(fmspc, o->platform.fmspc, 6);
	memcpy(pce_id, o->platform.pce_id, 2);
	if (t->fmspc_mismatch)
		fmspc[5] ^= 0x01;
	if (t->pce_id_mismatch)
		pce_id[1] ^= 0x01;
	if (buf_puts(b, "{\"id\":") < 0 || append_json_string(b, t->id ? t->id : "TDX") < 0 ||
	    buf_printf(b, ",\"version\":%d,\"issueDate\":\"", t->version) < 0 ||
	    append_date(b, t->issue_date) < 0 || buf_puts(b, "\",\"nextUpdate\":\"") < 0 ||
	    append_date(b, t->next_update) < 0 || buf_puts(b, "\",\"fmspc\":\"") < 0 ||
	    append_hex(b, fmspc, 6, true) < 0 || buf_puts(b, "\",\"pceId\":\"") < 0 ||
	    append_hex(b, pce_id, 2, true) < 0 ||
	    buf_printf(b, "\",\"tcbType\":%d,\"tcbEvaluationDataNumber\":%d,\"tdxModule\":{",
	               t->tcb_type, t->tcb_evaluation_data_number) < 0 ||
	    append_module_fields(b, &t->tdx_module) < 0 || buf_puts(b, "}") < 0)
		return -1;
	if (t->module_identity_count > 0) {
		if (buf_puts(b, ",\"tdxModuleIdentities\":[") < 0)
			return -1;
		for (size_t i = 0; i < t->module_identity_count && i < DCAPGEN_MAX_MODULE_IDENTITIES;
		     i++) {
			const struct dcapgen_tdx_module *m = &t->module_identities[i];
			if (buf_printf(b, "%s{\"id\":\"TDX_%02X\",", i ? "," : "", m->major) < 0 ||
			    append_module_fields(b, m) < 0 || buf_puts(b, ",") < 0 ||
			    append_isv_levels(b, m->levels, m->level_count) < 0 || buf_puts(b, "}") < 0)
				return -1;
		}
		if (buf_puts(b, "]") < 0)
			return -1;
	}
	if (buf_puts(b, ",\"tcbLevels\":[") < 0)
		return -1;
	for (size_t i = 0; i < t->level_count && i < DCAPGEN_MAX_TCB_LEVELS; i++) {
		const struct dcapgen_tcb_level *l = &t->levels[i];
		if (buf_puts(b, i ? ",{\"tcb\":{" : "{\"tcb\":{") < 0 ||
		    append_components(b, "sgxtcbcomponents", l->sgx_svn, sgx_component_desc) < 0 ||
		    buf_printf(b, ",\"pcesvn\":%u,", l->pcesvn) < 0 ||
		    append_components(b, "tdxtcbcomponents", l->tdx_svn, tdx_component_desc) < 0 ||
		    buf_puts(b, "}") < 0 ||
		    append_level_tail(b, l->tcb_date, l->tcb_status, l->advisory_ids) < 0 ||
		    buf_puts(b, "}") < 0)
			return -1;
	}
	return buf_puts(b, "]}");
}

static int qe_identity_text(const struct dcapgen_qe_identity *q, struct buf *b)
{
	unsigned char misc[4], mask[4];
	put_le32(misc, q->miscselect);
	put_le32(mask, q->miscselect_mask);
	if (buf_puts(b, "{\"id\":") < 0 || append_json_string(b, q->id ? q->id : "TD_QE") < 0 ||
	    buf_printf(b, ",\"version\":%d,\"issueDate\":\"", q->version) < 0 ||
	    append_date(b, q->issue_date) < 0 || buf_puts(b, "\",\"nextUpdate\":\"") < 0 ||
	    append_date(b, q->next_update) < 0 ||
	    buf_printf(b, "\",\"tcbEvaluationDataNumber\":%d,\"miscselect\":\"",
	               q->tcb_evaluation_data_number) < 0 ||
	    append_hex(b, misc, 4, true) < 0 || buf_puts(b, "\",\"miscselectMask\":\"") < 0 ||
	    append_hex(b, mask, 4, true) < 0 || buf_puts(b, "\",\"attributes\":\"") < 0 ||
	    append_hex(b, q->attributes, 16, true) < 0 ||
	    buf_puts(b, "\",\"attributesMask\":\"") < 0 ||
	    append_hex(b, q->attributes_mask, 16, true) < 0 ||
	    buf_puts(b, "\",\"mrsigner\":\"") < 0 || append_hex(b, q->mrsigner, 32, true) < 0 ||
	    buf_printf(b, "\",\"isvprodid\":%u,", q->isvprodid) < 0 ||
	    append_isv_levels(b, q->levels, q->level_count) < 0 || buf_puts(b, "}") < 0)
		return -1;
	return 0;
}

/* Signs text into sig (r||s), then breaks it if asked. */
static int sign_text(EVP_PKEY *k, const char *text, bool corrupt, unsigned char sig[DCAPGEN_SIG_LEN])
{
	if (sign_raw(k, text, strlen(text), sig) < 0)
		return -1;
	if (corrupt)
		sig[5] ^= 0x01;
	return 0;
}

/* ---- create / destroy -------------------------------------------------- */

static int load_root(struct dcapgen *g, const char *key_pem, const char *cert_pem)
{
	BIO *kb = BIO_new_mem_buf(key_pem, -1), *cb = BIO_new_mem_buf(cert_pem, -1);
	if (kb)
		g->root_key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
	if (cb)
		g->root = PEM_read_bio_X509(cb, NULL, NULL, NULL);
	BIO_free(kb);
	BIO_free(cb);
	if (!g->root_key || !g->root || X509_check_private_key(g->root, g->root_key) != 1)
		return fail("root_key_pem / root_cert_pem: not a matching key and certificate");
	return 0;
}

int dcapgen_create(const struct dcapgen_options *opts, struct dcapgen **out)
{
	*out = NULL;
	struct dcapgen *g = calloc(1, sizeof(*g));
	if (!g)
		return fail("out of memory");
	if (opts)
		g->o = *opts;
	else
		dcapgen_defaults(&g->o);
	const struct dcapgen_options *o = &g->o;
	const char *seed = o->key_seed;
	bool rogue = o->pck_chain_rogue_root || o->tcb_chain_rogue_root;
	const char *ca_cn = o->platform.processor_ca ? PROCESSOR_CA_CN : PLATFORM_CA_CN;
	char leaf_crl_url[160];
	snprintf(leaf_crl_url, sizeof(leaf_crl_url), "URI:" PCK_CRL_URL "%s&encoding=der",
	         o->platform.processor_ca ? "processor" : "platform");
	struct buf text;
	buf_init(&text);

	if ((o->root_key_pem != NULL) != (o->root_cert_pem != NULL)) {
		fail("root_key_pem and root_cert_pem go together");
		goto fail;
	}
	if (o->root_key_pem) {
		if (load_root(g, o->root_key_pem, o->root_cert_pem) < 0)
			goto fail;
	} else {
		if (!(g->root_key = role_key(seed, "root")))
			goto fail;
		struct cert_spec root = { ROOT_CN, g->root_key, NULL, NULL, &o->root, NULL, 1,
		                          "URI:" ROOT_CRL_URL, NULL, seed, "root" };
		if (!(g->root = make_cert(&root)))
			goto fail;
	}
	if (rogue) {
		struct cert_spec spec = { ROOT_CN, NULL, NULL, NULL, &o->root, NULL, 1,
		                          "URI:" ROOT_CRL_URL, NULL, seed, "rogue-root" };
		if (!(g->rogue_key = role_key(seed, "rogue-root")))
			goto fail;
		spec.key = g->rogue_key;
		if (!(g->rogue = make_cert(&spec)))
			goto fail;
	}
	X509 *tcb_root = o->tcb_chain_rogue_root ? g->rogue : g->root;
	EVP_PKEY *tcb_root_key = o->tcb_chain_rogue_root ? g->rogue_key : g->root_key;

	if (!(g->ca_key = role_key(seed, "pck-ca")) || !(g->leaf_key = role_key(seed, "pck-leaf")) ||
	    !(g->tcb_key = role_key(seed, "tcb-signer")) ||
	    !(g->att_key = role_key(seed, "attestation")))
		goto fail;
	/* The genuine CA: pinned root's, sound signature, the one the collateral carries. */
	struct dcapgen_cert_options genuine = o->pck_ca;
	genuine.wrong_signer = false;
	struct cert_spec ca = { ca_cn, g->ca_key, g->root, g->root_key, &genuine, NULL, 0,
	                        "URI:" ROOT_CRL_URL, NULL, seed, "pck-ca" };
	if (!(g->ca = make_cert(&ca)))
		goto fail;
	if (o->pck_chain_rogue_root) {
		/* An attacker's CA: same name, its own key, under the unpinned root. */
		struct cert_spec forged = { ca_cn, NULL, g->rogue, g->rogue_key, &o->pck_ca, NULL, 0,
		                            "URI:" ROOT_CRL_URL, NULL, seed, "forged-pck-ca" };
		if (!(g->quote_ca_key = forged.key = role_key(seed, "forged-pck-ca")) ||
		    !(g->quote_ca = make_cert(&forged)))
			goto fail;
	} else if (o->pck_ca.wrong_signer) {
		/* The genuine CA's key, name and serial, with a signature that fails. */
		struct cert_spec forged = { ca_cn, g->ca_key, g->root, g->root_key, &o->pck_ca,
		                            X509_get0_serialNumber(g->ca), 0, "URI:" ROOT_CRL_URL,
		                            NULL, seed, "pck-ca" };
		if (!EVP_PKEY_up_ref(g->ca_key))
			goto fail;
		g->quote_ca_key = g->ca_key;
		if (!(g->quote_ca = make_cert(&forged)))
			goto fail;
	} else {
		if (!EVP_PKEY_up_ref(g->ca_key))
			goto fail;
		g->quote_ca_key = g->ca_key;
		if (!X509_up_ref(g->ca))
			goto fail;
		g->quote_ca = g->ca;
	}
	struct cert_spec leaf = { LEAF_CN, g->leaf_key, g->quote_ca, g->quote_ca_key, &o->pck_leaf,
	                          NULL, -1, leaf_crl_url, &o->platform, seed, "pck-leaf" };
	if (!(g->leaf = make_cert(&leaf)))
		goto fail;
	struct cert_spec tcb = { TCB_SIGNER_CN, g->tcb_key, tcb_root, tcb_root_key, &o->tcb_signer,
	                         NULL, -1, "URI:" ROOT_CRL_URL, NULL, seed, "tcb-signer" };
	if (!(g->tcb = make_cert(&tcb)))
		goto fail;
	if (public_key_xy(g->att_key, g->att_pub) < 0)
		goto fail;

	X509 *root_revoked[2];
	size_t n_root_revoked = 0;
	if (o->pck_ca.revoked)
		root_revoked[n_root_revoked++] = g->ca;
	if (o->tcb_signer.revoked)
		root_revoked[n_root_revoked++] = g->tcb;
	if (!(g->root_crl = make_crl(g->root, g->root_key, &o->root_crl, root_revoked,
	                             n_root_revoked, seed, "root-crl")))
		goto fail;
	X509 *leaf_revoked[1] = { g->leaf };
	if (!(g->pck_crl = make_crl(g->ca, g->ca_key, &o->pck_crl, leaf_revoked,
	                            o->pck_leaf.revoked ? 1 : 0, seed, "pck-crl")))
		goto fail;

	if (tcb_info_text(o, &text) < 0 || text.failed || !(g->tcb_info = strdup(text.data))) {
		fail("cannot write the TCB info");
		goto fail;
	}
	buf_reset(&text);
	if (qe_identity_text(&o->qe_identity, &text) < 0 || text.failed ||
	    !(g->qe_identity = strdup(text.data))) {
		fail("cannot write the QE identity");
		goto fail;
	}
	if (sign_text(g->tcb_key, g->tcb_info, o->tcb_info.bad_signature, g->tcb_info_sig) < 0 ||
	    sign_text(g->tcb_key, g->qe_identity, o->qe_identity.bad_signature,
	              g->qe_identity_sig) < 0)
		goto fail;
	buf_free(&text);
	/* The caller's strings are written into the texts; keep no pointers to them. */
	g->o.root_key_pem = g->o.root_cert_pem = g->o.key_seed = NULL;
	*out = g;
	return 0;
fail:
	buf_free(&text);
	dcapgen_destroy(g);
	return -1;
}

void dcapgen_destroy(struct dcapgen *g)
{
	if (!g)
		return;
	EVP_PKEY_free(g->root_key);
	EVP_PKEY_free(g->rogue_key);
	EVP_PKEY_free(g->ca_key);
	EVP_PKEY_free(g->quote_ca_key);
	EVP_PKEY_free(g->leaf_key);
	EVP_PKEY_free(g->tcb_key);
	EVP_PKEY_free(g->att_key);
	X509_free(g->root);
	X509_free(g->rogue);
	X509_free(g->ca);
	X509_free(g->quote_ca);
	X509_free(g->leaf);
	X509_free(g->tcb);
	X509_CRL_free(g->root_crl);
	X509_CRL_free(g->pck_crl);
	free(g->tcb_info);
	free(g->qe_identity);
	free(g);
}

/* ---- quotes ------------------------------------------------------------ */

static int append_pem(struct buf *b, X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n;
	int rc = -1;
	if (bio && PEM_write_bio_X509(bio, x) == 1 && (n = BIO_get_mem_data(bio, &p)) > 0)
		rc = buf_append(b, p, (size_t)n);
	BIO_free(bio);
	return rc;
}

/* The 384-byte SGX report body of the QE, REPORTDATA binding the attestation key. */
static void qe_report_build(const struct dcapgen *g, const struct dcapgen_quote_options *q,
                            unsigned char r[DCAPGEN_QE_REPORT_LEN])
{
	const struct dcapgen_qe_report *qe = &g->o.qe_report;
	memset(r, 0, DCAPGEN_QE_REPORT_LEN);
	memcpy(r + 0, qe->cpusvn, 16);
	put_le32(r + 16, qe->miscselect);
	memcpy(r + 48, qe->attributes, 16);
	memcpy(r + 64, qe->mrenclave, 32);
	memcpy(r + 128, qe->mrsigner, 32);
	put_le16(r + 256, qe->isvprodid);
	put_le16(r + 258, qe->isvsvn);

	unsigned char key[DCAPGEN_PUBKEY_LEN];
	memcpy(key, g->att_pub, sizeof(key));
	if (q->qe_report_data_unbound)
		key[0] ^= 0x01;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 0;
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, key, sizeof(key)) != 1 ||
	    EVP_DigestUpdate(md, q->qe_auth_data, q->qe_auth_data_len) != 1 ||
	    EVP_DigestFinal_ex(md, r + 320, &len) != 1)
		memset(r + 320, 0xEE, 32); /* cannot happen; leaves a visibly wrong hash */
	EVP_MD_CTX_free(md);
	if (q->qe_report_data_tail_nonzero)
		r[320 + 63] = 0x01;
}

int dcapgen_quote(struct dcapgen *g, const unsigned char report_data[DCAPGEN_REPORT_DATA_LEN],
                  const struct dcapgen_quote_options *qopt, unsigned char **quote, size_t *len)
{
	struct dcapgen_quote_options defaults;
	if (!qopt) {
		dcapgen_quote_defaults(&defaults);
		qopt = &defaults;
	}
	const struct dcapgen_quote_options *q = qopt;
	static const unsigned char zeros[DCAPGEN_REPORT_DATA_LEN];
	*quote = NULL;
	*len = 0;
	if (q->qe_auth_data_len > DCAPGEN_MAX_AUTH_DATA)
		return fail("qe_auth_data_len is over %d", DCAPGEN_MAX_AUTH_DATA);

	struct buf b, cert, chain;
	buf_init(&b);
	buf_init(&cert);
	buf_init(&chain);
	int rc = -1;
	bool tdx15 = q->version == 5 && q->body_type == 3;

	/* Header. */
	append_le16(&b, q->version);
	append_le16(&b, q->key_type);
	append_le32(&b, q->tee_type);
	append_le16(&b, q->qe_svn);
	append_le16(&b, q->pce_svn);
	buf_append(&b, q->qe_vendor_id, 16);
	buf_append(&b, q->user_data, 20);
	if (q->version == 5) {
		append_le16(&b, q->body_type);
		append_le32(&b, tdx15 ? DCAPGEN_BODY_V5_15_LEN : DCAPGEN_BODY_V4_LEN);
	}
	/* TD report body. */
	buf_append(&b, q->tee_tcb_svn, 16);
	buf_append(&b, q->mrseam, 48);
	buf_append(&b, q->mrsignerseam, 48);
	buf_append(&b, q->seam_attributes, 8);
	buf_append(&b, q->td_attributes, 8);
	buf_append(&b, q->xfam, 8);
	buf_append(&b, q->mrtd, 48);
	buf_append(&b, q->mrconfigid, 48);
	buf_append(&b, q->mrowner, 48);
	buf_append(&b, q->mrownerconfig, 48);
	for (int i = 0; i < 4; i++)
		buf_append(&b, q->rtmr[i], 48);
	buf_append(&b, report_data ? report_data : zeros, DCAPGEN_REPORT_DATA_LEN);
	if (tdx15) {
		buf_append(&b, q->tee_tcb_svn2, 16);
		buf_append(&b, q->mrservicetd, 48);
	}
	if (b.failed)
		goto out;

	unsigned char quote_sig[DCAPGEN_SIG_LEN], qe_report[DCAPGEN_QE_REPORT_LEN],
		qe_sig[DCAPGEN_SIG_LEN];
	if (sign_raw(g->att_key, b.data, b.len, quote_sig) < 0)
		goto out;
	if (q->bad_quote_signature)
		quote_sig[5] ^= 0x01;
	qe_report_build(g, q, qe_report);
	if (sign_raw(g->leaf_key, qe_report, sizeof(qe_report), qe_sig) < 0)
		goto out;
	if (q->bad_qe_report_signature)
		qe_sig[5] ^= 0x01;

	/* PCK chain: leaf, CA, root, as Intel's QE writes it (with a NUL at the end). */
	if (append_pem(&chain, g->leaf) < 0 || append_pem(&chain, g->quote_ca) < 0 ||
	    (!q->chain_without_root &&
	     append_pem(&chain, g->o.pck_chain_rogue_root ? g->rogue : g->root) < 0) ||
	    (!q->pem_without_nul && buf_append(&chain, "", 1) < 0))
		goto out;

	/* Certification data type 6: QE report, its signature, auth data, nested type 5. */
	buf_append(&cert, qe_report, sizeof(qe_report));
	buf_append(&cert, qe_sig, sizeof(qe_sig));
	append_le16(&cert, (uint16_t)q->qe_auth_data_len);
	buf_append(&cert, q->qe_auth_data, q->qe_auth_data_len);
	append_le16(&cert, q->inner_cert_type);
	append_le32(&cert, (uint32_t)chain.len);
	buf_append(&cert, chain.data, chain.len);

	size_t sig_data_len = DCAPGEN_SIG_LEN + DCAPGEN_PUBKEY_LEN + 2 + 4 + cert.len;
	append_le32(&b, (uint32_t)sig_data_len);
	buf_append(&b, quote_sig, sizeof(quote_sig));
	buf_append(&b, g->att_pub, sizeof(g->att_pub));
	append_le16(&b, q->outer_cert_type);
	append_le32(&b, (uint32_t)cert.len);
	buf_append(&b, cert.data, cert.len);
	for (size_t i = 0; i < q->trailing_zeros && !b.failed; i++)
		buf_append(&b, "", 1);
	if (b.failed || cert.failed)
		goto out;

	*quote = malloc(b.len);
	if (!*quote)
		goto out;
	memcpy(*quote, b.data, b.len);
	*len = b.len;
	rc = 0;
out:
	if (rc < 0)
		fail("cannot build the quote");
	buf_free(&b);
	buf_free(&cert);
	buf_free(&chain);
	return rc;
}

/* ---- collateral and accessors ------------------------------------------ */

static int crl_hex(X509_CRL *crl, struct buf *b)
{
	unsigned char *der = NULL;
	int n = i2d_X509_CRL(crl, &der);
	int rc = n > 0 ? append_hex(b, der, (size_t)n, false) : -1;
	OPENSSL_free(der);
	return rc;
}

static int put_string(struct json_object *obj, const char *key, const struct buf *b)
{
	if (b->failed)
		return -1;
	struct json_object *s = json_object_new_string_len(b->data, (int)b->len);
	if (!s || json_object_object_add(obj, key, s) != 0) {
		json_object_put(s);
		return -1;
	}
	return 0;
}

int dcapgen_collateral_json(struct dcapgen *g, char **json)
{
	*json = NULL;
	struct json_object *obj = json_object_new_object();
	struct buf b;
	buf_init(&b);
	X509 *tcb_root = g->o.tcb_chain_rogue_root ? g->rogue : g->root;
	int ok = obj != NULL;

	/* The collateral is genuine whatever the quote's chain is. */
	ok = ok && append_pem(&b, g->ca) == 0 && append_pem(&b, g->root) == 0 &&
	     put_string(obj, "pck_crl_issuer_chain", &b) == 0;
	buf_reset(&b);
	ok = ok && crl_hex(g->root_crl, &b) == 0 && put_string(obj, "root_ca_crl", &b) == 0;
	buf_reset(&b);
	ok = ok && crl_hex(g->pck_crl, &b) == 0 && put_string(obj, "pck_crl", &b) == 0;
	buf_reset(&b);
	ok = ok && append_pem(&b, g->tcb) == 0 && append_pem(&b, tcb_root) == 0 &&
	     put_string(obj, "tcb_info_issuer_chain", &b) == 0;
	buf_reset(&b);
	ok = ok && buf_puts(&b, g->tcb_info) == 0 && put_string(obj, "tcb_info", &b) == 0;
	buf_reset(&b);
	ok = ok && append_hex(&b, g->tcb_info_sig, DCAPGEN_SIG_LEN, false) == 0 &&
	     put_string(obj, "tcb_info_signature", &b) == 0;
	buf_reset(&b);
	ok = ok && append_pem(&b, g->tcb) == 0 && append_pem(&b, tcb_root) == 0 &&
	     put_string(obj, "qe_identity_issuer_chain", &b) == 0;
	buf_reset(&b);
	ok = ok && buf_puts(&b, g->qe_identity) == 0 && put_string(obj, "qe_identity", &b) == 0;
	buf_reset(&b);
	ok = ok && append_hex(&b, g->qe_identity_sig, DCAPGEN_SIG_LEN, false) == 0 &&
	     put_string(obj, "qe_identity_signature", &b) == 0;
	if (ok) {
		const char *s = json_object_to_json_string_ext(
			obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
		ok = s && (*json = strdup(s)) != NULL;
	}
	json_object_put(obj);
	buf_free(&b);
	return ok ? 0 : fail("cannot write the collateral");
}

int dcapgen_root_pem(struct dcapgen *g, char **pem)
{
	struct buf b;
	buf_init(&b);
	*pem = NULL;
	if (append_pem(&b, g->root) < 0 || b.failed || !(*pem = strdup(b.data))) {
		buf_free(&b);
		return fail("cannot write the root certificate");
	}
	buf_free(&b);
	return 0;
}

static int key_pem(EVP_PKEY *key, char **pem)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n = 0;
	*pem = NULL;
	if (bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (n = BIO_get_mem_data(bio, &p)) > 0 && (*pem = strndup(p, (size_t)n)) != NULL) {
		BIO_free(bio);
		return 0;
	}
	BIO_free(bio);
	return -1;
}

int dcapgen_root_key_pem(struct dcapgen *g, char **pem)
{
	return key_pem(g->root_key, pem) == 0 ? 0 : fail("cannot write the root key");
}

int dcapgen_attestation_key_pem(struct dcapgen *g, char **pem)
{
	return key_pem(g->att_key, pem) == 0 ? 0 : fail("cannot write the attestation key");
}

X509 *dcapgen_cert(const struct dcapgen *g, enum dcapgen_cert_id which)
{
	switch (which) {
	case DCAPGEN_ROOT: return g->root;
	case DCAPGEN_ROGUE_ROOT: return g->rogue;
	case DCAPGEN_PCK_CA: return g->quote_ca;
	case DCAPGEN_CRL_CA: return g->ca;
	case DCAPGEN_PCK_LEAF: return g->leaf;
	case DCAPGEN_TCB_SIGNER: return g->tcb;
	case DCAPGEN_ATTESTATION: return NULL;
	}
	return NULL;
}

EVP_PKEY *dcapgen_key(const struct dcapgen *g, enum dcapgen_cert_id which)
{
	switch (which) {
	case DCAPGEN_ROOT: return g->root_key;
	case DCAPGEN_ROGUE_ROOT: return g->rogue_key;
	case DCAPGEN_PCK_CA: return g->quote_ca_key;
	case DCAPGEN_CRL_CA: return g->ca_key;
	case DCAPGEN_PCK_LEAF: return g->leaf_key;
	case DCAPGEN_TCB_SIGNER: return g->tcb_key;
	case DCAPGEN_ATTESTATION: return g->att_key;
	}
	return NULL;
}

X509_CRL *dcapgen_root_crl(const struct dcapgen *g)
{
	return g->root_crl;
}

X509_CRL *dcapgen_pck_crl(const struct dcapgen *g)
{
	return g->pck_crl;
}

const char *dcapgen_tcb_info_text(const struct dcapgen *g)
{
	return g->tcb_info;
}

const char *dcapgen_qe_identity_text(const struct dcapgen *g)
{
	return g->qe_identity;
}

const unsigned char *dcapgen_tcb_info_signature(const struct dcapgen *g)
{
	return g->tcb_info_sig;
}

const unsigned char *dcapgen_qe_identity_signature(const struct dcapgen *g)
{
	return g->qe_identity_sig;
}

void dcapgen_attestation_key(const struct dcapgen *g, unsigned char out[DCAPGEN_PUBKEY_LEN])
{
	memcpy(out, g->att_pub, DCAPGEN_PUBKEY_LEN);
}
