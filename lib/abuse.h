/*
 * abuse.h - abuse reports: filed by the launcher, authorized or denied by the
 * control plane's owner.  An authorized report covering a period fails that
 * period's settlement (ledger.c).
 */
#ifndef EE_ABUSE_H
#define EE_ABUSE_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "error.h"
#include "ledger.h"

/* Files a pending report against an existing node: 404 node_not_found. */
int abuse_file(struct ee_db *db, const char *node_id, bool has_start, int64_t period_start,
               bool has_end, int64_t period_end, const char *reported_by, const char *reason,
               char report_id[LEDGER_ID_LEN + 1], struct ee_error *err);

/* action "authorize" or "deny": 400 invalid_action, 400 report_not_found. */
int abuse_decide(struct ee_db *db, const char *report_id, const char *action,
                 const char *decided_by, const char **status_out, struct ee_error *err);

#endif
