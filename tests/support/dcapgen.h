/*
 * dcapgen.h - a fake, Intel-shaped DCAP hierarchy for tests: TDX quotes and
 * their collateral signed by keys made on the spot.  TEST ONLY: nothing
 * here proves anything about hardware.
 *
 * One struct dcapgen is one "Intel + one platform":
 *
 *   root CA (self-signed, "Intel SGX Root CA" shape, pinned as the dev root)
 *    +- PCK Platform CA (or Processor CA)            root CA CRL lists CAs
 *    |   +- PCK leaf, SGX extension 1.2.840.113741.1.13.1   PCK CRL lists leaves
 *    +- TCB signing certificate -> signs TCB info and QE identity
 *   attestation key -> signs quotes; its hash is in the QE report, which
 *   the PCK leaf key signs.
 *
 * Keys are fresh ECDSA P-256 keys on every dcapgen_create (or the root
 * given in root_key_pem / root_cert_pem, so a development network can keep
 * one pinned root across runs), or derived from options.key_seed when a
 * fixture must be the same from run to run.  Quotes follow shared/DCAP.md
 * byte for byte; the collateral is the JSON of
 * shared/testdata/dcap/README.md, so one parser reads Intel's sample and
 * ours.
 *
 * Every knob has a valid default: dcapgen_defaults() gives a platform that
 * verifies as UpToDate with no advisory IDs at options.now.  A test changes
 * one knob to break one verification step (the table at the end of this
 * file says which knob breaks which step of DCAP.md).
 *
 * Functions return 0, or -1 after printing why on stderr ("dcapgen: ...",
 * with OpenSSL's error queue): this is test support, a failure here is a
 * broken test.
 */
#ifndef EE_TEST_DCAPGEN_H
#define EE_TEST_DCAPGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Sizes of the quote (DCAP.md). */
#define DCAPGEN_HEADER_LEN 48
#define DCAPGEN_BODY_V4_LEN 584     /* TDX 1.0 TD report body (v4, v5 type 2) */
#define DCAPGEN_BODY_V5_15_LEN 648  /* TDX 1.5 body (v5 type 3) */
#define DCAPGEN_QE_REPORT_LEN 384
#define DCAPGEN_SIG_LEN 64          /* ECDSA P-256 r||s */
#define DCAPGEN_PUBKEY_LEN 64       /* P-256 point x||y */
#define DCAPGEN_REPORT_DATA_LEN 64

#define DCAPGEN_TEE_TDX 0x81
#define DCAPGEN_TEE_SGX 0x00
#define DCAPGEN_KEY_ECDSA_P256 2
#define DCAPGEN_CERT_DATA_PCK_CHAIN 5  /* certification data: PEM chain */
#define DCAPGEN_CERT_DATA_QE_REPORT 6  /* certification data: QE report + nested */

#define DCAPGEN_MAX_TCB_LEVELS 8
#define DCAPGEN_MAX_ISV_LEVELS 4        /* per QE identity / per module identity */
#define DCAPGEN_MAX_MODULE_IDENTITIES 4
#define DCAPGEN_MAX_ADVISORIES 8
#define DCAPGEN_MAX_AUTH_DATA 256

/* tcbStatus strings as Intel spells them. */
#define DCAPGEN_UP_TO_DATE "UpToDate"
#define DCAPGEN_SW_HARDENING_NEEDED "SWHardeningNeeded"
#define DCAPGEN_CONFIGURATION_NEEDED "ConfigurationNeeded"
#define DCAPGEN_CONFIGURATION_AND_SW_HARDENING_NEEDED "ConfigurationAndSWHardeningNeeded"
#define DCAPGEN_OUT_OF_DATE "OutOfDate"
#define DCAPGEN_OUT_OF_DATE_CONFIGURATION_NEEDED "OutOfDateConfigurationNeeded"
#define DCAPGEN_REVOKED "Revoked"

/* One certificate of the hierarchy. */
struct dcapgen_cert_options {
	time_t not_before;
	time_t not_after;
	/*
	 * Signed by a stray key under the right issuer name: its signature
	 * fails.  For pck_ca only the quote's chain carries that copy (same
	 * key, name and serial); the collateral's copy is sound.  For the root
	 * it is the pinned root itself whose self-signature fails.
	 */
	bool wrong_signer;
	/*
	 * Listed as revoked (reason keyCompromise) in its issuer's CRL: the
	 * root CA CRL for the PCK CA and the TCB signer, the PCK CRL for the
	 * leaf.  Meaningless for the root.
	 */
	bool revoked;
};

/* One CRL (root CA CRL, signed by the root; PCK CRL, signed by the PCK CA). */
struct dcapgen_crl_options {
	time_t this_update;
	time_t next_update;
	bool wrong_signer;          /* signed by a stray key: its signature fails */
	unsigned extra_revoked;     /* random serials listed besides any revoked cert */
};

/* What the PCK leaf certifies: the SGX extension 1.2.840.113741.1.13.1. */
struct dcapgen_platform {
	unsigned char ppid[16];     /* .1 */
	unsigned char sgx_svn[16];  /* .2.1 .. .2.16, the CPU's SGX TCB components */
	uint16_t pcesvn;            /* .2.17 */
	unsigned char cpusvn[16];   /* .2.18 */
	unsigned char pce_id[2];    /* .3 */
	unsigned char fmspc[6];     /* .4 */
	/*
	 * false (default): issued by "Intel SGX PCK Platform CA", SGX type 1
	 * (Scalable) with .6 PlatformInstanceID and .7 Configuration, CRL URL
	 * ca=platform.  true: "Intel SGX PCK Processor CA", SGX type 0
	 * (Standard), only .1-.5, ca=processor.
	 */
	bool processor_ca;
};

/* A TCB level keyed by one ISV SVN (QE identity, TDX module identities). */
struct dcapgen_isv_level {
	uint16_t isvsvn;
	const char *tcb_status;   /* NULL: "UpToDate" */
	time_t tcb_date;
	/* Up to DCAPGEN_MAX_ADVISORIES, the first NULL ends; none: no "advisoryIDs". */
	const char *advisory_ids[DCAPGEN_MAX_ADVISORIES];
};

/* A platform TCB level of the TCB info. */
struct dcapgen_tcb_level {
	unsigned char sgx_svn[16]; /* "sgxtcbcomponents", compared with the PCK's .2.1-.2.16 */
	uint16_t pcesvn;           /* "pcesvn", compared with the PCK's .2.17 */
	unsigned char tdx_svn[16]; /* "tdxtcbcomponents", compared with TEE_TCB_SVN */
	const char *tcb_status;    /* NULL: "UpToDate" */
	time_t tcb_date;
	const char *advisory_ids[DCAPGEN_MAX_ADVISORIES];
};

/* "tdxModule" or one "tdxModuleIdentities" entry. */
struct dcapgen_tdx_module {
	uint8_t major;              /* identities only: "id" is TDX_%02X of it (TEE_TCB_SVN[1]) */
	unsigned char mrsigner[48];
	unsigned char attributes[8];
	unsigned char attributes_mask[8];
	/* identities only: levels matched on TEE_TCB_SVN[0] */
	struct dcapgen_isv_level levels[DCAPGEN_MAX_ISV_LEVELS];
	size_t level_count;
};

/* The signed "tcbInfo" text. */
struct dcapgen_tcb_info {
	const char *id;             /* "TDX" */
	int version;                /* 3 */
	time_t issue_date;
	time_t next_update;
	int tcb_type;               /* 0 */
	int tcb_evaluation_data_number;
	bool fmspc_mismatch;        /* "fmspc" differs from the PCK's in its last byte */
	bool pce_id_mismatch;       /* "pceId" differs from the PCK's in its last byte */
	struct dcapgen_tdx_module tdx_module;      /* levels unused */
	struct dcapgen_tdx_module module_identities[DCAPGEN_MAX_MODULE_IDENTITIES];
	size_t module_identity_count;              /* 0: no "tdxModuleIdentities" */
	struct dcapgen_tcb_level levels[DCAPGEN_MAX_TCB_LEVELS];
	size_t level_count;
	bool bad_signature;         /* flip a bit of the signature's r */
};

/* The signed "enclaveIdentity" text. */
struct dcapgen_qe_identity {
	const char *id;             /* "TD_QE" */
	int version;                /* 2 */
	time_t issue_date;
	time_t next_update;
	int tcb_evaluation_data_number;
	/* Written as hex of the little-endian bytes, the order they have in the report. */
	uint32_t miscselect;
	uint32_t miscselect_mask;
	unsigned char attributes[16];
	unsigned char attributes_mask[16];
	unsigned char mrsigner[32];
	uint16_t isvprodid;
	struct dcapgen_isv_level levels[DCAPGEN_MAX_ISV_LEVELS];
	size_t level_count;
	bool bad_signature;         /* flip a bit of the signature's r */
};

/* The QE's own SGX report body, as the platform's QE would produce it. */
struct dcapgen_qe_report {
	unsigned char cpusvn[16];
	uint32_t miscselect;
	unsigned char attributes[16];
	unsigned char mrenclave[32];
	unsigned char mrsigner[32];
	uint16_t isvprodid;
	uint16_t isvsvn;
};

struct dcapgen_options {
	time_t now;                 /* every default date is relative to it */

	struct dcapgen_cert_options root;
	struct dcapgen_cert_options pck_ca;
	struct dcapgen_cert_options pck_leaf;
	struct dcapgen_cert_options tcb_signer;
	struct dcapgen_crl_options root_crl;
	struct dcapgen_crl_options pck_crl;

	/*
	 * An unpinned root: a second self-signed root with the pinned one's
	 * name and its own key.  pck_chain_rogue_root: it issues a forged PCK
	 * CA (same name, own key) that issues the leaf, and the quote's chain
	 * is leaf, forged CA, unpinned root -- an attacker's chain.  The
	 * collateral stays genuine (pck_crl_issuer_chain is the real CA and
	 * the pinned root; the real CA signs the PCK CRL), as a PCCS would
	 * serve it.  tcb_chain_rogue_root: it issues the TCB signer and ends
	 * tcb_info_issuer_chain / qe_identity_issuer_chain.  dcapgen_root_pem
	 * always returns the pinned root; the root CA CRL is the pinned root's.
	 */
	bool pck_chain_rogue_root;
	bool tcb_chain_rogue_root;

	/* Use this root (PEM private key and certificate) instead of a new one. */
	const char *root_key_pem;
	const char *root_cert_pem;

	/*
	 * Non-NULL: the same hierarchy on every run.  Each private key is
	 * SHA-256(key_seed "/key/" label) reduced to a P-256 scalar in [1, n-1],
	 * each serial (certificates, and the CRLs' extra_revoked entries) the
	 * first 20 bytes of SHA-256(key_seed "/serial/" label), where label
	 * names the role ("root", "pck-ca", "pck-leaf", "tcb-signer",
	 * "attestation", ...).  So one seed and the same options give the same
	 * keys, names, serials, dates and texts; only the ECDSA signatures
	 * change (OpenSSL 3.0 has no RFC 6979 nonces), and the stray keys of
	 * wrong_signer stay random (they only have to be wrong).  With the same
	 * seed and the first one's root (root_key_pem / root_cert_pem), a second
	 * hierarchy is a variant of the first: its CRLs list the first one's
	 * certificates when asked to revoke their own, its quotes chain to the
	 * same pinned root bytes, its TCB info is signed by the same key.
	 */
	const char *key_seed;

	struct dcapgen_platform platform;
	struct dcapgen_tcb_info tcb_info;
	struct dcapgen_qe_identity qe_identity;
	struct dcapgen_qe_report qe_report;
};

/* Per quote: the TD report, the header, and what to break. */
struct dcapgen_quote_options {
	uint16_t version;           /* 4 (default) or 5 */
	uint16_t body_type;         /* v5 only: 2 = TDX 1.0 (584), 3 = TDX 1.5 (648); any other
	                               value is written as given, with a 584-byte body */
	uint16_t key_type;          /* 2 */
	uint32_t tee_type;          /* 0x81; 0 is SGX and must be refused */
	uint16_t qe_svn;            /* header @8 */
	uint16_t pce_svn;           /* header @10 */
	unsigned char qe_vendor_id[16]; /* Intel's 939a7233f79c4ca9940a0db3957f0607 */
	unsigned char user_data[20];

	/* TD report body (DCAP.md offsets); REPORTDATA is dcapgen_quote's argument. */
	unsigned char tee_tcb_svn[16];
	unsigned char mrseam[48];
	unsigned char mrsignerseam[48];
	unsigned char seam_attributes[8];
	unsigned char td_attributes[8]; /* byte 0 bit 0 is DEBUG */
	unsigned char xfam[8];
	unsigned char mrtd[48];
	unsigned char mrconfigid[48];
	unsigned char mrowner[48];
	unsigned char mrownerconfig[48];
	unsigned char rtmr[4][48];
	unsigned char tee_tcb_svn2[16]; /* body type 3 only */
	unsigned char mrservicetd[48];  /* body type 3 only */

	unsigned char qe_auth_data[DCAPGEN_MAX_AUTH_DATA];
	size_t qe_auth_data_len;    /* default 32: bytes 0..31, as Intel's sample */

	uint16_t outer_cert_type;   /* 6 (QE report certification data) */
	uint16_t inner_cert_type;   /* 5 (PCK chain) */
	bool chain_without_root;    /* the PEM chain is leaf and CA only */
	bool pem_without_nul;       /* Intel's QE ends the PEM with a NUL; this leaves it out */
	size_t trailing_zeros;      /* zero bytes after the signature data (Intel's sample has 70) */

	bool bad_quote_signature;     /* flip a bit of the quote signature's r */
	bool bad_qe_report_signature; /* flip a bit of the QE report signature's r */
	bool qe_report_data_unbound;  /* QE REPORTDATA[0..32] hashes another key */
	bool qe_report_data_tail_nonzero; /* QE REPORTDATA[32..64] not zero */
};

struct dcapgen;

/* The UpToDate configuration at now = time(NULL), or at the given time. */
void dcapgen_defaults(struct dcapgen_options *o);
void dcapgen_defaults_at(struct dcapgen_options *o, time_t now);
void dcapgen_quote_defaults(struct dcapgen_quote_options *q);

/* Makes keys, certificates, CRLs and the signed TCB info and QE identity. */
int dcapgen_create(const struct dcapgen_options *o, struct dcapgen **out);
void dcapgen_destroy(struct dcapgen *g);

/*
 * A quote over report_data (NULL: zeros), q NULL for the defaults.  The
 * caller frees *quote with free().  Each call signs a fresh QE report.
 */
int dcapgen_quote(struct dcapgen *g, const unsigned char report_data[DCAPGEN_REPORT_DATA_LEN],
                  const struct dcapgen_quote_options *q, unsigned char **quote, size_t *len);

/* The collateral JSON (testdata/dcap/README.md format); free() it. */
int dcapgen_collateral_json(struct dcapgen *g, char **json);
/* The pinned root certificate (the "dev root"), PEM; free() it. */
int dcapgen_root_pem(struct dcapgen *g, char **pem);
/* The root's private key, PEM (to keep a dev root across runs); free() it. */
int dcapgen_root_key_pem(struct dcapgen *g, char **pem);
/*
 * The attestation key, PEM: with a quote of this hierarchy it makes the
 * development kit ee-agent re-signs quotes from (docs/AGENT.md); free() it.
 */
int dcapgen_attestation_key_pem(struct dcapgen *g, char **pem);

/* Borrowed views for tests that check the pieces with OpenSSL. */
enum dcapgen_cert_id {
	DCAPGEN_ROOT,        /* the pinned root */
	DCAPGEN_ROGUE_ROOT,  /* NULL unless a *_rogue_root knob is set */
	DCAPGEN_PCK_CA,      /* the CA of the quote's chain, issuer of the leaf */
	DCAPGEN_CRL_CA,      /* the collateral's (genuine) CA, issuer of the PCK CRL; the
	                        same as DCAPGEN_PCK_CA unless pck_chain_rogue_root or
	                        pck_ca.wrong_signer */
	DCAPGEN_PCK_LEAF,
	DCAPGEN_TCB_SIGNER,
	DCAPGEN_ATTESTATION, /* key only: there is no certificate */
};
X509 *dcapgen_cert(const struct dcapgen *g, enum dcapgen_cert_id which);
EVP_PKEY *dcapgen_key(const struct dcapgen *g, enum dcapgen_cert_id which);
X509_CRL *dcapgen_root_crl(const struct dcapgen *g);
X509_CRL *dcapgen_pck_crl(const struct dcapgen *g);
/* The exact signed texts and their signatures (64 bytes r||s). */
const char *dcapgen_tcb_info_text(const struct dcapgen *g);
const char *dcapgen_qe_identity_text(const struct dcapgen *g);
const unsigned char *dcapgen_tcb_info_signature(const struct dcapgen *g);
const unsigned char *dcapgen_qe_identity_signature(const struct dcapgen *g);
/* The attestation public key as it appears in quotes (x||y). */
void dcapgen_attestation_key(const struct dcapgen *g, unsigned char out[DCAPGEN_PUBKEY_LEN]);

/*
 * The defaults (dcapgen_defaults_at(o, now); D = day, Y = 365 D):
 *   validity   root now-1Y..now+20Y, PCK CA now-1Y..now+10Y, leaf and TCB
 *              signer now-30D..now+7Y; CRLs now-1D..now+29D (PCK CRL with
 *              2 other revoked serials, random or from key_seed, root CRL
 *              with none, no revokedCertificates field at all); TCB info
 *              and QE identity issued now-1D, nextUpdate now+29D
 *   names      Intel's CNs ("Intel SGX Root CA", "Intel SGX PCK Platform
 *              CA", "Intel SGX PCK Certificate", "Intel SGX TCB Signing"),
 *              O = "EasyEnclave test DCAP (not Intel)", L/ST/C as Intel's;
 *              20-byte serials; AKI, CRL DP, SKI, KU, BC in Intel's order
 *   platform   FMSPC 90C06F000000, PCE-ID 0000, SGX SVNs 3,3,2,2,4,1,0,5,0..,
 *              PCESVN 11, CPUSVN = the SGX SVNs, PPID 10..1F
 *   TCB info   "TDX" v3, tcbType 0, tcbEvaluationDataNumber 17; tdxModule
 *              mrsigner 0 (48 bytes), attributes 0, mask FF..; identities
 *              TDX_03 (level isvsvn 3 UpToDate) and TDX_01 (4 UpToDate, 2
 *              OutOfDate + INTEL-SA-01036); tcbLevels:
 *                0: sgx 2,2,2,2,3,1,0,5,0.. pcesvn 11 tdx 1,0,2,0.. UpToDate
 *                1: the same with pcesvn 5, OutOfDate, INTEL-SA-00106 and
 *                   INTEL-SA-00837
 *   QE ident.  "TD_QE" v2, miscselect 00000000 / FFFFFFFF, attributes
 *              11000000000000000000000000000000 / FBFFFFFFFFFFFFFF0000000000000000,
 *              Intel's TD QE MRSIGNER DC9E2A7C..54A8C5, isvprodid 2, levels
 *              isvsvn 4 UpToDate, isvsvn 2 OutOfDate + INTEL-SA-00615
 *   QE report  Intel's shape: ATTRIBUTES 1500000000000000E7000000.. (bit 0x04 of
 *              byte 0 set: outside the mask), MISCSELECT 0, MRSIGNER as the
 *              identity, ISVPRODID 2, ISVSVN 4
 *   quote      v4, key type 2, TEE 0x81, QE vendor Intel's, TEE_TCB_SVN
 *              05 00 02 00.., MRSIGNERSEAM 0, SEAM_ATTRIBUTES 0,
 *              TD_ATTRIBUTES 00 00 00 10 00.. (SEPT_VE_DISABLE, not DEBUG),
 *              XFAM e7 02 06 00.., MRTD/RTMR0-3 the byte ramps of
 *              testagent.h (a0.., 00.., 30.., 60.., 90..), MRSEAM 0x50^i,
 *              QE auth data 00..1f, PEM chain leaf/CA/root ending in a NUL
 *
 * Texts are written the way Intel writes them: no spaces, keys in Intel's
 * order, hex in capitals, dates "YYYY-MM-DDThh:mm:ssZ", component
 * "category"/"type" strings on the first components as Intel has them, an
 * "advisoryIDs" array only on levels that have some.  Signatures and CRLs
 * in the collateral are lowercase hex, like the sample.
 *
 * Which knob breaks which step of DCAP.md's order (everything else at its
 * default; dates relative to options.now, the verification time).  The
 * reason in brackets is what lib/dcap.c answered when this was written.
 *
 *  1 parse       q.tee_type = 0 [not_a_tdx_quote]; q.version = 3
 *                [unsupported_quote_version]; q.key_type = 3; q.version = 5
 *                with q.body_type = 4; q.outer_cert_type / q.inner_cert_type
 *                other than 6 / 5 [unsupported_certification_data];
 *                truncating the returned bytes
 *  2 PCK chain   pck_chain_rogue_root [pck_chain_untrusted];
 *                q.chain_without_root [pck_chain_invalid];
 *                pck_leaf.wrong_signer, pck_ca.wrong_signer
 *                [pck_chain_signature]; pck_leaf / pck_ca .not_after < now
 *                [pck_cert_expired] or .not_before > now
 *                [pck_cert_not_yet_valid]; pck_leaf.revoked [pck_revoked];
 *                pck_ca.revoked (root CRL lists the CA, which is also the
 *                collateral's CRL issuer [crl_invalid]);
 *                root_crl / pck_crl .next_update < now [crl_expired],
 *                .wrong_signer [crl_invalid]; root.wrong_signer breaks the
 *                pinned root itself [trust_invalid when pinning it]
 *  3 QE report   q.bad_qe_report_signature [qe_report_signature]
 *  4 QE binding  q.qe_report_data_unbound, q.qe_report_data_tail_nonzero
 *                [qe_report_data_mismatch]
 *  5 quote sig   q.bad_quote_signature [quote_signature]
 *  6 collateral  tcb_info.bad_signature [tcb_info_signature],
 *                qe_identity.bad_signature [qe_identity_signature],
 *                tcb_signer.wrong_signer, tcb_chain_rogue_root
 *                [tcb_signing_chain_untrusted], tcb_signer.not_after < now
 *                [tcb_signing_cert_expired], tcb_signer.revoked
 *                [tcb_signing_cert_revoked], tcb_info.next_update <= now
 *                [tcb_info_expired], tcb_info.issue_date > now
 *                [tcb_info_not_yet_valid], the same for qe_identity
 *  7 QE identity qe_report.mrsigner[0] ^= 1; qe_report.isvprodid++;
 *                qe_report.miscselect = 1 (under the FFFFFFFF mask);
 *                qe_report.attributes[0] ^= 0x01 (masked in)
 *                [qe_identity_mismatch] -- flipping 0x04 is masked out and
 *                still verifies; qe_report.isvsvn = 3 (level 2: OutOfDate,
 *                INTEL-SA-00615) or 1 (below every level [qe_tcb_unknown]);
 *                qe_identity.levels[0].tcb_status = any status
 *  8 platform    tcb_info.fmspc_mismatch [fmspc_mismatch],
 *                tcb_info.pce_id_mismatch [pceid_mismatch];
 *                platform.pcesvn = 10 (level 1: OutOfDate with two
 *                advisories); platform.pcesvn = 4 or platform.sgx_svn[0] = 1
 *                or q.tee_tcb_svn[2] = 1 (below every level
 *                [tcb_level_unknown]); tcb_info.levels[0].tcb_status = any
 *                status ("Revoked" [tcb_revoked])
 *  9 TDX module  q.mrsignerseam[0] ^= 1, q.seam_attributes[0] = 1
 *                [tdx_module_mismatch]; q.tee_tcb_svn[1] = 1 selects TDX_01
 *                (levels 4 UpToDate, 2 OutOfDate): with q.tee_tcb_svn[0] =
 *                5 UpToDate, 3 OutOfDate + INTEL-SA-01036, 1 below every
 *                level [tdx_module_tcb_unknown]; q.tee_tcb_svn[1] = 2 names
 *                an identity the TCB info lacks [tdx_module_mismatch];
 *                tcb_info.module_identity_count = 0 leaves
 *                "tdxModuleIdentities" out.  The platform levels'
 *                tdxtcbcomponents[0..1] are 1 and 0, so these moves of
 *                TEE_TCB_SVN[0..1] never change the platform level, whether
 *                or not a verifier compares those two components.
 * 10 status      any *.tcb_status / advisory_ids above; platform.pcesvn =
 *                10 with qe_identity.levels[0].tcb_status =
 *                "ConfigurationNeeded" merges to OutOfDateConfigurationNeeded
 * 11 debug       q.td_attributes[0] |= 1 [debug_td]
 */

#endif
