//! The server's rate limits, export concurrency cap and idempotency records, in memory or in
//! Redis.
//!
//! [`Limits::new`] builds, from the [`Config`], the `l2c-core` layers [`crate::app`] puts in front
//! of the handlers:
//!
//! | layer | where | key | store |
//! |---|---|---|---|
//! | [`KeyedRateLimitLayer`] (`--rate-limit`, per-client overrides) | every `/api/mobile` route, after auth | `client_id` | `<prefix>:api:rl:<client_id>` |
//! | [`KeyedRateLimitLayer`] (`--token-rate-limit`) | `POST /api/oauth/token` | peer IP (the forwarded one with `--trust-proxy-tls`) | `<prefix>:token:rl:<ip>` |
//! | [`ConcurrencyCapLayer`] (`--export-concurrency`) | the long-running export route | `client_id` | `<prefix>:cc:<client_id>` |
//! | [`IdempotencyLayer`] | POST/PUT/PATCH under `/api/mobile` | (client, method, path, key) | `<prefix>:idem:<sha256>` |
//!
//! Without `--redis-url` every store is in memory (one process). With it, all four use one
//! Redis client (the URL is parsed once; the limiters share one [`RedisConnection`]) and keys
//! under `--redis-prefix` (default `l2c`), so every replica of a deployment enforces one quota,
//! one cap and one idempotency record per key. When Redis fails, the limiters **fail open** (the
//! request passes, a warning is logged and `l2c_rate_limit_fail_open_total` on `/metrics` counts
//! it) and idempotency **fails closed** (503, the handler does not run).
//!
//! # Per-client quotas
//!
//! A client's own quota (`l2c-server client create --rate-limit 500/s`) is stored with the
//! client. [`Limits::load_quotas`] reads every such quota into the limiter's [`QuotaOverrides`]
//! at start-up, and [`Limits::refresh_quotas`] re-reads them every `--quota-refresh-secs`
//! (default 30 s) while the server runs, so a client created or changed through any replica's
//! database takes effect everywhere within that interval, without a restart and without
//! resetting what clients have already used. The same reload refreshes the set of disabled clients
//! ([`DisabledClients`]), whose tokens are refused with 401 right after authentication, so
//! `l2c-server client disable` takes effect on running servers within that interval too.
//!
//! # CORS
//!
//! The server sends no CORS headers. If it ever does, `RateLimit`, `RateLimit-Policy`,
//! `Retry-After`, `X-Request-Id` and `Idempotent-Replayed` must be listed in
//! `Access-Control-Expose-Headers`, or browsers hide them from scripts.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::ConnectInfo;
use http::{HeaderValue, StatusCode, header};
use l2c_core::concurrency::{
    ConcurrencyCapLayer, ConcurrencyStore, MemoryConcurrencyStore, RedisConcurrencyStore,
};
use l2c_core::idempotency::{
    IdempotencyLayer, IdempotencyStore, MemoryIdempotencyStore, RedisIdempotencyStore,
};
use l2c_core::limits::RedisConnection;
use l2c_core::rate_limit::{
    KeyedRateLimitLayer, MemoryStore, QuotaOverrides, RateLimitStore, RedisStore,
};
use l2c_core::{AuthenticatedClient, Problem};

use crate::config::{Config, ConfigError};
use crate::routes::oauth::client_address;
use crate::store::{Db, StoreError};

/// The ids of the disabled clients, refreshed with the quotas; cheap to clone (shared state).
///
/// [`crate::app`] refuses, right after the auth layer, every token of a client in this set (see
/// [`reject_disabled`]), so `l2c-server client disable` revokes the client's live tokens within
/// `--quota-refresh-secs` instead of when they expire.
#[derive(Debug, Clone, Default)]
pub struct DisabledClients {
    /// Whether the set holds anything: the hot path skips the lock when it is empty.
    any: Arc<AtomicBool>,
    ids: Arc<RwLock<HashSet<String>>>,
}

impl DisabledClients {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `client_id` is disabled.
    pub fn contains(&self, client_id: &str) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        self.ids
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(client_id)
    }

    /// Replaces the whole set.
    pub fn replace_all(&self, ids: HashSet<String>) {
        let mut guard = self.ids.write().unwrap_or_else(|e| e.into_inner());
        self.any.store(!ids.is_empty(), Ordering::Release);
        *guard = ids;
    }

    /// How many clients are disabled.
    pub fn len(&self) -> usize {
        self.ids.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no client is disabled.
    pub fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }
}

/// Middleware right after [`JwtAuthLayer`](l2c_core::auth::JwtAuthLayer): a valid token of a
/// disabled client gets the auth layer's own 401 `invalid_token` answer (same
/// `WWW-Authenticate` challenge, `Cache-Control: no-store` and problem body), before the rate
/// limiter, so it consumes no quota.
pub async fn reject_disabled(
    axum::extract::State(disabled): axum::extract::State<DisabledClients>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let refused = !disabled.is_empty()
        && req
            .extensions()
            .get::<AuthenticatedClient>()
            .is_some_and(|c| disabled.contains(c.client_id.as_str()));
    if !refused {
        return next.run(req).await;
    }
    let problem = Problem::new(StatusCode::UNAUTHORIZED, "invalid_token", "Unauthorized")
        .with_detail("The access token is invalid or has expired; request a new one.")
        .with_request_id_from(req.extensions())
        .with_extension("error", "invalid_token");
    let mut res = crate::error::problem_response(problem);
    let headers = res.headers_mut();
    headers.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"l2c\", error=\"invalid_token\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The limit and idempotency layers of one server, built once and cloned into the router.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// The disabled clients, whose tokens are refused; filled from the database with the quotas.
    pub disabled: DisabledClients,
    /// Per-client quotas that replace `--rate-limit`; filled from the database.
    pub overrides: QuotaOverrides,
    /// The per-client limiter of `/api/mobile`.
    pub rate_limit: KeyedRateLimitLayer,
    /// The per-peer-address limiter of the token endpoint.
    pub token_rate_limit: KeyedRateLimitLayer,
    /// The per-client cap on concurrent exports.
    pub export_cap: ConcurrencyCapLayer,
    /// Idempotent POST/PUT/PATCH under `/api/mobile`.
    pub idempotency: IdempotencyLayer,
    redis_idempotency: Option<Arc<RedisIdempotencyStore>>,
}

/// The four stores and, with Redis, the idempotency store to connect at start-up.
struct Stores {
    api: Arc<dyn RateLimitStore>,
    token: Arc<dyn RateLimitStore>,
    cap: Arc<dyn ConcurrencyStore>,
    idempotency: Arc<dyn IdempotencyStore>,
    redis_idempotency: Option<Arc<RedisIdempotencyStore>>,
}

/// Where the layers keep their state: one process, or Redis under a prefix.
enum Backing {
    Memory,
    Redis {
        connection: RedisConnection,
        prefix: String,
    },
}

impl Limits {
    /// Builds the layers for `config` (nothing is connected yet).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRedisUrl`] when `--redis-url` cannot be parsed.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let backing = match &config.redis_url {
            None => Backing::Memory,
            Some(url) => Backing::Redis {
                connection: RedisConnection::new(url).map_err(|_| ConfigError::InvalidRedisUrl)?,
                prefix: config.redis_prefix.clone(),
            },
        };
        let overrides = QuotaOverrides::new();

        let stores = match &backing {
            Backing::Memory => Stores {
                api: Arc::new(MemoryStore::new()),
                token: Arc::new(MemoryStore::new()),
                cap: Arc::new(MemoryConcurrencyStore::new()),
                idempotency: Arc::new(MemoryIdempotencyStore::new()),
                redis_idempotency: None,
            },
            Backing::Redis { connection, prefix } => {
                let idem = Arc::new(RedisIdempotencyStore::from_client(
                    connection.client().clone(),
                    prefix.clone(),
                ));
                Stores {
                    api: Arc::new(RedisStore::new(
                        connection.clone(),
                        format!("{prefix}:api:"),
                    )),
                    token: Arc::new(RedisStore::new(
                        connection.clone(),
                        format!("{prefix}:token:"),
                    )),
                    cap: Arc::new(RedisConcurrencyStore::new(
                        connection.clone(),
                        format!("{prefix}:"),
                    )),
                    idempotency: Arc::clone(&idem) as Arc<dyn IdempotencyStore>,
                    redis_idempotency: Some(idem),
                }
            }
        };

        let rate_limit = KeyedRateLimitLayer::new(config.rate_limit)
            .with_overrides(overrides.clone())
            .with_shared_store(stores.api);

        // Forwarded addresses are believed only behind a declared proxy, and only from its
        // networks.
        let trusted_proxies: Arc<[ipnet::IpNet]> = if config.trust_proxy_tls {
            config.trusted_proxies.clone().into()
        } else {
            Arc::from([])
        };
        let token_rate_limit = KeyedRateLimitLayer::new(config.token_rate_limit)
            .with_shared_store(stores.token)
            .key_fn(move |head| {
                let peer = head
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip());
                client_address(&trusted_proxies, peer, head.headers()).map(|ip| ip.to_string())
            })
            // A request whose peer is unknown (no connect info) is still counted, all together.
            .anonymous_key("unknown-peer");

        let export_cap =
            ConcurrencyCapLayer::new(config.export_concurrency).with_shared_store(stores.cap);
        let idempotency = IdempotencyLayer::new().with_store(stores.idempotency);

        Ok(Self {
            disabled: DisabledClients::new(),
            overrides,
            rate_limit,
            token_rate_limit,
            export_cap,
            idempotency,
            redis_idempotency: stores.redis_idempotency,
        })
    }

    /// Replaces the per-client overrides with the quotas stored with the clients, and the
    /// [`DisabledClients`] with the ids of the disabled ones; returns how many clients have a
    /// quota.
    ///
    /// A disabled client keeps its quota (it is refused before the limiter anyway, and falls
    /// back to nothing more generous if that ever changes).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the clients cannot be read; the overrides and the disabled set are
    /// then left as they were.
    pub async fn load_quotas(&self, db: &Db) -> Result<usize, StoreError> {
        let clients = db.clients().list().await?;
        let disabled: HashSet<String> = clients
            .iter()
            .filter(|c| c.disabled)
            .map(|c| c.id.as_str().to_owned())
            .collect();
        let quotas: Vec<_> = clients
            .into_iter()
            .filter_map(|c| c.rate_limit.map(|q| (c.id.as_str().to_owned(), q)))
            .collect();
        let n = quotas.len();
        self.overrides.replace_all(quotas);
        self.disabled.replace_all(disabled);
        Ok(n)
    }

    /// Reloads the per-client quotas every `interval`, forever (run it as a task; a failed
    /// reload is logged and keeps the previous quotas).
    pub async fn refresh_quotas(self, db: Db, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is immediate; start-up has just loaded them
        loop {
            ticker.tick().await;
            if let Err(e) = self.load_quotas(&db).await {
                tracing::warn!(error = %e, "reloading per-client quotas failed; keeping the old ones");
            }
        }
    }

    /// With Redis, connects the idempotency store now so that a wrong or unreachable
    /// `--redis-url` stops the server at start-up instead of failing requests with 503.
    ///
    /// # Errors
    ///
    /// The reason Redis cannot be reached.
    pub async fn connect(&self) -> Result<(), String> {
        match &self.redis_idempotency {
            Some(store) => store.connect().await.map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Appends `l2c_rate_limit_fail_open_total{limiter=…}` (Prometheus text) to `out`.
    pub fn render_metrics(&self, out: &mut String) {
        out.push_str(
            "# HELP l2c_rate_limit_fail_open_total Requests let through unchecked because the \
             limit store (Redis) failed.\n",
        );
        out.push_str("# TYPE l2c_rate_limit_fail_open_total counter\n");
        for (name, n) in [
            ("api", self.rate_limit.fail_open_total()),
            ("export_concurrency", self.export_cap.fail_open_total()),
            ("token", self.token_rate_limit.fail_open_total()),
        ] {
            let _ = writeln!(
                out,
                "l2c_rate_limit_fail_open_total{{limiter=\"{name}\"}} {n}"
            );
        }
    }
}
