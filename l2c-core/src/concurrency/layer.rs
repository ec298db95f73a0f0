//! [`ConcurrencyCapLayer`]: configuration only.

use std::sync::Arc;

use http::HeaderValue;
use tower_layer::Layer;

use super::service::ConcurrencyCap;
use super::{ConcurrencyStore, MemoryConcurrencyStore};
use crate::limits::response::PrebuiltProblem;
use crate::limits::settings::{LimitSettings, Prepared, limit_settings_methods};

/// Caps the requests in flight per partition key (by default the authenticated `client_id`).
///
/// See the [module docs](super) for the responses and an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConcurrencyCapLayer {
    limit: u32,
    settings: LimitSettings<dyn ConcurrencyStore, Shared>,
}

impl ConcurrencyCapLayer {
    /// At most `limit` (0 is taken as 1) requests in flight per client, counted in memory.
    pub fn new(limit: u32) -> Self {
        Self {
            limit: limit.max(1),
            settings: LimitSettings::new(
                Arc::new(MemoryConcurrencyStore::new()),
                "concurrency",
                "concurrency",
            ),
        }
    }

    limit_settings_methods! {
        store: ConcurrencyStore,
        store_example: "[`RedisConcurrencyStore`](super::RedisConcurrencyStore)",
        default_policy: "concurrency",
        other: "the rate limiter",
    }

    /// The cap.
    pub fn limit(&self) -> u32 {
        self.limit
    }
}

impl<S> Layer<S> for ConcurrencyCapLayer {
    type Service = ConcurrencyCap<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyCap::new(
            inner,
            self.settings.shared(|limits| self.build_shared(limits)),
        )
    }
}

impl ConcurrencyCapLayer {
    fn build_shared(&self, limits: Prepared<dyn ConcurrencyStore>) -> Shared {
        let policy = self.settings.policy();
        let policy_header = HeaderValue::try_from(format!(
            "\"{policy}\";q={};qu=\"concurrent-requests\"",
            self.limit
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("\"concurrency\";q=1"));
        Shared {
            limit: self.limit,
            rejection: PrebuiltProblem::quota_exceeded(
                policy,
                "The client has too many requests of this kind in flight; retry when one ends.",
            ),
            policy_header,
            states: (0..=self.limit.min(MAX_PREBUILT_STATES))
                .map(|free| state_value(policy, free))
                .collect(),
            limits,
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

/// Everything a service needs, built once per layer (see [`LimitSettings::shared`]).
#[derive(Debug)]
pub(crate) struct Shared {
    /// The key, store, failure policy and policy name.
    pub(crate) limits: Prepared<dyn ConcurrencyStore>,
    pub(crate) limit: u32,
    pub(crate) rejection: PrebuiltProblem,
    pub(crate) policy_header: HeaderValue,
    /// `RateLimit` values by free slots, `0..=limit` (capped at `MAX_PREBUILT_STATES`).
    pub(crate) states: Vec<HeaderValue>,
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http::{Request, Response};
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::limits::test_util::request_from;

    /// The `RateLimit-Policy` of one request through `layer`, or `None` when it has none.
    async fn policy_of(layer: &ConcurrencyCapLayer, req: Request<()>) -> Option<HeaderValue> {
        let svc = layer.layer(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Bytes::new()))
        }));
        let res = svc.oneshot(req).await.unwrap();
        res.headers().get("ratelimit-policy").cloned()
    }

    #[tokio::test]
    async fn a_layer_changed_after_use_builds_services_with_the_change() {
        let used = ConcurrencyCapLayer::new(3);
        let expected = "\"concurrency\";q=3;qu=\"concurrent-requests\"";
        assert_eq!(
            policy_of(&used, request_from("acme")).await.unwrap(),
            expected
        );
        assert_eq!(policy_of(&used, Request::new(())).await, None);

        let renamed = used.clone().policy_name("exports").unwrap();
        assert_eq!(
            policy_of(&renamed, request_from("acme")).await.unwrap(),
            "\"exports\";q=3;qu=\"concurrent-requests\""
        );
        let anonymous = used.clone().anonymous_key("anonymous");
        assert_eq!(
            policy_of(&anonymous, Request::new(())).await.unwrap(),
            expected
        );
        // The layer used first is untouched by its changed clones.
        assert_eq!(
            policy_of(&used, request_from("acme")).await.unwrap(),
            expected
        );
    }
}
