-- Webhooks (issue 8): subscriptions, the event outbox, one delivery per (event, subscription),
-- and every delivery attempt. Portable between SQLite and PostgreSQL like 0002: TEXT ids,
-- BIGINT unix milliseconds, BIGINT 0/1 flags.

CREATE TABLE webhook_subscriptions (
    id                          TEXT PRIMARY KEY,
    client_id                   TEXT NOT NULL,
    url                         TEXT NOT NULL,
    -- Subscribed event types, comma-separated (`ORDER_CREATED,PAYMENT_RECEIVED`).
    events                      TEXT NOT NULL,
    -- The signing secret `whsec_…` as is: the server must sign with it, so it cannot be hashed.
    -- Whoever reads this table can forge deliveries; protect the database accordingly.
    secret                      TEXT NOT NULL,
    -- During a rotation: the old secret, which keeps signing until the expiry below.
    previous_secret             TEXT,
    previous_secret_expires_at  BIGINT,
    enabled                     BIGINT NOT NULL,
    -- Why the server disabled it (a receiver's 410 Gone).
    disabled_reason             TEXT,
    created_at                  BIGINT NOT NULL
);
CREATE INDEX webhook_subscriptions_client ON webhook_subscriptions (client_id, created_at);

-- The outbox: one row per state change, written in the same transaction as the change.
CREATE TABLE webhook_events (
    id          TEXT PRIMARY KEY,
    -- The client whose order changed: only its subscriptions receive the event.
    client_id   TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    -- The exact JSON body every delivery sends (and signs).
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    subscription_id  TEXT NOT NULL,
    event_id         TEXT NOT NULL REFERENCES webhook_events (id),
    -- PENDING, SUCCEEDED or FAILED.
    status           TEXT NOT NULL,
    -- Failed attempts since the delivery was (re)queued: the position in the retry schedule.
    failures         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    -- A dispatcher working on the row owns it until lease_until; after that anyone may take it.
    lease_owner      TEXT,
    lease_until      BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, created_at);

CREATE TABLE webhook_attempts (
    delivery_id      TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt_no       BIGINT NOT NULL,
    attempted_at     BIGINT NOT NULL,
    response_status  BIGINT,
    latency_ms       BIGINT NOT NULL,
    error            TEXT,
    PRIMARY KEY (delivery_id, attempt_no)
);
