//! One lazily connected, timeout-bounded Redis connection shared by the Redis stores.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script};
use tokio::sync::OnceCell;

use super::StoreError;

/// Timeouts of a [`RedisConnection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConnectionConfig {
    /// Upper bound on one store operation, connecting included (default 250 ms).
    pub timeout: Duration,
    /// After a failed connection attempt, fail fast for this long before trying again (default
    /// 1 s), so an outage costs each request nothing rather than a timeout.
    pub reconnect_after: Duration,
}

impl Default for RedisConnectionConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(250),
            reconnect_after: Duration::from_secs(1),
        }
    }
}

impl RedisConnectionConfig {
    /// Sets [`timeout`](Self::timeout).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`reconnect_after`](Self::reconnect_after).
    #[must_use]
    pub fn reconnect_after(mut self, after: Duration) -> Self {
        self.reconnect_after = after;
        self
    }
}

/// A Redis connection for the limit stores: connects on first use, reconnects after failures,
/// and bounds every operation by a timeout so a dead Redis never hangs a request.
///
/// Cheap to clone; clones share the connection. Share one between the rate-limit and
/// concurrency stores of a server.
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    config: RedisConnectionConfig,
    conn: OnceCell<ConnectionManager>,
    down_until: Mutex<Option<Instant>>,
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: print only where it points.
        let info = self.inner.client.get_connection_info();
        f.debug_struct("RedisConnection")
            .field("addr", &info.addr.to_string())
            .field("config", &self.inner.config)
            .field("connected", &self.inner.conn.initialized())
            .finish()
    }
}

impl RedisConnection {
    /// A connection to `url` (`redis://host:port/db`) with default timeouts. Does not connect yet.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the URL is invalid.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Self::with_config(url, RedisConnectionConfig::default())
    }

    /// A connection to `url` with the given timeouts. Does not connect yet.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the URL is invalid.
    pub fn with_config(url: &str, config: RedisConnectionConfig) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid Redis URL: {e}").into()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                config,
                conn: OnceCell::new(),
                down_until: Mutex::new(None),
            }),
        })
    }

    /// The timeouts in force.
    pub fn config(&self) -> RedisConnectionConfig {
        self.inner.config
    }

    /// The underlying client (the parsed URL), e.g. for `RedisIdempotencyStore::from_client`, so one `--redis-url` is parsed once for every store of a server.
    pub fn client(&self) -> &redis::Client {
        &self.inner.client
    }

    /// Runs `script` (EVALSHA, loading it on first use) within the timeout.
    pub(crate) async fn eval<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.inner.config.timeout, self.eval_now(script, keys, args))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout),
        }
    }

    async fn eval_now<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, StoreError> {
        let mut con = self.connection().await?;
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        invocation
            .invoke_async(&mut con)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string().into()))
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(con) = self.inner.conn.get() {
            return Ok(con.clone());
        }
        {
            let down = self
                .inner
                .down_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if down.is_some_and(|until| Instant::now() < until) {
                return Err(StoreError::Unavailable(
                    "Redis was unreachable moments ago".into(),
                ));
            }
        }
        let timeout = self.inner.config.timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            .set_number_of_retries(1);
        let client = self.inner.client.clone();
        let result = self
            .inner
            .conn
            .get_or_try_init(|| ConnectionManager::new_with_config(client, config))
            .await;
        match result {
            Ok(con) => Ok(con.clone()),
            Err(e) => {
                *self
                    .inner
                    .down_until
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) =
                    Some(Instant::now() + self.inner.config.reconnect_after);
                Err(StoreError::Unavailable(e.to_string().into()))
            }
        }
    }
}
