//! Brute-force protection for the token endpoint (RFC 6749 §2.3.1, §10.10).
//!
//! Failed client authentications are counted per `client_id` and per peer address in token
//! buckets; successes cost nothing. When either bucket is empty, the endpoint answers 429
//! `slow_down` with `Retry-After` *before* checking the secret, so guessing stops even for the
//! right secret until the bucket refills. State is in memory and bounded: full (idle) buckets are
//! pruned when the table grows.

use std::collections::HashMap;
use std::net::IpAddr;
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

/// The limits per `client_id` and per peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Per `client_id` (default: 10 failures, then one every 6 s).
    pub per_client: Allowance,
    /// Per peer IP address (default: 30 failures, then one every 2 s).
    pub per_peer: Allowance,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        Self {
            per_client: Allowance {
                burst: 10,
                refill_every: Duration::from_secs(6),
            },
            per_peer: Allowance {
                burst: 30,
                refill_every: Duration::from_secs(2),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Client(String),
    Peer(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failures still allowed, in units of 1/1000 to refill smoothly.
    milli_tokens: u64,
    updated: SystemTime,
}

/// Counts failed authentications; cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct FailedAuthLimiter {
    policy: FailurePolicy,
    clock: Arc<dyn Clock>,
    buckets: Arc<Mutex<HashMap<Key, Bucket>>>,
}

impl FailedAuthLimiter {
    /// A limiter with `policy`, reading time from `clock`.
    pub fn new(policy: FailurePolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            policy,
            clock,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn allowance(&self, key: &Key) -> Allowance {
        match key {
            Key::Client(_) => self.policy.per_client,
            Key::Peer(_) => self.policy.per_peer,
        }
    }

    fn refilled(&self, key: &Key, bucket: Bucket, now: SystemTime) -> Bucket {
        let allowance = self.allowance(key);
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

    fn keys(client_id: Option<&str>, peer: Option<IpAddr>) -> Vec<Key> {
        let mut keys = Vec::with_capacity(2);
        if let Some(id) = client_id {
            keys.push(Key::Client(id.to_owned()));
        }
        if let Some(ip) = peer {
            keys.push(Key::Peer(ip));
        }
        keys
    }

    /// `Err(retry_after)` when the client id or the peer has used up its failures.
    pub fn check(&self, client_id: Option<&str>, peer: Option<IpAddr>) -> Result<(), Duration> {
        let now = self.clock.now();
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = Duration::ZERO;
        for key in Self::keys(client_id, peer) {
            let Some(bucket) = buckets.get(&key) else {
                continue;
            };
            let bucket = self.refilled(&key, *bucket, now);
            if bucket.milli_tokens < 1000 {
                let missing = u32::try_from(1000 - bucket.milli_tokens).unwrap_or(1000);
                let until = self.allowance(&key).refill_every * missing / 1000;
                wait = wait.max(until);
            }
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    /// Records one failed authentication for the client id and the peer.
    pub fn record_failure(&self, client_id: Option<&str>, peer: Option<IpAddr>) {
        let now = self.clock.now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= SOFT_CAP {
            self.prune(&mut buckets, now);
        }
        for key in Self::keys(client_id, peer) {
            let full = u64::from(self.allowance(&key).burst) * 1000;
            let bucket = buckets.get(&key).copied().unwrap_or(Bucket {
                milli_tokens: full,
                updated: now,
            });
            let mut bucket = self.refilled(&key, bucket, now);
            bucket.milli_tokens = bucket.milli_tokens.saturating_sub(1000);
            buckets.insert(key, bucket);
        }
    }

    fn prune(&self, buckets: &mut HashMap<Key, Bucket>, now: SystemTime) {
        buckets.retain(|key, bucket| {
            let full = u64::from(self.allowance(key).burst) * 1000;
            self.refilled(key, *bucket, now).milli_tokens < full
        });
        if buckets.len() >= HARD_CAP {
            let excess: Vec<Key> = buckets.keys().take(HARD_CAP / 10).cloned().collect();
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
        let policy = FailurePolicy {
            per_client: Allowance {
                burst: 3,
                refill_every: Duration::from_secs(10),
            },
            per_peer: Allowance {
                burst: 5,
                refill_every: Duration::from_secs(1),
            },
        };
        FailedAuthLimiter::new(policy, Arc::new(clock.clone()))
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn client_is_blocked_after_its_burst_and_forgiven_over_time() {
        let clock = MockClock::at_unix(1_000);
        let l = limiter(&clock);
        for _ in 0..3 {
            assert!(l.check(Some("a"), None).is_ok());
            l.record_failure(Some("a"), None);
        }
        assert_eq!(l.check(Some("a"), None), Err(Duration::from_secs(10)));
        // Another client is unaffected.
        assert!(l.check(Some("b"), None).is_ok());
        clock.advance(Duration::from_secs(4));
        assert_eq!(l.check(Some("a"), None), Err(Duration::from_secs(6)));
        clock.advance(Duration::from_secs(6));
        assert!(l.check(Some("a"), None).is_ok());
    }

    #[test]
    fn peer_is_blocked_across_client_ids() {
        let clock = MockClock::at_unix(1_000);
        let l = limiter(&clock);
        for i in 0..5 {
            l.record_failure(Some(&format!("c{i}")), Some(IP));
        }
        assert!(l.check(Some("fresh"), Some(IP)).is_err());
        assert!(l.check(Some("fresh"), None).is_ok());
    }

    #[test]
    fn idle_keys_are_pruned() {
        let clock = MockClock::at_unix(1_000);
        let l = limiter(&clock);
        for i in 0..SOFT_CAP {
            l.record_failure(Some(&i.to_string()), None);
        }
        assert_eq!(l.tracked_keys(), SOFT_CAP);
        clock.advance(Duration::from_secs(3600));
        l.record_failure(Some("new"), None);
        assert_eq!(l.tracked_keys(), 1);
    }
}
