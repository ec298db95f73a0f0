//! The Redis store: one EVALSHA per check, atomic across every process sharing the Redis.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;

use super::{Decision, GcraParams, RateLimitStore};
use crate::limits::{RedisConnection, StoreError};

/// GCRA in one script. Time comes from the Redis server (`TIME`), so replicas with skewed clocks
/// still agree. Values are microseconds (exact in a Lua double). Returns
/// `{allowed, remaining, nanos}` where `nanos` is the reset or retry-after delay.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + emission
local ahead = new_tat - now
if ahead > tolerance then
  return {0, 0, (ahead - tolerance) * 1000}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(ahead / 1000) + 1)
return {1, math.floor((tolerance - ahead) / emission), ahead * 1000}
",
    )
});

/// A [`RateLimitStore`] in Redis, shared by every replica that uses the same key prefix.
///
/// Keys are `<prefix>rl:<partition key>` and expire as soon as their bucket is full again, so
/// Redis holds only active keys. Each check is one `EVALSHA` round trip bounded by the
/// connection's timeout.
///
/// ```no_run
/// use l2c_core::limits::RedisConnection;
/// use l2c_core::rate_limit::{KeyedRateLimitLayer, Quota, RedisStore};
///
/// let redis = RedisConnection::new("redis://127.0.0.1:6379").unwrap();
/// let layer = KeyedRateLimitLayer::new(Quota::per_second(100))
///     .with_store(RedisStore::new(redis, "l2c:prod:"));
/// ```
#[derive(Debug, Clone)]
pub struct RedisStore {
    redis: RedisConnection,
    prefix: String,
}

impl RedisStore {
    /// A store using `redis`, with keys under `prefix` (one prefix per deployment).
    pub fn new(redis: RedisConnection, prefix: impl Into<String>) -> Self {
        Self {
            redis,
            prefix: prefix.into(),
        }
    }
}

#[async_trait]
impl RateLimitStore for RedisStore {
    async fn check(&self, key: &str, params: GcraParams) -> Result<Decision, StoreError> {
        let redis_key = format!("{}rl:{key}", self.prefix);
        let emission = (params.emission_nanos / 1_000).max(1).to_string();
        let tolerance = (params.tolerance_nanos / 1_000).max(1).to_string();
        let (allowed, remaining, nanos): (i64, i64, i64) = self
            .redis
            .eval(&GCRA, &[&redis_key], &[&emission, &tolerance])
            .await?;
        let remaining = u64::try_from(remaining).unwrap_or(0);
        let nanos = u64::try_from(nanos).unwrap_or(0);
        Ok(if allowed == 1 {
            Decision::allowed(remaining, nanos)
        } else {
            Decision::limited(nanos)
        })
    }
}
