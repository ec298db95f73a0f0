-- The request log (请求日志, issue 17): one row per API request, written in batches off the
-- request path (see `observe::request_log`), kept `--request-log-retention` (7 days by default).
-- Never bodies, tokens or secrets: the route is the matched template, never the raw path.
-- Portable between SQLite and PostgreSQL: TEXT ids generated in Rust, BIGINT unix milliseconds.
CREATE TABLE request_logs (
    id             TEXT PRIMARY KEY,
    -- The app, only when a verified token (or a verified client secret at the token endpoint)
    -- named it; NULL for requests no credential vouched for (operators see those).
    client_id      TEXT,
    at             BIGINT NOT NULL,
    method         TEXT NOT NULL,
    -- The matched route template (`/api/mobile/orders/{id}/status`) or `unmatched`.
    route          TEXT NOT NULL,
    status         BIGINT NOT NULL,
    -- `X-Request-Id` as the client sent it, or the one the server generated and echoed.
    request_id     TEXT NOT NULL,
    latency_us     BIGINT NOT NULL,
    -- `r` of the response's `RateLimit` header (requests left in the window); NULL when the
    -- request never reached the rate limiter.
    rate_remaining BIGINT
);

-- An app's page and its hourly chart (newest first, by time range).
CREATE INDEX request_logs_client_at ON request_logs (client_id, at);
-- Search by request id (exact).
CREATE INDEX request_logs_request_id ON request_logs (request_id);
-- The operators' page over every app, and the retention purge (oldest first).
CREATE INDEX request_logs_at ON request_logs (at);
