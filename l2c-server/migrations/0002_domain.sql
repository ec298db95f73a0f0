-- The open platform's business data: leads, customers, orders, payments, showroom.
-- Portable between SQLite and PostgreSQL (run through sqlx's Any driver): TEXT ids, BIGINT
-- integers (money in fen, platform timestamps in Unix milliseconds), JSON kept as TEXT, and the
-- partner's own RFC 3339 times kept verbatim as TEXT so their offsets survive.

CREATE TABLE customers (
    id           TEXT PRIMARY KEY,
    mobile_e164  TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    province     TEXT,
    city         TEXT,
    district     TEXT,
    -- Street address: stored for operators, never returned to partners.
    address      TEXT,
    created_at   BIGINT NOT NULL
);

-- Which clients may read which customers (the client pushed a lead or synced an order for them).
CREATE TABLE client_customers (
    client_id    TEXT NOT NULL,
    customer_id  TEXT NOT NULL REFERENCES customers (id),
    linked_at    BIGINT NOT NULL,
    PRIMARY KEY (client_id, customer_id)
);

-- The "read every customer" grant is `clients.all_customers` (0001).

CREATE TABLE leads (
    id                TEXT PRIMARY KEY,
    client_id         TEXT NOT NULL,
    source            TEXT NOT NULL,
    external_lead_id  TEXT NOT NULL,
    customer_id       TEXT NOT NULL REFERENCES customers (id),
    name              TEXT NOT NULL,
    mobile_e164       TEXT NOT NULL,
    province          TEXT,
    city              TEXT,
    intent            TEXT,
    form_fields       TEXT NOT NULL,
    attribution       TEXT,
    submitted_at      TEXT NOT NULL,
    -- The request body exactly as received.
    raw_payload       TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    UNIQUE (source, external_lead_id)
);
CREATE INDEX leads_customer ON leads (customer_id);

CREATE TABLE orders (
    id                 TEXT PRIMARY KEY,
    client_id          TEXT NOT NULL,
    external_order_no  TEXT NOT NULL,
    customer_id        TEXT NOT NULL REFERENCES customers (id),
    status             TEXT NOT NULL,
    payment_status     TEXT NOT NULL,
    total_fen          BIGINT NOT NULL,
    deposit_fen        BIGINT NOT NULL,
    paid_fen           BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    items              TEXT NOT NULL,
    milestones         TEXT NOT NULL,
    version            BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    UNIQUE (client_id, external_order_no)
);
CREATE INDEX orders_customer ON orders (customer_id);

-- One row per applied change (the creation included).
CREATE TABLE order_history (
    order_id        TEXT NOT NULL REFERENCES orders (id),
    version         BIGINT NOT NULL,
    status          TEXT NOT NULL,
    payment_status  TEXT NOT NULL,
    changed_at      BIGINT NOT NULL,
    PRIMARY KEY (order_id, version)
);

CREATE TABLE payments (
    id                      TEXT PRIMARY KEY,
    order_id                TEXT NOT NULL REFERENCES orders (id),
    kind                    TEXT NOT NULL,
    method                  TEXT NOT NULL,
    amount_fen              BIGINT NOT NULL,
    channel_transaction_id  TEXT NOT NULL,
    paid_at                 TEXT NOT NULL,
    recorded_at             BIGINT NOT NULL,
    UNIQUE (method, channel_transaction_id)
);
CREATE INDEX payments_order ON payments (order_id);

CREATE TABLE showroom_items (
    id               TEXT PRIMARY KEY,
    item_type        TEXT NOT NULL,
    title            TEXT NOT NULL,
    category         TEXT NOT NULL,
    summary          TEXT NOT NULL,
    tags             TEXT NOT NULL,
    cover_image_url  TEXT NOT NULL,
    price_from       BIGINT,
    visibility       TEXT NOT NULL,
    updated_at       BIGINT NOT NULL
);

-- AUTHORIZED items a client may see.
CREATE TABLE showroom_grants (
    client_id   TEXT NOT NULL,
    item_id     TEXT NOT NULL REFERENCES showroom_items (id),
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (client_id, item_id)
);
