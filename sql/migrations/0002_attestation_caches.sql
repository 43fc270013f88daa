-- 0002_attestation_caches.sql - caches for what attestation fetches from
-- outside: Intel collateral (from EE_PCCS_URL) and release allowlists (from
-- GitHub).  Both are only caches: losing them costs a fetch, nothing else.

-- One collateral item as fetched: "tcb:<fmspc>", "qe", "pckcrl:<ca>",
-- "rootcacrl".  body is what the verifier needs (text or hex), issuer_chain
-- the PEM chain from the response header; next_update bounds its use.
CREATE TABLE collateral_cache (
    item         TEXT PRIMARY KEY,
    body         TEXT NOT NULL,
    issuer_chain TEXT,
    next_update  INTEGER NOT NULL,
    fetched_at   INTEGER NOT NULL
);

-- The allowlist asset of a release, kept until expires_at.
CREATE TABLE allowlist_cache (
    repo        TEXT NOT NULL,
    release_tag TEXT NOT NULL,
    body        TEXT NOT NULL,
    fetched_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (repo, release_tag)
);
