/*
 * quote_dev.c - quotes for development networks, on machines without TDX.
 *
 * DEVELOPMENT ONLY: these quotes prove nothing about hardware.  A
 * development kit (written by ee-dcapgen -k, docs/AGENT.md) holds a quote
 * made by a test DCAP hierarchy (quote.bin) and the private attestation key
 * that signed it (attestation_key.pem).  The QE report binds that key, not
 * the TD report, so the agent can put any REPORTDATA into the TD report and
 * sign the quote again: the result verifies under the kit's root, which a
 * sandbox-1 control plane pins with EE_DEV_ROOT_CA.  forge-1 pins Intel's
 * root only, and the configuration refuses this source there.
 */
#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "tdx_quote.h"

#define DEV_QUOTE_MAX (1024 * 1024)

struct quote_dev {
	unsigned char *template;
	size_t template_len;
	size_t report_data_offset;
	size_t signed_offset, signed_len;
	size_t signature_offset;
	EVP_PKEY *key;
};

static int read_file(const char *dir, const char *name, unsigned char **out, size_t *out_len,
                     struct ee_error *err)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return ee_fail_detail(err, 500, "dev_kit_unreadable", name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return ee_fail_detail(err, 500, "dev_kit_unreadable", name);
	unsigned char *buf = malloc(DEV_QUOTE_MAX + 1);
	size_t len = buf ? fread(buf, 1, DEV_QUOTE_MAX + 1, f) : 0;
	bool bad = !buf || ferror(f) || len > DEV_QUOTE_MAX;
	fclose(f);
	if (bad) {
		free(buf);
		return ee_fail_detail(err, 500, "dev_kit_unreadable", name);
	}
	*out = buf;
	*out_len = len;
	return 0;
}

/* The key's public point as the quote carries it: x || y, 32 bytes each. */
static int public_point(EVP_PKEY *key, unsigned char out[64])
{
	unsigned char point[65];
	size_t len = 0;
	if (EVP_PKEY_get_octet_string_param(key, "encoded-pub-key", point, sizeof(point), &len) != 1 ||
	    len != 65 || point[0] != 0x04)
		return -1;
	memcpy(out, point + 1, 64);
	return 0;
}

int quote_dev_open(const char *dir, struct quote_dev **out, struct ee_error *err)
{
	struct quote_dev *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return ee_fail(err, 500, "out_of_memory");
	unsigned char *pem = NULL;
	size_t pem_len = 0;
	struct tdx_quote q;
	struct ee_error perr;
	unsigned char point[64];
	if (read_file(dir, "quote.bin", &dev->template, &dev->template_len, err) != 0 ||
	    read_file(dir, "attestation_key.pem", &pem, &pem_len, err) != 0)
		goto fail;
	BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
	dev->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	OPENSSL_cleanse(pem, pem_len);
	free(pem);
	pem = NULL;
	if (!dev->key || EVP_PKEY_get_base_id(dev->key) != EVP_PKEY_EC ||
	    EVP_PKEY_get_bits(dev->key) != 256 || public_point(dev->key, point) != 0) {
		ee_fail_detail(err, 500, "dev_kit_invalid", "attestation_key.pem");
		goto fail;
	}
	if (tdx_quote_parse(dev->template, dev->template_len, &q, &perr) != 0) {
		ee_fail_detail(err, 500, "dev_kit_invalid", perr.reason);
		goto fail;
	}
	/* A key that did not make the quote would sign quotes that never verify. */
	if (memcmp(q.attestation_key, point, 64) != 0) {
		ee_fail_detail(err, 500, "dev_kit_invalid", "attestation_key_mismatch");
		goto fail;
	}
	dev->report_data_offset = (size_t)(q.td.report_data - q.data);
	dev->signed_offset = (size_t)(q.signed_data - q.data);
	dev->signed_len = q.signed_len;
	dev->signature_offset = (size_t)(q.signature - q.data);
	*out = dev;
	return 0;
fail:
	free(pem);
	quote_dev_close(dev);
	return -1;
}

void quote_dev_close(struct quote_dev *dev)
{
	if (!dev)
		return;
	free(dev->template);
	EVP_PKEY_free(dev->key);
	free(dev);
}

/* ECDSA P-256 over SHA-256(data), as r || s (the quote's form). */
static int sign_raw(EVP_PKEY *key, const unsigned char *data, size_t len, unsigned char out[64])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[80];
	size_t der_len = sizeof(der);
	int rc = -1;
	if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestSign(md, der, &der_len, data, len) == 1) {
		const unsigned char *p = der;
		ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
		if (sig && BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32) == 32 &&
		    BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32) == 32)
			rc = 0;
		ECDSA_SIG_free(sig);
	}
	EVP_MD_CTX_free(md);
	return rc;
}

int quote_dev_get(struct quote_dev *dev, const unsigned char report_data[64],
                  unsigned char **quote, size_t *quote_len, struct ee_error *err)
{
	unsigned char *q = malloc(dev->template_len);
	if (!q)
		return ee_fail(err, 500, "out_of_memory");
	memcpy(q, dev->template, dev->template_len);
	memcpy(q + dev->report_data_offset, report_data, 64);
	if (sign_raw(dev->key, q + dev->signed_offset, dev->signed_len,
	             q + dev->signature_offset) != 0) {
		free(q);
		return ee_fail(err, 500, "dev_sign_failed");
	}
	*quote = q;
	*quote_len = dev->template_len;
	return 0;
}
