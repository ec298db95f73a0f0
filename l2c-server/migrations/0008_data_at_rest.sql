-- Personal data at rest (issue 15). Portable between SQLite and PostgreSQL.
--
-- With L2C_DATA_KEY the server seals customers' and leads' mobiles, names, addresses, form
-- answers and raw payloads, webhook and lead-source secrets and generated signing keys (text
-- envelopes `l2cenc:v1:<kid>:…`, see `l2c_server::seal`). A sealed mobile is random, so the
-- customer's identity moves to a keyed blind index: `bi1:<kid>:<hex HMAC-SHA256>` under a key
-- derived from the data key, or the plain E.164 number without one (what existing rows get
-- here; the first start with a key recomputes them).
ALTER TABLE customers ADD COLUMN mobile_index TEXT;
UPDATE customers SET mobile_index = mobile_e164;
CREATE UNIQUE INDEX customers_mobile_index ON customers (mobile_index);
