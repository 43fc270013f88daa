/*
 * pccs.h - Intel DCAP collateral for a TDX quote, fetched from a PCCS or
 * Intel's PCS (API v4 paths, EE_PCCS_URL) and cached in the database
 * (collateral_cache) until each item's nextUpdate.
 *
 * The answer is the collateral JSON of shared/testdata/dcap/README.md, the
 * form the DCAP verifier reads: pck_crl_issuer_chain, root_ca_crl, pck_crl,
 * tcb_info_issuer_chain, tcb_info, tcb_info_signature,
 * qe_identity_issuer_chain, qe_identity, qe_identity_signature.  tcb_info
 * and qe_identity are the exact bytes of the "tcbInfo" / "enclaveIdentity"
 * value in the response body (Intel signs those bytes; nothing here
 * re-serialises them); the CRLs are hex DER whatever the server sent (DER,
 * PEM or hex).
 *
 * Items, their cache keys and their errors' <item>:
 *   tcb_info     GET {base}/tdx/certification/v4/tcb?fmspc=<FMSPC>   "tcb:<FMSPC>"
 *                issuer chain header TCB-Info-Issuer-Chain
 *   qe_identity  GET {base}/tdx/certification/v4/qe/identity          "qe"
 *                issuer chain header SGX-Enclave-Identity-Issuer-Chain
 *   pck_crl      GET {base}/sgx/certification/v4/pckcrl?ca=<ca>       "pckcrl:<ca>"
 *                issuer chain header SGX-PCK-CRL-Issuer-Chain
 *   root_ca_crl  GET {base}/sgx/certification/v4/rootcacrl (a PCCS) or,
 *                from Intel's PCS, the root certificate's CRL distribution
 *                point; issued by the root, so pck_crl_issuer_chain covers it
 * Redirects are followed (at most 5, never from https to http): no
 * credentials go with these requests, and signatures vouch for the answers.
 *
 * Caching.  An item is served from the cache while
 *     now < next_update - margin,  margin = min(refresh_margin, life / 10)
 * where life = next_update - fetched_at.  Past that it is fetched again; if
 * that fetch fails and the cached item is still before its next_update, the
 * cached one is used and a warning logged.  Otherwise the fetch's error is
 * returned.  A freshly fetched item is returned even if its nextUpdate has
 * passed (a stale PCCS): judging expiry is the verifier's job.  Threads
 * racing past the margin each fetch; the last write wins, which is harmless.
 *
 * Errors (never a verification failure):
 *   503 collateral_unavailable:<item>  network error, timeout, an HTTP status
 *                                      other than 200 (logged with the status)
 *   502 collateral_invalid:<item>      a body that does not parse, is over the
 *                                      size limit, lacks its signature, or a
 *                                      missing or unreadable issuer-chain header
 *   400 invalid_fmspc, invalid_pck_ca  bad arguments
 *   503 out_of_memory
 * A failure to read or write the cache is logged and otherwise ignored: it
 * is only a cache.
 *
 * A client is one worker thread's: it owns a CURL handle.  Blocking.
 */
#ifndef EE_PCCS_H
#define EE_PCCS_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "error.h"

#define PCCS_URL_MAX 512
#define PCCS_DEFAULT_URL "https://api.trustedservices.intel.com"
/* Where Intel's PCS keeps the root CA CRL (the root certificate's CRL distribution point). */
#define PCCS_INTEL_ROOT_CA_CRL_URL "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
#define PCCS_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define PCCS_DEFAULT_TIMEOUT_MS 20000
#define PCCS_DEFAULT_MAX_BODY_BYTES (1024 * 1024)
#define PCCS_DEFAULT_REFRESH_MARGIN_MS (3600 * 1000)

struct pccs_options {
	char base_url[PCCS_URL_MAX];        /* EE_PCCS_URL; trailing '/' ignored */
	char root_ca_crl_url[PCCS_URL_MAX]; /* empty: derived from base_url (above) */
	long connect_timeout_ms;
	long timeout_ms;
	size_t max_body_bytes;
	int64_t refresh_margin_ms;          /* the most an item is refreshed before nextUpdate */
};

/* The defaults: Intel's PCS, 5 s to connect, 20 s in all, 1 MiB, 1 hour. */
void pccs_options_default(struct pccs_options *o);
/* The defaults, then EE_PCCS_URL; 500 invalid_config:EE_PCCS_URL if it is not an http(s) URL. */
int pccs_options_from_env(struct pccs_options *o, struct ee_error *err);

struct pccs_client;

int pccs_client_create(const struct pccs_options *o, struct pccs_client **out,
                       struct ee_error *err);
void pccs_client_destroy(struct pccs_client *c);

/*
 * The collateral for a quote whose PCK certificate has this FMSPC (12 hex
 * digits, either case) and was issued by the "platform" or "processor" CA.
 * now_ms is the current time (Unix ms).  On success *collateral_json is a
 * malloc'd JSON text the caller frees.  Call outside any transaction on db:
 * it writes the cache in its own.
 */
int pccs_get_collateral(struct pccs_client *c, struct ee_db *db, const char *fmspc_hex,
                        const char *ca, int64_t now_ms, char **collateral_json,
                        struct ee_error *err);

/*
 * The same, kept in memory by the client: while no item of the collateral
 * is due for a refresh (the margin above), the same text is returned
 * without reading the database.  *collateral_json belongs to the client
 * and stays valid until its next call; *generation is a number that
 * changes whenever the text for this FMSPC and CA does (never 0), so a
 * caller can keep what it derived from the text without comparing it.
 */
int pccs_collateral(struct pccs_client *c, struct ee_db *db, const char *fmspc_hex,
                    const char *ca, int64_t now_ms, const char **collateral_json,
                    uint64_t *generation, struct ee_error *err);

#endif
