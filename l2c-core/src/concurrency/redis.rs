//! The Redis concurrency store: slots as leases with a TTL in a sorted set.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use rand::RngCore;
use redis::Script;
use tokio::task::JoinHandle;

use super::{Acquire, ConcurrencyStore, Permit};
use crate::limits::{RedisConnection, StoreError};

/// Drops expired leases, then adds one if a slot is free. Returns `{granted, in_use}`.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then return {0, n} end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, n + 1}
",
    )
});

/// Extends a lease that is still there.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local changed = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + ttl, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
return changed
",
    )
});

static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new("return redis.call('ZREM', KEYS[1], ARGV[1])"));

/// A [`ConcurrencyStore`] in Redis, shared by every replica that uses the same key prefix.
///
/// Each slot is a lease (a random member of the sorted set `<prefix>cc:<key>`, scored by its
/// expiry). A held permit renews its lease every third of the TTL; dropping it removes the lease
/// from a spawned task. If the server crashes, its leases expire after the TTL (default 30 s) and
/// the slots come back.
#[derive(Debug, Clone)]
pub struct RedisConcurrencyStore {
    redis: RedisConnection,
    prefix: String,
    lease: Duration,
}

impl RedisConcurrencyStore {
    /// A store using `redis`, with keys under `prefix`, and leases of 30 s.
    pub fn new(redis: RedisConnection, prefix: impl Into<String>) -> Self {
        Self {
            redis,
            prefix: prefix.into(),
            lease: Duration::from_secs(30),
        }
    }

    /// Sets the lease TTL (at least 1 s): how long a crashed server's slots stay taken.
    #[must_use]
    pub fn lease(mut self, ttl: Duration) -> Self {
        self.lease = ttl.max(Duration::from_secs(1));
        self
    }
}

#[async_trait]
impl ConcurrencyStore for RedisConcurrencyStore {
    async fn acquire(&self, key: &str, limit: u32) -> Result<Acquire, StoreError> {
        let redis_key = format!("{}cc:{key}", self.prefix);
        let mut id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut id);
        let member = hex::encode(id);
        let ttl_ms = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        let (granted, in_use): (i64, i64) = self
            .redis
            .eval(
                &ACQUIRE,
                &[&redis_key],
                &[&limit.max(1).to_string(), &ttl_ms.to_string(), &member],
            )
            .await?;
        if granted != 1 {
            return Ok(Acquire::Full);
        }
        let in_use = u32::try_from(in_use).unwrap_or(u32::MAX);
        let renewer = spawn_renewer(
            self.redis.clone(),
            redis_key.clone(),
            member.clone(),
            self.lease,
        );
        Ok(Acquire::Granted {
            permit: Permit::new(RedisGuard {
                redis: self.redis.clone(),
                key: redis_key,
                member,
                renewer,
            }),
            available: limit.max(1).saturating_sub(in_use),
        })
    }
}

fn spawn_renewer(
    redis: RedisConnection,
    key: String,
    member: String,
    lease: Duration,
) -> Option<JoinHandle<()>> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    Some(handle.spawn(async move {
        let ttl_ms = u64::try_from(lease.as_millis())
            .unwrap_or(u64::MAX)
            .to_string();
        let mut every = tokio::time::interval(lease / 3);
        every.tick().await;
        loop {
            every.tick().await;
            let renewed: Result<i64, _> = redis.eval(&RENEW, &[&key], &[&ttl_ms, &member]).await;
            if let Err(error) = renewed {
                tracing::warn!(%error, "could not renew a concurrency lease");
            }
        }
    }))
}

#[derive(Debug)]
struct RedisGuard {
    redis: RedisConnection,
    key: String,
    member: String,
    renewer: Option<JoinHandle<()>>,
}

impl Drop for RedisGuard {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        // Without a runtime the lease simply expires after its TTL.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let redis = self.redis.clone();
            let key = std::mem::take(&mut self.key);
            let member = std::mem::take(&mut self.member);
            handle.spawn(async move {
                let released: Result<i64, _> = redis.eval(&RELEASE, &[&key], &[&member]).await;
                if let Err(error) = released {
                    tracing::warn!(%error, "could not release a concurrency lease; it will expire");
                }
            });
        }
    }
}
