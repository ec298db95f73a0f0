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
//! | [`KeyedRateLimitLayer`] (`--lead-source-rate-limit`) | `POST /api/hooks/leads/{token}`, after the token lookup | lead source id ([`LeadSourceKey`]) | `<prefix>:hook:rl:<source id>` |
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
//! ([`DisabledClients`]), whose tokens the auth layer refuses with 401 (through its revocation
//! hook, [`ClientGate`]), so
//! `l2c-server client disable` takes effect on running servers within that interval too, and the
//! set of clients that exist ([`LiveClients`]): a token whose client was deleted is refused the
//! same way.
//!
//! A token of a client this replica has not seen yet (created after the last reload, through
//! any replica or the CLI) is not refused and not left on the default quota either: the client is
//! read from the database once, before the limiter decides ([`ClientGate`]), so it is held to its
//! own quota from its first request, and its tokens are refused if it is disabled or gone.
//!
//! # CORS
//!
//! The server sends no CORS headers. If it ever does, `RateLimit`, `RateLimit-Policy`,
//! `Retry-After`, `X-Request-Id` and `Idempotent-Replayed` must be listed in
//! `Access-Control-Expose-Headers`, or browsers hide them from scripts.

pub mod failed_auth;
pub mod peer;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::ConnectInfo;
use l2c_core::AuthenticatedClient;
use l2c_core::auth::{Revocation, RevocationCheck};
use l2c_core::concurrency::{
    ConcurrencyCapLayer, ConcurrencyStore, MemoryConcurrencyStore, RedisConcurrencyStore,
};
use l2c_core::idempotency::{
    IdempotencyLayer, IdempotencyStore, MemoryIdempotencyStore, RedisIdempotencyStore,
};
use l2c_core::limits::{LimitDecisions, RedisConnection};
use l2c_core::rate_limit::{
    KeyedRateLimitLayer, MemoryStore, QuotaOverrides, RateLimitStore, RedisStore,
};

use crate::config::{Config, ConfigError};
use crate::store::{Db, StoreError};
use peer::client_address;

/// The ids of the disabled clients, refreshed with the quotas; cheap to clone (shared state).
///
/// [`crate::app`]'s auth layer refuses every token of a client in this set (see [`ClientGate`]),
/// so `l2c-server client disable` revokes the client's live tokens within
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

    /// Adds one client (found disabled between two reloads).
    pub fn insert(&self, client_id: &str) {
        let mut guard = self.ids.write().unwrap_or_else(|e| e.into_inner());
        guard.insert(client_id.to_owned());
        self.any.store(true, Ordering::Release);
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

/// Most ids of deleted clients remembered between two reloads (tokens of each are refused
/// without a query); past it, further ones are looked up on every request until the next reload.
const MAX_GONE: usize = 10_000;

/// The clients that exist, as of the last reload plus those read since; cheap to clone (shared
/// state).
///
/// A token whose `sub` is in neither this set nor the deleted ones is looked up once by
/// [`ClientGate`]. A reload replaces the set with the database's list merged with the clients
/// admitted while that list was being read, so a client created meanwhile is not dropped.
#[derive(Debug, Clone, Default)]
pub struct LiveClients {
    state: Arc<RwLock<LiveState>>,
}

#[derive(Debug, Default)]
struct LiveState {
    ids: HashSet<String>,
    /// Clients found deleted since the last reload.
    gone: HashSet<String>,
    /// Clients admitted since the current reload started reading, with their quotas.
    admitted: Vec<(String, Option<l2c_core::rate_limit::Quota>)>,
}

impl LiveClients {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `client_id` is known to exist.
    pub fn contains(&self, client_id: &str) -> bool {
        self.read().ids.contains(client_id)
    }

    /// Whether `client_id` was found deleted since the last reload.
    pub fn is_gone(&self, client_id: &str) -> bool {
        self.read().gone.contains(client_id)
    }

    /// How many clients are known to exist.
    pub fn len(&self) -> usize {
        self.read().ids.len()
    }

    /// Whether no client is known.
    pub fn is_empty(&self) -> bool {
        self.read().ids.is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, LiveState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, LiveState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The [`Revocation`] hook [`crate::app`] gives the auth layer: the disabled and live clients,
/// the quota overrides to fill in for a client seen for the first time, and the database to read
/// it from.
#[derive(Debug, Clone)]
pub struct ClientGate {
    disabled: DisabledClients,
    live: LiveClients,
    overrides: QuotaOverrides,
    db: Db,
}

impl ClientGate {
    /// Whether the tokens of `client_id` may be used: not disabled and not deleted. A client
    /// not seen yet is read from the database (once; its quota is installed before the limiter
    /// runs). A database failure lets the token through (logged): it is validly signed, and the
    /// handlers need the database anyway.
    pub async fn admits(&self, client_id: &str) -> bool {
        if self.disabled.contains(client_id) {
            return false;
        }
        if self.live.contains(client_id) {
            return true;
        }
        if self.live.is_gone(client_id) {
            return false;
        }
        let client = match self.db.clients().get(client_id).await {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(error = %e, "reading a client not seen yet failed; token accepted");
                return true;
            }
        };
        let mut state = self.live.write();
        match client {
            None => {
                if state.gone.len() < MAX_GONE {
                    state.gone.insert(client_id.to_owned());
                }
                false
            }
            Some(client) => {
                // Under the lock, so a reload finishing now cannot drop the quota just set.
                if let Some(quota) = client.rate_limit {
                    self.overrides.set(client_id, quota);
                }
                state.ids.insert(client_id.to_owned());
                state
                    .admitted
                    .push((client_id.to_owned(), client.rate_limit));
                if client.disabled {
                    self.disabled.insert(client_id);
                }
                !client.disabled
            }
        }
    }
}

/// The revocation hook of the `/api/mobile` [`JwtAuthLayer`](l2c_core::auth::JwtAuthLayer): a
/// valid token of a disabled or deleted client gets the auth layer's own 401 `invalid_token`
/// answer, before the rate limiter, so it consumes no quota. Known clients are answered from
/// memory; a client not seen yet is read first ([`ClientGate::admits`]), its own quota installed
/// before the limiter runs.
impl Revocation for ClientGate {
    fn check(&self, client: &AuthenticatedClient) -> RevocationCheck {
        let id = client.client_id.as_str();
        if self.disabled.contains(id) {
            return RevocationCheck::Revoked;
        }
        if self.live.contains(id) {
            return RevocationCheck::Active;
        }
        if self.live.is_gone(id) {
            return RevocationCheck::Revoked;
        }
        let (gate, id) = (self.clone(), id.to_owned());
        RevocationCheck::lookup(async move { gate.admits(&id).await })
    }
}

/// The partition key of the push-URL limiter: the id of the lead source the token resolved to,
/// put in the request's extensions by the token lookup in front of the limiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSourceKey(pub Arc<str>);

/// The limit and idempotency layers of one server, built once and cloned into the router.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// The disabled clients, whose tokens are refused; filled from the database with the quotas.
    pub disabled: DisabledClients,
    /// The clients that exist, whose tokens are accepted; filled from the database with the
    /// quotas.
    pub live: LiveClients,
    /// Per-client quotas that replace `--rate-limit`; filled from the database.
    pub overrides: QuotaOverrides,
    /// The per-client limiter of `/api/mobile`.
    pub rate_limit: KeyedRateLimitLayer,
    /// The per-peer-address limiter of the token endpoint.
    pub token_rate_limit: KeyedRateLimitLayer,
    /// The per-lead-source limiter of the push URLs.
    pub lead_source_rate_limit: KeyedRateLimitLayer,
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
    hook: Arc<dyn RateLimitStore>,
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
                hook: Arc::new(MemoryStore::new()),
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
                    hook: Arc::new(RedisStore::new(
                        connection.clone(),
                        format!("{prefix}:hook:"),
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
        let trusted_proxies: Arc<[ipnet::IpNet]> = config.forwarding_proxies().into();
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

        let lead_source_rate_limit = KeyedRateLimitLayer::new(config.lead_source_rate_limit)
            .with_shared_store(stores.hook)
            .key_fn(|head| {
                head.extensions()
                    .get::<LeadSourceKey>()
                    .map(|k| k.0.to_string())
            });

        let export_cap =
            ConcurrencyCapLayer::new(config.export_concurrency).with_shared_store(stores.cap);
        let idempotency = IdempotencyLayer::new().with_store(stores.idempotency);

        Ok(Self {
            disabled: DisabledClients::new(),
            live: LiveClients::new(),
            overrides,
            rate_limit,
            token_rate_limit,
            lead_source_rate_limit,
            export_cap,
            idempotency,
            redis_idempotency: stores.redis_idempotency,
        })
    }

    /// Replaces the per-client overrides with the quotas stored with the clients, the
    /// [`DisabledClients`] with the ids of the disabled ones and the [`LiveClients`] with the ids
    /// of them all; returns how many clients have a quota.
    ///
    /// A disabled client keeps its quota (it is refused before the limiter anyway, and falls
    /// back to nothing more generous if that ever changes). Clients [`ClientGate`] admitted
    /// while the list was being read are kept, with their quotas.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the clients cannot be read; the overrides and the sets are then left
    /// as they were.
    pub async fn load_quotas(&self, db: &Db) -> Result<usize, StoreError> {
        self.live.write().admitted.clear();
        let clients = db.clients().list().await?;
        let disabled: HashSet<String> = clients
            .iter()
            .filter(|c| c.disabled)
            .map(|c| c.id.as_str().to_owned())
            .collect();
        let mut ids: HashSet<String> = clients.iter().map(|c| c.id.as_str().to_owned()).collect();
        let mut quotas: Vec<_> = clients
            .into_iter()
            .filter_map(|c| c.rate_limit.map(|q| (c.id.as_str().to_owned(), q)))
            .collect();
        let mut live = self.live.write();
        for (id, quota) in live.admitted.drain(..) {
            if ids.insert(id.clone())
                && let Some(quota) = quota
            {
                quotas.push((id, quota));
            }
        }
        let n = quotas.len();
        self.overrides.replace_all(quotas);
        self.disabled.replace_all(disabled);
        live.ids = ids;
        live.gone.clear();
        Ok(n)
    }

    /// The auth layer's revocation hook: these sets and overrides, reading unknown clients from
    /// `db`.
    pub fn gate(&self, db: Db) -> ClientGate {
        ClientGate {
            disabled: self.disabled.clone(),
            live: self.live.clone(),
            overrides: self.overrides.clone(),
            db,
        }
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

    /// The collector of `l2c_rate_limit_fail_open_total{limiter}` and
    /// `l2c_limit_decisions_total{limiter,outcome}`, read from the layers at each scrape.
    pub fn metrics_collector(&self) -> LimitsCollector {
        LimitsCollector(self.clone())
    }

    /// The limiters by their `limiter` label value.
    fn by_label(&self) -> [(&'static str, LimiterRef<'_>); 4] {
        [
            ("api", LimiterRef::Rate(&self.rate_limit)),
            ("export_concurrency", LimiterRef::Cap(&self.export_cap)),
            ("token", LimiterRef::Rate(&self.token_rate_limit)),
            (
                "lead_source",
                LimiterRef::Rate(&self.lead_source_rate_limit),
            ),
        ]
    }
}

/// One limit layer of [`Limits`], for the collector.
enum LimiterRef<'a> {
    Rate(&'a KeyedRateLimitLayer),
    Cap(&'a ConcurrencyCapLayer),
}

impl LimiterRef<'_> {
    fn fail_open_total(&self) -> u64 {
        match self {
            Self::Rate(l) => l.fail_open_total(),
            Self::Cap(l) => l.fail_open_total(),
        }
    }

    fn decisions(&self) -> &LimitDecisions {
        match self {
            Self::Rate(l) => l.decisions(),
            Self::Cap(l) => l.decisions(),
        }
    }
}

/// The limiters' own counters, read at each scrape ([`Limits::metrics_collector`]):
///
/// - `l2c_rate_limit_fail_open_total{limiter}`: requests let through unchecked because the
///   limit store (Redis) failed;
/// - `l2c_limit_decisions_total{limiter,outcome}`: each layer's decisions as it counted them
///   ([`LimitDecisions`]): `allowed`, `rejected` (its 429), `unavailable` (its fail-closed 503).
#[derive(Debug)]
pub struct LimitsCollector(Limits);

impl prometheus_client::collector::Collector for LimitsCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric as _;
        use prometheus_client::metrics::MetricType;
        use prometheus_client::metrics::counter::ConstCounter;
        let limiters = self.0.by_label();
        let mut family = encoder.encode_descriptor(
            "l2c_rate_limit_fail_open",
            "Requests let through unchecked because the limit store (Redis) failed",
            None,
            MetricType::Counter,
        )?;
        for (name, limiter) in &limiters {
            ConstCounter::new(limiter.fail_open_total())
                .encode(family.encode_family(&[("limiter", *name)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "l2c_limit_decisions",
            "Rate-limit and concurrency-cap decisions by limiter and outcome (allowed, rejected, unavailable)",
            None,
            MetricType::Counter,
        )?;
        for (name, limiter) in &limiters {
            for (outcome, n) in limiter.decisions().by_outcome() {
                let labels = [("limiter", *name), ("outcome", outcome)];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
