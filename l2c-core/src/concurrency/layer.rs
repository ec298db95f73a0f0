//! [`ConcurrencyCapLayer`]: configuration only.

use std::sync::{Arc, OnceLock};

use http::HeaderValue;
use tower_layer::Layer;

use super::service::ConcurrencyCap;
use super::{ConcurrencyStore, MemoryConcurrencyStore};
use crate::limits::response::PrebuiltProblem;
use crate::limits::{
    ConfigError, FailOpenCounter, FailurePolicy, KeyExtractor, RequestHead, validate_policy_name,
};

/// Caps the requests in flight per partition key (by default the authenticated `client_id`).
///
/// See the [module docs](super) for the responses and an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConcurrencyCapLayer {
    limit: u32,
    store: Arc<dyn ConcurrencyStore>,
    key: KeyExtractor,
    anonymous_key: Option<Arc<str>>,
    failure: FailurePolicy,
    fail_open: FailOpenCounter,
    policy: Arc<str>,
    /// What every service made by `layer()` shares, built on the first call (axum calls `layer()`
    /// per connection on a router without state); every builder method resets it.
    shared: OnceLock<Arc<Shared>>,
}

impl ConcurrencyCapLayer {
    /// At most `limit` (0 is taken as 1) requests in flight per client, counted in memory.
    pub fn new(limit: u32) -> Self {
        Self {
            limit: limit.max(1),
            store: Arc::new(MemoryConcurrencyStore::new()),
            key: KeyExtractor::client_id(),
            anonymous_key: None,
            failure: FailurePolicy::Open,
            fail_open: FailOpenCounter::new(),
            policy: Arc::from("concurrency"),
            shared: OnceLock::new(),
        }
    }

    /// Derives the partition key with `f` instead of the authenticated client.
    pub fn key_fn<F>(mut self, f: F) -> Self
    where
        F: Fn(RequestHead<'_>) -> Option<String> + Send + Sync + 'static,
    {
        self.shared = OnceLock::new();
        self.key = KeyExtractor::from_fn(f);
        self
    }

    /// Uses `extractor` for the partition key (shareable with the rate limiter).
    pub fn key_extractor(mut self, extractor: KeyExtractor) -> Self {
        self.shared = OnceLock::new();
        self.key = extractor;
        self
    }

    /// Counts requests without a key under `key`, all together. Without this (the default) such
    /// requests pass uncapped.
    pub fn anonymous_key(mut self, key: &str) -> Self {
        self.shared = OnceLock::new();
        self.anonymous_key = Some(Arc::from(key));
        self
    }

    /// Counts in `store` (e.g. [`RedisConcurrencyStore`](super::RedisConcurrencyStore)).
    pub fn with_store(self, store: impl ConcurrencyStore) -> Self {
        self.with_shared_store(Arc::new(store))
    }

    /// Counts in an already shared store.
    pub fn with_shared_store(mut self, store: Arc<dyn ConcurrencyStore>) -> Self {
        self.shared = OnceLock::new();
        self.store = store;
        self
    }

    /// What to do when the store fails (default [`FailurePolicy::Open`]).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.shared = OnceLock::new();
        self.failure = policy;
        self
    }

    /// Names the policy in the headers and in `violated-policies` (default `concurrency`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::PolicyName`] unless the name is 1–64 characters of `a-z0-9-_.`.
    pub fn policy_name(mut self, name: &str) -> Result<Self, ConfigError> {
        self.shared = OnceLock::new();
        validate_policy_name(name)?;
        self.policy = Arc::from(name);
        Ok(self)
    }

    /// The cap.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ConcurrencyStore> {
        &self.store
    }

    /// The fail-open counter, shared with every service built from this layer.
    pub fn fail_open_counter(&self) -> &FailOpenCounter {
        &self.fail_open
    }

    /// Requests let through so far because the store failed.
    pub fn fail_open_total(&self) -> u64 {
        self.fail_open.get()
    }
}

impl<S> Layer<S> for ConcurrencyCapLayer {
    type Service = ConcurrencyCap<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let shared = self.shared.get_or_init(|| Arc::new(self.build_shared()));
        ConcurrencyCap::new(inner, shared.clone())
    }
}

impl ConcurrencyCapLayer {
    fn build_shared(&self) -> Shared {
        let policy_header = HeaderValue::try_from(format!(
            "\"{}\";q={};qu=\"concurrent-requests\"",
            self.policy, self.limit
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("\"concurrency\";q=1"));
        Shared {
            limit: self.limit,
            store: self.store.clone(),
            key: self.key.clone(),
            anonymous_key: self.anonymous_key.clone(),
            failure: self.failure,
            fail_open: self.fail_open.clone(),
            rejection: PrebuiltProblem::quota_exceeded(
                &self.policy,
                "The client has too many requests of this kind in flight; retry when one ends.",
            ),
            unavailable: PrebuiltProblem::store_unavailable(),
            policy_header,
            states: (0..=self.limit.min(MAX_PREBUILT_STATES))
                .map(|free| state_value(&self.policy, free))
                .collect(),
            policy: self.policy.clone(),
        }
    }
}

/// `RateLimit` values built ahead for caps up to this many slots (larger ones format the rest).
const MAX_PREBUILT_STATES: u32 = 1024;

/// `"<policy>";r=<free>`.
pub(crate) fn state_value(policy: &str, free: u32) -> HeaderValue {
    // A validated policy name is visible ASCII, so the value always is.
    HeaderValue::try_from(format!("\"{policy}\";r={free}"))
        .unwrap_or_else(|_| HeaderValue::from_static("\"concurrency\";r=0"))
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) limit: u32,
    pub(crate) store: Arc<dyn ConcurrencyStore>,
    pub(crate) key: KeyExtractor,
    pub(crate) anonymous_key: Option<Arc<str>>,
    pub(crate) failure: FailurePolicy,
    pub(crate) fail_open: FailOpenCounter,
    pub(crate) rejection: PrebuiltProblem,
    pub(crate) unavailable: PrebuiltProblem,
    pub(crate) policy_header: HeaderValue,
    /// `RateLimit` values by free slots, `0..=limit` (capped at `MAX_PREBUILT_STATES`).
    pub(crate) states: Vec<HeaderValue>,
    pub(crate) policy: Arc<str>,
}
