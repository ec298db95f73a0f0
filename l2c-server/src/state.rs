//! The state every handler shares.

use std::sync::Arc;

use l2c_core::clock::Clock;

use crate::config::{Config, ConfigError};
use crate::limits::Limits;
use crate::limits::failed_auth::{FailedAuthLimiter, FailedAuthPolicy};
use crate::observe::Metrics;
use crate::store::{Db, StoreError};
use crate::tokens::{Tokens, TokensError};

/// Why [`AppState`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The signing key could not be set up.
    #[error(transparent)]
    Tokens(#[from] TokensError),
    /// A configuration value was refused (e.g. the Redis URL).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The per-client quotas could not be read.
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

/// Shared state: the database, configuration, token machinery, metrics, the rate-limit /
/// concurrency / idempotency layers and the token endpoint's failed-authentication limiter.
///
/// One reference count to clone: axum clones a route's whole service stack, the handler's
/// state included, at every boxed level of the router on every request (a dozen times for an
/// API request), so the fields live behind one [`Arc`] ([`SharedState`], reached through
/// `Deref`: `state.db`, `state.config`, …) instead of being cloned one by one — 1,280
/// instructions a clone before, about 20 now.
#[derive(Debug, Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What an [`AppState`] shares. Other modules reach what they need through the public fields;
/// add a field here (with a default in [`AppState::new`]) rather than a global.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SharedState {
    /// The database.
    pub db: Db,
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Token issuer and verifier.
    pub tokens: Tokens,
    /// The metrics rendered at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Failed client authentications per `client_id`.
    pub auth_failures: FailedAuthLimiter,
    /// Rate limits, the export concurrency cap and idempotency, with their stores.
    pub limits: Limits,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// Wakes the webhook dispatcher when a transaction has queued deliveries.
    pub webhook_wake: Arc<tokio::sync::Notify>,
    /// The request log's channel (written by the writer [`crate::Server`] spawns).
    pub request_log: crate::observe::request_log::RequestLog,
}

impl AppState {
    /// State for `config` over an open database, reading time from the database's clock (the
    /// system clock unless [`Db::with_clock`] set another). The per-client quotas are loaded
    /// from the database; Redis (with `--redis-url`) is not contacted yet.
    ///
    /// # Errors
    ///
    /// [`StateError`] when the signing key cannot be loaded or generated, the Redis URL is
    /// invalid or the clients cannot be read.
    pub async fn new(config: Config, db: Db) -> Result<Self, StateError> {
        let clock = db.clock();
        Self::with_clock(config, db, clock).await
    }

    /// As [`AppState::new`], reading time from `clock` (tests): tokens, limits, the dispatcher
    /// and the timestamps the store writes all use it.
    ///
    /// # Errors
    ///
    /// As [`AppState::new`].
    pub async fn with_clock(
        config: Config,
        db: Db,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StateError> {
        // Exports read through a pool of their own (`--export-db-connections`), waiting for it
        // at most the stall timeout.
        let db = db
            .with_clock(Arc::clone(&clock))
            .with_export_connections(config.export_db_connections, config.export_stall_timeout);
        let tokens = Tokens::load(&config, &db, Arc::clone(&clock)).await?;
        let limits = Limits::new(&config)?;
        limits.load_quotas(&db).await?;
        let mut metrics = Metrics::new();
        metrics.register_collector(Box::new(limits.metrics_collector()));
        let request_log =
            crate::observe::request_log::RequestLog::new(config.request_logs.capacity);
        Ok(Self(Arc::new(SharedState {
            request_log,
            limits,
            db,
            config: Arc::new(config),
            tokens,
            metrics: Arc::new(metrics),
            auth_failures: FailedAuthLimiter::new(FailedAuthPolicy::default(), Arc::clone(&clock)),
            clock,
            webhook_wake: Arc::new(tokio::sync::Notify::new()),
        })))
    }

    /// Replaces the failed-authentication policy (how many wrong client secrets a `client_id`
    /// may send before the token endpoint slows it down).
    #[must_use]
    pub fn with_failed_auth_policy(mut self, policy: FailedAuthPolicy) -> Self {
        let shared = Arc::make_mut(&mut self.0);
        shared.auth_failures = FailedAuthLimiter::new(policy, Arc::clone(&shared.clock));
        self
    }

    /// The old name of [`with_failed_auth_policy`](Self::with_failed_auth_policy).
    #[deprecated(
        since = "0.1.1",
        note = "renamed to `with_failed_auth_policy`; removed in the next release"
    )]
    #[must_use]
    pub fn with_failure_policy(self, policy: FailedAuthPolicy) -> Self {
        self.with_failed_auth_policy(policy)
    }
}
