-- Tenant isolation (issue 13). Portable between SQLite and PostgreSQL like 0002.
--
-- 1. A lead's `(source, externalLeadId)` is unique per client, not platform-wide: another
--    client's lead id can neither block a client's own push nor be probed through a 409.
-- 2. A payment's `(method, channelTransactionId)` is unique per client, for the same reasons;
--    payments gain the client of their order.
-- 3. What a client reads of a customer comes from its own leads and orders: the name and region
--    it first gave for the customer are kept on its link (`client_customers`), and the link's
--    `linked_at` is the customer's creation time as that client sees it.
--
-- SQLite cannot drop a table constraint, so `leads` and `payments` are rebuilt (create the new
-- table, copy, drop the old one, rename); the same statements run on PostgreSQL. Nothing
-- references either table, and their indexes are dropped with the old tables and created again.

CREATE TABLE leads_new (
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
    raw_payload       TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    UNIQUE (client_id, source, external_lead_id)
);
INSERT INTO leads_new (id, client_id, source, external_lead_id, customer_id, name, mobile_e164,
    province, city, intent, form_fields, attribution, submitted_at, raw_payload, created_at)
SELECT id, client_id, source, external_lead_id, customer_id, name, mobile_e164,
    province, city, intent, form_fields, attribution, submitted_at, raw_payload, created_at
FROM leads;
DROP TABLE leads;
ALTER TABLE leads_new RENAME TO leads;
-- A customer's leads as one client sees them (tags, the first lead).
CREATE INDEX leads_customer ON leads (customer_id, client_id);

CREATE TABLE payments_new (
    id                      TEXT PRIMARY KEY,
    -- The client of the order (denormalized so the uniqueness below can name it).
    client_id               TEXT NOT NULL,
    order_id                TEXT NOT NULL REFERENCES orders (id),
    kind                    TEXT NOT NULL,
    method                  TEXT NOT NULL,
    amount_fen              BIGINT NOT NULL,
    channel_transaction_id  TEXT NOT NULL,
    paid_at                 TEXT NOT NULL,
    recorded_at             BIGINT NOT NULL,
    UNIQUE (client_id, method, channel_transaction_id)
);
INSERT INTO payments_new (id, client_id, order_id, kind, method, amount_fen,
    channel_transaction_id, paid_at, recorded_at)
SELECT p.id, o.client_id, p.order_id, p.kind, p.method, p.amount_fen,
    p.channel_transaction_id, p.paid_at, p.recorded_at
FROM payments p JOIN orders o ON o.id = p.order_id;
DROP TABLE payments;
ALTER TABLE payments_new RENAME TO payments;
CREATE INDEX payments_order ON payments (order_id);

-- The client's own details of the customer, set when it is first linked and never overwritten.
ALTER TABLE client_customers ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE client_customers ADD COLUMN province TEXT;
ALTER TABLE client_customers ADD COLUMN city TEXT;

-- Existing links. The client that created the customer linked it in the same transaction, at
-- the customer's `created_at`: the customer row holds exactly what that client sent.
UPDATE client_customers SET
    name = (SELECT c.name FROM customers c WHERE c.id = client_customers.customer_id),
    province = (SELECT c.province FROM customers c WHERE c.id = client_customers.customer_id),
    city = (SELECT c.city FROM customers c WHERE c.id = client_customers.customer_id)
WHERE linked_at = (SELECT c.created_at FROM customers c WHERE c.id = client_customers.customer_id);
-- Other links: the client's own first lead for the customer, if any. A link made by an order
-- sync alone keeps an empty name: what that client sent was not stored before this migration.
UPDATE client_customers SET
    name = COALESCE((SELECT l.name FROM leads l
        WHERE l.client_id = client_customers.client_id
          AND l.customer_id = client_customers.customer_id
        ORDER BY l.created_at, l.id LIMIT 1), ''),
    province = (SELECT l.province FROM leads l
        WHERE l.client_id = client_customers.client_id
          AND l.customer_id = client_customers.customer_id
        ORDER BY l.created_at, l.id LIMIT 1),
    city = (SELECT l.city FROM leads l
        WHERE l.client_id = client_customers.client_id
          AND l.customer_id = client_customers.customer_id
        ORDER BY l.created_at, l.id LIMIT 1)
WHERE linked_at <> (SELECT c.created_at FROM customers c
    WHERE c.id = client_customers.customer_id);
