//! Brute-force protection for one `client_id` (RFC 6749 §2.3.1, §10.10).
//!
//! Failed client authentications are counted per `client_id` in token buckets; successes cost
//! nothing. The endpoint always verifies the secret first: the right secret gets its token
//! whatever the bucket holds (client ids are not secret, so a lockout that refused it would let
//! anyone lock a partner out), and a wrong one gets 429 `slow_down` with `Retry-After` instead
//! of 401 while the bucket is empty. State is in memory (per process) and bounded: full (idle)
//! buckets are pruned when the table grows.
//!
//! Requests per peer address (all of them, failed or not) are limited by the core
//! `KeyedRateLimitLayer` in front of the endpoint (`--token-rate-limit`, shared through Redis
//! with `--redis-url`; see [`crate::limits`]), so this table needs no per-address buckets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use l2c_core::clock::Clock;

/// Most keys kept before idle ones are pruned.
const SOFT_CAP: usize = 10_000;
/// Most keys kept at all; beyond it arbitrary keys are evicted.
const HARD_CAP: usize = 100_000;

/// How many failures a key may accumulate and how fast they are forgiven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Failures allowed in a burst.
    pub burst: u32,
    /// Time for one failure to be forgiven.
    pub refill_every: Duration,
}

/// The failed-authentication limit per `client_id`.
///
/// Not to be confused with [`l2c_core::limits::FailurePolicy`], what a limit layer does when its
/// store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedAuthPolicy {
    /// Per `client_id` (default: 10 failures, then one every 6 s).
    pub per_client: Allowance,
}

/// The old name of [`FailedAuthPolicy`], which also named the limit layers' store-failure policy.
#[deprecated(
    since = "0.1.1",
    note = "renamed to `FailedAuthPolicy`; removed in the next release"
)]
pub type FailurePolicy = FailedAuthPolicy;

impl Default for FailedAuthPolicy {
    fn default() -> Self {
        Self {
            per_client: Allowance {
                burst: 10,
                refill_every: Duration::from_secs(6),
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failures still allowed, in units of 1/1000 to refill smoothly.
    milli_tokens: u64,
    updated: SystemTime,
}

/// Counts failed authentications per `client_id`; cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct FailedAuthLimiter {
    policy: FailedAuthPolicy,
    clock: Arc<dyn Clock>,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

impl FailedAuthLimiter {
    /// A limiter with `policy`, reading time from `clock`.
    pub fn new(policy: FailedAuthPolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            policy,
            clock,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn refilled(&self, bucket: Bucket, now: SystemTime) -> Bucket {
        let allowance = self.policy.per_client;
        let full = u64::from(allowance.burst) * 1000;
        let elapsed = now.duration_since(bucket.updated).unwrap_or_default();
        let per = allowance.refill_every.as_nanos().max(1);
        let gained = elapsed.as_nanos().saturating_mul(1000) / per;
        Bucket {
            milli_tokens: full.min(
                bucket
                    .milli_tokens
                    .saturating_add(u64::try_from(gained).unwrap_or(u64::MAX)),
            ),
            updated: now,
        }
    }

    /// `Err(retry_after)` when `client_id` has used up its failures.
    pub fn check(&self, client_id: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let Some(bucket) = buckets.get(client_id) else {
            return Ok(());
        };
        let bucket = self.refilled(*bucket, now);
        if bucket.milli_tokens >= 1000 {
            return Ok(());
        }
        let missing = u32::try_from(1000 - bucket.milli_tokens).unwrap_or(1000);
        Err(self.policy.per_client.refill_every * missing / 1000)
    }

    /// Records one failed authentication for `client_id`.
    pub fn record_failure(&self, client_id: &str) {
        let now = self.clock.now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= SOFT_CAP {
            self.prune(&mut buckets, now);
        }
        let full = u64::from(self.policy.per_client.burst) * 1000;
        let bucket = buckets.get(client_id).copied().unwrap_or(Bucket {
            milli_tokens: full,
            updated: now,
        });
        let mut bucket = self.refilled(bucket, now);
        bucket.milli_tokens = bucket.milli_tokens.saturating_sub(1000);
        buckets.insert(client_id.to_owned(), bucket);
    }

    fn prune(&self, buckets: &mut HashMap<String, Bucket>, now: SystemTime) {
        let full = u64::from(self.policy.per_client.burst) * 1000;
        buckets.retain(|_, bucket| self.refilled(*bucket, now).milli_tokens < full);
        if buckets.len() >= HARD_CAP {
            let excess: Vec<String> = buckets.keys().take(HARD_CAP / 10).cloned().collect();
            for key in excess {
                buckets.remove(&key);
            }
        }
    }

    /// How many keys are tracked (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use l2c_core::clock::MockClock;

    fn limiter(clock: &MockClock) -> FailedAuthLimiter {
        let policy = FailedAuthPolicy {
            per_client: Allowance {
                burst: 3,
                refill_every: Duration::from_secs(10),
            },
        };
        FailedAuthLimiter::new(policy, Arc::new(clock.clone()))
    }

    #[test]
    fn client_is_blocked_after_its_burst_and_forgiven_over_time() {
        let clock = MockClock::at_unix(1_000);
        let l = limiter(&clock);
        for _ in 0..3 {
            assert!(l.check("a").is_ok());
            l.record_failure("a");
        }
        assert_eq!(l.check("a"), Err(Duration::from_secs(10)));
        // Another client is unaffected.
        assert!(l.check("b").is_ok());
        clock.advance(Duration::from_secs(4));
        assert_eq!(l.check("a"), Err(Duration::from_secs(6)));
        clock.advance(Duration::from_secs(6));
        assert!(l.check("a").is_ok());
    }

    #[test]
    fn idle_keys_are_pruned() {
        let clock = MockClock::at_unix(1_000);
        let l = limiter(&clock);
        for i in 0..SOFT_CAP {
            l.record_failure(&i.to_string());
        }
        assert_eq!(l.tracked_keys(), SOFT_CAP);
        clock.advance(Duration::from_secs(3600));
        l.record_failure("new");
        assert_eq!(l.tracked_keys(), 1);
    }
}
