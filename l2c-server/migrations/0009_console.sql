-- The developer console (issue 17): console accounts, their sessions, the failed-login
-- counters, the audit log, and the clients' previous secret during a secret roll. Portable
-- between SQLite and PostgreSQL: TEXT ids generated in Rust, BIGINT unix milliseconds, BIGINT
-- 0/1 flags.

-- A rolled client secret keeps working until `previous_secret_expires_at` (the overlap).
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at BIGINT;

CREATE TABLE console_accounts (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    -- argon2id in the PHC string format (`$argon2id$v=19$m=…`).
    password_hash TEXT NOT NULL,
    -- OPERATOR (every app) or DEVELOPER (the app in `client_id` only).
    role          TEXT NOT NULL,
    client_id     TEXT,
    disabled      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- One row per signed-in browser. The cookie holds a random token; only its SHA-256 is kept, so
-- every replica can check it and a database reader cannot sign in with it.
CREATE TABLE console_sessions (
    token_hash    TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL,
    -- The session's CSRF token (hidden field of every form).
    csrf_token    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    -- The absolute expiry; the idle expiry is `last_seen_at` + the idle timeout.
    expires_at    BIGINT NOT NULL,
    address       TEXT
);
CREATE INDEX console_sessions_account ON console_sessions (account_id);

-- Failed logins per account (`user:NAME`) and per address (`addr:IP`), shared by replicas.
CREATE TABLE console_login_failures (
    key           TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    window_start  BIGINT NOT NULL,
    locked_until  BIGINT
);

-- Every console (and console-account) action: who, what, which app, when, from where.
CREATE TABLE console_audit (
    id            TEXT PRIMARY KEY,
    at            BIGINT NOT NULL,
    username      TEXT NOT NULL,
    action        TEXT NOT NULL,
    client_id     TEXT,
    target        TEXT,
    address       TEXT
);
CREATE INDEX console_audit_at ON console_audit (at);
