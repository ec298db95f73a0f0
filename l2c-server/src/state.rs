//! The state every handler shares.

use std::sync::Arc;

use l2c_core::clock::{Clock, SystemClock};

use crate::config::Config;
use crate::observe::Metrics;
use crate::routes::oauth::limiter::{FailedAuthLimiter, FailurePolicy};
use crate::store::Db;
use crate::tokens::{Tokens, TokensError};

/// Shared state: the database, configuration, token machinery, metrics and the token endpoint's
/// failed-authentication limiter. Cheap to clone.
///
/// Other modules reach what they need through the public fields; add a field here (with a
/// default in [`AppState::new`]) rather than a global.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Token issuer and verifier.
    pub tokens: Tokens,
    /// Request metrics rendered at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Failed client authentications per `client_id` and peer address.
    pub auth_failures: FailedAuthLimiter,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// Wakes the webhook dispatcher when a transaction has queued deliveries.
    pub webhook_wake: Arc<tokio::sync::Notify>,
}

impl AppState {
    /// State for `config` over an open database, with the system clock.
    ///
    /// # Errors
    ///
    /// [`TokensError`] when the signing key cannot be loaded or generated.
    pub async fn new(config: Config, db: Db) -> Result<Self, TokensError> {
        Self::with_clock(config, db, Arc::new(SystemClock)).await
    }

    /// As [`AppState::new`], reading time from `clock` (tests).
    ///
    /// # Errors
    ///
    /// [`TokensError`] when the signing key cannot be loaded or generated.
    pub async fn with_clock(
        config: Config,
        db: Db,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, TokensError> {
        let tokens = Tokens::load(&config, &db, Arc::clone(&clock)).await?;
        Ok(Self {
            db,
            config: Arc::new(config),
            tokens,
            metrics: Arc::new(Metrics::new()),
            auth_failures: FailedAuthLimiter::new(FailurePolicy::default(), Arc::clone(&clock)),
            clock,
            webhook_wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Replaces the failed-authentication policy.
    #[must_use]
    pub fn with_failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.auth_failures = FailedAuthLimiter::new(policy, Arc::clone(&self.clock));
        self
    }
}
