//! The storage behind [`ConcurrencyCapLayer`](super::ConcurrencyCapLayer).

use std::any::Any;
use std::fmt::{self, Debug};

use async_trait::async_trait;

use crate::limits::StoreError;

/// Counts in-flight requests per key.
///
/// Acquiring must be atomic: with a limit of N, N + k concurrent acquires grant exactly N.
#[async_trait]
pub trait ConcurrencyStore: Debug + Send + Sync + 'static {
    /// Takes one of `limit` slots of `key`, if one is free.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot answer; the layer then applies its
    /// [`FailurePolicy`](crate::limits::FailurePolicy).
    async fn acquire(&self, key: &str, limit: u32) -> Result<Acquire, StoreError>;

    /// The same, answered without waiting, for stores that need no I/O. `None` (the default)
    /// means "use [`acquire`](Self::acquire)".
    fn try_acquire_now(&self, key: &str, limit: u32) -> Option<Result<Acquire, StoreError>> {
        let _ = (key, limit);
        None
    }
}

/// The result of an acquire.
#[derive(Debug)]
pub enum Acquire {
    /// A slot was taken; it is freed when `permit` is dropped.
    Granted {
        /// The slot.
        permit: Permit,
        /// Slots still free after this one.
        available: u32,
    },
    /// Every slot is taken.
    Full,
}

/// One taken slot. Dropping it frees the slot (its guard's `Drop` does the work).
pub struct Permit {
    _guard: Box<dyn Any + Send + Sync>,
}

impl Permit {
    /// A permit released by `guard`'s `Drop`.
    pub fn new<G: Any + Send + Sync>(guard: G) -> Self {
        Self {
            _guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}
