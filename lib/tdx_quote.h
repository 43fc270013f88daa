/*
 * tdx_quote.h - parsing an Intel TDX quote (versions 4 and 5, ECDSA P-256
 * attestation key) into pointers to its fields.
 *
 * The layout is in shared/DCAP.md.  Parsing copies nothing and verifies
 * nothing: struct tdx_quote points into the caller's buffer, which must
 * outlive it.  Every length is checked against what remains before it is
 * read, so any input (a network message) either parses or fails with a
 * stable reason and HTTP status 400:
 *
 *   quote_too_large                   more than TDX_QUOTE_MAX_BYTES
 *   quote_truncated                   a field or a size points past the end
 *   unsupported_quote_version         not 4 or 5
 *   unsupported_attestation_key_type  not 2 (ECDSA P-256)
 *   not_a_tdx_quote                   TEE type not 0x81 (0x00 is SGX)
 *   unsupported_body_type             v5 body descriptor type not 2 or 3
 *   body_size_mismatch                v5 body size not the one of its type
 *   unsupported_certification_data    outer type not 6 or inner type not 5
 *   signature_data_size_mismatch      the parts do not add up to its length
 *   certification_data_size_mismatch  the same for the outer certification data
 *   invalid_pck_chain                 the PCK chain is not PEM text
 *   quote_trailing_bytes              a non-zero byte after the signature data
 *
 * Real quotes may carry zero padding after the signature data (Intel's v4
 * sample has 70 bytes of it): zeros there are accepted and counted in
 * padding_len; anything else there is refused.
 */
#ifndef EE_TDX_QUOTE_H
#define EE_TDX_QUOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Real quotes are about 5 KB (most of it the PEM chain); anything near this is hostile. */
#define TDX_QUOTE_MAX_BYTES (128 * 1024)

#define TDX_QUOTE_HEADER_LEN 48
#define TDX_QUOTE_BODY_DESCRIPTOR_LEN 6 /* v5: type u16, size u32 */
#define TDX_TD10_BODY_LEN 584
#define TDX_TD15_BODY_LEN 648
#define TDX_BODY_TYPE_TD10 2
#define TDX_BODY_TYPE_TD15 3
#define TDX_TEE_TYPE_TDX 0x81u
#define TDX_ATTESTATION_KEY_ECDSA_P256 2
#define TDX_CERT_DATA_PCK_CHAIN 5
#define TDX_CERT_DATA_QE_REPORT 6
#define TDX_SIGNATURE_LEN 64 /* r || s, big-endian */
#define TDX_ATTESTATION_KEY_LEN 64 /* x || y, big-endian */
#define TDX_QE_REPORT_LEN 384
#define TDX_REPORT_DATA_LEN 64

/* The TD report body: each pointer is at the field's first byte in the quote. */
struct tdx_td_report {
	const uint8_t *tee_tcb_svn;     /* 16 */
	const uint8_t *mr_seam;         /* 48 */
	const uint8_t *mr_signer_seam;  /* 48 */
	const uint8_t *seam_attributes; /* 8 */
	const uint8_t *td_attributes;   /* 8; bit 0 of byte 0 = debug */
	const uint8_t *xfam;            /* 8 */
	const uint8_t *mr_td;           /* 48 */
	const uint8_t *mr_config_id;    /* 48 */
	const uint8_t *mr_owner;        /* 48 */
	const uint8_t *mr_owner_config; /* 48 */
	const uint8_t *rtmr[4];         /* 48 each */
	const uint8_t *report_data;     /* 64 */
	const uint8_t *tee_tcb_svn2;    /* 16; TDX 1.5 body only, else NULL */
	const uint8_t *mr_service_td;   /* 48; TDX 1.5 body only, else NULL */
};

/* The QE's SGX report body (384 bytes), signed by the PCK key. */
struct tdx_qe_report {
	const uint8_t *raw;         /* all 384 bytes, what the signature covers */
	const uint8_t *cpu_svn;     /* 16 */
	const uint8_t *misc_select; /* 4 (u32 little-endian) */
	const uint8_t *attributes;  /* 16 */
	const uint8_t *mr_enclave;  /* 32 */
	const uint8_t *mr_signer;   /* 32 */
	const uint8_t *report_data; /* 64 */
	uint16_t isv_prod_id;
	uint16_t isv_svn;
};

struct tdx_quote {
	const uint8_t *data; /* the whole buffer as given */
	size_t len;

	/* header */
	const uint8_t *header; /* 48 */
	uint16_t version;
	uint16_t attestation_key_type;
	uint32_t tee_type;
	uint16_t qe_svn;
	uint16_t pce_svn;
	const uint8_t *qe_vendor_id; /* 16 */
	const uint8_t *user_data;    /* 20 */

	/* body: v4 is always TDX 1.0; v5 says which in its descriptor */
	uint16_t body_type; /* TDX_BODY_TYPE_TD10 or _TD15 */
	const uint8_t *body;
	size_t body_len;
	struct tdx_td_report td;

	/* what the quote signature covers: header, v5 descriptor and body */
	const uint8_t *signed_data;
	size_t signed_len;

	/* signature data */
	uint32_t signature_data_len;
	const uint8_t *signature;       /* 64 */
	const uint8_t *attestation_key; /* 64 */
	uint32_t certification_data_len; /* of the outer (type 6) certification data */
	struct tdx_qe_report qe_report;
	const uint8_t *qe_report_signature; /* 64 */
	const uint8_t *qe_auth_data;        /* qe_auth_data_len bytes (may be 0) */
	size_t qe_auth_data_len;
	/* The PEM text as it stands in the quote (often ending in one NUL). */
	const char *pck_chain_pem;
	size_t pck_chain_pem_len;

	size_t padding_len; /* zero bytes after the signature data */
};

/*
 * Parses len bytes at data.  0 and *out filled, or -1 with err (status 400)
 * and *out zeroed.  Never reads outside [data, data + len).
 */
int tdx_quote_parse(const void *data, size_t len, struct tdx_quote *out, struct ee_error *err);

/* TD_ATTRIBUTES bit 0: the TD runs in debug mode (its memory is readable by the host). */
bool tdx_quote_is_debug(const struct tdx_quote *q);

#endif
