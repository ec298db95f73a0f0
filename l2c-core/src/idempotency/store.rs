//! The storage contract behind [`IdempotencyLayer`](super::IdempotencyLayer).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::record::{Fingerprint, LeaseToken, RecordKey, StoredResponse};

/// What a store found when asked to [claim](IdempotencyStore::claim) a key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Claim {
    /// The key was free (never used, expired, or its lease ran out): the caller now holds an
    /// in-flight lease identified by the token and must [`complete`](IdempotencyStore::complete)
    /// or [`release`](IdempotencyStore::release) it.
    Claimed(LeaseToken),
    /// Another request with this key is still running (its lease has not expired).
    InFlight {
        /// The fingerprint of the request holding the lease.
        fingerprint: Fingerprint,
    },
    /// A request with this key completed and its response is stored.
    Completed(Arc<StoredResponse>),
}

/// The kind of a [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The backend could not be reached or did not answer in time.
    Unavailable,
    /// The store is full of in-flight leases and cannot take another key.
    Capacity,
    /// The backend returned data this version cannot read.
    Corrupt,
}

/// A store failure. The layer answers it with 503 and never runs the handler (fail-closed).
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: Cow<'static, str>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A new error of the given kind.
    pub fn new(kind: StoreErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause (shown by `source()`, never by `Display`).
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// Whether the backend was unreachable or too slow.
    pub fn is_unavailable(&self) -> bool {
        self.kind == StoreErrorKind::Unavailable
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("idempotency store: ")?;
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Where idempotency records and in-flight leases live.
///
/// Every method must be atomic with respect to the others for the same key, across every process
/// sharing the store: two concurrent [`claim`](Self::claim)s of a free key must yield exactly one
/// [`Claim::Claimed`]. [`complete`](Self::complete) and [`release`](Self::release) act only when
/// the key is still held under the given token (compare-and-set), so a holder whose lease expired
/// and was taken over can never overwrite or free the new holder's key.
///
/// Implementations: [`MemoryIdempotencyStore`](super::MemoryIdempotencyStore) (one process) and,
/// with the `redis` feature, `RedisIdempotencyStore` (many replicas).
#[async_trait]
pub trait IdempotencyStore: fmt::Debug + Send + Sync + 'static {
    /// Atomically claims `key` for `lease` if it is free, or reports what holds it.
    ///
    /// # Errors
    /// The backend failed; the layer answers 503 without running the handler.
    async fn claim(
        &self,
        key: &RecordKey,
        fingerprint: &Fingerprint,
        lease: Duration,
    ) -> Result<Claim, StoreError>;

    /// The same claim answered without waiting, for stores that need no I/O (the in-memory
    /// store). `None` (the default) means "use [`claim`](Self::claim)". The layer calls this
    /// first, so an in-memory claim costs no boxed future. When it returns `Some`, `claim` is
    /// not called: the answer must be exactly what `claim` would give (same atomicity, same
    /// lease), and it must not block.
    fn claim_now(
        &self,
        key: &RecordKey,
        fingerprint: &Fingerprint,
        lease: Duration,
    ) -> Option<Result<Claim, StoreError>> {
        let _ = (key, fingerprint, lease);
        None
    }

    /// Replaces the lease held under `token` with the completed `response`, kept for `ttl`.
    ///
    /// Returns `Ok(false)` (and stores nothing) if the key is no longer held under `token`.
    ///
    /// # Errors
    /// The backend failed.
    async fn complete(
        &self,
        key: &RecordKey,
        token: &LeaseToken,
        response: Arc<StoredResponse>,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Frees the key if it is still held under `token`; a no-op otherwise.
    ///
    /// # Errors
    /// The backend failed (the lease then expires on its own).
    async fn release(&self, key: &RecordKey, token: &LeaseToken) -> Result<(), StoreError>;

    /// Frees the key from a destructor (the request future was dropped or panicked).
    ///
    /// The default spawns [`release`](Self::release) on the current Tokio runtime, if there is
    /// one; stores that can release synchronously override it to free the key at once. If neither
    /// works the lease still expires on its own.
    fn release_on_drop(self: Arc<Self>, key: RecordKey, token: LeaseToken) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(error) = self.release(&key, &token).await {
                    tracing::warn!(%error, "failed to release an idempotency lease; it will expire");
                }
            });
        }
    }
}
