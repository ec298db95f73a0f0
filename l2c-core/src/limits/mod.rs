//! What the rate limiter and the concurrency cap share: how a request is mapped to a partition
//! key, what happens when the backing store fails, and the response pieces of a rejection.
//!
//! # Partition keys
//!
//! Both [`KeyedRateLimitLayer`](crate::rate_limit::KeyedRateLimitLayer) and
//! [`ConcurrencyCapLayer`](crate::concurrency::ConcurrencyCapLayer) count per *partition key*, a
//! string derived from the request by a [`KeyExtractor`]:
//!
//! - [`KeyExtractor::client_id`] (the default) uses the `client_id` of the
//!   [`AuthenticatedClient`] the auth layer put in the request's extensions, so the layer must sit
//!   *after* (inside) the auth layer. Requests the auth layer rejected (401/403) never reach it and
//!   so never consume quota: one client cannot probe or drain another client's quota.
//! - [`KeyExtractor::from_fn`] takes any function of the request head, e.g. the peer address for
//!   the token endpoint, which has no authenticated client yet.
//!
//! A request for which the extractor finds no key **passes unlimited** by default (the layer is
//! misplaced, or the route is meant to be open). Call `.anonymous_key("anonymous")` on the layer to
//! count all such requests under one shared key instead.
//!
//! Keys never appear in response headers (no `pk` parameter is sent), so no identifier leaks.
//!
//! ```
//! use std::net::SocketAddr;
//! use l2c_core::limits::KeyExtractor;
//!
//! // Key the token endpoint by the peer's IP address, as a server that stores the peer address
//! // in the request extensions would.
//! let by_peer = KeyExtractor::from_fn(|req| {
//!     req.extensions().get::<SocketAddr>().map(|addr| addr.ip().to_string())
//! });
//! let req = http::Request::builder()
//!     .extension("10.0.0.7:5000".parse::<SocketAddr>().unwrap())
//!     .body(())
//!     .unwrap();
//! assert_eq!(by_peer.extract(&req).as_deref(), Some("10.0.0.7"));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{Extensions, HeaderMap, Method, Request, Uri};

use crate::identity::AuthenticatedClient;

mod decisions;
#[cfg(feature = "redis")]
mod redis;
pub(crate) mod response;
pub(crate) mod settings;
#[cfg(test)]
pub(crate) mod test_util;

pub(crate) use self::decisions::Decided;
pub use self::decisions::LimitDecisions;
#[cfg(feature = "redis")]
pub use self::redis::{RedisConnection, RedisConnectionConfig};

/// A read-only view of a request's head, handed to a custom key function.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    /// The head of `req`.
    pub fn of<B>(req: &'a Request<B>) -> Self {
        Self {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            extensions: req.extensions(),
        }
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions (the authenticated client, the peer address, ...).
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }
}

type KeyFn = dyn Fn(RequestHead<'_>) -> Option<String> + Send + Sync;

/// Derives the partition key of a request. Cheap to clone.
#[derive(Clone)]
pub struct KeyExtractor {
    kind: KeyKind,
}

#[derive(Clone)]
enum KeyKind {
    ClientId,
    Fn(Arc<KeyFn>),
}

impl KeyExtractor {
    /// The `client_id` of the [`AuthenticatedClient`] in the request's extensions (the default).
    ///
    /// Borrows the id from the extensions: no allocation per request.
    pub fn client_id() -> Self {
        Self {
            kind: KeyKind::ClientId,
        }
    }

    /// Any function of the request head; `None` means "no key" (see the module docs).
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(RequestHead<'_>) -> Option<String> + Send + Sync + 'static,
    {
        Self {
            kind: KeyKind::Fn(Arc::new(f)),
        }
    }

    /// The key of `req`, if it has one.
    pub fn extract<'r, B>(&self, req: &'r Request<B>) -> Option<Cow<'r, str>> {
        match &self.kind {
            KeyKind::ClientId => req
                .extensions()
                .get::<AuthenticatedClient>()
                .map(|client| Cow::Borrowed(client.client_id.as_str())),
            KeyKind::Fn(f) => f(RequestHead::of(req)).map(Cow::Owned),
        }
    }
}

impl Default for KeyExtractor {
    fn default() -> Self {
        Self::client_id()
    }
}

impl fmt::Debug for KeyExtractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            KeyKind::ClientId => f.write_str("KeyExtractor::client_id"),
            KeyKind::Fn(_) => f.write_str("KeyExtractor::from_fn(..)"),
        }
    }
}

/// What a layer does when its store cannot answer (Redis down or too slow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Let the request through, log a warning and count it (see `fail_open_total()` on the layer).
    /// Availability over strictness: the default.
    #[default]
    Open,
    /// Reject with `503 Service Unavailable` (problem type `#temporary-reduced-capacity`).
    Closed,
}

/// A store could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store did not answer within its timeout.
    #[error("the limit store did not answer in time")]
    Timeout,
    /// The store is unreachable or returned an error.
    #[error("the limit store is unavailable: {0}")]
    Unavailable(Cow<'static, str>),
}

/// A shared count of requests let through because the store failed (fail-open), for a metric.
#[derive(Debug, Clone, Default)]
pub struct FailOpenCounter(Arc<AtomicU64>);

impl FailOpenCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many requests were let through because the store failed.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn increment(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Invalid layer configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A policy name must be 1–64 characters of `a-z`, `0-9`, `-`, `_` or `.`.
    #[error("invalid policy name `{0}`: use 1-64 characters of a-z, 0-9, '-', '_', '.'")]
    PolicyName(String),
}

pub(crate) fn validate_policy_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::PolicyName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Scopes;

    #[test]
    fn client_id_key_is_borrowed_from_the_extensions() {
        let req = Request::builder()
            .extension(AuthenticatedClient::new("acme", Scopes::all()))
            .body(())
            .unwrap();
        let key = KeyExtractor::client_id().extract(&req).unwrap();
        assert!(matches!(key, Cow::Borrowed("acme")));
        assert!(
            KeyExtractor::client_id()
                .extract(&Request::new(()))
                .is_none()
        );
    }

    #[test]
    fn policy_names_are_checked() {
        assert!(validate_policy_name("default").is_ok());
        assert!(validate_policy_name("token-endpoint").is_ok());
        assert!(validate_policy_name("").is_err());
        assert!(validate_policy_name("a\"b").is_err());
        assert!(validate_policy_name("Upper").is_err());
    }
}
