/*
 * dcap.c - DCAP verification of TDX quotes: pinned roots, collateral from
 * JSON, collateral prepared once, and the per-quote checks in the order of
 * shared/DCAP.md; see dcap.h.  Certificates and signatures are in
 * dcap_x509.c, TCB info and QE identity in dcap_tcb.c.
 */
#include "dcap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "dcap_x509.h"
#include "jsonutil.h"
#include "tdx_quote.h"
#include "util.h"

struct root {
	X509 *x509;
	EVP_PKEY *key; /* belongs to x509 */
	unsigned char *der;
	size_t der_len;
	unsigned char sha[32]; /* SHA-256 of der: how a verified PCK chain names its root */
	int64_t not_before;
	int64_t not_after;
};

struct dcap_trust {
	size_t count;
	struct root roots[DCAP_TRUST_MAX_ROOTS];
};

struct dcap_prepared {
	struct dcap_trust trust; /* the trust's roots, referenced */
	size_t root_index; /* the pinned root every part of the collateral is signed under */
	struct dcap_crl root_crl;
	struct dcap_crl pck_crl;
	unsigned char *pck_ca_spki; /* the PCK CRL issuer's public key, to recognise it in a quote's chain */
	size_t pck_ca_spki_len;
	int64_t signing_valid_from; /* the TCB signing chains' common validity */
	int64_t signing_valid_until;
	struct dcap_tcb_info tcb;
	struct dcap_qe_identity qe;
	int64_t next_update;
};

static void root_free(struct root *r)
{
	X509_free(r->x509);
	free(r->der);
	memset(r, 0, sizeof(*r));
}

/* A reference to src in dst: the X509 is shared, the DER copied. */
static int root_copy(struct root *dst, const struct root *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->der = malloc(src->der_len);
	if (!dst->der || X509_up_ref(src->x509) != 1) {
		free(dst->der);
		dst->der = NULL;
		return -1;
	}
	memcpy(dst->der, src->der, src->der_len);
	dst->der_len = src->der_len;
	memcpy(dst->sha, src->sha, sizeof(dst->sha));
	dst->x509 = src->x509;
	dst->key = src->key;
	dst->not_before = src->not_before;
	dst->not_after = src->not_after;
	return 0;
}

/* ---- trust ---- */

int dcap_trust_create(struct dcap_trust **out, struct ee_error *err)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : ee_fail(err, 503, "out_of_memory");
}

void dcap_trust_destroy(struct dcap_trust *trust)
{
	if (!trust)
		return;
	for (size_t i = 0; i < trust->count; i++)
		root_free(&trust->roots[i]);
	free(trust);
}

size_t dcap_trust_count(const struct dcap_trust *trust)
{
	return trust ? trust->count : 0;
}

/* Pins c (a decoded certificate), which then belongs to the trust, or frees it. */
static int trust_add_cert(struct dcap_trust *trust, struct dcap_cert *c, struct ee_error *err)
{
	EVP_PKEY *key = X509_get0_pubkey(c->x509);
	if (!dcap_cert_is_ca(c->x509) || !dcap_cert_issued_by(c->x509, c->x509, key)) {
		dcap_cert_free(c);
		return ee_fail(err, 500, "trust_invalid");
	}
	for (size_t i = 0; i < trust->count; i++) {
		if (trust->roots[i].der_len == c->der_len &&
		    memcmp(trust->roots[i].der, c->der, c->der_len) == 0) {
			dcap_cert_free(c);
			return 0; /* pinned already */
		}
	}
	if (trust->count == DCAP_TRUST_MAX_ROOTS) {
		dcap_cert_free(c);
		return ee_fail(err, 500, "trust_full");
	}
	struct root *r = &trust->roots[trust->count++];
	r->x509 = c->x509;
	r->key = key;
	r->der = c->der;
	r->der_len = c->der_len;
	SHA256(r->der, r->der_len, r->sha);
	r->not_before = c->not_before;
	r->not_after = c->not_after;
	return 0;
}

int dcap_trust_add_pem(struct dcap_trust *trust, const char *pem, size_t len, struct ee_error *err)
{
	struct dcap_chain chain;
	if (!pem || len > DCAP_ROOT_PEM_MAX || dcap_chain_from_pem(pem, len, &chain) != 0)
		return ee_fail(err, 500, "trust_invalid");
	if (chain.count != 1) {
		dcap_chain_free(&chain);
		return ee_fail(err, 500, "trust_invalid");
	}
	return trust_add_cert(trust, &chain.certs[0], err);
}

int dcap_trust_add_der(struct dcap_trust *trust, const unsigned char *der, size_t len,
                       struct ee_error *err)
{
	struct dcap_cert c;
	if (!der || len > DCAP_ROOT_PEM_MAX || dcap_cert_from_der(der, len, &c) != 0)
		return ee_fail(err, 500, "trust_invalid");
	return trust_add_cert(trust, &c, err);
}

int dcap_trust_add_file(struct dcap_trust *trust, const char *path, struct ee_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return ee_fail(err, 500, "trust_invalid");
	char *text = malloc(DCAP_ROOT_PEM_MAX + 1);
	size_t n = text ? fread(text, 1, DCAP_ROOT_PEM_MAX + 1, f) : 0;
	bool bad = !text || ferror(f) || n > DCAP_ROOT_PEM_MAX;
	fclose(f);
	int rc = bad ? ee_fail(err, 500, "trust_invalid") : dcap_trust_add_pem(trust, text, n, err);
	free(text);
	return rc;
}

/* ---- collateral from JSON ---- */

void dcap_collateral_free(struct dcap_collateral *c)
{
	if (!c)
		return;
	free(c->pck_crl_issuer_chain);
	free(c->root_ca_crl);
	free(c->pck_crl);
	free(c->tcb_info_issuer_chain);
	free(c->tcb_info);
	free(c->qe_identity_issuer_chain);
	free(c->qe_identity);
	memset(c, 0, sizeof(*c));
}

static int copy_text(struct json_object *obj, const char *key, char **out, size_t *out_len)
{
	const char *s;
	size_t len;
	if (json_get_string(obj, key, &s, &len) != JSON_FIELD_OK || len == 0)
		return -1;
	*out = malloc(len + 1);
	if (!*out)
		return -1;
	memcpy(*out, s, len + 1);
	*out_len = len;
	return 0;
}

static int copy_hex(struct json_object *obj, const char *key, size_t max, unsigned char **out,
                    size_t *out_len)
{
	const char *s;
	size_t len;
	if (json_get_string(obj, key, &s, &len) != JSON_FIELD_OK || len == 0 || len / 2 > max)
		return -1;
	*out = malloc(len / 2 + 1);
	if (!*out || util_hex_decode(s, len, *out, len / 2, out_len) != 0)
		return -1;
	return 0;
}

static int copy_signature(struct json_object *obj, const char *key, unsigned char out[64])
{
	const char *s;
	size_t len, n;
	if (json_get_string(obj, key, &s, &len) != JSON_FIELD_OK || len != 128)
		return -1;
	return util_hex_decode(s, len, out, 64, &n) == 0 && n == 64 ? 0 : -1;
}

int dcap_collateral_from_json(const char *text, size_t len, struct dcap_collateral *out,
                              struct ee_error *err)
{
	memset(out, 0, sizeof(*out));
	if (!text || len > DCAP_COLLATERAL_JSON_MAX)
		return ee_fail(err, 503, "collateral_invalid");
	struct json_object *root = json_parse_value(text, len);
	bool ok = root && json_object_is_type(root, json_type_object) &&
	          copy_text(root, "pck_crl_issuer_chain", &out->pck_crl_issuer_chain,
	                    &out->pck_crl_issuer_chain_len) == 0 &&
	          copy_hex(root, "root_ca_crl", DCAP_CRL_MAX, &out->root_ca_crl, &out->root_ca_crl_len) == 0 &&
	          copy_hex(root, "pck_crl", DCAP_CRL_MAX, &out->pck_crl, &out->pck_crl_len) == 0 &&
	          copy_text(root, "tcb_info_issuer_chain", &out->tcb_info_issuer_chain,
	                    &out->tcb_info_issuer_chain_len) == 0 &&
	          copy_text(root, "tcb_info", &out->tcb_info, &out->tcb_info_len) == 0 &&
	          copy_signature(root, "tcb_info_signature", out->tcb_info_signature) == 0 &&
	          copy_text(root, "qe_identity_issuer_chain", &out->qe_identity_issuer_chain,
	                    &out->qe_identity_issuer_chain_len) == 0 &&
	          copy_text(root, "qe_identity", &out->qe_identity, &out->qe_identity_len) == 0 &&
	          copy_signature(root, "qe_identity_signature", out->qe_identity_signature) == 0;
	json_object_put(root);
	if (!ok) {
		dcap_collateral_free(out);
		return ee_fail(err, 503, "collateral_invalid");
	}
	return 0;
}

/* ---- prepared collateral ---- */

/* The pinned root whose DER is der, or -1. */
static int pinned_index(const struct root *roots, size_t count, const unsigned char *der,
                        size_t len)
{
	for (size_t i = 0; i < count; i++) {
		if (roots[i].der_len == len && memcmp(roots[i].der, der, len) == 0)
			return (int)i;
	}
	return -1;
}

/*
 * A chain of at least 2 that ends at a pinned root, each certificate issued
 * and signed by the next, every issuer a CA: the root's index, or -1.
 */
static int chain_to_root(const struct dcap_prepared *p, const struct dcap_chain *chain)
{
	if (chain->count < 2)
		return -1;
	const struct dcap_cert *last = &chain->certs[chain->count - 1];
	int idx = pinned_index(p->trust.roots, p->trust.count, last->der, last->der_len);
	if (idx < 0)
		return -1;
	for (size_t i = 0; i + 1 < chain->count; i++) {
		X509 *parent = chain->certs[i + 1].x509;
		EVP_PKEY *key = i + 2 == chain->count ? p->trust.roots[idx].key : X509_get0_pubkey(parent);
		if (!dcap_cert_is_ca(parent) || !dcap_cert_issued_by(chain->certs[i].x509, parent, key))
			return -1;
	}
	return idx;
}

void dcap_prepared_free(struct dcap_prepared *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->trust.count; i++)
		root_free(&p->trust.roots[i]);
	dcap_crl_free(&p->root_crl);
	dcap_crl_free(&p->pck_crl);
	OPENSSL_free(p->pck_ca_spki);
	dcap_tcb_info_free(&p->tcb);
	dcap_qe_identity_free(&p->qe);
	free(p);
}

const struct dcap_tcb_info *dcap_prepared_tcb_info(const struct dcap_prepared *p)
{
	return &p->tcb;
}

const struct dcap_qe_identity *dcap_prepared_qe_identity(const struct dcap_prepared *p)
{
	return &p->qe;
}

int64_t dcap_prepared_next_update(const struct dcap_prepared *p)
{
	return p->next_update;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* One signing chain (TCB info or QE identity): trusted, and the signature over text. */
static int check_signed(struct dcap_prepared *p, const char *chain_pem, size_t chain_len,
                        const char *text, size_t text_len, const unsigned char sig[64],
                        const char *sig_reason, struct ee_error *err)
{
	struct dcap_chain chain;
	if (dcap_chain_from_pem(chain_pem, chain_len, &chain) != 0)
		return ee_fail(err, 503, "tcb_signing_chain_invalid");
	int rc = 0;
	int idx = chain_to_root(p, &chain);
	EVP_PKEY *key = X509_get0_pubkey(chain.certs[0].x509);
	if (idx < 0)
		rc = ee_fail(err, 503, "tcb_signing_chain_untrusted");
	else if ((size_t)idx != p->root_index)
		rc = ee_fail(err, 503, "collateral_root_mismatch");
	else if (!dcap_key_is_p256(key) || !dcap_ecdsa_verify_raw(key, text, text_len, sig))
		rc = ee_fail(err, 503, sig_reason);
	else if (dcap_crl_lists(&p->root_crl, X509_get0_serialNumber(chain.certs[0].x509)))
		rc = ee_fail(err, 503, "tcb_signing_cert_revoked");
	if (rc == 0) {
		for (size_t i = 0; i < chain.count; i++) {
			p->signing_valid_from = max64(p->signing_valid_from, chain.certs[i].not_before);
			p->signing_valid_until = min64(p->signing_valid_until, chain.certs[i].not_after);
		}
	}
	dcap_chain_free(&chain);
	return rc;
}

/* The PCK CRL's issuer chain and both CRLs; fixes p->root_index. */
static int prepare_crls(struct dcap_prepared *p, const struct dcap_collateral *c,
                        struct ee_error *err)
{
	struct dcap_chain chain;
	if (dcap_chain_from_pem(c->pck_crl_issuer_chain, c->pck_crl_issuer_chain_len, &chain) != 0)
		return ee_fail(err, 503, "crl_invalid");
	int idx = chain_to_root(p, &chain);
	int rc = 0;
	if (idx < 0 || chain.count != 2 || !dcap_cert_is_ca(chain.certs[0].x509)) {
		rc = ee_fail(err, 503, "crl_invalid");
		goto done;
	}
	p->root_index = (size_t)idx;
	const struct root *root = &p->trust.roots[idx];
	if (dcap_crl_load(c->root_ca_crl, c->root_ca_crl_len, root->key, &p->root_crl) != 0 ||
	    X509_NAME_cmp(p->root_crl.issuer, X509_get_subject_name(root->x509)) != 0) {
		rc = ee_fail(err, 503, "crl_invalid");
		goto done;
	}
	X509 *ca = chain.certs[0].x509;
	if (dcap_crl_load(c->pck_crl, c->pck_crl_len, X509_get0_pubkey(ca), &p->pck_crl) != 0 ||
	    X509_NAME_cmp(p->pck_crl.issuer, X509_get_subject_name(ca)) != 0) {
		rc = ee_fail(err, 503, "crl_invalid");
		goto done;
	}
	int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(ca), &p->pck_ca_spki);
	if (spki_len <= 0) {
		rc = ee_fail(err, 503, "out_of_memory");
		goto done;
	}
	p->pck_ca_spki_len = (size_t)spki_len;
done:
	dcap_chain_free(&chain);
	return rc;
}

int dcap_collateral_prepare(const struct dcap_trust *trust, const struct dcap_collateral *c,
                            struct dcap_prepared **out, struct ee_error *err)
{
	*out = NULL;
	if (!trust || trust->count == 0)
		return ee_fail(err, 500, "trust_empty");
	if (!c || !c->pck_crl_issuer_chain || !c->root_ca_crl || !c->pck_crl ||
	    !c->tcb_info_issuer_chain || !c->tcb_info || !c->qe_identity_issuer_chain ||
	    !c->qe_identity)
		return ee_fail(err, 503, "collateral_invalid");
	struct dcap_prepared *p = calloc(1, sizeof(*p));
	if (!p)
		return ee_fail(err, 503, "out_of_memory");
	p->signing_valid_from = INT64_MIN;
	p->signing_valid_until = INT64_MAX;
	for (size_t i = 0; i < trust->count; i++) {
		if (root_copy(&p->trust.roots[i], &trust->roots[i]) != 0) {
			dcap_prepared_free(p);
			return ee_fail(err, 503, "out_of_memory");
		}
		p->trust.count++;
	}
	int rc = prepare_crls(p, c, err);
	if (rc == 0)
		rc = check_signed(p, c->tcb_info_issuer_chain, c->tcb_info_issuer_chain_len, c->tcb_info,
		                  c->tcb_info_len, c->tcb_info_signature, "tcb_info_signature", err);
	if (rc == 0)
		rc = check_signed(p, c->qe_identity_issuer_chain, c->qe_identity_issuer_chain_len,
		                  c->qe_identity, c->qe_identity_len, c->qe_identity_signature,
		                  "qe_identity_signature", err);
	if (rc == 0)
		rc = dcap_tcb_info_parse(c->tcb_info, c->tcb_info_len, &p->tcb, err);
	if (rc == 0)
		rc = dcap_qe_identity_parse(c->qe_identity, c->qe_identity_len, &p->qe, err);
	if (rc != 0) {
		dcap_prepared_free(p);
		return -1;
	}
	p->next_update = min64(min64(p->root_crl.next_update, p->pck_crl.next_update),
	                       min64(p->tcb.next_update, p->qe.next_update));
	*out = p;
	return 0;
}

/* ---- verification ---- */

static int refuse(struct dcap_result *r, struct ee_error *err, int status, const char *reason)
{
	r->verified = false;
	r->status = status;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	return ee_fail(err, status, reason);
}

static void add_advisories(struct dcap_result *r, const struct dcap_advisories *a)
{
	for (size_t i = 0; i < a->count; i++) {
		bool seen = false;
		for (size_t j = 0; j < r->advisory_count && !seen; j++)
			seen = strcmp(r->advisory_ids[j], a->ids[i]) == 0;
		if (!seen && r->advisory_count < DCAP_MAX_ADVISORIES)
			memcpy(r->advisory_ids[r->advisory_count++], a->ids[i], DCAP_ADVISORY_ID_MAX);
	}
}

static void set_status(char out[DCAP_STATUS_MAX], unsigned status)
{
	snprintf(out, DCAP_STATUS_MAX, "%s", dcap_tcb_status_name(status));
}

/* ---- verified PCK chains, and their cache ---- */

/*
 * A PCK chain (leaf, CA, root) whose signatures were verified up to a
 * pinned root, reduced to what the later checks read: the leaf's key for
 * the QE report, the validity of each certificate, the serials and names
 * the CRLs are matched on, and the SGX extension.  Nothing here depends on
 * the time or on collateral, so it may be kept and reused: validity and
 * revocation are judged on every use.
 */
struct dcap_pck {
	unsigned char key[32]; /* SHA-256 over the chain's DER (each length-prefixed) */
	int refs;              /* the cache's reference and each caller's */
	unsigned char root_sha[32];
	EVP_PKEY *leaf_key;
	ASN1_INTEGER *leaf_serial;
	ASN1_INTEGER *ca_serial;
	X509_NAME *leaf_issuer;
	unsigned char *ca_spki; /* DER SubjectPublicKeyInfo of the CA */
	size_t ca_spki_len;
	int64_t not_before[3]; /* leaf, CA, root */
	int64_t not_after[3];
	bool have_extension; /* the SGX extension parsed (else pck_extension_invalid later) */
	struct dcap_sgx_extension extension;
	bool processor_ca;
	struct dcap_pck *hash_next; /* the cache's bucket chain */
	struct dcap_pck *newer, *older; /* the cache's use order */
};

struct dcap_pck_cache {
	size_t max;
	size_t count;
	size_t bucket_count; /* a power of two */
	struct dcap_pck **buckets;
	struct dcap_pck *newest, *oldest;
	struct dcap_pck_cache_stats stats;
};

static void pck_free(struct dcap_pck *pck)
{
	EVP_PKEY_free(pck->leaf_key);
	ASN1_INTEGER_free(pck->leaf_serial);
	ASN1_INTEGER_free(pck->ca_serial);
	X509_NAME_free(pck->leaf_issuer);
	OPENSSL_free(pck->ca_spki);
	free(pck);
}

void dcap_pck_release(struct dcap_pck *pck)
{
	if (pck && --pck->refs == 0)
		pck_free(pck);
}

const struct dcap_sgx_extension *dcap_pck_extension(const struct dcap_pck *pck)
{
	return pck->have_extension ? &pck->extension : NULL;
}

bool dcap_pck_processor_ca(const struct dcap_pck *pck)
{
	return pck->processor_ca;
}

int dcap_pck_cache_create(size_t max_entries, struct dcap_pck_cache **out, struct ee_error *err)
{
	*out = NULL;
	if (max_entries == 0 || max_entries > DCAP_PCK_CACHE_LIMIT)
		return ee_fail(err, 500, "invalid_config");
	struct dcap_pck_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return ee_fail(err, 503, "out_of_memory");
	c->max = max_entries;
	c->bucket_count = 1;
	while (c->bucket_count < 2 * max_entries)
		c->bucket_count *= 2;
	c->buckets = calloc(c->bucket_count, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return ee_fail(err, 503, "out_of_memory");
	}
	*out = c;
	return 0;
}

void dcap_pck_cache_destroy(struct dcap_pck_cache *c)
{
	if (!c)
		return;
	for (struct dcap_pck *p = c->newest, *next; p; p = next) {
		next = p->older;
		dcap_pck_release(p);
	}
	free(c->buckets);
	free(c);
}

void dcap_pck_cache_get_stats(const struct dcap_pck_cache *c, struct dcap_pck_cache_stats *out)
{
	*out = c->stats;
	out->entries = c->count;
}

static struct dcap_pck **cache_bucket(struct dcap_pck_cache *c, const unsigned char key[32])
{
	size_t h;
	memcpy(&h, key, sizeof(h)); /* the key is a SHA-256: any of its bytes are uniform */
	return &c->buckets[h & (c->bucket_count - 1)];
}

static void cache_unlink_order(struct dcap_pck_cache *c, struct dcap_pck *p)
{
	if (p->newer)
		p->newer->older = p->older;
	else
		c->newest = p->older;
	if (p->older)
		p->older->newer = p->newer;
	else
		c->oldest = p->newer;
	p->newer = p->older = NULL;
}

static void cache_push_newest(struct dcap_pck_cache *c, struct dcap_pck *p)
{
	p->older = c->newest;
	p->newer = NULL;
	if (c->newest)
		c->newest->newer = p;
	c->newest = p;
	if (!c->oldest)
		c->oldest = p;
}

static struct dcap_pck *cache_find(struct dcap_pck_cache *c, const unsigned char key[32])
{
	for (struct dcap_pck *p = *cache_bucket(c, key); p; p = p->hash_next) {
		if (memcmp(p->key, key, 32) == 0) {
			cache_unlink_order(c, p);
			cache_push_newest(c, p);
			return p;
		}
	}
	return NULL;
}

static void cache_insert(struct dcap_pck_cache *c, struct dcap_pck *p)
{
	if (c->count == c->max) {
		struct dcap_pck *victim = c->oldest;
		struct dcap_pck **link = cache_bucket(c, victim->key);
		while (*link != victim)
			link = &(*link)->hash_next;
		*link = victim->hash_next;
		cache_unlink_order(c, victim);
		c->count--;
		c->stats.evictions++;
		dcap_pck_release(victim);
	}
	struct dcap_pck **bucket = cache_bucket(c, p->key);
	p->hash_next = *bucket;
	*bucket = p;
	cache_push_newest(c, p);
	p->refs++;
	c->count++;
}

/* The cache key: SHA-256 over each certificate's length (8 bytes) and DER. */
static int chain_key(const struct dcap_pem_ders *ders, unsigned char key[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	for (size_t i = 0; ok && i < ders->count; i++) {
		uint64_t n = ders->len[i];
		unsigned char len[8];
		for (int b = 0; b < 8; b++)
			len[b] = (unsigned char)(n >> (8 * b));
		ok = EVP_DigestUpdate(ctx, len, sizeof(len)) == 1 &&
		     EVP_DigestUpdate(ctx, ders->der[i], ders->len[i]) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, key, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

/*
 * Parses and verifies leaf and CA of a three-certificate chain under the
 * pinned root: the leaf a P-256 key, the CA a CA issued by the root, the
 * leaf issued by the CA.  A new dcap_pck (one reference), or NULL with the
 * reason.
 */
static struct dcap_pck *pck_verify(const struct root *root, const struct dcap_pem_ders *ders,
                                   const char **reason)
{
	struct dcap_cert leaf, ca;
	memset(&leaf, 0, sizeof(leaf));
	memset(&ca, 0, sizeof(ca));
	struct dcap_pck *pck = NULL;
	*reason = "pck_chain_invalid";
	if (dcap_cert_from_der(ders->der[0], ders->len[0], &leaf) != 0 ||
	    !dcap_key_is_p256(X509_get0_pubkey(leaf.x509)) ||
	    dcap_cert_from_der(ders->der[1], ders->len[1], &ca) != 0)
		goto done;
	*reason = "pck_chain_signature";
	if (!dcap_cert_is_ca(ca.x509) || !dcap_cert_issued_by(ca.x509, root->x509, root->key) ||
	    !dcap_cert_issued_by(leaf.x509, ca.x509, X509_get0_pubkey(ca.x509)))
		goto done;
	*reason = "out_of_memory";
	pck = calloc(1, sizeof(*pck));
	if (!pck)
		goto done;
	pck->refs = 1;
	memcpy(pck->root_sha, root->sha, 32);
	pck->leaf_key = X509_get_pubkey(leaf.x509);
	pck->leaf_serial = ASN1_INTEGER_dup(X509_get0_serialNumber(leaf.x509));
	pck->ca_serial = ASN1_INTEGER_dup(X509_get0_serialNumber(ca.x509));
	pck->leaf_issuer = X509_NAME_dup(X509_get_issuer_name(leaf.x509));
	int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(ca.x509), &pck->ca_spki);
	if (!pck->leaf_key || !pck->leaf_serial || !pck->ca_serial || !pck->leaf_issuer ||
	    spki_len <= 0) {
		pck_free(pck);
		pck = NULL;
		goto done;
	}
	pck->ca_spki_len = (size_t)spki_len;
	const int64_t from[3] = {leaf.not_before, ca.not_before, root->not_before};
	const int64_t until[3] = {leaf.not_after, ca.not_after, root->not_after};
	memcpy(pck->not_before, from, sizeof(from));
	memcpy(pck->not_after, until, sizeof(until));
	pck->have_extension = dcap_sgx_extension_from_cert(leaf.x509, &pck->extension) == 0;
	char cn[128] = "";
	X509_NAME_get_text_by_NID(X509_get_subject_name(ca.x509), NID_commonName, cn, sizeof(cn));
	pck->processor_ca = strstr(cn, "Processor") != NULL;
	*reason = NULL;
done:
	dcap_cert_free(&leaf);
	dcap_cert_free(&ca);
	return pck;
}

/*
 * Step 2, the part that needs no collateral: the chain is leaf, CA, pinned
 * root; each signature verifies; each certificate is valid at the time.
 */
static int check_pck_chain(const struct dcap_trust *trust, struct dcap_pck_cache *cache,
                           const struct tdx_quote *q, int64_t at, struct dcap_pck **out,
                           struct dcap_result *r, struct ee_error *err)
{
	*out = NULL;
	struct dcap_pem_ders ders;
	if (dcap_pem_split(q->pck_chain_pem, q->pck_chain_pem_len, &ders) != 0)
		return refuse(r, err, 403, "pck_chain_invalid");
	int rc = 0;
	struct dcap_pck *pck = NULL;
	if (ders.count != 3) {
		rc = refuse(r, err, 403, "pck_chain_invalid");
		goto done;
	}
	int idx = pinned_index(trust->roots, trust->count, ders.der[2], ders.len[2]);
	if (idx < 0) {
		rc = refuse(r, err, 403, "pck_chain_untrusted");
		goto done;
	}
	unsigned char key[32];
	if (chain_key(&ders, key) != 0) {
		rc = refuse(r, err, 503, "out_of_memory");
		goto done;
	}
	if (cache && (pck = cache_find(cache, key)) != NULL) {
		cache->stats.hits++;
		pck->refs++;
	} else {
		const char *reason;
		pck = pck_verify(&trust->roots[idx], &ders, &reason);
		if (!pck) {
			rc = refuse(r, err, strcmp(reason, "out_of_memory") == 0 ? 503 : 403, reason);
			goto done;
		}
		memcpy(pck->key, key, 32);
		if (cache) {
			cache->stats.misses++;
			cache_insert(cache, pck);
		}
	}
	/* Judged on every use, cached or not: the time moves on. */
	for (size_t i = 0; i < 3; i++) {
		if (at < pck->not_before[i]) {
			rc = refuse(r, err, 403, "pck_cert_not_yet_valid");
			goto done;
		}
		if (at > pck->not_after[i]) {
			rc = refuse(r, err, 403, "pck_cert_expired");
			goto done;
		}
	}
done:
	dcap_pem_ders_free(&ders);
	if (rc != 0)
		dcap_pck_release(pck);
	else
		*out = pck;
	return rc;
}

/* Steps 3 to 5: the QE report, its binding of the attestation key, the quote signature. */
static int check_signatures(const struct tdx_quote *q, EVP_PKEY *pck_key, struct dcap_result *r,
                            struct ee_error *err)
{
	if (!dcap_ecdsa_verify_raw(pck_key, q->qe_report.raw, TDX_QE_REPORT_LEN, q->qe_report_signature))
		return refuse(r, err, 403, "qe_report_signature");
	unsigned char digest[SHA256_DIGEST_LENGTH];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool hashed = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	              EVP_DigestUpdate(ctx, q->attestation_key, TDX_ATTESTATION_KEY_LEN) == 1 &&
	              EVP_DigestUpdate(ctx, q->qe_auth_data, q->qe_auth_data_len) == 1 &&
	              EVP_DigestFinal_ex(ctx, digest, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	if (!hashed)
		return refuse(r, err, 503, "out_of_memory");
	static const unsigned char zeros[32];
	if (memcmp(q->qe_report.report_data, digest, 32) != 0 ||
	    memcmp(q->qe_report.report_data + 32, zeros, 32) != 0)
		return refuse(r, err, 403, "qe_report_data_mismatch");
	EVP_PKEY *ak = dcap_p256_key_from_raw(q->attestation_key);
	if (!ak)
		return refuse(r, err, 403, "attestation_key_invalid");
	bool ok = dcap_ecdsa_verify_raw(ak, q->signed_data, q->signed_len, q->signature);
	EVP_PKEY_free(ak);
	return ok ? 0 : refuse(r, err, 403, "quote_signature");
}

int dcap_quote_check(const struct dcap_trust *trust, struct dcap_pck_cache *cache,
                     const struct tdx_quote *q, int64_t at, struct dcap_pck **pck,
                     struct dcap_result *out, struct ee_error *err)
{
	memset(out, 0, sizeof(*out));
	*pck = NULL;
	if (!trust || trust->count == 0)
		return refuse(out, err, 500, "trust_empty");
	struct dcap_pck *checked;
	if (check_pck_chain(trust, cache, q, at, &checked, out, err) != 0)
		return -1;
	if (check_signatures(q, checked->leaf_key, out, err) != 0) {
		dcap_pck_release(checked);
		return -1;
	}
	*pck = checked;
	return 0;
}

/* Step 2, the part that needs collateral: the CRLs are current, from the chain's CAs, and list neither certificate. */
static int check_revocation(const struct dcap_prepared *p, const struct dcap_pck *pck, int64_t at,
                            struct dcap_result *r, struct ee_error *err)
{
	int idx = -1;
	for (size_t i = 0; i < p->trust.count && idx < 0; i++) {
		if (memcmp(p->trust.roots[i].sha, pck->root_sha, 32) == 0)
			idx = (int)i;
	}
	if (idx < 0)
		return refuse(r, err, 403, "pck_chain_untrusted");
	if ((size_t)idx != p->root_index)
		return refuse(r, err, 503, "collateral_root_mismatch");
	const struct dcap_crl *crls[2] = {&p->root_crl, &p->pck_crl};
	for (int i = 0; i < 2; i++) {
		if (at < crls[i]->this_update)
			return refuse(r, err, 503, "crl_not_yet_valid");
		if (at >= crls[i]->next_update)
			return refuse(r, err, 503, "crl_expired");
	}
	if (pck->ca_spki_len != p->pck_ca_spki_len ||
	    memcmp(pck->ca_spki, p->pck_ca_spki, pck->ca_spki_len) != 0 ||
	    X509_NAME_cmp(p->pck_crl.issuer, pck->leaf_issuer) != 0)
		return refuse(r, err, 503, "pck_crl_issuer_mismatch");
	if (dcap_crl_lists(&p->root_crl, pck->ca_serial))
		return refuse(r, err, 403, "pck_ca_revoked");
	if (dcap_crl_lists(&p->pck_crl, pck->leaf_serial))
		return refuse(r, err, 403, "pck_revoked");
	return 0;
}

/* Step 6, the part that depends on the time: the collateral is current. */
static int check_collateral_time(const struct dcap_prepared *p, int64_t at, struct dcap_result *r,
                                 struct ee_error *err)
{
	if (at < p->signing_valid_from)
		return refuse(r, err, 503, "tcb_signing_cert_not_yet_valid");
	if (at > p->signing_valid_until)
		return refuse(r, err, 503, "tcb_signing_cert_expired");
	if (at < p->tcb.issue_date)
		return refuse(r, err, 503, "tcb_info_not_yet_valid");
	if (at >= p->tcb.next_update)
		return refuse(r, err, 503, "tcb_info_expired");
	if (at < p->qe.issue_date)
		return refuse(r, err, 503, "qe_identity_not_yet_valid");
	if (at >= p->qe.next_update)
		return refuse(r, err, 503, "qe_identity_expired");
	return 0;
}

/* Steps 7 to 11: identities, levels, statuses, debug. */
static int check_tcb(const struct dcap_prepared *p, const struct tdx_quote *q,
                     const struct dcap_pck *pck, struct dcap_result *r, struct ee_error *err)
{
	const struct tdx_qe_report *qr = &q->qe_report;
	if (!dcap_qe_identity_matches(&p->qe, qr->mr_signer, qr->isv_prod_id, qr->misc_select,
	                              qr->attributes))
		return refuse(r, err, 403, "qe_identity_mismatch");
	const struct dcap_qe_level *qe_level = dcap_qe_identity_level(&p->qe, qr->isv_svn);
	if (!qe_level)
		return refuse(r, err, 403, "qe_tcb_unknown");
	set_status(r->qe_status, qe_level->status);
	r->qe_tcb_date = qe_level->tcb_date;
	add_advisories(r, &qe_level->advisories);

	if (!pck->have_extension)
		return refuse(r, err, 403, "pck_extension_invalid");
	const struct dcap_sgx_extension *ext = &pck->extension;
	r->have_pck_extension = true;
	memcpy(r->fmspc, ext->fmspc, sizeof(r->fmspc));
	memcpy(r->pce_id, ext->pce_id, sizeof(r->pce_id));
	if (memcmp(ext->fmspc, p->tcb.fmspc, 6) != 0)
		return refuse(r, err, 503, "fmspc_mismatch");
	if (memcmp(ext->pce_id, p->tcb.pce_id, 2) != 0)
		return refuse(r, err, 503, "pceid_mismatch");
	const struct dcap_platform_level *level =
		dcap_tcb_platform_level(&p->tcb, ext->tcb_components, ext->pce_svn, q->td.tee_tcb_svn);
	if (!level)
		return refuse(r, err, 403, "tcb_level_unknown");
	set_status(r->platform_status, level->status);
	r->platform_tcb_date = level->tcb_date;
	add_advisories(r, &level->advisories);

	const struct dcap_module_level *module = NULL;
	const char *reason = NULL;
	if (dcap_tcb_module_check(&p->tcb, q->td.tee_tcb_svn, q->td.mr_signer_seam,
	                          q->td.seam_attributes, &module, &reason) != 0)
		return refuse(r, err, 403, reason);
	unsigned merged = level->status | qe_level->status;
	if (module) {
		set_status(r->module_status, module->status);
		r->module_tcb_date = module->tcb_date;
		add_advisories(r, &module->advisories);
		merged |= module->status;
	}
	set_status(r->tcb_status, merged);
	if (merged & DCAP_TCB_REVOKED)
		return refuse(r, err, 403, "tcb_revoked");
	if (tdx_quote_is_debug(q))
		return refuse(r, err, 403, "debug_td");
	return 0;
}

int dcap_quote_check_collateral(const struct dcap_prepared *p, const struct tdx_quote *q,
                                const struct dcap_pck *pck, int64_t at, struct dcap_result *out,
                                struct ee_error *err)
{
	out->collateral_next_update = p->next_update;
	out->tcb_evaluation_data_number = p->tcb.tcb_evaluation_data_number;
	if (check_revocation(p, pck, at, out, err) != 0 || check_collateral_time(p, at, out, err) != 0)
		return -1;
	out->signatures_verified = true;
	if (check_tcb(p, q, pck, out, err) != 0)
		return -1;
	out->verified = true;
	out->status = 0;
	snprintf(out->reason, sizeof(out->reason), "ok");
	return 0;
}

int dcap_verify_prepared(const struct dcap_prepared *p, const void *quote, size_t len, int64_t at,
                         struct dcap_result *out, struct ee_error *err)
{
	memset(out, 0, sizeof(*out));
	struct tdx_quote q;
	struct ee_error perr;
	int rc = -1;
	if (tdx_quote_parse(quote, len, &q, &perr) != 0) {
		refuse(out, err, perr.status, perr.reason);
	} else {
		struct dcap_pck *pck = NULL;
		if (dcap_quote_check(&p->trust, NULL, &q, at, &pck, out, err) == 0)
			rc = dcap_quote_check_collateral(p, &q, pck, at, out, err);
		dcap_pck_release(pck);
	}
	/* What the collateral says, whichever step refused. */
	out->collateral_next_update = p->next_update;
	out->tcb_evaluation_data_number = p->tcb.tcb_evaluation_data_number;
	return rc;
}

int dcap_verify(const struct dcap_trust *trust, const struct dcap_collateral *c, const void *quote,
                size_t len, int64_t at, struct dcap_result *out, struct ee_error *err)
{
	struct dcap_prepared *p;
	struct ee_error perr;
	if (dcap_collateral_prepare(trust, c, &p, &perr) != 0) {
		memset(out, 0, sizeof(*out));
		return refuse(out, err, perr.status, perr.reason);
	}
	int rc = dcap_verify_prepared(p, quote, len, at, out, err);
	dcap_prepared_free(p);
	return rc;
}
