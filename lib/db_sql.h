/*
 * db_sql.h - every SQL statement the programs run, grouped by table.
 *
 * Included by db.h to build the statement ids and by db.c to build the
 * statement text, so a statement is written exactly once.  Parameters are
 * always bound (?N), never spliced.  Porting to another engine means
 * rewriting this file and db.c, nothing else.
 */
/* clang-format off */

/* accounts */
DB_STMT(SQL_ACCOUNT_GET,
	"SELECT balance_cents, system FROM accounts WHERE account_id = ?1")
DB_STMT(SQL_ACCOUNT_ENSURE,
	"INSERT OR IGNORE INTO accounts (account_id, balance_cents, system, created_at, updated_at)"
	" VALUES (?1, 0, 0, ?2, ?2)")
DB_STMT(SQL_ACCOUNT_ADD,
	"UPDATE accounts SET balance_cents = balance_cents + ?2, updated_at = ?3 WHERE account_id = ?1")
DB_STMT(SQL_ACCOUNT_LOCKED_SUM,
	"SELECT COALESCE(SUM(amount_cents), 0) FROM usage_reports"
	" WHERE account_id = ?1 AND status = 'locked'")
DB_STMT(SQL_ACCOUNTS_LIST,
	"SELECT a.account_id, a.balance_cents, a.system,"
	" (SELECT COALESCE(SUM(u.amount_cents), 0) FROM usage_reports u"
	"   WHERE u.account_id = a.account_id AND u.status = 'locked')"
	" FROM accounts a ORDER BY a.system DESC, a.account_id LIMIT ?1")

/* ledger_txns, ledger_entries */
DB_STMT(SQL_TXN_INSERT,
	"INSERT INTO ledger_txns (txn_id, kind, ref_type, ref_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
DB_STMT(SQL_ENTRY_INSERT,
	"INSERT INTO ledger_entries (txn_id, account_id, delta_cents, reason, created_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5)")
DB_STMT(SQL_ENTRIES_PAGE,
	"SELECT e.entry_id, e.txn_id, e.account_id, e.delta_cents, e.reason, e.created_at,"
	" t.kind, t.ref_type, t.ref_id"
	" FROM ledger_entries e JOIN ledger_txns t ON t.txn_id = e.txn_id"
	" WHERE e.entry_id > ?2 AND (?1 IS NULL OR e.account_id = ?1)"
	" ORDER BY e.entry_id LIMIT ?3")
DB_STMT(SQL_CHECK_TOTAL,
	"SELECT COALESCE(SUM(balance_cents), 0), COUNT(*) FROM accounts")
DB_STMT(SQL_CHECK_ACCOUNT_VS_ENTRIES,
	"SELECT a.account_id FROM accounts a"
	" WHERE a.balance_cents != (SELECT COALESCE(SUM(e.delta_cents), 0) FROM ledger_entries e"
	"                           WHERE e.account_id = a.account_id) LIMIT 1")
DB_STMT(SQL_CHECK_TXN_BALANCED,
	"SELECT txn_id FROM ledger_entries GROUP BY txn_id HAVING SUM(delta_cents) != 0 LIMIT 1")
DB_STMT(SQL_CHECK_NEGATIVE,
	"SELECT account_id FROM accounts WHERE balance_cents < 0 AND account_id != '@mint' LIMIT 1")
DB_STMT(SQL_CHECK_ESCROW,
	"SELECT (SELECT balance_cents FROM accounts WHERE account_id = '@escrow'),"
	" (SELECT COALESCE(SUM(amount_cents), 0) FROM usage_reports WHERE status = 'locked')")

/* nodes, node_events */
DB_STMT(SQL_NODE_GET,
	"SELECT node_id, status, price_cents_per_vcpu_hour, stake_tier, stake_amount_cents,"
	" attestation_status, health_status, last_attested_at, last_health_at, created_at,"
	" updated_at, node_token_hash FROM nodes WHERE node_id = ?1")
DB_STMT(SQL_NODE_INSERT,
	"INSERT INTO nodes (node_id, status, price_cents_per_vcpu_hour, stake_tier,"
	" stake_amount_cents, node_token_hash, created_at, updated_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)")
DB_STMT(SQL_NODE_UPDATE,
	"UPDATE nodes SET status = ?2, price_cents_per_vcpu_hour = ?3, stake_tier = ?4,"
	" stake_amount_cents = ?5, node_token_hash = ?6, updated_at = ?7 WHERE node_id = ?1")
DB_STMT(SQL_NODE_ENSURE,
	"INSERT OR IGNORE INTO nodes (node_id, created_at, updated_at) VALUES (?1, ?2, ?2)")
DB_STMT(SQL_NODE_MARK_ATTESTATION,
	"UPDATE nodes SET attestation_status = ?2, last_attested_at = ?3, updated_at = ?3"
	" WHERE node_id = ?1")
DB_STMT(SQL_NODE_MARK_HEALTH,
	"UPDATE nodes SET health_status = ?2, last_health_at = ?3, updated_at = ?3 WHERE node_id = ?1")
DB_STMT(SQL_NODES_LIST,
	"SELECT node_id, status, price_cents_per_vcpu_hour, stake_tier, stake_amount_cents,"
	" attestation_status, health_status, last_attested_at, last_health_at"
	" FROM nodes ORDER BY node_id LIMIT ?1")
DB_STMT(SQL_NODE_EVENT_INSERT,
	"INSERT INTO node_events (node_id, event_type, occurred_at, detail) VALUES (?1, ?2, ?3, ?4)")
DB_STMT(SQL_NODE_EVENT_IN_PERIOD,
	"SELECT 1 FROM node_events WHERE node_id = ?1 AND event_type = ?2"
	" AND occurred_at >= ?3 AND occurred_at <= ?4 LIMIT 1")

/* usage_reports */
DB_STMT(SQL_USAGE_INSERT,
	"INSERT INTO usage_reports (usage_id, lock_id, node_id, account_id, vcpu_hours,"
	" price_cents_per_vcpu_hour, amount_cents, period_start, period_end, status, lock_txn_id,"
	" reported_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'locked', ?10, ?11)")
DB_STMT(SQL_USAGE_LOCKED_FOR_PERIOD,
	"SELECT usage_id, account_id, amount_cents FROM usage_reports"
	" WHERE node_id = ?1 AND period_start = ?2 AND period_end = ?3 AND status = 'locked'"
	" ORDER BY usage_id")
DB_STMT(SQL_USAGE_CLOSE,
	"UPDATE usage_reports SET status = ?2, settle_txn_id = ?3, settled_at = ?4"
	" WHERE usage_id = ?1 AND status = 'locked'")

/* abuse_reports */
DB_STMT(SQL_ABUSE_INSERT,
	"INSERT INTO abuse_reports (report_id, node_id, period_start, period_end, status,"
	" reported_by, reason, created_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7)")
DB_STMT(SQL_ABUSE_GET,
	"SELECT status FROM abuse_reports WHERE report_id = ?1")
DB_STMT(SQL_ABUSE_DECIDE,
	"UPDATE abuse_reports SET status = ?2, authorized_by = ?3, authorized_at = ?4"
	" WHERE report_id = ?1")
DB_STMT(SQL_ABUSE_AUTHORIZED_OVERLAP,
	"SELECT 1 FROM abuse_reports WHERE node_id = ?1 AND status = 'authorized'"
	" AND (period_start IS NULL OR period_start <= ?3)"
	" AND (period_end IS NULL OR period_end >= ?2) LIMIT 1")

/* settlements */
DB_STMT(SQL_SETTLEMENT_INSERT,
	"INSERT INTO settlements (period_label, node_id, period_start, period_end, eligible, reasons,"
	" settled, failed, settled_cents, failed_cents, finalized_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")

/* idempotency_keys */
DB_STMT(SQL_IDEMPOTENCY_GET,
	"SELECT request_hash, status, response FROM idempotency_keys WHERE scope = ?1 AND idem_key = ?2")
DB_STMT(SQL_IDEMPOTENCY_INSERT,
	"INSERT INTO idempotency_keys (scope, idem_key, request_hash, status, response, created_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6)")

/* apps, app_agents */
DB_STMT(SQL_APP_GET,
	"SELECT app_name, repo FROM apps WHERE app_name = ?1")
DB_STMT(SQL_APP_INSERT,
	"INSERT INTO apps (app_name, repo, created_at) VALUES (?1, ?2, ?3)")
/* An app with its agents in one statement (one snapshot, no explicit read
 * transaction): a row per agent, newest first, or one row of NULL agent
 * columns for an app without agents.  Columns 0-11 are the agent's, then
 * repo and app_name; registry.c reads them by these positions.  The index
 * app_agents_by_app_newest (migration 3) gives the order without a sort. */
#define SQL_APP_AGENT_COLUMNS \
	"g.agent_id, g.release_tag, g.network, g.registered_at, g.registration_expires_at," \
	" g.sealed, g.attestation_status, g.health_status, g.ws_connected, g.tunnel_id," \
	" g.last_attested_at, g.last_health_at, a.repo, a.app_name"
DB_STMT(SQL_APP_WITH_AGENTS,
	"SELECT " SQL_APP_AGENT_COLUMNS " FROM apps a LEFT JOIN app_agents g ON g.app_name = a.app_name"
	" WHERE a.app_name = ?1 ORDER BY g.registered_at DESC, g.agent_id")
/* Every app, by name; the caller stops after as many apps as it lists.
 * a.rowid: apps.app_name may hold NULL as far as SQLite knows, so only
 * (app_name, rowid) tells the planner the outer order is strict, and the
 * agents' order then comes from the index without a sort. */
DB_STMT(SQL_APPS_WITH_AGENTS,
	"SELECT " SQL_APP_AGENT_COLUMNS " FROM apps a LEFT JOIN app_agents g ON g.app_name = a.app_name"
	" ORDER BY a.app_name, a.rowid, g.registered_at DESC, g.agent_id")
DB_STMT(SQL_AGENT_UPSERT,
	"INSERT INTO app_agents (agent_id, app_name, release_tag, network, registered_at,"
	" registration_expires_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5)"
	" ON CONFLICT (agent_id) DO UPDATE SET app_name = excluded.app_name,"
	" release_tag = excluded.release_tag, network = excluded.network,"
	" registered_at = excluded.registered_at,"
	" registration_expires_at = excluded.registration_expires_at,"
	" updated_at = excluded.updated_at")
DB_STMT(SQL_AGENT_MARK_ATTESTED,
	"UPDATE app_agents SET attestation_status = ?2, sealed = ?3, last_attested_at = ?4,"
	" updated_at = ?4 WHERE agent_id = ?1")
DB_STMT(SQL_AGENT_MARK_HEALTH,
	"UPDATE app_agents SET health_status = ?2, last_health_at = ?3, updated_at = ?3"
	" WHERE agent_id = ?1")
DB_STMT(SQL_AGENT_MARK_CONNECTION,
	"UPDATE app_agents SET ws_connected = ?2, tunnel_id = ?3, updated_at = ?4 WHERE agent_id = ?1")
DB_STMT(SQL_AGENTS_DISCONNECT_ALL,
	"UPDATE app_agents SET ws_connected = 0, tunnel_id = NULL, updated_at = ?1"
	" WHERE ws_connected != 0")

/* clang-format on */

/* clang-format off */

/* collateral_cache, allowlist_cache (migration 0002): lib/pccs.c, lib/allowlist.c */
DB_STMT(SQL_COLLATERAL_CACHE_GET,
	"SELECT body, issuer_chain, next_update, fetched_at FROM collateral_cache WHERE item = ?1")
DB_STMT(SQL_COLLATERAL_CACHE_PUT,
	"INSERT INTO collateral_cache (item, body, issuer_chain, next_update, fetched_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5)"
	" ON CONFLICT (item) DO UPDATE SET body = excluded.body,"
	" issuer_chain = excluded.issuer_chain, next_update = excluded.next_update,"
	" fetched_at = excluded.fetched_at")
DB_STMT(SQL_ALLOWLIST_CACHE_GET,
	"SELECT body, fetched_at, expires_at FROM allowlist_cache"
	" WHERE repo = ?1 AND release_tag = ?2")
DB_STMT(SQL_ALLOWLIST_CACHE_PUT,
	"INSERT INTO allowlist_cache (repo, release_tag, body, fetched_at, expires_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5)"
	" ON CONFLICT (repo, release_tag) DO UPDATE SET body = excluded.body,"
	" fetched_at = excluded.fetched_at, expires_at = excluded.expires_at")
DB_STMT(SQL_ALLOWLIST_CACHE_DELETE,
	"DELETE FROM allowlist_cache WHERE repo = ?1 AND release_tag = ?2")

/* clang-format on */
