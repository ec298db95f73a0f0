//! [`KeyedRateLimitLayer`]: configuration only.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use http::HeaderValue;
use tower_layer::Layer;

use super::service::KeyedRateLimit;
use super::{GcraParams, MemoryStore, Quota, QuotaOverrides, RateLimitStore};
use crate::limits::response::PrebuiltProblem;
use crate::limits::{
    ConfigError, FailOpenCounter, FailurePolicy, KeyExtractor, RequestHead, validate_policy_name,
};

/// Limits each partition key (by default the authenticated `client_id`) to a [`Quota`].
///
/// See the [module docs](super) for the responses and an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct KeyedRateLimitLayer {
    quota: Quota,
    overrides: QuotaOverrides,
    store: Arc<dyn RateLimitStore>,
    key: KeyExtractor,
    anonymous_key: Option<Arc<str>>,
    failure: FailurePolicy,
    fail_open: FailOpenCounter,
    policy: Arc<str>,
    /// What every service made by `layer()` shares, built on the first call (axum calls `layer()`
    /// per connection on a router without state); every builder method resets it.
    shared: OnceLock<Arc<Shared>>,
}

impl KeyedRateLimitLayer {
    /// Limits every client to `quota`, in memory, keyed by the authenticated `client_id`.
    pub fn new(quota: Quota) -> Self {
        Self {
            quota,
            overrides: QuotaOverrides::new(),
            store: Arc::new(MemoryStore::new()),
            key: KeyExtractor::client_id(),
            anonymous_key: None,
            failure: FailurePolicy::Open,
            fail_open: FailOpenCounter::new(),
            policy: Arc::from("default"),
            shared: OnceLock::new(),
        }
    }

    /// Derives the partition key with `f` instead of the authenticated client (e.g. the peer
    /// address on the token endpoint). `None` means "no key" (see
    /// [`anonymous_key`](Self::anonymous_key)).
    pub fn key_fn<F>(mut self, f: F) -> Self
    where
        F: Fn(RequestHead<'_>) -> Option<String> + Send + Sync + 'static,
    {
        self.shared = OnceLock::new();
        self.key = KeyExtractor::from_fn(f);
        self
    }

    /// Uses `extractor` for the partition key (shareable with the concurrency cap).
    pub fn key_extractor(mut self, extractor: KeyExtractor) -> Self {
        self.shared = OnceLock::new();
        self.key = extractor;
        self
    }

    /// Counts requests without a key under `key`, all together. Without this (the default) such
    /// requests pass unlimited and without rate-limit headers.
    pub fn anonymous_key(mut self, key: &str) -> Self {
        self.shared = OnceLock::new();
        self.anonymous_key = Some(Arc::from(key));
        self
    }

    /// Uses `overrides` for per-key quotas; keep a clone to change them at runtime.
    pub fn with_overrides(mut self, overrides: QuotaOverrides) -> Self {
        self.shared = OnceLock::new();
        self.overrides = overrides;
        self
    }

    /// Keeps the state in `store` (e.g. [`RedisStore`](super::RedisStore)) instead of memory.
    pub fn with_store(self, store: impl RateLimitStore) -> Self {
        self.with_shared_store(Arc::new(store))
    }

    /// Keeps the state in an already shared store (several layers may share one).
    pub fn with_shared_store(mut self, store: Arc<dyn RateLimitStore>) -> Self {
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

    /// Names the policy in the headers and in `violated-policies` (default `default`).
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

    /// The default quota.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The per-key overrides handle (shared with every service built from this layer).
    pub fn overrides(&self) -> &QuotaOverrides {
        &self.overrides
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn RateLimitStore> {
        &self.store
    }

    /// The fail-open counter, shared with every service built from this layer, for a metric.
    pub fn fail_open_counter(&self) -> &FailOpenCounter {
        &self.fail_open
    }

    /// Requests let through so far because the store failed.
    pub fn fail_open_total(&self) -> u64 {
        self.fail_open.get()
    }
}

impl<S> Layer<S> for KeyedRateLimitLayer {
    type Service = KeyedRateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let shared = self.shared.get_or_init(|| Arc::new(self.build_shared()));
        KeyedRateLimit::new(inner, shared.clone())
    }
}

impl KeyedRateLimitLayer {
    fn build_shared(&self) -> Shared {
        Shared {
            default: Resolved::new(&self.policy, self.quota),
            overrides: self.overrides.clone(),
            store: self.store.clone(),
            key: self.key.clone(),
            anonymous_key: self.anonymous_key.clone(),
            failure: self.failure,
            fail_open: self.fail_open.clone(),
            rejection: PrebuiltProblem::quota_exceeded(
                &self.policy,
                "The client has exceeded its request quota; retry after the time in Retry-After.",
            ),
            unavailable: PrebuiltProblem::store_unavailable(),
            rejected_states: (0..=REJECTED_STATES_CACHED)
                .map(|secs| state_value(&self.policy, 0, secs))
                .collect(),
            last_rejection: Mutex::new(None),
            allowed_states: std::array::from_fn(|_| Mutex::new(None)),
            policy: self.policy.clone(),
            resolved_overrides: RwLock::new(HashMap::new()),
        }
    }
}

/// Everything a service needs, built once per `layer` call.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) default: Resolved,
    pub(crate) overrides: QuotaOverrides,
    pub(crate) store: Arc<dyn RateLimitStore>,
    pub(crate) key: KeyExtractor,
    pub(crate) anonymous_key: Option<Arc<str>>,
    pub(crate) failure: FailurePolicy,
    pub(crate) fail_open: FailOpenCounter,
    pub(crate) rejection: PrebuiltProblem,
    pub(crate) unavailable: PrebuiltProblem,
    /// `RateLimit` values of a rejection (`r=0`) for `t` = 0..=120 s, built once: the 429 path of
    /// a per-second or per-minute quota allocates no header.
    pub(crate) rejected_states: Vec<HeaderValue>,
    /// The last rejection delay over two minutes with its `RateLimit` and `Retry-After` values.
    pub(crate) last_rejection: Mutex<Option<(u64, HeaderValue, HeaderValue)>>,
    /// The last `RateLimit` value of an allowed response per slot, with its `r` and `t`.
    pub(crate) allowed_states: [Mutex<Option<(u64, u64, HeaderValue)>>; ALLOWED_SLOTS],
    pub(crate) policy: Arc<str>,
    /// Overridden quotas with their GCRA parameters and `RateLimit-Policy` value, built once per
    /// distinct quota rather than once per request (a handful of tiers in practice; bounded).
    pub(crate) resolved_overrides: RwLock<HashMap<Quota, Resolved>>,
}

/// Distinct override quotas whose resolved form is kept; past that they are built per request.
const RESOLVED_OVERRIDES_CACHED: usize = 256;

impl Shared {
    /// `quota` resolved for this layer's policy name, from the cache when it was seen before.
    pub(crate) fn resolve(&self, quota: Quota) -> Resolved {
        if let Some(hit) = self
            .resolved_overrides
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&quota)
        {
            return hit.clone();
        }
        let resolved = Resolved::new(&self.policy, quota);
        let mut cache = self
            .resolved_overrides
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() < RESOLVED_OVERRIDES_CACHED {
            cache.insert(quota, resolved.clone());
        }
        resolved
    }
}

const REJECTED_STATES_CACHED: u64 = 120;

/// Slots of the allowed-response `RateLimit` value cache (see `Shared::allowed_value`).
pub(crate) const ALLOWED_SLOTS: usize = 8;

/// `"<policy>";r=<remaining>;t=<secs>`.
pub(crate) fn state_value(policy: &str, remaining: u64, secs: u64) -> HeaderValue {
    // Built on the stack (this runs for every allowed request): a validated policy name is at
    // most 64 bytes, so `"name";r=<u64>;t=<u64>` always fits; only the header value allocates.
    let mut buf = [0u8; 128];
    let mut w = StackWriter {
        buf: &mut buf,
        len: 0,
    };
    let fits = w.push(b"\"")
        && w.push(policy.as_bytes())
        && w.push(b"\";r=")
        && w.push_u64(remaining)
        && w.push(b";t=")
        && w.push_u64(secs);
    let value = if fits {
        HeaderValue::from_bytes(&w.buf[..w.len])
    } else {
        let mut s = String::with_capacity(policy.len() + 28);
        // Writing to a String cannot fail.
        let _ = write!(s, "\"{policy}\";r={remaining};t={secs}");
        HeaderValue::try_from(s)
    };
    value.unwrap_or_else(|_| HeaderValue::from_static("\"default\";r=0"))
}

/// Bytes appended to a fixed buffer; `push*` return false (and write nothing) when full.
struct StackWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl StackWriter<'_> {
    fn push(&mut self, bytes: &[u8]) -> bool {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
                true
            }
            None => false,
        }
    }

    fn push_u64(&mut self, mut n: u64) -> bool {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            // `n % 10` is a single digit.
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..])
    }
}

/// A quota with its GCRA parameters and its `RateLimit-Policy` value.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) params: GcraParams,
    pub(crate) policy_header: HeaderValue,
}

impl Resolved {
    pub(crate) fn new(policy: &str, quota: Quota) -> Self {
        let mut s = String::with_capacity(policy.len() + 24);
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "\"{policy}\";q={};w={}",
            quota.count(),
            quota.window_secs()
        );
        Self {
            params: GcraParams::of(&quota),
            // The policy name is validated, so the value is always visible ASCII.
            policy_header: HeaderValue::try_from(s)
                .unwrap_or_else(|_| HeaderValue::from_static("\"default\";q=1")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_quotas_resolve_once_and_match_a_fresh_build() {
        let shared = KeyedRateLimitLayer::new(Quota::per_second(100)).build_shared();
        let tier = Quota::per_second(500);
        let first = shared.resolve(tier);
        let again = shared.resolve(tier);
        let fresh = Resolved::new("default", tier);
        assert_eq!(first.policy_header, fresh.policy_header);
        assert_eq!(again.policy_header, "\"default\";q=500;w=1");
        assert_eq!(first.params, fresh.params);
        assert_eq!(shared.resolved_overrides.read().unwrap().len(), 1);
    }

    #[test]
    fn state_value_matches_the_formatted_text() {
        let long = "p".repeat(64);
        for policy in ["default", "a", long.as_str()] {
            for (r, t) in [
                (0, 0),
                (1, 9),
                (10, 10),
                (999_999, 3600),
                (u64::MAX, u64::MAX),
            ] {
                assert_eq!(
                    state_value(policy, r, t),
                    format!("\"{policy}\";r={r};t={t}"),
                    "{policy} {r} {t}"
                );
            }
        }
    }
}
