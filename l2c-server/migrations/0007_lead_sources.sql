-- Lead sources (渠道接入): the push URLs a client pastes into the ad platforms (小红书 聚光,
-- 巨量引擎 飞鱼, 抖音开放平台, others). Portable between SQLite and PostgreSQL.

CREATE TABLE lead_sources (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL,
    -- XIAOHONGSHU, FEIYU, DOUYIN_OPEN or GENERIC.
    channel      TEXT NOT NULL,
    name         TEXT NOT NULL,
    -- The channel settings as JSON, without the secret.
    settings     TEXT NOT NULL,
    -- The channel's own signing secret (聚光 token, 抖音 client secret, GENERIC key), kept to
    -- verify signatures and never returned; NULL when none is configured.
    secret       TEXT,
    -- 1: the server generated `secret` (and a rotation replaces it).
    secret_generated BIGINT NOT NULL DEFAULT 0,
    -- Lowercase hex SHA-256 of the push URL's token (128 random bits); the token itself is
    -- shown once and never stored.
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX lead_sources_client ON lead_sources (client_id, created_at);

-- The lead source a lead was pushed through (NULL for `POST /leads/hook`).
ALTER TABLE leads ADD COLUMN lead_source_id TEXT;
-- The platform's delivery headers worth keeping (飞鱼 SIGNATURE/TIMESTAMP, 抖音 Msg-Id, …), JSON.
ALTER TABLE leads ADD COLUMN push_headers TEXT;
CREATE INDEX leads_lead_source ON leads (lead_source_id);
CREATE INDEX leads_client_created ON leads (client_id, created_at);
