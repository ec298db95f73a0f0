//! The storage behind [`KeyedRateLimitLayer`](super::KeyedRateLimitLayer).

use std::fmt::Debug;

use async_trait::async_trait;

use super::{Decision, GcraParams};
use crate::limits::StoreError;

/// Where the per-key GCRA state lives: one theoretical arrival time per key.
///
/// Implementations must make each check atomic (two concurrent checks of one key never both see
/// the same old state), so that a quota of Q admits exactly Q requests at once.
#[async_trait]
pub trait RateLimitStore: Debug + Send + Sync + 'static {
    /// Checks one request of `key` against `params` and records it if allowed.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot answer; the layer then applies its
    /// [`FailurePolicy`](crate::limits::FailurePolicy).
    async fn check(&self, key: &str, params: GcraParams) -> Result<Decision, StoreError>;

    /// The same check answered without waiting, for stores that need no I/O (the in-memory
    /// store). `None` (the default) means "use [`check`](Self::check)". The layer calls this
    /// first, so an in-memory check costs no allocation and no boxed future.
    fn check_now(&self, key: &str, params: GcraParams) -> Option<Result<Decision, StoreError>> {
        let _ = (key, params);
        None
    }
}
