//! Serving connections: the accept loops of the public listener (plain or TLS) and of the
//! metrics listener, and the limits every connection lives under.
//!
//! | limit | flag (default) | past it |
//! |---|---|---|
//! | request head | `--header-read-timeout` (10 s) | the socket is closed |
//! | no request in flight | `--idle-timeout` (60 s) | closed (HTTP/2 with a GOAWAY first) |
//! | a response the client stops reading | `--export-stall-timeout` (30 s without a byte accepted) | closed |
//! | request body | `--body-timeout` (30 s) | 408 `request_timeout`, then closed |
//! | TLS handshake | `--tls-handshake-timeout` (10 s) | the socket is closed |
//! | open connections | `--max-connections` ([`derive_max_connections`]) | new ones are closed at once |
//! | HTTP/2 | `--http2-max-concurrent-streams` (100), `--http2-max-header-list-size` (16 KiB), `--http2-keep-alive-interval`/`-timeout` (30 s / 20 s) | refused stream / closed |
//! | shutdown | `--drain-timeout` (30 s) | the remaining connections are closed |
//!
//! The head timeout runs from accept, and on a kept-alive HTTP/1.1 connection from the first
//! byte of the next request, to the end of the head: bytes trickling in one at a time do not
//! extend it. hyper's own `header_read_timeout` is not used, because it starts as soon as a
//! kept-alive connection goes idle and would close idle connections at the head timeout.
//! Instead each connection's phase (head, busy, idle) is tracked from its reads and its
//! requests, and the task driving the connection closes it at the phase's deadline.
//!
//! The cap counts every accepted socket until it closes, TLS handshakes included; past it the
//! listener keeps accepting and closes the new socket at once, so a flood never stops the
//! server from accepting once slots free up (the head timeout frees them).
//!
//! [`ConnectionMetrics`] counts what the public listener does, on `/metrics`:
//! `l2c_connections_open` and `l2c_connections_closed_total{reason}` with the reasons
//! `over_capacity`, `header_timeout`, `idle_timeout`, `send_stalled`, `tls_handshake` and
//! `drain_timeout`
//! (connections ending normally are not counted there).
//!
//! ```
//! use l2c_server::connections::derive_max_connections;
//!
//! // `ulimit -n 300`, a reserve of 64 descriptors for the pools, Redis and webhooks:
//! assert_eq!(derive_max_connections(Some(300), 64), 236);
//! // Never less than half the limit, never zero.
//! assert_eq!(derive_max_connections(Some(100), 80), 50);
//! ```

mod activity;
mod body_timeout;
mod fd_limit;
mod metrics;
mod serve;
#[cfg(test)]
mod tests;

pub use self::body_timeout::{BodyTimeout, body_timeout};
pub use self::fd_limit::{
    FALLBACK_OPEN_FILES, MAX_DERIVED_CONNECTIONS, METRICS_MAX_CONNECTIONS, MIN_FD_RESERVE,
    derive_max_connections, open_files_soft_limit,
};
pub use self::metrics::ConnectionMetrics;
pub(crate) use self::serve::{Endpoint, serve};
