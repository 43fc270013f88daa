/*
 * verifier.h - one decision: does this attest_response prove that the agent
 * runs the allowlisted release of its repository, in a genuine TDX TD, now?
 *
 * DESIGN.md section 5, in this order (each failure a stable reason):
 *   1. the evidence is complete and its measurements have one canonical form;
 *   2. sealed where the network requires it (forge-1);
 *   3. the quote parses as TDX (lib/tdx_quote.c);
 *   4. its REPORTDATA binds the measurements the agent reports and this
 *      nonce (attest.h); the registers the agent reports (mrtd, rtmr0-3)
 *      are the quote's;
 *   5. its PCK chain ends at a pinned root: Intel's SGX Root CA, pinned by
 *      its SHA-256 fingerprint, or on sandbox-1 the development root
 *      EE_DEV_ROOT_CA;
 *   6. what the quote proves by itself (dcap_quote_check): the chain's
 *      signatures up to that root and its validity, the QE report
 *      signature, the attestation key binding, the quote signature;
 *   7. only then anything fetched: the release's allowlist (every expected
 *      measurement, and every expected quote register), then the
 *      collateral and the rest of Intel DCAP (CRLs, TCB info and QE
 *      identity, TCB status; dcap_quote_check_collateral), then the
 *      network's policy on the TCB status and advisory IDs.
 * A failure to fetch collateral or an allowlist is reported as such
 * (verdict.unavailable), never as the agent's failure.
 *
 * One verifier per thread: it owns a database connection's caches, curl
 * handles and prepared collateral.  verifier_verify may block on the network.
 */
#ifndef EE_VERIFIER_H
#define EE_VERIFIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "allowlist.h"
#include "db.h"
#include "error.h"
#include "pccs.h"

#define VERIFIER_POLICY_MAX 512

/* What the agent sent in attest_response, with the context it is judged in. */
struct attest_evidence {
	const char *nonce_hex;            /* the nonce the control plane issued */
	const char *quote_b64;            /* NULL if absent */
	size_t quote_b64_len;
	const char *report_data_hex;      /* NULL if absent */
	struct json_object *measurements; /* NULL if absent */
	const char *network;
	const char *repo;
	const char *release_tag;
};

struct attest_verdict {
	bool verified;
	bool sealed;
	/* The failure was ours (collateral or allowlist could not be had), not the agent's. */
	bool unavailable;
	char reason[EE_REASON_MAX]; /* "ok", or why not */
	char tcb_status[48];        /* the merged TCB status, when DCAP got that far */
};

struct verifier_options {
	/* EE_TCB_ACCEPT (forge-1) and EE_SANDBOX_TCB_ACCEPT: comma-separated statuses. */
	char tcb_accept_forge[VERIFIER_POLICY_MAX];
	char tcb_accept_sandbox[VERIFIER_POLICY_MAX];
	/* EE_ADVISORY_DENY: advisory IDs refused on every network. */
	char advisory_deny[VERIFIER_POLICY_MAX];
	/* EE_SANDBOX_LEGACY_NONCE: accept a zero nonce half on sandbox-1 (never on forge-1). */
	bool legacy_nonce_sandbox;
	/* EE_DEV_ROOT_CA (a PEM file) and EE_DEV_COLLATERAL_FILE (collateral for it). */
	char *dev_root_pem;
	char *dev_collateral_json;
	/* EE_ALLOWLIST_DIR: sandbox-1 allowlists from <dir>/<owner>/<repo>/<tag>.json. */
	char allowlist_dir[512];
	struct pccs_options pccs;
	struct allowlist_options allowlist;
	/* Verified PCK chains kept per verifier (0: DCAP_PCK_CACHE_DEFAULT). */
	size_t pck_cache_max;
	/* Tests only: verify at this Unix time instead of now (0: now). */
	int64_t fixed_time_s;
	/*
	 * Tests only: take the root with this SHA-256 for Intel's (all zero:
	 * Intel's real one), so that a test hierarchy can stand for Intel's on
	 * forge-1 and its collateral come from a (fake) PCCS.
	 */
	unsigned char test_intel_root_sha256[32];
};

/* The defaults: UpToDate only, no denied advisories, Intel's PCS, GitHub, no development root. */
void verifier_options_default(struct verifier_options *o);
/* Reads the EE_* variables above (and the fetchers'); names the variable on error. */
int verifier_options_from_env(struct verifier_options *o, struct ee_error *err);
void verifier_options_free(struct verifier_options *o);

struct verifier;

/* db: this thread's connection, for the collateral and allowlist caches. */
int verifier_create(const struct verifier_options *opts, struct ee_db *db, struct verifier **out,
                    struct ee_error *err);
void verifier_destroy(struct verifier *v);
/* Decides one attestation; always fills out. */
void verifier_verify(struct verifier *v, const struct attest_evidence *ev,
                     struct attest_verdict *out);

/* The SHA-256 of Intel's SGX Root CA (DER), the one production root. */
extern const unsigned char verifier_intel_root_sha256[32];

#endif
