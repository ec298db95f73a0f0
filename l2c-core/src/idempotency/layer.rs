use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use http::header;
use tower_layer::Layer;

use super::memory::MemoryIdempotencyStore;
use super::service::Idempotency;
use super::store::IdempotencyStore;

/// Default record lifetime: 24 hours.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Default in-flight lease: 60 seconds.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// Default request body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The response headers stored and replayed by default; everything else is dropped from the
/// record (per-request headers such as `date`, `x-request-id` or `set-cookie` must not be
/// replayed, and `content-length` is recomputed).
pub const DEFAULT_STORED_HEADERS: [HeaderName; 8] = [
    header::CONTENT_TYPE,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LOCATION,
    header::CONTENT_ENCODING,
    header::LOCATION,
    header::ETAG,
    header::LAST_MODIFIED,
    header::CACHE_CONTROL,
];

/// An invalid [`IdempotencyLayer`] configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No key header name was given.
    #[error("at least one idempotency key header name is required")]
    NoKeyHeader,
    /// A duration was zero.
    #[error("`{0}` must be greater than zero")]
    ZeroDuration(&'static str),
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) key_headers: Vec<HeaderName>,
    pub(crate) required: bool,
    pub(crate) max_body_bytes: usize,
    pub(crate) ttl: Duration,
    pub(crate) lease: Duration,
    pub(crate) store_server_errors: bool,
    pub(crate) stored_headers: Vec<HeaderName>,
}

/// Makes POST, PUT and PATCH requests idempotent by their `Idempotency-Key` / `X-Request-Id`.
///
/// See the [module docs](super) for the behaviour, the defaults and where it goes in a stack.
#[derive(Clone)]
#[must_use]
pub struct IdempotencyLayer {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<dyn IdempotencyStore>,
}

impl Default for IdempotencyLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl IdempotencyLayer {
    /// A layer with the defaults and a fresh [`MemoryIdempotencyStore`]: keys read from
    /// `Idempotency-Key` then `X-Request-Id`, required, 1 MiB body limit, 24 h records, 60 s
    /// leases, 5xx not stored.
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                key_headers: vec![
                    HeaderName::from_static("idempotency-key"),
                    crate::request_id::X_REQUEST_ID.clone(),
                ],
                required: true,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                ttl: DEFAULT_TTL,
                lease: DEFAULT_LEASE,
                store_server_errors: false,
                stored_headers: DEFAULT_STORED_HEADERS.to_vec(),
            }),
            store: Arc::new(MemoryIdempotencyStore::new()),
        }
    }

    /// Uses `store` for records and leases (shared by every clone of the layer).
    pub fn with_store(mut self, store: Arc<dyn IdempotencyStore>) -> Self {
        self.store = store;
        self
    }

    /// The headers the key is read from, in order; if several are present they must agree.
    ///
    /// # Errors
    /// [`ConfigError::NoKeyHeader`] for an empty list.
    pub fn key_headers(
        mut self,
        names: impl IntoIterator<Item = HeaderName>,
    ) -> Result<Self, ConfigError> {
        let names: Vec<HeaderName> = names.into_iter().collect();
        if names.is_empty() {
            return Err(ConfigError::NoKeyHeader);
        }
        Arc::make_mut(&mut self.config).key_headers = names;
        Ok(self)
    }

    /// Whether a POST/PUT/PATCH without a key is refused with 400 (`true`, the default) or passed
    /// through unprotected.
    pub fn required(mut self, required: bool) -> Self {
        Arc::make_mut(&mut self.config).required = required;
        self
    }

    /// The largest request body buffered for the fingerprint; a larger one is refused with 413.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.config).max_body_bytes = limit;
        self
    }

    /// How long a completed response is replayed (default 24 h).
    ///
    /// # Errors
    /// [`ConfigError::ZeroDuration`] for zero.
    pub fn ttl(mut self, ttl: Duration) -> Result<Self, ConfigError> {
        if ttl.is_zero() {
            return Err(ConfigError::ZeroDuration("ttl"));
        }
        Arc::make_mut(&mut self.config).ttl = ttl;
        Ok(self)
    }

    /// How long an in-flight claim blocks the key if its holder never completes or releases it
    /// (default 60 s). Set it above the handler's own timeout: after the lease a retry runs again.
    ///
    /// # Errors
    /// [`ConfigError::ZeroDuration`] for zero.
    pub fn lease(mut self, lease: Duration) -> Result<Self, ConfigError> {
        if lease.is_zero() {
            return Err(ConfigError::ZeroDuration("lease"));
        }
        Arc::make_mut(&mut self.config).lease = lease;
        Ok(self)
    }

    /// Whether 5xx responses are stored and replayed like any other (Stripe's choice). Off by
    /// default: a retry after a 5xx runs the handler again.
    pub fn store_server_errors(mut self, store: bool) -> Self {
        Arc::make_mut(&mut self.config).store_server_errors = store;
        self
    }

    /// The response headers stored and replayed (default [`DEFAULT_STORED_HEADERS`]).
    pub fn stored_headers(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        Arc::make_mut(&mut self.config).stored_headers = names.into_iter().collect();
        self
    }
}

impl fmt::Debug for IdempotencyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyLayer")
            .field("config", &self.config)
            .field("store", &self.store)
            .finish()
    }
}

impl<S> Layer<S> for IdempotencyLayer {
    type Service = Idempotency<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Idempotency {
            inner,
            config: Arc::clone(&self.config),
            store: Arc::clone(&self.store),
        }
    }
}
