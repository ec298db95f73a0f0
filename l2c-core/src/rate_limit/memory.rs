//! The in-memory store: sharded, bounded, one `u64` per key.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::clock::{MonotonicClock, NanoClock};
use super::gcra::gcra;
use super::{Decision, GcraParams, RateLimitStore};
use crate::limits::StoreError;

/// Keys tracked at most by default (about 20–40 MB at the worst).
pub const DEFAULT_MAX_KEYS: usize = 1 << 20;

const MIN_SWEEP: usize = 64;

/// A GCRA store in process memory.
///
/// # Memory
///
/// A key is stored as its 64-bit keyed SipHash (a per-store random key, so collisions cannot be
/// provoked; two keys colliding by chance, about 1 in 10¹³ for a million keys, would share a
/// quota) next to its theoretical arrival time: 16 bytes in an open-addressing table, about 20–40
/// bytes per tracked key with the table's slack, and no allocation per key.
///
/// # Eviction, without a background task
///
/// A key whose theoretical arrival time has passed holds a full bucket, which is exactly the
/// state of an absent key, so removing it changes no answer. Each shard sweeps such idle keys out
/// when an insert finds it at its sweep mark (twice its size after the previous sweep), which
/// keeps memory proportional to the keys active within one quota period at amortized O(1) cost.
/// If more than `max_keys` keys are active at once, the sweep also drops the keys closest to
/// idle (those keys get a full bucket back early), so the store never grows past `max_keys`.
pub struct MemoryStore<C = MonotonicClock> {
    shards: Box<[Shard]>,
    shard_mask: u64,
    shard_capacity: usize,
    hasher: RandomState,
    clock: C,
}

#[repr(align(64))]
struct Shard {
    state: Mutex<ShardState>,
}

struct ShardState {
    map: HashMap<u64, u64, BuildHasherDefault<PreHashed>>,
    sweep_at: usize,
}

/// The map's keys are already SipHash outputs: use them as they are.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `u64` keys; fold anything else in for completeness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl MemoryStore<MonotonicClock> {
    /// A store with the default bound ([`DEFAULT_MAX_KEYS`]) and the monotonic clock.
    pub fn new() -> Self {
        Self::with_clock(MonotonicClock::new())
    }
}

impl Default for MemoryStore<MonotonicClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: NanoClock> MemoryStore<C> {
    /// A store reading time from `clock` (inject a `MockClock` in tests).
    pub fn with_clock(clock: C) -> Self {
        let parallelism = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (parallelism * 8).next_power_of_two().clamp(16, 256);
        Self::build(clock, shards, DEFAULT_MAX_KEYS)
    }

    fn build(clock: C, shards: usize, max_keys: usize) -> Self {
        let shard_capacity = (max_keys / shards).max(MIN_SWEEP);
        Self {
            shards: (0..shards)
                .map(|_| Shard {
                    state: Mutex::new(ShardState {
                        map: HashMap::default(),
                        sweep_at: MIN_SWEEP,
                    }),
                })
                .collect(),
            shard_mask: (shards as u64) - 1,
            shard_capacity,
            hasher: RandomState::new(),
            clock,
        }
    }

    /// Bounds the number of tracked keys (at least 64 per shard).
    #[must_use]
    pub fn max_keys(self, max_keys: usize) -> Self {
        let shards = self.shards.len();
        Self::build(self.clock, shards, max_keys)
    }

    /// The bound on tracked keys.
    pub fn max_keys_bound(&self) -> usize {
        self.shard_capacity * self.shards.len()
    }

    /// The number of keys tracked now (idle ones not yet swept included).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The memory held by the tables, in bytes: 17 bytes (key hash, arrival time, control byte)
    /// per allocated slot, empty slots included.
    pub fn table_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let cap = s.lock().map.capacity();
                // hashbrown allocates a power of two of buckets, ≥ capacity × 8 / 7.
                let buckets = if cap == 0 {
                    0
                } else {
                    (cap * 8 / 7).next_power_of_two()
                };
                buckets * (16 + 1)
            })
            .sum()
    }

    /// Checks one request of `key` now; allocation-free once the key is tracked.
    #[inline]
    pub fn check_key(&self, key: &str, params: GcraParams) -> Decision {
        let hash = self.hasher.hash_one(key);
        // Bits 40..48 choose the shard: independent of the bits the table itself uses (the low
        // bits for the slot, the top seven for the control byte).
        let shard = &self.shards[((hash >> 40) & self.shard_mask) as usize];
        let now = self.clock.now_nanos();
        let mut state = shard.lock();
        if let Some(tat) = state.map.get_mut(&hash) {
            let (decision, new_tat) = gcra(*tat, now, params);
            if let Some(new_tat) = new_tat {
                *tat = new_tat;
            }
            return decision;
        }
        let (decision, new_tat) = gcra(0, now, params);
        if let Some(new_tat) = new_tat {
            state.insert(hash, new_tat, now, self.shard_capacity);
        }
        decision
    }
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, ShardState> {
        // The critical sections cannot panic half-way; a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ShardState {
    fn insert(&mut self, hash: u64, tat: u64, now: u64, capacity: usize) {
        if self.map.len() >= self.sweep_at {
            self.sweep(now, capacity);
        }
        self.map.insert(hash, tat);
    }

    fn sweep(&mut self, now: u64, capacity: usize) {
        self.map.retain(|_, tat| *tat > now);
        let target = capacity - capacity / 4;
        if self.map.len() > target {
            // Too many active keys: keep the `target` furthest from idle.
            let mut ahead: Vec<u64> = self.map.values().map(|tat| tat - now).collect();
            let cut = ahead.len() - target;
            let (_, threshold, _) = ahead.select_nth_unstable(cut);
            let threshold = *threshold;
            self.map.retain(|_, tat| *tat - now > threshold);
        }
        let len = self.map.len();
        self.sweep_at = (len * 2).clamp(MIN_SWEEP, capacity);
        if self.map.capacity() > 4 * self.sweep_at {
            self.map.shrink_to(self.sweep_at);
        }
    }
}

#[async_trait]
impl<C: NanoClock> RateLimitStore for MemoryStore<C> {
    async fn check(&self, key: &str, params: GcraParams) -> Result<Decision, StoreError> {
        Ok(self.check_key(key, params))
    }

    #[inline]
    fn check_now(&self, key: &str, params: GcraParams) -> Option<Result<Decision, StoreError>> {
        Some(Ok(self.check_key(key, params)))
    }
}

impl<C: fmt::Debug> fmt::Debug for MemoryStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .field("max_keys", &(self.shard_capacity * self.shards.len()))
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}
