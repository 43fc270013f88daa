/*
 * dcap_x509.h - the X.509 side of DCAP verification, for lib/dcap*.c: PEM
 * certificate chains, chain links, validity times, CRLs reduced to sorted
 * serial lists, raw (r || s) ECDSA P-256 signatures, and the SGX extension
 * of a PCK certificate.
 *
 * Everything here is a pure function of its arguments or works on objects
 * the caller owns; nothing keeps global state, so worker threads may call
 * it at once.  Objects filled here are read-only afterwards.
 */
#ifndef EE_DCAP_X509_H
#define EE_DCAP_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Intel's chains have 2 (signing cert, root) or 3 (PCK, CA, root) certificates. */
#define DCAP_CHAIN_MAX 4
/* A PEM chain longer than this is not one of Intel's. */
#define DCAP_PEM_CHAIN_MAX (64 * 1024)

struct dcap_cert {
	X509 *x509;
	unsigned char *der; /* the certificate as it was encoded */
	size_t der_len;
	int64_t not_before; /* Unix seconds */
	int64_t not_after;
};

/* Leaf first, root last, as PEM chains list them. */
struct dcap_chain {
	size_t count;
	struct dcap_cert certs[DCAP_CHAIN_MAX];
};

/* The DER of each certificate block of a PEM text; der[i] point into buffer. */
struct dcap_pem_ders {
	size_t count;
	const unsigned char *der[DCAP_CHAIN_MAX];
	size_t len[DCAP_CHAIN_MAX];
	unsigned char *buffer;
};

/*
 * Every "-----BEGIN CERTIFICATE-----" block of the text, base64-decoded
 * (strictly).  Text outside the blocks may only be whitespace or trailing
 * NULs.  -1 for anything else, for no block or for more than
 * DCAP_CHAIN_MAX; out is then empty.  Decoding certificates costs far more
 * than this (OpenSSL 3 decodes each public key through its providers), so
 * the verifier splits first and decodes only the certificates it does not
 * already know byte for byte.
 */
int dcap_pem_split(const char *pem, size_t len, struct dcap_pem_ders *out);
void dcap_pem_ders_free(struct dcap_pem_ders *d);

/*
 * Every certificate block of the text, decoded (dcap_pem_split, then DER
 * that d2i_X509 consumes exactly).  Text outside the blocks
 * may only be whitespace or trailing NULs.  -1 for anything else, for no
 * certificate or for more than DCAP_CHAIN_MAX; out is then empty.
 */
int dcap_chain_from_pem(const char *pem, size_t len, struct dcap_chain *out);
void dcap_chain_free(struct dcap_chain *c);

/* One DER certificate into *out (which the caller frees with dcap_cert_free). */
int dcap_cert_from_der(const unsigned char *der, size_t len, struct dcap_cert *out);
void dcap_cert_free(struct dcap_cert *c);

/* child names parent as its issuer and parent_key verifies child's signature. */
bool dcap_cert_issued_by(X509 *child, X509 *parent, EVP_PKEY *parent_key);
/* The certificate has basicConstraints CA:TRUE. */
bool dcap_cert_is_ca(X509 *x);

/* An ASN.1 time as Unix seconds; -1 if it cannot be read. */
int dcap_asn1_time_to_unix(const ASN1_TIME *t, int64_t *out);

/* An ECDSA P-256 public key from raw x || y (the quote's attestation key); NULL if not on the curve. */
EVP_PKEY *dcap_p256_key_from_raw(const uint8_t xy[64]);
bool dcap_key_is_p256(EVP_PKEY *key);
/* Verifies a raw r || s ECDSA signature with SHA-256 over msg; true if it holds. */
bool dcap_ecdsa_verify_raw(EVP_PKEY *key, const void *msg, size_t len, const uint8_t sig[64]);

/*
 * A CRL checked and reduced to what verification needs.  The signature is
 * checked by dcap_crl_load's caller-given issuer key.
 */
struct dcap_crl {
	X509_NAME *issuer;
	int64_t this_update;
	int64_t next_update;
	ASN1_INTEGER **serials; /* sorted */
	size_t serial_count;
};

/* Parses DER, checks the signature with issuer_key: 0, or -1 with out empty. */
int dcap_crl_load(const unsigned char *der, size_t len, EVP_PKEY *issuer_key, struct dcap_crl *out);
void dcap_crl_free(struct dcap_crl *crl);
bool dcap_crl_lists(const struct dcap_crl *crl, const ASN1_INTEGER *serial);

/* What DCAP reads from the PCK certificate's SGX extension (OID 1.2.840.113741.1.13.1). */
struct dcap_sgx_extension {
	uint8_t tcb_components[16]; /* .2.1 - .2.16 */
	uint16_t pce_svn;           /* .2.17 */
	uint8_t cpu_svn[16];        /* .2.18 */
	uint8_t pce_id[2];          /* .3 */
	uint8_t fmspc[6];           /* .4 */
};

/* Parses the extension's value (the DER SEQUENCE); -1 on any malformed or missing part. */
int dcap_sgx_extension_parse(const uint8_t *der, size_t len, struct dcap_sgx_extension *out);
/* Finds the extension in the certificate (exactly once) and parses it. */
int dcap_sgx_extension_from_cert(X509 *cert, struct dcap_sgx_extension *out);

#endif
