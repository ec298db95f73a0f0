//! [`KeyedRateLimitLayer`]: configuration only.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use http::HeaderValue;
use tower_layer::Layer;

use super::service::KeyedRateLimit;
use super::{GcraParams, MemoryStore, Quota, QuotaOverrides, RateLimitStore};
use crate::limits::response::PrebuiltProblem;
use crate::limits::settings::{LimitSettings, Prepared, limit_settings_methods};

/// Limits each partition key (by default the authenticated `client_id`) to a [`Quota`].
///
/// See the [module docs](super) for the responses and an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct KeyedRateLimitLayer {
    quota: Quota,
    overrides: QuotaOverrides,
    settings: LimitSettings<dyn RateLimitStore, Shared>,
}

impl KeyedRateLimitLayer {
    /// Limits every client to `quota`, in memory, keyed by the authenticated `client_id`.
    pub fn new(quota: Quota) -> Self {
        Self {
            quota,
            overrides: QuotaOverrides::new(),
            settings: LimitSettings::new(Arc::new(MemoryStore::new()), "default", "rate limit"),
        }
    }

    limit_settings_methods! {
        store: RateLimitStore,
        store_example: "[`RedisStore`](super::RedisStore)",
        default_policy: "default",
        other: "the concurrency cap",
    }

    /// Uses `overrides` for per-key quotas; keep a clone to change them at runtime.
    pub fn with_overrides(mut self, overrides: QuotaOverrides) -> Self {
        self.settings.changed();
        self.overrides = overrides;
        self
    }

    /// The default quota.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The per-key overrides handle (shared with every service built from this layer).
    pub fn overrides(&self) -> &QuotaOverrides {
        &self.overrides
    }
}

impl<S> Layer<S> for KeyedRateLimitLayer {
    type Service = KeyedRateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedRateLimit::new(
            inner,
            self.settings.shared(|limits| self.build_shared(limits)),
        )
    }
}

impl KeyedRateLimitLayer {
    fn build_shared(&self, limits: Prepared<dyn RateLimitStore>) -> Shared {
        let policy = self.settings.policy();
        Shared {
            default: Resolved::new(policy, self.quota),
            overrides: self.overrides.clone(),
            rejection: PrebuiltProblem::quota_exceeded(
                policy,
                "The client has exceeded its request quota; retry after the time in Retry-After.",
            ),
            rejected_states: (0..=REJECTED_STATES_CACHED)
                .map(|secs| state_value(policy, 0, secs))
                .collect(),
            last_rejection: Mutex::new(None),
            allowed_states: std::array::from_fn(|_| Mutex::new(None)),
            resolved_overrides: RwLock::new(HashMap::new()),
            limits,
        }
    }
}

/// Everything a service needs, built once per `layer` call.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The key, store, failure policy and policy name.
    pub(crate) limits: Prepared<dyn RateLimitStore>,
    pub(crate) default: Resolved,
    pub(crate) overrides: QuotaOverrides,
    pub(crate) rejection: PrebuiltProblem,
    /// `RateLimit` values of a rejection (`r=0`) for `t` = 0..=120 s, built once: the 429 path of
    /// a per-second or per-minute quota allocates no header.
    pub(crate) rejected_states: Vec<HeaderValue>,
    /// The last rejection delay over two minutes with its `RateLimit` and `Retry-After` values.
    pub(crate) last_rejection: Mutex<Option<(u64, HeaderValue, HeaderValue)>>,
    /// The last `RateLimit` value of an allowed response per slot, with its `r` and `t`.
    pub(crate) allowed_states: [Mutex<Option<(u64, u64, HeaderValue)>>; ALLOWED_SLOTS],
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
        let resolved = Resolved::new(&self.limits.policy, quota);
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
    use std::convert::Infallible;

    use http::{Request, Response};
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::limits::test_util::request_from;

    /// The `RateLimit-Policy` of one request through `layer`, or `None` when it has none.
    async fn policy_of(layer: &KeyedRateLimitLayer, req: Request<()>) -> Option<HeaderValue> {
        let svc = layer.layer(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Vec::<u8>::new()))
        }));
        let res = svc.oneshot(req).await.unwrap();
        res.headers().get("ratelimit-policy").cloned()
    }

    #[tokio::test]
    async fn a_layer_changed_after_use_builds_services_with_the_change() {
        let used = KeyedRateLimitLayer::new(Quota::per_second(100));
        assert_eq!(
            policy_of(&used, request_from("acme")).await.unwrap(),
            "\"default\";q=100;w=1"
        );
        assert_eq!(policy_of(&used, Request::new(())).await, None);

        let renamed = used.clone().policy_name("renamed").unwrap();
        assert_eq!(
            policy_of(&renamed, request_from("acme")).await.unwrap(),
            "\"renamed\";q=100;w=1"
        );
        let overrides = QuotaOverrides::new();
        overrides.set("acme", Quota::per_second(7));
        let overridden = used.clone().with_overrides(overrides);
        assert_eq!(
            policy_of(&overridden, request_from("acme")).await.unwrap(),
            "\"default\";q=7;w=1"
        );
        let anonymous = used.clone().anonymous_key("anonymous");
        assert_eq!(
            policy_of(&anonymous, Request::new(())).await.unwrap(),
            "\"default\";q=100;w=1"
        );
        // The layer used first is untouched by its changed clones.
        assert_eq!(
            policy_of(&used, request_from("acme")).await.unwrap(),
            "\"default\";q=100;w=1"
        );
    }

    #[test]
    fn override_quotas_resolve_once_and_match_a_fresh_build() {
        let layer = KeyedRateLimitLayer::new(Quota::per_second(100));
        let shared = layer.build_shared(layer.settings.prepare());
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
