//! Bounded, expiring memory of event ids already accepted.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Remembers the ids of verified events so a replay (or a duplicate delivery) is noticed.
///
/// Bounded in both time and size: an id is kept for its TTL (never less than the window in
/// which its signature would still verify, which the [`Verifier`](super::Verifier) enforces),
/// and at most `capacity` ids are kept — when full, the oldest is dropped first. Only ids of
/// requests whose signature verified are stored, so an attacker without the secret cannot fill it.
///
/// Clones share the same memory. It is per process: with several receiver replicas, make the
/// handler idempotent on the event id as well (at-least-once delivery asks for that anyway).
///
/// ```
/// use std::time::Duration;
/// use l2c_core::webhook::ReplayGuard;
///
/// let guard = ReplayGuard::new(1_000, Duration::from_secs(600));
/// assert!(guard.insert("evt_1", 1_000).is_ok());
/// assert!(guard.insert("evt_1", 1_100).is_err());
/// assert!(guard.insert("evt_1", 1_601).is_ok()); // expired
/// ```
#[derive(Debug, Clone)]
pub struct ReplayGuard {
    inner: Arc<Mutex<Inner>>,
    capacity: usize,
    ttl: Duration,
}

#[derive(Debug, Default)]
struct Inner {
    /// id → (expires at, settled).
    seen: HashMap<String, Entry>,
    /// Insertion order, for expiry and eviction; may hold stale pairs, checked against `seen`.
    order: VecDeque<(u64, String)>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    expires: u64,
    settled: bool,
}

/// The id is already known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// `false` while the first request with this id is still being handled (see
    /// [`VerifyWebhookLayer`](super::VerifyWebhookLayer)).
    pub settled: bool,
}

impl ReplayGuard {
    /// Keeps up to `capacity` ids (at least 1) for at least `ttl` each.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner::default())),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// The configured TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the maps consistent enough to go on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `id` as seen at `now` (unix seconds), settled.
    ///
    /// # Errors
    ///
    /// [`Seen`] if the id was recorded before and has not expired.
    pub fn insert(&self, id: &str, now: u64) -> Result<(), Seen> {
        self.insert_for(id, now, self.ttl, true)
    }

    pub(crate) fn insert_for(
        &self,
        id: &str,
        now: u64,
        ttl: Duration,
        settled: bool,
    ) -> Result<(), Seen> {
        let ttl = ttl.max(self.ttl).as_secs();
        let mut inner = self.lock();
        inner.purge(now);
        if let Some(entry) = inner.seen.get(id) {
            return Err(Seen {
                settled: entry.settled,
            });
        }
        while inner.order.len() >= self.capacity {
            inner.evict_front();
        }
        let expires = now.saturating_add(ttl);
        inner.seen.insert(id.to_owned(), Entry { expires, settled });
        inner.order.push_back((expires, id.to_owned()));
        Ok(())
    }

    /// Marks a pending id as handled, so a later duplicate is acknowledged rather than retried.
    pub(crate) fn settle(&self, id: &str) {
        if let Some(entry) = self.lock().seen.get_mut(id) {
            entry.settled = true;
        }
    }

    /// Forgets `id`, so the next delivery with it is accepted (used when handling it failed).
    pub fn forget(&self, id: &str) {
        self.lock().seen.remove(id);
    }

    /// How many ids are remembered (expired ones may still count until the next insert).
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn purge(&mut self, now: u64) {
        // TTLs differ slightly and the clock may step back, so `order` is only roughly sorted:
        // purge expired entries from the front, then rely on the capacity bound for the rest.
        while let Some((expires, _)) = self.order.front() {
            if *expires > now {
                break;
            }
            self.evict_front();
        }
    }

    fn evict_front(&mut self) {
        if let Some((expires, id)) = self.order.pop_front() {
            // Only remove the map entry this queue slot belongs to (not a later re-insert).
            if self.seen.get(&id).is_some_and(|e| e.expires == expires) {
                self.seen.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_a_hard_bound() {
        let g = ReplayGuard::new(3, Duration::from_secs(600));
        for i in 0..10 {
            g.insert(&format!("evt_{i}"), 100).unwrap();
            assert!(g.len() <= 3);
        }
        // The newest are kept, the oldest were dropped.
        assert!(g.insert("evt_9", 100).is_err());
        assert!(g.insert("evt_0", 100).is_ok());
    }

    #[test]
    fn forget_then_reinsert_is_not_evicted_by_the_stale_slot() {
        let g = ReplayGuard::new(10, Duration::from_secs(10));
        g.insert("a", 100).unwrap();
        g.forget("a");
        g.insert("a", 105).unwrap();
        // The first slot (expiring at 110) is purged at 111; the re-insert lives until 115.
        assert!(g.insert("b", 111).is_ok());
        assert!(g.insert("a", 112).is_err());
        assert!(g.insert("a", 115).is_ok());
    }

    #[test]
    fn pending_entries_report_unsettled_until_settled() {
        let g = ReplayGuard::new(10, Duration::from_secs(10));
        g.insert_for("a", 100, Duration::ZERO, false).unwrap();
        assert_eq!(g.insert("a", 101), Err(Seen { settled: false }));
        g.settle("a");
        assert_eq!(g.insert("a", 101), Err(Seen { settled: true }));
    }
}
