/*
 * dcap_tcb.h - Intel's TDX TCB info (id "TDX", version 3) and TD QE identity
 * (id "TD_QE", version 2) parsed from their signed JSON text, the TCB status
 * vocabulary, and the level matching of shared/DCAP.md steps 7 to 10.
 *
 * Parsing checks the whole shape (types, lengths, ranges, known statuses)
 * and fails with 503 "tcb_info_invalid" / "qe_identity_invalid": collateral
 * that cannot be read cannot vouch for anything.  Parsed objects are
 * read-only afterwards; matching only reads them, so threads may share one.
 */
#ifndef EE_DCAP_TCB_H
#define EE_DCAP_TCB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define DCAP_ADVISORY_ID_MAX 32      /* bytes of one ID with its NUL ("INTEL-SA-01036") */
#define DCAP_LEVEL_ADVISORIES_MAX 64 /* advisory IDs one level may list */
#define DCAP_TCB_LEVELS_MAX 256
#define DCAP_MODULE_IDENTITIES_MAX 32
#define DCAP_TCB_JSON_MAX (256 * 1024)

/*
 * A TCB status as flags, so that merging is a union: the worse wins, and
 * OutOfDate with ConfigurationNeeded is OutOfDateConfigurationNeeded.
 * 0 is UpToDate.
 */
#define DCAP_TCB_SW_HARDENING_NEEDED 0x1u
#define DCAP_TCB_CONFIGURATION_NEEDED 0x2u
#define DCAP_TCB_OUT_OF_DATE 0x4u
#define DCAP_TCB_REVOKED 0x8u

/* The status name for flags: "UpToDate", ..., "Revoked". */
const char *dcap_tcb_status_name(unsigned status);
/* The flags for a status name; -1 for a name Intel does not use. */
int dcap_tcb_status_parse(const char *name, unsigned *out);

struct dcap_advisories {
	size_t count;
	char (*ids)[DCAP_ADVISORY_ID_MAX];
};

struct dcap_platform_level {
	uint8_t sgx_svn[16];
	uint16_t pce_svn;
	uint8_t tdx_svn[16];
	int64_t tcb_date; /* Unix seconds */
	unsigned status;
	struct dcap_advisories advisories;
};

struct dcap_module_level {
	uint8_t isv_svn;
	int64_t tcb_date;
	unsigned status;
	struct dcap_advisories advisories;
};

struct dcap_module_identity {
	char id[8]; /* "TDX_01" */
	uint8_t mr_signer[48];
	uint8_t attributes[8];
	uint8_t attributes_mask[8];
	size_t level_count;
	struct dcap_module_level *levels;
};

struct dcap_tcb_info {
	int64_t issue_date; /* Unix seconds */
	int64_t next_update;
	uint8_t fmspc[6];
	uint8_t pce_id[2];
	uint32_t tcb_evaluation_data_number;
	uint8_t module_mr_signer[48]; /* tdxModule */
	uint8_t module_attributes[8];
	uint8_t module_attributes_mask[8];
	size_t identity_count; /* tdxModuleIdentities (may be 0) */
	struct dcap_module_identity *identities;
	size_t level_count;
	struct dcap_platform_level *levels;
};

struct dcap_qe_level {
	uint16_t isv_svn;
	int64_t tcb_date;
	unsigned status;
	struct dcap_advisories advisories;
};

struct dcap_qe_identity {
	int64_t issue_date;
	int64_t next_update;
	uint32_t tcb_evaluation_data_number;
	uint8_t miscselect[4]; /* bytes as in the QE report (MISCSELECT is little-endian there) */
	uint8_t miscselect_mask[4];
	uint8_t attributes[16];
	uint8_t attributes_mask[16];
	uint8_t mr_signer[32];
	uint16_t isv_prod_id;
	size_t level_count;
	struct dcap_qe_level *levels;
};

/* Parses the tcbInfo JSON value; out is zeroed on failure. */
int dcap_tcb_info_parse(const char *text, size_t len, struct dcap_tcb_info *out,
                        struct ee_error *err);
void dcap_tcb_info_free(struct dcap_tcb_info *t);
/* Parses the enclaveIdentity JSON value; out is zeroed on failure. */
int dcap_qe_identity_parse(const char *text, size_t len, struct dcap_qe_identity *out,
                           struct ee_error *err);
void dcap_qe_identity_free(struct dcap_qe_identity *q);

/* Step 7: MRSIGNER, ISVPRODID, MISCSELECT and ATTRIBUTES (masked) of the QE report. */
bool dcap_qe_identity_matches(const struct dcap_qe_identity *qi, const uint8_t mr_signer[32],
                              uint16_t isv_prod_id, const uint8_t miscselect[4],
                              const uint8_t attributes[16]);
/* Step 7: the first QE level whose isvsvn <= isv_svn; NULL if none. */
const struct dcap_qe_level *dcap_qe_identity_level(const struct dcap_qe_identity *qi,
                                                   uint16_t isv_svn);

/*
 * Step 8: the first platform level whose 16 SGX components and PCESVN are
 * each <= the PCK certificate's and whose 16 TDX components are each <=
 * TEE_TCB_SVN.  As Intel's library does, when the first level the SGX side
 * meets is Revoked, that level is the answer whatever the TDX side says.
 * NULL if no level is met.
 */
const struct dcap_platform_level *dcap_tcb_platform_level(const struct dcap_tcb_info *t,
                                                          const uint8_t sgx_svn[16],
                                                          uint16_t pce_svn,
                                                          const uint8_t tee_tcb_svn[16]);

/*
 * Step 9: the TDX module.  With TEE_TCB_SVN[1] > 0 and tdxModuleIdentities
 * present, the identity "TDX_%02X" of TEE_TCB_SVN[1] must exist and match
 * MRSIGNERSEAM and SEAM_ATTRIBUTES (masked), and its first level with
 * isvsvn <= TEE_TCB_SVN[0] gives *level; otherwise tdxModule must match and
 * *level is NULL (no module status).  On failure returns -1 and *reason is
 * "tdx_module_mismatch" or "tdx_module_tcb_unknown".
 */
int dcap_tcb_module_check(const struct dcap_tcb_info *t, const uint8_t tee_tcb_svn[16],
                          const uint8_t mr_signer_seam[48], const uint8_t seam_attributes[8],
                          const struct dcap_module_level **level, const char **reason);

#endif
