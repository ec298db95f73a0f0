//! Per-client quotas that change at runtime.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::Quota;

/// Per-key quotas that replace the layer's default, resolved on every request.
///
/// A handle: clones share one table, so the server keeps a clone and updates it when a client's
/// quota changes in the database; the next request of that client uses the new quota. The
/// limiter state is kept per key, not per quota, so a change never resets what the client has
/// already used.
///
/// ```
/// use l2c_core::rate_limit::{KeyedRateLimitLayer, Quota, QuotaOverrides};
///
/// let overrides = QuotaOverrides::new();
/// let layer = KeyedRateLimitLayer::new(Quota::per_second(100)).with_overrides(overrides.clone());
/// overrides.set("partner-gold", Quota::per_second(1000));
/// assert_eq!(overrides.get("partner-gold"), Some(Quota::per_second(1000)));
/// overrides.remove("partner-gold");
/// assert!(overrides.is_empty());
/// # drop(layer);
/// ```
#[derive(Clone, Default)]
pub struct QuotaOverrides {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    map: RwLock<HashMap<Box<str>, Quota>>,
    // Read without the lock so that a deployment without overrides pays nothing per request.
    len: AtomicUsize,
}

impl QuotaOverrides {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the quota of `key` (a `client_id`, or whatever the layer's key is).
    pub fn set(&self, key: impl Into<Box<str>>, quota: Quota) {
        let mut map = self.write();
        map.insert(key.into(), quota);
        self.inner.len.store(map.len(), Ordering::Release);
    }

    /// Removes the quota of `key`, which goes back to the layer's default; returns the old one.
    pub fn remove(&self, key: &str) -> Option<Quota> {
        let mut map = self.write();
        let old = map.remove(key);
        self.inner.len.store(map.len(), Ordering::Release);
        old
    }

    /// Replaces every override at once (e.g. after reloading them from the database).
    pub fn replace_all(&self, entries: impl IntoIterator<Item = (String, Quota)>) {
        let fresh: HashMap<Box<str>, Quota> = entries
            .into_iter()
            .map(|(k, q)| (k.into_boxed_str(), q))
            .collect();
        let mut map = self.write();
        *map = fresh;
        self.inner.len.store(map.len(), Ordering::Release);
    }

    /// The quota set for `key`, if any.
    #[inline]
    pub fn get(&self, key: &str) -> Option<Quota> {
        if self.inner.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.inner
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .copied()
    }

    /// How many keys have an override.
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Acquire)
    }

    /// Whether no key has an override.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Box<str>, Quota>> {
        self.inner
            .map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for QuotaOverrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuotaOverrides")
            .field("len", &self.len())
            .finish()
    }
}
