-- schema.sql - the control plane's database at version 1.
--
-- Applied once to an empty database, inside one transaction, by db_open()
-- (lib/db.c); later changes are numbered files in sql/migrations/ and
-- PRAGMA user_version records how far a database has come.
--
-- Conventions: money is integer cents; times are integer Unix milliseconds;
-- identifiers are checked by lib/util.c before they get here.

-- Accounts of the double-entry ledger.  "@mint" is the source of purchased
-- credits and is the only account allowed below zero; "@escrow" holds credits
-- locked by usage reports until settlement.  The sum of all balances is zero.
CREATE TABLE accounts (
    account_id    TEXT PRIMARY KEY,
    balance_cents INTEGER NOT NULL DEFAULT 0,
    system        INTEGER NOT NULL DEFAULT 0 CHECK (system IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    CHECK (balance_cents >= 0 OR account_id = '@mint'),
    CHECK (balance_cents BETWEEN -9007199254740991 AND 9007199254740991)
);

INSERT INTO accounts (account_id, balance_cents, system, created_at, updated_at)
VALUES ('@mint', 0, 1, 0, 0), ('@escrow', 0, 1, 0, 0);

-- One row per movement of money; its entries sum to zero.
CREATE TABLE ledger_txns (
    txn_id     TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('purchase', 'transfer', 'lock', 'settle', 'release')),
    ref_type   TEXT,
    ref_id     TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE ledger_entries (
    entry_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    txn_id      TEXT NOT NULL REFERENCES ledger_txns (txn_id),
    account_id  TEXT NOT NULL REFERENCES accounts (account_id),
    delta_cents INTEGER NOT NULL CHECK (delta_cents != 0),
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX ledger_entries_by_account ON ledger_entries (account_id, entry_id);
CREATE INDEX ledger_entries_by_txn ON ledger_entries (txn_id);

-- The ledger is append-only: history is corrected by new entries, never edited.
CREATE TRIGGER ledger_entries_append_only_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER ledger_entries_append_only_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER ledger_txns_append_only_update BEFORE UPDATE ON ledger_txns
BEGIN SELECT RAISE(ABORT, 'ledger transactions are append-only'); END;
CREATE TRIGGER ledger_txns_append_only_delete BEFORE DELETE ON ledger_txns
BEGIN SELECT RAISE(ABORT, 'ledger transactions are append-only'); END;

-- Providers.  node_id is also the agent_id an agent registers with and the
-- ledger account its earnings are paid into.
CREATE TABLE nodes (
    node_id                   TEXT PRIMARY KEY,
    status                    TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    price_cents_per_vcpu_hour INTEGER CHECK (price_cents_per_vcpu_hour >= 0),
    stake_tier                TEXT,
    stake_amount_cents        INTEGER CHECK (stake_amount_cents >= 0),
    attestation_status        TEXT NOT NULL DEFAULT 'unknown',
    health_status             TEXT NOT NULL DEFAULT 'unknown',
    last_attested_at          INTEGER,
    last_health_at            INTEGER,
    node_token_hash           TEXT,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL
);

-- health_miss and attest_miss events fail settlement of any period containing them.
CREATE TABLE node_events (
    event_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id     TEXT NOT NULL REFERENCES nodes (node_id),
    event_type  TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    detail      TEXT
);
CREATE INDEX node_events_by_node ON node_events (node_id, occurred_at);

-- A usage report locks its amount in @escrow until its period is settled.
CREATE TABLE usage_reports (
    usage_id                  TEXT PRIMARY KEY,
    lock_id                   TEXT NOT NULL UNIQUE,
    node_id                   TEXT NOT NULL REFERENCES nodes (node_id),
    account_id                TEXT NOT NULL REFERENCES accounts (account_id),
    vcpu_hours                TEXT NOT NULL,
    price_cents_per_vcpu_hour INTEGER NOT NULL,
    amount_cents              INTEGER NOT NULL CHECK (amount_cents > 0),
    period_start              INTEGER NOT NULL,
    period_end                INTEGER NOT NULL CHECK (period_end > period_start),
    status                    TEXT NOT NULL CHECK (status IN ('locked', 'settled', 'failed')),
    lock_txn_id               TEXT NOT NULL REFERENCES ledger_txns (txn_id),
    settle_txn_id             TEXT REFERENCES ledger_txns (txn_id),
    reported_at               INTEGER NOT NULL,
    settled_at                INTEGER
);
CREATE INDEX usage_reports_by_node_period ON usage_reports (node_id, period_start, period_end, status);
CREATE INDEX usage_reports_by_account ON usage_reports (account_id, status);

CREATE TABLE abuse_reports (
    report_id     TEXT PRIMARY KEY,
    node_id       TEXT NOT NULL REFERENCES nodes (node_id),
    period_start  INTEGER,
    period_end    INTEGER,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'authorized', 'denied')),
    reported_by   TEXT,
    reason        TEXT,
    authorized_by TEXT,
    created_at    INTEGER NOT NULL,
    authorized_at INTEGER
);
CREATE INDEX abuse_reports_by_node ON abuse_reports (node_id, status);

-- Every finalisation is recorded, including repeats that moved nothing.
CREATE TABLE settlements (
    settlement_id INTEGER PRIMARY KEY AUTOINCREMENT,
    period_label  TEXT NOT NULL,
    node_id       TEXT NOT NULL,
    period_start  INTEGER NOT NULL,
    period_end    INTEGER NOT NULL,
    eligible      INTEGER NOT NULL,
    reasons       TEXT NOT NULL,
    settled       INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    settled_cents INTEGER NOT NULL,
    failed_cents  INTEGER NOT NULL,
    finalized_at  INTEGER NOT NULL
);

-- The first successful answer to a money-moving POST, replayed for retries
-- that carry the same Idempotency-Key.  Stored in the same transaction as
-- the movement, so an answer exists exactly when the money moved.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (scope, idem_key)
);

-- The registry: an app name is bound to one repository; any number of agents
-- of that repository may serve it.  ee-tunneld writes these rows, ee-api reads them.
CREATE TABLE apps (
    app_name   TEXT PRIMARY KEY,
    repo       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE app_agents (
    agent_id                TEXT PRIMARY KEY,
    app_name                TEXT NOT NULL REFERENCES apps (app_name),
    release_tag             TEXT NOT NULL,
    network                 TEXT NOT NULL,
    registered_at           INTEGER NOT NULL,
    registration_expires_at INTEGER NOT NULL,
    sealed                  INTEGER NOT NULL DEFAULT 0,
    attestation_status      TEXT NOT NULL DEFAULT 'unknown',
    health_status           TEXT NOT NULL DEFAULT 'unknown',
    ws_connected            INTEGER NOT NULL DEFAULT 0,
    tunnel_id               TEXT,
    last_attested_at        INTEGER,
    last_health_at          INTEGER,
    updated_at              INTEGER NOT NULL
);
CREATE INDEX app_agents_by_app ON app_agents (app_name);
