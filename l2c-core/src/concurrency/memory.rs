//! The in-memory concurrency store: one counter per key with slots in use.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::{Acquire, ConcurrencyStore, Permit};
use crate::limits::StoreError;

/// In-flight counters in process memory. A key's entry is removed when its count returns to
/// zero, so only keys with requests in flight take memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryConcurrencyStore {
    counts: Arc<DashMap<Arc<str>, u32>>,
}

impl MemoryConcurrencyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Slots of `key` in use now.
    pub fn in_flight(&self, key: &str) -> u32 {
        self.counts.get(key).map_or(0, |c| *c)
    }

    /// Keys with at least one slot in use.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether no slot is in use.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    fn acquire_now(&self, key: &str, limit: u32) -> Acquire {
        let limit = limit.max(1);
        // A key already in flight costs no allocation; a new one allocates once, and its guard
        // shares that allocation.
        let mut count = match self.counts.get_mut(key) {
            Some(count) => count,
            None => self.counts.entry(Arc::from(key)).or_insert(0),
        };
        if *count >= limit {
            return Acquire::Full;
        }
        *count += 1;
        let available = limit - *count;
        let key = Arc::clone(count.key());
        drop(count);
        Acquire::Granted {
            permit: Permit::new(MemoryGuard {
                counts: self.counts.clone(),
                key: Some(key),
            }),
            available,
        }
    }
}

struct MemoryGuard {
    counts: Arc<DashMap<Arc<str>, u32>>,
    key: Option<Arc<str>>,
}

impl Drop for MemoryGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take()
            && let Entry::Occupied(mut entry) = self.counts.entry(key)
        {
            let count = entry.get_mut();
            *count = count.saturating_sub(1);
            if *count == 0 {
                entry.remove();
            }
        }
    }
}

impl fmt::Debug for MemoryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryGuard")
            .field("key", &self.key)
            .finish()
    }
}

#[async_trait]
impl ConcurrencyStore for MemoryConcurrencyStore {
    async fn acquire(&self, key: &str, limit: u32) -> Result<Acquire, StoreError> {
        Ok(self.acquire_now(key, limit))
    }

    fn try_acquire_now(&self, key: &str, limit: u32) -> Option<Result<Acquire, StoreError>> {
        Some(Ok(self.acquire_now(key, limit)))
    }
}
