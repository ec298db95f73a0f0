//! The in-process store.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::record::{Fingerprint, LeaseToken, RecordKey, StoredResponse};
use super::store::{Claim, IdempotencyStore, StoreError, StoreErrorKind};

/// Default bound on the number of keys (records and leases) a [`MemoryIdempotencyStore`] holds.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Default bound on the bytes of stored responses a [`MemoryIdempotencyStore`] holds.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;
/// The most keys a store sizes its table for up front (twice [`DEFAULT_MAX_ENTRIES`]); a store
/// with a larger bound grows past it as it fills.
const MAX_PRESIZED_KEYS: usize = 2 * DEFAULT_MAX_ENTRIES;

/// An in-process [`IdempotencyStore`]: right for one replica; use the Redis store for several.
///
/// Bounded without a cleanup task: every claim first evicts expired records (oldest first, since
/// every record of a layer lives equally long) and, when the store is over `max_entries` or
/// `max_bytes`, the oldest completed records even before they expire (their keys then behave as
/// new, which the bounds make explicit). Leases are never evicted before they expire; if the
/// store is full of live leases a claim fails with [`StoreErrorKind::Capacity`] (503).
///
/// Time is [`tokio::time::Instant`], so tests drive expiry with `tokio::time::pause()`.
pub struct MemoryIdempotencyStore {
    inner: Mutex<Inner>,
    max_entries: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct Inner {
    map: HashMap<RecordKey, Slot>,
    /// Completed records in insertion order, with the generation that identifies them.
    done: VecDeque<(RecordKey, u64)>,
    bytes: usize,
    next_generation: u64,
}

enum Slot {
    InFlight {
        token: LeaseToken,
        fingerprint: Fingerprint,
        until: Instant,
    },
    Done {
        record: Arc<StoredResponse>,
        expires: Instant,
        generation: u64,
        size: usize,
    },
}

impl Default for MemoryIdempotencyStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryIdempotencyStore {
    /// A store bounded by [`DEFAULT_MAX_ENTRIES`] and [`DEFAULT_MAX_BYTES`].
    pub fn new() -> Self {
        Self::with_bounds(DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES)
    }

    /// A store holding at most `max_entries` keys and `max_bytes` of stored responses
    /// (each at least 1).
    ///
    /// The table is sized once for twice `max_entries` keys (up to 200,000), so it never grows
    /// while requests wait on its lock. Grown as it filled, it moved every key at each doubling
    /// and once more when eviction churn had used up its free slots: a release build stalled
    /// 5 ms at 28,672 keys, 16 ms at 57,344 and 42 ms about 47,000 requests after reaching the
    /// default bound of 100,000 (then never again, the table being half empty). At half load
    /// the churn leaves free slots, as the test below checks. The table's memory is the same as
    /// a grown one's once full, and an idle store touches only its control bytes (256 KiB at
    /// the default bound).
    pub fn with_bounds(max_entries: usize, max_bytes: usize) -> Self {
        let max_entries = max_entries.max(1);
        let inner = Inner {
            map: HashMap::with_capacity(max_entries.saturating_mul(2).min(MAX_PRESIZED_KEYS)),
            ..Inner::default()
        };
        Self {
            inner: Mutex::new(inner),
            max_entries,
            max_bytes: max_bytes.max(1),
        }
    }

    /// How many keys (records and leases) the store holds now.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of stored responses held now.
    pub fn stored_bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The critical sections never panic; recover the data if one ever did.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn claim_sync(
        &self,
        key: &RecordKey,
        fingerprint: &Fingerprint,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        match inner.map.get(key) {
            Some(Slot::InFlight {
                fingerprint, until, ..
            }) if *until > now => {
                return Ok(Claim::InFlight {
                    fingerprint: *fingerprint,
                });
            }
            Some(Slot::Done {
                record, expires, ..
            }) if *expires > now => return Ok(Claim::Completed(Arc::clone(record))),
            Some(Slot::Done { generation, .. }) => {
                let generation = *generation;
                inner.remove_done(key, generation);
            }
            Some(Slot::InFlight { .. }) => {
                inner.map.remove(key);
            }
            None => {}
        }
        inner.evict(now, self.max_entries, self.max_bytes);
        if inner.map.len() >= self.max_entries {
            return Err(StoreError::new(
                StoreErrorKind::Capacity,
                "too many requests in flight",
            ));
        }
        let token = LeaseToken::generate();
        inner.map.insert(
            *key,
            Slot::InFlight {
                token,
                fingerprint: *fingerprint,
                until: now + lease,
            },
        );
        Ok(Claim::Claimed(token))
    }

    fn release_now(&self, key: &RecordKey, token: &LeaseToken) {
        let mut inner = self.lock();
        if matches!(inner.map.get(key), Some(Slot::InFlight { token: t, .. }) if t == token) {
            inner.map.remove(key);
        }
    }
}

impl Inner {
    fn remove_done(&mut self, key: &RecordKey, generation: u64) {
        if let Some(Slot::Done {
            generation: g,
            size,
            ..
        }) = self.map.get(key)
            && *g == generation
        {
            self.bytes -= *size;
            self.map.remove(key);
        }
    }

    /// Drops expired records from the front and, while over a bound, the oldest records.
    fn evict(&mut self, now: Instant, max_entries: usize, max_bytes: usize) {
        while let Some(&(key, generation)) = self.done.front() {
            let live = match self.map.get(&key) {
                Some(Slot::Done {
                    generation: g,
                    expires,
                    ..
                }) if *g == generation => Some(*expires),
                _ => None,
            };
            match live {
                None => {
                    self.done.pop_front();
                }
                Some(expires)
                    if expires <= now
                        || self.map.len() >= max_entries
                        || self.bytes > max_bytes =>
                {
                    self.done.pop_front();
                    self.remove_done(&key, generation);
                }
                Some(_) => break,
            }
        }
        if self.map.len() >= max_entries {
            // Only leases left: drop the expired ones (rare, O(n), only when full).
            self.map
                .retain(|_, slot| !matches!(slot, Slot::InFlight { until, .. } if *until <= now));
        }
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn claim(
        &self,
        key: &RecordKey,
        fingerprint: &Fingerprint,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        self.claim_sync(key, fingerprint, lease)
    }

    fn claim_now(
        &self,
        key: &RecordKey,
        fingerprint: &Fingerprint,
        lease: Duration,
    ) -> Option<Result<Claim, StoreError>> {
        Some(self.claim_sync(key, fingerprint, lease))
    }

    async fn complete(
        &self,
        key: &RecordKey,
        token: &LeaseToken,
        response: Arc<StoredResponse>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        if !matches!(inner.map.get(key), Some(Slot::InFlight { token: t, .. }) if t == token) {
            return Ok(false);
        }
        let size = response.size_hint();
        if size > self.max_bytes {
            inner.map.remove(key);
            return Ok(false);
        }
        let generation = inner.next_generation;
        inner.next_generation += 1;
        inner.bytes += size;
        inner.map.insert(
            *key,
            Slot::Done {
                record: response,
                expires: now + ttl,
                generation,
                size,
            },
        );
        inner.done.push_back((*key, generation));
        if inner.bytes > self.max_bytes {
            inner.evict(now, self.max_entries, self.max_bytes);
        }
        Ok(true)
    }

    async fn release(&self, key: &RecordKey, token: &LeaseToken) -> Result<(), StoreError> {
        self.release_now(key, token);
        Ok(())
    }

    fn release_on_drop(self: Arc<Self>, key: RecordKey, token: LeaseToken) {
        self.release_now(&key, &token);
    }
}

impl fmt::Debug for MemoryIdempotencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryIdempotencyStore")
            .field("entries", &inner.map.len())
            .field("bytes", &inner.bytes)
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::{HeaderMap, Method, StatusCode};

    use super::*;

    fn key(n: u32) -> RecordKey {
        RecordKey::new(Some("c"), &Method::POST, "/p", &n.to_string())
    }

    fn record(fp: Fingerprint, body_len: usize) -> Arc<StoredResponse> {
        Arc::new(StoredResponse::new(
            fp,
            StatusCode::OK,
            HeaderMap::new(),
            Bytes::from(vec![b'x'; body_len]),
        ))
    }

    async fn fill(store: &MemoryIdempotencyStore, n: u32, body_len: usize, ttl: Duration) {
        let fp = Fingerprint::new(&Method::POST, "/p", b"");
        let Claim::Claimed(token) = store
            .claim(&key(n), &fp, Duration::from_secs(60))
            .await
            .unwrap()
        else {
            panic!("key {n} not free");
        };
        assert!(
            store
                .complete(&key(n), &token, record(fp, body_len), ttl)
                .await
                .unwrap()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn records_expire_after_their_ttl() {
        let store = MemoryIdempotencyStore::new();
        fill(&store, 1, 10, Duration::from_secs(10)).await;
        let fp = Fingerprint::new(&Method::POST, "/p", b"");
        let lease = Duration::from_secs(60);
        assert!(matches!(
            store.claim(&key(1), &fp, lease).await.unwrap(),
            Claim::Completed(_)
        ));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(matches!(
            store.claim(&key(1), &fp, lease).await.unwrap(),
            Claim::Claimed(_)
        ));
        assert_eq!(store.stored_bytes(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn entry_and_byte_bounds_evict_the_oldest_records() {
        let store = MemoryIdempotencyStore::with_bounds(3, 100_000);
        for n in 0..10 {
            fill(&store, n, 10, Duration::from_secs(3600)).await;
            assert!(store.len() <= 3, "len {}", store.len());
        }
        let store = MemoryIdempotencyStore::with_bounds(1000, 1000);
        for n in 0..10 {
            fill(&store, n, 300, Duration::from_secs(3600)).await;
            assert!(
                store.stored_bytes() <= 1000,
                "bytes {}",
                store.stored_bytes()
            );
        }
        // The newest record survives.
        let fp = Fingerprint::new(&Method::POST, "/p", b"");
        assert!(matches!(
            store
                .claim(&key(9), &fp, Duration::from_secs(1))
                .await
                .unwrap(),
            Claim::Completed(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_full_of_live_leases_refuses_new_claims_until_they_expire() {
        let store = MemoryIdempotencyStore::with_bounds(2, 1000);
        let fp = Fingerprint::new(&Method::POST, "/p", b"");
        let lease = Duration::from_secs(5);
        for n in 0..2 {
            assert!(matches!(
                store.claim(&key(n), &fp, lease).await.unwrap(),
                Claim::Claimed(_)
            ));
        }
        let err = store.claim(&key(2), &fp, lease).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Capacity);
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(matches!(
            store.claim(&key(2), &fp, lease).await.unwrap(),
            Claim::Claimed(_)
        ));
    }

    #[tokio::test]
    async fn a_full_store_under_churn_never_regrows_its_table() {
        // Growing (or rehashing) the table moves every key while each claim waits on the lock:
        // at the default bound that was a 42 ms stall. Sized up front, it must absorb filling
        // to the bound and then three times as many evictions without reallocating.
        // (`capacity()` is the keys held plus the free slots left; the table grows or rehashes
        // only when an insert finds no free slot, and grows when it then needs more room.)
        let max = 5_000;
        let store = MemoryIdempotencyStore::with_bounds(max, usize::MAX);
        let capacity = store.lock().map.capacity();
        assert!(capacity >= 2 * max, "sized for {capacity} keys");
        let mut least_free = usize::MAX;
        for n in 0..(4 * max as u32) {
            fill(&store, n, 10, Duration::from_secs(3600)).await;
            let inner = store.lock();
            assert!(
                inner.map.capacity() <= capacity,
                "the table grew at claim {n}"
            );
            least_free = least_free.min(inner.map.capacity() - inner.map.len());
        }
        assert_eq!(store.len(), max);
        assert!(
            least_free > 0,
            "the table ran out of free slots (it rehashed)"
        );
    }

    #[test]
    fn a_huge_bound_does_not_allocate_for_it_up_front() {
        let store = MemoryIdempotencyStore::with_bounds(usize::MAX, usize::MAX);
        assert!(store.lock().map.capacity() < 2 * MAX_PRESIZED_KEYS);
    }

    #[tokio::test]
    async fn complete_and_release_need_the_holders_token() {
        let store = MemoryIdempotencyStore::new();
        let fp = Fingerprint::new(&Method::POST, "/p", b"");
        let Claim::Claimed(token) = store
            .claim(&key(1), &fp, Duration::from_secs(5))
            .await
            .unwrap()
        else {
            panic!("not claimed");
        };
        let other = LeaseToken::generate();
        store.release(&key(1), &other).await.unwrap();
        assert!(
            !store
                .complete(&key(1), &other, record(fp, 1), Duration::from_secs(5))
                .await
                .unwrap()
        );
        assert!(matches!(
            store
                .claim(&key(1), &fp, Duration::from_secs(5))
                .await
                .unwrap(),
            Claim::InFlight { .. }
        ));
        store.release(&key(1), &token).await.unwrap();
        assert!(store.is_empty());
    }
}
