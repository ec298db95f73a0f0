//! What every connection lives under: timeouts, the connection cap, HTTP/2 limits, the drain.

use std::time::Duration;

#[cfg(doc)]
use super::Config;
use super::{
    ConfigError, DEFAULT_BODY_TIMEOUT, DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT,
    DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL, DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT,
    DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS, DEFAULT_HTTP2_MAX_HEADER_LIST_SIZE, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_TLS_HANDSHAKE_TIMEOUT,
};

/// What every connection lives under (see [`crate::connections`] for how they apply).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// From accept, or from the first byte of a following request on a kept-alive HTTP/1.1
    /// connection, to the end of the request head; bytes trickling in do not extend it
    /// (`--header-read-timeout`).
    pub header_read_timeout: Duration,
    /// How long a connection may stay open with no request in flight (`--idle-timeout`). A
    /// response the client has stopped reading is cut after `--export-stall-timeout`
    /// ([`Config::export_stall_timeout`]).
    pub idle_timeout: Duration,
    /// How long a request body may take to arrive, from the end of its head; past it the
    /// request is answered 408 (`--body-timeout`).
    pub body_timeout: Duration,
    /// The most connections open at once on the public listener, TLS handshakes included;
    /// `None` derives it from `RLIMIT_NOFILE` ([`crate::connections::derive_max_connections`])
    /// (`--max-connections`).
    pub max_connections: Option<usize>,
    /// How long a TLS handshake may take (`--tls-handshake-timeout`).
    pub tls_handshake_timeout: Duration,
    /// The most concurrent streams of one HTTP/2 connection (`--http2-max-concurrent-streams`).
    pub http2_max_concurrent_streams: u32,
    /// The largest HTTP/2 header list, in bytes (`--http2-max-header-list-size`).
    pub http2_max_header_list_size: u32,
    /// The interval of HTTP/2 keep-alive pings; `None` sends none
    /// (`--http2-keep-alive-interval`).
    pub http2_keep_alive_interval: Option<Duration>,
    /// How long a keep-alive ping may go unanswered (`--http2-keep-alive-timeout`).
    pub http2_keep_alive_timeout: Duration,
    /// How long in-flight requests get to finish on shutdown before the remaining connections
    /// are closed (`--drain-timeout`).
    pub drain_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: None,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            http2_max_concurrent_streams: DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
            http2_max_header_list_size: DEFAULT_HTTP2_MAX_HEADER_LIST_SIZE,
            http2_keep_alive_interval: Some(DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL),
            http2_keep_alive_timeout: DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

impl ConnectionConfig {
    /// Refuses a zero timeout, cap or HTTP/2 limit (the drain timeout may be zero: close at
    /// once on shutdown).
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroConnectionLimit`] naming the flag.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let durations = [
            ("header-read-timeout", self.header_read_timeout),
            ("idle-timeout", self.idle_timeout),
            ("body-timeout", self.body_timeout),
            ("tls-handshake-timeout", self.tls_handshake_timeout),
            ("http2-keep-alive-timeout", self.http2_keep_alive_timeout),
        ];
        if let Some((flag, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return Err(ConfigError::ZeroConnectionLimit(flag));
        }
        if self.http2_keep_alive_interval.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::ZeroConnectionLimit(
                "http2-keep-alive-interval",
            ));
        }
        if self.max_connections == Some(0) {
            return Err(ConfigError::ZeroConnectionLimit("max-connections"));
        }
        if self.http2_max_concurrent_streams == 0 {
            return Err(ConfigError::ZeroConnectionLimit(
                "http2-max-concurrent-streams",
            ));
        }
        if self.http2_max_header_list_size == 0 {
            return Err(ConfigError::ZeroConnectionLimit(
                "http2-max-header-list-size",
            ));
        }
        Ok(())
    }
}
