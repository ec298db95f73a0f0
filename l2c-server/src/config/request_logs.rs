//! Request-log settings (`--request-log-retention`): how long rows are kept, and how the
//! writer batches them (see [`crate::observe::request_log`]).

use std::time::Duration;

use super::webhooks::Retention;

/// The default of `--request-log-retention`.
pub const DEFAULT_REQUEST_LOG_RETENTION: &str = "7d";

/// How the request log is written and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestLogConfig {
    /// How long rows are kept (`--request-log-retention`, default 7 days; `off`: forever).
    pub retention: Retention,
    /// Records waiting to be written at most; when full, new records are dropped (and counted
    /// in `l2c_request_log_dropped_total{reason="full"}`), never waited for.
    pub capacity: usize,
    /// Rows written per batch at most.
    pub batch_rows: usize,
    /// How long the first record of a batch waits for others before the batch is written.
    pub flush_interval: Duration,
}

impl Default for RequestLogConfig {
    fn default() -> Self {
        Self {
            retention: Retention::keep_for(Duration::from_secs(7 * 86_400)),
            capacity: 10_000,
            batch_rows: 500,
            flush_interval: Duration::from_millis(200),
        }
    }
}
