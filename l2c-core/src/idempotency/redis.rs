//! The Redis store (feature `redis`), shared by every replica.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};
use tokio::sync::OnceCell;

use super::record::{Fingerprint, LeaseToken, RecordKey, StoredResponse};
use super::store::{Claim, IdempotencyStore, StoreError, StoreErrorKind};

/// Default bound on connecting and on each round trip.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Marks an in-flight lease value: `L` + token (16) + fingerprint (32).
const LEASE_TAG: u8 = b'L';
/// Marks a completed record value: `D` + [`StoredResponse::to_bytes`].
const DONE_TAG: u8 = b'D';

/// `SET NX PX` the lease; if the key exists, return what holds it. One round trip.
const CLAIM: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
local held = redis.call('GET', KEYS[1])
if held then
  return held
end
return 0
";

/// Compare-and-set: replace our lease (`L` + token prefix) by the record.
const COMPLETE: &str = r"
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, 17) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// Compare-and-delete: free the key only if it still holds our lease (`L` + token prefix).
const RELEASE: &str = r"
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, 17) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// An [`IdempotencyStore`] in Redis, so every replica of a deployment sees the same keys.
///
/// - claim: one Lua script doing `SET key lease NX PX <lease>` and, when the key exists, `GET`
///   (one round trip); the lease value carries a random token and the request fingerprint;
/// - complete / release: Lua compare-and-set / compare-and-delete on the lease's token, so a
///   holder whose lease expired can never overwrite or free a newer holder's key;
/// - records: `SET key record PX <ttl>`, so Redis expires them; nothing to clean up.
///
/// Keys are `<prefix>:idem:<sha256 hex>`: one key space per deployment prefix. The connection is
/// made on first use (and re-made by redis' `ConnectionManager` after a failure); connecting and
/// every round trip are bounded by a timeout (default 1 s). Any failure is a [`StoreError`], which
/// the layer answers with 503 without running the handler (fail-closed).
pub struct RedisIdempotencyStore {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    claim: Script,
    complete: Script,
    release: Script,
}

impl RedisIdempotencyStore {
    /// A store for the Redis at `url` (`redis://host:port/db`) with keys under `prefix`.
    /// Nothing is connected until the first request.
    ///
    /// # Errors
    /// The URL is not a valid Redis URL.
    pub fn open(url: &str, prefix: impl Into<String>) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| {
            StoreError::new(StoreErrorKind::Unavailable, "invalid Redis URL").with_source(e)
        })?;
        Ok(Self::from_client(client, prefix))
    }

    /// A store using `client`, with keys under `prefix`; connects on first use.
    pub fn from_client(client: redis::Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            connection: OnceCell::new(),
            prefix: prefix.into(),
            timeout: DEFAULT_TIMEOUT,
            claim: Script::new(CLAIM),
            complete: Script::new(COMPLETE),
            release: Script::new(RELEASE),
        }
    }

    /// Bounds connecting and each round trip (default 1 s); a slower Redis counts as down.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Connects now instead of on first use (to fail at start-up rather than on a request).
    ///
    /// # Errors
    /// Redis cannot be reached within the timeout.
    pub async fn connect(&self) -> Result<(), StoreError> {
        self.connection().await.map(|_| ())
    }

    fn redis_key(&self, key: &RecordKey) -> String {
        format!("{}:idem:{}", self.prefix, key.to_hex())
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let connect = self.connection.get_or_try_init(|| async {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(self.timeout)
                .set_response_timeout(self.timeout)
                .set_number_of_retries(1);
            ConnectionManager::new_with_config(self.client.clone(), config).await
        });
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(connection)) => Ok(connection.clone()),
            Ok(Err(e)) => Err(unavailable("cannot connect to Redis").with_source(e)),
            Err(_) => Err(unavailable("timed out connecting to Redis")),
        }
    }

    async fn invoke(
        &self,
        script: &Script,
        key: &RecordKey,
        args: &[&[u8]],
    ) -> Result<Value, StoreError> {
        let mut connection = self.connection().await?;
        let mut invocation = script.key(self.redis_key(key));
        for arg in args {
            invocation.arg(*arg);
        }
        match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(unavailable("Redis command failed").with_source(e)),
            Err(_) => Err(unavailable("Redis did not answer in time")),
        }
    }
}

fn unavailable(message: &'static str) -> StoreError {
    StoreError::new(StoreErrorKind::Unavailable, message)
}

fn corrupt() -> StoreError {
    StoreError::new(
        StoreErrorKind::Corrupt,
        "unreadable idempotency record in Redis",
    )
}

fn lease_value(token: &LeaseToken, fingerprint: &Fingerprint) -> Bytes {
    let mut value = BytesMut::with_capacity(1 + 16 + 32);
    value.put_u8(LEASE_TAG);
    value.put_slice(token.as_bytes());
    value.put_slice(fingerprint.as_bytes());
    value.freeze()
}

/// `L` + token: what complete and release compare the held value's first 17 bytes with.
fn lease_prefix(token: &LeaseToken) -> [u8; 17] {
    let mut prefix = [LEASE_TAG; 17];
    prefix[1..].copy_from_slice(token.as_bytes());
    prefix
}

fn millis(d: Duration) -> Vec<u8> {
    d.as_millis().max(1).to_string().into_bytes()
}

fn parse_held(held: Vec<u8>) -> Result<Claim, StoreError> {
    let mut held = Bytes::from(held);
    match held.first() {
        Some(&LEASE_TAG) if held.len() == 1 + 16 + 32 => {
            let mut fingerprint = [0u8; 32];
            fingerprint.copy_from_slice(&held[17..]);
            Ok(Claim::InFlight {
                fingerprint: Fingerprint::from_bytes(fingerprint),
            })
        }
        Some(&DONE_TAG) => {
            let record = StoredResponse::from_bytes(held.split_off(1)).ok_or_else(corrupt)?;
            Ok(Claim::Completed(Arc::new(record)))
        }
        _ => Err(corrupt()),
    }
}

#[async_trait]
impl IdempotencyStore for RedisIdempotencyStore {
    async fn claim(
        &self,
        key: &RecordKey,
        fingerprint: &Fingerprint,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let token = LeaseToken::generate();
        let value = lease_value(&token, fingerprint);
        match self
            .invoke(&self.claim, key, &[&value, &millis(lease)])
            .await?
        {
            Value::Int(1) => Ok(Claim::Claimed(token)),
            Value::BulkString(held) => parse_held(held),
            _ => Err(corrupt()),
        }
    }

    async fn complete(
        &self,
        key: &RecordKey,
        token: &LeaseToken,
        response: Arc<StoredResponse>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let lease = lease_prefix(token);
        let record = response.to_bytes();
        let mut value = BytesMut::with_capacity(1 + record.len());
        value.put_u8(DONE_TAG);
        value.put_slice(&record);
        match self
            .invoke(&self.complete, key, &[&lease, &value, &millis(ttl)])
            .await?
        {
            Value::Int(n) => Ok(n == 1),
            _ => Err(corrupt()),
        }
    }

    async fn release(&self, key: &RecordKey, token: &LeaseToken) -> Result<(), StoreError> {
        self.invoke(&self.release, key, &[&lease_prefix(token)])
            .await
            .map(|_| ())
    }
}

impl fmt::Debug for RedisIdempotencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisIdempotencyStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("connected", &self.connection.initialized())
            .finish_non_exhaustive()
    }
}
