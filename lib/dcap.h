/*
 * dcap.h - Intel DCAP verification of TDX quotes: pinned roots, collateral,
 * and the checks of shared/DCAP.md in their order, each failure with its
 * own stable reason.
 *
 * Use:
 *   dcap_trust_create + dcap_trust_add_file(intel_sgx_root_ca.pem)
 *       (+ a development root on a development network)
 *   dcap_collateral_from_json (or fill struct dcap_collateral from a PCCS)
 *   dcap_collateral_prepare   once per collateral: checks its own chains,
 *                             signatures and CRLs, parses TCB info and QE
 *                             identity, and keeps them
 *   dcap_verify_prepared      per quote, at a given time
 * dcap_verify does prepare + verify in one call.  A caller that fetches
 * the collateral per quote runs the two halves of dcap_verify_prepared
 * itself: dcap_quote_check before fetching, dcap_quote_check_collateral
 * after (below).
 *
 * The verification time is a parameter (Unix seconds), never the clock.
 * Verifying reports the TCB status; deciding which statuses a network
 * accepts is the caller's policy, except that "Revoked" never verifies.
 *
 * Threads: a trust and a prepared collateral are read-only once built and
 * may be shared by any number of threads verifying at once; nothing here
 * keeps global mutable state.  Each verification allocates its own
 * OpenSSL objects and frees them before returning.
 *
 * Reasons (the HTTP status in parentheses: 400 the quote is malformed, 403
 * the quote does not prove what it must, 503 the collateral or the trust
 * configuration is unusable, so nothing can be verified until it changes):
 *   the parse reasons of tdx_quote.h (400)
 *   pck_chain_invalid         the PCK chain is not 3 PEM certificates with P-256 keys (403)
 *   pck_chain_untrusted       its last certificate is not a pinned root (403)
 *   pck_chain_signature       a certificate is not issued and signed by the next,
 *                             or the middle one is not a CA (403)
 *   pck_cert_expired          a certificate of the chain expired before the time (403)
 *   pck_cert_not_yet_valid    ... or is not valid yet (403)
 *   collateral_root_mismatch  the collateral is signed under another pinned root (503)
 *   crl_expired               a CRL's nextUpdate is not after the time (503)
 *   crl_not_yet_valid         a CRL's thisUpdate is after the time (503)
 *   pck_crl_issuer_mismatch   the PCK CRL is not from the PCK certificate's issuer (503)
 *   pck_ca_revoked            the root CA CRL lists the PCK CA (403)
 *   pck_revoked               the PCK CRL lists the PCK certificate (403)
 *   qe_report_signature       the PCK key did not sign the QE report (403)
 *   qe_report_data_mismatch   QE REPORTDATA does not bind the attestation key (403)
 *   attestation_key_invalid   the attestation key is not a P-256 point (403)
 *   quote_signature           the attestation key did not sign header and body (403)
 *   tcb_signing_cert_expired / tcb_signing_cert_not_yet_valid
 *                             the TCB signing chain at the time (503)
 *   tcb_info_expired          not issueDate <= time < nextUpdate (503)
 *   tcb_info_not_yet_valid    issueDate after the time (503)
 *   qe_identity_expired / qe_identity_not_yet_valid   the same for the QE identity (503)
 *   qe_identity_mismatch      MRSIGNER, ISVPRODID, MISCSELECT or ATTRIBUTES (403)
 *   qe_tcb_unknown            no QE TCB level for its ISVSVN (403)
 *   pck_extension_invalid     the PCK certificate's SGX extension is missing or malformed (403)
 *   fmspc_mismatch            the TCB info is for another platform model (503)
 *   pceid_mismatch            the TCB info is for another PCE (503)
 *   tcb_level_unknown         no platform TCB level is met (403)
 *   tdx_module_mismatch       MRSIGNERSEAM / SEAM_ATTRIBUTES vs the TCB info (403)
 *   tdx_module_tcb_unknown    no TDX module level for TEE_TCB_SVN[0] (403)
 *   tcb_revoked               the merged status is Revoked (403)
 *   debug_td                  TD_ATTRIBUTES debug bit set (403)
 * Collateral and trust setup:
 *   collateral_invalid        the collateral JSON or a field of it (503)
 *   crl_invalid               a CRL or its issuer chain does not parse or verify (503)
 *   tcb_signing_chain_invalid the TCB info / QE identity issuer chain does not parse (503)
 *   tcb_signing_chain_untrusted   it does not verify up to a pinned root (503)
 *   tcb_signing_cert_revoked  the root CA CRL lists the TCB signing certificate (503)
 *   tcb_info_signature / qe_identity_signature   the signature over the JSON text (503)
 *   tcb_info_invalid / qe_identity_invalid       their JSON shape (503)
 *   trust_invalid             a root is not one self-signed CA certificate (500)
 *   trust_full                more than DCAP_TRUST_MAX_ROOTS roots (500)
 *   trust_empty               no root pinned (500)
 *   out_of_memory (503)
 */
#ifndef EE_DCAP_H
#define EE_DCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dcap_tcb.h"
#include "dcap_x509.h"
#include "error.h"

#define DCAP_TRUST_MAX_ROOTS 4
#define DCAP_ROOT_PEM_MAX (16 * 1024)
#define DCAP_COLLATERAL_JSON_MAX (1024 * 1024)
#define DCAP_CRL_MAX (512 * 1024) /* DER bytes of one CRL */
#define DCAP_MAX_ADVISORIES 192   /* platform, module and QE levels together */
#define DCAP_STATUS_MAX 40

/* Pinned root certificates.  Opaque; read-only once built. */
struct dcap_trust;

int dcap_trust_create(struct dcap_trust **out, struct ee_error *err);
/* Pins the one self-signed CA certificate of a PEM text. */
int dcap_trust_add_pem(struct dcap_trust *trust, const char *pem, size_t len, struct ee_error *err);
/* The same for one DER certificate. */
int dcap_trust_add_der(struct dcap_trust *trust, const unsigned char *der, size_t len,
                       struct ee_error *err);
int dcap_trust_add_file(struct dcap_trust *trust, const char *path, struct ee_error *err);
size_t dcap_trust_count(const struct dcap_trust *trust);
void dcap_trust_destroy(struct dcap_trust *trust);

/*
 * The collateral for one quote, as a PCCS serves it: the fields of
 * shared/testdata/dcap/..._collateral.json.  Texts are NUL-terminated; the
 * CRLs are DER; the signatures are r || s.
 */
struct dcap_collateral {
	char *pck_crl_issuer_chain; /* PEM: PCK CA, root */
	size_t pck_crl_issuer_chain_len;
	unsigned char *root_ca_crl; /* DER */
	size_t root_ca_crl_len;
	unsigned char *pck_crl; /* DER */
	size_t pck_crl_len;
	char *tcb_info_issuer_chain; /* PEM: TCB signing certificate, root */
	size_t tcb_info_issuer_chain_len;
	char *tcb_info; /* the signed JSON text, verbatim */
	size_t tcb_info_len;
	unsigned char tcb_info_signature[64];
	char *qe_identity_issuer_chain;
	size_t qe_identity_issuer_chain_len;
	char *qe_identity; /* the signed JSON text, verbatim */
	size_t qe_identity_len;
	unsigned char qe_identity_signature[64];
};

/*
 * Parses the JSON object with those eight string fields (CRLs and
 * signatures in hex).  Other keys are ignored.  503 collateral_invalid.
 */
int dcap_collateral_from_json(const char *text, size_t len, struct dcap_collateral *out,
                              struct ee_error *err);
void dcap_collateral_free(struct dcap_collateral *c);

/* Collateral checked once against a trust and parsed.  Opaque; read-only once built. */
struct dcap_prepared;

/*
 * Checks what does not depend on the quote or the time: the issuer chains
 * up to a pinned root, the CRL signatures, the TCB info and QE identity
 * signatures and shapes.  Copies what it keeps, so neither trust nor
 * collateral need outlive it.
 */
int dcap_collateral_prepare(const struct dcap_trust *trust, const struct dcap_collateral *c,
                            struct dcap_prepared **out, struct ee_error *err);
void dcap_prepared_free(struct dcap_prepared *p);
/* The parsed collateral, for callers that show or cache it. */
const struct dcap_tcb_info *dcap_prepared_tcb_info(const struct dcap_prepared *p);
const struct dcap_qe_identity *dcap_prepared_qe_identity(const struct dcap_prepared *p);
/* The earliest nextUpdate of the CRLs, TCB info and QE identity: refresh before it. */
int64_t dcap_prepared_next_update(const struct dcap_prepared *p);

struct dcap_result {
	bool verified;            /* every check passed and the status is not Revoked */
	bool signatures_verified; /* steps 1-6: PCK chain and CRLs, QE report, quote
	                             signature and current collateral all hold */
	char reason[EE_REASON_MAX]; /* "ok", or the first failure */
	int status;                 /* HTTP status of the failure; 0 when verified */

	/* Filled as far as verification got ("" / false / 0 until then). */
	char tcb_status[DCAP_STATUS_MAX];      /* merged: what a policy judges */
	char platform_status[DCAP_STATUS_MAX]; /* the matched platform level */
	char module_status[DCAP_STATUS_MAX];   /* the TDX module level, "" if none applies */
	char qe_status[DCAP_STATUS_MAX];       /* the QE identity level */
	size_t advisory_count;                 /* union of the three levels' advisory IDs */
	char advisory_ids[DCAP_MAX_ADVISORIES][DCAP_ADVISORY_ID_MAX];
	bool have_pck_extension;
	uint8_t fmspc[6];
	uint8_t pce_id[2];
	int64_t platform_tcb_date; /* Unix seconds of the levels' tcbDate */
	int64_t module_tcb_date;
	int64_t qe_tcb_date;
	uint32_t tcb_evaluation_data_number;
	int64_t collateral_next_update; /* as dcap_prepared_next_update */
};

/*
 * Verifies len bytes of quote at Unix time `at`.  0 when out->verified,
 * else -1 with err and out->reason set to the first failure.  out is
 * always filled.
 */
int dcap_verify_prepared(const struct dcap_prepared *p, const void *quote, size_t len, int64_t at,
                         struct dcap_result *out, struct ee_error *err);
/*
 * The same checks in two halves, so that a caller can refuse a forged
 * quote before it fetches anything for it (lib/verifier.c):
 *
 * dcap_quote_check: what needs no collateral, steps 2 to 5 but the CRLs:
 *   the PCK chain is leaf, CA, a root of trust (pck_chain_invalid,
 *   pck_chain_untrusted); each signature verifies up to it
 *   (pck_chain_signature); each certificate is valid at `at`
 *   (pck_cert_not_yet_valid, pck_cert_expired); the QE report signature,
 *   the attestation key binding and the quote signature.  On success *pck
 *   is the verified chain (a reference the caller releases).
 * dcap_quote_check_collateral: the rest, with current collateral: the
 *   collateral is under the chain's root (collateral_root_mismatch), the
 *   CRLs are current and from the chain's CAs, neither certificate is
 *   revoked (pck_ca_revoked, pck_revoked), then steps 6 to 11.
 * dcap_verify_prepared is the two in a row, and gives the same reasons.
 *
 * cache (NULL: none) keeps verified chains by the SHA-256 of their DER, so
 * that a platform seen before costs no certificate decoding and no chain
 * signature; validity at `at` and revocation are still judged on every
 * quote.  One cache per thread: it is not locked.
 */
struct dcap_pck;
struct dcap_pck_cache;
struct tdx_quote;

#define DCAP_PCK_CACHE_DEFAULT 1024 /* chains kept per verifier thread, about 1 KiB each */
#define DCAP_PCK_CACHE_LIMIT (1024 * 1024)

struct dcap_pck_cache_stats {
	uint64_t hits;
	uint64_t misses;    /* chains verified and added */
	uint64_t evictions; /* the least recently used one dropped for a new one */
	size_t entries;
};

/* A cache of at most max_entries chains (1 .. DCAP_PCK_CACHE_LIMIT). */
int dcap_pck_cache_create(size_t max_entries, struct dcap_pck_cache **out, struct ee_error *err);
void dcap_pck_cache_destroy(struct dcap_pck_cache *c);
void dcap_pck_cache_get_stats(const struct dcap_pck_cache *c, struct dcap_pck_cache_stats *out);

int dcap_quote_check(const struct dcap_trust *trust, struct dcap_pck_cache *cache,
                     const struct tdx_quote *q, int64_t at, struct dcap_pck **pck,
                     struct dcap_result *out, struct ee_error *err);
/* Fills out further (it does not clear what dcap_quote_check wrote). */
int dcap_quote_check_collateral(const struct dcap_prepared *p, const struct tdx_quote *q,
                                const struct dcap_pck *pck, int64_t at, struct dcap_result *out,
                                struct ee_error *err);
void dcap_pck_release(struct dcap_pck *pck);
/* The PCK certificate's SGX extension, or NULL if it is missing or malformed. */
const struct dcap_sgx_extension *dcap_pck_extension(const struct dcap_pck *pck);
/* The chain's CA is Intel's Processor CA (its PCK CRL is ca=processor), not the Platform CA. */
bool dcap_pck_processor_ca(const struct dcap_pck *pck);

/* dcap_collateral_prepare then dcap_verify_prepared; a collateral failure is the result's reason. */
int dcap_verify(const struct dcap_trust *trust, const struct dcap_collateral *c, const void *quote,
                size_t len, int64_t at, struct dcap_result *out, struct ee_error *err);

#endif
