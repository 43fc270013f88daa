/* dcap_x509.c - certificates, CRLs, signatures and the SGX extension; see dcap_x509.h. */
#include "dcap_x509.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/x509v3.h>

#include "base64.h"

static const char pem_begin[] = "-----BEGIN CERTIFICATE-----";
static const char pem_end[] = "-----END CERTIFICATE-----";
#define PEM_BEGIN_LEN (sizeof(pem_begin) - 1)
#define PEM_END_LEN (sizeof(pem_end) - 1)

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_base64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=';
}

/* Where needle first occurs in hay[from, len), or len. */
static size_t find(const char *hay, size_t len, size_t from, const char *needle, size_t nlen)
{
	for (size_t i = from; i + nlen <= len; i++) {
		if (memcmp(hay + i, needle, nlen) == 0)
			return i;
	}
	return len;
}

int dcap_cert_from_der(const unsigned char *der, size_t len, struct dcap_cert *out)
{
	memset(out, 0, sizeof(*out));
	if (len == 0 || len > LONG_MAX)
		return -1;
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	if (!x || p != der + len) {
		X509_free(x);
		ERR_clear_error();
		return -1;
	}
	out->der = malloc(len);
	if (!out->der || dcap_asn1_time_to_unix(X509_get0_notBefore(x), &out->not_before) != 0 ||
	    dcap_asn1_time_to_unix(X509_get0_notAfter(x), &out->not_after) != 0) {
		free(out->der);
		X509_free(x);
		memset(out, 0, sizeof(*out));
		return -1;
	}
	memcpy(out->der, der, len);
	out->der_len = len;
	out->x509 = x;
	return 0;
}

void dcap_cert_free(struct dcap_cert *c)
{
	if (!c)
		return;
	X509_free(c->x509);
	free(c->der);
	memset(c, 0, sizeof(*c));
}

void dcap_chain_free(struct dcap_chain *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->count; i++)
		dcap_cert_free(&c->certs[i]);
	c->count = 0;
}

void dcap_pem_ders_free(struct dcap_pem_ders *d)
{
	if (!d)
		return;
	free(d->buffer);
	memset(d, 0, sizeof(*d));
}

int dcap_pem_split(const char *pem, size_t len, struct dcap_pem_ders *out)
{
	memset(out, 0, sizeof(*out));
	if (!pem || len > DCAP_PEM_CHAIN_MAX)
		return -1;
	while (len > 0 && pem[len - 1] == '\0')
		len--;
	/* The base64 of a block is gathered at b64, then decoded in place after the blocks before it. */
	char *b64 = malloc(len + 1);
	out->buffer = malloc(base64_decoded_max(len) + 1);
	int rc = -1;
	if (!b64 || !out->buffer)
		goto done;
	size_t i = 0, used = 0;
	for (;;) {
		while (i < len && is_space(pem[i]))
			i++;
		if (i == len)
			break;
		if (len - i < PEM_BEGIN_LEN || memcmp(pem + i, pem_begin, PEM_BEGIN_LEN) != 0)
			goto done;
		i += PEM_BEGIN_LEN;
		size_t end = find(pem, len, i, pem_end, PEM_END_LEN);
		if (end == len)
			goto done;
		size_t n = 0;
		for (; i < end; i++) {
			if (is_space(pem[i]))
				continue;
			if (!is_base64_char(pem[i]))
				goto done;
			b64[n++] = pem[i];
		}
		i = end + PEM_END_LEN;
		size_t der_len;
		if (out->count == DCAP_CHAIN_MAX || n == 0 ||
		    base64_decode(b64, n, out->buffer + used, &der_len) != 0 || der_len == 0)
			goto done;
		out->der[out->count] = out->buffer + used;
		out->len[out->count] = der_len;
		out->count++;
		used += der_len;
	}
	rc = out->count > 0 ? 0 : -1;
done:
	free(b64);
	if (rc != 0)
		dcap_pem_ders_free(out);
	return rc;
}

int dcap_chain_from_pem(const char *pem, size_t len, struct dcap_chain *out)
{
	memset(out, 0, sizeof(*out));
	struct dcap_pem_ders ders;
	if (dcap_pem_split(pem, len, &ders) != 0)
		return -1;
	for (size_t i = 0; i < ders.count; i++) {
		if (dcap_cert_from_der(ders.der[i], ders.len[i], &out->certs[i]) != 0) {
			dcap_chain_free(out);
			dcap_pem_ders_free(&ders);
			return -1;
		}
		out->count++;
	}
	dcap_pem_ders_free(&ders);
	return 0;
}

bool dcap_cert_issued_by(X509 *child, X509 *parent, EVP_PKEY *parent_key)
{
	if (!child || !parent || !parent_key)
		return false;
	if (X509_NAME_cmp(X509_get_issuer_name(child), X509_get_subject_name(parent)) != 0)
		return false;
	int ok = X509_verify(child, parent_key);
	ERR_clear_error();
	return ok == 1;
}

bool dcap_cert_is_ca(X509 *x)
{
	uint32_t flags = X509_get_extension_flags(x);
	return (flags & EXFLAG_INVALID) == 0 && (flags & EXFLAG_CA) != 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's method). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int dcap_asn1_time_to_unix(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
		ERR_clear_error();
		return -1;
	}
	*out = days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) * 86400 +
	       tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
	return 0;
}

EVP_PKEY *dcap_p256_key_from_raw(const uint8_t xy[64])
{
	/* From parameters: several times faster than decoding a SubjectPublicKeyInfo. */
	uint8_t point[65];
	point[0] = 0x04; /* uncompressed */
	memcpy(point + 1, xy, 64);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY *key = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	/* Importing the point checks that it lies on the curve. */
	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return key;
}

bool dcap_key_is_p256(EVP_PKEY *key)
{
	char name[64];
	size_t n = 0;
	if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(key, name, sizeof(name), &n) != 1) {
		ERR_clear_error();
		return false;
	}
	return strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0;
}

/* One 32-byte big-endian integer as a DER INTEGER at out; returns the bytes written (<= 35). */
static size_t der_integer(const uint8_t v[32], uint8_t *out)
{
	size_t skip = 0;
	while (skip < 31 && v[skip] == 0)
		skip++;
	size_t n = 32 - skip;
	bool pad = (v[skip] & 0x80) != 0;
	out[0] = 0x02;
	out[1] = (uint8_t)(n + pad);
	if (pad)
		out[2] = 0;
	memcpy(out + 2 + pad, v + skip, n);
	return 2 + pad + n;
}

bool dcap_ecdsa_verify_raw(EVP_PKEY *key, const void *msg, size_t len, const uint8_t sig[64])
{
	/* SEQUENCE { INTEGER r, INTEGER s }: at most 2 + 35 + 35 bytes, so a one-byte length. */
	uint8_t der[2 + 35 + 35];
	size_t n = der_integer(sig, der + 2);
	n += der_integer(sig + 32, der + 2 + n);
	der[0] = 0x30;
	der[1] = (uint8_t)n;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
	          EVP_DigestVerify(ctx, der, n + 2, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

static int serial_compare(const void *a, const void *b)
{
	return ASN1_INTEGER_cmp(*(ASN1_INTEGER *const *)a, *(ASN1_INTEGER *const *)b);
}

void dcap_crl_free(struct dcap_crl *crl)
{
	if (!crl)
		return;
	X509_NAME_free(crl->issuer);
	for (size_t i = 0; i < crl->serial_count; i++)
		ASN1_INTEGER_free(crl->serials[i]);
	free(crl->serials);
	memset(crl, 0, sizeof(*crl));
}

int dcap_crl_load(const unsigned char *der, size_t len, EVP_PKEY *issuer_key, struct dcap_crl *out)
{
	memset(out, 0, sizeof(*out));
	if (!der || len == 0 || len > LONG_MAX || !issuer_key)
		return -1;
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
	int rc = -1;
	if (!crl || p != der + len || X509_CRL_verify(crl, issuer_key) != 1)
		goto done;
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
	if (dcap_asn1_time_to_unix(X509_CRL_get0_lastUpdate(crl), &out->this_update) != 0 || !next ||
	    dcap_asn1_time_to_unix(next, &out->next_update) != 0)
		goto done;
	out->issuer = X509_NAME_dup(X509_CRL_get_issuer(crl));
	if (!out->issuer)
		goto done;
	STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
	int count = revoked ? sk_X509_REVOKED_num(revoked) : 0;
	if (count > 0) {
		out->serials = calloc((size_t)count, sizeof(*out->serials));
		if (!out->serials)
			goto done;
		for (int i = 0; i < count; i++) {
			const ASN1_INTEGER *serial =
				X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i));
			out->serials[i] = serial ? ASN1_INTEGER_dup(serial) : NULL;
			if (!out->serials[i])
				goto done;
			out->serial_count++;
		}
		qsort(out->serials, out->serial_count, sizeof(*out->serials), serial_compare);
	}
	rc = 0;
done:
	X509_CRL_free(crl);
	ERR_clear_error();
	if (rc != 0)
		dcap_crl_free(out);
	return rc;
}

bool dcap_crl_lists(const struct dcap_crl *crl, const ASN1_INTEGER *serial)
{
	if (!serial)
		return true; /* a certificate without a serial cannot be shown unrevoked */
	size_t lo = 0, hi = crl->serial_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = ASN1_INTEGER_cmp(crl->serials[mid], serial);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/*
 * A cursor over DER.  der_next() reads one element with a definite length
 * that fits in what remains, and moves past it.
 */
struct der {
	const uint8_t *p;
	size_t left;
};

/* tag < 0: any tag of any class. */
static int der_next(struct der *d, int tag, const uint8_t **content, size_t *content_len)
{
	if (d->left == 0 || d->left > LONG_MAX)
		return -1;
	const unsigned char *p = d->p;
	long len = 0;
	int got_tag = 0, cls = 0;
	int ret = ASN1_get_object(&p, &len, &got_tag, &cls, (long)d->left);
	if ((ret & 0x80) || (ret & 0x01)) { /* an error, or an indefinite length */
		ERR_clear_error();
		return -1;
	}
	size_t header = (size_t)(p - d->p);
	if (len < 0 || header > d->left || (size_t)len > d->left - header)
		return -1;
	if (tag >= 0) {
		bool constructed = (ret & V_ASN1_CONSTRUCTED) != 0;
		if (cls != V_ASN1_UNIVERSAL || got_tag != tag || constructed != (tag == V_ASN1_SEQUENCE))
			return -1;
	}
	*content = p;
	*content_len = (size_t)len;
	d->p = p + len;
	d->left -= header + (size_t)len;
	return 0;
}

/* A non-negative DER INTEGER (minimal encoding) no larger than max. */
static int der_uint(const uint8_t *c, size_t n, uint32_t max, uint32_t *out)
{
	if (n == 0 || n > 5 || (c[0] & 0x80))
		return -1;
	if (n > 1 && c[0] == 0 && !(c[1] & 0x80))
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | c[i];
	if (v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* 1.2.840.113741.1.13.1, the SGX extension, as DER OID content. */
static const uint8_t sgx_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};
#define SGX_OID_LEN sizeof(sgx_oid)

/* The arc after the SGX OID (".2" -> 2), or -1 when oid is not one level under it. */
static int sgx_arc(const uint8_t *oid, size_t n, const uint8_t *prefix, size_t prefix_len)
{
	if (n != prefix_len + 1 || memcmp(oid, prefix, prefix_len) != 0 || (oid[prefix_len] & 0x80))
		return -1;
	return oid[prefix_len];
}

/* SEQUENCE { OID, value } at d: the OID's content and the value's TLV. */
static int der_pair(struct der *d, const uint8_t **oid, size_t *oid_len, struct der *value)
{
	const uint8_t *seq;
	size_t seq_len;
	if (der_next(d, V_ASN1_SEQUENCE, &seq, &seq_len) != 0)
		return -1;
	struct der in = {seq, seq_len};
	if (der_next(&in, V_ASN1_OBJECT, oid, oid_len) != 0 || in.left == 0)
		return -1;
	*value = in;
	/* Exactly one value follows the OID. */
	const uint8_t *c;
	size_t n;
	struct der probe = in;
	if (der_next(&probe, -1, &c, &n) != 0 || probe.left != 0)
		return -1;
	return 0;
}

static int parse_tcb(const uint8_t *content, size_t len, struct dcap_sgx_extension *out)
{
	uint8_t tcb_prefix[SGX_OID_LEN + 1];
	memcpy(tcb_prefix, sgx_oid, SGX_OID_LEN);
	tcb_prefix[SGX_OID_LEN] = 2;
	uint32_t seen = 0;
	struct der d = {content, len};
	while (d.left > 0) {
		const uint8_t *oid, *c;
		size_t oid_len, n;
		struct der value;
		if (der_pair(&d, &oid, &oid_len, &value) != 0)
			return -1;
		int arc = sgx_arc(oid, oid_len, tcb_prefix, sizeof(tcb_prefix));
		if (arc < 1 || arc > 18)
			continue; /* a component this verifier does not know of */
		if (seen & (1u << arc))
			return -1;
		seen |= 1u << arc;
		uint32_t v;
		if (arc <= 16) {
			if (der_next(&value, V_ASN1_INTEGER, &c, &n) != 0 || der_uint(c, n, 255, &v) != 0)
				return -1;
			out->tcb_components[arc - 1] = (uint8_t)v;
		} else if (arc == 17) {
			if (der_next(&value, V_ASN1_INTEGER, &c, &n) != 0 || der_uint(c, n, 65535, &v) != 0)
				return -1;
			out->pce_svn = (uint16_t)v;
		} else {
			if (der_next(&value, V_ASN1_OCTET_STRING, &c, &n) != 0 || n != 16)
				return -1;
			memcpy(out->cpu_svn, c, 16);
		}
	}
	return seen == 0x7fffeu ? 0 : -1; /* arcs 1..18, each once */
}

int dcap_sgx_extension_parse(const uint8_t *der, size_t len, struct dcap_sgx_extension *out)
{
	memset(out, 0, sizeof(*out));
	struct der top = {der, len};
	const uint8_t *content;
	size_t content_len;
	if (!der || der_next(&top, V_ASN1_SEQUENCE, &content, &content_len) != 0 || top.left != 0)
		return -1;
	bool have_tcb = false, have_pce_id = false, have_fmspc = false;
	struct der d = {content, content_len};
	while (d.left > 0) {
		const uint8_t *oid, *c;
		size_t oid_len, n;
		struct der value;
		if (der_pair(&d, &oid, &oid_len, &value) != 0)
			return -1;
		switch (sgx_arc(oid, oid_len, sgx_oid, SGX_OID_LEN)) {
		case 2:
			if (have_tcb || der_next(&value, V_ASN1_SEQUENCE, &c, &n) != 0 || parse_tcb(c, n, out) != 0)
				return -1;
			have_tcb = true;
			break;
		case 3:
			if (have_pce_id || der_next(&value, V_ASN1_OCTET_STRING, &c, &n) != 0 || n != 2)
				return -1;
			memcpy(out->pce_id, c, 2);
			have_pce_id = true;
			break;
		case 4:
			if (have_fmspc || der_next(&value, V_ASN1_OCTET_STRING, &c, &n) != 0 || n != 6)
				return -1;
			memcpy(out->fmspc, c, 6);
			have_fmspc = true;
			break;
		default:
			break; /* PPID, SGX type, platform instance and the rest: not needed here */
		}
	}
	if (!have_tcb || !have_pce_id || !have_fmspc) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

int dcap_sgx_extension_from_cert(X509 *cert, struct dcap_sgx_extension *out)
{
	memset(out, 0, sizeof(*out));
	const X509_EXTENSION *found = NULL;
	int count = X509_get_ext_count(cert);
	for (int i = 0; i < count; i++) {
		const X509_EXTENSION *ext = X509_get_ext(cert, i);
		const ASN1_OBJECT *obj = X509_EXTENSION_get_object((X509_EXTENSION *)ext);
		if (obj && OBJ_length(obj) == SGX_OID_LEN &&
		    memcmp(OBJ_get0_data(obj), sgx_oid, SGX_OID_LEN) == 0) {
			if (found)
				return -1; /* twice: which one would count? */
			found = ext;
		}
	}
	if (!found)
		return -1;
	const ASN1_OCTET_STRING *data = X509_EXTENSION_get_data((X509_EXTENSION *)found);
	if (!data || ASN1_STRING_length(data) <= 0)
		return -1;
	return dcap_sgx_extension_parse(ASN1_STRING_get0_data(data), (size_t)ASN1_STRING_length(data),
	                                out);
}
